"""``tools/fuzz``: the random differential campaigns in shards, on a process pool or a Dask
cluster, merged into one report whatever ran them where.

The campaigns are the hypothesis tests of ``tests/system/lockstep`` (docs/testing.md, "The
random campaigns"): M-mode programs (``programs``), system programs (``system``), and both on
the translating tier (``tier-programs``, ``tier-system``).  A campaign of E examples with base
seed S is cut into shards: shard k of n runs E // n examples (one more for the first E % n)
with seed ``S * 1000 + k``, so a shard's seed says its campaign's seed and its index.  A shard
is one pytest process of its own (``run_shard``): hypothesis draws constants from the modules
the process has imported, so the same pytest command draws the same batches wherever it runs,
and a shard run inside a long-lived worker would not.  The tests write their tallies to the
JSON file ``RVH_FUZZ_REPORT`` names (tests/system/lockstep/conftest.py): the program digests,
rule firings by instruction class, and each failure's text with its ``@reproduce_failure``
line; a shard returns them as a plain, picklable ``ShardResult``.

``merge`` orders the results by shard key (campaign, seed, index) and combines them: the union
of the digests for the distinct count, sums of batches, programs and firings, every failure in
key order with the command that reruns its shard.  The report depends only on the results, so
it is the same serially, on the local pool or on Dask, in any finishing order.  Shards run on a
pool of local processes by default, on a Dask ``LocalCluster`` with a bare ``--dask``, or on an
existing cluster with ``--dask ADDRESS`` (its workers need this tree at the same path, and
QEMU 7.2).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from rvh.cluster import as_they_finish, check_scheduler, dask_client
from rvh.errors import EXIT_INTERRUPTED, EXIT_USAGE, ConfigError

ROOT = Path(__file__).resolve().parents[2]
LOCKSTEP = "tests/system/lockstep"
SEED_STRIDE = 1000  # shard k of seed S runs seed S * SEED_STRIDE + k
DEFAULT_SHARDS = 8  # per campaign; fixed so that a seed names the same campaign on any machine
# a failed shard whose pytest wrote no report (a crash, a collection error): its output's end
OUTPUT_TAIL_LINES = 40


@dataclass(frozen=True)
class Kind:
    """One campaign: its tests (in file order), the variable that sets its number of
    examples, and the tests only its first shard runs (fixed programs, not random ones)."""

    name: str
    file: str
    tests: tuple[str, ...]
    examples_variable: str
    environment: tuple[tuple[str, str], ...] = ()
    first_shard_tests: tuple[str, ...] = ()
    least_share: int = 1  # the fewest examples a shard runs, when the campaign has as many


KINDS = (
    Kind(
        "programs",
        "test_random_programs.py",
        ("test_random_programs_agree_with_qemu", "test_campaign_size"),
        "RVH_FUZZ_EXAMPLES",
        (("RVH_FUZZ_MIN_PROGRAMS", "0"),),  # a shard's share need not reach CI's floor
    ),
    Kind(
        "system",
        "test_system_programs.py",
        ("test_system_programs_agree_with_qemu", "test_system_campaign_size_and_rules"),
        "RVH_SYSFUZZ_EXAMPLES",
        (("RVH_SYSFUZZ_MIN_PROGRAMS", "0"),),
        ("test_upper_half_programs_agree_with_qemu",),
    ),
    Kind(
        "tier-programs",
        "test_tier_campaign.py",
        (
            "test_random_programs_end_the_same_on_the_tier",
            "test_the_tier_campaign_ran_translated_code",
        ),
        "RVH_TIER_FUZZ_EXAMPLES",
        # its tests ask for more than 20 instructions translated a batch, which one or two
        # batches need not show (hypothesis's first example is the simplest batch)
        least_share=5,
    ),
    Kind(
        "tier-system",
        "test_tier_campaign.py",
        (
            "test_system_programs_end_the_same_on_the_tier",
            "test_the_tier_campaign_ran_translated_code",
        ),
        "RVH_TIER_SYSFUZZ_EXAMPLES",
    ),
)
KIND_NAMES = tuple(kind.name for kind in KINDS)
KIND_BY_NAME = {kind.name: kind for kind in KINDS}
# the variables a shard sets itself: any the caller's environment holds are dropped
SHARD_VARIABLES = ("RVH_FUZZ_", "RVH_SYSFUZZ_", "RVH_TIER_FUZZ_", "RVH_TIER_SYSFUZZ_")


@dataclass(frozen=True)
class ShardKey:
    kind: str
    seed: int  # the campaign's base seed
    index: int

    @property
    def shard_seed(self) -> int:
        return self.seed * SEED_STRIDE + self.index

    def order(self) -> tuple[int, int, int]:
        return (KIND_NAMES.index(self.kind), self.seed, self.index)

    def __str__(self) -> str:
        return f"{self.kind} shard {self.index} (seed {self.shard_seed})"


@dataclass(frozen=True)
class Shard:
    key: ShardKey
    examples: int
    root: str  # the tree whose tests and rvh the shard runs (the same path on every worker)

    def environment(self) -> dict[str, str]:
        """The variables that make this shard's pytest run its share, from its seed."""
        kind = KIND_BY_NAME[self.key.kind]
        return {
            kind.examples_variable: str(self.examples),
            "RVH_FUZZ_SEED": str(self.key.shard_seed),
            **dict(kind.environment),
        }

    def pytest_arguments(self) -> list[str]:
        kind = KIND_BY_NAME[self.key.kind]
        tests = kind.tests + (kind.first_shard_tests if self.key.index == 0 else ())
        return [
            "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "--tb=short",
            *(f"{LOCKSTEP}/{kind.file}::{test}" for test in tests),
            f"--hypothesis-seed={self.key.shard_seed}",
        ]  # fmt: skip

    def rerun_command(self) -> str:
        """The command that runs this shard alone (from the tree's root)."""
        variables = " ".join(f"{name}={value}" for name, value in self.environment().items())
        return f"{variables} python {shlex.join(self.pytest_arguments())}"


@dataclass(frozen=True)
class Tally:
    """A campaign's counts (tests/system/lockstep/campaign.py's CampaignStats)."""

    name: str
    batches: int
    programs: int
    instructions: int
    digests: tuple[str, ...]  # sorted
    rules: tuple[tuple[str, str, int], ...]  # (rule, instruction class, firings), sorted
    broken: tuple[str, ...]  # firings outside the rules' budgets

    @property
    def distinct(self) -> int:
        return len(self.digests)

    def report(self) -> str:
        """The table ``CampaignStats.report`` prints (kept the same: tested)."""
        lines = [
            f"{self.name}: {self.programs} programs ({self.distinct} distinct) in "
            f"{self.batches} batches, {self.instructions} instructions compared",
            f"  {'deviation rule':<36}{'class':<10}{'fired':>8}",
        ]
        for rule, klass, count in self.rules:
            lines.append(f"  {rule:<36}{klass:<10}{count:>8}")
        if not self.rules:
            lines.append("  (no rule fired)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Failure:
    test: str  # pytest's node id
    report: str  # what pytest prints for it


@dataclass(frozen=True)
class ShardResult:
    key: ShardKey
    examples: int
    rerun: str
    tallies: tuple[Tally, ...]
    counters: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    failures: tuple[Failure, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


# ---- one shard -----------------------------------------------------------------------------
def plan(
    seed: int, examples: Mapping[str, int], shards: int, root: str | Path = ROOT
) -> list[Shard]:
    """The shards of each campaign in ``examples`` (kind -> examples; 0 runs none), in key
    order; a campaign of few examples gets fewer shards (one per example, or per
    ``Kind.least_share`` examples)."""
    if seed < 0:
        raise ConfigError(f"seed {seed}: give a non-negative integer")
    if not 1 <= shards <= SEED_STRIDE:
        raise ConfigError(f"--shards {shards}: give 1 to {SEED_STRIDE}")
    out = []
    for kind in KIND_NAMES:
        total = examples.get(kind, 0)
        if total < 0:
            raise ConfigError(f"{kind}: {total} examples: give a non-negative number")
        count = max(1, min(shards, total // KIND_BY_NAME[kind].least_share)) if total else 0
        for index in range(count):
            share = total // count + (1 if index < total % count else 0)
            out.append(Shard(ShardKey(kind, seed, index), share, str(root)))
    unknown = set(examples) - set(KIND_NAMES)
    if unknown:
        raise ConfigError(f"unknown campaigns {sorted(unknown)}: use {', '.join(KIND_NAMES)}")
    return out


def run_shard(shard: Shard) -> ShardResult:
    """Run one shard in a pytest process of its own and read back its report."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(SHARD_VARIABLES)
    }
    environment.update(shard.environment())
    path = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = shard.root + (os.pathsep + path if path else "")
    with tempfile.TemporaryDirectory(prefix="rvh-fuzz-shard-") as tmp:
        report_path = Path(tmp) / "report.json"
        environment["RVH_FUZZ_REPORT"] = str(report_path)
        run = subprocess.run(
            [sys.executable, *shard.pytest_arguments()],
            cwd=shard.root,
            env=environment,
            capture_output=True,
            text=True,
        )
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError):
            report = None  # pytest ended before its report was written whole
    return shard_result(shard, report, run.returncode, run.stdout + run.stderr)


def shard_result(
    shard: Shard, report: dict[str, Any] | None, status: int, output: str
) -> ShardResult:
    """A shard's result from its pytest's report (None: it wrote none) and exit status."""
    tallies: list[Tally] = []
    counters: list[tuple[str, tuple[tuple[str, int], ...]]] = []
    failures: list[Failure] = []
    if report is not None:
        for campaign in report["campaigns"]:
            tallies.append(
                Tally(
                    campaign["name"],
                    campaign["batches"],
                    campaign["programs"],
                    campaign["instructions"],
                    tuple(sorted(campaign["digests"])),
                    tuple(sorted((r, c, n) for r, c, n in campaign["rules"])),
                    tuple(campaign["broken"]),
                )
            )
        for name, values in report["counters"].items():
            counters.append((name, tuple(values.items())))
        failures = [Failure(f["test"], f["report"]) for f in report["failures"]]
    if status != 0 and not failures:
        # pytest failed without a failed test to show: its output says why
        tail = "\n".join(output.rstrip().splitlines()[-OUTPUT_TAIL_LINES:])
        failures.append(Failure("(pytest)", f"pytest exited with status {status}:\n{tail}"))
    return ShardResult(
        shard.key,
        shard.examples,
        shard.rerun_command(),
        tuple(tallies),
        tuple(counters),
        tuple(failures),
    )


# ---- the merge -----------------------------------------------------------------------------
@dataclass(frozen=True)
class MergedReport:
    shards: int
    tallies: tuple[Tally, ...]
    counters: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]
    failed: tuple[ShardResult, ...]  # in key order

    @property
    def broken(self) -> tuple[str, ...]:
        return tuple(message for tally in self.tallies for message in tally.broken)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.broken

    def text(self) -> str:
        lines = [tally.report() for tally in self.tallies]
        for name, values in self.counters:
            lines.append(f"{name}: {dict(values)}")
        if self.broken:
            lines.append("deviation rules outside their budget:")
            lines += [f"  {message}" for message in self.broken]
        for result in self.failed:
            lines.append(f"FAILED {result.key}, {result.examples} examples; rerun it with")
            lines.append(f"  {result.rerun}")
            for failure in result.failures:
                lines.append(f"{failure.test}:")
                lines.append(failure.report.rstrip())
        if self.failed:
            lines.append(f"fuzz: {len(self.failed)} of {self.shards} shards failed")
        else:
            lines.append(f"fuzz: {self.shards} shards passed")
        return "\n".join(lines)


def merge(results: Iterable[ShardResult]) -> MergedReport:
    """Shard results in key order, combined: any order of the same results gives the same."""
    ordered = sorted(results, key=lambda result: result.key.order())
    keys = [result.key for result in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError("a shard's result was given twice")
    by_name: dict[str, list[Tally]] = {}
    counters: dict[str, Counter[str]] = {}
    for result in ordered:
        for tally in result.tallies:
            by_name.setdefault(tally.name, []).append(tally)
        for name, values in result.counters:
            # Counter keeps insertion order: the first shard's order of the names
            counters.setdefault(name, Counter()).update(dict(values))
    tallies = tuple(_combine(name, parts) for name, parts in by_name.items())
    return MergedReport(
        shards=len(ordered),
        tallies=tallies,
        counters=tuple((name, tuple(values.items())) for name, values in counters.items()),
        failed=tuple(result for result in ordered if not result.passed),
    )


def _combine(name: str, parts: Sequence[Tally]) -> Tally:
    rules: Counter[tuple[str, str]] = Counter()
    for part in parts:
        rules.update({(rule, klass): count for rule, klass, count in part.rules})
    return Tally(
        name,
        sum(part.batches for part in parts),
        sum(part.programs for part in parts),
        sum(part.instructions for part in parts),
        tuple(sorted({digest for part in parts for digest in part.digests})),
        tuple((rule, klass, count) for (rule, klass), count in sorted(rules.items())),
        tuple(message for part in parts for message in part.broken),
    )


# ---- where the shards run ------------------------------------------------------------------
def run_shards(
    shards: Sequence[Shard],
    *,
    dask: str | None = None,
    workers: int | None = None,
    progress: Callable[[ShardResult], None] | None = None,
    serial: bool = False,
) -> list[ShardResult]:
    """Run every shard: one after another (``serial``), on a pool of ``workers`` local
    processes (``dask`` None: each shard is a pytest process, a thread waits for it), on a
    Dask LocalCluster (``dask`` "") or on the cluster whose scheduler is at ``dask``."""
    workers = workers or os.cpu_count() or 1
    if dask is not None and not serial:
        return _run_on_dask(shards, dask, workers, progress)
    results = []
    if serial:
        for shard in shards:
            results.append(_finished(shard, partial(run_shard, shard)))
            if progress:
                progress(results[-1])
        return results
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(run_shard, shard): shard for shard in shards}
        for future in as_completed(futures):
            results.append(_finished(futures[future], future.result))
            if progress:
                progress(results[-1])
    return results


def _finished(shard: Shard, result: Callable[[], ShardResult]) -> ShardResult:
    """A shard's result; a shard whose task itself failed (its worker lost, its process not
    started) is a failed shard, not the end of the campaign."""
    try:
        return result()
    except Exception as error:
        failure = Failure("(task)", f"the shard's task failed: {type(error).__name__}: {error}")
        return ShardResult(shard.key, shard.examples, shard.rerun_command(), (), (), (failure,))


def _run_on_dask(
    shards: Sequence[Shard],
    address: str,
    workers: int,
    progress: Callable[[ShardResult], None] | None,
) -> list[ShardResult]:
    with dask_client(address, workers) as client:
        run = uuid.uuid4().hex[:8]  # two campaigns with one seed on one cluster stay apart
        results = []
        for shard, future in as_they_finish(
            client,
            run_shard,
            shards,
            lambda shard: f"fuzz-{shard.key.kind}-{shard.key.seed}-{shard.key.index}-{run}",
        ):
            results.append(_finished(shard, future.result))
            if progress:
                progress(results[-1])
        return results


# ---- tools/fuzz ----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: give a non-negative number")
    return value


def _positive(text: str) -> int:
    value = _count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("give at least 1")
    return value


def _campaigns(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in KIND_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{text!r}: use a list of {', '.join(KIND_NAMES)}")
    return names


def parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tools/fuzz",
        description="The long random differential campaigns against QEMU 7.2, in shards "
        "(docs/testing.md, 'The random campaigns').",
    )
    parser.add_argument(
        "examples", nargs="?", type=_count, default=5000, metavar="EXAMPLES",
        help="batches of M-mode programs (default 5000; a tenth as many run on the tier)",
    )  # fmt: skip
    parser.add_argument(
        "seed", nargs="?", type=_count, default=None, metavar="SEED",
        help="the campaign's seed (default: a random one, printed)",
    )  # fmt: skip
    parser.add_argument(
        "system_examples", nargs="?", type=_count, default=None, metavar="SYSTEM_EXAMPLES",
        help="batches of system programs (default EXAMPLES / 2; a tenth on the tier)",
    )  # fmt: skip
    parser.add_argument(
        "--shards", type=_positive, default=DEFAULT_SHARDS, metavar="N",
        help=f"shards per campaign (default {DEFAULT_SHARDS}; with the seed, they decide "
        "the batches)",
    )  # fmt: skip
    parser.add_argument(
        "--dask", nargs="?", const="", default=None, metavar="ADDRESS",
        help="run the shards on the Dask cluster whose scheduler is at ADDRESS (without "
        "ADDRESS: a local one); default a pool of local processes",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=_positive, default=None, metavar="N",
        help="local processes (or LocalCluster workers) at once (default: the CPU count)",
    )  # fmt: skip
    parser.add_argument(
        "--campaigns", type=_campaigns, default=KIND_NAMES, metavar="LIST",
        help=f"the campaigns to run (default all: {','.join(KIND_NAMES)})",
    )  # fmt: skip
    return parser


def separate_dask_address(argv: list[str]) -> list[str]:
    """A bare ``--dask`` before a positional number: a scheduler address is never a plain
    number, so ``tools/fuzz --dask 200 7`` means a local cluster, 200 batches, seed 7."""
    out = list(argv)
    for index, argument in enumerate(out[:-1]):
        if argument == "--dask" and out[index + 1].isdigit():
            out[index] = "--dask="
    return out


def plan_from_arguments(args: argparse.Namespace) -> tuple[int, dict[str, int]]:
    """The seed and each campaign's examples, as tools/fuzz has always derived them."""
    seed = args.seed if args.seed is not None else secrets.randbelow(10**9)
    system = args.system_examples if args.system_examples is not None else args.examples // 2
    examples = {
        "programs": args.examples,
        "system": system,
        "tier-programs": (args.examples + 9) // 10,
        "tier-system": (system + 9) // 10,
    }
    return seed, {kind: count for kind, count in examples.items() if kind in args.campaigns}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(separate_dask_address(list(sys.argv[1:] if argv is None else argv)))
    try:
        seed, examples = plan_from_arguments(args)
        shards = plan(seed, examples, args.shards)
        if args.dask:
            check_scheduler(args.dask)  # before anything is printed: one line, status 2
        print(
            f"fuzz: seed {seed}, up to {args.shards} shards per campaign; batches: "
            + ", ".join(f"{kind} {count}" for kind, count in examples.items()),
            flush=True,
        )
        done = 0

        def progress(result: ShardResult) -> None:
            nonlocal done
            done += 1
            outcome = "passed" if result.passed else "FAILED"
            print(f"fuzz: {result.key} {outcome} ({done}/{len(shards)})", file=sys.stderr)

        results = run_shards(shards, dask=args.dask, workers=args.workers, progress=progress)
    except ConfigError as error:
        print(f"tools/fuzz: {error.message}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    report = merge(results)
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    # through the package's name, so that the shards pickled for Dask name their classes
    # rvh.diff.campaign_runner.*, as the workers import them, not __main__.*
    from rvh.diff.campaign_runner import main as package_main

    sys.exit(package_main())

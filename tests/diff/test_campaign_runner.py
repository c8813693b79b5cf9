"""tools/fuzz's shards and their merge (rvh/diff/campaign_runner.py): the shards' seeds and
shares, a merge that gives one report whatever order the shards finished in, the same report
serially, on the local pool and on a Dask LocalCluster, a failing shard reported with the
command that reruns it, and bad arguments refused in one line with status 2."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from rvh.diff.campaign_runner import (
    KIND_NAMES,
    Failure,
    Shard,
    ShardKey,
    ShardResult,
    Tally,
    _finished,
    merge,
    parser,
    plan,
    plan_from_arguments,
    run_shards,
    separate_dask_address,
    shard_result,
)
from rvh.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
FUZZ = ROOT / "tools" / "fuzz"
RANDOM_TESTS = (
    "tests/system/lockstep/test_random_programs.py::test_random_programs_agree_with_qemu "
    "tests/system/lockstep/test_random_programs.py::test_campaign_size"
)


def test_plan_shares_the_examples_and_derives_each_shards_seed():
    shards = plan(42, {"system": 3, "programs": 10}, 4, root="/tree")
    assert [(s.key.kind, s.key.index, s.key.shard_seed, s.examples) for s in shards] == [
        ("programs", 0, 42000, 3),
        ("programs", 1, 42001, 3),
        ("programs", 2, 42002, 2),
        ("programs", 3, 42003, 2),
        ("system", 0, 42000, 1),
        ("system", 1, 42001, 1),
        ("system", 2, 42002, 1),
    ]
    assert shards[1].rerun_command() == (
        "RVH_FUZZ_EXAMPLES=3 RVH_FUZZ_SEED=42001 RVH_FUZZ_MIN_PROGRAMS=0 python -m pytest -q -s "
        f"-p no:cacheprovider --tb=short {RANDOM_TESTS} --hypothesis-seed=42001"
    )
    # the fixed upper-half programs run once, in the system campaign's first shard
    upper = "test_system_programs.py::test_upper_half_programs_agree_with_qemu"
    runs_upper = [any(upper in a for a in s.pytest_arguments()) for s in shards[4:]]
    assert runs_upper == [True, False, False]
    # the tier's M-mode campaign asks each shard for translated code: 5 batches a shard at least
    assert [s.examples for s in plan(1, {"tier-programs": 12}, 8)] == [6, 6]
    assert [s.examples for s in plan(1, {"tier-programs": 3, "tier-system": 3}, 8)] == [3, 1, 1, 1]


@pytest.mark.parametrize(
    ("seed", "examples", "shards", "message"),
    [
        (-1, {"programs": 1}, 1, "seed -1"),
        (1, {"programs": 1}, 0, "--shards 0"),
        (1, {"programs": 1}, 1001, "--shards 1001"),
        (1, {"programs": -2}, 1, "programs: -2 examples"),
        (1, {"nonsense": 1}, 1, "unknown campaigns ['nonsense']"),
    ],
)
def test_plan_refuses_bad_values(seed, examples, shards, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        plan(seed, examples, shards)


def test_the_arguments_give_the_campaigns_tools_fuzz_always_ran():
    args = parser().parse_args(["100", "3"])
    assert plan_from_arguments(args) == (
        3,
        {"programs": 100, "system": 50, "tier-programs": 10, "tier-system": 5},
    )
    args = parser().parse_args(["7", "9", "21", "--campaigns", "system,tier-system"])
    assert plan_from_arguments(args) == (9, {"system": 21, "tier-system": 3})


def _tally(name, digests, rules, broken=()):
    return Tally(name, len(digests), len(digests) + 1, 100 * len(digests),
                 tuple(sorted(digests)), tuple(sorted(rules)), tuple(broken))  # fmt: skip


def _result(kind, index, tallies, failures=(), counters=()):
    key = ShardKey(kind, 5, index)
    return ShardResult(key, 3, f"rerun {kind} {index}", tuple(tallies), counters, failures)


def test_merge_gives_one_report_in_any_order():
    tier = (("tier campaign", (("instructions", 40), ("batches", 2))),)
    results = [
        _result("programs", 0, [_tally("random programs", {"a", "b"}, [("epc-bit0", "csr", 2)])]),
        _result(
            "programs",
            1,
            [_tally("random programs", {"b", "c"}, [("epc-bit0", "csr", 1), ("x", "amo", 4)])],
            failures=(Failure("t.py::agree", "E   rvh diff: divergence\n@reproduce_failure"),),
        ),
        _result(
            "system",
            0,
            [_tally("system programs", {"s"}, [], broken=["x fired on a load instruction"])],
        ),
        _result("tier-programs", 1, [], counters=tier),
        _result("tier-programs", 0, [], counters=tier),
        _result("tier-system", 0, [], failures=(Failure("(pytest)", "status 3"),)),
    ]
    reports = {merge(order) for order in itertools.permutations(results)}
    assert len(reports) == 1
    report = reports.pop()
    programs, system = report.tallies
    assert (programs.name, programs.distinct, programs.batches) == ("random programs", 3, 4)
    assert programs.rules == (("epc-bit0", "csr", 3), ("x", "amo", 4))
    assert system.distinct == 1 and report.broken == ("x fired on a load instruction",)
    assert report.counters == (("tier campaign", (("instructions", 80), ("batches", 4))),)
    assert [r.key.kind for r in report.failed] == ["programs", "tier-system"]
    assert not report.ok
    text = report.text()
    assert text.splitlines()[0] == (
        "random programs: 6 programs (3 distinct) in 4 batches, 400 instructions compared"
    )
    assert "tier campaign: {'instructions': 80, 'batches': 4}" in text
    assert "deviation rules outside their budget:\n  x fired on a load instruction" in text
    failed = text[text.index("FAILED") :]
    assert failed.splitlines() == [
        "FAILED programs shard 1 (seed 5001), 3 examples; rerun it with",
        "  rerun programs 1",
        "t.py::agree:",
        "E   rvh diff: divergence",
        "@reproduce_failure",
        "FAILED tier-system shard 0 (seed 5000), 3 examples; rerun it with",
        "  rerun tier-system 0",
        "(pytest):",
        "status 3",
        "fuzz: 2 of 6 shards failed",
    ]
    with pytest.raises(ValueError, match="twice"):
        merge(results + results[:1])


def test_a_tally_prints_the_campaigns_own_table():
    """The merged table is CampaignStats.report's, from what CampaignStats.summary writes."""
    sys.path.insert(0, str(ROOT / "tests" / "system" / "lockstep"))
    try:
        from campaign import CAMPAIGNS, CampaignStats
    finally:
        sys.path.pop(0)
    stats = CampaignStats("random programs")
    CAMPAIGNS.remove(stats)  # not a campaign of this session
    stats.batches, stats.programs, stats.instructions = 2, 5, 321
    stats.keys = {"d1", "d2", "d3"}
    stats.rules = Counter({("reset-mideleg", "reset"): 1, ("epc-bit0", "csr"): 7})
    report = {"campaigns": [stats.summary()], "counters": {}, "failures": []}
    shard = Shard(ShardKey("programs", 1, 0), 2, str(ROOT))
    (tally,) = shard_result(shard, report, 0, "").tallies
    assert tally.report() == stats.report()
    stats.rules = Counter()
    tally = shard_result(shard, {**report, "campaigns": [stats.summary()]}, 0, "").tallies[0]
    assert tally.report() == stats.report()


def test_a_shard_whose_task_fails_is_a_failed_shard():
    shard = Shard(ShardKey("programs", 3, 1), 2, str(ROOT))

    def lost() -> ShardResult:
        raise OSError("worker lost")

    result = _finished(shard, lost)
    assert result.failures == (Failure("(task)", "the shard's task failed: OSError: worker lost"),)
    assert merge([result]).text().endswith("fuzz: 1 of 1 shards failed")


def test_a_shard_without_a_report_fails_with_its_output():
    shard = Shard(ShardKey("system", 1, 2), 4, str(ROOT))
    output = "".join(f"line {n}\n" for n in range(100))
    result = shard_result(shard, None, 4, output)
    assert not result.passed and result.rerun == shard.rerun_command()
    (failure,) = result.failures
    assert failure.test == "(pytest)"
    lines = failure.report.splitlines()
    assert lines[0] == "pytest exited with status 4:" and lines[1:] == [
        f"line {n}" for n in range(60, 100)
    ]
    # a report with no failed test but a failing status: the status still fails the shard
    empty = {"campaigns": [], "counters": {}, "failures": []}
    assert not shard_result(shard, empty, 1, "boom").passed
    assert shard_result(shard, empty, 0, "").passed


@pytest.mark.qemu
@pytest.mark.slow  # runs twelve shards of a small campaign on QEMU
def test_dask_local_cluster_and_the_pool_match_a_serial_run():
    shards = plan(11, {"programs": 4, "system": 2}, 2)
    serial = merge(run_shards(shards, serial=True))
    on_dask = merge(run_shards(shards, dask="", workers=2))
    on_pool = merge(run_shards(shards, workers=2))
    assert on_dask == serial and on_pool == serial
    assert on_dask.text() == serial.text()
    assert serial.ok and serial.shards == 4, serial.text()
    programs, system = serial.tallies
    assert (programs.name, programs.batches) == ("random programs", 4)
    assert (system.name, system.batches) == ("system programs", 2)
    assert programs.distinct >= 4 and programs.instructions > 0
    assert serial.text().endswith("fuzz: 4 shards passed")


@pytest.mark.qemu
@pytest.mark.slow  # runs a shard on QEMU through each path
def test_an_existing_cluster_gives_the_report_of_the_local_pool():
    """tools/fuzz --dask ADDRESS, at a running scheduler (a LocalCluster's, here)."""
    from distributed import LocalCluster

    arguments = ("3", "9", "--shards", "2", "--campaigns", "programs")
    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster:
        on_cluster = _fuzz(*arguments, "--dask", cluster.scheduler_address)
    on_pool = _fuzz(*arguments)
    assert on_cluster.returncode == 0, on_cluster.stdout + on_cluster.stderr
    assert on_cluster.stdout == on_pool.stdout
    assert on_cluster.stdout.startswith("fuzz: seed 9, up to 2 shards per campaign; batches: ")
    assert "random programs: " in on_cluster.stdout
    assert on_cluster.stdout.endswith("fuzz: 2 shards passed\n")


def _fuzz(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RVH_PYTHON": sys.executable, **environment}
    return subprocess.run([str(FUZZ), *args], capture_output=True, text=True, env=env, timeout=300)


def test_a_failing_shard_fails_the_run_with_the_command_that_reruns_it():
    """No QEMU where the shard looks for it: its tests fail, and the report says how."""
    run = _fuzz("2", "5", "1", "--shards", "1", "--campaigns", "programs",
                RVH_QEMU="/nonexistent/qemu")  # fmt: skip
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "fuzz: seed 5, up to 1 shards per campaign; batches: programs 2"
    assert lines[1] == "FAILED programs shard 0 (seed 5000), 2 examples; rerun it with"
    assert lines[2] == (
        "  RVH_FUZZ_EXAMPLES=2 RVH_FUZZ_SEED=5000 RVH_FUZZ_MIN_PROGRAMS=0 python -m pytest -q -s "
        f"-p no:cacheprovider --tb=short {RANDOM_TESTS} --hypothesis-seed=5000"
    )
    assert lines[3] == "tests/system/lockstep/test_random_programs.py::" + (
        "test_random_programs_agree_with_qemu:"
    )
    assert "/nonexistent/qemu not found" in lines[4]
    assert lines[-1] == "fuzz: 1 of 1 shards failed"
    assert run.stderr == "fuzz: programs shard 0 (seed 5000) FAILED (1/1)\n"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["10", "x"], "argument SEED: 'x' is not a number"),
        (["1", "2", "3", "4"], "unrecognized arguments: 4"),
        (["--shards", "0"], "argument --shards: give at least 1"),
        (["--campaigns", "programs,nope"], "argument --campaigns: 'programs,nope'"),
        (["--dask", "nonsense://host:1"], "--dask nonsense://host:1: unknown address scheme"),
        (["--dask", "host-without-port"], "--dask host-without-port: missing port"),
        (["--dask", "tcp://127.0.0.1:PORT"], "cannot reach the scheduler: [Errno 111]"),
        # a server that accepts and never answers: distributed alone would wait for ever
        (["--dask", "tcp://127.0.0.1:SILENT"], "cannot reach the scheduler: no handshake"),
    ],
)
def test_bad_arguments_are_one_line_with_status_2(args, message):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = str(silent.getsockname()[1])
        args = [arg.replace("PORT", str(_closed_port())).replace("SILENT", port) for arg in args]
        run = _fuzz(*args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("tools/fuzz: "), run.stderr
    assert message in run.stderr


def test_a_bare_dask_before_the_examples_is_a_local_cluster():
    args = parser().parse_args(separate_dask_address(["--dask", "200", "7"]))
    assert (args.dask, args.examples, args.seed) == ("", 200, 7)
    args = parser().parse_args(separate_dask_address(["200", "--dask", "tcp://h:8786"]))
    assert (args.dask, args.examples) == ("tcp://h:8786", 200)
    assert set(KIND_NAMES) == set(plan_from_arguments(parser().parse_args([]))[1])

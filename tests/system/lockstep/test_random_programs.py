"""Random programs agree on rvh and QEMU 7.2, instruction by instruction (the CI share of the
campaign; ``tools/fuzz`` runs a longer one), and a deliberately broken instruction is caught
and shrunk to a minimal program.

Each hypothesis example is one ELF holding a batch of programs (tests/diff/randprog.py), run
once on QEMU with single-stepped state dumps and in lockstep on rvh.  On a divergence the
shrinker reduces the batch to the fewest, shortest programs that still diverge, and the
assertion message is ``rvh diff``'s report.  The examples are derandomized in CI (the same
batches every run); ``RVH_FUZZ_EXAMPLES`` and ``RVH_FUZZ_SEED`` (tools/fuzz) change that.
"""

from __future__ import annotations

import os
import tempfile

import pytest
from campaign import CampaignStats
from hypothesis import HealthCheck, find, given, settings
from randprog import Branch, IndirectJump, Insn, build_batch, elf_image
from strategies import batches

from rvh.cpu import tables as T
from rvh.diff import DiffResult, diff_elf, format_report, qemu_available, run_qemu
from rvh.isa.instructions import Op

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed"),
]

EXAMPLES = int(os.environ.get("RVH_FUZZ_EXAMPLES", "200"))
SEED = os.environ.get("RVH_FUZZ_SEED")
MIN_PROGRAMS = int(os.environ.get("RVH_FUZZ_MIN_PROGRAMS", "1000"))
stats = CampaignStats("random programs")


def run_batch(hypervisor, programs, *, tables_hook=None, context=12) -> tuple[DiffResult, str]:
    """Build, run on QEMU and compare; returns the result and the report."""
    with tempfile.TemporaryDirectory(prefix="rvh-fuzz-") as tmp:
        path = os.path.join(tmp, "batch.elf")
        with open(path, "wb") as out:
            out.write(elf_image(build_batch(programs)))
        reference = run_qemu(path, hypervisor=hypervisor, max_instructions=200_000, timeout=60)
        assert not reference.truncated, "a random batch did not finish on QEMU"
        result = diff_elf(
            path, reference.trace, hypervisor=hypervisor, context=context, tables_hook=tables_hook
        )
        return result, format_report(result)


campaign = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=SEED is None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


@campaign
@given(batch=batches())
def test_random_programs_agree_with_qemu(batch):
    hypervisor, programs = batch
    result, report = run_batch(hypervisor, programs)
    broken = stats.record(programs, result, build_batch(programs))
    assert result.ok, f"H={'on' if hypervisor else 'off'}\n{report}"
    assert not broken, "deviation rules outside their budget:\n" + "\n".join(broken)


def test_campaign_size():
    """Runs after the campaign (file order): CI must have compared 1,000 *distinct* programs
    (hypothesis repeats some), and prints how often each deviation rule fired."""
    if stats.batches == 0:
        pytest.fail("the campaign did not run in this session (run the whole file)")
    print("\n" + stats.report())
    assert stats.distinct >= MIN_PROGRAMS, stats.report()
    assert not stats.broken


def break_sub(tables):
    """A test-only build: every encoding that decodes to SUB (sub, c.sub) executes as ADD."""
    first = int(tables[T.T_ENTRIES])
    for row in range(first, int(tables[T.T_CSRS]), T.ENTRY_FIELDS):
        if tables[row + T.ENTRY_OP] == Op.SUB:
            tables[row + T.ENTRY_OP] = Op.ADD


def _instructions(program):
    return [item for item in program.body if not isinstance(item, (Branch, IndirectJump))]


def test_seeded_divergence_is_caught_and_shrunk():
    """Break sub in one machine's decode table: the campaign must find it, and hypothesis must
    shrink the failing batch to one program whose body is the one broken instruction."""

    def diverges(batch):
        hypervisor, programs = batch
        result, _ = run_batch(hypervisor, programs, tables_hook=break_sub)
        return not result.ok

    minimal = find(
        batches(max_programs=3, max_items=8, hypervisor=False),
        diverges,
        settings=settings(
            max_examples=300,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        ),
    )
    hypervisor, programs = minimal
    # shrunk to a few one-instruction programs: the broken sub, and at most what gives its
    # operands values that tell sub from add (the shrink's path decides which)
    assert len(programs) <= 3 and all(len(program.body) == 1 for program in programs), programs
    subs = [
        item
        for program in programs
        for item in program.body
        if isinstance(item, Insn) and item.name in ("sub", "c.sub")
    ]
    assert len(subs) == 1, programs
    result, report = run_batch(hypervisor, programs, tables_hook=break_sub)
    assert not result.ok
    assert result.divergence.disassembly.startswith(subs[0].name), report
    # the same program on the real decode table agrees with QEMU
    assert run_batch(hypervisor, programs)[0].ok

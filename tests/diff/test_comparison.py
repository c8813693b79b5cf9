"""The comparison (rvh/diff/comparison.py, rvh/diff/stepper.py): a divergence is reported with
its context, a trap loop ends the comparison, a long one reports progress."""

from __future__ import annotations

import numpy as np
import pytest
from support import GUESTS, build_elf

from rvh.cpu import tables as T
from rvh.diff import (
    Stepper,
    comparison,
    diff_elf,
    format_report,
    make_machine,
    qemu_available,
    run_qemu,
)
from rvh.diff.common import TrapLoopError
from rvh.isa.instructions import Op
from rvh.loader import read_elf

needs_qemu = pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed")

# M-mode code that traps for good.  ECALL_LOOP: an ecall with mtvec = 0 (its reset value),
# then fetch faults at 0 for ever, which QEMU does not show.  ILLEGAL_LOOP: mtvec at an
# illegal instruction, which traps to itself, which QEMU shows each time.
ECALL_LOOP = "ecall"
ILLEGAL_LOOP = "la t0, trap\ncsrw mtvec, t0\n.balign 4\ntrap: .word 0"


def guest(name: str):
    elf = GUESTS / "isa" / f"{name}.elf"
    if not elf.exists():
        pytest.skip("guests not built (make guests)")
    return elf


def break_xor(tables):
    for row in range(int(tables[T.T_ENTRIES]), int(tables[T.T_CSRS]), T.ENTRY_FIELDS):
        if tables[row + T.ENTRY_OP] == Op.XOR:
            tables[row + T.ENTRY_OP] = Op.OR


@pytest.mark.qemu
@needs_qemu
def test_a_broken_instruction_is_reported_with_context():
    elf = guest("rv64i")
    reference = run_qemu(elf, hypervisor=True).trace
    result = diff_elf(elf, reference, hypervisor=True, context=5, tables_hook=break_xor)
    assert not result.ok
    report = format_report(result, elf=str(elf))
    divergence = result.divergence
    assert divergence.disassembly.startswith("xor")
    assert len(divergence.context) == 5 and divergence.context[-1].pc == divergence.pc
    assert "first divergence at instruction" in report and "QEMU 7.2" in report
    assert "reproduce: rvh diff" in report


def test_traps_ahead_counts_a_trap_loop_and_puts_the_hart_back(tmp_path):
    machine = make_machine(
        build_elf(ECALL_LOOP, tmp_path / "loop.elf"), hypervisor=False, output=None
    )
    stepper = Stepper(machine, ["pc", "mcause", "mepc"])
    for _ in range(6):  # the boot ROM, up to the ecall at the entry
        stepper.step()
    before = stepper.state.copy()
    assert stepper.traps_ahead(100) == (100, 1, 0)  # instruction access faults at 0
    assert np.array_equal(stepper.state, before)
    assert stepper.traps_ahead(1) == (1, 11, 0x8000_0000)  # the ecall itself (from M)
    # an instruction that retires ends the count: the boot ROM's first one
    fresh = Stepper(make_machine(guest("rv64i"), hypervisor=False, output=None), ["pc"])
    assert fresh.traps_ahead(100) == (0, -1, 0x1000)


@pytest.mark.qemu
@needs_qemu
def test_a_silent_trap_loop_ends_the_comparison(tmp_path):
    elf = build_elf(ECALL_LOOP, tmp_path / "loop.elf")
    with pytest.raises(TrapLoopError) as ended:
        diff_elf(elf, hypervisor=False, trap_cap=500)
    message = ended.value.message
    assert message.startswith("500 traps in a row and no instruction retired")
    assert "instruction access fault at 0x0" in message
    assert "after 7 instruction boundaries agreed" in message
    assert "did you mean an S-mode payload? rvh diff runs the ELF bare, as M-mode" in message


@pytest.mark.qemu
@needs_qemu
def test_a_trap_loop_qemu_shows_ends_the_comparison(tmp_path):
    elf = build_elf(ILLEGAL_LOOP, tmp_path / "illegal.elf")
    with pytest.raises(TrapLoopError) as ended:
        diff_elf(elf, hypervisor=False, trap_cap=50)
    trap = read_elf(elf).symbols["trap"]
    assert ended.value.message.startswith("50 traps in a row and no instruction retired")
    assert f"illegal instruction at {trap:#x}" in ended.value.message


@pytest.mark.qemu
@needs_qemu
def test_max_insns_ends_a_silent_trap_loop(tmp_path):
    # traps count towards --max-insns, as in rvh run: the reference is cut there
    elf = build_elf(ECALL_LOOP, tmp_path / "loop.elf")
    result = diff_elf(elf, hypervisor=False, max_instructions=300)
    assert result.ok and result.reference_truncated
    assert result.instructions == 7 and result.traps_at_end == 300 - 7


@pytest.mark.qemu
@needs_qemu
def test_a_long_comparison_reports_progress(monkeypatch):
    monkeypatch.setattr(comparison, "PROGRESS_EVERY", 0.0)
    reports: list[tuple[int, int]] = []
    result = diff_elf(guest("rv64m"), hypervisor=False, progress=lambda *r: reports.append(r))
    assert result.ok
    assert reports and all(0 <= compared <= rows for compared, rows in reports)
    assert [compared for compared, _ in reports] == sorted(c for c, _ in reports)

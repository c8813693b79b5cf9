"""Every bare-metal guest that runs on QEMU's virt board matches QEMU 7.2 instruction by
instruction, from the reset vector to the exit (rvh/diff/; known QEMU deviations are applied
and listed in docs/testing.md).

The ISA and privileged guests are compared with the H extension on (rvh's default, QEMU
``h=true``) and off.  Guests that are not compared here: ``htif/`` (they need QEMU's spike
machine, a different board), ``bench/`` (250 M instructions each), ``smode/`` and ``virtio/``
(S-mode payloads under an SBI firmware: rvh's built-in SBI is Python, not instructions)."""

from __future__ import annotations

import pytest
from support import GUESTS

from rvh.diff import diff_elf, format_report, qemu_available, run_qemu

pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed"),
]

ISA = [
    "rv64i",
    "rv64i_mem",
    "rv64m",
    "rv64a",
    "rv64c",
    "zicsr",
    "mtraps",
    "rv64f",
    "rv64d",
    "sdtrig",
]
CASES = [(f"isa/{name}", h) for name in ISA for h in (True, False)]
CASES += [("hello/hello", True), ("hello/hello_picolibc", True)]


@pytest.mark.parametrize("guest, hypervisor", CASES, ids=[f"{g}-h{int(h)}" for g, h in CASES])
def test_guest_matches_qemu(guest, hypervisor):
    elf = GUESTS / f"{guest}.elf"
    if not elf.exists():
        pytest.skip("guests not built (make guests)")
    reference = run_qemu(elf, hypervisor=hypervisor, max_instructions=200_000)
    assert not reference.truncated
    result = diff_elf(elf, reference.trace, hypervisor=hypervisor, context=20)
    report = format_report(result, elf=str(elf))
    assert result.ok, report
    assert result.instructions == len(reference.trace)
    assert result.rvh_exit == result.reference_exit == 0, report


def _program(*instructions: tuple[str, dict]) -> bytes:
    """A bare-metal ELF: the instructions, then the exit through the test device."""
    from randprog import BASE, Assembler, elf_image

    asm = Assembler(BASE)
    for name, operands in instructions:
        asm.emit(name, **operands)
    asm.emit("lui", rd=5, imm=0x100 << 12)
    asm.emit("lui", rd=6, imm=0x5 << 12)
    asm.emit("addiw", rd=6, rs1=6, imm=0x555)
    asm.emit("sw", rs1=5, rs2=6, imm=0)
    asm.emit("jal", rd=0, imm=0)
    return elf_image(bytes(asm.code))


def test_medeleg_delegates_hypervisor_exceptions(tmp_path):
    """Found by the random campaign: with H, M-mode must be able to delegate ecalls from VS,
    guest-page faults and virtual-instruction exceptions (privileged 8.4.2).  QEMU also lets
    medeleg[11] be written (a known deviation), which the comparison follows."""
    elf = tmp_path / "medeleg.elf"
    elf.write_bytes(
        _program(
            ("addi", {"rd": 5, "rs1": 0, "imm": -1}),
            ("csrrw", {"rd": 0, "rs1": 5, "csr": 0x302}),  # medeleg = all ones
            ("csrrs", {"rd": 10, "rs1": 0, "csr": 0x302}),
        )
    )
    result = diff_elf(elf, hypervisor=True)
    assert result.ok, format_report(result)

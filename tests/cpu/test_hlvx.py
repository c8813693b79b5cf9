"""HLVX.HU/HLVX.WU on a real hart: the read needs execute permission in both stages of
translation, never read permission, whatever MXR says; the PMP must grant read and execute.

H 1.0 (privileged spec 20211203) 8.3.1: "HLVX.HU and HLVX.WU are the same as HLV.HU and
HLV.WU, except that execute permission takes the place of read permission during address
translation.  That is, the memory being read must be executable in both stages of address
translation, but read permission is not required.  For the supervisor physical address that
results from address translation, the supervisor physical memory attributes must grant both
execute and read permissions."  So a VS-stage page without X is a load page fault, a G-stage
page without X a load guest-page fault (8.5.1), and MXR (which makes X pages readable for
loads, 3.1.6.3) changes nothing: HLVX already reads X pages and never reads others.
"""

from __future__ import annotations

import struct

import pytest
from support import run_asm

pytestmark = pytest.mark.usefixtures("toolchain")

RAM = 0x8000_0000
G_ROOT = RAM + 0x10_0000  # 16 KiB, Sv39x4
VS_ROOT = RAM + 0x10_4000
VA = 0x4000_0000  # the VS-stage gigapage HLVX reads through
GPA_TEST = 0xC000_0000  # a G-stage gigapage with the flags under test, onto RAM too
V, R, W, X, U, A, D = 1, 2, 4, 8, 16, 64, 128
SV39 = 8 << 60
LOAD_ACCESS_FAULT, LOAD_PAGE_FAULT, LOAD_GUEST_PAGE_FAULT = 5, 13, 21
NO_TRAP = (1 << 64) - 1
PMP_RWX, PMP_R, PMP_X = 0x1F, 0x19, 0x1C  # NAPOT over all memory


def tables(vs_flags: int, g_flags: int | None):
    """The page tables: GPA 0x8000_0000 is RAM (G-stage RWXU); VA 0x4000_0000 maps, at the
    VS-stage with ``vs_flags``, to GPA 0x8000_0000 or, when ``g_flags`` is given, to GPA
    0xC000_0000, which the G-stage maps onto RAM with ``g_flags``.  All leaves are gigapages."""

    def setup(machine) -> None:
        def pte(address: int, pa: int, flags: int) -> None:
            machine.bus.write_bytes(address, struct.pack("<Q", (pa >> 12) << 10 | flags | V))

        pte(G_ROOT + 8 * (RAM >> 30), RAM, R | W | X | U | A | D)
        if g_flags is not None:
            pte(G_ROOT + 8 * (GPA_TEST >> 30), RAM, g_flags | A | D)
        pte(VS_ROOT + 8 * (VA >> 30), RAM if g_flags is None else GPA_TEST, vs_flags | A | D)

    return setup


def hlvx(vs_flags: int, g_flags: int | None = None, *, mxr: bool = False, pmp: int = PMP_RWX):
    """HLVX.WU from M-mode (hstatus.SPVP = 1: as VS-mode) of the word at ``target``; returns
    (mcause or NO_TRAP, mtval, mtval2, mstatus.GVA, the value read, the word's bits)."""
    s = run_asm(
        f"""
        .option norvc
        .option arch, +h
        la t0, 90f
        csrw mtvec, t0
        li t0, -1
        csrw pmpaddr0, t0
        li t0, {pmp}
        csrw pmpcfg0, t0
        li t0, {SV39 | (G_ROOT >> 12):#x}
        csrw hgatp, t0
        li t0, {SV39 | (VS_ROOT >> 12):#x}
        csrw vsatp, t0
        li t0, 1 << 8               # hstatus.SPVP: the access is VS-mode's
        csrs hstatus, t0
        li t0, 1 << 19              # MXR
        {"csrs" if mxr else "csrc"} mstatus, t0
        {"csrs" if mxr else "csrc"} vsstatus, t0
        li s9, -1
        li a0, 0
        la t1, target
        li t2, {VA - RAM:#x}
        add t1, t1, t2
        hlvx.wu a0, (t1)
        la t1, target
        lwu a1, 0(t1)
        j __snippet_end
        .balign 4
    90: csrr s9, mcause
        csrr s10, mtval
        csrr s11, mtval2
        csrr s6, mstatus
        csrr t0, mepc
        addi t0, t0, 4
        csrw mepc, t0
        mret
        .balign 4
    target:
        addi a7, a7, 0x123          # the word HLVX reads
""",
        setup=tables(vs_flags, g_flags),
    )
    return s.x(25), s.x(26), s.x(27), (s.x(22) >> 38) & 1, s.x(10), s.x(11)


def test_execute_only_pages_are_read():
    cause, *_, value, bits = hlvx(X)
    assert (cause, value) == (NO_TRAP, bits)
    cause, *_, value, bits = hlvx(X, X | U)  # G-stage execute-only too
    assert (cause, value) == (NO_TRAP, bits)


@pytest.mark.parametrize("mxr", [False, True])
def test_a_vs_stage_page_without_x_is_a_load_page_fault(mxr):
    cause, tval, _, gva, value, _ = hlvx(R | W, mxr=mxr)
    assert (cause, tval - VA, gva, value) == (LOAD_PAGE_FAULT, tval - VA, 1, 0)
    assert VA <= tval < VA + 0x1000_0000  # the guest virtual address


@pytest.mark.parametrize("mxr", [False, True])
def test_a_g_stage_page_without_x_is_a_load_guest_page_fault(mxr):
    cause, tval, tval2, gva, value, _ = hlvx(X, R | W | U, mxr=mxr)
    assert (cause, gva, value) == (LOAD_GUEST_PAGE_FAULT, 1, 0)
    assert tval2 << 2 == GPA_TEST + (tval - VA)  # mtval2: the guest physical address >> 2


@pytest.mark.parametrize("pmp", [PMP_R, PMP_X])
def test_the_pmp_must_grant_read_and_execute(pmp):
    cause, *_ = hlvx(X, pmp=pmp)
    assert cause == LOAD_ACCESS_FAULT

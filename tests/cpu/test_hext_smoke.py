"""First checks of the H extension: entering VS/VU, ecall causes, VS CSR redirection, a G-stage
mapping.  The thorough checks are the guests/hext programs."""

from support import needs_toolchain, run_asm

pytestmark = needs_toolchain

# M-mode trap handler that records mcause/mepc/mtval/mstatus and stops
HANDLER = """
    li t0, -1
    csrw pmpaddr0, t0       # PMP entry 0: all memory, R/W/X for S and U
    li t0, 0x1f
    csrw pmpcfg0, t0
    la t0, 9f
    csrw mtvec, t0
    j 8f
.balign 4
9:  csrr s2, mcause
    csrr s3, mepc
    csrr s4, mtval
    csrr s5, mstatus
    csrr s6, mtval2
    csrr s7, mtinst
    j __snippet_end
8:
"""


def enter(mode_bits: str) -> str:
    """mret into the label 1f with MPP/MPV as given."""
    return f"""
    li t0, (3 << 11) | (1 << 39)
    csrc mstatus, t0
    li t0, {mode_bits}
    csrs mstatus, t0
    la t0, 1f
    csrw mepc, t0
    mret
1:
"""


def test_ecall_from_vs_and_vu():
    vs = run_asm(HANDLER + enter("(1 << 11) | (1 << 39)") + "ecall\n")
    assert vs.x(18) == 10  # ecall from VS
    assert vs.x(21) >> 39 & 1  # MPV = 1
    assert (vs.x(21) >> 11) & 3 == 1  # MPP = S
    vu = run_asm(HANDLER + enter("(0 << 11) | (1 << 39)") + "ecall\n")
    assert vu.x(18) == 8  # ecall from VU
    assert vu.x(21) >> 39 & 1


def test_vs_csr_accesses_go_to_vs_registers():
    s = run_asm(
        HANDLER
        + enter("(1 << 11) | (1 << 39)")
        + """
        li t1, 0x1234
        csrw sscratch, t1
        li t1, 0x80001000
        csrw stvec, t1
        ecall
    """
    )
    assert s.x(18) == 10
    assert s.csr("vsscratch") == 0x1234 and s.csr("sscratch") == 0
    assert s.csr("vstvec") == 0x80001000 and s.csr("stvec") == 0


def test_vs_accessing_hstatus_is_a_virtual_instruction():
    s = run_asm(HANDLER + enter("(1 << 11) | (1 << 39)") + "csrr t1, hstatus\n")
    assert s.x(18) == 22
    assert s.x(20) == 0x60002373  # csrr t1, hstatus


def test_guest_stage_maps_and_faults():
    # G-stage Sv39x4: one 1 GiB leaf at GPA 0x8000_0000 -> HPA 0x8000_0000 (U, R, W, X),
    # nothing else: a guest load from GPA 0x4000_0000 is a load guest-page fault
    s = run_asm(
        HANDLER
        + """
        la t0, groot
        srli t0, t0, 12
        li t1, 8 << 60
        or t0, t0, t1
        csrw hgatp, t0
        la t2, groot
        li t3, (0x80000000 >> 12) << 10 | 0xdf   # V R W X U A D
        sd t3, 16(t2)                              # GPA index 2 = 0x8000_0000 / 1 GiB
    """
        + enter("(1 << 11) | (1 << 39)")
        + """
        la t4, value
        ld a0, 0(t4)            # through both stages (vsatp Bare): works
        li t5, 0x40000010
        ld a1, 0(t5)            # GPA 0x4000_0010: not mapped
    .balign 16384
    groot: .fill 2048, 8, 0
    value: .dword 0x5a5a
    """
    )
    assert s.x(10) == 0x5A5A
    assert s.x(18) == 21  # load guest-page fault
    assert s.x(20) == 0x40000010  # mtval: the guest virtual address
    assert s.x(22) == 0x40000010 >> 2  # mtval2: guest physical address >> 2
    assert s.x(21) >> 38 & 1  # mstatus.GVA
    # mtinst: the transformed `ld a1, 0(t5)`: immediate and rs1 field zero
    assert s.x(23) == 0x0005_3583 & ~(0x1F << 15)

"""Exceptions, interrupts and trap return in M-mode (privileged spec 3.1.6-3.1.9, 3.1.14-16,
3.2, 3.3; the CLINT of QEMU's virt board for timer and software interrupts).

A trap saves the pc in mepc, the cause in mcause (bit 63 set for interrupts) and mtval (the
address or instruction bits, else 0), stacks MIE into MPIE and the old mode into MPP, and
jumps to mtvec's base (or base + 4 * cause for interrupts in vectored mode).  MRET undoes it:
mode := MPP, MIE := MPIE, MPIE := 1, MPP := U (the least-privileged supported mode).
Interrupt priority (3.1.9): MEI > MSI > MTI > SEI > SSI > STI.
"""

import pytest
from support import needs_toolchain, run_asm

from rvh.config import RAM_BASE

pytestmark = needs_toolchain

INTERRUPT = 1 << 63
CLINT_MSIP = 0x0200_0000
CLINT_MTIMECMP = 0x0200_4000
CLINT_MTIME = 0x0200_BFF8
LOG = 0x8010_0000

# Records a trap: s9 = mepc, s10 = mcause, s11 = mtval, s7 = mstatus, then ends the snippet
# with every interrupt disabled (the final wfi only stops when none is pending and enabled).
HANDLER = """
        .option norvc
        la t0, 90f
        csrw mtvec, t0
        li t0, 0xdead
        csrw mtval, t0
        j 91f
        .balign 4
    90: csrr s9, mepc
        csrr s10, mcause
        csrr s11, mtval
        csrr s7, mstatus
        csrw mie, zero
        j __snippet_end
    91:
"""

# Everything is allowed to S and U through PMP entry 0 (NAPOT over the whole address space),
# as the riscv-tests do: without a matching entry, S/U accesses may fail (3.7.1).
OPEN_PMP = """
        li t0, -1
        csrw pmpaddr0, t0
        li t0, 0x1f
        csrw pmpcfg0, t0
"""


def run(source: str, *, align: int = 8, **kwargs):
    """run_asm, padding the snippet so that its final wfi ends the binary: run_asm finds
    the wfi from the binary's length, which the linker rounds up to the section alignment
    (``align``, the largest .balign the snippet uses)."""
    pad = f"\n.balign {align}\n.option norvc\n.fill {align // 4 - 1}, 4, 0x00000013\n"
    return run_asm(source + pad, **kwargs)


# ---- synchronous exceptions ------------------------------------------------------------


def test_ecall_from_m_mode():
    s = run(HANDLER + "la s8, 1f\n1: ecall\nli a0, 1")
    assert s.x(26) == 11
    assert s.x(25) == s.x(24), "mepc is the ecall's address"
    assert s.x(27) == 0, "mtval is zero for ecall"
    assert s.x(10) == 0


def test_ebreak():
    s = run(HANDLER + "la s8, 1f\n1: ebreak\nli a0, 1")
    assert s.x(26) == 3
    assert s.x(25) == s.x(24)
    # 3.1.16: mtval is zero or the address of the breakpoint
    assert s.x(27) in (0, s.x(24))
    assert s.x(10) == 0


def test_c_ebreak():
    s = run(HANDLER + "la s8, 1f\n.option rvc\n1: c.ebreak\nc.li a0, 1")
    assert s.x(26) == 3
    assert s.x(25) == s.x(24)
    assert s.x(27) in (0, s.x(24))
    assert s.x(10) == 0


@pytest.mark.parametrize(
    ("encoding", "bits"),
    [
        (".half 0x0000", 0x0000),  # the all-zero halfword
        (".word 0xffffffff", 0xFFFF_FFFF),
        (".word 0x00b5253b", 0x00B5_253B),  # OP-32 with funct3 = 2: reserved
        (".word 0x04b50533", 0x04B5_0533),  # OP with funct7 = 2: reserved
        (".word 0x0000707f", 0x0000_707F),  # opcode 1111111 (>= 80-bit prefix)
        (".word 0x30200073 | (1 << 15)", 0x3020_8073),  # mret with rs1 != 0
        (".word 0x6005c573", 0x6005_C573),  # hlv.b a0, (a1): no H extension
        (".word 0x62000073", 0x6200_0073),  # hfence.gvma: no H extension
        (".half 0x2000", 0x2000),  # c.fld: no D extension
        (".half 0x8002", 0x8002),  # c.jr zero: reserved
    ],
    ids=[
        "zero",
        "ones",
        "op32-f3-2",
        "op-f7-2",
        "long",
        "mret-rs1",
        "hlv",
        "hfence",
        "cfld",
        "cjr0",
    ],
)
def test_illegal_instruction_reports_its_bits(encoding, bits):
    s = run(HANDLER + f"li a0, 0x77\nla s8, 1f\n1: {encoding}\nli a0, 1", extensions="acimsu")
    assert s.x(26) == 2
    assert s.x(27) == bits
    assert s.x(25) == s.x(24)
    assert s.x(10) == 0x77


def test_trap_stacks_mie_and_mode():
    s = run(
        HANDLER
        + """
        li t0, 0x1888
        csrc mstatus, t0
        csrsi mstatus, 8
        ecall
        """
    )
    mstatus = s.x(23)
    assert mstatus & 0x8 == 0, "MIE cleared on trap entry"
    assert mstatus & 0x80, "MPIE = old MIE (1)"
    assert (mstatus >> 11) & 3 == 3, "MPP = M"


def test_trap_with_mie_clear_stacks_zero():
    s = run(HANDLER + "li t0, 0x1888\ncsrs mstatus, t0\ncsrci mstatus, 8\necall")
    assert s.x(23) & 0x88 == 0


# ---- mret --------------------------------------------------------------------------------


@pytest.mark.parametrize(("mpie", "mie_after"), [(1, 1), (0, 0)])
def test_mret_to_m_mode(mpie, mie_after):
    s = run(
        HANDLER
        + f"""
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1888
        csrc mstatus, t0
        li t0, 0x1800 | ({mpie} << 7)
        csrs mstatus, t0
        csrsi mstatus, {8 * (1 - mpie)}
        mret
        li a1, 1
    1:  csrr a0, mstatus
        """
    )
    assert s.x(26) == 0, "still in M-mode: reading mstatus is legal"
    assert s.x(11) == 0, "mret jumped to mepc"
    mstatus = s.x(10)
    assert (mstatus >> 3) & 1 == mie_after, "MIE := MPIE"
    assert (mstatus >> 7) & 1 == 1, "MPIE := 1"
    assert (mstatus >> 11) & 3 == 0, "MPP := U"


def test_mret_to_u_mode_then_ecall():
    s = run(
        HANDLER
        + OPEN_PMP
        + """
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        mret
    1:  la s8, 2f
    2:  ecall
        """
    )
    assert s.x(26) == 8, "ecall from U"
    assert s.x(25) == s.x(24)
    assert (s.x(23) >> 11) & 3 == 0, "MPP = U"


def test_mret_to_s_mode_then_ecall():
    s = run(
        HANDLER
        + OPEN_PMP
        + """
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 0x0800
        csrs mstatus, t0
        mret
    1:  csrr a0, sstatus
        la s8, 2f
    2:  ecall
        """
    )
    assert s.x(26) == 9, "ecall from S"
    assert s.x(25) == s.x(24)
    assert (s.x(23) >> 11) & 3 == 1, "MPP = S"


def test_mret_below_m_clears_mprv():
    s = run(
        HANDLER
        + OPEN_PMP
        + """
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 1 << 17
        csrs mstatus, t0
        mret
    1:  ecall
        """
    )
    assert s.x(26) == 8
    assert not (s.x(23) >> 17) & 1, "MPRV cleared by mret to U"


@pytest.mark.parametrize(
    ("instruction", "bits"),
    [
        ("csrr a0, mstatus", 0x3000_2573),
        ("csrr a0, sstatus", 0x1000_2573),
        ("mret", 0x3020_0073),
        ("sret", 0x1020_0073),
        ("wfi", 0x1050_0073),
    ],
)
def test_privileged_instruction_in_u_mode_is_illegal(instruction, bits):
    s = run(
        HANDLER
        + OPEN_PMP
        + f"""
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        mret
    1:  la s8, 2f
    2:  {instruction}
        """
    )
    assert s.x(26) == 2
    assert s.x(27) == bits
    assert s.x(25) == s.x(24)


# ---- interrupts ----------------------------------------------------------------------------


def test_machine_timer_interrupt():
    s = run(
        f"""
        .option norvc
        la t0, 9f
        csrw mtvec, t0
        li t1, {CLINT_MTIME:#x}
        ld s2, 0(t1)
        addi s2, s2, 100
        li t2, {CLINT_MTIMECMP:#x}
        sd s2, 0(t2)
        li t0, 0x80
        csrs mie, t0
        csrsi mstatus, 8
        la s8, 1f
    1:  j 1b
        .balign 4
    9:  csrr a0, mcause
        csrr a1, mepc
        csrr a2, mip
        ld a3, 0(t1)
        csrr a4, mtval
        csrr a5, mstatus
        csrw mie, zero
        """,
        max_insns=200_000,
    )
    assert s.x(10) == INTERRUPT | 7
    assert s.x(11) == s.x(24)
    assert s.x(12) & 0x80, "MTIP pending"
    assert s.x(13) >= s.x(18), "mtime reached mtimecmp"
    assert s.x(14) == 0, "mtval is zero for interrupts"
    assert s.x(15) & 0x88 == 0x80, "MIE cleared, MPIE set"


def test_machine_timer_interrupt_wakes_wfi():
    s = run(
        f"""
        .option norvc
        la t0, 9f
        csrw mtvec, t0
        li t1, {CLINT_MTIME:#x}
        ld s2, 0(t1)
        addi s2, s2, 10
        li t2, {CLINT_MTIMECMP:#x}
        sd s2, 0(t2)
        li t0, 0x80
        csrs mie, t0
        csrsi mstatus, 8
    1:  wfi
        j 1b
        .balign 4
    9:  csrr a0, mcause
        csrw mie, zero
        """,
        max_insns=200_000,
    )
    assert s.x(10) == INTERRUPT | 7


def test_timer_compare_is_unsigned():
    # mtimecmp = 2^63 is far in the future, not negative
    s = run(
        HANDLER
        + f"""
        li t2, {CLINT_MTIMECMP:#x}
        li t0, 1
        slli t0, t0, 63
        sd t0, 0(t2)
        li t0, 0x80
        csrs mie, t0
        csrsi mstatus, 8
        li t0, 200
    1:  addi t0, t0, -1
        bnez t0, 1b
        csrr a0, mip
        """
    )
    assert s.x(26) == 0
    assert s.x(10) & 0x80 == 0


def test_pending_interrupt_waits_for_mie():
    s = run(
        HANDLER
        + f"""
        li t2, {CLINT_MTIMECMP:#x}
        sd zero, 0(t2)
        li t0, 0x80
        csrs mie, t0
        nop
        csrr a0, mip
        wfi
        li a1, 1
        csrsi mstatus, 8
        li a2, 1
        """
    )
    assert s.x(10) & 0x80, "MTIP pending"
    assert s.x(11) == 1, "wfi returns when an enabled interrupt is pending, MIE or not"
    assert s.x(26) == INTERRUPT | 7, "taken once MIE is set"
    assert s.x(12) == 0


def test_machine_interrupt_taken_in_u_mode_regardless_of_mie():
    s = run(
        HANDLER
        + OPEN_PMP
        + f"""
        li t2, {CLINT_MTIMECMP:#x}
        sd zero, 0(t2)
        li t0, 0x80
        csrs mie, t0
        csrci mstatus, 8
        la s8, 1f
        csrw mepc, s8
        li t0, 0x1800
        csrc mstatus, t0
        mret
    1:  j 1b
        """
    )
    assert s.x(26) == INTERRUPT | 7
    assert s.x(25) == s.x(24)
    assert (s.x(23) >> 11) & 3 == 0, "MPP = U"


def test_machine_software_interrupt():
    s = run(
        HANDLER
        + f"""
        csrsi mie, 8
        csrsi mstatus, 8
        li t0, {CLINT_MSIP:#x}
        li t1, 1
        la s8, 1f
        sw t1, 0(t0)
    1:  j 1b
        """
    )
    assert s.x(26) == INTERRUPT | 3
    assert s.x(25) == s.x(24), "the interrupt is taken before the instruction after the store"
    assert s.x(27) == 0


def test_msip_reads_back_and_clears():
    s = run(
        f"""
        li t0, {CLINT_MSIP:#x}
        li t1, 1
        sw t1, 0(t0)
        lw a0, 0(t0)
        csrr a1, mip
        sw zero, 0(t0)
        lw a2, 0(t0)
        csrr a3, mip
        """
    )
    assert s.x(10) == 1
    assert s.x(11) & 0x8
    assert s.x(12) == 0
    assert s.x(13) & 0x8 == 0


def test_msi_has_priority_over_mti():
    s = run(
        HANDLER
        + f"""
        li t0, {CLINT_MSIP:#x}
        li t1, 1
        sw t1, 0(t0)
        li t2, {CLINT_MTIMECMP:#x}
        sd zero, 0(t2)
        csrr a0, mip
        li t0, 0x88
        csrs mie, t0
        csrsi mstatus, 8
        nop
        """
    )
    assert s.x(10) & 0x88 == 0x88, "both pending"
    assert s.x(26) == INTERRUPT | 3


def test_interrupt_priority_order():
    # Raise MSI, MTI, SEI, SSI and STI together; the handler logs mcause, clears that
    # source and returns, so the log shows the order in which they are taken.
    s = run(
        f"""
        .option norvc
        la t0, 9f
        csrw mtvec, t0
        li s1, {LOG:#x}
        li t0, 0x222
        csrs mip, t0
        li t4, {CLINT_MSIP:#x}
        li t1, 1
        sw t1, 0(t4)
        li t4, {CLINT_MTIMECMP:#x}
        sd zero, 0(t4)
        li t0, 0xaaa
        csrs mie, t0
        csrsi mstatus, 8
        nop
        li s2, 1
        j __snippet_end
        .balign 4
    9:  csrr t0, mcause
        sd t0, 0(s1)
        addi s1, s1, 8
        slli t0, t0, 1
        srli t0, t0, 1
        li t1, 1
        sll t1, t1, t0
        csrc mip, t1
        li t2, 7
        bne t0, t2, 1f
        li t3, -1
        li t4, {CLINT_MTIMECMP:#x}
        sd t3, 0(t4)
    1:  li t2, 3
        bne t0, t2, 2f
        li t4, {CLINT_MSIP:#x}
        sw zero, 0(t4)
    2:  mret
        """
    )
    assert s.x(18) == 1
    taken = [s.read(LOG + 8 * i, 8) for i in range(5)]
    assert taken == [INTERRUPT | 3, INTERRUPT | 7, INTERRUPT | 9, INTERRUPT | 1, INTERRUPT | 5]
    assert s.x(9) == LOG + 40, "five interrupts, each taken once"


def test_direct_mode_sends_interrupts_to_base():
    s = run(
        HANDLER
        + f"""
        csrsi mie, 8
        csrsi mstatus, 8
        li t0, {CLINT_MSIP:#x}
        li t1, 1
        sw t1, 0(t0)
        nop
        """
    )
    assert s.x(26) == INTERRUPT | 3


def test_vectored_mode():
    s = run(
        f"""
        .option norvc
        la t0, 10f
        ori t0, t0, 1
        csrw mtvec, t0
        csrr s6, mtvec
        li s2, 0
        li s3, 0
        li s4, 0
        li s5, 0
        ecall
        li t4, {CLINT_MSIP:#x}
        li t1, 1
        csrsi mie, 8
        csrsi mstatus, 8
        sw t1, 0(t4)
        nop
        li t4, {CLINT_MTIMECMP:#x}
        sd zero, 0(t4)
        li t0, 0x80
        csrs mie, t0
        nop
        j __snippet_end
        .balign 256
    10: j 20f
        j 29f
        j 29f
        j 23f
        j 29f
        j 29f
        j 29f
        j 27f
        j 29f
        j 29f
        j 29f
        j 29f
    20: csrr s2, mcause
        csrr t0, mepc
        addi t0, t0, 4
        csrw mepc, t0
        mret
    23: csrr s3, mcause
        li t4, {CLINT_MSIP:#x}
        sw zero, 0(t4)
        mret
    27: csrr s4, mcause
        li t3, -1
        li t4, {CLINT_MTIMECMP:#x}
        sd t3, 0(t4)
        mret
    29: li s5, 1
        j __snippet_end
        """,
        align=256,
    )
    assert s.x(22) & 3 == 1, "vectored mode is supported"
    assert s.x(21) == 0, "no trap went to a wrong vector"
    assert s.x(18) == 11, "exceptions go to the base"
    assert s.x(19) == INTERRUPT | 3, "MSI to base + 12"
    assert s.x(20) == INTERRUPT | 7, "MTI to base + 28"


def test_exception_in_handler_overwrites_trap_state():
    # a trap taken inside the handler (MIE already 0) stacks MIE = 0 and MPP = M
    s = run(
        """
        .option norvc
        la t0, 9f
        csrw mtvec, t0
        li s1, 0
        csrsi mstatus, 8
        ecall
        .balign 4
    9:  addi s1, s1, 1
        li t0, 2
        beq s1, t0, 1f
        ebreak
    1:  csrr a0, mcause
        csrr a1, mstatus
        """
    )
    assert s.x(9) == 2
    assert s.x(10) == 3
    assert s.x(11) & 0x88 == 0, "MPIE = MIE at the second trap = 0"
    assert (s.x(11) >> 11) & 3 == 3


@pytest.mark.parametrize("target", [0x2000_0000, 0x0, 0x0200_0000, 0x1000_0000])
def test_fetch_from_non_memory_faults(target):
    # nothing executable at these addresses: nothing, the CLINT, the UART
    s = run(HANDLER + "jalr ra, 0(a1)", regs={11: target})
    assert s.x(26) == 1
    assert s.x(25) == target
    assert s.x(27) == target


def test_fetch_straddling_end_of_ram():
    # the last halfword of RAM starts a 32-bit instruction (0x0513: low half of an addi):
    # mepc is its start, mtval the address of the part that faulted (3.1.16)
    s = run(HANDLER + "jr a1", regs={11: 0x80FF_FFFE}, data={0x80FF_FFFE: b"\x13\x05"})
    assert s.x(26) == 1
    assert s.x(25) == 0x80FF_FFFE
    assert s.x(27) == 0x8100_0000


def test_compressed_instruction_at_end_of_ram_executes():
    # c.li a0, 7 (0x451d) in the last halfword, then the fetch after it faults
    s = run(HANDLER + "jr a1", regs={11: 0x80FF_FFFE}, data={0x80FF_FFFE: b"\x1d\x45"})
    assert s.x(10) == 7
    assert s.x(26) == 1
    assert s.x(25) == 0x8100_0000


def test_mret_in_s_mode_is_illegal():
    s = run(
        HANDLER
        + OPEN_PMP
        + """
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 0x0800
        csrs mstatus, t0
        mret
    1:  la s8, 2f
    2:  mret
        """
    )
    assert s.x(26) == 2
    assert s.x(27) == 0x3020_0073
    assert s.x(25) == s.x(24)


def test_sret_in_m_mode_returns_to_spp():
    # sret is legal in M-mode (3.3.2): mode := SPP (here S), SIE := SPIE, SPIE := 1
    s = run(
        HANDLER
        + OPEN_PMP
        + """
        la t0, 1f
        csrw sepc, t0
        li t0, 0x122
        csrc mstatus, t0
        li t0, 0x120
        csrs mstatus, t0
        sret
    1:  csrr a0, sstatus
        ecall
        """
    )
    assert s.x(26) == 9, "now in S-mode"
    sstatus = s.x(10)
    assert sstatus & 0x2, "SIE := SPIE (1)"
    assert sstatus & 0x20, "SPIE := 1"
    assert not sstatus & 0x100, "SPP := U"


def test_delegated_interrupt_is_not_taken_in_m_mode():
    # STI delegated to S: masked while the hart runs in M-mode, whatever mstatus.MIE
    s = run(
        HANDLER
        + """
        li t0, 0x20
        csrw mideleg, t0
        csrs mip, t0
        csrs mie, t0
        csrsi mstatus, 10
        nop
        nop
        li a0, 1
        csrc mip, t0
        """
    )
    assert s.x(26) == 0
    assert s.x(10) == 1


def test_delegated_interrupt_is_taken_in_u_mode_by_s():
    # STI delegated: taken from U-mode into S-mode (stvec), not M
    s = run(
        HANDLER
        + OPEN_PMP
        + """
        la t0, 5f
        csrw stvec, t0
        li t0, 0x20
        csrw mideleg, t0
        csrs mip, t0
        csrs mie, t0
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        mret
    1:  j 1b
        .balign 4
    5:  csrr a0, scause
        csrr a1, sepc
        la a2, 1b
        ecall
        """
    )
    assert s.x(10) == INTERRUPT | 5
    assert s.x(11) == s.x(12)
    assert s.x(26) == 9, "the S handler's ecall reaches M from S"


def test_vs_level_interrupt_goes_to_hs_whatever_mideleg_was_written():
    # with H, mideleg's VS-level bits are read-only one (8.4.2): VSSI is never taken in M
    # (masked there, MIE notwithstanding) and, hideleg clear, is taken in HS with its own code
    s = run(
        HANDLER
        + OPEN_PMP
        + """
        la t0, 5f
        csrw stvec, t0
        csrw mideleg, zero
        csrw hideleg, zero
        li t0, 0x4
        csrs hvip, t0
        csrs mie, t0
        csrsi mstatus, 8
        nop
        li a3, 1
        csrsi mstatus, 2
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 0x800
        csrs mstatus, t0
        mret
    1:  j 1b
        .balign 4
    5:  csrr a0, scause
        ecall
        """
    )
    assert s.x(13) == 1, "not taken in M-mode"
    assert s.x(10) == INTERRUPT | 2, "taken in HS as VSSI"
    assert s.x(26) == 9, "the HS handler's ecall reaches M from S"


def enter(mode: int) -> str:
    """Code that drops from M to ``mode`` (0 = U, 1 = S) at the label 1: that follows."""
    return (
        OPEN_PMP
        + f"""
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, {mode << 11}
        csrs mstatus, t0
        mret
"""
    )


def test_delegated_exception_from_u_goes_to_s():
    # medeleg bit 8: ecall from U is handled in S (4.1.1, 4.1.7-4.1.9)
    s = run(
        HANDLER
        + """
        la t0, 5f
        csrw stvec, t0
        li t0, 1 << 8
        csrw medeleg, t0
        csrsi sstatus, 2
"""
        + enter(0)
        + """
    1:  la s8, 2f
    2:  ecall
        .balign 4
    5:  csrr a0, scause
        csrr a1, sepc
        csrr a2, sstatus
        csrr a3, stval
        ecall
        """
    )
    assert s.x(10) == 8
    assert s.x(11) == s.x(24)
    assert not s.x(12) & 0x100, "SPP = U"
    assert s.x(12) & 0x20, "SPIE = old SIE (1)"
    assert not s.x(12) & 0x2, "SIE cleared"
    assert s.x(13) == 0
    assert s.x(26) == 9, "the S handler's own ecall goes to M"


def test_delegated_illegal_instruction_from_s_sets_stval():
    s = run(
        HANDLER
        + """
        la t0, 5f
        csrw stvec, t0
        li t0, 1 << 2
        csrw medeleg, t0
"""
        + enter(1)
        + """
    1:  la s8, 2f
    2:  .word 0xffffffff
        .balign 4
    5:  csrr a0, scause
        csrr a1, sepc
        csrr a2, sstatus
        csrr a3, stval
        ecall
        """
    )
    assert s.x(10) == 2
    assert s.x(11) == s.x(24)
    assert s.x(12) & 0x100, "SPP = S"
    assert s.x(13) == 0xFFFF_FFFF
    assert s.x(26) == 9


def test_exceptions_in_m_mode_are_never_delegated():
    s = run(
        HANDLER
        + """
        la t0, 5f
        csrw stvec, t0
        li t0, -1
        csrw medeleg, t0
        la s8, 2f
    2:  .word 0xffffffff
        li a0, 1
        j __snippet_end
        .balign 4
    5:  li a0, 2
        """
    )
    assert s.x(26) == 2
    assert s.x(25) == s.x(24)
    assert s.x(10) == 0


@pytest.mark.parametrize(
    ("field", "instruction", "bits"),
    [
        (1 << 21, "wfi", 0x1050_0073),  # TW
        (1 << 22, "sret", 0x1020_0073),  # TSR
        (1 << 20, "csrr a0, satp", 0x1800_2573),  # TVM
        (1 << 20, "sfence.vma", 0x1200_0073),  # TVM
    ],
    ids=["TW-wfi", "TSR-sret", "TVM-satp", "TVM-sfence"],
)
def test_mstatus_trap_bits_make_s_mode_instruction_illegal(field, instruction, bits):
    s = run(
        HANDLER
        + f"""
        li t0, {field:#x}
        csrs mstatus, t0
"""
        + enter(1)
        + f"""
    1:  la s8, 2f
    2:  {instruction}
        ecall
        """
    )
    assert s.x(26) == 2
    assert s.x(27) == bits
    assert s.x(25) == s.x(24)


@pytest.mark.parametrize(
    "instruction", ["wfi", "csrr a0, satp", "sfence.vma"], ids=["wfi", "satp", "sfence"]
)
def test_same_instructions_legal_in_s_mode_without_trap_bits(instruction):
    s = run(HANDLER + enter(1) + f"1: {instruction}\necall")
    assert s.x(26) == 9


def test_supervisor_interrupt_waits_for_sie_in_s_mode():
    # delegated STI pending while in S with SIE = 0: not taken until SIE is set
    s = run(
        HANDLER
        + """
        la t0, 5f
        csrw stvec, t0
        li t0, 0x20
        csrw mideleg, t0
        csrs mie, t0
        csrci mstatus, 2
"""
        + enter(1)
        + """
    1:  li t0, 0x20
        csrs sip, t0
        csrr s2, sip
        nop
        li s3, 1
        csrsi sstatus, 2
        li s4, 1
        j 6f
        .balign 4
    5:  csrr a0, scause
        csrr a1, sip
    6:  ecall
        """
    )
    assert s.x(18) & 0x20 == 0, "sip.STIP is read-only in sip (4.1.3)"
    assert s.x(19) == 1
    assert s.x(10) == 0 and s.x(20) == 1, "STIP set through sip is ignored: no interrupt"


def test_supervisor_timer_interrupt_taken_in_s_when_sie_set():
    s = run(
        HANDLER
        + """
        la t0, 5f
        csrw stvec, t0
        li t0, 0x20
        csrw mideleg, t0
        csrs mie, t0
        csrs mip, t0
        csrci mstatus, 2
"""
        + enter(1)
        + """
    1:  nop
        li s3, 1
        csrsi sstatus, 2
        li s4, 1
        j 6f
        .balign 4
    5:  csrr a0, scause
        csrr a1, sstatus
    6:  ecall
        """
    )
    assert s.x(19) == 1, "not taken while SIE = 0"
    assert s.x(10) == INTERRUPT | 5, "taken once SIE = 1"
    assert s.x(20) == 0
    assert s.x(11) & 0x100, "SPP = S"
    assert s.x(11) & 0x20, "SPIE = 1"
    assert s.x(26) == 9


def test_machine_interrupt_taken_in_s_mode_with_mie_clear():
    s = run(
        HANDLER
        + f"""
        li t2, {CLINT_MTIMECMP:#x}
        sd zero, 0(t2)
        li t0, 0x80
        csrs mie, t0
        csrci mstatus, 8
"""
        + enter(1)
        + """
    1:  la s8, 1b
        j 1b
        """
    )
    assert s.x(26) == INTERRUPT | 7
    assert (s.x(23) >> 11) & 3 == 1, "MPP = S"


# ---- returns to the upper half ------------------------------------------------------------
# Every Linux kernel runs at 0xffffffff8xxxxxxx: an xRET target with bit 63 set must jump like
# any other (it once fell through to the instruction after the xRET).  Sv39 maps the upper-half
# gigapage VPN[2] = 510 onto RAM as well as RAM's own gigapage (VPN[2] = 2), so the S-mode code
# after the xRET runs at its upper-half alias and its ecall reports that address in mepc.
UPPER_HALF = 0xFFFF_FFFF_8000_0000
UPPER_HALF_SV39 = """
        li t0, 0x80040000           # root table: a page of RAM the snippet does not use
        li t1, (0x80000000 >> 12 << 10) | 0xcf   # gigapage onto RAM: V R W X A D
        sd t1, 2*8(t0)
        li t2, 510*8
        add t2, t2, t0
        sd t1, 0(t2)
        srli t0, t0, 12
        li t1, 8 << 60
        or t0, t0, t1
        csrw satp, t0
        sfence.vma
"""


@pytest.mark.parametrize("xret", ["mret", "sret"])
def test_xret_to_upper_half_jumps(xret):
    epc, pp_bits = ("mepc", "li t0, 0x1800\n csrc mstatus, t0\n li t0, 0x0800\n csrs mstatus, t0")
    if xret == "sret":
        epc, pp_bits = ("sepc", "li t0, 0x100\n csrs mstatus, t0")
    s = run(
        HANDLER
        + OPEN_PMP
        + UPPER_HALF_SV39
        + f"""
        la t0, 1f
        li t1, {UPPER_HALF - RAM_BASE - (1 << 64)}
        add t0, t0, t1
        csrw {epc}, t0
        {pp_bits}
        la s8, 1f
        {xret}
        li s6, 0xbad                # the fall-through path the bug took
    1:  ecall
        """
    )
    assert s.x(22) == 0, f"{xret} fell through instead of jumping"
    assert s.x(26) == 9, "ecall from S"
    assert s.x(25) == (s.x(24) - RAM_BASE + UPPER_HALF) % (1 << 64), "mepc: the upper-half alias"


def test_mret_to_upper_half_in_m_mode_faults_there():
    # M-mode fetches are physical: the jump itself must happen, and fault at the target (3.1.15)
    s = run(
        HANDLER
        + f"""
        li t0, {UPPER_HALF:#x}
        csrw mepc, t0
        li t0, 0x1800
        csrs mstatus, t0
        mret
        li s6, 0xbad
        """
    )
    assert s.x(22) == 0
    assert s.x(26) == 1, "instruction access fault"
    assert s.x(25) == UPPER_HALF

"""Zicsr instructions and the machine-mode CSRs (unprivileged chapter 9, privileged 2, 3.1).

CSRRW/CSRRWI always write and read unless rd = x0; CSRRS/CSRRC (and their immediate forms)
always read and write only when rs1 != x0 (uimm != 0), so they can read read-only CSRs.  An
access to a CSR that does not exist, or a write to a read-only one (number bits 11:10 = 3),
raises illegal instruction with mtval = the instruction bits.  WARL fields keep legal values.
"""

import pytest
from support import needs_toolchain, run_asm

pytestmark = needs_toolchain

ONES = 0xFFFF_FFFF_FFFF_FFFF

# Records a trap: s9 = mepc, s10 = mcause, s11 = mtval, then ends the snippet.
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
        j __snippet_end
    91:
"""


def run(source: str, *, align: int = 8, **kwargs):
    """run_asm, padding the snippet so that its final wfi ends the binary: run_asm finds
    the wfi from the binary's length, which the linker rounds up to the section alignment
    (``align``, the largest .balign the snippet uses)."""
    pad = f"\n.balign {align}\n.fill {align // 4 - 1}, 4, 0x00000013\n"
    return run_asm(source + pad, **kwargs)


@pytest.mark.parametrize(
    ("instruction", "before", "operand", "old", "after"),
    [
        ("csrrw a0, mscratch, a1", 0x1234, ONES, 0x1234, ONES),
        ("csrrs a0, mscratch, a1", 0xF0, 0x0F, 0xF0, 0xFF),
        ("csrrs a0, mscratch, a1", 0xF0, 0, 0xF0, 0xF0),
        ("csrrc a0, mscratch, a1", 0xFF, 0x0F, 0xFF, 0xF0),
        ("csrrc a0, mscratch, a1", ONES, 0x8000_0000_0000_0001, ONES, 0x7FFF_FFFF_FFFF_FFFE),
        ("csrrwi a0, mscratch, 31", ONES, 0, ONES, 31),
        ("csrrwi a0, mscratch, 0", ONES, 0, ONES, 0),
        ("csrrsi a0, mscratch, 16", 0x0F, 0, 0x0F, 0x1F),
        ("csrrci a0, mscratch, 1", 0xFF, 0, 0xFF, 0xFE),
        ("csrrci a0, mscratch, 31", ONES, 0, ONES, 0xFFFF_FFFF_FFFF_FFE0),
    ],
)
def test_csr_instruction_on_mscratch(instruction, before, operand, old, after):
    s = run(
        HANDLER + f"csrw mscratch, a2\n{instruction}\ncsrr a3, mscratch",
        regs={11: operand, 12: before},
    )
    assert s.x(26) == 0
    assert s.x(10) == old
    assert s.x(13) == after


def test_csrrw_with_rd_x0_writes():
    s = run("li a1, 0x55\ncsrrw zero, mscratch, a1\ncsrr a0, mscratch")
    assert s.x(10) == 0x55
    assert s.x(0) == 0


def test_csrrw_with_rd_equal_rs1_swaps():
    s = run("li a1, 7\ncsrw mscratch, a1\nli a0, 9\ncsrrw a0, mscratch, a0\ncsrr a2, mscratch")
    assert s.x(10) == 7
    assert s.x(12) == 9


@pytest.mark.parametrize(
    "instruction",
    [
        "csrrs a0, mvendorid, zero",
        "csrrc a0, mhartid, zero",
        "csrrsi a0, mhartid, 0",
        "csrrci a0, marchid, 0",
        "csrr a0, mimpid",
        "csrr a0, cycle",
        "csrr a0, instret",
        "csrr a0, time",
    ],
)
def test_reading_read_only_csr_without_write_is_legal(instruction):
    s = run(HANDLER + instruction)
    assert s.x(26) == 0, f"trapped: mcause={s.x(26)}"


def test_mhartid_of_hart_0():
    s = run("li a0, -1\ncsrr a0, mhartid")
    assert s.x(10) == 0


@pytest.mark.parametrize(
    ("instruction", "bits"),
    [
        ("csrw mvendorid, a1", 0xF115_9073),
        ("csrw mhartid, a1", 0xF145_9073),
        ("csrw cycle, a1", 0xC005_9073),
        ("csrs mimpid, a1", 0xF135_A073),  # rs1 != x0: a write even though a1 = 0
        ("csrrs a0, mvendorid, a1", 0xF115_A573),
        ("csrrc a0, instret, a1", 0xC025_B573),
        ("csrrs a0, time, a1", 0xC015_A573),
        ("csrrsi a0, mhartid, 1", 0xF140_E573),
        ("csrrwi zero, mvendorid, 0", 0xF110_5073),
    ],
)
def test_write_to_read_only_csr_is_illegal(instruction, bits):
    s = run(
        HANDLER
        + f"""
        li a0, 0x77
        la s8, 1f
    1:  {instruction}
        li a3, 1
        """,
        regs={11: 0},
        extensions="acimsu",
    )
    assert s.x(26) == 2
    assert s.x(27) == bits
    assert s.x(25) == s.x(24)
    assert s.x(10) == 0x77, "rd is not written"
    assert s.x(13) == 0


@pytest.mark.parametrize(
    ("instruction", "bits"),
    [
        ("csrr a0, 0x7c0", 0x7C00_2573),
        ("csrr a0, 0x3a1", 0x3A10_2573),  # pmpcfg1 does not exist on RV64
        ("csrw 0x3a1, a1", 0x3A15_9073),
        ("csrr a0, 0x3a3", 0x3A30_2573),  # pmpcfg3 neither
        ("csrr a0, 0x000", 0x0000_2573),  # ustatus (N extension) is gone
        ("csrr a0, 0x600", 0x6000_2573),  # hstatus without the H extension (hart without H)
        ("csrr a0, 0x34a", 0x34A0_2573),  # mtinst exists only with H (hart without H)
        ("csrr a0, 0x280", 0x2800_2573),  # vsatp without H (hart without H)
        ("csrr a0, 0x7b0", 0x7B00_2573),  # dcsr: debug mode only
        ("csrrwi a0, 0xfff, 1", 0xFFF0_D573),
    ],
)
def test_unimplemented_csr_is_illegal(instruction, bits):
    s = run(
        HANDLER
        + f"""
        li a0, 0x77
        la s8, 1f
    1:  {instruction}
        """,
        regs={11: 0},
        extensions="acimsu",
    )
    assert s.x(26) == 2
    assert s.x(27) == bits
    assert s.x(25) == s.x(24)
    assert s.x(10) == 0x77


def test_misa_reads_rv64_acimsu():
    s = run("csrr a0, misa", extensions="acimsu")
    # MXL = 2 (bits 63:62); A = bit 0, C = 2, I = 8, M = 12, S = 18, U = 20
    assert s.x(10) == 0x8000_0000_0014_1105


def test_misa_mxl_survives_writes():
    s = run(HANDLER + "csrw misa, zero\ncsrr a0, misa", extensions="acimsu")
    assert s.x(26) == 0
    assert s.x(10) >> 62 == 2
    assert s.x(10) & (1 << 8), "I stays set"


def test_mstatus_uxl_sxl_read_2_and_cannot_change():
    s = run(
        """
        csrr a0, mstatus
        li t0, 0xf00000000
        csrc mstatus, t0
        csrr a1, mstatus
        li t0, 0x500000000
        csrs mstatus, t0
        csrr a2, mstatus
        csrw mstatus, zero
        csrr a3, mstatus
        li t0, -1
        csrw mstatus, t0
        csrr a4, mstatus
        """
    )
    for register in (10, 11, 12, 13, 14):
        value = s.x(register)
        assert (value >> 32) & 3 == 2, f"UXL in x{register}: {value:#x}"
        assert (value >> 34) & 3 == 2, f"SXL in x{register}: {value:#x}"


@pytest.mark.parametrize(("written", "mode"), [(0, 0), (1, 1), (3, 3)])
def test_mstatus_mpp_holds_legal_modes(written, mode):
    s = run(
        f"""
        li t0, 0x1800
        csrc mstatus, t0
        li t0, {written << 11}
        csrs mstatus, t0
        csrr a0, mstatus
        """
    )
    assert (s.x(10) >> 11) & 3 == mode


@pytest.mark.parametrize("previous", [0, 1, 3])
def test_mstatus_mpp_cannot_hold_2(previous):
    s = run(
        f"""
        li t0, 0x1800
        csrc mstatus, t0
        li t0, {previous << 11}
        csrs mstatus, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 0x1000
        csrs mstatus, t0
        csrr a0, mstatus
        li t1, 0x1000
        csrw mstatus, t1
        csrr a1, mstatus
        """
    )
    assert (s.x(10) >> 11) & 3 != 2
    assert (s.x(11) >> 11) & 3 != 2


def test_sstatus_is_a_restricted_view_of_mstatus():
    s = run(
        """
        csrw mstatus, zero
        li t0, -1
        csrw sstatus, t0
        csrr a0, mstatus
        csrr a1, sstatus
        """
    )
    mstatus = s.x(10)
    # writable through sstatus: SIE (1), SPIE (5), SPP (8), SUM (18), MXR (19)
    for bit in (1, 5, 8, 18, 19):
        assert mstatus >> bit & 1, f"bit {bit}"
    # machine-only fields stay clear: MIE (3), MPIE (7), MPP (12:11), MPRV (17), TVM/TW/TSR
    for bit in (3, 7, 11, 12, 17, 20, 21, 22):
        assert not mstatus >> bit & 1, f"bit {bit}"
    assert s.x(11) & (1 << 3) == 0, "sstatus does not show MIE"
    assert (s.x(11) >> 32) & 3 == 2, "sstatus shows UXL"


def test_mtvec_ignores_reserved_modes():
    s = run(
        """
        li t0, 0x80000100
        csrw mtvec, t0
        li t1, 0x80000202
        csrw mtvec, t1
        csrr a0, mtvec
        li t1, 0x80000303
        csrw mtvec, t1
        csrr a1, mtvec
        li t1, 0x80000401
        csrw mtvec, t1
        csrr a2, mtvec
        """
    )
    assert s.x(10) == 0x8000_0100
    assert s.x(11) == 0x8000_0100
    assert s.x(12) == 0x8000_0401


@pytest.mark.parametrize(
    ("written", "read"),
    [
        (0x8000_0001, 0x8000_0000),
        (0x8000_0003, 0x8000_0002),
        (ONES, 0xFFFF_FFFF_FFFF_FFFE),
        (0x8000_0004, 0x8000_0004),
    ],
)
def test_mepc_bit_0_reads_zero(written, read):
    s = run("csrw mepc, a1\ncsrr a0, mepc", regs={11: written})
    assert s.x(10) == read


def test_medeleg_bit_11_is_read_only_zero():
    s = run("li t0, -1\ncsrw medeleg, t0\ncsrr a0, medeleg")
    assert not s.x(10) >> 11 & 1, "ecall from M cannot be delegated"
    assert s.x(10) & (1 << 8), "ecall from U can be delegated"


def test_mideleg_and_mie_writable_bits():
    s = run(
        """
        li t0, -1
        csrw mideleg, t0
        csrr a0, mideleg
        csrw mie, t0
        csrr a1, mie
        csrw mie, zero
        """,
        extensions="acimsu",
    )
    # without H: only the supervisor interrupts (SSI 1, STI 5, SEI 9) can be delegated
    assert s.x(10) == 0x222
    # mie: SSIE, MSIE, STIE, MTIE, SEIE, MEIE
    assert s.x(11) == 0xAAA


def test_mideleg_and_mie_writable_bits_with_h():
    s = run(
        """
        li t0, -1
        csrw mideleg, t0
        csrr a0, mideleg
        csrw mideleg, zero
        csrr a2, mideleg
        csrw mie, t0
        csrr a1, mie
        csrw mie, zero
        """
    )
    # with H, VSSIP/VSTIP/VSEIP and SGEIP are read-only one in mideleg (9.4.2)
    assert s.x(10) == 0x222 | 0x1444
    assert s.x(12) == 0x1444
    # mie adds VSSIE, VSTIE, VSEIE and SGEIE
    assert s.x(11) == 0xAAA | 0x1444


def test_minstret_counts_retired_instructions():
    s = run(
        """
        .option norvc
        csrr a0, minstret
        nop
        nop
        nop
        nop
        nop
        csrr a1, minstret
        li t0, 10
    1:  addi t0, t0, -1
        bnez t0, 1b
        csrr a2, minstret
        csrr a3, instret
        """
    )
    assert s.x(11) - s.x(10) == 6  # the first csrr and five nops
    assert s.x(12) - s.x(11) == 1 + 1 + 20  # csrr, li, ten (addi, bnez) pairs
    assert s.x(13) - s.x(12) == 1


def test_ecall_does_not_retire():
    # 3.3.1: ECALL and EBREAK raise exceptions, so they are not counted by minstret
    s = run(
        """
        .option norvc
        la t0, 1f
        csrw mtvec, t0
        csrr a0, minstret
        ecall
        .balign 4
    1:  csrr a1, minstret
        """
    )
    assert s.x(11) - s.x(10) == 1


def test_minstret_is_writable():
    s = run(
        """
        .option norvc
        li t0, 1000
        csrw minstret, t0
        csrr a0, minstret
        """
    )
    # 3.1.10: "Any CSR write takes effect after the writing instruction has otherwise
    # completed", so the csrw's own retirement does not add to the value written
    assert s.x(10) == 1000


def test_minstret_write_moves_only_the_guest_view():
    s = run(
        """
        .option norvc
        li t0, -5
        csrw minstret, t0
        nop
        nop
        csrr a0, minstret
        csrr a1, instret
        li t0, 7
        csrw mcycle, t0
        csrr a2, mcycle
        """
    )
    assert s.sx(10) == -5 + 2  # the two nops
    assert s.sx(11) == -5 + 3
    assert s.x(12) == 7
    # the emulator's own count (statistics, --max-insns) is untouched by the guest's writes:
    # nine instructions, the two nops padding to the wfi, and the wfi
    assert s.hart.instret == 12


def test_mcycle_advances():
    s = run(
        """
        csrr a0, mcycle
        nop
        nop
        csrr a1, mcycle
        csrr a2, cycle
        """
    )
    assert s.x(11) > s.x(10)
    assert s.x(12) >= s.x(11)


def test_time_csr_follows_clint_mtime():
    s = run(
        """
        .option norvc
        li t0, 0x0200bff8
        ld a0, 0(t0)
        li t1, 2000
    1:  addi t1, t1, -1
        bnez t1, 1b
        csrr a1, time
        ld a2, 0(t0)
        """
    )
    assert s.x(10) <= s.x(11) <= s.x(12)
    assert s.x(12) > s.x(10), "mtime advanced over 4000 instructions"


def test_mip_writable_bits():
    # only the supervisor bits SSIP, STIP, SEIP are writable in mip (3.1.9); MSIP and MTIP
    # come from the CLINT, MEIP from the interrupt controller
    s = run(
        "li t0, -1\ncsrw mip, t0\ncsrr a0, mip\ncsrw mip, zero\ncsrr a1, mip", extensions="acimsu"
    )
    assert s.x(10) == 0x222
    assert s.x(11) == 0


@pytest.mark.parametrize("mode", [1, 7, 11, 15])
def test_satp_write_with_unsupported_mode_has_no_effect(mode):
    # 4.1.11: "If satp is written with an unsupported MODE, the entire write has no effect"
    s = run(
        f"""
        li t1, 8
        slli t1, t1, 60
        addi t1, t1, 0x123
        csrw satp, t1
        li t2, {mode}
        slli t2, t2, 60
        addi t2, t2, 0x456
        csrw satp, t2
        csrr a0, satp
        csrw satp, zero
        csrr a1, satp
        """
    )
    assert s.x(10) == (8 << 60) | 0x123
    assert s.x(11) == 0


@pytest.mark.parametrize("mode", [8, 9])
def test_satp_accepts_sv39_and_sv48(mode):
    s = run(f"li t1, {mode}\nslli t1, t1, 60\naddi t1, t1, 0x7ff\ncsrw satp, t1\ncsrr a0, satp")
    assert s.x(10) == (mode << 60) | 0x7FF


# Enter S-mode (or U-mode) at 1: with PMP open for everything.
LOWER_MODE = """
        li t0, -1
        csrw pmpaddr0, t0
        li t0, 0x1f
        csrw pmpcfg0, t0
        la t0, 1f
        csrw mepc, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, {mpp} << 11
        csrs mstatus, t0
        mret
    1:
"""


@pytest.mark.parametrize(
    ("mpp", "mcounteren", "scounteren", "legal"),
    [
        (1, 0, 0, False),
        (1, 1, 0, True),
        (1, 1, 1, True),
        (0, 1, 0, False),
        (0, 0, 1, False),
        (0, 1, 1, True),
    ],
    ids=["S-off", "S-on", "S-on-both", "U-mcounteren-only", "U-scounteren-only", "U-both"],
)
def test_cycle_counter_access_is_gated_by_counteren(mpp, mcounteren, scounteren, legal):
    # 3.1.11/4.1.5: bit 0 (CY) of mcounteren gates S and U, of scounteren gates U
    s = run(
        HANDLER
        + f"""
        li t0, {mcounteren}
        csrw mcounteren, t0
        li t0, {scounteren}
        csrw scounteren, t0
        """
        + LOWER_MODE.format(mpp=mpp)
        + """
        la s8, 2f
    2:  csrr a0, cycle
        ecall
        """
    )
    if legal:
        assert s.x(26) in (8, 9), f"expected the ecall, got mcause {s.x(26)}"
    else:
        assert s.x(26) == 2
        assert s.x(27) == 0xC000_2573
        assert s.x(25) == s.x(24)


@pytest.mark.parametrize(
    ("instruction", "bits"),
    [
        ("csrr a0, mscratch", 0x3400_2573),
        ("csrr a0, mhartid", 0xF140_2573),
        ("csrw mie, zero", 0x3040_1073),
    ],
)
def test_machine_csr_from_s_mode_is_illegal(instruction, bits):
    s = run(
        HANDLER
        + LOWER_MODE.format(mpp=1)
        + f"""
        la s8, 2f
    2:  {instruction}
        """
    )
    assert s.x(26) == 2
    assert s.x(27) == bits
    assert s.x(25) == s.x(24)


def test_supervisor_csrs_from_s_mode_are_legal():
    s = run(
        HANDLER
        + LOWER_MODE.format(mpp=1)
        + """
        li t0, 0x5a
        csrw sscratch, t0
        csrr a0, sscratch
        csrr a1, sstatus
        csrr a2, satp
        ecall
        """
    )
    assert s.x(26) == 9
    assert s.x(10) == 0x5A


@pytest.mark.parametrize(
    ("instruction", "old", "after"),
    [
        ("csrrs a0, mscratch, a0", 0xF0, 0xFF),
        ("csrrc a0, mscratch, a0", 0xFF, 0xF0),
    ],
)
def test_csr_set_clear_with_rd_equal_rs1(instruction, old, after):
    # the mask is rs1's value before the instruction writes the old CSR value into rd
    s = run(f"csrw mscratch, a1\n{instruction}\ncsrr a2, mscratch", regs={10: 0x0F, 11: old})
    assert s.x(10) == old
    assert s.x(12) == after


@pytest.mark.parametrize(
    "access",
    [
        "lbu t0, 5(t1)",  # the UART's line status register: served by Python, replayed
        "ld t0, 0(t2)",  # the CLINT's mtime: inside the kernel
        "sw zero, 0(t3)",  # the CLINT's msip
    ],
    ids=["uart-load", "clint-load", "clint-store"],
)
def test_device_access_retires_once(access):
    s = run(
        f"""
        .option norvc
        li t1, 0x10000000
        li t2, 0x0200bff8
        li t3, 0x02000000
        csrr a0, minstret
        {access}
        csrr a1, minstret
        """
    )
    assert s.x(11) - s.x(10) == 2

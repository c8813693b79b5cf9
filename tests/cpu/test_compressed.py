"""RV64C (unprivileged spec chapter 16): every compressed instruction, executed and decoded.

Each executed instruction is written with its explicit ``c.`` mnemonic, so the assembler emits
exactly that 16-bit encoding; ``auipc`` before and after it shows the pc advanced by 2.  The
decode tests feed raw 16-bit encodings (hand-assembled from the spec's tables in 16.8) to the
decoder: the reserved ones decode as illegal, the HINTs as the ordinary instruction.
"""

import pytest
from support import needs_toolchain, run_asm

from rvh.cpu.decode import decode
from rvh.cpu.tables import build_tables
from rvh.isa.instructions import Op

DATA = 0x8010_0000
ONES = 0xFFFF_FFFF_FFFF_FFFF
MIN = 0x8000_0000_0000_0000
SINK = 32  # rd = x0 decodes to the sink slot

HANDLER = """
        .option norvc
        la t0, 90f
        csrw mtvec, t0
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
    pad = f"\n.balign {align}\n.option norvc\n.fill {align // 4 - 1}, 4, 0x00000013\n"
    return run_asm(source + pad, **kwargs)


def run_one(instruction: str, regs: dict[int, int], data: dict[int, bytes] | None = None):
    """Run one compressed instruction between two auipc (t5 before, t6 after)."""
    s = run(
        HANDLER
        + f"""
        auipc t5, 0
        .option rvc
        {instruction}
        .option norvc
        auipc t6, 0
        """,
        regs=regs,
        data=data,
    )
    assert s.x(26) == 0, f"trapped: mcause={s.x(26)}"
    assert s.x(31) - s.x(30) == 4 + 2, "the pc advances by 2 over a compressed instruction"
    return s


SP = 0x8010_0800

# (instruction, initial registers, data at DATA, {register: expected}, {address: expected u64})
STRAIGHT_LINE = [
    ("c.addi4spn a0, sp, 4", {2: SP}, None, {10: SP + 4, 2: SP}, {}),
    ("c.addi4spn s0, sp, 1020", {2: SP}, None, {8: SP + 1020}, {}),
    (
        "c.lw a0, 0(a1)",
        {11: DATA},
        {DATA: bytes.fromhex("00000080")},
        {10: 0xFFFF_FFFF_8000_0000},
        {},
    ),
    (
        "c.lw a5, 124(s1)",
        {9: DATA},
        {DATA + 124: bytes.fromhex("78563412")},
        {15: 0x1234_5678},
        {},
    ),
    (
        "c.ld a0, 248(a1)",
        {11: DATA},
        {DATA + 248: bytes.fromhex("0123456789abcdef")},
        {10: 0xEFCD_AB89_6745_2301},
        {},
    ),
    (
        "c.sw a2, 4(a1)",
        {11: DATA, 12: 0x1122_3344_5566_7788},
        {DATA: b"\xaa" * 16},
        {},
        {DATA: 0x5566_7788_AAAA_AAAA, DATA + 8: 0xAAAA_AAAA_AAAA_AAAA},
    ),
    (
        "c.sd a2, 8(a1)",
        {11: DATA, 12: 0x1122_3344_5566_7788},
        {DATA: b"\xaa" * 24},
        {},
        {DATA: 0xAAAA_AAAA_AAAA_AAAA, DATA + 8: 0x1122_3344_5566_7788},
    ),
    ("c.nop", {10: 5}, None, {10: 5}, {}),
    ("c.addi a0, -32", {10: 0}, None, {10: 0xFFFF_FFFF_FFFF_FFE0}, {}),
    ("c.addi a0, 31", {10: ONES}, None, {10: 30}, {}),
    ("c.addiw a0, -1", {10: 0x8000_0000}, None, {10: 0x7FFF_FFFF}, {}),
    ("c.addiw a0, 0", {10: 0xFFFF_FFFF}, None, {10: ONES}, {}),
    ("c.addiw a0, 1", {10: 0x1_7FFF_FFFF}, None, {10: 0xFFFF_FFFF_8000_0000}, {}),
    ("c.li a0, -32", {10: 7}, None, {10: 0xFFFF_FFFF_FFFF_FFE0}, {}),
    ("c.li a0, 31", {10: 7}, None, {10: 31}, {}),
    ("c.addi16sp sp, -512", {2: SP}, None, {2: SP - 512}, {}),
    ("c.addi16sp sp, 496", {2: SP}, None, {2: SP + 496}, {}),
    ("c.lui a0, 1", {}, None, {10: 0x1000}, {}),
    ("c.lui a0, 0x1f", {}, None, {10: 0x1_F000}, {}),
    ("c.lui a0, 0xfffe0", {}, None, {10: 0xFFFF_FFFF_FFFE_0000}, {}),
    ("c.lui ra, 0xfffff", {}, None, {1: 0xFFFF_FFFF_FFFF_F000}, {}),
    ("c.srli a0, 63", {10: MIN}, None, {10: 1}, {}),
    ("c.srli a0, 32", {10: MIN}, None, {10: 0x8000_0000}, {}),
    ("c.srli a0, 1", {10: ONES}, None, {10: 0x7FFF_FFFF_FFFF_FFFF}, {}),
    ("c.srai a0, 1", {10: MIN}, None, {10: 0xC000_0000_0000_0000}, {}),
    ("c.srai a0, 63", {10: MIN}, None, {10: ONES}, {}),
    ("c.srai s1, 32", {9: 0x1234_5678_0000_0000}, None, {9: 0x1234_5678}, {}),
    ("c.andi a0, -32", {10: 0xFFF}, None, {10: 0xFE0}, {}),
    ("c.andi a0, 15", {10: ONES}, None, {10: 0xF}, {}),
    ("c.sub a0, a1", {10: 3, 11: 5}, None, {10: 0xFFFF_FFFF_FFFF_FFFE, 11: 5}, {}),
    ("c.xor a0, a1", {10: 0xFF00, 11: 0x0FF0}, None, {10: 0xF0F0}, {}),
    ("c.or s0, a5", {8: 0xFF00, 15: 0x0FF0}, None, {8: 0xFFF0}, {}),
    ("c.and a0, a1", {10: 0xFF00, 11: 0x0FF0}, None, {10: 0x0F00}, {}),
    ("c.subw a0, a1", {10: 0x8000_0000, 11: 1}, None, {10: 0x7FFF_FFFF}, {}),
    ("c.subw a0, a1", {10: 0, 11: 1}, None, {10: ONES}, {}),
    ("c.addw a0, a1", {10: 0x7FFF_FFFF, 11: 1}, None, {10: 0xFFFF_FFFF_8000_0000}, {}),
    ("c.addw a0, a1", {10: 0x1_0000_0001, 11: 0x2_0000_0002}, None, {10: 3}, {}),
    ("c.slli a0, 63", {10: 1}, None, {10: MIN}, {}),
    ("c.slli a0, 32", {10: 0xFFFF_FFFF}, None, {10: 0xFFFF_FFFF_0000_0000}, {}),
    ("c.slli t4, 1", {29: 0x8000_0000_0000_0001}, None, {29: 2}, {}),
    (
        "c.lwsp a0, 252(sp)",
        {2: SP},
        {SP + 252: bytes.fromhex("feffffff")},
        {10: 0xFFFF_FFFF_FFFF_FFFE},
        {},
    ),
    ("c.lwsp t3, 0(sp)", {2: SP}, {SP: bytes.fromhex("44332211")}, {28: 0x1122_3344}, {}),
    (
        "c.ldsp a0, 504(sp)",
        {2: SP},
        {SP + 504: bytes.fromhex("0807060504030201")},
        {10: 0x0102_0304_0506_0708},
        {},
    ),
    ("c.mv a0, a1", {10: 1, 11: 0x1234_5678_9ABC_DEF0}, None, {10: 0x1234_5678_9ABC_DEF0}, {}),
    ("c.mv t2, ra", {1: ONES}, None, {7: ONES}, {}),
    ("c.add a0, a1", {10: ONES, 11: 2}, None, {10: 1}, {}),
    ("c.add s2, s3", {18: 40, 19: 2}, None, {18: 42}, {}),
    (
        "c.swsp a1, 252(sp)",
        {2: SP, 11: 0x1122_3344_5566_7788},
        {SP + 248: b"\xaa" * 16},
        {},
        {SP + 248: 0x5566_7788_AAAA_AAAA, SP + 256: 0xAAAA_AAAA_AAAA_AAAA},
    ),
    (
        "c.sdsp a1, 504(sp)",
        {2: SP, 11: 0x1122_3344_5566_7788},
        {SP + 504: b"\xaa" * 8},
        {},
        {SP + 504: 0x1122_3344_5566_7788},
    ),
]


@needs_toolchain
@pytest.mark.parametrize(
    ("instruction", "regs", "data", "registers", "memory"),
    STRAIGHT_LINE,
    ids=[f"{case[0]}" for case in STRAIGHT_LINE],
)
def test_straight_line_instruction(instruction, regs, data, registers, memory):
    s = run_one(instruction, regs, data)
    for index, value in registers.items():
        assert s.x(index) == value, f"x{index}"
    for address, value in memory.items():
        assert s.read(address, 8) == value, f"memory at {address:#x}"


@needs_toolchain
def test_c_addi_on_other_registers():
    s = run(".option rvc\nc.addi s11, 1\nc.addi ra, -1", regs={27: 0x7FFF_FFFF_FFFF_FFFF, 1: 0})
    assert s.x(27) == MIN
    assert s.x(1) == ONES


@needs_toolchain
def test_c_j_forward_and_back():
    s = run(
        """
        .option rvc
        c.li a0, 0
        c.j 2f
    1:  c.addi a0, 1
        c.j 3f
    2:  c.addi a0, 2
        c.j 1b
        c.addi a0, 8
    3:
        """
    )
    assert s.x(10) == 3


@needs_toolchain
@pytest.mark.parametrize(
    ("instruction", "value", "taken"),
    [
        ("c.beqz", 0, True),
        ("c.beqz", 1, False),
        ("c.beqz", MIN, False),
        ("c.bnez", 0, False),
        ("c.bnez", ONES, True),
        ("c.bnez", 0x1_0000_0000, True),
    ],
)
def test_c_branches(instruction, value, taken):
    s = run(
        f"""
        .option rvc
        c.li a1, 0
        {instruction} a0, 1f
        c.li a1, 1
        c.j 2f
    1:  c.li a1, 2
    2:
        """,
        regs={10: value},
    )
    assert s.x(11) == (2 if taken else 1)


@needs_toolchain
def test_c_beqz_backward():
    s = run(
        """
        .option rvc
        c.li a1, 0
        c.j 2f
    1:  c.li a1, 2
        c.j 3f
    2:  c.beqz a0, 1b
        c.li a1, 1
    3:
        """,
        regs={10: 0},
    )
    assert s.x(11) == 2


@needs_toolchain
def test_c_jr_and_c_jalr():
    s = run(
        """
        .option norvc
        la a1, 1f
        la a2, 2f
        .option rvc
        c.jalr a1
        c.li a3, 1
        c.j 3f
    1:  c.mv s0, ra
        c.jr a2
        c.li a4, 1
    2:  c.li a5, 5
        c.jr ra
    3:
        """
    )
    # la, la = 16 bytes; c.jalr at 0x8000_0010 links 0x8000_0012
    assert s.x(8) == 0x8000_0012
    assert s.x(13) == 1  # returned through c.jr ra
    assert s.x(14) == 0
    assert s.x(15) == 5


@needs_toolchain
def test_c_ebreak_traps_with_breakpoint():
    s = run(
        HANDLER
        + """
        la s8, 1f
        .option rvc
    1:  c.ebreak
        c.li a0, 1
        """
    )
    assert s.x(26) == 3
    assert s.x(25) == s.x(24)
    assert s.x(10) == 0


@needs_toolchain
def test_mixed_lengths_pack_without_padding():
    s = run(
        """
        .option rvc
        auipc t5, 0
        c.li a0, 1
        .option norvc
        addi a0, a0, 1
        .option rvc
        c.addi a0, 1
        auipc t6, 0
        """
    )
    assert s.x(10) == 3
    assert s.x(31) - s.x(30) == 4 + 2 + 4 + 2


# ---- decoding raw encodings ------------------------------------------------------------


@pytest.fixture(scope="module")
def tables():
    return build_tables()


RESERVED = [
    (0x0000, "c.addi4spn, nzuimm 0 (the all-zero halfword)"),
    (0x0008, "c.addi4spn a0, sp, 0"),
    (0x6101, "c.addi16sp, nzimm 0"),
    (0x6501, "c.lui a0, 0"),
    (0x6001, "c.lui zero, 0 (= c.addi16sp rd=x0 pattern)"),
    (0x4002, "c.lwsp zero, 0(sp)"),
    (0x5012, "c.lwsp zero, 36(sp)"),
    (0x6002, "c.ldsp zero, 0(sp)"),
    (0x7012, "c.ldsp zero, 32(sp) + imm[5]"),
    (0x8002, "c.jr zero"),
    (0x2005, "c.addiw zero, 1"),
    (0x2001, "c.addiw zero, 0"),
    (0x8000, "quadrant 0 funct3 100 (reserved)"),
    (0x9C41, "CA funct2 10 with bit 12 set (reserved on RV64)"),
    (0x9C61, "CA funct2 11 with bit 12 set (reserved on RV64)"),
]


@pytest.mark.parametrize(("bits", "what"), RESERVED, ids=[f"{b:#06x}" for b, _ in RESERVED])
def test_reserved_encoding_decodes_illegal(tables, bits, what):
    op, rd, rs1, rs2, imm, length = decode(bits, tables)
    assert op == Op.ILLEGAL, what
    assert length == 2


# The compressed FP loads and stores of D (16.3, 16.4): f registers, so c.fldsp may name f0
# (decoded rd = the sink slot, read as f0 by the FP unit)
FLOAT_MEMORY = [
    (0x2000, Op.FLD, 8, 8, None, 0),  # c.fld fs0, 0(s0)
    (0x3FFC, Op.FLD, 15, 15, None, 248),  # c.fld fa5, 248(a5)
    (0xA008, Op.FSD, None, 8, 10, 0),  # c.fsd fa0, 0(s0)
    (0x2502, Op.FLD, 10, 2, None, 0),  # c.fldsp fa0, 0(sp)
    (0x2002, Op.FLD, SINK, 2, None, 0),  # c.fldsp ft0, 0(sp)
    (0xBFFE, Op.FSD, None, 2, 31, 504),  # c.fsdsp ft11, 504(sp)
]


@pytest.mark.parametrize("bits, op, rd, rs1, rs2, imm", FLOAT_MEMORY)
def test_compressed_float_loads_and_stores(tables, bits, op, rd, rs1, rs2, imm):
    got = decode(bits, tables)
    assert got[0] == op and got[5] == 2
    for expected, value in ((rd, got[1]), (rs1, got[2]), (rs2, got[3]), (imm, got[4])):
        if expected is not None:
            assert value == expected


# (bits, what, expected op, rd, rs1, rs2, imm); None = not checked
HINTS = [
    (0x0001, "c.nop", Op.ADDI, SINK, 0, None, 0),
    (0x0005, "c.addi zero, 1 (HINT)", Op.ADDI, SINK, 0, None, 1),
    (0x107D, "c.addi zero, -1 (HINT)", Op.ADDI, SINK, 0, None, -1),
    (0x0501, "c.addi a0, 0 (HINT)", Op.ADDI, 10, 10, None, 0),
    (0x4015, "c.li zero, 5 (HINT)", Op.ADDI, SINK, 0, None, 5),
    (0x6005, "c.lui zero, 1 (HINT)", Op.LUI, SINK, None, None, 0x1000),
    (0x802E, "c.mv zero, a1 (HINT)", Op.ADD, SINK, 0, 11, None),
    (0x902E, "c.add zero, a1 (HINT)", Op.ADD, SINK, 0, 11, None),
    (0x0006, "c.slli zero, 1 (HINT)", Op.SLLI, SINK, 0, None, 1),
    (0x0502, "c.slli a0, 0 (HINT)", Op.SLLI, 10, 10, None, 0),
    (0x8001, "c.srli s0, 0 (HINT in RV64: shamt 0)", Op.SRLI, 8, 8, None, 0),
    (0x8401, "c.srai s0, 0 (HINT in RV64: shamt 0)", Op.SRAI, 8, 8, None, 0),
]


@pytest.mark.parametrize(
    ("bits", "what", "op", "rd", "rs1", "rs2", "imm"), HINTS, ids=[f"{h[0]:#06x}" for h in HINTS]
)
def test_hint_encoding_decodes_legal(tables, bits, what, op, rd, rs1, rs2, imm):
    got = decode(bits, tables)
    assert got[0] == op, what
    assert got[5] == 2
    for index, expected in ((1, rd), (2, rs1), (3, rs2), (4, imm)):
        if expected is not None:
            assert got[index] == expected, f"{what}: field {index}"


@needs_toolchain
def test_hints_execute_without_effect():
    s = run(
        """
        .option norvc
        li a0, 5
        .half 0x0005    # c.addi zero, 1
        .half 0x4015    # c.li zero, 5
        .half 0x802e    # c.mv zero, a1
        .half 0x0006    # c.slli zero, 1
        .half 0x0501    # c.addi a0, 0
        .half 0x6005    # c.lui zero, 1
        """,
        regs={11: 77},
    )
    assert s.x(0) == 0
    assert s.x(10) == 5


@needs_toolchain
def test_c_jalr_with_ra_uses_old_value():
    s = run(
        """
        .option norvc
        la ra, 1f
        .option rvc
        c.jalr ra
        c.li a0, 1
    1:  c.li a1, 2
        """
    )
    # la = 8 bytes; c.jalr at 0x8000_0008 jumps to the old ra and links 0x8000_000a
    assert s.x(10) == 0
    assert s.x(11) == 2
    assert s.x(1) == 0x8000_000A

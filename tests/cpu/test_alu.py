"""RV64I integer computational instructions (unprivileged spec 2.4 and 5.2).

Every expected value is written out by hand from the spec's definition: register and
immediate operations on 64-bit values with two's-complement wrap-around, shift amounts taken
from the low 6 bits (5 bits for the *W forms), and *W results sign-extended from bit 31.
"""

import pytest
from support import needs_toolchain, run_asm

pytestmark = needs_toolchain

MIN = 0x8000_0000_0000_0000
MAX = 0x7FFF_FFFF_FFFF_FFFF
ONES = 0xFFFF_FFFF_FFFF_FFFF


def run_op(source: str, a: int = 0, b: int = 0):
    """Run ``source`` (32-bit encodings only) with a1 = a and a2 = b."""
    return run_asm(".option norvc\n" + source, regs={11: a, 12: b})


# (mnemonic, rs1, rs2, rd)
REGISTER_CASES = [
    ("add", 1, 2, 3),
    ("add", MAX, 1, MIN),
    ("add", ONES, 1, 0),
    ("add", MIN, MIN, 0),
    ("add", ONES, ONES, 0xFFFF_FFFF_FFFF_FFFE),
    ("sub", 5, 3, 2),
    ("sub", 0, 1, ONES),
    ("sub", MIN, 1, MAX),
    ("sub", MAX, ONES, MIN),
    ("slt", ONES, 0, 1),
    ("slt", 0, ONES, 0),
    ("slt", MIN, MAX, 1),
    ("slt", MAX, MIN, 0),
    ("slt", 5, 5, 0),
    ("sltu", ONES, 0, 0),
    ("sltu", 0, ONES, 1),
    ("sltu", MIN, MAX, 0),
    ("sltu", MAX, MIN, 1),
    ("sltu", 5, 5, 0),
    ("xor", 0xF0F0_F0F0_0F0F_0F0F, 0xFF00_FF00_FF00_FF00, 0x0FF0_0FF0_F00F_F00F),
    ("or", 0xF0F0_F0F0_0F0F_0F0F, 0xFF00_FF00_FF00_FF00, 0xFFF0_FFF0_FF0F_FF0F),
    ("and", 0xF0F0_F0F0_0F0F_0F0F, 0xFF00_FF00_FF00_FF00, 0xF000_F000_0F00_0F00),
    # sll/srl/sra use rs2[5:0]
    ("sll", 1, 0, 1),
    ("sll", 1, 1, 2),
    ("sll", 1, 31, 0x8000_0000),
    ("sll", 1, 32, 0x1_0000_0000),
    ("sll", 1, 63, MIN),
    ("sll", 1, 64, 1),
    ("sll", 1, 65, 2),
    ("sll", 0x8000_0000_0000_0001, 1, 2),
    ("sll", 3, 0xFFFF_FFFF_FFFF_FFC1, 6),
    ("srl", MIN, 0, MIN),
    ("srl", MIN, 1, 0x4000_0000_0000_0000),
    ("srl", MIN, 31, 0x1_0000_0000),
    ("srl", MIN, 32, 0x8000_0000),
    ("srl", MIN, 63, 1),
    ("srl", MIN, 64, MIN),
    ("srl", ONES, 0xFFFF_FFFF_FFFF_FFC4, 0x0FFF_FFFF_FFFF_FFFF),
    ("srl", ONES, 0xFFFF_FFFF_FFFF_FFFC, 0xF),
    ("sra", MIN, 0, MIN),
    ("sra", MIN, 1, 0xC000_0000_0000_0000),
    ("sra", MIN, 31, 0xFFFF_FFFF_0000_0000),
    ("sra", MIN, 32, 0xFFFF_FFFF_8000_0000),
    ("sra", MIN, 63, ONES),
    ("sra", MIN, 64, MIN),
    ("sra", 0x4000_0000_0000_0000, 62, 1),
    ("sra", MAX, 63, 0),
    # *W: operate on the low 32 bits, sign-extend the 32-bit result
    ("addw", 0x7FFF_FFFF, 1, 0xFFFF_FFFF_8000_0000),
    ("addw", 0xFFFF_FFFF, 1, 0),
    ("addw", 0x1_0000_0005, 0x2_0000_0003, 8),
    ("addw", 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ("addw", ONES, ONES, 0xFFFF_FFFF_FFFF_FFFE),
    ("subw", 0, 1, ONES),
    ("subw", 0x8000_0000, 1, 0x7FFF_FFFF),
    ("subw", 0x1_0000_0000, 0, 0),
    ("subw", 0x7FFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_8000_0000),
    ("sllw", 1, 0, 1),
    ("sllw", 1, 31, 0xFFFF_FFFF_8000_0000),
    ("sllw", 1, 32, 1),
    ("sllw", 3, 63, 0xFFFF_FFFF_8000_0000),
    ("sllw", 0xFFFF_FFFF, 1, 0xFFFF_FFFF_FFFF_FFFE),
    ("sllw", 0x1_0000_0001, 0, 1),
    ("sllw", 0x4000_0000, 1, 0xFFFF_FFFF_8000_0000),
    ("srlw", 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ("srlw", 0x8000_0000, 1, 0x4000_0000),
    ("srlw", 0xFFFF_FFFF_8000_0000, 31, 1),
    ("srlw", 0x8000_0000, 32, 0xFFFF_FFFF_8000_0000),
    ("srlw", 0xFFFF_FFFF_0000_0010, 4, 1),
    ("srlw", 0xFFFF_FFFF, 33, 0x7FFF_FFFF),
    ("sraw", 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ("sraw", 0x8000_0000, 1, 0xFFFF_FFFF_C000_0000),
    ("sraw", 0x8000_0000, 31, ONES),
    ("sraw", 0x7FFF_FFFF, 30, 1),
    ("sraw", 0x8000_0000, 32, 0xFFFF_FFFF_8000_0000),
    ("sraw", 0x1_4000_0000, 1, 0x2000_0000),
    ("sraw", 0x0000_0000_FFFF_FF00, 4, 0xFFFF_FFFF_FFFF_FFF0),
]


@pytest.mark.parametrize(("mnemonic", "a", "b", "expected"), REGISTER_CASES)
def test_register_operation(mnemonic, a, b, expected):
    s = run_op(f"{mnemonic} a0, a1, a2", a, b)
    assert s.x(10) == expected
    assert s.x(11) == a and s.x(12) == b


# (mnemonic, rs1, immediate as written in the assembly, rd)
IMMEDIATE_CASES = [
    ("addi", 5, -1, 4),
    ("addi", MAX, 1, MIN),
    ("addi", 0, -2048, 0xFFFF_FFFF_FFFF_F800),
    ("addi", 0, 2047, 0x7FF),
    ("addi", ONES, 1, 0),
    ("slti", ONES, 0, 1),
    ("slti", 0, -1, 0),
    ("slti", MIN, -2048, 1),
    ("slti", 0xFFFF_FFFF_FFFF_F800, -2048, 0),
    ("slti", 2046, 2047, 1),
    # sltiu compares against the sign-extended immediate as an unsigned number
    ("sltiu", 0, -1, 1),
    ("sltiu", 0xFFFF_FFFF_FFFF_FFFE, -1, 1),
    ("sltiu", ONES, -1, 0),
    ("sltiu", 0, 1, 1),
    ("sltiu", 5, 5, 0),
    ("sltiu", MIN, 2047, 0),
    ("xori", 0xFF, -1, 0xFFFF_FFFF_FFFF_FF00),
    ("xori", 0xF0, 0x0F, 0xFF),
    ("xori", MIN, -2048, 0x7FFF_FFFF_FFFF_F800),
    ("ori", MIN, -2048, 0xFFFF_FFFF_FFFF_F800),
    ("ori", 0x100, 0x0FF, 0x1FF),
    ("andi", ONES, 0x7FF, 0x7FF),
    ("andi", 0x1234_5678_9ABC_DEFF, -16, 0x1234_5678_9ABC_DEF0),
    ("andi", 0x1234_5678_9ABC_DEFF, 0, 0),
    ("slli", 3, 0, 3),
    ("slli", 1, 1, 2),
    ("slli", 1, 31, 0x8000_0000),
    ("slli", 1, 32, 0x1_0000_0000),
    ("slli", 1, 63, MIN),
    ("slli", ONES, 32, 0xFFFF_FFFF_0000_0000),
    ("srli", MIN, 0, MIN),
    ("srli", MIN, 1, 0x4000_0000_0000_0000),
    ("srli", MIN, 31, 0x1_0000_0000),
    ("srli", MIN, 32, 0x8000_0000),
    ("srli", ONES, 63, 1),
    ("srai", MIN, 0, MIN),
    ("srai", MIN, 1, 0xC000_0000_0000_0000),
    ("srai", MIN, 31, 0xFFFF_FFFF_0000_0000),
    ("srai", MIN, 32, 0xFFFF_FFFF_8000_0000),
    ("srai", MIN, 63, ONES),
    ("srai", 0x7000_0000_0000_0000, 60, 7),
    ("addiw", 0x7FFF_FFFF, 1, 0xFFFF_FFFF_8000_0000),
    ("addiw", 0xFFFF_FFFF, 0, ONES),
    ("addiw", 0x1_0000_0000, -1, ONES),
    ("addiw", 0x1234_5678_0000_0005, 3, 8),
    ("addiw", 0x8000_0000, -1, 0x7FFF_FFFF),
    ("addiw", 0x0000_0000_7FFF_FFFF, 0, 0x7FFF_FFFF),
    ("slliw", 1, 31, 0xFFFF_FFFF_8000_0000),
    ("slliw", 0xFFFF_FFFF_0000_0001, 0, 1),
    ("slliw", 0x4000_0000, 1, 0xFFFF_FFFF_8000_0000),
    ("slliw", 3, 30, 0xFFFF_FFFF_C000_0000),
    ("slliw", 0x8000_0001, 1, 2),
    ("srliw", 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ("srliw", 0x8000_0000, 1, 0x4000_0000),
    ("srliw", 0xFFFF_FFFF, 31, 1),
    ("srliw", 0xABCD_0000_8000_0000, 4, 0x0800_0000),
    ("srliw", ONES, 1, 0x7FFF_FFFF),
    ("sraiw", 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ("sraiw", 0x8000_0000, 4, 0xFFFF_FFFF_F800_0000),
    ("sraiw", 0x8000_0000, 31, ONES),
    ("sraiw", 0x7FFF_FFFF, 31, 0),
    ("sraiw", 0x1_0000_0000, 1, 0),
    ("sraiw", 0x0000_0000_7FFF_FFFF, 1, 0x3FFF_FFFF),
]


@pytest.mark.parametrize(("mnemonic", "a", "imm", "expected"), IMMEDIATE_CASES)
def test_immediate_operation(mnemonic, a, imm, expected):
    s = run_op(f"{mnemonic} a0, a1, {imm}", a)
    assert s.x(10) == expected


@pytest.mark.parametrize(
    ("immediate", "expected"),
    [
        (0x00001, 0x0000_0000_0000_1000),
        (0x7FFFF, 0x0000_0000_7FFF_F000),
        (0x80000, 0xFFFF_FFFF_8000_0000),
        (0xFFFFF, 0xFFFF_FFFF_FFFF_F000),
        (0x00000, 0),
    ],
)
def test_lui_sign_extends_bit_31(immediate, expected):
    s = run_op(f"lui a0, {immediate:#x}")
    assert s.x(10) == expected


@pytest.mark.parametrize(
    ("immediate", "expected"),
    [
        # the snippet's first instruction is at 0x8000_0000
        (0x00000, 0x8000_0000),
        (0x00001, 0x8000_1000),
        (0x7FFFF, 0xFFFF_F000),
        (0xFFFFF, 0x7FFF_F000),
        (0x80000, 0),
    ],
)
def test_auipc_adds_sign_extended_immediate_to_pc(immediate, expected):
    s = run_op(f"auipc a0, {immediate:#x}")
    assert s.x(10) == expected


def test_auipc_uses_its_own_address():
    s = run_op("nop\nnop\nauipc a0, 0\nauipc a1, 0xfffff")
    assert s.x(10) == 0x8000_0008
    assert s.x(11) == 0x7FFF_F00C


def test_x0_as_destination_stays_zero():
    s = run_op(
        """
        li a1, 0x1234
        addi x0, a1, 5
        add x0, a1, a1
        lui x0, 0x12345
        auipc x0, 1
        slli x0, a1, 3
        addiw x0, a1, -1
        sltiu x0, x0, 1
        mul x0, a1, a1
        csrr x0, mscratch
        add a0, x0, x0
        ori a2, x0, 0
        """
    )
    assert s.x(0) == 0
    assert s.x(10) == 0
    assert s.x(12) == 0


def test_x0_reads_zero_as_source():
    s = run_op("li a0, -1\nsltu a0, x0, a0\nsub a1, x0, a0\nor a2, x0, x0", 7, 7)
    assert s.x(10) == 1
    assert s.x(11) == ONES
    assert s.x(12) == 0


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("add a1, a1, a1", 2 * 0x1234_5678),
        ("sub a1, a1, a1", 0),
        ("xor a1, a1, a1", 0),
        ("sltu a1, a1, a1", 0),
        ("addw a1, a1, a1", 0x2468_ACF0),
    ],
)
def test_destination_equal_to_sources(source, expected):
    s = run_op(source, 0x1234_5678)
    assert s.x(11) == expected

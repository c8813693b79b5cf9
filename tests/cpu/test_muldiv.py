"""M extension (unprivileged spec chapter 7): multiplication and division.

Expected values follow the spec's definitions: MULH/MULHSU/MULHU return the upper 64 bits of
the 128-bit product (signed x signed, signed x unsigned, unsigned x unsigned); division rounds
toward zero; "7.2 Division Operations" table: division by zero gives a quotient with all bits
set and the dividend as remainder, signed overflow (most negative / -1) gives the dividend as
quotient and remainder 0.  *W forms use the low 32 bits of the operands and sign-extend the
32-bit result, even for DIVUW/REMUW.
"""

import pytest
from support import needs_toolchain, run_asm

pytestmark = needs_toolchain

MIN = 0x8000_0000_0000_0000
MAX = 0x7FFF_FFFF_FFFF_FFFF
ONES = 0xFFFF_FFFF_FFFF_FFFF

# (mnemonic, rs1, rs2, rd)
CASES = [
    ("mul", 3, 7, 21),
    ("mul", ONES, ONES, 1),
    ("mul", MIN, ONES, MIN),
    ("mul", MAX, 2, 0xFFFF_FFFF_FFFF_FFFE),
    ("mul", 0x1_0000_0000, 0x1_0000_0000, 0),
    ("mul", MAX, MAX, 1),
    ("mul", ONES, 5, 0xFFFF_FFFF_FFFF_FFFB),
    # signed x signed, upper half
    ("mulh", 3, 7, 0),
    ("mulh", ONES, ONES, 0),
    ("mulh", ONES, 1, ONES),
    ("mulh", MIN, MIN, 0x4000_0000_0000_0000),
    ("mulh", MIN, ONES, 0),
    ("mulh", MIN, 1, ONES),
    ("mulh", MAX, MAX, 0x3FFF_FFFF_FFFF_FFFF),
    ("mulh", MIN, MAX, 0xC000_0000_0000_0000),
    ("mulh", 0x1_0000_0000, 0x1_0000_0000, 1),
    # signed rs1 x unsigned rs2
    ("mulhsu", ONES, ONES, ONES),
    ("mulhsu", ONES, 1, ONES),
    ("mulhsu", 1, ONES, 0),
    ("mulhsu", MIN, ONES, 0x8000_0000_0000_0000),
    ("mulhsu", MIN, MIN, 0xC000_0000_0000_0000),
    ("mulhsu", 2, MIN, 1),
    ("mulhsu", MAX, ONES, 0x7FFF_FFFF_FFFF_FFFE),
    # unsigned x unsigned
    ("mulhu", ONES, ONES, 0xFFFF_FFFF_FFFF_FFFE),
    ("mulhu", ONES, 1, 0),
    ("mulhu", MIN, 2, 1),
    ("mulhu", MIN, MIN, 0x4000_0000_0000_0000),
    ("mulhu", 0x1_0000_0000, 0x1_0000_0000, 1),
    ("mulhu", MIN, ONES, 0x7FFF_FFFF_FFFF_FFFF),
    # mulw: low 32 bits of the product, sign-extended
    ("mulw", 0x7FFF_FFFF, 2, 0xFFFF_FFFF_FFFF_FFFE),
    ("mulw", 0x1_0000, 0x1_0000, 0),
    ("mulw", 0xFFFF_FFFF, 0xFFFF_FFFF, 1),
    ("mulw", 0x1_0000_0003, 5, 15),
    ("mulw", 0x8000, 0x1_0000, 0xFFFF_FFFF_8000_0000),
    ("mulw", ONES, 3, 0xFFFF_FFFF_FFFF_FFFD),
    # div: truncates toward zero
    ("div", 7, 2, 3),
    ("div", 0xFFFF_FFFF_FFFF_FFF9, 2, 0xFFFF_FFFF_FFFF_FFFD),
    ("div", 7, 0xFFFF_FFFF_FFFF_FFFE, 0xFFFF_FFFF_FFFF_FFFD),
    ("div", 0xFFFF_FFFF_FFFF_FFF9, 0xFFFF_FFFF_FFFF_FFFE, 3),
    ("div", 5, 0, ONES),
    ("div", MIN, 0, ONES),
    ("div", 0, 0, ONES),
    ("div", MIN, ONES, MIN),
    ("div", MIN, 1, MIN),
    ("div", MIN, MAX, ONES),
    ("divu", 7, 2, 3),
    ("divu", ONES, 2, MAX),
    ("divu", 5, 0, ONES),
    ("divu", 0, 0, ONES),
    ("divu", MIN, ONES, 0),
    ("divu", ONES, ONES, 1),
    ("divu", MIN, 2, 0x4000_0000_0000_0000),
    # rem: sign of the dividend
    ("rem", 7, 2, 1),
    ("rem", 0xFFFF_FFFF_FFFF_FFF9, 2, ONES),
    ("rem", 7, 0xFFFF_FFFF_FFFF_FFFE, 1),
    ("rem", 0xFFFF_FFFF_FFFF_FFF9, 0xFFFF_FFFF_FFFF_FFFE, ONES),
    ("rem", 5, 0, 5),
    ("rem", 0xFFFF_FFFF_FFFF_FFFB, 0, 0xFFFF_FFFF_FFFF_FFFB),
    ("rem", MIN, 0, MIN),
    ("rem", MIN, ONES, 0),
    ("rem", MIN, MAX, ONES),
    ("remu", 7, 2, 1),
    ("remu", ONES, 10, 5),
    ("remu", 5, 0, 5),
    ("remu", ONES, 0, ONES),
    ("remu", MIN, ONES, MIN),
    ("remu", ONES, MIN, MAX),
    # divw: low 32 bits as signed 32-bit numbers, result sign-extended
    ("divw", 7, 2, 3),
    ("divw", 0xFFFF_FFF9, 2, 0xFFFF_FFFF_FFFF_FFFD),
    ("divw", 0x1_0000_0007, 2, 3),
    ("divw", 5, 0, ONES),
    ("divw", 5, 0x1_0000_0000, ONES),
    ("divw", 0x8000_0000, 0, ONES),
    ("divw", 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFF_8000_0000),
    ("divw", 0x8000_0000, ONES, 0xFFFF_FFFF_8000_0000),
    ("divw", 0x7FFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_8000_0001),
    # divuw: low 32 bits as unsigned, the 32-bit result still sign-extended
    ("divuw", 0xFFFF_FFFF, 1, ONES),
    ("divuw", 0xFFFF_FFFF, 2, 0x7FFF_FFFF),
    ("divuw", 0x8000_0000, 0xFFFF_FFFF, 0),
    ("divuw", 5, 0, ONES),
    ("divuw", 0x1_0000_0008, 2, 4),
    ("divuw", 0x8000_0000, 1, 0xFFFF_FFFF_8000_0000),
    ("divuw", 8, 0xFFFF_FFFF_0000_0002, 4),
    # remw
    ("remw", 0xFFFF_FFF9, 2, ONES),
    ("remw", 7, 0xFFFF_FFFE, 1),
    ("remw", 0x8000_0000, 0xFFFF_FFFF, 0),
    ("remw", 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ("remw", 0x1_0000_0005, 0, 5),
    ("remw", 0x1_0000_0007, 0x1_0000_0002, 1),
    # remuw
    ("remuw", 0xFFFF_FFFF, 10, 5),
    ("remuw", 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000),
    ("remuw", 0x8000_0007, 0x10, 7),
    ("remuw", 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF),
    ("remuw", 0x1_0000_0009, 4, 1),
    ("remuw", 0xFFFF_FFFF, 0x1_0000_0000, ONES),
]


@pytest.mark.parametrize(("mnemonic", "a", "b", "expected"), CASES)
def test_muldiv(mnemonic, a, b, expected):
    s = run_asm(f".option norvc\n{mnemonic} a0, a1, a2", regs={11: a, 12: b})
    assert s.x(10) == expected
    assert s.x(11) == a and s.x(12) == b


def run(source: str, *, align: int = 8, **kwargs):
    """run_asm, padding the snippet so that its final wfi ends the binary: run_asm finds
    the wfi from the binary's length, which the linker rounds up to the section alignment
    (``align``, the largest .balign the snippet uses)."""
    pad = f"\n.balign {align}\n.fill {align // 4 - 1}, 4, 0x00000013\n"
    return run_asm(source + pad, **kwargs)


def test_division_by_zero_does_not_trap():
    s = run(
        """
        la t0, 1f
        csrw mtvec, t0
        li a3, 0
        li a1, 42
        div a0, a1, zero
        divu a2, a1, zero
        rem a4, a1, zero
        remuw a5, a1, zero
        li a3, 1
        j __snippet_end
        .balign 4
    1:  li a3, 2
        """
    )
    assert s.x(13) == 1
    assert (s.x(10), s.x(12), s.x(14), s.x(15)) == (ONES, ONES, 42, 42)


def test_mulh_and_mul_pair_gives_full_product():
    # (2^64 - 1) * 3 = 2 * 2^64 + (2^64 - 3): mulhu:mul = 2 : 0xFFFF...FFFD
    s = run("mulhu a0, a1, a2\nmul a3, a1, a2", regs={11: ONES, 12: 3})
    assert s.x(10) == 2
    assert s.x(13) == 0xFFFF_FFFF_FFFF_FFFD

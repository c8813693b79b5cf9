"""Control transfer (unprivileged spec 2.5): conditional branches, JAL and JALR.

Branches compare two registers, signed (BLT/BGE) or unsigned (BLTU/BGEU); JAL and JALR write
the address of the next instruction (pc + 4, or pc + 2 for the compressed C.JALR) to rd, and
JALR clears bit 0 of rs1 + imm.  The snippets start at 0x8000_0000.
"""

import pytest
from support import needs_toolchain, run_asm

pytestmark = needs_toolchain

MIN = 0x8000_0000_0000_0000
MAX = 0x7FFF_FFFF_FFFF_FFFF
ONES = 0xFFFF_FFFF_FFFF_FFFF
TAKEN, NOT_TAKEN = 2, 1


def run(source: str, *, align: int = 8, **kwargs):
    """run_asm, padding the snippet so that its final wfi ends the binary: run_asm finds
    the wfi from the binary's length, which the linker rounds up to the section alignment
    (``align``, the largest .balign the snippet uses)."""
    pad = f"\n.balign {align}\n.fill {align // 4 - 1}, 4, 0x00000013\n"
    return run_asm(source + pad, **kwargs)


BRANCH_CASES = [
    ("beq", 5, 5, TAKEN),
    ("beq", 5, 6, NOT_TAKEN),
    ("beq", ONES, 0xFFFF_FFFF, NOT_TAKEN),
    ("beq", 0, 0, TAKEN),
    ("bne", 5, 5, NOT_TAKEN),
    ("bne", 5, 6, TAKEN),
    ("bne", ONES, 0xFFFF_FFFF, TAKEN),
    ("blt", ONES, 0, TAKEN),
    ("blt", 0, ONES, NOT_TAKEN),
    ("blt", MIN, MAX, TAKEN),
    ("blt", MAX, MIN, NOT_TAKEN),
    ("blt", 5, 5, NOT_TAKEN),
    ("blt", 4, 5, TAKEN),
    ("bge", ONES, 0, NOT_TAKEN),
    ("bge", 0, ONES, TAKEN),
    ("bge", 5, 5, TAKEN),
    ("bge", MIN, MAX, NOT_TAKEN),
    ("bge", MAX, MIN, TAKEN),
    ("bltu", ONES, 0, NOT_TAKEN),
    ("bltu", 0, ONES, TAKEN),
    ("bltu", MIN, MAX, NOT_TAKEN),
    ("bltu", MAX, MIN, TAKEN),
    ("bltu", 5, 5, NOT_TAKEN),
    ("bgeu", ONES, 0, TAKEN),
    ("bgeu", 0, ONES, NOT_TAKEN),
    ("bgeu", 5, 5, TAKEN),
    ("bgeu", MIN, MAX, TAKEN),
    ("bgeu", MAX, MIN, NOT_TAKEN),
]


@pytest.mark.parametrize(("mnemonic", "a", "b", "outcome"), BRANCH_CASES)
def test_branch_forward(mnemonic, a, b, outcome):
    s = run(
        f"""
        .option norvc
        li a0, 0
        {mnemonic} a1, a2, 1f
        li a0, {NOT_TAKEN}
        j 2f
    1:  li a0, {TAKEN}
    2:
        """,
        regs={11: a, 12: b},
    )
    assert s.x(10) == outcome


@pytest.mark.parametrize(("mnemonic", "a", "b", "outcome"), BRANCH_CASES)
def test_branch_backward(mnemonic, a, b, outcome):
    # the target lies before the branch: a taken branch runs "li a0, 2" and leaves
    s = run(
        f"""
        .option norvc
        li a0, 0
        j 2f
    1:  li a0, {TAKEN}
        j 3f
    2:  {mnemonic} a1, a2, 1b
        li a0, {NOT_TAKEN}
    3:
        """,
        regs={11: a, 12: b},
    )
    assert s.x(10) == outcome


def test_branch_reaches_4_kib_forward_and_back():
    s = run(
        """
        .option norvc
        li a0, 0
        beq zero, zero, 1f
        li a0, 99
        .skip 4080
    1:  addi a0, a0, 1
        bnez a1, 3f
        li a1, 1
        j 2f
        .skip 4000
    2:  beq zero, zero, 1b
    3:
        """
    )
    assert s.x(10) == 2


def test_jal_links_next_instruction_and_jumps():
    s = run(
        """
        .option norvc
        jal a0, 1f
        li a1, 1
    1:  jal a2, 2f
        li a1, 2
        .skip 64
    2:  nop
        """
    )
    assert s.x(10) == 0x8000_0004
    assert s.x(12) == 0x8000_000C
    assert s.x(11) == 0


def test_jal_backward_and_x0_link():
    s = run(
        """
        .option norvc
        j 2f
    1:  li a1, 7
        j 3f
    2:  jal zero, 1b
    3:
        """
    )
    assert s.x(11) == 7
    assert s.x(0) == 0


def test_jalr_links_and_jumps():
    s = run(
        """
        .option norvc
        la a1, 1f
        jalr a0, 0(a1)
        li a2, 1
    1:  nop
        """
    )
    # la is auipc + addi (0x8000_0000, 0x8000_0004), jalr at 0x8000_0008
    assert s.x(10) == 0x8000_000C
    assert s.x(12) == 0


@pytest.mark.parametrize(
    ("setup", "jump"),
    [
        ("la a1, 1f\naddi a1, a1, 1", "jalr a0, 0(a1)"),
        ("la a1, 1f", "jalr a0, 1(a1)"),
        ("la a1, 1f + 8", "jalr a0, -7(a1)"),
        ("la a1, 1f - 2047", "jalr a0, 2047(a1)"),
    ],
    ids=["rs1-odd", "imm-odd", "negative-imm", "max-imm"],
)
def test_jalr_clears_bit_0_of_target(setup, jump):
    s = run(
        f"""
        .option norvc
        {setup}
        {jump}
        li a2, 1
        j __snippet_end
        .balign 8
    1:  li a3, 1
        """
    )
    assert s.x(12) == 0
    assert s.x(13) == 1


def test_jalr_with_rd_equal_rs1_uses_old_value():
    s = run(
        """
        .option norvc
        la a0, 1f
        jalr a0, 0(a0)
        li a2, 1
    1:  nop
        """
    )
    assert s.x(10) == 0x8000_000C
    assert s.x(12) == 0


def test_jalr_as_return():
    s = run(
        """
        .option norvc
        li a0, 0
        call 1f
        addi a0, a0, 10
        j 2f
    1:  addi a0, a0, 1
        ret
    2:
        """
    )
    assert s.x(10) == 11
    assert s.x(1) == 0x8000_000C  # call is auipc + jalr at 0x8000_0004


def test_compressed_jalr_links_pc_plus_2():
    s = run(
        """
        .option norvc
        la a1, 1f
        .option rvc
        c.jalr a1
        c.li a2, 1
    1:  c.nop
        """
    )
    # la occupies 0x8000_0000..0x8000_0007, c.jalr is at 0x8000_0008
    assert s.x(1) == 0x8000_000A
    assert s.x(12) == 0


def test_jump_to_halfword_aligned_target():
    # with C, targets only need 2-byte alignment: no misaligned-fetch exception
    s = run(
        """
        .option norvc
        la t0, 9f
        csrw mtvec, t0
        la a1, 1f
        jalr a0, 0(a1)
        j __snippet_end
        .option rvc
        .balign 4
        c.nop
    1:  c.li a3, 5
        j __snippet_end
        .balign 4
    9:  li a4, 1
        """
    )
    assert s.x(13) == 5
    assert s.x(14) == 0

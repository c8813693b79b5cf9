"""The encoding tables (rvh.isa.instructions) against binutils.

For every base and compressed instruction in the tables, binutils assembles a representative
instance and the decoder must return the instruction we expect with the operands written below
(derived by hand from the operand syntax: rd, rs1, rs2, the immediate's value).  Compressed
instructions decode to the base instruction they expand to (unprivileged spec 16.3-16.7).
"""

import pytest
from support import assemble, needs_toolchain

from rvh.cpu.decode import decode
from rvh.cpu.tables import build_tables
from rvh.isa.instructions import (
    ALLOWED_COMPRESSED_OVERLAPS,
    BASE,
    BY_NAME,
    COMPRESSED,
    Encoding,
    Op,
    check_overlaps,
)

# gcc 12's driver refuses an "h" in -march, so the H extension is enabled in the source
# (``.option arch, +h``, binutils >= 2.38).
H_EXTENSION = ".option arch, +h"
X0 = 32  # rd = x0 decodes to the sink slot
_ = None  # operand not checked (not part of this format)

# (table entry, assembly, expected base instruction, rd, rs1, rs2, imm)
# Registers: ra 1, sp 2, t0 5, s0 8, s1 9, a0 10, a1 11, a2 12, a5 15, s11 27, t6 31.
BASE_CASES = [
    ("lui", "lui a0, 0xfffff", "lui", 10, _, _, -4096),
    ("lui", "lui t6, 0x12345", "lui", 31, _, _, 0x1234_5000),
    ("auipc", "auipc a0, 0x80000", "auipc", 10, _, _, -(2**31)),
    ("auipc", "auipc zero, 1", "auipc", X0, _, _, 0x1000),
    ("jal", "jal a0, .+0xaaaaa", "jal", 10, _, _, 0xAAAAA),
    ("jal", "jal ra, .-0x55556", "jal", 1, _, _, -0x55556),
    ("jal", "jal zero, .-0x100000", "jal", X0, _, _, -0x100000),
    ("jalr", "jalr a0, -2048(a1)", "jalr", 10, 11, _, -2048),
    ("jalr", "jalr zero, 0(ra)", "jalr", X0, 1, _, 0),
    ("beq", "beq a1, a2, .+0xaaa", "beq", _, 11, 12, 0xAAA),
    ("bne", "bne t6, s11, .-0x556", "bne", _, 31, 27, -0x556),
    ("blt", "blt a1, a2, .+4094", "blt", _, 11, 12, 4094),
    ("bge", "bge a1, a2, .-4096", "bge", _, 11, 12, -4096),
    ("bltu", "bltu a1, a2, .+2", "bltu", _, 11, 12, 2),
    ("bgeu", "bgeu zero, t0, .-2", "bgeu", _, 0, 5, -2),
    ("lb", "lb a0, -2048(a1)", "lb", 10, 11, _, -2048),
    ("lh", "lh a0, 2047(a1)", "lh", 10, 11, _, 2047),
    ("lw", "lw t6, -1(s11)", "lw", 31, 27, _, -1),
    ("ld", "ld a0, 0x555(a1)", "ld", 10, 11, _, 0x555),
    ("lbu", "lbu a0, -0x556(a1)", "lbu", 10, 11, _, -0x556),
    ("lhu", "lhu a0, 1(a1)", "lhu", 10, 11, _, 1),
    ("lwu", "lwu zero, 0(sp)", "lwu", X0, 2, _, 0),
    ("sb", "sb a2, -2048(a1)", "sb", _, 11, 12, -2048),
    ("sh", "sh a2, 2047(a1)", "sh", _, 11, 12, 2047),
    ("sw", "sw t6, -1(s11)", "sw", _, 27, 31, -1),
    ("sd", "sd a2, 0x7e0(a1)", "sd", _, 11, 12, 0x7E0),
    ("addi", "addi a0, a1, -5", "addi", 10, 11, _, -5),
    ("slti", "slti a0, a1, 2047", "slti", 10, 11, _, 2047),
    ("sltiu", "sltiu a0, a1, -2048", "sltiu", 10, 11, _, -2048),
    ("xori", "xori a0, a1, -1", "xori", 10, 11, _, -1),
    ("ori", "ori a0, a1, 0x555", "ori", 10, 11, _, 0x555),
    ("andi", "andi a0, a1, 0x2aa", "andi", 10, 11, _, 0x2AA),
    ("slli", "slli a0, a1, 63", "slli", 10, 11, _, 63),
    ("srli", "srli a0, a1, 32", "srli", 10, 11, _, 32),
    ("srai", "srai a0, a1, 1", "srai", 10, 11, _, 1),
    ("srai", "srai t6, t6, 63", "srai", 31, 31, _, 63),
    ("add", "add a0, a1, a2", "add", 10, 11, 12, _),
    ("sub", "sub t6, ra, s11", "sub", 31, 1, 27, _),
    ("sll", "sll a0, a1, a2", "sll", 10, 11, 12, _),
    ("slt", "slt a0, a1, a2", "slt", 10, 11, 12, _),
    ("sltu", "sltu a0, a1, a2", "sltu", 10, 11, 12, _),
    ("xor", "xor a0, a1, a2", "xor", 10, 11, 12, _),
    ("srl", "srl a0, a1, a2", "srl", 10, 11, 12, _),
    ("sra", "sra a0, a1, a2", "sra", 10, 11, 12, _),
    ("or", "or a0, a1, a2", "or", 10, 11, 12, _),
    ("and", "and zero, a1, a2", "and", X0, 11, 12, _),
    ("addiw", "addiw a0, a1, -2048", "addiw", 10, 11, _, -2048),
    ("slliw", "slliw a0, a1, 31", "slliw", 10, 11, _, 31),
    ("srliw", "srliw a0, a1, 0", "srliw", 10, 11, _, 0),
    ("sraiw", "sraiw a0, a1, 17", "sraiw", 10, 11, _, 17),
    ("addw", "addw a0, a1, a2", "addw", 10, 11, 12, _),
    ("subw", "subw a0, a1, a2", "subw", 10, 11, 12, _),
    ("sllw", "sllw a0, a1, a2", "sllw", 10, 11, 12, _),
    ("srlw", "srlw a0, a1, a2", "srlw", 10, 11, 12, _),
    ("sraw", "sraw a0, a1, a2", "sraw", 10, 11, 12, _),
    ("fence", "fence rw, w", "fence", _, _, _, _),
    ("fence", "fence", "fence", _, _, _, _),
    ("fence", "fence.tso", "fence", _, _, _, _),
    ("ecall", "ecall", "ecall", _, _, _, _),
    ("ebreak", "ebreak", "ebreak", _, _, _, _),
    ("fence.i", "fence.i", "fence.i", _, _, _, _),
    ("csrrw", "csrrw a0, mscratch, a1", "csrrw", 10, 11, _, 0x340),
    ("csrrw", "csrrw zero, satp, t6", "csrrw", X0, 31, _, 0x180),
    ("csrrs", "csrrs a0, 0xfff, a1", "csrrs", 10, 11, _, 0xFFF),
    ("csrrc", "csrrc a0, mstatus, a1", "csrrc", 10, 11, _, 0x300),
    ("csrrwi", "csrrwi a0, mscratch, 31", "csrrwi", 10, 31, _, 0x340),
    ("csrrsi", "csrrsi a0, 0x800, 1", "csrrsi", 10, 1, _, 0x800),
    ("csrrci", "csrrci a0, mip, 0", "csrrci", 10, 0, _, 0x344),
    ("mul", "mul a0, a1, a2", "mul", 10, 11, 12, _),
    ("mulh", "mulh a0, a1, a2", "mulh", 10, 11, 12, _),
    ("mulhsu", "mulhsu a0, a1, a2", "mulhsu", 10, 11, 12, _),
    ("mulhu", "mulhu a0, a1, a2", "mulhu", 10, 11, 12, _),
    ("div", "div a0, a1, a2", "div", 10, 11, 12, _),
    ("divu", "divu a0, a1, a2", "divu", 10, 11, 12, _),
    ("rem", "rem a0, a1, a2", "rem", 10, 11, 12, _),
    ("remu", "remu t6, s11, ra", "remu", 31, 27, 1, _),
    ("mulw", "mulw a0, a1, a2", "mulw", 10, 11, 12, _),
    ("divw", "divw a0, a1, a2", "divw", 10, 11, 12, _),
    ("divuw", "divuw a0, a1, a2", "divuw", 10, 11, 12, _),
    ("remw", "remw a0, a1, a2", "remw", 10, 11, 12, _),
    ("remuw", "remuw a0, a1, a2", "remuw", 10, 11, 12, _),
    ("lr.w", "lr.w a0, (a1)", "lr.w", 10, 11, _, _),
    ("lr.w", "lr.w.aqrl t6, (s11)", "lr.w", 31, 27, _, _),
    ("sc.w", "sc.w a0, a2, (a1)", "sc.w", 10, 11, 12, _),
    ("amoswap.w", "amoswap.w.aqrl a0, a2, (a1)", "amoswap.w", 10, 11, 12, _),
    ("amoadd.w", "amoadd.w a0, a2, (a1)", "amoadd.w", 10, 11, 12, _),
    ("amoxor.w", "amoxor.w.aq a0, a2, (a1)", "amoxor.w", 10, 11, 12, _),
    ("amoand.w", "amoand.w.rl a0, a2, (a1)", "amoand.w", 10, 11, 12, _),
    ("amoor.w", "amoor.w a0, a2, (a1)", "amoor.w", 10, 11, 12, _),
    ("amomin.w", "amomin.w a0, a2, (a1)", "amomin.w", 10, 11, 12, _),
    ("amomax.w", "amomax.w a0, a2, (a1)", "amomax.w", 10, 11, 12, _),
    ("amominu.w", "amominu.w a0, a2, (a1)", "amominu.w", 10, 11, 12, _),
    ("amomaxu.w", "amomaxu.w zero, a2, (a1)", "amomaxu.w", X0, 11, 12, _),
    ("lr.d", "lr.d.aq a0, (a1)", "lr.d", 10, 11, _, _),
    ("sc.d", "sc.d.rl a0, a2, (a1)", "sc.d", 10, 11, 12, _),
    ("amoswap.d", "amoswap.d a0, a2, (a1)", "amoswap.d", 10, 11, 12, _),
    ("amoadd.d", "amoadd.d a0, a2, (a1)", "amoadd.d", 10, 11, 12, _),
    ("amoxor.d", "amoxor.d a0, a2, (a1)", "amoxor.d", 10, 11, 12, _),
    ("amoand.d", "amoand.d a0, a2, (a1)", "amoand.d", 10, 11, 12, _),
    ("amoor.d", "amoor.d a0, a2, (a1)", "amoor.d", 10, 11, 12, _),
    ("amomin.d", "amomin.d a0, a2, (a1)", "amomin.d", 10, 11, 12, _),
    ("amomax.d", "amomax.d a0, a2, (a1)", "amomax.d", 10, 11, 12, _),
    ("amominu.d", "amominu.d a0, a2, (a1)", "amominu.d", 10, 11, 12, _),
    ("amomaxu.d", "amomaxu.d.aqrl t6, ra, (s11)", "amomaxu.d", 31, 27, 1, _),
    ("mret", "mret", "mret", _, _, _, _),
    ("sret", "sret", "sret", _, _, _, _),
    ("wfi", "wfi", "wfi", _, _, _, _),
    ("sfence.vma", "sfence.vma a1, a2", "sfence.vma", _, 11, 12, _),
    ("sfence.vma", "sfence.vma", "sfence.vma", _, 0, 0, _),
    ("hfence.vvma", "hfence.vvma a1, a2", "hfence.vvma", _, 11, 12, _),
    ("hfence.gvma", "hfence.gvma t6, s11", "hfence.gvma", _, 31, 27, _),
    ("hlv.b", "hlv.b a0, (a1)", "hlv.b", 10, 11, _, _),
    ("hlv.bu", "hlv.bu a0, (a1)", "hlv.bu", 10, 11, _, _),
    ("hlv.h", "hlv.h a0, (a1)", "hlv.h", 10, 11, _, _),
    ("hlv.hu", "hlv.hu a0, (a1)", "hlv.hu", 10, 11, _, _),
    ("hlvx.hu", "hlvx.hu a0, (a1)", "hlvx.hu", 10, 11, _, _),
    ("hlv.w", "hlv.w a0, (a1)", "hlv.w", 10, 11, _, _),
    ("hlv.wu", "hlv.wu a0, (a1)", "hlv.wu", 10, 11, _, _),
    ("hlvx.wu", "hlvx.wu t6, (s11)", "hlvx.wu", 31, 27, _, _),
    ("hlv.d", "hlv.d a0, (a1)", "hlv.d", 10, 11, _, _),
    ("hsv.b", "hsv.b a2, (a1)", "hsv.b", _, 11, 12, _),
    ("hsv.h", "hsv.h a2, (a1)", "hsv.h", _, 11, 12, _),
    ("hsv.w", "hsv.w a2, (a1)", "hsv.w", _, 11, 12, _),
    ("hsv.d", "hsv.d ra, (s11)", "hsv.d", _, 27, 1, _),
    ("flw", "flw fa0, -8(a1)", "flw", 10, 11, _, -8),
    ("fld", "fld ft0, 2047(t6)", "fld", X0, 31, _, 2047),
    ("fsw", "fsw fa2, 16(a1)", "fsw", _, 11, 12, 16),
    ("fsd", "fsd ft11, -2048(sp)", "fsd", _, 2, 31, -2048),
]


def _float_cases() -> list[tuple]:
    """One case per F/D computational instruction: fa0/a0 <- fa1/a1, fa2, fa3 (10..13)."""
    cases = []
    for e in BASE:
        if not e.operands.startswith("FR"):
            continue
        name = e.name
        to_x = name.startswith(("fcvt.w", "fcvt.l", "fmv.x", "fclass", "feq", "flt", "fle"))
        from_x = name in ("fmv.w.x", "fmv.d.x") or (
            name.startswith(("fcvt.s.", "fcvt.d.")) and name.split(".")[2] in ("w", "wu", "l", "lu")
        )
        args = ["a0" if to_x else "fa0", "a1" if from_x else "fa1"]
        rs2 = _
        if e.operands in ("FR", "FRN", "FR4"):
            args.append("fa2")
            rs2 = 12
        if e.operands == "FR4":
            args.append("fa3")
        if e.operands in ("FR", "FR1", "FR4") and name not in ("fcvt.d.s", "fcvt.d.w", "fcvt.d.wu"):
            args.append("rtz")
        cases.append((name, f"{name} {', '.join(args)}", name, 10, 11, rs2, _))
    return cases


BASE_CASES += _float_cases()

COMPRESSED_CASES = [
    ("c.addi4spn", "c.addi4spn a0, sp, 1020", "addi", 10, 2, _, 1020),
    ("c.addi4spn", "c.addi4spn s0, sp, 4", "addi", 8, 2, _, 4),
    ("c.lw", "c.lw a0, 124(a1)", "lw", 10, 11, _, 124),
    ("c.lw", "c.lw s1, 4(a5)", "lw", 9, 15, _, 4),
    ("c.ld", "c.ld a0, 248(a1)", "ld", 10, 11, _, 248),
    ("c.ld", "c.ld a5, 8(s0)", "ld", 15, 8, _, 8),
    ("c.sw", "c.sw a2, 64(a1)", "sw", _, 11, 12, 64),
    ("c.sd", "c.sd a2, 128(a1)", "sd", _, 11, 12, 128),
    ("c.addi", "c.addi a0, -32", "addi", 10, 10, _, -32),
    ("c.addi", "c.addi t6, 31", "addi", 31, 31, _, 31),
    ("c.addi", "c.nop", "addi", X0, 0, _, 0),
    ("c.addiw", "c.addiw a0, -1", "addiw", 10, 10, _, -1),
    ("c.addiw", "c.addiw ra, 0", "addiw", 1, 1, _, 0),
    ("c.li", "c.li a0, -32", "addi", 10, 0, _, -32),
    ("c.li", "c.li s11, 31", "addi", 27, 0, _, 31),
    ("c.addi16sp", "c.addi16sp sp, -512", "addi", 2, 2, _, -512),
    ("c.addi16sp", "c.addi16sp sp, 496", "addi", 2, 2, _, 496),
    ("c.lui", "c.lui a0, 0x1f", "lui", 10, _, _, 0x1F000),
    ("c.lui", "c.lui ra, 0xfffe0", "lui", 1, _, _, -0x20000),
    ("c.srli", "c.srli a0, 63", "srli", 10, 10, _, 63),
    ("c.srli", "c.srli s0, 1", "srli", 8, 8, _, 1),
    ("c.srai", "c.srai a1, 32", "srai", 11, 11, _, 32),
    ("c.andi", "c.andi a2, -1", "andi", 12, 12, _, -1),
    ("c.andi", "c.andi a5, 0x15", "andi", 15, 15, _, 0x15),
    ("c.sub", "c.sub s0, s1", "sub", 8, 8, 9, _),
    ("c.xor", "c.xor a0, a5", "xor", 10, 10, 15, _),
    ("c.or", "c.or a1, a2", "or", 11, 11, 12, _),
    ("c.and", "c.and a5, s0", "and", 15, 15, 8, _),
    ("c.subw", "c.subw a0, a1", "subw", 10, 10, 11, _),
    ("c.addw", "c.addw s1, a3", "addw", 9, 9, 13, _),
    ("c.j", "c.j .-2048", "jal", X0, _, _, -2048),
    ("c.j", "c.j .+0x556", "jal", X0, _, _, 0x556),
    ("c.beqz", "c.beqz a0, .-256", "beq", _, 10, 0, -256),
    ("c.bnez", "c.bnez a5, .+0xaa", "bne", _, 15, 0, 0xAA),
    ("c.slli", "c.slli a0, 63", "slli", 10, 10, _, 63),
    ("c.slli", "c.slli t6, 1", "slli", 31, 31, _, 1),
    ("c.lwsp", "c.lwsp a0, 252(sp)", "lw", 10, 2, _, 252),
    ("c.lwsp", "c.lwsp ra, 4(sp)", "lw", 1, 2, _, 4),
    ("c.ldsp", "c.ldsp ra, 504(sp)", "ld", 1, 2, _, 504),
    ("c.ldsp", "c.ldsp t6, 8(sp)", "ld", 31, 2, _, 8),
    ("c.jr", "c.jr a1", "jalr", X0, 11, _, 0),
    ("c.jr", "c.jr ra", "jalr", X0, 1, _, 0),
    ("c.mv", "c.mv a0, a1", "add", 10, 0, 11, _),
    ("c.mv", "c.mv t6, ra", "add", 31, 0, 1, _),
    ("c.ebreak", "c.ebreak", "ebreak", _, _, _, _),
    ("c.jalr", "c.jalr a1", "jalr", 1, 11, _, 0),
    ("c.jalr", "c.jalr t6", "jalr", 1, 31, _, 0),
    ("c.add", "c.add a0, a1", "add", 10, 10, 11, _),
    ("c.add", "c.add s11, t6", "add", 27, 27, 31, _),
    ("c.swsp", "c.swsp a1, 252(sp)", "sw", _, 2, 11, 252),
    ("c.sdsp", "c.sdsp a1, 504(sp)", "sd", _, 2, 11, 504),
    ("c.sdsp", "c.sdsp ra, 8(sp)", "sd", _, 2, 1, 8),
    ("c.fld", "c.fld fa0, 8(a1)", "fld", 10, 11, _, 8),
    ("c.fsd", "c.fsd fa2, 248(a1)", "fsd", _, 11, 12, 248),
    ("c.fldsp", "c.fldsp ft0, 504(sp)", "fld", X0, 2, _, 504),  # f0: legal, unlike c.ldsp
    ("c.fsdsp", "c.fsdsp fa1, 8(sp)", "fsd", _, 2, 11, 8),
]

CASES = [(*case, 4) for case in BASE_CASES] + [(*case, 2) for case in COMPRESSED_CASES]


@pytest.fixture(scope="module")
def tables():
    return build_tables()


@pytest.fixture(scope="module")
def assembled():
    """Every case assembled in one binary, one case per 4-byte slot."""
    lines = [H_EXTENSION]
    for _name, source, *_rest, length in CASES:
        lines.append(".option norvc" if length == 4 else ".option rvc")
        lines.append(".balign 4")
        lines.append(source)
        lines.append(".balign 4")
    binary = assemble("\n".join(lines))
    return {index: binary[4 * index : 4 * index + 4] for index in range(len(CASES))}


def test_every_table_entry_has_a_case():
    assert {case[0] for case in BASE_CASES} == {e.name for e in BASE}
    assert {case[0] for case in COMPRESSED_CASES} == {e.name for e in COMPRESSED}


@needs_toolchain
@pytest.mark.parametrize(
    ("index", "name", "source", "op", "rd", "rs1", "rs2", "imm", "length"),
    [(i, *case) for i, case in enumerate(CASES)],
    ids=[case[1] for case in CASES],
)
def test_binutils_encoding_decodes(
    assembled, tables, index, name, source, op, rd, rs1, rs2, imm, length
):
    word = int.from_bytes(assembled[index], "little")
    bits = word if length == 4 else word & 0xFFFF
    assert (bits & 3 == 3) == (length == 4), f"binutils emitted a {length}-byte instruction"
    entry = BY_NAME[name]
    assert bits & entry.mask == entry.match, f"{source} ({bits:#x}) does not match {name}"
    got_op, got_rd, got_rs1, got_rs2, got_imm, got_length = decode(bits, tables)
    assert Op(int(got_op)).name == op.upper().replace(".", "_"), f"{source} ({bits:#x})"
    assert got_length == length
    for field, expected, got in (
        ("rd", rd, got_rd),
        ("rs1", rs1, got_rs1),
        ("rs2", rs2, got_rs2),
        ("imm", imm, got_imm),
    ):
        if expected is not None:
            assert got == expected, f"{source} ({bits:#x}): {field}"


@needs_toolchain
def test_binutils_encoding_matches_only_its_own_entry(assembled):
    """Each case's bits match its own table entry and no other of the same length, except
    the overlaps the C chapter itself defines (c.jr within c.mv's pattern, ...)."""
    for index, (name, source, *_rest, length) in enumerate(CASES):
        word = int.from_bytes(assembled[index], "little")
        bits = word if length == 4 else word & 0xFFFF
        table = BASE if length == 4 else COMPRESSED
        matches = {e.name for e in table if bits & e.mask == e.match}
        assert name in matches, source
        for other in matches - {name}:
            assert frozenset((name, other)) in ALLOWED_COMPRESSED_OVERLAPS, (source, other)


def test_instruction_names_are_unique():
    names = [e.name for e in BASE + COMPRESSED]
    assert len(names) == len(set(names))
    assert len(BY_NAME) == len(names)


def test_op_ids_are_unique_and_illegal_is_zero():
    values = [int(op) for op in Op]
    assert len(values) == len(set(values))
    assert Op.ILLEGAL == 0
    assert len(Op) == len(BASE) + 1
    assert {op.name for op in Op} - {"ILLEGAL"} == {e.name.upper().replace(".", "_") for e in BASE}


def test_every_compressed_entry_expands_to_a_base_instruction():
    base_names = {e.name for e in BASE}
    for e in COMPRESSED:
        assert e.expands_to in base_names, e.name
        assert e.length == 2
        assert e.match & 3 != 3, f"{e.name}: quadrant 3 is for 32-bit instructions"
        assert e.mask >> 16 == 0 and e.match & ~e.mask == 0


def test_base_entries_are_well_formed():
    for e in BASE:
        assert e.length == 4
        assert e.match & 3 == 3, e.name
        assert e.mask & 0x7F == 0x7F, f"{e.name}: the opcode is fixed"
        assert e.match & ~e.mask == 0
        assert e.mask >> 32 == 0


def test_base_table_has_no_overlap():
    check_overlaps(BASE, set())


def test_check_overlaps_rejects_artificial_overlap():
    addi = BY_NAME["addi"]
    # an encoding fixing only the opcode overlaps addi (and every other OP-IMM instruction)
    wide = Encoding("wide", "I", 0x7F, 0x13, 4)
    with pytest.raises(ValueError, match="overlap"):
        check_overlaps([addi, wide], set())
    check_overlaps([addi, wide], {frozenset(("addi", "wide"))})


def test_check_overlaps_rejects_exact_duplicate():
    add = BY_NAME["add"]
    clone = Encoding("add2", add.operands, add.mask, add.match, 4)
    with pytest.raises(ValueError, match="overlap"):
        check_overlaps([add, clone], set())


def test_compressed_overlaps_need_declaring():
    with pytest.raises(ValueError, match="overlap"):
        check_overlaps(COMPRESSED, set())
    check_overlaps(COMPRESSED, ALLOWED_COMPRESSED_OVERLAPS)


def test_disjoint_encodings_pass():
    check_overlaps([BY_NAME["add"], BY_NAME["sub"], BY_NAME["addi"]], set())


# 32-bit encodings the spec leaves reserved (or that belong to extensions rvh lacks): each is
# a legal instruction with one field changed.
RESERVED_BASE = [
    (0x0205_151B, "slliw with shamt[5] = 1"),
    (0x0205_551B, "srliw with shamt[5] = 1"),
    (0x4205_551B, "sraiw with shamt[5] = 1"),
    (0x0405_1513, "slli with funct6 = 000001"),
    (0x4405_5513, "srai with funct6 = 010001"),
    (0x1015_A52F, "lr.w with rs2 = 1"),
    (0x0005_9567, "jalr with funct3 = 1"),
    (0x0005_F503, "load with funct3 = 7"),
    (0x00C5_C023, "store with funct3 = 4"),
    (0x00C5_A063, "branch with funct3 = 2"),
    (0x00C5_852F, "AMO with funct3 = 0"),
    (0x28C5_A52F, "AMO with funct5 = 00101"),
    (0x3405_C573, "SYSTEM with funct3 = 4"),
    (0x1050_0573, "wfi with rd = a0"),
    (0x12C5_8573, "sfence.vma with rd = a0"),
    (0x0000_8073, "ecall with rs1 = 1"),
    (0x3020_8073, "mret with rs1 = 1"),
    (0x02B5_153B, "OP-32 M funct3 = 1 (no mulhw)"),
    (0x40B5_153B, "sllw with funct7 = 0100000"),
    (0x40B5_1533, "sll with funct7 = 0100000"),
    (0x0000_000B, "custom-0"),
    (0x0000_0007, "LOAD-FP with funct3 = 0"),
    (0x0400_0053, "OP-FP with fmt = H (no Zfh)"),
    (0x0000_2053 | (0x10 << 25) | (3 << 12), "fsgnj.s with funct3 = 3"),
    (0x0000_0043 | (2 << 25), "fmadd with fmt = H"),
    (0xFFFF_FFFF, "all ones"),
]


@pytest.mark.parametrize(
    ("bits", "what"), RESERVED_BASE, ids=[f"{b:#010x}" for b, _ in RESERVED_BASE]
)
def test_reserved_base_encoding_decodes_illegal(tables, bits, what):
    op, _rd, _rs1, _rs2, _imm, length = decode(bits, tables)
    assert op == Op.ILLEGAL, what
    assert length == 4

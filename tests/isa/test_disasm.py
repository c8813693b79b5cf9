"""The disassembler/encoder (rvh/isa/disasm.py) against GNU binutils and against the kernel's
own decoder: two independent readings of the same encoding tables must agree."""

from __future__ import annotations

import random
import re
import subprocess

import numpy as np
import pytest
from support import CROSS, needs_toolchain

from rvh.cpu.decode import decode as kernel_decode
from rvh.cpu.layout import X_SINK
from rvh.cpu.tables import build_tables
from rvh.isa.disasm import decode, disassemble, encode
from rvh.isa.instructions import BASE, BY_NAME, COMPRESSED, op_of


def random_words(count_per_encoding: int, seed: int) -> list[tuple[int, int]]:
    """(bits, length): every encoding with random values in its free bits."""
    rng = random.Random(seed)
    words = []
    for e in BASE + COMPRESSED:
        width = 32 if e.length == 4 else 16
        for _ in range(count_per_encoding):
            words.append(((rng.getrandbits(width) & ~e.mask) | e.match, e.length))
    return words


def _normalize(text: str) -> str:
    text = re.sub(r" <[^>]*>", "", text.split("#")[0]).strip()
    text = re.sub(r"\s+", " ", text).replace(", ", ",")
    return text


@needs_toolchain
def test_matches_objdump(tmp_path):
    words = random_words(25, seed=2)
    source = "".join(f".insn {length}, {bits:#x}\n" for bits, length in words)
    (tmp_path / "w.S").write_text(source)
    subprocess.run(
        [
            CROSS + "as",
            "-march=rv64imafdc_zicsr_zifencei_h",
            "-o",
            str(tmp_path / "w.o"),
            str(tmp_path / "w.S"),
        ],
        check=True,
    )
    listing = subprocess.run(
        [CROSS + "objdump", "-d", "-M", "no-aliases", str(tmp_path / "w.o")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = [line for line in listing.splitlines() if re.match(r"^\s+[0-9a-f]+:\t", line)]
    assert len(lines) == len(words)
    pc = 0
    mismatches = []
    for (bits, length), line in zip(words, lines, strict=True):
        theirs = _normalize(" ".join(line.split("\t")[2:]))
        mine = _normalize(disassemble(bits, pc))
        pc += length
        if mine.split()[0] in ("j", "jal", "c.j", "c.beqz", "c.bnez") or mine.startswith("b"):
            mine = re.sub(r"0x([0-9a-f]+)$", r"\1", mine)  # objdump: bare hex targets
        if theirs == mine:
            continue
        if theirs.startswith(".4byte") and mine.startswith(("fence", "fence.i")):
            continue  # objdump rejects nonzero reserved fence fields; the spec ignores them
        if re.sub(r"64( |$)", r"\1", theirs).startswith(mine.split(",")[0].split()[0]) and (
            theirs.startswith(("c.slli64", "c.srli64", "c.srai64"))
        ):
            continue  # objdump's name for a compressed shift by 0 (a HINT)
        if re.match(r"csr", mine) and re.search(r",0x[0-9a-f]+,", mine):
            continue  # a CSR rvh does not implement: objdump knows a name for it
        if mine.startswith("illegal") and theirs.startswith((".2byte", ".4byte", "c.unimp")):
            continue  # both refuse it
        if theirs.startswith(".4byte") and mine.startswith(("fcvt.d.s", "fcvt.d.w")):
            continue  # objdump 2.40 wants rm = 0 in the exact conversions; the spec has a field
        if mine.startswith("illegal") and theirs.startswith("c.addi16sp sp,0"):
            continue  # reserved (16.5), objdump decodes it anyway
        mismatches.append(f"{bits:#010x}: rvh {mine!r}, objdump {theirs!r}")
    assert not mismatches, "\n".join(mismatches[:30])


def test_encode_decode_round_trip():
    for bits, _ in random_words(40, seed=7):
        ins = decode(bits)
        if ins is None:
            continue  # a reserved compressed encoding
        operands = dict(ins.operands)
        if ins.compressed:
            from rvh.isa.disasm import SCHEME_FIELDS

            fields = SCHEME_FIELDS[ins.encoding.operands]
            operands = {k: v for k, v in operands.items() if k in fields}
        assert encode(ins.name, **operands) == bits & ((1 << (8 * ins.length)) - 1) or (
            ins.encoding.operands in ("FENCE", "AMO", "LR") or ins.name == "fence.i"
        ), ins


@pytest.mark.parametrize(
    "bits", [0x0000, 0x0004, 0x6101, 0x4002, 0x6002, 0x8002, 0x8000, 0x9C41, 0x2001]
)
def test_reserved_compressed_encodings_are_illegal(bits):
    assert decode(bits) is None
    assert disassemble(bits).startswith("illegal")


@pytest.mark.parametrize(
    "name, operands, text",
    [
        ("addi", {"rd": 10, "rs1": 11, "imm": -5}, "addi a0, a1, -5"),
        ("sd", {"rs1": 2, "rs2": 10, "imm": -8}, "sd a0, -8(sp)"),
        ("csrrw", {"rd": 10, "rs1": 11, "csr": 0x340}, "csrrw a0, mscratch, a1"),
        ("amoadd.d", {"rd": 10, "rs1": 12, "rs2": 11, "aq": 1}, "amoadd.d.aq a0, a1, (a2)"),
        ("c.lwsp", {"rd": 10, "imm": 12}, "c.lwsp a0, 12(sp)"),
        ("c.addi16sp", {"imm": -64}, "c.addi16sp sp, -64"),
        ("beq", {"rs1": 10, "rs2": 11, "imm": -4}, "beq a0, a1, 0x7ffffffc"),
        ("hlv.b", {"rd": 10, "rs1": 11}, "hlv.b a0, (a1)"),
    ],
)
def test_encode_and_disassemble(name, operands, text):
    assert disassemble(encode(name, **operands), pc=0x8000_0000) == text


def test_encode_refuses_what_does_not_fit():
    with pytest.raises(ValueError):
        encode("addi", rd=1, rs1=1, imm=4096)
    with pytest.raises(ValueError):
        encode("c.lw", rd=1, rs1=8, imm=0)  # rd' must be x8..x15
    with pytest.raises(ValueError):
        encode("c.addi4spn", rd=9, imm=0)  # reserved
    with pytest.raises(ValueError):
        encode("beq", rs1=1, rs2=2, imm=3)  # odd offset


def test_agrees_with_the_kernel_decoder():
    """Operands of every encoding as rvh/cpu/decode.py reads them (rd x0 -> the sink slot,
    compressed -> the base instruction they expand to)."""
    tables = build_tables()
    for bits, length in random_words(30, seed=11):
        op, rd, rs1, rs2, imm, size = kernel_decode(np.int64(bits), tables)
        ins = decode(bits)
        assert size == length
        if ins is None:
            assert op == 0, hex(bits)
            continue
        assert op == op_of(ins.base_name), (hex(bits), ins.name)
        fmt = BY_NAME[ins.base_name].operands
        expected_rd = ins.operands.get("rd", 0)
        if fmt in ("S", "B", "SFENCE", "HSV", "SYS"):
            expected_rd = 0
        if fmt != "FENCE":  # the fences' rd field is reserved and ignored
            assert rd == (X_SINK if expected_rd == 0 else expected_rd), (hex(bits), ins.name)
        if "rs1" in ins.operands and fmt not in ("CSRI", "SYS", "FENCE"):
            assert rs1 == ins.operands["rs1"], (hex(bits), ins.name)
        if "rs2" in ins.operands:
            assert rs2 == ins.operands["rs2"], (hex(bits), ins.name)
        if fmt in ("CSR", "CSRI"):
            assert imm == ins.operands["csr"], (hex(bits), ins.name)
        elif "imm" in ins.operands and fmt not in ("FENCE",):
            assert imm == ins.operands["imm"], (hex(bits), ins.name)

"""Hypothesis strategies for random programs (see randprog.py for what a program is).

Operands are drawn per encoding family from ``rvh/isa/instructions.py``; values lean towards
the edges (0, -1, the sign bits, 32-bit boundaries) that arithmetic bugs live at.  Everything
shrinks: programs to one, bodies to a few items, immediates and register values to 0.
"""

from __future__ import annotations

from hypothesis import strategies as st
from randprog import (
    CSR_ABSENT,
    CSR_READ_ONLY,
    CSR_WRITABLE,
    DATA_SIZE,
    LOADED,
    WRITABLE,
    Atomic,
    Branch,
    IndirectJump,
    Insn,
    Program,
    Raw,
)

from rvh.isa.instructions import BASE

R_TYPE = tuple(e.name for e in BASE if e.operands == "R")
I_ALU = ("addi", "slti", "sltiu", "xori", "ori", "andi", "addiw")
SHIFTS64 = ("slli", "srli", "srai")
SHIFTS32 = ("slliw", "srliw", "sraiw")
LOADS = {"lb": 1, "lh": 2, "lw": 4, "ld": 8, "lbu": 1, "lhu": 2, "lwu": 4}
STORES = {"sb": 1, "sh": 2, "sw": 4, "sd": 8}
BRANCHES = ("beq", "bne", "blt", "bge", "bltu", "bgeu")
AMOS = tuple(e.name for e in BASE if e.operands == "AMO")
LRS = ("lr.w", "lr.d")
CA = ("c.sub", "c.xor", "c.or", "c.and", "c.subw", "c.addw")
PRIME = tuple(range(8, 16))  # x8..x15, the registers of the 3-bit fields
PRIME_WRITABLE = tuple(r for r in PRIME if r in WRITABLE)  # not s0, a data pointer

EDGES64 = (
    0,
    1,
    2,
    -1,
    -2,
    0x7FFF_FFFF,
    0x8000_0000,
    -0x8000_0000,
    0xFFFF_FFFF,
    0x1_0000_0000,
    0x7FFF_FFFF_FFFF_FFFF,
    -0x8000_0000_0000_0000,
    0x8000_0000_0000_0001,
    63,
    64,
    32,
    31,
)

value64 = st.one_of(
    st.sampled_from(EDGES64),
    st.integers(-64, 64),
    st.integers(-(2**63), 2**64 - 1),
)
writable = st.sampled_from(WRITABLE)
any_register = st.integers(0, 31)


def signed(bits: int) -> st.SearchStrategy[int]:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return st.one_of(st.sampled_from((0, 1, -1, low, high)), st.integers(low, high))


def _insn(name: str, **operands: int) -> Insn:
    return Insn(name, tuple(sorted(operands.items())))


@st.composite
def alu(draw) -> Insn:
    kind = draw(st.sampled_from(("r", "i", "sh", "shw", "u")))
    if kind == "r":
        return _insn(
            draw(st.sampled_from(R_TYPE)),
            rd=draw(writable),
            rs1=draw(any_register),
            rs2=draw(any_register),
        )
    if kind == "i":
        return _insn(
            draw(st.sampled_from(I_ALU)),
            rd=draw(writable),
            rs1=draw(any_register),
            imm=draw(signed(12)),
        )
    if kind == "sh":
        return _insn(
            draw(st.sampled_from(SHIFTS64)),
            rd=draw(writable),
            rs1=draw(any_register),
            imm=draw(st.integers(0, 63)),
        )
    if kind == "shw":
        return _insn(
            draw(st.sampled_from(SHIFTS32)),
            rd=draw(writable),
            rs1=draw(any_register),
            imm=draw(st.integers(0, 31)),
        )
    imm = draw(st.integers(-(2**19), 2**19 - 1)) << 12
    return _insn(draw(st.sampled_from(("lui", "auipc"))), rd=draw(writable), imm=imm)


@st.composite
def memory(draw) -> Insn:
    """Loads and stores in the data area (misaligned ones too), through x31."""
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(LOADS)))
        size = LOADS[name]
        return _insn(name, rd=draw(writable), rs1=31, imm=draw(st.integers(0, DATA_SIZE - size)))
    name = draw(st.sampled_from(sorted(STORES)))
    size = STORES[name]
    return _insn(name, rs1=31, rs2=draw(any_register), imm=draw(st.integers(0, DATA_SIZE - size)))


@st.composite
def compressed(draw) -> Insn:
    name = draw(
        st.sampled_from(
            (
                "c.addi4spn",
                "c.lw",
                "c.ld",
                "c.sw",
                "c.sd",
                "c.addi",
                "c.addiw",
                "c.li",
                "c.lui",
                "c.srli",
                "c.srai",
                "c.andi",
                "ca",
                "c.slli",
                "c.lwsp",
                "c.ldsp",
                "c.mv",
                "c.add",
                "c.swsp",
                "c.sdsp",
            )
        )
    )
    prime_rd = st.sampled_from(PRIME_WRITABLE)
    if name == "c.addi4spn":
        return _insn(name, rd=draw(prime_rd), imm=4 * draw(st.integers(1, 255)))
    if name in ("c.lw", "c.sw"):
        imm = 4 * draw(st.integers(0, 31))
        if name == "c.lw":
            return _insn(name, rd=draw(prime_rd), rs1=8, imm=imm)
        return _insn(name, rs2=draw(st.sampled_from(PRIME)), rs1=8, imm=imm)
    if name in ("c.ld", "c.sd"):
        imm = 8 * draw(st.integers(0, 31))
        if name == "c.ld":
            return _insn(name, rd=draw(prime_rd), rs1=8, imm=imm)
        return _insn(name, rs2=draw(st.sampled_from(PRIME)), rs1=8, imm=imm)
    if name in ("c.addi", "c.li"):
        return _insn(name, rd=draw(writable), imm=draw(signed(6)))
    if name == "c.addiw":
        return _insn(name, rd=draw(st.sampled_from(WRITABLE[1:])), imm=draw(signed(6)))
    if name == "c.lui":
        imm = draw(st.sampled_from([i for i in range(-32, 32) if i])) << 12
        return _insn(name, rd=draw(writable), imm=imm)
    if name in ("c.srli", "c.srai"):
        return _insn(name, rd=draw(prime_rd), imm=draw(st.integers(0, 63)))
    if name == "c.andi":
        return _insn(name, rd=draw(prime_rd), imm=draw(signed(6)))
    if name == "ca":
        return _insn(draw(st.sampled_from(CA)), rd=draw(prime_rd), rs2=draw(st.sampled_from(PRIME)))
    if name == "c.slli":
        return _insn(name, rd=draw(writable), imm=draw(st.integers(0, 63)))
    if name in ("c.lwsp", "c.swsp"):
        imm = 4 * draw(st.integers(0, DATA_SIZE // 4 - 1))
        if name == "c.lwsp":
            return _insn(name, rd=draw(st.sampled_from(WRITABLE[1:])), imm=imm)
        return _insn(name, rs2=draw(any_register), imm=imm)
    if name in ("c.ldsp", "c.sdsp"):
        imm = 8 * draw(st.integers(0, DATA_SIZE // 8 - 1))
        if name == "c.ldsp":
            return _insn(name, rd=draw(st.sampled_from(WRITABLE[1:])), imm=imm)
        return _insn(name, rs2=draw(any_register), imm=imm)
    # c.mv / c.add: rs2 = x0 would be c.jr / c.jalr / c.ebreak
    return _insn(name, rd=draw(writable), rs2=draw(st.integers(1, 31)))


@st.composite
def control(draw) -> object:
    kind = draw(st.sampled_from(("branch", "c.branch", "jal", "c.j", "indirect")))
    skip = draw(st.integers(0, 8))
    if kind == "branch":
        return Branch(
            draw(st.sampled_from(BRANCHES)),
            rs1=draw(any_register),
            rs2=draw(any_register),
            skip=skip,
        )
    if kind == "c.branch":
        return Branch(
            draw(st.sampled_from(("c.beqz", "c.bnez"))), rs1=draw(st.sampled_from(PRIME)), skip=skip
        )
    if kind == "jal":
        return Branch("jal", rd=draw(writable), skip=skip)
    if kind == "c.j":
        return Branch("c.j", skip=skip)
    name = draw(st.sampled_from(("jalr", "c.jr", "c.jalr")))
    return IndirectJump(
        name,
        tmp=draw(st.sampled_from(WRITABLE[1:])),
        rd=draw(writable) if name == "jalr" else 0,
        skip=skip,
    )


@st.composite
def atomic(draw) -> Atomic:
    name = draw(st.sampled_from(AMOS + LRS))
    size = 4 if name.endswith(".w") else 8
    aligned = draw(st.integers(0, DATA_SIZE // size - 1)) * size
    offset = draw(st.one_of(st.just(aligned), st.integers(0, DATA_SIZE - size)))
    return Atomic(
        name,
        tmp=draw(st.sampled_from(WRITABLE[1:])),
        rd=draw(writable),
        rs2=draw(any_register),
        offset=offset,
        aq=draw(st.integers(0, 1)),
        rl=draw(st.integers(0, 1)),
    )


@st.composite
def lr_sc(draw) -> list[object]:
    """LR then SC on the same doubleword (the SC succeeds unless something intervenes)."""
    size = draw(st.sampled_from((4, 8)))
    suffix = ".w" if size == 4 else ".d"
    tmp = draw(st.sampled_from(WRITABLE[1:]))
    offset = draw(st.integers(0, DATA_SIZE // size - 1)) * size
    lr = Atomic("lr" + suffix, tmp=tmp, rd=draw(writable), rs2=0, offset=offset)
    middle = draw(st.lists(alu(), max_size=2))
    sc = Atomic(
        "sc" + suffix,
        tmp=tmp,
        rd=draw(writable),
        rs2=draw(any_register),
        offset=offset if draw(st.integers(0, 3)) else draw(st.integers(0, 30)) * size,
    )
    return [lr, *middle, sc]


EXCLUDED_WITH_H: tuple[int, ...] = ()  # CSRs not written with H (while an rvh bug is open)


@st.composite
def csr_access(draw, hypervisor: bool = False) -> Insn:
    kind = draw(st.sampled_from(("write", "read", "absent")))
    if kind == "write":
        allowed = [c for c in CSR_WRITABLE if not (hypervisor and c in EXCLUDED_WITH_H)]
        csr = draw(st.sampled_from(allowed))
    elif kind == "read":
        csr = draw(st.sampled_from(CSR_READ_ONLY))
    else:
        csr = draw(st.sampled_from(CSR_ABSENT))
    name = draw(st.sampled_from(("csrrw", "csrrs", "csrrc", "csrrwi", "csrrsi", "csrrci")))
    rd = draw(writable)
    if kind == "read":  # only the forms that do not write (csrrs/csrrc x0, csrrsi/ci 0)
        name = draw(st.sampled_from(("csrrs", "csrrc", "csrrsi", "csrrci")))
        if name in ("csrrs", "csrrc"):
            return _insn(name, rd=rd, rs1=0, csr=csr)
        return _insn(name, rd=rd, imm=0, csr=csr)
    if name.endswith("i"):
        return _insn(name, rd=rd, imm=draw(st.integers(0, 31)), csr=csr)
    return _insn(name, rd=rd, rs1=draw(any_register), csr=csr)


@st.composite
def trap(draw) -> object:
    kind = draw(
        st.sampled_from(("ecall", "ebreak", "c.ebreak", "illegal", "load0", "store0", "amo0"))
    )
    if kind in ("ecall", "ebreak", "c.ebreak"):
        return _insn(kind)
    if kind == "illegal":
        return draw(
            st.sampled_from(
                (
                    Raw(0x0000, 2),
                    Raw(0xFFFFFFFF, 4),
                    Raw(0x0000_0073 | (0x105 << 20) | (1 << 7), 4),
                    Raw(0x4002, 2),
                    Raw(0x8002, 2),
                    Raw(0x30200073 | (1 << 15), 4),
                )
            )
        )
    if kind == "load0":  # no memory at 0..0x7ff: access fault
        name = draw(st.sampled_from(sorted(LOADS)))
        return _insn(name, rd=draw(writable), rs1=0, imm=draw(st.integers(0, 2047)))
    if kind == "store0":
        name = draw(st.sampled_from(sorted(STORES)))
        return _insn(name, rs1=0, rs2=draw(any_register), imm=draw(st.integers(0, 2047)))
    name = draw(st.sampled_from(AMOS))
    return Atomic(
        name,
        tmp=draw(st.sampled_from(WRITABLE[1:])),
        rd=draw(writable),
        rs2=draw(any_register),
        offset=draw(st.integers(0, 64)) * 8,
        base=0,
    )


@st.composite
def fence(draw) -> Insn:
    if draw(st.booleans()):
        return _insn("fence.i")
    return _insn("fence", pred=draw(st.integers(0, 15)), succ=draw(st.integers(0, 15)))


@st.composite
def items(draw, hypervisor: bool = False) -> list[object]:
    """One to a few items (most are one instruction)."""
    kind = draw(
        st.sampled_from(
            (
                "alu",
                "alu",
                "alu",
                "memory",
                "compressed",
                "compressed",
                "control",
                "atomic",
                "lr_sc",
                "csr",
                "trap",
                "fence",
            )
        )
    )
    strategy = {
        "alu": alu(),
        "memory": memory(),
        "compressed": compressed(),
        "control": control(),
        "atomic": atomic(),
        "csr": csr_access(hypervisor),
        "trap": trap(),
        "fence": fence(),
    }.get(kind)
    if strategy is None:
        return draw(lr_sc())
    return [draw(strategy)]


@st.composite
def programs(draw, max_items: int = 40, hypervisor: bool = False) -> Program:
    count = draw(st.integers(1, max_items))
    body: list[object] = []
    for _ in range(count):
        body.extend(draw(items(hypervisor)))
    registers = tuple(draw(value64) for _ in LOADED)
    data = draw(st.binary(min_size=DATA_SIZE, max_size=DATA_SIZE))
    return Program(registers, data, tuple(body))


@st.composite
def batches(
    draw, max_programs: int = 12, max_items: int = 40, hypervisor: bool | None = None
) -> tuple[bool, list[Program]]:
    """(H extension on, programs): the hart configuration is drawn too unless given."""
    if hypervisor is None:
        hypervisor = draw(st.booleans())
    count = draw(st.integers(1, max_programs))
    return hypervisor, [draw(programs(max_items, hypervisor)) for _ in range(count)]

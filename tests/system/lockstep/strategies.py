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
    # distinct within the batch (the campaign counts distinct programs)
    return hypervisor, draw(
        st.lists(programs(max_items, hypervisor), min_size=1, max_size=max_programs, unique=True)
    )


# ---- system programs (sysprog.py): privilege, delegation, paging, traps, interrupts -------------
import sysprog as S  # noqa: E402

TEMPS = (28, 29, 30)  # the M-mode setup's scratch registers
SYSTEM_TMP = tuple(r for r in WRITABLE[1:])
# CSRs a body may read in any mode (a read of a more privileged one traps)
CSR_READ_ALL = (
    *CSR_READ_ONLY,
    0x302, 0x303, 0x304, 0x340, 0x341, 0x342, 0x343, 0x344, 0x306, 0x30A,  # fmt: skip
    0x3A0, 0x3B0, 0x3B7,
    0x140, 0x141, 0x142, 0x143, 0x105, 0x106, 0x10A,
    0x600, 0x602, 0x603, 0x604, 0x606, 0x60A, 0x643, 0x644, 0x645, 0x64A, 0x680,
    0x200, 0x204, 0x205, 0x240, 0x241, 0x242, 0x243, 0x244, 0x280,
    0x34A, 0x34B,
)  # fmt: skip
# CSRs written with any value from a random register (nothing here can take control from the
# M handler: the trap vectors and atp registers are written through CsrChoice)
CSR_FREE = (0x340, 0x341, 0x342, 0x343, 0x140, 0x141, 0x142, 0x143, 0x306, 0x106, 0x10A, 0x100)
CSR_FREE_H = (0x240, 0x241, 0x242, 0x243, 0x643, 0x64A, 0x606, 0x60A, 0x603, 0x200)
# CSRs written with random bits inside a mask: (number, mask)
CSR_MASKED = (
    (0x304, S.SOFTWARE_INTERRUPTS),  # mie
    (0x104, 0x2),  # sie.SSIE
    (0x344, 0x2),  # mip.SSIP
    (0x144, 0x2),  # sip.SSIP
    (0x302, ((1 << 24) - 1) & ~S.MEDELEG_KEEP_IN_M),  # medeleg
    (0x303, (1 << 16) - 1),  # mideleg
    (0x30A, ((1 << 64) - 1) & ~S.MENVCFG_STCE),  # menvcfg
    (0x300, S.MSTATUS_RANDOM),  # mstatus
)
CSR_MASKED_WITH_H = tuple(
    (csr, S.MSTATUS_RANDOM_H if csr == 0x300 else mask) for csr, mask in CSR_MASKED
)
CSR_MASKED_H = (
    (0x604, S.VS_SOFTWARE_INTERRUPT),  # hie
    (0x645, S.VS_SOFTWARE_INTERRUPT),  # hvip
    (0x204, 0x2),  # vsie
    (0x600, S.HSTATUS_RANDOM),  # hstatus
    (0x602, ((1 << 24) - 1) & ~S.HEDELEG_KEEP_IN_HS),  # hedeleg
    (0x344, 0x6),
)
HLV = ("hlv.b", "hlv.bu", "hlv.h", "hlv.hu", "hlv.w", "hlv.wu", "hlv.d", "hlvx.hu", "hlvx.wu")
HSV = ("hsv.b", "hsv.h", "hsv.w", "hsv.d")
ACCESS_SIZE = {"b": 1, "h": 2, "w": 4, "d": 8}
system_tmp = st.sampled_from(SYSTEM_TMP)


def _size_of(name: str) -> int:
    return ACCESS_SIZE[name.split(".")[1][0]]


# Exception codes QEMU 7.2 reports as one another in some case (a rule recognizes each case,
# in mcause): misaligned AMOs 6/4 and AMO access faults 7/5 always trap into M, and with H
# guest-page faults 20/21/23 (D22, D23, D29) too.
KEPT_IN_M = (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7)
KEPT_IN_M_H = KEPT_IN_M | (1 << 21) | (1 << 23)


def delegation(draw, register: int, hypervisor: bool) -> int:
    """A random medeleg (0x302) or hedeleg (0x602) value the handlers can live with."""
    keep = S.MEDELEG_KEEP_IN_M if register == 0x302 else S.HEDELEG_KEEP_IN_HS
    keep |= KEPT_IN_M_H if hypervisor else KEPT_IN_M
    return draw(value64) & 0xFFFFFF & ~keep


@st.composite
def masked_write(draw, hypervisor: bool, setup: bool = False) -> S.CsrValue:
    """A write of random bits inside a mask (in a body, or with ``setup`` in M-mode set-up
    code, whose scratch registers are x28-x30)."""
    csr, mask = draw(
        st.sampled_from(CSR_MASKED_WITH_H + CSR_MASKED_H if hypervisor else CSR_MASKED)
    )
    op = draw(st.sampled_from(("csrrw", "csrrs", "csrrc")))
    rd = 0 if setup else draw(writable)
    if csr in (0x302, 0x602):
        return S.CsrValue("csrrw", csr, delegation(draw, csr, hypervisor), rd,
                          draw(st.sampled_from(TEMPS) if setup else system_tmp))  # fmt: skip
    if csr == 0x600:  # hstatus: SPVP stays 1 (see sysprog.HSTATUS_RANDOM), VSXL 2
        return S.CsrValue("csrrw", csr, (draw(value64) & mask) | S.HSTATUS_FIXED, rd,
                          draw(st.sampled_from(TEMPS) if setup else system_tmp))  # fmt: skip
    return S.CsrValue(
        op, csr, draw(value64) & mask, rd, draw(st.sampled_from(TEMPS) if setup else system_tmp)
    )


@st.composite
def choice_write(draw, hypervisor: bool, csr: int | None = None, temps=None) -> S.CsrChoice:
    options = [0x105, 0x180] + ([0x205, 0x280, 0x680] if hypervisor else [])
    csr = draw(st.sampled_from(options)) if csr is None else csr
    if csr in (0x180, 0x280, 0x680):
        choice = draw(st.sampled_from(("root", "root", "bare")))
    elif csr == 0x105 and not hypervisor:
        choice = draw(st.sampled_from(("sh", "sh", "sh-upper", "wild")))
    elif csr == 0x105:
        # with H, stvec stays at the S handler's identity address: a fetch fault at stvec
        # folded into the step of a trap a rule re-takes (D9, D14...) hides that trap's cause
        choice = "sh"
    else:
        # vstvec stays at the VS handler's identity address: a fetch fault at vstvec after an
        # exception 2/6 delegated to VS shows D11's cause shift where its rule cannot see it
        choice = "vsh"
    tmp, tmp2 = temps if temps else draw(st.lists(system_tmp, min_size=2, max_size=2, unique=True))
    rd = 0 if temps else draw(writable)
    return S.CsrChoice(csr, choice, rd, tmp, tmp2, draw(st.sampled_from(S.WILD_TARGETS)))


@st.composite
def system_csr(draw, hypervisor: bool) -> object:
    kind = draw(st.sampled_from(("read", "read", "free", "masked", "choice")))
    if kind == "read":
        csr = draw(st.sampled_from(CSR_READ_ALL))
        return _insn("csrrs", rd=draw(writable), rs1=0, csr=csr)
    if kind == "free":
        csr = draw(st.sampled_from(CSR_FREE + (CSR_FREE_H if hypervisor else ())))
        name = draw(st.sampled_from(("csrrw", "csrrs", "csrrc")))
        return _insn(name, rd=draw(writable), rs1=draw(any_register), csr=csr)
    if kind == "masked":
        return draw(masked_write(hypervisor))
    return draw(choice_write(hypervisor))


@st.composite
def xret(draw, mode: str, hypervisor: bool) -> S.XRet:
    name = "mret" if mode == "M" else "sret"
    tmp, tmp2 = draw(st.lists(system_tmp, min_size=2, max_size=2, unique=True))
    target = draw(st.sampled_from(("next", "upper", "upper", "lower", "wild")))
    pp = draw(st.sampled_from((3, 1, 0) if name == "mret" else (1, 1, 0)))
    mpv = draw(st.integers(0, 1)) if hypervisor and name == "mret" else 0
    return S.XRet(name, target, tmp, tmp2, pp, mpv, draw(st.sampled_from(S.WILD_TARGETS)))


@st.composite
def hypervisor_access(draw, probes: tuple[int, ...]) -> object:
    kind = draw(st.sampled_from(("hlv", "hsv", "hfence")))
    tmp = draw(system_tmp)
    if kind == "hfence":
        name = draw(st.sampled_from(("hfence.vvma", "hfence.gvma")))
        return _insn(name, rs1=draw(any_register), rs2=draw(any_register))
    name = draw(st.sampled_from(HLV if kind != "hsv" else HSV))
    offset = draw(st.integers(0, 255 - _size_of(name)))
    return S.Addressed(name, tmp, draw(writable), draw(any_register), offset)


@st.composite
def loop(draw) -> S.Loop:
    counter = draw(system_tmp)
    body = []
    for insn in draw(st.lists(st.one_of(alu(), memory()), min_size=1, max_size=4)):
        operands = dict(insn.operands)
        if operands.get("rd") == counter:
            operands["rd"] = 0
        body.append(_insn(insn.name, **operands))
    return S.Loop(counter, draw(st.integers(1, 6)), tuple(body))


@st.composite
def self_modify(draw) -> S.SelfModify:
    tmp, value = draw(st.lists(system_tmp, min_size=2, max_size=2, unique=True))
    old, new = draw(alu()), draw(alu())
    return S.SelfModify(tmp, value, (old.name, old.operands), (new.name, new.operands))


@st.composite
def system_item(
    draw, mode: str, hypervisor: bool, wfi: bool, probes: tuple[int, ...]
) -> list[object]:
    """One body item in ``mode`` (the mode the body starts in: it may change on the way)."""
    kinds = ["plain", "plain", "plain", "csr", "csr", "xret", "fence", "loop", "smc", "probe"]
    kinds += ["interrupt", "wfi"] if wfi else ["interrupt"]
    if hypervisor:
        kinds += ["hypervisor"]
    if mode == "M":
        kinds += ["mprv"]
    kind = draw(st.sampled_from(kinds))
    if kind == "plain":  # (no AMO at address 0: a page fault there is QEMU's load fault)
        return draw(items(hypervisor).filter(lambda xs: not any(_unwanted(x) for x in xs)))
    if kind == "csr":
        return [draw(system_csr(hypervisor))]
    if kind == "xret":
        if draw(st.integers(0, 5)) == 0:
            return [_insn(draw(st.sampled_from(("mret", "sret"))))]
        return [draw(xret(mode if mode == "M" else "S", hypervisor))]
    if kind == "fence":
        return [_insn("sfence.vma", rs1=draw(any_register), rs2=draw(any_register))]
    if kind == "loop":
        return [draw(loop())]
    if kind == "smc":
        return [draw(self_modify())]
    if kind == "probe":
        name = draw(st.sampled_from(sorted(LOADS) + sorted(STORES)))
        address = draw(st.sampled_from(probes or S.WILD_TARGETS))
        return [S.Addressed(name, draw(system_tmp), draw(writable), draw(any_register), 0, address)]
    if kind == "interrupt":
        kinds = {"M": ("msip", "ssip-m"), "S": ("ssip-s",), "VS": ("ssip-s",)}.get(
            mode, ("ssip-s",)
        )
        if hypervisor and mode in ("M", "S"):
            kinds += ("vssip",)
        tmp, tmp2 = draw(st.lists(system_tmp, min_size=2, max_size=2, unique=True))
        return [S.Interrupt(draw(st.sampled_from(kinds)), tmp, tmp2)]
    if kind == "wfi":
        return [S.MachineWfi()] if mode == "M" else [_insn("wfi")]
    if kind == "mprv":
        name = draw(st.sampled_from(sorted(LOADS) + sorted(STORES)))
        base, tmp = draw(st.lists(system_tmp, min_size=2, max_size=2, unique=True))
        rd = draw(writable.filter(lambda r: r != tmp))
        mpv = draw(st.integers(0, 1)) if hypervisor else 0
        offset = draw(st.integers(0, 255 - LOADS.get(name, STORES.get(name, 8))))
        return [S.MprvAccess(name, tmp, base, rd, draw(any_register), offset,
                             draw(st.sampled_from((0, 1))), mpv)]  # fmt: skip
    return [draw(hypervisor_access(probes))]


def _unwanted(item: object) -> bool:
    """randprog items a system body does not use: its M-mode CSR set, AMOs at address 0."""
    if isinstance(item, Atomic):
        return item.base == 0
    return isinstance(item, Insn) and item.name.startswith("csr")


def _body_pte(draw, mode: str, smc: bool) -> int:
    if draw(st.integers(0, 19)) == 0:
        return S.PTE_V | draw(st.integers(0, 255))
    bits = S.PTE_V | S.PTE_X
    bits |= S.PTE_R if draw(st.integers(0, 4)) else 0
    writable_page = draw(st.integers(0, 3)) if smc else draw(st.integers(0, 4)) == 0
    bits |= S.PTE_W if writable_page else 0
    bits |= S.PTE_A if draw(st.integers(0, 6)) else 0
    bits |= S.PTE_D if draw(st.booleans()) else 0
    bits |= S.PTE_G if draw(st.booleans()) else 0
    bits |= S.PTE_U if mode in ("U", "VU") else 0
    return bits


def _data_pte(draw, mode: str) -> int:
    """The data page stays readable and writable in the episode's mode: QEMU 7.2 reports an
    AMO's page fault as a load page fault (13, the spec says 15) and no rule recognizes that
    (listed in docs/testing.md); page faults come from the probes and load0/store0."""
    # and has A and D set: rvh checks an SC's translation before its reservation and so sets D
    # for an SC that fails, where QEMU 7.2 fails it without a walk (sc-fails-before-trapping's
    # case, with no trap to show it: not in the catalogue; see docs/testing.md)
    bits = S.PTE_V | S.PTE_R | S.PTE_W | S.PTE_A | S.PTE_D
    bits |= S.PTE_X if draw(st.integers(0, 3)) == 0 else 0
    bits |= S.PTE_G if draw(st.booleans()) else 0
    return bits | (S.PTE_U if mode in ("U", "VU") else 0)


@st.composite
def episode_setup(draw, mode: str, space: str, hypervisor: bool, tw: bool) -> list[object]:
    temps = (29, 30)
    setup: list[object] = [
        S.CsrValue("csrrw", 0x302, delegation(draw, 0x302, hypervisor), 0, 30),
        S.CsrValue("csrrw", 0x303, draw(value64) & 0xFFFF, 0, 30),
        S.CsrValue("csrrw", 0x304, draw(value64) & S.SOFTWARE_INTERRUPTS, 0, 30),
        S.CsrValue("csrrc", 0x300, S.MSTATUS_RANDOM | S.MSTATUS_TW | S.MSTATUS_MPRV, 0, 30),
        S.CsrValue(
            "csrrs",
            0x300,
            (draw(value64) & (S.MSTATUS_RANDOM_H if hypervisor else S.MSTATUS_RANDOM))
            | (S.MSTATUS_TW * tw),
            0,
            30,
        ),
        draw(choice_write(hypervisor, 0x105, temps)),
    ]
    translated = space == "upper"
    satp = draw(choice_write(hypervisor, 0x180, temps))
    if translated and mode in ("S", "U"):
        satp = S.CsrChoice(0x180, "root", 0, 29, 30)
    setup.append(satp)
    if hypervisor:
        setup.append(S.CsrValue("csrrw", 0x602, delegation(draw, 0x602, True), 0, 30))
        setup.append(S.CsrValue("csrrw", 0x603, draw(value64) & 0x1FFF, 0, 30))  # hideleg
        hstatus = S.HSTATUS_FIXED | (draw(value64) & S.HSTATUS_RANDOM)
        setup.append(S.CsrValue("csrrw", 0x600, hstatus, 0, 30))
        vsstatus = draw(value64) & (S.MSTATUS_SIE | S.MSTATUS_SPIE | S.MSTATUS_SPP)
        vsstatus |= draw(value64) & (S.MSTATUS_SUM | S.MSTATUS_MXR)
        setup.append(S.CsrValue("csrrw", 0x200, vsstatus | (2 << 32), 0, 30))
        setup.append(draw(choice_write(hypervisor, 0x205, temps)))
        vsatp = draw(choice_write(hypervisor, 0x280, temps))
        if translated and mode in ("VS", "VU"):
            vsatp = S.CsrChoice(0x280, "root", 0, 29, 30)
        setup.append(vsatp)
        setup.append(draw(choice_write(hypervisor, 0x680, temps)))
    if draw(st.integers(0, 3)) == 0:
        # PMP: three random NA4/NAPOT regions (up to 4 KiB) in front of entry 7's "everything",
        # above the handlers' page (a handler that cannot run ends the episode early)
        config = 0
        for k in range(3):
            size = draw(st.integers(0, 9))  # NAPOT: 2^(size + 3) bytes; 0 with NA4
            address = S.BASE + 2 * S.PAGE + draw(st.integers(0, (2 << 20) - 3 * S.PAGE))
            address = ((address >> 2) & ~((1 << size) - 1)) | ((1 << size) - 1 >> 1)
            setup.append(S.CsrValue("csrrw", 0x3B0 + k, address, 0, 30))
            byte = draw(st.integers(0, 7)) | (draw(st.sampled_from((0, 2, 3))) << 3)  # never locked
            if byte & 2 and not byte & 1:  # W without R is reserved
                byte &= ~2
            config |= byte << (8 * k)
        setup.append(S.CsrValue("csrrw", 0x3A0, config | (0x1F << 56), 0, 30))
    for _ in range(draw(st.integers(0, 2))):
        setup.append(draw(masked_write(hypervisor, setup=True)))
    if draw(st.integers(0, 3)) == 0:
        kinds = ("msip", "ssip-m") + (("vssip",) if hypervisor else ())
        setup.append(S.Interrupt(draw(st.sampled_from(kinds)), 29, 30))
    return setup


@st.composite
def episodes(draw, hypervisor: bool, probes: tuple[int, ...], max_items: int) -> S.Episode:
    mode = draw(
        st.sampled_from(("M", "S", "S", "U", "VS", "VU") if hypervisor else ("M", "S", "U"))
    )
    space = "lower" if mode == "M" else draw(st.sampled_from(("lower", "upper")))
    tw = draw(st.booleans())
    body: list[object] = []
    wfi = mode == "M" or tw
    for _ in range(draw(st.integers(1, max_items))):
        new = draw(system_item(mode, hypervisor, wfi, probes))
        if any(isinstance(x, (S.XRet, Insn)) and getattr(x, "name", "") in ("mret", "sret")
               for x in new):  # fmt: skip
            wfi = wfi and mode != "M"  # after a possible privilege drop an M-mode wfi could sleep
        body.extend(new)
    smc = any(isinstance(x, S.SelfModify) for x in body)
    return S.Episode(
        mode,
        space,
        tuple(draw(episode_setup(mode, space, hypervisor, tw))),
        tuple(body),
        _body_pte(draw, mode, smc),
        _data_pte(draw, mode),
        draw(st.binary(min_size=DATA_SIZE, max_size=DATA_SIZE)),
    )


@st.composite
def extra_leaf(draw) -> tuple[int, int, int]:
    level = draw(st.integers(0, 2))
    index = {0: st.integers(420, 511), 1: st.integers(2, 511), 2: st.sampled_from((3, 4, 509))}
    # RAM past the image, or addresses where neither board has anything (QEMU's virt board
    # answers reads of 0x4000_0000.. with its PCIe window: avoided)
    target = draw(
        st.sampled_from((0x8040_0000, 0x8060_0000, 0x9000_0000, 0xC000_0000, 0x8040_3000))
    )
    pte = ((target >> 12) << 10) | S.PTE_V | draw(st.integers(0, 255))
    return level, draw(index[level]), pte


@st.composite
def system_programs(draw, hypervisor: bool, max_episodes: int = 3, max_items: int = 16):
    leaves = tuple(draw(st.lists(extra_leaf(), max_size=3)))
    probes = tuple(S.extra_leaf_address(level, index) for level, index, _ in leaves)
    count = draw(st.integers(1, max_episodes))
    eps = tuple(draw(episodes(hypervisor, probes, max_items)) for _ in range(count))
    user = any(e.mode in ("U", "VU") for e in eps)
    superpage = "none" if user else draw(st.sampled_from(("none", "none", "mega", "giga")))
    superpage_pte = S.PTE_V | S.PTE_R | S.PTE_W | S.PTE_X
    superpage_pte |= (S.PTE_A if draw(st.integers(0, 3)) else 0) | (
        S.PTE_D if draw(st.booleans()) else 0
    )
    # the G-stage leaf keeps every permission and A/D: with random ones, a G-stage fault on the
    # implicit access of an HLV/HSV run in M or HS differs from QEMU in two departures at once
    # (D22's cause and mstatus.GVA), which no rule claims together, and QEMU 7.2 does not set
    # the G-stage D bit for the implicit store of a VS-stage A/D update (docs/testing.md)
    gstage = S.PTE_V | S.PTE_R | S.PTE_W | S.PTE_X | S.PTE_U | S.PTE_A | S.PTE_D
    return S.SystemProgram(
        tuple(draw(value64) for _ in LOADED),
        draw(st.sampled_from((8, 9))),
        superpage,
        superpage_pte,
        eps,
        leaves,
        gstage,
    )


@st.composite
def system_batches(
    draw, max_programs: int = 3, max_episodes: int = 3, max_items: int = 16,
    hypervisor: bool | None = None,
) -> tuple[bool, list[S.SystemProgram]]:  # fmt: skip
    """(H extension on, system programs)."""
    if hypervisor is None:
        hypervisor = draw(st.booleans())
    return hypervisor, draw(
        st.lists(
            system_programs(hypervisor, max_episodes, max_items),
            min_size=1,
            max_size=max_programs,
            unique=True,
        )
    )

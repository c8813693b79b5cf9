"""Random *system* programs for the differential campaign: delegation, privilege changes, paging,
traps at every level, software interrupts, loops and self-modifying code, in lockstep with QEMU.

randprog.py's programs stay in M-mode; these leave it.  A program is a series of *episodes*.
Each episode is set up by M-mode code (random but bounded values in the delegation, status,
trap-vector, translation, PMP and H registers), entered with an ``mret`` whose target may lie in
the upper half of the address space (0xffffffff8xxxxxxx, where Linux runs), and runs a random
body in M, S or U (with H also VS or VU): the plain instructions of randprog.py plus xRETs with
targets anywhere, CSR writes with random values, sfence/hfence, HLV/HSV, wfi, software
interrupts, MPRV accesses, loops and self-modifying code.

Every program ends, the same way on both emulators:

* **Every trap is counted** by the M-mode handler (``MH``), which ends the program when the
  count reaches the budget (``TRAP_BUDGET``): no trap or interrupt storm can run forever.
* **Traps into S and VS are forwarded**: ``stvec``/``vstvec`` point at a two-instruction handler
  (``ecall; sret``); its ecall reaches M (medeleg never delegates ecalls from S or VS), where the
  M handler finishes the job for it (skips the trapping instruction in sepc/vsepc, or clears an
  interrupt's source) and returns to the ``sret``.
* **A trap it cannot resume ends the episode**: a fetch fault (the pc went somewhere that is not
  code), a trap in a handler, or the ``ecall`` that closes every body.  The handler then returns
  to the M-mode code after the episode.
* Branches only go forward; loops count down a register nothing else in the loop writes.

The handler reads an instruction's length at the *physical* address of its pc: code is only ever
mapped at its physical address and at the upper-half alias ``pa | 0xffffffff00000000``, so the
low 32 bits of a pc are its physical address.  Pages (everything in the first 2 MiB of RAM):

    page 0   harness code: _start, MH, SH (S handler), VSH (VS handler)
    page 1   the M handler's save area and the episode's slots (END, CONT, FINAL, count, budget)
    then per program: its M-mode code, one page per episode body, a data page, 4 pages of
    Sv39/Sv48 tables (root, L2, L1, L0) and a 16 KiB Sv39x4 G-stage root

The tables map the 2 MiB at 0x8000_0000 through L1[0] (a 2 MiB superpage or the L0 table) at
both 0x8000_0000 and 0xffffffff8000_0000 (root/L2 entries 2 and 510 share the L1 table), or
with a 1 GiB superpage; leaf permissions (R/W/X/U, A/D) are random per page, and random extra
leaves map other addresses (never onto the image).  At the end of a program M-mode reads its
data area and its leaf PTEs back into a register, so stores and A/D updates are compared too.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from randprog import DATA_SIZE, LOADED, Assembler

BASE = 0x8000_0000
PAGE = 0x1000
UPPER = 0xFFFF_FFFF_0000_0000  # the upper-half alias: pc | UPPER
HARNESS = BASE  # page 0
SAVE = BASE + PAGE  # page 1
CLINT_MSIP = 0x200_0000
TEST_DEVICE = 0x10_0000
TRAP_BUDGET = 48  # traps per program before the handler ends it
MASK64 = (1 << 64) - 1

# save-area slots (offsets in page 1)
SAVED = 0  # x26..x30
COUNT = 48
BUDGET = 56
END = 64  # VA of the ecall that closes the current episode's body
CONT = 72  # PA of the M code after the current episode
FINAL = 80  # PA of the current program's epilogue

MODES = ("M", "S", "U", "VS", "VU")
MSTATUS_SIE, MSTATUS_MIE, MSTATUS_SPIE, MSTATUS_MPIE = 1 << 1, 1 << 3, 1 << 5, 1 << 7
MSTATUS_SPP, MSTATUS_MPP = 1 << 8, 3 << 11
MSTATUS_MPRV, MSTATUS_SUM, MSTATUS_MXR = 1 << 17, 1 << 18, 1 << 19
MSTATUS_TVM, MSTATUS_TW, MSTATUS_TSR = 1 << 20, 1 << 21, 1 << 22
MSTATUS_MPV = 1 << 39
# the mstatus fields an episode or an M-mode body may set at random: none of them can take
# the M handler's control away (MPRV is cleared by the handler's first instructions)
MSTATUS_RANDOM = (
    MSTATUS_SIE
    | MSTATUS_SPIE
    | MSTATUS_SPP
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_TVM
    | MSTATUS_TSR
    | MSTATUS_MPIE
)
# With H, TVM and TSR stay clear: QEMU 7.2 applies them in VS (D14), and where hstatus.VTVM/VTSR
# also apply, or the illegal instruction is delegated to VS (D11), two departures show at once
# and no rule claims the pair
MSTATUS_RANDOM_H = MSTATUS_RANDOM & ~(MSTATUS_TVM | MSTATUS_TSR)
# hstatus: HU, VTW, VTSR, VTVM random; SPV 0 (an sret from HS stays in HS or U: a fetch fault
# in VS folded into the sret hides D35), SPVP 1 and VSXL 2.  With SPVP = 0 most
# HLV/HSV in M or HS fault (as VU on supervisor pages), and such a fault differs from QEMU 7.2
# in two departures at once (D27's cause, mstatus.GVA from V=0) which no rule claims together
HSTATUS_RANDOM = (1 << 9) | (7 << 20)
HSTATUS_FIXED = (1 << 8) | (2 << 32)
SOFTWARE_INTERRUPTS = (1 << 1) | (1 << 3)  # SSIE, MSIE: no timer or external interrupt
VS_SOFTWARE_INTERRUPT = 1 << 2
# medeleg: ecalls from S (9) and VS (10) must reach M (the S and VS handlers forward with them),
# and so must fetch faults (1, 12, 20): delegated, a fault at a bad stvec would trap to itself
FETCH_FAULTS = (1 << 1) | (1 << 12) | (1 << 20)
MEDELEG_KEEP_IN_M = (1 << 9) | (1 << 10) | FETCH_FAULTS
# hedeleg never delegates illegal instructions to VS: QEMU 7.2 shifts their cause there (D11),
# and where it also raises illegal instead of virtual instruction (D9, D13, D15) two
# departures show in one trap, which no rule claims together
HEDELEG_KEEP_IN_HS = FETCH_FAULTS | (1 << 2)
MENVCFG_STCE = 1 << 63  # Sstc on would raise STIP from stimecmp: no timer interrupts here

PTE_V, PTE_R, PTE_W, PTE_X, PTE_U, PTE_G, PTE_A, PTE_D = (1 << n for n in range(8))

# random xRET targets that are not code: fetch faults end the episode
WILD_TARGETS = (
    0x0,
    0x9000_0000,  # no memory on either board (QEMU has its PCIe window at 0x4000_0000)
    0x1000_0000,  # the UART: not executable
    0xFFFF_FFFF_C000_0000,
    0x0000_8000_0000_0000,  # not canonical for Sv39/Sv48
    0x8040_0000,  # RAM past the image: unmapped in every table
    0xFFFF_FFFF_FFFF_F000,
)


# ---- a few more assembler helpers ------------------------------------------------------------
def _sext(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def li_sequence(rd: int, value: int) -> list[tuple[str, dict[str, int]]]:
    """The instructions that load the 64-bit ``value`` into ``rd`` (lui/addiw, slli, addi)."""
    value = _sext(value, 64)
    if -2048 <= value < 2048:
        return [("addi", {"rd": rd, "rs1": 0, "imm": value})]
    if -(1 << 31) <= value < (1 << 31):
        high = _sext((value + 0x800) >> 12, 20)
        low = _sext(value, 12)
        seq = [("lui", {"rd": rd, "imm": high << 12})]
        if low:
            seq.append(("addiw", {"rd": rd, "rs1": rd, "imm": low}))
        return seq
    low = _sext(value, 12)
    high = (value - low) >> 12
    shift = 12
    while not high & 1:
        high >>= 1
        shift += 1
    seq = li_sequence(rd, high) + [("slli", {"rd": rd, "rs1": rd, "imm": shift})]
    if low:
        seq.append(("addi", {"rd": rd, "rs1": rd, "imm": low}))
    return seq


def li(asm: Assembler, rd: int, value: int) -> None:
    for name, operands in li_sequence(rd, value):
        asm.emit(name, **operands)


def la(asm: Assembler, rd: int, address: int) -> None:
    """rd = address, pc-relative (8 bytes): the same code gives the identity address when it
    runs at its physical address and the alias when it runs in the upper half."""
    asm.load_address(rd, address)


def to_space(asm: Assembler, rd: int, tmp: int, space: str) -> None:
    """Move rd's address into ``space`` (``upper``/``lower``) whatever space the code runs in
    (12 bytes either way)."""
    if space == "upper":
        asm.emit("addi", rd=tmp, rs1=0, imm=-1)
        asm.emit("slli", rd=tmp, rs1=tmp, imm=32)
        asm.emit("or", rd=rd, rs1=rd, rs2=tmp)
    else:
        asm.emit("slli", rd=rd, rs1=rd, imm=32)
        asm.emit("srli", rd=rd, rs1=rd, imm=32)
        asm.emit("addi", rd=0, rs1=0, imm=0)


@dataclass
class Layout:
    """Addresses an item needs at emission: the current program's pages."""

    root: int = 0  # the Sv39/Sv48 root table
    satp_mode: int = 8
    gstage_root: int = 0
    data: int = 0
    hypervisor: bool = False


# ---- system items (the plain ones come from randprog.py) ---------------------------------------
def _seq_size(seq: Sequence[tuple[str, dict[str, int]]]) -> int:
    return 4 * len(seq)


def li_fixed(asm: Assembler, rd: int, value: int, count: int) -> None:
    """li padded with nops to ``count`` instructions (a size that does not depend on value)."""
    seq = li_sequence(rd, value)
    assert len(seq) <= count, (value, seq)
    for name, operands in seq:
        asm.emit(name, **operands)
    for _ in range(count - len(seq)):
        asm.emit("addi", rd=0, rs1=0, imm=0)


def emit_sequence(asm: Assembler, seq: Sequence[tuple[str, dict[str, int]]]) -> None:
    for name, operands in seq:
        asm.emit(name, **operands)


@dataclass(frozen=True)
class XRet:
    """mret/sret to a target: the next item (where the code runs, or moved to the lower or the
    upper half) or a wild address.  ``pp`` is the privilege to return to (mstatus.MPP or
    sstatus.SPP), ``mpv`` mstatus.MPV (mret with H)."""

    name: str  # mret / sret
    target: str  # next / upper / lower / wild
    tmp: int
    tmp2: int
    pp: int
    mpv: int = 0
    wild: int = 0

    @property
    def size(self) -> int:
        target = 20 if self.target != "wild" else _seq_size(li_sequence(self.tmp, self.wild))
        return target + 4 + 8 + 4 + 8 + 4 + (12 if self.name == "mret" else 0) + 4

    def emit(self, asm: Assembler, targets: list[int], index: int, layout: Layout) -> None:
        start = asm.pc
        machine = self.name == "mret"
        epc, status = (0x341, 0x300) if machine else (0x141, 0x100)
        if self.target == "wild":
            li(asm, self.tmp, self.wild)
        else:
            la(asm, self.tmp, targets[index + 1])
            if self.target == "next":
                for _ in range(3):
                    asm.emit("addi", rd=0, rs1=0, imm=0)
            else:
                to_space(asm, self.tmp, self.tmp2, self.target)
        asm.emit("csrrw", rd=0, rs1=self.tmp, csr=epc)
        li_fixed(asm, self.tmp, MSTATUS_MPP if machine else MSTATUS_SPP, 2)
        asm.emit("csrrc", rd=0, rs1=self.tmp, csr=status)
        li_fixed(asm, self.tmp, self.pp << (11 if machine else 8), 2)
        asm.emit("csrrs", rd=0, rs1=self.tmp, csr=status)
        if machine:  # MPV (with H; without H the csrrc reads only)
            asm.emit("addi", rd=self.tmp, rs1=0, imm=1)
            asm.emit("slli", rd=self.tmp, rs1=self.tmp, imm=39)
            rs1 = self.tmp if layout.hypervisor else 0
            asm.emit("csrrs" if self.mpv and rs1 else "csrrc", rd=0, rs1=rs1, csr=status)
        asm.emit(self.name)
        assert asm.pc - start == self.size, (self, asm.pc - start, self.size)


@dataclass(frozen=True)
class CsrChoice:
    """csrrw rd, csr, <an address-dependent value>: an atp register pointing at the program's
    tables (``root``) or Bare, a trap vector at the S/VS handler (in either half), or a wild
    value."""

    csr: int
    choice: str  # bare / root / sh / sh-upper / vsh / vsh-upper / wild
    rd: int
    tmp: int
    tmp2: int
    wild: int = 0

    @property
    def size(self) -> int:
        return {
            "bare": 4,
            "root": 28,
            "sh": 24,
            "sh-upper": 24,
            "vsh": 24,
            "vsh-upper": 24,
        }.get(self.choice, _seq_size(li_sequence(self.tmp, self.wild)) + 4)

    def emit(self, asm: Assembler, targets: list[int], index: int, layout: Layout) -> None:
        start = asm.pc
        if self.choice == "bare":
            asm.emit("csrrw", rd=self.rd, rs1=0, csr=self.csr)
        elif self.choice == "root":
            hgatp = self.csr == 0x680
            la(asm, self.tmp, layout.gstage_root if hgatp else layout.root)
            asm.emit("srli", rd=self.tmp, rs1=self.tmp, imm=12)
            li_fixed(asm, self.tmp2, (8 if hgatp else layout.satp_mode) << 60, 2)
            asm.emit("or", rd=self.tmp, rs1=self.tmp, rs2=self.tmp2)
            asm.emit("csrrw", rd=self.rd, rs1=self.tmp, csr=self.csr)
        elif self.choice in ("sh", "sh-upper", "vsh", "vsh-upper"):
            la(asm, self.tmp, S_HANDLER if self.choice.startswith("sh") else VS_HANDLER)
            to_space(
                asm, self.tmp, self.tmp2, "upper" if self.choice.endswith("upper") else "lower"
            )
            asm.emit("csrrw", rd=self.rd, rs1=self.tmp, csr=self.csr)
        else:
            li(asm, self.tmp, self.wild)
            asm.emit("csrrw", rd=self.rd, rs1=self.tmp, csr=self.csr)
        assert asm.pc - start == self.size, (self, asm.pc - start)


@dataclass(frozen=True)
class CsrValue:
    """A CSR write of a chosen value: ``op`` is csrrw (the value), csrrs or csrrc (its bits)."""

    op: str
    csr: int
    value: int
    rd: int
    tmp: int

    @property
    def size(self) -> int:
        return _seq_size(li_sequence(self.tmp, self.value)) + 4

    def emit(self, asm: Assembler, targets: list[int], index: int, layout: Layout) -> None:
        li(asm, self.tmp, self.value)
        asm.emit(self.op, rd=self.rd, rs1=self.tmp, csr=self.csr)


@dataclass(frozen=True)
class Addressed:
    """addi tmp, x31, offset (or li tmp, address); then a load, store, HLV or HSV at tmp."""

    name: str
    tmp: int
    rd: int = 0
    rs2: int = 0
    offset: int = 0
    address: int | None = None  # an absolute address instead of x31 + offset

    @property
    def size(self) -> int:
        if self.address is None:
            return 8
        return _seq_size(li_sequence(self.tmp, self.address)) + 4

    def emit(self, asm: Assembler, targets: list[int], index: int, layout: Layout) -> None:
        if self.address is None:
            asm.emit("addi", rd=self.tmp, rs1=31, imm=self.offset)
        else:
            li(asm, self.tmp, self.address)
        asm.emit(self.name, **_memory_operands(self.name, self.rd, self.tmp, self.rs2))


def _memory_operands(name: str, rd: int, base: int, rs2: int) -> dict[str, int]:
    if name.startswith("hsv") or name[:2] in ("sb", "sh", "sw", "sd"):
        operands = {"rs1": base, "rs2": rs2}
        if not name.startswith("hsv"):
            operands["imm"] = 0
        return operands
    operands = {"rd": rd, "rs1": base}
    if not name.startswith(("hlv", "hlvx")):
        operands["imm"] = 0
    return operands


@dataclass(frozen=True)
class MprvAccess:
    """M-mode only: a load or store through x31 with mstatus.MPRV = 1 (translated and checked
    as privilege ``mpp``, with H and ``mpv`` as VS/VU through two stages), MPRV cleared after."""

    name: str
    tmp: int
    base: int
    rd: int
    rs2: int
    offset: int
    mpp: int
    mpv: int = 0

    size = property(lambda self: 8 + 4 + 8 + 4 + 12 + 8 + 8 + 4 + 8)

    def emit(self, asm: Assembler, targets: list[int], index: int, layout: Layout) -> None:
        start = asm.pc
        li_fixed(asm, self.tmp, MSTATUS_MPP, 2)
        asm.emit("csrrc", rd=0, rs1=self.tmp, csr=0x300)
        li_fixed(asm, self.tmp, self.mpp << 11, 2)
        asm.emit("csrrs", rd=0, rs1=self.tmp, csr=0x300)
        asm.emit("addi", rd=self.tmp, rs1=0, imm=1)
        asm.emit("slli", rd=self.tmp, rs1=self.tmp, imm=39)
        rs1 = self.tmp if layout.hypervisor else 0
        asm.emit("csrrs" if self.mpv and rs1 else "csrrc", rd=0, rs1=rs1, csr=0x300)
        asm.emit("lui", rd=self.tmp, imm=MSTATUS_MPRV)
        asm.emit("csrrs", rd=0, rs1=self.tmp, csr=0x300)
        asm.emit("addi", rd=self.base, rs1=31, imm=self.offset)
        asm.emit(self.name, **_memory_operands(self.name, self.rd, self.base, self.rs2))
        asm.emit("lui", rd=self.tmp, imm=MSTATUS_MPRV)
        asm.emit("csrrc", rd=0, rs1=self.tmp, csr=0x300)
        asm.emit("addi", rd=0, rs1=0, imm=0)
        assert asm.pc - start == self.size


@dataclass(frozen=True)
class SelfModify:
    """Store the bits of ``new`` over the instruction slot after a fence.i, which then runs
    ``new`` instead of ``old`` (the page must be writable where the store is made)."""

    tmp: int
    value: int  # a register, not tmp, for the bits
    old: tuple[str, tuple[tuple[str, int], ...]]
    new: tuple[str, tuple[tuple[str, int], ...]]

    size = property(lambda self: 32)

    def emit(self, asm: Assembler, targets: list[int], index: int, layout: Layout) -> None:
        from rvh.isa.disasm import encode

        start = asm.pc
        bits = encode(self.new[0], **dict(self.new[1]))
        asm.emit("auipc", rd=self.tmp, imm=0)
        asm.emit("lui", rd=self.value, imm=_sext((bits + 0x800) >> 12, 20) << 12)
        asm.emit("addiw", rd=self.value, rs1=self.value, imm=_sext(bits, 12))
        asm.emit("sh", rs1=self.tmp, rs2=self.value, imm=28)
        asm.emit("srli", rd=self.value, rs1=self.value, imm=16)
        asm.emit("sh", rs1=self.tmp, rs2=self.value, imm=30)
        asm.emit("fence.i")
        asm.emit(self.old[0], **dict(self.old[1]))
        assert asm.pc - start == self.size


@dataclass(frozen=True)
class Loop:
    """addi counter, x0, count; body; addi counter, counter, -1; bne counter, x0, body: the
    body (straight-line instructions that do not write the counter) runs ``count`` times."""

    counter: int
    count: int
    body: tuple[object, ...]

    @property
    def size(self) -> int:
        return 4 + sum(item.size for item in self.body) + 8  # type: ignore[attr-defined]

    def emit(self, asm: Assembler, targets: list[int], index: int, layout: Layout) -> None:
        asm.emit("addi", rd=self.counter, rs1=0, imm=self.count)
        top = asm.pc
        for item in self.body:
            item.emit(asm, [], 0)  # type: ignore[attr-defined]
        asm.emit("addi", rd=self.counter, rs1=self.counter, imm=-1)
        asm.emit("bne", rs1=self.counter, rs2=0, imm=top - asm.pc)


@dataclass(frozen=True)
class Interrupt:
    """Make a software interrupt pending: CLINT msip (M), mip/sip.SSIP, hvip.VSSIP."""

    kind: str  # msip / ssip-m / ssip-s / vssip
    tmp: int
    tmp2: int

    size = property(lambda self: 12 if self.kind == "msip" else 4)

    def emit(self, asm: Assembler, targets: list[int], index: int, layout: Layout) -> None:
        if self.kind == "msip":
            asm.emit("lui", rd=self.tmp, imm=CLINT_MSIP)
            asm.emit("addi", rd=self.tmp2, rs1=0, imm=1)
            asm.emit("sw", rs1=self.tmp, rs2=self.tmp2, imm=0)
        elif self.kind == "ssip-m":
            asm.emit("csrrsi", rd=0, imm=2, csr=0x344)
        elif self.kind == "ssip-s":
            asm.emit("csrrsi", rd=0, imm=2, csr=0x144)
        else:
            asm.emit("csrrsi", rd=0, imm=4, csr=0x645)


@dataclass(frozen=True)
class MachineWfi:
    """M-mode wfi that cannot sleep: mstatus.MIE = 0 with SSIP pending and enabled."""

    size = property(lambda self: 16)

    def emit(self, asm: Assembler, targets: list[int], index: int, layout: Layout) -> None:
        asm.emit("csrrci", rd=0, imm=8, csr=0x300)
        asm.emit("csrrsi", rd=0, imm=2, csr=0x344)
        asm.emit("csrrsi", rd=0, imm=2, csr=0x304)
        asm.emit("wfi")


SYSTEM_ITEMS = (XRet, CsrChoice, CsrValue, Addressed, MprvAccess, SelfModify, Loop, Interrupt)
SYSTEM_ITEMS += (MachineWfi,)


def emit_item(asm: Assembler, item: object, targets: list[int], index: int, layout: Layout) -> None:
    if isinstance(item, SYSTEM_ITEMS):
        item.emit(asm, targets, index, layout)
    else:
        item.emit(asm, targets, index)  # type: ignore[attr-defined]


# ---- programs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Episode:
    mode: str  # M / S / U / VS / VU
    space: str  # lower / upper: where the body runs (upper needs translation on)
    setup: tuple[object, ...]  # M-mode items run before the mret (CsrValue, CsrChoice...)
    body: tuple[object, ...]
    body_pte: int  # the body page's leaf PTE bits (V R W X U G A D)
    data_pte: int
    data: bytes  # DATA_SIZE bytes


@dataclass(frozen=True)
class SystemProgram:
    registers: tuple[int, ...]  # values for LOADED
    satp_mode: int  # 8 Sv39 / 9 Sv48
    superpage: str  # none / mega / giga
    superpage_pte: int
    episodes: tuple[Episode, ...]
    extra_leaves: tuple[tuple[int, int, int], ...] = ()  # (level, index, pte) in the tables
    gstage_pte: int = PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D


PRIVILEGE = {"M": (3, 0), "S": (1, 0), "U": (0, 0), "VS": (1, 1), "VU": (0, 1)}
S_HANDLER = HARNESS + 0x80
VS_HANDLER = HARNESS + 0x90
M_HANDLER = HARNESS + 0x100
HANDLER_SAVES = (24, 25, 26, 27, 28, 29, 30)


def _m_handler(asm: Assembler, hypervisor: bool, image_end: int) -> None:
    """The M-mode trap handler (see the module docstring).  x24-x30 are saved in page 1."""
    labels: dict[str, int] = {}
    fixups: list[tuple[int, str, str, dict[str, int]]] = []

    def jump(name: str, label: str, **operands: int) -> None:
        fixups.append((len(asm.code), name, label, operands))
        asm.emit("addi", rd=0, rs1=0, imm=0)  # patched below

    def here(label: str) -> None:
        labels[label] = asm.pc

    asm.emit("csrrw", rd=30, rs1=30, csr=0x340)  # stash x30 in mscratch
    asm.emit("lui", rd=30, imm=MSTATUS_MPRV)
    asm.emit("csrrc", rd=0, rs1=30, csr=0x300)  # the handler's accesses are untranslated
    if hypervisor:  # GVA written by this trap is compared here, then cleared: QEMU 7.2 never
        asm.emit("addi", rd=30, rs1=0, imm=1)  # clears it (D35), which would show again at
        asm.emit("slli", rd=30, rs1=30, imm=38)  # a later trap folded with a fetch fault
        asm.emit("csrrc", rd=0, rs1=30, csr=0x300)
    la(asm, 30, SAVE)
    for k, register in enumerate(HANDLER_SAVES[:-1]):
        asm.emit("sd", rs1=30, rs2=register, imm=8 * k)
    asm.emit("csrrw", rd=29, rs1=0, csr=0x340)
    asm.emit("sd", rs1=30, rs2=29, imm=8 * 6)
    # the trap budget
    asm.emit("ld", rd=29, rs1=30, imm=COUNT)
    asm.emit("addi", rd=29, rs1=29, imm=1)
    asm.emit("sd", rs1=30, rs2=29, imm=COUNT)
    asm.emit("ld", rd=28, rs1=30, imm=BUDGET)
    jump("bgeu", "finish", rs1=29, rs2=28)
    asm.emit("csrrs", rd=27, rs1=0, csr=0x342)  # mcause
    asm.emit("csrrs", rd=26, rs1=0, csr=0x341)  # mepc
    asm.emit("addi", rd=29, rs1=0, imm=0)  # 0: the trap came straight to M
    asm.emit("slli", rd=28, rs1=26, imm=32)
    asm.emit("srli", rd=28, rs1=28, imm=32)
    # forwarded by the S handler's ecall (from S, 9): the trap is in scause/sepc
    la(asm, 25, S_HANDLER)
    jump("bne", "not-s", rs1=28, rs2=25)
    asm.emit("addi", rd=25, rs1=0, imm=9)
    jump("bne", "not-s", rs1=27, rs2=25)
    asm.emit("csrrs", rd=27, rs1=0, csr=0x142)
    asm.emit("csrrs", rd=26, rs1=0, csr=0x141)
    asm.emit("addi", rd=29, rs1=0, imm=1)
    jump("jal", "classify", rd=0)
    here("not-s")
    if hypervisor:  # forwarded by the VS handler's ecall (from VS, 10): vscause/vsepc
        la(asm, 25, VS_HANDLER)
        jump("bne", "classify", rs1=28, rs2=25)
        asm.emit("addi", rd=25, rs1=0, imm=10)
        jump("bne", "classify", rs1=27, rs2=25)
        asm.emit("csrrs", rd=27, rs1=0, csr=0x242)
        asm.emit("csrrs", rd=26, rs1=0, csr=0x241)
        asm.emit("addi", rd=29, rs1=0, imm=2)
    here("classify")
    jump("blt", "interrupt", rs1=27, rs2=0)
    asm.emit("slli", rd=28, rs1=26, imm=32)
    asm.emit("srli", rd=28, rs1=28, imm=32)  # the physical address of the trapping pc
    asm.emit("ld", rd=25, rs1=30, imm=END)
    jump("beq", "episode-end", rs1=28, rs2=25)
    for cause in (1, 12, 20):  # fetch faults: the pc is not code
        asm.emit("addi", rd=25, rs1=0, imm=cause)
        jump("beq", "episode-end", rs1=27, rs2=25)
    la(asm, 25, HARNESS + PAGE)  # a trap in a handler (or below the image)
    jump("bltu", "episode-end", rs1=28, rs2=25)
    la(asm, 25, image_end)
    jump("bgeu", "episode-end", rs1=28, rs2=25)
    # skip the instruction: 2 or 4 bytes from its low bits
    asm.emit("lhu", rd=28, rs1=28, imm=0)
    asm.emit("andi", rd=28, rs1=28, imm=3)
    asm.emit("addi", rd=26, rs1=26, imm=2)
    asm.emit("addi", rd=25, rs1=0, imm=3)
    asm.emit("bne", rs1=28, rs2=25, imm=8)
    asm.emit("addi", rd=26, rs1=26, imm=2)
    jump("bne", "skip-forwarded", rs1=29, rs2=0)
    asm.emit("csrrw", rd=0, rs1=26, csr=0x341)
    jump("jal", "restore", rd=0)
    here("skip-forwarded")
    asm.emit("addi", rd=25, rs1=0, imm=1)
    jump("bne", "skip-vs", rs1=29, rs2=25)
    asm.emit("csrrw", rd=0, rs1=26, csr=0x141)
    jump("jal", "forwarded", rd=0)
    here("skip-vs")
    if hypervisor:
        asm.emit("csrrw", rd=0, rs1=26, csr=0x241)
    here("forwarded")  # return to the forwarding handler's sret
    asm.emit("csrrs", rd=28, rs1=0, csr=0x341)
    asm.emit("addi", rd=28, rs1=28, imm=4)
    asm.emit("csrrw", rd=0, rs1=28, csr=0x341)
    here("restore")
    for k, register in enumerate(HANDLER_SAVES[:-1]):
        asm.emit("ld", rd=register, rs1=30, imm=8 * k)
    asm.emit("ld", rd=30, rs1=30, imm=8 * 6)
    asm.emit("mret")
    here("interrupt")  # clear every software interrupt source; the interrupted pc resumes
    asm.emit("lui", rd=28, imm=CLINT_MSIP)
    asm.emit("sw", rs1=28, rs2=0, imm=0)
    asm.emit("csrrci", rd=0, imm=2, csr=0x344)
    if hypervisor:
        asm.emit("csrrci", rd=0, imm=4, csr=0x344)
    jump("bne", "forwarded", rs1=29, rs2=0)
    jump("jal", "restore", rd=0)
    here("finish")
    asm.emit("ld", rd=28, rs1=30, imm=FINAL)
    jump("jal", "resume-m", rd=0)
    here("episode-end")
    asm.emit("ld", rd=28, rs1=30, imm=CONT)
    here("resume-m")  # mret to M-mode at x28, interrupts off and none pending
    asm.emit("csrrw", rd=0, rs1=28, csr=0x341)
    asm.emit("addi", rd=28, rs1=0, imm=MSTATUS_MPIE)
    asm.emit("csrrc", rd=0, rs1=28, csr=0x300)
    asm.emit("lui", rd=28, imm=CLINT_MSIP)
    asm.emit("sw", rs1=28, rs2=0, imm=0)
    asm.emit("csrrci", rd=0, imm=2, csr=0x344)
    if hypervisor:
        asm.emit("csrrci", rd=0, imm=4, csr=0x344)
    asm.emit("lui", rd=28, imm=0x2000)
    asm.emit("addi", rd=28, rs1=28, imm=-0x800)
    asm.emit("csrrs", rd=0, rs1=28, csr=0x300)  # MPP = M
    if hypervisor:
        asm.emit("addi", rd=28, rs1=0, imm=1)
        asm.emit("slli", rd=28, rs1=28, imm=39)
        asm.emit("csrrc", rd=0, rs1=28, csr=0x300)  # MPV = 0
    jump("jal", "restore", rd=0)
    end = len(asm.code)
    from rvh.isa.disasm import encode

    for at, name, label, operands in fixups:
        offset = labels[label] - (asm.origin + at)
        bits = encode(name, imm=offset, **operands)
        asm.code[at : at + 4] = struct.pack("<I", bits)
    assert len(asm.code) == end


def _pages(size: int) -> int:
    return (size + PAGE - 1) // PAGE


@dataclass
class _Placement:
    code: int
    bodies: list[int]
    datas: list[int]
    tables: int
    gstage: int
    end: int
    labels: dict[str, int] = field(default_factory=dict)

    @property
    def registers(self) -> int:
        return self.datas[0] + 0x800


def _ptr(table: int) -> int:
    return ((table >> 12) << 10) | PTE_V


def _leaf(pa: int, bits: int) -> int:
    return ((pa >> 12) << 10) | bits


def page_tables(program: SystemProgram, place: _Placement) -> dict[int, int]:
    """The non-zero table entries of a program: physical address -> PTE."""
    root, l2, l1, l0 = (place.tables + k * PAGE for k in range(4))
    entries: dict[int, int] = {}
    upper_table = l2 if program.satp_mode == 9 else root
    if program.satp_mode == 9:
        entries[root] = entries[root + 511 * 8] = _ptr(l2)
    if program.superpage == "giga":
        entries[upper_table + 2 * 8] = _leaf(BASE, program.superpage_pte)
        entries[upper_table + 510 * 8] = _leaf(BASE, program.superpage_pte)
    else:
        entries[upper_table + 2 * 8] = entries[upper_table + 510 * 8] = _ptr(l1)
    if program.superpage == "mega":
        entries[l1] = _leaf(BASE, program.superpage_pte)
    elif program.superpage == "none":
        entries[l1] = _ptr(l0)
        entries[l0] = _leaf(HARNESS, PTE_V | PTE_R | PTE_X | PTE_A)
        for episode, body, data in zip(program.episodes, place.bodies, place.datas, strict=True):
            entries[l0 + ((body - BASE) >> 12) * 8] = _leaf(body, episode.body_pte)
            entries[l0 + ((data - BASE) >> 12) * 8] = _leaf(data, episode.data_pte)
    for level, index, pte in program.extra_leaves:
        table = {0: l0, 1: l1, 2: upper_table}[level]
        address = table + 8 * index
        if address not in entries and (level != 0 or program.superpage == "none"):
            entries[address] = pte
    entries[place.gstage + 2 * 8] = _leaf(BASE, program.gstage_pte)  # Sv39x4: GPA 2 GiB
    return entries


def extra_leaf_address(level: int, index: int) -> int:
    """The (lower-half) virtual address an extra leaf at (level, index) maps."""
    if level == 0:
        return BASE + index * PAGE
    if level == 1:
        return BASE + index * (2 << 20)
    return _sext(index << 30, 39)


def _program_code(
    asm: Assembler, program: SystemProgram, place: _Placement, layout: Layout
) -> dict[str, int]:
    """The M-mode code of one program; returns its labels (continuations, epilogue)."""
    labels: dict[str, int] = {}
    la(asm, 30, SAVE)
    asm.emit("sd", rs1=30, rs2=0, imm=COUNT)
    asm.emit("addi", rd=29, rs1=0, imm=TRAP_BUDGET)
    asm.emit("sd", rs1=30, rs2=29, imm=BUDGET)
    la(asm, 29, place.labels.get("final", asm.pc))
    asm.emit("sd", rs1=30, rs2=29, imm=FINAL)
    la(asm, 31, place.registers)
    for k, register in enumerate(LOADED):
        asm.emit("ld", rd=register, rs1=31, imm=8 * k)
    for k, episode in enumerate(program.episodes):
        for item in episode.setup:
            emit_item(asm, item, [], 0, layout)
        la(asm, 30, SAVE)
        la(asm, 29, place.labels.get(f"cont{k}", asm.pc))
        asm.emit("sd", rs1=30, rs2=29, imm=CONT)
        end = place.bodies[k] + sum(item.size for item in episode.body)  # type: ignore[attr-defined]
        la(asm, 29, end)
        asm.emit("sd", rs1=30, rs2=29, imm=END)
        la(asm, 29, place.bodies[k])
        to_space(asm, 29, 28, episode.space)
        asm.emit("csrrw", rd=0, rs1=29, csr=0x341)  # mepc
        privilege, virtual = PRIVILEGE[episode.mode]
        li_fixed(asm, 29, MSTATUS_MPP, 2)
        asm.emit("csrrc", rd=0, rs1=29, csr=0x300)
        li_fixed(asm, 29, privilege << 11, 2)
        asm.emit("csrrs", rd=0, rs1=29, csr=0x300)
        if layout.hypervisor:
            asm.emit("addi", rd=29, rs1=0, imm=1)
            asm.emit("slli", rd=29, rs1=29, imm=39)
            asm.emit("csrrs" if virtual else "csrrc", rd=0, rs1=29, csr=0x300)
        la(asm, 31, place.datas[k])
        to_space(asm, 31, 28, episode.space)
        asm.emit("addi", rd=2, rs1=31, imm=0)
        asm.emit("addi", rd=8, rs1=31, imm=0)
        asm.emit("sfence.vma", rs1=0, rs2=0)
        if layout.hypervisor:
            asm.emit("hfence.gvma", rs1=0, rs2=0)
            asm.emit("hfence.vvma", rs1=0, rs2=0)
        asm.emit("mret")
        labels[f"cont{k}"] = asm.pc
    labels["final"] = asm.pc
    # read back every data area and every table entry (stores, A/D updates)
    for data in place.datas:
        la(asm, 31, data)
        for k in range(DATA_SIZE // 8):
            asm.emit("ld", rd=30, rs1=31, imm=8 * k)
    for address in sorted(page_tables(program, place)):
        la(asm, 29, address)
        asm.emit("ld", rd=30, rs1=29, imm=0)
    return labels


def _place(program: SystemProgram, start: int, code_size: int, hypervisor: bool) -> _Placement:
    at = start + _pages(code_size) * PAGE
    bodies = [at + k * PAGE for k in range(len(program.episodes))]
    at += len(bodies) * PAGE
    datas = [at + k * PAGE for k in range(len(program.episodes))]
    at += len(datas) * PAGE
    tables = at
    at += 4 * PAGE
    gstage = (at + 0x3FFF) & ~0x3FFF
    at = gstage + 4 * PAGE
    return _Placement(start, bodies, datas, tables, gstage, at)


def build_system_batch(programs: Sequence[SystemProgram], hypervisor: bool) -> bytes:
    """The image of a batch of system programs, to load at BASE (see the module docstring)."""
    placements: list[_Placement] = []
    at = BASE + 2 * PAGE
    for program in programs:  # pass 1: sizes and labels (every address load is fixed-length)
        trial = _place(program, at, 0, hypervisor)
        dry = Assembler(at)
        layout = Layout(trial.tables, program.satp_mode, trial.gstage, 0, hypervisor)
        trial.labels = _program_code(dry, program, trial, layout)
        place = _place(program, at, len(dry.code), hypervisor)
        dry = Assembler(at)
        place.labels = _program_code(dry, program, place, layout)  # labels at the real origin
        placements.append(place)
        at = place.end
    exit_at = at
    image_end = exit_at + PAGE
    assert image_end - BASE <= (2 << 20), "a batch must fit in the 2 MiB the tables map"
    image = bytearray(image_end - BASE)

    def put(address: int, data: bytes) -> None:
        image[address - BASE : address - BASE + len(data)] = data

    harness = Assembler(HARNESS)
    la(harness, 5, M_HANDLER)
    harness.emit("csrrw", rd=0, rs1=5, csr=0x305)  # mtvec
    harness.emit("addi", rd=5, rs1=0, imm=-1)
    harness.emit("csrrw", rd=0, rs1=5, csr=0x3B7)  # pmpaddr7: everything
    li(harness, 5, 0x1F << 56)
    harness.emit("csrrw", rd=0, rs1=5, csr=0x3A0)  # pmpcfg0: entry 7 NAPOT RWX
    la(harness, 5, placements[0].code if placements else exit_at)
    harness.emit("jalr", rd=0, rs1=5, imm=0)
    assert harness.pc <= S_HANDLER
    put(HARNESS, bytes(harness.code))
    for address in (S_HANDLER, VS_HANDLER):  # ecall to M (which does the work), then sret
        forward = Assembler(address)
        forward.emit("ecall")
        forward.emit("sret")
        put(address, bytes(forward.code))
    handler = Assembler(M_HANDLER)
    _m_handler(handler, hypervisor, image_end)
    assert handler.pc <= HARNESS + PAGE
    put(M_HANDLER, bytes(handler.code))
    for program, place in zip(programs, placements, strict=True):
        layout = Layout(place.tables, program.satp_mode, place.gstage, 0, hypervisor)
        code = Assembler(place.code)
        labels = _program_code(code, program, place, layout)
        assert labels == place.labels, "the program's code moved between the passes"
        next_at = place.end
        code.emit("jal", rd=0, imm=0)  # placeholder: jump to the next program (patched)
        put(place.code, bytes(code.code))
        jump = Assembler(code.pc - 4)
        la_target = next_at if place is not placements[-1] else exit_at
        jump.emit("jal", rd=0, imm=la_target - jump.pc)
        put(code.pc - 4, bytes(jump.code))
        for episode, body_at, data_at in zip(
            program.episodes, place.bodies, place.datas, strict=True
        ):
            body = Assembler(body_at)
            targets, cursor = [], body_at
            for item in episode.body:
                targets.append(cursor)
                cursor += item.size  # type: ignore[attr-defined]
            targets.append(cursor)
            for index, item in enumerate(episode.body):
                emit_item(body, item, targets, index, layout)
                assert body.pc == targets[index + 1], (item, hex(body.pc), hex(targets[index + 1]))
            body.emit("ecall")  # END: the episode is over
            assert len(body.code) <= PAGE, "an episode body must fit in its page"
            put(body_at, bytes(body.code))
            put(data_at, episode.data.ljust(DATA_SIZE, b"\0")[:DATA_SIZE])
        values = [v & MASK64 for v in program.registers]
        put(place.registers, struct.pack(f"<{len(LOADED)}Q", *values))
        for address, pte in page_tables(program, place).items():
            put(address, struct.pack("<Q", pte & MASK64))
    final = Assembler(exit_at)
    final.emit("lui", rd=5, imm=TEST_DEVICE)
    final.emit("lui", rd=6, imm=0x5 << 12)
    final.emit("addiw", rd=6, rs1=6, imm=0x555)
    final.emit("sw", rs1=5, rs2=6, imm=0)
    final.emit("jal", rd=0, imm=0)
    put(exit_at, bytes(final.code))
    return bytes(image)


def upper_half_programs(hypervisor: bool = False) -> list[SystemProgram]:
    """Fixed programs whose control goes to the upper half only through xRETs: an mret from M
    into S at 0xffffffff8xxxxxxx, and in S an sret to the next instruction's upper-half alias
    (the Linux kernel's addresses).  The xRET regression test runs these against a build with
    the upper-half xRET bug put back."""
    registers = tuple(range(1, len(LOADED) + 1))
    root = (
        CsrChoice(0x105, "sh", 0, 29, 30),
        CsrChoice(0x180, "root", 0, 29, 30),
    )
    sret_upper = XRet("sret", "upper", 5, 6, pp=1)
    sret_lower = XRet("sret", "lower", 5, 6, pp=1)
    body_s = (sret_upper,) + tuple(
        XRet("sret", "upper" if k % 2 else "lower", 5, 6, pp=1) for k in range(3)
    )
    pte = PTE_V | PTE_R | PTE_X | PTE_A
    data_pte = PTE_V | PTE_R | PTE_W | PTE_A | PTE_D
    episodes = (
        Episode("S", "upper", root, body_s, pte, data_pte, bytes(DATA_SIZE)),
        Episode("S", "lower", root, (sret_upper, sret_lower), pte, data_pte, bytes(DATA_SIZE)),
        Episode(
            "M",
            "lower",
            root,
            (XRet("mret", "upper", 5, 6, pp=1),),
            pte,
            data_pte,
            bytes(DATA_SIZE),
        ),  # fmt: skip
    )
    return [
        SystemProgram(registers, mode, "none", 0, episodes)
        for mode in (8, 9)  # Sv39 and Sv48
    ]

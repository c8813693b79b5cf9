"""What the parts of ``rvh diff`` share: the outcome of a step, what a deviation rule sees
and claims, QEMU's view of the supervisor registers with V=1, and the shapes of instructions
the rules and the stepper both ask about.  Every other module of the package imports this
one, and it imports none of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rvh.errors import GuestError, RvhError
from rvh.isa.causes import Exception_ as Cause
from rvh.isa.csrs import CsrNumber
from rvh.isa.disasm import Instruction

MASK64 = (1 << 64) - 1
# CSR numbers by name (CSR.MSTATUS == 0x300), from the CSR table; typed Any because mypy
# does not see the members of an enum built from a table
CSR: Any = CsrNumber
QEMU_M_VIRTUAL = "qemu-m-virtual"  # adopt(): QEMU's mret has left its hart in M-mode with V=1
QEMU_TRAPPED = "qemu-trapped"  # adopt(): QEMU trapped (cause, tval) where rvh went on
QEMU_EXECUTED = "qemu-executed"  # adopt(): QEMU executed the instruction rvh trapped on
QEMU_EXECUTED_WITH = "qemu-executed-with"  # adopt(): run it again with ((csr, bits set),...)
QEMU_PTE_BITS = "qemu-pte-bits"  # adopt(): QEMU set (GPA of a VS-stage PTE, A/D bits) in memory
# the accounts of what QEMU did with an instruction: a deviation gives at most one
OUTCOMES = {QEMU_TRAPPED, QEMU_EXECUTED, QEMU_EXECUTED_WITH, QEMU_M_VIRTUAL}
REFERENCE_MEMORY = 256 << 20  # -m 256: the RAM size both sides use (it places the DTB)


def signed64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


class ReferenceError(RvhError):
    """QEMU could not produce a usable trace, or a reference does not fit the program."""


TRAP_CAP = 10_000  # traps in a row with no retired instruction that end a comparison
PROGRESS_EVERY = 5.0  # seconds between progress reports of a long comparison
BARE_RUN_HINT = "did you mean an S-mode payload? rvh diff runs the ELF bare, as M-mode"


class TrapLoopError(GuestError):
    """rvh and QEMU agree, but the guest traps again and again and retires nothing: a trap
    loop, which QEMU goes through silently when the traps are fetch faults."""


# ---- QEMU's view with V=1 ----------------------------------------------------------------------
# With V=1 QEMU 7.2 keeps the guest's supervisor CSRs in the live registers (it swaps the HS
# and VS copies when V changes), so its dump's "stvec" is vstvec and mstatus carries
# vsstatus's supervisor fields.  These are the fields it swaps.
VIRTUAL_VIEW = {
    "stvec": CSR.VSTVEC,
    "sscratch": CSR.VSSCRATCH,
    "sepc": CSR.VSEPC,
    "scause": CSR.VSCAUSE,
    "stval": CSR.VSTVAL,
    "satp": CSR.VSATP,
}
FETCH_FAULTS = (  # the faults a fetch takes
    Cause.INSTRUCTION_ACCESS_FAULT,
    Cause.INSTRUCTION_PAGE_FAULT,
    Cause.INSTRUCTION_GUEST_PAGE_FAULT,
)
STALE_WHILE_VIRTUAL = ("vsstatus", "vstvec", "vsepc", "vscause")


@dataclass
class StepInfo:
    pc: int  # where the step started
    exception: int | None = None  # cause, when the instruction trapped
    interrupt: int | None = None  # cause, when an interrupt was taken first
    ended: bool = False  # the machine stopped (power off, deadlock) before an instruction ran
    privilege: int = 3  # rvh's privilege before the step
    fetch_fault: int | None = None  # cause of a fetch fault taken at the end of the step


@dataclass
class StepContext:
    """What a deviation rule may look at: the instruction rvh just executed, rvh's state before
    and after it, QEMU's state after it, and which fields differ."""

    index: int  # reference index of the state after the instruction
    pc: int
    instruction: Instruction | None
    before: dict[str, int]
    after: dict[str, int]
    expected: dict[str, int]
    differing: set[str]
    info: StepInfo
    time_ns: int = 0  # rvh's virtual time after the instruction (QEMU's clock, aligned)
    csr: Callable[[int], int] = lambda number: 0  # rvh's CSR value (raw storage) after it
    qemu_vstip: int = -1  # mip.VSTIP as QEMU shows it (QemuVsTimer), -1 unknown
    # the leaf PTEs of a guest virtual address in rvh's VS-stage and G-stage tables
    pages: Callable[[int], tuple[int | None, int | None]] = lambda va: (None, None)

    @property
    def insn(self) -> Instruction:
        """The instruction, for rules about one: a step without one (an interrupt, a fetch
        fault) matches none of them (``Deviation.match`` turns the exception into no match)."""
        if self.instruction is None:
            raise NoInstruction
        return self.instruction


class NoInstruction(Exception):
    pass


@dataclass(frozen=True)
class Ignore:
    """A deviation's claim on a field that rvh cannot take over (its storage keeps those bits
    zero): these bits of the field are left out of the comparison from here on, for as long
    as the two values differ."""

    bits: int


@dataclass(frozen=True)
class Bits:
    """A deviation's claim on some bits of a field: rvh takes QEMU's values of exactly these
    bits.  Deviations may claim disjoint bits of one field (a read that shows two departures
    at once)."""

    bits: int


@dataclass(frozen=True)
class Derived:
    """A deviation's claim on a field that follows from the values it adopts (a view of
    them): compared again after the adoption, it must agree."""


# a value, or for the QEMU_* pseudo-fields the tuples that describe QEMU's outcome
Claim = int | tuple[int, ...] | tuple[tuple[int, int], ...] | Ignore | Bits | Derived | None


def merge_claims(old: Claim, new: Claim) -> Claim | bool:
    """Two deviations' claims on one field, combined; False if they cannot both hold."""
    if isinstance(old, Derived):
        return new
    if isinstance(new, Derived):
        return old
    if isinstance(old, Bits) and isinstance(new, Bits) and not old.bits & new.bits:
        return Bits(old.bits | new.bits)
    if isinstance(old, Ignore) and isinstance(new, Ignore) and not old.bits & new.bits:
        return Ignore(old.bits | new.bits)
    return False


@dataclass(frozen=True)
class Deviation:
    """A documented, exactly scoped difference between QEMU 7.2 and rvh."""

    name: str
    clause: str  # the spec clause QEMU departs from, or why the difference is deliberate
    description: str
    rule: Callable[[StepContext], Mapping[str, Claim] | None]
    ref: str = ""  # the departure's number in docs/h-extension.md (D1...), if it has one

    @property
    def label(self) -> str:
        return f"{self.name} ({self.ref})" if self.ref else self.name

    def match(self, ctx: StepContext) -> Mapping[str, Claim] | None:
        """The fields to adopt from QEMU if this deviation explains the difference: a value
        is written into rvh's state, None accepts the difference at this boundary only, an
        :class:`Ignore` leaves bits out until the field agrees again."""
        try:
            return self.rule(ctx)
        except NoInstruction:
            return None


Rule = Callable[[StepContext], dict[str, Claim] | None]


# ---- shapes of instructions ------------------------------------------------------------------
def is_amo_or_sc(ins: Instruction | None) -> bool:
    return ins is not None and (ins.base_name.startswith(("amo", "sc.")))


def is_hlv_hsv(ins: Instruction | None) -> bool:
    return ins is not None and ins.base_name.startswith(("hlv", "hsv"))


def csr_writes(ins: Instruction) -> bool:
    """Whether a CSR instruction writes its CSR (Zicsr 9.1: not csrrs/csrrc with rs1 = x0,
    not csrrsi/csrrci with uimm 0)."""
    if ins.base_name in ("csrrw", "csrrwi"):
        return True
    if ins.base_name in ("csrrs", "csrrc"):
        return ins.rs1 != 0
    return ins.imm != 0


ACCESS_SIZES = {"b": 1, "h": 2, "w": 4, "d": 8}


def access_size(ins: Instruction) -> int:
    name = ins.base_name.rstrip("u")
    return ACCESS_SIZES.get(name[-1], 0)

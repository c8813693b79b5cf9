"""Differential testing: rvh against QEMU 7.2, instruction by instruction.

The reference is QEMU's ``-singlestep -d cpu,nochain`` dump, which prints the architectural
state (pc, x0-x31, the CSRs listed in ``target/riscv/cpu.c``'s dump, and V with the H extension)
*before* every instruction.  ``-icount shift=0`` makes QEMU's clock advance one nanosecond per
instruction, which is exactly rvh's virtual time (10 MHz mtime, one tick per 100 instructions),
so timer interrupts land on the same instruction in both.

rvh is run in lockstep beside the reference: the :class:`Stepper` calls the very kernel entry a
normal run uses (``Hart.run``) with a budget of one instruction, so the fast path and the general
path execute as they always do, and after every instruction reads the same fields QEMU printed.
State ``i`` of rvh (after ``i`` instructions) is compared with QEMU's dump ``i`` (before
instruction ``i``).  What needs care at those boundaries (docs/testing.md has the details):

* QEMU's dump before an instruction is printed after a pending interrupt was taken; rvh takes it
  at the start of its next step.  Where rvh is about to take an interrupt, only the GPRs are
  compared at that boundary; the interrupt's effects (pc, mepc, mcause, mstatus...) are compared
  one instruction later, after the handler's first instruction, where both agree again.  A
  fetch fault, which QEMU raises before its dump, is folded into the step that jumped.
* With ``-icount``, QEMU re-runs an instruction that touches a device in the middle of a block,
  or that starts as its instruction budget runs out, and dumps the same state twice;
  :func:`remove_io_replays` drops the first of two identical dumps (not a jump to itself).
* QEMU's clock does not count an instruction that traps at run time, and its machine timer
  raises MTIP up to one tick late; the :class:`Stepper` and :class:`QemuTimer` follow both.
* With V=1 QEMU's dump shows the guest's supervisor CSRs in the supervisor names (it swaps the
  HS and VS copies); the snapshot reads rvh through the same view.

Where QEMU 7.2 departs from the specification (or makes an implementation-defined choice rvh
does not share), a :class:`Deviation` recognizes exactly that case - the instruction, the rvh
outcome and the QEMU outcome - and rvh *adopts* QEMU's values for exactly the fields involved,
so the rest of the run is still compared.  Every deviation is listed with its spec clause in
``docs/testing.md``, and the result reports each one applied.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numba as nb
import numpy as np

from rvh.config import MachineConfig
from rvh.cpu import layout as L
from rvh.cpu.csr import csr_read
from rvh.cpu.exits import Exit
from rvh.cpu.interrupts import NEVER, any_pending_enabled, next_deadline, select_interrupt
from rvh.errors import EXIT_DEADLOCK, RvhError
from rvh.isa.causes import cause_name
from rvh.isa.csrs import BY_NAME as CSR_BY_NAME
from rvh.isa.disasm import Instruction, decode, disassemble
from rvh.loader import read_elf
from rvh.trace import StateTrace, parse_qemu_log, read_reference, write_reference

MASK64 = (1 << 64) - 1
QEMU_BINARY = os.environ.get("RVH_QEMU", "qemu-system-riscv64")
REFERENCE_MEMORY = 256 << 20  # -m 256: the RAM size both sides use (it places the DTB)


# ---- the reference: QEMU ------------------------------------------------------------------------
def qemu_available() -> bool:
    return shutil.which(QEMU_BINARY) is not None


def qemu_cpu(hypervisor: bool) -> str:
    """QEMU's -cpu matching rvh's hart: RV64IMAC with S and U (7.2 enables F, D and H by
    default, so they are switched off; H follows rvh's configuration)."""
    return "rv64,f=false,d=false,h=" + ("true" if hypervisor else "false")


def qemu_command(elf: str, log: str, *, hypervisor: bool) -> list[str]:
    return [
        QEMU_BINARY,
        "-machine",
        "virt",
        "-cpu",
        qemu_cpu(hypervisor),
        "-bios",
        "none",
        "-m",
        str(REFERENCE_MEMORY >> 20),
        "-nographic",
        "-kernel",
        elf,
        "-icount",
        "shift=0,sleep=off",
        "-singlestep",
        "-d",
        "cpu,nochain",
        "-D",
        log,
    ]


class ReferenceError(RvhError):
    """QEMU could not produce a usable trace, or a reference does not fit the program."""


@dataclass
class QemuRun:
    trace: StateTrace
    output: bytes  # what the guest wrote to the UART
    replays: int  # I/O replays removed
    truncated: bool  # stopped at the instruction limit or timeout


def run_qemu(
    elf: str | Path,
    *,
    hypervisor: bool = False,
    max_instructions: int = 2_000_000,
    timeout: float = 120.0,
) -> QemuRun:
    """Run ``elf`` on QEMU with single-stepped state dumps and read them back."""
    if not qemu_available():
        raise ReferenceError(f"{QEMU_BINARY} not found (Debian: apt install qemu-system-misc)")
    elf = str(elf)
    with tempfile.TemporaryDirectory(prefix="rvh-qemu-") as tmp:
        log = os.path.join(tmp, "cpu.log")
        out_path = os.path.join(tmp, "out")
        command = qemu_command(elf, log, hypervisor=hypervisor)
        # ~1.3 KiB (1.7 with H) of dump per instruction
        max_bytes = max_instructions * (1800 if hypervisor else 1400)
        truncated = False
        with open(out_path, "wb") as out:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + timeout
            while True:
                try:
                    process.wait(timeout=0.005)
                    break
                except subprocess.TimeoutExpired:
                    pass
                too_long = os.path.exists(log) and os.path.getsize(log) > max_bytes
                if too_long or time.monotonic() > deadline:
                    process.kill()
                    process.wait()
                    truncated = True
        data = Path(log).read_bytes() if os.path.exists(log) else b""
        output = Path(out_path).read_bytes()
    if not data:
        raise ReferenceError(f"QEMU wrote no trace: {output.decode(errors='replace')[-500:]}")
    trace = parse_qemu_log(data)
    trace.exit_status = None if truncated else process.returncode
    trace.meta = {
        "source": " ".join(command[:-2]),
        "elf": elf,
        "sha256": hashlib.sha256(Path(elf).read_bytes()).hexdigest(),
    }
    trace, replays = remove_io_replays(trace, elf_fetcher(elf))
    return QemuRun(trace, output, replays, truncated)


def elf_fetcher(elf: str | Path) -> Callable[[int], int | None]:
    """Instruction bits at an address of the ELF's loaded image (None outside it)."""
    segments = [(s.address, s.data) for s in read_elf(str(elf)).segments]

    def fetch(pc: int) -> int | None:
        for address, data in segments:
            if address <= pc and pc + 2 <= address + len(data):
                low = int.from_bytes(data[pc - address : pc - address + 2], "little")
                if low & 3 != 3:
                    return low
                if pc + 4 <= address + len(data):
                    return int.from_bytes(data[pc - address : pc - address + 4], "little")
        return None

    return fetch


def _jumps_to_itself(ins: Instruction, pc: int, registers: dict[str, int]) -> bool:
    """Whether ``ins`` at ``pc`` may leave every register and the pc as they were: a jump or
    branch to itself."""
    name = ins.base_name
    if name in ("jal",) or name.startswith("b"):
        return ins.imm == 0
    if name == "jalr":
        return (registers.get(f"x{ins.rs1}", -1) + ins.imm) & ~1 & MASK64 == pc
    return False


def remove_io_replays(
    trace: StateTrace, fetch: Callable[[int], int | None]
) -> tuple[StateTrace, int]:
    """Drop the first of two identical consecutive dumps: with ``-icount`` QEMU abandons an
    instruction that touches a device in the middle of a block, or that starts when its
    instruction budget (at most 65,535, or up to the next timer deadline) runs out, and runs
    it again, printing the same state twice.  An instruction that jumps to itself may repeat
    a state for real: those are kept."""
    rows = trace.rows
    if len(rows) < 2:
        return trace, 0
    pc = trace.column("pc")
    same = np.flatnonzero(np.all(rows[1:] == rows[:-1], axis=1))
    drop = []
    for k in same.tolist():
        address = int(rows[k, pc])
        bits = fetch(address)
        ins = decode(bits) if bits is not None else None
        if ins is not None and _jumps_to_itself(ins, address, trace.state(k)):
            continue
        drop.append(k)
    if not drop:
        return trace, 0
    kept = np.delete(rows, drop, axis=0)
    return StateTrace(trace.fields, kept, dict(trace.meta), trace.exit_status), len(drop)


# ---- rvh, one instruction at a time ------------------------------------------------------------
# With V=1 QEMU 7.2 keeps the guest's supervisor CSRs in the live registers (it swaps the HS
# and VS copies when V changes), so its dump's "stvec" is vstvec and mstatus carries
# vsstatus's supervisor fields.  These are the fields it swaps.
VIRTUAL_VIEW = {
    "stvec": 0x205,
    "sscratch": 0x240,
    "sepc": 0x241,
    "scause": 0x242,
    "stval": 0x243,
    "satp": 0x280,
}
QEMU_SWAPPED_STATUS = (1 << 19) | (1 << 18) | (3 << 13) | (1 << 8) | (1 << 5) | (1 << 1) | (3 << 32)
MSTATUS_WITH_VSSTATUS = -3
STALE_WHILE_VIRTUAL = ("vsstatus", "vstvec", "vsepc", "vscause")


@nb.njit(cache=True)
def _snapshot(state, machine, tables, columns, sources, virtual_sources, out):
    """Fill ``out`` (uint64 as int64) with the fields QEMU prints: source >= 0 is a CSR
    number, -1 the pc, -2 V, -3 mstatus with vsstatus's fields, -100 - n register xn."""
    if state[L.VIRT]:
        sources = virtual_sources
    for i in range(columns.shape[0]):
        source = sources[i]
        if source == MSTATUS_WITH_VSSTATUS:
            mstatus = csr_read(state, machine, tables, 0x300, 0)
            vsstatus = csr_read(state, machine, tables, 0x200, 0)
            swapped = np.int64(QEMU_SWAPPED_STATUS)
            out[columns[i]] = (mstatus & ~swapped) | (vsstatus & swapped)
        elif source >= 0:
            out[columns[i]] = csr_read(state, machine, tables, source, 0)
        elif source == -1:
            out[columns[i]] = state[L.PC]
        elif source == -2:
            out[columns[i]] = state[L.VIRT]
        else:
            out[columns[i]] = state[L.X + (-100 - source)]


@dataclass
class StepInfo:
    pc: int  # where the step started
    exception: int | None = None  # cause, when the instruction trapped
    interrupt: int | None = None  # cause, when an interrupt was taken first
    ended: bool = False  # the machine stopped (power off, deadlock) before an instruction ran
    privilege: int = 3  # rvh's privilege before the step
    fetch_fault: int | None = None  # cause of a fetch fault taken at the end of the step


class QemuTimer:
    """QEMU 7.2's machine timer, as far as it differs from the spec's: MTIP rises when the
    QEMU timer set at the mtimecmp write fires, at ``write + (mtimecmp - mtime) * 100`` ns with
    mtime in whole ticks, which is up to 99 ns *after* mtime reaches mtimecmp (privileged spec
    3.2.1: MTIP is pending while mtime >= mtimecmp).  Inside exactly that window rvh's comparator
    is held one tick higher, so the interrupt comes on the same instruction as on QEMU."""

    def __init__(self, machine) -> None:
        self.machine = machine.machine
        self.guest_value = int(self.machine[L.M_MTIMECMP])  # what the guest last wrote
        self.deadline = -1  # virtual ns at which QEMU raises MTIP for guest_value
        self.holds = 0  # boundaries at which the comparator was held

    def after_step(self, state: np.ndarray) -> None:
        m = self.machine
        ticks = int(m[L.M_NS_PER_TICK])
        now = int(state[L.TIME_NS])
        current = int(m[L.M_MTIMECMP])
        held = self.deadline >= 0 and current == self.guest_value + 1
        if current != self.guest_value and not held:  # the guest wrote mtimecmp
            self.guest_value = current
            mtime = now // ticks + int(m[L.M_MTIME_OFFSET])
            self.deadline = now + (current - mtime) * ticks if current > mtime else -1
        if self.deadline >= 0 and now < self.deadline:
            mtime = now // ticks + int(m[L.M_MTIME_OFFSET])
            if mtime >= self.guest_value:
                m[L.M_MTIMECMP] = self.guest_value + 1
                self.holds += 1
                return
        m[L.M_MTIMECMP] = self.guest_value

    def after_sleep(self, state: np.ndarray) -> None:
        """wfi slept until rvh's deadline; QEMU (-icount sleep=off) sleeps until its own."""
        now = int(state[L.TIME_NS])
        ticks = int(self.machine[L.M_NS_PER_TICK])
        if 0 <= self.deadline and now == self.guest_value * ticks < self.deadline:
            state[L.TIME_NS] = self.deadline


class Stepper:
    """Drives a loaded single-hart :class:`~rvh.machine.Machine` one instruction at a time,
    serving its kernel exits (MMIO, wfi) the way ``Machine.run`` does."""

    def __init__(self, machine, fields: Sequence[str]) -> None:
        self.machine = machine
        self.hart = machine.harts[0]
        self.state = self.hart.state
        self.fields = list(fields)
        columns, sources, self.unknown = [], [], []
        for i, name in enumerate(self.fields):
            if name == "pc":
                source = -1
            elif name == "V":
                source = -2
            elif name.startswith("x") and name[1:].isdigit():
                source = -100 - int(name[1:])
            elif name in CSR_BY_NAME:
                source = CSR_BY_NAME[name].number
            else:
                self.unknown.append(name)
                continue
            columns.append(i)
            sources.append(source)
        self._columns = np.array(columns, dtype=np.int64)
        self._sources = np.array(sources, dtype=np.int64)
        virtual = []
        for column, source in zip(columns, sources, strict=True):
            name = self.fields[column]
            if name == "mstatus":
                source = MSTATUS_WITH_VSSTATUS
            virtual.append(VIRTUAL_VIEW.get(name, source))
        self._virtual_sources = np.array(virtual, dtype=np.int64)
        stale = [i for i, name in enumerate(self.fields) if name in STALE_WHILE_VIRTUAL]
        self._stale = np.array(stale, dtype=np.int64)
        self._vs_at_entry = np.zeros(len(stale), dtype=np.uint64)
        self.compared = np.zeros(len(self.fields), dtype=bool)
        self.compared[self._columns] = True
        self.steps = 0
        self.untimed_traps = 0  # exceptions whose instruction time was taken back (QEMU)
        self._last_untimed = 0
        self.timer = QemuTimer(machine)

    def snapshot(self) -> np.ndarray:
        row = self._snapshot()
        # With V=1 QEMU's VS copies are the values they had when V became 1 (the live ones are
        # in the supervisor registers it prints instead, see VIRTUAL_VIEW)
        if self._stale.size:
            if self.state[L.VIRT]:
                row[self._stale] = self._vs_at_entry
            else:
                self._vs_at_entry = row[self._stale].copy()
        return row

    def _snapshot(self) -> np.ndarray:
        out = np.zeros(len(self.fields), dtype=np.int64)
        m = self.machine
        _snapshot(
            self.state,
            m.machine,
            m.tables,
            self._columns,
            self._sources,
            self._virtual_sources,
            out,
        )
        return out.view(np.uint64)

    def _progress(self) -> int:
        return int(self.state[L.INSTRET]) + int(self.state[L.EXCEPTIONS])

    def pending_interrupt(self) -> int:
        """The interrupt rvh takes before its next instruction, or -1."""
        s = self.state
        if s[L.WFI]:
            return -1
        return int(select_interrupt(s, self.machine.machine, s[L.TIME_NS]))

    def step(self) -> StepInfo:
        """Run one instruction (after any interrupt due first)."""
        m, s = self.machine, self.state
        info = StepInfo(int(s[L.PC]) & MASK64)
        if m.exit_status is not None:
            info.ended = True
            return info
        exceptions = int(s[L.EXCEPTIONS])
        interrupts = int(s[L.INTERRUPTS])
        pending = self.pending_interrupt()
        info.privilege = int(s[L.PRIV])
        self._run_one(info)
        if int(s[L.INTERRUPTS]) != interrupts:
            info.interrupt = pending
        if int(s[L.EXCEPTIONS]) != exceptions:
            info.exception = int(s[L.LAST_CAUSE])
        # QEMU raises a fetch fault while looking for the next block, before it dumps the
        # state: the fault belongs to this boundary, as an interrupt does
        if m.exit_status is None and self.pending_interrupt() < 0 and self._fetch_faults():
            self._run_one(info)
            info.fetch_fault = int(s[L.LAST_CAUSE])
        self.steps += 1
        self.timer.after_step(s)
        self._settle()
        self.timer.after_step(s)
        return info

    def _run_one(self, info: StepInfo) -> None:
        """One kernel instruction (replaying it after a device access), with the time base
        kept as QEMU's -icount keeps it: an instruction that traps takes no time."""
        m, hart, s = self.machine, self.hart, self.state
        start = self._progress()
        time0, retired0, exceptions0 = int(s[L.TIME_NS]), int(s[L.INSTRET]), int(s[L.EXCEPTIONS])
        for _ in range(10_000):
            reason = hart.run(1)
            if reason != Exit.BUDGET:
                m._serve_exit(hart, reason)
            if self._progress() != start or m.exit_status is not None:
                break
        else:
            raise RuntimeError(f"rvh made no progress at pc {info.pc:#x}")
        elapsed = int(s[L.TIME_NS]) - time0
        retired = int(s[L.INSTRET]) - retired0
        trapped = int(s[L.EXCEPTIONS]) - exceptions0
        self._last_untimed = 0
        if trapped == 1 and elapsed == retired + trapped and not self._qemu_counts_trap(info.pc):
            s[L.TIME_NS] -= 1
            s[L.CYCLE] -= 1
            self.untimed_traps += 1
            self._last_untimed = 1

    def _qemu_counts_trap(self, pc: int) -> bool:
        """Whether QEMU 7.2's -icount clock counts an instruction that trapped: yes when the
        exception is raised by code generated at translation (ecall, ebreak, an encoding it
        cannot decode), no when a helper raises it at run time and rewinds to the instruction
        (CSR and privilege checks, memory faults)."""
        cause = int(self.state[L.LAST_CAUSE])
        if cause in (3, 8, 9, 10, 11):
            return True
        if cause == 2:
            bits = self.fetch(pc)
            return bits is not None and decode(bits) is None
        return False

    def _fetch_faults(self) -> bool:
        """Whether fetching at the current pc faults, where that is known without translation
        (M-mode, or bare satp outside V=1): no RAM or ROM there."""
        s = self.state
        if s[L.VIRT]:
            return False
        if s[L.PRIV] != L.PRIV_M and (int(s[L.CSR_BASE + 0x180]) >> 60) & 0xF:
            return False
        pc = int(s[L.PC]) & MASK64
        return self.machine.bus.host_offset(pc, 2) is None

    def _settle(self) -> None:
        """After a wfi that put the hart to sleep, let time pass as ``Machine.run`` does."""
        s, m = self.state, self.machine
        if not s[L.WFI] or m.exit_status is not None:
            return
        now = s[L.TIME_NS]
        if not any_pending_enabled(s, m.machine, now):
            wait = int(next_deadline(s, m.machine, now))
            if wait >= NEVER:
                m.power_off(EXIT_DEADLOCK, "deadlock: the hart waits in wfi for nothing")
                return
            s[L.TIME_NS] += wait
            self.timer.after_sleep(s)
        s[L.WFI] = 0

    def adopt(self, values: dict[str, int]) -> None:
        """Overwrite rvh's state with reference values (a known deviation): pc, V, xN or a
        CSR's storage."""
        s = self.state
        for name, value in values.items():
            value &= MASK64
            signed = value - (1 << 64) if value >> 63 else value
            if name == "pc":
                s[L.PC] = signed
            elif name == "V":
                s[L.VIRT] = signed
            elif name.startswith("x") and name[1:].isdigit():
                if name != "x0":
                    s[L.X + int(name[1:])] = signed
            elif name == "priv":
                s[L.PRIV] = signed
            elif name == "reservation":
                s[L.RESERVATION] = signed
            elif name == "retired":
                # the instruction rvh trapped on retired on QEMU: count it, and its time
                s[L.INSTRET] += 1
                s[L.EXCEPTIONS] -= 1
                if self._last_untimed:
                    s[L.TIME_NS] += 1
                    s[L.CYCLE] += 1
                    self.untimed_traps -= 1
            else:
                s[L.CSR_BASE + CSR_BY_NAME[name].number] = signed

    def fetch(self, pc: int) -> int | None:
        """The instruction bits at pc, read from memory (physical = virtual: M-mode and bare
        translation; None where that does not hold or nothing is mapped)."""
        bus = self.machine.bus
        try:
            low = int.from_bytes(bus.read_bytes(pc, 2), "little")
            if low & 3 != 3:
                return low
            return int.from_bytes(bus.read_bytes(pc, 4), "little")
        except Exception:
            return None


# ---- known deviations ---------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Ignore:
    """A deviation's claim on a field that rvh cannot take over (its storage keeps those bits
    zero): these bits of the field are left out of the comparison from here on, for as long
    as the two values differ."""

    bits: int


@dataclass(frozen=True)
class Deviation:
    """A documented, exactly scoped difference between QEMU 7.2 and rvh."""

    name: str
    clause: str  # the spec clause QEMU departs from, or why the difference is deliberate
    description: str
    rule: Callable[[StepContext], dict[str, int | Ignore | None] | None]

    def match(self, ctx: StepContext) -> dict[str, int | Ignore | None] | None:
        """The fields to adopt from QEMU if this deviation explains the difference: a value
        is written into rvh's state, None accepts the difference at this boundary only, an
        :class:`Ignore` leaves bits out until the field agrees again."""
        return self.rule(ctx)


def _is_amo_or_sc(ins: Instruction | None) -> bool:
    return ins is not None and (ins.base_name.startswith(("amo", "sc.")))


def _trap_fields_only(ctx: StepContext, allowed: set[str]) -> bool:
    return bool(ctx.differing) and ctx.differing <= allowed


def _rule_amo_misaligned(ctx: StepContext) -> dict[str, int] | None:
    # rvh: store/AMO address misaligned (6); QEMU 7.2: load address misaligned (4)
    if not _is_amo_or_sc(ctx.instruction) or ctx.info.exception != 6 or "pc" in ctx.differing:
        return None
    if "mcause" in ctx.differing and ctx.after["mcause"] == 6 and ctx.expected["mcause"] == 4:
        return {"mcause": 4}
    return None


def _rule_amo_access_fault(ctx: StepContext) -> dict[str, int] | None:
    # rvh: store/AMO access fault (7); QEMU 7.2: load access fault (5)
    if not _is_amo_or_sc(ctx.instruction) or ctx.info.exception != 7 or "pc" in ctx.differing:
        return None
    if "mcause" in ctx.differing and ctx.after["mcause"] == 7 and ctx.expected["mcause"] == 5:
        return {"mcause": 5}
    return None


def _csr_writes(ins: Instruction) -> bool:
    """Whether a CSR instruction writes its CSR (Zicsr 9.1: not csrrs/csrrc with rs1 = x0,
    not csrrsi/csrrci with uimm 0)."""
    if ins.base_name in ("csrrw", "csrrwi"):
        return True
    if ins.base_name in ("csrrs", "csrrc"):
        return ins.rs1 != 0
    return ins.imm != 0


def _rule_read_only_csr_zero_source(ctx: StepContext) -> dict[str, int] | None:
    # csrrs/csrrc with rs1 != x0 holding 0 on a read-only CSR: the spec makes it an attempted
    # write (illegal instruction); QEMU 7.2 looks at the value and performs a plain read.
    ins = ctx.instruction
    if ins is None or ins.base_name not in ("csrrs", "csrrc") or ins.rs1 == 0:
        return None
    if ins.csr >> 10 != 3 or ctx.before[f"x{ins.rs1}"] != 0 or ctx.info.exception != 2:
        return None
    if ctx.expected["pc"] != ctx.pc + ins.length:
        return None  # QEMU trapped too
    allowed = {"pc", "mepc", "mcause", "mtval", "mstatus", f"x{ins.rd}"}
    if not _trap_fields_only(ctx, allowed):
        return None
    adopt = {name: ctx.expected[name] for name in ctx.differing}
    adopt["priv"] = ctx.info.privilege
    adopt["retired"] = 1  # QEMU executed it
    return adopt


MACHINE_ID_QEMU = 0x70216  # QEMU 7.2's marchid and mimpid for its generic rv64 CPU


def _rule_machine_ids(ctx: StepContext) -> dict[str, int] | None:
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in (0xF12, 0xF13) or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd in ctx.differing and ctx.after[rd] == 0 and ctx.expected[rd] == MACHINE_ID_QEMU:
        return {rd: MACHINE_ID_QEMU}
    return None


def _rule_epc_bit0(ctx: StepContext) -> dict[str, int] | None:
    ins = ctx.instruction
    names = {0x341: "mepc", 0x141: "sepc", 0x241: "vsepc"}
    if ins is None or not ins.is_csr or ins.csr not in names or not _csr_writes(ins):
        return None
    name = names[ins.csr]
    if name in ctx.differing and ctx.expected[name] == ctx.after[name] | 1:
        return {name: ctx.expected[name]}
    return None


def _rule_sc_without_reservation(ctx: StepContext) -> dict[str, int | None] | None:
    # A misaligned SC must trap (unprivileged spec 8.2), and rvh checks the access (alignment,
    # then memory) before the reservation.  QEMU 7.2 first compares the address with its
    # reservation and, when they differ, fails the SC (rd = 1) without a trap.
    ins = ctx.instruction
    if ins is None or not ins.base_name.startswith("sc.") or ctx.info.exception not in (6, 7):
        return None
    if ctx.expected["pc"] != ctx.pc + ins.length:
        return None
    rd = f"x{ins.rd}"
    if ins.rd != 0 and ctx.expected[rd] != 1:
        return None
    if not _trap_fields_only(ctx, {"pc", "mepc", "mcause", "mtval", "mstatus", rd}):
        return None
    adopt: dict[str, int | None] = {name: ctx.expected[name] for name in ctx.differing}
    adopt["priv"] = ctx.info.privilege
    adopt["retired"] = 1  # QEMU executed it
    adopt["reservation"] = -1  # and an SC, failed or not, invalidates the reservation (8.2)
    return adopt


COUNTERS = {0xC00: "cycle", 0xC02: "instret", 0xB00: "mcycle", 0xB02: "minstret"}


def _rule_counter_reads_clock(ctx: StepContext) -> dict[str, int] | None:
    # QEMU 7.2 with -icount returns its virtual clock in ns for all four counters: the reading
    # instruction included (Zicsr 9.1: the value prior to the instruction), trapped ecalls and
    # ebreaks included, idle time in wfi included (instret counts retired instructions only).
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in COUNTERS or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd in ctx.differing and ctx.expected[rd] == ctx.time_ns & MASK64:
        return {rd: ctx.expected[rd]}
    return None


MSTATUS_UXL = 3 << 32


def _rule_mstatus_uxl(ctx: StepContext) -> dict[str, int] | None:
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in (0x300, 0x100) or not _csr_writes(ins):
        return None
    if "mstatus" in ctx.differing:
        if (ctx.after["mstatus"] ^ ctx.expected["mstatus"]) & ~MSTATUS_UXL == 0:
            return {"mstatus": ctx.expected["mstatus"]}
    return None


def _rule_reset_mideleg(ctx: StepContext) -> dict[str, int | None] | None:
    # privileged 8.4.2 (H): mideleg bits 10, 6, 2 (and 12 with GEILEN > 0) are read-only one.
    # QEMU 7.2 shows them from its second dump on, but 0 in the reset dump.
    if ctx.index != 0 or "mideleg" not in ctx.differing or ctx.expected["mideleg"] != 0:
        return None
    return {"mideleg": None}  # accepted at this boundary only


VSSTATUS_SXL = 3 << 34


def _rule_vsstatus_raw(ctx: StepContext) -> dict[str, int | None] | None:
    # vsstatus has sstatus's layout (privileged 8.2.11): bits 35:34 are WPRI.  QEMU 7.2 resets
    # it with mstatus's SXL = 2 there and stores what is written to it unmasked.
    if "vsstatus" not in ctx.differing:
        return None
    if ctx.index == 0:
        if ctx.expected["vsstatus"] == ctx.after["vsstatus"] | (2 << 34):
            return {"vsstatus": ctx.expected["vsstatus"]}
        return None
    ins = ctx.instruction
    if ins is None or not ins.is_csr or not _csr_writes(ins):
        return None
    if ins.csr == 0x200 or (ins.csr == 0x100 and ctx.before.get("V")):
        return {"vsstatus": ctx.expected["vsstatus"]}
    return None


# CSR bits that QEMU 7.2 lets software write where rvh, following the spec, keeps read-only
# zeros: the VS-level and SGEI interrupt bits without the H extension, Sscofpmf's LCOFI
# (bit 13) although QEMU does not enable Sscofpmf, the guest-page-fault and VS-ecall causes in
# medeleg without H, medeleg[11] (ecall from M) always, with H mip's VSTIP/VSEIP (read-only
# aliases of hvip, privileged spec 8.2.3/8.4.3), the upper halves of the counter-enables.
WRITABLE_RESERVED_BITS = {  # number: (field, bits without H, bits with H)
    0x303: ("mideleg", 0x2444, 0x2000),
    0x304: ("mie", 0x3444, 0x2000),
    0x344: ("mip", 0x3444, 0x2440),  # with H: VSTIP/VSEIP (h-extension.md D2)
    0x302: ("medeleg", 0xF00C00, 0x800),  # bit 11: ecall from M (3.1.8: read-only zero)
    # the counter-enable registers are 32 bits wide (3.1.11, 4.1.5); QEMU keeps 64 (not in its
    # dump: only reads of them are compared)
    0x306: ("mcounteren", -1 << 32 & MASK64, -1 << 32 & MASK64),
    0x106: ("scounteren", -1 << 32 & MASK64, -1 << 32 & MASK64),
}


def _rule_writable_reserved_bits(ctx: StepContext) -> dict[str, int | Ignore | None] | None:
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in WRITABLE_RESERVED_BITS:
        return None
    name, without_h, with_h = WRITABLE_RESERVED_BITS[ins.csr]
    bits = with_h if "V" in ctx.after else without_h  # QEMU prints V when H is on
    claim: dict[str, int | Ignore | None] = {}
    if _csr_writes(ins) and name in ctx.differing:
        extra = ctx.after[name] ^ ctx.expected[name]
        if extra & ~bits == 0 and ctx.after[name] & extra == 0:
            claim[name] = Ignore(extra)  # QEMU has them set, rvh keeps them clear
    rd = f"x{ins.rd}"
    if ins.rd != 0 and rd in ctx.differing:
        extra = ctx.after[rd] ^ ctx.expected[rd]
        if extra & ~bits == 0 and ctx.after[rd] & extra == 0:
            claim[rd] = ctx.expected[rd]  # a read of those bits
    return claim or None


ACCESS_SIZES = {"b": 1, "h": 2, "w": 4, "d": 8}


def _access_size(ins: Instruction) -> int:
    name = ins.base_name.rstrip("u")
    return ACCESS_SIZES.get(name[-1], 0)


def _rule_misaligned_fault_tval(ctx: StepContext) -> dict[str, int | None] | None:
    # A misaligned load/store that faults: mtval is "the virtual address of the portion of the
    # access that caused the fault" (privileged 3.1.16).  QEMU 7.2 splits the access into two
    # naturally aligned accesses of the full size and reports the aligned address of the one
    # that faulted, which can lie outside the access.
    ins = ctx.instruction
    if ins is None or not (ins.is_load or ins.is_store) or ctx.info.exception not in (5, 7):
        return None
    size = _access_size(ins)
    address = (ctx.before[f"x{ins.rs1}"] + ins.imm) & MASK64
    if size < 2 or address % size == 0 or "mtval" not in ctx.differing or "pc" in ctx.differing:
        return None
    first = address & ~(size - 1)
    if ctx.after["mtval"] == address and ctx.expected["mtval"] in (first, first + size):
        return {"mtval": ctx.expected["mtval"]}
    return None


DEVIATIONS: list[Deviation] = [
    Deviation(
        "amo-misaligned-cause",
        "unprivileged spec 8.4 and privileged 3.1.15: a misaligned AMO or SC raises "
        "store/AMO address misaligned (6)",
        "QEMU 7.2 raises load address misaligned (4) for a misaligned AMO",
        _rule_amo_misaligned,
    ),
    Deviation(
        "amo-access-fault-cause",
        "privileged spec 3.1.15: an AMO or SC that faults raises store/AMO access fault (7)",
        "QEMU 7.2 raises load access fault (5) for an AMO to an address with no memory",
        _rule_amo_access_fault,
    ),
    Deviation(
        "csr-set-clear-zero-read-only",
        "Zicsr 9.1: csrrs/csrrc with rs1 != x0 attempt the write whatever rs1 holds, so a "
        "read-only CSR raises illegal instruction",
        "QEMU 7.2 decides on the value: with rs1 holding 0 it reads the CSR without a trap",
        _rule_read_only_csr_zero_source,
    ),
    Deviation(
        "sc-fails-before-trapping",
        "unprivileged spec 8.2: a misaligned LR/SC raises an address-misaligned (or "
        "access-fault) exception; rvh also raises the access fault of an SC to no memory",
        "QEMU 7.2 fails an SC whose address is not the reserved one (rd = 1) without checking "
        "alignment or memory, so without a trap",
        _rule_sc_without_reservation,
    ),
    Deviation(
        "counters-read-virtual-clock",
        "Zicsr 9.1 (a CSR read sees the value prior to the instruction) and Zicntr/privileged "
        "3.3.1 (instret counts retired instructions)",
        "QEMU 7.2 with -icount reads cycle/instret/mcycle/minstret as its virtual clock in ns: "
        "the reading instruction, trapped ecalls/ebreaks and time asleep in wfi included",
        _rule_counter_reads_clock,
    ),
    Deviation(
        "machine-id-values",
        "privileged spec 3.1.3-3.1.4: marchid/mimpid are implementation-defined (0 = not "
        "implemented); rvh reads 0",
        "QEMU 7.2 reads 0x70216 (its version) from marchid and mimpid",
        _rule_machine_ids,
    ),
    Deviation(
        "epc-bit0",
        "privileged spec 3.1.14 (4.1.7, 8.2.15 for sepc/vsepc): with IALIGN=16, xepc[0] is "
        "always zero",
        "QEMU 7.2 keeps bit 0 of a value written to mepc/sepc",
        _rule_epc_bit0,
    ),
    Deviation(
        "reset-mideleg",
        "privileged spec 8.4.2 (H): mideleg bits 10, 6, 2 and, with GEILEN > 0, 12 are "
        "read-only one",
        "QEMU 7.2's first dump (at reset) shows mideleg = 0, later ones 0x1444",
        _rule_reset_mideleg,
    ),
    Deviation(
        "vsstatus-raw",
        "privileged spec 8.2.11 (H): vsstatus has the layout of sstatus (bits 35:34 are WPRI, "
        "zero)",
        "QEMU 7.2 resets vsstatus with SXL = 2 in bits 35:34 and stores writes unmasked",
        _rule_vsstatus_raw,
    ),
    Deviation(
        "misaligned-fault-tval",
        "privileged spec 3.1.16: for a misaligned access that faults, mtval holds the address "
        "of the portion of the access that faulted",
        "QEMU 7.2 reports the naturally aligned address of the aligned access it split off, "
        "which may lie below the access",
        _rule_misaligned_fault_tval,
    ),
    Deviation(
        "reserved-bits-writable",
        "privileged spec 3.1.8-3.1.9: delegation and enable bits of interrupts and exceptions "
        "that do not exist (VS-level and SGEI without H, LCOFI without Sscofpmf, guest-page "
        "faults without H) are read-only zero; with H mip.VSTIP/VSEIP are read-only (8.4.3); "
        "mcounteren/scounteren are 32-bit registers (3.1.11, 4.1.5)",
        "QEMU 7.2 lets mideleg, mie, mip and medeleg bits of those, and the upper halves of "
        "the counter-enables, be written",
        _rule_writable_reserved_bits,
    ),
    Deviation(
        "mstatus-uxl",
        "privileged spec 3.1.6.2: UXL is WARL and rvh's U-mode is RV64 only (UXL read-only 2)",
        "QEMU 7.2 lets a write change mstatus.UXL",
        _rule_mstatus_uxl,
    ),
]


# ---- the comparison ----------------------------------------------------------------------------
@dataclass
class Step:
    """One instruction of the context shown with a divergence."""

    index: int  # instruction number (0 = the first at 0x1000)
    pc: int
    bits: int | None
    changes: dict[str, tuple[int, int]]  # field -> (before, after), rvh's view
    note: str = ""

    def text(self) -> str:
        code = disassemble(self.bits, self.pc) if self.bits is not None else "?"
        changes = " ".join(f"{_pretty(n)}={after:#x}" for n, (_, after) in self.changes.items())
        note = f"  [{self.note}]" if self.note else ""
        return f"{self.index:8d}  {self.pc:#018x}  {code:<32} {changes}{note}"


@dataclass
class Divergence:
    index: int  # instruction number whose result differs (-1: the initial state)
    pc: int
    bits: int | None
    fields: dict[str, tuple[int | None, int | None]]  # name -> (rvh, qemu)
    reason: str
    context: list[Step]

    @property
    def disassembly(self) -> str:
        return disassemble(self.bits, self.pc) if self.bits is not None else "?"


@dataclass
class AppliedDeviation:
    name: str
    index: int
    pc: int
    fields: dict[str, tuple[int, int]]


@dataclass
class DiffResult:
    instructions: int  # instruction boundaries that were compared and agreed
    fields: list[str]  # compared fields
    not_compared: list[str]
    divergence: Divergence | None = None
    deviations: list[AppliedDeviation] = field(default_factory=list)
    rvh_exit: int | None = None
    reference_exit: int | None = None

    @property
    def ok(self) -> bool:
        return self.divergence is None


_ABI = (
    "zero ra sp gp tp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5 a6 a7 "
    "s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6"
).split()


def _pretty(name: str) -> str:
    if name.startswith("x") and name[1:].isdigit():
        return _ABI[int(name[1:])]
    return name


def lockstep(
    stepper: Stepper,
    reference: StateTrace,
    *,
    context: int = 8,
    deviations: Sequence[Deviation] = DEVIATIONS,
) -> DiffResult:
    """Compare rvh (driven by ``stepper``) with ``reference`` from reset to the reference's
    end; stops at the first divergence."""
    fields = reference.fields
    pc_column = fields.index("pc")
    compared = stepper.compared
    result = DiffResult(
        0, [f for f, c in zip(fields, compared, strict=True) if c], list(stepper.unknown)
    )
    result.reference_exit = reference.exit_status
    history: deque[Step] = deque(maxlen=max(context, 1))
    rows = reference.rows
    count = len(reference)
    row = stepper.snapshot()
    before = row
    info = StepInfo(int(row[pc_column]))
    ALL = np.uint64(MASK64)
    masks = np.full(len(fields), ALL, dtype=np.uint64)  # bits compared, per field
    masked = False

    def differs(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
        return (((ours ^ theirs) & masks) != 0) & compared

    step = Step(-1, info.pc, None, {})

    def fail(index: int, pc: int, bits: int | None, reason: str, at: int) -> DiffResult:
        differing = {}
        if at < count:
            for c in np.flatnonzero(differs(row, rows[at])).tolist():
                differing[fields[c]] = (int(row[c]), int(rows[at][c]))
        result.divergence = Divergence(index, pc, bits, differing, reason, list(history))
        result.rvh_exit = stepper.machine.exit_status
        return result

    def as_dict(values: np.ndarray) -> dict[str, int]:
        return dict(zip(fields, (int(v) for v in values), strict=True))

    for i in range(count):
        expected = rows[i]
        if i > 0:
            before = row
            info = stepper.step()
            if info.ended:
                reason = f"rvh stopped ({stepper.machine.exit_reason}) where QEMU went on"
                return fail(i - 1, info.pc, stepper.fetch(info.pc), reason, i)
            row = stepper.snapshot()
            pc = int(before[pc_column])
            notes = []
            if info.interrupt is not None:
                pc = int(rows[i - 1][pc_column])  # the handler's first instruction
                notes.append(f"after {cause_name(info.interrupt | 1 << 63)}")
            if info.exception is not None:
                notes.append(f"trap: {cause_name(info.exception)}")
            if info.fetch_fault is not None:
                notes.append(f"then {cause_name(info.fetch_fault)} at {int(row[pc_column]):#x}")
            changed = np.flatnonzero((before != row) & compared).tolist()
            changes = {fields[c]: (int(before[c]), int(row[c])) for c in changed}
            changes.pop("pc", None)
            step = Step(i - 1, pc, stepper.fetch(pc), changes, ", ".join(notes))
            history.append(step)
        if masked:
            # a field that agrees again in full is compared in full again
            agree = (row == expected) & (masks != ALL)
            masks[agree] = ALL
            masked = bool((masks != ALL).any())
        mismatch = differs(row, expected)
        if not mismatch.any():
            result.instructions = i + 1
            continue
        differing = {fields[c] for c in np.flatnonzero(mismatch).tolist()}
        if i > 0 and not any(name.startswith("x") for name in differing):
            cause = stepper.pending_interrupt()
            if cause >= 0:
                # QEMU's dump comes after the interrupt; rvh takes it in its next step
                step.note += ("; " if step.note else "") + f"{cause_name(cause | 1 << 63)} next"
                result.instructions = i + 1
                continue
        ctx = StepContext(
            i,
            step.pc,
            decode(step.bits) if step.bits is not None else None,
            as_dict(before),
            as_dict(row),
            as_dict(expected),
            differing,
            info,
            int(stepper.state[L.TIME_NS]),
        )
        # every differing field must be claimed by a deviation that recognizes this case
        claims: dict[str, int | Ignore | None] = {}
        matched: list[tuple[Deviation, list[str]]] = []
        for deviation in deviations:
            claim = deviation.match(ctx)
            if claim is None:
                continue
            claimed = sorted(n for n in claim if n in fields)
            if set(claimed) & set(claims) or not set(claimed) <= differing:
                continue
            claims.update(claim)
            matched.append((deviation, claimed))
        accepted = {name for name, value in claims.items() if value is None}
        remaining = differing
        if matched and differing <= set(claims):
            for name, value in claims.items():
                if isinstance(value, Ignore):
                    masks[fields.index(name)] &= np.uint64(~value.bits & MASK64)
            stepper.adopt({n: v for n, v in claims.items() if isinstance(v, int)})
            row = stepper.snapshot()
            remaining = {fields[c] for c in np.flatnonzero(differs(row, expected)).tolist()}
        if not (matched and remaining <= accepted):
            if i == 0:
                return fail(-1, int(row[pc_column]), None, "the reset states differ", 0)
            what = "the instruction's result differs"
            if info.exception is not None and "pc" in differing:
                what = f"rvh trapped ({cause_name(info.exception)}); QEMU did not, or differently"
            elif info.interrupt is not None:
                what = f"rvh took {cause_name(info.interrupt | 1 << 63)} before it"
            elif "pc" in differing:
                what = "the next pc differs"
            return fail(i - 1, step.pc, step.bits, what, i)
        masked = bool((masks != ALL).any())
        for deviation, claimed in matched:
            result.deviations.append(
                AppliedDeviation(
                    deviation.name,
                    i - 1,
                    step.pc,
                    {n: (ctx.after[n], ctx.expected[n]) for n in claimed},
                )
            )
            step.note += ("; " if step.note else "") + f"deviation {deviation.name}"
        result.instructions = i + 1
    # QEMU exited after its last dumped instruction; rvh must do the same
    final_pc = int(row[pc_column])
    stepper.step()
    result.rvh_exit = stepper.machine.exit_status
    if reference.exit_status is not None:
        bits = stepper.fetch(final_pc)
        if stepper.machine.exit_status is None:
            reason = "QEMU exited after this instruction, rvh went on"
            return fail(count - 1, final_pc, bits, reason, count)
        if stepper.machine.exit_status != reference.exit_status:
            reason = f"exit status: rvh {stepper.machine.exit_status}, QEMU {reference.exit_status}"
            return fail(count - 1, final_pc, bits, reason, count)
    return result


# ---- putting it together ---------------------------------------------------------------------
def make_machine(elf: str | Path, *, hypervisor: bool, output: Callable[[bytes], None] | None):
    from rvh.machine import Machine

    extensions = "acimsu" + ("h" if hypervisor else "")  # what QEMU's -cpu (qemu_cpu) has
    config = MachineConfig(memory=REFERENCE_MEMORY, harts=1, extensions=extensions)
    machine = Machine(config, output=output or (lambda data: None))
    machine.load(str(elf))
    return machine


def diff_elf(
    elf: str | Path,
    reference: StateTrace | None = None,
    *,
    hypervisor: bool = False,
    context: int = 8,
    max_instructions: int = 2_000_000,
    tables_hook: Callable[[np.ndarray], None] | None = None,
) -> DiffResult:
    """Run ``elf`` on rvh in lockstep with its QEMU reference (run here unless given).

    ``tables_hook`` may edit the machine's decode tables before the run (the seeded-divergence
    test breaks an instruction this way, in that machine only)."""
    if reference is None:
        reference = run_qemu(elf, hypervisor=hypervisor, max_instructions=max_instructions).trace
    machine = make_machine(elf, hypervisor=hypervisor, output=None)
    if tables_hook is not None:
        tables_hook(machine.tables)
    stepper = Stepper(machine, reference.fields)
    return lockstep(stepper, reference, context=context)


def diff_command(
    elf: str,
    *,
    reference: str | None = None,
    save_reference: str | None = None,
    hypervisor: bool = True,
    context: int = 10,
    max_instructions: int = 2_000_000,
) -> int:
    """``rvh diff``: prints the report; 0 when rvh and QEMU agree, 1 at a divergence."""
    read_elf(elf)  # a clear LoadError for what is not a RISC-V ELF
    if reference is not None:
        try:
            trace = read_reference(reference)
        except (OSError, ValueError) as error:
            raise ReferenceError(f"{reference}: {error}") from None
        digest = hashlib.sha256(Path(elf).read_bytes()).hexdigest()
        if trace.meta.get("sha256", digest) != digest:
            raise ReferenceError(f"{reference} was traced from another build of {elf}")
        hypervisor = "V" in trace.fields
    else:
        run = run_qemu(elf, hypervisor=hypervisor, max_instructions=max_instructions)
        trace = run.trace
        if run.truncated:
            print(f"rvh diff: QEMU stopped after {len(trace)} instructions (--max-insns)")
        if save_reference:
            write_reference(trace, save_reference)
    result = diff_elf(elf, trace, hypervisor=hypervisor, context=context)
    print(format_report(result, elf=elf))
    return 0 if result.ok else 1


def format_report(result: DiffResult, *, elf: str | None = None) -> str:
    """The human report of ``rvh diff``."""
    lines = []
    d = result.divergence
    if d is None:
        lines.append(
            f"rvh diff: {result.instructions} instruction boundaries agree with QEMU 7.2 "
            f"({len(result.fields)} fields: pc, x0-x31, "
            + ", ".join(f for f in result.fields if f != "pc" and not f.startswith("x"))
            + ")"
        )
        if result.rvh_exit is not None:
            lines.append(f"both exited with status {result.rvh_exit}")
    else:
        where = "reset" if d.index < 0 else f"instruction {d.index}"
        lines.append(f"rvh diff: first divergence at {where}: {d.pc:#x}: {d.disassembly}")
        lines.append(f"  {d.reason}")
        if d.fields:
            lines.append(f"  {'field':<14}{'rvh':<22}{'QEMU 7.2':<22}")
            for name, (ours, theirs) in d.fields.items():
                label = f"{_pretty(name)} ({name})" if name.startswith("x") else name
                lines.append(f"  {label:<14}{_hex(ours):<22}{_hex(theirs):<22}")
        if d.context:
            lines.append(f"last {len(d.context)} instructions (rvh's register writes):")
            lines.extend("  " + step.text() for step in d.context)
        if elf:
            lines.append(f"reproduce: rvh diff {elf} --context {max(20, len(d.context))}")
    if result.deviations:
        counts: dict[str, int] = {}
        for applied in result.deviations:
            counts[applied.name] = counts.get(applied.name, 0) + 1
        lines.append(
            "known QEMU deviations applied: "
            + ", ".join(f"{name} x{n}" for name, n in counts.items())
            + " (docs/testing.md)"
        )
    if result.not_compared:
        lines.append("not compared (unknown to rvh): " + ", ".join(result.not_compared))
    return "\n".join(lines)


def _hex(value: int | None) -> str:
    return "-" if value is None else f"{value:#018x}"


__all__ = [
    "DEVIATIONS",
    "Deviation",
    "DiffResult",
    "Divergence",
    "Stepper",
    "diff_elf",
    "format_report",
    "lockstep",
    "qemu_available",
    "remove_io_replays",
    "run_qemu",
]

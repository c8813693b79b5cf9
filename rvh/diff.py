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

QEMU runs beside the comparison: its log goes through a FIFO to a thread that parses the dumps
as they come (:class:`QemuStream`), and plain instructions that agree are stepped and compared
by a compiled loop (:func:`_fast_lockstep`), so guests of millions of instructions are
compared whole.

Where QEMU 7.2 departs from the specification (or makes an implementation-defined choice rvh
does not share), a :class:`Deviation` recognizes exactly that case - the instruction, the rvh
outcome and the QEMU outcome - and rvh *adopts* QEMU's outcome for exactly the fields involved,
so the rest of the run is still compared: QEMU's values, or where the control flow differs
QEMU's trap instead of rvh's execution (or the reverse), the instruction taken back first
(:meth:`Stepper.rewind`).  The H extension's departures carry their D-numbers
(guests/hext/README.md, docs/h-extension.md).  Every deviation is listed with its spec clause
in ``docs/testing.md``, and the result reports each one applied.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numba as nb
import numpy as np

from rvh.config import MachineConfig
from rvh.cpu import layout as L
from rvh.cpu.core import run
from rvh.cpu.csr import csr_read
from rvh.cpu.exits import Exit
from rvh.cpu.interrupts import NEVER, any_pending_enabled, next_deadline, select_interrupt
from rvh.cpu.mmu import host_offset, update_contexts
from rvh.cpu.trap import take_trap
from rvh.errors import EXIT_DEADLOCK, RvhError
from rvh.isa.causes import cause_name
from rvh.isa.csrs import BY_NAME as CSR_BY_NAME
from rvh.isa.csrs import BY_NUMBER as CSR_BY_NUMBER
from rvh.isa.disasm import FLOAT_TO_INTEGER, Instruction, decode, disassemble
from rvh.loader import read_elf
from rvh.trace import StateTrace, parse_qemu_log, read_reference, write_reference

MASK64 = (1 << 64) - 1
MSTATUS_FS_DIRTY = 3 << 13
MASK64_SD = 1 << 63
MRET = 0x30200073
QEMU_M_VIRTUAL = "qemu-m-virtual"  # adopt(): QEMU's mret has left its hart in M-mode with V=1
QEMU_TRAPPED = "qemu-trapped"  # adopt(): QEMU trapped (cause, tval) where rvh went on
QEMU_EXECUTED = "qemu-executed"  # adopt(): QEMU executed the instruction rvh trapped on
QEMU_EXECUTED_WITH = "qemu-executed-with"  # adopt(): run it again with ((csr, bits set),...)
QEMU_PTE_BITS = "qemu-pte-bits"  # adopt(): QEMU set (GPA of a VS-stage PTE, A/D bits) in memory
# the accounts of what QEMU did with an instruction: a deviation gives at most one
OUTCOMES = {QEMU_TRAPPED, QEMU_EXECUTED, QEMU_EXECUTED_WITH, QEMU_M_VIRTUAL}
QEMU_BINARY = os.environ.get("RVH_QEMU", "qemu-system-riscv64")
REFERENCE_MEMORY = 256 << 20  # -m 256: the RAM size both sides use (it places the DTB)


def _signed(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


# ---- the reference: QEMU ------------------------------------------------------------------------
def qemu_available() -> bool:
    return shutil.which(QEMU_BINARY) is not None


def qemu_cpu(hypervisor: bool) -> str:
    """QEMU's -cpu matching rvh's hart: RV64IMAFDC with S and U.  QEMU 7.2 enables the
    bit-manipulation extensions Zba/Zbb/Zbc/Zbs by default; rvh has none of them, so they are
    switched off (a Zbb word must be an illegal instruction on both).  H follows rvh's
    configuration."""
    bitmanip_off = "zba=false,zbb=false,zbc=false,zbs=false"
    return f"rv64,f=true,d=true,{bitmanip_off},h=" + ("true" if hypervisor else "false")


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
        "cpu,fpu,nochain",
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


_RECORD_START = re.compile(rb"^ (?:V      =|pc      )", re.M)
_HEX_VALUE = re.compile(rb" ([0-9a-f]{16})(?![0-9a-z])")
_LOG_LINE = re.compile(rb"^ (\S+)\s+(=\s+)?([0-9a-f]+)\s*$")
_LOG_GPRS = re.compile(rb" x(\d+)/\S+\s+([0-9a-f]{16})")
_LOG_FPRS = re.compile(rb" f(\d+)/\S+\s+([0-9a-f]{16})")
MISSING_META = "missing"  # reference meta: fields a dump left out, "row:name,name row:name"
LOG_READ = 8 << 20  # bytes of QEMU's log read (and parsed) at a time
ROWS_PER_BLOCK = 1 << 17  # reference rows handed to the comparison at a time


@nb.njit(cache=True, nogil=True)
def _parse_fixed_records(buf, position, length, header, offsets, v_offset, rows, first_row):
    """Read the QEMU dumps from ``buf[position:]`` that have the first one's fixed-width layout
    straight into ``rows[first_row:]``: the 16 hex digits at each of ``offsets``, the V digit at
    ``v_offset`` (-1: none) into column 0.  Stops at the first record that does not fit the
    layout (or at the end); returns the number of records read."""
    fields = offsets.shape[0]
    shift = 1 if v_offset >= 0 else 0
    count = (buf.shape[0] - position) // length
    for r in range(count):
        base = position + r * length
        for k in range(header.shape[0]):
            if buf[base + k] != header[k]:
                return r
        if buf[base + length - 1] != 10 or buf[base + length - 2] == 10:
            return r
        row = first_row + r
        if row >= rows.shape[0]:
            return r
        if shift:
            digit = buf[base + v_offset] - 48
            if digit < 0 or digit > 9:
                return r
            rows[row, 0] = digit
        for f in range(fields):
            value = np.uint64(0)
            at = base + offsets[f]
            for k in range(16):
                c = buf[at + k]
                if 48 <= c <= 57:
                    nibble = c - 48
                elif 97 <= c <= 102:
                    nibble = c - 87
                else:
                    return r
                value = (value << np.uint64(4)) | np.uint64(nibble)
            rows[row, f + shift] = value
    return count


def _parse_record(record: bytes, columns: dict[str, int]) -> dict[int, int] | None:
    """One dump read line by line (the layout of the first one did not fit): column -> value
    for the fields it shows, None if it is cut short."""
    values: dict[int, int] = {}
    gprs = 0
    for line in record.split(b"\n"):
        if line.startswith(b" x") and b"/" in line:
            for number, value in _LOG_GPRS.findall(line):
                values[columns[f"x{int(number)}"]] = int(value, 16)
                gprs += 1
            continue
        if line.startswith(b" f") and b"/" in line:
            for number, value in _LOG_FPRS.findall(line):
                if f"f{int(number)}" in columns:
                    values[columns[f"f{int(number)}"]] = int(value, 16)
            continue
        found = _LOG_LINE.match(line)
        if found:
            name = found.group(1).decode()
            if name in columns:
                values[columns[name]] = int(found.group(3), 10 if found.group(2) else 16)
    return values if gprs == 32 else None


def _read_fifo(fd: int, size: int, running: Callable[[], bool]) -> bytes:
    """At least ``size`` bytes from the FIFO ``fd`` (opened non-blocking), or what is left
    once the writer is gone: b"" at the end.  Before QEMU opens its end there is nothing to
    read, which is not the end while QEMU runs."""
    import select

    parts, total = [], 0
    while total < size:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            if not running():
                break
            continue
        try:
            data = os.read(fd, size - total)
        except BlockingIOError:
            continue
        if not data:  # no writer: not yet, or no more
            if not running():
                break
            time.sleep(0.01)
            continue
        parts.append(data)
        total += len(data)
    return b"".join(parts)


class QemuLogParser:
    """Reads QEMU's ``-d cpu`` dumps as they come (:meth:`feed`, then :meth:`finish`).

    QEMU prints each dump with the same fixed-width lines, so the values are read at fixed
    offsets (compiled).  A dump that does not fit is read line by line: QEMU leaves out a CSR
    its read function refuses (satp while the hart is in S-mode, HS or VS, with mstatus.TVM =
    1), so such a field keeps its last value and is reported as missing (not compared)."""

    def __init__(self) -> None:
        self.fields: list[str] | None = None
        self._buffer = bytearray()
        self._last: np.ndarray | None = None

    def _learn_layout(self, final: bool) -> bool:
        data = bytes(self._buffer[: 1 << 20])
        first = _RECORD_START.search(data)
        if first is None:
            return False
        start = first.start()
        self._marker = b"\n" + data[start : start + 9]
        second = data.find(self._marker, start + 1)
        if second < 0:
            if not final:
                return False
            second = len(data) - 1  # a single record
        self._length = length = second + 1 - start
        record = data[start : start + length]
        self.fields = fields = parse_qemu_log(record).fields
        self._columns = {name: i for i, name in enumerate(fields)}
        has_v = fields[0] == "V"
        offsets = [m.start(1) for m in _HEX_VALUE.finditer(record)]
        if len(offsets) != len(fields) - has_v:
            raise ReferenceError("unexpected QEMU dump layout")
        self._offsets = np.array(offsets, dtype=np.int64)
        v_offset = record.index(b"=") + 1 if has_v else -1
        while has_v and record[v_offset] == 32:
            v_offset += 1
        self._v_offset = v_offset
        self._header = np.frombuffer(record[:8], dtype=np.uint8).copy()
        del self._buffer[:start]
        return True

    def feed(self, data: bytes, final: bool = False) -> tuple[np.ndarray, dict[int, list[str]]]:
        """The dumps completed by ``data``: (rows, {row: fields the dump left out})."""
        self._buffer += data
        if self.fields is None and not self._learn_layout(final):
            return np.zeros((0, 0), dtype=np.uint64), {}
        assert self.fields is not None
        length, fields = self._length, self.fields
        rows = np.empty((len(self._buffer) // (length - 64) + 2, len(fields)), dtype=np.uint64)
        missing: dict[int, list[str]] = {}
        count = position = 0
        buf = np.frombuffer(self._buffer, dtype=np.uint8)
        try:
            while position < len(buf):
                done = _parse_fixed_records(
                    buf,
                    position,
                    length,
                    self._header,
                    self._offsets,
                    self._v_offset,
                    rows,
                    count,
                )
                count += done
                position += done * length
                if len(buf) - position < length and not final:
                    break  # the rest of a dump that has not come yet
                if position >= len(buf):
                    break
                # a dump with another layout: read it line by line
                end = self._buffer.find(self._marker, position + 1)
                if end < 0 and not final:
                    break
                end = len(buf) if end < 0 else end + 1
                values = _parse_record(bytes(self._buffer[position:end]), self._columns)
                if values is None:
                    position = end  # cut short: the end of the log
                    break
                if count == rows.shape[0]:
                    rows = np.concatenate([rows, np.empty_like(rows[: len(rows) // 4 + 16])])
                previous = rows[count - 1] if count else self._last
                rows[count] = previous if previous is not None else 0
                for column, value in values.items():
                    rows[count, column] = value
                absent = [name for name, c in self._columns.items() if c not in values]
                if absent:
                    missing[count] = absent
                count += 1
                position = end
        finally:
            del buf
        del self._buffer[:position]
        rows = rows[:count]
        if count:
            self._last = rows[-1].copy()
        return rows, missing

    def finish(self) -> tuple[np.ndarray, dict[int, list[str]]]:
        return self.feed(b"", final=True)


def read_qemu_log(path: str | Path) -> StateTrace | None:
    """Read a QEMU ``-d cpu`` log file of any size into a StateTrace (missing fields in its
    meta, see :func:`missing_fields`)."""
    parser = QemuLogParser()
    parts: list[np.ndarray] = []
    missing: list[str] = []
    count = 0

    def take(rows: np.ndarray, absent: dict[int, list[str]]) -> None:
        nonlocal count
        if len(rows):
            parts.append(rows)
        missing.extend(f"{count + r}:" + ",".join(names) for r, names in absent.items())
        count += len(rows)

    with open(path, "rb") as log:
        while data := log.read(LOG_READ):
            take(*parser.feed(data))
    take(*parser.finish())
    if parser.fields is None or not count:
        return None
    trace = StateTrace(parser.fields, np.concatenate(parts) if len(parts) > 1 else parts[0])
    if missing:
        trace.meta[MISSING_META] = " ".join(missing)
    return trace


def missing_fields(trace: StateTrace) -> dict[int, list[str]]:
    """Row -> the fields QEMU's dump of that state left out (not compared there)."""
    out: dict[int, list[str]] = {}
    for item in trace.meta.get(MISSING_META, "").split():
        row, _, names = item.partition(":")
        out[int(row)] = names.split(",")
    return out


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


def _replays(rows: np.ndarray, fields: list[str], fetch: Callable[[int], int | None]) -> list[int]:
    """The rows that are the first of two identical consecutive dumps and not a jump to
    itself (:func:`remove_io_replays`)."""
    if len(rows) < 2:
        return []
    pc = fields.index("pc")
    same = np.flatnonzero(np.all(rows[1:] == rows[:-1], axis=1))
    drop = []
    for k in same.tolist():
        address = int(rows[k, pc])
        bits = fetch(address)
        ins = decode(bits) if bits is not None else None
        registers = dict(zip(fields, (int(v) for v in rows[k]), strict=True))
        if ins is not None and _jumps_to_itself(ins, address, registers):
            continue
        drop.append(k)
    return drop


def _renumber(missing: dict[int, list[str]], drop: list[int]) -> dict[int, list[str]]:
    if not drop or not missing:
        return missing
    dropped, dropped_set = np.array(drop), set(drop)
    return {
        row - int(np.searchsorted(dropped, row)): names
        for row, names in missing.items()
        if row not in dropped_set
    }


def remove_io_replays(
    trace: StateTrace, fetch: Callable[[int], int | None]
) -> tuple[StateTrace, int]:
    """Drop the first of two identical consecutive dumps: with ``-icount`` QEMU abandons an
    instruction that touches a device in the middle of a block, or that starts when its
    instruction budget (at most 65,535, or up to the next timer deadline) runs out, and runs
    it again, printing the same state twice.  An instruction that jumps to itself may repeat
    a state for real: those are kept."""
    drop = _replays(trace.rows, trace.fields, fetch)
    if not drop:
        return trace, 0
    kept = np.delete(trace.rows, drop, axis=0)
    meta = dict(trace.meta)
    missing = _renumber(missing_fields(trace), drop)
    if missing:
        meta[MISSING_META] = " ".join(f"{r}:" + ",".join(n) for r, n in missing.items())
    return StateTrace(trace.fields, kept, meta, trace.exit_status), len(drop)


class ReferenceRows:
    """The reference states as the comparison reads them: row ``i`` (the state before
    instruction ``i``), blocks of consecutive rows, the fields a dump left out, and - once the
    rows have ended - the exit status.  :class:`QemuStream` produces them while QEMU runs."""

    def __init__(self, trace: StateTrace) -> None:
        self.fields = trace.fields
        self.meta = trace.meta
        self.exit_status = trace.exit_status
        self.truncated = False
        self.missing = missing_fields(trace)
        self._rows = trace.rows

    def available(self, index: int) -> bool:
        """Whether row ``index`` exists (waiting for it while the rows are still coming)."""
        return index < len(self._rows)

    def row(self, index: int) -> np.ndarray:
        return self._rows[index]

    def block(self, index: int) -> tuple[np.ndarray, int]:
        """(rows, base) with ``rows[index - base]`` row ``index``, and row ``index - 1``
        in it too; as many rows after it as have come."""
        return self._rows, 0

    def release(self, index: int) -> None:
        """The rows before ``index`` are no longer needed."""

    def count(self) -> int:
        return len(self._rows)


class QemuStream(ReferenceRows):
    """QEMU running with its ``-d cpu`` log in a FIFO: a thread parses the dumps as they
    come (and drops -icount's replayed ones), so the comparison runs beside QEMU and neither
    the log nor all of the rows are kept."""

    def __init__(
        self,
        elf: str | Path,
        *,
        hypervisor: bool,
        max_instructions: int = 2_000_000,
        timeout: float = 120.0,
    ) -> None:
        import threading

        if not qemu_available():
            raise ReferenceError(f"{QEMU_BINARY} not found (Debian: apt install qemu-system-misc)")
        self.elf = str(elf)
        self.fields = []
        self.exit_status = None
        self.truncated = False
        self.missing = {}
        self.replays = 0
        self.output = b""
        self.error: BaseException | None = None
        self._blocks: list[tuple[int, np.ndarray]] = []  # (index of the first row, rows)
        self._starts: list[int] = []  # the blocks' first indices
        self._count = 0
        self._done = False
        self._cond = threading.Condition()
        self._tmp = tempfile.TemporaryDirectory(prefix="rvh-qemu-")
        fifo = os.path.join(self._tmp.name, "cpu.log")
        os.mkfifo(fifo)
        self._out_path = os.path.join(self._tmp.name, "out")
        command = qemu_command(self.elf, fifo, hypervisor=hypervisor)
        self.meta = {
            "source": " ".join(command[:-2]),
            "elf": self.elf,
            "sha256": hashlib.sha256(Path(self.elf).read_bytes()).hexdigest(),
        }
        with open(self._out_path, "wb") as out:
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        self._max = max_instructions
        self._deadline = time.monotonic() + timeout
        self._thread = threading.Thread(target=self._produce, args=(fifo,), daemon=True)
        self._thread.start()
        self._watchdog = threading.Thread(target=self._watch, daemon=True)
        self._watchdog.start()

    # -- the producer ------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._done:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self._stop(truncated=True)
                return
            with self._cond:
                self._cond.wait(timeout=min(remaining, 0.5))

    def _stop(self, truncated: bool) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self.truncated = self.truncated or truncated

    def _produce(self, fifo: str) -> None:
        parser = QemuLogParser()
        held: np.ndarray | None = None  # the last row: a replay is known by the next one
        held_missing: list[str] | None = None
        fd = -1
        try:
            fetch = elf_fetcher(self.elf)
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            while True:
                data = _read_fifo(fd, LOG_READ, lambda: self._process.poll() is None)
                final = not data
                rows, missing = parser.finish() if final else parser.feed(data)
                if parser.fields is not None and not self.fields:
                    self.fields = parser.fields
                if held is not None and (len(rows) or final):
                    rows = np.concatenate([held[None, :], rows]) if len(rows) else held[None, :]
                    missing = {r + 1: n for r, n in missing.items()}
                    if held_missing:
                        missing[0] = held_missing
                    held = None
                if len(rows):
                    drop = _replays(rows, self.fields, fetch)
                    if drop:
                        rows = np.delete(rows, drop, axis=0)
                        missing = _renumber(missing, drop)
                        self.replays += len(drop)
                    if not final:  # a replay of the last row shows in the next block
                        held, held_missing = rows[-1].copy(), missing.pop(len(rows) - 1, None)
                        rows = rows[:-1]
                    self._publish(rows, missing)
                if final:
                    break
                if self._count > self._max:
                    self._stop(truncated=True)
        except BaseException as error:  # reported to the comparison
            self.error = error
            self._stop(truncated=True)
        finally:
            if fd >= 0:
                os.close(fd)
            code = self._process.wait()
            self.output = Path(self._out_path).read_bytes()
            with self._cond:
                self.exit_status = None if self.truncated else code
                self._done = True
                self._cond.notify_all()

    def _publish(self, rows: np.ndarray, missing: dict[int, list[str]]) -> None:
        if not len(rows):
            return
        with self._cond:
            start = self._count
            for first in range(0, len(rows), ROWS_PER_BLOCK):
                self._blocks.append((start + first, rows[first : first + ROWS_PER_BLOCK]))
                self._starts.append(start + first)
            self.missing.update({start + r: names for r, names in missing.items()})
            self._count += len(rows)
            self._cond.notify_all()

    # -- the consumer --------------------------------------------------------------------------
    def available(self, index: int) -> bool:
        with self._cond:
            while index >= self._count and not self._done:
                self._cond.wait()
            if self.error is not None:
                raise ReferenceError(f"reading QEMU's trace: {self.error}")
            if index >= self._count and self._count == 0:
                raise ReferenceError(
                    "QEMU wrote no trace: "
                    + Path(self._out_path).read_bytes().decode(errors="replace")[-500:]
                )
            return index < self._count

    def _find(self, index: int) -> int:
        k = bisect.bisect_right(self._starts, index) - 1
        if k < 0:
            raise IndexError(index)
        return k

    def row(self, index: int) -> np.ndarray:
        self.available(index)
        with self._cond:
            first, rows = self._blocks[self._find(index)]
        return rows[index - first]

    def block(self, index: int) -> tuple[np.ndarray, int]:
        self.available(index)
        with self._cond:
            k = self._find(index)
            first, rows = self._blocks[k]
            if index == first and index > 0:  # with the row before it, from the block before
                rows = np.concatenate([self._blocks[k - 1][1][-1:], rows])
                first -= 1
        return rows, first

    def release(self, index: int) -> None:
        with self._cond:
            drop = 0
            while drop + 1 < len(self._blocks) and self._blocks[drop + 1][0] < index:
                drop += 1
            if drop:
                del self._blocks[:drop]
                del self._starts[:drop]

    def count(self) -> int:
        return self._count

    def trace(self) -> StateTrace:
        """All the rows (waits for QEMU's end): a reference trace to save."""
        self.available(1 << 62)
        with self._cond:
            rows = np.concatenate([b for _, b in self._blocks]) if self._blocks else None
        if rows is None:
            raise ReferenceError("QEMU wrote no trace")
        meta = dict(self.meta)
        if self.missing:
            meta[MISSING_META] = " ".join(f"{r}:" + ",".join(n) for r, n in self.missing.items())
        return StateTrace(self.fields, rows, meta, self.exit_status)

    def close(self) -> None:
        self._stop(truncated=not self._done)
        self._thread.join()
        self._tmp.cleanup()

    def __enter__(self) -> QemuStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_qemu(
    elf: str | Path,
    *,
    hypervisor: bool = False,
    max_instructions: int = 2_000_000,
    timeout: float = 120.0,
) -> QemuRun:
    """Run ``elf`` on QEMU with single-stepped state dumps and read them all."""
    with QemuStream(
        elf, hypervisor=hypervisor, max_instructions=max_instructions, timeout=timeout
    ) as stream:
        trace = stream.trace()
    return QemuRun(trace, stream.output, stream.replays, stream.truncated)


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
FETCH_FAULTS = (1, 12, 20)  # instruction access, page and guest-page faults
QEMU_SWAPPED_CSRS = {
    0x105: 0x205,
    0x140: 0x240,
    0x141: 0x241,
    0x142: 0x242,
    0x143: 0x243,
    0x180: 0x280,
}
MSTATUS_MPV = 1 << 39
MSTATUS_GVA = 1 << 38
QEMU_SWAPPED_STATUS = (1 << 19) | (1 << 18) | (3 << 13) | (1 << 8) | (1 << 5) | (1 << 1) | (3 << 32)
MSTATUS_WITH_VSSTATUS = -3
STALE_WHILE_VIRTUAL = ("vsstatus", "vstvec", "vsepc", "vscause")


@nb.njit(cache=True, nogil=True)
def _snapshot(state, machine, tables, columns, sources, virtual_sources, out):
    """Fill ``out`` (uint64 as int64) with the fields QEMU prints: source >= 0 is a CSR
    number, -1 the pc, -2 V, -3 mstatus with vsstatus's fields, -100 - n register xn, -200 - n
    register fn."""
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
        elif source <= -200:
            out[columns[i]] = state[L.F + (-200 - source)]
        else:
            out[columns[i]] = state[L.X + (-100 - source)]


# The hart state an instruction can change (the first CSR_BASE slots, every CSR, f0-f31), saved
# before each instruction so that a deviation can take the instruction back (Stepper.rewind)
SAVED_SLOTS = np.array(
    list(range(L.CSR_BASE))
    + [L.CSR_BASE + n for n in sorted(CSR_BY_NUMBER)]
    + list(range(L.F, L.F + 32)),
    dtype=np.int64,
)

FAST_DONE = 0  # reached the end index
FAST_SLOW = 1  # the next instruction needs the Python step (wfi, interrupt, device replay...)
FAST_UNUSUAL = 2  # the instruction ran and needs its step finished in Python
FAST_MISMATCH = 3  # the instruction ran plainly and rvh's state differs from the reference


@nb.njit(cache=True, nogil=True)
def _fast_lockstep(
    state,
    machine,
    tables,
    memory,
    page_flags,
    tlb,
    decode_cache,
    rows,
    start,
    end,
    columns,
    sources,
    virtual_sources,
    stale,
    vs_at_entry,
    masks,
    compared,
    timer,
    watched,
    saved_slots,
    saved,
    before,
    after,
    pre,
):
    """The Stepper and the comparison for the plain instructions, compiled: the same kernel
    entry with a budget of one instruction, the same snapshot, compared with ``rows[i]`` under
    ``masks``.  Returns (index, FAST_*): at FAST_UNUSUAL and FAST_MISMATCH instruction
    ``index`` - 1 has run (``pre``: pc, privilege, time, instret, exceptions, interrupts, the
    kernel's exit, the pending interrupt before it); ``before``/``after`` hold the states
    around it (after FAST_MISMATCH)."""
    ticks = machine[L.M_NS_PER_TICK]
    one = np.int64(1)  # the budget, typed as Hart.run passes it
    for i in range(start, end):
        if state[L.WFI] != 0 or state[L.MMIO_STATE] != L.MMIO_NONE:
            return i, FAST_SLOW
        if machine[L.M_MTIMECMP] != timer[0]:
            return i, FAST_SLOW
        if select_interrupt(state, machine, state[L.TIME_NS]) >= 0:
            return i, FAST_SLOW
        before[:] = after
        exceptions = state[L.EXCEPTIONS]
        interrupts = state[L.INTERRUPTS]
        retired = state[L.INSTRET]
        pre[0] = state[L.PC]
        pre[1] = state[L.PRIV]
        pre[2] = state[L.TIME_NS]
        pre[3] = retired
        pre[4] = exceptions
        pre[5] = interrupts
        pre[7] = -1
        for k in range(saved_slots.shape[0]):
            saved[k] = state[saved_slots[k]]
        state[L.TRACE_CSR] = -1
        reason = run(state, machine, tables, memory, page_flags, tlb, decode_cache, one, None)
        pre[6] = reason
        if (
            reason != 0
            or state[L.EXCEPTIONS] != exceptions
            or state[L.INTERRUPTS] != interrupts
            or state[L.INSTRET] != retired + 1
            or state[L.WFI] != 0
        ):
            return i, FAST_UNUSUAL
        # a write to a CSR that a model of QEMU follows (Stepper.WATCHED_CSRS)
        if state[L.TRACE_CSR] >= 0:
            for k in range(watched.shape[0]):
                if state[L.TRACE_CSR] == watched[k]:
                    return i, FAST_UNUSUAL
        # a fetch fault QEMU would fold into this boundary (Stepper._fetch_faults)
        if state[L.VIRT] == 0 and (
            state[L.PRIV] == L.PRIV_M or (state[L.CSR_BASE + 0x180] >> 60) & 0xF == 0
        ):
            if host_offset(machine, state[L.PC], 2) < 0:
                return i, FAST_UNUSUAL
        # QemuTimer: nothing to do unless mtime reached the comparator before QEMU's deadline
        now = state[L.TIME_NS]
        if timer[1] >= 0 and now < timer[1]:
            if now // ticks + machine[L.M_MTIME_OFFSET] >= timer[0]:
                return i, FAST_UNUSUAL
        if timer[2] >= 0 and now >= timer[2]:  # QemuVsTimer's deadline
            return i, FAST_UNUSUAL
        _snapshot(state, machine, tables, columns, sources, virtual_sources, after)
        if stale.shape[0]:
            if state[L.VIRT]:
                for k in range(stale.shape[0]):
                    after[stale[k]] = vs_at_entry[k]
            else:
                for k in range(stale.shape[0]):
                    vs_at_entry[k] = after[stale[k]]
        differs = False
        for c in range(after.shape[0]):
            if not compared[c]:
                continue
            if masks[c] != -1 and after[c] == rows[i, c]:
                masks[c] = -1  # a field that agrees again in full is compared in full
            if (after[c] ^ rows[i, c]) & masks[c]:
                differs = True
        if differs:
            return i, FAST_MISMATCH
    return end, FAST_DONE


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


class QemuVsTimer:
    """QEMU 7.2's VS timer (Sstc): hip.VSTIP from vstimecmp is a latch (``vstime_irq``) set
    when vstimecmp is written with time + htimedelta >= vstimecmp, cleared when it is written
    with a later value, and set by a host timer armed at that write for the moment the
    comparison would hold with the htimedelta of the write.  Writing htimedelta or
    menvcfg/henvcfg.STCE does not re-evaluate it (h-extension.md D31, D8), and it shows in
    mip/hip whatever STCE says.  The spec: VSTIP is pending whenever time + htimedelta >=
    vstimecmp (and both STCE are set).  The deviation rules ask this model what QEMU shows."""

    def __init__(self, machine) -> None:
        self.machine = machine.machine
        self.latch = 0
        self.deadline = -1  # virtual ns at which QEMU's VS timer fires

    def written(self, state: np.ndarray) -> None:
        m = self.machine
        ticks = int(m[L.M_NS_PER_TICK])
        now = int(state[L.TIME_NS])
        mtime = now // ticks + int(m[L.M_MTIME_OFFSET])
        compare = int(state[L.CSR_BASE + 0x24D]) & MASK64
        guest_time = (mtime + int(state[L.CSR_BASE + 0x605])) & MASK64
        if compare <= guest_time:
            self.latch = 1
            return
        self.latch = 0
        self.deadline = now + (compare - guest_time) * ticks
        if self.deadline >= 1 << 62:
            self.deadline = -1

    def after_step(self, state: np.ndarray) -> None:
        if self.deadline >= 0 and int(state[L.TIME_NS]) >= self.deadline:
            self.latch = 1
            self.deadline = -1

    def vstip(self, state: np.ndarray) -> int:
        """mip.VSTIP as QEMU shows it: hvip.VSTIP or the latch."""
        return ((int(state[L.CSR_BASE + 0x645]) >> 6) | self.latch) & 1


class Stepper:
    """Drives a loaded single-hart :class:`~rvh.machine.Machine` one instruction at a time,
    serving its kernel exits (MMIO, wfi) the way ``Machine.run`` does."""

    WATCHED_CSRS = frozenset({0x24D})  # writes the QEMU models follow (vstimecmp)

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
            elif name.startswith("f") and name[1:].isdigit():
                source = -200 - int(name[1:])
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
        self.vstimer = QemuVsTimer(machine)
        self._saved = np.zeros(len(SAVED_SLOTS), dtype=np.int64)  # before the last instruction
        self._watched = np.array(sorted(self.WATCHED_CSRS), dtype=np.int64)
        # QEMU 7.2's M-mode with V=1 (D33): the HS copies it put aside, while it lasts
        self.qemu_m_virtual: dict[int, int] | None = None
        self._v_column = self.fields.index("V") if "V" in self.fields else -1

    def snapshot(self) -> np.ndarray:
        row = self._snapshot()
        # With V=1 QEMU's VS copies are the values they had when V became 1 (the live ones are
        # in the supervisor registers it prints instead, see VIRTUAL_VIEW)
        if self._stale.size:
            if self.state[L.VIRT]:
                row[self._stale] = self._vs_at_entry
            else:
                self._vs_at_entry = row[self._stale].copy()
        if self.qemu_m_virtual is not None and self._v_column >= 0:
            row[self._v_column] = 1
        return row

    # -- D33: QEMU's mret with MPP = M and MPV = 1 --------------------------------------------
    # QEMU 7.2 keeps one live copy of the supervisor registers and swaps the HS and VS values
    # whenever V changes (riscv_cpu_swap_hypervisor_regs): entering V=1 it puts the HS values
    # aside and makes the VS ones live, the VS registers keeping their old contents; leaving
    # V=1 it copies the live values into the VS registers and restores the HS ones.  Its mret
    # sets V = MPV even when it returns to M (spec: V stays 0), swapping as for a VS entry, and
    # the hart runs on in M-mode "with V=1": M-mode code reaches the VS values through the
    # supervisor CSRs.  rvh stays in M-mode with V=0 as the spec says; while QEMU is in that
    # state the stepper keeps rvh's supervisor registers as QEMU's live ones, its VS registers
    # as QEMU's VS registers and the HS values aside, so rvh's M-mode code sees what QEMU's
    # does, and undoes the swap when QEMU does (a trap, or an mret with MPV = 1).
    def enter_qemu_m_virtual(self) -> None:
        s = self.state
        saved = {hs: int(s[L.CSR_BASE + hs]) for hs in QEMU_SWAPPED_CSRS}
        mstatus = int(s[L.CSR_BASE + 0x300])
        saved[0x300] = mstatus & QEMU_SWAPPED_STATUS
        for hs, vs in QEMU_SWAPPED_CSRS.items():
            s[L.CSR_BASE + hs] = s[L.CSR_BASE + vs]
        vsstatus = int(s[L.CSR_BASE + 0x200]) & MASK64
        s[L.CSR_BASE + 0x300] = _signed((mstatus & ~QEMU_SWAPPED_STATUS) | vsstatus)
        self.qemu_m_virtual = saved
        self._address_space_changed()

    def leave_qemu_m_virtual(self, trapped: bool) -> None:
        """QEMU leaves V=1: after a trap (it swaps back and records MPV = 1), or after an mret
        that sets V = MPV = 0 (no swap: the live values stay the HS registers)."""
        saved, self.qemu_m_virtual = self.qemu_m_virtual, None
        if not trapped or saved is None:
            return
        s = self.state
        for hs, vs in QEMU_SWAPPED_CSRS.items():
            s[L.CSR_BASE + vs] = s[L.CSR_BASE + hs]
            s[L.CSR_BASE + hs] = _signed(saved[hs])
        mstatus = int(s[L.CSR_BASE + 0x300]) & MASK64
        s[L.CSR_BASE + 0x200] = _signed(mstatus & QEMU_SWAPPED_STATUS)
        mstatus = (mstatus & ~QEMU_SWAPPED_STATUS) | saved[0x300] | MSTATUS_MPV
        if int(s[L.CSR_BASE + 0x343]):  # QEMU: GVA = 1 for a trap from V=1 with mtval != 0
            mstatus |= MSTATUS_GVA
        s[L.CSR_BASE + 0x300] = _signed(mstatus)
        self._address_space_changed()

    def _address_space_changed(self) -> None:
        self.hart.flush_tlb()
        update_contexts(self.state)

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
        counters = (int(s[L.EXCEPTIONS]), int(s[L.INTERRUPTS]), self.pending_interrupt())
        info.privilege = int(s[L.PRIV])
        mstatus = int(s[L.CSR_BASE + 0x300])
        s[L.TRACE_CSR] = -1
        self._saved = s[SAVED_SLOTS]
        self._run_one(info)
        self._finish(info, *counters)
        if self.qemu_m_virtual is not None:
            if info.exception is not None or info.interrupt is not None:
                self.leave_qemu_m_virtual(trapped=True)
            elif (bits := self.fetch(info.pc)) == MRET and not mstatus & MSTATUS_MPV:
                self.leave_qemu_m_virtual(trapped=False)
            elif bits == MRET:
                # QEMU swaps back and sets V=1 again, with the HS values live: not followed
                self.leave_qemu_m_virtual(trapped=True)
        return info

    def _finish(self, info: StepInfo, exceptions: int, interrupts: int, pending: int) -> StepInfo:
        """What follows the instruction of a step: what it took, a fetch fault, the timer."""
        m, s = self.machine, self.state
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
        written = int(s[L.TRACE_CSR])
        if written in self.WATCHED_CSRS and info.exception is None:
            self.vstimer.written(s)
        self.timer.after_step(s)
        self._settle()
        self.timer.after_step(s)
        self.vstimer.after_step(s)
        return info

    def _run_one(self, info: StepInfo, first: Sequence[int] | None = None) -> None:
        """One kernel instruction (replaying it after a device access), with the time base
        kept as QEMU's -icount keeps it: an instruction that traps takes no time.  ``first``:
        the kernel already ran once (the fast loop): its exit and the counters before it."""
        m, hart, s = self.machine, self.hart, self.state
        if first is None:
            start = self._progress()
            time0, retired0, exceptions0 = (
                int(s[L.TIME_NS]),
                int(s[L.INSTRET]),
                int(s[L.EXCEPTIONS]),
            )
            reason = None
        else:
            reason, time0, retired0, exceptions0 = (int(v) for v in first)
            start = retired0 + exceptions0
        for _ in range(10_000):
            if reason is None:
                reason = hart.run(1)
            if reason != Exit.BUDGET:
                m._serve_exit(hart, Exit(reason))
            reason = None
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

    def fast_steps(
        self, rows: np.ndarray, start: int, end: int, masks: np.ndarray
    ) -> tuple[int, int, np.ndarray, np.ndarray, StepInfo | None]:
        """Run instructions ``start``.. in the compiled loop while they are plain (no trap,
        interrupt, device access, wfi or timer event) and agree with ``rows``; returns (the
        index reached, FAST_*, rvh's state before and after it, and for FAST_MISMATCH or
        FAST_UNUSUAL the step's StepInfo, completed)."""
        m, s = self.machine, self.state
        if self.qemu_m_virtual is not None:  # D33: the Python step follows QEMU's V=1 in M
            row = self.snapshot()
            return start, FAST_SLOW, row, row, None
        before = np.zeros(len(self.fields), dtype=np.int64)
        after = self.snapshot().view(np.int64).copy()
        pre = np.zeros(8, dtype=np.int64)
        timer = np.array(
            [self.timer.guest_value, self.timer.deadline, self.vstimer.deadline], dtype=np.int64
        )
        index, status = _fast_lockstep(
            s,
            m.machine,
            m.tables,
            self.hart.memory,
            self.hart.page_flags,
            self.hart.tlb,
            self.hart.decode_cache,
            rows.view(np.int64),
            start,
            end,
            self._columns,
            self._sources,
            self._virtual_sources,
            self._stale,
            self._vs_at_entry.view(np.int64),
            masks.view(np.int64),
            self.compared,
            timer,
            self._watched,
            SAVED_SLOTS,
            self._saved,
            before,
            after,
            pre,
        )
        self.steps += index - start
        info = None
        if status == FAST_MISMATCH:
            info = StepInfo(int(pre[0]) & MASK64, privilege=int(pre[1]))
            self.steps += 1
        elif status == FAST_UNUSUAL:
            info = StepInfo(int(pre[0]) & MASK64, privilege=int(pre[1]))
            self._run_one(info, first=(pre[6], pre[2], pre[3], pre[4]))
            self._finish(info, int(pre[4]), int(pre[5]), int(pre[7]))
            after = self.snapshot().view(np.int64)
        return index, status, before.view(np.uint64), after.view(np.uint64), info

    def _qemu_counts_trap(self, pc: int, cause: int | None = None) -> bool:
        """Whether QEMU 7.2's -icount clock counts an instruction that trapped: yes when the
        exception is raised by code generated at translation (ecall, ebreak, an encoding it
        cannot decode, an HLV/HLVX/HSV the mode may not use), no when a helper raises it at
        run time and rewinds to the instruction (CSR and privilege checks, memory faults)."""
        if cause is None:
            cause = int(self.state[L.LAST_CAUSE])
        if cause in (3, 8, 9, 10, 11):
            return True
        if cause in (2, 22):
            bits = self.fetch(pc)
            ins = decode(bits) if bits is not None else None
            return bits is not None and (ins is None or _is_hlv_hsv(ins))
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

    def adopt(self, values: dict, expected: np.ndarray | None = None) -> None:
        """Overwrite rvh's state with reference values (a known deviation): pc, V, xN or a
        CSR's storage; a :class:`Bits` takes those bits of ``expected`` (QEMU's state)."""
        s = self.state
        # first what replaces the instruction's outcome, then the values QEMU shows after it
        if QEMU_TRAPPED in values:
            self.retrap(*values[QEMU_TRAPPED])
        if QEMU_EXECUTED in values:
            self.reexecute()
        if QEMU_EXECUTED_WITH in values:
            self.execute_with(values[QEMU_EXECUTED_WITH])
        if QEMU_PTE_BITS in values:
            self.set_pte_bits(*values[QEMU_PTE_BITS])
        current = self.snapshot()
        for name, value in values.items():
            if name in (QEMU_TRAPPED, QEMU_EXECUTED, QEMU_EXECUTED_WITH, QEMU_PTE_BITS):
                continue
            if isinstance(value, Bits):  # QEMU's values of these bits, rvh's of the others
                assert expected is not None, "a Bits claim needs QEMU's state"
                column = self.fields.index(name)
                ours, theirs = int(current[column]), int(expected[column])
                value = (ours & ~value.bits) | (theirs & value.bits)
            value &= MASK64
            signed = value - (1 << 64) if value >> 63 else value
            if name == "pc":
                s[L.PC] = signed
            elif name == "V":
                s[L.VIRT] = signed
                update_contexts(s)
            elif name.startswith("x") and name[1:].isdigit():
                if name != "x0":
                    s[L.X + int(name[1:])] = signed
            elif name.startswith("f") and name[1:].isdigit():
                s[L.F + int(name[1:])] = signed
            elif name == "priv":
                s[L.PRIV] = signed
                update_contexts(s)
            elif name == "reservation":
                s[L.RESERVATION] = signed
            elif name == QEMU_M_VIRTUAL:
                self.enter_qemu_m_virtual()
            elif name == "retired":
                # the instruction rvh trapped on retired on QEMU: count it, and its time
                s[L.INSTRET] += 1
                s[L.EXCEPTIONS] -= 1
                if self._last_untimed:
                    s[L.TIME_NS] += 1
                    s[L.CYCLE] += 1
                    self.untimed_traps -= 1
            elif s[L.VIRT] and name in VIRTUAL_VIEW:
                s[L.CSR_BASE + VIRTUAL_VIEW[name]] = signed  # QEMU shows the VS register
            else:
                s[L.CSR_BASE + CSR_BY_NAME[name].number] = signed

    def fold_fetch_fault(self, qemu: dict[str, int]) -> int | None:
        """QEMU's state shows a fetch fault (access, page or guest-page fault) taken at rvh's
        pc: fetch there (one kernel step); if rvh faults too, that is the same boundary and the
        cause is returned, otherwise the step is taken back."""
        s = self.state
        pc = int(s[L.PC]) & MASK64
        shown = [("mcause", "mepc"), ("scause", "sepc")]
        # (QEMU reports a guest-page fault of the fetch's implicit PTE read as 21, D22)
        if not any(qemu.get(c) in (*FETCH_FAULTS, 21) and qemu.get(e) == pc for c, e in shown):
            return None
        previous = self._saved  # what rewinds the instruction itself
        exceptions, retired = int(s[L.EXCEPTIONS]), int(s[L.INSTRET])
        self._saved = s[SAVED_SLOTS]
        self._run_one(StepInfo(pc))
        cause = int(s[L.LAST_CAUSE])
        if int(s[L.EXCEPTIONS]) == exceptions + 1 and int(s[L.INSTRET]) == retired:
            if cause in FETCH_FAULTS:
                self._saved = previous
                return cause
        self.rewind()
        self._saved = previous
        return None

    def execute_with(self, changes: Sequence[tuple[int, int]]) -> None:
        """QEMU executed the last instruction under a rule that differs from the spec's in one
        control bit (SUM...): rvh's outcome is taken back and the instruction run again with
        those CSR ``bits`` set, which they are not afterwards."""
        s = self.state
        self.rewind()
        saved = {number: int(s[L.CSR_BASE + number]) for number, _ in changes}
        for number, bits in changes:
            s[L.CSR_BASE + number] |= bits
        self._address_space_changed()
        self._run_one(StepInfo(int(s[L.PC]) & MASK64))
        for number, bits in changes:
            s[L.CSR_BASE + number] = (int(s[L.CSR_BASE + number]) & ~bits) | (saved[number] & bits)
        self._address_space_changed()

    def g_stage(self, gpa: int) -> tuple[int, int | None] | None:
        """Guest physical address ``gpa`` through rvh's G-stage tables (hgatp; Bare, Sv39x4,
        Sv48x4): (host physical address, leaf PTE or None for Bare), or None (not mapped)."""
        hgatp = self.csr(0x680)
        mode = hgatp >> 60
        if mode == 0:
            return gpa, None
        levels = 3 if mode == 8 else 4
        base = (hgatp & ((1 << 44) - 1)) << 12
        bus = self.machine.bus
        for level in range(levels - 1, -1, -1):
            width = 9 + (2 if level == levels - 1 else 0)
            index = (gpa >> (12 + 9 * level)) & ((1 << width) - 1)
            try:
                pte = bus.read_u64(base + index * 8)
            except Exception:
                return None
            if not pte & 1:
                return None
            ppn = (pte >> 10) & ((1 << 44) - 1)
            if pte & 0xE:
                offset = (1 << (12 + 9 * level)) - 1
                return ((ppn << 12) & ~offset) | (gpa & offset), pte
            base = ppn << 12
        return None

    def guest_physical(self, gpa: int) -> int | None:
        """The host physical address of a guest physical one (G-stage), or None."""
        found = self.g_stage(gpa)
        return None if found is None else found[0]

    def two_stage(self, va: int) -> tuple[int | None, int | None]:
        """The leaf PTEs of guest virtual address ``va`` in rvh's VS-stage tables (vsatp, its
        tables reached through the G-stage) and G-stage tables: (VS leaf, G leaf), each None
        where the stage is Bare or does not map the address."""
        vsatp = self.csr(0x280)
        leaf = None
        gpa = va
        if vsatp >> 60 in (8, 9):
            levels = 3 if vsatp >> 60 == 8 else 4
            table = (vsatp & ((1 << 44) - 1)) << 12
            for level in range(levels - 1, -1, -1):
                address = self.guest_physical(table + ((va >> (12 + 9 * level)) & 0x1FF) * 8)
                if address is None:
                    return None, None
                pte = self.machine.bus.read_u64(address)
                if not pte & 1:
                    return None, None
                ppn = (pte >> 10) & ((1 << 44) - 1)
                if pte & 0xE:
                    leaf = pte
                    offset = (1 << (12 + 9 * level)) - 1
                    gpa = ((ppn << 12) & ~offset) | (va & offset)
                    break
                table = ppn << 12
            else:
                return None, None
        found = self.g_stage(gpa)
        return leaf, (None if found is None else found[1])

    def set_pte_bits(self, gpa: int, bits: int) -> None:
        """Set A/D ``bits`` in the VS-stage PTE at guest physical address ``gpa``, as QEMU's
        page walk did (D19)."""
        address = self.guest_physical(gpa)
        if address is not None:
            bus = self.machine.bus
            bus.write_u64(address, bus.read_u64(address) | bits)
            self.hart.flush_tlb()

    def rewind(self) -> None:
        """Take the last instruction back: the hart state as it was before it (memory is not
        restored: the deviations that rewind are for instructions that store nothing)."""
        self.state[SAVED_SLOTS] = self._saved
        self._last_untimed = 0
        self.hart.flush_tlb()
        update_contexts(self.state)

    def retrap(self, cause: int, tval: int, tval2: int = 0, gva: int = 0) -> None:
        """QEMU trapped on the last instruction (with ``cause``, mtval/stval ``tval``, and for
        a guest-page fault mtval2/htval ``tval2`` and GVA) where rvh did something else: rvh
        takes that trap instead, as its own trap entry does (delegation included), with
        mtinst/htinst 0 as QEMU writes it (D18)."""
        s = self.state
        pc = int(self._saved[L.PC])
        self.rewind()
        s[L.TRAP_GVA] = gva
        s[L.TRAP_TVAL2] = _signed(tval2)
        s[L.TRAP_TINST] = 0
        s[L.PC] = take_trap(s, self.machine.machine, cause, False, _signed(tval), pc)
        s[L.INSTRET] += 1  # take_trap un-counts the instruction, which the rewind did already
        if self._qemu_counts_trap(pc, cause):
            s[L.TIME_NS] += 1
            s[L.CYCLE] += 1

    def reexecute(self) -> None:
        """QEMU executed the last instruction where rvh trapped: rvh's trap is taken back and
        the instruction counted as retired; the deviation supplies its results (pc, rd...)."""
        s = self.state
        self.rewind()
        s[L.INSTRET] += 1
        s[L.TIME_NS] += 1
        s[L.CYCLE] += 1

    def csr(self, number: int) -> int:
        """A CSR's storage (unsigned), for the deviation rules."""
        return int(self.state[L.CSR_BASE + number]) & MASK64

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
    csr: Callable[[int], int] = lambda number: 0  # rvh's CSR value (raw storage) after it
    qemu_vstip: int = -1  # mip.VSTIP as QEMU shows it (QemuVsTimer), -1 unknown
    # the leaf PTEs of a guest virtual address in rvh's VS-stage and G-stage tables
    pages: Callable[[int], tuple[int | None, int | None]] = lambda va: (None, None)

    @property
    def insn(self) -> Instruction:
        """The instruction, for rules about one: a step without one (an interrupt, a fetch
        fault) matches none of them (``Deviation.match`` turns the exception into no match)."""
        if self.instruction is None:
            raise _NoInstruction
        return self.instruction


class _NoInstruction(Exception):
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


def _merge_claims(old: Claim, new: Claim) -> Claim | bool:
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
        except _NoInstruction:
            return None


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


def _rule_sc_without_reservation(ctx: StepContext) -> dict[str, Claim] | None:
    # An SC whose address is not reserved may fail without accessing memory, but a misaligned
    # one must trap (unprivileged spec 8.2); rvh checks the access (alignment, then memory and
    # translation) before the reservation.  QEMU 7.2 first compares the address with its
    # reservation and, when they differ, fails the SC (rd = 1) without a trap.
    ins = ctx.instruction
    if ins is None or not ins.base_name.startswith("sc."):
        return None
    if ctx.info.exception not in (6, 7, 13, 15, 21, 23):
        return None
    if ctx.expected["pc"] != ctx.pc + ins.length:
        return None
    rd = f"x{ins.rd}"
    if ins.rd != 0 and ctx.expected[rd] != 1:
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_EXECUTED] = 1
    claim["pc"] = ctx.expected["pc"]
    if ins.rd:
        claim[rd] = 1
    claim["reservation"] = -1  # an SC, failed or not, invalidates the reservation (8.2)
    return claim


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


def _rule_fp_flags_leave_fs_clean(ctx: StepContext) -> dict[str, int] | None:
    # an F/D instruction that writes an x register (compare, classify, convert to integer) and
    # raised flags: fcsr changed, so rvh sets FS to Dirty (and SD); QEMU 7.2 leaves FS alone
    ins = ctx.instruction
    if ins is None or not ins.is_float or ins.base_name not in FLOAT_TO_INTEGER:
        return None
    if ctx.differing != {"mstatus"} or ctx.after.get("V", 0):
        return None
    dirty = MSTATUS_FS_DIRTY
    before, after, expected = ctx.before["mstatus"], ctx.after["mstatus"], ctx.expected["mstatus"]
    if before & dirty == dirty or expected != before:
        return None
    if (after ^ expected) & ~(MSTATUS_FS_DIRTY | MASK64_SD) & MASK64:
        return None
    return {"mstatus": expected}


def _rule_reset_mideleg(ctx: StepContext) -> dict[str, int | None] | None:
    # privileged 8.4.2 (H): mideleg bits 10, 6, 2 (and 12 with GEILEN > 0) are read-only one.
    # QEMU 7.2 shows them from its second dump on, but 0 in the reset dump.
    if ctx.index != 0 or "mideleg" not in ctx.differing or ctx.expected["mideleg"] != 0:
        return None
    return {"mideleg": None}  # accepted at this boundary only


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
        "fp-flags-leave-fs",
        "privileged spec 3.1.6.6: FS becomes Dirty when the FP state (f registers or fcsr) "
        "changes, fflags included",
        "QEMU 7.2 leaves mstatus.FS (and SD) as they were when an F/D instruction that writes "
        "an x register (feq/flt/fle, fclass, fcvt to an integer) only accrues flags",
        _rule_fp_flags_leave_fs_clean,
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
        "access-fault) exception; an SC without a reservation may fail without accessing "
        "memory, and rvh checks the access (alignment, memory, translation) first",
        "QEMU 7.2 fails an SC whose address is not the reserved one (rd = 1) without checking "
        "alignment, memory or translation, so without a trap",
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
        "QEMU 7.2 keeps bit 0 of a value written to mepc/sepc (and vsepc)",
        _rule_epc_bit0,
        "D5",
    ),
    Deviation(
        "reset-mideleg",
        "privileged spec 8.4.2 (H): mideleg bits 10, 6, 2 and, with GEILEN > 0, 12 are "
        "read-only one",
        "QEMU 7.2's first dump (at reset) shows mideleg = 0, later ones 0x1444",
        _rule_reset_mideleg,
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
        "D2, D32",
    ),
    Deviation(
        "mstatus-uxl",
        "privileged spec 3.1.6.2: UXL is WARL and rvh's U-mode is RV64 only (UXL read-only 2)",
        "QEMU 7.2 lets a write change mstatus.UXL",
        _rule_mstatus_uxl,
    ),
]


# ---- the H extension: QEMU 7.2's departures (guests/hext/README.md, docs/h-extension.md) ------
# Each rule below recognizes one departure of QEMU 7.2 from the ratified H extension (the
# D-numbers of guests/hext/README.md; D33-D35 are new here, docs/testing.md) in the
# instruction, rvh's outcome and QEMU's, and adopts QEMU's outcome: the values it shows, or
# (when the control flow differs) QEMU's trap instead of rvh's execution or the reverse.
MSTATUS_MPP = 3 << 11
MSTATUS_MPRV = 1 << 17
MSTATUS_SUM = 1 << 18
MSTATUS_MXR = 1 << 19
MSTATUS_TVM = 1 << 20
MSTATUS_TW = 1 << 21
MSTATUS_TSR = 1 << 22
HSTATUS_GVA = 1 << 6
HSTATUS_SPVP = 1 << 8
HSTATUS_VTVM = 1 << 20
# hstatus: VSBE (read-only zero in rvh) GVA SPV SPVP HU VGEIN VTVM VTW VTSR VSXL are fields;
# every other bit is WPRI (privileged 8.2.1)
HSTATUS_FIELDS = (1 << 5) | (0xF << 6) | (0x3F << 12) | (7 << 20) | (3 << 32)
HSTATUS_WPRI = ~HSTATUS_FIELDS & MASK64
VSSTATUS_WRITABLE = 0xC0722  # SIE SPIE VS SPP SUM MXR: the vsstatus fields rvh lets be written
VSSTATUS_RAW = ~VSSTATUS_WRITABLE & MASK64
ENVCFG_STCE = 1 << 63
MIP_VSTIP = 1 << 6
INTERRUPT_BIT = 1 << 63
PTE_R, PTE_X, PTE_U, PTE_A, PTE_D = 1 << 1, 1 << 3, 1 << 4, 1 << 6, 1 << 7
GUEST_PAGE_FAULTS = (20, 21, 23)
IMPLICIT_ACCESS_TINST = (0x3000, 0x3020)  # 8.6.3: pseudoinstructions of VS-stage PTE accesses
ATP_MODES_RVH = (0, 8, 9)  # satp/vsatp: Bare, Sv39, Sv48; hgatp: Bare, Sv39x4, Sv48x4
ATP_SV57 = 10  # Sv57 / Sv57x4, which QEMU 7.2 implements and rvh does not
# what QEMU's dump shows through the guest's registers while V=1 (VIRTUAL_VIEW, mstatus)
V_VIEW_FIELDS = {*VIRTUAL_VIEW, "mstatus", *STALE_WHILE_VIRTUAL}

Rule = Callable[[StepContext], dict[str, Claim] | None]


# -- what an instruction is, where it ran ---------------------------------------------------
def _is_hlv_hsv(ins: Instruction | None) -> bool:
    return ins is not None and ins.base_name.startswith(("hlv", "hsv"))


def _is_hlvx(ctx: StepContext) -> bool:
    return ctx.insn.base_name.startswith("hlvx")


def _in_vs(ctx: StepContext) -> bool:
    return bool(ctx.before.get("V")) and ctx.info.privilege == 1


def _in_vu(ctx: StepContext) -> bool:
    return bool(ctx.before.get("V")) and ctx.info.privilege == 0


def _mprv_virtual(ctx: StepContext) -> bool:
    """A load/store in M-mode with MPRV = 1 and MPV = 1: made as in VS/VU-mode (8.4.1)."""
    status = ctx.before["mstatus"]
    return (
        ctx.info.privilege == 3
        and not ctx.before.get("V")
        and bool(status & MSTATUS_MPRV)
        and bool(status & MSTATUS_MPV)
        and (status >> 11) & 3 != 3
        and ctx.insn.is_memory_access
    )


def _virtual_load(ctx: StepContext) -> bool:
    """A load through two-stage translation: in VS/VU-mode, or an HLV/HLVX."""
    ins = ctx.insn
    return ins.is_load and (bool(ctx.before.get("V")) or ins.base_name.startswith("hlv"))


def _address(ctx: StepContext) -> int:
    """The virtual address a load/store/HLV/HSV accesses (rs1 + the offset)."""
    ins = ctx.insn
    offset = 0 if _is_hlv_hsv(ins) or _is_amo_or_sc(ins) else ins.imm
    return (ctx.before[f"x{ins.rs1}"] + offset) & MASK64


def _execute_only(pte: int | None) -> bool:
    return pte is not None and pte & (PTE_R | PTE_X) == PTE_X


def _not_executable(pte: int | None) -> bool:
    return pte is not None and not pte & PTE_X


def _stages(
    ctx: StepContext, test: Callable[[int | None], bool], *, vs: bool = True, g: bool = True
) -> bool:
    """Whether the accessed page passes ``test`` in the VS stage or the G-stage."""
    vs_leaf, g_leaf = ctx.pages(_address(ctx))
    return (vs and test(vs_leaf)) or (g and test(g_leaf))


def _trap_field(ctx: StepContext) -> str | None:
    """The cause field that differs after a trap: mcause, or scause (HS, or VS through the
    V=1 view)."""
    for name in ("mcause", "scause"):
        if name in ctx.differing:
            return name
    return None


def _qemu_trap(ctx: StepContext) -> tuple[str, int] | None:
    """The trap QEMU took at this instruction, as its dump shows it: (the level's cause field,
    the cause), or None.  It went to M (mepc = the pc, pc = mtvec) or to HS (sepc, stvec)."""
    qemu = ctx.expected
    if qemu["mepc"] == ctx.pc and qemu["pc"] == qemu["mtvec"] & ~3 & MASK64:
        return "mcause", qemu["mcause"]
    if not qemu["V"] and qemu["sepc"] == ctx.pc and qemu["pc"] == qemu["stvec"] & ~3 & MASK64:
        return "scause", qemu["scause"]
    return None


def _written_value(ins: Instruction, ctx: StepContext, old: int) -> int:
    """The value a CSR instruction writes, given the CSR's value before it."""
    source = ins.imm & 31 if ins.base_name.endswith("i") else ctx.before[f"x{ins.rs1}"]
    if ins.base_name.startswith("csrrw"):
        return source
    if ins.base_name.startswith("csrrs"):
        return old | source
    return old & ~source & MASK64


def _csr_results(ctx: StepContext) -> set[str]:
    """What a CSR instruction writes that QEMU's dump shows: rd, and satp (a view of vsatp
    with V=1) when it writes it."""
    ins = ctx.insn
    out = {f"x{ins.rd}"}
    if ins.csr == 0x180 and _csr_writes(ins):
        out.add("satp")
    return out


def _load_results(ctx: StepContext) -> set[str]:
    return {f"x{ctx.insn.rd}"}


# -- kinds of rule ------------------------------------------------------------------------------
def _bits_rule(csrs: Sequence[int], bits: int, *, field: str | None = None) -> Rule:
    """QEMU keeps ``bits`` of a CSR that rvh (the spec) keeps zero: at a write of one of
    ``csrs`` the printed ``field`` differs in some of those bits, QEMU's set and rvh's clear
    (left out until they agree again); at a read the destination register does (QEMU's bits
    taken)."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        ins = ctx.instruction
        if ins is None or not ins.is_csr or ins.csr not in csrs:
            return None
        claim: dict[str, Claim] = {}
        if field and _csr_writes(ins) and field in ctx.differing:
            extra = (ctx.after[field] ^ ctx.expected[field]) & bits
            if extra and ctx.after[field] & extra == 0:
                claim[field] = Ignore(extra)
        rd = f"x{ins.rd}"
        if ins.rd != 0 and rd in ctx.differing:
            extra = (ctx.after[rd] ^ ctx.expected[rd]) & bits
            if extra and ctx.after[rd] & extra == 0:
                claim[rd] = Bits(extra)
        return claim or None

    return rule


def _cause_rule(applies: Callable[[StepContext], bool], ours: int, theirs: int) -> Rule:
    """Both trapped, rvh with cause ``ours`` and QEMU with ``theirs``, and nothing else
    differs: rvh takes QEMU's cause."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        cause = ctx.info.fetch_fault if ctx.info.fetch_fault is not None else ctx.info.exception
        if ctx.instruction is None or cause != ours or not applies(ctx):
            return None
        name = _trap_field(ctx)
        if name is None or ctx.differing != {name}:
            return None
        if ctx.after[name] != ours or ctx.expected[name] != theirs:
            return None
        return {name: theirs}

    return rule


def _retrap_rule(applies: Callable[[StepContext], bool], ours: int, theirs: int) -> Rule:
    """rvh took exception ``ours`` where QEMU took ``theirs``: rvh takes QEMU's trap instead
    (its own trap entry, delegation included), and everything QEMU shows must then agree."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        if ctx.instruction is None or ctx.info.exception != ours or not applies(ctx):
            return None
        trap = _qemu_trap(ctx)
        if trap is None or trap[1] != theirs:
            return None
        claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
        claim[QEMU_TRAPPED] = (theirs, ctx.instruction.bits)
        return claim

    return rule


def _qemu_trapped_rule(
    applies: Callable[[StepContext], bool], causes: Sequence[int], *, address: bool = True
) -> Rule:
    """rvh executed an instruction that QEMU trapped on (with one of ``causes``, into M or
    HS): rvh takes QEMU's trap instead, with its tval (and for a memory access through two
    stages, its mtval2/htval and GVA = 1); everything QEMU shows must then agree."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        ins = ctx.instruction
        if ins is None or ctx.info.exception is not None or ctx.info.interrupt is not None:
            return None
        if not applies(ctx):
            return None
        trap = _qemu_trap(ctx)
        if trap is None or trap[1] not in causes:
            return None
        m = trap[0] == "mcause"
        if address:
            tval = ctx.expected["mtval" if m else "stval"]
            tval2 = ctx.expected["mtval2" if m else "htval"]
            outcome: tuple[int, ...] = (trap[1], tval, tval2, 1)
        else:
            outcome = (trap[1], ins.bits)
        claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
        claim[QEMU_TRAPPED] = outcome
        return claim

    return rule


def _qemu_executed_rule(
    applies: Callable[[StepContext], bool],
    ours: Sequence[int],
    results: Callable[[StepContext], set[str]],
) -> Rule:
    """rvh took one of exceptions ``ours`` on an instruction that QEMU executed: rvh's trap
    is taken back, the instruction counted as retired, and QEMU's ``results`` (the fields it
    wrote: rd, a CSR) taken over; everything else QEMU shows must then agree."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        ins = ctx.instruction
        if ins is None or ctx.info.exception not in ours or not applies(ctx):
            return None
        if ctx.expected["pc"] != (ctx.pc + ins.length) & MASK64:
            return None
        claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
        claim[QEMU_EXECUTED] = 1
        for name in results(ctx) | {"pc"}:
            if name != "x0":
                claim[name] = ctx.expected[name]
        return claim

    return rule


# -- the rules, by D-number ---------------------------------------------------------------------
def _rule_vsstatus_raw(ctx: StepContext) -> dict[str, Claim] | None:
    # D4. vsstatus has sstatus's layout (privileged 8.2.11): WPRI bits zero, UXL WARL (rvh:
    # RV64 only, 2).  QEMU 7.2 resets it with bit 35 set (mstatus's SXL) and stores what is
    # written as it is (UXL kept when 0 is written): the bits outside the writable fields are
    # left out until the two agree again, and a read takes QEMU's.
    if ctx.index == 0:
        if ctx.expected["vsstatus"] == ctx.after["vsstatus"] | 1 << 35:
            return {"vsstatus": Ignore(1 << 35)}
        return None
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr != 0x200:
        return None
    claim: dict[str, Claim] = {}
    if _csr_writes(ins) and "vsstatus" in ctx.differing:
        extra = ctx.after["vsstatus"] ^ ctx.expected["vsstatus"]
        if extra & ~VSSTATUS_RAW == 0:
            claim["vsstatus"] = Ignore(extra)
    rd = f"x{ins.rd}"
    if ins.rd != 0 and rd in ctx.differing:
        extra = ctx.after[rd] ^ ctx.expected[rd]
        if extra & ~VSSTATUS_RAW == 0:
            claim[rd] = Bits(extra)
    return claim or None


def _rule_atp_stored_raw(ctx: StepContext) -> dict[str, Claim] | None:
    # D3. hgatp: PPN[1:0] read zero, bits 59:58 zero, a reserved MODE is WARL; vsatp: a write
    # of a reserved MODE is ignored.  QEMU 7.2 stores hgatp as written, and vsatp's reserved
    # MODE.  Neither is in its dump: reads are compared.
    read = _atp_read(ctx)
    if read is None:
        return None
    rd, ours, theirs = read
    mode = theirs >> 60
    if mode in ATP_MODES_RVH:
        extra = ours ^ theirs
        if ctx.insn.csr == 0x680 and extra & ~(3 | 3 << 58) == 0 and ours & extra == 0:
            return {rd: theirs}
        return None
    if mode != ATP_SV57:
        return {rd: theirs}  # a reserved MODE: rvh ignored the write
    return None


def _atp_read(ctx: StepContext) -> tuple[str, int, int] | None:
    """A read of hgatp or vsatp whose value differs: (rd, rvh's value, QEMU's)."""
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in (0x680, 0x280) or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd not in ctx.differing:
        return None
    return rd, ctx.after[rd], ctx.expected[rd]


def _rule_atp_sv57(ctx: StepContext) -> dict[str, Claim] | None:
    # not a departure: QEMU 7.2 implements Sv57/Sv57x4, rvh does not (both legal)
    read = _atp_read(ctx)
    if read is not None and read[2] >> 60 == ATP_SV57 and read[1] >> 60 != ATP_SV57:
        return {read[0]: read[2]}
    return None


def _rule_vstvec_reserved_mode(ctx: StepContext) -> dict[str, Claim] | None:
    # D5. vstvec MODE 2 and 3 are reserved (8.2.13: vstvec holds what stvec can hold); rvh
    # ignores such a write, as QEMU 7.2 does for mtvec and stvec, but QEMU stores it in vstvec
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr != 0x205 or not _csr_writes(ins):
        return None
    if "vstvec" not in ctx.differing or ctx.after["vstvec"] != ctx.before["vstvec"]:
        return None
    value = _written_value(ins, ctx, ctx.before["vstvec"])
    if value & 3 >= 2 and ctx.expected["vstvec"] == value:
        return {"vstvec": value}
    return None


def _rule_vsip_masked(ctx: StepContext) -> dict[str, Claim] | None:
    # D6. vsip shows hip's VSEIP/VSTIP/VSSIP (as SEIP/STIP/SSIP) where hideleg delegates them;
    # QEMU 7.2's vsip shows SSIP only, and in VS-mode its sip/sie also drop the bits that
    # mideleg does not delegate
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.rd == 0:
        return None
    if ins.csr == 0x244:
        bits = 0x220
    elif ins.csr in (0x144, 0x104) and ctx.before["V"]:
        bits = 0x222
    else:
        return None
    rd = f"x{ins.rd}"
    if rd not in ctx.differing:
        return None
    extra = ctx.after[rd] ^ ctx.expected[rd]
    if extra & ~bits == 0 and ctx.expected[rd] & extra == 0:
        return {rd: ctx.expected[rd]}
    return None


def _rule_henvcfg_stce(ctx: StepContext) -> dict[str, Claim] | None:
    # D8. Sstc: henvcfg.STCE is read-only zero while menvcfg.STCE = 0; QEMU 7.2 lets it be
    # written (henvcfg is not in its dump: reads are compared)
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr != 0x60A or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd not in ctx.differing or ctx.csr(0x30A) & ENVCFG_STCE:
        return None
    if ctx.expected[rd] & ENVCFG_STCE and not ctx.after[rd] & ENVCFG_STCE:
        return {rd: Bits(ENVCFG_STCE)}
    return None


def _vstip_rule(sstc_on: bool) -> Rule:
    """D31 / D8.  mip.VSTIP (the dump's mip, or a read of mip or hip) differs, and QEMU's
    value is what its VS-timer latch gives (:class:`QemuVsTimer`): with both STCE set that is
    D31 (htimedelta not followed), otherwise D8 (the latch shows although STCE is clear)."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        if ctx.qemu_vstip < 0:
            return None
        stce = ctx.csr(0x30A) >> 63 and ctx.csr(0x60A) >> 63
        if bool(stce) != sstc_on:
            return None
        claim: dict[str, Claim] = {}
        if "mip" in ctx.differing and (ctx.after["mip"] ^ ctx.expected["mip"]) & MIP_VSTIP:
            if (ctx.expected["mip"] >> 6) & 1 == ctx.qemu_vstip:
                claim["mip"] = Ignore(MIP_VSTIP)
        ins = ctx.instruction
        if ins is not None and ins.is_csr and ins.csr in (0x344, 0x644) and ins.rd:
            rd = f"x{ins.rd}"
            if rd in ctx.differing and (ctx.after[rd] ^ ctx.expected[rd]) & MIP_VSTIP:
                if (ctx.expected[rd] >> 6) & 1 == ctx.qemu_vstip:
                    claim[rd] = Bits(MIP_VSTIP)
        return claim or None

    return rule


def _rule_vs_trap_clears_gva(ctx: StepContext) -> dict[str, Claim] | None:
    # D10. 8.6.2: a trap into VS-mode leaves hstatus alone; QEMU 7.2 writes hstatus.GVA = 0
    if ctx.info.exception is None and ctx.info.interrupt is None:
        return None
    if not (ctx.before["V"] and ctx.after["V"]) or "hstatus" not in ctx.differing:
        return None
    if ctx.after["hstatus"] ^ ctx.expected["hstatus"] != HSTATUS_GVA:
        return None
    if ctx.expected["hstatus"] & HSTATUS_GVA:
        return None
    return {"hstatus": ctx.expected["hstatus"]}


def _rule_vs_exception_cause_shifted(ctx: StepContext) -> dict[str, Claim] | None:
    # D11. 8.2.2: only the VS-level interrupt codes 2/6/10 are translated (to 1/5/9) for
    # VS-mode; QEMU 7.2 translates exception codes 2 and 6 too (vscause, which its dump shows
    # as scause while V=1)
    cause = ctx.info.exception
    if cause not in (2, 6) or ctx.info.interrupt is not None:
        return None
    if not (ctx.before["V"] and ctx.after["V"]) or ctx.differing != {"scause"}:
        return None
    if ctx.after["scause"] == cause and ctx.expected["scause"] == cause - 1:
        return {"scause": cause - 1}
    return None


def _rule_hlv_trap_tval(ctx: StepContext) -> dict[str, Claim] | None:
    # D12. 8.6.1: the virtual-instruction (or illegal-instruction) trap of an HLV/HLVX/HSV
    # writes the instruction's bits to mtval/stval as for any other instruction; QEMU 7.2
    # writes the bits of an earlier instruction (its last decoded one)
    if not _is_hlv_hsv(ctx.instruction) or ctx.info.exception not in (2, 22):
        return None
    for name in ("mtval", "stval"):
        if name in ctx.differing and ctx.after[name] == ctx.insn.bits:
            return {name: ctx.expected[name]}
    return None


def _rule_tsr_tvm_in_vs(ctx: StepContext) -> dict[str, Claim] | None:
    # D14. 8.4.1: mstatus.TSR and TVM affect only HS-mode (in VS-mode hstatus.VTSR/VTVM do
    # their job).  QEMU 7.2 applies them in VS-mode too: SRET (TSR), SFENCE.VMA and satp
    # accesses (TVM) raise an illegal-instruction exception where rvh executes them.
    ins = ctx.instruction
    if ins is None or ctx.info.exception is not None or ctx.info.interrupt is not None:
        return None
    if not _in_vs(ctx):
        return None
    status = ctx.before["mstatus"]
    if ins.base_name == "sret":
        trapping = status & MSTATUS_TSR
    elif ins.base_name == "sfence.vma" or (ins.is_csr and ins.csr == 0x180):
        trapping = status & MSTATUS_TVM
    else:
        return None
    if not trapping or _qemu_trap(ctx) != ("mcause", 2):
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_TRAPPED] = (2, ins.bits)
    return claim


def _vu_supervisor_access(ctx: StepContext) -> bool:
    ins = ctx.insn
    if not _in_vu(ctx):
        return False
    if ins.is_csr:
        return (ins.csr >> 8) & 3 == 1  # a supervisor CSR (stimecmp included)
    return ins.base_name in ("sret", "sfence.vma")


def _rule_tinst_zero(ctx: StepContext) -> dict[str, Claim] | None:
    # D18. QEMU 7.2's mtinst/htinst read zero; rvh writes the transformed instruction (and
    # its registers hold what software writes).  Not in QEMU's dump: reads are compared.
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in (0x34A, 0x64A) or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd in ctx.differing and ctx.expected[rd] == 0:
        return {rd: 0}
    return None


def _rule_ad_update_read_only(ctx: StepContext) -> dict[str, Claim] | None:
    # D19. 8.5.1: the hardware A/D update of a VS-stage PTE is an implicit store checked by
    # the G-stage: in a read-only guest page it raises a guest-page fault (rvh's mtinst
    # 0x3020).  QEMU 7.2 writes the PTE anyway and the access goes on: rvh takes its trap
    # back, sets the PTE's A (and D) bits in memory as QEMU did, and takes QEMU's result.
    ins = ctx.instruction
    if ins is None or ctx.info.exception not in GUEST_PAGE_FAULTS or not ins.is_memory_access:
        return None
    m = ctx.after["mcause"] == ctx.info.exception and "mcause" in ctx.differing
    if ctx.csr(0x34A if m else 0x64A) != 0x3020:
        return None
    if ctx.expected["pc"] != (ctx.pc + ins.length) & MASK64:
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_EXECUTED] = 1
    claim["pc"] = ctx.expected["pc"]
    if ins.is_load and (ins.rd or ins.is_float):
        register = f"{'f' if ins.is_float else 'x'}{ins.rd}"
        if register in ctx.expected:  # f registers: only in dumps made with -d fpu
            claim[register] = ctx.expected[register]
    pte = ctx.after["mtval2" if m else "htval"] << 2
    claim[QEMU_PTE_BITS] = (pte, PTE_A | (PTE_D if ins.is_store else 0))
    return claim


def _rule_gpa_top_bit(ctx: StepContext) -> dict[str, Claim] | None:
    # D21. 8.5.1: Sv39x4 translates guest physical addresses of 41 bits (Sv48x4: 50); QEMU
    # 7.2 treats the top bit (40, 49) like a sign bit and raises a guest-page fault for a GPA
    # that has it set, where rvh makes the access.  Loads only: the instruction is taken back,
    # and a store rvh made could not be.
    ins = ctx.instruction
    if ins is None or ctx.info.exception is not None or not ins.is_load:
        return None
    trap = _qemu_trap(ctx)
    if trap is None or trap[1] not in GUEST_PAGE_FAULTS:
        return None
    m = trap[0] == "mcause"
    tval2 = ctx.expected["mtval2" if m else "htval"]
    top = 40 if ctx.csr(0x680) >> 60 == 8 else 49
    if not ((tval2 << 2) >> top) & 1 or (tval2 << 2) >> (top + 1):
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_TRAPPED] = (trap[1], ctx.expected["mtval" if m else "stval"], tval2, 1)
    return claim


def _implicit_access(ctx: StepContext) -> bool:
    """rvh's trap was a guest-page fault of the implicit VS-stage page-table access."""
    tinst = ctx.csr(0x34A) if "mcause" in ctx.differing else ctx.csr(0x64A)
    return tinst in IMPLICIT_ACCESS_TINST


def _rule_hlv_ignores_sum(ctx: StepContext) -> dict[str, Claim] | None:
    # D26. 8.3.1: HLV/HLVX/HSV are checked as VS/VU accesses (hstatus.SPVP), vsstatus.SUM
    # included.  QEMU 7.2 lets them reach VS-stage user pages with SPVP = 1 whatever SUM says:
    # rvh runs the instruction again with vsstatus.SUM set (the store of an HSV too).
    ins = ctx.insn
    if not _is_hlv_hsv(ins) or ctx.info.exception not in (13, 15):
        return None
    if not ctx.before["hstatus"] & HSTATUS_SPVP or ctx.csr(0x200) & MSTATUS_SUM:
        return None
    pte = ctx.pages(_address(ctx))[0]
    if pte is None or not pte & PTE_U:
        return None  # not a user page: SUM is not what faulted
    if ctx.expected["pc"] != (ctx.pc + ins.length) & MASK64:
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_EXECUTED_WITH] = ((0x200, MSTATUS_SUM),)
    return claim


def _rule_interrupt_lowest_code_first(ctx: StepContext) -> dict[str, Claim] | None:
    # D30. 8.2.3 / 3.1.9: simultaneous interrupts are taken in the order MEI MSI MTI SEI SSI
    # STI SGEI VSEI VSSI VSTI (and for VS-mode, its SEI SSI STI); QEMU 7.2 takes the lowest
    # code first.  Both took an interrupt into the same mode (with a direct trap vector only
    # the cause differs): rvh takes QEMU's cause, and its handler then serves that one.
    if ctx.info.interrupt is None or ctx.differing not in ({"mcause"}, {"scause"}):
        return None
    (name,) = ctx.differing
    ours, theirs = ctx.after[name], ctx.expected[name]
    if not (ours & INTERRUPT_BIT and theirs & INTERRUPT_BIT):
        return None
    code, qemu_code = ours & 0xFF, theirs & 0xFF
    virtual = name == "scause" and ctx.after["V"]
    pending = ctx.before["mip"]
    if qemu_code >= code or not (pending >> (qemu_code + 1 if virtual else qemu_code)) & 1:
        return None
    return {name: theirs}


def _rule_mret_to_m_with_mpv(ctx: StepContext) -> dict[str, Claim] | None:
    # D33. 8.4.1 (mstatus.MPV): MRET sets V = MPV only when it returns below M; with MPP = M,
    # V stays 0.  QEMU 7.2's mret sets V = MPV whatever MPP is, and swaps in the guest's
    # supervisor registers: its hart goes on in M-mode with V=1 (Stepper.enter_qemu_m_virtual)
    ins = ctx.instruction
    if ins is None or ins.base_name != "mret" or ctx.info.privilege != 3:
        return None
    status = ctx.before["mstatus"]
    if status & MSTATUS_MPP != MSTATUS_MPP or not status & MSTATUS_MPV:
        return None
    if ctx.before["V"] or ctx.after["V"] or ctx.expected["V"] != 1:
        return None
    if ctx.after["pc"] != ctx.expected["pc"] or not ctx.differing <= {"V"} | V_VIEW_FIELDS:
        return None
    claim: dict[str, Claim] = {name: Derived() for name in ctx.differing}
    claim[QEMU_M_VIRTUAL] = 1
    return claim


def _rule_vs_stage_fault_as_access_fault(ctx: StepContext) -> dict[str, Claim] | None:
    # D27. a VS-stage permission failure is a page fault (13/15); for HLV/HLVX/HSV and MPRV
    # (MPV = 1) accesses QEMU 7.2 reports an access fault (5/7)
    ins = ctx.instruction
    if ins is None or ctx.info.exception not in (13, 15):
        return None
    if not (_is_hlv_hsv(ins) or _mprv_virtual(ctx)):
        return None
    name = _trap_field(ctx)
    if name is None or ctx.differing != {name} or ctx.expected[name] not in (5, 7):
        return None
    return {name: ctx.expected[name]}


def _rule_mprv_guest_page_fault(ctx: StepContext) -> dict[str, Claim] | None:
    # D29. a G-stage fault of an MPRV (MPV = 1) access is a guest-page fault (21/23, with
    # mtval2); QEMU 7.2 reports a page fault (13/15)
    if ctx.instruction is None or ctx.info.exception not in (21, 23) or not _mprv_virtual(ctx):
        return None
    name = _trap_field(ctx)
    expected = {21: 13, 23: 15}[ctx.info.exception]
    if name is None or ctx.differing != {name} or ctx.expected[name] != expected:
        return None
    return {name: expected}


def _rule_m_trap_gva(ctx: StepContext) -> dict[str, Claim] | None:
    # D35. 8.4.1 (mstatus.GVA): a trap into M-mode sets GVA to 1 when it writes a guest
    # virtual address to mtval, and to 0 otherwise.  QEMU 7.2 sets it for any trap from V=1
    # with a non-zero mtval (an illegal instruction's bits too) and never clears it.
    interrupt = ctx.info.interrupt is not None
    trap = _qemu_trap(ctx)
    if not interrupt and (trap is None or trap[0] != "mcause"):
        return None
    if "mstatus" not in ctx.differing or ctx.expected["V"]:
        return None
    qemu_gva = bool(ctx.before["mstatus"] & MSTATUS_GVA) or (
        bool(ctx.before["V"]) and not interrupt and ctx.expected["mtval"] != 0
    )
    if bool(ctx.expected["mstatus"] & MSTATUS_GVA) != qemu_gva:
        return None
    return {"mstatus": Bits(MSTATUS_GVA)}


def _d(name: str, clause: str, description: str, rule: Rule, ref: str = "") -> Deviation:
    return Deviation(name, clause, description, _with_h(rule), ref)


def _with_h(rule: Rule) -> Rule:
    """The H rules look at QEMU's H-extension dump (it prints V only with H on)."""

    def guarded(ctx: StepContext) -> dict[str, Claim] | None:
        if not H_DUMP_FIELDS <= ctx.expected.keys() or not H_DUMP_FIELDS <= ctx.before.keys():
            return None
        return rule(ctx)

    return guarded


H_DUMP_FIELDS = {"pc", "V", "mstatus", "hstatus", "vsstatus", "mtvec", "stvec", "vstvec"}
H_DUMP_FIELDS |= {"mepc", "sepc", "mcause", "scause", "mtval", "stval", "htval", "mtval2", "mip"}

H_DEVIATIONS: list[Deviation] = [
    _d(
        "hstatus-wpri",
        "privileged spec 8.2.1 (H): hstatus's WPRI fields are read-only zero when not "
        "furnished (2.3)",
        "QEMU 7.2 keeps whatever is written to hstatus's WPRI bits",
        _bits_rule((0x600,), HSTATUS_WPRI, field="hstatus"),
        "D1",
    ),
    _d(
        "atp-stored-raw",
        "privileged spec 8.2.10 (H): hgatp PPN[1:0] read zero in the paged modes, bits 59:58 "
        "are zero (WARL) and MODE is WARL (a reserved value must read back as a supported "
        "one); 8.2.18: a vsatp write with an unsupported MODE is ignored (or WARL)",
        "QEMU 7.2 stores hgatp as written, and a reserved MODE written to vsatp (neither is in "
        "its dump: reads compared)",
        _rule_atp_stored_raw,
        "D3",
    ),
    _d(
        "vsstatus-raw",
        "privileged spec 8.2.11 (H): vsstatus has the layout of sstatus (WPRI bits zero; UXL "
        "is WARL and rvh's VU-mode is RV64 only)",
        "QEMU 7.2 resets vsstatus with bit 35 set and stores what is written to it unmasked "
        "(UXL kept when 0 is written)",
        _rule_vsstatus_raw,
        "D4",
    ),
    _d(
        "vstvec-reserved-mode",
        "privileged spec 8.2.13 (H): vstvec holds the values stvec can hold (MODE 2 and 3 are "
        "reserved; rvh ignores such a write, as QEMU does for mtvec and stvec)",
        "QEMU 7.2 stores a reserved MODE written to vstvec",
        _rule_vstvec_reserved_mode,
        "D5",
    ),
    _d(
        "vsip-ssip-only",
        "privileged spec 8.2.12 (H): vsip.SEIP/STIP/SSIP and vsie's bits are aliases of "
        "hip/hie's VS bits where hideleg delegates them",
        "QEMU 7.2's vsip shows only SSIP; in VS-mode its sip and sie also leave out the bits "
        "mideleg does not delegate",
        _rule_vsip_masked,
        "D6",
    ),
    _d(
        "hcounteren-64-bit",
        "privileged spec 8.2.6 (H): hcounteren is a 32-bit register",
        "QEMU 7.2 keeps bits 63:32 written to hcounteren (not in its dump: reads compared)",
        _bits_rule((0x606,), MASK64 & ~0xFFFFFFFF),
        "D7",
    ),
    _d(
        "henvcfg-stce-writable",
        "Sstc 1.0 (privileged spec 3.1.18, 8.2.9): while menvcfg.STCE = 0, henvcfg.STCE is "
        "read-only zero",
        "QEMU 7.2 lets henvcfg.STCE be written while menvcfg.STCE = 0 (henvcfg is not in its "
        "dump: reads compared)",
        _rule_henvcfg_stce,
        "D8",
    ),
    _d(
        "vstip-without-stce",
        "Sstc 1.0 (privileged spec 3.1.18, 8.2.9): with menvcfg.STCE = 0 or henvcfg.STCE = 0 "
        "vstimecmp has no effect and hip.VSTIP is hvip.VSTIP alone",
        "QEMU 7.2 keeps showing its vstimecmp latch in mip/hip when STCE is cleared",
        _vstip_rule(sstc_on=False),
        "D8",
    ),
    _d(
        "vu-supervisor-illegal",
        "privileged spec 8.6.1 (H): in VU-mode, an access to a supervisor CSR (that HS-mode "
        "could access), SRET and SFENCE.VMA raise a virtual-instruction exception",
        "QEMU 7.2 raises an illegal-instruction exception for them",
        _retrap_rule(_vu_supervisor_access, 22, 2),
        "D9",
    ),
    _d(
        "vs-trap-writes-gva",
        "privileged spec 8.6.2 (H): a trap into VS-mode does not modify hstatus",
        "QEMU 7.2 clears hstatus.GVA on a trap into VS-mode",
        _rule_vs_trap_clears_gva,
        "D10",
    ),
    _d(
        "vs-exception-cause-shifted",
        "privileged spec 8.2.2 (H): only the VS-level interrupts (codes 2, 6, 10) are reported "
        "to VS-mode with the S-level codes; exceptions keep their codes",
        "QEMU 7.2 also subtracts one from the codes of exceptions 2 and 6 delegated to VS-mode "
        "(an illegal instruction arrives as vscause 1)",
        _rule_vs_exception_cause_shifted,
        "D11",
    ),
    _d(
        "hlv-trap-tval",
        "privileged spec 8.6.1 (H) and 3.1.16: an illegal- or virtual-instruction trap of "
        "HLV/HLVX/HSV writes the instruction's bits to mtval/stval",
        "QEMU 7.2 writes the bits of some earlier instruction",
        _rule_hlv_trap_tval,
        "D12",
    ),
    _d(
        "vu-hfence-illegal",
        "privileged spec 8.3.2 (H): HFENCE.VVMA/GVMA with V=1 raise a virtual-instruction "
        "exception",
        "QEMU 7.2 raises an illegal-instruction exception for them in VU-mode",
        _retrap_rule(
            lambda c: _in_vu(c) and c.insn.base_name in ("hfence.vvma", "hfence.gvma"),
            22,
            2,
        ),
        "D13",
    ),
    _d(
        "tsr-tvm-in-vs",
        "privileged spec 8.4.1 (H): mstatus.TSR and TVM affect HS-mode only (VS-mode is "
        "governed by hstatus.VTSR and VTVM)",
        "QEMU 7.2 raises an illegal-instruction exception for SRET (TSR=1), SFENCE.VMA and "
        "satp accesses (TVM=1) in VS-mode",
        _rule_tsr_tvm_in_vs,
        "D14",
    ),
    _d(
        "vu-wfi-tw-virtual",
        "privileged spec 8.6.1 (H): WFI in VU-mode raises a virtual-instruction exception only "
        "when mstatus.TW = 0; with TW = 1 it is illegal (3.1.6.5: TW traps every mode but M)",
        "QEMU 7.2 raises a virtual-instruction exception for WFI in VU-mode with TW = 1",
        _retrap_rule(
            lambda c: (
                _in_vu(c) and c.insn.base_name == "wfi" and bool(c.before["mstatus"] & MSTATUS_TW)
            ),
            2,
            22,
        ),
        "D15",
    ),
    _d(
        "vtvm-satp-ignored",
        "privileged spec 8.2.1 (H): with hstatus.VTVM = 1 a VS-mode access to satp raises a "
        "virtual-instruction exception",
        "QEMU 7.2 lets VS-mode access satp (vsatp) with VTVM = 1",
        _qemu_executed_rule(
            lambda c: (
                _in_vs(c)
                and c.insn.is_csr
                and c.insn.csr == 0x180
                and bool(c.before["hstatus"] & HSTATUS_VTVM)
            ),
            (22,),
            _csr_results,
        ),
        "D16",
    ),
    _d(
        "tvm-hgatp-ignored",
        "privileged spec 8.2.10 (H): with mstatus.TVM = 1 an HS-mode access to hgatp raises an "
        "illegal-instruction exception",
        "QEMU 7.2 lets HS-mode access hgatp with TVM = 1",
        _qemu_executed_rule(
            lambda c: (
                not c.before["V"]
                and c.info.privilege == 1
                and c.insn.is_csr
                and c.insn.csr == 0x680
                and bool(c.before["mstatus"] & MSTATUS_TVM)
            ),
            (2,),
            _csr_results,
        ),
        "D17",
    ),
    _d(
        "tinst-zero",
        "privileged spec 8.6.3 (H): mtinst/htinst hold zero or the transformed instruction; "
        "this project requires the transformed instruction, which rvh writes (and its "
        "mtinst/htinst hold what software writes)",
        "QEMU 7.2's mtinst and htinst always read zero (not in its dump: reads compared)",
        _rule_tinst_zero,
        "D18",
    ),
    _d(
        "ad-update-read-only-page",
        "privileged spec 8.5.1 (H): the A/D update of a VS-stage PTE is checked as a store by "
        "the G-stage: in a read-only guest page it raises a guest-page fault (mtinst 0x3020)",
        "QEMU 7.2 updates the PTE anyway and the access succeeds",
        _rule_ad_update_read_only,
        "D19",
    ),
    _d(
        "hlvx-needs-read",
        "privileged spec 8.3.1 (H): HLVX needs execute permission, not read permission, in "
        "both stages (an execute-only page can be read with HLVX)",
        "QEMU 7.2 checks read permission for HLVX as for HLV: it faults on execute-only pages "
        "(VS stage: load access fault; G-stage: guest-page fault)",
        _qemu_trapped_rule(lambda c: _is_hlvx(c) and _stages(c, _execute_only), (5, 13, 21)),
        "D20",
    ),
    _d(
        "hlvx-reads-non-executable",
        "privileged spec 8.3.1 (H): HLVX needs execute permission in both stages: a readable "
        "page without X faults",
        "QEMU 7.2 checks read permission for HLVX, so it reads readable non-executable pages",
        _qemu_executed_rule(
            lambda c: _is_hlvx(c) and _stages(c, _not_executable), (5, 13, 21), _load_results
        ),
        "D20",
    ),
    _d(
        "gpa-top-bit-faults",
        "privileged spec 8.5.1 (H): Sv39x4 (Sv48x4) translate 41-bit (50-bit) guest physical "
        "addresses; only bits 63:41 (63:50) must be zero",
        "QEMU 7.2 raises a guest-page fault for a guest physical address with bit 40 (49) set",
        _rule_gpa_top_bit,
        "D21",
    ),
    _d(
        "implicit-access-load-fault",
        "privileged spec 8.5.1 (H): a guest-page fault of the implicit VS-stage page-table "
        "access is reported for the original access type (a store's as 23, a fetch's as 20)",
        "QEMU 7.2 reports it as a load guest-page fault (21)",
        _cause_rule(_implicit_access, 23, 21),
        "D22",
    ),
    _d(
        "implicit-fetch-access-load-fault",
        "privileged spec 8.5.1 (H): a guest-page fault of the implicit VS-stage page-table "
        "access of a fetch is an instruction guest-page fault (20)",
        "QEMU 7.2 reports it as a load guest-page fault (21)",
        _cause_rule(_implicit_access, 20, 21),
        "D22",
    ),
    _d(
        "amo-guest-page-fault-cause",
        "privileged spec 8.6.4 and 3.1.15 (H): an AMO that faults in the G-stage raises a "
        "store/AMO guest-page fault (23)",
        "QEMU 7.2 raises a load guest-page fault (21) for it",
        _cause_rule(lambda c: _is_amo_or_sc(c.instruction), 23, 21),
        "D23",
    ),
    _d(
        "vsstatus-mxr-g-stage",
        "privileged spec 8.5 and 8.3.1 (H): vsstatus.MXR makes executable pages readable in "
        "the VS stage only; the G-stage still needs read permission",
        "QEMU 7.2 applies vsstatus.MXR to the G-stage too: a VS load or HLV of a G-stage "
        "execute-only page succeeds",
        _qemu_executed_rule(
            lambda c: (
                _virtual_load(c)
                and bool(c.csr(0x200) & MSTATUS_MXR)
                and _stages(c, _execute_only, vs=False)
            ),
            (21,),
            _load_results,
        ),
        "D24",
    ),
    _d(
        "hs-mxr-ignored",
        "privileged spec 8.5 and 8.3.1 (H): HS-level sstatus.MXR makes executable pages "
        "readable in both stages for V=1 loads and HLV/HLVX",
        "QEMU 7.2 ignores HS-level MXR for them: the load faults",
        _qemu_trapped_rule(
            lambda c: (
                _virtual_load(c) and bool(c.csr(0x300) & MSTATUS_MXR) and _stages(c, _execute_only)
            ),
            (13, 21),
        ),
        "D25",
    ),
    _d(
        "hlv-ignores-sum",
        "privileged spec 8.3.1 and 8.4.1 (H): HLV/HLVX/HSV access memory as though V=1 at "
        "privilege SPVP, so a VS-stage user page needs vsstatus.SUM = 1 when SPVP = 1",
        "QEMU 7.2 lets them access user pages with SUM = 0 (rvh runs the instruction again "
        "with vsstatus.SUM set)",
        _rule_hlv_ignores_sum,
        "D26",
    ),
    _d(
        "vs-stage-fault-as-access-fault",
        "privileged spec 8.5 and 4.3.2 (H): an HLV/HLVX/HSV or MPRV (MPV = 1) access that the "
        "VS-stage page permissions deny raises a page fault (13, 15)",
        "QEMU 7.2 raises an access fault (5) for it",
        _rule_vs_stage_fault_as_access_fault,
        "D27",
    ),
    _d(
        "vsstatus-mxr-ignored",
        "privileged spec 8.3.1 and 8.4.1 (H): for HLV and MPRV (MPV = 1) loads vsstatus.MXR "
        "makes executable VS-stage pages readable",
        "QEMU 7.2 ignores vsstatus.MXR for them: the load faults (as an access fault, D27)",
        _qemu_trapped_rule(
            lambda c: (
                (c.insn.base_name.startswith("hlv.") or _mprv_virtual(c))
                and c.insn.is_load
                and bool(c.csr(0x200) & MSTATUS_MXR)
                and _stages(c, _execute_only, g=False)
            ),
            (5, 13),
        ),
        "D28",
    ),
    _d(
        "mprv-guest-page-fault-cause",
        "privileged spec 8.4.1 and 8.5.1 (H): with MPRV = 1 and MPV = 1 loads and stores are "
        "translated in two stages, and a G-stage fault is a guest-page fault (21, 23)",
        "QEMU 7.2 reports a G-stage fault of such an access as a page fault (13, 15)",
        _rule_mprv_guest_page_fault,
        "D29",
    ),
    _d(
        "interrupt-lowest-code-first",
        "privileged spec 3.1.9 and 8.2.3 (H): simultaneous interrupts are taken in the order "
        "MEI, MSI, MTI, SEI, SSI, STI, SGEI, VSEI, VSSI, VSTI (for VS-mode: SEI, SSI, STI)",
        "QEMU 7.2 takes the pending interrupt with the lowest code first",
        _rule_interrupt_lowest_code_first,
        "D30",
    ),
    _d(
        "vstip-not-reevaluated",
        "Sstc 1.0 (privileged spec 8.2.3 with Sstc): hip.VSTIP is pending whenever time + "
        "htimedelta >= vstimecmp, so a write of htimedelta can raise or clear it",
        "QEMU 7.2 evaluates the comparison only when vstimecmp is written (and when the host "
        "timer armed then fires), not when htimedelta changes",
        _vstip_rule(sstc_on=True),
        "D31",
    ),
    _d(
        "mret-to-m-enters-v",
        "privileged spec 8.4.1 (H, mstatus.MPV): MRET sets V to MPV only when MPP is not M; "
        "returning to M-mode V stays 0",
        "QEMU 7.2's mret sets V = MPV even with MPP = M: the hart runs on in M-mode with V=1 "
        "(M-mode code reaches the VS registers through the supervisor CSRs) until a trap or "
        "an mret",
        _rule_mret_to_m_with_mpv,
        "D33",
    ),
    _d(
        "envcfg-unimplemented-fields",
        "privileged spec 3.1.18 (menvcfg), 4.1.10 (senvcfg), 8.2.9 (henvcfg, H): PBMTE is "
        "read-only zero without Svpbmt; CBIE/CBCFE belong to Zicbom and CBZE to Zicboz, which "
        "QEMU 7.2 does not have either (nor does rvh)",
        "QEMU 7.2 lets CBIE, CBCFE, CBZE and PBMTE be written in menvcfg, senvcfg and henvcfg "
        "(not in its dump: reads compared)",
        _bits_rule((0x30A, 0x10A, 0x60A), 0xF0 | 1 << 62),
        "D34",
    ),
    _d(
        "m-trap-gva",
        "privileged spec 8.4.1 (H): a trap into M-mode sets mstatus.GVA to 1 if it writes a "
        "guest virtual address to mtval, and to 0 otherwise",
        "QEMU 7.2 sets mstatus.GVA for any trap from V=1 with a non-zero mtval (the bits of an "
        "illegal or virtual instruction too), and does not clear it on other traps into M",
        _rule_m_trap_gva,
        "D35",
    ),
    _d(
        "sv57-implemented",
        "privileged spec 4.1.11, 8.2.10 (H): Sv57/Sv57x4 are optional; rvh implements Sv39 "
        "and Sv48 (and x4), so a write of MODE 10 to satp/vsatp/hgatp is ignored",
        "QEMU 7.2 implements Sv57 and Sv57x4 (not a departure: both are legal)",
        _rule_atp_sv57,
    ),
]
DEVIATIONS += H_DEVIATIONS


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
    fields: Mapping[str, tuple[int | None, int | None]]  # name -> (rvh, qemu)
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
    ref: str = ""  # its D-number (docs/h-extension.md), if it has one

    @property
    def label(self) -> str:
        return f"{self.name} ({self.ref})" if self.ref else self.name


@dataclass
class DiffResult:
    instructions: int  # instruction boundaries that were compared and agreed
    fields: list[str]  # compared fields
    not_compared: list[str]
    divergence: Divergence | None = None
    deviations: list[AppliedDeviation] = field(default_factory=list)
    rvh_exit: int | None = None
    reference_exit: int | None = None
    reference_truncated: bool = False  # QEMU was stopped (instruction limit, timeout)
    replays: int = 0  # QEMU's replayed dumps dropped (-icount)

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
    reference: StateTrace | ReferenceRows,
    *,
    context: int = 8,
    deviations: Sequence[Deviation] = DEVIATIONS,
    fast: bool = True,
) -> DiffResult:
    """Compare rvh (driven by ``stepper``) with ``reference`` (a trace, or QEMU's states as
    they come) from reset to the reference's end; stops at the first divergence.  ``fast``:
    plain instructions that agree run in the compiled loop (:func:`_fast_lockstep`);
    everything else, and every difference, goes through the Python step and the deviation
    rules."""
    source = reference if isinstance(reference, ReferenceRows) else ReferenceRows(reference)
    source.available(0)
    fields = source.fields
    pc_column = fields.index("pc")
    compared = stepper.compared
    result = DiffResult(
        0, [f for f, c in zip(fields, compared, strict=True) if c], list(stepper.unknown)
    )
    history: deque[Step] = deque(maxlen=max(context, 1))
    columns = {name: c for c, name in enumerate(fields)}

    def compared_at(at: int) -> np.ndarray:
        """Fields a dump left out (satp under mstatus.TVM) are not compared in that state."""
        names = source.missing.get(at)
        if not names:
            return compared
        here = compared.copy()
        here[[columns[n] for n in names if n in columns]] = False
        return here

    def next_missing(start: int, end: int) -> int:
        return min((r for r in source.missing if start <= r < end), default=end)

    row = stepper.snapshot()
    before = row
    info = StepInfo(int(row[pc_column]))
    ALL = np.uint64(MASK64)
    masks = np.full(len(fields), ALL, dtype=np.uint64)  # bits compared, per field
    masked = False

    def differs(ours: np.ndarray, theirs: np.ndarray, at: int) -> np.ndarray:
        return (((ours ^ theirs) & masks) != 0) & compared_at(at)

    step = Step(-1, info.pc, None, {})

    def fail(index: int, pc: int, bits: int | None, reason: str, at: int) -> DiffResult:
        differing = {}
        if source.available(at):
            theirs = source.row(at)
            for c in np.flatnonzero(differs(row, theirs, at)).tolist():
                differing[fields[c]] = (int(row[c]), int(theirs[c]))
        result.divergence = Divergence(index, pc, bits, differing, reason, list(history))
        result.rvh_exit = stepper.machine.exit_status
        result.reference_exit = source.exit_status
        return result

    def as_dict(values: np.ndarray) -> dict[str, int]:
        return dict(zip(fields, (int(v) for v in values), strict=True))

    def agreed(first: int, end: int) -> None:
        """Context for the boundaries first..end-1, which the compiled loop found equal to the
        reference: the reference's own changes."""
        for k in range(max(first, end - context), end):
            previous, current = source.row(k - 1), source.row(k)
            pc = int(previous[pc_column])
            changed = np.flatnonzero((previous != current) & compared).tolist()
            changes = {fields[c]: (int(previous[c]), int(current[c])) for c in changed}
            changes.pop("pc", None)
            history.append(Step(k - 1, pc, stepper.fetch(pc), changes))

    i = 0
    try_fast = fast
    while source.available(i):
        expected = source.row(i)
        if i > 0:
            status = None
            if try_fast and i not in source.missing:
                block, base = source.block(i)
                stop = next_missing(i, base + len(block))
                reached, status, ours_before, ours_after, fast_info = stepper.fast_steps(
                    block, i - base, stop - base, masks
                )
                reached += base
                if reached > i:
                    agreed(i, reached)
                    result.instructions = reached
                    source.release(reached - context - 2)
                masked = bool((masks != ALL).any())
                if status in (FAST_DONE, FAST_SLOW):
                    if reached > i:
                        row = stepper.snapshot()
                    i = reached
                    try_fast = status == FAST_DONE
                    continue
                assert fast_info is not None  # the fast path stopped at an instruction
                i, before, row, info = reached, ours_before, ours_after, fast_info
                expected = source.row(i)
            else:
                before = row
                info = stepper.step()
                if info.ended:
                    reason = f"rvh stopped ({stepper.machine.exit_reason}) where QEMU went on"
                    return fail(i - 1, info.pc, stepper.fetch(info.pc), reason, i)
                row = stepper.snapshot()
            try_fast = fast
            pc = int(before[pc_column])
            notes = []
            if info.interrupt is not None:
                pc = int(source.row(i - 1)[pc_column])  # the handler's first instruction
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
        mismatch = differs(row, expected, i)
        if i > 0 and mismatch[pc_column] and info.fetch_fault is None:
            # QEMU took a fetch fault at the pc this instruction went to, before its dump; rvh
            # knows it only by fetching (translation): it fetches now, in the same boundary
            cause = stepper.fold_fetch_fault(as_dict(expected))
            if cause is not None:
                info.fetch_fault = cause
                row = stepper.snapshot()
                step.note += ("; " if step.note else "") + f"then {cause_name(cause)}"
                mismatch = differs(row, expected, i)
        if not mismatch.any():
            result.instructions = i + 1
            i += 1
            continue
        differing = {fields[c] for c in np.flatnonzero(mismatch).tolist()}
        if i > 0 and not any(name[0] in "xf" and name[1:].isdigit() for name in differing):
            cause = stepper.pending_interrupt()
            if cause >= 0:
                # QEMU's dump comes after the interrupt; rvh takes it in its next step
                step.note += ("; " if step.note else "") + f"{cause_name(cause | 1 << 63)} next"
                result.instructions = i + 1
                i += 1
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
            stepper.csr,
            stepper.vstimer.vstip(stepper.state),
            stepper.two_stage,
        )
        # every differing field must be claimed by a deviation that recognizes this case
        claims: dict[str, Claim] = {}
        matched: list[tuple[Deviation, list[str]]] = []
        for deviation in deviations:
            claim = deviation.match(ctx)
            if claim is None:
                continue
            claimed = sorted(n for n in claim if n in fields)
            # a field that agrees may only be set to QEMU's value (after a rewind) or rechecked
            agreeing = {n for n in claimed if n not in differing}
            if any(
                not (isinstance(claim[n], Derived) or claim[n] == ctx.expected[n]) for n in agreeing
            ):
                continue
            claimed = sorted(set(claimed) & differing)
            if OUTCOMES & set(claim) and OUTCOMES & set(claims):
                continue  # one account of what QEMU did with the instruction
            merged = {n: _merge_claims(claims[n], claim[n]) for n in claim if n in claims}
            if any(value is False for value in merged.values()):
                continue
            claims.update(claim)
            claims.update(merged)
            matched.append((deviation, claimed))
        accepted = {name for name, value in claims.items() if value is None}
        remaining = differing
        if matched and differing <= set(claims):
            for name, value in claims.items():
                if isinstance(value, Ignore):
                    masks[fields.index(name)] &= np.uint64(~value.bits & MASK64)
            stepper.adopt(
                {n: v for n, v in claims.items() if isinstance(v, int | tuple | Bits)}, expected
            )
            row = stepper.snapshot()
            remaining = {fields[c] for c in np.flatnonzero(differs(row, expected, i)).tolist()}
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
            if matched and differing <= set(claims):
                tried = ", ".join(d.label for d, _ in matched)
                what += f" (still, after adopting QEMU's outcome as {tried})"
            return fail(i - 1, step.pc, step.bits, what, i)
        masked = bool((masks != ALL).any())
        for deviation, claimed in matched:
            result.deviations.append(
                AppliedDeviation(
                    deviation.name,
                    i - 1,
                    step.pc,
                    {n: (ctx.after[n], ctx.expected[n]) for n in claimed},
                    deviation.ref,
                )
            )
            step.note += ("; " if step.note else "") + f"deviation {deviation.label}"
        result.instructions = i + 1
        i += 1
    # QEMU exited after its last dumped instruction; rvh must do the same
    count = i
    result.reference_exit = source.exit_status
    final_pc = int(row[pc_column])
    stepper.step()
    result.rvh_exit = stepper.machine.exit_status
    if source.exit_status is not None:
        bits = stepper.fetch(final_pc)
        if stepper.machine.exit_status is None:
            reason = "QEMU exited after this instruction, rvh went on"
            return fail(count - 1, final_pc, bits, reason, count)
        if stepper.machine.exit_status != source.exit_status:
            reason = f"exit status: rvh {stepper.machine.exit_status}, QEMU {source.exit_status}"
            return fail(count - 1, final_pc, bits, reason, count)
    return result


# ---- putting it together ---------------------------------------------------------------------
def make_machine(elf: str | Path, *, hypervisor: bool, output: Callable[[bytes], None] | None):
    from rvh.machine import Machine

    extensions = "acdfimsu" + ("h" if hypervisor else "")  # what QEMU's -cpu (qemu_cpu) has
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
    timeout: float = 600.0,
    tables_hook: Callable[[np.ndarray], None] | None = None,
) -> DiffResult:
    """Run ``elf`` on rvh in lockstep with its QEMU reference: a saved trace, or QEMU run now
    beside the comparison (its states streamed, :class:`QemuStream`).

    ``tables_hook`` may edit the machine's decode tables before the run (the seeded-divergence
    test breaks an instruction this way, in that machine only)."""
    machine = make_machine(elf, hypervisor=hypervisor, output=None)
    if tables_hook is not None:
        tables_hook(machine.tables)
    if reference is not None:
        return lockstep(Stepper(machine, reference.fields), reference, context=context)
    with QemuStream(
        elf, hypervisor=hypervisor, max_instructions=max_instructions, timeout=timeout
    ) as stream:
        stream.available(0)
        result = lockstep(Stepper(machine, stream.fields), stream, context=context)
        result.reference_truncated = stream.truncated
        result.replays = stream.replays
    return result


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
    trace = None
    if reference is not None:
        try:
            trace = read_reference(reference)
        except OSError as error:
            raise ReferenceError(f"{reference}: cannot read ({error.strerror})") from None
        except ValueError as error:  # the message names the file
            raise ReferenceError(str(error)) from None
        digest = hashlib.sha256(Path(elf).read_bytes()).hexdigest()
        if trace.meta.get("sha256", digest) != digest:
            raise ReferenceError(f"{reference} was traced from another build of {elf}")
        hypervisor = "V" in trace.fields
    elif save_reference:
        folder = os.path.dirname(os.path.abspath(save_reference))
        if os.path.isdir(save_reference) or not os.access(folder, os.W_OK):
            raise ReferenceError(f"--save-reference {save_reference}: cannot write there")
        run = run_qemu(elf, hypervisor=hypervisor, max_instructions=max_instructions)
        trace = run.trace
        if run.truncated:
            print(f"rvh diff: QEMU stopped after {len(trace)} instructions (--max-insns)")
        try:
            write_reference(trace, save_reference)
        except OSError as error:
            raise ReferenceError(f"--save-reference {save_reference}: {error.strerror}") from None
    result = diff_elf(
        elf, trace, hypervisor=hypervisor, context=context, max_instructions=max_instructions
    )
    if result.reference_truncated:
        print(f"rvh diff: QEMU stopped after {result.instructions} instructions (--max-insns)")
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
            + ("f0-f31, " if "f0" in result.fields else "")
            + ", ".join(
                f for f in result.fields if f != "pc" and not (f[0] in "xf" and f[1:].isdigit())
            )
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
            counts[applied.label] = counts.get(applied.label, 0) + 1
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
    "H_DEVIATIONS",
    "Deviation",
    "DiffResult",
    "Divergence",
    "QemuLogParser",
    "QemuStream",
    "ReferenceRows",
    "Stepper",
    "diff_elf",
    "format_report",
    "lockstep",
    "qemu_available",
    "read_qemu_log",
    "remove_io_replays",
    "run_qemu",
]

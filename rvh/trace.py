"""Traces: rvh's commit log, QEMU's state dumps, and the reference traces ``rvh diff`` reads.

Three kinds of trace meet here.

*Commit log* (``rvh run --trace FILE``).  The kernel's traced specialization appends one
record per retired instruction or exception to an int64 buffer (``rvh/cpu/trace.py``); this
module turns the records into the text of Spike's ``--log-commits``, one line per retired
instruction::

    core   0: 3 0x0000000080000000 (0x00000297) x5  0x0000000080000000
    core   0: 3 0x0000000080000010 (0x00b53023) mem 0x0000000080001000 0x0000000000000001

(hart, privilege 0/1/3, pc, instruction bits at their own width, then the register written and
the memory accessed: ``mem ADDR`` for a load, ``mem ADDR VALUE`` for a store, both for an AMO).
An exception is shown as Spike shows it, with no commit line for the instruction::

    core   0: exception trap_illegal_instruction, epc 0x0000000080000024
    core   0:           tval 0x0000000000000000

Spike has no way to show V=1; rvh writes the privilege of a VS/VU-mode instruction followed by
``v`` (``1v``, ``0v``), the only departure from Spike's format.  With tracing off the kernel
runs its untraced specialization and the machine does nothing per slice but test one None.

*QEMU dumps* (``-singlestep -d cpu,nochain``): the full state (pc, the CSRs QEMU prints, x0-x31,
and V with the H extension) printed *before* every instruction.  One parser,
:class:`QemuLogParser`, reads them as they come (``rvh diff`` streams QEMU's log through it);
:func:`parse_qemu_log` (a log in memory) and :func:`read_qemu_log` (a file) read a whole log
into a :class:`StateTrace`.

*Reference trace* (``tools/qemu_trace.py -o FILE``, ``rvh diff --reference FILE``): a
:class:`StateTrace` saved as text, the first state in full and then only the fields that
changed, one line per instruction boundary::

    # rvh reference trace 1
    # source qemu-system-riscv64 ...
    fields pc V mhartid mstatus ... x0 ... x31
    exit 0
    pc=1000 mhartid=0 mstatus=a00000000 ...
    pc=1004 x5=1000
"""

from __future__ import annotations

import gzip
import io
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numba as nb
import numpy as np

from rvh.cpu import layout as L
from rvh.cpu.trace import (
    F_TRACE_RD,
    INTERRUPT_RECORD,
    T_BITS,
    T_CSR,
    T_CSR_VALUE,
    T_MEM_ADDR,
    T_MEM_INFO,
    T_MEM_VALUE,
    T_MODE,
    T_PC,
    T_RD,
    T_VALUE,
    TRACE_FIELDS,
)
from rvh.errors import ConfigError
from rvh.isa.csrs import BY_NUMBER
from rvh.isa.disasm import decode

MASK64 = (1 << 64) - 1
CSR_NAMES = {number: csr.name for number, csr in BY_NUMBER.items()}

# Spike's names of the exceptions (its trap_t classes, "trap_" + the privileged spec's name).
SPIKE_TRAP_NAMES = {
    0: "trap_instruction_address_misaligned",
    1: "trap_instruction_access_fault",
    2: "trap_illegal_instruction",
    3: "trap_breakpoint",
    4: "trap_load_address_misaligned",
    5: "trap_load_access_fault",
    6: "trap_store_address_misaligned",
    7: "trap_store_access_fault",
    8: "trap_user_ecall",
    9: "trap_supervisor_ecall",
    10: "trap_virtual_supervisor_ecall",
    11: "trap_machine_ecall",
    12: "trap_instruction_page_fault",
    13: "trap_load_page_fault",
    15: "trap_store_page_fault",
    20: "trap_instruction_guest_page_fault",
    21: "trap_load_guest_page_fault",
    22: "trap_virtual_instruction",
    23: "trap_store_guest_page_fault",
}
ECALL_CAUSES = {8, 9, 10, 11}  # Spike prints no tval line for these

# How the kernel marks an interrupt record: T_RD = INTERRUPT_RECORD_BASE - code, T_PC = the
# interrupted pc (rvh/cpu/trace.py).
INTERRUPT_RECORD_BASE = INTERRUPT_RECORD
INTERRUPT_NAMES = {
    1: "interrupt_supervisor_software",
    2: "interrupt_virtual_supervisor_software",
    3: "interrupt_machine_software",
    5: "interrupt_supervisor_timer",
    6: "interrupt_virtual_supervisor_timer",
    7: "interrupt_machine_timer",
    9: "interrupt_supervisor_external",
    10: "interrupt_virtual_supervisor_external",
    11: "interrupt_machine_external",
    12: "interrupt_supervisor_guest_external",
}

DEFAULT_TRACE_RECORDS = 1 << 16  # records per hart buffer (4 MiB)


# ---- commit log -----------------------------------------------------------------------------
def _amo_stored(name: str, old: int, operand: int, size: int) -> int:
    """The value an AMO writes back (unprivileged spec 8.4), for the log's ``mem`` field."""
    bits = size * 8
    mask = (1 << bits) - 1
    a, b = old & mask, operand & mask

    def signed(v: int) -> int:
        return v - (1 << bits) if v >> (bits - 1) else v

    op = name.split(".")[0]
    result = {
        "amoswap": b,
        "amoadd": a + b,
        "amoxor": a ^ b,
        "amoand": a & b,
        "amoor": a | b,
        "amomin": a if signed(a) < signed(b) else b,
        "amomax": a if signed(a) > signed(b) else b,
        "amominu": min(a, b),
        "amomaxu": max(a, b),
    }.get(op, b)
    return result & mask


def commit_lines(records: np.ndarray, hartid: int = 0) -> Iterator[str]:
    """Spike ``--log-commits`` lines for kernel trace records (a flat int64 array)."""
    core = f"core{hartid:4d}: "
    table = records.reshape(-1, TRACE_FIELDS)
    for row in table.tolist():
        pc = row[T_PC] & MASK64
        rd = row[T_RD]
        if rd <= INTERRUPT_RECORD_BASE:
            code = INTERRUPT_RECORD_BASE - rd
            name = INTERRUPT_NAMES.get(code, f"interrupt #{code}")
            yield f"{core}exception {name}, epc 0x{pc:016x}"
            continue
        if rd <= -2:
            cause = -2 - rd
            name = SPIKE_TRAP_NAMES.get(cause, f"trap #{cause}")
            yield f"{core}exception {name}, epc 0x{pc:016x}"
            if cause not in ECALL_CAUSES:
                yield f"{core}          tval 0x{row[T_VALUE] & MASK64:016x}"
            continue
        mode = row[T_MODE]
        privilege = f"{mode & 3}v" if mode & 4 else f"{mode & 3}"
        bits = row[T_BITS]
        if bits & 3 == 3:
            text = f"{core}{privilege} 0x{pc:016x} (0x{bits & 0xFFFFFFFF:08x})"
        else:
            text = f"{core}{privilege} 0x{pc:016x} (0x{bits & 0xFFFF:04x})"
        value = row[T_VALUE] & MASK64
        if rd >= F_TRACE_RD:
            text += f" f{rd - F_TRACE_RD:<2d} 0x{value:016x}"
        elif rd > 0:
            text += f" x{rd:<2d} 0x{value:016x}"
        info = row[T_MEM_INFO]
        if info:
            size = info & 15
            address = row[T_MEM_ADDR] & MASK64
            ins = decode(bits)
            name = ins.base_name if ins is not None else ""
            if info & 16:
                stored = row[T_MEM_VALUE] & ((1 << (8 * size)) - 1)
                if name.startswith("sc."):
                    if value == 0:  # rd = 0: the store happened
                        text += f" mem 0x{address:016x} 0x{stored:0{2 * size}x}"
                elif name.startswith("amo"):
                    stored = _amo_stored(name, value, row[T_MEM_VALUE], size)
                    text += f" mem 0x{address:016x}"
                    text += f" mem 0x{address:016x} 0x{stored:0{2 * size}x}"
                else:
                    text += f" mem 0x{address:016x} 0x{stored:0{2 * size}x}"
            else:
                text += f" mem 0x{address:016x}"
        csr = row[T_CSR]
        if csr >= 0:  # Spike's spelling: c<decimal number>_<name>
            csr_name = CSR_NAMES.get(csr, f"csr{csr:#x}")
            text += f" c{csr}_{csr_name} 0x{row[T_CSR_VALUE] & MASK64:016x}"
        yield text


class CommitLog:
    """The ``--trace`` writer of a machine: one record buffer per hart, drained to text."""

    def __init__(self, path: str | Path, records: int = DEFAULT_TRACE_RECORDS) -> None:
        self.path = str(path)
        self.records = records
        try:
            if self.path == "-":  # stdout, kept open after the log
                self._out: IO[str] = sys.stdout
            elif self.path.endswith(".gz"):
                self._out = gzip.open(self.path, "wt")  # noqa: SIM115
            else:
                self._out = open(self.path, "w")  # noqa: SIM115
        except OSError as error:
            raise ConfigError(f"--trace {self.path}: cannot write ({error.strerror})") from None
        self.lines = 0

    def buffer(self) -> np.ndarray:
        """A record buffer to hand to a hart (``hart.trace``)."""
        return np.zeros(self.records * TRACE_FIELDS, dtype=np.int64)

    def drain(self, hart, bus=None) -> None:
        """Write out and forget the records ``hart`` has collected.  With ``bus`` (the end of
        the run), also the device store that ended it: the machine stopped before the kernel
        could replay and record it."""
        count = int(hart.state[L.TRACE_POS])
        if hart.trace is None:
            return
        lines = list(commit_lines(hart.trace[: count * TRACE_FIELDS], hart.hartid))
        if bus is not None:
            lines.extend(self._final_store(hart, bus))
        if lines:
            self._out.write("\n".join(lines) + "\n")
        self.lines += len(lines)
        hart.state[L.TRACE_POS] = 0

    @staticmethod
    def _final_store(hart, bus) -> list[str]:
        s = hart.state
        if s[L.MMIO_STATE] != L.MMIO_DONE or s[L.PRIV] != L.PRIV_M:
            return []
        pc = int(s[L.PC]) & MASK64
        try:
            bits = int.from_bytes(
                bus.read_bytes(pc, 4 if bus.read_bytes(pc, 1)[0] & 3 == 3 else 2), "little"
            )
        except Exception:
            return []
        ins = decode(bits)
        if ins is None or not ins.is_store:
            return []
        record = np.zeros(TRACE_FIELDS, dtype=np.int64)
        record[T_PC], record[T_BITS], record[T_MODE], record[T_RD] = s[L.PC], bits, 3, -1
        record[T_MEM_ADDR], record[T_MEM_VALUE] = s[L.MMIO_ADDR], s[L.MMIO_VALUE]
        record[T_MEM_INFO] = int(s[L.MMIO_SIZE]) | 16
        record[T_CSR] = -1
        return list(commit_lines(record, hart.hartid))

    def close(self) -> None:
        if self._out is sys.stdout:
            self._out.flush()
        else:
            self._out.close()


@dataclass
class Commit:
    """One line of a commit log, parsed (for tests and tools)."""

    hart: int
    pc: int
    privilege: int = 3
    virtual: bool = False
    bits: int = 0
    writes: dict[str, int] = field(default_factory=dict)  # "x5" -> value, "c773_mtvec" -> value
    loads: list[int] = field(default_factory=list)
    stores: list[tuple[int, int]] = field(default_factory=list)
    exception: str | None = None  # Spike's trap name, for an exception line
    tval: int | None = None


_COMMIT = re.compile(r"^core\s+(\d+): (\d)(v?) 0x([0-9a-f]+) \(0x([0-9a-f]+)\)(.*)$")
_EXCEPTION = re.compile(r"^core\s+(\d+): exception (.+), epc 0x([0-9a-f]+)$")
_TVAL = re.compile(r"^core\s+(\d+):\s+tval 0x([0-9a-f]+)$")


def parse_commit_log(text: str | Iterable[str]) -> list[Commit]:
    """Read a commit log (rvh's or Spike's ``--log-commits``; other lines are skipped)."""
    lines = text.splitlines() if isinstance(text, str) else text
    commits: list[Commit] = []
    for line in lines:
        line = line.rstrip("\n")
        found = _COMMIT.match(line)
        if found:
            commit = Commit(
                int(found.group(1)),
                int(found.group(4), 16),
                int(found.group(2)),
                found.group(3) == "v",
                int(found.group(5), 16),
            )
            tokens = found.group(6).split()
            i = 0
            while i < len(tokens):
                token = tokens[i]
                if token == "mem":
                    address = int(tokens[i + 1], 16)
                    if i + 2 < len(tokens) and tokens[i + 2].startswith("0x"):
                        commit.stores.append((address, int(tokens[i + 2], 16)))
                        i += 3
                    else:
                        commit.loads.append(address)
                        i += 2
                else:
                    commit.writes[token] = int(tokens[i + 1], 16)
                    i += 2
            commits.append(commit)
            continue
        found = _EXCEPTION.match(line)
        if found:
            commits.append(
                Commit(int(found.group(1)), int(found.group(3), 16), exception=found.group(2))
            )
            continue
        found = _TVAL.match(line)
        if found and commits and commits[-1].exception is not None:
            commits[-1].tval = int(found.group(2), 16)
    return commits


# ---- architectural state traces ---------------------------------------------------------------
GPR_FIELDS = tuple(f"x{i}" for i in range(32))


@dataclass
class StateTrace:
    """Architectural state at successive instruction boundaries: ``rows[i]`` is the state
    before instruction i (uint64, one column per name in ``fields``)."""

    fields: list[str]
    rows: np.ndarray
    meta: dict[str, str] = field(default_factory=dict)
    exit_status: int | None = None

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def column(self, name: str) -> int:
        return self.fields.index(name)

    def state(self, index: int) -> dict[str, int]:
        return dict(zip(self.fields, (int(v) for v in self.rows[index]), strict=True))


# ---- QEMU's state dumps -------------------------------------------------------------------------
# One parser for every reader of QEMU's ``-d cpu`` log: a log given whole (parse_qemu_log), a
# log file of any size (read_qemu_log) and the FIFO that ``rvh diff`` reads while QEMU runs
# (rvh.diff.qemu.QemuStream), all through QemuLogParser.
_RECORD_START = re.compile(rb"^ (?:V      =|pc      )", re.M)
_HEX_VALUE = re.compile(rb" ([0-9a-f]{16})(?![0-9a-z])")
_LOG_LINE = re.compile(rb"^ (\S+)\s+(=\s+)?([0-9a-f]+)\s*$")
# x0-x31, and f0-f31 when QEMU runs with ``-d cpu,fpu``: "x1/ra  <16 hex digits>" per register
_LOG_REGISTERS = re.compile(rb" ([xf])(\d+)/\S+\s+([0-9a-f]{16})")
MISSING_META = "missing"  # reference meta: fields a dump left out, "row:name,name row:name"
LOG_READ = 8 << 20  # bytes of a QEMU log file read (and parsed) at a time


def _qemu_field_names(record: bytes) -> list[str]:
    """Field names of one ``-d cpu`` record, in print order: V (with H), pc, CSRs, x0-x31 (and
    f0-f31 with ``-d cpu,fpu``)."""
    names: list[str] = []
    for line in record.split(b"\n"):
        if (line.startswith(b" x") or line.startswith(b" f")) and b"/" in line:
            names.extend(f"{bank.decode()}{int(n)}" for bank, n, _ in _LOG_REGISTERS.findall(line))
            continue
        found = _LOG_LINE.match(line)
        if found:
            names.append(found.group(1).decode())
    return names


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
    registers = 0
    for line in record.split(b"\n"):
        if (line.startswith(b" x") or line.startswith(b" f")) and b"/" in line:
            for bank, number, value in _LOG_REGISTERS.findall(line):
                values[columns[f"{bank.decode()}{int(number)}"]] = int(value, 16)
                registers += 1
            continue
        found = _LOG_LINE.match(line)
        if found:
            name = found.group(1).decode()
            if name in columns:
                values[columns[name]] = int(found.group(3), 10 if found.group(2) else 16)
    expected = sum(1 for name in columns if name[0] in "xf" and name[1:].isdigit())
    return values if registers == expected else None


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
        self.fields = fields = _qemu_field_names(record)
        self._columns = {name: i for i, name in enumerate(fields)}
        has_v = fields[0] == "V"
        offsets = [m.start(1) for m in _HEX_VALUE.finditer(record)]
        if len(offsets) != len(fields) - has_v:
            raise ValueError("unexpected QEMU dump layout")
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


def parse_qemu_log(text: str | bytes) -> StateTrace:
    """Read QEMU 7.2's ``-d cpu`` output given whole into a StateTrace (fields: V if printed,
    pc, the CSRs in QEMU's order, x0..x31, and f0..f31 when the log was made with ``-d
    cpu,fpu``; the fields a dump left out in its meta, see :func:`missing_fields`).  A record
    cut short by the end of the log is dropped."""
    parser = QemuLogParser()
    rows, missing = parser.feed(text.encode() if isinstance(text, str) else text, final=True)
    if parser.fields is None:
        raise ValueError("no CPU state dumps in the QEMU log (run with -d cpu,nochain)")
    trace = StateTrace(parser.fields, np.ascontiguousarray(rows, dtype=np.uint64))
    if missing:
        trace.meta[MISSING_META] = format_missing(missing)
    return trace


def read_qemu_log(path: str | Path) -> StateTrace | None:
    """Read a QEMU ``-d cpu`` log file of any size into a StateTrace (missing fields in its
    meta, see :func:`missing_fields`)."""
    parser = QemuLogParser()
    parts: list[np.ndarray] = []
    missing: dict[int, list[str]] = {}
    count = 0

    def take(rows: np.ndarray, absent: dict[int, list[str]]) -> None:
        nonlocal count
        if len(rows):
            parts.append(rows)
        missing.update({count + r: names for r, names in absent.items()})
        count += len(rows)

    with open(path, "rb") as log:
        while data := log.read(LOG_READ):
            take(*parser.feed(data))
    take(*parser.finish())
    if parser.fields is None or not count:
        return None
    trace = StateTrace(parser.fields, np.concatenate(parts) if len(parts) > 1 else parts[0])
    if missing:
        trace.meta[MISSING_META] = format_missing(missing)
    return trace


def missing_fields(trace: StateTrace) -> dict[int, list[str]]:
    """Row -> the fields QEMU's dump of that state left out (not compared there)."""
    out: dict[int, list[str]] = {}
    for item in trace.meta.get(MISSING_META, "").split():
        row, _, names = item.partition(":")
        out[int(row)] = names.split(",")
    return out


def format_missing(missing: dict[int, list[str]]) -> str:
    """The reference meta that lists the fields each dump left out (:func:`missing_fields`)."""
    return " ".join(f"{row}:" + ",".join(names) for row, names in missing.items())


# ---- reference trace files ----------------------------------------------------------------------
REFERENCE_MAGIC = "# rvh reference trace 1"


def _open_text(path: str | Path, mode: str) -> IO[str]:
    if str(path).endswith(".gz"):
        return gzip.open(path, mode + "t")  # type: ignore[return-value]
    return open(path, mode)  # noqa: SIM115


def write_reference(trace: StateTrace, path: str | Path) -> None:
    """Save a StateTrace: a header, the first state in full, then one line of changed fields
    (hex, pc always) per instruction boundary."""
    with _open_text(path, "w") as out:
        out.write(REFERENCE_MAGIC + "\n")
        for key, value in trace.meta.items():
            out.write(f"# {key} {value}\n")
        out.write("fields " + " ".join(trace.fields) + "\n")
        if trace.exit_status is not None:
            out.write(f"exit {trace.exit_status}\n")
        names = trace.fields
        pc = names.index("pc")
        previous = None
        buffer = io.StringIO()
        for row in trace.rows.tolist():
            changed: range | list[int]
            if previous is None:
                changed = range(len(names))
            else:
                changed = [i for i in range(len(names)) if row[i] != previous[i] or i == pc]
            buffer.write(" ".join(f"{names[i]}={row[i]:x}" for i in changed) + "\n")
            previous = row
        out.write(buffer.getvalue())


def read_reference(path: str | Path) -> StateTrace:
    """Load a reference trace written by :func:`write_reference`.  OSError when it cannot be
    read, ValueError (naming the file) when it is not a well-formed reference trace."""
    try:
        with _open_text(path, "r") as source:
            lines = source.read().splitlines()
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile):
        lines = []
    if not lines or lines[0] != REFERENCE_MAGIC:
        raise ValueError(f"{path}: not an rvh reference trace")
    try:
        return _parse_reference(lines)
    except (ValueError, IndexError, KeyError, OverflowError):
        raise ValueError(f"{path}: malformed rvh reference trace") from None


def _parse_reference(lines: list[str]) -> StateTrace:
    meta: dict[str, str] = {}
    fields: list[str] = []
    exit_status = None
    at = 1
    while at < len(lines) and not lines[at].startswith(("fields ",)):
        key, _, value = lines[at][2:].partition(" ")
        meta[key] = value
        at += 1
    fields = lines[at].split()[1:]
    at += 1
    if at < len(lines) and lines[at].startswith("exit "):
        exit_status = int(lines[at].split()[1])
        at += 1
    index = {name: i for i, name in enumerate(fields)}
    rows = np.zeros((len(lines) - at, len(fields)), dtype=np.uint64)
    current = [0] * len(fields)
    for r, line in enumerate(lines[at:]):
        for token in line.split():
            name, _, value = token.partition("=")
            current[index[name]] = int(value, 16)
        rows[r] = current
    return StateTrace(fields, rows, meta, exit_status)

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
and V with the H extension) printed *before* every instruction.  :func:`parse_qemu_log` reads
them into a :class:`StateTrace`.

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

import binascii
import gzip
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

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
            self._out: IO[str] = (
                gzip.open(self.path, "wt") if self.path.endswith(".gz") else open(self.path, "w")  # noqa: SIM115
            )
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


_QEMU_LINE = re.compile(r"^ (\S+)\s+(=\s+)?([0-9a-f]+)\s*$")
_QEMU_RECORD = re.compile(rb"^ (?:V      =|pc      )", re.M)
_QEMU_HEX = re.compile(rb" ([0-9a-f]{16})(?![0-9a-z])")
_QEMU_V = re.compile(rb"^ V      =\s+(\d)", re.M)
_NIBBLES = np.zeros(256, dtype=np.uint8)
_NIBBLES[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def _qemu_field_names(first_record: str) -> list[str]:
    """Field names of one ``-d cpu`` record, in print order: V (with H), pc, CSRs, x0-x31."""
    names: list[str] = []
    for line in first_record.splitlines():
        if (line.startswith(" x") or line.startswith(" f")) and "/" in line:
            names.extend(token.split("/")[0] for token in line.split()[0::2])
            continue
        found = _QEMU_LINE.match(line)
        if found:
            names.append(found.group(1))
    return names


def _fixed_layout(text: bytes, length: int, offsets: list[int]) -> np.ndarray | None:
    """Every record has the first one's layout (QEMU prints fixed-width lines): read all the
    values at once, or None if some record differs (then the slow path reads them)."""
    count = len(text) // length
    if count == 0 or len(text) % length:
        return None
    records = np.frombuffer(text, dtype=np.uint8).reshape(count, length)
    if not (records[:, :8] == records[0, :8]).all():
        return None
    at = np.asarray(offsets)[:, None] + np.arange(16)[None, :]
    digits = _NIBBLES[records[:, at]]  # (count, fields, 16) nibbles
    packed = (digits[:, :, 0::2] << 4) | digits[:, :, 1::2]  # big-endian bytes
    return np.ascontiguousarray(packed).view(">u8").reshape(count, len(offsets)).astype(np.uint64)


def parse_qemu_log(text: str | bytes) -> StateTrace:
    """Read QEMU 7.2's ``-d cpu`` output into a StateTrace (fields: V if printed, pc, the CSRs
    in QEMU's order, x0..x31, and f0..f31 when the log was made with ``-d cpu,fpu``)."""
    if isinstance(text, str):
        text = text.encode()
    first = _QEMU_RECORD.search(text)
    if first is None:
        raise ValueError("no CPU state dumps in the QEMU log (run with -d cpu,nochain)")
    text = text[first.start() :]
    has_v = text.startswith(b" V ")
    second = _QEMU_RECORD.search(text, 1 if not has_v else text.index(b"\n") + 1)
    if has_v:
        second = re.compile(rb"^ V      =", re.M).search(text, 1)
    length = second.start() if second else len(text)
    names = _qemu_field_names(text[:length].decode())
    hex_names = [n for n in names if n != "V"]
    offsets = [m.start(1) for m in _QEMU_HEX.finditer(text[:length])]
    hex_rows = _fixed_layout(text, length, offsets) if len(offsets) == len(hex_names) else None
    if hex_rows is None:
        values = _QEMU_HEX.findall(text)
        count = len(values) // len(hex_names)  # a record cut short by the end of the run
        raw = binascii.unhexlify(b"".join(values[: count * len(hex_names)]))
        hex_rows = np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(count, -1)
    count = hex_rows.shape[0]
    if has_v:
        v = [int(x) for x in _QEMU_V.findall(text)[:count]]
        rows = np.hstack([np.array(v, dtype=np.uint64).reshape(count, 1), hex_rows])
        fields = ["V"] + hex_names
    else:
        rows, fields = hex_rows, hex_names
    return StateTrace(fields, np.ascontiguousarray(rows, dtype=np.uint64))


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

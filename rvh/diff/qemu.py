"""The reference: QEMU 7.2 single-stepped with ``-d cpu,fpu,nochain``, its log streamed.

QEMU's log (1.6 KiB per instruction with H) is never written to disk: QEMU writes it into a
FIFO, a thread parses the dumps as they come (:class:`rvh.trace.QemuLogParser`) and drops
-icount's replays (:func:`remove_io_replays`), and the comparison reads the rows as they are
published (:class:`QemuStream`, a :class:`ReferenceRows`)."""

from __future__ import annotations

import bisect
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rvh.diff.common import MASK64, REFERENCE_MEMORY, ReferenceError
from rvh.isa.disasm import Instruction, decode
from rvh.loader import read_elf
from rvh.trace import (
    LOG_READ,
    MISSING_META,
    QemuLogParser,
    StateTrace,
    format_missing,
    missing_fields,
)

QEMU_BINARY = os.environ.get("RVH_QEMU", "qemu-system-riscv64")
ROWS_PER_BLOCK = 1 << 17  # reference rows handed to the comparison at a time
WAIT_POLL = 1.0  # seconds between ReferenceRows.on_wait calls while the comparison waits


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


@dataclass
class QemuRun:
    trace: StateTrace
    output: bytes  # what the guest wrote to the UART
    replays: int  # I/O replays removed
    truncated: bool  # stopped at the instruction limit or timeout


def _read_fifo(fd: int, size: int, running: Callable[[], bool]) -> bytes:
    """Up to ``size`` bytes from the FIFO ``fd`` (opened non-blocking): as many as come
    before the writer pauses (for 50 ms: QEMU spinning through fetch faults prints nothing,
    and the dumps before that must reach the comparison), or what is left once the writer
    is gone: b"" at the end.  Before QEMU opens its end there is nothing to read, which is
    not the end while QEMU runs."""
    import select

    parts, total = [], 0
    while total < size:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if not ready:
            if total or not running():
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
        meta[MISSING_META] = format_missing(missing)
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

    # called with the awaited index every WAIT_POLL seconds while the rows do not come
    on_wait: Callable[[int], None] | None = None

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
        keep_rows: bool = False,
    ) -> None:
        """``keep_rows``: keep every row (for :meth:`trace`), not only those the comparison
        has still to read."""
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
        self._max = max_instructions
        self._keep = keep_rows
        self._deadline = time.monotonic() + timeout
        try:
            with open(self._out_path, "wb") as out:
                self._process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
                )
            self._thread = threading.Thread(target=self._produce, args=(fifo,), daemon=True)
            self._thread.start()
        except BaseException:  # a signal in between included: no QEMU or folder left behind
            if hasattr(self, "_process"):
                self._process.kill()
                self._process.wait()
            self._tmp.cleanup()
            raise
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
        last: np.ndarray | None = None  # the last row published: a replay of it shows next
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
                if len(rows):
                    # Of two identical dumps the second is dropped here (remove_io_replays
                    # drops the first: the same rows), so that every row is published as
                    # soon as it is read, the last one too, whose replay comes in a later
                    # piece; the comparison must see the state QEMU stopped printing at
                    joined = rows if last is None else np.concatenate([last[None, :], rows])
                    drop = [k + 1 for k in _replays(joined, self.fields, fetch)]
                    if last is not None:
                        drop = [k - 1 for k in drop]  # rows' own indices
                    if drop:
                        rows = np.delete(rows, drop, axis=0)
                        missing = _renumber(missing, drop)
                        self.replays += len(drop)
                    if len(rows):
                        last = rows[-1].copy()
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
        while not self._wait(index):
            if self.on_wait is not None:
                self.on_wait(index)  # outside the lock: the producer goes on meanwhile
        with self._cond:
            if self.error is not None:
                raise ReferenceError(f"reading QEMU's trace: {self.error}")
            if index >= self._count and self._count == 0:
                raise ReferenceError(
                    "QEMU wrote no trace: "
                    + Path(self._out_path).read_bytes().decode(errors="replace")[-500:]
                )
            return index < self._count

    def _wait(self, index: int) -> bool:
        """Wait up to WAIT_POLL seconds for row ``index`` or the end; whether either came."""
        deadline = time.monotonic() + WAIT_POLL
        with self._cond:
            while index >= self._count and not self._done:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(timeout=remaining)
        return True

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
        if self._keep:
            return
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
            meta[MISSING_META] = format_missing(self.missing)
        return StateTrace(self.fields, rows, meta, self.exit_status)

    def stop(self) -> None:
        """Stop QEMU now: the rows it printed are the (truncated) reference."""
        self._stop(truncated=True)

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

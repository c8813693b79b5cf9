"""``rvh bench overhead``: what virtualization costs, class by class and mode by mode.

The lab's table (RAM -25% to -75%, disk -5% to -20%, network up to -10%, privileged CPU work
1% to 7%) measured on one machine: the guests of ``guests/bench/overhead`` (cpu, priv, ram) run
natively on the built-in SBI and as VMs under rvh's hypervisor in each mode asked for.  Each
benchmark's cost is read by the guest from ``instret`` around its measured region: every
instruction the hart retires, the hypervisor's included, so the numbers are deterministic and
say how much work a mode adds.  Exits per operation come from the hypervisor's stats page,
host time per operation from the host clock at each region's report line (noisy: without
``--quick`` each run is repeated and the median kept).

Disk and net (guests/virtio: blkbench, netbench; pvblkbench, pvnetbench on the platform I/O
extension) run natively on the machine's virtio devices and, in each VM mode, once per I/O path
the mode has (emulated, pv, and passthrough for hw VMs).  The network runs between two VMs on
one hub (natively: one guest driving two NICs), so the sender's and the receiver's work are in
the count either way.  A disk phase costs instructions per request, a network phase per frame,
from its ``phase:`` line to the first byte of its report line; the boot arguments size them
(``region=`` and ``passes=``, ``frames64=`` and ``frames1500=``: small with ``--quick``).

Runs are independent tasks, one process each (a process pool, or a Dask cluster with
``--dask``); the rows are merged in run-key order, so any schedule gives the same table.  A
mode the hypervisor refuses today is an "unsupported" row; it is measured as soon as
``--guest X,virt=MODE`` boots.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from rvh.bench.phases import disk_image
from rvh.cluster import as_they_finish, dask_client
from rvh.errors import ConfigError, RvhError

MODES = ("native", "hw", "trap", "pv")
VM_MODES = ("hw", "trap", "pv")
# class -> guest of guests/bench/overhead (None: the guests/virtio I/O benchmarks)
CLASSES = ("cpu", "priv", "ram", "disk", "net")
IO = ("disk", "net")
# the I/O paths of each mode: natively the machine's virtio devices or the built-in SBI's
# platform I/O extension (pv); a VM's devices emulated by the hypervisor, its pv devices
# forwarded to the platform I/O extension, or (hw VMs, through the IOMMU) a machine device of
# its own.  A VM's pv path is measured against native pv, the others against native virtio.
IO_PATHS = {
    "native": ("virtio", "pv"),
    "hw": ("emulated", "pv", "passthrough"),
    "trap": ("emulated", "pv"),
    "pv": ("emulated", "pv"),
}
ALL_IO_PATHS = ("virtio", "emulated", "pv", "passthrough")
# The lab handout's ranges (shared/seeds/lab3-virtual-machines.txt): what virtualization costs
SEED_RANGES = {
    "cpu": "1% to 7% (privileged instructions)",
    "priv": "1% to 7% (privileged instructions)",
    "ram": "25% to 75%",
    "disk": "5% to 20%",
    "net": "up to 10%",
}
UNITS = {
    "intmem": "instructions/round",
    "memcpy": "instructions/KiB",
    "fork": "instructions/fork",
    "touch": "instructions/touch",
}
LOG_SCALE_CLASSES = ("priv", "ram", "disk", "net")
FULL_REPEATS = 3  # runs of each key without --quick: the median host time; counts must agree
OVH_LINE = re.compile(rb"^OVH (\S+) ops=(\d+) instret=(\d+) time=(\d+)$")
# the I/O phases of guests/virtio/blkbench and netbench (and their pv I/O twins)
DISK_PHASES = ("read-4k", "write-4k", "read-64k", "write-64k")
NET_PHASES = ("net-64", "net-1500")
# the network's rows: between two VMs, then from a VM to a native guest (the same phases)
NET_BENCHES = (*NET_PHASES, "to-native-64", "to-native-1500")
IO_UNITS = {"disk": "instructions/request", "net": "instructions/frame"}
# what a phase's report line says it did: requests (disk) or frames received (net)
IO_REPORT = {
    "disk": re.compile(rb"^(\S+): \d+ KiB in (\d+) requests of"),
    "net": re.compile(rb"^(\S+): (\d+) frames of \d+ bytes received"),
}
NET_SENT_REPORT = re.compile(rb"^(\S+): (\d+) frames of \d+ bytes sent")  # the sender alone
VM_PREFIX = re.compile(rb"\[vm(\d+)\] ")  # a multi-VM console chunk (firmware/hyp/console.c)
VM_PREFIX_START = re.compile(rb"\[(?:v(?:m(?:\d+\]?)?)?)?")  # the start of one
# the sender's MAC ends in :01 (netbench, pvnetbench), the receiver's in :02
NET_MACS = ("52:54:00:12:34:01", "52:54:00:12:34:02")


@dataclass(frozen=True)
class IoSize:
    """How much an I/O run does: the boot arguments of blkbench and netbench."""

    region: int  # bytes of the disk read and written, per pass
    passes: int
    frames_64: int
    frames_1500: int

    def bootargs(self, klass: str) -> str:
        if klass == "disk":
            return f"region={self.region} passes={self.passes}"
        return f"frames64={self.frames_64} frames1500={self.frames_1500}"


# --quick: 512 4 KiB and 32 64 KiB requests, 4000 + 2000 frames; else 4 x 32 MiB, 50,000 +
# 25,000 frames (the full guests' 300,000 + 150,000 take minutes in trap mode)
QUICK_IO = IoSize(2 << 20, 1, 4000, 2000)
FULL_IO = IoSize(32 << 20, 4, 50_000, 25_000)
# the exit causes of the stats page (their sum is the exits); "sbi" is ecall less console
EXIT_CAUSES = (
    "sbi", "mmio", "csr", "sret", "sfence", "illegal", "interrupts", "shadow_fill",
    "virtual_instruction",
)  # fmt: skip


@dataclass(frozen=True)
class RunKey:
    """One run: a class of benchmarks in one mode (``repeat``: which run of it)."""

    klass: str
    mode: str
    repeat: int = 0
    path: str = ""  # the I/O path of a disk or net run ("" for the other classes)
    quick: bool = False  # the I/O runs' --quick size

    def order(self) -> tuple[int, int, int, int]:
        """The merge order: the seed's class order, then native, hw, trap, pv, then the path."""
        path = ALL_IO_PATHS.index(self.path) if self.path else 0
        return (CLASSES.index(self.klass), MODES.index(self.mode), path, self.repeat)


@dataclass
class Row:
    """One benchmark in one mode: the JSON row (``class`` is ``klass`` here)."""

    klass: str
    bench: str
    mode: str
    value: float | None  # cost per operation in instructions; None when not measured
    unit: str
    overhead_pct: float | None = None  # vs native, filled in after the merge
    exits: float | None = None  # hypervisor exits per operation (VM modes)
    status: str = "ok"  # ok, unsupported, n/a, failed
    note: str = ""
    # host wall time per operation, from the previous report line (so the console output of
    # that line is in it: meaningful for long regions only); noisy, never deterministic
    host_ns: float | None = None
    host_overhead_pct: float | None = None  # host_ns vs native's: the emulator's cost too
    path: str | None = None  # disk and net: the I/O path (virtio natively; emulated, pv, ...)
    # disk and net in VM modes: exits per operation by cause (EXIT_CAUSES, nonzero ones)
    exits_by_cause: dict[str, float] | None = None

    def json(self) -> dict[str, object]:
        row = asdict(self)
        row["class"] = row.pop("klass")
        return row


@dataclass
class RunResult:
    key: RunKey
    rows: list[Row] = field(default_factory=list)


def guests_build() -> Path:
    return Path(__file__).resolve().parents[2] / "guests" / "build"


def overhead_elf(klass: str, mode: str = "native") -> Path:
    """The class's guest for a mode: pv mode runs the pv build (the same source with the pv
    layer, ``guests/build/bench/overhead-pv``), every other mode the native build."""
    return (
        guests_build() / "bench" / ("overhead-pv" if mode == "pv" else "overhead") / f"{klass}.elf"
    )


# ---- one run (in its own process) ----------------------------------------------------------
def run_key(key: RunKey) -> RunResult:
    """Run one class in one mode and return its rows; never raises for a mode or guest
    problem: the rows say what happened."""
    try:
        if key.klass in IO:
            return _run_io(key)
        return _run_overhead_guest(key)
    except RvhError as error:
        status = "unsupported" if key.mode in VM_MODES else "failed"
        if key.klass in IO:
            # a failed I/O run is a failure: every mode boots its VMs' devices
            return RunResult(
                key,
                [
                    Row(key.klass, name, key.mode, None, IO_UNITS[key.klass], status="failed",
                        note=str(error), path=key.path)
                    for name in (DISK_PHASES if key.klass == "disk" else NET_BENCHES)
                ],
            )  # fmt: skip
        return RunResult(
            key, [Row(key.klass, "-", key.mode, None, "", status=status, note=str(error))]
        )


def _run_overhead_guest(key: RunKey) -> RunResult:
    from rvh.boot import BootRecipe, BuiltinSbiBoot, HypervisorBoot
    from rvh.config import MachineConfig
    from rvh.hyp import STATS_ADDRESS, STATS_SIZE, GuestSpec, read_stats
    from rvh.machine import Machine

    elf = overhead_elf(key.klass, key.mode)
    if not elf.exists():
        raise ConfigError(f"{elf}: not built (make -C guests)")
    output = bytearray()
    recipe: BootRecipe
    config = MachineConfig()
    if key.mode == "native":
        recipe = BuiltinSbiBoot(str(elf))
    else:
        from rvh.hyp import host_memory_needed

        spec = GuestSpec.parse(f"{elf},virt={key.mode}")
        config.memory = max(config.memory, host_memory_needed([spec]))
        recipe = HypervisorBoot([spec])
    # Each region is announced by "OVH begin" and reported by its result line.  Exits: the
    # hypervisor's stats page read at both lines (between kernel calls, so up to date), less
    # console output (one DBCN exit per byte).  Host time: from the end of the begin line to
    # the first byte of the result line, so no console output is in it.
    lines: list[tuple[bytes, int | None, float]] = []  # (line, exits, host seconds)
    pending = bytearray()
    line_started = time.perf_counter()
    region_started = line_started
    exits_at_begin = 0

    def vm_exits() -> int:
        if key.mode == "native":
            return 0
        vms = read_stats(machine.bus.read_bytes(STATS_ADDRESS, STATS_SIZE))
        return sum(vm.counters["exits"] - vm.sbi.get("DBCN", 0) for vm in vms)

    def capture(data: bytes) -> None:
        nonlocal line_started, region_started, exits_at_begin
        now = time.perf_counter()
        output.extend(data)
        if not pending:
            line_started = now
        pending.extend(data)
        while b"\n" in pending:
            text, _, rest = pending.partition(b"\n")
            pending[:] = rest
            line = bytes(text).rstrip(b"\r")
            if line == b"OVH begin":
                region_started, exits_at_begin = now, vm_exits()
            elif line.startswith(b"OVH "):
                exits = None if key.mode == "native" else vm_exits() - exits_at_begin
                lines.append((line, exits, line_started - region_started))
            if pending:
                line_started = now

    machine = Machine(config, output=capture)
    machine.boot(recipe)
    result = machine.run_sync()
    names = [line for line, _, _ in lines]
    if result.status != 0 or names[:1] != [b"OVH start"] or names[-1:] != [b"OVH done"]:
        tail = output.decode(errors="replace").strip().splitlines()[-3:]
        raise RvhError(
            f"{key.klass} in {key.mode}: {result.reason or 'no OVH done'}: {' / '.join(tail)}"
        )
    rows = []
    for line, exits, seconds in lines[1:-1]:
        match = OVH_LINE.match(line)
        if not match:
            raise RvhError(f"{key.klass}: malformed line {line!r}")
        bench = match.group(1).decode()
        ops, instret = int(match.group(2)), int(match.group(3))
        rows.append(
            Row(
                key.klass,
                bench,
                key.mode,
                instret / ops,
                UNITS.get(bench, "instructions/op"),
                exits=None if exits is None else exits / ops,
                host_ns=seconds / ops * 1e9,
            )
        )
    return RunResult(key, rows)


def native_path(path: str) -> str:
    """The native I/O path a VM's path is measured against."""
    return "pv" if path == "pv" else "virtio"


def io_elf(klass: str, mode: str, path: str) -> Path:
    """The I/O guest of a run: the pv I/O twin on the pv path, the pv build in pv mode."""
    name = (
        ("pvblkbench" if path == "pv" else "blkbench")
        if klass == "disk"
        else ("pvnetbench" if path == "pv" else "netbench")
    )
    return guests_build() / ("virtio-pv" if mode == "pv" else "virtio") / f"{name}.elf"


@dataclass
class _Snapshot:
    """The machine at one point of the console stream."""

    seconds: float
    instructions: int
    exits: dict[str, int]  # EXIT_CAUSES summed over the VMs, "exits" their total


def _run_io(key: RunKey) -> RunResult:
    """One disk or net run: natively on the built-in SBI, or as VMs over the key's I/O path.
    The network runs twice: between two VMs on one hub (natively one guest with two NICs),
    then from one VM (natively one guest) to a native guest in another rvh process over a UDP
    link, whose instructions are not counted (``to-native-64``, ``to-native-1500``)."""
    size = QUICK_IO if key.quick else FULL_IO
    elf = io_elf(key.klass, key.mode, key.path)
    if not elf.exists():
        raise ConfigError(f"{elf}: not built (make -C guests)")
    with tempfile.TemporaryDirectory(prefix="rvh-overhead-") as tmp:
        if key.klass == "disk":
            # blkbench checks mkimage.py's pattern (id 2) on its first read
            image = Path(tmp) / "bench.img"
            disk_image(image, max(size.region >> 20, 1))
            return RunResult(key, _io_machine(key, elf, size, disk=image))
        return RunResult(key, _net_runs(key, elf, size))


def _net_runs(key: RunKey, elf: Path, size: IoSize) -> list[Row]:
    """Between two VMs, then the sender (a VM, or natively a guest) in this process to a native
    netbench receiver in another rvh process over a UDP link (netdev socket).  The receiver
    starts first: its start-up overlaps the first run, and it calls for the sender with its
    "ready" frames until the sender comes."""
    receiver_port, sender_port = _free_udp_ports(2)
    link = "socket,id=n0,udp=127.0.0.1:{},localaddr=127.0.0.1:{},mac={}"
    receiver = subprocess.Popen(
        [
            sys.executable, "-m", "rvh.cli", "run", "--sbi",
            str(guests_build() / "virtio" / "netbench.elf"),
            "--netdev", link.format(sender_port, receiver_port, NET_MACS[1]),
            # a UDP link loses frames: 20 ms (of the guest's time) without one ends a phase
            "--append", size.bootargs("net") + " losswait=20",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=guests_build().parents[1],
    )  # fmt: skip
    try:
        rows = _io_machine(key, elf, size)
        sender_link = link.format(receiver_port, sender_port, NET_MACS[0])
        rows += _io_machine(key, elf, size, socket=sender_link)
        try:
            output, _ = receiver.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            raise RvhError("net to a native guest: the receiver did not finish") from None
    finally:
        receiver.kill()
        receiver.wait()
    if receiver.returncode != 0:
        tail = " / ".join(output.decode(errors="replace").strip().splitlines()[-3:])
        raise RvhError(f"net to a native guest: the receiver failed: {tail}")
    return rows


def _free_udp_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _io_machine(
    key: RunKey, elf: Path, size: IoSize, *, disk: Path | None = None, socket: str | None = None
) -> list[Row]:
    """Run one I/O machine: ``disk`` an image for the disk, ``socket`` the one NIC's UDP link
    (the sender alone), else two NICs on a hub."""
    from rvh.boot import BootRecipe, BuiltinSbiBoot, HypervisorBoot
    from rvh.config import MachineConfig
    from rvh.hyp import (
        STATS_ADDRESS,
        STATS_SIZE,
        GuestSpec,
        attach_vm_devices,
        host_memory_needed,
        read_stats,
    )
    from rvh.machine import Machine

    bootargs = size.bootargs(key.klass)
    config = MachineConfig()
    interface = ",if=pv" if key.path == "pv" else ""
    recipe: BootRecipe
    if socket is not None:
        config.netdevs = [socket + (interface if key.mode == "native" else "")]
    if key.mode == "native":
        config.bootargs = bootargs
        if disk is not None:
            config.drives = [f"file={disk},format=raw{interface}"]
        elif socket is None:
            config.netdevs = [f"hub,id=h0,mac={mac}{interface}" for mac in NET_MACS]
        config.firmware_traps = True
        recipe = BuiltinSbiBoot(str(elf))
    else:
        common = f"{elf},virt={key.mode},io={key.path}"
        if disk is not None:
            texts = [f"{common},drive={disk},append={bootargs}"]
        elif socket is not None:
            texts = [f"{common},netdev=n0,append={bootargs}"]  # the socket's MAC: :01
        else:
            texts = [f"{common},netdev=h0,mac={mac},append={bootargs}" for mac in NET_MACS]
        specs = [GuestSpec.parse(text) for text in texts]
        attach_vm_devices(config, specs)
        config.memory = max(config.memory, host_memory_needed(specs))
        recipe = HypervisorBoot(specs)
    streams = _IoStreams(
        key,
        lambda: read_stats(machine.bus.read_bytes(STATS_ADDRESS, STATS_SIZE)),
        to_native=socket is not None,
    )
    machine = Machine(config, output=streams.feed)
    streams.machine = machine
    machine.boot(recipe)
    result = machine.run_sync()
    if result.status != 0:
        tail = streams.text().strip().splitlines()[-3:]
        raise RvhError(
            f"{key.klass} in {key.mode} ({key.path}): {result.reason or 'failed'}: "
            + " / ".join(tail)
        )
    return streams.rows()


class _IoStreams:
    """The console of an I/O run, one line stream per VM (the multi-VM console names each
    chunk's VM), with the machine's state at the start of every line and at the end of every
    ``phase:`` line."""

    def __init__(
        self, key: RunKey, read_stats_page: Callable[[], list[Any]], *, to_native: bool = False
    ):
        self.key = key
        # the sender alone (to a native guest): its report line ends a phase, the frames sent
        self.to_native = to_native
        self.report = NET_SENT_REPORT if to_native else IO_REPORT[key.klass]
        self.machine: Any = None
        self.read_stats_page = read_stats_page
        self.output = bytearray()
        self.lines: dict[int, bytearray] = {}
        self.line_start: dict[int, _Snapshot] = {}
        self.vm = 0
        self.phase_starts: dict[str, _Snapshot] = {}  # the last VM's phase: line
        self.reports: dict[str, tuple[int, _Snapshot]] = {}  # (work, snapshot)
        self.pending = b""

    def snapshot(self) -> _Snapshot:
        exits = {cause: 0 for cause in ("exits", *EXIT_CAUSES)}
        if self.key.mode != "native":
            for vm in self.read_stats_page():
                console = vm.sbi.get("DBCN", 0)
                exits["exits"] += vm.counters["exits"] - console
                exits["sbi"] += vm.counters["ecall"] - console
                for cause in EXIT_CAUSES[1:]:
                    exits[cause] += vm.counters.get(cause, 0)
        return _Snapshot(time.perf_counter(), self.machine.instructions, exits)

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def feed(self, data: bytes) -> None:
        self.output.extend(data)
        data = self.pending + data
        self.pending = b""
        while data:
            match = VM_PREFIX.match(data)
            if match:
                self.vm = int(match.group(1))
                data = data[match.end() :]
                continue
            if VM_PREFIX_START.fullmatch(data):
                self.pending = data  # a prefix cut in two: the rest comes next
                return
            cut = data.find(b"[", 1)
            chunk, data = (data, b"") if cut < 0 else (data[:cut], data[cut:])
            self._bytes(chunk)

    def _bytes(self, chunk: bytes) -> None:
        line = self.lines.setdefault(self.vm, bytearray())
        for text in chunk.splitlines(keepends=True):
            if not line:
                self.line_start[self.vm] = self.snapshot()
            line.extend(text)
            if line.endswith(b"\n"):
                self._line(bytes(line).rstrip(b"\r\n"))
                line.clear()

    def _line(self, line: bytes) -> None:
        if line.startswith(b"phase: "):
            self.phase_starts[line[7:].decode(errors="replace")] = self.snapshot()
            return
        match = self.report.match(line)
        if match:
            self.reports[match.group(1).decode()] = (int(match.group(2)), self.line_start[self.vm])

    def rows(self) -> list[Row]:
        names = DISK_PHASES if self.key.klass == "disk" else NET_PHASES
        rows = []
        for name in names:
            bench = f"to-native-{name.split('-')[1]}" if self.to_native else name
            if name not in self.phase_starts or name not in self.reports:
                raise RvhError(f"{self.key.klass} in {self.key.mode}: no {name} phase reported")
            begin = self.phase_starts[name]
            work, end = self.reports[name]
            if work <= 0:
                raise RvhError(f"{self.key.klass} in {self.key.mode}: {name} did no work")
            exits = by_cause = None
            if self.key.mode != "native":
                exits = (end.exits["exits"] - begin.exits["exits"]) / work
                by_cause = {
                    cause: round((end.exits[cause] - begin.exits[cause]) / work, 3)
                    for cause in EXIT_CAUSES
                    if end.exits[cause] != begin.exits[cause]
                }
            rows.append(
                Row(
                    self.key.klass,
                    bench,
                    self.key.mode,
                    (end.instructions - begin.instructions) / work,
                    "instructions/frame sent" if self.to_native else IO_UNITS[self.key.klass],
                    exits=exits,
                    host_ns=(end.seconds - begin.seconds) / work * 1e9,
                    path=self.key.path,
                    exits_by_cause=by_cause,
                )
            )
        return rows


# ---- the matrix ----------------------------------------------------------------------------
def plan(
    modes: Sequence[str],
    classes: Sequence[str] = CLASSES,
    repeats: int = 1,
    *,
    quick: bool = False,
) -> list[RunKey]:
    """Every class in every mode; disk and net once per I/O path of the mode."""
    return [
        RunKey(klass, mode, repeat, path, quick)
        for klass in classes
        for mode in modes
        for path in (IO_PATHS[mode] if klass in IO else ("",))
        for repeat in range(repeats)
    ]


def run_matrix(
    keys: Sequence[RunKey],
    *,
    dask: str | None = None,
    workers: int = 2,
    progress: Callable[[RunKey], None] | None = None,
) -> list[Row]:
    """Run every key in a process of its own and merge the rows deterministically.  ``dask``:
    None for a local process pool, "" for a Dask LocalCluster, else a scheduler address."""
    task = run_key
    results: list[RunResult] = []
    if dask is None:
        # spawn, one task per process: each run starts from a clean interpreter
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=get_context("spawn"), max_tasks_per_child=1
        ) as pool:
            futures = {pool.submit(task, key): key for key in keys}
            from concurrent.futures import as_completed

            for future in as_completed(futures):
                results.append(future.result())
                if progress:
                    progress(futures[future])
    else:
        results = _run_on_dask(task, keys, dask, workers, progress)
    return merge(results)


def _run_on_dask(
    task: Callable[[RunKey], RunResult],
    keys: Sequence[RunKey],
    address: str,
    workers: int,
    progress: Callable[[RunKey], None] | None,
) -> list[RunResult]:
    with dask_client(address, workers) as client:
        results = []
        for key, future in as_they_finish(
            client,
            task,
            keys,
            lambda key: f"overhead-{key.klass}-{key.mode}-{key.path}-{key.repeat}",
        ):
            results.append(future.result())
            if progress:
                progress(key)
        return results


def merge(results: Iterable[RunResult]) -> list[Row]:
    """The rows of every run in run-key order, with overhead vs native filled in.  Repeated
    runs of a key become one row: their host times give the median, and so do their counts
    for the I/O classes (whose devices keep host time); the other classes' counts are
    deterministic and must agree."""
    ordered = sorted(results, key=lambda r: r.key.order())
    rows: list[Row] = []
    repeats: dict[tuple[str, str, str, str | None], list[Row]] = {}
    for result in ordered:
        for row in result.rows:
            same = repeats.setdefault((row.klass, row.bench, row.mode, row.path), [])
            if not same:
                rows.append(row)
            elif same[0].value != row.value and row.status == "ok" and row.klass not in IO:
                same[0].status = "failed"
                same[0].note = f"runs disagree: {same[0].value} and {row.value}"
            same.append(row)
    for row in rows:
        same = repeats[(row.klass, row.bench, row.mode, row.path)]
        times = [r.host_ns for r in same if r.host_ns]
        if times:
            row.host_ns = round(statistics.median(times), 1)
        values = [r.value for r in same if r.value is not None]
        if row.klass in IO and values:
            row.value = statistics.median(values)
            exits = [r.exits for r in same if r.exits is not None]
            if exits:
                row.exits = statistics.median(exits)
    native = {(r.klass, r.bench, r.path): r for r in rows if r.mode == "native" and r.value}
    for row in rows:
        base = native.get((row.klass, row.bench, native_path(row.path) if row.path else None))
        if base is None:
            continue
        if row.value is not None and base.value:
            row.overhead_pct = round(100 * (row.value - base.value) / base.value, 2)
        if row.host_ns is not None and base.host_ns:
            row.host_overhead_pct = round(100 * (row.host_ns - base.host_ns) / base.host_ns, 1)
    return rows


# ---- output --------------------------------------------------------------------------------
def _cell(rows: list[Row]) -> str:
    measured = [r.overhead_pct for r in rows if r.overhead_pct is not None]
    if measured:
        if len(measured) == 1:
            return f"{measured[0]:+.1f}%"
        return f"{min(measured):+.1f}% .. {max(measured):+.1f}%"
    statuses = sorted({r.status for r in rows})
    return "/".join(statuses) if statuses else "-"


def _io_paths(rows: list[Row]) -> list[str]:
    """The I/O paths the VM rows have (the native ones without VM rows), in the order of
    ALL_IO_PATHS."""
    vm_rows = [r for r in rows if r.mode != "native"] or rows
    return [p for p in ALL_IO_PATHS if any(r.path == p for r in vm_rows)]


def summary_table(rows: list[Row], modes: Sequence[str]) -> list[list[str]]:
    """The seed's shape: one line per class (per class and I/O path for disk and net), one
    column per mode (the range of the class's benchmarks' overheads vs native), and the
    handout's range beside them."""
    table = [["class", *modes, "seed"]]
    for klass in CLASSES:
        of_class = [r for r in rows if r.klass == klass]
        if not of_class:
            continue
        paths = _io_paths(of_class) if klass in IO else []
        if not paths:
            cells = [_cell([r for r in of_class if r.mode == mode]) for mode in modes]
            table.append([klass, *cells, SEED_RANGES[klass]])
            continue
        for path in paths:
            cells = []
            for mode in modes:
                if mode != "native" and path not in IO_PATHS[mode]:
                    cells.append("-")
                    continue
                wanted = native_path(path) if mode == "native" else path
                same = [r for r in of_class if r.mode == mode and r.path == wanted]
                cells.append(_cell(same))
            table.append([f"{klass} ({path})", *cells, SEED_RANGES[klass]])
    return table


def detail_table(rows: list[Row], modes: Sequence[str]) -> list[list[str]]:
    """Every benchmark: its cost per operation in each mode, exits per op in VM modes (disk
    and net once per I/O path, native's cost on each line)."""
    table = [["class", "bench", "path", "unit", *modes]]
    benches: dict[tuple[str, str, str], dict[str, Row]] = {}
    native_io = {
        (r.klass, r.bench, r.path): r for r in rows if r.klass in IO and r.mode == "native"
    }
    vm_io_classes = {r.klass for r in rows if r.klass in IO and r.mode != "native"}
    for row in rows:
        if row.bench == "-":
            continue
        if row.klass in vm_io_classes and row.mode == "native":
            continue  # on each path's line
        benches.setdefault((row.klass, row.bench, row.path or ""), {})[row.mode] = row
    for (klass, bench, path), by_mode in benches.items():
        base = native_io.get((klass, bench, native_path(path)))
        if klass in vm_io_classes and base is not None:
            by_mode = {"native": base, **by_mode}
        cells = []
        for mode in modes:
            found = by_mode.get(mode)
            if found is None:
                if klass in IO and mode != "native" and path and path not in IO_PATHS[mode]:
                    cells.append("-")
                    continue
                unsupported = [r for r in rows if r.klass == klass and r.mode == mode]
                cells.append(unsupported[0].status if unsupported else "-")
            elif found.value is None:
                cells.append(found.status)
            else:
                text = f"{found.value:.1f}"
                if found.exits is not None:
                    text += f" ({found.exits:.2f} exits)"
                if found.host_ns is not None:
                    text += f" {found.host_ns:.0f} ns"
                cells.append(text)
        unit = next(iter(by_mode.values())).unit
        table.append([klass, bench, path, unit, *cells])
    return table


def exits_table(rows: list[Row], modes: Sequence[str]) -> list[list[str]]:
    """Disk and net in VM modes: exits per operation by cause."""
    table = [["class", "bench", "mode", "path", "exits/op", "by cause"]]
    for row in rows:
        if row.klass not in IO or row.mode not in modes or row.exits_by_cause is None:
            continue
        causes = ", ".join(f"{cause} {value:.3f}" for cause, value in row.exits_by_cause.items())
        table.append(
            [row.klass, row.bench, row.mode, row.path or "", f"{row.exits or 0:.3f}", causes]
        )
    return table


def format_table(table: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in table
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def write_json(rows: list[Row], path: str) -> None:
    try:
        with open(path, "w") as out:
            json.dump([row.json() for row in rows], out, indent=1)
            out.write("\n")
    except OSError as error:
        raise ConfigError(f"--json {path}: cannot write ({error.strerror})") from None


def plot(rows: list[Row], modes: Sequence[str], path: str) -> None:
    """Grouped bars per class: each benchmark's cost per operation in each mode (log scale
    for the nanobenchmarks, whose costs span three decades)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = [k for k in CLASSES if any(r.klass == k and r.value for r in rows)]
    if not classes:
        raise RvhError("--plot: no measured rows to draw")
    # the CPU classes on the first line, disk and net (a bar per mode and path) on the second
    columns = min(len(classes), 3)
    lines = math.ceil(len(classes) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(6 * columns, 5 * lines), squeeze=False)
    flat = [axis for line in axes for axis in line]
    for axis in flat[len(classes) :]:
        axis.set_visible(False)
    for axis, klass in zip(flat, classes, strict=False):
        benches = list(dict.fromkeys(r.bench for r in rows if r.klass == klass and r.value))
        # one bar per mode, and per mode and path for disk and net
        series = list(
            dict.fromkeys(
                (r.mode, r.path) for r in rows if r.klass == klass and r.value and r.mode in modes
            )
        )
        width = 0.8 / max(len(series), 1)
        for index, (mode, io_path) in enumerate(series):
            values = []
            for bench in benches:
                found = [
                    r.value
                    for r in rows
                    if r.klass == klass
                    and r.bench == bench
                    and r.mode == mode
                    and r.path == io_path
                ]
                values.append(found[0] if found and found[0] else math.nan)
            positions = [i + (index - (len(series) - 1) / 2) * width for i in range(len(benches))]
            label = f"{mode} {io_path}" if io_path else mode
            axis.bar(positions, values, width, label=label)
        axis.set_xticks(range(len(benches)), benches, rotation=45, ha="right")
        axis.set_title(klass)
        axis.set_ylabel("instructions per operation")
        if klass in LOG_SCALE_CLASSES:
            axis.set_yscale("log")
        axis.legend(fontsize="x-small", ncol=2 if len(series) > 4 else 1)
    figure.suptitle("rvh bench overhead: cost per operation (instret, hypervisor included)")
    figure.tight_layout()
    try:
        figure.savefig(path, dpi=100)
    except OSError as error:
        raise ConfigError(f"--plot {path}: cannot write ({error.strerror})") from None
    finally:
        plt.close(figure)


def parse_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            raise ConfigError(f"--modes: {mode}: use native, hw, trap or pv")
    if not modes:
        raise ConfigError("--modes: give at least one of native, hw, trap, pv")
    if "native" not in modes:
        modes.insert(0, "native")  # the baseline every overhead is measured against
    return list(dict.fromkeys(modes))


def bench_overhead(
    *,
    quick: bool,
    modes: Sequence[str],
    json_path: str | None = None,
    plot_path: str | None = None,
    dask: str | None = None,
) -> int:
    from rich.progress import Progress

    keys = plan(modes, repeats=1 if quick else FULL_REPEATS, quick=quick)
    with Progress(transient=True) as progress:
        task = progress.add_task("rvh bench overhead", total=len(keys))

        def done(key: RunKey) -> None:
            progress.update(task, advance=1, description=f"{key.klass} {key.mode}")

        rows = run_matrix(keys, dask=dask, progress=done)
    print("rvh bench overhead: cost vs native, instructions retired per operation (hypervisor")
    print("included); a class's cell is the range over its benchmarks")
    print()
    print(format_table(summary_table(rows, modes)))
    print()
    print(format_table(detail_table(rows, modes)))
    by_cause = exits_table(rows, modes)
    if len(by_cause) > 1:
        print()
        print("disk and net: exits per operation (request, frame) by cause")
        print(format_table(by_cause))
    for row in rows:
        if row.status in ("unsupported", "failed") and row.note:
            where = f"{row.mode} ({row.path})" if row.path else row.mode
            print(f"{row.klass} {row.bench} {where}: {row.status}: {row.note}")
    if json_path:
        write_json(rows, json_path)
    if plot_path:
        plot(rows, modes, plot_path)
    failed = [row for row in rows if row.status == "failed"]
    return 1 if failed else 0

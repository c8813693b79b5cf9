"""``rvh bench overhead``: what virtualization costs, class by class and mode by mode.

The lab's table (RAM -25% to -75%, disk -5% to -20%, network up to -10%, privileged CPU work
1% to 7%) measured on one machine: the guests of ``guests/bench/overhead`` (cpu, priv, ram) run
natively on the built-in SBI and as VMs under rvh's hypervisor in each mode asked for.  Each
benchmark's cost is read by the guest from ``instret`` around its measured region: every
instruction the hart retires, the hypervisor's included, so the numbers are deterministic and
say how much work a mode adds.  Exits per operation come from the hypervisor's stats page,
host time per operation from the host clock at each region's report line (noisy: without
``--quick`` each run is repeated and the median kept).

Runs are independent tasks, one process each (a process pool, or a Dask cluster with
``--dask``); the rows are merged in run-key order, so any schedule gives the same table.  A
mode the hypervisor refuses today is an "unsupported" row; it is measured as soon as
``--guest X,virt=MODE`` boots.  Disk and net run natively (guests/virtio) and are "n/a" in VM
modes until the hypervisor gives VMs virtio devices.
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

from rvh.errors import ConfigError, RvhError

MODES = ("native", "hw", "trap", "pv")
VM_MODES = ("hw", "trap", "pv")
# class -> guest of guests/bench/overhead (None: the guests/virtio I/O benchmarks)
CLASSES = ("cpu", "priv", "ram", "disk", "net")
IO = ("disk", "net")
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
# the I/O phases of guests/virtio/blkbench and netbench: (bytes or frames per phase, unit)
BLK_PHASE_KIB = 4 * (32 << 20) // 1024
IO_PHASES = {
    "read-4k": (BLK_PHASE_KIB, "instructions/KiB"),
    "write-4k": (BLK_PHASE_KIB, "instructions/KiB"),
    "read-64k": (BLK_PHASE_KIB, "instructions/KiB"),
    "write-64k": (BLK_PHASE_KIB, "instructions/KiB"),
    "net-64": (300_000, "instructions/frame"),
    "net-1500": (150_000, "instructions/frame"),
}
NET_MACS = ("52:54:00:12:34:01", "52:54:00:12:34:02")


@dataclass(frozen=True)
class RunKey:
    """One run: a class of benchmarks in one mode (``repeat``: which run of it)."""

    klass: str
    mode: str
    repeat: int = 0

    def order(self) -> tuple[int, int, int]:
        """The merge order: the seed's class order, then native, hw, trap, pv."""
        return (CLASSES.index(self.klass), MODES.index(self.mode), self.repeat)


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


def _run_io(key: RunKey) -> RunResult:
    names = [
        n for n in IO_PHASES if n.startswith("net" if key.klass == "net" else ("read", "write"))
    ]
    if key.mode != "native":
        note = "the hypervisor gives VMs no virtio devices yet"
        return RunResult(
            key,
            [
                Row(key.klass, name, key.mode, None, IO_PHASES[name][1], status="n/a", note=note)
                for name in names
            ],
        )
    from rvh.bench.phases import run_phases
    from rvh.config import MachineConfig

    build = guests_build()
    with tempfile.TemporaryDirectory(prefix="rvh-overhead-") as tmp:
        if key.klass == "disk":
            image = Path(tmp) / "bench.img"
            mkimage = build.parent / "virtio" / "mkimage.py"
            subprocess.run(
                [sys.executable, str(mkimage), str(image), "--size", "32M", "--id", "2"],
                check=True,
                capture_output=True,
            )
            config = MachineConfig(drives=[f"file={image},format=raw"])
            phases = run_phases(build / "virtio" / "blkbench.elf", sbi=True, config=config)
        else:
            config = MachineConfig(netdevs=[f"hub,id=h0,mac={mac}" for mac in NET_MACS])
            phases = run_phases(build / "virtio" / "netbench.elf", sbi=True, config=config)
    rows = []
    for phase in phases:
        if phase.name not in IO_PHASES:
            continue
        work, unit = IO_PHASES[phase.name]
        rows.append(
            Row(
                key.klass,
                phase.name,
                key.mode,
                phase.instructions / work,
                unit,
                host_ns=phase.seconds / work * 1e9,
            )
        )
    return RunResult(key, rows)


# ---- the matrix ----------------------------------------------------------------------------
def plan(modes: Sequence[str], classes: Sequence[str] = CLASSES, repeats: int = 1) -> list[RunKey]:
    return [
        RunKey(klass, mode, repeat)
        for klass in classes
        for mode in modes
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
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        # pure=False: a run is an experiment, never served from Dask's cache
        futures = [
            client.submit(task, key, key=f"overhead-{key.klass}-{key.mode}", pure=False)
            for key in keys
        ]
        by_future = dict(zip(futures, keys, strict=True))
        results = []
        for future in as_completed(futures):
            results.append(future.result())
            if progress:
                progress(by_future[future])
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def merge(results: Iterable[RunResult]) -> list[Row]:
    """The rows of every run in run-key order, with overhead vs native filled in.  Repeated
    runs of a key become one row: their host times give the median, and so do their counts
    for the I/O classes (whose devices keep host time); the other classes' counts are
    deterministic and must agree."""
    ordered = sorted(results, key=lambda r: r.key.order())
    rows: list[Row] = []
    repeats: dict[tuple[str, str, str], list[Row]] = {}
    for result in ordered:
        for row in result.rows:
            same = repeats.setdefault((row.klass, row.bench, row.mode), [])
            if not same:
                rows.append(row)
            elif same[0].value != row.value and row.status == "ok" and row.klass not in IO:
                same[0].status = "failed"
                same[0].note = f"runs disagree: {same[0].value} and {row.value}"
            same.append(row)
    for row in rows:
        same = repeats[(row.klass, row.bench, row.mode)]
        times = [r.host_ns for r in same if r.host_ns]
        if times:
            row.host_ns = round(statistics.median(times), 1)
        values = [r.value for r in same if r.value is not None]
        if row.klass in IO and values:
            row.value = statistics.median(values)
    native = {(r.klass, r.bench): r for r in rows if r.mode == "native" and r.value}
    for row in rows:
        base = native.get((row.klass, row.bench))
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


def summary_table(rows: list[Row], modes: Sequence[str]) -> list[list[str]]:
    """The seed's shape: one line per class, one column per mode (the range of the class's
    benchmarks' overheads vs native), and the handout's range beside them."""
    table = [["class", *modes, "seed"]]
    for klass in CLASSES:
        of_class = [r for r in rows if r.klass == klass]
        if not of_class:
            continue
        cells = [_cell([r for r in of_class if r.mode == mode]) for mode in modes]
        table.append([klass, *cells, SEED_RANGES[klass]])
    return table


def detail_table(rows: list[Row], modes: Sequence[str]) -> list[list[str]]:
    """Every benchmark: its cost per operation in each mode, exits per op in VM modes."""
    table = [["class", "bench", "unit", *modes]]
    benches: dict[tuple[str, str], dict[str, Row]] = {}
    for row in rows:
        if row.bench == "-":
            continue
        benches.setdefault((row.klass, row.bench), {})[row.mode] = row
    for (klass, bench), by_mode in benches.items():
        cells = []
        for mode in modes:
            found = by_mode.get(mode)
            if found is None:
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
        table.append([klass, bench, unit, *cells])
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
    figure, axes = plt.subplots(1, len(classes), figsize=(4.5 * len(classes), 4.5), squeeze=False)
    for axis, klass in zip(axes[0], classes, strict=True):
        benches = list(dict.fromkeys(r.bench for r in rows if r.klass == klass and r.value))
        measured_modes = [
            m for m in modes if any(r.mode == m and r.value for r in rows if r.klass == klass)
        ]
        width = 0.8 / max(len(measured_modes), 1)
        for index, mode in enumerate(measured_modes):
            values = []
            for bench in benches:
                found = [
                    r.value
                    for r in rows
                    if r.klass == klass and r.bench == bench and r.mode == mode
                ]
                values.append(found[0] if found and found[0] else math.nan)
            positions = [
                i + (index - (len(measured_modes) - 1) / 2) * width for i in range(len(benches))
            ]
            axis.bar(positions, values, width, label=mode)
        axis.set_xticks(range(len(benches)), benches, rotation=45, ha="right")
        axis.set_title(klass)
        axis.set_ylabel("instructions per operation")
        if klass in LOG_SCALE_CLASSES:
            axis.set_yscale("log")
        axis.legend()
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

    keys = plan(modes, repeats=1 if quick else FULL_REPEATS)
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
    for row in rows:
        if row.status in ("unsupported", "failed") and row.note:
            print(f"{row.klass} {row.mode}: {row.status}: {row.note}")
    if json_path:
        write_json(rows, json_path)
    if plot_path:
        plot(rows, modes, plot_path)
    failed = [row for row in rows if row.status == "failed"]
    return 1 if failed else 0

"""``rvh bench virtio``: what a guest sees of the virtio devices, per wall-clock second.

guests/virtio/blkbench reads and writes 32 MiB with 4 KiB requests (4 passes) and 64 KiB
requests (16 passes), up to 256 in flight; guests/virtio/netbench sends 300,000 64-byte and
150,000 1500-byte frames from one NIC to another on a hub.  Each phase is timed by its
``phase:`` marker.

``rvh bench virtio --vm`` runs the same guests natively and as a VM of rvh's hypervisor in
each mode over each I/O path it has (hw: emulated, pv, passthrough; trap and pv: emulated, a pv
VM running the guests' pv builds) and prints one table: MB/s, frames/s, and the VM's exits per
request (descriptor chains the machine devices served, or requests of its pv devices), then
what those exits were.  The pv I/O rows run guests/virtio/pvblkbench and pvnetbench, the same
workloads through the platform I/O extension (natively on the built-in SBI's, as a VM on the
hypervisor's).  ``--rows`` picks rows (``native,hw-passthrough``); with ``--repeat N`` the rows
take turns run by run, so that a machine shared with other jobs slows them alike, and a last
table gives each row's medians as a percentage of native's.
"""

from __future__ import annotations

import statistics
import tempfile
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rvh.bench.mips import guests_dir
from rvh.bench.phases import bench_phases, disk_image
from rvh.config import MachineConfig
from rvh.errors import ConfigError

if TYPE_CHECKING:
    from rvh.machine import Machine

# blkbench's passes over its 32 MiB region: 4 in the 4 KiB phases (its default), 16 in the
# 64 KiB ones (its passes64= boot argument), so that those last about as long (a quarter of a
# second natively, against 60 ms with 4: a shared host's hiccup was a tenth of the figure)
BLK_REGION = 32 << 20
BLK_PASSES, BLK_PASSES_64 = 4, 16
BLK_BOOTARGS = f"passes64={BLK_PASSES_64}"
BLK_BYTES = {
    "read-4k": BLK_PASSES * BLK_REGION,
    "write-4k": BLK_PASSES * BLK_REGION,
    "read-64k": BLK_PASSES_64 * BLK_REGION,
    "write-64k": BLK_PASSES_64 * BLK_REGION,
}
NET_FRAMES = {"net-64": 300_000, "net-1500": 150_000}  # FRAMES_64, FRAMES_1500 in netbench.c


# (--rows name, label, --guest suboptions or None for native, the guests' build directory,
# whether the disks and NICs are the platform I/O extension's (io=pv, the pv I/O guests) or
# virtio's)
VM_CONFIGS = (
    ("native", "native", None, "virtio", False),
    ("native-pv", "native, pv I/O", None, "virtio", True),
    ("hw-emulated", "hw, emulated", "virt=hw,io=emulated", "virtio", False),
    ("hw-pv", "hw, pv I/O", "virt=hw,io=pv", "virtio", True),
    ("hw-passthrough", "hw, passthrough", "virt=hw,io=passthrough", "virtio", False),
    ("trap-emulated", "trap, emulated", "virt=trap,io=emulated", "virtio", False),
    ("pv-emulated", "pv, emulated", "virt=pv,io=emulated", "virtio-pv", False),
)
ROW_NAMES = tuple(config[0] for config in VM_CONFIGS)


def parse_rows(text: str | None) -> list[str]:
    """``--rows``: names from ROW_NAMES, comma-separated, in the table's order (None: all)."""
    if text is None:
        return list(ROW_NAMES)
    rows = [name.strip() for name in text.split(",") if name.strip()]
    for name in rows:
        if name not in ROW_NAMES:
            raise ConfigError(f"--rows: {name}: use {', '.join(ROW_NAMES)}")
    if not rows:
        raise ConfigError(f"--rows: give at least one of {', '.join(ROW_NAMES)}")
    return [name for name in ROW_NAMES if name in rows]


# what a VM's exits were, per request: (column, the stats counters it adds up)
EXIT_KINDS = (
    ("virtio", ("virtio_mmio",)),
    ("plic", ("plic_mmio",)),
    ("host irq", ("interrupts",)),
    ("csr+sret", ("csr", "sret")),
    ("wfi", ("wfi",)),
    ("sbi", ("ecall",)),
)
BLK_PHASES = ("read-4k", "write-4k", "read-64k", "write-64k")


def _chains(machine: Machine) -> int:
    """Descriptor chains every virtio device served (requests, frames sent and received), and
    the requests of the pv devices (a frame is a transmit and a receive request there too)."""
    chains = sum(
        queue.statistics()["chains"] for device in machine.virtio for queue in device.queues
    )
    return chains + sum(device.stats["requests"] for device in machine.pv_devices)


Counts = list[tuple[dict[str, int], int]]  # (the VM's counters, chains) of each run


def _record(counts: Counts, is_vm: bool, machine: Machine) -> None:
    from rvh.hyp import STATS_ADDRESS, STATS_SIZE, read_stats

    counters: dict[str, int] = {}
    if is_vm:
        counters = read_stats(machine.bus.read_bytes(STATS_ADDRESS, STATS_SIZE))[0].counters
    counts.append((counters, _chains(machine)))


def _per_request(counts: Counts, names: tuple[str, ...] = ("exits",)) -> str:
    chains = sum(c[1] for c in counts)
    exits = sum(c[0].get(name, 0) for c in counts for name in names)
    return f"{exits / chains:.2f}" if chains else "-"


def bench_virtio_vm(repeat: int = 1, rows: list[str] | None = None) -> int:
    """Native and each mode x path in one table (``rvh bench virtio --vm``); ``rows``: the
    names of ROW_NAMES to run (default all)."""
    from rvh.bench.phases import run_phases

    build = guests_dir()
    configs = [config for config in VM_CONFIGS if rows is None or config[0] in rows]
    rates: dict[str, dict[str, list[float]]] = {config[0]: {} for config in configs}
    counts: dict[str, tuple[Counts, Counts]] = {config[0]: ([], []) for config in configs}
    with tempfile.TemporaryDirectory(prefix="rvh-bench-") as tmp:
        image = Path(tmp) / "bench.img"
        # run by run, every row takes its turn: a busy spell of the host hits all rows alike
        for _ in range(repeat):
            for name, _label, vm, guests, pv in configs:
                interface = ",if=pv" if pv else ""
                blk_guest, net_guest = (
                    ("pvblkbench", "pvnetbench") if pv else ("blkbench", "netbench")
                )
                row_rates = rates[name]
                blk_counts, net_counts = counts[name]
                disk_image(image, 32)
                # natively the machine's devices; a VM's are its --guest suboptions
                config = MachineConfig(
                    drives=[] if vm else [f"file={image},format=raw{interface}"],
                    bootargs=None if vm else BLK_BOOTARGS,
                )
                for phase in run_phases(
                    build / guests / f"{blk_guest}.elf", sbi=True, config=config,
                    vm=f"{vm},drive={image},append={BLK_BOOTARGS}" if vm else None,
                    finished=partial(_record, blk_counts, vm is not None),
                ):  # fmt: skip
                    if phase.name in BLK_PHASES:
                        row_rates.setdefault(phase.name, []).append(
                            BLK_BYTES[phase.name] / phase.seconds / 1e6
                        )
                macs = ("52:54:00:12:34:01", "52:54:00:12:34:02")
                config = MachineConfig(
                    netdevs=[] if vm else [f"hub,id=h0,mac={mac}{interface}" for mac in macs]
                )
                for phase in run_phases(
                    build / guests / f"{net_guest}.elf", sbi=True, config=config,
                    vm=f"{vm},netdev=h0,netdev=h0" if vm else None,
                    finished=partial(_record, net_counts, vm is not None),
                ):  # fmt: skip
                    if phase.name in NET_FRAMES:
                        row_rates.setdefault(phase.name, []).append(
                            NET_FRAMES[phase.name] / phase.seconds
                        )
    table = []
    for name, label, vm, _, _ in configs:
        median = {phase: statistics.median(values) for phase, values in rates[name].items()}
        per_request = [
            _per_request(row_counts) if vm is not None else "-" for row_counts in counts[name]
        ]
        kinds = [
            [_per_request(row_counts, names) for _, names in EXIT_KINDS]
            for row_counts in counts[name]
        ]
        table.append((name, label, median, per_request, kinds if vm is not None else None))
    phases = (*BLK_PHASES, *NET_FRAMES)
    print(f"rvh bench virtio --vm: {repeat} run(s) each, medians (wall time)")
    header = "  ".join(f"{phase:>10}" for phase in phases)
    print(f"  {'':<16}{header}  {'exits/request':>17}")
    units = [f"{'MB/s':>10}" for _ in BLK_PHASES] + [f"{'frames/s':>10}" for _ in NET_FRAMES]
    print(f"  {'':<16}" + "  ".join(units) + f"  {'blk':>8} {'net':>8}")
    for _, label, median, per_request, _ in table:
        cells = [f"{median.get(phase, 0):10.1f}" for phase in BLK_PHASES]
        cells += [f"{median.get(phase, 0):10,.0f}" for phase in NET_FRAMES]
        print(f"  {label:<16}" + "  ".join(cells) + f"  {per_request[0]:>8} {per_request[1]:>8}")
    if any(by_kind is not None for *_, by_kind in table):
        print("exits per request, by kind (blk / net)")
        print(f"  {'':<16}" + "  ".join(f"{kind:>13}" for kind, _ in EXIT_KINDS))
        for _, label, _, _, by_kind in table:
            if by_kind is not None:
                cells = [f"{blk:>6}/{net:<6}" for blk, net in zip(*by_kind, strict=True)]
                print(f"  {label:<16}" + "  ".join(cells))
    native = next((median for name, _, median, _, _ in table if name == "native"), None)
    if native is not None and len(table) > 1:
        print("per cent of native (the medians above)")
        print(f"  {'':<16}{header}")
        for name, label, median, _, _ in table:
            if name != "native":
                cells = [
                    f"{100 * median.get(phase, 0) / native[phase]:9.0f}%"
                    if native.get(phase)
                    else f"{'-':>10}"
                    for phase in phases
                ]
                print(f"  {label:<16}" + "  ".join(cells))
    return 0


def bench_virtio(repeat: int = 3) -> int:
    build = guests_dir()
    with tempfile.TemporaryDirectory(prefix="rvh-bench-") as tmp:
        image = Path(tmp) / "bench.img"

        def blk_config() -> MachineConfig:
            # blkbench writes the disk and checks what it reads: a fresh image every run
            disk_image(image, 32)
            return MachineConfig(drives=[f"file={image},format=raw"], bootargs=BLK_BOOTARGS)

        bench_phases(
            build / "virtio" / "blkbench.elf",
            sbi=True,
            repeat=repeat,
            baseline=None,
            title="rvh bench virtio (blk)",
            config=blk_config,
            work={name: (BLK_BYTES[name], "bytes") for name in BLK_PHASES},
        )
    mac = ["52:54:00:12:34:01", "52:54:00:12:34:02"]
    bench_phases(
        build / "virtio" / "netbench.elf",
        sbi=True,
        repeat=repeat,
        baseline=None,
        title="rvh bench virtio (net)",
        config=lambda: MachineConfig(netdevs=[f"hub,id=h0,mac={m}" for m in mac]),
        work={name: (frames, "frames") for name, frames in NET_FRAMES.items()},
    )
    return 0

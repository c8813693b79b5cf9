"""``rvh bench linux``: boot the Linux guest (guests/linux) to its /init and to power-off on rvh
and on QEMU 7.2, side by side.

Both boot the same Debian kernel Image and initramfs with the same command line.  rvh runs on
its built-in SBI (``--firmware`` picks OpenSBI instead) and reports, for the moment /init prints
its marker and for power-off: instructions, wall seconds, MIPS; then where the time went (the
kernel's exits by cause, the instructions that took the general path).  ``--tier`` picks the
interpreter, the translating tier (rvh/tier; its seconds include compiling, in its worker
thread) or both, a set of rows each.  QEMU runs under
OpenSBI (its own default firmware) and reports the wall seconds to the same two points, read
from its console as it prints.  Each figure is the median of ``repeat`` runs.

With ``--vm`` it boots the same kernel natively and as the only VM of rvh's hypervisor in hw
and trap mode (``--hyp --guest Image,virt=...``, 256 MiB, no devices), and reports the same two
points for each, the instructions the hypervisor (HS-mode) retired, and each VM's exits by
cause from the hypervisor's stats page.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rvh.bench.mips import guests_dir
from rvh.config import MachineConfig
from rvh.errors import RvhError

if TYPE_CHECKING:
    from rvh.machine import Machine

INIT_MARKER = b"RVH-LINUX-INIT"
BOOTARGS = "console=ttyS0"
QEMU = "qemu-system-riscv64"
QEMU_FIRMWARE = Path("/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin")
MAX_INSTRUCTIONS = 8_000_000_000
# the RTC's date at power-on: fixed, because Linux reads it at boot and its instruction count
# then depends on the date (by a few per cent: 1,149 M and 1,155 M to /init in two runs a
# minute apart on the host's clock, 1,117 M in every run from this date), so rows measured
# from the host's clock could not be compared or repeated
RTC_BASE_NS = 1_700_000_000 * 10**9


@dataclass
class RvhBoot:
    init_instructions: int
    init_seconds: float
    instructions: int
    seconds: float
    status: int
    exits: Counter[str] = field(default_factory=Counter)
    general_path: int = 0
    tier: dict[str, int | float] = field(default_factory=dict)


def linux_files() -> tuple[Path, Path]:
    image, initrd = guests_dir() / "linux" / "Image", guests_dir() / "linux" / "initramfs.cpio"
    for path in (image, initrd):
        if not path.exists():
            raise RvhError(f"{path} not built: run 'make guests' first (guests/linux)")
    return image, initrd


class InitWatch:
    """The console sink of a timed boot: notes (instructions, seconds since ``start``) when
    /init's marker first appears, keeping only a marker's length of output between writes."""

    def __init__(self) -> None:
        self.machine: Machine | None = None
        self.start = 0.0
        self.at_init: tuple[int, float] | None = None
        self._seen = bytearray()

    def __call__(self, data: bytes) -> None:
        if self.at_init is not None or self.machine is None:
            return
        self._seen.extend(data)
        if INIT_MARKER in self._seen:
            self.at_init = (self.machine.instructions, time.perf_counter() - self.start)
        else:
            del self._seen[: -len(INIT_MARKER)]


def boot_rvh(harts: int, firmware: str | None, tier: str = "interp") -> RvhBoot:
    from rvh.boot import BuiltinSbiBoot, FirmwareBoot
    from rvh.cpu import layout as L
    from rvh.machine import Machine

    image, initrd = linux_files()
    watch = InitWatch()
    config = MachineConfig(
        harts=harts,
        max_instructions=MAX_INSTRUCTIONS,
        bootargs=BOOTARGS,
        tier=tier,
        rtc_base_ns=RTC_BASE_NS,
    )
    machine = watch.machine = Machine(config, output=watch)
    if firmware is None:
        machine.boot(BuiltinSbiBoot(str(image), str(initrd)))
    else:
        machine.boot(FirmwareBoot(firmware, str(image), str(initrd)))
    watch.start = time.perf_counter()
    result = machine.run_sync()
    if machine.tier is not None:
        machine.tier.close()  # as rvh run does: the code cache gets O2 code of the hot regions
    if watch.at_init is None:
        raise RvhError(f"rvh bench linux: /init never ran on rvh ({result.reason})")
    return RvhBoot(
        *watch.at_init,
        result.instructions,
        result.seconds,
        result.status,
        Counter(machine.exit_counts),
        sum(int(hart.state[L.GENERAL_PATH]) for hart in machine.harts),
        machine.tier.statistics() if machine.tier is not None else {},
    )


@dataclass
class VmBoot:
    boot: RvhBoot
    hypervisor_instructions: int  # retired in HS-mode: the hypervisor's share
    exits: dict[str, int]  # the VM's counters (rvh/hyp.py VM_COUNTERS), nonzero ones
    scause: dict[int, int]


def boot_vm(virt: str) -> VmBoot:
    """The Linux guest as the only VM of rvh's hypervisor, in mode ``virt``."""
    from rvh.boot import HypervisorBoot
    from rvh.hyp import STATS_ADDRESS, STATS_SIZE, GuestSpec, host_memory_needed, read_stats
    from rvh.machine import Machine

    image, initrd = linux_files()
    specs = [GuestSpec.parse(f"{image},initrd={initrd},mem=256M,virt={virt},append={BOOTARGS}")]
    watch = InitWatch()
    config = MachineConfig(
        memory=host_memory_needed(specs),
        max_instructions=MAX_INSTRUCTIONS,
        rtc_base_ns=RTC_BASE_NS,
    )
    machine = watch.machine = Machine(config, output=watch)
    machine.boot(HypervisorBoot(specs))
    watch.start = time.perf_counter()
    result = machine.run_sync()
    if machine.tier is not None:
        machine.tier.close()  # as rvh run does: the code cache gets O2 code of the hot regions
    if watch.at_init is None:
        raise RvhError(f"rvh bench linux: /init never ran in the {virt} VM ({result.reason})")
    (stats,) = read_stats(machine.bus.read_bytes(STATS_ADDRESS, STATS_SIZE))
    boot = RvhBoot(*watch.at_init, result.instructions, result.seconds, result.status)
    return VmBoot(
        boot,
        machine.retired_by_level()["HS"],
        {name: count for name, count in stats.counters.items() if count},
        stats.scause,
    )


def bench_linux_vm(*, repeat: int = 1) -> int:
    """Native, hw VM and trap VM boots of the Linux guest side by side (``--vm``)."""
    linux_files()
    print(
        "rvh bench linux --vm: Debian's kernel + busybox initramfs, natively on the built-in "
        f"SBI and as the hypervisor's only VM (hw, trap), {repeat} run(s), median reported",
        flush=True,
    )
    from rvh.bench.mips import run_rvh

    run_rvh(guests_dir() / "hello" / "hello.elf")  # load the compiled kernel before timing
    natives = [boot_rvh(1, None) for _ in range(repeat)]
    vms = {virt: [boot_vm(virt) for _ in range(repeat)] for virt in ("hw", "trap")}
    native = sorted(natives, key=lambda b: b.seconds)[len(natives) // 2]
    print()
    print(
        f"{'run':<8} {'to /init':>14} {'s':>7} {'to power-off':>14} {'s':>7} {'MIPS':>6} "
        f"{'HS share':>9} {'exits':>10}"
    )

    def row(what: str, boot: RvhBoot, hs: int | None, exits: int | None) -> str:
        mips = boot.instructions / boot.seconds / 1e6
        share = f"{hs / boot.instructions:8.1%}" if hs is not None else f"{'-':>8}"
        count = f"{exits:>10,}" if exits is not None else f"{'-':>10}"
        return (
            f"{what:<8} {boot.init_instructions:>14,} {boot.init_seconds:7.1f} "
            f"{boot.instructions:>14,} {boot.seconds:7.1f} {mips:6.1f} {share} {count}"
        )

    print(row("native", native, None, None))
    middles = {}
    for virt, boots in vms.items():
        middle = sorted(boots, key=lambda b: b.boot.seconds)[len(boots) // 2]
        middles[virt] = middle
        print(row(virt, middle.boot, middle.hypervisor_instructions, middle.exits["exits"]))
    for virt, middle in middles.items():
        print()
        counters = ", ".join(
            f"{name} {count:,}" for name, count in middle.exits.items() if name != "exits"
        )
        scause = ", ".join(f"{cause}: {count:,}" for cause, count in middle.scause.items())
        print(f"{virt} VM exits: {counters}")
        print(f"{virt} VM exits by scause: {scause}")
    statuses = {b.status for b in natives} | {b.boot.status for v in vms.values() for b in v}
    if statuses != {0}:
        print(f"exit status:        {sorted(statuses)} (expected 0: power-off)")
        return 1
    return 0


def boot_qemu(harts: int) -> tuple[float, float, int]:
    """Seconds to the init marker and to QEMU's exit, and its exit status."""
    image, initrd = linux_files()
    command = [
        QEMU, "-M", "virt", "-m", "256M", "-smp", str(harts), "-nographic", "-no-reboot",
        "-bios", str(QEMU_FIRMWARE), "-kernel", str(image), "-initrd", str(initrd),
        "-append", BOOTARGS,
    ]  # fmt: skip
    start = time.perf_counter()
    init_seconds = None
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if init_seconds is None and INIT_MARKER in line:
                init_seconds = time.perf_counter() - start
        status = process.wait(timeout=300)
    seconds = time.perf_counter() - start
    if init_seconds is None:
        raise RvhError(f"rvh bench linux: /init never ran on QEMU (exit status {status})")
    return init_seconds, seconds, status


def bench_linux(
    *,
    repeat: int = 1,
    harts: int = 1,
    qemu: bool = True,
    firmware: str | None = None,
    tiers: tuple[str, ...] = ("interp",),
) -> int:
    linux_files()
    have_qemu = qemu and shutil.which(QEMU) is not None and QEMU_FIRMWARE.exists()
    on = f"OpenSBI ({firmware})" if firmware else "the built-in SBI"
    print(
        f"rvh bench linux: Debian's kernel + busybox initramfs, {harts} hart(s), rvh on {on}, "
        f"{repeat} run(s), median reported" + ("" if have_qemu else " (QEMU not run)"),
        flush=True,
    )
    from rvh.bench.mips import run_rvh

    for tier in tiers:  # load the compiled kernel (each tier's) before timing
        run_rvh(guests_dir() / "hello" / "hello.elf", tier=tier)
    boots = {tier: [boot_rvh(harts, firmware, tier) for _ in range(repeat)] for tier in tiers}
    qemu_boots = [boot_qemu(harts) for _ in range(repeat)] if have_qemu else []

    def row(what: str, instructions: int, seconds: float, qemu_seconds: float | None) -> str:
        mips = instructions / seconds / 1e6
        q = f"{qemu_seconds:8.2f}" if qemu_seconds is not None else f"{'-':>8}"
        ratio = f"{seconds / qemu_seconds:8.1f}x" if qemu_seconds else f"{'-':>9}"
        return f"{what:<18} {instructions:>14,} {seconds:8.2f} {mips:8.1f} {q} {ratio}"

    print()
    print(f"{'to':<18} {'instructions':>14} {'rvh s':>8} {'MIPS':>8} {'QEMU s':>8} {'rvh/QEMU':>9}")
    init_q = statistics.median(q[0] for q in qemu_boots) if qemu_boots else None
    end_q = statistics.median(q[1] for q in qemu_boots) if qemu_boots else None
    middles = {}
    for tier, runs in boots.items():
        middle = middles[tier] = sorted(runs, key=lambda b: b.seconds)[len(runs) // 2]
        init_seconds = statistics.median(b.init_seconds for b in runs)
        seconds = statistics.median(b.seconds for b in runs)
        suffix = f" ({tier})" if len(tiers) > 1 else ""
        print(row("/init" + suffix, middle.init_instructions, init_seconds, init_q))
        print(row("power-off" + suffix, middle.instructions, seconds, end_q))
    for tier, middle in middles.items():
        print()
        if len(tiers) > 1:
            print(f"{tier}:")
        exits = ", ".join(f"{cause} {count:,}" for cause, count in middle.exits.most_common())
        print(f"exits by cause:     {exits}")
        share = middle.general_path / middle.instructions if middle.instructions else 0.0
        print(f"general path:       {middle.general_path:,} instructions ({share:.2%})")
        if middle.tier:
            t = middle.tier
            translated = int(t["instructions"]) / middle.instructions
            print(
                f"translated code:    {int(t['instructions']):,} instructions ({translated:.1%}), "
                f"{t['blocks_compiled']} blocks compiled in {t['compile_seconds']:.1f} s, "
                f"{t['page_flushes']} code pages dropped, {t['flushes']} whole flushes"
            )
    statuses = {b.status for runs in boots.values() for b in runs} | {q[2] for q in qemu_boots}
    if statuses != {0}:
        print(f"exit status:        {sorted(statuses)} (expected 0: power-off)")
        return 1
    return 0

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
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from rvh.bench.mips import guests_dir
from rvh.config import MachineConfig
from rvh.errors import RvhError

INIT_MARKER = b"RVH-LINUX-INIT"
BOOTARGS = "console=ttyS0"
QEMU = "qemu-system-riscv64"
QEMU_FIRMWARE = Path("/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin")
MAX_INSTRUCTIONS = 8_000_000_000


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


def boot_rvh(harts: int, firmware: str | None, tier: str = "interp") -> RvhBoot:
    from rvh.boot import BuiltinSbiBoot, FirmwareBoot
    from rvh.cpu import layout as L
    from rvh.machine import Machine

    image, initrd = linux_files()
    seen = bytearray()
    at_init: list[tuple[int, float]] = []
    machine: Machine

    def output(data: bytes) -> None:
        if not at_init:
            seen.extend(data)
            if INIT_MARKER in seen:
                at_init.append((machine.instructions, time.perf_counter() - start))
            else:
                del seen[: -len(INIT_MARKER)]

    config = MachineConfig(
        harts=harts, max_instructions=MAX_INSTRUCTIONS, bootargs=BOOTARGS, tier=tier
    )
    machine = Machine(config, output=output)
    if firmware is None:
        machine.boot(BuiltinSbiBoot(str(image), str(initrd)))
    else:
        machine.boot(FirmwareBoot(firmware, str(image), str(initrd)))
    start = time.perf_counter()
    result = machine.run_sync()
    if not at_init:
        raise RvhError(f"rvh bench linux: /init never ran on rvh ({result.reason})")
    return RvhBoot(
        at_init[0][0],
        at_init[0][1],
        result.instructions,
        result.seconds,
        result.status,
        Counter(machine.exit_counts),
        sum(int(hart.state[L.GENERAL_PATH]) for hart in machine.harts),
        machine.tier.statistics() if machine.tier is not None else {},
    )


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

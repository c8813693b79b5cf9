"""Phase timing: run a guest that prints ``phase: NAME`` lines and time each phase.

The guest marks where each phase starts (and ``phase: end``); the emulator notes the host
clock and the instructions retired whenever a marker line is complete on the console, so each
phase gets its own MIPS.  Two phases of the same workload in one run make a fair ratio on a
noisy machine: ``rvh bench mmu`` (smode/bench_sv39: bare vs Sv39) and ``rvh bench hext``
(hext/hbench: native S-mode vs VS-mode with both stages on).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rvh.config import MachineConfig
from rvh.errors import RvhError

if TYPE_CHECKING:
    from rvh.machine import Machine

MARKER = b"phase: "


@dataclass
class Phase:
    name: str
    instructions: int
    seconds: float

    @property
    def mips(self) -> float:
        return self.instructions / self.seconds / 1e6 if self.seconds else 0.0


def disk_image(path: Path, megabytes: int) -> None:
    """A fresh disk image of mkimage.py's pattern id 2, which blkbench checks on its first
    read; a failure (a full disk, say) is one line, not a traceback."""
    from rvh.bench.mips import guests_dir

    mkimage = guests_dir().parent / "virtio" / "mkimage.py"
    done = subprocess.run(
        [sys.executable, str(mkimage), str(path), "--size", f"{megabytes}M", "--id", "2"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [f"status {done.returncode}"])[-1]
        raise RvhError(f"{path}: the benchmark's disk image could not be made ({why})")
    # on the disk before the run: else the host's writeback of the fresh image overlaps the
    # first phase (read-4k), which then moved by a third from run to run
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_phases(
    elf: Path,
    *,
    sbi: bool,
    config: MachineConfig | None = None,
    vm: str | None = None,
    finished: Callable[[Machine], None] | None = None,
) -> list[Phase]:
    """Run ``elf`` natively (bare, or on the built-in SBI with ``sbi``) or, with ``vm`` (a
    ``--guest`` SPEC's suboptions, e.g. ``io=passthrough``), as the one VM of rvh's
    hypervisor; ``finished(machine)`` sees the machine after the run."""
    from rvh.machine import Machine

    machine: Machine
    marks: list[tuple[str, float, int]] = []
    line = bytearray()

    def output(data: bytes) -> None:
        for byte in data:
            if byte == ord("\n"):
                if line.startswith(MARKER):
                    name = line[len(MARKER) :].decode(errors="replace").strip()
                    marks.append((name, time.perf_counter(), machine.instructions))
                line.clear()
            else:
                line.append(byte)

    config = config or MachineConfig()
    config.firmware_traps = sbi
    specs = []
    if vm is not None:
        from rvh.boot import HypervisorBoot
        from rvh.hyp import GuestSpec, attach_vm_devices, host_memory_needed

        specs = [GuestSpec.parse(f"{elf},{vm}" if vm else str(elf))]
        attach_vm_devices(config, specs)
        config.memory = max(config.memory, host_memory_needed(specs))
    machine = Machine(config, output=output)
    if specs:
        machine.boot(HypervisorBoot(specs))
    elif sbi:
        machine.load_sbi_payload(str(elf))
    else:
        machine.load(str(elf))
    result = machine.run_sync()
    if marks and marks[-1][0] != "end":
        marks.append(("end", time.perf_counter(), machine.instructions))  # the run's end
    if result.status != 0:
        raise RvhError(f"{elf}: exited with status {result.status} ({result.reason})")
    if finished is not None:
        finished(machine)
    phases = []
    for (name, start, first), (_, end, last) in zip(marks, marks[1:], strict=False):
        phases.append(Phase(name, last - first, end - start))
    if not phases:
        raise RvhError(f"{elf}: printed no 'phase:' markers")
    return phases


def cost(mips: float, base: float) -> str:
    """The slowdown of ``mips`` against ``base`` as a signed percentage; a difference that
    rounds to nothing is "+0.0%", never "-0.0%"."""
    percent = round(100 * (1 - mips / base), 1)
    return f"{percent + 0.0:+.1f}%"  # adding 0.0 turns -0.0 into 0.0


def bench_phases(
    elf: Path,
    *,
    sbi: bool,
    repeat: int,
    baseline: str | None,
    title: str,
    config: Callable[[], MachineConfig] | None = None,
    work: dict[str, tuple[float, str]] | None = None,
) -> int:
    """Run ``elf`` ``repeat`` times and print each phase's median MIPS; ``work`` gives, per
    phase, the amount of work it does and its unit (bytes or frames) for a rate per wall
    second; ``baseline`` names the phase the others are compared with."""
    if not elf.exists():
        raise RvhError(f"{elf} not built: run 'make guests' first")
    runs = [run_phases(elf, sbi=sbi, config=config() if config else None) for _ in range(repeat)]
    names = [phase.name for phase in runs[0]]
    print(f"{title}: {elf.name}, {repeat} run(s), median MIPS per phase")
    medians = {}
    for index, name in enumerate(names):
        mips = statistics.median(run[index].mips for run in runs)
        instructions = runs[0][index].instructions
        medians[name] = mips
        rate = ""
        if work and name in work:
            amount, unit = work[name]
            per_second = statistics.median(amount / run[index].seconds for run in runs)
            rate = (
                f"  {per_second / 1e6:9.1f} MB/s"
                if unit == "bytes"
                else f"  {per_second:11,.0f} {unit}/s"
            )
        print(f"  {name:<10} {instructions:>13,} instructions  {mips:8.1f} MIPS{rate}")
    base = medians.get(baseline) if baseline else None
    if base:
        for name, mips in medians.items():
            if name != baseline:
                print(
                    f"  {name}/{baseline} = {mips / base:.3f} (cost of {name}: {cost(mips, base)})"
                )
    return 0

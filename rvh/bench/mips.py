"""``rvh bench mips``: CPU speed of rvh on the guests/bench workloads, beside QEMU 7.2.

Both emulators run the same ELF in the same invocation, so the ratio holds on a noisy shared
machine even when absolute numbers drift; each of rvh's figures is the median of ``repeat``
runs.  rvh's MIPS is steady state (the kernel's own run time); QEMU's is its process time
minus its start-up (measured on the hello guest), both the fastest of ``QEMU_RUNS`` runs.
The instruction count of a workload is rvh's, which is the same program's count on QEMU.
Numba's compile time is measured on a cold cache (a fresh cache directory) and on a warm
one, in child processes.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from rvh.config import MachineConfig
from rvh.errors import RvhError

WORKLOADS = ("intmem", "recursion", "bytes")
# the jit tier starting with its code cache filled by an earlier run of the same workload
# (the plain jit rows compile in every run: --tier-cache off)
CACHED = "jit+cache"
QEMU = "qemu-system-riscv64"
QEMU_RUNS = 7  # runs of QEMU per workload (and of its hello guest), the fastest counted
QEMU_ARGS = ["-machine", "virt", "-bios", "none", "-m", "256", "-nographic", "-kernel"]


def guests_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "guests" / "build"


@dataclass
class Measurement:
    workload: str
    tier: str
    instructions: int
    rvh_seconds: float
    qemu_seconds: float | None
    output_matches: bool | None

    @property
    def rvh_mips(self) -> float:
        return self.instructions / self.rvh_seconds / 1e6

    @property
    def qemu_mips(self) -> float | None:
        if self.qemu_seconds is None or self.qemu_seconds <= 0:
            return None
        return self.instructions / self.qemu_seconds / 1e6


def run_rvh(
    elf: Path, max_instructions: int | None = None, tier: str = "interp", tier_cache: str = "off"
) -> tuple[int, float, bytes]:
    """Instructions, seconds and output of one run; with the jit tier the seconds include
    compiling the hot blocks (they are compiled during the run), unless ``tier_cache`` names
    a code cache an earlier run filled."""
    from rvh.machine import Machine

    output = bytearray()
    config = MachineConfig(max_instructions=max_instructions, tier=tier, tier_cache=tier_cache)
    machine = Machine(config, output=output.extend)
    machine.load(str(elf))
    result = machine.run_sync()
    if machine.tier is not None:
        machine.tier.close()  # no compiling left behind to slow the next run
    return result.instructions, result.seconds, bytes(output)


def run_qemu(elf: Path) -> tuple[float, bytes]:
    start = time.perf_counter()
    done = subprocess.run([QEMU, *QEMU_ARGS, str(elf)], capture_output=True, timeout=300)
    return time.perf_counter() - start, done.stdout


def compile_times() -> tuple[float, float]:
    """Seconds to import rvh and run the hello guest with a cold, then a warm, numba cache."""
    hello = guests_dir() / "hello" / "hello.elf"
    code = (
        "import time; t = time.perf_counter()\n"
        "from rvh.machine import Machine\n"
        f"m = Machine(output=lambda d: None); m.load({str(hello)!r}); m.run_sync()\n"
        "print(time.perf_counter() - t)\n"
    )
    with tempfile.TemporaryDirectory(prefix="rvh-cold-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        times = []
        for _ in range(2):
            done = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            times.append(float(done.stdout.strip().splitlines()[-1]))
    return times[0], times[1]


def bench_mips(
    *,
    quick: bool = False,
    qemu: bool = True,
    repeat: int = 3,
    measure_compile: bool = True,
    tiers: tuple[str, ...] = ("interp",),
) -> int:
    build = guests_dir()
    missing = [w for w in WORKLOADS if not (build / "bench" / f"{w}.elf").exists()]
    if missing:
        raise RvhError(f"bench guests not built ({', '.join(missing)}): run 'make guests' first")
    have_qemu = qemu and shutil.which(QEMU) is not None and not quick
    if quick:
        repeat = 1
    limit = 20_000_000 if quick else None
    if not qemu:
        without = " (QEMU not run: --no-qemu)"
    elif quick:
        without = " (QEMU not run: --quick is a smoke test, not a comparison)"
    elif not have_qemu:
        without = f" (QEMU not run: {QEMU} is not installed)"
    else:
        without = ""
    print(f"rvh bench mips: {repeat} run(s) per workload, median reported{without}", flush=True)
    for tier in tiers:  # load the compiled kernel (one per tier) before timing
        run_rvh(build / "hello" / "hello.elf", tier="jit" if tier == CACHED else tier)
    # QEMU's times are the fastest of QEMU_RUNS (at least): a run of QEMU 7.2 takes either
    # its time or about 55 ms more (its start-up and exit, at random: the hello guest's
    # 0.022 s is 0.075 s in one run of three here), which a median of three does not
    # remove and which, subtracted as start-up, once made bytes take 0.022 s instead of
    # 0.06.  The fastest run is QEMU at its best: the ratios are conservative for rvh
    qemu_runs_each = max(repeat, QEMU_RUNS)
    qemu_startup = 0.0
    if have_qemu:
        qemu_startup = min(
            run_qemu(build / "hello" / "hello.elf")[0] for _ in range(qemu_runs_each)
        )
    results = []
    for workload in WORKLOADS:
        elf = build / "bench" / f"{workload}.elf"
        qemu_seconds = None
        qemu_output = None
        if have_qemu:
            qemu_runs = [run_qemu(elf) for _ in range(qemu_runs_each)]
            qemu_seconds = max(1e-6, min(r[0] for r in qemu_runs) - qemu_startup)
            qemu_output = qemu_runs[0][1].replace(b"\r\n", b"\n")
        for tier in tiers:
            if tier == CACHED:
                with tempfile.TemporaryDirectory(prefix="rvh-tier-cache-") as cache:
                    run_rvh(elf, limit, "jit", cache)  # fills the code cache
                    rvh_runs = [run_rvh(elf, limit, "jit", cache) for _ in range(repeat)]
            else:
                rvh_runs = [run_rvh(elf, limit, tier) for _ in range(repeat)]
            instructions = rvh_runs[0][0]
            rvh_seconds = statistics.median(r[1] for r in rvh_runs)
            matches = None if qemu_output is None else qemu_output == rvh_runs[0][2]
            results.append(
                Measurement(workload, tier, instructions, rvh_seconds, qemu_seconds, matches)
            )
    print()
    print(
        f"{'workload':<10} {'tier':<9} {'instructions':>13} {'rvh s':>7} {'rvh MIPS':>9} "
        f"{'QEMU s':>7} {'QEMU MIPS':>10} {'rvh/QEMU':>9}  output"
    )
    for r in results:
        q_s = f"{r.qemu_seconds:7.3f}" if r.qemu_seconds is not None else f"{'-':>7}"
        q_m = f"{r.qemu_mips:10.1f}" if r.qemu_mips is not None else f"{'-':>10}"
        ratio = f"{r.rvh_mips / r.qemu_mips:9.2f}" if r.qemu_mips else f"{'-':>9}"
        same = {None: "-", True: "same", False: "DIFFERENT"}[r.output_matches]
        print(
            f"{r.workload:<10} {r.tier:<9} {r.instructions:>13,} {r.rvh_seconds:7.3f} "
            f"{r.rvh_mips:9.1f} {q_s} {q_m} {ratio}  {same}"
        )
    if have_qemu:
        print(
            f"\nQEMU: the fastest of {qemu_runs_each} runs, less its start-up (the hello "
            f"guest's fastest run): {qemu_startup:.3f} s"
        )
    if measure_compile and not quick:
        print(
            "\nnumba: timing import + the hello guest in fresh processes, with a cold cache "
            "and then a warm one (about a minute)...",
            flush=True,
        )
        cold, warm = compile_times()
        print(f"numba: import + run hello with a cold cache {cold:.1f} s, warm cache {warm:.2f} s")
    return 1 if any(r.output_matches is False for r in results) else 0

#!/usr/bin/env python3
"""tools/bench_idle.py [--repeat N]: host CPU time of an idle guest under --realtime.

A guest that waits 0.2 s for its timer in ``wfi`` should sleep in trio, not spin: this runs
such a guest with ``realtime=True`` (after one run that loads the compiled kernel) and prints
the wall time and the process CPU time of each run, and their medians.  It is a measurement,
not a unit test: CPU time on a shared machine depends on its load (the suite once asserted
< 0.15 s and flaked).  Expect a CPU time that is a small fraction of the 0.2 s waited.
Needs the cross toolchain (the guest is assembled on the fly).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support import assemble  # noqa: E402

from rvh.config import MachineConfig  # noqa: E402
from rvh.machine import Machine  # noqa: E402

# wait for mtime to advance by 2,000,000 ticks (0.2 s at 10 MHz) in wfi, then power off
IDLE_GUEST = """
    li t0, 0x0200bff8            # CLINT mtime
    ld t1, 0(t0)
    li t2, 2000000
    add t1, t1, t2
    li t0, 0x02004000            # mtimecmp
    sd t1, 0(t0)
    li t0, 0x80                  # mie.MTIE
    csrs mie, t0
1:  wfi
    li t0, 0x0200bff8
    ld t3, 0(t0)
    bltu t3, t1, 1b
    li t0, 0x100000              # test device: pass
    li t1, 0x5555
    sw t1, 0(t0)
2:  j 2b
"""


def run_once(code: bytes) -> tuple[float, float]:
    machine = Machine(MachineConfig(realtime=True), output=lambda _: None)
    machine.bus.write_bytes(0x8000_0000, code)
    machine.set_boot(0x8000_0000)
    cpu = time.process_time()
    result = machine.run_sync()
    cpu = time.process_time() - cpu
    if result.status != 0:
        raise SystemExit(
            f"bench_idle: the guest ended with status {result.status}: {result.reason}"
        )
    return result.seconds, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, metavar="N")
    args = parser.parse_args()
    code = assemble(IDLE_GUEST)
    run_once(code)  # load the compiled kernel outside the measurement
    runs = [run_once(code) for _ in range(args.repeat)]
    for wall, cpu in runs:
        print(f"wall {wall:.3f} s  cpu {cpu:.3f} s")
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    print(f"median: wall {wall:.3f} s, cpu {cpu:.3f} s ({cpu / wall:.0%} of the wall time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

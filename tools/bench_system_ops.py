#!/usr/bin/env python3
"""tools/bench_system_ops.py [NAME,...] [LOOPS]: MIPS of loops of one system instruction.

Each loop runs eight copies of two instructions of one kind (fence, fence.i, csrr, csrw,
rdtime, sfence.vma, amoadd, lr/sc) and the loop's addi/bnez, in M-mode, LOOPS times (default
200,000), and prints instructions, process CPU seconds and MIPS; ``alu`` is the baseline.
The first loop pays for numba's compile when the cache is cold: run ``alu`` first (it is by
default).
Run from the repository root with the rvh environment (``.venv/bin/python tools/...``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support import assemble  # noqa: E402

from rvh.config import RAM_BASE, MachineConfig  # noqa: E402
from rvh.machine import Machine  # noqa: E402

BODIES = {
    "alu": "addi t1, t1, 1\n xor t2, t2, t1\n",
    "fence": "fence\n fence rw, rw\n",
    "fence.i": "fence.i\n fence.i\n",
    "csrr": "csrr t1, mscratch\n csrr t2, mstatus\n",
    "csrw": "csrw mscratch, t1\n csrw sscratch, t2\n",
    "rdtime": "rdtime t1\n rdtime t2\n",
    "sfence.vma": "sfence.vma\n sfence.vma\n",
    "amoadd": "amoadd.d t1, t2, (s0)\n amoadd.w t1, t2, (s0)\n",
    "lr/sc": "lr.d t1, (s0)\n sc.d t2, t1, (s0)\n",
}


def main() -> int:
    names = sys.argv[1].split(",") if len(sys.argv) > 1 else ["alu", *BODIES]
    loops = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    for name in names:
        if name not in BODIES:
            raise SystemExit(f"bench_system_ops: unknown loop {name!r} ({', '.join(BODIES)})")
        code = assemble(
            f"""
            li t0, {loops}
            li s0, {RAM_BASE + 0x10000}     # the atomics' doubleword
        1:  {BODIES[name] * 8}
            addi t0, t0, -1
            bnez t0, 1b
            li t0, 0x100000     # the test device: pass
            li t1, 0x5555
            sw t1, 0(t0)
            """
        )
        machine = Machine(MachineConfig(), output=lambda _: None)
        machine.bus.write_bytes(RAM_BASE, code)
        machine.set_boot(RAM_BASE)
        start = time.process_time()
        result = machine.run_sync()
        seconds = time.process_time() - start
        mips = result.instructions / seconds / 1e6
        print(
            f"{name:<11} {result.instructions:>12,} instructions {seconds:7.3f} s {mips:7.1f} MIPS"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

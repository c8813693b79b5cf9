#!/usr/bin/env python3
"""tools/general_path.py [ELF...]: how many instructions take the kernel's general path.

The fast loop (rvh/cpu/fast.py) runs the common instructions; everything else (TLB misses,
CSR and system instructions, traps, device accesses) goes one at a time through the general
path of rvh/cpu/core.py, which counts itself in the hart state (layout.GENERAL_PATH).  This
runs each ELF as ``rvh run`` does (bare M-mode) and prints that count beside the instructions
executed.  Default: the guests/bench workloads, the figure docs/performance.md quotes.
Run from the repository root with the rvh environment (``.venv/bin/python tools/...``).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rvh.config import MachineConfig  # noqa: E402
from rvh.cpu import layout as L  # noqa: E402
from rvh.machine import Machine  # noqa: E402

WORKLOADS = [
    ROOT / "guests" / "build" / "bench" / f"{w}.elf" for w in ("intmem", "recursion", "bytes")
]


def main() -> int:
    elves = [Path(a) for a in sys.argv[1:]] or WORKLOADS
    print(f"{'ELF':<16} {'instructions':>13} {'general path':>13} {'share':>12}")
    for elf in elves:
        if not elf.exists():
            raise SystemExit(f"general_path: {elf} not found (make guests)")
        machine = Machine(MachineConfig(), output=lambda _: None)
        machine.load(str(elf))
        machine.run_sync()
        steps = machine.steps
        general = sum(int(h.state[L.GENERAL_PATH]) for h in machine.harts)
        share = general / steps if steps else 0.0
        print(f"{elf.stem:<16} {steps:>13,} {general:>13,} {share:>12.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

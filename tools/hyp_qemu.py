#!/usr/bin/env python3
""".venv/bin/python tools/hyp_qemu.py --guest SPEC [--guest SPEC ...] [--smp N] [--out DIR] [--run]

Runs rvh's hypervisor on QEMU 7.2 instead of rvh: prepares the host device tree and each VM's
RAM exactly as `rvh run --hyp` would (rvh/hyp.py), writes them to DIR (default build/hyp-qemu)
and prints the QEMU command (OpenSBI fw_jump as the firmware, the hypervisor as its payload,
each VM's RAM loaded where rvh puts it); --run runs it.  The same SPEC syntax as rvh's --guest;
--smp N gives the hypervisor N host harts (QEMU's -smp), as rvh's --smp does.
"""

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rvh.errors import RvhError  # noqa: E402
from rvh.hyp import GuestSpec, export_for_qemu  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(prog="tools/hyp_qemu.py", description=__doc__.splitlines()[2])
    parser.add_argument("--guest", action="append", required=True, metavar="SPEC")
    parser.add_argument("--smp", type=int, default=1, metavar="N", help="host harts (default 1)")
    parser.add_argument("--out", default="build/hyp-qemu", metavar="DIR")
    parser.add_argument("--run", action="store_true", help="run QEMU too")
    args = parser.parse_args()
    try:
        specs = [GuestSpec.parse(g) for g in args.guest]
        command = export_for_qemu(specs, Path(args.out), harts=args.smp)
    except RvhError as error:
        print(f"hyp_qemu: {error.message}", file=sys.stderr)
        return 2
    print(shlex.join(command))
    return subprocess.run(command).returncode if args.run else 0


if __name__ == "__main__":
    sys.exit(main())

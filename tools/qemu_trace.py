#!/usr/bin/env python3
"""Reference tracer: run a bare-metal ELF on QEMU 7.2 and save a reference trace for ``rvh diff``.

    tools/qemu_trace.py ELF [-o FILE] [--cpu rv64|rv64,h=off] [--max-insns N] [--log FILE]

QEMU runs ``-machine virt -cpu rv64,f=true,d=true,h=... -bios none -m 256 -icount
shift=0,sleep=off -singlestep -d cpu,fpu,nochain``: it prints pc, x0-x31, f0-f31, the CSRs it
knows (the H ones too with h=true) and V before every instruction.  The dumps become a reference
trace (``rvh/trace.py``: the first state in full, then the fields that changed per instruction),
with the duplicate dumps of -icount's device-access replays removed.  Then

    rvh diff ELF --reference FILE

compares rvh with it.  Without -o, prints a summary and the first states.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
try:
    import numba  # noqa: F401
except ImportError:  # run with the project's environment (tools/setup.sh makes it)
    if VENV_PYTHON.exists() and Path(sys.executable) != VENV_PYTHON:
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
    raise
sys.path.insert(0, str(ROOT))

from rvh.config import parse_cpu  # noqa: E402
from rvh.diff import qemu_command, run_qemu  # noqa: E402
from rvh.errors import RvhError  # noqa: E402
from rvh.trace import write_reference  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qemu_trace.py", description=__doc__.split("\n\n")[0].strip()
    )
    parser.add_argument("elf", metavar="ELF")
    parser.add_argument("-o", "--output", metavar="FILE", help="reference trace to write (.gz ok)")
    parser.add_argument("--cpu", default="rv64", help="rv64 (H on, default) or rv64,h=off")
    parser.add_argument("--max-insns", type=int, default=2_000_000, metavar="N")
    parser.add_argument("--timeout", type=float, default=120.0, metavar="SECONDS")
    parser.add_argument(
        "--show", type=int, default=5, metavar="N", help="states to print without -o"
    )
    args = parser.parse_args(argv)
    try:
        hypervisor = "h" in parse_cpu(args.cpu)
        run = run_qemu(
            args.elf,
            hypervisor=hypervisor,
            max_instructions=args.max_insns,
            timeout=args.timeout,
        )
    except RvhError as error:
        print(f"qemu_trace: {error.message}", file=sys.stderr)
        return error.status
    trace = run.trace
    end = "stopped at the limit" if run.truncated else f"exit status {trace.exit_status}"
    print(
        f"{args.elf}: {len(trace)} instructions, {end}, {run.replays} I/O replays removed; "
        f"fields: {' '.join(trace.fields)}",
        file=sys.stderr,
    )
    if args.output:
        write_reference(trace, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print("command: " + " ".join(qemu_command(args.elf, "LOG", hypervisor=hypervisor)))
        for index in range(min(args.show, len(trace))):
            state = trace.state(index)
            print(f"{index:6d} " + " ".join(f"{k}={v:#x}" for k, v in state.items() if v))
    return 0


if __name__ == "__main__":
    sys.exit(main())

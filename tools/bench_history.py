#!/usr/bin/env python3
"""tools/bench_history.py [--repeat N] [--workload NAME] [COMMIT...]: intmem MIPS at past commits.

Reproduces the optimization history in docs/performance.md: each commit's tree is exported
(``git archive``, nothing in the working tree changes) to a temporary directory and runs the
*same* workload ELF (today's ``guests/build/bench/NAME.elf``) with ``rvh run --stats``, which
every commit since the first prints as ``speed: N MIPS``.  The first run of a commit compiles
its kernel into a fresh numba cache and is not counted; the median of the next ``repeat`` runs
is reported.  The machines are shared and noisy: compare the ratios of one invocation.

The default commits are the kernel changes the history names; run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HISTORY = {
    "ce0339b": "first kernel: one loop, packed decode fields, 2-D arrays",
    "5fdf603": "flat decode cache with unpacked fields, flat TLB",
    "67ecd54": "masks on register indices, unsigned memory indices",
    "bbb183c": "separate fast loop, so its variables stay in registers",
    "HEAD": "today",
}


def mips_at(commit: str, elf: Path, repeat: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="rvh-history-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        cache = os.path.join(tmp, ".numba-cache")
        env = {**os.environ, "PYTHONPATH": tmp, "NUMBA_CACHE_DIR": cache, "RVH_CACHE_DIR": cache}
        speeds = []
        for run in range(repeat + 1):  # the first run compiles
            done = subprocess.run(
                [sys.executable, "-m", "rvh.cli", "run", str(elf), "--stats"],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
            found = re.search(r"speed:\s+([\d.]+) MIPS", done.stderr)
            if done.returncode != 0 or found is None:
                raise SystemExit(
                    f"bench_history: {commit}: run failed: {done.stderr.strip()[-500:]}"
                )
            if run:
                speeds.append(float(found[1]))
        return speeds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="*", default=list(HISTORY), metavar="COMMIT")
    parser.add_argument("--repeat", type=int, default=3, metavar="N")
    parser.add_argument("--workload", default="intmem", metavar="NAME")
    args = parser.parse_args()
    elf = ROOT / "guests" / "build" / "bench" / f"{args.workload}.elf"
    if not elf.exists():
        raise SystemExit(f"bench_history: {elf} not built: run make guests")
    print(f"{args.workload} MIPS, median of {args.repeat} runs after a compiling run")
    for commit in args.commits:
        speeds = mips_at(commit, elf, args.repeat)
        runs = " ".join(f"{s:.0f}" for s in speeds)
        print(f"{commit:<8} {statistics.median(speeds):7.1f}  ({runs})  {HISTORY.get(commit, '')}")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""tools/vm_clones.py [--clones K] [--memory SIZE]: what VM files cost: save, restore, clones.

Saves ``guests/build/bench/bytes.elf`` (a 256 MiB machine by default) part way, then measures:

- the save: time and the file's apparent and allocated size (zero pages are holes);
- a restore in this process: ``read_vm_file`` + ``restore_machine``, with the kernel's
  modules already imported (the part a clone adds to an rvh start), median of five;
- K clones run at once (``rvh run --restore FILE --clone i``), each sampled from
  ``/proc/PID/smaps_rollup`` while it runs: proportional set size (Pss) and private memory,
  against a fresh boot of the same guest.  RAM mapped copy-on-write from the file is shared
  between the clones until a clone writes a page.

Run from the repository root with the guests built.  Not a test: the numbers are the host's.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GUEST = ROOT / "guests" / "build" / "bench" / "bytes.elf"
SAVE_AT = 20_000_000


def rvh(*args: str) -> list[str]:
    return [sys.executable, "-m", "rvh.cli", "run", *args]


def sample(process: subprocess.Popen) -> dict[str, int]:
    """The largest Pss and private memory (KiB) seen while ``process`` runs."""
    worst = {"Pss": 0, "Private": 0, "Rss": 0}
    while process.poll() is None:
        try:
            text = Path(f"/proc/{process.pid}/smaps_rollup").read_text()
        except OSError:
            break
        fields = {k: int(v) for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}
        private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
        worst["Pss"] = max(worst["Pss"], fields.get("Pss", 0))
        worst["Private"] = max(worst["Private"], private)
        worst["Rss"] = max(worst["Rss"], fields.get("Rss", 0))
        time.sleep(0.05)
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clones", type=int, default=3)
    parser.add_argument("--memory", default="256M")
    args = parser.parse_args()
    if not GUEST.exists():
        sys.exit(f"{GUEST} not built: run make guests")
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        vm = Path(tmp, "bytes.rvh")
        start = time.perf_counter()
        saved = subprocess.run(
            rvh(str(GUEST), "-m", args.memory, "--save", str(vm), "--save-at", str(SAVE_AT)),
            capture_output=True,
            text=True,
            env=environment,
            cwd=ROOT,
        )
        if saved.returncode != 0:
            sys.exit(saved.stderr)
        found = re.search(r"\(([\d.]+) MiB stored, (\d+) ms\)", saved.stderr)
        info = os.stat(vm)
        print(f"guest: {GUEST.relative_to(ROOT)} on -m {args.memory}, saved at {SAVE_AT:,}")
        print(
            f"save:     {found[2] if found else '?'} ms inside rvh, "
            f"file {info.st_size / 2**20:.1f} MiB apparent, "
            f"{info.st_blocks * 512 / 2**20:.2f} MiB allocated "
            f"(whole command {time.perf_counter() - start:.2f} s)"
        )

        from rvh.snapshot import read_vm_file, restore_machine

        timings = []
        for _ in range(5):
            begin = time.perf_counter()
            machine = restore_machine(read_vm_file(str(vm)), output=lambda data: None)
            timings.append(time.perf_counter() - begin)
            del machine
        print(f"restore:  {statistics.median(timings) * 1000:.1f} ms (median of 5, in process)")

        fresh = subprocess.Popen(
            rvh(str(GUEST), "-m", args.memory, "--serial", "null"),
            env=environment,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        boot = sample(fresh)
        clones = [
            subprocess.Popen(
                rvh("--restore", str(vm), "--clone", str(k + 1), "--serial", "null", "--stats"),
                env=environment,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for k in range(args.clones)
        ]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(clones)) as pool:
            measured = list(pool.map(sample, clones))  # all at once: they run at once
        restored = []
        for clone in clones:
            _, errors = clone.communicate()
            hit = re.search(r"restored in:\s+([\d.]+) ms", errors)
            restored.append(float(hit[1]) if hit else float("nan"))
        print(
            f"fresh boot: Pss {boot['Pss'] / 1024:.0f} MiB, private {boot['Private'] / 1024:.0f}"
            f" MiB, Rss {boot['Rss'] / 1024:.0f} MiB"
        )
        for k, (memory, ms) in enumerate(zip(measured, restored, strict=True), 1):
            print(
                f"clone {k}:  {ms:.0f} ms to restore in the command (numba's cache loading "
                f"included); Pss "
                f"{memory['Pss'] / 1024:.0f} MiB, private {memory['Private'] / 1024:.0f} MiB, "
                f"Rss {memory['Rss'] / 1024:.0f} MiB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

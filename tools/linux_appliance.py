"""Build the Linux demo appliance: the Linux guest (guests/build/linux) booted to its shell,
saved there and packed, so ``rvh run linux.rvha`` starts at a shell prompt at once.

    python tools/linux_appliance.py [--out guests/build/linux/linux.rvha]

It boots ``Image`` and ``initramfs.cpio`` with ``rvh.shell`` on the command line and a fixed
``--rtc-base`` (the appliance's clock starts at a known date), waits for the shell's prompt,
sends SIGUSR1 (rvh saves the VM and goes on), ends the boot with ``poweroff -f`` once the VM
file is there, and packs it with ``rvh appliance pack``.  One Linux boot: ~20 s.  Exit status
0 when the appliance is written, 1 with one line saying why not.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINUX = ROOT / "guests" / "build" / "linux"
PROMPT = b"# "  # busybox sh's prompt for root
BOOT_SECONDS = 600.0


def rvh_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "rvh.cli", *args]


def read_until(
    process: subprocess.Popen[bytes], marker: bytes, seen: bytearray, deadline: float
) -> None:
    """Read the console into ``seen`` until ``marker`` appears after the shell's banner."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    while True:
        banner = seen.find(b"RVH-LINUX-SHELL")
        if banner >= 0 and seen.find(marker, banner) >= 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the Linux guest did not reach its shell in time")
        if not selector.select(timeout=1.0):
            continue
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            raise RuntimeError(
                "the Linux boot ended before its shell: " + seen[-300:].decode("replace")
            )
        seen.extend(chunk)


def build(out: Path) -> None:
    image, initrd = LINUX / "Image", LINUX / "initramfs.cpio"
    for path in (image, initrd):
        if not path.exists():
            raise RuntimeError(f"{path} is missing: make -C guests linux first")
    with tempfile.TemporaryDirectory(prefix="rvh-linux-appliance-") as scratch:
        vm = Path(scratch) / "linux.rvh"
        process = subprocess.Popen(
            rvh_command(
                "run",
                "--kernel",
                str(image),
                "--initrd",
                str(initrd),
                "--append",
                "console=ttyS0 rvh.shell",
                "--rtc-base",
                "2026-01-01T00:00:00",
                "--save",
                str(vm),
            ),  # fmt: skip
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        try:
            seen = bytearray()
            read_until(process, PROMPT, seen, time.monotonic() + BOOT_SECONDS)
            time.sleep(0.5)  # the shell is now waiting in read(): the state to keep
            process.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 120
            while not vm.exists():
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("rvh did not save the booted VM")
                time.sleep(0.1)
            assert process.stdin is not None
            process.stdin.write(b"poweroff -f\n")
            process.stdin.flush()
            _, errors = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        if process.returncode != 0:
            raise RuntimeError(
                f"the Linux boot ended with status {process.returncode}: {errors.decode()}"
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(
            rvh_command("appliance", "pack", str(out), "--from", str(vm), "--name", "linux-shell"),
            capture_output=True,
            cwd=ROOT,
        )
        if packed.returncode != 0:
            raise RuntimeError(packed.stderr.decode().strip())
        sys.stdout.write(packed.stdout.decode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=LINUX / "linux.rvha")
    args = parser.parse_args(argv)
    try:
        build(args.out.resolve())  # the pack runs from the repository root
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"linux_appliance: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Debian 13's Linux kernel (6.12) with the busybox initramfs of guests/linux boots to its /init
on rvh: on the built-in SBI and on Debian's OpenSBI (fw_dynamic.bin, two harts, both online),
and prints what QEMU 7.2 prints for the same kernel and initramfs.

The kernel and initramfs come from ``make guests`` (guests/linux/fetch.sh fetches the Debian
packages with apt); a missing one fails the test, it never skips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support import GUESTS, require_qemu

from rvh.config import MachineConfig
from rvh.machine import Machine

LINUX = GUESTS / "linux"
FW_DYNAMIC_BIN = Path("/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin")
# the boot to power-off takes about 2.0 G instructions on one hart (2.3 G on two)
MAX_INSTRUCTIONS = 4_000_000_000
RTC_BASE = "2025-03-01T12:00:00"
RTC_BASE_NS = 1_740_830_400 * 10**9
# what /init prints that does not depend on the emulator (guests/linux/init)
STABLE_LINES = ("RVH-LINUX-INIT:", "uname:", "awk:", "virtio devices:", "RVH-LINUX-POWEROFF")

pytestmark = pytest.mark.slow


def linux_files() -> tuple[Path, Path]:
    image, initrd = LINUX / "Image", LINUX / "initramfs.cpio"
    for path in (image, initrd):
        if not path.exists():
            pytest.fail(f"{path} not built: run make guests (guests/linux)", pytrace=False)
    return image, initrd


def boot(*, firmware: Path | None, harts: int) -> tuple[int, str, str, int]:
    from rvh.boot import BuiltinSbiBoot, FirmwareBoot

    image, initrd = linux_files()
    output = bytearray()
    config = MachineConfig(
        harts=harts,
        max_instructions=MAX_INSTRUCTIONS,
        bootargs="console=ttyS0",
        rtc_base_ns=RTC_BASE_NS,
    )
    machine = Machine(config, output=output.extend)
    if firmware is None:
        machine.boot(BuiltinSbiBoot(str(image), str(initrd)))
    else:
        machine.boot(FirmwareBoot(str(firmware), str(image), str(initrd)))
    result = machine.run_sync()
    return result.status, result.reason, output.decode(errors="replace"), result.instructions


def init_lines(console: str) -> list[str]:
    return [line.strip() for line in console.splitlines() if line.startswith(STABLE_LINES)]


def check_init_output(console: str, cpus_online: str) -> None:
    lines = init_lines(console)
    assert lines[0].startswith("RVH-LINUX-INIT: init running, kernel 6.12."), console[-3000:]
    assert "awk: 4987.385095 3.3333e-11" in lines  # busybox awk's doubles (F and D)
    assert lines[-1] == "RVH-LINUX-POWEROFF"
    assert f"cpus online: {cpus_online}" in console
    # the goldfish RTC: the kernel set its clock from it at boot
    assert "date: 2025-03-01 12:00:0" in console
    assert "goldfish_rtc 101000.rtc: registered as rtc0" in console
    assert "isa\t\t: rv64imafdch" in console


def test_linux_boots_to_init_and_powers_off_on_the_builtin_sbi():
    status, reason, console, instructions = boot(firmware=None, harts=1)
    assert (status, reason) == (0, "test device: pass"), console[-3000:]
    check_init_output(console, "0")
    assert "SBI implementation ID=0x7276" in console  # rvh's own SBI ("rv")
    assert instructions < MAX_INSTRUCTIONS


def test_linux_boots_on_opensbi_with_two_harts_online():
    if not FW_DYNAMIC_BIN.exists():
        pytest.fail(f"{FW_DYNAMIC_BIN} missing: install qemu-system-data", pytrace=False)
    status, reason, console, _ = boot(firmware=FW_DYNAMIC_BIN, harts=2)
    assert (status, reason) == (0, "test device: pass"), console[-3000:]
    assert "OpenSBI v" in console
    assert "smp: Brought up 1 node, 2 CPUs" in console
    check_init_output(console, "0-1")


@pytest.mark.qemu
def test_qemu_prints_the_same_init_lines():
    image, initrd = linux_files()
    status, _, console, _ = boot(firmware=None, harts=1)
    assert status == 0
    qemu = subprocess.run(
        [require_qemu(), "-M", "virt", "-m", "256M", "-nographic", "-no-reboot",
         "-bios", str(FW_DYNAMIC_BIN), "-kernel", str(image), "-initrd", str(initrd),
         "-append", "console=ttyS0", "-rtc", f"base={RTC_BASE}"],
        capture_output=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    qemu_console = qemu.stdout.decode(errors="replace").replace("\r\n", "\n")
    assert qemu.returncode == 0, qemu_console[-3000:]
    assert init_lines(console) == init_lines(qemu_console)
    assert len(init_lines(console)) == len(STABLE_LINES)

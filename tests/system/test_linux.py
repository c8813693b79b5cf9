"""Debian 13's Linux kernel (6.12) with the busybox initramfs of guests/linux boots to its /init
on rvh, on the built-in SBI and on Debian's OpenSBI (fw_dynamic.bin), with one hart and with
two (both online in /proc/cpuinfo); busybox's awk computes in doubles; the ext4 image on
virtio-blk mounts and a file the guest writes is in the host's image after power-off; Linux
pings over virtio-net (two NICs on one hub, and two rvh processes joined by UDP); power-off
exits 0 and a reboot with --no-reboot exits 0; the /init lines are QEMU 7.2's.

The kernel, initramfs and disk image come from ``make guests`` (guests/linux: fetch.sh fetches
the Debian packages with apt, the Makefile builds the rest); a missing one fails the test, it
never skips.  Each boot costs 15-20 s (more on a loaded machine), so each test checks what one
boot can show."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import GUESTS, ROOT, SETUP_HINT, require_qemu

from rvh.config import MachineConfig
from rvh.errors import EXIT_LOAD_ERROR
from rvh.machine import Machine

LINUX = GUESTS / "linux"
FW_DYNAMIC_BIN = Path("/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin")
# the boot to power-off takes about 2.0 G instructions on one hart (2.3 G on two)
MAX_INSTRUCTIONS = 4_000_000_000
RTC_BASE = "2025-03-01T12:00:00"
RTC_BASE_NS = 1_740_830_400 * 10**9
# what /init prints that does not depend on the emulator (guests/linux/init)
STABLE_LINES = (
    "RVH-LINUX-INIT:", "uname:", "processor", "awk:", "awk division:", "virtio devices:",
    "ext4:", "RVH-LINUX-POWEROFF",
)  # fmt: skip
# what guests/linux/disk/hello.txt holds, and what /init writes next to it
HELLO = "hello from the ext4 image built by guests/linux/Makefile"
# the UDP pair waits for its peer in real time: generous, for a loaded CI machine
PAIR_TIMEOUT_SECONDS = 1800

pytestmark = pytest.mark.slow


@dataclass
class LinuxRun:
    status: int
    reason: str
    console: str
    instructions: int


def linux_files() -> tuple[Path, Path]:
    image, initrd = LINUX / "Image", LINUX / "initramfs.cpio"
    for path in (image, initrd, LINUX / "disk.ext4"):
        if not path.exists():
            pytest.fail(f"{path} not built: run make guests (guests/linux)", pytrace=False)
    return image, initrd


def opensbi() -> Path:
    if not FW_DYNAMIC_BIN.exists():
        pytest.fail(f"{FW_DYNAMIC_BIN} missing: install qemu-system-data", pytrace=False)
    return FW_DYNAMIC_BIN


def e2fs_tool(name: str) -> str:
    """debugfs, e2fsck: e2fsprogs puts them in /sbin, which a user's PATH may lack."""
    path = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{name} not found: install e2fsprogs ({SETUP_HINT})", pytrace=False)
    return path


def disk_copy(directory: Path) -> Path:
    """A fresh copy of the guest's ext4 image: the guest writes to it."""
    linux_files()
    copy = directory / "disk.ext4"
    shutil.copyfile(LINUX / "disk.ext4", copy)
    return copy


def file_in_image(image: Path, path: str) -> str:
    """The contents of ``path`` inside the ext4 ``image``, read by e2fsprogs' debugfs."""
    result = subprocess.run(
        [e2fs_tool("debugfs"), "-R", f"cat {path}", str(image)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return result.stdout


def assert_clean_file_system(image: Path) -> None:
    """e2fsck (forced, read-only) finds nothing to fix: the guest unmounted it cleanly."""
    check = subprocess.run(
        [e2fs_tool("e2fsck"), "-f", "-n", str(image)], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout + check.stderr


def boot(
    *,
    firmware: Path | None,
    harts: int,
    append: str = "",
    drives: tuple[str, ...] = (),
    netdevs: tuple[str, ...] = (),
    no_reboot: bool = False,
) -> LinuxRun:
    from rvh.boot import BuiltinSbiBoot, FirmwareBoot

    image, initrd = linux_files()
    output = bytearray()
    config = MachineConfig(
        harts=harts,
        max_instructions=MAX_INSTRUCTIONS,
        bootargs=f"console=ttyS0 {append}".strip(),
        rtc_base_ns=RTC_BASE_NS,
        no_reboot=no_reboot,
        drives=list(drives),
        netdevs=list(netdevs),
        # the disk's completions at fixed virtual times: a boot repeats instruction for
        # instruction (with host timing an OpenSBI 2-hart boot has stalled, docs/linux.md)
        io_timing="virtual",
    )
    machine = Machine(config, output=output.extend)
    if firmware is None:
        machine.boot(BuiltinSbiBoot(str(image), str(initrd)))
    else:
        machine.boot(FirmwareBoot(str(firmware), str(image), str(initrd)))
    result = machine.run_sync()
    console = output.decode(errors="replace")
    return LinuxRun(result.status, result.reason, console, result.instructions)


def init_lines(console: str) -> list[str]:
    return [line.strip() for line in console.splitlines() if line.startswith(STABLE_LINES)]


def check_init_output(console: str, harts: int) -> None:
    """What /init prints on any configuration: the kernel, both harts online with a
    /proc/cpuinfo entry each, the RTC's date, awk's doubles, the ISA."""
    lines = init_lines(console)
    assert lines[0].startswith("RVH-LINUX-INIT: init running, kernel 6.12."), console[-3000:]
    online = "0" if harts == 1 else f"0-{harts - 1}"
    assert f"cpus online: {online}" in console
    processors = [line for line in lines if line.startswith("processor")]
    assert processors == [f"processor\t: {n}" for n in range(harts)], console[-3000:]
    # busybox awk's doubles (F and D): a loop of multiply-adds, a quotient, 0.1 + 0.2
    assert "awk: 4987.385095 3.3333e-11" in lines
    assert "awk division: 1.166667 0.30000000000000004" in lines
    # the goldfish RTC: the kernel set its clock from it at boot
    assert "date: 2025-03-01 12:00:0" in console
    assert "goldfish_rtc 101000.rtc: registered as rtc0" in console
    assert "isa\t\t: rv64imafdch" in console


def check_ext4(console: str, image: Path, harts: int) -> None:
    """/init mounted the image, read the file mke2fs put there, wrote one of its own, and
    unmounted before powering off: the host finds the file and a clean file system."""
    written = f"written by Linux {kernel_version()} on {harts} harts"
    assert f"ext4: /dev/vda mounted on /mnt: {HELLO}" in console, console[-3000:]
    assert f"ext4: wrote /mnt/from-guest.txt: {written}" in console
    assert file_in_image(image, "/from-guest.txt") == written + "\n"
    assert file_in_image(image, "/hello.txt") == HELLO + "\n"
    assert_clean_file_system(image)


def kernel_version() -> str:
    return (LINUX / "kernel-version").read_text().strip()


@pytest.fixture(scope="module")
def sbi_one_hart(tmp_path_factory: pytest.TempPathFactory) -> tuple[LinuxRun, Path]:
    """One boot on the built-in SBI, one hart, the ext4 image on vda: shared by the test of
    that configuration and the comparison with QEMU."""
    disk = disk_copy(tmp_path_factory.mktemp("sbi-one-hart"))
    run = boot(firmware=None, harts=1, drives=(f"file={disk},format=raw",))
    return run, disk


def test_linux_on_the_builtin_sbi_one_hart_mounts_ext4_and_powers_off(sbi_one_hart):
    run, disk = sbi_one_hart
    assert (run.status, run.reason) == (0, "test device: pass"), run.console[-3000:]
    check_init_output(run.console, harts=1)
    check_ext4(run.console, disk, harts=1)
    assert init_lines(run.console)[-1] == "RVH-LINUX-POWEROFF"
    assert "SBI implementation ID=0x7276" in run.console  # rvh's own SBI ("rv")
    assert run.instructions < MAX_INSTRUCTIONS


def test_linux_on_opensbi_two_harts_mounts_ext4_and_powers_off(tmp_path):
    disk = disk_copy(tmp_path)
    run = boot(firmware=opensbi(), harts=2, drives=(f"file={disk},format=raw",))
    assert (run.status, run.reason) == (0, "test device: pass"), run.console[-3000:]
    assert "OpenSBI v" in run.console
    assert "smp: Brought up 1 node, 2 CPUs" in run.console
    check_init_output(run.console, harts=2)
    check_ext4(run.console, disk, harts=2)
    assert init_lines(run.console)[-1] == "RVH-LINUX-POWEROFF"


def test_linux_on_the_builtin_sbi_two_harts_pings_between_two_nics_on_a_hub_and_reboots():
    # eth0 and eth1 on one hub; /init moves eth1 into a network namespace of its own, so the
    # pings go out of one NIC, through the hub and in at the other (not over loopback); then
    # it reboots, which --no-reboot turns into the end of the run, status 0 as in QEMU
    run = boot(
        firmware=None,
        harts=2,
        append="rvh.ip=10.0.0.1/24 rvh.nsip=10.0.0.2/24 rvh.action=reboot",
        netdevs=("hub,id=0", "hub,id=0"),
        no_reboot=True,
    )
    assert (run.status, run.reason) == (0, "reboot (--no-reboot)"), run.console[-3000:]
    check_init_output(run.console, harts=2)
    assert "virtio devices: 2" in run.console
    assert "eth0: up 52:54:00:12:34:56 10.0.0.1/24" in run.console
    assert "eth1: in a namespace of its own, 10.0.0.2/24" in run.console
    replies = "3 packets transmitted, 3 packets received, 0% packet loss"
    assert f"RVH-LINUX-PING: eth0 to eth1: {replies}" in run.console, run.console[-3000:]
    assert f"RVH-LINUX-PING: eth1 to eth0: {replies}" in run.console
    assert "RVH-LINUX-REBOOT" in run.console
    assert "reboot: Restarting system" in run.console
    assert "RVH-LINUX-POWEROFF" not in run.console


def free_udp_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_two_linux_guests_in_two_rvh_processes_ping_each_other_over_udp(tmp_path):
    # two `rvh run` processes, each a one-hart Linux (the first on the built-in SBI, the second
    # on OpenSBI) with one NIC on a UDP socket netdev aimed at the other; each /init pings its
    # peer until it answers, then three times, and stays up until the peer has pinged it too
    image, initrd = linux_files()
    ports = free_udp_ports(2)
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = []
    for me, peer in ((0, 1), (1, 0)):
        netdev = (
            f"socket,id=n0,udp=127.0.0.1:{ports[peer]},localaddr=127.0.0.1:{ports[me]},"
            f"mac=52:54:00:12:34:{0x56 + me:02x}"
        )
        firmware = ["--firmware", str(opensbi())] if me == 1 else []
        command = [
            sys.executable, "-m", "rvh.cli", "run", *firmware, "--kernel", str(image),
            "--initrd", str(initrd), "--netdev", netdev,
            "--append", f"console=ttyS0 rvh.ip=10.0.0.{me + 1}/24 rvh.peer=10.0.0.{peer + 1}",
            "--rtc-base", RTC_BASE, "--max-insns", str(MAX_INSTRUCTIONS),
        ]  # fmt: skip
        log = (tmp_path / f"guest{me}.txt").open("w+b")
        processes.append(
            (
                subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=environment,
                    cwd=ROOT,
                ),  # fmt: skip
                log,
            )
        )
    consoles = []
    try:
        for process, log in processes:
            process.wait(timeout=PAIR_TIMEOUT_SECONDS)
            log.seek(0)
            consoles.append(log.read().decode(errors="replace").replace("\r\n", "\n"))
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    for me, (process, _), console in zip((0, 1), processes, consoles, strict=True):
        peer = f"10.0.0.{2 - me}"
        assert process.returncode == 0, console[-3000:]
        check_init_output(console, harts=1)
        assert ("OpenSBI v" in console) == (me == 1)
        assert f"eth0: up 52:54:00:12:34:{0x56 + me:02x} 10.0.0.{me + 1}/24" in console
        replies = "3 packets transmitted, 3 packets received, 0% packet loss"
        assert f"RVH-LINUX-PING: {peer}: {replies}" in console, console[-3000:]
        answered = [line for line in console.splitlines() if "echo requests" in line]
        assert len(answered) == 1 and int(answered[0].split()[2]) >= 4, console[-3000:]
        assert init_lines(console)[-1] == "RVH-LINUX-POWEROFF"


def test_the_readme_line_gives_a_shell_with_vda_mounted_and_eth0_up(tmp_path):
    # README's command (on a copy of the disk), typing into the shell once its prompt is
    # there (busybox's line editing asks the terminal for the cursor and may eat what came
    # before): it sees /mnt and eth0, writes a file, and exit unmounts /mnt and powers off
    image, initrd = linux_files()
    disk = disk_copy(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", "--kernel", str(image), "--initrd", str(initrd),
         "--drive", f"file={disk}", "--netdev", "hub,id=0",
         "--append", "console=ttyS0 rvh.shell rvh.ip=10.0.0.1/24",
         "--rtc-base", RTC_BASE, "--max-insns", str(MAX_INSTRUCTIONS)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert process.stdout is not None
    output = bytearray()
    deadline = time.monotonic() + PAIR_TIMEOUT_SECONDS
    try:
        while b"# " not in output.partition(b"RVH-LINUX-SHELL")[2]:  # the prompt
            assert time.monotonic() < deadline, output[-3000:].decode(errors="replace")
            ready, _, _ = select.select([process.stdout], [], [], 5)
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                assert chunk, output[-3000:].decode(errors="replace")  # rvh ended early
                output += chunk
        typed = b"cat /mnt/hello.txt; ip -4 addr show eth0; echo typed > /mnt/typed.txt; exit\n"
        rest, _ = process.communicate(typed, timeout=PAIR_TIMEOUT_SECONDS)
        output += rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    console = output.decode(errors="replace").replace("\r\n", "\n")
    assert process.returncode == 0, console[-3000:]
    shell = console[console.index("RVH-LINUX-SHELL") :]
    assert HELLO in shell, shell
    assert "inet 10.0.0.1/24" in shell and "UP,LOWER_UP" in shell, shell
    assert "RVH-LINUX-POWEROFF" in shell
    assert file_in_image(disk, "/typed.txt") == "typed\n"
    assert_clean_file_system(disk)


def test_a_truncated_debian_image_is_one_line_and_status_125(tmp_path):
    image, initrd = linux_files()
    truncated = tmp_path / "Image"
    truncated.write_bytes(image.read_bytes()[: image.stat().st_size // 2])
    result = subprocess.run(
        [sys.executable, "-m", "rvh.cli", "run", "--kernel", str(truncated),
         "--initrd", str(initrd), "--append", "console=ttyS0"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == EXIT_LOAD_ERROR, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "truncated Linux Image" in result.stderr


@pytest.mark.qemu
def test_qemu_prints_the_same_init_lines(sbi_one_hart, tmp_path):
    image, initrd = linux_files()
    run, _ = sbi_one_hart
    assert run.status == 0
    disk = disk_copy(tmp_path)
    qemu = subprocess.run(
        [require_qemu(), "-M", "virt", "-m", "256M", "-nographic", "-no-reboot",
         "-bios", str(opensbi()), "-kernel", str(image), "-initrd", str(initrd),
         "-drive", f"file={disk},format=raw,if=virtio",
         "-append", "console=ttyS0", "-rtc", f"base={RTC_BASE}"],
        capture_output=True, timeout=300, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    qemu_console = qemu.stdout.decode(errors="replace").replace("\r\n", "\n")
    assert qemu.returncode == 0, qemu_console[-3000:]
    assert init_lines(run.console) == init_lines(qemu_console)
    # every stable line: the two ext4 lines and one processor line each
    assert len(init_lines(run.console)) == len(STABLE_LINES) + 1
    written = f"written by Linux {kernel_version()} on 1 harts\n"
    assert file_in_image(disk, "/from-guest.txt") == written

"""VM files through the ``rvh`` command, held-out style: save a run in the middle, restore it,
and the output, exit status, instruction count and ``--stats`` totals equal the uninterrupted
run's, for each way a machine boots (bare, the built-in SBI, OpenSBI, the hypervisor)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import GUESTS, ROOT, require_guest, require_opensbi

from rvh.errors import EXIT_LOAD_ERROR, EXIT_USAGE

MKIMAGE = ROOT / "guests" / "virtio" / "mkimage.py"
# what differs between two runs of the same machine: the host's time
# the --stats lines that describe the host, not the machine: its clock, and what the
# translating tier (the default) compiled and ran, which depends on the run's history
WALL_CLOCK = re.compile(r"^(wall time|speed|restored in|tier jit|code|translated code|code cache):")


def rvh(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "rvh.cli", *args], capture_output=True, timeout=timeout, cwd=ROOT
    )


def stats(stderr: bytes) -> list[str]:
    """The --stats lines, without the ones that measure the host."""
    return [line for line in stderr.decode().splitlines() if not WALL_CLOCK.match(line)]


def retired(stderr: bytes) -> int:
    found = re.search(r"instructions retired: (\d+)", stderr.decode())
    assert found, stderr.decode()
    return int(found[1])


def guest(relative: str) -> str:
    return str(require_guest(GUESTS / relative))


def save_restore_matches(tmp_path: Path, save_at: int, *run: str) -> str:
    """Run ``run`` whole; run it again saving at ``save_at``; restore; compare."""
    whole = rvh("run", *run, "--stats")
    vm = tmp_path / "vm.rvh"
    first = rvh("run", *run, "--save", str(vm), "--save-at", str(save_at))
    assert first.returncode == 0, first.stderr.decode()
    assert f"saved {vm} at instruction {save_at:,}".encode() in first.stderr
    rest = rvh("run", "--restore", str(vm), "--stats")
    assert rest.returncode == whole.returncode
    assert first.stdout + rest.stdout == whole.stdout
    assert stats(rest.stderr) == stats(whole.stderr)
    assert save_at < retired(whole.stderr)  # the save point was inside the run
    return whole.stdout.decode()


@pytest.mark.slow
def test_bare_m_mode_guest(tmp_path):
    output = save_restore_matches(tmp_path, 400, guest("hello/hello.elf"))
    assert "Hello" in output


@pytest.mark.slow
def test_s_mode_guest_on_the_builtin_sbi(tmp_path):
    output = save_restore_matches(tmp_path, 70_000, "--sbi", guest("smode/timer.elf"))
    assert "timer" in output


@pytest.mark.slow
def test_s_mode_guest_with_sv39(tmp_path):
    save_restore_matches(tmp_path, 200_000, "--sbi", guest("smode/sv39.elf"))


@pytest.mark.slow
def test_two_harts_resume_their_round(tmp_path):
    save_restore_matches(tmp_path, 250_001, "--sbi", "--smp", "2", guest("smode/smp.elf"))


@pytest.mark.slow
def test_opensbi_firmware_run(tmp_path):
    firmware = str(require_opensbi())
    output = save_restore_matches(
        tmp_path, 4_000_000, "--firmware", firmware, "--kernel", guest("smode/hello.elf")
    )
    assert "OpenSBI" in output


@pytest.mark.slow
def test_hypervisor_with_an_hw_vm(tmp_path):
    # the hypervisor, its VM's memory and the VS CSRs are machine state like any other
    output = save_restore_matches(tmp_path, 200_000, "--hyp", "--guest", guest("smode/timer.elf"))
    assert "hyp:" in output


@pytest.mark.slow
def test_hypervisor_with_a_trap_vm(tmp_path):
    # trap mode's virtual hart, shadow tables and their caches are machine state too
    output = save_restore_matches(
        tmp_path, 200_000, "--hyp", "--guest", guest("smode/timer.elf") + ",virt=trap"
    )
    assert "hyp:" in output


def migrate_matches(at: int, *run: str) -> bytes:
    """Run ``run`` whole; run it again migrating over loopback from instruction ``at``;
    the destination ends as the uninterrupted run: output, status, --stats."""
    whole = rvh("run", *run, "--stats")
    address = f"tcp:127.0.0.1:{free_port()}"
    destination = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", "--incoming", address, "--stats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    source = rvh("run", *run, "--migrate-to", address, "--migrate-at", str(at))
    arrived, arrived_errors = destination.communicate(timeout=300)
    assert source.returncode == 0, source.stderr.decode()
    assert b"migrated to tcp:127.0.0.1:" in source.stderr, source.stderr.decode()
    assert destination.returncode == whole.returncode == 0, arrived_errors.decode()
    assert source.stdout + arrived == whole.stdout
    assert stats(arrived_errors) == stats(whole.stderr)
    assert at < retired(whole.stderr)  # the move was inside the run
    return whole.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "run",
    [
        ("--sbi", "smode/bench_sv39.elf"),
        ("--hyp", "--guest", "smode/bench_sv39.elf"),
        ("--hyp", "--guest", "smode/bench_sv39.elf,virt=trap"),
    ],
    ids=["sbi", "hw-vm", "trap-vm"],
)
def test_a_migration_in_the_middle_ends_as_the_unmigrated_run(run):
    # a guest long enough (200 M instructions natively) for the pre-copy rounds to finish
    # while it runs on
    *flags, spec = run
    path, _, options = spec.partition(",")
    target = guest(path) + ("," + options if options else "")
    assert b"sv39" in migrate_matches(20_000_000, *flags, target).lower()


@pytest.mark.slow
def test_virtio_blk_guest_with_a_disk(tmp_path):
    """Device timing is host time, so the instruction count may differ by a few polls; the
    output (less its tick measurements), the status and the disk at the end must not."""
    elf = guest("virtio/blk.elf")
    base = tmp_path / "base.img"
    subprocess.run(
        [sys.executable, str(MKIMAGE), str(base), "--size", "8M", "--id", "0"], check=True
    )
    readonly = tmp_path / "ro.img"
    subprocess.run(
        [sys.executable, str(MKIMAGE), str(readonly), "--size", "1M", "--id", "1"], check=True
    )
    disk = tmp_path / "disk.img"

    def drives() -> list[str]:
        return [
            "--drive",
            f"file={disk},serial=rvh-disk0",
            "--drive",
            f"file={readonly},readonly=on,serial=rvh-disk1",
        ]

    disk.write_bytes(base.read_bytes())
    whole = rvh("run", "--sbi", elf, *drives())
    assert whole.returncode == 0, whole.stderr.decode()
    disk_after_whole = disk.read_bytes()
    disk.write_bytes(base.read_bytes())
    vm = tmp_path / "blk.rvh"
    first = rvh("run", "--sbi", elf, *drives(), "--save", str(vm), "--save-at", "240000000")
    assert first.returncode == 0, first.stderr.decode()
    info = rvh("snapshot", "info", str(vm))
    assert info.returncode == 0, info.stderr.decode()
    assert f"disk {disk} (8 MiB, sha256".encode() in info.stdout
    rest = rvh("run", "--restore", str(vm))
    assert rest.returncode == 0, rest.stderr.decode()

    def masked(output: bytes) -> str:
        return re.sub(rb"\d+ ticks", b"N ticks", output).decode()

    assert masked(first.stdout + rest.stdout) == masked(whole.stdout)
    assert "PASS virtio/blk" in masked(rest.stdout)
    assert disk.read_bytes() == disk_after_whole


@pytest.mark.slow
def test_sigusr1_saves_and_the_run_goes_on(tmp_path):
    """A save at whatever instruction the signal lands on: the run completes as usual, and
    the VM file resumes to the same end with the same totals."""
    elf = guest("bench/bytes.elf")
    vm = tmp_path / "signal.rvh"
    whole = rvh("run", elf, "--stats")
    running = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", elf, "--stats", "--save", str(vm)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    # signal until the file appears (a loaded machine may still be starting), then let it end
    deadline = time.monotonic() + 120
    while not vm.exists() and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
        if not vm.exists() and running.poll() is None:
            running.send_signal(signal.SIGUSR1)
    stdout, stderr = running.communicate(timeout=300)
    assert vm.exists(), stderr.decode()
    assert running.returncode == whole.returncode == 0, stderr.decode()
    assert stdout == whole.stdout
    assert re.search(rb"saved .*signal.rvh at instruction [\d,]+", stderr), stderr.decode()
    rest = rvh("run", "--restore", str(vm), "--stats")
    assert rest.returncode == 0
    assert whole.stdout.endswith(rest.stdout)
    assert stats(rest.stderr) == stats(whole.stderr)


def test_a_save_signal_as_the_run_ends_does_not_kill_rvh(tmp_path):
    """After the run (while rvh closes its tier and exits) SIGUSR1 has nothing to save: it is
    ignored, and the exit status stays the guest's, not death by the signal."""
    elf = guest("bench/bytes.elf")
    vm = tmp_path / "late.rvh"
    running = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", elf, "--save", str(vm), "--stats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    stderr = b""
    assert running.stderr is not None
    # --stats is printed when the run is over: from then on, signal it until it exits
    for line in running.stderr:
        stderr += line
        if line.startswith(b"instructions retired:"):
            break
    while running.poll() is None:
        running.send_signal(signal.SIGUSR1)
        time.sleep(0.01)
    stderr += running.stderr.read()
    running.communicate(timeout=60)
    assert running.returncode == 0, stderr.decode()
    assert not vm.exists()  # nothing was saved after the run


def test_snapshot_info_says_what_is_inside(tmp_path):
    vm = tmp_path / "hello.rvh"
    done = rvh("run", guest("hello/hello.elf"), "--save", str(vm), "--save-at", "400")
    assert done.returncode == 0, done.stderr.decode()
    info = rvh("snapshot", "info", str(vm))
    assert info.returncode == 0, info.stderr.decode()
    text = info.stdout.decode()
    assert "rvh VM file, format 1" in text
    assert "256 MiB RAM, 1 hart(s)" in text
    assert "instruction 400 (400 retired)" in text
    assert re.search(r"hart 0: +pc 0x8000[0-9a-f]+ in M-mode", text)
    for tag in ("CONF", "MACH", "HART", "DEVS", "DISK", "PIDX", "RAM "):
        assert f"  {tag}" in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--save-at", "10"], "--save-at N needs --save FILE"),
        (["--save", "/nonexistent/dir/x.rvh"], "cannot write in /nonexistent/dir"),
    ],
)
def test_save_options_are_checked_before_the_run(extra, message):
    done = rvh("run", guest("hello/hello.elf"), *extra)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.decode() == f"rvh: {message}\n" or message in done.stderr.decode()
    assert b"Traceback" not in done.stderr


def test_restore_refuses_machine_options(tmp_path):
    vm = tmp_path / "hello.rvh"
    rvh("run", guest("hello/hello.elf"), "--save", str(vm), "--save-at", "400")
    done = rvh("run", "--restore", str(vm), "--sbi", "--smp", "2")
    assert done.returncode == EXIT_USAGE
    assert done.stderr.decode() == (
        "rvh: --restore takes the machine from its VM file; give no --sbi, --smp\n"
    )
    again = rvh("run", "--restore", str(vm), "--save", str(vm), "--save-at", "300")
    assert again.returncode == EXIT_USAGE
    assert b"already at instruction 400" in again.stderr


def test_a_run_that_ends_before_the_save_point_says_so(tmp_path):
    vm = tmp_path / "never.rvh"
    done = rvh("run", guest("hello/hello.elf"), "--save", str(vm), "--save-at", "99999999")
    assert done.returncode == 0
    assert b"the run ended at instruction" in done.stderr
    assert not vm.exists()


def test_missing_vm_file_is_one_line():
    done = rvh("run", "--restore", "/nonexistent.rvh")
    assert done.returncode == EXIT_LOAD_ERROR
    assert done.stderr.decode() == "rvh: /nonexistent.rvh: no such VM file\n"


@pytest.mark.slow
def test_clones_boot_from_a_snapshot_with_overlays_and_macs_of_their_own(tmp_path):
    """Save the net guest before it probes its NICs; each clone then sees its own MACs, and
    a disk guest's clones write their own overlays while the saved image stays as saved."""
    elf = guest("virtio/net.elf")
    vm = tmp_path / "net.rvh"
    hub = ["--netdev", "hub,id=h0", "--netdev", "hub,id=h0"]
    first = rvh("run", "--sbi", elf, *hub, "--save", str(vm), "--save-at", "1000")
    assert first.returncode == 0, first.stderr.decode()
    for clone in (1, 7):
        done = rvh("run", "--restore", str(vm), "--clone", str(clone))
        assert done.returncode == 0, done.stderr.decode()
        text = done.stdout.decode()
        assert "PASS virtio/net" in text
        assert f"NIC A: slot 7 MAC 52:54:00:80:{clone:02x}:56" in text
        assert f"NIC B: slot 6 MAC 52:54:00:80:{clone:02x}:57" in text
    original = rvh("run", "--restore", str(vm))
    assert "NIC A: slot 7 MAC 52:54:00:12:34:56" in original.stdout.decode()


@pytest.mark.slow
def test_disk_clones_leave_the_saved_image_alone(tmp_path):
    elf = guest("virtio/blk.elf")
    disk = tmp_path / "disk.img"
    subprocess.run(
        [sys.executable, str(MKIMAGE), str(disk), "--size", "8M", "--id", "0"], check=True
    )
    readonly = tmp_path / "ro.img"
    subprocess.run(
        [sys.executable, str(MKIMAGE), str(readonly), "--size", "1M", "--id", "1"], check=True
    )
    drives = [
        "--drive",
        f"file={disk},serial=rvh-disk0",
        "--drive",
        f"file={readonly},readonly=on,serial=rvh-disk1",
    ]
    whole_disk = tmp_path / "whole.img"
    whole_disk.write_bytes(disk.read_bytes())
    whole = rvh("run", "--sbi", elf, "--drive", f"file={whole_disk},serial=rvh-disk0", *drives[2:])
    vm = tmp_path / "blk.rvh"
    first = rvh("run", "--sbi", elf, *drives, "--save", str(vm), "--save-at", "100000000")
    assert first.returncode == 0, first.stderr.decode()
    saved_disk = disk.read_bytes()
    for clone in (1, 2):
        done = rvh("run", "--restore", str(vm), "--clone", str(clone))
        assert done.returncode == 0, done.stderr.decode()
        assert re.sub(rb"\d+ ticks", b"", first.stdout + done.stdout) == re.sub(
            rb"\d+ ticks", b"", whole.stdout
        )
        overlay = Path(f"{vm}.clone{clone}.virtio-blk0.img")
        assert overlay.stat().st_size == len(saved_disk)
        assert overlay.stat().st_blocks > 0  # the clone's writes are there
    assert disk.read_bytes() == saved_disk
    # the clones' writes went where they belong: the original resumes on the saved image
    rest = rvh("run", "--restore", str(vm))
    assert rest.returncode == 0, rest.stderr.decode()
    assert disk.read_bytes() == whole_disk.read_bytes()


def test_snapshot_on_drives_cannot_be_saved(tmp_path):
    disk = tmp_path / "d.img"
    disk.write_bytes(bytes(4096))
    done = rvh(
        "run",
        guest("hello/hello.elf"),
        "--drive",
        f"file={disk},snapshot=on",
        "--save",
        str(tmp_path / "x.rvh"),
    )
    assert done.returncode == EXIT_USAGE
    assert b"use overlay=FILE" in done.stderr
    clone = rvh("run", guest("hello/hello.elf"), "--clone", "2")
    assert clone.returncode == EXIT_USAGE
    assert clone.stderr == b"rvh: --clone K goes with --restore FILE\n"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
def test_live_migration_over_loopback_ends_as_the_unmigrated_run():
    elf = guest("bench/bytes.elf")
    whole = rvh("run", elf, "--stats")
    address = f"tcp:127.0.0.1:{free_port()}"
    destination = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", "--incoming", address, "--stats"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    source = rvh("run", elf, "--migrate-to", address)
    arrived, arrived_errors = destination.communicate(timeout=300)
    assert source.returncode == 0, source.stderr.decode()
    report = re.search(
        rb"migrated to tcp:127.0.0.1:\d+: (\d+) rounds .*, ([\d.]+) MiB sent, "
        rb"downtime ([\d.]+) ms, total ([\d.]+) s",
        source.stderr,
    )
    assert report, source.stderr.decode()
    assert int(report[1]) >= 2  # at least one pre-copy round and the stop-and-copy
    assert destination.returncode == whole.returncode == 0, arrived_errors.decode()
    assert source.stdout + arrived == whole.stdout
    assert stats(arrived_errors) == stats(whole.stderr)


class UdpEchoPeer:
    """The far end of a guest's UDP netdev: echoes every frame back with the MACs swapped,
    ``delay`` seconds later (so an exchange lasts long enough to move the VM in the middle),
    and counts the echoes."""

    MAC = bytes.fromhex("525400000002")

    def __init__(self, delay: float) -> None:
        import socket
        import threading

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = int(self.socket.getsockname()[1])
        self.delay = delay
        self.echoed = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                frame, sender = self.socket.recvfrom(65536)
            except TimeoutError:
                continue
            time.sleep(self.delay)
            self.socket.sendto(frame[6:12] + self.MAC + frame[12:], sender)
            self.echoed += 1

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.socket.close()


@pytest.mark.slow
def test_a_udp_peer_keeps_exchanging_frames_across_the_move():
    """udppeer's initiator sends 200 frames one at a time and waits for each echo.  The VM
    migrates after about a third of them (--migrate-at); the destination binds the same UDP
    netdev, a frame lost in the move is sent again (the guest retransmits), and the exchange
    ends intact on the destination."""
    import socket

    elf = str(require_guest(GUESTS / "virtio" / "udppeer.elf"))
    peer = UdpEchoPeer(delay=0.02)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        local = int(probe.getsockname()[1])
    netdev = (
        f"socket,id=n0,udp=127.0.0.1:{peer.port},localaddr=127.0.0.1:{local},mac=52:54:00:00:00:01"
    )
    address = f"tcp:127.0.0.1:{free_port()}"
    try:
        destination = subprocess.Popen(
            [sys.executable, "-m", "rvh.cli", "run", "--incoming", address, "--stats"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        source = rvh(
            "run", "--sbi", elf, "--netdev", netdev, "--migrate-to", address,
            "--migrate-at", "1500000",
        )  # fmt: skip
        echoed_before = peer.echoed
        arrived, arrived_errors = destination.communicate(timeout=300)
    finally:
        peer.close()
    assert source.returncode == 0 and b"migrated to" in source.stderr, source.stderr.decode()
    assert destination.returncode == 0, arrived_errors.decode()
    assert b"udppeer: initiator" in source.stdout
    assert b"200 frames echoed back intact" in arrived
    assert 10 <= echoed_before < 150  # the move happened in the middle of the exchange
    assert peer.echoed - echoed_before >= 50  # and the exchange went on after it
    assert b"virtio-net0:" in arrived_errors


@pytest.mark.parametrize(
    "sent, message",
    [
        (b"HELO" + (16).to_bytes(8, "little") + b"RVHMIG01" + bytes(8), "a 0-byte memory"),
        (
            b"HELO" + (16).to_bytes(8, "little") + b"RVHMIG01" + (1 << 20).to_bytes(8, "little"),
            "the source went away before the end",
        ),
        (b"GET / HTTP/1.0\r\n\r\n", "not an rvh migration"),
    ],
)
def test_a_broken_incoming_migration_is_one_line(sent, message):
    import socket

    port = free_port()
    destination = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", "--incoming", f"tcp:127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            client = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    with client:
        client.sendall(sent)
    _, errors = destination.communicate(timeout=120)
    assert destination.returncode == EXIT_LOAD_ERROR
    assert errors.decode() == f"rvh: --incoming tcp:127.0.0.1:{port}: {message}\n"


def test_migration_addresses_are_checked():
    done = rvh("run", guest("hello/hello.elf"), "--migrate-to", "udp:x:1")
    assert done.returncode == EXIT_USAGE
    assert done.stderr == b"rvh: --migrate-to udp:x:1: expected tcp:HOST:PORT\n"
    alone = rvh("run", guest("hello/hello.elf"), "--migrate-at", "100")
    assert alone.returncode == EXIT_USAGE
    assert alone.stderr == b"rvh: --migrate-at N needs --migrate-to tcp:HOST:PORT\n"


@pytest.mark.slow
def test_live_migration_of_a_guest_with_a_disk(tmp_path):
    """The source lets go of the disk before the destination takes it; output (less its
    tick measurements), status and the disk at the end are the unmigrated run's."""
    elf = guest("virtio/blk.elf")
    base = tmp_path / "base.img"
    subprocess.run(
        [sys.executable, str(MKIMAGE), str(base), "--size", "8M", "--id", "0"], check=True
    )
    readonly = tmp_path / "ro.img"
    subprocess.run(
        [sys.executable, str(MKIMAGE), str(readonly), "--size", "1M", "--id", "1"], check=True
    )
    disk = tmp_path / "disk.img"
    drives = [
        "--drive",
        f"file={disk},serial=rvh-disk0",
        "--drive",
        f"file={readonly},readonly=on,serial=rvh-disk1",
    ]
    disk.write_bytes(base.read_bytes())
    whole = rvh("run", "--sbi", elf, *drives)
    disk_after_whole = disk.read_bytes()
    disk.write_bytes(base.read_bytes())
    address = f"tcp:127.0.0.1:{free_port()}"
    destination = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", "--incoming", address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    source = rvh("run", "--sbi", elf, *drives, "--migrate-to", address)
    arrived, errors = destination.communicate(timeout=300)
    assert source.returncode == 0 and b"migrated to" in source.stderr, source.stderr.decode()
    assert destination.returncode == whole.returncode == 0, errors.decode()

    def masked(output: bytes) -> bytes:
        return re.sub(rb"\d+ ticks", b"N ticks", output)

    assert masked(source.stdout + arrived) == masked(whole.stdout)
    assert disk.read_bytes() == disk_after_whole


@pytest.mark.slow
def test_an_appliance_starts_as_saved_every_time(tmp_path):
    elf = guest("virtio/blk.elf")
    disk = tmp_path / "disk.img"
    subprocess.run(
        [sys.executable, str(MKIMAGE), str(disk), "--size", "8M", "--id", "0"], check=True
    )
    readonly = tmp_path / "ro.img"
    subprocess.run(
        [sys.executable, str(MKIMAGE), str(readonly), "--size", "1M", "--id", "1"], check=True
    )
    drives = [
        "--drive",
        f"file={disk},serial=rvh-disk0",
        "--drive",
        f"file={readonly},readonly=on,serial=rvh-disk1",
    ]
    whole_disk = tmp_path / "whole.img"
    whole_disk.write_bytes(disk.read_bytes())
    whole = rvh("run", "--sbi", elf, "--drive", f"file={whole_disk},serial=rvh-disk0", *drives[2:])
    vm = tmp_path / "blk.rvh"
    first = rvh("run", "--sbi", elf, *drives, "--save", str(vm), "--save-at", "100000000")
    assert first.returncode == 0, first.stderr.decode()
    appliance = tmp_path / "blk.rvha"
    packed = rvh("appliance", "pack", str(appliance), "--from", str(vm))
    assert packed.returncode == 0, packed.stderr.decode()
    assert b"2 disk(s)" in packed.stdout
    disk.write_bytes(bytes(len(disk.read_bytes())))  # the appliance has its own copy
    vm.unlink()
    saved = appliance.read_bytes()
    for _ in range(2):
        done = rvh("run", str(appliance))
        assert done.returncode == whole.returncode == 0, done.stderr.decode()
        assert re.sub(rb"\d+ ticks", b"", first.stdout + done.stdout) == re.sub(
            rb"\d+ ticks", b"", whole.stdout
        )
    assert appliance.read_bytes() == saved  # every start begins from the same state
    broken = tmp_path / "broken.rvha"
    broken.write_bytes(saved[: len(saved) // 2])
    done = rvh("run", str(broken))
    assert done.returncode == EXIT_LOAD_ERROR
    assert len(done.stderr.splitlines()) == 1 and b"Traceback" not in done.stderr


@pytest.mark.slow
def test_the_linux_appliance_starts_at_a_shell():
    """The setup's demo appliance (tools/linux_appliance.py): Linux saved at its shell.  A
    command typed on the console runs at once; nothing boots (no init banner)."""
    appliance = require_guest(GUESTS / "linux" / "linux.rvha")
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "rvh.cli", "run", str(appliance), "--stats"],
        input=b"echo RVH-$((6 * 7))\npoweroff -f\n",
        capture_output=True,
        timeout=300,
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    assert run.returncode == 0, run.stderr.decode()
    console = run.stdout.decode(errors="replace")
    assert "RVH-42" in console
    assert "RVH-LINUX-INIT" not in console and "Linux version" not in console
    restored = re.search(r"restored in: +([\d.]+) ms", run.stderr.decode())
    assert restored, run.stderr.decode()
    # the figures docs/vm-files.md reports (wall time includes Python and numba loading)
    print(f"linux appliance: restored in {restored[1]} ms, command answered in {seconds:.2f} s")

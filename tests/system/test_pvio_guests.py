"""The pv guests on rvh's built-in SBI: block and network I/O through the platform I/O
extension (RVH_PVIO) give the results the virtio guests get, with one NOTIFY per batch."""

import re
import socket
import subprocess
import sys
import threading
import time

import pytest
from support import (
    GUESTS,
    ROOT,
    assert_flushed_writes_kept,
    kill_after_flushes,
    run_sbi_elf,
    virtio_guest,
    virtio_image,
)

from rvh.isa.sbi import Extension

SECTOR = 512


def written(sector: int) -> bytes:
    """What guests/virtio/pvblk.c writes to disk0's sector ``sector`` (written_fill)."""
    data = bytearray((sector * 3 + j * 5 + 0x5A) & 0xFF for j in range(SECTOR))
    data[0:5] = b"pvblk"
    data[5] = sector & 0xFF
    data[6] = (sector >> 8) & 0xFF
    return bytes(data)


@pytest.mark.slow
def test_pvblk_guest(tmp_path):
    disk0 = virtio_image(tmp_path / "disk0.img", "8M", 0)
    disk1 = virtio_image(tmp_path / "disk1.img", "1M", 1)
    before0, before1 = disk0.read_bytes(), disk1.read_bytes()
    result, output, machine = run_sbi_elf(
        virtio_guest("pvblk"),
        drives=[f"file={disk0},if=pv", f"file={disk1},if=pv,readonly=on"],
    )
    assert "PASS virtio/pvblk" in output, output[-3000:]
    assert (result.status, result.reason) == (0, "SBI shutdown")
    after = disk0.read_bytes()
    assert after[: 1024 * SECTOR] == b"".join(written(s) for s in range(1024))
    assert after[1024 * SECTOR :] == before0[1024 * SECTOR :]
    assert disk1.read_bytes() == before1
    stats = machine.statistics()["pvio"]
    assert machine.virtio == []  # no virtio slot in use: everything went the pv way
    blk0, blk1 = stats["pv-blk0"], stats["pv-blk1"]
    # 32 + 6 + 1 writes and flush, 9 reads, 7 mixed, 64 single reads; disk1: 16 reads, 1 write
    assert blk0["requests"] == 39 + 9 + 7 + 64 and blk1["requests"] == 17
    assert blk0["notifies"] == 3 + 64 and blk1["notifies"] == 2
    assert blk0["errors"] == 6 and blk1["errors"] == 1
    assert blk0["flushes"] == 1 and blk0["written_bytes"] == 1024 * SECTOR
    calls = machine.sbi.by_extension[Extension.RVH_PVIO]
    # NOTIFY per batch, plus the probe-time DEVICE_INFO calls and SET_RINGs (3 + 2)
    assert calls == blk0["notifies"] + blk1["notifies"] + 5
    assert "pvblk: 136 requests, 69 notifies" in output


@pytest.mark.slow
def test_pvnet_guest_on_a_hub(tmp_path):
    pcap = tmp_path / "a.pcap"
    result, output, machine = run_sbi_elf(
        virtio_guest("pvnet"),
        netdevs=[
            f"hub,id=h0,if=pv,mac=52:54:00:12:34:01,pcap={pcap}",
            "hub,id=h0,if=pv,mac=52:54:00:12:34:02",
        ],
    )
    assert "PASS virtio/pvnet" in output, output[-3000:]
    assert (result.status, result.reason) == (0, "SBI shutdown")
    for line in ("A to B: 0 and 600", "B to A: 600 and 0", "both ways: 600 and 600"):
        assert f"pvnet: {line} frames" in output
    from rvh.devices.virtio.netdev import read_pcap

    frames = [data for _, data in read_pcap(str(pcap))]
    assert len(frames) == 4 * 600  # every frame passed NIC A's tap, one way or the other
    assert machine.statistics()["hubs"]["h0"]["frames"] == len(frames)
    stats = machine.statistics()["pvio"]
    for nic in stats.values():
        assert nic["tx_frames"] == 1200 and nic["rx_frames"] == 1200
        assert nic["rx_dropped_overrun"] == 0 and nic["rx_dropped_not_ready"] == 0
        # batches: far fewer NOTIFY calls than requests
        assert nic["notifies"] * 4 < nic["requests"]


# ---- as VMs: the hypervisor's pv backend (firmware/hyp/pvio.c) -------------------------------
def run_vms(*specs_text: str):
    """VMs under the hypervisor, their devices attached as rvh run --hyp attaches them."""
    from rvh.boot import HypervisorBoot
    from rvh.config import MachineConfig
    from rvh.hyp import (
        STATS_ADDRESS,
        STATS_SIZE,
        GuestSpec,
        attach_vm_devices,
        host_memory_needed,
        read_stats,
    )
    from rvh.machine import Machine

    specs = [GuestSpec.parse(text) for text in specs_text]
    config = MachineConfig(memory=host_memory_needed(specs), max_instructions=2_000_000_000)
    attach_vm_devices(config, specs)
    output = bytearray()
    machine = Machine(config, output=output.extend)
    machine.boot(HypervisorBoot(specs))
    result = machine.run_sync()
    stats = read_stats(machine.bus.read_bytes(STATS_ADDRESS, STATS_SIZE))
    return result, output.decode(errors="replace"), machine, stats


def io_exits(counters: dict) -> int:
    """The exits I/O costs a pv VM: NOTIFY calls, PLIC accesses, host interrupts while it ran,
    and its wfi while it waited."""
    return (
        counters["io_notifies"] + counters["plic_mmio"] + counters["interrupts"] + counters["wfi"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("virt", ["hw", "trap"])
def test_pvblk_guest_as_a_vm_leaves_the_disk_as_it_does_natively(tmp_path, virt):
    native0 = virtio_image(tmp_path / "native0.img", "8M", 0)
    native1 = virtio_image(tmp_path / "native1.img", "1M", 1)
    _, native, native_machine = run_sbi_elf(
        virtio_guest("pvblk"),
        drives=[f"file={native0},if=pv", f"file={native1},if=pv,readonly=on"],
    )
    assert "PASS virtio/pvblk" in native
    disk0 = virtio_image(tmp_path / "vm0.img", "8M", 0)
    disk1 = virtio_image(tmp_path / "vm1.img", "1M", 1)
    before1 = disk1.read_bytes()
    result, output, machine, stats = run_vms(
        f"{virtio_guest('pvblk')},drive={disk0},drive={disk1},readonly=on,io=pv,virt={virt}"
    )
    assert "PASS virtio/pvblk" in output, output[-3000:]
    assert result.status == 0
    assert disk0.read_bytes() == native0.read_bytes()
    assert disk1.read_bytes() == before1
    assert machine.virtio == []  # no virtio device: the machine's pv devices did the I/O
    # the same requests and batches as natively, each batch one NOTIFY exit
    assert machine.statistics()["pvio"] == native_machine.statistics()["pvio"]
    counters = stats[0].counters
    assert counters["io_requests"] == 136 and counters["io_notifies"] == 69
    assert counters["virtio_mmio"] == counters["io_copies"] == counters["io_errors"] == 0
    assert counters["io_irqs"] == 69
    assert io_exits(counters) < 6 * counters["io_notifies"]


@pytest.mark.slow
@pytest.mark.parametrize("virt", ["hw", "trap"])
def test_pvnet_guest_as_a_vm(virt):
    result, output, machine, stats = run_vms(
        f"{virtio_guest('pvnet')},netdev=h0,netdev=h0,io=pv,virt={virt}"
    )
    assert "PASS virtio/pvnet" in output, output[-3000:]
    assert result.status == 0
    for line in ("A to B: 0 and 600", "B to A: 600 and 0", "both ways: 600 and 600"):
        assert f"pvnet: {line} frames" in output
    assert machine.statistics()["hubs"]["h0"]["frames"] == 2400
    counters = stats[0].counters
    assert counters["io_requests"] == 4930 and counters["io_copies"] == 0
    # batches: a few hundredths of an exit per request
    assert io_exits(counters) * 10 < counters["io_requests"]


def hypervisor_text() -> tuple[int, bytes]:
    from elftools.elf.elffile import ELFFile

    from rvh.hyp import hypervisor_elf

    with open(hypervisor_elf(), "rb") as file:
        text = ELFFile(file).get_section_by_name(".text")
        return text["sh_addr"], text.data()


@pytest.mark.parametrize("virt", ["hw", "trap"])
def test_hostile_pv_rings_get_errors_and_touch_nobody(tmp_path, virt):
    # wild calls, wild buffers (past the VM's RAM: the next VM's memory in the host), indices
    # out of range, a ring taken back mid-request and random batches, beside a victim VM
    disk = virtio_image(tmp_path / "scratch.img", "1M", 1)
    before = disk.read_bytes()
    result, output, machine, stats = run_vms(
        f"{GUESTS / 'hyp' / 'pvhostile.elf'},drive={disk},netdev=h0,io=pv,virt={virt}",
        str(GUESTS / "hyp" / "victim.elf"),
    )
    assert result.status == 0, output[-3000:]
    assert "[vm0] PASS hyp/pvhostile" in output
    assert (
        "[vm0] pvhostile: 14 calls refused, 3 rings refused, 1707 random requests answered as "
        "predicted" in output
    )
    assert "[vm0] pvhostile: 10 NIC requests refused, nothing sent" in output
    assert machine.statistics()["hubs"]["h0"]["frames"] == 0  # no frame of anybody's memory
    assert "[vm1] victim: 1 MiB intact after 8 rounds" in output
    assert output.count("is not within a ring of rsp_prod") == 3
    assert stats[0].counters["io_errors"] == 3
    assert stats[1].counters["io_requests"] == 0
    assert disk.read_bytes() == before  # every write asked for had to fail
    address, code = hypervisor_text()
    assert machine.bus.read_bytes(address, len(code)) == code


@pytest.mark.slow
def test_pvblkbench_as_a_vm_keeps_the_ring_full_with_few_exits(tmp_path):
    # blkbench's workload with 64 requests in flight: 70,146 requests (as blkbench makes),
    # every read checked against the pattern or the stamps of the write before it
    disk = virtio_image(tmp_path / "bench.img", "32M", 2)
    result, output, machine, stats = run_vms(f"{virtio_guest('pvblkbench')},drive={disk},io=pv")
    assert "PASS virtio/pvblkbench" in output, output[-3000:]
    assert "the region holds the write-64k stamps" in output
    counters = stats[0].counters
    assert counters["io_requests"] == 70_146 and counters["io_errors"] == 0
    # one NOTIFY per batch: a full ring (64) per NOTIFY at most, and a few per batch in all
    assert 70_146 / 64 <= counters["io_notifies"] < 70_146 / 8
    assert counters["exits"] < 0.2 * counters["io_requests"]


@pytest.mark.slow
@pytest.mark.parametrize("as_vm", [False, True], ids=["native", "vm"])
def test_sigkill_loses_no_write_seen_flushed_over_the_pv_path(tmp_path, as_vm):
    # a pv FLUSH completes only after fdatasync, natively and through the hypervisor's backend:
    # every "flushed" line is a promise the image keeps when rvh is killed at any moment
    disk = virtio_image(tmp_path / "flush.img", "1M", 3)
    elf = virtio_guest("pvblkflush")
    if as_vm:
        devices = ["--hyp", "--guest", f"{elf},drive={disk},io=pv"]
    else:
        devices = ["--sbi", str(elf), "--drive", f"file={disk},if=pv,cache=writeback"]
    assert_flushed_writes_kept(disk, kill_after_flushes(devices, 300))


def test_io_pv_is_not_exported_for_qemu(tmp_path):
    from rvh.errors import ConfigError
    from rvh.hyp import GuestSpec, export_for_qemu

    spec = GuestSpec.parse(f"{virtio_guest('pvblk')},drive=x.img,io=pv")
    with pytest.raises(ConfigError, match="io=pv needs rvh's platform I/O extension"):
        export_for_qemu([spec], tmp_path)


# ---- in VM files: saved with requests in flight, restored, migrated -------------------------
# the --stats lines that describe the host, not the machine: its clock, and what the
# translating tier (the default) compiled and ran, which depends on the run's history
HOST_CLOCK = re.compile(r"^(wall time|speed|restored in|tier jit|code|translated code|code cache):")


def rvh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rvh.cli", *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip


def measured(stderr: str) -> list[str]:
    """--stats without the lines that measure the host."""
    return [line for line in stderr.splitlines() if not HOST_CLOCK.match(line)]


def pvblk_run(how: str, disk0, disk1) -> tuple[str, ...]:
    """pvblk with virtual I/O timing, natively (if=pv) or as an io=pv VM."""
    elf = str(virtio_guest("pvblk"))
    if how == "native":
        return (
            "--io-timing", "virtual", "--sbi", elf,
            "--drive", f"file={disk0},if=pv", "--drive", f"file={disk1},if=pv,readonly=on",
        )  # fmt: skip
    return (
        "--io-timing", "virtual", "--hyp", "--guest",
        f"{elf},drive={disk0},drive={disk1},readonly=on,io=pv,virt={how}",
    )  # fmt: skip


def first_batch_step(how: str, disk0, disk1) -> int:
    """The instruction at which pv-blk1's first batch (16 reads of 64 KiB) is taken, its
    responses due about a million ns later: pvblk_run's machine, run here and watched."""
    from rvh.boot import HypervisorBoot
    from rvh.config import MachineConfig
    from rvh.hyp import GuestSpec, attach_vm_devices, host_memory_needed
    from rvh.machine import Machine

    if how == "native":
        config = MachineConfig(
            firmware_traps=True,
            io_timing="virtual",
            drives=[f"file={disk0},if=pv", f"file={disk1},if=pv,readonly=on"],
        )
        machine = Machine(config, output=lambda data: None)
        machine.load_sbi_payload(str(virtio_guest("pvblk")))
    else:
        specs = [GuestSpec.parse(pvblk_run(how, disk0, disk1)[-1])]
        config = MachineConfig(memory=host_memory_needed(specs), io_timing="virtual")
        attach_vm_devices(config, specs)
        machine = Machine(config, output=lambda data: None)
        machine.boot(HypervisorBoot(specs))
    device = machine.pv_devices[1]
    steps: list[int] = []
    kick = device.virtual_kick

    def watched(now_ns: int) -> None:
        kick(now_ns)
        if device.virtual_due() is not None and not steps:
            steps.append(machine.steps)

    device.virtual_kick = watched  # type: ignore[method-assign]
    assert machine.run_sync().status == 0
    return steps[0]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["native", "hw", "trap"])
def test_pv_disks_saved_with_a_batch_due_resume_as_the_uninterrupted_run(tmp_path, how):
    # with virtual I/O timing the data of a batch moves at its NOTIFY and its responses come
    # later: the file keeps the rings and the batch due, and the restored run ends as the
    # uninterrupted one, instruction for instruction (output, --stats) and disk byte for byte
    whole0 = virtio_image(tmp_path / "whole0.img", "8M", 0)
    whole1 = virtio_image(tmp_path / "whole1.img", "1M", 1)
    whole = rvh("run", *pvblk_run(how, whole0, whole1), "--stats")
    assert whole.returncode == 0, whole.stderr
    assert "PASS virtio/pvblk" in whole.stdout
    split0 = virtio_image(tmp_path / "split0.img", "8M", 0)
    split1 = virtio_image(tmp_path / "split1.img", "1M", 1)
    # a few instructions on, before the driver waits for the interrupt (in wfi it retires
    # nothing until the responses come)
    save_at = first_batch_step(how, split0, split1) + 20
    assert split0.read_bytes() == whole0.read_bytes()  # the watched run wrote them: again
    split0 = virtio_image(tmp_path / "split0.img", "8M", 0)
    vm = tmp_path / "pv.rvh"
    save = ("--save", str(vm), "--save-at", str(save_at))
    first = rvh("run", *pvblk_run(how, split0, split1), *save)
    assert first.returncode == 0, first.stderr
    info = rvh("snapshot", "info", str(vm))
    assert info.returncode == 0, info.stderr
    assert "pv-blk0:     pv, 1 of 1 rings attached, disk " in info.stdout
    assert f"pv-blk1:     pv, 1 of 1 rings attached, 1 batch due, disk {split1}" in info.stdout
    rest = rvh("run", "--restore", str(vm), "--stats")
    assert rest.returncode == 0, rest.stderr
    assert first.stdout + rest.stdout == whole.stdout
    assert measured(rest.stderr) == measured(whole.stderr)
    assert split0.read_bytes() == whole0.read_bytes()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def migrated_pvblk(tmp_path, how: str, slow_link: bool = False) -> subprocess.CompletedProcess[str]:
    """pvblk_run moved at instruction 700,000 to an ``rvh run --incoming`` over loopback
    (through a SlowLink if asked): the destination ends as the unmigrated run, output,
    --stats and disk.  Returns the source's run."""
    whole0 = virtio_image(tmp_path / "whole0.img", "8M", 0)
    whole1 = virtio_image(tmp_path / "whole1.img", "1M", 1)
    whole = rvh("run", *pvblk_run(how, whole0, whole1), "--stats")
    assert whole.returncode == 0, whole.stderr
    moved0 = virtio_image(tmp_path / "moved0.img", "8M", 0)
    moved1 = virtio_image(tmp_path / "moved1.img", "1M", 1)
    address = f"tcp:127.0.0.1:{free_port()}"
    destination = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", "--incoming", address, "--stats"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    target = SlowLink(address).address if slow_link else address
    source = rvh(
        "run", *pvblk_run(how, moved0, moved1), "--migrate-to", target, "--migrate-at", "700000"
    )
    arrived, errors = destination.communicate(timeout=600)
    assert source.returncode == 0 and "migrated to tcp:" in source.stderr, source.stderr
    assert destination.returncode == 0, errors
    assert source.stdout + arrived == whole.stdout
    assert measured(errors) == measured(whole.stderr)
    assert moved0.read_bytes() == whole0.read_bytes()
    return source


@pytest.mark.slow
@pytest.mark.parametrize("how", ["native", "hw"])
def test_pv_disks_migrate_and_end_as_the_unmigrated_run(tmp_path, how):
    migrated_pvblk(tmp_path, how)


class SlowLink:
    """A TCP relay that forwards 16 KiB every 10 ms (1.6 MB/s) from whoever connects on
    ``address`` to ``destination``, with a small receive window, so that a sender's
    ``send_all`` blocks as on a congested link or a destination starved of CPU."""

    def __init__(self, destination: str) -> None:
        self.destination = destination
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.address = f"tcp:127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._relay, daemon=True)
        self.thread.start()

    def _relay(self) -> None:
        source, _ = self.listener.accept()
        _, host, port = self.destination.split(":")
        for _ in range(300):  # the destination may still be starting
            try:
                onward = socket.create_connection((host, int(port)))
                break
            except OSError:
                time.sleep(0.1)
        else:
            source.close()  # no destination: the source hears the end
            return
        with source, onward:
            while chunk := source.recv(16384):
                onward.sendall(chunk)
                time.sleep(0.01)


@pytest.mark.slow
def test_a_migration_over_a_slow_link_paces_the_guest_and_completes(tmp_path):
    """The same move as above, over a link slower than the guest: without pacing, the guest
    (0.15 s of run) ends long before 1.3 MiB go at 1.6 MB/s and the migration fails; the
    harts wait for the link after each slice while a message is stuck, and the run then ends
    as the unmigrated one."""
    source = migrated_pvblk(tmp_path, "hw", slow_link=True)
    report = re.search(r"MiB sent, .* total ([\d.]+) s, guest paced ([\d.]+) ms", source.stderr)
    assert report, source.stderr
    # the link took most of a second, and the guest waited for most of it
    assert float(report[1]) > 0.5 and float(report[2]) > 300, source.stderr

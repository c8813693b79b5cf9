"""Virtual I/O under the hypervisor (issue 19): the virtio guests run as hw VMs whose disks and
NICs the hypervisor emulates (firmware/hyp/virtio.c), forwarding every request to a machine
virtio device it drives itself, and end as they end natively."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
from support import (
    GUESTS,
    ROOT,
    require_guest,
    require_opensbi,
    require_qemu,
    run_sbi_elf,
    virtio_guest,
    virtio_image,
)

from rvh.boot import HypervisorBoot
from rvh.config import MachineConfig
from rvh.errors import ConfigError
from rvh.hyp import (
    STATS_ADDRESS,
    STATS_SIZE,
    GuestSpec,
    attach_vm_devices,
    export_for_qemu,
    host_memory_needed,
    read_stats,
)
from rvh.machine import Machine

guest = virtio_guest
HOST_CLOCK = re.compile(r"^(wall time|speed|restored in):")
image = virtio_image
run_native = run_sbi_elf


def run_vms(*specs_text: str, **config):
    """The VMs under the hypervisor, their devices attached as rvh run --hyp attaches them."""
    specs = [GuestSpec.parse(text) for text in specs_text]
    machine_config = MachineConfig(
        memory=host_memory_needed(specs), max_instructions=2_000_000_000, **config
    )
    attach_vm_devices(machine_config, specs)
    output = bytearray()
    machine = Machine(machine_config, output=output.extend)
    machine.boot(HypervisorBoot(specs))
    result = machine.run_sync()
    stats = read_stats(machine.bus.read_bytes(STATS_ADDRESS, STATS_SIZE))
    return result, output.decode(errors="replace"), machine, stats


def final_crc(output: str) -> str:
    found = re.search(r"disk \(final\): read \d+ sectors in \d+ ticks, crc32 (0x[0-9a-f]+)", output)
    assert found, output[-3000:]
    return found.group(1)


@pytest.fixture(scope="module")
def native_blk(tmp_path_factory):
    """The blk guest natively: its output and the disk it leaves."""
    path = tmp_path_factory.mktemp("native")
    disk0, disk1 = image(path / "disk0.img", "8M", 0), image(path / "disk1.img", "1M", 1)
    _, output, _ = run_native(
        guest("blk"), drives=[f"file={disk0},format=raw", f"file={disk1},readonly=on"]
    )
    assert "PASS virtio/blk" in output, output[-3000:]
    return output, disk0.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("io", ["emulated", "passthrough"])
def test_blk_guest_as_a_vm_leaves_the_disk_as_it_does_natively(tmp_path, native_blk, io):
    native, native_disk = native_blk
    disk0, disk1 = image(tmp_path / "vm0.img", "8M", 0), image(tmp_path / "vm1.img", "1M", 1)
    read_only_before = disk1.read_bytes()
    result, output, machine, stats = run_vms(
        f"{guest('blk')},drive={disk0},drive={disk1},readonly=on,io={io}"
    )
    assert "PASS virtio/blk" in output, output[-3000:]  # (a lone VM's lines have no [vm0])
    assert result.status == 0
    # the same requests on the same disks: the same contents, byte for byte
    assert final_crc(output) == final_crc(native)
    assert disk0.read_bytes() == native_disk
    assert disk1.read_bytes() == read_only_before
    counters = stats[0].counters
    devices = machine.statistics()["virtio"]
    assert set(devices) == {"virtio-blk0", "virtio-blk1"}
    # the VM saw its devices where it sees them natively: slot 7 read-write, slot 6 read-only
    assert "slot 7: capacity 16384 sectors" in output and "slot 6: capacity 2048 sectors" in output
    assert counters["io_errors"] == counters["iommu_faults"] == 0 and counters["io_irqs"] > 0
    if io == "emulated":
        # every request went through the hypervisor to the machine devices it drives
        assert counters["io_requests"] > 500
        assert counters["io_copies"] >= counters["io_requests"]
        assert counters["io_bytes"] >= 2 * (8 << 20)  # the disk was read whole twice at least
        assert counters["virtio_mmio"] > 1000
        assert counters["mmio"] >= counters["virtio_mmio"] + counters["plic_mmio"]
        assert "iommu" not in machine.statistics()
    else:
        # the device's registers are the VM's: only the scan of the 6 empty slots exits (6
        # registers each), and nothing is copied; its DMA went through the IOMMU
        assert counters["virtio_mmio"] == 36
        assert counters["io_requests"] == counters["io_copies"] == 0
        iommu = machine.statistics()["iommu"]
        assert iommu["translations"] > 1000 and iommu["faults"] == 0


@pytest.mark.slow
def test_net_guest_as_a_vm_talks_between_its_two_nics_on_a_hub():
    result, output, machine, stats = run_vms(f"{guest('net')},netdev=h0,netdev=h0")
    assert "PASS virtio/net" in output, output[-3000:]
    assert result.status == 0
    _, native, _ = run_native(guest("net"), netdevs=["hub,id=h0", "hub,id=h0"])
    assert "PASS virtio/net" in native
    for nic in ("A", "B"):
        pattern = rf"round (\d: .*)|round \d NIC {nic}: (sent \d+, received \d+)"
        rounds = re.findall(pattern, output)
        # the same rounds (features, queue sizes, buffers) and the same frames each way
        assert len(rounds) == 8 and rounds == re.findall(pattern, native)
    frames = machine.statistics()["hubs"]["h0"]["frames"]
    counters = stats[0].counters
    # every frame sent is one request out and one frame delivered in, each copied once
    assert counters["io_requests"] == 2 * frames
    assert counters["io_errors"] == 0
    for nic in machine.statistics()["virtio"].values():
        assert nic["rx_dropped_overrun"] == 0  # the hub held senders back instead


@pytest.mark.slow
def test_sigkill_loses_no_write_a_vm_saw_flushed(tmp_path):
    # the VM's FLUSH completes only once the machine device's did (after fdatasync), so a
    # "flushed" line on the hypervisor's console is a promise the image keeps
    disk = image(tmp_path / "flush.img", "1M", 3)
    child = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", "--hyp", "--guest",
         f"{guest('blkflush')},drive={disk}", "--serial", "stdio"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    flushed = {}
    deadline = time.monotonic() + 300
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith(b"flushed "):
                sector, generation = map(int, line.split()[1:3])
                flushed[sector] = generation
            if len(flushed) >= 2048 and flushed.get(100, 0) >= 1 or time.monotonic() > deadline:
                break
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert len(flushed) > 500
    data = disk.read_bytes()
    for sector, generation in flushed.items():
        found = int.from_bytes(data[512 * sector + 8 : 512 * sector + 16], "little")
        assert found >= generation, f"sector {sector}: generation {found} < flushed {generation}"


def hypervisor_text() -> tuple[int, bytes]:
    from elftools.elf.elffile import ELFFile

    from rvh.hyp import hypervisor_elf

    with open(hypervisor_elf(), "rb") as file:
        text = ELFFile(file).get_section_by_name(".text")
        return text["sh_addr"], text.data()


def test_hostile_rings_never_crash_the_hypervisor_or_touch_anybody(tmp_path):
    # wild buffers, loops, bad indices, bad indirect tables, wild rings, an oversized request
    # and a reset mid-request, beside a victim checking its memory and a bystander
    disk = image(tmp_path / "disk.img", "1M", 1)
    before = disk.read_bytes()
    result, output, machine, stats = run_vms(
        str(GUESTS / "hyp" / "victim.elf"),
        f"{require_guest(GUESTS / 'hyp' / 'ringhostile.elf')},drive={disk}",
        str(GUESTS / "smode" / "hello.elf"),
    )
    assert result.status == 0, output[-3000:]
    assert "[vm1] PASS hyp/ringhostile" in output
    assert "[vm1] ringhostile: 18 rings refused, device back after each" in output
    assert "[vm0] victim: 1 MiB intact after 8 rounds" in output
    assert "[vm2] PASS smode/hello" in output
    # one line per refusal on the hypervisor's console, each counted
    assert output.count("device needs reset") == 18
    assert "rings misaligned or outside the VM's RAM" in output
    assert stats[1].counters["io_errors"] == 19  # 18 refused rings + the oversized request
    assert stats[0].counters["io_requests"] == stats[2].counters["io_requests"] == 0
    assert disk.read_bytes() == before  # only reads were asked for: nothing was written
    address, code = hypervisor_text()
    assert machine.bus.read_bytes(address, len(code)) == code


def test_passthrough_dma_outside_the_vm_is_an_iommu_fault_never_a_write(tmp_path):
    # a VM with a disk assigned points its DMA past the end of its RAM (where the next VM's
    # memory is in the host): reads, writes and rings there; the victim beside it checks its
    # memory, and the disk must not change
    disk = image(tmp_path / "disk.img", "1M", 1)
    before = disk.read_bytes()
    escape = require_guest(GUESTS / "hyp" / "dmaescape.elf")
    result, output, machine, stats = run_vms(
        f"{escape},drive={disk},io=passthrough", str(GUESTS / "hyp" / "victim.elf")
    )
    assert result.status == 0, output[-3000:]
    assert "[vm0] dmaescape: 3 escapes refused, the device back after each" in output
    assert "[vm0] PASS hyp/dmaescape" in output
    assert "[vm1] victim: 1 MiB intact after 8 rounds" in output
    # each one a record in the IOMMU's fault queue, read and reported by the hypervisor: a
    # write guest-page fault (23) for the read into memory, read faults (21) for the write
    # from it and for the descriptor table
    refused = re.findall(r"hyp: vm0: iommu: DMA of the device in machine slot 7 refused "
                         r"\(cause (\d+)\) at guest-physical (0x[0-9a-f]+)", output)  # fmt: skip
    assert refused == [("23", "0x84001000"), ("21", "0x84002000"), ("21", "0x84003000")]
    assert stats[0].counters["iommu_faults"] == 3 and stats[1].counters["iommu_faults"] == 0
    assert machine.statistics()["iommu"]["faults"] == 3
    assert disk.read_bytes() == before


@pytest.mark.slow
def test_net_guest_with_both_nics_assigned():
    result, output, machine, stats = run_vms(f"{guest('net')},netdev=h0,netdev=h0,io=passthrough")
    assert "PASS virtio/net" in output, output[-3000:]
    assert result.status == 0
    assert stats[0].counters["io_requests"] == 0 and stats[0].counters["io_irqs"] > 0
    assert machine.statistics()["hubs"]["h0"]["frames"] > 1000


def test_random_rings_get_answers_and_touch_nobody(tmp_path):
    # 400 rounds of random descriptor tables (half honest requests, half noise) beside a victim:
    # every chain is completed or refused with NEEDS_RESET, never left hanging, and every honest
    # request gets its status (the guest checks both)
    disk = image(tmp_path / "scratch.img", "1M", 1)
    fuzz = require_guest(GUESTS / "hyp" / "ringfuzz.elf")
    result, output, machine, stats = run_vms(
        f"{fuzz},drive={disk}", str(GUESTS / "hyp" / "victim.elf")
    )
    assert result.status == 0, output[-3000:]
    found = re.search(
        r"\[vm0\] ringfuzz: 400 rounds: (\d+) chains completed, (\d+) refused", output
    )
    assert found and "[vm0] PASS hyp/ringfuzz" in output, output[-3000:]
    completed, refused = map(int, found.groups())
    assert completed + refused == 400 and completed > 100 and refused > 100
    assert stats[0].counters["io_errors"] == refused
    assert "[vm1] victim: 1 MiB intact after 8 rounds" in output
    address, code = hypervisor_text()
    assert machine.bus.read_bytes(address, len(code)) == code


@pytest.mark.qemu
def test_the_emulated_path_drives_qemus_virtio_devices_too(tmp_path):
    # the same hypervisor, host tree and VMs on QEMU 7.2: its machine virtio devices (QEMU's
    # virtio-blk-device and virtio-net-device in the same slots) are what the hypervisor drives
    require_qemu()
    firmware = require_opensbi()
    disk0, disk1 = image(tmp_path / "q0.img", "8M", 0), image(tmp_path / "q1.img", "1M", 1)
    read_only_before = disk1.read_bytes()
    runs = {
        "blk": f"{guest('blk')},drive={disk0},drive={disk1},readonly=on",
        "net": f"{guest('net')},netdev=h0,netdev=h0",
    }
    for name, spec in runs.items():
        command = export_for_qemu([GuestSpec.parse(spec)], tmp_path / name, str(firmware))
        assert "virtio-mmio.force-legacy=false" in command
        qemu = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert f"PASS virtio/{name}" in qemu.stdout, qemu.stdout[-3000:] + qemu.stderr
        assert "hyp: vm 0 (hw): status 0 (shutdown)" in qemu.stdout
        assert re.search(r"io_requests [1-9]", qemu.stdout)  # through the hypervisor
    assert disk1.read_bytes() == read_only_before


def test_passthrough_is_not_exported_for_qemu(tmp_path):
    with pytest.raises(ConfigError, match="io=passthrough needs rvh's RISC-V IOMMU"):
        export_for_qemu([GuestSpec.parse(f"{guest('blk')},drive=x.img,io=passthrough")], tmp_path)


def test_the_iommu_sits_in_front_of_every_virtio_device_and_in_the_tree(tmp_path):
    from rvh import config as C
    from rvh.fdt import parse_dtb, virtio_path

    disk = image(tmp_path / "d.img", "1M", 1)
    config = MachineConfig(iommu=True, drives=[f"file={disk}"], netdevs=["hub,id=h"])
    machine = Machine(config, output=lambda data: None)
    tree = parse_dtb(machine.device_tree())
    node = tree[f"/soc/iommu@{C.IOMMU_BASE:x}"]
    assert node.get_str("compatible") == "riscv,iommu"
    assert node.get_u32("#iommu-cells") == 1
    assert node.get_cells("interrupts") == [12, 13, 14, 15]
    phandle = node.get_u32("phandle")
    # device_id = slot: the disk is in slot 7, the NIC in slot 6
    assert tree[virtio_path(7)].get_cells("iommus") == [phandle, 7]
    assert tree[virtio_path(6)].get_cells("iommus") == [phandle, 6]
    assert [device.memory.device_id for device in machine.virtio] == [7, 6]
    assert all(device.memory.iommu is machine.iommu for device in machine.virtio)
    # reset to Bare: DMA goes through untranslated until software programs the IOMMU
    assert machine.iommu is not None and machine.iommu.read(0x10, 8) & 0xF == 1  # ddtp
    for device in machine.virtio:
        device.close()


def test_a_passthrough_vm_saved_mid_run_resumes_as_the_uninterrupted_run(tmp_path):
    # the IOMMU's registers, queues and caches are machine state: saved in the middle of the
    # VM's DMA and restored, the run ends as the uninterrupted one, disk byte for byte; with
    # virtual I/O timing, instruction for instruction (output, --stats)
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "rvh.cli", "run", *args],
            capture_output=True, text=True, timeout=600, cwd=ROOT,
        )  # fmt: skip

    def spec(disk) -> tuple[str, ...]:
        return (
            "--io-timing", "virtual", "--hyp", "--guest",
            f"{guest('blk')},drive={disk},io=passthrough",
        )  # fmt: skip

    whole_disk, split_disk = image(tmp_path / "a.img", "8M", 0), image(tmp_path / "b.img", "8M", 0)
    whole = cli(*spec(whole_disk), "--stats")
    assert whole.returncode == 0, whole.stderr
    assert "PASS virtio/blk" in whole.stdout
    found = re.search(r"instructions retired: (\d+)", whole.stderr)
    assert found, whole.stderr
    save_at = int(found[1]) // 2
    vm = tmp_path / "vm.rvh"
    first = cli(*spec(split_disk), "--save", str(vm), "--save-at", str(save_at))
    assert first.returncode == 0, first.stderr
    assert "iommu" in subprocess.run(
        [sys.executable, "-m", "rvh.cli", "snapshot", "info", str(vm)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    ).stdout.lower()  # fmt: skip
    rest = cli("--restore", str(vm), "--stats")
    assert rest.returncode == 0, rest.stderr
    split = first.stdout + rest.stdout
    assert "PASS virtio/blk" in split
    # the same, but for the image's name, which the guest reads back (GET_ID)
    assert split.replace("b.img", "a.img") == whole.stdout
    assert measured(rest.stderr) == measured(whole.stderr)
    assert split_disk.read_bytes() == whole_disk.read_bytes()


def measured(stderr: str) -> list[str]:
    """--stats (from its first line: device messages come before) without the lines that
    measure the host."""
    lines = stderr.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("instructions retired:"))
    return [line for line in lines[first:] if not HOST_CLOCK.match(line)]

"""Virtual I/O under the hypervisor (issue 19): the virtio guests run as hw VMs whose disks and
NICs the hypervisor emulates (firmware/hyp/virtio.c), forwarding every request to a machine
virtio device it drives itself, and end as they end natively."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import (
    GUESTS,
    ROOT,
    assert_flushed_writes_kept,
    kill_after_flushes,
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
# the --stats lines that describe the host, not the machine: its clock, and what the
# translating tier (the default) compiled and ran, which depends on the run's history
HOST_CLOCK = re.compile(r"^(wall time|speed|restored in|tier jit|code|translated code|code cache):")
image = virtio_image
run_native = run_sbi_elf


def run_vms(*specs_text: str, **config):
    """The VMs under the hypervisor, their devices attached as rvh run --hyp attaches them."""
    specs = [GuestSpec.parse(text) for text in specs_text]
    config.setdefault("max_instructions", 2_000_000_000)
    machine_config = MachineConfig(memory=host_memory_needed(specs), **config)
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


NO_H = "acdfimsu"  # --cpu rv64,h=off: the hart without the H extension

# (virt, io, misa letters of the hart): each mode over each path it has; trap also without H
VM_PATHS = [
    pytest.param("hw", "emulated", None, id="hw-emulated"),
    pytest.param("hw", "passthrough", None, id="hw-passthrough"),
    pytest.param("trap", "emulated", None, id="trap-emulated"),
    pytest.param("trap", "emulated", NO_H, id="trap-emulated-h=off"),
    pytest.param("pv", "emulated", None, id="pv-emulated"),
]


def vm_guest(name: str, virt: str) -> Path:
    """The virtio guest for a mode: a pv VM runs its pv build (guests/build/virtio-pv)."""
    return require_guest(GUESTS / "virtio-pv" / f"{name}.elf") if virt == "pv" else guest(name)


def hart(extensions: str | None) -> dict[str, str]:
    return {"extensions": extensions} if extensions else {}


@pytest.mark.slow
@pytest.mark.parametrize(("virt", "io", "extensions"), VM_PATHS)
def test_blk_guest_as_a_vm_leaves_the_disk_as_it_does_natively(
    tmp_path, native_blk, virt, io, extensions
):
    native, native_disk = native_blk
    disk0, disk1 = image(tmp_path / "vm0.img", "8M", 0), image(tmp_path / "vm1.img", "1M", 1)
    read_only_before = disk1.read_bytes()
    result, output, machine, stats = run_vms(
        f"{vm_guest('blk', virt)},virt={virt},drive={disk0},drive={disk1},readonly=on,io={io}",
        **hart(extensions),
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
        if virt != "hw":
            # each completion reached the guest kernel in U-mode as an injected SEIP
            assert counters["injected_interrupts"] >= counters["io_irqs"] // 2 > 0
            assert stats[0].mode == virt
    else:
        # the device's registers are the VM's: only the scan of the 6 empty slots exits (6
        # registers each), and nothing is copied; its DMA went through the IOMMU
        assert counters["virtio_mmio"] == 36
        assert counters["io_requests"] == counters["io_copies"] == 0
        iommu = machine.statistics()["iommu"]
        assert iommu["translations"] > 1000 and iommu["faults"] == 0


@pytest.fixture(scope="module")
def native_blkbig(tmp_path_factory):
    """guests/virtio/blkbig natively: its output, the disk it leaves, the device's counts."""
    disk = image(tmp_path_factory.mktemp("native-big") / "disk.img", "8M", 0)
    _, output, machine = run_native(guest("blkbig"), drives=[f"file={disk}"])
    assert "PASS virtio/blkbig" in output, output[-3000:]
    assert "seg_max 254, size_max 0" in output  # rvh's device: no limit on a segment
    return output, disk.read_bytes(), machine.statistics()["virtio"]["virtio-blk0"]


BLKBIG_LINES = [
    "256 KiB at sector 1001 in 8192-byte segments: read, written (pattern 41), read back",
    "256 KiB at sector 1001 in 262144-byte segments: read, written (pattern 42), read back",
    "1024 KiB at sector 4093 in 8192-byte segments: read, written (pattern 43), read back",
    "1024 KiB at sector 4093 in 1048576-byte segments: read, written (pattern 44), read back",
    "1024 KiB read from sector 15360, 512 KiB past the end: status 1",
    "blkbig: 13 requests",
]


@pytest.mark.slow
@pytest.mark.parametrize(("virt", "io", "extensions"), VM_PATHS)
def test_requests_larger_than_a_bounce_buffer_end_as_they_do_natively(
    tmp_path, native_blkbig, virt, io, extensions
):
    # 256 KiB and 1 MiB reads and writes in one request each: the emulated path splits each
    # into machine requests of 128 KiB and answers the VM's request when all parts are done
    native, native_disk, native_counts = native_blkbig
    disk = image(tmp_path / "vm.img", "8M", 0)
    result, output, machine, stats = run_vms(
        f"{vm_guest('blkbig', virt)},virt={virt},drive={disk},io={io}", **hart(extensions)
    )
    assert "PASS virtio/blkbig" in output, output[-3000:]
    assert result.status == 0
    for line in BLKBIG_LINES:
        assert line in output and line in native
    assert disk.read_bytes() == native_disk
    counts = machine.statistics()["virtio"]["virtio-blk0"]
    counters = stats[0].counters
    if io == "passthrough":
        assert "seg_max 254, size_max 0" in output  # the machine device itself
        requests = ("reads", "writes", "bytes_read", "bytes_written", "ioerr")
        assert {key: counts[key] for key in requests} == {
            key: native_counts[key] for key in requests
        }
        return
    # the VM's disk advertises what the hypervisor serves: 254 segments of 8 KiB (< 2 MiB)
    assert "seg_max 254, size_max 8192" in output
    assert counters["io_requests"] == 13 and counters["io_errors"] == 0
    # per 256 KiB 2 machine requests, per 1 MiB 8: 4 + 16 reads and 2 + 8 writes, twice each,
    # and the read half past the end: 4 parts that succeed and 4 that fail (the VM's IOERR)
    assert (native_counts["reads"], native_counts["writes"]) == (8, 4)
    assert (counts["reads"], counts["writes"]) == (2 * (4 + 16) + 4, 2 * (2 + 8))
    assert counts["bytes_written"] == native_counts["bytes_written"] == 2 * (256 + 1024) * 1024
    assert counts["ioerr"] == 4 and native_counts["ioerr"] == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("virt", "extensions"),
    [("hw", None), ("trap", None), pytest.param("trap", NO_H, id="trap-h=off"), ("pv", None)],
)
def test_net_guest_as_a_vm_talks_between_its_two_nics_on_a_hub(virt, extensions):
    result, output, machine, stats = run_vms(
        f"{vm_guest('net', virt)},virt={virt},netdev=h0,netdev=h0", **hart(extensions)
    )
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
@pytest.mark.parametrize(("initiator", "echoer"), [("hw", "trap"), ("pv", "hw"), ("trap", "pv")])
def test_two_vms_exchange_frames_on_one_hub(initiator, echoer):
    # udppeer in each VM, one NIC each on hub h0: the NIC whose MAC ends in :01 sends 200 frames
    # (60..1514 bytes), the other echoes each back with the addresses swapped; both check every
    # byte.  The frames cross from one VM's emulated NIC through the hypervisor to a machine NIC,
    # over the hub, and up the other VM's.
    result, output, machine, stats = run_vms(
        f"{vm_guest('udppeer', initiator)},virt={initiator},netdev=h0,mac=52:54:00:00:00:01",
        f"{vm_guest('udppeer', echoer)},virt={echoer},netdev=h0,mac=52:54:00:00:00:02",
    )
    assert result.status == 0, output[-3000:]
    assert "[vm0] udppeer: initiator, mac ..:01" in output
    assert "[vm1] udppeer: echoer, mac ..:02" in output
    assert "[vm0] udppeer: 200 frames echoed back intact" in output, output[-3000:]
    assert "[vm0] PASS virtio/udppeer" in output and "[vm1] PASS virtio/udppeer" in output
    nics = machine.statistics()["virtio"]
    assert set(nics) == {"virtio-net0", "virtio-net1"}
    for nic in nics.values():  # frames both ways: 200 out and 200 back at least (retries add)
        assert nic["tx_frames"] >= 200 and nic["rx_frames"] >= 200
    for vm in stats[:2]:
        assert vm.counters["io_requests"] >= 400 and vm.counters["io_errors"] == 0


@pytest.mark.slow
def test_a_trap_vm_and_a_native_guest_in_two_rvh_processes_exchange_frames():
    # the VM owns the first process' UDP link (netdev=n0 names the native --netdev socket); a
    # native guest on the built-in SBI is the other end
    a, b = free_udp_ports(2)
    link = "socket,id=n0,udp=127.0.0.1:{},localaddr=127.0.0.1:{},mac=52:54:00:00:00:0{}"
    vm = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", "--hyp",
         "--netdev", link.format(b, a, 1),
         "--guest", f"{guest('udppeer')},virt=trap,netdev=n0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    native = subprocess.Popen(
        [sys.executable, "-m", "rvh.cli", "run", "--sbi", str(guest("udppeer")),
         "--netdev", link.format(a, b, 2)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    try:
        out_vm, err_vm = vm.communicate(timeout=300)
        out_native, err_native = native.communicate(timeout=300)
    finally:
        vm.kill()
        native.kill()
    assert vm.returncode == 0, out_vm.decode()[-2000:] + err_vm.decode()[-1000:]
    assert native.returncode == 0, out_native.decode()[-2000:] + err_native.decode()[-1000:]
    assert b"udppeer: initiator, mac ..:01" in out_vm
    assert b"200 frames echoed back intact" in out_vm
    assert b"udppeer: echoer, mac ..:02" in out_native and b"PASS virtio/udppeer" in out_native


def free_udp_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.mark.slow
def test_sigkill_loses_no_write_a_vm_saw_flushed(tmp_path):
    # the VM's FLUSH completes only once the machine device's did (after fdatasync), so a
    # "flushed" line on the hypervisor's console is a promise the image keeps
    disk = image(tmp_path / "flush.img", "1M", 3)
    run = ["--hyp", "--guest", f"{guest('blkflush')},drive={disk}"]
    assert_flushed_writes_kept(disk, kill_after_flushes(run, 300), whole=False)


def hypervisor_text() -> tuple[int, bytes]:
    from elftools.elf.elffile import ELFFile

    from rvh.hyp import hypervisor_elf

    with open(hypervisor_elf(), "rb") as file:
        text = ELFFile(file).get_section_by_name(".text")
        return text["sh_addr"], text.data()


@pytest.mark.parametrize("virt", ["hw", "trap"])
def test_hostile_rings_never_crash_the_hypervisor_or_touch_anybody(tmp_path, virt):
    # wild buffers, loops, bad indices, bad indirect tables, wild rings, an oversized request
    # and a reset mid-request, beside a victim checking its memory and a bystander
    disk = image(tmp_path / "disk.img", "1M", 1)
    before = disk.read_bytes()
    result, output, machine, stats = run_vms(
        str(GUESTS / "hyp" / "victim.elf"),
        f"{require_guest(GUESTS / 'hyp' / 'ringhostile.elf')},virt={virt},drive={disk}",
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


@pytest.mark.parametrize(
    ("virt", "io"),
    [(None, None), ("hw", "emulated"), ("hw", "passthrough"), ("trap", "emulated")],
    ids=["native", "hw-emulated", "hw-passthrough", "trap-emulated"],
)
def test_the_device_interrupt_follows_the_plic_rules_natively_and_in_a_vm(tmp_path, virt, io):
    # guests/hyp/plicirq drives the PLIC by hand around virtio-blk completions: pending, claim,
    # nothing new while in service, a completion with the line high pends again, one with the
    # line low does not, a request whose line fell before the claim is still claimed.  Natively
    # the machine PLIC answers; in a VM the virtual PLIC, over a device the hypervisor emulates
    # or the assigned machine device whose source it holds in service until the VM completes.
    disk = image(tmp_path / "disk.img", "1M", 1)
    plicirq = require_guest(GUESTS / "hyp" / "plicirq.elf")
    if virt is None:
        _, output, _ = run_native(plicirq, drives=[f"file={disk},format=raw"])
    else:
        result, output, _, stats = run_vms(f"{plicirq},virt={virt},drive={disk},io={io}")
        assert result.status == 0, output[-3000:]
        if io == "passthrough":
            # the machine interrupts passed on: the first request's, its re-pending at the
            # completion with the line high, the last request's -- none while in service
            assert stats[0].counters["io_irqs"] == 3
        else:
            assert stats[0].counters["io_irqs"] > 0
    assert "PASS hyp/plicirq" in output, output[-3000:]
    assert "a request latched past its line" in output


@pytest.mark.slow
def test_net_guest_with_both_nics_assigned():
    result, output, machine, stats = run_vms(f"{guest('net')},netdev=h0,netdev=h0,io=passthrough")
    assert "PASS virtio/net" in output, output[-3000:]
    assert result.status == 0
    assert stats[0].counters["io_requests"] == 0 and stats[0].counters["io_irqs"] > 0
    assert machine.statistics()["hubs"]["h0"]["frames"] > 1000


@pytest.mark.parametrize("virt", ["hw", "trap"])
def test_random_rings_get_answers_and_touch_nobody(tmp_path, virt):
    # 400 rounds of random descriptor tables (half honest requests, half noise) beside a victim:
    # every chain is completed or refused with NEEDS_RESET, never left hanging, and every honest
    # request gets its status (the guest checks both)
    disk = image(tmp_path / "scratch.img", "1M", 1)
    fuzz = require_guest(GUESTS / "hyp" / "ringfuzz.elf")
    result, output, machine, stats = run_vms(
        f"{fuzz},virt={virt},drive={disk}", str(GUESTS / "hyp" / "victim.elf")
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
@pytest.mark.parametrize("virt", ["hw", "trap", "pv"])
def test_the_emulated_path_drives_qemus_virtio_devices_too(tmp_path, virt, native_blkbig):
    # the same hypervisor, host tree and VMs on QEMU 7.2: its machine virtio devices (QEMU's
    # virtio-blk-device and virtio-net-device in the same slots) are what the hypervisor drives;
    # requests split into parts too (blkbig)
    require_qemu()
    firmware = require_opensbi()
    disk0, disk1 = image(tmp_path / "q0.img", "8M", 0), image(tmp_path / "q1.img", "1M", 1)
    big = image(tmp_path / "big.img", "8M", 0)
    read_only_before = disk1.read_bytes()
    runs = {
        "blk": f"{vm_guest('blk', virt)},virt={virt},drive={disk0},drive={disk1},readonly=on",
        "net": f"{vm_guest('net', virt)},virt={virt},netdev=h0,netdev=h0",
        "blkbig": f"{vm_guest('blkbig', virt)},virt={virt},drive={big}",
    }
    for name, spec in runs.items():
        command = export_for_qemu([GuestSpec.parse(spec)], tmp_path / name, str(firmware))
        assert "virtio-mmio.force-legacy=false" in command
        qemu = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert f"PASS virtio/{name}" in qemu.stdout, qemu.stdout[-3000:] + qemu.stderr
        assert f"hyp: vm 0 ({virt}): status 0 (shutdown)" in qemu.stdout
        assert re.search(r"io_requests [1-9]", qemu.stdout)  # through the hypervisor
    assert disk1.read_bytes() == read_only_before
    assert big.read_bytes() == native_blkbig[1]


@pytest.mark.qemu
def test_two_vms_exchange_frames_on_one_hub_on_qemu_too(tmp_path):
    # the hub is QEMU's (hubports), the NICs QEMU's virtio-net-device with the VMs' MACs
    require_qemu()
    specs = [
        GuestSpec.parse(f"{guest('udppeer')},virt=hw,netdev=h0,mac=52:54:00:00:00:01"),
        GuestSpec.parse(f"{guest('udppeer')},virt=trap,netdev=h0,mac=52:54:00:00:00:02"),
    ]
    command = export_for_qemu(specs, tmp_path, str(require_opensbi()))
    assert "virtio-net-device,netdev=n0,mac=52:54:00:00:00:01" in command
    qemu = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert "[vm0] udppeer: 200 frames echoed back intact" in qemu.stdout, qemu.stdout[-3000:]
    assert "[vm1] PASS virtio/udppeer" in qemu.stdout


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


LINUX = GUESTS / "linux"
RTC_BASE_NS = 1_740_830_400 * 10**9  # 2025-03-01 12:00:00 UTC on the machine's RTC


def assert_linux_vm_ran(output: str) -> list[str]:
    """What a Linux VM with a disk and a NIC prints in every mode; returns its stripped lines."""
    lines = [line.strip() for line in output.splitlines()]
    version = (LINUX / "kernel-version").read_text().strip()
    assert f"RVH-LINUX-INIT: init running, kernel {version}" in lines, output[-3000:]
    assert "RVH-LINUX-POWEROFF" in lines
    # the kernel found both devices and read the disk's size and partition table through them
    assert "virtio devices: 2" in lines
    assert "[vda] 16384 512-byte logical blocks (8.39 MB/8.00 MiB)" in output
    # the VM's harts have F and D (busybox awk computes in doubles), the tree says so, and its
    # clock is the machine's
    assert "awk: 4987.385095 3.3333e-11" in lines
    assert any(line.startswith("isa") and "rv64imafdc" in line for line in lines)
    assert "date: 2025-03-01 12:00:" in output
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("io", ["emulated", "passthrough"])
def test_linux_boots_as_an_hw_vm_with_its_disk_and_nic(tmp_path, io):
    # Debian's kernel and the busybox initramfs (docs/linux.md) loaded by the hypervisor as QEMU
    # loads them (Image at RAM + 2 MiB, the initrd in the VM's /chosen), with a disk and a NIC
    image, initrd = LINUX / "Image", LINUX / "initramfs.cpio"
    for path in (image, initrd):
        if not path.exists():
            pytest.fail(f"{path} not built: run make guests (guests/linux)", pytrace=False)
    disk = virtio_image(tmp_path / "linux.img", "8M", 0)
    result, output, machine, stats = run_vms(
        f"{image},initrd={initrd},mem=256M,drive={disk},netdev=h0,io={io},append=console=ttyS0",
        rtc_base_ns=RTC_BASE_NS,
        max_instructions=4_000_000_000,
    )
    assert result.status == 0, output[-3000:]
    assert_linux_vm_ran(output)
    counters = stats[0].counters
    assert machine.statistics()["virtio"]["virtio-blk0"]["reads"] >= 1
    if io == "emulated":
        assert counters["io_requests"] >= 1 and counters["virtio_mmio"] > 50
    else:
        assert counters["io_requests"] == 0 and machine.statistics()["iommu"]["translations"] > 0


@pytest.mark.slow
def test_linux_boots_as_a_trap_vm_with_its_disk_and_nic(tmp_path):
    # the same kernel with no H used for it: its kernel in U-mode, every privileged instruction
    # emulated, its page tables shadowed, its F and D run natively while its FS is on
    image, initrd = LINUX / "Image", LINUX / "initramfs.cpio"
    disk = virtio_image(tmp_path / "linux.img", "8M", 0)
    result, output, machine, stats = run_vms(
        f"{image},initrd={initrd},mem=256M,drive={disk},netdev=h0,virt=trap,"
        "append=console=ttyS0 rvh.ip=10.0.0.1/24",
        rtc_base_ns=RTC_BASE_NS,
        io_timing="virtual",
        max_instructions=6_000_000_000,
    )
    assert result.status == 0, output[-3000:]
    lines = assert_linux_vm_ran(output)
    assert "awk division: 1.166667 0.30000000000000004" in lines
    assert "signal 4" not in output and "Oops" not in output
    counters = stats[0].counters
    assert stats[0].mode == "trap"
    # its kernel's privileged work was emulated: CSR accesses, sret, sfence.vma, shadow fills,
    # device registers decoded from shadow-table faults
    for name in ("csr", "sret", "sfence", "shadow_fill", "forwarded", "virtio_mmio"):
        assert counters[name] > 0, name
    assert counters["io_requests"] >= 1
    assert machine.statistics()["virtio"]["virtio-blk0"]["reads"] >= 1


@pytest.mark.slow
def test_two_linux_vms_on_one_hub_ping_each_other():
    # two Debian kernels as hw VMs of one machine, their NICs on one hub: each pings the other
    # (guests/linux/init: rvh.ip= and rvh.peer=) and waits until it has been pinged too; ping
    # reads the clock from user mode, which Linux opens only on finding the SBI PMU extension
    image, initrd = LINUX / "Image", LINUX / "initramfs.cpio"
    specs = [
        f"{image},initrd={initrd},mem=192M,netdev=h0,mac=52:54:00:00:00:0{n + 1},"
        f"append=console=ttyS0 rvh.ip=10.0.0.{n + 1}/24 rvh.peer=10.0.0.{2 - n}"
        for n in range(2)
    ]
    result, output, machine, stats = run_vms(
        *specs, rtc_base_ns=RTC_BASE_NS, max_instructions=20_000_000_000
    )
    assert result.status == 0, output[-4000:]
    lines = [line.strip() for line in output.splitlines()]
    for n in range(2):
        peer = f"10.0.0.{2 - n}"
        ping = f"[vm{n}] RVH-LINUX-PING: {peer}: 3 packets transmitted, 3 packets received"
        assert any(line.startswith(ping) for line in lines), output[-4000:]
        assert f"[vm{n}] RVH-LINUX-POWEROFF" in lines
    assert "signal 4" not in output  # no user-mode rdtime died
    assert machine.hubs["h0"].frames > 12  # the ARP and ICMP frames crossed the hub


@pytest.mark.qemu
def test_linux_boots_as_an_hw_vm_on_qemu_too(tmp_path):
    # the same hypervisor, VM image (kernel and initrd in its RAM) and trees on QEMU 7.2: the
    # VM's disk and NIC are QEMU's devices driven by the hypervisor, its RTC reads QEMU's
    require_qemu()
    image, initrd = LINUX / "Image", LINUX / "initramfs.cpio"
    disk = virtio_image(tmp_path / "linux.img", "8M", 0)
    spec = GuestSpec.parse(
        f"{image},initrd={initrd},mem=256M,drive={disk},netdev=h0,append=console=ttyS0"
    )
    command = export_for_qemu([spec], tmp_path / "q", str(require_opensbi()))
    qemu = subprocess.run(command, capture_output=True, text=True, timeout=300)
    lines = [line.strip() for line in qemu.stdout.splitlines()]
    version = (LINUX / "kernel-version").read_text().strip()
    assert f"RVH-LINUX-INIT: init running, kernel {version}" in lines, qemu.stdout[-3000:]
    assert "virtio devices: 2" in lines and "awk: 4987.385095 3.3333e-11" in lines
    assert "[vda] 16384 512-byte logical blocks (8.39 MB/8.00 MiB)" in qemu.stdout
    assert "RVH-LINUX-POWEROFF" in lines
    assert "hyp: vm 0 (hw): status 0 (poweroff)" in qemu.stdout  # the syscon, as natively

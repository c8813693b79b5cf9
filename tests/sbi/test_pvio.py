"""The built-in SBI's platform I/O extension (RVH_PVIO) against real guest memory: a machine
with pv devices, rings written into its RAM as a driver would, the devices' trio tasks
serving them, and the host image and hub as the far side."""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rvh import config as C
from rvh.config import RAM_BASE, MachineConfig
from rvh.isa.sbi import (
    RVH_PVIO_BLK_MAX_LENGTH,
    RVH_PVIO_RING_SLOTS,
    RVH_PVIO_SLOT_SIZE,
    BaseFunction,
    Error,
    Extension,
    RvhPvioFunction,
    RvhPvioInfo,
    RvhPvioOp,
    RvhPvioRing,
    RvhPvioRingError,
    RvhPvioStatus,
    RvhPvioType,
)
from rvh.machine import Machine

MEMORY = 4 << 20
RING = RAM_BASE + 0x1_0000
RING2 = RAM_BASE + 0x1_1000
INFO = RAM_BASE + 0x1_2000
BUFFERS = RAM_BASE + 0x2_0000
SECTOR = 512
DISK_SECTORS = 64
S = RvhPvioStatus


def make_machine(
    tmp_path, *, readonly=False, nics=0, io_timing="host", image_name="disk.img"
) -> Machine:
    image = tmp_path / image_name
    image.write_bytes(bytes((i * 7 + i // SECTOR) & 0xFF for i in range(DISK_SECTORS * SECTOR)))
    drives = [f"file={image},if=pv" + (",readonly=on" if readonly else "")]
    netdevs = [f"hub,id=h0,if=pv,mac=52:54:00:00:00:0{i + 1}" for i in range(nics)]
    config = MachineConfig(
        firmware_traps=True, memory=MEMORY, drives=drives, netdevs=netdevs, io_timing=io_timing
    )
    return Machine(config, output=lambda data: None)


def call(machine: Machine, function: int, *args: int) -> tuple[int, int]:
    assert machine.pvio is not None
    return machine.pvio.call(function, [*args, 0, 0, 0, 0, 0][:6])


def u32(machine: Machine, address: int) -> int:
    return int.from_bytes(machine.bus.read_bytes(address, 4), "little")


def post(machine, ring, index, op, address=0, length=0, sector=0, tag=None) -> None:
    """Fill request slot ``index`` as a driver does (status PENDING)."""
    slot = ring + RvhPvioRing.FIRST_SLOT + (index % RVH_PVIO_RING_SLOTS) * RVH_PVIO_SLOT_SIZE
    tag = index if tag is None else tag
    data = struct.pack("<QQQIBBH", tag, sector, address, length, op, S.PENDING, 0)
    machine.bus.write_bytes(slot, data)


def publish(machine, ring, req_prod) -> None:
    machine.bus.write_bytes(ring + RvhPvioRing.REQ_PROD, struct.pack("<I", req_prod))


def response(machine, ring, index) -> tuple[int, int, int]:
    """(tag, status, length) of slot ``index``."""
    slot = ring + RvhPvioRing.FIRST_SLOT + (index % RVH_PVIO_RING_SLOTS) * RVH_PVIO_SLOT_SIZE
    tag, _, _, length, _, status, _ = struct.unpack(
        "<QQQIBBH", machine.bus.read_bytes(slot, RVH_PVIO_SLOT_SIZE)
    )
    return tag, status, length


def attach(machine, device, queue, ring) -> None:
    machine.bus.write_bytes(ring, bytes(4096))
    assert call(machine, RvhPvioFunction.SET_RING, device, queue, ring) == (Error.SUCCESS, 0)


def serve(machine: Machine, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``body`` with the pv devices' tasks running, as the machine's run loop has them."""

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for device in machine.pv_devices:
                await nursery.start(device.serve)
            with trio.fail_after(10):
                await body()
            nursery.cancel_scope.cancel()

    trio.run(main)


async def until(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await trio.sleep(0.001)


async def submit(machine, device, queue, ring, count) -> None:
    """Publish ``count`` posted requests, NOTIFY once, and wait for their responses."""
    publish(machine, ring, count)
    assert call(machine, RvhPvioFunction.NOTIFY, device, queue) == (Error.SUCCESS, 0)
    await until(lambda: u32(machine, ring + RvhPvioRing.RSP_PROD) == count)


# ---- the calls -----------------------------------------------------------------------------
def test_device_info_describes_each_device_and_refuses_what_is_not_there(tmp_path):
    machine = make_machine(tmp_path, readonly=True, nics=1)
    assert call(machine, RvhPvioFunction.DEVICE_INFO, 0, INFO) == (Error.SUCCESS, 2)
    record = machine.bus.read_bytes(INFO, 32)
    assert struct.unpack_from("<II", record, 0) == (RvhPvioType.BLK, C.PVIO_IRQ_BASE)
    assert struct.unpack_from("<Q", record, RvhPvioInfo.CAPACITY)[0] == DISK_SECTORS
    assert record[RvhPvioInfo.READONLY] == 1
    assert struct.unpack_from("<II", record, RvhPvioInfo.QUEUES) == (1, RVH_PVIO_BLK_MAX_LENGTH)
    assert call(machine, RvhPvioFunction.DEVICE_INFO, 1, INFO) == (Error.SUCCESS, 2)
    record = machine.bus.read_bytes(INFO, 32)
    assert struct.unpack_from("<II", record, 0) == (RvhPvioType.NET, C.PVIO_IRQ_BASE + 1)
    assert record[RvhPvioInfo.MAC : RvhPvioInfo.MAC + 6] == bytes.fromhex("525400000001")
    assert struct.unpack_from("<I", record, RvhPvioInfo.QUEUES)[0] == 2
    assert call(machine, RvhPvioFunction.DEVICE_INFO, 2, INFO)[0] == Error.ERR_INVALID_PARAM
    assert call(machine, RvhPvioFunction.DEVICE_INFO, 0, 0x1000)[0] == Error.ERR_INVALID_ADDRESS
    end = RAM_BASE + MEMORY - 16  # the record would cross the end of RAM
    assert call(machine, RvhPvioFunction.DEVICE_INFO, 0, end)[0] == Error.ERR_INVALID_ADDRESS
    assert call(machine, 7, 0)[0] == Error.ERR_NOT_SUPPORTED


def test_set_ring_checks_the_page(tmp_path):
    machine = make_machine(tmp_path)
    set_ring = RvhPvioFunction.SET_RING
    assert call(machine, set_ring, 0, 0, RING + 8)[0] == Error.ERR_INVALID_ADDRESS
    assert call(machine, set_ring, 0, 0, C.UART0_BASE & ~0xFFF)[0] == Error.ERR_INVALID_ADDRESS
    assert call(machine, set_ring, 0, 0, RAM_BASE + MEMORY)[0] == Error.ERR_INVALID_ADDRESS
    assert call(machine, set_ring, 0, 1, RING)[0] == Error.ERR_INVALID_PARAM  # blk: one queue
    assert call(machine, set_ring, 1, 0, RING)[0] == Error.ERR_INVALID_PARAM  # no device 1
    assert call(machine, set_ring, 0, 0, RING) == (Error.SUCCESS, 0)
    assert call(machine, set_ring, 0, 0, 0) == (Error.SUCCESS, 0)
    assert call(machine, RvhPvioFunction.NOTIFY, 0, 1)[0] == Error.ERR_INVALID_PARAM


def test_the_builtin_sbi_offers_the_extension_only_with_pv_devices(tmp_path):
    machine = make_machine(tmp_path)
    machine.load_sbi_payload(str(_payload(tmp_path)))
    sbi = machine.sbi
    assert sbi is not None
    hart = machine.harts[0]
    error, value = sbi._base(hart, BaseFunction.PROBE_EXTENSION, [Extension.RVH_PVIO])
    assert (error, value) == (Error.SUCCESS, 1)
    plain = Machine(MachineConfig(firmware_traps=True, memory=MEMORY), output=lambda d: None)
    plain.load_sbi_payload(str(_payload(tmp_path)))
    assert plain.sbi is not None
    assert plain.sbi._base(hart, BaseFunction.PROBE_EXTENSION, [Extension.RVH_PVIO])[1] == 0


def test_the_device_tree_lists_the_pv_devices_interrupts(tmp_path):
    from rvh.fdt import parse_dtb

    machine = make_machine(tmp_path, nics=1)
    tree = parse_dtb(machine.device_tree())
    node = tree["/soc/pvio"]
    assert node.props["compatible"] == b"rvh,pvio\0"
    assert node.props["interrupts"] == bytes.fromhex("0000001000000011")  # sources 16, 17
    assert node.props["rvh,sbi-extension"] == Extension.RVH_PVIO.to_bytes(4, "big")
    plain = Machine(MachineConfig(memory=MEMORY), output=lambda data: None)
    soc = parse_dtb(plain.device_tree())["/soc"]
    assert "pvio" not in [child.name for child in soc.children]
    assert "pvio" in [child.name for child in tree["/soc"].children]


def _payload(tmp_path):
    from support import build_elf

    return build_elf("wfi\nj _start", tmp_path / "idle.elf", base=RAM_BASE + 0x20_0000)


# ---- block requests ------------------------------------------------------------------------
def test_blk_write_read_flush_round_trip_in_one_batch(tmp_path):
    machine = make_machine(tmp_path)
    attach(machine, 0, 0, RING)
    data = bytes((i * 3) & 0xFF for i in range(2 * SECTOR))
    machine.bus.write_bytes(BUFFERS, data)
    post(machine, RING, 0, RvhPvioOp.WRITE, BUFFERS, 2 * SECTOR, sector=5, tag=0xA0)
    post(machine, RING, 1, RvhPvioOp.FLUSH, tag=0xA1)
    post(machine, RING, 2, RvhPvioOp.READ, BUFFERS + 0x1000, 3 * SECTOR, sector=4, tag=0xA2)
    serve(machine, lambda: submit(machine, 0, 0, RING, 3))
    assert response(machine, RING, 0) == (0xA0, S.OK, 2 * SECTOR)
    assert response(machine, RING, 1) == (0xA1, S.OK, 0)
    assert response(machine, RING, 2) == (0xA2, S.OK, 3 * SECTOR)
    image = (tmp_path / "disk.img").read_bytes()
    assert image[5 * SECTOR : 7 * SECTOR] == data
    assert machine.bus.read_bytes(BUFFERS + 0x1000, 3 * SECTOR) == image[4 * SECTOR : 7 * SECTOR]
    assert u32(machine, RING + RvhPvioRing.REQ_CONS) == 3
    # one batch: one edge on the device's PLIC source, latched as pending
    assert machine.plic.pending[C.PVIO_IRQ_BASE]
    stats = machine.statistics()["pvio"]["pv-blk0"]
    assert (stats["notifies"], stats["requests"], stats["interrupts"]) == (1, 3, 1)
    assert stats["flushes"] == 1 and stats["errors"] == 0


def test_blk_bad_requests_get_their_status_and_the_rest_complete(tmp_path):
    machine = make_machine(tmp_path)
    attach(machine, 0, 0, RING)
    end = RAM_BASE + MEMORY
    cases = [
        (RvhPvioOp.READ, BUFFERS, SECTOR, 0, S.OK),
        (RvhPvioOp.READ, 0x1000, SECTOR, 0, S.BAD_ADDRESS),  # the boot ROM
        (RvhPvioOp.READ, C.UART0_BASE, SECTOR, 0, S.BAD_ADDRESS),  # MMIO
        (RvhPvioOp.READ, end - 256, SECTOR, 0, S.BAD_ADDRESS),  # crosses the end of RAM
        (RvhPvioOp.WRITE, (1 << 64) - 512, SECTOR, 0, S.BAD_ADDRESS),
        (RvhPvioOp.READ, BUFFERS, 100, 0, S.BAD_LENGTH),  # not whole sectors
        (RvhPvioOp.READ, BUFFERS, 0, 0, S.BAD_LENGTH),
        (RvhPvioOp.READ, BUFFERS, 0xFFFF_FE00, 0, S.BAD_LENGTH),  # huge
        (RvhPvioOp.READ, BUFFERS, SECTOR, DISK_SECTORS, S.BAD_LENGTH),  # past the disk
        (RvhPvioOp.READ, BUFFERS, 2 * SECTOR, DISK_SECTORS - 1, S.BAD_LENGTH),
        (RvhPvioOp.WRITE, BUFFERS, SECTOR, (1 << 64) - 1, S.BAD_LENGTH),  # wraps
        (RvhPvioOp.TRANSMIT, BUFFERS, 64, 0, S.UNSUPPORTED),
        (0xEE, BUFFERS, SECTOR, 0, S.UNSUPPORTED),
        (RvhPvioOp.READ, BUFFERS + SECTOR, SECTOR, DISK_SECTORS - 1, S.OK),
    ]
    for index, (op, address, length, sector, _) in enumerate(cases):
        post(machine, RING, index, op, address, length, sector)
    before = (tmp_path / "disk.img").read_bytes()
    serve(machine, lambda: submit(machine, 0, 0, RING, len(cases)))
    got = [response(machine, RING, i)[1] for i in range(len(cases))]
    assert got == [case[4] for case in cases]
    assert response(machine, RING, 0)[2] == SECTOR and response(machine, RING, 1)[2] == 0
    assert (tmp_path / "disk.img").read_bytes() == before
    assert machine.statistics()["pvio"]["pv-blk0"]["errors"] == len(cases) - 2


def test_readonly_disk_refuses_writes(tmp_path):
    machine = make_machine(tmp_path, readonly=True)
    attach(machine, 0, 0, RING)
    post(machine, RING, 0, RvhPvioOp.WRITE, BUFFERS, SECTOR, 1)
    post(machine, RING, 1, RvhPvioOp.READ, BUFFERS, SECTOR, 1)
    post(machine, RING, 2, RvhPvioOp.FLUSH)
    before = (tmp_path / "disk.img").read_bytes()
    serve(machine, lambda: submit(machine, 0, 0, RING, 3))
    assert [response(machine, RING, i)[1] for i in range(3)] == [S.READ_ONLY, S.OK, S.OK]
    assert (tmp_path / "disk.img").read_bytes() == before


def test_a_ring_whose_index_jumps_is_broken_until_attached_again(tmp_path):
    machine = make_machine(tmp_path)
    attach(machine, 0, 0, RING)
    post(machine, RING, 0, RvhPvioOp.READ, BUFFERS, SECTOR)

    async def body() -> None:
        publish(machine, RING, RVH_PVIO_RING_SLOTS + 1)  # more than a ring ahead
        call(machine, RvhPvioFunction.NOTIFY, 0, 0)
        await until(lambda: u32(machine, RING + RvhPvioRing.ERROR) != 0)
        publish(machine, RING, 1)  # the ring stays ignored
        call(machine, RvhPvioFunction.NOTIFY, 0, 0)
        await trio.sleep(0.05)
        assert u32(machine, RING + RvhPvioRing.RSP_PROD) == 0
        attach(machine, 0, 0, RING)
        post(machine, RING, 0, RvhPvioOp.READ, BUFFERS, SECTOR)
        await submit(machine, 0, 0, RING, 1)

    serve(machine, body)
    assert u32(machine, RING + RvhPvioRing.ERROR) == RvhPvioRingError.NONE
    assert response(machine, RING, 0)[1] == S.OK
    assert machine.statistics()["pvio"]["pv-blk0"]["ring_errors"] == 1


@pytest.mark.parametrize("turns", [0, 1, 2, 5])
def test_detaching_with_reads_in_flight_drops_them_and_never_hangs(tmp_path, turns):
    # the ring is taken back after the device task had `turns` turns: before it took the
    # batch, while its I/O thread is being started, or running; after SET_RING returns nothing
    # lands in memory or in the ring, and the device works on a new ring
    machine = make_machine(tmp_path)
    attach(machine, 0, 0, RING)
    for n in range(32):
        post(machine, RING, n, RvhPvioOp.READ, BUFFERS + n * 0x800, 4 * SECTOR)

    async def body() -> None:
        publish(machine, RING, 32)
        call(machine, RvhPvioFunction.NOTIFY, 0, 0)
        for _ in range(turns):
            await trio.lowlevel.checkpoint()
        assert call(machine, RvhPvioFunction.SET_RING, 0, 0, 0) == (Error.SUCCESS, 0)
        after = machine.bus.read_bytes(RING, 0x1_0000 + 32 * 0x800)
        await trio.sleep(0.05)
        assert machine.bus.read_bytes(RING, 0x1_0000 + 32 * 0x800) == after
        # what completed before the detach stays (with `turns` checkpoints an idle host's I/O
        # thread may finish the whole batch first); nothing lands after it (above)
        completed = u32(machine, RING + RvhPvioRing.RSP_PROD)
        assert completed in (0, 32)  # one batch: all of it or none
        assert all(response(machine, RING, n)[1] == S.OK for n in range(completed))
        attach(machine, 0, 0, RING2)
        post(machine, RING2, 0, RvhPvioOp.READ, BUFFERS, SECTOR)
        await submit(machine, 0, 0, RING2, 1)

    serve(machine, body)
    assert response(machine, RING2, 0)[1] == S.OK
    assert not machine.pv_devices[0].busy()


def test_indices_wrap_around_32_bits(tmp_path):
    machine = make_machine(tmp_path)
    machine.bus.write_bytes(RING, bytes(4096))
    start = 0xFFFF_FFFE
    machine.bus.write_bytes(RING + RvhPvioRing.RSP_PROD, struct.pack("<I", start))
    assert call(machine, RvhPvioFunction.SET_RING, 0, 0, RING)[0] == Error.SUCCESS
    for n in range(4):
        post(machine, RING, (start + n) & 0xFFFF_FFFF, RvhPvioOp.READ, BUFFERS, SECTOR, n)

    async def body() -> None:
        publish(machine, RING, (start + 4) & 0xFFFF_FFFF)
        call(machine, RvhPvioFunction.NOTIFY, 0, 0)
        await until(lambda: u32(machine, RING + RvhPvioRing.RSP_PROD) == 2)

    serve(machine, body)
    for n in range(4):
        assert response(machine, RING, (start + n) & 0xFFFF_FFFF)[1] == S.OK


# ---- network -------------------------------------------------------------------------------
def frame(n: int, size: int) -> bytes:
    head = bytes.fromhex("525400000002525400000001") + b"\x88\xb5"
    return head + bytes((n + i) & 0xFF for i in range(size - len(head)))


def test_net_frames_between_two_pv_nics_on_a_hub(tmp_path):
    machine = make_machine(tmp_path, nics=2)  # devices 1 (A) and 2 (B)
    tx_a, rx_b = RING, RING2
    attach(machine, 1, 0, tx_a)
    attach(machine, 2, 1, rx_b)
    sizes = [14, 60, 1514, 300]
    for n, size in enumerate(sizes):
        machine.bus.write_bytes(BUFFERS + n * 0x800, frame(n, size))
        post(machine, tx_a, n, RvhPvioOp.TRANSMIT, BUFFERS + n * 0x800, size)
    receive = BUFFERS + 0x4000
    for n in range(3):
        post(machine, rx_b, n, RvhPvioOp.RECEIVE, receive + n * 0x800, 2048)
    post(machine, rx_b, 3, RvhPvioOp.RECEIVE, receive + 3 * 0x800, 100)  # too small for 300

    async def body() -> None:
        publish(machine, rx_b, 4)
        call(machine, RvhPvioFunction.NOTIFY, 2, 1)
        await submit(machine, 1, 0, tx_a, 4)
        await until(lambda: u32(machine, rx_b + RvhPvioRing.RSP_PROD) == 4)

    serve(machine, body)
    for n, size in enumerate(sizes[:3]):
        assert response(machine, tx_a, n)[1:] == (S.OK, size)
        assert response(machine, rx_b, n)[1:] == (S.OK, size)
        assert machine.bus.read_bytes(receive + n * 0x800, size) == frame(n, size)
    assert response(machine, rx_b, 3)[1:] == (S.BAD_LENGTH, 0)
    stats = machine.statistics()["pvio"]
    assert stats["pv-net0"]["tx_frames"] == 4
    assert stats["pv-net1"]["rx_frames"] == 3
    assert stats["pv-net1"]["rx_dropped_small_buffer"] == 1
    assert machine.plic.pending[C.PVIO_IRQ_BASE + 2]


# ---- virtual I/O timing and VM files -------------------------------------------------------
def test_virtual_timing_moves_data_at_the_notify_and_answers_in_ring_order(tmp_path):
    from rvh.devices.pvio import PvioBlk
    from rvh.devices.virtio.blk import VIRTUAL_LATENCY_NS

    machine = make_machine(tmp_path, io_timing="virtual")
    blk = machine.pv_devices[0]
    assert isinstance(blk, PvioBlk) and machine.virtual_io_devices == [blk]
    attach(machine, 0, 0, RING)
    # a large read, then (10 ns on) a small one whose own delay would end first
    post(machine, RING, 0, RvhPvioOp.READ, BUFFERS, 32 * SECTOR, sector=0)
    publish(machine, RING, 1)
    call(machine, RvhPvioFunction.NOTIFY, 0, 0)
    blk.virtual_kick(1000)
    image = (tmp_path / "disk.img").read_bytes()
    assert machine.bus.read_bytes(BUFFERS, 32 * SECTOR) == image[: 32 * SECTOR]  # moved now
    post(machine, RING, 1, RvhPvioOp.READ, BUFFERS + 0x8000, SECTOR, sector=40)
    publish(machine, RING, 2)
    call(machine, RvhPvioFunction.NOTIFY, 0, 0)
    blk.virtual_kick(1010)
    first_due = 1000 + VIRTUAL_LATENCY_NS + 32 * SECTOR
    assert blk.virtual_due() == first_due
    blk.virtual_complete(1010 + VIRTUAL_LATENCY_NS + SECTOR)  # the small one's own time
    assert u32(machine, RING + RvhPvioRing.RSP_PROD) == 0  # it waits for the large one
    assert not blk.busy()  # nothing for the trio side: the run loop owns the timing
    blk.virtual_complete(first_due)
    assert u32(machine, RING + RvhPvioRing.RSP_PROD) == 2
    assert response(machine, RING, 1)[1:] == (S.OK, SECTOR)
    assert blk.virtual_due() is None
    assert machine.plic.pending[C.PVIO_IRQ_BASE]


def test_virtual_responses_of_a_detached_ring_are_dropped(tmp_path):
    machine = make_machine(tmp_path, io_timing="virtual")
    blk = machine.pv_devices[0]
    attach(machine, 0, 0, RING)
    post(machine, RING, 0, RvhPvioOp.READ, BUFFERS, SECTOR)
    publish(machine, RING, 1)
    call(machine, RvhPvioFunction.NOTIFY, 0, 0)
    blk.virtual_kick(0)
    attach(machine, 0, 0, RING2)  # the driver takes the ring back and attaches another
    blk.virtual_complete(10**9)
    assert u32(machine, RING + RvhPvioRing.RSP_PROD) == 0
    assert u32(machine, RING2 + RvhPvioRing.RSP_PROD) == 0
    assert machine.statistics()["pvio"]["pv-blk0"]["interrupts"] == 0


def saved_and_restored(tmp_path, machine: Machine, **options) -> Machine:
    """A second machine of the same configuration with ``machine``'s memory and pv state,
    through JSON as a VM file carries it."""
    import json

    saved = json.loads(json.dumps([device.save_state() for device in machine.pv_devices]))
    other = make_machine(tmp_path, image_name="other.img", **options)
    other.bus.memory[:] = machine.bus.memory
    for device, state in zip(other.pv_devices, saved, strict=True):
        device.restore_state(state)
    return other


def test_a_batch_due_survives_save_and_restore(tmp_path):
    machine = make_machine(tmp_path, io_timing="virtual")
    attach(machine, 0, 0, RING)
    post(machine, RING, 0, RvhPvioOp.READ, BUFFERS, 4 * SECTOR, sector=8, tag=0xB0)
    post(machine, RING, 1, RvhPvioOp.READ, RAM_BASE + MEMORY, SECTOR, tag=0xB1)  # not RAM
    publish(machine, RING, 2)
    call(machine, RvhPvioFunction.NOTIFY, 0, 0)
    machine.pv_devices[0].virtual_kick(500)
    due = machine.pv_devices[0].virtual_due()
    restored = saved_and_restored(tmp_path, machine, io_timing="virtual")
    blk = restored.pv_devices[0]
    assert blk.virtual_due() == due
    blk.virtual_complete(due)
    assert u32(restored, RING + RvhPvioRing.RSP_PROD) == 2
    assert response(restored, RING, 0) == (0xB0, S.OK, 4 * SECTOR)
    assert response(restored, RING, 1) == (0xB1, S.BAD_ADDRESS, 0)
    stats = restored.statistics()["pvio"]["pv-blk0"]
    assert (stats["notifies"], stats["requests"], stats["read_bytes"]) == (1, 2, 4 * SECTOR)
    assert stats["errors"] == 1 and restored.plic.pending[C.PVIO_IRQ_BASE]
    # the ring goes on where it was
    post(restored, RING, 2, RvhPvioOp.FLUSH, tag=0xB2)
    publish(restored, RING, 3)
    call(restored, RvhPvioFunction.NOTIFY, 0, 0)
    blk.virtual_kick(due)
    blk.virtual_complete(10**9)
    assert response(restored, RING, 2) == (0xB2, S.OK, 0)
    assert u32(restored, RING + RvhPvioRing.REQ_CONS) == 3


def test_restoring_pv_state_that_does_not_fit_is_refused(tmp_path):
    machine = make_machine(tmp_path, io_timing="virtual", nics=1)
    attach(machine, 0, 0, RING)
    post(machine, RING, 0, RvhPvioOp.READ, BUFFERS, SECTOR)
    publish(machine, RING, 1)
    call(machine, RvhPvioFunction.NOTIFY, 0, 0)
    machine.pv_devices[0].virtual_kick(0)
    with pytest.raises(ValueError, match="responses due in virtual time, but host timing"):
        saved_and_restored(tmp_path, machine, nics=1)
    blk_state, net_state = (device.save_state() for device in machine.pv_devices)
    other = make_machine(tmp_path, image_name="third.img", io_timing="virtual", nics=1)
    with pytest.raises(ValueError, match="another kind of pv device"):
        other.pv_devices[1].restore_state(blk_state)
    net_state["device"]["buffers"] = [[0, RvhPvioOp.RECEIVE, 0, MEMORY * 2, 64, S.PENDING, 0, ""]]
    with pytest.raises(ValueError, match="buffer is not in memory"):
        other.pv_devices[1].restore_state(net_state)
    blk_state["rings"][0][0] = RAM_BASE + MEMORY  # past the end of RAM
    with pytest.raises(ValueError, match="a saved ring is not in RAM"):
        other.pv_devices[0].restore_state(blk_state)


def test_receive_buffers_and_waiting_frames_survive_save_and_restore(tmp_path):
    machine = make_machine(tmp_path, nics=1)
    nic = machine.pv_devices[1]
    attach(machine, 1, 1, RING)
    for n in range(2):
        post(machine, RING, n, RvhPvioOp.RECEIVE, BUFFERS + n * 0x800, 2048, tag=0xC0 + n)
    publish(machine, RING, 2)
    with nic.lock:
        nic._fill()  # the buffers are taken; no frame yet
    nic.receive(frame(0, 100))
    nic.receive(frame(1, 200))
    nic.receive(frame(2, 300))  # arrives after both buffers are filled: waits
    with nic.lock:
        nic._fill()
    assert u32(machine, RING + RvhPvioRing.RSP_PROD) == 2
    post(machine, RING, 2, RvhPvioOp.RECEIVE, BUFFERS + 0x1000, 2048, tag=0xC2)
    post(machine, RING, 3, RvhPvioOp.RECEIVE, BUFFERS + 0x1800, 2048, tag=0xC3)
    publish(machine, RING, 4)
    nic.receive(frame(3, 400))  # the backlog is 2 frames, the 2 new buffers not taken yet
    restored = saved_and_restored(tmp_path, machine, nics=1)
    other = restored.pv_devices[1]
    assert [len(f) for f in other.backlog] == [300, 400]
    with other.lock:
        other._fill()
    assert u32(restored, RING + RvhPvioRing.RSP_PROD) == 4
    assert response(restored, RING, 2) == (0xC2, S.OK, 300)
    assert response(restored, RING, 3) == (0xC3, S.OK, 400)
    assert restored.bus.read_bytes(BUFFERS + 0x1800, 400) == frame(3, 400)
    assert restored.statistics()["pvio"]["pv-net0"]["rx_frames"] == 4


def test_net_refuses_malformed_transmits(tmp_path):
    machine = make_machine(tmp_path, nics=1)
    attach(machine, 1, 0, RING)
    post(machine, RING, 0, RvhPvioOp.TRANSMIT, BUFFERS, 13)
    post(machine, RING, 1, RvhPvioOp.TRANSMIT, BUFFERS, 1515)
    post(machine, RING, 2, RvhPvioOp.RECEIVE, BUFFERS, 1500)  # wrong queue
    post(machine, RING, 3, RvhPvioOp.TRANSMIT, 0x1000, 64)
    post(machine, RING, 4, RvhPvioOp.TRANSMIT, BUFFERS, 64)
    serve(machine, lambda: submit(machine, 1, 0, RING, 5))
    got = [response(machine, RING, i)[1] for i in range(5)]
    assert got == [S.BAD_LENGTH, S.BAD_LENGTH, S.UNSUPPORTED, S.BAD_ADDRESS, S.OK]


def test_a_broken_receive_ring_holds_no_sender_back(tmp_path):
    from rvh.devices.virtio.netdev import ABSENT, ACCEPTING

    machine = make_machine(tmp_path, nics=2)
    attach(machine, 1, 0, RING)
    attach(machine, 2, 1, RING2)
    receiver = machine.pv_devices[2]
    assert receiver.link_state() == ACCEPTING

    async def body() -> None:
        publish(machine, RING2, 1000)  # wild: the receive ring breaks
        call(machine, RvhPvioFunction.NOTIFY, 2, 1)
        await until(lambda: u32(machine, RING2 + RvhPvioRing.ERROR) != 0)
        assert receiver.link_state() == ABSENT
        for n in range(300):  # more than the backlog: none may be held back
            size = 60
            machine.bus.write_bytes(BUFFERS + (n % 64) * 0x800, frame(n, size))
            post(machine, RING, n, RvhPvioOp.TRANSMIT, BUFFERS + (n % 64) * 0x800, size)
            if n % 64 == 63 or n == 299:
                await submit(machine, 1, 0, RING, n + 1)

    serve(machine, body)
    stats = machine.statistics()["pvio"]
    assert stats["pv-net0"]["tx_frames"] == 300
    assert stats["pv-net1"]["rx_frames"] == 0 and stats["pv-net1"]["ring_errors"] == 1


# ---- hostile rings -------------------------------------------------------------------------
ADDRESSES = st.one_of(
    st.integers(0, (1 << 64) - 1),
    st.integers(RAM_BASE - 0x1000, RAM_BASE + MEMORY + 0x1000),
    st.sampled_from([BUFFERS, BUFFERS + 0x8000, RING, RAM_BASE + MEMORY - SECTOR, 0]),
)
LENGTHS = st.one_of(
    st.integers(0, (1 << 32) - 1),
    st.sampled_from([SECTOR, 8 * SECTOR, RVH_PVIO_BLK_MAX_LENGTH, RVH_PVIO_BLK_MAX_LENGTH + 512]),
)
REQUESTS = st.tuples(
    st.sampled_from([1, 2, 3, 0, 4, 5, 0xFF]),
    ADDRESSES,
    LENGTHS,
    st.one_of(st.integers(0, (1 << 64) - 1), st.integers(0, DISK_SECTORS + 2)),
)


def expected_status(op, address, length, sector) -> int:
    """What the extension's documentation promises for one block request."""
    if op == RvhPvioOp.FLUSH:
        return S.OK
    if op not in (RvhPvioOp.READ, RvhPvioOp.WRITE):
        return S.UNSUPPORTED
    if not length or length % SECTOR or length > RVH_PVIO_BLK_MAX_LENGTH:
        return S.BAD_LENGTH
    if sector + length // SECTOR > DISK_SECTORS:
        return S.BAD_LENGTH
    if not (RAM_BASE <= address and address + length <= RAM_BASE + MEMORY):
        return S.BAD_ADDRESS
    return S.OK


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return make_machine(tmp_path_factory.mktemp("pvio"))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(requests=st.lists(REQUESTS, min_size=0, max_size=70), jump=st.integers(0, 1 << 32))
def test_hostile_rings_get_statuses_never_an_exception(hostile, requests, jump):
    machine = hostile
    ring = RING
    attach(machine, 0, 0, ring)
    for index, (op, address, length, sector) in enumerate(requests[:RVH_PVIO_RING_SLOTS]):
        post(machine, ring, index, op, address, length, sector)
    posted = min(len(requests), RVH_PVIO_RING_SLOTS)
    # the guest's req_prod: honest, or a wild value when the list is longer than a ring
    req_prod = posted if len(requests) <= RVH_PVIO_RING_SLOTS else jump & 0xFFFF_FFFF
    code_before = machine.bus.read_bytes(RAM_BASE, 0x1000)

    async def body() -> None:
        publish(machine, ring, req_prod)
        call(machine, RvhPvioFunction.NOTIFY, 0, 0)
        if 0 < req_prod <= RVH_PVIO_RING_SLOTS:
            await until(lambda: u32(machine, ring + RvhPvioRing.RSP_PROD) == req_prod)
        else:
            await until(lambda: not machine.pv_devices[0].busy())
            await trio.sleep(0.01)

    serve(machine, body)
    if 0 < req_prod <= RVH_PVIO_RING_SLOTS:
        for index in range(req_prod):
            op, address, length, sector = requests[index]
            assert response(machine, ring, index)[1] == expected_status(op, address, length, sector)
        # the header is the guest's memory: a READ into the ring page itself may fill its
        # ERROR word with disk data (the responses, posted after the data, still stand)
        read_into_ring = any(
            op == RvhPvioOp.READ
            and expected_status(op, address, length, sector) == S.OK
            and address < ring + 4096
            and ring < address + length
            for op, address, length, sector in requests[:req_prod]
        )
        if not read_into_ring:
            assert u32(machine, ring + RvhPvioRing.ERROR) == 0
    elif req_prod > RVH_PVIO_RING_SLOTS:
        assert u32(machine, ring + RvhPvioRing.ERROR) == RvhPvioRingError.INDEX
        assert u32(machine, ring + RvhPvioRing.RSP_PROD) == 0
    # no request may reach memory outside the buffers it named: nothing names the first page
    # unless a request pointed there
    if not any(RAM_BASE <= a < RAM_BASE + 0x1000 for _, a, _, _ in requests):
        assert machine.bus.read_bytes(RAM_BASE, 0x1000) == code_before

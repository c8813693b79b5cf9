"""virtio-mmio transport (virtio 1.2 section 4.2): registers, the status state machine (2.1),
feature negotiation (2.2, 3.1.1), queue setup (4.2.3.2), interrupts, reset; and the Notifier."""

import threading

import pytest
import trio
import trio.testing
from virtio_driver import Driver, DriverQueue, blk_request

from rvh.devices.virtio import blk as B
from rvh.devices.virtio import mmio as M
from rvh.devices.virtio.notifier import Notifier

STATUS_UP = M.STATUS_ACKNOWLEDGE | M.STATUS_DRIVER | M.STATUS_FEATURES_OK | M.STATUS_DRIVER_OK


def test_empty_slot_reads_device_id_zero():
    slot = M.VirtioMmioEmpty("virtio7")
    assert slot.read(M.MAGIC_VALUE, 4) == 0x74726976
    assert slot.read(M.VERSION, 4) == 2
    assert slot.read(M.DEVICE_ID, 4) == 0
    slot.write(M.STATUS, 4, 0xFF)  # ignored
    assert slot.read(M.STATUS, 4) == 0


def test_identification_registers(make_blk):
    device = make_blk()
    assert device.read(M.MAGIC_VALUE, 4) == M.MAGIC
    assert device.read(M.VERSION, 4) == 2  # 4.2.2.1: "MUST return value 0x2"
    assert device.read(M.DEVICE_ID, 4) == M.DEVICE_ID_BLOCK
    assert device.read(M.VENDOR_ID, 4) == M.VENDOR
    # no shared memory regions: length -1, base all ones
    assert device.read(M.SHM_LEN_LOW, 4) == device.read(M.SHM_BASE_HIGH, 4) == 0xFFFF_FFFF


def test_device_features_windows(make_blk, bus):
    device = make_blk()
    driver = Driver(device, bus)
    offered = driver.device_features()
    assert offered & M.VIRTIO_F_VERSION_1
    assert offered & M.VIRTIO_F_INDIRECT_DESC and offered & M.VIRTIO_F_EVENT_IDX
    assert offered & B.VIRTIO_BLK_F_FLUSH and not offered & B.VIRTIO_BLK_F_RO
    assert not offered & (M.VIRTIO_F_RING_PACKED | M.VIRTIO_F_ACCESS_PLATFORM)
    driver.write(M.DEVICE_FEATURES_SEL, 2)
    assert driver.read(M.DEVICE_FEATURES) == 0


def test_initialization_sequence(make_blk, bus):
    device = make_blk()
    driver = Driver(device, bus)
    assert driver.negotiate()
    assert device.features == driver.features
    driver.setup_queue(0)
    assert driver.status() & M.STATUS_FEATURES_OK and not device.live
    driver.driver_ok()
    assert driver.status() == STATUS_UP and device.live


@pytest.mark.parametrize(
    ("accept", "reason"),
    [
        (0, "VIRTIO_F_VERSION_1"),  # 6.1: legacy drivers are refused
        (M.VIRTIO_F_VERSION_1 | M.VIRTIO_F_RING_PACKED, "did not offer"),
        (M.VIRTIO_F_VERSION_1 | (1 << 50), "did not offer"),
    ],
)
def test_features_ok_refused(make_blk, bus, accept, reason):
    device = make_blk()
    driver = Driver(device, bus)
    assert not driver.negotiate(accept=accept)
    # 2.2.2: the device "MUST fail to set the FEATURES_OK device status bit"
    assert driver.status() == M.STATUS_ACKNOWLEDGE | M.STATUS_DRIVER
    assert reason in driver.logs[-1] and "\n" not in driver.logs[-1]
    assert device.statistics()["refused_features"] == 1


def test_driver_features_are_frozen_after_features_ok(make_blk, bus):
    device = make_blk()
    driver = Driver(device, bus)
    assert driver.negotiate(accept=M.VIRTIO_F_VERSION_1)
    driver.write(M.DRIVER_FEATURES_SEL, 0)
    driver.write(M.DRIVER_FEATURES, 0xFFFF_FFFF)
    assert device.driver_features == M.VIRTIO_F_VERSION_1
    assert device.features == M.VIRTIO_F_VERSION_1


def test_queue_registers(make_blk, bus):
    device = make_blk()
    driver = Driver(device, bus)
    driver.negotiate()
    driver.write(M.QUEUE_SEL, 0)
    assert driver.read(M.QUEUE_NUM_MAX) == 256
    driver.write(M.QUEUE_SEL, 1)
    assert driver.read(M.QUEUE_NUM_MAX) == 0  # "zero (0x0) if the queue is not available"
    driver.write(M.QUEUE_READY, 1)  # ignored for a missing queue
    assert driver.read(M.QUEUE_READY) == 0
    queue = driver.setup_queue(0, 16)
    assert driver.read(M.QUEUE_READY) == 1
    device_queue = device.queues[0]
    assert (device_queue.size, device_queue.descriptor_address) == (16, queue.desc)
    assert (device_queue.driver_address, device_queue.device_address) == (queue.avail, queue.used)
    # 4.2.2.3: queue configuration is not written while QueueReady is 1
    driver.write(M.QUEUE_NUM, 8)
    driver.write(M.QUEUE_DESC_LOW, 0x1234)
    assert device_queue.size == 16 and device_queue.descriptor_address == queue.desc
    driver.write(M.QUEUE_READY, 0)
    assert driver.read(M.QUEUE_READY) == 0


def test_reset_clears_everything(make_blk, bus):
    device = make_blk()
    driver = Driver(device, bus)
    driver.initialize(1)
    device.used_buffer_notification()
    assert driver.read(M.INTERRUPT_STATUS) == 1 and driver.level
    driver.write(M.STATUS, 0)
    # 4.2.2.1: "Upon reset, the device MUST clear all bits in InterruptStatus and ready bits
    # in the QueueReady register for all queues in the device."
    assert driver.status() == 0 and driver.read(M.INTERRUPT_STATUS) == 0 and not driver.level
    driver.write(M.QUEUE_SEL, 0)
    assert driver.read(M.QUEUE_READY) == 0
    assert device.features == 0 and device.statistics()["resets"] >= 1


def test_interrupt_ack_lowers_the_line_only_when_all_bits_are_acknowledged(make_blk, bus):
    device = make_blk()
    driver = Driver(device, bus)
    driver.initialize(1)
    device.used_buffer_notification()
    device.config_changed()
    assert driver.read(M.INTERRUPT_STATUS) == 3 and driver.irq_levels == [True]
    driver.write(M.INTERRUPT_ACK, 1)
    assert driver.read(M.INTERRUPT_STATUS) == 2 and driver.level
    driver.write(M.INTERRUPT_ACK, 2)
    assert driver.read(M.INTERRUPT_STATUS) == 0 and driver.irq_levels == [True, False]


def test_config_generation_changes_with_the_configuration(make_blk, bus):
    device = make_blk()
    before = device.read(M.CONFIG_GENERATION, 4)
    device.config_changed()
    assert device.read(M.CONFIG_GENERATION, 4) != before
    # no configuration change notification before DRIVER_OK
    assert device.read(M.INTERRUPT_STATUS, 4) == 0


def test_bad_accesses_are_ignored_and_counted(make_blk, bus):
    device = make_blk()
    assert device.read(M.MAGIC_VALUE, 2) == 0  # control registers are 32-bit (4.2.2.2)
    assert device.read(M.MAGIC_VALUE + 1, 4) == 0
    device.write(M.STATUS, 1, 1)
    device.write(0x0F0, 4, 5)  # reserved
    device.write(M.QUEUE_NOTIFY, 4, 7)  # no queue 7
    assert device.status == 0
    assert device.statistics()["bad_accesses"] == 5
    assert device.read(M.CONFIG + 0x800, 4) == 0  # beyond the configuration space


def test_config_space_is_byte_addressed(make_blk, bus):
    device = make_blk()
    capacity = device.read(M.CONFIG + B.CONFIG_CAPACITY, 8)
    low = device.read(M.CONFIG + B.CONFIG_CAPACITY, 4)
    high = device.read(M.CONFIG + B.CONFIG_CAPACITY + 4, 4)
    assert capacity == low | high << 32 == 64
    assert device.read(M.CONFIG + B.CONFIG_BLK_SIZE + 1, 1) == 2  # 512 = 0x200


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size", 12, "power of 2"),
        ("size", 512, "power of 2"),  # above QueueNumMax
        ("size", 0, "power of 2"),
        ("descriptor_address", 0x8010_0008, "16-byte aligned"),
        ("driver_address", 0x8010_0001, "2-byte aligned"),
        ("device_address", 0x8010_0002, "4-byte aligned"),
        ("descriptor_address", 0x1000, "outside guest RAM"),  # the boot ROM is not RAM
        ("device_address", 0x8000_0000 + (16 << 20) - 8, "outside guest RAM"),
        ("driver_address", 0xFFFF_FFFF_FFFF_FFF0, "outside guest RAM"),
    ],
)
def test_bad_queue_layout_needs_reset(make_blk, bus, field, value, message):
    device = make_blk()
    driver = Driver(device, bus)
    driver.negotiate()
    driver.write(M.QUEUE_SEL, 0)
    device_queue = device.queues[0]
    queue = DriverQueue(driver, 0, 16)
    driver.program_queue(queue)
    register = {
        "size": M.QUEUE_NUM,
        "descriptor_address": M.QUEUE_DESC_LOW,
        "driver_address": M.QUEUE_DRIVER_LOW,
        "device_address": M.QUEUE_DEVICE_LOW,
    }[field]
    driver.write(register, value & 0xFFFF_FFFF)
    if field != "size":
        driver.write(register + 4, value >> 32)
    driver.write(M.QUEUE_READY, 1)
    assert not device_queue.ready
    assert driver.status() & M.STATUS_DEVICE_NEEDS_RESET
    assert message in driver.logs[-1] and "needs reset" in driver.logs[-1]


def test_needs_reset_notifies_and_reset_recovers(make_blk, bus):
    device = make_blk()
    driver = Driver(device, bus)
    driver.initialize(1)
    device.fail("synthetic failure")
    # 2.1.2: after DEVICE_NEEDS_RESET with DRIVER_OK, a configuration change notification
    assert driver.status() == STATUS_UP | M.STATUS_DEVICE_NEEDS_RESET
    assert driver.read(M.INTERRUPT_STATUS) == M.INTERRUPT_CONFIG_CHANGE and driver.level
    assert not device.live
    driver.write(M.STATUS, driver.status() & ~M.STATUS_DEVICE_NEEDS_RESET)  # cannot clear it
    assert driver.status() & M.STATUS_DEVICE_NEEDS_RESET
    driver.initialize(1)
    assert driver.status() == STATUS_UP and device.live


async def test_no_buffers_are_used_before_driver_ok(make_blk, bus, nursery):
    device = make_blk()
    driver = Driver(device, bus)
    await nursery.start(device.serve)
    driver.negotiate()
    queue = driver.setup_queue(0, 8)
    request = blk_request(queue, B.VIRTIO_BLK_T_GET_ID, read_length=20)
    queue.kick()
    await trio.sleep(0.05)
    # 2.1.2: "The device MUST NOT consume buffers ... before DRIVER_OK"
    assert queue.used_idx() == 0 and request.status == 0xFF
    driver.driver_ok()
    await driver.wait_used(queue)
    assert request.status == B.VIRTIO_BLK_S_OK


async def test_notify_from_a_worker_thread(make_blk, bus, nursery):
    """The harts may run in trio.to_thread.run_sync: a QueueNotify from there must still wake
    the device's worker."""
    device = make_blk()
    driver = Driver(device, bus)
    await nursery.start(device.serve)
    (queue,) = driver.initialize(1, size=8)
    request = blk_request(queue, B.VIRTIO_BLK_T_IN, 1, read_length=512)
    await trio.to_thread.run_sync(queue.kick)
    await driver.wait_used(queue)
    assert request.status == B.VIRTIO_BLK_S_OK and request.read()[:8] == (1).to_bytes(8, "little")


# ---- Notifier -----------------------------------------------------------------------------------
async def test_notifier_from_the_trio_thread():
    notifier = Notifier()
    notifier.bind()
    woke = []

    async def waiter():
        await notifier.wait()
        woke.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert not woke
        notifier.notify()
        notifier.notify()  # coalesces
    assert woke == [True] and not notifier.pending


async def test_notifier_from_other_threads():
    notifier = Notifier()
    notifier.bind()
    with trio.fail_after(5):
        await trio.to_thread.run_sync(notifier.notify)
        await notifier.wait()
        thread = threading.Thread(target=notifier.notify)
        thread.start()
        await notifier.wait()
        thread.join()
    assert notifier.notifications == 2 and notifier.wakeups == 2


async def test_notifier_keeps_a_notification_made_before_binding():
    notifier = Notifier()
    notifier.notify()
    notifier.bind()
    with trio.fail_after(1):
        await notifier.wait()


async def test_notifier_wait_checkpoints_when_already_pending():
    notifier = Notifier()
    notifier.bind()
    notifier.notify()
    with trio.CancelScope() as scope:
        scope.cancel()
        await notifier.wait()  # a checkpoint: the cancellation is delivered
    assert scope.cancelled_caught

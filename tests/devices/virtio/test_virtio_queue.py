"""Split virtqueues (virtio 1.2 section 2.7) under a hostile driver: every malformed ring puts
the device in DEVICE_NEEDS_RESET with a one-line diagnostic, and nothing else happens; random
rings (hypothesis) never crash or hang; event-index notification suppression with 16-bit
wraparound."""

import struct

import pytest
import trio
import trio.testing
from conftest import file_bytes, image_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from virtio_driver import RAM_BASE, RAM_SIZE, Allocator, Driver, blk_request, make_bus

from rvh.devices.virtio import blk as B
from rvh.devices.virtio import mmio as M
from rvh.devices.virtio.options import parse_drive
from rvh.devices.virtio.queue import (
    VIRTQ_AVAIL_F_NO_INTERRUPT,
    VIRTQ_DESC_F_INDIRECT,
    VIRTQ_DESC_F_NEXT,
    VIRTQ_DESC_F_WRITE,
    GuestMemory,
    RingError,
    SplitQueue,
)

NEXT, WRITE, INDIRECT = VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_F_INDIRECT


def table(driver, entries):
    """An indirect table in guest RAM holding ``entries`` (address, length, flags, next)."""
    address = driver.allocate(16 * max(len(entries), 1), 16)
    for i, entry in enumerate(entries):
        driver.bus.write_bytes(address + 16 * i, struct.pack("<QIHH", *entry))
    return address


def buffer(driver, length=16):
    return driver.allocate(length, 16)


# Each case writes descriptors (and maybe an indirect table) and makes a head available.
def loop(q, d):
    q.write_desc(0, buffer(d), 16, NEXT, 1)
    q.write_desc(1, buffer(d), 16, NEXT, 0)
    q.push_avail(0)


def self_loop(q, d):
    q.write_desc(0, buffer(d), 16, NEXT, 0)
    q.push_avail(0)


def in_rom(q, d):
    q.write_desc(0, 0x1000, 16, 0, 0)
    q.push_avail(0)


def wraps_the_address_space(q, d):
    q.write_desc(0, 2**64 - 8, 16, WRITE, 0)
    q.push_avail(0)


def past_the_end_of_ram(q, d):
    q.write_desc(0, RAM_BASE + RAM_SIZE - 8, 16, 0, 0)
    q.push_avail(0)


def head_out_of_range(q, d):
    q.push_avail(q.size + 3)


def next_out_of_range(q, d):
    q.write_desc(0, buffer(d), 16, NEXT, q.size)
    q.push_avail(0)


def available_index_jumps(q, d):
    q.set_avail_idx(q.size + 1)


def readable_after_writable(q, d):
    q.write_desc(0, buffer(d), 16, WRITE | NEXT, 1)
    q.write_desc(1, buffer(d), 16, 0, 0)
    q.push_avail(0)


def indirect_in_indirect(q, d):
    inner = table(d, [(buffer(d), 16, 0, 0)])
    outer = table(d, [(buffer(d), 16, NEXT, 1), (inner, 16, INDIRECT, 0)])
    q.write_desc(0, outer, 32, INDIRECT, 0)
    q.push_avail(0)


def indirect_with_next(q, d):
    q.write_desc(0, table(d, [(buffer(d), 16, 0, 0)]), 16, INDIRECT | NEXT, 1)
    q.push_avail(0)


def indirect_length_not_multiple_of_16(q, d):
    q.write_desc(0, table(d, [(buffer(d), 16, 0, 0)] * 2), 24, INDIRECT, 0)
    q.push_avail(0)


def indirect_empty(q, d):
    q.write_desc(0, table(d, []), 0, INDIRECT, 0)
    q.push_avail(0)


def indirect_outside_ram(q, d):
    q.write_desc(0, RAM_BASE + RAM_SIZE - 16, 32, INDIRECT, 0)
    q.push_avail(0)


def indirect_longer_than_queue(q, d):
    count = 2 * q.size
    entries = [(buffer(d), 16, NEXT, i + 1) for i in range(count - 1)] + [(buffer(d), 1, WRITE, 0)]
    q.write_desc(0, table(d, entries), 16 * count, INDIRECT, 0)
    q.push_avail(0)


def indirect_loop(q, d):
    q.write_desc(0, table(d, [(buffer(d), 16, NEXT, 1), (buffer(d), 16, NEXT, 0)]), 32, INDIRECT, 0)
    q.push_avail(0)


def indirect_next_out_of_range(q, d):
    q.write_desc(0, table(d, [(buffer(d), 16, NEXT, 5)]), 16, INDIRECT, 0)
    q.push_avail(0)


def total_length_overflows(q, d):
    # 2.7.5.1: chains stay below 2^32 bytes; 256 descriptors of all 16 MiB of RAM reach it
    for i in range(q.size):
        flags = NEXT if i + 1 < q.size else 0
        q.write_desc(i, RAM_BASE, RAM_SIZE, flags, i + 1)
    q.push_avail(0)


def no_status_byte(q, d):
    header = buffer(d)
    d.bus.write_bytes(header, struct.pack("<IIQ", B.VIRTIO_BLK_T_IN, 0, 0))
    q.write_desc(0, header, 16, 0, 0)
    q.push_avail(0)


def short_header(q, d):
    q.write_desc(0, buffer(d), 8, NEXT, 1)
    q.write_desc(1, buffer(d), 1, WRITE, 0)
    q.push_avail(0)


CASES = [
    (loop, "loops", {}),
    (self_loop, "loops", {}),
    (in_rom, "outside guest RAM", {}),
    (wraps_the_address_space, "outside guest RAM", {}),
    (past_the_end_of_ram, "outside guest RAM", {}),
    (head_out_of_range, "chain head", {}),
    (next_out_of_range, "outside the queue", {}),
    (available_index_jumps, "available index jumped", {}),
    (readable_after_writable, "readable after writable", {}),
    (indirect_in_indirect, "inside an indirect table", {}),
    (indirect_with_next, "also has NEXT", {}),
    (indirect_length_not_multiple_of_16, "multiple of 16", {}),
    (indirect_empty, "multiple of 16", {}),
    (indirect_outside_ram, "outside guest RAM", {}),
    (indirect_longer_than_queue, "longer than the queue size", {}),
    (indirect_loop, "loops", {}),
    (indirect_next_out_of_range, "outside the indirect table", {}),
    (indirect_with_next, "INDIRECT_DESC is off", {"drop": M.VIRTIO_F_INDIRECT_DESC}),
    (total_length_overflows, "2^32", {"size": 256}),
    (no_status_byte, "lacks its header or status byte", {}),
    (short_header, "lacks its header or status byte", {}),
]


@pytest.mark.parametrize(("build", "message", "options"), CASES, ids=[c[0].__name__ for c in CASES])
async def test_malformed_ring_needs_reset(make_blk, bus, image, nursery, build, message, options):
    device = make_blk()
    driver = Driver(device, bus)
    await nursery.start(device.serve)
    (queue,) = driver.initialize(1, drop=options.get("drop", 0), size=options.get("size", 8))
    build(queue, driver)
    queue.kick()
    await driver.wait_for(lambda: driver.status() & M.STATUS_DEVICE_NEEDS_RESET)
    # 2.1.2: DEVICE_NEEDS_RESET, then a configuration change notification
    assert driver.read(M.INTERRUPT_STATUS) & M.INTERRUPT_CONFIG_CHANGE and driver.level
    assert len(driver.logs) == 1 and "\n" not in driver.logs[0]
    assert message in driver.logs[0] and driver.logs[0].startswith(device.name)
    assert device.statistics()["errors"] == 1 and queue.used_idx() == 0
    # the device leaves its queues alone until reset ...
    good = blk_request(queue, B.VIRTIO_BLK_T_GET_ID, read_length=20)
    queue.kick()
    await trio.sleep(0.02)
    assert queue.used_idx() == 0 and good.status == 0xFF
    assert file_bytes(image) == image_bytes()
    # ... and works again after it
    (queue,) = driver.initialize(1, size=8)
    request = blk_request(queue, B.VIRTIO_BLK_T_IN, 2, read_length=512)
    queue.kick()
    await driver.wait_used(queue)
    assert request.status == B.VIRTIO_BLK_S_OK and request.read()[:8] == (2).to_bytes(8, "little")


async def test_malformed_ring_in_one_device_leaves_the_others_alone(
    make_blk, bus, image, tmp_path, nursery
):
    other_image = tmp_path / "other.img"
    other_image.write_bytes(image_bytes())
    broken, healthy = make_blk(), make_blk(path=other_image)
    broken_driver = Driver(broken, bus)
    healthy_driver = Driver(healthy, bus, Allocator(bus, RAM_BASE + (8 << 20)))
    await nursery.start(broken.serve)
    await nursery.start(healthy.serve)
    (broken_queue,) = broken_driver.initialize(1, size=8)
    (healthy_queue,) = healthy_driver.initialize(1, size=8)
    loop(broken_queue, broken_driver)
    broken_queue.kick()
    request = blk_request(healthy_queue, B.VIRTIO_BLK_T_IN, 1, read_length=512)
    healthy_queue.kick()
    await healthy_driver.wait_used(healthy_queue)
    await broken_driver.wait_for(lambda: broken_driver.status() & M.STATUS_DEVICE_NEEDS_RESET)
    assert request.status == B.VIRTIO_BLK_S_OK and healthy.live
    assert not healthy_driver.status() & M.STATUS_DEVICE_NEEDS_RESET


# ---- event index and notification suppression (2.7.7, 2.7.10) -----------------------------
async def get_id(driver, queue, used):
    blk_request(queue, B.VIRTIO_BLK_T_GET_ID, read_length=20)
    queue.kick()
    await driver.wait_for(lambda: queue.used_idx() == used)


async def test_used_event_suppresses_interrupts(make_blk, bus, nursery):
    device = make_blk()
    driver = Driver(device, bus)
    await nursery.start(device.serve)
    (queue,) = driver.initialize(1, size=16)
    assert device.negotiated(M.VIRTIO_F_EVENT_IDX)
    queue.set_used_event(2)  # "interrupt me when the used idx passes 2"
    await get_id(driver, queue, 1)
    await get_id(driver, queue, 2)
    assert driver.irq_levels == []
    await get_id(driver, queue, 3)
    assert driver.irq_levels == [True] and driver.ack() == M.INTERRUPT_USED_BUFFER
    await get_id(driver, queue, 4)  # used_event stays 2: no more until the index wraps
    assert driver.irq_levels == [True, False]
    await trio.testing.wait_all_tasks_blocked()
    # 2.7.10: idle, the device asks to be notified at the next available entry
    assert queue.avail_event() == queue.avail_idx == 4


async def test_no_interrupt_flag_without_event_idx(make_blk, bus, nursery):
    device = make_blk()
    driver = Driver(device, bus)
    await nursery.start(device.serve)
    (queue,) = driver.initialize(1, size=16, drop=M.VIRTIO_F_EVENT_IDX)
    queue.set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT)
    await get_id(driver, queue, 1)
    assert driver.irq_levels == []
    queue.set_avail_flags(0)
    await get_id(driver, queue, 2)
    assert driver.irq_levels == [True]


async def test_ring_indices_wrap_at_65536(make_blk, bus, nursery):
    device = make_blk()
    driver = Driver(device, bus)
    await nursery.start(device.serve)
    (queue,) = driver.initialize(1, size=16)
    start = 0xFFFE
    device_queue = device.queues[0]
    device_queue.last_available = device_queue.used_index = device_queue.published_used = start
    queue.avail_idx = queue.last_used = start
    queue.set_used_event(0xFFFF)
    requests = [
        blk_request(queue, B.VIRTIO_BLK_T_IN, n, read_length=512, publish=False) for n in range(4)
    ]
    queue.publish()
    queue.kick()
    await driver.wait_used(queue, 4)
    assert queue.used_idx() == 2
    assert [head for head, _ in queue.take_used()] == [r.head for r in requests]
    assert all(r.status == B.VIRTIO_BLK_S_OK for r in requests)
    assert driver.irq_levels == [True]  # used_event 0xFFFF was crossed once


def make_queue(bus, size=8, event_idx=True):
    memory = GuestMemory(bus)
    queue = SplitQueue(memory, 0, size)
    queue.descriptor_address = RAM_BASE + 0x1000
    queue.driver_address = RAM_BASE + 0x2000
    queue.device_address = RAM_BASE + 0x3000
    queue.enable(event_idx=event_idx, indirect=True)
    return queue


@pytest.mark.parametrize(
    ("old", "count", "used_event", "notify"),
    [
        (0, 1, 0, True),  # "if used_event is 0 ... a notification after the first buffer"
        (1, 1, 0, False),
        (0xFFFE, 2, 0xFFFF, True),  # across the wrap
        (0xFFFE, 2, 0xFFFE, True),
        (0xFFFE, 2, 0x0000, False),
        (0xFFFE, 2, 0xFFFD, False),
        (0xFFFF, 3, 0x0001, True),
        (10, 4, 13, True),
        (10, 4, 14, False),
    ],
)
def test_event_index_arithmetic(bus, old, count, used_event, notify):
    queue = make_queue(bus)
    bus.write_bytes(queue.driver_address + 4 + 2 * queue.size, struct.pack("<H", used_event))
    queue.used_index = queue.published_used = old
    for _ in range(count):
        queue.put(0, 0)
    assert queue.publish() is notify
    assert (
        struct.unpack("<H", bus.read_bytes(queue.device_address + 2, 2))[0]
        == (old + count) & 0xFFFF
    )


def test_used_ring_writes_keep_the_decode_cache_coherent(bus, monkeypatch):
    from rvh.cpu import layout as L

    queue = make_queue(bus)
    page = (queue.device_address - RAM_BASE) >> L.PAGE_SHIFT
    calls = []
    monkeypatch.setattr(bus, "invalidate_code", lambda host, length: calls.append((host, length)))
    queue.put(0, 0)
    queue.publish()
    assert calls == []  # no code there: nothing to do
    bus.page_flags[page] |= L.PAGE_FLAG_CODE
    queue.put(0, 0)
    queue.publish()
    assert calls and calls[0][0] == page << L.PAGE_SHIFT


# ---- random rings ----------------------------------------------------------------------------
HYPOTHESIS_BUS = make_bus()
WINDOW = RAM_BASE + 0x10000  # where random descriptors point: 64 KiB of random bytes


def mostly(common, rare):
    """Draw from ``common`` about four times in five."""
    return st.integers(0, 4).flatmap(lambda pick: rare if pick == 0 else common)


addresses = mostly(
    st.integers(WINDOW, WINDOW + 0x10000),
    st.one_of(
        st.integers(0, 2**64 - 1),
        st.sampled_from([0, RAM_BASE - 16, RAM_BASE + RAM_SIZE - 16, 2**64 - 16]),
    ),
)
lengths = mostly(
    st.one_of(st.integers(0, 0x2000), st.sampled_from([16, 32, 48])), st.integers(0, 2**32 - 1)
)
flag_values = mostly(st.integers(0, 7), st.integers(0, 0xFFFF))


@st.composite
def rings(draw):
    size = draw(st.sampled_from([1, 2, 4, 8, 16, 32]))
    index = mostly(st.integers(0, size - 1), st.integers(0, 0xFFFF))
    table = draw(
        st.lists(st.tuples(addresses, lengths, flag_values, index), min_size=size, max_size=size)
    )
    ring = draw(st.lists(index, min_size=size, max_size=size))
    available = draw(mostly(st.integers(0, size), st.integers(0, 0xFFFF)))
    # the window holds random bytes, and sometimes well-formed indirect tables
    window = draw(
        st.one_of(
            st.binary(max_size=4096),
            st.lists(
                st.tuples(addresses, lengths, flag_values, st.integers(0, 8)), max_size=16
            ).map(lambda entries: b"".join(struct.pack("<QIHH", *e) for e in entries)),
        )
    )
    return size, table, ring, available, window


def write_ring(bus, size, table, ring, available, window, desc, avail):
    bus.memory[0x10000:0x20000] = 0
    bus.write_bytes(WINDOW, window)
    bus.write_bytes(desc, b"".join(struct.pack("<QIHH", *entry) for entry in table))
    bus.write_bytes(avail, struct.pack(f"<HH{len(ring)}H", 0, available & 0xFFFF, *ring))


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rings())
def test_random_rings_never_crash(ring):
    size, table, entries, available, window = ring
    bus = HYPOTHESIS_BUS
    queue = SplitQueue(GuestMemory(bus), 0, 32)
    queue.size = size
    queue.descriptor_address = RAM_BASE + 0x1000
    queue.driver_address = RAM_BASE + 0x2000
    queue.device_address = RAM_BASE + 0x3000
    write_ring(bus, size, table, entries, available, window, RAM_BASE + 0x1000, RAM_BASE + 0x2000)
    queue.enable(event_idx=True, indirect=True)
    bus.write_bytes(queue.driver_address + 2, struct.pack("<H", available & 0xFFFF))
    for _ in range(size + 2):
        try:
            chain = queue.pop()
        except RingError as error:
            assert "\n" not in str(error)
            break
        if chain is None:
            break
        segments = chain.readable + chain.writable
        assert len(segments) <= size
        assert chain.readable_bytes + chain.writable_bytes < 2**32
        for host, length in segments:
            assert 0 <= host and host + length <= RAM_SIZE and length > 0
        queue.put(chain.head, chain.writable_bytes)
        queue.publish()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rings())
def test_random_rings_against_the_block_device(tmp_path_factory, ring):
    """The whole device on random rings: it either completes requests or needs a reset; never
    an exception, never a hang, and a read-only image stays untouched."""
    size, table, entries, available, window = ring
    path = tmp_path_factory.getbasetemp() / "random.img"
    if not path.exists():
        path.write_bytes(image_bytes())
    bus = HYPOTHESIS_BUS

    async def main():
        device = B.VirtioBlk(parse_drive(f"file={path},readonly=on"), bus=bus)
        driver = Driver(device, bus)
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(device.serve)
                assert driver.negotiate()
                driver.write(M.QUEUE_SEL, 0)
                driver.write(M.QUEUE_NUM, size)
                for register, address in (
                    (M.QUEUE_DESC_LOW, RAM_BASE + 0x1000),
                    (M.QUEUE_DRIVER_LOW, RAM_BASE + 0x2000),
                    (M.QUEUE_DEVICE_LOW, RAM_BASE + 0x3000),
                ):
                    driver.write(register, address & 0xFFFF_FFFF)
                    driver.write(register + 4, address >> 32)
                write_ring(
                    bus, size, table, entries, 0, window, RAM_BASE + 0x1000, RAM_BASE + 0x2000
                )
                driver.write(M.QUEUE_READY, 1)
                driver.driver_ok()
                bus.write_bytes(RAM_BASE + 0x2002, struct.pack("<H", available & 0xFFFF))
                driver.write(M.QUEUE_NOTIFY, 0)

                def busy():
                    try:
                        return device.live and device.queues[0].available() > 0
                    except RingError:
                        return device.live  # until the worker finds the same fault

                with trio.fail_after(5):
                    while busy():
                        await trio.sleep(0.001)
                    await trio.testing.wait_all_tasks_blocked()
                assert device.live or driver.status() & M.STATUS_DEVICE_NEEDS_RESET
                nursery.cancel_scope.cancel()
        finally:
            device.close()

    trio.run(main)
    assert file_bytes(path) == image_bytes()

"""A virtio driver written in Python, for the device tests and the benchmark.

It does what a guest driver does, through the same doors: MMIO ``read``/``write`` on the device
for the registers (the initialization sequence of virtio 1.2 section 3.1.1 and the queue setup of
4.2.3.2), and guest RAM (the ``Bus``) for descriptor tables, available rings and buffers.  It also
offers raw access to the rings so that tests can build malformed ones.
"""

from __future__ import annotations

import struct

import trio

from rvh.bus import Bus
from rvh.devices.virtio import mmio as M
from rvh.devices.virtio.queue import (
    VIRTQ_DESC_F_INDIRECT,
    VIRTQ_DESC_F_NEXT,
    VIRTQ_DESC_F_WRITE,
)

RAM_BASE = 0x8000_0000
RAM_SIZE = 16 << 20


def make_bus() -> Bus:
    return Bus(RAM_BASE, RAM_SIZE, 0x1000, 0xF000)


class Allocator:
    """A bump allocator over guest RAM (from 1 MiB up; tests never free)."""

    def __init__(self, bus: Bus, start: int = RAM_BASE + (1 << 20)) -> None:
        self.bus = bus
        self.next = start

    def __call__(self, size: int, align: int = 16) -> int:
        address = (self.next + align - 1) & ~(align - 1)
        self.next = address + max(size, 1)
        if self.next > self.bus.ram_base + self.bus.ram_size:
            raise MemoryError("test allocator out of guest RAM")
        return address


class DriverQueue:
    def __init__(self, driver: Driver, index: int, size: int) -> None:
        self.driver = driver
        self.bus = driver.bus
        self.index = index
        self.size = size
        allocate = driver.allocate
        self.desc = allocate(16 * size, 16)
        self.avail = allocate(6 + 2 * size, 2)
        self.used = allocate(6 + 8 * size, 4)
        self.free = list(range(size))
        self.avail_idx = 0
        self.last_used = 0
        self.chains: dict[int, list[int]] = {}

    # -- raw ring access ---------------------------------------------------------------------
    def write_desc(self, index: int, address: int, length: int, flags: int, following: int) -> None:
        self.bus.write_bytes(
            self.desc + 16 * index, struct.pack("<QIHH", address, length, flags, following)
        )

    def push_avail(self, head: int, publish: bool = True) -> None:
        self.bus.write_bytes(
            self.avail + 4 + 2 * (self.avail_idx % self.size), struct.pack("<H", head)
        )
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        if publish:
            self.publish()

    def publish(self) -> None:
        self.bus.write_bytes(self.avail + 2, struct.pack("<H", self.avail_idx))

    def set_avail_idx(self, value: int) -> None:
        self.avail_idx = value & 0xFFFF
        self.publish()

    def set_avail_flags(self, flags: int) -> None:
        self.bus.write_bytes(self.avail, struct.pack("<H", flags))

    def set_used_event(self, value: int) -> None:
        self.bus.write_bytes(self.avail + 4 + 2 * self.size, struct.pack("<H", value))

    def used_idx(self) -> int:
        return struct.unpack("<H", self.bus.read_bytes(self.used + 2, 2))[0]

    def used_flags(self) -> int:
        return struct.unpack("<H", self.bus.read_bytes(self.used, 2))[0]

    def avail_event(self) -> int:
        return struct.unpack("<H", self.bus.read_bytes(self.used + 4 + 8 * self.size, 2))[0]

    # -- well-formed chains ------------------------------------------------------------------
    def add(self, buffers: list[tuple[int, int, bool]], publish: bool = True) -> int:
        """Make a chain of (address, length, device_writable) available; return its head."""
        indices = [self.free.pop(0) for _ in buffers]
        for i, (address, length, writable) in enumerate(buffers):
            flags = VIRTQ_DESC_F_WRITE if writable else 0
            following = 0
            if i + 1 < len(buffers):
                flags |= VIRTQ_DESC_F_NEXT
                following = indices[i + 1]
            self.write_desc(indices[i], address, length, flags, following)
        self.chains[indices[0]] = indices
        self.push_avail(indices[0], publish)
        return indices[0]

    def add_indirect(self, buffers: list[tuple[int, int, bool]], publish: bool = True) -> int:
        table = self.driver.allocate(16 * len(buffers), 16)
        for i, (address, length, writable) in enumerate(buffers):
            flags = VIRTQ_DESC_F_WRITE if writable else 0
            if i + 1 < len(buffers):
                flags |= VIRTQ_DESC_F_NEXT
            self.bus.write_bytes(
                table + 16 * i, struct.pack("<QIHH", address, length, flags, i + 1)
            )
        head = self.free.pop(0)
        self.write_desc(head, table, 16 * len(buffers), VIRTQ_DESC_F_INDIRECT, 0)
        self.chains[head] = [head]
        self.push_avail(head, publish)
        return head

    def kick(self) -> None:
        self.driver.device.write(M.QUEUE_NOTIFY, 4, self.index)

    def pending_used(self) -> int:
        return (self.used_idx() - self.last_used) & 0xFFFF

    def take_used(self) -> list[tuple[int, int]]:
        """New used elements (id, len), returning their descriptors to the free list."""
        result = []
        while self.pending_used():
            slot = self.used + 4 + 8 * (self.last_used % self.size)
            head, length = struct.unpack("<II", self.bus.read_bytes(slot, 8))
            result.append((head, length))
            self.free.extend(self.chains.pop(head, []))
            self.last_used = (self.last_used + 1) & 0xFFFF
        # like Linux's virtqueue_enable_cb: with VIRTIO_F_EVENT_IDX, interrupt me at the next one
        self.set_used_event(self.last_used)
        return result


class Driver:
    def __init__(self, device: M.VirtioMmioDevice, bus: Bus, allocate: Allocator | None = None):
        self.device = device
        self.bus = bus
        self.allocate = allocate or Allocator(bus)
        self.irq_levels: list[bool] = []
        self.level = False
        self.logs: list[str] = []
        self._interrupt = trio.Event()
        device.irq = self._on_irq
        device.log = self.logs.append
        self.queues: list[DriverQueue] = []
        self.features = 0

    def _on_irq(self, level: bool) -> None:
        self.irq_levels.append(level)
        self.level = level
        if level:
            self._interrupt.set()

    def read(self, offset: int) -> int:
        return self.device.read(offset, 4)

    def write(self, offset: int, value: int) -> None:
        self.device.write(offset, 4, value)

    def device_features(self) -> int:
        self.write(M.DEVICE_FEATURES_SEL, 0)
        low = self.read(M.DEVICE_FEATURES)
        self.write(M.DEVICE_FEATURES_SEL, 1)
        return low | self.read(M.DEVICE_FEATURES) << 32

    def negotiate(self, accept: int | None = None, drop: int = 0) -> bool:
        """3.1.1 steps 1-6; returns whether FEATURES_OK stuck."""
        assert self.read(M.MAGIC_VALUE) == M.MAGIC and self.read(M.VERSION) == 2
        self.write(M.STATUS, 0)
        self.write(M.STATUS, M.STATUS_ACKNOWLEDGE)
        self.write(M.STATUS, M.STATUS_ACKNOWLEDGE | M.STATUS_DRIVER)
        offered = self.device_features()
        features = (offered if accept is None else accept) & ~drop
        self.write(M.DRIVER_FEATURES_SEL, 0)
        self.write(M.DRIVER_FEATURES, features & 0xFFFF_FFFF)
        self.write(M.DRIVER_FEATURES_SEL, 1)
        self.write(M.DRIVER_FEATURES, features >> 32)
        self.write(M.STATUS, M.STATUS_ACKNOWLEDGE | M.STATUS_DRIVER | M.STATUS_FEATURES_OK)
        self.features = features
        return bool(self.read(M.STATUS) & M.STATUS_FEATURES_OK)

    def setup_queue(self, index: int, size: int | None = None) -> DriverQueue:
        """4.2.3.2: select, check not in use, read the maximum, program size and addresses,
        then QueueReady."""
        self.write(M.QUEUE_SEL, index)
        assert self.read(M.QUEUE_READY) == 0
        maximum = self.read(M.QUEUE_NUM_MAX)
        assert maximum
        queue = DriverQueue(self, index, size or maximum)
        self.program_queue(queue)
        self.write(M.QUEUE_READY, 1)
        while len(self.queues) <= index:
            self.queues.append(None)  # type: ignore[arg-type]
        self.queues[index] = queue
        return queue

    def program_queue(self, queue: DriverQueue) -> None:
        self.write(M.QUEUE_SEL, queue.index)
        self.write(M.QUEUE_NUM, queue.size)
        for low, address in (
            (M.QUEUE_DESC_LOW, queue.desc),
            (M.QUEUE_DRIVER_LOW, queue.avail),
            (M.QUEUE_DEVICE_LOW, queue.used),
        ):
            self.write(low, address & 0xFFFF_FFFF)
            self.write(low + 4, address >> 32)

    def driver_ok(self) -> None:
        self.write(M.STATUS, self.read(M.STATUS) | M.STATUS_DRIVER_OK)

    def initialize(
        self, queues: int, accept: int | None = None, drop: int = 0, size: int | None = None
    ) -> list[DriverQueue]:
        assert self.negotiate(accept, drop)
        self.queues = []
        result = [self.setup_queue(i, size) for i in range(queues)]
        self.driver_ok()
        return result

    def status(self) -> int:
        return self.read(M.STATUS)

    def ack(self) -> int:
        status = self.read(M.INTERRUPT_STATUS)
        self.write(M.INTERRUPT_ACK, status)
        return status

    async def wait_used(self, queue: DriverQueue, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` used elements are pending on ``queue`` (interrupts may be
        suppressed, so poll too)."""
        with trio.fail_after(timeout):
            while queue.pending_used() < count:
                with trio.move_on_after(0.002):
                    await self._interrupt.wait()
                self._interrupt = trio.Event()

    async def wait_for(self, condition, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while not condition():
                with trio.move_on_after(0.002):
                    await self._interrupt.wait()
                self._interrupt = trio.Event()

    async def wait_interrupt(self, timeout: float = 5.0) -> None:
        with trio.fail_after(timeout):
            while not self.level:
                await self._interrupt.wait()
                self._interrupt = trio.Event()


# ---- virtio-blk requests (5.2.6) --------------------------------------------------------------
class BlkRequest:
    def __init__(self, queue: DriverQueue, head: int, data: int, length: int, status: int):
        self.queue = queue
        self.head = head
        self.data = data
        self.length = length
        self.status_address = status

    @property
    def status(self) -> int:
        return self.queue.bus.read_bytes(self.status_address, 1)[0]

    def read(self) -> bytes:
        return self.queue.bus.read_bytes(self.data, self.length)


def blk_request(
    queue: DriverQueue,
    request_type: int,
    sector: int = 0,
    *,
    payload: bytes = b"",
    read_length: int = 0,
    segments: int = 1,
    split_header: bool = False,
    indirect: bool = False,
    publish: bool = True,
) -> BlkRequest:
    """Build a request: header (device-readable), then ``payload`` (readable) or
    ``read_length`` bytes (writable), then the status byte; the data in ``segments`` pieces."""
    allocate = queue.driver.allocate
    bus = queue.bus
    header = allocate(16, 16)
    bus.write_bytes(header, struct.pack("<IIQ", request_type, 0, sector))
    buffers: list[tuple[int, int, bool]] = []
    if split_header:
        buffers += [(header, 5, False), (header + 5, 11, False)]
    else:
        buffers.append((header, 16, False))
    length = len(payload) or read_length
    data = allocate(length, 512) if length else 0
    if payload:
        bus.write_bytes(data, payload)
    elif length:
        bus.write_bytes(data, b"\xee" * length)  # stale bytes the device must overwrite
    if length:
        piece = -(-length // segments)
        for start in range(0, length, piece):
            buffers.append((data + start, min(piece, length - start), not payload))
    status = allocate(1, 1)
    bus.write_bytes(status, b"\xff")
    buffers.append((status, 1, True))
    add = queue.add_indirect if indirect else queue.add
    head = add(buffers, publish)
    return BlkRequest(queue, head, data, length, status)

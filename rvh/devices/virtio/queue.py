"""Split virtqueues, device side (virtio 1.2 section 2.7), and checked access to guest RAM.

The driver owns the descriptor table and the available ring, the device owns the used ring
(2.7).  Everything the driver wrote is untrusted: every index is checked against the queue size,
every buffer against guest RAM, every chain against the queue size (which also ends loops) and
the 2^32-byte limit on its total length.  A violation raises ``RingError`` with a one-line
reason; the device then sets DEVICE_NEEDS_RESET and leaves the queue alone (``mmio.py``).

Buffers are handed to devices as (host offset, length) pairs into ``GuestMemory.buffer``, a
memoryview of the bus's RAM, so block I/O can ``preadv``/``pwritev`` straight into and out of
guest memory with one copy and no Python loop over bytes.  Ring fields are read and written with
``struct`` on the same memoryview, which is a few hundred nanoseconds per field.

Used-buffer notifications follow 2.7.7 (flags, or ``used_event`` with VIRTIO_F_EVENT_IDX, in
16-bit wrapping arithmetic); available-buffer notifications are suppressed the same way through
the used ring's ``flags`` or ``avail_event`` (2.7.10) while the device is busy, and re-enabled
before it goes to sleep, with a re-check to close the race.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rvh.bus import Bus
from rvh.cpu import layout as L
from rvh.devices.iommu import GRANULE_SHIFT, GranuleCache, Iommu, IommuFault
from rvh.devices.virtio.notifier import Notifier

# 2.7.5 descriptor flags
VIRTQ_DESC_F_NEXT = 1
VIRTQ_DESC_F_WRITE = 2
VIRTQ_DESC_F_INDIRECT = 4
# 2.7.6 / 2.7.8 ring flags
VIRTQ_AVAIL_F_NO_INTERRUPT = 1
VIRTQ_USED_F_NO_NOTIFY = 1

DESCRIPTOR_SIZE = 16
MAX_QUEUE_SIZE = 32768  # 2.7: "The maximum Queue Size value is 32768"
MAX_CHAIN_BYTES = 1 << 32  # 2.7.5.1: chains stay below 2^32 bytes (used len is 32-bit)

# 2.7: alignment of the three parts
DESCRIPTOR_TABLE_ALIGN = 16
AVAILABLE_RING_ALIGN = 2
USED_RING_ALIGN = 4

_DESCRIPTOR = struct.Struct("<QIHH")  # addr, len, flags, next
_U16 = struct.Struct("<H")
_USED_ELEMENT = struct.Struct("<II")  # id, len


# GuestMemory's IOMMU fast path spells the granule as literals
assert GRANULE_SHIFT == 21


class RingError(Exception):
    """The driver broke a virtqueue rule; the message is one line for the log."""


class GuestMemory:
    """Guest RAM as the devices see it: bounds-checked host offsets into one memoryview."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.base = bus.ram_base
        self.size = bus.ram_size
        self.buffer = bus.ram.data.cast("B")  # ndarray.data: the array's own memoryview
        self._page_flags = bus.page_flags.data.cast("B")

    # the IOMMU in front of this device and the device's id on it (rvh/devices/iommu.py), or
    # None: then device addresses are physical addresses
    iommu: Iommu | None = None
    device_id = 0
    # the IOMMU's granule cache for this device (Iommu.granules_of): translations it already
    # made, so that most buffers cost one dict lookup instead of a call into the IOMMU
    _granules = GranuleCache()
    _readable: dict[int, int] = {}
    _writable: dict[int, int] = {}

    def behind_iommu(self, iommu: Iommu, device_id: int) -> None:
        """Put the device behind ``iommu`` as ``device_id``: from now on its addresses are
        translated (as guest-physical addresses, when the IOMMU has a G-stage for it)."""
        self.iommu = iommu
        self.device_id = device_id
        self._granules = iommu.granules_of(device_id)
        self._readable = self._granules.readable
        self._writable = self._granules.writable
        # the translating lookup replaces the plain one, so a device with no IOMMU pays nothing
        self.host = self._translated_host  # type: ignore[method-assign]

    def host(self, address: int, length: int, write: bool = False) -> int:
        """Offset in ``buffer`` of device address [address, address + length), which must lie
        in RAM (device DMA never reaches the boot ROM or MMIO).  Behind an IOMMU the address is
        translated first (``write``: the device will write there); a refusal, which the IOMMU
        records in its fault queue, is a :class:`RingError`, so nothing is read or written."""
        offset = address - self.base
        if offset < 0 or offset + length > self.size:
            raise RingError(f"buffer {address:#x}+{length:#x} is outside guest RAM")
        return offset

    def _translated_host(self, address: int, length: int, write: bool = False) -> int:
        """``host`` behind the IOMMU.  The fast paths: the range inside the cache's window of
        granules with one offset (a VM's RAM), or inside one granule the IOMMU translated
        before (every check it made then holds until software invalidates, which empties the
        cache)."""
        cache = self._granules
        if write:
            if cache.write_low <= address and address + length <= cache.write_high and length:
                cache.hits += 1
                return address + cache.write_delta
        elif cache.read_low <= address and address + length <= cache.read_high and length:
            cache.hits += 1
            return address + cache.read_delta
        # (the granule's 2 MiB as literals: a global costs a lookup per use, on every buffer)
        delta = (self._writable if write else self._readable).get(address >> 21)
        if delta is not None and 0 < length <= 0x20_0000 - (address & 0x1F_FFFF):
            self._granules.hits += 1
            return address + delta
        iommu = self.iommu
        assert iommu is not None
        try:
            address = iommu.translate(self.device_id, address, length, write)
        except IommuFault as fault:
            raise RingError(f"DMA to {fault.address:#x}+{length:#x} refused by the IOMMU "
                            f"(cause {fault.cause})") from None  # fmt: skip
        offset = address - self.base
        if offset < 0 or offset + length > self.size:
            raise RingError(f"buffer {address:#x}+{length:#x} is outside guest RAM")
        return offset

    def written(self, host: int, length: int) -> None:
        """The device wrote guest RAM at [host, host+length): keep the decoded-instruction cache
        coherent, as a store from a hart would (cheap when the page holds no code)."""
        if length <= 0:
            return
        if self.bus.dirty_bitmap is not None:
            self.bus.mark_dirty(host, length)  # migration's dirty logging (rvh/dirty.py)
        first = host >> L.PAGE_SHIFT
        last = (host + length - 1) >> L.PAGE_SHIFT
        if first == last:
            if self._page_flags[first] & L.PAGE_FLAG_CODE:
                self.bus.invalidate_code(host, length)
        else:
            self.bus.invalidate_code(host, length)

    # -- small helpers for guest-memory structures (tests and drivers use them too) ----------
    def read(self, address: int, length: int) -> bytes:
        host = self.host(address, length)
        return bytes(self.buffer[host : host + length])

    def write(self, address: int, data: bytes) -> None:
        host = self.host(address, len(data))
        self.buffer[host : host + len(data)] = data
        self.written(host, len(data))


@dataclass(slots=True)
class Chain:
    """One descriptor chain popped from the available ring: device-readable segments first,
    then device-writable ones (2.7.4), as (host offset, length) into ``GuestMemory.buffer``."""

    head: int
    readable: list[tuple[int, int]] = field(default_factory=list)
    writable: list[tuple[int, int]] = field(default_factory=list)
    readable_bytes: int = 0
    writable_bytes: int = 0


class SplitQueue:
    """One split virtqueue: the registers the driver programs through the transport, and the
    device's side of the rings once the queue is enabled."""

    def __init__(self, memory: GuestMemory, index: int, max_size: int) -> None:
        if not 1 <= max_size <= MAX_QUEUE_SIZE or max_size & (max_size - 1):
            raise ValueError(f"queue size {max_size} is not a power of 2 up to 32768")
        self.memory = memory
        self.index = index
        self.max_size = max_size
        self.notifier = Notifier()
        self.event_idx = False
        self.indirect = False
        self.epoch = 0  # changes whenever the rings change: work taken before is dropped
        self.reset()

    def reset(self) -> None:
        """Back to the state after a device reset (4.2.2.1: QueueReady reads 0)."""
        self.size = self.max_size
        self.descriptor_address = 0
        self.driver_address = 0
        self.device_address = 0
        self.ready = False
        self.epoch += 1
        self.last_available = 0
        self.used_index = 0
        self.published_used = 0
        self.chains = 0
        self._known_available = 0
        self._descriptors = self._available = self._used = 0
        self._used_pages: range = range(0)

    # -- VM files (rvh/snapshot.py) --------------------------------------------------------
    def save_state(self) -> dict[str, object]:
        return {
            "size": self.size,
            "addresses": [self.descriptor_address, self.driver_address, self.device_address],
            "ready": self.ready,
            "event_idx": self.event_idx,
            "indirect": self.indirect,
            "indices": [self.last_available, self.used_index, self.published_used],
            "chains": self.chains,
            "notified": self.notifier.pending,
        }

    def restore_state(self, saved: dict) -> None:
        """The queue as saved: the registers, and the ring positions of an enabled queue
        (its layout is checked again as QueueReady checks it).  Raises RingError."""
        self.reset()
        self.size = int(saved["size"])
        self.descriptor_address, self.driver_address, self.device_address = (
            int(value) for value in saved["addresses"]
        )
        if saved["ready"]:
            self.enable(bool(saved["event_idx"]), bool(saved["indirect"]))
            last_available, used_index, published_used = (
                int(value) & 0xFFFF for value in saved["indices"]
            )
            self.last_available = last_available
            self.used_index = used_index
            self.published_used = published_used
        self.chains = int(saved["chains"])
        if saved["notified"]:
            self.notifier.notify()

    # -- enabling -------------------------------------------------------------------------
    def enable(self, event_idx: bool, indirect: bool) -> None:
        """QueueReady = 1: check the layout the driver gave (2.7 sizes and alignments, all in
        RAM) and start from index 0 of both rings.  Raises RingError."""
        size = self.size
        if not 1 <= size <= self.max_size or size & (size - 1):
            raise RingError(f"queue size {size} is not a power of 2 up to {self.max_size}")
        parts = (
            (
                "descriptor table",
                self.descriptor_address,
                DESCRIPTOR_SIZE * size,
                DESCRIPTOR_TABLE_ALIGN,
            ),
            ("available ring", self.driver_address, 6 + 2 * size, AVAILABLE_RING_ALIGN),
            ("used ring", self.device_address, 6 + 8 * size, USED_RING_ALIGN),
        )
        hosts = []
        for name, address, length, align in parts:
            if address % align:
                raise RingError(f"{name} at {address:#x} is not {align}-byte aligned")
            try:
                hosts.append(self.memory.host(address, length, name == "used ring"))
            except RingError:
                raise RingError(f"{name} {address:#x}+{length:#x} is outside guest RAM") from None
        self._descriptors, self._available, self._used = hosts
        self.event_idx = event_idx
        self.indirect = indirect
        self.last_available = 0
        self._known_available = 0
        self.used_index = 0
        self.published_used = 0
        used_length = 6 + 8 * size
        self._used_pages = range(
            self._used >> L.PAGE_SHIFT, ((self._used + used_length - 1) >> L.PAGE_SHIFT) + 1
        )
        self.epoch += 1
        self.ready = True

    # -- the available ring ----------------------------------------------------------------
    def available(self) -> int:
        """How many chains the driver has made available and the device not yet taken."""
        index = _U16.unpack_from(self.memory.buffer, self._available + 2)[0]
        count = (index - self.last_available) & 0xFFFF
        if count > self.size:
            raise RingError(
                f"available index jumped from {self.last_available} to {index}, "
                f"more than the queue size {self.size}"
            )
        self._known_available = count
        return count

    def pop(self) -> Chain | None:
        """Take the next available chain, or None when there is none.  Raises RingError."""
        # the driver never takes entries back (2.7.6.1), so a count read once stays true and
        # the index is read again only when it is used up
        if not self._known_available and not self.available():
            return None
        self._known_available -= 1
        slot = self._available + 4 + 2 * (self.last_available & (self.size - 1))
        head = _U16.unpack_from(self.memory.buffer, slot)[0]
        self.last_available = (self.last_available + 1) & 0xFFFF
        self.chains += 1
        return self.walk(head)

    def walk(self, head: int) -> Chain:
        """Follow the chain that starts at descriptor ``head`` (2.7.5, 2.7.5.3)."""
        size = self.size
        if head >= size:
            raise RingError(f"chain head {head} is outside the queue of {size}")
        buffer = self.memory.buffer
        memory_host = self.memory.host
        chain = Chain(head)
        readable, writable = chain.readable, chain.writable
        table, entries = self._descriptors, size
        index = head
        in_table = False
        steps = 0
        total = 0
        while True:
            steps += 1
            # 2.7.5.3.1: "A driver MUST NOT create a descriptor chain longer than the Queue
            # Size of the device" -- this also ends chains that loop
            if steps > size:
                raise RingError(self._too_long(head))
            address, length, flags, following = _DESCRIPTOR.unpack_from(
                buffer, table + DESCRIPTOR_SIZE * index
            )
            if flags & VIRTQ_DESC_F_INDIRECT:
                # 2.7.5.3.1: only with VIRTIO_F_INDIRECT_DESC, never inside an indirect table,
                # never together with NEXT
                if not self.indirect:
                    raise RingError(f"descriptor {index} is indirect but INDIRECT_DESC is off")
                if in_table:
                    raise RingError(f"indirect descriptor {index} inside an indirect table")
                if flags & VIRTQ_DESC_F_NEXT:
                    raise RingError(f"indirect descriptor {index} also has NEXT set")
                if length == 0 or length % DESCRIPTOR_SIZE:
                    raise RingError(f"indirect table length {length} is not a multiple of 16")
                try:
                    table = memory_host(address, length)
                except RingError:
                    raise RingError(
                        f"indirect table {address:#x}+{length:#x} is outside guest RAM"
                    ) from None
                entries = length // DESCRIPTOR_SIZE
                index = 0
                in_table = True
                continue
            if length:
                host = memory_host(address, length, bool(flags & VIRTQ_DESC_F_WRITE))
                total += length
                if total >= MAX_CHAIN_BYTES:
                    raise RingError(f"chain at head {head} is longer than 2^32 bytes")
                if flags & VIRTQ_DESC_F_WRITE:
                    writable.append((host, length))
                    chain.writable_bytes += length
                else:
                    # 2.7.4.2: device-writable elements come after device-readable ones
                    if writable:
                        raise RingError(f"chain at head {head}: readable after writable buffer")
                    readable.append((host, length))
                    chain.readable_bytes += length
            if not flags & VIRTQ_DESC_F_NEXT:
                return chain
            index = following
            if index >= entries:
                where = "indirect table" if in_table else "queue"
                raise RingError(f"next descriptor {index} is outside the {where} of {entries}")

    def _too_long(self, head: int) -> str:
        """Say whether a chain that exceeded the queue size loops (walk it again, slowly)."""
        buffer = self.memory.buffer
        seen: set[tuple[bool, int]] = set()
        table, entries, index, in_table = self._descriptors, self.size, head, False
        for _ in range(2 * self.size + 2):
            if (in_table, index) in seen:
                return f"descriptor chain at head {head} loops (back to descriptor {index})"
            seen.add((in_table, index))
            address, length, flags, following = _DESCRIPTOR.unpack_from(
                buffer, table + DESCRIPTOR_SIZE * index
            )
            if flags & VIRTQ_DESC_F_INDIRECT and not in_table:
                try:
                    table = self.memory.host(address, length)
                except RingError:
                    break
                entries, index, in_table = length // DESCRIPTOR_SIZE, 0, True
                if not entries:
                    break
                continue
            if not flags & VIRTQ_DESC_F_NEXT or following >= entries:
                break
            index = following
        return f"descriptor chain at head {head} is longer than the queue size {self.size}"

    # -- the used ring ---------------------------------------------------------------------
    def put(self, head: int, length: int) -> None:
        """Add a used element; the driver sees it at the next ``publish``.  2.7.8.1: ``len``
        is written before ``idx``."""
        slot = self._used + 4 + 8 * (self.used_index & (self.size - 1))
        _USED_ELEMENT.pack_into(self.memory.buffer, slot, head, length)
        if self.memory.bus.dirty_bitmap is not None:
            self.memory.bus.mark_dirty(slot, 8)
        self.used_index = (self.used_index + 1) & 0xFFFF

    def publish(self) -> bool:
        """Expose the used elements added since the last publish by writing the used ``idx``;
        return whether the driver wants a used-buffer notification for them (2.7.7.2)."""
        old = self.published_used
        new = self.used_index
        if old == new:
            return False
        _U16.pack_into(self.memory.buffer, self._used + 2, new)
        self.published_used = new
        self._used_written()
        buffer = self.memory.buffer
        if self.event_idx:
            # 2.7.7.2 with VIRTIO_F_EVENT_IDX: notify when the used idx passes used_event;
            # for a batch, when used_event lies in [old, new) modulo 2^16
            used_event = _U16.unpack_from(buffer, self._available + 4 + 2 * self.size)[0]
            return ((new - used_event - 1) & 0xFFFF) < ((new - old) & 0xFFFF)
        # without it: flags 0 means notify, 1 means SHOULD NOT
        flags = _U16.unpack_from(buffer, self._available)[0]
        return not flags & VIRTQ_AVAIL_F_NO_INTERRUPT

    def _used_written(self) -> None:
        """The device wrote the used ring's idx, flags or avail_event."""
        if self.memory.bus.dirty_bitmap is not None:
            self.memory.bus.mark_dirty(self._used, 6 + 8 * self.size)
        flags = self.memory._page_flags
        for page in self._used_pages:
            if flags[page] & L.PAGE_FLAG_CODE:
                self.memory.bus.invalidate_code(self._used, 6 + 8 * self.size)
                return

    # -- available-buffer notification suppression (2.7.10) -------------------------------
    def suppress_notifications(self) -> None:
        """The device is busy with this queue and will look at the ring again by itself."""
        if not self.event_idx:
            _U16.pack_into(self.memory.buffer, self._used, VIRTQ_USED_F_NO_NOTIFY)
            self._used_written()
        # with EVENT_IDX avail_event stays behind: the driver only notifies when it crosses it

    def enable_notifications(self) -> bool:
        """The device is about to sleep: ask for a notification at the next available chain,
        then re-check the ring (the driver may have added one meanwhile).  True when there is
        work already.  Raises RingError."""
        if self.event_idx:
            _U16.pack_into(self.memory.buffer, self._used + 4 + 8 * self.size, self.last_available)
        else:
            _U16.pack_into(self.memory.buffer, self._used, 0)
        self._used_written()
        return self.available() > 0

    def statistics(self) -> dict[str, int]:
        return {
            "chains": self.chains,
            "notifications": self.notifier.notifications,
            "wakeups": self.notifier.wakeups,
        }

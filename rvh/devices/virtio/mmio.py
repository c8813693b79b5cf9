"""virtio-mmio transport, version 2 (virtio 1.2 section 4.2), shared by every rvh virtio device.

A device (``VirtioBlk``, ``VirtioNet``) is a subclass of ``VirtioMmioDevice`` and is itself the
bus device of its 0x1000-byte slot: ``bus.attach(base, 0x1000, device)``.  This class holds the
registers of table 4.1, the device status state machine of 2.1 and the feature negotiation of
2.2 and 3.1.1, and owns the device's split virtqueues (``queue.py``).  An unused slot gets a
``VirtioMmioEmpty``, which reads DeviceID 0 ("the driver MUST ignore a device with DeviceID
0x0"), as on QEMU's virt board.

Threads.  ``read``/``write`` are called synchronously from the task that runs the harts, which
may be the trio thread or a worker thread; the device's queue workers run on the trio thread.
One re-entrant lock serializes register accesses with the workers' short critical sections
(workers never hold it across an ``await``).  A QueueNotify write only signals the queue's
``Notifier``; the work happens in ``serve``.

Errors.  Anything the guest controls -- register values, ring contents, request headers --
never raises out of ``read``, ``write`` or ``serve``.  Access sizes and offsets the spec forbids
are ignored (reads return 0) and counted; a broken ring or request puts the device in
DEVICE_NEEDS_RESET (2.1.2), with a one-line diagnostic through ``log`` and a configuration
change interrupt, and the device then touches no queue until the driver resets it.

Interrupts.  The slot has one level-triggered line (4.2.3.4): ``irq(True)`` while InterruptStatus
is non-zero, ``irq(False)`` once the driver has acknowledged every bit.  ``irq`` is called from
whichever thread changes InterruptStatus (a worker raising it, the driver's ACK lowering it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import trio

from rvh.bus import Bus
from rvh.devices.virtio.queue import GuestMemory, RingError, SplitQueue

# 4.2.2 MMIO device register layout (offsets from the slot base)
MAGIC_VALUE = 0x000
VERSION = 0x004
DEVICE_ID = 0x008
VENDOR_ID = 0x00C
DEVICE_FEATURES = 0x010
DEVICE_FEATURES_SEL = 0x014
DRIVER_FEATURES = 0x020
DRIVER_FEATURES_SEL = 0x024
QUEUE_SEL = 0x030
QUEUE_NUM_MAX = 0x034
QUEUE_NUM = 0x038
QUEUE_READY = 0x044
QUEUE_NOTIFY = 0x050
INTERRUPT_STATUS = 0x060
INTERRUPT_ACK = 0x064
STATUS = 0x070
QUEUE_DESC_LOW = 0x080
QUEUE_DESC_HIGH = 0x084
QUEUE_DRIVER_LOW = 0x090
QUEUE_DRIVER_HIGH = 0x094
QUEUE_DEVICE_LOW = 0x0A0
QUEUE_DEVICE_HIGH = 0x0A4
SHM_SEL = 0x0AC
SHM_LEN_LOW = 0x0B0
SHM_LEN_HIGH = 0x0B4
SHM_BASE_LOW = 0x0B8
SHM_BASE_HIGH = 0x0BC
QUEUE_RESET = 0x0C0
CONFIG_GENERATION = 0x0FC
CONFIG = 0x100

SLOT_SIZE = 0x1000
MAGIC = 0x74726976  # "virt"
MMIO_VERSION = 2
VENDOR = int.from_bytes(b"rvh ", "little")

# 2.1 device status field
STATUS_ACKNOWLEDGE = 1
STATUS_DRIVER = 2
STATUS_DRIVER_OK = 4
STATUS_FEATURES_OK = 8
STATUS_DEVICE_NEEDS_RESET = 0x40
STATUS_FAILED = 0x80

# 4.2.2 InterruptStatus bits
INTERRUPT_USED_BUFFER = 1
INTERRUPT_CONFIG_CHANGE = 2

# 6 reserved feature bits (device-independent)
VIRTIO_F_INDIRECT_DESC = 1 << 28
VIRTIO_F_EVENT_IDX = 1 << 29
VIRTIO_F_VERSION_1 = 1 << 32
VIRTIO_F_ACCESS_PLATFORM = 1 << 33
VIRTIO_F_RING_PACKED = 1 << 34
VIRTIO_F_IN_ORDER = 1 << 35

# 5 device IDs
DEVICE_ID_NET = 1
DEVICE_ID_BLOCK = 2

_QUEUE_ADDRESS_REGISTERS = {
    QUEUE_DESC_LOW: ("descriptor_address", 0),
    QUEUE_DESC_HIGH: ("descriptor_address", 32),
    QUEUE_DRIVER_LOW: ("driver_address", 0),
    QUEUE_DRIVER_HIGH: ("driver_address", 32),
    QUEUE_DEVICE_LOW: ("device_address", 0),
    QUEUE_DEVICE_HIGH: ("device_address", 32),
}


def _ignore_irq(level: bool) -> None:
    pass


def _ignore_log(message: str) -> None:
    pass


class VirtioMmioDevice:
    """The transport and the common device state; subclasses add the device type."""

    device_id = 0

    def __init__(
        self,
        *,
        name: str,
        bus: Bus,
        queue_sizes: list[int],
        features: int,
        config_size: int,
        irq: Callable[[bool], None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.bus = bus
        self.memory = GuestMemory(bus)
        self.irq = irq or _ignore_irq
        self.log = log or _ignore_log
        # 6.1: "A device MUST offer VIRTIO_F_VERSION_1"; split rings with indirect descriptors
        # and event-index notification suppression are always offered
        self.device_features = features | VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC
        self.device_features |= VIRTIO_F_EVENT_IDX
        self.queues = [SplitQueue(self.memory, i, n) for i, n in enumerate(queue_sizes)]
        self.config = bytearray(config_size)
        self.lock = threading.RLock()
        self.status = 0
        self.driver_features = 0
        self.features = 0  # negotiated: valid once FEATURES_OK was accepted
        self.device_features_sel = 0
        self.driver_features_sel = 0
        self.queue_sel = 0
        self.interrupt_status = 0
        self.config_generation = 0
        self.generation = 0  # bumped by every reset: work started before it is dropped
        self._irq_level = False
        self.counters = {
            "notifications": 0,
            "interrupts": 0,
            "resets": 0,
            "errors": 0,
            "bad_accesses": 0,
            "refused_features": 0,
        }
        self.last_error = ""

    # ---- state other code asks about ----------------------------------------------------
    @property
    def live(self) -> bool:
        """May the device use its queues?  2.1.2: not before DRIVER_OK (and FEATURES_OK),
        nor after DEVICE_NEEDS_RESET or FAILED."""
        return self.status & (STATUS_DRIVER_OK | STATUS_FEATURES_OK) == (
            STATUS_DRIVER_OK | STATUS_FEATURES_OK
        ) and not self.status & (STATUS_DEVICE_NEEDS_RESET | STATUS_FAILED)

    def usable(self, queue: SplitQueue) -> bool:
        return queue.ready and self.live

    def busy(self) -> bool:
        """Has the device work it will finish by itself (and then maybe interrupt)?  A machine
        whose harts all wait in wfi should then wait for the device, not declare deadlock."""
        return any(queue.notifier.pending for queue in self.queues)

    def negotiated(self, feature: int) -> bool:
        return bool(self.features & feature)

    # ---- register accesses --------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        with self.lock:
            if offset >= CONFIG:
                return self.config_read(offset - CONFIG, size)
            # 4.2.2.2: control registers are accessed 32 bits wide and aligned
            if size != 4 or offset & 3:
                self.counters["bad_accesses"] += 1
                return 0
            return self._read_register(offset)

    def write(self, offset: int, size: int, value: int) -> None:
        with self.lock:
            if offset >= CONFIG:
                self.config_write(offset - CONFIG, size, value)
                return
            if size != 4 or offset & 3:
                self.counters["bad_accesses"] += 1
                return
            self._write_register(offset, value & 0xFFFF_FFFF)

    def _selected_queue(self) -> SplitQueue | None:
        if self.queue_sel < len(self.queues):
            return self.queues[self.queue_sel]
        return None

    def _read_register(self, offset: int) -> int:
        queue = self._selected_queue()
        if offset == MAGIC_VALUE:
            return MAGIC
        if offset == VERSION:
            return MMIO_VERSION
        if offset == DEVICE_ID:
            return self.device_id
        if offset == VENDOR_ID:
            return VENDOR
        if offset == DEVICE_FEATURES:
            if self.device_features_sel > 1:
                return 0
            return (self.device_features >> (32 * self.device_features_sel)) & 0xFFFF_FFFF
        if offset == QUEUE_NUM_MAX:
            # "zero (0x0) if the queue is not available"
            return queue.max_size if queue else 0
        if offset == QUEUE_READY:
            return int(queue.ready) if queue else 0
        if offset == INTERRUPT_STATUS:
            return self.interrupt_status
        if offset == STATUS:
            return self.status
        if offset in (SHM_LEN_LOW, SHM_LEN_HIGH, SHM_BASE_LOW, SHM_BASE_HIGH):
            # no shared memory regions: "a length of -1" and a base of all ones
            return 0xFFFF_FFFF
        if offset == CONFIG_GENERATION:
            return self.config_generation
        return 0  # write-only and reserved registers

    def _write_register(self, offset: int, value: int) -> None:
        queue = self._selected_queue()
        if offset == DEVICE_FEATURES_SEL:
            self.device_features_sel = value
        elif offset == DRIVER_FEATURES:
            # 3.1.1 step 5: no new feature bits once FEATURES_OK is set
            if self.status & STATUS_FEATURES_OK or self.driver_features_sel > 1:
                self.counters["bad_accesses"] += 1
                return
            shift = 32 * self.driver_features_sel
            self.driver_features &= ~(0xFFFF_FFFF << shift)
            self.driver_features |= value << shift
        elif offset == DRIVER_FEATURES_SEL:
            self.driver_features_sel = value
        elif offset == QUEUE_SEL:
            self.queue_sel = value
        elif offset == QUEUE_NUM:
            # 4.2.2.3: QueueNum and the addresses are only written while QueueReady is 0
            if queue is not None and not queue.ready:
                queue.size = value
            else:
                self.counters["bad_accesses"] += 1
        elif offset in _QUEUE_ADDRESS_REGISTERS:
            if queue is None or queue.ready:
                self.counters["bad_accesses"] += 1
                return
            attribute, shift = _QUEUE_ADDRESS_REGISTERS[offset]
            address = getattr(queue, attribute) & ~(0xFFFF_FFFF << shift)
            setattr(queue, attribute, address | (value << shift))
        elif offset == QUEUE_READY:
            if queue is None:
                self.counters["bad_accesses"] += 1
            elif value & 1 and not queue.ready:
                self._enable_queue(queue)
            elif not value & 1:
                queue.ready = False  # the worker stops touching it
        elif offset == QUEUE_NOTIFY:
            # without VIRTIO_F_NOTIFICATION_DATA the value is the queue index (4.2.3.3)
            self.counters["notifications"] += 1
            if value < len(self.queues):
                self.queues[value].notifier.notify()
            else:
                self.counters["bad_accesses"] += 1
        elif offset == INTERRUPT_ACK:
            self.interrupt_status &= ~value
            self._update_irq()
        elif offset == STATUS:
            if value == 0:
                self.reset()
            else:
                self._set_status(value & 0xFF)
        elif offset in (SHM_SEL, QUEUE_RESET):
            pass  # no shared memory; VIRTIO_F_RING_RESET is not offered
        else:
            self.counters["bad_accesses"] += 1

    def _enable_queue(self, queue: SplitQueue) -> None:
        try:
            queue.enable(
                event_idx=self.negotiated(VIRTIO_F_EVENT_IDX),
                indirect=self.negotiated(VIRTIO_F_INDIRECT_DESC),
            )
        except RingError as error:
            self.fail(f"queue {queue.index}: {error}")
            return
        if self.live:
            queue.notifier.notify()

    # ---- the status state machine (2.1, 3.1.1) -----------------------------------------
    def _set_status(self, value: int) -> None:
        old = self.status
        if value & STATUS_FEATURES_OK and not old & STATUS_FEATURES_OK:
            refusal = self._check_features(self.driver_features)
            if refusal:
                # 2.2.2: "otherwise it MUST fail to set the FEATURES_OK device status bit"
                self.counters["refused_features"] += 1
                self.log(f"{self.name}: FEATURES_OK refused: {refusal}")
                value &= ~STATUS_FEATURES_OK
            else:
                self.features = self.driver_features
                self.features_accepted()
        # DEVICE_NEEDS_RESET is the device's bit: the driver cannot clear it except by reset
        self.status = value | (old & STATUS_DEVICE_NEEDS_RESET)
        if not old & STATUS_DRIVER_OK and self.live:
            self.driver_ok()
            for queue in self.queues:
                queue.notifier.notify()
        self.status_changed()

    def _check_features(self, features: int) -> str:
        unknown = features & ~self.device_features
        if unknown:
            return f"driver accepted features {unknown:#x} the device did not offer"
        # 6.1: "A device MAY fail to operate further if VIRTIO_F_VERSION_1 is not accepted"
        if not features & VIRTIO_F_VERSION_1:
            return "VIRTIO_F_VERSION_1 not accepted (legacy drivers are not supported)"
        return ""

    def reset(self) -> None:
        """Status 0 (2.1, 4.2.2.1): clear InterruptStatus and every QueueReady, forget the
        features, and drop work in flight (``generation``)."""
        with self.lock:
            self.generation += 1
            self.quiesce()
            self.status = 0
            self.driver_features = 0
            self.features = 0
            self.device_features_sel = 0
            self.driver_features_sel = 0
            self.queue_sel = 0
            self.interrupt_status = 0
            self._update_irq()
            for queue in self.queues:
                queue.reset()
            self.counters["resets"] += 1
            self.device_reset()

    def fail(self, message: str) -> None:
        """The driver broke the protocol: DEVICE_NEEDS_RESET (2.1.2).  "If DRIVER_OK is set,
        after it sets DEVICE_NEEDS_RESET, the device MUST send a device configuration change
        notification to the driver."""
        with self.lock:
            self.counters["errors"] += 1
            self.last_error = message
            self.log(f"{self.name}: {message}; device needs reset")
            if self.status & STATUS_DEVICE_NEEDS_RESET:
                return
            self.status |= STATUS_DEVICE_NEEDS_RESET
            if self.status & STATUS_DRIVER_OK:
                self.interrupt_status |= INTERRUPT_CONFIG_CHANGE
                self._update_irq()
            self.status_changed()

    # ---- notifications to the driver ----------------------------------------------------
    def used_buffer_notification(self) -> None:
        with self.lock:
            self.interrupt_status |= INTERRUPT_USED_BUFFER
            self.counters["interrupts"] += 1
            self._update_irq()

    def config_changed(self) -> None:
        """The device changed its configuration space: new ConfigGeneration, and a
        configuration change notification once the driver is running."""
        with self.lock:
            self.config_generation = (self.config_generation + 1) & 0xFFFF_FFFF
            if self.status & STATUS_DRIVER_OK:
                self.interrupt_status |= INTERRUPT_CONFIG_CHANGE
                self._update_irq()

    def _update_irq(self) -> None:
        level = self.interrupt_status != 0
        if level != self._irq_level:
            self._irq_level = level
            self.irq(level)

    # ---- device-specific hooks ----------------------------------------------------------
    def config_read(self, offset: int, size: int) -> int:
        """Device configuration space (4.2.2: byte-addressed from 0x100); beyond it reads 0."""
        if size not in (1, 2, 4, 8):
            self.counters["bad_accesses"] += 1
            return 0
        data = bytes(self.config[offset : offset + size])
        return int.from_bytes(data.ljust(size, b"\0"), "little")

    def config_write(self, offset: int, size: int, value: int) -> None:
        self.counters["bad_accesses"] += 1  # read-only unless the device says otherwise

    def features_accepted(self) -> None:
        """FEATURES_OK was accepted; ``self.features`` holds the negotiated set."""

    def driver_ok(self) -> None:
        """DRIVER_OK was set: the device is live."""

    def status_changed(self) -> None:
        """The driver wrote the status, or the device set DEVICE_NEEDS_RESET (``live`` may
        have changed); a reset calls ``device_reset`` instead."""

    def quiesce(self) -> None:
        """Reset is under way: wait for host work that writes guest memory to finish."""

    def device_reset(self) -> None:
        """Reset the device-specific state."""

    # ---- virtual I/O timing (MachineConfig.io_timing == "virtual") ------------------------
    # The run loop serves such a device itself at instruction boundaries: no worker task, so
    # nothing depends on when the host or trio's scheduler gets to it.
    virtual_timing = False

    def virtual_due(self) -> int | None:
        """The virtual time (ns) of the next completion due, if any."""
        return None

    def virtual_kick(self, now_ns: int) -> None:
        """After an access to the device's registers at ``now_ns``: take what was notified."""

    def virtual_complete(self, now_ns: int) -> None:
        """Complete what is due by ``now_ns``."""

    # ---- running ------------------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the device's queue workers until cancelled."""
        for queue in self.queues:
            queue.notifier.bind()
        async with trio.open_nursery() as nursery:
            self.start_workers(nursery)
            task_status.started()

    def start_workers(self, nursery: trio.Nursery) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the device holds on the host (an image file, a socket)."""

    # ---- VM files (rvh/snapshot.py) -----------------------------------------------------
    def save_state(self) -> dict[str, object]:
        """The transport, the queues and the device's own part (``save_device_state``).  The
        machine saves only when no request is in flight (``busy``), so none is lost."""
        with self.lock:
            return {
                "device_id": self.device_id,
                "status": self.status,
                "features": [self.device_features, self.driver_features, self.features],
                "selectors": [self.device_features_sel, self.driver_features_sel, self.queue_sel],
                "interrupt_status": self.interrupt_status,
                "irq_level": self._irq_level,
                "config": self.config.hex(),
                "config_generation": self.config_generation,
                "counters": self.counters,
                "last_error": self.last_error,
                "queues": [queue.save_state() for queue in self.queues],
                "device": self.save_device_state(),
            }

    def restore_state(self, saved: dict) -> None:
        """Raises ValueError (or RingError) when ``saved`` does not fit this device."""
        if int(saved["device_id"]) != self.device_id:
            raise ValueError(f"{self.name}: saved as device {saved['device_id']}")
        device_features, driver_features, features = (int(v) for v in saved["features"])
        if device_features != self.device_features:
            raise ValueError(f"{self.name}: offers other features than when it was saved")
        config = bytes.fromhex(saved["config"])
        if len(config) != len(self.config) or len(saved["queues"]) != len(self.queues):
            raise ValueError(f"{self.name}: configuration does not match")
        with self.lock:
            self.status = int(saved["status"]) & 0xFF
            self.driver_features, self.features = driver_features, features
            self.device_features_sel, self.driver_features_sel, self.queue_sel = (
                int(v) for v in saved["selectors"]
            )
            self.interrupt_status = int(saved["interrupt_status"]) & 0xFFFF_FFFF
            self._irq_level = bool(saved["irq_level"])
            self.config[:] = config
            self.config_generation = int(saved["config_generation"])
            for key in self.counters:
                self.counters[key] = int(saved["counters"][key])
            self.last_error = str(saved["last_error"])
            for queue, queue_state in zip(self.queues, saved["queues"], strict=True):
                queue.restore_state(queue_state)
            self.restore_device_state(saved["device"])

    def save_device_state(self) -> dict[str, object]:
        return {}

    def restore_device_state(self, saved: dict) -> None:
        pass

    def statistics(self) -> dict[str, object]:
        with self.lock:
            return {
                **self.counters,
                "status": self.status,
                "features": self.features,
                "queues": [queue.statistics() for queue in self.queues],
                "last_error": self.last_error,
            }


class VirtioMmioEmpty:
    """A slot with no device: magic and version, DeviceID 0, nothing else (4.2.2: "Value zero
    (0x0) is used to define a system memory map with placeholder devices")."""

    def __init__(self, name: str) -> None:
        self.name = name

    def read(self, offset: int, size: int) -> int:
        if size != 4:
            return 0
        if offset == MAGIC_VALUE:
            return MAGIC
        if offset == VERSION:
            return MMIO_VERSION
        if offset == VENDOR_ID:
            return VENDOR
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        pass

    def statistics(self) -> dict[str, int]:
        return {}

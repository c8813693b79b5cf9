"""The platform I/O extension's devices: split-driver block and network I/O through rings in
guest memory (SBI extension ``RVH_PVIO``; docs/virtio.md, "Paravirtual I/O").

A guest's pv driver shares one 4 KiB ring page per queue with the platform
(:class:`rvh.isa.sbi.RvhPvioRing`): a header with a producer/consumer index pair and 64
request slots.  It fills slots, moves ``req_prod`` and makes one SBI call (NOTIFY) per batch.
The call only wakes the device's trio task; the hart goes on at once.  The task takes the
requests, checks every one against guest RAM and the device, performs the host I/O (block I/O
in ``trio.to_thread.run_sync``, as virtio-blk does), writes each response into its slot,
moves ``rsp_prod`` and raises the device's PLIC source.

The interrupt is an edge on the PLIC source (``PVIO_IRQ_BASE`` + device): a pulse latches the
source's pending bit, as a message-signalled interrupt would, so the driver needs no
acknowledgement call: it claims and completes the source at the PLIC and then reads the ring
(responses posted after its read come with a new edge).  Under a hypervisor the same source
of a VM's PLIC becomes its virtual external interrupt.

Everything in the ring is untrusted.  A buffer that is not wholly RAM completes with
BAD_ADDRESS; an unknown op, an impossible length or range with its own status; a ring whose
``req_prod`` runs more than a ring ahead of ``rsp_prod`` (or behind what was taken) is broken:
the platform writes ERROR into its header, logs one line and ignores it until it is attached
again.  No guest input raises out of a call or a task.
"""

from __future__ import annotations

import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import trio

from rvh.bus import Bus
from rvh.devices.virtio.blk import (
    SECTOR_SIZE,
    VIRTUAL_LATENCY_NS,
    VIRTUAL_NS_PER_BYTE,
    BlockImage,
)
from rvh.devices.virtio.netdev import (
    ABSENT,
    ACCEPTING,
    FULL,
    MAX_FRAME,
    MIN_FRAME,
    NetBackend,
)
from rvh.devices.virtio.notifier import Notifier
from rvh.devices.virtio.options import DriveOptions
from rvh.devices.virtio.queue import GuestMemory, RingError
from rvh.isa.sbi import (
    RVH_PVIO_BLK_MAX_LENGTH,
    RVH_PVIO_INFO_SIZE,
    RVH_PVIO_NET_MAX_LENGTH,
    RVH_PVIO_RING_BYTES,
    RVH_PVIO_RING_SLOTS,
    RVH_PVIO_SLOT_SIZE,
    Error,
    RvhPvioFunction,
    RvhPvioInfo,
    RvhPvioOp,
    RvhPvioRing,
    RvhPvioRingError,
    RvhPvioSlot,
    RvhPvioStatus,
    RvhPvioType,
)

MASK32 = 0xFFFF_FFFF
RING_ALIGN = 4096
RECEIVE_BACKLOG = 256  # frames kept while the driver offers no receive buffer
TRANSMIT_QUEUE = 0
RECEIVE_QUEUE = 1
PENDING = int(RvhPvioStatus.PENDING)
_SLOT = struct.Struct("<QQQIBB")  # id, sector, address, length, op, status


@dataclass(slots=True)
class Ring:
    """An attached ring: where it is and how far the platform has got."""

    address: int
    host: int  # offset of the page in the device's memory buffer
    req_cons: int  # requests taken (free-running, 32 bits)
    rsp_prod: int  # responses posted
    generation: int  # changes at every attach and detach: stale completions are dropped
    broken: bool = False

    def slot(self, index: int) -> int:
        position = (index % RVH_PVIO_RING_SLOTS) * RVH_PVIO_SLOT_SIZE
        return self.host + RvhPvioRing.FIRST_SLOT + position


@dataclass(slots=True)
class Request:
    index: int  # its number on the ring
    op: int
    sector: int
    host: int  # buffer offset in guest memory (when status is PENDING)
    length: int
    status: int = PENDING
    written: int = 0  # the response's length: bytes the platform wrote or took
    error: str = ""


def _request_record(request: Request) -> list[object]:
    return [
        request.index,
        request.op,
        request.sector,
        request.host,
        request.length,
        request.status,
        request.written,
        request.error,
    ]


def _request(record: list) -> Request:
    index, op, sector, host, length, status, written, error = record
    return Request(
        int(index) & MASK32,
        int(op),
        int(sector),
        int(host),
        int(length),
        int(status),
        int(written),
        str(error),
    )


class PvioDevice:
    """What the block and network devices share: rings, notifications, the interrupt."""

    kind: RvhPvioType
    queue_count = 1
    max_length = 0

    def __init__(
        self,
        *,
        bus: Bus,
        index: int,
        name: str,
        irq: int,
        raise_irq: Callable[[], None],
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.memory = GuestMemory(bus)
        self.index = index
        self.name = name
        self.irq = irq
        self._raise_irq = raise_irq
        self._log = log or (lambda message: None)
        self.lock = threading.Lock()
        self.rings: list[Ring | None] = [None] * self.queue_count
        self.notifiers = [Notifier() for _ in range(self.queue_count)]
        self._generation = 0
        self.stats = {"notifies": 0, "requests": 0, "errors": 0, "interrupts": 0, "ring_errors": 0}

    # ---- SBI calls (the hart's thread) ---------------------------------------------------
    def info(self) -> bytes:
        record = bytearray(RVH_PVIO_INFO_SIZE)
        struct.pack_into("<II", record, RvhPvioInfo.TYPE, self.kind, self.irq)
        struct.pack_into("<I", record, RvhPvioInfo.QUEUES, self.queue_count)
        struct.pack_into("<I", record, RvhPvioInfo.MAX_LENGTH, self.max_length)
        self.fill_info(record)
        return bytes(record)

    def fill_info(self, record: bytearray) -> None:
        pass

    def set_ring(self, queue: int, address: int) -> int:
        if not 0 <= queue < self.queue_count:
            return Error.ERR_INVALID_PARAM
        host = 0
        if address:
            if address % RING_ALIGN:
                return Error.ERR_INVALID_ADDRESS
            try:
                host = self.memory.host(address, RING_ALIGN, write=True)
            except RingError:
                return Error.ERR_INVALID_ADDRESS
        # the old ring goes first: requests taken from it are dropped, and host I/O already
        # running for them ends before the call returns (nothing lands in memory after it)
        with self.lock:
            self._generation += 1
            self.rings[queue] = None
            self.detached(queue)
        self.quiesce()
        if not address:
            return Error.SUCCESS
        with self.lock:
            self._generation += 1
            buffer = self.memory.buffer
            (rsp_prod,) = struct.unpack_from("<I", buffer, host + RvhPvioRing.RSP_PROD)
            ring = Ring(address, host, rsp_prod, rsp_prod, self._generation)
            struct.pack_into("<I", buffer, host + RvhPvioRing.REQ_CONS, rsp_prod)
            struct.pack_into("<I", buffer, host + RvhPvioRing.ERROR, RvhPvioRingError.NONE)
            self.memory.written(host, RvhPvioRing.FIRST_SLOT)
            self.detached(queue)
            self.rings[queue] = ring
        return Error.SUCCESS

    def notify(self, queue: int) -> int:
        if not 0 <= queue < self.queue_count:
            return Error.ERR_INVALID_PARAM
        self.stats["notifies"] += 1
        self.notifiers[queue].notify()
        return Error.SUCCESS

    def detached(self, queue: int) -> None:
        """The queue's ring went away or was replaced (lock held): drop its state."""

    def quiesce(self) -> None:
        """Wait for host I/O in flight (so nothing lands in a ring the driver took back)."""

    # ---- the ring (trio thread, lock held) -----------------------------------------------
    def take(self, queue: int) -> list[Request]:
        """The requests posted since the last call, each checked; [] when there are none or
        the ring is missing or broken."""
        ring = self.rings[queue]
        if ring is None or ring.broken:
            return []
        buffer = self.memory.buffer
        (req_prod,) = struct.unpack_from("<I", buffer, ring.host + RvhPvioRing.REQ_PROD)
        ahead = (req_prod - ring.rsp_prod) & MASK32
        if ahead > RVH_PVIO_RING_SLOTS or (req_prod - ring.req_cons) & MASK32 > ahead:
            ring.broken = True
            struct.pack_into("<I", buffer, ring.host + RvhPvioRing.ERROR, RvhPvioRingError.INDEX)
            self.memory.written(ring.host, RvhPvioRing.FIRST_SLOT)
            self.stats["ring_errors"] += 1
            self._log(
                f"{self.name}: queue {queue}: req_prod {req_prod} is not within a ring of "
                f"rsp_prod {ring.rsp_prod} (taken {ring.req_cons}); ring ignored until attached "
                "again"
            )
            return []
        requests = []
        while ring.req_cons != req_prod:
            index = ring.req_cons
            _, sector, address, length, op, _ = _SLOT.unpack_from(buffer, ring.slot(index))
            request = Request(index, op, sector, 0, length)
            self.check(queue, request, address)
            requests.append(request)
            ring.req_cons = (index + 1) & MASK32
        struct.pack_into("<I", buffer, ring.host + RvhPvioRing.REQ_CONS, ring.req_cons)
        self.stats["requests"] += len(requests)
        return requests

    def check(self, queue: int, request: Request, address: int) -> None:
        raise NotImplementedError

    def check_buffer(self, request: Request, address: int, *, write: bool) -> bool:
        try:
            request.host = self.memory.host(address, request.length, write=write)
        except RingError as error:
            request.status = RvhPvioStatus.BAD_ADDRESS
            request.error = str(error)
            return False
        return True

    def respond(self, ring: Ring, requests: list[Request]) -> None:
        """Post responses in order (lock held): each slot's status and length, then
        rsp_prod, then the interrupt."""
        if not requests:
            return
        buffer = self.memory.buffer
        for request in requests:
            slot = ring.slot(request.index)
            struct.pack_into("<I", buffer, slot + RvhPvioSlot.LENGTH, request.written)
            buffer[slot + RvhPvioSlot.STATUS] = request.status
            self.memory.written(slot, RVH_PVIO_SLOT_SIZE)
            if request.status != RvhPvioStatus.OK:
                self.stats["errors"] += 1
        ring.rsp_prod = (ring.rsp_prod + len(requests)) & MASK32
        struct.pack_into("<I", buffer, ring.host + RvhPvioRing.RSP_PROD, ring.rsp_prod)
        self.memory.written(ring.host, 8)
        self.stats["interrupts"] += 1
        self._raise_irq()

    # ---- the machine's side ----------------------------------------------------------------
    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        raise NotImplementedError

    def busy(self) -> bool:
        return any(notifier.pending for notifier in self.notifiers)

    def close(self) -> None:
        pass

    def statistics(self) -> dict[str, object]:
        return dict(self.stats)

    # ---- VM files (rvh/snapshot.py) -----------------------------------------------------
    def save_state(self) -> dict[str, object]:
        """The rings (where they are, how far the platform got) and the device's own part.
        The machine saves only when no host I/O is in flight (``busy``)."""
        with self.lock:
            rings = [
                None
                if ring is None
                else [ring.address, ring.req_cons, ring.rsp_prod, ring.generation, ring.broken]
                for ring in self.rings
            ]
            return {
                "kind": int(self.kind),
                "generation": self._generation,
                "rings": rings,
                "stats": dict(self.stats),
                "device": self.save_device_state(),
            }

    def restore_state(self, saved: dict) -> None:
        """Raises ValueError when ``saved`` does not fit this device."""
        if int(saved["kind"]) != self.kind or len(saved["rings"]) != self.queue_count:
            raise ValueError(f"{self.name}: saved as another kind of pv device")
        rings: list[Ring | None] = []
        for record in saved["rings"]:
            if record is None:
                rings.append(None)
                continue
            address, req_cons, rsp_prod, generation, broken = record
            if int(address) % RING_ALIGN:
                raise ValueError(f"{self.name}: a saved ring is not page aligned")
            try:
                host = self.memory.host(int(address), RING_ALIGN, write=True)
            except RingError as error:
                raise ValueError(f"{self.name}: a saved ring is not in RAM ({error})") from None
            rings.append(
                Ring(
                    int(address),
                    host,
                    int(req_cons) & MASK32,
                    int(rsp_prod) & MASK32,
                    int(generation),
                    bool(broken),
                )
            )
        with self.lock:
            self._generation = int(saved["generation"])
            self.rings = rings
            for key in self.stats:
                self.stats[key] = int(saved["stats"][key])
            self.restore_device_state(saved["device"])

    def saved_request(self, record: list) -> Request:
        """A request from a VM file; one still to be served has its buffer checked to lie in
        guest memory (a refused one may name any length)."""
        request = _request(record)
        if not (0 <= request.status <= 0xFF and 0 <= request.written <= MASK32):
            raise ValueError(f"{self.name}: a saved request's status does not fit its slot")
        pending = request.status == PENDING
        if pending and not 0 <= request.host <= len(self.memory.buffer) - request.length:
            raise ValueError(f"{self.name}: a saved request's buffer is not in memory")
        return request

    def save_device_state(self) -> dict[str, object]:
        return {}

    def restore_device_state(self, saved: dict) -> None:
        pass


class PvioBlk(PvioDevice):
    """A disk: READ, WRITE and FLUSH requests, performed in order, in batches."""

    kind = RvhPvioType.BLK
    max_length = RVH_PVIO_BLK_MAX_LENGTH

    def __init__(self, image: BlockImage, options: DriveOptions, **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        self.image = image
        self.writethrough = options.cache == "writethrough"
        self._batches = 0  # batches handed to I/O threads and not yet answered
        # held by an I/O thread for its whole batch: a detach waits on it for host I/O that
        # is running (and a batch that has not started yet sees the new generation and skips)
        self._io_lock = threading.Lock()
        self.stats.update({"read_bytes": 0, "written_bytes": 0, "flushes": 0, "syncs": 0})
        # --io-timing virtual: the run loop serves the device (virtual_kick, virtual_complete)
        # and batches complete in order, each at (due ns, generation, its requests)
        self.virtual_timing = False
        self._virtual_pending: deque[tuple[int, int, list[Request]]] = deque()

    def fill_info(self, record: bytearray) -> None:
        struct.pack_into("<Q", record, RvhPvioInfo.CAPACITY, self.image.sectors)
        record[RvhPvioInfo.READONLY] = 1 if self.image.readonly else 0

    def check(self, queue: int, request: Request, address: int) -> None:
        op = request.op
        if op == RvhPvioOp.FLUSH:
            return
        if op not in (RvhPvioOp.READ, RvhPvioOp.WRITE):
            request.status = RvhPvioStatus.UNSUPPORTED
            return
        length = request.length
        if (
            length == 0
            or length % SECTOR_SIZE
            or length > RVH_PVIO_BLK_MAX_LENGTH
            or request.sector > self.image.sectors
            or request.sector + length // SECTOR_SIZE > self.image.sectors
        ):
            request.status = RvhPvioStatus.BAD_LENGTH
            return
        if op == RvhPvioOp.WRITE and self.image.readonly:
            request.status = RvhPvioStatus.READ_ONLY
            return
        self.check_buffer(request, address, write=op == RvhPvioOp.READ)

    def busy(self) -> bool:
        # host I/O in flight ends in an interrupt too: the machine must wait for it rather
        # than jump virtual time to the next timer
        return self._batches > 0 or super().busy()

    def quiesce(self) -> None:
        # never waits for trio: the thread holding the lock needs nothing from the run
        with self._io_lock:
            pass

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        if self.virtual_timing:
            task_status.started()  # the run loop serves the ring: no task
            return
        notifier = self.notifiers[0]
        notifier.bind()
        task_status.started()
        while True:
            await notifier.wait()
            while True:
                with self.lock:
                    ring = self.rings[0]
                    requests = self.take(0)
                    generation = ring.generation if ring is not None else -1
                    if not requests:
                        break
                    self._batches += 1
                try:
                    await trio.to_thread.run_sync(self._execute, requests, generation)
                finally:
                    self._batches -= 1
                with self.lock:
                    ring = self.rings[0]
                    if ring is not None and ring.generation == generation:
                        self.respond(ring, requests)

    # ---- virtual I/O timing: the host I/O at the NOTIFY, the response at a fixed delay ----
    def virtual_kick(self, now_ns: int) -> None:
        """After an SBI call at ``now_ns`` (the hart stopped at an instruction boundary): take
        what a NOTIFY announced and move its data now, so what a write takes from RAM and
        where a read lands never depend on the host's timing; only the responses wait."""
        if not self.notifiers[0].take():
            return
        with self.lock:
            ring = self.rings[0]
            requests = self.take(0)
            if ring is None or not requests:
                return
            generation = ring.generation
        self._execute(requests, generation)
        moved = sum(r.written for r in requests if r.op in (RvhPvioOp.READ, RvhPvioOp.WRITE))
        due = now_ns + VIRTUAL_LATENCY_NS + moved * VIRTUAL_NS_PER_BYTE
        # responses are posted in ring order: a batch never completes before an earlier one
        if self._virtual_pending:
            due = max(due, self._virtual_pending[-1][0])
        self._virtual_pending.append((due, generation, requests))

    def virtual_due(self) -> int | None:
        return self._virtual_pending[0][0] if self._virtual_pending else None

    def virtual_complete(self, now_ns: int) -> None:
        pending = self._virtual_pending
        while pending and pending[0][0] <= now_ns:
            _, generation, requests = pending.popleft()
            with self.lock:
                ring = self.rings[0]
                if ring is not None and ring.generation == generation:
                    self.respond(ring, requests)

    def save_device_state(self) -> dict[str, object]:
        # virtual timing: batches whose data moved and whose responses are still due
        return {
            "virtual_pending": [
                [due, generation, [_request_record(r) for r in requests]]
                for due, generation, requests in self._virtual_pending
            ]
        }

    def restore_device_state(self, saved: dict) -> None:
        pending = [
            (int(due), int(generation), [self.saved_request(r) for r in requests])
            for due, generation, requests in saved["virtual_pending"]
        ]
        if pending and not self.virtual_timing:
            raise ValueError(f"{self.name}: responses due in virtual time, but host timing")
        self._virtual_pending = deque(pending)

    def _execute(self, requests: list[Request], generation: int) -> None:
        """Host I/O for a batch, in order (a worker thread: touches only the requests, the
        image and the buffers the requests name), unless its ring went away meanwhile."""
        with self._io_lock:
            if generation != self._generation:
                return
            buffer = self.memory.buffer
            unsynced: list[Request] = []
            for request in requests:
                if request.status != PENDING:
                    continue
                offset = request.sector * SECTOR_SIZE
                view = buffer[request.host : request.host + request.length]
                try:
                    if request.op == RvhPvioOp.READ:
                        self.image.read_into([view], offset)
                        self.memory.written(request.host, request.length)
                        request.written = request.length
                        self.stats["read_bytes"] += request.length
                    elif request.op == RvhPvioOp.WRITE:
                        self.image.write_from([view], offset)
                        request.written = request.length
                        self.stats["written_bytes"] += request.length
                        unsynced.append(request)
                    else:  # FLUSH: the writes before it are durable once it completes
                        self.stats["flushes"] += 1
                        if not self.image.readonly:
                            self._sync()
                        unsynced.clear()
                    request.status = RvhPvioStatus.OK
                except OSError as error:
                    request.status = RvhPvioStatus.IO_ERROR
                    request.written = 0
                    request.error = error.strerror or str(error)
            if unsynced and self.writethrough:
                try:
                    self._sync()
                except OSError as error:
                    for request in unsynced:
                        request.status = RvhPvioStatus.IO_ERROR
                        request.error = error.strerror or str(error)
            for request in requests:
                if request.status == RvhPvioStatus.IO_ERROR:
                    self._log(f"{self.name}: sector {request.sector}: {request.error}")

    def _sync(self) -> None:
        self.image.sync()
        self.stats["syncs"] += 1

    def close(self) -> None:
        self.image.close()


class PvioNet(PvioDevice):
    """A NIC: queue 0 takes TRANSMIT requests (one frame each), queue 1 RECEIVE buffers,
    which arriving frames fill in order."""

    kind = RvhPvioType.NET
    queue_count = 2
    max_length = RVH_PVIO_NET_MAX_LENGTH

    def __init__(self, backend: NetBackend, mac: bytes, **common: object) -> None:
        super().__init__(**common)  # type: ignore[arg-type]
        self.backend = backend
        self.mac = bytes(mac)
        self.backlog: deque[bytes] = deque()
        self.buffers: deque[Request] = deque()  # receive requests taken, not yet answered
        self.stats.update(
            {
                "tx_frames": 0,
                "tx_bytes": 0,
                "rx_frames": 0,
                "rx_bytes": 0,
                "rx_dropped_not_ready": 0,
                "rx_dropped_overrun": 0,
                "rx_dropped_small_buffer": 0,
            }
        )
        self._sending = 0  # frames answered on the ring and not yet handed to the link
        backend.attach(self.receive, self.link_state)

    def fill_info(self, record: bytearray) -> None:
        record[RvhPvioInfo.MAC : RvhPvioInfo.MAC + 6] = self.mac

    def check(self, queue: int, request: Request, address: int) -> None:
        wanted = RvhPvioOp.TRANSMIT if queue == TRANSMIT_QUEUE else RvhPvioOp.RECEIVE
        if request.op != wanted:
            request.status = RvhPvioStatus.UNSUPPORTED
        elif queue == TRANSMIT_QUEUE and not MIN_FRAME <= request.length <= MAX_FRAME:
            request.status = RvhPvioStatus.BAD_LENGTH
        elif queue == RECEIVE_QUEUE and not 0 < request.length <= RVH_PVIO_NET_MAX_LENGTH:
            request.status = RvhPvioStatus.BAD_LENGTH
        else:
            self.check_buffer(request, address, write=queue == RECEIVE_QUEUE)

    def detached(self, queue: int) -> None:
        if queue == RECEIVE_QUEUE:
            self.buffers.clear()
            self.backlog.clear()
        self.backend.room_available()

    def _receiving(self) -> bool:
        ring = self.rings[RECEIVE_QUEUE]
        return ring is not None and not ring.broken

    def link_state(self) -> int:
        # a broken ring takes no frames: it must not hold a hub's senders back
        if not self._receiving():
            return ABSENT
        return FULL if len(self.backlog) >= RECEIVE_BACKLOG else ACCEPTING

    def receive(self, frame: bytes) -> None:
        """A frame from the link (the backend calls it; never blocks, never raises)."""
        if not MIN_FRAME <= len(frame) <= MAX_FRAME or not self._receiving():
            self.stats["rx_dropped_not_ready"] += 1
            return
        if len(self.backlog) >= RECEIVE_BACKLOG:
            self.stats["rx_dropped_overrun"] += 1
            return
        self.backlog.append(frame)
        self.notifiers[RECEIVE_QUEUE].notify()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for notifier in self.notifiers:
            notifier.bind()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.backend.serve)
            nursery.start_soon(self._transmit_worker)
            nursery.start_soon(self._receive_worker)
            task_status.started()

    async def _transmit_worker(self) -> None:
        notifier = self.notifiers[TRANSMIT_QUEUE]
        while True:
            await notifier.wait()
            while True:
                frames = []
                with self.lock:
                    ring = self.rings[TRANSMIT_QUEUE]
                    requests = self.take(TRANSMIT_QUEUE)
                    if ring is None or not requests:
                        break
                    buffer = self.memory.buffer
                    for request in requests:
                        if request.status == PENDING:
                            start = request.host
                            frames.append(bytes(buffer[start : start + request.length]))
                            request.status = RvhPvioStatus.OK
                            request.written = request.length
                            self.stats["tx_frames"] += 1
                            self.stats["tx_bytes"] += request.length
                    self.respond(ring, requests)
                backend = self.backend
                self._sending = len(frames)
                try:
                    for frame in frames:
                        if not backend.ready():
                            await backend.wait_ready()  # a hub holds us back: no frame lost
                        backend.send(frame)
                        self._sending -= 1
                finally:
                    self._sending = 0
                await trio.lowlevel.checkpoint()

    async def _receive_worker(self) -> None:
        notifier = self.notifiers[RECEIVE_QUEUE]
        while True:
            await notifier.wait()
            with self.lock:
                self._fill()

    def _fill(self) -> None:
        """Take new receive buffers and fill them with waiting frames, in order (lock held)."""
        ring = self.rings[RECEIVE_QUEUE]
        if ring is None:
            return
        self.buffers.extend(self.take(RECEIVE_QUEUE))
        buffer = self.memory.buffer
        answered: list[Request] = []
        waiting = len(self.backlog)
        while self.buffers:
            request = self.buffers[0]
            if request.status == PENDING:
                if not self.backlog:
                    break
                frame = self.backlog.popleft()
                if len(frame) > request.length:
                    request.status = RvhPvioStatus.BAD_LENGTH
                    self.stats["rx_dropped_small_buffer"] += 1
                else:
                    buffer[request.host : request.host + len(frame)] = frame
                    self.memory.written(request.host, len(frame))
                    request.status = RvhPvioStatus.OK
                    request.written = len(frame)
                    self.stats["rx_frames"] += 1
                    self.stats["rx_bytes"] += len(frame)
            answered.append(self.buffers.popleft())
        self.respond(ring, answered)
        if len(self.backlog) < waiting:
            self.backend.room_available()

    def busy(self) -> bool:
        # frames the guest was told are sent must reach the link before a save
        return self._sending > 0 or super().busy()

    def save_device_state(self) -> dict[str, object]:
        # receive buffers the driver offered and no frame filled yet, and the frames that
        # arrived before it offered any
        return {
            "buffers": [_request_record(request) for request in self.buffers],
            "backlog": [frame.hex() for frame in self.backlog],
        }

    def restore_device_state(self, saved: dict) -> None:
        backlog = [bytes.fromhex(frame) for frame in saved["backlog"]]
        if len(backlog) > RECEIVE_BACKLOG or any(
            not MIN_FRAME <= len(frame) <= MAX_FRAME for frame in backlog
        ):
            raise ValueError(f"{self.name}: receive backlog does not fit")
        self.buffers = deque(self.saved_request(record) for record in saved["buffers"])
        self.backlog = deque(backlog)

    def close(self) -> None:
        self.backend.close()

    def statistics(self) -> dict[str, object]:
        return {
            **self.stats,
            "backlog": len(self.backlog),
            "backend": self.backend.statistics(),
        }


class PvioHost:
    """The extension's calls, for the built-in SBI: device records, ring attachment, and
    NOTIFY, which only wakes a device task (``kicked`` tells the run loop to yield soon)."""

    def __init__(self, devices: list[PvioDevice], bus: Bus) -> None:
        self.devices = devices
        self.memory = GuestMemory(bus)
        self.kicked = False

    def call(self, function: int, args: list[int]) -> tuple[int, int]:
        count = len(self.devices)
        if function not in tuple(RvhPvioFunction):
            return Error.ERR_NOT_SUPPORTED, 0
        index = args[0]
        if index >= count:
            return Error.ERR_INVALID_PARAM, 0
        device = self.devices[index]
        if function == RvhPvioFunction.DEVICE_INFO:
            try:
                self.memory.write(args[1], device.info())
            except RingError:
                return Error.ERR_INVALID_ADDRESS, 0
            return Error.SUCCESS, count
        if function == RvhPvioFunction.SET_RING:
            return device.set_ring(args[1], args[2]), 0
        error = device.notify(args[1])
        self.kicked = self.kicked or error == Error.SUCCESS
        return error, 0


assert RVH_PVIO_RING_BYTES <= RING_ALIGN

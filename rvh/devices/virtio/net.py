"""virtio network device (virtio 1.2 section 5.1): one receive and one transmit queue.

Features offered: VIRTIO_NET_F_MAC (the address in configuration space), VIRTIO_NET_F_STATUS
(link up), VIRTIO_NET_F_MTU (1500); no checksum or segmentation offloads and no mergeable
receive buffers, so every frame is a plain Ethernet frame of 14 to 1514 bytes behind the 12-byte
``struct virtio_net_hdr`` of VIRTIO_F_VERSION_1 (5.1.6), and each received frame fills exactly
one receive chain.

Transmit (5.1.6.2): the worker pops chains, copies each frame out of guest memory, returns the
chain (used length 0), and after the batch hands the frames to the backend, waiting before each
while the backend holds it back (a hub whose receivers are all out of room).  A frame that is
shorter than an Ethernet header, longer than 1514 bytes, or asks for an offload that was not
negotiated is dropped and counted, never passed on.

Receive (5.1.6.3): frames from the backend wait in a bounded backlog (``receive``); the worker
copies each into the next receive chain behind a header whose only non-zero field is
``num_buffers = 1`` (5.1.6.3.1: "If VIRTIO_NET_F_MRG_RXBUF has not been negotiated, the device
MUST set num_buffers to 1").  With no receive buffers available the backlog waits (and the
device asks the driver for a notification); on a hub the senders wait for room (``link_state``),
so frames beyond the backlog come only from backends that cannot wait (UDP).  Those, frames
arriving while the driver is not running, and frames too large for the chain offered are
dropped and counted.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable

import trio

from rvh.bus import Bus
from rvh.devices.virtio.mmio import DEVICE_ID_NET, VirtioMmioDevice
from rvh.devices.virtio.netdev import ABSENT, ACCEPTING, FULL, MAX_FRAME, MIN_FRAME, NetBackend
from rvh.devices.virtio.queue import Chain, RingError, SplitQueue

RECEIVE_QUEUE = 0  # 5.1.2: receiveq1, transmitq1
TRANSMIT_QUEUE = 1
QUEUE_SIZE = 256
BACKLOG = 256  # frames waiting for receive buffers
TRANSMIT_BATCH = 64  # frames sent before other tasks get a turn

# 5.1.3 feature bits
VIRTIO_NET_F_CSUM = 1 << 0
VIRTIO_NET_F_GUEST_CSUM = 1 << 1
VIRTIO_NET_F_MTU = 1 << 3
VIRTIO_NET_F_MAC = 1 << 5
VIRTIO_NET_F_MRG_RXBUF = 1 << 15
VIRTIO_NET_F_STATUS = 1 << 16

# 5.1.4 struct virtio_net_config
CONFIG_MAC = 0  # u8[6]
CONFIG_STATUS = 6  # le16
CONFIG_MAX_VIRTQUEUE_PAIRS = 8  # le16
CONFIG_MTU = 10  # le16
CONFIG_SIZE = 12
VIRTIO_NET_S_LINK_UP = 1
MTU = MAX_FRAME - MIN_FRAME

# 5.1.6 struct virtio_net_hdr: flags u8, gso_type u8, hdr_len, gso_size, csum_start,
# csum_offset, num_buffers (le16 each)
NET_HEADER_SIZE = 12
VIRTIO_NET_HDR_F_NEEDS_CSUM = 1
VIRTIO_NET_HDR_GSO_NONE = 0
RECEIVE_HEADER = struct.pack("<BBHHHHH", 0, VIRTIO_NET_HDR_GSO_NONE, 0, 0, 0, 0, 1)

DEFAULT_MAC = bytes.fromhex("525400123456")  # QEMU's first NIC


def default_mac(index: int) -> bytes:
    """52:54:00:12:34:56 for the first NIC, ...:57 for the second, as QEMU numbers them."""
    return DEFAULT_MAC[:5] + bytes(((DEFAULT_MAC[5] + index) & 0xFF,))


def format_mac(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


class VirtioNet(VirtioMmioDevice):
    """virtio-net on a backend: ``VirtioNet(hub.port(), bus=bus, mac=default_mac(0))``."""

    device_id = DEVICE_ID_NET

    def __init__(
        self,
        backend: NetBackend,
        *,
        bus: Bus,
        mac: bytes = DEFAULT_MAC,
        name: str = "virtio-net",
        irq: Callable[[bool], None] | None = None,
        log: Callable[[str], None] | None = None,
        queue_size: int = QUEUE_SIZE,
        backlog: int = BACKLOG,
    ) -> None:
        if len(mac) != 6:
            raise ValueError("a MAC address has 6 bytes")
        super().__init__(
            name=name,
            bus=bus,
            queue_sizes=[queue_size, queue_size],
            features=VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MTU,
            config_size=CONFIG_SIZE,
            irq=irq,
            log=log,
        )
        self.mac = bytes(mac)
        self.backend = backend
        self.backlog: deque[bytes] = deque()
        self.backlog_limit = backlog
        self.link_up = True
        self.stats = {
            "tx_frames": 0,
            "tx_bytes": 0,
            "tx_dropped_malformed": 0,  # outside 14..1514 bytes
            "tx_dropped_offload": 0,  # asks for checksum/segmentation offload
            "rx_frames": 0,
            "rx_bytes": 0,
            "rx_dropped_malformed": 0,
            "rx_dropped_not_ready": 0,  # the driver is not running, or the link is down
            "rx_dropped_overrun": 0,  # the backlog was full
            "rx_dropped_small_buffer": 0,
        }
        self.device_reset()
        backend.attach(self.receive, self.link_state)

    def device_reset(self) -> None:
        self.config[CONFIG_MAC : CONFIG_MAC + 6] = self.mac
        status = VIRTIO_NET_S_LINK_UP if self.link_up else 0
        struct.pack_into("<HHH", self.config, CONFIG_STATUS, status, 1, MTU)
        self.backlog.clear()
        self.backend.room_available()

    def status_changed(self) -> None:
        self.backend.room_available()  # a sender held back for us may now go on (or drop)

    def save_device_state(self) -> dict[str, object]:
        """The link, the counters and the frames received but not yet in the guest's
        buffers (the MAC is the configuration space's, saved by the transport)."""
        return {
            "link_up": self.link_up,
            "stats": self.stats,
            "backlog": [frame.hex() for frame in self.backlog],
        }

    def restore_device_state(self, saved: dict) -> None:
        self.link_up = bool(saved["link_up"])
        for key in self.stats:
            self.stats[key] = int(saved["stats"][key])
        self.backlog = deque(bytes.fromhex(frame) for frame in saved["backlog"])
        # a clone has its own MAC: the configuration space says it, not the saved one
        self.config[CONFIG_MAC : CONFIG_MAC + 6] = self.mac

    def link_state(self) -> int:
        """What ``receive`` would do with a frame now (for the hub's back-pressure)."""
        if not self.live or not self.link_up:
            return ABSENT
        return FULL if len(self.backlog) >= self.backlog_limit else ACCEPTING

    def set_link(self, up: bool) -> None:
        """Carrier change: the status field and a configuration change notification."""
        with self.lock:
            self.link_up = up
            struct.pack_into("<H", self.config, CONFIG_STATUS, VIRTIO_NET_S_LINK_UP if up else 0)
            self.config_changed()
        self.backend.room_available()

    # ---- frames from the link ------------------------------------------------------------
    def receive(self, frame: bytes) -> None:
        """A frame for the guest (called by the backend; never blocks, never raises)."""
        stats = self.stats
        if not MIN_FRAME <= len(frame) <= MAX_FRAME:
            stats["rx_dropped_malformed"] += 1
            return
        if not self.live or not self.link_up:
            stats["rx_dropped_not_ready"] += 1
            return
        if len(self.backlog) >= self.backlog_limit:
            stats["rx_dropped_overrun"] += 1
            return
        self.backlog.append(frame)
        self.queues[RECEIVE_QUEUE].notifier.notify()

    # ---- workers ----------------------------------------------------------------------------
    def start_workers(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._receive_worker, self.queues[RECEIVE_QUEUE])
        nursery.start_soon(self._transmit_worker, self.queues[TRANSMIT_QUEUE])

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for queue in self.queues:
            queue.notifier.bind()
        async with trio.open_nursery() as nursery:
            await nursery.start(self.backend.serve)
            self.start_workers(nursery)
            task_status.started()

    async def _receive_worker(self, queue: SplitQueue) -> None:
        while True:
            await queue.notifier.wait()
            with self.lock:
                if not self.usable(queue):
                    continue
                try:
                    self._fill_receive_buffers(queue)
                except RingError as error:
                    self.fail(f"receive queue: {error}")

    def _fill_receive_buffers(self, queue: SplitQueue) -> None:
        memory = self.memory
        buffer = memory.buffer
        backlog = self.backlog
        stats = self.stats
        waiting = len(backlog)
        while backlog:
            chain = queue.pop()
            if chain is None:
                if queue.enable_notifications():
                    continue  # buffers arrived meanwhile
                break  # wait for the driver to add buffers (it will notify)
            frame = backlog.popleft()
            needed = NET_HEADER_SIZE + len(frame)
            if chain.writable_bytes < needed:
                stats["rx_dropped_small_buffer"] += 1
                queue.put(chain.head, 0)
                continue
            host, length = chain.writable[0] if chain.writable else (0, 0)
            if length >= needed:
                buffer[host : host + NET_HEADER_SIZE] = RECEIVE_HEADER
                buffer[host + NET_HEADER_SIZE : host + needed] = frame
                memory.written(host, needed)
            else:
                self._scatter(chain, RECEIVE_HEADER + frame)
            queue.put(chain.head, needed)
            stats["rx_frames"] += 1
            stats["rx_bytes"] += len(frame)
        else:
            # nothing waits: the device needs no notification until a frame arrives
            queue.suppress_notifications()
        if queue.publish():
            self.used_buffer_notification()
        if len(backlog) < waiting:
            self.backend.room_available()

    def _scatter(self, chain: Chain, data: bytes) -> None:
        buffer = self.memory.buffer
        offset = 0
        for host, length in chain.writable:
            piece = data[offset : offset + length]
            buffer[host : host + len(piece)] = piece
            self.memory.written(host, len(piece))
            offset += len(piece)
            if offset >= len(data):
                return

    async def _transmit_worker(self, queue: SplitQueue) -> None:
        while True:
            await queue.notifier.wait()
            more = True
            while more:
                with self.lock:
                    if not self.usable(queue):
                        break
                    try:
                        frames, more = self._take_frames(queue)
                    except RingError as error:
                        self.fail(f"transmit queue: {error}")
                        break
                backend = self.backend
                for frame in frames:
                    if not backend.ready():
                        await backend.wait_ready()  # the hub holds us back: no frame lost
                    backend.send(frame)
                if more:
                    await trio.lowlevel.checkpoint()

    def _take_frames(self, queue: SplitQueue) -> tuple[list[bytes], bool]:
        """Up to TRANSMIT_BATCH frames from the transmit queue; whether more are waiting."""
        frames: list[bytes] = []
        queue.suppress_notifications()
        more = False
        while True:
            if len(frames) >= TRANSMIT_BATCH:
                more = True
                break
            chain = queue.pop()
            if chain is None:
                more = queue.enable_notifications()
                break
            frame = self._frame(chain)
            queue.put(chain.head, 0)  # the device wrote nothing
            if frame is not None:
                frames.append(frame)
        if queue.publish():
            self.used_buffer_notification()
        return frames, more

    def _frame(self, chain: Chain) -> bytes | None:
        stats = self.stats
        total = chain.readable_bytes
        if not MIN_FRAME <= total - NET_HEADER_SIZE <= MAX_FRAME:
            stats["tx_dropped_malformed"] += 1
            return None
        buffer = self.memory.buffer
        host, length = chain.readable[0]
        if length >= total:
            flags, gso_type = buffer[host], buffer[host + 1]
            frame = bytes(buffer[host + NET_HEADER_SIZE : host + total])
        else:
            data = b"".join(bytes(buffer[h : h + n]) for h, n in chain.readable)
            flags, gso_type = data[0], data[1]
            frame = data[NET_HEADER_SIZE:]
        # 5.1.6.2.1: without VIRTIO_NET_F_CSUM (and the GSO features) the driver sets neither
        if flags & VIRTIO_NET_HDR_F_NEEDS_CSUM or gso_type != VIRTIO_NET_HDR_GSO_NONE:
            stats["tx_dropped_offload"] += 1
            return None
        stats["tx_frames"] += 1
        stats["tx_bytes"] += len(frame)
        return frame

    def close(self) -> None:
        self.backend.close()

    def statistics(self) -> dict[str, object]:
        return {
            **super().statistics(),
            **self.stats,
            "backlog": len(self.backlog),
            "backend": self.backend.statistics(),
        }

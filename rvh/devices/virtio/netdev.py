"""Network backends for virtio-net that need no privileges: an in-process hub, UDP sockets, and a
pcap recorder that wraps either.

A backend is one end of a link.  The NIC gives it frames with ``send(frame)`` (synchronous, never
blocks, never raises: a frame that cannot go out is dropped and counted, as on a real wire) and
receives frames through the callable it registered with ``attach``.  Backends with host work of
their own (the UDP socket) do it in ``serve``, started by the NIC's ``serve``.

``Hub`` is a repeater, like QEMU's hub: a frame sent by one port is delivered to every other
port, synchronously, on the sender's thread (the trio thread, where NIC workers run).  The lead
keeps one hub per ``--netdev hub,id=ID`` and gives each NIC on it a port; the hypervisor's VMs
can later take ports on the same hub.  The hub holds a sender back (``wait_ready``) while no
other port can take a frame and some port is merely full, as QEMU's hub does: a receiver out of
buffers slows the sender down instead of losing frames.  A port whose driver is not running
does not hold anybody back (its frames are dropped), so a dead guest cannot stall a hub.

``UdpSocketBackend`` is QEMU's ``-netdev socket,udp=PEER,localaddr=LOCAL``: one Ethernet frame
per datagram, no framing, sent to PEER and received on LOCAL; datagrams from anyone but PEER are
dropped and counted.

``PcapWriter`` writes the classic libpcap format (magic 0xa1b2c3d4, version 2.4, microsecond
timestamps, LINKTYPE_ETHERNET) that tcpdump and Wireshark read; ``PcapTap`` records every frame
that passes a backend in either direction, like QEMU's filter-dump.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable

import trio

from rvh.devices.virtio.notifier import TrioRun
from rvh.devices.virtio.options import NetdevOptions
from rvh.errors import LoadError

MIN_FRAME = 14  # an Ethernet header
MAX_FRAME = 1514  # header + 1500-byte MTU payload, no FCS
UDP_RECEIVE_SIZE = 65536
UDP_DRAIN = 64  # datagrams taken per wake-up of the receive task

PCAP_MAGIC = 0xA1B2C3D4
PCAP_VERSION = (2, 4)
PCAP_SNAPLEN = 65535
LINKTYPE_ETHERNET = 1
PCAP_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD = struct.Struct("<IIII")


# What a receiver would do with a frame sent now (``receiver_state`` of a backend).
ACCEPTING = 0  # take it
FULL = 1  # drop it for want of room: a sender that can wait should
ABSENT = 2  # drop it whatever happens (no driver, link down): waiting would not help


def _nobody(frame: bytes) -> None:
    pass


def _always_accepting() -> int:
    return ACCEPTING


class NetBackend:
    """Base class: counts, the receiver, and a ``serve`` with nothing to do."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.receiver: Callable[[bytes], None] = _nobody
        self.receiver_state: Callable[[], int] = _always_accepting
        self.counters = {"tx_frames": 0, "rx_frames": 0, "tx_dropped": 0, "rx_dropped": 0}

    def attach(
        self, receiver: Callable[[bytes], None], state: Callable[[], int] = _always_accepting
    ) -> None:
        """Frames arriving from the link go to ``receiver`` (the NIC's ``receive``); ``state``
        says what the receiver would do with one now (ACCEPTING, FULL or ABSENT)."""
        self.receiver = receiver
        self.receiver_state = state

    def send(self, frame: bytes) -> None:
        raise NotImplementedError

    def ready(self) -> bool:
        """Would a frame sent now be taken rather than held back?  Only a hub says no."""
        return True

    async def wait_ready(self) -> None:
        """Wait until ``ready``; the sender's (cancellable) transmit worker calls it."""

    def room_available(self) -> None:
        """The receiver behind this backend took frames from its backlog, or stopped
        receiving: senders held back for it may try again."""

    def deliver(self, frame: bytes) -> None:
        self.counters["rx_frames"] += 1
        self.receiver(frame)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await trio.sleep_forever()

    def close(self) -> None:
        pass

    def statistics(self) -> dict[str, int]:
        return dict(self.counters)


class Hub:
    """An in-process Ethernet hub joining any number of ports."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ports: list[HubPort] = []
        self.frames = 0
        self.holds = 0  # times a sender was held back
        self.room = trio.lowlevel.ParkingLot()  # senders held back
        self._run = TrioRun()  # the run they wait in

    def port(self, name: str | None = None) -> HubPort:
        port = HubPort(self, name or f"{self.name}.{len(self.ports)}")
        self.ports.append(port)
        return port

    def forward(self, source: HubPort, frame: bytes) -> None:
        self.frames += 1
        for port in self.ports:
            if port is not source:
                port.deliver(frame)

    def can_forward(self, source: HubPort) -> bool:
        """False when no other port would take a frame and some port is only full."""
        full = False
        for port in self.ports:
            if port is not source:
                state = port.receiver_state()
                if state == ACCEPTING:
                    return True
                full = full or state == FULL
        return not full

    async def wait_until_forwardable(self, source: HubPort) -> None:
        if self.can_forward(source):
            return
        self.holds += 1
        self._run.bind()
        while not self.can_forward(source):
            await self.room.park()

    def wake_senders(self) -> None:
        """Let held-back senders look again.  A receiver drains or resets on the trio thread,
        or on a hart's thread (an MMIO reset), where only the run loop may touch the lot."""
        if self._run.here():
            self.room.unpark_all()
        else:
            self._run.call_soon(self.room.unpark_all)

    def statistics(self) -> dict[str, object]:
        return {"frames": self.frames, "ports": len(self.ports), "holds": self.holds}


class HubPort(NetBackend):
    def __init__(self, hub: Hub, name: str) -> None:
        super().__init__(name)
        self.hub = hub

    def send(self, frame: bytes) -> None:
        self.counters["tx_frames"] += 1
        self.hub.forward(self, frame)

    def ready(self) -> bool:
        return self.hub.can_forward(self)

    async def wait_ready(self) -> None:
        await self.hub.wait_until_forwardable(self)

    def room_available(self) -> None:
        self.hub.wake_senders()

    def close(self) -> None:
        if self in self.hub.ports:
            self.hub.ports.remove(self)
            self.hub.wake_senders()  # senders held back for this port go on


def _resolve(key: str, address: tuple[str, int], family: int = socket.AF_UNSPEC) -> tuple:
    try:
        infos = socket.getaddrinfo(address[0], address[1], family, socket.SOCK_DGRAM)
    except socket.gaierror as error:
        raise LoadError(f"--netdev {key}={address[0]}:{address[1]}: {error.strerror}") from None
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr


class UdpSocketBackend(NetBackend):
    """One frame per UDP datagram between this process and a peer (two rvh processes on one
    host, over loopback)."""

    def __init__(self, name: str, peer: tuple[str, int], local: tuple[str, int]) -> None:
        super().__init__(name)
        family, self.peer = _resolve("udp", peer)
        _, local_address = _resolve("localaddr", local, family)
        self.socket = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.socket.bind(local_address)
        except OSError as error:
            self.socket.close()
            raise LoadError(
                f"--netdev localaddr={local[0]}:{local[1]}: cannot bind: {error.strerror}"
            ) from None
        self.socket.setblocking(False)
        self.local = self.socket.getsockname()
        self.counters["rx_foreign"] = 0

    def send(self, frame: bytes) -> None:
        try:
            self.socket.sendto(frame, self.peer)
        except OSError:  # full socket buffer, peer gone (ICMP), ...: the frame is lost
            self.counters["tx_dropped"] += 1
            return
        self.counters["tx_frames"] += 1

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        stream = trio.socket.from_stdlib_socket(self.socket)
        peer = self.peer[:2]
        task_status.started()
        while True:
            try:
                data, source = await stream.recvfrom(UDP_RECEIVE_SIZE)
            except trio.ClosedResourceError:
                return  # closed: the VM migrated away, its destination has the port now
            except OSError:
                self.counters["rx_dropped"] += 1  # e.g. ECONNREFUSED echoed from a send
                continue
            for _ in range(UDP_DRAIN):
                if source[:2] == peer:
                    self.deliver(data)
                else:
                    self.counters["rx_foreign"] += 1
                try:
                    data, source = self.socket.recvfrom(UDP_RECEIVE_SIZE)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    self.counters["rx_dropped"] += 1
                    break

    def close(self) -> None:
        """Let go of the port (a migration's destination binds it next)."""
        if self.socket.fileno() < 0:
            return
        try:
            trio.lowlevel.notify_closing(self.socket)  # wakes serve's wait, which then ends
        except RuntimeError:
            pass  # not inside trio: nothing waits on the socket
        self.socket.close()


class PcapWriter:
    """Append frames to a pcap file (the libpcap format, LINKTYPE_ETHERNET)."""

    def __init__(self, path: str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        try:
            self.file = open(path, "wb")  # noqa: SIM115 (kept open for the run)
        except OSError as error:
            raise LoadError(f"pcap={path}: cannot create: {error.strerror}") from None
        self.file.write(
            PCAP_HEADER.pack(PCAP_MAGIC, *PCAP_VERSION, 0, 0, PCAP_SNAPLEN, LINKTYPE_ETHERNET)
        )
        self.file.flush()
        self.frames = 0

    def write(self, frame: bytes) -> None:
        if self.file.closed:
            return
        now = self.clock()
        seconds = int(now)
        microseconds = min(int((now - seconds) * 1_000_000), 999_999)
        captured = frame[:PCAP_SNAPLEN]
        try:
            self.file.write(PCAP_RECORD.pack(seconds, microseconds, len(captured), len(frame)))
            self.file.write(captured)
            self.file.flush()  # readers (tcpdump -r, a crash) see every frame so far
        except OSError:
            return
        self.frames += 1

    def close(self) -> None:
        self.file.close()


class PcapTap(NetBackend):
    """Record every frame through ``inner`` (both directions) with ``writer``."""

    def __init__(self, inner: NetBackend, writer: PcapWriter) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.writer = writer
        inner.attach(self._from_link, self._state)

    def _state(self) -> int:
        return self.receiver_state()

    def send(self, frame: bytes) -> None:
        self.writer.write(frame)
        self.inner.send(frame)

    def ready(self) -> bool:
        return self.inner.ready()

    async def wait_ready(self) -> None:
        await self.inner.wait_ready()

    def room_available(self) -> None:
        self.inner.room_available()

    def _from_link(self, frame: bytes) -> None:
        self.writer.write(frame)
        self.receiver(frame)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.inner.serve(task_status=task_status)

    def close(self) -> None:
        self.inner.close()
        self.writer.close()

    def statistics(self) -> dict[str, int]:
        return {**self.inner.statistics(), "pcap_frames": self.writer.frames}


def open_netdev(options: NetdevOptions, hubs: dict[str, Hub]) -> NetBackend:
    """The backend for one NIC: a new port on the hub named by ``options.id`` (created in
    ``hubs`` on first use), or a UDP socket; wrapped in a pcap recorder with ``pcap=``."""
    backend: NetBackend
    if options.kind == "hub":
        hub = hubs.get(options.id)
        if hub is None:
            hub = hubs[options.id] = Hub(options.id)
        backend = hub.port()
    elif options.kind == "socket":
        assert options.udp is not None and options.localaddr is not None
        backend = UdpSocketBackend(options.id, options.udp, options.localaddr)
    else:
        raise ValueError(f"unknown netdev kind {options.kind!r}")
    if options.pcap:
        try:
            writer = PcapWriter(options.pcap)
        except LoadError:
            backend.close()
            raise
        backend = PcapTap(backend, writer)
    return backend


def read_pcap(path: str) -> list[tuple[float, bytes]]:
    """Read a pcap file written by ``PcapWriter`` back: [(timestamp, frame)]."""
    with open(path, "rb") as stream:
        data = stream.read()
    magic, major, minor, _, _, _, linktype = PCAP_HEADER.unpack_from(data, 0)
    if magic != PCAP_MAGIC or (major, minor) != PCAP_VERSION or linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: not a little-endian Ethernet pcap file")
    frames = []
    offset = PCAP_HEADER.size
    while offset + PCAP_RECORD.size <= len(data):
        seconds, microseconds, captured, _ = PCAP_RECORD.unpack_from(data, offset)
        offset += PCAP_RECORD.size
        frames.append((seconds + microseconds / 1e6, data[offset : offset + captured]))
        offset += captured
    return frames

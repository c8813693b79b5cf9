"""virtio-net (virtio 1.2 section 5.1) and its backends: two NICs on a hub, over UDP on
loopback, a pcap recording; malformed and oversized frames are dropped and counted."""

import os
import shutil
import socket
import struct
import subprocess

import pytest
import trio
import trio.testing
from virtio_driver import RAM_BASE, Allocator, Driver

from rvh.devices.virtio import mmio as M
from rvh.devices.virtio import net as N
from rvh.devices.virtio.netdev import (
    Hub,
    PcapTap,
    PcapWriter,
    UdpSocketBackend,
    open_netdev,
    read_pcap,
)
from rvh.devices.virtio.options import parse_netdev
from rvh.errors import LoadError

MAC_A = N.default_mac(0)
MAC_B = N.default_mac(1)
MAC_C = N.default_mac(2)
HEADER = bytes(12)
RX_BUFFER = 1526  # 5.1.6.3.1: without MRG_RXBUF and GSO, buffers of at least 1526 bytes


def frame(destination: bytes, source: bytes, payload: bytes) -> bytes:
    return destination + source + b"\x88\xb5" + payload  # a local experimental EtherType


class Nic:
    """A NIC with its Python driver: receive buffers posted, frames sent and collected."""

    def __init__(self, device: N.VirtioNet, driver: Driver):
        self.device = device
        self.driver = driver
        self.rx, self.tx = driver.queues
        self.rx_buffers: dict[int, int] = {}

    def post(self, count: int, length: int = RX_BUFFER, pieces: int = 1) -> None:
        for _ in range(count):
            address = self.driver.allocate(length, 16)
            step = -(-length // pieces)
            head = self.rx.add(
                [(address + s, min(step, length - s), True) for s in range(0, length, step)]
            )
            self.rx_buffers[head] = address
        self.rx.kick()

    def send(self, data: bytes, *, split: bool = False, indirect: bool = False) -> int:
        address = self.driver.allocate(len(HEADER) + len(data), 16)
        self.driver.bus.write_bytes(address, HEADER + data)
        if split:  # header alone, then the frame in two pieces
            half = len(data) // 2
            buffers = [
                (address, 12, False),
                (address + 12, half, False),
                (address + 12 + half, len(data) - half, False),
            ]
        else:
            buffers = [(address, 12 + len(data), False)]
        head = (self.tx.add_indirect if indirect else self.tx.add)(buffers)
        self.tx.kick()
        return head

    def received(self) -> list[tuple[bytes, bytes]]:
        """(virtio_net_hdr, frame) for each used receive buffer."""
        result = []
        for head, length in self.rx.take_used():
            address = self.rx_buffers.pop(head)
            data = self.driver.bus.read_bytes(address, length)
            result.append((data[:12], data[12:]))
        return result


async def start_nic(bus, backend, nursery, mac, base, **kwargs) -> Nic:
    device = N.VirtioNet(backend, bus=bus, mac=mac, **kwargs)
    driver = Driver(device, bus, Allocator(bus, base))
    await nursery.start(device.serve)
    driver.initialize(2, size=kwargs.get("queue_size", 64))
    return Nic(device, driver)


async def hub_pair(bus, nursery, **kwargs) -> tuple[Nic, Nic, Hub]:
    hub = Hub("n0")
    a = await start_nic(bus, hub.port(), nursery, MAC_A, RAM_BASE + (1 << 20), **kwargs)
    b = await start_nic(bus, hub.port(), nursery, MAC_B, RAM_BASE + (8 << 20), **kwargs)
    return a, b, hub


async def settle(*nics: Nic, count: int) -> None:
    def done():
        return sum(n.rx.pending_used() for n in nics) >= count

    await nics[0].driver.wait_for(done)


# ---- configuration -----------------------------------------------------------------------------
def test_config_space(bus):
    device = N.VirtioNet(Hub("h").port(), bus=bus, mac=MAC_B)
    assert bytes(device.read(M.CONFIG + i, 1) for i in range(6)) == MAC_B
    assert device.read(M.CONFIG + N.CONFIG_STATUS, 2) == N.VIRTIO_NET_S_LINK_UP
    assert device.read(M.CONFIG + N.CONFIG_MTU, 2) == 1500
    wanted = N.VIRTIO_NET_F_MAC | N.VIRTIO_NET_F_STATUS | N.VIRTIO_NET_F_MTU | M.VIRTIO_F_VERSION_1
    assert device.device_features & wanted == wanted
    assert not device.device_features & (N.VIRTIO_NET_F_CSUM | N.VIRTIO_NET_F_MRG_RXBUF)
    assert device.read(M.DEVICE_ID, 4) == 1


def test_default_macs_follow_qemu():
    assert N.format_mac(N.default_mac(0)) == "52:54:00:12:34:56"
    assert N.format_mac(N.default_mac(1)) == "52:54:00:12:34:57"


# ---- two NICs on a hub -------------------------------------------------------------------------
@pytest.mark.parametrize(("split", "indirect"), [(False, False), (True, False), (True, True)])
async def test_hub_delivers_both_ways(bus, nursery, split, indirect):
    a, b, hub = await hub_pair(bus, nursery)
    a.post(4)
    b.post(4)
    to_b = [frame(MAC_B, MAC_A, bytes([n]) * (46 + 100 * n)) for n in range(3)]
    to_a = frame(MAC_A, MAC_B, b"reply" * 200)
    for data in to_b:
        a.send(data, split=split, indirect=indirect)
    b.send(to_a, split=split, indirect=indirect)
    await settle(a, b, count=4)
    got_b, got_a = b.received(), a.received()
    assert [f for _, f in got_b] == to_b and [f for _, f in got_a] == [to_a]
    # 5.1.6.3.1: "the device MUST set num_buffers to 1"; nothing else is set
    assert {h for h, _ in got_b + got_a} == {struct.pack("<10xH", 1)}
    await trio.testing.wait_all_tasks_blocked()
    assert [length for _, length in a.tx.take_used()] == [0, 0, 0]  # the device wrote nothing
    stats = a.device.statistics()
    assert stats["tx_frames"] == 3 and stats["rx_frames"] == 1
    assert hub.statistics()["frames"] == 4


async def test_receive_chain_of_several_buffers(bus, nursery):
    a, b, _ = await hub_pair(bus, nursery)
    b.post(1, length=1600, pieces=5)
    data = frame(MAC_B, MAC_A, os.urandom(1400))
    a.send(data)
    await settle(b, count=1)
    ((header, got),) = b.received()
    assert got == data


@pytest.mark.parametrize(
    ("length", "counter"),
    [(13, "tx_dropped_malformed"), (1515, "tx_dropped_malformed"), (0, "tx_dropped_malformed")],
)
async def test_bad_frames_are_dropped_and_counted(bus, nursery, length, counter):
    a, b, hub = await hub_pair(bus, nursery)
    b.post(2)
    a.send(b"\xaa" * length)
    a.send(frame(MAC_B, MAC_A, b"ok" * 30))  # the next good frame still goes through
    await settle(b, count=1)
    await trio.testing.wait_all_tasks_blocked()
    assert [f[12:14] for _, f in b.received()] == [b"\x88\xb5"]
    assert a.device.statistics()[counter] == 1
    assert [length for _, length in a.tx.take_used()] == [0, 0]  # both chains returned
    assert hub.frames == 1


async def test_largest_frame_passes(bus, nursery):
    a, b, _ = await hub_pair(bus, nursery)
    b.post(1)
    data = frame(MAC_B, MAC_A, b"m" * 1500)
    assert len(data) == 1514
    a.send(data)
    await settle(b, count=1)
    assert b.received()[0][1] == data


async def test_offload_requests_are_dropped(bus, nursery):
    a, b, _ = await hub_pair(bus, nursery)
    b.post(1)
    address = a.driver.allocate(100, 16)
    data = struct.pack("<BBHHHHH", N.VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 14, 16, 0)
    bus.write_bytes(address, data + frame(MAC_B, MAC_A, bytes(50)))
    a.tx.add([(address, 12 + 64, False)])
    a.tx.kick()
    await a.driver.wait_used(a.tx)
    assert a.device.statistics()["tx_dropped_offload"] == 1 and b.rx.pending_used() == 0


async def test_receive_buffer_too_small(bus, nursery):
    a, b, _ = await hub_pair(bus, nursery)
    b.post(1, length=40)
    b.post(1)
    dropped, delivered = frame(MAC_B, MAC_A, bytes(50)), frame(MAC_B, MAC_A, bytes(500))
    a.send(dropped)
    a.send(delivered)
    await settle(b, count=2)
    # the 40-byte chain cannot hold header and frame: it comes back empty, the frame is lost
    assert [length for _, length in b.rx.take_used()] == [0, 12 + len(delivered)]
    assert b.device.statistics()["rx_dropped_small_buffer"] == 1


async def test_frames_wait_for_receive_buffers(bus, nursery):
    a, b, hub = await hub_pair(bus, nursery, backlog=4)
    frames = [frame(MAC_B, MAC_A, bytes([n]) * 60) for n in range(6)]
    for data in frames:
        a.send(data)
    await a.driver.wait_used(a.tx, 6)
    await trio.testing.wait_all_tasks_blocked()
    assert b.rx.pending_used() == 0 and b.device.statistics()["backlog"] == 4
    # the hub holds the sender back rather than lose frames (QEMU's hub does the same)
    assert b.device.statistics()["rx_dropped_overrun"] == 0
    assert hub.statistics()["holds"] == 1
    assert a.device.statistics()["backend"]["tx_frames"] == 4
    # the device asked to be notified when buffers arrive, and delivers in order then
    b.post(8)
    await settle(b, count=6)
    assert [f for _, f in b.received()] == frames


async def test_a_held_back_sender_lets_other_work_run(bus, nursery):
    # the sender waits in its own task: the receiver's worker and the driver go on
    a, b, hub = await hub_pair(bus, nursery, backlog=2)
    frames = [frame(MAC_B, MAC_A, bytes([n]) * 60) for n in range(40)]
    b.post(4)
    for data in frames[:20]:
        a.send(data)
    got: list[bytes] = []
    while len(got) < 20:
        await settle(b, count=1)
        got += [f for _, f in b.received()]
        b.post(4)
        await trio.testing.wait_all_tasks_blocked()
    assert got == frames[:20]
    assert b.device.statistics()["rx_dropped_overrun"] == 0
    assert hub.statistics()["holds"] > 0


async def test_a_receiver_without_a_driver_holds_nobody_back(bus, nursery):
    a, b, hub = await hub_pair(bus, nursery, backlog=2)
    b.driver.write(M.STATUS, M.STATUS_FAILED | b.driver.read(M.STATUS))
    for n in range(5):
        a.send(frame(MAC_B, MAC_A, bytes([n]) * 60))
    await a.driver.wait_used(a.tx, 5)
    await trio.testing.wait_all_tasks_blocked()
    assert a.device.statistics()["backend"]["tx_frames"] == 5
    assert b.device.statistics()["rx_dropped_not_ready"] == 5
    assert hub.statistics()["holds"] == 0


@pytest.mark.parametrize("from_thread", [False, True], ids=["trio-thread", "hart-thread"])
async def test_resetting_the_full_receiver_releases_the_sender(bus, nursery, from_thread):
    a, b, hub = await hub_pair(bus, nursery, backlog=2)
    for n in range(5):
        a.send(frame(MAC_B, MAC_A, bytes([n]) * 60))
    await a.driver.wait_used(a.tx, 5)
    await trio.testing.wait_all_tasks_blocked()
    assert a.device.statistics()["backend"]["tx_frames"] == 2  # held back
    # the receiver's driver resets its device, from the trio thread or from a hart's thread
    if from_thread:
        await trio.to_thread.run_sync(b.driver.write, M.STATUS, 0)
    else:
        b.driver.write(M.STATUS, 0)
    await trio.testing.wait_all_tasks_blocked()
    assert a.device.statistics()["backend"]["tx_frames"] == 5
    assert b.device.statistics()["rx_dropped_not_ready"] == 3


async def test_one_full_port_does_not_stall_a_hub_with_room_elsewhere(bus, nursery):
    a, b, hub = await hub_pair(bus, nursery, backlog=2)
    c = await start_nic(bus, hub.port(), nursery, MAC_C, RAM_BASE + (12 << 20), backlog=64)
    c.post(16)
    for n in range(6):
        a.send(frame(MAC_B, MAC_A, bytes([n]) * 60))
    await settle(c, count=6)
    assert b.device.statistics()["rx_dropped_overrun"] == 4  # a repeater: b still gets copies
    assert hub.statistics()["holds"] == 0


async def test_a_backend_that_cannot_wait_still_overruns_the_backlog(bus, nursery):
    # a UDP peer cannot be held back: beyond the backlog its frames are dropped and counted
    hub = Hub("n0")
    b = await start_nic(bus, hub.port(), nursery, MAC_B, RAM_BASE + (8 << 20), backlog=4)
    wire = hub.port()  # sends synchronously, like the UDP receive task
    for n in range(6):
        wire.send(frame(MAC_B, MAC_A, bytes([n]) * 60))
    assert b.device.statistics()["backlog"] == 4
    assert b.device.statistics()["rx_dropped_overrun"] == 2


async def test_frames_before_driver_ok_are_dropped(bus, nursery):
    hub = Hub("n0")
    device = N.VirtioNet(hub.port(), bus=bus, mac=MAC_B)
    await nursery.start(device.serve)
    sender = hub.port()
    sender.send(frame(MAC_B, MAC_A, bytes(60)))
    assert device.statistics()["rx_dropped_not_ready"] == 1


def test_malformed_frames_from_the_link_are_dropped(bus):
    hub = Hub("n0")
    device = N.VirtioNet(hub.port(), bus=bus)
    sender = hub.port()
    sender.send(b"short")
    sender.send(bytes(1515))
    assert device.statistics()["rx_dropped_malformed"] == 2


async def test_link_down_is_a_configuration_change(bus, nursery):
    a, b, _ = await hub_pair(bus, nursery)
    generation = b.driver.read(M.CONFIG_GENERATION)
    b.device.set_link(False)
    assert b.driver.read(M.CONFIG_GENERATION) != generation
    assert b.driver.read(M.INTERRUPT_STATUS) & M.INTERRUPT_CONFIG_CHANGE
    assert b.device.read(M.CONFIG + N.CONFIG_STATUS, 2) == 0
    b.post(1)
    a.send(frame(MAC_B, MAC_A, bytes(60)))
    await trio.testing.wait_all_tasks_blocked()
    assert b.rx.pending_used() == 0 and b.device.statistics()["rx_dropped_not_ready"] == 1


async def test_malformed_transmit_ring_needs_reset(bus, nursery):
    a, b, _ = await hub_pair(bus, nursery)
    a.tx.write_desc(0, 0x1000, 64, 0, 0)  # the boot ROM
    a.tx.push_avail(0)
    a.tx.kick()
    await a.driver.wait_for(lambda: a.driver.status() & M.STATUS_DEVICE_NEEDS_RESET)
    assert "transmit queue" in a.driver.logs[0] and "outside guest RAM" in a.driver.logs[0]
    b.post(1)  # b is unharmed
    b.send(frame(MAC_A, MAC_B, bytes(60)))
    await b.driver.wait_used(b.tx)
    assert b.device.live


# ---- UDP sockets ----------------------------------------------------------------------------
def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_udp_between_two_backends(bus, nursery):
    port_a, port_b = free_udp_port(), free_udp_port()
    backend_a = UdpSocketBackend("a", ("127.0.0.1", port_b), ("127.0.0.1", port_a))
    backend_b = UdpSocketBackend("b", ("127.0.0.1", port_a), ("127.0.0.1", port_b))
    a = await start_nic(bus, backend_a, nursery, MAC_A, RAM_BASE + (1 << 20))
    b = await start_nic(bus, backend_b, nursery, MAC_B, RAM_BASE + (8 << 20))
    a.post(4)
    b.post(4)
    to_b = [frame(MAC_B, MAC_A, bytes([n]) * 1000) for n in range(3)]
    for data in to_b:
        a.send(data)
    b.send(frame(MAC_A, MAC_B, b"pong" * 20))
    await settle(a, b, count=4)
    assert [f for _, f in b.received()] == to_b
    assert [f for _, f in a.received()] == [frame(MAC_A, MAC_B, b"pong" * 20)]
    # a datagram from anyone else is not a frame from the peer
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.sendto(frame(MAC_B, MAC_A, bytes(60)), ("127.0.0.1", port_b))
    with trio.fail_after(5):
        while backend_b.statistics()["rx_foreign"] == 0:
            await trio.sleep(0.001)
    assert b.rx.pending_used() == 0
    backend_a.close()
    backend_b.close()


def test_udp_bind_failure_is_a_clear_error():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        with pytest.raises(LoadError, match="cannot bind"):
            UdpSocketBackend("x", ("127.0.0.1", 9), ("127.0.0.1", port))


# ---- pcap ---------------------------------------------------------------------------------------
async def test_pcap_records_every_frame(bus, nursery, tmp_path):
    path = tmp_path / "n0.pcap"
    hub = Hub("n0")
    ticks = iter(range(1_000_000))
    tap = PcapTap(hub.port(), PcapWriter(str(path), clock=lambda: 1_700_000_000 + next(ticks) / 8))
    a = await start_nic(bus, tap, nursery, MAC_A, RAM_BASE + (1 << 20))
    b = await start_nic(bus, hub.port(), nursery, MAC_B, RAM_BASE + (8 << 20))
    a.post(2)
    b.post(3)
    sent = [frame(MAC_B, MAC_A, bytes([n]) * (60 + n)) for n in range(3)]
    replies = [frame(MAC_A, MAC_B, b"r" * 70), frame(MAC_A, MAC_B, b"s" * 80)]
    for data in sent:
        a.send(data)
    await settle(b, count=3)
    for data in replies:
        b.send(data)
    await settle(a, count=2)
    records = read_pcap(str(path))
    assert [data for _, data in records] == sent + replies
    assert [stamp for stamp, _ in records] == [1_700_000_000 + n / 8 for n in range(5)]
    header = path.read_bytes()[:24]
    assert struct.unpack("<IHHiIII", header) == (0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    if shutil.which("tcpdump"):
        result = subprocess.run(
            ["tcpdump", "-nn", "-r", str(path)], capture_output=True, text=True, check=True
        )
        assert len(result.stdout.splitlines()) == 5


# ---- open_netdev --------------------------------------------------------------------------------
def test_open_netdev(tmp_path):
    hubs = {}
    first = open_netdev(parse_netdev("hub,id=n0"), hubs)
    second = open_netdev(parse_netdev(f"hub,id=n0,pcap={tmp_path / 'x.pcap'}"), hubs)
    other = open_netdev(parse_netdev("hub,id=n1"), hubs)
    assert set(hubs) == {"n0", "n1"} and len(hubs["n0"].ports) == 2 and len(hubs["n1"].ports) == 1
    received = []
    second.attach(received.append)
    first.send(frame(MAC_B, MAC_A, bytes(50)))
    other.send(frame(MAC_B, MAC_A, bytes(50)))
    assert len(received) == 1 and len(read_pcap(str(tmp_path / "x.pcap"))) == 1
    second.close()
    port = free_udp_port()
    udp = open_netdev(parse_netdev(f"socket,id=u,udp=127.0.0.1:9,localaddr=127.0.0.1:{port}"), hubs)
    assert isinstance(udp, UdpSocketBackend) and udp.local[1] == port
    udp.close()
    with pytest.raises(LoadError, match="cannot create"):
        open_netdev(parse_netdev(f"hub,id=n2,pcap={tmp_path}/no/such/dir.pcap"), hubs)

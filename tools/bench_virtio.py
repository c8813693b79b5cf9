#!/usr/bin/env python3
"""Throughput of the virtio device models alone, driven by a lean Python driver.

    .venv/bin/python tools/bench_virtio.py [--seconds S] [--depth N]

Block: sequential reads and writes of 4 KiB and 64 KiB requests through VirtioBlk on an image in
the host page cache, ``depth`` requests in flight (a Linux guest keeps many in flight), and one at
a time.  Net: frames per second one way between two VirtioNet NICs on a Hub, 64- and 1500-byte
frames.  The driver here is Python too, so the figures are a lower bound for the device layer;
the guest-visible end-to-end figures come from guests running on the emulator.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rvh.bus import Bus  # noqa: E402
from rvh.devices.virtio import blk as B  # noqa: E402
from rvh.devices.virtio import mmio as M  # noqa: E402
from rvh.devices.virtio import net as N  # noqa: E402
from rvh.devices.virtio.netdev import Hub  # noqa: E402
from rvh.devices.virtio.options import parse_drive  # noqa: E402
from rvh.devices.virtio.queue import VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE  # noqa: E402

RAM_BASE = 0x8000_0000
RAM_SIZE = 64 << 20
DESC = struct.Struct("<QIHH")
U16 = struct.Struct("<H")
USED = struct.Struct("<II")


class LeanDriver:
    """Just enough of a driver: negotiate, set up queues, post chains, reap used entries."""

    def __init__(self, device: M.VirtioMmioDevice, bus: Bus, base: int) -> None:
        self.device = device
        self.bus = bus
        self.memory = memoryview(bus.ram)
        self.next = base
        self.interrupt = trio.Event()
        device.irq = self._irq

    def _irq(self, level: bool) -> None:
        if level:
            self.interrupt.set()

    def allocate(self, size: int, align: int = 64) -> int:
        address = (self.next + align - 1) & ~(align - 1)
        self.next = address + size
        return address

    def host(self, address: int) -> int:
        return address - RAM_BASE

    def start(self, queues: int, size: int) -> list[dict]:
        write = self.device.write
        write(M.STATUS, 4, 0)
        write(M.STATUS, 4, 3)
        write(M.DEVICE_FEATURES_SEL, 4, 0)
        low = self.device.read(M.DEVICE_FEATURES, 4)
        write(M.DEVICE_FEATURES_SEL, 4, 1)
        high = self.device.read(M.DEVICE_FEATURES, 4)
        for sel, value in ((0, low), (1, high)):
            write(M.DRIVER_FEATURES_SEL, 4, sel)
            write(M.DRIVER_FEATURES, 4, value)
        write(M.STATUS, 4, 3 | M.STATUS_FEATURES_OK)
        result = []
        for index in range(queues):
            queue = {
                "index": index,
                "size": size,
                "desc": self.allocate(16 * size, 16),
                "avail": self.allocate(6 + 2 * size, 2),
                "used": self.allocate(6 + 8 * size, 4),
                "avail_idx": 0,
                "last_used": 0,
            }
            write(M.QUEUE_SEL, 4, index)
            write(M.QUEUE_NUM, 4, size)
            for register, key in (
                (M.QUEUE_DESC_LOW, "desc"),
                (M.QUEUE_DRIVER_LOW, "avail"),
                (M.QUEUE_DEVICE_LOW, "used"),
            ):
                write(register, 4, queue[key] & 0xFFFF_FFFF)
                write(register + 4, 4, queue[key] >> 32)
            write(M.QUEUE_READY, 4, 1)
            result.append(queue)
        write(M.STATUS, 4, 3 | M.STATUS_FEATURES_OK | M.STATUS_DRIVER_OK)
        return result

    def chain(self, queue: dict, first: int, buffers: list[tuple[int, int, bool]]) -> int:
        """Write a chain at descriptors first, first+1, ...; return the head."""
        for i, (address, length, writable) in enumerate(buffers):
            flags = (VIRTQ_DESC_F_WRITE if writable else 0) | (
                VIRTQ_DESC_F_NEXT if i + 1 < len(buffers) else 0
            )
            DESC.pack_into(
                self.memory,
                self.host(queue["desc"]) + 16 * (first + i),
                address,
                length,
                flags,
                first + i + 1,
            )
        return first

    def offer(self, queue: dict, heads: list[int]) -> None:
        avail = self.host(queue["avail"])
        size = queue["size"]
        for head in heads:
            U16.pack_into(self.memory, avail + 4 + 2 * (queue["avail_idx"] % size), head)
            queue["avail_idx"] = (queue["avail_idx"] + 1) & 0xFFFF
        U16.pack_into(self.memory, avail + 2, queue["avail_idx"])
        self.device.write(M.QUEUE_NOTIFY, 4, queue["index"])

    def reap(self, queue: dict) -> list[tuple[int, int]]:
        used = self.host(queue["used"])
        size = queue["size"]
        index = U16.unpack_from(self.memory, used + 2)[0]
        result = []
        while queue["last_used"] != index:
            result.append(USED.unpack_from(self.memory, used + 4 + 8 * (queue["last_used"] % size)))
            queue["last_used"] = (queue["last_used"] + 1) & 0xFFFF
        # VIRTIO_F_EVENT_IDX: interrupt me at the next used entry
        U16.pack_into(self.memory, self.host(queue["avail"]) + 4 + 2 * size, queue["last_used"])
        return result

    async def wait(self) -> None:
        with trio.move_on_after(0.01):  # interrupts can be suppressed: poll as a fallback
            await self.interrupt.wait()
        self.interrupt = trio.Event()
        self.device.write(M.INTERRUPT_ACK, 4, self.device.read(M.INTERRUPT_STATUS, 4))


async def bench_blk(image: str, request_size: int, write: bool, depth: int, seconds: float):
    bus = Bus(RAM_BASE, RAM_SIZE, 0x1000, 0xF000)
    device = B.VirtioBlk(parse_drive(f"file={image}"), bus=bus)
    driver = LeanDriver(device, bus, RAM_BASE + (1 << 20))
    capacity = os.path.getsize(image) // 512
    sectors = request_size // 512
    async with trio.open_nursery() as nursery:
        await nursery.start(device.serve)
        (queue,) = driver.start(1, 256)
        slots = []
        for n in range(depth):
            header = driver.allocate(16)
            data = driver.allocate(request_size, 4096)
            status = driver.allocate(1)
            head = driver.chain(
                queue,
                3 * n,
                [(header, 16, False), (data, request_size, not write), (status, 1, True)],
            )
            slots.append((head, header))
        by_head = {head: header for head, header in slots}
        kind = B.VIRTIO_BLK_T_OUT if write else B.VIRTIO_BLK_T_IN
        position = 0
        done_bytes = 0

        def submit(heads):
            nonlocal position
            for head in heads:
                struct.pack_into(
                    "<IIQ", driver.memory, driver.host(by_head[head]), kind, 0, position
                )
                position = (position + sectors) % (capacity - sectors)
            driver.offer(queue, heads)

        start = time.perf_counter()
        submit([head for head, _ in slots])
        while time.perf_counter() - start < seconds:
            await driver.wait()
            used = driver.reap(queue)
            done_bytes += request_size * len(used)
            if used:
                submit([head for head, _ in used])
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    device.close()
    return done_bytes / elapsed / 1e6, device.statistics()


async def bench_net(frame_size: int, seconds: float):
    bus = Bus(RAM_BASE, RAM_SIZE, 0x1000, 0xF000)
    hub = Hub("bench")
    sender_nic = N.VirtioNet(hub.port(), bus=bus, mac=N.default_mac(0))
    receiver_nic = N.VirtioNet(hub.port(), bus=bus, mac=N.default_mac(1))
    sender = LeanDriver(sender_nic, bus, RAM_BASE + (1 << 20))
    receiver = LeanDriver(receiver_nic, bus, RAM_BASE + (16 << 20))
    size = 256
    received = 0
    async with trio.open_nursery() as nursery:
        await nursery.start(sender_nic.serve)
        await nursery.start(receiver_nic.serve)
        _, tx = sender.start(2, size)
        rx, _ = receiver.start(2, size)
        frame = N.default_mac(1) + N.default_mac(0) + b"\x88\xb5" + bytes(frame_size - 14)
        tx_heads = []
        for n in range(size):
            address = sender.allocate(12 + frame_size)
            sender.memory[sender.host(address) + 12 : sender.host(address) + 12 + frame_size] = (
                frame
            )
            tx_heads.append(sender.chain(tx, n, [(address, 12 + frame_size, False)]))
        rx_heads = [
            receiver.chain(rx, n, [(receiver.allocate(1526), 1526, True)]) for n in range(size)
        ]
        receiver.offer(rx, rx_heads)

        async def receive_loop():
            nonlocal received
            while True:
                await receiver.wait()
                used = receiver.reap(rx)
                received += len(used)
                if used:
                    receiver.offer(rx, [head for head, _ in used])

        nursery.start_soon(receive_loop)
        start = time.perf_counter()
        sender.offer(tx, tx_heads)
        while time.perf_counter() - start < seconds:
            await sender.wait()
            used = sender.reap(tx)
            if used:
                sender.offer(tx, [head for head, _ in used])
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    stats = receiver_nic.statistics()
    return received / elapsed, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--image-mib", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        image = os.path.join(directory, "bench.img")
        with open(image, "wb") as stream:
            stream.write(os.urandom(1 << 20) * args.image_mib)
        print(f"virtio-blk, image of {args.image_mib} MiB in the page cache, cache=writeback")
        for request_size in (4096, 65536):
            for depth in (1, args.depth):
                for write in (False, True):
                    rate, _ = trio.run(bench_blk, image, request_size, write, depth, args.seconds)
                    kind = "write" if write else "read "
                    print(
                        f"  {kind} {request_size // 1024:3d} KiB x {depth:3d} in flight: "
                        f"{rate:8.1f} MB/s"
                    )
    print("virtio-net, two NICs on a hub, one way")
    for frame_size in (64, 1500):
        rate, stats = trio.run(bench_net, frame_size, args.seconds)
        dropped = sum(v for k, v in stats.items() if k.startswith("rx_dropped"))
        print(
            f"  {frame_size:4d}-byte frames: {rate:10.0f} frames/s "
            f"({rate * frame_size * 8 / 1e6:.0f} Mbit/s), {dropped} dropped at the receiver"
        )


if __name__ == "__main__":
    main()

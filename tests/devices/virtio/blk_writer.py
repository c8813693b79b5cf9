"""Child process of the SIGKILL test: write sectors through the virtio-blk model in groups of
eight, FLUSH after each group, and print the number of writes the completed FLUSH covers.  The
parent kills it at some point and checks the image."""

import sys

import trio
from virtio_driver import Driver, blk_request, make_bus

from rvh.devices.virtio import blk as B
from rvh.devices.virtio.options import parse_drive

GROUP = 8


def sector(number: int) -> bytes:
    return number.to_bytes(8, "little") + bytes([number * 7 & 0xFF]) * 504


async def main(path: str, sectors: int) -> None:
    bus = make_bus()
    device = B.VirtioBlk(parse_drive(f"file={path},cache=writeback"), bus=bus)
    driver = Driver(device, bus)
    async with trio.open_nursery() as nursery:
        await nursery.start(device.serve)
        (queue,) = driver.initialize(1, size=64)
        number = 0
        mark = driver.allocate.next
        while True:
            group = []
            for _ in range(GROUP):
                group.append(
                    blk_request(
                        queue,
                        B.VIRTIO_BLK_T_OUT,
                        number % sectors,
                        payload=sector(number),
                        publish=False,
                    )
                )
                number += 1
            flush = blk_request(queue, B.VIRTIO_BLK_T_FLUSH, publish=False)
            queue.publish()
            queue.kick()
            await driver.wait_used(queue, GROUP + 1)
            queue.take_used()
            driver.ack()
            if flush.status != B.VIRTIO_BLK_S_OK or any(r.status for r in group):
                raise SystemExit("a request failed")
            print(number, flush=True)
            driver.allocate.next = mark  # every buffer of the group is back


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]))

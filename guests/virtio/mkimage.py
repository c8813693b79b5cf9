#!/usr/bin/env python3
"""mkimage.py - disk images with a known pattern for the virtio-blk guests.

Sector s (512 bytes) of a disk with pattern id k (0..255):
  bytes 0..7    s as a little-endian u64
  bytes 8..14   b"rvh-dsk"
  byte  15      k
  bytes 16..511 (s*7 + j*13 + k*101) & 0xff   for byte offset j

guests/virtio/diskpattern.h regenerates the same pattern for blk.c, blkbig.c
and pvblk.c, which compare what they read with it; blk.c also prints the
CRC-32 (zlib/IEEE) of the whole disk, which this script prints too.

Usage:
  mkimage.py IMG [--size 8M] [--id 0]    write IMG, print its size and CRC-32
  mkimage.py --crc IMG                   print the CRC-32 of an existing file

Images used by the guests (guests/virtio/qemu-args.sh):
  blk:      disk0.img  --size 8M  --id 0   (read-write)
            disk1.img  --size 1M  --id 1   (attached read-only)
  blkbench: bench.img  --size 32M --id 2
"""
import argparse
import sys
import zlib

SECTOR = 512
INV13 = 197                     # 13 * 197 = 2561 = 1 (mod 256)
ROW = bytes((j * 13) & 0xFF for j in range(2 * SECTOR + 256))


def sector_bytes(s, k):
    """The 512 bytes of sector s of a disk with pattern id k."""
    t = ((s * 7 + k * 101) * INV13) & 0xFF   # 13 * (t + j) = s*7 + k*101 + 13*j
    return (s.to_bytes(8, "little") + b"rvh-dsk" + bytes([k]) +
            ROW[t + 16:t + SECTOR])


def image_bytes(size, k):
    return b"".join(sector_bytes(s, k) for s in range(size // SECTOR))


def parse_size(text):
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B").rstrip("I")
    if text and text[-1] in mult:
        return int(text[:-1]) * mult[text[-1]]
    return int(text, 0)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image")
    ap.add_argument("--size", default="8M", help="image size (sector multiple)")
    ap.add_argument("--id", type=int, default=0, help="pattern id 0..255")
    ap.add_argument("--crc", action="store_true",
                    help="only print the CRC-32 of an existing image")
    args = ap.parse_args(argv)
    if args.crc:
        with open(args.image, "rb") as f:
            data = f.read()
        print(f"{args.image}: {len(data)} bytes, crc32 0x{zlib.crc32(data):08x}")
        return 0
    size = parse_size(args.size)
    if size <= 0 or size % SECTOR or not 0 <= args.id <= 255:
        ap.error("size must be a positive multiple of 512 and id 0..255")
    data = image_bytes(size, args.id)
    with open(args.image, "wb") as f:
        f.write(data)
    print(f"{args.image}: {size} bytes ({size // SECTOR} sectors), pattern id "
          f"{args.id}, crc32 0x{zlib.crc32(data):08x}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

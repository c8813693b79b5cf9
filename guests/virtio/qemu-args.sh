#!/bin/sh
# qemu-args.sh ELF [IMGDIR]
# Print the QEMU arguments (devices) a guest under guests/virtio/ needs, after
# creating fresh disk images for it in IMGDIR (default: the ELF's directory +
# /img).  Used by run-qemu.sh; the images are rewritten on every run because
# the blk guest writes to its disk.
#   blk       disk0.img (8 MiB, pattern 0, read-write, serial rvh-disk0) and
#             disk1.img (1 MiB, pattern 1, read-only,  serial rvh-disk1)
#   blkbench  bench.img (32 MiB, pattern 2)
#   net, netbench  two virtio-net NICs (52:54:00:12:34:01 and :02) on hub 0
# Every run gets -global virtio-mmio.force-legacy=false (virtio-mmio version 2).
set -eu
elf=$1
name=$(basename "$elf" .elf)
dir=${2:-$(dirname "$elf")/img}
here=$(cd "$(dirname "$0")" && pwd)
mk() { python3 "$here/mkimage.py" "$@" >&2; }
mkdir -p "$dir"
args="-global virtio-mmio.force-legacy=false"
case "$name" in
    blk)
        mk "$dir/disk0.img" --size 8M --id 0
        mk "$dir/disk1.img" --size 1M --id 1
        args="$args -drive file=$dir/disk0.img,if=none,format=raw,id=d0"
        args="$args -device virtio-blk-device,drive=d0,serial=rvh-disk0"
        args="$args -drive file=$dir/disk1.img,if=none,format=raw,id=d1,readonly=on"
        args="$args -device virtio-blk-device,drive=d1,serial=rvh-disk1" ;;
    blkflush)
        mk "$dir/flush.img" --size 1M --id 3
        args="$args -drive file=$dir/flush.img,if=none,format=raw,id=d0"
        args="$args -device virtio-blk-device,drive=d0" ;;
    blkbench)
        mk "$dir/bench.img" --size 32M --id 2
        args="$args -drive file=$dir/bench.img,if=none,format=raw,id=d0"
        args="$args -device virtio-blk-device,drive=d0" ;;
    net|netbench)
        args="$args -netdev hubport,id=h0,hubid=0 -netdev hubport,id=h1,hubid=0"
        args="$args -device virtio-net-device,netdev=h0,mac=52:54:00:12:34:01"
        args="$args -device virtio-net-device,netdev=h1,mac=52:54:00:12:34:02" ;;
    *) ;;
esac
echo "$args"

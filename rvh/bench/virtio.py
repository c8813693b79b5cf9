"""``rvh bench virtio``: what a guest sees of the virtio devices, per wall-clock second.

guests/virtio/blkbench reads and writes 4 passes over 32 MiB with 4 KiB and 64 KiB requests
(up to 256 in flight); guests/virtio/netbench sends 300,000 64-byte and 150,000 1500-byte
frames from one NIC to another on a hub.  Each phase is timed by its ``phase:`` marker.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from rvh.bench.mips import guests_dir
from rvh.bench.phases import bench_phases
from rvh.config import MachineConfig

BLK_BYTES = 4 * (32 << 20)  # per phase: PASSES x REGION_BYTES in blkbench.c
NET_FRAMES = {"net-64": 300_000, "net-1500": 150_000}  # FRAMES_64, FRAMES_1500 in netbench.c


def bench_virtio(repeat: int = 3) -> int:
    build = guests_dir()
    mkimage = build.parent / "virtio" / "mkimage.py"
    with tempfile.TemporaryDirectory(prefix="rvh-bench-") as tmp:
        image = Path(tmp) / "bench.img"

        def blk_config() -> MachineConfig:
            # blkbench writes the disk and checks what it reads: a fresh image every run
            subprocess.run(
                [sys.executable, str(mkimage), str(image), "--size", "32M", "--id", "2"],
                check=True,
                capture_output=True,
            )
            return MachineConfig(drives=[f"file={image},format=raw"])

        bench_phases(
            build / "virtio" / "blkbench.elf",
            sbi=True,
            repeat=repeat,
            baseline=None,
            title="rvh bench virtio (blk)",
            config=blk_config,
            work={
                name: (BLK_BYTES, "bytes")
                for name in ("read-4k", "write-4k", "read-64k", "write-64k")
            },
        )
    mac = ["52:54:00:12:34:01", "52:54:00:12:34:02"]
    bench_phases(
        build / "virtio" / "netbench.elf",
        sbi=True,
        repeat=repeat,
        baseline=None,
        title="rvh bench virtio (net)",
        config=lambda: MachineConfig(netdevs=[f"hub,id=h0,mac={m}" for m in mac]),
        work={name: (frames, "frames") for name, frames in NET_FRAMES.items()},
    )
    return 0

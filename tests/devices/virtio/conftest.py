import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from virtio_driver import make_bus  # noqa: E402

from rvh.devices.virtio.blk import VirtioBlk  # noqa: E402
from rvh.devices.virtio.options import parse_drive  # noqa: E402

SECTORS = 64


def image_bytes(sectors: int = SECTORS) -> bytes:
    """A recognisable image: sector n is filled with the byte n, its first 8 bytes hold n."""
    return b"".join(n.to_bytes(8, "little") + bytes([n & 0xFF]) * 504 for n in range(sectors))


@pytest.fixture
def bus():
    return make_bus()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(image_bytes())
    return path


@pytest.fixture
def make_blk(bus, image):
    devices = []

    def make(options: str = "", path: Path | None = None, **kwargs) -> VirtioBlk:
        spec = f"file={path or image}" + (f",{options}" if options else "")
        device = VirtioBlk(parse_drive(spec), bus=bus, **kwargs)
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.close()


def file_bytes(path) -> bytes:
    with open(path, "rb") as stream:
        return stream.read()


@pytest.fixture
def is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0

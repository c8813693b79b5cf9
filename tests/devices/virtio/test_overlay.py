"""The copy-on-write overlay under --drive snapshot=on and overlay=FILE."""

from __future__ import annotations

import os

import pytest

from rvh.devices.virtio.blk import BlockImage
from rvh.devices.virtio.options import parse_drive
from rvh.devices.virtio.overlay import CLUSTER, OverlayImage, overlay_digest
from rvh.errors import LoadError


@pytest.fixture
def base(tmp_path):
    path = tmp_path / "base.img"
    path.write_bytes(bytes(i % 251 for i in range(64 * 1024)))
    return path


def read(image, offset, length):
    buffer = bytearray(length)
    image.read_into([memoryview(buffer)], offset)
    return bytes(buffer)


def write(image, offset, data):
    image.write_from([memoryview(bytearray(data))], offset)


def test_writes_go_to_the_overlay_and_reads_merge(tmp_path, base):
    original = base.read_bytes()
    top = tmp_path / "top.img"
    image = OverlayImage(parse_drive(f"file={base},overlay={top}"))
    write(image, CLUSTER + 512, b"\xaa" * 512)  # part of a cluster: copied up first
    write(image, 3 * CLUSTER, b"\xbb" * CLUSTER)  # a whole cluster
    expected = bytearray(original)
    expected[CLUSTER + 512 : CLUSTER + 1024] = b"\xaa" * 512
    expected[3 * CLUSTER : 4 * CLUSTER] = b"\xbb" * CLUSTER
    assert read(image, 0, len(original)) == bytes(expected)
    # across the runs of base and overlay clusters, in two buffers split mid-cluster
    first, second = bytearray(CLUSTER + 100), bytearray(3 * CLUSTER - 100)
    image.read_into([memoryview(first), memoryview(second)], CLUSTER)
    assert bytes(first + second) == bytes(expected[CLUSTER : 5 * CLUSTER])
    image.discard(5 * CLUSTER, CLUSTER)  # reads as zeroes, as a punched raw image does
    assert read(image, 5 * CLUSTER, CLUSTER) == bytes(CLUSTER)
    digest = overlay_digest(image.overlay_fd, image.size)
    image.close()
    assert base.read_bytes() == original
    # a kept overlay: reopened, it still holds the writes
    again = OverlayImage(parse_drive(f"file={base},overlay={top}"))
    assert (
        read(again, 0, len(original))
        == bytes(expected[: 5 * CLUSTER]) + bytes(CLUSTER) + original[6 * CLUSTER :]
    )
    assert overlay_digest(again.overlay_fd, again.size) == digest
    again.close()


def test_snapshot_on_leaves_nothing_behind(tmp_path, base):
    original = base.read_bytes()
    before = set(os.listdir(tmp_path))
    image = OverlayImage(parse_drive(f"file={base},snapshot=on"))
    write(image, 0, b"\x01" * 4096)
    assert read(image, 0, 4) == b"\x01" * 4
    image.close()
    assert base.read_bytes() == original
    assert set(os.listdir(tmp_path)) == before


def test_clones_share_a_base_that_nobody_may_write(tmp_path, base):
    one = OverlayImage(parse_drive(f"file={base},overlay={tmp_path / 'one.img'}"))
    two = OverlayImage(parse_drive(f"file={base},overlay={tmp_path / 'two.img'}"))
    with pytest.raises(LoadError, match="in use by another process"):
        BlockImage(parse_drive(f"file={base}"))
    with pytest.raises(LoadError, match="in use by another process"):
        OverlayImage(parse_drive(f"file={base},overlay={tmp_path / 'one.img'}"))
    one.close()
    two.close()


def test_an_overlay_of_another_size_is_refused(tmp_path, base):
    top = tmp_path / "top.img"
    top.write_bytes(bytes(4096))
    with pytest.raises(LoadError, match="but its base has 65536"):
        OverlayImage(parse_drive(f"file={base},overlay={top}"))


def test_drive_options_spell_the_overlay():
    assert parse_drive("file=a.img,snapshot=on").snapshot
    assert parse_drive("file=a.img,snapshot").snapshot
    assert parse_drive("file=a.img,overlay=b.img").overlay == "b.img"
    with pytest.raises(ValueError, match="both name where writes go"):
        parse_drive("file=a.img,snapshot=on,overlay=b.img")

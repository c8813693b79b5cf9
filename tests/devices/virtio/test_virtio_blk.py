"""virtio-blk (virtio 1.2 section 5.2): configuration, every request type, read-only drives,
range errors, durability of FLUSH and writethrough, in-order completion, host I/O errors,
start-up errors, and the SIGKILL test."""

import errno
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import trio
import trio.testing
from conftest import SECTORS, file_bytes, image_bytes
from virtio_driver import Driver, blk_request

from rvh.devices.virtio import blk as B
from rvh.devices.virtio import mmio as M
from rvh.devices.virtio.options import parse_drive
from rvh.errors import LoadError

HERE = Path(__file__).resolve().parent


def sector(n: int) -> bytes:
    return image_bytes(SECTORS)[512 * n : 512 * (n + 1)]


async def start(make_blk, bus, nursery, options="", *, accept=None, drop=0, size=16, **kwargs):
    device = make_blk(options, **kwargs)
    driver = Driver(device, bus)
    await nursery.start(device.serve)
    (queue,) = driver.initialize(1, accept=accept, drop=drop, size=size)
    return device, driver, queue


async def run(driver, queue, *args, **kwargs):
    request = blk_request(queue, *args, **kwargs)
    queue.kick()
    await driver.wait_used(queue)
    ((head, length),) = queue.take_used()
    assert head == request.head
    request.used_length = length
    return request


# ---- configuration --------------------------------------------------------------------------
def test_config_space(make_blk):
    device = make_blk()
    config = device.config
    assert struct.unpack_from("<Q", config, B.CONFIG_CAPACITY)[0] == SECTORS
    assert struct.unpack_from("<I", config, B.CONFIG_BLK_SIZE)[0] == 512
    assert struct.unpack_from("<I", config, B.CONFIG_SEG_MAX)[0] == 254
    assert config[B.CONFIG_WRITEBACK] == 1
    assert struct.unpack_from("<III", config, B.CONFIG_MAX_DISCARD_SECTORS) == (
        B.MAX_DISCARD_SECTORS,
        B.MAX_DISCARD_SEGMENTS,
        B.DISCARD_SECTOR_ALIGNMENT,
    )
    assert config[B.CONFIG_WRITE_ZEROES_MAY_UNMAP] == 1
    wanted = (
        B.VIRTIO_BLK_F_SEG_MAX
        | B.VIRTIO_BLK_F_BLK_SIZE
        | B.VIRTIO_BLK_F_FLUSH
        | B.VIRTIO_BLK_F_CONFIG_WCE
        | B.VIRTIO_BLK_F_DISCARD
        | B.VIRTIO_BLK_F_WRITE_ZEROES
    )
    assert device.device_features & wanted == wanted
    assert not device.device_features & B.VIRTIO_BLK_F_RO


def test_read_only_drive_offers_ro_and_no_discard(make_blk):
    device = make_blk("readonly=on")
    assert device.device_features & B.VIRTIO_BLK_F_RO
    assert not device.device_features & (B.VIRTIO_BLK_F_DISCARD | B.VIRTIO_BLK_F_WRITE_ZEROES)


def test_cache_writethrough_resets_writeback_to_zero(make_blk):
    assert make_blk("cache=writethrough").config[B.CONFIG_WRITEBACK] == 0


# ---- requests ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("segments", "split_header", "indirect"),
    [(1, False, False), (4, True, False), (3, False, True), (8, True, True)],
)
async def test_read(make_blk, bus, nursery, segments, split_header, indirect):
    _, _, queue = await start(make_blk, bus, nursery)
    driver = queue.driver
    request = await run(
        driver,
        queue,
        B.VIRTIO_BLK_T_IN,
        3,
        read_length=3 * 512,
        segments=segments,
        split_header=split_header,
        indirect=indirect,
    )
    assert request.status == B.VIRTIO_BLK_S_OK
    assert request.read() == sector(3) + sector(4) + sector(5)
    assert request.used_length == 3 * 512 + 1  # every writable byte: data and status


async def test_write(make_blk, bus, nursery, image):
    device, driver, queue = await start(make_blk, bus, nursery)
    data = os.urandom(2 * 512)
    request = await run(driver, queue, B.VIRTIO_BLK_T_OUT, 10, payload=data, segments=3)
    assert request.status == B.VIRTIO_BLK_S_OK and request.used_length == 1
    contents = file_bytes(image)
    assert contents[10 * 512 : 12 * 512] == data
    assert contents[: 10 * 512] == image_bytes()[: 10 * 512]
    assert contents[12 * 512 :] == image_bytes()[12 * 512 :]
    stats = device.statistics()
    assert stats["writes"] == 1 and stats["bytes_written"] == 1024


async def test_get_id(make_blk, bus, nursery):
    _, driver, queue = await start(make_blk, bus, nursery, "serial=RVH-SERIAL-0001")
    request = await run(driver, queue, B.VIRTIO_BLK_T_GET_ID, read_length=20)
    assert request.status == B.VIRTIO_BLK_S_OK
    assert request.read() == b"RVH-SERIAL-0001\0\0\0\0\0"  # NUL-padded up to 20 bytes


async def test_default_serial_is_the_image_name(make_blk, bus, nursery):
    _, driver, queue = await start(make_blk, bus, nursery)
    request = await run(driver, queue, B.VIRTIO_BLK_T_GET_ID, read_length=20)
    assert request.read().rstrip(b"\0") == b"disk.img"


def segment_payload(*segments):
    return b"".join(struct.pack("<QII", *segment) for segment in segments)


async def test_discard(make_blk, bus, nursery, image):
    device, driver, queue = await start(make_blk, bus, nursery)
    request = await run(
        driver, queue, B.VIRTIO_BLK_T_DISCARD, payload=segment_payload((8, 8, 0), (32, 8, 0))
    )
    assert request.status == B.VIRTIO_BLK_S_OK
    assert len(file_bytes(image)) == SECTORS * 512  # the size is kept
    assert device.statistics()["discards"] == 1


@pytest.mark.parametrize("unmap", [0, 1])
async def test_write_zeroes(make_blk, bus, nursery, image, unmap):
    _, driver, queue = await start(make_blk, bus, nursery)
    request = await run(
        driver,
        queue,
        B.VIRTIO_BLK_T_WRITE_ZEROES,
        payload=segment_payload((2, 3, unmap), (20, 1, unmap)),
    )
    assert request.status == B.VIRTIO_BLK_S_OK
    contents = file_bytes(image)
    # 5.2.6.2: "After a write zeroes command is completed, reads of the specified ranges of
    # sectors MUST return zeroes."
    assert contents[2 * 512 : 5 * 512] == bytes(3 * 512)
    assert contents[20 * 512 : 21 * 512] == bytes(512)
    assert contents[5 * 512 : 20 * 512] == image_bytes()[5 * 512 : 20 * 512]
    assert contents[:1024] == image_bytes()[:1024]


@pytest.mark.parametrize(
    ("request_type", "segments", "status"),
    [
        # 5.2.6.2: UNSUPP for unknown flags, and for discard with unmap
        (B.VIRTIO_BLK_T_DISCARD, [(0, 1, 1)], B.VIRTIO_BLK_S_UNSUPP),
        (B.VIRTIO_BLK_T_WRITE_ZEROES, [(0, 1, 2)], B.VIRTIO_BLK_S_UNSUPP),
        (B.VIRTIO_BLK_T_DISCARD, [(SECTORS - 1, 2, 0)], B.VIRTIO_BLK_S_IOERR),
        (B.VIRTIO_BLK_T_WRITE_ZEROES, [(2**63, 1, 0)], B.VIRTIO_BLK_S_IOERR),
        (B.VIRTIO_BLK_T_DISCARD, [(0, 1, 0)] * 33, B.VIRTIO_BLK_S_UNSUPP),
        (
            B.VIRTIO_BLK_T_WRITE_ZEROES,
            [(0, B.MAX_WRITE_ZEROES_SECTORS + 1, 0)],
            B.VIRTIO_BLK_S_UNSUPP,
        ),
    ],
)
async def test_discard_and_write_zeroes_errors(
    make_blk, bus, nursery, image, request_type, segments, status
):
    _, driver, queue = await start(make_blk, bus, nursery)
    request = await run(driver, queue, request_type, payload=segment_payload(*segments))
    assert request.status == status
    assert file_bytes(image) == image_bytes()


async def test_segment_payload_not_a_multiple_of_16_is_an_error(make_blk, bus, nursery):
    _, driver, queue = await start(make_blk, bus, nursery)
    request = await run(driver, queue, B.VIRTIO_BLK_T_DISCARD, payload=bytes(20))
    assert request.status == B.VIRTIO_BLK_S_IOERR


async def test_discard_not_negotiated_is_unsupported(make_blk, bus, nursery):
    _, driver, queue = await start(make_blk, bus, nursery, drop=B.VIRTIO_BLK_F_DISCARD)
    request = await run(driver, queue, B.VIRTIO_BLK_T_DISCARD, payload=segment_payload((0, 1, 0)))
    assert request.status == B.VIRTIO_BLK_S_UNSUPP


@pytest.mark.parametrize(
    ("request_type", "sector_number", "length"),
    [
        (B.VIRTIO_BLK_T_IN, SECTORS, 512),  # just past the end
        (B.VIRTIO_BLK_T_IN, SECTORS - 1, 1024),  # straddles the end
        (B.VIRTIO_BLK_T_IN, 2**64 - 1, 512),  # would wrap
        (B.VIRTIO_BLK_T_IN, 0, 100),  # not a multiple of 512
        (B.VIRTIO_BLK_T_OUT, SECTORS, 512),
        (B.VIRTIO_BLK_T_OUT, 0, 513),
    ],
)
async def test_out_of_range_is_ioerr(
    make_blk, bus, nursery, image, request_type, sector_number, length
):
    device, driver, queue = await start(make_blk, bus, nursery)
    if request_type == B.VIRTIO_BLK_T_IN:
        request = await run(driver, queue, request_type, sector_number, read_length=length)
        assert request.read() == bytes(length)  # no stale bytes below the reported len
    else:
        request = await run(driver, queue, request_type, sector_number, payload=b"x" * length)
    assert request.status == B.VIRTIO_BLK_S_IOERR
    assert file_bytes(image) == image_bytes()
    assert device.statistics()["ioerr"] == 1 and device.live


@pytest.mark.parametrize("request_type", [B.VIRTIO_BLK_T_GET_LIFETIME, 3, 0xFFFF_FFFF])
async def test_unknown_request_is_unsupported(make_blk, bus, nursery, request_type):
    _, driver, queue = await start(make_blk, bus, nursery)
    request = await run(driver, queue, request_type, read_length=16)
    assert request.status == B.VIRTIO_BLK_S_UNSUPP


async def test_read_only_drive_refuses_writes(make_blk, bus, nursery, image):
    _, driver, queue = await start(make_blk, bus, nursery, "readonly=on")
    # 5.2.6.1: "A device MUST set the status byte to VIRTIO_BLK_S_IOERR for a write request if
    # the VIRTIO_BLK_F_RO feature if offered, and MUST NOT write any data."
    request = await run(driver, queue, B.VIRTIO_BLK_T_OUT, 0, payload=b"w" * 512)
    assert request.status == B.VIRTIO_BLK_S_IOERR
    request = await run(driver, queue, B.VIRTIO_BLK_T_IN, 0, read_length=512)
    assert request.status == B.VIRTIO_BLK_S_OK and request.read() == sector(0)
    request = await run(driver, queue, B.VIRTIO_BLK_T_FLUSH)
    assert request.status == B.VIRTIO_BLK_S_OK
    request = await run(
        driver, queue, B.VIRTIO_BLK_T_WRITE_ZEROES, payload=segment_payload((0, 1, 0))
    )
    assert request.status in (B.VIRTIO_BLK_S_IOERR, B.VIRTIO_BLK_S_UNSUPP)
    assert file_bytes(image) == image_bytes()


async def test_requests_complete_in_order(make_blk, bus, nursery):
    _, driver, queue = await start(make_blk, bus, nursery, size=128)
    requests = []
    for n in range(40):
        kind = (B.VIRTIO_BLK_T_IN, B.VIRTIO_BLK_T_OUT, B.VIRTIO_BLK_T_FLUSH)[n % 3]
        if kind == B.VIRTIO_BLK_T_IN:
            requests.append(blk_request(queue, kind, n, read_length=512, publish=False))
        elif kind == B.VIRTIO_BLK_T_OUT:
            requests.append(blk_request(queue, kind, n, payload=bytes([n]) * 512, publish=False))
        else:
            requests.append(blk_request(queue, kind, publish=False))
    queue.publish()
    queue.kick()
    await driver.wait_used(queue, 40)
    assert [head for head, _ in queue.take_used()] == [r.head for r in requests]
    assert all(r.status == B.VIRTIO_BLK_S_OK for r in requests)


async def test_notifications_are_suppressed_while_busy_and_enabled_when_idle(
    make_blk, bus, nursery
):
    _, driver, queue = await start(make_blk, bus, nursery, drop=M.VIRTIO_F_EVENT_IDX)
    await run(driver, queue, B.VIRTIO_BLK_T_FLUSH)
    await trio.testing.wait_all_tasks_blocked()
    assert queue.used_flags() == 0  # idle: the device wants to be notified


# ---- durability ----------------------------------------------------------------------------------
@pytest.fixture
def io_log(monkeypatch):
    """Record the order of host writes, fdatasync and interrupts."""
    events = []
    real_pwritev, real_fdatasync = os.pwritev, os.fdatasync

    def pwritev(fd, buffers, offset):
        events.append("write")
        return real_pwritev(fd, buffers, offset)

    def fdatasync(fd):
        events.append("sync")
        real_fdatasync(fd)

    monkeypatch.setattr(B.os, "pwritev", pwritev)
    monkeypatch.setattr(B.os, "fdatasync", fdatasync)
    return events


def record_interrupts(driver, events):
    original = driver.device.irq

    def irq(level):
        if level:
            events.append("complete")
        original(level)

    driver.device.irq = irq


async def test_flush_completes_after_fdatasync(make_blk, bus, nursery, io_log):
    device, driver, queue = await start(make_blk, bus, nursery)
    record_interrupts(driver, io_log)
    await run(driver, queue, B.VIRTIO_BLK_T_OUT, 0, payload=b"a" * 512)
    driver.ack()
    assert io_log == ["write", "complete"]  # writeback: the write alone is not synced
    await run(driver, queue, B.VIRTIO_BLK_T_FLUSH)
    assert io_log == ["write", "complete", "sync", "complete"]
    assert not device.writethrough


@pytest.mark.parametrize(
    ("options", "drop", "config_writeback"),
    [
        ("cache=writethrough", 0, None),
        ("", B.VIRTIO_BLK_F_FLUSH | B.VIRTIO_BLK_F_CONFIG_WCE, None),  # 5.2.6.1 case 1
        ("", 0, 0),  # CONFIG_WCE: the driver turns the cache into writethrough (case 2)
    ],
)
async def test_writethrough_syncs_before_completion(
    make_blk, bus, nursery, io_log, options, drop, config_writeback
):
    device, driver, queue = await start(make_blk, bus, nursery, options, drop=drop)
    if config_writeback is not None:
        device.write(M.CONFIG + B.CONFIG_WRITEBACK, 1, config_writeback)
    record_interrupts(driver, io_log)
    await run(driver, queue, B.VIRTIO_BLK_T_OUT, 0, payload=b"a" * 512)
    assert io_log == ["write", "sync", "complete"]
    assert device.writethrough


async def test_failed_sync_fails_the_flush(make_blk, bus, nursery, monkeypatch):
    device, driver, queue = await start(make_blk, bus, nursery)

    def broken(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(B.os, "fdatasync", broken)
    request = await run(driver, queue, B.VIRTIO_BLK_T_FLUSH)
    assert request.status == B.VIRTIO_BLK_S_IOERR
    assert "flush" in driver.logs[-1] and "Input/output error" in driver.logs[-1]


async def test_host_read_error_is_ioerr(make_blk, bus, nursery, monkeypatch):
    device, driver, queue = await start(make_blk, bus, nursery)

    def broken(fd, buffers, offset):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(B.os, "preadv", broken)
    request = await run(driver, queue, B.VIRTIO_BLK_T_IN, 0, read_length=512)
    assert request.status == B.VIRTIO_BLK_S_IOERR and request.read() == bytes(512)
    assert device.live


async def test_short_transfers_are_completed(make_blk, bus, nursery, monkeypatch):
    real = os.preadv

    def short(fd, buffers, offset):  # at most 100 bytes per call
        first = buffers[0][:100]
        return real(fd, [first], offset)

    monkeypatch.setattr(B.os, "preadv", short)
    _, driver, queue = await start(make_blk, bus, nursery)
    request = await run(driver, queue, B.VIRTIO_BLK_T_IN, 2, read_length=1024, segments=2)
    assert request.status == B.VIRTIO_BLK_S_OK and request.read() == sector(2) + sector(3)


@pytest.mark.parametrize("action", ["reset", "move the queue"])
async def test_host_io_in_flight_is_dropped_by_reset_or_a_new_queue(
    make_blk, bus, nursery, monkeypatch, action
):
    started, release = threading.Event(), threading.Event()
    real = os.preadv

    def slow(fd, buffers, offset):
        started.set()
        release.wait(5)
        return real(fd, buffers, offset)

    monkeypatch.setattr(B.os, "preadv", slow)
    device, driver, queue = await start(make_blk, bus, nursery)
    request = blk_request(queue, B.VIRTIO_BLK_T_IN, 1, read_length=512)
    queue.kick()
    await trio.to_thread.run_sync(started.wait, 5)
    assert device.busy()
    if action == "reset":
        threading.Timer(0.05, release.set).start()
        driver.write(M.STATUS, 0)  # blocks until the read is done
        assert release.is_set()
        monkeypatch.setattr(B.os, "preadv", real)
        (new_queue,) = driver.initialize(1, size=16)
    else:
        driver.write(M.QUEUE_SEL, 0)
        driver.write(M.QUEUE_READY, 0)
        new_queue = driver.setup_queue(0, 16)
        monkeypatch.setattr(B.os, "preadv", real)
        release.set()
    await trio.sleep(0.05)
    assert not device.busy()
    # no completion reaches either ring: the request belongs to a ring that no longer exists
    assert queue.used_idx() == 0 and new_queue.used_idx() == 0 and request.status == 0xFF
    request = await run(driver, new_queue, B.VIRTIO_BLK_T_IN, 1, read_length=512)
    assert request.status == B.VIRTIO_BLK_S_OK


def test_sigkill_keeps_every_flushed_write(tmp_path):
    """A child writes through the device model and reports each completed FLUSH; SIGKILL it in
    the middle and check that every write covered by a reported flush is in the file intact."""
    path = tmp_path / "kill.img"
    sectors = 4096
    path.write_bytes(bytes(512 * sectors))
    child = subprocess.Popen(
        [sys.executable, str(HERE / "blk_writer.py"), str(path), str(sectors)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    flushed = 0
    deadline = time.monotonic() + 20
    assert child.stdout is not None
    for line in child.stdout:
        flushed = int(line)
        if flushed >= 200 or time.monotonic() > deadline:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    assert flushed >= 50, "the child made too little progress"
    data = file_bytes(path)
    for number in range(flushed):
        expected = blk_writer_sector(number)
        start = 512 * (number % sectors)
        assert data[start : start + 512] == expected, f"flushed write {number} is missing"
    # nothing is torn: every sector is either untouched or one whole write
    for n in range(sectors):
        chunk = data[512 * n : 512 * (n + 1)]
        if chunk != bytes(512):
            number = int.from_bytes(chunk[:8], "little")
            assert chunk == blk_writer_sector(number)


def blk_writer_sector(number: int) -> bytes:
    return number.to_bytes(8, "little") + bytes([number * 7 & 0xFF]) * 504


# ---- start-up errors -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such disk image"), (b"", "is empty"), (b"x" * 1000, "not a multiple of 512")],
)
def test_bad_images_are_clear_errors(bus, tmp_path, content, message):
    path = tmp_path / "bad.img"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(LoadError, match=message) as info:
        B.VirtioBlk(parse_drive(f"file={path}"), bus=bus)
    assert "\n" not in info.value.message and str(path) in info.value.message


def test_directory_is_not_an_image(bus, tmp_path):
    with pytest.raises(LoadError):
        B.VirtioBlk(parse_drive(f"file={tmp_path}"), bus=bus)


def test_unreadable_image(bus, image, is_root):
    if is_root:
        pytest.skip("root reads files whatever their mode")
    image.chmod(0)
    with pytest.raises(LoadError, match="permission denied"):
        B.VirtioBlk(parse_drive(f"file={image}"), bus=bus)


def test_image_in_use_by_another_writer(make_blk, bus, image):
    make_blk()
    with pytest.raises(LoadError, match="in use"):
        B.VirtioBlk(parse_drive(f"file={image}"), bus=bus)


def test_read_only_drives_can_share_an_image(make_blk):
    make_blk("readonly=on")
    make_blk("readonly=on")


# ---- sharing an image with QEMU ------------------------------------------------------------

QEMU = "qemu-system-riscv64"


def qemu_with_drive(image, options: str = "") -> list[str]:
    """QEMU 7.2 on the virt board with ``image`` as a virtio disk, stopped before its first
    instruction (-S): it opens and locks the image, then waits."""
    drive = f"file={image},format=raw,if=none,id=d0" + (f",{options}" if options else "")
    return [
        QEMU, "-machine", "virt", "-nographic", "-S", "-monitor", "none", "-serial", "none",
        "-drive", drive, "-device", "virtio-blk-device,drive=d0",
    ]  # fmt: skip


def wait_for_qemu_lock(image, qemu) -> None:
    """Until QEMU holds its lock on the image (it refuses to share writing: byte 201)."""
    import time

    fd = os.open(image, os.O_RDONLY)
    try:
        deadline = time.monotonic() + 60
        while not B._ofd_locked(fd, B.UNSHARED_LOCK_BASE + B.PERMISSION_WRITE):
            assert qemu.poll() is None, qemu.communicate()
            assert time.monotonic() < deadline, "QEMU never locked the image"
            time.sleep(0.05)
    finally:
        os.close(fd)


@pytest.mark.parametrize("qemu_options", ["", "readonly=on"])
@pytest.mark.parametrize("rvh_options", ["", "readonly=on"])
def test_an_image_qemu_has_open_is_refused(bus, image, qemu_options, rvh_options):
    # QEMU refuses to let anyone else write, and a QEMU writer shares with no reader that
    # refuses writing: rvh's drive, read-only or not, cannot open the image beside it
    qemu = subprocess.Popen(
        qemu_with_drive(image, qemu_options), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        wait_for_qemu_lock(image, qemu)
        if qemu_options and rvh_options:
            B.VirtioBlk(parse_drive(f"file={image},{rvh_options}"), bus=bus).close()
            return  # two readers share it, as two QEMUs would
        with pytest.raises(LoadError, match="in use by another process"):
            B.VirtioBlk(
                parse_drive(f"file={image}" + (f",{rvh_options}" * bool(rvh_options))), bus=bus
            )
    finally:
        qemu.kill()
        qemu.communicate()


@pytest.mark.parametrize("rvh_options", ["", "readonly=on"])
def test_qemu_refuses_an_image_rvh_writes(make_blk, image, rvh_options):
    make_blk(rvh_options)
    qemu = subprocess.Popen(
        qemu_with_drive(image), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _, errors = qemu.communicate(timeout=60)  # -S: only a refusal ends it
    finally:
        qemu.kill()
    assert qemu.returncode == 1
    assert 'Failed to get "write" lock' in errors


# ---- virtual I/O timing (--io-timing virtual) ------------------------------------------------
async def test_virtual_timing_moves_data_at_the_notify_and_completes_when_due(
    make_blk, bus, nursery
):
    device = make_blk()
    device.virtual_timing = True
    driver = Driver(device, bus)
    await nursery.start(device.serve)  # no worker: the run loop serves the device
    (queue,) = driver.initialize(1)
    request = blk_request(queue, B.VIRTIO_BLK_T_IN, 3, read_length=2 * 512)
    queue.kick()
    await trio.testing.wait_all_tasks_blocked()
    assert queue.pending_used() == 0 and device.virtual_due() is None  # nothing until served
    device.virtual_kick(1_000)
    # the data is in RAM at the notify; the used ring and status wait for the due time
    assert request.read() == sector(3) + sector(4)
    due = device.virtual_due()
    assert due == 1_000 + B.VIRTUAL_LATENCY_NS + 2 * 512 * B.VIRTUAL_NS_PER_BYTE
    device.virtual_complete(due - 1)
    assert queue.pending_used() == 0
    # a VM file taken now carries the completion; a fresh device restored from it completes it
    saved = device.save_state()
    device.close()  # the twin takes the image over, as a restored process would
    twin = make_blk()
    twin.virtual_timing = True
    twin.restore_state(saved)
    assert twin.virtual_due() == due
    twin.virtual_complete(due)
    assert twin.virtual_due() is None
    ((head, length),) = queue.take_used()
    assert head == request.head and length == 2 * 512 + 1
    assert bus.read_bytes(request.status_address, 1) == bytes([B.VIRTIO_BLK_S_OK])


def test_a_device_with_host_timing_refuses_completions_due_in_virtual_time(make_blk, bus):
    device = make_blk()
    saved = device.save_state()
    device.close()
    saved["device"]["virtual_pending"] = [[5, 1, True, []]]
    with pytest.raises(ValueError, match="virtual time"):
        make_blk().restore_state(saved)

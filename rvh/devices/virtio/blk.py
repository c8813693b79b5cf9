"""virtio block device (virtio 1.2 section 5.2) on a raw image file.

One request queue.  Its worker pops every available request, checks each header on the trio
thread (under the device lock), performs the host I/O for the whole batch in one
``trio.to_thread.run_sync`` call -- ``os.preadv``/``os.pwritev`` directly between the image and
guest RAM, one copy, no Python loop over bytes -- and then writes the status bytes and the used
ring in request order, so requests complete in order, with one interrupt per batch at most.

Durability (5.2.6.1).  A write is stable once completed if the driver did not negotiate
VIRTIO_BLK_F_FLUSH (case 1), or negotiated VIRTIO_BLK_F_CONFIG_WCE and keeps ``writeback`` at 0
(case 2); otherwise only a FLUSH makes it stable (case 3).  ``cache=writethrough`` sets
``writeback`` to 0 at reset.  A batch that wrote in writethrough mode calls ``fdatasync`` before
any of its requests completes; a FLUSH calls ``fdatasync`` and completes only after it returned.
Failed host I/O completes the request with VIRTIO_BLK_S_IOERR and is counted and logged.

Reset while host I/O is in flight waits for the I/O thread (``quiesce``), so once the driver has
written status 0, no read lands in guest memory and no stale completion reaches the used ring.

Start-up errors (missing, unreadable, empty or wrongly sized image, image in use by another
process) raise ``rvh.errors.LoadError`` with a one-line message.  The image is locked the way
QEMU locks its images (:func:`lock_image`), so rvh refuses an image QEMU has open for writing,
QEMU refuses one rvh writes, and two rvh processes cannot write one image.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import errno
import fcntl
import os
import stat
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import trio

from rvh.bus import Bus
from rvh.devices.virtio.mmio import DEVICE_ID_BLOCK, VirtioMmioDevice
from rvh.devices.virtio.options import SERIAL_LENGTH, DriveOptions
from rvh.devices.virtio.queue import Chain, RingError, SplitQueue
from rvh.errors import LoadError

SECTOR_SIZE = 512  # 5.2.6: sectors are always 512 bytes
# virtual I/O timing: a batch completes this long after its notify (virtual ns), plus its
# data at 1 GB/s: a fast SSD's order of magnitude, and fixed, so runs repeat exactly
VIRTUAL_LATENCY_NS = 20_000
VIRTUAL_NS_PER_BYTE = 1
QUEUE_SIZE = 256

# 5.2.3 feature bits
VIRTIO_BLK_F_SIZE_MAX = 1 << 1
VIRTIO_BLK_F_SEG_MAX = 1 << 2
VIRTIO_BLK_F_GEOMETRY = 1 << 4
VIRTIO_BLK_F_RO = 1 << 5
VIRTIO_BLK_F_BLK_SIZE = 1 << 6
VIRTIO_BLK_F_FLUSH = 1 << 9
VIRTIO_BLK_F_TOPOLOGY = 1 << 10
VIRTIO_BLK_F_CONFIG_WCE = 1 << 11
VIRTIO_BLK_F_MQ = 1 << 12
VIRTIO_BLK_F_DISCARD = 1 << 13
VIRTIO_BLK_F_WRITE_ZEROES = 1 << 14

# 5.2.4 struct virtio_blk_config (byte offsets)
CONFIG_CAPACITY = 0  # le64, in 512-byte sectors
CONFIG_SIZE_MAX = 8
CONFIG_SEG_MAX = 12
CONFIG_GEOMETRY = 16
CONFIG_BLK_SIZE = 20
CONFIG_TOPOLOGY = 24
CONFIG_WRITEBACK = 32  # u8
CONFIG_NUM_QUEUES = 34
CONFIG_MAX_DISCARD_SECTORS = 36
CONFIG_MAX_DISCARD_SEG = 40
CONFIG_DISCARD_SECTOR_ALIGNMENT = 44
CONFIG_MAX_WRITE_ZEROES_SECTORS = 48
CONFIG_MAX_WRITE_ZEROES_SEG = 52
CONFIG_WRITE_ZEROES_MAY_UNMAP = 56  # u8, then unused1[3]
CONFIG_SIZE = 60

# 5.2.6 request types and status values
VIRTIO_BLK_T_IN = 0
VIRTIO_BLK_T_OUT = 1
VIRTIO_BLK_T_FLUSH = 4
VIRTIO_BLK_T_GET_ID = 8
VIRTIO_BLK_T_GET_LIFETIME = 10
VIRTIO_BLK_T_DISCARD = 11
VIRTIO_BLK_T_WRITE_ZEROES = 13
VIRTIO_BLK_T_SECURE_ERASE = 14
VIRTIO_BLK_S_OK = 0
VIRTIO_BLK_S_IOERR = 1
VIRTIO_BLK_S_UNSUPP = 2
_PENDING = -1

VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP = 1
REQUEST_HEADER = struct.Struct("<IIQ")  # type, reserved, sector
SEGMENT = struct.Struct("<QII")  # struct virtio_blk_discard_write_zeroes

MAX_DISCARD_SECTORS = 1 << 22  # 2 GiB per segment
MAX_DISCARD_SEGMENTS = 32
DISCARD_SECTOR_ALIGNMENT = 8  # 4 KiB, the host file system's block
MAX_WRITE_ZEROES_SECTORS = 1 << 22
MAX_WRITE_ZEROES_SEGMENTS = 32

# QEMU's image locks (block/file-posix.c, QEMU 5.0 and later, unchanged in 7.2), which rvh takes
# too so that each sees the other: every user of an image holds a shared open-file-description
# (OFD) record lock on byte PERM_LOCK_BASE + p for each permission p it uses, and on byte
# UNSHARED_LOCK_BASE + p for each permission it does not let others have.  A new user fails when
# a byte it needs is locked by another file description: UNSHARED_LOCK_BASE + p for a
# permission p it wants, PERM_LOCK_BASE + p for one it refuses to share.  A flock(2) lock, which
# rvh took before, is invisible to these record locks.
PERM_LOCK_BASE = 100
UNSHARED_LOCK_BASE = 200
PERMISSION_CONSISTENT_READ = 0  # QEMU's BLK_PERM_CONSISTENT_READ, bit 0
PERMISSION_WRITE = 1  # BLK_PERM_WRITE, bit 1
_FLOCK = struct.Struct("hhqqi4x")  # struct flock on Linux: type, whence, start, len, pid

_IOV_MAX = min(os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 1024, 1024)
_ZERO_CHUNK = bytes(1 << 20)


class BlockImage:
    """A raw disk image, opened and checked at start-up."""

    def __init__(self, options: DriveOptions) -> None:
        path = options.file
        self.path = path
        self.readonly = options.readonly
        flags = (os.O_RDONLY if options.readonly else os.O_RDWR) | os.O_CLOEXEC
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            raise LoadError(f"{path}: no such disk image") from None
        except PermissionError:
            hint = "" if options.readonly else " (readonly=on for a read-only image)"
            raise LoadError(f"{path}: permission denied{hint}") from None
        except OSError as error:
            raise LoadError(f"{path}: cannot open disk image: {error.strerror}") from None
        try:
            info = os.fstat(fd)
            if stat.S_ISREG(info.st_mode):
                size = info.st_size
            elif stat.S_ISBLK(info.st_mode):
                size = os.lseek(fd, 0, os.SEEK_END)
            else:
                raise LoadError(f"{path}: not a regular file or block device")
            if size == 0:
                raise LoadError(f"{path}: the disk image is empty")
            if size % SECTOR_SIZE:
                raise LoadError(
                    f"{path}: image size {size} is not a multiple of {SECTOR_SIZE} bytes"
                )
            lock_image(fd, path, readonly=options.readonly)
            try:
                os.pread(fd, SECTOR_SIZE, 0)
            except OSError as error:
                raise LoadError(f"{path}: cannot read the image: {error.strerror}") from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.size = size

    @property
    def sectors(self) -> int:
        return self.size // SECTOR_SIZE

    # the I/O the device does, in one place so an overlay (overlay.py) can redirect it
    def read_into(self, views: list[memoryview], offset: int) -> None:
        _transfer(os.preadv, self.fd, views, offset)

    def write_from(self, views: list[memoryview], offset: int) -> None:
        _transfer(os.pwritev, self.fd, views, offset)

    def discard(self, offset: int, length: int) -> None:
        _discard(self.fd, offset, length)

    def write_zeroes(self, offset: int, length: int, *, unmap: bool) -> None:
        _write_zeroes(self.fd, offset, length, unmap=unmap)

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def lock_image(fd: int, path: str, *, readonly: bool) -> None:
    """Lock an open image as QEMU does (see PERM_LOCK_BASE): a writer uses consistent reads
    and writes, a reader consistent reads; neither lets anyone else write.  Raises LoadError
    when another process (rvh or QEMU) holds the image in a conflicting way."""
    used = (
        [PERMISSION_CONSISTENT_READ] if readonly else [PERMISSION_CONSISTENT_READ, PERMISSION_WRITE]
    )
    unshared = [PERMISSION_WRITE]
    try:
        for permission in used:
            _ofd_lock(fd, PERM_LOCK_BASE + permission)
        for permission in unshared:
            _ofd_lock(fd, UNSHARED_LOCK_BASE + permission)
        conflicts = [
            permission for permission in used if _ofd_locked(fd, UNSHARED_LOCK_BASE + permission)
        ] + [permission for permission in unshared if _ofd_locked(fd, PERM_LOCK_BASE + permission)]
    except OSError as error:
        if error.errno in (errno.EAGAIN, errno.EACCES):
            conflicts = [PERMISSION_WRITE]
        else:
            raise LoadError(f"{path}: cannot lock the image: {error.strerror}") from None
    if conflicts:
        raise LoadError(
            f"{path}: the image is in use by another process (rvh or QEMU)"
            + ("" if readonly else "; readonly=on shares it with other readers")
        )


def _ofd_lock(fd: int, byte: int) -> None:
    """A shared lock on one byte, owned by the open file description (F_OFD_SETLK): it
    lasts until the descriptor is closed and conflicts with other descriptions, in this
    process too."""
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(fcntl.F_RDLCK, os.SEEK_SET, byte, 1, 0))


def _ofd_locked(fd: int, byte: int) -> bool:
    """Whether another open file description holds any lock on ``byte`` (F_OFD_GETLK asks
    whether an exclusive lock could be taken; our own locks never conflict with it)."""
    probe = _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, byte, 1, 0)
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, probe)
    return _FLOCK.unpack(answer)[0] != fcntl.F_UNLCK


@dataclass(slots=True)
class Request:
    head: int
    type: int
    sector: int
    data: list[tuple[int, int]]  # IN and GET_ID: writable data; OUT: readable data
    length: int
    fill: list[tuple[int, int]]  # every writable byte before the status byte
    status_host: int
    used_length: int
    segments: list[tuple[int, int, int]] = field(default_factory=list)
    status: int = _PENDING
    error: str = ""


def _request_record(request: Request) -> dict[str, object]:
    return dataclasses.asdict(request)  # tuples become lists in the VM file's JSON


def _request(record: dict) -> Request:
    def pairs(items: list) -> list[tuple[int, int]]:
        return [(int(host), int(length)) for host, length in items]

    return Request(
        head=int(record["head"]),
        type=int(record["type"]),
        sector=int(record["sector"]),
        data=pairs(record["data"]),
        length=int(record["length"]),
        fill=pairs(record["fill"]),
        status_host=int(record["status_host"]),
        used_length=int(record["used_length"]),
        segments=[(int(a), int(b), int(c)) for a, b, c in record["segments"]],
        status=int(record["status"]),
        error=str(record["error"]),
    )


def open_image(options: DriveOptions) -> BlockImage:
    """The drive's image: the raw file, or the file under a copy-on-write overlay
    (``snapshot=on``, ``overlay=FILE``: :mod:`rvh.devices.virtio.overlay`)."""
    if options.snapshot or options.overlay:
        from rvh.devices.virtio.overlay import OverlayImage

        return OverlayImage(options)
    return BlockImage(options)


def default_serial(options: DriveOptions) -> bytes:
    name = options.serial or options.id or os.path.basename(options.file)
    return name.encode("ascii", "replace")[:SERIAL_LENGTH]


class VirtioBlk(VirtioMmioDevice):
    """virtio-blk on one image: ``VirtioBlk(parse_drive("file=disk.img"), bus=bus, irq=...)``."""

    device_id = DEVICE_ID_BLOCK

    def __init__(
        self,
        drive: DriveOptions,
        *,
        bus: Bus,
        name: str = "virtio-blk",
        irq: Callable[[bool], None] | None = None,
        log: Callable[[str], None] | None = None,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.drive = drive
        self.image = open_image(drive)
        features = (
            VIRTIO_BLK_F_SEG_MAX
            | VIRTIO_BLK_F_BLK_SIZE
            | VIRTIO_BLK_F_FLUSH
            | VIRTIO_BLK_F_CONFIG_WCE
        )
        if drive.readonly:
            features |= VIRTIO_BLK_F_RO
        else:
            features |= VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES
        super().__init__(
            name=name,
            bus=bus,
            queue_sizes=[queue_size],
            features=features,
            config_size=CONFIG_SIZE,
            irq=irq,
            log=log,
        )
        self.serial = default_serial(drive)
        self.writethrough = True  # until features are negotiated
        self._inflight: threading.Event | None = None
        # virtual timing: (due ns, sequence, generation, batch) in due order
        self._virtual_pending: list[tuple[int, int, tuple[int, int], list[Request]]] = []
        self._virtual_sequence = 0
        self.stats = {
            "reads": 0,
            "writes": 0,
            "bytes_read": 0,
            "bytes_written": 0,
            "flushes": 0,
            "syncs": 0,
            "discards": 0,
            "write_zeroes": 0,
            "get_id": 0,
            "ioerr": 0,
            "unsupp": 0,
            "batches": 0,
        }
        self.device_reset()

    # ---- configuration space -------------------------------------------------------------
    def device_reset(self) -> None:
        config = self.config
        struct.pack_into("<Q", config, CONFIG_CAPACITY, self.image.sectors)
        struct.pack_into("<I", config, CONFIG_SEG_MAX, self.queues[0].max_size - 2)
        struct.pack_into("<I", config, CONFIG_BLK_SIZE, SECTOR_SIZE)
        # "The cache mode after reset can be either writeback or writethrough": cache= picks
        config[CONFIG_WRITEBACK] = 1 if self.drive.cache == "writeback" else 0
        struct.pack_into("<H", config, CONFIG_NUM_QUEUES, 1)
        if not self.drive.readonly:
            struct.pack_into(
                "<III",
                config,
                CONFIG_MAX_DISCARD_SECTORS,
                MAX_DISCARD_SECTORS,
                MAX_DISCARD_SEGMENTS,
                DISCARD_SECTOR_ALIGNMENT,
            )
            struct.pack_into(
                "<II",
                config,
                CONFIG_MAX_WRITE_ZEROES_SECTORS,
                MAX_WRITE_ZEROES_SECTORS,
                MAX_WRITE_ZEROES_SEGMENTS,
            )
            config[CONFIG_WRITE_ZEROES_MAY_UNMAP] = 1
        self.writethrough = True

    def features_accepted(self) -> None:
        # 5.2.5.2: "If VIRTIO_BLK_F_CONFIG_WCE is negotiated but VIRTIO_BLK_F_FLUSH is not,
        # the device MUST initialize writeback to 0."
        if self.negotiated(VIRTIO_BLK_F_CONFIG_WCE) and not self.negotiated(VIRTIO_BLK_F_FLUSH):
            self.config[CONFIG_WRITEBACK] = 0
        self._update_cache_mode()

    def _update_cache_mode(self) -> None:
        """5.2.6.1: writes must be stable at completion unless the driver can flush and the
        cache is in writeback mode."""
        if not self.negotiated(VIRTIO_BLK_F_FLUSH):
            self.writethrough = True  # case 1
        elif self.negotiated(VIRTIO_BLK_F_CONFIG_WCE):
            self.writethrough = self.config[CONFIG_WRITEBACK] == 0  # case 2
        else:
            self.writethrough = self.drive.cache == "writethrough"

    def config_write(self, offset: int, size: int, value: int) -> None:
        # only ``writeback`` is writable, and only with VIRTIO_BLK_F_CONFIG_WCE (5.2.5)
        if offset == CONFIG_WRITEBACK and size == 1 and self.negotiated(VIRTIO_BLK_F_CONFIG_WCE):
            self.config[CONFIG_WRITEBACK] = 1 if value & 0xFF else 0
            self._update_cache_mode()
        else:
            self.counters["bad_accesses"] += 1

    # ---- the request queue -----------------------------------------------------------------
    def start_workers(self, nursery: trio.Nursery) -> None:
        if not self.virtual_timing:
            nursery.start_soon(self._worker, self.queues[0])

    async def _worker(self, queue: SplitQueue) -> None:
        while True:
            await queue.notifier.wait()
            while await self._service(queue):
                pass

    async def _service(self, queue: SplitQueue) -> bool:
        """One batch: collect, do the host I/O off the trio thread, complete.  Returns whether
        the ring should be looked at again."""
        with self.lock:
            if not self.usable(queue):
                return False
            generation = (self.generation, queue.epoch)
            batch: list[Request] = []
            try:
                while len(batch) < queue.size:
                    chain = queue.pop()
                    if chain is None:
                        break
                    batch.append(self._parse(chain))
                if not batch:
                    return queue.enable_notifications()
                queue.suppress_notifications()
            except RingError as error:
                self.fail(f"queue {queue.index}: {error}")
                return False
            done = threading.Event()
            self._inflight = done
        try:
            await trio.to_thread.run_sync(self._execute, batch, done)
        finally:
            with self.lock:
                self._inflight = None
        with self.lock:
            self._complete(queue, batch, generation)
        return True

    def busy(self) -> bool:
        return self._inflight is not None or super().busy()

    # ---- virtual I/O timing: the host I/O at the notify, the completion at a fixed delay ----
    def virtual_kick(self, now_ns: int) -> None:
        queue = self.queues[0]
        if not queue.notifier.take():
            return
        with self.lock:
            if not self.usable(queue):
                return
            generation = (self.generation, queue.epoch)
            batch: list[Request] = []
            try:
                while True:
                    chain = queue.pop()
                    if chain is None:
                        # re-arm (EVENT_IDX writes avail_event); True if more came meanwhile
                        if not queue.enable_notifications():
                            break
                        continue
                    batch.append(self._parse(chain))
            except RingError as error:
                self.fail(f"queue {queue.index}: {error}")
                return
            if not batch:
                return
            # the guest is stopped at an instruction boundary: the data moves now, on this
            # thread, so what a write takes from RAM and where a read lands never depend on
            # the host's timing; only the used ring and the interrupt wait for the due time
            self._execute(batch, threading.Event())
        moved = sum(r.length for r in batch if r.type in (VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT))
        due = now_ns + VIRTUAL_LATENCY_NS + moved * VIRTUAL_NS_PER_BYTE
        self._virtual_sequence += 1
        self._virtual_pending.append((due, self._virtual_sequence, generation, batch))
        self._virtual_pending.sort(key=lambda entry: (entry[0], entry[1]))

    def virtual_due(self) -> int | None:
        return self._virtual_pending[0][0] if self._virtual_pending else None

    def virtual_complete(self, now_ns: int) -> None:
        pending = self._virtual_pending
        while pending and pending[0][0] <= now_ns:
            _, _, generation, batch = pending.pop(0)
            with self.lock:
                self._complete(self.queues[0], batch, generation)

    def quiesce(self) -> None:
        inflight = self._inflight
        if inflight is not None:
            inflight.wait()

    def _parse(self, chain: Chain) -> Request:
        """Check one request (5.2.6); decide IOERR/UNSUPP now when the header says so."""
        if chain.readable_bytes < REQUEST_HEADER.size or chain.writable_bytes < 1:
            raise RingError(f"request at head {chain.head} lacks its header or status byte")
        buffer = self.memory.buffer
        host, length = chain.readable[0]
        if length >= REQUEST_HEADER.size:
            request_type, _, sector = REQUEST_HEADER.unpack_from(buffer, host)
        else:
            header = _gather(buffer, chain.readable, 0, REQUEST_HEADER.size)
            request_type, _, sector = REQUEST_HEADER.unpack(header)
        # the status byte is the last writable byte; every writable byte before it is data
        status_host, status_length = chain.writable[-1]
        status_host += status_length - 1
        fill = chain.writable[:-1]
        if status_length > 1:
            fill = [*fill, (chain.writable[-1][0], status_length - 1)]
        if request_type in (VIRTIO_BLK_T_IN, VIRTIO_BLK_T_GET_ID):
            data, data_length = fill, chain.writable_bytes - 1
        else:
            data = _skip(chain.readable, REQUEST_HEADER.size)
            data_length = chain.readable_bytes - REQUEST_HEADER.size
        request = Request(
            chain.head,
            request_type,
            sector,
            data,
            data_length,
            fill,
            status_host,
            chain.writable_bytes,
        )
        request.status = self._check(request)
        return request

    def _check(self, request: Request) -> int:
        kind = request.type
        if kind in (VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT):
            # 5.2.6.1: "A device MUST set the status byte to VIRTIO_BLK_S_IOERR for a write
            # request if the VIRTIO_BLK_F_RO feature if offered, and MUST NOT write any data."
            if kind == VIRTIO_BLK_T_OUT and self.image.readonly:
                return VIRTIO_BLK_S_IOERR
            if request.length % SECTOR_SIZE or not self._in_range(
                request.sector, request.length // SECTOR_SIZE
            ):
                return VIRTIO_BLK_S_IOERR
            return _PENDING
        if kind in (VIRTIO_BLK_T_FLUSH, VIRTIO_BLK_T_GET_ID):
            return _PENDING
        if kind in (VIRTIO_BLK_T_DISCARD, VIRTIO_BLK_T_WRITE_ZEROES):
            return self._check_segments(request)
        return VIRTIO_BLK_S_UNSUPP  # GET_LIFETIME, SECURE_ERASE, zoned commands, unknown

    def _check_segments(self, request: Request) -> int:
        discard = request.type == VIRTIO_BLK_T_DISCARD
        feature = VIRTIO_BLK_F_DISCARD if discard else VIRTIO_BLK_F_WRITE_ZEROES
        if not self.negotiated(feature):
            return VIRTIO_BLK_S_UNSUPP
        if self.image.readonly:
            return VIRTIO_BLK_S_IOERR
        count, rest = divmod(request.length, SEGMENT.size)
        if rest or not count:
            return VIRTIO_BLK_S_IOERR
        if count > (MAX_DISCARD_SEGMENTS if discard else MAX_WRITE_ZEROES_SEGMENTS):
            return VIRTIO_BLK_S_UNSUPP
        payload = _gather(self.memory.buffer, request.data, 0, request.length)
        limit = MAX_DISCARD_SECTORS if discard else MAX_WRITE_ZEROES_SECTORS
        for sector, sectors, flags in SEGMENT.iter_unpack(payload):
            # 5.2.6.2: "The device MUST set the status byte to VIRTIO_BLK_S_UNSUPP for discard
            # and write zeroes commands if any unknown flag is set.  Furthermore, the device
            # MUST set the status byte to VIRTIO_BLK_S_UNSUPP for discard commands if the
            # unmap flag is set."
            if flags & ~VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP or (discard and flags):
                return VIRTIO_BLK_S_UNSUPP
            if sectors > limit:
                return VIRTIO_BLK_S_UNSUPP
            if not self._in_range(sector, sectors):
                return VIRTIO_BLK_S_IOERR
            request.segments.append((sector, sectors, flags))
        return _PENDING

    def _in_range(self, sector: int, sectors: int) -> bool:
        return sector + sectors <= self.image.sectors

    # ---- host I/O (runs in a worker thread) ----------------------------------------------
    def _execute(self, batch: list[Request], done: threading.Event) -> None:
        """Perform the batch in order; never touches device state other than the requests."""
        try:
            image = self.image
            buffer = self.memory.buffer
            unsynced: list[Request] = []
            for request in batch:
                if request.status != _PENDING:
                    continue
                try:
                    kind = request.type
                    if kind == VIRTIO_BLK_T_IN:
                        views = [buffer[h : h + n] for h, n in request.data]
                        image.read_into(views, request.sector * SECTOR_SIZE)
                    elif kind == VIRTIO_BLK_T_OUT:
                        views = [buffer[h : h + n] for h, n in request.data]
                        image.write_from(views, request.sector * SECTOR_SIZE)
                        unsynced.append(request)
                    elif kind == VIRTIO_BLK_T_FLUSH:
                        if not self.image.readonly:
                            self._sync()
                        unsynced.clear()  # earlier writes are durable now
                    elif kind == VIRTIO_BLK_T_GET_ID:
                        _scatter(buffer, request.data, self.serial)
                    elif kind == VIRTIO_BLK_T_DISCARD:
                        for sector, sectors, _ in request.segments:
                            image.discard(sector * SECTOR_SIZE, sectors * SECTOR_SIZE)
                    elif kind == VIRTIO_BLK_T_WRITE_ZEROES:
                        for sector, sectors, flags in request.segments:
                            image.write_zeroes(
                                sector * SECTOR_SIZE,
                                sectors * SECTOR_SIZE,
                                unmap=bool(flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
                            )
                        unsynced.append(request)
                    request.status = VIRTIO_BLK_S_OK
                except OSError as error:
                    request.status = VIRTIO_BLK_S_IOERR
                    request.error = error.strerror or str(error)
            if unsynced and self.writethrough:
                try:
                    self._sync()
                except OSError as error:
                    for request in unsynced:
                        request.status = VIRTIO_BLK_S_IOERR
                        request.error = error.strerror or str(error)
        finally:
            done.set()

    def _sync(self) -> None:
        self.image.sync()
        self.stats["syncs"] += 1

    # ---- completion (trio thread, under the lock) ------------------------------------------
    def _complete(
        self, queue: SplitQueue, batch: list[Request], generation: tuple[int, int]
    ) -> None:
        memory = self.memory
        buffer = memory.buffer
        for request in batch:
            if request.type in (VIRTIO_BLK_T_IN, VIRTIO_BLK_T_GET_ID):
                for host, length in request.fill:
                    memory.written(host, length)  # the I/O thread wrote there
        if generation != (self.generation, queue.epoch) or not queue.ready:
            return  # reset, or the queue disabled or moved: these requests no longer exist
        stats = self.stats
        stats["batches"] += 1
        for request in batch:
            status = request.status
            # used len counts every writable byte, so none is left stale: data the request
            # did not produce (a failed read, writable bytes of a write) reads as zeroes
            reads = request.type in (VIRTIO_BLK_T_IN, VIRTIO_BLK_T_GET_ID)
            if request.fill and (status != VIRTIO_BLK_S_OK or not reads):
                _zero(buffer, request.fill)
                for host, length in request.fill:
                    memory.written(host, length)
            buffer[request.status_host] = status
            memory.written(request.status_host, 1)
            queue.put(request.head, request.used_length)
            self._count(request)
            if status == VIRTIO_BLK_S_IOERR:
                stats["ioerr"] += 1
                if request.error:
                    self.log(
                        f"{self.name}: {self.image.path}: {_describe(request)}: {request.error}"
                    )
            elif status == VIRTIO_BLK_S_UNSUPP:
                stats["unsupp"] += 1
        if queue.publish():
            self.used_buffer_notification()

    def _count(self, request: Request) -> None:
        if request.status != VIRTIO_BLK_S_OK:
            return
        stats = self.stats
        kind = request.type
        if kind == VIRTIO_BLK_T_IN:
            stats["reads"] += 1
            stats["bytes_read"] += request.length
        elif kind == VIRTIO_BLK_T_OUT:
            stats["writes"] += 1
            stats["bytes_written"] += request.length
        elif kind == VIRTIO_BLK_T_FLUSH:
            stats["flushes"] += 1
        elif kind == VIRTIO_BLK_T_GET_ID:
            stats["get_id"] += 1
        elif kind == VIRTIO_BLK_T_DISCARD:
            stats["discards"] += 1
        elif kind == VIRTIO_BLK_T_WRITE_ZEROES:
            stats["write_zeroes"] += 1

    def save_device_state(self) -> dict[str, object]:
        current = (self.generation, self.queues[0].epoch)
        return {
            "stats": self.stats,
            "writethrough": self.writethrough,
            # virtual timing: batches whose data moved and whose completion is still due (a
            # batch of an earlier generation is dropped at completion: saved as stale)
            "virtual_pending": [
                [due, sequence, generation == current, [_request_record(r) for r in batch]]
                for due, sequence, generation, batch in self._virtual_pending
            ],
        }

    def restore_device_state(self, saved: dict) -> None:
        for key in self.stats:
            self.stats[key] = int(saved["stats"][key])
        self.writethrough = bool(saved["writethrough"])
        current = (self.generation, self.queues[0].epoch)
        stale = (self.generation - 1, self.queues[0].epoch)
        self._virtual_pending = [
            (int(due), int(sequence), current if live else stale, [_request(r) for r in batch])
            for due, sequence, live, batch in saved.get("virtual_pending", [])
        ]
        if self._virtual_pending and not self.virtual_timing:
            raise ValueError("virtio-blk: completions due in virtual time, but host timing")
        self._virtual_sequence = max((p[1] for p in self._virtual_pending), default=0)

    def close(self) -> None:
        self.image.close()

    def statistics(self) -> dict[str, object]:
        return {**super().statistics(), **self.stats, "writethrough": self.writethrough}


def _describe(request: Request) -> str:
    names = {VIRTIO_BLK_T_IN: "read", VIRTIO_BLK_T_OUT: "write", VIRTIO_BLK_T_FLUSH: "flush"}
    name = names.get(request.type, f"request type {request.type}")
    return f"{name} at sector {request.sector}"


# ---- scatter-gather helpers -----------------------------------------------------------------
def _skip(segments: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    """The segments after the first ``count`` bytes."""
    result = []
    for host, length in segments:
        if count >= length:
            count -= length
            continue
        result.append((host + count, length - count))
        count = 0
    return result


def _gather(buffer: memoryview, segments: list[tuple[int, int]], skip: int, count: int) -> bytes:
    parts = []
    for host, length in _skip(segments, skip):
        take = min(length, count)
        parts.append(bytes(buffer[host : host + take]))
        count -= take
        if not count:
            break
    return b"".join(parts)


def _scatter(buffer: memoryview, segments: list[tuple[int, int]], data: bytes) -> None:
    """Copy ``data`` into the segments, NUL-padding the rest of them."""
    offset = 0
    for host, length in segments:
        piece = data[offset : offset + length]
        buffer[host : host + len(piece)] = piece
        if len(piece) < length:
            buffer[host + len(piece) : host + length] = bytes(length - len(piece))
        offset += length


def _zero(buffer: memoryview, segments: list[tuple[int, int]]) -> None:
    for host, length in segments:
        buffer[host : host + length] = bytes(length)


def _transfer(call: Callable, fd: int, views: list[memoryview], offset: int) -> None:
    """``os.preadv``/``os.pwritev`` the whole of ``views`` at ``offset``, however short the
    transfers the kernel makes."""
    while views:
        chunk = views[:_IOV_MAX]
        wanted = sum(len(v) for v in chunk)
        moved = call(fd, chunk, offset)
        if moved <= 0 and wanted:
            raise OSError(errno.EIO, "short transfer (the image shrank?)")
        offset += moved
        if moved == wanted:
            views = views[_IOV_MAX:]
            continue
        # partial: drop what moved and carry on with the rest
        rest = []
        for view in views:
            if moved >= len(view):
                moved -= len(view)
                continue
            rest.append(view[moved:])
            moved = 0
        views = rest


# fallocate(2) modes (linux/falloc.h)
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_FALLOC_FL_ZERO_RANGE = 0x10


def _load_fallocate() -> Callable[[int, int, int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        function = libc.fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


_fallocate = _load_fallocate()


def _try_fallocate(fd: int, mode: int, offset: int, length: int) -> bool:
    """True if the file system did it; False if it cannot (then the caller falls back)."""
    if _fallocate is None or not length:
        return _fallocate is not None
    if _fallocate(fd, mode, offset, length) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.ENODEV):
        return False
    raise OSError(code, os.strerror(code))


def _discard(fd: int, offset: int, length: int) -> None:
    """5.2.6.2: the device MAY deallocate the range: punch a hole where the host can."""
    _try_fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length)


def _write_zeroes(fd: int, offset: int, length: int, *, unmap: bool) -> None:
    """5.2.6.2: afterwards the range reads as zeroes, whether or not it was deallocated."""
    if unmap and _try_fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length):
        return
    if _try_fallocate(fd, _FALLOC_FL_ZERO_RANGE | _FALLOC_FL_KEEP_SIZE, offset, length):
        return
    while length:
        chunk = min(length, len(_ZERO_CHUNK))
        written = os.pwrite(fd, memoryview(_ZERO_CHUNK)[:chunk], offset)
        if written <= 0:
            raise OSError(errno.EIO, "short write")
        offset += written
        length -= written

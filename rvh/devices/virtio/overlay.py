"""A copy-on-write overlay over a raw disk image: ``--drive file=BASE,snapshot=on`` (QEMU's
spelling: the writes go to a throw-away overlay) and ``--drive file=BASE,overlay=FILE`` (a kept
one, created when missing and reused when present).

The overlay is a sparse file as large as the base.  Which of its 4 KiB clusters hold data is
what the file system says (``SEEK_DATA``/``SEEK_HOLE``), so a kept overlay needs no separate
map: a hole reads from the base, data from the overlay.  A write of part of a cluster the
overlay does not hold yet first copies that cluster up from the base.  The base is opened
read-only and locked as a reader (QEMU's locks, ``blk.lock_image``), so any number of clones
share one base while nobody may write it.  A discard writes zeroes into the overlay (a hole
there would bring the base's data back), so the guest sees what a raw image shows.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import tempfile

import numpy as np

from rvh.devices.virtio.blk import BlockImage, _transfer, lock_image
from rvh.devices.virtio.options import DriveOptions
from rvh.errors import LoadError

CLUSTER = 4096
_ZEROES = bytes(1 << 20)


class OverlayImage(BlockImage):
    def __init__(self, options: DriveOptions) -> None:
        super().__init__(dataclasses.replace(options, readonly=True))  # the base
        self.readonly = options.readonly  # what the guest sees
        self.throwaway = options.snapshot
        try:
            if options.overlay:
                self.overlay_path = options.overlay
                self.overlay_fd = _open_kept(options.overlay, self.size)
            else:
                self.overlay_path = ""
                self.overlay_fd = _open_throwaway(self.size)
            self.allocated = allocation_map(self.overlay_fd, self.size)
        except BaseException:
            super().close()
            raise

    # ---- I/O (called from the device's I/O thread, one batch at a time) -------------------
    def read_into(self, views: list[memoryview], offset: int) -> None:
        length = sum(len(view) for view in views)
        for start, end, in_overlay in self._runs(offset, length):
            part = _slice(views, start - offset, end - start)
            _transfer(os.preadv, self.overlay_fd if in_overlay else self.fd, part, start)

    def write_from(self, views: list[memoryview], offset: int) -> None:
        length = sum(len(view) for view in views)
        if not length:
            return
        first, last = offset // CLUSTER, (offset + length - 1) // CLUSTER
        for cluster in {first, last}:
            start = cluster * CLUSTER
            covered = offset <= start and start + CLUSTER <= offset + length
            if not self.allocated[cluster] and not covered:
                self._copy_up(cluster)
        _transfer(os.pwritev, self.overlay_fd, views, offset)
        self.allocated[first : last + 1] = True

    def _copy_up(self, cluster: int) -> None:
        start = cluster * CLUSTER
        data = os.pread(self.fd, min(CLUSTER, self.size - start), start)
        os.pwrite(self.overlay_fd, data, start)
        self.allocated[cluster] = True

    def discard(self, offset: int, length: int) -> None:
        # a hole in the overlay would bring the base's data back: zeroes read as a discarded
        # range of a raw image does once its hole is punched
        self.write_zeroes(offset, length, unmap=True)

    def write_zeroes(self, offset: int, length: int, *, unmap: bool) -> None:
        while length:
            count = min(length, len(_ZEROES))
            self.write_from([memoryview(_ZEROES)[:count]], offset)
            offset += count
            length -= count

    def sync(self) -> None:
        os.fdatasync(self.overlay_fd)

    def close(self) -> None:
        if self.overlay_fd >= 0:
            os.close(self.overlay_fd)
            self.overlay_fd = -1
        super().close()

    def _runs(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """[offset, offset + length) as byte ranges that lie wholly in the overlay or not."""
        if not length:
            return []
        first, last = offset // CLUSTER, (offset + length - 1) // CLUSTER
        flags = self.allocated[first : last + 1]
        changes = np.flatnonzero(flags[1:] != flags[:-1]) + 1
        runs = []
        start = offset
        for index in [*changes.tolist(), len(flags)]:
            end = min(offset + length, (first + index) * CLUSTER)
            runs.append((start, end, bool(self.allocated[(start // CLUSTER)])))
            start = end
        return runs


def allocation_map(fd: int, size: int) -> np.ndarray:
    """The clusters of ``fd`` that hold data, as the file system reports them."""
    clusters = (size + CLUSTER - 1) // CLUSTER
    allocated = np.zeros(clusters, dtype=bool)
    position = 0
    while position < size:
        try:
            data = os.lseek(fd, position, os.SEEK_DATA)
        except OSError as error:
            if error.errno == errno.ENXIO:
                break
            raise
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
        allocated[data // CLUSTER : (hole + CLUSTER - 1) // CLUSTER] = True
        position = hole
    return allocated


def overlay_digest(fd: int, size: int) -> str:
    """SHA-256 of what an overlay holds: which clusters, and their bytes."""
    allocated = allocation_map(fd, size)
    digest = hashlib.sha256()
    clusters = np.flatnonzero(allocated)
    digest.update(clusters.astype("<u8").tobytes())
    for cluster in clusters.tolist():
        digest.update(os.pread(fd, CLUSTER, cluster * CLUSTER))
    return digest.hexdigest()


def _open_kept(path: str, size: int) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise LoadError(f"overlay {path}: cannot open ({error.strerror})") from None
    try:
        lock_image(fd, path, readonly=False)
        current = os.fstat(fd).st_size
        if current == 0:
            os.ftruncate(fd, size)
            _check_sparse(fd, path)
        elif current != size:
            raise LoadError(
                f"overlay {path}: {current} bytes, but its base has {size}: another disk's?"
            )
    except OSError as error:
        os.close(fd)
        raise LoadError(f"overlay {path}: {error.strerror}") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_throwaway(size: int) -> int:
    """An unlinked file in the temporary directory: gone when rvh exits, however it exits."""
    try:
        fd, path = tempfile.mkstemp(prefix="rvh-overlay-")
    except OSError as error:
        raise LoadError(f"snapshot=on: cannot create an overlay ({error.strerror})") from None
    os.unlink(path)
    try:
        os.ftruncate(fd, size)
        _check_sparse(fd, f"snapshot=on overlay in {os.path.dirname(path)}")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _check_sparse(fd: int, what: str) -> None:
    """A new overlay must be all holes, or it would hide the whole base."""
    try:
        os.lseek(fd, 0, os.SEEK_DATA)
    except OSError as error:
        if error.errno == errno.ENXIO:
            return
        raise
    raise LoadError(f"{what}: the file system cannot keep sparse files, which an overlay needs")


def _slice(views: list[memoryview], skip: int, count: int) -> list[memoryview]:
    """The bytes [skip, skip + count) of the concatenation of ``views``."""
    parts = []
    for view in views:
        if skip >= len(view):
            skip -= len(view)
            continue
        take = min(len(view) - skip, count)
        parts.append(view[skip : skip + take])
        count -= take
        skip = 0
        if not count:
            break
    return parts

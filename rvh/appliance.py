"""Virtual appliances: a saved VM and its disks in one file (``rvh appliance pack``), started
with ``rvh run APPLIANCE.rvha``.

An ``.rvha`` is a tar archive (POSIX format, uncompressed) holding:

- ``appliance.toml``: the manifest (format, name, rvh version, the machine in words, and each
  disk's device, member and SHA-256);
- ``vm.rvh``: the VM file up to its RAM (header and sections, :mod:`rvh.snapshot`);
- ``ram.pages``: the VM's non-zero memory pages, in the order of the file's page index (tar
  keeps no holes, so the zero pages are left out here instead);
- ``disks/virtio-blkN.img``: each disk image as it was when the VM was saved.

Starting one unpacks it into a temporary directory (the VM file rebuilt sparse, the disks as
files), checks it as any VM file is checked, runs the VM with each disk under a throw-away
overlay (``snapshot=on``), so the appliance never changes and every start is the same, and
removes the directory at once (the files stay open, and mapped, until the run ends).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tarfile
import tempfile
import time
import tomllib
from typing import TYPE_CHECKING, Any

import numpy as np

from rvh import __version__
from rvh.snapshot import (
    PAGE,
    SnapshotError,
    _check_disks,
    _describe,
    read_vm_file,
    restore_machine,
)

if TYPE_CHECKING:
    from rvh.machine import Machine

FORMAT = 1
MANIFEST = "appliance.toml"


def pack(out: str, vm_path: str, name: str | None = None) -> list[str]:
    """Bundle the VM file ``vm_path`` and its disks into ``out``; returns what it says."""
    vm = read_vm_file(vm_path)
    _check_disks(vm)
    disks = vm.one("DISK").record["drives"]
    if any(disk["overlay"] for disk in disks):
        raise SnapshotError(f"{vm_path}: a disk is an overlay; pack a VM on plain images")
    prefix_length = vm.file_bytes - len(vm.memory)
    with open(vm_path, "rb") as file:
        prefix = file.read(prefix_length)
    pages = vm.memory.reshape(-1, PAGE)[vm.pages].tobytes()
    name = name or os.path.splitext(os.path.basename(out))[0]
    lines = [
        "[appliance]",
        f"format = {FORMAT}",
        f"name = {_toml_string(name)}",
        f"rvh = {_toml_string(__version__)}",
        f"created = {_toml_string(time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))}",
        f"memory = {vm.conf['config']['memory']}",
        f"harts = {vm.conf['config']['harts']}",
        f"instructions = {vm.conf['steps']}",
        'snapshot = "vm.rvh"',
        'ram = "ram.pages"',
    ]
    for disk in disks:
        lines += [
            "",
            "[[disk]]",
            f"device = {_toml_string(disk['device'])}",
            f"file = {_toml_string('disks/' + disk['device'] + '.img')}",
            f"sha256 = {_toml_string(disk['sha256'])}",
        ]
    manifest = ("\n".join(lines) + "\n").encode()
    temporary = f"{out}.tmp{os.getpid()}"
    try:
        with tarfile.open(temporary, "w", format=tarfile.PAX_FORMAT) as archive:
            _add_bytes(archive, MANIFEST, manifest)
            _add_bytes(archive, "vm.rvh", prefix)
            _add_bytes(archive, "ram.pages", pages)
            for disk in disks:
                archive.add(disk["path"], arcname=f"disks/{disk['device']}.img")
        os.replace(temporary, out)
    except OSError as error:
        _remove(temporary)
        raise SnapshotError(f"{out}: cannot write ({error.strerror})") from None
    size = os.path.getsize(out)
    return [
        f"packed {out}: {name}, {len(vm.pages):,} RAM pages, {len(disks)} disk(s), "
        f"{size / 2**20:.1f} MiB"
    ]


def is_appliance(path: str) -> bool:
    return path.endswith(".rvha")


def start(path: str, **options: Any) -> Machine:
    """Unpack, check and restore an appliance; raises :class:`SnapshotError`."""
    try:
        archive = tarfile.open(path, "r:")
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such appliance") from None
    except (tarfile.TarError, OSError) as error:
        raise SnapshotError(f"{path}: not an rvh appliance ({_describe(error)})") from None
    with archive, tempfile.TemporaryDirectory(prefix="rvh-appliance-") as directory:
        try:
            manifest = tomllib.loads(_member(archive, path, MANIFEST).decode())
            header = manifest["appliance"]
            if int(header["format"]) > FORMAT:
                raise SnapshotError(
                    f"{path}: appliance format {header['format']} is newer than this rvh "
                    f"reads ({FORMAT})"
                )
            prefix = _member(archive, path, str(header["snapshot"]))
            pages = _member(archive, path, str(header["ram"]))
            disks = manifest.get("disk", [])
            placed = {}
            for disk in disks:
                data = _member(archive, path, str(disk["file"]))
                if hashlib.sha256(data).hexdigest() != disk["sha256"]:
                    raise SnapshotError(f"{path}: disk {disk['file']} is corrupted")
                target = os.path.join(directory, f"{disk['device']}.img")
                with open(target, "wb") as file:
                    file.write(data)
                placed[str(disk["device"])] = target
        except (KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as error:
            raise SnapshotError(f"{path}: not an rvh appliance ({_describe(error)})") from None
        except (tarfile.TarError, EOFError) as error:
            raise SnapshotError(f"{path}: truncated or corrupted ({_describe(error)})") from None
        except OSError as error:
            raise SnapshotError(f"{path}: cannot unpack ({error.strerror or error})") from None
        vm_path = os.path.join(directory, "vm.rvh")
        _rebuild_vm_file(path, vm_path, prefix, pages)
        vm = read_vm_file(vm_path)
        vm.path = path
        _relocate(vm, placed, path)
        return restore_machine(vm, **options)


def _rebuild_vm_file(path: str, vm_path: str, prefix: bytes, pages: bytes) -> None:
    """The sparse VM file again: the prefix, then each page at its place."""
    with open(vm_path, "wb") as file:
        file.write(prefix)
    fd = os.open(vm_path, os.O_RDONLY)
    try:
        page_numbers, memory_bytes = _prefix_index(path, fd)
    finally:
        os.close(fd)
    if len(pages) != len(page_numbers) * PAGE:
        raise SnapshotError(f"{path}: ram.pages holds {len(pages)} bytes, not the index's pages")
    with open(vm_path, "r+b") as file:
        for position, page in enumerate(page_numbers.tolist()):
            file.seek(len(prefix) + page * PAGE)
            file.write(pages[position * PAGE : (position + 1) * PAGE])
        file.truncate(len(prefix) + memory_bytes)


def _prefix_index(path: str, fd: int) -> tuple[np.ndarray, int]:
    from rvh.snapshot import HEADER, SECTION, _decode, _unpack

    # walk the sections to the page index without checking RAM (it is not there yet); the
    # full check runs on the rebuilt file
    try:
        head = os.pread(fd, HEADER.size + 4, 0)
        count = HEADER.unpack_from(head)[3]
        offset = HEADER.size + 4
        for _ in range(count):
            tag, encoding, stored, raw = SECTION.unpack_from(os.pread(fd, SECTION.size, offset))
            offset += SECTION.size + 4
            if tag == b"PIDX":
                _, arrays = _unpack(_decode(os.pread(fd, stored, offset), encoding, raw))
                pages = arrays["pages"]
            elif tag == b"RAM ":
                return pages, int(raw)
            offset += stored
    except (struct.error, ValueError, KeyError, UnboundLocalError) as error:
        raise SnapshotError(f"{path}: corrupted appliance ({_describe(error)})") from None
    raise SnapshotError(f"{path}: corrupted appliance (no RAM section)")


def _relocate(vm: Any, placed: dict[str, str], path: str) -> None:
    """Point the VM's disks at the unpacked images, each under a throw-away overlay."""
    from rvh.devices.virtio.options import split_options

    records = vm.one("DISK").record["drives"]
    if sorted(placed) != sorted(disk["device"] for disk in records):
        raise SnapshotError(f"{path}: the manifest's disks are not the VM's")
    by_device = {disk["device"]: disk for disk in records}
    drives = vm.conf["config"]["drives"]
    for index, text in enumerate(drives):
        device = f"virtio-blk{index}"
        image = placed[device]
        by_device[device]["path"] = image
        items = [item for item in split_options(text) if not item.startswith("file=")]
        items.insert(0, f"file={image}")
        items.append("snapshot=on")
        drives[index] = ",".join(item.replace(",", ",,") for item in items)


def _member(archive: tarfile.TarFile, path: str, name: str) -> bytes:
    try:
        member = archive.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise SnapshotError(f"{path}: not an rvh appliance (no {name})")
    return member.read()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass

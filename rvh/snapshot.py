"""VM files: a whole machine saved to one file, and restored from it exactly.

Every piece of machine state is an array or a small Python record (``docs/architecture.md``),
and time is virtual, so a restored machine continues bit for bit as the uninterrupted one
would: same output, same exit status, same instruction count and ``--stats`` totals.

The file (``docs/vm-files.md`` has the full table)::

    header   magic "RVHVM\\r\\n\\x1a", format version u16, flags u16, section count u32, crc32
    section  tag (4 ASCII), encoding u8, 3 zero bytes, stored bytes u64, raw bytes u64, crc32
             of the section header and its stored bytes; then the stored bytes
    ...      CONF (configuration and boot, JSON), MACH (machine arrays: CLINT, interrupt lines,
             page flags, decode cache; kernel exit counts; where the round of harts stood),
             HART x n (state array: registers, pc, privilege, V, counters, every CSR including
             H and FP, f0-f31; and the TLB), DEVS (UART, PLIC, HTIF, SBI, virtio transports,
             queues and devices), DISK (each image: path, size, SHA-256), PIDX (the non-zero
             pages of memory and a crc32 of each), all zlib-compressed; and last
    RAM      memory (RAM, then the boot ROM) verbatim at a 4 KiB-aligned offset, zero pages left
             as holes, so the file is sparse and can be mapped copy-on-write.

The caches are saved rather than rebuilt (the TLB, the decode cache and its page flags): they
are a few MiB before compression and keep the statistics of a restored run equal to those of
the uninterrupted run.  Section payloads that hold arrays are a u32 JSON length, JSON (the
record, plus each array's dtype, length and offset) and the arrays' bytes.

Restoring checks the whole file before anything is built: magic, version, every checksum,
every length, every array's shape, every non-zero page's crc and that the pages the index calls
zero are zero, and each disk's content hash.  Any failure is one line and status 125
(:class:`SnapshotError`), and nothing is half restored.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import json
import mmap
import os
import struct
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rvh import __version__
from rvh import config as C
from rvh.bus import memory_size
from rvh.cpu import layout as L
from rvh.errors import LoadError, RvhError

if TYPE_CHECKING:
    from rvh.machine import Machine, SaveReport

MAGIC = b"RVHVM\r\n\x1a"  # CR LF and ^Z show a file mangled as text, as PNG's signature does
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sHHI")  # magic, version, flags, section count (then its crc32)
SECTION = struct.Struct("<4sB3xQQ")  # tag, encoding, stored bytes, raw bytes (then crc32)
CRC = struct.Struct("<I")
ENCODING_RAW = 0
ENCODING_ZLIB = 1
ENCODING_PAGES = 2  # the RAM section: verbatim, page aligned, zero pages as holes
ENCODING_NAMES = {ENCODING_RAW: "raw", ENCODING_ZLIB: "zlib", ENCODING_PAGES: "pages"}
PAGE = L.PAGE_SIZE
# sections in the order they are written; HART repeats once per hart, RAM comes last
TAGS = (b"CONF", b"MACH", b"HART", b"DEVS", b"DISK", b"PIDX", b"RAM ")
MAX_SECTION = 1 << 30  # no metadata section comes near this: a larger length is corruption
_ARRAY_DTYPES = {"<i8": np.int64, "|u1": np.uint8, "<u4": np.uint32}
# what the saved arrays must look like for this rvh's kernel
LAYOUT = {
    "state": L.STATE_SIZE,
    "tlb": L.TLB_ALL_CONTEXTS * L.TLB_SETS * L.TLB_FIELDS,
    "machine": L.MACHINE_SIZE,
    "decode_cache": L.DECODE_CACHE_ENTRIES * L.DC_FIELDS,
}


class SnapshotError(LoadError):
    """A VM file that cannot be restored (status 125, like any image that cannot be loaded)."""


class SnapshotWriteError(RvhError):
    """The VM file could not be written."""


# ---- saving ------------------------------------------------------------------------------
def save_machine(machine: Machine, path: str) -> SaveReport:
    """Write ``machine`` to ``path`` (through a temporary file, renamed at the end, so a
    crash leaves the old file or none).  The machine must be between kernel calls, with no
    device request in flight (``Machine._save`` sees to both)."""
    from rvh.machine import SaveReport

    start = time.perf_counter()
    memory = machine.bus.memory
    prefix, pages = vm_file_prefix(machine)
    ram_offset = len(prefix)
    temporary = f"{path}.tmp{os.getpid()}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise SnapshotWriteError(f"--save {path}: cannot write ({error.strerror})") from None
    try:
        os.write(fd, prefix)
        stored_bytes = ram_offset + len(pages) * PAGE
        for first, count in _runs(pages):
            view = memory[first * PAGE : (first + count) * PAGE]
            os.pwrite(fd, view.data, ram_offset + first * PAGE)
        os.ftruncate(fd, ram_offset + len(memory))  # the zero pages after the last: a hole
        os.close(fd)
        fd = -1
        os.replace(temporary, path)
    except OSError as error:
        if fd >= 0:
            os.close(fd)
        _remove(temporary)
        raise SnapshotWriteError(f"--save {path}: cannot write ({error.strerror})") from None
    return SaveReport(
        path=path,
        instructions=machine.steps,
        file_bytes=ram_offset + len(memory),
        stored_bytes=stored_bytes,
        seconds=time.perf_counter() - start,
    )


def vm_file_prefix(machine: Machine) -> tuple[bytes, np.ndarray]:
    """Everything of a VM file before its RAM pages (header, sections, the RAM section's
    header and the padding to its page-aligned start), and the non-zero pages."""
    memory = machine.bus.memory
    words = memory.view(np.uint64).reshape(-1, PAGE // 8)
    pages = np.flatnonzero(words.any(axis=1)).astype(np.uint32)
    by_page = memory.reshape(-1, PAGE)
    crcs = np.fromiter((zlib.crc32(by_page[p]) for p in pages), dtype=np.uint32, count=len(pages))
    sections = [(b"CONF", _json(_configuration(machine)))]
    sections.append((b"MACH", _pack(*_machine_record(machine))))
    for hart in machine.harts:
        sections.append(
            (b"HART", _pack({"hartid": hart.hartid}, {"state": hart.state, "tlb": hart.tlb}))
        )
    sections.append((b"DEVS", _json(_devices(machine))))
    sections.append((b"DISK", _json({"drives": _disks(machine)})))
    sections.append((b"PIDX", _pack({}, {"pages": pages, "crcs": crcs})))
    head = HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(sections) + 1)
    chunks = [head, CRC.pack(zlib.crc32(head))]
    for tag, raw in sections:
        stored = zlib.compress(raw, 6)
        chunks.append(_section_header(tag, ENCODING_ZLIB, stored, len(raw)))
        chunks.append(stored)
    chunks.append(_section_header(b"RAM ", ENCODING_PAGES, b"", len(memory)))
    prefix = b"".join(chunks)
    return prefix.ljust(_round_up(len(prefix), PAGE), b"\0"), pages


def _configuration(machine: Machine) -> dict[str, Any]:
    config = dataclasses.asdict(machine.config)
    for transient in ("max_instructions", "trace_path", "serial", "console_input"):
        config.pop(transient)
    config["drives"] = [_absolute_drive(text) for text in machine.config.drives]
    hart0 = machine.harts[0]
    return {
        "rvh": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "layout": LAYOUT,
        "config": config,
        "boot": _boot_record(machine),
        "steps": machine.steps,
        "retired": machine.instructions,
        "virtual_ns": int(hart0.state[L.TIME_NS]),
    }


def _absolute_drive(text: str) -> str:
    """A --drive option with its files as absolute paths, so a restore works from anywhere."""
    from rvh.devices.virtio.options import split_options

    items = []
    for item in split_options(text):
        key, equals, value = item.partition("=")
        if equals and key in ("file", "overlay"):
            item = f"{key}={os.path.realpath(value)}"
        items.append(item.replace(",", ",,"))
    return ",".join(items)


def _boot_record(machine: Machine) -> dict[str, Any]:
    from rvh.boot import BareElf, BuiltinSbiBoot, FirmwareBoot, HypervisorBoot

    recipe = machine.recipe
    record: dict[str, Any]
    if isinstance(recipe, HypervisorBoot):
        guests = [dataclasses.asdict(guest) for guest in recipe.guests]
        record = {"kind": "hyp", "path": recipe.path, "entry": recipe.entry, "guests": guests}
    elif isinstance(recipe, BuiltinSbiBoot):
        record = {"kind": "sbi", "path": recipe.path, "entry": recipe.entry}
    elif isinstance(recipe, FirmwareBoot):
        record = {"kind": "firmware", "firmware": recipe.firmware, "kernel": recipe.kernel}
    elif isinstance(recipe, BareElf):
        record = {"kind": "bare", "path": recipe.path}
    else:
        record = {"kind": "rom", "recipe": type(recipe).__name__ if recipe else None}
    htif = machine.htif
    record["htif"] = [htif.tohost, htif.fromhost] if htif is not None else None
    record["fdt_address"] = machine.fdt_address
    record["hint"] = (recipe.mode_hint() if recipe is not None else None) or machine.saved_mode_hint
    return record


def _machine_record(machine: Machine) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    record: dict[str, Any] = {
        "exit_counts": dict(machine.exit_counts),
        "mmio_counts": machine.bus.mmio_counts,
        "round": machine.round,
        "progress": {str(k): list(v) for k, v in machine.progress.items()},
    }
    fixed = machine.machine[: L.MACHINE_SIZE].copy()  # not the dirty bitmap that follows
    fixed[L.M_DIRTY_LOG] = 0  # a migration logs on the source only
    arrays: dict[str, np.ndarray] = {
        "machine": fixed,
        # the tier's page flags say where this run's jit tier has blocks: not the VM's state
        # (a file saved on either tier is the same, and a restore has no blocks installed)
        "page_flags": machine.bus.page_flags & np.uint8(~L.PAGE_FLAGS_OF_THE_TIER & 0xFF),
        "decode_cache": machine.bus.decode_cache,
    }
    return record, arrays


def _devices(machine: Machine) -> dict[str, Any]:
    sbi = machine.sbi
    return {
        "uart": machine.uart.save_state(),
        "plic": machine.plic.save_state(),
        "rtc": machine.rtc.save_state(),
        "htif": machine.htif.commands if machine.htif is not None else None,
        "sbi": None
        if sbi is None
        else {"calls": sbi.calls, "by_extension": {str(k): v for k, v in sbi.by_extension.items()}},
        "virtio": [{"name": device.name, **device.save_state()} for device in machine.virtio],
        "hubs": {name: hub.frames for name, hub in machine.hubs.items()},
        "iommu": machine.iommu.save_state() if machine.iommu is not None else None,
        # the platform I/O extension's devices (if=pv): rings, and what is taken and unanswered
        "pvio": [{"name": device.name, **device.save_state()} for device in machine.pv_devices],
    }


def _disks(machine: Machine) -> list[dict[str, Any]]:
    from rvh.devices.pvio import PvioBlk
    from rvh.devices.virtio import VirtioBlk
    from rvh.devices.virtio.overlay import OverlayImage, overlay_digest

    disks = []
    for device in [*machine.virtio, *machine.pv_devices]:
        if isinstance(device, VirtioBlk | PvioBlk):
            image = device.image
            disk: dict[str, Any] = {
                "device": device.name,
                "path": os.path.realpath(image.path),
                "size": image.size,
                "sha256": _fd_digest(image.fd),
                "overlay": None,
            }
            if isinstance(image, OverlayImage):
                if image.throwaway:
                    raise SnapshotWriteError(
                        f"--save: {device.name} writes to a throw-away overlay (snapshot=on), "
                        "which the VM file cannot keep; use overlay=FILE"
                    )
                disk["overlay"] = {
                    "path": os.path.realpath(image.overlay_path),
                    "sha256": overlay_digest(image.overlay_fd, image.size),
                }
            disks.append(disk)
    return disks


# ---- reading -----------------------------------------------------------------------------
@dataclass
class Section:
    tag: str
    encoding: int
    stored: int
    raw: int
    offset: int  # of the stored bytes in the file
    record: Any = None  # the JSON record
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class VmFile:
    """A checked VM file: its sections, and memory mapped copy-on-write."""

    path: str
    version: int
    sections: list[Section]
    memory: np.ndarray
    pages: np.ndarray  # the non-zero pages
    file_bytes: int
    disk_bytes: int  # allocated on disk (the file is sparse)

    def one(self, tag: str) -> Section:
        return next(section for section in self.sections if section.tag == tag)

    @property
    def conf(self) -> dict[str, Any]:
        return self.one("CONF").record  # type: ignore[no-any-return]

    @property
    def harts(self) -> list[Section]:
        return [section for section in self.sections if section.tag == "HART"]


def read_vm_file(path: str, memory: np.ndarray | None = None) -> VmFile:
    """Open, check and map a VM file; raises :class:`SnapshotError` with one line.
    ``memory``: the RAM pages arrived some other way (a migration): the file is then only
    the part before them, and ``memory`` is checked against its page index."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such VM file") from None
    except OSError as error:
        raise SnapshotError(f"{path}: cannot open ({error.strerror})") from None
    try:
        return _read(path, fd, memory)
    except SnapshotError:
        raise
    except (ValueError, KeyError, TypeError, IndexError, struct.error, zlib.error) as error:
        # checksums catch corruption before parsing; this is a file that was written wrong
        raise SnapshotError(f"{path}: corrupted VM file ({_describe(error)})") from None
    except OSError as error:
        raise SnapshotError(f"{path}: cannot read ({error.strerror})") from None
    finally:
        os.close(fd)


def _read(path: str, fd: int, given: np.ndarray | None = None) -> VmFile:
    info = os.fstat(fd)
    size = info.st_size
    head = os.pread(fd, HEADER.size + CRC.size, 0)
    if len(head) < 8 or head[:8] != MAGIC:
        raise SnapshotError(f"{path}: not an rvh VM file")
    if len(head) < HEADER.size + CRC.size:
        raise SnapshotError(f"{path}: truncated VM file (in its header)")
    _, version, flags, count = HEADER.unpack_from(head)
    if CRC.unpack_from(head, HEADER.size)[0] != zlib.crc32(head[: HEADER.size]):
        raise SnapshotError(f"{path}: corrupted VM file (header checksum)")
    if version > FORMAT_VERSION:
        raise SnapshotError(
            f"{path}: VM file format {version} is newer than this rvh reads "
            f"({FORMAT_VERSION}); use a newer rvh"
        )
    if version < 1 or flags:
        raise SnapshotError(f"{path}: unknown VM file format {version} (flags {flags:#x})")
    offset = HEADER.size + CRC.size
    sections: list[Section] = []
    ram: Section | None = None
    for index in range(count):
        raw_header = os.pread(fd, SECTION.size + CRC.size, offset)
        if len(raw_header) < SECTION.size + CRC.size:
            raise SnapshotError(f"{path}: truncated VM file (section {index + 1} of {count})")
        tag_bytes, encoding, stored, raw = SECTION.unpack_from(raw_header)
        expected_crc = CRC.unpack_from(raw_header, SECTION.size)[0]
        tag = tag_bytes.decode("ascii", "replace")
        if tag_bytes not in TAGS or encoding not in ENCODING_NAMES:
            raise SnapshotError(f"{path}: corrupted VM file (unknown section {tag!r})")
        offset += SECTION.size + CRC.size
        if tag_bytes == b"RAM ":
            crc = zlib.crc32(raw_header[: SECTION.size])
            if crc != expected_crc or encoding != ENCODING_PAGES or stored:
                raise SnapshotError(f"{path}: corrupted VM file (RAM section header)")
            if index != count - 1:
                raise SnapshotError(f"{path}: corrupted VM file (RAM is not the last section)")
            start = _round_up(offset, PAGE)
            if os.pread(fd, start - offset, offset).strip(b"\0"):
                raise SnapshotError(f"{path}: corrupted VM file (padding before RAM)")
            ram = Section(tag, encoding, raw, raw, start)
            offset = start + (raw if given is None else 0)
            break
        if stored > MAX_SECTION or raw > MAX_SECTION or offset + stored > size:
            raise SnapshotError(f"{path}: truncated VM file (section {tag})")
        data = os.pread(fd, stored, offset)
        if len(data) != stored:
            raise SnapshotError(f"{path}: truncated VM file (section {tag})")
        if zlib.crc32(data, zlib.crc32(raw_header[: SECTION.size])) != expected_crc:
            raise SnapshotError(f"{path}: corrupted VM file (section {tag} fails its checksum)")
        payload = _decode(data, encoding, raw)
        section = Section(tag, encoding, stored, raw, offset)
        if tag in ("CONF", "DEVS", "DISK"):
            section.record = json.loads(payload)
        else:
            section.record, section.arrays = _unpack(payload)
        sections.append(section)
        offset += stored
    if ram is None:
        raise SnapshotError(f"{path}: truncated VM file (no RAM section)")
    if size < offset:
        raise SnapshotError(f"{path}: truncated VM file ({size} of {offset} bytes)")
    if size > offset:
        raise SnapshotError(f"{path}: corrupted VM file ({size - offset} bytes after the RAM)")
    tags = [section.tag for section in sections]
    conf = sections[0].record if tags and tags[0] == "CONF" else None
    if not isinstance(conf, dict):
        raise SnapshotError(f"{path}: corrupted VM file (no configuration first)")
    if conf.get("layout") != LAYOUT:
        raise SnapshotError(
            f"{path}: saved by rvh {conf.get('rvh')} with another hart state layout; "
            "restore it with that version"
        )
    config = conf["config"]
    harts = int(config["harts"])
    if tags != ["CONF", "MACH"] + ["HART"] * harts + ["DEVS", "DISK", "PIDX"]:
        raise SnapshotError(f"{path}: corrupted VM file (sections {' '.join(tags)})")
    if ram.raw != memory_size(int(config["memory"]), C.BOOT_ROM_SIZE):
        raise SnapshotError(f"{path}: corrupted VM file (RAM size does not match)")
    _check_arrays(sections, harts, ram.raw)
    page_index = sections[-1].arrays
    if given is None:
        memory = _map_memory(path, fd, ram.offset, ram.raw, page_index["pages"], page_index["crcs"])
    else:
        memory = given
        _check_memory(path, memory, ram.raw, page_index["pages"], page_index["crcs"])
    return VmFile(
        path=path,
        version=version,
        sections=sections,
        memory=memory,
        pages=page_index["pages"],
        file_bytes=size,
        disk_bytes=info.st_blocks * 512,
    )


def _check_arrays(sections: list[Section], harts: int, memory_bytes: int) -> None:
    shapes: dict[str, dict[str, tuple[type, int]]] = {
        "MACH": {
            "machine": (np.int64, L.MACHINE_SIZE),
            "page_flags": (np.uint8, memory_bytes // PAGE),
            "decode_cache": (np.int64, LAYOUT["decode_cache"]),
        },
        "HART": {"state": (np.int64, L.STATE_SIZE), "tlb": (np.int64, LAYOUT["tlb"])},
    }
    for section in sections:
        if section.tag in shapes:
            wanted = shapes[section.tag]
            if set(section.arrays) != set(wanted):
                raise ValueError(f"{section.tag} holds {sorted(section.arrays)}")
            for name, (dtype, length) in wanted.items():
                array = section.arrays[name]
                if array.dtype != dtype or len(array) != length:
                    raise ValueError(f"{section.tag} {name} has {len(array)} {array.dtype}")
    hartids = [int(section.record["hartid"]) for section in sections if section.tag == "HART"]
    if hartids != list(range(harts)):
        raise ValueError(f"harts {hartids}")
    index = sections[-1].arrays
    pages, crcs = index.get("pages"), index.get("crcs")
    if pages is None or crcs is None or pages.dtype != np.uint32 or len(pages) != len(crcs):
        raise ValueError("page index")
    if len(pages) and (int(pages[-1]) >= memory_bytes // PAGE or np.any(np.diff(pages) <= 0)):
        raise ValueError("page index out of order")


def _map_memory(
    path: str, fd: int, offset: int, length: int, pages: np.ndarray, crcs: np.ndarray
) -> np.ndarray:
    """Memory mapped copy-on-write (MAP_PRIVATE): pages are read from the file when the guest
    touches them and copied when it writes them, so a restore or clone starts without reading
    RAM.  Checked here: each indexed page's crc, and that every page the file holds data for
    outside the index is zero (the holes of a sparse file read as zeros by definition)."""
    mapped = mmap.mmap(fd, length, access=mmap.ACCESS_COPY, offset=offset)
    memory = np.frombuffer(mapped, dtype=np.uint8)
    by_page = memory.reshape(-1, PAGE)
    for page, crc in zip(pages.tolist(), crcs.tolist(), strict=True):
        if zlib.crc32(by_page[page]) != crc:
            raise SnapshotError(
                f"{path}: corrupted VM file (RAM page at {C.RAM_BASE + page * PAGE:#x})"
            )
    indexed = np.zeros(len(by_page), dtype=bool)
    indexed[pages] = True
    words = memory.view(np.uint64).reshape(-1, PAGE // 8)
    for first, last in _data_extents(fd, offset, length):
        step = 4096  # pages per check: 16 MiB at a time, so no large temporary
        for chunk in range(first, last, step):
            end = min(last, chunk + step)
            nonzero = words[chunk:end].any(axis=1)
            stray = np.flatnonzero(nonzero & ~indexed[chunk:end])
            if len(stray):
                address = C.RAM_BASE + (chunk + int(stray[0])) * PAGE
                raise SnapshotError(f"{path}: corrupted VM file (RAM page at {address:#x})")
    return memory


def _check_memory(
    path: str, memory: np.ndarray, length: int, pages: np.ndarray, crcs: np.ndarray
) -> None:
    """RAM that came apart from the file: exactly the indexed pages are non-zero, each with
    its crc."""
    if memory.dtype != np.uint8 or len(memory) != length:
        raise SnapshotError(f"{path}: the RAM received does not match the machine")
    words = memory.view(np.uint64).reshape(-1, PAGE // 8)
    nonzero = np.flatnonzero(words.any(axis=1))
    by_page = memory.reshape(-1, PAGE)
    pairs = zip(pages.tolist(), crcs.tolist(), strict=True)
    if (
        len(nonzero) != len(pages)
        or np.any(nonzero != pages)
        or any(zlib.crc32(by_page[page]) != crc for page, crc in pairs)
    ):
        raise SnapshotError(f"{path}: the RAM received differs from the machine's state")


def _data_extents(fd: int, offset: int, length: int) -> list[tuple[int, int]]:
    """The page ranges of [offset, offset + length) the file holds data for (SEEK_DATA and
    SEEK_HOLE; the whole range where the file system cannot tell)."""
    extents = []
    position = offset
    end = offset + length
    try:
        while position < end:
            try:
                data = os.lseek(fd, position, os.SEEK_DATA)
            except OSError as error:
                if error.errno == errno.ENXIO:
                    break  # nothing but holes to the end
                raise
            if data >= end:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
            extents.append(((data - offset) // PAGE, _round_up(hole - offset, PAGE) // PAGE))
            position = hole
    except OSError:
        return [(0, length // PAGE)]
    return extents


# ---- restoring ---------------------------------------------------------------------------
def restore_machine(
    vm: VmFile,
    *,
    output: Any = None,
    serial: str = "stdio",
    max_instructions: int | None = None,
    trace_path: str | None = None,
    clone: int | None = None,
    tier: str = "interp",
    tier_cache: str = "",
) -> Machine:
    """A machine in exactly the saved state, ready to ``run``.  Checks the disks' content
    first; raises :class:`SnapshotError`.  ``clone`` K: the same state with each disk under
    a fresh overlay of its own (``FILE.cloneK.DEVICE.img``) and MAC addresses of its own.
    ``tier``, like ``serial``, is how this run goes, not what the machine is: the restoring
    command's, whichever tier the saving run used (both end the same)."""
    from rvh.machine import Machine

    conf = vm.conf
    try:
        config = _config_from(vm.path, conf["config"])
    except (TypeError, ValueError) as error:
        raise SnapshotError(f"{vm.path}: corrupted VM file ({_describe(error)})") from None
    config.max_instructions = max_instructions
    config.serial = serial
    config.trace_path = trace_path
    config.tier = tier
    config.tier_cache = tier_cache
    _check_disks(vm)
    if clone is not None:
        _make_clone(vm, config, clone)
    machine = Machine(config, output=output, memory=vm.memory)
    try:
        _apply(machine, vm)
    except SnapshotError:
        _close(machine)
        raise
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
        _close(machine)
        raise SnapshotError(
            f"{vm.path}: corrupted VM file (state does not fit: {_describe(error)})"
        ) from None
    return machine


def _config_from(path: str, saved: dict[str, Any]) -> C.MachineConfig:
    fields = {f.name for f in dataclasses.fields(C.MachineConfig)}
    unknown = set(saved) - fields
    if unknown:
        raise SnapshotError(f"{path}: unknown configuration {sorted(unknown)}")
    config = C.MachineConfig(**saved)
    try:
        config.validate()
    except RvhError as error:
        raise SnapshotError(f"{path}: saved configuration is invalid: {error.message}") from None
    return config


def _check_disks(vm: VmFile) -> None:

    for disk in vm.one("DISK").record["drives"]:
        overlay = disk["overlay"]
        size = disk["size"]
        files: list[tuple[str, Any, str]] = [(disk["path"], _fd_digest, disk["sha256"])]
        if overlay is not None:
            files.append(
                (overlay["path"], functools.partial(_overlay_digest, size), overlay["sha256"])
            )
        for path, digest, wanted in files:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as error:
                raise SnapshotError(
                    f"{vm.path}: disk {path} of {disk['device']}: cannot open ({error.strerror})"
                ) from None
            try:
                size = os.fstat(fd).st_size
                if size != disk["size"] or digest(fd) != wanted:
                    raise SnapshotError(
                        f"{vm.path}: disk {path} of {disk['device']} changed since the VM was "
                        "saved (its content hash differs)"
                    )
            finally:
                os.close(fd)


def _apply(machine: Machine, vm: VmFile) -> None:
    conf = vm.conf
    mach = vm.one("MACH")
    machine.machine[: L.MACHINE_SIZE] = mach.arrays["machine"]
    # (files from before the save dropped it may carry the tier's bit: no block is installed)
    tier_flags = np.uint8(~L.PAGE_FLAGS_OF_THE_TIER & 0xFF)
    machine.bus.page_flags[:] = mach.arrays["page_flags"] & tier_flags
    machine.bus.decode_cache[:] = mach.arrays["decode_cache"]
    if machine.tier is not None:
        machine.tier.forget_installed()  # its blocks were installed for the memory replaced
    record = mach.record
    machine.exit_counts = Counter({str(k): int(v) for k, v in record["exit_counts"].items()})
    for name, count in record["mmio_counts"].items():
        if name not in machine.bus.mmio_counts:
            raise ValueError(f"no device {name!r} on this board")
        machine.bus.mmio_counts[name] = int(count)
    if record["round"] is not None:
        target, hartids = record["round"]
        if any(not 0 <= int(i) < len(machine.harts) for i in hartids):
            raise ValueError("round names a hart that does not exist")
        machine._resume_round = (int(target), [int(i) for i in hartids])
    machine.progress = {int(k): (int(v[0]), int(v[1])) for k, v in record["progress"].items()}
    for hart, section in zip(machine.harts, vm.harts, strict=True):
        hart.state[:] = section.arrays["state"]
        hart.tlb[:] = section.arrays["tlb"]
    _apply_boot(machine, conf["boot"])
    devices = vm.one("DEVS").record
    machine.uart.restore_state(devices["uart"])
    if machine.htif is not None and devices["htif"] is not None:
        machine.htif.commands = int(devices["htif"])
    if machine.sbi is not None and devices["sbi"] is not None:
        machine.sbi.calls = int(devices["sbi"]["calls"])
        machine.sbi.by_extension = {
            int(k): int(v) for k, v in devices["sbi"]["by_extension"].items()
        }
    # the IOMMU before the devices: a queue restored as enabled finds its rings through it
    if (devices.get("iommu") is None) != (machine.iommu is None):
        raise ValueError("the IOMMU does not match the configuration")
    if machine.iommu is not None:
        machine.iommu.restore_state(devices["iommu"])
    saved_virtio = devices["virtio"]
    if [d["name"] for d in saved_virtio] != [d.name for d in machine.virtio]:
        raise ValueError("virtio devices do not match the configuration")
    for device, saved in zip(machine.virtio, saved_virtio, strict=True):
        device.restore_state(saved)
    saved_pvio = devices.get("pvio", [])
    if [d["name"] for d in saved_pvio] != [d.name for d in machine.pv_devices]:
        raise ValueError("pv devices do not match the configuration")
    for pv_device, saved in zip(machine.pv_devices, saved_pvio, strict=True):
        pv_device.restore_state(saved)
    for name, frames in devices["hubs"].items():
        if name in machine.hubs:
            machine.hubs[name].frames = int(frames)
    machine.rtc.restore_state(devices["rtc"])
    # last: the PLIC recomputes the harts' external interrupt lines from its saved state
    machine.plic.restore_state(devices["plic"])


def _apply_boot(machine: Machine, boot: dict[str, Any]) -> None:
    from rvh.boot import BareElf, BuiltinSbiBoot, FirmwareBoot, HypervisorBoot
    from rvh.devices.htif import Htif
    from rvh.hyp import GuestSpec

    kind = boot["kind"]
    if kind == "hyp":
        hyp = HypervisorBoot([GuestSpec(**guest) for guest in boot["guests"]])
        hyp.path = str(boot["path"])
        hyp.entry = int(boot["entry"])
        hyp.install_firmware(machine)
        machine.recipe = hyp
    elif kind == "sbi":
        sbi = BuiltinSbiBoot(str(boot["path"]))
        sbi.entry = int(boot["entry"])
        sbi.install_firmware(machine)
        machine.recipe = sbi
    elif kind == "firmware":
        machine.recipe = FirmwareBoot(str(boot["firmware"]), boot["kernel"])
    elif kind == "bare":
        machine.recipe = BareElf(str(boot["path"]))
    elif kind != "rom":
        raise ValueError(f"boot kind {kind!r}")
    if boot["htif"] is not None:
        tohost, fromhost = boot["htif"]
        machine.htif = Htif(
            machine.bus, int(tohost), fromhost, machine.console_write, machine.power_off
        )
    machine.fdt_address = int(boot["fdt_address"])
    machine.saved_mode_hint = boot["hint"]


def clone_mac(mac: bytes, clone: int) -> bytes:
    """Clone K's MAC for a NIC: bytes 3-4 become 0x8000 | K, so clones of one VM never share
    an address with each other or with the original (QEMU's 52:54:00:12:34:xx)."""
    return mac[:3] + (0x8000 | clone).to_bytes(2, "big") + mac[5:]


def clone_overlay_path(vm_path: str, clone: int, device: str) -> str:
    return f"{vm_path}.clone{clone}.{device}.img"


def _make_clone(vm: VmFile, config: C.MachineConfig, clone: int) -> None:
    from rvh.devices.virtio import default_mac, parse_drive, parse_netdev
    from rvh.devices.virtio.blk import lock_image
    from rvh.devices.virtio.options import split_options

    if not 1 <= clone <= 0x7FFF:
        raise SnapshotError(f"--clone {clone}: between 1 and 32767")
    drives = []
    for index, text in enumerate(config.drives):
        options = parse_drive(text)
        device = f"virtio-blk{index}"
        if options.snapshot or options.overlay:
            raise SnapshotError(
                f"{vm.path}: {device} is itself an overlay; clones stack on a plain image only"
            )
        overlay = clone_overlay_path(vm.path, clone, device)
        if os.path.exists(overlay):
            # a clone starts from the VM file's disk: an old overlay of clone K goes, unless
            # a running clone K still writes it
            try:
                fd = os.open(overlay, os.O_RDWR | os.O_CLOEXEC)
                try:
                    lock_image(fd, overlay, readonly=False)
                finally:
                    os.close(fd)
                os.unlink(overlay)
            except OSError as error:
                raise SnapshotError(f"overlay {overlay}: {error.strerror}") from None
        drives.append(f"{text},overlay={overlay.replace(',', ',,')}")
    netdevs = []
    for index, text in enumerate(config.netdevs):
        nic = parse_netdev(text)
        mac = clone_mac(nic.mac or default_mac(index), clone)
        items = [item for item in split_options(text) if not item.startswith("mac=")]
        items.append("mac=" + mac.hex(":"))
        netdevs.append(",".join(item.replace(",", ",,") for item in items))
    config.drives = drives
    config.netdevs = netdevs


def _close(machine: Machine) -> None:
    for device in machine.virtio:
        device.close()
    for pv_device in machine.pv_devices:
        pv_device.close()


# ---- snapshot info -----------------------------------------------------------------------
def describe(vm: VmFile) -> list[str]:
    """What ``rvh snapshot info`` prints."""
    from rvh.config import format_size

    conf = vm.conf
    config = conf["config"]
    boot = conf["boot"]
    lines = [
        f"{vm.path}: rvh VM file, format {vm.version}, saved by rvh {conf['rvh']} "
        f"at {conf['created']}",
        f"size:        {format_size(vm.file_bytes)} ({format_size(vm.disk_bytes)} on disk; "
        "sparse: zero pages are holes)",
        f"machine:     {format_size(config['memory'])} RAM, {config['harts']} hart(s), "
        f"rv64{config['extensions']}, boot {_boot_text(boot)}",
        f"position:    instruction {conf['steps']:,} ({conf['retired']:,} retired), "
        f"virtual time {conf['virtual_ns']:,} ns",
    ]
    from rvh.cpu.hart import _MODE_NAMES

    for section in vm.harts:
        state = section.arrays["state"]
        mode = _MODE_NAMES.get((int(state[L.PRIV]), int(state[L.VIRT])), "?")
        status = " (halted)" if state[L.HALTED] else " (wfi)" if state[L.WFI] else ""
        lines.append(
            f"hart {section.record['hartid']}:      pc {int(state[L.PC]) & (2**64 - 1):#x} in "
            f"{mode}-mode{status}, {int(state[L.INSTRET]):,} retired, "
            f"satp {int(state[L.CSR_SATP]) & (2**64 - 1):#x}, "
            f"hgatp {int(state[L.CSR_HGATP]) & (2**64 - 1):#x}"
        )
    ram_pages = config["memory"] // PAGE
    lines.append(
        f"RAM:         {len(vm.pages):,} non-zero pages of {ram_pages:,} "
        f"({format_size(len(vm.pages) * PAGE)} stored)"
    )
    devices = vm.one("DEVS").record
    uart = devices["uart"]
    lines.append(
        f"uart0:       {uart['bytes'][0]:,} bytes out, {uart['bytes'][1]:,} in, "
        f"{len(uart['rx'])} waiting"
    )
    lines.append(f"plic:        {devices['plic']['claims']:,} claims")
    if devices["sbi"] is not None:
        lines.append(f"sbi:         {devices['sbi']['calls']:,} calls")
    disks = {disk["device"]: disk for disk in vm.one("DISK").record["drives"]}

    def disk_text(device: str) -> str:
        disk = disks.get(device)
        if disk is None:
            return ""
        size, sha = format_size(disk["size"]), disk["sha256"][:16]
        return f", disk {disk['path']} ({size}, sha256 {sha}...)"

    for device in devices["virtio"]:
        text = f"status {device['status']:#x}, {len(device['queues'])} queues"
        lines.append(f"{device['name']}:".ljust(13) + text + disk_text(device["name"]))
    for device in devices.get("pvio", []):
        attached = sum(ring is not None for ring in device["rings"])
        own = device["device"]
        text = f"pv, {attached} of {len(device['rings'])} rings attached"
        if own.get("virtual_pending"):
            text += f", {_count(len(own['virtual_pending']), 'batch', 'batches')} due"
        if "buffers" in own:
            text += (
                f", {_count(len(own['buffers']), 'receive buffer')} offered, "
                f"{_count(len(own['backlog']), 'frame')} waiting"
            )
        lines.append(f"{device['name']}:".ljust(13) + text + disk_text(device["name"]))
    iommu = devices.get("iommu")
    if iommu is not None:
        registers = iommu["registers"]
        lines.append(
            f"iommu:       ddtp {registers['ddtp']:#x}, {len(iommu['contexts'])} device contexts "
            f"and {len(iommu['iotlb'])} G-stage leaves cached, "
            f"{iommu['counts']['faults']:,} faults recorded"
        )
    lines.append("sections:")
    for section in vm.sections:
        lines.append(
            f"  {section.tag}  {ENCODING_NAMES[section.encoding]:5} "
            f"{section.stored:>10,} bytes ({section.raw:,} raw) at {section.offset:#x}"
        )
    lines.append(
        f"  RAM   pages {len(vm.memory):>10,} bytes at {vm.file_bytes - len(vm.memory):#x}"
    )
    return lines


def _count(number: int, one: str, many: str = "") -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"


def _boot_text(boot: dict[str, Any]) -> str:
    kind = boot["kind"]
    if kind == "hyp":
        return "--hyp " + " ".join(f"--guest {guest['path']}" for guest in boot["guests"])
    if kind == "sbi":
        return f"--sbi {boot['path']}"
    if kind == "firmware":
        kernel = f" --kernel {boot['kernel']}" if boot["kernel"] else ""
        return f"--firmware {boot['firmware']}{kernel}"
    if kind == "bare":
        return str(boot["path"])
    return "from the boot ROM"


# ---- encoding helpers --------------------------------------------------------------------
def _section_header(tag: bytes, encoding: int, stored: bytes, raw_length: int) -> bytes:
    header = SECTION.pack(tag, encoding, len(stored), raw_length)
    return header + CRC.pack(zlib.crc32(stored, zlib.crc32(header)))


def _decode(data: bytes, encoding: int, raw_length: int) -> bytes:
    if encoding == ENCODING_RAW:
        payload = data
    elif encoding == ENCODING_ZLIB:
        inflater = zlib.decompressobj()
        payload = inflater.decompress(data, raw_length + 1)  # never more than announced
        if not inflater.eof:
            raise ValueError("compressed section is longer than announced")
    else:
        raise ValueError(f"encoding {encoding} in a metadata section")
    if len(payload) != raw_length:
        raise ValueError(f"section is {len(payload)} bytes, not {raw_length}")
    return payload


def _json(record: Any) -> bytes:
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode()


def _pack(record: Any, arrays: dict[str, np.ndarray]) -> bytes:
    """A JSON record with arrays: u32 JSON length, the JSON, then the arrays' bytes."""
    table = {}
    offset = 0
    for name, array in arrays.items():
        table[name] = [array.dtype.str, len(array), offset]
        offset += array.nbytes
    head = _json({"record": record, "arrays": table})
    return b"".join(
        [struct.pack("<I", len(head)), head]
        + [np.ascontiguousarray(a).tobytes() for a in arrays.values()]
    )


def _unpack(payload: bytes) -> tuple[Any, dict[str, np.ndarray]]:
    (length,) = struct.unpack_from("<I", payload)
    head = json.loads(payload[4 : 4 + length])
    data = memoryview(payload)[4 + length :]
    arrays = {}
    for name, (dtype, count, offset) in head["arrays"].items():
        kind = _ARRAY_DTYPES[dtype]
        nbytes = int(count) * np.dtype(kind).itemsize
        if not 0 <= int(offset) <= len(data) - nbytes or int(count) < 0:
            raise ValueError(f"array {name} lies outside its section")
        arrays[name] = np.frombuffer(data, dtype=kind, count=int(count), offset=int(offset))
    return head["record"], arrays


def _runs(pages: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive page numbers as (first, count) runs, for one write per run."""
    if not len(pages):
        return []
    breaks = np.flatnonzero(np.diff(pages.astype(np.int64)) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(pages)]))
    return [(int(pages[s]), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def _overlay_digest(size: int, fd: int) -> str:
    from rvh.devices.virtio.overlay import overlay_digest

    return overlay_digest(fd, size)


def _fd_digest(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)
        offset += len(chunk)


def _round_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}"[:120] if text else type(error).__name__

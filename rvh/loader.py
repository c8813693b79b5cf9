"""ELF loading (ELF-64 Object File Format; RISC-V ELF psABI for EM_RISCV = 243).

Places every PT_LOAD segment at its physical address (LMA, as QEMU does), zero-fills the part
past the file contents, and returns the entry point and the symbol table (for HTIF's tohost
and for tools).  Anything that is not a loadable 64-bit little-endian RISC-V executable fitting
in RAM is refused with one clear line (:class:`rvh.errors.LoadError`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from rvh.bus import Bus
from rvh.errors import LoadError

EM_RISCV = 243
SHF_EXECINSTR = 0x4
ELF_MAGIC = b"\x7fELF"


@dataclass
class Segment:
    address: int
    data: bytes
    memory_size: int


@dataclass
class LoadedElf:
    path: str
    entry: int
    segments: list[Segment]
    symbols: dict[str, int] = field(default_factory=dict)
    # the executable sections (SHF_EXECINSTR) as (address, bytes): code without the constants
    # and strings that share its segment
    code: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def tohost(self) -> int | None:
        return self.symbols.get("tohost")

    @property
    def fromhost(self) -> int | None:
        return self.symbols.get("fromhost")

    @property
    def end(self) -> int:
        return max(s.address + s.memory_size for s in self.segments)


def read_elf(path: str | Path) -> LoadedElf:
    """Parse and check an ELF file; raises LoadError with a one-line message."""
    name = str(path)
    raw = read_regular_file(name, "ELF file")
    if len(raw) < 16 or raw[:4] != ELF_MAGIC:
        raise LoadError(f"{name}: not an ELF file")
    if raw[4] == 1:
        raise LoadError(f"{name}: 32-bit ELF (ELFCLASS32); rvh runs RV64 programs")
    if raw[4] != 2:
        raise LoadError(f"{name}: unknown ELF class {raw[4]}")
    if raw[5] != 1:
        raise LoadError(f"{name}: big-endian ELF; RISC-V programs are little-endian")
    try:
        import io

        elf = ELFFile(io.BytesIO(raw))
        machine = elf["e_machine"]
        machine_number = elf.header.e_machine
        if machine != "EM_RISCV" and machine_number != EM_RISCV:
            raise LoadError(f"{name}: ELF for {_machine_name(machine)}, not RISC-V")
        if elf["e_type"] not in ("ET_EXEC", "ET_DYN"):
            raise LoadError(f"{name}: ELF type {elf['e_type']} is not an executable")
        segments = []
        for segment in elf.iter_segments():
            if segment["p_type"] != "PT_LOAD" or segment["p_memsz"] == 0:
                continue
            offset, filesz = segment["p_offset"], segment["p_filesz"]
            if offset + filesz > len(raw):
                raise LoadError(f"{name}: truncated (a segment extends past the end of the file)")
            if filesz > segment["p_memsz"]:
                raise LoadError(f"{name}: corrupt segment (file size larger than memory size)")
            segments.append(
                Segment(segment["p_paddr"], raw[offset : offset + filesz], segment["p_memsz"])
            )
        if not segments:
            raise LoadError(f"{name}: no loadable segments")
        symbols: dict[str, int] = {}
        code: list[tuple[int, bytes]] = []
        for section in elf.iter_sections():
            if isinstance(section, SymbolTableSection):
                for symbol in section.iter_symbols():
                    if symbol.name and symbol["st_shndx"] != "SHN_UNDEF":
                        symbols.setdefault(symbol.name, symbol["st_value"])
            elif section["sh_type"] == "SHT_PROGBITS" and section["sh_flags"] & SHF_EXECINSTR:
                start, size = section["sh_offset"], section["sh_size"]
                code.append((section["sh_addr"], raw[start : start + size]))
        return LoadedElf(name, elf["e_entry"], segments, symbols, code)
    except LoadError:
        raise
    except (ELFError, ValueError, KeyError, IndexError, TypeError, AssertionError) as error:
        raise LoadError(f"{name}: truncated or corrupt ELF ({_short(error)})") from None
    except Exception as error:  # pyelftools raises struct/construct errors on truncation
        raise LoadError(f"{name}: truncated or corrupt ELF ({_short(error)})") from None


def read_regular_file(path: str, what: str) -> bytes:
    """The contents of a regular file.  Anything else is refused before it is read: /dev/zero
    would be read until the host runs out of memory, and a named pipe with no writer would
    block forever (so it is opened non-blocking, and only a regular file is read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except OSError as error:
        raise LoadError(f"{path}: cannot read ({error.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise LoadError(f"{path}: is a directory, not an {what}")
        if not stat.S_ISREG(mode):
            raise LoadError(f"{path}: a {_file_kind(mode)}, not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 24):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as error:
        raise LoadError(f"{path}: cannot read ({error.strerror})") from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def load_elf(bus: Bus, path: str | Path) -> LoadedElf:
    """Read an ELF and place it in RAM.  The entry point must lie in RAM too."""
    elf = read_elf(path)
    place(bus, elf)
    return elf


def place(bus: Bus, elf: LoadedElf) -> None:
    """Check that ``elf`` fits in RAM and write it there."""
    check_fits(bus, elf)
    place_segments(elf, bus.write_bytes)


def place_segments(elf: LoadedElf, write: Callable[[int, bytes], None], offset: int = 0) -> None:
    """Write each segment's file contents and zero the rest of its memory size, ``offset``
    bytes from its address (rvh/hyp.py puts a VM's image in host RAM that way)."""
    for segment in elf.segments:
        write(segment.address + offset, segment.data)
        bss = segment.memory_size - len(segment.data)
        if bss:
            write(segment.address + offset + len(segment.data), bytes(bss))


def _machine_name(machine: object) -> str:
    names = {"EM_X86_64": "x86-64", "EM_386": "i386", "EM_AARCH64": "AArch64", "EM_ARM": "ARM"}
    return names.get(str(machine), str(machine))


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:120]


# The RISC-V Linux kernel Image header (Linux's Documentation/arch/riscv/boot-image-header.rst):
# code0 u32, code1 u32, text_offset u64, image_size u64, flags u64, version u32, res1 u32,
# res2 u64, magic u64 ("RISCV\0\0\0", deprecated), magic2 u32 ("RSC\x05"), res3 u32.
IMAGE_HEADER_SIZE = 64
IMAGE_MAGIC2 = b"RSC\x05"
IMAGE_MAGIC2_OFFSET = 0x38
IMAGE_SIZE_OFFSET = 0x10
# Linux on RV64 must start 2 MiB aligned (its first mapping is a 2 MiB megapage)
IMAGE_ALIGN = 2 << 20
# an Image with an EFI stub is also a PE/COFF file: "MZ" and, at 0x3c, the PE header's offset
PE_MZ = b"MZ"
PE_SIGNATURE = b"PE\0\0"


def is_linux_image(raw: bytes) -> bool:
    """Whether ``raw`` starts with a RISC-V Linux Image header (magic2 "RSC\\x05")."""
    end = IMAGE_MAGIC2_OFFSET + len(IMAGE_MAGIC2)
    return len(raw) >= end and raw[IMAGE_MAGIC2_OFFSET:end] == IMAGE_MAGIC2


def read_linux_image(path: str, raw: bytes, address: int) -> LoadedElf:
    """A raw RISC-V Linux Image to be placed at ``address`` (QEMU places it at the first 2 MiB
    boundary after the firmware and ignores the header's text_offset; so does rvh).  Its memory
    size is the header's image_size (which covers the bss), at least the file's size.  An Image
    with an EFI stub says in its PE section table how long the file must be, which catches a
    truncated download."""
    if len(raw) < IMAGE_HEADER_SIZE:
        raise LoadError(
            f"{path}: truncated Linux Image ({len(raw)} bytes, shorter than its header)"
        )
    image_size = int.from_bytes(raw[IMAGE_SIZE_OFFSET : IMAGE_SIZE_OFFSET + 8], "little")
    needed = _pe_file_size(raw)
    if needed is not None and needed > len(raw):
        raise LoadError(
            f"{path}: truncated Linux Image ({len(raw)} bytes; its sections need {needed})"
        )
    if image_size and image_size < len(raw) and needed is None:
        raise LoadError(f"{path}: corrupt Linux Image (image_size {image_size} < file size)")
    if address % IMAGE_ALIGN:
        raise LoadError(f"{path}: a Linux Image must be placed 2 MiB aligned, not {address:#x}")
    segment = Segment(address, raw, max(image_size, len(raw)))
    return LoadedElf(path, address, [segment])


def _pe_file_size(raw: bytes) -> int | None:
    """The file size the PE/COFF section table of an EFI-stub Image asks for, or None when the
    Image has no PE header (pe/coff spec: e_lfanew at 0x3c; the COFF header's section count at
    +6 and optional-header size at +20; 40-byte section entries, raw size at +16 and raw
    pointer at +20)."""
    if raw[:2] != PE_MZ or len(raw) < 0x40:
        return None
    pe = int.from_bytes(raw[0x3C:0x40], "little")
    if pe + 24 > len(raw) or raw[pe : pe + 4] != PE_SIGNATURE:
        return None
    sections = int.from_bytes(raw[pe + 6 : pe + 8], "little")
    optional = int.from_bytes(raw[pe + 20 : pe + 22], "little")
    table = pe + 24 + optional
    end = table + 40 * sections
    if end > len(raw):
        return end
    needed = end
    for index in range(sections):
        entry = table + 40 * index
        raw_size = int.from_bytes(raw[entry + 16 : entry + 20], "little")
        raw_pointer = int.from_bytes(raw[entry + 20 : entry + 24], "little")
        if raw_size:
            needed = max(needed, raw_pointer + raw_size)
    return needed


def read_kernel(path: str, address: int) -> LoadedElf:
    """A kernel for ``--kernel``: an ELF (placed at its own addresses) or a raw RISC-V Linux
    Image (placed at ``address``).  Anything else is refused."""
    raw = read_regular_file(path, "ELF file or Linux Image")
    if raw[:4] == ELF_MAGIC:
        return read_elf(path)
    if is_linux_image(raw):
        return read_linux_image(path, raw, address)
    raise LoadError(f"{path}: not an ELF file or a RISC-V Linux Image (unknown image format)")


def read_firmware(path: str, address: int) -> LoadedElf:
    """M-mode firmware for ``--firmware``: an ELF, or a raw binary (such as OpenSBI's
    fw_dynamic.bin) placed at ``address`` and entered at its first byte."""
    raw = read_regular_file(path, "ELF file or firmware binary")
    if raw[:4] == ELF_MAGIC:
        return read_elf(path)
    if not raw:
        raise LoadError(f"{path}: empty firmware file")
    return LoadedElf(path, address, [Segment(address, raw, len(raw))])


def check_fits(bus: Bus, elf: LoadedElf) -> None:
    """Every segment and the entry point must lie in RAM."""
    ram_end = bus.ram_base + bus.ram_size
    for segment in elf.segments:
        end = segment.address + segment.memory_size
        if segment.address < bus.ram_base or end > ram_end:
            raise LoadError(
                f"{elf.path}: [{segment.address:#x}, {end:#x}) does not fit in RAM "
                f"[{bus.ram_base:#x}, {ram_end:#x}) (try a larger --memory)"
            )
    if not bus.ram_base <= elf.entry < ram_end:
        raise LoadError(f"{elf.path}: entry point {elf.entry:#x} is outside RAM")


def overlap(a: LoadedElf, b: LoadedElf) -> bool:
    """Whether any segment of ``a`` shares memory with one of ``b``."""
    return any(
        x.address < y.address + y.memory_size and y.address < x.address + x.memory_size
        for x in a.segments
        for y in b.segments
    )

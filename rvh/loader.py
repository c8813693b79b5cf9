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
    ram_end = bus.ram_base + bus.ram_size
    for segment in elf.segments:
        end = segment.address + segment.memory_size
        if segment.address < bus.ram_base or end > ram_end:
            raise LoadError(
                f"{elf.path}: segment [{segment.address:#x}, {end:#x}) does not fit in RAM "
                f"[{bus.ram_base:#x}, {ram_end:#x}) (try a larger --memory)"
            )
    if not bus.ram_base <= elf.entry < ram_end:
        raise LoadError(f"{elf.path}: entry point {elf.entry:#x} is outside RAM")
    place_segments(elf, bus.write_bytes)
    return elf


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

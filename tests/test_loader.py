"""ELF loading (rvh.loader): good executables land in RAM at their physical addresses, and
everything else is refused with a one-line LoadError, never another exception.

The ELFs are linked here with the cross toolchain, so their layout is known: the linker
script below puts the code at 0x8000_0000 and the data (with ``tohost``) and bss at
0x8000_1000.
"""

import platform
import random
import subprocess
import sys
from pathlib import Path

import pytest
from support import CROSS, GUESTS, needs_toolchain, require_guest, require_toolchain

from rvh.bus import Bus
from rvh.config import BOOT_ROM_BASE, BOOT_ROM_SIZE, RAM_BASE
from rvh.errors import EXIT_LOAD_ERROR, LoadError
from rvh.loader import load_elf, read_elf

SOURCE = """
    .section .text
    .globl _start
_start:
    .word 0x11223344
    .word 0x55667788
    .section .data
    .globl tohost
tohost:
    .dword 0x0123456789abcdef
    .globl fromhost
fromhost:
    .dword 0
    .section .bss
    .globl buffer
buffer:
    .skip 64
"""

SCRIPT = """
ENTRY(_start)
SECTIONS {{
    . = {text:#x};
    .text : {{ *(.text) }}
    . = {data:#x};
    .data : {data_at} {{ *(.data) }}
    .bss : {{ *(.bss) }}
}}
"""


def link(
    directory: Path,
    name: str,
    *,
    text: int = RAM_BASE,
    data: int = RAM_BASE + 0x1000,
    data_at: int | None = None,
    source: str = SOURCE,
    march: str = "rv64imac",
    abi: str = "lp64",
    emulation: str = "elf64lriscv",
    entry: int | None = None,
) -> Path:
    """Assemble ``source`` and link it with the script above; returns the ELF's path."""
    asm = directory / f"{name}.S"
    obj = directory / f"{name}.o"
    lds = directory / f"{name}.ld"
    elf = directory / f"{name}.elf"
    asm.write_text(source)
    at = f"AT({data_at:#x})" if data_at is not None else ""
    lds.write_text(SCRIPT.format(text=text, data=data, data_at=at))
    subprocess.run(
        [CROSS + "gcc", "-c", f"-march={march}", f"-mabi={abi}", "-o", str(obj), str(asm)],
        check=True,
        capture_output=True,
    )
    command = [CROSS + "ld", "-m", emulation, "-T", str(lds), "-o", str(elf), str(obj)]
    if entry is not None:
        command[1:1] = ["-e", hex(entry)]
    subprocess.run(command, check=True, capture_output=True)
    return elf


def make_bus(memory: int = 16 << 20) -> Bus:
    return Bus(RAM_BASE, memory, BOOT_ROM_BASE, BOOT_ROM_SIZE)


def refused(path: Path | str, *, memory: int = 16 << 20) -> str:
    """load_elf must raise LoadError with a one-line message; returns the message."""
    with pytest.raises(LoadError) as info:
        load_elf(make_bus(memory), path)
    message = str(info.value)
    assert message and "\n" not in message, repr(message)
    assert info.value.message == message
    assert info.value.status == EXIT_LOAD_ERROR
    return message


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    require_toolchain()
    return tmp_path_factory.mktemp("elves")


@pytest.fixture(scope="module")
def good_elf(built) -> Path:
    return link(built, "good")


# ---- good ELFs --------------------------------------------------------------------------


@needs_toolchain
def test_read_elf_of_linked_program(good_elf):
    elf = read_elf(good_elf)
    assert elf.entry == RAM_BASE
    assert elf.symbols["_start"] == RAM_BASE
    assert elf.tohost == RAM_BASE + 0x1000
    assert elf.fromhost == RAM_BASE + 0x1008
    assert elf.symbols["buffer"] >= RAM_BASE + 0x1010
    assert elf.end >= elf.symbols["buffer"] + 64
    assert elf.path == str(good_elf)
    starts = sorted(segment.address for segment in elf.segments)
    assert starts[0] == RAM_BASE


@needs_toolchain
def test_load_elf_places_segments_and_zeroes_bss(good_elf):
    bus = make_bus()
    bus.write_bytes(RAM_BASE + 0x1000, b"\xff" * 256)
    elf = load_elf(bus, good_elf)
    assert bus.read_bytes(RAM_BASE, 8) == bytes.fromhex("4433221188776655")
    assert bus.read_u64(RAM_BASE + 0x1000) == 0x0123_4567_89AB_CDEF
    assert bus.read_u64(RAM_BASE + 0x1008) == 0
    buffer = elf.symbols["buffer"]
    assert bus.read_bytes(buffer, 64) == bytes(64), "bss is zero-filled"
    assert bus.read_bytes(elf.end, 16) == b"\xff" * 16, "nothing written past the image"


@needs_toolchain
def test_load_elf_uses_physical_addresses(built):
    # .data linked at 0x8000_1000 but loaded at 0x8000_3000 (LMA), as QEMU does
    path = link(built, "lma", data_at=RAM_BASE + 0x3000)
    bus = make_bus()
    load_elf(bus, path)
    assert bus.read_u64(RAM_BASE + 0x3000) == 0x0123_4567_89AB_CDEF
    assert bus.read_u64(RAM_BASE + 0x1000) == 0


@pytest.mark.parametrize("name", ["hello/hello.elf", "hello/hello_picolibc.elf"])
def test_read_real_guest(name):
    path = require_guest(GUESTS / name)
    elf = read_elf(path)
    assert RAM_BASE <= elf.entry < RAM_BASE + (16 << 20)
    assert elf.segments
    bus = make_bus(256 << 20)
    load_elf(bus, path)
    first = min(elf.segments, key=lambda segment: segment.address)
    assert bus.read_bytes(first.address, len(first.data)) == first.data


# ---- refused files ----------------------------------------------------------------------


def test_missing_file(tmp_path):
    assert "no such file" in refused(tmp_path / "missing.elf")


def test_directory(tmp_path):
    assert "is a directory" in refused(tmp_path)


def test_character_device_is_refused_unread():
    # /dev/zero never ends: reading it would take every byte of the host's memory
    assert refused("/dev/zero") == "/dev/zero: a character device, not a regular file"


def test_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    import os

    fifo = tmp_path / "pipe.elf"
    os.mkfifo(fifo)
    assert refused(fifo) == f"{fifo}: a named pipe, not a regular file"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.elf"
    path.write_bytes(b"")
    assert "not an ELF file" in refused(path)


def test_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a program\n" * 10)
    assert "not an ELF file" in refused(path)


def test_magic_only(tmp_path):
    path = tmp_path / "magic.elf"
    path.write_bytes(b"\x7fELF")
    assert "not an ELF file" in refused(path)


@needs_toolchain
def test_truncated_to_100_bytes(built, good_elf):
    path = built / "first100.elf"
    path.write_bytes(good_elf.read_bytes()[:100])
    assert "truncated" in refused(path)


@needs_toolchain
def test_truncated_to_half(built, good_elf):
    raw = good_elf.read_bytes()
    path = built / "half.elf"
    path.write_bytes(raw[: len(raw) // 2])
    assert "truncated" in refused(path)


def test_truncated_real_guest(tmp_path):
    source = require_guest(GUESTS / "hello" / "hello.elf")
    raw = source.read_bytes()
    for length, name in ((100, "first100"), (len(raw) // 2, "half")):
        path = tmp_path / f"{name}.elf"
        path.write_bytes(raw[:length])
        assert "truncated" in refused(path), name


@needs_toolchain
def test_32_bit_riscv_elf(built):
    path = link(built, "rv32", march="rv32i", abi="ilp32", emulation="elf32lriscv")
    assert "32-bit" in refused(path)


def test_host_elf_is_not_risc_v():
    # the Python running this test is an ELF for the host's machine (the suite runs on Linux)
    path = Path(sys.executable).resolve()
    assert path.read_bytes()[:4] == b"\x7fELF"
    message = refused(path)
    assert "not RISC-V" in message
    host_names = {"x86_64": "x86-64", "aarch64": "AArch64"}
    assert host_names.get(platform.machine(), platform.machine()) in message


@needs_toolchain
def test_relocatable_object(built):
    link(built, "object")
    assert "not an executable" in refused(built / "object.o")


@needs_toolchain
def test_big_endian_header(built, good_elf):
    raw = bytearray(good_elf.read_bytes())
    raw[5] = 2  # EI_DATA = ELFDATA2MSB
    path = built / "big.elf"
    path.write_bytes(bytes(raw))
    assert "big-endian" in refused(path)


@needs_toolchain
def test_unknown_class(built, good_elf):
    raw = bytearray(good_elf.read_bytes())
    raw[4] = 7
    path = built / "class7.elf"
    path.write_bytes(bytes(raw))
    assert "class" in refused(path)


@needs_toolchain
def test_segment_outside_ram(built):
    path = link(built, "low", text=0x4000_0000, data=0x4000_1000)
    message = refused(path)
    assert "does not fit in RAM" in message
    assert "0x40000000" in message


@needs_toolchain
def test_segment_past_end_of_ram(built):
    big = SOURCE.replace(".skip 64", ".skip 0x200000")  # 2 MiB of bss
    path = link(built, "big", source=big)
    assert "does not fit in RAM" in refused(path, memory=1 << 20)
    load_elf(make_bus(4 << 20), path)  # fits in 4 MiB


@needs_toolchain
def test_entry_outside_ram(built):
    path = link(built, "entry", entry=0x1000)
    assert "entry point" in refused(path)


@needs_toolchain
def test_corrupted_files_raise_only_load_error(built, good_elf):
    """Truncations and byte flips: read_elf either succeeds or raises LoadError."""
    raw = good_elf.read_bytes()
    rng = random.Random(2024)
    variants = [raw[:length] for length in range(0, len(raw), max(1, len(raw) // 60))]
    for _ in range(120):
        corrupt = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            # mostly the headers, where the damage matters
            where = rng.randrange(0, min(len(raw), 256) if rng.random() < 0.8 else len(raw))
            corrupt[where] = rng.randrange(256)
        variants.append(bytes(corrupt))
    path = built / "fuzz.elf"
    for index, variant in enumerate(variants):
        path.write_bytes(variant)
        try:
            load_elf(make_bus(1 << 20), path)
        except LoadError as error:
            assert "\n" not in str(error), (index, str(error))
        except Exception as error:  # anything else is a loader bug
            pytest.fail(f"variant {index}: {type(error).__name__}: {error}")


def patched(built: Path, good_elf: Path, name: str, changes: list[tuple[int, int, int]]) -> Path:
    """A copy of the good ELF with (offset, size, value) fields overwritten (little-endian).
    Offsets follow the ELF-64 layout: e_phoff at 0x20, e_machine at 0x12, e_phnum at 0x38;
    in a program header p_offset at +8, p_paddr at +24, p_filesz at +32, p_memsz at +40."""
    raw = bytearray(good_elf.read_bytes())
    for offset, size, value in changes:
        raw[offset : offset + size] = value.to_bytes(size, "little")
    path = built / f"{name}.elf"
    path.write_bytes(bytes(raw))
    return path


def first_load_header(good_elf: Path) -> int:
    """File offset of the first PT_LOAD program header."""
    raw = good_elf.read_bytes()
    phoff = int.from_bytes(raw[0x20:0x28], "little")
    size = int.from_bytes(raw[0x36:0x38], "little")
    count = int.from_bytes(raw[0x38:0x3A], "little")
    for index in range(count):
        header = phoff + index * size
        if int.from_bytes(raw[header : header + 4], "little") == 1:  # PT_LOAD
            return header
    raise AssertionError("no PT_LOAD in the test ELF")


@needs_toolchain
def test_no_program_headers(built, good_elf):
    path = patched(built, good_elf, "nophdr", [(0x38, 2, 0)])
    assert "no loadable segments" in refused(path)


@needs_toolchain
def test_wrong_machine_number(built, good_elf):
    path = patched(built, good_elf, "em_none", [(0x12, 2, 0)])
    assert "not RISC-V" in refused(path)


@needs_toolchain
def test_program_headers_past_end_of_file(built, good_elf):
    path = patched(built, good_elf, "phoff", [(0x20, 8, 0x10_0000)])
    assert "truncated" in refused(path)


@needs_toolchain
def test_segment_data_past_end_of_file(built, good_elf):
    header = first_load_header(good_elf)
    path = patched(built, good_elf, "p_offset", [(header + 8, 8, 0x10_0000)])
    assert "truncated" in refused(path)


@needs_toolchain
def test_segment_file_size_larger_than_memory_size(built, good_elf):
    header = first_load_header(good_elf)
    path = patched(built, good_elf, "filesz", [(header + 40, 8, 1)])
    assert "corrupt" in refused(path)


@needs_toolchain
@pytest.mark.parametrize(
    ("paddr", "memsz"),
    [(RAM_BASE, 2**64 - 16), (2**64 - 0x1000, 0x2000), (RAM_BASE - 8, 0x100)],
    ids=["huge-size", "wraps-around", "starts-below-ram"],
)
def test_segment_bounds_are_checked_without_overflow(built, good_elf, paddr, memsz):
    header = first_load_header(good_elf)
    path = patched(built, good_elf, "bounds", [(header + 24, 8, paddr), (header + 40, 8, memsz)])
    assert "does not fit in RAM" in refused(path)

"""``rvh disasm``: disassemble the code of an ELF (its executable PT_LOAD segments) or
instruction words given on the command line, with rvh's own table-driven disassembler."""

from __future__ import annotations

from collections.abc import Iterator

from rvh.errors import ConfigError
from rvh.isa.disasm import disassemble, instruction_length
from rvh.loader import read_elf


def disassemble_bytes(code: bytes, address: int) -> Iterator[str]:
    """One line per instruction: address, bits at their width, text."""
    offset = 0
    while offset + 2 <= len(code):
        low = int.from_bytes(code[offset : offset + 2], "little")
        length = instruction_length(low)
        if length != 4 or offset + 4 > len(code):
            length = 2
        bits = int.from_bytes(code[offset : offset + length], "little")
        text = disassemble(bits, address + offset)
        yield f"{address + offset:16x}:  {bits:0{2 * length}x}{' ' * (10 - 2 * length)}{text}"
        offset += length


def disassemble_elf(path: str, symbols: bool = True) -> Iterator[str]:
    elf = read_elf(path)
    names: dict[int, str] = {}
    if symbols:
        for name, value in elf.symbols.items():
            if name.startswith(("$", ".L")):  # mapping symbols and local labels
                continue
            # code labels over constants (RAM_BASE shares _start's value)
            if value not in names or (names[value].isupper() and not name.isupper()):
                names[value] = name
    for segment in elf.segments:
        if not segment.data:
            continue
        for line in disassemble_bytes(segment.data, segment.address):
            address = int(line.split(":", 1)[0], 16)
            if address in names:
                yield f"\n{address:016x} <{names[address]}>:"
            yield line


def disassemble_words(words: list[str]) -> Iterator[str]:
    for word in words:
        try:
            bits = int(word, 16)
        except ValueError:
            raise ConfigError(f"not a hexadecimal instruction: {word!r}") from None
        yield f"{bits:08x}  {disassemble(bits)}"

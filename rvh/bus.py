"""The physical address space: RAM and boot ROM in one numpy array, devices by address range.

The kernel reaches RAM and ROM directly (through its TLB) and the CLINT itself; every other
physical address makes it exit with an MMIO request, which ``Bus.complete_mmio`` serves from
the device that claims the address, or answers with an access fault when none does.  Devices
and loaders write guest memory through ``write_bytes``, which keeps the shared decode cache
coherent like a store would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rvh.config import format_size
from rvh.cpu import layout as L
from rvh.errors import LoadError


class BusFault(Exception):
    """A device refuses an access (wrong size or offset): the hart takes an access fault."""


class Device(Protocol):
    name: str

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


@dataclass
class Region:
    base: int
    size: int
    device: Device

    def contains(self, address: int, size: int) -> bool:
        return self.base <= address and address + size <= self.base + self.size


class Bus:
    def __init__(
        self,
        ram_base: int,
        ram_size: int,
        rom_base: int,
        rom_size: int,
        memory: np.ndarray | None = None,
    ) -> None:
        """``memory``: RAM and ROM already in place (a restored VM file maps them copy-on-write,
        :mod:`rvh.snapshot`); by default they are allocated, zeroed."""
        self.ram_base = ram_base
        self.ram_size = ram_size
        self.rom_base = rom_base
        self.rom_size = rom_size
        # RAM first so that `ram` is a plain prefix view; the ROM follows, page aligned.
        try:
            if memory is not None:
                if memory.dtype != np.uint8 or len(memory) != memory_size(ram_size, rom_size):
                    raise ValueError("memory does not match the RAM and ROM sizes")
                self.memory = memory
            else:
                self.memory = np.zeros(memory_size(ram_size, rom_size), dtype=np.uint8)
        except MemoryError:
            raise LoadError(
                f"cannot allocate guest RAM ({format_size(ram_size)}): the host refused it; "
                "try a smaller --memory"
            ) from None
        self.ram = self.memory[:ram_size]
        self.rom_host = ram_size
        self.page_flags = np.zeros(len(self.memory) >> L.PAGE_SHIFT, dtype=np.uint8)
        self.decode_cache = np.full(L.DECODE_CACHE_ENTRIES * L.DC_FIELDS, -1, dtype=np.int64)
        # while dirty logging is on (rvh/dirty.py): the bitmap that Python's writes mark too
        self.dirty_bitmap: np.ndarray | None = None
        # the machine's array, once it has one: Python's writes over decoded code on a page
        # with translated blocks are logged there as the kernel's stores are (rvh/tier)
        self.machine_array: np.ndarray | None = None
        self.regions: list[Region] = []
        self.mmio_counts: dict[str, int] = {}

    # ---- address map ---------------------------------------------------------------------
    def attach(self, base: int, size: int, device: Device) -> None:
        for region in self.regions:
            if base < region.base + region.size and region.base < base + size:
                raise ValueError(f"{device.name} overlaps {region.device.name}")
        self.regions.append(Region(base, size, device))
        self.mmio_counts[device.name] = 0

    def find(self, address: int, size: int) -> Region | None:
        for region in self.regions:
            if region.contains(address, size):
                return region
        return None

    def host_offset(self, paddr: int, size: int) -> int | None:
        """Offset in ``memory`` of a RAM or ROM range, or None."""
        if self.ram_base <= paddr and paddr + size <= self.ram_base + self.ram_size:
            return paddr - self.ram_base
        if self.rom_base <= paddr and paddr + size <= self.rom_base + self.rom_size:
            return self.rom_host + paddr - self.rom_base
        return None

    # ---- guest memory from Python (loaders, DMA) -----------------------------------------
    def read_bytes(self, paddr: int, length: int) -> bytes:
        host = self.host_offset(paddr, length)
        if host is None:
            raise BusFault(f"read of {length} bytes at {paddr:#x} is outside RAM")
        return self.memory[host : host + length].tobytes()

    def write_bytes(self, paddr: int, data: bytes | np.ndarray, *, rom: bool = False) -> None:
        length = len(data)
        host = self.host_offset(paddr, length)
        if host is None or (not rom and host >= self.rom_host):
            raise BusFault(f"write of {length} bytes at {paddr:#x} is outside RAM")
        self.memory[host : host + length] = np.frombuffer(bytes(data), dtype=np.uint8)
        self.invalidate_code(host, length)
        if self.dirty_bitmap is not None:
            self.mark_dirty(host, length)

    def read_u64(self, paddr: int) -> int:
        return int.from_bytes(self.read_bytes(paddr, 8), "little")

    def write_u64(self, paddr: int, value: int) -> None:
        self.write_bytes(paddr, (value & (2**64 - 1)).to_bytes(8, "little"))

    def mark_dirty(self, host: int, length: int) -> None:
        """Dirty logging: [host, host+length) of RAM was written from Python (a loader, DMA)."""
        bitmap = self.dirty_bitmap
        if bitmap is None or length <= 0 or host >= self.ram_size:
            return
        first = host >> L.PAGE_SHIFT
        last = (min(host + length, self.ram_size) - 1) >> L.PAGE_SHIFT
        for page in range(first, last + 1):
            bitmap[page >> 6] |= np.int64(1) << np.int64(page & 63)

    def invalidate_code(self, host: int, length: int) -> None:
        """Drop decoded instructions overlapping [host, host+length) (like a store would)."""
        if length <= 0:
            return
        first, last = host >> L.PAGE_SHIFT, (host + length - 1) >> L.PAGE_SHIFT
        if not (self.page_flags[first : last + 1] & L.PAGE_FLAG_CODE).any():
            return
        tags = self.decode_cache[L.DC_TAG :: L.DC_FIELDS]
        stale = (tags >= host - 2) & (tags < host + length)
        pages = np.arange(first, last + 1)
        # and pages whose translated code is not all decoded any more: any write may be over
        # it (L.PAGE_FLAG_UNTRACKED, memory.store_over_code)
        untracked = pages[(self.page_flags[pages] & L.PAGE_FLAG_UNTRACKED) != 0]
        if self.machine_array is not None and (stale.any() or untracked.size):
            self.code_changed(np.union1d(tags[stale] >> L.PAGE_SHIFT, untracked))
        tags[stale] = -1

    def code_changed(self, pages: np.ndarray) -> None:
        """Decoded instructions on host ``pages`` changed: log the pages the translating tier
        has blocks on (memory.code_changed, the kernel's side of the same)."""
        assert self.machine_array is not None
        log = self.machine_array
        for page in pages[(self.page_flags[pages] & L.PAGE_FLAG_TRANSLATED) != 0]:
            log[L.M_CODE_PAGES + (log[L.M_CODE_WRITES] & L.CODE_PAGE_MASK)] = page
            log[L.M_CODE_WRITES] += 1

    # ---- MMIO exits ---------------------------------------------------------------------
    def complete_mmio(self, state: np.ndarray) -> Device | None:
        """Serve the MMIO request the kernel left in ``state`` and mark it DONE or FAULT.
        Returns the device that served it."""
        request = int(state[L.MMIO_STATE])
        address = int(state[L.MMIO_ADDR]) & (2**64 - 1)
        size = int(state[L.MMIO_SIZE])
        region = self.find(address, size)
        try:
            if region is None:
                raise BusFault(f"no device at {address:#x}")
            self.mmio_counts[region.device.name] += 1
            offset = address - region.base
            if request == L.MMIO_LOAD_REQUEST:
                value = region.device.read(offset, size) & ((1 << (8 * size)) - 1)
                state[L.MMIO_VALUE] = value - (1 << 64) if value >> 63 else value
            elif request == L.MMIO_STORE_REQUEST:
                value = int(state[L.MMIO_VALUE]) & ((1 << (8 * size)) - 1)
                region.device.write(offset, size, value)
            else:
                raise AssertionError(f"no MMIO request pending (state {request})")
        except BusFault:
            state[L.MMIO_STATE] = L.MMIO_FAULT
            return None
        state[L.MMIO_STATE] = L.MMIO_DONE
        return region.device


def memory_size(ram_size: int, rom_size: int) -> int:
    """Bytes of the ``memory`` array: RAM, then the ROM rounded up to a page."""
    return ram_size + _round_page(rom_size)


def _round_page(size: int) -> int:
    return (size + L.PAGE_SIZE - 1) & ~(L.PAGE_SIZE - 1)

"""Dirty logging: which RAM pages were written since the last look (live migration's pre-copy).

The emulator marks the pages it writes, by write protection, so logging costs nothing while it
is off and the kernel's fast store path never looks at it:

- The bitmap is one bit per 4 KiB page of RAM, in the machine array from ``L.DIRTY_BITMAP``
  on (every kernel function already has the machine array), set with ``M_DIRTY_LOG`` on.
- A hart's store reaches RAM either through a TLB write tag (the fast paths) or through
  ``tlb_lookup`` (every slow path: misaligned stores, AMOs, SC, HSV, M-mode and MPRV stores,
  the hypervisor's stores, which are just hart stores).  ``tlb_lookup`` marks the page when it
  translates a store with logging on, before the tag is filled; so a write tag exists only for
  a page already marked.
- Clearing the bitmap write-protects every valid write tag of every hart (``TLB_DIRTY_PROTECT``),
  so the next store to each page leaves the fast path once, and ``tlb_lookup`` marks the page
  and lifts the protection without a walk and without counting a TLB miss: ``--stats`` of a
  migrated run stay those of the unmigrated one.
- Page-table A/D updates mark their page in the walk (``mmu._write_pte``).
- Writes from Python mark through :meth:`rvh.bus.Bus.mark_dirty`: loaders and HTIF
  (``Bus.write_bytes``) and virtio DMA (``GuestMemory.written`` and the used ring).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rvh.cpu import layout as L

if TYPE_CHECKING:
    from rvh.machine import Machine


def bitmap_words(ram_size: int) -> int:
    """int64 words of a dirty bitmap for ``ram_size`` bytes of RAM."""
    pages = (ram_size + L.PAGE_SIZE - 1) >> L.PAGE_SHIFT
    return (pages + 63) >> 6


class DirtyLog:
    """Start, read-and-clear and stop dirty logging on one machine.  Call it between kernel
    calls (trio runs the harts and this in one thread)."""

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.bitmap = machine.machine[L.DIRTY_BITMAP :]
        self.pages = machine.bus.ram_size >> L.PAGE_SHIFT

    @property
    def active(self) -> bool:
        return bool(self.machine.machine[L.M_DIRTY_LOG])

    def start(self) -> None:
        """Log from now on: every page written after this call is marked."""
        self.bitmap[:] = 0
        self._protect()
        self.machine.machine[L.M_DIRTY_LOG] = 1
        self.machine.bus.dirty_bitmap = self.bitmap

    def collect(self) -> np.ndarray:
        """The pages (RAM page numbers, ascending) written since ``start`` or the last
        ``collect``, and log afresh from here."""
        pages = self._marked()
        self.bitmap[:] = 0
        self._protect()
        return pages

    def stop(self) -> np.ndarray:
        """The pages written since the last look; logging ends and the TLBs are as before."""
        pages = self._marked()
        self.machine.machine[L.M_DIRTY_LOG] = 0
        self.machine.bus.dirty_bitmap = None
        self.bitmap[:] = 0
        for hart in self.machine.harts:
            tags = hart.tlb[L.TLB_TAG_WRITE :: L.TLB_FIELDS]
            tags &= ~np.int64(L.TLB_DIRTY_PROTECT)
        return pages

    def _marked(self) -> np.ndarray:
        bits = np.unpackbits(self.bitmap.view(np.uint8), bitorder="little")
        return np.flatnonzero(bits[: self.pages]).astype(np.uint32)

    def _protect(self) -> None:
        for hart in self.machine.harts:
            tags = hart.tlb[L.TLB_TAG_WRITE :: L.TLB_FIELDS]
            tags[tags != L.TLB_INVALID] |= L.TLB_DIRTY_PROTECT

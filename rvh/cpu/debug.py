"""The debugger's breakpoints and watchpoints, as the kernel sees them.

gdb (``rvh/gdb``) writes virtual addresses into the machine array (``M_BREAKPOINTS``,
``M_WATCHES``); with none set the kernel pays nothing on its fast path:

- a page holding a breakpoint is never the fast loop's fetch page, so every instruction there
  comes to the general path, which compares pc with the breakpoints before executing it;
- a page holding a watched address gets slow TLB tags, so every access there comes to
  ``tlb_lookup``, which stops the instruction before its access when it touches a watch
  (status WATCH_STOP; DEBUG_WATCH_HIT says which).  gdb treats RISC-V watchpoints as firing
  before the access (its "non-steppable" watchpoints): it steps over the instruction itself,
  with the watchpoint removed, and shows the stop after it with the old and new values.

Conditions beyond the address (privilege, V, VMID) are Python's business: the kernel stops
at every match and the stub resumes at once when the condition does not hold.
"""

import numba as nb
import numpy as np

from rvh.cpu.layout import (
    DEBUG_WATCH_ADDR,
    DEBUG_WATCH_HIT,
    M_BREAK_ADDR,
    M_BREAKPOINTS,
    M_WATCH_BASE,
    M_WATCHES,
    PAGE_MASK,
    WATCH_END,
    WATCH_FIELDS,
    WATCH_KIND,
    WATCH_READS,
    WATCH_START,
    WATCH_WRITES,
)


@nb.njit(cache=True)
def breakpoint_at(machine, pc):
    """Is there a breakpoint at virtual address pc?"""
    for i in range(machine[M_BREAKPOINTS]):
        if machine[M_BREAK_ADDR + i] == pc:
            return True
    return False


@nb.njit(cache=True)
def breakpoint_on_page(machine, page):
    """Does the virtual page ``page`` hold a breakpoint?"""
    for i in range(machine[M_BREAKPOINTS]):
        if (machine[M_BREAK_ADDR + i] & PAGE_MASK) == page:
            return True
    return False


@nb.njit(cache=True)
def watched_page(machine, page):
    """Does a watch cover part of the virtual page ``page``?"""
    for i in range(machine[M_WATCHES]):
        base = M_WATCH_BASE + i * WATCH_FIELDS
        start = machine[base + WATCH_START]
        end = machine[base + WATCH_END]
        if start < page + 4096 and page < end:
            return True
    return False


@nb.njit(cache=True)
def watch_touched(state, machine, vaddr, size, is_write):
    """Does the access [vaddr, vaddr + size) touch a watch?  If so, DEBUG_WATCH_HIT and
    DEBUG_WATCH_ADDR say which watch and where."""
    kind = np.int64(WATCH_WRITES if is_write else WATCH_READS)
    for i in range(machine[M_WATCHES]):
        base = M_WATCH_BASE + i * WATCH_FIELDS
        if (
            machine[base + WATCH_KIND] & kind
            and machine[base + WATCH_START] < vaddr + size
            and vaddr < machine[base + WATCH_END]
        ):
            state[DEBUG_WATCH_HIT] = i + 1
            state[DEBUG_WATCH_ADDR] = vaddr
            return True
    return False

"""Loads, stores and atomics that miss the kernel's fast path.

The fast path (in ``core.run``) handles an aligned access to a RAM page whose translation is in
the TLB.  Everything else comes here: TLB misses, misaligned accesses (performed byte by byte,
like QEMU 7.2 does for ordinary loads and stores: no misaligned trap), the CLINT (emulated in the
kernel: the timer is part of the core's notion of time), and other devices, for which the kernel
exits to Python and replays the instruction once the device has answered.

Every store to RAM goes through ``after_ram_store`` when its page is flagged, which keeps the
decode cache coherent with self-modifying code and notices writes to the HTIF tohost word.
"""

import numba as nb
import numpy as np

from rvh.cpu.arith import sext32
from rvh.cpu.interrupts import mtime_at
from rvh.cpu.layout import (
    CODE_PAGE_MASK,
    DC_SHIFT,
    DC_TAG,
    DECODE_CACHE_MASK,
    M_CLINT_BASE,
    M_CODE_PAGES,
    M_CODE_WRITES,
    M_MSIP,
    M_MTIME_OFFSET,
    M_MTIMECMP,
    M_NS_PER_TICK,
    M_NUM_HARTS,
    M_TOHOST,
    MMIO_ADDR,
    MMIO_DONE,
    MMIO_EXITS,
    MMIO_FAULT,
    MMIO_LOAD_REQUEST,
    MMIO_NONE,
    MMIO_SIZE,
    MMIO_STATE,
    MMIO_STORE_REQUEST,
    MMIO_VALUE,
    PAGE_FLAG_CODE,
    PAGE_FLAG_TRANSLATED,
    PAGE_FLAG_UNTRACKED,
    PAGE_FLAG_WATCH,
    TRAP_GVA,
    TRAP_TINST,
    TRAP_TVAL,
    TRAP_TVAL2,
    TRIGGER_ARMED_LOAD,
    TRIGGER_ARMED_STORE,
    TRIGGERS_ARMED,
)
from rvh.cpu.mmu import (
    ACCESS_READ,
    ACCESS_WRITE,
    NEED_EXIT,
    OK,
    access_fault,
    context_is_virtual,
    host_offset,
    is_rom,
    tlb_lookup,
)
from rvh.cpu.triggers import data_trigger_fires, trigger_breakpoint
from rvh.isa.causes import Exception_
from rvh.isa.instructions import Op

WATCH_HIT = -3  # the store completed and touched a watched word: exit after it

CLINT_SIZE = 0x10000
CLINT_MSIP = 0x0
CLINT_MTIMECMP = 0x4000
CLINT_MTIME = 0xBFF8


@nb.njit(cache=True)
def read_host(memory, host, size):
    value = np.int64(0)
    for i in range(size):
        value |= np.int64(memory[host + i]) << (8 * i)
    return value


@nb.njit(cache=True)
def write_host(memory, host, size, value):
    for i in range(size):
        memory[host + i] = (value >> (8 * i)) & 0xFF


@nb.njit(cache=True)
def invalidate_decoded(decode_cache, host, size):
    """Drop decoded instructions overlapping [host, host+size): one starting up to 2 bytes
    before the store may overlap it too.  Returns how many were dropped."""
    start = (host - 2) & ~np.int64(1)
    dropped = 0
    while start < host + size:
        slot = ((start >> 1) & DECODE_CACHE_MASK) << DC_SHIFT
        if decode_cache[slot + DC_TAG] == start:
            decode_cache[slot + DC_TAG] = -1
            dropped += 1
        start += 2
    return dropped


@nb.njit(cache=True, nogil=True)
def code_changed(machine, page_flags, host, size):
    """Decoded instructions in [host, host+size) left the decode cache: tell the translating
    tier (rvh/tier) which of those pages it has blocks on (M_CODE_PAGES, M_CODE_WRITES), so that
    it drops their translations; a page without blocks needs nothing."""
    for page in range(host >> 12, ((host + size - 1) >> 12) + 1):
        if page_flags[page] & PAGE_FLAG_TRANSLATED:
            machine[M_CODE_PAGES + (machine[M_CODE_WRITES] & CODE_PAGE_MASK)] = page
            machine[M_CODE_WRITES] += 1


@nb.njit(cache=True, nogil=True)
def store_over_code(machine, page_flags, decode_cache, host, size):
    """A store to [host, host+size) of a code page: drop the decoded instructions it
    overlaps, and report the page to the translating tier if the store may have changed its
    blocks' code: it overlapped a decoded instruction, or the page is PAGE_FLAG_UNTRACKED
    (some of its decoded instructions left the cache, so any store may be over them)."""
    dropped = invalidate_decoded(decode_cache, host, size)
    flags = page_flags[host >> 12] | page_flags[(host + size - 1) >> 12]
    if dropped or flags & PAGE_FLAG_UNTRACKED:
        code_changed(machine, page_flags, host, size)


@nb.njit(cache=True)
def after_ram_store(machine, page_flags, decode_cache, host, size):
    """Keep the decode cache coherent and watch tohost after a store to a flagged page."""
    flags = page_flags[host >> 12] | page_flags[(host + size - 1) >> 12]
    status = np.int64(OK)
    if flags & PAGE_FLAG_CODE:
        store_over_code(machine, page_flags, decode_cache, host, size)
    if flags & PAGE_FLAG_WATCH:
        tohost = machine[M_TOHOST]
        if tohost >= 0 and host < tohost + 8 and tohost < host + size:
            status = np.int64(WATCH_HIT)
    return status


# ---- CLINT (SiFive layout, as on QEMU's virt board) --------------------------------------


@nb.njit(cache=True)
def _clint_in_range(machine, paddr):
    return 0 <= paddr - machine[M_CLINT_BASE] < CLINT_SIZE


@nb.njit(cache=True)
def clint_read(machine, offset, size, now_ns):
    harts = machine[M_NUM_HARTS]
    word = offset & ~np.int64(7)
    value = np.int64(0)
    if offset < CLINT_MSIP + 4 * harts:
        value = machine[M_MSIP + (offset >> 2)] & 1
        return value
    if CLINT_MTIMECMP <= word < CLINT_MTIMECMP + 8 * harts:
        value = machine[M_MTIMECMP + ((word - CLINT_MTIMECMP) >> 3)]
    elif word == CLINT_MTIME:
        value = mtime_at(machine, now_ns)
    else:
        return np.int64(0)
    if size == 4:
        if offset & 4:
            return (value >> 32) & 0xFFFFFFFF
        return value & 0xFFFFFFFF
    return value


@nb.njit(cache=True)
def clint_write(machine, offset, size, value, now_ns):
    harts = machine[M_NUM_HARTS]
    word = offset & ~np.int64(7)
    if offset < CLINT_MSIP + 4 * harts:
        machine[M_MSIP + (offset >> 2)] = value & 1
        return
    if CLINT_MTIMECMP <= word < CLINT_MTIMECMP + 8 * harts:
        slot = M_MTIMECMP + ((word - CLINT_MTIMECMP) >> 3)
        old = machine[slot]
    elif word == CLINT_MTIME:
        old = mtime_at(machine, now_ns)
    else:
        return
    if size == 4:
        if offset & 4:
            new = (old & 0xFFFFFFFF) | ((value & 0xFFFFFFFF) << 32)
        else:
            new = (old & ~np.int64(0xFFFFFFFF)) | (value & 0xFFFFFFFF)
    else:
        new = value
    if word == CLINT_MTIME:
        machine[M_MTIME_OFFSET] = new - now_ns // machine[M_NS_PER_TICK]
    else:
        machine[slot] = new


# ---- devices in Python --------------------------------------------------------------------


@nb.njit(cache=True)
def fault_at(state, vaddr, ctx):
    """Trap values of a fault found outside the walk (misaligned atomics, devices, ROM)."""
    state[TRAP_TVAL] = vaddr
    state[TRAP_GVA] = 1 if context_is_virtual(ctx) else 0
    state[TRAP_TVAL2] = 0
    state[TRAP_TINST] = 0


@nb.njit(cache=True)
def _mmio(state, paddr, size, value, is_store, vaddr, access, ctx):
    """Request a device access from Python, or consume the answer on the replay."""
    if state[MMIO_STATE] == MMIO_DONE and state[MMIO_ADDR] == paddr and state[MMIO_SIZE] == size:
        state[MMIO_STATE] = MMIO_NONE
        return state[MMIO_VALUE], np.int64(OK)
    if state[MMIO_STATE] == MMIO_FAULT and state[MMIO_ADDR] == paddr:
        state[MMIO_STATE] = MMIO_NONE
        fault_at(state, vaddr, ctx)
        return np.int64(0), access_fault(access)
    state[MMIO_STATE] = MMIO_STORE_REQUEST if is_store else MMIO_LOAD_REQUEST
    state[MMIO_ADDR] = paddr
    state[MMIO_SIZE] = size
    state[MMIO_VALUE] = value
    state[MMIO_EXITS] += 1
    return np.int64(0), np.int64(NEED_EXIT)


# ---- the slow paths ------------------------------------------------------------------------


@nb.njit(cache=True)
def load_slow(state, machine, memory, tlb, vaddr, size, ctx, now_ns, access):
    """Returns (value zero-extended from size bytes, status).  ``access`` is ACCESS_READ, or
    ACCESS_READ_EXECUTABLE for HLVX."""
    if state[TRIGGERS_ARMED] & TRIGGER_ARMED_LOAD and data_trigger_fires(
        state, vaddr, size, TRIGGER_ARMED_LOAD
    ):
        # a load trigger fires before the access (rvh/cpu/triggers.py)
        return np.int64(0), trigger_breakpoint(state, vaddr, context_is_virtual(ctx))
    if vaddr & (size - 1):
        # misaligned: every byte on its own, possibly across two pages; RAM only
        value = np.int64(0)
        for i in range(size):
            paddr, status = tlb_lookup(state, machine, memory, tlb, vaddr + i, 1, access, ctx)
            if status != OK:
                return np.int64(0), status
            host = host_offset(machine, paddr, 1)
            if host < 0:
                fault_at(state, vaddr, ctx)
                return np.int64(0), access_fault(access)
            value |= np.int64(memory[host]) << (8 * i)
        return value, np.int64(OK)
    paddr, status = tlb_lookup(state, machine, memory, tlb, vaddr, size, access, ctx)
    if status != OK:
        return np.int64(0), status
    host = host_offset(machine, paddr, size)
    if host >= 0:
        return read_host(memory, host, size), np.int64(OK)
    if _clint_in_range(machine, paddr):
        return clint_read(machine, paddr - machine[M_CLINT_BASE], size, now_ns), np.int64(OK)
    return _mmio(state, paddr, size, np.int64(0), False, vaddr, access, ctx)


@nb.njit(cache=True)
def store_slow(
    state, machine, memory, page_flags, tlb, decode_cache, vaddr, size, value, ctx, now_ns
):
    """Returns a status: OK, WATCH_HIT, NEED_EXIT or an exception cause."""
    if state[TRIGGERS_ARMED] & TRIGGER_ARMED_STORE and data_trigger_fires(
        state, vaddr, size, TRIGGER_ARMED_STORE
    ):
        # a store trigger fires before the access: memory is untouched (rvh/cpu/triggers.py)
        return trigger_breakpoint(state, vaddr, context_is_virtual(ctx))
    if vaddr & (size - 1):
        # misaligned: translate every byte first, so a fault leaves memory untouched
        for i in range(size):
            paddr, status = tlb_lookup(state, machine, memory, tlb, vaddr + i, 1, ACCESS_WRITE, ctx)
            if status != OK:
                return status
            if host_offset(machine, paddr, 1) < 0 or is_rom(machine, paddr):
                fault_at(state, vaddr, ctx)
                return access_fault(ACCESS_WRITE)
        result = np.int64(OK)
        for i in range(size):
            paddr, status = tlb_lookup(state, machine, memory, tlb, vaddr + i, 1, ACCESS_WRITE, ctx)
            host = host_offset(machine, paddr, 1)
            memory[host] = (value >> (8 * i)) & 0xFF
            if after_ram_store(machine, page_flags, decode_cache, host, 1) == WATCH_HIT:
                result = np.int64(WATCH_HIT)
        return result
    paddr, status = tlb_lookup(state, machine, memory, tlb, vaddr, size, ACCESS_WRITE, ctx)
    if status != OK:
        return status
    host = host_offset(machine, paddr, size)
    if host >= 0:
        if is_rom(machine, paddr):
            fault_at(state, vaddr, ctx)
            return access_fault(ACCESS_WRITE)
        write_host(memory, host, size, value)
        return after_ram_store(machine, page_flags, decode_cache, host, size)
    if _clint_in_range(machine, paddr):
        clint_write(machine, paddr - machine[M_CLINT_BASE], size, value, now_ns)
        return np.int64(OK)
    _, status = _mmio(state, paddr, size, value, True, vaddr, ACCESS_WRITE, ctx)
    return status


@nb.njit(cache=True)
def amo_address(state, machine, memory, tlb, vaddr, size, ctx, for_load_reserved):
    """Translate an LR/SC/AMO address: aligned, RAM only (devices do not do atomics).

    Returns (host offset, physical address, status).
    """
    if vaddr & (size - 1):
        fault_at(state, vaddr, ctx)
        return (
            np.int64(-1),
            np.int64(0),
            np.int64(
                Exception_.LOAD_ADDRESS_MISALIGNED
                if for_load_reserved
                else Exception_.STORE_ADDRESS_MISALIGNED
            ),
        )
    access = ACCESS_READ if for_load_reserved else ACCESS_WRITE
    paddr, status = tlb_lookup(state, machine, memory, tlb, vaddr, size, access, ctx)
    if status != OK:
        return np.int64(-1), np.int64(0), status
    host = host_offset(machine, paddr, size)
    if host < 0 or (access == ACCESS_WRITE and is_rom(machine, paddr)):
        fault_at(state, vaddr, ctx)
        return np.int64(-1), np.int64(0), access_fault(access)
    return host, paddr, np.int64(OK)


@nb.njit(cache=True)
def amo_compute(op, old, operand, size):
    """The value an AMO writes back (A chapter 8.4), by the decoded op (the decode table's
    instruction id, like every other instruction: never the raw bits)."""
    if size == 4:
        old = sext32(old)
        operand = sext32(operand)
    if op == Op.AMOSWAP_W or op == Op.AMOSWAP_D:
        return operand
    if op == Op.AMOADD_W or op == Op.AMOADD_D:
        return old + operand
    if op == Op.AMOXOR_W or op == Op.AMOXOR_D:
        return old ^ operand
    if op == Op.AMOAND_W or op == Op.AMOAND_D:
        return old & operand
    if op == Op.AMOOR_W or op == Op.AMOOR_D:
        return old | operand
    if op == Op.AMOMIN_W or op == Op.AMOMIN_D:
        return old if old < operand else operand
    if op == Op.AMOMAX_W or op == Op.AMOMAX_D:
        return old if old > operand else operand
    # unsigned comparisons on the zero-extended width
    minimum = op == Op.AMOMINU_W or op == Op.AMOMINU_D
    if size == 4:
        a = old & 0xFFFFFFFF
        b = operand & 0xFFFFFFFF
        if minimum:
            return old if a < b else operand
        return old if a > b else operand
    a_u = np.uint64(old)
    b_u = np.uint64(operand)
    if minimum:
        return old if a_u < b_u else operand
    return old if a_u > b_u else operand

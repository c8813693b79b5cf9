"""Address translation and physical memory protection (privileged spec 3.7, 4.3, 4.4, 9.5).

``translate`` turns a virtual address into a physical one for one access, the way the
hardware would: PMP on every physical access (page-table reads included), Sv39/Sv48 walks
with the spec's numbered steps, A/D bits set by the walk (QEMU 7.2 does the same: Svadu
behaviour) and the fault cause that matches the access.  ``tlb_lookup`` sits in front of it
and caches the result as a host offset, per access type, in the software TLB: the kernel's fast
paths compare one tag and add one addend.

Status codes: ``OK`` and ``NEED_EXIT`` are negative, any value >= 0 is an exception cause (the
trap value is left in ``state[TRAP_TVAL]``).
"""

import numba as nb
import numpy as np

from rvh.cpu.layout import (
    CSR_BASE,
    CTX_M,
    CTX_S,
    CTX_S_SUM,
    CTX_U,
    DATA_CTX,
    FETCH_CTX,
    M_RAM_BASE,
    M_RAM_SIZE,
    M_ROM_BASE,
    M_ROM_HOST,
    M_ROM_SIZE,
    PAGE_MASK,
    PAGE_SIZE,
    PMP_ACTIVE,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    TLB_ADDEND,
    TLB_CONTEXTS,
    TLB_EXEC_FLIP,
    TLB_INVALID,
    TLB_MISSES,
    TLB_PADDR,
    TLB_SET_MASK,
    TLB_SETS,
    TLB_SHIFT,
    TLB_SLOW,
    TLB_TAG_EXEC,
    TLB_TAG_READ,
    TLB_TAG_WRITE,
    TLB_VPAGE,
    TRAP_TVAL,
    VIRT,
)
from rvh.isa.csrs import (
    MSTATUS_MPP,
    MSTATUS_MPP_SHIFT,
    MSTATUS_MPRV,
    MSTATUS_MXR,
    MSTATUS_SUM,
    SATP_MODE_SHIFT,
    SATP_MODE_SV39,
    SATP_PPN_MASK,
)

OK = -1
NEED_EXIT = -2

ACCESS_READ = 0
ACCESS_WRITE = 1
ACCESS_EXECUTE = 2

# exception causes per access type: access fault, page fault
_ACCESS_FAULT = (5, 7, 1)
_PAGE_FAULT = (13, 15, 12)

CSR_MSTATUS = CSR_BASE + 0x300
CSR_SATP = CSR_BASE + 0x180
CSR_PMPCFG0 = CSR_BASE + 0x3A0
CSR_PMPADDR0 = CSR_BASE + 0x3B0

PTE_V = 1
PTE_R = 2
PTE_W = 4
PTE_X = 8
PTE_U = 16
PTE_G = 32
PTE_A = 64
PTE_D = 128
PTE_PPN_MASK = (np.int64(1) << 44) - 1
PTE_RESERVED = np.int64(-1) << 54  # bits 63:54: N, PBMT and reserved (no Svnapot/Svpbmt)

PMP_R = 1
PMP_W = 2
PMP_X = 4
PMP_A_SHIFT = 3
PMP_L = 0x80
PMP_ENTRIES = 16


@nb.njit(cache=True)
def access_fault(access):
    if access == ACCESS_WRITE:
        return np.int64(7)
    if access == ACCESS_EXECUTE:
        return np.int64(1)
    return np.int64(5)


@nb.njit(cache=True)
def page_fault(access):
    if access == ACCESS_WRITE:
        return np.int64(15)
    if access == ACCESS_EXECUTE:
        return np.int64(12)
    return np.int64(13)


@nb.njit(cache=True)
def host_offset(machine, paddr, size):
    """Offset of [paddr, paddr+size) in the memory array, or -1 if it is not RAM or ROM."""
    ram_off = paddr - machine[M_RAM_BASE]
    if ram_off >= 0 and ram_off + size <= machine[M_RAM_SIZE]:
        return ram_off
    rom_off = paddr - machine[M_ROM_BASE]
    if rom_off >= 0 and rom_off + size <= machine[M_ROM_SIZE]:
        return machine[M_ROM_HOST] + rom_off
    return np.int64(-1)


@nb.njit(cache=True)
def is_rom(machine, paddr):
    rom_off = paddr - machine[M_ROM_BASE]
    return rom_off >= 0 and rom_off < machine[M_ROM_SIZE]


# ---- PMP (3.7) ---------------------------------------------------------------------------


@nb.njit(cache=True)
def pmp_config(state, index):
    """The 8-bit configuration of PMP entry ``index`` (pmpcfg0 holds 0-7, pmpcfg2 8-15)."""
    register = state[CSR_PMPCFG0 + 2 * (index >> 3)]
    return (register >> (8 * (index & 7))) & 0xFF


@nb.njit(cache=True)
def pmp_range(state, index):
    """[start, end) of PMP entry ``index`` in bytes; (0, 0) when it is OFF."""
    cfg = pmp_config(state, index)
    mode = (cfg >> PMP_A_SHIFT) & 3
    address = state[CSR_PMPADDR0 + index] & ((np.int64(1) << 54) - 1)
    if mode == 1:  # TOR: previous pmpaddr <= a < this pmpaddr
        start = np.int64(0)
        if index > 0:
            start = (state[CSR_PMPADDR0 + index - 1] & ((np.int64(1) << 54) - 1)) << 2
        return start, address << 2
    if mode == 2:  # NA4
        return address << 2, (address << 2) + 4
    if mode == 3:  # NAPOT: trailing ones give the size
        ones = np.int64(0)
        while ones < 54 and (address >> ones) & 1:
            ones += 1
        size = np.int64(1) << (ones + 3)
        start = (address & ~((np.int64(1) << ones) - 1)) << 2
        return start, start + size
    return np.int64(0), np.int64(0)


@nb.njit(cache=True)
def pmp_check(state, paddr, size, access, priv):
    """Returns (allowed, whole_page): whole_page says the same answer holds for the 4 KiB page
    (so the TLB may cache it).  The lowest-numbered matching entry decides (3.7.1.3)."""
    if state[PMP_ACTIVE] == 0:
        # every entry OFF: M-mode is allowed, S and U are not (no entry matches)
        return priv == PRIV_M, True
    page = paddr & PAGE_MASK
    whole_page = True
    need = PMP_R if access == ACCESS_READ else (PMP_W if access == ACCESS_WRITE else PMP_X)
    for i in range(PMP_ENTRIES):
        start, end = pmp_range(state, i)
        if start >= end:
            continue
        if end <= page or start >= page + PAGE_SIZE:
            continue  # does not touch this page
        if not (start <= page and end >= page + PAGE_SIZE):
            whole_page = False
        if paddr + size <= start or paddr >= end:
            continue  # touches the page but not this access
        if paddr < start or paddr + size > end:
            return False, False  # matches only part of the access: fails
        cfg = pmp_config(state, i)
        if priv == PRIV_M and (cfg & PMP_L) == 0:
            return True, whole_page
        return (cfg & need) != 0, whole_page
    return priv == PRIV_M, whole_page


# ---- contexts ----------------------------------------------------------------------------


@nb.njit(cache=True)
def context_for(priv, virt, sum_bit):
    if priv == PRIV_M:
        return CTX_M
    if priv == PRIV_S:
        return CTX_S_SUM if sum_bit else CTX_S
    return CTX_U


@nb.njit(cache=True)
def update_contexts(state):
    """Recompute the TLB contexts of fetch and data accesses after a mode or mstatus change."""
    mstatus = state[CSR_MSTATUS]
    priv = state[PRIV]
    virt = state[VIRT]
    sum_bit = (mstatus & MSTATUS_SUM) != 0
    state[FETCH_CTX] = context_for(priv, virt, sum_bit)
    if priv == PRIV_M and (mstatus & MSTATUS_MPRV):
        data_priv = (mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT
        state[DATA_CTX] = context_for(data_priv, 0, sum_bit)
    else:
        state[DATA_CTX] = state[FETCH_CTX]


@nb.njit(cache=True)
def context_priv(ctx):
    if ctx == CTX_M:
        return PRIV_M
    if ctx == CTX_S or ctx == CTX_S_SUM:
        return PRIV_S
    return PRIV_U


@nb.njit(cache=True)
def tlb_slot(ctx, index):
    """First element of TLB entry ``index`` of context ``ctx`` in the flat tlb array."""
    return ((ctx & (TLB_CONTEXTS - 1)) * TLB_SETS + (index & TLB_SET_MASK)) << TLB_SHIFT


@nb.njit(cache=True)
def flush_tlb(tlb, first_ctx, last_ctx):
    for ctx in range(first_ctx, last_ctx + 1):
        for index in range(TLB_SETS):
            slot = tlb_slot(ctx, index)
            tlb[slot + TLB_TAG_READ] = TLB_INVALID
            tlb[slot + TLB_TAG_WRITE] = TLB_INVALID
            tlb[slot + TLB_TAG_EXEC] = TLB_INVALID


@nb.njit(cache=True)
def flush_tlb_page(tlb, first_ctx, last_ctx, vaddr):
    index = (vaddr >> 12) & TLB_SET_MASK
    for ctx in range(first_ctx, last_ctx + 1):
        for entry in (index, index ^ TLB_EXEC_FLIP):
            tlb[tlb_slot(ctx, entry) + TLB_TAG_READ] = TLB_INVALID
            tlb[tlb_slot(ctx, entry) + TLB_TAG_WRITE] = TLB_INVALID
            tlb[tlb_slot(ctx, entry) + TLB_TAG_EXEC] = TLB_INVALID


@nb.njit(cache=True)
def flush_all(tlb):
    flush_tlb(tlb, 0, TLB_CONTEXTS - 1)


# ---- page-table walk (4.3.2) -------------------------------------------------------------


@nb.njit(cache=True)
def _read_pte(state, machine, memory, address, priv_for_pmp):
    """Load a PTE (an implicit access checked by PMP as a read at S level)."""
    allowed, _ = pmp_check(state, address, 8, ACCESS_READ, priv_for_pmp)
    host = host_offset(machine, address, 8)
    if not allowed or host < 0 or (address & 7):
        return np.int64(0), False
    value = np.int64(0)
    for i in range(8):
        value |= np.int64(memory[host + i]) << (8 * i)
    return value, True


@nb.njit(cache=True)
def _write_pte(state, machine, memory, address, value):
    allowed, _ = pmp_check(state, address, 8, ACCESS_WRITE, PRIV_S)
    host = host_offset(machine, address, 8)
    if not allowed or host < 0 or is_rom(machine, address):
        return False
    for i in range(8):
        memory[host + i] = (value >> (8 * i)) & 0xFF
    return True


@nb.njit(cache=True)
def walk(state, machine, memory, vaddr, access, priv):
    """Sv39/Sv48 translation of ``vaddr`` for ``priv`` (S or U).  Returns (paddr, cause)."""
    satp = state[CSR_SATP]
    mode = (satp >> SATP_MODE_SHIFT) & 0xF
    if mode == 0:
        return vaddr, OK
    levels = 3 if mode == SATP_MODE_SV39 else 4
    va_bits = 12 + 9 * levels
    # the address must be canonical: bits 63..va_bits-1 all equal (4.3.2 / 4.4.1)
    top = vaddr >> (va_bits - 1)
    if top != 0 and top != -1:
        state[TRAP_TVAL] = vaddr
        return np.int64(0), page_fault(access)
    mstatus = state[CSR_MSTATUS]
    # step 1: a = satp.ppn * PAGESIZE, i = LEVELS - 1
    table = (satp & SATP_PPN_MASK) << 12
    level = levels - 1
    while True:
        # step 2: pte = memory[a + va.vpn[i] * PTESIZE]; access-fault if PMP forbids it
        vpn = (vaddr >> (12 + 9 * level)) & 0x1FF
        pte_address = table + vpn * 8
        pte, loaded = _read_pte(state, machine, memory, pte_address, PRIV_S)
        if not loaded:
            state[TRAP_TVAL] = vaddr
            return np.int64(0), access_fault(access)
        # step 3: invalid, or W without R, or reserved bits set: page fault
        if (pte & PTE_V) == 0 or ((pte & PTE_R) == 0 and (pte & PTE_W) != 0):
            break
        if pte & PTE_RESERVED:
            break
        # step 4: a pointer to the next level unless R or X is set
        if (pte & (PTE_R | PTE_X)) == 0:
            if pte & (PTE_D | PTE_A | PTE_U):
                break  # non-leaf PTEs keep D, A, U clear (4.3.1)
            level -= 1
            if level < 0:
                break
            table = ((pte >> 10) & PTE_PPN_MASK) << 12
            continue
        # step 5: a leaf: check R/W/X against the access, with MXR, and U against SUM
        if access == ACCESS_EXECUTE:
            if (pte & PTE_X) == 0:
                break
        elif access == ACCESS_READ:
            readable = (pte & PTE_R) != 0 or ((mstatus & MSTATUS_MXR) != 0 and (pte & PTE_X) != 0)
            if not readable:
                break
        else:
            if (pte & PTE_W) == 0:
                break
        if priv == PRIV_U:
            if (pte & PTE_U) == 0:
                break
        else:
            if pte & PTE_U:
                # S-mode never executes user pages; it reads/writes them only with SUM
                if access == ACCESS_EXECUTE or (mstatus & MSTATUS_SUM) == 0:
                    break
        # step 6: a superpage must be aligned
        ppn = (pte >> 10) & PTE_PPN_MASK
        if level > 0 and (ppn & ((np.int64(1) << (9 * level)) - 1)) != 0:
            break
        # step 7: A and D are set by the walk (the QEMU 7.2 behaviour)
        new_pte = pte | PTE_A
        if access == ACCESS_WRITE:
            new_pte |= PTE_D
        if new_pte != pte:
            if not _write_pte(state, machine, memory, pte_address, new_pte):
                state[TRAP_TVAL] = vaddr
                return np.int64(0), access_fault(access)
        # step 8: the physical address; superpages take low VPN bits from the address
        offset_bits = 12 + 9 * level
        paddr = ((ppn << 12) & ~((np.int64(1) << offset_bits) - 1)) | (
            vaddr & ((np.int64(1) << offset_bits) - 1)
        )
        return paddr, OK
    state[TRAP_TVAL] = vaddr
    return np.int64(0), page_fault(access)


@nb.njit(cache=True)
def translate(state, machine, memory, vaddr, size, access, ctx):
    """Virtual -> physical for one access in translation context ``ctx``, PMP included.

    Returns (paddr, status, cacheable): cacheable says the TLB may keep the result for the page.
    """
    priv = context_priv(ctx)
    if ctx == CTX_M:
        paddr = vaddr
    else:
        paddr, status = walk(state, machine, memory, vaddr, access, priv)
        if status != OK:
            return np.int64(0), status, False
    allowed, whole_page = pmp_check(state, paddr, size, access, priv)
    if not allowed:
        state[TRAP_TVAL] = vaddr
        return np.int64(0), access_fault(access), False
    return paddr, OK, whole_page


@nb.njit(cache=True)
def tlb_lookup(state, machine, memory, tlb, vaddr, size, access, ctx):
    """Physical address of ``vaddr`` for ``access`` through the TLB, filling it on a miss.

    Returns (paddr, status).  A filled entry lets the kernel's fast path hit next time; pages
    that are not RAM get a slow tag, so every access to them comes here, but skips the walk.
    """
    index = (vaddr >> 12) & TLB_SET_MASK
    page = vaddr & PAGE_MASK
    if access == ACCESS_READ:
        tag_field = TLB_TAG_READ
    elif access == ACCESS_WRITE:
        tag_field = TLB_TAG_WRITE
    else:
        tag_field = TLB_TAG_EXEC
        index ^= TLB_EXEC_FLIP
    tag = tlb[tlb_slot(ctx, index) + tag_field]
    if tag != TLB_INVALID and (tag & ~np.int64(TLB_SLOW)) == page:
        return tlb[tlb_slot(ctx, index) + TLB_PADDR] | (vaddr & ~PAGE_MASK), OK
    state[TLB_MISSES] += 1
    paddr, status, cacheable = translate(state, machine, memory, vaddr, size, access, ctx)
    if status != OK or not cacheable:
        return paddr, status
    ppage = paddr & PAGE_MASK
    if (
        tlb[tlb_slot(ctx, index) + TLB_VPAGE] != page
        or tlb[tlb_slot(ctx, index) + TLB_PADDR] != ppage
    ):
        # the set held another translation: its other tags must not survive
        tlb[tlb_slot(ctx, index) + TLB_TAG_READ] = TLB_INVALID
        tlb[tlb_slot(ctx, index) + TLB_TAG_WRITE] = TLB_INVALID
        tlb[tlb_slot(ctx, index) + TLB_TAG_EXEC] = TLB_INVALID
        tlb[tlb_slot(ctx, index) + TLB_VPAGE] = page
        tlb[tlb_slot(ctx, index) + TLB_PADDR] = ppage
    host = host_offset(machine, ppage, PAGE_SIZE)
    if host >= 0 and not (access == ACCESS_WRITE and is_rom(machine, ppage)):
        tlb[tlb_slot(ctx, index) + TLB_ADDEND] = host - page
        tlb[tlb_slot(ctx, index) + tag_field] = page
    else:
        tlb[tlb_slot(ctx, index) + tag_field] = page | TLB_SLOW
    return paddr, OK

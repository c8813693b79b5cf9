"""Address translation and physical memory protection (privileged spec 3.7, 4.3, 4.4, 8.5).

``translate`` turns a virtual address into a physical one for one access, the way the hardware
would: PMP on every physical access (page-table reads included); single-stage Sv39/Sv48 walks
for HS/U, and for V=1 the two-stage walk: the VS-stage (vsatp) whose every page-table access is
itself translated by the G-stage (hgatp, Sv39x4/Sv48x4), then the G-stage for the final guest
physical address.  One loop, ``walk``, serves the three stages (``STAGE_SINGLE``,
``STAGE_VS``, ``STAGE_G``), with the spec's numbered steps.  A/D bits are set by the walks
(QEMU 7.2 does the same: Svadu behaviour).  Faults carry the cause that matches the access
and stage, with the trap values in the state's side channel: TRAP_TVAL (the virtual address),
TRAP_TVAL2 (guest physical address >> 2 for htval/mtval2), TRAP_TINST (a pseudo-instruction for
implicit VS-stage accesses, or -1 to ask for the transformed instruction) and TRAP_GVA.

``tlb_lookup`` sits in front of it and caches the result as a host offset, per access type, in
the software TLB (banks per address space, see ``layout``): the kernel's fast paths compare one
tag and add one addend.

Status codes: ``OK`` and ``NEED_EXIT`` are negative, any value >= 0 is an exception cause.
"""

import numba as nb
import numpy as np

from rvh.cpu.debug import breakpoint_on_page, watch_touched, watched_page
from rvh.cpu.layout import (
    BANK_IS_FREE,
    BANK_IS_HS,
    BANK_IS_VS,
    CSR_HGATP,
    CSR_HSTATUS,
    CSR_MSTATUS,
    CSR_PMPADDR0,
    CSR_PMPCFG0,
    CSR_SATP,
    CSR_VSATP,
    CSR_VSSTATUS,
    CTX_M,
    CTX_S,
    CTX_S_SUM,
    CTX_U,
    CTX_VS,
    CTX_VS_SUM,
    CTX_VU,
    DATA_CTX,
    DIRTY_BITMAP,
    FETCH_CTX,
    G_LEAF_HGATP,
    G_LEAF_PTE,
    G_LEAF_REGION,
    G_LEAF_SHIFT,
    M_BREAKPOINTS,
    M_DIRTY_LOG,
    M_RAM_BASE,
    M_RAM_SIZE,
    M_ROM_BASE,
    M_ROM_HOST,
    M_ROM_SIZE,
    M_WATCHES,
    NON_M_CONTEXTS,
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PMP_ACTIVE,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    TLB_ADDEND,
    TLB_ALL_CONTEXTS,
    TLB_BANK_HGATP,
    TLB_BANK_HS,
    TLB_BANK_KIND,
    TLB_BANK_NEXT,
    TLB_BANK_SATP,
    TLB_BANK_VS,
    TLB_BANKS,
    TLB_CONTEXTS,
    TLB_CTX_FILLED,
    TLB_CTX_SUPER,
    TLB_DIRTY_PROTECT,
    TLB_EXEC_FLIP,
    TLB_FILLED,
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
    TRAP_GVA,
    TRAP_TINST,
    TRAP_TVAL,
    TRAP_TVAL2,
    TRIGGER_ARMED_EXECUTE,
    TRIGGER_ARMED_LOAD,
    TRIGGER_ARMED_STORE,
    TRIGGERS_ARMED,
    VIRT,
    WALK_LEAF_LEVEL,
)
from rvh.cpu.triggers import trigger_on_page
from rvh.isa.causes import Exception_
from rvh.isa.fields import (
    HGATP_VMID_MASK,
    HGATP_VMID_SHIFT,
    HSTATUS_VTVM_MASK,
    MSTATUS_MPP_MASK,
    MSTATUS_MPP_SHIFT,
    MSTATUS_MPRV_MASK,
    MSTATUS_MPV_MASK,
    MSTATUS_MXR_MASK,
    MSTATUS_SUM_MASK,
    MSTATUS_TVM_MASK,
    PMP_ENTRIES,
    PMPCFG_A_MASK,
    PMPCFG_A_SHIFT,
    PMPCFG_L_MASK,
    PMPCFG_R_MASK,
    PMPCFG_W_MASK,
    PMPCFG_X_MASK,
    PTE_A_MASK,
    PTE_D_MASK,
    PTE_PPN_MASK,
    PTE_PPN_SHIFT,
    PTE_R_MASK,
    PTE_RESERVED_MASK,
    PTE_U_MASK,
    PTE_V_MASK,
    PTE_W_MASK,
    PTE_X_MASK,
    SATP_ASID_MASK,
    SATP_ASID_SHIFT,
    SATP_MODE_SHIFT,
    SATP_MODE_SV39,
    SATP_PPN_MASK,
    TINST_PSEUDO_PTE_READ_64,
    TINST_PSEUDO_PTE_WRITE_64,
)

OK = -1
NEED_EXIT = -2
# an access touched a debugger watchpoint: the instruction stops before it, for gdb to step
# (-3 and -4 are memory.WATCH_HIT and core.WFI_SLEEP)
WATCH_STOP = -5

ACCESS_READ = 0
ACCESS_WRITE = 1
ACCESS_EXECUTE = 2
ACCESS_READ_EXECUTABLE = 3  # HLVX: a load that needs execute permission

# The widest ASID and VMID (fences name one in rs2)
ASID_MAX = SATP_ASID_MASK >> SATP_ASID_SHIFT
VMID_MAX = HGATP_VMID_MASK >> HGATP_VMID_SHIFT

# The stage a page-table walk translates (walk's ``stage``)
STAGE_SINGLE = 0  # satp: virtual -> physical with V=0 (4.3)
STAGE_VS = 1  # vsatp: guest virtual -> guest physical with V=1 (8.5)
STAGE_G = 2  # hgatp: guest physical -> supervisor physical (8.5.1)

# What a G-stage walk translates (walk's ``implicit``): the access itself, or an implicit
# access of the VS-stage walk, checked as a load (PTE read) or a store (A/D update)
EXPLICIT = -1
READ_PTE = ACCESS_READ
UPDATE_PTE = ACCESS_WRITE


# htinst/mtinst pseudo-instructions for implicit accesses of a VS-stage walk (8.6.3, RV64)
PSEUDO_PTE_READ = TINST_PSEUDO_PTE_READ_64
PSEUDO_PTE_WRITE = TINST_PSEUDO_PTE_WRITE_64


@nb.njit(cache=True)
def access_fault(access):
    if access == ACCESS_WRITE:
        return np.int64(Exception_.STORE_ACCESS_FAULT)
    if access == ACCESS_EXECUTE:
        return np.int64(Exception_.INSTRUCTION_ACCESS_FAULT)
    return np.int64(Exception_.LOAD_ACCESS_FAULT)


@nb.njit(cache=True)
def page_fault(access):
    if access == ACCESS_WRITE:
        return np.int64(Exception_.STORE_PAGE_FAULT)
    if access == ACCESS_EXECUTE:
        return np.int64(Exception_.INSTRUCTION_PAGE_FAULT)
    return np.int64(Exception_.LOAD_PAGE_FAULT)


@nb.njit(cache=True)
def guest_page_fault(access):
    if access == ACCESS_WRITE:
        return np.int64(Exception_.STORE_GUEST_PAGE_FAULT)
    if access == ACCESS_EXECUTE:
        return np.int64(Exception_.INSTRUCTION_GUEST_PAGE_FAULT)
    return np.int64(Exception_.LOAD_GUEST_PAGE_FAULT)


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
def mark_dirty(machine, paddr):
    """Dirty logging: set the bit of ``paddr``'s RAM page (other addresses have none)."""
    ram_off = paddr - machine[M_RAM_BASE]
    if ram_off >= 0 and ram_off < machine[M_RAM_SIZE]:
        page = ram_off >> PAGE_SHIFT
        machine[DIRTY_BITMAP + (page >> 6)] |= np.int64(1) << (page & 63)


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
    mode = (cfg & PMPCFG_A_MASK) >> PMPCFG_A_SHIFT
    address = state[CSR_PMPADDR0 + index] & ((np.int64(1) << 54) - 1)
    if mode == 1:  # TOR: previous pmpaddr <= a < this pmpaddr
        start = np.int64(0)
        if index > 0:
            start = (state[CSR_PMPADDR0 + index - 1] & ((np.int64(1) << 54) - 1)) << 2
        return start, address << 2
    if mode == 2:  # NA4
        return address << 2, (address << 2) + 4
    if mode == 3:  # NAPOT: trailing ones give the size
        # the lowest clear bit, 2^ones (ones = 54 when the 54-bit field is all ones); a loop
        # over the ones cost up to 54 steps for the usual "all of memory" entry, on every
        # page-table read of a walk
        low = ~address & (address + 1)
        start = (address & ~(low - 1)) << 2
        return start, start + (low << 3)
    return np.int64(0), np.int64(0)


@nb.njit(cache=True)
def pmp_check(state, paddr, size, access, priv):
    """Returns (allowed, whole_page): whole_page says the same answer holds for the 4 KiB page
    (so the TLB may cache it).  The lowest-numbered matching entry decides (3.7.1)."""
    if state[PMP_ACTIVE] == 0:
        # every entry OFF: M-mode is allowed, S and U are not (no entry matches)
        return priv == PRIV_M, True
    page = paddr & PAGE_MASK
    whole_page = True
    if access == ACCESS_WRITE:
        need = PMPCFG_W_MASK
    elif access == ACCESS_EXECUTE:
        need = PMPCFG_X_MASK
    elif access == ACCESS_READ_EXECUTABLE:
        # HLVX: "the supervisor physical memory attributes must grant both execute and read
        # permissions" (8.3.1)
        need = PMPCFG_X_MASK | PMPCFG_R_MASK
    else:
        need = PMPCFG_R_MASK
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
        if priv == PRIV_M and (cfg & PMPCFG_L_MASK) == 0:
            return True, whole_page
        return (cfg & need) == need, whole_page
    return priv == PRIV_M, whole_page


# ---- contexts and banks ------------------------------------------------------------------


@nb.njit(cache=True)
def local_context(priv, virt, sum_bit):
    """Context within a bank for an access at (priv, V) with the relevant SUM bit."""
    if priv == PRIV_M:
        return CTX_M
    if virt:
        if priv == PRIV_S:
            return CTX_VS_SUM if sum_bit else CTX_VS
        return CTX_VU
    if priv == PRIV_S:
        return CTX_S_SUM if sum_bit else CTX_S
    return CTX_U


@nb.njit(cache=True)
def full_context(state, priv, virt, sum_bit):
    bank = state[TLB_BANK_VS] if (virt and priv != PRIV_M) else state[TLB_BANK_HS]
    return bank * TLB_CONTEXTS + local_context(priv, virt, sum_bit)


@nb.njit(cache=True)
def update_contexts(state):
    """Recompute the TLB contexts of fetch and data accesses after a mode or status change."""
    mstatus = state[CSR_MSTATUS]
    priv = state[PRIV]
    virt = state[VIRT]
    if virt:
        sum_bit = (state[CSR_VSSTATUS] & MSTATUS_SUM_MASK) != 0
    else:
        sum_bit = (mstatus & MSTATUS_SUM_MASK) != 0
    state[FETCH_CTX] = full_context(state, priv, virt, sum_bit)
    if priv == PRIV_M and (mstatus & MSTATUS_MPRV_MASK):
        # MPRV: loads and stores as if in mode MPP (and V = MPV, 8.4.1)
        data_priv = (mstatus & MSTATUS_MPP_MASK) >> MSTATUS_MPP_SHIFT
        data_virt = 1 if (mstatus & MSTATUS_MPV_MASK) and data_priv != PRIV_M else 0
        if data_virt:
            sum_bit = (state[CSR_VSSTATUS] & MSTATUS_SUM_MASK) != 0
        state[DATA_CTX] = full_context(state, data_priv, data_virt, sum_bit)
    else:
        state[DATA_CTX] = state[FETCH_CTX]


@nb.njit(cache=True)
def context_priv(ctx):
    local = ctx & (TLB_CONTEXTS - 1)
    if local == CTX_M:
        return PRIV_M
    if local == CTX_S or local == CTX_S_SUM or local == CTX_VS or local == CTX_VS_SUM:
        return PRIV_S
    return PRIV_U


@nb.njit(cache=True)
def context_is_virtual(ctx):
    return (ctx & (TLB_CONTEXTS - 1)) >= CTX_VS


@nb.njit(cache=True)
def context_has_sum(ctx):
    local = ctx & (TLB_CONTEXTS - 1)
    return local == CTX_S_SUM or local == CTX_VS_SUM


@nb.njit(cache=True)
def tlb_slot(ctx, index):
    """First element of TLB entry ``index`` of full context ``ctx`` in the flat tlb array."""
    return ((ctx & (TLB_ALL_CONTEXTS - 1)) * TLB_SETS + (index & TLB_SET_MASK)) << TLB_SHIFT


@nb.njit(cache=True)
def flush_contexts(tlb, first_ctx, last_ctx):
    for ctx in range(first_ctx, last_ctx + 1):
        if tlb[tlb_slot(ctx, 0) + TLB_CTX_FILLED] == 0:
            continue  # nothing was filled since the last flush: every tag is still invalid
        tlb[tlb_slot(ctx, 0) + TLB_CTX_FILLED] = 0
        tlb[tlb_slot(ctx, 0) + TLB_CTX_SUPER] = 0
        for index in range(TLB_SETS):
            slot = tlb_slot(ctx, index)
            tlb[slot + TLB_TAG_READ] = TLB_INVALID
            tlb[slot + TLB_TAG_WRITE] = TLB_INVALID
            tlb[slot + TLB_TAG_EXEC] = TLB_INVALID


@nb.njit(cache=True)
def flush_bank(tlb, bank):
    flush_contexts(tlb, bank * TLB_CONTEXTS, bank * TLB_CONTEXTS + TLB_CONTEXTS - 1)


@nb.njit(cache=True)
def flush_bank_page(tlb, bank, vaddr):
    """An address fence: the entries for ``vaddr``'s page, and where a context holds pieces of
    superpages, every entry in ``vaddr``'s region of the largest such page (4.2.1: the fence
    covers the whole leaf PTE that maps the address)."""
    index = (vaddr >> 12) & TLB_SET_MASK
    for ctx in range(bank * TLB_CONTEXTS, bank * TLB_CONTEXTS + TLB_CONTEXTS):
        if tlb[tlb_slot(ctx, 0) + TLB_CTX_FILLED] == 0:
            continue  # nothing filled since its last flush: every tag is invalid
        for entry in (index, index ^ TLB_EXEC_FLIP):
            tlb[tlb_slot(ctx, entry) + TLB_TAG_READ] = TLB_INVALID
            tlb[tlb_slot(ctx, entry) + TLB_TAG_WRITE] = TLB_INVALID
            tlb[tlb_slot(ctx, entry) + TLB_TAG_EXEC] = TLB_INVALID
        level = tlb[tlb_slot(ctx, 0) + TLB_CTX_SUPER]
        if level == 0:
            continue
        shift = 12 + 9 * level
        region = vaddr >> shift
        for entry in range(TLB_SETS):
            slot = tlb_slot(ctx, entry)
            if (tlb[slot + TLB_VPAGE] >> shift) == region:
                tlb[slot + TLB_TAG_READ] = TLB_INVALID
                tlb[slot + TLB_TAG_WRITE] = TLB_INVALID
                tlb[slot + TLB_TAG_EXEC] = TLB_INVALID


@nb.njit(cache=True)
def flush_all(tlb):
    flush_contexts(tlb, 0, TLB_ALL_CONTEXTS - 1)


@nb.njit(cache=True)
def forget_g_leaf(state):
    """The remembered G-stage leaf (G_LEAF_*) is stale: after HFENCE.GVMA, a PMP change (its
    walk's reads were checked), a reset."""
    state[G_LEAF_HGATP] = 0


@nb.njit(cache=True)
def select_bank(state, tlb, kind, atp, hgatp):
    """The bank translating for address space (kind, atp, hgatp); recycles one if none does.

    The bank in use by the other kind is never recycled."""
    for bank in range(TLB_BANKS):
        if (
            state[TLB_BANK_KIND + bank] == kind
            and state[TLB_BANK_SATP + bank] == atp
            and (kind == BANK_IS_HS or state[TLB_BANK_HGATP + bank] == hgatp)
        ):
            return np.int64(bank)
    keep = state[TLB_BANK_VS] if kind == BANK_IS_HS else state[TLB_BANK_HS]
    bank = state[TLB_BANK_NEXT]
    if bank == keep:
        bank = (bank + 1) % TLB_BANKS
    state[TLB_BANK_NEXT] = (bank + 1) % TLB_BANKS
    flush_bank(tlb, bank)
    state[TLB_BANK_KIND + bank] = kind
    state[TLB_BANK_SATP + bank] = atp
    state[TLB_BANK_HGATP + bank] = hgatp
    return np.int64(bank)


@nb.njit(cache=True)
def switch_address_space(state, tlb):
    """After satp, vsatp or hgatp changed: pick the banks for the current values."""
    state[TLB_BANK_HS] = select_bank(state, tlb, BANK_IS_HS, state[CSR_SATP], np.int64(0))
    state[TLB_BANK_VS] = select_bank(state, tlb, BANK_IS_VS, state[CSR_VSATP], state[CSR_HGATP])
    update_contexts(state)


@nb.njit(cache=True)
def reset_banks(state, tlb):
    for bank in range(TLB_BANKS):
        state[TLB_BANK_KIND + bank] = BANK_IS_FREE
    state[TLB_BANK_NEXT] = 0
    state[TLB_BANK_HS] = 0
    state[TLB_BANK_VS] = 1
    flush_all(tlb)
    forget_g_leaf(state)
    switch_address_space(state, tlb)


@nb.njit(cache=True)
def fence_address_space(state, tlb, kind, vaddr, use_vaddr, asid, use_asid, vmid, use_vmid):
    """SFENCE.VMA / HFENCE.VVMA / HFENCE.GVMA: flush the banks of ``kind`` that match
    (ASID from their satp/vsatp, VMID from their hgatp), the whole bank or one page.
    Global mappings are flushed with the rest, which the spec allows.  The bank's M-mode
    context holds untranslated (bare) addresses, which no address-space fence concerns (PMP
    changes flush it: flush_all)."""
    if (state[TLB_FILLED] & NON_M_CONTEXTS) == 0:
        return  # nothing cached that a fence concerns (M-mode code fencing, a fresh hart)
    for bank in range(TLB_BANKS):
        if state[TLB_BANK_KIND + bank] != kind:
            continue
        first = bank * TLB_CONTEXTS
        if ((state[TLB_FILLED] >> first) & 0xFE) == 0:
            continue
        if use_asid and ((state[TLB_BANK_SATP + bank] & SATP_ASID_MASK) >> SATP_ASID_SHIFT) != asid:
            continue
        if (
            use_vmid
            and ((state[TLB_BANK_HGATP + bank] & HGATP_VMID_MASK) >> HGATP_VMID_SHIFT) != vmid
        ):
            continue
        if use_vaddr:
            flush_bank_page(tlb, bank, vaddr)
        else:
            flush_contexts(tlb, first + CTX_M + 1, first + TLB_CONTEXTS - 1)
            state[TLB_FILLED] &= ~(np.int64(0xFE) << first)


@nb.njit(cache=True)
def execute_sfence_vma(state, tlb, rs1, rs2):
    """SFENCE.VMA rs1, rs2 (4.2.1): returns OK, or the illegal or virtual instruction
    exception (8.6.1) without fencing.  x0 as rs1 fences every address, x0 as rs2 every ASID;
    in VS-mode it fences the guest's own address spaces, in the current VMID."""
    priv = state[PRIV]
    if state[VIRT]:
        if priv == PRIV_U or (state[CSR_HSTATUS] & HSTATUS_VTVM_MASK):
            return np.int64(Exception_.VIRTUAL_INSTRUCTION)
        vmid = (state[CSR_HGATP] & HGATP_VMID_MASK) >> HGATP_VMID_SHIFT
        fence_address_space(
            state,
            tlb,
            BANK_IS_VS,
            state[rs1],
            rs1 != 0,
            state[rs2] & ASID_MAX,
            rs2 != 0,
            vmid,
            True,
        )
        return np.int64(OK)
    if priv == PRIV_U or (priv == PRIV_S and (state[CSR_MSTATUS] & MSTATUS_TVM_MASK)):
        return np.int64(Exception_.ILLEGAL_INSTRUCTION)
    fence_address_space(
        state,
        tlb,
        BANK_IS_HS,
        state[rs1],
        rs1 != 0,
        state[rs2] & ASID_MAX,
        rs2 != 0,
        np.int64(0),
        False,
    )
    return np.int64(OK)


# ---- page-table walks (4.3.2, 8.5) ---------------------------------------------------------


@nb.njit(cache=True)
def _read_pte(state, machine, memory, address):
    """Load a PTE (an implicit access checked by PMP at S level)."""
    allowed, _ = pmp_check(state, address, 8, ACCESS_READ, PRIV_S)
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
    if machine[M_DIRTY_LOG] != 0:
        mark_dirty(machine, address)  # an A/D update is a write to RAM like any other
    return True


@nb.njit(cache=True)
def _leaf_allows(pte, access, user, sum_bit, mxr):
    """Step 5 of 4.3.2: the leaf's R/W/X against the access, U against the mode and SUM."""
    if access == ACCESS_EXECUTE or access == ACCESS_READ_EXECUTABLE:
        # HLVX: "execute permission takes the place of read permission ... the memory being
        # read must be executable in both stages of address translation" (8.3.1), so MXR,
        # which only lets loads read X pages, neither helps nor hinders it
        if (pte & PTE_X_MASK) == 0:
            return False
    elif access == ACCESS_READ:
        if (pte & PTE_R_MASK) == 0 and not (mxr and (pte & PTE_X_MASK) != 0):
            return False
    elif (pte & PTE_W_MASK) == 0:
        return False
    if user:
        return (pte & PTE_U_MASK) != 0
    if pte & PTE_U_MASK:
        # supervisor code never executes user pages; it reads/writes them only with SUM
        return access != ACCESS_EXECUTE and access != ACCESS_READ_EXECUTABLE and sum_bit
    return True


@nb.njit(cache=True)
def leaf_address(pte, offset_bits, address):
    """Step 8: the leaf's page number above ``offset_bits``, the address's bits below (a
    superpage takes its low VPN bits from the address)."""
    offset_mask = (np.int64(1) << offset_bits) - 1
    ppn = (pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT
    return ((ppn << 12) & ~offset_mask) | (address & offset_mask)


def _stage_walker(nested_guest_walk):
    """The one page-table walk, compiled for a given nested G-stage walk.

    A walk of the VS-stage runs a G-stage walk for every page-table address, but a cached numba
    kernel cannot call itself (the cached code crashes when loaded), so the same walk is compiled
    twice: ``walk_guest_stage``, whose nested walk is never called, and ``walk``, which nests
    ``walk_guest_stage``."""

    def walk(state, machine, memory, stage, address, access, priv, sum_bit, implicit):
        """One stage of translation: the page-table walk of 4.3.2 for ``stage``.  Returns
        (translated address, status).

        STAGE_SINGLE walks satp's table (V=0); STAGE_VS walks vsatp's, and every page-table
        address it forms is guest physical, so it is first translated by a nested STAGE_G walk
        (8.5); STAGE_G walks hgatp's Sv39x4/Sv48x4 table (8.5.1), as a U-mode access with only
        mstatus.MXR.  ``implicit`` is EXPLICIT for the translation of the access itself, and
        READ_PTE / UPDATE_PTE for the G-stage translation of a VS-stage page-table read / A-D
        update: the G-stage checks permissions for that implicit load or store, but reports a
        fault for the original ``access`` (8.5.1), with a pseudo-instruction in htinst (8.6.3).
        """
        if stage == STAGE_G:
            atp = state[CSR_HGATP]
        elif stage == STAGE_VS:
            atp = state[CSR_VSATP]
        else:
            atp = state[CSR_SATP]
        mode = (atp >> SATP_MODE_SHIFT) & 0xF
        if mode == 0:
            return address, np.int64(OK)  # Bare: no translation
        levels = 3 if mode == SATP_MODE_SV39 else 4  # Sv39(x4) or Sv48(x4): the writable modes
        mstatus = state[CSR_MSTATUS]
        root_index_bits = 9
        # step 1: a = atp.ppn x PAGESIZE, i = LEVELS - 1 (below: ``table`` and ``level``)
        if stage == STAGE_G:
            # a guest physical address is 2 bits wider than a virtual address, the bits above it
            # must be zero; the root table is 16 KiB (the x4) and its address drops ppn[1:0]
            in_range = (address >> (12 + 9 * levels + 2)) == 0
            root_index_bits = 11
            table = ((atp & SATP_PPN_MASK) & ~np.int64(3)) << 12
            user = True
            check = access if implicit == EXPLICIT else implicit
            mxr = (mstatus & MSTATUS_MXR_MASK) != 0
            # the leaf of the last G-stage walk, if the address is in it and it allows the
            # access with nothing to write back (A set, D too for a store)
            if (
                state[G_LEAF_HGATP] == atp
                and (address >> state[G_LEAF_SHIFT]) == state[G_LEAF_REGION]
            ):
                pte = state[G_LEAF_PTE]
                if (
                    (pte & PTE_A_MASK) != 0
                    and (check != ACCESS_WRITE or (pte & PTE_D_MASK) != 0)
                    and _leaf_allows(pte, check, True, False, mxr)
                ):
                    return leaf_address(pte, state[G_LEAF_SHIFT], address), np.int64(OK)
        else:
            # a virtual address must be canonical: bits 63..VA bits - 1 all equal (4.3.2, 4.4.1)
            top = address >> (12 + 9 * levels - 1)
            in_range = top == 0 or top == -1
            table = (atp & SATP_PPN_MASK) << 12
            user = priv == PRIV_U
            check = access
            if stage == STAGE_VS:
                # vsstatus.MXR for the VS-stage; mstatus.MXR makes pages readable in both stages
                mxr = ((state[CSR_VSSTATUS] | mstatus) & MSTATUS_MXR_MASK) != 0
            else:
                mxr = (mstatus & MSTATUS_MXR_MASK) != 0
        level = levels - 1
        while in_range:
            # step 2: pte = the PTE at a + va.vpn[i] x PTESIZE; with STAGE_VS, a + ... is a guest
            # physical address that the G-stage translates first
            index_bits = root_index_bits if level == levels - 1 else 9
            index = (address >> (12 + 9 * level)) & ((np.int64(1) << index_bits) - 1)
            entry_address = table + index * 8
            pte_address = entry_address
            if stage == STAGE_VS:
                pte_address, status = nested_guest_walk(
                    state, machine, memory, STAGE_G, entry_address, access, PRIV_U, False, READ_PTE
                )
                if status != OK:
                    return np.int64(0), status
            pte, loaded = _read_pte(state, machine, memory, pte_address)
            if not loaded:
                return np.int64(0), access_fault(access)
            # step 3: invalid, W without R, or reserved bits set: a page fault
            if (pte & PTE_V_MASK) == 0 or ((pte & PTE_R_MASK) == 0 and (pte & PTE_W_MASK) != 0):
                break
            if pte & PTE_RESERVED_MASK:
                break
            # step 4: a pointer to the next level unless R or X is set
            if (pte & (PTE_R_MASK | PTE_X_MASK)) == 0:
                if pte & (PTE_D_MASK | PTE_A_MASK | PTE_U_MASK):
                    break  # non-leaf PTEs keep D, A and U clear (4.3.1)
                level -= 1
                if level < 0:
                    break
                table = ((pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT) << PAGE_SHIFT
                continue
            # step 5: a leaf: R/W/X against the access (with MXR), U against the mode and SUM
            if not _leaf_allows(pte, check, user, sum_bit, mxr):
                break
            # step 6: a superpage must be aligned
            ppn = (pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT
            if level > 0 and (ppn & ((np.int64(1) << (9 * level)) - 1)) != 0:
                break
            # step 7: the walk sets A, and D for a store (Svadu behaviour, as QEMU 7.2); with
            # STAGE_VS the PTE write is a store that needs its own G-stage permission
            new_pte = pte | PTE_A_MASK
            if check == ACCESS_WRITE:
                new_pte |= PTE_D_MASK
            if new_pte != pte:
                if stage == STAGE_VS:
                    pte_address, status = nested_guest_walk(
                        state,
                        machine,
                        memory,
                        STAGE_G,
                        entry_address,
                        access,
                        PRIV_U,
                        False,
                        UPDATE_PTE,
                    )
                    if status != OK:
                        return np.int64(0), status
                if not _write_pte(state, machine, memory, pte_address, new_pte):
                    return np.int64(0), access_fault(access)
            # step 8: the address; a superpage takes the low VPN bits from the address
            offset_bits = 12 + 9 * level
            if stage != STAGE_G:
                state[WALK_LEAF_LEVEL] = level
            else:
                state[G_LEAF_HGATP] = atp
                state[G_LEAF_SHIFT] = offset_bits
                state[G_LEAF_REGION] = address >> offset_bits
                state[G_LEAF_PTE] = new_pte
            return leaf_address(pte, offset_bits, address), np.int64(OK)
        if stage != STAGE_G:
            return np.int64(0), page_fault(access)
        # a guest-page fault: htval/mtval2 get the guest physical address >> 2 (8.6.3), as an
        # unsigned value (a GPA with bit 63 set, from a Bare VS-stage, must not sign-extend)
        state[TRAP_TVAL2] = (address >> 2) & np.int64(0x3FFF_FFFF_FFFF_FFFF)
        if implicit != EXPLICIT:
            state[TRAP_TINST] = PSEUDO_PTE_WRITE if implicit == UPDATE_PTE else PSEUDO_PTE_READ
        elif access == ACCESS_EXECUTE:
            state[TRAP_TINST] = 0
        else:
            state[TRAP_TINST] = -1  # the kernel writes the transformed instruction
        return np.int64(0), guest_page_fault(access)

    return nb.njit(cache=True)(walk)


@nb.njit(cache=True)
def _no_nested_walk(state, machine, memory, stage, address, access, priv, sum_bit, implicit):
    """The nested walk of a G-stage walk, which has none: never called."""
    return address, np.int64(OK)


walk_guest_stage = _stage_walker(_no_nested_walk)  # for STAGE_G
walk = _stage_walker(walk_guest_stage)  # for STAGE_SINGLE and STAGE_VS (and STAGE_G)


@nb.njit(cache=True)
def translate(state, machine, memory, vaddr, size, access, ctx):
    """Virtual -> physical for one access in translation context ``ctx``, PMP included.

    Returns (paddr, status, cacheable): cacheable says the TLB may keep the result for the page.
    On a fault the trap values are in the state's side channel."""
    priv = context_priv(ctx)
    virt = context_is_virtual(ctx)
    state[TRAP_TVAL2] = 0  # only a G-stage fault sets these two
    state[TRAP_TINST] = 0
    state[WALK_LEAF_LEVEL] = 0
    if priv == PRIV_M:
        paddr = vaddr
    else:
        stage = STAGE_VS if virt else STAGE_SINGLE
        sum_bit = context_has_sum(ctx)
        paddr, status = walk(state, machine, memory, stage, vaddr, access, priv, sum_bit, EXPLICIT)
        if status == OK and virt:
            paddr, status = walk_guest_stage(
                state, machine, memory, STAGE_G, paddr, access, PRIV_U, False, EXPLICIT
            )
        if status != OK:
            state[TRAP_TVAL] = vaddr
            state[TRAP_GVA] = 1 if virt else 0
            return np.int64(0), status, False
    allowed, whole_page = pmp_check(state, paddr, size, access, priv)
    if not allowed:
        state[TRAP_TVAL] = vaddr
        state[TRAP_GVA] = 1 if virt else 0
        return np.int64(0), access_fault(access), False
    return paddr, np.int64(OK), whole_page


@nb.njit(cache=True)
def tlb_lookup(state, machine, memory, tlb, vaddr, size, access, ctx):
    """Physical address of ``vaddr`` for ``access`` through the TLB, filling it on a miss.

    Returns (paddr, status).  A filled entry lets the kernel's fast path hit next time; pages
    that are not RAM get a slow tag, so every access to them comes here, but skips the walk.
    HLVX loads (ACCESS_READ_EXECUTABLE) are never cached.  With debugger watchpoints set,
    the access is checked against them (rvh/cpu/debug.py) and their pages get slow tags.
    """
    if machine[M_WATCHES] != 0 and access != ACCESS_EXECUTE:
        if watch_touched(state, machine, vaddr, size, access == ACCESS_WRITE):
            return np.int64(0), np.int64(WATCH_STOP)
    if access == ACCESS_READ_EXECUTABLE:
        paddr, status, _ = translate(state, machine, memory, vaddr, size, access, ctx)
        return paddr, status
    index = (vaddr >> 12) & TLB_SET_MASK
    page = vaddr & PAGE_MASK
    if access == ACCESS_READ:
        tag_field = TLB_TAG_READ
    elif access == ACCESS_WRITE:
        tag_field = TLB_TAG_WRITE
    else:
        tag_field = TLB_TAG_EXEC
        index ^= TLB_EXEC_FLIP
    slot = tlb_slot(ctx, index)
    tag = tlb[slot + tag_field]
    if tag != TLB_INVALID and (tag & ~np.int64(TLB_SLOW)) == page:
        return tlb[slot + TLB_PADDR] | (vaddr & ~PAGE_MASK), np.int64(OK)
    if tag & TLB_DIRTY_PROTECT and (tag & ~np.int64(TLB_SLOW | TLB_DIRTY_PROTECT)) == page:
        # the first store to the page since dirty logging cleared its bit (rvh/dirty.py):
        # mark it and give the entry its store permission back; no walk, no miss counted
        mark_dirty(machine, tlb[slot + TLB_PADDR])
        tlb[slot + tag_field] = tag & ~np.int64(TLB_DIRTY_PROTECT)
        return tlb[slot + TLB_PADDR] | (vaddr & ~PAGE_MASK), np.int64(OK)
    state[TLB_MISSES] += 1
    paddr, status, cacheable = translate(state, machine, memory, vaddr, size, access, ctx)
    if status == OK and access == ACCESS_WRITE and machine[M_DIRTY_LOG] != 0:
        mark_dirty(machine, paddr)  # before the store: its fast tag may follow below
    if status != OK or not cacheable:
        return paddr, status
    ppage = paddr & PAGE_MASK
    if tlb[slot + TLB_VPAGE] != page or tlb[slot + TLB_PADDR] != ppage:
        # the set held another translation: its other tags must not survive
        tlb[slot + TLB_TAG_READ] = TLB_INVALID
        tlb[slot + TLB_TAG_WRITE] = TLB_INVALID
        tlb[slot + TLB_TAG_EXEC] = TLB_INVALID
        tlb[slot + TLB_VPAGE] = page
        tlb[slot + TLB_PADDR] = ppage
    tlb[tlb_slot(ctx, 0) + TLB_CTX_FILLED] = 1
    state[TLB_FILLED] |= np.int64(1) << (ctx & (TLB_ALL_CONTEXTS - 1))
    if state[WALK_LEAF_LEVEL] > tlb[tlb_slot(ctx, 0) + TLB_CTX_SUPER]:
        tlb[tlb_slot(ctx, 0) + TLB_CTX_SUPER] = state[WALK_LEAF_LEVEL]
    host = host_offset(machine, ppage, PAGE_SIZE)
    watched = machine[M_WATCHES] != 0 and watched_page(machine, page)
    if access == ACCESS_EXECUTE and machine[M_BREAKPOINTS] != 0:
        # a page with a breakpoint keeps a slow fetch tag: neither the fast loop nor
        # translated code, changing pages by the TLB, runs into it past the breakpoint (the
        # general path fetches there, and stops at it)
        watched = watched or breakpoint_on_page(machine, page)
    if state[TRIGGERS_ARMED] != 0:
        # a page an armed trigger covers keeps slow tags for the accesses the trigger matches:
        # the general path then checks every instruction or access there (rvh/cpu/triggers.py)
        if access == ACCESS_READ:
            accesses = np.int64(TRIGGER_ARMED_LOAD)
        elif access == ACCESS_WRITE:
            accesses = np.int64(TRIGGER_ARMED_STORE)
        else:
            accesses = np.int64(TRIGGER_ARMED_EXECUTE)
        watched = watched or trigger_on_page(state, page, accesses)
    if host >= 0 and not (access == ACCESS_WRITE and is_rom(machine, ppage)) and not watched:
        tlb[slot + TLB_ADDEND] = host - page
        tlb[slot + tag_field] = page
    else:
        tlb[slot + tag_field] = page | TLB_SLOW
    return paddr, np.int64(OK)

"""Address translation and physical memory protection (privileged spec 3.7, 4.3, 4.4, 8.5).

``translate`` turns a virtual address into a physical one for one access, the way the hardware
would: PMP on every physical access (page-table reads included); single-stage Sv39/Sv48 walks
for HS/U, and for V=1 the two-stage walk: the VS-stage (vsatp) whose every page-table access is
itself translated by the G-stage (hgatp, Sv39x4/Sv48x4), then the G-stage for the final guest
physical address.  A/D bits are set by the walks (QEMU 7.2 does the same: Svadu behaviour).
Faults carry the cause that matches the access and stage, with the trap values in the state's
side channel: TRAP_TVAL (the virtual address), TRAP_TVAL2 (guest physical address >> 2 for
htval/mtval2), TRAP_TINST (a pseudo-instruction for implicit VS-stage accesses, or -1 to ask
for the transformed instruction) and TRAP_GVA.

``tlb_lookup`` sits in front of it and caches the result as a host offset, per access type, in
the software TLB (banks per address space, see ``layout``): the kernel's fast paths compare one
tag and add one addend.

Status codes: ``OK`` and ``NEED_EXIT`` are negative, any value >= 0 is an exception cause.
"""

import numba as nb
import numpy as np

from rvh.cpu.layout import (
    BANK_IS_FREE,
    BANK_IS_HS,
    BANK_IS_VS,
    CSR_BASE,
    CTX_M,
    CTX_S,
    CTX_S_SUM,
    CTX_U,
    CTX_VS,
    CTX_VS_SUM,
    CTX_VU,
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
    TLB_ALL_CONTEXTS,
    TLB_BANK_HGATP,
    TLB_BANK_HS,
    TLB_BANK_KIND,
    TLB_BANK_NEXT,
    TLB_BANK_SATP,
    TLB_BANK_VS,
    TLB_BANKS,
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
    TRAP_GVA,
    TRAP_TINST,
    TRAP_TVAL,
    TRAP_TVAL2,
    VIRT,
)
from rvh.isa.csrs import (
    MSTATUS_MPP,
    MSTATUS_MPP_SHIFT,
    MSTATUS_MPRV,
    MSTATUS_MPV,
    MSTATUS_MXR,
    MSTATUS_SUM,
    SATP_ASID_MASK,
    SATP_ASID_SHIFT,
    SATP_MODE_SHIFT,
    SATP_MODE_SV39,
    SATP_PPN_MASK,
)

OK = -1
NEED_EXIT = -2

ACCESS_READ = 0
ACCESS_WRITE = 1
ACCESS_EXECUTE = 2
ACCESS_READ_EXECUTABLE = 3  # HLVX: a load that needs execute permission

CSR_MSTATUS = CSR_BASE + 0x300
CSR_SATP = CSR_BASE + 0x180
CSR_VSSTATUS = CSR_BASE + 0x200
CSR_VSATP = CSR_BASE + 0x280
CSR_HGATP = CSR_BASE + 0x680
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

# htinst/mtinst pseudo-instructions for implicit accesses of a VS-stage walk (8.6.3, RV64)
PSEUDO_PTE_READ = 0x3000
PSEUDO_PTE_WRITE = 0x3020

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
def guest_page_fault(access):
    if access == ACCESS_WRITE:
        return np.int64(23)
    if access == ACCESS_EXECUTE:
        return np.int64(20)
    return np.int64(21)


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
    (so the TLB may cache it).  The lowest-numbered matching entry decides (3.7.1)."""
    if state[PMP_ACTIVE] == 0:
        # every entry OFF: M-mode is allowed, S and U are not (no entry matches)
        return priv == PRIV_M, True
    page = paddr & PAGE_MASK
    whole_page = True
    if access == ACCESS_WRITE:
        need = PMP_W
    elif access == ACCESS_EXECUTE or access == ACCESS_READ_EXECUTABLE:
        need = PMP_X if access == ACCESS_EXECUTE else PMP_R
    else:
        need = PMP_R
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
        sum_bit = (state[CSR_VSSTATUS] & MSTATUS_SUM) != 0
    else:
        sum_bit = (mstatus & MSTATUS_SUM) != 0
    state[FETCH_CTX] = full_context(state, priv, virt, sum_bit)
    if priv == PRIV_M and (mstatus & MSTATUS_MPRV):
        # MPRV: loads and stores as if in mode MPP (and V = MPV, 8.4.1)
        data_priv = (mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT
        data_virt = 1 if (mstatus & MSTATUS_MPV) and data_priv != PRIV_M else 0
        if data_virt:
            sum_bit = (state[CSR_VSSTATUS] & MSTATUS_SUM) != 0
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
    index = (vaddr >> 12) & TLB_SET_MASK
    for ctx in range(bank * TLB_CONTEXTS, bank * TLB_CONTEXTS + TLB_CONTEXTS):
        for entry in (index, index ^ TLB_EXEC_FLIP):
            tlb[tlb_slot(ctx, entry) + TLB_TAG_READ] = TLB_INVALID
            tlb[tlb_slot(ctx, entry) + TLB_TAG_WRITE] = TLB_INVALID
            tlb[tlb_slot(ctx, entry) + TLB_TAG_EXEC] = TLB_INVALID


@nb.njit(cache=True)
def flush_all(tlb):
    flush_contexts(tlb, 0, TLB_ALL_CONTEXTS - 1)


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
    switch_address_space(state, tlb)


@nb.njit(cache=True)
def fence_address_space(state, tlb, kind, vaddr, use_vaddr, asid, use_asid, vmid, use_vmid):
    """SFENCE.VMA / HFENCE.VVMA / HFENCE.GVMA: flush the banks of ``kind`` that match
    (ASID from their satp/vsatp, VMID from their hgatp), the whole bank or one page.
    Global mappings are flushed with the rest, which the spec allows."""
    for bank in range(TLB_BANKS):
        if state[TLB_BANK_KIND + bank] != kind:
            continue
        if use_asid and ((state[TLB_BANK_SATP + bank] >> SATP_ASID_SHIFT) & SATP_ASID_MASK) != asid:
            continue
        if use_vmid and ((state[TLB_BANK_HGATP + bank] >> 44) & 0x3FFF) != vmid:
            continue
        if use_vaddr:
            flush_bank_page(tlb, bank, vaddr)
        else:
            flush_bank(tlb, bank)


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
    return True


@nb.njit(cache=True)
def _leaf_allows(pte, access, user, sum_bit, mxr):
    """Step 5 of 4.3.2: the leaf's R/W/X against the access, U against the mode and SUM."""
    if access == ACCESS_EXECUTE or access == ACCESS_READ_EXECUTABLE:
        if (pte & PTE_X) == 0:
            return False
    elif access == ACCESS_READ:
        if (pte & PTE_R) == 0 and not (mxr and (pte & PTE_X) != 0):
            return False
    elif (pte & PTE_W) == 0:
        return False
    if user:
        return (pte & PTE_U) != 0
    if pte & PTE_U:
        # supervisor code never executes user pages; it reads/writes them only with SUM
        return access != ACCESS_EXECUTE and access != ACCESS_READ_EXECUTABLE and sum_bit
    return True


@nb.njit(cache=True)
def guest_stage(state, machine, memory, gpa, access, implicit_write, implicit):
    """G-stage translation (8.5.1): guest physical -> host physical, Sv39x4/Sv48x4.

    Every G-stage access is checked as a U-mode access, with mstatus.MXR.  On a fault the
    cause is a guest-page fault for ``access`` and htval gets gpa >> 2.  ``implicit`` marks the
    page-table accesses of a VS-stage walk: their htinst is a pseudo-instruction.
    Returns (hpa, status)."""
    hgatp = state[CSR_HGATP]
    mode = (hgatp >> SATP_MODE_SHIFT) & 0xF
    if mode == 0:
        return gpa, np.int64(OK)
    levels = 3 if mode == SATP_MODE_SV39 else 4
    gpa_bits = 12 + 9 * levels + 2  # x4: the root level has 2 extra bits
    mxr = (state[CSR_MSTATUS] & MSTATUS_MXR) != 0
    check = ACCESS_WRITE if implicit_write else access
    table = ((hgatp & SATP_PPN_MASK) & ~np.int64(3)) << 12
    level = levels - 1
    if (gpa >> gpa_bits) == 0:
        while True:
            width = 11 if level == levels - 1 else 9
            index = (gpa >> (12 + 9 * level)) & ((np.int64(1) << width) - 1)
            pte_address = table + index * 8
            pte, loaded = _read_pte(state, machine, memory, pte_address)
            if not loaded:
                state[TRAP_TVAL2] = 0
                return np.int64(0), access_fault(access)
            if (pte & PTE_V) == 0 or ((pte & PTE_R) == 0 and (pte & PTE_W) != 0):
                break
            if pte & PTE_RESERVED:
                break
            if (pte & (PTE_R | PTE_X)) == 0:
                if pte & (PTE_D | PTE_A | PTE_U):
                    break
                level -= 1
                if level < 0:
                    break
                table = ((pte >> 10) & PTE_PPN_MASK) << 12
                continue
            if not _leaf_allows(pte, check, True, False, mxr):
                break
            ppn = (pte >> 10) & PTE_PPN_MASK
            if level > 0 and (ppn & ((np.int64(1) << (9 * level)) - 1)) != 0:
                break
            new_pte = pte | PTE_A
            if check == ACCESS_WRITE:
                new_pte |= PTE_D
            if new_pte != pte and not _write_pte(state, machine, memory, pte_address, new_pte):
                state[TRAP_TVAL2] = 0
                return np.int64(0), access_fault(access)
            offset_bits = 12 + 9 * level
            hpa = ((ppn << 12) & ~((np.int64(1) << offset_bits) - 1)) | (
                gpa & ((np.int64(1) << offset_bits) - 1)
            )
            return hpa, np.int64(OK)
    # 8.6.3: htval/mtval2 hold the guest physical address shifted right by 2, as an unsigned
    # value (a GPA with bit 63 set, from a Bare VS-stage, must not sign-extend)
    state[TRAP_TVAL2] = (gpa >> 2) & np.int64(0x3FFF_FFFF_FFFF_FFFF)
    if implicit:
        state[TRAP_TINST] = PSEUDO_PTE_WRITE if implicit_write else PSEUDO_PTE_READ
    elif access == ACCESS_EXECUTE:
        state[TRAP_TINST] = 0
    else:
        state[TRAP_TINST] = -1  # the kernel writes the transformed instruction
    return np.int64(0), guest_page_fault(access)


@nb.njit(cache=True)
def first_stage(state, machine, memory, vaddr, access, priv, virt, sum_bit):
    """The satp (V=0) or vsatp (V=1) stage (4.3.2).  With V=1 every page-table address is a
    guest physical address, translated by the G-stage.  Returns (physical or guest physical
    address, status)."""
    atp = state[CSR_VSATP] if virt else state[CSR_SATP]
    mode = (atp >> SATP_MODE_SHIFT) & 0xF
    if mode == 0:
        return vaddr, np.int64(OK)
    levels = 3 if mode == SATP_MODE_SV39 else 4
    va_bits = 12 + 9 * levels
    # the address must be canonical: bits 63..va_bits-1 all equal (4.3.2 / 4.4.1)
    top = vaddr >> (va_bits - 1)
    if top != 0 and top != -1:
        return np.int64(0), page_fault(access)
    mstatus = state[CSR_MSTATUS]
    if virt:
        # vsstatus.MXR for the VS-stage; mstatus.MXR makes pages readable in both stages
        mxr = ((state[CSR_VSSTATUS] | mstatus) & MSTATUS_MXR) != 0
    else:
        mxr = (mstatus & MSTATUS_MXR) != 0
    # step 1: a = satp.ppn * PAGESIZE, i = LEVELS - 1
    table = (atp & SATP_PPN_MASK) << 12
    level = levels - 1
    while True:
        # step 2: pte = memory[a + va.vpn[i] * PTESIZE], through the G-stage when V=1
        vpn = (vaddr >> (12 + 9 * level)) & 0x1FF
        pte_address = table + vpn * 8
        if virt:
            pte_address, status = guest_stage(
                state, machine, memory, pte_address, access, False, True
            )
            if status != OK:
                return np.int64(0), status
        pte, loaded = _read_pte(state, machine, memory, pte_address)
        if not loaded:
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
        # step 5: a leaf: R/W/X against the access (with MXR), U against the mode and SUM
        if not _leaf_allows(pte, access, priv == PRIV_U, sum_bit, mxr):
            break
        # step 6: a superpage must be aligned
        ppn = (pte >> 10) & PTE_PPN_MASK
        if level > 0 and (ppn & ((np.int64(1) << (9 * level)) - 1)) != 0:
            break
        # step 7: A and D are set by the walk; with V=1 the write needs G-stage permission
        new_pte = pte | PTE_A
        if access == ACCESS_WRITE:
            new_pte |= PTE_D
        if new_pte != pte:
            if virt:
                guest_pte = table + vpn * 8
                pte_address, status = guest_stage(
                    state, machine, memory, guest_pte, access, True, True
                )
                if status != OK:
                    return np.int64(0), status
            if not _write_pte(state, machine, memory, pte_address, new_pte):
                return np.int64(0), access_fault(access)
        # step 8: the address; superpages take the low VPN bits from the virtual address
        offset_bits = 12 + 9 * level
        address = ((ppn << 12) & ~((np.int64(1) << offset_bits) - 1)) | (
            vaddr & ((np.int64(1) << offset_bits) - 1)
        )
        return address, np.int64(OK)
    return np.int64(0), page_fault(access)


@nb.njit(cache=True)
def translate(state, machine, memory, vaddr, size, access, ctx):
    """Virtual -> physical for one access in translation context ``ctx``, PMP included.

    Returns (paddr, status, cacheable): cacheable says the TLB may keep the result for the page.
    On a fault the trap values are in the state's side channel."""
    priv = context_priv(ctx)
    virt = context_is_virtual(ctx)
    state[TRAP_TVAL2] = 0  # only a G-stage fault sets these two
    state[TRAP_TINST] = 0
    if priv == PRIV_M:
        paddr = vaddr
    else:
        paddr, status = first_stage(
            state, machine, memory, vaddr, access, priv, virt, context_has_sum(ctx)
        )
        if status == OK and virt:
            paddr, status = guest_stage(state, machine, memory, paddr, access, False, False)
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
    HLVX loads (ACCESS_READ_EXECUTABLE) are never cached.
    """
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
    state[TLB_MISSES] += 1
    paddr, status, cacheable = translate(state, machine, memory, vaddr, size, access, ctx)
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
    host = host_offset(machine, ppage, PAGE_SIZE)
    if host >= 0 and not (access == ACCESS_WRITE and is_rom(machine, ppage)):
        tlb[slot + TLB_ADDEND] = host - page
        tlb[slot + tag_field] = page
    else:
        tlb[slot + tag_field] = page | TLB_SLOW
    return paddr, np.int64(OK)

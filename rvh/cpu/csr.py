"""CSR access for the kernel: the permission check, then read and write by table kind.

``csr_access_fault`` is the only place that decides between illegal instruction and
virtual instruction (privileged spec 2.1, 2.3, 9.6.1): first whether the CSR exists and the
access would be allowed in HS-mode, then whether the current mode (VS, VU) is too low.
``csr_read``/``csr_write`` dispatch on the table's ``Kind``; plain registers are one masked
store.  With V=1, callers pass the CSR number after the virtual alias (sstatus -> vsstatus).
"""

import numba as nb
import numpy as np

from rvh.cpu.arith import MASK32
from rvh.cpu.interrupts import mtime_at, pending_bits
from rvh.cpu.layout import (
    CSR_BASE,
    CYCLE,
    HARTID,
    INSTRET,
    M_MISA,
    PMP_ACTIVE,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    TIME_NS,
    TLB_CONTEXTS,
    VIRT,
)
from rvh.cpu.mmu import OK, flush_all, flush_tlb, update_contexts
from rvh.cpu.tables import T_CSRS
from rvh.isa.csrs import (
    CSR_COLUMNS,
    CSR_EXISTS,
    CSR_KIND,
    CSR_PREDICATE,
    CSR_VIRTUAL_ALIAS,
    CSR_WRITE_MASK,
    ENVCFG_STCE,
    IP_M_LEVEL,
    IP_S_LEVEL,
    IP_SSIP,
    IP_STIP,
    MSTATUS_FS,
    MSTATUS_MPP,
    MSTATUS_MPRV,
    MSTATUS_MXR,
    MSTATUS_SD,
    MSTATUS_SUM,
    MSTATUS_VS,
    MSTATUS_WRITABLE,
    MSTATUS_XLEN64,
    MSTATUS_XS,
    SATP_MODE_BARE,
    SATP_MODE_SHIFT,
    SATP_MODE_SV39,
    SATP_MODE_SV48,
    SSTATUS_MASK,
    SSTATUS_WRITABLE,
    Kind,
    Predicate,
)

ILLEGAL_INSTRUCTION = 2
VIRTUAL_INSTRUCTION = 22

CSR_MSTATUS = CSR_BASE + 0x300
CSR_MIE = CSR_BASE + 0x304
CSR_MIP = CSR_BASE + 0x344
CSR_MIDELEG = CSR_BASE + 0x303
CSR_MENVCFG = CSR_BASE + 0x30A
CSR_MCOUNTEREN = CSR_BASE + 0x306
CSR_SCOUNTEREN = CSR_BASE + 0x106
CSR_SATP = CSR_BASE + 0x180
CSR_PMPCFG0 = CSR_BASE + 0x3A0
CSR_PMPADDR0 = CSR_BASE + 0x3B0

PMP_LOCK = 0x80
PMP_TOR = 1


@nb.njit(cache=True)
def csr_row(tables, number, column):
    return tables[tables[T_CSRS] + number * CSR_COLUMNS + column]


@nb.njit(cache=True)
def csr_access_fault(state, machine, tables, number, is_write):
    """Returns (cause or OK, the CSR number to use: the virtual alias when V=1)."""
    if csr_row(tables, number, CSR_EXISTS) == 0:
        return np.int64(ILLEGAL_INSTRUCTION), number
    predicate = csr_row(tables, number, CSR_PREDICATE)
    has_h = (machine[M_MISA] >> 7) & 1
    if predicate == Predicate.HYPERVISOR and not has_h:
        return np.int64(ILLEGAL_INSTRUCTION), number
    if predicate == Predicate.PMP_ODD:
        return np.int64(ILLEGAL_INSTRUCTION), number
    read_only = (number >> 10) == 3
    if is_write and read_only:
        return np.int64(ILLEGAL_INSTRUCTION), number
    priv = state[PRIV]
    virt = state[VIRT]
    required = (number >> 8) & 3
    # the level the current mode has for this check: HS counts as hypervisor level
    if priv == PRIV_M:
        level = 3
    elif priv == PRIV_S:
        level = 1 if virt else (2 if has_h else 1)
    else:
        level = 0
    if virt == 0:
        if level < required:
            return np.int64(ILLEGAL_INSTRUCTION), number
    else:
        if required == 3:
            return np.int64(ILLEGAL_INSTRUCTION), number
        if level < required:
            return np.int64(VIRTUAL_INSTRUCTION), number
    # counters: mcounteren gates S and U, scounteren gates U (3.1.11, 4.1.5)
    if predicate == Predicate.COUNTER and priv != PRIV_M:
        bit = np.int64(1) << (number & 31)
        if (state[CSR_MCOUNTEREN] & bit) == 0:
            return np.int64(ILLEGAL_INSTRUCTION), number
        if priv == PRIV_U and (state[CSR_SCOUNTEREN] & bit) == 0:
            return np.int64(ILLEGAL_INSTRUCTION), number
    if predicate == Predicate.SSTC and priv != PRIV_M:
        # Sstc: stimecmp needs menvcfg.STCE and mcounteren.TM below M-mode
        if (state[CSR_MENVCFG] & ENVCFG_STCE) == 0 or (state[CSR_MCOUNTEREN] & 2) == 0:
            return np.int64(ILLEGAL_INSTRUCTION), number
    if number == 0x180 and priv == PRIV_S and virt == 0:
        if state[CSR_MSTATUS] & (1 << 20):  # mstatus.TVM traps satp accesses (3.1.6.5)
            return np.int64(ILLEGAL_INSTRUCTION), number
    if virt:
        alias = csr_row(tables, number, CSR_VIRTUAL_ALIAS)
        if alias >= 0:
            number = alias
    return np.int64(OK), number


@nb.njit(cache=True)
def _status_sd(value):
    """SD summarizes FS, VS and XS dirty (3.1.6.6)."""
    dirty = (
        (value & MSTATUS_FS) == MSTATUS_FS
        or (value & MSTATUS_XS) == MSTATUS_XS
        or (value & MSTATUS_VS) == MSTATUS_VS
    )
    value &= ~MSTATUS_SD
    if dirty:
        value |= MSTATUS_SD
    return value


@nb.njit(cache=True)
def csr_read(state, machine, tables, number, n):
    """Value of CSR ``number`` (already checked and aliased); n = instructions so far in
    this kernel call, including the one reading."""
    kind = csr_row(tables, number, CSR_KIND)
    slot = CSR_BASE + number
    if kind == Kind.PLAIN or kind == Kind.TVEC or kind == Kind.EPC or kind == Kind.SATP:
        return state[slot]
    if kind == Kind.MSTATUS:
        return state[CSR_MSTATUS]
    if kind == Kind.SSTATUS:
        return state[CSR_MSTATUS] & SSTATUS_MASK
    if kind == Kind.MISA:
        return machine[M_MISA]
    if kind == Kind.MIE:
        return state[CSR_MIE]
    if kind == Kind.SIE:
        return state[CSR_MIE] & state[CSR_MIDELEG] & IP_S_LEVEL
    if kind == Kind.MIP:
        return pending_bits(state, machine, state[TIME_NS] + n)
    if kind == Kind.SIP:
        return pending_bits(state, machine, state[TIME_NS] + n) & state[CSR_MIDELEG] & IP_S_LEVEL
    if kind == Kind.MHARTID:
        return state[HARTID]
    if kind == Kind.CYCLE:
        return state[CYCLE] + n - 1
    if kind == Kind.INSTRET:
        return state[INSTRET] + n - 1
    if kind == Kind.TIME:
        return mtime_at(machine, state[TIME_NS] + n)
    if kind == Kind.MIDELEG or kind == Kind.MENVCFG or kind == Kind.PMPCFG:
        return state[slot]
    if kind == Kind.PMPADDR or kind == Kind.STIMECMP:
        return state[slot]
    return np.int64(0)  # READ_ZERO and kinds of extensions not enabled


@nb.njit(cache=True)
def _pmp_locked(state, index):
    register = state[CSR_PMPCFG0 + 2 * (index >> 3)]
    return (register >> (8 * (index & 7))) & PMP_LOCK


@nb.njit(cache=True)
def _pmp_refresh(state, tlb):
    active = 0
    for register in (state[CSR_PMPCFG0], state[CSR_PMPCFG0 + 2]):
        for i in range(8):
            if (register >> (8 * i)) & 0x18:
                active = 1
    state[PMP_ACTIVE] = active
    flush_all(tlb)  # PMP changes what every context, M included, may touch


@nb.njit(cache=True)
def csr_write(state, machine, tables, tlb, number, value, n):
    """Write CSR ``number`` (already checked and aliased) with WARL legalization."""
    kind = csr_row(tables, number, CSR_KIND)
    slot = CSR_BASE + number
    mask = csr_row(tables, number, CSR_WRITE_MASK)
    if kind == Kind.PLAIN or kind == Kind.MIDELEG or kind == Kind.MENVCFG:
        state[slot] = (state[slot] & ~mask) | (value & mask)
    elif kind == Kind.MSTATUS or kind == Kind.SSTATUS:
        old = state[CSR_MSTATUS]
        writable = MSTATUS_WRITABLE if kind == Kind.MSTATUS else SSTATUS_WRITABLE
        new = (old & ~writable) | (value & writable)
        if (new & MSTATUS_MPP) == (2 << 11):
            new = (new & ~MSTATUS_MPP) | (old & MSTATUS_MPP)  # MPP cannot hold 2 (WARL)
        new = _status_sd((new & ~(np.int64(0xF) << 32)) | MSTATUS_XLEN64)
        state[CSR_MSTATUS] = new
        if (old ^ new) & MSTATUS_MXR:
            flush_tlb(tlb, 1, TLB_CONTEXTS - 1)
        if (old ^ new) & (MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_SUM):
            update_contexts(state)
    elif kind == Kind.MIE:
        state[CSR_MIE] = value & (IP_M_LEVEL | IP_S_LEVEL)
    elif kind == Kind.SIE:
        delegated = state[CSR_MIDELEG] & IP_S_LEVEL
        state[CSR_MIE] = (state[CSR_MIE] & ~delegated) | (value & delegated)
    elif kind == Kind.MIP:
        writable = np.int64(IP_S_LEVEL)
        if state[CSR_MENVCFG] & ENVCFG_STCE:
            writable &= ~np.int64(IP_STIP)
        state[CSR_MIP] = (state[CSR_MIP] & ~writable) | (value & writable)
    elif kind == Kind.SIP:
        writable = state[CSR_MIDELEG] & IP_SSIP
        state[CSR_MIP] = (state[CSR_MIP] & ~writable) | (value & writable)
    elif kind == Kind.TVEC:
        if (value & 3) < 2:  # modes 2 and 3 are reserved: the write is ignored (as QEMU)
            state[slot] = value
    elif kind == Kind.EPC:
        state[slot] = value & ~np.int64(1)
    elif kind == Kind.SATP:
        mode = (value >> SATP_MODE_SHIFT) & 0xF
        if mode == SATP_MODE_BARE or mode == SATP_MODE_SV39 or mode == SATP_MODE_SV48:
            state[slot] = value & ~(np.int64(0xF) << SATP_MODE_SHIFT) | (mode << SATP_MODE_SHIFT)
            flush_tlb(tlb, 1, TLB_CONTEXTS - 1)
    elif kind == Kind.CYCLE:
        state[CYCLE] = value - n
    elif kind == Kind.INSTRET:
        state[INSTRET] = value - n
    elif kind == Kind.STIMECMP:
        state[slot] = value
    elif kind == Kind.PMPCFG:
        old = state[slot]
        first = (number - 0x3A0) * 4  # pmpcfg0 -> entries 0..7, pmpcfg2 -> 8..15
        new = np.int64(0)
        for i in range(8):
            old_byte = (old >> (8 * i)) & 0xFF
            byte = (value >> (8 * i)) & 0x9F  # bits 6:5 are reserved zero
            if old_byte & PMP_LOCK:
                byte = old_byte
            new |= byte << (8 * i)
        state[slot] = new
        _pmp_refresh(state, tlb)
        _ = first
    elif kind == Kind.PMPADDR:
        index = number - 0x3B0
        locked = _pmp_locked(state, index) != 0
        if index < 15:
            next_cfg = state[CSR_PMPCFG0 + 2 * ((index + 1) >> 3)] >> (8 * ((index + 1) & 7))
            if (next_cfg & PMP_LOCK) and ((next_cfg >> 3) & 3) == PMP_TOR:
                locked = True
        if not locked:
            state[slot] = value & ((np.int64(1) << 54) - 1)
            _pmp_refresh(state, tlb)
    # READ_ZERO, MISA, MHARTID, TIME: writes are ignored
    return np.int64(OK)


MASK32_ = MASK32  # re-exported for callers that need the counter-enable width

"""CSR access for the kernel: the permission check, then read and write by table kind.

``csr_access_fault`` is the only place that decides between illegal instruction and virtual
instruction (privileged spec 2.1, 2.3, 8.6.1): first whether the CSR exists and the access would
be allowed in HS-mode (otherwise illegal), then whether the current mode (VS, VU) is too low for
it (virtual instruction).  With V=1 it also returns the CSR the access really goes to: sstatus
becomes vsstatus, sip vsip, and so on (8.2).  ``csr_read``/``csr_write`` dispatch on the table's
``Kind``; plain registers are one masked store.
"""

import numba as nb
import numpy as np

from rvh.cpu.extensions import has_float, has_hypervisor, mideleg_value
from rvh.cpu.interrupts import NO_INTERRUPT, mtime_at, pending_bits, select_interrupt
from rvh.cpu.layout import (
    CSR_BASE,
    CSR_FCSR,
    CSR_HCOUNTEREN,
    CSR_HENVCFG,
    CSR_HIDELEG,
    CSR_HSTATUS,
    CSR_HTIMEDELTA,
    CSR_HVIP,
    CSR_MCOUNTEREN,
    CSR_MCYCLE,
    CSR_MENVCFG,
    CSR_MIE,
    CSR_MINSTRET,
    CSR_MIP,
    CSR_MSTATUS,
    CSR_PMPCFG0,
    CSR_READ_ENTRIES,
    CSR_READ_HOW,
    CSR_READ_INDEX_MASK,
    CSR_READ_KEYS,
    CSR_READ_SSTATUS,
    CSR_READ_TIME,
    CSR_READ_VALID,
    CSR_SCOUNTEREN,
    CSR_TSELECT,
    CSR_VSSTATUS,
    CSR_WRITE_EVEN,
    CSR_WRITE_OK,
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
    TRIGGER_TDATA1,
    TRIGGER_TDATA2,
    TRIGGERS,
    TRIGGERS_ARMED,
    VIRT,
)
from rvh.cpu.mmu import OK, flush_all, forget_g_leaf, switch_address_space, update_contexts
from rvh.cpu.tables import T_CSRS
from rvh.cpu.triggers import TINFO_VALUE, legal_tdata1, update_armed
from rvh.isa.causes import Exception_
from rvh.isa.csrs import (
    CSR_COLUMNS,
    CSR_EXISTS,
    CSR_KIND,
    CSR_PREDICATE,
    CSR_VIRTUAL_ALIAS,
    CSR_WRITE_MASK,
    HSTATUS_WRITABLE,
    MEDELEG_WRITABLE_H,
    MSTATUS_WRITABLE,
    MSTATUS_WRITABLE_H,
    MSTATUS_XLEN64,
    SSTATUS_MASK,
    SSTATUS_WRITABLE,
    CsrNumber,
    Kind,
    Predicate,
)
from rvh.isa.fields import (
    COUNTEREN_TM_MASK,
    FCSR_FFLAGS_MASK,
    FCSR_FFLAGS_SHIFT,
    FCSR_FRM_MASK,
    FCSR_FRM_SHIFT,
    FCSR_WRITABLE_MASK,
    HENVCFG_STCE_MASK,
    HGATP_MODE_MASK,
    HGATP_MODE_SV39X4,
    HGATP_MODE_SV48X4,
    HGATP_PPN_MASK,
    HGATP_VMID_MASK,
    HSTATUS_VSXL_MASK,
    HSTATUS_VSXL_SHIFT,
    HSTATUS_VTVM_MASK,
    MENVCFG_STCE_MASK,
    MIP_M_LEVEL_MASK,
    MIP_S_LEVEL_MASK,
    MIP_SGEIP_MASK,
    MIP_SSIP_MASK,
    MIP_STIP_MASK,
    MIP_VS_LEVEL_MASK,
    MIP_VSSIP_MASK,
    MSTATUS_FS_MASK,
    MSTATUS_MPP_MASK,
    MSTATUS_MPRV_MASK,
    MSTATUS_MPV_MASK,
    MSTATUS_MXR_MASK,
    MSTATUS_SD_MASK,
    MSTATUS_SIE_MASK,
    MSTATUS_SUM_MASK,
    MSTATUS_TVM_MASK,
    MSTATUS_VS_MASK,
    MSTATUS_XS_MASK,
    PMP_A_TOR,
    PMPCFG_A_MASK,
    PMPCFG_A_SHIFT,
    PMPCFG_L_MASK,
    SATP_MODE_BARE,
    SATP_MODE_SHIFT,
    SATP_MODE_SV39,
    SATP_MODE_SV48,
    VSSTATUS_FS_MASK,
    VSSTATUS_SD_MASK,
    XLEN_64,
)

ILLEGAL_INSTRUCTION = Exception_.ILLEGAL_INSTRUCTION
VIRTUAL_INSTRUCTION = Exception_.VIRTUAL_INSTRUCTION

# The guest sees mcycle/minstret as the emulator's own counts (CYCLE, INSTRET: monotonic, what
# --max-insns and the statistics use) plus an offset kept in the CSRs' own slots, so a guest
# writing minstret moves its view of the counter and never the emulator's accounting.
CSR_MCYCLE_OFFSET = CSR_MCYCLE
CSR_MINSTRET_OFFSET = CSR_MINSTRET

# hgatp: MODE, VMID (14 bits: VMIDLEN as QEMU), PPN with the 2 low bits zero (16 KiB root)
HGATP_WRITABLE = HGATP_MODE_MASK | HGATP_VMID_MASK | (HGATP_PPN_MASK & ~3)
VSXL64 = XLEN_64 << HSTATUS_VSXL_SHIFT


@nb.njit(cache=True)
def csr_row(tables, number, column):
    return tables[tables[T_CSRS] + number * CSR_COLUMNS + column]


@nb.njit(cache=True)
def float_enabled(state, machine):
    """F/D instructions and fcsr are usable: misa.F, mstatus.FS != Off and, with V=1, also
    vsstatus.FS != Off (3.1.6.6; 8.2.11: "both ... must be non-Off")."""
    if not has_float(machine) or (state[CSR_MSTATUS] & MSTATUS_FS_MASK) == 0:
        return False
    return not state[VIRT] or (state[CSR_VSSTATUS] & VSSTATUS_FS_MASK) != 0


@nb.njit(cache=True)
def mark_float_dirty(state):
    """An f register or fcsr was written: FS = Dirty and SD in mstatus, and in vsstatus with
    V=1 (3.1.6.6, 8.2.11)."""
    state[CSR_MSTATUS] |= MSTATUS_FS_MASK | MSTATUS_SD_MASK
    if state[VIRT]:
        state[CSR_VSSTATUS] |= VSSTATUS_FS_MASK | VSSTATUS_SD_MASK


@nb.njit(cache=True)
def csr_access_fault(state, machine, tables, number, is_write):
    """Returns (cause or OK, the CSR number to use: the virtual alias when V=1)."""
    if csr_row(tables, number, CSR_EXISTS) == 0:
        return np.int64(ILLEGAL_INSTRUCTION), number
    predicate = csr_row(tables, number, CSR_PREDICATE)
    has_h = has_hypervisor(machine)
    if predicate == Predicate.HYPERVISOR and not has_h:
        return np.int64(ILLEGAL_INSTRUCTION), number
    if predicate == Predicate.PMP_ODD:
        return np.int64(ILLEGAL_INSTRUCTION), number
    if predicate == Predicate.FLOAT and not float_enabled(state, machine):
        return np.int64(ILLEGAL_INSTRUCTION), number  # FS = Off (3.1.6.6, 8.2.11 for VS)
    if is_write and (number >> 10) == 3:
        return np.int64(ILLEGAL_INSTRUCTION), number  # read-only CSR
    priv = state[PRIV]
    virt = state[VIRT]
    required = (number >> 8) & 3
    # ---- would HS-mode (or M) be allowed?  If not: illegal instruction ----
    if priv == PRIV_M:
        level = 3
    elif priv == PRIV_S:
        level = 2 if has_h else 1  # HS (and VS, before the V=1 check below)
    else:
        level = 0
    if level < required:
        if not virt or required == 3:
            return np.int64(ILLEGAL_INSTRUCTION), number
        # VU reaching an S or H CSR that VS or HS could reach: checked below
        if priv == PRIV_U and required <= 2:
            return np.int64(VIRTUAL_INSTRUCTION), number
        return np.int64(ILLEGAL_INSTRUCTION), number
    # counters: mcounteren gates below M; scounteren gates U; hcounteren gates VS/VU.  8.2.6:
    # "When the CY, TM, IR, or HPMn bit in the hcounteren register is clear, attempts to read
    # the cycle, time, instret, or hpmcountern register while V=1 will cause a virtual
    # instruction exception if the same bit in mcounteren is 1.  When one of these bits is set,
    # access to the corresponding register is permitted when V=1, unless prevented for some
    # other reason.  In VU-mode, a counter is not readable unless the applicable bits are set
    # in both hcounteren and scounteren."  A bit clear in mcounteren: illegal (3.1.11)
    if predicate == Predicate.COUNTER and priv != PRIV_M:
        bit = np.int64(1) << (number & 31)
        if (state[CSR_MCOUNTEREN] & bit) == 0:
            return np.int64(ILLEGAL_INSTRUCTION), number
        if virt:
            if (state[CSR_HCOUNTEREN] & bit) == 0:
                return np.int64(VIRTUAL_INSTRUCTION), number
            if priv == PRIV_U and (state[CSR_SCOUNTEREN] & bit) == 0:
                return np.int64(VIRTUAL_INSTRUCTION), number
        elif priv == PRIV_U and (state[CSR_SCOUNTEREN] & bit) == 0:
            return np.int64(ILLEGAL_INSTRUCTION), number
    if predicate == Predicate.SSTC and priv != PRIV_M:
        # Sstc: stimecmp needs menvcfg.STCE and mcounteren.TM below M; with V=1 also henvcfg.STCE
        # and hcounteren.TM, else virtual instruction
        if (state[CSR_MENVCFG] & MENVCFG_STCE_MASK) == 0 or (
            state[CSR_MCOUNTEREN] & COUNTEREN_TM_MASK
        ) == 0:
            return np.int64(ILLEGAL_INSTRUCTION), number
        if virt and (
            (state[CSR_HENVCFG] & HENVCFG_STCE_MASK) == 0
            or (state[CSR_HCOUNTEREN] & COUNTEREN_TM_MASK) == 0
        ):
            return np.int64(VIRTUAL_INSTRUCTION), number
    if virt:
        if required == 2:
            return np.int64(VIRTUAL_INSTRUCTION), number  # H and VS CSRs from VS-mode
        if required == 1 and priv == PRIV_U:
            return np.int64(VIRTUAL_INSTRUCTION), number
    if number == CsrNumber.HGATP and priv == PRIV_S and not virt:
        if state[CSR_MSTATUS] & MSTATUS_TVM_MASK:
            return np.int64(ILLEGAL_INSTRUCTION), number  # mstatus.TVM traps hgatp too (8.2.10)
    if number == CsrNumber.SATP and priv == PRIV_S:
        if virt:
            if state[CSR_HSTATUS] & HSTATUS_VTVM_MASK:
                return np.int64(VIRTUAL_INSTRUCTION), number  # hstatus.VTVM (8.2.1)
        elif state[CSR_MSTATUS] & MSTATUS_TVM_MASK:
            return np.int64(ILLEGAL_INSTRUCTION), number  # mstatus.TVM (3.1.6.5)
    if virt:
        alias = csr_row(tables, number, CSR_VIRTUAL_ALIAS)
        if alias >= 0:
            number = alias
    return np.int64(OK), number


@nb.njit(cache=True)
def _status_sd(value):
    """SD summarizes FS, VS and XS dirty (3.1.6.6)."""
    dirty = (
        (value & MSTATUS_FS_MASK) == MSTATUS_FS_MASK
        or (value & MSTATUS_XS_MASK) == MSTATUS_XS_MASK
        or (value & MSTATUS_VS_MASK) == MSTATUS_VS_MASK
    )
    value &= ~MSTATUS_SD_MASK
    if dirty:
        value |= MSTATUS_SD_MASK
    return value


@nb.njit(cache=True)
def clear_csr_reads(state):
    """Forget every CSR read the fast loop could repeat (layout.CSR_READ_KEYS)."""
    for index in range(CSR_READ_ENTRIES):
        state[CSR_READ_KEYS + index] = 0


@nb.njit(cache=True)
def plain_write_mask(number):
    """The bits a write of CSR ``number`` (aliased) sets, for the CSRs whose write changes
    their slot and nothing else: no translation, interrupt, legality or cached state depends
    on them (trap values and scratch registers; the xepcs keep bit 0 zero, 3.1.14).  0 for
    every other CSR."""
    if (
        number == CsrNumber.SSCRATCH
        or number == CsrNumber.SCAUSE
        or number == CsrNumber.STVAL
        or number == CsrNumber.MSCRATCH
        or number == CsrNumber.MCAUSE
        or number == CsrNumber.MTVAL
        or number == CsrNumber.VSSCRATCH
        or number == CsrNumber.VSCAUSE
        or number == CsrNumber.VSTVAL
        or number == CsrNumber.MTINST
        or number == CsrNumber.MTVAL2
        or number == CsrNumber.HTVAL
        or number == CsrNumber.HTINST
    ):
        return np.int64(-1)
    if number == CsrNumber.SEPC or number == CsrNumber.MEPC or number == CsrNumber.VSEPC:
        return ~np.int64(1)
    return np.int64(0)


@nb.njit(cache=True)
def status_write_value(old, value, writable):
    """mstatus after a write of ``value`` to its ``writable`` bits (the mstatus and sstatus
    views): WARL MPP, fixed UXL/SXL, SD from FS/VS/XS."""
    new = (old & ~writable) | (value & writable)
    if (new & MSTATUS_MPP_MASK) == (2 << 11):
        new = (new & ~MSTATUS_MPP_MASK) | (old & MSTATUS_MPP_MASK)  # MPP cannot hold 2 (WARL)
    return _status_sd((new & ~(np.int64(0xF) << 32)) | MSTATUS_XLEN64)


@nb.njit(cache=True)
def sstatus_writable(machine):
    writable = np.int64(SSTATUS_WRITABLE)
    if has_float(machine):
        writable |= MSTATUS_FS_MASK
    return writable


@nb.njit(cache=True)
def fast_sstatus_write(state, machine, value, n):
    """The fast loop's write of ``value`` to sstatus (V=0; the general path found it legal
    at this privilege, layout.CSR_WRITE_OK), ``n`` instructions into the kernel call, before
    this one.  Returns False, having changed nothing, when the general path must do it: the
    write flips MXR (csr_write flushes every context) or lets a pending interrupt in (taken
    before the next instruction, 3.1.6.1, by the general path's event check).  A SUM change
    switches the TLB contexts; the caller re-reads them."""
    before = state[CSR_MSTATUS]
    after = status_write_value(before, value, sstatus_writable(machine))
    if (before ^ after) & MSTATUS_MXR_MASK:
        return False
    state[CSR_MSTATUS] = after
    if after & ~before & MSTATUS_SIE_MASK:
        if select_interrupt(state, machine, state[TIME_NS] + n + 1) != NO_INTERRUPT:
            state[CSR_MSTATUS] = before
            return False
    if (before ^ after) & MSTATUS_SUM_MASK:
        update_contexts(state)
    return True


@nb.njit(cache=True)
def remember_csr_read(state, tables, csr_number, number):
    """A read of ``csr_number`` (``number`` once aliased for V=1) was legal at the current
    privilege and V: let the fast loop repeat it while no CSR is written, when its value is a
    state slot, sstatus's view of mstatus, or time.  FP CSRs are left out: FS changes without
    a CSR write.  The fast loop may write the CSR too when ``plain_write_mask`` lists it or it
    is sstatus (their reads and writes are legal alike: none is read-only)."""
    if csr_row(tables, number, CSR_PREDICATE) == Predicate.FLOAT:
        return
    kind = csr_row(tables, number, CSR_KIND)
    how = np.int64(CSR_BASE + number)
    write_bits = np.int64(0)
    mask = plain_write_mask(number)
    if mask == -1:
        write_bits = np.int64(CSR_WRITE_OK)
    elif mask != 0:
        write_bits = np.int64(CSR_WRITE_OK | CSR_WRITE_EVEN)
    if kind == Kind.SSTATUS:
        how = np.int64(CSR_READ_SSTATUS)
        write_bits = np.int64(CSR_WRITE_OK)
    elif kind == Kind.TIME:
        how = np.int64(CSR_READ_TIME)
    elif kind == Kind.MHARTID:
        how = np.int64(HARTID)
    elif not (
        kind == Kind.PLAIN
        or kind == Kind.TVEC
        or kind == Kind.EPC
        or kind == Kind.SATP
        or kind == Kind.MENVCFG
        or kind == Kind.PMPCFG
        or kind == Kind.PMPADDR
        or kind == Kind.STIMECMP
        or kind == Kind.VSTIMECMP
        or kind == Kind.HGATP
        or kind == Kind.VSATP
        or kind == Kind.HIDELEG
        or kind == Kind.HCOUNTEREN
        or kind == Kind.HVIP
        or kind == Kind.VSSTATUS
        or kind == Kind.MSTATUS
        or kind == Kind.MIE
        or kind == Kind.MEDELEG
        or kind == Kind.HSTATUS
    ):
        return
    index = (csr_number ^ (csr_number >> 4) ^ (csr_number >> 8)) & CSR_READ_INDEX_MASK
    state[CSR_READ_KEYS + index] = (
        csr_number | (state[PRIV] << 12) | (state[VIRT] << 14) | CSR_READ_VALID | write_bits
    )
    state[CSR_READ_HOW + index] = how


@nb.njit(cache=True)
def csr_read(state, machine, tables, number, n):
    """Value of CSR ``number`` (already checked and aliased); n = instructions so far in
    this kernel call, including the one reading."""
    kind = csr_row(tables, number, CSR_KIND)
    slot = CSR_BASE + number
    if (
        kind == Kind.PLAIN
        or kind == Kind.TVEC
        or kind == Kind.EPC
        or kind == Kind.SATP
        or kind == Kind.MENVCFG
        or kind == Kind.PMPCFG
        or kind == Kind.PMPADDR
        or kind == Kind.STIMECMP
        or kind == Kind.VSTIMECMP
        or kind == Kind.HGATP
        or kind == Kind.VSATP
        or kind == Kind.HIDELEG
        or kind == Kind.HCOUNTEREN
        or kind == Kind.HVIP
        or kind == Kind.VSSTATUS
    ):
        return state[slot]
    now = state[TIME_NS] + n
    if kind == Kind.FFLAGS:
        return (state[CSR_FCSR] & FCSR_FFLAGS_MASK) >> FCSR_FFLAGS_SHIFT
    if kind == Kind.FRM:
        return (state[CSR_FCSR] & FCSR_FRM_MASK) >> FCSR_FRM_SHIFT
    if kind == Kind.FCSR:
        return state[CSR_FCSR] & FCSR_WRITABLE_MASK
    if kind == Kind.MSTATUS:
        return state[CSR_MSTATUS]
    if kind == Kind.SSTATUS:
        return state[CSR_MSTATUS] & SSTATUS_MASK
    if kind == Kind.MISA:
        return machine[M_MISA]
    if kind == Kind.MIE:
        return state[CSR_MIE]
    if kind == Kind.MIDELEG:
        return mideleg_value(state, machine)
    if kind == Kind.MEDELEG:
        return state[slot]
    if kind == Kind.HENVCFG:
        value = state[slot]
        if (state[CSR_MENVCFG] & MENVCFG_STCE_MASK) == 0:
            value &= ~HENVCFG_STCE_MASK  # read-only zero while menvcfg.STCE is clear (Sstc)
        return value
    if kind == Kind.SIE:
        return state[CSR_MIE] & mideleg_value(state, machine) & MIP_S_LEVEL_MASK
    if kind == Kind.MIP:
        return pending_bits(state, machine, now)
    if kind == Kind.SIP:
        return pending_bits(state, machine, now) & mideleg_value(state, machine) & MIP_S_LEVEL_MASK
    if kind == Kind.HIE:
        return state[CSR_MIE] & (MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK)
    if kind == Kind.HIP:
        return pending_bits(state, machine, now) & (MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK)
    if kind == Kind.VSIE:
        # VS-level interrupts delegated by hideleg appear one bit lower, as S-level ones
        return (state[CSR_MIE] & state[CSR_HIDELEG] & MIP_VS_LEVEL_MASK) >> 1
    if kind == Kind.VSIP:
        return (pending_bits(state, machine, now) & state[CSR_HIDELEG] & MIP_VS_LEVEL_MASK) >> 1
    if kind == Kind.HSTATUS:
        return state[CSR_HSTATUS]
    if kind == Kind.MHARTID:
        return state[HARTID]
    if kind == Kind.CYCLE:
        return state[CYCLE] + n - 1 + state[CSR_MCYCLE_OFFSET]
    if kind == Kind.INSTRET:
        return state[INSTRET] + n - 1 + state[CSR_MINSTRET_OFFSET]
    if kind == Kind.TSELECT:
        return state[CSR_TSELECT]
    if kind == Kind.TDATA1:
        return state[TRIGGER_TDATA1 + state[CSR_TSELECT]]
    if kind == Kind.TDATA2:
        return state[TRIGGER_TDATA2 + state[CSR_TSELECT]]
    if kind == Kind.TINFO:
        return np.int64(TINFO_VALUE)
    if kind == Kind.TIME:
        time = mtime_at(machine, now)
        if state[VIRT]:
            # 8.2.7: "the value returned by the time CSR in VS-mode or VU-mode is the sum of
            # the contents of htimedelta and the actual value of time"
            time += state[CSR_HTIMEDELTA]
        return time
    return np.int64(0)  # READ_ZERO, HGEIP (GEILEN = 0), TDATA3 (types 2 and 6 have none)


@nb.njit(cache=True)
def _pmp_locked(state, index):
    register = state[CSR_PMPCFG0 + 2 * (index >> 3)]
    return (register >> (8 * (index & 7))) & PMPCFG_L_MASK


@nb.njit(cache=True)
def _pmp_refresh(state, tlb):
    active = 0
    for register in (state[CSR_PMPCFG0], state[CSR_PMPCFG0 + 2]):
        for i in range(8):
            if (register >> (8 * i)) & 0x18:
                active = 1
    state[PMP_ACTIVE] = active
    flush_all(tlb)  # PMP changes what every context, M included, may touch
    forget_g_leaf(state)  # and the page-table reads of the G-stage walk it remembers


@nb.njit(cache=True)
def _legal_atp(value, hypervisor_stage):
    """satp/vsatp/hgatp: only Bare, Sv39(x4) and Sv48(x4); another MODE ignores the write.
    Returns (legal, value)."""
    mode = (value >> SATP_MODE_SHIFT) & 0xF
    if hypervisor_stage:
        if mode != SATP_MODE_BARE and mode != HGATP_MODE_SV39X4 and mode != HGATP_MODE_SV48X4:
            return False, value
        return True, value & HGATP_WRITABLE
    if mode != SATP_MODE_BARE and mode != SATP_MODE_SV39 and mode != SATP_MODE_SV48:
        return False, value
    return True, value


@nb.njit(cache=True)
def csr_write(state, machine, tables, tlb, number, value, n):
    """Write CSR ``number`` (already checked and aliased) with WARL legalization."""
    kind = csr_row(tables, number, CSR_KIND)
    slot = CSR_BASE + number
    mask = csr_row(tables, number, CSR_WRITE_MASK)
    has_h = has_hypervisor(machine)
    if (
        kind == Kind.PLAIN
        or kind == Kind.MENVCFG
        or kind == Kind.HIDELEG
        or kind == Kind.HCOUNTEREN
    ):
        state[slot] = (state[slot] & ~mask) | (value & mask)
    elif kind == Kind.MIDELEG:
        state[slot] = (state[slot] & ~mask) | (value & mask)
    elif kind == Kind.MEDELEG:
        if has_h:
            mask = np.int64(MEDELEG_WRITABLE_H)
        state[slot] = (state[slot] & ~mask) | (value & mask)
    elif kind == Kind.HENVCFG:
        if (state[CSR_MENVCFG] & MENVCFG_STCE_MASK) == 0:
            mask &= ~HENVCFG_STCE_MASK
        state[slot] = (state[slot] & ~mask) | (value & mask)
    elif kind == Kind.FFLAGS or kind == Kind.FRM or kind == Kind.FCSR:
        if kind == Kind.FFLAGS:
            written = np.int64(FCSR_FFLAGS_MASK)
            value = value << FCSR_FFLAGS_SHIFT
        elif kind == Kind.FRM:
            written = np.int64(FCSR_FRM_MASK)
            value = value << FCSR_FRM_SHIFT
        else:
            written = np.int64(FCSR_WRITABLE_MASK)
        state[CSR_FCSR] = (state[CSR_FCSR] & ~written) | (value & written)
        mark_float_dirty(state)
    elif kind == Kind.MSTATUS or kind == Kind.SSTATUS:
        old = state[CSR_MSTATUS]
        if kind == Kind.SSTATUS:
            writable = sstatus_writable(machine)
        else:
            writable = np.int64(MSTATUS_WRITABLE_H) if has_h else np.int64(MSTATUS_WRITABLE)
            if has_float(machine):
                writable |= MSTATUS_FS_MASK
        new = status_write_value(old, value, writable)
        state[CSR_MSTATUS] = new
        if (old ^ new) & MSTATUS_MXR_MASK:
            flush_all(tlb)
        if (old ^ new) & (
            MSTATUS_MPRV_MASK | MSTATUS_MPP_MASK | MSTATUS_SUM_MASK | MSTATUS_MPV_MASK
        ):
            update_contexts(state)
    elif kind == Kind.VSSTATUS:
        old = state[slot]
        writable = np.int64(SSTATUS_WRITABLE)
        if has_float(machine):
            writable |= VSSTATUS_FS_MASK
        new = (old & ~writable) | (value & writable)
        new = _status_sd((new & ~(np.int64(3) << 32)) | (np.int64(2) << 32))
        state[slot] = new
        if (old ^ new) & MSTATUS_MXR_MASK:
            flush_all(tlb)
        if (old ^ new) & MSTATUS_SUM_MASK:
            update_contexts(state)
    elif kind == Kind.HSTATUS:
        state[slot] = (state[slot] & ~np.int64(HSTATUS_WRITABLE)) | (value & HSTATUS_WRITABLE)
        state[slot] = (state[slot] & ~HSTATUS_VSXL_MASK) | VSXL64
    elif kind == Kind.MIE:
        writable = np.int64(MIP_M_LEVEL_MASK | MIP_S_LEVEL_MASK)
        if has_h:
            writable |= MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK
        state[CSR_MIE] = (state[CSR_MIE] & ~writable) | (value & writable)
    elif kind == Kind.SIE:
        delegated = mideleg_value(state, machine) & MIP_S_LEVEL_MASK
        state[CSR_MIE] = (state[CSR_MIE] & ~delegated) | (value & delegated)
    elif kind == Kind.HIE:
        writable = np.int64(MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK)
        state[CSR_MIE] = (state[CSR_MIE] & ~writable) | (value & writable)
    elif kind == Kind.VSIE:
        delegated = state[CSR_HIDELEG] & MIP_VS_LEVEL_MASK
        state[CSR_MIE] = (state[CSR_MIE] & ~delegated) | ((value << 1) & delegated)
    elif kind == Kind.MIP:
        writable = np.int64(MIP_S_LEVEL_MASK)
        if state[CSR_MENVCFG] & MENVCFG_STCE_MASK:
            writable &= ~np.int64(MIP_STIP_MASK)
        state[CSR_MIP] = (state[CSR_MIP] & ~writable) | (value & writable)
        if has_h:  # mip.VSSIP is hvip.VSSIP
            state[CSR_HVIP] = (state[CSR_HVIP] & ~np.int64(MIP_VSSIP_MASK)) | (
                value & MIP_VSSIP_MASK
            )
    elif kind == Kind.SIP:
        writable = mideleg_value(state, machine) & MIP_SSIP_MASK
        state[CSR_MIP] = (state[CSR_MIP] & ~writable) | (value & writable)
    elif kind == Kind.HIP:
        state[CSR_HVIP] = (state[CSR_HVIP] & ~np.int64(MIP_VSSIP_MASK)) | (value & MIP_VSSIP_MASK)
    elif kind == Kind.HVIP:
        state[slot] = value & MIP_VS_LEVEL_MASK
    elif kind == Kind.VSIP:
        if state[CSR_HIDELEG] & MIP_VSSIP_MASK:  # only VSSIP, seen as SSIP, is writable
            state[CSR_HVIP] = (state[CSR_HVIP] & ~np.int64(MIP_VSSIP_MASK)) | (
                (value << 1) & MIP_VSSIP_MASK
            )
    elif kind == Kind.TVEC:
        if (value & 3) < 2:  # modes 2 and 3 are reserved: the write is ignored (as QEMU)
            state[slot] = value
    elif kind == Kind.EPC:
        state[slot] = value & ~np.int64(1)
    elif kind == Kind.SATP or kind == Kind.VSATP or kind == Kind.HGATP:
        legal, new = _legal_atp(value, kind == Kind.HGATP)
        if legal:
            state[slot] = new
            switch_address_space(state, tlb)
    elif kind == Kind.CYCLE:
        # the writing instruction does not count: the next one reads ``value``
        state[CSR_MCYCLE_OFFSET] = value - (state[CYCLE] + n)
    elif kind == Kind.INSTRET:
        state[CSR_MINSTRET_OFFSET] = value - (state[INSTRET] + n)
    elif kind == Kind.STIMECMP or kind == Kind.VSTIMECMP:
        state[slot] = value
    elif kind == Kind.PMPCFG:
        old = state[slot]
        new = np.int64(0)
        for i in range(8):
            old_byte = (old >> (8 * i)) & 0xFF
            byte = (value >> (8 * i)) & 0x9F  # bits 6:5 are reserved zero
            if old_byte & PMPCFG_L_MASK:
                byte = old_byte
            new |= byte << (8 * i)
        state[slot] = new
        _pmp_refresh(state, tlb)
    elif kind == Kind.PMPADDR:
        index = number - CsrNumber.PMPADDR0
        locked = _pmp_locked(state, index) != 0
        if index < 15:
            next_cfg = state[CSR_PMPCFG0 + 2 * ((index + 1) >> 3)] >> (8 * ((index + 1) & 7))
            if (next_cfg & PMPCFG_L_MASK) and (
                (next_cfg & PMPCFG_A_MASK) >> PMPCFG_A_SHIFT
            ) == PMP_A_TOR:
                locked = True
        if not locked:
            state[slot] = value & ((np.int64(1) << 54) - 1)
            _pmp_refresh(state, tlb)
    elif kind == Kind.TSELECT:
        if 0 <= value < TRIGGERS:  # WARL: another index leaves tselect as it was (QEMU 7.2)
            state[slot] = value
    elif kind == Kind.TDATA1 or kind == Kind.TDATA2:
        index = TRIGGER_TDATA1 if kind == Kind.TDATA1 else TRIGGER_TDATA2
        index += state[CSR_TSELECT]
        state[index] = legal_tdata1(value, state[index]) if kind == Kind.TDATA1 else value
        was_armed = state[TRIGGERS_ARMED]
        if was_armed | update_armed(state):
            # the pages a trigger covers get slow TLB tags (rvh/cpu/triggers.py); the pages
            # it covered before may be fast again
            flush_all(tlb)
    # READ_ZERO, MISA, MHARTID, TIME, HGEIP, TDATA3, TINFO: writes are ignored
    return np.int64(OK)

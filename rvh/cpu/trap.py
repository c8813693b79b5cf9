"""Trap entry and return (privileged spec 3.1.6.1, 3.1.8, 3.3.2, 4.1.1; H: 8.4.2, 8.6).

``take_trap`` picks the handling mode, saves pc, cause and trap values in that mode's CSRs,
stacks the interrupt enable and previous privilege (and previous V), and returns the handler
address from the mode's trap vector (vectored mode sends interrupts to base + 4 * cause).
Traps go to M unless mideleg/medeleg delegate them, then to HS unless V=1 and
hideleg/hedeleg delegate them to VS; they never go to a less privileged mode.  ``mret`` and
``sret`` undo it.
"""

import numba as nb
import numpy as np

from rvh.cpu.layout import (
    CAUSE_MUTANT_CODES,
    CSR_BASE,
    EXCEPTIONS,
    INSTRET,
    INTERRUPTS,
    LAST_CAUSE,
    M_CAUSE_MUTANT,
    M_MISA,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    TRAP_GVA,
    TRAP_TINST,
    TRAP_TVAL2,
    VIRT,
)
from rvh.cpu.mmu import update_contexts
from rvh.isa.csrs import (
    HSTATUS_GVA,
    HSTATUS_SPV,
    HSTATUS_SPVP,
    IP_SGEIP,
    IP_VS_LEVEL,
    MSTATUS_GVA,
    MSTATUS_MIE,
    MSTATUS_MPIE,
    MSTATUS_MPP,
    MSTATUS_MPP_SHIFT,
    MSTATUS_MPRV,
    MSTATUS_MPV,
    MSTATUS_SIE,
    MSTATUS_SPIE,
    MSTATUS_SPP,
)

CSR_MSTATUS = CSR_BASE + 0x300
CSR_MEDELEG = CSR_BASE + 0x302
CSR_MIDELEG = CSR_BASE + 0x303
CSR_MTVEC = CSR_BASE + 0x305
CSR_MEPC = CSR_BASE + 0x341
CSR_MCAUSE = CSR_BASE + 0x342
CSR_MTVAL = CSR_BASE + 0x343
CSR_MTINST = CSR_BASE + 0x34A
CSR_MTVAL2 = CSR_BASE + 0x34B
CSR_STVEC = CSR_BASE + 0x105
CSR_SEPC = CSR_BASE + 0x141
CSR_SCAUSE = CSR_BASE + 0x142
CSR_STVAL = CSR_BASE + 0x143
CSR_HSTATUS = CSR_BASE + 0x600
CSR_HEDELEG = CSR_BASE + 0x602
CSR_HIDELEG = CSR_BASE + 0x603
CSR_HTVAL = CSR_BASE + 0x643
CSR_HTINST = CSR_BASE + 0x64A
CSR_VSSTATUS = CSR_BASE + 0x200
CSR_VSTVEC = CSR_BASE + 0x205
CSR_VSEPC = CSR_BASE + 0x241
CSR_VSCAUSE = CSR_BASE + 0x242
CSR_VSTVAL = CSR_BASE + 0x243

INTERRUPT_FLAG = np.int64(-(2**63))

TARGET_M = 3
TARGET_HS = 1
TARGET_VS = 5  # S with V=1


@nb.njit(cache=True)
def _vector(tvec, cause, is_interrupt):
    base = tvec & ~np.int64(3)
    if is_interrupt and (tvec & 3) == 1:
        return base + 4 * cause
    return base


@nb.njit(cache=True)
def trap_target(state, machine, cause, is_interrupt):
    """TARGET_M, TARGET_HS or TARGET_VS for this trap from the current mode."""
    if state[PRIV] == PRIV_M:
        return TARGET_M
    has_h = (machine[M_MISA] >> 7) & 1
    if is_interrupt:
        mideleg = state[CSR_MIDELEG]
        if has_h:
            mideleg |= IP_VS_LEVEL | IP_SGEIP
        if not (mideleg >> cause) & 1:
            return TARGET_M
        if state[VIRT] and has_h and (state[CSR_HIDELEG] >> cause) & 1:
            return TARGET_VS
        return TARGET_HS
    if not (state[CSR_MEDELEG] >> cause) & 1:
        return TARGET_M
    if state[VIRT] and has_h and (state[CSR_HEDELEG] >> cause) & 1:
        return TARGET_VS
    return TARGET_HS


@nb.njit(cache=True)
def take_trap(state, machine, cause, is_interrupt, tval, pc):
    """Enter the trap handler; returns the new pc.  tval is ignored for interrupts; the H
    trap values (GVA, htval/mtval2, htinst/mtinst) come from the state's side channel."""
    if not is_interrupt and cause < CAUSE_MUTANT_CODES and machine[M_CAUSE_MUTANT + cause] != 0:
        cause = machine[M_CAUSE_MUTANT + cause] - 1  # a planted bug (tools/mutate), never set else
    priv = state[PRIV]
    virt = state[VIRT]
    target = trap_target(state, machine, cause, is_interrupt)
    gva = state[TRAP_GVA]
    tval2 = state[TRAP_TVAL2]
    tinst = state[TRAP_TINST]
    if tinst < 0:
        tinst = np.int64(0)
    state[TRAP_GVA] = 0
    state[TRAP_TVAL2] = 0
    state[TRAP_TINST] = 0
    if is_interrupt:
        tval = np.int64(0)
        gva = np.int64(0)
        tval2 = np.int64(0)
        tinst = np.int64(0)
        state[INTERRUPTS] += 1
    else:
        state[EXCEPTIONS] += 1
        state[INSTRET] -= 1  # the faulting instruction does not retire
    mcause = cause | (INTERRUPT_FLAG if is_interrupt else np.int64(0))
    state[LAST_CAUSE] = mcause
    mstatus = state[CSR_MSTATUS]
    if target == TARGET_VS:
        # VS-level interrupts are reported to VS-mode with the S-level codes (8.2.3)
        vcause = cause - 1 if is_interrupt and (cause == 2 or cause == 6 or cause == 10) else cause
        vsstatus = state[CSR_VSSTATUS]
        state[CSR_VSEPC] = pc
        state[CSR_VSCAUSE] = vcause | (INTERRUPT_FLAG if is_interrupt else np.int64(0))
        state[CSR_VSTVAL] = tval
        spie = MSTATUS_SPIE if vsstatus & MSTATUS_SIE else 0
        vsstatus = (vsstatus & ~(MSTATUS_SPIE | MSTATUS_SIE | MSTATUS_SPP)) | spie
        if priv == PRIV_S:
            vsstatus |= MSTATUS_SPP
        state[CSR_VSSTATUS] = vsstatus
        state[PRIV] = PRIV_S
        new_pc = _vector(state[CSR_VSTVEC], vcause, is_interrupt)
    elif target == TARGET_HS:
        state[CSR_SEPC] = pc
        state[CSR_SCAUSE] = mcause
        state[CSR_STVAL] = tval
        spie = MSTATUS_SPIE if mstatus & MSTATUS_SIE else 0
        mstatus = (mstatus & ~(MSTATUS_SPIE | MSTATUS_SIE | MSTATUS_SPP)) | spie
        if priv == PRIV_S:
            mstatus |= MSTATUS_SPP
        state[CSR_MSTATUS] = mstatus
        if (machine[M_MISA] >> 7) & 1:
            hstatus = state[CSR_HSTATUS] & ~(HSTATUS_SPV | HSTATUS_GVA)
            if virt:
                hstatus |= HSTATUS_SPV
                hstatus = (hstatus & ~HSTATUS_SPVP) | (HSTATUS_SPVP if priv == PRIV_S else 0)
            if gva:
                hstatus |= HSTATUS_GVA
            state[CSR_HSTATUS] = hstatus
            state[CSR_HTVAL] = tval2
            state[CSR_HTINST] = tinst
        state[PRIV] = PRIV_S
        state[VIRT] = 0
        new_pc = _vector(state[CSR_STVEC], cause, is_interrupt)
    else:
        state[CSR_MEPC] = pc
        state[CSR_MCAUSE] = mcause
        state[CSR_MTVAL] = tval
        mpie = MSTATUS_MPIE if mstatus & MSTATUS_MIE else 0
        mstatus = (mstatus & ~(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP)) | mpie
        mstatus |= priv << MSTATUS_MPP_SHIFT
        if (machine[M_MISA] >> 7) & 1:
            mstatus &= ~(MSTATUS_MPV | MSTATUS_GVA)
            if virt:
                mstatus |= MSTATUS_MPV
            if gva:
                mstatus |= MSTATUS_GVA
            state[CSR_MTVAL2] = tval2
            state[CSR_MTINST] = tinst
        state[CSR_MSTATUS] = mstatus
        state[PRIV] = PRIV_M
        state[VIRT] = 0
        new_pc = _vector(state[CSR_MTVEC], cause, is_interrupt)
    update_contexts(state)
    return new_pc


@nb.njit(cache=True)
def mret(state, machine):
    """Return from an M-mode trap (3.3.2, 8.4.1); the caller checked the privilege."""
    mstatus = state[CSR_MSTATUS]
    new_priv = (mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT
    new_virt = 1 if (mstatus & MSTATUS_MPV) and new_priv != PRIV_M else 0
    mie = MSTATUS_MIE if mstatus & MSTATUS_MPIE else 0
    mstatus = (mstatus & ~(MSTATUS_MIE | MSTATUS_MPP | MSTATUS_MPV)) | mie | MSTATUS_MPIE
    mstatus |= PRIV_U << MSTATUS_MPP_SHIFT
    if new_priv != PRIV_M:
        mstatus &= ~MSTATUS_MPRV
    state[CSR_MSTATUS] = mstatus
    state[PRIV] = new_priv
    state[VIRT] = new_virt
    update_contexts(state)
    return state[CSR_MEPC]


@nb.njit(cache=True)
def sret(state, machine):
    """Return from an S-mode trap (4.1.1, 8.4.1): from HS it may enter V=1 (hstatus.SPV);
    from VS it uses vsstatus and vsepc.  The caller checked privilege, TSR and VTSR."""
    mstatus = state[CSR_MSTATUS]
    if state[VIRT]:
        vsstatus = state[CSR_VSSTATUS]
        new_priv = PRIV_S if vsstatus & MSTATUS_SPP else PRIV_U
        sie = MSTATUS_SIE if vsstatus & MSTATUS_SPIE else 0
        state[CSR_VSSTATUS] = (vsstatus & ~(MSTATUS_SIE | MSTATUS_SPP)) | sie | MSTATUS_SPIE
        state[PRIV] = new_priv
        update_contexts(state)
        return state[CSR_VSEPC]
    new_priv = PRIV_S if mstatus & MSTATUS_SPP else PRIV_U
    sie = MSTATUS_SIE if mstatus & MSTATUS_SPIE else 0
    mstatus = (mstatus & ~(MSTATUS_SIE | MSTATUS_SPP)) | sie | MSTATUS_SPIE
    mstatus &= ~MSTATUS_MPRV  # sret always lands below M (1.12: clears MPRV)
    state[CSR_MSTATUS] = mstatus
    if (machine[M_MISA] >> 7) & 1:
        hstatus = state[CSR_HSTATUS]
        state[VIRT] = 1 if hstatus & HSTATUS_SPV else 0
        state[CSR_HSTATUS] = hstatus & ~HSTATUS_SPV
    state[PRIV] = new_priv
    update_contexts(state)
    return state[CSR_SEPC]

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

from rvh.cpu.extensions import has_hypervisor, mideleg_value
from rvh.cpu.layout import (
    CAUSE_MUTANT_CODES,
    CSR_HEDELEG,
    CSR_HGATP,
    CSR_HIDELEG,
    CSR_HSTATUS,
    CSR_HTINST,
    CSR_HTVAL,
    CSR_MCAUSE,
    CSR_MEDELEG,
    CSR_MEPC,
    CSR_MSTATUS,
    CSR_MTINST,
    CSR_MTVAL,
    CSR_MTVAL2,
    CSR_MTVEC,
    CSR_SCAUSE,
    CSR_SEPC,
    CSR_STVAL,
    CSR_STVEC,
    CSR_VSCAUSE,
    CSR_VSEPC,
    CSR_VSSTATUS,
    CSR_VSTVAL,
    CSR_VSTVEC,
    EXCEPTIONS,
    EXIT_VMID,
    HS_BY_VMID,
    HS_VMID_SLOTS,
    INSTRET,
    INTERRUPTS,
    LAST_CAUSE,
    LEVEL_HS,
    LEVEL_M,
    LEVEL_MARK,
    LEVEL_U,
    LEVEL_VS,
    LEVEL_VU,
    M_CAUSE_MUTANT,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    RETIRED_BY_LEVEL,
    TRAP_GVA,
    TRAP_TINST,
    TRAP_TVAL2,
    VIRT,
)
from rvh.cpu.mmu import update_contexts
from rvh.isa.causes import Interrupt
from rvh.isa.fields import (
    HGATP_VMID_MASK,
    HGATP_VMID_SHIFT,
    HSTATUS_GVA_MASK,
    HSTATUS_SPV_MASK,
    HSTATUS_SPVP_MASK,
    MSTATUS_GVA_MASK,
    MSTATUS_MIE_MASK,
    MSTATUS_MPIE_MASK,
    MSTATUS_MPP_MASK,
    MSTATUS_MPP_SHIFT,
    MSTATUS_MPRV_MASK,
    MSTATUS_MPV_MASK,
    MSTATUS_SIE_MASK,
    MSTATUS_SPIE_MASK,
    MSTATUS_SPP_MASK,
)

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
    has_h = has_hypervisor(machine)
    if is_interrupt:
        if not (mideleg_value(state, machine) >> cause) & 1:
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
def charge_level(state, retired):
    """Credit the instructions retired since the last crediting to the privilege level the hart
    is in, before it leaves it.  ``retired`` is the hart's INSTRET as of now (the caller adds
    the current kernel call's count).  HS-mode's share is also credited to the VM whose exit
    it is handling (EXIT_VMID)."""
    delta = retired - state[LEVEL_MARK]
    state[LEVEL_MARK] = retired
    priv = state[PRIV]
    if priv == PRIV_M:
        level = LEVEL_M
    elif state[VIRT]:
        level = LEVEL_VS if priv == PRIV_S else LEVEL_VU
    elif priv == PRIV_S:
        level = LEVEL_HS
        state[HS_BY_VMID + min(state[EXIT_VMID], HS_VMID_SLOTS - 1)] += delta
    else:
        level = LEVEL_U
    state[RETIRED_BY_LEVEL + level] += delta


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
    if virt and target != TARGET_VS:
        state[EXIT_VMID] = (state[CSR_HGATP] & HGATP_VMID_MASK) >> HGATP_VMID_SHIFT
    mstatus = state[CSR_MSTATUS]
    if target == TARGET_VS:
        # VS-level interrupts are reported to VS-mode with the S-level codes (8.2.3)
        vcause = cause
        if is_interrupt and (
            cause == Interrupt.VIRTUAL_SUPERVISOR_SOFTWARE
            or cause == Interrupt.VIRTUAL_SUPERVISOR_TIMER
            or cause == Interrupt.VIRTUAL_SUPERVISOR_EXTERNAL
        ):
            vcause = cause - 1  # VSSI -> SSI, VSTI -> STI, VSEI -> SEI
        vsstatus = state[CSR_VSSTATUS]
        state[CSR_VSEPC] = pc
        state[CSR_VSCAUSE] = vcause | (INTERRUPT_FLAG if is_interrupt else np.int64(0))
        state[CSR_VSTVAL] = tval
        spie = MSTATUS_SPIE_MASK if vsstatus & MSTATUS_SIE_MASK else 0
        vsstatus = (vsstatus & ~(MSTATUS_SPIE_MASK | MSTATUS_SIE_MASK | MSTATUS_SPP_MASK)) | spie
        if priv == PRIV_S:
            vsstatus |= MSTATUS_SPP_MASK
        state[CSR_VSSTATUS] = vsstatus
        state[PRIV] = PRIV_S
        new_pc = _vector(state[CSR_VSTVEC], vcause, is_interrupt)
    elif target == TARGET_HS:
        state[CSR_SEPC] = pc
        state[CSR_SCAUSE] = mcause
        state[CSR_STVAL] = tval
        spie = MSTATUS_SPIE_MASK if mstatus & MSTATUS_SIE_MASK else 0
        mstatus = (mstatus & ~(MSTATUS_SPIE_MASK | MSTATUS_SIE_MASK | MSTATUS_SPP_MASK)) | spie
        if priv == PRIV_S:
            mstatus |= MSTATUS_SPP_MASK
        state[CSR_MSTATUS] = mstatus
        if has_hypervisor(machine):
            hstatus = state[CSR_HSTATUS] & ~(HSTATUS_SPV_MASK | HSTATUS_GVA_MASK)
            if virt:
                hstatus |= HSTATUS_SPV_MASK
                hstatus = (hstatus & ~HSTATUS_SPVP_MASK) | (
                    HSTATUS_SPVP_MASK if priv == PRIV_S else 0
                )
            if gva:
                hstatus |= HSTATUS_GVA_MASK
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
        mpie = MSTATUS_MPIE_MASK if mstatus & MSTATUS_MIE_MASK else 0
        mstatus = (mstatus & ~(MSTATUS_MPIE_MASK | MSTATUS_MIE_MASK | MSTATUS_MPP_MASK)) | mpie
        mstatus |= priv << MSTATUS_MPP_SHIFT
        if has_hypervisor(machine):
            mstatus &= ~(MSTATUS_MPV_MASK | MSTATUS_GVA_MASK)
            if virt:
                mstatus |= MSTATUS_MPV_MASK
            if gva:
                mstatus |= MSTATUS_GVA_MASK
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
    new_priv = (mstatus & MSTATUS_MPP_MASK) >> MSTATUS_MPP_SHIFT
    new_virt = 1 if (mstatus & MSTATUS_MPV_MASK) and new_priv != PRIV_M else 0
    mie = MSTATUS_MIE_MASK if mstatus & MSTATUS_MPIE_MASK else 0
    mstatus = (
        (mstatus & ~(MSTATUS_MIE_MASK | MSTATUS_MPP_MASK | MSTATUS_MPV_MASK))
        | mie
        | MSTATUS_MPIE_MASK
    )
    mstatus |= PRIV_U << MSTATUS_MPP_SHIFT
    if new_priv != PRIV_M:
        mstatus &= ~MSTATUS_MPRV_MASK
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
        new_priv = PRIV_S if vsstatus & MSTATUS_SPP_MASK else PRIV_U
        sie = MSTATUS_SIE_MASK if vsstatus & MSTATUS_SPIE_MASK else 0
        state[CSR_VSSTATUS] = (
            (vsstatus & ~(MSTATUS_SIE_MASK | MSTATUS_SPP_MASK)) | sie | MSTATUS_SPIE_MASK
        )
        state[PRIV] = new_priv
        update_contexts(state)
        return state[CSR_VSEPC]
    new_priv = PRIV_S if mstatus & MSTATUS_SPP_MASK else PRIV_U
    sie = MSTATUS_SIE_MASK if mstatus & MSTATUS_SPIE_MASK else 0
    mstatus = (mstatus & ~(MSTATUS_SIE_MASK | MSTATUS_SPP_MASK)) | sie | MSTATUS_SPIE_MASK
    mstatus &= ~MSTATUS_MPRV_MASK  # sret always lands below M (1.12: clears MPRV)
    state[CSR_MSTATUS] = mstatus
    if has_hypervisor(machine):
        hstatus = state[CSR_HSTATUS]
        state[VIRT] = 1 if hstatus & HSTATUS_SPV_MASK else 0
        state[CSR_HSTATUS] = hstatus & ~HSTATUS_SPV_MASK
    state[PRIV] = new_priv
    update_contexts(state)
    return state[CSR_SEPC]

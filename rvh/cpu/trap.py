"""Trap entry and return (privileged spec 3.1.6.1, 3.1.8, 3.3.2, 4.1.1).

``take_trap`` picks the handling mode through medeleg/mideleg (traps never go to a less
privileged mode), saves pc, cause and trap value in that mode's CSRs, stacks the interrupt
enable and previous privilege in mstatus, and returns the handler address from xtvec (vectored
mode sends interrupts to base + 4 * cause).  ``mret``/``sret`` undo it.
"""

import numba as nb
import numpy as np

from rvh.cpu.layout import (
    CSR_BASE,
    EXCEPTIONS,
    INSTRET,
    INTERRUPTS,
    LAST_CAUSE,
    PRIV,
    PRIV_M,
    PRIV_S,
    PRIV_U,
    VIRT,
)
from rvh.cpu.mmu import update_contexts
from rvh.isa.csrs import (
    MSTATUS_MIE,
    MSTATUS_MPIE,
    MSTATUS_MPP,
    MSTATUS_MPP_SHIFT,
    MSTATUS_MPRV,
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
CSR_STVEC = CSR_BASE + 0x105
CSR_SEPC = CSR_BASE + 0x141
CSR_SCAUSE = CSR_BASE + 0x142
CSR_STVAL = CSR_BASE + 0x143

INTERRUPT_FLAG = np.int64(-(2**63))


@nb.njit(cache=True)
def _vector(tvec, cause, is_interrupt):
    base = tvec & ~np.int64(3)
    if is_interrupt and (tvec & 3) == 1:
        return base + 4 * cause
    return base


@nb.njit(cache=True)
def trap_target(state, cause, is_interrupt):
    """The privilege that handles this trap: M unless delegated and coming from S or U."""
    if state[PRIV] == PRIV_M:
        return PRIV_M
    deleg = state[CSR_MIDELEG] if is_interrupt else state[CSR_MEDELEG]
    if (deleg >> cause) & 1:
        return PRIV_S
    return PRIV_M


@nb.njit(cache=True)
def take_trap(state, cause, is_interrupt, tval, pc):
    """Enter the trap handler; returns the new pc.  tval is ignored for interrupts."""
    priv = state[PRIV]
    target = trap_target(state, cause, is_interrupt)
    mcause = cause | (INTERRUPT_FLAG if is_interrupt else np.int64(0))
    if is_interrupt:
        tval = np.int64(0)
        state[INTERRUPTS] += 1
    else:
        state[EXCEPTIONS] += 1
        state[INSTRET] -= 1  # the faulting instruction does not retire
    state[LAST_CAUSE] = mcause
    mstatus = state[CSR_MSTATUS]
    if target == PRIV_S:
        state[CSR_SEPC] = pc
        state[CSR_SCAUSE] = mcause
        state[CSR_STVAL] = tval
        spie = MSTATUS_SPIE if mstatus & MSTATUS_SIE else 0
        mstatus = (mstatus & ~(MSTATUS_SPIE | MSTATUS_SIE | MSTATUS_SPP)) | spie
        if priv == PRIV_S:
            mstatus |= MSTATUS_SPP
        state[CSR_MSTATUS] = mstatus
        state[PRIV] = PRIV_S
        new_pc = _vector(state[CSR_STVEC], cause, is_interrupt)
    else:
        state[CSR_MEPC] = pc
        state[CSR_MCAUSE] = mcause
        state[CSR_MTVAL] = tval
        mpie = MSTATUS_MPIE if mstatus & MSTATUS_MIE else 0
        mstatus = (mstatus & ~(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP)) | mpie
        mstatus |= priv << MSTATUS_MPP_SHIFT
        state[CSR_MSTATUS] = mstatus
        state[PRIV] = PRIV_M
        new_pc = _vector(state[CSR_MTVEC], cause, is_interrupt)
    state[VIRT] = 0
    update_contexts(state)
    return new_pc


@nb.njit(cache=True)
def mret(state):
    """Return from an M-mode trap (3.3.2); the caller checked the privilege."""
    mstatus = state[CSR_MSTATUS]
    new_priv = (mstatus & MSTATUS_MPP) >> MSTATUS_MPP_SHIFT
    mie = MSTATUS_MIE if mstatus & MSTATUS_MPIE else 0
    mstatus = (mstatus & ~(MSTATUS_MIE | MSTATUS_MPP)) | mie | MSTATUS_MPIE
    mstatus |= PRIV_U << MSTATUS_MPP_SHIFT
    if new_priv != PRIV_M:
        mstatus &= ~MSTATUS_MPRV
    state[CSR_MSTATUS] = mstatus
    state[PRIV] = new_priv
    update_contexts(state)
    return state[CSR_MEPC]


@nb.njit(cache=True)
def sret(state):
    """Return from an S-mode trap (4.1.1); the caller checked privilege and mstatus.TSR."""
    mstatus = state[CSR_MSTATUS]
    new_priv = PRIV_S if mstatus & MSTATUS_SPP else PRIV_U
    sie = MSTATUS_SIE if mstatus & MSTATUS_SPIE else 0
    mstatus = (mstatus & ~(MSTATUS_SIE | MSTATUS_SPP)) | sie | MSTATUS_SPIE
    mstatus &= ~MSTATUS_MPRV  # sret always lands below M (1.12: clears MPRV)
    state[CSR_MSTATUS] = mstatus
    state[PRIV] = new_priv
    update_contexts(state)
    return state[CSR_SEPC]

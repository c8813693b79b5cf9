"""Interrupt pending state, selection and timer deadlines (privileged spec 3.1.9, 3.2.1, 8.2.3).

``pending_bits`` assembles mip from the software-writable bits stored in the CSR file (mip's
S-level bits, hvip's VS-level bits) and the lines driven from outside (CLINT msip/mtimecmp, the
interrupt controller's MEIP/SEIP, Sstc's stimecmp and vstimecmp).  ``select_interrupt`` applies
the global enables and the delegation registers (mideleg, then hideleg) and returns the
highest-priority interrupt the hart must take now.  ``next_deadline`` tells the kernel how many
instructions it may run before a timer can fire, so that it checks nothing in between.
"""

import numba as nb
import numpy as np

from rvh.cpu.arith import ltu
from rvh.cpu.extensions import has_hypervisor, mideleg_value
from rvh.cpu.layout import (
    CSR_HENVCFG,
    CSR_HIDELEG,
    CSR_HTIMEDELTA,
    CSR_HVIP,
    CSR_MENVCFG,
    CSR_MIE,
    CSR_MIP,
    CSR_MSTATUS,
    CSR_STIMECMP,
    CSR_VSSTATUS,
    CSR_VSTIMECMP,
    HARTID,
    M_EXT_IP,
    M_MSIP,
    M_MTIME_OFFSET,
    M_MTIMECMP,
    M_NS_PER_TICK,
    PRIV,
    PRIV_M,
    PRIV_S,
    VIRT,
)
from rvh.isa.causes import INTERRUPT_PRIORITY
from rvh.isa.fields import (
    HENVCFG_STCE_MASK,
    MENVCFG_STCE_MASK,
    MIP_MEIP_MASK,
    MIP_MSIP_MASK,
    MIP_MTIP_MASK,
    MIP_SEIP_MASK,
    MIP_SGEIP_MASK,
    MIP_STIP_MASK,
    MIP_VS_LEVEL_MASK,
    MIP_VSTIP_MASK,
    MSTATUS_MIE_MASK,
    MSTATUS_SIE_MASK,
)

NO_INTERRUPT = -1
NEVER = np.int64(2**62)

# Priority order of 3.1.9 and 8.2.3, as plain ints for the kernel's loop
PRIORITY = tuple(int(code) for code in INTERRUPT_PRIORITY)


@nb.njit(cache=True)
def mtime_at(machine, now_ns):
    return now_ns // machine[M_NS_PER_TICK] + machine[M_MTIME_OFFSET]


@nb.njit(cache=True)
def hardware_bits(state, machine, now_ns):
    """Interrupt-pending bits driven from outside the CSR file, at virtual time now_ns."""
    hart = state[HARTID]
    mtime = mtime_at(machine, now_ns)
    bits = machine[M_EXT_IP + hart] & (MIP_MEIP_MASK | MIP_SEIP_MASK)
    if not ltu(mtime, machine[M_MTIMECMP + hart]):
        bits |= MIP_MTIP_MASK
    if machine[M_MSIP + hart] & 1:
        bits |= MIP_MSIP_MASK
    if state[CSR_MENVCFG] & MENVCFG_STCE_MASK:
        if not ltu(mtime, state[CSR_STIMECMP]):
            bits |= MIP_STIP_MASK
        # vstimecmp compares against the guest's time, mtime + htimedelta (Sstc)
        if has_hypervisor(machine) and (state[CSR_HENVCFG] & HENVCFG_STCE_MASK):
            if not ltu(mtime + state[CSR_HTIMEDELTA], state[CSR_VSTIMECMP]):
                bits |= MIP_VSTIP_MASK
    return bits


@nb.njit(cache=True)
def pending_bits(state, machine, now_ns):
    """The value of mip: software-written bits OR device lines OR hvip."""
    software = state[CSR_MIP] & ~np.int64(MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK)
    if state[CSR_MENVCFG] & MENVCFG_STCE_MASK:
        software &= ~np.int64(MIP_STIP_MASK)  # with Sstc, STIP is stimecmp's alone
    bits = software | hardware_bits(state, machine, now_ns)
    if has_hypervisor(machine):
        bits |= state[CSR_HVIP] & MIP_VS_LEVEL_MASK
    return bits


@nb.njit(cache=True)
def _highest(bits):
    for code in PRIORITY:
        if bits & (np.int64(1) << code):
            return np.int64(code)
    return np.int64(NO_INTERRUPT)


@nb.njit(cache=True)
def select_interrupt(state, machine, now_ns):
    """The interrupt to take now, or NO_INTERRUPT (3.1.6.1, 8.2.3: global enables per level).

    Returns the interrupt's mip bit number; a VS-level interrupt taken by VS-mode is reported
    there with the S-level code (take_trap does the translation)."""
    pending = pending_bits(state, machine, now_ns) & state[CSR_MIE]
    if pending == 0:
        return np.int64(NO_INTERRUPT)
    priv = state[PRIV]
    virt = state[VIRT]
    mstatus = state[CSR_MSTATUS]
    mideleg = mideleg_value(state, machine)
    hideleg = np.int64(0)
    if has_hypervisor(machine):
        hideleg = state[CSR_HIDELEG] & MIP_VS_LEVEL_MASK
    to_m = pending & ~mideleg
    if to_m and (priv < PRIV_M or (mstatus & MSTATUS_MIE_MASK)):
        return _highest(to_m)
    to_hs = pending & mideleg & ~hideleg
    hs_enabled = virt or priv < PRIV_S or (priv == PRIV_S and (mstatus & MSTATUS_SIE_MASK))
    if to_hs and priv != PRIV_M and hs_enabled:
        return _highest(to_hs)
    to_vs = pending & mideleg & hideleg
    if to_vs and virt and (priv < PRIV_S or (state[CSR_VSSTATUS] & MSTATUS_SIE_MASK)):
        return _highest(to_vs)
    return np.int64(NO_INTERRUPT)


@nb.njit(cache=True)
def any_pending_enabled(state, machine, now_ns):
    """wfi wakes on pending & enabled interrupts, whatever the global enables (3.3.3)."""
    return (pending_bits(state, machine, now_ns) & state[CSR_MIE]) != 0


@nb.njit(cache=True)
def _ns_until(machine, now_ns, compare):
    """Virtual ns from now until mtime reaches compare (NEVER if it is unreachably far)."""
    ticks_left = compare - mtime_at(machine, now_ns)
    if ticks_left <= 0 or ticks_left > NEVER // machine[M_NS_PER_TICK]:
        return NEVER
    target_ns = (compare - machine[M_MTIME_OFFSET]) * machine[M_NS_PER_TICK]
    return max(np.int64(1), target_ns - now_ns)


@nb.njit(cache=True)
def next_deadline(state, machine, now_ns):
    """Instructions (= virtual ns) until the next timer comparator of this hart fires."""
    hart = state[HARTID]
    wait = _ns_until(machine, now_ns, machine[M_MTIMECMP + hart])
    if state[CSR_MENVCFG] & MENVCFG_STCE_MASK:
        wait = min(wait, _ns_until(machine, now_ns, state[CSR_STIMECMP]))
        if has_hypervisor(machine) and (state[CSR_HENVCFG] & HENVCFG_STCE_MASK):
            wait = min(
                wait, _ns_until(machine, now_ns, state[CSR_VSTIMECMP] - state[CSR_HTIMEDELTA])
            )
    return wait

"""Interrupt pending state, selection and timer deadlines (privileged spec 3.1.9, 3.2.1, 9.2.3).

``pending_bits`` assembles mip from the software-writable bits stored in the CSR file and the
lines driven by devices (CLINT msip/mtimecmp, the interrupt controller's MEIP/SEIP, Sstc's
stimecmp).  ``select_interrupt`` applies the global enables and the delegation registers and
returns the highest-priority interrupt the hart must take now.  ``next_deadline`` tells the
kernel how many instructions it may run before a timer can fire, so that it checks nothing in
between.
"""

import numba as nb
import numpy as np

from rvh.cpu.arith import ltu
from rvh.cpu.layout import (
    CSR_BASE,
    HARTID,
    M_EXT_IP,
    M_MSIP,
    M_MTIME_OFFSET,
    M_MTIMECMP,
    M_NS_PER_TICK,
    PRIV,
    PRIV_M,
    PRIV_S,
    TIME_NS,
    VIRT,
)
from rvh.isa.csrs import (
    ENVCFG_STCE,
    IP_MEIP,
    IP_MSIP,
    IP_MTIP,
    IP_SEIP,
    IP_STIP,
    MSTATUS_MIE,
    MSTATUS_SIE,
)

CSR_MSTATUS = CSR_BASE + 0x300
CSR_MIE = CSR_BASE + 0x304
CSR_MIP = CSR_BASE + 0x344
CSR_MIDELEG = CSR_BASE + 0x303
CSR_MENVCFG = CSR_BASE + 0x30A
CSR_STIMECMP = CSR_BASE + 0x14D

NO_INTERRUPT = -1
NEVER = np.int64(2**62)

# Priority order of 3.1.9: MEI, MSI, MTI, SEI, SSI, STI (then the VS ones, 9.2.3)
PRIORITY = (11, 3, 7, 9, 1, 5, 12, 10, 2, 6)


@nb.njit(cache=True)
def mtime_at(machine, now_ns):
    return now_ns // machine[M_NS_PER_TICK] + machine[M_MTIME_OFFSET]


@nb.njit(cache=True)
def hardware_bits(state, machine, now_ns):
    """Interrupt-pending bits driven from outside the CSR file, at virtual time now_ns."""
    hart = state[HARTID]
    mtime = mtime_at(machine, now_ns)
    bits = machine[M_EXT_IP + hart] & (IP_MEIP | IP_SEIP)
    if not ltu(mtime, machine[M_MTIMECMP + hart]):
        bits |= IP_MTIP
    if machine[M_MSIP + hart] & 1:
        bits |= IP_MSIP
    if state[CSR_MENVCFG] & ENVCFG_STCE:
        if not ltu(mtime, state[CSR_STIMECMP]):
            bits |= IP_STIP
    return bits


@nb.njit(cache=True)
def pending_bits(state, machine, now_ns):
    """The value of mip: software-written bits OR device lines."""
    software = state[CSR_MIP]
    if state[CSR_MENVCFG] & ENVCFG_STCE:
        software &= ~np.int64(IP_STIP)  # with Sstc, STIP is stimecmp's alone
    return software | hardware_bits(state, machine, now_ns)


@nb.njit(cache=True)
def _highest(bits):
    for code in PRIORITY:
        if bits & (np.int64(1) << code):
            return np.int64(code)
    return np.int64(NO_INTERRUPT)


@nb.njit(cache=True)
def select_interrupt(state, machine, now_ns):
    """The interrupt to take now, or NO_INTERRUPT (3.1.6.1: global enables per level)."""
    pending = pending_bits(state, machine, now_ns) & state[CSR_MIE]
    if pending == 0:
        return np.int64(NO_INTERRUPT)
    priv = state[PRIV]
    mstatus = state[CSR_MSTATUS]
    mideleg = state[CSR_MIDELEG]
    to_m = pending & ~mideleg
    if to_m and (priv < PRIV_M or (mstatus & MSTATUS_MIE)):
        return _highest(to_m)
    to_s = pending & mideleg
    if to_s and (priv < PRIV_S or (priv == PRIV_S and (mstatus & MSTATUS_SIE)) or state[VIRT]):
        return _highest(to_s)
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
    per_tick = machine[M_NS_PER_TICK]
    target_ns = (compare - machine[M_MTIME_OFFSET]) * per_tick
    return max(np.int64(1), target_ns - now_ns)


@nb.njit(cache=True)
def next_deadline(state, machine, now_ns):
    """Instructions (= virtual ns) until the next timer comparator of this hart fires."""
    hart = state[HARTID]
    wait = _ns_until(machine, now_ns, machine[M_MTIMECMP + hart])
    if state[CSR_MENVCFG] & ENVCFG_STCE:
        wait = min(wait, _ns_until(machine, now_ns, state[CSR_STIMECMP]))
    return wait


@nb.njit(cache=True)
def hart_time_ns(state, n):
    return state[TIME_NS] + n

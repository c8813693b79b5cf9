"""The Sdtrig trigger module (RISC-V Debug Specification 1.0, 5.7) as QEMU 7.2 has it.

Two triggers (``tselect`` 0 and 1), each of type 2 (mcontrol) or 6 (mcontrol6), matching an
address (match = 0: equal) on execute, load or store, with action 0: a breakpoint exception
(cause 3) taken before the instruction executes or before its access, with the address in
xtval (privileged spec 3.1.16: "when a hardware breakpoint is triggered ... mtval is written
with the faulting virtual address"; QEMU 7.2 writes 0, a recorded deviation).  What QEMU 7.2
does with the rest, observed on it (docs/sdtrig.md):

- tinfo reads 0x44 (types 2 and 6); tcontrol, mcontext and scontext do not exist;
- a tselect write of 2 or more is ignored; tdata1 resets to type 2 with nothing enabled;
- a tdata1 write of another type leaves tdata1 as it was (QEMU 7.2 aborts on type 1);
- dmode, match, chain, action, timing, select and hit read 0 whatever is written; an
  unsupported size (not any, 1, 2, 4 or 8 bytes) reads 0 (any size);
- tdata3 reads 0 and ignores writes;
- mcontrol never fires with V=1 (it has no VS/VU bits); mcontrol6 fires in VS/VU by its VS/VU
  bits and in M/S/U by its M/S/U bits; M-mode triggers fire whatever mstatus.MIE is (there is
  no tcontrol.mte);
- an execute trigger compares the instruction's address; a load/store trigger fires when the
  access touches [tdata2, tdata2 + size), size 8 bytes for "any size"; AMOs match load and
  store triggers, LR load triggers, SC store triggers; accesses of the page-table walk never.

The kernel pays nothing while no trigger is armed (``TRIGGERS_ARMED`` == 0), the way it pays
nothing for gdb's breakpoints (rvh/cpu/debug.py): a page an armed trigger covers gets slow TLB
tags for that access type, so the fast loop never runs code or accesses there; the general
path compares pc before executing (``execute_trigger_fires``) and the slow memory paths
compare the access before performing it (``data_trigger_fires``).
"""

import numba as nb
import numpy as np

from rvh.cpu.layout import (
    PAGE_SIZE,
    PRIV,
    TRAP_GVA,
    TRAP_TINST,
    TRAP_TVAL,
    TRAP_TVAL2,
    TRIGGER_ARMED_EXECUTE,
    TRIGGER_ARMED_LOAD,
    TRIGGER_ARMED_STORE,
    TRIGGER_TDATA1,
    TRIGGER_TDATA2,
    TRIGGERS,
    TRIGGERS_ARMED,
    VIRT,
)
from rvh.isa.causes import Exception_
from rvh.isa.fields import (
    MCONTROL6_SIZE_MASK,
    MCONTROL6_SIZE_SHIFT,
    MCONTROL6_VS_MASK,
    MCONTROL6_VU_MASK,
    MCONTROL6_VU_SHIFT,
    MCONTROL_EXECUTE_MASK,
    MCONTROL_LOAD_MASK,
    MCONTROL_M_MASK,
    MCONTROL_S_MASK,
    MCONTROL_SIZEHI_MASK,
    MCONTROL_SIZEHI_SHIFT,
    MCONTROL_SIZELO_MASK,
    MCONTROL_SIZELO_SHIFT,
    MCONTROL_STORE_MASK,
    MCONTROL_U_MASK,
    MCONTROL_U_SHIFT,
    TDATA1_TYPE_SHIFT,
    TRIGGER_TYPE_MCONTROL,
    TRIGGER_TYPE_MCONTROL6,
)

# tinfo: the types a trigger can take (5.7.5)
TINFO_VALUE = (1 << TRIGGER_TYPE_MCONTROL) | (1 << TRIGGER_TYPE_MCONTROL6)
# tdata1 after reset: type 2, matching nothing (QEMU 7.2)
TDATA1_RESET = TRIGGER_TYPE_MCONTROL << TDATA1_TYPE_SHIFT

ACCESS_BITS = MCONTROL_LOAD_MASK | MCONTROL_STORE_MASK | MCONTROL_EXECUTE_MASK
MODE_BITS = MCONTROL_M_MASK | MCONTROL_S_MASK | MCONTROL_U_MASK
MODE_BITS6 = MODE_BITS | MCONTROL6_VS_MASK | MCONTROL6_VU_MASK
assert TRIGGER_ARMED_LOAD == MCONTROL_LOAD_MASK and TRIGGER_ARMED_STORE == MCONTROL_STORE_MASK
assert TRIGGER_ARMED_EXECUTE == MCONTROL_EXECUTE_MASK


@nb.njit(cache=True)
def trigger_type(tdata1):
    return (tdata1 >> TDATA1_TYPE_SHIFT) & 0xF


@nb.njit(cache=True)
def _size_code(tdata1):
    """The size field: sizehi:sizelo for mcontrol (5.7.11), size for mcontrol6 (5.7.17)."""
    if trigger_type(tdata1) == TRIGGER_TYPE_MCONTROL:
        return ((tdata1 & MCONTROL_SIZEHI_MASK) >> (MCONTROL_SIZEHI_SHIFT - 2)) | (
            (tdata1 & MCONTROL_SIZELO_MASK) >> MCONTROL_SIZELO_SHIFT
        )
    return (tdata1 & MCONTROL6_SIZE_MASK) >> MCONTROL6_SIZE_SHIFT


@nb.njit(cache=True)
def _size_bytes(code):
    """Bytes of a size code (0 any, 1 8-bit, 2 16-bit, 3 32-bit, 5 64-bit), -1 if rvh (as QEMU
    7.2) does not offer it (4: 48-bit, 6 and up: 80-bit and wider)."""
    if code == 1:
        return np.int64(1)
    if code == 2:
        return np.int64(2)
    if code == 3:
        return np.int64(4)
    if code == 0 or code == 5:
        return np.int64(8)
    return np.int64(-1)


@nb.njit(cache=True)
def legal_tdata1(value, old):
    """tdata1 after a write of ``value`` (WARL, as QEMU 7.2): the type-specific fields rvh has
    (access and mode bits, a supported size) kept, the rest 0; another type: no change."""
    kind = trigger_type(value)
    if kind == TRIGGER_TYPE_MCONTROL:
        new = (value & (ACCESS_BITS | MODE_BITS)) | (np.int64(kind) << TDATA1_TYPE_SHIFT)
        if _size_bytes(_size_code(value)) > 0:
            new |= value & (MCONTROL_SIZELO_MASK | MCONTROL_SIZEHI_MASK)
        return new
    if kind == TRIGGER_TYPE_MCONTROL6:
        new = (value & (ACCESS_BITS | MODE_BITS6)) | (np.int64(kind) << TDATA1_TYPE_SHIFT)
        if _size_bytes(_size_code(value)) > 0:
            new |= value & MCONTROL6_SIZE_MASK
        return new
    return old


@nb.njit(cache=True)
def _armed_accesses(tdata1):
    """The accesses (TRIGGER_ARMED_* bits) a trigger matches in some mode."""
    kind = trigger_type(tdata1)
    if kind == TRIGGER_TYPE_MCONTROL:
        modes = tdata1 & MODE_BITS
    elif kind == TRIGGER_TYPE_MCONTROL6:
        modes = tdata1 & MODE_BITS6
    else:
        return np.int64(0)
    return tdata1 & ACCESS_BITS if modes != 0 else np.int64(0)


@nb.njit(cache=True)
def update_armed(state):
    """Recompute TRIGGERS_ARMED after a tdata write; returns it."""
    armed = np.int64(0)
    for i in range(TRIGGERS):
        armed |= _armed_accesses(state[TRIGGER_TDATA1 + i])
    state[TRIGGERS_ARMED] = armed
    return armed


@nb.njit(cache=True)
def fires_in_mode(tdata1, priv, virt):
    """Does the trigger fire in privilege ``priv`` with V = ``virt``?  The mode bits sit at
    U + priv (U 3, S 4, M 6) and, in mcontrol6, VU + priv (VU 23, VS 24)."""
    kind = trigger_type(tdata1)
    if kind == TRIGGER_TYPE_MCONTROL:
        return not virt and ((tdata1 >> (MCONTROL_U_SHIFT + priv)) & 1) != 0
    if kind == TRIGGER_TYPE_MCONTROL6:
        shift = MCONTROL6_VU_SHIFT if virt else MCONTROL_U_SHIFT
        return ((tdata1 >> (shift + priv)) & 1) != 0
    return False


@nb.njit(cache=True)
def execute_trigger_fires(state, pc):
    """Does an execute trigger match the instruction at pc in the current mode?"""
    for i in range(TRIGGERS):
        tdata1 = state[TRIGGER_TDATA1 + i]
        if (
            (tdata1 & MCONTROL_EXECUTE_MASK) != 0
            and state[TRIGGER_TDATA2 + i] == pc
            and fires_in_mode(tdata1, state[PRIV], state[VIRT])
        ):
            return True
    return False


@nb.njit(cache=True)
def data_trigger_fires(state, vaddr, size, accesses):
    """Does a trigger of ``accesses`` (TRIGGER_ARMED_LOAD/STORE bits) match the access of
    ``size`` bytes at ``vaddr`` in the current mode?  It matches when the access touches the
    trigger's bytes [tdata2, tdata2 + size)."""
    for i in range(TRIGGERS):
        tdata1 = state[TRIGGER_TDATA1 + i]
        if (tdata1 & accesses) != 0 and fires_in_mode(tdata1, state[PRIV], state[VIRT]):
            start = state[TRIGGER_TDATA2 + i]
            length = _size_bytes(_size_code(tdata1))
            # overlap, unsigned: the addresses may wrap (upper-half addresses are negative)
            if np.uint64(vaddr - start) < np.uint64(length) or np.uint64(start - vaddr) < np.uint64(
                size
            ):
                return True
    return False


@nb.njit(cache=True)
def trigger_on_page(state, page, accesses):
    """Does a trigger of ``accesses`` cover part of the virtual page ``page`` (in any mode)?
    Such a page must get slow TLB tags for those accesses."""
    for i in range(TRIGGERS):
        tdata1 = state[TRIGGER_TDATA1 + i]
        if (_armed_accesses(tdata1) & accesses) != 0:
            start = state[TRIGGER_TDATA2 + i]
            length = np.int64(1)
            if accesses != TRIGGER_ARMED_EXECUTE:
                length = _size_bytes(_size_code(tdata1))
            if np.uint64(start - page) < np.uint64(PAGE_SIZE) or np.uint64(
                page - start
            ) < np.uint64(length):
                return True
    return False


@nb.njit(cache=True)
def trigger_breakpoint(state, address, guest_virtual):
    """A trigger fired (action 0): the breakpoint exception's cause, with ``address`` for
    xtval; GVA says whether it is a guest virtual address (8.2.1, hstatus.GVA: set "for any
    trap (breakpoint, ...) that writes a guest virtual address to stval")."""
    state[TRAP_TVAL] = address
    state[TRAP_TVAL2] = 0
    state[TRAP_TINST] = 0
    state[TRAP_GVA] = 1 if guest_virtual else 0
    return np.int64(Exception_.BREAKPOINT)

"""What the machine implements (misa, privileged spec 3.1.1) and the register rule that depends
on it.

Kernel code asks ``has_hypervisor`` (``has_float``, ``has_double``) instead of testing misa's
H (F, D) bit inline, and reads mideleg
only through ``mideleg_value``: with the H extension mideleg's VS-level bits and SGEIP are
read-only one (8.4.2, VS-level and guest external interrupts are never handled in M-mode), so
trap routing, interrupt selection and the CSR instructions all see one value.
"""

import numba as nb

from rvh.cpu.layout import (
    CSR_MIDELEG,
    M_MISA,
)
from rvh.isa.fields import MIP_SGEIP_MASK, MIP_VS_LEVEL_MASK

MISA_D = 1 << 3  # misa bit of extension D (the 4th letter)
MISA_F = 1 << 5  # misa bit of extension F (the 6th letter)
MISA_H = 1 << 7  # misa bit of extension H ("H" is the 8th letter)


@nb.njit(cache=True)
def has_hypervisor(machine):
    return (machine[M_MISA] & MISA_H) != 0


@nb.njit(cache=True)
def has_float(machine):
    return (machine[M_MISA] & MISA_F) != 0


@nb.njit(cache=True)
def has_double(machine):
    return (machine[M_MISA] & MISA_D) != 0


@nb.njit(cache=True)
def mideleg_value(state, machine):
    """mideleg as software and the hardware see it (8.4.2)."""
    value = state[CSR_MIDELEG]
    if has_hypervisor(machine):
        value |= MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK
    return value

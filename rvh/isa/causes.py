"""Trap causes (privileged spec 3.1.15, table "mcause values after trap"; H extension 8.6.1).

Exceptions and interrupts as enums; an interrupt's code is also its bit number in mip/mie
(3.1.9), from which :mod:`rvh.isa.fields` derives those bits.
"""

from enum import IntEnum


class Exception_(IntEnum):
    """Synchronous exception codes (mcause with the interrupt bit clear)."""

    INSTRUCTION_ADDRESS_MISALIGNED = 0
    INSTRUCTION_ACCESS_FAULT = 1
    ILLEGAL_INSTRUCTION = 2
    BREAKPOINT = 3
    LOAD_ADDRESS_MISALIGNED = 4
    LOAD_ACCESS_FAULT = 5
    STORE_ADDRESS_MISALIGNED = 6
    STORE_ACCESS_FAULT = 7
    ECALL_FROM_U = 8
    ECALL_FROM_S = 9
    ECALL_FROM_VS = 10
    ECALL_FROM_M = 11
    INSTRUCTION_PAGE_FAULT = 12
    LOAD_PAGE_FAULT = 13
    STORE_PAGE_FAULT = 15
    INSTRUCTION_GUEST_PAGE_FAULT = 20
    LOAD_GUEST_PAGE_FAULT = 21
    VIRTUAL_INSTRUCTION = 22
    STORE_GUEST_PAGE_FAULT = 23


class Interrupt(IntEnum):
    """Interrupt codes (mcause with the interrupt bit set); also bit numbers in mip/mie."""

    SUPERVISOR_SOFTWARE = 1
    VIRTUAL_SUPERVISOR_SOFTWARE = 2
    MACHINE_SOFTWARE = 3
    SUPERVISOR_TIMER = 5
    VIRTUAL_SUPERVISOR_TIMER = 6
    MACHINE_TIMER = 7
    SUPERVISOR_EXTERNAL = 9
    VIRTUAL_SUPERVISOR_EXTERNAL = 10
    MACHINE_EXTERNAL = 11
    SUPERVISOR_GUEST_EXTERNAL = 12


# The Interrupt bit of mcause/scause/vscause (3.1.15): bit XLEN-1
INTERRUPT_BIT = 1 << 63

# When several enabled interrupts are pending for the same privilege level, the one taken first
# (3.1.9: "MEI, MSI, MTI, SEI, SSI, STI"; 8.2.3 adds SGEI, VSEI, VSSI, VSTI after them).
INTERRUPT_PRIORITY = (
    Interrupt.MACHINE_EXTERNAL,
    Interrupt.MACHINE_SOFTWARE,
    Interrupt.MACHINE_TIMER,
    Interrupt.SUPERVISOR_EXTERNAL,
    Interrupt.SUPERVISOR_SOFTWARE,
    Interrupt.SUPERVISOR_TIMER,
    Interrupt.SUPERVISOR_GUEST_EXTERNAL,
    Interrupt.VIRTUAL_SUPERVISOR_EXTERNAL,
    Interrupt.VIRTUAL_SUPERVISOR_SOFTWARE,
    Interrupt.VIRTUAL_SUPERVISOR_TIMER,
)


def cause_name(mcause: int) -> str:
    """Human name of an mcause value, for traces and error messages."""
    mcause &= (1 << 64) - 1
    if mcause & INTERRUPT_BIT:
        code = mcause & ~INTERRUPT_BIT
        try:
            return "interrupt " + Interrupt(code).name.lower().replace("_", " ")
        except ValueError:
            return f"interrupt {code}"
    try:
        return Exception_(mcause).name.lower().replace("_", " ")
    except ValueError:
        return f"exception {mcause}"

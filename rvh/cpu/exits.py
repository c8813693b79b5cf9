"""Why the kernel returned to Python.  One small integer; details are in the hart state."""

from enum import IntEnum


class Exit(IntEnum):
    BUDGET = 0  # the instruction budget of this slice is spent
    MMIO = 1  # a load or store to a device: MMIO_* slots of the state describe it
    WFI = 2  # wfi with no interrupt pending: the hart sleeps until one is
    HTIF = 3  # the guest wrote the HTIF tohost word
    FIRMWARE = 4  # a trap to M-mode that the emulator's own SBI firmware handles (--sbi)
    TRACE_FULL = 6  # the trace buffer needs draining
    BREAKPOINT = 7  # pc is at a debugger breakpoint (rvh/gdb); the instruction has not run
    WATCHPOINT = 8  # the instruction at pc would touch a debugger watchpoint; it has not run

"""Differential testing: rvh against QEMU 7.2, instruction by instruction.

The reference is QEMU's ``-singlestep -d cpu,fpu,nochain`` dump, which prints the architectural
state (pc, x0-x31, f0-f31, the CSRs listed in ``target/riscv/cpu.c``'s dump, and V with the H
extension)
*before* every instruction.  ``-icount shift=0`` makes QEMU's clock advance one nanosecond per
instruction, which is exactly rvh's virtual time (10 MHz mtime, one tick per 100 instructions),
so timer interrupts land on the same instruction in both.

rvh is run in lockstep beside the reference: the :class:`Stepper` calls the very kernel entry a
normal run uses (``Hart.run``) with a budget of one instruction, so the fast path and the general
path execute as they always do, and after every instruction reads the same fields QEMU printed.
State ``i`` of rvh (after ``i`` instructions) is compared with QEMU's dump ``i`` (before
instruction ``i``).  What needs care at those boundaries (docs/testing.md has the details):

* QEMU's dump before an instruction is printed after a pending interrupt was taken; rvh takes it
  at the start of its next step.  Where rvh is about to take an interrupt, only the GPRs are
  compared at that boundary; the interrupt's effects (pc, mepc, mcause, mstatus...) are compared
  one instruction later, after the handler's first instruction, where both agree again.  A
  fetch fault, which QEMU raises before its dump, is folded into the step that jumped.
* With ``-icount``, QEMU re-runs an instruction that touches a device in the middle of a block,
  or that starts as its instruction budget runs out, and dumps the same state twice;
  :func:`remove_io_replays` drops the first of two identical dumps (not a jump to itself).
* QEMU's clock does not count an instruction that traps at run time, and its machine timer
  raises MTIP up to one tick late; the :class:`Stepper` and :class:`QemuTimer` follow both.
* With V=1 QEMU's dump shows the guest's supervisor CSRs in the supervisor names (it swaps the
  HS and VS copies); the snapshot reads rvh through the same view.

QEMU runs beside the comparison: its log goes through a FIFO to a thread that parses the dumps
as they come (:class:`QemuStream`), and plain instructions that agree are stepped and compared
by a compiled loop (:func:`~rvh.diff.stepper.fast_lockstep`), so guests of millions of
instructions are compared whole.

Where QEMU 7.2 departs from the specification (or makes an implementation-defined choice rvh
does not share), a :class:`Deviation` recognizes exactly that case - the instruction, the rvh
outcome and the QEMU outcome - and rvh *adopts* QEMU's outcome for exactly the fields involved,
so the rest of the run is still compared: QEMU's values, or where the control flow differs
QEMU's trap instead of rvh's execution (or the reverse), the instruction taken back first
(:meth:`Stepper.rewind`).  The H extension's departures carry their D-numbers
(guests/hext/README.md, docs/h-extension.md).  Every deviation is listed with its spec clause
in ``docs/testing.md``, and the result reports each one applied.

The package, each part importing only those above it:

* :mod:`~rvh.diff.common` - the types the parts share (StepInfo, StepContext, Deviation, claims)
* :mod:`~rvh.diff.qemu` - the reference: QEMU run single-stepped, its log streamed through
  :class:`rvh.trace.QemuLogParser` (the one parser of QEMU's dumps), -icount's replays dropped
* :mod:`~rvh.diff.stepper` - rvh one instruction at a time, the compiled loop, QEMU's clocks
* :mod:`~rvh.diff.deviations`, :mod:`~rvh.diff.h_deviations` - the catalogue, base and H
* :mod:`~rvh.diff.comparison` - the comparison and its result
* :mod:`~rvh.diff.report`, :mod:`~rvh.diff.command` - the report and ``rvh diff`` itself
"""

from rvh.diff.command import diff_command
from rvh.diff.common import (
    Bits,
    Claim,
    Derived,
    Deviation,
    Ignore,
    ReferenceError,
    StepContext,
    StepInfo,
)
from rvh.diff.comparison import (
    DEVIATIONS,
    AppliedDeviation,
    DiffResult,
    Divergence,
    Step,
    diff_elf,
    lockstep,
    make_machine,
)
from rvh.diff.deviations import BASE_DEVIATIONS
from rvh.diff.h_deviations import H_DEVIATIONS
from rvh.diff.qemu import (
    QemuRun,
    QemuStream,
    ReferenceRows,
    elf_fetcher,
    qemu_available,
    qemu_command,
    qemu_cpu,
    remove_io_replays,
    run_qemu,
)
from rvh.diff.report import format_report
from rvh.diff.stepper import QemuTimer, QemuVsTimer, Stepper
from rvh.trace import QemuLogParser, StateTrace, read_qemu_log

__all__ = [
    "BASE_DEVIATIONS",
    "DEVIATIONS",
    "H_DEVIATIONS",
    "AppliedDeviation",
    "Bits",
    "Claim",
    "Derived",
    "Deviation",
    "DiffResult",
    "Divergence",
    "Ignore",
    "QemuLogParser",
    "QemuRun",
    "QemuStream",
    "QemuTimer",
    "QemuVsTimer",
    "ReferenceError",
    "ReferenceRows",
    "StateTrace",
    "Step",
    "StepContext",
    "StepInfo",
    "Stepper",
    "diff_command",
    "diff_elf",
    "elf_fetcher",
    "format_report",
    "lockstep",
    "make_machine",
    "qemu_available",
    "qemu_command",
    "qemu_cpu",
    "read_qemu_log",
    "remove_io_replays",
    "run_qemu",
]

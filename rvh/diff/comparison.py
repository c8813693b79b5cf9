"""The comparison: rvh (a :class:`~rvh.diff.stepper.Stepper`) against a reference (a saved
trace, or QEMU's states as they come) from reset to the reference's end, the deviations
applied, the first divergence reported with the instructions before it."""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rvh.config import MachineConfig
from rvh.cpu import layout as L
from rvh.diff.common import (
    BARE_RUN_HINT,
    MASK64,
    OUTCOMES,
    PROGRESS_EVERY,
    REFERENCE_MEMORY,
    TRAP_CAP,
    Bits,
    Claim,
    Derived,
    Deviation,
    Ignore,
    StepContext,
    StepInfo,
    TrapLoopError,
    merge_claims,
)
from rvh.diff.deviations import BASE_DEVIATIONS
from rvh.diff.h_deviations import H_DEVIATIONS
from rvh.diff.qemu import QemuStream, ReferenceRows
from rvh.diff.stepper import FAST_DONE, FAST_SLOW, Stepper
from rvh.isa.causes import cause_name
from rvh.isa.disasm import decode, disassemble
from rvh.trace import StateTrace

# every known deviation, base and H (the H rules apply only to a dump with H)
DEVIATIONS: list[Deviation] = [*BASE_DEVIATIONS, *H_DEVIATIONS]


@dataclass
class Step:
    """One instruction of the context shown with a divergence."""

    index: int  # instruction number (0 = the first at 0x1000)
    pc: int
    bits: int | None
    changes: dict[str, tuple[int, int]]  # field -> (before, after), rvh's view
    note: str = ""

    def text(self) -> str:
        code = disassemble(self.bits, self.pc) if self.bits is not None else "?"
        changes = " ".join(
            f"{pretty_field(n)}={after:#x}" for n, (_, after) in self.changes.items()
        )
        note = f"  [{self.note}]" if self.note else ""
        return f"{self.index:8d}  {self.pc:#018x}  {code:<32} {changes}{note}"


@dataclass
class Divergence:
    index: int  # instruction number whose result differs (-1: the initial state)
    pc: int
    bits: int | None
    fields: Mapping[str, tuple[int | None, int | None]]  # name -> (rvh, qemu)
    reason: str
    context: list[Step]

    @property
    def disassembly(self) -> str:
        return disassemble(self.bits, self.pc) if self.bits is not None else "?"


@dataclass
class AppliedDeviation:
    name: str
    index: int
    pc: int
    fields: dict[str, tuple[int, int]]
    ref: str = ""  # its D-number (docs/h-extension.md), if it has one

    @property
    def label(self) -> str:
        return f"{self.name} ({self.ref})" if self.ref else self.name


@dataclass
class DiffResult:
    instructions: int  # instruction boundaries that were compared and agreed
    fields: list[str]  # compared fields
    not_compared: list[str]
    divergence: Divergence | None = None
    deviations: list[AppliedDeviation] = field(default_factory=list)
    rvh_exit: int | None = None
    reference_exit: int | None = None
    reference_truncated: bool = False  # QEMU was stopped (instruction limit, timeout)
    replays: int = 0  # QEMU's replayed dumps dropped (-icount)
    traps_at_end: int = 0  # traps in a row, no instruction retired, where --max-insns ended it

    @property
    def ok(self) -> bool:
        return self.divergence is None


_ABI = (
    "zero ra sp gp tp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5 a6 a7 "
    "s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6"
).split()


def pretty_field(name: str) -> str:
    if name.startswith("x") and name[1:].isdigit():
        return _ABI[int(name[1:])]
    return name


class InstructionLimitReached(Exception):
    """The comparison reached ``--max-insns`` (instructions and traps counted) while QEMU
    printed nothing more: the reference is cut there."""

    def __init__(self, traps: int) -> None:
        super().__init__(traps)
        self.traps = traps


class Watch:
    """What a long comparison owes its user: progress every few seconds, and an end to a
    trap loop, which retires nothing and which QEMU's ``-d cpu`` does not show while it runs
    through fetch faults (no block executes), so that QEMU spins silently.

    ``stepped`` counts the traps in a row of the steps compared; ``waiting`` (called while
    the comparison waits for QEMU's next state) asks the stepper how many traps in a row rvh
    takes from the state both agreed on (:meth:`Stepper.traps_ahead`): QEMU, in the same
    state, takes the same ones."""

    def __init__(
        self,
        stepper: Stepper,
        source: ReferenceRows,
        *,
        trap_cap: int = TRAP_CAP,
        max_instructions: int | None = None,
        progress: Callable[[int, int], None] | None = None,
        every: float | None = None,
    ) -> None:
        self.stepper = stepper
        self.source = source
        self.trap_cap = trap_cap
        self.max_instructions = max_instructions
        self.progress = progress
        self.every = PROGRESS_EVERY if every is None else every
        self.compared = 0  # instruction boundaries that agreed so far
        self.traps_in_a_row = 0
        self._last_report = time.monotonic()

    def tick(self, compared: int) -> None:
        self.compared = compared
        if self.progress is not None and time.monotonic() - self._last_report >= self.every:
            self._last_report = time.monotonic()
            self.progress(compared, self.source.count())

    def stepped(self, info: StepInfo, pc: int) -> None:
        """After a step that went through Python: count its traps (a retired instruction
        ends a run of them)."""
        if info.exception is None:
            self.traps_in_a_row = 0
        self.traps_in_a_row += (info.exception is not None) + (info.fetch_fault is not None)
        if self.traps_in_a_row >= self.trap_cap:
            cause = info.fetch_fault if info.fetch_fault is not None else info.exception
            raise TrapLoopError(self._loop_message(self.traps_in_a_row, cause or 0, pc))

    def plain(self) -> None:
        """Instructions retired (the compiled loop ran some)."""
        self.traps_in_a_row = 0

    def waiting(self, index: int) -> None:
        """While the comparison waits for QEMU's state ``index``: the states before it
        agreed, rvh is in the state both reached."""
        self.tick(index)
        room = self.trap_cap - self.traps_in_a_row  # traps until the cap
        limit = room
        if self.max_instructions is not None and self.max_instructions - self.compared < room:
            limit = max(self.max_instructions - self.compared, 0)
        traps, cause, pc = self.stepper.traps_ahead(limit)
        if traps < limit:
            return  # rvh retires an instruction within reach: QEMU is only slow
        if limit < room:
            raise InstructionLimitReached(self.traps_in_a_row + traps)
        raise TrapLoopError(self._loop_message(self.traps_in_a_row + traps, cause, pc))

    def _loop_message(self, traps: int, cause: int, pc: int) -> str:
        return (
            f"{traps:,} traps in a row and no instruction retired ({cause_name(cause)} at "
            f"{pc:#x}), on rvh and on QEMU alike, after {self.compared:,} instruction "
            f"boundaries agreed: {BARE_RUN_HINT}"
        )


def lockstep(
    stepper: Stepper,
    reference: StateTrace | ReferenceRows,
    *,
    context: int = 8,
    deviations: Sequence[Deviation] = DEVIATIONS,
    fast: bool = True,
    trap_cap: int = TRAP_CAP,
    max_instructions: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DiffResult:
    """Compare rvh (driven by ``stepper``) with ``reference`` (a trace, or QEMU's states as
    they come) from reset to the reference's end; stops at the first divergence.  ``fast``:
    plain instructions that agree run in the compiled loop (:func:`fast_lockstep`);
    everything else, and every difference, goes through the Python step and the deviation
    rules.  ``progress(compared, reference rows so far)`` is called every few seconds; a run
    of ``trap_cap`` traps with no retired instruction raises :class:`TrapLoopError`; while
    QEMU prints nothing, traps count towards ``max_instructions`` (the result is then
    truncated)."""
    source = reference if isinstance(reference, ReferenceRows) else ReferenceRows(reference)
    watch = Watch(
        stepper, source, trap_cap=trap_cap, max_instructions=max_instructions, progress=progress
    )
    source.on_wait = watch.waiting
    result: DiffResult | None = None
    try:
        source.available(0)
        compared = stepper.compared
        result = DiffResult(
            0, [f for f, c in zip(source.fields, compared, strict=True) if c], list(stepper.unknown)
        )
        return _compare(
            stepper, source, result, watch, context=context, deviations=deviations, fast=fast
        )
    except InstructionLimitReached as stop:
        assert result is not None
        result.reference_truncated = True
        result.traps_at_end = stop.traps
        return result
    finally:
        source.on_wait = None


def _compare(
    stepper: Stepper,
    source: ReferenceRows,
    result: DiffResult,
    watch: Watch,
    *,
    context: int,
    deviations: Sequence[Deviation],
    fast: bool,
) -> DiffResult:
    fields = source.fields
    pc_column = fields.index("pc")
    compared = stepper.compared
    history: deque[Step] = deque(maxlen=max(context, 1))
    columns = {name: c for c, name in enumerate(fields)}

    def compared_at(at: int) -> np.ndarray:
        """Fields a dump left out (satp under mstatus.TVM) are not compared in that state."""
        names = source.missing.get(at)
        if not names:
            return compared
        here = compared.copy()
        here[[columns[n] for n in names if n in columns]] = False
        return here

    def next_missing(start: int, end: int) -> int:
        return min((r for r in source.missing if start <= r < end), default=end)

    row = stepper.snapshot()
    before = row
    info = StepInfo(int(row[pc_column]))
    ALL = np.uint64(MASK64)
    masks = np.full(len(fields), ALL, dtype=np.uint64)  # bits compared, per field
    masked = False

    def differs(ours: np.ndarray, theirs: np.ndarray, at: int) -> np.ndarray:
        return (((ours ^ theirs) & masks) != 0) & compared_at(at)

    step = Step(-1, info.pc, None, {})

    def fail(index: int, pc: int, bits: int | None, reason: str, at: int) -> DiffResult:
        differing = {}
        if source.available(at):
            theirs = source.row(at)
            for c in np.flatnonzero(differs(row, theirs, at)).tolist():
                differing[fields[c]] = (int(row[c]), int(theirs[c]))
        result.divergence = Divergence(index, pc, bits, differing, reason, list(history))
        result.rvh_exit = stepper.machine.exit_status
        result.reference_exit = source.exit_status
        return result

    def as_dict(values: np.ndarray) -> dict[str, int]:
        return dict(zip(fields, (int(v) for v in values), strict=True))

    def agreed(first: int, end: int) -> None:
        """Context for the boundaries first..end-1, which the compiled loop found equal to the
        reference: the reference's own changes."""
        for k in range(max(first, end - context), end):
            previous, current = source.row(k - 1), source.row(k)
            pc = int(previous[pc_column])
            changed = np.flatnonzero((previous != current) & compared).tolist()
            changes = {fields[c]: (int(previous[c]), int(current[c])) for c in changed}
            changes.pop("pc", None)
            history.append(Step(k - 1, pc, stepper.fetch(pc), changes))

    i = 0
    try_fast = fast
    while source.available(i):
        watch.tick(result.instructions)
        expected = source.row(i)
        if i > 0:
            status = None
            if try_fast and i not in source.missing:
                block, base = source.block(i)
                stop = next_missing(i, base + len(block))
                reached, status, ours_before, ours_after, fast_info = stepper.fast_steps(
                    block, i - base, stop - base, masks
                )
                reached += base
                if reached > i:
                    watch.plain()
                    agreed(i, reached)
                    result.instructions = reached
                    source.release(reached - context - 2)
                masked = bool((masks != ALL).any())
                if status in (FAST_DONE, FAST_SLOW):
                    if reached > i:
                        row = stepper.snapshot()
                    i = reached
                    try_fast = status == FAST_DONE
                    continue
                assert fast_info is not None  # the fast path stopped at an instruction
                i, before, row, info = reached, ours_before, ours_after, fast_info
                expected = source.row(i)
            else:
                before = row
                info = stepper.step()
                if info.ended:
                    reason = f"rvh stopped ({stepper.machine.exit_reason}) where QEMU went on"
                    return fail(i - 1, info.pc, stepper.fetch(info.pc), reason, i)
                row = stepper.snapshot()
            try_fast = fast
            watch.stepped(info, int(before[pc_column]))
            pc = int(before[pc_column])
            notes = []
            if info.interrupt is not None:
                pc = int(source.row(i - 1)[pc_column])  # the handler's first instruction
                notes.append(f"after {cause_name(info.interrupt | 1 << 63)}")
            if info.exception is not None:
                notes.append(f"trap: {cause_name(info.exception)}")
            if info.fetch_fault is not None:
                notes.append(f"then {cause_name(info.fetch_fault)} at {int(row[pc_column]):#x}")
            changed = np.flatnonzero((before != row) & compared).tolist()
            changes = {fields[c]: (int(before[c]), int(row[c])) for c in changed}
            changes.pop("pc", None)
            step = Step(i - 1, pc, stepper.fetch(pc), changes, ", ".join(notes))
            history.append(step)
        if masked:
            # a field that agrees again in full is compared in full again
            agree = (row == expected) & (masks != ALL)
            masks[agree] = ALL
            masked = bool((masks != ALL).any())
        mismatch = differs(row, expected, i)
        if i > 0 and mismatch[pc_column] and info.fetch_fault is None:
            # QEMU took a fetch fault at the pc this instruction went to, before its dump; rvh
            # knows it only by fetching (translation): it fetches now, in the same boundary
            cause = stepper.fold_fetch_fault(as_dict(expected))
            if cause is not None:
                info.fetch_fault = cause
                row = stepper.snapshot()
                step.note += ("; " if step.note else "") + f"then {cause_name(cause)}"
                mismatch = differs(row, expected, i)
        if not mismatch.any():
            result.instructions = i + 1
            i += 1
            continue
        differing = {fields[c] for c in np.flatnonzero(mismatch).tolist()}
        if i > 0 and not any(name[0] in "xf" and name[1:].isdigit() for name in differing):
            cause = stepper.pending_interrupt()
            if cause >= 0:
                # QEMU's dump comes after the interrupt; rvh takes it in its next step
                step.note += ("; " if step.note else "") + f"{cause_name(cause | 1 << 63)} next"
                result.instructions = i + 1
                i += 1
                continue
        ctx = StepContext(
            i,
            step.pc,
            decode(step.bits) if step.bits is not None else None,
            as_dict(before),
            as_dict(row),
            as_dict(expected),
            differing,
            info,
            int(stepper.state[L.TIME_NS]),
            stepper.csr,
            stepper.vstimer.vstip(stepper.state),
            stepper.two_stage,
        )
        # every differing field must be claimed by a deviation that recognizes this case
        claims: dict[str, Claim] = {}
        matched: list[tuple[Deviation, list[str]]] = []
        for deviation in deviations:
            claim = deviation.match(ctx)
            if claim is None:
                continue
            claimed = sorted(n for n in claim if n in fields)
            # a field that agrees may only be set to QEMU's value (after a rewind) or rechecked
            agreeing = {n for n in claimed if n not in differing}
            if any(
                not (isinstance(claim[n], Derived) or claim[n] == ctx.expected[n]) for n in agreeing
            ):
                continue
            claimed = sorted(set(claimed) & differing)
            if OUTCOMES & set(claim) and OUTCOMES & set(claims):
                continue  # one account of what QEMU did with the instruction
            merged = {n: merge_claims(claims[n], claim[n]) for n in claim if n in claims}
            if any(value is False for value in merged.values()):
                continue
            claims.update(claim)
            claims.update(merged)
            matched.append((deviation, claimed))
        accepted = {name for name, value in claims.items() if value is None}
        remaining = differing
        if matched and differing <= set(claims):
            for name, value in claims.items():
                if isinstance(value, Ignore):
                    masks[fields.index(name)] &= np.uint64(~value.bits & MASK64)
            stepper.adopt(
                {n: v for n, v in claims.items() if isinstance(v, int | tuple | Bits)}, expected
            )
            row = stepper.snapshot()
            remaining = {fields[c] for c in np.flatnonzero(differs(row, expected, i)).tolist()}
        if not (matched and remaining <= accepted):
            if i == 0:
                return fail(-1, int(row[pc_column]), None, "the reset states differ", 0)
            what = "the instruction's result differs"
            if info.exception is not None and "pc" in differing:
                what = f"rvh trapped ({cause_name(info.exception)}); QEMU did not, or differently"
            elif info.interrupt is not None:
                what = f"rvh took {cause_name(info.interrupt | 1 << 63)} before it"
            elif "pc" in differing:
                what = "the next pc differs"
            if matched and differing <= set(claims):
                tried = ", ".join(d.label for d, _ in matched)
                what += f" (still, after adopting QEMU's outcome as {tried})"
            return fail(i - 1, step.pc, step.bits, what, i)
        masked = bool((masks != ALL).any())
        for deviation, claimed in matched:
            result.deviations.append(
                AppliedDeviation(
                    deviation.name,
                    i - 1,
                    step.pc,
                    {n: (ctx.after[n], ctx.expected[n]) for n in claimed},
                    deviation.ref,
                )
            )
            step.note += ("; " if step.note else "") + f"deviation {deviation.label}"
        result.instructions = i + 1
        i += 1
    # QEMU exited after its last dumped instruction; rvh must do the same
    count = i
    result.reference_exit = source.exit_status
    final_pc = int(row[pc_column])
    stepper.step()
    result.rvh_exit = stepper.machine.exit_status
    if source.exit_status is not None:
        bits = stepper.fetch(final_pc)
        if stepper.machine.exit_status is None:
            reason = "QEMU exited after this instruction, rvh went on"
            return fail(count - 1, final_pc, bits, reason, count)
        if stepper.machine.exit_status != source.exit_status:
            reason = f"exit status: rvh {stepper.machine.exit_status}, QEMU {source.exit_status}"
            return fail(count - 1, final_pc, bits, reason, count)
    return result


def make_machine(elf: str | Path, *, hypervisor: bool, output: Callable[[bytes], None] | None):
    from rvh.machine import Machine

    extensions = "acdfimsu" + ("h" if hypervisor else "")  # what QEMU's -cpu (qemu_cpu) has
    config = MachineConfig(memory=REFERENCE_MEMORY, harts=1, extensions=extensions)
    machine = Machine(config, output=output or (lambda data: None))
    machine.load(str(elf))
    return machine


def diff_elf(
    elf: str | Path,
    reference: StateTrace | None = None,
    *,
    hypervisor: bool = False,
    context: int = 8,
    max_instructions: int = 2_000_000,
    timeout: float = 600.0,
    tables_hook: Callable[[np.ndarray], None] | None = None,
    trap_cap: int = TRAP_CAP,
    progress: Callable[[int, int], None] | None = None,
    on_reference: Callable[[StateTrace], None] | None = None,
) -> DiffResult:
    """Run ``elf`` on rvh in lockstep with its QEMU reference: a saved trace, or QEMU run now
    beside the comparison (its states streamed, :class:`QemuStream`).

    ``tables_hook`` may edit the machine's decode tables before the run (the seeded-divergence
    test breaks an instruction this way, in that machine only).  ``trap_cap`` and
    ``progress``: see :func:`lockstep`.  ``on_reference`` is given QEMU's whole trace once
    QEMU has ended (to save it)."""
    machine = make_machine(elf, hypervisor=hypervisor, output=None)
    if tables_hook is not None:
        tables_hook(machine.tables)
    compare = functools.partial(
        lockstep,
        context=context,
        trap_cap=trap_cap,
        max_instructions=max_instructions,
        progress=progress,
    )
    if reference is not None:
        return compare(Stepper(machine, reference.fields), reference)
    with QemuStream(
        elf,
        hypervisor=hypervisor,
        max_instructions=max_instructions,
        timeout=timeout,
        keep_rows=on_reference is not None,
    ) as stream:
        stream.available(0)
        result = compare(Stepper(machine, stream.fields), stream)
        if result.reference_truncated:
            stream.stop()  # the comparison ended it (--max-insns through a trap loop)
        if on_reference is not None:
            on_reference(stream.trace())
        result.reference_truncated = result.reference_truncated or stream.truncated
        result.replays = stream.replays
    return result

"""rvh, one instruction at a time, beside QEMU: the :class:`Stepper` and its compiled loop.

The stepper calls the very kernel entry a normal run uses (``Hart.run``) with a budget of one
instruction, so the fast path and the general path execute as they always do, and after every
instruction reads the fields QEMU prints (:func:`_snapshot`, CSRs through the kernel's own
``csr_read``).  Plain instructions that agree are stepped and compared by a compiled loop
(:func:`fast_lockstep`); the rest go through :meth:`Stepper.step`.  The models of QEMU's
clocks (:class:`QemuTimer`, :class:`QemuVsTimer`) and of its M-mode with V=1 (D33) live here,
as does what a deviation uses to adopt QEMU's outcome (:meth:`Stepper.adopt`)."""

from __future__ import annotations

from collections.abc import Sequence

import numba as nb
import numpy as np

from rvh.cpu import layout as L
from rvh.cpu.core import run
from rvh.cpu.csr import csr_read
from rvh.cpu.exits import Exit
from rvh.cpu.interrupts import NEVER, any_pending_enabled, next_deadline, select_interrupt
from rvh.cpu.mmu import host_offset, update_contexts
from rvh.cpu.trap import take_trap
from rvh.cpu.triggers import execute_trigger_fires
from rvh.diff.common import (
    CSR,
    FETCH_FAULTS,
    MASK64,
    QEMU_EXECUTED,
    QEMU_EXECUTED_WITH,
    QEMU_M_VIRTUAL,
    QEMU_PTE_BITS,
    QEMU_TRAPPED,
    STALE_WHILE_VIRTUAL,
    VIRTUAL_VIEW,
    Bits,
    StepInfo,
    is_hlv_hsv,
    signed64,
)
from rvh.errors import EXIT_DEADLOCK
from rvh.isa import fields as F
from rvh.isa.csrs import BY_NAME as CSR_BY_NAME
from rvh.isa.csrs import BY_NUMBER as CSR_BY_NUMBER
from rvh.isa.disasm import decode

MRET = 0x30200073  # the instruction's bits (D33 follows QEMU's mret)
# HS supervisor CSR -> the VS CSR QEMU swaps it with when V changes (VIRTUAL_VIEW by number)
QEMU_SWAPPED_CSRS = {CSR_BY_NAME[name].number: vs for name, vs in VIRTUAL_VIEW.items()}
# the supervisor fields of mstatus that QEMU swaps with vsstatus's (an int: numba freezes it)
QEMU_SWAPPED_STATUS = int(
    F.MSTATUS_MXR_MASK
    | F.MSTATUS_SUM_MASK
    | F.MSTATUS_FS_MASK
    | F.MSTATUS_SPP_MASK
    | F.MSTATUS_SPIE_MASK
    | F.MSTATUS_SIE_MASK
    | F.MSTATUS_UXL_MASK
)
MSTATUS_WITH_VSSTATUS = -3
# CSR numbers the compiled functions use, as plain ints (numba freezes globals)
MSTATUS, VSSTATUS, SATP = int(CSR.MSTATUS), int(CSR.VSSTATUS), int(CSR.SATP)


@nb.njit(cache=True, nogil=True)
def _snapshot(state, machine, tables, columns, sources, virtual_sources, out):
    """Fill ``out`` (uint64 as int64) with the fields QEMU prints: source >= 0 is a CSR
    number, -1 the pc, -2 V, -3 mstatus with vsstatus's fields, -100 - n register xn, -200 - n
    register fn."""
    if state[L.VIRT]:
        sources = virtual_sources
    for i in range(columns.shape[0]):
        source = sources[i]
        if source == MSTATUS_WITH_VSSTATUS:
            mstatus = csr_read(state, machine, tables, MSTATUS, 0)
            vsstatus = csr_read(state, machine, tables, VSSTATUS, 0)
            swapped = np.int64(QEMU_SWAPPED_STATUS)
            out[columns[i]] = (mstatus & ~swapped) | (vsstatus & swapped)
        elif source >= 0:
            out[columns[i]] = csr_read(state, machine, tables, source, 0)
        elif source == -1:
            out[columns[i]] = state[L.PC]
        elif source == -2:
            out[columns[i]] = state[L.VIRT]
        elif source <= -200:
            out[columns[i]] = state[L.F + (-200 - source)]
        else:
            out[columns[i]] = state[L.X + (-100 - source)]


# The hart state an instruction can change (the first CSR_BASE slots, every CSR, f0-f31), saved
# before each instruction so that a deviation can take the instruction back (Stepper.rewind)
SAVED_SLOTS = np.array(
    list(range(L.CSR_BASE))
    + [L.CSR_BASE + n for n in sorted(CSR_BY_NUMBER)]
    + list(range(L.F, L.F + 32)),
    dtype=np.int64,
)

FAST_DONE = 0  # reached the end index
FAST_SLOW = 1  # the next instruction needs the Python step (wfi, interrupt, device replay...)
FAST_UNUSUAL = 2  # the instruction ran and needs its step finished in Python
FAST_MISMATCH = 3  # the instruction ran plainly and rvh's state differs from the reference


@nb.njit(cache=True, nogil=True)
def fast_lockstep(
    state,
    machine,
    tables,
    memory,
    page_flags,
    tlb,
    decode_cache,
    rows,
    start,
    end,
    columns,
    sources,
    virtual_sources,
    stale,
    vs_at_entry,
    masks,
    compared,
    timer,
    watched,
    saved_slots,
    saved,
    before,
    after,
    pre,
):
    """The Stepper and the comparison for the plain instructions, compiled: the same kernel
    entry with a budget of one instruction, the same snapshot, compared with ``rows[i]`` under
    ``masks``.  Returns (index, FAST_*): at FAST_UNUSUAL and FAST_MISMATCH instruction
    ``index`` - 1 has run (``pre``: pc, privilege, time, instret, exceptions, interrupts, the
    kernel's exit, the pending interrupt before it); ``before``/``after`` hold the states
    around it (after FAST_MISMATCH)."""
    ticks = machine[L.M_NS_PER_TICK]
    one = np.int64(1)  # the budget, typed as Hart.run passes it
    for i in range(start, end):
        if state[L.WFI] != 0 or state[L.MMIO_STATE] != L.MMIO_NONE:
            return i, FAST_SLOW
        if machine[L.M_MTIMECMP] != timer[0]:
            return i, FAST_SLOW
        if select_interrupt(state, machine, state[L.TIME_NS]) >= 0:
            return i, FAST_SLOW
        before[:] = after
        exceptions = state[L.EXCEPTIONS]
        interrupts = state[L.INTERRUPTS]
        retired = state[L.INSTRET]
        pre[0] = state[L.PC]
        pre[1] = state[L.PRIV]
        pre[2] = state[L.TIME_NS]
        pre[3] = retired
        pre[4] = exceptions
        pre[5] = interrupts
        pre[7] = -1
        for k in range(saved_slots.shape[0]):
            saved[k] = state[saved_slots[k]]
        state[L.TRACE_CSR] = -1
        reason = run(state, machine, tables, memory, page_flags, tlb, decode_cache, one, None)
        pre[6] = reason
        if (
            reason != 0
            or state[L.EXCEPTIONS] != exceptions
            or state[L.INTERRUPTS] != interrupts
            or state[L.INSTRET] != retired + 1
            or state[L.WFI] != 0
        ):
            return i, FAST_UNUSUAL
        # a write to a CSR that a model of QEMU follows (Stepper.WATCHED_CSRS)
        if state[L.TRACE_CSR] >= 0:
            for k in range(watched.shape[0]):
                if state[L.TRACE_CSR] == watched[k]:
                    return i, FAST_UNUSUAL
        # a fetch fault QEMU would fold into this boundary (Stepper._fetch_faults)
        if state[L.VIRT] == 0 and (
            state[L.PRIV] == L.PRIV_M or (state[L.CSR_BASE + SATP] >> 60) & 0xF == 0
        ):
            if host_offset(machine, state[L.PC], 2) < 0:
                return i, FAST_UNUSUAL
        # QemuTimer: nothing to do unless mtime reached the comparator before QEMU's deadline
        now = state[L.TIME_NS]
        if timer[1] >= 0 and now < timer[1]:
            if now // ticks + machine[L.M_MTIME_OFFSET] >= timer[0]:
                return i, FAST_UNUSUAL
        if timer[2] >= 0 and now >= timer[2]:  # QemuVsTimer's deadline
            return i, FAST_UNUSUAL
        _snapshot(state, machine, tables, columns, sources, virtual_sources, after)
        if stale.shape[0]:
            if state[L.VIRT]:
                for k in range(stale.shape[0]):
                    after[stale[k]] = vs_at_entry[k]
            else:
                for k in range(stale.shape[0]):
                    vs_at_entry[k] = after[stale[k]]
        differs = False
        for c in range(after.shape[0]):
            if not compared[c]:
                continue
            if masks[c] != -1 and after[c] == rows[i, c]:
                masks[c] = -1  # a field that agrees again in full is compared in full
            if (after[c] ^ rows[i, c]) & masks[c]:
                differs = True
        if differs:
            return i, FAST_MISMATCH
    return end, FAST_DONE


class QemuTimer:
    """QEMU 7.2's machine timer, as far as it differs from the spec's: MTIP rises when the
    QEMU timer set at the mtimecmp write fires, at ``write + (mtimecmp - mtime) * 100`` ns with
    mtime in whole ticks, which is up to 99 ns *after* mtime reaches mtimecmp (privileged spec
    3.2.1: MTIP is pending while mtime >= mtimecmp).  Inside exactly that window rvh's comparator
    is held one tick higher, so the interrupt comes on the same instruction as on QEMU."""

    def __init__(self, machine) -> None:
        self.machine = machine.machine
        self.guest_value = int(self.machine[L.M_MTIMECMP])  # what the guest last wrote
        self.deadline = -1  # virtual ns at which QEMU raises MTIP for guest_value
        self.holds = 0  # boundaries at which the comparator was held

    def after_step(self, state: np.ndarray) -> None:
        m = self.machine
        ticks = int(m[L.M_NS_PER_TICK])
        now = int(state[L.TIME_NS])
        current = int(m[L.M_MTIMECMP])
        held = self.deadline >= 0 and current == self.guest_value + 1
        if current != self.guest_value and not held:  # the guest wrote mtimecmp
            self.guest_value = current
            mtime = now // ticks + int(m[L.M_MTIME_OFFSET])
            self.deadline = now + (current - mtime) * ticks if current > mtime else -1
        if self.deadline >= 0 and now < self.deadline:
            mtime = now // ticks + int(m[L.M_MTIME_OFFSET])
            if mtime >= self.guest_value:
                m[L.M_MTIMECMP] = self.guest_value + 1
                self.holds += 1
                return
        m[L.M_MTIMECMP] = self.guest_value

    def after_sleep(self, state: np.ndarray) -> None:
        """wfi slept until rvh's deadline; QEMU (-icount sleep=off) sleeps until its own."""
        now = int(state[L.TIME_NS])
        ticks = int(self.machine[L.M_NS_PER_TICK])
        if 0 <= self.deadline and now == self.guest_value * ticks < self.deadline:
            state[L.TIME_NS] = self.deadline


class QemuVsTimer:
    """QEMU 7.2's VS timer (Sstc): hip.VSTIP from vstimecmp is a latch (``vstime_irq``) set
    when vstimecmp is written with time + htimedelta >= vstimecmp, cleared when it is written
    with a later value, and set by a host timer armed at that write for the moment the
    comparison would hold with the htimedelta of the write.  Writing htimedelta or
    menvcfg/henvcfg.STCE does not re-evaluate it (h-extension.md D31, D8), and it shows in
    mip/hip whatever STCE says.  The spec: VSTIP is pending whenever time + htimedelta >=
    vstimecmp (and both STCE are set).  The deviation rules ask this model what QEMU shows."""

    def __init__(self, machine) -> None:
        self.machine = machine.machine
        self.latch = 0
        self.deadline = -1  # virtual ns at which QEMU's VS timer fires

    def written(self, state: np.ndarray) -> None:
        m = self.machine
        ticks = int(m[L.M_NS_PER_TICK])
        now = int(state[L.TIME_NS])
        mtime = now // ticks + int(m[L.M_MTIME_OFFSET])
        compare = int(state[L.CSR_BASE + CSR.VSTIMECMP]) & MASK64
        guest_time = (mtime + int(state[L.CSR_BASE + CSR.HTIMEDELTA])) & MASK64
        if compare <= guest_time:
            self.latch = 1
            return
        self.latch = 0
        self.deadline = now + (compare - guest_time) * ticks
        if self.deadline >= 1 << 62:
            self.deadline = -1

    def after_step(self, state: np.ndarray) -> None:
        if self.deadline >= 0 and int(state[L.TIME_NS]) >= self.deadline:
            self.latch = 1
            self.deadline = -1

    def vstip(self, state: np.ndarray) -> int:
        """mip.VSTIP as QEMU shows it: hvip.VSTIP or the latch."""
        return ((int(state[L.CSR_BASE + CSR.HVIP]) >> 6) | self.latch) & 1


class Stepper:
    """Drives a loaded single-hart :class:`~rvh.machine.Machine` one instruction at a time,
    serving its kernel exits (MMIO, wfi) the way ``Machine.run`` does."""

    WATCHED_CSRS = frozenset({CSR.VSTIMECMP})  # writes the QEMU models follow (vstimecmp)

    def __init__(self, machine, fields: Sequence[str]) -> None:
        self.machine = machine
        self.hart = machine.harts[0]
        self.state = self.hart.state
        self.fields = list(fields)
        columns, sources, self.unknown = [], [], []
        for i, name in enumerate(self.fields):
            if name == "pc":
                source = -1
            elif name == "V":
                source = -2
            elif name.startswith("x") and name[1:].isdigit():
                source = -100 - int(name[1:])
            elif name.startswith("f") and name[1:].isdigit():
                source = -200 - int(name[1:])
            elif name in CSR_BY_NAME:
                source = CSR_BY_NAME[name].number
            else:
                self.unknown.append(name)
                continue
            columns.append(i)
            sources.append(source)
        self._columns = np.array(columns, dtype=np.int64)
        self._sources = np.array(sources, dtype=np.int64)
        virtual = []
        for column, source in zip(columns, sources, strict=True):
            name = self.fields[column]
            if name == "mstatus":
                source = MSTATUS_WITH_VSSTATUS
            virtual.append(VIRTUAL_VIEW.get(name, source))
        self._virtual_sources = np.array(virtual, dtype=np.int64)
        stale = [i for i, name in enumerate(self.fields) if name in STALE_WHILE_VIRTUAL]
        self._stale = np.array(stale, dtype=np.int64)
        self._vs_at_entry = np.zeros(len(stale), dtype=np.uint64)
        self.compared = np.zeros(len(self.fields), dtype=bool)
        self.compared[self._columns] = True
        self.steps = 0
        self.untimed_traps = 0  # exceptions whose instruction time was taken back (QEMU)
        self._last_untimed = 0
        self.timer = QemuTimer(machine)
        self.vstimer = QemuVsTimer(machine)
        self._saved = np.zeros(len(SAVED_SLOTS), dtype=np.int64)  # before the last instruction
        self._watched = np.array(sorted(self.WATCHED_CSRS), dtype=np.int64)
        # QEMU 7.2's M-mode with V=1 (D33): the HS copies it put aside, while it lasts
        self.qemu_m_virtual: dict[int, int] | None = None
        self._v_column = self.fields.index("V") if "V" in self.fields else -1

    def snapshot(self) -> np.ndarray:
        row = self._snapshot()
        # With V=1 QEMU's VS copies are the values they had when V became 1 (the live ones are
        # in the supervisor registers it prints instead, see VIRTUAL_VIEW)
        if self._stale.size:
            if self.state[L.VIRT]:
                row[self._stale] = self._vs_at_entry
            else:
                self._vs_at_entry = row[self._stale].copy()
        if self.qemu_m_virtual is not None and self._v_column >= 0:
            row[self._v_column] = 1
        return row

    # -- D33: QEMU's mret with MPP = M and MPV = 1 --------------------------------------------
    # QEMU 7.2 keeps one live copy of the supervisor registers and swaps the HS and VS values
    # whenever V changes (riscv_cpu_swap_hypervisor_regs): entering V=1 it puts the HS values
    # aside and makes the VS ones live, the VS registers keeping their old contents; leaving
    # V=1 it copies the live values into the VS registers and restores the HS ones.  Its mret
    # sets V = MPV even when it returns to M (spec: V stays 0), swapping as for a VS entry, and
    # the hart runs on in M-mode "with V=1": M-mode code reaches the VS values through the
    # supervisor CSRs.  rvh stays in M-mode with V=0 as the spec says; while QEMU is in that
    # state the stepper keeps rvh's supervisor registers as QEMU's live ones, its VS registers
    # as QEMU's VS registers and the HS values aside, so rvh's M-mode code sees what QEMU's
    # does, and undoes the swap when QEMU does (a trap, or an mret with MPV = 1).
    def enter_qemu_m_virtual(self) -> None:
        s = self.state
        saved = {hs: int(s[L.CSR_BASE + hs]) for hs in QEMU_SWAPPED_CSRS}
        mstatus = int(s[L.CSR_BASE + CSR.MSTATUS])
        saved[CSR.MSTATUS] = mstatus & QEMU_SWAPPED_STATUS
        for hs, vs in QEMU_SWAPPED_CSRS.items():
            s[L.CSR_BASE + hs] = s[L.CSR_BASE + vs]
        vsstatus = int(s[L.CSR_BASE + CSR.VSSTATUS]) & MASK64
        s[L.CSR_BASE + CSR.MSTATUS] = signed64((mstatus & ~QEMU_SWAPPED_STATUS) | vsstatus)
        self.qemu_m_virtual = saved
        self._address_space_changed()

    def leave_qemu_m_virtual(self, trapped: bool) -> None:
        """QEMU leaves V=1: after a trap (it swaps back and records MPV = 1), or after an mret
        that sets V = MPV = 0 (no swap: the live values stay the HS registers)."""
        saved, self.qemu_m_virtual = self.qemu_m_virtual, None
        if not trapped or saved is None:
            return
        s = self.state
        for hs, vs in QEMU_SWAPPED_CSRS.items():
            s[L.CSR_BASE + vs] = s[L.CSR_BASE + hs]
            s[L.CSR_BASE + hs] = signed64(saved[hs])
        mstatus = int(s[L.CSR_BASE + CSR.MSTATUS]) & MASK64
        s[L.CSR_BASE + CSR.VSSTATUS] = signed64(mstatus & QEMU_SWAPPED_STATUS)
        mstatus = (mstatus & ~QEMU_SWAPPED_STATUS) | saved[CSR.MSTATUS] | F.MSTATUS_MPV_MASK
        if int(s[L.CSR_BASE + CSR.MTVAL]):  # QEMU: GVA = 1 for a trap from V=1 with mtval != 0
            mstatus |= F.MSTATUS_GVA_MASK
        s[L.CSR_BASE + CSR.MSTATUS] = signed64(mstatus)
        self._address_space_changed()

    def _address_space_changed(self) -> None:
        self.hart.flush_tlb()
        update_contexts(self.state)

    def _snapshot(self) -> np.ndarray:
        out = np.zeros(len(self.fields), dtype=np.int64)
        m = self.machine
        _snapshot(
            self.state,
            m.machine,
            m.tables,
            self._columns,
            self._sources,
            self._virtual_sources,
            out,
        )
        return out.view(np.uint64)

    def _progress(self) -> int:
        return int(self.state[L.INSTRET]) + int(self.state[L.EXCEPTIONS])

    def pending_interrupt(self) -> int:
        """The interrupt rvh takes before its next instruction, or -1."""
        s = self.state
        if s[L.WFI]:
            return -1
        return int(select_interrupt(s, self.machine.machine, s[L.TIME_NS]))

    def step(self) -> StepInfo:
        """Run one instruction (after any interrupt due first)."""
        m, s = self.machine, self.state
        info = StepInfo(int(s[L.PC]) & MASK64)
        if m.exit_status is not None:
            info.ended = True
            return info
        counters = (int(s[L.EXCEPTIONS]), int(s[L.INTERRUPTS]), self.pending_interrupt())
        info.privilege = int(s[L.PRIV])
        mstatus = int(s[L.CSR_BASE + CSR.MSTATUS])
        s[L.TRACE_CSR] = -1
        self._saved = s[SAVED_SLOTS]
        self._run_one(info)
        self._finish(info, *counters)
        if self.qemu_m_virtual is not None:
            if info.exception is not None or info.interrupt is not None:
                self.leave_qemu_m_virtual(trapped=True)
            elif (bits := self.fetch(info.pc)) == MRET and not mstatus & F.MSTATUS_MPV_MASK:
                self.leave_qemu_m_virtual(trapped=False)
            elif bits == MRET:
                # QEMU swaps back and sets V=1 again, with the HS values live: not followed
                self.leave_qemu_m_virtual(trapped=True)
        return info

    def _finish(self, info: StepInfo, exceptions: int, interrupts: int, pending: int) -> StepInfo:
        """What follows the instruction of a step: what it took, a fetch fault, the timer."""
        m, s = self.machine, self.state
        if int(s[L.INTERRUPTS]) != interrupts:
            info.interrupt = pending
        if int(s[L.EXCEPTIONS]) != exceptions:
            info.exception = int(s[L.LAST_CAUSE])
        # QEMU raises a fetch fault while looking for the next block, before it dumps the
        # state: the fault belongs to this boundary, as an interrupt does; so does the
        # breakpoint of an execute trigger (Sdtrig), which QEMU 7.2 raises there too
        if (
            m.exit_status is None
            and self.pending_interrupt() < 0
            and (self._fetch_faults() or self._execute_trigger_fires())
        ):
            self._run_one(info)
            info.fetch_fault = int(s[L.LAST_CAUSE])
        self.steps += 1
        written = int(s[L.TRACE_CSR])
        if written in self.WATCHED_CSRS and info.exception is None:
            self.vstimer.written(s)
        self.timer.after_step(s)
        self._settle()
        self.timer.after_step(s)
        self.vstimer.after_step(s)
        return info

    def _run_one(self, info: StepInfo, first: Sequence[int] | None = None) -> None:
        """One kernel instruction (replaying it after a device access), with the time base
        kept as QEMU's -icount keeps it: an instruction that traps takes no time.  ``first``:
        the kernel already ran once (the fast loop): its exit and the counters before it."""
        m, hart, s = self.machine, self.hart, self.state
        if first is None:
            start = self._progress()
            time0, retired0, exceptions0 = (
                int(s[L.TIME_NS]),
                int(s[L.INSTRET]),
                int(s[L.EXCEPTIONS]),
            )
            reason = None
        else:
            reason, time0, retired0, exceptions0 = (int(v) for v in first)
            start = retired0 + exceptions0
        for _ in range(10_000):
            if reason is None:
                reason = hart.run(1)
            if reason != Exit.BUDGET:
                m._serve_exit(hart, Exit(reason))
            reason = None
            if self._progress() != start or m.exit_status is not None:
                break
        else:
            raise RuntimeError(f"rvh made no progress at pc {info.pc:#x}")
        elapsed = int(s[L.TIME_NS]) - time0
        retired = int(s[L.INSTRET]) - retired0
        trapped = int(s[L.EXCEPTIONS]) - exceptions0
        self._last_untimed = 0
        if trapped == 1 and elapsed == retired + trapped and not self._qemu_counts_trap(info.pc):
            s[L.TIME_NS] -= 1
            s[L.CYCLE] -= 1
            self.untimed_traps += 1
            self._last_untimed = 1

    def fast_steps(
        self, rows: np.ndarray, start: int, end: int, masks: np.ndarray
    ) -> tuple[int, int, np.ndarray, np.ndarray, StepInfo | None]:
        """Run instructions ``start``.. in the compiled loop while they are plain (no trap,
        interrupt, device access, wfi or timer event) and agree with ``rows``; returns (the
        index reached, FAST_*, rvh's state before and after it, and for FAST_MISMATCH or
        FAST_UNUSUAL the step's StepInfo, completed)."""
        m, s = self.machine, self.state
        if self.qemu_m_virtual is not None:  # D33: the Python step follows QEMU's V=1 in M
            row = self.snapshot()
            return start, FAST_SLOW, row, row, None
        before = np.zeros(len(self.fields), dtype=np.int64)
        after = self.snapshot().view(np.int64).copy()
        pre = np.zeros(8, dtype=np.int64)
        timer = np.array(
            [self.timer.guest_value, self.timer.deadline, self.vstimer.deadline], dtype=np.int64
        )
        index, status = fast_lockstep(
            s,
            m.machine,
            m.tables,
            self.hart.memory,
            self.hart.page_flags,
            self.hart.tlb,
            self.hart.decode_cache,
            rows.view(np.int64),
            start,
            end,
            self._columns,
            self._sources,
            self._virtual_sources,
            self._stale,
            self._vs_at_entry.view(np.int64),
            masks.view(np.int64),
            self.compared,
            timer,
            self._watched,
            SAVED_SLOTS,
            self._saved,
            before,
            after,
            pre,
        )
        self.steps += index - start
        info = None
        if status == FAST_MISMATCH:
            info = StepInfo(int(pre[0]) & MASK64, privilege=int(pre[1]))
            self.steps += 1
        elif status == FAST_UNUSUAL:
            info = StepInfo(int(pre[0]) & MASK64, privilege=int(pre[1]))
            self._run_one(info, first=(pre[6], pre[2], pre[3], pre[4]))
            self._finish(info, int(pre[4]), int(pre[5]), int(pre[7]))
            after = self.snapshot().view(np.int64)
        return index, status, before.view(np.uint64), after.view(np.uint64), info

    def _qemu_counts_trap(self, pc: int, cause: int | None = None) -> bool:
        """Whether QEMU 7.2's -icount clock counts an instruction that trapped: yes when the
        exception is raised by code generated at translation (ecall, ebreak, an encoding it
        cannot decode, an HLV/HLVX/HSV the mode may not use), no when a helper raises it at
        run time and rewinds to the instruction (CSR and privilege checks, memory faults)."""
        if cause is None:
            cause = int(self.state[L.LAST_CAUSE])
        if cause in (3, 8, 9, 10, 11):
            return True
        if cause in (2, 22):
            bits = self.fetch(pc)
            ins = decode(bits) if bits is not None else None
            return bits is not None and (ins is None or is_hlv_hsv(ins))
        return False

    def _execute_trigger_fires(self) -> bool:
        """Whether an armed execute trigger matches the current pc (rvh/cpu/triggers.py)."""
        s = self.state
        if not s[L.TRIGGERS_ARMED] & L.TRIGGER_ARMED_EXECUTE:
            return False
        return bool(execute_trigger_fires(s, s[L.PC]))

    def _fetch_faults(self) -> bool:
        """Whether fetching at the current pc faults, where that is known without translation
        (M-mode, or bare satp outside V=1): no RAM or ROM there."""
        s = self.state
        if s[L.VIRT]:
            return False
        if s[L.PRIV] != L.PRIV_M and (int(s[L.CSR_BASE + CSR.SATP]) >> 60) & 0xF:
            return False
        pc = int(s[L.PC]) & MASK64
        return self.machine.bus.host_offset(pc, 2) is None

    def traps_ahead(self, limit: int) -> tuple[int, int, int]:
        """How many traps in a row rvh takes from here without retiring an instruction (up to
        ``limit``): (traps, the last one's cause, its pc).  The hart state is put back
        afterwards, so only steps that write no memory and touch no device are taken: in
        M-mode or under bare translation (where the bits at the pc are the instruction), a
        fetch from no memory or an instruction that is not a memory access.  Anything else (a
        retired instruction, a device exit, an interrupt) ends the count.  The comparison asks
        this while QEMU prints nothing: a fetch fault is no executed block for QEMU's ``-d
        cpu``, so a trap loop through one runs silently there."""
        s, hart = self.state, self.hart
        saved = s.copy()
        traps, cause, pc = 0, -1, int(s[L.PC]) & MASK64
        try:
            while traps < limit and not s[L.WFI] and self.machine.exit_status is None:
                if s[L.VIRT] or (
                    s[L.PRIV] != L.PRIV_M and (int(s[L.CSR_BASE + CSR.SATP]) >> 60) & 0xF
                ):
                    break  # translated: the bits at the pc are not known here
                at = int(s[L.PC]) & MASK64
                bits = self.fetch(at)
                ins = decode(bits) if bits is not None else None
                if ins is not None and (ins.is_memory_access or ins.base_name == "wfi"):
                    break
                retired, exceptions = int(s[L.INSTRET]), int(s[L.EXCEPTIONS])
                if hart.run(1) != Exit.BUDGET:
                    break
                if int(s[L.INSTRET]) != retired or int(s[L.EXCEPTIONS]) != exceptions + 1:
                    break
                traps += 1
                cause, pc = int(s[L.LAST_CAUSE]), at
        finally:
            s[:] = saved
            self._address_space_changed()
        return traps, cause, pc

    def _settle(self) -> None:
        """After a wfi that put the hart to sleep, let time pass as ``Machine.run`` does."""
        s, m = self.state, self.machine
        if not s[L.WFI] or m.exit_status is not None:
            return
        now = s[L.TIME_NS]
        if not any_pending_enabled(s, m.machine, now):
            wait = int(next_deadline(s, m.machine, now))
            if wait >= NEVER:
                m.power_off(EXIT_DEADLOCK, "deadlock: the hart waits in wfi for nothing")
                return
            s[L.TIME_NS] += wait
            self.timer.after_sleep(s)
        s[L.WFI] = 0

    def adopt(self, values: dict, expected: np.ndarray | None = None) -> None:
        """Overwrite rvh's state with reference values (a known deviation): pc, V, xN, fN or a
        CSR's storage; a :class:`Bits` takes those bits of ``expected`` (QEMU's state)."""
        s = self.state
        # first what replaces the instruction's outcome, then the values QEMU shows after it
        if QEMU_TRAPPED in values:
            self.retrap(*values[QEMU_TRAPPED])
        if QEMU_EXECUTED in values:
            self.reexecute()
        if QEMU_EXECUTED_WITH in values:
            self.execute_with(values[QEMU_EXECUTED_WITH])
        if QEMU_PTE_BITS in values:
            self.set_pte_bits(*values[QEMU_PTE_BITS])
        current = self.snapshot()
        for name, value in values.items():
            if name in (QEMU_TRAPPED, QEMU_EXECUTED, QEMU_EXECUTED_WITH, QEMU_PTE_BITS):
                continue
            if isinstance(value, Bits):  # QEMU's values of these bits, rvh's of the others
                assert expected is not None, "a Bits claim needs QEMU's state"
                column = self.fields.index(name)
                ours, theirs = int(current[column]), int(expected[column])
                value = (ours & ~value.bits) | (theirs & value.bits)
            value &= MASK64
            signed = value - (1 << 64) if value >> 63 else value
            if name == "pc":
                s[L.PC] = signed
            elif name == "V":
                s[L.VIRT] = signed
                update_contexts(s)
            elif name.startswith("x") and name[1:].isdigit():
                if name != "x0":
                    s[L.X + int(name[1:])] = signed
            elif name.startswith("f") and name[1:].isdigit():
                s[L.F + int(name[1:])] = signed
            elif name == "priv":
                s[L.PRIV] = signed
                update_contexts(s)
            elif name == "reservation":
                s[L.RESERVATION] = signed
            elif name == QEMU_M_VIRTUAL:
                self.enter_qemu_m_virtual()
            elif name == "retired":
                # the instruction rvh trapped on retired on QEMU: count it, and its time
                s[L.INSTRET] += 1
                s[L.EXCEPTIONS] -= 1
                if self._last_untimed:
                    s[L.TIME_NS] += 1
                    s[L.CYCLE] += 1
                    self.untimed_traps -= 1
            elif s[L.VIRT] and name in VIRTUAL_VIEW:
                s[L.CSR_BASE + VIRTUAL_VIEW[name]] = signed  # QEMU shows the VS register
            else:
                s[L.CSR_BASE + CSR_BY_NAME[name].number] = signed

    def fold_fetch_fault(self, qemu: dict[str, int]) -> int | None:
        """QEMU's state shows a fetch fault (access, page or guest-page fault), or an execute
        trigger's breakpoint, taken at rvh's pc: fetch there (one kernel step); if rvh faults
        too, that is the same boundary and the cause is returned, otherwise the step is taken
        back."""
        s = self.state
        pc = int(s[L.PC]) & MASK64
        shown = [("mcause", "mepc"), ("scause", "sepc")]
        # (QEMU reports a guest-page fault of the fetch's implicit PTE read as 21, D22); an
        # execute trigger's breakpoint (3) is raised at the same point, before the instruction
        folded = (*FETCH_FAULTS, 21, 3) if self._execute_trigger_fires() else (*FETCH_FAULTS, 21)
        if not any(qemu.get(c) in folded and qemu.get(e) == pc for c, e in shown):
            return None
        previous = self._saved  # what rewinds the instruction itself
        exceptions, retired = int(s[L.EXCEPTIONS]), int(s[L.INSTRET])
        self._saved = s[SAVED_SLOTS]
        self._run_one(StepInfo(pc))
        cause = int(s[L.LAST_CAUSE])
        if int(s[L.EXCEPTIONS]) == exceptions + 1 and int(s[L.INSTRET]) == retired:
            if cause in folded and cause != 21:
                self._saved = previous
                return cause
        self.rewind()
        self._saved = previous
        return None

    def execute_with(self, changes: Sequence[tuple[int, int]]) -> None:
        """QEMU executed the last instruction under a rule that differs from the spec's in one
        control bit (SUM...): rvh's outcome is taken back and the instruction run again with
        those CSR ``bits`` set, which they are not afterwards."""
        s = self.state
        self.rewind()
        saved = {number: int(s[L.CSR_BASE + number]) for number, _ in changes}
        for number, bits in changes:
            s[L.CSR_BASE + number] |= bits
        self._address_space_changed()
        self._run_one(StepInfo(int(s[L.PC]) & MASK64))
        for number, bits in changes:
            s[L.CSR_BASE + number] = (int(s[L.CSR_BASE + number]) & ~bits) | (saved[number] & bits)
        self._address_space_changed()

    def g_stage(self, gpa: int) -> tuple[int, int | None] | None:
        """Guest physical address ``gpa`` through rvh's G-stage tables (hgatp; Bare, Sv39x4,
        Sv48x4): (host physical address, leaf PTE or None for Bare), or None (not mapped)."""
        hgatp = self.csr(CSR.HGATP)
        mode = hgatp >> 60
        if mode == 0:
            return gpa, None
        levels = 3 if mode == 8 else 4
        base = (hgatp & ((1 << 44) - 1)) << 12
        bus = self.machine.bus
        for level in range(levels - 1, -1, -1):
            width = 9 + (2 if level == levels - 1 else 0)
            index = (gpa >> (12 + 9 * level)) & ((1 << width) - 1)
            try:
                pte = bus.read_u64(base + index * 8)
            except Exception:
                return None
            if not pte & 1:
                return None
            ppn = (pte >> 10) & ((1 << 44) - 1)
            if pte & 0xE:
                offset = (1 << (12 + 9 * level)) - 1
                return ((ppn << 12) & ~offset) | (gpa & offset), pte
            base = ppn << 12
        return None

    def guest_physical(self, gpa: int) -> int | None:
        """The host physical address of a guest physical one (G-stage), or None."""
        found = self.g_stage(gpa)
        return None if found is None else found[0]

    def two_stage(self, va: int) -> tuple[int | None, int | None]:
        """The leaf PTEs of guest virtual address ``va`` in rvh's VS-stage tables (vsatp, its
        tables reached through the G-stage) and G-stage tables: (VS leaf, G leaf), each None
        where the stage is Bare or does not map the address."""
        vsatp = self.csr(CSR.VSATP)
        leaf = None
        gpa = va
        if vsatp >> 60 in (8, 9):
            levels = 3 if vsatp >> 60 == 8 else 4
            table = (vsatp & ((1 << 44) - 1)) << 12
            for level in range(levels - 1, -1, -1):
                address = self.guest_physical(table + ((va >> (12 + 9 * level)) & 0x1FF) * 8)
                if address is None:
                    return None, None
                pte = self.machine.bus.read_u64(address)
                if not pte & 1:
                    return None, None
                ppn = (pte >> 10) & ((1 << 44) - 1)
                if pte & 0xE:
                    leaf = pte
                    offset = (1 << (12 + 9 * level)) - 1
                    gpa = ((ppn << 12) & ~offset) | (va & offset)
                    break
                table = ppn << 12
            else:
                return None, None
        found = self.g_stage(gpa)
        return leaf, (None if found is None else found[1])

    def set_pte_bits(self, gpa: int, bits: int) -> None:
        """Set A/D ``bits`` in the VS-stage PTE at guest physical address ``gpa``, as QEMU's
        page walk did (D19)."""
        address = self.guest_physical(gpa)
        if address is not None:
            bus = self.machine.bus
            bus.write_u64(address, bus.read_u64(address) | bits)
            self.hart.flush_tlb()

    def rewind(self) -> None:
        """Take the last instruction back: the hart state as it was before it (memory is not
        restored: the deviations that rewind are for instructions that store nothing)."""
        self.state[SAVED_SLOTS] = self._saved
        self._last_untimed = 0
        self.hart.flush_tlb()
        update_contexts(self.state)

    def retrap(self, cause: int, tval: int, tval2: int = 0, gva: int = 0) -> None:
        """QEMU trapped on the last instruction (with ``cause``, mtval/stval ``tval``, and for
        a guest-page fault mtval2/htval ``tval2`` and GVA) where rvh did something else: rvh
        takes that trap instead, as its own trap entry does (delegation included), with
        mtinst/htinst 0 as QEMU writes it (D18)."""
        s = self.state
        pc = int(self._saved[L.PC])
        self.rewind()
        s[L.TRAP_GVA] = gva
        s[L.TRAP_TVAL2] = signed64(tval2)
        s[L.TRAP_TINST] = 0
        s[L.PC] = take_trap(s, self.machine.machine, cause, False, signed64(tval), pc)
        s[L.INSTRET] += 1  # take_trap un-counts the instruction, which the rewind did already
        if self._qemu_counts_trap(pc, cause):
            s[L.TIME_NS] += 1
            s[L.CYCLE] += 1

    def reexecute(self) -> None:
        """QEMU executed the last instruction where rvh trapped: rvh's trap is taken back and
        the instruction counted as retired; the deviation supplies its results (pc, rd...)."""
        s = self.state
        self.rewind()
        s[L.INSTRET] += 1
        s[L.TIME_NS] += 1
        s[L.CYCLE] += 1

    def csr(self, number: int) -> int:
        """A CSR's storage (unsigned), for the deviation rules."""
        return int(self.state[L.CSR_BASE + number]) & MASK64

    def fetch(self, pc: int) -> int | None:
        """The instruction bits at pc, read from memory (physical = virtual: M-mode and bare
        translation; None where that does not hold or nothing is mapped)."""
        bus = self.machine.bus
        try:
            low = int.from_bytes(bus.read_bytes(pc, 2), "little")
            if low & 3 != 3:
                return low
            return int.from_bytes(bus.read_bytes(pc, 4), "little")
        except Exception:
            return None

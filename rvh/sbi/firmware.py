"""The built-in SBI: M-mode firmware implemented by the emulator (SBI specification v2.0).

With ``rvh run --sbi PAYLOAD`` there is no M-mode code at all.  The boot recipe
(:class:`rvh.boot.BuiltinSbiBoot`) has :meth:`BuiltinSbi.prepare_hart` start the payload in
S-mode the way firmware would (a0 = hartid, a1 = device tree; traps and interrupts delegated,
counters and the Sstc timer enabled, one PMP entry opening all memory), and the kernel hands every
trap that would enter M-mode to :meth:`BuiltinSbi.handle` (``Exit.FIRMWARE``).  An ``ecall`` from
S-mode is an SBI call: a7 = extension, a6 = function, a0..a5 arguments; the result goes back in
a0 (error) and a1 (value) and the payload continues after the ecall.

Implemented: BASE, TIME, IPI, RFENCE, HSM, SRST, PMU, DBCN and the legacy extensions
(set_timer, console putchar/getchar, clear/send IPI, remote fences, shutdown); with pv devices
(``--drive``/``--netdev ...,if=pv``) also rvh's platform I/O extension RVH_PVIO
(:mod:`rvh.devices.pvio`, docs/virtio.md).  The timer uses Sstc: set_timer writes stimecmp, so
the timer interrupt is raised by the hart itself (no M-mode round trip).  The PMU offers the
three fixed counters (cycle, time, instret; no hpmcounters, no firmware counters); Linux needs
the extension to be there at all: its PMU driver is what opens ``time`` to user mode
(scounteren.TM), which the vDSO's clock_gettime reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from rvh import __version__
from rvh.bus import BusFault
from rvh.cpu import layout as L
from rvh.cpu.hart import Hart
from rvh.errors import GuestError
from rvh.isa import sbi
from rvh.isa.causes import Exception_
from rvh.isa.csrs import (
    HEDELEG_WRITABLE,
    MEDELEG_WRITABLE,
    MEDELEG_WRITABLE_H,
)
from rvh.isa.fields import (
    COUNTEREN_CY_MASK,
    COUNTEREN_IR_MASK,
    COUNTEREN_TM_MASK,
    MENVCFG_STCE_MASK,
    MIP_S_LEVEL_MASK,
    MIP_SGEIP_MASK,
    MIP_SSIP_MASK,
    MIP_STIP_MASK,
    MIP_VS_LEVEL_MASK,
    MSTATUS_SIE_MASK,
)
from rvh.isa.sbi import (
    BaseFunction,
    DbcnFunction,
    Error,
    Extension,
    HsmFunction,
    HsmState,
    HsmSuspendType,
    ImplementationId,
    IpiFunction,
    PmuFunction,
    RfenceFunction,
    SrstFunction,
    SrstReason,
    SrstType,
    TimeFunction,
)

if TYPE_CHECKING:
    from rvh.devices.pvio import PvioHost

SPEC_VERSION = (2 << sbi.SPEC_VERSION_MAJOR_SHIFT) | 0  # 2.0
IMPLEMENTATION_ID = ImplementationId.RVH
IMPLEMENTATION_VERSION = int(__version__.split(".")[0]) << 16 | int(__version__.split(".")[1])

MASK64 = (1 << 64) - 1

# Traps the firmware leaves to S-mode: every exception S-mode can take, except its own ecall
# (bits 0-8, 12, 13, 15; with H also the VS ecall and guest faults).
MEDELEG = HEDELEG_WRITABLE
MEDELEG_H = MEDELEG | (MEDELEG_WRITABLE_H & ~MEDELEG_WRITABLE)
MIDELEG = MIP_S_LEVEL_MASK


class SbiPlatform(Protocol):
    """What firmware needs of the board, and no more: the harts (their CSRs carry the timer,
    through Sstc, and the software interrupts), guest memory for DBCN and the legacy hart
    masks, the console, and power.  ``rvh.boot.MachinePlatform`` is the machine's."""

    harts: Sequence[Hart]
    has_hypervisor: bool

    def console_write(self, data: bytes) -> None: ...

    def console_read(self, count: int) -> bytes:
        """Up to ``count`` received bytes; fewer (or none) when no more are waiting."""
        ...

    def is_memory(self, address: int, length: int) -> bool:
        """Whether [address, address + length) is RAM (or ROM)."""
        ...

    def read_memory(self, address: int, length: int) -> bytes:
        """Raises :class:`rvh.bus.BusFault` outside RAM."""
        ...

    def write_memory(self, address: int, data: bytes) -> None:
        """Raises :class:`rvh.bus.BusFault` outside RAM."""
        ...

    def power_off(self, status: int, reason: str) -> None: ...

    def request_reset(self) -> None: ...


CSR_CYCLE, CSR_TIME, CSR_INSTRET = 0xC00, 0xC01, 0xC02
# the PMU's counters (chapter 11): (CSR, the hardware general event it counts; -1: none)
PMU_COUNTERS = (
    (CSR_CYCLE, sbi.PMU_EVENT_CPU_CYCLES),
    (CSR_TIME, -1),
    (CSR_INSTRET, sbi.PMU_EVENT_INSTRUCTIONS),
)


def _signed(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


class BuiltinSbi:
    def __init__(self, platform: SbiPlatform, pvio: PvioHost | None = None) -> None:
        self.platform = platform
        self.pvio = pvio
        self.calls = 0
        self.by_extension: dict[int, int] = {}
        self.handlers: dict[int, Callable[[Hart, int, list[int]], tuple[int, int]]] = {
            Extension.BASE: self._base,
            Extension.TIME: self._time,
            Extension.IPI: self._ipi,
            Extension.RFENCE: self._rfence,
            Extension.HSM: self._hsm,
            Extension.SRST: self._srst,
            Extension.PMU: self._pmu,
            Extension.DBCN: self._dbcn,
        }
        if pvio is not None:  # the platform I/O extension, when the machine has pv devices
            self.handlers[Extension.RVH_PVIO] = self._pvio
        # per hart: the PMU counters configured (counter -> event_idx) and those started
        self.pmu_configured: dict[int, dict[int, int]] = {}
        self.pmu_started: dict[int, set[int]] = {}

    # ---- booting ---------------------------------------------------------------------------
    def prepare_hart(self, hart: Hart, start: int | None, opaque: int) -> None:
        """Put a hart in the state the SBI promises S-mode software: S-mode at ``start`` with
        a0 = hartid, a1 = opaque (the device tree for the boot hart), satp = 0, SIE = 0; or
        stopped (HSM STOPPED) when start is None."""
        state = hart.state
        hart.reset(start or 0)
        self.pmu_configured[hart.hartid] = {}
        self.pmu_started[hart.hartid] = set()
        has_h = self.platform.has_hypervisor
        hart.set_csr("medeleg", MEDELEG_H if has_h else MEDELEG)
        hart.set_csr("mideleg", MIDELEG | ((MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK) if has_h else 0))
        counters = COUNTEREN_CY_MASK | COUNTEREN_TM_MASK | COUNTEREN_IR_MASK
        hart.set_csr("mcounteren", counters)  # TM also opens stimecmp
        hart.set_csr("menvcfg", MENVCFG_STCE_MASK)  # Sstc: the timer needs no M-mode help
        hart.set_csr("stimecmp", -1)
        # one NAPOT entry covering the whole address space, R/W/X for S and U
        hart.set_csr("pmpaddr0", (1 << 54) - 1)
        hart.set_csr("pmpcfg0", 0x1F)
        state[L.PMP_ACTIVE] = 1
        hart.flush_tlb()
        state[L.PRIV] = L.PRIV_S
        from rvh.cpu.mmu import update_contexts

        update_contexts(state)
        state[L.X + 10] = hart.hartid
        state[L.X + 11] = _signed(opaque)
        state[L.HALTED] = 0 if start is not None else 1
        state[L.WFI] = 0

    # ---- trap entry ------------------------------------------------------------------------
    def handle(self, hart: Hart) -> None:
        cause = int(hart.state[L.TRAP_CAUSE])
        if cause in (Exception_.ECALL_FROM_S, Exception_.ECALL_FROM_VS):
            self._ecall(hart)
            return
        pc = hart.pc & MASK64
        raise GuestError(
            f"hart {hart.hartid}: trap to M-mode (cause {cause & MASK64:#x}) at pc {pc:#x} that "
            "the built-in SBI does not handle (it delegates every trap S-mode can take)"
        )

    def _ecall(self, hart: Hart) -> None:
        args = [hart.x(10 + i) for i in range(6)]
        extension, function = hart.x(17), hart.x(16)
        self.calls += 1
        self.by_extension[extension] = self.by_extension.get(extension, 0) + 1
        hart.state[L.INSTRET] += 1  # the ecall retires (the kernel left it unretired)
        if extension <= sbi.LEGACY_LAST:
            self._legacy(hart, extension, args)
            return
        handler = self.handlers.get(extension)
        if handler is None:
            error, value = int(Error.ERR_NOT_SUPPORTED), 0
        else:
            error, value = handler(hart, function, args)
        if hart.state[L.HALTED] and extension == Extension.HSM:
            return  # hart_stop: this hart does not return
        hart.set_x(10, error)
        hart.set_x(11, value)
        hart.pc = hart.pc + 4

    # ---- extensions ------------------------------------------------------------------------
    def _base(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function == BaseFunction.GET_SPEC_VERSION:
            return Error.SUCCESS, SPEC_VERSION
        if function == BaseFunction.GET_IMPL_ID:
            return Error.SUCCESS, IMPLEMENTATION_ID
        if function == BaseFunction.GET_IMPL_VERSION:
            return Error.SUCCESS, IMPLEMENTATION_VERSION
        if function == BaseFunction.PROBE_EXTENSION:
            probed = args[0]
            legacy = probed <= sbi.LEGACY_LAST
            return Error.SUCCESS, 1 if (probed in self.handlers or legacy) else 0
        if BaseFunction.GET_MVENDORID <= function <= BaseFunction.GET_MIMPID:
            register = ("mvendorid", "marchid", "mimpid")[function - BaseFunction.GET_MVENDORID]
            return Error.SUCCESS, hart.csr(register)
        return Error.ERR_NOT_SUPPORTED, 0

    def _time(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function != TimeFunction.SET_TIMER:
            return Error.ERR_NOT_SUPPORTED, 0
        self._set_timer(hart, args[0])
        return Error.SUCCESS, 0

    def _set_timer(self, hart: Hart, when: int) -> None:
        hart.set_csr("stimecmp", when)
        # the spec: set_timer clears the pending timer interrupt (Sstc re-raises it if due)
        hart.set_csr("mip", hart.csr("mip") & ~MIP_STIP_MASK)

    def _targets(self, hart_mask: int, hart_mask_base: int) -> list[Hart] | None:
        harts = self.platform.harts
        if hart_mask_base == MASK64:
            return list(harts)
        chosen = []
        for bit in range(64):
            if hart_mask >> bit & 1:
                hartid = hart_mask_base + bit
                if hartid >= len(harts):
                    return None
                chosen.append(harts[hartid])
        return chosen

    def _ipi(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function != IpiFunction.SEND_IPI:
            return Error.ERR_NOT_SUPPORTED, 0
        targets = self._targets(args[0], args[1])
        if targets is None:
            return Error.ERR_INVALID_PARAM, 0
        for target in targets:
            target.set_csr("mip", target.csr("mip") | MIP_SSIP_MASK)
        return Error.SUCCESS, 0

    def _rfence(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function > RfenceFunction.REMOTE_HFENCE_VVMA:
            return Error.ERR_NOT_SUPPORTED, 0
        targets = self._targets(args[0], args[1])
        if targets is None:
            return Error.ERR_INVALID_PARAM, 0
        has_h = self.platform.has_hypervisor
        if function >= RfenceFunction.REMOTE_HFENCE_GVMA_VMID and not has_h:
            return Error.ERR_NOT_SUPPORTED, 0  # HFENCE variants need the H extension
        # remote_fence_i needs nothing: the decode cache follows stores
        if function != RfenceFunction.REMOTE_FENCE_I:
            for target in targets:
                target.flush_tlb()
        return Error.SUCCESS, 0

    def _hsm(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        harts = self.platform.harts
        if function == HsmFunction.HART_START:  # (hartid, start_addr, opaque)
            hartid, start, opaque = args[0], args[1], args[2]
            if hartid >= len(harts):
                return Error.ERR_INVALID_PARAM, 0
            target = harts[hartid]
            if not target.state[L.HALTED]:
                return Error.ERR_ALREADY_AVAILABLE, 0
            if not self.platform.is_memory(start, 2):
                return Error.ERR_INVALID_ADDRESS, 0
            self.prepare_hart(target, start, opaque)
            target.state[L.TIME_NS] = hart.state[L.TIME_NS]
            return Error.SUCCESS, 0
        if function == HsmFunction.HART_STOP:
            hart.state[L.HALTED] = 1
            return Error.SUCCESS, 0
        if function == HsmFunction.HART_GET_STATUS:
            hartid = args[0]
            if hartid >= len(harts):
                return Error.ERR_INVALID_PARAM, 0
            target = harts[hartid]
            if target.state[L.HALTED]:
                return Error.SUCCESS, HsmState.STOPPED
            return Error.SUCCESS, HsmState.STARTED
        if function == HsmFunction.HART_SUSPEND:  # (type, resume_addr, opaque)
            kind, resume, opaque = args[0] & 0xFFFFFFFF, args[1], args[2]
            if kind == HsmSuspendType.RETENTIVE:
                hart.state[L.WFI] = 1  # retentive: like wfi, returns 0 once woken
                return Error.SUCCESS, 0
            if kind == HsmSuspendType.NON_RETENTIVE:
                if not self.platform.is_memory(resume, 2):
                    return Error.ERR_INVALID_ADDRESS, 0
                # non-retentive: resume at resume_addr (a0 = hartid, a1 = opaque, satp = 0,
                # SIE = 0) once an interrupt is pending
                hart.state[L.WFI] = 1
                hart.pc = resume - 4  # the ecall return below adds 4
                hart.set_csr("mstatus", hart.csr("mstatus") & ~MSTATUS_SIE_MASK)
                hart.set_csr("satp", 0)
                hart.flush_tlb()
                return hart.hartid, opaque
            return Error.ERR_INVALID_PARAM, 0
        return Error.ERR_NOT_SUPPORTED, 0

    def _srst(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function != SrstFunction.SYSTEM_RESET:
            return Error.ERR_NOT_SUPPORTED, 0
        kind, reason = args[0] & 0xFFFFFFFF, args[1] & 0xFFFFFFFF
        # reason 0 none, 1 system failure, 0xF0000000 and up vendor-specific; the rest is
        # reserved and so are reset types 3..0xEFFFFFFF (SRST chapter)
        vendor = sbi.SRST_VENDOR_FIRST
        if SrstReason.SYSTEM_FAILURE < reason < vendor or SrstType.WARM_REBOOT < kind < vendor:
            return Error.ERR_INVALID_PARAM, 0
        if kind == SrstType.SHUTDOWN:
            if reason == SrstReason.NONE:
                self.platform.power_off(0, "SBI shutdown")
            else:
                self.platform.power_off(1, f"SBI shutdown (reason {reason})")
            return Error.SUCCESS, 0
        if kind in (SrstType.COLD_REBOOT, SrstType.WARM_REBOOT):
            self.platform.request_reset()
            return Error.SUCCESS, 0
        return Error.ERR_INVALID_PARAM, 0

    def _pmu(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        """Chapter 11 over the fixed counters: counter i is the CSR 0xC00 + i (cycle, time,
        instret), 64 bits wide.  They run free (rvh's mcountinhibit inhibits nothing), so
        start and stop track the state the spec defines and a start may set the value."""
        configured = self.pmu_configured.setdefault(hart.hartid, {})
        started = self.pmu_started.setdefault(hart.hartid, set())
        if function == PmuFunction.NUM_COUNTERS:
            return Error.SUCCESS, len(PMU_COUNTERS)
        if function == PmuFunction.COUNTER_GET_INFO:
            if args[0] >= len(PMU_COUNTERS):
                return Error.ERR_INVALID_PARAM, 0
            return Error.SUCCESS, PMU_COUNTERS[args[0]][0] | (63 << sbi.PMU_INFO_WIDTH_SHIFT)
        if function in (PmuFunction.COUNTER_FW_READ, PmuFunction.COUNTER_FW_READ_HI):
            return Error.ERR_INVALID_PARAM, 0  # no firmware counters
        if function not in (
            PmuFunction.COUNTER_CONFIG_MATCHING,
            PmuFunction.COUNTER_START,
            PmuFunction.COUNTER_STOP,
        ):
            return Error.ERR_NOT_SUPPORTED, 0
        base, mask, flags = args[0], args[1], args[2]
        counters = [base + bit for bit in range(64) if mask >> bit & 1]
        if not counters or counters[-1] >= len(PMU_COUNTERS):
            return Error.ERR_INVALID_PARAM, 0
        if function == PmuFunction.COUNTER_CONFIG_MATCHING:
            event = args[3]
            if flags & sbi.PMU_CONFIG_SKIP_MATCH:
                counter = counters[0]  # the caller says it is configured for the event
            else:
                free = [c for c in counters if c not in configured and PMU_COUNTERS[c][1] == event]
                if not free:
                    return Error.ERR_NOT_SUPPORTED, 0
                counter = free[0]
            configured[counter] = event
            if flags & sbi.PMU_CONFIG_CLEAR_VALUE:
                self._set_counter(hart, counter, 0)
            if flags & sbi.PMU_CONFIG_AUTO_START:
                started.add(counter)
            return Error.SUCCESS, counter
        if function == PmuFunction.COUNTER_START:
            if any(c not in configured for c in counters):
                return Error.ERR_INVALID_PARAM, 0
            if any(c in started for c in counters):
                return Error.ERR_ALREADY_STARTED, 0
            for counter in counters:
                if flags & sbi.PMU_START_SET_INIT_VALUE:
                    self._set_counter(hart, counter, args[3])
                started.add(counter)
            return Error.SUCCESS, 0
        if any(c not in configured for c in counters):
            return Error.ERR_INVALID_PARAM, 0
        if any(c not in started for c in counters):
            return Error.ERR_ALREADY_STOPPED, 0
        for counter in counters:
            started.discard(counter)
            if flags & sbi.PMU_STOP_RESET:
                del configured[counter]
        return Error.SUCCESS, 0

    @staticmethod
    def _set_counter(hart: Hart, counter: int, value: int) -> None:
        """Make the guest's cycle or instret read ``value`` now: the CSR's storage holds the
        offset from the emulator's own count (rvh.cpu.csr)."""
        csr, _ = PMU_COUNTERS[counter]
        if csr == CSR_CYCLE:
            hart.set_csr("mcycle", value - int(hart.state[L.CYCLE]))
        elif csr == CSR_INSTRET:
            hart.set_csr("minstret", value - int(hart.state[L.INSTRET]))

    def _dbcn(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function == DbcnFunction.CONSOLE_WRITE_BYTE:
            self.platform.console_write(bytes((args[0] & 0xFF,)))
            return Error.SUCCESS, 0
        if function not in (DbcnFunction.CONSOLE_WRITE, DbcnFunction.CONSOLE_READ):
            return Error.ERR_NOT_SUPPORTED, 0
        count, address = args[0], args[1] | (args[2] << 64)
        if address >> 64 or count > 1 << 20:
            return Error.ERR_INVALID_PARAM, 0
        try:
            if function == DbcnFunction.CONSOLE_WRITE:
                self.platform.console_write(self.platform.read_memory(address, count))
                return Error.SUCCESS, count
            data = self.platform.console_read(count)
            if data:
                self.platform.write_memory(address, data)
            return Error.SUCCESS, len(data)
        except BusFault:
            return Error.ERR_INVALID_PARAM, 0

    def _pvio(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        assert self.pvio is not None
        return self.pvio.call(function, args)

    # ---- legacy (SBI v0.1) -----------------------------------------------------------------
    def _legacy(self, hart: Hart, extension: int, args: list[int]) -> None:
        result = 0
        if extension == Extension.LEGACY_SET_TIMER:
            self._set_timer(hart, args[0])
        elif extension == Extension.LEGACY_CONSOLE_PUTCHAR:
            self.platform.console_write(bytes((args[0] & 0xFF,)))
        elif extension == Extension.LEGACY_CONSOLE_GETCHAR:
            data = self.platform.console_read(1)
            result = data[0] if data else -1
        elif extension == Extension.LEGACY_CLEAR_IPI:
            hart.set_csr("mip", hart.csr("mip") & ~MIP_SSIP_MASK)
        elif extension in (
            Extension.LEGACY_SEND_IPI,
            Extension.LEGACY_REMOTE_FENCE_I,
            Extension.LEGACY_REMOTE_SFENCE_VMA,
            Extension.LEGACY_REMOTE_SFENCE_VMA_ASID,
        ):
            mask = self._legacy_mask(args[0])
            targets = [h for h in self.platform.harts if mask >> h.hartid & 1]
            for target in targets:
                if extension == Extension.LEGACY_SEND_IPI:
                    target.set_csr("mip", target.csr("mip") | MIP_SSIP_MASK)
                elif extension != Extension.LEGACY_REMOTE_FENCE_I:
                    target.flush_tlb()
        elif extension == Extension.LEGACY_SHUTDOWN:
            self.platform.power_off(0, "SBI legacy shutdown")
        hart.set_x(10, result)
        hart.pc = hart.pc + 4

    def _legacy_mask(self, pointer: int) -> int:
        """v0.1 calls pass a pointer to the hart mask; 0 means every hart."""
        if pointer == 0:
            return MASK64
        try:
            return int.from_bytes(self.platform.read_memory(pointer, 8), "little")
        except BusFault:
            return 0

    def statistics(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "by_extension": {f"{k:#x}": v for k, v in self.by_extension.items()},
        }

"""The built-in SBI: M-mode firmware implemented by the emulator (SBI specification v2.0).

With ``rvh run --sbi PAYLOAD`` there is no M-mode code at all.  The boot recipe
(:class:`rvh.boot.BuiltinSbiBoot`) has :meth:`BuiltinSbi.prepare_hart` start the payload in
S-mode the way firmware would (a0 = hartid, a1 = device tree; traps and interrupts delegated,
counters and the Sstc timer enabled, one PMP entry opening all memory), and the kernel hands every
trap that would enter M-mode to :meth:`BuiltinSbi.handle` (``Exit.FIRMWARE``).  An ``ecall`` from
S-mode is an SBI call: a7 = extension, a6 = function, a0..a5 arguments; the result goes back in
a0 (error) and a1 (value) and the payload continues after the ecall.

Implemented: BASE, TIME, IPI, RFENCE, HSM, SRST, DBCN and the legacy extensions (set_timer,
console putchar/getchar, clear/send IPI, remote fences, shutdown).  The timer uses Sstc: set_timer
writes stimecmp, so the timer interrupt is raised by the hart itself (no M-mode round trip).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from rvh import __version__
from rvh.bus import BusFault
from rvh.cpu import layout as L
from rvh.cpu.hart import Hart
from rvh.errors import GuestError
from rvh.isa.csrs import ENVCFG_STCE, IP_SSIP, IP_STIP, MSTATUS_SIE

SPEC_VERSION = (2 << 24) | 0  # 2.0
IMPLEMENTATION_ID = 0x7276  # "rv": not a registered id (those are 0..11)
IMPLEMENTATION_VERSION = int(__version__.split(".")[0]) << 16 | int(__version__.split(".")[1])

SUCCESS = 0
ERR_FAILED = -1
ERR_NOT_SUPPORTED = -2
ERR_INVALID_PARAM = -3
ERR_DENIED = -4
ERR_INVALID_ADDRESS = -5
ERR_ALREADY_AVAILABLE = -6
ERR_ALREADY_STARTED = -7
ERR_ALREADY_STOPPED = -8

EXT_BASE = 0x10
EXT_TIME = 0x54494D45
EXT_IPI = 0x735049
EXT_RFENCE = 0x52464E43
EXT_HSM = 0x48534D
EXT_SRST = 0x53525354
EXT_DBCN = 0x4442434E
LEGACY_SET_TIMER = 0x00
LEGACY_PUTCHAR = 0x01
LEGACY_GETCHAR = 0x02
LEGACY_CLEAR_IPI = 0x03
LEGACY_SEND_IPI = 0x04
LEGACY_REMOTE_FENCE_I = 0x05
LEGACY_REMOTE_SFENCE_VMA = 0x06
LEGACY_REMOTE_SFENCE_VMA_ASID = 0x07
LEGACY_SHUTDOWN = 0x08

HSM_STARTED = 0
HSM_STOPPED = 1
HSM_SUSPENDED = 4

ECALL_FROM_S = 9
ECALL_FROM_VS = 10

MASK64 = (1 << 64) - 1

# Traps the firmware leaves to S-mode: every exception S-mode can take, except its own ecall
# (bits 0-8, 12, 13, 15; with H also the VS ecall and guest faults).
MEDELEG = 0xB1FF
MEDELEG_H = MEDELEG | (1 << 10) | (0xF << 20)
MIDELEG = (1 << 1) | (1 << 5) | (1 << 9)


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


def _signed(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


class BuiltinSbi:
    def __init__(self, platform: SbiPlatform) -> None:
        self.platform = platform
        self.calls = 0
        self.by_extension: dict[int, int] = {}
        self.handlers: dict[int, Callable[[Hart, int, list[int]], tuple[int, int]]] = {
            EXT_BASE: self._base,
            EXT_TIME: self._time,
            EXT_IPI: self._ipi,
            EXT_RFENCE: self._rfence,
            EXT_HSM: self._hsm,
            EXT_SRST: self._srst,
            EXT_DBCN: self._dbcn,
        }

    # ---- booting ---------------------------------------------------------------------------
    def prepare_hart(self, hart: Hart, start: int | None, opaque: int) -> None:
        """Put a hart in the state the SBI promises S-mode software: S-mode at ``start`` with
        a0 = hartid, a1 = opaque (the device tree for the boot hart), satp = 0, SIE = 0; or
        stopped (HSM STOPPED) when start is None."""
        state = hart.state
        hart.reset(start or 0)
        has_h = self.platform.has_hypervisor
        hart.set_csr("medeleg", MEDELEG_H if has_h else MEDELEG)
        hart.set_csr("mideleg", MIDELEG | ((0x1444) if has_h else 0))
        hart.set_csr("mcounteren", 0x7)  # cycle, time, instret; TM also opens stimecmp
        hart.set_csr("menvcfg", ENVCFG_STCE)  # Sstc: the timer needs no M-mode help
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
        if cause in (ECALL_FROM_S, ECALL_FROM_VS):
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
        if extension <= LEGACY_SHUTDOWN:
            self._legacy(hart, extension, args)
            return
        handler = self.handlers.get(extension)
        if handler is None:
            error, value = ERR_NOT_SUPPORTED, 0
        else:
            error, value = handler(hart, function, args)
        if hart.state[L.HALTED] and extension == EXT_HSM:
            return  # hart_stop: this hart does not return
        hart.set_x(10, error)
        hart.set_x(11, value)
        hart.pc = hart.pc + 4

    # ---- extensions ------------------------------------------------------------------------
    def _base(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function == 0:
            return SUCCESS, SPEC_VERSION
        if function == 1:
            return SUCCESS, IMPLEMENTATION_ID
        if function == 2:
            return SUCCESS, IMPLEMENTATION_VERSION
        if function == 3:
            probed = args[0]
            legacy = probed <= LEGACY_SHUTDOWN
            return SUCCESS, 1 if (probed in self.handlers or legacy) else 0
        if function in (4, 5, 6):  # mvendorid, marchid, mimpid
            return SUCCESS, hart.csr(("mvendorid", "marchid", "mimpid")[function - 4])
        return ERR_NOT_SUPPORTED, 0

    def _time(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function != 0:
            return ERR_NOT_SUPPORTED, 0
        self._set_timer(hart, args[0])
        return SUCCESS, 0

    def _set_timer(self, hart: Hart, when: int) -> None:
        hart.set_csr("stimecmp", when)
        # the spec: set_timer clears the pending timer interrupt (Sstc re-raises it if due)
        hart.set_csr("mip", hart.csr("mip") & ~IP_STIP)

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
        if function != 0:
            return ERR_NOT_SUPPORTED, 0
        targets = self._targets(args[0], args[1])
        if targets is None:
            return ERR_INVALID_PARAM, 0
        for target in targets:
            target.set_csr("mip", target.csr("mip") | IP_SSIP)
        return SUCCESS, 0

    def _rfence(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function > 6:
            return ERR_NOT_SUPPORTED, 0
        targets = self._targets(args[0], args[1])
        if targets is None:
            return ERR_INVALID_PARAM, 0
        if function >= 3 and not self.platform.has_hypervisor:
            return ERR_NOT_SUPPORTED, 0  # HFENCE variants need the H extension
        if function != 0:  # remote_fence_i needs nothing: the decode cache follows stores
            for target in targets:
                target.flush_tlb()
        return SUCCESS, 0

    def _hsm(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        harts = self.platform.harts
        if function == 0:  # hart_start(hartid, start_addr, opaque)
            hartid, start, opaque = args[0], args[1], args[2]
            if hartid >= len(harts):
                return ERR_INVALID_PARAM, 0
            target = harts[hartid]
            if not target.state[L.HALTED]:
                return ERR_ALREADY_AVAILABLE, 0
            if not self.platform.is_memory(start, 2):
                return ERR_INVALID_ADDRESS, 0
            self.prepare_hart(target, start, opaque)
            target.state[L.TIME_NS] = hart.state[L.TIME_NS]
            return SUCCESS, 0
        if function == 1:  # hart_stop
            hart.state[L.HALTED] = 1
            return SUCCESS, 0
        if function == 2:  # hart_get_status(hartid)
            hartid = args[0]
            if hartid >= len(harts):
                return ERR_INVALID_PARAM, 0
            target = harts[hartid]
            if target.state[L.HALTED]:
                return SUCCESS, HSM_STOPPED
            return SUCCESS, HSM_STARTED
        if function == 3:  # hart_suspend(type, resume_addr, opaque)
            kind, resume, opaque = args[0] & 0xFFFFFFFF, args[1], args[2]
            if kind == 0:
                hart.state[L.WFI] = 1  # retentive: like wfi, returns 0 once woken
                return SUCCESS, 0
            if kind == 0x80000000:
                if not self.platform.is_memory(resume, 2):
                    return ERR_INVALID_ADDRESS, 0
                # non-retentive: resume at resume_addr (a0 = hartid, a1 = opaque, satp = 0,
                # SIE = 0) once an interrupt is pending
                hart.state[L.WFI] = 1
                hart.pc = resume - 4  # the ecall return below adds 4
                hart.set_csr("mstatus", hart.csr("mstatus") & ~MSTATUS_SIE)
                hart.set_csr("satp", 0)
                hart.flush_tlb()
                return hart.hartid, opaque
            return ERR_INVALID_PARAM, 0
        return ERR_NOT_SUPPORTED, 0

    def _srst(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function != 0:
            return ERR_NOT_SUPPORTED, 0
        kind, reason = args[0] & 0xFFFFFFFF, args[1] & 0xFFFFFFFF
        # reason 0 none, 1 system failure, 0xF0000000 and up vendor-specific; the rest is
        # reserved and so are reset types 3..0xEFFFFFFF (SRST chapter)
        if 2 <= reason < 0xF0000000 or 3 <= kind < 0xF0000000:
            return ERR_INVALID_PARAM, 0
        if kind == 0:
            status = 0 if reason == 0 else 1
            self.platform.power_off(
                status, "SBI shutdown" + ("" if reason == 0 else f" (reason {reason})")
            )
            return SUCCESS, 0
        if kind in (1, 2):
            self.platform.request_reset()
            return SUCCESS, 0
        return ERR_INVALID_PARAM, 0

    def _dbcn(self, hart: Hart, function: int, args: list[int]) -> tuple[int, int]:
        if function == 2:
            self.platform.console_write(bytes((args[0] & 0xFF,)))
            return SUCCESS, 0
        if function not in (0, 1):
            return ERR_NOT_SUPPORTED, 0
        count, address = args[0], args[1] | (args[2] << 64)
        if address >> 64 or count > 1 << 20:
            return ERR_INVALID_PARAM, 0
        try:
            if function == 0:
                self.platform.console_write(self.platform.read_memory(address, count))
                return SUCCESS, count
            data = self.platform.console_read(count)
            if data:
                self.platform.write_memory(address, data)
            return SUCCESS, len(data)
        except BusFault:
            return ERR_INVALID_PARAM, 0

    # ---- legacy (SBI v0.1) -----------------------------------------------------------------
    def _legacy(self, hart: Hart, extension: int, args: list[int]) -> None:
        result = 0
        if extension == LEGACY_SET_TIMER:
            self._set_timer(hart, args[0])
        elif extension == LEGACY_PUTCHAR:
            self.platform.console_write(bytes((args[0] & 0xFF,)))
        elif extension == LEGACY_GETCHAR:
            data = self.platform.console_read(1)
            result = data[0] if data else -1
        elif extension == LEGACY_CLEAR_IPI:
            hart.set_csr("mip", hart.csr("mip") & ~IP_SSIP)
        elif extension in (
            LEGACY_SEND_IPI,
            LEGACY_REMOTE_FENCE_I,
            LEGACY_REMOTE_SFENCE_VMA,
            LEGACY_REMOTE_SFENCE_VMA_ASID,
        ):
            mask = self._legacy_mask(args[0])
            targets = [h for h in self.platform.harts if mask >> h.hartid & 1]
            for target in targets:
                if extension == LEGACY_SEND_IPI:
                    target.set_csr("mip", target.csr("mip") | IP_SSIP)
                elif extension != LEGACY_REMOTE_FENCE_I:
                    target.flush_tlb()
        elif extension == LEGACY_SHUTDOWN:
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

"""A hart as Python sees it: its state and TLB arrays, reset, and one call into the kernel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rvh.cpu import layout as L
from rvh.cpu.core import run
from rvh.cpu.exits import Exit
from rvh.cpu.mmu import reset_banks
from rvh.cpu.triggers import TDATA1_RESET
from rvh.isa.csrs import MSTATUS_XLEN64, csr_number

if TYPE_CHECKING:
    from rvh.tier.engine import Tier

# while the tier's worker compiles, or baseline code may get hot enough to be compiled, the
# kernel returns this often (to install what the worker finished, to look at the counts)
TIER_POLL_INSTRUCTIONS = 1_000_000


class Hart:
    """One RISC-V hart: ``state`` and ``tlb`` are its own, the rest is the machine's."""

    def __init__(
        self,
        hartid: int,
        machine: np.ndarray,
        tables: np.ndarray,
        memory: np.ndarray,
        page_flags: np.ndarray,
        decode_cache: np.ndarray,
    ) -> None:
        self.hartid = hartid
        self.machine = machine
        self.tables = tables
        self.memory = memory
        self.page_flags = page_flags
        self.decode_cache = decode_cache
        self.state = np.zeros(L.STATE_SIZE, dtype=np.int64)
        self.tlb = np.zeros(L.TLB_ALL_CONTEXTS * L.TLB_SETS * L.TLB_FIELDS, dtype=np.int64)
        self.trace: np.ndarray | None = None
        self.tier: Tier | None = None  # the translating tier (--tier jit), shared by the harts
        self.reset(0x1000)

    def reset(self, pc: int) -> None:
        """Architectural reset (privileged spec 3.4): M-mode, MIE = 0, misa as configured."""
        state = self.state
        state[:] = 0
        state[L.PC] = pc
        state[L.PRIV] = L.PRIV_M
        state[L.HARTID] = self.hartid
        state[L.RESERVATION] = -1
        state[L.TRACE_CSR] = -1
        state[L.CSR_BASE + csr_number("mstatus")] = MSTATUS_XLEN64
        state[L.CSR_BASE + csr_number("hstatus")] = 2 << 32  # VSXL = 64
        state[L.CSR_BASE + csr_number("vsstatus")] = 2 << 32  # UXL = 64
        state[L.TRIGGER_TDATA1 : L.TRIGGER_TDATA1 + L.TRIGGERS] = TDATA1_RESET  # match nothing
        self.flush_tlb()

    def flush_tlb(self) -> None:
        """Empty every TLB bank and re-select banks for the current satp/vsatp/hgatp."""
        entries = self.tlb.reshape(L.TLB_ALL_CONTEXTS, L.TLB_SETS, L.TLB_FIELDS)
        entries[:, :, :] = 0
        entries[:, :, L.TLB_TAG_READ : L.TLB_TAG_EXEC + 1] = L.TLB_INVALID
        entries[:, :, L.TLB_VPAGE] = -1
        entries[:, :, L.TLB_PADDR] = -1
        reset_banks(self.state, self.tlb)

    def run(self, budget: int) -> Exit:
        """Run up to ``budget`` instructions (see ``core.run``).  With the translating tier,
        the kernel also returns early when it found hot blocks, and runs in short pieces
        while the worker thread compiles, so that compiled blocks are installed soon; the
        call goes on until the budget or a real exit, so callers see one call as without the
        tier (a kernel call can end anywhere without changing results: rvh/cpu/core.py)."""
        jit = self.tier.jit if self.tier is not None and self.trace is None else None
        while True:
            start = int(self.state[L.TIME_NS])
            piece = budget
            if self.tier is not None and self.tier.polling:
                piece = min(budget, TIER_POLL_INSTRUCTIONS)
            reason = run(
                self.state,
                self.machine,
                self.tables,
                self.memory,
                self.page_flags,
                self.tlb,
                self.decode_cache,
                piece,
                self.trace,
                jit,
            )
            if self.tier is None:
                return Exit(reason)
            hot = self.tier.pending()
            self.tier.service(int(self.state[L.TIME_NS]))
            used = int(self.state[L.TIME_NS]) - start
            if not ((hot or piece < budget) and reason == Exit.BUDGET and used < budget):
                return Exit(reason)
            budget -= used

    # -- convenient views --------------------------------------------------------------------
    @property
    def pc(self) -> int:
        return int(self.state[L.PC])

    @pc.setter
    def pc(self, value: int) -> None:
        self.state[L.PC] = _signed(value)

    @property
    def mode(self) -> str:
        """The privilege mode by name: M, HS (S with no V), U, VS or VU."""
        return _MODE_NAMES.get((int(self.state[L.PRIV]), int(self.state[L.VIRT])), "?")

    def x(self, index: int) -> int:
        """Register value as an unsigned 64-bit integer."""
        return int(self.state[L.X + index]) & (2**64 - 1)

    def set_x(self, index: int, value: int) -> None:
        if index:
            self.state[L.X + index] = _signed(value)

    def csr(self, name_or_number: str | int) -> int:
        """Raw CSR storage: views such as sstatus are not computed here, and mcycle/minstret
        hold the guest's offset from the emulator's counts (see ``rvh.cpu.csr``)."""
        number = csr_number(name_or_number) if isinstance(name_or_number, str) else name_or_number
        return int(self.state[L.CSR_BASE + number]) & (2**64 - 1)

    def set_csr(self, name_or_number: str | int, value: int) -> None:
        number = csr_number(name_or_number) if isinstance(name_or_number, str) else name_or_number
        self.state[L.CSR_BASE + number] = _signed(value)

    @property
    def instret(self) -> int:
        """Instructions retired (the emulator's count; the guest's minstret may differ)."""
        return int(self.state[L.INSTRET])

    def retired_by_level(self) -> dict[str, int]:
        """Instructions retired in each privilege level (M, HS, VS, VU, U); they add up to
        ``instret``.  What the kernel has not credited yet (the firmware's retired ecalls,
        Python's own changes of INSTRET) belongs to the level the hart is in now."""
        state = self.state
        counts = [int(state[L.RETIRED_BY_LEVEL + level]) for level in range(len(L.LEVEL_NAMES))]
        counts[_LEVELS[(int(state[L.PRIV]), int(state[L.VIRT]))]] += int(
            state[L.INSTRET] - state[L.LEVEL_MARK]
        )
        return dict(zip(L.LEVEL_NAMES, counts, strict=True))

    def hypervisor_by_vmid(self) -> dict[int, int]:
        """HS-mode instructions by the VMID of the VM whose exit they handled (0: before any
        VM ran); the last slot also holds every larger VMID.  They add up to the HS level of
        ``retired_by_level`` (what is not credited yet goes as there)."""
        state = self.state
        counts = [int(state[L.HS_BY_VMID + vmid]) for vmid in range(L.HS_VMID_SLOTS)]
        if _LEVELS[(int(state[L.PRIV]), int(state[L.VIRT]))] == L.LEVEL_HS:
            slot = min(int(state[L.EXIT_VMID]), L.HS_VMID_SLOTS - 1)
            counts[slot] += int(state[L.INSTRET] - state[L.LEVEL_MARK])
        return {vmid: count for vmid, count in enumerate(counts) if count}

    @property
    def steps(self) -> int:
        """Instructions executed: retired ones plus those that raised an exception."""
        return int(self.state[L.INSTRET]) + int(self.state[L.EXCEPTIONS])


_MODE_NAMES = {
    (L.PRIV_M, 0): "M",
    (L.PRIV_S, 0): "HS",
    (L.PRIV_U, 0): "U",
    (L.PRIV_S, 1): "VS",
    (L.PRIV_U, 1): "VU",
}


_LEVELS = {
    (L.PRIV_M, 0): L.LEVEL_M,
    (L.PRIV_M, 1): L.LEVEL_M,
    (L.PRIV_S, 0): L.LEVEL_HS,
    (L.PRIV_U, 0): L.LEVEL_U,
    (L.PRIV_S, 1): L.LEVEL_VS,
    (L.PRIV_U, 1): L.LEVEL_VU,
}


def _signed(value: int) -> int:
    value &= 2**64 - 1
    return value - 2**64 if value >> 63 else value

"""Platform-Level Interrupt Controller (RISC-V PLIC specification 1.0.0, SiFive layout as on
QEMU's virt board).

Two contexts per hart: 2*h is the hart's M-mode external interrupt (MEIP), 2*h+1 its S-mode one
(SEIP).  Every source here is level-triggered (the UART, virtio): the gateway sets the pending
bit while the line is high and the source is not being served; a claim takes the highest
priority pending and enabled source above the context's threshold (ties go to the lowest ID),
clears its pending bit and marks it in service; the completion ends the service, and a line
still high makes the source pending again.  The context's interrupt output (MEIP/SEIP) is
written to the machine array the kernel samples.

Register map (offsets from the base): priority 4*source; pending bits 0x1000; enable bits
0x2000 + 0x80*context; threshold 0x20_0000 + 0x1000*context; claim/complete at +4 from it.
"""

from __future__ import annotations

import numpy as np

from rvh.bus import BusFault
from rvh.cpu import layout as L
from rvh.isa.csrs import IP_MEIP, IP_SEIP

PRIORITY_BASE = 0x0
PENDING_BASE = 0x1000
ENABLE_BASE = 0x2000
ENABLE_STRIDE = 0x80
CONTEXT_BASE = 0x200000
CONTEXT_STRIDE = 0x1000
THRESHOLD = 0x0
CLAIM_COMPLETE = 0x4

SOURCES = 96  # ids 1..96 (id 0 means "no interrupt"); riscv,ndev = 0x60 as QEMU 7.2
PRIORITY_MASK = 7  # 3 priority bits, as QEMU's virt board


class Plic:
    name = "plic"

    def __init__(self, harts: int, machine: np.ndarray) -> None:
        self.harts = harts
        self.contexts = 2 * harts
        self.machine = machine
        self.priority = [0] * (SOURCES + 1)
        self.level = [False] * (SOURCES + 1)
        self.pending = [False] * (SOURCES + 1)
        self.in_service = [False] * (SOURCES + 1)
        self.enable = [[False] * (SOURCES + 1) for _ in range(self.contexts)]
        self.threshold = [0] * self.contexts
        self.claims = 0

    # -- device side ------------------------------------------------------------------------
    def set_level(self, source: int, level: bool) -> None:
        """An interrupt line changed (called by devices)."""
        if not 1 <= source <= SOURCES:
            raise ValueError(f"PLIC source {source} out of range")
        self.level[source] = level
        if level and not self.in_service[source]:
            self.pending[source] = True
        self._update()

    # -- registers ----------------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        if size != 4:
            raise BusFault("PLIC registers are 32-bit")
        if offset < PENDING_BASE:
            source = offset // 4
            return self.priority[source] if source <= SOURCES else 0
        if offset < ENABLE_BASE:
            return self._bits(self.pending, offset - PENDING_BASE)
        if offset < CONTEXT_BASE:
            context, word = divmod(offset - ENABLE_BASE, ENABLE_STRIDE)
            if context >= self.contexts:
                return 0
            return self._bits(self.enable[context], word)
        context, register = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
        if context >= self.contexts:
            return 0
        if register == THRESHOLD:
            return self.threshold[context]
        if register == CLAIM_COMPLETE:
            return self._claim(context)
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        if size != 4:
            raise BusFault("PLIC registers are 32-bit")
        if offset < PENDING_BASE:
            source = offset // 4
            if 1 <= source <= SOURCES:
                self.priority[source] = value & PRIORITY_MASK
        elif offset < ENABLE_BASE:
            return  # pending bits are read-only
        elif offset < CONTEXT_BASE:
            context, word = divmod(offset - ENABLE_BASE, ENABLE_STRIDE)
            if context < self.contexts and word * 4 < (SOURCES + 1 + 31) // 32 * 4:
                for bit in range(32):
                    source = (word // 4) * 32 + bit
                    if 1 <= source <= SOURCES:
                        self.enable[context][source] = bool((value >> bit) & 1)
        else:
            context, register = divmod(offset - CONTEXT_BASE, CONTEXT_STRIDE)
            if context >= self.contexts:
                return
            if register == THRESHOLD:
                self.threshold[context] = value & PRIORITY_MASK
            elif register == CLAIM_COMPLETE:
                self._complete(context, value)
        self._update()

    # -- internals ----------------------------------------------------------------------------
    def _bits(self, flags: list[bool], byte_offset: int) -> int:
        first = (byte_offset // 4) * 32
        value = 0
        for bit in range(32):
            source = first + bit
            if source <= SOURCES and flags[source]:
                value |= 1 << bit
        return value

    def _best(self, context: int) -> int:
        best, best_priority = 0, self.threshold[context]
        enabled = self.enable[context]
        for source in range(1, SOURCES + 1):
            if self.pending[source] and enabled[source] and self.priority[source] > best_priority:
                best, best_priority = source, self.priority[source]
        return best

    def _claim(self, context: int) -> int:
        source = self._best(context)
        if source:
            self.pending[source] = False
            self.in_service[source] = True
            self.claims += 1
        self._update()
        return source

    def _complete(self, context: int, source: int) -> None:
        if not 1 <= source <= SOURCES or not self.enable[context][source]:
            return  # the spec ignores completions of sources not enabled for the context
        self.in_service[source] = False
        if self.level[source]:
            self.pending[source] = True

    def _update(self) -> None:
        for hart in range(self.harts):
            bits = 0
            if self._best(2 * hart):
                bits |= IP_MEIP
            if self._best(2 * hart + 1):
                bits |= IP_SEIP
            self.machine[L.M_EXT_IP + hart] = bits

    # -- VM files (rvh/snapshot.py) ------------------------------------------------------------
    def save_state(self) -> dict[str, object]:
        return {
            "priority": self.priority,
            "level": self.level,
            "pending": self.pending,
            "in_service": self.in_service,
            "enable": self.enable,
            "threshold": self.threshold,
            "claims": self.claims,
        }

    def restore_state(self, saved: dict) -> None:
        def flags(values: list) -> list[bool]:
            if len(values) != SOURCES + 1:
                raise ValueError(f"PLIC state has {len(values)} sources, not {SOURCES + 1}")
            return [bool(value) for value in values]

        priority = [int(value) & PRIORITY_MASK for value in saved["priority"]]
        enable = [flags(row) for row in saved["enable"]]
        threshold = [int(value) & PRIORITY_MASK for value in saved["threshold"]]
        if len(priority) != SOURCES + 1 or len(enable) != self.contexts:
            raise ValueError("PLIC state does not match this board")
        if len(threshold) != self.contexts:
            raise ValueError("PLIC state does not match this board")
        self.priority = priority
        self.level = flags(saved["level"])
        self.pending = flags(saved["pending"])
        self.in_service = flags(saved["in_service"])
        self.enable = enable
        self.threshold = threshold
        self.claims = int(saved["claims"])
        self._update()

    def statistics(self) -> dict[str, int]:
        return {"claims": self.claims}

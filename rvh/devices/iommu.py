"""A RISC-V IOMMU (the ratified RISC-V IOMMU Architecture Specification, version 1.0): the subset
a hypervisor needs to assign a virtio device to a VM.

What it implements, by the spec's chapters:

- Registers (chapter 6): ``capabilities`` (version 1.0, Sv39x4 G-stage, wired interrupts,
  56-bit physical addresses), ``fctrl`` (WSI fixed at 1), ``ddtp`` (Off, Bare, 1LVL, 2LVL,
  3LVL; never busy), the command queue (``cqb``, ``cqh``, ``cqt``, ``cqcsr``), the fault queue
  (``fqb``, ``fqh``, ``fqt``, ``fqcsr``), ``ipsr`` and ``icvec``.  The page-request queue, the
  performance monitor, the debug interface and MSI generation are absent (their capabilities
  read 0; their registers read 0 and ignore writes).
- Device directory table (3.1): the base format (32-byte device contexts, capabilities.MSI_FLAT
  is 0), device_id split DDI[0] = bits 6:0, DDI[1] = 15:7, DDI[2] = 23:16.
- Device contexts (3.1.3): ``tc.V`` and ``tc.DTF``, ``iohgatp`` Bare or Sv39x4 with its GSCID,
  ``fsc`` Bare only (no first stage: capabilities.Sv39 is 0), so the device's address is a
  guest-physical address translated by the G-stage table (the privileged spec's Sv39x4, which
  a hypervisor shares with its VM's hgatp).  Everything else in a context is reserved here and
  makes it misconfigured (cause 259).
- Commands (4.1): IODIR.INVAL_DDT and .INVAL_PDT, IOTINVAL.GVMA and .VMA, IOFENCE.C (with its
  write of DATA to ADDR and the WSI interrupt).  Anything else sets ``cqcsr.cmd_ill`` and stops
  the queue until software clears it; a queue in memory that cannot be read sets ``cqmf``.
- Faults (4.2): one 32-byte record per faulting transaction (cause, TTYP, device_id, iotval =
  the address, iotval2 = the guest-physical address for guest-page faults), ``fqof`` when the
  queue is full, ``fqmf`` when it cannot be written; ``ipsr.fip`` and the wired interrupt of
  ``icvec.fiv``.

The IOMMU caches device contexts and G-stage translations (as hardware does) until software
invalidates them with IODIR and IOTINVAL.GVMA, so the commands matter.  Devices call
:meth:`Iommu.translate`: it returns the system-physical address or records the fault and raises
:class:`IommuFault`, so a DMA the IOMMU refuses never reaches memory.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from rvh.bus import Bus, BusFault

IOMMU_SIZE = 0x1000
VERSION = 0x10  # 1.0

# capabilities (6.3)
CAP_SV39X4 = 1 << 17
CAP_IGS_WSI = 1 << 28  # IGS = 1: wired interrupts only
CAP_PAS_SHIFT = 32
PHYSICAL_ADDRESS_BITS = 56
CAPABILITIES = VERSION | CAP_SV39X4 | CAP_IGS_WSI | PHYSICAL_ADDRESS_BITS << CAP_PAS_SHIFT
FCTL_WSI = 1 << 1

# register offsets (6.1)
CAPABILITIES_OFFSET = 0x00
FCTL = 0x08
DDTP = 0x10
CQB = 0x18
CQH = 0x20
CQT = 0x24
FQB = 0x28
FQH = 0x30
FQT = 0x34
CQCSR = 0x48
FQCSR = 0x4C
IPSR = 0x54
ICVEC = 0x2F8

# ddtp.iommu_mode
MODE_OFF, MODE_BARE, MODE_1LVL, MODE_2LVL, MODE_3LVL = 0, 1, 2, 3, 4
PPN_SHIFT = 10  # ddtp, cqb, fqb: PPN in bits 53:10
PPN_MASK = (1 << 44) - 1

# cqcsr / fqcsr / ipsr bits
CQEN, CIE, CQMF, CMD_TO, CMD_ILL, FENCE_W_IP, CQON = 1, 2, 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 16
FQEN, FIE, FQMF, FQOF, FQON = 1, 2, 1 << 8, 1 << 9, 1 << 16
IPSR_CIP, IPSR_FIP = 1, 2

# commands (4.1): opcode, func3
OP_IOTINVAL, OP_IOFENCE, OP_IODIR = 1, 2, 3
IOTINVAL_VMA, IOTINVAL_GVMA = 0, 1
IOFENCE_C = 0
IODIR_INVAL_DDT, IODIR_INVAL_PDT = 0, 1

# device context (3.1.3)
TC_V = 1
TC_DTF = 1 << 4
TC_SUPPORTED = TC_V | TC_DTF
IOHGATP_BARE, IOHGATP_SV39X4 = 0, 8
CONTEXT_SIZE = 32

# fault causes (4.2, table 11) and transaction types
CAUSE_READ_ACCESS = 5
CAUSE_WRITE_ACCESS = 7
CAUSE_READ_GUEST_PAGE = 21
CAUSE_WRITE_GUEST_PAGE = 23
CAUSE_ALL_DISALLOWED = 256
CAUSE_DDT_LOAD_ACCESS = 257
CAUSE_DDT_INVALID = 258
CAUSE_DDT_MISCONFIGURED = 259
CAUSE_TRANSACTION_DISALLOWED = 260
TTYP_READ, TTYP_WRITE = 2, 3  # untranslated read, untranslated write/AMO
# faults DTF suppresses: those of the translation itself, not of the directory (table 11)
DTF_SUPPRESSES = {1, 4, 5, 6, 7, 12, 13, 15, 20, 21, 23, 261, 262, 263, 264, 265, 266, 267}

# Sv39x4 PTE bits (privileged spec 4.3.1, 8.5)
PTE_V, PTE_R, PTE_W, PTE_X, PTE_U, PTE_A, PTE_D = 1, 2, 4, 8, 16, 64, 128
PAGE = 4096
# The devices' fast path (GuestMemory.host) looks translations up per 2 MiB granule of the
# device's address space: one dict lookup per buffer when the G-stage maps RAM with megapages
GRANULE_SHIFT = 21


class GranuleCache:
    """One device's granule cache (see :meth:`Iommu.granules_of`): 2 MiB granule of the device's
    address space -> host offset minus device address, one dict for reads and one for writes,
    and the translations served from it.

    Beside the dicts, one window per direction: the run of adjacent granules, grown as they are
    remembered, that share one offset ([read_low, read_high) + read_delta).  A VM's RAM is one
    such run (its G-stage maps it in order), so a device's buffer costs two comparisons, as
    without an IOMMU, instead of a dict lookup.  Every granule in a window is in its dict."""

    __slots__ = (
        "readable", "writable", "hits",
        "read_low", "read_high", "read_delta", "write_low", "write_high", "write_delta",
    )  # fmt: skip

    def __init__(self) -> None:
        self.readable: dict[int, int] = {}
        self.writable: dict[int, int] = {}
        self.hits = 0
        self.clear()

    def clear(self) -> None:
        self.readable.clear()
        self.writable.clear()
        # empty windows: no range lies inside [0, 0)
        self.read_low = self.read_high = self.read_delta = 0
        self.write_low = self.write_high = self.write_delta = 0

    def remember(self, granule: int, delta: int, writable: bool) -> None:
        """Granule number ``granule`` maps to host offset ``address + delta`` (for writes too
        when ``writable``)."""
        self.readable[granule] = delta
        start, end = granule << GRANULE_SHIFT, (granule + 1) << GRANULE_SHIFT
        self.read_low, self.read_high, self.read_delta = _grown(
            self.read_low, self.read_high, self.read_delta, start, end, delta
        )
        if writable:
            self.writable[granule] = delta
            self.write_low, self.write_high, self.write_delta = _grown(
                self.write_low, self.write_high, self.write_delta, start, end, delta
            )


def _grown(low: int, high: int, delta: int, start: int, end: int, new: int) -> tuple[int, int, int]:
    """A window [low, high) with ``delta`` after granule [start, end) with ``new`` joins it: the
    granule alone if the window was empty, the window grown if they touch with one offset."""
    if high <= low:
        return start, end, new
    if new == delta and start == high:
        return low, end, delta
    if new == delta and end == low:
        return start, high, delta
    return low, high, delta


class IommuFault(Exception):
    """The IOMMU refused a device's memory access (and recorded why, unless DTF)."""

    def __init__(self, cause: int, address: int) -> None:
        super().__init__(f"IOMMU fault {cause} at {address:#x}")
        self.cause = cause
        self.address = address


@dataclass(frozen=True, slots=True)
class DeviceContext:
    tc: int
    iohgatp: int
    ta: int
    fsc: int

    @property
    def gscid(self) -> int:
        return (self.iohgatp >> 44) & 0xFFFF

    @property
    def g_mode(self) -> int:
        return self.iohgatp >> 60

    @property
    def g_root(self) -> int:
        return (self.iohgatp & PPN_MASK) * PAGE


class Iommu:
    """The IOMMU's registers (a bus device) and the translation devices call."""

    name = "iommu"

    def __init__(
        self,
        bus: Bus,
        irq: Callable[[int, bool], None] | None = None,
        log: Callable[[str], None] | None = None,
        reset_mode: int = MODE_BARE,
    ) -> None:
        self.bus = bus
        self.irq = irq or (lambda vector, level: None)
        self.log = log or (lambda message: None)
        # Reset: ddtp.iommu_mode Off or Bare (6.2); Bare lets a machine without a hypervisor
        # that programs the IOMMU do DMA as if it were not there.
        self.ddtp = reset_mode
        self.cqb = self.cqh = self.cqt = self.cqcsr = 0
        self.fqb = self.fqh = self.fqt = self.fqcsr = 0
        self.ipsr = 0
        self.icvec = 0
        self.contexts: dict[int, DeviceContext] = {}  # the device-context cache
        # G-stage leaves: (gscid, level, gpa >> (12 + 9 * level)) -> (pte, system-physical base)
        self.iotlb: dict[tuple[int, int, int], tuple[int, int]] = {}
        # per device, the last leaf it used when all of it is RAM: (gpa base, gpa end, spa base,
        # writable); dropped by every invalidation command and ddtp write (the hot path of DMA)
        self.windows: dict[int, tuple[int, int, int, bool]] = {}
        # per device, the 2 MiB granules a successful translation found wholly inside one leaf
        # (or Bare) and inside RAM.  Only what the cached contexts and leaves decide, so every
        # invalidation command and ddtp write empties them (in place: GuestMemory holds them)
        self.granules: dict[int, GranuleCache] = {}
        self.counts = {"translations": 0, "faults": 0, "commands": 0, "faults_dropped": 0}

    # ---- the VM file --------------------------------------------------------------------
    REGISTERS = (
        "ddtp", "cqb", "cqh", "cqt", "cqcsr", "fqb", "fqh", "fqt", "fqcsr", "ipsr", "icvec",
    )  # fmt: skip

    def save_state(self) -> dict[str, object]:
        """Registers and the caches: a context or a G-stage leaf software has not invalidated
        still decides a later DMA, so a restored IOMMU must hold exactly what this one holds."""
        return {
            "registers": {name: getattr(self, name) for name in self.REGISTERS},
            "contexts": [
                [device, c.tc, c.iohgatp, c.ta, c.fsc] for device, c in self.contexts.items()
            ],
            "iotlb": [[*key, *value] for key, value in self.iotlb.items()],
            "windows": [[device, *window] for device, window in self.windows.items()],
            "counts": self.statistics(),
        }

    def restore_state(self, saved: dict) -> None:
        registers = saved["registers"]
        if set(registers) != set(self.REGISTERS):
            raise ValueError("IOMMU registers do not match this IOMMU")
        for name in self.REGISTERS:
            setattr(self, name, int(registers[name]))
        self.contexts = {
            int(device): DeviceContext(int(tc), int(iohgatp), int(ta), int(fsc))
            for device, tc, iohgatp, ta, fsc in saved["contexts"]
        }
        self.iotlb = {
            (int(gscid), int(level), int(page)): (int(pte), int(base))
            for gscid, level, page, pte, base in saved["iotlb"]
        }
        self.windows = {
            int(device): (int(start), int(end), int(base), bool(writable))
            for device, start, end, base, writable in saved["windows"]
        }
        self.counts = {str(k): int(v) for k, v in saved["counts"].items()}
        self._forget_granules()
        for cache in self.granules.values():
            cache.hits = 0  # counted in the restored counts
        self._update_interrupts()

    # ---- registers ---------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        return self._register(offset, size)

    def _register(self, offset: int, size: int) -> int:
        wide = {
            CAPABILITIES_OFFSET: CAPABILITIES,
            DDTP: self.ddtp,
            CQB: self.cqb,
            FQB: self.fqb,
        }
        narrow = {
            FCTL: FCTL_WSI,
            CQH: self.cqh,
            CQT: self.cqt,
            FQH: self.fqh,
            FQT: self.fqt,
            CQCSR: self.cqcsr,
            FQCSR: self.fqcsr,
            IPSR: self.ipsr,
            ICVEC: self.icvec,
        }
        if offset in wide:
            return wide[offset] if size == 8 else wide[offset] & 0xFFFF_FFFF
        if offset - 4 in wide and size == 4:
            return wide[offset - 4] >> 32
        return narrow.get(offset, 0) & 0xFFFF_FFFF

    def write(self, offset: int, size: int, value: int) -> None:
        if size == 4 and offset - 4 in (DDTP, CQB, FQB):  # the high half of a 64-bit register
            offset -= 4
            value = (self._register(offset, 8) & 0xFFFF_FFFF) | value << 32
        elif size == 4 and offset in (DDTP, CQB, FQB):
            value = (self._register(offset, 8) & ~0xFFFF_FFFF) | value
        if offset == DDTP:
            self.windows.clear()
            self._forget_granules()
            mode = value & 0xF
            if mode > MODE_3LVL:  # WARL: an unsupported mode leaves the register as it was
                return
            self.ddtp = mode | value & (PPN_MASK << PPN_SHIFT)
        elif offset == CQB:
            self.cqb = value & (0x1F | PPN_MASK << PPN_SHIFT)
        elif offset == FQB:
            self.fqb = value & (0x1F | PPN_MASK << PPN_SHIFT)
        elif offset == CQT:
            self.cqt = value & (self._entries(self.cqb) - 1)
            self._run_commands()
        elif offset == FQH:
            self.fqh = value & (self._entries(self.fqb) - 1)
        elif offset == CQCSR:
            self._write_cqcsr(value)
        elif offset == FQCSR:
            self._write_fqcsr(value)
        elif offset == IPSR:  # RW1C; a pending bit whose cause persists stays pending
            self.ipsr &= ~value & 0xF
            self._update_interrupts()
        elif offset == ICVEC:
            self.icvec = value & 0xFFFF

    @staticmethod
    def _entries(base: int) -> int:
        return 2 << (base & 0x1F)

    @staticmethod
    def _queue_address(base: int) -> int:
        return ((base >> PPN_SHIFT) & PPN_MASK) * PAGE

    def _write_cqcsr(self, value: int) -> None:
        was_on = self.cqcsr & CQEN
        errors = self.cqcsr & (CQMF | CMD_TO | CMD_ILL | FENCE_W_IP) & ~value  # RW1C
        self.cqcsr = (value & (CQEN | CIE)) | errors
        if value & CQEN and not was_on:
            self.cqh = self.cqt = 0
            self.cqcsr |= CQON
        elif not value & CQEN:
            self.cqh = self.cqt = 0
            self.cqcsr &= ~(CQON | CQMF | CMD_TO | CMD_ILL | FENCE_W_IP)
        else:
            self.cqcsr |= CQON
            self._run_commands()

    def _write_fqcsr(self, value: int) -> None:
        was_on = self.fqcsr & FQEN
        errors = self.fqcsr & (FQMF | FQOF) & ~value
        self.fqcsr = (value & (FQEN | FIE)) | errors
        if value & FQEN and not was_on:
            self.fqh = self.fqt = 0
            self.fqcsr |= FQON
        elif not value & FQEN:
            self.fqh = self.fqt = 0
            self.fqcsr &= ~(FQON | FQMF | FQOF)
        else:
            self.fqcsr |= FQON

    def _update_interrupts(self) -> None:
        # a wired interrupt per vector (icvec.civ bits 3:0, fiv 7:4), level while pending & enabled
        levels: dict[int, bool] = {}
        civ, fiv = self.icvec & 0xF, (self.icvec >> 4) & 0xF
        levels[civ] = bool(self.ipsr & IPSR_CIP and self.cqcsr & CIE)
        levels[fiv] = levels.get(fiv, False) or bool(self.ipsr & IPSR_FIP and self.fqcsr & FIE)
        for vector, level in levels.items():
            self.irq(vector, level)

    # ---- memory the IOMMU reads and writes itself --------------------------------------
    def _load64(self, address: int) -> int:
        return int.from_bytes(self.bus.read_bytes(address, 8), "little")

    # ---- the command queue (4.1) -------------------------------------------------------
    def _run_commands(self) -> None:
        if not self.cqcsr & CQON or self.cqcsr & (CQMF | CMD_ILL | CMD_TO):
            return
        entries = self._entries(self.cqb)
        base = self._queue_address(self.cqb)
        while self.cqh != self.cqt:
            try:
                low, high = struct.unpack("<QQ", self.bus.read_bytes(base + 16 * self.cqh, 16))
            except BusFault:
                self._command_error(CQMF)
                return
            if not self._execute(low, high):
                self._command_error(CMD_ILL)
                return
            self.counts["commands"] += 1
            self.cqh = (self.cqh + 1) % entries

    def _command_error(self, bit: int) -> None:
        self.cqcsr |= bit
        self.ipsr |= IPSR_CIP
        self._update_interrupts()

    def _execute(self, low: int, high: int) -> bool:
        opcode, func3 = low & 0x7F, (low >> 7) & 7
        self.windows.clear()
        self._forget_granules()
        if opcode == OP_IODIR:
            if func3 not in (IODIR_INVAL_DDT, IODIR_INVAL_PDT):
                return False
            if func3 == IODIR_INVAL_DDT:
                if low >> 33 & 1:  # DV: one device
                    self.contexts.pop(low >> 40 & 0xFFFFFF, None)
                else:
                    self.contexts.clear()
            return True  # INVAL_PDT: no process contexts are cached (no PDT support)
        if opcode == OP_IOTINVAL:
            if func3 not in (IOTINVAL_VMA, IOTINVAL_GVMA):
                return False
            if func3 == IOTINVAL_VMA:
                return True  # no first-stage translations are cached
            gv, av = low >> 33 & 1, low >> 10 & 1
            gscid = low >> 44 & 0xFFFF
            page = (high >> 10 & ((1 << 52) - 1)) if av else None
            for key in list(self.iotlb):
                # AV: the leaves (4 KiB, 2 MiB or 1 GiB) that map the address's page
                if (not gv or key[0] == gscid) and (page is None or key[2] == page >> 9 * key[1]):
                    del self.iotlb[key]
            return True
        if opcode == OP_IOFENCE:
            if func3 != IOFENCE_C:
                return False
            # all earlier commands are done (they run synchronously); AV: write DATA to ADDR
            if low >> 10 & 1:
                address = (high & ((1 << 62) - 1)) << 2
                try:
                    self.bus.write_bytes(address, (low >> 32).to_bytes(4, "little"))
                except BusFault:
                    self._command_error(CQMF)
                    return True
            if low >> 11 & 1:  # WSI: the command-queue interrupt
                self.ipsr |= IPSR_CIP
                self._update_interrupts()
            return True
        return False

    # ---- faults (4.2) ------------------------------------------------------------------
    def _fault(
        self, cause: int, device_id: int, ttyp: int, iotval: int, iotval2: int = 0, dtf=False
    ) -> IommuFault:
        self.counts["faults"] += 1
        if dtf and cause in DTF_SUPPRESSES:
            return IommuFault(cause, iotval)
        if not self.fqcsr & FQON or self.fqcsr & (FQMF | FQOF):
            self.counts["faults_dropped"] += 1
            return IommuFault(cause, iotval)
        entries = self._entries(self.fqb)
        if (self.fqt + 1) % entries == self.fqh:  # full: overflow, the record is dropped
            self.fqcsr |= FQOF
            self.counts["faults_dropped"] += 1
        else:
            record = struct.pack("<QQQQ", cause | ttyp << 34 | device_id << 40, 0, iotval, iotval2)
            try:
                self.bus.write_bytes(self._queue_address(self.fqb) + 32 * self.fqt, record)
                self.fqt = (self.fqt + 1) % entries
            except BusFault:
                self.fqcsr |= FQMF
        self.ipsr |= IPSR_FIP
        self._update_interrupts()
        self.log(f"iommu: device {device_id}: fault {cause} at {iotval:#x}")
        return IommuFault(cause, iotval)

    # ---- translation (chapter 2, 3.1, 3.3) -----------------------------------------------
    def device_context(self, device_id: int, ttyp: int, address: int) -> DeviceContext:
        """The device's context, from the cache or the DDT (3.3: process to locate the DC)."""
        cached = self.contexts.get(device_id)
        if cached is not None:
            return cached
        mode = self.ddtp & 0xF
        levels = {MODE_1LVL: 1, MODE_2LVL: 2, MODE_3LVL: 3}[mode]
        # device_id split for 32-byte contexts: DDI[0] 6:0, DDI[1] 15:7, DDI[2] 23:16
        ddi = [device_id & 0x7F, (device_id >> 7) & 0x1FF, (device_id >> 16) & 0xFF]
        # a device_id wider than the directory: "transaction type disallowed" (3.3, step 3)
        if device_id >> {1: 7, 2: 16, 3: 24}[levels]:
            raise self._fault(CAUSE_TRANSACTION_DISALLOWED, device_id, ttyp, address)
        table = ((self.ddtp >> PPN_SHIFT) & PPN_MASK) * PAGE
        try:
            for level in range(levels - 1, 0, -1):
                entry = self._load64(table + 8 * ddi[level])
                if not entry & 1:
                    raise self._fault(CAUSE_DDT_INVALID, device_id, ttyp, address)
                if entry & ~(1 | PPN_MASK << PPN_SHIFT):
                    raise self._fault(CAUSE_DDT_MISCONFIGURED, device_id, ttyp, address)
                table = ((entry >> PPN_SHIFT) & PPN_MASK) * PAGE
            raw = self.bus.read_bytes(table + CONTEXT_SIZE * ddi[0], CONTEXT_SIZE)
        except BusFault:
            raise self._fault(CAUSE_DDT_LOAD_ACCESS, device_id, ttyp, address) from None
        context = DeviceContext(*struct.unpack("<QQQQ", raw))
        if not context.tc & TC_V:
            raise self._fault(CAUSE_DDT_INVALID, device_id, ttyp, address)
        if (
            context.tc & ~TC_SUPPORTED
            or context.g_mode not in (IOHGATP_BARE, IOHGATP_SV39X4)
            or (context.g_mode == IOHGATP_SV39X4 and context.g_root % (4 * PAGE))
            or context.iohgatp >> 44 & 0xFFFF
            and context.g_mode == IOHGATP_BARE
            or context.fsc  # no first stage
            or context.ta
        ):
            raise self._fault(CAUSE_DDT_MISCONFIGURED, device_id, ttyp, address)
        self.contexts[device_id] = context
        return context

    def translate(self, device_id: int, address: int, length: int, write: bool) -> int:
        """The system-physical address of a device's DMA to [address, address + length), which
        must map to one contiguous range of RAM; raises :class:`IommuFault` (recorded) if not."""
        self.counts["translations"] += 1
        window = self.windows.get(device_id)
        if (
            window is not None
            and window[0] <= address
            and address + length <= window[1]
            and (window[3] or not write)
        ):
            return window[2] + (address - window[0])
        ttyp = TTYP_WRITE if write else TTYP_READ
        mode = self.ddtp & 0xF
        if mode == MODE_OFF:
            raise self._fault(CAUSE_ALL_DISALLOWED, device_id, ttyp, address)
        if mode == MODE_BARE:
            spa = self._check_memory(device_id, ttyp, address, length, write, False, address)
            self._remember_granule(device_id, address, address, 1 << GRANULE_SHIFT, True)
            return spa
        context = self.device_context(device_id, ttyp, address)
        dtf = bool(context.tc & TC_DTF)
        if context.g_mode == IOHGATP_BARE:
            spa = self._check_memory(device_id, ttyp, address, length, write, dtf, address)
            self._remember_granule(device_id, address, address, 1 << GRANULE_SHIFT, True)
            return spa
        # every leaf the range touches, and they must be contiguous in system-physical memory
        # (the devices address RAM as one range); a megapage covers 2 MiB in one lookup
        spa = -1
        position, end = address, address + max(length, 1)
        while position < end:
            leaf_spa, leaf_gpa, leaf_size = self._g_stage(
                context, device_id, ttyp, position, write, dtf
            )
            here = leaf_spa + (position - leaf_gpa)
            if spa < 0:
                spa = here
                self._remember(device_id, position, leaf_spa, leaf_gpa, leaf_size)
            elif here != spa + (position - address):
                cause = CAUSE_WRITE_ACCESS if write else CAUSE_READ_ACCESS
                raise self._fault(cause, device_id, ttyp, position, dtf=dtf)
            position = leaf_gpa + leaf_size
        return self._check_memory(device_id, ttyp, spa, length, write, dtf, address)

    def _remember(
        self, device_id: int, gpa: int, leaf_spa: int, leaf_gpa: int, leaf_size: int
    ) -> None:
        ram = self.bus.ram_base
        if ram <= leaf_spa and leaf_spa + leaf_size <= ram + self.bus.ram_size:
            pte = self.iotlb_pte(device_id, leaf_gpa)
            writable = pte & (PTE_W | PTE_D) == PTE_W | PTE_D
            self.windows[device_id] = (leaf_gpa, leaf_gpa + leaf_size, leaf_spa, writable)
            self._remember_granule(device_id, gpa, leaf_spa + (gpa - leaf_gpa), leaf_size, writable)

    def granules_of(self, device_id: int) -> GranuleCache:
        """The granule cache of one device, which its GuestMemory consults before calling
        :meth:`translate` (the same object for the IOMMU's life)."""
        cache = self.granules.get(device_id)
        if cache is None:
            cache = self.granules[device_id] = GranuleCache()
        return cache

    def _remember_granule(
        self, device_id: int, gpa: int, spa: int, size: int, writable: bool
    ) -> None:
        """A leaf of ``size`` bytes maps ``gpa`` to ``spa`` (readable, and ``writable``): note
        the granule of ``gpa`` if the leaf covers it and it is all RAM."""
        granule = 1 << GRANULE_SHIFT
        if size < granule:
            return  # a 4 KiB leaf: the window above serves it
        start = gpa & ~(granule - 1)
        spa_start = spa + (start - gpa)
        ram = self.bus.ram_base
        if ram <= spa_start and spa_start + granule <= ram + self.bus.ram_size:
            self.granules_of(device_id).remember(
                gpa >> GRANULE_SHIFT, spa_start - start - ram, writable
            )

    def _forget_granules(self) -> None:
        for cache in self.granules.values():
            cache.clear()

    def iotlb_pte(self, device_id: int, gpa: int) -> int:
        context = self.contexts[device_id]
        for level in range(3):
            cached = self.iotlb.get((context.gscid, level, gpa >> (12 + 9 * level)))
            if cached is not None:
                return cached[0]
        return 0

    def _check_memory(
        self, device_id: int, ttyp: int, spa: int, length: int, write: bool, dtf: bool, iova: int
    ) -> int:
        # only RAM is a DMA target (not the boot ROM, not device registers): an access fault
        ram = self.bus.ram_base
        if not ram <= spa or spa + max(length, 1) > ram + self.bus.ram_size:
            cause = CAUSE_WRITE_ACCESS if write else CAUSE_READ_ACCESS
            raise self._fault(cause, device_id, ttyp, iova, dtf=dtf)
        return spa

    def _g_stage(
        self,
        context: DeviceContext,
        device_id: int,
        ttyp: int,
        gpa: int,
        write: bool,
        dtf: bool,
    ) -> tuple[int, int, int]:
        """The G-stage leaf mapping guest-physical address ``gpa`` (Sv39x4, privileged 8.5):
        (its system-physical base, its guest-physical base, its size).  With no first stage the
        device's address is the GPA: iotval = iotval2 = it."""
        iova = gpa
        gpa_bits = gpa & ~3  # iotval2: GPA bits 63:2; bit 0 (implicit access) is 0
        guest_fault = CAUSE_WRITE_GUEST_PAGE if write else CAUSE_READ_GUEST_PAGE
        gscid = context.gscid
        level = 0
        cached = self.iotlb.get((gscid, 0, gpa >> 12))
        if cached is None:
            level = 1
            cached = self.iotlb.get((gscid, 1, gpa >> 21))
        if cached is None:
            level = 2
            cached = self.iotlb.get((gscid, 2, gpa >> 30))
        if cached is None:
            if gpa >> 41:
                raise self._fault(guest_fault, device_id, ttyp, iova, gpa_bits, dtf)
            table = context.g_root
            vpn = [(gpa >> 12) & 0x1FF, (gpa >> 21) & 0x1FF, (gpa >> 30) & 0x7FF]
            level = 2
            while True:
                try:
                    pte = self._load64(table + 8 * vpn[level])
                except BusFault:
                    cause = CAUSE_WRITE_ACCESS if write else CAUSE_READ_ACCESS
                    raise self._fault(cause, device_id, ttyp, iova, dtf=dtf) from None
                if not pte & PTE_V or (not pte & PTE_R and pte & PTE_W) or pte >> 54:
                    raise self._fault(guest_fault, device_id, ttyp, iova, gpa_bits, dtf)
                if pte & (PTE_R | PTE_X):
                    break
                if level == 0:
                    raise self._fault(guest_fault, device_id, ttyp, iova, gpa_bits, dtf)
                level -= 1
                table = ((pte >> 10) & PPN_MASK) * PAGE
            ppn = (pte >> 10) & PPN_MASK
            if level and ppn & ((1 << (9 * level)) - 1):  # a misaligned superpage
                raise self._fault(guest_fault, device_id, ttyp, iova, gpa_bits, dtf)
            cached = (pte, ppn * PAGE)
            self.iotlb[(gscid, level, gpa >> (12 + 9 * level))] = cached
        pte, leaf_spa = cached
        # G-stage leaves must be user pages; A must be set, and D for a write (no GADE)
        needed = PTE_U | PTE_A | (PTE_W | PTE_D if write else PTE_R)
        if pte & needed != needed:
            raise self._fault(guest_fault, device_id, ttyp, iova, gpa_bits, dtf)
        size = PAGE << (9 * level)
        return leaf_spa, gpa & ~(size - 1), size

    def statistics(self) -> dict[str, int]:
        counts = dict(self.counts)
        counts["translations"] += sum(cache.hits for cache in self.granules.values())
        return counts

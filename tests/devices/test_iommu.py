"""rvh/devices/iommu.py against the RISC-V IOMMU specification 1.0: the register layout
(chapter 6), device-directory formats and device contexts (3.1, 3.3), G-stage translation and
its faults (4.2, the fault-cause table), the fault queue, and the commands that invalidate what
the IOMMU caches (4.1).  Directories, contexts and page tables are built in a real bus's RAM."""

from __future__ import annotations

import struct

import pytest

from rvh.bus import Bus
from rvh.devices import iommu as I
from rvh.devices.iommu import Iommu, IommuFault

RAM = 0x8000_0000
DDT_ROOT = RAM + 0x10_0000
CQ = RAM + 0x20_0000
FQ = RAM + 0x21_0000
G_ROOT = RAM + 0x30_0000  # 16 KiB aligned (Sv39x4 root)
VM = RAM + 0x40_0000  # the "VM's" RAM: GPA 0x8000_0000 -> here


class Rig:
    def __init__(self) -> None:
        self.bus = Bus(RAM, 16 << 20, 0x1000, 0xF000)
        self.lines: dict[int, bool] = {}
        self.iommu = Iommu(
            self.bus, irq=lambda vector, level: self.lines.__setitem__(vector, level)
        )
        self.next_page = RAM + 0x50_0000

    def page(self) -> int:
        address = self.next_page
        self.next_page += 0x1000
        return address

    def w64(self, address: int, value: int) -> None:
        self.bus.write_bytes(address, value.to_bytes(8, "little"))

    def r64(self, address: int) -> int:
        return int.from_bytes(self.bus.read_bytes(address, 8), "little")

    def reg(self, offset: int, value: int, size: int = 8) -> None:
        self.iommu.write(offset, size, value)

    def ddtp(self, mode: int, root: int = DDT_ROOT) -> None:
        self.reg(I.DDTP, mode | (root >> 12) << 10)

    def context(self, address: int, tc=1, iohgatp=0, ta=0, fsc=0) -> None:
        self.bus.write_bytes(address, struct.pack("<QQQQ", tc, iohgatp, ta, fsc))

    def fault_queue(self, log2=3) -> None:
        self.reg(I.FQB, (log2 - 1) | (FQ >> 12) << 10)
        self.reg(I.FQCSR, I.FQEN | I.FIE, 4)

    def command_queue(self, log2=4) -> None:
        self.reg(I.CQB, (log2 - 1) | (CQ >> 12) << 10)
        self.reg(I.CQCSR, I.CQEN | I.CIE, 4)

    def command(self, low: int, high: int = 0) -> None:
        tail = self.iommu.cqt
        self.bus.write_bytes(CQ + 16 * tail, struct.pack("<QQ", low, high))
        self.reg(I.CQT, tail + 1, 4)

    def records(self) -> list[tuple[int, int, int, int, int]]:
        """(cause, ttyp, device_id, iotval, iotval2) of each fault record."""
        found = []
        for index in range(self.iommu.fqh, self.iommu.fqt):
            word0, _, iotval, iotval2 = struct.unpack(
                "<QQQQ", self.bus.read_bytes(FQ + 32 * index, 32)
            )
            found.append((word0 & 0xFFF, word0 >> 34 & 0x3F, word0 >> 40, iotval, iotval2))
        return found

    def g_stage(self, gscid: int = 5) -> int:
        """Sv39x4: GPA 0x8000_0000 (2 MiB megapage) -> VM, GPA 0x8020_0000 (4 KiB) -> VM + 2 MiB;
        returns the iohgatp."""
        level1 = self.page()
        self.w64(G_ROOT + 8 * (0x8000_0000 >> 30), (level1 >> 12) << 10 | I.PTE_V)
        leaf = I.PTE_V | I.PTE_R | I.PTE_W | I.PTE_U | I.PTE_A | I.PTE_D
        self.w64(level1 + 8 * 0, (VM >> 12) << 10 | leaf)
        level0 = self.page()
        self.w64(level1 + 8 * 1, (level0 >> 12) << 10 | I.PTE_V)
        self.w64(level0 + 8 * 0, ((VM + 0x20_0000) >> 12) << 10 | leaf)
        self.level0 = level0
        return I.IOHGATP_SV39X4 << 60 | gscid << 44 | G_ROOT >> 12


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_capabilities_and_fctl_say_what_is_implemented(rig):
    caps = rig.iommu.read(I.CAPABILITIES_OFFSET, 8)
    assert caps & 0xFF == 0x10  # version 1.0
    assert caps >> 17 & 1 == 1  # Sv39x4
    assert caps >> 8 & 0xF == 0  # no first stage (Sv32/39/48/57)
    assert caps >> 28 & 3 == 1  # IGS = WIS: wired interrupts only
    assert caps >> 32 & 0x3F == 56  # PAS
    assert caps >> 22 & 3 == 0  # no MSI_FLAT: base-format (32-byte) device contexts
    assert rig.iommu.read(I.CAPABILITIES_OFFSET + 4, 4) == caps >> 32
    assert rig.iommu.read(I.FCTL, 4) == I.FCTL_WSI


def test_ddtp_is_written_whole_or_in_halves_and_ignores_modes_it_lacks(rig):
    assert rig.iommu.read(I.DDTP, 8) == I.MODE_BARE  # reset: Bare (allowed by 6.2)
    rig.reg(I.DDTP, I.MODE_2LVL | 0x12345 << 10 | 1 << 4)  # busy is read-only (never set)
    assert rig.iommu.read(I.DDTP, 8) == I.MODE_2LVL | 0x12345 << 10
    rig.reg(I.DDTP, 7)  # a reserved mode: WARL keeps the old value
    assert rig.iommu.read(I.DDTP, 8) & 0xF == I.MODE_2LVL
    rig.reg(I.DDTP, I.MODE_1LVL | (0xABCDE << 10) & 0xFFFF_FFFF, 4)
    rig.reg(I.DDTP + 4, 0xABCDE << 10 >> 32, 4)
    assert rig.iommu.read(I.DDTP, 8) == I.MODE_1LVL | 0xABCDE << 10


@pytest.mark.parametrize(
    ("mode", "device_id"),
    [(I.MODE_1LVL, 0x45), (I.MODE_2LVL, 0x2345), (I.MODE_3LVL, 0x12345)],
)
def test_device_directory_levels_split_the_device_id(rig, mode, device_id):
    # base format: DDI[0] = device_id 6:0, DDI[1] = 15:7, DDI[2] = 23:16 (3.1.1)
    table = DDT_ROOT
    ddi = [device_id & 0x7F, device_id >> 7 & 0x1FF, device_id >> 16 & 0xFF]
    for level in range(mode - I.MODE_1LVL, 0, -1):
        child = rig.page()
        rig.w64(table + 8 * ddi[level], (child >> 12) << 10 | 1)
        table = child
    rig.context(table + 32 * ddi[0], tc=I.TC_V)  # iohgatp Bare: GPA = SPA
    rig.ddtp(mode)
    assert rig.iommu.translate(device_id, RAM + 0x1234, 64, write=True) == RAM + 0x1234


def test_g_stage_translation_with_megapages_and_pages(rig):
    rig.context(DDT_ROOT + 32 * 3, iohgatp=rig.g_stage())
    rig.ddtp(I.MODE_1LVL)
    assert rig.iommu.translate(3, 0x8000_1000, 4096, write=False) == VM + 0x1000
    assert rig.iommu.translate(3, 0x801F_F000, 0x2000, write=True) == VM + 0x1F_F000
    assert rig.iommu.translate(3, 0x8020_0010, 16, write=True) == VM + 0x20_0010


def fault(rig, device_id, address, length=8, write=False) -> tuple[int, ...]:
    rig.fault_queue()
    with pytest.raises(IommuFault):
        rig.iommu.translate(device_id, address, length, write)
    records = rig.records()
    assert len(records) == 1
    return records[0]


@pytest.mark.parametrize(
    ("case", "cause"),
    [
        ("invalid context", I.CAUSE_DDT_INVALID),  # 258
        ("reserved tc bit", I.CAUSE_DDT_MISCONFIGURED),  # 259
        ("first stage", I.CAUSE_DDT_MISCONFIGURED),  # fsc must be Bare: no Sv39 capability
        ("Sv48x4", I.CAUSE_DDT_MISCONFIGURED),  # iohgatp mode not in capabilities
        ("root not 16 KiB aligned", I.CAUSE_DDT_MISCONFIGURED),
        ("GSCID with Bare", I.CAUSE_DDT_MISCONFIGURED),
    ],
)
def test_device_context_faults(rig, case, cause):
    contexts = {
        "invalid context": dict(tc=0),
        "reserved tc bit": dict(tc=I.TC_V | 1 << 12),
        "first stage": dict(fsc=8 << 60 | 0x1234),
        "Sv48x4": dict(iohgatp=9 << 60 | G_ROOT >> 12),
        "root not 16 KiB aligned": dict(iohgatp=8 << 60 | (G_ROOT + 0x1000) >> 12),
        "GSCID with Bare": dict(iohgatp=7 << 44),
    }
    rig.context(DDT_ROOT + 32 * 9, **({"tc": I.TC_V} | contexts[case]))
    rig.ddtp(I.MODE_1LVL)
    assert fault(rig, 9, RAM, write=True) == (cause, I.TTYP_WRITE, 9, RAM, 0)


def test_directory_faults(rig):
    rig.ddtp(I.MODE_2LVL)  # the non-leaf entry for device 0x80 is not valid
    assert fault(rig, 0x80, RAM)[:3] == (I.CAUSE_DDT_INVALID, I.TTYP_READ, 0x80)
    rig.iommu.fqh = rig.iommu.fqt
    rig.ddtp(I.MODE_1LVL)  # 1LVL has 7-bit device ids
    assert fault(rig, 0x80, RAM)[0] == I.CAUSE_TRANSACTION_DISALLOWED
    rig.iommu.fqh = rig.iommu.fqt
    rig.ddtp(I.MODE_1LVL, root=0x4000_0000)  # the directory is not in memory
    assert fault(rig, 1, RAM)[0] == I.CAUSE_DDT_LOAD_ACCESS
    rig.iommu.fqh = rig.iommu.fqt
    rig.reg(I.DDTP, I.MODE_OFF)
    assert fault(rig, 1, RAM, write=True)[0] == I.CAUSE_ALL_DISALLOWED


@pytest.mark.parametrize(
    ("case", "write", "cause"),
    [
        ("unmapped", False, I.CAUSE_READ_GUEST_PAGE),  # 21
        ("unmapped", True, I.CAUSE_WRITE_GUEST_PAGE),  # 23
        ("read-only", True, I.CAUSE_WRITE_GUEST_PAGE),
        ("not accessed", False, I.CAUSE_READ_GUEST_PAGE),  # A = 0 and no GADE
        ("not dirty", True, I.CAUSE_WRITE_GUEST_PAGE),
        ("not a user page", False, I.CAUSE_READ_GUEST_PAGE),
        ("beyond Sv39x4", False, I.CAUSE_READ_GUEST_PAGE),
        ("maps a device", True, I.CAUSE_WRITE_ACCESS),  # 7: only RAM is a DMA target
    ],
)
def test_g_stage_faults_record_the_guest_physical_address(rig, case, write, cause):
    rig.context(DDT_ROOT + 32 * 2, iohgatp=rig.g_stage())
    rig.ddtp(I.MODE_1LVL)
    gpa = 0x8020_0040
    leaf = rig.level0
    base = rig.r64(leaf)
    changes = {
        "read-only": base & ~I.PTE_W,
        "not accessed": base & ~I.PTE_A,
        "not dirty": base & ~I.PTE_D,
        "not a user page": base & ~I.PTE_U,
        "maps a device": (0x1000_1000 >> 12) << 10 | (base & 0x3FF),
    }
    if case == "unmapped":
        gpa = 0x9000_0000
    elif case == "beyond Sv39x4":
        gpa = 1 << 41
    else:
        rig.w64(leaf, changes[case])
    found = fault(rig, 2, gpa, write=write)
    ttyp = I.TTYP_WRITE if write else I.TTYP_READ
    iotval2 = 0 if cause == I.CAUSE_WRITE_ACCESS else gpa & ~3
    assert found == (cause, ttyp, 2, gpa, iotval2)


def test_dtf_silences_translation_faults_but_not_directory_faults(rig):
    rig.context(DDT_ROOT + 32 * 4, tc=I.TC_V | I.TC_DTF, iohgatp=rig.g_stage())
    rig.ddtp(I.MODE_1LVL)
    rig.fault_queue()
    with pytest.raises(IommuFault):
        rig.iommu.translate(4, 0x9000_0000, 8, write=True)
    assert rig.records() == []  # the DMA still failed: it is only not reported
    with pytest.raises(IommuFault):
        rig.iommu.translate(5, RAM, 8, write=True)  # device 5 has no valid context
    assert [r[0] for r in rig.records()] == [I.CAUSE_DDT_INVALID]


def test_fault_queue_overflow_and_the_interrupt(rig):
    rig.reg(I.ICVEC, 0x20, 4)  # faults on vector 2
    rig.reg(I.DDTP, I.MODE_OFF)
    rig.fault_queue(log2=1)  # 2 entries: one record fits (a full queue keeps one slot free)
    for _ in range(3):
        with pytest.raises(IommuFault):
            rig.iommu.translate(1, RAM, 4, write=False)
    assert len(rig.records()) == 1
    assert rig.iommu.read(I.FQCSR, 4) & I.FQOF
    assert rig.iommu.read(I.IPSR, 4) & I.IPSR_FIP and rig.lines[2] is True
    rig.reg(I.IPSR, I.IPSR_FIP, 4)  # RW1C
    assert rig.lines[2] is False
    rig.reg(I.FQCSR, I.FQOF | I.FQEN | I.FIE, 4)  # clear the overflow
    assert not rig.iommu.read(I.FQCSR, 4) & I.FQOF


def test_iodir_invalidates_cached_device_contexts(rig):
    rig.context(DDT_ROOT + 32 * 1, tc=I.TC_V)
    rig.context(DDT_ROOT + 32 * 2, tc=I.TC_V)
    rig.ddtp(I.MODE_1LVL)
    rig.command_queue()
    for device in (1, 2):
        rig.iommu.translate(device, RAM, 8, write=False)  # both contexts now cached
    rig.context(DDT_ROOT + 32 * 1, tc=0)
    rig.context(DDT_ROOT + 32 * 2, tc=0)
    rig.iommu.translate(1, RAM, 8, write=False)  # still the cached context
    rig.command(I.OP_IODIR | I.IODIR_INVAL_DDT << 7 | 1 << 33 | 1 << 40)  # DV, DID 1
    assert rig.iommu.read(I.CQH, 4) == 1
    with pytest.raises(IommuFault):
        rig.iommu.translate(1, RAM, 8, write=False)
    rig.iommu.translate(2, RAM, 8, write=False)  # device 2's context is still cached
    rig.command(I.OP_IODIR | I.IODIR_INVAL_DDT << 7)  # DV = 0: every device
    with pytest.raises(IommuFault):
        rig.iommu.translate(2, RAM, 8, write=False)


def test_iotinval_gvma_invalidates_by_gscid_and_address(rig):
    rig.context(DDT_ROOT + 32 * 1, iohgatp=rig.g_stage(gscid=5))
    rig.ddtp(I.MODE_1LVL)
    rig.command_queue()
    assert rig.iommu.translate(1, 0x8020_0000, 8, write=True) == VM + 0x20_0000
    rig.w64(rig.level0, ((VM + 0x30_0000) >> 12) << 10 | (rig.r64(rig.level0) & 0x3FF))
    assert rig.iommu.translate(1, 0x8020_0000, 8, write=True) == VM + 0x20_0000  # cached
    gvma = I.OP_IOTINVAL | I.IOTINVAL_GVMA << 7
    rig.command(gvma | 1 << 33 | 6 << 44)  # GV: another VM's GSCID
    assert rig.iommu.translate(1, 0x8020_0000, 8, write=True) == VM + 0x20_0000
    rig.command(gvma | 1 << 33 | 5 << 44 | 1 << 10, (0x8030_0000 >> 12) << 10)  # another page
    assert rig.iommu.translate(1, 0x8020_0000, 8, write=True) == VM + 0x20_0000
    rig.command(gvma | 1 << 33 | 5 << 44 | 1 << 10, (0x8020_0000 >> 12) << 10)
    assert rig.iommu.translate(1, 0x8020_0000, 8, write=True) == VM + 0x30_0000


def test_iofence_writes_its_data_and_interrupts(rig):
    rig.reg(I.ICVEC, 0x01, 4)  # command queue on vector 1
    rig.command_queue()
    target = RAM + 0x1000
    rig.command(I.OP_IOFENCE | 1 << 10 | 1 << 11 | 0xCAFE_F00D << 32, target >> 2)
    assert rig.bus.read_bytes(target, 4) == (0xCAFE_F00D).to_bytes(4, "little")
    assert rig.iommu.read(I.IPSR, 4) & I.IPSR_CIP and rig.lines[1] is True


def test_an_illegal_command_stops_the_queue_until_software_clears_it(rig):
    rig.command_queue()
    rig.command(0x7F)  # no such opcode
    assert rig.iommu.read(I.CQCSR, 4) & I.CMD_ILL
    assert rig.iommu.read(I.CQH, 4) == 0  # cqh stays at the bad command
    rig.bus.write_bytes(CQ, struct.pack("<QQ", I.OP_IOTINVAL | I.IOTINVAL_GVMA << 7, 0))
    rig.reg(I.CQCSR, I.CMD_ILL | I.CQEN | I.CIE, 4)  # RW1C: the queue goes on
    assert rig.iommu.read(I.CQH, 4) == 1
    rig.reg(I.CQB, (4 - 1) | (0x4000_0000 >> 12) << 10)  # a queue outside memory
    rig.reg(I.CQCSR, 0, 4)
    rig.reg(I.CQCSR, I.CQEN, 4)
    rig.reg(I.CQT, 1, 4)
    assert rig.iommu.read(I.CQCSR, 4) & I.CQMF


def test_iotinval_of_an_address_in_a_megapage_drops_the_megapage(rig):
    rig.context(DDT_ROOT + 32 * 1, iohgatp=rig.g_stage(gscid=5))
    rig.ddtp(I.MODE_1LVL)
    rig.command_queue()
    assert rig.iommu.translate(1, 0x8000_1000, 64, write=False) == VM + 0x1000
    level1 = (rig.r64(G_ROOT + 8 * 2) >> 10) * 4096
    moved = VM + 0x80_0000  # the 2 MiB leaf now maps 8 MiB further
    rig.w64(level1, (moved >> 12) << 10 | (rig.r64(level1) & 0x3FF))
    assert rig.iommu.translate(1, 0x8000_1000, 64, write=False) == VM + 0x1000  # cached
    rig.command(I.OP_IOTINVAL | I.IOTINVAL_GVMA << 7 | 1 << 33 | 5 << 44 | 1 << 10,
                (0x8010_0000 >> 12) << 10)  # fmt: skip
    assert rig.iommu.translate(1, 0x8000_1000, 64, write=False) == moved + 0x1000


def test_a_device_behind_the_iommu_sees_what_translate_decides(rig):
    """GuestMemory's granule cache (one dict lookup per buffer once the IOMMU translated its
    2 MiB granule) gives the same answers as the IOMMU: the translated offset, a fault for a
    write to a leaf the G-stage does not let it write, the 4 KiB leaf's window, and, after an
    IOTINVAL.GVMA, the new mapping."""
    from rvh.devices.virtio.queue import GuestMemory, RingError

    rig.context(DDT_ROOT + 32 * 1, iohgatp=rig.g_stage(gscid=5))
    rig.ddtp(I.MODE_1LVL)
    rig.command_queue()
    rig.fault_queue()
    memory = GuestMemory(rig.bus)
    memory.behind_iommu(rig.iommu, 1)
    offset = VM - RAM
    assert memory.host(0x8000_1000, 4096, write=True) == offset + 0x1000
    cache = rig.iommu.granules_of(1)
    granule = {0x8000_0000 >> 21: VM - 0x8000_0000 - RAM}
    assert cache.readable == cache.writable == granule
    for address in (0x8000_0000, 0x8010_0000, 0x801F_F000):  # the same granule: cached
        assert memory.host(address, 0x1000, write=True) == offset + address - 0x8000_0000
    assert rig.iommu.statistics()["translations"] == 4
    # across the granule's end: the IOMMU walks both leaves (contiguous here)
    assert memory.host(0x801F_F000, 0x2000) == offset + 0x1F_F000
    # the 4 KiB leaf is no granule of its own
    assert memory.host(0x8020_0010, 16) == offset + 0x20_0010
    assert cache.readable == cache.writable == granule
    # the megapage becomes read-only and moves: still cached until invalidated
    level1 = (rig.r64(G_ROOT + 8 * 2) >> 10) * 4096
    moved = VM + 0x80_0000
    leaf = I.PTE_V | I.PTE_R | I.PTE_U | I.PTE_A | I.PTE_D
    rig.w64(level1, (moved >> 12) << 10 | leaf)
    assert memory.host(0x8000_2000, 8, write=True) == offset + 0x2000
    rig.command(I.OP_IOTINVAL | I.IOTINVAL_GVMA << 7 | 1 << 33 | 5 << 44)
    assert cache.readable == cache.writable == {}
    assert rig.records() == []
    with pytest.raises(RingError, match="refused by the IOMMU"):
        memory.host(0x8000_2000, 8, write=True)
    assert rig.records() == [(I.CAUSE_WRITE_GUEST_PAGE, I.TTYP_WRITE, 1, 0x8000_2000, 0x8000_2000)]
    assert memory.host(0x8000_2000, 8) == moved - RAM + 0x2000  # reads: the new leaf
    assert cache.readable == {0x8000_0000 >> 21: moved - 0x8000_0000 - RAM}
    assert cache.writable == {}  # not writable: no fast path for writes
    with pytest.raises(RingError, match="refused by the IOMMU"):
        memory.host(0x8000_2000, 8, write=True)  # the cached read-only granule: no write
    assert len(rig.records()) == 2


def test_a_bare_context_translates_to_ram_only_cached_or_not(rig):
    from rvh.devices.virtio.queue import GuestMemory, RingError

    rig.context(DDT_ROOT + 32 * 2, tc=I.TC_V)  # iohgatp Bare: device addresses are physical
    rig.ddtp(I.MODE_1LVL)
    memory = GuestMemory(rig.bus)
    memory.behind_iommu(rig.iommu, 2)
    assert memory.host(RAM + 0x1234, 64, write=True) == 0x1234
    assert memory.host(RAM + 0x1F_0000, 64, write=True) == 0x1F_0000  # cached granule
    end = RAM + (16 << 20)
    with pytest.raises(RingError):
        memory.host(end - 8, 16, write=True)  # past the end of RAM, cached granule or not
    with pytest.raises(RingError):
        memory.host(end, 8)
    rig.reg(I.DDTP, I.MODE_OFF)  # a ddtp write empties the cache: Off refuses everything
    with pytest.raises(RingError):
        memory.host(RAM + 0x1234, 64)


def test_adjacent_granules_with_one_offset_make_one_window(rig):
    """The granule cache's window: granules the IOMMU translated, adjacent and with one offset,
    serve a buffer across their boundary without the IOMMU; a granule elsewhere stays in the
    dict only; an invalidation (here a ddtp write) empties the window with the dicts."""
    from rvh.devices.virtio.queue import GuestMemory, RingError

    rig.context(DDT_ROOT + 32 * 2, tc=I.TC_V)  # iohgatp Bare: every granule's offset is -RAM
    rig.ddtp(I.MODE_1LVL)
    memory = GuestMemory(rig.bus)
    memory.behind_iommu(rig.iommu, 2)
    cache = rig.iommu.granules_of(2)
    assert memory.host(RAM + 0x1234, 64, write=True) == 0x1234
    assert memory.host(RAM + 0x20_0000, 64) == 0x20_0000
    assert (cache.read_low, cache.read_high, cache.read_delta) == (RAM, RAM + 0x40_0000, -RAM)
    # Bare grants writes wherever it grants reads: one window for both
    assert (cache.write_low, cache.write_high, cache.write_delta) == (RAM, RAM + 0x40_0000, -RAM)
    walked, hits = rig.iommu.counts["translations"], cache.hits
    assert memory.host(RAM + 0x1F_F000, 0x2000, write=True) == 0x1F_F000  # across the boundary
    assert (rig.iommu.counts["translations"], cache.hits) == (walked, hits + 1)
    assert memory.host(RAM + 0x80_0000, 8) == 0x80_0000  # not adjacent: not in the window
    assert cache.read_high == RAM + 0x40_0000 and (RAM + 0x80_0000) >> 21 in cache.readable
    rig.reg(I.DDTP, I.MODE_OFF)
    assert (cache.read_low, cache.read_high, cache.write_low, cache.write_high) == (0, 0, 0, 0)
    with pytest.raises(RingError):
        memory.host(RAM + 0x1234, 64)

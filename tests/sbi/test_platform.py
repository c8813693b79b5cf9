"""The built-in SBI against a small fake platform: it needs only what ``SbiPlatform`` names,
so each call's effect on the board (console, memory, power, harts) is seen directly."""

import subprocess
import sys

import numpy as np
import pytest

from rvh.bus import BusFault
from rvh.cpu import layout as L
from rvh.cpu.hart import Hart
from rvh.cpu.tables import build_tables
from rvh.isa.fields import MIP_SSIP_MASK
from rvh.isa.sbi import Error, Extension, HsmState, PmuFunction
from rvh.sbi import BuiltinSbi

RAM_BASE = 0x8000_0000
RAM_SIZE = 0x10000
MASK64 = (1 << 64) - 1


class FakePlatform:
    """Harts and a few KiB of memory, recording what the firmware asks of the board."""

    def __init__(self, harts: int = 2, has_hypervisor: bool = True) -> None:
        machine = np.zeros(L.MACHINE_SIZE, dtype=np.int64)
        memory = np.zeros(RAM_SIZE, dtype=np.uint8)
        tables = build_tables()
        page_flags = np.zeros(RAM_SIZE >> L.PAGE_SHIFT, dtype=np.uint8)
        decode_cache = np.full(L.DECODE_CACHE_ENTRIES * L.DC_FIELDS, -1, dtype=np.int64)
        self.harts = [
            Hart(i, machine, tables, memory, page_flags, decode_cache) for i in range(harts)
        ]
        self.has_hypervisor = has_hypervisor
        self.ram = bytearray(RAM_SIZE)
        self.console = bytearray()
        self.typed = bytearray(b"typed")
        self.powered_off: tuple[int, str] | None = None
        self.resets = 0

    def console_write(self, data: bytes) -> None:
        self.console += data

    def console_read(self, count: int) -> bytes:
        data = bytes(self.typed[:count])
        del self.typed[:count]
        return data

    def is_memory(self, address: int, length: int) -> bool:
        return RAM_BASE <= address and address + length <= RAM_BASE + RAM_SIZE

    def read_memory(self, address: int, length: int) -> bytes:
        if not self.is_memory(address, length):
            raise BusFault(f"{address:#x}")
        return bytes(self.ram[address - RAM_BASE : address - RAM_BASE + length])

    def write_memory(self, address: int, data: bytes) -> None:
        if not self.is_memory(address, len(data)):
            raise BusFault(f"{address:#x}")
        self.ram[address - RAM_BASE : address - RAM_BASE + len(data)] = data

    def power_off(self, status: int, reason: str) -> None:
        self.powered_off = (status, reason)

    def request_reset(self) -> None:
        self.resets += 1


@pytest.fixture
def platform():
    return FakePlatform()


@pytest.fixture
def sbi(platform):
    firmware = BuiltinSbi(platform)
    firmware.prepare_hart(platform.harts[0], RAM_BASE, 0x1234)
    firmware.prepare_hart(platform.harts[1], None, 0)
    return firmware


def call(sbi, hart, extension, function, *args):
    """An ecall from S-mode at RAM_BASE + 0x100: (error, value), both signed."""
    for index, value in enumerate(args):
        hart.set_x(10 + index, value)
    hart.set_x(17, extension)
    hart.set_x(16, function)
    hart.pc = RAM_BASE + 0x100
    hart.state[L.TRAP_CAUSE] = 9  # environment call from S-mode
    sbi.handle(hart)
    assert hart.pc == RAM_BASE + 0x104 or hart.state[L.HALTED]
    signed = [value - (1 << 64) if value >> 63 else value for value in (hart.x(10), hart.x(11))]
    return tuple(signed)


def test_the_sbi_imports_nothing_of_the_machine():
    code = "import sys, rvh.sbi; print('rvh.machine' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


def test_debug_console_reads_and_writes_platform_memory(platform, sbi):
    hart = platform.harts[0]
    platform.write_memory(RAM_BASE + 0x800, b"hello")
    assert call(sbi, hart, Extension.DBCN, 0, 5, RAM_BASE + 0x800, 0) == (Error.SUCCESS, 5)
    assert platform.console == b"hello"
    assert call(sbi, hart, Extension.DBCN, 1, 3, RAM_BASE + 0x900, 0) == (Error.SUCCESS, 3)
    assert platform.read_memory(RAM_BASE + 0x900, 3) == b"typ"
    assert (
        call(sbi, hart, Extension.DBCN, 0, 4, 0x1000_0000, 0)[0] == Error.ERR_INVALID_PARAM
    )  # not RAM
    assert call(sbi, hart, Extension.DBCN, 2, ord("!"))[0] == Error.SUCCESS
    assert platform.console == b"hello!"


@pytest.mark.parametrize(
    "kind, reason, outcome",
    [
        (0, 0, ("off", (0, "SBI shutdown"))),
        (0, 1, ("off", (1, "SBI shutdown (reason 1)"))),
        (1, 0, ("reset", 1)),  # cold reboot
        (2, 0, ("reset", 1)),  # warm reboot
        (3, 0, ("invalid", None)),  # a reserved reset type
        (0, 2, ("invalid", None)),  # a reserved reason
    ],
)
def test_system_reset_goes_to_the_platform(platform, sbi, kind, reason, outcome):
    error, _ = call(sbi, platform.harts[0], Extension.SRST, 0, kind, reason)
    what, expected = outcome
    if what == "off":
        assert (error, platform.powered_off, platform.resets) == (Error.SUCCESS, expected, 0)
    elif what == "reset":
        assert (error, platform.powered_off, platform.resets) == (Error.SUCCESS, None, expected)
    else:
        assert (error, platform.powered_off, platform.resets) == (Error.ERR_INVALID_PARAM, None, 0)


def test_hart_start_checks_the_address_and_starts_in_s_mode(platform, sbi):
    boot, other = platform.harts
    assert call(sbi, boot, Extension.HSM, 2, 1) == (Error.SUCCESS, HsmState.STOPPED)
    assert call(sbi, boot, Extension.HSM, 0, 1, 0x1000_0000, 7)[0] == Error.ERR_INVALID_ADDRESS
    assert call(sbi, boot, Extension.HSM, 0, 1, RAM_BASE + 0x2000, 7) == (Error.SUCCESS, 0)
    assert other.pc == RAM_BASE + 0x2000 and other.mode == "HS"
    assert (other.x(10), other.x(11)) == (1, 7)  # a0 = hartid, a1 = opaque
    assert call(sbi, boot, Extension.HSM, 2, 1) == (Error.SUCCESS, HsmState.STARTED)
    assert call(sbi, boot, Extension.HSM, 0, 1, RAM_BASE, 0)[0] == Error.ERR_ALREADY_AVAILABLE
    assert call(sbi, boot, Extension.HSM, 2, 5)[0] == Error.ERR_INVALID_PARAM  # no hart 5


def test_ipi_raises_ssip_on_the_chosen_harts(platform, sbi):
    boot, other = platform.harts
    assert call(sbi, boot, Extension.IPI, 0, 0b10, 0) == (Error.SUCCESS, 0)
    assert other.csr("mip") & MIP_SSIP_MASK and not boot.csr("mip") & MIP_SSIP_MASK
    assert (
        call(sbi, boot, Extension.IPI, 0, 1, 2)[0] == Error.ERR_INVALID_PARAM
    )  # hart 2 does not exist
    assert call(sbi, boot, Extension.IPI, 0, 0, MASK64) == (Error.SUCCESS, 0)  # base -1: every hart
    assert boot.csr("mip") & MIP_SSIP_MASK


def test_hypervisor_fences_need_the_h_extension():
    platform = FakePlatform(harts=1, has_hypervisor=False)
    sbi = BuiltinSbi(platform)
    sbi.prepare_hart(platform.harts[0], RAM_BASE, 0)
    hart = platform.harts[0]
    assert call(sbi, hart, Extension.RFENCE, 1, 1, 0, 0, 0)[0] == Error.SUCCESS  # sfence.vma
    assert (
        call(sbi, hart, Extension.RFENCE, 3, 1, 0, 0, 0)[0] == Error.ERR_NOT_SUPPORTED
    )  # hfence.gvma_vmid
    assert hart.csr("medeleg") == 0xB1FF  # no VS-mode causes to delegate without H


def test_pmu_offers_cycle_time_and_instret_and_tracks_their_state(platform, sbi):
    hart = platform.harts[0]
    pmu = Extension.PMU
    assert call(sbi, hart, Extension.BASE, 3, pmu) == (Error.SUCCESS, 1)  # probe
    assert call(sbi, hart, pmu, PmuFunction.NUM_COUNTERS) == (Error.SUCCESS, 3)
    # counter_info: the CSR (cycle, time, instret), width - 1 = 63, hardware (bit 63 clear)
    for counter, csr in enumerate((0xC00, 0xC01, 0xC02)):
        info = call(sbi, hart, pmu, PmuFunction.COUNTER_GET_INFO, counter)
        assert info == (Error.SUCCESS, csr | 63 << 12)
    assert call(sbi, hart, pmu, PmuFunction.COUNTER_GET_INFO, 3)[0] == Error.ERR_INVALID_PARAM
    # match: instructions (hardware event 2) can only go to counter 2, cycles to counter 0
    match = PmuFunction.COUNTER_CONFIG_MATCHING
    assert call(sbi, hart, pmu, match, 0, 0b111, 0, 2, 0) == (Error.SUCCESS, 2)
    assert call(sbi, hart, pmu, match, 0, 0b111, 0, 2, 0)[0] == Error.ERR_NOT_SUPPORTED  # taken
    assert call(sbi, hart, pmu, match, 0, 0b111, 0, 3, 0)[0] == Error.ERR_NOT_SUPPORTED
    assert call(sbi, hart, pmu, match, 0, 0b1000, 0, 1, 0)[0] == Error.ERR_INVALID_PARAM
    # start with an initial value: the guest's instret reads it, plus what retires after
    start, stop = PmuFunction.COUNTER_START, PmuFunction.COUNTER_STOP
    assert call(sbi, hart, pmu, start, 2, 1, 1, 1000) == (Error.SUCCESS, 0)
    # minstret's storage is the offset from the emulator's count (rvh.cpu.csr)
    assert (hart.csr("minstret") + int(hart.state[L.INSTRET])) & MASK64 == 1000
    assert call(sbi, hart, pmu, start, 2, 1, 0, 0)[0] == Error.ERR_ALREADY_STARTED
    assert call(sbi, hart, pmu, stop, 0, 0b100, 0) == (Error.SUCCESS, 0)
    assert call(sbi, hart, pmu, stop, 0, 0b100, 0)[0] == Error.ERR_ALREADY_STOPPED
    # reset on stop unconfigures: the counter matches the event again; auto-start starts it
    assert call(sbi, hart, pmu, start, 2, 1, 0, 0) == (Error.SUCCESS, 0)
    assert call(sbi, hart, pmu, stop, 2, 1, 1) == (Error.SUCCESS, 0)
    assert call(sbi, hart, pmu, start, 2, 1, 0, 0)[0] == Error.ERR_INVALID_PARAM  # unconfigured
    assert call(sbi, hart, pmu, match, 0, 0b111, 0b100, 2, 0) == (Error.SUCCESS, 2)
    assert call(sbi, hart, pmu, stop, 2, 1, 0) == (Error.SUCCESS, 0)
    # no firmware counters; each hart has its own configuration
    assert call(sbi, hart, pmu, PmuFunction.COUNTER_FW_READ, 0)[0] == Error.ERR_INVALID_PARAM
    sbi.prepare_hart(platform.harts[1], RAM_BASE, 0)
    assert call(sbi, platform.harts[1], pmu, match, 0, 0b111, 0, 2, 0) == (Error.SUCCESS, 2)

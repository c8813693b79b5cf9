"""What gdb sees of a hart: the target description, registers by gdb number, page walks."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from rvh.cpu import layout as L
from rvh.gdb.target import (
    PRIV_REGNUM,
    VIRT_REGNUM,
    Registers,
    target_xml,
    two_stage,
    walk,
)
from rvh.isa.csrs import csr_number
from rvh.machine import Machine

SV39 = 8 << 60
SV39X4 = 8 << 60


def _features(xml: str) -> dict[str, dict[str, int]]:
    root = ET.fromstring(xml.split("\n", 2)[2])  # past the XML and DOCTYPE lines
    assert root.findtext("architecture") == "riscv:rv64"
    return {
        feature.get("name", ""): {
            reg.get("name", ""): int(reg.get("regnum", "-1")) for reg in feature.iter("reg")
        }
        for feature in root.iter("feature")
    }


def test_the_target_description_numbers_registers_as_gdb_does() -> None:
    features = _features(target_xml("imafdcsuh"))
    cpu = features["org.gnu.gdb.riscv.cpu"]
    assert cpu["zero"] == 0 and cpu["a0"] == 10 and cpu["t6"] == 31 and cpu["pc"] == 32
    fpu = features["org.gnu.gdb.riscv.fpu"]
    assert fpu["ft0"] == 33 and fpu["ft11"] == 64
    assert (fpu["fflags"], fpu["frm"], fpu["fcsr"]) == (66, 67, 68)
    csr = features["org.gnu.gdb.riscv.csr"]
    assert csr["mstatus"] == 65 + 0x300 and csr["hgatp"] == 65 + 0x680
    assert csr["vsatp"] == 65 + 0x280
    assert features["org.gnu.gdb.riscv.virtual"] == {"priv": 4161, "virt": 4162}


def test_without_h_or_fp_those_registers_are_absent() -> None:
    features = _features(target_xml("imacsu"))
    assert "org.gnu.gdb.riscv.fpu" not in features
    assert "hgatp" not in features["org.gnu.gdb.riscv.csr"]
    assert "mstatus" in features["org.gnu.gdb.riscv.csr"]


def test_registers_read_and_write_through_the_kernel_views() -> None:
    machine = Machine(output=lambda data: None)
    hart = machine.harts[0]
    regs = Registers(machine.config.extensions)
    hart.set_x(10, 0x1234)
    hart.pc = 0x8000_0000
    assert regs.read(hart, 10) == 0x1234
    assert regs.read(hart, 32) == 0x8000_0000
    assert regs.read(hart, PRIV_REGNUM) == 3 and regs.read(hart, VIRT_REGNUM) == 0
    regs.write(hart, 11, 2**64 - 1)
    assert hart.x(11) == 2**64 - 1
    # sstatus is a view of mstatus: written through csr_write, read through csr_read
    sie = 1 << 1
    regs.write(hart, 65 + csr_number("sstatus"), sie)
    assert hart.csr("mstatus") & sie
    assert regs.read(hart, 65 + csr_number("sstatus")) & sie
    regs.write(hart, 67, 0b101)  # frm
    assert regs.read(hart, 68) == 0b101 << 5  # fcsr
    regs.write(hart, PRIV_REGNUM, 1)
    assert hart.mode == "HS"
    regs.write(hart, VIRT_REGNUM, 1)
    assert hart.mode == "VS"
    with pytest.raises(ValueError):
        regs.write(hart, PRIV_REGNUM, 2)
    with pytest.raises(KeyError):
        regs.read(hart, 65 + 0x7FF)  # no such CSR
    assert not regs.exists(4163)


def _memory(entries: dict[int, int]):  # type: ignore[no-untyped-def]
    return lambda address: entries.get(address)


def _pte(ppn_address: int, flags: int) -> int:
    return ((ppn_address >> 12) << 10) | flags


def test_sv39_walk_of_a_4k_page_and_a_megapage_without_faults() -> None:
    root, level1, level0 = 0x8010_0000, 0x8010_1000, 0x8010_2000
    vaddr = 0x4000_1234  # VPN[2] = 1, VPN[1] = 0, VPN[0] = 1
    memory = {
        root + 8 * 1: _pte(level1, 1),
        level1 + 8 * 0: _pte(level0, 1),
        level0 + 8 * 1: _pte(0x8765_4000, 0x1 | 0x8),  # execute-only: still readable here
        root + 8 * 2: _pte(0x8000_0000, 0x3),  # a gigapage at 0x8000_0000
    }
    satp = SV39 | (root >> 12)
    read = _memory(memory)
    assert walk(satp, vaddr, read, False) == 0x8765_4234
    assert walk(satp, 0x8000_0000 + 0x123456, read, False) == 0x8012_3456
    assert walk(satp, 0x1234, read, False) is None  # invalid PTE
    assert walk(satp, 1 << 40, read, False) is None  # not sign-extended
    assert walk(0, 0x1234, read, False) == 0x1234  # bare
    # nothing was written: no A/D bits set by a debugger's walk
    assert memory == {
        root + 8 * 1: _pte(level1, 1),
        level1 + 8 * 0: _pte(level0, 1),
        level0 + 8 * 1: _pte(0x8765_4000, 0x9),
        root + 8 * 2: _pte(0x8000_0000, 0x3),
    }


def test_two_stage_walks_the_guest_tables_through_the_g_stage() -> None:
    # G-stage Sv39x4: guest-physical 0x8000_0000.. -> host 0xC000_0000.. by a gigapage; the
    # root is 16 KiB and indexed by gpa[40:30] (11 bits)
    g_root = 0x8020_0000
    hgatp = SV39X4 | (g_root >> 12)
    host_memory = {g_root + 8 * 2: _pte(0xC000_0000, 0x7 | 0x10)}
    # the guest's own Sv39 table at guest-physical 0x8000_1000: va 0x1000 -> gpa 0x8000_5000
    vs_root_gpa = 0x8000_1000
    vs_level1_gpa, vs_level0_gpa = 0x8000_2000, 0x8000_3000
    guest = {
        vs_root_gpa: _pte(vs_level1_gpa, 1),
        vs_level1_gpa: _pte(vs_level0_gpa, 1),
        vs_level0_gpa + 8: _pte(0x8000_5000, 0xB),
    }
    for gpa, pte in guest.items():
        host_memory[gpa - 0x8000_0000 + 0xC000_0000] = pte
    vsatp = SV39 | (vs_root_gpa >> 12)
    read = _memory(host_memory)
    assert walk(hgatp, 0x8000_0042, read, True) == 0xC000_0042
    assert two_stage(vsatp, hgatp, 0x1010, read) == 0xC000_5010
    assert two_stage(vsatp, hgatp, 0x2010, read) is None
    assert two_stage(0, hgatp, 0x8000_0010, read) == 0xC000_0010  # bare vsatp
    assert walk(hgatp, 1 << 41, read, True) is None  # beyond Sv39x4's 41 bits
    assert L.PRIV_S == 1

"""The CSR table (rvh.isa.csrs) against the privileged spec's CSR listings (tables 2.2-2.6,
2.8 hypervisor) and its field layouts (3.1.1 misa, 3.1.6 mstatus, 3.1.9 mip/mie)."""

import numpy as np
import pytest

from rvh.isa import csrs
from rvh.isa.csrs import (
    BY_NAME,
    BY_NUMBER,
    CSR_COLUMNS,
    CSR_EXISTS,
    CSR_KIND,
    CSR_PREDICATE,
    CSR_VIRTUAL_ALIAS,
    CSR_WRITE_MASK,
    CSRS,
    Kind,
    Predicate,
    csr_number,
    csr_table_array,
    misa_value,
)

# Numbers from the privileged spec's CSR tables.
WELL_KNOWN = {
    "cycle": 0xC00,
    "time": 0xC01,
    "instret": 0xC02,
    "hpmcounter3": 0xC03,
    "hpmcounter31": 0xC1F,
    "sstatus": 0x100,
    "sie": 0x104,
    "stvec": 0x105,
    "scounteren": 0x106,
    "senvcfg": 0x10A,
    "sscratch": 0x140,
    "sepc": 0x141,
    "scause": 0x142,
    "stval": 0x143,
    "sip": 0x144,
    "stimecmp": 0x14D,
    "satp": 0x180,
    "hstatus": 0x600,
    "hedeleg": 0x602,
    "hideleg": 0x603,
    "hie": 0x604,
    "htimedelta": 0x605,
    "hcounteren": 0x606,
    "hgeie": 0x607,
    "henvcfg": 0x60A,
    "htval": 0x643,
    "hip": 0x644,
    "hvip": 0x645,
    "htinst": 0x64A,
    "hgatp": 0x680,
    "hgeip": 0xE12,
    "vsstatus": 0x200,
    "vsie": 0x204,
    "vstvec": 0x205,
    "vsscratch": 0x240,
    "vsepc": 0x241,
    "vscause": 0x242,
    "vstval": 0x243,
    "vsip": 0x244,
    "vstimecmp": 0x24D,
    "vsatp": 0x280,
    "mvendorid": 0xF11,
    "marchid": 0xF12,
    "mimpid": 0xF13,
    "mhartid": 0xF14,
    "mconfigptr": 0xF15,
    "mstatus": 0x300,
    "misa": 0x301,
    "medeleg": 0x302,
    "mideleg": 0x303,
    "mie": 0x304,
    "mtvec": 0x305,
    "mcounteren": 0x306,
    "menvcfg": 0x30A,
    "mcountinhibit": 0x320,
    "mhpmevent3": 0x323,
    "mhpmevent31": 0x33F,
    "mscratch": 0x340,
    "mepc": 0x341,
    "mcause": 0x342,
    "mtval": 0x343,
    "mip": 0x344,
    "mtinst": 0x34A,
    "mtval2": 0x34B,
    "pmpcfg0": 0x3A0,
    "pmpcfg2": 0x3A2,
    "pmpcfg14": 0x3AE,
    "pmpaddr0": 0x3B0,
    "pmpaddr15": 0x3BF,
    "mcycle": 0xB00,
    "minstret": 0xB02,
    "mhpmcounter3": 0xB03,
    "mhpmcounter31": 0xB1F,
}

# With V=1 the supervisor CSRs are replaced by their VS counterparts (9.2, 9.2.10).
VIRTUAL_ALIASES = {
    "sstatus": "vsstatus",
    "sie": "vsie",
    "stvec": "vstvec",
    "sscratch": "vsscratch",
    "sepc": "vsepc",
    "scause": "vscause",
    "stval": "vstval",
    "sip": "vsip",
    "stimecmp": "vstimecmp",
    "satp": "vsatp",
}


def test_numbers_and_names_are_unique():
    numbers = [c.number for c in CSRS]
    names = [c.name for c in CSRS]
    assert len(numbers) == len(set(numbers))
    assert len(names) == len(set(names))
    assert len(BY_NUMBER) == len(BY_NAME) == len(CSRS)


def test_numbers_fit_12_bits():
    assert all(0 <= c.number < 4096 for c in CSRS)


@pytest.mark.parametrize(("name", "number"), sorted(WELL_KNOWN.items()))
def test_well_known_csr_number(name, number):
    assert csr_number(name) == number
    assert BY_NUMBER[number].name == name


def test_counter_families_are_complete():
    for i in range(3, 32):
        assert csr_number(f"hpmcounter{i}") == 0xC00 + i
        assert csr_number(f"mhpmcounter{i}") == 0xB00 + i
        assert csr_number(f"mhpmevent{i}") == 0x320 + i
    for i in range(16):
        assert csr_number(f"pmpaddr{i}") == 0x3B0 + i


def test_odd_pmpcfg_do_not_exist_on_rv64():
    # 3.7.1: on RV64 pmpcfg1, pmpcfg3, ... are illegal
    for i in range(16):
        csr = BY_NAME.get(f"pmpcfg{i}")
        if i % 2:
            assert csr is None or csr.predicate == Predicate.PMP_ODD, f"pmpcfg{i}"
        else:
            assert csr is not None and csr.predicate == Predicate.ALWAYS, f"pmpcfg{i}"


def test_absent_csrs():
    # ustatus/uie/utvec (N extension, removed), dcsr (debug mode), 0x7c0 (custom)
    for number in (0x000, 0x004, 0x005, 0x7B0, 0x7C0):
        assert number not in BY_NUMBER, hex(number)
    # the FP CSRs exist, gated by misa.F and mstatus.FS (tests/cpu/test_fpu.py)
    for number in (0x001, 0x002, 0x003):
        assert BY_NUMBER[number].predicate == Predicate.FLOAT


@pytest.mark.parametrize(("name", "alias"), sorted(VIRTUAL_ALIASES.items()))
def test_virtual_alias(name, alias):
    assert BY_NAME[name].virtual_alias == csr_number(alias)


def test_only_supervisor_csrs_have_aliases():
    aliased = {c.name for c in CSRS if c.virtual_alias is not None}
    assert aliased == set(VIRTUAL_ALIASES)
    for name in aliased:
        target = BY_NUMBER[BY_NAME[name].virtual_alias]
        assert target.predicate == Predicate.HYPERVISOR
        assert target.virtual_alias is None


def test_hypervisor_level_csrs_need_h():
    # bits 9:8 = 2: hypervisor and VS CSRs
    for c in CSRS:
        if (c.number >> 8) & 3 == 2:
            assert c.predicate == Predicate.HYPERVISOR, c.name
    assert BY_NAME["mtinst"].predicate == Predicate.HYPERVISOR
    assert BY_NAME["mtval2"].predicate == Predicate.HYPERVISOR


def test_read_only_csrs_have_no_writable_bits():
    # bits 11:10 = 3 mark read-only CSRs (2.1)
    for c in CSRS:
        if c.number >> 10 == 3:
            assert c.write_mask == 0, c.name


def test_plain_write_masks():
    assert BY_NAME["mscratch"].write_mask & (2**64 - 1) == 2**64 - 1
    assert BY_NAME["mcause"].write_mask & (2**64 - 1) == 2**64 - 1
    assert BY_NAME["mcounteren"].write_mask == 0xFFFF_FFFF
    assert BY_NAME["mideleg"].write_mask == 0x222  # SSI, STI, SEI
    assert not BY_NAME["medeleg"].write_mask >> 11 & 1  # ecall from M: read-only zero
    assert BY_NAME["medeleg"].write_mask >> 8 & 1  # ecall from U: delegable
    assert BY_NAME["hideleg"].write_mask == 0x444  # VSSI, VSTI, VSEI


def test_kinds_of_side_effect_registers():
    assert BY_NAME["mstatus"].kind == Kind.MSTATUS
    assert BY_NAME["sstatus"].kind == Kind.SSTATUS
    assert BY_NAME["mtvec"].kind == BY_NAME["stvec"].kind == BY_NAME["vstvec"].kind == Kind.TVEC
    assert BY_NAME["mepc"].kind == BY_NAME["sepc"].kind == BY_NAME["vsepc"].kind == Kind.EPC
    assert BY_NAME["mcycle"].kind == BY_NAME["cycle"].kind == Kind.CYCLE
    assert BY_NAME["minstret"].kind == BY_NAME["instret"].kind == Kind.INSTRET
    assert BY_NAME["mhartid"].kind == Kind.MHARTID


def test_misa_value():
    # MXL = 2 in bits 63:62; A = bit 0, C = 2, H = 7, I = 8, M = 12, S = 18, U = 20
    assert misa_value("acimsu") & (2**64 - 1) == 0x8000_0000_0014_1105
    assert misa_value("acimsuh") & (2**64 - 1) == 0x8000_0000_0014_1185
    assert misa_value("acimsu") < 0, "stored as a signed int64"


def test_mstatus_field_positions():
    assert csrs.MSTATUS_SIE == 1 << 1
    assert csrs.MSTATUS_MIE == 1 << 3
    assert csrs.MSTATUS_SPIE == 1 << 5
    assert csrs.MSTATUS_MPIE == 1 << 7
    assert csrs.MSTATUS_SPP == 1 << 8
    assert csrs.MSTATUS_MPP == 0x1800
    assert csrs.MSTATUS_MPRV == 1 << 17
    assert csrs.MSTATUS_SUM == 1 << 18
    assert csrs.MSTATUS_MXR == 1 << 19
    assert csrs.MSTATUS_TVM == 1 << 20
    assert csrs.MSTATUS_TW == 1 << 21
    assert csrs.MSTATUS_TSR == 1 << 22
    assert csrs.MSTATUS_UXL == 3 << 32
    assert csrs.MSTATUS_SXL == 3 << 34
    assert csrs.MSTATUS_MPV == 1 << 39
    assert csrs.MSTATUS_GVA == 1 << 38
    assert csrs.MSTATUS_XLEN64 == 0xA << 32


def test_sstatus_mask_hides_machine_fields():
    for field in (csrs.MSTATUS_MIE, csrs.MSTATUS_MPIE, csrs.MSTATUS_MPP, csrs.MSTATUS_MPRV):
        assert csrs.SSTATUS_MASK & field == 0
    for field in (csrs.MSTATUS_SIE, csrs.MSTATUS_SPIE, csrs.MSTATUS_SPP, csrs.MSTATUS_SUM):
        assert csrs.SSTATUS_MASK & field == field
    assert csrs.SSTATUS_MASK & csrs.MSTATUS_UXL == csrs.MSTATUS_UXL
    assert csrs.SSTATUS_MASK & csrs.MSTATUS_SXL == 0


def test_interrupt_bit_positions():
    assert (csrs.IP_SSIP, csrs.IP_VSSIP, csrs.IP_MSIP) == (1 << 1, 1 << 2, 1 << 3)
    assert (csrs.IP_STIP, csrs.IP_VSTIP, csrs.IP_MTIP) == (1 << 5, 1 << 6, 1 << 7)
    assert (csrs.IP_SEIP, csrs.IP_VSEIP, csrs.IP_MEIP) == (1 << 9, 1 << 10, 1 << 11)
    assert csrs.IP_SGEIP == 1 << 12


def test_hstatus_field_positions():
    assert csrs.HSTATUS_VSBE == 1 << 5
    assert csrs.HSTATUS_GVA == 1 << 6
    assert csrs.HSTATUS_SPV == 1 << 7
    assert csrs.HSTATUS_SPVP == 1 << 8
    assert csrs.HSTATUS_HU == 1 << 9
    assert csrs.HSTATUS_VGEIN == 0x3F << 12
    assert csrs.HSTATUS_VTVM == 1 << 20
    assert csrs.HSTATUS_VTW == 1 << 21
    assert csrs.HSTATUS_VTSR == 1 << 22
    assert csrs.HSTATUS_VSXL == 3 << 32


@pytest.fixture(scope="module")
def table():
    return csr_table_array()


def test_table_array_shape(table):
    assert table.shape == (4096, CSR_COLUMNS)
    assert table.dtype == np.int64


def test_table_array_marks_exactly_the_implemented_csrs(table):
    implemented = set(np.flatnonzero(table[:, CSR_EXISTS]))
    assert implemented == {c.number for c in CSRS}


@pytest.mark.parametrize("number", [0x000, 0x004, 0x7C0, 0x7B0, 0xFFF])
def test_table_array_row_of_missing_csr(table, number):
    assert list(table[number]) == [0, 0, 0, 0, -1]


def test_table_array_rows(table):
    row = table[0x300]
    assert row[CSR_EXISTS] == 1
    assert row[CSR_PREDICATE] == Predicate.ALWAYS
    assert row[CSR_KIND] == Kind.MSTATUS
    assert row[CSR_VIRTUAL_ALIAS] == -1
    row = table[0x100]
    assert row[CSR_PREDICATE] == Predicate.SUPERVISOR
    assert row[CSR_KIND] == Kind.SSTATUS
    assert row[CSR_VIRTUAL_ALIAS] == 0x200
    assert table[0x180, CSR_VIRTUAL_ALIAS] == 0x280
    assert table[0x340, CSR_WRITE_MASK] == -1
    assert table[0x306, CSR_WRITE_MASK] == 0xFFFF_FFFF
    assert table[0x600, CSR_PREDICATE] == Predicate.HYPERVISOR
    assert table[0x3A1, CSR_PREDICATE] == Predicate.PMP_ODD
    assert table[0xC00, CSR_PREDICATE] == Predicate.COUNTER
    assert table[0x14D, CSR_PREDICATE] == Predicate.SSTC


def test_table_array_agrees_with_rows(table):
    for c in CSRS:
        row = table[c.number]
        assert row[CSR_EXISTS] == 1
        assert row[CSR_PREDICATE] == int(c.predicate)
        assert row[CSR_KIND] == int(c.kind)
        assert row[CSR_WRITE_MASK] == c.write_mask
        expected_alias = -1 if c.virtual_alias is None else c.virtual_alias
        assert row[CSR_VIRTUAL_ALIAS] == expected_alias


def test_csr_number_enum_is_the_table():
    # one member per row, named after the row, with the row's number: nothing typed twice
    assert {member.name: member.value for member in csrs.CsrNumber} == {
        c.name.upper(): c.number for c in CSRS
    }


@pytest.mark.parametrize(("name", "number"), sorted(WELL_KNOWN.items()))
def test_csr_number_enum_well_known(name, number):
    assert csrs.CsrNumber[name.upper()] == number
    assert csrs.CsrNumber(number).name == name.upper()


def test_delegation_masks_match_the_spec():
    # medeleg: codes 0-9, 12, 13, 15 (ecall from M, 11, is read-only zero); with H also 10, 20-23
    assert csrs.MEDELEG_WRITABLE == 0xB3FF & ~(1 << 11)
    assert csrs.MEDELEG_WRITABLE_H == csrs.MEDELEG_WRITABLE | (1 << 10) | (0xF << 20)
    # hedeleg (8.2.2): as medeleg without the ecalls from HS/VS/M and the guest faults
    assert csrs.HEDELEG_WRITABLE == 0xB1FF

"""rvh.isa.fields against the privileged spec 20211203: every field's position and width as the
spec's figures draw them (3.1.6 mstatus, 4.1.1 sstatus, 8.2.1 hstatus, 3.1.9 mip/mie, 3.1.18
menvcfg, 4.1.11 satp, 8.2.10 hgatp, 4.4.1 Sv39 PTEs, 3.7.1 pmpcfg, 3.1.15 mcause; fcsr from the
unprivileged spec's 11.2; the trigger registers from the Debug spec 1.0's 5.7), typed here from
the spec, not from the module."""

import pytest

from rvh.isa import fields as F
from rvh.isa.causes import INTERRUPT_BIT, INTERRUPT_PRIORITY, Interrupt

MASK64 = (1 << 64) - 1

# (register, field): (lowest bit, width), read off the spec's register figures
SPEC_FIELDS = {
    ("MSTATUS", "SIE"): (1, 1),
    ("MSTATUS", "MIE"): (3, 1),
    ("MSTATUS", "SPIE"): (5, 1),
    ("MSTATUS", "UBE"): (6, 1),
    ("MSTATUS", "MPIE"): (7, 1),
    ("MSTATUS", "SPP"): (8, 1),
    ("MSTATUS", "VS"): (9, 2),
    ("MSTATUS", "MPP"): (11, 2),
    ("MSTATUS", "FS"): (13, 2),
    ("MSTATUS", "XS"): (15, 2),
    ("MSTATUS", "MPRV"): (17, 1),
    ("MSTATUS", "SUM"): (18, 1),
    ("MSTATUS", "MXR"): (19, 1),
    ("MSTATUS", "TVM"): (20, 1),
    ("MSTATUS", "TW"): (21, 1),
    ("MSTATUS", "TSR"): (22, 1),
    ("MSTATUS", "UXL"): (32, 2),
    ("MSTATUS", "SXL"): (34, 2),
    ("MSTATUS", "SBE"): (36, 1),
    ("MSTATUS", "MBE"): (37, 1),
    ("MSTATUS", "GVA"): (38, 1),
    ("MSTATUS", "MPV"): (39, 1),
    ("MSTATUS", "SD"): (63, 1),
    ("SSTATUS", "SIE"): (1, 1),
    ("SSTATUS", "SPIE"): (5, 1),
    ("SSTATUS", "UBE"): (6, 1),
    ("SSTATUS", "SPP"): (8, 1),
    ("SSTATUS", "VS"): (9, 2),
    ("SSTATUS", "FS"): (13, 2),
    ("SSTATUS", "XS"): (15, 2),
    ("SSTATUS", "SUM"): (18, 1),
    ("SSTATUS", "MXR"): (19, 1),
    ("SSTATUS", "UXL"): (32, 2),
    ("SSTATUS", "SD"): (63, 1),
    ("VSSTATUS", "SIE"): (1, 1),
    ("VSSTATUS", "SPIE"): (5, 1),
    ("VSSTATUS", "UBE"): (6, 1),
    ("VSSTATUS", "SPP"): (8, 1),
    ("VSSTATUS", "VS"): (9, 2),
    ("VSSTATUS", "FS"): (13, 2),
    ("VSSTATUS", "XS"): (15, 2),
    ("VSSTATUS", "SUM"): (18, 1),
    ("VSSTATUS", "MXR"): (19, 1),
    ("VSSTATUS", "UXL"): (32, 2),
    ("VSSTATUS", "SD"): (63, 1),
    ("HSTATUS", "VSBE"): (5, 1),
    ("HSTATUS", "GVA"): (6, 1),
    ("HSTATUS", "SPV"): (7, 1),
    ("HSTATUS", "SPVP"): (8, 1),
    ("HSTATUS", "HU"): (9, 1),
    ("HSTATUS", "VGEIN"): (12, 6),
    ("HSTATUS", "VTVM"): (20, 1),
    ("HSTATUS", "VTW"): (21, 1),
    ("HSTATUS", "VTSR"): (22, 1),
    ("HSTATUS", "VSXL"): (32, 2),
    ("MIP", "SSIP"): (1, 1),
    ("MIP", "VSSIP"): (2, 1),
    ("MIP", "MSIP"): (3, 1),
    ("MIP", "STIP"): (5, 1),
    ("MIP", "VSTIP"): (6, 1),
    ("MIP", "MTIP"): (7, 1),
    ("MIP", "SEIP"): (9, 1),
    ("MIP", "VSEIP"): (10, 1),
    ("MIP", "MEIP"): (11, 1),
    ("MIP", "SGEIP"): (12, 1),
    ("MIE", "SSIE"): (1, 1),
    ("MIE", "VSSIE"): (2, 1),
    ("MIE", "MSIE"): (3, 1),
    ("MIE", "STIE"): (5, 1),
    ("MIE", "VSTIE"): (6, 1),
    ("MIE", "MTIE"): (7, 1),
    ("MIE", "SEIE"): (9, 1),
    ("MIE", "VSEIE"): (10, 1),
    ("MIE", "MEIE"): (11, 1),
    ("MIE", "SGEIE"): (12, 1),
    ("SIP", "SSIP"): (1, 1),
    ("SIP", "STIP"): (5, 1),
    ("SIP", "SEIP"): (9, 1),
    ("SIE", "SSIE"): (1, 1),
    ("SIE", "STIE"): (5, 1),
    ("SIE", "SEIE"): (9, 1),
    ("HVIP", "VSSIP"): (2, 1),
    ("HVIP", "VSTIP"): (6, 1),
    ("HVIP", "VSEIP"): (10, 1),
    ("MCAUSE", "INTERRUPT"): (63, 1),
    ("MCAUSE", "CODE"): (0, 63),
    ("TVEC", "MODE"): (0, 2),
    ("TVEC", "BASE"): (2, 62),
    ("COUNTEREN", "CY"): (0, 1),
    ("COUNTEREN", "TM"): (1, 1),
    ("COUNTEREN", "IR"): (2, 1),
    ("MENVCFG", "FIOM"): (0, 1),
    ("MENVCFG", "CBIE"): (4, 2),
    ("MENVCFG", "CBCFE"): (6, 1),
    ("MENVCFG", "CBZE"): (7, 1),
    ("MENVCFG", "PBMTE"): (62, 1),
    ("MENVCFG", "STCE"): (63, 1),
    ("HENVCFG", "FIOM"): (0, 1),
    ("HENVCFG", "CBIE"): (4, 2),
    ("HENVCFG", "CBCFE"): (6, 1),
    ("HENVCFG", "CBZE"): (7, 1),
    ("HENVCFG", "PBMTE"): (62, 1),
    ("HENVCFG", "STCE"): (63, 1),
    ("SENVCFG", "FIOM"): (0, 1),
    ("MISA", "MXL"): (62, 2),
    ("SATP", "PPN"): (0, 44),
    ("SATP", "ASID"): (44, 16),
    ("SATP", "MODE"): (60, 4),
    ("HGATP", "PPN"): (0, 44),
    ("HGATP", "VMID"): (44, 14),
    ("HGATP", "MODE"): (60, 4),
    ("PTE", "V"): (0, 1),
    ("PTE", "R"): (1, 1),
    ("PTE", "W"): (2, 1),
    ("PTE", "X"): (3, 1),
    ("PTE", "U"): (4, 1),
    ("PTE", "G"): (5, 1),
    ("PTE", "A"): (6, 1),
    ("PTE", "D"): (7, 1),
    ("PTE", "RSW"): (8, 2),
    ("PTE", "PPN"): (10, 44),
    ("PTE", "PBMT"): (61, 2),
    ("PTE", "N"): (63, 1),
    ("PTE", "RESERVED"): (54, 10),
    ("PMPCFG", "R"): (0, 1),
    ("PMPCFG", "W"): (1, 1),
    ("PMPCFG", "X"): (2, 1),
    ("PMPCFG", "A"): (3, 2),
    ("PMPCFG", "L"): (7, 1),
    ("FCSR", "FFLAGS"): (0, 5),
    ("FCSR", "FRM"): (5, 3),
    # the Debug spec 1.0's trigger registers: tdata1 (5.7.2), mcontrol (5.7.11), mcontrol6
    # (5.7.17), tinfo (5.7.5)
    ("TDATA1", "TYPE"): (60, 4),
    ("TDATA1", "DMODE"): (59, 1),
    ("MCONTROL", "LOAD"): (0, 1),
    ("MCONTROL", "STORE"): (1, 1),
    ("MCONTROL", "EXECUTE"): (2, 1),
    ("MCONTROL", "U"): (3, 1),
    ("MCONTROL", "S"): (4, 1),
    ("MCONTROL", "M"): (6, 1),
    ("MCONTROL", "MATCH"): (7, 4),
    ("MCONTROL", "CHAIN"): (11, 1),
    ("MCONTROL", "ACTION"): (12, 4),
    ("MCONTROL", "SIZELO"): (16, 2),
    ("MCONTROL", "TIMING"): (18, 1),
    ("MCONTROL", "SELECT"): (19, 1),
    ("MCONTROL", "HIT"): (20, 1),
    ("MCONTROL", "SIZEHI"): (21, 2),
    ("MCONTROL6", "SIZE"): (16, 4),
    ("MCONTROL6", "VU"): (23, 1),
    ("MCONTROL6", "VS"): (24, 1),
    ("TINFO", "INFO"): (0, 16),
}


def _as_int64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >> 63 else value


@pytest.mark.parametrize(("register", "field"), sorted(SPEC_FIELDS))
def test_field_matches_the_spec(register, field):
    low, width = SPEC_FIELDS[(register, field)]
    assert getattr(F, f"{register}_{field}_SHIFT") == low
    # masks are int64 (bit 63 makes them negative), as the kernel's registers are
    assert getattr(F, f"{register}_{field}_MASK") == _as_int64(((1 << width) - 1) << low)


def test_every_field_pair_is_checked_against_the_spec():
    # a field added to the module without a row here would escape the test above
    shifts = {name.removesuffix("_SHIFT") for name in vars(F) if name.endswith("_SHIFT")}
    shifts.remove("PAGE")  # PAGE_SHIFT: the page size, not a field
    masks = {name.removesuffix("_MASK") for name in vars(F) if name.endswith("_MASK")}
    pairs = shifts & masks
    assert shifts == pairs, "a _SHIFT without its _MASK"
    assert pairs == {f"{register}_{field}" for register, field in SPEC_FIELDS}


def test_field_values_match_the_spec():
    assert (F.PRIVILEGE_U, F.PRIVILEGE_S, F.PRIVILEGE_M) == (0, 1, 3)
    assert F.XLEN_64 == 2
    assert (F.SATP_MODE_BARE, F.SATP_MODE_SV39, F.SATP_MODE_SV48, F.SATP_MODE_SV57) == (0, 8, 9, 10)
    assert (F.HGATP_MODE_BARE, F.HGATP_MODE_SV39X4, F.HGATP_MODE_SV48X4) == (0, 8, 9)
    assert F.HGATP_MODE_SV57X4 == 10
    assert (F.PMP_A_OFF, F.PMP_A_TOR, F.PMP_A_NA4, F.PMP_A_NAPOT) == (0, 1, 2, 3)
    assert (F.TVEC_MODE_DIRECT, F.TVEC_MODE_VECTORED) == (0, 1)
    assert F.EXTENSION_STATE_DIRTY == 3
    # unprivileged 11.2, table 11.2: NV DZ OF UF NX from bit 4 down; fcsr's bits 63:8 are zero
    flags = (F.FFLAGS_NV_MASK, F.FFLAGS_DZ_MASK, F.FFLAGS_OF_MASK, F.FFLAGS_UF_MASK)
    assert flags + (F.FFLAGS_NX_MASK,) == (16, 8, 4, 2, 1)
    assert F.FCSR_WRITABLE_MASK == 0xFF
    assert F.PAGE_SHIFT == 12
    # 8.6.3: a load/store of a PTE, 32 or 64 bits wide, as transformed instructions
    assert (F.TINST_PSEUDO_PTE_READ_32, F.TINST_PSEUDO_PTE_WRITE_32) == (0x2000, 0x2020)
    assert (F.TINST_PSEUDO_PTE_READ_64, F.TINST_PSEUDO_PTE_WRITE_64) == (0x3000, 0x3020)
    # an x4 root table: 2 more VPN bits, so 2^11 entries of 8 bytes = 16 KiB (8.5.1)
    assert (1 << (F.PT_LEVEL_BITS + F.PT_X4_ROOT_EXTRA_BITS)) * 8 == 16 << 10


def test_level_masks():
    assert F.MIP_S_LEVEL_MASK == 0x222
    assert F.MIP_VS_LEVEL_MASK == 0x444
    assert F.MIP_M_LEVEL_MASK == 0x888


def test_mip_bits_are_the_interrupt_codes():
    for interrupt in Interrupt:
        matching = [
            name
            for name in vars(F)
            if name.startswith("MIP_") and name.endswith("_SHIFT") and getattr(F, name) == interrupt
        ]
        assert len(matching) == 1, interrupt


def test_interrupt_bit_and_priority():
    assert INTERRUPT_BIT == 1 << 63
    # 3.1.9: MEI, MSI, MTI, SEI, SSI, STI; then (8.2.3) SGEI, VSEI, VSSI, VSTI
    assert [int(i) for i in INTERRUPT_PRIORITY] == [11, 3, 7, 9, 1, 5, 12, 10, 2, 6]
    assert set(INTERRUPT_PRIORITY) == set(Interrupt)

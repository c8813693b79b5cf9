"""CSR and page-table fields with the spec's names, as ``<REGISTER>_<FIELD>_SHIFT``/``_MASK`` pairs.

One source for Python (the kernel, the SBI, the differential tester) and C (firmware and guests
include the header :mod:`rvh.isa.cheader` generates from this module), in the manner of Spike's
generated ``encoding.h``.  Every ``_MASK`` is the field in place (``MSTATUS_MPP_MASK == 0x1800``);
read a field as ``(value & MASK) >> SHIFT``.  A mask that includes bit 63 is a negative int64,
because the kernel's registers are int64 (``MSTATUS_SD_MASK == -(1 << 63)``); the C header writes
every mask as an unsigned 64-bit constant.  Other names are field *values* (``SATP_MODE_SV39``).

Positions follow the privileged spec 20211203 (its chapter 8 is H 1.0); each group cites its
section.  Interrupt bits of mip/mie are derived from :class:`rvh.isa.causes.Interrupt`, whose
codes are also the bit numbers (3.1.9).
"""

from __future__ import annotations

from rvh.isa.causes import INTERRUPT_BIT, Interrupt

_MASK64 = (1 << 64) - 1


def _field(shift: int, width: int = 1) -> tuple[int, int]:
    """(shift, in-place mask) of a ``width``-bit field at ``shift``; the mask as a signed int64."""
    mask = (((1 << width) - 1) << shift) & _MASK64
    return shift, mask - (1 << 64) if mask >> 63 else mask


# ---- Privilege levels (1.2, table 1.1): the values of mstatus.MPP, SPP and hstatus.SPVP ---------
PRIVILEGE_U = 0
PRIVILEGE_S = 1
PRIVILEGE_M = 3

# XLEN encoding of misa.MXL, mstatus.SXL/UXL, hstatus.VSXL (3.1.1, table 3.1)
XLEN_64 = 2

# ---- misa (3.1.1) -------------------------------------------------------------------------------
MISA_MXL_SHIFT, MISA_MXL_MASK = _field(62, 2)

# ---- mstatus (3.1.6) ----------------------------------------------------------------------------
MSTATUS_SIE_SHIFT, MSTATUS_SIE_MASK = _field(1)
MSTATUS_MIE_SHIFT, MSTATUS_MIE_MASK = _field(3)
MSTATUS_SPIE_SHIFT, MSTATUS_SPIE_MASK = _field(5)
MSTATUS_UBE_SHIFT, MSTATUS_UBE_MASK = _field(6)
MSTATUS_MPIE_SHIFT, MSTATUS_MPIE_MASK = _field(7)
MSTATUS_SPP_SHIFT, MSTATUS_SPP_MASK = _field(8)
MSTATUS_VS_SHIFT, MSTATUS_VS_MASK = _field(9, 2)
MSTATUS_MPP_SHIFT, MSTATUS_MPP_MASK = _field(11, 2)
MSTATUS_FS_SHIFT, MSTATUS_FS_MASK = _field(13, 2)
MSTATUS_XS_SHIFT, MSTATUS_XS_MASK = _field(15, 2)
MSTATUS_MPRV_SHIFT, MSTATUS_MPRV_MASK = _field(17)
MSTATUS_SUM_SHIFT, MSTATUS_SUM_MASK = _field(18)
MSTATUS_MXR_SHIFT, MSTATUS_MXR_MASK = _field(19)
MSTATUS_TVM_SHIFT, MSTATUS_TVM_MASK = _field(20)
MSTATUS_TW_SHIFT, MSTATUS_TW_MASK = _field(21)
MSTATUS_TSR_SHIFT, MSTATUS_TSR_MASK = _field(22)
MSTATUS_UXL_SHIFT, MSTATUS_UXL_MASK = _field(32, 2)
MSTATUS_SXL_SHIFT, MSTATUS_SXL_MASK = _field(34, 2)
MSTATUS_SBE_SHIFT, MSTATUS_SBE_MASK = _field(36)
MSTATUS_MBE_SHIFT, MSTATUS_MBE_MASK = _field(37)
MSTATUS_GVA_SHIFT, MSTATUS_GVA_MASK = _field(38)  # H extension (chapter 8: mstatus additions)
MSTATUS_MPV_SHIFT, MSTATUS_MPV_MASK = _field(39)  # H extension
MSTATUS_SD_SHIFT, MSTATUS_SD_MASK = _field(63)

# Values of the FS, VS and XS fields (3.1.6.6, table 3.3)
EXTENSION_STATE_OFF = 0
EXTENSION_STATE_INITIAL = 1
EXTENSION_STATE_CLEAN = 2
EXTENSION_STATE_DIRTY = 3

# ---- sstatus (4.1.1): a view of mstatus, the same fields at the same positions ------------------
SSTATUS_SIE_SHIFT, SSTATUS_SIE_MASK = MSTATUS_SIE_SHIFT, MSTATUS_SIE_MASK
SSTATUS_SPIE_SHIFT, SSTATUS_SPIE_MASK = MSTATUS_SPIE_SHIFT, MSTATUS_SPIE_MASK
SSTATUS_UBE_SHIFT, SSTATUS_UBE_MASK = MSTATUS_UBE_SHIFT, MSTATUS_UBE_MASK
SSTATUS_SPP_SHIFT, SSTATUS_SPP_MASK = MSTATUS_SPP_SHIFT, MSTATUS_SPP_MASK
SSTATUS_VS_SHIFT, SSTATUS_VS_MASK = MSTATUS_VS_SHIFT, MSTATUS_VS_MASK
SSTATUS_FS_SHIFT, SSTATUS_FS_MASK = MSTATUS_FS_SHIFT, MSTATUS_FS_MASK
SSTATUS_XS_SHIFT, SSTATUS_XS_MASK = MSTATUS_XS_SHIFT, MSTATUS_XS_MASK
SSTATUS_SUM_SHIFT, SSTATUS_SUM_MASK = MSTATUS_SUM_SHIFT, MSTATUS_SUM_MASK
SSTATUS_MXR_SHIFT, SSTATUS_MXR_MASK = MSTATUS_MXR_SHIFT, MSTATUS_MXR_MASK
SSTATUS_UXL_SHIFT, SSTATUS_UXL_MASK = MSTATUS_UXL_SHIFT, MSTATUS_UXL_MASK
SSTATUS_SD_SHIFT, SSTATUS_SD_MASK = MSTATUS_SD_SHIFT, MSTATUS_SD_MASK

# ---- vsstatus (8.2.11): the VS-mode copy of sstatus, same layout --------------------------------
VSSTATUS_SIE_SHIFT, VSSTATUS_SIE_MASK = SSTATUS_SIE_SHIFT, SSTATUS_SIE_MASK
VSSTATUS_SPIE_SHIFT, VSSTATUS_SPIE_MASK = SSTATUS_SPIE_SHIFT, SSTATUS_SPIE_MASK
VSSTATUS_UBE_SHIFT, VSSTATUS_UBE_MASK = SSTATUS_UBE_SHIFT, SSTATUS_UBE_MASK
VSSTATUS_SPP_SHIFT, VSSTATUS_SPP_MASK = SSTATUS_SPP_SHIFT, SSTATUS_SPP_MASK
VSSTATUS_VS_SHIFT, VSSTATUS_VS_MASK = SSTATUS_VS_SHIFT, SSTATUS_VS_MASK
VSSTATUS_FS_SHIFT, VSSTATUS_FS_MASK = SSTATUS_FS_SHIFT, SSTATUS_FS_MASK
VSSTATUS_XS_SHIFT, VSSTATUS_XS_MASK = SSTATUS_XS_SHIFT, SSTATUS_XS_MASK
VSSTATUS_SUM_SHIFT, VSSTATUS_SUM_MASK = SSTATUS_SUM_SHIFT, SSTATUS_SUM_MASK
VSSTATUS_MXR_SHIFT, VSSTATUS_MXR_MASK = SSTATUS_MXR_SHIFT, SSTATUS_MXR_MASK
VSSTATUS_UXL_SHIFT, VSSTATUS_UXL_MASK = SSTATUS_UXL_SHIFT, SSTATUS_UXL_MASK
VSSTATUS_SD_SHIFT, VSSTATUS_SD_MASK = SSTATUS_SD_SHIFT, SSTATUS_SD_MASK

# ---- hstatus (8.2.1) ----------------------------------------------------------------------------
HSTATUS_VSBE_SHIFT, HSTATUS_VSBE_MASK = _field(5)
HSTATUS_GVA_SHIFT, HSTATUS_GVA_MASK = _field(6)
HSTATUS_SPV_SHIFT, HSTATUS_SPV_MASK = _field(7)
HSTATUS_SPVP_SHIFT, HSTATUS_SPVP_MASK = _field(8)
HSTATUS_HU_SHIFT, HSTATUS_HU_MASK = _field(9)
HSTATUS_VGEIN_SHIFT, HSTATUS_VGEIN_MASK = _field(12, 6)
HSTATUS_VTVM_SHIFT, HSTATUS_VTVM_MASK = _field(20)
HSTATUS_VTW_SHIFT, HSTATUS_VTW_MASK = _field(21)
HSTATUS_VTSR_SHIFT, HSTATUS_VTSR_MASK = _field(22)
HSTATUS_VSXL_SHIFT, HSTATUS_VSXL_MASK = _field(32, 2)

# ---- mip / mie (3.1.9) with the H extension's bits (8.2.3): bit n is interrupt code n -----------
_I = Interrupt
MIP_SSIP_SHIFT, MIP_SSIP_MASK = _field(_I.SUPERVISOR_SOFTWARE)
MIP_VSSIP_SHIFT, MIP_VSSIP_MASK = _field(_I.VIRTUAL_SUPERVISOR_SOFTWARE)
MIP_MSIP_SHIFT, MIP_MSIP_MASK = _field(_I.MACHINE_SOFTWARE)
MIP_STIP_SHIFT, MIP_STIP_MASK = _field(_I.SUPERVISOR_TIMER)
MIP_VSTIP_SHIFT, MIP_VSTIP_MASK = _field(_I.VIRTUAL_SUPERVISOR_TIMER)
MIP_MTIP_SHIFT, MIP_MTIP_MASK = _field(_I.MACHINE_TIMER)
MIP_SEIP_SHIFT, MIP_SEIP_MASK = _field(_I.SUPERVISOR_EXTERNAL)
MIP_VSEIP_SHIFT, MIP_VSEIP_MASK = _field(_I.VIRTUAL_SUPERVISOR_EXTERNAL)
MIP_MEIP_SHIFT, MIP_MEIP_MASK = _field(_I.MACHINE_EXTERNAL)
MIP_SGEIP_SHIFT, MIP_SGEIP_MASK = _field(_I.SUPERVISOR_GUEST_EXTERNAL)

MIE_SSIE_SHIFT, MIE_SSIE_MASK = MIP_SSIP_SHIFT, MIP_SSIP_MASK
MIE_VSSIE_SHIFT, MIE_VSSIE_MASK = MIP_VSSIP_SHIFT, MIP_VSSIP_MASK
MIE_MSIE_SHIFT, MIE_MSIE_MASK = MIP_MSIP_SHIFT, MIP_MSIP_MASK
MIE_STIE_SHIFT, MIE_STIE_MASK = MIP_STIP_SHIFT, MIP_STIP_MASK
MIE_VSTIE_SHIFT, MIE_VSTIE_MASK = MIP_VSTIP_SHIFT, MIP_VSTIP_MASK
MIE_MTIE_SHIFT, MIE_MTIE_MASK = MIP_MTIP_SHIFT, MIP_MTIP_MASK
MIE_SEIE_SHIFT, MIE_SEIE_MASK = MIP_SEIP_SHIFT, MIP_SEIP_MASK
MIE_VSEIE_SHIFT, MIE_VSEIE_MASK = MIP_VSEIP_SHIFT, MIP_VSEIP_MASK
MIE_MEIE_SHIFT, MIE_MEIE_MASK = MIP_MEIP_SHIFT, MIP_MEIP_MASK
MIE_SGEIE_SHIFT, MIE_SGEIE_MASK = MIP_SGEIP_SHIFT, MIP_SGEIP_MASK

# The interrupts of each privilege level, as mip/mie masks
MIP_S_LEVEL_MASK = MIP_SSIP_MASK | MIP_STIP_MASK | MIP_SEIP_MASK
MIP_VS_LEVEL_MASK = MIP_VSSIP_MASK | MIP_VSTIP_MASK | MIP_VSEIP_MASK
MIP_M_LEVEL_MASK = MIP_MSIP_MASK | MIP_MTIP_MASK | MIP_MEIP_MASK

# sip/sie (4.1.3): the S-level bits of mip/mie
SIP_SSIP_SHIFT, SIP_SSIP_MASK = MIP_SSIP_SHIFT, MIP_SSIP_MASK
SIP_STIP_SHIFT, SIP_STIP_MASK = MIP_STIP_SHIFT, MIP_STIP_MASK
SIP_SEIP_SHIFT, SIP_SEIP_MASK = MIP_SEIP_SHIFT, MIP_SEIP_MASK
SIE_SSIE_SHIFT, SIE_SSIE_MASK = MIP_SSIP_SHIFT, MIP_SSIP_MASK
SIE_STIE_SHIFT, SIE_STIE_MASK = MIP_STIP_SHIFT, MIP_STIP_MASK
SIE_SEIE_SHIFT, SIE_SEIE_MASK = MIP_SEIP_SHIFT, MIP_SEIP_MASK

# hvip (8.2.3): the VS-level interrupts a hypervisor injects
HVIP_VSSIP_SHIFT, HVIP_VSSIP_MASK = MIP_VSSIP_SHIFT, MIP_VSSIP_MASK
HVIP_VSTIP_SHIFT, HVIP_VSTIP_MASK = MIP_VSTIP_SHIFT, MIP_VSTIP_MASK
HVIP_VSEIP_SHIFT, HVIP_VSEIP_MASK = MIP_VSEIP_SHIFT, MIP_VSEIP_MASK

# ---- fcsr (unprivileged 11.2): fflags and frm are views of its low byte -----------------------
FCSR_FFLAGS_SHIFT, FCSR_FFLAGS_MASK = _field(0, 5)
FCSR_FRM_SHIFT, FCSR_FRM_MASK = _field(5, 3)
FCSR_WRITABLE_MASK = FCSR_FFLAGS_MASK | FCSR_FRM_MASK
# the accrued exception flags (11.2, table 11.2)
FFLAGS_NX_MASK = 1 << 0  # inexact
FFLAGS_UF_MASK = 1 << 1  # underflow
FFLAGS_OF_MASK = 1 << 2  # overflow
FFLAGS_DZ_MASK = 1 << 3  # divide by zero
FFLAGS_NV_MASK = 1 << 4  # invalid operation

# ---- mcause / scause / vscause (3.1.15) ---------------------------------------------------------
MCAUSE_INTERRUPT_SHIFT, MCAUSE_INTERRUPT_MASK = _field(INTERRUPT_BIT.bit_length() - 1)
MCAUSE_CODE_SHIFT, MCAUSE_CODE_MASK = _field(0, MCAUSE_INTERRUPT_SHIFT)

# ---- mtvec / stvec / vstvec (3.1.7) -------------------------------------------------------------
TVEC_MODE_SHIFT, TVEC_MODE_MASK = _field(0, 2)
TVEC_BASE_SHIFT, TVEC_BASE_MASK = _field(2, 62)
TVEC_MODE_DIRECT = 0
TVEC_MODE_VECTORED = 1

# ---- mcounteren / scounteren / hcounteren (3.1.11, 4.1.5, 8.2): the same layout -----------------
COUNTEREN_CY_SHIFT, COUNTEREN_CY_MASK = _field(0)
COUNTEREN_TM_SHIFT, COUNTEREN_TM_MASK = _field(1)
COUNTEREN_IR_SHIFT, COUNTEREN_IR_MASK = _field(2)

# ---- menvcfg (3.1.18), henvcfg (8.2), senvcfg (4.1.4) -------------------------------------------
# rvh implements FIOM and STCE; CBIE/CBCFE/CBZE (Zicbom/Zicboz) and PBMTE (Svpbmt) read zero
MENVCFG_FIOM_SHIFT, MENVCFG_FIOM_MASK = _field(0)
MENVCFG_CBIE_SHIFT, MENVCFG_CBIE_MASK = _field(4, 2)
MENVCFG_CBCFE_SHIFT, MENVCFG_CBCFE_MASK = _field(6)
MENVCFG_CBZE_SHIFT, MENVCFG_CBZE_MASK = _field(7)
MENVCFG_PBMTE_SHIFT, MENVCFG_PBMTE_MASK = _field(62)
MENVCFG_STCE_SHIFT, MENVCFG_STCE_MASK = _field(63)  # Sstc: stimecmp enabled
HENVCFG_FIOM_SHIFT, HENVCFG_FIOM_MASK = MENVCFG_FIOM_SHIFT, MENVCFG_FIOM_MASK
HENVCFG_CBIE_SHIFT, HENVCFG_CBIE_MASK = MENVCFG_CBIE_SHIFT, MENVCFG_CBIE_MASK
HENVCFG_CBCFE_SHIFT, HENVCFG_CBCFE_MASK = MENVCFG_CBCFE_SHIFT, MENVCFG_CBCFE_MASK
HENVCFG_CBZE_SHIFT, HENVCFG_CBZE_MASK = MENVCFG_CBZE_SHIFT, MENVCFG_CBZE_MASK
HENVCFG_PBMTE_SHIFT, HENVCFG_PBMTE_MASK = MENVCFG_PBMTE_SHIFT, MENVCFG_PBMTE_MASK
HENVCFG_STCE_SHIFT, HENVCFG_STCE_MASK = MENVCFG_STCE_SHIFT, MENVCFG_STCE_MASK  # vstimecmp
SENVCFG_FIOM_SHIFT, SENVCFG_FIOM_MASK = MENVCFG_FIOM_SHIFT, MENVCFG_FIOM_MASK

# ---- satp (4.1.11) and vsatp (8.2.18), the same layout ------------------------------------------
SATP_PPN_SHIFT, SATP_PPN_MASK = _field(0, 44)
SATP_ASID_SHIFT, SATP_ASID_MASK = _field(44, 16)
SATP_MODE_SHIFT, SATP_MODE_MASK = _field(60, 4)
SATP_MODE_BARE = 0
SATP_MODE_SV39 = 8
SATP_MODE_SV48 = 9
SATP_MODE_SV57 = 10  # rvh does not implement Sv57; QEMU 7.2 does

# ---- hgatp (8.2.10): VMID is 14 bits, the modes are the x4 formats ------------------------------
HGATP_PPN_SHIFT, HGATP_PPN_MASK = _field(0, 44)
HGATP_VMID_SHIFT, HGATP_VMID_MASK = _field(44, 14)
HGATP_MODE_SHIFT, HGATP_MODE_MASK = _field(60, 4)
HGATP_MODE_BARE = 0
HGATP_MODE_SV39X4 = 8
HGATP_MODE_SV48X4 = 9
HGATP_MODE_SV57X4 = 10  # not implemented by rvh

# ---- Page-table entries (4.3.1, 4.4.1 Sv39; 8.5.1 G-stage) --------------------------------------
PAGE_SHIFT = 12  # 4 KiB pages
PTE_V_SHIFT, PTE_V_MASK = _field(0)
PTE_R_SHIFT, PTE_R_MASK = _field(1)
PTE_W_SHIFT, PTE_W_MASK = _field(2)
PTE_X_SHIFT, PTE_X_MASK = _field(3)
PTE_U_SHIFT, PTE_U_MASK = _field(4)
PTE_G_SHIFT, PTE_G_MASK = _field(5)
PTE_A_SHIFT, PTE_A_MASK = _field(6)
PTE_D_SHIFT, PTE_D_MASK = _field(7)
PTE_RSW_SHIFT, PTE_RSW_MASK = _field(8, 2)
PTE_PPN_SHIFT, PTE_PPN_MASK = _field(10, 44)
PTE_PBMT_SHIFT, PTE_PBMT_MASK = _field(61, 2)  # Svpbmt, not implemented: must be zero
PTE_N_SHIFT, PTE_N_MASK = _field(63)  # Svnapot, not implemented: must be zero
# Bits 63:54 (N, PBMT and reserved) must be zero without Svnapot/Svpbmt, else a page fault
PTE_RESERVED_SHIFT, PTE_RESERVED_MASK = _field(54, 10)
# Per level: 9 VPN bits; the x4 formats widen the root level by 2 bits (8.5.1), so a G-stage root
# table has 2048 entries (16 KiB, 16 KiB aligned).
PT_LEVEL_BITS = 9
PT_X4_ROOT_EXTRA_BITS = 2

# ---- mtinst / htinst (8.6.3): pseudoinstructions for a guest-page fault of an implicit access ---
# to a VS-stage page-table entry (table 8.12); rvh, as RV64, uses the 64-bit ones
TINST_PSEUDO_PTE_READ_32 = 0x2000
TINST_PSEUDO_PTE_WRITE_32 = 0x2020
TINST_PSEUDO_PTE_READ_64 = 0x3000
TINST_PSEUDO_PTE_WRITE_64 = 0x3020

# ---- pmpcfg entries (3.7.1): one byte per PMP entry ---------------------------------------------
PMPCFG_R_SHIFT, PMPCFG_R_MASK = _field(0)
PMPCFG_W_SHIFT, PMPCFG_W_MASK = _field(1)
PMPCFG_X_SHIFT, PMPCFG_X_MASK = _field(2)
PMPCFG_A_SHIFT, PMPCFG_A_MASK = _field(3, 2)
PMPCFG_L_SHIFT, PMPCFG_L_MASK = _field(7)
PMP_A_OFF = 0
PMP_A_TOR = 1
PMP_A_NA4 = 2
PMP_A_NAPOT = 3
PMP_ENTRIES = 16  # rvh implements 16 entries (pmpcfg0/2, pmpaddr0..15)

# ---- Sdtrig trigger registers (RISC-V Debug Specification 1.0, 5.7) ------------------------------
# tdata1's common part: the trigger type in the top 4 bits, dmode below it (5.7.2)
TDATA1_TYPE_SHIFT, TDATA1_TYPE_MASK = _field(60, 4)
TDATA1_DMODE_SHIFT, TDATA1_DMODE_MASK = _field(59)
TRIGGER_TYPE_NONE = 0
TRIGGER_TYPE_MCONTROL = 2  # address/data match, the older layout (5.7.11)
TRIGGER_TYPE_MCONTROL6 = 6  # address/data match with the VS/VU bits (5.7.17)
TRIGGER_TYPE_UNAVAILABLE = 15
# mcontrol (type 2) and mcontrol6 (type 6) share the low fields: which accesses match, and in
# which privilege modes (M, S, U; mcontrol6 adds VS and VU)
MCONTROL_LOAD_SHIFT, MCONTROL_LOAD_MASK = _field(0)
MCONTROL_STORE_SHIFT, MCONTROL_STORE_MASK = _field(1)
MCONTROL_EXECUTE_SHIFT, MCONTROL_EXECUTE_MASK = _field(2)
MCONTROL_U_SHIFT, MCONTROL_U_MASK = _field(3)
MCONTROL_S_SHIFT, MCONTROL_S_MASK = _field(4)
MCONTROL_M_SHIFT, MCONTROL_M_MASK = _field(6)
MCONTROL_MATCH_SHIFT, MCONTROL_MATCH_MASK = _field(7, 4)
MCONTROL_CHAIN_SHIFT, MCONTROL_CHAIN_MASK = _field(11)
MCONTROL_ACTION_SHIFT, MCONTROL_ACTION_MASK = _field(12, 4)
MCONTROL_SIZELO_SHIFT, MCONTROL_SIZELO_MASK = _field(16, 2)
MCONTROL_TIMING_SHIFT, MCONTROL_TIMING_MASK = _field(18)
MCONTROL_SELECT_SHIFT, MCONTROL_SELECT_MASK = _field(19)
MCONTROL_HIT_SHIFT, MCONTROL_HIT_MASK = _field(20)
MCONTROL_SIZEHI_SHIFT, MCONTROL_SIZEHI_MASK = _field(21, 2)
MCONTROL6_SIZE_SHIFT, MCONTROL6_SIZE_MASK = _field(16, 4)
MCONTROL6_VU_SHIFT, MCONTROL6_VU_MASK = _field(23)
MCONTROL6_VS_SHIFT, MCONTROL6_VS_MASK = _field(24)
# tinfo (5.7.5): bit n set when type n is supported
TINFO_INFO_SHIFT, TINFO_INFO_MASK = _field(0, 16)

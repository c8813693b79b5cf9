"""The CSR table: every control and status register rvh implements, as data.

Each row gives the number, the name, the *predicate* (which extension or mode makes the CSR
exist), the *kind* (how the kernel reads and writes it: plain storage under a write mask, or a
register with side effects or a computed value), the write mask of plain registers, and the
*virtual alias*: the VS-level register an access is rerouted to when V=1 (privileged spec 8.2,
"the VS CSRs ... substitute for the usual supervisor CSRs").

Storage is one flat array of 4096 int64 slots in the hart state, indexed by CSR number, so a
snapshot or a trace sees every register; views such as sstatus or sie have no slot of their
own.  :func:`csr_table_array` packs the table into the numpy form the kernel indexes.

:data:`CsrNumber` (``CsrNumber.MSTATUS == 0x300``) is derived from the rows, as ``Op`` is from
the encodings; the fields of the registers are :mod:`rvh.isa.fields`, and the write masks here
are built from them (privileged spec 20211203, whose chapter 8 is H 1.0).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from rvh.isa import fields as F
from rvh.isa.causes import Exception_

# ---- Field names the kernel imports today ---------------------------------------------------
# Derived from rvh.isa.fields (the one source, with MASK/SHIFT pairs); kept under their old
# names until the kernel imports rvh.isa.fields itself (branch house-kernel), then they go.
MSTATUS_SIE = F.MSTATUS_SIE_MASK
MSTATUS_MIE = F.MSTATUS_MIE_MASK
MSTATUS_SPIE = F.MSTATUS_SPIE_MASK
MSTATUS_UBE = F.MSTATUS_UBE_MASK
MSTATUS_MPIE = F.MSTATUS_MPIE_MASK
MSTATUS_SPP = F.MSTATUS_SPP_MASK
MSTATUS_VS = F.MSTATUS_VS_MASK
MSTATUS_MPP_SHIFT = F.MSTATUS_MPP_SHIFT
MSTATUS_MPP = F.MSTATUS_MPP_MASK
MSTATUS_FS = F.MSTATUS_FS_MASK
MSTATUS_XS = F.MSTATUS_XS_MASK
MSTATUS_MPRV = F.MSTATUS_MPRV_MASK
MSTATUS_SUM = F.MSTATUS_SUM_MASK
MSTATUS_MXR = F.MSTATUS_MXR_MASK
MSTATUS_TVM = F.MSTATUS_TVM_MASK
MSTATUS_TW = F.MSTATUS_TW_MASK
MSTATUS_TSR = F.MSTATUS_TSR_MASK
MSTATUS_UXL = F.MSTATUS_UXL_MASK
MSTATUS_SXL = F.MSTATUS_SXL_MASK
MSTATUS_SBE = F.MSTATUS_SBE_MASK
MSTATUS_MBE = F.MSTATUS_MBE_MASK
MSTATUS_GVA = F.MSTATUS_GVA_MASK
MSTATUS_MPV = F.MSTATUS_MPV_MASK
MSTATUS_SD = F.MSTATUS_SD_MASK
IP_SSIP = F.MIP_SSIP_MASK
IP_VSSIP = F.MIP_VSSIP_MASK
IP_MSIP = F.MIP_MSIP_MASK
IP_STIP = F.MIP_STIP_MASK
IP_VSTIP = F.MIP_VSTIP_MASK
IP_MTIP = F.MIP_MTIP_MASK
IP_SEIP = F.MIP_SEIP_MASK
IP_VSEIP = F.MIP_VSEIP_MASK
IP_MEIP = F.MIP_MEIP_MASK
IP_SGEIP = F.MIP_SGEIP_MASK
IP_S_LEVEL = F.MIP_S_LEVEL_MASK
IP_VS_LEVEL = F.MIP_VS_LEVEL_MASK
IP_M_LEVEL = F.MIP_M_LEVEL_MASK
HSTATUS_VSBE = F.HSTATUS_VSBE_MASK
HSTATUS_GVA = F.HSTATUS_GVA_MASK
HSTATUS_SPV = F.HSTATUS_SPV_MASK
HSTATUS_SPVP = F.HSTATUS_SPVP_MASK
HSTATUS_HU = F.HSTATUS_HU_MASK
HSTATUS_VGEIN = F.HSTATUS_VGEIN_MASK
HSTATUS_VTVM = F.HSTATUS_VTVM_MASK
HSTATUS_VTW = F.HSTATUS_VTW_MASK
HSTATUS_VTSR = F.HSTATUS_VTSR_MASK
HSTATUS_VSXL = F.HSTATUS_VSXL_MASK
ENVCFG_FIOM = F.MENVCFG_FIOM_MASK
ENVCFG_STCE = F.MENVCFG_STCE_MASK
SATP_MODE_SHIFT = F.SATP_MODE_SHIFT
SATP_ASID_SHIFT = F.SATP_ASID_SHIFT
SATP_ASID_MASK = F.SATP_ASID_MASK >> F.SATP_ASID_SHIFT  # the field's width, not in place
SATP_PPN_MASK = F.SATP_PPN_MASK
HGATP_VMID_SHIFT = F.HGATP_VMID_SHIFT
HGATP_VMID_MASK = F.HGATP_VMID_MASK >> F.HGATP_VMID_SHIFT  # the field's width, not in place
SATP_MODE_BARE = F.SATP_MODE_BARE
SATP_MODE_SV39 = F.SATP_MODE_SV39
SATP_MODE_SV48 = F.SATP_MODE_SV48

# ---- Write masks and views: table data built from the fields ----------------------------------
# XLEN fields read 2 (64-bit) and cannot be changed.
MSTATUS_XLEN64 = (F.XLEN_64 << F.MSTATUS_UXL_SHIFT) | (F.XLEN_64 << F.MSTATUS_SXL_SHIFT)

MSTATUS_WRITABLE = (
    MSTATUS_SIE
    | MSTATUS_MIE
    | MSTATUS_SPIE
    | MSTATUS_MPIE
    | MSTATUS_SPP
    | MSTATUS_MPP
    | MSTATUS_MPRV
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_TVM
    | MSTATUS_TW
    | MSTATUS_TSR
    | MSTATUS_VS
)
# With the H extension mstatus.MPV and GVA are writable too.
MSTATUS_WRITABLE_H = MSTATUS_WRITABLE | MSTATUS_MPV | MSTATUS_GVA

# sstatus is a view of mstatus through this mask (4.1.1).
SSTATUS_MASK = (
    F.SSTATUS_SIE_MASK
    | F.SSTATUS_SPIE_MASK
    | F.SSTATUS_UBE_MASK
    | F.SSTATUS_SPP_MASK
    | F.SSTATUS_VS_MASK
    | F.SSTATUS_FS_MASK
    | F.SSTATUS_XS_MASK
    | F.SSTATUS_SUM_MASK
    | F.SSTATUS_MXR_MASK
    | F.SSTATUS_UXL_MASK
    | F.SSTATUS_SD_MASK
)
SSTATUS_WRITABLE = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_VS

HSTATUS_WRITABLE = (
    HSTATUS_GVA
    | HSTATUS_SPV
    | HSTATUS_SPVP
    | HSTATUS_HU
    | HSTATUS_VTVM
    | HSTATUS_VTW
    | HSTATUS_VTSR
)


def _cause_bits(*causes: Exception_) -> int:
    return sum(1 << cause for cause in set(causes))


_E = Exception_
# Exceptions that medeleg can delegate (3.1.8): every exception code up to 15 except ecall from M
# (read-only zero); the guest faults and ecall from VS exist only with H.
MEDELEG_WRITABLE = _cause_bits(
    _E.INSTRUCTION_ADDRESS_MISALIGNED,
    _E.INSTRUCTION_ACCESS_FAULT,
    _E.ILLEGAL_INSTRUCTION,
    _E.BREAKPOINT,
    _E.LOAD_ADDRESS_MISALIGNED,
    _E.LOAD_ACCESS_FAULT,
    _E.STORE_ADDRESS_MISALIGNED,
    _E.STORE_ACCESS_FAULT,
    _E.ECALL_FROM_U,
    _E.ECALL_FROM_S,
    _E.INSTRUCTION_PAGE_FAULT,
    _E.LOAD_PAGE_FAULT,
    _E.STORE_PAGE_FAULT,
)
_H_ONLY_DELEGABLE = _cause_bits(
    _E.ECALL_FROM_VS,
    _E.INSTRUCTION_GUEST_PAGE_FAULT,
    _E.LOAD_GUEST_PAGE_FAULT,
    _E.VIRTUAL_INSTRUCTION,
    _E.STORE_GUEST_PAGE_FAULT,
)
MEDELEG_WRITABLE_H = MEDELEG_WRITABLE | _H_ONLY_DELEGABLE
# hedeleg (8.2.2): ecalls from HS/VS/M and the guest faults are read-only zero.
HEDELEG_WRITABLE = MEDELEG_WRITABLE & ~_cause_bits(_E.ECALL_FROM_S)

MIDELEG_WRITABLE = IP_S_LEVEL

# misa (3.1.1): MXL=2, extensions A C D F I M S U (+ H when enabled)
MISA_RV64 = F.XLEN_64 << F.MISA_MXL_SHIFT


def misa_value(extensions: str) -> int:
    """misa for an extension string such as ``"acimsu"``, as a signed int64."""
    value = MISA_RV64
    for letter in extensions.lower():
        value |= 1 << (ord(letter) - ord("a"))
    return value - (1 << 64) if value >> 63 else value


class Predicate(IntEnum):
    """What makes a CSR exist (the ``is_CSR_accessible`` half of an access check)."""

    ALWAYS = 0  # M-mode CSRs, and user counters (gated separately by the counter-enables)
    SUPERVISOR = 1  # S-mode exists (always on rvh)
    HYPERVISOR = 2  # misa.H
    SSTC = 3  # Sstc: stimecmp/vstimecmp, gated by menvcfg.STCE / henvcfg.STCE
    COUNTER = 4  # cycle/time/instret/hpmcounterN: mcounteren, scounteren, hcounteren
    PMP_ODD = 5  # pmpcfg1/3/...: do not exist on RV64
    FLOAT = 6  # fflags/frm/fcsr: misa.F, and mstatus.FS (and vsstatus.FS with V=1) not Off


class Kind(IntEnum):
    """How the kernel reads and writes a CSR (see ``rvh/cpu/csr.py``)."""

    PLAIN = 0  # stored in its slot, writes masked by the table's write mask
    READ_ZERO = 1  # reads 0, writes ignored (hpm counters and events)
    MSTATUS = 2
    SSTATUS = 3
    MISA = 4
    MIE = 5
    SIE = 6
    MIP = 7
    SIP = 8
    TVEC = 9  # mtvec/stvec/vstvec: mode 0/1 only
    EPC = 10  # mepc/sepc/vsepc: bit 0 always zero
    SATP = 11
    MHARTID = 12
    CYCLE = 13  # cycle, mcycle
    INSTRET = 14  # instret, minstret
    TIME = 15
    PMPCFG = 16
    PMPADDR = 17
    HSTATUS = 18
    HIE = 19
    HIP = 20
    HVIP = 21
    VSSTATUS = 22
    VSIE = 23
    VSIP = 24
    HGATP = 25
    VSATP = 26
    STIMECMP = 27
    VSTIMECMP = 28
    HGEIP = 29
    MIDELEG = 30
    MENVCFG = 31
    HIDELEG = 32
    HCOUNTEREN = 33
    MEDELEG = 34  # the write mask grows with H: ecall from VS and the guest faults
    HENVCFG = 35  # like menvcfg, but STCE is read-only zero while menvcfg.STCE is clear
    FFLAGS = 36  # fcsr[4:0]; fcsr lives in CSR 3's slot (11.2)
    FRM = 37  # fcsr[7:5]
    FCSR = 38
    TSELECT = 39  # Sdtrig: which trigger tdata1-3 show (rvh/cpu/triggers.py)
    TDATA1 = 40
    TDATA2 = 41
    TDATA3 = 42
    TINFO = 43


@dataclass(frozen=True)
class Csr:
    number: int
    name: str
    predicate: Predicate
    kind: Kind
    write_mask: int = 0
    virtual_alias: int | None = None  # with V=1, the access goes to this CSR instead


_ALL = -1  # every bit writable

_P = Predicate
_K = Kind


def _rows() -> list[Csr]:
    rows = [
        # Unprivileged floating-point CSRs (11.2)
        Csr(0x001, "fflags", _P.FLOAT, _K.FFLAGS),
        Csr(0x002, "frm", _P.FLOAT, _K.FRM),
        Csr(0x003, "fcsr", _P.FLOAT, _K.FCSR),
        # Unprivileged counters (Zicntr); gated by the counter-enable registers
        Csr(0xC00, "cycle", _P.COUNTER, _K.CYCLE),
        Csr(0xC01, "time", _P.COUNTER, _K.TIME),
        Csr(0xC02, "instret", _P.COUNTER, _K.INSTRET),
        # Supervisor
        Csr(0x100, "sstatus", _P.SUPERVISOR, _K.SSTATUS, virtual_alias=0x200),
        Csr(0x104, "sie", _P.SUPERVISOR, _K.SIE, virtual_alias=0x204),
        Csr(0x105, "stvec", _P.SUPERVISOR, _K.TVEC, virtual_alias=0x205),
        Csr(0x106, "scounteren", _P.SUPERVISOR, _K.PLAIN, 0xFFFFFFFF),
        Csr(0x10A, "senvcfg", _P.SUPERVISOR, _K.PLAIN, ENVCFG_FIOM),
        Csr(0x140, "sscratch", _P.SUPERVISOR, _K.PLAIN, _ALL, virtual_alias=0x240),
        Csr(0x141, "sepc", _P.SUPERVISOR, _K.EPC, virtual_alias=0x241),
        Csr(0x142, "scause", _P.SUPERVISOR, _K.PLAIN, _ALL, virtual_alias=0x242),
        Csr(0x143, "stval", _P.SUPERVISOR, _K.PLAIN, _ALL, virtual_alias=0x243),
        Csr(0x144, "sip", _P.SUPERVISOR, _K.SIP, virtual_alias=0x244),
        Csr(0x14D, "stimecmp", _P.SSTC, _K.STIMECMP, virtual_alias=0x24D),
        Csr(0x180, "satp", _P.SUPERVISOR, _K.SATP, virtual_alias=0x280),
        # Hypervisor (HS-level)
        Csr(0x600, "hstatus", _P.HYPERVISOR, _K.HSTATUS),
        Csr(0x602, "hedeleg", _P.HYPERVISOR, _K.PLAIN, HEDELEG_WRITABLE),
        Csr(0x603, "hideleg", _P.HYPERVISOR, _K.HIDELEG, IP_VS_LEVEL),
        Csr(0x604, "hie", _P.HYPERVISOR, _K.HIE),
        Csr(0x605, "htimedelta", _P.HYPERVISOR, _K.PLAIN, _ALL),
        Csr(0x606, "hcounteren", _P.HYPERVISOR, _K.HCOUNTEREN, 0xFFFFFFFF),
        Csr(0x607, "hgeie", _P.HYPERVISOR, _K.PLAIN, 0),  # GEILEN = 0
        Csr(0x60A, "henvcfg", _P.HYPERVISOR, _K.HENVCFG, ENVCFG_FIOM | ENVCFG_STCE),
        Csr(0x643, "htval", _P.HYPERVISOR, _K.PLAIN, _ALL),
        Csr(0x644, "hip", _P.HYPERVISOR, _K.HIP),
        Csr(0x645, "hvip", _P.HYPERVISOR, _K.HVIP),
        Csr(0x64A, "htinst", _P.HYPERVISOR, _K.PLAIN, _ALL),
        Csr(0x680, "hgatp", _P.HYPERVISOR, _K.HGATP),
        Csr(0xE12, "hgeip", _P.HYPERVISOR, _K.HGEIP),
        # Virtual supervisor (reached directly from HS/M, or through the aliases with V=1)
        Csr(0x200, "vsstatus", _P.HYPERVISOR, _K.VSSTATUS),
        Csr(0x204, "vsie", _P.HYPERVISOR, _K.VSIE),
        Csr(0x205, "vstvec", _P.HYPERVISOR, _K.TVEC),
        Csr(0x240, "vsscratch", _P.HYPERVISOR, _K.PLAIN, _ALL),
        Csr(0x241, "vsepc", _P.HYPERVISOR, _K.EPC),
        Csr(0x242, "vscause", _P.HYPERVISOR, _K.PLAIN, _ALL),
        Csr(0x243, "vstval", _P.HYPERVISOR, _K.PLAIN, _ALL),
        Csr(0x244, "vsip", _P.HYPERVISOR, _K.VSIP),
        Csr(0x24D, "vstimecmp", _P.HYPERVISOR, _K.VSTIMECMP),
        Csr(0x280, "vsatp", _P.HYPERVISOR, _K.VSATP),
        # Machine information
        Csr(0xF11, "mvendorid", _P.ALWAYS, _K.PLAIN),
        Csr(0xF12, "marchid", _P.ALWAYS, _K.PLAIN),
        Csr(0xF13, "mimpid", _P.ALWAYS, _K.PLAIN),
        Csr(0xF14, "mhartid", _P.ALWAYS, _K.MHARTID),
        Csr(0xF15, "mconfigptr", _P.ALWAYS, _K.PLAIN),
        # Machine trap setup and handling
        Csr(0x300, "mstatus", _P.ALWAYS, _K.MSTATUS),
        Csr(0x301, "misa", _P.ALWAYS, _K.MISA),
        Csr(0x302, "medeleg", _P.ALWAYS, _K.MEDELEG, MEDELEG_WRITABLE),
        Csr(0x303, "mideleg", _P.ALWAYS, _K.MIDELEG, MIDELEG_WRITABLE),
        Csr(0x304, "mie", _P.ALWAYS, _K.MIE),
        Csr(0x305, "mtvec", _P.ALWAYS, _K.TVEC),
        Csr(0x306, "mcounteren", _P.ALWAYS, _K.PLAIN, 0xFFFFFFFF),
        Csr(0x30A, "menvcfg", _P.ALWAYS, _K.MENVCFG, ENVCFG_FIOM | ENVCFG_STCE),
        Csr(0x320, "mcountinhibit", _P.ALWAYS, _K.PLAIN, 0),
        Csr(0x340, "mscratch", _P.ALWAYS, _K.PLAIN, _ALL),
        Csr(0x341, "mepc", _P.ALWAYS, _K.EPC),
        Csr(0x342, "mcause", _P.ALWAYS, _K.PLAIN, _ALL),
        Csr(0x343, "mtval", _P.ALWAYS, _K.PLAIN, _ALL),
        Csr(0x344, "mip", _P.ALWAYS, _K.MIP),
        Csr(0x34A, "mtinst", _P.HYPERVISOR, _K.PLAIN, _ALL),
        Csr(0x34B, "mtval2", _P.HYPERVISOR, _K.PLAIN, _ALL),
        # Sdtrig triggers (Debug spec 1.0, 5.7): the registers QEMU 7.2 has; no tcontrol,
        # mcontext or scontext (accesses to those are illegal, as on QEMU 7.2)
        Csr(0x7A0, "tselect", _P.ALWAYS, _K.TSELECT),
        Csr(0x7A1, "tdata1", _P.ALWAYS, _K.TDATA1),
        Csr(0x7A2, "tdata2", _P.ALWAYS, _K.TDATA2),
        Csr(0x7A3, "tdata3", _P.ALWAYS, _K.TDATA3),
        Csr(0x7A4, "tinfo", _P.ALWAYS, _K.TINFO),
        # Machine counters
        Csr(0xB00, "mcycle", _P.ALWAYS, _K.CYCLE),
        Csr(0xB02, "minstret", _P.ALWAYS, _K.INSTRET),
    ]
    for i in range(3, 32):
        rows.append(Csr(0xC00 + i, f"hpmcounter{i}", _P.COUNTER, _K.READ_ZERO))
        rows.append(Csr(0xB00 + i, f"mhpmcounter{i}", _P.ALWAYS, _K.READ_ZERO))
        rows.append(Csr(0x320 + i, f"mhpmevent{i}", _P.ALWAYS, _K.READ_ZERO))
    for i in range(16):
        # 16 PMP entries: on RV64 only the even pmpcfg registers exist (3.7.1)
        predicate = _P.ALWAYS if i % 2 == 0 else _P.PMP_ODD
        rows.append(Csr(0x3A0 + i, f"pmpcfg{i}", predicate, _K.PMPCFG))
        rows.append(Csr(0x3B0 + i, f"pmpaddr{i}", _P.ALWAYS, _K.PMPADDR))
    return rows


CSRS: list[Csr] = sorted(_rows(), key=lambda c: c.number)
BY_NUMBER: dict[int, Csr] = {c.number: c for c in CSRS}
BY_NAME: dict[str, Csr] = {c.name: c for c in CSRS}
if len(BY_NUMBER) != len(CSRS) or len(BY_NAME) != len(CSRS):
    raise ValueError("duplicate CSR number or name in the CSR table")


# CSRs that exist only on RV32 (the upper halves of 64-bit registers, privileged spec tables
# 2.2-2.6): not in the table, so an access on rvh (RV64) is an illegal instruction; guests test
# exactly that, so the C header names them too.
RV32_ONLY_CSRS: dict[str, int] = {
    "cycleh": 0xC80,
    "timeh": 0xC81,
    "instreth": 0xC82,
    "htimedeltah": 0x615,
    "menvcfgh": 0x31A,
    "henvcfgh": 0x61A,
    "mstatush": 0x310,
    "mcycleh": 0xB80,
    "minstreth": 0xB82,
}
if set(RV32_ONLY_CSRS) & set(BY_NAME) or set(RV32_ONLY_CSRS.values()) & set(BY_NUMBER):
    raise ValueError("an RV32-only CSR is in the RV64 CSR table")

# CSR numbers by name, derived from the table rows as Op is from the encodings:
# ``CsrNumber.MSTATUS == 0x300``.  The C header's ``CSR_MSTATUS`` comes from here too.
CsrNumber = IntEnum(  # type: ignore[misc]
    "CsrNumber", [(csr.name.upper(), csr.number) for csr in CSRS]
)


def csr_number(name: str) -> int:
    return BY_NAME[name].number


# Columns of the packed table the kernel reads: one row per CSR number.
CSR_EXISTS = 0  # 1 if implemented
CSR_PREDICATE = 1
CSR_KIND = 2
CSR_WRITE_MASK = 3
CSR_VIRTUAL_ALIAS = 4  # CSR number, or -1
CSR_COLUMNS = 5


def csr_table_array() -> np.ndarray:
    """The table as an int64 array of shape (4096, CSR_COLUMNS) for the kernel."""
    table = np.zeros((4096, CSR_COLUMNS), dtype=np.int64)
    table[:, CSR_VIRTUAL_ALIAS] = -1
    for csr in CSRS:
        row = table[csr.number]
        row[CSR_EXISTS] = 1
        row[CSR_PREDICATE] = int(csr.predicate)
        row[CSR_KIND] = int(csr.kind)
        row[CSR_WRITE_MASK] = csr.write_mask
        row[CSR_VIRTUAL_ALIAS] = -1 if csr.virtual_alias is None else csr.virtual_alias
    return table

"""The CSR table: every control and status register rvh implements, as data.

Each row gives the number, the name, the *predicate* (which extension or mode makes the CSR
exist), the *kind* (how the kernel reads and writes it: plain storage under a write mask, or a
register with side effects or a computed value), the write mask of plain registers, and the
*virtual alias*: the VS-level register an access is rerouted to when V=1 (privileged spec 8.2,
"the VS CSRs ... substitute for the usual supervisor CSRs").

Storage is one flat array of 4096 int64 slots in the hart state, indexed by CSR number, so a
snapshot or a trace sees every register; views such as sstatus or sie have no slot of their
own.  :func:`csr_table_array` packs the table into the numpy form the kernel indexes.

Bit positions follow the privileged spec 20211203 (its chapter 8 is H 1.0): mstatus 3.1.6,
mip/mie 3.1.9, hstatus 8.2.1, satp 4.1.11, hgatp 8.2.10.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

# mstatus / sstatus fields (3.1.6)
MSTATUS_SIE = 1 << 1
MSTATUS_MIE = 1 << 3
MSTATUS_SPIE = 1 << 5
MSTATUS_UBE = 1 << 6
MSTATUS_MPIE = 1 << 7
MSTATUS_SPP = 1 << 8
MSTATUS_VS = 3 << 9
MSTATUS_MPP_SHIFT = 11
MSTATUS_MPP = 3 << 11
MSTATUS_FS = 3 << 13
MSTATUS_XS = 3 << 15
MSTATUS_MPRV = 1 << 17
MSTATUS_SUM = 1 << 18
MSTATUS_MXR = 1 << 19
MSTATUS_TVM = 1 << 20
MSTATUS_TW = 1 << 21
MSTATUS_TSR = 1 << 22
MSTATUS_UXL = 3 << 32
MSTATUS_SXL = 3 << 34
MSTATUS_SBE = 1 << 36
MSTATUS_MBE = 1 << 37
MSTATUS_GVA = 1 << 38
MSTATUS_MPV = 1 << 39
MSTATUS_SD = -(1 << 63)  # bit 63, as a signed int64

# XLEN fields read 2 (64-bit) and cannot be changed.
MSTATUS_XLEN64 = (2 << 32) | (2 << 34)

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
    MSTATUS_SIE
    | MSTATUS_SPIE
    | MSTATUS_UBE
    | MSTATUS_SPP
    | MSTATUS_VS
    | MSTATUS_FS
    | MSTATUS_XS
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_UXL
    | MSTATUS_SD
)
SSTATUS_WRITABLE = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_VS

# Interrupt bits of mip/mie (3.1.9, 8.2.3)
IP_SSIP = 1 << 1
IP_VSSIP = 1 << 2
IP_MSIP = 1 << 3
IP_STIP = 1 << 5
IP_VSTIP = 1 << 6
IP_MTIP = 1 << 7
IP_SEIP = 1 << 9
IP_VSEIP = 1 << 10
IP_MEIP = 1 << 11
IP_SGEIP = 1 << 12
IP_S_LEVEL = IP_SSIP | IP_STIP | IP_SEIP
IP_VS_LEVEL = IP_VSSIP | IP_VSTIP | IP_VSEIP
IP_M_LEVEL = IP_MSIP | IP_MTIP | IP_MEIP

# hstatus fields (8.2.1)
HSTATUS_VSBE = 1 << 5
HSTATUS_GVA = 1 << 6
HSTATUS_SPV = 1 << 7
HSTATUS_SPVP = 1 << 8
HSTATUS_HU = 1 << 9
HSTATUS_VGEIN = 0x3F << 12
HSTATUS_VTVM = 1 << 20
HSTATUS_VTW = 1 << 21
HSTATUS_VTSR = 1 << 22
HSTATUS_VSXL = 3 << 32
HSTATUS_WRITABLE = (
    HSTATUS_GVA
    | HSTATUS_SPV
    | HSTATUS_SPVP
    | HSTATUS_HU
    | HSTATUS_VTVM
    | HSTATUS_VTW
    | HSTATUS_VTSR
)

# menvcfg/henvcfg (3.1.18): FIOM, and STCE (Sstc enable) in bit 63
ENVCFG_FIOM = 1
ENVCFG_STCE = -(1 << 63)

# Exceptions that medeleg can delegate: everything except ecall from M (read-only zero,
# 3.1.8) and the guest faults, which exist only with H.
MEDELEG_WRITABLE = 0xB3FF & ~(1 << 11)
MEDELEG_WRITABLE_H = MEDELEG_WRITABLE | (1 << 10) | (0xF << 20)
# hedeleg: bits 9..11 (ecalls from HS/VS/M) and 20..23 (guest faults) are read-only zero.
HEDELEG_WRITABLE = 0xB1FF

MIDELEG_WRITABLE = IP_S_LEVEL

# satp / hgatp (4.1.11, 8.2.10)
SATP_MODE_SHIFT = 60
SATP_ASID_SHIFT = 44
SATP_ASID_MASK = 0xFFFF
SATP_PPN_MASK = (1 << 44) - 1
HGATP_VMID_SHIFT = 44
HGATP_VMID_MASK = 0x3FFF
SATP_MODE_BARE = 0
SATP_MODE_SV39 = 8
SATP_MODE_SV48 = 9

# misa (3.1.1): MXL=2, extensions A C D F I M S U (+ H when enabled)
MISA_RV64 = 2 << 62
MISA_D = 1 << 3
MISA_F = 1 << 5


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

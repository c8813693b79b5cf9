"""What gdb sees of a hart: the target description, the registers and the memory.

Register numbers follow gdb's own RISC-V numbering, so the target description and gdb agree
without a table: x0-x31 are 0-31, pc 32, f0-f31 33-64, CSR n is 65 + n (fflags 66, frm 67,
fcsr 68), and the virtual registers come after the CSRs: ``priv`` (4161, as gdb and QEMU
number it) and rvh's ``virt`` (4162, the H extension's V bit).

Memory goes through a translation chosen by the stub: the hart's own (M-mode: physical;
HS/U: satp; VS/VU: vsatp then hgatp's G-stage), physical (``monitor phys on``), or a VM's
(``monitor vm N``).  Page walks here read page tables and nothing else: no A/D updates, no
traps, no TLB fills; an address that does not translate is an error for gdb.
"""

from __future__ import annotations

from collections.abc import Callable

from rvh.cpu import layout as L
from rvh.cpu.csr import csr_read, csr_write
from rvh.cpu.hart import Hart
from rvh.isa import fields as F
from rvh.isa.csrs import CSRS, Predicate

CSR_REGNUM_BASE = 65
PRIV_REGNUM = CSR_REGNUM_BASE + 4096  # 4161
VIRT_REGNUM = PRIV_REGNUM + 1
PC_REGNUM = 32
FPR_REGNUM_BASE = 33
FLOAT_CSRS = ("fflags", "frm", "fcsr")

_X_NAMES = (
    "zero ra sp gp tp t0 t1 t2 fp s1 a0 a1 a2 a3 a4 a5 a6 a7 "
    "s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 t3 t4 t5 t6"
).split()
_F_NAMES = (
    "ft0 ft1 ft2 ft3 ft4 ft5 ft6 ft7 fs0 fs1 fa0 fa1 fa2 fa3 fa4 fa5 fa6 fa7 "
    "fs2 fs3 fs4 fs5 fs6 fs7 fs8 fs9 fs10 fs11 ft8 ft9 ft10 ft11"
).split()
_X_TYPES = {"ra": "code_ptr", "sp": "data_ptr", "gp": "data_ptr", "tp": "data_ptr"}


def csrs_for(extensions: str) -> list[tuple[int, str]]:
    """(number, name) of the CSRs a hart with these extensions has, the float ones aside."""
    found = []
    for csr in CSRS:
        if csr.name in FLOAT_CSRS or csr.predicate == Predicate.PMP_ODD:
            continue
        if csr.predicate == Predicate.HYPERVISOR and "h" not in extensions:
            continue
        found.append((csr.number, csr.name))
    return found


def target_xml(extensions: str) -> str:
    """The target description: gdb's riscv cpu, fpu and csr features, and the virtual one."""
    lines = [
        '<?xml version="1.0"?>',
        '<!DOCTYPE target SYSTEM "gdb-target.dtd">',
        '<target version="1.0">',
        "<architecture>riscv:rv64</architecture>",
        '<feature name="org.gnu.gdb.riscv.cpu">',
    ]
    for index, name in enumerate(_X_NAMES):
        kind = _X_TYPES.get(name, "int")
        lines.append(f'<reg name="{name}" bitsize="64" type="{kind}" regnum="{index}"/>')
    lines.append(f'<reg name="pc" bitsize="64" type="code_ptr" regnum="{PC_REGNUM}"/>')
    lines.append("</feature>")
    if "f" in extensions or "d" in extensions:
        lines.append('<feature name="org.gnu.gdb.riscv.fpu">')
        kind = "ieee_double" if "d" in extensions else "ieee_single"
        for index, name in enumerate(_F_NAMES):
            lines.append(
                f'<reg name="{name}" bitsize="64" type="{kind}" '
                f'regnum="{FPR_REGNUM_BASE + index}"/>'
            )
        for number, name in ((1, "fflags"), (2, "frm"), (3, "fcsr")):
            lines.append(
                f'<reg name="{name}" bitsize="32" type="int" '
                f'regnum="{CSR_REGNUM_BASE + number}" group="float"/>'
            )
        lines.append("</feature>")
    lines.append('<feature name="org.gnu.gdb.riscv.csr">')
    for number, name in csrs_for(extensions):
        lines.append(
            f'<reg name="{name}" bitsize="64" type="int" '
            f'regnum="{CSR_REGNUM_BASE + number}" group="system"/>'
        )
    lines.append("</feature>")
    lines.append('<feature name="org.gnu.gdb.riscv.virtual">')
    lines.append(f'<reg name="priv" bitsize="64" regnum="{PRIV_REGNUM}"/>')
    lines.append(f'<reg name="virt" bitsize="64" regnum="{VIRT_REGNUM}"/>')
    lines.append("</feature>")
    lines.append("</target>")
    return "\n".join(lines) + "\n"


class Registers:
    """Reading and writing one hart's registers by gdb number."""

    def __init__(self, extensions: str) -> None:
        self.has_float = "f" in extensions or "d" in extensions
        self.csr_numbers = {number for number, _ in csrs_for(extensions)}

    def exists(self, regnum: int) -> bool:
        if 0 <= regnum <= PC_REGNUM or regnum in (PRIV_REGNUM, VIRT_REGNUM):
            return True
        if FPR_REGNUM_BASE <= regnum < FPR_REGNUM_BASE + 32 or regnum in (66, 67, 68):
            return self.has_float
        return regnum - CSR_REGNUM_BASE in self.csr_numbers

    def read(self, hart: Hart, regnum: int) -> int:
        """The register's value as an unsigned 64-bit integer (KeyError if there is none)."""
        if not self.exists(regnum):
            raise KeyError(regnum)
        state = hart.state
        if regnum < 32:
            return hart.x(regnum)
        if regnum == PC_REGNUM:
            return hart.pc & (2**64 - 1)
        if regnum < FPR_REGNUM_BASE + 32:
            return int(state[L.F + regnum - FPR_REGNUM_BASE]) & (2**64 - 1)
        if regnum == PRIV_REGNUM:
            return int(state[L.PRIV])
        if regnum == VIRT_REGNUM:
            return int(state[L.VIRT])
        # csr_read computes views (sstatus, sip, the counters) without side effects
        value = csr_read(state, hart.machine, hart.tables, regnum - CSR_REGNUM_BASE, 0)
        return int(value) & (2**64 - 1)

    def write(self, hart: Hart, regnum: int, value: int) -> None:
        if not self.exists(regnum):
            raise KeyError(regnum)
        state = hart.state
        if regnum < 32:
            hart.set_x(regnum, value)
        elif regnum == PC_REGNUM:
            hart.pc = value
        elif regnum < FPR_REGNUM_BASE + 32:
            state[L.F + regnum - FPR_REGNUM_BASE] = _signed(value)
        elif regnum == PRIV_REGNUM:
            if value not in (L.PRIV_U, L.PRIV_S, L.PRIV_M):
                raise ValueError(f"priv {value} is not U (0), S (1) or M (3)")
            state[L.PRIV] = value
            if value == L.PRIV_M:
                state[L.VIRT] = 0
            hart.flush_tlb()  # re-selects the translation contexts for the new mode
        elif regnum == VIRT_REGNUM:
            if value not in (0, 1) or (value and int(state[L.PRIV]) == L.PRIV_M):
                raise ValueError("virt is 0 or 1, and 0 in M-mode")
            state[L.VIRT] = value
            hart.flush_tlb()
        else:
            # through the kernel's own write: WARL legalization and its side effects (a satp
            # write re-selects the TLB bank, an mstatus write the contexts)
            number = regnum - CSR_REGNUM_BASE
            csr_write(state, hart.machine, hart.tables, hart.tlb, number, _signed(value), 0)


def _signed(value: int) -> int:
    value &= 2**64 - 1
    return value - 2**64 if value >> 63 else value


# ---- page walks ---------------------------------------------------------------------------
PTE_V, PTE_R, PTE_W, PTE_X = 1, 2, 4, 8
PPN_MASK = (1 << 44) - 1
# satp/vsatp and hgatp modes: levels of the walk (Sv39 8, Sv48 9; x4 for the G-stage)
LEVELS = {F.SATP_MODE_SV39: 3, F.SATP_MODE_SV48: 4}

ReadPhysical = Callable[[int], int | None]  # a u64 at a physical address, or None


def walk(atp: int, vaddr: int, read_u64: ReadPhysical, g_stage: bool) -> int | None:
    """Translate ``vaddr`` through the table that ``atp`` (satp, vsatp or hgatp) points to.

    Privileged spec 4.3.2's algorithm without its side effects, for Sv39/Sv48 and their x4
    G-stage forms (8.5.1: the root table is four pages, two more bits of address).  Returns
    None where the hart would fault; permissions are not checked (a debugger reads code that
    is execute-only, and kernel data from user mode)."""
    mode = (atp >> 60) & 0xF
    if mode == 0:
        return vaddr if not g_stage or vaddr < (1 << 56) else None
    levels = LEVELS.get(mode)
    if levels is None:
        return None
    extra = 2 if g_stage else 0
    bits = 12 + 9 * levels + extra
    if g_stage:
        if vaddr >> bits:
            return None
    else:
        top = vaddr >> (bits - 1)
        if top not in (0, (1 << (64 - bits + 1)) - 1):
            return None  # not sign-extended
    table = (atp & PPN_MASK) << 12
    for level in range(levels - 1, -1, -1):
        width = 9 + (extra if level == levels - 1 else 0)
        index = (vaddr >> (12 + 9 * level)) & ((1 << width) - 1)
        pte = read_u64(table + 8 * index)
        if pte is None or not pte & PTE_V or (pte & (PTE_R | PTE_W)) == PTE_W:
            return None
        ppn = (pte >> 10) & PPN_MASK
        if pte & (PTE_R | PTE_X):
            offset_mask = (1 << (12 + 9 * level)) - 1
            if ppn & (offset_mask >> 12):
                return None  # a misaligned superpage
            return (ppn << 12) | (vaddr & offset_mask)
        table = ppn << 12
    return None


def two_stage(vsatp: int, hgatp: int, vaddr: int, read_u64: ReadPhysical) -> int | None:
    """A guest virtual address through vsatp, whose tables are guest-physical, then hgatp."""

    def read_guest(guest_physical: int) -> int | None:
        host = walk(hgatp, guest_physical, read_u64, True)
        return None if host is None else read_u64(host)

    guest_physical = walk(vsatp, vaddr, read_guest, False)
    if guest_physical is None:
        return None
    return walk(hgatp, guest_physical, read_u64, True)

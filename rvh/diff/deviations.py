"""The deviation catalogue, base ISA and privileged architecture without H: where QEMU 7.2
departs from the specification (or makes an implementation-defined choice rvh does not
share), a :class:`~rvh.diff.common.Deviation` recognizes exactly that case - the
instruction, rvh's outcome and QEMU's - and claims the fields to adopt from QEMU.  Each is
listed with its spec clause in ``docs/testing.md``; the H extension's are in
:mod:`rvh.diff.h_deviations`."""

from __future__ import annotations

from rvh.diff.common import (
    CSR,
    MASK64,
    QEMU_EXECUTED,
    Claim,
    Derived,
    Deviation,
    Ignore,
    StepContext,
    access_size,
    csr_writes,
    is_amo_or_sc,
)
from rvh.isa import fields as F
from rvh.isa.disasm import FLOAT_TO_INTEGER


def _trap_fields_only(ctx: StepContext, allowed: set[str]) -> bool:
    return bool(ctx.differing) and ctx.differing <= allowed


def _rule_amo_misaligned(ctx: StepContext) -> dict[str, int] | None:
    # rvh: store/AMO address misaligned (6); QEMU 7.2: load address misaligned (4)
    if not is_amo_or_sc(ctx.instruction) or ctx.info.exception != 6 or "pc" in ctx.differing:
        return None
    if "mcause" in ctx.differing and ctx.after["mcause"] == 6 and ctx.expected["mcause"] == 4:
        return {"mcause": 4}
    return None


def _rule_amo_access_fault(ctx: StepContext) -> dict[str, int] | None:
    # rvh: store/AMO access fault (7); QEMU 7.2: load access fault (5)
    if not is_amo_or_sc(ctx.instruction) or ctx.info.exception != 7 or "pc" in ctx.differing:
        return None
    if "mcause" in ctx.differing and ctx.after["mcause"] == 7 and ctx.expected["mcause"] == 5:
        return {"mcause": 5}
    return None


def _rule_read_only_csr_zero_source(ctx: StepContext) -> dict[str, int] | None:
    # csrrs/csrrc with rs1 != x0 holding 0 on a read-only CSR: the spec makes it an attempted
    # write (illegal instruction); QEMU 7.2 looks at the value and performs a plain read.
    ins = ctx.instruction
    if ins is None or ins.base_name not in ("csrrs", "csrrc") or ins.rs1 == 0:
        return None
    if ins.csr >> 10 != 3 or ctx.before[f"x{ins.rs1}"] != 0 or ctx.info.exception != 2:
        return None
    if ctx.expected["pc"] != ctx.pc + ins.length:
        return None  # QEMU trapped too
    allowed = {"pc", "mepc", "mcause", "mtval", "mstatus", f"x{ins.rd}"}
    if not _trap_fields_only(ctx, allowed):
        return None
    adopt = {name: ctx.expected[name] for name in ctx.differing}
    adopt["priv"] = ctx.info.privilege
    adopt["retired"] = 1  # QEMU executed it
    return adopt


MACHINE_ID_QEMU = 0x70216  # QEMU 7.2's marchid and mimpid for its generic rv64 CPU


def _rule_machine_ids(ctx: StepContext) -> dict[str, int] | None:
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in (CSR.MARCHID, CSR.MIMPID) or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd in ctx.differing and ctx.after[rd] == 0 and ctx.expected[rd] == MACHINE_ID_QEMU:
        return {rd: MACHINE_ID_QEMU}
    return None


def _rule_epc_bit0(ctx: StepContext) -> dict[str, int] | None:
    ins = ctx.instruction
    names = {CSR.MEPC: "mepc", CSR.SEPC: "sepc", CSR.VSEPC: "vsepc"}
    if ins is None or not ins.is_csr or ins.csr not in names or not csr_writes(ins):
        return None
    name = names[ins.csr]
    if name in ctx.differing and ctx.expected[name] == ctx.after[name] | 1:
        return {name: ctx.expected[name]}
    return None


def _rule_sc_without_reservation(ctx: StepContext) -> dict[str, Claim] | None:
    # An SC whose address is not reserved may fail without accessing memory, but a misaligned
    # one must trap (unprivileged spec 8.2); rvh checks the access (alignment, then memory and
    # translation) before the reservation.  QEMU 7.2 first compares the address with its
    # reservation and, when they differ, fails the SC (rd = 1) without a trap.
    ins = ctx.instruction
    if ins is None or not ins.base_name.startswith("sc."):
        return None
    if ctx.info.exception not in (6, 7, 13, 15, 21, 23):
        return None
    if ctx.expected["pc"] != ctx.pc + ins.length:
        return None
    rd = f"x{ins.rd}"
    if ins.rd != 0 and ctx.expected[rd] != 1:
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_EXECUTED] = 1
    claim["pc"] = ctx.expected["pc"]
    if ins.rd:
        claim[rd] = 1
    claim["reservation"] = -1  # an SC, failed or not, invalidates the reservation (8.2)
    return claim


def _rule_sc_word_after_lr_double(ctx: StepContext) -> dict[str, Claim] | None:
    # An sc.w after an lr.d of the same address: the word lies in the reservation set, and both
    # sides store when memory still holds the low word the LR read (rvh compares at the SC's
    # width).  QEMU 7.2 then sets rd from the old word, sign-extended, against the whole
    # doubleword the LR read, so it reports failure (rd = 1) for a store it made whenever that
    # doubleword's upper half is not the word's sign extension; a failed SC stores nothing
    # (8.2).  Memory agrees (both stored), so only rd is QEMU's: a wrong store by rvh would
    # show in memory.
    ins = ctx.instruction
    if ins is None or ins.base_name != "sc.w" or ins.rd == 0 or ctx.info.exception is not None:
        return None
    rd = f"x{ins.rd}"
    if ctx.differing != {rd} or ctx.after[rd] != 0 or ctx.expected[rd] != 1:
        return None
    return {rd: 1}


COUNTERS = {
    CSR.CYCLE: "cycle",
    CSR.INSTRET: "instret",
    CSR.MCYCLE: "mcycle",
    CSR.MINSTRET: "minstret",
}


def _rule_counter_reads_clock(ctx: StepContext) -> dict[str, int] | None:
    # QEMU 7.2 with -icount returns its virtual clock in ns for all four counters: the reading
    # instruction included (Zicsr 9.1: the value prior to the instruction), trapped ecalls and
    # ebreaks included, idle time in wfi included (instret counts retired instructions only).
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in COUNTERS or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd in ctx.differing and ctx.expected[rd] == ctx.time_ns & MASK64:
        return {rd: ctx.expected[rd]}
    return None


def _rule_mstatus_uxl(ctx: StepContext) -> dict[str, int] | None:
    ins = ctx.instruction
    if (
        ins is None
        or not ins.is_csr
        or ins.csr not in (CSR.MSTATUS, CSR.SSTATUS)
        or not csr_writes(ins)
    ):
        return None
    if "mstatus" in ctx.differing:
        if (ctx.after["mstatus"] ^ ctx.expected["mstatus"]) & ~F.MSTATUS_UXL_MASK == 0:
            return {"mstatus": ctx.expected["mstatus"]}
    return None


def _rule_fp_flags_leave_fs_clean(ctx: StepContext) -> dict[str, int] | None:
    # an F/D instruction that writes an x register (compare, classify, convert to integer) and
    # raised flags: fcsr changed, so rvh sets FS to Dirty (and SD); QEMU 7.2 leaves FS alone
    ins = ctx.instruction
    if ins is None or not ins.is_float or ins.base_name not in FLOAT_TO_INTEGER:
        return None
    if ctx.differing != {"mstatus"} or ctx.after.get("V", 0):
        return None
    dirty = F.MSTATUS_FS_MASK  # FS = Dirty (3) sets both bits of the field
    before, after, expected = ctx.before["mstatus"], ctx.after["mstatus"], ctx.expected["mstatus"]
    if before & dirty == dirty or expected != before:
        return None
    if (after ^ expected) & ~(F.MSTATUS_FS_MASK | F.MSTATUS_SD_MASK) & MASK64:
        return None
    return {"mstatus": expected}


def _rule_reset_mideleg(ctx: StepContext) -> dict[str, int | None] | None:
    # privileged 8.4.2 (H): mideleg bits 10, 6, 2 (and 12 with GEILEN > 0) are read-only one.
    # QEMU 7.2 shows them from its second dump on, but 0 in the reset dump.
    if ctx.index != 0 or "mideleg" not in ctx.differing or ctx.expected["mideleg"] != 0:
        return None
    return {"mideleg": None}  # accepted at this boundary only


# CSR bits that QEMU 7.2 lets software write where rvh, following the spec, keeps read-only
# zeros: the VS-level and SGEI interrupt bits without the H extension, Sscofpmf's LCOFI
# (bit 13) although QEMU does not enable Sscofpmf, the guest-page-fault and VS-ecall causes in
# medeleg without H, medeleg[11] (ecall from M) always, with H mip's VSTIP/VSEIP (read-only
# aliases of hvip, privileged spec 8.2.3/8.4.3), the upper halves of the counter-enables.
WRITABLE_RESERVED_BITS = {  # number: (field, bits without H, bits with H)
    CSR.MIDELEG: ("mideleg", 0x2444, 0x2000),
    CSR.MIE: ("mie", 0x3444, 0x2000),
    CSR.MIP: ("mip", 0x3444, 0x2440),  # with H: VSTIP/VSEIP (h-extension.md D2)
    CSR.MEDELEG: ("medeleg", 0xF00C00, 0x800),  # bit 11: ecall from M (3.1.8: read-only zero)
    # the counter-enable registers are 32 bits wide (3.1.11, 4.1.5); QEMU keeps 64 (not in its
    # dump: only reads of them are compared)
    CSR.MCOUNTEREN: ("mcounteren", -1 << 32 & MASK64, -1 << 32 & MASK64),
    CSR.SCOUNTEREN: ("scounteren", -1 << 32 & MASK64, -1 << 32 & MASK64),
}


def _rule_writable_reserved_bits(ctx: StepContext) -> dict[str, int | Ignore | None] | None:
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in WRITABLE_RESERVED_BITS:
        return None
    name, without_h, with_h = WRITABLE_RESERVED_BITS[ins.csr]
    bits = with_h if "V" in ctx.after else without_h  # QEMU prints V when H is on
    claim: dict[str, int | Ignore | None] = {}
    if csr_writes(ins) and name in ctx.differing:
        extra = ctx.after[name] ^ ctx.expected[name]
        if extra & ~bits == 0 and ctx.after[name] & extra == 0:
            claim[name] = Ignore(extra)  # QEMU has them set, rvh keeps them clear
    rd = f"x{ins.rd}"
    if ins.rd != 0 and rd in ctx.differing:
        extra = ctx.after[rd] ^ ctx.expected[rd]
        if extra & ~bits == 0 and ctx.after[rd] & extra == 0:
            claim[rd] = ctx.expected[rd]  # a read of those bits
    return claim or None


def _rule_misaligned_fault_tval(ctx: StepContext) -> dict[str, int | None] | None:
    # A misaligned load/store that faults: mtval is "the virtual address of the portion of the
    # access that caused the fault" (privileged 3.1.16).  QEMU 7.2 splits the access into two
    # naturally aligned accesses of the full size and reports the aligned address of the one
    # that faulted, which can lie outside the access.
    ins = ctx.instruction
    if ins is None or not (ins.is_load or ins.is_store) or ctx.info.exception not in (5, 7):
        return None
    size = access_size(ins)
    offset = ins.operands.get("imm", 0)  # HLV/HSV address rs1 alone
    address = (ctx.before[f"x{ins.rs1}"] + offset) & MASK64
    if size < 2 or address % size == 0 or "mtval" not in ctx.differing or "pc" in ctx.differing:
        return None
    first = address & ~(size - 1)
    if ctx.after["mtval"] == address and ctx.expected["mtval"] in (first, first + size):
        return {"mtval": ctx.expected["mtval"]}
    return None


def _rule_trigger_breakpoint_tval(ctx: StepContext) -> dict[str, int] | None:
    # A trigger's breakpoint exception (Sdtrig, action 0): "when a hardware breakpoint is
    # triggered ... mtval is written with the faulting virtual address" (privileged 3.1.16),
    # with GVA set when that is a guest virtual address (8.2.1).  QEMU 7.2 writes 0 (and no
    # GVA).  An ebreak is no trigger: both write 0 there.
    ins = ctx.instruction
    if ctx.info.fetch_fault == 3:
        pass  # an execute trigger fired at the next instruction, folded into this step
    elif ctx.info.exception != 3 or ins is None or ins.base_name in ("ebreak", "c.ebreak"):
        return None
    if not ctx.differing or not ctx.differing <= {"mtval", "stval", "mstatus", "hstatus"}:
        return None
    claim: dict[str, int] = {}
    for name in ctx.differing:
        ours, theirs = ctx.after[name], ctx.expected[name]
        if name in ("mtval", "stval"):
            if ours == 0 or theirs != 0:
                return None
        else:
            gva = F.MSTATUS_GVA_MASK if name == "mstatus" else F.HSTATUS_GVA_MASK
            if ours ^ theirs != gva or ours & gva == 0:
                return None
        claim[name] = theirs
    return claim if "mtval" in claim or "stval" in claim else None


BASE_DEVIATIONS: list[Deviation] = [
    Deviation(
        "amo-misaligned-cause",
        "unprivileged spec 8.4 and privileged 3.1.15: a misaligned AMO or SC raises "
        "store/AMO address misaligned (6)",
        "QEMU 7.2 raises load address misaligned (4) for a misaligned AMO",
        _rule_amo_misaligned,
    ),
    Deviation(
        "fp-flags-leave-fs",
        "privileged spec 3.1.6.6: FS becomes Dirty when the FP state (f registers or fcsr) "
        "changes, fflags included",
        "QEMU 7.2 leaves mstatus.FS (and SD) as they were when an F/D instruction that writes "
        "an x register (feq/flt/fle, fclass, fcvt to an integer) only accrues flags",
        _rule_fp_flags_leave_fs_clean,
    ),
    Deviation(
        "amo-access-fault-cause",
        "privileged spec 3.1.15: an AMO or SC that faults raises store/AMO access fault (7)",
        "QEMU 7.2 raises load access fault (5) for an AMO to an address with no memory",
        _rule_amo_access_fault,
    ),
    Deviation(
        "csr-set-clear-zero-read-only",
        "Zicsr 9.1: csrrs/csrrc with rs1 != x0 attempt the write whatever rs1 holds, so a "
        "read-only CSR raises illegal instruction",
        "QEMU 7.2 decides on the value: with rs1 holding 0 it reads the CSR without a trap",
        _rule_read_only_csr_zero_source,
    ),
    Deviation(
        "sc-fails-before-trapping",
        "unprivileged spec 8.2: a misaligned LR/SC raises an address-misaligned (or "
        "access-fault) exception; an SC without a reservation may fail without accessing "
        "memory, and rvh checks the access (alignment, memory, translation) first",
        "QEMU 7.2 fails an SC whose address is not the reserved one (rd = 1) without checking "
        "alignment, memory or translation, so without a trap",
        _rule_sc_without_reservation,
    ),
    Deviation(
        "sc-word-after-lr-double",
        "unprivileged spec 8.2: an SC that fails does not write memory; rvh lets an sc.w pair "
        "with an lr.d whose reservation set holds the word when memory still holds the word "
        "the LR read (stores, rd = 0)",
        "QEMU 7.2 stores the word but reports failure (rd = 1) when the doubleword its lr.d "
        "read is not the sign extension of its low word",
        _rule_sc_word_after_lr_double,
    ),
    Deviation(
        "counters-read-virtual-clock",
        "Zicsr 9.1 (a CSR read sees the value prior to the instruction) and Zicntr/privileged "
        "3.3.1 (instret counts retired instructions)",
        "QEMU 7.2 with -icount reads cycle/instret/mcycle/minstret as its virtual clock in ns: "
        "the reading instruction, trapped ecalls/ebreaks and time asleep in wfi included",
        _rule_counter_reads_clock,
    ),
    Deviation(
        "trigger-breakpoint-tval",
        "privileged spec 3.1.16: when a hardware breakpoint is triggered, mtval (stval) is "
        "written with the faulting virtual address; 8.2.1: GVA is set when it is a guest "
        "virtual address",
        "QEMU 7.2 writes 0 to xtval for the breakpoint exception of an Sdtrig trigger (and "
        "leaves GVA clear)",
        _rule_trigger_breakpoint_tval,
    ),
    Deviation(
        "machine-id-values",
        "privileged spec 3.1.3-3.1.4: marchid/mimpid are implementation-defined (0 = not "
        "implemented); rvh reads 0",
        "QEMU 7.2 reads 0x70216 (its version) from marchid and mimpid",
        _rule_machine_ids,
    ),
    Deviation(
        "epc-bit0",
        "privileged spec 3.1.14 (4.1.7, 8.2.15 for sepc/vsepc): with IALIGN=16, xepc[0] is "
        "always zero",
        "QEMU 7.2 keeps bit 0 of a value written to mepc/sepc (and vsepc)",
        _rule_epc_bit0,
        "D5",
    ),
    Deviation(
        "reset-mideleg",
        "privileged spec 8.4.2 (H): mideleg bits 10, 6, 2 and, with GEILEN > 0, 12 are "
        "read-only one",
        "QEMU 7.2's first dump (at reset) shows mideleg = 0, later ones 0x1444",
        _rule_reset_mideleg,
    ),
    Deviation(
        "misaligned-fault-tval",
        "privileged spec 3.1.16: for a misaligned access that faults, mtval holds the address "
        "of the portion of the access that faulted",
        "QEMU 7.2 reports the naturally aligned address of the aligned access it split off, "
        "which may lie below the access",
        _rule_misaligned_fault_tval,
    ),
    Deviation(
        "reserved-bits-writable",
        "privileged spec 3.1.8-3.1.9: delegation and enable bits of interrupts and exceptions "
        "that do not exist (VS-level and SGEI without H, LCOFI without Sscofpmf, guest-page "
        "faults without H) are read-only zero; with H mip.VSTIP/VSEIP are read-only (8.4.3); "
        "mcounteren/scounteren are 32-bit registers (3.1.11, 4.1.5)",
        "QEMU 7.2 lets mideleg, mie, mip and medeleg bits of those, and the upper halves of "
        "the counter-enables, be written",
        _rule_writable_reserved_bits,
        "D2, D32",
    ),
    Deviation(
        "mstatus-uxl",
        "privileged spec 3.1.6.2: UXL is WARL and rvh's U-mode is RV64 only (UXL read-only 2)",
        "QEMU 7.2 lets a write change mstatus.UXL",
        _rule_mstatus_uxl,
    ),
]

"""The deviation catalogue of the H extension: QEMU 7.2's departures from the ratified H
extension, each with its D-number (guests/hext/README.md, docs/h-extension.md; D33-D35 in
docs/testing.md).  Each rule recognizes one departure in the instruction, rvh's outcome and
QEMU's, and adopts QEMU's outcome: the values it shows, or (when the control flow differs)
QEMU's trap instead of rvh's execution or the reverse."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rvh.diff.common import (
    CSR,
    MASK64,
    QEMU_EXECUTED,
    QEMU_EXECUTED_WITH,
    QEMU_M_VIRTUAL,
    QEMU_PTE_BITS,
    QEMU_TRAPPED,
    STALE_WHILE_VIRTUAL,
    VIRTUAL_VIEW,
    Bits,
    Claim,
    Derived,
    Deviation,
    Ignore,
    Rule,
    StepContext,
    csr_writes,
    is_amo_or_sc,
    is_hlv_hsv,
)
from rvh.isa import fields as F
from rvh.isa.causes import INTERRUPT_BIT
from rvh.isa.causes import Exception_ as Cause
from rvh.isa.disasm import Instruction

# hstatus: VSBE (read-only zero in rvh) GVA SPV SPVP HU VGEIN VTVM VTW VTSR VSXL are fields;
# every other bit is WPRI (privileged 8.2.1)
HSTATUS_FIELDS = (
    F.HSTATUS_VSBE_MASK
    | F.HSTATUS_GVA_MASK
    | F.HSTATUS_SPV_MASK
    | F.HSTATUS_SPVP_MASK
    | F.HSTATUS_HU_MASK
    | F.HSTATUS_VGEIN_MASK
    | F.HSTATUS_VTVM_MASK
    | F.HSTATUS_VTW_MASK
    | F.HSTATUS_VTSR_MASK
    | F.HSTATUS_VSXL_MASK
)
HSTATUS_WPRI = ~HSTATUS_FIELDS & MASK64
# the vsstatus fields rvh lets be written; QEMU stores every other bit as written (D4)
VSSTATUS_WRITABLE = (
    F.VSSTATUS_SIE_MASK
    | F.VSSTATUS_SPIE_MASK
    | F.VSSTATUS_VS_MASK
    | F.VSSTATUS_SPP_MASK
    | F.VSSTATUS_SUM_MASK
    | F.VSSTATUS_MXR_MASK
)
VSSTATUS_RAW = ~VSSTATUS_WRITABLE & MASK64
ENVCFG_STCE = F.MENVCFG_STCE_MASK & MASK64  # the same bit in menvcfg and henvcfg
GUEST_PAGE_FAULTS = (
    Cause.INSTRUCTION_GUEST_PAGE_FAULT,
    Cause.LOAD_GUEST_PAGE_FAULT,
    Cause.STORE_GUEST_PAGE_FAULT,
)
IMPLICIT_ACCESS_TINST = (0x3000, 0x3020)  # 8.6.3: pseudoinstructions of VS-stage PTE accesses
# satp/vsatp: Bare, Sv39, Sv48; hgatp: Bare, Sv39x4, Sv48x4 (the same MODE values)
ATP_MODES_RVH = (F.SATP_MODE_BARE, F.SATP_MODE_SV39, F.SATP_MODE_SV48)
# what QEMU's dump shows through the guest's registers while V=1 (VIRTUAL_VIEW, mstatus)
V_VIEW_FIELDS = {*VIRTUAL_VIEW, "mstatus", *STALE_WHILE_VIRTUAL}


# -- what an instruction is, where it ran ---------------------------------------------------
def _is_hlvx(ctx: StepContext) -> bool:
    return ctx.insn.base_name.startswith("hlvx")


def _in_vs(ctx: StepContext) -> bool:
    return bool(ctx.before.get("V")) and ctx.info.privilege == 1


def _in_vu(ctx: StepContext) -> bool:
    return bool(ctx.before.get("V")) and ctx.info.privilege == 0


def _mprv_virtual(ctx: StepContext) -> bool:
    """A load/store in M-mode with MPRV = 1 and MPV = 1: made as in VS/VU-mode (8.4.1)."""
    status = ctx.before["mstatus"]
    return (
        ctx.info.privilege == 3
        and not ctx.before.get("V")
        and bool(status & F.MSTATUS_MPRV_MASK)
        and bool(status & F.MSTATUS_MPV_MASK)
        and (status >> 11) & 3 != 3
        and ctx.insn.is_memory_access
    )


def _virtual_load(ctx: StepContext) -> bool:
    """A load through two-stage translation: in VS/VU-mode, or an HLV/HLVX."""
    ins = ctx.insn
    return ins.is_load and (bool(ctx.before.get("V")) or ins.base_name.startswith("hlv"))


def _address(ctx: StepContext) -> int:
    """The virtual address a load/store/HLV/HSV accesses (rs1 + the offset)."""
    ins = ctx.insn
    offset = 0 if is_hlv_hsv(ins) or is_amo_or_sc(ins) else ins.imm
    return (ctx.before[f"x{ins.rs1}"] + offset) & MASK64


def _execute_only(pte: int | None) -> bool:
    return pte is not None and pte & (F.PTE_R_MASK | F.PTE_X_MASK) == F.PTE_X_MASK


def _not_executable(pte: int | None) -> bool:
    return pte is not None and not pte & F.PTE_X_MASK


def _stages(
    ctx: StepContext, test: Callable[[int | None], bool], *, vs: bool = True, g: bool = True
) -> bool:
    """Whether the accessed page passes ``test`` in the VS stage or the G-stage."""
    vs_leaf, g_leaf = ctx.pages(_address(ctx))
    return (vs and test(vs_leaf)) or (g and test(g_leaf))


def _trap_field(ctx: StepContext) -> str | None:
    """The cause field that differs after a trap: mcause, or scause (HS, or VS through the
    V=1 view)."""
    for name in ("mcause", "scause"):
        if name in ctx.differing:
            return name
    return None


def _qemu_trap(ctx: StepContext) -> tuple[str, int] | None:
    """The trap QEMU took at this instruction, as its dump shows it: (the level's cause field,
    the cause), or None.  It went to M (mepc = the pc, pc = mtvec) or to HS (sepc, stvec)."""
    qemu = ctx.expected
    if qemu["mepc"] == ctx.pc and qemu["pc"] == qemu["mtvec"] & ~3 & MASK64:
        return "mcause", qemu["mcause"]
    if not qemu["V"] and qemu["sepc"] == ctx.pc and qemu["pc"] == qemu["stvec"] & ~3 & MASK64:
        return "scause", qemu["scause"]
    return None


def _written_value(ins: Instruction, ctx: StepContext, old: int) -> int:
    """The value a CSR instruction writes, given the CSR's value before it."""
    source = ins.imm & 31 if ins.base_name.endswith("i") else ctx.before[f"x{ins.rs1}"]
    if ins.base_name.startswith("csrrw"):
        return source
    if ins.base_name.startswith("csrrs"):
        return old | source
    return old & ~source & MASK64


def _csr_results(ctx: StepContext) -> set[str]:
    """What a CSR instruction writes that QEMU's dump shows: rd, and satp (a view of vsatp
    with V=1) when it writes it."""
    ins = ctx.insn
    out = {f"x{ins.rd}"}
    if ins.csr == CSR.SATP and csr_writes(ins):
        out.add("satp")
    return out


def _load_results(ctx: StepContext) -> set[str]:
    return {f"x{ctx.insn.rd}"}


# -- kinds of rule ------------------------------------------------------------------------------
def _bits_rule(csrs: Sequence[int], bits: int, *, field: str | None = None) -> Rule:
    """QEMU keeps ``bits`` of a CSR that rvh (the spec) keeps zero: at a write of one of
    ``csrs`` the printed ``field`` differs in some of those bits, QEMU's set and rvh's clear
    (left out until they agree again); at a read the destination register does (QEMU's bits
    taken)."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        ins = ctx.instruction
        if ins is None or not ins.is_csr or ins.csr not in csrs:
            return None
        claim: dict[str, Claim] = {}
        if field and csr_writes(ins) and field in ctx.differing:
            extra = (ctx.after[field] ^ ctx.expected[field]) & bits
            if extra and ctx.after[field] & extra == 0:
                claim[field] = Ignore(extra)
        rd = f"x{ins.rd}"
        if ins.rd != 0 and rd in ctx.differing:
            extra = (ctx.after[rd] ^ ctx.expected[rd]) & bits
            if extra and ctx.after[rd] & extra == 0:
                claim[rd] = Bits(extra)
        return claim or None

    return rule


def _cause_rule(applies: Callable[[StepContext], bool], ours: int, theirs: int) -> Rule:
    """Both trapped, rvh with cause ``ours`` and QEMU with ``theirs``, and nothing else
    differs: rvh takes QEMU's cause."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        cause = ctx.info.fetch_fault if ctx.info.fetch_fault is not None else ctx.info.exception
        if ctx.instruction is None or cause != ours or not applies(ctx):
            return None
        name = _trap_field(ctx)
        if name is None or ctx.differing != {name}:
            return None
        if ctx.after[name] != ours or ctx.expected[name] != theirs:
            return None
        return {name: theirs}

    return rule


def _retrap_rule(applies: Callable[[StepContext], bool], ours: int, theirs: int) -> Rule:
    """rvh took exception ``ours`` where QEMU took ``theirs``: rvh takes QEMU's trap instead
    (its own trap entry, delegation included), and everything QEMU shows must then agree."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        if ctx.instruction is None or ctx.info.exception != ours or not applies(ctx):
            return None
        trap = _qemu_trap(ctx)
        if trap is None or trap[1] != theirs:
            return None
        claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
        claim[QEMU_TRAPPED] = (theirs, ctx.instruction.bits)
        return claim

    return rule


def _qemu_trapped_rule(
    applies: Callable[[StepContext], bool], causes: Sequence[int], *, address: bool = True
) -> Rule:
    """rvh executed an instruction that QEMU trapped on (with one of ``causes``, into M or
    HS): rvh takes QEMU's trap instead, with its tval (and for a memory access through two
    stages, its mtval2/htval and GVA = 1); everything QEMU shows must then agree."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        ins = ctx.instruction
        if ins is None or ctx.info.exception is not None or ctx.info.interrupt is not None:
            return None
        if not applies(ctx):
            return None
        trap = _qemu_trap(ctx)
        if trap is None or trap[1] not in causes:
            return None
        m = trap[0] == "mcause"
        if address:
            tval = ctx.expected["mtval" if m else "stval"]
            tval2 = ctx.expected["mtval2" if m else "htval"]
            outcome: tuple[int, ...] = (trap[1], tval, tval2, 1)
        else:
            outcome = (trap[1], ins.bits)
        claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
        claim[QEMU_TRAPPED] = outcome
        return claim

    return rule


def _qemu_executed_rule(
    applies: Callable[[StepContext], bool],
    ours: Sequence[int],
    results: Callable[[StepContext], set[str]],
) -> Rule:
    """rvh took one of exceptions ``ours`` on an instruction that QEMU executed: rvh's trap
    is taken back, the instruction counted as retired, and QEMU's ``results`` (the fields it
    wrote: rd, a CSR) taken over; everything else QEMU shows must then agree."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        ins = ctx.instruction
        if ins is None or ctx.info.exception not in ours or not applies(ctx):
            return None
        if ctx.expected["pc"] != (ctx.pc + ins.length) & MASK64:
            return None
        claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
        claim[QEMU_EXECUTED] = 1
        for name in results(ctx) | {"pc"}:
            if name != "x0":
                claim[name] = ctx.expected[name]
        return claim

    return rule


# -- the rules, by D-number ---------------------------------------------------------------------
def _rule_vsstatus_raw(ctx: StepContext) -> dict[str, Claim] | None:
    # D4. vsstatus has sstatus's layout (privileged 8.2.11): WPRI bits zero, UXL WARL (rvh:
    # RV64 only, 2).  QEMU 7.2 resets it with bit 35 set (mstatus's SXL) and stores what is
    # written as it is (UXL kept when 0 is written): the bits outside the writable fields are
    # left out until the two agree again, and a read takes QEMU's.
    if ctx.index == 0:
        if ctx.expected["vsstatus"] == ctx.after["vsstatus"] | 1 << 35:
            return {"vsstatus": Ignore(1 << 35)}
        return None
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr != CSR.VSSTATUS:
        return None
    claim: dict[str, Claim] = {}
    if csr_writes(ins) and "vsstatus" in ctx.differing:
        extra = ctx.after["vsstatus"] ^ ctx.expected["vsstatus"]
        if extra & ~VSSTATUS_RAW == 0:
            claim["vsstatus"] = Ignore(extra)
    rd = f"x{ins.rd}"
    if ins.rd != 0 and rd in ctx.differing:
        extra = ctx.after[rd] ^ ctx.expected[rd]
        if extra & ~VSSTATUS_RAW == 0:
            claim[rd] = Bits(extra)
    return claim or None


def _rule_atp_stored_raw(ctx: StepContext) -> dict[str, Claim] | None:
    # D3. hgatp: PPN[1:0] read zero, bits 59:58 zero, a reserved MODE is WARL; vsatp: a write
    # of a reserved MODE is ignored.  QEMU 7.2 stores hgatp as written, and vsatp's reserved
    # MODE.  Neither is in its dump: reads are compared.
    read = _atp_read(ctx)
    if read is None:
        return None
    rd, ours, theirs = read
    mode = theirs >> 60
    if mode in ATP_MODES_RVH:
        extra = ours ^ theirs
        if ctx.insn.csr == CSR.HGATP and extra & ~(3 | 3 << 58) == 0 and ours & extra == 0:
            return {rd: theirs}
        return None
    if mode != F.SATP_MODE_SV57:
        return {rd: theirs}  # a reserved MODE: rvh ignored the write
    return None


def _atp_read(ctx: StepContext) -> tuple[str, int, int] | None:
    """A read of hgatp or vsatp whose value differs: (rd, rvh's value, QEMU's)."""
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in (CSR.HGATP, CSR.VSATP) or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd not in ctx.differing:
        return None
    return rd, ctx.after[rd], ctx.expected[rd]


def _rule_atp_sv57(ctx: StepContext) -> dict[str, Claim] | None:
    # not a departure: QEMU 7.2 implements Sv57/Sv57x4, rvh does not (both legal)
    read = _atp_read(ctx)
    if read is not None and read[2] >> 60 == F.SATP_MODE_SV57 and read[1] >> 60 != F.SATP_MODE_SV57:
        return {read[0]: read[2]}
    return None


def _rule_vstvec_reserved_mode(ctx: StepContext) -> dict[str, Claim] | None:
    # D5. vstvec MODE 2 and 3 are reserved (8.2.13: vstvec holds what stvec can hold); rvh
    # ignores such a write, as QEMU 7.2 does for mtvec and stvec, but QEMU stores it in vstvec
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr != CSR.VSTVEC or not csr_writes(ins):
        return None
    if "vstvec" not in ctx.differing or ctx.after["vstvec"] != ctx.before["vstvec"]:
        return None
    value = _written_value(ins, ctx, ctx.before["vstvec"])
    if value & 3 >= 2 and ctx.expected["vstvec"] == value:
        return {"vstvec": value}
    return None


def _rule_vsip_masked(ctx: StepContext) -> dict[str, Claim] | None:
    # D6. vsip shows hip's VSEIP/VSTIP/VSSIP (as SEIP/STIP/SSIP) where hideleg delegates them;
    # QEMU 7.2's vsip shows SSIP only, and in VS-mode its sip/sie also drop the bits that
    # mideleg does not delegate
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.rd == 0:
        return None
    if ins.csr == CSR.VSIP:
        bits = 0x220
    elif ins.csr in (CSR.SIP, CSR.SIE) and ctx.before["V"]:
        bits = 0x222
    else:
        return None
    rd = f"x{ins.rd}"
    if rd not in ctx.differing:
        return None
    extra = ctx.after[rd] ^ ctx.expected[rd]
    if extra & ~bits == 0 and ctx.expected[rd] & extra == 0:
        return {rd: ctx.expected[rd]}
    return None


def _rule_henvcfg_stce(ctx: StepContext) -> dict[str, Claim] | None:
    # D8. Sstc: henvcfg.STCE is read-only zero while menvcfg.STCE = 0; QEMU 7.2 lets it be
    # written (henvcfg is not in its dump: reads are compared)
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr != CSR.HENVCFG or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd not in ctx.differing or ctx.csr(CSR.MENVCFG) & ENVCFG_STCE:
        return None
    if ctx.expected[rd] & ENVCFG_STCE and not ctx.after[rd] & ENVCFG_STCE:
        return {rd: Bits(ENVCFG_STCE)}
    return None


def _vstip_rule(sstc_on: bool) -> Rule:
    """D31 / D8.  mip.VSTIP (the dump's mip, or a read of mip or hip) differs, and QEMU's
    value is what its VS-timer latch gives (:class:`QemuVsTimer`): with both STCE set that is
    D31 (htimedelta not followed), otherwise D8 (the latch shows although STCE is clear)."""

    def rule(ctx: StepContext) -> dict[str, Claim] | None:
        if ctx.qemu_vstip < 0:
            return None
        stce = ctx.csr(CSR.MENVCFG) >> 63 and ctx.csr(CSR.HENVCFG) >> 63
        if bool(stce) != sstc_on:
            return None
        claim: dict[str, Claim] = {}
        if "mip" in ctx.differing and (ctx.after["mip"] ^ ctx.expected["mip"]) & F.MIP_VSTIP_MASK:
            if (ctx.expected["mip"] >> 6) & 1 == ctx.qemu_vstip:
                claim["mip"] = Ignore(F.MIP_VSTIP_MASK)
        ins = ctx.instruction
        if ins is not None and ins.is_csr and ins.csr in (CSR.MIP, CSR.HIP) and ins.rd:
            rd = f"x{ins.rd}"
            if rd in ctx.differing and (ctx.after[rd] ^ ctx.expected[rd]) & F.MIP_VSTIP_MASK:
                if (ctx.expected[rd] >> 6) & 1 == ctx.qemu_vstip:
                    claim[rd] = Bits(F.MIP_VSTIP_MASK)
        return claim or None

    return rule


def _rule_vs_trap_clears_gva(ctx: StepContext) -> dict[str, Claim] | None:
    # D10. 8.6.2: a trap into VS-mode leaves hstatus alone; QEMU 7.2 writes hstatus.GVA = 0
    if ctx.info.exception is None and ctx.info.interrupt is None:
        return None
    if not (ctx.before["V"] and ctx.after["V"]) or "hstatus" not in ctx.differing:
        return None
    if ctx.after["hstatus"] ^ ctx.expected["hstatus"] != F.HSTATUS_GVA_MASK:
        return None
    if ctx.expected["hstatus"] & F.HSTATUS_GVA_MASK:
        return None
    return {"hstatus": ctx.expected["hstatus"]}


def _rule_vs_exception_cause_shifted(ctx: StepContext) -> dict[str, Claim] | None:
    # D11. 8.2.2: only the VS-level interrupt codes 2/6/10 are translated (to 1/5/9) for
    # VS-mode; QEMU 7.2 translates exception codes 2 and 6 too (vscause, which its dump shows
    # as scause while V=1)
    cause = ctx.info.exception
    if cause not in (2, 6) or ctx.info.interrupt is not None:
        return None
    if not (ctx.before["V"] and ctx.after["V"]) or ctx.differing != {"scause"}:
        return None
    if ctx.after["scause"] == cause and ctx.expected["scause"] == cause - 1:
        return {"scause": cause - 1}
    return None


def _rule_hlv_trap_tval(ctx: StepContext) -> dict[str, Claim] | None:
    # D12. 8.6.1: the virtual-instruction (or illegal-instruction) trap of an HLV/HLVX/HSV
    # writes the instruction's bits to mtval/stval as for any other instruction; QEMU 7.2
    # writes the bits of an earlier instruction (its last decoded one)
    if not is_hlv_hsv(ctx.instruction) or ctx.info.exception not in (2, 22):
        return None
    for name in ("mtval", "stval"):
        if name in ctx.differing and ctx.after[name] == ctx.insn.bits:
            return {name: ctx.expected[name]}
    return None


def _rule_tsr_tvm_in_vs(ctx: StepContext) -> dict[str, Claim] | None:
    # D14. 8.4.1: mstatus.TSR and TVM affect only HS-mode (in VS-mode hstatus.VTSR/VTVM do
    # their job).  QEMU 7.2 applies them in VS-mode too: SRET (TSR), SFENCE.VMA and satp
    # accesses (TVM) raise an illegal-instruction exception where rvh executes them.
    ins = ctx.instruction
    if ins is None or ctx.info.exception is not None or ctx.info.interrupt is not None:
        return None
    if not _in_vs(ctx):
        return None
    status = ctx.before["mstatus"]
    if ins.base_name == "sret":
        trapping = status & F.MSTATUS_TSR_MASK
    elif ins.base_name == "sfence.vma" or (ins.is_csr and ins.csr == CSR.SATP):
        trapping = status & F.MSTATUS_TVM_MASK
    else:
        return None
    if not trapping or _qemu_trap(ctx) != ("mcause", 2):
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_TRAPPED] = (2, ins.bits)
    return claim


def _vu_supervisor_access(ctx: StepContext) -> bool:
    ins = ctx.insn
    if not _in_vu(ctx):
        return False
    if ins.is_csr:
        return (ins.csr >> 8) & 3 == 1  # a supervisor CSR (stimecmp included)
    return ins.base_name in ("sret", "sfence.vma")


def _rule_tinst_zero(ctx: StepContext) -> dict[str, Claim] | None:
    # D18. QEMU 7.2's mtinst/htinst read zero; rvh writes the transformed instruction (and
    # its registers hold what software writes).  Not in QEMU's dump: reads are compared.
    ins = ctx.instruction
    if ins is None or not ins.is_csr or ins.csr not in (CSR.MTINST, CSR.HTINST) or ins.rd == 0:
        return None
    rd = f"x{ins.rd}"
    if rd in ctx.differing and ctx.expected[rd] == 0:
        return {rd: 0}
    return None


def _rule_ad_update_read_only(ctx: StepContext) -> dict[str, Claim] | None:
    # D19. 8.5.1: the hardware A/D update of a VS-stage PTE is an implicit store checked by
    # the G-stage: in a read-only guest page it raises a guest-page fault (rvh's mtinst
    # 0x3020).  QEMU 7.2 writes the PTE anyway and the access goes on: rvh takes its trap
    # back, sets the PTE's A (and D) bits in memory as QEMU did, and takes QEMU's result.
    ins = ctx.instruction
    if ins is None or ctx.info.exception not in GUEST_PAGE_FAULTS or not ins.is_memory_access:
        return None
    m = ctx.after["mcause"] == ctx.info.exception and "mcause" in ctx.differing
    if ctx.csr(CSR.MTINST if m else CSR.HTINST) != 0x3020:
        return None
    if ctx.expected["pc"] != (ctx.pc + ins.length) & MASK64:
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_EXECUTED] = 1
    claim["pc"] = ctx.expected["pc"]
    if ins.is_load and (ins.rd or ins.is_float):
        register = f"{'f' if ins.is_float else 'x'}{ins.rd}"
        if register in ctx.expected:  # f registers: only in dumps made with -d fpu
            claim[register] = ctx.expected[register]
    pte = ctx.after["mtval2" if m else "htval"] << 2
    claim[QEMU_PTE_BITS] = (pte, F.PTE_A_MASK | (F.PTE_D_MASK if ins.is_store else 0))
    return claim


def _rule_gpa_top_bit(ctx: StepContext) -> dict[str, Claim] | None:
    # D21. 8.5.1: Sv39x4 translates guest physical addresses of 41 bits (Sv48x4: 50); QEMU
    # 7.2 treats the top bit (40, 49) like a sign bit and raises a guest-page fault for a GPA
    # that has it set, where rvh makes the access.  Loads only: the instruction is taken back,
    # and a store rvh made could not be.
    ins = ctx.instruction
    if ins is None or ctx.info.exception is not None or not ins.is_load:
        return None
    trap = _qemu_trap(ctx)
    if trap is None or trap[1] not in GUEST_PAGE_FAULTS:
        return None
    m = trap[0] == "mcause"
    tval2 = ctx.expected["mtval2" if m else "htval"]
    top = 40 if ctx.csr(CSR.HGATP) >> 60 == 8 else 49
    if not ((tval2 << 2) >> top) & 1 or (tval2 << 2) >> (top + 1):
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_TRAPPED] = (trap[1], ctx.expected["mtval" if m else "stval"], tval2, 1)
    return claim


def _implicit_access(ctx: StepContext) -> bool:
    """rvh's trap was a guest-page fault of the implicit VS-stage page-table access."""
    tinst = ctx.csr(CSR.MTINST) if "mcause" in ctx.differing else ctx.csr(CSR.HTINST)
    return tinst in IMPLICIT_ACCESS_TINST


def _rule_hlv_ignores_sum(ctx: StepContext) -> dict[str, Claim] | None:
    # D26. 8.3.1: HLV/HLVX/HSV are checked as VS/VU accesses (hstatus.SPVP), vsstatus.SUM
    # included.  QEMU 7.2 lets them reach VS-stage user pages with SPVP = 1 whatever SUM says:
    # rvh runs the instruction again with vsstatus.SUM set (the store of an HSV too).
    ins = ctx.insn
    if not is_hlv_hsv(ins) or ctx.info.exception not in (13, 15):
        return None
    if (
        not ctx.before["hstatus"] & F.HSTATUS_SPVP_MASK
        or ctx.csr(CSR.VSSTATUS) & F.VSSTATUS_SUM_MASK
    ):
        return None
    pte = ctx.pages(_address(ctx))[0]
    if pte is None or not pte & F.PTE_U_MASK:
        return None  # not a user page: SUM is not what faulted
    if ctx.expected["pc"] != (ctx.pc + ins.length) & MASK64:
        return None
    claim: dict[str, Claim] = {n: Derived() for n in ctx.differing}
    claim[QEMU_EXECUTED_WITH] = ((CSR.VSSTATUS, F.VSSTATUS_SUM_MASK),)
    return claim


def _rule_interrupt_lowest_code_first(ctx: StepContext) -> dict[str, Claim] | None:
    # D30. 8.2.3 / 3.1.9: simultaneous interrupts are taken in the order MEI MSI MTI SEI SSI
    # STI SGEI VSEI VSSI VSTI (and for VS-mode, its SEI SSI STI); QEMU 7.2 takes the lowest
    # code first.  Both took an interrupt into the same mode (with a direct trap vector only
    # the cause differs): rvh takes QEMU's cause, and its handler then serves that one.
    if ctx.info.interrupt is None or ctx.differing not in ({"mcause"}, {"scause"}):
        return None
    (name,) = ctx.differing
    ours, theirs = ctx.after[name], ctx.expected[name]
    if not (ours & INTERRUPT_BIT and theirs & INTERRUPT_BIT):
        return None
    code, qemu_code = ours & 0xFF, theirs & 0xFF
    virtual = name == "scause" and ctx.after["V"]
    pending = ctx.before["mip"]
    if qemu_code >= code or not (pending >> (qemu_code + 1 if virtual else qemu_code)) & 1:
        return None
    return {name: theirs}


def _rule_mret_to_m_with_mpv(ctx: StepContext) -> dict[str, Claim] | None:
    # D33. 8.4.1 (mstatus.MPV): MRET sets V = MPV only when it returns below M; with MPP = M,
    # V stays 0.  QEMU 7.2's mret sets V = MPV whatever MPP is, and swaps in the guest's
    # supervisor registers: its hart goes on in M-mode with V=1 (Stepper.enter_qemu_m_virtual)
    ins = ctx.instruction
    if ins is None or ins.base_name != "mret" or ctx.info.privilege != 3:
        return None
    status = ctx.before["mstatus"]
    if status & F.MSTATUS_MPP_MASK != F.MSTATUS_MPP_MASK or not status & F.MSTATUS_MPV_MASK:
        return None
    if ctx.before["V"] or ctx.after["V"] or ctx.expected["V"] != 1:
        return None
    if ctx.after["pc"] != ctx.expected["pc"] or not ctx.differing <= {"V"} | V_VIEW_FIELDS:
        return None
    claim: dict[str, Claim] = {name: Derived() for name in ctx.differing}
    claim[QEMU_M_VIRTUAL] = 1
    return claim


def _rule_vs_stage_fault_as_access_fault(ctx: StepContext) -> dict[str, Claim] | None:
    # D27. a VS-stage permission failure is a page fault (13/15); for HLV/HLVX/HSV and MPRV
    # (MPV = 1) accesses QEMU 7.2 reports an access fault (5/7)
    ins = ctx.instruction
    if ins is None or ctx.info.exception not in (13, 15):
        return None
    if not (is_hlv_hsv(ins) or _mprv_virtual(ctx)):
        return None
    name = _trap_field(ctx)
    if name is None or ctx.differing != {name} or ctx.expected[name] not in (5, 7):
        return None
    return {name: ctx.expected[name]}


def _rule_mprv_guest_page_fault(ctx: StepContext) -> dict[str, Claim] | None:
    # D29. a G-stage fault of an MPRV (MPV = 1) access is a guest-page fault (21/23, with
    # mtval2); QEMU 7.2 reports a page fault (13/15)
    if ctx.instruction is None or ctx.info.exception not in (21, 23) or not _mprv_virtual(ctx):
        return None
    name = _trap_field(ctx)
    expected = {21: 13, 23: 15}[ctx.info.exception]
    if name is None or ctx.differing != {name} or ctx.expected[name] != expected:
        return None
    return {name: expected}


def _rule_m_trap_gva(ctx: StepContext) -> dict[str, Claim] | None:
    # D35. 8.4.1 (mstatus.GVA): a trap into M-mode sets GVA to 1 when it writes a guest
    # virtual address to mtval, and to 0 otherwise.  QEMU 7.2 sets it for any trap from V=1
    # with a non-zero mtval (an illegal instruction's bits too) and never clears it.
    interrupt = ctx.info.interrupt is not None
    trap = _qemu_trap(ctx)
    if not interrupt and (trap is None or trap[0] != "mcause"):
        return None
    if "mstatus" not in ctx.differing or ctx.expected["V"]:
        return None
    qemu_gva = bool(ctx.before["mstatus"] & F.MSTATUS_GVA_MASK) or (
        bool(ctx.before["V"]) and not interrupt and ctx.expected["mtval"] != 0
    )
    if bool(ctx.expected["mstatus"] & F.MSTATUS_GVA_MASK) != qemu_gva:
        return None
    return {"mstatus": Bits(F.MSTATUS_GVA_MASK)}


def _d(name: str, clause: str, description: str, rule: Rule, ref: str = "") -> Deviation:
    return Deviation(name, clause, description, _with_h(rule), ref)


def _with_h(rule: Rule) -> Rule:
    """The H rules look at QEMU's H-extension dump (it prints V only with H on)."""

    def guarded(ctx: StepContext) -> dict[str, Claim] | None:
        if not H_DUMP_FIELDS <= ctx.expected.keys() or not H_DUMP_FIELDS <= ctx.before.keys():
            return None
        return rule(ctx)

    return guarded


H_DUMP_FIELDS = {"pc", "V", "mstatus", "hstatus", "vsstatus", "mtvec", "stvec", "vstvec"}
H_DUMP_FIELDS |= {"mepc", "sepc", "mcause", "scause", "mtval", "stval", "htval", "mtval2", "mip"}

H_DEVIATIONS: list[Deviation] = [
    _d(
        "hstatus-wpri",
        "privileged spec 8.2.1 (H): hstatus's WPRI fields are read-only zero when not "
        "furnished (2.3)",
        "QEMU 7.2 keeps whatever is written to hstatus's WPRI bits",
        _bits_rule((CSR.HSTATUS,), HSTATUS_WPRI, field="hstatus"),
        "D1",
    ),
    _d(
        "atp-stored-raw",
        "privileged spec 8.2.10 (H): hgatp PPN[1:0] read zero in the paged modes, bits 59:58 "
        "are zero (WARL) and MODE is WARL (a reserved value must read back as a supported "
        "one); 8.2.18: a vsatp write with an unsupported MODE is ignored (or WARL)",
        "QEMU 7.2 stores hgatp as written, and a reserved MODE written to vsatp (neither is in "
        "its dump: reads compared)",
        _rule_atp_stored_raw,
        "D3",
    ),
    _d(
        "vsstatus-raw",
        "privileged spec 8.2.11 (H): vsstatus has the layout of sstatus (WPRI bits zero; UXL "
        "is WARL and rvh's VU-mode is RV64 only)",
        "QEMU 7.2 resets vsstatus with bit 35 set and stores what is written to it unmasked "
        "(UXL kept when 0 is written)",
        _rule_vsstatus_raw,
        "D4",
    ),
    _d(
        "vstvec-reserved-mode",
        "privileged spec 8.2.13 (H): vstvec holds the values stvec can hold (MODE 2 and 3 are "
        "reserved; rvh ignores such a write, as QEMU does for mtvec and stvec)",
        "QEMU 7.2 stores a reserved MODE written to vstvec",
        _rule_vstvec_reserved_mode,
        "D5",
    ),
    _d(
        "vsip-ssip-only",
        "privileged spec 8.2.12 (H): vsip.SEIP/STIP/SSIP and vsie's bits are aliases of "
        "hip/hie's VS bits where hideleg delegates them",
        "QEMU 7.2's vsip shows only SSIP; in VS-mode its sip and sie also leave out the bits "
        "mideleg does not delegate",
        _rule_vsip_masked,
        "D6",
    ),
    _d(
        "hcounteren-64-bit",
        "privileged spec 8.2.6 (H): hcounteren is a 32-bit register",
        "QEMU 7.2 keeps bits 63:32 written to hcounteren (not in its dump: reads compared)",
        _bits_rule((CSR.HCOUNTEREN,), MASK64 & ~0xFFFFFFFF),
        "D7",
    ),
    _d(
        "henvcfg-stce-writable",
        "Sstc 1.0 (privileged spec 3.1.18, 8.2.9): while menvcfg.STCE = 0, henvcfg.STCE is "
        "read-only zero",
        "QEMU 7.2 lets henvcfg.STCE be written while menvcfg.STCE = 0 (henvcfg is not in its "
        "dump: reads compared)",
        _rule_henvcfg_stce,
        "D8",
    ),
    _d(
        "vstip-without-stce",
        "Sstc 1.0 (privileged spec 3.1.18, 8.2.9): with menvcfg.STCE = 0 or henvcfg.STCE = 0 "
        "vstimecmp has no effect and hip.VSTIP is hvip.VSTIP alone",
        "QEMU 7.2 keeps showing its vstimecmp latch in mip/hip when STCE is cleared",
        _vstip_rule(sstc_on=False),
        "D8",
    ),
    _d(
        "vu-supervisor-illegal",
        "privileged spec 8.6.1 (H): in VU-mode, an access to a supervisor CSR (that HS-mode "
        "could access), SRET and SFENCE.VMA raise a virtual-instruction exception",
        "QEMU 7.2 raises an illegal-instruction exception for them",
        _retrap_rule(_vu_supervisor_access, 22, 2),
        "D9",
    ),
    _d(
        "vs-trap-writes-gva",
        "privileged spec 8.6.2 (H): a trap into VS-mode does not modify hstatus",
        "QEMU 7.2 clears hstatus.GVA on a trap into VS-mode",
        _rule_vs_trap_clears_gva,
        "D10",
    ),
    _d(
        "vs-exception-cause-shifted",
        "privileged spec 8.2.2 (H): only the VS-level interrupts (codes 2, 6, 10) are reported "
        "to VS-mode with the S-level codes; exceptions keep their codes",
        "QEMU 7.2 also subtracts one from the codes of exceptions 2 and 6 delegated to VS-mode "
        "(an illegal instruction arrives as vscause 1)",
        _rule_vs_exception_cause_shifted,
        "D11",
    ),
    _d(
        "hlv-trap-tval",
        "privileged spec 8.6.1 (H) and 3.1.16: an illegal- or virtual-instruction trap of "
        "HLV/HLVX/HSV writes the instruction's bits to mtval/stval",
        "QEMU 7.2 writes the bits of some earlier instruction",
        _rule_hlv_trap_tval,
        "D12",
    ),
    _d(
        "vu-hfence-illegal",
        "privileged spec 8.3.2 (H): HFENCE.VVMA/GVMA with V=1 raise a virtual-instruction "
        "exception",
        "QEMU 7.2 raises an illegal-instruction exception for them in VU-mode",
        _retrap_rule(
            lambda c: _in_vu(c) and c.insn.base_name in ("hfence.vvma", "hfence.gvma"),
            22,
            2,
        ),
        "D13",
    ),
    _d(
        "tsr-tvm-in-vs",
        "privileged spec 8.4.1 (H): mstatus.TSR and TVM affect HS-mode only (VS-mode is "
        "governed by hstatus.VTSR and VTVM)",
        "QEMU 7.2 raises an illegal-instruction exception for SRET (TSR=1), SFENCE.VMA and "
        "satp accesses (TVM=1) in VS-mode",
        _rule_tsr_tvm_in_vs,
        "D14",
    ),
    _d(
        "vu-wfi-tw-virtual",
        "privileged spec 8.6.1 (H): WFI in VU-mode raises a virtual-instruction exception only "
        "when mstatus.TW = 0; with TW = 1 it is illegal (3.1.6.5: TW traps every mode but M)",
        "QEMU 7.2 raises a virtual-instruction exception for WFI in VU-mode with TW = 1",
        _retrap_rule(
            lambda c: (
                _in_vu(c)
                and c.insn.base_name == "wfi"
                and bool(c.before["mstatus"] & F.MSTATUS_TW_MASK)
            ),
            2,
            22,
        ),
        "D15",
    ),
    _d(
        "vtvm-satp-ignored",
        "privileged spec 8.2.1 (H): with hstatus.VTVM = 1 a VS-mode access to satp raises a "
        "virtual-instruction exception",
        "QEMU 7.2 lets VS-mode access satp (vsatp) with VTVM = 1",
        _qemu_executed_rule(
            lambda c: (
                _in_vs(c)
                and c.insn.is_csr
                and c.insn.csr == CSR.SATP
                and bool(c.before["hstatus"] & F.HSTATUS_VTVM_MASK)
            ),
            (22,),
            _csr_results,
        ),
        "D16",
    ),
    _d(
        "tvm-hgatp-ignored",
        "privileged spec 8.2.10 (H): with mstatus.TVM = 1 an HS-mode access to hgatp raises an "
        "illegal-instruction exception",
        "QEMU 7.2 lets HS-mode access hgatp with TVM = 1",
        _qemu_executed_rule(
            lambda c: (
                not c.before["V"]
                and c.info.privilege == 1
                and c.insn.is_csr
                and c.insn.csr == CSR.HGATP
                and bool(c.before["mstatus"] & F.MSTATUS_TVM_MASK)
            ),
            (2,),
            _csr_results,
        ),
        "D17",
    ),
    _d(
        "tinst-zero",
        "privileged spec 8.6.3 (H): mtinst/htinst hold zero or the transformed instruction; "
        "this project requires the transformed instruction, which rvh writes (and its "
        "mtinst/htinst hold what software writes)",
        "QEMU 7.2's mtinst and htinst always read zero (not in its dump: reads compared)",
        _rule_tinst_zero,
        "D18",
    ),
    _d(
        "ad-update-read-only-page",
        "privileged spec 8.5.1 (H): the A/D update of a VS-stage PTE is checked as a store by "
        "the G-stage: in a read-only guest page it raises a guest-page fault (mtinst 0x3020)",
        "QEMU 7.2 updates the PTE anyway and the access succeeds",
        _rule_ad_update_read_only,
        "D19",
    ),
    _d(
        "hlvx-needs-read",
        "privileged spec 8.3.1 (H): HLVX needs execute permission, not read permission, in "
        "both stages (an execute-only page can be read with HLVX)",
        "QEMU 7.2 checks read permission for HLVX as for HLV: it faults on execute-only pages "
        "(VS stage: load access fault; G-stage: guest-page fault)",
        _qemu_trapped_rule(lambda c: _is_hlvx(c) and _stages(c, _execute_only), (5, 13, 21)),
        "D20",
    ),
    _d(
        "hlvx-reads-non-executable",
        "privileged spec 8.3.1 (H): HLVX needs execute permission in both stages: a readable "
        "page without X faults",
        "QEMU 7.2 checks read permission for HLVX, so it reads readable non-executable pages",
        _qemu_executed_rule(
            lambda c: _is_hlvx(c) and _stages(c, _not_executable), (5, 13, 21), _load_results
        ),
        "D20",
    ),
    _d(
        "gpa-top-bit-faults",
        "privileged spec 8.5.1 (H): Sv39x4 (Sv48x4) translate 41-bit (50-bit) guest physical "
        "addresses; only bits 63:41 (63:50) must be zero",
        "QEMU 7.2 raises a guest-page fault for a guest physical address with bit 40 (49) set",
        _rule_gpa_top_bit,
        "D21",
    ),
    _d(
        "implicit-access-load-fault",
        "privileged spec 8.5.1 (H): a guest-page fault of the implicit VS-stage page-table "
        "access is reported for the original access type (a store's as 23, a fetch's as 20)",
        "QEMU 7.2 reports it as a load guest-page fault (21)",
        _cause_rule(_implicit_access, 23, 21),
        "D22",
    ),
    _d(
        "implicit-fetch-access-load-fault",
        "privileged spec 8.5.1 (H): a guest-page fault of the implicit VS-stage page-table "
        "access of a fetch is an instruction guest-page fault (20)",
        "QEMU 7.2 reports it as a load guest-page fault (21)",
        _cause_rule(_implicit_access, 20, 21),
        "D22",
    ),
    _d(
        "amo-guest-page-fault-cause",
        "privileged spec 8.6.4 and 3.1.15 (H): an AMO that faults in the G-stage raises a "
        "store/AMO guest-page fault (23)",
        "QEMU 7.2 raises a load guest-page fault (21) for it",
        _cause_rule(lambda c: is_amo_or_sc(c.instruction), 23, 21),
        "D23",
    ),
    _d(
        "vsstatus-mxr-g-stage",
        "privileged spec 8.5 and 8.3.1 (H): vsstatus.MXR makes executable pages readable in "
        "the VS stage only; the G-stage still needs read permission",
        "QEMU 7.2 applies vsstatus.MXR to the G-stage too: a VS load or HLV of a G-stage "
        "execute-only page succeeds",
        _qemu_executed_rule(
            lambda c: (
                _virtual_load(c)
                and bool(c.csr(CSR.VSSTATUS) & F.VSSTATUS_MXR_MASK)
                and _stages(c, _execute_only, vs=False)
            ),
            (21,),
            _load_results,
        ),
        "D24",
    ),
    _d(
        "hs-mxr-ignored",
        "privileged spec 8.5 and 8.3.1 (H): HS-level sstatus.MXR makes executable pages "
        "readable in both stages for V=1 loads and HLV/HLVX",
        "QEMU 7.2 ignores HS-level MXR for them: the load faults",
        _qemu_trapped_rule(
            lambda c: (
                _virtual_load(c)
                and bool(c.csr(CSR.MSTATUS) & F.MSTATUS_MXR_MASK)
                and _stages(c, _execute_only)
            ),
            (13, 21),
        ),
        "D25",
    ),
    _d(
        "hlv-ignores-sum",
        "privileged spec 8.3.1 and 8.4.1 (H): HLV/HLVX/HSV access memory as though V=1 at "
        "privilege SPVP, so a VS-stage user page needs vsstatus.SUM = 1 when SPVP = 1",
        "QEMU 7.2 lets them access user pages with SUM = 0 (rvh runs the instruction again "
        "with vsstatus.SUM set)",
        _rule_hlv_ignores_sum,
        "D26",
    ),
    _d(
        "vs-stage-fault-as-access-fault",
        "privileged spec 8.5 and 4.3.2 (H): an HLV/HLVX/HSV or MPRV (MPV = 1) access that the "
        "VS-stage page permissions deny raises a page fault (13, 15)",
        "QEMU 7.2 raises an access fault (5) for it",
        _rule_vs_stage_fault_as_access_fault,
        "D27",
    ),
    _d(
        "vsstatus-mxr-ignored",
        "privileged spec 8.3.1 and 8.4.1 (H): for HLV and MPRV (MPV = 1) loads vsstatus.MXR "
        "makes executable VS-stage pages readable",
        "QEMU 7.2 ignores vsstatus.MXR for them: the load faults (as an access fault, D27)",
        _qemu_trapped_rule(
            lambda c: (
                (c.insn.base_name.startswith("hlv.") or _mprv_virtual(c))
                and c.insn.is_load
                and bool(c.csr(CSR.VSSTATUS) & F.VSSTATUS_MXR_MASK)
                and _stages(c, _execute_only, g=False)
            ),
            (5, 13),
        ),
        "D28",
    ),
    _d(
        "mprv-guest-page-fault-cause",
        "privileged spec 8.4.1 and 8.5.1 (H): with MPRV = 1 and MPV = 1 loads and stores are "
        "translated in two stages, and a G-stage fault is a guest-page fault (21, 23)",
        "QEMU 7.2 reports a G-stage fault of such an access as a page fault (13, 15)",
        _rule_mprv_guest_page_fault,
        "D29",
    ),
    _d(
        "interrupt-lowest-code-first",
        "privileged spec 3.1.9 and 8.2.3 (H): simultaneous interrupts are taken in the order "
        "MEI, MSI, MTI, SEI, SSI, STI, SGEI, VSEI, VSSI, VSTI (for VS-mode: SEI, SSI, STI)",
        "QEMU 7.2 takes the pending interrupt with the lowest code first",
        _rule_interrupt_lowest_code_first,
        "D30",
    ),
    _d(
        "vstip-not-reevaluated",
        "Sstc 1.0 (privileged spec 8.2.3 with Sstc): hip.VSTIP is pending whenever time + "
        "htimedelta >= vstimecmp, so a write of htimedelta can raise or clear it",
        "QEMU 7.2 evaluates the comparison only when vstimecmp is written (and when the host "
        "timer armed then fires), not when htimedelta changes",
        _vstip_rule(sstc_on=True),
        "D31",
    ),
    _d(
        "mret-to-m-enters-v",
        "privileged spec 8.4.1 (H, mstatus.MPV): MRET sets V to MPV only when MPP is not M; "
        "returning to M-mode V stays 0",
        "QEMU 7.2's mret sets V = MPV even with MPP = M: the hart runs on in M-mode with V=1 "
        "(M-mode code reaches the VS registers through the supervisor CSRs) until a trap or "
        "an mret",
        _rule_mret_to_m_with_mpv,
        "D33",
    ),
    # menvcfg and senvcfg exist without H too: this one departure applies to both dumps
    Deviation(
        "envcfg-unimplemented-fields",
        "privileged spec 3.1.18 (menvcfg), 4.1.10 (senvcfg), 8.2.9 (henvcfg, H): PBMTE is "
        "read-only zero without Svpbmt; CBIE/CBCFE belong to Zicbom and CBZE to Zicboz, which "
        "QEMU 7.2 does not have either (nor does rvh)",
        "QEMU 7.2 lets CBIE, CBCFE, CBZE and PBMTE be written in menvcfg, senvcfg and henvcfg "
        "(not in its dump: reads compared)",
        _bits_rule((CSR.MENVCFG, CSR.SENVCFG, CSR.HENVCFG), 0xF0 | 1 << 62),
        "D34",
    ),
    _d(
        "m-trap-gva",
        "privileged spec 8.4.1 (H): a trap into M-mode sets mstatus.GVA to 1 if it writes a "
        "guest virtual address to mtval, and to 0 otherwise",
        "QEMU 7.2 sets mstatus.GVA for any trap from V=1 with a non-zero mtval (the bits of an "
        "illegal or virtual instruction too), and does not clear it on other traps into M",
        _rule_m_trap_gva,
        "D35",
    ),
    _d(
        "sv57-implemented",
        "privileged spec 4.1.11, 8.2.10 (H): Sv57/Sv57x4 are optional; rvh implements Sv39 "
        "and Sv48 (and x4), so a write of MODE 10 to satp/vsatp/hgatp is ignored",
        "QEMU 7.2 implements Sv57 and Sv57x4 (not a departure: both are legal)",
        _rule_atp_sv57,
    ),
]

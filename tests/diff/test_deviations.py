"""The deviation catalogue (rvh/diff/deviations.py, rvh/diff/h_deviations.py): each rule
claims exactly its case, and a step it does not explain stays a divergence."""

from __future__ import annotations

from collections import defaultdict

import pytest

from rvh.diff import DEVIATIONS, StepContext, StepInfo
from rvh.isa.disasm import decode, encode

# the fields of QEMU's dump with H (the H rules apply to such a dump only)
H_FIELDS = ["V", "pc", "mstatus", "hstatus", "vsstatus", "mip", "mtvec", "stvec", "vstvec"]
H_FIELDS += ["mepc", "sepc", "mcause", "scause", "mtval", "stval", "htval", "mtval2"]


def _context(bits: int, before: dict, after: dict, expected: dict, **info) -> StepContext:
    differing = {k for k in after if after[k] != expected[k]}
    return StepContext(
        1,
        0x8000_0000,
        decode(bits),
        before,
        after,
        expected,
        differing,
        StepInfo(0x8000_0000, **info),
    )


def _matching(ctx: StepContext) -> list[str]:
    return [d.name for d in DEVIATIONS if d.match(ctx) is not None]


def test_deviation_rules_are_exactly_scoped():
    read_marchid = encode("csrrs", rd=10, rs1=0, csr=0xF12)
    base = {"pc": 0x8000_0004, "x10": 0, "mcause": 0}
    qemu = {**base, "x10": 0x70216}
    assert _matching(_context(read_marchid, base, base, qemu)) == ["machine-id-values"]
    # the same difference after another instruction is a divergence
    assert _matching(_context(encode("addi", rd=10, rs1=0, imm=0), base, base, qemu)) == []
    # an AMO that QEMU reports with the load cause instead of the store/AMO one
    amo = encode("amoadd.w", rd=10, rs1=11, rs2=12)
    ours = {**base, "mcause": 6}
    assert _matching(_context(amo, base, ours, {**ours, "mcause": 4}, exception=6)) == [
        "amo-misaligned-cause"
    ]
    # ... but not a plain store
    store = encode("sw", rs1=11, rs2=12, imm=0)
    assert _matching(_context(store, base, ours, {**ours, "mcause": 4}, exception=6)) == []


def _claims(ctx: StepContext) -> dict[str, object]:
    """Each rule that claims the step, with what it claims."""
    return {d.name: claim for d in DEVIATIONS if (claim := d.match(ctx)) is not None}


@pytest.mark.parametrize("exception", [-1, 1, 2, 12, 20, 21, 22, 23])
@pytest.mark.parametrize(("privilege", "virtual"), [(0, 0), (1, 0), (3, 0), (0, 1), (1, 1)])
def test_a_step_without_an_instruction_matches_no_rule_about_one(exception, privilege, virtual):
    # an interrupt or a fetch fault leaves no instruction bits: rules that look at the
    # instruction must not match (nor raise) there, whatever fields differ; the step is a
    # divergence, claimed by no rule
    names = ["pc", "x10", "mcause", "scause", "vscause", "mtval", "stval", "htval", "mtval2"]
    names += ["htinst", "mtinst", "mstatus", "hstatus", "vsstatus", "mip", "hip", "hgatp"]
    before, after, expected = defaultdict(int), defaultdict(int), defaultdict(int)
    for n, name in enumerate(names):
        after[name], expected[name] = n + 1, n + 100
    before["V"] = virtual
    info = (
        {"privilege": privilege}
        if exception < 0
        else {"privilege": privilege, "exception": exception}
    )
    ctx = StepContext(
        1, 0x8000_0000, None, before, after, expected, set(names), StepInfo(0x8000_0000, **info)
    )
    assert _claims(ctx) == {}


def test_a_step_without_an_instruction_is_claimed_by_the_interrupt_order_rule():
    # the control for the test above: a rule about interrupts claims such a step, with QEMU's
    # cause (D30: QEMU 7.2 takes the lowest code first; rvh took MTI, QEMU MSI, both pending)
    mti, msi = (1 << 63) | 7, (1 << 63) | 3
    state = {name: 0 for name in H_FIELDS}
    before = {**state, "mip": 1 << 7 | 1 << 3}
    after = {**state, "pc": 0x8000_1000, "mcause": mti}
    expected = {**after, "mcause": msi}
    ctx = StepContext(
        1,
        0x8000_0000,
        None,
        before,
        after,
        expected,
        {"mcause"},
        StepInfo(0x8000_0000, interrupt=7),
    )
    assert _claims(ctx) == {"interrupt-lowest-code-first": {"mcause": msi}}


def test_every_deviation_cites_the_spec():
    for deviation in DEVIATIONS:
        assert deviation.clause and deviation.description, deviation.name
        assert any(word in deviation.clause for word in ("spec", "Zicsr", "H extension"))


def test_misaligned_tval_rule_reads_hlv_hsv_addresses_from_rs1_alone():
    # HLV/HSV have no immediate: the rule must take their address from rs1 (it once raised
    # AttributeError there and ended the comparison)
    hlv = encode("hlv.w", rd=10, rs1=11)
    base = {"pc": 0x8000_0004, "x10": 0, "x11": 0x8000_1002, "mtval": 0, "mcause": 0}
    ours = {**base, "mcause": 5, "mtval": 0x8000_1002}
    qemu = {**ours, "mtval": 0x8000_1004}  # the aligned half that faulted
    ctx = _context(hlv, base, ours, qemu, exception=5)
    assert _claims(ctx) == {"misaligned-fault-tval": {"mtval": 0x8000_1004}}


def test_sc_word_after_lr_double_claims_rd_only():
    # QEMU 7.2 stores an sc.w that follows an lr.d and reports failure; rvh stores, rd = 0
    sc = encode("sc.w", rd=6, rs1=4, rs2=30)
    base = {"pc": 0x8000_0004, "x6": 7, "mcause": 0}
    ours = {**base, "x6": 0}
    assert _claims(_context(sc, base, ours, {**ours, "x6": 1})) == {
        "sc-word-after-lr-double": {"x6": 1}
    }
    # rvh failing where QEMU stored is a divergence, and so is any other field differing
    assert _claims(_context(sc, base, {**base, "x6": 1}, {**base, "x6": 0})) == {}
    assert _claims(_context(sc, base, ours, {**ours, "x6": 1, "mcause": 2})) == {}
    # an sc.d is not covered
    scd = encode("sc.d", rd=6, rs1=4, rs2=30)
    assert _claims(_context(scd, base, ours, {**ours, "x6": 1})) == {}


def test_trigger_breakpoint_tval_rule_claims_only_a_trigger_with_tval_zero():
    # an Sdtrig trigger fired on a load: rvh writes the address to mtval (privileged 3.1.16),
    # QEMU 7.2 writes 0
    load = encode("lw", rd=10, rs1=11, imm=0)
    base = {"pc": 0x8000_0004, "x10": 0, "mtval": 0, "mcause": 0, "mstatus": 0}
    ours = {**base, "mcause": 3, "mtval": 0x8000_2000}
    qemu = {**ours, "mtval": 0}
    assert _claims(_context(load, base, ours, qemu, exception=3)) == {
        "trigger-breakpoint-tval": {"mtval": 0}
    }
    # with V=1, rvh also sets mstatus.GVA
    gva = 1 << 38
    ours_v = {**ours, "mstatus": gva}
    assert _claims(_context(load, base, ours_v, qemu, exception=3)) == {
        "trigger-breakpoint-tval": {"mtval": 0, "mstatus": 0}
    }
    # an ebreak is no trigger; a tval QEMU did write, or another differing field, diverge
    ebreak = encode("ebreak")
    assert _claims(_context(ebreak, base, ours, qemu, exception=3)) == {}
    assert _claims(_context(load, base, ours, {**ours, "mtval": 4}, exception=3)) == {}
    assert _claims(_context(load, base, ours, {**qemu, "x10": 1}, exception=3)) == {}

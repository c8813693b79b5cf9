"""``rvh diff`` and its parts (rvh/diff.py): the lockstep comparison, the deviation rules, the
report, the CLI and the reference tracer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from support import GUESTS, ROOT

from rvh.cli import main
from rvh.cpu import tables as T
from rvh.diff import (
    DEVIATIONS,
    StepContext,
    StepInfo,
    diff_elf,
    format_report,
    qemu_available,
    remove_io_replays,
    run_qemu,
)
from rvh.isa.disasm import decode, encode
from rvh.isa.instructions import Op
from rvh.trace import StateTrace, read_reference

needs_qemu = pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed")


def guest(name: str):
    elf = GUESTS / "isa" / f"{name}.elf"
    if not elf.exists():
        pytest.skip("guests not built (make guests)")
    return elf


def test_replayed_dumps_are_removed_but_not_jumps_to_self():
    load = encode("lw", rd=5, rs1=6, imm=0)  # a device access, replayed
    add = encode("addi", rd=5, rs1=5, imm=1)  # the icount budget ran out before it
    jump_to_self = encode("jal", rd=0, imm=0)  # waits for an interrupt: really repeats
    code = {0x100: load, 0x104: add, 0x200: jump_to_self}
    rows = np.array(
        [[0x100, 1], [0x100, 1], [0x104, 2], [0x104, 2], [0x200, 3], [0x200, 3], [0x200, 3]],
        dtype=np.uint64,
    )
    trace, removed = remove_io_replays(StateTrace(["pc", "x5"], rows), code.get)
    assert removed == 2
    assert trace.rows[:, 0].tolist() == [0x100, 0x104, 0x200, 0x200, 0x200]


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


@pytest.mark.parametrize("exception", [-1, 1, 2, 12, 20, 21, 22, 23])
@pytest.mark.parametrize(("privilege", "virtual"), [(0, 0), (1, 0), (3, 0), (0, 1), (1, 1)])
def test_a_step_without_an_instruction_matches_no_rule_about_one(exception, privilege, virtual):
    # an interrupt or a fetch fault leaves no instruction bits: rules that look at the
    # instruction must not match (nor raise) there, whatever fields differ
    from collections import defaultdict

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
    for deviation in DEVIATIONS:
        deviation.match(ctx)  # no AttributeError on the missing instruction


def test_every_deviation_cites_the_spec():
    for deviation in DEVIATIONS:
        assert deviation.clause and deviation.description, deviation.name
        assert any(word in deviation.clause for word in ("spec", "Zicsr", "H extension"))


def break_xor(tables):
    for row in range(int(tables[T.T_ENTRIES]), int(tables[T.T_CSRS]), T.ENTRY_FIELDS):
        if tables[row + T.ENTRY_OP] == Op.XOR:
            tables[row + T.ENTRY_OP] = Op.OR


@needs_qemu
def test_a_broken_instruction_is_reported_with_context():
    elf = guest("rv64i")
    reference = run_qemu(elf, hypervisor=True).trace
    result = diff_elf(elf, reference, hypervisor=True, context=5, tables_hook=break_xor)
    assert not result.ok
    report = format_report(result, elf=str(elf))
    divergence = result.divergence
    assert divergence.disassembly.startswith("xor")
    assert len(divergence.context) == 5 and divergence.context[-1].pc == divergence.pc
    assert "first divergence at instruction" in report and "QEMU 7.2" in report
    assert "reproduce: rvh diff" in report


@needs_qemu
def test_rvh_diff_command(tmp_path, capsys):
    elf = guest("rv64m")
    saved = tmp_path / "rv64m.ref.gz"
    assert main(["diff", str(elf), "--save-reference", str(saved)]) == 0
    out = capsys.readouterr().out
    assert "instruction boundaries agree with QEMU 7.2" in out
    assert read_reference(saved).exit_status == 0
    # again from the saved reference, without QEMU
    assert main(["diff", str(elf), "--reference", str(saved)]) == 0
    # a reference of another program is refused
    assert main(["diff", str(guest("rv64i")), "--reference", str(saved)]) != 0
    assert "another build" in capsys.readouterr().err


@needs_qemu
def test_reference_tracer_tool(tmp_path):
    out = tmp_path / "rv64c.ref"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "qemu_trace.py"),
            str(guest("rv64c")),
            "-o",
            str(out),
            "--cpu",
            "rv64,h=off",
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    trace = read_reference(out)
    assert "V" not in trace.fields and trace.state(0)["pc"] == 0x1000
    assert diff_elf(guest("rv64c"), trace, hypervisor=False).ok

"""The H-extension guests (guests/hext) match QEMU 7.2 instruction by instruction, from the
reset vector to the exit, CSRs included (V, hstatus, vsstatus, htval, mtval2...), except where
QEMU 7.2 departs from the ratified spec: there the comparison recognizes the departure (a
``Deviation`` of rvh/diff/h_deviations.py, with its D-number of guests/hext/README.md and
docs/h-extension.md), adopts QEMU's outcome and goes on.

The ``-qemu`` builds are compared: their control flow depends on QEMU's answers only at the
listed departures, and adopting QEMU's outcome there makes rvh take the same branches (and
print the same ``SPEC ...`` lines), so both exit 0.  Each guest must meet exactly the
departures listed below: a rule that stops applying, or one that starts to, fails the test.

QEMU runs beside the comparison (its ``-d cpu`` log streamed through a FIFO), so the whole of
each guest is compared: about 240 k (hcsr), 170 k (hvirt), 190 k (hirq), 1.4 M (hvinst) and
4.8 M (hstage, Sv39x4 and Sv48x4) instructions, about 2 minutes in all, hstage's QEMU run
(about 60 s single-stepped) the longest part.
"""

from __future__ import annotations

import numpy as np
import pytest
from support import GUESTS

from rvh.diff import (
    DEVIATIONS,
    H_DEVIATIONS,
    QemuLogParser,
    StateTrace,
    StepContext,
    StepInfo,
    diff_elf,
    elf_fetcher,
    format_report,
    qemu_available,
    qemu_command,
    read_qemu_log,
    remove_io_replays,
    run_qemu,
)
from rvh.diff import qemu as diff_qemu
from rvh.isa.disasm import decode, encode

COMMON = {"reset-mideleg", "vsstatus-raw"}  # QEMU's reset state (mideleg, vsstatus bit 35)
EXPECTED = {
    "hcsr": COMMON
    | {
        "hstatus-wpri",  # D1
        "reserved-bits-writable",  # D2, D32
        "atp-stored-raw",  # D3
        "vstvec-reserved-mode",  # D5
        "epc-bit0",  # D5
        "vsip-ssip-only",  # D6
        "hcounteren-64-bit",  # D7
        "henvcfg-stce-writable",  # D8
        "tinst-zero",  # D18
        "envcfg-unimplemented-fields",  # D34
        "sv57-implemented",  # not a departure
    },
    "hvirt": COMMON
    | {
        "vsip-ssip-only",  # D6
        "vs-trap-writes-gva",  # D10
        "vs-exception-cause-shifted",  # D11
        "mret-to-m-enters-v",  # D33
    },
    "hvinst": COMMON
    | {
        "vu-supervisor-illegal",  # D9
        "hlv-trap-tval",  # D12
        "vu-hfence-illegal",  # D13
        "tsr-tvm-in-vs",  # D14
        "vu-wfi-tw-virtual",  # D15
        "vtvm-satp-ignored",  # D16
        "tvm-hgatp-ignored",  # D17
        "m-trap-gva",  # D35
        "counters-read-virtual-clock",  # not H: QEMU's counters read its clock
    },
    "hstage": COMMON
    | {
        "vs-trap-writes-gva",  # D10
        "tinst-zero",  # D18
        "ad-update-read-only-page",  # D19
        "hlvx-needs-read",  # D20
        "hlvx-reads-non-executable",  # D20
        "gpa-top-bit-faults",  # D21
        "implicit-access-load-fault",  # D22
        "implicit-fetch-access-load-fault",  # D22
        "amo-guest-page-fault-cause",  # D23
        "vsstatus-mxr-g-stage",  # D24
        "hs-mxr-ignored",  # D25
        "hlv-ignores-sum",  # D26
        "vs-stage-fault-as-access-fault",  # D27
        "vsstatus-mxr-ignored",  # D28
        "mprv-guest-page-fault-cause",  # D29
        "m-trap-gva",  # D35
        "sc-fails-before-trapping",  # not H: an SC without reservation fails first
    },
    "hirq": COMMON
    | {
        "vstip-without-stce",  # D8
        "interrupt-lowest-code-first",  # D30
        "vstip-not-reevaluated",  # D31
    },
}


@pytest.mark.qemu
@pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed")
@pytest.mark.parametrize("name", list(EXPECTED))
def test_hext_guest_matches_qemu(name):
    elf = GUESTS / "hext" / f"{name}-qemu.elf"
    if not elf.exists():
        pytest.skip("guests not built (make guests)")
    result = diff_elf(elf, hypervisor=True, context=20, max_instructions=10_000_000, timeout=900)
    report = format_report(result, elf=str(elf))
    assert result.ok, report
    assert not result.reference_truncated, report
    assert result.rvh_exit == result.reference_exit == 0, report
    applied = {d.name for d in result.deviations}
    assert applied == EXPECTED[name], (
        f"departures met: {sorted(applied)}; expected {sorted(EXPECTED[name])}\n{report}"
    )


def test_every_h_deviation_is_met_by_a_guest():
    names = {d.name for d in H_DEVIATIONS}
    met = set().union(*EXPECTED.values())
    assert names <= met, f"never exercised: {sorted(names - met)}"
    refs = {ref.strip() for d in DEVIATIONS for ref in d.ref.split(",") if ref}
    # guests/hext/README.md's D1-D32, and D33-D35 found by this comparison (docs/testing.md)
    assert refs == {f"D{n}" for n in range(1, 36)}


# ---- the rules are exactly scoped --------------------------------------------------------------
FIELDS = [
    "V", "pc", "mstatus", "hstatus", "vsstatus", "mip", "mtvec", "stvec", "vstvec", "mepc",
    "sepc", "mcause", "scause", "mtval", "stval", "htval", "mtval2", "x10", "x11",
]  # fmt: skip


def _state(**values) -> dict[str, int]:
    state = dict.fromkeys(FIELDS, 0)
    state.update(mtvec=0x8000_1000, stvec=0x8000_2000, mstatus=0xA_0000_0000)
    state.update(values)
    return state


def _matching(bits, before, after, expected, privilege=3, **info) -> list[str]:
    differing = {k for k in after if after[k] != expected[k]}
    ctx = StepContext(
        1,
        0x8000_0000,
        decode(bits),
        before,
        after,
        expected,
        differing,
        StepInfo(0x8000_0000, privilege=privilege, **info),
    )
    return [d.name for d in DEVIATIONS if d.match(ctx) is not None]


def test_hstatus_wpri_bits_only():
    write = encode("csrrw", rd=0, rs1=10, csr=0x600)
    base = _state(pc=0x8000_0004, hstatus=2 << 32)
    assert _matching(write, base, base, {**base, "hstatus": (2 << 32) | 1 << 40}) == [
        "hstatus-wpri"
    ]
    # VTSR is a field: a difference there is rvh's to explain
    assert _matching(write, base, base, {**base, "hstatus": (2 << 32) | 1 << 22}) == []
    # without H (no V in the dump) no H rule applies
    no_h = {k: v for k, v in base.items() if k != "V"}
    assert _matching(write, no_h, no_h, {**no_h, "hstatus": (2 << 32) | 1 << 40}) == []


def test_hfence_cause_only_in_vu():
    hfence = encode("hfence.vvma", rs1=0, rs2=0)
    before = _state(V=1)
    after = _state(pc=0x8000_1000, mepc=0x8000_0000, mcause=22, mtval=hfence)
    qemu = {**after, "mcause": 2}
    assert _matching(hfence, before, after, qemu, privilege=0, exception=22) == [
        "vu-hfence-illegal"
    ]
    # in VS-mode QEMU raises the virtual-instruction exception too: a cause 2 there diverges
    assert _matching(hfence, before, after, qemu, privilege=1, exception=22) == []


def test_mret_enters_v_only_with_mpp_m():
    mret = encode("mret")
    mpv, mpp_m, mpp_s = 1 << 39, 3 << 11, 1 << 11
    before = _state(mstatus=0xA_0000_0000 | mpv | mpp_m)
    after = _state(pc=0x8000_0004, mstatus=0xA_0000_0080)
    qemu = {**after, "V": 1}
    assert _matching(mret, before, after, qemu) == ["mret-to-m-enters-v"]
    # with MPP = S, V = MPV = 1 is the spec's outcome: a V=0 there is rvh's divergence
    before_s = _state(mstatus=0xA_0000_0000 | mpv | mpp_s)
    assert _matching(mret, before_s, after, qemu) == []


# ---- QEMU's dumps as they come ------------------------------------------------------------------
def _dump(pc: int, v: int, satp: bool) -> bytes:
    lines = [f" V      =   {v}", f" pc       {pc:016x}"]
    for name in ("mstatus", "hstatus"):
        lines.append(f" {name:<8} {0xA00000000:016x}")
    if satp:
        lines.append(f" {'satp':<8} {0x8000000000000123:016x}")
    for row in range(8):
        lines.append("".join(f" x{4 * row + k}/r{k}{' ' * 3} {4 * row + k:016x}" for k in range(4)))
    return ("\n".join(lines) + "\n").encode()


def test_log_parser_reads_dumps_that_leave_out_satp_in_pieces():
    log = b"".join(_dump(0x1000 + 4 * i, i % 2, satp=i != 3) for i in range(6))
    parser = QemuLogParser()
    parts, missing = [], {}
    count = 0
    for at in range(0, len(log), 97):  # pieces that cut dumps and lines anywhere
        rows, absent = parser.feed(log[at : at + 97])
        missing.update({count + r: names for r, names in absent.items()})
        parts.append(rows)
        count += len(rows)
    rows, absent = parser.finish()
    missing.update({count + r: names for r, names in absent.items()})
    rows = np.concatenate([p for p in parts if len(p)] + [rows])
    fields = parser.fields
    assert fields[:2] == ["V", "pc"] and "satp" in fields and fields[-1] == "x31"
    assert len(rows) == 6
    assert rows[:, fields.index("pc")].tolist() == [0x1000 + 4 * i for i in range(6)]
    assert rows[:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    assert missing == {3: ["satp"]}
    assert rows[3, fields.index("satp")] == rows[2, fields.index("satp")]  # kept, not compared
    assert rows[5, fields.index("x13")] == 13


@pytest.mark.qemu
@pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed")
def test_streamed_reference_equals_the_log_file(tmp_path, monkeypatch):
    """QEMU's log through the FIFO, parsed in small pieces while it runs, gives the rows of
    the same log written to a file and read afterwards."""
    import subprocess

    elf = GUESTS / "isa" / "zicsr.elf"
    if not elf.exists():
        pytest.skip("guests not built (make guests)")
    log = tmp_path / "cpu.log"
    subprocess.run(
        qemu_command(str(elf), str(log), hypervisor=True),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
    )
    from_file, _ = remove_io_replays(read_qemu_log(log), elf_fetcher(elf))
    monkeypatch.setattr(diff_qemu, "LOG_READ", 4096)
    monkeypatch.setattr(diff_qemu, "ROWS_PER_BLOCK", 100)
    streamed = run_qemu(elf, hypervisor=True).trace
    assert streamed.fields == from_file.fields
    assert np.array_equal(streamed.rows, from_file.rows)
    assert streamed.exit_status == 0


@pytest.mark.qemu
@pytest.mark.skipif(not qemu_available(), reason="qemu-system-riscv64 not installed")
def test_a_departure_outside_a_rule_is_a_divergence():
    """Each departure hvirt meets, with QEMU's value at that boundary altered in one more bit,
    is no longer recognized: the comparison stops there."""
    elf = GUESTS / "hext" / "hvirt-qemu.elf"
    if not elf.exists():
        pytest.skip("guests not built (make guests)")
    trace = run_qemu(elf, hypervisor=True).trace
    result = diff_elf(elf, trace, hypervisor=True)
    assert result.ok, format_report(result)
    seen = set()
    for applied in result.deviations:
        if applied.name in seen or applied.name in COMMON:
            continue
        seen.add(applied.name)
        name = sorted(applied.fields)[0]
        rows = trace.rows.copy()
        rows[applied.index + 1, trace.fields.index(name)] ^= np.uint64(1 << 61)
        altered = StateTrace(trace.fields, rows, trace.meta, trace.exit_status)
        broken = diff_elf(elf, altered, hypervisor=True)
        assert not broken.ok, applied.name
        assert broken.divergence.index == applied.index, format_report(broken)
    assert seen == EXPECTED["hvirt"] - COMMON

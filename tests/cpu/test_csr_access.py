"""Who may access which CSR: one row per (mode, CSR class, read/write), run on a real hart.

The expected outcome of every row comes from the privileged spec (20211203):

* 2.1: CSR number bits 9:8 give the lowest privilege that may access it (0 user, 1 supervisor,
  2 hypervisor and VS CSRs, 3 machine) and bits 11:10 = 3 mark it read-only; an access without
  the privilege, a write to a read-only CSR, or an access to a CSR that does not exist raises an
  illegal-instruction exception.  Debug-mode CSRs (0x7B0-0x7BF) are accessible only in Debug
  mode (RISC-V Debug spec, core debug registers): outside it, as if they did not exist.
* 3.1.11, 4.1.5 and hcounteren in 8.2: the counters (cycle...) are readable below M only where
  mcounteren allows them (else illegal), in U-mode only where scounteren also allows them, and
  with V=1 only where hcounteren allows them.
* 8.6.1: with V=1, an access that would be allowed in HS-mode (or, from VU-mode, in U-mode
  with the hypervisor's counter enables) but is not in VS/VU-mode raises a virtual-instruction
  exception instead: an H or VS CSR from VS or VU, an S CSR from VU, a counter blocked only by
  hcounteren (or, in VU-mode, scounteren).  What HS-mode may not do either stays illegal.

Each row drops from M-mode to the mode under test with mret (mstatus.MPP/MPV), executes the
one CSR instruction and then ecall; the M-mode handler records mcause and mtval.  An access
that is allowed shows as the ecall's cause from that mode.
"""

from __future__ import annotations

import pytest
from support import run_asm

pytestmark = pytest.mark.usefixtures("toolchain")

# exception codes (privileged spec table 3.6 and 8.6)
ILLEGAL = 2
VIRTUAL = 22
ECALL_FROM = {"U": 8, "VU": 8, "HS": 9, "VS": 10, "M": 11}
OK = "ok"

# (mstatus.MPP, mstatus.MPV) that mret uses to enter each mode
ENTRY = {"M": (3, 0), "HS": (1, 0), "U": (0, 0), "VS": (1, 1), "VU": (0, 1)}
MODES = ("M", "HS", "U", "VS", "VU")

# one CSR per class: (name in the assembler, number)
CLASSES = {
    "unprivileged counter": ("cycle", 0xC00),
    "supervisor": ("sscratch", 0x140),
    "hypervisor": ("hedeleg", 0x602),
    "virtual supervisor": ("vsscratch", 0x240),
    "machine": ("mscratch", 0x340),
    "machine read-only": ("mhartid", 0xF14),
    "debug": ("dcsr", 0x7B0),
}

I, V = ILLEGAL, VIRTUAL
# expected outcome in M, HS, U, VS, VU; the counter enables all set
EXPECTED = {
    ("unprivileged counter", "read"): (OK, OK, OK, OK, OK),
    ("unprivileged counter", "write"): (I, I, I, I, I),  # read-only: HS may not write it either
    ("supervisor", "read"): (OK, OK, I, OK, V),  # VS reads vsscratch in its place
    ("supervisor", "write"): (OK, OK, I, OK, V),
    ("hypervisor", "read"): (OK, OK, I, V, V),
    ("hypervisor", "write"): (OK, OK, I, V, V),
    ("virtual supervisor", "read"): (OK, OK, I, V, V),
    ("virtual supervisor", "write"): (OK, OK, I, V, V),
    ("machine", "read"): (OK, I, I, I, I),  # HS may not: illegal, never virtual
    ("machine", "write"): (OK, I, I, I, I),
    ("machine read-only", "read"): (OK, I, I, I, I),
    ("machine read-only", "write"): (I, I, I, I, I),
    ("debug", "read"): (I, I, I, I, I),
    ("debug", "write"): (I, I, I, I, I),
}

# reading cycle with one counter-enable bit (CY, bit 0) cleared, the others set (8.6.1)
COUNTER_ENABLES = {
    "mcounteren": (OK, I, I, I, I),
    "scounteren": (OK, OK, I, OK, V),
    "hcounteren": (OK, OK, OK, V, V),
}


def run_in_mode(mode: str, instruction: str, *, setup: str = "", extensions: str = "acimsuh"):
    """Execute ``instruction`` in ``mode`` and then ecall; return (mcause, mtval, the
    instruction's bits, the snippet)."""
    mpp, mpv = ENTRY[mode]
    mpv_setup = ""
    if "h" in extensions:
        mpv_setup = f"""
        li t0, 1 << 39              # mstatus.MPV
        {"csrs" if mpv else "csrc"} mstatus, t0
"""
    s = run_asm(
        f"""
        .option norvc
        la t0, 90f
        csrw mtvec, t0
        li t0, -1
        csrw pmpaddr0, t0           # PMP entry 0: everything, for S and U too (3.7.1)
        li t0, 0x1f
        csrw pmpcfg0, t0
        li t0, -1
        csrw mcounteren, t0
        csrw scounteren, t0
        {"csrw hcounteren, t0" if "h" in extensions else ""}
        {setup}
        li t0, 0x1800
        csrc mstatus, t0
        li t0, {mpp << 11}
        csrs mstatus, t0
        {mpv_setup}
        la t0, 80f
        csrw mepc, t0
        li a1, 0
        mret
    80: {instruction}
        ecall
        .balign 4
    90: csrr s10, mcause
        csrr s11, mtval
        la s9, 80b
        j __snippet_end
""",
        extensions=extensions,
    )
    bits = s.read(s.x(25), 4)
    return s.x(26), s.x(27), bits, s


def access(csr: str, kind: str) -> str:
    # csrr is csrrs with rs1 = x0 (no write); csrw is csrrw with rd = x0 (no read), Zicsr 9.1
    return f"csrr a0, {csr}" if kind == "read" else f"csrw {csr}, a1"


def check(outcome, mode, cause, tval, bits):
    if outcome == OK:
        assert cause == ECALL_FROM[mode], f"expected the access to succeed, got cause {cause}"
    else:
        assert cause == outcome, f"expected cause {outcome}, got {cause}"
        assert tval == bits, "mtval holds the faulting instruction's bits (3.1.16)"


TABLE = [
    (csr_class, kind, mode, EXPECTED[csr_class, kind][index])
    for (csr_class, kind) in EXPECTED
    for index, mode in enumerate(MODES)
]


@pytest.mark.parametrize(
    ("csr_class", "kind", "mode", "outcome"),
    TABLE,
    ids=[f"{mode}-{kind}-{csr_class.replace(' ', '_')}" for csr_class, kind, mode, _ in TABLE],
)
def test_csr_access(csr_class, kind, mode, outcome):
    name, _ = CLASSES[csr_class]
    cause, tval, bits, _ = run_in_mode(mode, access(name, kind))
    check(outcome, mode, cause, tval, bits)


COUNTER_TABLE = [
    (register, mode, COUNTER_ENABLES[register][index])
    for register in COUNTER_ENABLES
    for index, mode in enumerate(MODES)
]


@pytest.mark.parametrize(
    ("register", "mode", "outcome"),
    COUNTER_TABLE,
    ids=[f"{mode}-{register}.CY=0" for register, mode, _ in COUNTER_TABLE],
)
def test_counter_enable(register, mode, outcome):
    cause, tval, bits, _ = run_in_mode(mode, "csrr a0, cycle", setup=f"csrci {register}, 1    # CY")
    check(outcome, mode, cause, tval, bits)


@pytest.mark.parametrize("mode", ["M", "HS", "U"])
@pytest.mark.parametrize("csr", ["hedeleg", "vsscratch"])
def test_without_h_the_hypervisor_csrs_do_not_exist(csr, mode):
    # 8: the H CSRs exist only with misa.H; an access to a CSR that does not exist is illegal
    cause, tval, bits, _ = run_in_mode(mode, f"csrr a0, {csr}", extensions="acimsu")
    check(ILLEGAL, mode, cause, tval, bits)


@pytest.mark.parametrize(
    ("mode", "setup", "outcome"),
    [
        ("HS", "li t0, 1 << 20\ncsrs mstatus, t0", ILLEGAL),  # mstatus.TVM (3.1.6.5)
        ("HS", "", OK),
        ("VS", "li t0, 1 << 20\ncsrs hstatus, t0", VIRTUAL),  # hstatus.VTVM (8.2.1)
        ("VS", "li t0, 1 << 20\ncsrs mstatus, t0", OK),  # TVM governs HS-mode, not VS
        ("VU", "", VIRTUAL),
        ("U", "", ILLEGAL),
    ],
    ids=["HS-TVM", "HS", "VS-VTVM", "VS-TVM", "VU", "U"],
)
def test_satp_traps_with_tvm(mode, setup, outcome):
    cause, tval, bits, _ = run_in_mode(mode, "csrr a0, satp", setup=setup)
    check(outcome, mode, cause, tval, bits)


def test_vs_mode_reaches_the_vs_copy():
    # 8.2: with V=1 an access to sscratch reaches vsscratch; HS's sscratch is untouched
    setup = "li t0, 0x11\ncsrw sscratch, t0\nli t0, 0x22\ncsrw vsscratch, t0"
    cause, _, _, s = run_in_mode(
        "VS", "csrr a0, sscratch\nli a1, 0x33\ncsrw sscratch, a1", setup=setup
    )
    assert cause == ECALL_FROM["VS"]
    assert s.x(10) == 0x22
    assert s.csr("vsscratch") == 0x33
    assert s.csr("sscratch") == 0x11


# reading time with one TM bit (bit 1) of a counter-enable register cleared, the others set:
# 8.2.6 (hcounteren) with 3.1.11 (mcounteren) and 4.1.5 (scounteren), as for cycle above
TIME_ENABLES = {
    "": (OK, OK, OK, OK, OK),  # all set: VS and VU read time (8.2.6)
    "mcounteren": (OK, I, I, I, I),
    "scounteren": (OK, OK, I, OK, V),
    "hcounteren": (OK, OK, OK, V, V),
}
TIME_TABLE = [
    (register, mode, TIME_ENABLES[register][index])
    for register in TIME_ENABLES
    for index, mode in enumerate(MODES)
]


@pytest.mark.parametrize(
    ("register", "mode", "outcome"),
    TIME_TABLE,
    ids=[f"{mode}-{register or 'all'}.TM" for register, mode, _ in TIME_TABLE],
)
def test_time_counter_enable(register, mode, outcome):
    setup = f"csrci {register}, 2    # TM" if register else ""
    cause, tval, bits, _ = run_in_mode(mode, "csrr a0, time", setup=setup)
    check(outcome, mode, cause, tval, bits)


@pytest.mark.parametrize("mode", ["VS", "VU"])
def test_time_with_v_adds_htimedelta(mode):
    # 8.2.7: VS and VU read time + htimedelta; the second read comes from the fast loop's
    # cache of legal CSR reads (layout.CSR_READ_KEYS), which must add it too
    delta = 0x1234_5678_0000
    setup = f"li t0, {delta:#x}\ncsrw htimedelta, t0\ncsrr s2, time"
    _, _, _, s = run_in_mode(mode, "csrr a0, time\n        csrr a2, time", setup=setup)
    m_time = s.x(18)
    for value in (s.x(10), s.x(12)):
        assert 0 <= value - delta - m_time <= 1  # mtime ticks once per 100 instructions
    assert s.x(12) >= s.x(10)

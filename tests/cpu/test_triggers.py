"""The Sdtrig trigger module (RISC-V Debug Specification 1.0, 5.7) on a real hart.

The expected values are QEMU 7.2's, observed on it (docs/sdtrig.md), except xtval, which holds
the address that matched as the privileged spec says (3.1.16: "when a hardware breakpoint is
triggered ... mtval is written with the faulting virtual address"), where QEMU 7.2 writes 0.
"""

from __future__ import annotations

import pytest
from support import run_asm

from rvh.cpu import layout as L

pytestmark = pytest.mark.usefixtures("toolchain")

BREAKPOINT = 3
ILLEGAL = 2
NO_TRAP = (1 << 64) - 1  # s9 keeps -1 when nothing trapped
COUNT, CAUSE, EPC, TVAL = 24, 25, 26, 27  # s8-s11, written by the handler
T2 = 2 << 60  # tdata1.type = mcontrol
T6 = 6 << 60  # tdata1.type = mcontrol6
LOAD, STORE, EXECUTE = 1, 2, 4
U, S, M = 1 << 3, 1 << 4, 1 << 6
VU, VS = 1 << 23, 1 << 24

# The M-mode handler: s9 = mcause, s10 = mepc, s11 = mtval, s6 = mstatus after the trap
# entry, s8 counts the traps; an ecall
# (from a lower mode, see in_mode) returns to M-mode at 70b, anything else skips the
# instruction.
HANDLER = """
    .option push; .option rvc; .balign 4; .option pop   # (norvc .balign may not pad)
handler:
    csrr t6, mcause
    addi t6, t6, -8
    bltz t6, 1f
    addi t6, t6, -3
    bgtz t6, 1f
    j 70b
1:  csrr s9, mcause
    csrr s6, mstatus
    csrr s10, mepc
    csrr s11, mtval
    addi s8, s8, 1
    lhu t5, 0(s10)
    andi t5, t5, 3
    li t4, 3
    addi t6, s10, 2
    bne t5, t4, 2f
    addi t6, s10, 4
2:  csrw mepc, t6
    mret
    .option push; .option rvc; .balign 16; .option pop
data:
    .dword 0x1111111111111111, 0x2222222222222222, 0x3333333333333333, 0x4444444444444444
"""


def run_m(body: str, **kwargs):
    """Run ``body`` in M-mode with the handler; s0 holds the address of ``data`` + 8."""
    return run_asm(
        f"""
        .option norvc
        la t0, handler
        csrw mtvec, t0
        li s8, 0
        li s9, -1
        li s11, 0
        la s0, data + 8
        {body}
    70: j __snippet_end
    {HANDLER}
""",
        **kwargs,
    )


def csr_after(setup: str, csr: str) -> int:
    s = run_m(f"{setup}\ncsrr a0, {csr}")
    assert s.x(CAUSE) == NO_TRAP, f"unexpected trap, cause {s.x(CAUSE)}"
    return s.x(10)


def test_reset_values():
    s = run_m("csrr a0, tselect\ncsrr a1, tdata1\ncsrr a2, tdata2\ncsrr a3, tdata3\ncsrr a4, tinfo")
    assert s.x(CAUSE) == NO_TRAP
    # trigger 0 after reset: type 2 matching nothing; tinfo: types 2 and 6 (QEMU 7.2)
    assert [s.x(i) for i in range(10, 15)] == [0, T2, 0, 0, (1 << 2) | (1 << 6)]
    assert s.hart.state[L.TRIGGERS_ARMED] == 0


def test_tselect_keeps_a_trigger_index_and_ignores_others():
    assert csr_after("li t0, 1\ncsrw tselect, t0", "tselect") == 1
    assert csr_after("li t0, 1\ncsrw tselect, t0\nli t0, 2\ncsrw tselect, t0", "tselect") == 1
    assert csr_after("li t0, -1\ncsrw tselect, t0", "tselect") == 0


def test_each_trigger_has_its_own_tdata():
    s = run_m(
        """
        li t0, 0x1234
        csrw tdata2, t0
        li t0, 1
        csrw tselect, t0
        li t0, 0x5678
        csrw tdata2, t0
        csrr a1, tdata2
        csrw tselect, zero
        csrr a0, tdata2
        """
    )
    assert (s.x(10), s.x(11)) == (0x1234, 0x5678)


# tdata1 written -> read back, as QEMU 7.2 legalizes it (docs/sdtrig.md)
TDATA1_WRITES = [
    (T2 | 0x0FFF_FFFF_FFFF_FFFF, T2 | 0x5F),  # only access and mode bits; size 15 unsupported
    (T2 | (1 << 59) | 0x44, T2 | 0x44),  # dmode reads 0: no debug mode
    (T2 | 0x44 | (1 << 16), T2 | 0x44 | (1 << 16)),  # size 1 byte
    (T2 | 0x44 | (3 << 16), T2 | 0x44 | (3 << 16)),  # 4 bytes
    (T2 | 0x44 | (1 << 21) | (1 << 16), T2 | 0x44 | (1 << 21) | (1 << 16)),  # 8 bytes
    (T2 | 0x44 | (1 << 21), T2 | 0x44),  # size 4 = 48-bit: unsupported, any size
    (T2 | 0x44 | (1 << 12), T2 | 0x44),  # action 1 (debug mode) not offered
    (T2 | 0x44 | (1 << 7), T2 | 0x44),  # match 1 (napot) not offered
    (T2 | 0x44 | (1 << 11), T2 | 0x44),  # chain
    (T6 | 0x0FFF_FFFF_FFFF_FFFF, T6 | VS | VU | 0x5F),
    (T6 | 0x44 | (5 << 16), T6 | 0x44 | (5 << 16)),  # 8 bytes
    (T6 | 0x44 | (6 << 16), T6 | 0x44),  # 80-bit: unsupported
    (T6 | 0x44 | (1 << 21) | (1 << 16), T6 | 0x44 | (1 << 16)),  # select reads 0
    (T6 | VS | 0x44, T6 | VS | 0x44),
    (T6 | VU | 0x44, T6 | VU | 0x44),
]


@pytest.mark.parametrize(("written", "expected"), TDATA1_WRITES)
def test_tdata1_legalization(written, expected):
    assert csr_after(f"li t0, {written:#x}\ncsrw tdata1, t0", "tdata1") == expected


@pytest.mark.parametrize("trigger_type", [0, 1, 3, 4, 5, 7, 15])
def test_a_write_of_another_type_leaves_tdata1_as_it_was(trigger_type):
    # QEMU 7.2 ignores them (and aborts on type 1); rvh ignores them all
    setup = f"li t0, {T6 | 0x44:#x}\ncsrw tdata1, t0\nli t0, {trigger_type << 60 | 0x45:#x}"
    assert csr_after(setup + "\ncsrw tdata1, t0", "tdata1") == T6 | 0x44


def test_tdata3_and_tinfo_ignore_writes():
    s = run_m("li t0, 0x777\ncsrw tdata3, t0\ncsrw tinfo, t0\ncsrr a0, tdata3\ncsrr a1, tinfo")
    assert (s.x(CAUSE), s.x(10), s.x(11)) == (NO_TRAP, 0, 0x44)


@pytest.mark.parametrize("csr", [0x7A5, 0x7A8, 0x5A8, 0x6A8, 0x7AA])  # tcontrol, contexts
def test_registers_qemu_7_2_lacks_do_not_exist(csr):
    s = run_m(f"csrr a0, {csr:#x}")
    assert s.x(CAUSE) == ILLEGAL


def test_trigger_registers_are_machine_level():
    # 0x7A0-0x7A4 are M-level read/write CSRs (privileged spec 2.1, table 2.5): from S, illegal
    s = run_m(
        """
        li t0, -1
        csrw pmpaddr0, t0
        li t0, 0x1f
        csrw pmpcfg0, t0
        li t0, 0x1800
        csrc mstatus, t0
        li t0, 0x800
        csrs mstatus, t0
        la t0, 1f
        csrw mepc, t0
        mret
    1:  csrr a0, tdata1
        ecall
        """
    )
    assert s.x(CAUSE) == ILLEGAL


def arm(control: int, address: str = "s0", index: int = 0) -> str:
    return f"""
        li t0, {index}
        csrw tselect, t0
        csrw tdata2, {address}
        li t0, {control:#x}
        csrw tdata1, t0
        csrw tselect, zero
"""


def test_execute_trigger_traps_before_the_instruction():
    s = run_m(
        f"""
        la s1, 5f
        {arm(T2 | M | EXECUTE, "s1")}
        li a0, 0
        li a1, 0
    5:  li a0, 1
        li a1, 2
        la a2, 5b
        """
    )
    # cause 3, mepc = mtval = the instruction's address; it did not run, the next one did
    assert (s.x(CAUSE), s.x(EPC), s.x(TVAL)) == (BREAKPOINT, s.x(12), s.x(12))
    assert (s.x(10), s.x(11), s.x(COUNT)) == (0, 2, 1)


def test_execute_trigger_on_a_compressed_instruction_and_not_inside_one():
    s = run_m(
        f"""
        la s1, 5f
        {arm(T2 | M | EXECUTE, "s1")}
        .option rvc
    5:  c.li a0, 1
        .option norvc
        la s1, 6f + 2
        {arm(T2 | M | EXECUTE, "s1")}
    6:  li a1, 1
        la a2, 5b
        """
    )
    assert (s.x(CAUSE), s.x(TVAL), s.x(COUNT)) == (BREAKPOINT, s.x(12), 1)
    assert (s.x(10), s.x(11)) == (0, 1)  # only an instruction's first byte matches


def access_traps(trigger: int, access: str) -> tuple[int, int]:
    """(cause or NO_TRAP, mtval) of ``access`` (s0 = the trigger's address, data + 8)."""
    s = run_m(arm(trigger) + access)
    return s.x(CAUSE), s.x(TVAL)


# (trigger, access, fires): a load/store trigger fires when the access touches
# [tdata2, tdata2 + size), 8 bytes for "any size" (as QEMU 7.2 watches)
ACCESSES = [
    (T2 | M | LOAD, "ld a0, 0(s0)", True),
    (T2 | M | LOAD, "ld a0, -8(s0)", False),
    (T2 | M | LOAD, "ld a0, -4(s0)", True),  # overlaps the first 4 bytes
    (T2 | M | LOAD, "lb a0, 7(s0)", True),
    (T2 | M | LOAD, "lb a0, 8(s0)", False),
    (T2 | M | LOAD, "lb a0, -1(s0)", False),
    (T2 | M | LOAD, "sb a0, 0(s0)", False),  # a load trigger ignores stores
    (T2 | M | STORE, "lb a0, 0(s0)", False),
    (T2 | M | STORE, "sd a0, 0(s0)", True),
    (T2 | M | STORE, "sh a0, 6(s0)", True),
    (T2 | M | LOAD | (1 << 16), "lb a0, 1(s0)", False),  # size 1
    (T2 | M | LOAD | (1 << 16), "lh a0, -1(s0)", True),
    (T2 | M | LOAD | (3 << 16), "lb a0, 3(s0)", True),  # size 4 (QEMU 7.2 watches 3 bytes)
    (T2 | M | LOAD | (3 << 16), "lb a0, 4(s0)", False),
    (T6 | M | LOAD, "lw a0, -2(s0)", True),
    (T6 | M | LOAD, "lw a0, -4(s0)", False),
    (T2 | M | LOAD, "amoadd.d a0, a1, (s0)", True),  # an AMO loads and stores
    (T2 | M | STORE, "amoadd.d a0, a1, (s0)", True),
    (T2 | M | LOAD, "lr.d a0, (s0)", True),
    (T2 | M | STORE, "lr.d a0, (s0)", False),
    (T2 | M | LOAD, "sc.d a0, a1, (s0)", False),
    (T2 | M | STORE, "sc.d a0, a1, (s0)", True),
    (T2 | M | LOAD, "ld a0, 4(s0)", True),  # misaligned: byte by byte, the first one matches
    (T2 | S | U | LOAD, "ld a0, 0(s0)", False),  # not in M-mode
    (T2 | M | LOAD, "fld fa0, 0(s0)", True),
    (T2 | M | STORE, "fsd fa0, 0(s0)", True),
]


@pytest.mark.parametrize(("trigger", "access", "fires"), ACCESSES)
def test_load_store_triggers(trigger, access, fires):
    setup = "li t0, 1 << 13\ncsrs mstatus, t0\n"  # mstatus.FS on, for fld/fsd
    s = run_m(arm(trigger) + setup + "li a0, 0x55\nli a1, 0x66\n" + access + "\nmv a2, a0")
    if not fires:
        assert s.x(CAUSE) == NO_TRAP
        return
    offset = int(access.split(",")[-1].split("(")[0].strip() or 0)
    assert (s.x(CAUSE), s.x(TVAL)) == (BREAKPOINT, s.x(8) + offset)
    assert s.x(12) == 0x55, "the destination register is untouched"
    assert s.read(s.x(8), 8) == 0x2222222222222222, "memory is untouched"


def test_both_triggers_fire_and_a_disarmed_one_does_not():
    s = run_m(
        f"""
        {arm(T2 | M | STORE, "s0", 0)}
        addi s1, s0, -8
        {arm(T6 | M | LOAD, "s1", 1)}
        li s7, 0
        ld a0, -8(s0)
        add s7, s7, s8
        sd a0, 0(s0)
        add s7, s7, s8
        li t0, {T2:#x}        # type 2 with no mode: disarmed
        csrw tdata1, t0
        sd a0, 0(s0)
        add s7, s7, s8
        """
    )
    assert s.x(23) == 1 + 2 + 2
    assert s.hart.state[L.TRIGGERS_ARMED] == LOAD


def test_a_trigger_covers_accesses_the_fast_path_made_before():
    # the loop runs on the fast path and its store page gets a fast TLB tag; arming the
    # trigger must take it away (the pages a trigger covers get slow tags)
    s = run_m(
        f"""
        li t1, 1000
    1:  sd t1, 0(s0)
        addi t1, t1, -1
        bnez t1, 1b
        {arm(T2 | M | STORE)}
        li t1, 3
    2:  sd t1, 0(s0)
        addi t1, t1, -1
        bnez t1, 2b
        """,
        max_insns=200_000,
    )
    assert (s.x(CAUSE), s.x(COUNT)) == (BREAKPOINT, 3)
    assert s.read(s.x(8), 8) == 1  # the last store before the trigger was armed


def test_no_armed_trigger_leaves_the_fast_path_alone():
    # a trigger of another page, or a trigger without a mode, costs the loop nothing: its
    # instructions stay on the fast path; one on the loop's own page sends them to the general
    # path, which checks each one
    loop = """
        li t1, 2000
    1:  sd t1, 0(s0)
        addi t1, t1, -1
        bnez t1, 1b
    """

    def general_path(setup: str) -> int:
        s = run_m(setup + loop, max_insns=200_000)
        assert s.x(CAUSE) == NO_TRAP
        return int(s.hart.state[L.GENERAL_PATH])

    idle = general_path(arm(T2 | STORE))  # no mode bit: not armed
    assert general_path("li s1, 0x1000\n" + arm(T2 | M | STORE, "s1")) < idle + 10
    assert general_path("la s1, 1f\n" + arm(T2 | U | EXECUTE, "s1")) > idle + 5000
    assert general_path("la s1, 1f\n" + arm(T2 | U | STORE, "s0")) > idle + 1500


MODES = {"M": (3, 0), "S": (1, 0), "U": (0, 0), "VS": (1, 1), "VU": (0, 1)}

# (trigger, mode, fires): mcontrol's M/S/U bits; never with V=1; mcontrol6's VS/VU bits with V=1
MODE_CASES = [
    (T2 | S | STORE, "S", True),
    (T2 | S | STORE, "U", False),
    (T2 | U | STORE, "U", True),
    (T2 | U | STORE, "S", False),
    (T2 | M | S | U | STORE, "VS", False),
    (T2 | M | S | U | STORE, "VU", False),
    (T6 | S | STORE, "S", True),
    (T6 | U | STORE, "S", False),
    (T6 | U | STORE, "U", True),
    (T6 | VS | STORE, "VS", True),
    (T6 | VS | STORE, "S", False),
    (T6 | VU | STORE, "VU", True),
    (T6 | VU | STORE, "VS", False),
    (T6 | S | STORE, "VS", False),
    (T6 | U | STORE, "VU", False),
    (T6 | S | M | U | VU | STORE, "M", True),
]


def in_mode(mode: str, trigger: int, instruction: str, setup: str = "") -> object:
    mpp, mpv = MODES[mode]
    return run_m(
        f"""
        li t0, -1
        csrw pmpaddr0, t0
        li t0, 0x1f
        csrw pmpcfg0, t0
        {setup}
        {arm(trigger)}
        li t0, 0x1800
        csrc mstatus, t0
        li t0, {mpp << 11}
        csrs mstatus, t0
        li t0, 1 << 39
        {"csrs" if mpv else "csrc"} mstatus, t0
        la t0, 1f
        csrw mepc, t0
        mret
    1:  {instruction}
        ecall
        """
    )


@pytest.mark.parametrize(("trigger", "mode", "fires"), MODE_CASES)
def test_mode_bits(trigger, mode, fires):
    s = in_mode(mode, trigger, "sw a0, 0(s0)")
    assert s.x(CAUSE) == (BREAKPOINT if fires else NO_TRAP)


def test_execute_trigger_in_vs_mode_sets_gva():
    # with V=1 the trap to M-mode writes a guest virtual address to mtval: mstatus.GVA = 1
    # (8.2.1, 8.4.1)
    s = in_mode("VS", T6 | VS | EXECUTE, "nop", "la s0, 1f")
    assert (s.x(CAUSE), s.x(TVAL)) == (BREAKPOINT, s.x(EPC))
    assert (s.x(22) >> 38) & 1 == 1  # mstatus.GVA at the trap


def test_delegated_breakpoint_goes_to_s_mode_with_stval():
    s = in_mode(
        "U",
        T2 | U | LOAD,
        "ld a0, 0(s0)",
        """
        la t0, 8f
        csrw stvec, t0
        li t0, 1 << 3
        csrw medeleg, t0
        j 9f
        .balign 4
    8:  csrr s3, scause
        csrr s4, stval
        csrr t0, sepc
        addi t0, t0, 4
        csrw sepc, t0
        sret
    9:
        """,
    )
    assert (s.x(19), s.x(20)) == (BREAKPOINT, s.x(8))
    assert s.x(CAUSE) == NO_TRAP

"""F and D in the kernel (rvh/cpu/fpu.py): the f registers, NaN-boxing, fcsr and its views,
mstatus.FS/SD (and vsstatus.FS with V=1), reserved rounding modes, the compressed FP loads and
stores, and the commit log's f register writes.  The arithmetic itself is tested in
test_softfloat.py and against QEMU in tests/system/lockstep/test_fp_lockstep.py."""

import struct

from support import assemble, needs_toolchain, run_asm

from rvh.cpu import layout as L
from rvh.trace import commit_lines

pytestmark = needs_toolchain

FS_INITIAL = 1 << 13
FS_DIRTY = 3 << 13
SD = 1 << 63
ILLEGAL = 2
CANONICAL_NAN_S = 0x7FC00000

# an M-mode handler that records the trap and stops (PMP entry 0 opens all memory to S/U)
HANDLER = """
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    la t0, 9f
    csrw mtvec, t0
    j 8f
.balign 4
9:  csrr s2, mcause
    csrr s3, mtval
    csrr s4, mstatus
    {vsstatus}
    j __snippet_end
8:
"""
HANDLER_H = HANDLER.format(vsstatus="csrr s5, vsstatus")
HANDLER = HANDLER.format(vsstatus="")
ENABLE_FP = "li t0, 1 << 13\n csrs mstatus, t0\n"


def f(snippet, n: int) -> int:
    return int(snippet.hart.state[L.F + n]) & ((1 << 64) - 1)


def d(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def test_fp_is_illegal_while_fs_is_off():
    s = run_asm(HANDLER + "fadd.d fa0, fa1, fa2\n li s2, 0\n")
    assert s.x(18) == ILLEGAL
    assert s.x(19) == 0x02C5F553  # mtval: the instruction bits
    s = run_asm(HANDLER + "csrr a0, fcsr\n li s2, 0\n")
    assert s.x(18) == ILLEGAL
    s = run_asm(HANDLER + "fld fa0, 0(sp)\n li s2, 0\n")
    assert s.x(18) == ILLEGAL


def test_writes_make_fs_dirty_and_set_sd():
    s = run_asm(ENABLE_FP + "csrr a0, mstatus\n fmv.d.x fa0, zero\n csrr a1, mstatus\n")
    assert s.x(10) & FS_DIRTY == FS_INITIAL and not s.x(10) & SD
    assert s.x(11) & FS_DIRTY == FS_DIRTY and s.x(11) & SD
    # fcsr writes dirty the state too; reads and stores of f registers do not
    s = run_asm(
        ENABLE_FP + "fsd fa0, -8(sp)\n frcsr a0\n csrr a1, mstatus\n fsflags zero\n"
        " csrr a2, mstatus\n",
        regs={2: 0x8000_1000},
    )
    assert s.x(11) & FS_DIRTY == FS_INITIAL
    assert s.x(12) & FS_DIRTY == FS_DIRTY and s.x(12) & SD
    # a comparison that raises a flag writes fcsr
    s = run_asm(
        ENABLE_FP + "li t0, -1\n fmv.d.x fa0, t0\n li t0, 0x6000\n csrc mstatus, t0\n"
        " li t0, 0x2000\n csrs mstatus, t0\n flt.d a0, fa0, fa0\n csrr a1, mstatus\n"
        " frflags a2\n"
    )
    assert s.x(11) & FS_DIRTY == FS_DIRTY
    assert s.x(12) == 0x10  # NV: flt on a NaN


def test_fcsr_views():
    s = run_asm(
        ENABLE_FP + "li t0, 0x1ff\n csrw fcsr, t0\n csrr a0, fcsr\n csrr a1, frm\n"
        " csrr a2, fflags\n csrwi frm, 2\n csrr a3, fcsr\n li t0, 0xf3\n"
        " csrw fflags, t0\n csrr a4, fcsr\n"
    )
    assert (s.x(10), s.x(11), s.x(12)) == (0xFF, 7, 0x1F)
    assert s.x(13) == (2 << 5) | 0x1F
    assert s.x(14) == (2 << 5) | 0x13


def test_nan_boxing():
    s = run_asm(
        ENABLE_FP
        + """
    li t0, 0x3f800000         # 1.0f, not boxed: reads as the canonical NaN
    fmv.d.x fa0, t0
    fadd.s fa1, fa0, fa0
    fsgnj.s fa2, fa0, fa0
    fmv.x.w a0, fa0           # moves take the raw low bits
    fclass.s a1, fa0
    fmv.w.x fa3, t0           # boxes
    fadd.s fa4, fa3, fa3
    fmv.x.w a2, fa4
    li t1, 0x80000000
    fmv.w.x fa5, t1
    fmv.x.w a3, fa5           # sign-extended
    frflags a4
"""
    )
    assert f(s, 11) == 0xFFFFFFFF_00000000 | CANONICAL_NAN_S
    assert f(s, 12) == 0xFFFFFFFF_00000000 | CANONICAL_NAN_S
    assert s.x(10) == 0x3F800000
    assert s.x(11) == 1 << 9  # quiet NaN
    assert f(s, 13) == 0xFFFFFFFF_3F800000
    assert s.x(12) == 0x40000000  # 2.0f
    assert s.sx(13) == -(2**31)
    assert s.x(14) == 0  # a quiet NaN operand raises nothing


def test_reserved_rounding_modes_are_illegal():
    # static rm = 5
    s = run_asm(HANDLER + ENABLE_FP + ".insn r 0x53, 5, 0x01, fa0, fa1, fa2\n li s2, 0\n")
    assert s.x(18) == ILLEGAL
    # dynamic rounding with frm = 6
    s = run_asm(HANDLER + ENABLE_FP + "csrwi frm, 6\n fadd.d fa0, fa1, fa2\n li s2, 0\n")
    assert s.x(18) == ILLEGAL
    # frm = 6 does not matter to a static mode, nor to an instruction without rm
    s = run_asm(
        HANDLER + ENABLE_FP + "csrwi frm, 6\n fadd.d fa0, fa1, fa2, rtz\n"
        " fsgnj.d fa3, fa1, fa2\n li s2, 0\n"
    )
    assert s.x(18) == 0


def test_dynamic_rounding_uses_frm():
    program = (
        ENABLE_FP
        + """
    li t0, 1
    fcvt.d.l fa0, t0
    li t0, 3
    fcvt.d.l fa1, t0
    csrwi frm, {mode}
    fdiv.d fa2, fa0, fa1
    fmv.x.d a0, fa2
    frflags a1
"""
    )
    down = run_asm(program.format(mode=2))
    up = run_asm(program.format(mode=3))
    assert up.x(10) == down.x(10) + 1 == d(1.0 / 3.0) + 1
    assert down.x(11) == up.x(11) == 1  # NX


def test_compressed_loads_and_stores():
    s = run_asm(
        ENABLE_FP
        + """
    la sp, 1f
    la s0, 1f
    c.fldsp ft0, 8(sp)        # f0 is a legal destination
    c.fld fa5, 16(s0)
    c.fsdsp ft0, 24(sp)
    c.fsd fa5, 32(s0)
    ld a0, 24(sp)
    ld a1, 32(sp)
    j 2f
.balign 8
1:  .dword 0, 0x4000000000000000, 0xc008000000000000, 0, 0
2:
"""
    )
    assert f(s, 0) == d(2.0)
    assert f(s, 15) == d(-3.0)
    assert (s.x(10), s.x(11)) == (d(2.0), d(-3.0))


def test_flw_boxes_and_fsw_stores_low_bits():
    s = run_asm(
        ENABLE_FP
        + """
    la a0, 1f
    flw fa0, 0(a0)
    li t0, 0x12345678
    fmv.d.x fa1, t0           # not boxed: fsw stores its low word anyway
    fsw fa1, 4(a0)
    lwu a1, 4(a0)
    j 2f
.balign 8
1:  .word 0x40490fdb, 0
2:
"""
    )
    assert f(s, 10) == 0xFFFFFFFF_40490FDB
    assert s.x(11) == 0x12345678


def _enter_vs(vsstatus_fs: int, body: str) -> str:
    return (
        HANDLER_H
        + f"""
    li t0, 1 << 13
    csrs mstatus, t0
    li t0, {vsstatus_fs << 13}
    csrw vsstatus, t0
    li t0, (3 << 11) | (1 << 39)
    csrc mstatus, t0
    li t0, (1 << 11) | (1 << 39)   # MPP = S, MPV = 1: VS-mode
    csrs mstatus, t0
    la t0, 1f
    csrw mepc, t0
    mret
1:  {body}
    ecall
"""
    )


def test_vs_mode_needs_vsstatus_fs_too():
    s = run_asm(_enter_vs(0, "fmv.d.x fa0, zero"))
    assert s.x(18) == ILLEGAL
    s = run_asm(_enter_vs(1, "fmv.d.x fa0, zero"))
    assert s.x(18) == 10  # the ecall from VS: the FP move ran
    assert s.x(20) & FS_DIRTY == FS_DIRTY and s.x(20) & SD  # mstatus
    assert s.x(21) & FS_DIRTY == FS_DIRTY and s.x(21) & SD  # vsstatus


def test_without_f_everything_fp_is_illegal():
    s = run_asm(
        HANDLER + ENABLE_FP + "csrr a0, mstatus\n csrr a1, misa\n fmv.d.x fa0, zero\n li s2, 0\n",
        extensions="acimsu",
    )
    assert s.x(10) & FS_DIRTY == 0  # FS is read-only zero
    assert s.x(11) & 0x28 == 0
    assert s.x(18) == ILLEGAL
    s = run_asm("csrr a1, misa\n")
    assert s.x(11) & 0x28 == 0x28  # F and D


def test_commit_log_shows_f_registers():
    import numpy as np

    from rvh.config import RAM_BASE, MachineConfig
    from rvh.cpu.trace import TRACE_FIELDS
    from rvh.machine import Machine

    code = assemble(ENABLE_FP + "li t0, 0x4000000000000000\n fmv.d.x fa0, t0\n fsd fa0, 0(sp)\n")
    machine = Machine(MachineConfig(memory=16 << 20), output=lambda _: None)
    machine.bus.write_bytes(RAM_BASE, code)
    hart = machine.harts[0]
    hart.reset(RAM_BASE)
    hart.set_x(2, RAM_BASE + 0x2000)
    hart.trace = np.zeros(64 * TRACE_FIELDS, dtype=np.int64)
    hart.run(6)
    lines = list(commit_lines(hart.trace[: int(hart.state[L.TRACE_POS]) * TRACE_FIELDS]))
    assert any(line.endswith("(0xf2028553) f10 0x4000000000000000") for line in lines), lines
    assert any("mem 0x0000000080002000 0x4000000000000000" in line for line in lines), lines

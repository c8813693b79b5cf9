"""Generate guests/isa/rv64f.S and rv64d.S: self-checking tests of F and D (the riscv-tests
rv64uf/rv64ud are not packaged here, so these cover the same ground).

Each test runs one instruction on operands given as bit patterns, with a given rounding mode,
and checks the result bits and the fflags it raised.  The expected values are computed here with
rvh's soft-float (rvh/cpu/softfloat.py) and are *confirmed by QEMU 7.2*: the guests run there
too (``make -C guests check-qemu`` and tests/system/lockstep/test_guest_lockstep.py), so a wrong
expectation fails on QEMU.  Run from the repository root:

    PYTHONPATH=. python tools/gen_fp_isa_tests.py
"""

from __future__ import annotations

import struct
from pathlib import Path

from rvh.cpu import softfloat as sf

MASK64 = (1 << 64) - 1
MODES = ("rne", "rtz", "rdn", "rup", "rmm")


def d(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def s(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def signed(bits: int) -> int:
    bits &= MASK64
    return bits - (1 << 64) if bits >> 63 else bits


SPECIAL_D = {
    "+0": 0,
    "-0": 1 << 63,
    "1": d(1.0),
    "-1.5": d(-1.5),
    "min-sub": 1,
    "max-sub": 0x000FFFFFFFFFFFFF,
    "min-norm": 0x0010000000000000,
    "max": 0x7FEFFFFFFFFFFFFF,
    "inf": 0x7FF0000000000000,
    "-inf": 0xFFF0000000000000,
    "qnan": 0x7FF8000000000000,
    "snan": 0x7FF0000000000001,
    "1/3": d(1.0 / 3.0),
    "tiny": d(2.0**-53),
}
SPECIAL_S = {
    "+0": 0,
    "-0": 1 << 31,
    "1": s(1.0),
    "-1.5": s(-1.5),
    "min-sub": 1,
    "max-sub": 0x007FFFFF,
    "min-norm": 0x00800000,
    "max": 0x7F7FFFFF,
    "inf": 0x7F800000,
    "-inf": 0xFF800000,
    "qnan": 0x7FC00000,
    "snan": 0x7F800001,
    "1/3": s(1.0 / 3.0),
    "tiny": s(2.0**-24),
}

BINARY_PAIRS = [
    ("1", "tiny"),
    ("1", "1/3"),
    ("-1.5", "1/3"),
    ("max", "max"),
    ("min-sub", "min-norm"),
    ("max-sub", "min-sub"),
    ("inf", "-inf"),
    ("+0", "-0"),
    ("snan", "1"),
    ("qnan", "1"),
    ("1", "+0"),
    ("min-norm", "-1.5"),
]


class Writer:
    def __init__(self, double: bool) -> None:
        self.double = double
        self.lines: list[str] = []
        self.number = 0
        self.fmt = "d" if double else "s"
        self.special = SPECIAL_D if double else SPECIAL_S

    def _next(self) -> int:
        self.number += 1
        assert self.number <= 254, "test numbers are 1..254"
        return self.number

    def _value(self, bits: int) -> str:
        return f"{bits & (MASK64 if self.double else 0xFFFFFFFF):#x}"

    def _move_in(self, register: str, bits: int) -> str:
        if self.double:
            return f"li t0, {self._value(bits)}; fmv.d.x {register}, t0"
        return f"li t0, {self._value(bits)}; fmv.w.x {register}, t0"

    def _args(self, bits: int) -> int:
        return signed(bits) if self.double else bits

    def fp_op(
        self,
        name: str,
        operands: list[int],
        mode: str | None,
        result: int,
        flags: int,
        integer_result: bool = False,
        comment: str = "",
    ) -> None:
        n = self._next()
        registers = ["fa1", "fa2", "fa3"][: len(operands)]
        setup = "; ".join(self._move_in(r, v) for r, v in zip(registers, operands, strict=True))
        destination = "a0" if integer_result else "fa0"
        text = f"{name} {destination}, {', '.join(registers)}"
        if mode is not None:
            text += f", {mode}"
        move_out = (
            "" if integer_result else ("fmv.x.d a0, fa0" if self.double else "fmv.x.w a0, fa0")
        )
        expected = result & MASK64
        if not integer_result and not self.double:
            expected = result & 0xFFFFFFFF
            expected = expected - (1 << 32) if expected >> 31 else expected  # fmv.x.w sign-extends
            expected &= MASK64
        self.lines.append(f"    /* {comment or name} */")
        self.lines.append(f"    SET_TESTNUM({n}); {setup}; fsflags zero")
        self.lines.append(f"    {text}; {move_out + '; ' if move_out else ''}frflags a1")
        self.lines.append(f"    CHECK_EQ(a0, {expected:#x}); CHECK_EQ(a1, {flags:#x})")

    def int_source(self, name: str, value: int, mode: str, result: int, flags: int) -> None:
        n = self._next()
        move_out = "fmv.x.d a0, fa0" if self.double else "fmv.x.w a0, fa0"
        expected = result & (MASK64 if self.double else 0xFFFFFFFF)
        if not self.double and expected >> 31:
            expected = (expected - (1 << 32)) & MASK64
        self.lines.append(f"    /* {name} {value:#x} {mode} */")
        self.lines.append(f"    SET_TESTNUM({n}); li a2, {value & MASK64:#x}; fsflags zero")
        # the assembler takes no rounding mode for the exact fcvt.d.w/wu
        rounding = "" if name in ("fcvt.d.w", "fcvt.d.wu") else f", {mode}"
        self.lines.append(f"    {name} fa0, a2{rounding}; {move_out}; frflags a1")
        self.lines.append(f"    CHECK_EQ(a0, {expected:#x}); CHECK_EQ(a1, {flags:#x})")

    def raw(self, text: str) -> None:
        self.lines.append(text)


def generate(double: bool) -> str:
    w = Writer(double)
    f = w.fmt
    sp = w.special
    a = w._args
    for op in ("fadd", "fsub", "fmul", "fdiv"):
        for i, (x, y) in enumerate(BINARY_PAIRS):
            mode_index = i % 5
            if op == "fmul" and x == "1" and y == "tiny":
                x, y = "min-norm", "1/3"  # an underflow in the table
            bx, by = sp[x], sp[y]
            if op == "fadd":
                bits, flags = sf.f_add(a(bx), a(by), double, mode_index, False)
            elif op == "fsub":
                bits, flags = sf.f_add(a(bx), a(by), double, mode_index, True)
            elif op == "fmul":
                bits, flags = sf.f_mul(a(bx), a(by), double, mode_index)
            else:
                bits, flags = sf.f_div(a(bx), a(by), double, mode_index)
            w.fp_op(
                f"{op}.{f}",
                [bx, by],
                MODES[mode_index],
                int(bits),
                int(flags),
                comment=f"{op}.{f} {x}, {y}, {MODES[mode_index]}",
            )
    # all five modes on one inexact quotient and one tie
    for mode_index, mode in enumerate(MODES):
        bits, flags = sf.f_div(a(sp["1"]), a(sp["-1.5"]), double, mode_index)
        w.fp_op(
            f"fdiv.{f}",
            [sp["1"], sp["-1.5"]],
            mode,
            int(bits),
            int(flags),
            comment=f"1 / -1.5 in {mode}",
        )
        bits, flags = sf.f_add(a(sp["1"]), a(sp["tiny"]), double, mode_index, False)
        w.fp_op(
            f"fadd.{f}",
            [sp["1"], sp["tiny"]],
            mode,
            int(bits),
            int(flags),
            comment=f"1 + half an ulp in {mode}",
        )
    for x in ("1", "1/3", "-1.5", "-0", "min-sub", "max-sub", "inf", "snan", "max"):
        for mode_index in (0, 3):
            bits, flags = sf.f_sqrt(a(sp[x]), double, mode_index)
            w.fp_op(
                f"fsqrt.{f}",
                [sp[x]],
                MODES[mode_index],
                int(bits),
                int(flags),
                comment=f"fsqrt.{f} {x} {MODES[mode_index]}",
            )
    fused = [
        ("1/3", "-1.5", "1"),
        ("inf", "+0", "qnan"),
        ("max", "max", "-inf"),
        ("min-norm", "1/3", "-0"),
        ("1", "1", "-1.5"),
        ("tiny", "tiny", "1"),
    ]
    for op, negate_product, negate_addend in (
        ("fmadd", 0, 0),
        ("fmsub", 0, 1),
        ("fnmsub", 1, 0),
        ("fnmadd", 1, 1),
    ):
        for i, (x, y, z) in enumerate(fused):
            mode_index = (i + len(op)) % 5
            bits, flags = sf.f_fma(
                a(sp[x]), a(sp[y]), a(sp[z]), double, mode_index, negate_product, negate_addend
            )
            w.fp_op(
                f"{op}.{f}",
                [sp[x], sp[y], sp[z]],
                MODES[mode_index],
                int(bits),
                int(flags),
                comment=f"{op}.{f} {x}, {y}, {z}, {MODES[mode_index]}",
            )
    for x, y in (
        ("+0", "-0"),
        ("-0", "+0"),
        ("qnan", "1"),
        ("snan", "1"),
        ("qnan", "snan"),
        ("1", "-1.5"),
        ("inf", "max"),
    ):
        for op, want_max in (("fmin", False), ("fmax", True)):
            bits, flags = sf.f_min_max(a(sp[x]), a(sp[y]), double, want_max)
            w.fp_op(
                f"{op}.{f}",
                [sp[x], sp[y]],
                None,
                int(bits),
                int(flags),
                comment=f"{op}.{f} {x}, {y}",
            )
    for x, y in (("+0", "-0"), ("qnan", "qnan"), ("snan", "1"), ("1", "-1.5"), ("-inf", "-inf")):
        for op, kind in (("feq", 0), ("flt", 1), ("fle", 2)):
            value, flags = sf.f_compare(a(sp[x]), a(sp[y]), double, kind)
            w.fp_op(
                f"{op}.{f}",
                [sp[x], sp[y]],
                None,
                int(value),
                int(flags),
                integer_result=True,
                comment=f"{op}.{f} {x}, {y}",
            )
    for x in ("-inf", "-1.5", "min-sub", "-0", "+0", "max-sub", "1", "inf", "snan", "qnan"):
        value = sf.f_classify(a(sp[x]), double)
        w.fp_op(
            f"fclass.{f}",
            [sp[x]],
            None,
            int(value),
            0,
            integer_result=True,
            comment=f"fclass.{f} {x}",
        )
    for op, kind in (("fsgnj", 0), ("fsgnjn", 1), ("fsgnjx", 2)):
        for x, y in (("1", "-1.5"), ("-1.5", "-0"), ("qnan", "-inf")):
            bits = sf.f_sign_inject(a(sp[x]), a(sp[y]), double, kind)
            w.fp_op(f"{op}.{f}", [sp[x], sp[y]], None, int(bits), 0, comment=f"{op}.{f} {x}, {y}")
    conversions = [
        (1.5, "w", 0),
        (2.5, "w", 0),
        (2.5, "w", 4),
        (-2.5, "w", 4),
        (-2.5, "w", 2),
        (-2.5, "wu", 1),
        (-0.4, "wu", 0),
        (-1.0, "wu", 0),
        (2.0**31, "w", 0),
        (-(2.0**31), "w", 0),
        (2.0**32, "wu", 0),
        (2.0**63, "l", 0),
        (-(2.0**63), "l", 0),
        (2.0**64, "lu", 0),
        (0.75, "l", 3),
        (-0.75, "l", 3),
        (1e30, "lu", 1),
        (float("inf"), "w", 0),
        (float("-inf"), "lu", 0),
        (float("nan"), "l", 0),
        (3.75, "wu", 1),
        (-3.75, "w", 2),
    ]
    for value, kind, mode_index in conversions:
        bits = d(value) if double else s(value)
        if value != value:
            bits = sp["qnan"]
        is_signed = kind in ("w", "l")
        width = 32 if kind in ("w", "wu") else 64
        result, flags = sf.f_to_integer(a(bits), double, is_signed, width, mode_index)
        w.fp_op(
            f"fcvt.{kind}.{f}",
            [bits],
            MODES[mode_index],
            int(result),
            int(flags),
            integer_result=True,
            comment=f"fcvt.{kind}.{f} {value} {MODES[mode_index]}",
        )
    for value, kind, mode_index in [
        (-1, "l", 0),
        (-1, "lu", 0),
        (-1, "lu", 1),
        (-1, "wu", 0),
        (2**24 + 1, "w", 0),
        (2**24 + 1, "w", 4),
        (2**53 + 1, "l", 3),
        (0x1_0000_0005, "w", 0),
        (-(2**63), "l", 2),
        (0, "l", 2),
    ]:
        is_signed = kind in ("w", "l")
        width = 32 if kind in ("w", "wu") else 64
        result, flags = sf.f_from_integer(value, is_signed, width, double, mode_index)
        w.int_source(f"fcvt.{f}.{kind}", value, MODES[mode_index], int(result), int(flags))
    if double:
        for x in ("1/3", "max", "min-sub", "snan", "-inf", "tiny"):
            for mode_index in (0, 1):
                result, flags = sf.f_convert_format(a(SPECIAL_D[x]), True, mode_index)
                n = w._next()
                w.raw(f"    /* fcvt.s.d {x} {MODES[mode_index]} */")
                w.raw(
                    f"    SET_TESTNUM({n}); li t0, {SPECIAL_D[x]:#x}; fmv.d.x fa1, t0; fsflags zero"
                )
                w.raw(f"    fcvt.s.d fa0, fa1, {MODES[mode_index]}; fmv.x.d a0, fa0; frflags a1")
                boxed = 0xFFFFFFFF00000000 | (int(result) & 0xFFFFFFFF)
                w.raw(f"    CHECK_EQ(a0, {boxed:#x}); CHECK_EQ(a1, {int(flags):#x})")
        for x in ("1/3", "min-sub", "snan", "-inf"):
            result, flags = sf.f_convert_format(SPECIAL_S[x], False, 0)
            n = w._next()
            w.raw(f"    /* fcvt.d.s {x} */")
            w.raw(f"    SET_TESTNUM({n}); li t0, {SPECIAL_S[x]:#x}; fmv.w.x fa1, t0; fsflags zero")
            w.raw("    fcvt.d.s fa0, fa1; fmv.x.d a0, fa0; frflags a1")
            w.raw(f"    CHECK_EQ(a0, {int(result) & MASK64:#x}); CHECK_EQ(a1, {int(flags):#x})")
    return "\n".join(w.lines)


HEADER = """/*
 * {name}.S - self-checking test of the {ext} extension on RV64 (generated by
 * tools/gen_fp_isa_tests.py; edit that, not this file).
 *
 * Every operation on special operands (signed zeros, subnormals, the largest and
 * smallest normals, infinities, quiet and signalling NaNs, inexact quotients and
 * rounding ties) in the five rounding modes, checking result bits and fflags;
 * conversions at the integer boundaries (saturation and NV); fmin/fmax on signed
 * zeros and NaNs; compares (quiet feq, signalling flt/fle); fclass; sign
 * injection{extra}.  Expected values come from rvh's soft-float and are confirmed
 * by running this guest on QEMU 7.2.
 *
 * Exit 0 = pass, otherwise the number of the first failing test.
 */
#include "test.h"

    .option norvc

RVH_TEST_BEGIN({name})
    li t0, 1 << 13          /* mstatus.FS = Initial: FP on */
    csrs mstatus, t0
{body}
{tail}
RVH_TEST_END
"""

TAIL_F = """
    /* NaN-boxing: a single that is not boxed reads as the canonical NaN */
    SET_TESTNUM(250); li t0, 0x3f800000; fmv.d.x fa1, t0; fadd.s fa0, fa1, fa1
    fmv.x.d a0, fa0; CHECK_EQ(a0, 0xffffffff7fc00000)
    /* flw boxes, fsw stores the low word as it is */
    SET_TESTNUM(251); la a2, 1f; flw fa1, 0(a2); fmv.x.d a0, fa1
    CHECK_EQ(a0, 0xffffffff40490fdb)
    fsw fa1, 4(a2); lwu a0, 4(a2); CHECK_EQ(a0, 0x40490fdb)
    /* dynamic rounding from frm, and a reserved frm makes it illegal */
    SET_TESTNUM(252); csrwi frm, 3; li t0, 1; fcvt.s.w fa1, t0; li t0, 3; fcvt.s.w fa2, t0
    fdiv.s fa0, fa1, fa2; fmv.x.w a0, fa0; CHECK_EQ(a0, 0x3eaaaaab)
    SET_TESTNUM(253); csrwi frm, 5
    TEST_ILLEGAL(253, fdiv.s fa0, fa1, fa2)
    csrwi frm, 0
    j 2f
    CODE_ALIGN(8)
1:  .word 0x40490fdb, 0
2:
"""

TAIL_D = """
    /* the compressed FP loads and stores */
    SET_TESTNUM(250)
    la s0, 1f
    mv t1, sp
    mv sp, s0
    .option push
    .option rvc
    c.fld fa5, 8(s0)
    c.fsd fa5, 16(s0)
    c.fldsp ft0, 8(sp)
    c.fsdsp ft0, 24(sp)
    .option pop
    mv sp, t1
    ld a0, 16(s0); CHECK_EQ(a0, 0xc008000000000000)
    ld a0, 24(s0); CHECK_EQ(a0, 0xc008000000000000)
    fmv.x.d a0, ft0; CHECK_EQ(a0, 0xc008000000000000)
    /* a reserved static rounding mode is illegal */
    SET_TESTNUM(251)
    TEST_ILLEGAL(251, .insn r 0x53, 5, 0x01, fa0, fa1, fa2)
    /* FS = Off: FP instructions and fcsr are illegal */
    SET_TESTNUM(252); li t0, 3 << 13; csrc mstatus, t0
    TEST_ILLEGAL(252, fmv.d.x fa0, zero)
    TEST_ILLEGAL(252, csrr a0, fcsr)
    li t0, 1 << 13; csrs mstatus, t0
    /* FP writes make FS Dirty and set SD */
    SET_TESTNUM(253); fmv.d.x fa0, zero; csrr a0, mstatus; srli a0, a0, 63; CHECK_EQ(a0, 1)
    j 2f
    CODE_ALIGN(8)
1:  .dword 0, 0xc008000000000000, 0, 0
2:
"""


def main() -> None:
    root = Path(__file__).resolve().parent.parent / "guests" / "isa"
    for name, double, ext, extra, tail in (
        ("rv64f", False, "F", ", NaN-boxing, dynamic and reserved rounding modes", TAIL_F),
        (
            "rv64d",
            True,
            "D",
            ", fcvt.s.d/fcvt.d.s, the compressed FP loads and stores, FS = Off",
            TAIL_D,
        ),
    ):
        text = HEADER.format(name=name, ext=ext, extra=extra, body=generate(double), tail=tail)
        (root / f"{name}.S").write_text(text)


if __name__ == "__main__":
    main()

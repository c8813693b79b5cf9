"""The soft-float core of F and D (rvh/cpu/softfloat.py): results and flags, bit for bit.

Two kinds of evidence:

* tables of known IEEE 754 results for each operation, rounding mode and special operand
  (signed zeros, subnormals, infinities, quiet and signalling NaNs, the conversion boundaries),
  with the exact flags the RISC-V spec requires (canonical NaNs, tininess after rounding);
* the host's own IEEE arithmetic as an independent reference: x86-64 SSE rounds in the four
  directed/nearest-even modes and detects tininess after rounding, as RISC-V does, so a small C
  helper (built with the host gcc) computes add/sub/mul/div/sqrt/fma and conversions under
  ``fesetround`` and reports its exception flags.  RMM, which x86 lacks, is covered by the
  tables and by the lockstep comparison with QEMU (tests/system/lockstep/test_fp_lockstep.py).
"""

from __future__ import annotations

import ctypes
import platform
import random
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from rvh.cpu import softfloat as sf

NX, UF, OF, DZ, NV = sf.NX, sf.UF, sf.OF, sf.DZ, sf.NV
RNE, RTZ, RDN, RUP, RMM = sf.RNE, sf.RTZ, sf.RDN, sf.RUP, sf.RMM
MASK64 = (1 << 64) - 1
QNAN_D = 0x7FF8000000000000
QNAN_S = 0x7FC00000


def d(value: float) -> int:
    return struct.unpack("<q", struct.pack("<d", value))[0]


def s(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def signed(bits: int) -> int:
    bits &= MASK64
    return bits - (1 << 64) if bits >> 63 else bits


def result(pair: tuple[int, int], double: bool = True) -> tuple[int, int]:
    bits, flags = pair
    return int(bits) & (MASK64 if double else 0xFFFFFFFF), int(flags)


# ---- tables --------------------------------------------------------------------------------------
MIN_SUB_D = 0x0000000000000001
MIN_NORMAL_D = 0x0010000000000000
MAX_D = 0x7FEFFFFFFFFFFFFF
INF_D = 0x7FF0000000000000
SNAN_D = 0x7FF0000000000001
MIN_SUB_S = 0x00000001
MAX_S = 0x7F7FFFFF
INF_S = 0x7F800000
SNAN_S = 0x7F800001


@pytest.mark.parametrize(
    "a, b, rm, expected",
    [
        (d(1.0), d(2.0), RNE, (d(3.0), 0)),
        (d(1.0), d(-1.0), RNE, (0, 0)),  # exact zero sum: +0 ...
        (d(1.0), d(-1.0), RDN, (signed(1 << 63), 0)),  # ... but -0 rounding down
        (d(-0.0), d(-0.0), RNE, (signed(1 << 63), 0)),
        (d(0.0), d(-0.0), RNE, (0, 0)),
        (d(0.0), d(-0.0), RDN, (signed(1 << 63), 0)),
        (INF_D, signed(INF_D | 1 << 63), RNE, (QNAN_D, NV)),  # inf - inf
        (SNAN_D, d(1.0), RNE, (QNAN_D, NV)),
        (QNAN_D | 5, d(1.0), RNE, (QNAN_D, 0)),  # quiet NaN: canonical, no flag
        (MAX_D, MAX_D, RNE, (INF_D, OF | NX)),
        (MAX_D, MAX_D, RTZ, (MAX_D, OF | NX)),
        (MAX_D, MAX_D, RDN, (MAX_D, OF | NX)),
        (MAX_D, MAX_D, RUP, (INF_D, OF | NX)),
        (MAX_D, MAX_D, RMM, (INF_D, OF | NX)),
        (d(1.0), d(2.0**-53), RNE, (d(1.0), NX)),  # tie to even
        (d(1.0), d(2.0**-53), RMM, (d(1.0) + 1, NX)),  # tie away from zero
        (d(1.0), d(2.0**-53), RUP, (d(1.0) + 1, NX)),
        (d(1.0), d(2.0**-53), RTZ, (d(1.0), NX)),
        (d(-1.0), d(-(2.0**-53)), RDN, (d(-1.0) + 1, NX)),
        (MIN_SUB_D, MIN_SUB_D, RNE, (2, 0)),  # subnormal sum, exact: no UF
    ],
)
def test_add_double(a, b, rm, expected):
    assert result(sf.f_add(a, b, True, rm, False)) == (expected[0] & MASK64, expected[1])


@pytest.mark.parametrize(
    "a, b, rm, expected",
    [
        (d(3.0), d(1.0 / 3.0), RNE, (d(1.0), NX)),
        (INF_D, 0, RNE, (QNAN_D, NV)),
        (d(-2.0), 0, RNE, (signed(1 << 63), 0)),
        # 2**-1022 * 0.5: exactly the largest-subnormal boundary, exact, no flags
        (MIN_NORMAL_D, d(0.5), RNE, (0x0008000000000000, 0)),
        # smallest subnormal * 0.5: rounds to 0 (tie, even) with UF and NX
        (MIN_SUB_D, d(0.5), RNE, (0, UF | NX)),
        (MIN_SUB_D, d(0.5), RUP, (1, UF | NX)),
        (MIN_SUB_D, d(0.75), RNE, (1, UF | NX)),
        # tininess after rounding: (1 - 2**-52)(1 + 2**-52) 2**-1022 = (1 - 2**-104) 2**-1022
        # rounds to 2**-1022 (normal) at 53 bits in RNE, so no underflow is signalled;
        # truncated (RTZ) it is tiny.  (1 - 2**-53) 2**-1022 is tiny in every mode: exact at 53
        # bits, it rounds up to 2**-1022 only once denormalized.
        (d(1.0 - 2.0**-52), MIN_NORMAL_D + 1, RNE, (MIN_NORMAL_D, NX)),
        (d(1.0 - 2.0**-52), MIN_NORMAL_D + 1, RTZ, (MIN_NORMAL_D - 1, UF | NX)),
        (d(1.0 - 2.0**-52), MIN_NORMAL_D + 1, RUP, (MIN_NORMAL_D, NX)),
        (d(1.0 - 2.0**-53), MIN_NORMAL_D, RNE, (MIN_NORMAL_D, UF | NX)),
        (d(2.0**1000), d(2.0**100), RTZ, (MAX_D, OF | NX)),
        (d(-(2.0**1000)), d(2.0**100), RUP, (signed(MAX_D | 1 << 63), OF | NX)),
    ],
)
def test_mul_double(a, b, rm, expected):
    assert result(sf.f_mul(a, b, True, rm)) == (expected[0] & MASK64, expected[1])


@pytest.mark.parametrize(
    "a, b, rm, expected",
    [
        (d(1.0), 0, RNE, (INF_D, DZ)),
        (d(-1.0), 0, RNE, (INF_D | 1 << 63, DZ)),
        (0, 0, RNE, (QNAN_D, NV)),
        (INF_D, INF_D, RNE, (QNAN_D, NV)),
        (d(1.0), INF_D, RNE, (0, 0)),
        (d(1.0), d(3.0), RNE, (d(1.0 / 3.0), NX)),
        (d(1.0), d(3.0), RUP, (d(1.0 / 3.0) + 1, NX)),
        (d(2.0), d(3.0), RDN, (d(2.0 / 3.0), NX)),  # 2/3 rounds up in RNE
        (d(2.0), d(3.0), RNE, (d(2.0 / 3.0), NX)),
        (d(6.0), d(3.0), RUP, (d(2.0), 0)),
    ],
)
def test_div_double(a, b, rm, expected):
    assert result(sf.f_div(a, b, True, rm)) == (expected[0] & MASK64, expected[1])


@pytest.mark.parametrize(
    "a, rm, expected",
    [
        (d(4.0), RNE, (d(2.0), 0)),
        (d(2.0), RNE, (d(2.0**0.5), NX)),
        (d(-0.0), RNE, (1 << 63, 0)),  # sqrt(-0) = -0
        (d(-1.0), RNE, (QNAN_D, NV)),
        (INF_D | 1 << 63, RNE, (QNAN_D, NV)),
        (INF_D, RNE, (INF_D, 0)),
        (SNAN_D, RNE, (QNAN_D, NV)),
        (MIN_SUB_D, RNE, (d(2.0**-537), 0)),  # sqrt(2**-1074) = 2**-537 exactly
    ],
)
def test_sqrt_double(a, rm, expected):
    assert result(sf.f_sqrt(signed(a), True, rm)) == (expected[0] & MASK64, expected[1])


def test_fma_rounds_once():
    negative_zero = signed(1 << 63)
    # (1 + 2**-52)(1 - 2**-52) = 1 - 2**-104: a product then a sum would give 1.0 exactly in
    # RNE; fused, minus 1 it is exactly -2**-104
    a, b = d(1.0 + 2.0**-52), d(1.0 - 2.0**-52)
    assert result(sf.f_fma(a, b, d(-1.0), True, RNE, 0, 0)) == (d(-(2.0**-104)) & MASK64, 0)
    # fmsub / fnmsub / fnmadd: signs of the product and the addend
    assert result(sf.f_fma(d(2.0), d(3.0), d(1.0), True, RNE, 0, 1)) == (d(5.0), 0)
    assert result(sf.f_fma(d(2.0), d(3.0), d(1.0), True, RNE, 1, 0)) == (d(-5.0) & MASK64, 0)
    assert result(sf.f_fma(d(2.0), d(3.0), d(1.0), True, RNE, 1, 1)) == (d(-7.0) & MASK64, 0)
    # inf * 0 + qNaN is invalid (11.6), the result the canonical NaN
    assert result(sf.f_fma(INF_D, 0, QNAN_D, True, RNE, 0, 0)) == (QNAN_D, NV)
    minus_infinity = signed(INF_D | 1 << 63)
    assert result(sf.f_fma(INF_D, d(1.0), minus_infinity, True, RNE, 0, 0)) == (QNAN_D, NV)
    # exact zero: +0 unless rounding down; (+0) + (+0) keeps its sign
    assert result(sf.f_fma(d(1.0), d(1.0), d(-1.0), True, RNE, 0, 0)) == (0, 0)
    assert result(sf.f_fma(d(1.0), d(1.0), d(-1.0), True, RDN, 0, 0)) == (1 << 63, 0)
    assert result(sf.f_fma(0, d(1.0), negative_zero, True, RNE, 0, 0)) == (0, 0)
    assert result(sf.f_fma(negative_zero, d(1.0), negative_zero, True, RNE, 0, 0)) == (1 << 63, 0)


@pytest.mark.parametrize(
    "a, b, rm, expected",
    [
        (s(1.0), s(2.0), RNE, (s(3.0), 0)),
        (MAX_S, MAX_S, RNE, (INF_S, OF | NX)),
        (MAX_S, MAX_S, RTZ, (MAX_S, OF | NX)),
        (s(1.0), s(2.0**-24), RNE, (s(1.0), NX)),
        (s(1.0), s(2.0**-24), RMM, (s(1.0) + 1, NX)),
        (SNAN_S, s(1.0), RNE, (QNAN_S, NV)),
        (MIN_SUB_S, MIN_SUB_S, RNE, (2, 0)),
    ],
)
def test_add_single(a, b, rm, expected):
    assert result(sf.f_add(a, b, False, rm, False), False) == expected


def test_single_underflow_after_rounding():
    # 2**-126 (1 - 2**-46) rounds to 2**-126 in RNE: not tiny after rounding
    assert result(sf.f_mul(s(1.0 - 2.0**-23), 0x00800001, False, RNE), False) == (0x00800000, NX)
    assert result(sf.f_mul(s(1.0 - 2.0**-23), 0x00800001, False, RTZ), False) == (
        0x007FFFFF,
        UF | NX,
    )


@pytest.mark.parametrize(
    "a, double, is_signed, width, rm, expected",
    [
        (d(1.5), True, True, 32, RNE, (2, NX)),
        (d(2.5), True, True, 32, RNE, (2, NX)),
        (d(2.5), True, True, 32, RMM, (3, NX)),
        (d(-2.5), True, True, 32, RMM, (-3, NX)),
        (d(-2.5), True, True, 32, RDN, (-3, NX)),
        (d(-2.5), True, True, 32, RUP, (-2, NX)),
        (d(-2.5), True, True, 32, RTZ, (-2, NX)),
        (d(0.4), True, True, 64, RUP, (1, NX)),
        (d(-0.4), True, True, 64, RDN, (-1, NX)),
        (d(-0.4), True, False, 64, RNE, (0, NX)),  # rounds to 0 first: no NV
        (d(-1.0), True, False, 64, RNE, (0, NV)),
        (d(2.0**31), True, True, 32, RNE, (2**31 - 1, NV)),  # saturates, NV and no NX
        (d(-(2.0**31)), True, True, 32, RNE, (-(2**31), 0)),
        (d(-(2.0**31) - 0.5), True, True, 32, RTZ, (-(2**31), NX)),
        (d(-(2.0**31) - 1.0), True, True, 32, RNE, (-(2**31), NV)),
        (d(2.0**32 - 1.0), True, False, 32, RNE, (-1, 0)),  # 0xffffffff, sign-extended
        (d(2.0**32), True, False, 32, RNE, (-1, NV)),
        (d(2.0**63), True, True, 64, RNE, (2**63 - 1, NV)),
        (d(-(2.0**63)), True, True, 64, RNE, (-(2**63), 0)),
        (d(2.0**64 - 2048.0), True, False, 64, RNE, (signed(2**64 - 2048), 0)),
        (d(2.0**64), True, False, 64, RNE, (-1, NV)),
        (QNAN_D, True, True, 32, RNE, (2**31 - 1, NV)),
        (QNAN_D | 1 << 63, True, True, 64, RNE, (2**63 - 1, NV)),  # NaN: the largest, any sign
        (QNAN_D, True, False, 64, RNE, (-1, NV)),
        (INF_D | 1 << 63, True, True, 64, RNE, (-(2**63), NV)),
        (INF_D | 1 << 63, True, False, 32, RNE, (0, NV)),
        (s(-0.0), False, False, 32, RNE, (0, 0)),
        (s(3.75), False, True, 64, RTZ, (3, NX)),
        (INF_S, False, False, 32, RNE, (-1, NV)),
    ],
)
def test_convert_to_integer(a, double, is_signed, width, rm, expected):
    value, flags = sf.f_to_integer(signed(a) if double else a, double, is_signed, width, rm)
    assert (int(value), int(flags)) == expected


@pytest.mark.parametrize(
    "value, is_signed, width, double, rm, expected",
    [
        (-1, True, 64, True, RNE, (d(-1.0), 0)),
        (-1, False, 64, True, RNE, (d(2.0**64), NX)),  # 2**64 - 1 rounds up
        (-1, False, 64, True, RTZ, (d(2.0**64) - 1, NX)),
        (-1, False, 32, False, RNE, (s(2.0**32), NX)),
        (-1, True, 32, False, RNE, (s(-1.0), 0)),
        (2**24 + 1, True, 32, False, RNE, (s(2.0**24), NX)),
        (2**24 + 3, True, 32, False, RNE, (s(2.0**24 + 4), NX)),
        (2**24 + 1, True, 32, False, RMM, (s(2.0**24 + 2), NX)),
        (-(2**63), True, 64, True, RNE, (d(-(2.0**63)), 0)),
        (0, True, 64, True, RDN, (0, 0)),  # +0 in every mode
        (0x1_0000_0005, True, 32, True, RNE, (d(5.0), 0)),  # only the low 32 bits count
    ],
)
def test_convert_from_integer(value, is_signed, width, double, rm, expected):
    bits, flags = sf.f_from_integer(value, is_signed, width, double, rm)
    assert (int(bits) & (MASK64 if double else 0xFFFFFFFF), int(flags)) == (
        expected[0] & MASK64,
        expected[1],
    )


def test_convert_between_formats():
    assert result(sf.f_convert_format(d(0.1), True, RNE), False) == (s(0.1), NX)
    assert result(sf.f_convert_format(d(0.1), True, RTZ), False) == (s(0.1) - 1, NX)
    assert result(sf.f_convert_format(d(1e300), True, RNE), False) == (INF_S, OF | NX)
    assert result(sf.f_convert_format(d(1e-300), True, RNE), False) == (0, UF | NX)
    assert result(sf.f_convert_format(SNAN_D, True, RNE), False) == (QNAN_S, NV)
    assert result(sf.f_convert_format(s(0.1), False, RNE)) == (
        d(float(struct.unpack("<f", struct.pack("<I", s(0.1)))[0])),
        0,
    )
    assert result(sf.f_convert_format(SNAN_S, False, RNE)) == (QNAN_D, NV)
    assert result(sf.f_convert_format(MIN_SUB_S, False, RNE)) == (d(2.0**-149), 0)


def test_compare_and_min_max():
    # feq is quiet (NV only for sNaN), flt/fle signal on any NaN
    assert [int(v) for v in sf.f_compare(QNAN_D, d(1.0), True, 0)] == [0, 0]
    assert [int(v) for v in sf.f_compare(SNAN_D, d(1.0), True, 0)] == [0, NV]
    assert [int(v) for v in sf.f_compare(QNAN_D, d(1.0), True, 1)] == [0, NV]
    assert [int(v) for v in sf.f_compare(QNAN_D, d(1.0), True, 2)] == [0, NV]
    assert [int(v) for v in sf.f_compare(0, signed(1 << 63), True, 0)] == [1, 0]  # +0 == -0
    assert [int(v) for v in sf.f_compare(signed(1 << 63), 0, True, 1)] == [0, 0]
    assert [int(v) for v in sf.f_compare(d(-2.0), d(-1.0), True, 1)] == [1, 0]
    assert [int(v) for v in sf.f_compare(s(-2.0), s(-2.0), False, 2)] == [1, 0]
    # minimumNumber: -0 < +0, a NaN gives the other operand, sNaN raises NV
    assert [int(v) & MASK64 for v in sf.f_min_max(0, signed(1 << 63), True, False)] == [1 << 63, 0]
    assert [int(v) for v in sf.f_min_max(0, signed(1 << 63), True, True)] == [0, 0]
    assert [int(v) for v in sf.f_min_max(QNAN_D, d(1.0), True, False)] == [d(1.0), 0]
    assert [int(v) for v in sf.f_min_max(SNAN_D, d(1.0), True, True)] == [d(1.0), NV]
    assert [int(v) for v in sf.f_min_max(SNAN_D, QNAN_D, True, True)] == [QNAN_D, NV]
    assert [int(v) for v in sf.f_min_max(s(3.0), s(-3.0), False, True)] == [s(3.0), 0]


def test_classify_and_sign_injection():
    cases = {
        INF_D | 1 << 63: 0,
        d(-1.0): 1,
        (1 << 63) | 1: 2,
        1 << 63: 3,
        0: 4,
        1: 5,
        d(1.0): 6,
        INF_D: 7,
        SNAN_D: 8,
        QNAN_D: 9,
    }
    for bits, index in cases.items():
        assert int(sf.f_classify(signed(bits), True)) == 1 << index
    assert int(sf.f_classify(SNAN_S, False)) == 1 << 8
    assert int(sf.f_classify(0x80000001, False)) == 1 << 2
    assert int(sf.f_sign_inject(d(1.0), d(-2.0), True, 0)) & MASK64 == d(-1.0) & MASK64
    assert int(sf.f_sign_inject(d(1.0), d(-2.0), True, 1)) == d(1.0)
    assert int(sf.f_sign_inject(d(-1.0), d(-2.0), True, 2)) == d(1.0)
    assert int(sf.f_sign_inject(s(-1.0), s(2.0), False, 2)) == s(-1.0)


# ---- the host as reference -----------------------------------------------------------------------
HELPER = r"""
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static const int modes[4] = {FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD};

static int riscv_flags(void) {
    int e = fetestexcept(FE_ALL_EXCEPT), f = 0;
    if (e & FE_INEXACT) f |= 1;
    if (e & FE_UNDERFLOW) f |= 2;
    if (e & FE_OVERFLOW) f |= 4;
    if (e & FE_DIVBYZERO) f |= 8;
    if (e & FE_INVALID) f |= 16;
    return f;
}

int op_d(int op, int rm, uint64_t a, uint64_t b, uint64_t c, uint64_t *out) {
    volatile double x, y, z, r = 0;
    memcpy((void *)&x, &a, 8); memcpy((void *)&y, &b, 8); memcpy((void *)&z, &c, 8);
    fesetround(modes[rm]);
    feclearexcept(FE_ALL_EXCEPT);
    switch (op) {
    case 0: r = x + y; break;
    case 1: r = x - y; break;
    case 2: r = x * y; break;
    case 3: r = x / y; break;
    case 4: r = sqrt(x); break;
    case 5: r = fma(x, y, z); break;
    case 6: { volatile float f = (float)x; r = f; memcpy(out, (void *)&f, 4);
              int flags = riscv_flags(); fesetround(FE_TONEAREST); return flags; }
    case 7: r = (double)(int64_t)a; break;
    case 8: r = (double)a; break;
    case 9: { volatile long v = lrint(x); int flags = riscv_flags();
              fesetround(FE_TONEAREST); *out = (uint64_t)v; return flags; }
    }
    int flags = riscv_flags();
    fesetround(FE_TONEAREST);
    memcpy(out, (void *)&r, 8);
    return flags;
}

int op_s(int op, int rm, uint32_t a, uint32_t b, uint32_t c, uint32_t *out) {
    volatile float x, y, z, r = 0;
    memcpy((void *)&x, &a, 4); memcpy((void *)&y, &b, 4); memcpy((void *)&z, &c, 4);
    fesetround(modes[rm]);
    feclearexcept(FE_ALL_EXCEPT);
    switch (op) {
    case 0: r = x + y; break;
    case 1: r = x - y; break;
    case 2: r = x * y; break;
    case 3: r = x / y; break;
    case 4: r = sqrtf(x); break;
    case 5: r = fmaf(x, y, z); break;
    }
    int flags = riscv_flags();
    fesetround(FE_TONEAREST);
    memcpy(out, (void *)&r, 4);
    return flags;
}
"""


@pytest.fixture(scope="module")
def host():
    assert platform.machine() == "x86_64", "the host reference needs x86-64 SSE arithmetic"
    directory = Path(tempfile.mkdtemp(prefix="rvh-softfloat-"))
    (directory / "helper.c").write_text(HELPER)
    library = directory / "helper.so"
    subprocess.run(
        [
            "gcc",
            "-O1",
            "-frounding-math",
            "-fno-builtin",
            "-shared",
            "-fPIC",
            "-o",
            str(library),
            str(directory / "helper.c"),
            "-lm",
        ],
        check=True,
    )
    lib = ctypes.CDLL(str(library))
    lib.op_d.argtypes = (
        [ctypes.c_int, ctypes.c_int] + [ctypes.c_uint64] * 3 + [ctypes.POINTER(ctypes.c_uint64)]
    )
    lib.op_s.argtypes = (
        [ctypes.c_int, ctypes.c_int] + [ctypes.c_uint32] * 3 + [ctypes.POINTER(ctypes.c_uint32)]
    )
    return lib


def _operands_d(rng: random.Random) -> int:
    return _pick_d(rng) & MASK64


def _pick_d(rng: random.Random) -> int:
    roll = rng.randrange(10)
    if roll < 3:
        return rng.choice(
            [
                0,
                1 << 63,
                1,
                MIN_NORMAL_D,
                MAX_D,
                INF_D,
                SNAN_D,
                QNAN_D,
                d(1.0),
                d(-1.5),
                0x000FFFFFFFFFFFFF,
                d(2.0**-1074 * 3),
                d(1.0 + 2.0**-52),
            ]
        )
    if roll < 5:
        return rng.getrandbits(64)
    if roll < 7:  # near 1: cancellation, ties
        return d(rng.uniform(-2, 2)) & MASK64
    exponent = rng.choice([0, 1, 2, 0x7FE, 0x7FD, 0x3FF, 0x3FE, 0x400, 0x001, 0x035])
    mantissa = rng.getrandbits(52) if rng.randrange(2) else rng.getrandbits(4) << 48
    return (rng.getrandbits(1) << 63) | (exponent << 52) | mantissa


def _operands_s(rng: random.Random) -> int:
    roll = rng.randrange(10)
    if roll < 3:
        return rng.choice(
            [0, 1 << 31, 1, 0x00800000, MAX_S, INF_S, SNAN_S, QNAN_S, s(1.0), s(-1.5), 0x007FFFFF]
        )
    if roll < 5:
        return rng.getrandbits(32)
    if roll < 7:
        return s(rng.uniform(-2, 2))
    exponent = rng.choice([0, 1, 2, 0xFE, 0xFD, 0x7F, 0x7E, 0x80, 0x18])
    mantissa = rng.getrandbits(23) if rng.randrange(2) else rng.getrandbits(3) << 20
    return (rng.getrandbits(1) << 31) | (exponent << 23) | mantissa


def _is_nan_d(bits: int) -> bool:
    return (bits >> 52) & 0x7FF == 0x7FF and bits & ((1 << 52) - 1) != 0


def _is_nan_s(bits: int) -> bool:
    return (bits >> 23) & 0xFF == 0xFF and bits & ((1 << 23) - 1) != 0


def _ours(op: int, double: bool, rm: int, a: int, b: int, c: int) -> tuple[int, int]:
    if double:
        a, b, c = signed(a), signed(b), signed(c)
    if op in (0, 1):
        pair = sf.f_add(a, b, double, rm, op == 1)
    elif op == 2:
        pair = sf.f_mul(a, b, double, rm)
    elif op == 3:
        pair = sf.f_div(a, b, double, rm)
    elif op == 4:
        pair = sf.f_sqrt(a, double, rm)
    else:
        pair = sf.f_fma(a, b, c, double, rm, 0, 0)
    return result(pair, double)


@pytest.mark.parametrize("double", [True, False], ids=["d", "s"])
@pytest.mark.parametrize("op", range(6), ids=["add", "sub", "mul", "div", "sqrt", "fma"])
def test_arithmetic_matches_host(host, op, double):
    rng = random.Random(op * 2 + double)
    mismatches = []
    for _ in range(3000):
        rm = rng.randrange(4)  # RNE, RTZ, RDN, RUP (x86 has no RMM)
        if double:
            a, b, c = (_operands_d(rng) for _ in range(3))
            out = ctypes.c_uint64()
            flags = host.op_d(op, rm, a, b, c, ctypes.byref(out))
            expected = QNAN_D if _is_nan_d(out.value) else out.value
        else:
            a, b, c = (_operands_s(rng) for _ in range(3))
            out32 = ctypes.c_uint32()
            flags = host.op_s(op, rm, a, b, c, ctypes.byref(out32))
            expected = QNAN_S if _is_nan_s(out32.value) else out32.value
        got = _ours(op, double, rm, a, b, c)
        if got != (expected, flags):
            mismatches.append(
                (hex(a), hex(b), hex(c), rm, [hex(got[0]), got[1]], hex(expected), flags)
            )
    assert not mismatches, mismatches[:5]


def test_conversions_match_host(host):
    rng = random.Random(7)
    mismatches = []
    for _ in range(3000):
        rm = rng.randrange(4)
        a = _operands_d(rng)
        out = ctypes.c_uint64()
        # double -> single
        flags = host.op_d(6, rm, a, 0, 0, ctypes.byref(out))
        expected = QNAN_S if _is_nan_s(out.value & 0xFFFFFFFF) else out.value & 0xFFFFFFFF
        got = result(sf.f_convert_format(signed(a), True, rm), False)
        if got != (expected, flags):
            mismatches.append(("cvt.s.d", hex(a), rm, got, hex(expected), flags))
        # int64 / uint64 -> double
        value = rng.choice([rng.getrandbits(64), rng.getrandbits(rng.randrange(1, 64))])
        for op, is_signed in ((7, True), (8, False)):
            flags = host.op_d(op, rm, value, 0, 0, ctypes.byref(out))
            got = result(sf.f_from_integer(signed(value), is_signed, 64, True, rm))
            if got != (out.value, flags):
                mismatches.append(("cvt.d.l", hex(value), is_signed, rm, got, hex(out.value)))
        # double -> int64, where x86 and RISC-V agree (in range, not NaN)
        if not _is_nan_d(a) and abs(struct.unpack("<d", struct.pack("<Q", a))[0]) < 2.0**62:
            flags = host.op_d(9, rm, a, 0, 0, ctypes.byref(out))
            value, got_flags = sf.f_to_integer(signed(a), True, True, 64, rm)
            if (int(value), int(got_flags)) != (signed(out.value), flags):
                mismatches.append(("cvt.l.d", hex(a), rm, int(value), signed(out.value)))
    assert not mismatches, mismatches[:5]

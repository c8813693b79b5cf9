"""IEEE 754 binary32/binary64 arithmetic on integers, for the F and D extensions.

The host's float arithmetic rounds to nearest-even only and hides its exception flags, so every
F/D operation is done here on integer significands, in the way the unprivileged spec (chapter 11,
"F", 11.2-11.7, and 12 "D") and IEEE 754-2008 define it: the exact result (or the exact result
truncated, with a *sticky* bit that records whether anything nonzero was dropped) is rounded
once by :func:`round_pack` in one of the five rounding modes, which also raises the flags.

Conventions:

* A value is unpacked to (class, sign, exponent, significand): a finite nonzero value is
  ``sig * 2**(exp - 61)`` with ``2**61 <= sig < 2**62`` (subnormals are normalized, so ``exp``
  may lie below the format's minimum).  ``sig`` is an int64; bit 0 may carry a sticky bit.
* Wider intermediates (products, fused multiply-add) are 128-bit unsigned (hi, lo) uint64 pairs.
* ``double`` selects binary64 (precision 53, emax 1023) or binary32 (24, 127); binary32 values
  are passed as their 32 bits in an int64 (NaN-boxing is the caller's business).
* Results are (bits, flags) with the fflags bits NX=1, UF=2, OF=4, DZ=8, NV=16 (11.2).
* Every NaN result is the canonical NaN (11.3: RISC-V does not propagate NaN payloads).
* Tininess is detected after rounding (11.6), and underflow is flagged only when the result is
  also inexact (IEEE 754 7.5, default exception handling).
"""

import numba as nb
import numpy as np

from rvh.isa.fields import (
    FFLAGS_DZ_MASK,
    FFLAGS_NV_MASK,
    FFLAGS_NX_MASK,
    FFLAGS_OF_MASK,
    FFLAGS_UF_MASK,
)

# fflags bits (11.2), by their short names
NX = FFLAGS_NX_MASK
UF = FFLAGS_UF_MASK
OF = FFLAGS_OF_MASK
DZ = FFLAGS_DZ_MASK
NV = FFLAGS_NV_MASK

# rounding modes (11.2, table 11.1)
RNE = 0
RTZ = 1
RDN = 2
RUP = 3
RMM = 4

# classes of unpacked values
ZERO = 0
FINITE = 1
INF = 2
QNAN = 3
SNAN = 4

CANONICAL_NAN_S = 0x7FC00000
CANONICAL_NAN_D = 0x7FF8000000000000

SIG_TOP = np.int64(1) << 61  # the normalized significand's leading one
U32 = np.uint64(32)
U64_MASK32 = np.uint64(0xFFFFFFFF)
U0 = np.uint64(0)
U1 = np.uint64(1)


@nb.njit(cache=True)
def precision(double):
    return np.int64(53) if double else np.int64(24)


@nb.njit(cache=True)
def max_exponent(double):
    return np.int64(1023) if double else np.int64(127)


@nb.njit(cache=True)
def sign_shift(double):
    return np.int64(63) if double else np.int64(31)


@nb.njit(cache=True)
def canonical_nan(double):
    return np.int64(CANONICAL_NAN_D) if double else np.int64(CANONICAL_NAN_S)


@nb.njit(cache=True)
def infinity(sign, double):
    if double:
        return (np.int64(sign) << 63) | np.int64(0x7FF0000000000000)
    return (np.int64(sign) << 31) | np.int64(0x7F800000)


@nb.njit(cache=True)
def zero(sign, double):
    return np.int64(sign) << sign_shift(double)


@nb.njit(cache=True)
def sign_of(bits, double):
    return (bits >> sign_shift(double)) & 1


@nb.njit(cache=True)
def unpack(bits, double):
    """(class, sign, exponent, significand) of a binary32/64 value."""
    p = precision(double)
    emax = max_exponent(double)
    fraction = bits & ((np.int64(1) << (p - 1)) - 1)
    field = (bits >> (p - 1)) & (2 * emax + 1)
    sign = sign_of(bits, double)
    if field == 2 * emax + 1:
        if fraction == 0:
            return np.int64(INF), sign, np.int64(0), np.int64(0)
        quiet = (fraction >> (p - 2)) & 1
        return np.int64(QNAN if quiet else SNAN), sign, np.int64(0), np.int64(0)
    if field == 0:
        if fraction == 0:
            return np.int64(ZERO), sign, np.int64(0), np.int64(0)
        sig = fraction << (62 - p)
        exp = 1 - emax
        while sig < SIG_TOP:
            sig <<= 1
            exp -= 1
        return np.int64(FINITE), sign, exp, sig
    sig = (fraction | (np.int64(1) << (p - 1))) << (62 - p)
    return np.int64(FINITE), sign, field - emax, sig


@nb.njit(cache=True)
def is_nan_class(cls):
    return cls == QNAN or cls == SNAN


@nb.njit(cache=True)
def shift_right_jam(sig, distance):
    """sig >> distance, with bit 0 set if any one bit was shifted out (sig >= 0)."""
    if distance <= 0:
        return sig
    if distance >= 63:
        return np.int64(1) if sig != 0 else np.int64(0)
    dropped = sig & ((np.int64(1) << distance) - 1)
    return (sig >> distance) | (np.int64(1) if dropped != 0 else np.int64(0))


@nb.njit(cache=True)
def round_increment(kept, dropped, half, sign, rm):
    """1 if a magnitude ``kept`` with the ``dropped`` remainder (out of 2*half) rounds up."""
    if dropped == 0:
        return np.int64(0)
    if rm == RNE:
        return np.int64(1 if dropped > half or (dropped == half and (kept & 1)) else 0)
    if rm == RMM:
        return np.int64(1 if dropped >= half else 0)
    if rm == RDN:
        return np.int64(sign)
    if rm == RUP:
        return np.int64(1 - sign)
    return np.int64(0)  # RTZ


@nb.njit(cache=True)
def round_significand(sig, shift, sign, rm):
    """sig rounded to sig >> shift in mode rm (0 < shift <= 62): (rounded, inexact)."""
    kept = sig >> shift
    dropped = sig & ((np.int64(1) << shift) - 1)
    half = np.int64(1) << (shift - 1)
    return kept + round_increment(kept, dropped, half, sign, rm), dropped != 0


@nb.njit(cache=True)
def overflow_result(sign, double, rm):
    """The result of an overflow (IEEE 754 7.4): infinity, or the largest finite number when the
    rounding direction points toward zero."""
    to_infinity = rm == RNE or rm == RMM or (rm == RDN and sign) or (rm == RUP and not sign)
    if to_infinity:
        return infinity(sign, double)
    return infinity(sign, double) - 1


@nb.njit(cache=True)
def round_pack(sign, exp, sig, double, rm):
    """Round sig * 2**(exp - 61) (2**61 <= sig < 2**62, sticky in bit 0) to the format:
    (bits, flags)."""
    p = precision(double)
    emax = max_exponent(double)
    emin = 1 - emax
    shift = 62 - p
    flags = np.int64(0)
    sign_bit = np.int64(sign) << sign_shift(double)
    if exp < emin:
        # tiny after rounding (11.6): the value rounded to p bits with an unbounded exponent
        # is still below 2**emin
        unbounded, _ = round_significand(sig, shift, sign, rm)
        tiny = not (unbounded == (np.int64(1) << p) and exp + 1 == emin)
        denormal = shift_right_jam(sig, emin - exp)
        rounded, inexact = round_significand(denormal, shift, sign, rm)
        if inexact:
            flags |= NX
            if tiny:
                flags |= UF
        # exponent field 0; a carry into bit p-1 makes it the smallest normal, as it should
        return sign_bit | rounded, flags
    if exp > emax:
        return overflow_result(sign, double, rm), np.int64(OF | NX)
    rounded, inexact = round_significand(sig, shift, sign, rm)
    magnitude = ((exp + emax - 1) << (p - 1)) + rounded
    if (magnitude >> (p - 1)) >= 2 * emax + 1:
        return overflow_result(sign, double, rm), np.int64(OF | NX)
    if inexact:
        flags |= NX
    return sign_bit | magnitude, flags


# ---- 128-bit helpers (unsigned, as hi/lo uint64) ------------------------------------------------


@nb.njit(cache=True)
def mul_64x64(a, b):
    """Full 128-bit product of two non-negative int64 values: (hi, lo) uint64."""
    ua = np.uint64(a)
    ub = np.uint64(b)
    a_lo = ua & U64_MASK32
    a_hi = ua >> U32
    b_lo = ub & U64_MASK32
    b_hi = ub >> U32
    p0 = a_lo * b_lo
    p1 = a_lo * b_hi
    p2 = a_hi * b_lo
    p3 = a_hi * b_hi
    middle = (p0 >> U32) + (p1 & U64_MASK32) + (p2 & U64_MASK32)
    lo = (p0 & U64_MASK32) | (middle << U32)
    hi = p3 + (p1 >> U32) + (p2 >> U32) + (middle >> U32)
    return hi, lo


@nb.njit(cache=True)
def highest_bit_64(value):
    """Index of the highest one bit of a nonzero uint64."""
    index = np.int64(0)
    v = value
    if v >> np.uint64(32):
        v >>= np.uint64(32)
        index += 32
    if v >> np.uint64(16):
        v >>= np.uint64(16)
        index += 16
    if v >> np.uint64(8):
        v >>= np.uint64(8)
        index += 8
    if v >> np.uint64(4):
        v >>= np.uint64(4)
        index += 4
    if v >> np.uint64(2):
        v >>= np.uint64(2)
        index += 2
    if v >> np.uint64(1):
        index += 1
    return index


@nb.njit(cache=True)
def highest_bit_128(hi, lo):
    if hi != U0:
        return 64 + highest_bit_64(hi)
    return highest_bit_64(lo)


@nb.njit(cache=True)
def shift_right_jam_128(hi, lo, distance):
    """(hi, lo) >> distance with the sticky bit in bit 0."""
    if distance <= 0:
        return hi, lo
    if distance >= 128:
        return U0, U1 if (hi | lo) != U0 else U0
    if distance >= 64:
        d = np.uint64(distance - 64)
        lost = lo != U0 or (d != U0 and (hi & ((U1 << d) - U1)) != U0)
        new_lo = hi >> d
        return U0, new_lo | (U1 if lost else U0)
    d = np.uint64(distance)
    lost = (lo & ((U1 << d) - U1)) != U0
    new_lo = (lo >> d) | (hi << (np.uint64(64) - d))
    return hi >> d, new_lo | (U1 if lost else U0)


@nb.njit(cache=True)
def shift_left_128(hi, lo, distance):
    """(hi, lo) << distance, 0 <= distance < 64 (nothing may be shifted out)."""
    if distance <= 0:
        return hi, lo
    d = np.uint64(distance)
    return (hi << d) | (lo >> (np.uint64(64) - d)), lo << d


@nb.njit(cache=True)
def add_128(ahi, alo, bhi, blo):
    lo = alo + blo
    carry = U1 if lo < alo else U0
    return ahi + bhi + carry, lo


@nb.njit(cache=True)
def sub_128(ahi, alo, bhi, blo):
    """a - b for a >= b."""
    borrow = U1 if alo < blo else U0
    return ahi - bhi - borrow, alo - blo


@nb.njit(cache=True)
def less_128(ahi, alo, bhi, blo):
    return ahi < bhi or (ahi == bhi and alo < blo)


@nb.njit(cache=True)
def round_pack_128(sign, exp, hi, lo, double, rm):
    """Round the nonzero value (hi, lo) * 2**exp (sticky in bit 0) to the format."""
    top = highest_bit_128(hi, lo)
    if top >= 61:
        _, reduced = shift_right_jam_128(hi, lo, top - 61)
        sig = np.int64(reduced)
    else:
        sig = np.int64(lo) << (61 - top)
    return round_pack(sign, exp + top, sig, double, rm)


@nb.njit(cache=True)
def sum_round_pack(x_sign, x_hi, x_lo, x_exp, c_sign, c_hi, c_lo, c_exp, double, rm):
    """Round x + c, each (hi, lo) * 2**exp with its leading one at bit 122 or 123 and both
    nonzero.  Returns (bits, flags); an exact zero sum is +0 (-0 when rounding down)."""
    # Align on the larger exponent.  A small distance shifts the larger operand left instead
    # (there is headroom up to bit 127), so that no bit of either is lost where the two can
    # cancel; from distance 4 on, the shifted operand is below 2**120 and the other above
    # 2**122, so at most two leading bits cancel and the sticky bit stays far below the
    # rounding position.
    if x_exp >= c_exp:
        distance = x_exp - c_exp
        if distance <= 3:
            x_hi, x_lo = shift_left_128(x_hi, x_lo, distance)
            exp = c_exp
        else:
            c_hi, c_lo = shift_right_jam_128(c_hi, c_lo, distance)
            exp = x_exp
    else:
        distance = c_exp - x_exp
        if distance <= 3:
            c_hi, c_lo = shift_left_128(c_hi, c_lo, distance)
            exp = x_exp
        else:
            x_hi, x_lo = shift_right_jam_128(x_hi, x_lo, distance)
            exp = c_exp
    if x_sign == c_sign:
        hi, lo = add_128(x_hi, x_lo, c_hi, c_lo)
        sign = x_sign
    elif less_128(x_hi, x_lo, c_hi, c_lo):
        hi, lo = sub_128(c_hi, c_lo, x_hi, x_lo)
        sign = c_sign
    else:
        hi, lo = sub_128(x_hi, x_lo, c_hi, c_lo)
        sign = x_sign
    if hi == U0 and lo == U0:
        return zero(1 if rm == RDN else 0, double), np.int64(0)
    return round_pack_128(sign, exp, hi, lo, double, rm)


@nb.njit(cache=True)
def wide(sig):
    """A normalized significand as a 128-bit value with its leading one at bit 122."""
    return np.uint64(sig) >> np.uint64(3), np.uint64(sig) << np.uint64(61)


# ---- arithmetic (11.6, 12.4) -------------------------------------------------------------------


@nb.njit(cache=True)
def nan_result(a_cls, b_cls, c_cls, double):
    """The canonical NaN, with NV when an operand is a signalling NaN."""
    flags = np.int64(0)
    if a_cls == SNAN or b_cls == SNAN or c_cls == SNAN:
        flags = np.int64(NV)
    return canonical_nan(double), flags


@nb.njit(cache=True)
def f_add(a, b, double, rm, subtract):
    """a + b, or a - b."""
    a_cls, a_sign, a_exp, a_sig = unpack(a, double)
    b_cls, b_sign, b_exp, b_sig = unpack(b, double)
    if subtract:
        b_sign ^= 1
    if is_nan_class(a_cls) or is_nan_class(b_cls):
        return nan_result(a_cls, b_cls, ZERO, double)
    if a_cls == INF:
        if b_cls == INF and a_sign != b_sign:
            return canonical_nan(double), np.int64(NV)
        return infinity(a_sign, double), np.int64(0)
    if b_cls == INF:
        return infinity(b_sign, double), np.int64(0)
    if a_cls == ZERO and b_cls == ZERO:
        if a_sign == b_sign:
            return zero(a_sign, double), np.int64(0)
        return zero(1 if rm == RDN else 0, double), np.int64(0)
    if a_cls == ZERO:
        return round_pack(b_sign, b_exp, b_sig, double, rm)  # exact: b is representable
    if b_cls == ZERO:
        return round_pack(a_sign, a_exp, a_sig, double, rm)
    a_hi, a_lo = wide(a_sig)
    b_hi, b_lo = wide(b_sig)
    return sum_round_pack(
        a_sign, a_hi, a_lo, a_exp - 122, b_sign, b_hi, b_lo, b_exp - 122, double, rm
    )


@nb.njit(cache=True)
def f_mul(a, b, double, rm):
    a_cls, a_sign, a_exp, a_sig = unpack(a, double)
    b_cls, b_sign, b_exp, b_sig = unpack(b, double)
    sign = a_sign ^ b_sign
    if is_nan_class(a_cls) or is_nan_class(b_cls):
        return nan_result(a_cls, b_cls, ZERO, double)
    if (a_cls == INF and b_cls == ZERO) or (a_cls == ZERO and b_cls == INF):
        return canonical_nan(double), np.int64(NV)
    if a_cls == INF or b_cls == INF:
        return infinity(sign, double), np.int64(0)
    if a_cls == ZERO or b_cls == ZERO:
        return zero(sign, double), np.int64(0)
    hi, lo = mul_64x64(a_sig, b_sig)
    return round_pack_128(sign, a_exp + b_exp - 122, hi, lo, double, rm)


@nb.njit(cache=True)
def f_fma(a, b, c, double, rm, negate_product, negate_addend):
    """(+-a*b) +- c with one rounding (11.6: FMADD, FMSUB, FNMSUB, FNMADD)."""
    a_cls, a_sign, a_exp, a_sig = unpack(a, double)
    b_cls, b_sign, b_exp, b_sig = unpack(b, double)
    c_cls, c_sign, c_exp, c_sig = unpack(c, double)
    p_sign = a_sign ^ b_sign ^ negate_product
    c_sign ^= negate_addend
    infinity_times_zero = (a_cls == INF and b_cls == ZERO) or (a_cls == ZERO and b_cls == INF)
    if is_nan_class(a_cls) or is_nan_class(b_cls) or is_nan_class(c_cls):
        # 11.6: inf * 0 + qNaN is invalid too
        bits, flags = nan_result(a_cls, b_cls, c_cls, double)
        if infinity_times_zero:
            flags |= NV
        return bits, flags
    if infinity_times_zero:
        return canonical_nan(double), np.int64(NV)
    if a_cls == INF or b_cls == INF:
        if c_cls == INF and c_sign != p_sign:
            return canonical_nan(double), np.int64(NV)
        return infinity(p_sign, double), np.int64(0)
    if c_cls == INF:
        return infinity(c_sign, double), np.int64(0)
    if a_cls == ZERO or b_cls == ZERO:
        if c_cls == ZERO:
            if p_sign == c_sign:
                return zero(c_sign, double), np.int64(0)
            return zero(1 if rm == RDN else 0, double), np.int64(0)
        return round_pack(c_sign, c_exp, c_sig, double, rm)  # exact
    hi, lo = mul_64x64(a_sig, b_sig)
    p_exp = a_exp + b_exp - 122
    if c_cls == ZERO:
        return round_pack_128(p_sign, p_exp, hi, lo, double, rm)
    c_hi, c_lo = wide(c_sig)
    return sum_round_pack(p_sign, hi, lo, p_exp, c_sign, c_hi, c_lo, c_exp - 122, double, rm)


@nb.njit(cache=True)
def f_div(a, b, double, rm):
    a_cls, a_sign, a_exp, a_sig = unpack(a, double)
    b_cls, b_sign, b_exp, b_sig = unpack(b, double)
    sign = a_sign ^ b_sign
    if is_nan_class(a_cls) or is_nan_class(b_cls):
        return nan_result(a_cls, b_cls, ZERO, double)
    if a_cls == INF:
        if b_cls == INF:
            return canonical_nan(double), np.int64(NV)
        return infinity(sign, double), np.int64(0)
    if b_cls == INF:
        return zero(sign, double), np.int64(0)
    if b_cls == ZERO:
        if a_cls == ZERO:
            return canonical_nan(double), np.int64(NV)
        return infinity(sign, double), np.int64(DZ)
    if a_cls == ZERO:
        return zero(sign, double), np.int64(0)
    # long division: quotient = floor(a_sig * 2**62 / b_sig), in (2**61, 2**63)
    remainder = a_sig
    quotient = np.int64(0)
    for _ in range(63):
        quotient <<= 1
        if remainder >= b_sig:
            remainder -= b_sig
            quotient |= 1
        remainder <<= 1
    # the loop ran one step past bit 0 of floor(a*2**62/b): undo it
    remainder >>= 1
    sticky = np.int64(1) if remainder != 0 else np.int64(0)
    exp = a_exp - b_exp - 1
    if quotient >= (np.int64(1) << 62):
        quotient = shift_right_jam(quotient, 1)
        exp += 1
    return round_pack(sign, exp, quotient | sticky, double, rm)


@nb.njit(cache=True)
def f_sqrt(a, double, rm):
    cls, sign, exp, sig = unpack(a, double)
    if is_nan_class(cls):
        return nan_result(cls, ZERO, ZERO, double)
    if cls == ZERO:
        return a, np.int64(0)
    if sign:
        return canonical_nan(double), np.int64(NV)
    if cls == INF:
        return a, np.int64(0)
    # radicand R = sig * 2**k with (exp - 61 - k) even; R in [2**110, 2**112), so its root has
    # 56 bits: enough for 53 plus guard and round, the remainder giving the sticky bit
    k = np.int64(49) if ((exp - 61 - 49) & 1) == 0 else np.int64(50)
    root = np.int64(0)
    remainder = np.int64(0)
    for j in range(55, -1, -1):
        position = 2 * j
        if position >= k:
            pair = (sig >> (position - k)) & 3
        elif position + 1 == k:
            pair = (sig & 1) << 1
        else:
            pair = np.int64(0)
        remainder = (remainder << 2) | pair
        trial = (root << 2) | 1
        if remainder >= trial:
            remainder -= trial
            root = (root << 1) | 1
        else:
            root <<= 1
    half_exp = (exp - 61 - k) >> 1
    sticky = np.int64(1) if remainder != 0 else np.int64(0)
    return round_pack(np.int64(0), half_exp + 55, (root << 6) | sticky, double, rm)


# ---- comparisons, sign injection, classification (11.7, 11.8, 11.9) ---------------------------


@nb.njit(cache=True)
def _order_key(bits, double):
    """An integer that orders non-NaN values as their numbers (with -0 == +0)."""
    magnitude = bits & ((np.int64(1) << sign_shift(double)) - 1)
    return -magnitude if sign_of(bits, double) else magnitude


@nb.njit(cache=True)
def f_compare(a, b, double, kind):
    """kind 0 = FEQ (quiet: NV only for signalling NaNs), 1 = FLT, 2 = FLE (signalling: NV for
    any NaN).  Returns (0 or 1, flags)."""
    a_cls = unpack(a, double)[0]
    b_cls = unpack(b, double)[0]
    if is_nan_class(a_cls) or is_nan_class(b_cls):
        if kind != 0 or a_cls == SNAN or b_cls == SNAN:
            return np.int64(0), np.int64(NV)
        return np.int64(0), np.int64(0)
    ka = _order_key(a, double)
    kb = _order_key(b, double)
    if kind == 0:
        result = ka == kb
    elif kind == 1:
        result = ka < kb
    else:
        result = ka <= kb
    return np.int64(1 if result else 0), np.int64(0)


@nb.njit(cache=True)
def f_min_max(a, b, double, want_max):
    """FMIN/FMAX (11.7, as in version 2.2): IEEE 754-2019 minimumNumber/maximumNumber, with
    -0 < +0; a NaN operand yields the other; two NaNs the canonical NaN; sNaN raises NV."""
    a_cls = unpack(a, double)[0]
    b_cls = unpack(b, double)[0]
    flags = np.int64(NV) if (a_cls == SNAN or b_cls == SNAN) else np.int64(0)
    if is_nan_class(a_cls) and is_nan_class(b_cls):
        return canonical_nan(double), flags
    if is_nan_class(a_cls):
        return b, flags
    if is_nan_class(b_cls):
        return a, flags
    ka = _order_key(a, double)
    kb = _order_key(b, double)
    if ka == kb:
        # equal numbers: only +0 and -0 differ; min is -0, max is +0
        a_negative = sign_of(a, double) == 1
        if want_max:
            return (b if a_negative else a), flags
        return (a if a_negative else b), flags
    if want_max:
        return (a if ka > kb else b), flags
    return (a if ka < kb else b), flags


@nb.njit(cache=True)
def f_sign_inject(a, b, double, kind):
    """FSGNJ (kind 0), FSGNJN (1), FSGNJX (2): a's magnitude with a sign from b."""
    shift = sign_shift(double)
    sign_bit = np.int64(1) << shift
    magnitude = a & (sign_bit - 1)
    b_sign = (b >> shift) & 1
    if kind == 0:
        sign = b_sign
    elif kind == 1:
        sign = b_sign ^ 1
    else:
        sign = b_sign ^ ((a >> shift) & 1)
    return magnitude | (sign << shift)


@nb.njit(cache=True)
def f_classify(a, double):
    """FCLASS (11.9): one bit for -inf, -normal, -subnormal, -0, +0, +subnormal, +normal, +inf,
    sNaN, qNaN."""
    p = precision(double)
    emax = max_exponent(double)
    cls = unpack(a, double)[0]
    sign = sign_of(a, double)
    if cls == SNAN:
        return np.int64(1 << 8)
    if cls == QNAN:
        return np.int64(1 << 9)
    if cls == INF:
        return np.int64(1 << 0) if sign else np.int64(1 << 7)
    if cls == ZERO:
        return np.int64(1 << 3) if sign else np.int64(1 << 4)
    subnormal = ((a >> (p - 1)) & (2 * emax + 1)) == 0
    if subnormal:
        return np.int64(1 << 2) if sign else np.int64(1 << 5)
    return np.int64(1 << 1) if sign else np.int64(1 << 6)


# ---- conversions (11.7, 12.5) -------------------------------------------------------------------


@nb.njit(cache=True)
def f_convert_format(a, from_double, rm):
    """FCVT.S.D (rounds) and FCVT.D.S (exact)."""
    to_double = not from_double
    cls, sign, exp, sig = unpack(a, from_double)
    if is_nan_class(cls):
        return nan_result(cls, ZERO, ZERO, to_double)
    if cls == INF:
        return infinity(sign, to_double), np.int64(0)
    if cls == ZERO:
        return zero(sign, to_double), np.int64(0)
    return round_pack(sign, exp, sig, to_double, rm)


@nb.njit(cache=True)
def f_from_integer(value, is_signed, width, double, rm):
    """FCVT.S/D.W/WU/L/LU: the integer in the low ``width`` bits of value."""
    if width == 32:
        value = value & 0xFFFFFFFF
        if is_signed and value >= (np.int64(1) << 31):
            value -= np.int64(1) << 32
    magnitude = np.uint64(value)
    sign = np.int64(0)
    if is_signed and value < 0:
        sign = np.int64(1)
        magnitude = ~magnitude + U1
    if magnitude == U0:
        return np.int64(0), np.int64(0)
    return round_pack_128(sign, np.int64(0), U0, magnitude, double, rm)


@nb.njit(cache=True)
def f_to_integer(a, double, is_signed, width, rm):
    """FCVT.W/WU/L/LU.S/D (11.7, table 11.4): rounded in mode rm; NaN and values out of range
    saturate with NV (and no NX); the 32-bit results are sign-extended."""
    cls, sign, exp, sig = unpack(a, double)
    if is_signed:
        max_value = (np.uint64(1) << np.uint64(width - 1)) - U1
        min_magnitude = np.uint64(1) << np.uint64(width - 1)
    else:
        max_value = np.uint64(0xFFFFFFFFFFFFFFFF) >> np.uint64(64 - width)
        min_magnitude = U0
    if is_nan_class(cls):
        return _integer_result(max_value, U0, width), np.int64(NV)
    if cls == INF:
        if sign:
            return _integer_result(U0, min_magnitude, width), np.int64(NV)
        return _integer_result(max_value, U0, width), np.int64(NV)
    if cls == ZERO:
        return np.int64(0), np.int64(0)
    if exp >= 64:  # too large for any width
        if sign:
            return _integer_result(U0, min_magnitude, width), np.int64(NV)
        return _integer_result(max_value, U0, width), np.int64(NV)
    if exp >= 61:
        magnitude = np.uint64(sig) << np.uint64(exp - 61)
        inexact = False
    else:
        shift = 61 - exp
        if shift >= 63:
            # below 2**-1: keeps 0, the dropped part is less than a half but nonzero
            kept = np.int64(0) + round_increment(np.int64(0), np.int64(1), np.int64(2), sign, rm)
        else:
            kept, _ = round_significand(sig, shift, sign, rm)
        magnitude = np.uint64(kept)
        inexact = shift >= 63 or (sig & ((np.int64(1) << shift) - 1)) != 0
    flags = np.int64(NX) if inexact else np.int64(0)
    if magnitude == U0:
        return np.int64(0), flags
    if sign:
        if magnitude > min_magnitude:
            return _integer_result(U0, min_magnitude, width), np.int64(NV)
        return _integer_result(U0, magnitude, width), flags
    if magnitude > max_value:
        return _integer_result(max_value, U0, width), np.int64(NV)
    return _integer_result(magnitude, U0, width), flags


@nb.njit(cache=True)
def _integer_result(positive, negative_magnitude, width):
    """positive - negative_magnitude as an int64, a 32-bit result sign-extended."""
    value = np.int64(positive - negative_magnitude)
    if width == 32:
        value &= 0xFFFFFFFF
        if value >= (np.int64(1) << 31):
            value -= np.int64(1) << 32
    return value

"""Integer helpers the kernel needs beyond int64 arithmetic (unprivileged spec 2.4, 7.1, 7.2).

Registers are int64 everywhere.  Unsigned operations reinterpret through uint64 inside a
helper and come straight back, so the two types never meet in one expression (numba would
silently turn int64 op uint64 into float64).  Division follows RISC-V, not Python: it truncates
toward zero, x/0 = -1 (all ones), x%0 = x, and MIN/-1 = MIN with remainder 0.
"""

import numba as nb
import numpy as np

INT64_MIN = np.int64(-(2**63))
MASK32 = np.int64(0xFFFFFFFF)


@nb.njit(cache=True)
def ltu(a, b):
    """Unsigned a < b on int64 bit patterns."""
    return (a ^ INT64_MIN) < (b ^ INT64_MIN)


@nb.njit(cache=True)
def srl(a, shift):
    return np.int64(np.uint64(a) >> np.uint64(shift))


@nb.njit(cache=True)
def sext32(a):
    return np.int64(np.int32(a))


@nb.njit(cache=True)
def mulhu(a, b):
    """High 64 bits of the unsigned 128-bit product, from 32-bit halves."""
    ua = np.uint64(a)
    ub = np.uint64(b)
    m32 = np.uint64(0xFFFFFFFF)
    s32 = np.uint64(32)
    a_lo = ua & m32
    a_hi = ua >> s32
    b_lo = ub & m32
    b_hi = ub >> s32
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    hi_hi = a_hi * b_hi
    cross = (lo_lo >> s32) + (hi_lo & m32) + lo_hi
    return np.int64(hi_hi + (hi_lo >> s32) + (cross >> s32))


@nb.njit(cache=True)
def mulh(a, b):
    """High 64 bits of the signed product: correct the unsigned one for negative operands."""
    high = mulhu(a, b)
    if a < 0:
        high -= b
    if b < 0:
        high -= a
    return high


@nb.njit(cache=True)
def mulhsu(a, b):
    """Signed a times unsigned b, high 64 bits."""
    high = mulhu(a, b)
    if a < 0:
        high -= b
    return high


@nb.njit(cache=True)
def divu(a, b):
    if b == 0:
        return np.int64(-1)
    return np.int64(np.uint64(a) // np.uint64(b))


@nb.njit(cache=True)
def remu(a, b):
    if b == 0:
        return a
    return np.int64(np.uint64(a) % np.uint64(b))


@nb.njit(cache=True)
def div(a, b):
    if b == 0:
        return np.int64(-1)
    if a == INT64_MIN and b == -1:
        return a
    # magnitudes as unsigned: -INT64_MIN wraps to itself, which is 2**63 unsigned
    magnitude = np.uint64(-a if a < 0 else a) // np.uint64(-b if b < 0 else b)
    q = np.int64(magnitude)
    return -q if (a < 0) != (b < 0) else q


@nb.njit(cache=True)
def rem(a, b):
    if b == 0:
        return a
    if a == INT64_MIN and b == -1:
        return np.int64(0)
    magnitude = np.uint64(-a if a < 0 else a) % np.uint64(-b if b < 0 else b)
    r = np.int64(magnitude)
    return -r if a < 0 else r


@nb.njit(cache=True)
def divw(a, b):
    a = sext32(a)
    b = sext32(b)
    if b == 0:
        return np.int64(-1)
    if a == -(2**31) and b == -1:
        return a
    return sext32(div(a, b))


@nb.njit(cache=True)
def remw(a, b):
    a = sext32(a)
    b = sext32(b)
    if b == 0:
        return a
    if a == -(2**31) and b == -1:
        return np.int64(0)
    return sext32(rem(a, b))


@nb.njit(cache=True)
def divuw(a, b):
    a = a & MASK32
    b = b & MASK32
    if b == 0:
        return np.int64(-1)
    return sext32(a // b)


@nb.njit(cache=True)
def remuw(a, b):
    a = a & MASK32
    b = b & MASK32
    if b == 0:
        return sext32(a)
    return sext32(a % b)

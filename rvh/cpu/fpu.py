"""The F and D extensions in the kernel: ``execute_float`` runs one FP instruction.

The run loop's general path sends every F/D instruction here (the fast loop never sees one).
Guards come first, in the order the spec gives them: misa.F/D and mstatus.FS (with V=1 also
vsstatus.FS) must allow FP at all (3.1.6.6, 8.2.11), and a reserved rounding mode, static in the
instruction or dynamic from frm, is an illegal instruction (11.2).  The arithmetic is
:mod:`rvh.cpu.softfloat`'s; this module moves operands between the x and f registers, does the
NaN-boxing of single values (12.2: a single operand whose upper 32 bits are not all ones reads as
the canonical NaN; a single result is written with them all ones), accrues the flags in fcsr and
marks the FP state dirty when an f register or fcsr changes.

Returns (status, value for x[rd], whether x[rd] is written); the caller writes x[rd] only when
the status is OK.
"""

import numba as nb
import numpy as np

from rvh.cpu import softfloat as sf
from rvh.cpu.csr import float_enabled, mark_float_dirty
from rvh.cpu.extensions import has_double
from rvh.cpu.layout import CSR_FCSR, DATA_CTX, TIME_NS, F
from rvh.cpu.memory import load_slow, store_slow
from rvh.cpu.mmu import ACCESS_READ, OK
from rvh.isa.causes import Exception_
from rvh.isa.fields import FCSR_FFLAGS_SHIFT, FCSR_FRM_MASK, FCSR_FRM_SHIFT
from rvh.isa.instructions import Op

ILLEGAL_INSTRUCTION = Exception_.ILLEGAL_INSTRUCTION
NAN_BOX = np.int64(-1) << 32  # the upper 32 bits of a NaN-boxed single
DYNAMIC_ROUNDING = 7


@nb.njit(cache=True)
def unbox_single(value):
    """A single operand: its low 32 bits if properly NaN-boxed, else the canonical NaN."""
    if (value >> 32) == -1:
        return value & 0xFFFFFFFF
    return np.int64(sf.CANONICAL_NAN_S)


@nb.njit(cache=True)
def uses_rounding_mode(op):
    """Instructions with an rm field: arithmetic, square root, fused ops and conversions."""
    return not (
        op == Op.FLW
        or op == Op.FSW
        or op == Op.FLD
        or op == Op.FSD
        or op == Op.FSGNJ_S
        or op == Op.FSGNJN_S
        or op == Op.FSGNJX_S
        or op == Op.FSGNJ_D
        or op == Op.FSGNJN_D
        or op == Op.FSGNJX_D
        or op == Op.FMIN_S
        or op == Op.FMAX_S
        or op == Op.FMIN_D
        or op == Op.FMAX_D
        or op == Op.FEQ_S
        or op == Op.FLT_S
        or op == Op.FLE_S
        or op == Op.FEQ_D
        or op == Op.FLT_D
        or op == Op.FLE_D
        or op == Op.FCLASS_S
        or op == Op.FCLASS_D
        or op == Op.FMV_X_W
        or op == Op.FMV_W_X
        or op == Op.FMV_X_D
        or op == Op.FMV_D_X
    )


@nb.njit(cache=True)
def is_double_op(op, bits):
    """D (binary64) instructions: fld/fsd, and the OP-FP/fused ones with fmt (26..25) = 1,
    except fcvt.s.d (fmt S, source D) which is decided by the caller."""
    if op == Op.FLD or op == Op.FSD:
        return True
    if op == Op.FLW or op == Op.FSW:
        return False
    return ((bits >> 25) & 3) == 1


@nb.njit(cache=True)
def execute_float(
    state, machine, memory, page_flags, tlb, decode_cache, op, rd, rs1, rs2, imm, bits, n
):
    """One F/D instruction (11, 12, and 16.3-16.4 for c.fld/c.fsd/c.fldsp/c.fsdsp).  ``rd``,
    ``rs1``, ``rs2`` are the decoded register numbers (x0 as a destination is the sink slot,
    f0 is rd & 31); rs3 and rm are read from ``bits``."""
    x = state
    no_value = np.int64(0)
    if not float_enabled(state, machine):
        return np.int64(ILLEGAL_INSTRUCTION), no_value, False
    double = is_double_op(op, bits) or op == Op.FCVT_D_S
    if op == Op.FCVT_S_D:
        double = True
    if double and not has_double(machine):
        return np.int64(ILLEGAL_INSTRUCTION), no_value, False
    frd = F + (rd & 31)
    f1 = state[F + (rs1 & 31)]
    f2 = state[F + (rs2 & 31)]
    rm = np.int64(0)
    if uses_rounding_mode(op):
        rm = (bits >> 12) & 7
        if rm == DYNAMIC_ROUNDING:
            rm = (state[CSR_FCSR] & FCSR_FRM_MASK) >> FCSR_FRM_SHIFT
        if rm > sf.RMM:
            return np.int64(ILLEGAL_INSTRUCTION), no_value, False

    # ---- loads and stores (11.5, 12.3): no NaN-boxing check on the stored bits ----
    if op == Op.FLW or op == Op.FLD or op == Op.FSW or op == Op.FSD:
        address = x[rs1] + imm
        size = 8 if (op == Op.FLD or op == Op.FSD) else 4
        ctx = state[DATA_CTX]
        now = state[TIME_NS] + n
        if op == Op.FLW or op == Op.FLD:
            value, status = load_slow(
                state, machine, memory, tlb, address, size, ctx, now, ACCESS_READ
            )
            if status == OK:
                state[frd] = value if size == 8 else (value & 0xFFFFFFFF) | NAN_BOX
                mark_float_dirty(state)
            return status, no_value, False
        stored = f2 if size == 8 else f2 & 0xFFFFFFFF
        status = store_slow(
            state, machine, memory, page_flags, tlb, decode_cache, address, size, stored, ctx, now
        )
        return status, no_value, False

    # ---- moves between register files (11.10, 12.6): raw bits, no NaN-boxing check ----
    if op == Op.FMV_X_W:
        value = f1 & 0xFFFFFFFF
        return np.int64(OK), value - ((value >> 31) << 32), True
    if op == Op.FMV_X_D:
        return np.int64(OK), f1, True
    if op == Op.FMV_W_X:
        state[frd] = (x[rs1] & 0xFFFFFFFF) | NAN_BOX
        mark_float_dirty(state)
        return np.int64(OK), no_value, False
    if op == Op.FMV_D_X:
        state[frd] = x[rs1]
        mark_float_dirty(state)
        return np.int64(OK), no_value, False

    # ---- everything else reads its FP operands in the instruction's format ----
    if op == Op.FCVT_D_S:
        a = unbox_single(f1)
    elif double:
        a = f1
    else:
        a = unbox_single(f1)
    b = f2 if double else unbox_single(f2)
    flags = np.int64(0)
    result = np.int64(0)
    writes_float = True
    integer_result = no_value
    if op == Op.FADD_S or op == Op.FADD_D:
        result, flags = sf.f_add(a, b, double, rm, False)
    elif op == Op.FSUB_S or op == Op.FSUB_D:
        result, flags = sf.f_add(a, b, double, rm, True)
    elif op == Op.FMUL_S or op == Op.FMUL_D:
        result, flags = sf.f_mul(a, b, double, rm)
    elif op == Op.FDIV_S or op == Op.FDIV_D:
        result, flags = sf.f_div(a, b, double, rm)
    elif op == Op.FSQRT_S or op == Op.FSQRT_D:
        result, flags = sf.f_sqrt(a, double, rm)
    elif op >= Op.FMADD_S and op <= Op.FNMADD_D:
        f3 = state[F + ((bits >> 27) & 31)]
        c = f3 if double else unbox_single(f3)
        negate_product = op == Op.FNMSUB_S or op == Op.FNMSUB_D
        negate_product |= op == Op.FNMADD_S or op == Op.FNMADD_D
        negate_addend = op == Op.FMSUB_S or op == Op.FMSUB_D
        negate_addend |= op == Op.FNMADD_S or op == Op.FNMADD_D
        result, flags = sf.f_fma(
            a, b, c, double, rm, np.int64(negate_product), np.int64(negate_addend)
        )
    elif op == Op.FSGNJ_S or op == Op.FSGNJ_D:
        result = sf.f_sign_inject(a, b, double, 0)
    elif op == Op.FSGNJN_S or op == Op.FSGNJN_D:
        result = sf.f_sign_inject(a, b, double, 1)
    elif op == Op.FSGNJX_S or op == Op.FSGNJX_D:
        result = sf.f_sign_inject(a, b, double, 2)
    elif op == Op.FMIN_S or op == Op.FMIN_D:
        result, flags = sf.f_min_max(a, b, double, False)
    elif op == Op.FMAX_S or op == Op.FMAX_D:
        result, flags = sf.f_min_max(a, b, double, True)
    elif op == Op.FCVT_S_D:
        result, flags = sf.f_convert_format(a, True, rm)
        double = False  # the result is a single
    elif op == Op.FCVT_D_S:
        result, flags = sf.f_convert_format(a, False, rm)
    elif op == Op.FEQ_S or op == Op.FEQ_D:
        integer_result, flags = sf.f_compare(a, b, double, 0)
        writes_float = False
    elif op == Op.FLT_S or op == Op.FLT_D:
        integer_result, flags = sf.f_compare(a, b, double, 1)
        writes_float = False
    elif op == Op.FLE_S or op == Op.FLE_D:
        integer_result, flags = sf.f_compare(a, b, double, 2)
        writes_float = False
    elif op == Op.FCLASS_S or op == Op.FCLASS_D:
        integer_result = sf.f_classify(a, double)
        writes_float = False
    elif (
        op == Op.FCVT_W_S
        or op == Op.FCVT_WU_S
        or op == Op.FCVT_L_S
        or op == Op.FCVT_LU_S
        or op == Op.FCVT_W_D
        or op == Op.FCVT_WU_D
        or op == Op.FCVT_L_D
        or op == Op.FCVT_LU_D
    ):
        kind = (bits >> 20) & 3  # rs2 field: 0 w, 1 wu, 2 l, 3 lu
        width = np.int64(32) if kind < 2 else np.int64(64)
        integer_result, flags = sf.f_to_integer(a, double, (kind & 1) == 0, width, rm)
        writes_float = False
    else:
        # fcvt.s/d.w/wu/l/lu: the integer comes from x[rs1]
        kind = (bits >> 20) & 3
        width = np.int64(32) if kind < 2 else np.int64(64)
        result, flags = sf.f_from_integer(x[rs1], (kind & 1) == 0, width, double, rm)
    if flags != 0:
        state[CSR_FCSR] |= flags << FCSR_FFLAGS_SHIFT
        mark_float_dirty(state)
    if not writes_float:
        return np.int64(OK), integer_result, True
    state[frd] = result if double else (result & 0xFFFFFFFF) | NAN_BOX
    mark_float_dirty(state)
    return np.int64(OK), no_value, False

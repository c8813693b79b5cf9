"""Instruction decoding for the kernel: bits -> (op, rd, rs1, rs2, imm, length).

The encodings come from the data tables (:mod:`rvh.cpu.tables`); this module only knows how
each operand *format* scatters its fields (unprivileged spec 2.3 for base formats, 16.2 for the
compressed ones).  Decoding happens once per instruction address: the kernel keeps the result in
its decode cache.  Destination x0 is mapped to the sink slot ``X_SINK`` so that execution needs
no x0 check; a compressed instruction decodes to the base instruction it expands to.
"""

import numba as nb
import numpy as np

from rvh.cpu.layout import X_SINK
from rvh.cpu.tables import (
    ENTRY_FIELDS,
    ENTRY_MASK,
    ENTRY_MATCH,
    ENTRY_OP,
    ENTRY_OPERANDS,
    T_BUCKETS,
    T_ENTRIES,
)
from rvh.isa.instructions import Format, Op, Scheme


@nb.njit(cache=True)
def sign_extend(value, bits):
    """Sign-extend the low ``bits`` bits of ``value`` (int64 in, int64 out)."""
    m = np.int64(1) << (bits - 1)
    value = value & ((np.int64(1) << bits) - 1)
    return (value ^ m) - m


@nb.njit(cache=True)
def _find(bits, bucket, tables):
    at = tables[T_BUCKETS] + 2 * bucket
    first = tables[at]
    count = tables[at + 1]
    entries = tables[T_ENTRIES]
    for i in range(first, first + count):
        row = entries + ENTRY_FIELDS * i
        if bits & tables[row + ENTRY_MASK] == tables[row + ENTRY_MATCH]:
            return tables[row + ENTRY_OP], tables[row + ENTRY_OPERANDS]
    return np.int64(0), np.int64(-1)


@nb.njit(cache=True)
def _bit(value, at, to):
    """Bit ``at`` of ``value`` moved to position ``to``."""
    return ((value >> at) & 1) << to


@nb.njit(cache=True)
def decode_base(bits, tables):
    op, fmt = _find(bits, ((bits >> 2) & 0x1F) << 3 | ((bits >> 12) & 7), tables)
    rd = (bits >> 7) & 31
    rs1 = (bits >> 15) & 31
    rs2 = (bits >> 20) & 31
    imm = np.int64(0)
    if op == Op.ILLEGAL:
        return np.int64(Op.ILLEGAL), np.int64(X_SINK), np.int64(0), np.int64(0), imm
    if fmt == Format.I or fmt == Format.FENCE or fmt == Format.CSR or fmt == Format.CSRI:
        imm = sign_extend(bits >> 20, 12)
        if fmt == Format.CSR or fmt == Format.CSRI:
            imm = (bits >> 20) & 0xFFF
    elif fmt == Format.S:
        imm = sign_extend(((bits >> 25) << 5) | ((bits >> 7) & 31), 12)
        rd = 0
    elif fmt == Format.B:
        imm = sign_extend(
            _bit(bits, 31, 12)
            | _bit(bits, 7, 11)
            | (((bits >> 25) & 0x3F) << 5)
            | (((bits >> 8) & 0xF) << 1),
            13,
        )
        rd = 0
    elif fmt == Format.U:
        imm = sign_extend(bits & 0xFFFFF000, 32)
    elif fmt == Format.J:
        imm = sign_extend(
            _bit(bits, 31, 20)
            | (bits & 0xFF000)
            | _bit(bits, 20, 11)
            | (((bits >> 21) & 0x3FF) << 1),
            21,
        )
    elif fmt == Format.SH6:
        imm = (bits >> 20) & 63
    elif fmt == Format.SH5:
        imm = (bits >> 20) & 31
    elif fmt == Format.SFENCE or fmt == Format.HSV or fmt == Format.SYS:
        rd = 0
    if rd == 0:
        rd = X_SINK
    return op, rd, rs1, rs2, imm


@nb.njit(cache=True)
def decode_compressed(bits, tables):
    op, scheme = _find(bits, 256 + ((bits & 3) << 3 | ((bits >> 13) & 7)), tables)
    illegal = (np.int64(Op.ILLEGAL), np.int64(X_SINK), np.int64(0), np.int64(0), np.int64(0))
    if op == Op.ILLEGAL:
        return illegal
    full_rd = (bits >> 7) & 31  # rd/rs1 field, bits 11:7
    full_rs2 = (bits >> 2) & 31  # bits 6:2
    rd_prime = 8 + ((bits >> 2) & 7)  # rd'/rs2', bits 4:2
    rs1_prime = 8 + ((bits >> 7) & 7)  # rs1'/rd', bits 9:7
    imm6 = sign_extend(_bit(bits, 12, 5) | ((bits >> 2) & 31), 6)
    shamt = _bit(bits, 12, 5) | ((bits >> 2) & 31)
    rd = np.int64(0)
    rs1 = np.int64(0)
    rs2 = np.int64(0)
    imm = np.int64(0)
    if scheme == Scheme.CIW_ADDI4SPN:
        rd, rs1 = rd_prime, np.int64(2)
        imm = (
            (((bits >> 11) & 3) << 4)
            | (((bits >> 7) & 0xF) << 6)
            | _bit(bits, 6, 2)
            | _bit(bits, 5, 3)
        )
        if imm == 0:
            return illegal
    elif scheme == Scheme.CL_W or scheme == Scheme.CS_W:
        imm = (((bits >> 10) & 7) << 3) | _bit(bits, 6, 2) | _bit(bits, 5, 6)
        rs1 = rs1_prime
        if scheme == Scheme.CL_W:
            rd = rd_prime
        else:
            rs2 = rd_prime
    elif scheme == Scheme.CL_D or scheme == Scheme.CS_D:
        imm = (((bits >> 10) & 7) << 3) | (((bits >> 5) & 3) << 6)
        rs1 = rs1_prime
        if scheme == Scheme.CL_D:
            rd = rd_prime
        else:
            rs2 = rd_prime
    elif scheme == Scheme.CI_ADDI:
        rd, rs1, imm = full_rd, full_rd, imm6
    elif scheme == Scheme.CI_ADDIW:
        rd, rs1, imm = full_rd, full_rd, imm6
        if full_rd == 0:
            return illegal
    elif scheme == Scheme.CI_LI:
        rd, imm = full_rd, imm6
    elif scheme == Scheme.CI_ADDI16SP:
        rd, rs1 = np.int64(2), np.int64(2)
        imm = sign_extend(
            _bit(bits, 12, 9)
            | _bit(bits, 6, 4)
            | _bit(bits, 5, 6)
            | (((bits >> 3) & 3) << 7)
            | _bit(bits, 2, 5),
            10,
        )
        if imm == 0:
            return illegal
    elif scheme == Scheme.CI_LUI:
        rd, imm = full_rd, imm6 << 12
        if imm == 0:
            return illegal
    elif scheme == Scheme.CB_SHIFT:
        rd, rs1, imm = rs1_prime, rs1_prime, shamt
    elif scheme == Scheme.CB_ANDI:
        rd, rs1, imm = rs1_prime, rs1_prime, imm6
    elif scheme == Scheme.CA:
        rd, rs1, rs2 = rs1_prime, rs1_prime, rd_prime
    elif scheme == Scheme.CJ:
        imm = sign_extend(
            _bit(bits, 12, 11)
            | _bit(bits, 11, 4)
            | (((bits >> 9) & 3) << 8)
            | _bit(bits, 8, 10)
            | _bit(bits, 7, 6)
            | _bit(bits, 6, 7)
            | (((bits >> 3) & 7) << 1)
            | _bit(bits, 2, 5),
            12,
        )
    elif scheme == Scheme.CB_BRANCH:
        rs1 = rs1_prime
        imm = sign_extend(
            _bit(bits, 12, 8)
            | (((bits >> 10) & 3) << 3)
            | (((bits >> 5) & 3) << 6)
            | (((bits >> 3) & 3) << 1)
            | _bit(bits, 2, 5),
            9,
        )
    elif scheme == Scheme.CI_SLLI:
        rd, rs1, imm = full_rd, full_rd, shamt
    elif scheme == Scheme.CI_LWSP:
        rd, rs1 = full_rd, np.int64(2)
        imm = _bit(bits, 12, 5) | (((bits >> 4) & 7) << 2) | (((bits >> 2) & 3) << 6)
        if full_rd == 0:
            return illegal
    elif scheme == Scheme.CI_LDSP:
        rd, rs1 = full_rd, np.int64(2)
        imm = _bit(bits, 12, 5) | (((bits >> 5) & 3) << 3) | (((bits >> 2) & 7) << 6)
        if full_rd == 0:
            return illegal
    elif scheme == Scheme.CI_FLDSP:  # as c.ldsp, but f0 is a legal destination
        rd, rs1 = full_rd, np.int64(2)
        imm = _bit(bits, 12, 5) | (((bits >> 5) & 3) << 3) | (((bits >> 2) & 7) << 6)
    elif scheme == Scheme.CR_JR:
        rs1 = full_rd
        if full_rd == 0:
            return illegal
    elif scheme == Scheme.CR_MV:
        rd, rs2 = full_rd, full_rs2
    elif scheme == Scheme.CR_NONE:
        pass
    elif scheme == Scheme.CR_JALR:
        rd, rs1 = np.int64(1), full_rd
    elif scheme == Scheme.CR_ADD:
        rd, rs1, rs2 = full_rd, full_rd, full_rs2
    elif scheme == Scheme.CSS_W:
        rs1, rs2 = np.int64(2), full_rs2
        imm = (((bits >> 9) & 0xF) << 2) | (((bits >> 7) & 3) << 6)
    elif scheme == Scheme.CSS_D:
        rs1, rs2 = np.int64(2), full_rs2
        imm = (((bits >> 10) & 7) << 3) | (((bits >> 7) & 7) << 6)
    if rd == 0:
        rd = np.int64(X_SINK)
    return op, rd, rs1, rs2, imm


@nb.njit(cache=True)
def decode(bits, tables):
    """Decode one instruction; returns (op, rd, rs1, rs2, imm, length in bytes)."""
    if bits & 3 == 3:
        op, rd, rs1, rs2, imm = decode_base(bits & 0xFFFFFFFF, tables)
        return op, rd, rs1, rs2, imm, np.int64(4)
    op, rd, rs1, rs2, imm = decode_compressed(bits & 0xFFFF, tables)
    return op, rd, rs1, rs2, imm, np.int64(2)

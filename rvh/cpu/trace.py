"""Commit records written by the kernel when tracing (``rvh run --trace``).

One record per retired instruction or exception, TRACE_FIELDS int64 wide, in a flat buffer;
Python turns them into Spike-style commit-log lines (``rvh/trace.py``).  The kernel calls
``record`` only in its traced specialization, so an untraced run pays nothing.
"""

import numba as nb
import numpy as np

from rvh.cpu.layout import (
    DC_BITS,
    DC_IMM,
    DC_OP,
    DC_RS2,
    DC_SHIFT,
    TRACE_CSR,
    TRACE_CSR_VALUE,
    TRACE_POS,
    X_SINK,
    F,
)
from rvh.isa.instructions import Op

TRACE_FIELDS = 10
T_PC = 0
T_BITS = 1
T_MODE = 2  # priv | V << 2
T_RD = 3  # register written, -1 for none, or -2 - cause for an exception
T_VALUE = 4  # value written to rd; for an exception, the trap value
T_MEM_ADDR = 5
T_MEM_VALUE = 6
T_MEM_INFO = 7  # size | 16 if store, 0 if no memory access
T_CSR = 8  # CSR written by the instruction, or -1
T_CSR_VALUE = 9  # the CSR's value after the write

# T_RD of an interrupt record: INTERRUPT_RECORD - code (T_PC = the interrupted pc)
INTERRUPT_RECORD = -64

NO_RD = -1
# T_RD of an instruction that wrote f register n: F_TRACE_RD + n (T_VALUE is its value)
F_TRACE_RD = 64


@nb.njit(cache=True)
def _memory_info(op, rs1_value, imm, rs2_value):
    """(address, value, info) of the memory access an instruction made, for the log."""
    if op == Op.LB or op == Op.LBU:
        return rs1_value + imm, np.int64(0), np.int64(1)
    if op == Op.LH or op == Op.LHU:
        return rs1_value + imm, np.int64(0), np.int64(2)
    if op == Op.LW or op == Op.LWU:
        return rs1_value + imm, np.int64(0), np.int64(4)
    if op == Op.LD:
        return rs1_value + imm, np.int64(0), np.int64(8)
    if op == Op.SB:
        return rs1_value + imm, rs2_value & 0xFF, np.int64(1 | 16)
    if op == Op.SH:
        return rs1_value + imm, rs2_value & 0xFFFF, np.int64(2 | 16)
    if op == Op.SW:
        return rs1_value + imm, rs2_value & 0xFFFFFFFF, np.int64(4 | 16)
    if op == Op.SD:
        return rs1_value + imm, rs2_value, np.int64(8 | 16)
    if op == Op.FLW:
        return rs1_value + imm, np.int64(0), np.int64(4)
    if op == Op.FLD:
        return rs1_value + imm, np.int64(0), np.int64(8)
    if op == Op.FSW:
        return rs1_value + imm, rs2_value & 0xFFFFFFFF, np.int64(4 | 16)
    if op == Op.FSD:
        return rs1_value + imm, rs2_value, np.int64(8 | 16)
    if op >= Op.LR_W and op <= Op.AMOMAXU_D:
        size = 4 if op <= Op.AMOMAXU_W else 8
        if op == Op.LR_W or op == Op.LR_D:
            return rs1_value, np.int64(0), np.int64(size)
        value = rs2_value & 0xFFFFFFFF if size == 4 else rs2_value
        return rs1_value, value, np.int64(size | 16)
    return np.int64(0), np.int64(0), np.int64(0)


@nb.njit(cache=True)
def record(trace, state, mode, pc, slot, decode_cache, rs1_value, rd, value):
    """Append one record.  ``rd`` is the destination slot (X_SINK for none) or -2 - cause."""
    at = state[TRACE_POS] * TRACE_FIELDS
    if at + TRACE_FIELDS > trace.shape[0]:
        return
    base = slot << DC_SHIFT
    op = decode_cache[base + DC_OP]
    rs2 = decode_cache[base + DC_RS2]
    trace[at + T_PC] = pc
    trace[at + T_BITS] = decode_cache[base + DC_BITS]
    trace[at + T_MODE] = mode
    if rd == X_SINK:
        rd = NO_RD
    elif rd >= F_TRACE_RD:
        value = state[F + rd - F_TRACE_RD]
    trace[at + T_RD] = rd
    trace[at + T_VALUE] = value
    if rd >= NO_RD:
        if op == Op.FSW or op == Op.FSD:
            rs2_value = state[F + (rs2 & 31)]
        else:
            rs2_value = state[rs2]
        address, stored, info = _memory_info(op, rs1_value, decode_cache[base + DC_IMM], rs2_value)
    else:
        address, stored, info = np.int64(0), np.int64(0), np.int64(0)
    trace[at + T_MEM_ADDR] = address
    trace[at + T_MEM_VALUE] = stored
    trace[at + T_MEM_INFO] = info
    trace[at + T_CSR] = state[TRACE_CSR]
    trace[at + T_CSR_VALUE] = state[TRACE_CSR_VALUE]
    state[TRACE_CSR] = -1
    state[TRACE_POS] += 1


@nb.njit(cache=True)
def record_event(trace, state, mode, pc, bits, rd, value):
    """Append a record that is no retired instruction: an interrupt (rd = INTERRUPT_RECORD -
    code) or an exception found before the instruction was decoded (a fetch fault)."""
    at = state[TRACE_POS] * TRACE_FIELDS
    if at + TRACE_FIELDS > trace.shape[0]:
        return
    trace[at + T_PC] = pc
    trace[at + T_BITS] = bits
    trace[at + T_MODE] = mode
    trace[at + T_RD] = rd
    trace[at + T_VALUE] = value
    trace[at + T_MEM_ADDR] = 0
    trace[at + T_MEM_VALUE] = 0
    trace[at + T_MEM_INFO] = 0
    trace[at + T_CSR] = -1
    trace[at + T_CSR_VALUE] = 0
    state[TRACE_POS] += 1

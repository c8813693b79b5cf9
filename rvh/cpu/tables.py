"""Pack the ISA data tables (:mod:`rvh.isa`) into the one int64 array the kernel reads.

Passing the tables as an argument (instead of freezing them into the compiled code as globals)
keeps numba's on-disk cache honest: a changed table can never meet stale machine code.

Layout of ``tables``:
    header        [buckets offset, entries offset, CSR offset, op-match offset, 0...]
    buckets       BUCKETS x (first entry, entry count)
    entries       one row of ENTRY_FIELDS per encoding, grouped by bucket, most specific first
    csr table     4096 x CSR_COLUMNS (see :mod:`rvh.isa.csrs`)
    op match      one word per Op: the match bits of its base encoding (htinst transforms)

A 32-bit instruction's bucket is (opcode[6:2], funct3); a compressed one's is
256 + (quadrant, funct3).
"""

from __future__ import annotations

import numpy as np

from rvh.isa import csrs
from rvh.isa.instructions import BASE, COMPRESSED, Encoding, Format, Op, Scheme, op_of

HEADER = 8
T_BUCKETS = 0
T_ENTRIES = 1
T_CSRS = 2
T_OP_MATCH = 3  # offset of one row per Op: the match bits of its base encoding
BUCKETS = 256 + 32
ENTRY_MASK = 0
ENTRY_MATCH = 1
ENTRY_OP = 2
ENTRY_OPERANDS = 3  # Format (base) or Scheme (compressed)
ENTRY_FIELDS = 4


def _buckets_of(encoding: Encoding) -> list[int]:
    if encoding.length == 4:
        opcode = (encoding.match >> 2) & 0x1F
        if (encoding.mask >> 12) & 7 == 7:
            return [opcode << 3 | ((encoding.match >> 12) & 7)]
        return [opcode << 3 | f3 for f3 in range(8)]
    quadrant = encoding.match & 3
    return [256 + (quadrant << 3 | ((encoding.match >> 13) & 7))]


def build_tables() -> np.ndarray:
    grouped: list[list[Encoding]] = [[] for _ in range(BUCKETS)]
    for encoding in BASE + COMPRESSED:
        for bucket in _buckets_of(encoding):
            grouped[bucket].append(encoding)
    entries: list[tuple[int, int, int, int]] = []
    bucket_rows = []
    for encodings in grouped:
        encodings.sort(key=lambda e: -bin(e.mask).count("1"))
        bucket_rows.append((len(entries), len(encodings)))
        for e in encodings:
            if e.length == 4:
                op, operands = op_of(e.name), int(Format[e.operands])
            else:
                assert e.expands_to is not None
                op, operands = op_of(e.expands_to), int(Scheme[e.operands])
            entries.append((e.mask, e.match, op, operands))
    csr_table = csrs.csr_table_array()
    op_match = np.zeros(len(Op), dtype=np.int64)
    for encoding in BASE:
        op_match[op_of(encoding.name)] = encoding.match
    buckets_at = HEADER
    entries_at = buckets_at + 2 * BUCKETS
    csrs_at = entries_at + ENTRY_FIELDS * len(entries)
    op_match_at = csrs_at + csr_table.size
    tables = np.zeros(op_match_at + len(op_match), dtype=np.int64)
    tables[T_BUCKETS] = buckets_at
    tables[T_ENTRIES] = entries_at
    tables[T_CSRS] = csrs_at
    tables[T_OP_MATCH] = op_match_at
    tables[op_match_at:] = op_match
    tables[buckets_at:entries_at] = np.array(bucket_rows, dtype=np.int64).ravel()
    tables[entries_at:csrs_at] = np.array(entries, dtype=np.int64).ravel()
    tables[csrs_at:op_match_at] = csr_table.ravel()
    return tables

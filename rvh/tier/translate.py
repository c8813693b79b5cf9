"""Guest code to LLVM IR: what a region is, and the code it becomes.

A region is the code a hot pc leads to in its page, as a graph of nodes (straight-line runs of
instructions, each ending at a branch, a jump, or where another node starts): the loops through
the hot pc (every node from which it can be reached again) and the straight line after it,
past not-taken branches (``read_region``).  It takes only RV64I and M (compressed
instructions arrive decoded as their base forms) and only instructions already decoded, so it
never holds code that never ran; it stays in one page, so its one fetch translation is the
kernel's current one.  It depends on nothing but its instructions, the virtual pc it was read
at (pc-relative values) and its host offset: not on privilege or V, since its loads and stores
go through the current data context's TLB like the fast loop's.

One region is one function.  Guest registers live in SSA values across its nodes (the
registers it writes in stack slots, which LLVM's SROA turns into phis), an edge between two
of its nodes is a plain branch that checks the budget, and registers are written back only
where the region is left, with the next pc and the count of instructions retired.  Every exit
is precise: a load or store whose TLB entry misses (the slow tag also stands for
misalignment, MMIO and PMP), and a store to a flagged page (decoded code, the HTIF tohost
word), leave *before* the instruction, which the interpreter then does with full semantics.
A region therefore retires exactly the instructions the fast loop (rvh/cpu/fast.py) would,
with the same results.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from rvh.cpu.layout import (
    CSR_KEY_MASK,
    CSR_MSTATUS,
    CSR_READ_HOW,
    CSR_READ_INDEX_MASK,
    CSR_READ_KEYS,
    CSR_READ_SSTATUS,
    CSR_READ_VALID,
    CSR_WRITE_EVEN,
    CSR_WRITE_OK,
    DC_BITS,
    DC_FIELDS,
    DC_IMM,
    DC_LENGTH,
    DC_OP,
    DC_RD,
    DC_RS1,
    DC_RS2,
    DC_SHIFT,
    DC_TAG,
    DECODE_CACHE_MASK,
    FETCH_CTX,
    PAGE_FLAG_UNTRACKED,
    PAGE_FLAG_WATCH,
    PAGE_MASK,
    PAGE_SIZE,
    PC,
    PRIV,
    RESERVATION,
    RESERVATION_VALUE,
    TLB_ADDEND,
    TLB_ALL_CONTEXTS,
    TLB_EXEC_FLIP,
    TLB_PADDR,
    TLB_SET_MASK,
    TLB_SETS,
    TLB_SHIFT,
    TLB_TAG_EXEC,
    TLB_TAG_READ,
    TLB_TAG_WRITE,
    VIRT,
)
from rvh.isa import instructions
from rvh.isa.csrs import MSTATUS_XLEN64, SSTATUS_MASK, CsrNumber
from rvh.isa.fields import (
    MSTATUS_FS_MASK,
    MSTATUS_SD_MASK,
    MSTATUS_SIE_MASK,
    MSTATUS_VS_MASK,
    MSTATUS_XS_MASK,
)
from rvh.tier.layout import (
    BLOCK_CC,
    COUNT_MASK,
    J_COUNTS,
    J_TABLE,
    JT_ADDRESS,
    JT_HOST,
    JT_LENGTH,
    JT_PC,
    JT_SHIFT,
    TABLE_MASK,
)

# the enum is built from the instruction table at import, so mypy cannot see its members
Op: Any = instructions.Op

MAX_BLOCK = 64  # instructions of a node, and of the straight line a region follows
# instructions a region's search reads (it keeps fewer): with 256, bytes compiled its buffer
# filling code, which runs 1% of its instructions, as regions twice the size, in the batch the
# scanners' regions waited behind
MAX_REGION = 128
# a chaining exit (a branch, a jump, the region's end) with at most this many registers to
# write back does it itself; the others share the region's one exit, which writes back every
# register the region writes (a TLB miss's exit would otherwise copy its own, at every load
# and store).  recursion, whose regions are calls and returns: 0.140 -> 0.122 s from the cache
INLINE_EXIT = 6

# register-register and register-immediate ALU ops: (LLVM instruction, uses the immediate)
_ALU = {
    Op.ADDI: ("add", True),
    Op.XORI: ("xor", True),
    Op.ORI: ("or", True),
    Op.ANDI: ("and", True),
    Op.SLLI: ("shl", True),
    Op.SRLI: ("lshr", True),
    Op.SRAI: ("ashr", True),
    Op.ADD: ("add", False),
    Op.SUB: ("sub", False),
    Op.XOR: ("xor", False),
    Op.OR: ("or", False),
    Op.AND: ("and", False),
    Op.MUL: ("mul", False),
}
_SHIFTS = {Op.SLL: "shl", Op.SRL: "lshr", Op.SRA: "ashr"}
_COMPARES = {Op.SLTI: ("slt", True), Op.SLTIU: ("ult", True), Op.SLT: ("slt", False)}
_COMPARES[Op.SLTU] = ("ult", False)
_BRANCHES = {Op.BEQ: "eq", Op.BNE: "ne", Op.BLT: "slt", Op.BGE: "sge", Op.BLTU: "ult"}
_BRANCHES[Op.BGEU] = "uge"
# loads: (bytes, sign-extends); stores: bytes
_LOADS = {Op.LB: (1, True), Op.LH: (2, True), Op.LW: (4, True), Op.LD: (8, True)}
_LOADS.update({Op.LBU: (1, False), Op.LHU: (2, False), Op.LWU: (4, False)})
_STORES = {Op.SB: 1, Op.SH: 2, Op.SW: 4, Op.SD: 8}
_WORD = {
    Op.ADDIW: "add",
    Op.ADDW: "add",
    Op.SUBW: "sub",
    Op.MULW: "mul",
}
_WORD_SHIFTS = {Op.SLLIW: "shl", Op.SRLIW: "lshr", Op.SRAIW: "ashr"}
_WORD_SHIFTS.update({Op.SLLW: "shl", Op.SRLW: "lshr", Op.SRAW: "ashr"})
_HIGH = {Op.MULH: ("sext", "sext"), Op.MULHSU: ("sext", "zext"), Op.MULHU: ("zext", "zext")}
_DIVIDES = {Op.DIV, Op.DIVU, Op.REM, Op.REMU, Op.DIVW, Op.DIVUW, Op.REMW, Op.REMUW}
_OTHERS = {Op.LUI, Op.AUIPC, Op.JAL, Op.JALR, Op.FENCE, Op.FENCE_I}
# Zicsr: how the new value comes from the old one and the source
_CSRS = {Op.CSRRW: "write", Op.CSRRS: "set", Op.CSRRC: "clear"}
_CSRS.update({Op.CSRRWI: "write", Op.CSRRSI: "set", Op.CSRRCI: "clear"})
# the A extension: lr, sc and the AMOs (words: ops LR_W to AMOMAXU_W)
_ATOMICS = frozenset(range(int(Op.LR_W), int(Op.AMOMAXU_D) + 1))
_AMOS = {Op.AMOSWAP_W: "swap", Op.AMOADD_W: "add", Op.AMOXOR_W: "xor", Op.AMOAND_W: "and"}
_AMOS.update({Op.AMOOR_W: "or", Op.AMOMIN_W: "slt", Op.AMOMAX_W: "sgt", Op.AMOMINU_W: "ult"})
_AMOS.update({Op.AMOMAXU_W: "ugt", Op.AMOSWAP_D: "swap", Op.AMOADD_D: "add", Op.AMOXOR_D: "xor"})
_AMOS.update({Op.AMOAND_D: "and", Op.AMOOR_D: "or", Op.AMOMIN_D: "slt", Op.AMOMAX_D: "sgt"})
_AMOS.update({Op.AMOMINU_D: "ult", Op.AMOMAXU_D: "ugt"})
TRANSLATED_OPS = (
    frozenset(
        int(op)
        for group in (_ALU, _SHIFTS, _COMPARES, _BRANCHES, _LOADS, _STORES, _WORD, _WORD_SHIFTS)
        for op in group
    )
    | frozenset(int(op) for op in (*_HIGH, *_DIVIDES, *_OTHERS, *_CSRS))
    | _ATOMICS
)
# (the CSR enum, like Op, is built from a table at import: indexed by name for mypy)
_FLOAT_CSRS = (CsrNumber["FFLAGS"], CsrNumber["FRM"], CsrNumber["FCSR"])
_COUNTERS = (CsrNumber["CYCLE"], CsrNumber["HPMCOUNTER31"])  # first and last
SSTATUS = int(CsrNumber["SSTATUS"])
MSTATUS_XLEN_FIELDS = 0xF << 32  # UXL and SXL


def csr_in_blocks(number: int) -> bool:
    """Whether a block goes on past an access of CSR ``number``: not for the ones the kernel
    never caches as legal (csr.remember_csr_read), whose access would always leave the block:
    the FP CSRs (FS changes without a CSR write) and the counters (cycle, time, instret and the
    hpmcounters: their value depends on the instruction count, which a block does not know)."""
    return number not in _FLOAT_CSRS and not _COUNTERS[0] <= number <= _COUNTERS[1]


_BRANCH_OPS = frozenset(int(op) for op in _BRANCHES)
_JUMP_OPS = frozenset((int(Op.JAL), int(Op.JALR)))
# instructions without a destination register (rd holds immediate bits for them)
_NO_DESTINATION = _BRANCH_OPS | frozenset(int(op) for op in (*_STORES, Op.FENCE, Op.FENCE_I))


def _signed(value: int) -> int:
    value &= 2**64 - 1
    return value - 2**64 if value >> 63 else value


class Instruction(NamedTuple):
    """One decode-cache entry, as the region was read (a named tuple: a region's reading
    makes some 30 of them, a third of the time a frozen dataclass takes)."""

    op: int
    rd: int
    rs1: int
    rs2: int
    imm: int
    length: int
    bits: int

    def fields(self) -> tuple[int, int, int, int, int, int, int]:
        """Every field, in order: what names a region (engine.region_key) and what the code
        cache keeps of it (engine.shape), from which ``Instruction(*fields)`` is made again."""
        return (self.op, self.rd, self.rs1, self.rs2, self.imm, self.length, self.bits)


@dataclass(frozen=True)
class Node:
    """A straight line of a region's instructions from ``pc``: it ends at a branch or a jump
    (included), or before the instruction at ``end``."""

    pc: int
    instructions: tuple[Instruction, ...]

    def __hash__(self) -> int:
        # regions are dictionary keys (engine.BlockKey), looked up often: hash a node once
        return self._hash

    @functools.cached_property
    def _hash(self) -> int:
        return hash((self.pc, self.instructions))

    @functools.cached_property
    def end(self) -> int:
        return _signed(self.pc + sum(instruction.length for instruction in self.instructions))

    def targets(self) -> list[int]:
        """Where the node goes on, as far as its code says: a branch's target, then the pc
        after it; ``jal``'s target; nothing after ``jalr`` (its target is known only when it
        runs); else the pc after its end."""
        last = self.instructions[-1]
        at = _signed(self.end - last.length)
        if last.op in _BRANCH_OPS:
            return [_signed(at + last.imm), self.end]
        if last.op == Op.JAL:
            return [_signed(at + last.imm)]
        if last.op == Op.JALR:
            return []
        return [self.end]

    def writes(self) -> set[int]:
        """The register slots the node writes (X_SINK for x0)."""
        return {i.rd for i in self.instructions if i.op not in _NO_DESTINATION and i.rd != 0}


Region = tuple[Node, ...]  # the entry node first


# what each op is to the region reader (``read_region``) and ``straight_line_length``
_NOT_TRANSLATED, _PLAIN, _BRANCH, _JAL, _JALR, _CSR = range(6)
_OP_KINDS = np.zeros(max(int(op) for op in Op) + 1, dtype=np.int64)
_OP_KINDS[sorted(TRANSLATED_OPS)] = _PLAIN
_OP_KINDS[sorted(_BRANCH_OPS)] = _BRANCH
_OP_KINDS[int(Op.JAL)] = _JAL
_OP_KINDS[int(Op.JALR)] = _JALR
_OP_KINDS[sorted(int(op) for op in _CSRS)] = _CSR
# CSR numbers a region goes on past (``csr_in_blocks``); a decoded number outside the table
# is not a CSR's and goes on too
_CSR_GOES_ON = np.array([csr_in_blocks(number) for number in range(4096)], dtype=np.bool_)
_FIELDS = 7  # an instruction's in the reader's output: Instruction's, in order


def read_region(
    decode_cache: np.ndarray, host: int, pc: int, stops: frozenset[int] = frozenset()
) -> Region:
    """The region at pc (host offset ``host``), from the decode cache: empty when its first
    instruction cannot be translated.  The search follows the code from pc in its page, up
    to MAX_REGION instructions, and not into ``stops`` (where other regions start: they are
    left for, not copied); it keeps the nodes from which pc is reached again (its loops) and
    the straight line from pc past not-taken branches.  Where the search stopped, and at
    the nodes left out, the region has exits.  The search is numba's (``_read_region``):
    in Python it cost some 130 us a region on the hart's thread."""
    page = pc & PAGE_MASK
    stop_at = np.zeros(PAGE_SIZE // 2, dtype=np.bool_)
    for stop in stops:
        if stop & PAGE_MASK == page:
            stop_at[(stop - page) >> 1] = True
    starts, lengths, fields = _read_region(decode_cache, _OP_KINDS, _CSR_GOES_ON, host, pc, stop_at)
    rows = fields.tolist()
    region = []
    first = 0
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        instructions = tuple(Instruction(*row) for row in rows[first : first + length])
        region.append(Node(start, instructions))
        first += length
    return tuple(region)


@nb.njit(cache=True, nogil=True)
def _decoded(decode_cache, kinds, csr_goes_on, at_host):  # type: ignore[no-untyped-def]
    """The decode-cache entry's index of the translated instruction at host offset
    ``at_host``, or -1 (not decoded there, not translated, a CSR a region leaves before)."""
    base = ((at_host >> 1) & DECODE_CACHE_MASK) << DC_SHIFT
    if decode_cache[base + DC_TAG] != at_host:
        return -1
    op = decode_cache[base + DC_OP]
    if op < 0 or op >= kinds.size or kinds[op] == _NOT_TRANSLATED:
        return -1
    if kinds[op] == _CSR:
        number = decode_cache[base + DC_IMM]
        if 0 <= number < csr_goes_on.size and not csr_goes_on[number]:
            return -1
    return base


@nb.njit(cache=True, nogil=True)
def _read_region(decode_cache, kinds, csr_goes_on, host, pc, stop_at):  # type: ignore[no-untyped-def]
    """``read_region``'s search, over the page's 2,048 halfword places: its nodes' pcs, their
    lengths, and their instructions' fields, in order."""
    page = pc & PAGE_MASK
    addend = host - pc
    places = PAGE_SIZE // 2
    found = np.full(places, -1, dtype=np.int64)  # place -> decode-cache index
    found_count = 0
    is_leader = np.zeros(places, dtype=np.bool_)
    leaders = np.empty(places + 1, dtype=np.int64)  # where nodes start, in the order found
    leaders[0] = pc
    leader_count = 1
    is_leader[(pc - page) >> 1] = True
    queue = np.empty(places + 1, dtype=np.int64)
    queue[0] = pc
    head, tail = 0, 1
    while head < tail:
        at = queue[head]
        head += 1
        ran_out = True  # the search along this line stopped at its condition, not a break
        while (
            found[(at - page) >> 1] < 0
            and found_count < MAX_REGION
            and (at == pc or not stop_at[(at - page) >> 1])
        ):
            base = _decoded(decode_cache, kinds, csr_goes_on, at + addend)
            if base < 0:
                ran_out = False
                break
            found[(at - page) >> 1] = base
            found_count += 1
            kind = kinds[decode_cache[base + DC_OP]]
            following = at + decode_cache[base + DC_LENGTH]
            if kind == _BRANCH or kind == _JAL:
                for which in range(2 if kind == _BRANCH else 1):  # (jal: its target alone)
                    target = at + decode_cache[base + DC_IMM] if which == 0 else following
                    if target & PAGE_MASK == page and not is_leader[(target - page) >> 1]:
                        is_leader[(target - page) >> 1] = True
                        leaders[leader_count] = target
                        leader_count += 1
                        queue[tail] = target
                        tail += 1
                ran_out = False
                break
            if kind == _JALR:
                ran_out = False
                break
            at = following
            if at & PAGE_MASK != page:
                ran_out = False
                break
        if ran_out and found[(at - page) >> 1] >= 0 and not is_leader[(at - page) >> 1]:
            # straight-line code ran into code found before: a node starts there
            is_leader[(at - page) >> 1] = True
            leaders[leader_count] = at
            leader_count += 1

    # the nodes, in the order their starts were found
    node_start = np.empty(leader_count + places, dtype=np.int64)
    node_length = np.empty(leader_count + places, dtype=np.int64)
    node_of = np.full(places, -1, dtype=np.int64)  # place -> node
    nodes = 0
    index = 0
    while index < leader_count:
        start = leaders[index]
        index += 1
        if found[(start - page) >> 1] < 0:
            continue  # an exit
        at = start
        length = 0
        while True:
            base = found[(at - page) >> 1]
            length += 1
            kind = kinds[decode_cache[base + DC_OP]]
            at += decode_cache[base + DC_LENGTH]
            if kind == _BRANCH or kind == _JAL or kind == _JALR:
                break
            if at & PAGE_MASK != page or found[(at - page) >> 1] < 0:
                break
            if is_leader[(at - page) >> 1]:
                break
            if length == MAX_BLOCK:
                is_leader[(at - page) >> 1] = True
                leaders[leader_count] = at
                leader_count += 1
                break
        node_start[nodes] = start
        node_length[nodes] = length
        node_of[(start - page) >> 1] = nodes
        nodes += 1
    empty = np.empty(0, dtype=np.int64)
    if node_of[(pc - page) >> 1] < 0:
        return empty, empty, np.empty((0, _FIELDS), dtype=np.int64)

    # where each node goes on (its targets in the region's nodes): up to two
    successors = np.full((nodes, 2), -1, dtype=np.int64)
    ends_in_jump = np.zeros(nodes, dtype=np.bool_)
    node_end = np.empty(nodes, dtype=np.int64)
    for node in range(nodes):
        at = node_start[node]
        last = at
        for _ in range(node_length[node]):
            last = at
            at += decode_cache[found[(at - page) >> 1] + DC_LENGTH]
        node_end[node] = at
        base = found[(last - page) >> 1]
        kind = kinds[decode_cache[base + DC_OP]]
        ends_in_jump[node] = kind == _JAL or kind == _JALR
        target = last + decode_cache[base + DC_IMM]
        if kind == _BRANCH:
            targets = (target, at)
        elif kind == _JAL:
            targets = (target, target)
        elif kind == _JALR:
            continue
        else:
            targets = (at, at)
        for slot in range(2):
            goes = targets[slot]
            if goes & PAGE_MASK == page:
                successors[node, slot] = node_of[(goes - page) >> 1]

    # the nodes from which pc is reached again (its loops)...
    keep = np.zeros(nodes, dtype=np.bool_)
    keep[node_of[(pc - page) >> 1]] = True
    changed = True
    while changed:
        changed = False
        for node in range(nodes):
            if not keep[node]:
                for slot in range(2):
                    if successors[node, slot] >= 0 and keep[successors[node, slot]]:
                        keep[node] = True
                        changed = True
                        break
    # ... and the straight line from pc, past not-taken branches, up to a jump
    at = pc
    length = 0
    while at & PAGE_MASK == page and node_of[(at - page) >> 1] >= 0 and length < MAX_BLOCK:
        node = node_of[(at - page) >> 1]
        keep[node] = True
        length += node_length[node]
        if ends_in_jump[node]:
            break
        at = node_end[node]

    kept = 0
    total = 0
    for node in range(nodes):
        if keep[node]:
            kept += 1
            total += node_length[node]
    starts = np.empty(kept, dtype=np.int64)
    lengths = np.empty(kept, dtype=np.int64)
    fields = np.empty((total, _FIELDS), dtype=np.int64)
    kept = 0
    row = 0
    for node in range(nodes):
        if not keep[node]:
            continue
        starts[kept] = node_start[node]
        lengths[kept] = node_length[node]
        kept += 1
        at = node_start[node]
        for _ in range(node_length[node]):
            base = found[(at - page) >> 1]
            fields[row, 0] = decode_cache[base + DC_OP]
            fields[row, 1] = decode_cache[base + DC_RD] & 63
            fields[row, 2] = decode_cache[base + DC_RS1] & 31
            fields[row, 3] = decode_cache[base + DC_RS2] & 31
            fields[row, 4] = decode_cache[base + DC_IMM]
            fields[row, 5] = decode_cache[base + DC_LENGTH]
            fields[row, 6] = decode_cache[base + DC_BITS]
            row += 1
            at += decode_cache[base + DC_LENGTH]
    return starts, lengths, fields


def load_region_reader() -> None:
    """Have numba load the region reader's functions (or compile them, once): their first
    call costs milliseconds.  (On an empty page's worth of decode cache.)"""
    nothing = np.full(PAGE_SIZE // 2 * DC_FIELDS, -1, dtype=np.int64)
    read_region(nothing, 0, 0)
    straight_line_length(nothing, 0)


def continuation(region: Region) -> int | None:
    """The pc after the straight line the region follows from its first pc, if that line was
    cut at MAX_BLOCK instructions with its code going on in the same page, outside the
    region; else None."""
    nodes = {node.pc: node for node in region}
    at = region[0].pc
    length = 0
    while at in nodes and length < MAX_BLOCK:
        node = nodes[at]
        length += len(node.instructions)
        if node.instructions[-1].op in _JUMP_OPS:
            return None
        at = node.end
    if length < MAX_BLOCK or at in nodes or at & PAGE_MASK != region[0].pc & PAGE_MASK:
        return None
    return at


def straight_line_length(decode_cache: np.ndarray, host: int) -> int:
    """How many translated instructions run in a straight line from host offset ``host``,
    as far as the decode cache has them, up to MAX_BLOCK: an estimate of a region's size
    without reading it (a microsecond)."""
    return int(_line_length(decode_cache, _OP_KINDS, _CSR_GOES_ON, host, MAX_BLOCK))


@nb.njit(cache=True, nogil=True)
def _line_length(decode_cache, kinds, csr_goes_on, host, limit):  # type: ignore[no-untyped-def]
    page = host & PAGE_MASK
    count = 0
    while count < limit and host & PAGE_MASK == page:
        base = _decoded(decode_cache, kinds, csr_goes_on, host)
        if base < 0:
            break
        count += 1
        kind = kinds[decode_cache[base + DC_OP]]
        if kind == _BRANCH or kind == _JAL or kind == _JALR:
            break
        host += decode_cache[base + DC_LENGTH]
    return count


def decoded_check(host: int, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """What says a region's instructions are still decoded as they were read (``host``: the
    host offset of its first node's pc), as (indices into the decode cache, their values):
    the tag, op and bits of every instruction, so that the check is one numpy gather and
    compare (``fields_unchanged``)."""
    addend = host - region[0].pc
    indices: list[int] = []
    values: list[int] = []
    for node in region:
        at = node.pc + addend
        for instruction in node.instructions:
            base = ((at >> 1) & DECODE_CACHE_MASK) << DC_SHIFT
            indices += (base + DC_TAG, base + DC_OP, base + DC_BITS)
            values += (at, instruction.op, instruction.bits)
            at += instruction.length
    return np.array(indices, dtype=np.int64), np.array(values, dtype=np.int64)


def fields_unchanged(decode_cache: np.ndarray, check: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether the decode cache still holds what ``decoded_check`` recorded."""
    indices, values = check
    return bool(np.array_equal(decode_cache[indices], values))


class _Writer:
    """The IR of one region's function.  The registers the region writes live in stack slots
    (``%r<n>``) across its nodes, which LLVM's SROA turns into SSA values with phis; inside
    a node every register is an SSA value, read once.  Registers are written back to ``x``
    only where the region is left: small chaining exits do it themselves, the others go
    through one shared exit block (``leave``)."""

    def __init__(
        self, name: str, pc: int, host: int, count_entries: bool, written: set[int]
    ) -> None:
        self.page = pc & PAGE_MASK
        self.addend = host - pc  # host offset of a pc in this page
        self.counter = J_COUNTS + ((host >> 1) & COUNT_MASK) if count_entries else None
        self.written = written
        self.lines = [
            # the region's place, so that the text (which names its compiled code, see
            # engine.block_digest) differs for every place even where the code does not use it
            f"; region at pc {pc:#x}, host offset {host:#x}",
            f"define {BLOCK_CC} i64 @{name}(ptr noalias %x, ptr noalias %mem, ptr noalias %tlb, "
            "ptr noalias %flags, ptr noalias %dc, ptr noalias %jit, i64 %tlb_base, "
            "i64 %remaining, i64 %count) nounwind {",
            "entry:",
            *(f"  %r{register} = alloca i64, align 8" for register in sorted(written)),
            "  %retired = alloca i64, align 8",
            "  %next = alloca i64, align 8",
            "  %chains = alloca i1, align 1",
        ]
        self.exits: list[str] = []
        # exits that go through the shared one (``leave``), and whether any of them chains
        self.leaving = 0
        self.leaving_chains = False
        self.serial = 0
        self.values: dict[int, str] = {}  # register -> its current value in this node
        self.node_written: set[int] = set()
        self.dirty: set[int] = set()  # registers a path to this node may have written
        self.start_count = "%count"  # instructions retired before this node (an SSA value)
        self.count_entry()
        # the current TLB bank's first entry, once: a lookup then costs an add and a
        # register less (the loops of bytes' scanners are short of registers)
        bank = self.temp(f"shl i64 %tlb_base, {TLB_SHIFT}")
        self.lines.append(f"  %bank = getelementptr i64, ptr %tlb, i64 {bank}")
        for register in sorted(written):
            value = self.element("%x", register)
            self.lines.append(f"  store i64 {value}, ptr %r{register}, align 8")
        self.lines.append("  store i64 %count, ptr %retired, align 8")

    def count_entry(self) -> None:
        """Quick code counts its region's entries and loop iterations in the region's
        hotness counter (unused by the kernel while the region is installed): the engine
        recompiles hot ones optimized."""
        if self.counter is not None:
            entries = self.element("%jit", str(self.counter))
            self.store_element("%jit", str(self.counter), self.temp(f"add i64 {entries}, 1"))

    def temp(self, expression: str) -> str:
        self.serial += 1
        name = f"%t{self.serial}"
        self.lines.append(f"  {name} = {expression}")
        return name

    def label(self) -> str:
        self.serial += 1
        return f"l{self.serial}"

    def element(self, array: str, index: str | int) -> str:
        """``array[index]`` of one of the i64 arrays the block gets (x, tlb, jit, dc)."""
        slot = self.temp(f"getelementptr i64, ptr {array}, i64 {index}")
        return self.temp(f"load i64, ptr {slot}, align 8")

    def field(self, array: str, entry: str | int, offset: int) -> str:
        """A field of an array's entry: ``array[entry + offset]``."""
        return self.element(array, self.temp(f"add i64 {entry}, {offset}"))

    def store_element(self, array: str, index: str | int, value: str) -> None:
        slot = self.temp(f"getelementptr i64, ptr {array}, i64 {index}")
        self.lines.append(f"  store i64 {value}, ptr {slot}, align 8")

    def begin_node(self, label: str, dirty: set[int]) -> None:
        self.lines.append(f"{label}:")
        self.values = {}
        self.node_written = set()
        self.dirty = dirty
        self.exit_labels: dict[tuple[str, int, bool, int], str] = {}
        self.writes = 0  # of this node so far: an exit block is the same until the next
        self.start_count = self.temp("load i64, ptr %retired, align 8")

    def current(self, register: int) -> str:
        """A register's value here, read without keeping it (an exit does not dominate the
        rest of its node)."""
        if register in self.values:
            return self.values[register]
        return self.temp(f"load i64, ptr %r{register}, align 8")

    def read(self, register: int) -> str:
        if register == 0:
            return "0"
        if register not in self.values:
            if register in self.written:
                value = self.temp(f"load i64, ptr %r{register}, align 8")
            else:  # the region does not change it: x holds it throughout
                value = self.element("%x", register)
            self.values[register] = value
        return self.values[register]

    def write(self, register: int, value: str) -> None:
        if register == 0:
            return
        # x0 as a destination is decoded as the sink slot (layout.X_SINK): written back like
        # a register, so that the state matches the interpreter's slot for slot
        self.values[register] = value
        self.node_written.add(register)
        self.writes += 1

    def end_node(self) -> None:
        """Keep the registers this node wrote for the nodes after it and the exit."""
        for register in sorted(self.node_written):
            self.lines.append(f"  store i64 {self.values[register]}, ptr %r{register}, align 8")

    def exit_block(self, next_pc: str, retired: int, chain: bool = False) -> str:
        """A block that leaves the region for ``next_pc``, ``retired`` instructions into this
        node; its label.  It keeps what the node wrote and goes to the region's one exit
        (``leave``), which writes the registers back.  With ``chain`` (a branch, a jump, the
        end of the region), the exit then goes on to the function the jump table has at
        the next pc, if it is in this page and fits in ``%remaining``.  An exit made
        before with nothing written since is used again (a store's TLB miss and its store
        over code leave alike: a basic block less each, and code generation's cost is per
        block)."""
        same = (next_pc, retired, chain, self.writes)
        if same in self.exit_labels:
            return self.exit_labels[same]
        label = self.exit_labels[same] = self.label()
        body, self.lines = self.lines, [f"{label}:"]  # emitted after the body, in self.exits
        dirty = self.dirty | self.node_written
        if chain and len(dirty) <= INLINE_EXIT:
            # few registers to write back (straight-line code, calls and returns): here,
            # without the shared exit's copies of every register the region writes
            for register in sorted(dirty):
                self.store_element("%x", register, self.current(register))
            total = self.temp(f"add i64 {self.start_count}, {retired}")
            if chain:
                self._chain(total, next_pc)
            self.store_element("%x", PC, next_pc)
            self.lines.append(f"  ret i64 {total}")
            self.exits.append("\n".join(self.lines))
            self.lines = body
            return label
        self.end_node()
        self.leaving += 1
        self.leaving_chains |= chain
        total = self.temp(f"add i64 {self.start_count}, {retired}")
        self.lines += [
            f"  store i64 {total}, ptr %retired, align 8",
            f"  store i64 {next_pc}, ptr %next, align 8",
            f"  store i1 {'true' if chain else 'false'}, ptr %chains, align 1",
            "  br label %leave",
        ]
        self.exits.append("\n".join(self.lines))
        self.lines = body
        return label

    def leave(self) -> None:
        """The region's exit: every register it writes goes back to ``x`` (those a path did
        not write hold the value read at the entry), with the next pc; then the next
        region, or a return with the count of instructions retired.  One shared exit, not
        a write-back at each: loops leave rarely, and the code stays small.  Not there when
        no exit goes through it, and without the chain when none of those chains (code
        generation's cost is per basic block: most of Linux's regions are a few
        instructions, whose shared exit only their TLB misses take)."""
        if not self.leaving:
            return
        body, self.lines = self.lines, ["leave:"]
        for register in sorted(self.written):
            value = self.temp(f"load i64, ptr %r{register}, align 8")
            self.store_element("%x", register, value)
        total = self.temp("load i64, ptr %retired, align 8")
        next_pc = self.temp("load i64, ptr %next, align 8")
        self.store_element("%x", PC, next_pc)
        if self.leaving_chains:
            chains = self.temp("load i1, ptr %chains, align 1")
            chain, done = self.label(), self.label()
            self.lines += [f"  br i1 {chains}, label %{chain}, label %{done}", f"{chain}:"]
            self._chain(total, next_pc)
            self.lines += [f"  br label %{done}", f"{done}:"]
        self.lines.append(f"  ret i64 {total}")
        self.exits.append("\n".join(self.lines))
        self.lines = body

    def edge(self, pc: int, label: str, length: int, retired: int, counts: bool) -> str:
        """A block that goes on to the node at ``pc`` (its ``label``; ``length``: the most
        instructions that retire from there before the next check) if that fits in
        ``%remaining``, else leaves the region there; its label.  ``retired``: instructions
        of this node retired before the edge.  ``counts``: counted in quick code like an
        entry (a loop's iteration)."""
        start, go = self.label(), self.label()
        body, self.lines = self.lines, [f"{start}:"]
        total = self.temp(f"add i64 {self.start_count}, {retired}")
        need = self.temp(f"add i64 {total}, {length}")
        fits = self.temp(f"icmp sle i64 {need}, %remaining")
        stop = self.exit_block(str(pc), retired)
        self.lines += [f"  br i1 {fits}, label %{go}, label %{stop}", f"{go}:"]
        self.lines.append(f"  store i64 {total}, ptr %retired, align 8")
        if counts:
            self.count_entry()
        self.lines.append(f"  br label %{label}")
        self.exits.append("\n".join(self.lines))
        self.lines = body
        return start

    def jump(self, label: str, retired: int) -> str:
        """A block that goes on to the node at ``label`` (no budget check: not a loop's
        edge, see ``_Loops``); its label."""
        start = self.label()
        body, self.lines = self.lines, [f"{start}:"]
        total = self.temp(f"add i64 {self.start_count}, {retired}")
        self.lines.append(f"  store i64 {total}, ptr %retired, align 8")
        self.lines.append(f"  br label %{label}")
        self.exits.append("\n".join(self.lines))
        self.lines = body
        return start

    def _chain(self, total: str, next_pc: str) -> None:
        """Tail-call the function the jump table has at ``next_pc`` if it fits in
        ``%remaining``, else fall through.  In this page its host offset comes from the
        page's addend (the kernel checked the page's fetch translation); in another page
        (a call, a return) from that page's fetch translation in the TLB, as the fast loop
        finds it when it changes pages, or not at all (a page with breakpoints or execute
        triggers never has a fast execute tag there)."""
        if next_pc.lstrip("-").isdigit() and int(next_pc) & PAGE_MASK == self.page:
            # known here, in this page: its slot is a constant
            host = str(int(next_pc) + self.addend)
            slot = str(J_TABLE + ((((int(next_pc) + self.addend) >> 1) & TABLE_MASK) << JT_SHIFT))
            reachable = "true"
        else:
            page = self.temp(f"and i64 {next_pc}, {PAGE_MASK}")
            same_page = self.temp(f"icmp eq i64 {page}, {self.page}")
            own = self.temp(f"add i64 {next_pc}, {self.addend}")
            other, translated = self._fetch_translation(next_pc, page)
            host = self.temp(f"select i1 {same_page}, i64 {own}, i64 {other}")
            reachable = self.temp(f"or i1 {same_page}, {translated}")
            index = self.temp(f"lshr i64 {host}, 1")
            index = self.temp(f"and i64 {index}, {TABLE_MASK}")
            index = self.temp(f"shl i64 {index}, {JT_SHIFT}")
            slot = self.temp(f"add i64 {index}, {J_TABLE}")
        same_host = self.temp(f"icmp eq i64 {self.field('%jit', slot, JT_HOST)}, {host}")
        same_pc = self.temp(f"icmp eq i64 {self.field('%jit', slot, JT_PC)}, {next_pc}")
        need = self.temp(f"add i64 {total}, {self.field('%jit', slot, JT_LENGTH)}")
        fits = self.temp(f"icmp sle i64 {need}, %remaining")
        ok = self.temp(f"and i1 {same_host}, {same_pc}")
        ok = self.temp(f"and i1 {ok}, {fits}")
        ok = self.temp(f"and i1 {ok}, {reachable}")
        call, leave = self.label(), self.label()
        self.lines += [f"  br i1 {ok}, label %{call}, label %{leave}", f"{call}:"]
        function = self.temp(f"inttoptr i64 {self.field('%jit', slot, JT_ADDRESS)} to ptr")
        result = self.temp(
            f"musttail call {BLOCK_CC} i64 {function}(ptr %x, ptr %mem, ptr %tlb, "
            f"ptr %flags, ptr %dc, ptr %jit, i64 %tlb_base, i64 %remaining, i64 {total})"
        )
        self.lines += [f"  ret i64 {result}", f"{leave}:"]

    def _fetch_translation(self, pc: str, page: str) -> tuple[str, str]:
        """The host offset of ``pc`` by its page's fetch translation in the TLB (the
        current fetch context's bank, the set at TLB_EXEC_FLIP, the execute tag), and
        whether the TLB has it (the host offset is meaningless if not)."""
        context = self.element("%x", FETCH_CTX)
        context = self.temp(f"and i64 {context}, {TLB_ALL_CONTEXTS - 1}")
        first = self.temp(f"shl i64 {context}, {TLB_SETS.bit_length() - 1}")
        entry = self.temp(f"lshr i64 {pc}, 12")
        entry = self.temp(f"and i64 {entry}, {TLB_SET_MASK}")
        entry = self.temp(f"xor i64 {entry}, {TLB_EXEC_FLIP}")
        entry = self.temp(f"add i64 {first}, {entry}")
        entry = self.temp(f"shl i64 {entry}, {TLB_SHIFT}")
        translated = self.temp(f"icmp eq i64 {self.field('%tlb', entry, TLB_TAG_EXEC)}, {page}")
        host = self.temp(f"add i64 {pc}, {self.field('%tlb', entry, TLB_ADDEND)}")
        return host, translated

    def branch_out(self, condition: str, next_pc: str, retired: int, chain: bool = False) -> None:
        """Leave the region when ``condition`` holds, else go on in a new basic block."""
        out = self.exit_block(next_pc, retired, chain)
        stay = self.label()
        self.lines.append(f"  br i1 {condition}, label %{out}, label %{stay}")
        self.lines.append(f"{stay}:")

    def sext32(self, value: str) -> str:
        low = self.temp(f"trunc i64 {value} to i32")
        return self.temp(f"sext i32 {low} to i64")

    def host_address(self, address: str, size: int, tag_field: int, pc: int, done: int) -> str:
        """The inlined TLB lookup of the fast loop: the host offset, or leave before the
        instruction when the tag does not match."""
        return self.tlb_lookup(address, size, tag_field, pc, done)[0]

    def tlb_lookup(
        self, address: str, size: int, tag_field: int, pc: int, done: int
    ) -> tuple[str, str]:
        """``host_address``, and the TLB entry's index in the bank (for its other fields)."""
        page_set = self.temp(f"lshr i64 {address}, 12")
        page_set = self.temp(f"and i64 {page_set}, {TLB_SET_MASK}")
        entry = self.temp(f"shl i64 {page_set}, {TLB_SHIFT}")
        tag = self.field("%bank", entry, tag_field)
        key = self.temp(f"and i64 {address}, {PAGE_MASK | (size - 1)}")
        miss = self.temp(f"icmp ne i64 {tag}, {key}")
        self.branch_out(miss, str(pc), done)
        addend = self.field("%bank", entry, TLB_ADDEND)
        return self.temp(f"add i64 {address}, {addend}"), entry

    def check_flagged_store(self, host: str, size: int, pc: int, done: int) -> None:
        """Leave before a store the fast loop would not simply do: to the tohost page, to a
        PAGE_FLAG_UNTRACKED page, or over a decoded instruction (the interpreter drops it and
        moves M_CODE_WRITES).  A store to other bytes of a code page (data beside code) stays
        in the block.  Only the flag is tested here; the rest, rare, is the module's one
        ``STORE_OVER_CODE`` function (a fifth of a region's IR when it was inlined)."""
        page = self.temp(f"lshr i64 {host}, 12")
        flag_slot = self.temp(f"getelementptr i8, ptr %flags, i64 {page}")
        flag = self.temp(f"load i8, ptr {flag_slot}, align 1")
        flagged = self.temp(f"icmp ne i8 {flag}, 0")
        check, stay = self.label(), self.label()
        self.lines.append(f"  br i1 {flagged}, label %{check}, label %{stay}")
        self.lines.append(f"{check}:")
        # the decoded instructions invalidate_decoded would look at: starting at
        # (host - 2) & ~1, every 2 bytes below host + size
        slots = (size + 3) // 2 if size > 1 else 2
        hit = self.temp(f"call i1 @{STORE_OVER_CODE}(ptr %dc, i8 {flag}, i64 {host}, i64 {slots})")
        self.branch_out(hit, str(pc), done)
        self.lines.append(f"  br label %{stay}")
        self.lines.append(f"{stay}:")

    def text(self) -> str:
        return "\n".join([*self.lines, *self.exits, "}"])


@dataclass(frozen=True)
class _Loops:
    """Where a region checks its budget: its back edges (to a node on the depth-first path
    from the entry to the edge's source, so every loop has one) and, for each node, the
    most instructions that can retire from its start before the next check or an exit
    (``run``): the other edges form no cycle, so that is the longest path over them."""

    back: frozenset[tuple[int, int]]
    run: dict[int, int]


@functools.lru_cache(maxsize=4096)
def _loops(region: Region) -> _Loops:
    """(cached: a region's IR, its baseline code and its installation each ask)"""
    nodes = {node.pc: node for node in region}
    back: set[tuple[int, int]] = set()
    state: dict[int, int] = {}  # 1: on the depth-first path, 2: done
    stack = [(region[0].pc, iter(nodes[region[0].pc].targets()))]
    state[region[0].pc] = 1
    order: list[int] = []  # nodes as they are done: successors (but back edges) first
    while stack:
        start, targets = stack[-1]
        for target in targets:
            if target not in nodes:
                continue
            if state.get(target) == 1:
                back.add((start, target))
            elif target not in state:
                state[target] = 1
                stack.append((target, iter(nodes[target].targets())))
                break
        else:
            state[start] = 2
            order.append(start)
            stack.pop()
    run: dict[int, int] = {}
    for start in order:
        following = [
            run[target]
            for target in nodes[start].targets()
            if target in nodes and (start, target) not in back
        ]
        run[start] = len(nodes[start].instructions) + max(following, default=0)
    return _Loops(frozenset(back), run)


def entry_length(region: Region) -> int:
    """The most instructions a call of the region's function retires before it checks its
    budget (what the kernel, or a chain, checks before the call)."""
    return _loops(region).run[region[0].pc]


STORE_OVER_CODE = "rvh_store_over_code"
# What every module of regions holds once beside them (engine.compile_blocks; its text is part
# of every block's digest): whether a store to a flagged page must leave its region, given the
# page's flag, the store's host offset and how many 2-byte slots of the decode cache it
# covers: the page is the tohost page or has untracked code, or one of the slots holds a
# decoded instruction
SHARED_IR = f"""define internal i1 @{STORE_OVER_CODE}(ptr noalias %dc, i8 %flag, i64 %host, \
i64 %slots) cold noinline nounwind {{
entry:
  %watched = and i8 %flag, {PAGE_FLAG_WATCH | PAGE_FLAG_UNTRACKED}
  %any = icmp ne i8 %watched, 0
  %below = add i64 %host, -2
  %start = and i64 %below, -2
  br i1 %any, label %hit, label %scan
scan:
  %k = phi i64 [ 0, %entry ], [ %k.next, %miss ]
  %offset = shl i64 %k, 1
  %at = add i64 %start, %offset
  %half = lshr i64 %at, 1
  %set = and i64 %half, {DECODE_CACHE_MASK}
  %entry.index = shl i64 %set, {DC_SHIFT}
  %tag.index = add i64 %entry.index, {DC_TAG}
  %tag.slot = getelementptr i64, ptr %dc, i64 %tag.index
  %tag = load i64, ptr %tag.slot, align 8
  %same = icmp eq i64 %tag, %at
  br i1 %same, label %hit, label %miss
miss:
  %k.next = add i64 %k, 1
  %more = icmp ult i64 %k.next, %slots
  br i1 %more, label %scan, label %clear
hit:
  ret i1 true
clear:
  ret i1 false
}}
"""


def region_ir(name: str, pc: int, host: int, region: Region, count_entries: bool) -> str:
    """The LLVM IR of a region's function (see ``dispatch.call_block`` for its signature);
    ``count_entries``: it counts its entries and loop iterations in its hotness counter."""
    assert region and region[0].pc == pc, "a region starts at its pc"
    nodes = {node.pc: node for node in region}
    labels = {node.pc: f"n{index}" for index, node in enumerate(region)}
    written = set().union(*(node.writes() for node in region))
    loops = _loops(region)
    # the registers a path from the entry to each node may have written: an exit with few
    # writes them back itself (a forward data flow over the region's edges)
    dirty: dict[int, set[int]] = {node.pc: set() for node in region}
    changed = True
    while changed:
        changed = False
        for node in region:
            leaving = dirty[node.pc] | node.writes()
            for target in node.targets():
                if target in nodes and not leaving <= dirty[target]:
                    dirty[target] |= leaving
                    changed = True
    w = _Writer(name, pc, host, count_entries, written)
    w.lines.append(f"  br label %{labels[pc]}")
    for node in region:
        w.begin_node(labels[node.pc], dirty[node.pc])
        _node_ir(w, node, nodes, labels, loops, count_entries)
    w.leave()
    return w.text()


def _node_ir(
    w: _Writer,
    node: Node,
    nodes: dict[int, Node],
    labels: dict[int, str],
    loops: _Loops,
    count_entries: bool,
) -> None:
    """The IR of one node, ending in its edges to other nodes and its exits."""

    def go(target: int, retired: int) -> str:
        """The label that goes on to ``target``, ``retired`` instructions into the node:
        the node there (a back edge checks the budget first, and counts in quick code), or
        an exit that chains to the function the jump table has there."""
        if target not in nodes:
            return w.exit_block(str(target), retired, chain=True)
        if (node.pc, target) in loops.back:
            return w.edge(target, labels[target], loops.run[target], retired, count_entries)
        return w.jump(labels[target], retired)

    pc = node.pc
    done = 0
    for ins in node.instructions:
        op = Op(ins.op)
        next_pc = _signed(pc + ins.length)
        imm = ins.imm
        if op in _ALU:
            instruction, immediate = _ALU[op]
            operand = str(imm) if immediate else w.read(ins.rs2)
            w.write(ins.rd, w.temp(f"{instruction} i64 {w.read(ins.rs1)}, {operand}"))
        elif op in _SHIFTS:
            amount = w.temp(f"and i64 {w.read(ins.rs2)}, 63")
            w.write(ins.rd, w.temp(f"{_SHIFTS[op]} i64 {w.read(ins.rs1)}, {amount}"))
        elif op in _COMPARES:
            predicate, immediate = _COMPARES[op]
            operand = str(imm) if immediate else w.read(ins.rs2)
            flag = w.temp(f"icmp {predicate} i64 {w.read(ins.rs1)}, {operand}")
            w.write(ins.rd, w.temp(f"zext i1 {flag} to i64"))
        elif op in _WORD:
            operand = str(imm) if op == Op.ADDIW else w.read(ins.rs2)
            w.write(ins.rd, w.sext32(w.temp(f"{_WORD[op]} i64 {w.read(ins.rs1)}, {operand}")))
        elif op in _WORD_SHIFTS:
            if op in (Op.SLLIW, Op.SRLIW, Op.SRAIW):
                amount = str(imm & 31)
            else:
                amount = w.temp(f"and i32 {w.temp(f'trunc i64 {w.read(ins.rs2)} to i32')}, 31")
            low = w.temp(f"trunc i64 {w.read(ins.rs1)} to i32")
            shifted = w.temp(f"{_WORD_SHIFTS[op]} i32 {low}, {amount}")
            w.write(ins.rd, w.temp(f"sext i32 {shifted} to i64"))
        elif op in _HIGH:
            extend_a, extend_b = _HIGH[op]
            wide_a = w.temp(f"{extend_a} i64 {w.read(ins.rs1)} to i128")
            wide_b = w.temp(f"{extend_b} i64 {w.read(ins.rs2)} to i128")
            product = w.temp(f"mul i128 {wide_a}, {wide_b}")
            high = w.temp(f"lshr i128 {product}, 64")
            w.write(ins.rd, w.temp(f"trunc i128 {high} to i64"))
        elif op in _DIVIDES:
            w.write(ins.rd, _divide(w, op, w.read(ins.rs1), w.read(ins.rs2)))
        elif op == Op.LUI:
            w.write(ins.rd, str(imm))
        elif op == Op.AUIPC:
            w.write(ins.rd, str(_signed(pc + imm)))
        elif op in _LOADS:
            size, signed = _LOADS[op]
            address = w.temp(f"add i64 {w.read(ins.rs1)}, {imm}")
            where = w.host_address(address, size, TLB_TAG_READ, pc, done)
            pointer = w.temp(f"getelementptr i8, ptr %mem, i64 {where}")
            value = w.temp(f"load i{size * 8}, ptr {pointer}, align {size}")
            if size < 8:
                value = w.temp(f"{'sext' if signed else 'zext'} i{size * 8} {value} to i64")
            w.write(ins.rd, value)
        elif op in _STORES:
            size = _STORES[op]
            address = w.temp(f"add i64 {w.read(ins.rs1)}, {imm}")
            where = w.host_address(address, size, TLB_TAG_WRITE, pc, done)
            w.check_flagged_store(where, size, pc, done)
            value = w.read(ins.rs2)
            if size < 8:
                value = w.temp(f"trunc i64 {value} to i{size * 8}")
            pointer = w.temp(f"getelementptr i8, ptr %mem, i64 {where}")
            w.lines.append(f"  store i{size * 8} {value}, ptr {pointer}, align {size}")
        elif op in _BRANCHES:
            taken = w.temp(f"icmp {_BRANCHES[op]} i64 {w.read(ins.rs1)}, {w.read(ins.rs2)}")
            w.end_node()
            branch = go(_signed(pc + imm), done + 1)
            w.lines.append(f"  br i1 {taken}, label %{branch}, label %{go(next_pc, done + 1)}")
            return
        elif op == Op.JAL:
            w.write(ins.rd, str(next_pc))
            w.end_node()
            w.lines.append(f"  br label %{go(_signed(pc + imm), done + 1)}")
            return
        elif op == Op.JALR:
            target = w.temp(f"add i64 {w.read(ins.rs1)}, {imm}")
            target = w.temp(f"and i64 {target}, -2")
            w.write(ins.rd, str(next_pc))
            w.end_node()
            w.lines.append(f"  br label %{w.exit_block(target, done + 1, chain=True)}")
            return
        elif op == Op.FENCE or op == Op.FENCE_I:
            pass  # as in the fast loop: the decode cache (and so the tier) follows every store
        elif op in _CSRS:
            _csr(w, op, ins, pc, done)
        elif ins.op in _ATOMICS:
            _atomic(w, op, ins, pc, done)
        else:
            raise ValueError(f"{op.name} is not translated")
        done += 1
        pc = next_pc
    w.end_node()
    w.lines.append(f"  br label %{go(pc, done)}")


def _divide(w: _Writer, op: Op, a: str, b: str) -> str:
    """RISC-V division (M chapter): x/0 = -1, x%0 = x, MIN/-1 = MIN rem 0; LLVM's sdiv and
    udiv are undefined there, so the divisor is made safe first."""
    word = op in (Op.DIVW, Op.DIVUW, Op.REMW, Op.REMUW)
    signed = op in (Op.DIV, Op.REM, Op.DIVW, Op.REMW)
    remainder = op in (Op.REM, Op.REMU, Op.REMW, Op.REMUW)
    kind = "i32" if word else "i64"
    if word:
        a = w.temp(f"trunc i64 {a} to i32")
        b = w.temp(f"trunc i64 {b} to i32")
    minimum = -(2**31) if word else -(2**63)
    by_zero = w.temp(f"icmp eq {kind} {b}, 0")
    unsafe = by_zero
    overflow = "false"
    if signed:
        is_min = w.temp(f"icmp eq {kind} {a}, {minimum}")
        is_minus_one = w.temp(f"icmp eq {kind} {b}, -1")
        overflow = w.temp(f"and i1 {is_min}, {is_minus_one}")
        unsafe = w.temp(f"or i1 {by_zero}, {overflow}")
    divisor = w.temp(f"select i1 {unsafe}, {kind} 1, {kind} {b}")
    instruction = ("s" if signed else "u") + ("rem" if remainder else "div")
    result = w.temp(f"{instruction} {kind} {a}, {divisor}")
    if remainder:
        # x % 0 = x; MIN % -1 = 0
        result = w.temp(f"select i1 {overflow}, {kind} 0, {kind} {result}")
        result = w.temp(f"select i1 {by_zero}, {kind} {a}, {kind} {result}")
    else:
        # x / 0 = -1; MIN / -1 = MIN
        result = w.temp(f"select i1 {overflow}, {kind} {a}, {kind} {result}")
        result = w.temp(f"select i1 {by_zero}, {kind} -1, {kind} {result}")
    if word:
        result = w.temp(f"sext i32 {result} to i64")
    return result


@dataclass(frozen=True)
class CsrCheck:
    """What says an access of a CSR is legal where code runs (both code generators check it):
    the general path caches each legal access in the state at ``index`` (CSR_READ_KEYS,
    CSR_READ_HOW), and the key, under ``mask``, must equal (privilege << 12) | (V << 14) |
    ``wanted``.  ``lowest``: the least "how" the code handles (sstatus's view of mstatus is
    the one negative one)."""

    index: int
    wanted: int
    mask: int
    writes: bool
    lowest: int


def csr_check(op: int, rs1: int, number: int) -> CsrCheck:
    """The check for ``op`` (a Zicsr instruction, ``rs1`` its rs1 field) on CSR ``number``:
    it writes unless it sets or clears nothing (csrrs/csrrc with x0, their immediate forms
    with 0), as the general path decides."""
    writes = rs1 != 0 or op == Op.CSRRW or op == Op.CSRRWI
    return CsrCheck(
        index=(number ^ (number >> 4) ^ (number >> 8)) & CSR_READ_INDEX_MASK,
        wanted=number | CSR_READ_VALID | (CSR_WRITE_OK if writes else 0),
        mask=CSR_KEY_MASK | (CSR_WRITE_OK if writes else 0),
        writes=writes,
        lowest=CSR_READ_SSTATUS if number == SSTATUS else 0,
    )


def _csr(w: _Writer, op: Op, ins: Instruction, pc: int, done: int) -> None:
    """A CSR access as the fast loop does it: only where the general path found the access
    legal at this privilege and V since the last CSR write that could change that (the
    state's CSR_READ_KEYS; a write also needs CSR_WRITE_OK: a slot without side effects, or
    sstatus), else the block leaves before it.  An sstatus write stays in the block only
    when it changes nothing but clearing SIE (interrupts off, Linux's local_irq_save): one
    that enables interrupts (one may be pending, taken before the next instruction,
    3.1.6.1) or changes SUM, MXR or FS leaves for the fast loop, which knows the machine."""
    number = ins.imm
    check = csr_check(op, ins.rs1, number)
    index, writes = check.index, check.writes
    key = w.element("%x", CSR_READ_KEYS + index)
    checked = w.temp(f"and i64 {key}, {check.mask}")
    privilege = w.temp(f"shl i64 {w.element('%x', PRIV)}, 12")
    virtual = w.temp(f"shl i64 {w.element('%x', VIRT)}, 14")
    mode = w.temp(f"or i64 {privilege}, {virtual}")
    expected = w.temp(f"or i64 {mode}, {check.wanted}")
    miss = w.temp(f"icmp ne i64 {checked}, {expected}")
    how = w.element("%x", CSR_READ_HOW + index)
    # only sstatus (V=0) has the one negative "how" a block does (its view of mstatus); time's
    # is never cached for a CSR a block holds (csr_in_blocks), checked all the same
    below = w.temp(f"icmp slt i64 {how}, {check.lowest}")
    w.branch_out(w.temp(f"or i1 {miss}, {below}"), str(pc), done)
    if number == SSTATUS:
        view = w.temp(f"icmp eq i64 {how}, {CSR_READ_SSTATUS}")
        slot = w.temp(f"select i1 {view}, i64 {CSR_MSTATUS}, i64 {how}")
        raw = w.element("%x", slot)
        old = w.temp(f"select i1 {view}, i64 {w.temp(f'and i64 {raw}, {SSTATUS_MASK}')}, i64 {raw}")
    else:
        old = w.element("%x", how)
    if writes:
        source = str(ins.rs1) if op >= Op.CSRRWI else w.read(ins.rs1)  # uimm in the rs1 field
        how_value = _CSRS[op]
        if how_value == "write":
            value = source
        elif how_value == "set":
            value = w.temp(f"or i64 {old}, {source}")
        else:
            value = w.temp(f"and i64 {old}, {w.temp(f'xor i64 {source}, -1')}")
        if number == SSTATUS:
            # a write passes the key only at V=0 (with V=1 sstatus is vsstatus, no
            # CSR_WRITE_OK), so "how" is the view here
            changed = w.temp(f"xor i64 {value}, {old}")
            other = w.temp(f"and i64 {changed}, {~MSTATUS_SIE_MASK}")
            enables = w.temp(f"and i64 {changed}, {w.temp(f'and i64 {value}, {MSTATUS_SIE_MASK}')}")
            leave = w.temp(f"or i64 {other}, {enables}")
            leave = w.temp(f"icmp ne i64 {leave}, 0")
            leave = w.temp(f"or i1 {leave}, {w.temp('xor i1 ' + view + ', true')}")
            w.branch_out(leave, str(pc), done)
            # csr.status_write_value when only SIE changes: that bit of the value, then
            # UXL/SXL fixed at 64 bits and SD summarizing FS, VS and XS (3.1.6.6)
            mstatus = w.temp(f"and i64 {raw}, {~(MSTATUS_SIE_MASK | MSTATUS_XLEN_FIELDS)}")
            sie = w.temp(f"and i64 {value}, {MSTATUS_SIE_MASK}")
            mstatus = w.temp(f"or i64 {mstatus}, {sie}")
            mstatus = w.temp(f"or i64 {mstatus}, {MSTATUS_XLEN64}")
            dirty = "false"
            for field in (MSTATUS_FS_MASK, MSTATUS_XS_MASK, MSTATUS_VS_MASK):
                bits = w.temp(f"and i64 {mstatus}, {field}")
                dirty = w.temp(f"or i1 {dirty}, {w.temp(f'icmp eq i64 {bits}, {field}')}")
            mstatus = w.temp(f"and i64 {mstatus}, {~MSTATUS_SD_MASK}")
            sd = w.temp(f"select i1 {dirty}, i64 {MSTATUS_SD_MASK}, i64 0")
            w.store_element("%x", CSR_MSTATUS, w.temp(f"or i64 {mstatus}, {sd}"))
        else:
            # a slot without side effects (csr.plain_write_mask): the xepcs keep bit 0 zero
            even = w.temp(f"and i64 {key}, {CSR_WRITE_EVEN}")
            even = w.temp(f"icmp ne i64 {even}, 0")
            cleared = w.temp(f"and i64 {value}, -2")
            w.store_element("%x", how, w.temp(f"select i1 {even}, i64 {cleared}, i64 {value}"))
    w.write(ins.rd, old)


def _atomic(w: _Writer, op: Op, ins: Instruction, pc: int, done: int) -> None:
    """LR, SC or an AMO (A chapter) as the fast loop does them, on a RAM page whose TLB
    entry hits at the access's width (the tag's low bits refuse a misaligned address); else
    the block leaves before it.  LR reserves the physical address and remembers the value it
    read; SC stores if the reservation is at its address and memory there still holds that
    value (core.execute_atomic decides so too), then drops the reservation.  SC and the AMOs
    need write permission, which covers their read, and leave before writing over decoded
    code or to the tohost page, as stores do."""
    word = ins.op <= Op.AMOMAXU_W
    size = 4 if word else 8
    address = w.read(ins.rs1)
    loads = op == Op.LR_W or op == Op.LR_D
    where, entry = w.tlb_lookup(address, size, TLB_TAG_READ if loads else TLB_TAG_WRITE, pc, done)
    if not loads:
        w.check_flagged_store(where, size, pc, done)
    pointer = w.temp(f"getelementptr i8, ptr %mem, i64 {where}")
    current = w.temp(f"load i{size * 8}, ptr {pointer}, align {size}")
    if word:
        current = w.temp(f"sext i32 {current} to i64")  # LR.W and the .W AMOs sign-extend
    if loads or op == Op.SC_W or op == Op.SC_D:
        offset = w.temp(f"and i64 {address}, {~PAGE_MASK}")
        paddr = w.temp(f"or i64 {w.field('%bank', entry, TLB_PADDR)}, {offset}")
    if loads:
        w.store_element("%x", RESERVATION, paddr)
        w.store_element("%x", RESERVATION_VALUE, current)
        w.write(ins.rd, current)
        return
    operand = w.read(ins.rs2)
    if word:
        operand = w.sext32(operand)
    if op == Op.SC_W or op == Op.SC_D:
        reserved = w.element("%x", RESERVATION_VALUE)
        if word:
            reserved = w.sext32(reserved)
        same_place = w.temp(f"icmp eq i64 {w.element('%x', RESERVATION)}, {paddr}")
        same_value = w.temp(f"icmp eq i64 {current}, {reserved}")
        stores = w.temp(f"and i1 {same_place}, {same_value}")
        w.store_element("%x", RESERVATION, "-1")
        # a failed SC writes back what is there: the same bytes, as if it had not stored
        new = w.temp(f"select i1 {stores}, i64 {operand}, i64 {current}")
        result = w.temp(f"select i1 {stores}, i64 0, i64 1")
    else:
        how = _AMOS[op]
        if how == "swap":
            new = operand
        elif how in ("add", "xor", "and", "or"):
            new = w.temp(f"{how} i64 {current}, {operand}")
        else:
            # min/max: the signed or unsigned order of the sign-extended values is that of
            # the words themselves (zero-extended for the unsigned ones, A 8.4)
            keeps = w.temp(f"icmp {how} i64 {current}, {operand}")
            new = w.temp(f"select i1 {keeps}, i64 {current}, i64 {operand}")
        result = current
    if word:
        new = w.temp(f"trunc i64 {new} to i32")
    w.lines.append(f"  store i{size * 8} {new}, ptr {pointer}, align {size}")
    w.write(ins.rd, result)

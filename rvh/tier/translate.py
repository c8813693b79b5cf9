"""Guest blocks to LLVM IR: what a block is, and the code it becomes.

A block starts at a hot pc and follows the decode cache in program order through RV64I and M
(compressed instructions arrive decoded as their base forms), past not-taken branches (a taken
branch is a side exit), to the first jump (included), the first instruction it cannot run, the
end of the page or ``MAX_BLOCK`` instructions.  It stays in one page, so its one fetch
translation is the kernel's current one, and it depends on nothing but its instructions, the
virtual pc it was read at (pc-relative values) and its host offset: not on privilege or V, since
its loads and stores go through the current data context's TLB like the fast loop's.

Registers live in SSA values inside the block and are written back at each exit with the
next pc and the count of instructions retired.  Every exit is precise: a load or store whose
TLB entry misses (the slow tag also stands for misalignment, MMIO and PMP), and a store to a
flagged page (decoded code, the HTIF tohost word), leave *before* the instruction, which the
interpreter then does with full semantics.  A block therefore retires exactly the
instructions the fast loop (rvh/cpu/fast.py) would, with the same results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    DC_IMM,
    DC_LENGTH,
    DC_OP,
    DC_RD,
    DC_RS1,
    DC_RS2,
    DC_SHIFT,
    DC_TAG,
    DECODE_CACHE_MASK,
    PAGE_FLAG_WATCH,
    PAGE_MASK,
    PC,
    PRIV,
    RESERVATION,
    RESERVATION_VALUE,
    TLB_ADDEND,
    TLB_PADDR,
    TLB_SET_MASK,
    TLB_SHIFT,
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

MAX_BLOCK = 64

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


@dataclass(frozen=True)
class Instruction:
    """One decode-cache entry, as the block was read."""

    op: int
    rd: int
    rs1: int
    rs2: int
    imm: int
    length: int
    bits: int


def read_block(decode_cache: np.ndarray, host: int, pc: int) -> tuple[Instruction, ...]:
    """The instructions of the block at pc (host offset ``host``), from the decode cache;
    empty when the first one cannot be translated."""
    instructions: list[Instruction] = []
    page = pc & PAGE_MASK
    while len(instructions) < MAX_BLOCK and (pc & PAGE_MASK) == page:
        base = ((host >> 1) & DECODE_CACHE_MASK) << DC_SHIFT
        if int(decode_cache[base + DC_TAG]) != host:
            break  # not decoded yet (never run), or straddling a page
        op = int(decode_cache[base + DC_OP])
        if op not in TRANSLATED_OPS:
            break
        if op in _CSRS and not csr_in_blocks(int(decode_cache[base + DC_IMM])):
            break
        instruction = Instruction(
            op,
            int(decode_cache[base + DC_RD]) & 63,
            int(decode_cache[base + DC_RS1]) & 31,
            int(decode_cache[base + DC_RS2]) & 31,
            int(decode_cache[base + DC_IMM]),
            int(decode_cache[base + DC_LENGTH]),
            int(decode_cache[base + DC_BITS]),
        )
        instructions.append(instruction)
        if op == Op.JAL or op == Op.JALR:
            break
        pc += instruction.length
        host += instruction.length
    return tuple(instructions)


def still_decoded(
    decode_cache: np.ndarray, host: int, instructions: tuple[Instruction, ...]
) -> bool:
    """Whether the decode cache still holds each of the block's instructions as it was read
    (the block may since have grown: an instruction after it got decoded)."""
    for instruction in instructions:
        base = ((host >> 1) & DECODE_CACHE_MASK) << DC_SHIFT
        if (
            int(decode_cache[base + DC_TAG]) != host
            or int(decode_cache[base + DC_BITS]) != instruction.bits
            or int(decode_cache[base + DC_OP]) != instruction.op
        ):
            return False
        host += instruction.length
    return True


def _signed(value: int) -> int:
    value &= 2**64 - 1
    return value - 2**64 if value >> 63 else value


class _Writer:
    """The IR of one block function, register values kept as SSA names."""

    def __init__(self, name: str, pc: int, host: int, count_entries: bool) -> None:
        self.page = pc & PAGE_MASK
        self.addend = host - pc  # host offset of a pc in this page
        self.lines = [
            # the block's place, so that the text (which names its compiled code, see
            # engine.block_digest) differs for every place even where the code does not use it
            f"; block at pc {pc:#x}, host offset {host:#x}",
            f"define {BLOCK_CC} i64 @{name}(ptr noalias %x, ptr noalias %mem, ptr noalias %tlb, "
            "ptr noalias %flags, ptr noalias %dc, ptr noalias %jit, i64 %tlb_base, "
            "i64 %remaining, i64 %count) nounwind {",
            "entry:",
        ]
        self.exits: list[str] = []
        self.serial = 0
        self.values: dict[int, str] = {}  # register -> its current value
        self.dirty: set[int] = set()
        if count_entries:
            # the block's hotness counter, unused by the kernel while the block is installed,
            # counts its entries (chained ones too): the engine recompiles hot ones optimized
            counter = J_COUNTS + ((host >> 1) & COUNT_MASK)
            entries = self.element("%jit", str(counter))
            self.store_element("%jit", str(counter), self.temp(f"add i64 {entries}, 1"))

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

    def read(self, register: int) -> str:
        if register == 0:
            return "0"
        if register not in self.values:
            self.values[register] = self.element("%x", register)
        return self.values[register]

    def write(self, register: int, value: str) -> None:
        if register == 0:
            return
        # x0 as a destination is decoded as the sink slot (layout.X_SINK): written back like
        # a register, so that the state matches the interpreter's slot for slot
        self.values[register] = value
        self.dirty.add(register)

    def exit_block(self, next_pc: str, retired: int, chain: bool = False) -> str:
        """A block that writes back, then goes on to the next block or returns; its label.

        With ``chain`` (a branch, a jump, the end of the block) and a next pc in this page,
        it tail-calls the block the jump table has there, if that fits in ``%remaining``:
        the page's fetch translation, which the kernel checked, holds for it too."""
        label = self.label()
        body, self.lines = self.lines, [f"{label}:"]  # emitted after the body, in self.exits
        for register in sorted(self.dirty):
            self.store_element("%x", register, self.values[register])
        total = self.temp(f"add i64 %count, {retired}")
        if chain:
            self._chain(total, next_pc)
        self.store_element("%x", PC, next_pc)
        self.lines.append(f"  ret i64 {total}")
        self.exits.append("\n".join(self.lines))
        self.lines = body
        return label

    def _chain(self, total: str, next_pc: str) -> None:
        if next_pc.lstrip("-").isdigit():
            target = int(next_pc)
            if target & PAGE_MASK != self.page:
                return
            host = str(target + self.addend)
            slot = str(J_TABLE + (((target + self.addend) >> 1 & TABLE_MASK) << JT_SHIFT))
            same_page = "true"
        else:
            page = self.temp(f"and i64 {next_pc}, {PAGE_MASK}")
            same_page = self.temp(f"icmp eq i64 {page}, {self.page}")
            host = self.temp(f"add i64 {next_pc}, {self.addend}")
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
        ok = self.temp(f"and i1 {ok}, {same_page}")
        call, leave = self.label(), self.label()
        self.lines += [f"  br i1 {ok}, label %{call}, label %{leave}", f"{call}:"]
        function = self.temp(f"inttoptr i64 {self.field('%jit', slot, JT_ADDRESS)} to ptr")
        result = self.temp(
            f"musttail call {BLOCK_CC} i64 {function}(ptr %x, ptr %mem, ptr %tlb, "
            f"ptr %flags, ptr %dc, ptr %jit, i64 %tlb_base, i64 %remaining, i64 {total})"
        )
        self.lines += [f"  ret i64 {result}", f"{leave}:"]

    def branch_out(self, condition: str, next_pc: str, retired: int, chain: bool = False) -> None:
        """Leave the block when ``condition`` holds, else go on in a new basic block."""
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
        """``host_address``, and the TLB entry's index (for its other fields)."""
        page_set = self.temp(f"lshr i64 {address}, 12")
        page_set = self.temp(f"and i64 {page_set}, {TLB_SET_MASK}")
        entry = self.temp(f"add i64 {page_set}, %tlb_base")
        entry = self.temp(f"shl i64 {entry}, {TLB_SHIFT}")
        tag = self.field("%tlb", entry, tag_field)
        key = self.temp(f"and i64 {address}, {PAGE_MASK | (size - 1)}")
        miss = self.temp(f"icmp ne i64 {tag}, {key}")
        self.branch_out(miss, str(pc), done)
        addend = self.field("%tlb", entry, TLB_ADDEND)
        return self.temp(f"add i64 {address}, {addend}"), entry

    def check_flagged_store(self, host: str, size: int, pc: int, done: int) -> None:
        """Leave before a store the fast loop would not simply do: to the tohost page, or over
        a decoded instruction (the interpreter drops it and moves M_CODE_WRITES).  A store to
        other bytes of a code page (data beside code) stays in the block."""
        page = self.temp(f"lshr i64 {host}, 12")
        flag_slot = self.temp(f"getelementptr i8, ptr %flags, i64 {page}")
        flag = self.temp(f"load i8, ptr {flag_slot}, align 1")
        flagged = self.temp(f"icmp ne i8 {flag}, 0")
        check, stay = self.label(), self.label()
        self.lines.append(f"  br i1 {flagged}, label %{check}, label %{stay}")
        self.lines.append(f"{check}:")
        watched = self.temp(f"and i8 {flag}, {PAGE_FLAG_WATCH}")
        watched = self.temp(f"icmp ne i8 {watched}, 0")
        # the decoded instructions invalidate_decoded would look at: starting at
        # (host - 2) & ~1, every 2 bytes below host + size
        start = self.temp(f"add i64 {host}, -2")
        start = self.temp(f"and i64 {start}, -2")
        hit = watched
        for k in range((size + 3) // 2 if size > 1 else 2):
            at = self.temp(f"add i64 {start}, {2 * k}")
            entry = self.temp(f"lshr i64 {at}, 1")
            entry = self.temp(f"and i64 {entry}, {DECODE_CACHE_MASK}")
            entry = self.temp(f"shl i64 {entry}, {DC_SHIFT}")
            tag = self.field("%dc", entry, DC_TAG)
            same = self.temp(f"icmp eq i64 {tag}, {at}")
            hit = self.temp(f"or i1 {hit}, {same}")
        self.branch_out(hit, str(pc), done)
        self.lines.append(f"  br label %{stay}")
        self.lines.append(f"{stay}:")

    def text(self) -> str:
        return "\n".join([*self.lines, *self.exits, "}"])


def block_ir(
    name: str, pc: int, host: int, instructions: tuple[Instruction, ...], count_entries: bool
) -> str:
    """The LLVM IR of a block function (see ``dispatch.call_block`` for its signature);
    ``count_entries``: it counts its entries in its hotness counter."""
    w = _Writer(name, pc, host, count_entries)
    done = 0
    for ins in instructions:
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
            w.branch_out(taken, str(_signed(pc + imm)), done + 1, chain=True)
        elif op == Op.JAL:
            w.write(ins.rd, str(next_pc))
            jump = w.exit_block(str(_signed(pc + imm)), done + 1, chain=True)
            w.lines.append(f"  br label %{jump}")
            return w.text()
        elif op == Op.JALR:
            target = w.temp(f"add i64 {w.read(ins.rs1)}, {imm}")
            target = w.temp(f"and i64 {target}, -2")
            w.write(ins.rd, str(next_pc))
            w.lines.append(f"  br label %{w.exit_block(target, done + 1, chain=True)}")
            return w.text()
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
    w.lines.append(f"  br label %{w.exit_block(str(pc), done, chain=True)}")
    return w.text()


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


def _csr(w: _Writer, op: Op, ins: Instruction, pc: int, done: int) -> None:
    """A CSR access as the fast loop does it: only where the general path found the access
    legal at this privilege and V since the last CSR write that could change that (the
    state's CSR_READ_KEYS; a write also needs CSR_WRITE_OK: a slot without side effects, or
    sstatus), else the block leaves before it.  An sstatus write stays in the block only
    when it changes nothing but clearing SIE (interrupts off, Linux's local_irq_save): one
    that enables interrupts (one may be pending, taken before the next instruction,
    3.1.6.1) or changes SUM, MXR or FS leaves for the fast loop, which knows the machine."""
    number = ins.imm
    index = (number ^ (number >> 4) ^ (number >> 8)) & CSR_READ_INDEX_MASK
    writes = ins.rs1 != 0 or op == Op.CSRRW or op == Op.CSRRWI
    wanted = number | CSR_READ_VALID | (CSR_WRITE_OK if writes else 0)
    key = w.element("%x", CSR_READ_KEYS + index)
    checked = w.temp(f"and i64 {key}, {CSR_KEY_MASK | (CSR_WRITE_OK if writes else 0)}")
    privilege = w.temp(f"shl i64 {w.element('%x', PRIV)}, 12")
    virtual = w.temp(f"shl i64 {w.element('%x', VIRT)}, 14")
    mode = w.temp(f"or i64 {privilege}, {virtual}")
    expected = w.temp(f"or i64 {mode}, {wanted}")
    miss = w.temp(f"icmp ne i64 {checked}, {expected}")
    how = w.element("%x", CSR_READ_HOW + index)
    # only sstatus (V=0) has the one negative "how" a block does (its view of mstatus); time's
    # is never cached for a CSR a block holds (csr_in_blocks), checked all the same
    lowest = CSR_READ_SSTATUS if number == SSTATUS else 0
    w.branch_out(w.temp(f"or i1 {miss}, {w.temp(f'icmp slt i64 {how}, {lowest}')}"), str(pc), done)
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
        paddr = w.temp(f"or i64 {w.field('%tlb', entry, TLB_PADDR)}, {offset}")
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

"""The baseline compiler: a region's first code, x86-64 machine code written directly from
its instructions in a fraction of a millisecond, where LLVM takes several.

A region (rvh/tier/translate.py) gets baseline code when it would have been queued for LLVM,
and quick LLVM code only once the baseline code counted ``promote_after`` entries
(rvh/tier/engine.py):
on Linux's first boot most of the instructions the interpreter ran were code waiting for the
LLVM worker, which on two cores had more regions queued than it could compile.

Guest registers live in ``x``: every instruction writes its destination back at once, so an
exit anywhere is just the next pc and the count (an instruction takes a source from a host
register only when the instruction before it left the value there).  It follows the blocks'
calling convention (layout.BLOCK_CC, LLVM's ``preserve_none``: the nine arguments in r12,
r13, r14, r15, rdi, rsi, rdx, rcx, r8, no callee-saved register but rsp and rbp), so that
quick and optimized code chain into it and it into them through the jump table, exactly as
they chain among themselves.  It retires exactly
what the LLVM code of the same region would: the same nodes, the same budget checks (at the
region's entry, by the caller, and on back edges), the same precise exits before a load or
store whose TLB entry misses.  It is more cautious in two places, each an exit before the
instruction for the interpreter to do: a store to any flagged page (LLVM's code asks whether
a decoded instruction is under it), and ``mulhsu``, the one instruction it does not write.
"""

from __future__ import annotations

import ctypes
import functools
import mmap
import platform
import struct
import sys

from rvh.cpu.layout import (
    CSR_MSTATUS,
    CSR_READ_HOW,
    CSR_READ_KEYS,
    CSR_READ_SSTATUS,
    CSR_WRITE_EVEN,
    FETCH_CTX,
    PAGE_MASK,
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
from rvh.isa.csrs import MSTATUS_XLEN64, SSTATUS_MASK
from rvh.isa.fields import (
    MSTATUS_FS_MASK,
    MSTATUS_SD_MASK,
    MSTATUS_SIE_MASK,
    MSTATUS_VS_MASK,
    MSTATUS_XS_MASK,
)
from rvh.tier.layout import (
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
from rvh.tier.translate import (
    _BRANCH_OPS,
    _CSRS,
    _DIVIDES,
    _LOADS,
    _STORES,
    MSTATUS_XLEN_FIELDS,
    SSTATUS,
    Node,
    Op,
    Region,
    _loops,
    _signed,
    csr_check,
)

RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI = range(8)
R8, R9, R10, R11, R12, R13, R14, R15 = range(8, 16)
# the block functions' arguments (layout.BLOCK_CC on x86-64), and the TLB bank worked out once
X, MEM, TLB, FLAGS, DC, JIT, TLB_BASE, REMAINING, COUNT = R12, R13, R14, R15, RDI, RSI, RDX, RCX, R8
BANK = RBX

# condition codes (the low nibble of jcc and setcc)
CC_B, CC_AE, CC_E, CC_NE, CC_L, CC_GE, CC_LE, CC_G = 0x2, 0x3, 0x4, 0x5, 0xC, 0xD, 0xE, 0xF
_BRANCH_CC = {Op.BEQ: CC_E, Op.BNE: CC_NE, Op.BLT: CC_L, Op.BGE: CC_GE, Op.BLTU: CC_B}
_BRANCH_CC[Op.BGEU] = CC_AE
# two-operand ALU instructions: (opcode of "op r/m, r", /digit of "op r/m, imm32")
_ADD, _OR, _AND, _SUB, _XOR, _CMP = (0x01, 0), (0x09, 1), (0x21, 4), (0x29, 5), (0x31, 6), (0x39, 7)
_ALU_RR = {Op.ADD: _ADD, Op.SUB: _SUB, Op.XOR: _XOR, Op.OR: _OR, Op.AND: _AND}
_ALU_RI = {Op.ADDI: _ADD, Op.XORI: _XOR, Op.ORI: _OR, Op.ANDI: _AND}
# shifts: the /digit of C1 (by an immediate) and D3 (by cl)
_SHL, _SHR, _SAR = 4, 5, 7
_SHIFT_I = {Op.SLLI: _SHL, Op.SRLI: _SHR, Op.SRAI: _SAR}
_SHIFT_R = {Op.SLL: _SHL, Op.SRL: _SHR, Op.SRA: _SAR}
_WORD_SHIFT_I = {Op.SLLIW: _SHL, Op.SRLIW: _SHR, Op.SRAIW: _SAR}
_WORD_SHIFT_R = {Op.SLLW: _SHL, Op.SRLW: _SHR, Op.SRAW: _SAR}
_COMPARE = {Op.SLT: CC_L, Op.SLTU: CC_B, Op.SLTI: CC_L, Op.SLTIU: CC_B}
_AMO_ALU = {Op.AMOADD_W: _ADD, Op.AMOXOR_W: _XOR, Op.AMOAND_W: _AND, Op.AMOOR_W: _OR}
_AMO_ALU.update({Op.AMOADD_D: _ADD, Op.AMOXOR_D: _XOR, Op.AMOAND_D: _AND, Op.AMOOR_D: _OR})
# min and max: the condition, on (old value - operand), under which the old value is kept
_AMO_MIN_MAX = {Op.AMOMIN_W: CC_L, Op.AMOMAX_W: CC_G, Op.AMOMINU_W: CC_B, Op.AMOMAXU_W: 0x7}
_AMO_MIN_MAX.update({Op.AMOMIN_D: CC_L, Op.AMOMAX_D: CC_G, Op.AMOMINU_D: CC_B})
_AMO_MIN_MAX[Op.AMOMAXU_D] = 0x7  # above
# loads: the opcode bytes reading ``size`` bytes into a 64-bit register, and whether REX.W
_LOAD_OPCODES = {
    Op.LB: (b"\x0f\xbe", True),  # movsx r64, byte
    Op.LBU: (b"\x0f\xb6", False),  # movzx r32, byte (zero-extends to 64)
    Op.LH: (b"\x0f\xbf", True),
    Op.LHU: (b"\x0f\xb7", False),
    Op.LW: (b"\x63", True),  # movsxd
    Op.LWU: (b"\x8b", False),  # mov r32 (zero-extends)
    Op.LD: (b"\x8b", True),
}

ARENA_BYTES = 4 << 20  # executable memory is mapped in pieces of this size
DEFAULT_ARENA_LIMIT = 64 << 20  # baseline code a tier writes before it writes no more


def available() -> bool:
    """Whether this host runs baseline code: x86-64, little-endian (the encodings below)."""
    return platform.machine().lower() in ("x86_64", "amd64") and sys.byteorder == "little"


def _fits32(value: int) -> bool:
    return -(2**31) <= value < 2**31


def _rex(w: bool, reg: int, index: int, base: int, byte_register: bool = False) -> bytes:
    rex = 0x40 | (w << 3) | ((reg >> 3) << 2) | ((index >> 3) << 1) | (base >> 3)
    return bytes((rex,)) if rex != 0x40 or byte_register else b""


# an encoding is a pure function of its operands, and a region writes the same few (a guest
# register's slot in x) over and over: each is worked out once per process
@functools.cache
def _memory_form(opcode: bytes, reg: int, base: int, disp: int, index: int, w: bool) -> bytes:
    code = bytearray(_rex(w, reg, max(index, 0), base, opcode == b"\x88" and reg >= RSP))
    code += opcode
    if disp == 0 and base & 7 != RBP:
        mod, tail = 0, b""
    elif -128 <= disp < 128:
        mod, tail = 1, struct.pack("<b", disp)
    else:
        mod, tail = 2, struct.pack("<i", disp)
    if index < 0:
        if base & 7 == RSP:  # r12 as a base needs a SIB byte
            code += bytes(((mod << 6) | ((reg & 7) << 3) | 4, 0x24))
        else:
            code.append((mod << 6) | ((reg & 7) << 3) | (base & 7))
    else:
        code += bytes(((mod << 6) | ((reg & 7) << 3) | 4, ((index & 7) << 3) | (base & 7)))
    return bytes(code + tail)


@functools.cache
def _register_form(opcode: bytes, reg: int, rm: int, w: bool) -> bytes:
    return _rex(w, reg, 0, rm) + opcode + bytes((0xC0 | ((reg & 7) << 3) | (rm & 7),))


def _move_immediate_form(dst: int, value: int) -> bytes:
    """``mov dst, value`` in its shortest form: sign-extended imm32, zero-extended imm32 or
    imm64."""
    value = _signed(value)
    if _fits32(value):
        return _register_form(b"\xc7", 0, dst, True) + struct.pack("<i", value)
    if 0 <= value < 2**32:
        return _rex(False, 0, 0, dst) + bytes((0xB8 | (dst & 7),)) + struct.pack("<I", value)
    return _rex(True, 0, 0, dst) + bytes((0xB8 | (dst & 7),)) + struct.pack("<q", value)


class Assembler:
    """x86-64 instructions into a byte buffer, with labels and 32-bit relative jumps."""

    def __init__(self) -> None:
        self.code = bytearray()
        self.labels: dict[object, int] = {}
        self.fixups: list[tuple[int, object]] = []  # (where a rel32 is, its label)

    # ---- encoding ------------------------------------------------------------------------
    def _memory(
        self, opcode: bytes, reg: int, base: int, disp: int, index: int = -1, w: bool = True
    ) -> None:
        """``opcode`` with a ModRM for [base + index + disp] (index -1: none)."""
        self.code += _memory_form(opcode, reg, base, disp, index, w)

    def _registers(self, opcode: bytes, reg: int, rm: int, w: bool = True) -> None:
        self.code += _register_form(opcode, reg, rm, w)

    def _rex(self, w: bool, reg: int, index: int, base: int, byte_register: bool = False) -> None:
        self.code += _rex(w, reg, index, base, byte_register)

    # ---- instructions --------------------------------------------------------------------
    def load(self, dst: int, base: int, disp: int, index: int = -1) -> None:
        self._memory(b"\x8b", dst, base, disp, index)

    def store(self, src: int, base: int, disp: int, index: int = -1) -> None:
        self._memory(b"\x89", src, base, disp, index)

    def load_sized(self, op: int, dst: int, base: int, index: int) -> None:
        opcode, w = _LOAD_OPCODES[op]
        self._memory(opcode, dst, base, 0, index, w)

    def store_sized(self, size: int, src: int, base: int, index: int) -> None:
        if size == 2:
            self.code.append(0x66)
        self._memory(b"\x88" if size == 1 else b"\x89", src, base, 0, index, w=size == 8)

    def move(self, dst: int, src: int) -> None:
        self._registers(b"\x89", src, dst)

    def move_immediate(self, dst: int, value: int) -> None:
        self.code += _move_immediate_form(dst, value)

    def alu(self, kind: tuple[int, int], dst: int, src: int, w: bool = True) -> None:
        """``op dst, src``."""
        self._registers(bytes((kind[0],)), src, dst, w)

    def alu_memory(self, kind: tuple[int, int], dst: int, base: int, disp: int) -> None:
        """``op dst, [base + disp]`` (the "r, r/m" form is the opcode + 2)."""
        self._memory(bytes((kind[0] + 2,)), dst, base, disp)

    def alu_immediate(self, kind: tuple[int, int], dst: int, value: int, w: bool = True) -> None:
        assert _fits32(value)
        if -128 <= value < 128:
            self._registers(b"\x83", kind[1], dst, w)
            self.code += struct.pack("<b", value)
        else:
            self._registers(b"\x81", kind[1], dst, w)
            self.code += struct.pack("<i", value)

    def compare_memory_byte(self, base: int, index: int) -> None:
        """``cmp byte [base + index], 0``."""
        self._memory(b"\x80", 7, base, 0, index, w=False)
        self.code.append(0)

    def shift(self, digit: int, dst: int, amount: int, w: bool = True) -> None:
        self._registers(b"\xc1", digit, dst, w)
        self.code.append(amount)

    def shift_by_cl(self, digit: int, dst: int, w: bool = True) -> None:
        self._registers(b"\xd3", digit, dst, w)

    def multiply(self, dst: int, src: int, w: bool = True) -> None:
        self._registers(b"\x0f\xaf", dst, src, w)

    def multiply_wide(self, src: int, signed: bool) -> None:
        """rdx:rax = rax * src."""
        self._registers(b"\xf7", 5 if signed else 4, src)

    def sign_extend_word(self, dst: int, src: int) -> None:
        self._registers(b"\x63", dst, src)

    def set_flag(self, cc: int, dst: int) -> None:
        """dst = the condition, 0 or 1 (setcc, then movzx)."""
        self._rex(False, 0, 0, dst, byte_register=dst >= RSP)
        self.code += bytes((0x0F, 0x90 | cc, 0xC0 | (dst & 7)))
        self._registers(b"\x0f\xb6", dst, dst, w=False)

    def test_immediate(self, dst: int, value: int) -> None:
        """``test dst, imm32`` (sign-extended): the flags of dst & value."""
        assert _fits32(value)
        self._registers(b"\xf7", 0, dst)
        self.code += struct.pack("<i", value)

    def test(self, dst: int, src: int, w: bool = True) -> None:
        self._registers(b"\x85", src, dst, w)

    def divide(self, src: int, signed: bool, w: bool = True) -> None:
        """rax, rdx = rdx:rax / src, rdx:rax % src, with rdx set up first (cqo or zero)."""
        if signed:
            self.code += b"\x48\x99" if w else b"\x99"  # cqo / cdq
        else:
            self.alu(_XOR, RDX, RDX, w=False)
        self._registers(b"\xf7", 7 if signed else 6, src, w)

    def lea(self, dst: int, base: int, disp: int) -> None:
        self._memory(b"\x8d", dst, base, disp)

    def increment(self, base: int, disp: int) -> None:
        self._memory(b"\xff", 0, base, disp)

    def jump_indirect(self, base: int, disp: int) -> None:
        self._memory(b"\xff", 4, base, disp, w=False)

    def ret(self) -> None:
        self.code.append(0xC3)

    def jump(self, label: object) -> None:
        self.code.append(0xE9)
        self._fixup(label)

    def jump_if(self, cc: int, label: object) -> None:
        self.code += bytes((0x0F, 0x80 | cc))
        self._fixup(label)

    def _fixup(self, label: object) -> None:
        self.fixups.append((len(self.code), label))
        self.code += b"\0\0\0\0"

    def bind(self, label: object) -> None:
        self.labels[label] = len(self.code)

    def finish(self) -> bytes:
        for at, label in self.fixups:
            self.code[at : at + 4] = struct.pack("<i", self.labels[label] - (at + 4))
        return bytes(self.code)

    def fragment(self) -> tuple[bytes, tuple[int, ...]]:
        """A piece of code to be copied into others: its bytes, its own labels resolved,
        and where the rel32 fields of its jumps to EXIT are (filled in by whoever copies)."""
        exits = []
        for at, label in self.fixups:
            if label is EXIT:
                exits.append(at)
            else:
                self.code[at : at + 4] = struct.pack("<i", self.labels[label] - (at + 4))
        return bytes(self.code), tuple(exits)

    def paste(self, code: bytes, exits: tuple[int, ...], exit_label: object) -> None:
        """Copy in a ``fragment``, its jumps to EXIT going to ``exit_label``."""
        base = len(self.code)
        self.code += code
        self.fixups += [(base + at, exit_label) for at in exits]


EXIT = object()  # a fragment's jumps to the exit before its instruction


class _Unsupported(Exception):
    """An instruction the baseline does not write: the code leaves before it."""


# an instruction's code, by what it depends on: (op, rd, rs1, rs2, imm, registers held) ->
# (code, its jumps to the exit before it, registers held after it), or None (not written).
# Linux's regions repeat their instructions (stack frames, argument moves): writing a region
# mostly copies, where writing each instruction anew cost some 8 us of Python
_FRAGMENTS: dict[tuple, tuple[bytes, tuple[int, ...], tuple[tuple[int, int], ...]] | None] = {}
_FRAGMENTS_KEPT = 1 << 16


def _fragment(
    op: Op, rd: int, rs1: int, rs2: int, imm: int, holding: tuple[tuple[int, int], ...]
) -> tuple[bytes, tuple[int, ...], tuple[tuple[int, int], ...]] | None:
    key = (op, rd, rs1, rs2, imm, holding)
    if key in _FRAGMENTS:
        return _FRAGMENTS[key]
    writer = _InstructionWriter(dict(holding))
    try:
        writer.instruction(op, rd, rs1, rs2, imm, 0, 0)
        code, exits = writer.asm.fragment()
        found = (code, exits, tuple(sorted(writer.holding.items())))
    except _Unsupported:
        found = None
    if len(_FRAGMENTS) >= _FRAGMENTS_KEPT:
        _FRAGMENTS.clear()
    _FRAGMENTS[key] = found
    return found


@functools.cache
def _chain_in_table() -> bytes:
    writer = _InstructionWriter({})
    writer.chain_in_table()
    return writer.asm.fragment()[0]


@functools.cache
def _chain_dynamic(page: int, addend: int) -> bytes:
    writer = _InstructionWriter({})
    writer.page, writer.addend = page, addend
    writer.chain_dynamic()
    return writer.asm.fragment()[0]


class _RegionWriter:
    """One region's baseline code.  r8 (the count argument) holds the instructions retired
    before the current node, the chain's before it included; it moves on at each node's end."""

    def __init__(self, region: Region, host: int, count_entries: bool) -> None:
        self.asm = Assembler()
        self.region = region
        self.nodes = {node.pc: node for node in region}
        self.loops = _loops(region)
        self.page = region[0].pc & PAGE_MASK
        self.addend = host - region[0].pc
        self.counter = J_COUNTS + ((host >> 1) & COUNT_MASK) if count_entries else None
        self.exits: dict[tuple[int, int], object] = {}  # (pc, retired in node) -> label
        self.stubs: list[tuple[object, object]] = []  # (label, what to write there)
        # guest register -> the host register holding its value, within a node: the last
        # instruction's result and what it read, so that a dependent instruction does not
        # wait for the store to x to be forwarded to its load
        self.holding: dict[int, int] = {}

    def write(self) -> bytes:
        a = self.asm
        # the current TLB bank, once: tlb + tlb_base * TLB_SETS entries of 8 << TLB_SHIFT bytes
        a.move(BANK, TLB_BASE)
        a.shift(_SHL, BANK, TLB_SHIFT + 3)
        a.alu(_ADD, BANK, TLB)
        self.count_entry()
        for position, node in enumerate(self.region):
            following = self.region[position + 1].pc if position + 1 < len(self.region) else None
            a.bind(("node", node.pc))
            self.node(node, following)
        # out of line: the exits and the edges' checks, so that the nodes run straight
        index = 0
        while index < len(self.stubs):
            label, emit = self.stubs[index]
            index += 1
            a.bind(label)
            emit()  # type: ignore[operator]
        return a.finish()

    def count_entry(self) -> None:
        if self.counter is not None:
            self.asm.increment(JIT, self.counter * 8)

    def stub(self, emit: object) -> object:
        label = ("stub", len(self.stubs))
        self.stubs.append((label, emit))
        return label

    # ---- registers -----------------------------------------------------------------------
    def read(self, register: int, into: int) -> None:
        """x[register] into host register ``into`` (an instruction reads all its sources
        before it changes any host register)."""
        if register == 0:
            self.asm.alu(_XOR, into, into, w=False)
            self.forget(into)
            return
        holder = self.holding.get(register)
        if holder is None:
            self.asm.load(into, X, register * 8)
        elif holder != into:
            self.asm.move(into, holder)
        self.forget(into)
        self.holding[register] = into

    def forget(self, host_register: int) -> None:
        for register, holder in list(self.holding.items()):
            if holder == host_register:
                del self.holding[register]

    def write_back(self, register: int, value: int) -> None:
        """x[register] = host register ``value``, which then holds it for what follows."""
        self.holding = {}
        if register != 0:
            self.asm.store(value, X, register * 8)
            self.holding[register] = value

    # ---- leaving -------------------------------------------------------------------------
    def exit_label(self, pc: int, retired: int) -> object:
        """Leave for ``pc`` with ``retired`` instructions of the current node done (no
        chain: a precise exit before an instruction, or past the budget)."""
        key = (pc, retired)
        if key not in self.exits:

            def emit() -> None:
                a = self.asm
                a.move_immediate(RAX, pc)
                a.store(RAX, X, PC * 8)
                a.lea(RAX, COUNT, retired)
                a.ret()

            self.exits[key] = self.stub(emit)
        return self.exits[key]

    def chain_to(self, target: int) -> None:
        """With r8 counting this node's instructions: go on to the block the jump table has at
        ``target`` if it fits in what is left, else return there."""
        a = self.asm
        a.move_immediate(R9, target)
        if target & PAGE_MASK == self.page:
            a.move_immediate(R10, target + self.addend)
            a.code += _chain_in_table()
        else:
            a.code += _chain_dynamic(self.page, self.addend)

    def chain_dynamic(self) -> None:
        """``chain_to`` a target in r9, known only now."""
        a = self.asm
        a.store(R9, X, PC * 8)
        # the target's host offset: in this page, by this page's addend; in another, by its
        # fetch translation in the TLB, as the fast loop finds it when it changes pages
        other_page, found = object(), object()
        a.move(RAX, R9)
        a.alu_immediate(_AND, RAX, PAGE_MASK)
        a.move_immediate(R10, self.page)
        a.alu(_CMP, RAX, R10)
        a.jump_if(CC_NE, other_page)
        a.move_immediate(R10, self.addend)
        a.alu(_ADD, R10, R9)
        a.bind(found)
        self.chain_in_table()
        a.bind(other_page)
        self.fetch_translation(found)

    def fetch_translation(self, found: object) -> None:
        """r10 = the host offset of the pc in r9 (whose page, in rax, is not this one) and on
        to ``found`` if the TLB holds the page's fetch translation for the current fetch
        context (a page with breakpoints or execute triggers has none there: its tag is
        slow); else return there (x[PC] holds it)."""
        a = self.asm
        a.load(R10, X, FETCH_CTX * 8)
        a.alu_immediate(_AND, R10, TLB_ALL_CONTEXTS - 1)
        a.shift(_SHL, R10, TLB_SETS.bit_length() - 1)  # the context's first set
        a.move(R11, R9)
        a.shift(_SHR, R11, 12)
        a.alu_immediate(_AND, R11, TLB_SET_MASK)
        a.alu_immediate(_XOR, R11, TLB_EXEC_FLIP)
        a.alu(_ADD, R10, R11)
        a.shift(_SHL, R10, TLB_SHIFT + 3)
        a.alu(_ADD, R10, TLB)  # the entry
        out = object()
        a.alu_memory(_CMP, RAX, R10, TLB_TAG_EXEC * 8)
        a.jump_if(CC_NE, out)
        a.load(R10, R10, TLB_ADDEND * 8)
        a.alu(_ADD, R10, R9)
        a.jump(found)
        a.bind(out)
        a.move(RAX, COUNT)
        a.ret()

    def chain_in_table(self) -> None:
        """Tail-call the block the jump table has for pc r9 at host offset r10, if it is
        there and fits in what is left; else return to the kernel (x[PC] = r9)."""
        a = self.asm
        out = object()
        a.move(R11, R10)
        a.shift(_SHR, R11, 1)
        a.alu_immediate(_AND, R11, TABLE_MASK)
        a.shift(_SHL, R11, JT_SHIFT + 3)
        a.alu(_ADD, R11, JIT)  # the slot, less J_TABLE
        a.alu_memory(_CMP, R10, R11, (J_TABLE + JT_HOST) * 8)
        a.jump_if(CC_NE, out)
        a.alu_memory(_CMP, R9, R11, (J_TABLE + JT_PC) * 8)
        a.jump_if(CC_NE, out)
        a.load(RAX, R11, (J_TABLE + JT_LENGTH) * 8)
        a.alu(_ADD, RAX, COUNT)
        a.alu(_CMP, RAX, REMAINING)
        a.jump_if(CC_G, out)
        a.jump_indirect(R11, (J_TABLE + JT_ADDRESS) * 8)
        a.bind(out)
        a.store(R9, X, PC * 8)
        a.move(RAX, COUNT)
        a.ret()

    def go(self, source: int, target: int, following: int | None) -> None:
        """With r8 past the node at ``source``: on to ``target``."""
        a = self.asm
        if target not in self.nodes:
            self.chain_to(target)
        elif (source, target) in self.loops.back:
            # a back edge checks the budget (and counts an iteration, in code that counts)
            a.lea(RAX, COUNT, self.loops.run[target])
            a.alu(_CMP, RAX, REMAINING)
            a.jump_if(CC_G, self.exit_label(target, 0))
            self.count_entry()
            a.jump(("node", target))
        elif target != following:
            a.jump(("node", target))

    def go_label(self, source: int, target: int) -> object:
        """A label that goes on to ``target`` (for a branch's taken side)."""
        if target in self.nodes and (source, target) not in self.loops.back:
            return ("node", target)
        return self.stub(lambda: self.go(source, target, None))

    # ---- a node --------------------------------------------------------------------------
    def node(self, node: Node, following: int | None) -> None:
        a = self.asm
        pc = node.pc
        self.holding = {}
        for done, ins in enumerate(node.instructions):
            op = ins.op  # (an int: Op(...) costs a microsecond, and the tables take ints)
            next_pc = _signed(pc + ins.length)
            if op in _BRANCH_OPS:
                self.read(ins.rs1, R9)
                self.read(ins.rs2, R10)
                a.alu(_CMP, R9, R10)
                a.lea(COUNT, COUNT, done + 1)  # (lea leaves the flags alone)
                a.jump_if(_BRANCH_CC[op], self.go_label(node.pc, _signed(pc + ins.imm)))
                self.go(node.pc, next_pc, following)
                return
            if op == Op.JAL:
                if ins.rd:
                    a.move_immediate(RAX, next_pc)
                    self.write_back(ins.rd, RAX)
                a.lea(COUNT, COUNT, done + 1)
                self.go(node.pc, _signed(pc + ins.imm), following)
                return
            if op == Op.JALR:
                self.read(ins.rs1, R9)
                if ins.imm:
                    a.alu_immediate(_ADD, R9, ins.imm)
                a.alu_immediate(_AND, R9, -2)
                if ins.rd:
                    a.move_immediate(RAX, next_pc)
                    self.write_back(ins.rd, RAX)
                a.lea(COUNT, COUNT, done + 1)
                a.code += _chain_dynamic(self.page, self.addend)
                return
            if op == Op.AUIPC:  # a constant, as lui's
                op, imm = Op.LUI, _signed(pc + ins.imm)
            else:
                imm = ins.imm
            if op == Op.FENCE or op == Op.FENCE_I:
                pc = next_pc  # nothing to do (the decode cache sees every store)
                continue
            # an instruction reads only its sources from the registers held (and holds its
            # own afterwards): the fragment depends on those alone
            holding = self.holding
            held = tuple(
                (register, holding[register])
                for register in sorted({ins.rs1, ins.rs2})
                if register in holding
            )
            fragment = _fragment(op, ins.rd, ins.rs1, ins.rs2, imm, held)
            if fragment is None:
                a.jump(self.exit_label(pc, done))
                return
            code, exits, held = fragment
            a.paste(code, exits, self.exit_label(pc, done) if exits else None)
            self.holding = dict(held)
            pc = next_pc
        a.lea(COUNT, COUNT, len(node.instructions))
        self.go(node.pc, pc, following)

    def instruction(
        self, op: Op, rd: int, rs1: int, rs2: int, imm: int, pc: int, done: int
    ) -> None:
        """One instruction that does not end its node."""
        a = self.asm
        if op in _ALU_RI:
            self.read(rs1, RAX)
            a.alu_immediate(_ALU_RI[op], RAX, imm)
        elif op in _ALU_RR:
            self.read(rs1, RAX)
            self.read(rs2, R9)
            a.alu(_ALU_RR[op], RAX, R9)
        elif op in _SHIFT_I or op in _WORD_SHIFT_I:
            self.read(rs1, RAX)
            word = op in _WORD_SHIFT_I
            digit = _WORD_SHIFT_I[op] if word else _SHIFT_I[op]
            a.shift(digit, RAX, imm & (31 if word else 63), w=not word)
            if word:
                a.sign_extend_word(RAX, RAX)
        elif op in _SHIFT_R or op in _WORD_SHIFT_R:
            # x86 shifts by cl, which holds %remaining: kept in r11 meanwhile; the hardware
            # masks the amount to 6 bits (5 for words) as RISC-V does
            word = op in _WORD_SHIFT_R
            self.read(rs1, RAX)
            a.move(R11, REMAINING)
            self.forget(R11)
            self.read(rs2, RCX)
            a.shift_by_cl(_WORD_SHIFT_R[op] if word else _SHIFT_R[op], RAX, w=not word)
            a.move(REMAINING, R11)
            if word:
                a.sign_extend_word(RAX, RAX)
        elif op in _COMPARE:
            self.read(rs1, RAX)
            if op in (Op.SLTI, Op.SLTIU):
                a.alu_immediate(_CMP, RAX, imm)
            else:
                self.read(rs2, R9)
                a.alu(_CMP, RAX, R9)
            a.set_flag(_COMPARE[op], RAX)
        elif op in (Op.ADDIW, Op.ADDW, Op.SUBW, Op.MULW):
            self.read(rs1, RAX)
            if op == Op.ADDIW:
                a.alu_immediate(_ADD, RAX, imm, w=False)
            else:
                self.read(rs2, R9)
                if op == Op.MULW:
                    a.multiply(RAX, R9, w=False)
                else:
                    a.alu(_ADD if op == Op.ADDW else _SUB, RAX, R9, w=False)
            a.sign_extend_word(RAX, RAX)
        elif op == Op.MUL:
            self.read(rs1, RAX)
            self.read(rs2, R9)
            a.multiply(RAX, R9)
        elif op in (Op.MULH, Op.MULHU):
            self.read(rs1, RAX)
            self.read(rs2, R9)
            a.move(R11, TLB_BASE)  # the product's high half lands in rdx
            a.multiply_wide(R9, signed=op == Op.MULH)
            a.move(RAX, RDX)
            a.move(TLB_BASE, R11)
        elif op in _DIVIDES:
            self.divide(op, rs1, rs2)
        elif op in _AMO_ALU or op in _AMO_MIN_MAX or op in (Op.AMOSWAP_W, Op.AMOSWAP_D):
            self.amo(op, rd, rs1, rs2, pc, done)
            return
        elif op in (Op.LR_W, Op.LR_D, Op.SC_W, Op.SC_D):
            self.reserved(op, rd, rs1, rs2, pc, done)
            return
        elif op in _CSRS:
            self.csr(op, rd, rs1, imm, pc, done)
            return
        elif op == Op.LUI:
            a.move_immediate(RAX, imm)
        elif op == Op.AUIPC:
            a.move_immediate(RAX, _signed(pc + imm))
        elif op in _LOADS:
            self.host_address(rs1, imm, _LOADS[op][0], TLB_TAG_READ, pc, done)
            a.load_sized(op, R10, MEM, RAX)
            self.write_back(rd, R10)
            return
        elif op in _STORES:
            size = _STORES[op]
            self.read(rs2, R11)
            self.host_address(rs1, imm, size, TLB_TAG_WRITE, pc, done)
            self.check_flags(pc, done)
            a.store_sized(size, R11, MEM, RAX)
            self.holding = {rs2: R11} if rs2 else {}
            return
        elif op == Op.FENCE or op == Op.FENCE_I:
            return  # as in the fast loop: the decode cache (and so the tier) sees every store
        else:
            raise _Unsupported
        self.write_back(rd, RAX)

    def divide(self, op: Op, rs1: int, rs2: int) -> None:
        """rax = RISC-V's quotient or remainder (M chapter): x / 0 = -1, x % 0 = x,
        MIN / -1 = MIN and MIN % -1 = 0, where x86 would fault."""
        a = self.asm
        word = op in (Op.DIVW, Op.DIVUW, Op.REMW, Op.REMUW)
        signed = op in (Op.DIV, Op.REM, Op.DIVW, Op.REMW)
        remainder = op in (Op.REM, Op.REMU, Op.REMW, Op.REMUW)
        self.read(rs1, RAX)
        self.read(rs2, R9)
        by_zero, overflow, finished = object(), object(), object()
        a.test(R9, R9, w=not word)
        a.jump_if(CC_E, by_zero)
        if signed:
            a.alu_immediate(_CMP, R9, -1, w=not word)
            go_on = object()
            a.jump_if(CC_NE, go_on)
            if word:
                a.alu_immediate(_CMP, RAX, -(2**31), w=False)
            else:
                a.move_immediate(R10, -(2**63))
                a.alu(_CMP, RAX, R10)
            a.jump_if(CC_E, overflow)
            a.bind(go_on)
        a.move(R11, TLB_BASE)  # x86's division takes rdx
        a.divide(R9, signed, w=not word)
        if remainder:
            a.move(RAX, RDX)
        a.move(TLB_BASE, R11)
        a.jump(finished)
        a.bind(by_zero)
        if not remainder:
            a.move_immediate(RAX, -1)  # else the dividend, in rax
        if signed:
            a.jump(finished)
            a.bind(overflow)
            if remainder:
                a.alu(_XOR, RAX, RAX, w=False)  # else MIN, the dividend
        a.bind(finished)
        if word:
            a.sign_extend_word(RAX, RAX)

    def amo(self, op: Op, rd: int, rs1: int, rs2: int, pc: int, done: int) -> None:
        """An AMO on a RAM page whose TLB entry hits for writing at the access's width (the
        tag's low bits refuse a misaligned address), not a flagged one; else the code
        leaves before it.  rd gets the old value (sign-extended for words)."""
        a = self.asm
        word = op <= Op.AMOMAXU_W
        size = 4 if word else 8
        self.read(rs2, R11)
        self.host_address(rs1, 0, size, TLB_TAG_WRITE, pc, done)
        self.check_flags(pc, done)
        # r10 = the old value, r9 = the new one
        a._memory(b"\x63" if word else b"\x8b", R10, MEM, 0, RAX)  # movsxd / mov
        if op in (Op.AMOSWAP_W, Op.AMOSWAP_D):
            a.move(R9, R11)
        elif op in _AMO_ALU:
            a.move(R9, R10)
            a.alu(_AMO_ALU[op], R9, R11)
        else:
            if word:
                a.sign_extend_word(R11, R11)  # compared as the words' own values
            # r9 = the operand, replaced by the old value where the old value wins
            a.move(R9, R11)
            a.alu(_CMP, R10, R11)
            a._registers(bytes((0x0F, 0x40 | _AMO_MIN_MAX[op])), R9, R10)  # cmovcc r9, r10
        a.store_sized(size, R9, MEM, RAX)
        self.write_back(rd, R10)

    def reserved(self, op: Op, rd: int, rs1: int, rs2: int, pc: int, done: int) -> None:
        """LR and SC as the fast loop does them: LR reserves the physical address and
        remembers the value; SC stores if the reservation is at its address and memory
        there still holds that value, rd = 0, else rd = 1; either drops the reservation."""
        a = self.asm
        word = op in (Op.LR_W, Op.SC_W)
        size = 4 if word else 8
        loads = op in (Op.LR_W, Op.LR_D)
        if not loads:
            self.read(rs2, R11)
        self.host_address(rs1, 0, size, TLB_TAG_READ if loads else TLB_TAG_WRITE, pc, done)
        if not loads:
            self.check_flags(pc, done)
        # the physical address: the entry's page and the offset (rax is the host offset,
        # whose low 12 bits are the virtual and physical address's)
        a.move(R10, RAX)
        a.alu_immediate(_AND, R10, ~PAGE_MASK)
        a.alu_memory(_OR, R10, R9, TLB_PADDR * 8)
        a.move(R9, R10)  # r9 = paddr
        a._memory(b"\x63" if word else b"\x8b", R10, MEM, 0, RAX)  # r10 = the value there
        if loads:
            a.store(R9, X, RESERVATION * 8)
            a.store(R10, X, RESERVATION_VALUE * 8)
            self.write_back(rd, R10)
            return
        failed, finished = object(), object()
        a.alu_memory(_CMP, R9, X, RESERVATION * 8)
        a.jump_if(CC_NE, failed)
        a.load(R9, X, RESERVATION_VALUE * 8)
        if word:
            a.sign_extend_word(R9, R9)
        a.alu(_CMP, R10, R9)
        a.jump_if(CC_NE, failed)
        a.store_sized(size, R11, MEM, RAX)
        a.alu(_XOR, RAX, RAX, w=False)
        a.jump(finished)
        a.bind(failed)
        a.move_immediate(RAX, 1)
        a.bind(finished)
        a.move_immediate(R9, -1)
        a.store(R9, X, RESERVATION * 8)
        self.write_back(rd, RAX)

    def csr(self, op: Op, rd: int, rs1: int, number: int, pc: int, done: int) -> None:
        """A CSR access as the fast loop does it (translate._csr has the rules): only where
        the general path found it legal at this privilege and V since the last CSR write that
        could change that (CSR_READ_KEYS; a write also needs CSR_WRITE_OK), else the code
        leaves before it.  An sstatus write stays only when it changes nothing but clearing
        SIE (Linux's local_irq_save)."""
        a = self.asm
        exit = self.exit_label(pc, done)
        check = csr_check(op, rs1, number)
        writes = check.writes
        immediate = op >= Op.CSRRWI  # the source is the rs1 field itself
        sstatus = number == SSTATUS
        if writes and not immediate:
            self.read(rs1, R11)  # the source, before any host register changes
        self.holding = {}
        # the cached key says the access is legal here: r10 = the key, rax = what it must be
        a.load(R10, X, (CSR_READ_KEYS + check.index) * 8)
        a.load(RAX, X, PRIV * 8)
        a.shift(_SHL, RAX, 12)
        a.load(R9, X, VIRT * 8)
        a.shift(_SHL, R9, 14)
        a.alu(_OR, RAX, R9)
        a.alu_immediate(_OR, RAX, check.wanted)
        a.move(R9, R10)
        a.alu_immediate(_AND, R9, check.mask)
        a.alu(_CMP, R9, RAX)
        a.jump_if(CC_NE, exit)
        a.load(R9, X, (CSR_READ_HOW + check.index) * 8)  # x's slot, or sstatus's view
        a.alu_immediate(_CMP, R9, check.lowest)
        a.jump_if(CC_L, exit)
        if immediate:
            a.move_immediate(R11, rs1)
        if sstatus and writes:
            # a write passes the key only at V=0, where "how" is the view of mstatus
            a.alu_immediate(_CMP, R9, CSR_READ_SSTATUS)
            a.jump_if(CC_NE, exit)
            a.load(R9, X, CSR_MSTATUS * 8)  # raw mstatus
            a.move_immediate(RAX, SSTATUS_MASK)
            a.alu(_AND, RAX, R9)  # old
            self.csr_value(op)
            # leave unless only SIE changes, and only to 0
            a.move(R10, R11)
            a.alu(_XOR, R10, RAX)
            a.test_immediate(R10, ~MSTATUS_SIE_MASK)
            a.jump_if(CC_NE, exit)
            a.alu(_AND, R10, R11)
            a.test_immediate(R10, MSTATUS_SIE_MASK)
            a.jump_if(CC_NE, exit)
            # csr.status_write_value: SIE from the value, UXL/SXL at 64, SD over FS, VS, XS
            a.move_immediate(R10, ~(MSTATUS_SIE_MASK | MSTATUS_XLEN_FIELDS | MSTATUS_SD_MASK))
            a.alu(_AND, R9, R10)
            a.move(R10, R11)
            a.alu_immediate(_AND, R10, MSTATUS_SIE_MASK)
            a.alu(_OR, R9, R10)
            a.move_immediate(R10, MSTATUS_XLEN64)
            a.alu(_OR, R9, R10)
            dirty, written = object(), object()
            for field in (MSTATUS_FS_MASK, MSTATUS_XS_MASK, MSTATUS_VS_MASK):
                a.move(R10, R9)
                a.alu_immediate(_AND, R10, field)
                a.alu_immediate(_CMP, R10, field)
                a.jump_if(CC_E, dirty)
            a.jump(written)
            a.bind(dirty)
            a.move_immediate(R10, MSTATUS_SD_MASK)
            a.alu(_OR, R9, R10)
            a.bind(written)
            a.store(R9, X, CSR_MSTATUS * 8)
        elif sstatus:
            mstatus, old = object(), object()
            a.alu_immediate(_CMP, R9, CSR_READ_SSTATUS)
            a.jump_if(CC_NE, mstatus)
            a.move_immediate(RAX, SSTATUS_MASK)
            a.alu_memory(_AND, RAX, X, CSR_MSTATUS * 8)
            a.jump(old)
            a.bind(mstatus)
            a.shift(_SHL, R9, 3)
            a.alu(_ADD, R9, X)
            a.load(RAX, R9, 0)
            a.bind(old)
        else:
            a.shift(_SHL, R9, 3)
            a.alu(_ADD, R9, X)  # the slot's address
            a.load(RAX, R9, 0)  # old
            if writes:
                self.csr_value(op)
                # a slot without side effects (csr.plain_write_mask): the xepcs keep bit 0 zero
                odd = object()
                a.test_immediate(R10, CSR_WRITE_EVEN)
                a.jump_if(CC_E, odd)
                a.alu_immediate(_AND, R11, -2)
                a.bind(odd)
                a.store(R11, R9, 0)
        self.write_back(rd, RAX)

    def csr_value(self, op: Op) -> None:
        """r11 = the value written: the source (in r11), set in or cleared from old (rax)."""
        a = self.asm
        how = _CSRS[op]
        if how == "set":
            a.alu(_OR, R11, RAX)
        elif how == "clear":
            a.alu_immediate(_XOR, R11, -1)
            a.alu(_AND, R11, RAX)

    def check_flags(self, pc: int, done: int) -> None:
        """Leave before a store to a page with any flag (translated code, the tohost word,
        untracked code): the interpreter stores, and drops what the store changes."""
        a = self.asm
        a.move(R10, RAX)
        a.shift(_SHR, R10, 12)
        a.compare_memory_byte(FLAGS, R10)
        a.jump_if(CC_NE, self.exit_label(pc, done))

    def host_address(self, rs1: int, imm: int, size: int, tag: int, pc: int, done: int) -> None:
        """rax = the host offset of x[rs1] + imm, by the TLB's fast path, or leave before
        the instruction (the tag's low bits refuse a misaligned address, as the fast loop's)."""
        a = self.asm
        self.read(rs1, RAX)
        self.holding = {}  # rax, r9 and r10 change here
        if imm:
            a.alu_immediate(_ADD, RAX, imm)
        a.move(R9, RAX)
        a.shift(_SHR, R9, 12)
        a.alu_immediate(_AND, R9, TLB_SET_MASK)
        a.shift(_SHL, R9, TLB_SHIFT + 3)
        a.alu(_ADD, R9, BANK)  # the entry
        a.move(R10, RAX)
        a.alu_immediate(_AND, R10, PAGE_MASK | (size - 1))
        a.alu_memory(_CMP, R10, R9, tag * 8)
        a.jump_if(CC_NE, self.exit_label(pc, done))
        a.alu_memory(_ADD, RAX, R9, TLB_ADDEND * 8)


class _InstructionWriter(_RegionWriter):
    """What writes one instruction's fragment (``_fragment``), or a chain's code: the
    region writer's instruction code alone, its exit left open (EXIT)."""

    def __init__(self, holding: dict[int, int]) -> None:
        self.asm = Assembler()
        self.holding = holding

    def exit_label(self, pc: int, retired: int) -> object:
        return EXIT


def region_code(region: Region, host: int, count_entries: bool = True) -> bytes | None:
    """The baseline code of ``region`` (at host offset ``host``), or None when its first
    instruction is one the baseline does not write (the code would only ever leave)."""
    if region[0].instructions[0].op not in _WRITTEN:
        return None
    return _RegionWriter(region, host, count_entries).write()


_WRITTEN = frozenset(
    int(op)
    for op in (
        *_ALU_RI,
        *_ALU_RR,
        *_SHIFT_I,
        *_SHIFT_R,
        *_WORD_SHIFT_I,
        *_WORD_SHIFT_R,
        *_COMPARE,
        Op.ADDIW,
        Op.ADDW,
        Op.SUBW,
        Op.MULW,
        Op.MUL,
        Op.MULH,
        Op.MULHU,
        *_DIVIDES,
        *_CSRS,
        *_AMO_ALU,
        *_AMO_MIN_MAX,
        Op.AMOSWAP_W,
        Op.AMOSWAP_D,
        Op.LR_W,
        Op.LR_D,
        Op.SC_W,
        Op.SC_D,
        Op.LUI,
        Op.AUIPC,
        *_LOADS,
        *_STORES,
        Op.FENCE,
        Op.FENCE_I,
        *_BRANCH_OPS,
        Op.JAL,
        Op.JALR,
    )
)


class CodeArena:
    """Executable memory for baseline code, mapped ARENA_BYTES at a time and never unmapped
    (a region's baseline code is replaced by LLVM code once hot; what it leaves behind is
    bounded by ``limit``)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = DEFAULT_ARENA_LIMIT if limit is None else limit
        self.maps: list[mmap.mmap] = []
        self.base = 0
        self.used = ARENA_BYTES  # no piece mapped yet
        self.written = 0  # bytes of code, all pieces

    def place(self, code: bytes) -> int | None:
        """Copy ``code`` in and return its address; None when the arena is full."""
        size = (len(code) + 15) & ~15
        if size > ARENA_BYTES:
            return None
        if self.used + size > ARENA_BYTES:
            if (len(self.maps) + 1) * ARENA_BYTES > self.limit:
                return None
            piece = mmap.mmap(
                -1, ARENA_BYTES, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
            )
            self.maps.append(piece)
            self.base = ctypes.addressof(ctypes.c_char.from_buffer(piece))
            self.used = 0
        piece = self.maps[-1]
        piece[self.used : self.used + len(code)] = code
        address = self.base + self.used
        self.used += size
        self.written += len(code)
        return address

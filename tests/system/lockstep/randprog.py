"""Random RV64IMAC programs that run on both rvh and QEMU, for the differential campaign.

A *batch* is one bare-metal ELF holding many *programs* run one after another: each program
loads its own random register values, runs its random body, then reads back its 256-byte data
area one doubleword at a time (so a wrong store shows up as a wrong register).  The comparison
is the lockstep of ``rvh/diff/``: every instruction's architectural state, not only the end.

Layout (everything in one RWX segment at 0x8000_0000, where QEMU's reset code jumps):

    _start     mtvec <- handler; then per program: prologue, body, epilogue; then the syscon exit
    handler    skips the trapping instruction (2 or 4 bytes, read from mepc) and returns
    tables     per program: 28 register values, then its data area (256 bytes + handler slots)

Registers: x31, x2 (sp) and x8 (s0) point at the program's data area and are never written by
a generated instruction (x31 for ordinary loads/stores, AMOs and the handler; sp and s0 for the
compressed loads and stores, whose base registers are limited).  Every other register,
x0 included, may be a destination.

Generated items are plain instructions (every RV64IMAC and Zicsr encoding of
``rvh/isa/instructions.py`` except the privileged ones), forward branches and jumps (so every
program ends), AMOs/LR/SC at computed addresses, CSR accesses to a safe set, and traps (ecall,
ebreak, illegal encodings, misaligned and unmapped AMOs, loads/stores at address 0).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rvh.isa.disasm import encode

BASE = 0x8000_0000
DATA_SIZE = 256
SLOTS = 16  # handler save slots after the data area
POINTERS = (2, 8, 31)  # registers that hold the data area's address
LOADED = tuple(r for r in range(1, 31) if r not in POINTERS)  # registers the prologue sets
WRITABLE = tuple(r for r in range(32) if r not in POINTERS)  # x0 included: writes vanish

# CSRs the programs may write (random values): nothing here can redirect traps, raise
# interrupts in M-mode, or change how the handler's own loads and stores translate.
CSR_WRITABLE = (
    0x340,  # mscratch
    0x341,  # mepc (the handler rewrites it)
    0x342,  # mcause
    0x343,  # mtval
    0x140,  # sscratch
    0x141,  # sepc
    0x142,  # scause
    0x143,  # stval
    0x105,  # stvec
    0x302,  # medeleg (WARL)
    0x303,  # mideleg (WARL)
    0x304,  # mie (mstatus.MIE stays 0: nothing is taken in M-mode)
    0x344,  # mip (only the S-level bits are writable)
    0x306,  # mcounteren
    0x106,  # scounteren
)
# CSRs only read (a write would trap, break the harness, or differ by design).
CSR_READ_ONLY = (
    0x300,  # mstatus
    0x301,  # misa
    0x305,  # mtvec
    0xF11,  # mvendorid
    0xF12,  # marchid
    0xF13,  # mimpid
    0xF14,  # mhartid
    0xC00,  # cycle
    0xC01,  # time
    0xC02,  # instret
    0xB00,  # mcycle
    0xB02,  # minstret
    0x100,  # sstatus
    0x104,  # sie
    0x144,  # sip
    0x180,  # satp
)
CSR_ABSENT = (0x7C0, 0x5C0, 0x015, 0x003)  # custom or F-extension CSRs: illegal instruction


# ---- a tiny assembler over rvh.isa.disasm.encode --------------------------------------------
class Assembler:
    def __init__(self, origin: int) -> None:
        self.origin = origin
        self.code = bytearray()

    @property
    def pc(self) -> int:
        return self.origin + len(self.code)

    def emit(self, name: str, **operands: int) -> int:
        bits = encode(name, **operands)
        self.code += struct.pack("<I" if bits & 3 == 3 else "<H", bits)
        return bits

    def emit_raw(self, bits: int, length: int) -> None:
        self.code += bits.to_bytes(length, "little")

    def load_address(self, rd: int, address: int) -> None:
        """auipc + addi: rd = address (within 2 GiB of pc)."""
        offset = address - self.pc
        high = (offset + 0x800) >> 12
        self.emit("auipc", rd=rd, imm=high << 12)
        self.emit("addi", rd=rd, rs1=rd, imm=offset - (high << 12))


# ---- items --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Insn:
    """One instruction with fixed operands."""

    name: str
    operands: tuple[tuple[str, int], ...]

    size = property(lambda self: 2 if self.name.startswith("c.") else 4)

    def emit(self, asm: Assembler, targets: list[int], index: int) -> None:
        asm.emit(self.name, **dict(self.operands))


@dataclass(frozen=True)
class Raw:
    """Bits that are not a valid instruction (an illegal-instruction trap)."""

    bits: int
    length: int

    size = property(lambda self: self.length)

    def emit(self, asm: Assembler, targets: list[int], index: int) -> None:
        asm.emit_raw(self.bits, self.length)


@dataclass(frozen=True)
class Branch:
    """A forward conditional branch or jump over ``skip`` items (0: to the next item)."""

    name: str  # beq... / c.beqz / c.bnez / jal / c.j
    rs1: int = 0
    rs2: int = 0
    rd: int = 0
    skip: int = 0

    size = property(lambda self: 2 if self.name.startswith("c.") else 4)

    def emit(self, asm: Assembler, targets: list[int], index: int) -> None:
        reach = {"c.beqz": 254, "c.bnez": 254, "c.j": 2046}.get(self.name, 4094)
        target = index + 1 + self.skip
        target = min(target, len(targets) - 1)
        while targets[target] - asm.pc > reach:
            target -= 1
        offset = targets[target] - asm.pc
        if self.name in ("jal",):
            asm.emit("jal", rd=self.rd, imm=offset)
        elif self.name == "c.j":
            asm.emit("c.j", imm=offset)
        elif self.name in ("c.beqz", "c.bnez"):
            asm.emit(self.name, rs1=self.rs1, imm=offset)
        else:
            asm.emit(self.name, rs1=self.rs1, rs2=self.rs2, imm=offset)


@dataclass(frozen=True)
class IndirectJump:
    """auipc tmp + (jalr rd, off(tmp) | addi tmp + c.jr/c.jalr tmp): a computed forward jump."""

    name: str  # jalr / c.jr / c.jalr
    tmp: int
    rd: int = 0
    skip: int = 0

    size = property(lambda self: 8 if self.name == "jalr" else 10)

    def emit(self, asm: Assembler, targets: list[int], index: int) -> None:
        target = targets[min(index + 1 + self.skip, len(targets) - 1)]
        start = asm.pc
        asm.emit("auipc", rd=self.tmp, imm=0)
        if self.name == "jalr":
            asm.emit("jalr", rd=self.rd, rs1=self.tmp, imm=target - start)
        else:
            asm.emit("addi", rd=self.tmp, rs1=self.tmp, imm=target - start)
            asm.emit(self.name, rs1=self.tmp)


@dataclass(frozen=True)
class Atomic:
    """addi tmp, x31, offset; then an AMO, LR or SC at tmp (offset may be misaligned)."""

    name: str
    tmp: int
    rd: int
    rs2: int
    offset: int
    aq: int = 0
    rl: int = 0
    base: int = 31  # 0: an address with no memory (access fault)

    size = property(lambda self: 8)

    def emit(self, asm: Assembler, targets: list[int], index: int) -> None:
        asm.emit("addi", rd=self.tmp, rs1=self.base, imm=self.offset)
        operands = {"rd": self.rd, "rs1": self.tmp, "aq": self.aq, "rl": self.rl}
        if not self.name.startswith("lr."):
            operands["rs2"] = self.rs2
        asm.emit(self.name, **operands)


@dataclass(frozen=True)
class Program:
    registers: tuple[int, ...]  # values for LOADED, in order
    data: bytes  # DATA_SIZE bytes
    body: tuple[object, ...]


# ---- building a batch ---------------------------------------------------------------------
def _handler(asm: Assembler) -> None:
    """Skip the instruction at mepc (its length from its low two bits) and return."""
    asm.emit("sd", rs1=31, rs2=30, imm=DATA_SIZE)
    asm.emit("sd", rs1=31, rs2=29, imm=DATA_SIZE + 8)
    asm.emit("csrrs", rd=30, rs1=0, csr=0x341)  # mepc
    asm.emit("lhu", rd=29, rs1=30, imm=0)
    asm.emit("andi", rd=29, rs1=29, imm=3)
    asm.emit("addi", rd=30, rs1=30, imm=2)
    asm.emit("addi", rd=29, rs1=29, imm=-3)
    asm.emit("bne", rs1=29, rs2=0, imm=8)
    asm.emit("addi", rd=30, rs1=30, imm=2)
    asm.emit("csrrw", rd=0, rs1=30, csr=0x341)
    asm.emit("ld", rd=30, rs1=31, imm=DATA_SIZE)
    asm.emit("ld", rd=29, rs1=31, imm=DATA_SIZE + 8)
    asm.emit("mret")


def program_size(program: Program) -> int:
    return 4 * (2 + len(LOADED) + 3 + DATA_SIZE // 8) + sum(i.size for i in program.body)


def build_batch(programs: list[Program]) -> bytes:
    """The image (code, handler, tables) of a batch, to load at BASE."""
    code_end = BASE + 12 + sum(program_size(p) for p in programs) + 5 * 4
    handler_at = (code_end + 3) & ~3
    tables_at = (handler_at + 13 * 4 + 0xFF) & ~0xFF
    table_size = 8 * len(LOADED) + DATA_SIZE + SLOTS
    asm = Assembler(BASE)
    asm.load_address(31, handler_at)
    asm.emit("csrrw", rd=0, rs1=31, csr=0x305)  # mtvec
    for n, program in enumerate(programs):
        table = tables_at + n * table_size
        data = table + 8 * len(LOADED)
        asm.load_address(31, table)
        for k, register in enumerate(LOADED):
            asm.emit("ld", rd=register, rs1=31, imm=8 * k)
        asm.emit("addi", rd=31, rs1=31, imm=data - table)
        asm.emit("addi", rd=2, rs1=31, imm=0)
        asm.emit("addi", rd=8, rs1=31, imm=0)
        # item start addresses, then the body
        targets, at = [], asm.pc
        for item in program.body:
            targets.append(at)
            at += item.size
        targets.append(at)
        for index, item in enumerate(program.body):
            item.emit(asm, targets, index)
        for k in range(DATA_SIZE // 8):  # read the data area back
            asm.emit("ld", rd=30, rs1=31, imm=8 * k)
    # exit through the test device: *0x10_0000 = 0x5555
    asm.emit("lui", rd=5, imm=0x100 << 12)
    asm.emit("lui", rd=6, imm=0x5 << 12)
    asm.emit("addiw", rd=6, rs1=6, imm=0x555)
    asm.emit("sw", rs1=5, rs2=6, imm=0)
    asm.emit("jal", rd=0, imm=0)
    assert asm.pc == code_end, (hex(asm.pc), hex(code_end))
    if asm.pc != handler_at:
        asm.emit("c.addi", rd=0, imm=0)
    _handler(asm)
    image = bytearray(asm.code)
    image += bytes(tables_at - BASE - len(image))
    for program in programs:
        values = [v & (2**64 - 1) for v in program.registers]
        image += struct.pack(f"<{len(LOADED)}Q", *values)
        image += program.data.ljust(DATA_SIZE, b"\0")[:DATA_SIZE]
        image += bytes(SLOTS)
    return bytes(image)


def elf_image(image: bytes, address: int = BASE) -> bytes:
    """A minimal ELF64 executable: one RWX PT_LOAD segment at ``address``, entry there."""
    header_size, phdr_size = 64, 56
    offset = 0x1000
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # ET_EXEC
        243,  # EM_RISCV
        1,
        address,  # entry
        header_size,  # program headers
        0,  # no sections
        0x1,  # EF_RISCV_RVC, soft-float ABI
        header_size,
        phdr_size,
        1,
        64,
        0,
        0,
    )
    phdr = struct.pack("<IIQQQQQQ", 1, 7, offset, address, address, len(image), len(image), 0x1000)
    blob = header + phdr
    return blob + bytes(offset - len(blob)) + image

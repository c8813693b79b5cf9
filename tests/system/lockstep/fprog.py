"""Random F/D programs for the lockstep comparison with QEMU 7.2 (issue 13, "FP evidence").

One bare-metal ELF runs many *items*.  An item loads fresh operands into the registers it uses
(``fld``/``flw`` from a table of special values: signed zeros, subnormals, the smallest and
largest normals, infinities, quiet and signalling NaNs, singles boxed and not, values at the
integer conversion boundaries, and random numbers whose exponents are close enough for
cancellation and rounding ties), runs one F/D instruction with a random rounding mode (the
static ones, dynamic, and the reserved 5 and 6), and moves fflags into an x register while
clearing them (``csrrw x, fflags, x0``), so that QEMU's dump, which does not print fcsr, still
shows every flag an instruction raised.  Some items change frm (valid and reserved values),
mstatus.FS (an FP instruction while it is Off traps), or read mstatus (FS, SD).

Every instruction of an item is an F/D instruction or an FP CSR access, so the FP instruction
count is close to the instruction count.  The trap handler steps over the faulting
instruction (all are 4 bytes) and returns.

Registers: x31, s0 and sp hold the table's address (s0 and sp for the compressed loads and
stores), x30 is the handler's; generated instructions write x5..x29 except s0, and any f
register.
"""

from __future__ import annotations

import random
import struct

from randprog import BASE, Assembler, elf_image

from rvh.isa.disasm import decode, encode

SYSCON = 0x100000
TABLE_ENTRIES = 256
INTEGER_DESTINATIONS = tuple(r for r in range(5, 30) if r != 8)  # s0 is a base register
FFLAGS = 0x001
FRM = 0x002
MSTATUS = 0x300
MTVEC = 0x305
MEPC = 0x341


def _d(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def _s(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


def _special_doubles() -> list[int]:
    values = [
        0x0000000000000000,  # +0
        0x8000000000000000,  # -0
        0x0000000000000001,  # smallest subnormal
        0x800FFFFFFFFFFFFF,  # largest subnormal, negative
        0x000FFFFFFFFFFFFF,
        0x0010000000000000,  # smallest normal
        0x8010000000000000,
        0x7FEFFFFFFFFFFFFF,  # largest finite
        0xFFEFFFFFFFFFFFFF,
        0x7FF0000000000000,  # +inf
        0xFFF0000000000000,  # -inf
        0x7FF8000000000000,  # canonical qNaN
        0xFFF8000000000001,  # qNaN with payload
        0x7FF0000000000001,  # sNaN
        0xFFF4000000000000,  # sNaN
        0x3CA0000000000000,  # 2**-53
        0x001FFFFFFFFFFFFF,
        0x0008000000000000,
    ]
    for number in (
        1.0,
        -1.0,
        1.5,
        0.5,
        -0.5,
        2.5,
        -2.5,
        3.0,
        2.0**31,
        2.0**31 - 0.5,
        -(2.0**31),
        -(2.0**31) - 1.0,
        -(2.0**31) - 0.5,
        2.0**32,
        2.0**32 - 1.0,
        2.0**63,
        -(2.0**63),
        2.0**64,
        2.0**64 - 2048.0,
        1e308,
        1e-308,
        0.1,
        1.0 / 3.0,
        -7.0,
        3.4028234663852886e38,  # largest single
        3.4028235677973366e38,  # rounds to single infinity or to the largest
        1.1754943508222875e-38,  # smallest normal single
        1.401298464324817e-45,  # smallest subnormal single
        7.006492321624085e-46,  # half of it
    ):
        values.append(_d(number))
    return values


def _special_singles() -> list[int]:
    values = [
        0x00000000,
        0x80000000,
        0x00000001,
        0x807FFFFF,
        0x007FFFFF,
        0x00800000,
        0x80800000,
        0x7F7FFFFF,
        0xFF7FFFFF,
        0x7F800000,
        0xFF800000,
        0x7FC00000,
        0xFFC00001,
        0x7F800001,
        0xFFA00000,
        0x33800000,  # 2**-24
        0x00FFFFFF,
        0x00400000,
    ]
    for number in (
        1.0,
        -1.0,
        1.5,
        0.5,
        -0.5,
        2.5,
        -2.5,
        2.0**31,
        -(2.0**31),
        2.0**32,
        2.0**63,
        -(2.0**63),
        2.0**64,
        0.1,
        1.0 / 3.0,
        -7.0,
    ):
        values.append(_s(number))
    return values


def operand_table(rng: random.Random) -> list[int]:
    """TABLE_ENTRIES doublewords: doubles, NaN-boxed singles, a few improperly boxed ones."""
    table = _special_doubles()
    table += [0xFFFFFFFF00000000 | s for s in _special_singles()]
    table += [0x00000000_3F800000, 0xFFFFFFFE_3F800000, 0x7FF00000_00000000 | 0x40490FDB]
    while len(table) < TABLE_ENTRIES:
        kind = rng.randrange(6)
        if kind == 0:  # random double near 1 (cancellation, ties)
            table.append(_d(rng.uniform(-4, 4)))
        elif kind == 1:  # random bits
            table.append(rng.getrandbits(64))
        elif kind == 2:  # random boxed single
            table.append(0xFFFFFFFF00000000 | _s(rng.uniform(-4, 4)))
        elif kind == 3:  # a double with few significant bits (exact sums, halfway cases)
            mantissa = rng.getrandbits(rng.choice((1, 2, 24, 25, 53)))
            exponent = rng.randrange(-1080, 1030)
            try:
                table.append(_d(float(mantissa) * 2.0**exponent))
            except OverflowError:
                table.append(_d(1.0))
        elif kind == 4:  # boxed single with random bits
            table.append(0xFFFFFFFF00000000 | rng.getrandbits(32))
        else:  # a double at a subnormal or huge exponent
            exponent = rng.choice((0, 1, 2, 0x7FE, 0x7FD, 0x3FF, 0x3FE, 0x400))
            sign = rng.getrandbits(1)
            table.append((sign << 63) | (exponent << 52) | rng.getrandbits(52))
    return table[:TABLE_ENTRIES]


INTEGER_VALUES = (
    0,
    1,
    -1,
    2**31 - 1,
    -(2**31),
    2**31,
    2**32 - 1,
    2**63 - 1,
    -(2**63),
    0x7FFFFFFFFFFFFC00,
    0x00000000FFFFFF80,
    16777217,
    -16777217,
    9007199254740993,
    12345,
)

# (name, operand kinds): "f" f register, "x" x register source, "rm" rounding mode
BINARY = [f"{op}.{fmt}" for op in ("fadd", "fsub", "fmul", "fdiv") for fmt in "sd"]
FUSED = [f"{op}.{fmt}" for op in ("fmadd", "fmsub", "fnmsub", "fnmadd") for fmt in "sd"]
NO_ROUNDING = [
    f"{op}.{fmt}"
    for op in ("fsgnj", "fsgnjn", "fsgnjx", "fmin", "fmax", "feq", "flt", "fle")
    for fmt in "sd"
]
UNARY_ROUNDING = ["fsqrt.s", "fsqrt.d", "fcvt.s.d", "fcvt.d.s"]
TO_INTEGER = [f"fcvt.{i}.{fmt}" for i in ("w", "wu", "l", "lu") for fmt in "sd"]
FROM_INTEGER = [f"fcvt.{fmt}.{i}" for i in ("w", "wu", "l", "lu") for fmt in "sd"]
MOVES_TO_X = ["fmv.x.w", "fmv.x.d", "fclass.s", "fclass.d"]
MOVES_FROM_X = ["fmv.w.x", "fmv.d.x"]
TO_X = set(TO_INTEGER + MOVES_TO_X) | {
    n for n in NO_ROUNDING if n.startswith(("feq", "flt", "fle"))
}


class FloatProgram:
    def __init__(self, seed: int, items: int) -> None:
        self.rng = random.Random(seed)
        self.items = items
        self.asm = Assembler(BASE)
        self.table = operand_table(self.rng)
        self.fp_instructions = 0  # F/D instructions and FP CSR accesses in the item stream

    def emit(self, name: str, **operands: int) -> None:
        self.asm.emit(name, **operands)
        if decode(encode(name, **operands)).is_float or operands.get("csr") in (FFLAGS, FRM):
            self.fp_instructions += 1

    def _rm(self) -> int:
        roll = self.rng.randrange(100)
        if roll < 3:
            return self.rng.choice((5, 6))  # reserved: illegal instruction
        if roll < 40:
            return 7  # dynamic: frm
        return self.rng.randrange(5)

    def _load(self, f: int) -> None:
        offset = 8 * self.rng.randrange(TABLE_ENTRIES)
        if self.rng.randrange(8) == 0:
            self.emit("flw", rd=f, rs1=31, imm=offset)  # boxes the low word
        else:
            self.emit("fld", rd=f, rs1=31, imm=offset)

    def _flags(self) -> None:
        rd = self.rng.choice(INTEGER_DESTINATIONS)
        self.emit("csrrw", rd=rd, rs1=0, csr=FFLAGS)  # read and clear the flags

    def _integer(self, x: int) -> None:
        value = self.rng.choice(INTEGER_VALUES)
        if self.rng.randrange(3) == 0:
            value = self.rng.getrandbits(64) - (1 << 63)
        # lui/addi pairs for 32-bit values, else a load from the table as raw bits
        offset = 8 * self.rng.randrange(TABLE_ENTRIES)
        if -(2**31) <= value < 2**31 - 2048:
            high = (value + 0x800) >> 12
            low = value - (high << 12)
            self.emit("lui", rd=x, imm=((high & 0xFFFFF) ^ 0x80000) - 0x80000 << 12)
            self.emit("addiw", rd=x, rs1=x, imm=low)
        else:
            self.emit("ld", rd=x, rs1=31, imm=offset)

    def _item(self) -> None:
        rng = self.rng
        roll = rng.randrange(1000)
        f = [rng.randrange(32) for _ in range(4)]
        if roll < 15:
            # frm: a valid mode, or a reserved one that makes dynamic-rounding ops trap
            x = rng.choice(INTEGER_DESTINATIONS)
            self.emit("csrrwi", rd=x, imm=rng.randrange(8), csr=FRM)
            return
        if roll < 20:
            # mstatus.FS: Off, Initial, Clean or Dirty; read mstatus back (FS, SD), try an FP
            # move (it traps while FS is Off), then switch FP back on
            x = rng.choice(INTEGER_DESTINATIONS)
            self.emit("lui", rd=x, imm=0x6 << 12)
            self.emit("csrrc", rd=0, rs1=x, csr=MSTATUS)
            self.emit("lui", rd=x, imm=rng.randrange(4) << 13)
            self.emit("csrrs", rd=0, rs1=x, csr=MSTATUS)
            self.emit("csrrs", rd=x, rs1=0, csr=MSTATUS)
            self.emit("fmv.d.x", rd=f[0], rs1=x)
            self.emit("csrrs", rd=x, rs1=0, csr=MSTATUS)
            self.emit("lui", rd=x, imm=(1 + rng.randrange(3)) << 13)
            self.emit("csrrs", rd=0, rs1=x, csr=MSTATUS)
            # a compare that may only raise a flag, then mstatus (deviation fp-flags-leave-fs)
            self.emit("flt.d", rd=x, rs1=f[1], rs2=f[2])
            self.emit("csrrs", rd=x, rs1=0, csr=MSTATUS)
            return
        if roll < 23:
            self.emit("csrrs", rd=rng.choice(INTEGER_DESTINATIONS), rs1=0, csr=MSTATUS)
            return
        if roll < 60:
            # stores and loads through memory, the compressed forms too
            offset = 8 * rng.randrange(TABLE_ENTRIES)
            self._load(f[1])
            kind = rng.randrange(4)
            if kind == 0:
                self.emit("fsd", rs1=31, rs2=f[1], imm=offset)
            elif kind == 1:
                self.emit("fsw", rs1=31, rs2=f[1], imm=offset)
            elif kind == 2:
                self.emit("c.fsd", rs1=8, rs2=8 + rng.randrange(8), imm=8 * rng.randrange(32))
                self.emit("c.fld", rs1=8, rd=8 + rng.randrange(8), imm=8 * rng.randrange(32))
            else:
                self.emit("c.fsdsp", rs2=f[1], imm=8 * rng.randrange(64))
                self.emit("c.fldsp", rd=f[2], imm=8 * rng.randrange(64))
            return
        group = rng.choice(
            (BINARY, BINARY, FUSED, FUSED, NO_ROUNDING, UNARY_ROUNDING, TO_INTEGER, TO_INTEGER)
            + (FROM_INTEGER, MOVES_TO_X, MOVES_FROM_X)
        )
        name = rng.choice(group)
        if group in (FROM_INTEGER, MOVES_FROM_X):
            x = rng.choice(INTEGER_DESTINATIONS)
            self._integer(x)
            operands = {"rd": f[0], "rs1": x}
        else:
            for register in f[1:4]:
                self._load(register)
            operands = {"rd": f[0], "rs1": f[1]}
            if name in TO_X:
                operands["rd"] = rng.choice(INTEGER_DESTINATIONS)
            if group in (BINARY, FUSED, NO_ROUNDING):
                operands["rs2"] = f[2]
            if group is FUSED:
                operands["rs3"] = f[3]
        if group in (BINARY, FUSED, UNARY_ROUNDING, TO_INTEGER, FROM_INTEGER):
            operands["rm"] = self._rm()
        self.emit(name, **operands)
        self._flags()

    def build(self) -> bytes:
        asm = self.asm
        # x31, s0 and sp: the table; mtvec: the handler; FS = Initial; frm = RNE
        table_at = asm.pc  # patched below
        asm.emit("auipc", rd=31, imm=0)
        asm.emit("addi", rd=31, rs1=31, imm=0)
        asm.emit("auipc", rd=30, imm=0)
        asm.emit("addi", rd=30, rs1=30, imm=0)
        asm.emit("csrrw", rd=0, rs1=30, csr=MTVEC)
        asm.emit("addi", rd=8, rs1=31, imm=0)
        asm.emit("addi", rd=2, rs1=31, imm=0)
        asm.emit("lui", rd=5, imm=0x2 << 12)
        asm.emit("csrrs", rd=0, rs1=5, csr=MSTATUS)
        for _ in range(self.items):
            self._item()
        # exit through the test device
        asm.emit("lui", rd=5, imm=0x100 << 12)
        asm.emit("lui", rd=6, imm=0x5 << 12)
        asm.emit("addiw", rd=6, rs1=6, imm=0x555)
        asm.emit("sw", rs1=5, rs2=6, imm=0)
        asm.emit("jal", rd=0, imm=0)
        # the handler: step over the (4-byte) faulting instruction
        while len(asm.code) % 4:
            asm.code += b"\x00"
        handler = asm.pc
        asm.emit("csrrs", rd=30, rs1=0, csr=MEPC)
        asm.emit("addi", rd=30, rs1=30, imm=4)
        asm.emit("csrrw", rd=0, rs1=30, csr=MEPC)
        asm.emit("mret")
        while len(asm.code) % 8:
            asm.code += b"\x00"
        table = asm.pc
        for value in self.table:
            asm.code += struct.pack("<Q", value)
        self._patch(table_at, table, handler)
        return elf_image(bytes(asm.code))

    def _patch(self, at: int, table: int, handler: int) -> None:
        """Fill in the auipc/addi pairs at the start for the table and handler addresses."""
        code = self.asm.code
        for index, target in ((0, table), (2, handler)):
            pc = at + 4 * index
            rd = 31 if index == 0 else 30
            offset = target - pc
            high = (offset + 0x800) >> 12
            low = offset - (high << 12)
            auipc = encode("auipc", rd=rd, imm=high << 12)
            addi = encode("addi", rd=rd, rs1=rd, imm=low)
            start = pc - BASE
            code[start : start + 8] = struct.pack("<II", auipc, addi)


def build_program(seed: int, items: int) -> tuple[bytes, int]:
    """The ELF image and the number of F/D instructions in its straight-line item stream
    (each runs once; trapping ones add the handler's four instructions)."""
    program = FloatProgram(seed, items)
    image = program.build()
    return image, program.fp_instructions

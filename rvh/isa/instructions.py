"""RISC-V instruction encodings as data.

One line per instruction: mnemonic, operand format, then the fixed bit fields written as
``hi..lo=value`` (or ``bit=value``), in the notation of the ISA manual's encoding tables
(unprivileged spec chapters 2, 7 (M), 8 (A), 16 (C); privileged spec chapter 3.3 and the
hypervisor chapter).  Everything else in rvh derives from these lines: the numba decoder's
tables (:mod:`rvh.isa.decode`), the instruction ids the kernel dispatches on (:class:`Op`),
the disassembler and the encoding tests.

Compressed instructions name the 32-bit instruction they expand to and a ``scheme``: the way
their operands are scattered over the 16 bits (the C chapter's "CI", "CSS", ... formats, split
further where the immediate bits are permuted differently).  A scheme may also carry a
constraint, e.g. ``rd!=0``; an encoding that breaks it is reserved and decodes as illegal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

# Base (32-bit) instructions: name, operand format, fixed fields.
# Formats: R I S B U J (the spec's), SH6/SH5 (shift by immediate), CSR/CSRI (Zicsr),
# AMO/LR (A), FENCE, SYS (no operands), SFENCE (rs1, rs2), HLV (rd, rs1), HSV (rs1, rs2).
BASE_INSTRUCTIONS = """
# RV64I (unprivileged spec, chapters 2 and 5)
lui        U      6..2=0x0D 1..0=3
auipc      U      6..2=0x05 1..0=3
jal        J      6..2=0x1B 1..0=3
jalr       I      14..12=0 6..2=0x19 1..0=3
beq        B      14..12=0 6..2=0x18 1..0=3
bne        B      14..12=1 6..2=0x18 1..0=3
blt        B      14..12=4 6..2=0x18 1..0=3
bge        B      14..12=5 6..2=0x18 1..0=3
bltu       B      14..12=6 6..2=0x18 1..0=3
bgeu       B      14..12=7 6..2=0x18 1..0=3
lb         I      14..12=0 6..2=0x00 1..0=3
lh         I      14..12=1 6..2=0x00 1..0=3
lw         I      14..12=2 6..2=0x00 1..0=3
ld         I      14..12=3 6..2=0x00 1..0=3
lbu        I      14..12=4 6..2=0x00 1..0=3
lhu        I      14..12=5 6..2=0x00 1..0=3
lwu        I      14..12=6 6..2=0x00 1..0=3
sb         S      14..12=0 6..2=0x08 1..0=3
sh         S      14..12=1 6..2=0x08 1..0=3
sw         S      14..12=2 6..2=0x08 1..0=3
sd         S      14..12=3 6..2=0x08 1..0=3
addi       I      14..12=0 6..2=0x04 1..0=3
slti       I      14..12=2 6..2=0x04 1..0=3
sltiu      I      14..12=3 6..2=0x04 1..0=3
xori       I      14..12=4 6..2=0x04 1..0=3
ori        I      14..12=6 6..2=0x04 1..0=3
andi       I      14..12=7 6..2=0x04 1..0=3
slli       SH6    31..26=0x00 14..12=1 6..2=0x04 1..0=3
srli       SH6    31..26=0x00 14..12=5 6..2=0x04 1..0=3
srai       SH6    31..26=0x10 14..12=5 6..2=0x04 1..0=3
add        R      31..25=0x00 14..12=0 6..2=0x0C 1..0=3
sub        R      31..25=0x20 14..12=0 6..2=0x0C 1..0=3
sll        R      31..25=0x00 14..12=1 6..2=0x0C 1..0=3
slt        R      31..25=0x00 14..12=2 6..2=0x0C 1..0=3
sltu       R      31..25=0x00 14..12=3 6..2=0x0C 1..0=3
xor        R      31..25=0x00 14..12=4 6..2=0x0C 1..0=3
srl        R      31..25=0x00 14..12=5 6..2=0x0C 1..0=3
sra        R      31..25=0x20 14..12=5 6..2=0x0C 1..0=3
or         R      31..25=0x00 14..12=6 6..2=0x0C 1..0=3
and        R      31..25=0x00 14..12=7 6..2=0x0C 1..0=3
addiw      I      14..12=0 6..2=0x06 1..0=3
slliw      SH5    31..25=0x00 14..12=1 6..2=0x06 1..0=3
srliw      SH5    31..25=0x00 14..12=5 6..2=0x06 1..0=3
sraiw      SH5    31..25=0x20 14..12=5 6..2=0x06 1..0=3
addw       R      31..25=0x00 14..12=0 6..2=0x0E 1..0=3
subw       R      31..25=0x20 14..12=0 6..2=0x0E 1..0=3
sllw       R      31..25=0x00 14..12=1 6..2=0x0E 1..0=3
srlw       R      31..25=0x00 14..12=5 6..2=0x0E 1..0=3
sraw       R      31..25=0x20 14..12=5 6..2=0x0E 1..0=3
# fence ignores fm/pred/succ and rs1/rd (reserved for future use, executed as fence)
fence      FENCE  14..12=0 6..2=0x03 1..0=3
ecall      SYS    31..20=0x000 19..15=0 14..12=0 11..7=0 6..2=0x1C 1..0=3
ebreak     SYS    31..20=0x001 19..15=0 14..12=0 11..7=0 6..2=0x1C 1..0=3
# Zifencei
fence.i    FENCE  14..12=1 6..2=0x03 1..0=3
# Zicsr
csrrw      CSR    14..12=1 6..2=0x1C 1..0=3
csrrs      CSR    14..12=2 6..2=0x1C 1..0=3
csrrc      CSR    14..12=3 6..2=0x1C 1..0=3
csrrwi     CSRI   14..12=5 6..2=0x1C 1..0=3
csrrsi     CSRI   14..12=6 6..2=0x1C 1..0=3
csrrci     CSRI   14..12=7 6..2=0x1C 1..0=3
# M (chapter 7)
mul        R      31..25=0x01 14..12=0 6..2=0x0C 1..0=3
mulh       R      31..25=0x01 14..12=1 6..2=0x0C 1..0=3
mulhsu     R      31..25=0x01 14..12=2 6..2=0x0C 1..0=3
mulhu      R      31..25=0x01 14..12=3 6..2=0x0C 1..0=3
div        R      31..25=0x01 14..12=4 6..2=0x0C 1..0=3
divu       R      31..25=0x01 14..12=5 6..2=0x0C 1..0=3
rem        R      31..25=0x01 14..12=6 6..2=0x0C 1..0=3
remu       R      31..25=0x01 14..12=7 6..2=0x0C 1..0=3
mulw       R      31..25=0x01 14..12=0 6..2=0x0E 1..0=3
divw       R      31..25=0x01 14..12=4 6..2=0x0E 1..0=3
divuw      R      31..25=0x01 14..12=5 6..2=0x0E 1..0=3
remw       R      31..25=0x01 14..12=6 6..2=0x0E 1..0=3
remuw      R      31..25=0x01 14..12=7 6..2=0x0E 1..0=3
# A (chapter 8); bits 26..25 are aq/rl, free
lr.w       LR     31..27=0x02 24..20=0 14..12=2 6..2=0x0B 1..0=3
sc.w       AMO    31..27=0x03 14..12=2 6..2=0x0B 1..0=3
amoswap.w  AMO    31..27=0x01 14..12=2 6..2=0x0B 1..0=3
amoadd.w   AMO    31..27=0x00 14..12=2 6..2=0x0B 1..0=3
amoxor.w   AMO    31..27=0x04 14..12=2 6..2=0x0B 1..0=3
amoand.w   AMO    31..27=0x0C 14..12=2 6..2=0x0B 1..0=3
amoor.w    AMO    31..27=0x08 14..12=2 6..2=0x0B 1..0=3
amomin.w   AMO    31..27=0x10 14..12=2 6..2=0x0B 1..0=3
amomax.w   AMO    31..27=0x14 14..12=2 6..2=0x0B 1..0=3
amominu.w  AMO    31..27=0x18 14..12=2 6..2=0x0B 1..0=3
amomaxu.w  AMO    31..27=0x1C 14..12=2 6..2=0x0B 1..0=3
lr.d       LR     31..27=0x02 24..20=0 14..12=3 6..2=0x0B 1..0=3
sc.d       AMO    31..27=0x03 14..12=3 6..2=0x0B 1..0=3
amoswap.d  AMO    31..27=0x01 14..12=3 6..2=0x0B 1..0=3
amoadd.d   AMO    31..27=0x00 14..12=3 6..2=0x0B 1..0=3
amoxor.d   AMO    31..27=0x04 14..12=3 6..2=0x0B 1..0=3
amoand.d   AMO    31..27=0x0C 14..12=3 6..2=0x0B 1..0=3
amoor.d    AMO    31..27=0x08 14..12=3 6..2=0x0B 1..0=3
amomin.d   AMO    31..27=0x10 14..12=3 6..2=0x0B 1..0=3
amomax.d   AMO    31..27=0x14 14..12=3 6..2=0x0B 1..0=3
amominu.d  AMO    31..27=0x18 14..12=3 6..2=0x0B 1..0=3
amomaxu.d  AMO    31..27=0x1C 14..12=3 6..2=0x0B 1..0=3
# Privileged (privileged spec 3.3, 4.2)
mret       SYS    31..20=0x302 19..15=0 14..12=0 11..7=0 6..2=0x1C 1..0=3
sret       SYS    31..20=0x102 19..15=0 14..12=0 11..7=0 6..2=0x1C 1..0=3
wfi        SYS    31..20=0x105 19..15=0 14..12=0 11..7=0 6..2=0x1C 1..0=3
sfence.vma SFENCE 31..25=0x09 14..12=0 11..7=0 6..2=0x1C 1..0=3
# Hypervisor (privileged spec chapter 9 "H" extension)
hfence.vvma SFENCE 31..25=0x11 14..12=0 11..7=0 6..2=0x1C 1..0=3
hfence.gvma SFENCE 31..25=0x31 14..12=0 11..7=0 6..2=0x1C 1..0=3
hlv.b      HLV    31..25=0x30 24..20=0 14..12=4 6..2=0x1C 1..0=3
hlv.bu     HLV    31..25=0x30 24..20=1 14..12=4 6..2=0x1C 1..0=3
hlv.h      HLV    31..25=0x32 24..20=0 14..12=4 6..2=0x1C 1..0=3
hlv.hu     HLV    31..25=0x32 24..20=1 14..12=4 6..2=0x1C 1..0=3
hlvx.hu    HLV    31..25=0x32 24..20=3 14..12=4 6..2=0x1C 1..0=3
hlv.w      HLV    31..25=0x34 24..20=0 14..12=4 6..2=0x1C 1..0=3
hlv.wu     HLV    31..25=0x34 24..20=1 14..12=4 6..2=0x1C 1..0=3
hlvx.wu    HLV    31..25=0x34 24..20=3 14..12=4 6..2=0x1C 1..0=3
hlv.d      HLV    31..25=0x36 24..20=0 14..12=4 6..2=0x1C 1..0=3
hsv.b      HSV    31..25=0x31 11..7=0 14..12=4 6..2=0x1C 1..0=3
hsv.h      HSV    31..25=0x33 11..7=0 14..12=4 6..2=0x1C 1..0=3
hsv.w      HSV    31..25=0x35 11..7=0 14..12=4 6..2=0x1C 1..0=3
hsv.d      HSV    31..25=0x37 11..7=0 14..12=4 6..2=0x1C 1..0=3
# F and D (unprivileged spec chapters 11 and 12).  FR: rd, rs1, rs2 and a rounding mode in
# 14..12; FR1: rd, rs1 and the rounding mode (rs2 is part of the opcode); FR4: fused
# multiply-add, rs3 in 31..27; FRN: no rounding mode (funct3 selects the operation).
# Bits 26..25 are the format: 0 = S, 1 = D.
flw        I      14..12=2 6..2=0x01 1..0=3
fsw        S      14..12=2 6..2=0x09 1..0=3
fld        I      14..12=3 6..2=0x01 1..0=3
fsd        S      14..12=3 6..2=0x09 1..0=3
fmadd.s    FR4    26..25=0 6..2=0x10 1..0=3
fmsub.s    FR4    26..25=0 6..2=0x11 1..0=3
fnmsub.s   FR4    26..25=0 6..2=0x12 1..0=3
fnmadd.s   FR4    26..25=0 6..2=0x13 1..0=3
fmadd.d    FR4    26..25=1 6..2=0x10 1..0=3
fmsub.d    FR4    26..25=1 6..2=0x11 1..0=3
fnmsub.d   FR4    26..25=1 6..2=0x12 1..0=3
fnmadd.d   FR4    26..25=1 6..2=0x13 1..0=3
fadd.s     FR     31..25=0x00 6..2=0x14 1..0=3
fsub.s     FR     31..25=0x04 6..2=0x14 1..0=3
fmul.s     FR     31..25=0x08 6..2=0x14 1..0=3
fdiv.s     FR     31..25=0x0C 6..2=0x14 1..0=3
fsqrt.s    FR1    31..25=0x2C 24..20=0 6..2=0x14 1..0=3
fsgnj.s    FRN    31..25=0x10 14..12=0 6..2=0x14 1..0=3
fsgnjn.s   FRN    31..25=0x10 14..12=1 6..2=0x14 1..0=3
fsgnjx.s   FRN    31..25=0x10 14..12=2 6..2=0x14 1..0=3
fmin.s     FRN    31..25=0x14 14..12=0 6..2=0x14 1..0=3
fmax.s     FRN    31..25=0x14 14..12=1 6..2=0x14 1..0=3
fcvt.w.s   FR1    31..25=0x60 24..20=0 6..2=0x14 1..0=3
fcvt.wu.s  FR1    31..25=0x60 24..20=1 6..2=0x14 1..0=3
fcvt.l.s   FR1    31..25=0x60 24..20=2 6..2=0x14 1..0=3
fcvt.lu.s  FR1    31..25=0x60 24..20=3 6..2=0x14 1..0=3
fmv.x.w    FR1N   31..25=0x70 24..20=0 14..12=0 6..2=0x14 1..0=3
fclass.s   FR1N   31..25=0x70 24..20=0 14..12=1 6..2=0x14 1..0=3
feq.s      FRN    31..25=0x50 14..12=2 6..2=0x14 1..0=3
flt.s      FRN    31..25=0x50 14..12=1 6..2=0x14 1..0=3
fle.s      FRN    31..25=0x50 14..12=0 6..2=0x14 1..0=3
fcvt.s.w   FR1    31..25=0x68 24..20=0 6..2=0x14 1..0=3
fcvt.s.wu  FR1    31..25=0x68 24..20=1 6..2=0x14 1..0=3
fcvt.s.l   FR1    31..25=0x68 24..20=2 6..2=0x14 1..0=3
fcvt.s.lu  FR1    31..25=0x68 24..20=3 6..2=0x14 1..0=3
fmv.w.x    FR1N   31..25=0x78 24..20=0 14..12=0 6..2=0x14 1..0=3
fadd.d     FR     31..25=0x01 6..2=0x14 1..0=3
fsub.d     FR     31..25=0x05 6..2=0x14 1..0=3
fmul.d     FR     31..25=0x09 6..2=0x14 1..0=3
fdiv.d     FR     31..25=0x0D 6..2=0x14 1..0=3
fsqrt.d    FR1    31..25=0x2D 24..20=0 6..2=0x14 1..0=3
fsgnj.d    FRN    31..25=0x11 14..12=0 6..2=0x14 1..0=3
fsgnjn.d   FRN    31..25=0x11 14..12=1 6..2=0x14 1..0=3
fsgnjx.d   FRN    31..25=0x11 14..12=2 6..2=0x14 1..0=3
fmin.d     FRN    31..25=0x15 14..12=0 6..2=0x14 1..0=3
fmax.d     FRN    31..25=0x15 14..12=1 6..2=0x14 1..0=3
fcvt.s.d   FR1    31..25=0x20 24..20=1 6..2=0x14 1..0=3
fcvt.d.s   FR1    31..25=0x21 24..20=0 6..2=0x14 1..0=3
feq.d      FRN    31..25=0x51 14..12=2 6..2=0x14 1..0=3
flt.d      FRN    31..25=0x51 14..12=1 6..2=0x14 1..0=3
fle.d      FRN    31..25=0x51 14..12=0 6..2=0x14 1..0=3
fclass.d   FR1N   31..25=0x71 24..20=0 14..12=1 6..2=0x14 1..0=3
fcvt.w.d   FR1    31..25=0x61 24..20=0 6..2=0x14 1..0=3
fcvt.wu.d  FR1    31..25=0x61 24..20=1 6..2=0x14 1..0=3
fcvt.l.d   FR1    31..25=0x61 24..20=2 6..2=0x14 1..0=3
fcvt.lu.d  FR1    31..25=0x61 24..20=3 6..2=0x14 1..0=3
fcvt.d.w   FR1    31..25=0x69 24..20=0 6..2=0x14 1..0=3
fcvt.d.wu  FR1    31..25=0x69 24..20=1 6..2=0x14 1..0=3
fcvt.d.l   FR1    31..25=0x69 24..20=2 6..2=0x14 1..0=3
fcvt.d.lu  FR1    31..25=0x69 24..20=3 6..2=0x14 1..0=3
fmv.x.d    FR1N   31..25=0x71 24..20=0 14..12=0 6..2=0x14 1..0=3
fmv.d.x    FR1N   31..25=0x79 24..20=0 14..12=0 6..2=0x14 1..0=3
"""

# Compressed instructions (unprivileged spec chapter 16, RV64C): name, scheme, the base
# instruction they expand to, fixed fields.  RV64 has no C.FLW/C.FSW (those encodings are
# c.ld/c.sd); C.FLD/C.FSD/C.FLDSP/C.FSDSP need D and trap as the FP instruction would.
COMPRESSED_INSTRUCTIONS = """
c.addi4spn  CIW_ADDI4SPN  addi   15..13=0 1..0=0
c.fld       CL_D          fld    15..13=1 1..0=0
c.lw        CL_W          lw     15..13=2 1..0=0
c.ld        CL_D          ld     15..13=3 1..0=0
c.fsd       CS_D          fsd    15..13=5 1..0=0
c.sw        CS_W          sw     15..13=6 1..0=0
c.sd        CS_D          sd     15..13=7 1..0=0
c.addi      CI_ADDI       addi   15..13=0 1..0=1
c.addiw     CI_ADDIW      addiw  15..13=1 1..0=1
c.li        CI_LI         addi   15..13=2 1..0=1
c.addi16sp  CI_ADDI16SP   addi   15..13=3 11..7=2 1..0=1
c.lui       CI_LUI        lui    15..13=3 1..0=1
c.srli      CB_SHIFT      srli   15..13=4 11..10=0 1..0=1
c.srai      CB_SHIFT      srai   15..13=4 11..10=1 1..0=1
c.andi      CB_ANDI       andi   15..13=4 11..10=2 1..0=1
c.sub       CA            sub    15..13=4 12=0 11..10=3 6..5=0 1..0=1
c.xor       CA            xor    15..13=4 12=0 11..10=3 6..5=1 1..0=1
c.or        CA            or     15..13=4 12=0 11..10=3 6..5=2 1..0=1
c.and       CA            and    15..13=4 12=0 11..10=3 6..5=3 1..0=1
c.subw      CA            subw   15..13=4 12=1 11..10=3 6..5=0 1..0=1
c.addw      CA            addw   15..13=4 12=1 11..10=3 6..5=1 1..0=1
c.j         CJ            jal    15..13=5 1..0=1
c.beqz      CB_BRANCH     beq    15..13=6 1..0=1
c.bnez      CB_BRANCH     bne    15..13=7 1..0=1
c.slli      CI_SLLI       slli   15..13=0 1..0=2
c.fldsp     CI_FLDSP      fld    15..13=1 1..0=2
c.lwsp      CI_LWSP       lw     15..13=2 1..0=2
c.ldsp      CI_LDSP       ld     15..13=3 1..0=2
c.jr        CR_JR         jalr   15..13=4 12=0 6..2=0 1..0=2
c.mv        CR_MV         add    15..13=4 12=0 1..0=2
c.ebreak    CR_NONE       ebreak 15..13=4 12=1 11..7=0 6..2=0 1..0=2
c.jalr      CR_JALR       jalr   15..13=4 12=1 6..2=0 1..0=2
c.add       CR_ADD        add    15..13=4 12=1 1..0=2
c.fsdsp     CSS_D         fsd    15..13=5 1..0=2
c.swsp      CSS_W         sw     15..13=6 1..0=2
c.sdsp      CSS_D         sd     15..13=7 1..0=2
"""

FORMATS = (
    "R",
    "I",
    "S",
    "B",
    "U",
    "J",
    "SH6",
    "SH5",
    "CSR",
    "CSRI",
    "AMO",
    "LR",
    "FENCE",
    "SYS",
    "SFENCE",
    "HLV",
    "HSV",
    "FR",
    "FR1",
    "FRN",
    "FR1N",
    "FR4",
)

# Operand schemes of compressed instructions, with the constraints the spec puts on them
# (encodings that break a constraint are reserved; HINT encodings are legal and executed).
SCHEMES = (
    "CIW_ADDI4SPN",
    "CL_W",
    "CL_D",
    "CS_W",
    "CS_D",
    "CI_ADDI",
    "CI_ADDIW",
    "CI_LI",
    "CI_ADDI16SP",
    "CI_LUI",
    "CB_SHIFT",
    "CB_ANDI",
    "CA",
    "CJ",
    "CB_BRANCH",
    "CI_SLLI",
    "CI_LWSP",
    "CI_LDSP",
    "CR_JR",
    "CR_MV",
    "CR_NONE",
    "CR_JALR",
    "CR_ADD",
    "CSS_W",
    "CSS_D",
    "CI_FLDSP",
)

Format = IntEnum("Format", FORMATS, start=0)  # type: ignore[misc]
Scheme = IntEnum("Scheme", SCHEMES, start=0)  # type: ignore[misc]


@dataclass(frozen=True)
class Encoding:
    """One instruction encoding: bits where ``insn & mask == match`` identify it."""

    name: str
    operands: str  # a Format name (base) or a Scheme name (compressed)
    mask: int
    match: int
    length: int  # 4 or 2 bytes
    expands_to: str | None = None  # compressed only: the base instruction


_FIELD = re.compile(r"^(\d+)(?:\.\.(\d+))?=(0x[0-9a-fA-F]+|\d+)$")


def _fields_to_mask_match(name: str, fields: list[str], width: int) -> tuple[int, int]:
    mask = match = 0
    for field in fields:
        found = _FIELD.match(field)
        if not found:
            raise ValueError(f"{name}: bad field {field!r}")
        hi = int(found.group(1))
        lo = int(found.group(2)) if found.group(2) is not None else hi
        value = int(found.group(3), 0)
        if not (width > hi >= lo >= 0) or value >> (hi - lo + 1):
            raise ValueError(f"{name}: field {field!r} does not fit")
        bits = ((1 << (hi - lo + 1)) - 1) << lo
        if mask & bits:
            raise ValueError(f"{name}: field {field!r} overlaps another field")
        mask |= bits
        match |= value << lo
    return mask, match


def _parse_base(text: str) -> list[Encoding]:
    encodings = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, fmt, *fields = line.split()
        if fmt not in FORMATS:
            raise ValueError(f"{name}: unknown format {fmt}")
        mask, match = _fields_to_mask_match(name, fields, 32)
        encodings.append(Encoding(name, fmt, mask, match, 4))
    return encodings


def _parse_compressed(text: str) -> list[Encoding]:
    encodings = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, scheme, target, *fields = line.split()
        if scheme not in SCHEMES:
            raise ValueError(f"{name}: unknown scheme {scheme}")
        mask, match = _fields_to_mask_match(name, fields, 16)
        encodings.append(Encoding(name, scheme, mask, match, 2, target))
    return encodings


BASE = _parse_base(BASE_INSTRUCTIONS)
COMPRESSED = _parse_compressed(COMPRESSED_INSTRUCTIONS)
BY_NAME = {e.name: e for e in BASE + COMPRESSED}

if len(BY_NAME) != len(BASE) + len(COMPRESSED):
    raise ValueError("duplicate instruction name in the encoding tables")
for _c in COMPRESSED:
    if _c.expands_to not in BY_NAME or BY_NAME[_c.expands_to].length != 4:
        raise ValueError(f"{_c.name}: expands to unknown base instruction {_c.expands_to}")


def _op_name(mnemonic: str) -> str:
    return mnemonic.upper().replace(".", "_")


# Instruction ids the kernel dispatches on.  ILLEGAL is 0 so that a zeroed decode-cache
# entry can never execute as something real.
Op = IntEnum("Op", ["ILLEGAL"] + [_op_name(e.name) for e in BASE], start=0)  # type: ignore[misc]


def op_of(mnemonic: str) -> int:
    """The :class:`Op` id of a base instruction mnemonic (``"addi"``)."""
    return int(Op[_op_name(mnemonic)])


def check_overlaps(encodings: list[Encoding], allowed: set[frozenset[str]]) -> None:
    """Refuse two encodings that can match the same bits, unless declared (like riscv-opcodes).

    Two encodings overlap when they agree on every bit both fix.  Declared overlaps are the
    ones the spec itself creates (c.jr inside c.mv's pattern, ...), resolved by the decoder
    trying the more specific (more fixed bits) encoding first.
    """
    for i, a in enumerate(encodings):
        for b in encodings[i + 1 :]:
            common = a.mask & b.mask
            if (a.match & common) == (b.match & common):
                if frozenset((a.name, b.name)) not in allowed:
                    raise ValueError(f"encodings {a.name} and {b.name} overlap")


# Overlaps that the C chapter defines: the more specific encoding wins.
ALLOWED_COMPRESSED_OVERLAPS = {
    frozenset(p)
    for p in [
        ("c.addi16sp", "c.lui"),
        ("c.jr", "c.mv"),
        ("c.ebreak", "c.jalr"),
        ("c.ebreak", "c.add"),
        ("c.jalr", "c.add"),
    ]
}

check_overlaps(BASE, set())
check_overlaps(COMPRESSED, ALLOWED_COMPRESSED_OVERLAPS)

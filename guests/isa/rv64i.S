/*
 * rv64i.S - self-checking test of the RV64I base instructions and Zifencei.
 *
 * Covers: lui auipc jal jalr beq bne blt bge bltu bgeu addi slti sltiu
 * xori ori andi slli srli srai add sub sll slt sltu xor srl sra or and
 * addiw slliw srliw sraiw addw subw sllw srlw sraw: overflow, sign
 * extension of the W forms, shift amounts 0/31/32/63 and masking of the
 * shift amount, x0 as source and destination, rd == rs1/rs2.
 * Loads/stores, fences, fence.i and all registers: rv64i_mem.S.
 * ecall/ebreak: mtraps.S.
 *
 * Exit 0 = pass, otherwise the number of the first failing test.
 */
#include "test.h"

    .option norvc           /* test the 32-bit encodings */

RVH_TEST_BEGIN(rv64i)

    /* ---------------- add / sub ---------------- */
    TEST_RR(1, add, 0, 0, 0)
    TEST_RR(2, add, 3, 1, 2)
    TEST_RR(3, add, 0, -1, 1)
    TEST_RR(4, add, 0x8000000000000000, 0x7fffffffffffffff, 1)
    TEST_RR(5, add, 0x100000000, 0xffffffff, 1)
    TEST_RR(6, add, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR_SRC1_EQ_DEST(7, add, 24, 13, 11)
    TEST_RR_SRC2_EQ_DEST(8, add, 25, 14, 11)
    TEST_RR_SRC12_EQ_DEST(9, add, 26, 13)
    TEST_RR_ZERO_SRC1(10, add, 15, 15)
    TEST_RR_ZERO_SRC2(11, add, 32, 32)
    TEST_RR_ZERO_DEST(12, add, 16, 30)
    TEST_RR(13, sub, 0xffffffffffffffff, 0, 1)
    TEST_RR(14, sub, 0x7fffffffffffffff, 0x8000000000000000, 1)
    TEST_RR(15, sub, 0x8000000000000001, 0, 0x7fffffffffffffff)
    TEST_RR(16, sub, 0xffffffff00000000, 0, 0x100000000)
    TEST_RR_SRC12_EQ_DEST(17, sub, 0, 0x1234)
    TEST_RR_ZERO_SRC1(18, sub, -7, 7)
    TEST_RR_ZERO_DEST(19, sub, 16, 30)

    /* ---------------- addi / slti / sltiu / logic imm ---------------- */
    TEST_RI(20, addi, 0x7ff, 0, 2047)
    TEST_RI(21, addi, -2048, 0, -2048)
    TEST_RI(22, addi, 0x8000000000000000, 0x7fffffffffffffff, 1)
    TEST_RI(23, addi, 0x7fffffffffffffff, 0x8000000000000000, -1)
    TEST_RI(24, addi, 0x100000000, 0xffffffff, 1)
    TEST_RI_SRC1_EQ_DEST(25, addi, 24, 13, 11)
    TEST_RI_ZERO_DEST(26, addi, 5, 7)
    TEST_RI(27, slti, 1, -1, 0)
    TEST_RI(28, slti, 0, 0, -1)
    TEST_RI(29, slti, 0, 5, 5)
    TEST_RI(30, slti, 1, 0x8000000000000000, -2048)
    TEST_RI(31, slti, 0, 0x7fffffffffffffff, 2047)
    TEST_RI(32, sltiu, 1, 0, 1)          /* seqz */
    TEST_RI(33, sltiu, 0, 1, 1)
    TEST_RI(34, sltiu, 1, 0, -1)         /* imm sign-extended to 2^64-1 */
    TEST_RI(35, sltiu, 0, -1, -1)
    TEST_RI(36, sltiu, 1, 0xfffffffffffffffe, -1)
    TEST_RI(37, sltiu, 0, 0x800, 0x7ff)
    TEST_RI(38, xori, 0xffffffffffffff0f, 0xf0, -1)   /* not */
    TEST_RI(39, xori, 0x00ff00ff00ff0f0f, 0x00ff00ff00ff08f0, 0x7ff)
    TEST_RI(40, xori, 0xff00ff00ff00f0f0, 0x00ff00ff00ff08f0, -0x800)
    TEST_RI(41, ori, 0xfffffffffffffff0, 0x00000000ff008ff0, -0x100 + 0xf0)
    TEST_RI(42, ori, 0x00ff00ff00ff0fff, 0x00ff00ff00ff08f0, 0x70f)
    TEST_RI(43, andi, 0x00ff00ff00ff08f0, 0x00ff00ff00ff08f0, -1)
    TEST_RI(44, andi, 0x0f0, 0x00ff00ff00ff08f0, 0x0f0)
    TEST_RI(45, andi, 0x00ff00ff00ff0800, 0x00ff00ff00ff08f0, -0x800)
    TEST_RI_SRC1_EQ_DEST(46, andi, 0x0700, 0xff00ff00ff00ff00, 0x70f)

    /* ---------------- slt / sltu / logic ---------------- */
    TEST_RR(47, slt, 0, 0, 0)
    TEST_RR(48, slt, 1, -1, 0)
    TEST_RR(49, slt, 0, 0, -1)
    TEST_RR(50, slt, 1, 0x8000000000000000, 0x7fffffffffffffff)
    TEST_RR(51, slt, 0, 0x7fffffffffffffff, 0x8000000000000000)
    TEST_RR_ZERO_SRC1(52, slt, 1, 5)       /* sgtz */
    TEST_RR(53, sltu, 0, -1, 0)
    TEST_RR(54, sltu, 1, 0, -1)
    TEST_RR(55, sltu, 0, 0x8000000000000000, 0x7fffffffffffffff)
    TEST_RR(56, sltu, 1, 0xfffffffffffffffe, 0xffffffffffffffff)
    TEST_RR_ZERO_SRC1(57, sltu, 1, 3)      /* snez */
    TEST_RR_ZERO_SRC1(58, sltu, 0, 0)
    TEST_RR_ZERO_DEST(59, sltu, 1, 2)
    TEST_RR(60, xor, 0xf00ff00ff00ff00f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
    TEST_RR_SRC12_EQ_DEST(61, xor, 0, 0x1234)
    TEST_RR(62, or, 0xff0fff0fff0fff0f, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
    TEST_RR(63, and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0f0f0f0f0f0f0f0f)
    TEST_RR_ZERO_DEST(64, and, -1, -1)

    /* ---------------- shifts ---------------- */
    TEST_RR(65, sll, 0x8000000000000001, 0x8000000000000001, 0)
    TEST_RR(66, sll, 0x0000000000000002, 0x8000000000000001, 1)
    TEST_RR(67, sll, 0x0000000080000000, 1, 31)
    TEST_RR(68, sll, 0x0000000100000000, 1, 32)
    TEST_RR(69, sll, 0x8000000000000000, 1, 63)
    TEST_RR(70, sll, 0x1234, 0x1234, 64)           /* only rs2[5:0] counts */
    TEST_RR(71, sll, 0x8000000000000000, 1, -1)
    TEST_RR(72, sll, 0x2468, 0x1234, 0xffffffffffffffc1)
    TEST_RR(73, srl, 0x8000000000000000, 0x8000000000000000, 0)
    TEST_RR(74, srl, 0x4000000000000000, 0x8000000000000000, 1)
    TEST_RR(75, srl, 0x0000000100000000, 0x8000000000000000, 31)
    TEST_RR(76, srl, 0x0000000080000000, 0x8000000000000000, 32)
    TEST_RR(77, srl, 1, 0x8000000000000000, 63)
    TEST_RR(78, srl, 0x7fffffffffffffff, -1, 65)
    TEST_RR(79, sra, 0x8000000000000000, 0x8000000000000000, 0)
    TEST_RR(80, sra, 0xc000000000000000, 0x8000000000000000, 1)
    TEST_RR(81, sra, 0xffffffff00000000, 0x8000000000000000, 31)
    TEST_RR(82, sra, 0xffffffff80000000, 0x8000000000000000, 32)
    TEST_RR(83, sra, -1, 0x8000000000000000, 63)
    TEST_RR(84, sra, 0x0000000000ffffff, 0x7fffffffffffffff, 39)
    TEST_RR(85, sra, 0xffffffffffffffff, 0x8000000000000000, -1)
    TEST_RR_SRC12_EQ_DEST(86, sll, 0x18000000, 0x18)   /* 24 << 24 */
    TEST_RR_ZERO_DEST(87, sra, -1, 3)
    TEST_RI(88, slli, 0x8000000000000001, 0x8000000000000001, 0)
    TEST_RI(89, slli, 0xfffffffe00000000, 0xffffffffffffffff, 33)
    TEST_RI(90, slli, 0x0000000080000000, 1, 31)
    TEST_RI(91, slli, 0x0000000100000000, 1, 32)
    TEST_RI(92, slli, 0x8000000000000000, 0xffffffffffffffff, 63)
    TEST_RI(93, srli, 0x8000000000000000, 0x8000000000000000, 0)
    TEST_RI(94, srli, 0x0000000100000000, 0x8000000000000000, 31)
    TEST_RI(95, srli, 0x00000000ffffffff, 0xffffffffffffffff, 32)
    TEST_RI(96, srli, 1, 0xffffffffffffffff, 63)
    TEST_RI(97, srai, 0x8000000000000000, 0x8000000000000000, 0)
    TEST_RI(98, srai, 0xffffffff00000000, 0x8000000000000000, 31)
    TEST_RI(99, srai, 0xffffffff80000000, 0x8000000000000000, 32)
    TEST_RI(100, srai, -1, 0x8000000000000000, 63)
    TEST_RI(101, srai, 0, 0x7fffffffffffffff, 63)
    TEST_RI_ZERO_DEST(102, srai, -1, 3)

    /* ---------------- 32-bit (W) operations ---------------- */
    TEST_RR(103, addw, 0xffffffff80000000, 0x7fffffff, 1)        /* overflow, sign-ext */
    TEST_RR(104, addw, 0x23456789, 0x0000000123456789, 0)       /* upper bits ignored */
    TEST_RR(105, addw, 0, 0xffffffffffffffff, 1)
    TEST_RR(106, addw, 0xfffffffffffffffe, 0x00000000ffffffff, 0x00000000ffffffff)
    TEST_RR(107, addw, 0x7fffffff, 0xffffffff80000000, -1)
    TEST_RR_ZERO_DEST(108, addw, 1, 2)
    TEST_RR(109, subw, 0xffffffff80000000, 0, 0x80000000)
    TEST_RR(110, subw, 0x7fffffff, 0x80000000, 1)
    TEST_RR(111, subw, 0xffffffffffffffff, 0x100000000, 1)
    TEST_RR(112, subw, 0, 0x1234567800000000, 0x8765432100000000)
    TEST_RI(113, addiw, 0xffffffff80000000, 0x7fffffff, 1)
    TEST_RI(114, addiw, 0xffffffffffffffff, 0x00000000ffffffff, 0) /* sext.w */
    TEST_RI(115, addiw, 0xffffffff80000000, 0x0000000080000000, 0)
    TEST_RI(116, addiw, 0, 0x100000000, 0)
    TEST_RI(117, addiw, 0x7ff, 0x123400000000, 2047)
    TEST_RI(118, addiw, 0x7fffffff, 0x80000000, -1)
    TEST_RI(119, addiw, -2048, 0, -2048)
    TEST_RI_ZERO_DEST(120, addiw, 1, 1)
    TEST_RR(121, sllw, 0xffffffff80000000, 1, 31)
    TEST_RR(122, sllw, 1, 1, 32)                                 /* only rs2[4:0] */
    TEST_RR(123, sllw, 0x12345678, 0xabcdef0012345678, 0)
    TEST_RR(124, sllw, 0xffffffff87654320, 0x0000000018765432, 4)
    TEST_RR(125, sllw, 0xffffffff80000000, 0xffffffff, 63)                        /* shamt 31 */
    TEST_RR(126, srlw, 0xffffffff80000000, 0x80000000, 0)        /* result sign-ext */
    TEST_RR(127, srlw, 0x40000000, 0xffffffff80000000, 1)
    TEST_RR(128, srlw, 1, 0x80000000, 31)
    TEST_RR(129, srlw, 0xffffffff80000000, 0x1234567880000000, 32)
    TEST_RR(130, srlw, 0x00ffffff, 0xffffffffffffffff, 8)
    TEST_RR(131, sraw, 0xffffffffffffffff, 0x80000000, 31)
    TEST_RR(132, sraw, 0x7fffffff, 0x000000017fffffff, 0)       /* upper bits ignored */
    TEST_RR(133, sraw, 0xfffffffff8000000, 0x0000000080000000, 4)
    TEST_RR(134, sraw, 0x07ffffff, 0xffffffff7fffffff, 36)       /* shamt 4 */
    TEST_RR_ZERO_DEST(135, sraw, -1, 1)
    TEST_RI(136, slliw, 0xffffffff80000000, 1, 31)
    TEST_RI(137, slliw, 0xffffffffabcdef00, 0x12345678abcdef00, 0)
    TEST_RI(138, slliw, 0x10, 0xffffffff00000001, 4)
    TEST_RI(139, srliw, 0xffffffffffffffff, 0x00000000ffffffff, 0)
    TEST_RI(140, srliw, 1, 0xffffffffffffffff, 31)
    TEST_RI(141, srliw, 0x7fffffff, 0x12345678ffffffff, 1)
    TEST_RI(142, sraiw, 0xffffffffffffffff, 0x80000000, 31)
    TEST_RI(143, sraiw, 0x7fffffff, 0x800000007fffffff, 0)
    TEST_RI(144, sraiw, 0xfffffffff8000000, 0x80000000, 4)

    /* ---------------- lui / auipc ---------------- */
    TEST_I(145, lui, 0, 0)
    TEST_I(146, lui, 0x7ffff000, 0x7ffff)
    TEST_I(147, lui, 0xffffffff80000000, 0x80000)              /* sign-extended */
    TEST_I(148, lui, 0xfffffffffffff000, 0xfffff)
    SET_TESTNUM(149)
    lui x0, 0x12345
    CHECK_EQ(x0, 0)
    SET_TESTNUM(150)
1:  auipc a0, 0
    la t0, 1b
    ASSERT_EQ(a0, t0)
    SET_TESTNUM(151)
1:  auipc a0, 0x80000                   /* pc - 2^31 */
    la t0, 1b
    sub a0, a0, t0
    CHECK_EQ(a0, 0xffffffff80000000)
    SET_TESTNUM(152)
1:  auipc a0, 0x7ffff                   /* pc + 0x7ffff000 */
    la t0, 1b
    sub a0, a0, t0
    CHECK_EQ(a0, 0x7ffff000)
    SET_TESTNUM(153)
    auipc x0, 1
    CHECK_EQ(x0, 0)

    /* ---------------- jal / jalr ---------------- */
    SET_TESTNUM(154)
    jal a0, 1f
2:  j rvh_fail
1:  la t0, 2b
    ASSERT_EQ(a0, t0)
    SET_TESTNUM(155)                     /* backward jal */
    j 2f
1:  jal a0, 3f
    j rvh_fail
2:  jal x0, 1b
3:  la t0, 1b + 4
    ASSERT_EQ(a0, t0)
    SET_TESTNUM(156)
    la t0, 1f
    jalr a0, 0(t0)
2:  j rvh_fail
1:  la t1, 2b
    ASSERT_EQ(a0, t1)
    SET_TESTNUM(157)                     /* positive offset */
    la t0, 1f
    addi t0, t0, -2000
    jalr a0, 2000(t0)
    j rvh_fail
1:
    SET_TESTNUM(158)                     /* negative offset */
    la t0, 1f
    addi t0, t0, 2047
    jalr a0, -2047(t0)
    j rvh_fail
1:
    SET_TESTNUM(159)                     /* rd == rs1: target uses the old value */
    la a0, 1f
    jalr a0, 0(a0)
2:  j rvh_fail
1:  la t0, 2b
    ASSERT_EQ(a0, t0)
    SET_TESTNUM(160)                     /* bit 0 of the target is cleared */
    la t0, 1f
    jalr a0, 1(t0)
    j rvh_fail
1:
    SET_TESTNUM(161)
    la t0, 1f
    addi t0, t0, 3
    jalr a0, -2(t0)
    j rvh_fail
1:
    SET_TESTNUM(162)                     /* rd = x0 */
    la t0, 1f
    jalr x0, 0(t0)
    j rvh_fail
1:  CHECK_EQ(x0, 0)
    SET_TESTNUM(163)                     /* call/ret */
    call leaf_func
    CHECK_EQ(a0, 0x5a5a)
    SET_TESTNUM(164)
    jal x0, 1f
    j rvh_fail
1:  CHECK_EQ(x0, 0)

    /* ---------------- branches ---------------- */
    TEST_BR_TAKEN(165, beq, 0, 0)
    TEST_BR_TAKEN(166, beq, -1, -1)
    TEST_BR_NOTTAKEN(167, beq, 0, 1)
    TEST_BR_NOTTAKEN(168, beq, 0x100000000, 0)
    TEST_BR_TAKEN(169, bne, 0, 1)
    TEST_BR_TAKEN(170, bne, 0x8000000000000000, 0)
    TEST_BR_NOTTAKEN(171, bne, -1, -1)
    TEST_BR_TAKEN(172, blt, -1, 0)
    TEST_BR_TAKEN(173, blt, 0x8000000000000000, 0x7fffffffffffffff)
    TEST_BR_NOTTAKEN(174, blt, 0, -1)
    TEST_BR_NOTTAKEN(175, blt, 5, 5)
    TEST_BR_TAKEN(176, bge, 5, 5)
    TEST_BR_TAKEN(177, bge, 0, -1)
    TEST_BR_TAKEN(178, bge, 0x7fffffffffffffff, 0x8000000000000000)
    TEST_BR_NOTTAKEN(179, bge, -1, 0)
    TEST_BR_TAKEN(180, bltu, 0, -1)
    TEST_BR_TAKEN(181, bltu, 0x7fffffffffffffff, 0x8000000000000000)
    TEST_BR_NOTTAKEN(182, bltu, -1, 0)
    TEST_BR_NOTTAKEN(183, bltu, 7, 7)
    TEST_BR_TAKEN(184, bgeu, -1, 0)
    TEST_BR_TAKEN(185, bgeu, 7, 7)
    TEST_BR_NOTTAKEN(186, bgeu, 0, -1)
    TEST_BR_NOTTAKEN(187, bgeu, 0x7fffffffffffffff, 0x8000000000000000)
    SET_TESTNUM(188)                     /* backward loop: sum 1..10 */
    li a0, 0
    li a1, 10
1:  add a0, a0, a1
    addi a1, a1, -1
    bnez a1, 1b
    CHECK_EQ(a0, 55)

RVH_TEST_END

    .text
    CODE_ALIGN(4)
leaf_func:
    li a0, 0x5a5a
    ret

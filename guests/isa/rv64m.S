/*
 * rv64m.S - self-checking test of the M extension on RV64.
 *
 * Covers: mul mulh mulhsu mulhu div divu rem remu mulw divw divuw remw remuw
 * with signed/unsigned edge values, negative operands of the high multiplies,
 * division by zero and signed overflow for every div/rem variant, sign
 * extension of the W results and the ignored upper operand bits, x0 as
 * source/destination, rd == rs1/rs2.
 * Expected values were computed from the ISA manual's definitions.
 *
 * Exit 0 = pass, otherwise the number of the first failing test.
 */
#include "test.h"

    .option norvc

RVH_TEST_BEGIN(rv64m)

    /* ---------------- mul ---------------- */
    TEST_RR(1, mul, 0x0, 0x0, 0x0)
    TEST_RR(2, mul, 0x15, 0x3, 0x7)
    TEST_RR(3, mul, 0xffffffffffffffeb, 0xfffffffffffffffd, 0x7)
    TEST_RR(4, mul, 0x1, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(5, mul, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)     /* overflow: wraps to itself */
    TEST_RR(6, mul, 0xfffffffffffffffe, 0x7fffffffffffffff, 0x2)
    TEST_RR(7, mul, 0x236d88fe5618cf00, 0x123456789abcdef0, 0xfedcba9876543210)     /* low 64 bits only */
    TEST_RR(8, mul, 0xfffffffe00000001, 0xffffffff, 0xffffffff)
    /* ---------------- mulh (signed x signed) ---------------- */
    TEST_RR(9, mulh, 0x0, 0x3, 0x7)
    TEST_RR(10, mulh, 0x0, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(11, mulh, 0xffffffffffffffff, 0xffffffffffffffff, 0x1)
    TEST_RR(12, mulh, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000)
    TEST_RR(13, mulh, 0xc000000000000000, 0x8000000000000000, 0x7fffffffffffffff)
    TEST_RR(14, mulh, 0x3fffffffffffffff, 0x7fffffffffffffff, 0x7fffffffffffffff)
    TEST_RR(15, mulh, 0x0, 0x8000000000000000, 0xffffffffffffffff)
    TEST_RR(16, mulh, 0xffffffffffffffff, 0xfffffffffffffffe, 0x4000000000000000)
    TEST_RR(17, mulh, 0xffeb49923cc09532, 0x123456789abcdef0, 0xfedcba9876543210)
    /* ---------------- mulhsu (signed x unsigned) ---------------- */
    TEST_RR(18, mulhsu, 0x0, 0x3, 0x7)
    TEST_RR(19, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff)  /* -1 * (2^64-1) */
    TEST_RR(20, mulhsu, 0xfffffffffffffffe, 0xfffffffffffffffe, 0xffffffffffffffff)
    TEST_RR(21, mulhsu, 0x0, 0x1, 0xffffffffffffffff)
    TEST_RR(22, mulhsu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)
    TEST_RR(23, mulhsu, 0xc000000000000000, 0x8000000000000000, 0x8000000000000000)
    TEST_RR(24, mulhsu, 0x7ffffffffffffffe, 0x7fffffffffffffff, 0xffffffffffffffff)
    TEST_RR(25, mulhsu, 0xffffffffffffffff, 0xffffffffffffffff, 0x1)
    TEST_RR(26, mulhsu, 0x121fa00ad77d7422, 0x123456789abcdef0, 0xfedcba9876543210)
    /* ---------------- mulhu (unsigned x unsigned) ---------------- */
    TEST_RR(27, mulhu, 0x0, 0x3, 0x7)
    TEST_RR(28, mulhu, 0xfffffffffffffffe, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(29, mulhu, 0x1, 0xffffffffffffffff, 0x2)
    TEST_RR(30, mulhu, 0x1, 0x8000000000000000, 0x2)
    TEST_RR(31, mulhu, 0x4000000000000000, 0x8000000000000000, 0x8000000000000000)
    TEST_RR(32, mulhu, 0x121fa00ad77d7422, 0x123456789abcdef0, 0xfedcba9876543210)
    /* ---------------- mulw ---------------- */
    TEST_RR(33, mulw, 0x15, 0x3, 0x7)
    TEST_RR(34, mulw, 0xfffffffffffffffe, 0x7fffffff, 0x2)                           /* result sign-extended */
    TEST_RR(35, mulw, 0x6, 0x100000003, 0x200000002)                                 /* upper operand bits ignored */
    TEST_RR(36, mulw, 0x1, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(37, mulw, 0xffffffff80000000, 0x80000000, 0xffffffffffffffff)
    TEST_RR(38, mulw, 0x0, 0x10000, 0x10000)                                         /* 2^32 -> 0 */
    TEST_RR(39, mulw, 0x242d2080, 0x12345678, 0x9abcdef0)
    /* ---------------- div ---------------- */
    TEST_RR(40, div, 0x3, 0x14, 0x6)
    TEST_RR(41, div, 0xfffffffffffffffd, 0xffffffffffffffec, 0x6)                    /* truncates toward zero */
    TEST_RR(42, div, 0xfffffffffffffffd, 0x14, 0xfffffffffffffffa)
    TEST_RR(43, div, 0x3, 0xffffffffffffffec, 0xfffffffffffffffa)
    TEST_RR(44, div, 0x0, 0x0, 0x5)
    TEST_RR(45, div, 0xffffffffffffffff, 0x7, 0x0)                                   /* division by zero: -1 */
    TEST_RR(46, div, 0xffffffffffffffff, 0xfffffffffffffff9, 0x0)
    TEST_RR(47, div, 0xffffffffffffffff, 0x0, 0x0)
    TEST_RR(48, div, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)     /* overflow: -2^63 */
    TEST_RR(49, div, 0x8000000000000000, 0x8000000000000000, 0x1)
    TEST_RR(50, div, 0xc000000000000000, 0x8000000000000000, 0x2)
    /* ---------------- divu ---------------- */
    TEST_RR(51, divu, 0x3, 0x14, 0x6)
    TEST_RR(52, divu, 0x2aaaaaaaaaaaaaa7, 0xffffffffffffffec, 0x6)
    TEST_RR(53, divu, 0xffffffffffffffff, 0xffffffffffffffff, 0x1)
    TEST_RR(54, divu, 0x1, 0xffffffffffffffff, 0xffffffffffffffff)
    TEST_RR(55, divu, 0xffffffffffffffff, 0x7, 0x0)                                  /* division by zero: 2^64-1 */
    TEST_RR(56, divu, 0xffffffffffffffff, 0x0, 0x0)
    TEST_RR(57, divu, 0x0, 0x8000000000000000, 0xffffffffffffffff)
    /* ---------------- rem ---------------- */
    TEST_RR(58, rem, 0x2, 0x14, 0x6)
    TEST_RR(59, rem, 0xfffffffffffffffe, 0xffffffffffffffec, 0x6)                    /* sign of the dividend */
    TEST_RR(60, rem, 0x2, 0x14, 0xfffffffffffffffa)
    TEST_RR(61, rem, 0xfffffffffffffffe, 0xffffffffffffffec, 0xfffffffffffffffa)
    TEST_RR(62, rem, 0x7, 0x7, 0x0)                                                  /* division by zero: dividend */
    TEST_RR(63, rem, 0xfffffffffffffff9, 0xfffffffffffffff9, 0x0)
    TEST_RR(64, rem, 0x0, 0x8000000000000000, 0xffffffffffffffff)                    /* overflow: 0 */
    TEST_RR(65, rem, 0xfffffffffffffffe, 0x8000000000000000, 0x3)
    /* ---------------- remu ---------------- */
    TEST_RR(66, remu, 0x2, 0x14, 0x6)
    TEST_RR(67, remu, 0x2, 0xffffffffffffffec, 0x6)
    TEST_RR(68, remu, 0x7, 0x7, 0x0)                                                 /* division by zero: dividend */
    TEST_RR(69, remu, 0xffffffffffffffff, 0xffffffffffffffff, 0x0)
    TEST_RR(70, remu, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffff)
    /* ---------------- divw ---------------- */
    TEST_RR(71, divw, 0x3, 0x14, 0x6)
    TEST_RR(72, divw, 0xfffffffffffffffd, 0xffffffffffffffec, 0x6)
    TEST_RR(73, divw, 0xfffffffffffffffd, 0x14, 0xfffffffffffffffa)
    TEST_RR(74, divw, 0x3, 0x100000014, 0x6)                                         /* upper operand bits ignored */
    TEST_RR(75, divw, 0xfffffffffffffffc, 0xfffffff0, 0x4)                           /* -16 / 4 (bit 31 is the sign) */
    TEST_RR(76, divw, 0xffffffffffffffff, 0x7, 0x0)                                  /* division by zero: -1 */
    TEST_RR(77, divw, 0xffffffffffffffff, 0x7, 0x100000000)                          /* divisor is 0 in 32 bits */
    TEST_RR(78, divw, 0xffffffff80000000, 0x80000000, 0xffffffffffffffff)            /* overflow: -2^31 sign-extended */
    TEST_RR(79, divw, 0xffffffff80000000, 0xffffffff80000000, 0xffffffff)
    TEST_RR(80, divw, 0xffffffff80000000, 0x80000000, 0x1)
    /* ---------------- divuw ---------------- */
    TEST_RR(81, divuw, 0x3, 0x14, 0x6)
    TEST_RR(82, divuw, 0xffffffffffffffff, 0xffffffff, 0x1)                          /* result sign-extended */
    TEST_RR(83, divuw, 0xffffffff80000000, 0x80000000, 0x1)
    TEST_RR(84, divuw, 0x2aaaaaa7, 0xffffffffffffffec, 0x6)
    TEST_RR(85, divuw, 0xffffffffffffffff, 0x7, 0x0)                                 /* division by zero: sign-extended 2^32-1 */
    TEST_RR(86, divuw, 0xffffffffffffffff, 0x123456789, 0x100000000)
    TEST_RR(87, divuw, 0x0, 0xfffffffe, 0xffffffff)
    /* ---------------- remw ---------------- */
    TEST_RR(88, remw, 0x2, 0x14, 0x6)
    TEST_RR(89, remw, 0xfffffffffffffffe, 0xffffffffffffffec, 0x6)
    TEST_RR(90, remw, 0x2, 0x14, 0xfffffffffffffffa)
    TEST_RR(91, remw, 0x0, 0x80000000, 0xffffffffffffffff)                           /* overflow: 0 */
    TEST_RR(92, remw, 0xffffffff80000000, 0x180000000, 0x0)                          /* division by zero: sign-extended low word */
    TEST_RR(93, remw, 0x7fffffff, 0x7fffffff, 0x0)
    TEST_RR(94, remw, 0x2, 0x100000014, 0x100000006)
    /* ---------------- remuw ---------------- */
    TEST_RR(95, remuw, 0x2, 0x14, 0x6)
    TEST_RR(96, remuw, 0xf, 0xffffffff, 0x10)
    TEST_RR(97, remuw, 0xffffffff80000000, 0x180000000, 0x0)                         /* division by zero: sign-extended low word */
    TEST_RR(98, remuw, 0x12345678, 0x12345678, 0x0)
    TEST_RR(99, remuw, 0x2, 0xffffffffffffffec, 0x6)
    TEST_RR(100, remuw, 0xfffffffffffffffe, 0xfffffffe, 0xffffffff)                   /* result sign-extended */

    /* ---------------- register corner cases ---------------- */
    TEST_RR_SRC1_EQ_DEST(101, mul, 143, 13, 11)
    TEST_RR_SRC2_EQ_DEST(102, mulhu, 0xfffffffffffffffe, -1, -1)
    TEST_RR_SRC12_EQ_DEST(103, mulh, 0x4000000000000000, 0x8000000000000000)
    TEST_RR_SRC1_EQ_DEST(104, div, 0xfffffffffffffffd, -20, 6)
    TEST_RR_SRC2_EQ_DEST(105, remu, 2, 20, 6)
    TEST_RR_SRC12_EQ_DEST(106, divu, 1, 0x1234)
    TEST_RR_SRC12_EQ_DEST(107, remw, 0, 0x1234)
    TEST_RR_ZERO_SRC2(108, div, -1, 5)                  /* divide by x0 */
    TEST_RR_ZERO_SRC2(109, rem, 5, 5)
    TEST_RR_ZERO_SRC2(110, divuw, -1, 5)
    TEST_RR_ZERO_SRC2(111, remuw, 0xffffffff80000005, 0x80000005)
    TEST_RR_ZERO_SRC1(112, div, 0, 5)
    TEST_RR_ZERO_SRC1(113, mulhsu, 0, -1)
    TEST_RR_ZERO_DEST(114, mul, 3, 5)
    TEST_RR_ZERO_DEST(115, div, 3, 0)
    TEST_RR_ZERO_DEST(116, mulhu, -1, -1)
    TEST_RR_ZERO_DEST(117, remw, 7, 3)

    /* mulh + mul pair (the fused sequence a decoder may special-case) */
    SET_TESTNUM(118)
    li a1, 0x8000000000000001
    li a2, 0xfffffffffffffff0
    mulh a3, a1, a2
    mul a0, a1, a2
    CHECK_EQ(a3, 0x7)
    CHECK_EQ(a0, 0xfffffffffffffff0)
    /* div + rem pair */
    SET_TESTNUM(119)
    li a1, -1001
    li a2, 10
    div a3, a1, a2
    rem a0, a1, a2
    CHECK_EQ(a3, -100)
    CHECK_EQ(a0, -1)

RVH_TEST_END

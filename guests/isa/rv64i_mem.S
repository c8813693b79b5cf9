/*
 * rv64i_mem.S - self-checking test of the RV64I loads/stores, fences and
 * Zifencei (second half of the RV64I test, see rv64i.S).
 *
 * Covers: lb lh lw ld lbu lhu lwu sb sh sw sd (sign/zero extension, negative
 * and +-2 KiB offsets, x0 as destination/source, rd == base), misaligned
 * loads and stores of every size (QEMU 7.2 performs them without a trap,
 * also across a 8-byte boundary and a 4 KiB page boundary), every register
 * x1..x31, fence (several pred/succ sets) fence.tso pause, HINTs (ALU writes
 * to x0), fence.i with self-modifying code (also patching the running block).
 *
 * Exit 0 = pass, otherwise the number of the first failing test.
 */
#include "test.h"

    .option norvc           /* test the 32-bit encodings */

RVH_TEST_BEGIN(rv64i_mem)

    /* ---------------- loads ---------------- */
    TEST_LD(1, lb,  0xffffffffffffffef, 0, tdat)
    TEST_LD(2, lb,  0x01, 7, tdat)
    TEST_LD(3, lb,  0xffffffffffffff80, 16, tdat)
    TEST_LD(4, lb,  0x7f, 24, tdat)
    TEST_LD(5, lbu, 0xef, 0, tdat)
    TEST_LD(6, lbu, 0x80, 16, tdat)
    TEST_LD(7, lh,  0xffffffffffffcdef, 0, tdat)
    TEST_LD(8, lh,  0x0123, 6, tdat)
    TEST_LD(9, lh,  0xffffffffffff8080, 16, tdat)
    TEST_LD(10, lh,  0x7f7f, 24, tdat)
    TEST_LD(11, lhu, 0xcdef, 0, tdat)
    TEST_LD(12, lhu, 0x8000, 18, tdat)
    TEST_LD(13, lw,  0xffffffff89abcdef, 0, tdat)
    TEST_LD(14, lw,  0x01234567, 4, tdat)
    TEST_LD(15, lw,  0xffffffff80000000, 20, tdat)
    TEST_LD(16, lw,  0x7fffffff, 28, tdat)
    TEST_LD(17, lwu, 0x89abcdef, 0, tdat)
    TEST_LD(18, lwu, 0x80000000, 20, tdat)
    TEST_LD(19, lwu, 0x7fff7f7f, 24, tdat)
    TEST_LD(20, ld,  0x0123456789abcdef, 0, tdat)
    TEST_LD(21, ld,  0xfedcba9876543210, 8, tdat)
    TEST_LD(22, ld,  0x8000000080008080, 16, tdat)
    TEST_LD(23, ld,  0x7fffffff7fff7f7f, 24, tdat)
    TEST_LD(24, ld,  0x0123456789abcdef, -32, tdat_end)     /* negative offsets */
    TEST_LD(25, lw,  0x7fffffff, -4, tdat_end)
    TEST_LD(26, lb,  0x7f, -1, tdat_end)
    TEST_LD(27, lhu, 0x7fff, -2, tdat_end)
    SET_TESTNUM(28)                     /* load into x0: value discarded */
    la a1, tdat
    ld x0, 8(a1)
    lw x0, 0(a1)
    lbu x0, 3(a1)
    CHECK_EQ(x0, 0)
    SET_TESTNUM(29)                     /* rd == base register */
    la a0, tdat
    ld a0, 8(a0)
    CHECK_EQ(a0, 0xfedcba9876543210)

    /* ---------------- stores ---------------- */
    TEST_ST(30, ld, sd, 0x1122334455667788, 0x1122334455667788, 0, sbuf)
    TEST_ST(31, ld, sd, 0x8877665544332211, 0x8877665544332211, 8, sbuf)
    TEST_ST(32, lw, sw, 0xffffffff99aabbcc, 0x1234567899aabbcc, 0, sbuf)
    TEST_ST(33, lwu, sw, 0x0a0b0c0d, 0x0a0b0c0d, 4, sbuf)
    TEST_ST(34, lh, sh, 0xffffffffffffbeef, 0xdeadbeef, 2, sbuf)
    TEST_ST(35, lhu, sh, 0xfeed, 0xfeed, 6, sbuf)
    TEST_ST(36, lb, sb, 0xffffffffffffffa5, 0x55a5, 1, sbuf)
    TEST_ST(37, lbu, sb, 0x5a, 0x5a, 7, sbuf)
    SET_TESTNUM(38)                     /* the stores above touched only their bytes */
    la a1, sbuf
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x5aed0c0dbeefa5cc)    /* cc a5 ef be 0d 0c ed 5a */
    ld a0, 8(a1)
    CHECK_EQ(a0, 0x8877665544332211)
    TEST_ST(39, ld, sd, 0x0102030405060708, 0x0102030405060708, -8, sbuf_end)
    TEST_ST(40, lw, sw, 0xffffffffcafebabe, 0xcafebabe, -12, sbuf_end)
    TEST_ST(41, ld, sd, 0x1111111111111111, 0x1111111111111111, 2040, bigbuf + 2048)
    TEST_ST(42, ld, sd, 0x2222222222222222, 0x2222222222222222, -2048, bigbuf + 2048)
    SET_TESTNUM(43)
    la a1, bigbuf
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x2222222222222222)
    li t0, 4088
    add a1, a1, t0
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x1111111111111111)
    SET_TESTNUM(44)                     /* store of x0 */
    la a1, sbuf
    li a0, -1
    sd a0, 16(a1)
    sw x0, 20(a1)
    sb x0, 16(a1)
    ld a0, 16(a1)
    CHECK_EQ(a0, 0x00000000ffffff00)
    SET_TESTNUM(45)                     /* store the base register itself */
    la a1, sbuf
    sd a1, 24(a1)
    ld a0, 24(a1)
    ASSERT_EQ(a0, a1)

    /* ------- misaligned loads (QEMU 7.2: performed, no trap) ------- */
    TEST_LD(46, lh,  0xffffffffffffabcd, 1, tdat)
    TEST_LD(47, lh,  0x1001, 7, tdat)
    TEST_LD(48, lhu, 0x80fe, 15, tdat)
    TEST_LD(49, lw,  0x6789abcd, 1, tdat)
    TEST_LD(50, lw,  0x456789ab, 2, tdat)
    TEST_LD(51, lw,  0x23456789, 3, tdat)
    TEST_LD(52, lw,  0x54321001, 7, tdat)
    TEST_LD(53, lw,  0xffffffff80fedcba, 13, tdat)
    TEST_LD(54, lwu, 0x80fedcba, 13, tdat)
    TEST_LD(55, lw,  0x7f800000, 21, tdat)
    TEST_LD(56, ld,  0x100123456789abcd, 1, tdat)
    TEST_LD(57, ld,  0x5432100123456789, 3, tdat)
    TEST_LD(58, ld,  0x7654321001234567, 4, tdat)
    TEST_LD(59, ld,  0xdcba987654321001, 7, tdat)
    TEST_LD(60, ld,  0x0080008080fedcba, 13, tdat)
    TEST_LD(61, ld,  0xff7fff7f7f800000, 21, tdat)

    /* ------- misaligned stores ------- */
    SET_TESTNUM(62)
    la a1, mbuf
    sd zero, 0(a1)
    sd zero, 8(a1)
    li a2, 0x1122334455667788
    sd a2, 3(a1)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x4455667788000000)
    ld a0, 8(a1)
    CHECK_EQ(a0, 0x0000000000112233)
    ld a0, 3(a1)
    ASSERT_EQ(a0, a2)
    SET_TESTNUM(63)
    li a2, 0xa1b2c3d4
    sw a2, 7(a1)                        /* crosses the 8-byte boundary */
    ld a0, 0(a1)
    CHECK_EQ(a0, 0xd455667788000000)
    ld a0, 8(a1)
    CHECK_EQ(a0, 0x0000000000a1b2c3)
    SET_TESTNUM(64)
    li a2, 0xbeef
    sh a2, 1(a1)
    sh a2, 15(a1)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0xd455667788beef00)
    ld a0, 8(a1)
    CHECK_EQ(a0, 0xef00000000a1b2c3)
    lbu a0, 16(a1)
    CHECK_EQ(a0, 0xbe)
    SET_TESTNUM(65)                     /* across a 4 KiB page boundary */
    la a1, pagebuf + 4096
    li a2, 0x0102030405060708
    sd a2, -3(a1)
    ld a0, -3(a1)
    ASSERT_EQ(a0, a2)
    ld a0, -8(a1)
    CHECK_EQ(a0, 0x0607080000000000)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x0000000102030405)
    lw a0, -2(a1)
    CHECK_EQ(a0, 0x04050607)
    lh a0, -1(a1)
    CHECK_EQ(a0, 0x0506)
    li a2, 0xfedcba98
    sw a2, -1(a1)
    lwu a0, -1(a1)
    CHECK_EQ(a0, 0xfedcba98)

    /* ---------------- every register x1..x31 ---------------- */
    SET_TESTNUM(66)
    la t0, regsave
    sd sp, 0(t0)
    sd gp, 8(t0)
    sd tp, 16(t0)
    sd s2, 24(t0)
    sd s5, 32(t0)
    sd s11, 40(t0)
    li x1, 1
    addi x2, x1, 1
    addi x3, x2, 1
    addi x4, x3, 1
    addi x5, x4, 1
    addi x6, x5, 1
    addi x7, x6, 1
    addi x8, x7, 1
    addi x9, x8, 1
    addi x10, x9, 1
    addi x11, x10, 1
    addi x12, x11, 1
    addi x13, x12, 1
    addi x14, x13, 1
    addi x15, x14, 1
    addi x16, x15, 1
    addi x17, x16, 1
    addi x18, x17, 1
    addi x19, x18, 1
    addi x20, x19, 1
    addi x21, x20, 1
    addi x22, x21, 1
    addi x23, x22, 1
    addi x24, x23, 1
    addi x25, x24, 1
    addi x26, x25, 1
    addi x27, x26, 1
    addi x28, x27, 1
    addi x29, x28, 1
    addi x30, x29, 1
    addi x31, x30, 1
    add x1, x1, x2
    add x1, x1, x3
    add x1, x1, x4
    add x1, x1, x5
    add x1, x1, x6
    add x1, x1, x7
    add x1, x1, x8
    add x1, x1, x9
    add x1, x1, x10
    add x1, x1, x11
    add x1, x1, x12
    add x1, x1, x13
    add x1, x1, x14
    add x1, x1, x15
    add x1, x1, x16
    add x1, x1, x17
    add x1, x1, x18
    add x1, x1, x19
    add x1, x1, x20
    add x1, x1, x21
    add x1, x1, x22
    add x1, x1, x23
    add x1, x1, x24
    add x1, x1, x25
    add x1, x1, x26
    add x1, x1, x27
    add x1, x1, x28
    add x1, x1, x29
    add x1, x1, x30
    add x1, x1, x31
    mv x31, x1
    la t0, regsave
    ld sp, 0(t0)
    ld gp, 8(t0)
    ld tp, 16(t0)
    ld s2, 24(t0)
    ld s5, 32(t0)
    ld s11, 40(t0)
    CHECK_EQ(x31, 496)                  /* 1 + 2 + ... + 31 */

    /* ---------------- fences and HINTs ---------------- */
    SET_TESTNUM(67)
    li a0, 7
    fence
    fence rw, rw
    fence r, w
    fence iorw, iorw
    .word 0x0000000f                    /* fence with empty pred/succ */
    .word 0x8330000f                    /* fence.tso */
    .word 0x0100000f                    /* pause (Zihintpause: a fence HINT) */
    addi x0, x0, 5                      /* HINTs: writes to x0 */
    slli x0, x0, 5
    slt x0, a0, x0
    ori x0, a0, 7
    addi zero, a0, 0
    mv x0, a0
    CHECK_EQ(x0, 0)
    CHECK_EQ(a0, 7)

    /* ---------------- fence.i: self-modifying code ---------------- */
    SET_TESTNUM(68)
    call smc_func                       /* executes "li a0, 1" */
    CHECK_EQ(a0, 1)
    SET_TESTNUM(69)
    la t0, smc_func
    li t1, 0x02a00513                   /* addi a0, zero, 42 */
    sw t1, 0(t0)
    fence.i
    call smc_func
    CHECK_EQ(a0, 42)
    SET_TESTNUM(70)
    la t0, smc_func
    li t1, 0xfff00513                   /* addi a0, zero, -1 */
    sw t1, 0(t0)
    fence.i
    call smc_func
    CHECK_EQ(a0, -1)
    SET_TESTNUM(71)                     /* patch the same block we run in */
    la t0, 1f
    li t1, 0x07b00513                   /* addi a0, zero, 123 */
    sw t1, 0(t0)
    fence.i
1:  addi a0, zero, 0
    CHECK_EQ(a0, 123)

RVH_TEST_END

    .text
    CODE_ALIGN(4)
smc_func:
    addi a0, zero, 1
    ret

    .data
    .align 4
tdat:
    .dword 0x0123456789abcdef
    .dword 0xfedcba9876543210
    .dword 0x8000000080008080
    .dword 0x7fffffff7fff7f7f
tdat_end:
    .dword 0

    .bss
    .align 4
sbuf:   .space 32
sbuf_end:
mbuf:   .space 32
regsave: .space 64
    .align 12
pagebuf: .space 8192
bigbuf: .space 4096

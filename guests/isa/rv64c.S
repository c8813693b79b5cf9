/*
 * rv64c.S - self-checking test of every RV64 integer compressed instruction.
 *
 * Everything under ".option rvc" with explicit c.* mnemonics, so the
 * assembler really emits the 16-bit forms:
 *   c.addi4spn c.lw c.ld c.sw c.sd c.nop c.addi c.addiw c.li c.addi16sp
 *   c.lui c.srli c.srai c.andi c.sub c.xor c.or c.and c.subw c.addw c.j
 *   c.beqz c.bnez c.slli c.lwsp c.ldsp c.jr c.mv c.ebreak c.jalr c.add
 *   c.swsp c.sdsp
 * plus the HINT encodings (rd = x0 forms of c.addi/c.li/c.lui/c.mv/c.add/
 * c.slli, which must execute as no-ops), 32-bit instructions at 2-byte
 * aligned addresses, a 32-bit instruction crossing a 4 KiB page boundary,
 * jumps to 2-byte aligned targets.
 * Reserved/illegal compressed encodings are tested in mtraps.S.
 *
 * Exit 0 = pass, otherwise the number of the first failing test.
 */
#include "test.h"

    .option rvc

RVH_TEST_BEGIN(rv64c)

    /* ---------------- c.li / c.lui ---------------- */
    SET_TESTNUM(1)
    c.li a0, 31
    CHECK_EQ(a0, 31)
    c.li a0, -32
    CHECK_EQ(a0, -32)
    c.li t0, 0
    CHECK_EQ(t0, 0)
    SET_TESTNUM(2)
    c.lui a0, 1
    CHECK_EQ(a0, 0x1000)
    c.lui a0, 31
    CHECK_EQ(a0, 0x1f000)
    c.lui t2, 0xfffe0                   /* nzimm = -32: sign-extended */
    CHECK_EQ(t2, 0xfffffffffffe0000)
    c.lui s1, 0xfffff
    CHECK_EQ(s1, 0xfffffffffffff000)

    /* ---------------- c.addi / c.addiw / c.nop ---------------- */
    SET_TESTNUM(3)
    li a0, 100
    c.addi a0, 31
    CHECK_EQ(a0, 131)
    c.addi a0, -32
    CHECK_EQ(a0, 99)
    li t3, 0x7fffffffffffffff
    c.addi t3, 1
    CHECK_EQ(t3, 0x8000000000000000)
    li a5, 0xffffffff
    c.addi a5, 1                        /* no 32-bit wrap */
    CHECK_EQ(a5, 0x100000000)
    SET_TESTNUM(4)
    li a0, 0x7fffffff
    c.addiw a0, 1
    CHECK_EQ(a0, 0xffffffff80000000)
    li a0, 0x00000000ffffffff
    c.addiw a0, 0                       /* sext.w */
    CHECK_EQ(a0, -1)
    li t4, 0x100000000
    c.addiw t4, -1
    CHECK_EQ(t4, -1)
    li a0, 0x1234567800000005
    c.addiw a0, 31
    CHECK_EQ(a0, 36)
    li a0, 0xffffffff80000000
    c.addiw a0, -32
    CHECK_EQ(a0, 0x7fffffe0)
    SET_TESTNUM(5)
    li a0, 5
    c.nop
    c.nop
    CHECK_EQ(a0, 5)

    /* ---------------- c.addi16sp / c.addi4spn ---------------- */
    SET_TESTNUM(6)
    mv s7, sp
    c.addi16sp sp, -64
    sub a0, s7, sp
    c.addi16sp sp, 496
    sub a1, sp, s7
    c.addi16sp sp, -512
    sub a2, s7, sp
    c.addi16sp sp, 80
    mv sp, s7
    CHECK_EQ(a0, 64)
    CHECK_EQ(a1, 432)
    CHECK_EQ(a2, 80)
    SET_TESTNUM(7)
    c.addi4spn a0, sp, 4
    sub a0, a0, sp
    CHECK_EQ(a0, 4)
    c.addi4spn s0, sp, 1020
    sub s0, s0, sp
    CHECK_EQ(s0, 1020)
    c.addi4spn a5, sp, 8
    sub a5, a5, sp
    CHECK_EQ(a5, 8)

    /* ---------------- shifts and c.andi ---------------- */
    SET_TESTNUM(8)
    li a0, 0x8000000000000001
    c.slli a0, 1
    CHECK_EQ(a0, 2)
    li t5, 1
    c.slli t5, 63
    CHECK_EQ(t5, 0x8000000000000000)
    li a0, 0x12345678
    c.slli a0, 32
    CHECK_EQ(a0, 0x1234567800000000)
    li a0, 1
    c.slli a0, 31
    CHECK_EQ(a0, 0x80000000)
    SET_TESTNUM(9)
    li s0, 0x8000000000000000
    c.srli s0, 1
    CHECK_EQ(s0, 0x4000000000000000)
    li s0, 0x8000000000000000
    c.srli s0, 63
    CHECK_EQ(s0, 1)
    li a4, -1
    c.srli a4, 32
    CHECK_EQ(a4, 0xffffffff)
    li a4, 0x80000000
    c.srli a4, 31
    CHECK_EQ(a4, 1)
    SET_TESTNUM(10)
    li a1, 0x8000000000000000
    c.srai a1, 1
    CHECK_EQ(a1, 0xc000000000000000)
    li a1, 0x8000000000000000
    c.srai a1, 63
    CHECK_EQ(a1, -1)
    li a1, 0x8000000000000000
    c.srai a1, 32
    CHECK_EQ(a1, 0xffffffff80000000)
    li a1, 0x7fffffffffffffff
    c.srai a1, 31
    CHECK_EQ(a1, 0xffffffff)
    SET_TESTNUM(11)
    li a2, 0x123456789abcdef0
    c.andi a2, -1
    CHECK_EQ(a2, 0x123456789abcdef0)
    c.andi a2, -32
    CHECK_EQ(a2, 0x123456789abcdee0)
    li a3, 0x123456789abcdef0
    c.andi a3, 31
    CHECK_EQ(a3, 0x10)
    c.andi a3, 0
    CHECK_EQ(a3, 0)

    /* ---------------- register-register ---------------- */
    SET_TESTNUM(12)
    li t0, 0xfedcba9876543210
    c.mv a0, t0
    ASSERT_EQ(a0, t0)
    c.mv s11, a0                        /* clobbers TESTNUM on purpose */
    ASSERT_EQ(s11, t0)
    SET_TESTNUM(13)
    li a0, 0x7fffffffffffffff
    li t1, 1
    c.add a0, t1
    CHECK_EQ(a0, 0x8000000000000000)
    li t2, 21
    c.add t2, t2
    CHECK_EQ(t2, 42)
    SET_TESTNUM(14)
    li s0, 0
    li s1, 1
    c.sub s0, s1
    CHECK_EQ(s0, -1)
    li a0, 0x8000000000000000
    li a1, 1
    c.sub a0, a1
    CHECK_EQ(a0, 0x7fffffffffffffff)
    SET_TESTNUM(15)
    li a2, 0xff00ff00ff00ff00
    li a3, 0x0f0f0f0f0f0f0f0f
    mv a4, a2
    c.xor a4, a3
    CHECK_EQ(a4, 0xf00ff00ff00ff00f)
    mv a4, a2
    c.or a4, a3
    CHECK_EQ(a4, 0xff0fff0fff0fff0f)
    mv a4, a2
    c.and a4, a3
    CHECK_EQ(a4, 0x0f000f000f000f00)
    c.xor a4, a4
    CHECK_EQ(a4, 0)
    SET_TESTNUM(16)
    li a0, 0x7fffffff
    li a1, 1
    c.addw a0, a1
    CHECK_EQ(a0, 0xffffffff80000000)
    li a0, 0x1234567800000001
    li a1, 0xabcdef00ffffffff
    c.addw a0, a1
    CHECK_EQ(a0, 0)
    li a5, 0
    li s1, 0x80000000
    c.subw a5, s1
    CHECK_EQ(a5, 0xffffffff80000000)
    li a5, 0x100000000
    li s1, 1
    c.subw a5, s1
    CHECK_EQ(a5, -1)
    li a5, 0x80000000
    c.subw a5, s1                       /* 0x80000000 - 1 -> 0x7fffffff */
    CHECK_EQ(a5, 0x7fffffff)

    /* ---------------- loads / stores ---------------- */
    SET_TESTNUM(17)
    la s0, cdat
    c.lw a0, 0(s0)
    CHECK_EQ(a0, 0xffffffff89abcdef)
    c.lw a1, 4(s0)
    CHECK_EQ(a1, 0x01234567)
    c.ld a2, 8(s0)
    CHECK_EQ(a2, 0x8000000080000000)
    c.lw a3, 12(s0)
    CHECK_EQ(a3, 0xffffffff80000000)
    c.lw a4, 124(s0)
    CHECK_EQ(a4, 0x7c7c7c7c)
    c.ld a5, 248(s0)
    CHECK_EQ(a5, 0xf8f8f8f8f8f8f8f8)
    c.ld s1, 0(s0)
    CHECK_EQ(s1, 0x0123456789abcdef)
    SET_TESTNUM(18)
    la a5, cbuf
    li a0, 0x1122334455667788
    c.sd a0, 0(a5)
    c.sd a0, 248(a5)
    li a1, 0xaabbccdd
    c.sw a1, 8(a5)
    c.sw a1, 124(a5)
    ld a2, 0(a5)
    ASSERT_EQ(a2, a0)
    ld a2, 248(a5)
    ASSERT_EQ(a2, a0)
    lwu a2, 8(a5)
    CHECK_EQ(a2, 0xaabbccdd)
    c.lw a3, 124(a5)
    CHECK_EQ(a3, 0xffffffffaabbccdd)
    c.lw a3, 8(a5)
    CHECK_EQ(a3, 0xffffffffaabbccdd)
    SET_TESTNUM(19)                     /* c.lw/c.ld with rd == base */
    la a4, cdat
    c.ld a4, 8(a4)
    CHECK_EQ(a4, 0x8000000080000000)
    SET_TESTNUM(20)                     /* sp-relative */
    mv s7, sp
    la sp, cdat
    c.lwsp a0, 0(sp)
    c.lwsp t0, 252(sp)
    c.ldsp a1, 8(sp)
    c.ldsp t1, 504(sp)
    c.ldsp ra, 248(sp)
    mv sp, s7
    CHECK_EQ(a0, 0xffffffff89abcdef)
    CHECK_EQ(t0, 0xfffffffff8f8f8f8)    /* upper half of the dword at 248 */
    CHECK_EQ(a1, 0x8000000080000000)
    CHECK_EQ(t1, 0x1f81f81f81f81f8)
    CHECK_EQ(ra, 0xf8f8f8f8f8f8f8f8)
    SET_TESTNUM(21)
    mv s7, sp
    la sp, cbuf
    li t0, 0x0102030405060708
    li t1, 0x8a8b8c8d
    c.sdsp t0, 0(sp)
    c.sdsp t0, 504(sp)
    c.swsp t1, 16(sp)
    c.swsp t1, 252(sp)
    c.swsp zero, 20(sp)
    c.ldsp a0, 0(sp)
    c.ldsp a1, 504(sp)
    c.lwsp a2, 252(sp)
    c.ldsp a3, 16(sp)
    mv sp, s7
    ASSERT_EQ(a0, t0)
    ASSERT_EQ(a1, t0)
    CHECK_EQ(a2, 0xffffffff8a8b8c8d)
    CHECK_EQ(a3, 0x8a8b8c8d)

    /* ---------------- jumps and branches ---------------- */
    SET_TESTNUM(22)
    c.j 1f
    j rvh_fail
2:  c.j 3f
    j rvh_fail
1:  c.j 2b                              /* backward */
    j rvh_fail
3:
    SET_TESTNUM(23)
    la t0, 1f
    c.jr t0
    j rvh_fail
1:
    SET_TESTNUM(24)
    la t0, 1f
    c.jalr t0                           /* ra = pc + 2 */
2:  j rvh_fail
1:  la t1, 2b
    ASSERT_EQ(ra, t1)
    SET_TESTNUM(25)                     /* c.jalr ra: target is the old ra */
    la ra, 1f
    c.jalr ra
2:  j rvh_fail
1:  la t1, 2b
    ASSERT_EQ(ra, t1)
    SET_TESTNUM(26)                     /* call a function, return with c.jr ra */
    jal ra, cfunc
    CHECK_EQ(a0, 77)
    SET_TESTNUM(27)
    li s0, 0
    c.beqz s0, 1f
    j rvh_fail
1:  li s1, 5
    c.beqz s1, 2f
    c.bnez s1, 3f
2:  j rvh_fail
3:  li a0, 0
    c.bnez a0, 2b
    li a0, 0x8000000000000000           /* only bit 63 set: nonzero */
    c.beqz a0, 2b
    c.bnez a0, 4f
    j rvh_fail
4:
    SET_TESTNUM(28)                     /* backward loop with c.bnez */
    li a0, 0
    li a1, 10
1:  c.add a0, a1
    c.addi a1, -1
    c.bnez a1, 1b
    CHECK_EQ(a0, 55)
    SET_TESTNUM(29)                     /* far c.beqz/c.bnez (about +-250 bytes) */
    li a2, 0
    c.beqz a2, 1f
2:  j 3f
    .rept 60
    c.nop
    .endr
    .option push
    .option norvc
    .rept 30
    nop
    .endr
    .option pop
1:  li a3, 1
    c.bnez a3, 2b
    j rvh_fail
3:
    SET_TESTNUM(30)                     /* 32-bit instructions at 2-byte aligned pcs */
    CODE_ALIGN(4)
    c.nop
    .option push
    .option norvc
    addi a0, zero, 9                    /* at 4n+2 */
    addi a0, a0, 1
    .option pop
    CHECK_EQ(a0, 10)
    SET_TESTNUM(31)                     /* jalr to a 2-byte aligned target */
    la t0, 1f
    addi t0, t0, 2
    li a0, 0
    jalr t0
    CHECK_EQ(a0, 3)
    SET_TESTNUM(32)                     /* 32-bit instruction across a page boundary */
    li a0, 5
    call page_cross_func
    CHECK_EQ(a0, 6)

    /* ---------------- c.ebreak ---------------- */
    TEST_TRAP(33, CAUSE_BREAKPOINT, c.ebreak)

    /* ---------------- HINTs: must be no-ops ---------------- */
    SET_TESTNUM(34)
    li a0, 123
    .hword 0x0005                       /* c.addi x0, 1 (c.nop with imm) */
    .hword 0x407d                       /* c.li x0, 31 */
    .hword 0x6005                       /* c.lui x0, 1 */
    .hword 0x802a                       /* c.mv x0, a0 */
    .hword 0x902a                       /* c.add x0, a0 */
    .hword 0x0006                       /* c.slli x0, 1 */
    CHECK_EQ(x0, 0)
    CHECK_EQ(a0, 123)

RVH_TEST_END

    .text
    CODE_ALIGN(4)
1:  c.j 2f                              /* entered at +2 by the jalr test */
    c.li a0, 3
    c.jr ra
2:  j rvh_fail

cfunc:
    c.li a0, 31
    c.addi a0, 31
    c.addi a0, 15
    c.jr ra

    /* a 32-bit instruction straddling a 4 KiB boundary */
    CODE_ALIGN(4096)
    .skip 4094
page_cross_func:
    .option push
    .option norvc
    addi a0, a0, 1
    .option pop
    c.jr ra

    .data
    .balign 8
cdat:
    .dword 0x0123456789abcdef           /* 0 */
    .dword 0x8000000080000000           /* 8 */
    .fill 13, 8, 0                      /* 16..119 */
    .word 0, 0x7c7c7c7c                 /* 120, 124 */
    .fill 15, 8, 0                      /* 128..247 */
    .dword 0xf8f8f8f8f8f8f8f8           /* 248 */
    .fill 31, 8, 0                      /* 256..503 */
    .dword 0x01f81f81f81f81f8           /* 504 */
    .dword 0

    .bss
    .balign 8
cbuf:   .space 512

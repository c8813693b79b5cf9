/*
 * sdtrig.S - the Sdtrig trigger module (RISC-V Debug Specification 1.0, 5.7)
 * as QEMU 7.2 offers it; passes on QEMU 7.2 and on rvh.
 *
 * Covers:
 *  - the registers: tselect, tdata1-3, tinfo (types 2 and 6) at reset; tcontrol
 *    and mcontext do not exist (illegal instruction); tselect keeps 0 and 1 and
 *    ignores other values; tdata1 keeps the access, mode and (supported) size
 *    fields of mcontrol and mcontrol6 and reads dmode/action/match as 0; a write
 *    of another type leaves tdata1 as it was; tdata3 reads 0
 *  - an execute trigger in M-mode: breakpoint (cause 3) before the instruction,
 *    mepc = its address
 *  - load and store triggers in M-mode: breakpoint before the access (the
 *    destination register and memory untouched); a load trigger ignores stores
 *    and an execute trigger ignores loads; an AMO matches a load trigger
 *  - two triggers at once, each on its own address (the riscv-tests' breakpoint
 *    sequence: the first trigger still fires after the second is set)
 *  - mcontrol6 with a 1-byte size: an access overlapping that byte fires
 * mtval of a trigger's breakpoint: the address (privileged spec 3.1.16) or 0
 * (QEMU 7.2) are both accepted.
 *
 * Exit 0 = pass, otherwise the number of the first failing test.
 */
#include "test.h"
#include "rvh/encoding.h"

#define T2 (TRIGGER_TYPE_MCONTROL << TDATA1_TYPE_SHIFT)
#define T6 (TRIGGER_TYPE_MCONTROL6 << TDATA1_TYPE_SHIFT)
#define M_LOAD (MCONTROL_M_MASK | MCONTROL_LOAD_MASK)
#define M_STORE (MCONTROL_M_MASK | MCONTROL_STORE_MASK)
#define M_EXEC (MCONTROL_M_MASK | MCONTROL_EXECUTE_MASK)

/* tdata1 written with w reads back r */
#define TEST_TDATA1(n, w, r)                                            \
    SET_TESTNUM(n); li t0, w; csrw tdata1, t0; csrr a0, tdata1; CHECK_EQ(a0, r)

/* after a trigger's breakpoint: mtval is 0 or the address in reg */
#define CHECK_TVAL(reg)                                                 \
    beqz s4, 9990f; ASSERT_EQ(s4, reg); 9990:

    .option norvc

RVH_TEST_BEGIN(sdtrig)

    /* ---------------- the registers ---------------- */
    SET_TESTNUM(1)
    csrr a0, tselect
    CHECK_EQ(a0, 0)
    SET_TESTNUM(2)
    csrr a0, tdata1
    CHECK_EQ(a0, T2)                    /* type 2, matching nothing */
    SET_TESTNUM(3)
    csrr a0, tdata2
    CHECK_EQ(a0, 0)
    SET_TESTNUM(4)
    csrr a0, tdata3
    CHECK_EQ(a0, 0)
    SET_TESTNUM(5)
    csrr a0, tinfo
    CHECK_EQ(a0, (1 << TRIGGER_TYPE_MCONTROL) | (1 << TRIGGER_TYPE_MCONTROL6))
    TEST_ILLEGAL(6, csrr a0, 0x7a5)     /* tcontrol */
    TEST_ILLEGAL(7, csrr a0, 0x7a8)     /* mcontext */
    SET_TESTNUM(8)
    li t0, 1
    csrw tselect, t0
    csrr a0, tselect
    CHECK_EQ(a0, 1)
    SET_TESTNUM(9)                      /* 2 is no trigger: ignored */
    li t0, 2
    csrw tselect, t0
    csrr a0, tselect
    CHECK_EQ(a0, 1)
    csrw tselect, zero
    TEST_TDATA1(10, T2 | 0x0fffffffffffffff, T2 | 0x5f)
    TEST_TDATA1(11, T2 | TDATA1_DMODE_MASK | M_LOAD, T2 | M_LOAD)
    TEST_TDATA1(12, T2 | (1 << MCONTROL_ACTION_SHIFT) | (1 << MCONTROL_MATCH_SHIFT) | M_LOAD, T2 | M_LOAD)
    TEST_TDATA1(13, T2 | (3 << MCONTROL_SIZELO_SHIFT) | M_LOAD, T2 | (3 << MCONTROL_SIZELO_SHIFT) | M_LOAD)
    TEST_TDATA1(14, T6 | 0x0fffffffffffffff, T6 | MCONTROL6_VS_MASK | MCONTROL6_VU_MASK | 0x5f)
    TEST_TDATA1(15, T6 | (6 << MCONTROL6_SIZE_SHIFT) | M_LOAD, T6 | M_LOAD)
    TEST_TDATA1(16, T6 | (5 << MCONTROL6_SIZE_SHIFT) | M_LOAD, T6 | (5 << MCONTROL6_SIZE_SHIFT) | M_LOAD)
    TEST_TDATA1(17, (3 << TDATA1_TYPE_SHIFT) | M_STORE, T6 | (5 << MCONTROL6_SIZE_SHIFT) | M_LOAD)
    TEST_TDATA1(18, (15 << TDATA1_TYPE_SHIFT) | M_STORE, T6 | (5 << MCONTROL6_SIZE_SHIFT) | M_LOAD)
    TEST_TDATA1(19, 0, T6 | (5 << MCONTROL6_SIZE_SHIFT) | M_LOAD)
    TEST_TDATA1(20, T2, T2)
    SET_TESTNUM(21)
    li t0, 0x777
    csrw tdata3, t0
    csrr a0, tdata3
    CHECK_EQ(a0, 0)

    /* ---------------- an execute trigger ---------------- */
    SET_TESTNUM(30)
    la t0, 1f
    csrw tdata2, t0
    li t0, T2 | M_EXEC
    csrw tdata1, t0
    csrr a1, tdata1
    CHECK_EQ(a1, T2 | M_EXEC)
    li a0, 0
    TRAP_ARM
    CODE_ALIGN(4)
1:  li a0, 1                            /* the breakpoint comes first: skipped */
    CHECK_EQ(s2, CAUSE_BREAKPOINT)
    la t0, 1b
    ASSERT_EQ(s3, t0)
    CHECK_TVAL(t0)
    SET_TESTNUM(31)
    CHECK_EQ(a0, 0)
    SET_TESTNUM(32)                     /* a load of that address: no trap */
    la t0, 1b
    lw a0, 0(t0)

    /* ---------------- load and store triggers ---------------- */
    SET_TESTNUM(33)
    li t0, T2 | M_LOAD
    csrw tdata1, t0
    la a2, data1
    csrw tdata2, a2
    li a0, 0x55
    TEST_TRAP(34, CAUSE_BREAKPOINT, lw a0, 0(a2))
    CHECK_TVAL(a2)
    SET_TESTNUM(35)
    CHECK_EQ(a0, 0x55)                  /* not loaded */
    SET_TESTNUM(36)                     /* stores do not match a load trigger */
    li a0, 7
    sw a0, 0(a2)
    TEST_TRAP(37, CAUSE_BREAKPOINT, amoadd.w a0, a0, (a2))
    SET_TESTNUM(38)
    li t0, T2 | M_STORE
    csrw tdata1, t0
    li a0, 9
    TEST_TRAP(39, CAUSE_BREAKPOINT, sw a0, 0(a2))
    CHECK_TVAL(a2)
    SET_TESTNUM(40)
    lw a0, 0(a2)
    CHECK_EQ(a0, 7)                     /* memory untouched */

    /* a second trigger: loads of data2; the first one still fires on stores */
    SET_TESTNUM(41)
    li t0, 1
    csrw tselect, t0
    li t0, T2 | M_LOAD
    csrw tdata1, t0
    la a3, data2
    csrw tdata2, a3
    TEST_TRAP(42, CAUSE_BREAKPOINT, lw a0, 0(a3))
    TEST_TRAP(43, CAUSE_BREAKPOINT, sw a0, 0(a2))
    SET_TESTNUM(44)
    lw a0, 0(a2)                        /* neither: data1 is not loaded by trigger 1 */
    CHECK_EQ(a0, 7)

    /* mcontrol6, one byte: a halfword load that overlaps it fires, the next byte not */
    SET_TESTNUM(45)
    li t0, T6 | (1 << MCONTROL6_SIZE_SHIFT) | M_LOAD
    csrw tdata1, t0
    addi t0, a3, 1
    csrw tdata2, t0
    TEST_TRAP(46, CAUSE_BREAKPOINT, lh a0, 0(a3))
    SET_TESTNUM(47)
    lbu a0, 2(a3)
    lbu a0, 0(a3)

    /* disarm both: type 2, no mode */
    SET_TESTNUM(48)
    li t0, T2
    csrw tdata1, t0
    csrw tselect, zero
    csrw tdata1, t0
    lw a0, 0(a3)
    sw a0, 0(a2)

RVH_TEST_END

    .data
    .balign 8
data1: .word 0, 0
data2: .word 0, 0

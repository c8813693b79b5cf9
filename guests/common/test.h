/*
 * test.h - macros for self-checking assembler tests (include from a .S file).
 *
 * A test program looks like:
 *
 *     #include "test.h"
 *     RVH_TEST_BEGIN(rv64i)          // defines main, installs the test trap handler
 *     TEST_RR(1, add, 3, 1, 2)       // test 1: add a0, a1(=1), a2(=2) -> expect 3
 *     ...
 *     RVH_TEST_END                   // PASS/FAIL epilogue + trap handler
 *
 * The program is linked with common/start.S and common/rvh.c; start.S calls
 * main, which never returns: RVH_TEST_END prints "PASS <name>" and exits 0,
 * or, when a check fails, "FAIL <name> test <n>" and exits with code n.
 * Test numbers must be 1..254 (the exit status of QEMU/rvh is truncated to
 * 8 bits by the shell); the assembler enforces this.
 *
 * Register conventions (do not use these for other purposes in tests):
 *   s11 (TESTNUM)  number of the current test
 *   t6             expected value in checks
 *   s2..s6         trap recording (see below); sp must stay valid except
 *                  for short, trap-free sequences
 * Test sequences use a0..a2 as operands/results; any other register may be
 * used freely between macros.
 *
 * Traps: mtvec points to rvh_test_trap.  A trap is *expected* only when
 * s2 == -1 ("armed"); then the handler records
 *   s2 = mcause, s3 = mepc, s4 = mtval
 * and resumes at s5 if s5 != 0 (then clears s5); otherwise, for exceptions
 * it skips the faulting instruction (2 or 4 bytes, read from mepc; so set s5
 * when mepc may not be readable, e.g. fetch faults) and for interrupts it
 * returns to mepc.  For interrupts it also clears the mie CSR.  Any trap
 * while not armed is a failure of the current test:
 * "FAIL <name> test <n>: unexpected trap ...".
 * TEST_TRAP / TEST_TRAP_TVAL / TEST_ILLEGAL arm, run one instruction and
 * check cause and mepc (and mtval).  t5 is also scratch in TEST_ILLEGAL.
 */
#ifndef RVH_TEST_H
#define RVH_TEST_H

#include "rvh/encoding.h"

#define TESTNUM s11

/* No linker relaxation in tests: the code stays exactly as written and
 * addresses computed at assembly time stay valid.  Align code with
 * CODE_ALIGN (below), not with a bare .balign. */
    .option norelax

#define RVH_TEST_BEGIN(name)                                            \
    .pushsection .rodata.rvh_test_name, "a", @progbits;                 \
rvh_test_name: .asciz #name;                                            \
    .popsection;                                                        \
    .text;                                                              \
    .globl main;                                                        \
    .type main, @function;                                              \
    CODE_ALIGN(4);                                                      \
main:                                                                   \
    li TESTNUM, 0;                                                      \
    li s2, 0;                                                           \
    li s5, 0;                                                           \
    la t0, rvh_test_trap;                                               \
    csrw mtvec, t0

/* Align code to n bytes.  Done under .option rvc: gas 2.40 silently skips
 * the padding of .balign/.align in .option norvc code when the location is
 * only 2-byte aligned (it cannot pad with a 4-byte nop). */
#define CODE_ALIGN(n)   .option push; .option rvc; .balign n; .option pop

#define SET_TESTNUM(n)                                                  \
    .if (n) < 1 || (n) > 254;                                           \
    .error "test number out of range 1..254";                           \
    .endif;                                                             \
    li TESTNUM, n

/* ---- checks: branch to rvh_fail (gas relaxes far branches) ---- */
#define ASSERT_EQ(r1, r2)       bne r1, r2, rvh_fail
#define ASSERT_NE(r1, r2)       beq r1, r2, rvh_fail
#define CHECK_EQ(reg, exp)      li t6, exp; ASSERT_EQ(reg, t6)
#define CHECK_NE(reg, val)      li t6, val; ASSERT_NE(reg, t6)
#define CHECK(n, reg, exp)      SET_TESTNUM(n); CHECK_EQ(reg, exp)
#define FAIL_TEST(n)            SET_TESTNUM(n); j rvh_fail

/* ---- register-register and register-immediate operations ---- */
#define TEST_RR(n, inst, exp, v1, v2)                                   \
    SET_TESTNUM(n); li a1, v1; li a2, v2;                               \
    inst a0, a1, a2; CHECK_EQ(a0, exp)

#define TEST_RR_SRC1_EQ_DEST(n, inst, exp, v1, v2)                      \
    SET_TESTNUM(n); li a1, v1; li a2, v2;                               \
    inst a1, a1, a2; CHECK_EQ(a1, exp)

#define TEST_RR_SRC2_EQ_DEST(n, inst, exp, v1, v2)                      \
    SET_TESTNUM(n); li a1, v1; li a2, v2;                               \
    inst a2, a1, a2; CHECK_EQ(a2, exp)

#define TEST_RR_SRC12_EQ_DEST(n, inst, exp, v1)                         \
    SET_TESTNUM(n); li a1, v1;                                          \
    inst a1, a1, a1; CHECK_EQ(a1, exp)

#define TEST_RR_ZERO_SRC1(n, inst, exp, v2)                             \
    SET_TESTNUM(n); li a2, v2;                                          \
    inst a0, x0, a2; CHECK_EQ(a0, exp)

#define TEST_RR_ZERO_SRC2(n, inst, exp, v1)                             \
    SET_TESTNUM(n); li a1, v1;                                          \
    inst a0, a1, x0; CHECK_EQ(a0, exp)

/* result written to x0 must be discarded */
#define TEST_RR_ZERO_DEST(n, inst, v1, v2)                              \
    SET_TESTNUM(n); li a1, v1; li a2, v2;                               \
    inst x0, a1, a2; CHECK_EQ(x0, 0)

#define TEST_RI(n, inst, exp, v1, imm)                                  \
    SET_TESTNUM(n); li a1, v1;                                          \
    inst a0, a1, imm; CHECK_EQ(a0, exp)

#define TEST_RI_SRC1_EQ_DEST(n, inst, exp, v1, imm)                     \
    SET_TESTNUM(n); li a1, v1;                                          \
    inst a1, a1, imm; CHECK_EQ(a1, exp)

#define TEST_RI_ZERO_DEST(n, inst, v1, imm)                             \
    SET_TESTNUM(n); li a1, v1;                                          \
    inst x0, a1, imm; CHECK_EQ(x0, 0)

/* one-operand forms (lui, c.li, ...): inst a0, imm */
#define TEST_I(n, inst, exp, imm)                                       \
    SET_TESTNUM(n); inst a0, imm; CHECK_EQ(a0, exp)

/* ---- loads and stores (base: a label) ---- */
#define TEST_LD(n, inst, exp, off, base)                                \
    SET_TESTNUM(n); la a1, base;                                        \
    inst a0, off(a1); CHECK_EQ(a0, exp)

/* store val, load it back with ldinst, expect exp */
#define TEST_ST(n, ldinst, stinst, exp, val, off, base)                 \
    SET_TESTNUM(n); la a1, base; li a2, val;                            \
    stinst a2, off(a1); ldinst a0, off(a1); CHECK_EQ(a0, exp)

/* ---- branches: taken forward and backward / not taken both ways ---- */
#define TEST_BR_TAKEN(n, inst, v1, v2)                                  \
    SET_TESTNUM(n); li a1, v1; li a2, v2;                               \
    inst a1, a2, 9981f;                                                 \
    j rvh_fail;                                                         \
9982: j 9983f;                                                          \
9981: inst a1, a2, 9982b;                                               \
    j rvh_fail;                                                         \
9983:

#define TEST_BR_NOTTAKEN(n, inst, v1, v2)                               \
    SET_TESTNUM(n); li a1, v1; li a2, v2;                               \
    inst a1, a2, 9984f;                                                 \
    j 9985f;                                                            \
9984: j rvh_fail;                                                       \
9985: inst a1, a2, 9984b

/* ---- traps ---- */
/* run one instruction that must trap with this cause; mepc must point to it */
#define TEST_TRAP(n, cause, ...)                                        \
    SET_TESTNUM(n); li s2, -1; li s5, 0;                                \
9986: __VA_ARGS__;                                                      \
    CHECK_EQ(s2, cause); la t6, 9986b; ASSERT_EQ(s3, t6)

/* same, and mtval must equal tval */
#define TEST_TRAP_TVAL(n, cause, tval, ...)                             \
    TEST_TRAP(n, cause, __VA_ARGS__); CHECK_EQ(s4, tval)

/* illegal instruction: mepc = the instruction, mtval = its bits
 * (16 or 32, zero-extended; read back from memory for the comparison) */
#define TEST_ILLEGAL(n, ...)                                            \
    TEST_TRAP(n, CAUSE_ILLEGAL_INSTRUCTION, __VA_ARGS__);               \
    la t6, 9986b; lhu t5, 0(t6); lhu t6, 2(t6);                         \
    slli t6, t6, 16; or t6, t6, t5;                                     \
    andi t5, t5, 3; addi t5, t5, -3; beqz t5, 9987f;                    \
    slli t6, t6, 48; srli t6, t6, 48;                                   \
9987: ASSERT_EQ(s4, t6)

/* arm the handler by hand (for multi-instruction sequences) */
#define TRAP_ARM            li s2, -1; li s5, 0
#define TRAP_ARM_RESUME(l)  li s2, -1; la s5, l

/* ---- printing from assembler (clobbers a0-a7, t0-t6, ra) ---- */
#define PRINT_REG(fmt, reg)                                             \
    mv a1, reg;                                                         \
    .pushsection .rodata.rvh_test_str, "a", @progbits;                  \
9970: .asciz fmt;                                                       \
    .popsection;                                                        \
    la a0, 9970b; call printf

#define PRINT_STR(str)                                                  \
    .pushsection .rodata.rvh_test_str, "a", @progbits;                  \
9971: .asciz str;                                                       \
    .popsection;                                                        \
    la a0, 9971b; call print_str

/* ---- epilogue ---- */
#define RVH_TEST_END                                                    \
    la a0, rvh_test_name;                                               \
    call rvh_test_pass;                                                 \
rvh_fail:                                                               \
    la a0, rvh_test_name;                                               \
    mv a1, TESTNUM;                                                     \
    call rvh_test_fail;                                                 \
    .size main, . - main;                                               \
                                                                        \
    .pushsection .text.rvh_test_trap, "ax", @progbits;                  \
    CODE_ALIGN(4);                                                      \
rvh_test_trap:                                                          \
    addi s6, s2, 1;                                                     \
    bnez s6, rvh_test_unexpected;                                       \
    csrr s2, mcause;                                                    \
    csrr s3, mepc;                                                      \
    csrr s4, mtval;                                                     \
    bltz s2, 9975f;                                                     \
    beqz s5, 9973f;                                                     \
    csrw mepc, s5;                                                      \
    li s5, 0;                                                           \
    mret;                                                               \
9973: lhu s6, 0(s3);                                                    \
    andi s6, s6, 3;                                                     \
    addi s6, s6, -3;                                                    \
    bnez s6, 9974f;                                                     \
    addi s6, s3, 4;                                                     \
    csrw mepc, s6;                                                      \
    mret;                                                               \
9974: addi s6, s3, 2;                                                   \
    csrw mepc, s6;                                                      \
    mret;                                                               \
9975: csrw mie, zero;                                                   \
    beqz s5, 9976f;                                                     \
    csrw mepc, s5;                                                      \
    li s5, 0;                                                           \
9976: mret;                                                             \
rvh_test_unexpected:                                                    \
    la a0, rvh_test_name;                                               \
    mv a1, TESTNUM;                                                     \
    csrr a2, mcause;                                                    \
    csrr a3, mepc;                                                      \
    csrr a4, mtval;                                                     \
    call rvh_test_trap_fail;                                            \
    .popsection

#endif /* RVH_TEST_H */

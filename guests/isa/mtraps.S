/*
 * mtraps.S - M-mode privileged basics: traps, interrupts, machine CSRs.
 *
 * Covers:
 *  - machine CSRs: misa (printed; MXL = 2 and I, M, A, C set), mstatus at
 *    reset (printed; MIE = MPRV = 0 checked), mhartid == 0, mvendorid/
 *    marchid/mimpid/medeleg/mideleg readable, mtvec read-back, minstret
 *    and mcycle increasing
 *  - ecall (cause 11, mtval 0), ebreak and c.ebreak (cause 3; mtval 0 on
 *    QEMU 7.2, the address of the instruction also accepted)
 *  - illegal instructions, mtval = the instruction bits: 0x0000, 0xffffffff,
 *    custom-0, flw with F disabled, unimplemented CSR, reserved compressed
 *    encodings (c.addi4spn imm 0, c.addi16sp imm 0, c.lui imm 0, c.lwsp and
 *    c.ldsp with rd 0, c.jr x0, quadrant-0 funct3 100, reserved c.subw/c.addw
 *    slots) and c.fld/c.fsd/c.fldsp/c.fsdsp with D disabled
 *  - load/store access faults on unmapped address 0x0 (causes 5/7, mtval =
 *    address), AMO access fault (spec 7, QEMU 7.2 gives 5: both accepted),
 *    instruction access fault on a jump to 0x0 (cause 1, mepc = mtval = 0)
 *  - jumps to 2-byte aligned targets (legal with C; bit 0 of jalr cleared)
 *  - trap entry: MPIE <- MIE, MIE <- 0, MPP <- M; mret: MIE <- MPIE,
 *    MPIE <- 1, MPP <- U (least privileged supported mode), pc <- mepc
 *  - mtvec vectored mode: exceptions at base, interrupts at base + 4*cause
 *  - machine software interrupt via CLINT msip, machine timer interrupt via
 *    mtimecmp (taken right after the csrs that enables it; wfi wakes up with
 *    mstatus.MIE = 0; an interrupt arriving during wfi with MIE = 1 has mepc
 *    after the wfi), mip.MSIP/MTIP follow the CLINT, MSI has priority over MTI
 * No exact timer values are assumed.
 *
 * Exit 0 = pass, otherwise the number of the first failing test.
 */
#include "test.h"
#include "rvh/encoding.h"

#define CLINT_MSIP0      (CLINT_BASE + CLINT_MSIP_OFFSET)
#define CLINT_MTIMECMP0  (CLINT_BASE + CLINT_MTIMECMP_OFFSET)
#define CLINT_MTIME      (CLINT_BASE + CLINT_MTIME_OFFSET)
#define CAUSE_MSI        (MCAUSE_INTERRUPT_MASK | INTERRUPT_MACHINE_SOFTWARE)
#define CAUSE_MTI        (MCAUSE_INTERRUPT_MASK | INTERRUPT_MACHINE_TIMER)

    .option norvc

RVH_TEST_BEGIN(mtraps)

    /* ---------------- machine information CSRs ---------------- */
    csrr s7, mstatus                    /* untouched since reset */
    csrr s8, misa
    PRINT_REG("mtraps: misa=0x%lx", s8)
    PRINT_REG(" mstatus(reset)=0x%lx\n", s7)
    SET_TESTNUM(1)                     /* MIE = 0 and MPRV = 0 at reset */
    li t0, (1 << 3) | (1 << 17)
    and a0, s7, t0
    CHECK_EQ(a0, 0)
    SET_TESTNUM(2)                     /* MXL = 2 (64-bit) */
    srli a0, s8, 62
    CHECK_EQ(a0, 2)
    SET_TESTNUM(3)                     /* I, M, A, C */
    li t0, (1 << 8) | (1 << 12) | (1 << 0) | (1 << 2)
    and a0, s8, t0
    ASSERT_EQ(a0, t0)
    SET_TESTNUM(4)
    csrr a0, mhartid
    CHECK_EQ(a0, 0)
    SET_TESTNUM(5)                     /* readable without trapping */
    csrr a0, mvendorid
    csrr a0, marchid
    csrr a0, mimpid
    csrr a0, medeleg
    csrr a0, mideleg
    csrr a0, mie
    csrr a0, mip
    SET_TESTNUM(6)                     /* mtvec holds the direct-mode handler */
    csrr a0, mtvec
    la t0, rvh_test_trap
    ASSERT_EQ(a0, t0)
    SET_TESTNUM(7)                     /* minstret / mcycle increase */
    csrr a1, minstret
    csrr a2, mcycle
    li t0, 1000
1:  addi t0, t0, -1
    bnez t0, 1b
    csrr a3, minstret
    csrr a4, mcycle
    bgeu a1, a3, rvh_fail
    bgeu a2, a4, rvh_fail

    /* ---------------- ecall / ebreak ---------------- */
    TEST_TRAP_TVAL(8, CAUSE_ECALL_FROM_M, 0, ecall)
    TEST_TRAP(9, CAUSE_BREAKPOINT, ebreak)
    la t0, 9986b                        /* mtval: 0 (QEMU 7.2) or the pc */
    beqz s4, 1f
    ASSERT_EQ(s4, t0)
1:
    .option push
    .option rvc
    TEST_TRAP(10, CAUSE_BREAKPOINT, c.ebreak)
    .option pop
    la t0, 9986b
    beqz s4, 1f
    ASSERT_EQ(s4, t0)
1:  SET_TESTNUM(11)                     /* c.ebreak is 2 bytes: resumed right after */
    .option push
    .option rvc
    TRAP_ARM
    c.ebreak
    c.li a0, 17
    .option pop
    CHECK_EQ(s2, CAUSE_BREAKPOINT)
    CHECK_EQ(a0, 17)

    /* ---------------- illegal instructions ---------------- */
    /* each 16-bit pattern is followed by a c.nop (0x0001) to keep alignment */
    TEST_ILLEGAL(12, .hword 0x0000)     /* all-zero: defined illegal */
    .hword 0x0001
    TEST_ILLEGAL(13, .word 0xffffffff)
    TEST_ILLEGAL(14, .word 0x0000000b)  /* custom-0 */
    TEST_ILLEGAL(15, .word 0x00002007)  /* flw f0, 0(x0): F disabled */
    TEST_ILLEGAL(16, csrr a0, 0x8c0)    /* unimplemented CSR */
    TEST_ILLEGAL(17, .hword 0x0004)     /* c.addi4spn x9, sp, 0: reserved */
    .hword 0x0001
    TEST_ILLEGAL(18, .hword 0x6101)     /* c.addi16sp sp, 0: reserved */
    .hword 0x0001
    TEST_ILLEGAL(19, .hword 0x6501)     /* c.lui a0, 0: reserved */
    .hword 0x0001
    TEST_ILLEGAL(20, .hword 0x4002)     /* c.lwsp x0, 0(sp): reserved */
    .hword 0x0001
    TEST_ILLEGAL(21, .hword 0x6002)     /* c.ldsp x0, 0(sp): reserved */
    .hword 0x0001
    TEST_ILLEGAL(22, .hword 0x8002)     /* c.jr x0: reserved */
    .hword 0x0001
    TEST_ILLEGAL(23, .hword 0x8000)     /* quadrant 0, funct3 100: reserved */
    .hword 0x0001
    TEST_ILLEGAL(24, .hword 0x9c41)     /* 100 1 11 ... 10 ..01: reserved */
    .hword 0x0001
    TEST_ILLEGAL(25, .hword 0x9c61)     /* 100 1 11 ... 11 ..01: reserved */
    .hword 0x0001
    TEST_ILLEGAL(26, .hword 0x2000)     /* c.fld: D disabled */
    .hword 0x0001
    TEST_ILLEGAL(27, .hword 0xa000)     /* c.fsd */
    .hword 0x0001
    TEST_ILLEGAL(28, .hword 0x2002)     /* c.fldsp */
    .hword 0x0001
    TEST_ILLEGAL(29, .hword 0xa002)     /* c.fsdsp */
    .hword 0x0001
    SET_TESTNUM(30)                     /* an illegal instruction has no effect */
    li a0, 0x1234
    TRAP_ARM
    .word 0x02a0050b                    /* custom-0 with rd = a0 */
    CHECK_EQ(s2, CAUSE_ILLEGAL_INSTRUCTION)
    CHECK_EQ(a0, 0x1234)

    /* ---------------- access faults ---------------- */
    li a1, 0
    TEST_TRAP_TVAL(31, CAUSE_LOAD_ACCESS_FAULT, 0, lw a0, 0(a1))
    TEST_TRAP_TVAL(32, CAUSE_STORE_ACCESS_FAULT, 0, sw a0, 0(a1))
    TEST_TRAP_TVAL(33, CAUSE_LOAD_ACCESS_FAULT, 8, ld a0, 8(a1))
    TEST_TRAP_TVAL(34, CAUSE_STORE_ACCESS_FAULT, 0x10, sd a0, 0x10(a1))
    TEST_TRAP_TVAL(35, CAUSE_LOAD_ACCESS_FAULT, 3, lbu a0, 3(a1))
    TEST_TRAP_TVAL(36, CAUSE_STORE_ACCESS_FAULT, 6, sh a0, 6(a1))
    SET_TESTNUM(37)                     /* a faulting load leaves rd alone */
    li a0, 0x4321
    TRAP_ARM
    ld a0, 0(a1)
    CHECK_EQ(s2, CAUSE_LOAD_ACCESS_FAULT)
    CHECK_EQ(a0, 0x4321)
    /* AMO to an unmapped address: the spec says store/AMO access fault (7);
     * QEMU 7.2 raises a load access fault (5).  Accept both. */
    SET_TESTNUM(38)
    li a1, 0x20
    TRAP_ARM
9:  amoadd.w a0, a2, (a1)
    la t0, 9b
    ASSERT_EQ(s3, t0)
    CHECK_EQ(s4, 0x20)
    li t0, 7
    beq s2, t0, 1f
    CHECK_EQ(s2, CAUSE_LOAD_ACCESS_FAULT)
1:
    /* instruction access fault: jump to 0 */
    SET_TESTNUM(39)
    TRAP_ARM_RESUME(2f)
    li t0, 0
1:  jalr ra, 0(t0)
    j rvh_fail
2:  CHECK_EQ(s2, CAUSE_INSTRUCTION_ACCESS_FAULT)
    CHECK_EQ(s3, 0)                     /* mepc = the target */
    CHECK_EQ(s4, 0)                     /* mtval = the target */
    la t0, 1b + 4                       /* the jalr completed (ra written) */
    ASSERT_EQ(ra, t0)

    /* ---------------- jump targets with C enabled ---------------- */
    SET_TESTNUM(40)                     /* jalr to 4n+2 */
    la t0, ctarget
    addi t0, t0, 2
    li a0, 0
    jalr ra, 0(t0)
    CHECK_EQ(a0, 2)
    SET_TESTNUM(41)                     /* jalr to 4n+3: bit 0 cleared -> 4n+2 */
    la t0, ctarget
    addi t0, t0, 3
    li a0, 0
    jalr ra, 0(t0)
    CHECK_EQ(a0, 2)
    SET_TESTNUM(42)                     /* jal / branch to 4n+2 */
    li a0, 0
    beqz a0, 3f
    j rvh_fail
    CODE_ALIGN(4)
    .option push
    .option rvc
    c.nop
3:  c.li a0, 5                          /* at 4n+2 */
    .option pop
    jal ra, 4f
    j rvh_fail
    CODE_ALIGN(4)
    .option push
    .option rvc
    c.nop
4:  c.addi a0, 1
    .option pop
    CHECK_EQ(a0, 6)

    /* ---------------- trap entry / mret and mstatus ---------------- */
    SET_TESTNUM(43)                     /* entry: MPIE <- MIE(1), MIE <- 0, MPP <- 3 */
    csrw mie, zero
    la t0, status_trap
    csrw mtvec, t0
    li t0, 0x1888
    csrc mstatus, t0
    csrsi mstatus, 8                    /* MIE = 1 (mie = 0: no interrupt) */
    ecall
    la t0, rvh_test_trap
    csrw mtvec, t0
    li t0, 0x1888
    and a0, s7, t0
    CHECK_EQ(a0, 0x1880)
    CHECK_EQ(s8, 11)
    csrr a1, mstatus                    /* after mret: MIE = MPIE = 1, MPP = U */
    and a0, a1, t0
    CHECK_EQ(a0, 0x88)
    csrci mstatus, 8
    SET_TESTNUM(44)                     /* mret with MPIE = 0, MPP = M */
    li t0, 0x1888
    csrc mstatus, t0
    li t0, 0x1808                       /* MPP = M, MIE = 1, MPIE = 0 */
    csrs mstatus, t0
    la t0, 1f
    csrw mepc, t0
    mret
    j rvh_fail
1:  csrr a1, mstatus
    li t0, 0x1888
    and a0, a1, t0
    CHECK_EQ(a0, 0x80)                  /* MIE = 0, MPIE = 1, MPP = U */
    csrr a0, mscratch                   /* still in M-mode (would trap in U) */
    SET_TESTNUM(45)                     /* mret with MPIE = 1 to a 2-byte aligned pc */
    li t0, 0x1880
    csrs mstatus, t0
    la t0, ctarget
    addi t0, t0, 2
    csrw mepc, t0
    li a0, 0
    la ra, 1f
    mret
    j rvh_fail
1:  CHECK_EQ(a0, 2)
    csrr a1, mstatus
    li t0, 0x1888
    and a0, a1, t0
    CHECK_EQ(a0, 0x88)                  /* MIE = 1 */
    csrci mstatus, 8
    SET_TESTNUM(46)                     /* mepc/mcause/mtval are read/write */
    la t0, ctarget
    csrw mepc, t0
    csrr a0, mepc
    ASSERT_EQ(a0, t0)
    li t0, 0x123456789abcdef0
    csrw mtval, t0
    csrr a0, mtval
    ASSERT_EQ(a0, t0)

    /* least privileged mode is U only if misa.U is set */
    csrr a0, misa
    srli a0, a0, 20
    andi a0, a0, 1
    bnez a0, 1f
    FAIL_TEST(47)                       /* rvh/QEMU implement U-mode */
1:

    /* ---------------- software interrupt (direct mode) ---------------- */
    csrw mie, zero
    csrci mstatus, 8
    SET_TESTNUM(48)                     /* msip -> mip.MSIP */
    li t0, CLINT_MSIP0
    li t1, 1
    sw t1, 0(t0)
    lw a0, 0(t0)
    CHECK_EQ(a0, 1)
    csrr a0, mip
    andi a0, a0, MIP_MSIP_MASK
    CHECK_EQ(a0, MIP_MSIP_MASK)
    SET_TESTNUM(49)                     /* not taken while mie.MSIE = 0 */
    csrsi mstatus, 8
    nop
    nop
    csrci mstatus, 8
    SET_TESTNUM(50)                     /* taken right after the enabling csrs */
    csrsi mie, MIP_MSIP_MASK
    TRAP_ARM
    csrsi mstatus, 8
1:  csrci mstatus, 8
    li t0, CAUSE_MSI
    ASSERT_EQ(s2, t0)
    la t0, 1b
    ASSERT_EQ(s3, t0)
    CHECK_EQ(s4, 0)
    csrr a0, mie                        /* (the handler cleared mie) */
    CHECK_EQ(a0, 0)
    SET_TESTNUM(51)                     /* clearing msip clears mip.MSIP */
    li t0, CLINT_MSIP0
    sw zero, 0(t0)
    lw a0, 0(t0)
    CHECK_EQ(a0, 0)
    csrr a0, mip
    andi a0, a0, MIP_MSIP_MASK
    CHECK_EQ(a0, 0)

    /* ---------------- vectored mtvec ---------------- */
    SET_TESTNUM(52)
    la t0, vec_table
    ori t0, t0, 1
    csrw mtvec, t0
    csrr a0, mtvec
    ASSERT_EQ(a0, t0)
    SET_TESTNUM(53)                     /* exceptions go to the base */
    li s8, 0
    TRAP_ARM
    ecall
    CHECK_EQ(s2, CAUSE_ECALL_FROM_M)
    CHECK_EQ(s8, 0x100)
    SET_TESTNUM(54)                     /* software interrupt -> base + 4*3 */
    li s8, 0
    li t0, CLINT_MSIP0
    li t1, 1
    sw t1, 0(t0)
    csrsi mie, MIP_MSIP_MASK
    TRAP_ARM
    csrsi mstatus, 8
1:  csrci mstatus, 8
    li t0, CAUSE_MSI
    ASSERT_EQ(s2, t0)
    CHECK_EQ(s8, 3)
    la t0, 1b
    ASSERT_EQ(s3, t0)
    li t0, CLINT_MSIP0
    sw zero, 0(t0)

    /* ---------------- timer interrupt (vectored) ---------------- */
    SET_TESTNUM(55)                     /* mtimecmp = max: MTIP clear */
    li t0, CLINT_MTIMECMP0
    li t1, -1
    sd t1, 0(t0)
    ld a0, 0(t0)
    CHECK_EQ(a0, -1)
    csrr a0, mip
    andi a0, a0, MIP_MTIP_MASK
    CHECK_EQ(a0, 0)
    SET_TESTNUM(56)                     /* wfi wakes up on MTIP with MIE = 0 */
    li t0, CLINT_MTIME
    ld t1, 0(t0)
    addi t1, t1, 1000                   /* 100 us */
    li t0, CLINT_MTIMECMP0
    sd t1, 0(t0)
    li t0, MIP_MTIP_MASK
    csrs mie, t0
1:  wfi                                 /* may also return early: loop */
    csrr a0, mip
    andi a0, a0, MIP_MTIP_MASK
    beqz a0, 1b
    li t0, CLINT_MTIME                  /* mtime >= mtimecmp now */
    ld a0, 0(t0)
    bltu a0, t1, rvh_fail
    SET_TESTNUM(57)                     /* taken when MIE is set, at base + 4*7 */
    li s8, 0
    TRAP_ARM
    csrsi mstatus, 8
1:  csrci mstatus, 8
    li t0, CAUSE_MTI
    ASSERT_EQ(s2, t0)
    CHECK_EQ(s8, 7)
    la t0, 1b
    ASSERT_EQ(s3, t0)
    SET_TESTNUM(58)                     /* MTIP stays pending until mtimecmp moves */
    csrr a0, mip
    andi a0, a0, MIP_MTIP_MASK
    CHECK_EQ(a0, MIP_MTIP_MASK)
    li t0, CLINT_MTIMECMP0
    li t1, -1
    sd t1, 0(t0)
    csrr a0, mip
    andi a0, a0, MIP_MTIP_MASK
    CHECK_EQ(a0, 0)

    /* ---------------- priority: MSI before MTI ---------------- */
    SET_TESTNUM(59)
    li t0, CLINT_MTIMECMP0              /* both pending */
    sd zero, 0(t0)
    li t0, CLINT_MSIP0
    li t1, 1
    sw t1, 0(t0)
    csrr a0, mip
    andi a0, a0, MIP_MSIP_MASK | MIP_MTIP_MASK
    CHECK_EQ(a0, MIP_MSIP_MASK | MIP_MTIP_MASK)
    li t0, MIP_MSIP_MASK | MIP_MTIP_MASK
    csrs mie, t0
    li s8, 0
    TRAP_ARM
    csrsi mstatus, 8
    csrci mstatus, 8
    li t0, CAUSE_MSI
    ASSERT_EQ(s2, t0)
    CHECK_EQ(s8, 3)
    li t0, CLINT_MSIP0
    sw zero, 0(t0)
    SET_TESTNUM(60)                     /* then MTI */
    li t0, MIP_MTIP_MASK
    csrs mie, t0
    li s8, 0
    TRAP_ARM
    csrsi mstatus, 8
    csrci mstatus, 8
    li t0, CAUSE_MTI
    ASSERT_EQ(s2, t0)
    CHECK_EQ(s8, 7)
    li t0, CLINT_MTIMECMP0
    li t1, -1
    sd t1, 0(t0)

    /* ---------------- interrupt during wfi (direct mode) ---------------- */
    /* mepc must be after the wfi.  If the timer fires before the wfi (a very
     * slow emulator), the handler resumes at 2f and the mepc check fails
     * rather than hanging in wfi with mie = 0. */
    SET_TESTNUM(61)
    la t0, rvh_test_trap
    csrw mtvec, t0
    li t0, CLINT_MTIME
    ld t1, 0(t0)
    li t2, 200000                       /* 20 ms */
    add t1, t1, t2
    li t0, CLINT_MTIMECMP0
    sd t1, 0(t0)
    li t0, MIP_MTIP_MASK
    csrs mie, t0
    TRAP_ARM_RESUME(2f)
    csrsi mstatus, 8
    wfi
2:  li t0, -1                           /* wfi may return early: spin */
    beq s2, t0, 2b
3:  csrci mstatus, 8
    li t0, CAUSE_MTI
    ASSERT_EQ(s2, t0)
    la t0, 2b
    bltu s3, t0, rvh_fail
    la t0, 3b
    bgtu s3, t0, rvh_fail
    li t0, CLINT_MTIMECMP0
    li t1, -1
    sd t1, 0(t0)

RVH_TEST_END

    .text
    /* records mstatus/mcause at trap entry, skips the 4-byte ecall */
    CODE_ALIGN(4)
status_trap:
    csrr s7, mstatus
    csrr s8, mcause
    csrr s6, mepc
    addi s6, s6, 4
    csrw mepc, s6
    mret

    /* ctarget+0: c.j (16-bit), ctarget+2: c.li a0, 2; ret */
    CODE_ALIGN(4)
ctarget:
    .option push
    .option rvc
    c.j rvh_fail_far
    c.li a0, 2
    c.jr ra
    .option pop
rvh_fail_far:
    j rvh_fail

    /* vector table: 4-byte jumps, exceptions at +0, interrupt n at +4n */
    CODE_ALIGN(256)
vec_table:
    j vec_exc                           /* 0: exceptions */
    j vec_bad                           /* 1: SSI */
    j vec_bad                           /* 2 */
    j vec_msi                           /* 3: MSI */
    j vec_bad                           /* 4 */
    j vec_bad                           /* 5: STI */
    j vec_bad                           /* 6 */
    j vec_mti                           /* 7: MTI */
    j vec_bad                           /* 8 */
    j vec_bad                           /* 9: SEI */
    j vec_bad                           /* 10 */
    j vec_bad                           /* 11: MEI */
    j vec_bad                           /* 12 */
    j vec_bad                           /* 13 */
    j vec_bad                           /* 14 */
    j vec_bad                           /* 15 */
vec_exc:
    li s8, 0x100
    j rvh_test_trap
vec_msi:
    li s8, 3
    j rvh_test_trap
vec_mti:
    li s8, 7
    j rvh_test_trap
vec_bad:
    li s8, -2
    j rvh_test_trap

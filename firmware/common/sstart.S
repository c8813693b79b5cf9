/*
 * sstart.S - S-mode entry of rvh's SBI payloads (the S-mode guests, and firmware such as the
 * hypervisor); link with slink.ld, libc.c and sbi.c.
 *
 * The SBI firmware enters _start (0x8020_0000) in S-mode with
 * a0 = hartid, a1 = DTB address and satp = 0.
 *
 *   - The first hart to arrive wins an AMO lottery and becomes the boot
 *     hart; any other hart that enters _start gives itself back to the SBI
 *     (sbi_hart_stop) so that the payload can start it with sbi_hart_start.
 *   - The boot hart sets gp, tp = hartid, sp = __stack_top, zeroes .bss,
 *     sets sscratch = 0 and stvec = rvh_strap_entry (direct), calls
 *     rvh_sinit(hartid, dtb) and main(hartid, dtb); main's return value
 *     goes to rvh_exit.  rvh_strap_entry and rvh_sinit are weak here: the
 *     defaults report an unexpected trap and exit, and pick the SBI console
 *     (sbi_console_init); a payload defines its own to replace them.
 *
 * rvh_exit(code):
 *   0 -> SBI SRST system_reset(shutdown, no reason); if that returns,
 *        the legacy shutdown.
 *   n -> write TEST_FINISHER_FAIL | (n << 16) (32 bits, n = low 16 bits of
 *        the code, or 1 when those are 0) to the test device directly from
 *        S-mode (satp is cleared first so that the address is physical; a
 *        fault on that store is caught), then SRST system_reset(shutdown,
 *        system failure) as a fallback.
 *   Both paths end in a wfi loop.
 */
#include "rvh/encoding.h"
#include "rvh/start.h"

    .section .text.start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    /* boot lottery: .data starts as loaded (0) */
    la      t0, rvh_boot_lottery
    li      t1, 1
    amoswap.w.aqrl t1, t1, (t0)
    bnez    t1, .Lextra_hart

    mv      tp, a0
    la      sp, __stack_top
    mv      s0, a0
    mv      s1, a1
    csrw    sscratch, zero
    la      t0, rvh_strap_entry
    csrw    stvec, t0

    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:
    mv      a0, s0
    mv      a1, s1
    call    rvh_sinit
    mv      a0, s0
    mv      a1, s1
    call    main
    j       rvh_exit

    /* another hart came through _start: hand it back to the SBI */
.Lextra_hart:
    csrw    sie, zero
    li      a7, SBI_EXT_HSM
    li      a6, SBI_HSM_HART_STOP
    ecall
1:  wfi
    j       1b
    .size _start, . - _start

    .section .data.rvh_boot, "aw", @progbits
    .balign 8
rvh_boot_lottery:
    .word   0
    .word   0

/* ---------------------------------------------------------------------- */
/* secondary harts started with sbi_hart_start(hartid, rvh_secondary_entry, opaque) */
    .text
    .globl rvh_secondary_entry
    .type rvh_secondary_entry, @function
    .balign 4
rvh_secondary_entry:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    mv      tp, a0
    li      t0, RVH_MAX_HARTS
    bgeu    a0, t0, .Lsec_stop
    la      sp, __sec_stacks
    addi    t0, a0, 1
    li      t1, RVH_SECONDARY_STACK_SIZE
    mul     t0, t0, t1
    add     sp, sp, t0
    csrw    sscratch, zero
    la      t0, rvh_strap_entry
    csrw    stvec, t0
#ifdef RVH_PV
    /* a paravirtual guest (guests/common/pv.h): this hart's shared page first */
    mv      s0, a0
    mv      s1, a1
    call    rvh_pv_init
    mv      a0, s0
    mv      a1, s1
#endif
    call    rvh_secondary_main
.Lsec_stop:
    csrw    sie, zero
    csrci   sstatus, SSTATUS_SIE_MASK
    li      a7, SBI_EXT_HSM
    li      a6, SBI_HSM_HART_STOP
    ecall
1:  wfi
    j       1b
    .size rvh_secondary_entry, . - rvh_secondary_entry

/* ---------------------------------------------------------------------- */
/* void rvh_exit(int code) */
    .globl rvh_exit
    .type rvh_exit, @function
    .balign 4
rvh_exit:
    csrci   sstatus, SSTATUS_SIE_MASK
    beqz    a0, .Lexit_pass
    slli    t2, a0, 48
    srli    t2, t2, 48              /* code & 0xffff */
    bnez    t2, 1f
    li      t2, 1
1:  slli    t2, t2, 16
    li      t1, TEST_FINISHER_FAIL
    or      t1, t1, t2
    la      t0, .Lexit_srst_fail    /* a fault on the store lands there */
    csrw    stvec, t0
    csrw    satp, zero
    sfence.vma
    li      t0, TEST_BASE
    sw      t1, 0(t0)
    .balign 4
.Lexit_srst_fail:
    li      a0, SBI_SRST_TYPE_SHUTDOWN
    li      a1, SBI_SRST_REASON_SYSTEM_FAILURE
    li      a6, SBI_SRST_SYSTEM_RESET
    li      a7, SBI_EXT_SRST
    ecall
    j       .Lexit_hang
.Lexit_pass:
    li      a0, SBI_SRST_TYPE_SHUTDOWN
    li      a1, SBI_SRST_REASON_NONE
    li      a6, SBI_SRST_SYSTEM_RESET
    li      a7, SBI_EXT_SRST
    ecall
    li      a0, 0
    li      a6, 0
    li      a7, SBI_EXT_LEGACY_SHUTDOWN
    ecall
.Lexit_hang:
    wfi
    j       .Lexit_hang
    .size rvh_exit, . - rvh_exit


/* ---------------------------------------------------------------------- */
/* Defaults a payload replaces with its own (see above). */
    .weak rvh_sinit
    .type rvh_sinit, @function
    .balign 4
rvh_sinit:
    tail    sbi_console_init
    .size rvh_sinit, . - rvh_sinit

/* unexpected trap: "*** unexpected S-mode trap: scause=..." and exit 0x7f */
    .weak rvh_strap_entry
    .type rvh_strap_entry, @function
    .balign 4
rvh_strap_entry:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    csrr    a1, scause
    csrr    a2, sepc
    csrr    a3, stval
    la      a0, .Lmsg_strap
    call    printf
    li      a0, 0x7f
    j       rvh_exit
    .size rvh_strap_entry, . - rvh_strap_entry

    .section .rodata.rvh_sstart, "a", @progbits
.Lmsg_strap:
    .asciz "\n*** unexpected S-mode trap: scause=0x%lx sepc=0x%lx stval=0x%lx\n"

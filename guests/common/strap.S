/*
 * strap.S - the S-mode guests' trap entry and U-mode switch (link with smode.c; the start-up is
 * firmware/common/sstart.S, which points stvec here).
 */
#include "rvh/encoding.h"
#include "smode.h"

/* ---------------------------------------------------------------------- */
/*
 * Trap entry.  sscratch = 0 while in S-mode, = the kernel stack top while
 * in U-mode.  Builds a struct strap_frame below the stack pointer, calls
 * rvh_strap_c(frame) and returns with sret using the (possibly changed)
 * sepc / sstatus / registers of the frame.
 */
    .globl rvh_strap_entry
    .type rvh_strap_entry, @function
    .balign 4
rvh_strap_entry:
    csrrw   sp, sscratch, sp
    bnez    sp, .Ltrap_from_user
    csrrw   sp, sscratch, sp        /* from S: sp back, sscratch = 0 */
    addi    sp, sp, -SFRAME_SIZE
    sd      t0, SFRAME_X(5)(sp)
    addi    t0, sp, SFRAME_SIZE
    sd      t0, SFRAME_X(2)(sp)
    j       .Ltrap_save
.Ltrap_from_user:
    addi    sp, sp, -SFRAME_SIZE    /* sp = kernel stack */
    sd      t0, SFRAME_X(5)(sp)
    csrr    t0, sscratch            /* the user sp */
    sd      t0, SFRAME_X(2)(sp)
    csrw    sscratch, zero
.Ltrap_save:
    sd      x1, SFRAME_X(1)(sp)
    sd      x3, SFRAME_X(3)(sp)
    sd      x4, SFRAME_X(4)(sp)
    sd      x6, SFRAME_X(6)(sp)
    sd      x7, SFRAME_X(7)(sp)
    sd      x8, SFRAME_X(8)(sp)
    sd      x9, SFRAME_X(9)(sp)
    sd      x10, SFRAME_X(10)(sp)
    sd      x11, SFRAME_X(11)(sp)
    sd      x12, SFRAME_X(12)(sp)
    sd      x13, SFRAME_X(13)(sp)
    sd      x14, SFRAME_X(14)(sp)
    sd      x15, SFRAME_X(15)(sp)
    sd      x16, SFRAME_X(16)(sp)
    sd      x17, SFRAME_X(17)(sp)
    sd      x18, SFRAME_X(18)(sp)
    sd      x19, SFRAME_X(19)(sp)
    sd      x20, SFRAME_X(20)(sp)
    sd      x21, SFRAME_X(21)(sp)
    sd      x22, SFRAME_X(22)(sp)
    sd      x23, SFRAME_X(23)(sp)
    sd      x24, SFRAME_X(24)(sp)
    sd      x25, SFRAME_X(25)(sp)
    sd      x26, SFRAME_X(26)(sp)
    sd      x27, SFRAME_X(27)(sp)
    sd      x28, SFRAME_X(28)(sp)
    sd      x29, SFRAME_X(29)(sp)
    sd      x30, SFRAME_X(30)(sp)
    sd      x31, SFRAME_X(31)(sp)
    csrr    t0, sepc
    sd      t0, SFRAME_SEPC(sp)
    csrr    t0, sstatus
    sd      t0, SFRAME_SSTATUS(sp)
    csrr    t0, scause
    sd      t0, SFRAME_SCAUSE(sp)
    csrr    t0, stval
    sd      t0, SFRAME_STVAL(sp)
    .option push
    .option norelax
    la      gp, __global_pointer$   /* user code may have changed gp */
    .option pop
    mv      a0, sp
    call    rvh_strap_c

    ld      t0, SFRAME_SEPC(sp)
    csrw    sepc, t0
    ld      t0, SFRAME_SSTATUS(sp)
    csrw    sstatus, t0
    andi    t0, t0, SSTATUS_SPP_MASK
    bnez    t0, 1f
    addi    t0, sp, SFRAME_SIZE     /* back to U: kernel stack in sscratch */
    csrw    sscratch, t0
1:
    ld      x1, SFRAME_X(1)(sp)
    ld      x3, SFRAME_X(3)(sp)
    ld      x4, SFRAME_X(4)(sp)
    ld      x5, SFRAME_X(5)(sp)
    ld      x6, SFRAME_X(6)(sp)
    ld      x7, SFRAME_X(7)(sp)
    ld      x8, SFRAME_X(8)(sp)
    ld      x9, SFRAME_X(9)(sp)
    ld      x10, SFRAME_X(10)(sp)
    ld      x11, SFRAME_X(11)(sp)
    ld      x12, SFRAME_X(12)(sp)
    ld      x13, SFRAME_X(13)(sp)
    ld      x14, SFRAME_X(14)(sp)
    ld      x15, SFRAME_X(15)(sp)
    ld      x16, SFRAME_X(16)(sp)
    ld      x17, SFRAME_X(17)(sp)
    ld      x18, SFRAME_X(18)(sp)
    ld      x19, SFRAME_X(19)(sp)
    ld      x20, SFRAME_X(20)(sp)
    ld      x21, SFRAME_X(21)(sp)
    ld      x22, SFRAME_X(22)(sp)
    ld      x23, SFRAME_X(23)(sp)
    ld      x24, SFRAME_X(24)(sp)
    ld      x25, SFRAME_X(25)(sp)
    ld      x26, SFRAME_X(26)(sp)
    ld      x27, SFRAME_X(27)(sp)
    ld      x28, SFRAME_X(28)(sp)
    ld      x29, SFRAME_X(29)(sp)
    ld      x30, SFRAME_X(30)(sp)
    ld      x31, SFRAME_X(31)(sp)
    ld      x2, SFRAME_X(2)(sp)
    sret
    .size rvh_strap_entry, . - rvh_strap_entry

/* ---------------------------------------------------------------------- */
/*
 * long probe_exec(uintptr_t addr): jalr addr with an armed expected trap
 * that resumes at the return point.  Returns strap_expect.cause (-1 when
 * the code at addr ran and returned).
 */
    .globl probe_exec
    .type probe_exec, @function
    .balign 4
probe_exec:
    addi    sp, sp, -16
    sd      ra, 0(sp)
    la      t0, strap_expect
    li      t1, -1
    sd      t1, 16(t0)              /* cause = -1 */
    la      t1, 1f
    sd      t1, 8(t0)               /* resume */
    li      t1, 1
    fence
    sd      t1, 0(t0)               /* armed */
    jalr    ra, 0(a0)
    .balign 4
1:  la      t0, strap_expect
    sd      zero, 0(t0)
    sd      zero, 8(t0)
    ld      a0, 16(t0)
    ld      ra, 0(sp)
    addi    sp, sp, 16
    ret
    .size probe_exec, . - probe_exec

/* ---------------------------------------------------------------------- */
/*
 * long rvh_enter_user(uintptr_t pc, uintptr_t usp, unsigned long arg, int spie)
 * void rvh_leave_user(long value)
 */
    .globl rvh_enter_user
    .type rvh_enter_user, @function
    .balign 4
rvh_enter_user:
    addi    sp, sp, -112
    sd      ra, 0(sp)
    sd      s0, 8(sp)
    sd      s1, 16(sp)
    sd      s2, 24(sp)
    sd      s3, 32(sp)
    sd      s4, 40(sp)
    sd      s5, 48(sp)
    sd      s6, 56(sp)
    sd      s7, 64(sp)
    sd      s8, 72(sp)
    sd      s9, 80(sp)
    sd      s10, 88(sp)
    sd      s11, 96(sp)
    sd      gp, 104(sp)
    la      t0, rvh_user_saved_sp
    sd      sp, 0(t0)
    csrw    sscratch, sp            /* trap frames go below the saved context */
    csrw    sepc, a0
    li      t0, SSTATUS_SPP_MASK
    csrc    sstatus, t0             /* SPP = 0: return to U */
    li      t0, SSTATUS_SPIE_MASK
    csrc    sstatus, t0
    beqz    a3, 1f
    csrs    sstatus, t0             /* SPIE as asked */
1:  mv      sp, a1
    mv      a0, a2
    li      a1, 0
    li      a2, 0
    li      a3, 0
    sret
    .size rvh_enter_user, . - rvh_enter_user

    .globl rvh_leave_user
    .type rvh_leave_user, @function
    .balign 4
rvh_leave_user:
    la      t0, rvh_user_saved_sp
    ld      sp, 0(t0)
    csrw    sscratch, zero
    ld      ra, 0(sp)
    ld      s0, 8(sp)
    ld      s1, 16(sp)
    ld      s2, 24(sp)
    ld      s3, 32(sp)
    ld      s4, 40(sp)
    ld      s5, 48(sp)
    ld      s6, 56(sp)
    ld      s7, 64(sp)
    ld      s8, 72(sp)
    ld      s9, 80(sp)
    ld      s10, 88(sp)
    ld      s11, 96(sp)
    ld      gp, 104(sp)
    addi    sp, sp, 112
    ret
    .size rvh_leave_user, . - rvh_leave_user

    .section .bss.rvh_user, "aw", @nobits
    .balign 8
rvh_user_saved_sp:
    .space 8

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

#ifdef RVH_PV
/* ---------------------------------------------------------------------- */
/*
 * The trap entry of a pv guest (guests/common/pv.h; docs/hypervisor.md, "pv mode").  The
 * hypervisor arrives here as the hart would at stvec, with scause, sepc, stval and sstatus in
 * the shared page, t0 = the page and the interrupted t0 in its TRAP_T0 word.  The same frame
 * and rvh_strap_c as rvh_strap_entry; the return is SYNC_AND_RETURN, which takes sepc and
 * sstatus from the page and a6/a7 from its RET_A6/RET_A7 words (the ecall needs the registers).
 */
    .globl rvh_pv_strap_entry
    .type rvh_pv_strap_entry, @function
    .balign 4
rvh_pv_strap_entry:
    sd      sp, RVH_PV_GUEST_SCRATCH0(t0)
    ld      sp, RVH_PV_SSCRATCH(t0)
    bnez    sp, 1f
    ld      sp, RVH_PV_GUEST_SCRATCH0(t0)   /* from S: the same stack */
    j       2f
1:  sd      zero, RVH_PV_SSCRATCH(t0)       /* from U: the kernel stack; sscratch = 0 in S */
2:  addi    sp, sp, -SFRAME_SIZE
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
    mv      s1, t0                          /* the page, kept across the call */
    la      t1, rvh_pv_pages                /* tp = this hart's index, whatever U-mode left */
    sub     tp, s1, t1                      /* there: the layer finds its page by tp */
    srli    tp, tp, 12
    ld      t1, RVH_PV_GUEST_SCRATCH0(s1)
    sd      t1, SFRAME_X(2)(sp)
    ld      t1, RVH_PV_TRAP_T0(s1)
    sd      t1, SFRAME_X(5)(sp)
    ld      t1, RVH_PV_SEPC(s1)
    sd      t1, SFRAME_SEPC(sp)
    ld      t1, RVH_PV_SSTATUS(s1)
    sd      t1, SFRAME_SSTATUS(sp)
    ld      t1, RVH_PV_SCAUSE(s1)
    sd      t1, SFRAME_SCAUSE(sp)
    ld      t1, RVH_PV_STVAL(s1)
    sd      t1, SFRAME_STVAL(sp)
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    mv      a0, sp
    call    rvh_strap_c

    ld      t1, SFRAME_SEPC(sp)
    sd      t1, RVH_PV_SEPC(s1)
    ld      t1, SFRAME_SSTATUS(sp)
    sd      t1, RVH_PV_SSTATUS(s1)
    andi    t1, t1, SSTATUS_SPP_MASK
    bnez    t1, 1f
    addi    t1, sp, SFRAME_SIZE             /* back to U: kernel stack in sscratch */
    sd      t1, RVH_PV_SSCRATCH(s1)
1:  ld      t1, SFRAME_X(16)(sp)
    sd      t1, RVH_PV_RET_A6(s1)
    ld      t1, SFRAME_X(17)(sp)
    sd      t1, RVH_PV_RET_A7(s1)
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
    li      a7, SBI_EXT_RVH_PV
    li      a6, SBI_RVH_PV_SYNC_AND_RETURN
    ecall
    .size rvh_pv_strap_entry, . - rvh_pv_strap_entry

/* t0 = this hart's shared page (tp = hartid in S-mode) */
.macro PV_PAGE_T0
    la      t0, rvh_pv_pages
    slli    t1, tp, 12
    add     t0, t0, t1
.endm
#endif /* RVH_PV */

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
#ifdef RVH_PV
    la      t0, rvh_pv_on
    lw      t0, 0(t0)
    beqz    t0, .Lenter_native
    /* the same through the shared page and SYNC_AND_RETURN */
    PV_PAGE_T0
    sd      sp, RVH_PV_SSCRATCH(t0)
    sd      a0, RVH_PV_SEPC(t0)
    ld      t1, RVH_PV_SSTATUS(t0)
    li      t2, SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK
    not     t2, t2
    and     t1, t1, t2
    beqz    a3, 1f
    ori     t1, t1, SSTATUS_SPIE_MASK
1:  sd      t1, RVH_PV_SSTATUS(t0)
    sd      zero, RVH_PV_RET_A6(t0)
    sd      zero, RVH_PV_RET_A7(t0)
    mv      sp, a1
    mv      a0, a2
    li      a1, 0
    li      a2, 0
    li      a3, 0
    li      a7, SBI_EXT_RVH_PV
    li      a6, SBI_RVH_PV_SYNC_AND_RETURN
    ecall
.Lenter_native:
#endif
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
#ifdef RVH_PV
    la      t0, rvh_pv_on
    lw      t0, 0(t0)
    beqz    t0, 1f
    PV_PAGE_T0
    sd      zero, RVH_PV_SSCRATCH(t0)
    j       2f
1:
#endif
    csrw    sscratch, zero
2:
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

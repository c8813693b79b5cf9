/*
 * hx_rt.S - low-level part of the H-extension test harness (see hx.h):
 * trap entries for M, HS and VS level, hx_run (enter a lower mode with
 * mret and come back with an ecall), stacks.
 *
 * Trap frame: 32 slots of 8 bytes, x<i> at 8*i; slot 2 holds the sp of the
 * trapped context.  Each level has its own trap stack, whose top is kept in
 * mscratch / sscratch (HS) / vsscratch (seen as sscratch in VS-mode).
 */
#include "rvh/encoding.h"

#define HX_MAGIC_RET    0x48585254      /* a7 of the ecall that ends hx_run */
#define HX_MAGIC_ABORT  0x48584142      /* a7 of the ecall that aborts it */
#define FRAME           256

    .option norelax

    .macro SAVE_REGS
    sd x1, 8(sp)
    sd x3, 24(sp)
    sd x4, 32(sp)
    sd x5, 40(sp)
    sd x6, 48(sp)
    sd x7, 56(sp)
    sd x8, 64(sp)
    sd x9, 72(sp)
    sd x10, 80(sp)
    sd x11, 88(sp)
    sd x12, 96(sp)
    sd x13, 104(sp)
    sd x14, 112(sp)
    sd x15, 120(sp)
    sd x16, 128(sp)
    sd x17, 136(sp)
    sd x18, 144(sp)
    sd x19, 152(sp)
    sd x20, 160(sp)
    sd x21, 168(sp)
    sd x22, 176(sp)
    sd x23, 184(sp)
    sd x24, 192(sp)
    sd x25, 200(sp)
    sd x26, 208(sp)
    sd x27, 216(sp)
    sd x28, 224(sp)
    sd x29, 232(sp)
    sd x30, 240(sp)
    sd x31, 248(sp)
    .endm

    .macro RESTORE_REGS
    ld x1, 8(sp)
    ld x3, 24(sp)
    ld x4, 32(sp)
    ld x5, 40(sp)
    ld x6, 48(sp)
    ld x7, 56(sp)
    ld x8, 64(sp)
    ld x9, 72(sp)
    ld x10, 80(sp)
    ld x11, 88(sp)
    ld x12, 96(sp)
    ld x13, 104(sp)
    ld x14, 112(sp)
    ld x15, 120(sp)
    ld x16, 128(sp)
    ld x17, 136(sp)
    ld x18, 144(sp)
    ld x19, 152(sp)
    ld x20, 160(sp)
    ld x21, 168(sp)
    ld x22, 176(sp)
    ld x23, 184(sp)
    ld x24, 192(sp)
    ld x25, 200(sp)
    ld x26, 208(sp)
    ld x27, 216(sp)
    ld x28, 224(sp)
    ld x29, 232(sp)
    ld x30, 240(sp)
    ld x31, 248(sp)
    ld sp, 16(sp)
    .endm

    .text

/* ---------------- M-level trap entry ---------------- */
    .globl hx_mtrap
    .balign 4
hx_mtrap:
    csrrw sp, mscratch, sp
    addi sp, sp, -FRAME
    SAVE_REGS
    csrr t0, mscratch
    sd t0, 16(sp)
    addi t0, sp, FRAME
    csrw mscratch, t0
    mv a0, sp
    li a1, 3
    call hx_trap_c
    bnez a0, hx_m_longjmp
    RESTORE_REGS
    mret

/* back into hx_run's caller; the frame's a0 is the return value */
hx_m_longjmp:
    ld a0, 80(sp)
    la t0, hx_mstack_top
    csrw mscratch, t0
    li t0, (1 << 17)            /* MPRV off */
    csrc mstatus, t0
    la t0, hx_ctx
    ld ra, 0(t0)
    ld sp, 8(t0)
    ld s0, 16(t0)
    ld s1, 24(t0)
    ld s2, 32(t0)
    ld s3, 40(t0)
    ld s4, 48(t0)
    ld s5, 56(t0)
    ld s6, 64(t0)
    ld s7, 72(t0)
    ld s8, 80(t0)
    ld s9, 88(t0)
    ld s10, 96(t0)
    ld s11, 104(t0)
    ld gp, 112(t0)
    ld tp, 120(t0)
    ret

/* ---------------- HS-level trap entry (stvec, V=0) ---------------- */
    .globl hx_strap
    .balign 4
hx_strap:
    csrrw sp, sscratch, sp
    addi sp, sp, -FRAME
    SAVE_REGS
    csrr t0, sscratch
    sd t0, 16(sp)
    addi t0, sp, FRAME
    csrw sscratch, t0
    mv a0, sp
    li a1, 1
    call hx_trap_c
    RESTORE_REGS
    sret

/* ---------------- VS-level trap entry (vstvec, V=1) ---------------- */
    .globl hx_vstrap
    .balign 4
hx_vstrap:
    csrrw sp, sscratch, sp          /* vsscratch */
    addi sp, sp, -FRAME
    SAVE_REGS
    csrr t0, sscratch
    sd t0, 16(sp)
    addi t0, sp, FRAME
    csrw sscratch, t0
    mv a0, sp
    li a1, 5
    call hx_trap_c
    RESTORE_REGS
    sret

/* ecall up the levels until M ends the hx_run: hx_ecall_up(a0, magic) */
    .globl hx_ecall_up
hx_ecall_up:
    mv a7, a1
    ecall
1:  j 1b

/*
 * long hx_run_asm(long mode, void *fn, unsigned long a0, unsigned long a1)
 * mode: bits 1:0 = privilege (0 U, 1 S, 3 M), bit 2 = V.  (hx_run in hx.c)
 */
    .globl hx_run_asm
hx_run_asm:
    la t0, hx_ctx
    sd ra, 0(t0)
    sd sp, 8(t0)
    sd s0, 16(t0)
    sd s1, 24(t0)
    sd s2, 32(t0)
    sd s3, 40(t0)
    sd s4, 48(t0)
    sd s5, 56(t0)
    sd s6, 64(t0)
    sd s7, 72(t0)
    sd s8, 80(t0)
    sd s9, 88(t0)
    sd s10, 96(t0)
    sd s11, 104(t0)
    sd gp, 112(t0)
    sd tp, 120(t0)
    la t1, hx_mstack_top
    csrw mscratch, t1
    la t1, hx_sstack_top
    csrw sscratch, t1
    la t1, hx_vsstack_top
    csrw CSR_VSSCRATCH, t1
    li t1, (3 << 11)            /* MPP */
    csrc mstatus, t1
    li t1, 1
    slli t1, t1, 39             /* MPV */
    csrc mstatus, t1
    andi t2, a0, 3
    slli t2, t2, 11
    csrs mstatus, t2
    andi t2, a0, 4
    beqz t2, 1f
    csrs mstatus, t1
1:  csrw mepc, a1
    mv a0, a2
    mv a1, a3
    la ra, hx_lower_return
    la t0, hx_lower_sp
    ld sp, 0(t0)
    li a2, 0                    /* no stale values (a7 = magic!) in the lower mode */
    li a3, 0
    li a4, 0
    li a5, 0
    li a6, 0
    li a7, 0
    li t0, 0
    li t1, 0
    li t2, 0
    li t3, 0
    li t4, 0
    li t5, 0
    li t6, 0
    mret

    .globl hx_lower_return
hx_lower_return:
    li a7, HX_MAGIC_RET
    ecall
1:  j 1b

/* void hx_sync_code(void) */
    .globl hx_sync_code
hx_sync_code:
    fence.i
    ret

/* ---------------- stacks and context ---------------- */
    .bss
    .balign 16
    .globl hx_ctx
hx_ctx:
    .space 16 * 8
    .balign 16
    .space 8192
    .globl hx_mstack_top
hx_mstack_top:
    .space 8192
    .globl hx_sstack_top
hx_sstack_top:
    .space 8192
    .globl hx_vsstack_top
hx_vsstack_top:
    .space 16384
    .globl hx_lower_stack_top
hx_lower_stack_top:

/* exec buffer: one page of code, written by hx_exec */
    .section .data.hx_exec, "aw", @progbits
    .balign 4096
    .globl hx_exec_buf
hx_exec_buf:
    .space 4096

/*
 * entry.S - the legacy kernel's entry, trap vector and user task (privileged spec 1.9.1).
 *
 * Written as a 1.9.1-era kernel is: sbadaddr and sptbr by their CSR numbers (0x143, 0x180),
 * sfence.vm by its encoding (today's assemblers no longer know it).  See legacy.c.
 */
#define CSR_SPTBR 0x180

    .section .text.start, "ax"
    .globl _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    la      sp, __stack_top
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:  csrw    sscratch, zero          /* in the kernel: sscratch 0 (trap_entry tells U from S by it) */
    call    kmain
3:  j       3b

/* The trap vector.  From U-mode sscratch holds the kernel stack; from S-mode it is 0. */
    .text
    .balign 4
    .globl trap_entry
trap_entry:
    csrrw   sp, sscratch, sp
    bnez    sp, 1f
    csrr    sp, sscratch            /* from S-mode: the interrupted stack */
1:  addi    sp, sp, -256
    sd      ra, 8(sp)
    sd      gp, 24(sp)
    sd      tp, 32(sp)
    sd      t0, 40(sp)
    sd      t1, 48(sp)
    sd      t2, 56(sp)
    sd      s0, 64(sp)
    sd      s1, 72(sp)
    sd      a0, 80(sp)
    sd      a1, 88(sp)
    sd      a2, 96(sp)
    sd      a3, 104(sp)
    sd      a4, 112(sp)
    sd      a5, 120(sp)
    sd      a6, 128(sp)
    sd      a7, 136(sp)
    sd      s2, 144(sp)
    sd      s3, 152(sp)
    sd      s4, 160(sp)
    sd      s5, 168(sp)
    sd      s6, 176(sp)
    sd      s7, 184(sp)
    sd      s8, 192(sp)
    sd      s9, 200(sp)
    sd      s10, 208(sp)
    sd      s11, 216(sp)
    sd      t3, 224(sp)
    sd      t4, 232(sp)
    sd      t5, 240(sp)
    sd      t6, 248(sp)
    csrr    t0, sscratch
    sd      t0, 16(sp)              /* the interrupted sp */
    csrw    sscratch, zero
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    mv      a0, sp
    call    trap_handler
    csrr    t0, sstatus
    andi    t0, t0, 0x100           /* SPP */
    bnez    t0, 2f
    addi    t0, sp, 256             /* back to U-mode: its next trap starts on this stack */
    csrw    sscratch, t0
2:  ld      ra, 8(sp)
    ld      gp, 24(sp)
    ld      tp, 32(sp)
    ld      t0, 40(sp)
    ld      t1, 48(sp)
    ld      t2, 56(sp)
    ld      s0, 64(sp)
    ld      s1, 72(sp)
    ld      a0, 80(sp)
    ld      a1, 88(sp)
    ld      a2, 96(sp)
    ld      a3, 104(sp)
    ld      a4, 112(sp)
    ld      a5, 120(sp)
    ld      a6, 128(sp)
    ld      a7, 136(sp)
    ld      s2, 144(sp)
    ld      s3, 152(sp)
    ld      s4, 160(sp)
    ld      s5, 168(sp)
    ld      s6, 176(sp)
    ld      s7, 184(sp)
    ld      s8, 192(sp)
    ld      s9, 200(sp)
    ld      s10, 208(sp)
    ld      s11, 216(sp)
    ld      t3, 224(sp)
    ld      t4, 232(sp)
    ld      t5, 240(sp)
    ld      t6, 248(sp)
    ld      sp, 16(sp)
    sret

/* sfence.vm zero / sfence.vm a0 (4.2.1: funct12 0x104, rs1 the address) */
    .globl sfence_vm_all
sfence_vm_all:
    .word   0x10400073
    ret
    .globl sfence_vm_page
sfence_vm_page:
    .word   0x10400073 | (10 << 15)
    ret

/* The user task, mapped at USER_BASE (legacy.c): its code knows only its own addresses.
 * Syscalls: a7 = 64 write(a0 = buffer, a1 = length), 93 exit(a0). */
#define USER_BASE   0x40000000
#define USER_DATA   (USER_BASE + 0x1000)
#define USER_STACK  (USER_BASE + 0x3000)
#define USER_LAZY   (USER_BASE + 0x4000)    /* not mapped until first touched */
    .section .text.user, "ax"
    .option push
    .option norvc
    .globl user_task
user_task:
    li      sp, USER_STACK
    li      a0, USER_DATA
    li      a1, 26                  /* "legacy: hello from U-mode\n" */
    li      a7, 64
    ecall
    li      t0, USER_LAZY
    li      t1, 0x191
    sd      t1, 0(t0)               /* a page the kernel maps on this fault */
    ld      t2, 0(t0)
    bne     t1, t2, 1f
    li      a0, USER_DATA + 32
    li      a1, 29                  /* "legacy: demand page is there\n" */
    li      a7, 64
    ecall
    li      a0, 0
    li      a7, 93
    ecall
1:  li      a0, 3
    li      a7, 93
    ecall
    .option pop

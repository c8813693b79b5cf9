/*
 * priv.c - the privileged-operation class of `rvh bench overhead`: the nanobenchmarks of
 * Adams and Agesen (ASPLOS 2006), ported to RISC-V.  Each is a loop of OPS operations and one
 * measured region (ovh.h):
 *
 *   syscall    U-mode ecall -> the kernel's trap handler -> sret (U code in a bare address space)
 *   csr        a write of sstatus (SUM) and one of sie: the kernel's interrupt masking
 *   mmio       a load of the UART's line status register (a device register)
 *   call       call and return of an empty function (the baseline: no privileged operation)
 *   illegal    an illegal instruction the kernel's trap handler steps over
 *   sbi        an SBI call (BASE get_spec_version) to the firmware or hypervisor
 *   timer      a timer interrupt round trip: stimecmp in the past, take it, re-arm to -1
 *   pagefault  a demand page fault: the kernel fills the PTE and returns (Sv39)
 *   ptemod     a PTE changed to another frame, sfence.vma of that page, a load through it
 *   ctxswitch  an address-space switch: satp to the other tree, sfence.vma
 */
#include "ovh.h"
#include "spt.h"

TEST_NAME("overhead/priv");

#define OPS 1000
#define FAULT_PAGES 256
#define FAULT_ROUNDS 4
#define FAULT_BASE 0x40000000UL         /* 1 GiB: outside the identity-mapped image */
#define PTEMOD_VA 0x40800000UL

/* ---- U-mode code: `count` ecalls with a7 = 0, then one with a7 = 1 to come back ---- */
void ovh_user_syscalls(unsigned long count);
__asm__(".section .text\n"
        ".global ovh_user_syscalls\n"
        "ovh_user_syscalls:\n"
        "1:  li a7, 0\n"
        "    ecall\n"
        "    addi a0, a0, -1\n"
        "    bnez a0, 1b\n"
        "    li a7, 1\n"
        "    ecall\n"
        "2:  j 2b\n");

static unsigned long user_stack[512] __attribute__((aligned(16)));
static unsigned char fault_frames[FAULT_PAGES][4096] __attribute__((aligned(4096)));
static struct pt tree_a, tree_b;
static volatile unsigned long timer_ticks;
static volatile unsigned long page_faults;

static int bench_hook(struct strap_frame *f)
{
    if (f->scause == CAUSE_ECALL_FROM_U) {
        if (f->x[REG_A7] == 1)
            rvh_leave_user(0);
        f->sepc += 4;
        return 1;
    }
    if (f->scause == CAUSE_ILLEGAL_INSTRUCTION) {
        f->sepc += 4;
        return 1;
    }
    if (f->scause == (MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_TIMER)) {
        csr_write(CSR_STIMECMP, -1UL);
        timer_ticks++;
        return 1;
    }
    if ((f->scause == CAUSE_LOAD_PAGE_FAULT || f->scause == CAUSE_STORE_PAGE_FAULT) &&
        f->stval - FAULT_BASE < FAULT_PAGES * 4096UL) {
        unsigned long page = (f->stval - FAULT_BASE) >> 12;
        pte_t *pte = pt_walk(&tree_a, FAULT_BASE + page * 4096, 0, 0);
        *pte = pte_make((uintptr_t)fault_frames[page],
                        PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
        sfence_vma_va(f->stval);
        page_faults++;
        return 1;
    }
    return 0;
}

static void __attribute__((noinline)) empty_function(void)
{
    __asm__ __volatile__("" ::: "memory");
}

static void bench_syscall(void)
{
    struct ovh_region r = ovh_begin();
    rvh_enter_user((uintptr_t)ovh_user_syscalls, (uintptr_t)&user_stack[512], OPS, 0);
    ovh_end(r, "syscall", OPS);
}

static void bench_csr(void)
{
    struct ovh_region r = ovh_begin();
    for (int i = 0; i < OPS; i++) {
        csr_set(sstatus, SSTATUS_SUM_MASK);
        csr_write(sie, 0);
    }
    ovh_end(r, "csr", OPS);
    csr_clear(sstatus, SSTATUS_SUM_MASK);
}

static void bench_mmio(void)
{
    unsigned long sum = 0;
    struct ovh_region r = ovh_begin();
    for (int i = 0; i < OPS; i++)
        sum += mmio_read8(UART0_BASE + UART_LSR);
    ovh_end(r, "mmio", OPS);
    CHECK(10, sum != 0);            /* the transmitter is empty: LSR reads non-zero */
}

static void bench_call(void)
{
    struct ovh_region r = ovh_begin();
    for (int i = 0; i < OPS; i++)
        empty_function();
    ovh_end(r, "call", OPS);
}

static void bench_illegal(void)
{
    struct ovh_region r = ovh_begin();
    for (int i = 0; i < OPS; i++)
        __asm__ __volatile__(".4byte 0xc0001073" ::: "memory");   /* csrw cycle, zero */
    ovh_end(r, "illegal", OPS);
}

static void bench_sbi(void)
{
    long version = 0;
    struct ovh_region r = ovh_begin();
    for (int i = 0; i < OPS; i++)
        version = sbi_get_spec_version().value;
    ovh_end(r, "sbi", OPS);
    CHECK(11, version != 0);
}

static void bench_timer(void)
{
    csr_set(sie, SIE_STIE_MASK);
    timer_ticks = 0;
    struct ovh_region r = ovh_begin();
    for (int i = 0; i < OPS; i++) {
        csr_write(CSR_STIMECMP, 0);     /* in the past: pending at once */
        csr_set(sstatus, SSTATUS_SIE_MASK);
        csr_clear(sstatus, SSTATUS_SIE_MASK);
    }
    ovh_end(r, "timer", OPS);
    csr_clear(sie, SIE_STIE_MASK);
    CHECK_EQ(12, timer_ticks, OPS);
}

static void unmap_fault_region(void)
{
    for (unsigned long page = 0; page < FAULT_PAGES; page++)
        *pt_walk(&tree_a, FAULT_BASE + page * 4096, 0, 1) = 0;
    sfence_vma_all();
}

static void bench_pagefault(void)
{
    unsigned long sum = 0;
    page_faults = 0;
    struct ovh_region r = ovh_begin();
    for (int round = 0; round < FAULT_ROUNDS; round++) {
        for (unsigned long page = 0; page < FAULT_PAGES; page++)
            sum += *(volatile unsigned long *)(FAULT_BASE + page * 4096);
        if (round + 1 < FAULT_ROUNDS)
            unmap_fault_region();
    }
    ovh_end(r, "pagefault", FAULT_ROUNDS * FAULT_PAGES);
    CHECK_EQ(13, page_faults, FAULT_ROUNDS * FAULT_PAGES);
    CHECK_EQ(14, sum, 0);
}

static void bench_ptemod(void)
{
    pte_t *pte = pt_walk(&tree_a, PTEMOD_VA, 0, 1);
    unsigned long sum = 0;
    fault_frames[0][0] = 1;
    fault_frames[1][0] = 2;
    struct ovh_region r = ovh_begin();
    for (int i = 0; i < OPS; i++) {
        *pte = pte_make((uintptr_t)fault_frames[i & 1],
                        PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
        sfence_vma_va(PTEMOD_VA);
        sum += *(volatile unsigned char *)PTEMOD_VA;
    }
    ovh_end(r, "ptemod", OPS);
    CHECK_EQ(15, sum, OPS / 2 * 3);
}

static void bench_ctxswitch(void)
{
    uint64_t satp_a = pt_satp(&tree_a, 0), satp_b = pt_satp(&tree_b, 0);
    struct ovh_region r = ovh_begin();
    for (int i = 0; i < OPS; i++) {
        csr_write(satp, (i & 1) ? satp_a : satp_b);
        sfence_vma_all();
    }
    ovh_end(r, "ctxswitch", OPS);
    csr_write(satp, satp_a);
    sfence_vma_all();
}

int main(void)
{
    ovh_start();
    strap_hook = bench_hook;
    /* bare address space: U-mode may run the kernel's code */
    bench_syscall();
    bench_csr();
    bench_mmio();
    bench_call();
    bench_illegal();
    bench_sbi();
    bench_timer();
    /* Sv39: the image and the UART identity-mapped, the fault region built on demand */
    spt_init(&tree_a, 3);
    pt_map_image(&tree_a);
    pt_map(&tree_a, UART0_BASE, UART0_BASE, 0,
           PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    unmap_fault_region();
    spt_init(&tree_b, 3);
    pt_map_image(&tree_b);
    pt_map(&tree_b, UART0_BASE, UART0_BASE, 0,
           PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    csr_write(satp, pt_satp(&tree_a, 0));
    sfence_vma_all();
    bench_pagefault();
    bench_ptemod();
    bench_ctxswitch();
    ovh_done();
    return 0;
}

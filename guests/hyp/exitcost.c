/*
 * exitcost.c - what the hypervisor spends on one exit, counted in instructions (run it
 * natively with --sbi, or as a VM: rvh run --hyp --guest exitcost.elf,virt=hw|trap).
 *
 * instret counts every instruction the hart retires, the hypervisor's included, and it is
 * deterministic on rvh.  Each figure is (instret over N operations - instret over N nops) / N
 * + 1: the instructions retired per operation, the operation itself counted as one.  Natively
 * (or where the operation does not exit) that is 1, or the few instructions of the guest's own
 * code around it; the rest is the hypervisor's exit path: the trap entry, the emulation, the
 * return.
 *   - csr: csrr sscratch (trap mode emulates it; hw mode reads vsscratch without an exit)
 *   - sbi: an SBI call (BASE get_spec_version) with the guest's wrapper around the ecall
 *   - fill: the first load from a page after sfence.vma, bare and under Sv39 (trap mode makes
 *     a shadow entry; hw mode has the G-stage already)
 *   - syscall: an ecall from the guest's U-mode to its kernel's trap handler and back (sret)
 *   - switch: satp to another address space (its own ASID, no sfence.vma) and a load from each of
 *     16 pages, the first time (trap mode builds its shadow tables) and again (kept, per ASID);
 *     then after sfence.vma of the other ASID alone (kept) and of its own (rebuilt)
 */
#include "smode.h"
#include "spt.h"

TEST_NAME("hyp/exitcost");

#define N       512
#define PAGES   256

static uint8_t pages[PAGES][4096] __attribute__((aligned(4096)));
static uint64_t ustack[512] __attribute__((aligned(16)));
static struct pt space, other;


static inline unsigned long instret(void)
{
    unsigned long v;
    __asm__ __volatile__("csrr %0, instret" : "=r"(v)::"memory");
    return v;
}

#define SWITCH_PAGES 16

/* satp to `to`, then one load from each of SWITCH_PAGES pages */
static unsigned long switch_and_touch(unsigned long to)
{
    unsigned long start = instret();
    csr_write(CSR_SATP, to);
    for (int i = 0; i < SWITCH_PAGES; i++)
        __asm__ __volatile__("ld zero, 0(%0)" ::"r"(pages[i]) : "memory");
    return instret() - start;
}

static unsigned long loop_nop(void)
{
    unsigned long start = instret();
    for (int i = 0; i < N; i++)
        __asm__ __volatile__("nop" ::: "memory");
    return instret() - start;
}

static unsigned long loop_csr(void)
{
    unsigned long start = instret(), v;
    for (int i = 0; i < N; i++)
        __asm__ __volatile__("csrr %0, sscratch" : "=r"(v)::"memory");
    (void)v;
    return instret() - start;
}

static unsigned long loop_sbi(void)
{
    unsigned long start = instret();
    for (int i = 0; i < N; i++)
        sbi_get_spec_version();
    return instret() - start;
}

/* one load per page: the first pass after a full sfence.vma, then the same again */
static unsigned long touch_pages(void)
{
    unsigned long start = instret();
    for (int i = 0; i < PAGES; i++)
        __asm__ __volatile__("ld zero, 0(%0)" ::"r"(pages[i]) : "memory");
    return instret() - start;
}

static unsigned long fill_cost(void)
{
    sfence_vma_all();
    unsigned long first = touch_pages();
    unsigned long again = touch_pages();
    return (first - again) / PAGES + 1;
}

/* user code: a0 = count; ecall with a7 = 1 that many times, then exit (a7 = 0) */
extern char u_syscalls[];
__asm__(
    "   .pushsection .text, \"ax\", @progbits\n"
    "   .balign 4\n"
    "u_syscalls:\n"
    "   mv s2, a0\n"
    "1: li a7, 1\n"
    "   ecall\n"
    "   addi s2, s2, -1\n"
    "   bnez s2, 1b\n"
    "   li a7, 0\n"
    "   ecall\n"
    "   .popsection\n");

static int syscall_hook(struct strap_frame *f)
{
    if (f->sstatus & SSTATUS_SPP_MASK || f->scause != CAUSE_ECALL_FROM_U)
        return 0;
    if (f->x[REG_A7] == 1) {
        f->sepc += 4;
        return 1;
    }
    rvh_leave_user(0);
}

static unsigned long syscalls(unsigned long count)
{
    unsigned long start = instret();
    rvh_enter_user((uintptr_t)u_syscalls, (uintptr_t)&ustack[512], count, 0);
    return instret() - start;
}

static void report(const char *what, unsigned long per_op)
{
    printf("exitcost: %s: %lu instructions\n", what, per_op);
}

int main(unsigned long hartid, unsigned long dtb)
{
    (void)hartid;
    (void)dtb;
    csr_write(CSR_SCOUNTEREN, COUNTEREN_IR_MASK);
    for (int i = 0; i < PAGES; i++)
        pages[i][0] = (uint8_t)i;
    loop_nop();                         /* warm: every page of the loops is mapped */
    loop_csr();
    loop_sbi();
    unsigned long nop = loop_nop();
    report("csr read (csrr sscratch)", (loop_csr() - nop) / N + 1);
    report("sbi call (get_spec_version)", (loop_sbi() - nop) / N + 1);
    report("first load from a page, bare", fill_cost());
    spt_init(&space, 3);
    pt_map_image(&space);
    csr_write(CSR_SATP, pt_satp(&space, 0));
    report("first load from a page, Sv39", fill_cost());
    /* two address spaces, ASIDs 1 and 2: the second one's first use, then switches back and forth */
    spt_init(&other, 3);
    pt_map_image(&other);
    unsigned long a = pt_satp(&space, 1), b = pt_satp(&other, 2);
    switch_and_touch(a);
    sfence_vma_all();
    switch_and_touch(a);
    unsigned long first = switch_and_touch(b);
    unsigned long again = 0;
    for (int round = 0; round < 8; round++) {
        switch_and_touch(a);
        again += switch_and_touch(b);
    }
    report("address-space switch and 16 pages, first time", first);
    report("address-space switch and 16 pages, again", again / 8);
    /* fencing ASID 2 alone leaves ASID 1's translations: switching to it is still cheap */
    __asm__ __volatile__("sfence.vma zero, %0" ::"r"(2UL) : "memory");
    report("switch to ASID 1 and 16 pages after fencing ASID 2", switch_and_touch(a));
    report("switch to ASID 2 and 16 pages after fencing it", switch_and_touch(b));
    csr_write(CSR_SATP, 0);
    sfence_vma_all();
    strap_hook = syscall_hook;
    syscalls(1);
    unsigned long one = syscalls(1), many = syscalls(N + 1);
    report("syscall from U (ecall, handler, sret)", (many - one) / N);
    strap_hook = 0;
    pass();
}

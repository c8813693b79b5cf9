/*
 * opbench.c - what two kernel operations cost, counted in instructions retired by the hart
 * (instret counts every privilege level, so under a hypervisor its exits are included):
 *
 *   - a CSR write (csrw sscratch, through csr_write: the pv build's is a store to its page),
 *   - a system call round trip: ecall from U-mode, the kernel's trap entry and hook, the
 *     return to U (sret; SYNC_AND_RETURN in a pv build).
 *
 * Each is run N and 2N times and the difference divided by N, so the constant costs around the
 * loops drop out.  The numbers go in docs/hypervisor.md (native, hw, trap and pv VMs); the
 * lines carry "instret" so that output comparisons mask them.  Without a readable instret the
 * measurement is skipped (said so), and the checks still run.
 */
#include "smode.h"
#include "spt.h"

TEST_NAME("smode/opbench");

#define USER_CODE_VA    0x10000UL
#define USER_STACK_VA   0x30000UL
#define N               256

static uint64_t ustack[512] __attribute__((aligned(4096)));
static struct pt space;
static volatile long syscalls;

extern char __user_text_start[], __user_text_end[], u_syscall_loop[], u_tp_call[];
static volatile unsigned long seen_tp, seen_sstatus;

__asm__(
    "   .pushsection .text.user, \"ax\", @progbits\n"
    "   .option push\n"
    "   .option norvc\n"
    "u_syscall_loop:\n"                 /* a0 = how many ecalls */
    "   mv s3, a0\n"
    "1: li a7, 1\n"
    "   ecall\n"
    "   addi s3, s3, -1\n"
    "   bnez s3, 1b\n"
    "   li a0, 0\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_tp_call:\n"                     /* a system call from code that uses tp for itself */
    "   li tp, 0x777\n"
    "   li a7, 2\n"
    "   ecall\n"
    "   mv a0, tp\n"
    "   li a7, 0\n"
    "   ecall\n"
    "   .option pop\n"
    "   .popsection\n");

static int syscall_hook(struct strap_frame *f)
{
    if (f->scause != CAUSE_ECALL_FROM_U)
        return 0;
    if (f->x[REG_A7] == 1) {
        syscalls++;
        f->sepc += 4;
        return 1;
    }
    if (f->x[REG_A7] == 2) {
        /* the kernel's CSRs whatever U-mode left in tp (a pv build finds its page by tp) */
        seen_tp = f->x[4];
        seen_sstatus = csr_read(sstatus);
        f->sepc += 4;
        return 1;
    }
    rvh_leave_user((long)f->x[REG_A0]);
}

static int have_instret;

static unsigned long instret(void)
{
    unsigned long v = 0;
    if (have_instret)
        __asm__ __volatile__("csrr %0, instret" : "=r"(v) :: "memory");
    return v;
}

static unsigned long csr_writes(unsigned n)
{
    unsigned long t0 = instret();
    for (unsigned i = 0; i < n; i++)
        csr_write(sscratch, 0);     /* sscratch is 0 in S-mode, as the trap entry wants it */
    return instret() - t0;
}

static unsigned long syscall_round_trips(unsigned n)
{
    syscalls = 0;
    unsigned long t0 = instret();
    long r = rvh_enter_user(USER_CODE_VA + (uintptr_t)(u_syscall_loop - __user_text_start),
                            USER_STACK_VA + PAGE_SIZE, n, 0);
    unsigned long spent = instret() - t0;
    CHECK_EQ(10, r, 0);
    CHECK_EQ(11, syscalls, n);
    return spent;
}

int main(unsigned long hartid)
{
    unsigned long v = 0;
    have_instret = PROBE_CSR_READ(instret, &v) == -1;

    spt_init(&space, 3);
    pt_map_image(&space);
    for (uintptr_t p = (uintptr_t)__user_text_start; p < (uintptr_t)__user_text_end;
         p += PAGE_SIZE)
        pt_map(&space, USER_CODE_VA + (p - (uintptr_t)__user_text_start), p, 0,
               PTE_U_MASK | PTE_R_MASK | PTE_X_MASK | PTE_A_MASK);
    pt_map(&space, USER_STACK_VA, (uintptr_t)ustack, 0,
           PTE_U_MASK | PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    csr_write(satp, pt_satp(&space, 0));
    sfence_vma_all();
    csr_clear(sstatus, SSTATUS_SIE_MASK);
    strap_hook = syscall_hook;

    /* warm up: the first round fills whatever a hypervisor fills lazily */
    csr_writes(N);
    syscall_round_trips(N);
    unsigned long csr1 = csr_writes(N), csr2 = csr_writes(2 * N);
    unsigned long sys1 = syscall_round_trips(N), sys2 = syscall_round_trips(2 * N);
    CHECK_EQ(1, csr_read(sscratch), 0);

    long r = rvh_enter_user(USER_CODE_VA + (uintptr_t)(u_tp_call - __user_text_start),
                            USER_STACK_VA + PAGE_SIZE, 0, 0);
    __asm__ __volatile__("mv tp, %0" :: "r"(hartid));  /* the kernel's tp again */
    CHECK_EQ(20, r, 0x777);                             /* U-mode's tp kept over the call */
    CHECK_EQ(21, seen_tp, 0x777);
    CHECK_EQ(22, seen_sstatus & (SSTATUS_SPP_MASK | SSTATUS_SIE_MASK), 0);

    if (have_instret) {
        printf("csr write: %lu instret each\n", (csr2 - csr1) / N);
        printf("system call round trip: %lu instret each\n", (sys2 - sys1) / N);
    } else {
        puts("instret not readable from S-mode: no instret counts");
    }
    strap_hook = 0;
    csr_write(satp, 0);
    sfence_vma_all();
    pass();
}

/*
 * umode.c - U-mode under an Sv39 address space.
 *
 * The user code (assembler in .text.user, position independent) is mapped
 * with U = 1 at USER_CODE_VA; the kernel image stays identity-mapped with
 * U = 0.  Each test enters U-mode with sret (sstatus.SPP = 0) through
 * rvh_enter_user; the trap hook below records the trap and returns to the
 * kernel with rvh_leave_user.  Checked:
 *   - ecall from U: scause 8, sepc = the ecall, stval = 0, the user sp in
 *     the frame, SPP = 0 and SPIE = the SIE that U-mode had, SIE = 0 in the
 *     handler; sret back to U with a result in a0; registers preserved,
 *   - cycle/time/instret from U: illegal instruction (scause 2, stval = the
 *     instruction bits, as on QEMU) while scounteren is 0, readable once
 *     scounteren allows them,
 *   - privileged instructions from U (csrr sstatus/satp, csrw sscratch,
 *     sret, sfence.vma, wfi): illegal instruction with stval = the bits
 *     (wfi may instead complete, as the spec allows),
 *   - U touching S-only pages: load/store page faults (13/15) with
 *     stval = the address; executing S-only code: 12; storing to a
 *     read-only U page: 15; ebreak: 3,
 *   - an S-mode software interrupt is taken in U-mode even with SIE = 0,
 *   - sstatus.SPP/SPIE after returning to S.
 */
#include "smode.h"
#include "spt.h"

TEST_NAME("smode/umode");

#define USER_CODE_VA    0x10000UL
#define USER_DATA_VA    0x20000UL
#define USER_RO_VA      0x21000UL
#define USER_STACK_VA   0x30000UL
#define KERNEL_ONLY_VA  0x40000UL
#define LEFT_BY_TRAP    (-0x7777L)

static uint64_t udata[512] __attribute__((aligned(4096)));
static uint64_t uro[512] __attribute__((aligned(4096)));
static uint64_t ustack[512] __attribute__((aligned(4096)));
static uint64_t kpage[512] __attribute__((aligned(4096)));
static struct pt space;

extern char __user_text_start[], __user_text_end[];
/* user code: each entry gets its argument in a0 and ends with an exit ecall */
extern char u_ecall[], u_ecall_site[], u_ecall_exit[], u_store_site[], u_rdcycle[], u_rdtime[], u_rdinstret[],
    u_csrr_sstatus[], u_csrr_satp[], u_csrw_sscratch[], u_sret[], u_sfence[],
    u_wfi[], u_load[], u_store[], u_jump[], u_ebreak[], u_nop_exit[];

__asm__(
    "   .pushsection .text.user, \"ax\", @progbits\n"
    "   .option push\n"
    "   .option norvc\n"
    "   .option norelax\n"
    /* service call 1 returns a0 + 1; s2 must survive the ecall */
    "u_ecall:\n"
    "   li s2, 0x5a5a\n"
    "   li a7, 1\n"
    "u_ecall_site:\n"
    "   ecall\n"
    "   li t0, 0x5a5a\n"
    "   beq s2, t0, 1f\n"
    "   li a0, -1\n"
    "1: li a7, 0\n"
    "u_ecall_exit:\n"
    "   ecall\n"
    "u_rdcycle:\n"
    "   csrr a0, cycle\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_rdtime:\n"
    "   csrr a0, time\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_rdinstret:\n"
    "   csrr a0, instret\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_csrr_sstatus:\n"
    "   csrr a0, sstatus\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_csrr_satp:\n"
    "   csrr a0, satp\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_csrw_sscratch:\n"
    "   csrw sscratch, a0\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_sret:\n"
    "   sret\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_sfence:\n"
    "   sfence.vma\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_wfi:\n"
    "   wfi\n"
    "   li a0, 0x77\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_load:\n"                         /* a0 = address */
    "   ld a0, 0(a0)\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_store:\n"                        /* a0 = address */
    "   li t0, 0x1234\n"
    "u_store_site:\n"
    "   sd t0, 0(a0)\n"
    "   li a0, 0\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_jump:\n"                         /* a0 = target */
    "   jalr a0\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_ebreak:\n"
    "   ebreak\n"
    "   li a7, 0\n"
    "   ecall\n"
    "u_nop_exit:\n"
    "   nop\n"
    "   li a0, 0x55\n"
    "   li a7, 0\n"
    "   ecall\n"
    "   .option pop\n"
    "   .popsection\n");

static uintptr_t uva(const char *sym)
{
    return USER_CODE_VA + (uintptr_t)(sym - __user_text_start);
}

/* traps taken from U-mode */
#define MAX_UTRAPS 4
static struct utrap {
    unsigned long cause, epc, tval, sstatus, sp, handler_sstatus;
} ut[MAX_UTRAPS];
static volatile int nut;

static int user_hook(struct strap_frame *f)
{
    if (f->sstatus & SSTATUS_SPP_MASK)
        return 0;                           /* from S-mode: not ours */
    if (nut < MAX_UTRAPS) {
        struct utrap *t = &ut[nut];
        t->cause = f->scause;
        t->epc = f->sepc;
        t->tval = f->stval;
        t->sstatus = f->sstatus;
        t->sp = f->x[REG_SP];
        t->handler_sstatus = csr_read(sstatus);
    }
    nut++;
    if (f->scause == CAUSE_ECALL_FROM_U) {
        if (f->x[REG_A7] == 1) {            /* service: a0 + 1, back to U */
            f->x[REG_A0] += 1;
            f->sepc += 4;
            return 1;
        }
        rvh_leave_user((long)f->x[REG_A0]);  /* exit */
    }
    if (f->scause == (MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_SOFTWARE))
        csr_clear(sip, SIP_SSIP_MASK);
    rvh_leave_user(LEFT_BY_TRAP);
}

static long run_user(const char *entry, unsigned long arg, int spie)
{
    nut = 0;
    return rvh_enter_user(uva(entry), USER_STACK_VA + PAGE_SIZE, arg, spie);
}

/* the user code must end in one trap: cause, sepc (at `site`) and stval */
static void expect_one_trap(int n, const char *entry, unsigned long arg,
                            unsigned long cause, const char *site,
                            unsigned long tval)
{
    long r = run_user(entry, arg, 1);
    CHECK_EQ(n, r, LEFT_BY_TRAP);
    CHECK_EQ(n, nut, 1);
    CHECK_EQ(n, ut[0].cause, cause);
    CHECK_EQ(n, ut[0].epc, uva(site));
    CHECK_EQ(n, ut[0].tval, tval);
    CHECK_EQ(n, ut[0].sstatus & (SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK), SSTATUS_SPIE_MASK);
}

/* the instruction bits at a user entry (read through the kernel mapping) */
static unsigned long insn_at(const char *sym)
{
    return *(volatile uint32_t *)sym;
}

int main(void)
{
    /* ---- address space ---- */
    spt_init(&space, 3);
    pt_map_image(&space);
    for (uintptr_t p = (uintptr_t)__user_text_start; p < (uintptr_t)__user_text_end;
         p += PAGE_SIZE)
        pt_map(&space, USER_CODE_VA + (p - (uintptr_t)__user_text_start), p, 0,
               PTE_U_MASK | PTE_R_MASK | PTE_X_MASK | PTE_A_MASK);
    pt_map(&space, USER_DATA_VA, (uintptr_t)udata, 0, PTE_U_MASK | PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    pt_map(&space, USER_RO_VA, (uintptr_t)uro, 0, PTE_U_MASK | PTE_R_MASK | PTE_A_MASK);
    pt_map(&space, USER_STACK_VA, (uintptr_t)ustack, 0,
           PTE_U_MASK | PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    pt_map(&space, KERNEL_ONLY_VA, (uintptr_t)kpage, 0, PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    udata[3] = 0x1122334455667788ULL;
    kpage[0] = 0xdeadbeef;
    CHECK(1, (uintptr_t)__user_text_end > (uintptr_t)__user_text_start);
    csr_write(satp, pt_satp(&space, 0));
    sfence_vma_all();
    csr_clear(sstatus, SSTATUS_SIE_MASK | SSTATUS_SUM_MASK | SSTATUS_MXR_MASK);
    strap_hook = user_hook;

    /* ---- ecall from U, with U's SIE = 1 and = 0 ---- */
    for (int spie = 1; spie >= 0; spie--) {
        nut = 0;
        long r = rvh_enter_user(uva(u_ecall), USER_STACK_VA + PAGE_SIZE, 41, spie);
        CHECK_EQ(10, r, 42);                    /* 41 + 1, s2 preserved */
        CHECK_EQ(11, nut, 2);
        CHECK_EQ(12, ut[0].cause, CAUSE_ECALL_FROM_U);
        CHECK_EQ(13, ut[0].epc, uva(u_ecall_site));
        CHECK_EQ(14, ut[0].tval, 0);
        CHECK_EQ(15, ut[0].sp, USER_STACK_VA + PAGE_SIZE);
        CHECK_EQ(16, ut[0].sstatus & SSTATUS_SPP_MASK, 0);
        CHECK_EQ(17, ut[0].sstatus & SSTATUS_SPIE_MASK, spie ? SSTATUS_SPIE_MASK : 0);
        CHECK_EQ(18, ut[0].handler_sstatus & SSTATUS_SIE_MASK, 0);
        CHECK_EQ(19, ut[1].epc, uva(u_ecall_exit));
        /* back in S after a trap from U: SPP = 0, SPIE = U's SIE */
        unsigned long s = csr_read(sstatus);
        CHECK_EQ(20, s & SSTATUS_SPP_MASK, 0);
        CHECK_EQ(21, s & SSTATUS_SPIE_MASK, spie ? SSTATUS_SPIE_MASK : 0);
    }

    /* ---- counters from U: scounteren ---- */
    unsigned long scounteren = csr_read(scounteren);
    printf("scounteren at entry: 0x%lx\n", scounteren);
    csr_write(scounteren, 0);
    expect_one_trap(30, u_rdcycle, 0, CAUSE_ILLEGAL_INSTRUCTION, u_rdcycle, insn_at(u_rdcycle));
    /*
     * time with scounteren.TM = 0: the hart raises an illegal instruction.
     * OpenSBI 1.1 does not delegate that cause (medeleg 0xb109) and its
     * M-mode handler emulates a time read without looking at scounteren,
     * so U-mode gets the value; a firmware that delegates the cause (or
     * checks scounteren) gives S an illegal instruction.  Both pass.
     */
    uint64_t t0 = rdtime();
    long r = run_user(u_rdtime, 0, 1);
    if (r == LEFT_BY_TRAP) {
        expect_one_trap(31, u_rdtime, 0, CAUSE_ILLEGAL_INSTRUCTION, u_rdtime, insn_at(u_rdtime));
        puts("time from U with scounteren.TM = 0: illegal instruction in S");
    } else {
        CHECK(31, (uint64_t)r >= t0 && (uint64_t)r - t0 < 10000000UL);
        CHECK_EQ(31, nut, 1);
        puts("time from U with scounteren.TM = 0: read (emulated by the M-mode firmware)");
    }
    expect_one_trap(32, u_rdinstret, 0, CAUSE_ILLEGAL_INSTRUCTION, u_rdinstret,
                    insn_at(u_rdinstret));
    csr_write(scounteren, 2);                   /* TM only */
    t0 = rdtime();
    r = run_user(u_rdtime, 0, 1);
    CHECK(33, (uint64_t)r >= t0 && (uint64_t)r - t0 < 10000000UL);
    expect_one_trap(34, u_rdcycle, 0, CAUSE_ILLEGAL_INSTRUCTION, u_rdcycle, insn_at(u_rdcycle));
    csr_write(scounteren, 7);                   /* CY, TM, IR */
    r = run_user(u_rdtime, 0, 1);
    CHECK_EQ(35, nut, 1);                       /* only the exit ecall */
    r = run_user(u_rdcycle, 0, 1);
    CHECK_EQ(36, nut, 1);
    printf("cycle read from U-mode: 0x%lx\n", r);
    r = run_user(u_rdinstret, 0, 1);
    CHECK_EQ(37, nut, 1);
    csr_write(scounteren, scounteren);

    /* ---- privileged instructions from U ---- */
    expect_one_trap(40, u_csrr_sstatus, 0, CAUSE_ILLEGAL_INSTRUCTION, u_csrr_sstatus,
                    insn_at(u_csrr_sstatus));
    expect_one_trap(41, u_csrr_satp, 0, CAUSE_ILLEGAL_INSTRUCTION, u_csrr_satp,
                    insn_at(u_csrr_satp));
    expect_one_trap(42, u_csrw_sscratch, 0x99, CAUSE_ILLEGAL_INSTRUCTION, u_csrw_sscratch,
                    insn_at(u_csrw_sscratch));
    CHECK_EQ(42, csr_read(sscratch), 0);
    expect_one_trap(43, u_sret, 0, CAUSE_ILLEGAL_INSTRUCTION, u_sret, insn_at(u_sret));
    expect_one_trap(44, u_sfence, 0, CAUSE_ILLEGAL_INSTRUCTION, u_sfence, insn_at(u_sfence));
    /*
     * wfi in U-mode (spec 3.1.6.5): an illegal instruction exception,
     * "unless it completes within an implementation-specific, bounded time
     * limit".  QEMU traps; completing is accepted too.
     */
    r = run_user(u_wfi, 0, 1);
    if (r == 0x77) {
        puts("wfi in U-mode: completed");
    } else {
        CHECK_EQ(45, r, LEFT_BY_TRAP);
        CHECK_EQ(45, ut[0].cause, CAUSE_ILLEGAL_INSTRUCTION);
        CHECK_EQ(45, ut[0].epc, uva(u_wfi));
        CHECK_EQ(45, ut[0].tval, insn_at(u_wfi));
        puts("wfi in U-mode: illegal instruction");
    }
    /* ebreak: scause 3, stval 0 (QEMU) or the pc */
    r = run_user(u_ebreak, 0, 1);
    CHECK_EQ(46, r, LEFT_BY_TRAP);
    CHECK_EQ(46, ut[0].cause, CAUSE_BREAKPOINT);
    CHECK_EQ(46, ut[0].epc, uva(u_ebreak));
    CHECK(46, ut[0].tval == 0 || ut[0].tval == uva(u_ebreak));

    /* ---- memory from U ---- */
    r = run_user(u_load, USER_DATA_VA + 24, 1);
    CHECK_EQ(50, r, 0x1122334455667788ULL);
    r = run_user(u_store, USER_DATA_VA + 32, 1);
    CHECK_EQ(51, r, 0);
    CHECK_EQ(51, udata[4], 0x1234);
    r = run_user(u_load, USER_RO_VA, 1);
    CHECK_EQ(52, nut, 1);
    expect_one_trap(53, u_store, USER_RO_VA + 8, CAUSE_STORE_PAGE_FAULT, u_store_site,
                    USER_RO_VA + 8);
    /* S-only pages */
    expect_one_trap(54, u_load, KERNEL_ONLY_VA, CAUSE_LOAD_PAGE_FAULT, u_load,
                    KERNEL_ONLY_VA);
    expect_one_trap(55, u_store, KERNEL_ONLY_VA + 16, CAUSE_STORE_PAGE_FAULT,
                    u_store_site, KERNEL_ONLY_VA + 16);
    CHECK_EQ(55, kpage[2], 0);
    expect_one_trap(56, u_load, (uintptr_t)&kpage[0], CAUSE_LOAD_PAGE_FAULT, u_load,
                    (uintptr_t)&kpage[0]);      /* the identity map is S-only */
    /* executing S-only code: fetch page fault at the target */
    r = run_user(u_jump, (uintptr_t)pass, 1);
    CHECK_EQ(57, r, LEFT_BY_TRAP);
    CHECK_EQ(57, ut[0].cause, CAUSE_INSTRUCTION_PAGE_FAULT);
    CHECK_EQ(57, ut[0].epc, (uintptr_t)pass);
    CHECK_EQ(57, ut[0].tval, (uintptr_t)pass);
    /* unmapped */
    expect_one_trap(58, u_load, 0x50000, CAUSE_LOAD_PAGE_FAULT, u_load, 0x50000);

    /* ---- an S interrupt is taken in U even with sstatus.SIE = 0 ---- */
    csr_set(sie, SIE_SSIE_MASK);
    csr_set(sip, SIP_SSIP_MASK);                     /* pending, not taken in S */
    CHECK_EQ(60, csr_read(sip) & SIP_SSIP_MASK, SIP_SSIP_MASK);
    r = run_user(u_nop_exit, 0, 0);             /* U runs with SIE = 0 */
    CHECK_EQ(61, r, LEFT_BY_TRAP);
    CHECK_EQ(62, ut[0].cause, MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_SOFTWARE);
    CHECK_EQ(63, ut[0].epc, uva(u_nop_exit));   /* before the first instruction */
    CHECK_EQ(64, ut[0].sstatus & (SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK), 0);
    CHECK_EQ(65, csr_read(sip) & SIP_SSIP_MASK, 0);
    csr_clear(sie, SIE_SSIE_MASK);
    r = run_user(u_nop_exit, 0, 0);
    CHECK_EQ(66, r, 0x55);

    strap_hook = 0;
    csr_write(satp, 0);
    sfence_vma_all();
    pass();
}

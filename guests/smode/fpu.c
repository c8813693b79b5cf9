/*
 * fpu.c - F and D from S-mode, and sstatus.FS (priv. spec 3.1.6.6).
 *
 *   - FS Off: an FP instruction (fadd.d), an FP load and frcsr are illegal
 *     instructions (scause 2, stval = the instruction bits); SD reads 0,
 *   - FS Initial reads back Initial; arithmetic in both precisions with
 *     results printed as bits (division, square root, fused multiply-add,
 *     conversions), the accrued flags (fflags) and the rounding mode (frm)
 *     as written and as they change results; FS then reads Dirty with SD,
 *   - FS Clean, then an FP write makes it Dirty again,
 *   - the f registers and fcsr keep their values across SBI calls, CSR
 *     accesses, a timer interrupt whose handler uses FP, and 5 ms of other
 *     VMs' slices when it runs beside them,
 *   - FS Off again: illegal once more; turned on again, the registers still
 *     hold their values (Off only denies access, 3.1.6.6).
 * The same output natively, as an hw VM and as trap and pv VMs.
 */
#include "smode.h"

TEST_NAME("smode/fpu");

#define FP_ASM(code) ".option push\n.option arch, +d\n" code "\n.option pop"
#define FS_FIELD()   ((csr_read(CSR_SSTATUS) & SSTATUS_FS_MASK) >> SSTATUS_FS_SHIFT)
#define SD_BIT()     (csr_read(CSR_SSTATUS) >> 63)

static void set_fs(unsigned long state)
{
    csr_clear(CSR_SSTATUS, SSTATUS_FS_MASK);
    csr_set(CSR_SSTATUS, state << SSTATUS_FS_SHIFT);
}

/* FS as written reads back, and SD says whether FS is Dirty (3.1.6.6): checks n, n + 1 */
static void expect_fs(long n, unsigned long state)
{
    CHECK_EQ(n, FS_FIELD(), state);
    CHECK_EQ(n + 1, SD_BIT(), state == EXTENSION_STATE_DIRTY);
}

static uint64_t scratch_double = 0x4000000000000000UL;     /* 2.0 */

/* The FP accesses FS = Off makes illegal, each run with a trap armed, and its encoding, which
 * stval must hold (-1: not checked, the load's base register is the compiler's choice) */
static void run_fadd_d(void)
{
    __asm__ __volatile__(FP_ASM("fadd.d fa0, fa1, fa2") ::: "memory");
}
static void run_frcsr(void)
{
    __asm__ __volatile__(FP_ASM("frcsr a0") ::: "memory", "a0");
}
static void run_fld(void)
{
    __asm__ __volatile__(FP_ASM("fld fa0, 0(%0)") ::"r"(&scratch_double) : "memory");
}
static const struct {
    void (*run)(void);
    long tval;
} off_probes[] = {
    { run_fadd_d, 0x02c5f553 },     /* fadd.d fa0, fa1, fa2 (rm dyn) */
    { run_frcsr, 0x00302573 },      /* csrr a0, fcsr */
    { run_fld, -1 },
};

static uint64_t fdiv_d(uint64_t a, uint64_t b)
{
    uint64_t r;
    __asm__ __volatile__(FP_ASM("fmv.d.x ft0, %1\nfmv.d.x ft1, %2\nfdiv.d ft2, ft0, ft1\n"
                                "fmv.x.d %0, ft2")
                         : "=r"(r) : "r"(a), "r"(b) : "ft0", "ft1", "ft2");
    return r;
}

static uint64_t d_of(long v)
{
    uint64_t r;
    __asm__ __volatile__(FP_ASM("fcvt.d.l ft0, %1\nfmv.x.d %0, ft0") : "=r"(r) : "r"(v) : "ft0");
    return r;
}

/* FS Off (3.1.6.6): SD 0, and every one of off_probes an illegal instruction;
 * checks n .. n + 6 */
static void off_is_illegal(long n)
{
    expect_fs(n, EXTENSION_STATE_OFF);
    for (unsigned i = 0; i < sizeof off_probes / sizeof off_probes[0]; i++) {
        strap_arm(0);
        off_probes[i].run();
        CHECK_EQ(n + 2 + 2 * i, strap_disarm(), CAUSE_ILLEGAL_INSTRUCTION);
        if (off_probes[i].tval >= 0)
            CHECK_EQ(n + 3 + 2 * i, strap_expect.tval, (unsigned long)off_probes[i].tval);
    }
}

/* fs0, fs1 and fflags still hold what main left there: checks n .. n + 2 */
static void expect_registers_kept(long n)
{
    uint64_t s0, s1;
    unsigned long flags;
    __asm__ __volatile__(FP_ASM("fmv.x.d %0, fs0\nfmv.x.d %1, fs1\nfrflags %2")
                         : "=r"(s0), "=r"(s1), "=r"(flags));
    CHECK_EQ(n, s0, 0x0123456789abcdefUL);
    CHECK_EQ(n + 1, s1, 0xfedcba9876543210UL);
    CHECK_EQ(n + 2, flags, 0x10);
}

static volatile int timer_interrupts;

static int timer_hook(struct strap_frame *f)
{
    if (f->scause != (MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_TIMER))
        return 0;
    sbi_set_timer(-1ULL);
    timer_interrupts++;
    /* the trap handler may use FP too: it leaves ft3 changed, the caller's s-registers alone */
    __asm__ __volatile__(FP_ASM("fcvt.d.l ft3, zero") ::: "ft3");
    return 1;
}

int main(unsigned long hartid, unsigned long dtb)
{
    (void)hartid;
    (void)dtb;
    set_fs(EXTENSION_STATE_OFF);
    off_is_illegal(1);
    puts("FS Off: FP instructions, loads and fcsr are illegal");

    set_fs(EXTENSION_STATE_INITIAL);
    expect_fs(10, EXTENSION_STATE_INITIAL);
    __asm__ __volatile__(FP_ASM("fscsr zero"));
    uint64_t third = fdiv_d(d_of(1), d_of(3));
    unsigned long flags;
    __asm__ __volatile__(FP_ASM("frflags %0") : "=r"(flags));
    printf("1/3 = 0x%lx, fflags 0x%lx\n", (unsigned long)third, flags);
    CHECK_EQ(12, third, 0x3fd5555555555555UL);
    CHECK_EQ(13, flags, 1);                                 /* NX */
    expect_fs(14, EXTENSION_STATE_DIRTY);

    /* rounding toward zero changes the last bit of 1/10 (RNE rounds it up) */
    uint64_t tenth_rne = fdiv_d(d_of(1), d_of(10));
    __asm__ __volatile__(FP_ASM("fsrm zero, %0") ::"r"(1UL));  /* RTZ */
    uint64_t tenth_rtz = fdiv_d(d_of(1), d_of(10));
    unsigned long frm, fcsr;
    __asm__ __volatile__(FP_ASM("frrm %0\nfrcsr %1") : "=r"(frm), "=r"(fcsr));
    printf("1/10 = 0x%lx (rne), 0x%lx (rtz), frm %lu, fcsr 0x%lx\n",
           (unsigned long)tenth_rne, (unsigned long)tenth_rtz, frm, fcsr);
    CHECK_EQ(16, tenth_rne, 0x3fb999999999999aUL);
    CHECK_EQ(17, tenth_rtz, 0x3fb9999999999999UL);
    CHECK_EQ(18, frm, 1);
    CHECK_EQ(19, fcsr, 1 << 5 | 1);                         /* frm RTZ, NX */
    __asm__ __volatile__(FP_ASM("fsrm zero, zero"));

    /* sqrt(2) in both precisions, a fused multiply-add, a conversion back */
    uint64_t root2, fused;
    uint32_t root2_single;
    long back;
    __asm__ __volatile__(FP_ASM("fld ft0, 0(%4)\n"
                                "fsqrt.d ft1, ft0\nfmv.x.d %0, ft1\n"
                                "fcvt.s.d ft2, ft0\nfsqrt.s ft2, ft2\nfmv.x.w %1, ft2\n"
                                "fmadd.d ft3, ft1, ft1, ft0\nfmv.x.d %2, ft3\n"
                                "fcvt.l.d %3, ft3, rtz")
                         : "=r"(root2), "=r"(root2_single), "=r"(fused), "=r"(back)
                         : "r"(&scratch_double) : "ft0", "ft1", "ft2", "ft3", "memory");
    printf("sqrt(2) = 0x%lx, single 0x%x; sqrt(2)^2 + 2 = 0x%lx, to integer %ld\n",
           (unsigned long)root2, root2_single, (unsigned long)fused, back);
    CHECK_EQ(20, root2, 0x3ff6a09e667f3bcdUL);
    CHECK_EQ(21, root2_single, 0x3fb504f3);
    CHECK_EQ(22, back, 4);

    /* Clean, then one write: Dirty again */
    set_fs(EXTENSION_STATE_CLEAN);
    expect_fs(30, EXTENSION_STATE_CLEAN);
    __asm__ __volatile__(FP_ASM("fmv.d.x fs0, %0") ::"r"(0x0123456789abcdefUL) : "fs0");
    expect_fs(32, EXTENSION_STATE_DIRTY);
    puts("FS: Initial, Clean and Dirty as written, Dirty after a write, with SD");

    /* the registers survive SBI calls, CSR accesses and an interrupt */
    __asm__ __volatile__(FP_ASM("fmv.d.x fs1, %0\nfsflags %1") ::"r"(0xfedcba9876543210UL),
                         "r"(0x10UL) : "fs1");                 /* NV */
    for (int i = 0; i < 50; i++) {
        sbi_get_spec_version();
        csr_write(CSR_SSCRATCH, (unsigned long)i);      /* (0 again before any trap: strap.S) */
        CHECK_EQ(34, csr_swap(CSR_SSCRATCH, 0), (unsigned long)i);
    }
    strap_hook = timer_hook;
    csr_set(CSR_SIE, MIP_STIP_MASK);
    sbi_set_timer(rdtime() + 1000);
    csr_set(CSR_SSTATUS, SSTATUS_SIE_MASK);
    unsigned long until = rdtime() + 50000;     /* 5 ms: several slices of other VMs, if any */
    while (rdtime() < until)
        ;
    csr_clear(CSR_SSTATUS, SSTATUS_SIE_MASK);
    CHECK_EQ(39, timer_interrupts, 1);
    csr_clear(CSR_SIE, MIP_STIP_MASK);
    strap_hook = 0;
    expect_registers_kept(40);
    puts("f registers and fflags kept across SBI calls, CSR accesses and an interrupt");

    /* Off again: illegal; on again: the values are still there */
    set_fs(EXTENSION_STATE_OFF);
    off_is_illegal(50);
    set_fs(EXTENSION_STATE_CLEAN);
    expect_registers_kept(60);
    puts("FS Off and on again: the registers kept their values");
    set_fs(EXTENSION_STATE_OFF);
    pass();
}

/*
 * timer.c - time, counters and the S-mode timer interrupt.
 *
 *   - rdtime (csrr time) is readable and monotonic, and advances,
 *   - cycle / instret / hpmcounter3 from S-mode: readable only when the
 *     SBI firmware set mcounteren (reported, not required),
 *   - SBI TIME set_timer: clears a pending STIP when the deadline is in the
 *     future, wfi (SIE = 0, sie.STIE = 1) wakes up when the timer fires,
 *     time has then passed the deadline, sip.STIP is read-only for S,
 *     the interrupt is taken with scause 0x8000000000000005 as soon as
 *     sstatus.SIE is set, and set_timer(-1) clears sip.STIP,
 *   - the legacy set_timer (EID 0x00) does the same,
 *   - Sstc: when stimecmp (CSR_STIMECMP) can be read from S-mode (menvcfg.STCE
 *     set by the firmware), the same through stimecmp; otherwise skipped.
 */
#include "smode.h"

TEST_NAME("smode/timer");


static volatile long sti_count;
static volatile unsigned long sti_cause, sti_time, sti_sepc;
static volatile int sti_use_stimecmp;

static int timer_hook(struct strap_frame *f)
{
    if (f->scause != (MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_TIMER))
        return 0;
    sti_time = rdtime();
    sti_cause = f->scause;
    sti_sepc = f->sepc;
    sti_count++;
    if (sti_use_stimecmp)
        csr_write(CSR_STIMECMP, -1UL);
    else
        sbi_set_timer(-1ULL);
    return 1;
}

/* wfi until sip.STIP is set (with SIE = 0); 0 after two seconds */
static int wait_stip(void)
{
    uint64_t t0 = rdtime();
    while (!(csr_read(sip) & SIP_STIP_MASK)) {
        if (rdtime() - t0 > 2 * TIMEBASE_HZ)
            return 0;
        wfi();
    }
    return 1;
}

/* take the pending timer interrupt by opening sstatus.SIE for a moment */
extern char take_irq_point[];
static void take_pending_irq(void)
{
    __asm__ __volatile__("csrsi sstatus, 2\n"
                         "take_irq_point:\n"
                         "nop\n"
                         "csrci sstatus, 2\n" ::: "memory");
}

static void counters(void)
{
    unsigned long v1 = 0, v2 = 0, sc = 0;
    long c;

    c = PROBE_CSR_READ(scounteren, &sc);
    CHECK_EQ(10, c, -1);
    printf("scounteren at entry: 0x%lx\n", sc);

    c = PROBE_CSR_READ(time, &v1);
    CHECK_EQ(11, c, -1);            /* time must be readable (or emulated) */

    c = PROBE_CSR_READ(cycle, &v1);
    if (c == -1) {
        PROBE_CSR_READ(cycle, &v2);
        printf("cycle readable from S-mode (mcounteren.CY = 1): 0x%lx -> 0x%lx\n",
               v1, v2);
        CHECK(12, v2 >= v1);
    } else {
        printf("cycle not readable from S-mode: scause %ld\n", c);
        CHECK_EQ(13, c, CAUSE_ILLEGAL_INSTRUCTION);
    }
    c = PROBE_CSR_READ(instret, &v1);
    if (c == -1) {
        PROBE_CSR_READ(instret, &v2);
        printf("instret readable from S-mode (mcounteren.IR = 1): 0x%lx -> 0x%lx\n",
               v1, v2);
        CHECK(14, v2 >= v1);
    } else {
        printf("instret not readable from S-mode: scause %ld\n", c);
        CHECK_EQ(15, c, CAUSE_ILLEGAL_INSTRUCTION);
    }
    c = PROBE_CSR_READ(hpmcounter3, &v1);
    if (c == -1)
        printf("hpmcounter3 readable from S-mode: 0x%lx\n", v1);
    else
        printf("hpmcounter3 not readable from S-mode: scause %ld\n", c);
}

/* one timer round: arm (through `arm`), wfi, check, take the interrupt */
static void timer_round(int base, void (*arm)(uint64_t), const char *what)
{
    long before = sti_count;
    uint64_t deadline = rdtime() + TIMEBASE_HZ / 100;     /* 10 ms */
    arm(deadline);
    CHECK_EQ(base + 0, csr_read(sip) & SIP_STIP_MASK, 0);        /* not yet */
    CHECK(base + 1, wait_stip());
    uint64_t now = rdtime();
    CHECK(base + 2, now >= deadline);
    /* STIP is read-only in sip */
    csr_clear(sip, SIP_STIP_MASK);
    CHECK_EQ(base + 3, csr_read(sip) & SIP_STIP_MASK, SIP_STIP_MASK);
    CHECK_EQ(base + 4, sti_count, before);                  /* SIE = 0: not taken */
    take_pending_irq();
    CHECK_EQ(base + 5, sti_count, before + 1);
    CHECK_EQ(base + 6, sti_cause, MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_TIMER);
    CHECK_EQ(base + 7, sti_sepc, (uintptr_t)take_irq_point);
    CHECK(base + 8, sti_time >= deadline);
    CHECK_EQ(base + 9, csr_read(sip) & SIP_STIP_MASK, 0);        /* cleared by -1 */
    printf("%s: fired %lu ticks after the deadline\n", what,
           (unsigned long)(now - deadline));
}

static void arm_sbi(uint64_t t)
{
    struct sbiret r = sbi_set_timer(t);
    CHECK_EQ(30, r.error, 0);
}

static void arm_legacy(uint64_t t)
{
    sbi_legacy_set_timer(t);
}

static void arm_stimecmp(uint64_t t)
{
    csr_write(CSR_STIMECMP, t);
}

int main(unsigned long hartid, unsigned long dtb)
{
    (void)hartid;
    (void)dtb;

    /* ---- time is monotonic and advances ---- */
    uint64_t first = rdtime(), prev = first;
    for (int i = 0; i < 1000; i++) {
        uint64_t t = rdtime();
        CHECK(1, t >= prev);
        prev = t;
    }
    while (rdtime() == first)
        ;
    CHECK(2, rdtime() > first);

    counters();

    /* ---- SBI TIME set_timer ---- */
    strap_hook = timer_hook;
    csr_clear(sstatus, SSTATUS_SIE_MASK);
    csr_set(sie, SIE_STIE_MASK);
    timer_round(40, arm_sbi, "sbi_set_timer");

    /* a deadline in the past fires at once; far future clears STIP again */
    sbi_set_timer(rdtime());
    CHECK(50, wait_stip());
    struct sbiret r = sbi_set_timer(-1ULL);
    CHECK_EQ(51, r.error, 0);
    CHECK_EQ(52, csr_read(sip) & SIP_STIP_MASK, 0);
    CHECK_EQ(53, sti_count, 1);

    /* ---- legacy set_timer (EID 0x00) ---- */
    timer_round(60, arm_legacy, "legacy set_timer");

    /* ---- Sstc ---- */
    unsigned long cmp;
    long c = PROBE_CSR_READ(CSR_STIMECMP, &cmp);
    if (c == -1) {
        printf("stimecmp readable from S-mode (Sstc, menvcfg.STCE = 1): 0x%lx\n",
               cmp);
        sti_use_stimecmp = 1;
        timer_round(70, arm_stimecmp, "stimecmp");
        /* an old value fires immediately */
        csr_write(CSR_STIMECMP, 0);
        CHECK_EQ(80, csr_read(sip) & SIP_STIP_MASK, SIP_STIP_MASK);
        csr_write(CSR_STIMECMP, -1UL);
        CHECK_EQ(81, csr_read(sip) & SIP_STIP_MASK, 0);
        CHECK_EQ(82, csr_read(CSR_STIMECMP), -1UL);
        sti_use_stimecmp = 0;
        /* the SBI timer still works afterwards */
        timer_round(90, arm_sbi, "sbi_set_timer after Sstc");
    } else {
        printf("stimecmp not accessible from S-mode (scause %ld): Sstc part skipped\n",
               c);
        CHECK_EQ(83, c, CAUSE_ILLEGAL_INSTRUCTION);
    }

    csr_clear(sie, SIE_STIE_MASK);
    strap_hook = 0;
    pass();
}

/*
 * smp.c - two harts through SBI HSM and IPI (QEMU: -smp 2).  With a single
 * hart the multi-hart part is skipped and only the LR/SC counter runs.
 *
 *   - hart_get_status finds the harts (SBI_ERR_INVALID_PARAM past the last),
 *   - hart_start(other, rvh_secondary_entry, opaque): the hart starts in
 *     S-mode with a0 = hartid, a1 = opaque, satp = 0 and sstatus.SIE = 0;
 *     hart_get_status says STARTED; starting it again gives
 *     SBI_ERR_ALREADY_AVAILABLE,
 *   - the other hart increments a shared counter with amoadd and sends an
 *     IPI to the boot hart, which waits for it in a wfi loop (sie.SSIE),
 *   - remote fence.i / sfence.vma on both harts,
 *   - an IPI from the boot hart starts an LR/SC + AMO contention phase on
 *     both harts: the totals are exact,
 *   - the other hart calls hart_stop and its status becomes STOPPED; it
 *     can then be started again with another opaque value.
 */
#include "smode.h"

TEST_NAME("smode/smp");

#define N_AMO           20000UL
#define N_CONTEND       50000UL
#define OPAQUE1         0x0123456789abcdefUL
#define OPAQUE2         0xfedcba9876543210UL

static volatile unsigned long sec_hartid, sec_opaque, sec_satp, sec_sstatus;
static volatile unsigned long sec_error, sec_restarted, contend_done;
static volatile unsigned long amo_counter, lrsc_counter, amo2_counter;
static volatile long ssi_count[RVH_MAX_HARTS];

static int ipi_hook(struct strap_frame *f)
{
    if (f->scause != (MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_SOFTWARE))
        return 0;
    csr_clear(sip, SIP_SSIP_MASK);
    unsigned long h = rvh_hartid();
    if (h < RVH_MAX_HARTS)
        ssi_count[h]++;
    return 1;
}

/*
 * Wait (wfi, sstatus.SIE = 0, sie.SSIE = 1) until this hart has taken
 * `target` software interrupts; the SBI timer bounds the wait to two
 * seconds (STIP also wakes wfi).  Returns nonzero on success.
 */
static int wait_ipis(long target)
{
    unsigned long h = rvh_hartid();
    uint64_t deadline = rdtime() + 2 * TIMEBASE_HZ;
    csr_clear(sstatus, SSTATUS_SIE_MASK);
    sbi_set_timer(deadline);
    csr_set(sie, SIE_SSIE_MASK | SIE_STIE_MASK);
    for (;;) {
        if (csr_read(sip) & SIP_SSIP_MASK) {         /* take it through the hook */
            csr_set(sstatus, SSTATUS_SIE_MASK);
            csr_clear(sstatus, SSTATUS_SIE_MASK);
        }
        if (ssi_count[h] >= target || rdtime() >= deadline)
            break;
        wfi();
    }
    sbi_set_timer(-1ULL);
    csr_clear(sie, SIE_STIE_MASK);
    return ssi_count[h] >= target;
}

static void lrsc_increment(volatile unsigned long *p)
{
    unsigned long tmp, fail;
    __asm__ __volatile__("1: lr.d %0, (%2)\n"
                         "   addi %0, %0, 1\n"
                         "   sc.d %1, %0, (%2)\n"
                         "   bnez %1, 1b\n"
                         : "=&r"(tmp), "=&r"(fail)
                         : "r"(p)
                         : "memory");
}

static void amo_increment(volatile unsigned long *p)
{
    __asm__ __volatile__("amoadd.d zero, %1, (%0)" :: "r"(p), "r"(1UL) : "memory");
}

static void contend(void)
{
    for (unsigned long i = 0; i < N_CONTEND; i++) {
        lrsc_increment(&lrsc_counter);
        amo_increment(&amo2_counter);
    }
}

/* The boot hart's share, with remote fences of both harts among its increments: under a
 * hypervisor on several host harts they reach the other vCPU while it runs, so its host hart
 * must fence too before the call returns. */
static int contend_fencing(unsigned long both)
{
    for (unsigned long i = 0; i < N_CONTEND; i++) {
        lrsc_increment(&lrsc_counter);
        amo_increment(&amo2_counter);
        if (i % 10000 == 0 && (sbi_remote_sfence_vma(both, 0, 0, -1UL).error ||
                               sbi_remote_fence_i(both, 0).error))
            return -1;
    }
    return 0;
}

void rvh_secondary_main(unsigned long hartid, unsigned long opaque)
{
    sec_satp = csr_read(satp);
    sec_sstatus = csr_read(sstatus);
    sec_opaque = opaque;
    __atomic_store_n(&sec_hartid, hartid, __ATOMIC_RELEASE);
    if (opaque == OPAQUE2) {                    /* second start: stop again */
        __atomic_store_n(&sec_restarted, 1, __ATOMIC_RELEASE);
        return;
    }
    for (unsigned long i = 0; i < N_AMO; i++)
        amo_increment(&amo_counter);
    struct sbiret r = sbi_send_ipi(1UL << rvh_boot_hartid, 0);
    if (r.error)
        sec_error = 1;
    if (!wait_ipis(1)) {                        /* the go signal */
        sec_error = 2;
        return;
    }
    contend();
    __atomic_store_n(&contend_done, 1, __ATOMIC_RELEASE);
    /* returning stops the hart (sbi_hart_stop in sstart.S) */
}

/* poll hart_get_status until `want` (two seconds at most); returns the last status */
static long wait_status(unsigned long hart, long want)
{
    uint64_t t0 = rdtime();
    long st;
    do {
        struct sbiret r = sbi_hart_get_status(hart);
        st = r.error ? r.error : r.value;
    } while (st != want && rdtime() - t0 < 2 * TIMEBASE_HZ);
    return st;
}

static int wait_flag(volatile unsigned long *flag)
{
    uint64_t t0 = rdtime();
    while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE))
        if (rdtime() - t0 > 5 * TIMEBASE_HZ)
            return 0;
    return 1;
}

int main(unsigned long hartid, unsigned long dtb)
{
    (void)dtb;
    struct sbiret r;

    CHECK(1, hartid < RVH_MAX_HARTS);
    /* ---- which harts exist ---- */
    long other = -1;
    int nharts = 0;
    for (unsigned long h = 0; h < RVH_MAX_HARTS; h++) {
        r = sbi_hart_get_status(h);
        if (r.error) {
            CHECK_EQ(2, r.error, SBI_ERR_INVALID_PARAM);
            continue;
        }
        nharts++;
        long st = r.value;
        /*
         * A firmware that started every hart at _start sees the extra harts
         * stop themselves (sstart.S): give them time to reach STOPPED.
         */
        if (h != hartid && st != SBI_HSM_STATE_STOPPED)
            st = wait_status(h, SBI_HSM_STATE_STOPPED);
        printf("hart %lu: status %ld%s\n", h, st, h == hartid ? " (boot)" : "");
        if (h == hartid)
            CHECK_EQ(3, st, SBI_HSM_STATE_STARTED);
        else if (other < 0 && st == SBI_HSM_STATE_STOPPED)
            other = (long)h;
    }
    CHECK(4, nharts >= 1);

    strap_hook = ipi_hook;
    if (other < 0) {
        puts("one hart: multi-hart part skipped");
        contend();
        CHECK_EQ(5, lrsc_counter, N_CONTEND);
        CHECK_EQ(6, amo2_counter, N_CONTEND);
        pass();
    }
    printf("boot hart %lu starts hart %ld\n", hartid, other);

    /* ---- start the other hart ---- */
    r = sbi_hart_start(other, (uintptr_t)rvh_secondary_entry, OPAQUE1);
    CHECK_EQ(10, r.error, 0);
    CHECK_EQ(11, wait_status(other, SBI_HSM_STATE_STARTED), SBI_HSM_STATE_STARTED);
    r = sbi_hart_start(other, (uintptr_t)rvh_secondary_entry, OPAQUE1);
    CHECK_EQ(12, r.error, SBI_ERR_ALREADY_AVAILABLE);

    /* ---- its IPI ---- */
    CHECK(13, wait_ipis(1));
    CHECK_EQ(14, sec_error, 0);
    CHECK_EQ(15, sec_hartid, other);
    CHECK_EQ(16, sec_opaque, OPAQUE1);
    CHECK_EQ(17, sec_satp, 0);
    CHECK_EQ(18, sec_sstatus & SSTATUS_SIE_MASK, 0);
    CHECK_EQ(19, amo_counter, N_AMO);

    /* ---- remote fences on both harts ---- */
    unsigned long both = (1UL << hartid) | (1UL << other);
    r = sbi_remote_fence_i(both, 0);
    CHECK_EQ(20, r.error, 0);
    r = sbi_remote_sfence_vma(both, 0, 0, -1UL);
    CHECK_EQ(21, r.error, 0);
    r = sbi_remote_sfence_vma_asid(1, other, 0, -1UL, 0);
    CHECK_EQ(22, r.error, 0);

    /* ---- contention: go signal by IPI ---- */
    r = sbi_send_ipi(1UL << other, 0);
    CHECK_EQ(30, r.error, 0);
    CHECK_EQ(36, contend_fencing(both), 0);
    CHECK(31, wait_flag(&contend_done));
    CHECK_EQ(32, sec_error, 0);
    CHECK_EQ(33, lrsc_counter, 2 * N_CONTEND);
    CHECK_EQ(34, amo2_counter, 2 * N_CONTEND);
    CHECK_EQ(35, ssi_count[other], 1);

    /* ---- hart_stop (when rvh_secondary_main returned) ---- */
    CHECK_EQ(40, wait_status(other, SBI_HSM_STATE_STOPPED), SBI_HSM_STATE_STOPPED);

    /* ---- and start it again ---- */
    r = sbi_hart_start(other, (uintptr_t)rvh_secondary_entry, OPAQUE2);
    CHECK_EQ(41, r.error, 0);
    CHECK(42, wait_flag(&sec_restarted));
    CHECK_EQ(43, sec_opaque, OPAQUE2);
    CHECK_EQ(44, sec_hartid, other);
    CHECK_EQ(45, wait_status(other, SBI_HSM_STATE_STOPPED), SBI_HSM_STATE_STOPPED);

    printf("harts %lu and %ld: %lu LR/SC and %lu AMO increments each, totals exact\n",
           hartid, other, N_CONTEND, N_CONTEND);
    strap_hook = 0;
    pass();
}

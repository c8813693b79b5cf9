/*
 * sbi.c - the SBI as seen from S-mode (SBI spec v2.0; OpenSBI 1.1 reports
 * spec 1.0, rvh's built-in SBI 2.0: both pass).
 *
 * BASE (spec version, implementation, machine IDs, probe_extension),
 * error codes for unknown EIDs/FIDs and bad parameters, HSM status,
 * HSM status/start errors and suspend (a reserved type is rejected; the
 * default retentive suspend returns once the timer fires, or is not
 * supported), IPI to self (pending bit with SIE = 0, then a taken
 * interrupt with scause 0x8000000000000001 cleared through sip.SSIP),
 * RFENCE calls,
 * SRST parameter checks, the legacy console, and DBCN when present.
 */
#include "smode.h"

TEST_NAME("smode/sbi");


static volatile long ssi_count;
static volatile unsigned long ssi_cause, ssi_sip;

static int ipi_hook(struct strap_frame *f)
{
    if (f->scause != (MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_SOFTWARE))
        return 0;
    ssi_cause = f->scause;
    ssi_count++;
    csr_clear(sip, SIP_SSIP_MASK);
    ssi_sip = csr_read(sip);
    return 1;
}

/* wait (at most a second) until the S-mode software interrupt is pending */
static int wait_ssip(void)
{
    uint64_t t0 = rdtime();
    while (!(csr_read(sip) & SIP_SSIP_MASK))
        if (rdtime() - t0 > TIMEBASE_HZ)
            return 0;
    return 1;
}

/* wait (at most a second) until ssi_count reaches n */
static int wait_ssi_count(long n)
{
    uint64_t t0 = rdtime();
    while (ssi_count < n)
        if (rdtime() - t0 > TIMEBASE_HZ)
            return 0;
    return 1;
}

static const char dbcn_msg[] = "DBCN console_write: hello through FID 0\n";

int main(unsigned long hartid, unsigned long dtb)
{
    struct sbiret r;
    (void)dtb;

    /* ---- BASE ---- */
    r = sbi_get_spec_version();
    CHECK_EQ(1, r.error, 0);
    unsigned long ver = (unsigned long)r.value;
    printf("spec version 0x%lx (%lu.%lu)\n", ver, SBI_SPEC_MAJOR(ver),
           SBI_SPEC_MINOR(ver));
    CHECK(2, (ver >> 31) == 0);
    CHECK(3, SBI_SPEC_MAJOR(ver) > 0 || SBI_SPEC_MINOR(ver) >= 2);

    r = sbi_get_impl_id();
    CHECK_EQ(4, r.error, 0);
    long impl = r.value;
    r = sbi_get_impl_version();
    CHECK_EQ(5, r.error, 0);
    printf("implementation id %ld%s, version 0x%lx\n", impl,
           impl == SBI_IMPL_OPENSBI ? " (OpenSBI)" : "", r.value);

    r = sbi_get_mvendorid();
    CHECK_EQ(6, r.error, 0);
    unsigned long mvendorid = r.value;
    r = sbi_get_marchid();
    CHECK_EQ(7, r.error, 0);
    unsigned long marchid = r.value;
    r = sbi_get_mimpid();
    CHECK_EQ(8, r.error, 0);
    printf("mvendorid 0x%lx marchid 0x%lx mimpid 0x%lx\n", mvendorid, marchid,
           (unsigned long)r.value);

    /* probe_extension: 0 = absent, nonzero (normally 1) = present */
    static const struct { long eid; const char *name; } present[] = {
        { SBI_EXT_BASE, "BASE" }, { SBI_EXT_TIME, "TIME" },
        { SBI_EXT_IPI, "IPI" }, { SBI_EXT_RFENCE, "RFENCE" },
        { SBI_EXT_HSM, "HSM" }, { SBI_EXT_SRST, "SRST" },
        /* legacy set_timer, console putchar/getchar, shutdown */
        { SBI_EXT_LEGACY_SET_TIMER, "legacy set_timer" },
        { SBI_EXT_LEGACY_CONSOLE_PUTCHAR, "legacy putchar" },
        { SBI_EXT_LEGACY_CONSOLE_GETCHAR, "legacy getchar" },
        { SBI_EXT_LEGACY_SHUTDOWN, "legacy shutdown" },
    };
    for (unsigned i = 0; i < sizeof present / sizeof present[0]; i++) {
        r = sbi_probe_extension(present[i].eid);
        printf("probe %s (0x%lx): error %ld value %ld\n", present[i].name,
               (unsigned long)present[i].eid, r.error, r.value);
        CHECK_EQ(9, r.error, 0);
        CHECK(10, r.value != 0);
    }
    /* optional extensions: reported only */
    static const struct { long eid; const char *name; } optional[] = {
        { 0x504D55, "PMU" }, { SBI_EXT_DBCN, "DBCN" }, { 0x53555350, "SUSP" },
        { 0x43505043, "CPPC" }, { 0x4E41434C, "NACL" }, { 0x535441, "STA" },
        { 0x03, "legacy clear_ipi" }, { 0x04, "legacy send_ipi" },
        { 0x05, "legacy remote_fence_i" }, { 0x06, "legacy remote_sfence_vma" },
        { 0x07, "legacy remote_sfence_vma_asid" },
    };
    for (unsigned i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        r = sbi_probe_extension(optional[i].eid);
        printf("probe %s (0x%lx, optional): error %ld value %ld\n", optional[i].name,
               (unsigned long)optional[i].eid, r.error, r.value);
    }
    /* EIDs nobody defines (outside the experimental/vendor/firmware ranges) */
    r = sbi_probe_extension(0x12345678);
    CHECK_EQ(11, r.error, 0);
    CHECK_EQ(12, r.value, 0);
    r = sbi_probe_extension(0x0BADCAFE);
    CHECK_EQ(13, r.error, 0);
    CHECK_EQ(14, r.value, 0);

    /* ---- unknown EID / FID: SBI_ERR_NOT_SUPPORTED ---- */
    r = sbi_ecall(0x12345678, 0, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(15, r.error, SBI_ERR_NOT_SUPPORTED);
    r = sbi_ecall(SBI_EXT_BASE, 0x100, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(16, r.error, SBI_ERR_NOT_SUPPORTED);
    r = sbi_ecall(SBI_EXT_TIME, 1, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(17, r.error, SBI_ERR_NOT_SUPPORTED);
    r = sbi_ecall(SBI_EXT_IPI, 1, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(18, r.error, SBI_ERR_NOT_SUPPORTED);
    r = sbi_ecall(SBI_EXT_HSM, 0x100, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(19, r.error, SBI_ERR_NOT_SUPPORTED);
    r = sbi_ecall(SBI_EXT_SRST, 1, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(20, r.error, SBI_ERR_NOT_SUPPORTED);

    /* ---- HSM ---- */
    r = sbi_hart_get_status(hartid);
    CHECK_EQ(21, r.error, 0);
    CHECK_EQ(22, r.value, SBI_HSM_STATE_STARTED);
    r = sbi_hart_get_status(0x7fffffff);            /* no such hart */
    CHECK_EQ(23, r.error, SBI_ERR_INVALID_PARAM);
    r = sbi_hart_start(hartid, (uintptr_t)rvh_secondary_entry, 0);
    CHECK_EQ(24, r.error, SBI_ERR_ALREADY_AVAILABLE);
    r = sbi_hart_start(0x7fffffff, (uintptr_t)rvh_secondary_entry, 0);
    CHECK_EQ(25, r.error, SBI_ERR_INVALID_PARAM);

    /* ---- HSM suspend: reserved type, default retentive (woken by the timer) ---- */
    r = sbi_hart_suspend(1, 0, 0);                  /* 0x00000001: reserved */
    CHECK_EQ(55, r.error, SBI_ERR_INVALID_PARAM);
    csr_clear(sstatus, SSTATUS_SIE_MASK);
    csr_set(sie, SIE_STIE_MASK);
    uint64_t t_susp = rdtime();
    sbi_set_timer(t_susp + TIMEBASE_HZ / 100);
    r = sbi_hart_suspend(SBI_HSM_SUSPEND_RETENTIVE, 0, 0);
    uint64_t t_resume = rdtime();
    sbi_set_timer(-1ULL);
    csr_clear(sie, SIE_STIE_MASK);
    printf("hart_suspend(default retentive): error %ld after %lu ticks\n", r.error,
           (unsigned long)(t_resume - t_susp));
    CHECK(56, r.error == 0 || r.error == SBI_ERR_NOT_SUPPORTED);
    r = sbi_hart_get_status(hartid);
    CHECK_EQ(57, r.value, SBI_HSM_STATE_STARTED);

    /* ---- IPI to self ---- */
    strap_hook = ipi_hook;
    csr_clear(sstatus, SSTATUS_SIE_MASK);
    csr_clear(sip, SIP_SSIP_MASK);
    csr_set(sie, SIE_SSIE_MASK);
    /* with SIE = 0 the interrupt stays pending in sip */
    r = sbi_send_ipi(1UL << hartid, 0);
    CHECK_EQ(26, r.error, 0);
    CHECK(27, wait_ssip());
    CHECK_EQ(28, ssi_count, 0);
    csr_clear(sip, SIP_SSIP_MASK);                       /* SSIP is writable */
    CHECK_EQ(29, csr_read(sip) & SIP_SSIP_MASK, 0);
    /* with SIE = 1 it is taken: scause = interrupt | 1 */
    csr_set(sstatus, SSTATUS_SIE_MASK);
    r = sbi_send_ipi(1, hartid);                    /* mask 1, base = hartid */
    CHECK_EQ(30, r.error, 0);
    CHECK(31, wait_ssi_count(1));
    CHECK_EQ(32, ssi_cause, MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_SOFTWARE);
    CHECK_EQ(33, ssi_sip & SIP_SSIP_MASK, 0);            /* cleared by the handler */
    r = sbi_send_ipi(0, -1UL);                      /* base -1: every hart */
    CHECK_EQ(34, r.error, 0);
    CHECK(35, wait_ssi_count(2));
    /* a hart that does not exist */
    r = sbi_send_ipi(1, 0x7fffffff);
    printf("send_ipi to hart 0x7fffffff: error %ld\n", r.error);
    CHECK_EQ(36, r.error, SBI_ERR_INVALID_PARAM);
    csr_clear(sstatus, SSTATUS_SIE_MASK);
    csr_clear(sie, SIE_SSIE_MASK);
    CHECK_EQ(37, ssi_count, 2);
    strap_hook = 0;

    /* ---- RFENCE ---- */
    r = sbi_remote_fence_i(1UL << hartid, 0);
    CHECK_EQ(38, r.error, 0);
    r = sbi_remote_fence_i(0, -1UL);
    CHECK_EQ(39, r.error, 0);
    r = sbi_remote_sfence_vma(1UL << hartid, 0, 0, -1UL);   /* everything */
    CHECK_EQ(40, r.error, 0);
    r = sbi_remote_sfence_vma(1, hartid, 0x80200000UL, 0x1000);
    CHECK_EQ(41, r.error, 0);
    r = sbi_remote_sfence_vma_asid(1UL << hartid, 0, 0, -1UL, 0);
    CHECK_EQ(42, r.error, 0);

    /* ---- SRST: reserved type and reason are rejected (and do not reset) ---- */
    r = sbi_system_reset(5, SBI_SRST_REASON_NONE);
    CHECK_EQ(43, r.error, SBI_ERR_INVALID_PARAM);
    r = sbi_system_reset(SBI_SRST_TYPE_SHUTDOWN, 2);
    CHECK_EQ(44, r.error, SBI_ERR_INVALID_PARAM);

    /* ---- legacy console ---- */
    static const char legacy_msg[] = "legacy console_putchar works\n";
    for (const char *p = legacy_msg; *p; p++)
        CHECK_EQ(45, sbi_legacy_console_putchar(*p), 0);
    long ch = sbi_legacy_console_getchar();         /* stdin: normally empty */
    printf("legacy console_getchar: %ld\n", ch);
    CHECK(46, ch >= -1 && ch <= 255);

    /* ---- DBCN (SBI 2.0) ---- */
    if (sbi_console_has_dbcn) {
        unsigned long len = sizeof dbcn_msg - 1, done = 0;
        for (int tries = 0; done < len && tries < 1000; tries++) {
            r = sbi_debug_console_write(len - done, (uintptr_t)dbcn_msg + done, 0);
            CHECK_EQ(47, r.error, 0);
            CHECK(48, (unsigned long)r.value <= len - done);
            done += r.value;
        }
        CHECK_EQ(49, done, len);
        static const char byte_msg[] = "DBCN console_write_byte works\n";
        for (const char *p = byte_msg; *p; p++) {
            r = sbi_debug_console_write_byte((uint8_t)*p);
            CHECK_EQ(50, r.error, 0);
        }
        /*
         * Memory that does not satisfy the shared-memory rules: SBI v2.0
         * "Debug Console Write Errors" gives SBI_ERR_INVALID_PARAM.  (Later
         * drafts add SBI_ERR_INVALID_ADDRESS to the shared-memory section;
         * rvh implements v2.0.)
         */
        r = sbi_debug_console_write(16, 0x80200000UL, 1);   /* above 2^64 */
        CHECK_EQ(51, r.error, SBI_ERR_INVALID_PARAM);
        r = sbi_debug_console_write(0x100, -0x10UL, 0);     /* wraps around */
        CHECK_EQ(52, r.error, SBI_ERR_INVALID_PARAM);
        /* an unknown DBCN function */
        r = sbi_ecall(SBI_EXT_DBCN, 3, 0, 0, 0, 0, 0, 0);
        CHECK_EQ(53, r.error, SBI_ERR_NOT_SUPPORTED);
        puts("DBCN: present, tested");
    } else {
        r = sbi_ecall(SBI_EXT_DBCN, 2, 'x', 0, 0, 0, 0, 0);
        CHECK_EQ(54, r.error, SBI_ERR_NOT_SUPPORTED);
        puts("DBCN: not present (skipped)");
    }

    pass();
}

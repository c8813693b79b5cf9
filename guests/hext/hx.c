/*
 * hx.c - C part of the H-extension test harness (see hx.h).
 */
#include "hx.h"

static char *hx_strcpy(char *d, const char *s)
{
    char *r = d;
    while ((*d++ = *s++))
        ;
    return r;
}

#define HX_MAGIC_RET    0x48585254
#define HX_MAGIC_ABORT  0x48584142

extern void hx_mtrap(void), hx_strap(void), hx_vstrap(void);
extern char hx_lower_stack_top[];
extern long hx_run_asm(long mode, void *fn, unsigned long a0, unsigned long a1);
extern void hx_ecall_up(unsigned long a0, unsigned long magic) __attribute__((noreturn));

const char *hx_name = "hext";
int hx_first_fail, hx_nfail, hx_ndev, hx_verbose;
volatile int hx_cur;                 /* test number for unexpected-trap reports */
volatile long hx_armed;
volatile long hx_nlog;
struct hx_rec hx_log[HX_LOG_MAX];
struct hx_rec hx_exit;               /* the M-level record of the ecall that ended the last hx_run */
static volatile int hx_policy;
static volatile unsigned long hx_parg;
static volatile int hx_in_run;
unsigned long hx_lower_sp;
int hx_has_sstc;

int hx_popcount(unsigned long v)
{
    int n = 0;
    while (v) {
        v &= v - 1;
        n++;
    }
    return n;
}

/* ---------------- reporting ---------------- */
static void hx_mark_fail(int n)
{
    if (hx_nfail == 0)
        hx_first_fail = n > 0 ? n : 255;
    hx_nfail++;
}

void hx_fail(int n, const char *fmt, ...)
{
    va_list ap;
    printf("FAIL %s test %d: ", hx_name, n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    hx_mark_fail(n);
}

void hx_note(const char *fmt, ...)
{
    va_list ap;
    printf("%s: ", hx_name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

void hx_check(int n, const char *what, unsigned long got, unsigned long exp)
{
    hx_cur = n;
    if (got == exp) {
        if (hx_verbose)
            printf("ok %d %s = 0x%lx\n", n, what, got);
        return;
    }
    hx_fail(n, "%s: got 0x%lx, expected 0x%lx", what, got, exp);
}

void hx_check_mask(int n, const char *what, unsigned long got,
                   unsigned long mask, unsigned long exp)
{
    hx_cur = n;
    if ((got & mask) == exp) {
        if (hx_verbose)
            printf("ok %d %s = 0x%lx\n", n, what, got);
        return;
    }
    hx_fail(n, "%s: got 0x%lx (masked 0x%lx with 0x%lx), expected 0x%lx",
            what, got, got & mask, mask, exp);
}

void hx_check_dev(int n, const char *what, unsigned long got, unsigned long exp,
                  unsigned long qemu, const char *dev)
{
    hx_cur = n;
    if (got == exp) {
        if (hx_verbose)
            printf("ok %d %s = 0x%lx\n", n, what, got);
        return;
    }
#ifdef QEMU_DEVIATIONS
    if (got == qemu) {
        printf("SPEC %s test %d: %s: got 0x%lx, QEMU 7.2 deviation %s "
               "(the spec requires 0x%lx)\n", hx_name, n, what, got, dev, exp);
        hx_ndev++;
        return;
    }
#endif
    hx_fail(n, "%s: got 0x%lx, expected 0x%lx%s%s", what, got, exp,
            got == qemu ? " -- QEMU 7.2's known deviation " : "",
            got == qemu ? dev : "");
}

void hx_check_dev_any(int n, const char *what, unsigned long got, unsigned long exp,
                      const char *dev)
{
    hx_cur = n;
    if (got == exp) {
        if (hx_verbose)
            printf("ok %d %s = 0x%lx\n", n, what, got);
        return;
    }
#ifdef QEMU_DEVIATIONS
    printf("SPEC %s test %d: %s: got 0x%lx, QEMU 7.2 deviation %s "
           "(the spec requires 0x%lx)\n", hx_name, n, what, got, dev, exp);
    hx_ndev++;
#else
    hx_fail(n, "%s: got 0x%lx, expected 0x%lx (QEMU 7.2 gives other values: deviation %s)",
            what, got, exp, dev);
#endif
}

int hx_done(void)
{
#ifdef QEMU_DEVIATIONS
    printf("%s: QEMU_DEVIATIONS build, %d known QEMU 7.2 deviation(s) accepted\n",
           hx_name, hx_ndev);
#endif
    if (hx_nfail) {
        printf("%s: %d failed check(s)\n", hx_name, hx_nfail);
        printf("FAIL %s test %d\n", hx_name, hx_first_fail);
        return hx_first_fail;
    }
    printf("PASS %s\n", hx_name);
    return 0;
}

/* ---------------- trap handling ---------------- */
void hx_expect(long n, int policy, unsigned long arg)
{
    hx_nlog = 0;
    for (int i = 0; i < HX_LOG_MAX; i++)
        memset(&hx_log[i], 0, sizeof(hx_log[i]));
    hx_policy = policy;
    hx_parg = arg;
    hx_armed = n;
}

static const char *lvl_name(long level)
{
    return level == LVL_M ? "M" : level == LVL_HS ? "HS" : "VS";
}

static char *hx_utoa(char *p, unsigned long v, int base)
{
    char buf[24];
    int n = 0;
    do {
        buf[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        *p++ = buf[--n];
    *p = 0;
    return p;
}

/* "trap at <L> level, cause 0x<c> (<n> traps)" */
static void snprintf_lite(char *out, unsigned long level, unsigned long cause, long n)
{
    hx_strcpy(out, "trap at ");
    out += strlen(out);
    hx_strcpy(out, lvl_name(level));
    out += strlen(out);
    hx_strcpy(out, " level, cause 0x");
    out += strlen(out);
    out = hx_utoa(out, cause, 16);
    if (n > 1) {
        hx_strcpy(out, " (");
        out = hx_utoa(out + 2, n, 10);
        hx_strcpy(out, " traps)");
    }
}

static void hx_disable_irq(long level, unsigned long code)
{
    unsigned long bit = 1UL << code;
    if (level == LVL_M) {
        csrc(CSR_MIE, bit);
    } else if (level == LVL_HS) {
        if (bit & (MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK))
            csrc(CSR_HIE, bit);
        else
            csrc(CSR_SIE, bit);
    } else {
        csrc(CSR_SIE, bit);         /* vsie */
    }
}

static void hx_set_epc(long level, unsigned long epc)
{
    if (level == LVL_M)
        csrw(CSR_MEPC, epc);
    else
        csrw(CSR_SEPC, epc);        /* sepc or vsepc */
}

long hx_trap_c(unsigned long *f, long level)
{
    struct hx_rec r;
    memset(&r, 0, sizeof(r));
    r.level = level;
    if (level == LVL_M) {
        r.cause = csrr(CSR_MCAUSE);
        r.epc = csrr(CSR_MEPC);
        r.tval = csrr(CSR_MTVAL);
        r.tval2 = csrr(CSR_MTVAL2);
        r.tinst = csrr(CSR_MTINST);
        r.status = csrr(CSR_MSTATUS);
        r.hstatus = csrr(CSR_HSTATUS);
        r.pv = (r.status >> 39) & 1;
        r.pp = (r.status & MSTATUS_MPP_MASK) >> MSTATUS_MPP_SHIFT;
        r.gva = (r.status >> 38) & 1;
    } else if (level == LVL_HS) {
        r.cause = csrr(CSR_SCAUSE);
        r.epc = csrr(CSR_SEPC);
        r.tval = csrr(CSR_STVAL);
        r.tval2 = csrr(CSR_HTVAL);
        r.tinst = csrr(CSR_HTINST);
        r.status = csrr(CSR_SSTATUS);
        r.hstatus = csrr(CSR_HSTATUS);
        r.pv = (r.hstatus >> 7) & 1;
        r.pp = (r.status >> 8) & 1;
        r.gva = (r.hstatus >> 6) & 1;
    } else {
        r.cause = csrr(CSR_SCAUSE);
        r.epc = csrr(CSR_SEPC);
        r.tval = csrr(CSR_STVAL);
        r.status = csrr(CSR_SSTATUS);
        r.pv = 1;
        r.pp = (r.status >> 8) & 1;
    }
    r.a0 = f[10];
    int intr = (long)r.cause < 0;
    unsigned long code = r.cause & ~MCAUSE_INTERRUPT_MASK;

    if (!intr && code >= CAUSE_ECALL_FROM_U && code <= CAUSE_ECALL_FROM_M &&
        (f[17] == HX_MAGIC_RET || f[17] == HX_MAGIC_ABORT)) {
        if (level == LVL_M) {
            hx_exit = r;
            return 1;
        }
        hx_ecall_up(f[10], f[17]);
    }

    if (hx_armed > 0) {
        hx_armed--;
        if (hx_nlog < HX_LOG_MAX)
            hx_log[hx_nlog] = r;
        hx_nlog++;
        if (intr) {
            hx_disable_irq(level, code);
            return 0;
        }
        switch (hx_policy) {
        case HX_RA:
            hx_set_epc(level, f[1]);
            break;
        case HX_AT:
            hx_set_epc(level, hx_parg);
            break;
        default:
            hx_set_epc(level, r.epc + hx_parg);
            break;
        }
        return 0;
    }

    hx_fail(hx_cur, "unexpected trap at %s level: cause=0x%lx epc=0x%lx tval=0x%lx "
            "tval2=0x%lx tinst=0x%lx status=0x%lx hstatus=0x%lx",
            lvl_name(level), r.cause, r.epc, r.tval, r.tval2, r.tinst,
            r.status, r.hstatus);
    if (level == LVL_M) {
        if (!hx_in_run) {
            printf("FAIL %s test %d\n", hx_name, hx_first_fail);
            rvh_exit(hx_first_fail);
        }
        f[10] = HX_ABORTED;
        return 1;
    }
    hx_ecall_up(HX_ABORTED, HX_MAGIC_ABORT);
}

struct hx_rec *hx_check_trap(int n, const char *what, long level, unsigned long cause)
{
    static struct hx_rec dummy;
    hx_cur = n;
    if (hx_nlog != 1) {
        hx_fail(n, "%s: expected one trap (%s level, cause 0x%lx), got %ld",
                what, lvl_name(level), cause, (long)hx_nlog);
        memset(&dummy, 0, sizeof(dummy));
        return hx_nlog ? &hx_log[0] : &dummy;
    }
    if (hx_log[0].level != (unsigned long)level || hx_log[0].cause != cause)
        hx_fail(n, "%s: trap at %s level cause 0x%lx (tval 0x%lx), expected %s level cause 0x%lx",
                what, lvl_name(hx_log[0].level), hx_log[0].cause, hx_log[0].tval,
                lvl_name(level), cause);
    else if (hx_verbose)
        printf("ok %d %s: trap %s cause 0x%lx\n", n, what, lvl_name(level), cause);
    return &hx_log[0];
}

struct hx_rec *hx_check_trap_dev(int n, const char *what, long level, unsigned long cause,
                                 long qlevel, unsigned long qcause, const char *dev)
{
    static struct hx_rec dummy;
    hx_cur = n;
    int ok = hx_nlog == 1 && hx_log[0].level == (unsigned long)level && hx_log[0].cause == cause;
    if (ok) {
        if (hx_verbose)
            printf("ok %d %s: trap %s cause 0x%lx\n", n, what, lvl_name(level), cause);
        return &hx_log[0];
    }
    int qemu = qlevel < 0 ? hx_nlog == 0
                          : (hx_nlog == 1 && hx_log[0].level == (unsigned long)qlevel &&
                             hx_log[0].cause == qcause);
    char got[64];
    if (hx_nlog == 0)
        hx_strcpy(got, "no trap");
    else
        snprintf_lite(got, hx_log[0].level, hx_log[0].cause, hx_nlog);
#ifdef QEMU_DEVIATIONS
    if (qemu) {
        printf("SPEC %s test %d: %s: %s, QEMU 7.2 deviation %s (the spec requires a trap at "
               "%s level, cause 0x%lx)\n", hx_name, n, what, got, dev, lvl_name(level), cause);
        hx_ndev++;
        memset(&dummy, 0, sizeof(dummy));
        return hx_nlog ? &hx_log[0] : &dummy;
    }
#endif
    hx_fail(n, "%s: %s, expected a trap at %s level, cause 0x%lx%s%s", what, got,
            lvl_name(level), cause, qemu ? " -- QEMU 7.2's known deviation " : "",
            qemu ? dev : "");
    memset(&dummy, 0, sizeof(dummy));
    return hx_nlog ? &hx_log[0] : &dummy;
}

int hx_check_notrap_dev(int n, const char *what, long qlevel, unsigned long qcause,
                        const char *dev)
{
    hx_cur = n;
    if (hx_nlog == 0)
        return 1;
    int qemu = hx_nlog == 1 && hx_log[0].level == (unsigned long)qlevel &&
               hx_log[0].cause == qcause;
#ifdef QEMU_DEVIATIONS
    if (qemu) {
        printf("SPEC %s test %d: %s: trap at %s level, cause 0x%lx (tval 0x%lx), QEMU 7.2 "
               "deviation %s (the spec requires no trap)\n", hx_name, n, what,
               lvl_name(qlevel), qcause, hx_log[0].tval, dev);
        hx_ndev++;
        return 0;
    }
#endif
    hx_fail(n, "%s: unexpected trap at %s level cause 0x%lx epc 0x%lx tval 0x%lx%s%s", what,
            lvl_name(hx_log[0].level), hx_log[0].cause, hx_log[0].epc, hx_log[0].tval,
            qemu ? " -- QEMU 7.2's known deviation " : "", qemu ? dev : "");
    return 0;
}

void hx_check_notrap(int n, const char *what)
{
    hx_cur = n;
    if (hx_nlog != 0)
        hx_fail(n, "%s: unexpected trap at %s level cause 0x%lx epc 0x%lx tval 0x%lx",
                what, lvl_name(hx_log[0].level), hx_log[0].cause, hx_log[0].epc,
                hx_log[0].tval);
}

/* ---------------- running code in other modes ---------------- */
long hx_run(long mode, void *fn, unsigned long a0, unsigned long a1)
{
    hx_in_run = 1;
    long r = hx_run_asm(mode, fn, a0, a1);
    hx_in_run = 0;
    return r;
}

long hx_exec(long mode, unsigned int insn, unsigned long a0, unsigned long a1)
{
    hx_exec_buf[0] = insn;
    hx_exec_buf[1] = 0x00008067u;       /* ret */
    hx_sync_code();
    return hx_run(mode, hx_exec_buf, a0, a1);
}

/* ---------------- state ---------------- */
void hx_reset_state(void)
{
    hx_armed = 0;
    hx_nlog = 0;
    csrw(CSR_MTVEC, (unsigned long)hx_mtrap);
    csrw(CSR_STVEC, (unsigned long)hx_strap);
    csrw(CSR_VSTVEC, (unsigned long)hx_vstrap);
    csrw(CSR_MIE, 0);
    csrw(CSR_MEDELEG, 0);
    csrw(CSR_MIDELEG, 0);
    csrw(CSR_HEDELEG, 0);
    csrw(CSR_HIDELEG, 0);
    csrw(CSR_HVIP, 0);
    csrw(CSR_HGEIE, 0);
    csrc(CSR_MIP, MIP_SSIP_MASK | MIP_STIP_MASK | MIP_SEIP_MASK | MIP_VSSIP_MASK);
    csrc(CSR_MSTATUS, MSTATUS_MIE_MASK | MSTATUS_SIE_MASK | MSTATUS_SPIE_MASK | MSTATUS_SPP_MASK |
         MSTATUS_MPRV_MASK | MSTATUS_SUM_MASK | MSTATUS_MXR_MASK | MSTATUS_TVM_MASK | MSTATUS_TW_MASK |
         MSTATUS_TSR_MASK | MSTATUS_GVA_MASK | MSTATUS_MPV_MASK);
    csrw(CSR_HSTATUS, csrr(CSR_HSTATUS) & HSTATUS_VSXL_MASK);
    csrw(CSR_VSSTATUS, csrr(CSR_VSSTATUS) & MSTATUS_UXL_MASK);
    csrw(CSR_VSIE, 0);
    csrw(CSR_SATP, 0);
    csrw(CSR_VSATP, 0);
    csrw(CSR_HGATP, 0);
    hfence_gvma_all();
    hfence_vvma_all();
    sfence_vma_all();
    csrw(CSR_MCOUNTEREN, 0xffffffffUL);
    csrw(CSR_HCOUNTEREN, 0xffffffffUL);
    csrw(CSR_SCOUNTEREN, 0xffffffffUL);
    csrw(CSR_HTIMEDELTA, 0);
    csrw(CSR_HENVCFG, 0);
    csrw(CSR_MENVCFG, 0);
    clint_set_mtimecmp(0, ~0UL);
    clint_set_msip(0, 0);
    if (hx_has_sstc) {
        csrw(CSR_STIMECMP, ~0UL);
        csrw(CSR_VSTIMECMP, ~0UL);
    }
    hx_lower_sp = (unsigned long)hx_lower_stack_top;
}

void hx_init(const char *name)
{
    hx_name = name;
    csrw(CSR_MTVEC, (unsigned long)hx_mtrap);
    /* PMP: one NAPOT entry over everything, RWX, so that S/U may access */
    csrw(CSR_PMPADDR0, ~0UL);
    csrw(CSR_PMPCFG0, 0x1f);
    /* Sstc present?  stimecmp is accessible from M when implemented */
    hx_expect(1, HX_SKIP, 4);
    hx_exec(HX_M, I_CSRR(CSR_STIMECMP), 0, 0);
    hx_has_sstc = hx_nlog == 0;
    hx_expect_none();
    hx_reset_state();
}

/* ---------------- page tables ---------------- */
/* firmware/common's builder (rvh/pt.h) blames the running test when it fails */
void pt_fail(const char *what, uint64_t va)
{
    printf("FAIL %s test %d: page tables: %s at 0x%lx\n", hx_name, hx_cur, what,
           (unsigned long)va);
    rvh_exit(hx_cur ? hx_cur : 255);
}

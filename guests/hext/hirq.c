/*
 * hirq.c - interrupts with the hypervisor extension (priv. spec 20211203,
 * 8.2.3 hvip/hip/hie, 8.2.2 hideleg and the cause translation for VS-mode,
 * 8.1 global enables of VS/VU, the HS priority order; Sstc vstimecmp with
 * htimedelta).  hgatp and vsatp are Bare.
 *
 * Test numbers (exit status = first failing one):
 *   1-9    hvip.VSSIP/VSTIP/VSEIP delegated by hideleg: taken in VS with vscause
 *          1/5/9 (vsstatus.SPP/SPIE/SIE), gated by vsstatus.SIE and vsie, always
 *          enabled in VU; VS-mode setting its own sip.SSIP
 *   10-19  not delegated: taken in HS with scause 2/6/10 even with sstatus.SIE=0
 *          while V=1 (SPV, SPVP); in HS only with sstatus.SIE=1; a VS-level
 *          interrupt delegated to VS waits while V=0 and is taken after sret
 *   20-29  HS-level interrupts (SSI/STI/SEI) while in VS; M-level MTI/MSI preempt VS/VU
 *   30-39  Sstc: vstimecmp against time + htimedelta -> hip.VSTIP, time in VS,
 *          VS timer interrupt, henvcfg.STCE/menvcfg.STCE=0 revert VSTIP to hvip
 *   40-49  priorities: VSEI > VSSI > VSTI in VS; SEI > SSI > STI > VSEI > VSSI > VSTI
 *          in HS; M before HS before VS
 */
#include "hx.h"

static unsigned long uxl;

/* VS or VU: set sstatus.SIE (VS) and spin; interrupts are taken meanwhile
 * (global: also entered from the asm of hs_sret_to_vs) */
long sie_spin(long iters) __attribute__((noinline, noclone));
long sie_spin(long iters)
{
    csrs(CSR_SSTATUS, SSTATUS_SIE_MASK);
    for (volatile long i = 0; i < iters; i++)
        ;
    csrc(CSR_SSTATUS, SSTATUS_SIE_MASK);
    return 0;
}

/* any mode: spin without touching sstatus */
static HX_NOINLINE long spin(long iters)
{
    for (volatile long i = 0; i < iters; i++)
        ;
    return 0;
}

/* VS-mode: read time (CSR) between two reads of CLINT mtime */
static volatile unsigned long t_before, t_after;
static HX_NOINLINE long vs_time(void)
{
    t_before = mtime();
    unsigned long t = csrr(CSR_TIME);
    t_after = mtime();
    return (long)t;
}

/* HS-mode: sret into VS at sie_spin (ra stays hx_lower_return) */
extern void hs_sret_to_vs(void);
__asm__(
    ".text\n"
    ".balign 4\n"
    ".globl hs_sret_to_vs\n"
    "hs_sret_to_vs:\n"
    "   la t0, sie_spin_entry\n"
    "   csrw sepc, t0\n"
    "   li t0, 1 << " RVH_STRINGIFY(HSTATUS_SPV_SHIFT) "\n"
    "   csrs " RVH_STRINGIFY(CSR_HSTATUS) ", t0\n"
    "   li t0, 1 << " RVH_STRINGIFY(SSTATUS_SPP_SHIFT) "\n"
    "   csrs sstatus, t0\n"
    "   li a0, 200\n"
    "   sret\n"
    "sie_spin_entry:\n"
    "   j sie_spin\n");

static void check_intr(int n, const char *what, int idx, long level, unsigned long code)
{
    hx_cur = n;
    if (hx_nlog <= idx) {
        hx_fail(n, "%s: interrupt %d (level %ld, code %lu) not taken (%ld traps)", what, idx,
                level, code, (long)hx_nlog);
        return;
    }
    struct hx_rec *r = &hx_log[idx];
    if (r->level != (unsigned long)level || r->cause != (MCAUSE_INTERRUPT_MASK | code))
        hx_fail(n, "%s: trap %d at level %lu cause 0x%lx, expected level %ld cause 0x%lx", what,
                idx, r->level, r->cause, level, MCAUSE_INTERRUPT_MASK | code);
}

/* the same where QEMU 7.2 is known to deliver code qcode instead */
static void check_intr_dev(int n, const char *what, int idx, long level, unsigned long code,
                           unsigned long qcode, const char *dev)
{
    hx_cur = n;
    if (hx_nlog > idx) {
        struct hx_rec *r = &hx_log[idx];
        if (r->level == (unsigned long)level && r->cause == (MCAUSE_INTERRUPT_MASK | code))
            return;
#ifdef QEMU_DEVIATIONS
        if (r->level == (unsigned long)level && r->cause == (MCAUSE_INTERRUPT_MASK | qcode)) {
            printf("SPEC hirq test %d: %s: interrupt %d has code %lu, QEMU 7.2 deviation %s "
                   "(the spec requires %lu)\n", n, what, idx, qcode, dev, code);
            hx_ndev++;
            return;
        }
#endif
        hx_fail(n, "%s: trap %d at level %lu cause 0x%lx, expected level %ld cause 0x%lx%s%s",
                what, idx, r->level, r->cause, level, MCAUSE_INTERRUPT_MASK | code,
                r->cause == (MCAUSE_INTERRUPT_MASK | qcode) ? " -- QEMU 7.2's known deviation " : "",
                r->cause == (MCAUSE_INTERRUPT_MASK | qcode) ? dev : "");
        return;
    }
    check_intr(n, what, idx, level, code);
}

static void reset(void)
{
    hx_reset_state();
    csrw(CSR_MIDELEG, MIP_S_LEVEL_MASK);
    csrw(CSR_VSSTATUS, uxl);
}

static void test_vs_delegated(void)
{
    static const struct { unsigned long hvip, vscode; const char *n; } v[] = {
        { MIP_VSSIP_MASK, INTERRUPT_SUPERVISOR_SOFTWARE, "hvip.VSSIP delegated: VS takes vscause 1" },
        { MIP_VSTIP_MASK, INTERRUPT_SUPERVISOR_TIMER, "hvip.VSTIP delegated: VS takes vscause 5" },
        { MIP_VSEIP_MASK, INTERRUPT_SUPERVISOR_EXTERNAL, "hvip.VSEIP delegated: VS takes vscause 9" },
    };
    for (int i = 0; i < 3; i++) {
        reset();
        hx_test(1 + i);
        csrw(CSR_HIDELEG, v[i].hvip);
        csrw(CSR_HIE, v[i].hvip);
        csrw(CSR_HVIP, v[i].hvip);
        hx_expect(1, HX_SKIP, 4);
        hx_run(HX_VS, sie_spin, 100, 0);
        check_intr(1 + i, v[i].n, 0, LVL_VS, v[i].vscode);
        if (hx_nlog == 1) {
            CHECK(1 + i, "vsstatus.SPP=1", hx_log[0].pp, 1);
            CHECK(1 + i, "vsstatus.SPIE=1, SIE=0 in the handler",
                  hx_log[0].status & (SSTATUS_SPIE_MASK | SSTATUS_SIE_MASK), SSTATUS_SPIE_MASK);
            CHECK(1 + i, "hstatus.SPV untouched (trap into VS)",
                  csrr(CSR_HSTATUS) & HSTATUS_SPV_MASK, 0);
        }
        CHECK(1 + i, "hvip bit still pending (the handler only disabled vsie)",
              csrr(CSR_HVIP) & MIP_VS_LEVEL_MASK, v[i].hvip);
    }
    /* 4: vsstatus.SIE=0 keeps it pending in VS-mode */
    reset();
    hx_test(4);
    csrw(CSR_HIDELEG, MIP_VS_LEVEL_MASK);
    csrw(CSR_HIE, MIP_VS_LEVEL_MASK);
    csrw(CSR_HVIP, MIP_VSSIP_MASK);
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_VS, spin, 200, 0);
    hx_check_notrap(4, "delegated VSSI not taken in VS-mode with vsstatus.SIE=0");
    /* 5: vsie.SSIE=0 masks it even with SIE=1 */
    csrw(CSR_HIE, MIP_VSTIP_MASK | MIP_VSEIP_MASK);
    hx_test(5);
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_VS, sie_spin, 200, 0);
    hx_check_notrap(5, "delegated VSSI not taken with vsie.SSIE=0");
    /* 6: in VU-mode VS-level interrupts are enabled whatever vsstatus.SIE */
    csrw(CSR_HIE, MIP_VSSIP_MASK);
    hx_test(6);
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_VU, spin, 200, 0);
    check_intr(6, "delegated VSSI taken in VU-mode with vsstatus.SIE=0", 0, LVL_VS, INTERRUPT_SUPERVISOR_SOFTWARE);
    if (hx_nlog == 1)
        CHECK(6, "vsstatus.SPP=0 (from VU)", hx_log[0].pp, 0);
    /* 7: VS-mode raises its own software interrupt through sip.SSIP */
    reset();
    hx_test(7);
    csrw(CSR_HIDELEG, MIP_VSSIP_MASK);
    csrw(CSR_HIE, MIP_VSSIP_MASK);
    csrw(CSR_VSSTATUS, uxl | SSTATUS_SIE_MASK);
    hx_expect(1, HX_SKIP, 4);
    hx_exec(HX_VS, I_CSRRS(0, CSR_SIP, R_A0), MIP_SSIP_MASK, 0);
    check_intr(7, "VS sets sip.SSIP with SIE=1: its own interrupt, vscause 1", 0, LVL_VS, INTERRUPT_SUPERVISOR_SOFTWARE);
    CHECK(7, "hvip.VSSIP set by VS's sip write", csrr(CSR_HVIP) & MIP_VS_LEVEL_MASK, MIP_VSSIP_MASK);
}

static void test_hs_taken(void)
{
    static const struct { unsigned long bit, code; const char *n; } v[] = {
        { MIP_VSSIP_MASK, INTERRUPT_VIRTUAL_SUPERVISOR_SOFTWARE, "VSSI not delegated: HS takes scause 2 while in VS (SIE=0)" },
        { MIP_VSTIP_MASK, INTERRUPT_VIRTUAL_SUPERVISOR_TIMER, "VSTI not delegated: HS takes scause 6 while in VS (SIE=0)" },
        { MIP_VSEIP_MASK, INTERRUPT_VIRTUAL_SUPERVISOR_EXTERNAL, "VSEI not delegated: HS takes scause 10 while in VS (SIE=0)" },
    };
    for (int i = 0; i < 3; i++) {
        reset();
        hx_test(10 + i);
        csrw(CSR_HIE, v[i].bit);
        csrw(CSR_HVIP, v[i].bit);
        csrs(CSR_HSTATUS, HSTATUS_GVA_MASK);
        hx_expect(1, HX_SKIP, 4);
        hx_run(HX_VS, spin, 100, 0);
        check_intr(10 + i, v[i].n, 0, LVL_HS, v[i].code);
        if (hx_nlog == 1) {
            CHECK(10 + i, "hstatus.SPV=1", hx_log[0].pv, 1);
            CHECK(10 + i, "hstatus.SPVP=1", (hx_log[0].hstatus >> 8) & 1, 1);
            CHECK(10 + i, "hstatus.GVA=0 (interrupt)", hx_log[0].gva, 0);
            CHECK(10 + i, "htinst=0 (interrupt)", hx_log[0].tinst, 0);
        }
    }
    /* 13: from VU, SPVP=0 */
    reset();
    hx_test(13);
    csrw(CSR_HIE, MIP_VSSIP_MASK);
    csrw(CSR_HVIP, MIP_VSSIP_MASK);
    csrs(CSR_HSTATUS, HSTATUS_SPVP_MASK);
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_VU, spin, 100, 0);
    check_intr(13, "VSSI not delegated, in VU: HS takes scause 2", 0, LVL_HS, INTERRUPT_VIRTUAL_SUPERVISOR_SOFTWARE);
    if (hx_nlog == 1)
        CHECK(13, "hstatus.SPVP=0 (from VU)", (hx_log[0].hstatus >> 8) & 1, 0);
    /* 14-15: in HS (V=0) the same interrupt needs sstatus.SIE */
    reset();
    hx_test(14);
    csrw(CSR_HIE, MIP_VSSIP_MASK);
    csrw(CSR_HVIP, MIP_VSSIP_MASK);
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_HS, spin, 200, 0);
    hx_check_notrap(14, "VSSI (not delegated) not taken in HS with sstatus.SIE=0");
    hx_test(15);
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_HS, sie_spin, 100, 0);
    check_intr(15, "VSSI (not delegated) taken in HS with sstatus.SIE=1", 0, LVL_HS, INTERRUPT_VIRTUAL_SUPERVISOR_SOFTWARE);
    if (hx_nlog == 1)
        CHECK(15, "hstatus.SPV=0", hx_log[0].pv, 0);
    /* 16: VS-level interrupt delegated to VS waits in HS (even with SIE=1) and
     * in U, and is taken as soon as sret enters VS with vsstatus.SIE=1 */
    reset();
    hx_test(16);
    csrw(CSR_HIDELEG, MIP_VSSIP_MASK);
    csrw(CSR_HIE, MIP_VSSIP_MASK);
    csrw(CSR_HVIP, MIP_VSSIP_MASK);
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_HS, sie_spin, 200, 0);
    hx_check_notrap(16, "VSSI delegated to VS not taken in HS (sstatus.SIE=1)");
    hx_run(HX_U, spin, 200, 0);
    hx_check_notrap(16, "VSSI delegated to VS not taken in U");
    hx_test(17);
    hx_run(HX_HS, hs_sret_to_vs, 0, 0);
    check_intr(17, "after sret into VS with vsstatus.SIE=1: VS takes vscause 1", 0, LVL_VS, INTERRUPT_SUPERVISOR_SOFTWARE);
    csrc(CSR_MSTATUS, MSTATUS_SIE_MASK);
}

static void test_hs_and_m_levels(void)
{
    /* 20-22: HS-level interrupts (delegated by mideleg) are taken in HS while V=1 */
    static const struct { unsigned long bit, code; const char *n; } v[] = {
        { MIP_SSIP_MASK, INTERRUPT_SUPERVISOR_SOFTWARE, "mip.SSIP while in VS: HS takes scause 1" },
        { MIP_STIP_MASK, INTERRUPT_SUPERVISOR_TIMER, "mip.STIP while in VS: HS takes scause 5" },
        { MIP_SEIP_MASK, INTERRUPT_SUPERVISOR_EXTERNAL, "mip.SEIP while in VS: HS takes scause 9" },
    };
    for (int i = 0; i < 3; i++) {
        reset();
        hx_test(20 + i);
        csrw(CSR_SIE, v[i].bit);
        csrs(CSR_MIP, v[i].bit);
        csrw(CSR_VSSTATUS, uxl);
        hx_expect(1, HX_SKIP, 4);
        hx_run(HX_VS, spin, 100, 0);
        check_intr(20 + i, v[i].n, 0, LVL_HS, v[i].code);
        if (hx_nlog == 1)
            CHECK(20 + i, "hstatus.SPV=1", hx_log[0].pv, 1);
        csrc(CSR_MIP, v[i].bit);
    }
    /* 23-25: M-level timer and software interrupts preempt VS and VU */
    reset();
    hx_test(23);
    csrw(CSR_MIE, MIP_MTIP_MASK);
    clint_set_mtimecmp(0, mtime());
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_VS, spin, 100, 0);
    check_intr(23, "CLINT timer while in VS: M takes mcause 7", 0, LVL_M, INTERRUPT_MACHINE_TIMER);
    if (hx_nlog == 1) {
        CHECK(23, "MPV=1", hx_log[0].pv, 1);
        CHECK(23, "MPP=1", hx_log[0].pp, 1);
        CHECK(23, "mtval2=0, mtinst=0", hx_log[0].tval2 | hx_log[0].tinst, 0);
    }
    clint_set_mtimecmp(0, ~0UL);
    hx_test(24);
    csrw(CSR_MIE, MIP_MSIP_MASK);
    clint_set_msip(0, 1);
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_VU, spin, 100, 0);
    check_intr(24, "CLINT msip while in VU: M takes mcause 3", 0, LVL_M, INTERRUPT_MACHINE_SOFTWARE);
    if (hx_nlog == 1)
        CHECK(24, "MPV=1, MPP=0", hx_log[0].pv * 4 + hx_log[0].pp, 4);
    clint_set_msip(0, 0);
    csrw(CSR_MIE, 0);
}

static void test_sstc(void)
{
    if (!hx_has_sstc) {
        hx_note("Sstc absent: vstimecmp tests skipped");
        return;
    }
    reset();
    csrw(CSR_MENVCFG, MENVCFG_STCE_MASK);
    csrw(CSR_HENVCFG, MENVCFG_STCE_MASK);
    const unsigned long delta = 1UL << 40;
    /* 30: vstimecmp in the future (even without htimedelta): not pending */
    hx_test(30);
    csrw(CSR_HTIMEDELTA, 0);
    csrw(CSR_VSTIMECMP, mtime() + 1000000000UL);
    CHECK(30, "vstimecmp > time: hip.VSTIP=0", csrr(CSR_HIP) & MIP_VSTIP_MASK, 0);
    /* 31: with htimedelta, time + htimedelta >= vstimecmp: pending */
    csrw(CSR_HTIMEDELTA, delta);
    CHECK_DEV(31, "htimedelta raised: time + htimedelta >= vstimecmp: hip.VSTIP=1",
              csrr(CSR_HIP) & MIP_VSTIP_MASK, MIP_VSTIP_MASK, 0, "D31");
    csrw(CSR_VSTIMECMP, csrr(CSR_VSTIMECMP));       /* rewriting it must not matter */
    CHECK(31, "... after rewriting vstimecmp: hip.VSTIP=1", csrr(CSR_HIP) & MIP_VSTIP_MASK, MIP_VSTIP_MASK);
    CHECK(31, "... mip.VSTIP=1", csrr(CSR_MIP) & MIP_VSTIP_MASK, MIP_VSTIP_MASK);
    CHECK(31, "... hvip.VSTIP stays 0 (hvip is only the software bit)",
          csrr(CSR_HVIP) & MIP_VSTIP_MASK, 0);
    csrw(CSR_HTIMEDELTA, 0);
    CHECK_DEV(32, "htimedelta back to 0: hip.VSTIP=0", csrr(CSR_HIP) & MIP_VSTIP_MASK, 0, MIP_VSTIP_MASK, "D31");
    csrw(CSR_VSTIMECMP, csrr(CSR_VSTIMECMP));
    CHECK(32, "... after rewriting vstimecmp: hip.VSTIP=0", csrr(CSR_HIP) & MIP_VSTIP_MASK, 0);
    /* 33: VS reads time = time + htimedelta */
    csrw(CSR_HTIMEDELTA, delta);
    hx_test(33);
    hx_expect_none();
    unsigned long t = hx_run(HX_VS, vs_time, 0, 0);
    CHECK(33, "VS reads time = mtime + htimedelta", t >= t_before + delta && t <= t_after + delta, 1);
    if (!(t >= t_before + delta && t <= t_after + delta))
        printf("hirq: mtime %lu..%lu, VS time %lu (delta %lu)\n", t_before, t_after, t, delta);
    /* 34: the VS timer interrupt from vstimecmp, delegated to VS */
    reset();
    csrw(CSR_MENVCFG, MENVCFG_STCE_MASK);
    csrw(CSR_HENVCFG, MENVCFG_STCE_MASK);
    hx_test(34);
    csrw(CSR_HTIMEDELTA, delta);
    csrw(CSR_VSTIMECMP, mtime() + 1000000000UL);        /* due thanks to htimedelta */
    csrw(CSR_HIDELEG, MIP_VSTIP_MASK);
    csrw(CSR_HIE, MIP_VSTIP_MASK);
    hx_expect(1, HX_SKIP, 4);
    hx_run(HX_VS, sie_spin, 100, 0);
    check_intr(34, "vstimecmp due: VS takes vscause 5", 0, LVL_VS, INTERRUPT_SUPERVISOR_TIMER);
    /* 35: VS writes stimecmp (= vstimecmp) into the future: VSTIP clears */
    hx_exec(HX_VS, I_CSRW(CSR_STIMECMP), ~0UL >> 1, 0);
    CHECK(35, "VS wrote stimecmp -> vstimecmp", csrr(CSR_VSTIMECMP), ~0UL >> 1);
    CHECK(35, "VSTIP clear after VS moved stimecmp into the future", csrr(CSR_HIP) & MIP_VSTIP_MASK, 0);
    /* 36: henvcfg.STCE=0: hip.VSTIP is hvip.VSTIP only */
    csrw(CSR_VSTIMECMP, 0);
    CHECK(36, "vstimecmp = 0: VSTIP=1", csrr(CSR_HIP) & MIP_VSTIP_MASK, MIP_VSTIP_MASK);
    csrw(CSR_HENVCFG, 0);
    CHECK_DEV(36, "henvcfg.STCE=0: hip.VSTIP reverts to hvip.VSTIP (0)",
              csrr(CSR_HIP) & MIP_VSTIP_MASK, 0, MIP_VSTIP_MASK, "D8");
    csrw(CSR_HVIP, MIP_VSTIP_MASK);
    CHECK(36, "henvcfg.STCE=0: hvip.VSTIP=1 shows", csrr(CSR_HIP) & MIP_VSTIP_MASK, MIP_VSTIP_MASK);
    csrw(CSR_HVIP, 0);
    /* 37: menvcfg.STCE=0 likewise */
    csrw(CSR_HENVCFG, MENVCFG_STCE_MASK);
    csrw(CSR_MENVCFG, 0);
    CHECK_DEV(37, "menvcfg.STCE=0: hip.VSTIP reverts to hvip.VSTIP (0)",
              csrr(CSR_HIP) & MIP_VSTIP_MASK, 0, MIP_VSTIP_MASK, "D8");
    csrw(CSR_VSTIMECMP, ~0UL);
    csrw(CSR_HENVCFG, 0);
}

static void test_priority(void)
{
    /* 40: VS level: SEI > SSI > STI (translated from VSEI > VSSI > VSTI) */
    reset();
    hx_test(40);
    csrw(CSR_HIDELEG, MIP_VS_LEVEL_MASK);
    csrw(CSR_HIE, MIP_VS_LEVEL_MASK);
    csrw(CSR_HVIP, MIP_VS_LEVEL_MASK);
    hx_expect(3, HX_SKIP, 4);
    hx_run(HX_VS, sie_spin, 300, 0);
    /* (QEMU 7.2 takes the lowest code first) */
    check_intr_dev(40, "VS priority: first VSEI (vscause 9)", 0, LVL_VS, INTERRUPT_SUPERVISOR_EXTERNAL, INTERRUPT_SUPERVISOR_SOFTWARE, "D30");
    check_intr_dev(40, "VS priority: then VSSI (vscause 1)", 1, LVL_VS, INTERRUPT_SUPERVISOR_SOFTWARE, INTERRUPT_SUPERVISOR_TIMER, "D30");
    check_intr_dev(40, "VS priority: then VSTI (vscause 5)", 2, LVL_VS, INTERRUPT_SUPERVISOR_TIMER, INTERRUPT_SUPERVISOR_EXTERNAL, "D30");
    /* 41: HS level, in VS: VSEI > VSSI > VSTI */
    reset();
    hx_test(41);
    csrw(CSR_HIE, MIP_VS_LEVEL_MASK);
    csrw(CSR_HVIP, MIP_VS_LEVEL_MASK);
    hx_expect(3, HX_SKIP, 4);
    hx_run(HX_VS, spin, 300, 0);
    check_intr_dev(41, "HS priority: first VSEI (10)", 0, LVL_HS, INTERRUPT_VIRTUAL_SUPERVISOR_EXTERNAL, INTERRUPT_VIRTUAL_SUPERVISOR_SOFTWARE, "D30");
    check_intr_dev(41, "HS priority: then VSSI (2)", 1, LVL_HS, INTERRUPT_VIRTUAL_SUPERVISOR_SOFTWARE, INTERRUPT_VIRTUAL_SUPERVISOR_TIMER, "D30");
    check_intr_dev(41, "HS priority: then VSTI (6)", 2, LVL_HS, INTERRUPT_VIRTUAL_SUPERVISOR_TIMER, INTERRUPT_VIRTUAL_SUPERVISOR_EXTERNAL, "D30");
    /* 42: HS level: SEI, SSI, STI, then VSEI, VSSI, VSTI */
    reset();
    hx_test(42);
    csrw(CSR_SIE, MIP_S_LEVEL_MASK);
    csrw(CSR_HIE, MIP_VS_LEVEL_MASK);
    csrs(CSR_MIP, MIP_S_LEVEL_MASK);
    csrw(CSR_HVIP, MIP_VS_LEVEL_MASK);
    hx_expect(6, HX_SKIP, 4);
    hx_run(HX_VS, spin, 500, 0);
    static const unsigned long order[6] = { INTERRUPT_SUPERVISOR_EXTERNAL, INTERRUPT_SUPERVISOR_SOFTWARE, INTERRUPT_SUPERVISOR_TIMER, INTERRUPT_VIRTUAL_SUPERVISOR_EXTERNAL, INTERRUPT_VIRTUAL_SUPERVISOR_SOFTWARE, INTERRUPT_VIRTUAL_SUPERVISOR_TIMER };
    static const unsigned long qorder[6] = { INTERRUPT_SUPERVISOR_SOFTWARE, INTERRUPT_VIRTUAL_SUPERVISOR_SOFTWARE, INTERRUPT_SUPERVISOR_TIMER, INTERRUPT_VIRTUAL_SUPERVISOR_TIMER, INTERRUPT_SUPERVISOR_EXTERNAL, INTERRUPT_VIRTUAL_SUPERVISOR_EXTERNAL };
    for (int i = 0; i < 6; i++)
        check_intr_dev(42, "HS priority SEI > SSI > STI > VSEI > VSSI > VSTI", i, LVL_HS, order[i],
                       qorder[i], "D30");
    csrc(CSR_MIP, MIP_S_LEVEL_MASK);
    /* 43: M-level first, then the VS-level one (delegated to VS) */
    reset();
    hx_test(43);
    csrw(CSR_MIE, MIP_MTIP_MASK);
    clint_set_mtimecmp(0, 0);
    csrw(CSR_HIDELEG, MIP_VSSIP_MASK);
    csrw(CSR_HIE, MIP_VSSIP_MASK);
    csrw(CSR_HVIP, MIP_VSSIP_MASK);
    hx_expect(2, HX_SKIP, 4);
    hx_run(HX_VS, sie_spin, 300, 0);
    check_intr(43, "M-level MTI before the VS-level VSSI", 0, LVL_M, INTERRUPT_MACHINE_TIMER);
    check_intr(43, "then VSSI in VS", 1, LVL_VS, INTERRUPT_SUPERVISOR_SOFTWARE);
    clint_set_mtimecmp(0, ~0UL);
    /* 44: HS-level SSI before the VS-level VSSI */
    reset();
    hx_test(44);
    csrw(CSR_SIE, MIP_SSIP_MASK);
    csrs(CSR_MIP, MIP_SSIP_MASK);
    csrw(CSR_HIDELEG, MIP_VSSIP_MASK);
    csrw(CSR_HIE, MIP_VSSIP_MASK);
    csrw(CSR_HVIP, MIP_VSSIP_MASK);
    hx_expect(2, HX_SKIP, 4);
    hx_run(HX_VS, sie_spin, 300, 0);
    check_intr(44, "HS-level SSI before the VS-level VSSI", 0, LVL_HS, INTERRUPT_SUPERVISOR_SOFTWARE);
    check_intr(44, "then VSSI in VS", 1, LVL_VS, INTERRUPT_SUPERVISOR_SOFTWARE);
    csrc(CSR_MIP, MIP_SSIP_MASK);
}

int main(void)
{
    hx_init("hirq");
    uxl = csrr(CSR_VSSTATUS) & MSTATUS_UXL_MASK;
    test_vs_delegated();
    test_hs_taken();
    test_hs_and_m_levels();
    test_sstc();
    test_priority();
    hx_reset_state();
    return hx_done();
}

/*
 * hstage.c - two-stage address translation (priv. spec 20211203, chapter 8:
 * 8.2.10 hgatp, 8.2.18 vsatp, 8.3.1 HLV/HLVX/HSV, 8.3.2 HFENCE, 8.4.1 MPRV,
 * 8.5 two-stage translation and guest-page faults, 8.6.3 transformed
 * instructions and pseudoinstructions).
 *
 * Memory: the harness (code, data, stacks) is identity-mapped in both
 * stages.  A guest RAM window of 0x60 pages lives at host-physical
 * 0x8100_0000 and is seen by the guest at guest-physical 0xC000_0000 (so
 * GPA != HPA: an implementation that skipped the G-stage would hit unmapped
 * space) and at guest-virtual 0x4000_0000.  The VS-stage page tables live
 * in that window too (their pointers are guest-physical).  The whole suite
 * runs twice: hgatp Sv39x4 (tests 1-99) and Sv48x4 (tests 101-199: same
 * checks + 100).
 *
 * Window page i (VA 0x4000_0000 + i*4K -> GPA 0xC000_0000 + i*4K -> HPA
 * 0x8100_0000 + i*4K unless noted), G-stage / VS-stage permissions:
 *   3 RWX / RW   4 R (read-only) / RW   5 RWX without U / RW   6 X only / RWX
 *   7 unmapped / RW   8 RW (no X) / RWX   9 RW with A=D=0 / RW with A=D=0
 *  10 RWX / RWX   11 unmapped: holds the VS L0 table of VA 0x4020_0000
 *  12 R only: holds the VS L0 table of VA 0x4040_0000 (PTE with A=0)
 *  13 RWX / X only   14 RWX / RWX+U   15 RWX / R only   16 GPA 16 -> HPA 16 or 17
 *  17-20 RWX / RW    24/25/26: VS-stage maps them to GPA 2^40 (2^49 for
 *         Sv48x4: the top GPA bit), 2^41, 2^50
 *  27 RWX / RWX   28 unmapped / RWX (accesses straddling 27/28)   29 W only (reserved) / RW
 *   2 VA of the VS L0 table of VA 0x4000_0000 (the guest edits its own PTEs)
 *  30 unmapped in the VS stage
 * Every page holds MARK(i) at offset 0x100; pages 6, 8, 10, 13, 14 start
 * with "li a0, 42; ret".
 *
 * Test numbers (add 100 for the Sv48x4 run):
 *   1-5    loads, stores, fetches through both stages; x4 root (GPA bit 40)
 *   6-19   guest-page faults to M: load/store/fetch, compressed, AMO/LR/SC:
 *          mcause 21/23/20, mtval = GVA, mtval2 = GPA>>2, GVA=1, MPV=1,
 *          mtinst = transformed instruction; accesses and a fetch straddling into
 *          an unmapped guest page (the faulting portion: mtval, mtval2, Addr. Offset);
 *          a G-stage leaf with W but not R
 *   20-29  G-stage permissions: U bit, read-only, execute-only (+MXR), no X
 *   30-34  implicit accesses: VS page table in an unmapped guest page
 *          (pseudoinstruction 0x3000), A-bit update into a read-only guest
 *          page (0x3020)
 *   35-39  A/D bits set in both stages
 *   40-44  GPA width: 2^41 (Sv39x4 fault, Sv48x4 ok), 2^50 fault
 *   45-49  guest-page faults delegated to HS: scause, stval, htval, htinst, GVA, SPV, SPVP
 *   50-59  VS-stage page faults to M, HS, VS; vsatp Bare with hgatp on
 *   60-64  VS-stage U bit and SUM, execute-only and MXR (vsstatus and HS-level)
 *   65-79  HLV/HLVX/HSV from M, HS and U (HU=1): SPVP, SUM, MXR, HLVX on
 *          execute-only pages, faults (GVA=1 with SPV/MPV=0), transformed HLV
 *   80-84  MPRV with MPV=1 from M-mode
 *   85-94  fences: HFENCE.GVMA, HFENCE.VVMA, SFENCE.VMA in VS; VMID, ASID and
 *          V=0/V=1 separation of cached translations
 */
#include "hx.h"

#define W_HPA   0x81000000UL
#define W_GPA   0xC0000000UL
#define W_VA    0x40000000UL
#define NPAGES  0x60
#define VST_A   0x40        /* VS tables, tree A: window pages 0x40-0x4f */
#define VST_B   0x50        /* VS tables, tree B: window pages 0x50-0x5f */
#define PG(i)   ((unsigned long)(i) << 12)
#define MOFF    0x100
#define MARK(i) (0x5a5a000000000000UL | ((unsigned long)(i) << 16) | 0xabcUL)
#define WVA(i)  (W_VA + PG(i))
#define WGPA(i) (W_GPA + PG(i))
#define WHPA(i) (W_HPA + PG(i))
#define HPTR(i, off) ((volatile unsigned long *)(WHPA(i) + (off)))
#define AD      (PTE_A_MASK | PTE_D_MASK)

extern long hs_ld(long, unsigned long);
extern void hs_sd(long, unsigned long);
extern long hs_cld(long, unsigned long);
extern void hs_csd(long, unsigned long);
extern long hs_amoadd(long, unsigned long);
extern long hs_lr(long, unsigned long);
extern long hs_sc(long, unsigned long);
extern long hs_call(long, unsigned long);
extern long hs_mprv_ld(unsigned long bits, unsigned long addr8);
extern char hs_code42[], hs_code42_end[];
extern long hs_m_hlvx_mpp3(unsigned long), hs_m_hlv_mpp3(unsigned long);

static char gpool_a[32 * 4096] __attribute__((aligned(16384)));
static char gpool_b[32 * 4096] __attribute__((aligned(16384)));
static char hspool[8 * 4096] __attribute__((aligned(4096)));
static struct pt gA, gB, vsA, vsB, hsT;
static struct pt_pool gA_pool, gB_pool, vsA_pool, vsB_pool, hs_pool;

static int base;            /* 0 for Sv39x4, 100 for Sv48x4 */
static int glevels;
static unsigned long hgatp_a, hgatp_b, vsatp_a, vsatp_b;
static int vmidlen, asidlen;
static unsigned long uxl;

#define T(n) (base + (n))

/* ---------------- page tables ---------------- */
static unsigned long gpa_top(void)
{
    return glevels == 3 ? 1UL << 40 : 1UL << 49;
}

static unsigned long g_flags(int i)
{
    switch (i) {
    case 4:  return PTE_U_MASK | PTE_R_MASK | PTE_A_MASK;
    case 5:  return PTE_RWX | AD;                   /* no U */
    case 6:  return PTE_U_MASK | PTE_X_MASK | PTE_A_MASK;
    case 7:
    case 11:
    case 28: return 0;                              /* unmapped */
    case 29: return PTE_U_MASK | PTE_W_MASK | AD;             /* W without R: reserved */
    case 8:  return PTE_U_MASK | PTE_R_MASK | PTE_W_MASK | AD;
    case 9:  return PTE_U_MASK | PTE_R_MASK | PTE_W_MASK;          /* A = D = 0 */
    case 12: return PTE_U_MASK | PTE_R_MASK | PTE_A_MASK;
    default: return PTE_U_MASK | PTE_RWX | AD;
    }
}

static void build_g(struct pt *g, struct pt_pool *tables, char *pool, unsigned long poolsz,
                    int variant)
{
    pt_pool_init(tables, pool, poolsz);
    pt_init(g, tables, glevels, 1, 0);
    pt_map_range(g, 0x80000000UL, 0x80000000UL, 4UL << 20, 1, PTE_U_MASK | PTE_RWX | AD);
    pt_map_range(g, 0x10000000UL, 0x10000000UL, 4096, 0, PTE_U_MASK | PTE_R_MASK | PTE_W_MASK | AD);  /* UART */
    pt_map_range(g, 0x00100000UL, 0x00100000UL, 4096, 0, PTE_U_MASK | PTE_R_MASK | PTE_W_MASK | AD);  /* syscon */
    for (int i = 0; i < NPAGES; i++) {
        unsigned long f = g_flags(i);
        unsigned long hpa = WHPA(i);
        if (variant == 1 && i == 3)
            hpa = WHPA(22);
        if (f)
            pt_map_range(g, WGPA(i), hpa, 4096, 0, f);
    }
    /* GPA 2^40 (Sv39x4) / 2^49 (Sv48x4): the top bit of the widened GPA,
     * root index 1024 of the 16 KiB root (the x4 part) */
    pt_map_range(g, gpa_top(), WHPA(3), 4096, 0, PTE_U_MASK | PTE_RWX | AD);
    if (glevels == 4)
        pt_map_range(g, 1UL << 41, WHPA(3), 4096, 0, PTE_U_MASK | PTE_RWX | AD);
}

static unsigned long vs_flags(int i)
{
    switch (i) {
    case 6:
    case 7:
    case 8:
    case 10:
    case 27:
    case 28: return PTE_RWX | AD;
    case 9:  return PTE_R_MASK | PTE_W_MASK;                  /* A = D = 0 */
    case 13: return PTE_X_MASK | PTE_A_MASK;                  /* execute-only */
    case 14: return PTE_U_MASK | PTE_RWX | AD;           /* user page */
    case 15: return PTE_R_MASK | PTE_A_MASK;                  /* read-only, not executable */
    default: return PTE_R_MASK | PTE_W_MASK | AD;
    }
}

static void build_vs(struct pt *v, struct pt_pool *tables, int pool_page, int variant)
{
    pt_pool_init(tables, (void *)WHPA(pool_page), PG(16));
    pt_init(v, tables, 3, 0, (long)(W_GPA - W_HPA));
    pt_map_range(v, 0x80000000UL, 0x80000000UL, 1UL << 30, 2, PTE_RWX | AD);   /* harness */
    pt_map_range(v, 0x10000000UL, 0x10000000UL, 4096, 0, PTE_R_MASK | PTE_W_MASK | AD);
    pt_map_range(v, 0x00100000UL, 0x00100000UL, 4096, 0, PTE_R_MASK | PTE_W_MASK | AD);
    for (int i = 3; i <= 29; i++) {
        if (i == 11 || i == 12 || (i >= 21 && i <= 26))
            continue;
        unsigned long gpa = WGPA(i);
        if (variant == 1 && i == 3)
            gpa = WGPA(17);
        pt_map_range(v, WVA(i), gpa, 4096, 0, vs_flags(i));
    }
    pt_map_range(v, WVA(24), gpa_top(), 4096, 0, PTE_RWX | AD);
    pt_map_range(v, WVA(25), 1UL << 41, 4096, 0, PTE_RWX | AD);
    pt_map_range(v, WVA(26), 1UL << 50, 4096, 0, PTE_RWX | AD);
    /* VA page 2: the guest's view of its own L0 table */
    unsigned long l0_hpa = (unsigned long)pt_entry(v, WVA(0), 0) & ~0xfffUL;
    pt_map_range(v, WVA(2), l0_hpa + (W_GPA - W_HPA), 4096, 0, PTE_R_MASK | PTE_W_MASK | AD);
    /* VA 0x4020_0000: L0 table in guest page 11 (not mapped by the G-stage) */
    *pt_entry(v, W_VA + 0x200000, 1) = ((WGPA(11) >> 12) << 10) | PTE_V_MASK;
    /* VA 0x4040_0000: L0 table in guest page 12 (read-only in the G-stage);
     * its entry 3 maps guest page 3 with A = 0 */
    *pt_entry(v, W_VA + 0x400000, 1) = ((WGPA(12) >> 12) << 10) | PTE_V_MASK;
}

static unsigned long *vs_pte(struct pt *v, unsigned long va)
{
    return pt_entry(v, va, 0);
}

static void build_hs(void)
{
    pt_pool_init(&hs_pool, hspool, sizeof(hspool));
    pt_init(&hsT, &hs_pool, 3, 0, 0);
    pt_map_range(&hsT, 0x80000000UL, 0x80000000UL, 1UL << 30, 2, PTE_RWX | AD);
    pt_map_range(&hsT, 0x10000000UL, 0x10000000UL, 4096, 0, PTE_R_MASK | PTE_W_MASK | AD);
    pt_map_range(&hsT, 0x00100000UL, 0x00100000UL, 4096, 0, PTE_R_MASK | PTE_W_MASK | AD);
    pt_map_range(&hsT, WVA(3), WHPA(23), 4096, 0, PTE_R_MASK | PTE_W_MASK | AD);
}

static void fill_window(void)
{
    for (int i = 0; i < NPAGES; i++) {
        memset((void *)WHPA(i), 0, 4096);
        *HPTR(i, MOFF) = MARK(i);
    }
    static const int code_pages[] = { 6, 8, 10, 13, 14 };
    for (unsigned k = 0; k < sizeof(code_pages) / sizeof(code_pages[0]); k++)
        memcpy((void *)WHPA(code_pages[k]), hs_code42, hs_code42_end - hs_code42);
    /* VS L0 table in guest page 12: entry 3 -> guest page 3, R/W, A = D = 0 */
    *HPTR(12, 3 * 8) = ((WGPA(3) >> 12) << 10) | PTE_R_MASK | PTE_W_MASK | PTE_V_MASK;
    hx_sync_code();
}

static void use_trees(unsigned long hgatp, unsigned long vsatp)
{
    csrw(CSR_HGATP, hgatp);
    csrw(CSR_VSATP, vsatp);
    hfence_gvma_all();
    hfence_vvma_all();
}

static void setup(int levels)
{
    glevels = levels;
    base = levels == 3 ? 0 : 100;
    hx_reset_state();
    fill_window();
    build_g(&gA, &gA_pool, gpool_a, sizeof(gpool_a), 0);
    build_g(&gB, &gB_pool, gpool_b, sizeof(gpool_b), 1);
    build_vs(&vsA, &vsA_pool, VST_A, 0);
    build_vs(&vsB, &vsB_pool, VST_B, 1);
    build_hs();
    unsigned long gmode = levels == 3 ? HGATP_MODE_SV39X4 : HGATP_MODE_SV48X4;
    csrw(CSR_HGATP, (gmode << HGATP_MODE_SHIFT) | HGATP_VMID_MASK);
    vmidlen = hx_popcount(((csrr(CSR_HGATP) & HGATP_VMID_MASK) >> HGATP_VMID_SHIFT));
    csrw(CSR_VSATP, (SATP_MODE_SV39 << SATP_MODE_SHIFT) | SATP_ASID_MASK);
    asidlen = hx_popcount(((csrr(CSR_VSATP) & SATP_ASID_MASK) >> SATP_ASID_SHIFT));
    hgatp_a = (gmode << HGATP_MODE_SHIFT) | ((vmidlen ? 1UL : 0) << HGATP_VMID_SHIFT) | pt_root_ppn(&gA);
    hgatp_b = (gmode << HGATP_MODE_SHIFT) | ((vmidlen > 1 ? 2UL : 0) << HGATP_VMID_SHIFT) | pt_root_ppn(&gB);
    vsatp_a = (SATP_MODE_SV39 << SATP_MODE_SHIFT) | ((asidlen ? 1UL : 0) << SATP_ASID_SHIFT) | pt_root_ppn(&vsA);
    vsatp_b = (SATP_MODE_SV39 << SATP_MODE_SHIFT) | ((asidlen > 1 ? 2UL : 0) << SATP_ASID_SHIFT) | pt_root_ppn(&vsB);
    uxl = csrr(CSR_VSSTATUS) & MSTATUS_UXL_MASK;
    use_trees(hgatp_a, vsatp_a);
    printf("hstage: %s run: hgatp=0x%lx vsatp=0x%lx VMIDLEN=%d ASIDLEN=%d\n",
           levels == 3 ? "Sv39x4" : "Sv48x4", hgatp_a, vsatp_a, vmidlen, asidlen);
}

/* ---------------- helpers ---------------- */
static long vs_ld(unsigned long va) { return hx_run(HX_VS, hs_ld, 0, va - 8); }
static void vs_sd(unsigned long va, unsigned long v) { hx_run(HX_VS, hs_sd, v, va - 16); }

/*
 * Check the single logged trap: level, cause, tval, tval2 (-1: not checked),
 * GVA, and the trap-instruction register: tinst (-1: not checked); with
 * tinst_zero_dev, QEMU 7.2's 0 is accepted as deviation `dev`.
 */
static struct hx_rec *check_fault(int n, const char *what, long level, unsigned long cause,
                                  unsigned long tval, long tval2, unsigned long gva,
                                  long tinst, const char *dev)
{
    struct hx_rec *r = hx_check_trap(n, what, level, cause);
    if (hx_nlog != 1 || r->cause != cause || r->level != (unsigned long)level)
        return r;
    CHECK(n, "trap value (guest virtual address)", r->tval, tval);
    if (tval2 >= 0)
        CHECK(n, level == LVL_M ? "mtval2 (GPA >> 2)" : "htval (GPA >> 2)", r->tval2, tval2);
    if (level != LVL_VS)
        CHECK(n, level == LVL_M ? "mstatus.GVA" : "hstatus.GVA", r->gva, gva);
    if (tinst >= 0 && level != LVL_VS) {
        if (dev)
            CHECK_DEV(n, level == LVL_M ? "mtinst" : "htinst", r->tinst, tinst, 0, dev);
        else
            CHECK(n, level == LVL_M ? "mtinst" : "htinst", r->tinst, tinst);
    }
    return r;
}

static unsigned long insn_at(void *p)
{
    return *(volatile unsigned int *)p;
}

/* VS load that must return exp; QEMU 7.2 is known to trap with qcause instead */
static void vs_load_dev(int n, const char *what, unsigned long va, unsigned long exp,
                        unsigned long qcause, const char *dev)
{
    hx_test(n);
    hx_expect1();
    long v = vs_ld(va);
    if (hx_check_notrap_dev(n, what, LVL_M, qcause, dev))
        CHECK(n, what, v, exp);
}

/* the same for an instruction run by hx_exec in mode */
static void exec_load_dev(int n, const char *what, long mode, unsigned insn, unsigned long a0,
                          unsigned long exp, unsigned long qcause, const char *dev)
{
    hx_test(n);
    hx_expect1();
    long v = hx_exec(mode, insn, a0, 0);
    if (hx_check_notrap_dev(n, what, LVL_M, qcause, dev))
        CHECK(n, what, v, exp);
}

/* ---------------- tests ---------------- */
static void test_basic(void)
{
    hx_test(T(1));
    hx_expect_none();
    CHECK(T(1), "VS load through both stages (GPA 0xC000_3000 -> HPA 0x8100_3000)",
          vs_ld(WVA(3) + MOFF), MARK(3));
    vs_sd(WVA(3) + MOFF + 8, 0x1234567890abcdefUL);
    CHECK(T(2), "VS store through both stages", *HPTR(3, MOFF + 8), 0x1234567890abcdefUL);
    CHECK(T(3), "VS fetch through both stages (code in guest page 10)",
          hx_run(HX_VS, (void *)WVA(10), 0, 0), 42);
    static volatile unsigned long harness_var = 0x600dcafe;
    hx_test(T(4));
    CHECK(T(4), "VS load through a 1 GiB VS leaf + 2 MiB G leaves (harness data)",
          vs_ld((unsigned long)&harness_var), 0x600dcafe);
    vs_load_dev(T(5), "VS load of the top GPA bit (2^40 Sv39x4 / 2^49 Sv48x4; root index 1024)",
                WVA(24) + MOFF, MARK(3), CAUSE_LOAD_GUEST_PAGE_FAULT, "D21");
}

static void test_gpf_m(void)
{
    struct hx_rec *r;
    unsigned long va = WVA(7) + 0x128, gpa = WGPA(7) + 0x128;

    if (insn_at(hs_ld) != 0x0085b503 || insn_at(hs_sd) != 0x00a5b823 ||
        (insn_at(hs_cld) & 0xffff) != 0x6588 || (insn_at(hs_csd) & 0xffff) != 0xe588 ||
        insn_at(hs_amoadd) != 0x00a5b52f || insn_at(hs_lr) != 0x1005b52f ||
        insn_at(hs_sc) != 0x18a5b52f)
        hx_fail(T(6), "hstage_asm.S encodings are not the expected ones");

    hx_test(T(6));
    hx_expect1();
    hx_run(HX_VS, hs_ld, 0, va - 8);
    r = check_fault(T(6), "VS ld from an unmapped guest page -> M", LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT, va,
                    gpa >> 2, 1, 0x3503, "D18");
    CHECK(T(7), "MPV=1", r->pv, 1);
    CHECK(T(7), "MPP=1", r->pp, 1);

    hx_test(T(8));
    hx_expect1();
    hx_run(HX_VS, hs_sd, 5, va - 16);
    check_fault(T(8), "VS sd to an unmapped guest page -> M", LVL_M, CAUSE_STORE_GUEST_PAGE_FAULT, va, gpa >> 2, 1,
                0x00a03023, "D18");

    hx_test(T(9));
    hx_expect(1, HX_RA, 0);
    hx_run(HX_VS, hs_call, 0, WVA(7));
    check_fault(T(9), "VS fetch from an unmapped guest page -> M", LVL_M, CAUSE_INSTRUCTION_GUEST_PAGE_FAULT, WVA(7),
                WGPA(7) >> 2, 1, 0, NULL);

    hx_test(T(10));
    hx_expect(1, HX_SKIP, 2);
    hx_run(HX_VS, hs_cld, 0, va - 8);
    check_fault(T(10), "VS c.ld from an unmapped guest page: mtinst = expanded ld, bit 1 clear",
                LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT, va, gpa >> 2, 1, 0x3501, "D18");

    hx_test(T(11));
    hx_expect(1, HX_SKIP, 2);
    hx_run(HX_VS, hs_csd, 5, va - 8);
    check_fault(T(11), "VS c.sd to an unmapped guest page: mtinst = expanded sd, bit 1 clear",
                LVL_M, CAUSE_STORE_GUEST_PAGE_FAULT, va, gpa >> 2, 1, 0x00a03021, "D18");

    va = WVA(7) + 0x200;
    gpa = WGPA(7) + 0x200;
    hx_test(T(12));
    hx_expect1();
    hx_run(HX_VS, hs_amoadd, 1, va);
    hx_check_trap_dev(T(12), "VS amoadd.d on an unmapped guest page -> store/AMO guest-page fault",
                      LVL_M, CAUSE_STORE_GUEST_PAGE_FAULT, LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT, "D23");
    if (hx_nlog == 1 && hx_log[0].cause == CAUSE_STORE_GUEST_PAGE_FAULT)
        check_fault(T(12), "VS amoadd.d on an unmapped guest page", LVL_M, CAUSE_STORE_GUEST_PAGE_FAULT, va,
                    gpa >> 2, 1, 0x00a0352f, "D18");

    hx_test(T(13));
    hx_expect1();
    hx_run(HX_VS, hs_lr, 0, va);
    check_fault(T(13), "VS lr.d on an unmapped guest page -> load guest-page fault", LVL_M,
                CAUSE_LOAD_GUEST_PAGE_FAULT, va, gpa >> 2, 1, 0x1000352f, "D18");

    /* an SC without a reservation may fail without accessing memory; if it
     * does trap, the trap must be a store/AMO guest-page fault */
    hx_test(T(14));
    hx_expect1();
    long sc = hx_run(HX_VS, hs_sc, 1, va);
    if (hx_nlog)
        check_fault(T(14), "VS sc.d on an unmapped guest page -> store/AMO guest-page fault",
                    LVL_M, CAUSE_STORE_GUEST_PAGE_FAULT, va, gpa >> 2, 1, 0x18a0352f, "D18");
    else
        CHECK(T(14), "VS sc.d without reservation fails (rd != 0)", sc != 0, 1);

    /* 15-16: misaligned accesses straddling guest pages 27 (mapped) and 28
     * (G-unmapped): the fault reports the faulting portion (VA and GPA of the
     * page boundary) and mtinst's Addr. Offset = 4.  An address-misaligned
     * exception (4/6) is also allowed (misaligned accesses may trap). */
    va = WVA(28) - 4;
    hx_test(T(15));
    hx_expect1();
    hx_run(HX_VS, hs_ld, 0, va - 8);
    if (hx_nlog == 1 && hx_log[0].cause == CAUSE_LOAD_ADDRESS_MISALIGNED) {
        CHECK(T(15), "misaligned ld: address-misaligned trap, mtval = address", hx_log[0].tval, va);
    } else {
        check_fault(T(15), "VS ld straddling into an unmapped guest page", LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT,
                    WVA(28), WGPA(28) >> 2, 1, 0x3503 | (4 << 15), "D18");
    }
    hx_test(T(16));
    hx_expect1();
    hx_run(HX_VS, hs_sd, 1, va - 16);
    if (hx_nlog == 1 && hx_log[0].cause == CAUSE_STORE_ADDRESS_MISALIGNED) {
        CHECK(T(16), "misaligned sd: address-misaligned trap, mtval = address", hx_log[0].tval, va);
    } else {
        check_fault(T(16), "VS sd straddling into an unmapped guest page", LVL_M, CAUSE_STORE_GUEST_PAGE_FAULT,
                    WVA(28), WGPA(28) >> 2, 1, 0x00a03023 | (4 << 15), "D18");
        CHECK(T(16), "nothing stored in the mapped part", *HPTR(27, 0xffc) & 0xffffffffUL, 0);
    }
    /* 17: a 32-bit instruction whose second half lies in the unmapped guest
     * page: mepc = its start, mtval/mtval2 = the faulting portion */
    *(volatile unsigned short *)WHPA(27 + 0) = 0;       /* keep page 27 clean */
    *(volatile unsigned short *)(WHPA(27) + 0xffe) = 0x0513;   /* low half of li a0, 42 */
    hx_sync_code();
    hfence_vvma_all();
    hx_test(T(17));
    hx_expect(1, HX_RA, 0);
    hx_run(HX_VS, hs_call, 0, WVA(27) + 0xffe);
    struct hx_rec *f = check_fault(T(17), "VS fetch of an instruction straddling into an unmapped "
                                   "guest page", LVL_M, CAUSE_INSTRUCTION_GUEST_PAGE_FAULT, WVA(28), WGPA(28) >> 2, 1, 0,
                                   NULL);
    if (hx_nlog == 1 && f->cause == CAUSE_INSTRUCTION_GUEST_PAGE_FAULT)
        CHECK(T(17), "mepc = start of the instruction", f->epc, WVA(27) + 0xffe);
    /* 18: G-stage leaf with W=1, R=0 (reserved encoding) -> guest-page fault */
    hx_test(T(18));
    hx_expect1();
    vs_ld(WVA(29) + MOFF);
    check_fault(T(18), "VS load through a G-stage leaf with W but not R", LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT,
                WVA(29) + MOFF, (WGPA(29) + MOFF) >> 2, 1, -1, NULL);
    hx_expect1();
    vs_sd(WVA(29) + MOFF, 1);
    check_fault(T(18), "VS store through a G-stage leaf with W but not R", LVL_M, CAUSE_STORE_GUEST_PAGE_FAULT,
                WVA(29) + MOFF, (WGPA(29) + MOFF) >> 2, 1, -1, NULL);
}

static void test_g_perms(void)
{
    hx_test(T(20));
    hx_expect1();
    hx_run(HX_VS, hs_ld, 0, WVA(5) + MOFF - 8);
    check_fault(T(20), "VS load from a G-stage leaf without U -> guest-page fault", LVL_M,
                CAUSE_LOAD_GUEST_PAGE_FAULT, WVA(5) + MOFF, (WGPA(5) + MOFF) >> 2, 1, -1, NULL);
    hx_test(T(21));
    hx_expect_none();
    CHECK(T(21), "VS load from a G-stage read-only page", vs_ld(WVA(4) + MOFF), MARK(4));
    hx_expect1();
    vs_sd(WVA(4) + MOFF, 1);
    check_fault(T(22), "VS store to a G-stage read-only page -> store guest-page fault", LVL_M,
                CAUSE_STORE_GUEST_PAGE_FAULT, WVA(4) + MOFF, (WGPA(4) + MOFF) >> 2, 1, -1, NULL);
    CHECK(T(22), "read-only page unchanged", *HPTR(4, MOFF), MARK(4));

    /* execute-only in the G-stage: fetch ok, load faults; vsstatus.MXR does
     * not help (VS-stage only), HS-level MXR does (both stages) */
    hx_test(T(23));
    hx_expect_none();
    CHECK(T(23), "VS fetch from a G-stage execute-only page", hx_run(HX_VS, (void *)WVA(6), 0, 0), 42);
    hx_expect1();
    vs_ld(WVA(6) + MOFF);
    check_fault(T(24), "VS load from a G-stage execute-only page -> guest-page fault", LVL_M,
                CAUSE_LOAD_GUEST_PAGE_FAULT, WVA(6) + MOFF, (WGPA(6) + MOFF) >> 2, 1, -1, NULL);
    csrw(CSR_VSSTATUS, uxl | SSTATUS_MXR_MASK);
    hx_test(T(25));
    hx_expect1();
    vs_ld(WVA(6) + MOFF);
    hx_check_trap_dev(T(25), "... with vsstatus.MXR=1 still a guest-page fault (MXR of VS level "
                      "applies to the VS stage only)", LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT, -1, 0, "D24");
    csrw(CSR_VSSTATUS, uxl);
    csrs(CSR_MSTATUS, MSTATUS_MXR_MASK);
    vs_load_dev(T(26), "... with HS-level sstatus.MXR=1 the load succeeds (both stages)",
                WVA(6) + MOFF, MARK(6), CAUSE_LOAD_GUEST_PAGE_FAULT, "D25");
    csrc(CSR_MSTATUS, MSTATUS_MXR_MASK);

    hx_test(T(27));
    hx_expect(1, HX_RA, 0);
    hx_run(HX_VS, hs_call, 0, WVA(8));
    check_fault(T(27), "VS fetch from a G-stage non-executable page -> instruction guest-page fault",
                LVL_M, CAUSE_INSTRUCTION_GUEST_PAGE_FAULT, WVA(8), WGPA(8) >> 2, 1, 0, NULL);
    hx_expect_none();
    CHECK(T(28), "VS load from that page works", vs_ld(WVA(8) + MOFF), MARK(8));
}

static void test_implicit(void)
{
    /* the VS L0 table of VA 0x4020_0000 sits in guest page 11 (G-unmapped) */
    unsigned long va = W_VA + 0x200000 + PG(5) + 0x40;
    unsigned long pte_gpa = WGPA(11) + 5 * 8;
    struct hx_rec *r;
    hx_test(T(30));
    hx_expect1();
    hx_run(HX_VS, hs_ld, 0, va - 8);
    r = check_fault(T(30), "VS load whose VS-stage PTE is in an unmapped guest page", LVL_M,
                    CAUSE_LOAD_GUEST_PAGE_FAULT, va, -1, 1, -1, NULL);
    if (hx_nlog == 1 && r->cause == CAUSE_LOAD_GUEST_PAGE_FAULT) {
        /* the spec allows mtval2 = 0 (and then mtinst = 0); rvh is held to the
         * informative values: the PTE's GPA and the pseudoinstruction */
        CHECK(T(30), "mtval2 = GPA of the VS-stage PTE >> 2", r->tval2, pte_gpa >> 2);
        CHECK(T(31), "mtinst = 0x3000 (64-bit read for VS-stage translation; required "
              "when mtval2 != 0)", r->tinst, 0x3000);
    }
    hx_test(T(32));
    hx_expect1();
    vs_sd(va, 1);
    hx_check_trap_dev(T(32), "VS store whose VS-stage PTE is in an unmapped guest page -> store "
                      "GPF (reported for the original access type)", LVL_M, CAUSE_STORE_GUEST_PAGE_FAULT, LVL_M,
                      CAUSE_LOAD_GUEST_PAGE_FAULT, "D22");
    r = &hx_log[0];
    if (hx_nlog == 1 && r->cause == CAUSE_STORE_GUEST_PAGE_FAULT) {
        CHECK(T(32), "mtval", r->tval, va);
        CHECK(T(32), "mtval2 = GPA of the VS-stage PTE >> 2", r->tval2, pte_gpa >> 2);
        CHECK(T(32), "mtinst = 0x3000 (the PTE access is a read)", r->tinst, 0x3000);
    }
    hx_test(T(33));
    hx_expect(1, HX_RA, 0);
    hx_run(HX_VS, hs_call, 0, W_VA + 0x200000 + PG(5));
    hx_check_trap_dev(T(33), "VS fetch whose VS-stage PTE is in an unmapped guest page -> fetch GPF",
                      LVL_M, CAUSE_INSTRUCTION_GUEST_PAGE_FAULT, LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT, "D22");
    if (hx_nlog == 1 && r->cause == CAUSE_INSTRUCTION_GUEST_PAGE_FAULT) {
        CHECK(T(33), "mtval", r->tval, W_VA + 0x200000 + PG(5));
        CHECK(T(33), "mtval2 = GPA of the VS-stage PTE >> 2", r->tval2, (WGPA(11) + 5 * 8) >> 2);
        CHECK(T(33), "mtinst = 0x3000 (the PTE access is a read)", r->tinst, 0x3000);
    }

    /* VS L0 table of VA 0x4040_0000 in guest page 12 (G-stage read-only):
     * its PTE has A = 0, so the hardware A update is a store into a
     * read-only guest page: a guest-page fault reported for the original
     * access type (load), with the write pseudoinstruction 0x3020 */
    va = W_VA + 0x400000 + PG(3) + MOFF;
    pte_gpa = WGPA(12) + 3 * 8;
    hx_test(T(34));
    hx_expect1();
    long v = hx_run(HX_VS, hs_ld, 0, va - 8);
#ifdef QEMU_DEVIATIONS
    if (hx_nlog == 0 && v == (long)MARK(3)) {
        printf("SPEC hstage test %d: VS load needing an A-bit update in a G-stage read-only "
               "page table page succeeded, QEMU 7.2 deviation D19 (the spec requires a load "
               "guest-page fault, mtval2 = PTE GPA >> 2, mtinst = 0x3020)\n", T(34));
        hx_ndev++;
        *HPTR(12, 3 * 8) &= ~(PTE_A_MASK | PTE_D_MASK);
        hfence_vvma_all();
        return;
    }
#endif
    if (hx_nlog == 0 && v == (long)MARK(3)) {
        hx_fail(T(34), "VS load needing an A-bit update in a G-stage read-only page table page "
                "succeeded (A set: PTE 0x%lx) -- QEMU 7.2's known deviation D19", *HPTR(12, 3 * 8));
        *HPTR(12, 3 * 8) &= ~(PTE_A_MASK | PTE_D_MASK);
        hfence_vvma_all();
        return;
    }
    r = check_fault(T(34), "VS load needing an A-bit update in a G-stage read-only page table page",
                    LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT, va, -1, 1, -1, NULL);
    if (hx_nlog == 1 && r->cause == CAUSE_LOAD_GUEST_PAGE_FAULT) {
        CHECK(T(34), "mtval2 = GPA of the VS-stage PTE >> 2", r->tval2, pte_gpa >> 2);
        CHECK(T(34), "mtinst = 0x3020 (write for VS-stage translation)", r->tinst, 0x3020);
    }
    CHECK(T(34), "the PTE in the read-only guest page is unchanged (A still 0)",
          *HPTR(12, 3 * 8) & PTE_A_MASK, 0);
}

static void test_ad(void)
{
    unsigned long *vpte = vs_pte(&vsA, WVA(9));
    unsigned long *gpte = pt_entry(&gA, WGPA(9), 0);
    *vpte &= ~AD;
    *gpte &= ~AD;
    hfence_gvma_all();
    hfence_vvma_all();
    hx_test(T(35));
    hx_expect_none();
    CHECK(T(35), "VS load from a page with A=0 in both stages", vs_ld(WVA(9) + MOFF), MARK(9));
    CHECK(T(35), "VS-stage PTE: A set, D clear after the load", *vpte & AD, PTE_A_MASK);
    CHECK(T(36), "G-stage PTE: A set, D clear after the load", *gpte & AD, PTE_A_MASK);
    vs_sd(WVA(9) + MOFF, 7);
    CHECK(T(37), "VS-stage PTE: A and D set after the store", *vpte & AD, AD);
    CHECK(T(38), "G-stage PTE: A and D set after the store", *gpte & AD, AD);
    CHECK(T(38), "the store reached host page 9", *HPTR(9, MOFF), 7);
    *HPTR(9, MOFF) = MARK(9);
    /* the VS-stage table page itself: its G-stage PTE gets A from the walk */
    unsigned long l0_gpa = ((unsigned long)vpte & ~0xfffUL) + (W_GPA - W_HPA);
    unsigned long *tpte = pt_entry(&gA, l0_gpa, 0);
    *tpte &= ~AD;
    hfence_gvma_all();
    hfence_vvma_all();
    vs_ld(WVA(3) + MOFF);
    CHECK(T(39), "G-stage PTE of the VS page-table page: A set by the implicit read",
          *tpte & PTE_A_MASK, PTE_A_MASK);
    *tpte |= AD;
    hfence_gvma_all();
}

static void test_gpa_width(void)
{
    hx_test(T(40));
    if (glevels == 3) {
        hx_expect1();
        vs_ld(WVA(25) + MOFF);
        check_fault(T(40), "Sv39x4: GPA 2^41 (bits 63:41 not zero) -> guest-page fault", LVL_M,
                    CAUSE_LOAD_GUEST_PAGE_FAULT, WVA(25) + MOFF, ((1UL << 41) + MOFF) >> 2, 1, -1, NULL);
    } else {
        hx_expect_none();
        CHECK(T(40), "Sv48x4: GPA 2^41 is translated", vs_ld(WVA(25) + MOFF), MARK(3));
    }
    hx_test(T(41));
    hx_expect1();
    vs_ld(WVA(26) + MOFF);
    check_fault(T(41), "GPA 2^50 (beyond Sv39x4 and Sv48x4) -> guest-page fault", LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT,
                WVA(26) + MOFF, ((1UL << 50) + MOFF) >> 2, 1, -1, NULL);
    hx_test(T(42));
    hx_expect(1, HX_RA, 0);
    hx_run(HX_VS, hs_call, 0, WVA(26));
    check_fault(T(42), "fetch from GPA 2^50 -> instruction guest-page fault", LVL_M, CAUSE_INSTRUCTION_GUEST_PAGE_FAULT,
                WVA(26), (1UL << 50) >> 2, 1, 0, NULL);
}

static void test_gpf_hs(void)
{
    struct hx_rec *r;
    hx_test(T(45));
    csrw(CSR_MEDELEG, (1UL << CAUSE_INSTRUCTION_GUEST_PAGE_FAULT) | (1UL << CAUSE_LOAD_GUEST_PAGE_FAULT) | (1UL << CAUSE_STORE_GUEST_PAGE_FAULT));
    csrs(CSR_HSTATUS, HSTATUS_SPVP_MASK);
    csrc(CSR_HSTATUS, HSTATUS_GVA_MASK);
    unsigned long va = WVA(7) + 0x48, gpa = WGPA(7) + 0x48;
    hx_expect1();
    hx_run(HX_VS, hs_ld, 0, va - 8);
    r = check_fault(T(45), "VS ld guest-page fault delegated to HS", LVL_HS, CAUSE_LOAD_GUEST_PAGE_FAULT, va,
                    gpa >> 2, 1, 0x3503, "D18");
    CHECK(T(46), "hstatus.SPV=1", r->pv, 1);
    CHECK(T(46), "hstatus.SPVP=1", (r->hstatus >> 8) & 1, 1);
    CHECK(T(46), "sstatus.SPP=1", r->pp, 1);
    hx_expect1();
    hx_run(HX_VS, hs_sd, 1, va - 16);
    check_fault(T(47), "VS sd guest-page fault delegated to HS", LVL_HS, CAUSE_STORE_GUEST_PAGE_FAULT, va,
                gpa >> 2, 1, 0x00a03023, "D18");
    hx_expect(1, HX_RA, 0);
    hx_run(HX_VS, hs_call, 0, WVA(7));
    check_fault(T(48), "VS fetch guest-page fault delegated to HS", LVL_HS, CAUSE_INSTRUCTION_GUEST_PAGE_FAULT, WVA(7),
                WGPA(7) >> 2, 1, 0, NULL);
    /* hedeleg cannot send guest-page faults to VS (bits 20, 21, 23 read-only 0) */
    csrw(CSR_HEDELEG, ~0UL);
    hx_expect1();
    hx_run(HX_VS, hs_ld, 0, va - 8);
    hx_check_trap(T(49), "guest-page fault with hedeleg all ones still goes to HS", LVL_HS,
                  CAUSE_LOAD_GUEST_PAGE_FAULT);
    csrw(CSR_HEDELEG, 0);
    csrw(CSR_MEDELEG, 0);
}

static void test_vs_pf(void)
{
    struct hx_rec *r;
    unsigned long va = WVA(30) + 0x10;      /* not mapped in the VS stage */
    hx_test(T(50));
    hx_expect1();
    hx_run(HX_VS, hs_ld, 0, va - 8);
    r = check_fault(T(50), "VS load page fault (VS stage) -> M", LVL_M, CAUSE_LOAD_PAGE_FAULT, va, 0, 1, -1, NULL);
    CHECK(T(50), "mtinst: zero or the transformed ld", r->tinst == 0 || r->tinst == 0x3503, 1);
    CHECK(T(50), "MPV=1", r->pv, 1);
    hx_expect1();
    vs_sd(va, 1);
    check_fault(T(51), "VS store page fault -> M", LVL_M, CAUSE_STORE_PAGE_FAULT, va, 0, 1, -1, NULL);
    hx_expect(1, HX_RA, 0);
    hx_run(HX_VS, hs_call, 0, WVA(30));
    check_fault(T(52), "VS instruction page fault -> M", LVL_M, CAUSE_INSTRUCTION_PAGE_FAULT, WVA(30), 0, 1, 0, NULL);

    csrw(CSR_MEDELEG, (1UL << CAUSE_LOAD_PAGE_FAULT) | (1UL << CAUSE_STORE_PAGE_FAULT) | (1UL << CAUSE_INSTRUCTION_PAGE_FAULT));
    hx_expect1();
    hx_run(HX_VS, hs_ld, 0, va - 8);
    r = check_fault(T(53), "VS load page fault delegated to HS", LVL_HS, CAUSE_LOAD_PAGE_FAULT, va, 0, 1, -1, NULL);
    CHECK(T(53), "SPV=1", r->pv, 1);
    csrw(CSR_HEDELEG, (1UL << CAUSE_LOAD_PAGE_FAULT) | (1UL << CAUSE_STORE_PAGE_FAULT) | (1UL << CAUSE_INSTRUCTION_PAGE_FAULT));
    hx_expect1();
    hx_run(HX_VS, hs_ld, 0, va - 8);
    r = check_fault(T(54), "VS load page fault delegated to VS", LVL_VS, CAUSE_LOAD_PAGE_FAULT, va, -1, 0, -1, NULL);
    CHECK(T(54), "vsstatus.SPP=1", r->pp, 1);
    hx_expect1();
    vs_sd(va, 1);
    check_fault(T(55), "VS store page fault delegated to VS", LVL_VS, CAUSE_STORE_PAGE_FAULT, va, -1, 0, -1, NULL);
    hx_expect(1, HX_RA, 0);
    hx_run(HX_VS, hs_call, 0, WVA(30));
    check_fault(T(56), "VS instruction page fault delegated to VS", LVL_VS, CAUSE_INSTRUCTION_PAGE_FAULT, WVA(30), -1,
                0, -1, NULL);
    csrw(CSR_HEDELEG, 0);
    csrw(CSR_MEDELEG, 0);

    /* vsatp Bare, hgatp on: GVA = GPA */
    hx_test(T(57));
    use_trees(hgatp_a, 0);
    hx_expect_none();
    CHECK(T(57), "vsatp Bare with hgatp on: VS load of VA = GPA 0xC000_3100", vs_ld(WGPA(3) + MOFF),
          MARK(3));
    hx_expect1();
    vs_ld(WGPA(7) + MOFF);
    check_fault(T(58), "vsatp Bare: guest-page fault, mtval = mtval2 << 2", LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT,
                WGPA(7) + MOFF, (WGPA(7) + MOFF) >> 2, 1, -1, NULL);
    use_trees(hgatp_a, vsatp_a);
}

static void test_vs_perms(void)
{
    hx_test(T(60));
    csrw(CSR_VSSTATUS, uxl);
    hx_expect1();
    vs_ld(WVA(14) + MOFF);
    check_fault(T(60), "VS load from a VS-stage user page with SUM=0 -> page fault", LVL_M,
                CAUSE_LOAD_PAGE_FAULT, WVA(14) + MOFF, 0, 1, -1, NULL);
    csrs(CSR_MSTATUS, MSTATUS_SUM_MASK);     /* HS-level SUM does not apply when V=1 */
    hx_expect1();
    vs_ld(WVA(14) + MOFF);
    check_fault(T(60), "... HS-level sstatus.SUM=1 does not help", LVL_M, CAUSE_LOAD_PAGE_FAULT,
                WVA(14) + MOFF, 0, 1, -1, NULL);
    csrc(CSR_MSTATUS, MSTATUS_SUM_MASK);
    csrw(CSR_VSSTATUS, uxl | SSTATUS_SUM_MASK);
    hx_expect_none();
    CHECK(T(61), "VS load from a user page with vsstatus.SUM=1", vs_ld(WVA(14) + MOFF), MARK(14));
    hx_expect(1, HX_RA, 0);
    hx_run(HX_VS, hs_call, 0, WVA(14));
    check_fault(T(62), "VS fetch from a user page (SUM=1) -> instruction page fault", LVL_M,
                CAUSE_INSTRUCTION_PAGE_FAULT, WVA(14), 0, 1, 0, NULL);
    csrw(CSR_VSSTATUS, uxl);

    hx_expect1();
    vs_ld(WVA(13) + MOFF);
    check_fault(T(63), "VS load from a VS-stage execute-only page -> page fault", LVL_M, CAUSE_LOAD_PAGE_FAULT,
                WVA(13) + MOFF, 0, 1, -1, NULL);
    csrw(CSR_VSSTATUS, uxl | SSTATUS_MXR_MASK);
    hx_expect_none();
    CHECK(T(64), "... with vsstatus.MXR=1 it reads", vs_ld(WVA(13) + MOFF), MARK(13));
    csrw(CSR_VSSTATUS, uxl);
    csrs(CSR_MSTATUS, MSTATUS_MXR_MASK);
    vs_load_dev(T(64), "... with HS-level sstatus.MXR=1 it reads", WVA(13) + MOFF, MARK(13),
                CAUSE_LOAD_PAGE_FAULT, "D25");
    csrc(CSR_MSTATUS, MSTATUS_MXR_MASK);
    hx_expect_none();
    CHECK(T(64), "VS fetch from the execute-only page", hx_run(HX_VS, (void *)WVA(13), 0, 0), 42);
}

static void test_hlv(void)
{
    struct hx_rec *r;
    const unsigned rs1_mask = ~(0x1fu << 15);
    csrw(CSR_VSSTATUS, uxl);
    csrs(CSR_HSTATUS, HSTATUS_SPVP_MASK);
    hx_test(T(65));
    hx_expect_none();
    CHECK(T(65), "M hlv.d (SPVP=1) through both stages", hx_exec(HX_M, I_HLV_D, WVA(3) + MOFF, 0),
          MARK(3));
    hx_exec(HX_M, I_HSV_D, WVA(3) + MOFF + 16, 0xfeedUL);
    CHECK(T(65), "M hsv.d through both stages", *HPTR(3, MOFF + 16), 0xfeedUL);
    CHECK(T(66), "HS hlv.d through both stages", hx_exec(HX_HS, I_HLV_D, WVA(3) + MOFF, 0), MARK(3));
    hx_exec(HX_HS, I_HSV_D, WVA(3) + MOFF + 24, 0xbeefUL);
    CHECK(T(66), "HS hsv.d", *HPTR(3, MOFF + 24), 0xbeefUL);
    csrs(CSR_HSTATUS, HSTATUS_HU_MASK);
    CHECK(T(67), "U hlv.d with hstatus.HU=1", hx_exec(HX_U, I_HLV_D, WVA(3) + MOFF, 0), MARK(3));
    csrc(CSR_HSTATUS, HSTATUS_HU_MASK);

    /* faults: GVA=1 although V=0 (SPV/MPV=0) */
    hx_test(T(68));
    hx_expect1();
    hx_exec(HX_M, I_HLV_D, WVA(7) + 0x40, 0);
    r = check_fault(T(68), "M hlv.d on an unmapped guest page -> load guest-page fault", LVL_M,
                    CAUSE_LOAD_GUEST_PAGE_FAULT, WVA(7) + 0x40, (WGPA(7) + 0x40) >> 2, 1, I_HLV_D & rs1_mask, "D18");
    CHECK(T(68), "trap from M: MPV=0", r->pv, 0);
    csrw(CSR_MEDELEG, 1UL << CAUSE_LOAD_GUEST_PAGE_FAULT);
    hx_test(T(69));
    hx_expect1();
    hx_exec(HX_HS, I_HLV_D, WVA(7) + 0x40, 0);
    r = check_fault(T(69), "HS hlv.d guest-page fault delegated to HS: GVA=1, SPV=0", LVL_HS,
                    CAUSE_LOAD_GUEST_PAGE_FAULT, WVA(7) + 0x40, (WGPA(7) + 0x40) >> 2, 1, I_HLV_D & rs1_mask, "D18");
    CHECK(T(69), "hstatus.SPV=0", r->pv, 0);
    CHECK(T(69), "hstatus.SPVP unchanged (1)", (r->hstatus >> 8) & 1, 1);
    csrw(CSR_MEDELEG, 0);
    hx_test(T(70));
    hx_expect1();
    hx_exec(HX_HS, I_HSV_D, WVA(4) + MOFF, 1);
    check_fault(T(70), "HS hsv.d to a G-stage read-only page -> store guest-page fault", LVL_M,
                CAUSE_STORE_GUEST_PAGE_FAULT, WVA(4) + MOFF, (WGPA(4) + MOFF) >> 2, 1, I_HSV_D & rs1_mask, "D18");

    /* the permission checks, from M and from HS */
    for (long mode = HX_HS; mode <= HX_M; mode += 2) {
        const char *who = mode == HX_M ? "M" : "HS";
        /* SPVP selects the privilege: VU (0) cannot read VS-stage supervisor pages */
        csrc(CSR_HSTATUS, HSTATUS_SPVP_MASK);
        hx_test(T(71));
        hx_expect1();
        hx_exec(mode, I_HLV_D, WVA(3) + MOFF, 0);
        hx_check_trap_dev(T(71), mode == HX_M ? "M hlv.d with SPVP=0 on a VS-stage supervisor page"
                          " -> load page fault" : "HS hlv.d with SPVP=0 on a VS-stage supervisor "
                          "page -> load page fault", LVL_M, CAUSE_LOAD_PAGE_FAULT, LVL_M, CAUSE_LOAD_ACCESS_FAULT, "D27");
        if (hx_nlog == 1 && hx_log[0].cause == CAUSE_LOAD_PAGE_FAULT)
            check_fault(T(71), who, LVL_M, CAUSE_LOAD_PAGE_FAULT, WVA(3) + MOFF, 0, 1, -1, NULL);
        hx_expect_none();
        CHECK(T(72), "hlv.d with SPVP=0 on a VS-stage user page",
              hx_exec(mode, I_HLV_D, WVA(14) + MOFF, 0), MARK(14));
        csrs(CSR_HSTATUS, HSTATUS_SPVP_MASK);
        hx_test(T(73));
        hx_expect1();
        hx_exec(mode, I_HLV_D, WVA(14) + MOFF, 0);
        hx_check_trap_dev(T(73), "hlv.d with SPVP=1 on a user page with vsstatus.SUM=0 -> page fault",
                          LVL_M, CAUSE_LOAD_PAGE_FAULT, -1, 0, "D26");
        csrs(CSR_MSTATUS, MSTATUS_SUM_MASK);
        hx_expect1();
        hx_exec(mode, I_HLV_D, WVA(14) + MOFF, 0);
        hx_check_trap_dev(T(73), "... HS-level sstatus.SUM=1 is ignored", LVL_M, CAUSE_LOAD_PAGE_FAULT, -1, 0,
                          "D26");
        csrc(CSR_MSTATUS, MSTATUS_SUM_MASK);
        csrw(CSR_VSSTATUS, uxl | SSTATUS_SUM_MASK);
        hx_expect_none();
        CHECK(T(74), "hlv.d with SPVP=1 on a user page with vsstatus.SUM=1",
              hx_exec(mode, I_HLV_D, WVA(14) + MOFF, 0), MARK(14));
        csrw(CSR_VSSTATUS, uxl);

        /* HLVX: execute permission instead of read permission */
        exec_load_dev(T(75), "hlvx.hu on a VS-stage execute-only page", mode, I_HLVX_HU, WVA(13),
                      0x0513, CAUSE_LOAD_ACCESS_FAULT, "D20");
        exec_load_dev(T(75), "hlvx.wu on a VS-stage execute-only page", mode, I_HLVX_WU, WVA(13),
                      0x02a00513, CAUSE_LOAD_ACCESS_FAULT, "D20");
        hx_test(T(76));
        hx_expect1();
        hx_exec(mode, I_HLV_HU, WVA(13), 0);
        hx_check_trap_dev(T(76), "hlv.hu on a VS-stage execute-only page -> load page fault",
                          LVL_M, CAUSE_LOAD_PAGE_FAULT, LVL_M, CAUSE_LOAD_ACCESS_FAULT, "D27");
        if (hx_nlog == 1 && hx_log[0].cause == CAUSE_LOAD_PAGE_FAULT)
            check_fault(T(76), who, LVL_M, CAUSE_LOAD_PAGE_FAULT, WVA(13), 0, 1, -1, NULL);
        csrw(CSR_VSSTATUS, uxl | SSTATUS_MXR_MASK);
        exec_load_dev(T(76), "hlv.hu on it with vsstatus.MXR=1", mode, I_HLV_HU, WVA(13), 0x0513,
                      CAUSE_LOAD_ACCESS_FAULT, "D28");
        csrw(CSR_VSSTATUS, uxl);
        exec_load_dev(T(77), "hlvx.hu on a G-stage execute-only page (execute permission is "
                      "enough)", mode, I_HLVX_HU, WVA(6), 0x0513, CAUSE_LOAD_GUEST_PAGE_FAULT, "D20");
        hx_expect1();
        hx_exec(mode, I_HLV_HU, WVA(6), 0);
        check_fault(T(77), "hlv.hu on a G-stage execute-only page -> load guest-page fault", LVL_M,
                    CAUSE_LOAD_GUEST_PAGE_FAULT, WVA(6), WGPA(6) >> 2, 1, -1, NULL);
        csrw(CSR_VSSTATUS, uxl | SSTATUS_MXR_MASK);
        hx_expect1();
        hx_exec(mode, I_HLV_HU, WVA(6), 0);
        hx_check_trap_dev(T(77), "... vsstatus.MXR=1 does not apply to the G-stage", LVL_M,
                          CAUSE_LOAD_GUEST_PAGE_FAULT, -1, 0, "D24");
        csrw(CSR_VSSTATUS, uxl);
        csrs(CSR_MSTATUS, MSTATUS_MXR_MASK);
        exec_load_dev(T(77), "... HS-level sstatus.MXR=1 does", mode, I_HLV_HU, WVA(6), 0x0513,
                      CAUSE_LOAD_GUEST_PAGE_FAULT, "D25");
        csrc(CSR_MSTATUS, MSTATUS_MXR_MASK);
        hx_test(T(78));
        hx_expect1();
        hx_exec(mode, I_HLVX_HU, WVA(15) + MOFF, 0);
        hx_check_trap_dev(T(78), "hlvx.hu on a VS-stage readable, non-executable page -> load "
                          "page fault", LVL_M, CAUSE_LOAD_PAGE_FAULT, -1, 0, "D20");
        if (hx_nlog == 1 && hx_log[0].cause == CAUSE_LOAD_PAGE_FAULT)
            check_fault(T(78), who, LVL_M, CAUSE_LOAD_PAGE_FAULT, WVA(15) + MOFF, 0, 1, -1, NULL);
        csrw(CSR_VSSTATUS, uxl | SSTATUS_MXR_MASK);
        csrs(CSR_MSTATUS, MSTATUS_MXR_MASK);
        hx_expect1();
        hx_exec(mode, I_HLVX_HU, WVA(15) + MOFF, 0);
        hx_check_trap_dev(T(78), "... MXR (VS and HS level) does not give HLVX execute "
                          "permission", LVL_M, CAUSE_LOAD_PAGE_FAULT, -1, 0, "D20");
        csrw(CSR_VSSTATUS, uxl);
        csrc(CSR_MSTATUS, MSTATUS_MXR_MASK);
        hx_test(T(79));
        hx_expect1();
        hx_exec(mode, I_HLVX_HU, WVA(8) + MOFF, 0);
        hx_check_trap_dev(T(79), "hlvx.hu on a G-stage non-executable page -> load guest-page "
                          "fault", LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT, -1, 0, "D20");
        if (hx_nlog == 1 && hx_log[0].cause == CAUSE_LOAD_GUEST_PAGE_FAULT)
            check_fault(T(79), who, LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT, WVA(8) + MOFF, (WGPA(8) + MOFF) >> 2, 1,
                        -1, NULL);
    }
    /* M-mode HLV/HLVX do not depend on mstatus.MPP (only MPRV loads do) */
    csrs(CSR_HSTATUS, HSTATUS_SPVP_MASK);
    static const struct { void *fn; unsigned long va, exp; const char *n; } m3[] = {
        { hs_m_hlv_mpp3, WVA(3) + MOFF, MARK(3), "M hlv.d with mstatus.MPP=3 (two-stage)" },
        { hs_m_hlvx_mpp3, WVA(10), 0x0513, "M hlvx.hu with mstatus.MPP=3 (two-stage)" },
    };
    for (int k = 0; k < 2; k++) {
        hx_test(T(75));
        hx_expect_none();
        CHECK(T(75), m3[k].n, hx_run(HX_M, m3[k].fn, m3[k].va, 0), m3[k].exp);
    }
    csrc(CSR_HSTATUS, HSTATUS_SPVP_MASK);
    hx_expect_none();
}

static void test_mprv(void)
{
    const unsigned long vsbits = MSTATUS_MPRV_MASK | MSTATUS_MPV_MASK | MSTATUS_MPP_S;
    hx_test(T(80));
    hx_expect_none();
    CHECK(T(80), "M ld with MPRV=1, MPV=1, MPP=S: two-stage translation",
          hs_mprv_ld(vsbits, WVA(3) + MOFF - 8), MARK(3));
    hx_test(T(81));
    hx_expect1();
    hs_mprv_ld(MSTATUS_MPRV_MASK | MSTATUS_MPV_MASK, WVA(3) + MOFF - 8);
    hx_check_trap_dev(T(81), "MPRV with MPV=1, MPP=U: VS-stage supervisor page -> load page fault",
                      LVL_M, CAUSE_LOAD_PAGE_FAULT, LVL_M, CAUSE_LOAD_ACCESS_FAULT, "D27");
    if (hx_nlog == 1 && hx_log[0].cause == CAUSE_LOAD_PAGE_FAULT) {
        struct hx_rec *r = check_fault(T(81), "MPRV page fault", LVL_M, CAUSE_LOAD_PAGE_FAULT,
                                       WVA(3) + MOFF, 0, 1, -1, NULL);
        CHECK(T(81), "trap from M: MPV=0", r->pv, 0);
    }
    hx_test(T(82));
    hx_expect1();
    hs_mprv_ld(vsbits, WVA(7) + MOFF - 8);
    hx_check_trap_dev(T(82), "MPRV with MPV=1: G-stage fault -> load guest-page fault", LVL_M,
                      CAUSE_LOAD_GUEST_PAGE_FAULT, LVL_M, CAUSE_LOAD_PAGE_FAULT, "D29");
    if (hx_nlog == 1 && hx_log[0].cause == CAUSE_LOAD_GUEST_PAGE_FAULT)
        check_fault(T(82), "MPRV guest-page fault", LVL_M, CAUSE_LOAD_GUEST_PAGE_FAULT, WVA(7) + MOFF,
                    (WGPA(7) + MOFF) >> 2, 1, 0x3503, "D18");
    csrw(CSR_VSSTATUS, uxl | SSTATUS_MXR_MASK);
    hx_test(T(83));
    hx_expect1();
    long v = hs_mprv_ld(vsbits, WVA(13) + MOFF - 8);
    if (hx_check_notrap_dev(T(83), "MPRV (MPV=1) load of a VS-stage execute-only page with "
                            "vsstatus.MXR=1", LVL_M, CAUSE_LOAD_ACCESS_FAULT, "D28"))
        CHECK(T(83), "MPRV load with vsstatus.MXR=1", v, MARK(13));
    csrw(CSR_VSSTATUS, uxl);
    hx_expect_none();
}

static HX_NOINLINE long vs_edit_pte(unsigned long pte_va, unsigned long newpte)
{
    volatile unsigned long *probe = (volatile unsigned long *)(WVA(20) + MOFF);
    long before = *probe;
    *(volatile unsigned long *)pte_va = newpte;
    __asm__ __volatile__("sfence.vma zero, zero" ::: "memory");
    long after = *probe;
    return (before == (long)MARK(20)) + 2 * (after == (long)MARK(17));
}

static void test_fences(void)
{
    /* HFENCE.GVMA: a G-stage remap of guest page 16 becomes visible */
    unsigned long *g16 = pt_entry(&gA, WGPA(16), 0);
    hx_test(T(85));
    hx_expect_none();
    CHECK(T(85), "VS load of guest page 16 -> host page 16", vs_ld(WVA(16) + MOFF), MARK(16));
    *g16 = ((WHPA(17) >> 12) << 10) | PTE_V_MASK | PTE_U_MASK | PTE_RWX | AD;
    hfence_gvma_all();
    CHECK(T(85), "after the G-stage remap + hfence.gvma (M): host page 17", vs_ld(WVA(16) + MOFF),
          MARK(17));
    *g16 = ((WHPA(16) >> 12) << 10) | PTE_V_MASK | PTE_U_MASK | PTE_RWX | AD;
    hx_exec(HX_HS, 0x62b50073u /* hfence.gvma a0, a1 */, WGPA(16) >> 2, vmidlen ? 1 : 0);
    CHECK(T(86), "after remapping back + hfence.gvma gaddr, vmid (HS)", vs_ld(WVA(16) + MOFF),
          MARK(16));

    /* HFENCE.VVMA: a VS-stage remap of VA page 18 */
    unsigned long *v18 = vs_pte(&vsA, WVA(18));
    CHECK(T(87), "VS load of VA page 18", vs_ld(WVA(18) + MOFF), MARK(18));
    *v18 = ((WGPA(19) >> 12) << 10) | PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | AD;
    hx_exec(HX_HS, 0x22b50073u /* hfence.vvma a0, a1 */, WVA(18), asidlen ? 1 : 0);
    CHECK(T(87), "after the VS-stage remap + hfence.vvma vaddr, asid (HS)", vs_ld(WVA(18) + MOFF),
          MARK(19));
    *v18 = ((WGPA(18) >> 12) << 10) | PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | AD;
    hx_exec(HX_HS, I_HFENCE_VVMA, 0, 0);
    CHECK(T(88), "after remapping back + hfence.vvma x0, x0 (HS)", vs_ld(WVA(18) + MOFF), MARK(18));

    /* SFENCE.VMA in VS-mode after the guest rewrites its own PTE (VA page 20 -> GPA 17) */
    unsigned long *v20 = vs_pte(&vsA, WVA(20));
    unsigned long pte_va = WVA(2) + ((unsigned long)v20 & 0xfff);
    long res = hx_run(HX_VS, vs_edit_pte, pte_va,
                      ((WGPA(17) >> 12) << 10) | PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | AD);
    CHECK(T(89), "VS: old mapping before, new mapping after its own sfence.vma", res, 3);
    *v20 = ((WGPA(20) >> 12) << 10) | PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | AD;
    hfence_vvma_all();

    /* VMID: two G-stage trees that map guest page 3 differently */
    if (vmidlen >= 2) {
        hx_test(T(90));
        csrw(CSR_HGATP, hgatp_b);
        hfence_gvma_all();
        csrw(CSR_HGATP, hgatp_a);
        for (int k = 0; k < 2; k++) {
            csrw(CSR_HGATP, hgatp_a);
            CHECK(T(90), "VMID 1 tree: guest page 3 -> host page 3", vs_ld(WVA(3) + MOFF), MARK(3));
            csrw(CSR_HGATP, hgatp_b);
            CHECK(T(90), "VMID 2 tree: guest page 3 -> host page 22 (no fence on switch)",
                  vs_ld(WVA(3) + MOFF), MARK(22));
        }
        csrw(CSR_HGATP, hgatp_a);
    } else {
        hx_note("VMIDLEN %d < 2: VMID switch test skipped", vmidlen);
    }
    /* ASID: two VS-stage trees (VA page 3 -> GPA 3 or 17) */
    if (asidlen >= 2) {
        hx_test(T(91));
        csrw(CSR_VSATP, vsatp_b);
        hfence_vvma_all();
        for (int k = 0; k < 2; k++) {
            csrw(CSR_VSATP, vsatp_a);
            CHECK(T(91), "ASID 1 tree: VA page 3 -> guest page 3", vs_ld(WVA(3) + MOFF), MARK(3));
            csrw(CSR_VSATP, vsatp_b);
            CHECK(T(91), "ASID 2 tree: VA page 3 -> guest page 17 (no fence on switch)",
                  vs_ld(WVA(3) + MOFF), MARK(17));
        }
        csrw(CSR_VSATP, vsatp_a);
    } else {
        hx_note("ASIDLEN %d < 2: ASID switch test skipped", asidlen);
    }
    /* V=0 and V=1 translations of the same VA are kept apart: HS satp maps
     * VA page 3 to host page 23, VS to host page 3 */
    hx_test(T(92));
    csrw(CSR_SATP, (SATP_MODE_SV39 << SATP_MODE_SHIFT) | pt_root_ppn(&hsT));
    sfence_vma_all();
    for (int k = 0; k < 2; k++) {
        CHECK(T(92), "HS (satp) load of VA 0x4000_3100 -> host page 23",
              hx_run(HX_HS, hs_ld, 0, WVA(3) + MOFF - 8), MARK(23));
        CHECK(T(92), "VS load of the same VA -> host page 3", vs_ld(WVA(3) + MOFF), MARK(3));
    }
    csrs(CSR_HSTATUS, HSTATUS_HU_MASK | HSTATUS_SPVP_MASK);
    CHECK(T(93), "HS hlv.d with satp on: VS translation", hx_exec(HX_HS, I_HLV_D, WVA(3) + MOFF, 0),
          MARK(3));

    csrc(CSR_HSTATUS, HSTATUS_HU_MASK | HSTATUS_SPVP_MASK);
    csrw(CSR_SATP, 0);
    sfence_vma_all();
}

static void run_suite(int levels)
{
    setup(levels);
    test_basic();
    test_gpf_m();
    test_g_perms();
    test_implicit();
    test_ad();
    test_gpa_width();
    test_gpf_hs();
    test_vs_pf();
    test_vs_perms();
    test_hlv();
    test_mprv();
    test_fences();
    hx_reset_state();
}

int main(void)
{
    hx_init("hstage");
    run_suite(3);
    csrw(CSR_HGATP, HGATP_MODE_SV48X4 << HGATP_MODE_SHIFT);
    if ((csrr(CSR_HGATP) >> HGATP_MODE_SHIFT) == HGATP_MODE_SV48X4)
        run_suite(4);
    else
        hx_fail(101, "hgatp Sv48x4 not supported");
    csrw(CSR_HGATP, 0);
    return hx_done();
}

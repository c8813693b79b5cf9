/*
 * hvirt.c - entering and leaving the virtualized modes (priv. spec 20211203,
 * chapter 8: 8.1 privilege modes, 8.2 VS CSRs substituting for S CSRs,
 * 8.6.1-8.6.2 trap entry and delegation, 8.6.4 trap return).
 *
 * Test numbers (exit status = first failing one):
 *   1-9    mret into VS/VU/HS/U (MPV, MPP), ecall causes 8/9/10, MRET clears MPV,
 *          MPV ignored when MPP=3, a trap from M sets MPV=0
 *   10-19  sret from HS into VS/VU/HS/U (hstatus.SPV, sstatus.SPP); SRET clears
 *          SPV and SPP, SIE <- SPIE, SPVP untouched
 *   20-39  in VS-mode sstatus/sscratch/sepc/scause/stval/stvec/satp/sie/sip
 *          access the vs* registers (checked from M), HS copies untouched;
 *          satp write with unsupported MODE ignored when V=1
 *   40-69  trap entry: to M (MPV/MPP/GVA/mtval2/mtinst), delegated to HS
 *          (scause, SPV, SPVP, SPP, SPIE/SIE, GVA, htval, htinst), further to
 *          VS (vscause/vsepc/vstval, vsstatus.SPP/SPIE/SIE; hstatus, HS CSRs
 *          untouched), hedeleg bit 22 read-only zero, traps from U/HS leave
 *          SPVP alone, ebreak's GVA matches stval
 *   70-79  sret in VS-mode uses vsstatus (to VU and to VS), hstatus/mstatus untouched
 *   80-84  mret back into VS after a trap to M (two traps in one VS run)
 */
#include "hx.h"

extern char hx_sstack_top[], hx_vsstack_top[];

/* --- code run in HS-mode: sret with the given hstatus/sstatus settings --- */
static volatile unsigned long g_hs_set, g_hs_clr, g_ss_set, g_ss_clr;

static HX_NOINLINE void hs_sret(void)
{
    csrs(CSR_HSTATUS, g_hs_set);
    csrc(CSR_HSTATUS, g_hs_clr);
    csrs(CSR_SSTATUS, g_ss_set);
    csrc(CSR_SSTATUS, g_ss_clr);
    csrw(CSR_SEPC, (unsigned long)hx_lower_return);
    __asm__ __volatile__("sret" ::: "memory");
    __builtin_unreachable();
}

/* --- code run in VS-mode: sret (uses vsstatus) to hx_lower_return --- */
static HX_NOINLINE void vs_sret(void)
{
    csrw(CSR_SEPC, (unsigned long)hx_lower_return);     /* vsepc */
    __asm__ __volatile__("sret" ::: "memory");
    __builtin_unreachable();
}

/* --- two ecalls in a row (each taken to M and resumed after it) --- */
static HX_NOINLINE long two_ecalls(void)
{
    register long a7 __asm__("a7") = 0;
    __asm__ __volatile__("ecall\n\tecall" : "+r"(a7) :: "memory");
    return 7;
}

/* --- M-mode: mret with MPP=3 and MPV=1 must stay in M and clear MPV --- */
static HX_NOINLINE unsigned long mret_mpp3_mpv1(void)
{
    unsigned long st;
    __asm__ __volatile__(
        "la t0, 1f\n\t"
        "csrw mepc, t0\n\t"
        "li t0, %[mpp_m]\n\t"
        "csrs mstatus, t0\n\t"
        "li t0, %[mpv]\n\t"
        "csrs mstatus, t0\n\t"
        "mret\n"
        "1:\tcsrr %0, mstatus\n\t"
        "csrr t0, mscratch\n"       /* M-only CSR: traps unless still in M */
        : "=r"(st)
        : [mpp_m] "i"(PRIVILEGE_M << MSTATUS_MPP_SHIFT), [mpv] "i"(MSTATUS_MPV_MASK)
        : "t0", "memory");
    return st;
}

static void check_ecall_exit(int n, const char *what, unsigned long cause,
                             unsigned long mpv, unsigned long mpp)
{
    CHECK(n, what, hx_exit.cause, cause);
    CHECK(n, what, hx_exit.pv, mpv);
    CHECK(n, what, hx_exit.pp, mpp);
}

static void test_mret_entry(void)
{
    hx_reset_state();
    /* 1-4: mret into each mode; an ecall comes back to M with MPV/MPP */
    static const struct { long mode; unsigned long cause, mpv, mpp; const char *n; } m[] = {
        { HX_VS, CAUSE_ECALL_FROM_VS, 1, 1, "mret into VS: ecall cause 10, MPV=1, MPP=1" },
        { HX_VU, CAUSE_ECALL_FROM_U, 1, 0, "mret into VU: ecall cause 8, MPV=1, MPP=0" },
        { HX_HS, CAUSE_ECALL_FROM_S, 0, 1, "mret into HS: ecall cause 9, MPV=0, MPP=1" },
        { HX_U, CAUSE_ECALL_FROM_U, 0, 0, "mret into U: ecall cause 8, MPV=0, MPP=0" },
    };
    for (int i = 0; i < 4; i++) {
        hx_test(1 + i);
        hx_expect1();
        hx_exec(m[i].mode, I_ECALL, 0, 0);
        struct hx_rec *r = hx_check_trap(1 + i, m[i].n, LVL_M, m[i].cause);
        CHECK(1 + i, "MPV", r->pv, m[i].mpv);
        CHECK(1 + i, "MPP", r->pp, m[i].mpp);
        CHECK(1 + i, "mepc", r->epc, (unsigned long)hx_exec_buf);
        CHECK(1 + i, "mtval (ecall)", r->tval, 0);
        CHECK(1 + i, "mstatus.GVA (ecall)", r->gva, 0);
        CHECK(1 + i, "mtval2 (not a guest-page fault)", r->tval2, 0);
        CHECK(1 + i, "mtinst (ecall: zero, no transformation defined)", r->tinst, 0);
    }
    /* 5: MRET with MPP=3 ignores MPV, stays in M, and clears MPV and MPP */
    hx_test(5);
    unsigned long st = mret_mpp3_mpv1();
    CHECK(5, "after mret with MPP=3, MPV=1: mstatus.MPV", (st >> 39) & 1, 0);
    CHECK(5, "after mret: mstatus.MPP = U", (st & MSTATUS_MPP_MASK) >> MSTATUS_MPP_SHIFT,
          PRIVILEGE_U);
    /* 6: a trap taken from M sets MPV=0 and MPP=3 even if MPV was 1 */
    hx_test(6);
    csrs(CSR_MSTATUS, MSTATUS_MPV_MASK);
    hx_expect1();
    hx_exec(HX_M, I_CSRW(CSR_HGEIP), 0, 0);         /* illegal in M (read-only CSR) */
    struct hx_rec *r = hx_check_trap(6, "illegal instruction in M", LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    CHECK(6, "trap from M: MPV=0", r->pv, 0);
    CHECK(6, "trap from M: MPP=3", r->pp, 3);
    /* 7: the ecall that ends hx_run also shows MPV/MPP */
    hx_test(7);
    hx_expect_none();
    hx_exec(HX_VS, 0x00000013u /* nop */, 0, 0);
    check_ecall_exit(7, "return ecall from VS", CAUSE_ECALL_FROM_VS, 1, 1);
    hx_exec(HX_VU, 0x00000013u, 0, 0);
    check_ecall_exit(7, "return ecall from VU", CAUSE_ECALL_FROM_U, 1, 0);
}

static void test_sret_entry(void)
{
    static const struct { unsigned long spv, spp, cause, mpv, mpp; const char *n; } s[] = {
        { 1, 1, CAUSE_ECALL_FROM_VS, 1, 1, "sret from HS with SPV=1 SPP=1 enters VS" },
        { 1, 0, CAUSE_ECALL_FROM_U, 1, 0, "sret from HS with SPV=1 SPP=0 enters VU" },
        { 0, 1, CAUSE_ECALL_FROM_S, 0, 1, "sret from HS with SPV=0 SPP=1 stays in HS" },
        { 0, 0, CAUSE_ECALL_FROM_U, 0, 0, "sret from HS with SPV=0 SPP=0 enters U" },
    };
    for (int i = 0; i < 4; i++) {
        int n = 10 + 2 * i;
        hx_reset_state();
        hx_test(n);
        /* SPVP set to 1 beforehand: SRET must leave it alone */
        g_hs_set = (s[i].spv ? HSTATUS_SPV_MASK : 0) | HSTATUS_SPVP_MASK;
        g_hs_clr = s[i].spv ? 0 : HSTATUS_SPV_MASK;
        g_ss_set = (s[i].spp ? SSTATUS_SPP_MASK : 0) | SSTATUS_SPIE_MASK;
        g_ss_clr = (s[i].spp ? 0 : SSTATUS_SPP_MASK) | SSTATUS_SIE_MASK;
        hx_expect_none();
        hx_run(HX_HS, hs_sret, 0, 0);
        check_ecall_exit(n, s[i].n, s[i].cause, s[i].mpv, s[i].mpp);
        CHECK(n + 1, "SRET (V=0) clears hstatus.SPV", hx_exit.hstatus & HSTATUS_SPV_MASK, 0);
        CHECK(n + 1, "SRET leaves hstatus.SPVP alone", hx_exit.hstatus & HSTATUS_SPVP_MASK, HSTATUS_SPVP_MASK);
        CHECK(n + 1, "SRET sets sstatus.SPP=0", hx_exit.status & MSTATUS_SPP_MASK, 0);
        CHECK(n + 1, "SRET sets sstatus.SIE=SPIE(1), SPIE=1",
              hx_exit.status & (MSTATUS_SIE_MASK | MSTATUS_SPIE_MASK), MSTATUS_SIE_MASK | MSTATUS_SPIE_MASK);
    }
    csrc(CSR_MSTATUS, MSTATUS_SIE_MASK);
}

static void test_vs_csr_redirect(void)
{
    hx_reset_state();
    hx_test(20);
    const unsigned long uxl = csrr(CSR_VSSTATUS) & MSTATUS_UXL_MASK;
    /* HS-level values, which VS-mode must neither see nor change */
    csrw(CSR_SSCRATCH, 0x1111);
    csrw(CSR_SEPC, 0x80002222UL);
    csrw(CSR_SCAUSE, 3);
    csrw(CSR_STVAL, 0x4444);
    const unsigned long hs_satp = (SATP_MODE_SV39 << SATP_MODE_SHIFT) | (5UL << SATP_ASID_SHIFT) | 0x80555UL;
    csrw(CSR_SATP, hs_satp);            /* HS-level only: nothing runs in HS meanwhile */
    csrs(CSR_MSTATUS, MSTATUS_MXR_MASK);
    csrc(CSR_MSTATUS, MSTATUS_SUM_MASK | MSTATUS_SPP_MASK | MSTATUS_SPIE_MASK);
    /* VS-level values */
    csrw(CSR_VSSTATUS, uxl | SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK | SSTATUS_SUM_MASK);
    csrw(CSR_VSSCRATCH, 0xaaaa);
    csrw(CSR_VSEPC, 0x8000bbbbUL & ~1UL);
    csrw(CSR_VSCAUSE, 13);
    csrw(CSR_VSTVAL, 0xdddd);
    csrw(CSR_VSTVEC, (unsigned long)hx_vstrap);
    csrw(CSR_HIDELEG, MIP_VS_LEVEL_MASK);
    csrw(CSR_HIE, MIP_VSTIP_MASK);
    hx_expect_none();

    unsigned long v = hx_exec(HX_VS, I_CSRR(CSR_SSTATUS), 0, 0);
    CHECK(20, "VS reads sstatus = vsstatus (SPP, SPIE, SUM set; MXR, SIE clear)",
          v & (SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK | SSTATUS_SUM_MASK | SSTATUS_MXR_MASK | SSTATUS_SIE_MASK),
          SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK | SSTATUS_SUM_MASK);
    CHECK(20, "VS reads sstatus: UXL", v & MSTATUS_UXL_MASK, uxl);
    /* hx_run points sscratch/vsscratch at the HS/VS trap stacks */
    CHECK(21, "VS reads sscratch = vsscratch (hx_vsstack_top)",
          hx_exec(HX_VS, I_CSRR(CSR_SSCRATCH), 0, 0), (unsigned long)hx_vsstack_top);
    CHECK(22, "VS reads sepc = vsepc", hx_exec(HX_VS, I_CSRR(CSR_SEPC), 0, 0), 0x8000bbbaUL);
    CHECK(23, "VS reads scause = vscause", hx_exec(HX_VS, I_CSRR(CSR_SCAUSE), 0, 0), 13);
    CHECK(24, "VS reads stval = vstval", hx_exec(HX_VS, I_CSRR(CSR_STVAL), 0, 0), 0xdddd);
    CHECK(25, "VS reads stvec = vstvec", hx_exec(HX_VS, I_CSRR(CSR_STVEC), 0, 0),
          (unsigned long)hx_vstrap);
    CHECK(26, "VS reads satp = vsatp (0), not HS satp", hx_exec(HX_VS, I_CSRR(CSR_SATP), 0, 0), 0);
    /* mideleg's S-level bits have nothing to do with vsie/vsip: try both */
    csrw(CSR_MIDELEG, 0);
    CHECK_DEV(27, "VS reads sie = vsie (hie.VSTIE as STIE), mideleg = 0",
              hx_exec(HX_VS, I_CSRR(CSR_SIE), 0, 0) & 0xffff, MIP_STIP_MASK, 0, "D6");
    csrw(CSR_MIDELEG, MIP_S_LEVEL_MASK);
    CHECK(27, "VS reads sie = vsie (hie.VSTIE as STIE), mideleg = S bits",
          hx_exec(HX_VS, I_CSRR(CSR_SIE), 0, 0) & 0xffff, MIP_STIP_MASK);
    csrw(CSR_HVIP, MIP_VSSIP_MASK);
    csrw(CSR_MIDELEG, 0);
    CHECK_DEV(28, "VS reads sip = vsip (hvip.VSSIP as SSIP), mideleg = 0",
              hx_exec(HX_VS, I_CSRR(CSR_SIP), 0, 0) & 0xffff, MIP_SSIP_MASK, 0, "D6");
    csrw(CSR_MIDELEG, MIP_S_LEVEL_MASK);
    CHECK(28, "VS reads sip = vsip (hvip.VSSIP as SSIP), mideleg = S bits",
          hx_exec(HX_VS, I_CSRR(CSR_SIP), 0, 0) & 0xffff, MIP_SSIP_MASK);
    csrw(CSR_HVIP, 0);
    csrw(CSR_MIDELEG, 0);

    hx_exec(HX_VS, I_CSRW(CSR_SSCRATCH), 0x5a5a, 0);
    CHECK(29, "VS writes sscratch -> vsscratch", csrr(CSR_VSSCRATCH), 0x5a5a);
    CHECK(29, "VS writes sscratch: HS sscratch untouched", csrr(CSR_SSCRATCH),
          (unsigned long)hx_sstack_top);
    hx_exec(HX_VS, I_CSRW(CSR_SEPC), 0x80006000UL, 0);
    CHECK(30, "VS writes sepc -> vsepc", csrr(CSR_VSEPC), 0x80006000UL);
    hx_exec(HX_VS, I_CSRW(CSR_SCAUSE), 7, 0);
    CHECK(31, "VS writes scause -> vscause", csrr(CSR_VSCAUSE), 7);
    hx_exec(HX_VS, I_CSRW(CSR_STVAL), 0x7777, 0);
    CHECK(32, "VS writes stval -> vstval", csrr(CSR_VSTVAL), 0x7777);
    hx_exec(HX_VS, I_CSRW(CSR_STVEC), 0x80007000UL, 0);
    CHECK(33, "VS writes stvec -> vstvec", csrr(CSR_VSTVEC), 0x80007000UL);
    csrw(CSR_VSTVEC, (unsigned long)hx_vstrap);
    hx_exec(HX_VS, I_CSRRS(0, CSR_SSTATUS, R_A0), SSTATUS_MXR_MASK, 0);
    CHECK(34, "VS sets sstatus.MXR -> vsstatus.MXR", csrr(CSR_VSSTATUS) & SSTATUS_MXR_MASK, SSTATUS_MXR_MASK);
    hx_exec(HX_VS, I_CSRRC(0, CSR_SSTATUS, R_A0), SSTATUS_SUM_MASK, 0);
    CHECK(34, "VS clears sstatus.SUM -> vsstatus.SUM", csrr(CSR_VSSTATUS) & SSTATUS_SUM_MASK, 0);
    CHECK(34, "HS-level sstatus untouched (MXR=1, SUM=0)",
          csrr(CSR_MSTATUS) & (MSTATUS_MXR_MASK | MSTATUS_SUM_MASK), MSTATUS_MXR_MASK);
    hx_exec(HX_VS, I_CSRW(CSR_SIE), MIP_S_LEVEL_MASK, 0);
    CHECK(35, "VS writes sie = SEIE|STIE|SSIE -> hie VS bits", csrr(CSR_HIE) & MIP_VS_LEVEL_MASK, MIP_VS_LEVEL_MASK);
    CHECK(35, "VS writes sie: HS-level sie untouched", csrr(CSR_SIE) & MIP_S_LEVEL_MASK, 0);
    hx_exec(HX_VS, I_CSRW(CSR_SIE), 0, 0);
    hx_exec(HX_VS, I_CSRRS(0, CSR_SIP, R_A0), MIP_SSIP_MASK, 0);
    CHECK(36, "VS sets sip.SSIP -> hvip.VSSIP", csrr(CSR_HVIP) & MIP_VS_LEVEL_MASK, MIP_VSSIP_MASK);
    CHECK(36, "VS sets sip.SSIP: HS-level mip.SSIP untouched", csrr(CSR_MIP) & MIP_SSIP_MASK, 0);
    hx_exec(HX_VS, I_CSRRC(0, CSR_SIP, R_A0), MIP_SSIP_MASK, 0);
    CHECK(36, "VS clears sip.SSIP -> hvip.VSSIP", csrr(CSR_HVIP) & MIP_VS_LEVEL_MASK, 0);
    csrw(CSR_VSATP, 0);
    hx_exec(HX_VS, I_CSRW(CSR_SATP), (15UL << SATP_MODE_SHIFT) | 0x80777UL, 0);
    CHECK(37, "VS writes satp with unsupported MODE 15: ignored (vsatp unchanged)",
          csrr(CSR_VSATP), 0);
    hx_exec(HX_VS, I_CSRW(CSR_SATP), (1UL << SATP_MODE_SHIFT) | 0x80777UL, 0);
    CHECK(37, "VS writes satp with reserved MODE 1: ignored (vsatp unchanged)",
          csrr(CSR_VSATP), 0);
    CHECK(38, "HS-level satp untouched by VS satp accesses", csrr(CSR_SATP), hs_satp);
    CHECK(39, "HS sscratch untouched (hx_sstack_top)", csrr(CSR_SSCRATCH),
          (unsigned long)hx_sstack_top);
    CHECK(39, "HS sepc untouched", csrr(CSR_SEPC), 0x80002222UL);
    CHECK(39, "HS scause untouched", csrr(CSR_SCAUSE), 3);
    CHECK(39, "HS stval untouched", csrr(CSR_STVAL), 0x4444);
    CHECK(39, "HS stvec untouched", csrr(CSR_STVEC), (unsigned long)hx_strap);
    csrw(CSR_SATP, 0);
    sfence_vma_all();
}

static void test_trap_entry(void)
{
    struct hx_rec *r;
    const unsigned long uxl = csrr(CSR_VSSTATUS) & MSTATUS_UXL_MASK;
    const unsigned illegal_vs = I_CSRR(CSR_MSCRATCH);   /* M-level CSR: illegal in VS */

    /* 40: no delegation: ecall from VS goes to M */
    hx_reset_state();
    hx_test(40);
    hx_expect1();
    hx_exec(HX_VS, I_ECALL, 0, 0);
    r = hx_check_trap(40, "VS ecall, no delegation", LVL_M, CAUSE_ECALL_FROM_VS);
    CHECK(40, "MPV", r->pv, 1);
    CHECK(40, "MPP", r->pp, 1);

    /* 41-44: medeleg[10]: ecall from VS goes to HS */
    hx_reset_state();
    hx_test(41);
    csrw(CSR_MEDELEG, 1UL << CAUSE_ECALL_FROM_VS);
    csrs(CSR_MSTATUS, MSTATUS_SIE_MASK);             /* SIE=1 before: SPIE=1, SIE=0 after */
    csrs(CSR_HSTATUS, HSTATUS_GVA_MASK);             /* must be rewritten to 0 */
    csrw(CSR_HTVAL, 0x1234);                    /* must be rewritten to 0 */
    hx_expect1();
    hx_exec(HX_VS, I_ECALL, 0, 0);
    r = hx_check_trap(41, "VS ecall with medeleg[10]", LVL_HS, CAUSE_ECALL_FROM_VS);
    CHECK(42, "hstatus.SPV=1", r->pv, 1);
    CHECK(42, "hstatus.SPVP=1 (from VS)", (r->hstatus >> 8) & 1, 1);
    CHECK(42, "sstatus.SPP=1", r->pp, 1);
    CHECK(43, "sstatus.SPIE=1, SIE=0", r->status & (SSTATUS_SPIE_MASK | SSTATUS_SIE_MASK), SSTATUS_SPIE_MASK);
    CHECK(43, "sepc", r->epc, (unsigned long)hx_exec_buf);
    CHECK(43, "stval 0", r->tval, 0);
    CHECK(44, "hstatus.GVA=0 (ecall)", r->gva, 0);
    CHECK(44, "htval=0 (not a guest-page fault)", r->tval2, 0);
    CHECK(44, "htinst=0 (ecall)", r->tinst, 0);
    csrc(CSR_MSTATUS, MSTATUS_SIE_MASK);

    /* 45-46: medeleg[8], hedeleg[8]=0: ecall from VU goes to HS with SPVP=0 */
    hx_reset_state();
    hx_test(45);
    csrw(CSR_MEDELEG, 1UL << CAUSE_ECALL_FROM_U);
    csrs(CSR_HSTATUS, HSTATUS_SPVP_MASK);
    hx_expect1();
    hx_exec(HX_VU, I_ECALL, 0, 0);
    r = hx_check_trap(45, "VU ecall with medeleg[8]", LVL_HS, CAUSE_ECALL_FROM_U);
    CHECK(46, "hstatus.SPV=1", r->pv, 1);
    CHECK(46, "hstatus.SPVP=0 (from VU)", (r->hstatus >> 8) & 1, 0);
    CHECK(46, "sstatus.SPP=0", r->pp, 0);

    /* 47-51: medeleg[8] and hedeleg[8]: ecall from VU goes to VS */
    hx_reset_state();
    hx_test(47);
    csrw(CSR_MEDELEG, 1UL << CAUSE_ECALL_FROM_U);
    csrw(CSR_HEDELEG, 1UL << CAUSE_ECALL_FROM_U);
    csrw(CSR_VSSTATUS, uxl | SSTATUS_SIE_MASK);
    csrw(CSR_HSTATUS, (csrr(CSR_HSTATUS) & HSTATUS_VSXL_MASK) | HSTATUS_SPVP_MASK | HSTATUS_GVA_MASK);
    csrw(CSR_SCAUSE, 0x55);
    csrw(CSR_SEPC, 0x80005550UL);
    csrw(CSR_STVAL, 0x5555);
    csrc(CSR_MSTATUS, MSTATUS_SPP_MASK | MSTATUS_SPIE_MASK);
    hx_expect1();
    hx_exec(HX_VU, I_ECALL, 0, 0);
    r = hx_check_trap(47, "VU ecall with medeleg[8] and hedeleg[8]", LVL_VS, CAUSE_ECALL_FROM_U);
    CHECK(48, "vsepc", r->epc, (unsigned long)hx_exec_buf);
    CHECK(48, "vstval 0", r->tval, 0);
    CHECK(49, "vsstatus.SPP=0 (from VU)", r->pp, 0);
    CHECK(49, "vsstatus.SPIE=1 (old SIE), SIE=0",
          r->status & (SSTATUS_SPIE_MASK | SSTATUS_SIE_MASK), SSTATUS_SPIE_MASK);
    /* the trap into VS touches neither hstatus nor the HS-level CSRs (and the
     * return path of hx_run never traps into HS here) */
    CHECK_DEV(50, "hstatus untouched by a trap into VS (SPV=0, SPVP=1, GVA=1)",
              csrr(CSR_HSTATUS) & (HSTATUS_SPV_MASK | HSTATUS_SPVP_MASK | HSTATUS_GVA_MASK),
              HSTATUS_SPVP_MASK | HSTATUS_GVA_MASK, HSTATUS_SPVP_MASK, "D10");
    CHECK(51, "scause untouched", csrr(CSR_SCAUSE), 0x55);
    CHECK(51, "sepc untouched", csrr(CSR_SEPC), 0x80005550UL);
    CHECK(51, "stval untouched", csrr(CSR_STVAL), 0x5555);
    CHECK(51, "sstatus.SPP/SPIE untouched", csrr(CSR_MSTATUS) & (MSTATUS_SPP_MASK | MSTATUS_SPIE_MASK), 0);

    /* 52-53: illegal instruction in VS delegated to VS: vstval = instruction */
    hx_reset_state();
    hx_test(52);
    csrw(CSR_MEDELEG, 1UL << CAUSE_ILLEGAL_INSTRUCTION);
    csrw(CSR_HEDELEG, 1UL << CAUSE_ILLEGAL_INSTRUCTION);
    hx_expect1();
    hx_exec(HX_VS, illegal_vs, 0, 0);
    r = hx_check_trap_dev(52, "VS csrr mscratch with medeleg[2], hedeleg[2]", LVL_VS,
                          CAUSE_ILLEGAL_INSTRUCTION, LVL_VS, CAUSE_ILLEGAL_INSTRUCTION - 1, "D11");
    CHECK(53, "vstval = instruction bits", r->tval, illegal_vs);
    CHECK(53, "vsstatus.SPP=1 (from VS)", r->pp, 1);

    /* 54-55: illegal instruction in VS delegated to HS only */
    hx_reset_state();
    hx_test(54);
    csrw(CSR_MEDELEG, 1UL << CAUSE_ILLEGAL_INSTRUCTION);
    hx_expect1();
    hx_exec(HX_VS, illegal_vs, 0, 0);
    r = hx_check_trap(54, "VS csrr mscratch with medeleg[2]", LVL_HS, CAUSE_ILLEGAL_INSTRUCTION);
    CHECK(55, "stval = instruction bits", r->tval, illegal_vs);
    CHECK(55, "SPV=1", r->pv, 1);
    CHECK(55, "GVA=0", r->gva, 0);
    CHECK(55, "htinst=0 (illegal instruction: only zero allowed)", r->tinst, 0);

    /* 56-57: trap from U-mode (V=0) into HS: SPV=0, SPVP unchanged (0 and 1) */
    for (unsigned long spvp = 0; spvp < 2; spvp++) {
        hx_reset_state();
        hx_test(56);
        csrw(CSR_MEDELEG, 1UL << CAUSE_ECALL_FROM_U);
        csrs(CSR_HSTATUS, HSTATUS_SPV_MASK | (spvp ? HSTATUS_SPVP_MASK : 0));
        hx_expect1();
        hx_exec(HX_U, I_ECALL, 0, 0);
        r = hx_check_trap(56, "U ecall with medeleg[8]", LVL_HS, CAUSE_ECALL_FROM_U);
        CHECK(57, "trap from U: SPV=0", r->pv, 0);
        CHECK(57, "trap from U: SPVP unchanged", (r->hstatus >> 8) & 1, spvp);
        CHECK(57, "trap from U: SPP=0", r->pp, 0);
    }

    /* 58-59: trap from HS into HS: SPV=0, SPP=1, SPVP unchanged */
    for (unsigned long spvp = 0; spvp < 2; spvp++) {
        hx_reset_state();
        hx_test(58);
        csrw(CSR_MEDELEG, 1UL << CAUSE_ILLEGAL_INSTRUCTION);
        csrs(CSR_HSTATUS, HSTATUS_SPV_MASK | (spvp ? HSTATUS_SPVP_MASK : 0));
        hx_expect1();
        hx_exec(HX_HS, illegal_vs, 0, 0);
        r = hx_check_trap(58, "HS csrr mscratch with medeleg[2]", LVL_HS, CAUSE_ILLEGAL_INSTRUCTION);
        CHECK(59, "trap from HS: SPV=0", r->pv, 0);
        CHECK(59, "trap from HS: SPVP unchanged", (r->hstatus >> 8) & 1, spvp);
        CHECK(59, "trap from HS: SPP=1", r->pp, 1);
    }

    /* 60: hedeleg[22] is read-only zero: a virtual-instruction trap never reaches VS */
    hx_reset_state();
    hx_test(60);
    csrw(CSR_MEDELEG, 1UL << CAUSE_VIRTUAL_INSTRUCTION);
    csrw(CSR_HEDELEG, ~0UL);
    hx_expect1();
    hx_exec(HX_VS, I_CSRR(CSR_HSTATUS), 0, 0);
    r = hx_check_trap(60, "virtual instruction with hedeleg all ones goes to HS",
                      LVL_HS, CAUSE_VIRTUAL_INSTRUCTION);
    CHECK(60, "stval = instruction", r->tval, I_CSRR(CSR_HSTATUS));

    /* 61: ecall from VS with hedeleg all ones still goes to HS (hedeleg[10] RO 0) */
    hx_reset_state();
    hx_test(61);
    csrw(CSR_MEDELEG, 1UL << CAUSE_ECALL_FROM_VS);
    csrw(CSR_HEDELEG, ~0UL);
    hx_expect1();
    hx_exec(HX_VS, I_ECALL, 0, 0);
    hx_check_trap(61, "VS ecall with hedeleg all ones goes to HS", LVL_HS, CAUSE_ECALL_FROM_VS);

    /* 62-63: ebreak in VS delegated to HS: GVA=1 iff stval holds a (guest virtual) address */
    hx_reset_state();
    hx_test(62);
    csrw(CSR_MEDELEG, 1UL << CAUSE_BREAKPOINT);
    hx_expect1();
    hx_exec(HX_VS, 0x00100073u /* ebreak */, 0, 0);
    r = hx_check_trap(62, "VS ebreak with medeleg[3]", LVL_HS, CAUSE_BREAKPOINT);
    CHECK(63, "ebreak: stval is 0 or the pc", r->tval == 0 || r->tval == (unsigned long)hx_exec_buf, 1);
    CHECK(63, "ebreak: GVA=1 iff stval is nonzero", r->gva, r->tval != 0);

    /* 64-65: ebreak in VS to M: mstatus.GVA likewise */
    hx_reset_state();
    hx_test(64);
    hx_expect1();
    hx_exec(HX_VS, 0x00100073u, 0, 0);
    r = hx_check_trap(64, "VS ebreak, no delegation", LVL_M, CAUSE_BREAKPOINT);
    CHECK(65, "ebreak to M: GVA=1 iff mtval is nonzero", r->gva, r->tval != 0);
    CHECK(65, "ebreak to M: MPV=1", r->pv, 1);

    /* 66-67: a trap into HS does not touch vsstatus; a trap into M does not touch hstatus.SPV */
    hx_reset_state();
    hx_test(66);
    csrw(CSR_MEDELEG, 1UL << CAUSE_ECALL_FROM_VS);
    csrw(CSR_VSSTATUS, uxl | SSTATUS_SIE_MASK | SSTATUS_SPP_MASK);
    hx_expect1();
    hx_exec(HX_VS, I_ECALL, 0, 0);
    hx_check_trap(66, "VS ecall to HS", LVL_HS, CAUSE_ECALL_FROM_VS);
    CHECK(66, "vsstatus untouched by a trap into HS",
          csrr(CSR_VSSTATUS) & (SSTATUS_SIE_MASK | SSTATUS_SPIE_MASK | SSTATUS_SPP_MASK), SSTATUS_SIE_MASK | SSTATUS_SPP_MASK);
    hx_reset_state();
    hx_test(67);
    csrs(CSR_HSTATUS, HSTATUS_SPV_MASK | HSTATUS_SPVP_MASK);
    hx_expect1();
    hx_exec(HX_VU, I_ECALL, 0, 0);
    hx_check_trap(67, "VU ecall to M", LVL_M, CAUSE_ECALL_FROM_U);
    CHECK(67, "hstatus.SPV/SPVP untouched by a trap into M",
          csrr(CSR_HSTATUS) & (HSTATUS_SPV_MASK | HSTATUS_SPVP_MASK), HSTATUS_SPV_MASK | HSTATUS_SPVP_MASK);
}

static void test_vs_sret(void)
{
    const unsigned long uxl = csrr(CSR_VSSTATUS) & MSTATUS_UXL_MASK;
    /* 70-73: sret in VS with vsstatus.SPP=0 goes to VU */
    hx_reset_state();
    hx_test(70);
    csrw(CSR_VSSTATUS, uxl | SSTATUS_SPIE_MASK);
    csrs(CSR_HSTATUS, HSTATUS_SPV_MASK | HSTATUS_SPVP_MASK);      /* must stay */
    csrs(CSR_MSTATUS, MSTATUS_SPP_MASK | MSTATUS_SPIE_MASK);      /* HS-level: must stay */
    hx_expect_none();
    hx_run(HX_VS, vs_sret, 0, 0);
    check_ecall_exit(70, "sret in VS with vsstatus.SPP=0 enters VU", CAUSE_ECALL_FROM_U, 1, 0);
    unsigned long vs = csrr(CSR_VSSTATUS);
    CHECK(71, "VS sret: vsstatus.SIE = SPIE (1), SPIE = 1, SPP = 0",
          vs & (SSTATUS_SIE_MASK | SSTATUS_SPIE_MASK | SSTATUS_SPP_MASK), SSTATUS_SIE_MASK | SSTATUS_SPIE_MASK);
    CHECK(72, "VS sret leaves hstatus.SPV/SPVP alone",
          csrr(CSR_HSTATUS) & (HSTATUS_SPV_MASK | HSTATUS_SPVP_MASK), HSTATUS_SPV_MASK | HSTATUS_SPVP_MASK);
    CHECK(73, "VS sret leaves HS-level sstatus.SPP/SPIE alone",
          csrr(CSR_MSTATUS) & (MSTATUS_SPP_MASK | MSTATUS_SPIE_MASK), MSTATUS_SPP_MASK | MSTATUS_SPIE_MASK);
    /* 74-75: sret in VS with vsstatus.SPP=1 stays in VS */
    hx_reset_state();
    hx_test(74);
    csrw(CSR_VSSTATUS, uxl | SSTATUS_SPP_MASK);
    hx_expect_none();
    hx_run(HX_VS, vs_sret, 0, 0);
    check_ecall_exit(74, "sret in VS with vsstatus.SPP=1 stays in VS", CAUSE_ECALL_FROM_VS, 1, 1);
    vs = csrr(CSR_VSSTATUS);
    CHECK(75, "VS sret: vsstatus.SIE = SPIE (0), SPIE = 1, SPP = 0",
          vs & (SSTATUS_SIE_MASK | SSTATUS_SPIE_MASK | SSTATUS_SPP_MASK), SSTATUS_SPIE_MASK);
}

static void test_mret_back(void)
{
    /* 80-82: VS traps to M twice; each mret (MPV=1) resumes VS */
    hx_reset_state();
    hx_test(80);
    hx_expect(2, HX_SKIP, 4);
    long rv = hx_run(HX_VS, two_ecalls, 0, 0);
    CHECK(80, "two ecalls from VS: both trapped", hx_nlog, 2);
    CHECK(81, "first from VS", hx_log[0].cause, CAUSE_ECALL_FROM_VS);
    CHECK(81, "second from VS (mret restored V=1 from MPV)", hx_log[1].cause, CAUSE_ECALL_FROM_VS);
    CHECK(81, "second trap MPV=1", hx_log[1].pv, 1);
    CHECK(82, "VS function returned normally", rv, 7);
    check_ecall_exit(82, "returned from VS", CAUSE_ECALL_FROM_VS, 1, 1);
    /* 83: same from VU */
    hx_expect(2, HX_SKIP, 4);
    rv = hx_run(HX_VU, two_ecalls, 0, 0);
    CHECK(83, "two ecalls from VU: both trapped", hx_nlog, 2);
    CHECK(83, "second from VU", hx_log[1].cause, CAUSE_ECALL_FROM_U);
    CHECK(83, "second trap MPV=1, MPP=0", hx_log[1].pv * 4 + hx_log[1].pp, 4);
    CHECK(84, "VU function returned normally", rv, 7);
}

int main(void)
{
    hx_init("hvirt");
    test_mret_entry();
    test_sret_entry();
    test_vs_csr_redirect();
    test_trap_entry();
    test_vs_sret();
    test_mret_back();
    hx_reset_state();
    return hx_done();
}

/*
 * hvinst.c - the virtual-instruction exception (cause 22) in every case
 * listed in priv. spec 20211203 section 8.6.1, against the cases that stay
 * illegal-instruction exceptions (cause 2).  mtval/stval = instruction bits.
 *
 * Test numbers (exit status = first failing one):
 *   1-4    VS/VU: HFENCE.VVMA/GVMA, HLV/HLVX/HSV -> 22
 *   5-19   VS/VU: hypervisor and VS CSRs (read and write) -> 22; hgeip write and
 *          RV32-only high halves -> 2; hgatp from VS with mstatus.TVM=1 -> 22
 *   20-29  VU: supervisor CSRs -> 22; VS: scounteren/senvcfg/sstatus allowed
 *   30-39  VU: SRET, WFI (TW=0), SFENCE.VMA -> 22; MRET from VS/VU -> 2;
 *          U (V=0): SRET, SFENCE.VMA, WFI -> 2
 *   40-49  hstatus.VTSR and mstatus.TSR
 *   50-59  hstatus.VTW and mstatus.TW
 *   60-69  hstatus.VTVM and mstatus.TVM
 *   70-79  counters: mcounteren/hcounteren/scounteren, high halves
 *   80-89  Sstc: stimecmp from VS/VU gated by menvcfg/henvcfg.STCE, m/hcounteren.TM
 *   90-99  illegal: M CSRs from VS/VU; HLV/HSV/HLVX/HFENCE from U without and with
 *          hstatus.HU
 *   100-109 virtual-instruction traps delegated to HS (scause, stval, SPV, SPVP,
 *          GVA, htval, htinst)
 */
#include "hx.h"

static volatile unsigned long hv_data = 0x1122334455667788UL;

/* run one instruction in mode, expect a trap at level with cause; for causes
 * 2 and 22 the trap value must be the instruction */
static int tval_dev;     /* QEMU 7.2 gives a stale mtval (D12) for this instruction */

static void expect_insn(int n, const char *what, long mode, unsigned insn,
                        unsigned long a0, long level, unsigned long cause)
{
    hx_test(n);
    hx_expect1();
    hx_exec(mode, insn, a0, 0);
    struct hx_rec *r = hx_check_trap(n, what, level, cause);
    if (hx_nlog == 1 && r->cause == cause) {
        if ((cause == CAUSE_ILLEGAL_INSTRUCTION || cause == CAUSE_VIRTUAL_INSTRUCTION) && tval_dev)
            CHECK_DEV_ANY(n, "trap value = the instruction", r->tval, insn, "D12");
        else if (cause == CAUSE_ILLEGAL_INSTRUCTION || cause == CAUSE_VIRTUAL_INSTRUCTION)
            CHECK(n, what, r->tval, insn);
        if (level == LVL_M) {
            CHECK(n, "MPV", r->pv, (mode >> 2) & 1);
            CHECK(n, "MPP", r->pp, mode & 3);
        }
    }
}

/* the same, where QEMU 7.2 is known to take qcause instead (-1: no trap) */
static void expect_insn_dev(int n, const char *what, long mode, unsigned insn,
                            unsigned long a0, unsigned long cause, long qcause, const char *dev)
{
    hx_test(n);
    hx_expect1();
    hx_exec(mode, insn, a0, 0);
    struct hx_rec *r = hx_check_trap_dev(n, what, LVL_M, cause, qcause < 0 ? -1 : LVL_M,
                                         (unsigned long)qcause, dev);
    if (hx_nlog == 1 && r->cause == cause && (cause == CAUSE_ILLEGAL_INSTRUCTION || cause == CAUSE_VIRTUAL_INSTRUCTION))
        CHECK(n, what, r->tval, insn);
}

/* spec: no trap; QEMU 7.2 takes an M-level trap with qcause */
static void expect_ok_dev(int n, const char *what, long mode, unsigned insn, unsigned long a0,
                          unsigned long qcause, const char *dev)
{
    hx_test(n);
    hx_expect1();
    hx_exec(mode, insn, a0, 0);
    if (hx_nlog == 0)
        return;
    unsigned long got = hx_log[0].cause;
#ifdef QEMU_DEVIATIONS
    if (hx_nlog == 1 && hx_log[0].level == LVL_M && got == qcause) {
        printf("SPEC %s test %d: %s: trap at M level, cause 0x%lx, QEMU 7.2 deviation %s "
               "(the spec requires no trap)\n", hx_name, n, what, got, dev);
        hx_ndev++;
        return;
    }
#endif
    hx_fail(n, "%s: trap at level %lu cause 0x%lx tval 0x%lx, expected no trap%s%s", what,
            hx_log[0].level, got, hx_log[0].tval,
            got == qcause ? " -- QEMU 7.2's known deviation " : "", got == qcause ? dev : "");
}

static void expect_ok(int n, const char *what, long mode, unsigned insn, unsigned long a0)
{
    hx_test(n);
    hx_expect1();
    hx_exec(mode, insn, a0, 0);
    hx_check_notrap(n, what);
}

static int csr_exists_m(unsigned csr)
{
    hx_expect1();
    hx_exec(HX_M, I_CSRR(csr), 0, 0);
    int ok = hx_nlog == 0;
    hx_expect_none();
    return ok;
}

static const char *mode_name(long mode)
{
    static const char *const n[] = { "U", "HS", "?", "M", "VU", "VS" };
    return n[mode];
}

static char msgbuf[160];
static const char *msg(const char *a, const char *b, unsigned csr)
{
    /* "<a> <b> csr 0x<csr>" */
    char *p = msgbuf;
    while (*a && p < msgbuf + 60)
        *p++ = *a++;
    *p++ = ' ';
    while (*b && p < msgbuf + 120)
        *p++ = *b++;
    if (csr) {
        const char *c = " csr 0x";
        while (*c)
            *p++ = *c++;
        for (int s = 8; s >= 0; s -= 4)
            *p++ = "0123456789abcdef"[(csr >> s) & 15];
    }
    *p = 0;
    return msgbuf;
}

static void test_h_instructions(void)
{
    static const unsigned hinsn[] = {
        I_HLV_B, I_HLV_BU, I_HLV_H, I_HLV_HU, I_HLVX_HU, I_HLV_W, I_HLV_WU, I_HLVX_WU,
        I_HLV_D, I_HSV_B, I_HSV_H, I_HSV_W, I_HSV_D,
    };
    hx_reset_state();
    for (long mode = HX_VU; mode <= HX_VS; mode++) {
        int n = mode == HX_VS ? 1 : 3;
        if (mode == HX_VS) {
            expect_insn(n, "VS hfence.vvma -> virtual instruction", mode,
                        I_HFENCE_VVMA, 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
            expect_insn(n, "VS hfence.gvma -> virtual instruction", mode,
                        I_HFENCE_GVMA, 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
            expect_insn(n, "VS hfence.vvma a0, a1 -> virtual instruction", mode,
                        0x22b50073u, 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
        } else {
            expect_insn_dev(n, "VU hfence.vvma -> virtual instruction", mode,
                            I_HFENCE_VVMA, 0, CAUSE_VIRTUAL_INSTRUCTION, CAUSE_ILLEGAL_INSTRUCTION, "D13");
            expect_insn_dev(n, "VU hfence.gvma -> virtual instruction", mode,
                            I_HFENCE_GVMA, 0, CAUSE_VIRTUAL_INSTRUCTION, CAUSE_ILLEGAL_INSTRUCTION, "D13");
            expect_insn_dev(n, "VU hfence.vvma a0, a1 -> virtual instruction", mode,
                            0x22b50073u, 0, CAUSE_VIRTUAL_INSTRUCTION, CAUSE_ILLEGAL_INSTRUCTION, "D13");
        }
        tval_dev = 1;
        for (unsigned i = 0; i < sizeof(hinsn) / sizeof(hinsn[0]); i++)
            expect_insn(n + 1, msg(mode_name(mode), "HLV/HLVX/HSV -> virtual instruction", 0),
                        mode, hinsn[i], (unsigned long)&hv_data, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
        tval_dev = 0;
    }
    /* hstatus.HU concerns U-mode only: VU with HU=1 still gets a virtual-instruction trap */
    csrs(CSR_HSTATUS, HSTATUS_HU_MASK);
    tval_dev = 1;
    expect_insn(4, "VU hlv.w with hstatus.HU=1 -> virtual instruction", HX_VU, I_HLV_W,
                (unsigned long)&hv_data, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
    tval_dev = 0;
    csrc(CSR_HSTATUS, HSTATUS_HU_MASK);
}

static const unsigned h_csrs[] = {
    CSR_HSTATUS, CSR_HEDELEG, CSR_HIDELEG, CSR_HIE, CSR_HTIMEDELTA, CSR_HCOUNTEREN,
    CSR_HGEIE, CSR_HENVCFG, CSR_HTVAL, CSR_HIP, CSR_HVIP, CSR_HTINST, CSR_HGATP,
    CSR_VSSTATUS, CSR_VSIE, CSR_VSTVEC, CSR_VSSCRATCH, CSR_VSEPC, CSR_VSCAUSE, CSR_VSTVAL,
    CSR_VSIP, CSR_VSATP,
};
#define N_H_CSRS (sizeof(h_csrs) / sizeof(h_csrs[0]))

static void test_h_csrs(void)
{
    hx_reset_state();
    for (long mode = HX_VU; mode <= HX_VS; mode++) {
        int n = mode == HX_VS ? 5 : 8;
        for (unsigned i = 0; i < N_H_CSRS; i++) {
            expect_insn(n, msg(mode_name(mode), "read of H/VS CSR -> virtual instruction", h_csrs[i]),
                        mode, I_CSRR(h_csrs[i]), 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
            expect_insn(n + 1, msg(mode_name(mode), "write of H/VS CSR -> virtual instruction", h_csrs[i]),
                        mode, I_CSRW(h_csrs[i]), 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
        }
        /* hgeip is read-only: reading is HS-qualified, writing is not */
        expect_insn(n + 2, msg(mode_name(mode), "read hgeip -> virtual instruction", 0),
                    mode, I_CSRR(CSR_HGEIP), 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
        expect_insn(n + 2, msg(mode_name(mode), "write hgeip (read-only) -> illegal", 0),
                    mode, I_CSRW(CSR_HGEIP), 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    }
    /* RV64: the RV32-only high halves do not exist -> illegal, not virtual */
    expect_insn(11, "VS htimedeltah (RV32 only) -> illegal", HX_VS, I_CSRR(CSR_HTIMEDELTAH), 0,
                LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(11, "VS henvcfgh (RV32 only) -> illegal", HX_VS, I_CSRR(0x61a), 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    /* hgatp with mstatus.TVM=1: still "allowed in HS-mode assuming TVM=0" -> virtual */
    csrs(CSR_MSTATUS, MSTATUS_TVM_MASK);
    expect_insn(12, "VS csrr hgatp with mstatus.TVM=1 -> virtual instruction", HX_VS,
                I_CSRR(CSR_HGATP), 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
    csrc(CSR_MSTATUS, MSTATUS_TVM_MASK);
    /* vstimecmp by its own address (accessible from HS with menvcfg.STCE=1,
     * mcounteren.TM=1) -> virtual.  (With menvcfg.STCE=0 the Sstc text only
     * says that stimecmp becomes inaccessible below M; not tested.) */
    if (hx_has_sstc) {
        csrw(CSR_MENVCFG, MENVCFG_STCE_MASK);
        expect_insn(13, "VS csrr vstimecmp (menvcfg.STCE=1) -> virtual instruction", HX_VS,
                    I_CSRR(CSR_VSTIMECMP), 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
        expect_insn(13, "VU csrr vstimecmp (menvcfg.STCE=1) -> virtual instruction", HX_VU,
                    I_CSRR(CSR_VSTIMECMP), 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
        csrw(CSR_MENVCFG, 0);
    }
}

static void test_s_csrs_from_vu(void)
{
    hx_reset_state();
    unsigned s_csrs[16];
    int ns = 0;
    static const unsigned cand[] = {
        CSR_SSTATUS, CSR_SIE, CSR_STVEC, CSR_SCOUNTEREN, CSR_SENVCFG, CSR_SSCRATCH,
        CSR_SEPC, CSR_SCAUSE, CSR_STVAL, CSR_SIP, CSR_SATP,
    };
    for (unsigned i = 0; i < sizeof(cand) / sizeof(cand[0]); i++)
        if (csr_exists_m(cand[i]))
            s_csrs[ns++] = cand[i];
        else
            hx_note("supervisor CSR 0x%x not implemented, skipped", cand[i]);
    for (int i = 0; i < ns; i++) {
        expect_insn_dev(20, msg("VU", "read of S CSR -> virtual instruction", s_csrs[i]), HX_VU,
                        I_CSRR(s_csrs[i]), 0, CAUSE_VIRTUAL_INSTRUCTION, CAUSE_ILLEGAL_INSTRUCTION, "D9");
        expect_insn_dev(21, msg("VU", "write of S CSR -> virtual instruction", s_csrs[i]), HX_VU,
                        I_CSRRS(0, s_csrs[i], R_A0), 0, CAUSE_VIRTUAL_INSTRUCTION, CAUSE_ILLEGAL_INSTRUCTION, "D9");
    }
    /* VS: scounteren and senvcfg have no VS copy: VS accesses the real ones */
    csrw(CSR_SCOUNTEREN, 0);
    expect_ok(22, "VS writes scounteren", HX_VS, I_CSRW(CSR_SCOUNTEREN), 5);
    CHECK(22, "VS write reached scounteren", csrr(CSR_SCOUNTEREN) & 7, 5);
    if (csr_exists_m(CSR_SENVCFG)) {
        csrw(CSR_SENVCFG, 0);
        expect_ok(23, "VS writes senvcfg", HX_VS, I_CSRW(CSR_SENVCFG), MENVCFG_FIOM_MASK);
        CHECK(23, "VS write reached senvcfg", csrr(CSR_SENVCFG) & MENVCFG_FIOM_MASK, MENVCFG_FIOM_MASK);
        csrw(CSR_SENVCFG, 0);
    }
    expect_ok(24, "VS reads sstatus", HX_VS, I_CSRR(CSR_SSTATUS), 0);
    expect_ok(24, "VS reads satp (VTVM=0)", HX_VS, I_CSRR(CSR_SATP), 0);
}

static void test_priv_insns(void)
{
    hx_reset_state();
    expect_insn_dev(30, "VU sret -> virtual instruction", HX_VU, I_SRET, 0, CAUSE_VIRTUAL_INSTRUCTION,
                    CAUSE_ILLEGAL_INSTRUCTION, "D9");
    expect_insn_dev(31, "VU wfi (TW=0) -> virtual instruction", HX_VU, I_WFI, 0, CAUSE_VIRTUAL_INSTRUCTION,
                    CAUSE_ILLEGAL_INSTRUCTION, "D9");
    expect_insn_dev(32, "VU sfence.vma -> virtual instruction", HX_VU, I_SFENCE_VMA, 0,
                    CAUSE_VIRTUAL_INSTRUCTION, CAUSE_ILLEGAL_INSTRUCTION, "D9");
    expect_insn(33, "VS mret -> illegal (not HS-qualified)", HX_VS, I_MRET, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(33, "VU mret -> illegal", HX_VU, I_MRET, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(34, "U sret -> illegal", HX_U, I_SRET, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(34, "U sfence.vma -> illegal", HX_U, I_SFENCE_VMA, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(34, "U wfi (TW=0, nothing pending) -> illegal", HX_U, I_WFI, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(35, "HS mret -> illegal", HX_HS, I_MRET, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
}

static void test_vtsr(void)
{
    hx_reset_state();
    csrs(CSR_HSTATUS, HSTATUS_VTSR_MASK);
    expect_insn(40, "VS sret with hstatus.VTSR=1 -> virtual instruction", HX_VS, I_SRET, 0,
                LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
    expect_insn_dev(41, "VU sret with hstatus.VTSR=1 -> virtual instruction", HX_VU, I_SRET, 0,
                    CAUSE_VIRTUAL_INSTRUCTION, CAUSE_ILLEGAL_INSTRUCTION, "D9");
    /* VTSR does not affect HS */
    csrw(CSR_SEPC, (unsigned long)hx_lower_return);
    csrc(CSR_HSTATUS, HSTATUS_SPV_MASK);
    csrs(CSR_MSTATUS, MSTATUS_SPP_MASK);
    hx_test(42);
    hx_expect_none();
    hx_exec(HX_HS, I_SRET, 0, 0);       /* to hx_lower_return in HS */
    CHECK(42, "HS sret with hstatus.VTSR=1 works (returns to HS)", hx_exit.cause, CAUSE_ECALL_FROM_S);
    csrc(CSR_HSTATUS, HSTATUS_VTSR_MASK);
    /* mstatus.TSR does not affect VS: sret in VS with TSR=1 works */
    csrs(CSR_MSTATUS, MSTATUS_TSR_MASK);
    csrw(CSR_VSSTATUS, (csrr(CSR_VSSTATUS) & MSTATUS_UXL_MASK) | SSTATUS_SPP_MASK);
    csrw(CSR_VSEPC, (unsigned long)hx_lower_return);
    expect_ok_dev(43, "VS sret with mstatus.TSR=1 works (TSR affects HS only)", HX_VS, I_SRET, 0,
                  CAUSE_ILLEGAL_INSTRUCTION, "D14");
    if (hx_nlog == 0) {
        CHECK(43, "VS sret with mstatus.TSR=1 stays in VS", hx_exit.cause, CAUSE_ECALL_FROM_VS);
        CHECK(43, "... MPV", hx_exit.pv, 1);
    }
    expect_insn(44, "HS sret with mstatus.TSR=1 -> illegal", HX_HS, I_SRET, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    csrc(CSR_MSTATUS, MSTATUS_TSR_MASK);
}

static void test_vtw(void)
{
    hx_reset_state();
    csrs(CSR_HSTATUS, HSTATUS_VTW_MASK);
    expect_insn(50, "VS wfi with VTW=1, TW=0 (nothing pending) -> virtual instruction", HX_VS,
                I_WFI, 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
    csrs(CSR_MSTATUS, MSTATUS_TW_MASK);
    expect_insn(51, "VS wfi with VTW=1, TW=1 -> illegal", HX_VS, I_WFI, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    csrc(CSR_HSTATUS, HSTATUS_VTW_MASK);
    expect_insn(51, "VS wfi with VTW=0, TW=1 -> illegal", HX_VS, I_WFI, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn_dev(52, "VU wfi with TW=1 -> illegal", HX_VU, I_WFI, 0, CAUSE_ILLEGAL_INSTRUCTION,
                    CAUSE_VIRTUAL_INSTRUCTION, "D15");
    expect_insn(52, "HS wfi with TW=1 -> illegal", HX_HS, I_WFI, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(52, "U wfi with TW=1 -> illegal", HX_U, I_WFI, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    csrc(CSR_MSTATUS, MSTATUS_TW_MASK);
    /* VS wfi with VTW=0: completes once a VS interrupt is pending and enabled,
     * here a delegated VSSI kept from being taken by vsstatus.SIE=0 */
    csrw(CSR_HIDELEG, MIP_VSSIP_MASK);
    csrw(CSR_HIE, MIP_VSSIP_MASK);
    csrw(CSR_HVIP, MIP_VSSIP_MASK);
    expect_ok(53, "VS wfi with VTW=0 and a pending, globally disabled VSSI completes",
              HX_VS, I_WFI, 0);
    /* HS wfi: a pending S interrupt with sstatus.SIE=0 */
    csrw(CSR_HVIP, 0);
    csrw(CSR_HIE, 0);
    csrw(CSR_MIDELEG, MIP_SSIP_MASK);
    csrw(CSR_SIE, MIP_SSIP_MASK);
    csrs(CSR_MIP, MIP_SSIP_MASK);
    expect_ok(54, "HS wfi with a pending, globally disabled SSI completes", HX_HS, I_WFI, 0);
    csrc(CSR_MIP, MIP_SSIP_MASK);
    csrw(CSR_SIE, 0);
}

static void test_vtvm(void)
{
    hx_reset_state();
    csrs(CSR_HSTATUS, HSTATUS_VTVM_MASK);
    expect_insn(60, "VS sfence.vma with VTVM=1 -> virtual instruction", HX_VS, I_SFENCE_VMA, 0,
                LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
    expect_insn(60, "VS sfence.vma a0, a1 with VTVM=1 -> virtual instruction", HX_VS,
                0x12b50073u, 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
    expect_insn_dev(61, "VS csrr satp with VTVM=1 -> virtual instruction", HX_VS,
                    I_CSRR(CSR_SATP), 0, CAUSE_VIRTUAL_INSTRUCTION, -1, "D16");
    expect_insn_dev(61, "VS csrw satp with VTVM=1 -> virtual instruction", HX_VS,
                    I_CSRW(CSR_SATP), 0, CAUSE_VIRTUAL_INSTRUCTION, -1, "D16");
    /* VTVM does not affect HS or HFENCE.VVMA */
    expect_ok(62, "HS sfence.vma with VTVM=1", HX_HS, I_SFENCE_VMA, 0);
    expect_ok(62, "HS csrr satp with VTVM=1", HX_HS, I_CSRR(CSR_SATP), 0);
    expect_ok(62, "HS hfence.vvma with VTVM=1", HX_HS, I_HFENCE_VVMA, 0);
    csrc(CSR_HSTATUS, HSTATUS_VTVM_MASK);
    /* mstatus.TVM affects HS only */
    csrs(CSR_MSTATUS, MSTATUS_TVM_MASK);
    expect_ok_dev(63, "VS sfence.vma with mstatus.TVM=1 (TVM affects HS only)", HX_VS,
                  I_SFENCE_VMA, 0, CAUSE_ILLEGAL_INSTRUCTION, "D14");
    expect_ok_dev(63, "VS csrr satp with mstatus.TVM=1 (TVM affects HS only)", HX_VS,
                  I_CSRR(CSR_SATP), 0, CAUSE_ILLEGAL_INSTRUCTION, "D14");
    expect_insn(64, "HS sfence.vma with TVM=1 -> illegal", HX_HS, I_SFENCE_VMA, 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(64, "HS csrr satp with TVM=1 -> illegal", HX_HS, I_CSRR(CSR_SATP), 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn_dev(65, "HS csrr hgatp with TVM=1 -> illegal", HX_HS, I_CSRR(CSR_HGATP), 0,
                    CAUSE_ILLEGAL_INSTRUCTION, -1, "D17");
    expect_insn_dev(65, "HS csrw hgatp with TVM=1 -> illegal", HX_HS, I_CSRW(CSR_HGATP), 0,
                    CAUSE_ILLEGAL_INSTRUCTION, -1, "D17");
    expect_insn(65, "HS hfence.gvma with TVM=1 -> illegal", HX_HS, I_HFENCE_GVMA, 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    expect_ok(66, "HS hfence.vvma with TVM=1", HX_HS, I_HFENCE_VVMA, 0);
    expect_ok(66, "HS csrr vsatp with TVM=1", HX_HS, I_CSRR(CSR_VSATP), 0);
    expect_ok(67, "M hfence.gvma with TVM=1", HX_M, I_HFENCE_GVMA, 0);
    csrc(CSR_MSTATUS, MSTATUS_TVM_MASK);
    expect_ok(67, "HS hfence.gvma with TVM=0", HX_HS, I_HFENCE_GVMA, 0);
}

static void test_counters(void)
{
    static const unsigned ctr[] = { CSR_CYCLE, CSR_TIME, CSR_INSTRET };
    static const char *const cn[] = { "cycle", "time", "instret" };
    hx_reset_state();
    for (int i = 0; i < 3; i++) {
        unsigned long bit = 1UL << i;
        unsigned insn = I_CSRR(ctr[i]);
        csrw(CSR_MCOUNTEREN, 7);
        csrw(CSR_HCOUNTEREN, 7 & ~bit);
        csrw(CSR_SCOUNTEREN, 7);
        expect_insn(70, msg("VS reads", cn[i], 0), HX_VS, insn, 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
        expect_insn(71, msg("VU reads (hcounteren bit 0)", cn[i], 0), HX_VU, insn, 0, LVL_M,
                    CAUSE_VIRTUAL_INSTRUCTION);
        expect_ok(72, msg("HS reads (hcounteren does not matter)", cn[i], 0), HX_HS, insn, 0);
        csrw(CSR_HCOUNTEREN, 7);
        expect_ok(73, msg("VS reads (hcounteren bit 1, scounteren 0)", cn[i], 0), HX_VS, insn, 0);
        csrw(CSR_SCOUNTEREN, 7 & ~bit);
        expect_ok(73, msg("VS reads (hcounteren bit 1, scounteren bit 0)", cn[i], 0), HX_VS, insn, 0);
        expect_insn(74, msg("VU reads (scounteren bit 0)", cn[i], 0), HX_VU, insn, 0, LVL_M,
                    CAUSE_VIRTUAL_INSTRUCTION);
        expect_insn(74, msg("U reads (scounteren bit 0)", cn[i], 0), HX_U, insn, 0, LVL_M,
                    CAUSE_ILLEGAL_INSTRUCTION);
        csrw(CSR_SCOUNTEREN, 7);
        expect_ok(75, msg("VU reads (all bits 1)", cn[i], 0), HX_VU, insn, 0);
        csrw(CSR_MCOUNTEREN, 7 & ~bit);
        expect_insn(76, msg("VS reads with mcounteren bit 0", cn[i], 0), HX_VS, insn, 0, LVL_M,
                    CAUSE_ILLEGAL_INSTRUCTION);
        expect_insn(76, msg("VU reads with mcounteren bit 0", cn[i], 0), HX_VU, insn, 0, LVL_M,
                    CAUSE_ILLEGAL_INSTRUCTION);
        expect_insn(76, msg("HS reads with mcounteren bit 0", cn[i], 0), HX_HS, insn, 0, LVL_M,
                    CAUSE_ILLEGAL_INSTRUCTION);
        csrw(CSR_HCOUNTEREN, 0);
        expect_insn(76, msg("VS reads with mcounteren and hcounteren bit 0", cn[i], 0), HX_VS,
                    insn, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    }
    csrw(CSR_MCOUNTEREN, 7);
    csrw(CSR_HCOUNTEREN, 7);
    expect_insn(77, "VS reads cycleh (RV32 only) -> illegal", HX_VS, I_CSRR(CSR_CYCLEH), 0,
                LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(77, "VS reads timeh (RV32 only) -> illegal", HX_VS, I_CSRR(CSR_TIMEH), 0,
                LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    /* hpmcounter3, when M can enable it */
    csrw(CSR_MCOUNTEREN, 0xf);
    if ((csrr(CSR_MCOUNTEREN) & 8) && csr_exists_m(CSR_HPMCOUNTER3)) {
        csrw(CSR_HCOUNTEREN, 7);
        expect_insn(78, "VS reads hpmcounter3 with hcounteren.HPM3=0 -> virtual", HX_VS,
                    I_CSRR(CSR_HPMCOUNTER3), 0, LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
        csrw(CSR_HCOUNTEREN, 0xf);
        expect_ok(78, "VS reads hpmcounter3 with hcounteren.HPM3=1", HX_VS,
                  I_CSRR(CSR_HPMCOUNTER3), 0);
    } else {
        hx_note("hpmcounter3 not enabled by mcounteren: skipped");
    }
    csrw(CSR_MCOUNTEREN, 7);
}

static void test_sstc(void)
{
    if (!hx_has_sstc) {
        hx_note("Sstc absent: stimecmp tests skipped");
        return;
    }
    hx_reset_state();
    unsigned rd = I_CSRR(CSR_STIMECMP), wr = I_CSRW(CSR_STIMECMP);
    csrw(CSR_MENVCFG, MENVCFG_STCE_MASK);
    csrw(CSR_HENVCFG, MENVCFG_STCE_MASK);
    csrw(CSR_MCOUNTEREN, 7);
    csrw(CSR_HCOUNTEREN, 7);
    csrw(CSR_VSTIMECMP, 0x123456789UL);
    hx_test(80);
    hx_expect_none();
    CHECK(80, "VS reads stimecmp = vstimecmp", hx_exec(HX_VS, rd, 0, 0), 0x123456789UL);
    hx_exec(HX_VS, wr, 0x987654321UL, 0);
    CHECK(80, "VS writes stimecmp -> vstimecmp", csrr(CSR_VSTIMECMP), 0x987654321UL);
    CHECK(80, "HS stimecmp untouched", csrr(CSR_STIMECMP), ~0UL);
    csrw(CSR_VSTIMECMP, ~0UL);
    expect_insn_dev(81, "VU stimecmp (all enabled) -> virtual instruction", HX_VU, rd, 0,
                    CAUSE_VIRTUAL_INSTRUCTION, CAUSE_ILLEGAL_INSTRUCTION, "D9");
    csrw(CSR_HCOUNTEREN, 5);
    expect_insn(82, "VS stimecmp with hcounteren.TM=0 -> virtual instruction", HX_VS, rd, 0,
                LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
    csrw(CSR_HCOUNTEREN, 7);
    csrw(CSR_HENVCFG, 0);
    expect_insn(83, "VS stimecmp with henvcfg.STCE=0 -> virtual instruction", HX_VS, rd, 0,
                LVL_M, CAUSE_VIRTUAL_INSTRUCTION);
    expect_ok(83, "HS stimecmp with henvcfg.STCE=0 (affects V=1 only)", HX_HS, rd, 0);
    csrw(CSR_HENVCFG, MENVCFG_STCE_MASK);
    csrw(CSR_MCOUNTEREN, 5);
    expect_insn(84, "VS stimecmp with mcounteren.TM=0 -> illegal", HX_VS, rd, 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(84, "HS stimecmp with mcounteren.TM=0 -> illegal", HX_HS, rd, 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    csrw(CSR_MCOUNTEREN, 7);
    csrw(CSR_MENVCFG, 0);
    expect_insn(85, "VS stimecmp with menvcfg.STCE=0 -> illegal", HX_VS, rd, 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(85, "HS stimecmp with menvcfg.STCE=0 -> illegal", HX_HS, rd, 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    csrw(CSR_HENVCFG, 0);
}

static void test_illegal(void)
{
    static const unsigned mcsr[] = {
        CSR_MSTATUS, CSR_MISA, CSR_MEDELEG, CSR_MIDELEG, CSR_MIE, CSR_MTVEC, CSR_MSCRATCH,
        CSR_MEPC, CSR_MCAUSE, CSR_MTVAL, CSR_MIP, CSR_MTINST, CSR_MTVAL2, CSR_MENVCFG,
    };
    hx_reset_state();
    for (unsigned i = 0; i < sizeof(mcsr) / sizeof(mcsr[0]); i++) {
        expect_insn(90, msg("VS", "reads M CSR -> illegal", mcsr[i]), HX_VS, I_CSRR(mcsr[i]), 0,
                    LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
        expect_insn(91, msg("VU", "reads M CSR -> illegal", mcsr[i]), HX_VU, I_CSRR(mcsr[i]), 0,
                    LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    }
    /* U-mode (V=0) without hstatus.HU: hypervisor instructions are illegal */
    const unsigned long a = (unsigned long)&hv_data;
    tval_dev = 1;
    expect_insn(92, "U hlv.w with HU=0 -> illegal", HX_U, I_HLV_W, a, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(92, "U hlvx.hu with HU=0 -> illegal", HX_U, I_HLVX_HU, a, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(92, "U hsv.w with HU=0 -> illegal", HX_U, I_HSV_W, a, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    tval_dev = 0;
    expect_insn(93, "U hfence.vvma -> illegal", HX_U, I_HFENCE_VVMA, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(93, "U hfence.gvma -> illegal", HX_U, I_HFENCE_GVMA, 0, LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(93, "U csrr hstatus -> illegal", HX_U, I_CSRR(CSR_HSTATUS), 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(93, "U csrr vsstatus -> illegal", HX_U, I_CSRR(CSR_VSSTATUS), 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    /* with hstatus.HU=1 (vsatp and hgatp Bare): HLV/HLVX/HSV work in U-mode */
    csrs(CSR_HSTATUS, HSTATUS_HU_MASK);
    hx_test(94);
    hx_expect_none();
    CHECK(94, "U hlv.d with HU=1", hx_exec(HX_U, I_HLV_D, a, 0), 0x1122334455667788UL);
    CHECK(94, "U hlv.w with HU=1 (sign-extended)", hx_exec(HX_U, I_HLV_W, a, 0), 0x55667788UL);
    CHECK(94, "U hlv.b with HU=1", hx_exec(HX_U, I_HLV_B, a + 7, 0), 0x11);
    hx_exec(HX_U, I_HSV_D, a, 0xcafef00ddeadbeefUL);
    CHECK(95, "U hsv.d with HU=1", hv_data, 0xcafef00ddeadbeefUL);
    CHECK(95, "U hlv.wu with HU=1", hx_exec(HX_U, I_HLV_WU, a + 4, 0), 0xcafef00dUL);
    CHECK(95, "U hlv.w with HU=1 sign-extends", hx_exec(HX_U, I_HLV_W, a + 4, 0),
          0xffffffffcafef00dUL);
    CHECK(96, "U hlvx.hu with HU=1 reads executable memory (its own encoding)",
          hx_exec(HX_U, I_HLVX_HU, (unsigned long)hx_exec_buf, 0), I_HLVX_HU & 0xffff);
    CHECK(96, "U hlvx.wu with HU=1", hx_exec(HX_U, I_HLVX_WU, (unsigned long)hx_exec_buf, 0),
          I_HLVX_WU);
    expect_insn(97, "U hfence.vvma with HU=1 -> still illegal", HX_U, I_HFENCE_VVMA, 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(97, "U hfence.gvma with HU=1 -> still illegal", HX_U, I_HFENCE_GVMA, 0, LVL_M,
                CAUSE_ILLEGAL_INSTRUCTION);
    expect_insn(97, "U csrr hstatus with HU=1 -> still illegal", HX_U, I_CSRR(CSR_HSTATUS), 0,
                LVL_M, CAUSE_ILLEGAL_INSTRUCTION);
    csrc(CSR_HSTATUS, HSTATUS_HU_MASK);
    hv_data = 0x1122334455667788UL;
    /* HS and M may use HLV/HSV */
    hx_test(98);
    hx_expect_none();
    CHECK(98, "HS hlv.d", hx_exec(HX_HS, I_HLV_D, a, 0), 0x1122334455667788UL);
    CHECK(98, "M hlv.d", hx_exec(HX_M, I_HLV_D, a, 0), 0x1122334455667788UL);
    CHECK(98, "M hlv.hu", hlv_hu(a + 2), 0x5566);
}

static void test_delegated(void)
{
    struct hx_rec *r;
    hx_reset_state();
    csrw(CSR_MEDELEG, 1UL << CAUSE_VIRTUAL_INSTRUCTION);
    static const struct { long mode; unsigned insn; unsigned long spvp; const char *n; } d[] = {
        { HX_VS, I_CSRR(CSR_HSTATUS), 1, "VS csrr hstatus, medeleg[22] -> HS" },
        { HX_VS, I_HFENCE_GVMA, 1, "VS hfence.gvma, medeleg[22] -> HS" },
        { HX_VU, I_CSRR(CSR_VSATP), 0, "VU csrr vsatp, medeleg[22] -> HS" },
        { HX_VU, I_HLV_D, 0, "VU hlv.d, medeleg[22] -> HS" },
    };
    for (int i = 0; i < 4; i++) {
        int n = 100 + i;
        hx_test(n);
        csrs(CSR_HSTATUS, HSTATUS_GVA_MASK);
        csrw(CSR_HTVAL, 0x77);
        csrw(CSR_HTINST, 0x3000);
        hx_expect1();
        hx_exec(d[i].mode, d[i].insn, (unsigned long)&hv_data, 0);
        r = hx_check_trap(n, d[i].n, LVL_HS, CAUSE_VIRTUAL_INSTRUCTION);
        if (d[i].insn == I_HLV_D)
            CHECK_DEV_ANY(n, "stval = instruction", r->tval, d[i].insn, "D12");
        else
            CHECK(n, "stval = instruction", r->tval, d[i].insn);
        CHECK(n, "sepc", r->epc, (unsigned long)hx_exec_buf);
        CHECK(n, "hstatus.SPV=1", r->pv, 1);
        CHECK(n, "hstatus.SPVP", (r->hstatus >> 8) & 1, d[i].spvp);
        CHECK(n, "sstatus.SPP", r->pp, d[i].spvp);
        CHECK(n, "hstatus.GVA=0", r->gva, 0);
        CHECK(n, "htval=0", r->tval2, 0);
        CHECK(n, "htinst=0 (standard instruction: no transformation, no custom value)",
              r->tinst, 0);
    }
}

int main(void)
{
    hx_init("hvinst");
    test_h_instructions();
    test_h_csrs();
    test_s_csrs_from_vu();
    test_priv_insns();
    test_vtsr();
    test_vtw();
    test_vtvm();
    test_counters();
    test_sstc();
    test_illegal();
    test_delegated();
    hx_reset_state();
    return hx_done();
}

/*
 * hcsr.c - the hypervisor-extension CSRs (priv. spec 20211203, chapter 8,
 * "Hypervisor Extension, Version 1.0"): reset values, writable and
 * read-only bits, aliases between hvip/hip/hie/mip/mie/vsip/vsie, WARL
 * fields of hgatp/vsatp/vstvec/vsepc, accessibility from M and HS.
 *
 * Test numbers (exit status = first failing one; see README.md):
 *   1-4   misa.H, reset values (hstatus.VSXL = 2, vsstatus.UXL = 2)
 *   5-9   hstatus: writable bits, WPRI zero, VSXL, VGEIN
 *   10-14 hedeleg, hideleg, mideleg (VS bits read-only one)
 *   15-23 hvip / hip / hie and their aliases in mip / mie; sip/sie exclude VS bits
 *   24-25 hgeie / hgeip (GEILEN), hgeip read-only
 *   26-28 hcounteren, htimedelta, htval/htinst/mtval2/mtinst
 *   29-36 hgatp: Bare, Sv39x4, Sv48x4, PPN[1:0], VMID, bits 59:58, unsupported MODE
 *   37-38 vsatp
 *   39-51 vsstatus, vstvec, vsepc, vscause, vstval, vsscratch, vsie, vsip, vstimecmp
 *   52-54 henvcfg (STCE gated by menvcfg.STCE), mstatus.MPV/GVA
 *   55-57 every H/VS CSR accessible from HS; htimedeltah absent in RV64
 *   58    medeleg can delegate causes 10 (ecall from VS), 20, 21, 23 (guest-page
 *         faults) and 22 (virtual instruction) to HS
 */
#include "hx.h"

/* hedeleg bits that must be writable (8.2.2): causes 1-8 and the page faults (bit 0 unchecked) */
#define HEDELEG_DELEGABLE                                                              \
    (0x1feUL | (1UL << CAUSE_INSTRUCTION_PAGE_FAULT) | (1UL << CAUSE_LOAD_PAGE_FAULT) | \
     (1UL << CAUSE_STORE_PAGE_FAULT))

static unsigned long csr_try_read(long mode, unsigned csr, int *trapped)
{
    hx_expect(1, HX_SKIP, 4);
    unsigned long v = hx_exec(mode, I_CSRR(csr), 0, 0);
    *trapped = hx_nlog != 0;
    hx_expect_none();
    return v;
}

static int is_contiguous_low(unsigned long v)   /* 0, 1, 11, 111, ... */
{
    return (v & (v + 1)) == 0;
}

int main(void)
{
    /* reset values, before the harness touches anything */
    unsigned long misa = csrr(CSR_MISA);
    unsigned long hstatus0 = csrr(CSR_HSTATUS);
    unsigned long vsstatus0 = csrr(CSR_VSSTATUS);
    unsigned long mstatus0 = csrr(CSR_MSTATUS);

    hx_init("hcsr");
    printf("hcsr: misa=0x%lx hstatus(reset)=0x%lx vsstatus(reset)=0x%lx mstatus(reset)=0x%lx\n",
           misa, hstatus0, vsstatus0, mstatus0);

    CHECK(1, "misa.H", (misa >> ('H' - 'A')) & 1, 1);
    CHECK(2, "misa.MXL", (misa & MISA_MXL_MASK) >> MISA_MXL_SHIFT, XLEN_64);
    CHECK(3, "hstatus.VSXL at reset", (hstatus0 & HSTATUS_VSXL_MASK) >> HSTATUS_VSXL_SHIFT, XLEN_64);
    CHECK(4, "vsstatus.UXL at reset", (vsstatus0 & VSSTATUS_UXL_MASK) >> VSSTATUS_UXL_SHIFT, XLEN_64);
    {
        const unsigned long vss_fields = SSTATUS_SIE_MASK | SSTATUS_SPIE_MASK | MSTATUS_UBE_MASK | SSTATUS_SPP_MASK |
            SSTATUS_VS_MASK | MSTATUS_FS_MASK | SSTATUS_XS_MASK | SSTATUS_SUM_MASK | SSTATUS_MXR_MASK | MSTATUS_UXL_MASK |
            SSTATUS_SD_MASK;
        CHECK_DEV(4, "vsstatus WPRI bits zero at reset", vsstatus0 & ~vss_fields, 0,
                  0x800000000UL, "D4");
    }

    /* ---------------- GEILEN (hgeie) first: VGEIN depends on it ---------------- */
    csrw(CSR_HGEIE, ~0UL);
    unsigned long hgeie = csrr(CSR_HGEIE);
    int geilen = hx_popcount(hgeie);
    csrw(CSR_HGEIE, 0);

    /* ---------------- hstatus ---------------- */
    const unsigned long hs_rw = HSTATUS_GVA_MASK | HSTATUS_SPV_MASK | HSTATUS_SPVP_MASK | HSTATUS_HU_MASK |
                                HSTATUS_VTVM_MASK | HSTATUS_VTW_MASK | HSTATUS_VTSR_MASK;
    csrw(CSR_HSTATUS, ~HSTATUS_VGEIN_MASK);      /* VGEIN is WLRL: write only legal values */
    unsigned long v = csrr(CSR_HSTATUS);
    printf("hcsr: hstatus after writing ~VGEIN: 0x%lx\n", v);
    /* all ones but VGEIN -> the writable fields, VSXL = 2, VSBE 0 or 1, WPRI bits 0 */
    CHECK_DEV(5, "hstatus after writing all ones (VGEIN and VSBE masked)",
              v & ~(HSTATUS_VGEIN_MASK | HSTATUS_VSBE_MASK), hs_rw | (XLEN_64 << HSTATUS_VSXL_SHIFT),
              ~(HSTATUS_VGEIN_MASK | HSTATUS_VSBE_MASK | (1UL << HSTATUS_VSXL_SHIFT)), "D1");
    csrw(CSR_HSTATUS, 0);
    CHECK(6, "hstatus after writing 0", csrr(CSR_HSTATUS) & ~HSTATUS_VSBE_MASK, XLEN_64 << HSTATUS_VSXL_SHIFT);
    for (unsigned long x = 0; x < 4; x++) {
        csrw(CSR_HSTATUS, x << HSTATUS_VSXL_SHIFT);
        CHECK(7, "hstatus.VSXL after writing 0..3 (only RV64 VS-mode)",
              (csrr(CSR_HSTATUS) & HSTATUS_VSXL_MASK) >> HSTATUS_VSXL_SHIFT, XLEN_64);
    }
    for (int b = 5; b <= 22; b++) {
        unsigned long bit = 1UL << b;
        if (!(bit & hs_rw))
            continue;
        csrw(CSR_HSTATUS, bit | (XLEN_64 << HSTATUS_VSXL_SHIFT));
        CHECK(8, "hstatus single writable bit reads back alone",
              csrr(CSR_HSTATUS) & ~(HSTATUS_VSBE_MASK | HSTATUS_VGEIN_MASK), bit | (XLEN_64 << HSTATUS_VSXL_SHIFT));
    }
    for (int g = 1; g <= geilen; g++) {
        csrw(CSR_HSTATUS, ((unsigned long)g << HSTATUS_VGEIN_SHIFT) | (XLEN_64 << HSTATUS_VSXL_SHIFT));
        CHECK(9, "hstatus.VGEIN holds 1..GEILEN", (csrr(CSR_HSTATUS) & HSTATUS_VGEIN_MASK) >> HSTATUS_VGEIN_SHIFT, g);
    }
    csrw(CSR_HSTATUS, XLEN_64 << HSTATUS_VSXL_SHIFT);

    /* ---------------- hedeleg / hideleg / mideleg ---------------- */
    csrw(CSR_HEDELEG, ~0UL);
    v = csrr(CSR_HEDELEG);
    printf("hcsr: hedeleg after writing all ones: 0x%lx\n", v);
    CHECK_MASK(10, "hedeleg bits 1-8, 12, 13, 15 writable; 9-11, 20-23 read-only zero",
               v, HEDELEG_DELEGABLE | (7UL << CAUSE_ECALL_FROM_S) |
                      (0xfUL << CAUSE_INSTRUCTION_GUEST_PAGE_FAULT),
               HEDELEG_DELEGABLE);
    csrw(CSR_HEDELEG, 0);
    CHECK(11, "hedeleg after writing 0", csrr(CSR_HEDELEG), 0);

    csrw(CSR_HIDELEG, ~0UL);
    v = csrr(CSR_HIDELEG);
    printf("hcsr: hideleg after writing all ones: 0x%lx\n", v);
    CHECK_MASK(12, "hideleg bits 12:0: only VSEI/VSTI/VSSI (10, 6, 2)", v, 0x1fff, MIP_VS_LEVEL_MASK);
    csrw(CSR_HIDELEG, 0);
    CHECK(13, "hideleg after writing 0", csrr(CSR_HIDELEG), 0);

    csrw(CSR_MIDELEG, 0);
    v = csrr(CSR_MIDELEG);
    printf("hcsr: mideleg after writing 0: 0x%lx (GEILEN %d)\n", v, geilen);
    CHECK_MASK(14, "mideleg VS bits (10, 6, 2) read-only one; SGEI (12) iff GEILEN>0",
               v, MIP_VS_LEVEL_MASK | (geilen ? MIP_SGEIP_MASK : 0), MIP_VS_LEVEL_MASK | (geilen ? MIP_SGEIP_MASK : 0));
    csrw(CSR_MIDELEG, MIP_S_LEVEL_MASK);

    /* ---------------- hvip / hip / hie / mip / mie / sip / sie ---------------- */
    csrw(CSR_HVIP, ~0UL);
    v = csrr(CSR_HVIP);
    printf("hcsr: hvip after writing all ones: 0x%lx\n", v);
    CHECK_MASK(15, "hvip bits 15:0: only VSEIP/VSTIP/VSSIP writable", v, 0xffff, MIP_VS_LEVEL_MASK);
    CHECK_MASK(16, "mip shows hvip's VS bits", csrr(CSR_MIP), MIP_VS_LEVEL_MASK, MIP_VS_LEVEL_MASK);
    CHECK_MASK(16, "hip shows hvip's VS bits", csrr(CSR_HIP), MIP_VS_LEVEL_MASK, MIP_VS_LEVEL_MASK);
    CHECK_MASK(17, "sip (HS view) has no VS bits", csrr(CSR_SIP), MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK, 0);
    csrw(CSR_HIP, 0);           /* only VSSIP is writable in hip */
    CHECK_MASK(18, "hip write 0 clears only VSSIP (alias of hvip.VSSIP)",
               csrr(CSR_HVIP), MIP_VS_LEVEL_MASK, MIP_VSTIP_MASK | MIP_VSEIP_MASK);
    csrw(CSR_HIP, ~0UL);
    CHECK_MASK(18, "hip write all ones sets VSSIP back", csrr(CSR_HVIP), MIP_VS_LEVEL_MASK, MIP_VS_LEVEL_MASK);
    csrw(CSR_HVIP, 0);
    CHECK_MASK(18, "hip after hvip = 0", csrr(CSR_HIP), 0xffff & ~MIP_SGEIP_MASK, 0);
    csrs(CSR_MIP, MIP_VSTIP_MASK | MIP_VSEIP_MASK);   /* read-only in mip (aliases of hip) */
    v = csrr(CSR_MIP);
    CHECK_DEV(19, "mip.VSTIP/VSEIP are read-only (writing them through mip has no effect)",
              v & (MIP_VSTIP_MASK | MIP_VSEIP_MASK), 0, MIP_VSTIP_MASK | MIP_VSEIP_MASK, "D2");
    csrw(CSR_HVIP, 0);
    csrs(CSR_MIP, MIP_VSSIP_MASK);
    CHECK(19, "mip.VSSIP is a writable alias of hvip.VSSIP", csrr(CSR_HVIP) & MIP_VS_LEVEL_MASK, MIP_VSSIP_MASK);
    csrw(CSR_HVIP, 0);

    csrw(CSR_MIE, 0);
    csrw(CSR_HIE, ~0UL);
    v = csrr(CSR_HIE);
    printf("hcsr: hie after writing all ones: 0x%lx\n", v);
    CHECK_MASK(20, "hie: VSEIE/VSTIE/VSSIE writable, no bits but those and SGEIE",
               v, ~MIP_SGEIP_MASK, MIP_VS_LEVEL_MASK);
    if (geilen)
        CHECK(20, "hie.SGEIE writable (GEILEN > 0)", v & MIP_SGEIP_MASK, MIP_SGEIP_MASK);
    CHECK(21, "mie after hie = all ones", csrr(CSR_MIE) & ~MIP_SGEIP_MASK, MIP_VS_LEVEL_MASK);
    csrw(CSR_SIE, ~0UL);
    CHECK_MASK(22, "sie (HS view) has no VS/SGEI bits", csrr(CSR_SIE), MIP_VS_LEVEL_MASK | MIP_SGEIP_MASK, 0);
    CHECK(22, "writing sie leaves hie alone", csrr(CSR_HIE) & MIP_VS_LEVEL_MASK, MIP_VS_LEVEL_MASK);
    csrw(CSR_HIE, 0);
    csrw(CSR_MIE, ~0UL);
    CHECK(23, "hie after mie = all ones", csrr(CSR_HIE) & ~MIP_SGEIP_MASK, MIP_VS_LEVEL_MASK);
    csrw(CSR_MIE, 0);
    CHECK(23, "hie after mie = 0", csrr(CSR_HIE), 0);

    /* ---------------- hgeie / hgeip ---------------- */
    printf("hcsr: hgeie after writing all ones: 0x%lx (GEILEN %d)\n", hgeie, geilen);
    CHECK(24, "hgeie: bit 0 read-only zero, bits GEILEN:1 writable",
          hgeie, geilen ? ((1UL << (geilen + 1)) - 2) : 0);
    CHECK(24, "hgeip has no bits beyond GEILEN", csrr(CSR_HGEIP) & ~hgeie, 0);
    hx_expect1();
    hx_exec(HX_M, I_CSRW(CSR_HGEIP), 0, 0);
    hx_check_trap(25, "csrw hgeip (read-only CSR) is illegal", LVL_M, CAUSE_ILLEGAL_INSTRUCTION);

    /* ---------------- hcounteren, htimedelta, trap value registers ---------------- */
    csrw(CSR_HCOUNTEREN, ~0UL);
    v = csrr(CSR_HCOUNTEREN);
    printf("hcsr: hcounteren after writing all ones: 0x%lx\n", v);
    CHECK(26, "hcounteren CY/TM/IR writable", v & 7, 7);
    CHECK_DEV(26, "hcounteren is a 32-bit register (bits 63:32 read zero)",
              v >> 32, 0, 0xffffffffUL, "D7");
    csrw(CSR_HCOUNTEREN, 0);
    CHECK(26, "hcounteren after writing 0", csrr(CSR_HCOUNTEREN), 0);
    csrw(CSR_HTIMEDELTA, 0x123456789abcdef0UL);
    CHECK(27, "htimedelta holds 64 bits", csrr(CSR_HTIMEDELTA), 0x123456789abcdef0UL);
    csrw(CSR_HTIMEDELTA, ~0UL);
    CHECK(27, "htimedelta holds -1", csrr(CSR_HTIMEDELTA), ~0UL);
    csrw(CSR_HTIMEDELTA, 0);
    /* WARL trap-value registers: written directly (a trap into M rewrites mtval2/mtinst) */
    {
        unsigned long r[4][3];
        csrw(CSR_HTVAL, 0x20001000UL);  r[0][0] = csrr(CSR_HTVAL);
        csrw(CSR_HTVAL, 0x3000);        r[0][1] = csrr(CSR_HTVAL);
        csrw(CSR_HTVAL, 0);             r[0][2] = csrr(CSR_HTVAL);
        csrw(CSR_HTINST, 0x20001000UL); r[1][0] = csrr(CSR_HTINST);
        csrw(CSR_HTINST, 0x3000);       r[1][1] = csrr(CSR_HTINST);
        csrw(CSR_HTINST, 0);            r[1][2] = csrr(CSR_HTINST);
        csrw(CSR_MTVAL2, 0x20001000UL); r[2][0] = csrr(CSR_MTVAL2);
        csrw(CSR_MTVAL2, 0x3000);       r[2][1] = csrr(CSR_MTVAL2);
        csrw(CSR_MTVAL2, 0);            r[2][2] = csrr(CSR_MTVAL2);
        csrw(CSR_MTINST, 0x20001000UL); r[3][0] = csrr(CSR_MTINST);
        csrw(CSR_MTINST, 0x3000);       r[3][1] = csrr(CSR_MTINST);
        csrw(CSR_MTINST, 0);            r[3][2] = csrr(CSR_MTINST);
        static const char *const tvn[] = { "htval", "htinst", "mtval2", "mtinst" };
        for (int i = 0; i < 4; i++) {
            printf("hcsr: %s (WARL) reads 0x%lx after 0x20001000, 0x%lx after 0x3000\n",
                   tvn[i], r[i][0], r[i][1]);
            CHECK(28, tvn[i], r[i][2], 0);
        }
    }

    /* ---------------- hgatp ---------------- */
    csrw(CSR_HGATP, 0);
    CHECK(29, "hgatp Bare", csrr(CSR_HGATP), 0);
    csrw(CSR_HGATP, (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | 0x80004UL);
    CHECK(30, "hgatp Sv39x4, PPN 0x80004", csrr(CSR_HGATP), (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | 0x80004UL);
    csrw(CSR_HGATP, (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | 0x80007UL);
    v = csrr(CSR_HGATP);
    CHECK_DEV(31, "hgatp PPN[1:0] read as zero in Sv39x4", v,
              (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | 0x80004UL, (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | 0x80007UL, "D3");
    csrw(CSR_HGATP, (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | HGATP_VMID_MASK | 0x80004UL);
    v = csrr(CSR_HGATP);
    unsigned long vmid = ((v & HGATP_VMID_MASK) >> HGATP_VMID_SHIFT);
    printf("hcsr: hgatp after writing VMID all ones: 0x%lx (VMIDLEN %d)\n", v, hx_popcount(vmid));
    CHECK(32, "hgatp.VMID: least-significant bits implemented first", is_contiguous_low(vmid), 1);
    csrw(CSR_HGATP, (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | (3UL << 58) | 0x80004UL);
    CHECK_DEV(33, "hgatp bits 59:58 read zero", (csrr(CSR_HGATP) >> 58) & 3, 0, 3, "D3");
    int gmode_ok[16] = { 0 };
    gmode_ok[0] = 1;
    for (unsigned long m = 8; m <= 10; m++) {
        csrw(CSR_HGATP, (m << HGATP_MODE_SHIFT) | 0x80004UL);
        gmode_ok[m] = (csrr(CSR_HGATP) >> HGATP_MODE_SHIFT) == m;
    }
    printf("hcsr: hgatp modes supported: Sv39x4 %d Sv48x4 %d Sv57x4 %d\n",
           gmode_ok[8], gmode_ok[9], gmode_ok[10]);
    CHECK(34, "hgatp Sv39x4 supported", gmode_ok[8], 1);
    CHECK(34, "hgatp Sv48x4 supported", gmode_ok[9], 1);
    static const unsigned long badm[] = { 1, 4, 7, 11, 15 };
    for (int i = 0; i < 5; i++) {
        csrw(CSR_HGATP, (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | 0x80004UL);
        csrw(CSR_HGATP, (badm[i] << HGATP_MODE_SHIFT) | 0x80008UL);
        v = csrr(CSR_HGATP);
        unsigned long m = v >> SATP_MODE_SHIFT;
        hx_cur = 35;
        if (!gmode_ok[m]) {
#ifdef QEMU_DEVIATIONS
            if (m == badm[i]) {
                printf("SPEC hcsr test 35: hgatp MODE %lu (reserved) reads back as written, "
                       "QEMU 7.2 deviation D3 (MODE is WARL: must read a supported mode)\n", m);
                hx_ndev++;
                continue;
            }
#endif
            hx_fail(35, "hgatp after writing reserved MODE %lu reads 0x%lx: MODE is not a "
                    "supported value (WARL)%s", badm[i], v,
                    m == badm[i] ? " -- QEMU 7.2's known deviation D3" : "");
        }
    }
    csrs(CSR_MSTATUS, MSTATUS_TVM_MASK);
    csrw(CSR_HGATP, (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | 0x80004UL);
    CHECK(36, "hgatp accessible from M with mstatus.TVM=1", csrr(CSR_HGATP),
          (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | 0x80004UL);
    csrc(CSR_MSTATUS, MSTATUS_TVM_MASK);
    csrw(CSR_HGATP, 0);

    /* ---------------- vsatp ---------------- */
    csrw(CSR_VSATP, (SATP_MODE_SV39 << SATP_MODE_SHIFT) | SATP_ASID_MASK | 0x80123UL);
    v = csrr(CSR_VSATP);
    printf("hcsr: vsatp after Sv39 with ASID all ones: 0x%lx (ASIDLEN %d)\n", v,
           hx_popcount(((v & SATP_ASID_MASK) >> SATP_ASID_SHIFT)));
    CHECK(37, "vsatp MODE Sv39 + PPN", v & ~SATP_ASID_MASK, (SATP_MODE_SV39 << SATP_MODE_SHIFT) | 0x80123UL);
    CHECK(37, "vsatp.ASID: least-significant bits implemented first",
          is_contiguous_low(((v & SATP_ASID_MASK) >> SATP_ASID_SHIFT)), 1);
    int vmode_ok[16] = { 0 };
    vmode_ok[0] = 1;
    for (unsigned long m = 8; m <= 10; m++) {
        csrw(CSR_VSATP, (m << SATP_MODE_SHIFT) | 0x80123UL);
        vmode_ok[m] = (csrr(CSR_VSATP) >> SATP_MODE_SHIFT) == m;
    }
    csrw(CSR_VSATP, (SATP_MODE_SV39 << SATP_MODE_SHIFT) | 0x80123UL);
    csrw(CSR_VSATP, (1UL << SATP_MODE_SHIFT) | 0x80456UL);
    v = csrr(CSR_VSATP);
    printf("hcsr: vsatp after writing reserved MODE 1: 0x%lx\n", v);
    CHECK_DEV(38, "vsatp after writing reserved MODE 1 (V=0): ignored, or MODE legal",
              v == ((SATP_MODE_SV39 << SATP_MODE_SHIFT) | 0x80123UL) || vmode_ok[v >> SATP_MODE_SHIFT], 1, 0, "D3");
    csrw(CSR_VSATP, 0);

    /* ---------------- vsstatus ---------------- */
    const unsigned long vss_rw = SSTATUS_SIE_MASK | SSTATUS_SPIE_MASK | SSTATUS_SPP_MASK | SSTATUS_SUM_MASK | SSTATUS_MXR_MASK;
    const unsigned long vss_all = vss_rw | MSTATUS_UBE_MASK | SSTATUS_VS_MASK | MSTATUS_FS_MASK | SSTATUS_XS_MASK |
                                  MSTATUS_UXL_MASK | SSTATUS_SD_MASK;
    csrw(CSR_VSSTATUS, ~0UL);
    v = csrr(CSR_VSSTATUS);
    printf("hcsr: vsstatus after writing all ones: 0x%lx\n", v);
    CHECK(39, "vsstatus SIE/SPIE/SPP/SUM/MXR writable", v & vss_rw, vss_rw);
    CHECK_DEV(39, "vsstatus.UXL stays 2 (WARL, only RV64 VU-mode)",
              (v & VSSTATUS_UXL_MASK) >> VSSTATUS_UXL_SHIFT, XLEN_64, 3, "D4");
    CHECK_DEV(40, "vsstatus WPRI bits read zero", v & ~vss_all, 0, ~vss_all & ~SSTATUS_SD_MASK, "D4");
    csrw(CSR_VSSTATUS, XLEN_64 << VSSTATUS_UXL_SHIFT);
    csrw(CSR_VSSTATUS, 0);
    v = csrr(CSR_VSSTATUS);
    CHECK(40, "vsstatus after writing 0", v & (vss_rw | VSSTATUS_UXL_MASK), XLEN_64 << VSSTATUS_UXL_SHIFT);

    /* ---------------- vstvec / vsepc / vscause / vstval / vsscratch ---------------- */
    csrw(CSR_VSTVEC, 0x80001001UL);
    CHECK(41, "vstvec vectored", csrr(CSR_VSTVEC), 0x80001001UL);
    csrw(CSR_VSTVEC, 0x80002000UL);
    CHECK(41, "vstvec direct", csrr(CSR_VSTVEC), 0x80002000UL);
    csrw(CSR_VSTVEC, 0x80003002UL);
    v = csrr(CSR_VSTVEC);
    CHECK_DEV(41, "vstvec.MODE after writing reserved mode 2 is legal (0 or 1)",
              (v & 3) < 2, 1, 0, "D5");
    csrw(CSR_VSEPC, 0x80001235UL);
    CHECK_DEV(42, "vsepc bit 0 reads zero", csrr(CSR_VSEPC), 0x80001234UL, 0x80001235UL, "D5");
    csrw(CSR_VSEPC, 0x80001236UL);
    CHECK(42, "vsepc bit 1 holds (IALIGN = 16)", csrr(CSR_VSEPC), 0x80001236UL);
    csrw(CSR_VSCAUSE, MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_TIMER);
    CHECK(43, "vscause interrupt 5", csrr(CSR_VSCAUSE),
          MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_TIMER);
    csrw(CSR_VSCAUSE, CAUSE_LOAD_PAGE_FAULT);
    CHECK(43, "vscause 13", csrr(CSR_VSCAUSE), CAUSE_LOAD_PAGE_FAULT);
    csrw(CSR_VSTVAL, 0x123456789abcdef0UL);
    CHECK(44, "vstval", csrr(CSR_VSTVAL), 0x123456789abcdef0UL);
    csrw(CSR_VSSCRATCH, 0xfedcba9876543210UL);
    CHECK(45, "vsscratch", csrr(CSR_VSSCRATCH), 0xfedcba9876543210UL);

    /* ---------------- vsie / vsip ---------------- */
    csrw(CSR_HIDELEG, 0);
    csrw(CSR_HIE, 0);
    csrw(CSR_VSIE, ~0UL);
    CHECK(46, "vsie read-only zero with hideleg = 0", csrr(CSR_VSIE), 0);
    CHECK(46, "vsie write with hideleg = 0 leaves hie alone", csrr(CSR_HIE), 0);
    csrw(CSR_HIDELEG, MIP_VS_LEVEL_MASK);
    csrw(CSR_VSIE, ~0UL);
    CHECK_MASK(47, "vsie with hideleg = VS bits: SEIE/STIE/SSIE", csrr(CSR_VSIE), 0xffff, MIP_S_LEVEL_MASK);
    CHECK(47, "vsie bits alias hie VS bits", csrr(CSR_HIE) & ~MIP_SGEIP_MASK, MIP_VS_LEVEL_MASK);
    csrw(CSR_VSIE, 0);
    CHECK(47, "vsie = 0 clears hie VS bits", csrr(CSR_HIE) & MIP_VS_LEVEL_MASK, 0);
    csrw(CSR_HVIP, MIP_VS_LEVEL_MASK);
    v = csrr(CSR_VSIP);
    CHECK_DEV(48, "vsip shows hip.VSEIP/VSTIP/VSSIP as SEIP/STIP/SSIP",
              v & 0xffff, MIP_S_LEVEL_MASK, MIP_SSIP_MASK, "D6");
    csrw(CSR_VSIP, 0);
    CHECK(49, "vsip write 0 clears only VSSIP", csrr(CSR_HVIP) & MIP_VS_LEVEL_MASK, MIP_VSTIP_MASK | MIP_VSEIP_MASK);
    csrw(CSR_VSIP, ~0UL);
    CHECK(49, "vsip write all ones sets VSSIP only", csrr(CSR_HVIP) & MIP_VS_LEVEL_MASK, MIP_VS_LEVEL_MASK);
    csrw(CSR_HIDELEG, 0);
    CHECK(50, "vsip read-only zero with hideleg = 0", csrr(CSR_VSIP), 0);
    csrw(CSR_HVIP, 0);
    csrw(CSR_VSIP, ~0UL);
    CHECK(50, "vsip write with hideleg = 0 leaves hvip alone", csrr(CSR_HVIP), 0);
    printf("hcsr: Sstc %s\n", hx_has_sstc ? "present" : "absent");
    if (hx_has_sstc) {
        csrw(CSR_VSTIMECMP, 0x0123456789abcdefUL);
        CHECK(51, "vstimecmp holds 64 bits", csrr(CSR_VSTIMECMP), 0x0123456789abcdefUL);
        csrw(CSR_VSTIMECMP, ~0UL);
    }

    /* ---------------- henvcfg, mstatus.MPV/GVA ---------------- */
    const unsigned long henv_ok = MENVCFG_FIOM_MASK | MENVCFG_CBIE_MASK | MENVCFG_CBCFE_MASK | MENVCFG_CBZE_MASK |
                                  MENVCFG_PBMTE_MASK | MENVCFG_STCE_MASK;
    csrw(CSR_MENVCFG, ~0UL);
    unsigned long menv = csrr(CSR_MENVCFG);
    csrw(CSR_HENVCFG, ~0UL);
    v = csrr(CSR_HENVCFG);
    printf("hcsr: menvcfg 0x%lx, henvcfg 0x%lx after writing all ones\n", menv, v);
    CHECK(52, "henvcfg: no bits besides FIOM/CBIE/CBCFE/CBZE/PBMTE/STCE", v & ~henv_ok, 0);
    CHECK(52, "henvcfg.FIOM writable", v & MENVCFG_FIOM_MASK, MENVCFG_FIOM_MASK);
    if (hx_has_sstc)
        CHECK(52, "henvcfg.STCE writable (Sstc, menvcfg.STCE = 1)", v & MENVCFG_STCE_MASK, MENVCFG_STCE_MASK);
    csrw(CSR_MENVCFG, 0);
    csrw(CSR_HENVCFG, ~0UL);
    CHECK_DEV(53, "henvcfg.STCE read-only zero while menvcfg.STCE = 0",
              csrr(CSR_HENVCFG) & MENVCFG_STCE_MASK, 0, MENVCFG_STCE_MASK, "D8");
    csrw(CSR_HENVCFG, 0);

    csrs(CSR_MSTATUS, MSTATUS_MPV_MASK | MSTATUS_GVA_MASK);
    CHECK(54, "mstatus.MPV and GVA writable", csrr(CSR_MSTATUS) & (MSTATUS_MPV_MASK | MSTATUS_GVA_MASK),
          MSTATUS_MPV_MASK | MSTATUS_GVA_MASK);
    csrc(CSR_MSTATUS, MSTATUS_MPV_MASK | MSTATUS_GVA_MASK);
    CHECK(54, "mstatus.MPV and GVA clear", csrr(CSR_MSTATUS) & (MSTATUS_MPV_MASK | MSTATUS_GVA_MASK), 0);

    /* ---------------- accessibility from HS ---------------- */
    static const unsigned hcsrs[] = {
        CSR_HSTATUS, CSR_HEDELEG, CSR_HIDELEG, CSR_HIE, CSR_HTIMEDELTA, CSR_HCOUNTEREN,
        CSR_HGEIE, CSR_HENVCFG, CSR_HTVAL, CSR_HIP, CSR_HVIP, CSR_HTINST, CSR_HGATP,
        CSR_HGEIP, CSR_VSSTATUS, CSR_VSIE, CSR_VSTVEC, CSR_VSSCRATCH, CSR_VSEPC,
        CSR_VSCAUSE, CSR_VSTVAL, CSR_VSIP, CSR_VSATP,
    };
    for (unsigned i = 0; i < sizeof(hcsrs) / sizeof(hcsrs[0]); i++) {
        int t;
        csr_try_read(HX_HS, hcsrs[i], &t);
        if (t)
            hx_fail(55, "csrr 0x%x from HS-mode traps (cause 0x%lx)", hcsrs[i], hx_log[0].cause);
    }
    if (hx_has_sstc) {
        int t;
        csrw(CSR_MENVCFG, MENVCFG_STCE_MASK);
        csr_try_read(HX_HS, CSR_VSTIMECMP, &t);
        if (t)
            hx_fail(55, "csrr vstimecmp from HS-mode traps (cause 0x%lx)", hx_log[0].cause);
        csrw(CSR_MENVCFG, 0);
    }
    /* hstatus written from HS: the VS CSRs are HS's to manage */
    hx_exec(HX_HS, I_CSRW(CSR_HSTATUS), HSTATUS_VTSR_MASK | (XLEN_64 << HSTATUS_VSXL_SHIFT), 0);
    CHECK(56, "hstatus written from HS", csrr(CSR_HSTATUS) & HSTATUS_VTSR_MASK, HSTATUS_VTSR_MASK);
    csrw(CSR_HSTATUS, XLEN_64 << HSTATUS_VSXL_SHIFT);
    hx_expect1();
    hx_exec(HX_M, I_CSRR(CSR_HTIMEDELTAH), 0, 0);
    hx_check_trap(57, "htimedeltah does not exist in RV64", LVL_M, CAUSE_ILLEGAL_INSTRUCTION);

    /* medeleg: the H chapter's delegation paths (8.5.2 "Guest-page-fault traps
     * may be delegated from M-mode to HS-mode under the control of CSR
     * medeleg"; 8.6.1 "HS-mode and VS-mode ECALLs use different cause values
     * so they can be delegated separately"; virtual-instruction traps "are
     * expected ordinarily" to be delegated to HS) need these bits writable */
    csrw(CSR_MEDELEG, ~0UL);
    v = csrr(CSR_MEDELEG);
    csrw(CSR_MEDELEG, 0);
    printf("hcsr: medeleg after writing all ones: 0x%lx\n", v);
    static const int mdel[] = { CAUSE_ECALL_FROM_U, CAUSE_ECALL_FROM_VS, CAUSE_INSTRUCTION_PAGE_FAULT, CAUSE_LOAD_PAGE_FAULT, CAUSE_STORE_PAGE_FAULT,
                                CAUSE_INSTRUCTION_GUEST_PAGE_FAULT, CAUSE_LOAD_GUEST_PAGE_FAULT, CAUSE_VIRTUAL_INSTRUCTION, CAUSE_STORE_GUEST_PAGE_FAULT };
    for (unsigned i = 0; i < sizeof(mdel) / sizeof(mdel[0]); i++)
        if (!(v & (1UL << mdel[i])))
            hx_fail(58, "medeleg bit %d (cause %d) is not writable: that trap cannot be "
                    "delegated to HS", mdel[i], mdel[i]);
    CHECK_DEV(58, "medeleg bit 11 (ecall from M) read-only zero", v & (1UL << CAUSE_ECALL_FROM_M), 0, 1UL << CAUSE_ECALL_FROM_M,
              "D32");

    hx_reset_state();
    return hx_done();
}

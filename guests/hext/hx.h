/*
 * hx.h - M-mode harness for the hypervisor-extension (H 1.0) test guests.
 *
 * The guests run in M-mode (common/start.S calls main) and use this harness
 * to run code in HS, U, VS or VU mode, to take the resulting traps at M,
 * HS or VS level and to check the outcome against the ratified privileged
 * spec (20211203, "Hypervisor Extension, Version 1.0").
 *
 *   hx_init("name")            PMP open, counters on, state reset
 *   hx_run(mode, fn, a0, a1)   call fn(a0, a1) in mode (HX_M/HS/U/VS/VU);
 *                              returns fn's return value (or HX_ABORTED)
 *   hx_exec(mode, insn, a0, a1) run one 32-bit instruction (then ret) in
 *                              mode; a0/a1 are its inputs, a0 its result
 *   hx_expect(n, policy, arg)  allow the next n traps (at any level); each
 *                              is logged in hx_log[] and resumed per policy
 *   CHECK(n, what, got, exp)   test number n (1..254)
 *   CHECK_DEV(n, what, got, exp, qemu, "Dk")  spec value exp; under
 *                              -DQEMU_DEVIATIONS QEMU 7.2's known answer
 *                              qemu is accepted and reported as "SPEC ..."
 *   hx_done()                  "PASS name" (0) or "FAIL name test n" (n)
 *
 * Traps nobody expected print "FAIL <name> test <n>: unexpected trap ..."
 * and abort the hx_run in progress (it returns HX_ABORTED); the test goes on.
 */
#ifndef HX_H
#define HX_H

#include "rvh.h"

/* ---------------- CSR numbers ---------------- */
#define CSR_SSTATUS     0x100
#define CSR_SIE         0x104
#define CSR_STVEC       0x105
#define CSR_SCOUNTEREN  0x106
#define CSR_SENVCFG     0x10a
#define CSR_SSCRATCH    0x140
#define CSR_SEPC        0x141
#define CSR_SCAUSE      0x142
#define CSR_STVAL       0x143
#define CSR_SIP         0x144
#define CSR_STIMECMP    0x14d
#define CSR_SATP        0x180

#define CSR_VSSTATUS    0x200
#define CSR_VSIE        0x204
#define CSR_VSTVEC      0x205
#define CSR_VSSCRATCH   0x240
#define CSR_VSEPC       0x241
#define CSR_VSCAUSE     0x242
#define CSR_VSTVAL      0x243
#define CSR_VSIP        0x244
#define CSR_VSTIMECMP   0x24d
#define CSR_VSATP       0x280

#define CSR_HSTATUS     0x600
#define CSR_HEDELEG     0x602
#define CSR_HIDELEG     0x603
#define CSR_HIE         0x604
#define CSR_HTIMEDELTA  0x605
#define CSR_HCOUNTEREN  0x606
#define CSR_HGEIE       0x607
#define CSR_HENVCFG     0x60a
#define CSR_HTIMEDELTAH 0x615
#define CSR_HTVAL       0x643
#define CSR_HIP         0x644
#define CSR_HVIP        0x645
#define CSR_HTINST      0x64a
#define CSR_HGATP       0x680
#define CSR_HGEIP       0xe12

#define CSR_MSTATUS     0x300
#define CSR_MISA        0x301
#define CSR_MEDELEG     0x302
#define CSR_MIDELEG     0x303
#define CSR_MIE         0x304
#define CSR_MTVEC       0x305
#define CSR_MCOUNTEREN  0x306
#define CSR_MENVCFG     0x30a
#define CSR_MSCRATCH    0x340
#define CSR_MEPC        0x341
#define CSR_MCAUSE      0x342
#define CSR_MTVAL       0x343
#define CSR_MIP         0x344
#define CSR_MTINST      0x34a
#define CSR_MTVAL2      0x34b
#define CSR_PMPCFG0     0x3a0
#define CSR_PMPADDR0    0x3b0

#define CSR_CYCLE       0xc00
#define CSR_TIME        0xc01
#define CSR_INSTRET     0xc02
#define CSR_HPMCOUNTER3 0xc03
#define CSR_CYCLEH      0xc80
#define CSR_TIMEH       0xc81

/* ---------------- CSR access by number (macro-expanded) ---------------- */
#define HX_STR_(x)  #x
#define HX_STR(x)   HX_STR_(x)
#define csrr(csr) ({ unsigned long __v;                                  \
    __asm__ __volatile__("csrr %0, " HX_STR(csr) : "=r"(__v) :: "memory"); \
    __v; })
#define csrw(csr, val) ({ unsigned long __v = (unsigned long)(val);      \
    __asm__ __volatile__("csrw " HX_STR(csr) ", %0" :: "r"(__v) : "memory"); })
#define csrs(csr, val) ({ unsigned long __v = (unsigned long)(val);      \
    __asm__ __volatile__("csrs " HX_STR(csr) ", %0" :: "r"(__v) : "memory"); })
#define csrc(csr, val) ({ unsigned long __v = (unsigned long)(val);      \
    __asm__ __volatile__("csrc " HX_STR(csr) ", %0" :: "r"(__v) : "memory"); })
#define csrrw(csr, val) ({ unsigned long __v = (unsigned long)(val);     \
    __asm__ __volatile__("csrrw %0, " HX_STR(csr) ", %0"                 \
                         : "+r"(__v) :: "memory"); __v; })

/* ---------------- bits ---------------- */
#define MSTATUS_SIE     (1UL << 1)
#define MSTATUS_MIE     (1UL << 3)
#define MSTATUS_SPIE    (1UL << 5)
#define MSTATUS_UBE     (1UL << 6)
#define MSTATUS_MPIE    (1UL << 7)
#define MSTATUS_SPP     (1UL << 8)
#define MSTATUS_MPP     (3UL << 11)
#define MSTATUS_MPP_S   (1UL << 11)
#define MSTATUS_FS      (3UL << 13)
#define MSTATUS_MPRV    (1UL << 17)
#define MSTATUS_SUM     (1UL << 18)
#define MSTATUS_MXR     (1UL << 19)
#define MSTATUS_TVM     (1UL << 20)
#define MSTATUS_TW      (1UL << 21)
#define MSTATUS_TSR     (1UL << 22)
#define MSTATUS_UXL     (3UL << 32)
#define MSTATUS_GVA     (1UL << 38)
#define MSTATUS_MPV     (1UL << 39)

#define SSTATUS_SIE     MSTATUS_SIE
#define SSTATUS_SPIE    MSTATUS_SPIE
#define SSTATUS_SPP     MSTATUS_SPP
#define SSTATUS_SUM     MSTATUS_SUM
#define SSTATUS_MXR     MSTATUS_MXR

#define HSTATUS_VSBE    (1UL << 5)
#define HSTATUS_GVA     (1UL << 6)
#define HSTATUS_SPV     (1UL << 7)
#define HSTATUS_SPVP    (1UL << 8)
#define HSTATUS_HU      (1UL << 9)
#define HSTATUS_VGEIN   (0x3fUL << 12)
#define HSTATUS_VTVM    (1UL << 20)
#define HSTATUS_VTW     (1UL << 21)
#define HSTATUS_VTSR    (1UL << 22)
#define HSTATUS_VSXL    (3UL << 32)

#define IRQ_SSI   1
#define IRQ_VSSI  2
#define IRQ_MSI   3
#define IRQ_STI   5
#define IRQ_VSTI  6
#define IRQ_MTI   7
#define IRQ_SEI   9
#define IRQ_VSEI  10
#define IRQ_MEI   11
#define IRQ_SGEI  12
#define MIP_SSIP  (1UL << IRQ_SSI)
#define MIP_VSSIP (1UL << IRQ_VSSI)
#define MIP_STIP  (1UL << IRQ_STI)
#define MIP_VSTIP (1UL << IRQ_VSTI)
#define MIP_SEIP  (1UL << IRQ_SEI)
#define MIP_VSEIP (1UL << IRQ_VSEI)
#define MIP_SGEIP (1UL << IRQ_SGEI)
#define VS_INTS   (MIP_VSSIP | MIP_VSTIP | MIP_VSEIP)
#define S_INTS    (MIP_SSIP | MIP_STIP | MIP_SEIP)
#define INTR      (1UL << 63)

#define ENVCFG_FIOM  (1UL << 0)
#define ENVCFG_CBIE  (3UL << 4)
#define ENVCFG_CBCFE (1UL << 6)
#define ENVCFG_CBZE  (1UL << 7)
#define ENVCFG_PBMTE (1UL << 62)
#define ENVCFG_STCE  (1UL << 63)

/* exception causes */
#define CAUSE_IACCESS   1
#define CAUSE_ILLEGAL   2
#define CAUSE_BREAK     3
#define CAUSE_LACCESS   5
#define CAUSE_SACCESS   7
#define CAUSE_ECALL_U   8
#define CAUSE_ECALL_S   9
#define CAUSE_ECALL_VS  10
#define CAUSE_ECALL_M   11
#define CAUSE_IPF       12
#define CAUSE_LPF       13
#define CAUSE_SPF       15
#define CAUSE_IGPF      20
#define CAUSE_LGPF      21
#define CAUSE_VIRTUAL   22
#define CAUSE_SGPF      23

/* ---------------- page tables ---------------- */
#define PTE_V   (1UL << 0)
#define PTE_R   (1UL << 1)
#define PTE_W   (1UL << 2)
#define PTE_X   (1UL << 3)
#define PTE_U   (1UL << 4)
#define PTE_G   (1UL << 5)
#define PTE_A   (1UL << 6)
#define PTE_D   (1UL << 7)
#define PTE_RWX (PTE_R | PTE_W | PTE_X)
#define PTE_AD  (PTE_A | PTE_D)
#define PTE_PPN_MASK (((1UL << 44) - 1) << 10)
#define SATP_MODE_SV39  8UL
#define SATP_MODE_SV48  9UL
#define HGATP_MODE_SV39X4 8UL
#define HGATP_MODE_SV48X4 9UL
#define HGATP_MODE_SV57X4 10UL

static inline unsigned long pte_pa(unsigned long pte)
{
    return ((pte & PTE_PPN_MASK) >> 10) << 12;
}

/*
 * A page-table tree: `levels` 3 (Sv39/Sv39x4) or 4 (Sv48/Sv48x4); x4 = 1
 * for G-stage trees (16 KiB root, 2 more bits of address).  Tables come
 * from a pool at host-physical address pool_hpa; the walker sees them at
 * pool_hpa + walker_off (non-zero for VS-stage tables in guest memory,
 * whose pointers are guest-physical addresses).
 */
struct hx_pt {
    int levels, x4;
    unsigned long *root;            /* host (M-mode) pointer */
    unsigned long pool_hpa, pool_end, next;
    long walker_off;
};
void hx_pt_init(struct hx_pt *pt, int levels, int x4, unsigned long pool_hpa,
                unsigned long pool_bytes, long walker_off);
/* a zeroed 4 KiB table from pt's pool (host pointer) */
unsigned long *hx_pt_alloc(struct hx_pt *pt);
/* PTE for va at `level` (0 = 4K leaf, 1 = 2M, 2 = 1G), creating tables */
unsigned long *hx_pt_walk(struct hx_pt *pt, unsigned long va, int level);
/* map [va, va+size) -> pa with leaves of `level` (V added to flags) */
void hx_pt_map(struct hx_pt *pt, unsigned long va, unsigned long pa,
               unsigned long size, int level, unsigned long flags);
/* the root as the walker sees it, as a PPN */
unsigned long hx_pt_root_ppn(struct hx_pt *pt);

/* ---------------- modes ---------------- */
#define HX_U   0
#define HX_HS  1
#define HX_M   3
#define HX_VU  4
#define HX_VS  5

/* trap levels in hx_rec.level */
#define LVL_M   3
#define LVL_HS  1
#define LVL_VS  5

#define HX_ABORTED  0xdeadab07deadab07UL

struct hx_rec {
    unsigned long level;    /* LVL_M / LVL_HS / LVL_VS */
    unsigned long cause, epc, tval;
    unsigned long tval2;    /* mtval2 (M) / htval (HS) / 0 (VS) */
    unsigned long tinst;    /* mtinst (M) / htinst (HS) / 0 (VS) */
    unsigned long status;   /* mstatus (M) / sstatus (HS) / vsstatus as sstatus (VS), on entry */
    unsigned long hstatus;  /* hstatus on entry (M, HS) */
    unsigned long pv;       /* MPV (M) / SPV (HS) / 1 (VS) */
    unsigned long pp;       /* MPP (M) / SPP (HS, VS) */
    unsigned long gva;      /* mstatus.GVA (M) / hstatus.GVA (HS) / 0 */
    unsigned long a0;       /* a0 of the trapping context */
};

/* resume policies for expected exceptions (interrupts return to epc and
 * disable their source's enable bit at the level that took them) */
#define HX_SKIP     0   /* epc += arg (instruction length, 4 by default) */
#define HX_RA       1   /* epc = ra of the trapping context (fetch faults) */
#define HX_AT       2   /* epc = arg */

#define HX_LOG_MAX  8
extern volatile long hx_armed;
extern volatile long hx_nlog;
extern struct hx_rec hx_log[HX_LOG_MAX];
/* M-level record of the ecall that ended the last hx_run (cause 8/9/10/11 tells
 * the mode the code was in when it returned; pv/pp are MPV/MPP) */
extern struct hx_rec hx_exit;
extern void hx_lower_return(void);   /* return address given to hx_run's fn */
extern void hx_mtrap(void), hx_strap(void), hx_vstrap(void);
extern unsigned long hx_lower_sp;

void hx_init(const char *name);
void hx_reset_state(void);
void hx_expect(long n, int policy, unsigned long arg);
static inline void hx_expect1(void) { hx_expect(1, HX_SKIP, 4); }
static inline void hx_expect_none(void) { hx_expect(0, HX_SKIP, 4); }

long hx_run(long mode, void *fn, unsigned long a0, unsigned long a1);
long hx_exec(long mode, unsigned int insn, unsigned long a0, unsigned long a1);
/* the exec buffer (4 KiB, code) for hand-placed instruction sequences */
extern unsigned int hx_exec_buf[];
void hx_sync_code(void);   /* fence.i */

/* ---------------- checks ---------------- */
extern const char *hx_name;
extern int hx_first_fail, hx_nfail, hx_ndev, hx_verbose;
extern volatile int hx_cur;          /* test number blamed for unexpected traps */
extern int hx_has_sstc;              /* stimecmp/vstimecmp implemented */
static inline void hx_test(int n) { hx_cur = n; }
void hx_check(int n, const char *what, unsigned long got, unsigned long exp);
void hx_check_dev(int n, const char *what, unsigned long got, unsigned long exp,
                  unsigned long qemu, const char *dev);
/* spec value exp; QEMU 7.2 gives some other, unpredictable value */
void hx_check_dev_any(int n, const char *what, unsigned long got, unsigned long exp,
                      const char *dev);
void hx_check_mask(int n, const char *what, unsigned long got,
                   unsigned long mask, unsigned long exp);
void hx_fail(int n, const char *fmt, ...);
void hx_note(const char *fmt, ...);
int hx_done(void);
#define CHECK(n, what, got, exp)  hx_check(n, what, (unsigned long)(got), (unsigned long)(exp))
#define CHECK_DEV(n, what, got, exp, q, dev) \
    hx_check_dev(n, what, (unsigned long)(got), (unsigned long)(exp), (unsigned long)(q), dev)
#define CHECK_DEV_ANY(n, what, got, exp, dev) \
    hx_check_dev_any(n, what, (unsigned long)(got), (unsigned long)(exp), dev)
#define CHECK_MASK(n, what, got, mask, exp) \
    hx_check_mask(n, what, (unsigned long)(got), (unsigned long)(mask), (unsigned long)(exp))

/* check that exactly one trap happened with the given level and cause;
 * returns the record (or a zeroed dummy) */
struct hx_rec *hx_check_trap(int n, const char *what, long level, unsigned long cause);
void hx_check_notrap(int n, const char *what);
/* like hx_check_trap, but QEMU 7.2 is known to take the trap at qlevel with
 * qcause instead (qlevel -1: QEMU takes no trap); accepted with QEMU_DEVIATIONS */
struct hx_rec *hx_check_trap_dev(int n, const char *what, long level, unsigned long cause,
                                 long qlevel, unsigned long qcause, const char *dev);
/* the spec wants no trap; QEMU 7.2 is known to trap at qlevel with qcause.
 * Returns 1 when no trap happened. */
int hx_check_notrap_dev(int n, const char *what, long qlevel, unsigned long qcause,
                        const char *dev);

/* ---------------- instruction encodings ---------------- */
#define R_A0 10
#define R_A1 11
#define R_A2 12
#define OP_SYSTEM 0x73
#define I_CSRRW(rd, csr, rs1) (((unsigned)(csr) << 20) | ((rs1) << 15) | (1 << 12) | ((rd) << 7) | OP_SYSTEM)
#define I_CSRRS(rd, csr, rs1) (((unsigned)(csr) << 20) | ((rs1) << 15) | (2 << 12) | ((rd) << 7) | OP_SYSTEM)
#define I_CSRRC(rd, csr, rs1) (((unsigned)(csr) << 20) | ((rs1) << 15) | (3 << 12) | ((rd) << 7) | OP_SYSTEM)
#define I_CSRR(csr)        I_CSRRS(R_A0, csr, 0)       /* csrr a0, csr */
#define I_CSRW(csr)        I_CSRRW(0, csr, R_A0)       /* csrw csr, a0 */
#define I_SRET        0x10200073u
#define I_MRET        0x30200073u
#define I_WFI         0x10500073u
#define I_SFENCE_VMA  0x12000073u          /* sfence.vma x0, x0 */
#define I_HFENCE_VVMA 0x22000073u          /* hfence.vvma x0, x0 */
#define I_HFENCE_GVMA 0x62000073u          /* hfence.gvma x0, x0 */
#define I_ECALL       0x00000073u
/* HLV/HLVX/HSV: funct7, rs2 selector, rs1 = a0, rd = a0 (loads) or rs2 = a1 (stores) */
#define I_HX(f7, rs2, rs1, rd) (((unsigned)(f7) << 25) | ((rs2) << 20) | ((rs1) << 15) | (4 << 12) | ((rd) << 7) | OP_SYSTEM)
#define I_HLV_B    I_HX(0x30, 0, R_A0, R_A0)
#define I_HLV_BU   I_HX(0x30, 1, R_A0, R_A0)
#define I_HLV_H    I_HX(0x32, 0, R_A0, R_A0)
#define I_HLV_HU   I_HX(0x32, 1, R_A0, R_A0)
#define I_HLVX_HU  I_HX(0x32, 3, R_A0, R_A0)
#define I_HLV_W    I_HX(0x34, 0, R_A0, R_A0)
#define I_HLV_WU   I_HX(0x34, 1, R_A0, R_A0)
#define I_HLVX_WU  I_HX(0x34, 3, R_A0, R_A0)
#define I_HLV_D    I_HX(0x36, 0, R_A0, R_A0)
#define I_HSV_B    I_HX(0x31, R_A1, R_A0, 0)
#define I_HSV_H    I_HX(0x33, R_A1, R_A0, 0)
#define I_HSV_W    I_HX(0x35, R_A1, R_A0, 0)
#define I_HSV_D    I_HX(0x37, R_A1, R_A0, 0)

/* HLV/HLVX/HSV from the current mode (M or HS or U with HU), inline */
#define HX_ASM_H(insn) ".option push\n.option arch, +h\n" insn "\n.option pop\n"
static inline unsigned long hlv_d(unsigned long a)
{ unsigned long v; __asm__ __volatile__(HX_ASM_H("hlv.d %0, (%1)") : "=r"(v) : "r"(a) : "memory"); return v; }
static inline unsigned long hlv_wu(unsigned long a)
{ unsigned long v; __asm__ __volatile__(HX_ASM_H("hlv.wu %0, (%1)") : "=r"(v) : "r"(a) : "memory"); return v; }
static inline unsigned long hlv_hu(unsigned long a)
{ unsigned long v; __asm__ __volatile__(HX_ASM_H("hlv.hu %0, (%1)") : "=r"(v) : "r"(a) : "memory"); return v; }
static inline unsigned long hlvx_hu(unsigned long a)
{ unsigned long v; __asm__ __volatile__(HX_ASM_H("hlvx.hu %0, (%1)") : "=r"(v) : "r"(a) : "memory"); return v; }
static inline unsigned long hlvx_wu(unsigned long a)
{ unsigned long v; __asm__ __volatile__(HX_ASM_H("hlvx.wu %0, (%1)") : "=r"(v) : "r"(a) : "memory"); return v; }
static inline void hsv_d(unsigned long a, unsigned long v)
{ __asm__ __volatile__(HX_ASM_H("hsv.d %1, (%0)") :: "r"(a), "r"(v) : "memory"); }
static inline void hfence_gvma_all(void)
{ __asm__ __volatile__(HX_ASM_H("hfence.gvma zero, zero") ::: "memory"); }
static inline void hfence_vvma_all(void)
{ __asm__ __volatile__(HX_ASM_H("hfence.vvma zero, zero") ::: "memory"); }
static inline void sfence_vma_all(void)
{ __asm__ __volatile__("sfence.vma zero, zero" ::: "memory"); }

/* ---------------- misc ---------------- */
#define HX_NOINLINE __attribute__((noinline))
static inline unsigned long mtime(void) { return mmio_read64(CLINT_MTIME); }
int hx_popcount(unsigned long v);

#endif /* HX_H */

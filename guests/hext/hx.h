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
#include "rvh/pt.h"

/* CSR numbers and fields, causes, interrupts, PTE bits, atp modes: rvh/encoding.h (generated
 * from rvh/isa); page tables: rvh/pt.h (firmware/common) */

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

/* ---------------- composite bits ---------------- */
#define MSTATUS_MPP_S   (PRIVILEGE_S << MSTATUS_MPP_SHIFT)
#define PTE_RWX (PTE_R_MASK | PTE_W_MASK | PTE_X_MASK)
#define PTE_AD  (PTE_A_MASK | PTE_D_MASK)

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

/* ---------------- misc ---------------- */
#define HX_NOINLINE __attribute__((noinline))
static inline unsigned long mtime(void) { return mmio_read64(CLINT_MTIME); }
int hx_popcount(unsigned long v);

#endif /* HX_H */

/*
 * smode.h - runtime of the S-mode guests (guests/smode/): the trap frame and
 * trap hooks, expected-trap probes, check macros.  Implemented in strap.S
 * (trap entry, user-mode switch) and smode.c, on firmware/common's start-up
 * (sstart.S), libc and SBI calls; console output goes through the SBI
 * (DBCN when sbi_probe_extension finds it, else legacy putchar).
 *
 * Usable from assembler too (only the constants then).
 */
#ifndef SMODE_H
#define SMODE_H

/* ---- trap frame layout (shared with strap.S) ---- */
#define SFRAME_X(i)     ((i) * 8)       /* x0..x31 (x0 slot unused) */
#define SFRAME_SEPC     (32 * 8)
#define SFRAME_SSTATUS  (33 * 8)
#define SFRAME_SCAUSE   (34 * 8)
#define SFRAME_STVAL    (35 * 8)
#define SFRAME_SIZE     (36 * 8)        /* multiple of 16 */


#ifndef __ASSEMBLER__

#include <stdint.h>
#include "rvh.h"
#include "rvh/sbi.h"
#include "rvh/start.h"
#include "pv.h"                 /* privileged operations: hypercalls in a pv build */

/* CSR numbers and fields, causes, interrupts, SBI numbers: rvh/encoding.h (generated) */

/* ---- counters and fences ---- */
static inline uint64_t rdtime(void)
{
    uint64_t v;
    __asm__ __volatile__("csrr %0, time" : "=r"(v) :: "memory");
    return v;
}
/* hartid of the running hart: sstart.S keeps it in tp */
static inline unsigned long rvh_hartid(void)
{
    unsigned long v;
    __asm__ __volatile__("mv %0, tp" : "=r"(v));
    return v;
}

/* ---- traps ---- */
struct strap_frame {
    unsigned long x[32];                /* x[0] unused; x[2] = sp at the trap */
    unsigned long sepc, sstatus, scause, stval;
};
#define REG_RA  1
#define REG_SP  2
#define REG_A0  10
#define REG_A1  11
#define REG_A7  17

/*
 * Every trap goes through strap.S (stvec = rvh_strap_entry, direct) to
 * rvh_strap_c(frame), which tries, in this order:
 *   1. strap_hook(frame), when set: return nonzero when handled (the hook
 *      may change frame->sepc, frame->sstatus and the saved registers),
 *   2. an armed expected exception (strap_arm): the cause, sepc, stval and
 *      sstatus are recorded in strap_expect, then execution resumes at the
 *      resume address or, when that is 0, after the faulting instruction
 *      (its length is read from sepc: give a resume address whenever sepc
 *      may not be readable, e.g. fetch faults),
 *   3. otherwise the trap is unexpected: "FAIL <name> check <n>:
 *      unexpected trap scause=... sepc=... stval=..." and exit with the
 *      number of the running check (0x7f before the first check).
 * Traps from U-mode arrive on the kernel stack held in sscratch (sscratch
 * is 0 while in S-mode).
 */
typedef int (*strap_hook_t)(struct strap_frame *f);
extern volatile strap_hook_t strap_hook;

struct strap_expect {
    volatile long armed;
    volatile unsigned long resume;
    volatile long cause;                /* -1: no trap */
    volatile unsigned long epc, tval, status;
};
extern struct strap_expect strap_expect;

static inline void strap_arm(unsigned long resume)
{
    strap_expect.cause = -1;
    strap_expect.resume = resume;
    __asm__ __volatile__("" ::: "memory");
    strap_expect.armed = 1;
    __asm__ __volatile__("" ::: "memory");
}
/* returns the recorded scause, or -1 when nothing trapped */
static inline long strap_disarm(void)
{
    __asm__ __volatile__("" ::: "memory");
    strap_expect.armed = 0;
    strap_expect.resume = 0;
    return strap_expect.cause;
}

/*
 * Probes: perform one access, catching any exception.  Each returns -1
 * when the access completed, else the scause (stval etc. in strap_expect).
 */
long probe_load64(uintptr_t addr, uint64_t *val);
long probe_load32(uintptr_t addr, uint32_t *val);  /* lw, zero-extended */
long probe_load8(uintptr_t addr, uint8_t *val);
long probe_store64(uintptr_t addr, uint64_t val);
long probe_store8(uintptr_t addr, uint8_t val);
/* jalr to addr (the code there must return with `ret`) (strap.S) */
long probe_exec(uintptr_t addr);
/* read or write a CSR given by name or CSR_ number: -1 or the scause */
#define PROBE_CSR_READ(csr, valp) ({                                    \
    unsigned long __pv = 0;                                             \
    strap_arm(0);                                                       \
    __asm__ __volatile__("csrr %0, " RVH_STRINGIFY(csr) : "+r"(__pv) :: "memory");    \
    long __pc = strap_disarm();                                         \
    *(valp) = __pv;                                                     \
    __pc; })
#define PROBE_CSR_WRITE(csr, val) ({                                    \
    unsigned long __pv = (unsigned long)(val);                          \
    strap_arm(0);                                                       \
    __asm__ __volatile__("csrw " RVH_STRINGIFY(csr) ", %0" :: "r"(__pv) : "memory");  \
    strap_disarm(); })

/*
 * U-mode excursions (strap.S).  rvh_enter_user saves the callee-saved
 * registers, points sscratch at the kernel stack, then srets to `pc` in
 * U-mode (sstatus.SPP = 0, SPIE = spie) with sp = usp and a0 = arg.  A trap
 * hook returns to the caller of rvh_enter_user by calling
 * rvh_leave_user(value) (from the trap handler, on the kernel stack), which
 * makes rvh_enter_user return value.  Not reentrant.
 */
long rvh_enter_user(uintptr_t pc, uintptr_t usp, unsigned long arg, int spie);
void rvh_leave_user(long value) __attribute__((noreturn));

/* ---- secondary harts ---- */
/*
 * Address to pass to sbi_hart_start: sets gp, tp = hartid, a stack of its
 * own (hartid < RVH_MAX_HARTS, else the hart stops), sscratch = 0,
 * stvec = rvh_strap_entry, then calls rvh_secondary_main(hartid, opaque)
 * and stops the hart (sbi_hart_stop) when it returns.  The default
 * rvh_secondary_main (weak) returns at once.
 */
void rvh_secondary_entry(void);
void rvh_secondary_main(unsigned long hartid, unsigned long opaque);

/* ---- runtime state (smode.c) ---- */
extern unsigned long rvh_boot_hartid;   /* a0 at _start */
extern unsigned long rvh_dtb;           /* a1 at _start */

/* ---- boot arguments ---- */
/*
 * rvh_bootargs() is /chosen/bootargs of the device tree at rvh_dtb (the
 * built-in SBI's --append, or a VM's append= from rvh's hypervisor), "" if
 * there is none.  rvh_bootarg(key, default) is the number of the word
 * key=N in it (decimal, or hex with 0x; a K or M suffix multiplies by
 * 1024 or 1024^2), default when the word is missing or not a number.
 */
const char *rvh_bootargs(void);
unsigned long rvh_bootarg(const char *key, unsigned long dflt);

/* ---- self-checks ---- */
/*
 * A guest names itself with TEST_NAME("sbi") at file scope.  CHECK(n, cond)
 * and CHECK_EQ(n, a, b) record n as the running check and, on failure,
 * print "FAIL <name> check <n> (line L): ..." and exit with status n
 * (1..254).  pass() prints "PASS <name>" and exits 0.
 */
extern const char rvh_test_name[];
extern volatile long rvh_check_num;
#define TEST_NAME(s)    const char rvh_test_name[] = s

void rvh_check_failed(long n, int line, const char *what)
    __attribute__((noreturn));
void rvh_check_failed_eq(long n, int line, const char *a, const char *b,
                         unsigned long va, unsigned long vb)
    __attribute__((noreturn));
void pass(void) __attribute__((noreturn));

#define CHECK(n, cond) do {                                             \
    rvh_check_num = (n);                                                \
    if (!(cond))                                                        \
        rvh_check_failed((n), __LINE__, #cond);                         \
} while (0)

#define CHECK_EQ(n, a, b) do {                                          \
    unsigned long __ca = (unsigned long)(a);                            \
    unsigned long __cb = (unsigned long)(b);                            \
    rvh_check_num = (n);                                                \
    if (__ca != __cb)                                                   \
        rvh_check_failed_eq((n), __LINE__, #a, #b, __ca, __cb);         \
} while (0)

#endif /* __ASSEMBLER__ */
#endif /* SMODE_H */

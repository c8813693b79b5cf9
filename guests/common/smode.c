/*
 * smode.c - C part of the S-mode guest runtime (see smode.h).
 */
#include "smode.h"

unsigned long rvh_boot_hartid;
unsigned long rvh_dtb;

volatile strap_hook_t strap_hook;
struct strap_expect strap_expect;
volatile long rvh_check_num;

/* called by sstart.S before main: pick the SBI console */
void rvh_sinit(unsigned long hartid, unsigned long dtb)
{
    rvh_boot_hartid = hartid;
    rvh_dtb = dtb;
#ifdef RVH_PV
    rvh_pv_init(hartid);        /* the paravirtual layer (pv.h), when the hypervisor has it */
#endif
    sbi_console_init();
}

__attribute__((weak)) void rvh_secondary_main(unsigned long hartid,
                                              unsigned long opaque)
{
    (void)hartid;
    (void)opaque;
}

/* ---- boot arguments: /chosen/bootargs of the flattened device tree ---- */
#define FDT_MAGIC       0xd00dfeedU
#define FDT_BEGIN_NODE  1
#define FDT_END_NODE    2
#define FDT_PROP        3
#define FDT_NOP         4

/* the device tree is big-endian (Devicetree Specification 0.4, 5.2) */
static uint32_t fdt32(const void *p)
{
    const uint8_t *b = p;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

const char *rvh_bootargs(void)
{
    const uint8_t *fdt = (const uint8_t *)rvh_dtb;
    if (!fdt || fdt32(fdt) != FDT_MAGIC)
        return "";
    uint32_t size = fdt32(fdt + 4);
    const uint8_t *p = fdt + fdt32(fdt + 8), *end = fdt + size;
    const char *strings = (const char *)fdt + fdt32(fdt + 12);
    int depth = 0, in_chosen = 0;
    while (p + 4 <= end) {
        uint32_t token = fdt32(p);
        p += 4;
        if (token == FDT_BEGIN_NODE) {
            const char *name = (const char *)p;
            size_t len = strlen(name);
            depth++;
            /* /chosen: a child of the root (whose name is empty) */
            in_chosen = depth == 2 && !strcmp(name, "chosen");
            p += (len + 1 + 3) & ~3UL;
        } else if (token == FDT_END_NODE) {
            if (in_chosen)
                return "";
            depth--;
        } else if (token == FDT_PROP) {
            uint32_t len = fdt32(p), name = fdt32(p + 4);
            const char *value = (const char *)p + 8;
            if (in_chosen && !strcmp(strings + name, "bootargs") && len && !value[len - 1])
                return value;
            p += 8 + ((len + 3) & ~3UL);
        } else if (token != FDT_NOP) {
            break;              /* FDT_END or a malformed tree */
        }
    }
    return "";
}

unsigned long rvh_bootarg(const char *key, unsigned long dflt)
{
    size_t keylen = strlen(key);
    for (const char *w = rvh_bootargs(); *w;) {
        while (*w == ' ')
            w++;
        if (!memcmp(w, key, keylen) && w[keylen] == '=') {
            const char *d = w + keylen + 1;
            unsigned base = 10;
            unsigned long value = 0;
            int digits = 0;
            if (d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) {
                base = 16;
                d += 2;
            }
            for (;; d++, digits++) {
                unsigned v;
                if (*d >= '0' && *d <= '9')
                    v = (unsigned)(*d - '0');
                else if (base == 16 && (*d | 0x20) >= 'a' && (*d | 0x20) <= 'f')
                    v = (unsigned)((*d | 0x20) - 'a' + 10);
                else
                    break;
                value = value * base + v;
            }
            if (*d == 'K' || *d == 'M') {
                value <<= *d == 'K' ? 10 : 20;
                d++;
            }
            return digits && (*d == ' ' || !*d) ? value : dflt;
        }
        while (*w && *w != ' ')
            w++;
    }
    return dflt;
}

/* ---- checks ---- */
void pass(void)
{
    printf("PASS %s\n", rvh_test_name);
    exit(0);
}

static void fail_exit(long n) __attribute__((noreturn));
static void fail_exit(long n)
{
    exit(n > 0 && n < 255 ? (int)n : 0x7f);
}

void rvh_check_failed(long n, int line, const char *what)
{
    printf("FAIL %s check %ld (line %d): %s\n", rvh_test_name, n, line, what);
    fail_exit(n);
}

void rvh_check_failed_eq(long n, int line, const char *a, const char *b,
                         unsigned long va, unsigned long vb)
{
    printf("FAIL %s check %ld (line %d): %s == %s: got 0x%lx, expected 0x%lx\n",
           rvh_test_name, n, line, a, b, va, vb);
    fail_exit(n);
}

/* ---- traps ---- */
static unsigned insn_length(uintptr_t pc)
{
    return (*(volatile uint16_t *)pc & 3) == 3 ? 4 : 2;
}

void rvh_strap_c(struct strap_frame *f)
{
    strap_hook_t hook = strap_hook;
    if (hook && hook(f))
        return;
    if (!(f->scause & MCAUSE_INTERRUPT_MASK) && strap_expect.armed) {
        strap_expect.cause = (long)f->scause;
        strap_expect.epc = f->sepc;
        strap_expect.tval = f->stval;
        strap_expect.status = f->sstatus;
        strap_expect.armed = 0;
        if (strap_expect.resume) {
            f->sepc = strap_expect.resume;
            strap_expect.resume = 0;
        } else {
            f->sepc += insn_length(f->sepc);
        }
        return;
    }
    strap_hook = 0;     /* do not loop through a failing hook */
    printf("FAIL %s check %ld: unexpected trap scause=0x%lx sepc=0x%lx "
           "stval=0x%lx sstatus=0x%lx hart=%lu\n",
           rvh_test_name, (long)rvh_check_num, f->scause, f->sepc, f->stval,
           f->sstatus, rvh_hartid());
    fail_exit(rvh_check_num ? rvh_check_num : 0x7f);
}

/* ---- probes ---- */
long probe_load64(uintptr_t addr, uint64_t *val)
{
    uint64_t v = 0;
    strap_arm(0);
    __asm__ __volatile__("ld %0, 0(%1)" : "+r"(v) : "r"(addr) : "memory");
    long c = strap_disarm();
    *val = v;
    return c;
}

long probe_load32(uintptr_t addr, uint32_t *val)
{
    uint64_t v = 0;
    strap_arm(0);
    __asm__ __volatile__("lwu %0, 0(%1)" : "+r"(v) : "r"(addr) : "memory");
    long c = strap_disarm();
    *val = (uint32_t)v;
    return c;
}

long probe_load8(uintptr_t addr, uint8_t *val)
{
    uint64_t v = 0;
    strap_arm(0);
    __asm__ __volatile__("lbu %0, 0(%1)" : "+r"(v) : "r"(addr) : "memory");
    long c = strap_disarm();
    *val = (uint8_t)v;
    return c;
}

long probe_store64(uintptr_t addr, uint64_t val)
{
    strap_arm(0);
    __asm__ __volatile__("sd %0, 0(%1)" :: "r"(val), "r"(addr) : "memory");
    return strap_disarm();
}

long probe_store8(uintptr_t addr, uint8_t val)
{
    strap_arm(0);
    __asm__ __volatile__("sb %0, 0(%1)" :: "r"(val), "r"(addr) : "memory");
    return strap_disarm();
}

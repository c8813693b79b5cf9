/*
 * hbench.c - the cost of two-stage translation: the intmem workload
 * (xorshift64 + read-modify-write of an 8 KiB table, about 20 instructions
 * per iteration) run twice with equivalent 4 KiB mappings of the whole
 * program:
 *
 *   phase: native   HS-mode, satp Sv39 (one translation stage)
 *   phase: vs       VS-mode, vsatp Sv39 + hgatp Sv39x4 (two stages)
 *
 * Both phases print their checksum, which must be equal (exit 0), and the
 * mtime ticks they took (informational).  HBENCH_ITERS iterations per phase
 * (default 5,000,000: about 100 M instructions each).
 */
#include "hx.h"

#ifndef HBENCH_ITERS
#define HBENCH_ITERS 5000000UL
#endif
#define TABLE_WORDS 1024                /* 8 KiB of uint64_t */

static uint64_t table[TABLE_WORDS];
extern char _end[];

static char spool[8 * 4096] __attribute__((aligned(4096)));
static char vpool[8 * 4096] __attribute__((aligned(4096)));
static char gpool[16 * 4096] __attribute__((aligned(16384)));
static struct pt sT, vT, gT;
static struct pt_pool s_pool, v_pool, g_pool;

static HX_NOINLINE long bench(unsigned long iters)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    uint64_t acc = 0;
    for (unsigned i = 0; i < TABLE_WORDS; i++)
        table[i] = i * 0x100000001b3ULL;
    for (unsigned long n = 0; n < iters; n++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned idx = x & (TABLE_WORDS - 1);
        table[idx] += x;
        acc += table[(x >> 40) & (TABLE_WORDS - 1)];
    }
    uint64_t sum = 0;
    for (unsigned i = 0; i < TABLE_WORDS; i++)
        sum = (sum ^ table[i]) * 0x100000001b3ULL;
    return (long)(sum ^ acc ^ x);
}

/* the program image [RAM_BASE, _end) and the UART, 4 KiB pages */
static void map_image(struct pt *pt, unsigned long flags)
{
    unsigned long end = ((unsigned long)_end + 0xfff) & ~0xfffUL;
    pt_map_range(pt, RAM_BASE, RAM_BASE, end - RAM_BASE, 0, flags);
    pt_map_range(pt, UART0_BASE, UART0_BASE, 4096, 0, (flags & ~PTE_X_MASK) | PTE_R_MASK | PTE_W_MASK);
    pt_map_range(pt, TEST_BASE, TEST_BASE, 4096, 0, (flags & ~PTE_X_MASK) | PTE_R_MASK | PTE_W_MASK);
}

int main(void)
{
    hx_init("hbench");
    const unsigned long iters = HBENCH_ITERS;

    pt_pool_init(&s_pool, spool, sizeof(spool));
    pt_init(&sT, &s_pool, 3, 0, 0);
    map_image(&sT, PTE_RWX | PTE_A_MASK | PTE_D_MASK);
    pt_pool_init(&v_pool, vpool, sizeof(vpool));
    pt_init(&vT, &v_pool, 3, 0, 0);
    map_image(&vT, PTE_RWX | PTE_A_MASK | PTE_D_MASK);
    pt_pool_init(&g_pool, gpool, sizeof(gpool));
    pt_init(&gT, &g_pool, 3, 1, 0);
    map_image(&gT, PTE_U_MASK | PTE_RWX | PTE_A_MASK | PTE_D_MASK);

    /* native: HS-mode with Sv39 */
    csrw(CSR_SATP, (SATP_MODE_SV39 << SATP_MODE_SHIFT) | pt_root_ppn(&sT));
    sfence_vma_all();
    printf("phase: native\n");
    unsigned long t0 = mtime();
    hx_expect_none();
    long c_native = hx_run(HX_HS, bench, iters, 0);
    unsigned long t1 = mtime();
    csrw(CSR_SATP, 0);
    sfence_vma_all();
    printf("hbench: native (HS, satp Sv39): %lu iterations, checksum 0x%016lx, %lu mtime ticks\n",
           iters, (unsigned long)c_native, t1 - t0);

    /* vs: VS-mode with vsatp Sv39 and hgatp Sv39x4 */
    csrw(CSR_HGATP, (HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT) | pt_root_ppn(&gT));
    csrw(CSR_VSATP, (SATP_MODE_SV39 << SATP_MODE_SHIFT) | pt_root_ppn(&vT));
    hfence_gvma_all();
    hfence_vvma_all();
    printf("phase: vs\n");
    t0 = mtime();
    long c_vs = hx_run(HX_VS, bench, iters, 0);
    t1 = mtime();
    csrw(CSR_VSATP, 0);
    csrw(CSR_HGATP, 0);
    hfence_gvma_all();
    printf("hbench: vs (VS, vsatp Sv39 + hgatp Sv39x4): %lu iterations, checksum 0x%016lx, "
           "%lu mtime ticks\n", iters, (unsigned long)c_vs, t1 - t0);

    CHECK(1, "checksum native == checksum vs", (unsigned long)c_vs, (unsigned long)c_native);
    return hx_done();
}

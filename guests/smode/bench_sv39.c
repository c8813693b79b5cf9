/*
 * bench_sv39.c - the cost of Sv39 translation: the intmem workload of
 * bench/intmem.c (xorshift64 + read-modify-write of an 8 KiB table, ~20
 * instructions per iteration) run twice in S-mode, first with satp = Bare,
 * then with Sv39 on, about 100 million instructions each.
 *
 * Sv39 address space: an identity map of RAM (0x8000_0000, 256 MiB) with
 * 2 MiB pages, except the 2 MiB regions holding this image (code, table,
 * stack), which use 4 KiB pages.
 *
 * Output: a marker line "phase: bare" / "phase: sv39" before each phase
 * and "phase: end" after the last, so a harness can split the run; after
 * each phase its checksum and the `time` ticks it took (10 MHz).  Both
 * checksums must be equal; the guest then exits 0.
 */
#include "smode.h"
#include "spt.h"

TEST_NAME("smode/bench_sv39");

#define ITERATIONS  5000000UL       /* 20 instructions each: ~100 M */
#define TABLE_WORDS 1024            /* 8 KiB of uint64_t */
#define RAM_SIZE_MAPPED (256UL << 20)

static uint64_t table[TABLE_WORDS];
static struct pt space;

__attribute__((noinline)) static uint64_t intmem(unsigned long iterations)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    uint64_t acc = 0;

    for (unsigned i = 0; i < TABLE_WORDS; i++)
        table[i] = i * 0x100000001b3ULL;
    for (unsigned long n = 0; n < iterations; n++) {
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
    return sum ^ acc ^ x;
}

static uint64_t phase(const char *name)
{
    printf("phase: %s\n", name);
    uint64_t t0 = rdtime();
    uint64_t sum = intmem(ITERATIONS);
    uint64_t t1 = rdtime();
    printf("%s: %lu iterations, checksum 0x%016lx, %lu ticks\n", name,
           ITERATIONS, (unsigned long)sum, (unsigned long)(t1 - t0));
    return sum;
}

static void build_space(void)
{
    uint64_t mega = PT_LEVEL_SIZE(1);
    uint64_t img_lo = (uintptr_t)__image_start & ~(mega - 1);
    uint64_t img_hi = ((uintptr_t)_end + mega - 1) & ~(mega - 1);
    spt_init(&space, 3);
    for (uint64_t a = RAM_BASE; a < RAM_BASE + RAM_SIZE_MAPPED; a += mega) {
        uint64_t flags = PTE_R_MASK | PTE_W_MASK | PTE_X_MASK | PTE_A_MASK | PTE_D_MASK;
        if (a >= img_lo && a < img_hi)
            pt_map_range(&space, a, a, mega, 0, flags);     /* 4 KiB pages */
        else
            pt_map(&space, a, a, 1, flags);                 /* 2 MiB page */
    }
}

int main(void)
{
    uint64_t bare = phase("bare");

    build_space();
    csr_write(satp, pt_satp(&space, 0));
    sfence_vma_all();
    CHECK_EQ(1, csr_read(satp) >> SATP_MODE_SHIFT, SATP_MODE_SV39);
    uint64_t sv39 = phase("sv39");
    puts("phase: end");
    csr_write(satp, 0);
    sfence_vma_all();

    CHECK_EQ(2, sv39, bare);
    pass();
}

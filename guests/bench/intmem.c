/*
 * intmem.c - integer + memory workload: a xorshift64 PRNG drives a
 * read-modify-write of an 8 KiB table plus a second table read in every
 * iteration (two loads and one store per 20 instructions).
 *
 * The inner loop compiles to 20 instructions (gcc 12 -O2, see the objdump),
 * so ITERATIONS = 12,500,000 executes about 250 million instructions
 * (measured with QEMU -icount and -DBENCH_INSTRET: 250.0 M).
 */
#include "bench.h"

#define ITERATIONS 12500000UL   /* 20 instructions each: ~250 M instructions */
#define TABLE_WORDS 1024        /* 8 KiB of uint64_t */

static uint64_t table[TABLE_WORDS];

int main(void)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    uint64_t acc = 0;

    for (unsigned i = 0; i < TABLE_WORDS; i++)
        table[i] = i * 0x100000001b3ULL;

    bench_mark_t m = bench_start();
    for (unsigned long n = 0; n < ITERATIONS; n++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        unsigned idx = x & (TABLE_WORDS - 1);
        table[idx] += x;
        acc += table[(x >> 40) & (TABLE_WORDS - 1)];
    }
    bench_end("intmem", m);

    uint64_t sum = 0;
    for (unsigned i = 0; i < TABLE_WORDS; i++)
        sum = (sum ^ table[i]) * 0x100000001b3ULL;
    printf("intmem: %lu iterations, checksum 0x%016lx\n",
           (unsigned long)ITERATIONS, sum ^ acc ^ x);
    return 0;
}

/*
 * recursion.c - call-heavy workload: naive recursive Fibonacci (registers
 * and the stack only, no other data memory).  gcc turns one of the two
 * recursive calls into a loop, so this is roughly fib(N) calls of ~15
 * instructions each.
 *
 * FIB_N = 31, REPEAT = 4: fib(31) executes about 64 million instructions
 * (gcc 12 -O2), so about 256 million in total (measured with QEMU -icount
 * and -DBENCH_INSTRET).
 */
#include "bench.h"

#define FIB_N 31        /* fib(31) = 1346269 */
#define REPEAT 4        /* ~64 M instructions per fib(31): ~256 M in total */

/* read through a volatile so that gcc cannot evaluate fib() only once */
static volatile unsigned fib_arg = FIB_N;

__attribute__((noinline)) static uint64_t fib(unsigned n)
{
    if (n < 2)
        return n;
    return fib(n - 1) + fib(n - 2);
}

int main(void)
{
    uint64_t sum = 0;
    bench_mark_t m = bench_start();
    for (unsigned r = 0; r < REPEAT; r++)
        sum += fib(fib_arg);
    bench_end("recursion", m);
    printf("recursion: fib(%d) x %d, checksum %lu\n",
           FIB_N, REPEAT, (unsigned long)sum);
    return sum == (uint64_t)REPEAT * 1346269 ? 0 : 1;
}

/*
 * bench.h - helpers shared by the benchmark guests.
 *
 * Build with -DBENCH_INSTRET to also print the minstret/mcycle deltas of the
 * measured part (on QEMU, minstret only counts instructions with -icount;
 * otherwise it is a host tick counter).  Off by default so that the output
 * is identical on every emulator.
 */
#ifndef BENCH_H
#define BENCH_H

#include "rvh.h"

typedef struct {
    uint64_t instret, cycle;
} bench_mark_t;

static inline bench_mark_t bench_start(void)
{
    bench_mark_t m = { csr_read(minstret), csr_read(mcycle) };
    return m;
}

static inline void bench_end(const char *name, bench_mark_t m)
{
#ifdef BENCH_INSTRET
    uint64_t i = csr_read(minstret) - m.instret;
    uint64_t c = csr_read(mcycle) - m.cycle;
    printf("%s: minstret delta %lu, mcycle delta %lu\n", name, i, c);
#else
    (void)name;
    (void)m;
#endif
}

#endif /* BENCH_H */

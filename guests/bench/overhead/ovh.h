/*
 * ovh.h - the measured regions of the overhead benchmarks (guests/bench/overhead/, run by
 * `rvh bench overhead`).  They are S-mode guests: natively on an SBI firmware, or as VMs under
 * rvh's hypervisor.
 *
 * A region's cost is read from the instret CSR, which counts every instruction the hart
 * retires, whatever its privilege: under a hypervisor it includes the hypervisor's (and any
 * firmware's) instructions spent on the region's exits, and it is deterministic.  Each region
 * prints two lines the runner parses:
 *
 *     OVH begin
 *     OVH <bench> ops=<operations> instret=<instructions> time=<timer ticks>
 *
 * The begin line lets the runner read the host clock and the hypervisor's exit count just
 * before the region, the result line just after it.  The guest starts with "OVH start"
 * (ovh_start) and ends with "OVH done" and a clean shutdown (ovh_done).
 */
#ifndef OVH_H
#define OVH_H

#include "smode.h"

struct ovh_region {
    uint64_t instret, time;
};

static inline uint64_t ovh_instret(void)
{
    uint64_t v;
    __asm__ __volatile__("csrr %0, instret" : "=r"(v) :: "memory");
    return v;
}

static inline struct ovh_region ovh_begin(void)
{
    struct ovh_region r;
    printf("OVH begin\n");     /* the runner's host clock starts at this line's end */
    r.time = rdtime();
    r.instret = ovh_instret();
    return r;
}

/* close the region opened by ovh_begin and report it as `ops` operations of `bench` */
static inline void ovh_end(struct ovh_region r, const char *bench, unsigned long ops)
{
    uint64_t instret = ovh_instret();
    uint64_t time = rdtime();
    printf("OVH %s ops=%lu instret=%lu time=%lu\n", bench, ops,
           (unsigned long)(instret - r.instret), (unsigned long)(time - r.time));
}

static inline void ovh_start(void)
{
    printf("OVH start\n");
}

static inline void ovh_done(void)
{
    printf("OVH done\n");
    pass();
}

#endif /* OVH_H */

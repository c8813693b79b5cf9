/*
 * steal.c - SBI steal-time accounting (STA, SBI 2.0 chapter 16) from the guest's side (run two
 * of it as VMs on one hart: rvh run --hyp --guest steal.elf --guest steal.elf,virt=pv).
 *
 * Where STA is offered: a call with flags set or a misaligned address is INVALID_PARAM, one
 * outside the VM's RAM INVALID_ADDRESS; a registered structure is zeroed by the call (sequence
 * even, flags 0, padding 0).  Then the guest computes for BUSY_TICKS of time, never idle, and
 * reads its steal time with the sequence protocol of the structure (reread while the sequence is
 * odd or changed): the steal time only grows, never exceeds the time that passed, and reads
 * "not preempted" while the guest runs.  It prints the steal time in microseconds and the share
 * of the busy period it covers; beside another busy VM on one hart that share is large.  After
 * all-ones (reporting stopped) the value no longer changes.  Where STA is absent (natively on
 * rvh's built-in SBI) it says so and passes.
 */
#include "smode.h"

TEST_NAME("hyp/steal");

#define BUSY_TICKS      200000UL        /* 20 ms at the 10 MHz timebase */

struct sta_shmem {
    volatile uint32_t sequence, flags;
    volatile uint64_t steal;            /* nanoseconds */
    volatile uint8_t preempted;
    volatile uint8_t pad[47];
};
_Static_assert(sizeof(struct sta_shmem) == 64, "STA shared memory is 64 bytes");

static struct sta_shmem shmem __attribute__((aligned(64)));
static uint8_t spare[128] __attribute__((aligned(64)));

static struct sbiret set_shmem(unsigned long lo, unsigned long hi, unsigned long flags)
{
    return sbi_ecall(SBI_EXT_STA, SBI_STA_SET_SHMEM, lo, hi, flags, 0, 0, 0);
}

/* the steal field as the structure's sequence protocol says to read it */
static uint64_t read_steal(void)
{
    for (;;) {
        uint32_t before = shmem.sequence;
        __asm__ __volatile__("fence r, r" ::: "memory");
        uint64_t steal = shmem.steal;
        __asm__ __volatile__("fence r, r" ::: "memory");
        if (!(before & 1) && shmem.sequence == before)
            return steal;
    }
}

int main(unsigned long hartid, unsigned long dtb)
{
    (void)hartid;
    struct sbiret r = sbi_probe_extension(SBI_EXT_STA);
    CHECK_EQ(1, r.error, SBI_SUCCESS);
    if (r.value == 0) {
        CHECK_EQ(2, set_shmem((uintptr_t)&shmem, 0, 0).error, SBI_ERR_NOT_SUPPORTED);
        puts("steal: STA absent");
        pass();
    }
    puts("steal: STA present");
    unsigned long ram_end = (dtb & ~0x1fffffUL) + 0x200000UL;   /* the tree's 2 MiB is last */
    uintptr_t at = (uintptr_t)&shmem;
    CHECK_EQ(10, set_shmem(at, 0, 1).error, SBI_ERR_INVALID_PARAM);          /* flags */
    CHECK_EQ(11, set_shmem(at + 8, 0, 0).error, SBI_ERR_INVALID_PARAM);      /* alignment */
    CHECK_EQ(12, set_shmem(0x1000, 0, 0).error, SBI_ERR_INVALID_ADDRESS);    /* not RAM */
    CHECK_EQ(13, set_shmem(ram_end - 32, 0, 0).error, SBI_ERR_INVALID_PARAM);
    CHECK_EQ(14, set_shmem(ram_end, 0, 0).error, SBI_ERR_INVALID_ADDRESS);   /* just past it */
    CHECK_EQ(15, set_shmem(at, 1, 0).error, SBI_ERR_INVALID_ADDRESS);        /* above 4 GiB */
    CHECK_EQ(16, set_shmem(8, 1, 7).error, SBI_ERR_INVALID_PARAM);

    /* the call zeroes all 64 bytes before it returns */
    for (unsigned i = 0; i < sizeof(spare); i++)
        spare[i] = 0xa5;
    r = set_shmem((uintptr_t)spare, 0, 0);
    CHECK_EQ(20, r.error, SBI_SUCCESS);
    CHECK_EQ(21, r.value, 0);
    unsigned nonzero = 0;
    for (unsigned i = 0; i < 64; i++)
        nonzero += spare[i] != 0 && ((i >= 4 && i < 8) || i >= 16);
    CHECK_EQ(22, nonzero + (spare[0] & 1), 0);  /* flags, preempted, padding zero; sequence even */
    CHECK_EQ(23, spare[64], 0xa5);              /* and nothing beyond the 64 bytes */

    CHECK_EQ(30, set_shmem(at, 0, 0).error, SBI_SUCCESS);
    CHECK_EQ(31, shmem.flags, 0);
    CHECK_EQ(32, shmem.preempted, 0);
    uint64_t first = read_steal(), last = first;
    unsigned long start = rdtime();
    while (rdtime() - start < BUSY_TICKS) {
        uint64_t steal = read_steal();
        CHECK(33, steal >= last);               /* steal time only grows */
        CHECK_EQ(34, shmem.preempted, 0);       /* zero whenever it runs */
        last = steal;
    }
    unsigned long elapsed_ns = (rdtime() - start) * 100;
    uint64_t stolen = read_steal() - first;
    CHECK(35, stolen <= elapsed_ns);
    printf("steal: %lu us stolen of %lu us busy (%lu%%)\n", (unsigned long)(stolen / 1000),
           elapsed_ns / 1000, (unsigned long)(stolen * 100 / elapsed_ns));

    /* all-ones: reporting stops, the value stays */
    CHECK_EQ(40, set_shmem(~0UL, ~0UL, 0).error, SBI_SUCCESS);
    uint64_t frozen = shmem.steal;
    start = rdtime();
    while (rdtime() - start < BUSY_TICKS / 2)
        CHECK_EQ(41, shmem.steal, frozen);
    pass();
}

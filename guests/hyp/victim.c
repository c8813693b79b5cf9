/*
 * victim.c - a VM that minds its own memory while others run (rvh run --hyp, beside
 * hostile.c): it fills 1 MiB with a pattern derived from each word's address, then checks it
 * again and again, sleeping on its timer in between so the other VMs get the hart.  Any word
 * changed by someone else fails the run.
 */
#include "smode.h"

TEST_NAME("hyp/victim");

#define WORDS (1UL << 17)           /* 1 MiB of 64-bit words */
#define ROUNDS 8

static uint64_t region[WORDS];

static uint64_t pattern(uint64_t i)
{
    uint64_t x = (uint64_t)&region[i] * 0x9e3779b97f4a7c15ULL;
    return x ^ (x >> 29);
}

int main(unsigned long hartid, unsigned long dtb)
{
    (void)hartid;
    (void)dtb;
    for (uint64_t i = 0; i < WORDS; i++)
        region[i] = pattern(i);
    csr_set(CSR_SIE, MIP_STIP_MASK);
    for (int round = 0; round < ROUNDS; round++) {
        for (uint64_t i = 0; i < WORDS; i++)
            CHECK_EQ(10 + round, region[i], pattern(i));
        /* sleep 1 ms: the hart goes to the other VMs */
        sbi_set_timer(csr_read(CSR_TIME) + 10000);
        __asm__ __volatile__("wfi");
        sbi_set_timer(-1UL);
    }
    printf("victim: 1 MiB intact after %d rounds\n", ROUNDS);
    pass();
}

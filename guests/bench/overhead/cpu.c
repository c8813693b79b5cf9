/*
 * cpu.c - the CPU-bound class of `rvh bench overhead`: an integer and memory loop with no
 * privileged operation (a sieve over a 256 KiB table and a hash of it), so that under a
 * hypervisor only the exits the hypervisor makes for itself (its timer) add to its cost.
 */
#include "ovh.h"

TEST_NAME("overhead/cpu");

#define SIEVE_SIZE (256 * 1024)
#define ROUNDS 8

static unsigned char composite[SIEVE_SIZE];

/* one round: sieve of Eratosthenes, then an FNV-1a hash of the table; returns the primes */
static unsigned long sieve_round(uint64_t *hash)
{
    unsigned long primes = 0;
    for (unsigned long i = 0; i < SIEVE_SIZE; i++)
        composite[i] = 0;
    for (unsigned long i = 2; i < SIEVE_SIZE; i++) {
        if (composite[i])
            continue;
        primes++;
        for (unsigned long j = i * i; j < SIEVE_SIZE; j += i)
            composite[j] = 1;
    }
    uint64_t h = *hash;
    for (unsigned long i = 0; i < SIEVE_SIZE; i += 8)
        h = (h ^ *(volatile uint64_t *)&composite[i]) * 0x100000001b3ULL;
    *hash = h;
    return primes;
}

int main(void)
{
    ovh_start();
    uint64_t hash = 0xcbf29ce484222325ULL;
    unsigned long primes = 0;
    struct ovh_region r = ovh_begin();
    for (int round = 0; round < ROUNDS; round++)
        primes = sieve_round(&hash);
    ovh_end(r, "intmem", ROUNDS);
    CHECK_EQ(1, primes, 23000);     /* primes below 2^18 */
    printf("hash %lx\n", (unsigned long)hash);
    ovh_done();
    return 0;
}

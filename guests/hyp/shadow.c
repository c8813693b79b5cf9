/*
 * shadow.c - what a shadow-paging hypervisor gets wrong first, checked from the guest (it passes
 * natively, as an hw VM and as a trap VM).
 *
 *   - many address-space regions at once: 400 2 MiB pages at 400 virtual regions, all onto one
 *     2 MiB block, read twice (a trap VM's shadow tables need a leaf table per region: more
 *     than its pool holds, so it must start over and still answer right),
 *   - a remapped 2 MiB page after sfence.vma with its address,
 *   - a 2 MiB page unmapped and fenced by one address: all of it is gone, not only that 4 KiB,
 *   - the same for a 1 GiB page,
 *   - the guest's PTE A and D bits: set by its hart (by the hypervisor, in trap mode) on a read
 *     and on a write.
 */
#include "smode.h"
#include "spt.h"

TEST_NAME("hyp/shadow");

#define MIB         (1UL << 20)
#define REGIONS     400
#define VA_BASE     0x100000000UL           /* 4 GiB: the regions, 2 MiB apart */
#define VA_GIGA     0x2000000000UL          /* 128 GiB: a 1 GiB page */
#define BLOCK_A     0x82000000UL            /* two 2 MiB blocks of RAM, identity-free */
#define BLOCK_B     0x82200000UL

static pte_t tables[16][PT_ENTRIES] __attribute__((aligned(4096)));
static struct pt_pool pool;
static struct pt space;

static uint64_t pattern(uint64_t pa)
{
    return pa * 0x9e3779b97f4a7c15ULL ^ 0x5a5a;
}

static uint64_t va_of(unsigned region)
{
    /* each region is read at its own offset, so the 400 reads touch 400 different words */
    return VA_BASE + region * 2 * MIB + (region * 4104UL) % (2 * MIB - 8);
}

static uint64_t pa_of(unsigned region, uint64_t block)
{
    return block + (region * 4104UL) % (2 * MIB - 8);
}

static void read_all(long check)
{
    for (unsigned i = 0; i < REGIONS; i++) {
        uint64_t value = *(volatile uint64_t *)va_of(i);
        if (value != pattern(pa_of(i, BLOCK_A))) {
            printf("region %u: 0x%lx\n", i, (unsigned long)value);
            CHECK(check, 0);
        }
    }
}

int main(unsigned long hartid, unsigned long dtb)
{
    (void)hartid;
    (void)dtb;
    for (uint64_t pa = BLOCK_A; pa < BLOCK_B + 2 * MIB; pa += 8)
        *(volatile uint64_t *)pa = pattern(pa);
    pt_pool_init(&pool, tables, sizeof(tables));
    pt_init(&space, &pool, 3, 0, 0);
    pt_map_image(&space);
    unsigned long rw = PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK;
    for (unsigned i = 0; i < REGIONS; i++)
        pt_map(&space, VA_BASE + i * 2 * MIB, BLOCK_A, 1, rw);
    csr_write(CSR_SATP, pt_satp(&space, 0));
    sfence_vma_all();

    read_all(10);
    read_all(11);           /* again: whatever was kept or rebuilt must still be right */
    printf("shadow: %d regions of 2 MiB read twice\n", REGIONS);

    /* remap region 7 to the other block, fence that address */
    uint64_t va7 = va_of(7);
    *pt_walk(&space, VA_BASE + 7 * 2 * MIB, 1, 0) = pte_make(BLOCK_B, PTE_V_MASK | rw);
    sfence_vma_va(va7);
    CHECK_EQ(20, *(volatile uint64_t *)va7, pattern(pa_of(7, BLOCK_B)));
    CHECK_EQ(21, *(volatile uint64_t *)va_of(8), pattern(pa_of(8, BLOCK_A)));

    /* unmap region 9 after reading two of its 4 KiB pieces; fence one address only */
    uint64_t base9 = VA_BASE + 9 * 2 * MIB;
    CHECK_EQ(30, *(volatile uint64_t *)(base9 + 0x1000), pattern(BLOCK_A + 0x1000));
    CHECK_EQ(31, *(volatile uint64_t *)(base9 + MIB), pattern(BLOCK_A + MIB));
    *pt_walk(&space, base9, 1, 0) = 0;
    sfence_vma_va(base9);
    uint64_t value;
    CHECK_EQ(32, probe_load64(base9 + MIB, &value), CAUSE_LOAD_PAGE_FAULT);
    CHECK_EQ(33, probe_load64(base9 + 0x1000, &value), CAUSE_LOAD_PAGE_FAULT);

    /* a 1 GiB page onto RAM's first GiB: two pieces far apart, then unmapped by one address */
    pt_map(&space, VA_GIGA, RAM_BASE, 2, rw);
    sfence_vma_all();
    uint64_t off_a = BLOCK_A - RAM_BASE + 0x40, off_b = BLOCK_B - RAM_BASE + 0x100040;
    CHECK_EQ(40, *(volatile uint64_t *)(VA_GIGA + off_a), pattern(BLOCK_A + 0x40));
    CHECK_EQ(41, *(volatile uint64_t *)(VA_GIGA + off_b), pattern(BLOCK_B + 0x100040));
    *pt_walk(&space, VA_GIGA, 2, 0) = 0;
    sfence_vma_va(VA_GIGA + off_a);
    CHECK_EQ(42, probe_load64(VA_GIGA + off_b, &value), CAUSE_LOAD_PAGE_FAULT);
    CHECK_EQ(43, probe_load64(VA_GIGA + off_a, &value), CAUSE_LOAD_PAGE_FAULT);

    /* A and D: a fresh 2 MiB page with neither, read, then written */
    uint64_t va_ad = VA_BASE + 450 * 2 * MIB;
    pt_map(&space, va_ad, BLOCK_B, 1, PTE_R_MASK | PTE_W_MASK);
    pte_t *ad = pt_walk(&space, va_ad, 1, 0);
    sfence_vma_va(va_ad);
    CHECK_EQ(50, *(volatile uint64_t *)(va_ad + 8), pattern(BLOCK_B + 8));
    CHECK_EQ(51, *ad & (PTE_A_MASK | PTE_D_MASK), PTE_A_MASK);
    *(volatile uint64_t *)(va_ad + 8) = pattern(BLOCK_B + 8);
    CHECK_EQ(52, *ad & (PTE_A_MASK | PTE_D_MASK), PTE_A_MASK | PTE_D_MASK);
    printf("shadow: remap, 2 MiB and 1 GiB unmaps by one address, A/D: as on a hart\n");

    csr_write(CSR_SATP, 0);
    sfence_vma_all();
    pass();
}

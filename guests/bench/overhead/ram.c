/*
 * ram.c - the memory class of `rvh bench overhead` (ovh.h), under Sv39 with 4 KiB pages:
 *
 *   touch    loads from random pages of a 16 MiB region: TLB misses, and under a hypervisor
 *            G-stage or shadow-table misses
 *   fork     a fork-like copy of the region's page tables (8 leaf tables, 4096 PTEs) into a
 *            second address space, a switch to it, one load from every 64th page, and back
 *   memcpy   copies of 256 KiB between two buffers (the op is one KiB copied)
 */
#include "ovh.h"
#include "rvh/pt.h"

TEST_NAME("overhead/ram");

#define REGION_VA 0x40000000UL
#define REGION_PAGES 4096                   /* 16 MiB */
#define REGION_PA 0x82000000UL              /* guest-physical 32 MiB in: past the image */
#define TOUCHES 20000
#define FORKS 4
#define COPY_BYTES (256 * 1024)
#define COPIES 8
#define POOL_PAGES 32

static pte_t pool_pages[POOL_PAGES][PT_ENTRIES] __attribute__((aligned(4096)));
static struct pt_pool pool;
static struct pt parent, child;
static unsigned char copy_from[COPY_BYTES] __attribute__((aligned(64)));
static unsigned char copy_to[COPY_BYTES] __attribute__((aligned(64)));

extern char __image_start[], _end[];

static void map_image(struct pt *pt)
{
    uint64_t mega = PT_LEVEL_SIZE(1);
    uint64_t start = (uintptr_t)__image_start & ~(mega - 1);
    uint64_t end = ((uintptr_t)_end + mega - 1) & ~(mega - 1);
    pt_map_range(pt, start, start, end - start, 1,
                 PTE_R_MASK | PTE_W_MASK | PTE_X_MASK | PTE_A_MASK | PTE_D_MASK);
}

static void bench_touch(void)
{
    uint64_t seed = 12345, sum = 0;
    struct ovh_region r = ovh_begin();
    for (int i = 0; i < TOUCHES; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned long page = (seed >> 33) % REGION_PAGES;
        sum += *(volatile uint64_t *)(REGION_VA + page * 4096 + ((seed >> 20) & 0xff8));
    }
    ovh_end(r, "touch", TOUCHES);
    printf("touch sum %lx\n", (unsigned long)sum);
}

/* the child's leaf tables are allocated once; each fork copies the parent's into them */
static void bench_fork(void)
{
    unsigned long sum = 0;
    struct ovh_region r = ovh_begin();
    for (int f = 0; f < FORKS; f++) {
        for (unsigned long t = 0; t < REGION_PAGES / PT_ENTRIES; t++) {
            uint64_t va = REGION_VA + t * PT_LEVEL_SIZE(1);
            pte_t *from = pt_walk(&parent, va, 0, 0);
            pte_t *to = pt_walk(&child, va, 0, 1);
            for (unsigned long e = 0; e < PT_ENTRIES; e++)
                to[e] = from[e] & ~PTE_W_MASK;      /* copy-on-write, as fork does */
        }
        csr_write(satp, pt_satp(&child, 0));
        sfence_vma_all();
        for (unsigned long page = 0; page < REGION_PAGES; page += 64)
            sum += *(volatile unsigned char *)(REGION_VA + page * 4096);
        csr_write(satp, pt_satp(&parent, 0));
        sfence_vma_all();
    }
    ovh_end(r, "fork", FORKS);
    CHECK_EQ(2, sum, 0);
}

static void bench_memcpy(void)
{
    for (unsigned long i = 0; i < COPY_BYTES; i++)
        copy_from[i] = (unsigned char)(i * 7);
    struct ovh_region r = ovh_begin();
    for (int c = 0; c < COPIES; c++)
        memcpy(copy_to, copy_from, COPY_BYTES);
    ovh_end(r, "memcpy", COPIES * (COPY_BYTES / 1024));
    CHECK_EQ(3, copy_to[COPY_BYTES - 1], (unsigned char)((COPY_BYTES - 1) * 7));
}

int main(void)
{
    ovh_start();
    pt_pool_init(&pool, pool_pages, sizeof(pool_pages));
    pt_init(&parent, &pool, 3, 0, 0);
    pt_init(&child, &pool, 3, 0, 0);
    map_image(&parent);
    map_image(&child);
    pt_map_range(&parent, REGION_VA, REGION_PA, REGION_PAGES * 4096UL, 0,
                 PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    /* the region starts zeroed: the loads' sums say the mappings are the right ones */
    for (unsigned long page = 0; page < REGION_PAGES; page++)
        for (unsigned long off = 0; off < 4096; off += 8)
            *(volatile uint64_t *)(REGION_PA + page * 4096 + off) = 0;
    csr_write(satp, pt_satp(&parent, 0));
    sfence_vma_all();
    bench_touch();
    bench_fork();
    bench_memcpy();
    ovh_done();
    return 0;
}

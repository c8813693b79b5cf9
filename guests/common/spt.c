/*
 * spt.c - the S-mode guests' pool of page tables and their image mapping (see spt.h).
 */
#include "spt.h"

static pte_t spt_tables[SPT_POOL_PAGES][PT_ENTRIES] __attribute__((aligned(4096)));
static struct pt_pool spt_pool;

/* page-table trouble fails the running guest by name */
void pt_fail(const char *what, uint64_t va)
{
    printf("FAIL %s: %s (va 0x%lx)\n", rvh_test_name, what, (unsigned long)va);
    exit(0x7e);
}

void spt_init(struct pt *pt, int levels)
{
    if (!spt_pool.end)
        pt_pool_init(&spt_pool, spt_tables, sizeof(spt_tables));
    pt_init(pt, &spt_pool, levels, 0, 0);
}

void pt_map_image(struct pt *pt)
{
    uint64_t mega = PT_LEVEL_SIZE(1);
    uint64_t start = (uintptr_t)__image_start & ~(mega - 1);
    uint64_t end = ((uintptr_t)_end + mega - 1) & ~(mega - 1);
    pt_map_range(pt, start, start, end - start, 1,
                 PTE_R_MASK | PTE_W_MASK | PTE_X_MASK | PTE_A_MASK | PTE_D_MASK);
}

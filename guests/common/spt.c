/*
 * spt.c - page-table construction for the S-mode guests (see spt.h).
 * Sv39/Sv48 layout: privileged spec 20211203, sections 4.4 and 4.5.
 */
#include "spt.h"

static pte_t pt_pool[PT_POOL_PAGES][512] __attribute__((aligned(4096)));
static unsigned pt_pool_used;

pte_t *pt_alloc(void)
{
    if (pt_pool_used >= PT_POOL_PAGES) {
        printf("FAIL %s: page-table pool exhausted\n", rvh_test_name);
        exit(0x7e);
    }
    pte_t *p = pt_pool[pt_pool_used++];
    for (int i = 0; i < 512; i++)
        p[i] = 0;
    return p;
}

void pt_init(struct pt *pt, int levels)
{
    pt->levels = levels;
    pt->root = pt_alloc();
}

static unsigned vpn(uint64_t va, int level)
{
    return (va >> (12 + 9 * level)) & 0x1ff;
}

pte_t *pt_walk(struct pt *pt, uint64_t va, int level, int create)
{
    pte_t *table = pt->root;
    for (int l = pt->levels - 1; l > level; l--) {
        pte_t *e = &table[vpn(va, l)];
        if (!(*e & PTE_V)) {
            if (!create)
                return 0;
            pte_t *next = pt_alloc();
            *e = pte_make((uintptr_t)next, PTE_V);
        } else if (*e & (PTE_R | PTE_W | PTE_X)) {
            return 0;               /* a leaf above the wanted level */
        }
        table = (pte_t *)(uintptr_t)pte_pa(*e);
    }
    return &table[vpn(va, level)];
}

void pt_map(struct pt *pt, uint64_t va, uint64_t pa, int level, uint64_t flags)
{
    pte_t *e = pt_walk(pt, va, level, 1);
    if (!e) {
        printf("FAIL %s: cannot map 0x%lx at level %d\n", rvh_test_name,
               (unsigned long)va, level);
        exit(0x7e);
    }
    *e = pte_make(pa, flags | PTE_V);
}

void pt_map_range(struct pt *pt, uint64_t va, uint64_t pa, uint64_t size,
                  int level, uint64_t flags)
{
    uint64_t step = LEVEL_SIZE(level);
    for (uint64_t off = 0; off < size; off += step)
        pt_map(pt, va + off, pa + off, level, flags);
}

void pt_map_image(struct pt *pt)
{
    uint64_t mega = LEVEL_SIZE(1);
    uint64_t start = (uintptr_t)__image_start & ~(mega - 1);
    uint64_t end = ((uintptr_t)_end + mega - 1) & ~(mega - 1);
    pt_map_range(pt, start, start, end - start, 1,
                 PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
}

uint64_t pt_satp(const struct pt *pt, unsigned long asid)
{
    uint64_t mode = pt->levels == 5 ? SATP_MODE_SV57 :
                    pt->levels == 4 ? SATP_MODE_SV48 : SATP_MODE_SV39;
    return (mode << SATP_MODE_SHIFT) |
           ((uint64_t)(asid & SATP_ASID_MASK) << SATP_ASID_SHIFT) |
           (((uintptr_t)pt->root >> 12) & SATP_PPN_MASK);
}

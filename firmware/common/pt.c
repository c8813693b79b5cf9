/*
 * pt.c - the page-table builder of rvh/pt.h.  Formats: privileged spec 20211203, 4.4 (Sv39),
 * 4.5 (Sv48), 4.6 (Sv57) and 8.5.1 (Sv39x4, Sv48x4: the root indexed by 2 more VPN bits).
 */
#include "rvh/pt.h"
#include "rvh/libc.h"

#define TABLE_BYTES   (PT_ENTRIES * sizeof(pte_t))
#define X4_ROOT_BYTES (PT_X4_ROOT_ENTRIES * sizeof(pte_t))

__attribute__((weak)) void pt_fail(const char *what, uint64_t va)
{
    printf("FAIL page tables: %s (va 0x%lx)\n", what, (unsigned long)va);
    exit(0x7e);
}

void pt_pool_init(struct pt_pool *pool, void *base, size_t bytes)
{
    pool->next = (uintptr_t)base;
    pool->end = (uintptr_t)base + bytes;
}

static void *pool_take(struct pt_pool *pool, uint64_t bytes, uint64_t align)
{
    uintptr_t at = (pool->next + align - 1) & ~(uintptr_t)(align - 1);
    if (at + bytes > pool->end)
        pt_fail("page-table pool exhausted", 0);
    pool->next = at + bytes;
    memset((void *)at, 0, bytes);
    return (void *)at;
}

pte_t *pt_alloc(struct pt *pt)
{
    return pool_take(pt->pool, TABLE_BYTES, TABLE_BYTES);
}

void pt_init(struct pt *pt, struct pt_pool *pool, int levels, int x4, long walker_offset)
{
    pt->levels = levels;
    pt->x4 = x4;
    pt->pool = pool;
    pt->walker_offset = walker_offset;
    /* an x4 root is 16 KiB and must be 16 KiB aligned (8.5.1) */
    pt->root = x4 ? pool_take(pool, X4_ROOT_BYTES, X4_ROOT_BYTES) : pt_alloc(pt);
}

/* VPN[level] of va: 9 bits, 11 at the root of an x4 tree */
static unsigned vpn(const struct pt *pt, uint64_t va, int level)
{
    uint64_t entries = (pt->x4 && level == pt->levels - 1) ? PT_X4_ROOT_ENTRIES : PT_ENTRIES;
    return (va >> (PAGE_SHIFT + PT_LEVEL_BITS * level)) & (entries - 1);
}

pte_t *pt_walk(struct pt *pt, uint64_t va, int level, int create)
{
    pte_t *table = pt->root;
    for (int l = pt->levels - 1; l > level; l--) {
        pte_t *e = &table[vpn(pt, va, l)];
        if (!(*e & PTE_V_MASK)) {
            if (!create)
                return 0;
            pte_t *next = pt_alloc(pt);
            *e = pte_make((uintptr_t)next + pt->walker_offset, PTE_V_MASK);
        } else if (*e & (PTE_R_MASK | PTE_W_MASK | PTE_X_MASK)) {
            return 0;               /* a leaf above the wanted level */
        }
        table = (pte_t *)(uintptr_t)(pte_pa(*e) - pt->walker_offset);
    }
    return &table[vpn(pt, va, level)];
}

pte_t *pt_entry(struct pt *pt, uint64_t va, int level)
{
    pte_t *e = pt_walk(pt, va, level, 1);
    if (!e)
        pt_fail("a leaf above the level to map", va);
    return e;
}

void pt_map(struct pt *pt, uint64_t va, uint64_t pa, int level, uint64_t flags)
{
    pte_store(pt_entry(pt, va, level), pte_make(pa, flags | PTE_V_MASK), va);
}

void pt_map_range(struct pt *pt, uint64_t va, uint64_t pa, uint64_t size, int level,
                  uint64_t flags)
{
    uint64_t step = PT_LEVEL_SIZE(level);
    for (uint64_t off = 0; off < size; off += step)
        pt_map(pt, va + off, pa + off, level, flags);
}

uint64_t pt_root_ppn(const struct pt *pt)
{
    return ((uintptr_t)pt->root + pt->walker_offset) >> PAGE_SHIFT;
}

uint64_t pt_satp(const struct pt *pt, unsigned long asid)
{
    uint64_t mode = pt->levels == 5 ? SATP_MODE_SV57 :
                    pt->levels == 4 ? SATP_MODE_SV48 : SATP_MODE_SV39;
    return (mode << SATP_MODE_SHIFT) |
           (((uint64_t)asid << SATP_ASID_SHIFT) & SATP_ASID_MASK) |
           (pt_root_ppn(pt) & SATP_PPN_MASK);
}

uint64_t pt_hgatp(const struct pt *pt, unsigned long vmid)
{
    uint64_t mode = pt->levels == 4 ? HGATP_MODE_SV48X4 : HGATP_MODE_SV39X4;
    return (mode << HGATP_MODE_SHIFT) |
           (((uint64_t)vmid << HGATP_VMID_SHIFT) & HGATP_VMID_MASK) |
           (pt_root_ppn(pt) & HGATP_PPN_MASK);
}

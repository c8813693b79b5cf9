/*
 * spt.h - page tables for the S-mode guests (Sv39 / Sv48), implemented in
 * spt.c.  Tables come from a static pool of 4 KiB pages in .bss; the guests
 * identity-map their own image, so a table's virtual address equals its
 * physical address whether or not translation is on.
 *
 * Levels count from the leaf: level 0 = 4 KiB pages, 1 = 2 MiB megapages,
 * 2 = 1 GiB gigapages, 3 = 512 GiB terapages (Sv48 only).
 */
#ifndef SPT_H
#define SPT_H

#include <stdint.h>
#include "smode.h"

#define PTE_V   (1UL << 0)
#define PTE_R   (1UL << 1)
#define PTE_W   (1UL << 2)
#define PTE_X   (1UL << 3)
#define PTE_U   (1UL << 4)
#define PTE_G   (1UL << 5)
#define PTE_A   (1UL << 6)
#define PTE_D   (1UL << 7)
#define PTE_PPN_SHIFT 10
#define PTE_PPN_MASK  (((1UL << 44) - 1) << PTE_PPN_SHIFT)

#define PAGE_SIZE       4096UL
#define LEVEL_SIZE(l)   (1UL << (12 + 9 * (l)))
#define PT_POOL_PAGES   64

typedef uint64_t pte_t;

struct pt {
    int levels;             /* 3 = Sv39, 4 = Sv48, 5 = Sv57 */
    pte_t *root;
};

static inline pte_t pte_make(uint64_t pa, uint64_t flags)
{
    return ((pa >> 12) << PTE_PPN_SHIFT) | flags;
}
static inline uint64_t pte_pa(pte_t pte)
{
    return ((pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT) << 12;
}

/* a zeroed, 4 KiB aligned page from the pool (fails the test when empty) */
pte_t *pt_alloc(void);
/* empty address space with 3 (Sv39), 4 (Sv48) or 5 (Sv57) levels */
void pt_init(struct pt *pt, int levels);
/*
 * The PTE that maps va at `level`, creating the tables above it (as
 * non-leaf PTEs with only V set) when create != 0; NULL when a table is
 * missing (create == 0) or a leaf sits above `level`.
 */
pte_t *pt_walk(struct pt *pt, uint64_t va, int level, int create);
/* one leaf: va -> pa at `level` with flags (V is added) */
void pt_map(struct pt *pt, uint64_t va, uint64_t pa, int level, uint64_t flags);
/* leaves of `level` covering [va, va + size) */
void pt_map_range(struct pt *pt, uint64_t va, uint64_t pa, uint64_t size,
                  int level, uint64_t flags);
/* identity-map the guest image (0x8020_0000.._end) with 2 MiB RWX A D pages */
void pt_map_image(struct pt *pt);
/* satp value for this address space */
uint64_t pt_satp(const struct pt *pt, unsigned long asid);

extern char __image_start[], _end[];

#endif /* SPT_H */

/*
 * rvh/pt.h - one page-table builder for every translation format rvh's firmware and guests use:
 * Sv39, Sv48, Sv57 (satp, vsatp) and the G-stage formats Sv39x4, Sv48x4 (hgatp), whose root
 * table has 2 more VPN bits: 2048 entries, 16 KiB, 16 KiB aligned (privileged spec 8.5.1).
 * Implemented in pt.c; PTE bits and atp fields come from rvh/encoding.h.
 *
 * Tables come from a pool of memory the caller owns (a bump allocator; several trees may share
 * one pool).  The code writing a table sees it at its own address; the walker that will use it
 * may see it elsewhere: walker_offset is added to every table address stored in a PTE and in
 * the root PPN (non-zero, for instance, for a VS-stage tree in guest memory, whose pointers are
 * guest-physical addresses).
 *
 * Levels count from the leaf: level 0 = 4 KiB pages, 1 = 2 MiB, 2 = 1 GiB, 3 = 512 GiB.
 */
#ifndef RVH_PT_H
#define RVH_PT_H

#include <stddef.h>
#include <stdint.h>
#include "rvh/encoding.h"

typedef uint64_t pte_t;

#define PAGE_SIZE          (RVH_U64(1) << PAGE_SHIFT)
#define PT_LEVEL_SIZE(l)   (RVH_U64(1) << (PAGE_SHIFT + PT_LEVEL_BITS * (l)))
#define PT_ENTRIES         (RVH_U64(1) << PT_LEVEL_BITS)
#define PT_X4_ROOT_ENTRIES (PT_ENTRIES << PT_X4_ROOT_EXTRA_BITS)

struct pt_pool {
    uintptr_t next, end;       /* free memory for tables: [next, end) */
};

struct pt {
    int levels;                /* 3 = Sv39(x4), 4 = Sv48(x4), 5 = Sv57 */
    int x4;                    /* a G-stage tree (hgatp): the wide root */
    pte_t *root;
    struct pt_pool *pool;
    long walker_offset;        /* walker's address of a table - ours */
};

/* [base, base + bytes) becomes a pool of tables (base 4 KiB aligned) */
void pt_pool_init(struct pt_pool *pool, void *base, size_t bytes);
/* an empty tree: levels 3, 4 or 5 (x4: 3 or 4) */
void pt_init(struct pt *pt, struct pt_pool *pool, int levels, int x4, long walker_offset);
/* a zeroed 4 KiB table from pt's pool */
pte_t *pt_alloc(struct pt *pt);
/*
 * The PTE that maps va at `level`, creating the tables above it (non-leaf PTEs with only V)
 * when create != 0; NULL when a table is missing (create == 0) or a leaf sits above `level`.
 */
pte_t *pt_walk(struct pt *pt, uint64_t va, int level, int create);
/* like pt_walk(..., 1), but a leaf above `level` is fatal (pt_fail) */
pte_t *pt_entry(struct pt *pt, uint64_t va, int level);
/* one leaf: va -> pa at `level` with flags (V is added) */
void pt_map(struct pt *pt, uint64_t va, uint64_t pa, int level, uint64_t flags);
/* leaves of `level` covering [va, va + size) */
void pt_map_range(struct pt *pt, uint64_t va, uint64_t pa, uint64_t size, int level,
                  uint64_t flags);
/* the root's PPN as the walker sees it */
uint64_t pt_root_ppn(const struct pt *pt);
/* satp / vsatp for a tree of 3, 4 or 5 levels */
uint64_t pt_satp(const struct pt *pt, unsigned long asid);
/* hgatp for an x4 tree */
uint64_t pt_hgatp(const struct pt *pt, unsigned long vmid);

static inline pte_t pte_make(uint64_t pa, uint64_t flags)
{
    return ((pa >> PAGE_SHIFT) << PTE_PPN_SHIFT) | flags;
}
static inline uint64_t pte_pa(pte_t pte)
{
    return ((pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT) << PAGE_SHIFT;
}

/*
 * How pt_map stores a leaf.  A guest built as a paravirtual guest (-DRVH_PV, guests/common/pv.h)
 * also tells the hypervisor, which can then enter the mapping of va in its shadow table at once.
 */
#ifdef RVH_PV
void rvh_pv_pte_store(pte_t *entry, pte_t value, uint64_t va);
#define pte_store(entry, value, va) rvh_pv_pte_store((entry), (value), (va))
#else
#define pte_store(entry, value, va) ((void)(va), *(entry) = (value))
#endif

/*
 * Called when the pool runs out or a mapping is impossible; does not return.  The default
 * (weak, pt.c) prints "FAIL page tables: ..." and exits with 0x7e; test harnesses define their
 * own to blame the running test.
 */
void pt_fail(const char *what, uint64_t va) __attribute__((noreturn));

#endif /* RVH_PT_H */

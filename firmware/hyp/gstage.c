/*
 * gstage.c - the hypervisor's page allocator and each VM's G-stage table (priv. spec 8.5:
 * Sv39x4, guest-physical addresses of 41 bits, a 16 KiB root table aligned to 16 KiB).
 *
 * A VM's RAM is one host-physical block; the G-stage maps exactly that block at the VM's
 * guest-physical RAM base and nothing else, so every other guest-physical access (its devices,
 * or wild addresses) is a guest-page fault the hypervisor emulates or refuses.  That is the
 * whole of isolation between VMs: no VM's table can name another VM's memory or the
 * hypervisor's.  2 MiB megapages where alignment allows, 4 KiB pages elsewhere.
 */
#include "hyp.h"
#include "rvh/libc.h"

extern char __heap_start[], __heap_end[];
static unsigned long heap_next;

void *hyp_alloc_pages(size_t bytes, size_t align)
{
    if (!heap_next)
        heap_next = (unsigned long)__heap_start;
    unsigned long start = (heap_next + align - 1) & ~(align - 1);
    if (start + bytes > (unsigned long)__heap_end)
        hyp_panic("hyp: out of memory for page tables (%lu bytes)\n", (unsigned long)bytes);
    heap_next = start + bytes;
    /* a word at a time: page tables are whole pages, and the byte-wise memset costs 4x */
    for (unsigned long *word = (unsigned long *)start; (unsigned long)word < start + bytes; word++)
        *word = 0;
    return (void *)start;
}

#define PTE_LEAF_RWX  (PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | PTE_X_MASK | PTE_U_MASK | \
                       PTE_A_MASK | PTE_D_MASK)
#define PAGE_4K       0x1000UL
#define PAGE_2M       0x200000UL

static unsigned long *next_table(unsigned long *entry)
{
    if (!(*entry & PTE_V_MASK)) {
        unsigned long *table = hyp_alloc_pages(PAGE_4K, PAGE_4K);
        *entry = ((unsigned long)table >> 12) << PTE_PPN_SHIFT | PTE_V_MASK;
    }
    return (unsigned long *)((*entry >> PTE_PPN_SHIFT) << 12);
}

static void map_page(unsigned long *root, unsigned long gpa, unsigned long hpa, int megapage)
{
    /* Sv39x4: VPN[2] is GPA bits 40..30 (11 bits), VPN[1] 29..21, VPN[0] 20..12 */
    unsigned long *level1 = next_table(&root[(gpa >> 30) & 0x7ff]);
    unsigned long leaf = (hpa >> 12) << PTE_PPN_SHIFT | PTE_LEAF_RWX;
    if (megapage) {
        level1[(gpa >> 21) & 0x1ff] = leaf;
        return;
    }
    unsigned long *level0 = next_table(&level1[(gpa >> 21) & 0x1ff]);
    level0[(gpa >> 12) & 0x1ff] = leaf;
}

/* Whether the VM's RAM may be given to it, in any mode: page-aligned, above the hypervisor,
 * clear of the stats page and of every other VM.  0, or -1 with a message. */
int vm_check_ram(struct vm *vm)
{
    unsigned long heap_end = (unsigned long)__heap_end;
    if ((vm->host_base | vm->ram_base | vm->ram_size) & (PAGE_4K - 1) || !vm->ram_size) {
        printf("hyp: %s: RAM not page-aligned\n", vm->name);
        return -1;
    }
    unsigned long stats = (unsigned long)hyp_stats_page;
    if (vm->host_base < stats + HYP_STATS_SIZE && stats < vm->host_base + vm->ram_size) {
        printf("hyp: %s: RAM overlaps the stats page\n", vm->name);
        return -1;
    }
    if (vm->host_base < heap_end) {
        printf("hyp: %s: RAM at 0x%lx overlaps the hypervisor (ends 0x%lx)\n", vm->name,
                   vm->host_base, heap_end);
        return -1;
    }
    if (vm->ram_base + vm->ram_size > (1UL << 41) || vm->ram_base + vm->ram_size < vm->ram_base) {
        printf("hyp: %s: guest-physical RAM beyond Sv39x4\n", vm->name);
        return -1;
    }
    for (unsigned i = 0; i < vm->id; i++) {
        struct vm *other = &hyp_vms[i];
        if (vm->host_base < other->host_base + other->ram_size &&
            other->host_base < vm->host_base + vm->ram_size) {
            printf("hyp: %s: RAM overlaps %s\n", vm->name, other->name);
            return -1;
        }
    }
    return 0;
}

/* Build the VM's G-stage table and hgatp (hw mode).  Returns 0. */
int gstage_map_vm(struct vm *vm)
{
    vm->gstage_root = hyp_alloc_pages(4 * PAGE_4K, 4 * PAGE_4K);
    for (unsigned long off = 0; off < vm->ram_size;) {
        unsigned long gpa = vm->ram_base + off, hpa = vm->host_base + off;
        int mega = !((gpa | hpa) & (PAGE_2M - 1)) && vm->ram_size - off >= PAGE_2M;
        map_page(vm->gstage_root, gpa, hpa, mega);
        off += mega ? PAGE_2M : PAGE_4K;
    }
    vm->vmid = vm->id + 1;
    vm->hgatp = (unsigned long)HGATP_MODE_SV39X4 << HGATP_MODE_SHIFT |
                (unsigned long)vm->vmid << HGATP_VMID_SHIFT |
                (unsigned long)vm->gstage_root >> 12;
    return 0;
}

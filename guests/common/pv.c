/*
 * pv.c - the S-mode guests' paravirtual layer (see pv.h; the ABI is in docs/hypervisor.md).
 */
#include "smode.h"
#include "pv.h"
#include "rvh/sbi.h"

volatile int rvh_pv_on;
uint8_t rvh_pv_pages[RVH_MAX_HARTS][RVH_PV_PAGE_SIZE] __attribute__((aligned(RVH_PV_PAGE_SIZE)));

extern char rvh_strap_entry[], rvh_pv_strap_entry[];

/* PTE updates waiting for the next fence: {va, pte address, value}, one queue per hart */
struct pv_mmu_entry {
    uint64_t va, pte_address, value;
};
_Static_assert(sizeof(struct pv_mmu_entry) == SBI_RVH_PV_MMU_ENTRY_SIZE, "MMU_UPDATE entry");
static struct pv_mmu_entry pv_mmu_queue[RVH_MAX_HARTS][SBI_RVH_PV_MMU_BATCH_MAX];
static unsigned pv_mmu_queued[RVH_MAX_HARTS];

static struct sbiret pv_call(long fid, unsigned long a0, unsigned long a1, unsigned long a2)
{
    return sbi_ecall(SBI_EXT_RVH_PV, fid, a0, a1, a2, 0, 0, 0);
}

int rvh_pv_init(unsigned long hartid)
{
    if (hartid >= RVH_MAX_HARTS)
        return 0;
    if (hartid == rvh_boot_hartid && !rvh_pv_on) {
        struct sbiret probe = sbi_probe_extension(SBI_EXT_RVH_PV);
        if (probe.error != SBI_SUCCESS || probe.value == 0)
            return 0;               /* native, or no pv: the real instructions */
    } else if (!rvh_pv_on) {
        return 0;
    }
    uint8_t *page = rvh_pv_pages[hartid];
    /* the guest's page tables map the image (and so the page) at its physical address */
    struct sbiret r = pv_call(SBI_RVH_PV_SET_SHARED_PAGE, (uintptr_t)page, (uintptr_t)page, 0);
    if (r.error != SBI_SUCCESS) {
        printf("FAIL %s: pv SET_SHARED_PAGE refused (%ld)\n", rvh_test_name, r.error);
        exit(0x7d);
    }
    /* the hypervisor copied the virtual CSRs in: traps now arrive at the pv entry */
    volatile unsigned long *stvec = (volatile unsigned long *)(page + RVH_PV_STVEC);
    if (*stvec == (uintptr_t)rvh_strap_entry)
        *stvec = (uintptr_t)rvh_pv_strap_entry;
    rvh_pv_on = 1;
    return 1;
}

static void pv_sync(void)
{
    pv_call(SBI_RVH_PV_SYNC, 0, 0, 0);
}

unsigned long rvh_pv_csr_special(unsigned offset, enum rvh_pv_op op, unsigned long value)
{
    volatile unsigned long *w = rvh_pv_word(offset);
    unsigned long old = *w;
    unsigned long new = op == RVH_PV_OP_WRITE ? value
                      : op == RVH_PV_OP_SET ? old | value : old & ~value;
    unsigned long sie = *rvh_pv_word(RVH_PV_SIE), sip = *rvh_pv_word(RVH_PV_SIP);
    switch (offset) {
    case RVH_PV_SATP:
        /* the page's satp says what stuck; the queued PTEs go after the fence that follows
         * (before it they would only be dropped again) */
        if (new != old)
            pv_call(SBI_RVH_PV_SET_SATP, new, 0, 0);
        break;
    case RVH_PV_SSTATUS:
        *w = new;
        /* SUM and MXR choose the hypervisor's shadow table, FS whether FP instructions are
         * legal (the real FS follows it); setting SIE may let a pending interrupt in
         * (3.1.6.1: it is taken at once, before the next instruction) */
        if (((old ^ new) & (SSTATUS_SUM_MASK | SSTATUS_MXR_MASK | SSTATUS_FS_MASK)) ||
            ((new & ~old & SSTATUS_SIE_MASK) && (sie & sip)))
            pv_sync();
        break;
    case RVH_PV_SIE:
        *w = new;
        /* a newly enabled interrupt: the hypervisor may have to deliver it, or to arm its
         * timer for it (the page's sip says nothing of a timer nobody was watching) */
        if (new & ~old)
            pv_sync();
        break;
    case RVH_PV_SIP:
        /* only SSIP is writable from S (3.1.9); the hypervisor owns the other bits */
        *w = (old & ~SIP_SSIP_MASK) | (new & SIP_SSIP_MASK);
        if ((old ^ new) & SIP_SSIP_MASK)
            pv_sync();
        break;
    }
    return old;
}

void rvh_pv_sfence_vma(unsigned long va, int all_addresses)
{
    unsigned long flags = SBI_RVH_PV_FENCE_ALL_ASIDS |
                          (all_addresses ? SBI_RVH_PV_FENCE_ALL_ADDRESSES : 0);
    pv_call(SBI_RVH_PV_SFENCE_VMA, all_addresses ? 0 : va, 0, flags);
    /* after the fence: what it would drop from the shadow, the batch enters again */
    rvh_pv_mmu_flush();
}

void rvh_pv_wfi(void)
{
    pv_call(SBI_RVH_PV_WFI, 0, 0, 0);
}

void rvh_pv_mmu_flush(void)
{
    unsigned long hart = rvh_hartid();
    if (hart >= RVH_MAX_HARTS || !pv_mmu_queued[hart])
        return;
    pv_call(SBI_RVH_PV_MMU_UPDATE, (uintptr_t)pv_mmu_queue[hart], pv_mmu_queued[hart], 0);
    pv_mmu_queued[hart] = 0;
}

/* firmware/common/pt.c's leaf stores in a pv build (rvh/pt.h's pte_store) */
void rvh_pv_pte_store(pte_t *entry, pte_t value, uint64_t va)
{
    *(volatile pte_t *)entry = value;
    unsigned long hart = rvh_hartid();
    if (!rvh_pv_on || hart >= RVH_MAX_HARTS)
        return;
    unsigned n = pv_mmu_queued[hart];
    pv_mmu_queue[hart][n] = (struct pv_mmu_entry){ va, (uintptr_t)entry, value };
    pv_mmu_queued[hart] = n + 1;
    if (n + 1 == SBI_RVH_PV_MMU_BATCH_MAX)
        rvh_pv_mmu_flush();
}

/*
 * pvcalls.c - rvh's pv SBI extension, call by call, from a guest that makes the calls itself
 * (docs/hypervisor.md, "pv mode"; run it with rvh run --hyp --guest pvcalls.elf,virt=pv).
 *
 * As a pv VM: BASE finds the extension; every call but SET_SHARED_PAGE answers NO_SHMEM until
 * a page is registered; a misaligned page, one outside the VM's RAM or straddling its end is
 * refused; a registered page shows the virtual CSRs and follows them both ways (a store in the
 * page is what an emulated csrr reads, an emulated csrw lands in the page); SET_SATP ignores an
 * unsupported mode; MMU_UPDATE refuses a too long list, a list or a PTE outside RAM, writes the
 * PTEs it is given and enters in the shadow table only a leaf with A set mapping the VM's RAM;
 * an unknown function is NOT_SUPPORTED; a page given up is gone.  This guest is a native build:
 * its trap entry is not the pv one, so it takes no trap while its page is registered.
 * As any other VM (hw, trap): BASE says the extension is absent and a call is NOT_SUPPORTED.
 */
#include "smode.h"
#include "spt.h"

TEST_NAME("hyp/pvcalls");

#define TEST_VA         0x100000000UL
#define UART_PAGE       0x10000000UL
#define MODE_UNKNOWN    11UL            /* Sv64: not specified */

static uint8_t page[4096] __attribute__((aligned(4096)));
static uint8_t data[4096] __attribute__((aligned(4096)));
static uint64_t entries[SBI_RVH_PV_MMU_BATCH_MAX + 1][3];
static struct pt space;

static struct sbiret pv(long fid, unsigned long a0, unsigned long a1, unsigned long a2)
{
    return sbi_ecall(SBI_EXT_RVH_PV, fid, a0, a1, a2, 0, 0, 0);
}

static volatile uint64_t *word(unsigned offset)
{
    return (volatile uint64_t *)(page + offset);
}

int main(unsigned long hartid, unsigned long dtb)
{
    (void)hartid;
    struct sbiret r = sbi_probe_extension(SBI_EXT_RVH_PV);
    CHECK_EQ(1, r.error, SBI_SUCCESS);
    if (r.value == 0) {
        CHECK_EQ(2, pv(SBI_RVH_PV_SYNC, 0, 0, 0).error, SBI_ERR_NOT_SUPPORTED);
        puts("rvh pv extension: absent");
        pass();
    }
    puts("rvh pv extension: present");
    /* the VM's tree sits at the top 2 MiB boundary of its RAM (docs/hypervisor.md) */
    unsigned long ram_end = (dtb & ~0x1fffffUL) + 0x200000UL;

    /* ---- nothing but SET_SHARED_PAGE before a page ---- */
    CHECK_EQ(10, pv(SBI_RVH_PV_SYNC, 0, 0, 0).error, SBI_ERR_NO_SHMEM);
    CHECK_EQ(11, pv(SBI_RVH_PV_SET_SATP, 0, 0, 0).error, SBI_ERR_NO_SHMEM);
    CHECK_EQ(12, pv(SBI_RVH_PV_MMU_UPDATE, (uintptr_t)entries, 0, 0).error, SBI_ERR_NO_SHMEM);

    /* ---- where a page may be ---- */
    uintptr_t p = (uintptr_t)page;
    CHECK_EQ(20, pv(SBI_RVH_PV_SET_SHARED_PAGE, p + 8, p, 0).error, SBI_ERR_INVALID_PARAM);
    CHECK_EQ(21, pv(SBI_RVH_PV_SET_SHARED_PAGE, UART_PAGE, p, 0).error, SBI_ERR_INVALID_ADDRESS);
    CHECK_EQ(22, pv(SBI_RVH_PV_SET_SHARED_PAGE, 0x7ffff000UL, p, 0).error, SBI_ERR_INVALID_ADDRESS);
    CHECK_EQ(23, pv(SBI_RVH_PV_SET_SHARED_PAGE, ram_end, p, 0).error, SBI_ERR_INVALID_ADDRESS);
    CHECK_EQ(24, pv(SBI_RVH_PV_SYNC, 0, 0, 0).error, SBI_ERR_NO_SHMEM);     /* still none */

    /* ---- a page: the virtual CSRs, both ways ---- */
    csr_write(sscratch, 0x1111);
    memset(page, 0xa5, sizeof(page));
    CHECK_EQ(30, pv(SBI_RVH_PV_SET_SHARED_PAGE, p, p, 0).error, SBI_SUCCESS);
    CHECK_EQ(31, *word(RVH_PV_SSCRATCH), 0x1111);
    CHECK_EQ(32, *word(RVH_PV_STVEC), csr_read(stvec));
    CHECK_EQ(33, *word(RVH_PV_SATP), 0);
    CHECK_EQ(34, *word(RVH_PV_SSTATUS), csr_read(sstatus));     /* UXL included */
    CHECK_EQ(35, *word(RVH_PV_SSTATUS) >> SSTATUS_UXL_SHIFT & 3, 2);
    CHECK_EQ(36, *word(RVH_PV_TRAP_T0), 0);                     /* the rest is cleared */
    *word(RVH_PV_SSCRATCH) = 0x2222;                            /* a store in the page ... */
    CHECK_EQ(37, csr_read(sscratch), 0x2222);                   /* ... is the CSR */
    csr_write(sscratch, 0x3333);                                /* and an emulated write ... */
    CHECK_EQ(38, *word(RVH_PV_SSCRATCH), 0x3333);               /* ... lands in the page */
    *word(RVH_PV_SEPC) = 0x80200003UL;                          /* legalized: IALIGN 16 */
    CHECK_EQ(39, csr_read(sepc), 0x80200002UL);
    *word(RVH_PV_SIE) = ~0UL;                                   /* only SSIE, STIE, SEIE */
    CHECK_EQ(40, csr_read(sie), MIP_SSIP_MASK | MIP_STIP_MASK | MIP_SEIP_MASK);
    *word(RVH_PV_SIE) = 0;
    CHECK_EQ(41, pv(SBI_RVH_PV_SYNC, 0, 0, 0).error, SBI_SUCCESS);
    csr_write(sscratch, 0);

    /* ---- SET_SATP: WARL as the CSR ---- */
    spt_init(&space, 3);
    pt_map_image(&space);
    pt_map(&space, TEST_VA + PAGE_SIZE, UART_PAGE, 0, PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    uint64_t satp = pt_satp(&space, 0);
    CHECK_EQ(50, pv(SBI_RVH_PV_SET_SATP, MODE_UNKNOWN << SATP_MODE_SHIFT | satp, 0, 0).error,
             SBI_SUCCESS);
    CHECK_EQ(51, *word(RVH_PV_SATP), 0);                        /* ignored */
    CHECK_EQ(52, pv(SBI_RVH_PV_SET_SATP, satp, 0, 0).error, SBI_SUCCESS);
    CHECK_EQ(53, *word(RVH_PV_SATP), satp);
    CHECK_EQ(54, csr_read(satp), satp);

    /* ---- MMU_UPDATE ---- */
    pte_t *slot = pt_walk(&space, TEST_VA, 0, 1);
    pte_t *uart_slot = pt_walk(&space, TEST_VA + PAGE_SIZE, 0, 1);
    pte_t *noa_slot = pt_walk(&space, TEST_VA + 2 * PAGE_SIZE, 0, 1);
    CHECK(60, slot && uart_slot && noa_slot);
    r = pv(SBI_RVH_PV_MMU_UPDATE, (uintptr_t)entries, SBI_RVH_PV_MMU_BATCH_MAX + 1, 0);
    CHECK_EQ(61, r.error, SBI_ERR_INVALID_PARAM);
    CHECK_EQ(62, pv(SBI_RVH_PV_MMU_UPDATE, UART_PAGE, 1, 0).error, SBI_ERR_INVALID_ADDRESS);
    CHECK_EQ(63, pv(SBI_RVH_PV_MMU_UPDATE, ram_end - 24, 2, 0).error, SBI_ERR_INVALID_ADDRESS);
    entries[0][0] = TEST_VA;
    entries[0][1] = UART_PAGE;                                  /* a "PTE" outside RAM */
    entries[0][2] = 0;
    r = pv(SBI_RVH_PV_MMU_UPDATE, (uintptr_t)entries, 1, 0);
    CHECK_EQ(64, r.error, SBI_ERR_INVALID_ADDRESS);
    CHECK_EQ(64, r.value, 0);
    uint64_t rw = PTE_V_MASK | PTE_R_MASK | PTE_W_MASK;
    data[8] = 0x5a;
    entries[0][0] = TEST_VA;                                    /* RAM, A set: entered */
    entries[0][1] = (uintptr_t)slot;
    entries[0][2] = pte_make((uintptr_t)data, rw | PTE_A_MASK | PTE_D_MASK);
    entries[1][0] = TEST_VA + PAGE_SIZE;                        /* a device page: written only */
    entries[1][1] = (uintptr_t)uart_slot;
    entries[1][2] = pte_make(UART_PAGE, rw | PTE_A_MASK | PTE_D_MASK);
    entries[2][0] = TEST_VA + 2 * PAGE_SIZE;                    /* A clear: written only */
    entries[2][1] = (uintptr_t)noa_slot;
    entries[2][2] = pte_make((uintptr_t)data, rw);
    entries[3][0] = TEST_VA + 3 * PAGE_SIZE;                    /* va not through that PTE */
    entries[3][1] = (uintptr_t)slot;
    entries[3][2] = entries[0][2];
    r = pv(SBI_RVH_PV_MMU_UPDATE, (uintptr_t)entries, 4, 0);
    CHECK_EQ(65, r.error, SBI_SUCCESS);
    CHECK_EQ(66, r.value, 1);
    CHECK_EQ(67, *slot, entries[0][2]);
    CHECK_EQ(68, *uart_slot, entries[1][2]);
    CHECK_EQ(69, *noa_slot, entries[2][2]);
    CHECK_EQ(70, *(volatile uint8_t *)(TEST_VA + 8), 0x5a);    /* no fault: entered already */
    CHECK_EQ(71, *noa_slot & PTE_A_MASK, 0);                    /* untouched by the call */

    /* ---- the rest ---- */
    CHECK_EQ(80, pv(99, 0, 0, 0).error, SBI_ERR_NOT_SUPPORTED);
    CHECK_EQ(81, pv(SBI_RVH_PV_SET_SHARED_PAGE, 0, 0, 0).error, SBI_SUCCESS);
    CHECK_EQ(82, pv(SBI_RVH_PV_SYNC, 0, 0, 0).error, SBI_ERR_NO_SHMEM);
    /* with no page, traps are the plain trap-mode ones again */
    uint64_t v = 0;
    CHECK_EQ(83, probe_load64(TEST_VA + 3 * PAGE_SIZE, &v), CAUSE_LOAD_PAGE_FAULT);
    csr_write(satp, 0);
    sfence_vma_all();
    puts("pv calls: every answer as the ABI says");
    pass();
}

/*
 * paging.h - the body of the sv39 and sv48 guests (privileged spec
 * 20211203, 4.3 "Sv32" for the translation algorithm, 4.4 Sv39, 4.5 Sv48).
 * The guest defines LEVELS (3 or 4), TEST_NAME and calls paging_test().
 *
 * Address space (all leaves A = D = 1 unless said otherwise):
 *   image 0x8020_0000.._end     identity, 2 MiB RWX pages
 *   TEST_VA + n * 4 KiB         test pages over the static pages[] below
 *   MEGA_VA                     a 2 MiB page -> 0x8020_0000 (the image)
 *   GIGA_VA                     a 1 GiB page -> 0x8000_0000
 *   BAD_MEGA_VA / BAD_GIGA_VA   superpages whose PPN is not aligned
 *   HIGH_VA                     a page in the upper (negative) half
 *   Sv48 only: GIGA48_VA (1 GiB page above the Sv39 range) and
 *   TERA_VA (512 GiB page -> physical 0), BAD_TERA_VA (misaligned).
 *
 * The checks are listed in paging_test(); each failing one exits with its
 * number.  Where the spec allows two behaviours (A/D bits updated by the
 * hardware or a page fault, i.e. Svade; Sv57 present or not; a PTE with a
 * reserved bit set faulting or not) both pass and the output says which.
 * QEMU 7.2: hardware A/D, Sv57 supported, reserved bit 54 faults.
 *
 * satp MODE 10 is Sv57 (QEMU 7.2 supports it), so the "unsupported mode"
 * checks use 11 (Sv64, not specified), 12 and 13 (reserved).
 */
#include "smode.h"
#include "spt.h"

#if LEVELS == 3
#define VA_BITS         39
#define SATP_MODE       SATP_MODE_SV39
#define HIGH_VA         0xffffffc000000000UL        /* VPN[2] = 256 */
#else
#define VA_BITS         48
#define SATP_MODE       SATP_MODE_SV48
#define HIGH_VA         0xffff800000000000UL        /* VPN[3] = 256 */
#define GIGA48_VA       0x0000008000000000UL        /* 512 GiB */
#define TERA_VA         0x0000010000000000UL        /* 1 TiB */
#define BAD_TERA_VA     0x0000018000000000UL
#endif
/* first address above the lower half, and the last below the upper half */
#define NONCANON_LOW    (1UL << (VA_BITS - 1))
#define NONCANON_HIGH   (~0UL << VA_BITS)

#define TEST_VA         0x100000000UL               /* 4 GiB */
#define BAD_MEGA_VA     0x140000000UL
#define MEGA_VA         0x180000000UL
#define GIGA_VA         0x1c0000000UL
#define BAD_GIGA_VA     0x200000000UL
#define NO_TABLE_VA     0x300000000UL               /* no table below the root */

#define RET_INSN        0x00008067u                 /* jalr x0, 0(ra) */
#define RWXAD           (PTE_R_MASK | PTE_W_MASK | PTE_X_MASK | PTE_A_MASK | PTE_D_MASK)

enum {                      /* test pages: TEST_VA + PG_x * 4 KiB */
    PG_ALIAS0, PG_ALIAS1, PG_RO, PG_NX, PG_X, PG_AD, PG_AD_X, PG_WONLY,
    PG_WX, PG_USER, PG_USER_X, PG_XONLY, PG_REMAP, PG_NONLEAF, PG_RSVD,
    PG_UNMAPPED, PG_COUNT
};
enum {                      /* physical pages */
    P_A, P_B, P_C, P_D, P_E, P_F, P_G, P_H, P_I, P_J, P_K, P_L, P_COUNT
};

static uint8_t pages[P_COUNT][4096] __attribute__((aligned(4096)));
static struct pt space;
static volatile uint64_t marker = 0x5a5a1234c0ffee00ULL;

#define VA(pg)          (TEST_VA + (uint64_t)(pg) * PAGE_SIZE)
#define PA(p)           ((uintptr_t)pages[p])
#define WORD(p, off)    (*(volatile uint64_t *)(PA(p) + (off)))

static pte_t *pte_of(uint64_t va)
{
    pte_t *e = pt_walk(&space, va, 0, 0);
    if (!e) {
        printf("FAIL %s: no PTE for 0x%lx\n", rvh_test_name, (unsigned long)va);
        exit(0x7e);
    }
    return e;
}

static void put_ret(int p)
{
    *(volatile uint32_t *)PA(p) = RET_INSN;
    fence_i();
}

/* a probe that must fault with `cause` and stval = va */
#define EXPECT_FAULT(n, probe, cause, va) do {                          \
    long __c = (probe);                                                 \
    unsigned long __va = (va);                                          \
    rvh_check_num = (n);                                                \
    if (__c != (long)(cause))                                           \
        rvh_check_failed_eq((n), __LINE__, "scause of " #probe, #cause, \
                            __c, (cause));                              \
    if (strap_expect.tval != __va)                                      \
        rvh_check_failed_eq((n), __LINE__, "stval of " #probe, #va,     \
                            strap_expect.tval, __va);                   \
} while (0)

static void build_space(void)
{
    spt_init(&space, LEVELS);
    pt_map_image(&space);

    for (int p = 0; p < P_COUNT; p++)
        for (int i = 0; i < 512; i++)
            WORD(p, i * 8) = ((uint64_t)p << 32) | (uint64_t)i;

    pt_map(&space, VA(PG_ALIAS0), PA(P_A), 0, PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    pt_map(&space, VA(PG_ALIAS1), PA(P_A), 0, PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    pt_map(&space, VA(PG_RO), PA(P_B), 0, PTE_R_MASK | PTE_A_MASK);
    put_ret(P_C);
    pt_map(&space, VA(PG_NX), PA(P_C), 0, PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    put_ret(P_D);
    pt_map(&space, VA(PG_X), PA(P_D), 0, PTE_R_MASK | PTE_X_MASK | PTE_A_MASK);
    pt_map(&space, VA(PG_AD), PA(P_E), 0, PTE_R_MASK | PTE_W_MASK);          /* A = D = 0 */
    pt_map(&space, VA(PG_AD_X), PA(P_D), 0, PTE_R_MASK | PTE_X_MASK);        /* A = 0 */
    pt_map(&space, VA(PG_WONLY), PA(P_F), 0, PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    pt_map(&space, VA(PG_WX), PA(P_D), 0, PTE_W_MASK | PTE_X_MASK | PTE_A_MASK | PTE_D_MASK);
    pt_map(&space, VA(PG_USER), PA(P_G), 0, PTE_U_MASK | PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    pt_map(&space, VA(PG_USER_X), PA(P_D), 0, PTE_U_MASK | PTE_R_MASK | PTE_X_MASK | PTE_A_MASK);
    put_ret(P_H);
    pt_map(&space, VA(PG_XONLY), PA(P_H), 0, PTE_X_MASK | PTE_A_MASK);
    pt_map(&space, VA(PG_REMAP), PA(P_I), 0, PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    /* a non-leaf PTE at level 0 (pointing at some page) */
    *pt_walk(&space, VA(PG_NONLEAF), 0, 1) = pte_make(PA(P_J), PTE_V_MASK);
    /* a reserved PTE bit (54) */
    pt_map(&space, VA(PG_RSVD), PA(P_K), 0, PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK | (1UL << PTE_RESERVED_SHIFT));
    /* PG_UNMAPPED: its PTE stays 0 */

    pt_map(&space, MEGA_VA, 0x80200000UL, 1, RWXAD);
    pt_map(&space, BAD_MEGA_VA, 0x80201000UL, 1, RWXAD);     /* PPN[0] != 0 */
    pt_map(&space, GIGA_VA, 0x80000000UL, 2, RWXAD);
    pt_map(&space, BAD_GIGA_VA, 0x80200000UL, 2, RWXAD);     /* PPN[1] != 0 */
    pt_map(&space, HIGH_VA, PA(P_L), 0, PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
#if LEVELS == 4
    pt_map(&space, GIGA48_VA, 0x80000000UL, 2, RWXAD);
    pt_map(&space, TERA_VA, 0, 3, RWXAD);
    pt_map(&space, BAD_TERA_VA, 0x80000000UL, 3, RWXAD);     /* PPN[2] != 0 */
#endif
}

/* satp MODE values nobody implements: Sv64 (11, not specified) and 12 (reserved) */
static void unsupported_modes(int n, uint64_t current)
{
    static const unsigned long modes[] = { 11, 12, 13 };
    for (unsigned i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        csr_write(satp, (modes[i] << SATP_MODE_SHIFT) | ((uintptr_t)space.root >> 12));
        CHECK_EQ(n, csr_read(satp), current);
    }
}

static void ad_bits(void)
{
    /* load from a page with A = D = 0 */
    pte_t *e = pte_of(VA(PG_AD));
    uint64_t v = 0;
    long c = probe_load64(VA(PG_AD) + 8, &v);
    int svade = 0;
    if (c == -1) {
        CHECK_EQ(60, v, WORD(P_E, 8));
        CHECK_EQ(61, *e & (PTE_A_MASK | PTE_D_MASK), PTE_A_MASK);      /* A set, D still 0 */
        c = probe_store64(VA(PG_AD) + 16, 0x1234);
        CHECK_EQ(62, c, -1);
        CHECK_EQ(63, *e & (PTE_A_MASK | PTE_D_MASK), PTE_A_MASK | PTE_D_MASK);
        CHECK_EQ(64, WORD(P_E, 16), 0x1234);
    } else {
        /* Svade: the access faults and software sets the bits */
        svade = 1;
        CHECK_EQ(65, c, CAUSE_LOAD_PAGE_FAULT);
        CHECK_EQ(65, strap_expect.tval, VA(PG_AD) + 8);
        *e |= PTE_A_MASK;
        sfence_vma_va(VA(PG_AD));
        CHECK_EQ(66, probe_load64(VA(PG_AD) + 8, &v), -1);
        EXPECT_FAULT(67, probe_store64(VA(PG_AD) + 16, 0x1234),
                     CAUSE_STORE_PAGE_FAULT, VA(PG_AD) + 16);
        *e |= PTE_D_MASK;
        sfence_vma_va(VA(PG_AD));
        CHECK_EQ(68, probe_store64(VA(PG_AD) + 16, 0x1234), -1);
        CHECK_EQ(69, WORD(P_E, 16), 0x1234);
    }
    /* instruction fetch from an executable page with A = 0 */
    e = pte_of(VA(PG_AD_X));
    c = probe_exec(VA(PG_AD_X));
    if (!svade) {
        CHECK_EQ(70, c, -1);
        CHECK_EQ(71, *e & (PTE_A_MASK | PTE_D_MASK), PTE_A_MASK);
    } else {
        CHECK_EQ(72, c, CAUSE_INSTRUCTION_PAGE_FAULT);
        CHECK_EQ(72, strap_expect.tval, VA(PG_AD_X));
    }
    printf("A/D bits: %s\n", svade ? "page faults (Svade): software sets them"
                                   : "set by the hardware (A on access, D on store)");
}

static int paging_test(void)
{
    uint64_t v = 0;
    uint32_t w = 0;

    /* ---- before translation ---- */
    CHECK_EQ(1, csr_read(satp), 0);
    build_space();
    unsupported_modes(2, 0);        /* the whole write is ignored: still Bare */

    /* ---- turn translation on ---- */
    uint64_t satp = pt_satp(&space, 0);
    csr_write(satp, satp);
    sfence_vma_all();
    CHECK_EQ(3, csr_read(satp), satp);
    CHECK_EQ(4, marker, 0x5a5a1234c0ffee00ULL);      /* identity mapping works */
    printf("satp = 0x%lx (mode %lu)\n", (unsigned long)satp, SATP_MODE);

    /* ASIDLEN: how many ASID bits stick (WARL) */
    csr_write(satp, satp | SATP_ASID_MASK);
    uint64_t asid = (csr_read(satp) & SATP_ASID_MASK) >> SATP_ASID_SHIFT;
    int asidlen = 0;
    while (asid & (1UL << asidlen))
        asidlen++;
    printf("ASIDLEN = %d\n", asidlen);
    csr_write(satp, satp);
    sfence_vma_all();
    CHECK_EQ(5, csr_read(satp), satp);

    unsupported_modes(6, satp);     /* ignored with translation on too */

    /*
     * Sv57 (mode 10) is optional: with a 5-level identity map of the image
     * the write either takes effect (and the code keeps running) or is
     * ignored as a whole.  Reported only.
     */
    struct pt sv57;
    spt_init(&sv57, 5);
    pt_map_image(&sv57);
    csr_write(satp, pt_satp(&sv57, 0));
    sfence_vma_all();
    uint64_t got = csr_read(satp);
    CHECK(8, got == pt_satp(&sv57, 0) || got == satp);
    CHECK_EQ(8, marker, 0x5a5a1234c0ffee00ULL);
    printf("satp mode 10 (Sv57): %s\n", got == satp ? "not supported (write ignored)"
                                                    : "supported");
    csr_write(satp, satp);
    sfence_vma_all();
    CHECK_EQ(9, csr_read(satp), satp);
    CHECK_EQ(7, marker, 0x5a5a1234c0ffee00ULL);

    /* ---- loads and stores through the mappings; aliases ---- */
    CHECK_EQ(10, probe_load64(VA(PG_ALIAS0) + 24, &v), -1);
    CHECK_EQ(11, v, WORD(P_A, 24));
    CHECK_EQ(12, probe_store64(VA(PG_ALIAS0) + 32, 0xabcdef0123456789ULL), -1);
    CHECK_EQ(13, *(volatile uint64_t *)(VA(PG_ALIAS1) + 32), 0xabcdef0123456789ULL);
    CHECK_EQ(14, WORD(P_A, 32), 0xabcdef0123456789ULL);   /* physical page */
    WORD(P_A, 40) = 0x1111222233334444ULL;                 /* via the identity map */
    CHECK_EQ(15, *(volatile uint64_t *)(VA(PG_ALIAS0) + 40), 0x1111222233334444ULL);
    *(volatile uint8_t *)(VA(PG_ALIAS1) + 41) = 0x99;
    CHECK_EQ(16, *(volatile uint64_t *)(VA(PG_ALIAS0) + 40), 0x1111222233339944ULL);
    CHECK_EQ(17, probe_load32(VA(PG_ALIAS1) + 4092, &w), -1);
    CHECK_EQ(18, w, *(volatile uint32_t *)(PA(P_A) + 4092)); /* last word of the page */

    /* ---- unmapped addresses: page faults with stval = the address ---- */
    EXPECT_FAULT(20, probe_load64(VA(PG_UNMAPPED) + 8, &v), CAUSE_LOAD_PAGE_FAULT,
                 VA(PG_UNMAPPED) + 8);
    EXPECT_FAULT(21, probe_store64(VA(PG_UNMAPPED) + 16, 1), CAUSE_STORE_PAGE_FAULT,
                 VA(PG_UNMAPPED) + 16);
    EXPECT_FAULT(22, probe_exec(VA(PG_UNMAPPED)), CAUSE_INSTRUCTION_PAGE_FAULT,
                 VA(PG_UNMAPPED));
    CHECK_EQ(22, strap_expect.epc, VA(PG_UNMAPPED));
    EXPECT_FAULT(23, probe_load8(NO_TABLE_VA + 0x123, (uint8_t *)&v),
                 CAUSE_LOAD_PAGE_FAULT, NO_TABLE_VA + 0x123);
    /* the trap came from S-mode with SIE = 0: SPP = 1, SPIE = 0 */
    CHECK_EQ(24, strap_expect.status & (SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK), SSTATUS_SPP_MASK);

    /* ---- permissions ---- */
    CHECK_EQ(30, probe_load64(VA(PG_RO) + 8, &v), -1);
    CHECK_EQ(30, v, WORD(P_B, 8));
    EXPECT_FAULT(31, probe_store64(VA(PG_RO) + 8, 5), CAUSE_STORE_PAGE_FAULT, VA(PG_RO) + 8);
    EXPECT_FAULT(32, probe_store8(VA(PG_RO) + 3, 5), CAUSE_STORE_PAGE_FAULT, VA(PG_RO) + 3);
    CHECK_EQ(33, WORD(P_B, 8), ((uint64_t)P_B << 32) | 1);   /* unchanged */
    EXPECT_FAULT(34, probe_exec(VA(PG_NX)), CAUSE_INSTRUCTION_PAGE_FAULT, VA(PG_NX));
    CHECK_EQ(35, probe_exec(VA(PG_X)), -1);                  /* runs the ret */
    CHECK_EQ(36, probe_load32(VA(PG_X), &w), -1);            /* R|X: readable */
    CHECK_EQ(36, w, RET_INSN);
    EXPECT_FAULT(37, probe_store64(VA(PG_X) + 8, 1), CAUSE_STORE_PAGE_FAULT, VA(PG_X) + 8);
    /* W without R is reserved: every access faults */
    EXPECT_FAULT(38, probe_load64(VA(PG_WONLY), &v), CAUSE_LOAD_PAGE_FAULT, VA(PG_WONLY));
    EXPECT_FAULT(39, probe_store64(VA(PG_WONLY), 1), CAUSE_STORE_PAGE_FAULT, VA(PG_WONLY));
    EXPECT_FAULT(40, probe_load64(VA(PG_WX), &v), CAUSE_LOAD_PAGE_FAULT, VA(PG_WX));
    EXPECT_FAULT(41, probe_exec(VA(PG_WX)), CAUSE_INSTRUCTION_PAGE_FAULT, VA(PG_WX));
    /* a non-leaf PTE at the last level */
    EXPECT_FAULT(42, probe_load64(VA(PG_NONLEAF), &v), CAUSE_LOAD_PAGE_FAULT,
                 VA(PG_NONLEAF));
    EXPECT_FAULT(43, probe_exec(VA(PG_NONLEAF)), CAUSE_INSTRUCTION_PAGE_FAULT, VA(PG_NONLEAF));

    /* reserved PTE bits 63..54: a page fault in the 20211203 spec */
    long c = probe_load64(VA(PG_RSVD), &v);
    printf("PTE with reserved bit 54: %s\n",
           c == -1 ? "ignored (no fault)" : "page fault");
    CHECK(44, c == -1 || c == CAUSE_LOAD_PAGE_FAULT);

    /* ---- superpages ---- */
    uintptr_t moff = (uintptr_t)&marker - 0x80200000UL;
    CHECK(50, moff < PT_LEVEL_SIZE(1));
    CHECK_EQ(50, probe_load64(MEGA_VA + moff, &v), -1);
    CHECK_EQ(51, v, marker);
    CHECK_EQ(52, probe_load64(GIGA_VA + ((uintptr_t)&marker - 0x80000000UL), &v), -1);
    CHECK_EQ(53, v, marker);
    /* a store through the megapage is seen through the identity map */
    CHECK_EQ(54, probe_store64(MEGA_VA + moff, 0x77), -1);
    CHECK_EQ(54, marker, 0x77);
    marker = 0x5a5a1234c0ffee00ULL;
    /* misaligned superpages */
    EXPECT_FAULT(55, probe_load64(BAD_MEGA_VA + 0x1008, &v), CAUSE_LOAD_PAGE_FAULT,
                 BAD_MEGA_VA + 0x1008);
    EXPECT_FAULT(56, probe_store64(BAD_MEGA_VA + 0x10, 1), CAUSE_STORE_PAGE_FAULT,
                 BAD_MEGA_VA + 0x10);
    EXPECT_FAULT(57, probe_load64(BAD_GIGA_VA + moff, &v), CAUSE_LOAD_PAGE_FAULT,
                 BAD_GIGA_VA + moff);
    EXPECT_FAULT(58, probe_exec(BAD_GIGA_VA + 0x200000), CAUSE_INSTRUCTION_PAGE_FAULT,
                 BAD_GIGA_VA + 0x200000);
#if LEVELS == 4
    uintptr_t goff = (uintptr_t)&marker - 0x80000000UL;
    CHECK_EQ(59, probe_load64(GIGA48_VA + goff, &v), -1);
    CHECK_EQ(59, v, marker);
    CHECK_EQ(59, probe_load64(TERA_VA + (uintptr_t)&marker, &v), -1);  /* -> PA 0.. */
    CHECK_EQ(59, v, marker);
    EXPECT_FAULT(59, probe_load64(BAD_TERA_VA + 0x1000, &v), CAUSE_LOAD_PAGE_FAULT,
                 BAD_TERA_VA + 0x1000);
    puts("Sv48: 1 GiB page above the Sv39 range and 512 GiB page work");
#endif

    /* ---- A and D bits ---- */
    ad_bits();

    /* ---- the upper half and non-canonical addresses ---- */
    CHECK_EQ(75, probe_load64(HIGH_VA + 8, &v), -1);
    CHECK_EQ(75, v, WORD(P_L, 8));
    EXPECT_FAULT(76, probe_load64(NONCANON_LOW, &v), CAUSE_LOAD_PAGE_FAULT, NONCANON_LOW);
    EXPECT_FAULT(77, probe_store64(NONCANON_HIGH + 8, 1), CAUSE_STORE_PAGE_FAULT,
                 NONCANON_HIGH + 8);
    EXPECT_FAULT(78, probe_exec(NONCANON_LOW + TEST_VA), CAUSE_INSTRUCTION_PAGE_FAULT,
                 NONCANON_LOW + TEST_VA);
    /* bit 63 set, the rest of the test address: not canonical either */
    EXPECT_FAULT(79, probe_load64((1UL << 63) | VA(PG_ALIAS0), &v), CAUSE_LOAD_PAGE_FAULT,
                 (1UL << 63) | VA(PG_ALIAS0));

    /* ---- SUM: S-mode access to U pages ---- */
    csr_clear(sstatus, SSTATUS_SUM_MASK);
    EXPECT_FAULT(80, probe_load64(VA(PG_USER), &v), CAUSE_LOAD_PAGE_FAULT, VA(PG_USER));
    EXPECT_FAULT(81, probe_store64(VA(PG_USER), 1), CAUSE_STORE_PAGE_FAULT, VA(PG_USER));
    EXPECT_FAULT(82, probe_exec(VA(PG_USER_X)), CAUSE_INSTRUCTION_PAGE_FAULT, VA(PG_USER_X));
    csr_set(sstatus, SSTATUS_SUM_MASK);
    CHECK_EQ(83, probe_load64(VA(PG_USER) + 8, &v), -1);
    CHECK_EQ(83, v, WORD(P_G, 8));
    CHECK_EQ(84, probe_store64(VA(PG_USER) + 8, 42), -1);
    CHECK_EQ(84, WORD(P_G, 8), 42);
    /* S-mode never executes from a U page, SUM or not */
    EXPECT_FAULT(85, probe_exec(VA(PG_USER_X)), CAUSE_INSTRUCTION_PAGE_FAULT, VA(PG_USER_X));
    csr_clear(sstatus, SSTATUS_SUM_MASK);

    /* ---- MXR: loads from execute-only pages ---- */
    csr_clear(sstatus, SSTATUS_MXR_MASK);
    EXPECT_FAULT(90, probe_load32(VA(PG_XONLY), &w), CAUSE_LOAD_PAGE_FAULT, VA(PG_XONLY));
    CHECK_EQ(91, probe_exec(VA(PG_XONLY)), -1);
    csr_set(sstatus, SSTATUS_MXR_MASK);
    CHECK_EQ(92, probe_load32(VA(PG_XONLY), &w), -1);
    CHECK_EQ(92, w, RET_INSN);
    /* MXR does not make it writable, nor a U page readable without SUM */
    EXPECT_FAULT(93, probe_store64(VA(PG_XONLY) + 8, 1), CAUSE_STORE_PAGE_FAULT,
                 VA(PG_XONLY) + 8);
    EXPECT_FAULT(94, probe_load64(VA(PG_USER_X), &v), CAUSE_LOAD_PAGE_FAULT, VA(PG_USER_X));
    csr_clear(sstatus, SSTATUS_MXR_MASK);

    /* ---- changing a PTE, then sfence.vma with the address ---- */
    pte_t *e = pte_of(VA(PG_REMAP));
    CHECK_EQ(100, *(volatile uint64_t *)(VA(PG_REMAP) + 8), WORD(P_I, 8));
    *e = pte_make(PA(P_J), PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK);
    sfence_vma_va(VA(PG_REMAP));
    CHECK_EQ(101, *(volatile uint64_t *)(VA(PG_REMAP) + 8), WORD(P_J, 8));
    *e = 0;
    sfence_vma_va(VA(PG_REMAP));
    EXPECT_FAULT(102, probe_load64(VA(PG_REMAP) + 8, &v), CAUSE_LOAD_PAGE_FAULT,
                 VA(PG_REMAP) + 8);
    *e = pte_make(PA(P_I), PTE_V_MASK | PTE_R_MASK | PTE_A_MASK);
    sfence_vma_all();
    CHECK_EQ(103, probe_load64(VA(PG_REMAP) + 8, &v), -1);
    CHECK_EQ(103, v, WORD(P_I, 8));
    EXPECT_FAULT(104, probe_store64(VA(PG_REMAP) + 8, 1), CAUSE_STORE_PAGE_FAULT,
                 VA(PG_REMAP) + 8);

    /* ---- back to Bare: physical addresses again ---- */
    csr_write(satp, 0);
    sfence_vma_all();
    CHECK_EQ(110, csr_read(satp), 0);
    CHECK_EQ(111, probe_load64(VA(PG_ALIAS0), &v), CAUSE_LOAD_ACCESS_FAULT);  /* no RAM at 4 GiB */
    CHECK_EQ(112, marker, 0x5a5a1234c0ffee00ULL);

    pass();
}

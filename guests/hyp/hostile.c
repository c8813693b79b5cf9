/*
 * hostile.c - a VM that tries to get out (run it only under the hypervisor: rvh run --hyp).
 *
 * From VS-mode it touches guest-physical memory everywhere it has none (device windows the VM
 * does not have, just past its RAM, where the host keeps other VMs, the top of the Sv39x4
 * space and beyond), builds page tables whose leaves and inner tables point there, reads and
 * writes every one of the 4096 CSR numbers, executes the privileged and hypervisor
 * instructions, and makes wild SBI calls (buffers outside its RAM or wrapping around, bogus
 * harts, masks and extensions).  Every attempt must end in the architectural answer its own
 * hart would give (an access fault, an illegal instruction, an SBI error), never in another
 * VM's memory or the hypervisor's: the test around it (tests/system/test_hyp_guests.py)
 * checksums those.  Ends with PASS, or FAIL and the check that went wrong.
 *
 * Built twice, as the H-extension guests are (guests/hext/README.md): strict, every check as
 * the spec says (build/hyp/hostile.elf, for rvh), and with -DQEMU_DEVIATIONS
 * (build/hyp-qemu/hostile.elf), which accepts QEMU 7.2's known answer for exactly the checks
 * its deviations reach (D22, D12 of docs/h-extension.md) and says so on a SPEC line.
 */
#include "smode.h"
#include "spt.h"

TEST_NAME("hyp/hostile");

#define MIB (1UL << 20)

static unsigned long ram_end;
static uint32_t code[3] __attribute__((aligned(8)));   /* generated instructions, then ret */
static unsigned long faults, illegal, sbi_refused;

/* the end of the VM's RAM, found the way a suspicious guest would: by probing */
static unsigned long find_ram_end(void)
{
    unsigned long address = RAM_BASE;
    uint8_t byte;
    while (probe_load8(address, &byte) == -1)
        address += MIB;
    return address;
}

static void expect_access_fault(long n, unsigned long address)
{
    uint64_t value;
    CHECK_EQ(n, probe_load64(address, &value), CAUSE_LOAD_ACCESS_FAULT);
    CHECK_EQ(n + 1, probe_store64(address, 0x5a5a5a5a5a5a5a5aUL), CAUSE_STORE_ACCESS_FAULT);
    CHECK_EQ(n + 2, probe_exec(address), CAUSE_INSTRUCTION_ACCESS_FAULT);
    faults += 3;
}

/* The cause check n got, where the spec says `expected` and QEMU 7.2 is known to answer
 * `qemu` (deviation `id`): named when it is QEMU's, and taken as the spec's in the
 * QEMU_DEVIATIONS build (only that answer, only at this check). */
static long known_deviation(long n, long got, long expected, long qemu, const char *id)
{
    if (got == expected || got != qemu)
        return got;
#ifdef QEMU_DEVIATIONS
    printf("SPEC hyp/hostile check %ld: cause %ld, QEMU 7.2 deviation %s (the spec requires %ld)\n",
           n, got, id, expected);
    return expected;
#else
    printf("hostile: check %ld: cause %ld is QEMU 7.2's known deviation %s\n", n, got, id);
    return got;
#endif
}

/* An access whose VS-stage walk reads a page-table entry where the VM has no memory.  With
 * the walk done by the hart (hw mode) the entry's guest-physical address fails the G-stage,
 * and that guest-page fault is "always reported for the original access type" (privileged
 * spec 20211203, 8.5.1); the hypervisor injects the access fault of the type reported, so
 * the VM sees what its own hart shows for an entry outside memory (4.3.2 step 2: an access
 * fault of the original type).  (A trap VM's walk is the hypervisor's, in software.)  QEMU
 * 7.2 reports every such fault as a load guest-page fault (cause 21, D22), so there the store
 * and the fetch come back as load access faults. */
static void expect_walk_access_fault(long n, unsigned long address)
{
    uint64_t value;
    CHECK_EQ(n, probe_load64(address, &value), CAUSE_LOAD_ACCESS_FAULT);
    long store = known_deviation(n + 1, probe_store64(address, 0x5a5a5a5a5a5a5a5aUL),
                                 CAUSE_STORE_ACCESS_FAULT, CAUSE_LOAD_ACCESS_FAULT, "D22");
    CHECK_EQ(n + 1, store, CAUSE_STORE_ACCESS_FAULT);
    long fetch = known_deviation(n + 2, probe_exec(address), CAUSE_INSTRUCTION_ACCESS_FAULT,
                                 CAUSE_LOAD_ACCESS_FAULT, "D22");
    CHECK_EQ(n + 2, fetch, CAUSE_INSTRUCTION_ACCESS_FAULT);
    faults += 3;
}

/* guest-physical addresses with nothing behind them, seen with translation off */
static void wild_physical(void)
{
    const unsigned long wild[] = {
        /* (the PLIC and the virtio-mmio slots are the VM's: the hypervisor emulates them) */
        0x0, 0x1000, CLINT_BASE, PLIC_BASE + PLIC_SIZE, VIRTIO_BASE + VIRTIO_SLOTS * VIRTIO_SIZE,
        CLINT_BASE + CLINT_SIZE,
        ram_end, ram_end + 0x1000, ram_end + 64 * MIB, 0x84000000UL, 0x90000000UL,
        (1UL << 38), (1UL << 41) - 8, 1UL << 41, 1UL << 50, 0xfffffffffffff000UL,
        0x400080200000UL,   /* where a trap-mode hypervisor keeps its second mapping of itself */
    };
    for (unsigned i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
        if (wild[i] >= RAM_BASE && wild[i] < ram_end)
            continue;                   /* a VM larger than this test assumed */
        expect_access_fault(10 + 3 * (long)i, wild[i]);
    }
}

/* page tables that name memory the VM does not have, at a leaf and as an inner table */
static void wild_page_tables(void)
{
    struct pt pt;
    spt_init(&pt, 3);
    pt_map_image(&pt);
    unsigned long flags = PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | PTE_X_MASK | PTE_A_MASK |
                          PTE_D_MASK;
    pt_map(&pt, 0x40000000UL, 0x84000000UL, 1, flags);         /* another VM's host base */
    pt_map(&pt, 0x40200000UL, ram_end, 1, flags);              /* just past our RAM */
    pt_map(&pt, 0x40400000UL, 1UL << 40, 1, flags);            /* far above it */
    pte_t *inner = pt_walk(&pt, 0x60000000UL, 1, 1);           /* an inner table ... */
    *inner = pte_make(0x88000000UL, PTE_V_MASK);               /* ... outside our RAM */
    csr_write(CSR_SATP, pt_satp(&pt, 0));
    sfence_vma_all();
    expect_access_fault(70, 0x40000000UL);
    expect_access_fault(73, 0x40200000UL);
    expect_access_fault(76, 0x40400000UL);
    expect_walk_access_fault(79, 0x60000000UL);    /* the walk itself faults: an access fault */
    csr_write(CSR_SATP, 0);
    sfence_vma_all();
}

static void fp_registers(void);

static long run_code(uint32_t first, uint32_t second)
{
    code[0] = first;
    code[1] = second;
    code[2] = 0x00008067;                      /* ret */
    fence_i();
    return probe_exec((uintptr_t)code);
}

#define NOP 0x00000013

/* Every CSR number read, then written back with the value read (so the VM itself survives
 * it); where the read traps, a write of zero is tried too.  Whatever the VM may not touch must
 * be an illegal instruction to it, as on a hart without H: never a virtual-instruction
 * exception, never anything else. */
static void every_csr(void)
{
    for (unsigned csr = 0; csr < 4096; csr++) {
        uint32_t read = csr << 20 | 2 << 12 | 10 << 7 | 0x73;               /* csrrs a0, csr, x0 */
        uint32_t write_back = csr << 20 | 10 << 15 | 1 << 12 | 0x73;        /* csrrw x0, csr, a0 */
        uint32_t write_zero = csr << 20 | 1 << 12 | 0x73;                   /* csrrw x0, csr, x0 */
        long cause = run_code(read, write_back);
        if (cause == -1)
            continue;
        CHECK_EQ(100, cause, CAUSE_ILLEGAL_INSTRUCTION);
        illegal++;
        if (strap_expect.epc == (uintptr_t)&code[0]) {      /* not even readable */
            CHECK_EQ(101, run_code(write_zero, NOP), CAUSE_ILLEGAL_INSTRUCTION);
            illegal++;
        }
    }
}

static void privileged_instructions(void)
{
    const uint32_t refused[] = {
        0x30200073,     /* mret */
        0x22000073,     /* hfence.vvma zero, zero */
        0x62000073,     /* hfence.gvma zero, zero */
        0x60054573,     /* hlv.b a0, (a0) */
        0x6c054573,     /* hlv.d a0, (a0) */
        0x6435c573,     /* hlvx.hu a0, (a1) */
        0x6ab54073,     /* hsv.w a1, (a0) */
        0x7b200073,     /* dret */
    };
    for (unsigned i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
#ifdef QEMU_DEVIATIONS
        /* QEMU 7.2 writes an HLV/HLVX/HSV's illegal or virtual-instruction trap with the
         * bits of an earlier trapped instruction as its tval (D12; the spec, 4.1.9: a
         * nonzero stval is the faulting instruction).  A trap-mode hypervisor emulates the
         * instruction the tval names, here the sret of the previous probe's return: the
         * VM would be sent somewhere else, so these checks cannot be made there (the test
         * says which mode the VM is in: trapvm=1).  An hw VM's hypervisor reads the
         * instruction from the VM's memory instead, so there they are made. */
        if (i >= 3 && i <= 6 && rvh_bootarg("trapvm", 0)) {
            if (i == 3)
                printf("SPEC hyp/hostile checks 203-206 left out: QEMU 7.2 deviation D12 "
                       "(an HLV/HSV trap's tval must be its own bits)\n");
            continue;
        }
#endif
        CHECK_EQ(200 + (long)i, run_code(refused[i], NOP), CAUSE_ILLEGAL_INSTRUCTION);
        /* stval is the refused instruction, not some other trap's bits (in a hw VM the
         * hypervisor reads it from the VM's memory: D12 would show it another VM's) */
        CHECK_EQ(210 + (long)i, strap_expect.tval, refused[i]);
        illegal++;
    }
    CHECK_EQ(220, run_code(0x12000073, NOP), -1);  /* sfence.vma: the VM's own TLB, allowed */
    fp_registers();
}

/* A VM's harts have F and D (its device tree says so; the hypervisor switches the f registers
 * between vCPUs, in every mode): a value in f0 stays the VM's own while the other VMs take the
 * hart.  On a VM without them an FP instruction would be illegal even with FS turned on. */
static void fp_registers(void)
{
    csr_set(CSR_SSTATUS, 1UL << SSTATUS_FS_SHIFT);                 /* FS = Initial */
    long fmv = run_code(0xf2050053, NOP);                           /* fmv.d.x f0, a0 */
    long fcsr = run_code(0x00302573, NOP);                          /* csrr a0, fcsr */
    if (fmv == -1) {
        CHECK_EQ(223, fcsr, -1);
        unsigned long pattern = 0x0123456789abcdefUL, back;
        __asm__ __volatile__(".option push\n.option arch, +d\nfmv.d.x f0, %0\n.option pop"
                             ::"r"(pattern));
        unsigned long until = csr_read(CSR_TIME) + 50000;           /* 5 ms: several slices */
        while (csr_read(CSR_TIME) < until)
            ;
        __asm__ __volatile__(".option push\n.option arch, +d\nfmv.x.d %0, f0\n.option pop"
                             : "=r"(back));
        CHECK_EQ(224, back, pattern);
        printf("hostile: F and D are its own: f0 kept across other VMs' slices\n");
    } else {
        CHECK_EQ(221, fmv, CAUSE_ILLEGAL_INSTRUCTION);
        CHECK_EQ(222, fcsr, CAUSE_ILLEGAL_INSTRUCTION);
        illegal += 2;
        printf("hostile: no F and D: FP instructions are illegal\n");
    }
    csr_clear(CSR_SSTATUS, SSTATUS_FS_MASK);
}

static void expect_sbi_error(long n, struct sbiret r, long error)
{
    CHECK_EQ(n, r.error, error);
    sbi_refused++;
}

static void wild_sbi(void)
{
    /* a console buffer outside RAM, straddling its end, wrapping around, or above 64 bits */
    expect_sbi_error(300, sbi_debug_console_write(16, ram_end - 8, 0), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(301, sbi_debug_console_write(1UL << 62, RAM_BASE, 0), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(302, sbi_debug_console_write(32, -16UL, 0), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(303, sbi_debug_console_write(8, RAM_BASE, 1), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(304, sbi_debug_console_read(8, 0x84000000UL, 0), SBI_ERR_INVALID_PARAM);
    /* harts it does not have, a start address outside its RAM */
    expect_sbi_error(310, sbi_hart_start(7, RAM_BASE + 0x200000, 0), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(311, sbi_hart_start(-1UL, RAM_BASE + 0x200000, 0), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(312, sbi_hart_start(0, 0x84000000UL, 0), SBI_ERR_ALREADY_AVAILABLE);
    expect_sbi_error(313, sbi_hart_get_status(1UL << 40), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(314, sbi_send_ipi(1, 1UL << 63), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(315, sbi_send_ipi(-1UL, 0), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(316, sbi_remote_sfence_vma(1, 5, 0, -1UL), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(317, sbi_system_reset(5, 0), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(318, sbi_hart_suspend(1, 0, 0), SBI_ERR_INVALID_PARAM);
    expect_sbi_error(319, sbi_hart_suspend(SBI_HSM_SUSPEND_NON_RETENTIVE, ram_end, 0),
                     SBI_ERR_INVALID_ADDRESS);
    /* extensions and functions nobody has */
    const unsigned long eids[] = {0x09, 0x0f, 0x08000000, 0x0a000002, 0x12345678, -1UL};
    for (unsigned i = 0; i < sizeof(eids) / sizeof(eids[0]); i++)
        expect_sbi_error(320 + (long)i, sbi_ecall((long)eids[i], 0, 0, 0, 0, 0, 0, 0),
                         SBI_ERR_NOT_SUPPORTED);
    expect_sbi_error(330, sbi_ecall(SBI_EXT_BASE, 99, 0, 0, 0, 0, 0, 0), SBI_ERR_NOT_SUPPORTED);
    expect_sbi_error(331, sbi_ecall(SBI_EXT_HSM, 99, 0, 0, 0, 0, 0, 0), SBI_ERR_NOT_SUPPORTED);
    expect_sbi_error(332, sbi_ecall(SBI_EXT_RFENCE, SBI_RFENCE_REMOTE_HFENCE_GVMA, 1, 0, 0, 0, 0, 0),
                     SBI_ERR_NOT_SUPPORTED);
}

int main(unsigned long hartid, unsigned long dtb)
{
    (void)hartid;
    (void)dtb;
    ram_end = find_ram_end();
    CHECK(1, ram_end > (unsigned long)_end);
    printf("hostile: RAM ends at 0x%lx\n", ram_end);
    wild_physical();
    wild_page_tables();
    every_csr();
    privileged_instructions();
    wild_sbi();
    printf("hostile: %lu access faults, %lu illegal instructions, %lu SBI calls refused\n",
           faults, illegal, sbi_refused);
    pass();
}

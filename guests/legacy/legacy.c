/*
 * legacy.c - a small S-mode kernel written for the RISC-V privileged spec 1.9.1 (2016), the
 * "old OS" of issue 16: its own Sv39 page tables installed through sptbr (ASID and PPN, no
 * MODE: mstatus.VM chooses the scheme, and the firmware set it), sfence.vm, sstatus.PUM, the
 * 1.9.1 cause codes (a page fault is an access fault: 1, 5, 7) and sbadaddr, SBI v0.1 for the
 * console, one U-mode task with system calls and a page mapped on demand.
 *
 * On the 1.9.1 interface (rvh --hyp --guest legacy.elf,virt=trap,spec=1.9.1, which emulates it:
 * firmware/hyp/legacy.c) it prints its steps and "legacy: PASS".  On today's hart (rvh --sbi
 * legacy.elf) it stops at its first sfence.vm, an illegal instruction there (cause 2, the
 * instruction 0x10400073 in sbadaddr), which its trap handler reports before it fails.
 */
#include <stddef.h>
#include <stdint.h>

#define CSR_SSTATUS     0x100
#define CSR_STVEC       0x105
#define CSR_SEPC        0x141
#define CSR_SCAUSE      0x142
#define CSR_SBADADDR    0x143
#define CSR_SPTBR       0x180

#define SSTATUS_SPP     (1UL << 8)
#define SSTATUS_SPIE    (1UL << 5)
#define SSTATUS_PUM     (1UL << 18)

/* Table 4.1 of 1.9.1 */
#define CAUSE_ILLEGAL_INSTRUCTION   2
#define CAUSE_LOAD_ACCESS           5
#define CAUSE_STORE_ACCESS          7
#define CAUSE_ECALL                 8

/* Sv39 PTE (4.5.1 of 1.9.1: V R W X U G A D, PPN from bit 10) */
#define PTE_V 0x01
#define PTE_R 0x02
#define PTE_W 0x04
#define PTE_X 0x08
#define PTE_U 0x10
#define PTE_A 0x40
#define PTE_D 0x80

#define USER_BASE   0x40000000UL
#define USER_DATA   (USER_BASE + 0x1000)
#define USER_STACK  (USER_BASE + 0x3000)
#define USER_LAZY   (USER_BASE + 0x4000)
#define KERNEL_ASID 5UL
#define SYSCON      0x100000UL

#define csr_read(csr) ({ unsigned long v_; __asm__ __volatile__("csrr %0, " #csr : "=r"(v_)); v_; })
#define csr_write(csr, v) __asm__ __volatile__("csrw " #csr ", %0" ::"r"((unsigned long)(v)))
#define csr_set(csr, v) __asm__ __volatile__("csrs " #csr ", %0" ::"r"((unsigned long)(v)))
#define csr_clear(csr, v) __asm__ __volatile__("csrc " #csr ", %0" ::"r"((unsigned long)(v)))

struct frame {
    unsigned long zero, ra, sp, gp, tp, t0, t1, t2, s0, s1, a0, a1, a2, a3, a4, a5, a6, a7;
    unsigned long s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, t3, t4, t5, t6;
};

extern char __user_text_start[];
extern void trap_entry(void);
extern void sfence_vm_all(void);
extern void sfence_vm_page(unsigned long va);

static uint64_t root[512] __attribute__((aligned(4096)));
static uint64_t user_l1[512] __attribute__((aligned(4096)));
static uint64_t user_l0[512] __attribute__((aligned(4096)));
static uint8_t user_data[4096] __attribute__((aligned(4096)));
static uint8_t user_stack[8192] __attribute__((aligned(4096)));
static uint8_t lazy_page[4096] __attribute__((aligned(4096)));

static volatile int expect_fault;               /* the next S-mode access fault is a test's */
static volatile unsigned long fault_cause, fault_address;
static unsigned syscalls, demand_pages;

/* ---- SBI v0.1, as the 1.9.1-era firmware (BBL) offered it ---- */
static void sbi_putchar(int c)
{
    register unsigned long a0 __asm__("a0") = (unsigned long)c;
    register unsigned long a7 __asm__("a7") = 1;
    __asm__ __volatile__("ecall" : "+r"(a0) : "r"(a7) : "memory");
}

static void puts_(const char *s)
{
    while (*s)
        sbi_putchar(*s++);
}

static void put_hex(unsigned long v)
{
    puts_("0x");
    for (int shift = 60; shift >= 0; shift -= 4) {
        unsigned digit = (v >> shift) & 15;
        if (digit || shift == 0 || v >> shift)
            sbi_putchar("0123456789abcdef"[digit]);
    }
}

static void put_dec(unsigned long v)
{
    char text[24];
    int n = 0;
    do {
        text[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        sbi_putchar(text[--n]);
}

static __attribute__((noreturn)) void finish(int code)
{
    *(volatile uint32_t *)SYSCON = code ? 0x3333U | (uint32_t)code << 16 : 0x5555U;
    for (;;)
        ;
}

static void check(int ok, const char *what)
{
    if (!ok) {
        puts_("legacy: FAIL: ");
        puts_(what);
        puts_("\n");
        finish(1);
    }
}

static uint64_t pte(const void *page, unsigned long flags)
{
    return ((uint64_t)(uintptr_t)page >> 12) << 10 | flags;
}

/* ---- traps ---- */
static void syscall(struct frame *f)
{
    syscalls++;
    if (f->a7 == 64) {                          /* write(buffer, length) from user memory */
        csr_clear(sstatus, SSTATUS_PUM);        /* the copy may touch U pages */
        const char *text = (const char *)f->a0;
        for (unsigned long i = 0; i < f->a1; i++)
            sbi_putchar(text[i]);
        csr_set(sstatus, SSTATUS_PUM);
        f->a0 = f->a1;
    } else if (f->a7 == 93) {                   /* exit(code) */
        puts_("legacy: task exited with ");
        put_dec(f->a0);
        puts_(" after ");
        put_dec(syscalls);
        puts_(" system calls, ");
        put_dec(demand_pages);
        puts_(" page mapped on demand\n");
        check(f->a0 == 0 && demand_pages == 1, "the task's checks");
        puts_("legacy: PASS\n");
        finish(0);
    } else {
        f->a0 = (unsigned long)-38;             /* ENOSYS */
    }
}

void trap_handler(struct frame *f)
{
    unsigned long cause = csr_read(scause), epc = csr_read(sepc);
    unsigned long badaddr = csr_read(0x143);    /* sbadaddr */
    int from_user = !(csr_read(sstatus) & SSTATUS_SPP);
    if (cause == CAUSE_ECALL && from_user) {
        syscall(f);
        csr_write(sepc, epc + 4);
        return;
    }
    if (cause == CAUSE_STORE_ACCESS && from_user && (badaddr & ~0xfffUL) == USER_LAZY) {
        /* 1.9.1 has no page faults: a missing page is an access fault with its address */
        user_l0[4] = pte(lazy_page, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
        sfence_vm_page(badaddr);
        demand_pages++;
        return;                                 /* the store again */
    }
    if (expect_fault && !from_user) {
        expect_fault = 0;
        fault_cause = cause;
        fault_address = badaddr;
        csr_write(sepc, epc + 4);               /* the faulting load is 4 bytes (norvc) */
        return;
    }
    puts_("legacy: unexpected trap: scause ");
    put_dec(cause);
    if (cause == CAUSE_ILLEGAL_INSTRUCTION)
        puts_(" (illegal instruction)");
    puts_(" sepc ");
    put_hex(epc);
    puts_(" sbadaddr ");
    put_hex(badaddr);
    puts_("\n");
    finish(2);
}

static unsigned long load_probe(unsigned long address)
{
    unsigned long value;
    __asm__ __volatile__(".option push\n.option norvc\nld %0, 0(%1)\n.option pop"
                         : "=r"(value) : "r"(address) : "memory");
    return value;
}

void kmain(void)
{
    puts_("legacy: a privileged spec 1.9.1 kernel\n");
    csr_write(stvec, (unsigned long)trap_entry);
    unsigned long boot_sptbr = csr_read(0x180);
    puts_(boot_sptbr ? "legacy: the firmware entered us with paging on (sptbr set)\n"
                     : "legacy: sptbr reads 0: no 1.9.1 firmware page table\n");

    /* the kernel's own tables: 1 GiB of devices, the kernel's 1 GiB, the user task's pages */
    root[0] = pte((void *)0, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D);
    root[2] = pte((void *)0x80000000UL, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D);
    root[1] = pte(user_l1, PTE_V);
    user_l1[0] = pte(user_l0, PTE_V);
    user_l0[0] = pte(__user_text_start, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A);
    user_l0[1] = pte(user_data, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
    user_l0[2] = pte(user_stack, PTE_V | PTE_R | PTE_W | PTE_U | PTE_A | PTE_D);
    /* user_l0[4] (USER_LAZY): mapped when the task first touches it */
    static const char hello[] = "legacy: hello from U-mode\n";
    static const char there[] = "legacy: demand page is there\n";
    for (unsigned i = 0; i < sizeof hello - 1; i++)
        user_data[i] = (uint8_t)hello[i];
    for (unsigned i = 0; i < sizeof there - 1; i++)
        user_data[32 + i] = (uint8_t)there[i];

    /* sptbr: ASID in 63:38, PPN in 37:0 (4.1.11); the scheme stays mstatus.VM's */
    unsigned long value = KERNEL_ASID << 38 | (unsigned long)(uintptr_t)root >> 12;
    csr_write(0x180, value);
    sfence_vm_all();
    check(csr_read(0x180) == value, "sptbr reads back what was written");
    puts_("legacy: own page tables on, sptbr ASID ");
    put_dec(csr_read(0x180) >> 38);
    puts_("\n");

    /* PUM (4.1.2): with it set, the kernel may not touch U pages; cleared, it may */
    csr_set(sstatus, SSTATUS_PUM);
    check(csr_read(sstatus) & SSTATUS_PUM, "sstatus.PUM reads back set");
    expect_fault = 1;
    load_probe(USER_DATA);
    check(!expect_fault && fault_cause == CAUSE_LOAD_ACCESS && fault_address == USER_DATA,
          "a load from a U page with PUM set is a load access fault (cause 5) at its address");
    puts_("legacy: PUM=1 load from a user page: cause ");
    put_dec(fault_cause);
    puts_(", sbadaddr ");
    put_hex(fault_address);
    puts_("\n");
    csr_clear(sstatus, SSTATUS_PUM);
    check(load_probe(USER_DATA) == *(const uint64_t *)hello, "PUM=0: the kernel reads user memory");
    csr_set(sstatus, SSTATUS_PUM);

    /* into the task: sret to U-mode at its first instruction */
    csr_write(sepc, USER_BASE);
    csr_clear(sstatus, SSTATUS_SPP);
    csr_set(sstatus, SSTATUS_SPIE);
    csr_write(sscratch, (unsigned long)__builtin_frame_address(0) - 512);
    puts_("legacy: entering the U-mode task\n");
    __asm__ __volatile__("sret");
    for (;;)
        ;
}

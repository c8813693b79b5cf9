/*
 * main.c - boot: read the VMs from the device tree, set up the hart for guests (delegation,
 * counters, Sstc), build each VM's G-stage table and vCPUs, and hand the hart to the scheduler.
 */
#include <stdarg.h>

#include "hyp.h"
#include "rvh/libc.h"
#include "rvh/sbi.h"
#include "vio.h"

/* Exceptions the guest kernel handles itself, as on its own hart (KVM delegates the same set,
 * plus illegal instructions and misaligned accesses, which a VM's kernel also expects to see). */
#define HEDELEG_GUEST ((1UL << CAUSE_INSTRUCTION_ADDRESS_MISALIGNED) | (1UL << CAUSE_ILLEGAL_INSTRUCTION) | \
                       (1UL << CAUSE_BREAKPOINT) | (1UL << CAUSE_LOAD_ADDRESS_MISALIGNED) |           \
                       (1UL << CAUSE_STORE_ADDRESS_MISALIGNED) | (1UL << CAUSE_ECALL_FROM_U) |          \
                       (1UL << CAUSE_INSTRUCTION_PAGE_FAULT) | (1UL << CAUSE_LOAD_PAGE_FAULT) |     \
                       (1UL << CAUSE_STORE_PAGE_FAULT))
/* and its own software, timer and external interrupts */
#define HIDELEG_GUEST (MIP_VSSIP_MASK | MIP_VSTIP_MASK | MIP_VSEIP_MASK)

static int booted;

void hyp_exit_machine(long status)
{
    /* the test device ends the machine with a status (QEMU's virt board has the same one) */
    volatile uint32_t *test = (volatile uint32_t *)TEST_BASE;
    *test = status == 0 ? 0x5555 : 0x3333 | (uint32_t)(status & 0xffff) << 16;
    sbi_system_reset(SBI_SRST_TYPE_SHUTDOWN, status ? SBI_SRST_REASON_SYSTEM_FAILURE : SBI_SRST_REASON_NONE);
    for (;;)
        __asm__ __volatile__("wfi");
}

void hyp_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    hyp_exit_machine(126);
}

/* A trap in the hypervisor's own code that nothing expected (entry.S). */
void hyp_fault(unsigned long scause, unsigned long sepc, unsigned long stval)
{
    if (!booted && scause == CAUSE_ILLEGAL_INSTRUCTION)
        hyp_panic("hyp: the hart has no H extension (illegal instruction at 0x%lx): "
                  "run it on a hart with H (rvh --cpu rv64, QEMU -cpu rv64,h=true)\n", sepc);
    hyp_panic("hyp: fault in the hypervisor: scause=%lu sepc=0x%lx stval=0x%lx\n", scause, sepc,
              stval);
}

void hyp_main(unsigned long hartid, const void *dtb)
{
    hyp_console_init();
    csr_write(CSR_HEDELEG, HEDELEG_GUEST);      /* traps if the hart has no H: hyp_fault says so */
    csr_write(CSR_HIDELEG, HIDELEG_GUEST);
    csr_write(CSR_HCOUNTEREN, 0xffffffffUL);    /* the guest reads time, cycle, instret itself */
    csr_write(CSR_HENVCFG, HENVCFG_STCE_MASK);   /* Sstc for the guest: vstimecmp */
    csr_write(CSR_HVIP, 0);
    booted = 1;
    int n = hyp_parse_vms(dtb);
    if (n <= 0) {
        if (n == 0)
            printf("hyp: no VMs in the device tree (a /hypervisor node with vm@N children)\n");
        hyp_exit_machine(125);
    }
    for (unsigned i = 0; i < hyp_nvms; i++) {
        struct vm *vm = &hyp_vms[i];
        if (vm->mode != VIRT_HW) {
            printf("hyp: %s: only virt=hw is implemented so far\n", vm->name);
            hyp_exit_machine(125);
        }
        if (!vm->nvcpus || vm->nvcpus > HYP_MAX_VCPUS) {
            printf("hyp: %s: %u vCPUs (1 to %d)\n", vm->name, vm->nvcpus, HYP_MAX_VCPUS);
            hyp_exit_machine(125);
        }
        if (gstage_map_vm(vm) < 0)
            hyp_exit_machine(125);
        stats_attach(vm);
        for (unsigned v = 0; v < vm->nvcpus; v++) {
            struct vcpu *vcpu = &vm->vcpus[v];
            vcpu->vm = vm;
            vcpu->id = v;
            vcpu_reset(vcpu, vm->entry, v, vm->dtb);
            vcpu->state = v == 0 ? VCPU_RUNNABLE : VCPU_STOPPED;    /* the rest start by HSM */
        }
    }
    hfence_gvma_all();
    sbi_set_timer(~0UL);
    csr_write(CSR_SIE, MIP_STIP_MASK | MIP_SSIP_MASK);  /* taken from a guest whatever SIE says */
    if (vio_init(hartid) < 0)                           /* the VMs' machine devices (+ SEIE) */
        hyp_exit_machine(125);
    sched_run();
}

/* the tiny libc's exit (common rvh.c) ends the machine the hypervisor's way */
void rvh_exit(int code)
{
    hyp_exit_machine(code);
}

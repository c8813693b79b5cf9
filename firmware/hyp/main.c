/*
 * main.c - boot: find out whether the hart has H, read the VMs from the device tree, give each
 * its mode's ops table, let the mode set it up (G-stage or shadow tables), make its vCPUs,
 * start the other host harts (smp.c) and hand the harts to the scheduler.
 */
#include <stdarg.h>

#include "hyp.h"
#include "rvh/libc.h"
#include "rvh/sbi.h"
#include "vio.h"

static int booted;
unsigned long hyp_hart_has_h;

static const struct virt_ops *ops_for(enum virt_mode mode)
{
    switch (mode) {
    case VIRT_HW: return &hw_ops;
    case VIRT_TRAP: return &trap_ops;
    case VIRT_PV: return &pv_ops;
    default: return 0;
    }
}

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
    smp_init_boot_hart(hartid);
    /* the lock, held until the first guest runs: the harts started meanwhile wait for it
     * (hyp_lock skips it while this is the only hart) */
    __atomic_store_n(&hyp_lock_word, 1, __ATOMIC_RELEASE);
    hyp_console_init();
    hyp_hart_has_h = hyp_probe_h();
    if (hyp_hart_has_h)
        hw_init_hart();
    booted = 1;
    int n = hyp_parse_vms(dtb);
    if (n <= 0) {
        if (n == 0)
            printf("hyp: no VMs in the device tree (a /hypervisor node with vm@N children)\n");
        hyp_exit_machine(125);
    }
    for (unsigned i = 0; i < hyp_nvms; i++) {
        struct vm *vm = &hyp_vms[i];
        static const char *const mode_names[] = {"hw", "trap", "pv"};
        vm->ops = ops_for(vm->mode);
        if (!vm->ops) {
            printf("hyp: %s: virt=%s is not implemented in this hypervisor\n", vm->name,
                   mode_names[vm->mode]);
            hyp_exit_machine(125);
        }
        if (!vm->nvcpus || vm->nvcpus > HYP_MAX_VCPUS) {
            printf("hyp: %s: %u vCPUs (1 to %d)\n", vm->name, vm->nvcpus, HYP_MAX_VCPUS);
            hyp_exit_machine(125);
        }
        stats_attach(vm);
        if (vm_check_ram(vm) < 0 || vm->ops->init_vm(vm) < 0)
            hyp_exit_machine(125);
        for (unsigned v = 0; v < vm->nvcpus; v++) {
            struct vcpu *vcpu = &vm->vcpus[v];
            vcpu->vm = vm;
            vcpu->id = v;
            vcpu->running_on = -1;
            vcpu->last_hart = -1;
            vcpu_reset(vcpu, vm->entry, v, vm->dtb);
            vcpu->state = v == 0 ? VCPU_RUNNABLE : VCPU_STOPPED;    /* the rest start by HSM */
        }
    }
    if (hyp_hart_has_h)
        hfence_gvma_all();
    sbi_set_timer(~0UL);
    csr_write(CSR_SIE, MIP_STIP_MASK | MIP_SSIP_MASK);  /* taken from a guest whatever SIE says */
    if (vio_init(hartid) < 0 || pvio_init() < 0)      /* the VMs' machine devices (+ SEIE) */
        hyp_exit_machine(125);
    /* The other host harts, now that the G-stage tables are complete (smp.c).  A trap or pv
     * VM gets a home hart, in turn from the last hart down, so the boot hart, which also takes
     * the machine's device interrupts, gets the hw VMs' vCPUs first. */
    unsigned harts = smp_boot(hartid), next_home = 0;
    for (unsigned i = 0; i < hyp_nvms; i++) {
        struct vm *vm = &hyp_vms[i];
        vm->home_hart = vm->mode == VIRT_HW ? -1 : (int)(harts - 1 - next_home++ % harts);
    }
    sched_run();
}

/* the tiny libc's exit (common rvh.c) ends the machine the hypervisor's way */
void rvh_exit(int code)
{
    hyp_exit_machine(code);
}

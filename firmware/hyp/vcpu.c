/*
 * vcpu.c - a vCPU's state and the dispatch of its exits by scause (hw mode: the guest kernel
 * in VS-mode, 8.2-8.6 of the privileged spec).
 *
 * What reaches the hypervisor: VS ecalls (the virtual SBI), guest-page faults (emulated devices,
 * or wild guest-physical accesses that become access faults in the guest, as on a machine with
 * nothing at that address), virtual-instruction faults (wfi, which yields the hart; anything a
 * hart without H would not have, which becomes an illegal instruction in the guest) and the
 * hypervisor's own interrupts (the scheduler's timer).  Everything else is delegated to the
 * guest through hedeleg/hideleg and never exits.
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "vio.h"

void vcpu_reset(struct vcpu *vcpu, unsigned long pc, unsigned long a0, unsigned long a1)
{
    memset(&vcpu->regs, 0, sizeof(vcpu->regs));
    memset(&vcpu->vs, 0, sizeof(vcpu->vs));
    vcpu->regs.x[10] = a0;
    vcpu->regs.x[11] = a1;
    vcpu->regs.sepc = pc;
    vcpu->regs.sstatus = SSTATUS_SPP_MASK;          /* sret lands in VS-mode ... */
    vcpu->regs.hstatus = HSTATUS_SPV_MASK           /* ... with V=1 */
                       | HSTATUS_SPVP_MASK
                       | HSTATUS_VTW_MASK           /* wfi exits, so a waiting vCPU yields */
                       | (unsigned long)XLEN_64 << HSTATUS_VSXL_SHIFT;
    vcpu->vs.vstimecmp = ~0UL;                      /* no timer until the guest sets one */
}

/* The end of a non-retentive suspend (SBI 9.4): the vCPU (loaded) starts over at its resume
 * address in VS-mode with a0 = its id, a1 = the opaque value, vsatp = 0 and interrupts off. */
void vcpu_resume(struct vcpu *vcpu)
{
    unsigned long hstatus = vcpu->regs.hstatus;
    memset(&vcpu->regs, 0, sizeof(vcpu->regs));
    vcpu->regs.x[10] = vcpu->id;
    vcpu->regs.x[11] = vcpu->resume_opaque;
    vcpu->regs.sepc = vcpu->resume_pc;
    vcpu->regs.sstatus = SSTATUS_SPP_MASK;
    vcpu->regs.hstatus = hstatus;
    csr_write(CSR_VSATP, 0);
    csr_clear(CSR_VSSTATUS, SSTATUS_SIE_MASK);
    vcpu->resume_pending = 0;
}

/* Enter a trap in the guest as its own hart would (4.1.1, 4.1.2): the exception goes to its
 * stvec in VS-mode with vsepc/vscause/vstval set and vsstatus' interrupt stack pushed. */
void vcpu_inject_exception(struct vcpu *vcpu, unsigned long cause, unsigned long tval)
{
    unsigned long vsstatus = csr_read(CSR_VSSTATUS);
    int from_s = (vcpu->regs.sstatus & SSTATUS_SPP_MASK) != 0;   /* VS (1) or VU (0) */
    vsstatus &= ~(SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK);
    if (vsstatus & SSTATUS_SIE_MASK)
        vsstatus |= SSTATUS_SPIE_MASK;
    if (from_s)
        vsstatus |= SSTATUS_SPP_MASK;
    vsstatus &= ~SSTATUS_SIE_MASK;
    csr_write(CSR_VSSTATUS, vsstatus);
    csr_write(CSR_VSEPC, vcpu->regs.sepc);
    csr_write(CSR_VSCAUSE, cause);
    csr_write(CSR_VSTVAL, tval);
    vcpu->regs.sepc = csr_read(CSR_VSTVEC) & ~3UL;  /* exceptions use the base, vectored or not */
    vcpu->regs.sstatus |= SSTATUS_SPP_MASK;
}

/* A VS-level interrupt pending and enabled for the loaded vCPU (what would end its wfi). */
int vcpu_has_pending_interrupt(struct vcpu *vcpu)
{
    (void)vcpu;
    unsigned long vs_bits = MIP_VSSIP_MASK | MIP_VSTIP_MASK | MIP_VSEIP_MASK;
    return (csr_read(CSR_HIP) & csr_read(CSR_HIE) & vs_bits) != 0;
}

static void virtual_instruction(struct vcpu *vcpu, unsigned long insn)
{
    struct vm *vm = vcpu->vm;
    vm->stats[HYP_STAT_VIRTUAL_INSTRUCTION]++;
    int from_vs = (vcpu->regs.sstatus & SSTATUS_SPP_MASK) != 0;
    if (insn == INSN_WFI && from_vs) {
        vm->stats[HYP_STAT_WFI]++;
        vcpu->regs.sepc += 4;
        if (!vcpu_has_pending_interrupt(vcpu)) {
            vcpu->state = VCPU_WAITING;
            sched_yield(vcpu);
        }
        return;
    }
    /* The VM's harts have no H extension: whatever needed it is an illegal instruction there,
     * and so are wfi and the counters in VU-mode where its own U-mode would trap (3.1.6.5,
     * scounteren: the guest kernel handles those itself, as on its own hart). */
    if ((insn & 0x7f) == 0x73 && ((insn >> 12) & 7) != 0)
        vm->stats[HYP_STAT_CSR]++;
    vm->stats[HYP_STAT_ILLEGAL]++;
    vcpu_inject_exception(vcpu, CAUSE_ILLEGAL_INSTRUCTION, insn);
}

static void guest_page_fault(struct vcpu *vcpu, unsigned long scause)
{
    struct vm *vm = vcpu->vm;
    unsigned long gpa = csr_read(CSR_HTVAL) << 2 | (csr_read(CSR_STVAL) & 3);
    unsigned long gva = csr_read(CSR_STVAL);
    if (scause != CAUSE_INSTRUCTION_GUEST_PAGE_FAULT && mmio_emulate(vcpu, gpa, scause) == 0) {
        vm->stats[HYP_STAT_MMIO]++;
        return;
    }
    /* Nothing at that guest-physical address: the guest sees an access fault (3.7.1), as a
     * hart of its own would for an address with no memory or device behind it. */
    vm->stats[HYP_STAT_INJECTED_FAULTS]++;
    unsigned long cause = scause == CAUSE_INSTRUCTION_GUEST_PAGE_FAULT  ? CAUSE_INSTRUCTION_ACCESS_FAULT
                        : scause == CAUSE_LOAD_GUEST_PAGE_FAULT ? CAUSE_LOAD_ACCESS_FAULT
                                                                : CAUSE_STORE_ACCESS_FAULT;
    vcpu_inject_exception(vcpu, cause, gva);
}

static void host_interrupt(struct vcpu *vcpu, unsigned long code)
{
    vcpu->vm->stats[HYP_STAT_INTERRUPTS]++;
    if (code == INTERRUPT_SUPERVISOR_TIMER) {
        sched_timer_fired();            /* the slice is over */
        sched_yield(vcpu);
    }
    if (code == INTERRUPT_SUPERVISOR_SOFTWARE)
        csr_clear(CSR_SIP, MIP_SSIP_MASK);
    if (code == INTERRUPT_SUPERVISOR_EXTERNAL)
        vio_host_interrupt();           /* a machine virtio device a VM's device forwards to */
}

void hyp_handle_exit(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    unsigned long scause = csr_read(CSR_SCAUSE);
    vm->stats[HYP_STAT_EXITS]++;
    if (scause & MCAUSE_INTERRUPT_MASK) {
        host_interrupt(vcpu, scause & ~MCAUSE_INTERRUPT_MASK);
    } else {
        if (scause < HYP_SCAUSE_COUNT)
            vm->stats[HYP_STAT_SCAUSE + scause]++;
        switch (scause) {
        case CAUSE_ECALL_FROM_VS:
            vm->stats[HYP_STAT_ECALL]++;
            sbi_dispatch(vcpu);
            break;
        case CAUSE_INSTRUCTION_GUEST_PAGE_FAULT:
        case CAUSE_LOAD_GUEST_PAGE_FAULT:
        case CAUSE_STORE_GUEST_PAGE_FAULT:
            guest_page_fault(vcpu, scause);
            break;
        case CAUSE_VIRTUAL_INSTRUCTION:
            virtual_instruction(vcpu, csr_read(CSR_STVAL));
            break;
        default:
            /* not delegated and not ours to emulate: stop this VM, not the machine */
            printf("hyp: %s: unexpected exception scause=%lu sepc=0x%lx stval=0x%lx\n",
                       vm->name, scause, vcpu->regs.sepc, csr_read(CSR_STVAL));
            vm_shutdown(vm, 126, "unexpected exception");
        }
    }
    if (vm->state != VM_RUNNING || vcpu->state != VCPU_RUNNABLE)
        sched_yield(vcpu);
    hyp_enter_guest(vcpu);
}

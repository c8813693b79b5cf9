/*
 * vcpu.c - the exit path every mode shares: take the hypervisor lock (smp.c), count the exit,
 * take the hypervisor's own interrupts (the scheduler's timer, a kick from another host hart),
 * hand exceptions to the VM's mode (struct virt_ops), and return into the guest (letting the
 * lock go) or give the hart to another vCPU.
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "vio.h"

void vcpu_reset(struct vcpu *vcpu, unsigned long pc, unsigned long a0, unsigned long a1)
{
    vcpu->sta_shmem = 0;        /* a reset hart has registered no steal-time memory (STA) */
    vcpu->vm->ops->reset_vcpu(vcpu, pc, a0, a1);
}

/* wfi in the guest's (virtual) S-mode: the hart goes to someone else until an interrupt of its
 * own is pending (3.3.3: even with interrupts disabled that ends the wait). */
void vcpu_wait(struct vcpu *vcpu)
{
    if (!vcpu->vm->ops->pending_interrupt(vcpu)) {
        vcpu->state = VCPU_WAITING;
        vcpu->hsm_suspended = 0;
        sched_yield(vcpu);
    }
}

long vcpu_read_guest(struct vcpu *vcpu, unsigned long va, int kind)
{
    return vcpu->vm->ops->guest_load(vcpu, va, kind);
}

uint32_t vcpu_fetch_insn(struct vcpu *vcpu, unsigned long va)
{
    long low = vcpu_read_guest(vcpu, va, 0);
    if (low < 0)
        return 0;
    if ((low & 3) != 3)
        return (uint32_t)low;
    long high = vcpu_read_guest(vcpu, va + 2, 0);
    if (high < 0)
        return 0;
    return (uint32_t)(low | high << 16);
}

static void host_interrupt(struct vcpu *vcpu, unsigned long code)
{
    vcpu->vm->stats[HYP_STAT_INTERRUPTS]++;
    if (code == INTERRUPT_SUPERVISOR_TIMER) {
        sched_timer_fired();            /* the slice (or a trap vCPU's timer) is over */
        sched_yield(vcpu);
    }
    if (code == INTERRUPT_SUPERVISOR_SOFTWARE) {
        /* a kick from another host hart (smp.c): what it was for is in memory by now */
        csr_clear(CSR_SIP, MIP_SSIP_MASK);
        if (vcpu->hvip_set | vcpu->hvip_clear)
            hw_apply_remote_hvip(vcpu);
        struct hyp_hart *me = hyp_this_hart();
        if (me->resched) {
            me->resched = 0;
            sched_arm_slice(vcpu);
        }
    }
    if (code == INTERRUPT_SUPERVISOR_EXTERNAL)
        vio_host_interrupt();           /* a machine virtio device a VM's device forwards to */
}

void vcpu_enter(struct vcpu *vcpu)
{
    if (vcpu->vm->ops->enter)
        vcpu->vm->ops->enter(vcpu);
    /* A kick sent from here on is a pending SSIP, which the guest's entry takes at once. */
    hyp_unlock();
    hyp_enter_guest(vcpu);
}

void hyp_handle_exit(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    unsigned long scause = csr_read(CSR_SCAUSE);
    hyp_lock();
    vm->stats[HYP_STAT_EXITS]++;
    if (scause & MCAUSE_INTERRUPT_MASK) {
        host_interrupt(vcpu, scause & ~MCAUSE_INTERRUPT_MASK);
    } else {
        if (scause < HYP_SCAUSE_COUNT)
            vm->stats[HYP_STAT_SCAUSE + scause]++;
        vm->ops->handle_exit(vcpu, scause, csr_read(CSR_STVAL));
    }
    if (vm->state != VM_RUNNING || vcpu->state != VCPU_RUNNABLE)
        sched_yield(vcpu);
    vcpu_enter(vcpu);
}

/*
 * sched.c - vCPUs time-sliced on the hart.
 *
 * Round robin over every runnable vCPU of every running VM.  A vCPU runs until it exits for
 * good reason (wfi with nothing pending, HSM stop, its VM's end) or its slice ends; the slice
 * timer is armed only when another vCPU is waiting for the hart, so a lone VM runs with no
 * scheduling exits at all.  When nothing is runnable the hypervisor sleeps in wfi until the
 * earliest guest timer (a waiting vCPU's vstimecmp) or an interrupt.  Time is the machine's
 * (virtual on rvh by default), so the schedule is deterministic.
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "rvh/sbi.h"
#include "vio.h"

#define SLICE_TICKS 10000UL     /* 1 ms at the 10 MHz timebase */

static struct vcpu *loaded;     /* whose VS CSRs and hgatp are in the hart */
static struct vcpu *last_run;   /* the vCPU given the hart last */
static unsigned cursor;         /* round-robin position: vm * HYP_MAX_VCPUS + vcpu */

/* The vCPU whose hvip is in the CSR (vplic.c sets VSEIP there rather than in v->vs). */
struct vcpu *sched_loaded_vcpu(void)
{
    return loaded;
}

void vcpu_save_vs(struct vcpu *v)
{
    struct vs_csrs *vs = &v->vs;
    vs->vsstatus = csr_read(CSR_VSSTATUS);
    vs->vsie = csr_read(CSR_VSIE);
    vs->vstvec = csr_read(CSR_VSTVEC);
    vs->vsscratch = csr_read(CSR_VSSCRATCH);
    vs->vsepc = csr_read(CSR_VSEPC);
    vs->vscause = csr_read(CSR_VSCAUSE);
    vs->vstval = csr_read(CSR_VSTVAL);
    vs->vsatp = csr_read(CSR_VSATP);
    vs->vstimecmp = csr_read(CSR_VSTIMECMP);
    vs->hvip = csr_read(CSR_HVIP);
}

void vcpu_load_vs(struct vcpu *v)
{
    struct vs_csrs *vs = &v->vs;
    csr_write(CSR_HGATP, v->vm->hgatp);
    csr_write(CSR_VSSTATUS, vs->vsstatus);
    csr_write(CSR_VSIE, vs->vsie);
    csr_write(CSR_VSTVEC, vs->vstvec);
    csr_write(CSR_VSSCRATCH, vs->vsscratch);
    csr_write(CSR_VSEPC, vs->vsepc);
    csr_write(CSR_VSCAUSE, vs->vscause);
    csr_write(CSR_VSTVAL, vs->vstval);
    csr_write(CSR_VSATP, vs->vsatp);
    csr_write(CSR_VSTIMECMP, vs->vstimecmp);
    csr_write(CSR_HVIP, vs->hvip);
}

static unsigned long timer_armed = ~0UL;     /* the deadline last given to the firmware */

static void arm_timer(unsigned long when)
{
    if (when != timer_armed)
        sbi_set_timer(when);
    timer_armed = when;
}

void sched_timer_fired(void)
{
    arm_timer(~0UL);
}

static unsigned long read_time(void)
{
    unsigned long t;
    __asm__ __volatile__("rdtime %0" : "=r"(t));
    return t;
}

/* A waiting vCPU becomes runnable when one of its interrupts is pending (its wfi ends even with
 * interrupts disabled, 3.3.3): its timer (Sstc: time >= vstimecmp) or an injected interrupt. */
static unsigned long vs_enabled(struct vcpu *v)
{
    /* vsie bit n (SSIE 1, STIE 5, SEIE 9) is hie's VS bit n + 1 (8.2.3) */
    return (v == loaded ? csr_read(CSR_VSIE) : v->vs.vsie) << 1;
}

static int wants_to_wake(struct vcpu *v)
{
    if (v == loaded)
        return vcpu_has_pending_interrupt(v);
    unsigned long enabled = vs_enabled(v);
    unsigned long pending = v->vs.hvip;
    if (read_time() >= v->vs.vstimecmp)
        pending |= MIP_VSTIP_MASK;
    return (pending & enabled & (MIP_VSSIP_MASK | MIP_VSTIP_MASK | MIP_VSEIP_MASK)) != 0;
}

static void hyp_finish(void) __attribute__((noreturn));
static void hyp_finish(void)
{
    long status = 0;
    for (unsigned i = 0; i < hyp_nvms; i++)
        vm_console_flush(&hyp_vms[i]);
    stats_print();
    for (unsigned i = 0; i < hyp_nvms && !status; i++)
        status = hyp_vms[i].exit_code;
    hyp_exit_machine(status);
}

void sched_run(void)
{
    for (;;) {
        unsigned total = hyp_nvms * HYP_MAX_VCPUS, runnable = 0, waiting = 0, live = 0;
        unsigned long wake = ~0UL;
        struct vcpu *next = 0;
        for (unsigned step = 1; step <= total; step++) {
            unsigned slot = (cursor + step) % total;
            struct vm *vm = &hyp_vms[slot / HYP_MAX_VCPUS];
            if (vm->state != VM_RUNNING || slot % HYP_MAX_VCPUS >= vm->nvcpus)
                continue;
            live = 1;
            struct vcpu *v = &vm->vcpus[slot % HYP_MAX_VCPUS];
            if (v->state == VCPU_WAITING && wants_to_wake(v))
                v->state = VCPU_RUNNABLE;
            if (v->state == VCPU_WAITING) {
                waiting++;
                unsigned long when = v == loaded ? csr_read(CSR_VSTIMECMP) : v->vs.vstimecmp;
                if ((vs_enabled(v) & MIP_VSTIP_MASK) && when < wake)
                    wake = when;
            }
            if (v->state != VCPU_RUNNABLE)
                continue;
            runnable++;
            if (!next) {
                next = v;
                cursor = slot;
            }
        }
        if (!live)
            hyp_finish();
        if (next) {
            if (next != loaded) {
                if (loaded)
                    vcpu_save_vs(loaded);
                vcpu_load_vs(next);
                loaded = next;
            }
            /* a slice only matters when someone else could use the hart */
            if (runnable > 1 || waiting) {
                if (timer_armed == ~0UL || next != last_run)
                    arm_timer(read_time() + SLICE_TICKS);
            } else {
                arm_timer(~0UL);
            }
            if (next->resume_pending)
                vcpu_resume(next);
            if (next != last_run)
                next->slices++;
            last_run = next;
            hyp_enter_guest(next);
        }
        if ((!waiting || wake == ~0UL) && !vio_busy()) {
            /* every live vCPU is stopped, or waits for an interrupt nothing will raise */
            for (unsigned i = 0; i < hyp_nvms; i++)
                if (hyp_vms[i].state == VM_RUNNING)
                    vm_shutdown(&hyp_vms[i], 123, "deadlock: every vCPU waits with nothing to wake it");
            continue;
        }
        arm_timer(wake);
        __asm__ __volatile__("wfi" ::: "memory");
        csr_clear(CSR_SIP, MIP_SSIP_MASK);
        if (csr_read(CSR_SIP) & SIP_SEIP_MASK)
            vio_host_interrupt();       /* machine I/O done: may wake a vCPU (VSEIP) */
    }
}

void sched_yield(struct vcpu *vcpu)
{
    (void)vcpu;
    sched_run();
}

void vm_shutdown(struct vm *vm, long code, const char *reason)
{
    if (vm->state == VM_SHUTDOWN)
        return;
    vm_console_flush(vm);
    vm->state = VM_SHUTDOWN;
    vm->exit_code = code;
    vm->exit_reason = reason;
    stats_shutdown(vm);
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vm->vcpus[i].state = VCPU_STOPPED;
}

/*
 * sched.c - vCPUs time-sliced on the host harts.
 *
 * Round robin over every runnable vCPU of every running VM, each host hart from its own
 * position, under the hypervisor lock (smp.c).  A vCPU runs on at most one hart at a time; an
 * hw VM's vCPUs go to whichever hart is free, so they run truly in parallel, while a trap or pv
 * VM's vCPUs all run on its home hart (struct vm home_hart: their shadow tables are the VM's).
 * A vCPU runs until it exits for good reason (wfi with nothing pending, HSM stop, its VM's end)
 * or its slice ends; a hart arms its slice timer only when another vCPU it may run is waiting
 * for it, so a lone vCPU per hart runs with no scheduling exits at all.  When nothing is
 * runnable the hart sleeps in wfi until the earliest guest timer of a vCPU it may run, or a
 * kick.  Time is the machine's (virtual on rvh by default), so the schedule is deterministic.
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "rvh/sbi.h"
#include "vio.h"

#define SLICE_TICKS 10000UL     /* 1 ms at the 10 MHz timebase */
#define NS_PER_TICK 100UL       /* the same timebase, for STA's nanoseconds */

/* The vCPU whose hart-resident state (hw: hvip) is in this hart (vplic.c sets VSEIP there). */
struct vcpu *sched_loaded_vcpu(void)
{
    return hyp_loaded;
}

/*
 * One timer per host hart, several deadlines: the scheduler's (a slice's end, or the earliest
 * wake-up of a waiting vCPU) and, for a mode whose guest timer the hart cannot raise by itself
 * (trap, pv), the running vCPU's own timer.  The firmware gets the earlier one (SBI set_timer
 * programs the calling hart's timer).
 */
static void arm_timer(struct hyp_hart *me, unsigned long when)
{
    if (when != me->timer_armed)
        sbi_set_timer(when);
    me->timer_armed = when;
}

static void arm_sched_timer(struct hyp_hart *me, unsigned long when, unsigned long guest)
{
    me->sched_deadline = when;
    arm_timer(me, guest < when ? guest : when);
}

/* A trap/pv vCPU's own timer changed while it keeps the hart. */
void sched_rearm(unsigned long guest)
{
    struct hyp_hart *me = hyp_this_hart();
    arm_timer(me, guest < me->sched_deadline ? guest : me->sched_deadline);
}

void sched_arm_slice(struct vcpu *vcpu)
{
    struct hyp_hart *me = hyp_this_hart();
    if (me->sched_deadline == ~0UL)
        arm_sched_timer(me, read_time() + SLICE_TICKS, vcpu->vm->ops->run_deadline(vcpu));
}

void sched_timer_fired(void)
{
    struct hyp_hart *me = hyp_this_hart();
    if (read_time() >= me->sched_deadline)
        me->sched_deadline = ~0UL;
    arm_timer(me, ~0UL);
}

/* whether this host hart may run vCPUs of vm (a trap or pv VM: its home hart only) */
static int may_run(const struct hyp_hart *me, const struct vm *vm)
{
    return vm->home_hart < 0 || (unsigned)vm->home_hart == me->index;
}

/*
 * STA (SBI 2.0 chapter 16): steal time is the time a vCPU was runnable but not running (waiting
 * for the hart, not idle in wfi).  It starts when the vCPU leaves the hart still runnable (its
 * slice ended) or becomes runnable again (woken, started), and ends when it is given the hart.
 */
void sched_sta_publish(struct vcpu *vcpu)
{
    volatile uint8_t *shmem = vcpu->sta_shmem;
    if (!shmem)
        return;
    volatile uint32_t *sequence = (volatile uint32_t *)shmem;
    /* odd while steal is written, even after (the guest rereads on an odd or changed value) */
    *sequence = ++vcpu->sta_sequence;
    __asm__ __volatile__("fence w, w" ::: "memory");
    *(volatile uint64_t *)(shmem + 8) = vcpu->steal_ticks * NS_PER_TICK;
    __asm__ __volatile__("fence w, w" ::: "memory");
    *sequence = ++vcpu->sta_sequence;
    shmem[16] = vcpu->ready_since != 0;     /* preempted: zero before it runs again */
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
    struct hyp_hart *me = hyp_this_hart();
    if (me->loaded)
        me->loaded->running_on = -1;    /* it left the guest: this pass decides what is next */
    for (;;) {
        unsigned long now = read_time();
        unsigned total = hyp_nvms * HYP_MAX_VCPUS, runnable = 0, waiting = 0, waiting_all = 0;
        unsigned live = 0, elsewhere = 0;
        unsigned long wake = ~0UL, wake_all = ~0UL;
        struct vcpu *next = 0;
        for (unsigned step = 1; step <= total; step++) {
            unsigned slot = (me->cursor + step) % total;
            struct vm *vm = &hyp_vms[slot / HYP_MAX_VCPUS];
            if (vm->state != VM_RUNNING || slot % HYP_MAX_VCPUS >= vm->nvcpus) {
                /* so are the VM's later slots: on to the next VM's first (total is whole VMs) */
                step += HYP_MAX_VCPUS - 1 - slot % HYP_MAX_VCPUS;
                continue;
            }
            live = 1;
            struct vcpu *v = &vm->vcpus[slot % HYP_MAX_VCPUS];
            if (v->running_on >= 0) {
                elsewhere = 1;                  /* another host hart runs it */
                continue;
            }
            /* a waiting vCPU becomes runnable when one of its interrupts is pending */
            if (v->state == VCPU_WAITING && vm->ops->pending_interrupt(v)) {
                v->state = VCPU_RUNNABLE;
                v->hsm_suspended = 0;
            }
            if (v->state == VCPU_WAITING) {
                unsigned long when = vm->ops->timer_deadline(v);
                waiting_all++;
                if (when < wake_all)
                    wake_all = when;
                if (may_run(me, vm)) {
                    waiting++;
                    if (when < wake)
                        wake = when;
                }
            }
            if (v->state != VCPU_RUNNABLE) {
                v->ready_since = 0;             /* idle or stopped: not stolen time */
                continue;
            }
            if (!v->ready_since)
                v->ready_since = now ? now : 1;     /* it waits for the hart from now */
            if (!may_run(me, vm)) {
                elsewhere = 1;                  /* its home hart's (kicked when it became so) */
                continue;
            }
            runnable++;
            if (!next) {
                next = v;
                me->cursor = slot;
            }
        }
        if (!live)
            hyp_finish();
        if (next) {
            if (next != me->loaded) {
                if (me->loaded)
                    me->loaded->vm->ops->save(me->loaded);
                next->vm->ops->load(next);
                me->loaded = next;
            }
            next->running_on = (int)me->index;
            me->resched = 0;                    /* the timer below is the answer */
            /* a slice only matters when someone else could use the hart */
            unsigned long guest = next->vm->ops->run_deadline(next);
            if (runnable > 1 || waiting) {
                if (me->sched_deadline == ~0UL || next != me->last_run)
                    arm_sched_timer(me, read_time() + SLICE_TICKS, guest);
                else
                    arm_sched_timer(me, me->sched_deadline, guest);
            } else {
                /* a lone vCPU has no slice.  A host timer still armed for an earlier wait (the
                 * guest's deadline then) is left armed: firing early costs one exit, and only
                 * if it comes while the vCPU runs, whereas disarming costs an SBI call at
                 * every wake-up and re-arming another at the next wait */
                me->sched_deadline = ~0UL;
                if (guest < me->timer_armed)
                    arm_timer(me, guest);
            }
            if (next->ready_since) {
                next->steal_ticks += now - next->ready_since;
                next->ready_since = 0;
                sched_sta_publish(next);
            }
            if (next->resume_pending)
                next->vm->ops->resume(next);
            if (next != me->last_run) {
                next->slices++;
                next->vm->stats[HYP_STAT_HART_SLICES + me->index]++;
            }
            me->last_run = next;
            vcpu_enter(next);
        }
        if (!elsewhere && (!waiting_all || wake_all == ~0UL) && !vio_busy()) {
            /* every live vCPU is stopped, or waits for an interrupt nothing will raise */
            for (unsigned i = 0; i < hyp_nvms; i++)
                if (hyp_vms[i].state == VM_RUNNING)
                    vm_shutdown(&hyp_vms[i], 123, "deadlock: every vCPU waits with nothing to wake it");
            continue;
        }
        /* An hw vCPU may run on another hart next: its hart-resident state goes back to memory
         * before this hart sleeps (a trap or pv vCPU only ever runs here: it may stay). */
        if (me->loaded && me->loaded->vm->home_hart < 0 && hyp_nharts > 1) {
            me->loaded->vm->ops->save(me->loaded);
            me->loaded = 0;
        }
        arm_sched_timer(me, wake, ~0UL);
        me->idle = 1;
        hyp_unlock();
        __asm__ __volatile__("wfi" ::: "memory");
        csr_clear(CSR_SIP, MIP_SSIP_MASK);      /* a kick: whatever it was for, the pass sees */
        hyp_lock();
        me->idle = 0;
        if (csr_read(CSR_SIP) & SIP_SEIP_MASK)
            vio_host_interrupt();       /* machine I/O done: may wake a vCPU (VSEIP) */
    }
}

void sched_yield(struct vcpu *vcpu)
{
    /* still runnable (its slice ended, say): from now on it waits for the hart */
    if (vcpu->state == VCPU_RUNNABLE && vcpu->vm->state == VM_RUNNING) {
        vcpu->ready_since = read_time();
        if (!vcpu->ready_since)
            vcpu->ready_since = 1;
        if (vcpu->sta_shmem)
            vcpu->sta_shmem[16] = 1;            /* preempted (advisory) */
    }
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
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        vm->vcpus[i].state = VCPU_STOPPED;
        vcpu_kick(&vm->vcpus[i]);       /* one running on another host hart leaves its guest */
    }
}

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
#define NS_PER_TICK 100UL       /* the same timebase, for STA's nanoseconds */

struct vcpu *hyp_loaded;        /* whose hart-resident state (hw: VS CSRs, hgatp) is in */
static struct vcpu *last_run;   /* the vCPU given the hart last */
static unsigned cursor;         /* round-robin position: vm * HYP_MAX_VCPUS + vcpu */

/* The vCPU whose hart-resident state (hw: hvip) is in the hart (vplic.c sets VSEIP there). */
struct vcpu *sched_loaded_vcpu(void)
{
    return hyp_loaded;
}

/*
 * One host timer, several deadlines: the scheduler's (a slice's end, or the earliest wake-up of
 * a waiting vCPU) and, for a mode whose guest timer the hart cannot raise by itself (trap, pv),
 * the running vCPU's own timer.  The firmware gets the earlier one.
 */
static unsigned long timer_armed = ~0UL;     /* the deadline last given to the firmware */
static unsigned long sched_deadline = ~0UL;  /* the scheduler's own */

static void arm_timer(unsigned long when)
{
    if (when != timer_armed)
        sbi_set_timer(when);
    timer_armed = when;
}

static void arm_sched_timer(unsigned long when, unsigned long guest)
{
    sched_deadline = when;
    arm_timer(guest < when ? guest : when);
}

/* A trap/pv vCPU's own timer changed while it keeps the hart. */
void sched_rearm(unsigned long guest)
{
    arm_timer(guest < sched_deadline ? guest : sched_deadline);
}

void sched_timer_fired(void)
{
    if (read_time() >= sched_deadline)
        sched_deadline = ~0UL;
    arm_timer(~0UL);
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
    for (;;) {
        unsigned long now = read_time();
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
            /* a waiting vCPU becomes runnable when one of its interrupts is pending */
            if (v->state == VCPU_WAITING && vm->ops->pending_interrupt(v))
                v->state = VCPU_RUNNABLE;
            if (v->state == VCPU_WAITING) {
                waiting++;
                unsigned long when = vm->ops->timer_deadline(v);
                if (when < wake)
                    wake = when;
            }
            if (v->state != VCPU_RUNNABLE) {
                v->ready_since = 0;             /* idle or stopped: not stolen time */
                continue;
            }
            if (!v->ready_since)
                v->ready_since = now ? now : 1;     /* it waits for the hart from now */
            runnable++;
            if (!next) {
                next = v;
                cursor = slot;
            }
        }
        if (!live)
            hyp_finish();
        if (next) {
            if (next != hyp_loaded) {
                if (hyp_loaded)
                    hyp_loaded->vm->ops->save(hyp_loaded);
                next->vm->ops->load(next);
                hyp_loaded = next;
            }
            /* a slice only matters when someone else could use the hart */
            unsigned long guest = next->vm->ops->run_deadline(next);
            if (runnable > 1 || waiting) {
                if (sched_deadline == ~0UL || next != last_run)
                    arm_sched_timer(read_time() + SLICE_TICKS, guest);
                else
                    arm_sched_timer(sched_deadline, guest);
            } else {
                /* a lone vCPU has no slice.  A host timer still armed for an earlier wait (the
                 * guest's deadline then) is left armed: firing early costs one exit, and only
                 * if it comes while the vCPU runs, whereas disarming costs an SBI call at
                 * every wake-up and re-arming another at the next wait */
                sched_deadline = ~0UL;
                if (guest < timer_armed)
                    arm_timer(guest);
            }
            if (next->ready_since) {
                next->steal_ticks += now - next->ready_since;
                next->ready_since = 0;
                sched_sta_publish(next);
            }
            if (next->resume_pending)
                next->vm->ops->resume(next);
            if (next != last_run)
                next->slices++;
            last_run = next;
            vcpu_enter(next);
        }
        if ((!waiting || wake == ~0UL) && !vio_busy()) {
            /* every live vCPU is stopped, or waits for an interrupt nothing will raise */
            for (unsigned i = 0; i < hyp_nvms; i++)
                if (hyp_vms[i].state == VM_RUNNING)
                    vm_shutdown(&hyp_vms[i], 123, "deadlock: every vCPU waits with nothing to wake it");
            continue;
        }
        arm_sched_timer(wake, ~0UL);
        __asm__ __volatile__("wfi" ::: "memory");
        csr_clear(CSR_SIP, MIP_SSIP_MASK);
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
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vm->vcpus[i].state = VCPU_STOPPED;
}

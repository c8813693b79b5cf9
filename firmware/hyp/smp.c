/*
 * smp.c - the hypervisor on several host harts.
 *
 * Boot: the boot hart (entry.S's lottery winner) finds the machine's other harts through the
 * firmware's HSM (hart ids 0..N-1, as on QEMU's virt board and rvh: the first id the firmware
 * does not know ends the search) and starts each at hyp_secondary_start with its area (hyp.h
 * HYP_HART_AREA): struct hyp_hart at the bottom, its stack below the top, so every hart finds
 * its own data from sp, and entry.S's "sscratch = the vCPU while a guest runs, 0 while the
 * hypervisor runs" holds on every hart unchanged.
 *
 * One lock, test-and-set on an AMO (hyp.h says why not a ticket lock), is held whenever
 * hypervisor C code runs: from an exit's entry to the return into a guest (vcpu.c,
 * sched.c).  The guests run in parallel; the hypervisor's own work is serialized, as in KVM's
 * early days with its big lock, which keeps the VM tables, device models, console, virtio
 * backends and counters consistent without a lock of their own (docs/hypervisor.md explains
 * why, and what fine-grained locking would take).  Since rvh interleaves its harts in a fixed
 * order, the lock's hand-over is deterministic too: the same run gives the same counts.
 *
 * Cross-hart events: a change for a vCPU that runs on another host hart (an IPI, an external
 * interrupt of its virtual PLIC, its VM's end) is recorded under the lock and the hart is
 * kicked with an SBI IPI (SSIP in HS-mode), which makes its guest exit; a vCPU made runnable
 * with no hart running it wakes an idle hart the same way, or, when none is idle, makes the
 * harts that may run it arm their slice timers (a lone vCPU runs without one).  A remote sfence.vma of an hw VM
 * (SBI RFENCE) bumps the VM's TLB generation: each hart running one of its vCPUs is asked to
 * HFENCE.VVMA and the caller waits for it (SBI 2.0 chapter 8: the fence is done when the call
 * returns); a hart that loads a vCPU of the VM later fences first.  The asked hart answers
 * without the lock (while it waits for the lock, which the asker holds), so the wait cannot
 * deadlock.  G-stage tables are complete before the other harts start and never change after:
 * each hart fences its G-stage once at start.
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "rvh/sbi.h"

struct hyp_hart *hyp_harts[HYP_MAX_HARTS];
unsigned hyp_nharts;

/* the hypervisor lock (hyp.h): 1 while a hart holds it */
volatile uint32_t hyp_lock_word;

extern char __harts_start[];
void hyp_secondary_start(void);

_Static_assert(sizeof(struct hyp_hart) < HYP_HART_AREA / 4, "hyp_hart takes the stack's room");

static struct hyp_hart *hart_area(unsigned index)
{
    return (struct hyp_hart *)(__harts_start + (unsigned long)index * HYP_HART_AREA);
}

static struct hyp_hart *hart_init(unsigned index, unsigned long hartid)
{
    struct hyp_hart *h = hart_area(index);
    memset(h, 0, sizeof(*h));
    h->index = index;
    h->hartid = hartid;
    h->timer_armed = ~0UL;
    h->sched_deadline = ~0UL;
    hyp_harts[index] = h;
    return h;
}

static void send_kick(const struct hyp_hart *h)
{
    sbi_send_ipi(1, h->hartid);
}

/* What other harts asked of this one while it did not hold the lock: the VS-stage fence of the
 * VM whose vCPU it runs (its hgatp is that VM's, so hfence.vvma covers that VMID), a fence.i. */
static void hart_service(struct hyp_hart *me)
{
    unsigned asked = me->fence_request;
    if (!asked)
        return;
    if (asked & SMP_FENCE_VVMA)
        hfence_vvma_all();
    if (asked & SMP_FENCE_I)
        __asm__ __volatile__("fence.i" ::: "memory");
    __atomic_store_n(&me->fence_request, 0, __ATOMIC_RELEASE);
}

/* Ask host hart h for the fences in what, and wait until it has done them. */
static void remote_fence(struct hyp_hart *h, unsigned what)
{
    __atomic_store_n(&h->fence_request, what, __ATOMIC_RELEASE);
    send_kick(h);
    while (__atomic_load_n(&h->fence_request, __ATOMIC_ACQUIRE))
        ;
}

void hyp_lock_wait(void)
{
    struct hyp_hart *me = hyp_this_hart();
    do {
        while (__atomic_load_n(&hyp_lock_word, __ATOMIC_RELAXED))
            hart_service(me);       /* (read-only while it is taken: no AMO traffic) */
    } while (__atomic_exchange_n(&hyp_lock_word, 1, __ATOMIC_ACQUIRE) != 0);
}

void vcpu_kick(struct vcpu *v)
{
    struct hyp_hart *me = hyp_this_hart();
    if (v->running_on >= 0) {
        if ((unsigned)v->running_on != me->index) {
            v->vm->stats[HYP_STAT_KICKS]++;
            send_kick(hyp_harts[v->running_on]);
        }
        return;
    }
    if (v->state == VCPU_STOPPED || v->vm->state != VM_RUNNING)
        return;     /* nothing to run */
    /* nobody runs it: wake one idle hart that may (this one will look when it next schedules) */
    int home = v->vm->home_hart;
    for (unsigned i = 0; i < hyp_nharts; i++) {
        struct hyp_hart *h = hyp_harts[i];
        if (h == me || !h->idle || (home >= 0 && (unsigned)home != i))
            continue;
        h->idle = 0;        /* kicked once: a second vCPU wakes another idle hart */
        v->vm->stats[HYP_STAT_KICKS]++;
        send_kick(h);
        return;
    }
    /* No hart is free: each that may run it and runs a vCPU with no slice timer (it was alone)
     * arms one now, so the newcomer gets its turn even if the running guest never exits. */
    for (unsigned i = 0; i < hyp_nharts; i++) {
        struct hyp_hart *h = hyp_harts[i];
        if ((home >= 0 && (unsigned)home != i) || h->idle || h->sched_deadline != ~0UL)
            continue;
        if (h == me) {
            if (me->loaded && me->loaded->running_on == (int)me->index)
                sched_arm_slice(me->loaded);    /* (in an exit of the vCPU it runs) */
            continue;
        }
        h->resched = 1;
        v->vm->stats[HYP_STAT_KICKS]++;
        send_kick(h);
    }
}

void smp_flush_vm_tlb(struct vm *vm)
{
    struct hyp_hart *me = hyp_this_hart();
    uint64_t generation = ++vm->tlb_generation;
    if (me->loaded && me->loaded->vm == vm) {
        hfence_vvma_all();
        me->tlb_seen[vm->id] = generation;
    }
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        struct vcpu *v = &vm->vcpus[i];
        if (v->running_on < 0 || (unsigned)v->running_on == me->index)
            continue;
        struct hyp_hart *h = hyp_harts[v->running_on];
        if (h->tlb_seen[vm->id] == generation)
            continue;       /* two vCPUs of the VM cannot share a hart, but be sure */
        vm->stats[HYP_STAT_REMOTE_FENCES]++;
        remote_fence(h, SMP_FENCE_VVMA);
        h->tlb_seen[vm->id] = generation;
    }
}

void smp_fence_i(struct vm *vm)
{
    struct hyp_hart *me = hyp_this_hart();
    __asm__ __volatile__("fence.i" ::: "memory");
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        int on = vm->vcpus[i].running_on;
        if (on >= 0 && (unsigned)on != me->index) {
            vm->stats[HYP_STAT_REMOTE_FENCES]++;
            remote_fence(hyp_harts[on], SMP_FENCE_I);
        }
    }
}

void smp_load_tlb(struct vcpu *vcpu)
{
    struct hyp_hart *me = hyp_this_hart();
    struct vm *vm = vcpu->vm;
    /* the vCPU's VS-stage translations are where it ran last; here there may be stale ones
     * of an earlier visit, or ones a remote fence missed while no vCPU of the VM ran here */
    if (vcpu->last_hart != (int)me->index || me->tlb_seen[vm->id] != vm->tlb_generation) {
        hfence_vvma_all();
        me->tlb_seen[vm->id] = vm->tlb_generation;
    }
    vcpu->last_hart = (int)me->index;
}

unsigned smp_boot(unsigned long boot_hartid)
{
    for (unsigned long hartid = 0; hartid < 64 && hyp_nharts < HYP_MAX_HARTS; hartid++) {
        if (hartid == boot_hartid)
            continue;
        struct sbiret status = sbi_hart_get_status(hartid);
        if (status.error)
            break;          /* no such hart: the ids are dense */
        /* a hart that came to _start too and lost the lottery is on its way to HSM stop */
        for (unsigned tries = 0; status.error == 0 && status.value != SBI_HSM_STATE_STOPPED &&
                                 tries < 100000; tries++)
            status = sbi_hart_get_status(hartid);
        if (status.error || status.value != SBI_HSM_STATE_STOPPED) {
            printf("hyp: host hart %lu does not stop: left out\n", hartid);
            continue;
        }
        struct hyp_hart *h = hart_init(hyp_nharts, hartid);
        struct sbiret started = sbi_hart_start(hartid, (unsigned long)hyp_secondary_start,
                                               (unsigned long)h);
        if (started.error) {
            printf("hyp: host hart %lu does not start (error %ld): left out\n", hartid,
                   started.error);
            continue;
        }
        hyp_nharts++;
    }
    return hyp_nharts;
}

/* The boot hart's own struct, before anything asks which hart it runs on. */
void smp_init_boot_hart(unsigned long hartid)
{
    hart_init(0, hartid);
    hyp_nharts = 1;
}

/* A started host hart (entry.S hyp_secondary_start): the same hart set-up as the boot hart's,
 * then the scheduler, once the boot hart has built the VMs and lets the lock go. */
void hyp_secondary_main(unsigned long hartid, struct hyp_hart *me)
{
    (void)hartid;
    (void)me;
    if (hyp_hart_has_h)
        hw_init_hart();
    sbi_set_timer(~0UL);
    csr_write(CSR_SIE, MIP_STIP_MASK | MIP_SSIP_MASK);  /* (the machine's PLIC: the boot hart's) */
    /* (not hyp_lock: this hart may run before the boot hart counts it in hyp_nharts) */
    hyp_lock_wait();
    if (hyp_root_satp) {        /* trap VMs: the hypervisor runs under its own table */
        csr_write(CSR_SATP, hyp_root_satp);
        __asm__ __volatile__("sfence.vma" ::: "memory");
    }
    if (hyp_hart_has_h)
        hfence_gvma_all();
    sched_run();
}

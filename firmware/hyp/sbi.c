/*
 * sbi.c - the SBI each VM sees (SBI specification v2.0), implemented by the hypervisor.
 *
 * One table row per extension ({first EID, last EID, name, handler}), as KVM registers its
 * vcpu_sbi_<ext> handlers: adding an extension is adding a row.  Calls arrive as ecalls from the
 * guest's (virtual) S-mode, whatever the mode: a7 = EID, a6 = FID, a0..a5 arguments; a0 = error
 * and a1 = value go back, and the guest continues after its ecall.  What depends on the mode
 * (the timer, interrupts, TLB fences, reading guest memory, vCPU reset) goes through the VM's
 * ops.  Unknown extensions answer SBI_ERR_NOT_SUPPORTED (3.2 of the spec).
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "rvh/sbi.h"
#include "vio.h"


#define A(n) (vcpu->regs.x[10 + (n)])

struct sbi_extension {
    unsigned long first, last;
    unsigned stat;                  /* its counter in the stats page (HYP_SBI_*) */
    void (*call)(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret);
};

static const struct sbi_extension *find(unsigned long eid);

static void base(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)eid;
    switch (fid) {
    case SBI_BASE_GET_SPEC_VERSION: ret->value = (2UL << SBI_SPEC_VERSION_MAJOR_SHIFT); break;
    case SBI_BASE_GET_IMPL_ID: ret->value = SBI_IMPL_RVH_HYPERVISOR; break;
    case SBI_BASE_GET_IMPL_VERSION: ret->value = RVH_HYP_VERSION; break;
    case SBI_BASE_PROBE_EXTENSION: {
        const struct sbi_extension *e = find(A(0));
        /* rvh's pv extension is there for pv VMs only (pv.c) */
        ret->value = e != 0 || (A(0) == SBI_EXT_RVH_PV && vcpu->vm->mode == VIRT_PV) ||
                     (A(0) == SBI_EXT_RVH_PVIO && pvio_vm_has_devices(vcpu->vm));
        break;
    }
    /* The VM's harts report the machine's identity, as KVM's do (the firmware knows it). */
    case SBI_BASE_GET_MVENDORID: ret->value = sbi_get_mvendorid().value; break;
    case SBI_BASE_GET_MARCHID: ret->value = sbi_get_marchid().value; break;
    case SBI_BASE_GET_MIMPID: ret->value = sbi_get_mimpid().value; break;
    default: ret->error = SBI_ERR_NOT_SUPPORTED;
    }
}

static void set_timer(struct vcpu *vcpu, unsigned long when)
{
    vcpu->vm->ops->set_timer(vcpu, when);
}

static void time_ext(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)eid;
    if (fid == SBI_TIME_SET_TIMER)
        set_timer(vcpu, A(0));
    else
        ret->error = SBI_ERR_NOT_SUPPORTED;
}

/* The vCPUs named by (hart_mask, hart_mask_base) (3.1 of the spec); -1 when one does not exist. */
static long target_mask(struct vm *vm, unsigned long mask, unsigned long mask_base)
{
    if (mask_base == ~0UL)
        return vm->nvcpus >= 64 ? -1L : (long)((1UL << vm->nvcpus) - 1);
    if (mask_base >= vm->nvcpus || (mask_base + 64 > vm->nvcpus && (mask >> (vm->nvcpus - mask_base))))
        return -1;
    return (long)(mask << mask_base);
}

static void ipi(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)eid;
    if (fid != SBI_IPI_SEND_IPI) {
        ret->error = SBI_ERR_NOT_SUPPORTED;
        return;
    }
    struct vm *vm = vcpu->vm;
    long targets = target_mask(vm, A(0), A(1));
    if (targets < 0) {
        ret->error = SBI_ERR_INVALID_PARAM;
        return;
    }
    for (unsigned i = 0; i < vm->nvcpus; i++) {
        if (!(targets >> i & 1))
            continue;
        vm->ops->raise_ssip(&vm->vcpus[i]);
        vcpu_kick(&vm->vcpus[i]);       /* it may run on (or wait for) another host hart */
    }
}

static void rfence(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)eid;
    if (target_mask(vcpu->vm, A(0), A(1)) < 0) {
        ret->error = SBI_ERR_INVALID_PARAM;
        return;
    }
    switch (fid) {
    case SBI_RFENCE_REMOTE_FENCE_I:
        smp_fence_i(vcpu->vm);
        break;
    case SBI_RFENCE_REMOTE_SFENCE_VMA:
    case SBI_RFENCE_REMOTE_SFENCE_VMA_ASID:
        vcpu->vm->ops->flush_guest_tlb(vcpu);
        break;
    default:
        ret->error = SBI_ERR_NOT_SUPPORTED;     /* the HFENCE calls: the VM has no H extension */
    }
}

static void hsm(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)eid;
    struct vm *vm = vcpu->vm;
    switch (fid) {
    case SBI_HSM_HART_START: {
        if (A(0) >= vm->nvcpus) {
            ret->error = SBI_ERR_INVALID_PARAM;
            break;
        }
        struct vcpu *target = &vm->vcpus[A(0)];
        if (target->state != VCPU_STOPPED) {
            ret->error = SBI_ERR_ALREADY_AVAILABLE;
            break;
        }
        unsigned long hpa;
        if (gpa_to_host(vm, A(1), 2, &hpa) < 0) {
            ret->error = SBI_ERR_INVALID_ADDRESS;
            break;
        }
        vcpu_reset(target, A(1), A(0), A(2));
        target->state = VCPU_RUNNABLE;
        target->hsm_suspended = 0;
        vcpu_kick(target);              /* an idle host hart may take it */
        break;
    }
    case SBI_HSM_HART_STOP:
        vcpu->state = VCPU_STOPPED;
        break;
    case SBI_HSM_HART_GET_STATUS:
        if (A(0) >= vm->nvcpus)
            ret->error = SBI_ERR_INVALID_PARAM;
        else
            ret->value = vm->vcpus[A(0)].state == VCPU_STOPPED ? SBI_HSM_STATE_STOPPED
                       : vm->vcpus[A(0)].state == VCPU_WAITING && vm->vcpus[A(0)].hsm_suspended
                           ? SBI_HSM_STATE_SUSPENDED
                           : SBI_HSM_STATE_STARTED;
        break;
    case SBI_HSM_HART_SUSPEND: {
        /* 9.4: 0 default retentive, 0x80000000 default non-retentive (resumes at A(1) with
         * a0 = hartid, a1 = opaque, satp = 0, SIE = 0); 0x10000000-0x7fffffff and
         * 0x90000000-0xffffffff platform-specific (none here); the rest reserved */
        unsigned long type = A(0) & 0xffffffffUL;
        int platform = (type >= 0x10000000UL && type <= 0x7fffffffUL) || type >= 0x90000000UL;
        if (type != SBI_HSM_SUSPEND_RETENTIVE && type != SBI_HSM_SUSPEND_NON_RETENTIVE) {
            ret->error = platform ? SBI_ERR_NOT_SUPPORTED : SBI_ERR_INVALID_PARAM;
            break;
        }
        unsigned long hpa;
        if (type == SBI_HSM_SUSPEND_NON_RETENTIVE) {
            if (gpa_to_host(vm, A(1), 2, &hpa) < 0) {
                ret->error = SBI_ERR_INVALID_ADDRESS;
                break;
            }
            vcpu->resume_pc = A(1);
            vcpu->resume_opaque = A(2);
            vcpu->resume_pending = 1;
        }
        if (!vm->ops->pending_interrupt(vcpu)) {
            vcpu->state = VCPU_WAITING;
            vcpu->hsm_suspended = 1;
        }
        else if (vcpu->resume_pending)
            vm->ops->resume(vcpu);
        break;
    }
    default:
        ret->error = SBI_ERR_NOT_SUPPORTED;
    }
}

static void srst(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)eid;
    if (fid != SBI_SRST_SYSTEM_RESET || A(0) > SBI_SRST_TYPE_WARM_REBOOT || A(1) > SBI_SRST_REASON_SYSTEM_FAILURE) {
        ret->error = fid != SBI_SRST_SYSTEM_RESET ? SBI_ERR_NOT_SUPPORTED : SBI_ERR_INVALID_PARAM;
        return;
    }
    /* ends this VM only, with its reason as its status */
    vm_shutdown(vcpu->vm, A(1) == SBI_SRST_REASON_SYSTEM_FAILURE ? 1 : 0,
                A(0) == SBI_SRST_TYPE_SHUTDOWN ? "shutdown" : "reboot");
}

static void dbcn(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)eid;
    struct vm *vm = vcpu->vm;
    unsigned long hpa;
    switch (fid) {
    case SBI_DBCN_CONSOLE_WRITE:
        /* the buffer is guest-physical (A(1) low, A(2) high bits); all of it must be RAM */
        if (A(2) != 0 || gpa_to_host(vm, A(1), A(0), &hpa) < 0) {
            ret->error = SBI_ERR_INVALID_PARAM;
            break;
        }
        for (unsigned long i = 0; i < A(0); i++)
            vm_console_putc(vm, ((const char *)hpa)[i]);
        ret->value = (long)A(0);
        break;
    case SBI_DBCN_CONSOLE_READ:
        if (A(2) != 0 || gpa_to_host(vm, A(1), A(0), &hpa) < 0)
            ret->error = SBI_ERR_INVALID_PARAM;
        ret->value = 0;                 /* no input yet */
        break;
    case SBI_DBCN_CONSOLE_WRITE_BYTE:
        vm_console_putc(vm, (int)(A(0) & 0xff));
        break;
    default:
        ret->error = SBI_ERR_NOT_SUPPORTED;
    }
}

/* The hart mask of a v0.1 call: a pointer in the guest's virtual memory (0 = every hart),
 * read through its own translation; -1 when the pointer does not lead to memory. */
static long legacy_mask(struct vcpu *vcpu, unsigned long pointer)
{
    if (pointer == 0)
        return vcpu->vm->nvcpus >= 64 ? -1L : (long)((1UL << vcpu->vm->nvcpus) - 1);
    unsigned long mask = 0;
    for (unsigned i = 0; i < 8; i++) {
        long byte = vcpu_read_guest(vcpu, pointer + i, 1);
        if (byte < 0)
            return -1;
        mask |= (unsigned long)byte << (8 * i);
    }
    return (long)(mask & ((1UL << vcpu->vm->nvcpus) - 1));
}

/* SBI v0.1 (chapter 5): one value back in a0, a6 ignored */
static void legacy(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)fid;
    long mask;
    ret->error = 0;
    switch (eid) {
    case SBI_EXT_LEGACY_SET_TIMER: set_timer(vcpu, A(0)); break;
    case SBI_EXT_LEGACY_CONSOLE_PUTCHAR: vm_console_putc(vcpu->vm, (int)(A(0) & 0xff)); break;
    case SBI_EXT_LEGACY_CONSOLE_GETCHAR: ret->error = -1; break;     /* no input yet */
    case SBI_EXT_LEGACY_CLEAR_IPI: vcpu->vm->ops->clear_ssip(vcpu); break;
    case SBI_EXT_LEGACY_SEND_IPI:
        mask = legacy_mask(vcpu, A(0));
        if (mask < 0) {
            ret->error = SBI_ERR_INVALID_ADDRESS;
            break;
        }
        for (unsigned i = 0; i < vcpu->vm->nvcpus; i++) {
            if ((unsigned long)mask >> i & 1) {
                vcpu->vm->ops->raise_ssip(&vcpu->vm->vcpus[i]);
                vcpu_kick(&vcpu->vm->vcpus[i]);
            }
        }
        break;
    case SBI_EXT_LEGACY_REMOTE_FENCE_I:
        smp_fence_i(vcpu->vm);
        break;
    case SBI_EXT_LEGACY_REMOTE_SFENCE_VMA:
    case SBI_EXT_LEGACY_REMOTE_SFENCE_VMA_ASID:
        vcpu->vm->ops->flush_guest_tlb(vcpu);
        break;
    case SBI_EXT_LEGACY_SHUTDOWN: vm_shutdown(vcpu->vm, 0, "shutdown"); break;
    default: ret->error = SBI_ERR_NOT_SUPPORTED;
    }
}

/*
 * STA (chapter 16): the vCPU's steal time, the time it was runnable but another vCPU had the
 * hart, in the shared memory it names (sched.c keeps and publishes it).  All-ones stops the
 * reporting; otherwise 64 bytes, 64-byte aligned, in the VM's RAM (its physical addresses are
 * guest-physical ones here), zeroed before the call returns.
 */
static void sta(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)eid;
    unsigned long lo = A(0), hi = A(1), flags = A(2), host;
    if (fid != SBI_STA_SET_SHMEM) {
        ret->error = SBI_ERR_NOT_SUPPORTED;
        return;
    }
    if (flags != 0) {
        ret->error = SBI_ERR_INVALID_PARAM;
        return;
    }
    if (lo == ~0UL && hi == ~0UL) {
        vcpu->sta_shmem = 0;
        return;
    }
    if (lo & 63) {
        ret->error = SBI_ERR_INVALID_PARAM;
        return;
    }
    if (hi != 0 || gpa_to_host(vcpu->vm, lo, 64, &host) < 0) {
        ret->error = SBI_ERR_INVALID_ADDRESS;
        return;
    }
    for (unsigned i = 0; i < 64; i++)
        ((volatile uint8_t *)host)[i] = 0;
    vcpu->sta_sequence = 0;
    vcpu->sta_shmem = (volatile uint8_t *)host;
    sched_sta_publish(vcpu);
}

/*
 * PMU (chapter 11) over the three fixed counters, counter i being CSR cycle + i (cycle, time,
 * instret), 64 bits wide, which the guest reads itself (hcounteren opens them).  Linux opens
 * `time` to its user mode (scounteren.TM, which each vCPU keeps) only once it finds this
 * extension, so without it every user-mode rdtime of a Linux VM is an illegal instruction.
 * The counters run free: the hypervisor cannot set the hart's counters, so a start's initial
 * value is not applied; start and stop keep the state the spec defines per vCPU.
 */
#define PMU_COUNTERS 3
static uint8_t pmu_started[HYP_MAX_VMS][HYP_MAX_VCPUS];   /* a bit per counter */
static uint8_t pmu_configured[HYP_MAX_VMS][HYP_MAX_VCPUS];

static long pmu_counter_for(unsigned long event)
{
    if (event == SBI_PMU_EVENT_CPU_CYCLES)
        return 0;
    if (event == SBI_PMU_EVENT_INSTRUCTIONS)
        return 2;
    return -1;
}

static void pmu(struct vcpu *vcpu, unsigned long eid, unsigned long fid, struct sbiret *ret)
{
    (void)eid;
    uint8_t *started = &pmu_started[vcpu->vm->id][vcpu->id];
    uint8_t *configured = &pmu_configured[vcpu->vm->id][vcpu->id];
    unsigned long base = A(0), mask = A(1), flags = A(2), bits = 0;
    if (fid == SBI_PMU_NUM_COUNTERS) {
        ret->value = PMU_COUNTERS;
        return;
    }
    if (fid == SBI_PMU_COUNTER_GET_INFO) {
        if (A(0) >= PMU_COUNTERS)
            ret->error = SBI_ERR_INVALID_PARAM;
        else    /* type 0 (hardware), width - 1 = 63, the CSR's number */
            ret->value = (CSR_CYCLE + A(0)) | (63UL << SBI_PMU_INFO_WIDTH_SHIFT);
        return;
    }
    if (fid != SBI_PMU_COUNTER_CONFIG_MATCHING && fid != SBI_PMU_COUNTER_START &&
        fid != SBI_PMU_COUNTER_STOP) {
        ret->error = fid == SBI_PMU_COUNTER_FW_READ || fid == SBI_PMU_COUNTER_FW_READ_HI
                         ? SBI_ERR_INVALID_PARAM    /* no firmware counters */
                         : SBI_ERR_NOT_SUPPORTED;
        return;
    }
    for (unsigned bit = 0; bit < 64; bit++)
        if (mask >> bit & 1) {
            if (base + bit >= PMU_COUNTERS) {
                ret->error = SBI_ERR_INVALID_PARAM;
                return;
            }
            bits |= 1UL << (base + bit);
        }
    if (!bits) {
        ret->error = SBI_ERR_INVALID_PARAM;
        return;
    }
    if (fid == SBI_PMU_COUNTER_CONFIG_MATCHING) {
        long counter = -1;
        if (flags & SBI_PMU_CONFIG_SKIP_MATCH) {
            for (unsigned c = 0; c < PMU_COUNTERS && counter < 0; c++)
                if (bits >> c & 1)
                    counter = c;
        } else {
            counter = pmu_counter_for(A(3));
            if (counter >= 0 && !(bits >> counter & 1))
                counter = -1;
        }
        if (counter < 0) {
            ret->error = SBI_ERR_NOT_SUPPORTED;
            return;
        }
        *configured |= (uint8_t)(1u << counter);
        if (flags & SBI_PMU_CONFIG_AUTO_START)
            *started |= (uint8_t)(1u << counter);
        ret->value = (unsigned long)counter;
        return;
    }
    if (fid == SBI_PMU_COUNTER_START) {
        if (*started & bits) {
            ret->error = SBI_ERR_ALREADY_STARTED;
            return;
        }
        *started |= (uint8_t)bits;
        return;
    }
    if (~*started & bits) {     /* STOP */
        ret->error = SBI_ERR_ALREADY_STOPPED;
        return;
    }
    *started &= (uint8_t)~bits;
    if (flags & SBI_PMU_STOP_RESET)
        *configured &= (uint8_t)~bits;
}

static const struct sbi_extension extensions[] = {
    {SBI_EXT_LEGACY_SET_TIMER, SBI_EXT_LEGACY_SHUTDOWN, HYP_SBI_LEGACY, legacy},
    {SBI_EXT_BASE, SBI_EXT_BASE, HYP_SBI_BASE, base},
    {SBI_EXT_TIME, SBI_EXT_TIME, HYP_SBI_TIME, time_ext},
    {SBI_EXT_IPI, SBI_EXT_IPI, HYP_SBI_IPI, ipi},
    {SBI_EXT_RFENCE, SBI_EXT_RFENCE, HYP_SBI_RFENCE, rfence},
    {SBI_EXT_HSM, SBI_EXT_HSM, HYP_SBI_HSM, hsm},
    {SBI_EXT_SRST, SBI_EXT_SRST, HYP_SBI_SRST, srst},
    {SBI_EXT_DBCN, SBI_EXT_DBCN, HYP_SBI_DBCN, dbcn},
    {SBI_EXT_STA, SBI_EXT_STA, HYP_SBI_STA, sta},
    {SBI_EXT_PMU, SBI_EXT_PMU, HYP_SBI_OTHER, pmu},
};
static const unsigned n_extensions = sizeof(extensions) / sizeof(extensions[0]);

static const struct sbi_extension *find(unsigned long eid)
{
    for (unsigned i = 0; i < n_extensions; i++)
        if (eid >= extensions[i].first && eid <= extensions[i].last)
            return &extensions[i];
    return 0;
}

void sbi_dispatch(struct vcpu *vcpu)
{
    unsigned long eid = vcpu->regs.x[17], fid = vcpu->regs.x[16];
    struct sbiret ret = {0, 0};
    if (eid == SBI_EXT_RVH_PV && vcpu->vm->mode == VIRT_PV) {
        /* pv.c sets the registers itself: SYNC_AND_RETURN returns elsewhere, with a0 intact */
        vcpu->vm->stats[HYP_STAT_SBI + HYP_SBI_PV]++;
        pv_sbi_call(vcpu);
        return;
    }
    if (eid == SBI_EXT_RVH_PVIO && pvio_vm_has_devices(vcpu->vm)) {
        /* io=pv: the platform I/O extension (pvio.c) */
        vcpu->vm->stats[HYP_STAT_SBI + HYP_SBI_OTHER]++;
        vcpu->regs.sepc += 4;
        pvio_sbi_call(vcpu, fid, &ret);
        vcpu->regs.x[10] = (unsigned long)ret.error;
        vcpu->regs.x[11] = (unsigned long)ret.value;
        return;
    }
    const struct sbi_extension *e = find(eid);
    vcpu->vm->stats[HYP_STAT_SBI + (e ? e->stat : HYP_SBI_OTHER)]++;
    vcpu->regs.sepc += 4;
    if (e)
        e->call(vcpu, eid, fid, &ret);
    else
        ret.error = SBI_ERR_NOT_SUPPORTED;
    vcpu->regs.x[10] = (unsigned long)ret.error;
    if (!e || e->call != legacy)        /* a legacy call returns a0 only */
        vcpu->regs.x[11] = (unsigned long)ret.value;
}

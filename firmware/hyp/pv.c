/*
 * pv.c - pv mode: a trap-mode VM (trap.c: guest kernel in U-mode on a virtual hart, shadow page
 * tables) whose kernel knows it is virtualized and calls rvh's pv SBI extension instead of
 * executing the privileged instructions that would each trap (docs/hypervisor.md, "pv mode";
 * the numbers are rvh/isa/sbi.py's).
 *
 * A pv guest registers a shared page per vCPU (SET_SHARED_PAGE).  While it runs, the page holds
 * its virtual S CSRs and the guest reads and writes them with plain loads and stores; while the
 * hypervisor runs, struct vhart does, as in trap mode.  So every op here first takes the page's
 * values into the vhart (pv_pull, once per stay in the hypervisor, and only what the guest may
 * write, legalized as the CSRs would be), lets trap mode's op do its work on the vhart, and
 * pv_enter writes the vhart back into the page just before the guest runs again.  A pv VM whose
 * guest never registers a page is simply a trap-mode VM with the extension on offer.
 *
 * Traps go to the guest as in trap mode (trap.c enters them on the vhart), and also as the pv
 * ABI says: when the vhart has entered a trap since the guest last ran, pv_enter keeps the
 * guest's t0 in the page's TRAP_T0 word and puts the page's guest-virtual address in t0, so the
 * guest's trap entry needs no CSR instruction.  The guest returns with SYNC_AND_RETURN (sret on
 * the page's sepc and sstatus, a6/a7 from the page, since the ecall needed them).
 *
 * What trap mode learns from an exit (a CSR write enabling the timer, say) a pv guest may do
 * with a store; the guest's layer calls SYNC where that matters, and pv_run_deadline keeps the
 * host timer armed for a timer the guest could enable without an exit.
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "rvh/sbi.h"

#define A(n) (vcpu->regs.x[10 + (n)])
#define REG_T0 5
#define REG_A6 16
#define REG_A7 17

/* what a guest may change in the page: what its S CSRs take from a write (trap.c's csr_put) */
#define PV_SSTATUS_WRITABLE (SSTATUS_SIE_MASK | SSTATUS_SPIE_MASK | SSTATUS_SPP_MASK | \
                             SSTATUS_FS_MASK | SSTATUS_SUM_MASK | SSTATUS_MXR_MASK)
#define PV_SIE_WRITABLE     (MIP_SSIP_MASK | MIP_STIP_MASK | MIP_SEIP_MASK)

#define WORD(vh, offset) ((vh)->pv_page[(offset) / 8])

/* entry.S's CSR fast path leaves a vCPU with a page to the C path, which takes the page in */
#include "asm_offsets.h"
_Static_assert(VCPU_VH_PV_PAGE == offsetof(struct vcpu, vh.pv_page), "asm_offsets.h: vh.pv_page");
/* and its pv fast paths these */
#define PV_OFFSET(name, field) _Static_assert(name == offsetof(struct vcpu, field), "asm_offsets.h: " #name)
PV_OFFSET(VCPU_VH_SIP, vh.sip);
PV_OFFSET(VCPU_VH_SATP, vh.satp);
PV_OFFSET(VCPU_VH_STIMECMP, vh.stimecmp);
PV_OFFSET(VCPU_VH_SCOUNTEREN, vh.scounteren);
PV_OFFSET(VCPU_VH_TRAPS_ENTERED, vh.traps_entered);
PV_OFFSET(VCPU_VH_PV_PAGE_VA, vh.pv_page_va);
PV_OFFSET(VCPU_VH_PV_TRAPS_SEEN, vh.pv_traps_seen);
PV_OFFSET(VCPU_VH_LAST_REAL_SATP, vh.last_real_satp);
PV_OFFSET(VCPU_VH_LAST_DEADLINE, vh.last_deadline);
PV_OFFSET(VCPU_VH_LAST_CTX, vh.last_ctx);
PV_OFFSET(VCPU_VH_CTX_REAL_SATP, vh.ctx_real_satp);
PV_OFFSET(VCPU_VH_CTX_GUEST_SATP, vh.ctx_guest_satp);
PV_OFFSET(VCPU_VH_CTX_GENERATION, vh.ctx_generation);
_Static_assert(VM_SHADOW_GENERATION == offsetof(struct vm, shadow_generation), "asm_offsets.h");
_Static_assert(sizeof(((struct vhart *)0)->priv) == 4 && sizeof(((struct vhart *)0)->last_ctx) == 4,
               "entry.S reads priv and last_ctx as words");
_Static_assert(PV_SSTATUS_WRITABLE == TRAP_SSTATUS_WRITABLE_BITS && PV_SIE_WRITABLE == 0x222,
               "entry.S legalizes the page's sstatus and sie with these");

/* page -> vhart: what the guest wrote while it ran */
static void pv_take_page(struct vhart *vh)
{
    vh->sstatus = WORD(vh, RVH_PV_SSTATUS) & PV_SSTATUS_WRITABLE;
    vh->sie = WORD(vh, RVH_PV_SIE) & PV_SIE_WRITABLE;
    vh->sip = (vh->sip & ~SIP_SSIP_MASK) | (WORD(vh, RVH_PV_SIP) & SIP_SSIP_MASK);
    vh->stvec = WORD(vh, RVH_PV_STVEC) & ~2UL;      /* modes 0 and 1 only (4.1.2) */
    vh->sscratch = WORD(vh, RVH_PV_SSCRATCH);
    vh->sepc = WORD(vh, RVH_PV_SEPC) & ~1UL;        /* IALIGN 16 (4.1.7) */
    vh->scause = WORD(vh, RVH_PV_SCAUSE);
    vh->stval = WORD(vh, RVH_PV_STVAL);
    vh->pv_vhart_current = 1;
}

/* once per stay in the hypervisor, and only with a page: a pv VM without one is a trap VM */
static inline void pv_pull(struct vcpu *vcpu)
{
    struct vhart *vh = &vcpu->vh;
    if (vh->pv_page && !vh->pv_vhart_current)
        pv_take_page(vh);
}

/* vhart -> page, as the guest runs again */
static void pv_push(struct vcpu *vcpu)
{
    struct vhart *vh = &vcpu->vh;
    /* as a csrr would read them (trap.c): UXL = 64, SD with FS dirty; STIP from stimecmp */
    unsigned long sstatus = vh->sstatus | 2UL << SSTATUS_UXL_SHIFT;
    if ((sstatus & SSTATUS_FS_MASK) == SSTATUS_FS_MASK)
        sstatus |= SSTATUS_SD_MASK;
    unsigned long sip = vh->sip & (MIP_SSIP_MASK | MIP_SEIP_MASK);
    if (read_time() >= vh->stimecmp)
        sip |= MIP_STIP_MASK;
    WORD(vh, RVH_PV_SSTATUS) = sstatus;
    WORD(vh, RVH_PV_SIE) = vh->sie;
    WORD(vh, RVH_PV_SIP) = sip;
    WORD(vh, RVH_PV_STVEC) = vh->stvec;
    WORD(vh, RVH_PV_SSCRATCH) = vh->sscratch;
    WORD(vh, RVH_PV_SEPC) = vh->sepc;
    WORD(vh, RVH_PV_SCAUSE) = vh->scause;
    WORD(vh, RVH_PV_STVAL) = vh->stval;
    WORD(vh, RVH_PV_SATP) = vh->satp;
    vh->pv_vhart_current = 0;
}

/* ---- the trap-mode ops, with the page taken in first ---- */
static int pv_init_vm(struct vm *vm)
{
    return trap_ops.init_vm(vm);
}

static void pv_reset(struct vcpu *vcpu, unsigned long pc, unsigned long a0, unsigned long a1)
{
    trap_ops.reset_vcpu(vcpu, pc, a0, a1);  /* a new vhart: no shared page until registered */
}

static void pv_load(struct vcpu *vcpu)
{
    pv_pull(vcpu);
    trap_ops.load(vcpu);
}

static void pv_save(struct vcpu *vcpu)
{
    pv_pull(vcpu);
    trap_ops.save(vcpu);
}

static void pv_inject_exception(struct vcpu *vcpu, unsigned long cause, unsigned long tval)
{
    pv_pull(vcpu);
    trap_ops.inject_exception(vcpu, cause, tval);     /* t0 is handed over in pv_enter */
}

static int pv_pending_interrupt(struct vcpu *vcpu)
{
    pv_pull(vcpu);
    return trap_ops.pending_interrupt(vcpu);
}

static unsigned long pv_timer_deadline(struct vcpu *vcpu)
{
    pv_pull(vcpu);
    return trap_ops.timer_deadline(vcpu);
}

/*
 * The host timer while the vCPU runs.  Trap mode arms it only when the guest can take the
 * interrupt now, since enabling it later is a CSR write that exits; a pv guest sets sstatus.SIE
 * with a store.  So with a page: armed for a future deadline whenever sie.STIE is set (the exit
 * at the deadline puts STIP in the page, and the guest's layer calls SYNC when it then sets
 * SIE); for a past one only when the guest can take it now, else it would fire over and over.
 * The guest's layer calls SYNC when it sets a bit in sie, so STIE set by a store is seen too.
 */
static unsigned long pv_run_deadline(struct vcpu *vcpu)
{
    struct vhart *vh = &vcpu->vh;
    pv_pull(vcpu);
    if (!vh->pv_page)
        return trap_ops.run_deadline(vcpu);
    if (!(vh->sie & MIP_STIP_MASK))
        return ~0UL;
    if (vh->priv == VPRIV_U || (vh->sstatus & SSTATUS_SIE_MASK) || read_time() < vh->stimecmp)
        return vh->stimecmp;
    return ~0UL;
}

static void pv_set_timer(struct vcpu *vcpu, unsigned long when)
{
    pv_pull(vcpu);
    trap_ops.set_timer(vcpu, when);
}

static void pv_raise_ssip(struct vcpu *vcpu)
{
    pv_pull(vcpu);
    trap_ops.raise_ssip(vcpu);
}

static void pv_clear_ssip(struct vcpu *vcpu)
{
    pv_pull(vcpu);
    trap_ops.clear_ssip(vcpu);
}

static void pv_flush_guest_tlb(struct vcpu *vcpu)
{
    pv_pull(vcpu);
    trap_ops.flush_guest_tlb(vcpu);
}

static long pv_guest_load(struct vcpu *vcpu, unsigned long va, int kind)
{
    pv_pull(vcpu);
    return trap_ops.guest_load(vcpu, va, kind);
}

/* the end of a non-retentive suspend starts the hart over: no page until registered again */
static void pv_resume(struct vcpu *vcpu)
{
    pv_pull(vcpu);
    trap_ops.resume(vcpu);
    vcpu->vh.pv_page = 0;
}

static void pv_handle_exit(struct vcpu *vcpu, unsigned long scause, unsigned long stval)
{
    pv_pull(vcpu);
    trap_ops.handle_exit(vcpu, scause, stval);
}

static void pv_enter(struct vcpu *vcpu)
{
    struct vhart *vh = &vcpu->vh;
    pv_pull(vcpu);
    trap_ops.enter(vcpu);           /* delivers interrupts, picks the shadow table */
    if (!vh->pv_page)
        return;
    /* trap_enter armed trap mode's deadline; a pv guest may need the timer sooner */
    unsigned long deadline = pv_run_deadline(vcpu);
    if (deadline != vh->last_deadline) {
        vh->last_deadline = deadline;
        sched_rearm(deadline);
    }
    if (vh->traps_entered != vh->pv_traps_seen) {
        /* a trap was entered (forwarded, injected or an interrupt): the pv ABI's t0 */
        WORD(vh, RVH_PV_TRAP_T0) = vcpu->regs.x[REG_T0];
        vcpu->regs.x[REG_T0] = vh->pv_page_va;
        vh->pv_traps_seen = vh->traps_entered;
    }
    pv_push(vcpu);
}

/* ---- the hypercalls ---- */
static long set_shared_page(struct vcpu *vcpu, unsigned long gpa, unsigned long va)
{
    struct vhart *vh = &vcpu->vh;
    unsigned long hpa;
    if (gpa == 0) {
        vh->pv_page = 0;
        return SBI_SUCCESS;
    }
    if (gpa & 4095 || va & 7)
        return SBI_ERR_INVALID_PARAM;
    if (gpa_to_host(vcpu->vm, gpa, 4096, &hpa) < 0)
        return SBI_ERR_INVALID_ADDRESS;
    vh->pv_page = (volatile uint64_t *)hpa;
    vh->pv_page_va = va;
    for (unsigned i = 0; i < SBI_RVH_PV_SHARED_SIZE / 8; i++)
        vh->pv_page[i] = 0;
    vh->pv_vhart_current = 1;       /* the vhart is what counts; pv_enter fills the page */
    vh->pv_traps_seen = vh->traps_entered;
    return SBI_SUCCESS;
}

/* sret (3.3.2) on the page's sepc and sstatus; returns to the guest's new mode, not the caller */
static void sync_and_return(struct vcpu *vcpu)
{
    struct vhart *vh = &vcpu->vh;
    unsigned long s = vh->sstatus;
    vh->priv = (s & SSTATUS_SPP_MASK) ? VPRIV_S : VPRIV_U;
    s = (s & ~SSTATUS_SIE_MASK) | ((s & SSTATUS_SPIE_MASK) ? SSTATUS_SIE_MASK : 0);
    s = (s | SSTATUS_SPIE_MASK) & ~SSTATUS_SPP_MASK;
    vh->sstatus = s;
    vcpu->regs.sepc = vh->sepc;
    vcpu->regs.x[REG_A6] = WORD(vh, RVH_PV_RET_A6);
    vcpu->regs.x[REG_A7] = WORD(vh, RVH_PV_RET_A7);
    vcpu->vm->stats[HYP_STAT_SRET]++;
    /* the shadow table for the new privilege is picked as the guest is entered (trap.c) */
}

/* {va, pte address, value}: write each PTE (the VM's RAM only); enter leaves in the shadow */
static long mmu_update(struct vcpu *vcpu, unsigned long list, unsigned long count,
                       unsigned long *entered)
{
    struct vm *vm = vcpu->vm;
    unsigned long hpa;
    *entered = 0;
    if (count > SBI_RVH_PV_MMU_BATCH_MAX)
        return SBI_ERR_INVALID_PARAM;
    if (count == 0)
        return SBI_SUCCESS;
    if (list & 7 || gpa_to_host(vm, list, count * SBI_RVH_PV_MMU_ENTRY_SIZE, &hpa) < 0)
        return SBI_ERR_INVALID_ADDRESS;
    const volatile uint64_t *entry = (const volatile uint64_t *)hpa;
    for (unsigned long i = 0; i < count; i++, entry += 3) {
        unsigned long va = entry[0], pte_gpa = entry[1], value = entry[2], pte_hpa;
        if (pte_gpa & 7 || gpa_to_host(vm, pte_gpa, 8, &pte_hpa) < 0)
            return SBI_ERR_INVALID_ADDRESS;
        *(volatile uint64_t *)pte_hpa = value;
        trap_walk_forget(vm);
        /* a valid leaf with A set, mapping only this VM's RAM: the walk of va sets nothing */
        unsigned long leaf = PTE_R_MASK | PTE_X_MASK, ram;
        unsigned long pa = (value & PTE_PPN_MASK) >> PTE_PPN_SHIFT << 12;
        if ((value & PTE_V_MASK) && (value & PTE_A_MASK) && (value & leaf) &&
            gpa_to_host(vm, pa, 4096, &ram) == 0 && trap_shadow_prefill(vcpu, va, pte_hpa) == 0)
            (*entered)++;
    }
    return SBI_SUCCESS;
}

/* satp as its hart would take it (4.1.11): Bare, Sv39 and Sv48 as trap mode has them; another
 * mode leaves the register as it was.  The shadow set for it is found as the guest is entered. */
static void set_satp(struct vcpu *vcpu, unsigned long value)
{
    unsigned long mode = value >> SATP_MODE_SHIFT;
    if (mode == SATP_MODE_BARE)
        vcpu->vh.satp = 0;
    else if (mode == SATP_MODE_SV39 || mode == SATP_MODE_SV48)
        vcpu->vh.satp = value;
}

/* The rvh pv extension (SBI_EXT_RVH_PV) from a pv VM's virtual S-mode (sbi.c sends it here). */
void pv_sbi_call(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    unsigned long fid = vcpu->regs.x[REG_A6];
    long error = SBI_SUCCESS;
    unsigned long value = 0;
    if (fid < HYP_PV_FUNCTIONS)
        vm->stats[HYP_STAT_PV + fid]++;
    pv_pull(vcpu);
    if (!vcpu->vh.pv_page && fid != SBI_RVH_PV_SET_SHARED_PAGE && fid < HYP_PV_FUNCTIONS) {
        error = SBI_ERR_NO_SHMEM;       /* every other call works on the page */
        goto done;
    }
    switch (fid) {
    case SBI_RVH_PV_SET_SHARED_PAGE:
        error = set_shared_page(vcpu, A(0), A(1));
        break;
    case SBI_RVH_PV_SYNC_AND_RETURN:
        sync_and_return(vcpu);
        return;
    case SBI_RVH_PV_SYNC:
        break;                      /* taken in above; pv_enter delivers what is now enabled */
    case SBI_RVH_PV_SET_SATP:
        set_satp(vcpu, A(0));
        break;
    case SBI_RVH_PV_SFENCE_VMA:
        trap_sfence_vma(vcpu, A(0), !(A(2) & SBI_RVH_PV_FENCE_ALL_ADDRESSES), A(1),
                        !(A(2) & SBI_RVH_PV_FENCE_ALL_ASIDS));
        break;
    case SBI_RVH_PV_MMU_UPDATE:
        error = mmu_update(vcpu, A(0), A(1), &value);
        break;
    case SBI_RVH_PV_WFI:
        vcpu->regs.sepc += 4;
        A(0) = SBI_SUCCESS;
        A(1) = 0;
        vm->stats[HYP_STAT_WFI]++;
        vcpu_wait(vcpu);
        return;
    default:
        error = SBI_ERR_NOT_SUPPORTED;
    }
done:
    vcpu->regs.sepc += 4;
    A(0) = (unsigned long)error;
    A(1) = value;
}

const struct virt_ops pv_ops = {
    .name = "pv",
    .init_vm = pv_init_vm,
    .reset_vcpu = pv_reset,
    .load = pv_load,
    .save = pv_save,
    .enter = pv_enter,
    .handle_exit = pv_handle_exit,
    .inject_exception = pv_inject_exception,
    .pending_interrupt = pv_pending_interrupt,
    .timer_deadline = pv_timer_deadline,
    .run_deadline = pv_run_deadline,
    .set_timer = pv_set_timer,
    .raise_ssip = pv_raise_ssip,
    .clear_ssip = pv_clear_ssip,
    .flush_guest_tlb = pv_flush_guest_tlb,
    .guest_load = pv_guest_load,
    .resume = pv_resume,
};

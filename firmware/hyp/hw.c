/*
 * hw.c - hw mode: the guest kernel in VS-mode on the H extension (priv. spec chapter 8).
 *
 * What reaches the hypervisor: VS ecalls (the virtual SBI), guest-page faults (emulated devices,
 * or wild guest-physical accesses that become access faults in the guest, as on a machine with
 * nothing at that address), virtual-instruction faults (wfi, which yields the hart; anything a
 * hart without H would not have, which becomes an illegal instruction in the guest) and the
 * hypervisor's own interrupts (the scheduler's timer).  Everything else is delegated to the
 * guest through hedeleg/hideleg and never exits.  The guest's timer is Sstc's vstimecmp.
 */
#include "hyp.h"
#include "rvh/libc.h"
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
#define VS_INTERRUPTS (MIP_VSSIP_MASK | MIP_VSTIP_MASK | MIP_VSEIP_MASK)

/* The hart's H set-up, once, when it has H (whether or not an hw VM runs). */
void hw_init_hart(void)
{
    csr_write(CSR_HEDELEG, HEDELEG_GUEST);
    csr_write(CSR_HIDELEG, HIDELEG_GUEST);
    csr_write(CSR_HCOUNTEREN, 0xffffffffUL);    /* the guest reads time, cycle, instret itself */
    csr_write(CSR_HENVCFG, HENVCFG_STCE_MASK);   /* Sstc for the guest: vstimecmp */
    csr_write(CSR_HVIP, 0);
}

static int hw_init_vm(struct vm *vm)
{
    if (!hyp_hart_has_h) {
        printf("hyp: %s: virt=hw needs a hart with the H extension (use virt=trap)\n", vm->name);
        return -1;
    }
    return gstage_map_vm(vm);
}

#define FS_CLEAN    ((unsigned long)EXTENSION_STATE_CLEAN << SSTATUS_FS_SHIFT)    /* 3.1.6.6 */

static void hw_reset(struct vcpu *vcpu, unsigned long pc, unsigned long a0, unsigned long a1)
{
    memset(&vcpu->regs, 0, sizeof(vcpu->regs));
    memset(&vcpu->vs, 0, sizeof(vcpu->vs));
    vcpu->regs.x[10] = a0;
    vcpu->regs.x[11] = a1;
    vcpu->regs.sepc = pc;
    vcpu->regs.sstatus = SSTATUS_SPP_MASK           /* sret lands in VS-mode ... */
                       | FS_CLEAN;          /* where its F and D may work (vsstatus.FS) */
    vcpu->regs.hstatus = HSTATUS_SPV_MASK           /* ... with V=1 */
                       | HSTATUS_SPVP_MASK
                       | HSTATUS_VTW_MASK           /* wfi exits, so a waiting vCPU yields */
                       | (unsigned long)XLEN_64 << HSTATUS_VSXL_SHIFT;
    vcpu->vs.vstimecmp = ~0UL;                      /* no timer until the guest sets one */
}

/* The end of a non-retentive suspend (SBI 9.4): the vCPU (loaded) starts over at its resume
 * address in VS-mode with a0 = its id, a1 = the opaque value, vsatp = 0 and interrupts off. */
static void hw_resume(struct vcpu *vcpu)
{
    unsigned long hstatus = vcpu->regs.hstatus, fs = vcpu->regs.sstatus & SSTATUS_FS_MASK;
    memset(&vcpu->regs, 0, sizeof(vcpu->regs));
    vcpu->regs.x[10] = vcpu->id;
    vcpu->regs.x[11] = vcpu->resume_opaque;
    vcpu->regs.sepc = vcpu->resume_pc;
    vcpu->regs.sstatus = SSTATUS_SPP_MASK | fs;
    vcpu->regs.hstatus = hstatus;
    csr_write(CSR_VSATP, 0);
    csr_clear(CSR_VSSTATUS, SSTATUS_SIE_MASK);
    vcpu->resume_pending = 0;
}

/*
 * F and D (the VM's harts have them, as the machine's do): with V=1 an FP instruction needs
 * both vsstatus.FS and the HS sstatus.FS on (8.2.1), so an hw vCPU runs with sstatus.FS at
 * least Initial; the hypervisor itself never touches FP, so the registers are switched only
 * when another vCPU takes the hart, and saved only when the guest may have changed them.
 */
#define FP_REGS(op, base) \
    op " f0, 0(" base ")\n" op " f1, 8(" base ")\n" op " f2, 16(" base ")\n" \
    op " f3, 24(" base ")\n" op " f4, 32(" base ")\n" op " f5, 40(" base ")\n" \
    op " f6, 48(" base ")\n" op " f7, 56(" base ")\n" op " f8, 64(" base ")\n" \
    op " f9, 72(" base ")\n" op " f10, 80(" base ")\n" op " f11, 88(" base ")\n" \
    op " f12, 96(" base ")\n" op " f13, 104(" base ")\n" op " f14, 112(" base ")\n" \
    op " f15, 120(" base ")\n" op " f16, 128(" base ")\n" op " f17, 136(" base ")\n" \
    op " f18, 144(" base ")\n" op " f19, 152(" base ")\n" op " f20, 160(" base ")\n" \
    op " f21, 168(" base ")\n" op " f22, 176(" base ")\n" op " f23, 184(" base ")\n" \
    op " f24, 192(" base ")\n" op " f25, 200(" base ")\n" op " f26, 208(" base ")\n" \
    op " f27, 216(" base ")\n" op " f28, 224(" base ")\n" op " f29, 232(" base ")\n" \
    op " f30, 240(" base ")\n" op " f31, 248(" base ")\n"

struct fp_state {
    uint64_t f[32];
    unsigned long fcsr;
};

/* each vCPU's FP registers while another vCPU has the hart (trap.c's and pv.c's too) */
static struct fp_state fp_states[HYP_MAX_VMS][HYP_MAX_VCPUS];

void fp_save(struct vcpu *v)
{
    struct fp_state *fp = &fp_states[v->vm->id][v->id];
    unsigned long fcsr;
    __asm__ __volatile__(".option push\n.option arch, +d\n" FP_REGS("fsd", "%1")
                         "frcsr %0\n.option pop" : "=r"(fcsr) : "r"(fp->f) : "memory");
    fp->fcsr = fcsr;
}

void fp_load(const struct vcpu *v)
{
    const struct fp_state *fp = &fp_states[v->vm->id][v->id];
    __asm__ __volatile__(".option push\n.option arch, +d\n" FP_REGS("fld", "%0")
                         "fscsr %1\n.option pop" :: "r"(fp->f), "r"(fp->fcsr) : "memory");
}

static void hw_save(struct vcpu *v)
{
    struct vs_csrs *vs = &v->vs;
    /* the guest's FP state is Dirty in sstatus.FS (saved at the exit) when it wrote any */
    if ((v->regs.sstatus & SSTATUS_FS_MASK) == SSTATUS_FS_MASK) {
        fp_save(v);
        v->regs.sstatus = (v->regs.sstatus & ~SSTATUS_FS_MASK) | FS_CLEAN;
    }
    vs->vsstatus = csr_read(CSR_VSSTATUS);
    vs->vsie = csr_read(CSR_VSIE);
    vs->vstvec = csr_read(CSR_VSTVEC);
    vs->vsscratch = csr_read(CSR_VSSCRATCH);
    vs->vsepc = csr_read(CSR_VSEPC);
    vs->vscause = csr_read(CSR_VSCAUSE);
    vs->vstval = csr_read(CSR_VSTVAL);
    vs->vsatp = csr_read(CSR_VSATP);
    vs->vstimecmp = csr_read(CSR_VSTIMECMP);
    /* with what other host harts asked for while it ran (hw_enter would have applied it) */
    vs->hvip = (csr_read(CSR_HVIP) | v->hvip_set) & ~v->hvip_clear;
    v->hvip_set = v->hvip_clear = 0;
    vs->scounteren = csr_read(CSR_SCOUNTEREN);
}

static void hw_load(struct vcpu *v)
{
    struct vs_csrs *vs = &v->vs;
    csr_write(CSR_HGATP, v->vm->hgatp);
    smp_load_tlb(v);        /* a vCPU come from another host hart, or a fence missed here */
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
    csr_write(CSR_SCOUNTEREN, vs->scounteren);
    /* sstatus.FS must be on to write the registers; the guest's own FS is in regs.sstatus */
    csr_set(CSR_SSTATUS, SSTATUS_FS_MASK);
    fp_load(v);
}

/* Enter a trap in the guest as its own hart would (4.1.1, 4.1.2): the exception goes to its
 * stvec in VS-mode with vsepc/vscause/vstval set and vsstatus' interrupt stack pushed. */
static void hw_inject_exception(struct vcpu *vcpu, unsigned long cause, unsigned long tval)
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

/* The hvip bits other host harts set or cleared for a vCPU while it ran on this one (they
 * cannot write this hart's hvip): into the CSR, before the guest runs again. */
void hw_apply_remote_hvip(struct vcpu *v)
{
    if (v->hvip_set | v->hvip_clear) {
        csr_set(CSR_HVIP, v->hvip_set);
        csr_clear(CSR_HVIP, v->hvip_clear);
        v->hvip_set = v->hvip_clear = 0;
    }
}

/* A VS-level interrupt pending and enabled (what would end its wfi, even with SIE = 0). */
static int hw_pending_interrupt(struct vcpu *v)
{
    if (v == hyp_loaded) {
        hw_apply_remote_hvip(v);
        return (csr_read(CSR_HIP) & csr_read(CSR_HIE) & VS_INTERRUPTS) != 0;
    }
    /* vsie bit n (SSIE 1, STIE 5, SEIE 9) is hie's VS bit n + 1 (8.2.3) */
    unsigned long enabled = v->vs.vsie << 1;
    unsigned long pending = v->vs.hvip;
    if (read_time() >= v->vs.vstimecmp)
        pending |= MIP_VSTIP_MASK;
    return (pending & enabled & VS_INTERRUPTS) != 0;
}

static unsigned long hw_timer_deadline(struct vcpu *v)
{
    unsigned long vsie = v == hyp_loaded ? csr_read(CSR_VSIE) : v->vs.vsie;
    if (!(vsie << 1 & MIP_VSTIP_MASK))
        return ~0UL;
    return v == hyp_loaded ? csr_read(CSR_VSTIMECMP) : v->vs.vstimecmp;
}

static unsigned long hw_run_deadline(struct vcpu *v)
{
    (void)v;
    return ~0UL;        /* Sstc: the hart raises VSTIP itself */
}

static void hw_set_timer(struct vcpu *vcpu, unsigned long when)
{
    /* Sstc: the guest's timer is vstimecmp; writing it also clears a pending VSTIP */
    (void)vcpu;
    csr_write(CSR_VSTIMECMP, when);
}

static void hw_raise_ssip(struct vcpu *target)
{
    if (target == hyp_loaded) {
        csr_set(CSR_HVIP, MIP_VSSIP_MASK);
    } else if (target->running_on >= 0) {      /* its hvip is another host hart's CSR */
        target->hvip_set |= MIP_VSSIP_MASK;
        target->hvip_clear &= ~MIP_VSSIP_MASK;
    } else {
        target->vs.hvip |= MIP_VSSIP_MASK;
    }
}

static void hw_clear_ssip(struct vcpu *vcpu)
{
    vcpu->hvip_set &= ~MIP_VSSIP_MASK;
    csr_clear(CSR_HVIP, MIP_VSSIP_MASK);
}

static void hw_flush_guest_tlb(struct vcpu *vcpu)
{
    /* the VM's VS-stage on every host hart that runs or ran one of its vCPUs (smp.c) */
    smp_flush_vm_tlb(vcpu->vm);
}

static long hw_guest_load(struct vcpu *vcpu, unsigned long va, int kind)
{
    (void)vcpu;
    return hyp_guest_load(va, kind);
}

__attribute__((noinline)) static void virtual_instruction(struct vcpu *vcpu, unsigned long insn)
{
    struct vm *vm = vcpu->vm;
    vm->stats[HYP_STAT_VIRTUAL_INSTRUCTION]++;
    /* The instruction from the VM's own memory (hlvx at sepc), not stval: QEMU 7.2 can leave
     * an earlier trap's bits there for HLV/HLVX/HSV (D12 of docs/h-extension.md), perhaps
     * another VM's, which the exception injected below would show this VM (or a wfi's bits,
     * which would make the VM skip the instruction).  On a hart that follows the spec the two
     * agree; stval stays the answer if the read faults. */
    uint32_t fetched = vcpu_fetch_insn(vcpu, vcpu->regs.sepc);
    if (fetched)
        insn = fetched;
    int from_vs = (vcpu->regs.sstatus & SSTATUS_SPP_MASK) != 0;
    if (insn == INSN_WFI && from_vs) {
        vm->stats[HYP_STAT_WFI]++;
        vcpu->regs.sepc += 4;
        vcpu_wait(vcpu);
        return;
    }
    /* The VM's harts have no H extension: whatever needed it is an illegal instruction there,
     * and so are wfi and the counters in VU-mode where its own U-mode would trap (3.1.6.5,
     * scounteren: the guest kernel handles those itself, as on its own hart). */
    if ((insn & 0x7f) == 0x73 && ((insn >> 12) & 7) != 0)
        vm->stats[HYP_STAT_CSR]++;
    vm->stats[HYP_STAT_ILLEGAL]++;
    hw_inject_exception(vcpu, CAUSE_ILLEGAL_INSTRUCTION, insn);
}

/*
 * The fast path for the VM's PLIC claim/complete register: per interrupt a driver claims,
 * completes and claims again (to find none), three exits that are most of what an assigned
 * device's interrupt costs the VM.  A 32-bit load or store there is decoded straight from
 * htinst (8.6.3: the transformed instruction keeps the opcode, funct3 and rd or rs2; bit 1
 * tells a 32-bit original from a compressed one) and handed to the virtual PLIC, skipping
 * mmio.c's general decoder and device table.  Anything else (no htinst, another width or
 * register) returns -1 for the general path, which does the same for it.
 */
__attribute__((noinline)) static int plic_claim_complete(struct vcpu *vcpu, unsigned long gpa,
                                                         int is_store)
{
    unsigned long tinst = csr_read(CSR_HTINST);
    uint32_t insn = (uint32_t)tinst | 2;
    unsigned funct3 = (insn >> 12) & 7, reg;
    if (!(tinst & 1) || gpa - PLIC_BASE >= PLIC_SIZE)
        return -1;
    if (is_store ? (insn & 0x7f) != 0x23 || funct3 != 2        /* sw, c.sw */
                 : (insn & 0x7f) != 0x03 || (funct3 & 3) != 2)  /* lw, lwu, c.lw */
        return -1;
    reg = is_store ? (insn >> 20) & 31 : (insn >> 7) & 31;
    unsigned long value = is_store && reg ? vcpu->regs.x[reg] : 0;
    if (vplic_claim_complete(vcpu->vm, gpa - PLIC_BASE, is_store, &value) < 0)
        return -1;
    if (!is_store && reg)
        vcpu->regs.x[reg] = funct3 == 2 ? (unsigned long)(long)(int32_t)value : (uint32_t)value;
    vcpu->regs.sepc += (tinst & 2) ? 4 : 2;
    return 0;
}

__attribute__((noinline)) static void guest_page_fault(struct vcpu *vcpu, unsigned long scause,
                                                       unsigned long gva)
{
    struct vm *vm = vcpu->vm;
    unsigned long gpa = csr_read(CSR_HTVAL) << 2 | (gva & 3);
    if (scause != CAUSE_INSTRUCTION_GUEST_PAGE_FAULT &&
        mmio_emulate(vcpu, gpa, scause == CAUSE_STORE_GUEST_PAGE_FAULT, csr_read(CSR_HTINST)) == 0) {
        vm->stats[HYP_STAT_MMIO]++;
        return;
    }
    /* Nothing at that guest-physical address: the guest sees an access fault (3.7.1), as a
     * hart of its own would for an address with no memory or device behind it. */
    vm->stats[HYP_STAT_INJECTED_FAULTS]++;
    unsigned long cause = scause == CAUSE_INSTRUCTION_GUEST_PAGE_FAULT  ? CAUSE_INSTRUCTION_ACCESS_FAULT
                        : scause == CAUSE_LOAD_GUEST_PAGE_FAULT ? CAUSE_LOAD_ACCESS_FAULT
                                                                : CAUSE_STORE_ACCESS_FAULT;
    hw_inject_exception(vcpu, cause, gva);
}

static void hw_handle_exit(struct vcpu *vcpu, unsigned long scause, unsigned long stval)
{
    struct vm *vm = vcpu->vm;
    /* the claim and completion of each interrupt first, with nothing else set up for them */
    if ((scause == CAUSE_LOAD_GUEST_PAGE_FAULT || scause == CAUSE_STORE_GUEST_PAGE_FAULT) &&
        plic_claim_complete(vcpu, csr_read(CSR_HTVAL) << 2 | (stval & 3),
                            scause == CAUSE_STORE_GUEST_PAGE_FAULT) == 0) {
        vm->stats[HYP_STAT_MMIO]++;
        return;
    }
    switch (scause) {
    case CAUSE_ECALL_FROM_VS:
        vm->stats[HYP_STAT_ECALL]++;
        sbi_dispatch(vcpu);
        break;
    case CAUSE_INSTRUCTION_GUEST_PAGE_FAULT:
    case CAUSE_LOAD_GUEST_PAGE_FAULT:
    case CAUSE_STORE_GUEST_PAGE_FAULT:
        guest_page_fault(vcpu, scause, stval);
        break;
    case CAUSE_VIRTUAL_INSTRUCTION:
        virtual_instruction(vcpu, stval);
        break;
    default:
        /* not delegated and not ours to emulate: stop this VM, not the machine */
        printf("hyp: %s: unexpected exception scause=%lu sepc=0x%lx stval=0x%lx\n",
               vm->name, scause, vcpu->regs.sepc, stval);
        vm_shutdown(vm, 126, "unexpected exception");
    }
}

const struct virt_ops hw_ops = {
    .name = "hw",
    .init_vm = hw_init_vm,
    .reset_vcpu = hw_reset,
    .load = hw_load,
    .save = hw_save,
    .enter = 0,
    .handle_exit = hw_handle_exit,
    .inject_exception = hw_inject_exception,
    .pending_interrupt = hw_pending_interrupt,
    .timer_deadline = hw_timer_deadline,
    .run_deadline = hw_run_deadline,
    .set_timer = hw_set_timer,
    .raise_ssip = hw_raise_ssip,
    .clear_ssip = hw_clear_ssip,
    .flush_guest_tlb = hw_flush_guest_tlb,
    .guest_load = hw_guest_load,
    .resume = hw_resume,
};

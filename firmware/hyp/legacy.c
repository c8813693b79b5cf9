/*
 * legacy.c - the 1.9.1 privileged interface for a trap-mode VM (--guest ...,virt=trap,spec=1.9.1):
 * an S-mode kernel written for privileged spec 1.9.1 runs unmodified on today's hart.
 *
 * Trap mode already runs the guest kernel in U-mode and emulates every privileged instruction
 * and S CSR it executes (trap.c).  For a 1.9.1 guest, trap.c asks this file first (small hooks),
 * and these 1.9.1 differences are emulated (privileged spec 1.9.1, sections named):
 *
 * - sptbr (CSR 0x180, 4.1.11), not satp: ASID in bits 63:38 (16 of its 26 bits implemented,
 *   WARL), PPN in bits 37:0, no MODE field.  The translation scheme is mstatus.VM's (3.1.8), an
 *   M-mode field the kernel cannot write: like the 1.9.1 firmware (BBL), the hypervisor holds it
 *   at Sv39 (VM = 9), so a kernel's sptbr write never turns translation off, whatever its ASID
 *   bits (a write that would set satp.MODE on today's hart).  The shadow tables then see the
 *   equivalent satp: Sv39, the ASID's low 16 bits, the PPN.
 * - The kernel is entered with translation on (VM = Sv39, 3.3's reset value Mbare is the
 *   firmware's to change, and BBL changed it): sptbr names an identity map the hypervisor
 *   builds in the VM's last RAM page (RAM read/write/execute, 0..1 GiB read/write for the
 *   devices, U = 0), which the kernel leaves alone until it installs its own tables.
 * - SFENCE.VM rs1 (4.2.1, funct12 0x104): a fence of every address, or of the page of rs1;
 *   it has no ASID operand.  SFENCE.VMA is not a 1.9.1 instruction: illegal.
 * - sstatus bit 18 is PUM (4.1.2: 1 = S-mode accesses to U pages fault), the inverse of
 *   today's SUM; it is kept as SUM inside and flipped at every read and write.  sstatus has no
 *   MXR (an mstatus bit in 1.9.1) and no UXL: they read 0 and writes are ignored.
 * - Page faults do not exist (Table 4.1): a fault of the kernel's tables is an access fault,
 *   cause 1, 5 or 7, with sbadaddr (CSR 0x143, stval's number) the address.
 * - The S CSRs 1.9.1 lacks (scounteren, senvcfg, stimecmp) are illegal instructions.
 *
 * Not emulated: an S-mode fetch from a U page with PUM = 0 (allowed in 1.9.1, refused here as
 * today), sasid-era or Mbb/Mbbid schemes, the stime/scycle/sinstret CSRs (the kernel reads
 * time through the SBI era's rdtime as today), mstatus.VM values other than Sv39.
 *
 * The CSR fast path in entry.S does not know the flipped PUM bit, so a VM of this spec turns
 * it off (every trap VM's CSR accesses then take the C path).
 */
#include "hyp.h"
#include "rvh/libc.h"

#define PAGE                4096UL
#define SPTBR_PPN_MASK      ((1UL << 38) - 1)
#define SPTBR_ASID_SHIFT    38
#define ASID_BITS_KEPT      0xffffUL
#define LEGACY_SSTATUS_PUM  SSTATUS_SUM_MASK        /* the same bit, the opposite meaning */
#define LEGACY_SSTATUS_BITS (SSTATUS_SD_MASK | SSTATUS_FS_MASK | SSTATUS_XS_MASK | \
                             SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK | SSTATUS_SIE_MASK | \
                             LEGACY_SSTATUS_PUM)
#define INSN_SFENCE_VM      0x10400073U             /* funct12 0x104, rs1 = 0 */
#define INSN_SFENCE_VM_MASK 0xfff07fffU
#define LEGACY_CSR_SPTBR    0x180                   /* satp's number today */

/* the kernel's sptbr as it wrote it (legalized), per vCPU */
static unsigned long sptbr[HYP_MAX_VMS][HYP_MAX_VCPUS];

static unsigned long satp_of(unsigned long value)
{
    unsigned long asid = (value >> SPTBR_ASID_SHIFT) & ASID_BITS_KEPT;
    return (unsigned long)SATP_MODE_SV39 << SATP_MODE_SHIFT | asid << SATP_ASID_SHIFT |
           (value & SPTBR_PPN_MASK);
}

int legacy_init_vm(struct vm *vm)
{
    extern unsigned long hyp_fast_csr;
    hyp_fast_csr = 0;
    if (vm->nvcpus > HYP_MAX_VCPUS || vm->ram_size < 2 * PAGE)
        return -1;
    printf("hyp: %s: privileged spec 1.9.1 (sptbr, sfence.vm, PUM, mstatus.VM = Sv39)\n",
           vm->name);
    return 0;
}

/* After trap mode's reset: translation on, through the firmware's identity map (see above). */
void legacy_reset(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    unsigned long table_gpa = vm->ram_base + vm->ram_size - PAGE;
    unsigned long *table = (unsigned long *)(vm->host_base + vm->ram_size - PAGE);
    unsigned long rwx = PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | PTE_X_MASK | PTE_A_MASK | PTE_D_MASK;
    memset(table, 0, PAGE);
    table[0] = PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | PTE_A_MASK | PTE_D_MASK;  /* devices */
    for (unsigned long gb = vm->ram_base >> 30; gb <= (vm->ram_base + vm->ram_size - 1) >> 30; gb++)
        table[gb & 511] = (gb << 30 >> 12) << PTE_PPN_SHIFT | rwx;
    sptbr[vm->id][vcpu->id] = table_gpa >> 12;
    vcpu->vh.satp = satp_of(table_gpa >> 12);
}

/* A CSR a 1.9.1 hart has in S-mode (the rest are illegal instructions). */
int legacy_csr_exists(unsigned csr)
{
    switch (csr) {
    case CSR_SSTATUS: case CSR_SIE: case CSR_STVEC: case CSR_SSCRATCH: case CSR_SEPC:
    case CSR_SCAUSE: case CSR_STVAL: case CSR_SIP: case LEGACY_CSR_SPTBR:
        return 1;
    default:
        return 0;
    }
}

/* What the kernel reads: trap.c's value of today's CSR, in 1.9.1's terms. */
unsigned long legacy_csr_read(struct vcpu *vcpu, unsigned csr, unsigned long value)
{
    if (csr == LEGACY_CSR_SPTBR)
        return sptbr[vcpu->vm->id][vcpu->id];
    if (csr == CSR_SSTATUS)
        return (value ^ LEGACY_SSTATUS_PUM) & LEGACY_SSTATUS_BITS;
    return value;
}

/* What trap.c writes for a kernel's write: today's CSR and value.  The sptbr write becomes a
 * satp write of the equivalent value (never Bare: mstatus.VM stays Sv39). */
void legacy_csr_write(struct vcpu *vcpu, unsigned *csr, unsigned long *value)
{
    if (*csr == LEGACY_CSR_SPTBR) {
        unsigned long legal = *value & (ASID_BITS_KEPT << SPTBR_ASID_SHIFT | SPTBR_PPN_MASK);
        sptbr[vcpu->vm->id][vcpu->id] = legal;
        *csr = CSR_SATP;
        *value = satp_of(legal);
    } else if (*csr == CSR_SSTATUS) {
        unsigned long keep = vcpu->vh.sstatus & SSTATUS_MXR_MASK;   /* not the kernel's to set */
        *value = ((*value & LEGACY_SSTATUS_BITS) ^ LEGACY_SSTATUS_PUM) | keep;
    }
}

/* A privileged instruction of the kernel that 1.9.1 defines differently: 1 when dealt with
 * here (emulated, or forwarded as illegal), 0 for trap.c's own emulation. */
int legacy_instruction(struct vcpu *vcpu, uint32_t insn)
{
    if ((insn & INSN_SFENCE_VM_MASK) == INSN_SFENCE_VM) {
        unsigned rs1 = (insn >> 15) & 31;
        trap_sfence_vma(vcpu, rs1 ? vcpu->regs.x[rs1] : 0, rs1 != 0, 0, 0);
        vcpu->regs.sepc += 4;
        return 1;
    }
    if ((insn & 0xfe007fff) == 0x12000073) {            /* sfence.vma: not in 1.9.1 */
        vcpu->vm->stats[HYP_STAT_ILLEGAL]++;
        vcpu->vm->ops->inject_exception(vcpu, CAUSE_ILLEGAL_INSTRUCTION, insn);
        return 1;
    }
    return 0;
}

/* The cause a 1.9.1 hart reports (Table 4.1: no page faults; they are access faults). */
unsigned long legacy_cause(unsigned long cause)
{
    switch (cause) {
    case CAUSE_INSTRUCTION_PAGE_FAULT: return CAUSE_INSTRUCTION_ACCESS_FAULT;
    case CAUSE_LOAD_PAGE_FAULT: return CAUSE_LOAD_ACCESS_FAULT;
    case CAUSE_STORE_PAGE_FAULT: return CAUSE_STORE_ACCESS_FAULT;
    default: return cause;
    }
}

/*
 * pv.h - the S-mode guests' paravirtual layer: their privileged operations, written once, as
 * rvh's pv extension calls in a pv build and as the real instructions otherwise.
 *
 * A native build (no RVH_PV) uses rvh/csr.h's csr_* macros, sfence_vma_*, wfi and plain PTE
 * stores unchanged: this header then adds nothing.  A pv build (-DRVH_PV, guests/build/smode-pv)
 * is the same sources recompiled: rvh_pv_init (called by smode.c's rvh_sinit and, on other
 * harts, by sstart.S) probes the BASE extension for SBI_EXT_RVH_PV and, when the hypervisor
 * offers it, registers one shared page per hart.  From then on:
 *
 *   - csr_read/write/set/clear/swap of sstatus, sie, sip, stvec, sscratch, sepc, scause,
 *     stval are loads and stores in the page (no trap); a change of sstatus.SIE/SUM/MXR, sie or
 *     sip that the hypervisor must act on is followed by a SYNC call; satp writes are SET_SATP,
 *   - sfence.vma is SFENCE_VMA, wfi is WFI,
 *   - PTE stores (firmware/common/pt.c's pte_store) are plain stores also queued for one
 *     MMU_UPDATE call, made after the next fence (or when 64 are queued), which lets the
 *     hypervisor enter them in its shadow table without a fault each,
 *   - traps arrive at rvh_pv_strap_entry (strap.S) with scause etc. in the page, and the trap
 *     return and rvh_enter_user are SYNC_AND_RETURN calls instead of sret.
 *
 * Every other CSR (scounteren, stimecmp, counters...) stays an instruction that traps and is
 * emulated: a pv VM is a trap-mode VM with the extension available.  When the extension is
 * absent (native, or a hypervisor without it), a pv build runs the real instructions.
 * The ABI is in docs/hypervisor.md; its numbers come from rvh/isa/sbi.py.
 */
#ifndef RVH_GUEST_PV_H
#define RVH_GUEST_PV_H

#include "rvh/encoding.h"

#define RVH_PV_PAGE_SIZE 4096

#ifndef __ASSEMBLER__

#include <stdint.h>
#include "rvh/csr.h"
#include "rvh/pt.h"
#include "rvh/start.h"

/* nonzero once the boot hart registered its page: every hart then uses the pv calls */
extern volatile int rvh_pv_on;
/* one shared page per hart, indexed by hartid (tp) */
extern uint8_t rvh_pv_pages[RVH_MAX_HARTS][RVH_PV_PAGE_SIZE];

/* probe for the extension (boot hart) and register this hart's page; 1 when pv is on */
int rvh_pv_init(unsigned long hartid);

static inline volatile unsigned long *rvh_pv_word(unsigned offset)
{
    unsigned long hart;
    __asm__ __volatile__("mv %0, tp" : "=r"(hart));
    return (volatile unsigned long *)(rvh_pv_pages[hart] + offset);
}

enum rvh_pv_op { RVH_PV_OP_READ, RVH_PV_OP_WRITE, RVH_PV_OP_SET, RVH_PV_OP_CLEAR };

/* sstatus, sie, sip and satp writes: the page and then a call when needed (pv.c); the old value */
unsigned long rvh_pv_csr_special(unsigned offset, enum rvh_pv_op op, unsigned long value);

/* one access to a virtual CSR in the page; returns its old value */
static inline unsigned long rvh_pv_csr(unsigned offset, enum rvh_pv_op op, unsigned long value)
{
    volatile unsigned long *w = rvh_pv_word(offset);
    if (op == RVH_PV_OP_READ)
        return *w;
    if (offset == RVH_PV_SSTATUS || offset == RVH_PV_SIE || offset == RVH_PV_SIP ||
        offset == RVH_PV_SATP)
        return rvh_pv_csr_special(offset, op, value);
    unsigned long old = *w;
    *w = op == RVH_PV_OP_WRITE ? value : op == RVH_PV_OP_SET ? old | value : old & ~value;
    return old;
}

void rvh_pv_sfence_vma(unsigned long va, int all_addresses);
void rvh_pv_wfi(void);
/* the queued PTE updates, as one MMU_UPDATE call (after a fence) */
void rvh_pv_mmu_flush(void);

#ifdef RVH_PV
/*
 * The CSRs with a word in the page, by the name (or CSR_ number) the guests give csr_*: each
 * RVH_PV_SLOT_<csr> expands to "~, <offset>", anything else to nothing, so RVH_PV_OFFSET(csr)
 * is the offset or -1 at compile time.
 */
#define RVH_PV_SLOT_sstatus     ~, RVH_PV_SSTATUS
#define RVH_PV_SLOT_sie         ~, RVH_PV_SIE
#define RVH_PV_SLOT_sip         ~, RVH_PV_SIP
#define RVH_PV_SLOT_stvec       ~, RVH_PV_STVEC
#define RVH_PV_SLOT_sscratch    ~, RVH_PV_SSCRATCH
#define RVH_PV_SLOT_sepc        ~, RVH_PV_SEPC
#define RVH_PV_SLOT_scause      ~, RVH_PV_SCAUSE
#define RVH_PV_SLOT_stval       ~, RVH_PV_STVAL
#define RVH_PV_SLOT_satp        ~, RVH_PV_SATP
#define RVH_PV_SLOT_CSR_SSTATUS ~, RVH_PV_SSTATUS
#define RVH_PV_SLOT_CSR_SIE     ~, RVH_PV_SIE
#define RVH_PV_SLOT_CSR_SIP     ~, RVH_PV_SIP
#define RVH_PV_SLOT_CSR_STVEC   ~, RVH_PV_STVEC
#define RVH_PV_SLOT_CSR_SSCRATCH ~, RVH_PV_SSCRATCH
#define RVH_PV_SLOT_CSR_SEPC    ~, RVH_PV_SEPC
#define RVH_PV_SLOT_CSR_SCAUSE  ~, RVH_PV_SCAUSE
#define RVH_PV_SLOT_CSR_STVAL   ~, RVH_PV_STVAL
#define RVH_PV_SLOT_CSR_SATP    ~, RVH_PV_SATP
#define RVH_PV_SECOND_(a, b, ...) b
#define RVH_PV_SECOND(...)      RVH_PV_SECOND_(__VA_ARGS__)
#define RVH_PV_OFFSET(csr)      RVH_PV_SECOND(RVH_PV_SLOT_##csr, -1, ~)

#define RVH_PV_CSR_OR_NATIVE(csr, op, value, native)                             \
    ((RVH_PV_OFFSET(csr) >= 0 && rvh_pv_on)                                     \
         ? rvh_pv_csr((unsigned)RVH_PV_OFFSET(csr), (op), (unsigned long)(value)) \
         : (native))

#define RVH_NATIVE_CSR_RW(insn, csr, value) ({                                  \
    unsigned long __n = (unsigned long)(value);                                 \
    __asm__ __volatile__(insn " %0, " RVH_STRINGIFY(csr) ", %0"                 \
                         : "+r"(__n) :: "memory");                              \
    __n; })

#undef csr_read
#undef csr_write
#undef csr_swap
#undef csr_set
#undef csr_clear
#undef csr_read_set
#undef csr_read_clear
#define csr_read(csr)                                                           \
    RVH_PV_CSR_OR_NATIVE(csr, RVH_PV_OP_READ, 0, ({                             \
        unsigned long __r;                                                      \
        __asm__ __volatile__("csrr %0, " RVH_STRINGIFY(csr) : "=r"(__r) :: "memory"); \
        __r; }))
#define csr_swap(csr, val)                                                      \
    RVH_PV_CSR_OR_NATIVE(csr, RVH_PV_OP_WRITE, val, RVH_NATIVE_CSR_RW("csrrw", csr, val))
#define csr_read_set(csr, val)                                                  \
    RVH_PV_CSR_OR_NATIVE(csr, RVH_PV_OP_SET, val, RVH_NATIVE_CSR_RW("csrrs", csr, val))
#define csr_read_clear(csr, val)                                                \
    RVH_PV_CSR_OR_NATIVE(csr, RVH_PV_OP_CLEAR, val, RVH_NATIVE_CSR_RW("csrrc", csr, val))
/* csrw, csrs, csrc: the same instructions as rvh/csr.h's (no destination register) */
#define RVH_NATIVE_CSR_W(insn, csr, value) ({                                   \
    unsigned long __n = (unsigned long)(value);                                 \
    __asm__ __volatile__(insn " " RVH_STRINGIFY(csr) ", %0" :: "r"(__n) : "memory"); \
    0UL; })
#define csr_write(csr, val)                                                     \
    ((void)RVH_PV_CSR_OR_NATIVE(csr, RVH_PV_OP_WRITE, val, RVH_NATIVE_CSR_W("csrw", csr, val)))
#define csr_set(csr, val)                                                       \
    ((void)RVH_PV_CSR_OR_NATIVE(csr, RVH_PV_OP_SET, val, RVH_NATIVE_CSR_W("csrs", csr, val)))
#define csr_clear(csr, val)                                                     \
    ((void)RVH_PV_CSR_OR_NATIVE(csr, RVH_PV_OP_CLEAR, val, RVH_NATIVE_CSR_W("csrc", csr, val)))

/* the functions of rvh/csr.h become the layer's */
#define sfence_vma_all()        (rvh_pv_on ? rvh_pv_sfence_vma(0, 1) : sfence_vma_all())
#define sfence_vma_va(va)       (rvh_pv_on ? rvh_pv_sfence_vma((va), 0) : sfence_vma_va(va))
#define wfi()                   (rvh_pv_on ? rvh_pv_wfi() : wfi())
#endif /* RVH_PV */

#endif /* __ASSEMBLER__ */
#endif /* RVH_GUEST_PV_H */

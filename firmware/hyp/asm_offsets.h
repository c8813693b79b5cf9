/*
 * asm_offsets.h - the structure offsets entry.S's trap-mode CSR fast path uses.  trap.c checks
 * each against offsetof() at compile time, so a change to struct vcpu or struct vm that moves
 * one breaks the build rather than the guest.
 */
#ifndef HYP_ASM_OFFSETS_H
#define HYP_ASM_OFFSETS_H

/* each host hart's area (hyp.h): struct hyp_hart at the bottom, its stack below the top */
#define HYP_HART_AREA_SHIFT 16
#define HYP_HART_AREA       (1 << HYP_HART_AREA_SHIFT)
#define VCPU_VH_PRIV        376     /* offsetof(struct vcpu, vh.priv) */
#define VCPU_VH_SSTATUS     384     /* offsetof(struct vcpu, vh.sstatus) */
#define VCPU_VH_SSCRATCH    416     /* offsetof(struct vcpu, vh.sscratch): sepc, scause, stval follow */
#define VCPU_VM             600     /* offsetof(struct vcpu, vm) */
#define VM_STATS            5808    /* offsetof(struct vm, stats) */
#define VCPU_VH_PV_PAGE     488     /* offsetof(struct vcpu, vh.pv_page): pv.c checks it */
/* pv mode's fast paths (entry.S: SYNC_AND_RETURN, a U ecall forwarded): pv.c checks these */
#define VCPU_VH_SIP             400
#define VCPU_VH_SATP            448
#define VCPU_VH_STIMECMP        456
#define VCPU_VH_SCOUNTEREN      464
#define VCPU_VH_TRAPS_ENTERED   480
#define VCPU_VH_PV_PAGE_VA      496
#define VCPU_VH_PV_TRAPS_SEEN   512
#define VCPU_VH_LAST_REAL_SATP  528
#define VCPU_VH_LAST_DEADLINE   536
#define VCPU_VH_LAST_CTX        552
#define VCPU_VH_CTX_REAL_SATP   560
#define VCPU_VH_CTX_GUEST_SATP  584
#define VCPU_VH_CTX_GENERATION  592
#define VM_SHADOW_GENERATION    88
#define TRAP_CSR_SSCRATCH_SLOT 5    /* sscratch's place in rvh/hyp.py TRAP_CSRS */
#define TRAP_CSR_SSTATUS_SLOT  0    /* sstatus' */
/* what a write of sstatus keeps (trap.c SSTATUS_WRITABLE): SIE, SPIE, SPP, FS, SUM, MXR */
#define TRAP_SSTATUS_WRITABLE_BITS  0xc6122

#endif

/*
 * entry.S - start-up, the trap entry from a guest and the return into one.
 *
 * While a guest runs, sscratch holds its vcpu (struct vcpu_regs first), and the vcpu's x[0]
 * slot holds the hypervisor stack pointer to handle its exit on: the top of the area of the
 * host hart that entered it (hyp.h HYP_HART_AREA; the hart's struct hyp_hart is at the bottom,
 * so C finds its hart from sp).  While the hypervisor runs, sscratch is 0: a trap that finds 0
 * there came from the hypervisor itself (a fault recovered through hyp_fixup, or a bug).
 */
#define REG(n)      ((n) * 8)
#define REG_SEPC    (32 * 8)
#define REG_SSTATUS (33 * 8)
#define REG_HSTATUS (34 * 8)
#define REG_SATP    (35 * 8)

#include "rvh/encoding.h"
#include "asm_offsets.h"
#include "rvh/hyp_stats.h"
/* the hypervisor's image seen at a second address in every shadow page table (hyp.h) */
#define ALIAS       0x400000000000

/* The guest registers in their vCPU slots (struct vcpu_regs): every one the trap path saves
 * and the entry loads, and the two sets the fast paths spill to work in (t5 and t6 apart:
 * t6 holds the vCPU, t5 is spilled first, on its own) */
#define GPRS_1_TO_30    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, \
                        21, 22, 23, 24, 25, 26, 27, 28, 29, 30
#define FAST_CSR_TEMPS  6, 7, 28, 29                /* t1-t4: trap mode's CSR fast path */
#define PV_FAST_TEMPS   5, 10, 11, 12, 13, 14, 15   /* t0, a0-a5: pv's fast paths, on top */

    /* sd (ld) x<n> to (from) its slot in the vCPU at \base, for each n in order */
    .macro SAVE_REGS base:req, numbers:vararg
    .irp n, \numbers
    sd      x\n, REG(\n)(\base)
    .endr
    .endm
    .macro LOAD_REGS base:req, numbers:vararg
    .irp n, \numbers
    ld      x\n, REG(\n)(\base)
    .endr
    .endm

    /* The guest's whole state at a trap, into the vCPU at t6 (sscratch holds the guest's t6,
     * t5 is free): x1-x30, t6 from sscratch (0 from now on: the hypervisor runs), sepc,
     * sstatus */
    .macro SAVE_GUEST_TRAP_STATE
    SAVE_REGS t6, GPRS_1_TO_30
    csrrw   t5, sscratch, zero  /* the guest's t6; the hypervisor runs with sscratch = 0 */
    sd      t5, REG(31)(t6)
    csrr    t5, sepc
    sd      t5, REG_SEPC(t6)
    csrr    t5, sstatus
    sd      t5, REG_SSTATUS(t6)
    .endm

    /* x1-x31 from the vCPU at t6 (t6 itself last) and into the guest */
    .macro LOAD_GUEST_REGS_AND_SRET
    LOAD_REGS t6, GPRS_1_TO_30, 31
    sret
    .endm

    /* one more in the 64-bit counter \index of the stats at \base (\tmp is clobbered) */
    .macro COUNT_STAT tmp:req, base:req, index:req
    ld      \tmp, 8 * (\index)(\base)
    addi    \tmp, \tmp, 1
    sd      \tmp, 8 * (\index)(\base)
    .endm

    /* \out = sstatus \in as the guest reads it: UXL = 2 (64-bit U-mode), SD when FS is
     * Dirty (3.1.6.6); \tmp is clobbered, \in kept (\out is another register) */
    .macro SSTATUS_AS_READ out:req, in:req, tmp:req
    li      \out, 2
    slli    \out, \out, 32            /* UXL = 2 */
    or      \out, \in, \out
    srli    \tmp, \in, 13
    andi    \tmp, \tmp, 3
    addi    \tmp, \tmp, -3
    bnez    \tmp, 9f
    li      \tmp, -1
    slli    \tmp, \tmp, 63
    or      \out, \out, \tmp         /* SD */
9:
    .endm

    .section .text.start, "ax", @progbits
    .globl _start
_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    /* one boot hart: the first to arrive; the others return to the firmware (HSM stop) */
    la      t0, hyp_boot_lottery
    li      t1, 1
    amoswap.w.aqrl t1, t1, (t0)
    bnez    t1, .Lpark
    la      sp, __harts_start       /* area 0: the boot hart's */
    li      t0, HYP_HART_AREA
    add     sp, sp, t0
    csrw    sscratch, zero
    la      t0, hyp_trap_entry
    csrw    stvec, t0
    csrw    sie, zero
    la      t0, __bss_start
    la      t1, __bss_end
1:  bgeu    t0, t1, 2f
    sd      zero, 0(t0)
    addi    t0, t0, 8
    j       1b
2:  call    hyp_main            /* a0 = hartid, a1 = dtb */
    j       .

    /* Another host hart, started by smp.c through the firmware's HSM hart_start: a0 = its
     * hartid, a1 = its area (struct hyp_hart at the bottom, the stack below the top). */
    .globl hyp_secondary_start
hyp_secondary_start:
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    li      t0, HYP_HART_AREA
    add     sp, a1, t0
    csrw    sscratch, zero
    la      t0, hyp_trap_entry
    csrw    stvec, t0
    csrw    sie, zero
    call    hyp_secondary_main  /* a0 = hartid, a1 = the area */
    j       .
.Lpark:
    li      a7, 0x48534D        /* HSM hart_stop */
    li      a6, 1
    ecall
3:  wfi
    j       3b

    .text
    .balign 4
    .globl hyp_trap_entry
hyp_trap_entry:
    csrrw   t6, sscratch, t6
    beqz    t6, .Lfrom_hypervisor
    SAVE_GUEST_TRAP_STATE
    la      t5, hyp_hart_has_h  /* hstatus exists only with H (trap VMs run without it) */
    ld      t5, 0(t5)
    beqz    t5, 1f
    csrr    t5, hstatus
    sd      t5, REG_HSTATUS(t6)
1:  ld      sp, REG(0)(t6)
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    mv      a0, t6
    call    hyp_handle_exit     /* does not return: it re-enters a guest */
    j       .

    /* A trap taken in HS-mode by the hypervisor's own code (sscratch was 0, t6 now is). */
.Lfrom_hypervisor:
    csrrw   t6, sscratch, t6    /* t6 back, sscratch 0 again */
    csrw    sscratch, t5        /* borrow sscratch to free t5 */
    la      t5, hyp_fixup
    ld      t5, 0(t5)
    beqz    t5, .Lpanic
    csrw    sepc, t5            /* an expected fault (a guest access by HLV/HLVX): resume there */
    la      t5, hyp_fixup
    sd      zero, 0(t5)
    csrrw   t5, sscratch, zero
    sret
.Lpanic:
    csrrw   t5, sscratch, zero
    csrr    a0, scause
    csrr    a1, sepc
    csrr    a2, stval
    call    hyp_fault
    j       .

    /* hyp_enter_guest(vcpu): load the guest's registers and sret into it (an hw vCPU's hstatus
     * has SPV = 1: VS-mode; a trap vCPU's has SPV = 0 and SPP is 0: U-mode) */
    .globl hyp_enter_guest
hyp_enter_guest:
    mv      t6, a0
    addi    t0, sp, -1          /* (sp may be the very top when nothing is on the stack) */
    srli    t0, t0, HYP_HART_AREA_SHIFT
    addi    t0, t0, 1
    slli    t0, t0, HYP_HART_AREA_SHIFT /* the top of this hart's area: its exits' stack */
    sd      t0, REG(0)(t6)
    ld      t0, REG_SEPC(t6)
    csrw    sepc, t0
    ld      t0, REG_SSTATUS(t6)
    csrw    sstatus, t0
    la      t0, hyp_hart_has_h
    ld      t0, 0(t0)
    beqz    t0, 1f
    ld      t0, REG_HSTATUS(t6)
    csrw    hstatus, t0
1:  ld      t0, REG_SATP(t6)
    bnez    t0, .Lenter_shadow
    csrw    sscratch, t6
    LOAD_GUEST_REGS_AND_SRET

    /*
     * A trap-mode guest runs in U-mode under a shadow page table (real satp), which maps
     * nothing of the hypervisor at its own addresses: the guest's pages may be anywhere.  Every
     * shadow table and the hypervisor's own table map the hypervisor's image a second time at
     * ALIAS + its address (not a canonical Sv39 address, a slot the guest is refused in Sv48;
     * U = 0, so the guest cannot touch it).  The switch between the two tables happens in code
     * running at that alias, where both tables agree; sscratch holds the vCPU's alias address
     * while such a guest runs.  The tables have different ASIDs, so no fence is needed.
     */
.Lenter_shadow:
    la      t0, hyp_shadow_trap_entry
    li      t1, ALIAS
    add     t0, t0, t1
    csrw    stvec, t0
    add     t6, t6, t1          /* the vCPU at its alias */
    csrw    sscratch, t6
    la      t0, 2f
    add     t0, t0, t1
    jr      t0
2:  ld      t0, REG_SATP(t6)    /* (running at the alias) */
    csrw    satp, t0
    LOAD_GUEST_REGS_AND_SRET

    /* stvec (at its alias) while a trap-mode guest runs.  First the fast path: a csrrw/csrrs/
     * csrrc of sscratch, sepc, scause, stval or (most of the time) sstatus by the guest kernel
     * (its trap handlers' daily bread) is done here, on five spilled registers, counted as the C path would count it.
     * Anything else: save every register into the vCPU (at its alias, from sscratch), switch
     * to the hypervisor's table, continue at the real addresses with the common exit path. */
    .balign 4
    .globl hyp_shadow_trap_entry
hyp_shadow_trap_entry:
    csrrw   t6, sscratch, t6
    sd      t5, REG(30)(t6)
    csrr    t5, scause
    addi    t5, t5, -2                  /* illegal instruction? */
    bnez    t5, .Lnot_illegal
    SAVE_REGS t6, FAST_CSR_TEMPS
    lw      t5, VCPU_VH_PRIV(t6)
    beqz    t5, .Lfull                  /* from the guest's U-mode: forwarded, in C */
    ld      t5, VCPU_VH_PV_PAGE(t6)
    bnez    t5, .Lfull                  /* a pv vCPU's CSRs are in its shared page (pv.c) */
    la      t5, hyp_fast_csr
    ld      t5, 0(t5)
    beqz    t5, .Lfull
    csrr    t3, stval                   /* the instruction */
    andi    t5, t3, 0x7f
    li      t4, 0x73
    bne     t5, t4, .Lfull
    srli    t1, t3, 12
    andi    t1, t1, 7                   /* funct3: 1 csrrw, 2 csrrs, 3 csrrc */
    addi    t5, t1, -1
    sltiu   t5, t5, 3
    beqz    t5, .Lfull
    srli    t4, t3, 20
    addi    t4, t4, -0x140              /* sscratch 0, sepc 1, scause 2, stval 3 */
    sltiu   t5, t4, 4
    bnez    t5, 2f
    addi    t4, t4, 0x140 - 0x100       /* sstatus: its field is 32 bytes before sscratch's */
    bnez    t4, .Lfull
    li      t4, (VCPU_VH_SSTATUS - VCPU_VH_SSCRATCH) / 8
2:  slli    t4, t4, 3
    add     t4, t4, t6                  /* the field is at VCPU_VH_SSCRATCH(t4) */
    srli    t5, t3, 15
    andi    t5, t5, 31                  /* rs1 */
    slli    t5, t5, 3
    la      t2, .Lget_rs1
    add     t2, t2, t5
    jr      t2                          /* t5 = x[rs1] */
.Lgot_rs1:
    ld      t2, VCPU_VH_SSCRATCH(t4)    /* the old value */
    addi    t1, t1, -1
    beqz    t1, .Lwrite                 /* csrrw */
    addi    t1, t1, -1
    bnez    t1, .Lclear
    or      t5, t2, t5                  /* csrrs (rs1 = x0 sets nothing: the same value back) */
    j       .Lwrite
.Lclear:
    not     t5, t5
    and     t5, t2, t5                  /* csrrc */
.Lwrite:
    sub     t1, t4, t6
    addi    t1, t1, VCPU_VH_SSCRATCH - VCPU_VH_SSTATUS
    beqz    t1, .Lsstatus
    addi    t1, t1, -(VCPU_VH_SSCRATCH - VCPU_VH_SSTATUS) - 8
    bnez    t1, 1f
    andi    t5, t5, -2                  /* sepc: bit 0 is always 0 (IALIGN 16) */
1:  sd      t5, VCPU_VH_SSCRATCH(t4)
    srli    t5, t3, 7
    andi    t5, t5, 31                  /* rd */
    slli    t5, t5, 3
    la      t1, .Lput_rd
    add     t1, t1, t5
    jr      t1                          /* x[rd] = old */
.Lput_done:
    srli    t4, t3, 20                  /* the CSR's place in TRAP_CSRS: sstatus 0, sscratch.. 5.. */
    addi    t4, t4, TRAP_CSR_SSCRATCH_SLOT - 0x140
    bgez    t4, 1f
    li      t4, TRAP_CSR_SSTATUS_SLOT
1:  slli    t4, t4, 3
    ld      t5, VCPU_VM(t6)
    li      t1, ALIAS
    add     t5, t5, t1
    li      t3, VM_STATS
    add     t5, t5, t3
    ld      t5, 0(t5)
    add     t5, t5, t1                  /* the VM's stats, at their alias */
    COUNT_STAT t3, t5, HYP_STAT_EXITS
    COUNT_STAT t3, t5, HYP_STAT_SCAUSE+2
    COUNT_STAT t3, t5, HYP_STAT_CSR
    add     t4, t4, t5
    COUNT_STAT t3, t4, HYP_STAT_CSR_BY_NUMBER
    csrr    t5, sepc
    addi    t5, t5, 4
    csrw    sepc, t5
    LOAD_REGS t6, FAST_CSR_TEMPS, 30
    csrrw   t6, sscratch, t6
    sret

    /* sstatus (t2 = old, t5 = new): WARL as in trap.c; a write that turns SIE on (an interrupt
     * may become deliverable), or changes SUM or MXR (the shadow root or its permissions), goes
     * to the C path instead, as does any access while the real FS is Dirty (trap.c fp_fold
     * makes the virtual FS Dirty).  The real FS follows the new virtual one: Off, or Clean.
     * rd gets the value as read: UXL = 64, SD when FS is dirty. */
.Lsstatus:
    li      t1, TRAP_SSTATUS_WRITABLE_BITS
    and     t5, t5, t1
    xor     t1, t2, t5
    srli    t1, t1, 18                  /* SUM (18), MXR (19) */
    andi    t1, t1, 3
    bnez    t1, .Lfull
    not     t1, t2
    and     t1, t1, t5
    andi    t1, t1, 2                   /* SIE off -> on */
    bnez    t1, .Lfull
    csrr    t1, sstatus
    srli    t1, t1, SSTATUS_FS_SHIFT
    andi    t1, t1, 3
    addi    t1, t1, -EXTENSION_STATE_DIRTY
    beqz    t1, .Lfull
    li      t1, SSTATUS_FS_MASK
    csrc    sstatus, t1
    srli    t1, t5, SSTATUS_FS_SHIFT
    andi    t1, t1, 3
    beqz    t1, 5f
    li      t1, EXTENSION_STATE_CLEAN << SSTATUS_FS_SHIFT
    csrs    sstatus, t1
5:  sd      t5, VCPU_VH_SSCRATCH(t4)
    SSTATUS_AS_READ t5, t2, t1
    mv      t2, t5
    srli    t5, t3, 7
    andi    t5, t5, 31                  /* rd */
    slli    t5, t5, 3
    la      t1, .Lput_rd
    add     t1, t1, t5
    jr      t1

    /*
     * pv mode's fast paths: a vCPU with a shared page (pv.c) whose guest makes an ecall, either
     * SYNC_AND_RETURN from its virtual S-mode (sret on the page's sepc and sstatus) or a system
     * call from its U-mode (forwarded to its kernel: the trap entered on the page, the pv ABI's
     * t0 hand-over).  Each does here what the C path (hyp_handle_exit, other_exit, pv_sbi_call or
     * forward, pv_enter) would, on twelve spilled registers and with the same counts, when the
     * re-entry needs nothing of the C path: the new context's shadow root is in the vCPU's
     * per-context cache (trap.c current_satp), no interrupt is pending and enabled, and the host
     * timer's deadline stays what pv_run_deadline last armed.  Otherwise: the C path, from the
     * start.  The page is guest RAM, which only the hypervisor's own table maps (identity): the
     * code runs at the alias, under that table, until the return.
     */
.Lnot_illegal:
    addi    t5, t5, -(CAUSE_ECALL_FROM_U - 2)
    bnez    t5, .Lfull_t5
    ld      t5, VCPU_VH_PV_PAGE(t6)
    beqz    t5, .Lfull_t5
    SAVE_REGS t6, FAST_CSR_TEMPS, PV_FAST_TEMPS
    la      t5, hyp_root_satp           /* (its alias) */
    ld      t5, 0(t5)
    csrw    satp, t5
    ld      a0, VCPU_VH_PV_PAGE(t6)     /* a0 = the page (host address) */
    ld      t1, RVH_PV_SSTATUS(a0)
    li      t2, TRAP_SSTATUS_WRITABLE_BITS
    and     t1, t1, t2                  /* t1 = its sstatus, legalized as pv_take_page does */
    lw      t5, VCPU_VH_PRIV(t6)
    beqz    t5, .Lpv_forward
    li      t4, SBI_EXT_RVH_PV
    bne     a7, t4, .Lpv_full
    li      t4, SBI_RVH_PV_SYNC_AND_RETURN
    bne     a6, t4, .Lpv_full
    /* SYNC_AND_RETURN (pv.c sync_and_return, 3.3.2): priv = SPP, SIE = SPIE, SPIE = 1, SPP = 0 */
    srli    a1, t1, 8
    andi    a1, a1, 1                   /* a1 = the new privilege (VPRIV_U 0, VPRIV_S 1) */
    andi    t2, t1, SSTATUS_SPIE_MASK
    srli    t2, t2, 4                   /* SPIE -> SIE */
    andi    t1, t1, -0x103              /* ~(SPP | SIE) */
    or      t1, t1, t2
    ori     t1, t1, SSTATUS_SPIE_MASK
    ld      a3, RVH_PV_SEPC(a0)
    andi    a3, a3, -2                  /* a3 = the pc it returns to (IALIGN 16) */
    li      a4, 0                       /* a4 = 0: SYNC_AND_RETURN */
    j       .Lpv_check
.Lpv_forward:
    /* an ecall from its U-mode: the trap its hart would take (trap.c enter_trap, 4.1.1):
     * SPP = 0, SPIE = SIE, SIE = 0, the virtual privilege S, the pc at stvec's base */
    andi    t2, t1, SSTATUS_SIE_MASK
    slli    t2, t2, 4                   /* SIE -> SPIE */
    andi    t1, t1, -0x123              /* ~(SPP | SPIE | SIE) */
    or      t1, t1, t2
    li      a1, 1
    ld      a3, RVH_PV_STVEC(a0)
    andi    a3, a3, -4                  /* the vector's base: an exception */
    li      a4, 1                       /* a4 = 1: forwarded */
.Lpv_check:
    /* a0 page, a1 privilege, t1 sstatus, a3 pc, a4 which: a2 = the context (U 0, S 1, S+SUM 2).
     * The real FS Dirty: the C path makes the page's FS Dirty (trap.c fp_fold) */
    csrr    t2, sstatus
    srli    t2, t2, SSTATUS_FS_SHIFT
    andi    t2, t2, 3
    addi    t2, t2, -EXTENSION_STATE_DIRTY
    beqz    t2, .Lpv_full
    li      a2, 0
    beqz    a1, 1f
    srli    a2, t1, SSTATUS_SUM_SHIFT
    andi    a2, a2, 1
    addi    a2, a2, 1
1:  ld      t2, VCPU_VH_CTX_GUEST_SATP(t6)
    ld      t3, VCPU_VH_SATP(t6)
    bne     t2, t3, .Lpv_full
    ld      t2, VCPU_VM(t6)
    ld      t2, VM_SHADOW_GENERATION(t2)
    ld      t3, VCPU_VH_CTX_GENERATION(t6)
    bne     t2, t3, .Lpv_full
    slli    t2, a2, 3
    add     t2, t2, t6
    ld      a5, VCPU_VH_CTX_REAL_SATP(t2)   /* a5 = the real satp for the context */
    beqz    a5, .Lpv_full
    /* pending: the page's SSIP, the vhart's SEIP, STIP from stimecmp (pv_push) */
    ld      t2, RVH_PV_SIP(a0)
    andi    t2, t2, MIP_SSIP_MASK
    ld      t3, VCPU_VH_SIP(t6)
    andi    t3, t3, MIP_SEIP_MASK
    or      t2, t2, t3
    rdtime  t3
    ld      t4, VCPU_VH_STIMECMP(t6)
    bltu    t3, t4, 1f
    ori     t2, t2, MIP_STIP_MASK
1:  ld      t5, RVH_PV_SIE(a0)
    andi    t5, t5, 0x222               /* SSIE, STIE, SEIE */
    and     t0, t5, t2
    bnez    t0, .Lpv_full               /* one is pending and enabled: the C path delivers it */
    /* the deadline pv_run_deadline would arm: none without STIE; stimecmp when the guest can
     * take it now (U-mode, or SIE) or it is still ahead */
    li      t0, -1
    andi    t5, t5, MIP_STIP_MASK
    beqz    t5, 2f
    mv      t0, t4
    beqz    a1, 2f
    andi    t5, t1, SSTATUS_SIE_MASK
    bnez    t5, 2f
    bltu    t3, t4, 2f
    li      t0, -1
2:  ld      t5, VCPU_VH_LAST_DEADLINE(t6)
    bne     t0, t5, .Lpv_full
    /* nothing for the C path: commit.  The real FS follows the page's (trap.c fp_follow) */
    li      t3, SSTATUS_FS_MASK
    csrc    sstatus, t3
    srli    t3, t1, SSTATUS_FS_SHIFT
    andi    t3, t3, 3
    beqz    t3, 5f
    li      t3, EXTENSION_STATE_CLEAN << SSTATUS_FS_SHIFT
    csrs    sstatus, t3
5:  /* the vhart: privilege, context, real satp */
    sw      a1, VCPU_VH_PRIV(t6)
    sw      a2, VCPU_VH_LAST_CTX(t6)
    sd      a5, VCPU_VH_LAST_REAL_SATP(t6)
    sd      a5, REG_SATP(t6)
    /* the page as pv_push leaves it: sstatus as read (UXL = 64, SD when FS is dirty), sip,
     * and sie and stvec legalized */
    SSTATUS_AS_READ t3, t1, t4
    sd      t3, RVH_PV_SSTATUS(a0)
    sd      t2, RVH_PV_SIP(a0)
    ld      t3, RVH_PV_SIE(a0)
    andi    t3, t3, 0x222
    sd      t3, RVH_PV_SIE(a0)
    ld      t3, RVH_PV_STVEC(a0)
    andi    t3, t3, -3
    sd      t3, RVH_PV_STVEC(a0)
    /* scounteren: its kernel reads every counter, its U-mode what the kernel allows */
    li      t3, -1
    srli    t3, t3, 32
    bnez    a1, 4f
    ld      t3, VCPU_VH_SCOUNTEREN(t6)
4:  csrw    scounteren, t3
    /* the counts the C path keeps: an exit, scause 8 */
    ld      t4, VCPU_VM(t6)             /* (host addresses: the hypervisor's table maps them) */
    li      t3, VM_STATS
    add     t4, t4, t3
    ld      t4, 0(t4)
    COUNT_STAT t3, t4, HYP_STAT_EXITS
    COUNT_STAT t3, t4, HYP_STAT_SCAUSE+CAUSE_ECALL_FROM_U
    bnez    a4, .Lpv_forwarded
    /* SYNC_AND_RETURN: an SBI call of the pv extension, its function 1, an sret */
    COUNT_STAT t3, t4, HYP_STAT_ECALL
    COUNT_STAT t3, t4, HYP_STAT_SBI+HYP_SBI_PV
    COUNT_STAT t3, t4, HYP_STAT_PV+SBI_RVH_PV_SYNC_AND_RETURN
    COUNT_STAT t3, t4, HYP_STAT_SRET
    sd      a3, RVH_PV_SEPC(a0)
    ld      a6, RVH_PV_RET_A6(a0)       /* the two registers its ecall needed */
    ld      a7, RVH_PV_RET_A7(a0)
    j       .Lpv_out
.Lpv_forwarded:
    COUNT_STAT t3, t4, HYP_STAT_FORWARDED
    csrr    t3, sepc
    sd      t3, RVH_PV_SEPC(a0)         /* the ecall's own pc */
    li      t3, CAUSE_ECALL_FROM_U
    sd      t3, RVH_PV_SCAUSE(a0)
    sd      zero, RVH_PV_STVAL(a0)
    ld      t3, VCPU_VH_TRAPS_ENTERED(t6)
    addi    t3, t3, 1
    sd      t3, VCPU_VH_TRAPS_ENTERED(t6)
    sd      t3, VCPU_VH_PV_TRAPS_SEEN(t6)
    /* the pv ABI's t0: the guest's in the page, the page's address in t0 */
    ld      t3, REG(5)(t6)
    sd      t3, RVH_PV_TRAP_T0(a0)
    ld      t3, VCPU_VH_PV_PAGE_VA(t6)
    sd      t3, REG(5)(t6)
.Lpv_out:
    csrw    sepc, a3
    csrw    satp, a5
    LOAD_REGS t6, FAST_CSR_TEMPS, 30, PV_FAST_TEMPS
    csrrw   t6, sscratch, t6
    sret
.Lpv_full:
    LOAD_REGS t6, PV_FAST_TEMPS
    j       .Lfull

    /* one 8-byte entry per register: t5 = x[n] (the spilled ones from their slots, t6 from
     * sscratch), then x[n] = t2 */
    .option push
    .option norvc
    .option norelax
    .macro GET_REG n
    .if \n == 0
    li      t5, 0
    .elseif (\n == 6) || (\n == 7) || ((\n >= 28) && (\n <= 30))
    ld      t5, (\n * 8)(t6)
    .elseif \n == 31
    csrr    t5, sscratch
    .else
    mv      t5, x\n
    .endif
    j       .Lgot_rs1
    .endm
    .macro PUT_REG n
    .if \n == 0
    nop
    .elseif (\n == 6) || (\n == 7) || ((\n >= 28) && (\n <= 30))
    sd      t2, (\n * 8)(t6)
    .elseif \n == 31
    csrw    sscratch, t2
    .else
    mv      x\n, t2
    .endif
    j       .Lput_done
    .endm
.Lget_rs1:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    GET_REG \n
    .endr
.Lput_rd:
    .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    PUT_REG \n
    .endr
    .option pop

.Lfull:
    LOAD_REGS t6, FAST_CSR_TEMPS
.Lfull_t5:
    ld      t5, REG(30)(t6)
    SAVE_GUEST_TRAP_STATE
    la      t5, hyp_root_satp   /* (the alias of the variable: both tables map it) */
    ld      t5, 0(t5)
    csrw    satp, t5
    li      t5, ALIAS
    sub     t6, t6, t5          /* the vCPU at its real address */
    la      t4, 3f
    sub     t4, t4, t5
    jr      t4
3:  la      t5, hyp_trap_entry  /* (running at the real address) */
    csrw    stvec, t5
    ld      sp, REG(0)(t6)
    .option push
    .option norelax
    la      gp, __global_pointer$
    .option pop
    mv      a0, t6
    call    hyp_handle_exit
    j       .

    /*
     * long hyp_guest_load(unsigned long va, int kind): read guest memory through the guest's
     * translation (VS-stage + G-stage, 8.3.1): kind 0 = hlvx.hu (instruction fetch, execute
     * permission), 1 = hlv.bu.  Returns -1 when the access faults (both read less than 64
     * bits, so no value read can be mistaken for it).
     */
    .globl hyp_guest_load
    .option push
    .option arch, +h
hyp_guest_load:
    la      t0, 1f
    la      t1, hyp_fixup
    sd      t0, 0(t1)
    bnez    a1, 2f
    hlvx.hu a0, (a0)
    j       3f
2:  hlv.bu  a0, (a0)
3:  sd      zero, 0(t1)
    ret
1:  li      a0, -1
    ret
    .option pop

    /* unsigned long hyp_probe_h(void): 1 when hstatus can be read, 0 when that traps */
    .globl hyp_probe_h
hyp_probe_h:
    la      t0, 1f
    la      t1, hyp_fixup
    sd      t0, 0(t1)
    csrr    a0, CSR_HSTATUS
    sd      zero, 0(t1)
    li      a0, 1
    ret
1:  li      a0, 0
    ret

    .bss
    .balign 8
    .globl hyp_fixup
hyp_fixup:          .dword 0        /* (used under the hypervisor lock only) */
    .globl hyp_root_satp
hyp_root_satp:      .dword 0        /* the hypervisor's own table (trap.c), 0 while unused */
    .data
    .balign 8
hyp_boot_lottery:   .dword 0

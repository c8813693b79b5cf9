/*
 * hyp.h - the rvh hypervisor: an HS-mode program that runs guests in VS-mode.
 *
 * The hypervisor is the payload of an SBI firmware (rvh's built-in SBI or OpenSBI fw_jump): it
 * starts in HS-mode at 0x8020_0000 with a0 = hartid and a1 = the host device tree.  The tree's
 * /hypervisor node describes the VMs rvh (or whoever built the tree) placed in host RAM: for each
 * one its host-physical RAM, its guest-physical RAM base, the entry point, the guest device
 * tree's guest-physical address, the number of vCPUs and how to virtualize it.  See
 * docs/hypervisor.md for the design and the reasons behind it.
 *
 * The shape follows KVM's split, with one ops table per way of virtualizing (struct virt_ops):
 * hw.c (guest kernel in VS-mode, G-stage), trap.c (guest kernel in U-mode, everything
 * privileged emulated, shadow page tables), pv.c (hypercalls).  The shared code calls through
 * the table: vcpu.c takes every exit and hands it to its VM's mode, mmio.c decodes trapped loads
 * and stores and routes them to the virtual devices, sbi.c is the virtual SBI (one table row per
 * extension), gstage.c allocates pages and checks VM RAM, sched.c time-slices vCPUs on the
 * host harts, smp.c starts the other host harts and carries events between them (the big
 * lock, kicks, remote fences), and stats.c keeps the counters every exit path adds to.
 */
#ifndef HYP_H
#define HYP_H

#include <stdint.h>
#include <stddef.h>

#include "rvh/csr.h"
#include "rvh/encoding.h"
#include "rvh/hyp_stats.h"
#include "asm_offsets.h"

#define HYP_MAX_VMS         8
#define HYP_MAX_VCPUS       8       /* per VM */
#define HYP_MAX_HARTS       HYP_STATS_HARTS     /* rvh/hyp.py MAX_HOST_HARTS */
#define RVH_HYP_VERSION     0x100       /* 0.1, as rvh's own version */
#define INSN_WFI            0x10500073  /* wfi has one encoding */
/* trap mode: the hypervisor's image appears a second time at this offset in every table */
#define HYP_ALIAS_OFFSET    0x400000000000UL
#define VPRIV_U             0           /* a trap or pv vCPU's virtual privilege */
#define VPRIV_S             1

/* The H instructions, for an assembler told only rv64imac (gcc 12 knows no "h" in -march) */
#define hfence_gvma_all() __asm__ __volatile__( \
    ".option push\n.option arch, +h\nhfence.gvma zero, zero\n.option pop" ::: "memory")
#define hfence_vvma_all() __asm__ __volatile__( \
    ".option push\n.option arch, +h\nhfence.vvma zero, zero\n.option pop" ::: "memory")

/* ---- VMs and vCPUs ---- */
enum virt_mode { VIRT_HW = 0, VIRT_TRAP = 1, VIRT_PV = 2 };

enum vcpu_state {
    VCPU_STOPPED = 0,   /* not started (HSM) or stopped */
    VCPU_RUNNABLE,
    VCPU_WAITING,       /* in wfi: runnable again once one of its interrupts is pending */
    VCPU_START_PENDING,
};

enum vm_state { VM_RUNNING = 0, VM_SHUTDOWN };

/* The register file a trap saves: entry.S knows these offsets (VCPU_* in vcpu_offsets.h). */
struct vcpu_regs {
    unsigned long x[32];        /* x[0] holds the hypervisor's stack pointer while the guest runs */
    unsigned long sepc;         /* the guest's pc */
    unsigned long sstatus;      /* HS sstatus to return with (SPP, SPIE) */
    unsigned long hstatus;      /* SPV, SPVP, VTW, VTSR, VTVM, VGEIN */
    unsigned long satp;         /* trap mode: the shadow table to run under (0: hw mode) */
};

/* hw mode: the VS-level CSRs, swapped when another vCPU takes the hart (8.2.x). */
struct vs_csrs {
    unsigned long vsstatus, vsie, vstvec, vsscratch, vsepc, vscause, vstval, vsatp, vstimecmp;
    unsigned long scounteren;   /* not banked by H (VS-mode uses the real one): swapped too */
    unsigned long hvip;         /* the interrupts the hypervisor injects (VSSIP, VSTIP, VSEIP) */
};

/*
 * trap and pv modes: the virtual hart the guest kernel believes it runs on, kept in memory by
 * the hypervisor (the real hart runs the guest in U-mode with V=0).  Its privilege is virtual
 * S or U; the S CSRs hold what the guest last wrote (WARL-legalized as its hart would).
 */
struct vhart {
    unsigned priv;              /* VPRIV_S or VPRIV_U: the mode the guest believes it is in */
    unsigned long sstatus;      /* SIE, SPIE, SPP, SUM, MXR and FS as written (UXL, SD on read) */
    unsigned long sie, sip;     /* sip: SSIP as written or raised by IPI; STIP from the timer */
    unsigned long stvec, sscratch, sepc, scause, stval, satp;
    unsigned long stimecmp;     /* Sstc (the guest's tree lists it): its timer deadline */
    unsigned long scounteren, senvcfg;
    uint64_t traps_entered;     /* traps it has taken (pv mode hands the guest its t0 on each) */
    /* pv mode (pv.c): the shared page (host address, 0: none) and the guest's address of it;
     * whether the vhart holds the page's values; traps_entered when the guest last ran */
    volatile uint64_t *pv_page;
    unsigned long pv_page_va;
    int pv_vhart_current;
    /* the f registers on the hart differ from the vCPU's saved copy (trap.c: FS was seen
     * Dirty since they were loaded), so they are saved when another vCPU takes the hart
     * (here, in the padding before pv_traps_seen: entry.S knows the offsets after it) */
    int fp_unsaved;
    uint64_t pv_traps_seen;
    /* what trap.c ran it under last: while the guest satp, context (U, S, S+SUM) and the
     * VM's shadow generation are unchanged, so is the real satp; and the timer deadline */
    unsigned long last_guest_satp, last_real_satp, last_deadline;
    uint64_t last_generation;
    int last_ctx;
    unsigned last_set;
    /* the real satp of each context (guest U, S, S with SUM) while the guest satp is
     * ctx_guest_satp and the VM's shadow generation ctx_generation (0: not made yet): a switch
     * between the guest's U- and S-mode (sret, a forwarded trap, pv's SYNC_AND_RETURN, also in
     * entry.S) takes its root from here instead of looking the set up again */
    unsigned long ctx_real_satp[3];
    unsigned long ctx_guest_satp;
    uint64_t ctx_generation;
};

struct vm;
struct vcpu;

/*
 * How one mode virtualizes a hart.  The shared code (scheduler, SBI, devices, exit entry) calls
 * through this table and never asks which mode a VM is in.
 */
struct virt_ops {
    const char *name;
    /* one-time set-up of a VM (its G-stage or shadow tables); 0, or -1 with a message */
    int (*init_vm)(struct vm *vm);
    /* architectural reset: the vCPU starts at pc in (virtual) S-mode with a0, a1, satp = 0 */
    void (*reset_vcpu)(struct vcpu *vcpu, unsigned long pc, unsigned long a0, unsigned long a1);
    /* the vCPU gets the hart / gives it up (the hart-resident state of the mode) */
    void (*load)(struct vcpu *vcpu);
    void (*save)(struct vcpu *vcpu);
    /* just before the hypervisor returns into the guest (trap: inject pending interrupts) */
    void (*enter)(struct vcpu *vcpu);
    /* an exception from the guest (interrupts are the scheduler's); may yield */
    void (*handle_exit)(struct vcpu *vcpu, unsigned long scause, unsigned long stval);
    /* enter a trap in the guest as its own hart would (4.1.1, 4.1.2) */
    void (*inject_exception)(struct vcpu *vcpu, unsigned long cause, unsigned long tval);
    /* an interrupt pending and enabled in sie (what would end its wfi, 3.3.3) */
    int (*pending_interrupt)(struct vcpu *vcpu);
    /* when the vCPU's timer interrupt comes (~0 none or not enabled in sie), for waking it */
    unsigned long (*timer_deadline)(struct vcpu *vcpu);
    /* the deadline the hypervisor must arm while the vCPU runs (~0: the hart does it, Sstc) */
    unsigned long (*run_deadline)(struct vcpu *vcpu);
    /* SBI set_timer (TIME, legacy): the guest's next timer interrupt; clears a pending one */
    void (*set_timer)(struct vcpu *vcpu, unsigned long when);
    /* raise / clear the guest's supervisor software interrupt (IPI, legacy clear_ipi) */
    void (*raise_ssip)(struct vcpu *vcpu);
    void (*clear_ssip)(struct vcpu *vcpu);
    /* SBI remote sfence.vma: forget every cached translation of the VM's address spaces */
    void (*flush_guest_tlb)(struct vcpu *vcpu);
    /* read guest virtual memory through the guest's translation as its current privilege
     * would: kind 0 = a 16-bit instruction fetch (execute permission), 1 = a byte load;
     * -1 when the access would fault */
    long (*guest_load)(struct vcpu *vcpu, unsigned long va, int kind);
    /* the end of a non-retentive suspend (SBI 9.4): restart at resume_pc with satp = 0, SIE = 0 */
    void (*resume)(struct vcpu *vcpu);
};

extern const struct virt_ops hw_ops, trap_ops;

/* a vCPU's f0-f31 and fcsr to and from its save area (hw.c); sstatus.FS must be on */
void fp_save(struct vcpu *vcpu);
void fp_load(const struct vcpu *vcpu);

struct vcpu {
    struct vcpu_regs regs;      /* first: entry.S addresses it from sscratch */
    struct vs_csrs vs;          /* hw mode */
    struct vhart vh;            /* trap and pv modes */
    struct vm *vm;
    unsigned id;
    enum vcpu_state state;
    unsigned long resume_pc, resume_opaque; /* HSM non-retentive suspend */
    int resume_pending;
    uint64_t slices;                        /* times it was given the hart */
    /* SBI STA (steal time, SBI 2.0 chapter 16, sched.c): the shared memory (host address, 0:
     * none) and its sequence, the steal time so far in timebase ticks, and since when the
     * vCPU has waited for the hart while runnable (0: it has not) */
    volatile uint8_t *sta_shmem;
    uint32_t sta_sequence;
    uint64_t steal_ticks, ready_since;
    /* SMP (smp.c, sched.c; every field under the hypervisor lock): the host hart running it
     * (-1: none; a vCPU runs on at most one), the host hart it ran on last (a move flushes the
     * VS-stage TLB there, as KVM does), and hw-mode hvip bits another hart asked for while it
     * ran (applied on its own hart, which holds the real hvip, at the exit the asker's kick
     * causes, or when it saves the vCPU) */
    int running_on;
    int last_hart;
    unsigned long hvip_set, hvip_clear;
    /* waiting in an HSM suspend (SUSPENDED to hart_get_status), not in wfi (STARTED: a hart in
     * wfi is started as far as the SBI knows) */
    int hsm_suspended;
};

struct vm {
    unsigned id;
    enum virt_mode mode;
    const struct virt_ops *ops;
    enum vm_state state;
    unsigned long host_base;        /* host-physical address of guest-physical ram_base */
    unsigned long ram_base, ram_size;
    unsigned long entry, dtb;       /* guest-physical */
    unsigned nvcpus;
    unsigned vmid;
    unsigned long hgatp;
    unsigned long *gstage_root;     /* 16 KiB, Sv39x4 */
    uint64_t shadow_generation;     /* trap mode: bumped whenever a shadow root goes away */
    long exit_code;                 /* SRST / syscon status, once VM_SHUTDOWN */
    const char *exit_reason;
    struct vcpu vcpus[HYP_MAX_VCPUS];
    uint64_t *stats;                /* its slot of the stats page (rvh/hyp_stats.h's layout) */
    char name[32];
    /* the virtual 16550 */
    uint8_t uart_ier, uart_lcr, uart_mcr, uart_scr, uart_dll, uart_dlm, uart_fcr;
    char line[160];                 /* console line buffer (lines are prefixed with the VM) */
    unsigned line_len;
    unsigned spec;                  /* 0: today's privileged spec; SPEC_1_9_1: legacy.c's */
    /* SMP: the host hart a trap or pv VM's vCPUs all run on (their shadow tables are per VM and
     * entry.S's fast paths touch them without the lock), -1 for hw VMs (any hart); and the
     * VS-stage TLB generation, bumped by each remote sfence.vma of the VM (smp.c) */
    int home_hart;
    uint64_t tlb_generation;
};

/* The host address of [gpa, gpa + len) when all of it is the VM's RAM; 0 and -1 otherwise. */
static inline int gpa_to_host(const struct vm *vm, unsigned long gpa, unsigned long len,
                              unsigned long *hpa)
{
    if (gpa < vm->ram_base || len > vm->ram_size || gpa - vm->ram_base > vm->ram_size - len)
        return -1;
    *hpa = vm->host_base + (gpa - vm->ram_base);
    return 0;
}

extern struct vm hyp_vms[HYP_MAX_VMS];
extern unsigned hyp_nvms;
extern uint64_t *hyp_stats_page;    /* named by the device tree (rvh,stats), else our own */
extern unsigned long hyp_hart_has_h;    /* entry.S saves and restores hstatus only then */

/* ---- entry.S ---- */
void hyp_enter_guest(struct vcpu *vcpu) __attribute__((noreturn));
void hyp_trap_entry(void);
/* read guest memory through the guest's translation: kind 0 = HLVX.HU (fetch), 1 = HLV.BU;
 * -1 when the access faults */
long hyp_guest_load(unsigned long va, int kind);
/* 1 when the hart has the H extension (a read of hstatus does not trap) */
unsigned long hyp_probe_h(void);
extern unsigned long hyp_root_satp;    /* trap mode: the hypervisor's own table */

/* ---- console.c ---- */
void hyp_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void vm_console_putc(struct vm *vm, int c);
void vm_console_flush(struct vm *vm);

/* ---- fdt.c ---- */
int hyp_parse_vms(const void *fdt);

/* ---- gstage.c ---- */
void *hyp_alloc_pages(size_t bytes, size_t align);
int vm_check_ram(struct vm *vm);
int gstage_map_vm(struct vm *vm);

/* ---- legacy.c: privileged spec 1.9.1 for a trap-mode VM (rvh,spec = "1.9.1") ---- */
#define SPEC_1_9_1 191
int legacy_init_vm(struct vm *vm);
void legacy_reset(struct vcpu *vcpu);
int legacy_csr_exists(unsigned csr);
unsigned long legacy_csr_read(struct vcpu *vcpu, unsigned csr, unsigned long value);
void legacy_csr_write(struct vcpu *vcpu, unsigned *csr, unsigned long *value);
int legacy_instruction(struct vcpu *vcpu, uint32_t insn);
unsigned long legacy_cause(unsigned long cause);

/* ---- vcpu.c: the shared exit path; the mode's ops do the rest ---- */
void hyp_handle_exit(struct vcpu *vcpu) __attribute__((noreturn));
void vcpu_enter(struct vcpu *vcpu) __attribute__((noreturn));
void vcpu_reset(struct vcpu *vcpu, unsigned long pc, unsigned long a0, unsigned long a1);
void vcpu_wait(struct vcpu *vcpu);      /* wfi: yields unless an interrupt is pending */
/* guest memory read through the guest's own translation (the mode's guest_load) */
long vcpu_read_guest(struct vcpu *vcpu, unsigned long va, int kind);
/* the instruction at va (32-bit, or a compressed one in the low half); 0 when it faults */
uint32_t vcpu_fetch_insn(struct vcpu *vcpu, unsigned long va);

/* ---- hw.c ---- */
void hw_init_hart(void);
/* the hvip bits other host harts asked for (struct vcpu hvip_set, hvip_clear), into the CSR */
void hw_apply_remote_hvip(struct vcpu *vcpu);

/* ---- mmio.c ---- */
/* a trapped load or store at gpa: tinst is the hart's transformed instruction (htinst) or 0 to
 * fetch it from the guest's pc; 0 when emulated (pc advanced), -1 when no device is there */
int mmio_emulate(struct vcpu *vcpu, unsigned long gpa, int is_store, unsigned long tinst);

/* ---- sbi.c ---- */
void sbi_dispatch(struct vcpu *vcpu);

/* ---- trap.c, for pv mode ---- */
/* the guest's sfence.vma (with an address when has_va, for one ASID when has_asid) */
void trap_sfence_vma(struct vcpu *vcpu, unsigned long va, int has_va, unsigned long asid,
                     int has_asid);
/* forget the cached guest walk (a PTE changed without a fence: pv MMU_UPDATE writes them) */
void trap_walk_forget(struct vm *vm);
/* enter va's page in the shadow table now if the guest maps it through the PTE at pte_host */
int trap_shadow_prefill(struct vcpu *vcpu, unsigned long va, unsigned long pte_host);

/* ---- pv.c ---- */
extern const struct virt_ops pv_ops;
/* a call of rvh's pv extension (SBI_EXT_RVH_PV) from a pv VM: sets the guest's registers */
void pv_sbi_call(struct vcpu *vcpu);

/* ---- smp.c: several host harts ---- */
/*
 * Each host hart has an area of HYP_HART_AREA bytes (asm_offsets.h), aligned to its size: its
 * struct hyp_hart at the bottom, its stack growing down from the top.  The hypervisor finds its own hart from sp
 * (no register of the guest's is borrowed), and entry.S gives a guest's exit the top of the
 * area of the hart that entered it.
 */

struct hyp_hart {
    unsigned index;                 /* the hypervisor's number: 0 the boot hart, then by hartid */
    unsigned long hartid;           /* the firmware's */
    struct vcpu *loaded;            /* whose hart-resident state (hw: VS CSRs, hgatp) is in */
    struct vcpu *last_run;          /* the vCPU given the hart last */
    unsigned cursor;                /* round-robin position: vm * HYP_MAX_VCPUS + vcpu */
    unsigned long timer_armed;      /* the deadline last given to the firmware (its own timer) */
    unsigned long sched_deadline;   /* the scheduler's own */
    volatile int idle;              /* in wfi with nothing to run: a kick wakes it */
    int resched;                    /* a vCPU waits for it: arm the slice timer (its kick's exit) */
    volatile unsigned fence_request;    /* SMP_FENCE_*: what another hart waits for it to do */
    uint64_t tlb_seen[HYP_MAX_VMS]; /* each VM's tlb_generation when it last fenced for it */
};

#define SMP_FENCE_VVMA  1           /* hfence.vvma of the VMID it runs */
#define SMP_FENCE_I     2

extern struct hyp_hart *hyp_harts[HYP_MAX_HARTS];
extern unsigned hyp_nharts;

static inline struct hyp_hart *hyp_this_hart(void)
{
    unsigned long sp;
    __asm__("mv %0, sp" : "=r"(sp));
    return (struct hyp_hart *)(sp & ~(unsigned long)(HYP_HART_AREA - 1));
}

/* whose hart-resident state is in this hart */
#define hyp_loaded (hyp_this_hart()->loaded)

/* The hypervisor lock (test-and-set on amoswap): all of the hypervisor's C code runs under it,
 * on one hart at a time; the guests run in parallel.  Inline, as every exit takes it: the wait
 * (which also does what other harts ask of this one meanwhile) is out of line.  Whoever asks a
 * hart for something holds the lock until it is done, so a hart that gets the lock at once has
 * nothing to do for anyone.  Not a ticket lock: when the host harts are themselves virtual
 * (QEMU's threads on a busy host), a waiter whose thread is descheduled would hold up every
 * hart behind it even with the lock free. */
extern volatile uint32_t hyp_lock_word;
extern unsigned hyp_nharts;
void hyp_lock_wait(void);

static inline void hyp_lock(void)
{
    if (hyp_nharts < 2)
        return;         /* no one to share with (the boot hart holds it while harts start) */
    if (__builtin_expect(__atomic_exchange_n(&hyp_lock_word, 1, __ATOMIC_ACQUIRE) != 0, 0))
        hyp_lock_wait();
}

static inline void hyp_unlock(void)
{
    if (hyp_nharts < 2)
        return;
    __atomic_store_n(&hyp_lock_word, 0, __ATOMIC_RELEASE);
}
/* boot: this hart's struct (index 0); then start every other host hart (the lock held),
 * returning how many harts there are */
void smp_init_boot_hart(unsigned long hartid);
unsigned smp_boot(unsigned long boot_hartid);
void hyp_secondary_main(unsigned long hartid, struct hyp_hart *me) __attribute__((noreturn));
/* something changed for v (runnable, an interrupt): tell the host hart that runs it, or an
 * idle one that may */
void vcpu_kick(struct vcpu *v);
/* a remote sfence.vma of hw VM vm's guest (SBI RFENCE): every host hart running one of its
 * vCPUs fences now, the others before they next run one (returns when done) */
void smp_flush_vm_tlb(struct vm *vm);
/* SBI remote fence.i: here and on every host hart running one of vm's vCPUs */
void smp_fence_i(struct vm *vm);
/* this hart's part of a remote sfence.vma, when it loads a vCPU of vm */
void smp_load_tlb(struct vcpu *vcpu);

/* ---- sched.c ---- */
void sched_run(void) __attribute__((noreturn));
void sched_yield(struct vcpu *vcpu) __attribute__((noreturn));
void sched_timer_fired(void);
void sched_rearm(unsigned long guest_deadline);
/* a vCPU waits for this hart: arm the slice timer now if none is armed (vcpu runs here) */
void sched_arm_slice(struct vcpu *vcpu);
/* STA: publish the vCPU's steal time in its shared memory, if it registered one */
void sched_sta_publish(struct vcpu *vcpu);
void vm_shutdown(struct vm *vm, long code, const char *reason);

static inline unsigned long read_time(void)
{
    unsigned long t;
    __asm__ __volatile__("rdtime %0" : "=r"(t));
    return t;
}

/* ---- stats.c ---- */
void stats_use_page(unsigned long address, unsigned long size);
void stats_attach(struct vm *vm);
void stats_shutdown(struct vm *vm);
void stats_print(void);

/* ---- main.c ---- */
void hyp_exit_machine(long status) __attribute__((noreturn));
void hyp_console_init(void);


#endif

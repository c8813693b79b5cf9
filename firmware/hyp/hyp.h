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
 * The shape follows KVM's split: vcpu.c runs a vCPU and dispatches its exits by scause,
 * insn.c decodes trapped loads and stores, mmio.c routes guest-physical accesses to the virtual
 * devices (vuart.c, vsyscon in mmio.c), sbi.c is the virtual SBI (one table row per
 * extension), gstage.c builds the G-stage tables, sched.c time-slices vCPUs on the hart, and
 * stats.c keeps the counters every exit path adds to.
 */
#ifndef HYP_H
#define HYP_H

#include <stdint.h>
#include <stddef.h>

#include "rvh/csr.h"
#include "rvh/encoding.h"
#include "rvh/hyp_stats.h"

#define HYP_MAX_VMS         8
#define HYP_MAX_VCPUS       8       /* per VM */
#define HYP_MAX_HARTS       8
#define RVH_HYP_VERSION     0x100       /* 0.1, as rvh's own version */
#define INSN_WFI            0x10500073  /* wfi has one encoding */

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
};

/* The VS-level CSRs, swapped when another vCPU takes the hart (8.2.x). */
struct vs_csrs {
    unsigned long vsstatus, vsie, vstvec, vsscratch, vsepc, vscause, vstval, vsatp, vstimecmp;
    unsigned long hvip;         /* the interrupts the hypervisor injects (VSSIP, VSTIP, VSEIP) */
};

struct vm;

struct vcpu {
    struct vcpu_regs regs;      /* first: entry.S addresses it from sscratch */
    struct vs_csrs vs;
    struct vm *vm;
    unsigned id;
    enum vcpu_state state;
    unsigned long resume_pc, resume_opaque; /* HSM non-retentive suspend */
    int resume_pending;
    uint64_t slices;                        /* times it was given the hart */
};

struct vm {
    unsigned id;
    enum virt_mode mode;
    enum vm_state state;
    unsigned long host_base;        /* host-physical address of guest-physical ram_base */
    unsigned long ram_base, ram_size;
    unsigned long entry, dtb;       /* guest-physical */
    unsigned nvcpus;
    unsigned vmid;
    unsigned long hgatp;
    unsigned long *gstage_root;     /* 16 KiB, Sv39x4 */
    long exit_code;                 /* SRST / syscon status, once VM_SHUTDOWN */
    const char *exit_reason;
    struct vcpu vcpus[HYP_MAX_VCPUS];
    uint64_t *stats;                /* its slot of the stats page (rvh/hyp_stats.h's layout) */
    char name[32];
    /* the virtual 16550 */
    uint8_t uart_ier, uart_lcr, uart_mcr, uart_scr, uart_dll, uart_dlm, uart_fcr;
    char line[160];                 /* console line buffer (lines are prefixed with the VM) */
    unsigned line_len;
};

extern struct vm hyp_vms[HYP_MAX_VMS];
extern unsigned hyp_nvms;
extern uint64_t *hyp_stats_page;    /* named by the device tree (rvh,stats), else our own */

/* ---- entry.S ---- */
void hyp_enter_guest(struct vcpu *vcpu) __attribute__((noreturn));
void hyp_trap_entry(void);
/* read guest memory through the guest's translation: kind 0 = HLVX.HU (fetch), 1 = HLV.BU;
 * -1 when the access faults */
long hyp_guest_load(unsigned long va, int kind);

/* ---- console.c ---- */
void hyp_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void vm_console_putc(struct vm *vm, int c);
void vm_console_flush(struct vm *vm);

/* ---- fdt.c ---- */
int hyp_parse_vms(const void *fdt);

/* ---- gstage.c ---- */
void *hyp_alloc_pages(size_t bytes, size_t align);
int gstage_map_vm(struct vm *vm);
int gpa_to_host(const struct vm *vm, unsigned long gpa, unsigned long len, unsigned long *hpa);

/* ---- vcpu.c ---- */
void vcpu_reset(struct vcpu *vcpu, unsigned long pc, unsigned long a0, unsigned long a1);
void hyp_handle_exit(struct vcpu *vcpu) __attribute__((noreturn));
void vcpu_inject_exception(struct vcpu *vcpu, unsigned long cause, unsigned long tval);
void vcpu_resume(struct vcpu *vcpu);
int vcpu_has_pending_interrupt(struct vcpu *vcpu);

/* ---- insn.c / mmio.c ---- */
int mmio_emulate(struct vcpu *vcpu, unsigned long gpa, unsigned long scause);

/* ---- sbi.c ---- */
void sbi_dispatch(struct vcpu *vcpu);

/* ---- sched.c ---- */
void sched_run(void) __attribute__((noreturn));
void sched_yield(struct vcpu *vcpu) __attribute__((noreturn));
void sched_timer_fired(void);
void vm_shutdown(struct vm *vm, long code, const char *reason);
void vcpu_save_vs(struct vcpu *vcpu);
void vcpu_load_vs(struct vcpu *vcpu);

/* ---- stats.c ---- */
void stats_use_page(unsigned long address, unsigned long size);
void stats_attach(struct vm *vm);
void stats_shutdown(struct vm *vm);
void stats_print(void);

/* ---- main.c ---- */
void hyp_exit_machine(long status) __attribute__((noreturn));
void hyp_console_init(void);


#endif

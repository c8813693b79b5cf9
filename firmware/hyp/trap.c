/*
 * trap.c - trap mode: no H extension used.  The guest kernel runs in U-mode (V=0) on a virtual
 * hart (struct vhart) that the hypervisor keeps in memory, as RVirt does.
 *
 * - Every privileged instruction the guest kernel executes traps as an illegal instruction
 *   and is emulated on the virtual hart: the S CSRs (csrrw/s/c and their immediate forms),
 *   sret, sfence.vma, wfi.  Anything else illegal, and anything at all from the guest's own
 *   U-mode, is forwarded to the guest as its hart would raise it.  The commonest CSR accesses
 *   (sscratch, sepc, scause, stval, most of sstatus) never get here: entry.S does them.
 * - Guest traps (its U-mode ecalls, page faults, illegal instructions, breakpoints) are
 *   forwarded in software: sepc/scause/stval/sstatus of the virtual hart, then its stvec.  An
 *   ecall from the virtual S-mode is an SBI call (sbi.c).
 * - Memory: shadow page tables (Sv48) built lazily from the guest's own (bare, Sv39, Sv48).
 *   A page fault with no shadow entry walks the guest's table as its hart would (U bit against
 *   the virtual privilege, SUM, MXR), sets A (and D on a write) in the guest's PTE, and maps
 *   the host page of that guest-physical page; write permission only once D is set.  One
 *   shadow root per context: guest U-mode, S-mode, S-mode with SUM.  The roots of the last
 *   SHADOW_SETS guest satp values (ASID + root) are kept, so a guest context switch finds its
 *   tables again; sfence.vma empties them (a 2 MiB region when it names an address, only
 *   that ASID's sets when it names an ASID alone).
 *   Guest-physical addresses outside RAM are never mapped: a device access faults and is
 *   decoded and emulated (mmio.c), anything else is an access fault in the guest.  Shadow
 *   tables map only the VM's RAM (and the hypervisor's alias, U = 0), so the guest can reach
 *   nothing else.
 * - F and D: the guest's FP instructions and fflags/frm/fcsr run natively (its kernel and its
 *   user code are both in the real U-mode) while its virtual sstatus.FS is not Off, and trap as
 *   illegal instructions, forwarded, while it is: the real FS follows the virtual one (Off, or
 *   Clean for Initial, Clean and Dirty), and a real FS found Dirty at an exit makes the
 *   virtual one Dirty (3.1.6.6).  The f registers are switched with the vCPU.
 * - Interrupts: the virtual STIP comes from the guest's stimecmp (Sstc, or SBI set_timer), its
 *   SSIP from IPIs; they are delivered on every return into the guest when its sie/sstatus.SIE
 *   allow, and the host timer is armed for the virtual timer while the guest can take it.
 */
#include "hyp.h"
#include "asm_offsets.h"
#include "rvh/libc.h"

/* entry.S's CSR fast path relies on these (asm_offsets.h) */
_Static_assert(VCPU_VH_PRIV == offsetof(struct vcpu, vh.priv), "asm_offsets.h: vh.priv");
_Static_assert(VCPU_VH_SSCRATCH == offsetof(struct vcpu, vh.sscratch), "asm_offsets.h");
_Static_assert(offsetof(struct vhart, sepc) == offsetof(struct vhart, sscratch) + 8 &&
               offsetof(struct vhart, scause) == offsetof(struct vhart, sscratch) + 16 &&
               offsetof(struct vhart, stval) == offsetof(struct vhart, sscratch) + 24,
               "sscratch, sepc, scause, stval are consecutive");
_Static_assert(VCPU_VM == offsetof(struct vcpu, vm), "asm_offsets.h: vcpu.vm");
_Static_assert(VCPU_VH_SSTATUS == offsetof(struct vcpu, vh.sstatus), "asm_offsets.h: sstatus");
_Static_assert(VM_STATS == offsetof(struct vm, stats), "asm_offsets.h: vm.stats");
_Static_assert(VPRIV_S == 1 && VPRIV_U == 0, "entry.S tests priv against 0");
_Static_assert(CSR_SEPC == CSR_SSCRATCH + 1 && CSR_SCAUSE == CSR_SSCRATCH + 2 &&
               CSR_STVAL == CSR_SSCRATCH + 3, "the four plain CSRs are consecutive");

/* the fast path may run: the stats page is inside the hypervisor's alias (entry.S) */
unsigned long hyp_fast_csr;

#define PAGE            4096UL
#define SHADOW_SETS     8           /* guest satp values whose shadow roots are kept */
#define SHADOW_POOL     384         /* pages per trap VM for shadow tables (1.5 MiB: 8 VMs fit the heap) */
#define CTX_U           0           /* the guest's U-mode */
#define CTX_S           1           /* its S-mode */
#define CTX_S_SUM       2           /* its S-mode with sstatus.SUM = 1 */
#define NCTX            3
#define ALIAS_SLOT      (HYP_ALIAS_OFFSET >> 39)    /* the Sv48 root entry of the alias */
#define LOW_PTE_BITS    ((1UL << PTE_PPN_SHIFT) - 1)    /* V..D and RSW */
#define PTE_PPN(pte)    (((pte) >> PTE_PPN_SHIFT) & 0xfffffffffffUL)
#define SHADOW_GIGA     (1UL << 8)  /* RSW: this leaf is a piece of a guest 1 GiB page */
/* RSW of a shadow level-1 pointer: its leaf table holds pieces of a guest superpage, so a
 * guest fence of one address there empties the whole table, not one entry */
#define SHADOW_MEGA     (1UL << 8)
#define LEAF(pa, flags) (((pa) >> 12) << PTE_PPN_SHIFT | (flags))
#define SSTATUS_WRITABLE (SSTATUS_SIE_MASK | SSTATUS_SPIE_MASK | SSTATUS_SPP_MASK | \
                          SSTATUS_FS_MASK | SSTATUS_SUM_MASK | SSTATUS_MXR_MASK)
#define SIE_WRITABLE    (MIP_SSIP_MASK | MIP_STIP_MASK | MIP_SEIP_MASK)
_Static_assert(TRAP_SSTATUS_WRITABLE_BITS == SSTATUS_WRITABLE, "asm_offsets.h: sstatus' WARL bits");

enum access_kind { ACCESS_FETCH, ACCESS_LOAD, ACCESS_STORE };

struct shadow_set {
    unsigned long satp;             /* the guest's satp these roots translate */
    unsigned long roots[NCTX];      /* host addresses of the Sv48 roots (0: none yet) */
    uint64_t last_used;
    int valid, giga;                /* giga: some leaf is a piece of a guest 1 GiB page */
};

struct shadow {
    struct shadow_set sets[SHADOW_SETS];
    unsigned long free_pages[SHADOW_POOL];
    unsigned nfree;
    uint64_t clock;
    /* the leaf table the last fill used: the next fill nearby skips the walk down to it */
    unsigned long *leaf_table, leaf_root, leaf_region;
    /* a page-walk cache of the guest's own tables: the guest-physical address of the deepest
     * table (level walk_level) the walk under walk_satp reached for the region walk_region
     * (va >> walk_shift).  A hart may cache non-leaf entries until an sfence.vma (4.2.1), so
     * every guest fence empties it */
    unsigned long walk_satp, walk_region, walk_table;
    int walk_level, walk_shift;
    /* and the last superpage leaf a walk found (a TLB entry, which the hart may also keep
     * until a fence): its PTE, its host address, for which context and MXR, and the kinds of
     * access it allows (a store only once D is set) */
    unsigned long leafc_satp, leafc_region, leafc_pte, leafc_host, leafc_flags;
    unsigned long leafc_mode;       /* the privilege and sstatus' SUM and MXR it was made for */
    unsigned long leafc_base, leafc_mask;   /* the superpage's guest-physical base, span - 1 */
    int leafc_shift, leafc_level, leafc_kinds;
};

static struct shadow shadows[HYP_MAX_VMS];
static unsigned long *alias_l2;     /* the alias' level-2 table, shared by every root */
static unsigned long *hyp_root;     /* the hypervisor's own table (identity + alias) */

/* ---- the hypervisor's own table and the shared alias ---- */

static unsigned long table_pte(void *table)
{
    return ((unsigned long)table >> 12) << PTE_PPN_SHIFT | PTE_V_MASK;
}

/* Built once, at the first trap VM: the hypervisor runs under it from then on.  Identity for
 * the first 16 GiB of physical space (gigapages: RAM of every VM, the devices), the alias of
 * the hypervisor's image (0x8020_0000 to HYPERVISOR_END in 2 MiB pages, global, U = 0). */
static void build_hyp_root(void)
{
    extern char _start[];
    unsigned long start = (unsigned long)_start & ~0x1fffffUL, end = 0x84000000UL;
    unsigned long rwx = PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | PTE_X_MASK | PTE_A_MASK | PTE_D_MASK;
    alias_l2 = hyp_alloc_pages(PAGE, PAGE);
    unsigned long *alias_l1 = hyp_alloc_pages(PAGE, PAGE);
    alias_l2[(start >> 30) & 511] = table_pte(alias_l1);
    for (unsigned long pa = start; pa < end; pa += 0x200000UL)
        alias_l1[(pa >> 21) & 511] = LEAF(pa, rwx | PTE_G_MASK);
    hyp_root = hyp_alloc_pages(PAGE, PAGE);
    unsigned long *identity = hyp_alloc_pages(PAGE, PAGE);
    for (unsigned long gib = 0; gib < 16; gib++)
        identity[gib] = LEAF(gib << 30, rwx);
    hyp_root[0] = table_pte(identity);
    hyp_root[ALIAS_SLOT] = table_pte(alias_l2);
    hyp_root_satp = SATP_MODE_SV48 << SATP_MODE_SHIFT | (unsigned long)hyp_root >> 12;
    csr_write(CSR_SATP, hyp_root_satp);
    sfence_vma_all();
}

/* ---- the shadow page pool ---- */

static void shadow_reset(struct vm *vm);

static unsigned long *shadow_page(struct vm *vm)
{
    struct shadow *sh = &shadows[vm->id];
    if (!sh->nfree)
        return 0;
    return (unsigned long *)sh->free_pages[--sh->nfree];   /* zero: free_table left it so */
}

/* Give a table and those below it back to the pool, zeroed (so taking one costs nothing). */
static void free_table(struct shadow *sh, unsigned long *table, int level)
{
    for (unsigned i = 0; i < 512; i++) {
        unsigned long pte = table[i];
        if (!pte)
            continue;
        table[i] = 0;
        if (level == 3 && i == ALIAS_SLOT)
            continue;
        if ((pte & PTE_V_MASK) && !(pte & (PTE_R_MASK | PTE_W_MASK | PTE_X_MASK)))
            free_table(sh, (unsigned long *)(PTE_PPN(pte) << 12), level - 1);
    }
    sh->free_pages[sh->nfree++] = (unsigned long)table;
}

static unsigned long asid_of(struct vm *vm, unsigned set, unsigned ctx)
{
    return 1 + (vm->id * SHADOW_SETS + set) * NCTX + ctx;
}

/* Forget every translation of one set (the roots go back to the pool). */
static void flush_set(struct vm *vm, unsigned index)
{
    struct shadow *sh = &shadows[vm->id];
    struct shadow_set *set = &sh->sets[index];
    for (unsigned ctx = 0; ctx < NCTX; ctx++) {
        if (set->roots[ctx]) {
            free_table(sh, (unsigned long *)set->roots[ctx], 3);
            set->roots[ctx] = 0;
        }
        __asm__ __volatile__("sfence.vma zero, %0" ::"r"(asid_of(vm, index, ctx)) : "memory");
    }
    set->giga = 0;
    sh->leaf_table = 0;
    sh->walk_satp = 0;
    sh->leafc_satp = 0;
    vm->shadow_generation++;
}

static void shadow_reset(struct vm *vm)
{
    struct shadow *sh = &shadows[vm->id];
    for (unsigned i = 0; i < SHADOW_SETS; i++) {
        if (sh->sets[i].valid)
            flush_set(vm, i);
        sh->sets[i].valid = 0;
    }
}

static __attribute__((noinline)) void flush_all(struct vm *vm)
{
    vm->stats[HYP_STAT_SHADOW_FLUSH_FULL]++;
    shadow_reset(vm);
}

static int context_of(const struct vcpu *vcpu)
{
    if (vcpu->vh.priv == VPRIV_U)
        return CTX_U;
    return vcpu->vh.sstatus & SSTATUS_SUM_MASK ? CTX_S_SUM : CTX_S;
}

/* The set for the guest's current satp: found again, or the least recently used one reused. */
static unsigned find_set(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    struct shadow *sh = &shadows[vm->id];
    unsigned victim = 0;
    sh->clock++;
    for (unsigned i = 0; i < SHADOW_SETS; i++) {
        struct shadow_set *set = &sh->sets[i];
        if (set->valid && set->satp == vcpu->vh.satp) {
            if (vcpu->vh.last_guest_satp != vcpu->vh.satp)
                vm->stats[HYP_STAT_SHADOW_SET_REUSED]++;    /* a switch back: tables kept */
            set->last_used = sh->clock;
            return i;
        }
        if (!set->valid || (sh->sets[victim].valid && set->last_used < sh->sets[victim].last_used))
            victim = i;
    }
    struct shadow_set *set = &sh->sets[victim];
    if (set->valid)
        flush_set(vm, victim);
    vm->stats[HYP_STAT_SHADOW_NEW_SET]++;
    set->valid = 1;
    set->satp = vcpu->vh.satp;
    set->last_used = sh->clock;
    return victim;
}

/* The real satp for the vCPU's context (a root made if it has none); 0 when the pool is dry. */
static __attribute__((noinline)) unsigned long shadow_satp(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    int ctx = context_of(vcpu);
    struct vhart *vh = &vcpu->vh;
    unsigned index = find_set(vcpu);
    struct shadow_set *set = &shadows[vm->id].sets[index];
    if (!set->roots[ctx]) {
        unsigned long *root = shadow_page(vm);
        if (!root)
            return 0;
        root[ALIAS_SLOT] = table_pte(alias_l2);
        set->roots[ctx] = (unsigned long)root;
    }
    vh->last_guest_satp = vh->satp;
    vh->last_set = index;
    vh->last_ctx = ctx;
    vh->last_generation = vm->shadow_generation;
    vh->last_real_satp = SATP_MODE_SV48 << SATP_MODE_SHIFT |
                         asid_of(vm, index, (unsigned)ctx) << SATP_ASID_SHIFT | set->roots[ctx] >> 12;
    if (vh->ctx_generation != vm->shadow_generation || vh->ctx_guest_satp != vh->satp) {
        for (unsigned c = 0; c < NCTX; c++)
            vh->ctx_real_satp[c] = 0;
        vh->ctx_generation = vm->shadow_generation;
        vh->ctx_guest_satp = vh->satp;
    }
    vh->ctx_real_satp[ctx] = vh->last_real_satp;
    return vh->last_real_satp;
}

/* The real satp, from what the vCPU ran under last when nothing changed since (the usual
 * case: no lookup), or from the per-context cache when only the context changed (a switch
 * between the guest's U- and S-mode); vh.last_set is then its set. */
static inline unsigned long current_satp(struct vcpu *vcpu)
{
    struct vhart *vh = &vcpu->vh;
    int ctx = context_of(vcpu);
    uint64_t generation = vcpu->vm->shadow_generation;
    if (vh->last_real_satp && vh->last_guest_satp == vh->satp && vh->last_ctx == ctx &&
        vh->last_generation == generation)
        return vh->last_real_satp;
    if (vh->ctx_real_satp[ctx] && vh->ctx_guest_satp == vh->satp &&
        vh->ctx_generation == generation && vh->last_guest_satp == vh->satp &&
        vh->last_generation == generation) {
        vh->last_ctx = ctx;     /* the same set (last_set): its root for this context */
        vh->last_real_satp = vh->ctx_real_satp[ctx];
        return vh->last_real_satp;
    }
    return shadow_satp(vcpu);
}

/* ---- the guest's own translation, as its hart would do it (4.3.2, 4.4) ---- */

struct walk {
    unsigned long gpa, pte_host;    /* the leaf PTE's host address */
    unsigned long pte;
    int level;                      /* of the leaf: 0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB ... */
    int superpage;                  /* a superpage leaf was found (page_fault keeps it) */
    unsigned long shadow_flags;     /* the shadow leaf's flags, once known (0: not yet) */
    unsigned long cause;            /* when it fails: page fault or access fault */
};

static unsigned long fault_cause(enum access_kind kind, int access)
{
    static const unsigned long page[] = {CAUSE_INSTRUCTION_PAGE_FAULT, CAUSE_LOAD_PAGE_FAULT,
                                         CAUSE_STORE_PAGE_FAULT};
    static const unsigned long acc[] = {CAUSE_INSTRUCTION_ACCESS_FAULT, CAUSE_LOAD_ACCESS_FAULT,
                                        CAUSE_STORE_ACCESS_FAULT};
    return access ? acc[kind] : page[kind];
}

/* Permissions of a guest leaf for a context (the rules of 4.3.1 and sstatus.SUM/MXR). */
static int leaf_allows(unsigned long pte, int ctx, int mxr, enum access_kind kind)
{
    int user = (pte & PTE_U_MASK) != 0;
    if (ctx == CTX_U && !user)
        return 0;
    if (ctx != CTX_U && user && (ctx == CTX_S || kind == ACCESS_FETCH))
        return 0;
    switch (kind) {
    case ACCESS_FETCH: return (pte & PTE_X_MASK) != 0;
    case ACCESS_LOAD: return (pte & PTE_R_MASK) || (mxr && (pte & PTE_X_MASK));
    default: return (pte & PTE_W_MASK) != 0;
    }
}

/* A leaf PTE at host that allows the access: A (and D for a store) set in it, w filled. */
static inline void walk_found(struct walk *w, volatile unsigned long *host, unsigned long pte,
                              int level, unsigned long va, enum access_kind kind)
{
    unsigned long span_mask = (1UL << (12 + 9 * level)) - 1;
    unsigned long updated = pte | PTE_A_MASK | (kind == ACCESS_STORE ? PTE_D_MASK : 0);
    if (updated != pte)
        *host = updated;
    if (level > 0)
        w->superpage = 1;           /* the caller may keep it (remember_leaf) */
    w->pte = updated;
    w->pte_host = (unsigned long)host;
    w->level = level;
    w->gpa = (PTE_PPN(pte) << 12) + (va & span_mask);
}

/* The walk from `table` at `level` down (4.3.2), remembering the deepest table it reaches. */
static __attribute__((noinline)) int guest_walk_from(struct vcpu *vcpu, unsigned long va,
                                                     enum access_kind kind, struct walk *w,
                                                     unsigned long table, int level)
{
    struct vm *vm = vcpu->vm;
    struct shadow *sh = &shadows[vm->id];
    unsigned long satp = vcpu->vh.satp;
    for (;; level--) {
        int shift = 12 + 9 * level;
        /* (a table below ram_base wraps to a huge offset: one compare; tables are aligned) */
        unsigned long offset = table + ((va >> shift) & 511) * 8 - vm->ram_base;
        if (offset >= vm->ram_size) {
            w->cause = fault_cause(kind, 1);    /* the walk touched no memory: access fault */
            return -1;
        }
        volatile unsigned long *host = (volatile unsigned long *)(vm->host_base + offset);
        unsigned long pte = *host;
        if (!(pte & PTE_V_MASK) || (pte & (PTE_R_MASK | PTE_W_MASK)) == PTE_W_MASK ||
            (pte & PTE_RESERVED_MASK))
            break;
        if (!(pte & (PTE_R_MASK | PTE_X_MASK))) {
            if (level == 0)
                break;                          /* a pointer at the last level */
            table = PTE_PPN(pte) << 12;         /* a pointer to the next level */
            sh->walk_satp = satp;
            sh->walk_shift = shift;
            sh->walk_region = va >> shift;
            sh->walk_table = table;
            sh->walk_level = level - 1;
            continue;
        }
        if (!leaf_allows(pte, context_of(vcpu), (vcpu->vh.sstatus & SSTATUS_MXR_MASK) != 0, kind) ||
            ((PTE_PPN(pte) << 12) & ((1UL << shift) - 1)))
            break;                              /* refused, or a misaligned superpage */
        walk_found(w, host, pte, level, va, kind);
        return 0;
    }
    w->cause = fault_cause(kind, 0);
    return -1;
}

/* Translate va for the vCPU's current context; sets A (and D for a store) in the guest's PTE.
 * Returns 0 with w->gpa, or -1 with w->cause.  The usual case, a leaf in the table the last
 * walk reached, is straight-line code: the walk is most of what an Sv39 fill costs beyond a
 * bare one (the 400-instruction budget, docs/hypervisor.md). */
static int guest_walk(struct vcpu *vcpu, unsigned long va, enum access_kind kind, struct walk *w)
{
    unsigned long satp = vcpu->vh.satp;     /* 0 exactly when Bare (csr_put, set_satp) */
    w->pte_host = 0;
    w->superpage = 0;
    w->shadow_flags = 0;
    if (!satp) {
        w->gpa = va;
        w->level = -1;
        return 0;
    }
    struct vm *vm = vcpu->vm;
    struct shadow *sh = &shadows[vm->id];
    if (sh->walk_satp == satp && sh->walk_region == va >> sh->walk_shift) {
        /* the pointers down to this table were walked before (the region being equal implies
         * a canonical va: it holds every bit above the table's span) */
        int level = sh->walk_level;
        unsigned long offset = sh->walk_table + ((va >> (12 + 9 * level)) & 511) * 8 - vm->ram_base;
        if (offset < vm->ram_size) {
            volatile unsigned long *host = (volatile unsigned long *)(vm->host_base + offset);
            unsigned long pte = *host;
            int ctx = context_of(vcpu), mxr = (vcpu->vh.sstatus & SSTATUS_MXR_MASK) != 0;
            if ((pte & PTE_V_MASK) && (pte & (PTE_R_MASK | PTE_X_MASK)) &&
                (pte & (PTE_R_MASK | PTE_W_MASK)) != PTE_W_MASK && !(pte & PTE_RESERVED_MASK) &&
                leaf_allows(pte, ctx, mxr, kind) &&
                !((PTE_PPN(pte) << 12) & ((1UL << (12 + 9 * level)) - 1))) {
                walk_found(w, host, pte, level, va, kind);
                return 0;
            }
        }
        return guest_walk_from(vcpu, va, kind, w, sh->walk_table, sh->walk_level);
    }
    int top = (satp >> SATP_MODE_SHIFT) == SATP_MODE_SV48 ? 3 : 2, bits = 12 + 9 * (top + 1);
    if ((long)(va << (64 - bits)) >> (64 - bits) != (long)va) {
        w->cause = fault_cause(kind, 0);        /* not a canonical address */
        return -1;
    }
    return guest_walk_from(vcpu, va, kind, w, (satp & SATP_PPN_MASK) << 12, top);
}

/* ---- shadow entries ---- */

/* The leaf entry for va under root (tables made on the way when `make`), and in *pointer the
 * level-1 entry pointing at its table; 0 when there is none (or the pool is dry). */
static unsigned long *shadow_leaf_slot(struct vm *vm, unsigned long *root, unsigned long va, int make,
                                       unsigned long **pointer)
{
    unsigned long *table = root;
    for (int level = 3; level > 0; level--) {
        unsigned long *entry = &table[(va >> (12 + 9 * level)) & 511];
        *pointer = entry;
        if (!(*entry & PTE_V_MASK)) {
            if (!make)
                return 0;
            unsigned long *next = shadow_page(vm);
            if (!next)
                return 0;
            *entry = table_pte(next);
        }
        table = (unsigned long *)(PTE_PPN(*entry) << 12);
    }
    return &table[(va >> 12) & 511];
}

/* Map the page at va (host page `host`, the VM's RAM) for the vCPU's context after a successful
 * walk.  0, or -1 when it cannot be mapped (the hypervisor's alias slot). */
static inline __attribute__((always_inline)) int shadow_fill(struct vcpu *vcpu, unsigned long va,
                                                             struct walk *w, unsigned long host)
{
    struct vm *vm = vcpu->vm;
    if (((va >> 39) & 511) == ALIAS_SLOT && (long)va >= 0)
        return -1;
    unsigned long satp = current_satp(vcpu);
    unsigned set_index = vcpu->vh.last_set;
    unsigned long flags = PTE_V_MASK | PTE_U_MASK | PTE_A_MASK | PTE_D_MASK;
    if (w->shadow_flags) {
        flags = w->shadow_flags;    /* a remembered superpage's (remember_leaf) */
        if (flags & SHADOW_GIGA)
            shadows[vm->id].sets[set_index].giga = 1;
    } else if (w->level < 0) {
        flags |= PTE_R_MASK | PTE_W_MASK | PTE_X_MASK;      /* bare: all of RAM, all ways */
    } else {
        /* leaf_allows for the three kinds at once: the context may use the page at all (U
         * bit, SUM), then R (or X with MXR), W once D is set, X never for S on a U page */
        unsigned long pte = w->pte;
        int ctx = context_of(vcpu), user = (pte & PTE_U_MASK) != 0;
        if (ctx == CTX_U ? user : (!user || ctx == CTX_S_SUM)) {
            if ((pte & PTE_R_MASK) ||
                ((vcpu->vh.sstatus & SSTATUS_MXR_MASK) && (pte & PTE_X_MASK)))
                flags |= PTE_R_MASK;
            if ((pte & (PTE_W_MASK | PTE_D_MASK)) == (PTE_W_MASK | PTE_D_MASK))
                flags |= PTE_W_MASK | PTE_R_MASK;
            if ((pte & PTE_X_MASK) && (ctx == CTX_U || !user))
                flags |= PTE_X_MASK;
        }
        if (w->level >= 2) {
            flags |= SHADOW_GIGA;
            shadows[vm->id].sets[set_index].giga = 1;
        }
        w->shadow_flags = flags;
    }
    struct shadow *sh = &shadows[vm->id];
    unsigned long root = (satp & SATP_PPN_MASK) << 12, *slot = 0;
    if (sh->leaf_table && sh->leaf_root == root && sh->leaf_region == va >> 21) {
        slot = &sh->leaf_table[(va >> 12) & 511];
    } else if (satp) {
        unsigned long *pointer;
        slot = shadow_leaf_slot(vm, (unsigned long *)root, va, 1, &pointer);
        if (slot) {
            /* Every fill into one shadow leaf table comes from the same level of the guest's
             * table (a change of that structure is a non-leaf change, which needs a full fence,
             * 4.2.1): marked once, here, where the table is found, and never on the cached path */
            if (w->level > 0)
                *pointer |= SHADOW_MEGA;
            sh->leaf_table = slot - ((va >> 12) & 511);
            sh->leaf_root = root;
            sh->leaf_region = va >> 21;
        }
    }
    if (!slot) {
        /* the pool is dry: start over (the fault comes again and is filled then) */
        vm->stats[HYP_STAT_SHADOW_FLUSH_FULL]++;
        shadow_reset(vm);
        return 0;
    }
    *slot = LEAF(host, flags);
    __asm__ __volatile__("sfence.vma %0, %1" ::"r"(va), "r"((satp & SATP_ASID_MASK) >> SATP_ASID_SHIFT)
                         : "memory");
    vm->stats[HYP_STAT_SHADOW_FILL]++;
    return 0;
}

/* sfence.vma from the guest (4.2.1): with an address, that page's shadow entry in every root,
 * or the 2 MiB around it where the shadow leaf table holds pieces of a guest superpage (so it
 * goes whole; a fence with an address orders only the leaf PTE of that address, so a 4 KiB
 * guest leaf changed only that page); without, everything. */
static __attribute__((noinline)) void guest_sfence(struct vcpu *vcpu, unsigned long va, int has_va,
                                                  unsigned long asid, int has_asid)
{
    struct vm *vm = vcpu->vm;
    struct shadow *sh = &shadows[vm->id];
    sh->walk_satp = 0;              /* the cached walk entries go with any fence */
    sh->leafc_satp = 0;
    if (!has_va && has_asid) {
        /* one address space: only the sets of that ASID (the others' translations, global
         * ones included, are not ordered by this fence, 4.2.1) */
        vm->stats[HYP_STAT_SHADOW_FLUSH_FULL]++;
        for (unsigned i = 0; i < SHADOW_SETS; i++) {
            struct shadow_set *set = &sh->sets[i];
            if (set->valid && ((set->satp & SATP_ASID_MASK) >> SATP_ASID_SHIFT) == asid) {
                flush_set(vm, i);
                set->valid = 0;
            }
        }
        return;
    }
    if (!has_va) {
        vm->stats[HYP_STAT_SHADOW_FLUSH_FULL]++;
        shadow_reset(vm);
        return;
    }
    vm->stats[HYP_STAT_SHADOW_FLUSH_PAGE]++;
    sh->leaf_table = 0;
    for (unsigned i = 0; i < SHADOW_SETS; i++) {
        struct shadow_set *set = &sh->sets[i];
        if (!set->valid)
            continue;
        if (set->giga) {            /* a guest 1 GiB page may be spread over many tables */
            flush_set(vm, i);
            continue;
        }
        for (unsigned ctx = 0; ctx < NCTX; ctx++) {
            if (!set->roots[ctx])
                continue;
            unsigned long *table = (unsigned long *)set->roots[ctx];
            unsigned long *entry = 0;
            for (int level = 3; level >= 1; level--) {
                entry = &table[(va >> (12 + 9 * level)) & 511];
                if (!(*entry & PTE_V_MASK) || (level == 3 && ((va >> 39) & 511) == ALIAS_SLOT)) {
                    entry = 0;
                    break;
                }
                if (level > 1)
                    table = (unsigned long *)(PTE_PPN(*entry) << 12);
            }
            /* entry: the level-1 pointer to the 2 MiB's leaf table.  None: nothing of that
             * region is mapped, so nothing of it is cached (a fill fences its own page) */
            if (!entry)
                continue;
            unsigned long *leaf_table = (unsigned long *)(PTE_PPN(*entry) << 12);
            unsigned long asid = asid_of(vm, i, ctx);
            if (*entry & SHADOW_MEGA) {
                free_table(sh, leaf_table, 0);
                *entry = 0;
                __asm__ __volatile__("sfence.vma zero, %0" ::"r"(asid) : "memory");
            } else if (leaf_table[(va >> 12) & 511]) {
                leaf_table[(va >> 12) & 511] = 0;
                __asm__ __volatile__("sfence.vma %0, %1" ::"r"(va), "r"(asid) : "memory");
            }
        }
    }
}

/* ---- the virtual hart ---- */

static unsigned long pending_bits(const struct vcpu *vcpu)
{
    unsigned long pending = vcpu->vh.sip & (MIP_SSIP_MASK | MIP_SEIP_MASK);
    if (read_time() >= vcpu->vh.stimecmp)
        pending |= MIP_STIP_MASK;
    return pending;
}

/* ---- F and D on the virtual hart (3.1.6.6) ---- */

#define FS_CLEAN    ((unsigned long)EXTENSION_STATE_CLEAN << SSTATUS_FS_SHIFT)

/* A real FS found Dirty (the guest wrote f registers or fcsr since the last look): the virtual
 * FS becomes Dirty unless the guest has turned it Off since, the registers need saving, and
 * the real FS is Clean again so that the next write is seen too.  regs.sstatus is the real
 * sstatus as the last full exit saved it.  Done where the virtual sstatus is read (csr_get,
 * trap_enter before pv_push) and when the vCPU gives the hart up. */
static inline void fp_fold(struct vcpu *vcpu)
{
    if ((vcpu->regs.sstatus & SSTATUS_FS_MASK) != SSTATUS_FS_MASK)
        return;
    if (vcpu->vh.sstatus & SSTATUS_FS_MASK)
        vcpu->vh.sstatus |= SSTATUS_FS_MASK;
    vcpu->vh.fp_unsaved = 1;
    vcpu->regs.sstatus = (vcpu->regs.sstatus & ~SSTATUS_FS_MASK) | FS_CLEAN;
}

/* The real FS the guest runs with: Off exactly when the virtual FS is Off, else Clean (a Dirty
 * one would hide the guest's next write). */
static inline void fp_follow(struct vcpu *vcpu)
{
    unsigned long fs = vcpu->vh.sstatus & SSTATUS_FS_MASK ? FS_CLEAN : 0;
    vcpu->regs.sstatus = (vcpu->regs.sstatus & ~SSTATUS_FS_MASK) | fs;
}

static unsigned long read_sstatus(const struct vcpu *vcpu)
{
    unsigned long s = vcpu->vh.sstatus | 2UL << SSTATUS_UXL_SHIFT;
    if ((s & SSTATUS_FS_MASK) == SSTATUS_FS_MASK)
        s |= SSTATUS_SD_MASK;
    return s;
}

/* Take a trap into the guest's S-mode (4.1.1, 4.1.2). */
static void enter_trap(struct vcpu *vcpu, unsigned long cause, unsigned long tval)
{
    struct vhart *vh = &vcpu->vh;
    if (vcpu->vm->spec == SPEC_1_9_1)
        cause = legacy_cause(cause);
    unsigned long s = vh->sstatus & ~(SSTATUS_SPP_MASK | SSTATUS_SPIE_MASK | SSTATUS_SIE_MASK);
    if (vh->sstatus & SSTATUS_SIE_MASK)
        s |= SSTATUS_SPIE_MASK;
    if (vh->priv == VPRIV_S)
        s |= SSTATUS_SPP_MASK;
    vh->sstatus = s;
    vh->sepc = vcpu->regs.sepc;
    vh->scause = cause;
    vh->stval = tval;
    vh->priv = VPRIV_S;
    vh->traps_entered++;
    unsigned long base = vh->stvec & ~3UL;
    if ((cause & MCAUSE_INTERRUPT_MASK) && (vh->stvec & 3) == 1)
        base += 4 * (cause & ~MCAUSE_INTERRUPT_MASK);
    vcpu->regs.sepc = base;
}

static void trap_inject_exception(struct vcpu *vcpu, unsigned long cause, unsigned long tval)
{
    enter_trap(vcpu, cause, tval);
}

static void forward(struct vcpu *vcpu, unsigned long cause, unsigned long tval)
{
    vcpu->vm->stats[HYP_STAT_FORWARDED]++;
    enter_trap(vcpu, cause, tval);
}

/* Deliver the highest-priority interrupt the guest can take now (SEI, SSI, STI: 3.1.9). */
static inline void deliver_interrupts(struct vcpu *vcpu)
{
    struct vhart *vh = &vcpu->vh;
    if (!vh->sie || (vh->priv == VPRIV_S && !(vh->sstatus & SSTATUS_SIE_MASK)))
        return;
    unsigned long ready = pending_bits(vcpu) & vh->sie;
    if (!ready)
        return;
    unsigned long code = ready & MIP_SEIP_MASK   ? INTERRUPT_SUPERVISOR_EXTERNAL
                       : ready & MIP_SSIP_MASK ? INTERRUPT_SUPERVISOR_SOFTWARE
                                               : INTERRUPT_SUPERVISOR_TIMER;
    vcpu->vm->stats[HYP_STAT_INJECTED_INTERRUPTS]++;
    enter_trap(vcpu, MCAUSE_INTERRUPT_MASK | code, 0);
}


static unsigned long trap_run_deadline(struct vcpu *vcpu);

/* Every return into the guest: its interrupts, its shadow root, its counters, its timer.  The
 * usual case (nothing pending, same address space, same deadline) is kept short. */
static __attribute__((noinline)) void enter_slow(struct vcpu *vcpu)
{
    struct vm *vm = vcpu->vm;
    struct vhart *vh = &vcpu->vh;
    deliver_interrupts(vcpu);
    unsigned long satp = current_satp(vcpu);
    if (!satp) {                    /* the pool is dry: start over */
        vm->stats[HYP_STAT_SHADOW_FLUSH_FULL]++;
        shadow_reset(vm);
        satp = shadow_satp(vcpu);
    }
    vcpu->regs.satp = satp;
    unsigned long deadline = trap_run_deadline(vcpu);
    if (deadline != vh->last_deadline) {
        vh->last_deadline = deadline;
        sched_rearm(deadline);
    }
}

static void trap_enter(struct vcpu *vcpu)
{
    struct vhart *vh = &vcpu->vh;
    /* the real FS as it should be (fp_follow), else the real one was Dirty or the virtual one
     * changed: folded in, then followed.  Before pv_push, which writes the virtual sstatus */
    if ((vcpu->regs.sstatus & SSTATUS_FS_MASK) != (vh->sstatus & SSTATUS_FS_MASK ? FS_CLEAN : 0)) {
        fp_fold(vcpu);
        fp_follow(vcpu);
    }
    /* the guest's U-mode reads the counters its kernel allows; its kernel reads them all */
    csr_write(CSR_SCOUNTEREN, vh->priv == VPRIV_S ? 0xffffffffUL : vh->scounteren);
    /* the usual case: no interrupt enabled, the same address space and context, the same
     * deadline (nothing enabled: none) */
    if (vh->sie || !vh->last_real_satp || vh->last_guest_satp != vh->satp ||
        vh->last_ctx != context_of(vcpu) || vh->last_generation != vcpu->vm->shadow_generation ||
        vh->last_deadline != ~0UL) {
        enter_slow(vcpu);
        return;
    }
    vcpu->regs.satp = vh->last_real_satp;
}

static int trap_init_vm(struct vm *vm)
{
    static const unsigned short numbers[] = {HYP_TRAP_CSR_NUMBERS};
    _Static_assert(sizeof(numbers) > 2 * TRAP_CSR_SSCRATCH_SLOT, "TRAP_CSRS");
    if (numbers[TRAP_CSR_SSCRATCH_SLOT] != CSR_SSCRATCH || numbers[TRAP_CSR_SSCRATCH_SLOT + 3] != CSR_STVAL ||
        numbers[TRAP_CSR_SSTATUS_SLOT] != CSR_SSTATUS)
        hyp_panic("hyp: asm_offsets.h: TRAP_CSR_SSCRATCH_SLOT is not sscratch's place\n");
    extern char _start[];
    if (!hyp_root) {
        build_hyp_root();
        hyp_fast_csr = 1;
    }
    unsigned long stats = (unsigned long)vm->stats;
    if (stats < ((unsigned long)_start & ~0x1fffffUL) || stats + HYP_STATS_SLOT_WORDS * 8 > 0x84000000UL)
        hyp_fast_csr = 0;
    struct shadow *sh = &shadows[vm->id];
    unsigned long pool = (unsigned long)hyp_alloc_pages(SHADOW_POOL * PAGE, PAGE);
    for (unsigned i = 0; i < SHADOW_POOL; i++)
        sh->free_pages[i] = pool + i * PAGE;
    sh->nfree = SHADOW_POOL;
    if (vm->spec == SPEC_1_9_1)
        return legacy_init_vm(vm);
    return 0;
}

static void trap_reset(struct vcpu *vcpu, unsigned long pc, unsigned long a0, unsigned long a1)
{
    memset(&vcpu->regs, 0, sizeof(vcpu->regs));
    memset(&vcpu->vh, 0, sizeof(vcpu->vh));
    vcpu->regs.x[10] = a0;
    vcpu->regs.x[11] = a1;
    vcpu->regs.sepc = pc;
    /* the real hart returns to U-mode (SPP = 0) with FS Off, as the virtual FS starts */
    vcpu->regs.sstatus = SSTATUS_SPIE_MASK;
    vcpu->regs.hstatus = 0;                 /* SPV = 0 on a hart with H: V stays 0 */
    vcpu->vh.priv = VPRIV_S;
    vcpu->vh.stimecmp = ~0UL;
    if (vcpu->vm->spec == SPEC_1_9_1)
        legacy_reset(vcpu);
}

static void trap_resume(struct vcpu *vcpu)
{
    unsigned long pc = vcpu->resume_pc, opaque = vcpu->resume_opaque;
    memset(&vcpu->regs.x, 0, sizeof(vcpu->regs.x));
    vcpu->regs.x[10] = vcpu->id;
    vcpu->regs.x[11] = opaque;
    vcpu->regs.sepc = pc;
    vcpu->vh.priv = VPRIV_S;
    vcpu->vh.satp = 0;
    vcpu->vh.sstatus &= ~SSTATUS_SIE_MASK;
    vcpu->resume_pending = 0;
}

/* Everything else lives in the vCPU (trap_enter sets satp, scounteren and the real FS); the f
 * registers are the hart's, loaded every time as hw_load does (another VM may have used them) */
static void trap_load(struct vcpu *vcpu)
{
    csr_set(CSR_SSTATUS, SSTATUS_FS_MASK);
    fp_load(vcpu);
}

static void trap_save(struct vcpu *vcpu)
{
    fp_fold(vcpu);
    if (vcpu->vh.fp_unsaved) {
        csr_set(CSR_SSTATUS, SSTATUS_FS_MASK);
        fp_save(vcpu);
        vcpu->vh.fp_unsaved = 0;
    }
}

static int trap_pending_interrupt(struct vcpu *vcpu)
{
    return (pending_bits(vcpu) & vcpu->vh.sie) != 0;
}

static unsigned long trap_timer_deadline(struct vcpu *vcpu)
{
    return vcpu->vh.sie & MIP_STIP_MASK ? vcpu->vh.stimecmp : ~0UL;
}

/* While it runs: the timer only when the guest could take it now (else a past deadline would
 * interrupt it over and over); enabling it later is a CSR write, which exits. */
static unsigned long trap_run_deadline(struct vcpu *vcpu)
{
    struct vhart *vh = &vcpu->vh;
    if (!(vh->sie & MIP_STIP_MASK) || (vh->priv == VPRIV_S && !(vh->sstatus & SSTATUS_SIE_MASK)))
        return ~0UL;
    return vh->stimecmp;
}

static void trap_set_timer(struct vcpu *vcpu, unsigned long when)
{
    vcpu->vh.stimecmp = when;
}

static void trap_raise_ssip(struct vcpu *vcpu)
{
    vcpu->vh.sip |= MIP_SSIP_MASK;
}

static void trap_clear_ssip(struct vcpu *vcpu)
{
    vcpu->vh.sip &= ~MIP_SSIP_MASK;
}

static void trap_flush_guest_tlb(struct vcpu *vcpu)
{
    vcpu->vm->stats[HYP_STAT_SHADOW_FLUSH_FULL]++;
    shadow_reset(vcpu->vm);
}

static long trap_guest_load(struct vcpu *vcpu, unsigned long va, int kind)
{
    struct walk w;
    unsigned long host;
    int width = kind == 0 ? 2 : 1;
    if (guest_walk(vcpu, va, kind == 0 ? ACCESS_FETCH : ACCESS_LOAD, &w) < 0 ||
        gpa_to_host(vcpu->vm, w.gpa, (unsigned long)width, &host) < 0)
        return -1;
    return kind == 0 ? (long)*(volatile uint16_t *)host : (long)*(volatile uint8_t *)host;
}

/* ---- CSR emulation ---- */


/* Read an S CSR of the virtual hart; -1 when it has no such CSR. */
static int csr_get(struct vcpu *vcpu, unsigned csr, unsigned long *value)
{
    struct vhart *vh = &vcpu->vh;
    int legacy = vcpu->vm->spec == SPEC_1_9_1;
    if (legacy && !legacy_csr_exists(csr))
        return -1;
    switch (csr) {
    case CSR_SSTATUS:
        fp_fold(vcpu);      /* a Dirty real FS since the last look: the virtual one too */
        *value = read_sstatus(vcpu);
        break;
    case CSR_SIE: *value = vh->sie; break;
    case CSR_STVEC: *value = vh->stvec; break;
    case CSR_SCOUNTEREN: *value = vh->scounteren; break;
    case CSR_SENVCFG: *value = vh->senvcfg; break;
    case CSR_SSCRATCH: *value = vh->sscratch; break;
    case CSR_SEPC: *value = vh->sepc; break;
    case CSR_SCAUSE: *value = vh->scause; break;
    case CSR_STVAL: *value = vh->stval; break;
    case CSR_SIP: *value = pending_bits(vcpu); break;
    case CSR_STIMECMP: *value = vh->stimecmp; break;
    case CSR_SATP: *value = vh->satp; break;
    default: return -1;
    }
    if (legacy)
        *value = legacy_csr_read(vcpu, csr, *value);
    return 0;
}

/* Write one, legalized as a hart of its own would (WARL fields). */
static __attribute__((noinline)) void csr_put(struct vcpu *vcpu, unsigned csr, unsigned long value)
{
    struct vhart *vh = &vcpu->vh;
    if (vcpu->vm->spec == SPEC_1_9_1)
        legacy_csr_write(vcpu, &csr, &value);
    switch (csr) {
    case CSR_SSTATUS:
        /* MXR off takes effect at once (no sfence.vma on a hart): leaves made readable by it go */
        if ((vh->sstatus & SSTATUS_MXR_MASK) && !(value & SSTATUS_MXR_MASK))
            flush_all(vcpu->vm);
        vh->sstatus = value & SSTATUS_WRITABLE;
        fp_follow(vcpu);    /* FS Off makes FP illegal at once, on makes it legal */
        break;
    case CSR_SIE: vh->sie = value & SIE_WRITABLE; break;
    case CSR_STVEC: vh->stvec = value & ~2UL; break;        /* modes 0 and 1 */
    case CSR_SCOUNTEREN: vh->scounteren = value & 0xffffffffUL; break;
    case CSR_SENVCFG: vh->senvcfg = value & 1; break;       /* FIOM */
    case CSR_SSCRATCH: vh->sscratch = value; break;
    case CSR_SEPC: vh->sepc = value & ~1UL; break;
    case CSR_SCAUSE: vh->scause = value; break;
    case CSR_STVAL: vh->stval = value; break;
    case CSR_SIP: vh->sip = (vh->sip & ~MIP_SSIP_MASK) | (value & MIP_SSIP_MASK); break;
    case CSR_STIMECMP: vh->stimecmp = value; break;
    case CSR_SATP: {
        unsigned long mode = value >> SATP_MODE_SHIFT;
        if (mode == SATP_MODE_BARE)
            vh->satp = 0;
        else if (mode == SATP_MODE_SV39 || mode == SATP_MODE_SV48)
            vh->satp = value;       /* a mode it lacks: the write is ignored (4.1.11) */
        break;
    }
    }
}

/* Its place in the stats' CSR list (rvh/hyp.py TRAP_CSRS), found once per CSR number. */
static unsigned char csr_slot[4096];

static __attribute__((noinline)) void count_csr_first(unsigned csr)
{
    static const unsigned short numbers[] = {HYP_TRAP_CSR_NUMBERS};
    unsigned i = 0;
    while (i < HYP_TRAP_CSR_COUNT && numbers[i] != csr)
        i++;
    csr_slot[csr] = (unsigned char)(i + 1);
}

static inline void count_csr(struct vm *vm, unsigned csr)
{
    if (!csr_slot[csr])
        count_csr_first(csr);
    vm->stats[HYP_STAT_CSR_BY_NUMBER + csr_slot[csr] - 1]++;
}

/* csrrw/csrrs/csrrc and the immediate forms on the virtual hart; -1 when illegal there. */
static int emulate_csr(struct vcpu *vcpu, uint32_t insn)
{
    unsigned funct3 = (insn >> 12) & 7, rd = (insn >> 7) & 31, rs1 = (insn >> 15) & 31;
    unsigned csr = insn >> 20;
    unsigned long old, operand = funct3 & 4 ? rs1 : (rs1 ? vcpu->regs.x[rs1] : 0);
    int writes = (funct3 & 3) == 1 || rs1 != 0;
    if (csr_get(vcpu, csr, &old) < 0)
        return -1;
    if (writes) {
        unsigned long value = (funct3 & 3) == 1 ? operand
                            : (funct3 & 3) == 2 ? old | operand
                                                : old & ~operand;
        csr_put(vcpu, csr, value);
    }
    if (rd)
        vcpu->regs.x[rd] = old;
    vcpu->vm->stats[HYP_STAT_CSR]++;
    count_csr(vcpu->vm, csr);
    vcpu->regs.sepc += 4;
    return 0;
}

/* An illegal instruction from the guest's S-mode: one of the privileged ones, emulated, or
 * forwarded as the illegal instruction it is. */
static __attribute__((noinline)) void privileged_instruction(struct vcpu *vcpu, uint32_t insn)
{
    struct vm *vm = vcpu->vm;
    struct vhart *vh = &vcpu->vh;
    if (vm->spec == SPEC_1_9_1 && legacy_instruction(vcpu, insn))
        return;
    if ((insn & 0x7f) == 0x73 && ((insn >> 12) & 7) != 0 && ((insn >> 12) & 7) != 4) {
        if (emulate_csr(vcpu, insn) == 0)
            return;
    } else if (insn == 0x10200073) {                    /* sret (3.3.2) */
        vm->stats[HYP_STAT_SRET]++;
        vh->priv = vh->sstatus & SSTATUS_SPP_MASK ? VPRIV_S : VPRIV_U;
        unsigned long s = vh->sstatus & ~(SSTATUS_SIE_MASK | SSTATUS_SPP_MASK);
        if (vh->sstatus & SSTATUS_SPIE_MASK)
            s |= SSTATUS_SIE_MASK;
        vh->sstatus = s | SSTATUS_SPIE_MASK;
        vcpu->regs.sepc = vh->sepc;
        return;
    } else if ((insn & 0xfe007fff) == 0x12000073) {     /* sfence.vma rs1, rs2 */
        unsigned rs1 = (insn >> 15) & 31, rs2 = (insn >> 20) & 31;
        vm->stats[HYP_STAT_SFENCE]++;
        guest_sfence(vcpu, rs1 ? vcpu->regs.x[rs1] : 0, rs1 != 0,
                     rs2 ? vcpu->regs.x[rs2] & 0xffff : 0, rs2 != 0);
        vcpu->regs.sepc += 4;
        return;
    } else if (insn == INSN_WFI) {
        vm->stats[HYP_STAT_WFI]++;
        vcpu->regs.sepc += 4;
        vcpu_wait(vcpu);
        return;
    }
    vm->stats[HYP_STAT_ILLEGAL]++;
    forward(vcpu, CAUSE_ILLEGAL_INSTRUCTION, insn);
}

/* ---- exits ---- */

/* What a remembered superpage's permissions depend on: the privilege, sstatus.SUM and MXR. */
static inline unsigned long leaf_mode(const struct vhart *vh)
{
    return vh->priv | (vh->sstatus & (SSTATUS_SUM_MASK | SSTATUS_MXR_MASK));
}

/* A fault inside the superpage the last walk found, for the same context: its translation
 * without a walk (A is set already; D too when a store is allowed).  1 with w filled. */
static inline int walk_cached_leaf(struct vcpu *vcpu, unsigned long va, enum access_kind kind,
                                   struct walk *w)
{
    const struct shadow *sh = &shadows[vcpu->vm->id];
    if (sh->leafc_satp != vcpu->vh.satp || sh->leafc_region != va >> sh->leafc_shift ||
        !((sh->leafc_kinds >> kind) & 1) || sh->leafc_mode != leaf_mode(&vcpu->vh))
        return 0;
    w->pte = sh->leafc_pte;
    w->pte_host = sh->leafc_host;
    w->level = sh->leafc_level;
    w->shadow_flags = sh->leafc_flags;
    w->superpage = 0;               /* (kept already) */
    w->gpa = sh->leafc_base + (va & sh->leafc_mask);
    return 1;
}

/* After a walk that found a superpage leaf and its fill: keep both for the next fault in the
 * same superpage. */
static __attribute__((noinline)) void remember_leaf(struct vcpu *vcpu, unsigned long va,
                                                    const struct walk *w)
{
    struct shadow *sh = &shadows[vcpu->vm->id];
    int ctx = context_of(vcpu), mxr = (vcpu->vh.sstatus >> SSTATUS_MXR_SHIFT) & 1;
    sh->leafc_satp = vcpu->vh.satp;
    sh->leafc_shift = 12 + 9 * w->level;
    sh->leafc_region = va >> sh->leafc_shift;
    sh->leafc_mask = (1UL << sh->leafc_shift) - 1;
    sh->leafc_base = PTE_PPN(w->pte) << 12;
    sh->leafc_pte = w->pte;
    sh->leafc_host = w->pte_host;
    sh->leafc_level = w->level;
    sh->leafc_mode = leaf_mode(&vcpu->vh);
    sh->leafc_flags = w->shadow_flags;
    sh->leafc_kinds = 0;
    for (int kind = ACCESS_FETCH; kind <= ACCESS_STORE; kind++)
        if (leaf_allows(w->pte, ctx, mxr, (enum access_kind)kind) &&
            (kind != ACCESS_STORE || (w->pte & PTE_D_MASK)))
            sh->leafc_kinds |= 1 << kind;
}

static __attribute__((noinline)) void page_fault(struct vcpu *vcpu, unsigned long scause, unsigned long va)
{
    struct vm *vm = vcpu->vm;
    enum access_kind kind = scause == CAUSE_INSTRUCTION_PAGE_FAULT ? ACCESS_FETCH
                          : scause == CAUSE_LOAD_PAGE_FAULT        ? ACCESS_LOAD
                                                                   : ACCESS_STORE;
    struct walk w;
    unsigned long host;
    if (vcpu->vh.satp == 0) {               /* bare: no table to walk */
        w.gpa = va;
        w.level = -1;
        w.shadow_flags = 0;
        w.superpage = 0;
    } else if (walk_cached_leaf(vcpu, va, kind, &w)) {
        /* the superpage of the last walk: no walk */
    } else if (guest_walk(vcpu, va, kind, &w) < 0) {
        if (w.cause == fault_cause(kind, 1))
            vm->stats[HYP_STAT_INJECTED_FAULTS]++;  /* its walk left its RAM */
        forward(vcpu, w.cause, va);          /* the guest's own tables say no */
        return;
    }
    if (gpa_to_host(vm, w.gpa & ~(PAGE - 1), PAGE, &host) == 0) {
        if (shadow_fill(vcpu, va, &w, host) < 0)
            forward(vcpu, scause, va);       /* the hypervisor's alias slot: refused */
        else if (w.superpage)
            remember_leaf(vcpu, va, &w);
        return;
    }
    if (kind != ACCESS_FETCH && mmio_emulate(vcpu, w.gpa, kind == ACCESS_STORE, 0) == 0) {
        vm->stats[HYP_STAT_MMIO]++;
        return;
    }
    /* nothing at that guest-physical address: an access fault, as on its own hart (3.7.1) */
    vm->stats[HYP_STAT_INJECTED_FAULTS]++;
    forward(vcpu, fault_cause(kind, 1), va);
}

static __attribute__((noinline)) void other_exit(struct vcpu *vcpu, unsigned long scause,
                                                 unsigned long stval);

static void trap_handle_exit(struct vcpu *vcpu, unsigned long scause, unsigned long stval)
{
    /* the most frequent exit first, with nothing else in its way: a CSR access of the kernel */
    uint32_t insn = (uint32_t)stval;
    if (scause == CAUSE_ILLEGAL_INSTRUCTION && vcpu->vh.priv == VPRIV_S && (insn & 0x7f) == 0x73 &&
        ((insn >> 12) & 3) != 0 && emulate_csr(vcpu, insn) == 0)
        return;
    if (scause == CAUSE_LOAD_PAGE_FAULT || scause == CAUSE_STORE_PAGE_FAULT ||
        scause == CAUSE_INSTRUCTION_PAGE_FAULT) {
        page_fault(vcpu, scause, stval);    /* the next most frequent: shadow misses */
        return;
    }
    other_exit(vcpu, scause, stval);
}

static void other_exit(struct vcpu *vcpu, unsigned long scause, unsigned long stval)
{
    struct vm *vm = vcpu->vm;
    switch (scause) {
    case CAUSE_ECALL_FROM_U:
        if (vcpu->vh.priv == VPRIV_S) {
            vm->stats[HYP_STAT_ECALL]++;
            sbi_dispatch(vcpu);
        } else {
            forward(vcpu, CAUSE_ECALL_FROM_U, 0);
        }
        break;
    case CAUSE_INSTRUCTION_PAGE_FAULT:
    case CAUSE_LOAD_PAGE_FAULT:
    case CAUSE_STORE_PAGE_FAULT:
        page_fault(vcpu, scause, stval);
        break;
    case CAUSE_ILLEGAL_INSTRUCTION: {
        if (!(vcpu->regs.sstatus & SSTATUS_FS_MASK) && (vcpu->vh.sstatus & SSTATUS_FS_MASK)) {
            /* the virtual FS was turned on without the real one following (a pv guest's
             * store in its page): FP is legal now, the instruction runs again */
            fp_follow(vcpu);
            break;
        }
        /* the instruction: stval when the hart (or firmware) gives it, else read it */
        uint32_t insn = (uint32_t)stval;
        if (insn == 0)
            insn = vcpu_fetch_insn(vcpu, vcpu->regs.sepc);
        if (vcpu->vh.priv == VPRIV_S) {
            privileged_instruction(vcpu, insn);
        } else {
            vm->stats[HYP_STAT_ILLEGAL]++;
            forward(vcpu, CAUSE_ILLEGAL_INSTRUCTION, insn);
        }
        break;
    }
    case CAUSE_INSTRUCTION_ADDRESS_MISALIGNED:
    case CAUSE_BREAKPOINT:
    case CAUSE_LOAD_ADDRESS_MISALIGNED:
    case CAUSE_STORE_ADDRESS_MISALIGNED:
        forward(vcpu, scause, stval);
        break;
    case CAUSE_INSTRUCTION_ACCESS_FAULT:
    case CAUSE_LOAD_ACCESS_FAULT:
    case CAUSE_STORE_ACCESS_FAULT:
        vm->stats[HYP_STAT_INJECTED_FAULTS]++;
        forward(vcpu, scause, stval);
        break;
    default:
        printf("hyp: %s: unexpected exception scause=%lu sepc=0x%lx stval=0x%lx\n", vm->name,
               scause, vcpu->regs.sepc, stval);
        vm_shutdown(vm, 126, "unexpected exception");
    }
}

/* ---- for pv mode (pv.c), which is trap mode with hypercalls ---- */

void trap_sfence_vma(struct vcpu *vcpu, unsigned long va, int has_va, unsigned long asid,
                     int has_asid)
{
    vcpu->vm->stats[HYP_STAT_SFENCE]++;
    guest_sfence(vcpu, va, has_va, asid & 0xffff, has_asid);
}

/* A PTE of the VM changed by the hypervisor's hand (pv MMU_UPDATE): the cached walk goes. */
void trap_walk_forget(struct vm *vm)
{
    shadows[vm->id].walk_satp = 0;
    shadows[vm->id].leafc_satp = 0;
}

/* Enter va's page in the shadow table now, when the guest's table maps va through the PTE at
 * pte_host (host address) and the vCPU's current context may read it: 0 when entered.  The
 * caller has checked that the PTE is a leaf with A set, so the walk changes nothing. */
int trap_shadow_prefill(struct vcpu *vcpu, unsigned long va, unsigned long pte_host)
{
    struct walk w;
    unsigned long host;
    if (guest_walk(vcpu, va, ACCESS_LOAD, &w) < 0 || w.level < 0 || w.pte_host != pte_host ||
        gpa_to_host(vcpu->vm, w.gpa & ~(PAGE - 1), PAGE, &host) < 0)
        return -1;
    return shadow_fill(vcpu, va, &w, host);
}

const struct virt_ops trap_ops = {
    .name = "trap",
    .init_vm = trap_init_vm,
    .reset_vcpu = trap_reset,
    .load = trap_load,
    .save = trap_save,
    .enter = trap_enter,
    .handle_exit = trap_handle_exit,
    .inject_exception = trap_inject_exception,
    .pending_interrupt = trap_pending_interrupt,
    .timer_deadline = trap_timer_deadline,
    .run_deadline = trap_run_deadline,
    .set_timer = trap_set_timer,
    .raise_ssip = trap_raise_ssip,
    .clear_ssip = trap_clear_ssip,
    .flush_guest_tlb = trap_flush_guest_tlb,
    .guest_load = trap_guest_load,
    .resume = trap_resume,
};

/*
 * vplic.c - each VM's PLIC (RISC-V PLIC specification 1.0.0, at QEMU virt's address and layout):
 * its registers are emulated on every access (a G-stage fault in hw mode, a shadow-table fault
 * in trap and pv modes, like the virtio registers), and a source pending and enabled above the
 * threshold of a hart's S-mode context (2 * hart + 1) raises that vCPU's supervisor external
 * interrupt: VSEIP in hvip for an hw vCPU (8.2.4), SEIP of the virtual hart for a trap or pv
 * vCPU (trap.c injects it).  Sources are level-triggered (the virtio devices' InterruptStatus
 * != 0), with the PLIC's gateway: a rise of the line while the source is not in service is a
 * request, pending until claimed even if the line falls meanwhile; a completion with the line
 * still high is a new one.  Edges (vplic_pulse: pv devices, assigned devices) latch the same way.
 */
#include "vio.h"
#include "rvh/libc.h"

#define WORDS           (PLIC_SOURCES / 32)
#define CONTEXTS        (2 * HYP_MAX_VCPUS)

struct vplic {
    uint32_t priority[PLIC_SOURCES];
    uint32_t level[WORDS], claimed[WORDS];
    uint32_t latched[WORDS];        /* requests (rises, vplic_pulse edges) not yet claimed */
    uint32_t enable[CONTEXTS][WORDS];
    uint32_t threshold[CONTEXTS];
    uint32_t prioritized[WORDS];    /* priority > 0 (one at 0 never interrupts nor is claimed) */
    unsigned enabled_words;         /* words past this have no source enabled in any context */
};

static struct vplic vplics[HYP_MAX_VMS];

static uint32_t pending_word(const struct vplic *p, unsigned w)
{
    return (p->level[w] | p->latched[w]) & ~p->claimed[w];
}

static unsigned lowest_bit(uint32_t bits)
{
    /* de Bruijn: the hart has no Zbb, and libgcc's __ctzdi2 costs a call and a table walk */
    static const uint8_t position[32] = {
        0, 1, 28, 2, 29, 14, 24, 3, 30, 22, 20, 15, 25, 17, 4, 8,
        31, 27, 13, 23, 21, 19, 16, 7, 26, 12, 18, 6, 11, 5, 10, 9,
    };
    return position[(uint32_t)((bits & -bits) * 0x077CB531u) >> 27];
}

/* The source a claim by context c returns: the highest priority pending and enabled (ties go to
 * the lowest number); 0 for none.  With respect_threshold, only above the context's threshold
 * (what raises the interrupt line). */
static unsigned best_source(const struct vplic *p, unsigned c, int respect_threshold)
{
    unsigned best = 0, best_priority = respect_threshold ? p->threshold[c] : 0;
    for (unsigned w = 0; w < p->enabled_words; w++) {
        uint32_t bits = pending_word(p, w) & p->enable[c][w] & p->prioritized[w];
        /* set bits only (this runs at every access of the VM's PLIC, twice per interrupt) */
        for (; bits; bits &= bits - 1) {
            unsigned irq = 32 * w + lowest_bit(bits);
            if (p->priority[irq] > best_priority) {
                best = irq;
                best_priority = p->priority[irq];
            }
        }
    }
    return best;
}

/* VSEIP of each vCPU follows its S-mode context's line */
static void update(struct vm *vm)
{
    struct vplic *p = &vplics[vm->id];
    for (unsigned h = 0; h < vm->nvcpus; h++) {
        struct vcpu *v = &vm->vcpus[h];
        int line = best_source(p, 2 * h + 1, 1) != 0;
        if (vm->mode != VIRT_HW) {
            /* trap and pv: the virtual hart's SEIP, delivered when the hypervisor next returns
             * into the guest (trap.c's deliver_interrupts), or ending its wfi */
            if (line)
                v->vh.sip |= MIP_SEIP_MASK;
            else
                v->vh.sip &= ~MIP_SEIP_MASK;
        } else if (v == sched_loaded_vcpu()) {     /* its hvip is in the CSR, not in v->vs */
            if (line)
                csr_set(CSR_HVIP, MIP_VSEIP_MASK);
            else
                csr_clear(CSR_HVIP, MIP_VSEIP_MASK);
        } else if (v->running_on >= 0) {   /* in another host hart's CSR: it applies this */
            v->hvip_set = line ? v->hvip_set | MIP_VSEIP_MASK : v->hvip_set & ~MIP_VSEIP_MASK;
            v->hvip_clear = line ? v->hvip_clear & ~MIP_VSEIP_MASK : v->hvip_clear | MIP_VSEIP_MASK;
        } else if (line) {
            v->vs.hvip |= MIP_VSEIP_MASK;
        } else {
            v->vs.hvip &= ~MIP_VSEIP_MASK;
        }
        if ((line || v->running_on >= 0) && v != sched_loaded_vcpu())
            vcpu_kick(v);           /* it runs on, or may wake, another host hart */
    }
}

void vplic_set_level(struct vm *vm, unsigned irq, int level)
{
    struct vplic *p = &vplics[vm->id];
    uint32_t bit = 1u << (irq % 32);
    if (irq == 0 || irq >= PLIC_SOURCES)
        return;
    if (level) {
        /* a rise the gateway passes on: latched, so the line falling before the claim (the
         * driver acknowledging the device first) leaves it pending, as on the machine PLIC */
        if (!(p->level[irq / 32] & bit) && !(p->claimed[irq / 32] & bit))
            p->latched[irq / 32] |= bit;
        p->level[irq / 32] |= bit;
    } else {
        p->level[irq / 32] &= ~bit;
    }
    update(vm);
}

void vplic_pulse(struct vm *vm, unsigned irq)
{
    struct vplic *p = &vplics[vm->id];
    if (irq == 0 || irq >= PLIC_SOURCES)
        return;
    p->latched[irq / 32] |= 1u << (irq % 32);
    update(vm);
}

/* A claim by context c (PLIC 1.0.0): the best pending and enabled source, now in service and
 * no longer pending; 0 for none, which changes nothing. */
static unsigned claim(struct vplic *p, unsigned c)
{
    unsigned irq = best_source(p, c, 0);
    if (irq) {
        p->claimed[irq / 32] |= 1u << (irq % 32);
        p->latched[irq / 32] &= ~(1u << (irq % 32));
    }
    return irq;
}

/* A completion by context c; whether it ended a source's service (one not enabled for the
 * context, or not in service, is ignored: PLIC 1.0.0). */
static int complete(struct vm *vm, struct vplic *p, unsigned c, uint32_t irq)
{
    uint32_t bit = 1u << (irq % 32);
    if (!irq || irq >= PLIC_SOURCES || !(p->enable[c][irq / 32] & bit) ||
        !(p->claimed[irq / 32] & bit))
        return 0;
    p->claimed[irq / 32] &= ~bit;
    pt_completed(vm, irq);          /* an assigned device's: end the machine's service */
    return 1;
}

/* The claim/complete register of an S-mode or M-mode context, 32-bit, from hw.c's fast path for
 * the two exits each interrupt of a VM's driver costs: what vio_plic_access does for it, without
 * the general decoding and dispatch, and with the lines recomputed only when the state changed
 * (a claim that answers 0 changes nothing).  -1: not that register, for the general path. */
int vplic_claim_complete(struct vm *vm, unsigned long offset, int is_store, unsigned long *value)
{
    struct vplic *p = &vplics[vm->id];
    unsigned long context_offset = offset - PLIC_CONTEXT_BASE;
    unsigned c = (unsigned)(context_offset / PLIC_CONTEXT_STRIDE);
    if (offset < PLIC_CONTEXT_BASE || context_offset % PLIC_CONTEXT_STRIDE != PLIC_CLAIM_COMPLETE ||
        c >= 2 * vm->nvcpus)
        return -1;
    vm->stats[HYP_STAT_PLIC_MMIO]++;
    int changed;
    if (is_store) {
        changed = complete(vm, p, c, (uint32_t)*value);
    } else {
        *value = claim(p, c);
        changed = *value != 0;
    }
    if (changed)
        update(vm);
    return 0;
}

int vio_plic_access(struct vm *vm, unsigned long offset, int is_store, int width,
                    unsigned long *value)
{
    struct vplic *p = &vplics[vm->id];
    unsigned contexts = 2 * vm->nvcpus;
    uint32_t v = (uint32_t)*value;
    vm->stats[HYP_STAT_PLIC_MMIO]++;
    if (!is_store)
        *value = 0;
    if (width != 4 || offset & 3)
        return 0;                   /* the PLIC's registers are 32-bit: others read 0, do nothing */
    if (offset < PLIC_PENDING_BASE) {
        unsigned irq = offset / 4;
        if (irq == 0 || irq >= PLIC_SOURCES)
            return 0;
        if (is_store) {
            p->priority[irq] = v & PLIC_PRIORITY_MASK;
            if (p->priority[irq])
                p->prioritized[irq / 32] |= 1u << (irq % 32);
            else
                p->prioritized[irq / 32] &= ~(1u << (irq % 32));
        } else {
            *value = p->priority[irq];
        }
    } else if (offset < PLIC_ENABLE_BASE) {
        unsigned w = (offset - PLIC_PENDING_BASE) / 4;
        if (!is_store && w < WORDS)
            *value = pending_word(p, w);
    } else if (offset < PLIC_CONTEXT_BASE) {
        unsigned c = (offset - PLIC_ENABLE_BASE) / PLIC_ENABLE_STRIDE;
        unsigned w = (offset - PLIC_ENABLE_BASE) % PLIC_ENABLE_STRIDE / 4;
        if (c >= contexts || w >= WORDS)
            return 0;
        if (is_store) {
            p->enable[c][w] = w == 0 ? v & ~1u : v;     /* source 0 does not exist */
            if (p->enable[c][w] && w >= p->enabled_words)
                p->enabled_words = w + 1;
        } else {
            *value = p->enable[c][w];
        }
    } else {
        unsigned c = (offset - PLIC_CONTEXT_BASE) / PLIC_CONTEXT_STRIDE;
        unsigned reg = (offset - PLIC_CONTEXT_BASE) % PLIC_CONTEXT_STRIDE;
        if (c >= contexts)
            return 0;
        if (reg == PLIC_THRESHOLD) {
            if (is_store)
                p->threshold[c] = v & PLIC_PRIORITY_MASK;
            else
                *value = p->threshold[c];
        } else if (reg == PLIC_CLAIM_COMPLETE) {
            if (is_store)
                complete(vm, p, c, v);
            else
                *value = claim(p, c);
        } else {
            return 0;
        }
    }
    update(vm);
    return 0;
}

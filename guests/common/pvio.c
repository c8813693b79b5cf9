/*
 * pvio.c - the platform I/O extension's driver library (pvio.h).
 */
#include "pvio.h"
#include "rvh/hw.h"

_Static_assert(__builtin_offsetof(struct pvio_ring, req_prod) == RVH_PVIO_RING_REQ_PROD, "ring");
_Static_assert(__builtin_offsetof(struct pvio_ring, rsp_prod) == RVH_PVIO_RING_RSP_PROD, "ring");
_Static_assert(__builtin_offsetof(struct pvio_ring, req_cons) == RVH_PVIO_RING_REQ_CONS, "ring");
_Static_assert(__builtin_offsetof(struct pvio_ring, error) == RVH_PVIO_RING_ERROR, "ring");
_Static_assert(__builtin_offsetof(struct pvio_ring, slot) == RVH_PVIO_RING_FIRST_SLOT, "ring");
_Static_assert(sizeof(struct pvio_slot) == SBI_RVH_PVIO_SLOT_SIZE, "slot");
_Static_assert(__builtin_offsetof(struct pvio_slot, addr) == RVH_PVIO_SLOT_ADDRESS, "slot");
_Static_assert(__builtin_offsetof(struct pvio_slot, len) == RVH_PVIO_SLOT_LENGTH, "slot");
_Static_assert(__builtin_offsetof(struct pvio_slot, op) == RVH_PVIO_SLOT_OP, "slot");
_Static_assert(__builtin_offsetof(struct pvio_slot, status) == RVH_PVIO_SLOT_STATUS, "slot");

/* PLIC registers (the board's, from rvh/encoding.h) */
#define PLIC_PRIO(irq)      (PLIC_BASE + PLIC_PRIORITY_BASE + 4UL * (irq))
#define PLIC_EN(ctx, irq)   (PLIC_BASE + PLIC_ENABLE_BASE + PLIC_ENABLE_STRIDE * (ctx) + \
                             4UL * ((irq) / 32))
#define PLIC_CTX(ctx)       (PLIC_BASE + PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * (ctx))
#define PLIC_S_CTX(hart)    (2UL * (hart) + 1)

static struct pvio_dev *irq_owner[PVIO_MAX_DEVS];
static uint8_t info[SBI_RVH_PVIO_INFO_SIZE] __attribute__((aligned(8)));

int pvio_count(void)
{
    struct sbiret r = sbi_probe_extension(SBI_EXT_RVH_PVIO);
    if (r.error || !r.value)
        return 0;
    r = sbi_ecall(SBI_EXT_RVH_PVIO, SBI_RVH_PVIO_DEVICE_INFO, 0, (uintptr_t)info, 0, 0, 0, 0);
    return r.error ? 0 : (int)r.value;
}

long pvio_open(struct pvio_dev *d, int index)
{
    memset(d, 0, sizeof *d);
    struct sbiret r = sbi_ecall(SBI_EXT_RVH_PVIO, SBI_RVH_PVIO_DEVICE_INFO, index,
                                (uintptr_t)info, 0, 0, 0, 0);
    if (r.error)
        return r.error;
    d->index = index;
    d->type = *(uint32_t *)(info + RVH_PVIO_INFO_TYPE);
    d->irq = *(uint32_t *)(info + RVH_PVIO_INFO_IRQ);
    d->capacity = *(uint64_t *)(info + RVH_PVIO_INFO_CAPACITY);
    memcpy(d->mac, info + RVH_PVIO_INFO_MAC, 6);
    d->readonly = info[RVH_PVIO_INFO_READONLY];
    d->queues = *(uint32_t *)(info + RVH_PVIO_INFO_QUEUES);
    d->max_length = *(uint32_t *)(info + RVH_PVIO_INFO_MAX_LENGTH);
    if (index < PVIO_MAX_DEVS)
        irq_owner[index] = d;
    /* the completion interrupt: priority 1, enabled for this hart's S context, threshold 0;
       SEIE lets it end a wfi (SIE stays 0: no trap, pvio_plic_service claims it) */
    uintptr_t ctx = PLIC_S_CTX(rvh_hartid());
    mmio_write32(PLIC_PRIO(d->irq), 1);
    mmio_write32(PLIC_CTX(ctx) + PLIC_THRESHOLD, 0);
    mmio_write32(PLIC_EN(ctx, d->irq), mmio_read32(PLIC_EN(ctx, d->irq)) | 1u << (d->irq % 32));
    csr_set(sie, SIE_SEIE_MASK);
    return 0;
}

long pvio_attach(struct pvio_dev *d, int queue, struct pvio_ring *ring)
{
    memset((void *)ring, 0, sizeof *ring);
    __sync_synchronize();
    struct sbiret r = sbi_ecall(SBI_EXT_RVH_PVIO, SBI_RVH_PVIO_SET_RING, d->index, queue,
                                (uintptr_t)ring, 0, 0, 0);
    if (r.error)
        return r.error;
    d->q[queue].ring = ring;
    d->q[queue].req_prod = 0;
    d->q[queue].rsp_cons = 0;
    return 0;
}

unsigned pvio_room(struct pvio_dev *d, int queue)
{
    struct pvio_queue *q = &d->q[queue];
    return PVIO_SLOTS - (q->req_prod - q->rsp_cons);
}

volatile struct pvio_slot *pvio_post(struct pvio_dev *d, int queue, uint8_t op,
                                     uint64_t sector, const void *buf, uint32_t len,
                                     uint64_t id)
{
    struct pvio_queue *q = &d->q[queue];
    if (!pvio_room(d, queue))
        return 0;
    volatile struct pvio_slot *s = &q->ring->slot[q->req_prod % PVIO_SLOTS];
    s->id = id;
    s->sector = sector;
    s->addr = (uintptr_t)buf;
    s->len = len;
    s->op = op;
    s->status = RVH_PVIO_S_PENDING;
    q->req_prod++;
    d->requests++;
    return s;
}

void pvio_kick(struct pvio_dev *d, int queue)
{
    struct pvio_queue *q = &d->q[queue];
    __sync_synchronize();                       /* the slots before the index */
    q->ring->req_prod = q->req_prod;
    __sync_synchronize();
    sbi_ecall(SBI_EXT_RVH_PVIO, SBI_RVH_PVIO_NOTIFY, d->index, queue, 0, 0, 0, 0);
    d->notifies++;
}

volatile struct pvio_slot *pvio_response(struct pvio_dev *d, int queue)
{
    struct pvio_queue *q = &d->q[queue];
    if (q->ring->rsp_prod == q->rsp_cons)
        return 0;
    __sync_synchronize();                       /* the index before the slots */
    return &q->ring->slot[q->rsp_cons++ % PVIO_SLOTS];
}

int pvio_plic_service(void)
{
    uintptr_t claim = PLIC_CTX(PLIC_S_CTX(rvh_hartid())) + PLIC_CLAIM_COMPLETE;
    int n = 0;
    uint32_t irq;
    while ((irq = mmio_read32(claim)) != 0) {
        uint32_t index = irq - PVIO_IRQ_BASE;
        if (index < PVIO_MAX_DEVS && irq_owner[index])
            irq_owner[index]->irqs++;
        mmio_write32(claim, irq);
        n++;
    }
    return n;
}

static int any_response(struct pvio_dev **devs, const int *queues, int n)
{
    for (int i = 0; i < n; i++) {
        struct pvio_queue *q = &devs[i]->q[queues[i]];
        if (q->ring->rsp_prod != q->rsp_cons || q->ring->error)
            return 1;
    }
    return 0;
}

/* a timer past the wait's deadline ends a wfi whose interrupt never comes; armed only when
   the one set is too close, so a run of waits costs one SBI call (an exit in a VM), not two
   each.  With SIE = 0 a timer that fires just ends a wfi early */
static uint64_t watchdog;

static void watchdog_arm(uint64_t now)
{
    if (watchdog > now + PVIO_TIMEOUT + 1000)
        return;
    watchdog = now + 2 * PVIO_TIMEOUT;
    sbi_set_timer(watchdog);
    csr_set(sie, SIE_STIE_MASK);
}

void pvio_wait_any(struct pvio_dev **devs, const int *queues, int n, long check)
{
    uint64_t t0 = rdtime();
    watchdog_arm(t0);
    while (!any_response(devs, queues, n)) {
        if (rdtime() - t0 > PVIO_TIMEOUT) {
            for (int i = 0; i < n; i++) {
                struct pvio_ring *r = devs[i]->q[queues[i]].ring;
                printf("pvio: device %d queue %d: no response (req_prod %u, rsp_prod %u, "
                       "req_cons %u, error %u, irqs %lu)\n", devs[i]->index, queues[i],
                       r->req_prod, r->rsp_prod, r->req_cons, r->error, devs[i]->irqs);
            }
            rvh_check_failed(check, __LINE__, "pvio_wait");
        }
        wfi();
        pvio_plic_service();
    }
}

int pvio_wait_any_for(struct pvio_dev **devs, const int *queues, int n, uint64_t ticks)
{
    uint64_t deadline = rdtime() + ticks;
    /* a timer at the deadline ends the last wfi; the watchdog re-arms after it */
    watchdog = deadline;
    sbi_set_timer(deadline);
    csr_set(sie, SIE_STIE_MASK);
    while (!any_response(devs, queues, n)) {
        if (rdtime() >= deadline)
            return 0;
        wfi();
        pvio_plic_service();
    }
    return 1;
}

void pvio_wait(struct pvio_dev *d, int queue, long check)
{
    pvio_wait_any(&d, &queue, 1, check);
    if (d->q[queue].ring->error) {
        printf("pvio: device %d queue %d: the platform refused the ring (error %u)\n",
               d->index, queue, d->q[queue].ring->error);
        rvh_check_failed(check, __LINE__, "pvio_wait");
    }
}

uint8_t pvio_sync(struct pvio_dev *d, int queue, uint8_t op, uint64_t sector, void *buf,
                  uint32_t *len, long check)
{
    if (!pvio_post(d, queue, op, sector, buf, *len, 0))
        rvh_check_failed(check, __LINE__, "pvio_sync: ring full");
    pvio_kick(d, queue);
    pvio_wait(d, queue, check);
    volatile struct pvio_slot *s = pvio_response(d, queue);
    *len = s->len;
    return s->status;
}

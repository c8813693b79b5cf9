/*
 * hostvirtio.c - the hypervisor's driver for the machine virtio-mmio devices (virtio 1.2,
 * 4.2.3 for the transport, 3.1.1 for initialization) that back its VMs' disks and NICs.
 *
 * The rings live in the hypervisor's memory, with one bounce buffer per request in flight:
 * slot i of a queue is descriptor 2i (the device-readable bytes, from the VM's chain) chained
 * to descriptor 2i + 1 (the device-writable bytes, copied back into the VM's chain when the
 * device completes it).  A VM never sees these rings or buffers, and the machine device never
 * sees VM memory: every byte between them is copied by virtio.c after its checks.
 */
#include "vio.h"
#include "rvh/libc.h"

#define fence() __asm__ __volatile__("fence rw, rw" ::: "memory")

static volatile uint32_t *reg(const struct host_dev *h, unsigned offset)
{
    return (volatile uint32_t *)(h->base + offset);
}

static void set_status(struct host_dev *h, uint32_t bits)
{
    *reg(h, VIRTIO_MMIO_STATUS) = *reg(h, VIRTIO_MMIO_STATUS) | bits;
}

static int open_queue(struct host_dev *h, unsigned index)
{
    struct host_queue *q = &h->queues[index];
    *reg(h, VIRTIO_MMIO_QUEUE_SEL) = index;
    if (*reg(h, VIRTIO_MMIO_QUEUE_READY) || *reg(h, VIRTIO_MMIO_QUEUE_NUM_MAX) < HOST_QUEUE_SIZE)
        return -1;
    if (!q->desc) {                                 /* (a reopen after a reset keeps its memory) */
        uint8_t *page = hyp_alloc_pages(4096, 4096);    /* descriptors, avail, used */
        q->desc = (struct virtq_desc *)page;
        q->avail = (volatile uint16_t *)(page + 1024);
        q->used = (volatile uint16_t *)(page + 2048);
        for (unsigned s = 0; s < HOST_SLOTS; s++)
            q->slots[s].bounce = hyp_alloc_pages(h->bounce_size, 64);
    }
    memset((void *)q->desc, 0, 4096);
    q->size = HOST_QUEUE_SIZE;
    q->avail_idx = q->last_used = 0;
    q->free_slots = HOST_SLOTS;
    q->held_head = q->held_count = 0;
    for (unsigned s = 0; s < HOST_SLOTS; s++) {
        q->slots[s].busy = 0;
        q->slots[s].group = NO_GROUP;
        q->groups[s].busy = 0;
    }
    *reg(h, VIRTIO_MMIO_QUEUE_NUM) = q->size;
    unsigned long desc = (unsigned long)q->desc, avail = (unsigned long)q->avail,
                  used = (unsigned long)q->used;
    *reg(h, VIRTIO_MMIO_QUEUE_DESC_LOW) = (uint32_t)desc;
    *reg(h, VIRTIO_MMIO_QUEUE_DESC_HIGH) = (uint32_t)(desc >> 32);
    *reg(h, VIRTIO_MMIO_QUEUE_DRIVER_LOW) = (uint32_t)avail;
    *reg(h, VIRTIO_MMIO_QUEUE_DRIVER_HIGH) = (uint32_t)(avail >> 32);
    *reg(h, VIRTIO_MMIO_QUEUE_DEVICE_LOW) = (uint32_t)used;
    *reg(h, VIRTIO_MMIO_QUEUE_DEVICE_HIGH) = (uint32_t)(used >> 32);
    *reg(h, VIRTIO_MMIO_QUEUE_READY) = 1;
    return 0;
}

/* Bring the device in machine slot `slot` up (3.1.1); 0, or -1 with a message. */
int host_virtio_open(struct host_dev *h, unsigned slot)
{
    h->slot = slot;
    h->base = VIRTIO_BASE + VIRTIO_SIZE * (unsigned long)slot;
    h->irq = VIRTIO_IRQ_BASE + slot;
    if (*reg(h, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC || *reg(h, VIRTIO_MMIO_VERSION) != 2) {
        printf("hyp: machine virtio slot %u: not a virtio-mmio version 2 device\n", slot);
        return -1;
    }
    h->device_id = *reg(h, VIRTIO_MMIO_DEVICE_ID);
    h->vendor_id = *reg(h, VIRTIO_MMIO_VENDOR_ID);
    uint64_t mask;
    if (h->device_id == VIRTIO_ID_BLOCK) {
        mask = VIO_BLK_FEATURES;
        h->nqueues = 1;
        h->bounce_size = BLK_BOUNCE;
    } else if (h->device_id == VIRTIO_ID_NET) {
        mask = VIO_NET_FEATURES;
        h->nqueues = 2;
        h->bounce_size = NET_BOUNCE;
    } else {
        printf("hyp: machine virtio slot %u: device %u is neither a disk nor a NIC\n", slot,
               h->device_id);
        return -1;
    }
    *reg(h, VIRTIO_MMIO_STATUS) = 0;
    set_status(h, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    uint64_t offered = 0;
    for (unsigned sel = 0; sel < 2; sel++) {
        *reg(h, VIRTIO_MMIO_DEVICE_FEATURES_SEL) = sel;
        offered |= (uint64_t)*reg(h, VIRTIO_MMIO_DEVICE_FEATURES) << (32 * sel);
    }
    h->features = offered & mask;
    for (unsigned sel = 0; sel < 2; sel++) {
        *reg(h, VIRTIO_MMIO_DRIVER_FEATURES_SEL) = sel;
        *reg(h, VIRTIO_MMIO_DRIVER_FEATURES) = (uint32_t)(h->features >> (32 * sel));
    }
    set_status(h, VIRTIO_STATUS_FEATURES_OK);
    if (!(h->features >> VIRTIO_F_VERSION_1 & 1) ||
        !(*reg(h, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
        printf("hyp: machine virtio slot %u: features refused\n", slot);
        return -1;
    }
    for (unsigned i = 0; i < h->nqueues; i++) {
        if (open_queue(h, i) < 0) {
            printf("hyp: machine virtio slot %u: queue %u unusable\n", slot, i);
            return -1;
        }
    }
    set_status(h, VIRTIO_STATUS_DRIVER_OK);
    if (h->device_id == VIRTIO_ID_NET) {            /* every receive buffer to the device */
        for (unsigned s = 0; s < HOST_SLOTS; s++) {
            int taken = host_slot_take(&h->queues[0]);
            h->queues[0].slots[taken].readable = 0;
            h->queues[0].slots[taken].writable = NET_BOUNCE;
            host_submit(h, 0, (unsigned)taken);
        }
        host_notify(h, 0);
    }
    plic_enable(h->irq);
    return 0;
}

int host_slot_take(struct host_queue *q)
{
    for (unsigned s = 0; s < HOST_SLOTS; s++) {
        if (!q->slots[s].busy) {
            q->slots[s].busy = 1;
            q->slots[s].group = NO_GROUP;           /* a whole request, unless split */
            q->free_slots--;
            return (int)s;
        }
    }
    return -1;
}

/* Put slot `s` (its readable and writable lengths set) on the device's available ring. */
void host_submit(struct host_dev *h, unsigned queue, unsigned s)
{
    struct host_queue *q = &h->queues[queue];
    struct host_slot *slot = &q->slots[s];
    struct virtq_desc *first = &q->desc[2 * s], *second = &q->desc[2 * s + 1];
    unsigned long buffer = (unsigned long)slot->bounce;
    if (slot->readable && slot->writable) {
        *first = (struct virtq_desc){buffer, slot->readable, VIRTQ_DESC_F_NEXT, (uint16_t)(2 * s + 1)};
        *second = (struct virtq_desc){buffer + slot->readable, slot->writable, VIRTQ_DESC_F_WRITE, 0};
    } else if (slot->readable) {
        *first = (struct virtq_desc){buffer, slot->readable, 0, 0};
    } else {
        *first = (struct virtq_desc){buffer, slot->writable, VIRTQ_DESC_F_WRITE, 0};
    }
    q->avail[2 + q->avail_idx % q->size] = (uint16_t)(2 * s);
    fence();                                        /* the ring entry before the index (2.7.13) */
    q->avail_idx++;
    q->avail[1] = q->avail_idx;
}

void host_notify(struct host_dev *h, unsigned queue)
{
    fence();
    *reg(h, VIRTIO_MMIO_QUEUE_NOTIFY) = queue;
}

/* A receive buffer back to the device once its frame has been delivered (or dropped). */
void host_repost_rx(struct host_dev *h, unsigned s)
{
    host_submit(h, 0, s);
    host_notify(h, 0);
}

uint32_t host_config_read(struct host_dev *h, unsigned offset, int width)
{
    unsigned long address = h->base + VIRTIO_MMIO_CONFIG + offset;
    if (width == 1)
        return *(volatile uint8_t *)address;
    if (width == 2)
        return *(volatile uint16_t *)address;
    return *(volatile uint32_t *)address;
}

void host_config_write8(struct host_dev *h, unsigned offset, uint8_t value)
{
    *(volatile uint8_t *)(h->base + VIRTIO_MMIO_CONFIG + offset) = value;
}

uint32_t host_config_generation(struct host_dev *h)
{
    return *reg(h, VIRTIO_MMIO_CONFIG_GENERATION);
}

unsigned host_in_flight(const struct host_dev *h)
{
    unsigned n = 0;
    /* the receive queue's buffers wait for frames that may never come: not "in flight" */
    for (unsigned i = h->device_id == VIRTIO_ID_NET ? 1 : 0; i < h->nqueues; i++)
        n += HOST_SLOTS - h->queues[i].free_slots;
    return n;
}

void host_virtio_service(struct host_dev *h)
{
    uint32_t status = *reg(h, VIRTIO_MMIO_INTERRUPT_STATUS);
    if (status)
        *reg(h, VIRTIO_MMIO_INTERRUPT_ACK) = status;
    if (*reg(h, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET) {
        /* The machine device gave up (something forwarded was malformed after all): what it
         * held is lost, so the VM's device fails too; the machine device starts over. */
        printf("hyp: machine virtio slot %u: device needs reset; reopening it\n", h->slot);
        vio_host_failed(h);
        if (host_virtio_open(h, h->slot) < 0)
            printf("hyp: machine virtio slot %u: could not reopen it\n", h->slot);
        return;
    }
    for (unsigned i = 0; i < h->nqueues; i++) {
        struct host_queue *q = &h->queues[i];
        fence();
        while (q->last_used != q->used[1]) {
            fence();                                /* the index before the entry it covers */
            volatile uint32_t *entry = (volatile uint32_t *)(q->used + 2) + 2 * (q->last_used % q->size);
            uint32_t id = entry[0], len = entry[1];
            q->last_used++;
            unsigned s = id / 2;
            if (id % 2 || s >= HOST_SLOTS || !q->slots[s].busy) {
                printf("hyp: machine virtio slot %u: bogus used entry %u\n", h->slot, id);
                continue;
            }
            vio_host_complete(h, i, s, len);
        }
    }
}

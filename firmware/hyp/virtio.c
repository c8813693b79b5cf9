/*
 * virtio.c - the VMs' virtio-mmio devices (virtio 1.2, 4.2.2: the version 2 register layout),
 * emulated register by register, their requests forwarded to the machine devices the
 * hypervisor drives (hostvirtio.c).
 *
 * A VM's board (its device tree is QEMU virt's) has the 8 virtio-mmio slots at 0x1000_1000;
 * its devices sit from the highest slot down, drives first, as rvh and QEMU place them
 * natively, and the other slots answer as empty (DeviceID 0).  Each device is backed by one
 * machine device, named in the host tree (rvh,virtio-slots of the VM's node), whose features
 * it offers minus what the forwarding does not handle (vio.h).
 *
 * Everything the VM writes is untrusted: ring addresses are checked against the VM's RAM when a
 * queue is made ready, every descriptor when a chain is walked (its index, its buffer, the
 * chain's length against the queue size, which ends loops), and the available index against
 * jumps larger than the queue.  A violation puts the device in DEVICE_NEEDS_RESET (2.1.2) with
 * a configuration change interrupt and one line on the console; it then touches none of the
 * VM's rings until the VM resets it.  Requests in flight on the machine when the VM resets the
 * device are dropped when they complete (the reset count tells them apart), so nothing lands in
 * the VM's memory after its reset.  Data only moves by copies into and out of the hypervisor's
 * bounce buffers, counted per VM (io_copies, io_bytes).
 */
#include "vio.h"
#include "rvh/libc.h"

#define fence() __asm__ __volatile__("fence rw, rw" ::: "memory")
#define VIRTIO_VENDOR_QEMU  0x554d4551u     /* what empty slots answer, as on QEMU */
#define VIRTIO_BLK_S_IOERR  1

_Static_assert((uint64_t)VIO_BLK_SEG_MAX * VIO_BLK_SIZE_MAX <= BLK_MAX_DATA,
               "the VM's disk advertises no more than the hypervisor serves");
_Static_assert(VIO_BLK_SIZE_MAX % VIRTIO_BLK_SECTOR == 0 && BLK_PART_DATA % VIRTIO_BLK_SECTOR == 0,
               "parts split at sector boundaries");

static struct vio_dev devices[HYP_MAX_VMS][VIRTIO_SLOTS];
static unsigned device_count[HYP_MAX_VMS];
static uint32_t machine_slots[HYP_MAX_VMS][VIRTIO_SLOTS];
static int passthrough[HYP_MAX_VMS];        /* rvh,io = "passthrough": devices assigned */
static int iommu_present;

/* ---- set-up ---- */

/* rvh,virtio-slots of a VM's node: the machine slots of its devices, in its slot order. */
int vio_parse_slots(struct vm *vm, const uint8_t *cells, uint32_t len)
{
    if (len % 4 || len / 4 > VIRTIO_SLOTS) {
        printf("hyp: %s: rvh,virtio-slots: at most %d cells\n", vm->name, VIRTIO_SLOTS);
        return -1;
    }
    device_count[vm->id] = len / 4;
    for (unsigned i = 0; i < len / 4; i++)
        machine_slots[vm->id][i] = (uint32_t)cells[4 * i] << 24 | (uint32_t)cells[4 * i + 1] << 16 |
                                   (uint32_t)cells[4 * i + 2] << 8 | cells[4 * i + 3];
    return 0;
}

void vio_parse_io(struct vm *vm, const char *io)
{
    passthrough[vm->id] = strcmp(io, "passthrough") == 0;
}

int vio_init(unsigned long hartid)
{
    uint32_t owned = 0;
    plic_init(hartid);
    for (unsigned v = 0; v < hyp_nvms; v++) {
        if (passthrough[v] && device_count[v] && !iommu_present) {
            if (hyp_vms[v].mode != VIRT_HW) {
                printf("hyp: %s: io=passthrough needs virt=hw\n", hyp_vms[v].name);
                return -1;
            }
            if (iommu_init() < 0)
                return -1;
            iommu_present = 1;
        }
    }
    for (unsigned v = 0; v < hyp_nvms; v++) {
        for (unsigned i = 0; i < device_count[v]; i++) {
            struct vio_dev *dev = &devices[v][i];
            uint32_t slot = machine_slots[v][i];
            if (slot >= VIRTIO_SLOTS || owned >> slot & 1) {
                printf("hyp: %s: machine virtio slot %u is not one it may have\n", hyp_vms[v].name,
                       slot);
                return -1;
            }
            owned |= 1u << slot;
            if (passthrough[v]) {
                if (pt_assign(&hyp_vms[v], VIRTIO_SLOTS - 1 - i, slot) < 0)
                    return -1;
                continue;
            }
            if (iommu_present)
                iommu_set_context(slot, 0);     /* the hypervisor's own DMA: untranslated */
            dev->vm = &hyp_vms[v];
            dev->vm_slot = VIRTIO_SLOTS - 1 - i;
            dev->host.owner = dev;
            if (host_virtio_open(&dev->host, slot) < 0)
                return -1;
            dev->offered = dev->host.features | VIO_RING_FEATURES;
            if (dev->host.device_id == VIRTIO_ID_BLOCK)  /* the hypervisor's limits (vio.h) */
                dev->offered |= VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX);
        }
    }
    for (unsigned v = 0; v < hyp_nvms; v++)
        if (passthrough[v])
            device_count[v] = 0;                /* its slots are the machine's, not emulated */
    if (owned)
        csr_set(CSR_SIE, SIE_SEIE_MASK);
    if (iommu_present)
        hfence_gvma_all();                      /* the device pages just mapped */
    return 0;
}

/* ---- interrupts to the VM ---- */

static unsigned vm_irq(const struct vio_dev *dev)
{
    return VIRTIO_IRQ_BASE + dev->vm_slot;
}

static void raise_isr(struct vio_dev *dev, uint32_t bits)
{
    if ((dev->isr & bits) != bits)
        dev->vm->stats[HYP_STAT_IO_IRQS]++;
    dev->isr |= bits;
    vplic_set_level(dev->vm, vm_irq(dev), 1);
}

static void device_error(struct vio_dev *dev, unsigned queue, const char *what, unsigned a, unsigned b)
{
    if (dev->broken)
        return;
    printf("hyp: %s: virtio slot %u: queue %u: ", dev->vm->name, dev->vm_slot, queue);
    printf(what, a, b);
    printf("; device needs reset\n");
    dev->broken = 1;
    dev->vm->stats[HYP_STAT_IO_ERRORS]++;
    dev->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (dev->status & VIRTIO_STATUS_DRIVER_OK)
        raise_isr(dev, VIRTIO_INT_CONFIG);
}

/* ---- the VM's rings ---- */

enum walk_mode { GATHER, GATHER_RANGE, SCATTER, MEASURE, LAST_BYTE };

/* Walk the chain at `head` of the VM's queue, checking every descriptor.  GATHER copies the
 * device-readable bytes into `buffer` (`capacity` bytes, which must hold the writable ones
 * too); GATHER_RANGE copies `count` device-readable bytes from the `skip`-th on; SCATTER
 * copies `count` bytes from `buffer` into the device-writable ones from the `skip`-th on;
 * LAST_BYTE writes buffer[0] into the last writable byte; every mode sets *readable and
 * *writable.  Returns 0, 1 when GATHER finds the chain larger than `capacity`, or -1
 * (device_error called). */
static int walk_chain(struct vio_dev *dev, unsigned qi, uint16_t head, enum walk_mode mode,
                      uint8_t *buffer, uint32_t capacity, uint32_t count, uint32_t skip,
                      uint32_t *readable, uint32_t *writable)
{
    struct vio_queue *q = &dev->queues[qi];
    struct vm *vm = dev->vm;
    uint64_t r = 0, w = 0;
    unsigned long last_writable = 0;            /* host address of the last writable byte */
    unsigned index = head, seen = 0;
    const struct virtq_desc *table = q->hdesc;  /* the queue's, or an indirect table */
    if (mode == GATHER)
        dev->gathered = 0;
    unsigned table_size = q->num, limit = q->num;
    int indirect = 0;
    if (index >= q->num) {
        device_error(dev, qi, "chain head %u beyond the queue size %u", index, q->num);
        return -1;
    }
    for (;;) {
        struct virtq_desc d = table[index];         /* one copy: the VM may change it meanwhile */
        unsigned long host = 0;
        if (++seen > limit) {
            device_error(dev, qi, "descriptor chain at head %u loops (%u descriptors)", head, seen);
            return -1;
        }
        if (d.flags & VIRTQ_DESC_F_INDIRECT) {
            /* 2.7.5.3: negotiated, not inside a table, not with NEXT, whole descriptors */
            if (!(dev->driver_features >> VIRTIO_F_INDIRECT_DESC & 1) || indirect ||
                d.flags & VIRTQ_DESC_F_NEXT || !d.len || d.len % 16 || d.len / 16 > 0x10000 ||
                gpa_to_host(vm, d.addr, d.len, &host) < 0 || host & 15) {
                device_error(dev, qi, "bad indirect descriptor %u (head %u)", index, head);
                return -1;
            }
            indirect = 1;
            table = (const struct virtq_desc *)host;
            table_size = d.len / 16;
            limit = seen + table_size;              /* each table entry once at most */
            index = 0;
            continue;
        }
        if (d.len && gpa_to_host(vm, d.addr, d.len, &host) < 0) {
            device_error(dev, qi, "descriptor %u (head %u) points outside the VM's RAM", index, head);
            return -1;
        }
        if (d.flags & VIRTQ_DESC_F_WRITE) {
            if (mode == SCATTER && d.len && count && w + d.len > skip) {
                uint32_t from = skip > w ? (uint32_t)(skip - w) : 0;    /* into this one */
                uint32_t n = d.len - from < count ? d.len - from : count;
                memcpy((void *)(host + from), buffer + (w + from - skip), n);
                vm->stats[HYP_STAT_IO_COPIES]++;
                vm->stats[HYP_STAT_IO_BYTES] += n;
                count -= n;
            }
            if (d.len)
                last_writable = host + d.len - 1;
            w += d.len;
        } else {
            if (w) {
                device_error(dev, qi, "device-readable descriptor %u after a writable one (head %u)",
                             index, head);
                return -1;
            }
            if (mode == GATHER && d.len && r + d.len <= capacity) {
                memcpy(buffer + r, (const void *)host, d.len);
                dev->gathered = (uint32_t)(r + d.len);
                vm->stats[HYP_STAT_IO_COPIES]++;
                vm->stats[HYP_STAT_IO_BYTES] += d.len;
            } else if (mode == GATHER_RANGE && d.len && count && r + d.len > skip) {
                uint32_t from = skip > r ? (uint32_t)(skip - r) : 0;
                uint32_t n = d.len - from < count ? d.len - from : count;
                memcpy(buffer + (r + from - skip), (const void *)(host + from), n);
                vm->stats[HYP_STAT_IO_COPIES]++;
                vm->stats[HYP_STAT_IO_BYTES] += n;
                count -= n;
            }
            r += d.len;
        }
        if (!(d.flags & VIRTQ_DESC_F_NEXT))
            break;
        index = d.next;
        if (index >= table_size) {
            device_error(dev, qi, "descriptor chain at head %u names descriptor %u", head, index);
            return -1;
        }
    }
    if (mode == LAST_BYTE && last_writable) {
        *(uint8_t *)last_writable = buffer[0];
        vm->stats[HYP_STAT_IO_COPIES]++;
        vm->stats[HYP_STAT_IO_BYTES]++;
    }
    *readable = (uint32_t)(r < 0xffffffffu ? r : 0xffffffffu);
    *writable = (uint32_t)(w < 0xffffffffu ? w : 0xffffffffu);
    return mode == GATHER && r + w > capacity ? 1 : 0;
}

static void push_used(struct vio_dev *dev, unsigned qi, uint16_t head, uint32_t len)
{
    struct vio_queue *q = &dev->queues[qi];
    volatile uint32_t *entry = (volatile uint32_t *)(q->hused + 2) + 2 * (q->used_idx % q->num);
    entry[0] = head;
    entry[1] = len;
    fence();                                    /* the entry before the index (2.7.14) */
    q->used_idx++;
    q->hused[1] = q->used_idx;
    fence();
    if (dev->driver_features >> VIRTIO_F_EVENT_IDX & 1) {
        /* 2.7.7.2: notify when the used index steps past used_event (the avail ring's tail) */
        if (q->havail[2 + q->num] == (uint16_t)(q->used_idx - 1))
            raise_isr(dev, VIRTIO_INT_VRING);
    } else if (!(q->havail[0] & VIRTQ_AVAIL_F_NO_INTERRUPT)) {
        raise_isr(dev, VIRTIO_INT_VRING);
    }
}

/* With EVENT_IDX the device tells the driver where to notify it next: avail_event, the used
 * ring's tail (2.7.10), is the next entry it will take. */
static void consumed(struct vio_dev *dev, unsigned qi)
{
    struct vio_queue *q = &dev->queues[qi];
    q->last_avail++;
    if (dev->driver_features >> VIRTIO_F_EVENT_IDX & 1)
        q->hused[2 + 4 * q->num] = q->last_avail;
}

static int queue_live(const struct vio_dev *dev, unsigned qi)
{
    return !dev->broken && (dev->status & VIRTIO_STATUS_DRIVER_OK) && qi < dev->host.nqueues &&
           dev->queues[qi].ready;
}

/* The next available head, or -1 when none (or the index jumped: device error). */
static int next_available(struct vio_dev *dev, unsigned qi)
{
    struct vio_queue *q = &dev->queues[qi];
    uint16_t avail_idx = q->havail[1];
    if (avail_idx == q->last_avail)
        return -1;
    if ((uint16_t)(avail_idx - q->last_avail) > q->num) {
        device_error(dev, qi, "available index jumped from %u to %u", q->last_avail, avail_idx);
        return -1;
    }
    fence();                                    /* the index before the entries it covers */
    return q->havail[2 + q->last_avail % q->num];
}

/* A request larger than the hypervisor serves: a disk request completes with IOERR in its
 * last writable byte (its status byte), a frame to send is dropped; counted as io_errors. */
static void refuse_request(struct vio_dev *dev, unsigned qi, uint16_t head, uint32_t writable,
                           uint32_t limit)
{
    uint8_t status = VIRTIO_BLK_S_IOERR;
    uint32_t r, w;
    dev->vm->stats[HYP_STAT_IO_ERRORS]++;
    printf("hyp: %s: virtio slot %u: a request of more than %u bytes refused\n", dev->vm->name,
           dev->vm_slot, limit);
    if (dev->host.device_id == VIRTIO_ID_BLOCK && writable) {
        if (walk_chain(dev, qi, head, LAST_BYTE, &status, 0, 0, 0, &r, &w) == 0)
            push_used(dev, qi, head, 1);
        return;
    }
    push_used(dev, qi, head, 0);
}

enum split_result { SPLIT_BROKEN = -1, SPLIT_WAITS, SPLIT_SUBMITTED, SPLIT_REFUSED };

/* A disk request larger than a bounce buffer (`readable` and `writable` bytes): a READ or
 * WRITE of up to BLK_MAX_DATA bytes becomes one machine request per BLK_PART_DATA bytes of
 * it, each with the header's sector moved on, its data and a status byte of its own, all
 * queued at once (so it waits until that many slots are free); vio_host_complete answers the
 * VM's request when the last part completes.  Anything else is refused. */
static enum split_result forward_split(struct vio_dev *dev, unsigned qi, uint16_t head,
                                       uint32_t readable, uint32_t writable, int gathered_in)
{
    struct host_queue *hq = &dev->host.queues[qi];
    struct virtio_blk_req_hdr header;
    uint32_t r, w, data = 0;
    if (walk_chain(dev, qi, head, GATHER_RANGE, (uint8_t *)&header, 0, sizeof header, 0, &r,
                   &w) < 0)
        return SPLIT_BROKEN;
    if (header.type == VIRTIO_BLK_T_IN && readable == sizeof header)
        data = writable - 1;
    else if (header.type == VIRTIO_BLK_T_OUT && writable == 1)
        data = readable - (uint32_t)sizeof header;
    if (!data || data > BLK_MAX_DATA) {
        consumed(dev, qi);
        refuse_request(dev, qi, head, writable, BLK_MAX_DATA + (uint32_t)sizeof header + 1);
        return SPLIT_REFUSED;
    }
    unsigned parts = (data + BLK_PART_DATA - 1) / BLK_PART_DATA, g = 0;
    if (hq->free_slots < parts)
        return SPLIT_WAITS;                     /* a completion calls forward again */
    while (hq->groups[g].busy)                  /* a free one exists: fewer groups than slots */
        g++;
    struct host_group *group = &hq->groups[g];
    int taken[HOST_SLOTS];
    for (unsigned k = 0; k < parts; k++) {
        int s = host_slot_take(hq);
        struct host_slot *slot = &hq->slots[s];
        uint32_t offset = k * BLK_PART_DATA;
        uint32_t length = data - offset < BLK_PART_DATA ? data - offset : BLK_PART_DATA;
        struct virtio_blk_req_hdr *part = (struct virtio_blk_req_hdr *)slot->bounce;
        taken[k] = s;
        *part = header;
        part->sector = header.sector + offset / VIRTIO_BLK_SECTOR;
        if (header.type == VIRTIO_BLK_T_OUT) {
            slot->readable = (uint32_t)sizeof header + length;
            slot->writable = 1;
            /* the first part may be in place already: the walk that found the chain too large
             * copied into this bounce buffer until it overflowed (the later parts' walks check
             * that the chain did not change) */
            int in_place = k == 0 && s == gathered_in && dev->gathered >= slot->readable;
            if (!in_place &&
                (walk_chain(dev, qi, head, GATHER_RANGE, slot->bounce + sizeof header, 0, length,
                            (uint32_t)sizeof header + offset, &r, &w) < 0 ||
                 r != readable || w != writable)) {
                /* the VM rewrote the chain meanwhile: nothing of it goes to the machine */
                for (unsigned i = 0; i <= k; i++) {
                    hq->slots[taken[i]].busy = 0;
                    hq->free_slots++;
                }
                device_error(dev, qi, "request at head %u changed while it was taken", head, 0);
                return SPLIT_BROKEN;
            }
        } else {
            slot->readable = (uint32_t)sizeof header;
            slot->writable = length + 1;
        }
        slot->group = (uint8_t)g;
        slot->part = (uint8_t)k;
        slot->offset = offset;
        slot->guest_head = head;
        slot->generation = dev->generation;
    }
    *group = (struct host_group){ .guest_head = head, .busy = 1, .parts_left = (uint8_t)parts,
                                  .status = VIRTIO_BLK_S_OK, .status_part = NO_GROUP,
                                  .generation = dev->generation };
    consumed(dev, qi);
    dev->vm->stats[HYP_STAT_IO_REQUESTS]++;
    for (unsigned k = 0; k < parts; k++)
        host_submit(&dev->host, qi, (unsigned)taken[k]);
    return SPLIT_SUBMITTED;
}

/* Queue the VM's new chains on the machine device, while it has room (a completion resumes). */
static void forward(struct vio_dev *dev, unsigned qi)
{
    struct host_queue *hq = &dev->host.queues[qi];
    int submitted = 0;
    while (queue_live(dev, qi) && hq->free_slots) {
        int head = next_available(dev, qi);
        if (head < 0)
            break;
        int s = host_slot_take(hq);
        struct host_slot *slot = &hq->slots[s];
        int rc = walk_chain(dev, qi, (uint16_t)head, GATHER, slot->bounce, dev->host.bounce_size, 0,
                            0, &slot->readable, &slot->writable);
        if (rc >= 0 && dev->host.device_id == VIRTIO_ID_BLOCK &&
            (slot->readable < 16 || slot->writable < 1)) {
            /* 5.2.6: a disk request has a 16-byte header and a status byte; the machine device
             * would give up on its whole queue for one without, so the VM's device does */
            device_error(dev, qi, "request at head %u lacks its header or status byte", (unsigned)head, 0);
            rc = -1;
        }
        if (rc != 0) {
            slot->busy = 0;
            hq->free_slots++;
            if (rc < 0)
                break;
            if (dev->host.device_id == VIRTIO_ID_BLOCK) {
                enum split_result split = forward_split(dev, qi, (uint16_t)head, slot->readable,
                                                        slot->writable, s);
                if (split == SPLIT_BROKEN || split == SPLIT_WAITS)
                    break;
                submitted |= split == SPLIT_SUBMITTED;
                continue;
            }
            consumed(dev, qi);
            refuse_request(dev, qi, (uint16_t)head, slot->writable, dev->host.bounce_size);
            continue;
        }
        consumed(dev, qi);
        slot->guest_head = (uint16_t)head;
        slot->generation = dev->generation;
        dev->vm->stats[HYP_STAT_IO_REQUESTS]++;
        host_submit(&dev->host, qi, (unsigned)s);
        submitted = 1;
    }
    if (submitted)
        host_notify(&dev->host, qi);
}

/* Frames the machine NIC received, into the VM's receive chains, oldest first; a frame waits
 * (holding its machine buffer, so the hub holds the sender back) until the VM offers a chain. */
static void deliver_frames(struct vio_dev *dev)
{
    struct host_queue *hq = &dev->host.queues[0];
    while (hq->held_count) {
        unsigned s = hq->held[hq->held_head];
        uint32_t len = hq->held_len[hq->held_head];
        if (queue_live(dev, 0)) {
            int head = next_available(dev, 0);
            if (head < 0)
                return;
            uint32_t r, w;
            if (walk_chain(dev, 0, (uint16_t)head, MEASURE, 0, ~0u, 0, 0, &r, &w) < 0)
                return;
            if (r) {
                device_error(dev, 0, "receive chain at head %u has device-readable bytes", (unsigned)head, 0);
                return;
            }
            if (w >= len) {
                /* 5.1.6.4: without MRG_RXBUF (never offered) num_buffers is 1; a machine NIC
                 * may leave it 0 (QEMU 7.2 does), so the VM's device sets it */
                if (len >= 12) {
                    hq->slots[s].bounce[10] = 1;
                    hq->slots[s].bounce[11] = 0;
                }
                if (walk_chain(dev, 0, (uint16_t)head, SCATTER, hq->slots[s].bounce, ~0u, len, 0, &r,
                               &w) < 0)
                    return;
                consumed(dev, 0);
                dev->vm->stats[HYP_STAT_IO_REQUESTS]++;
                push_used(dev, 0, (uint16_t)head, len);
            } else {
                dev->vm->stats[HYP_STAT_IO_ERRORS]++;   /* does not fit the chain: dropped */
            }
        }
        /* delivered, or dropped because the VM's driver is not running */
        hq->held_head = (hq->held_head + 1) % HOST_SLOTS;
        hq->held_count--;
        host_repost_rx(&dev->host, s);
    }
}

/* A part of a split disk request completed (`len`: the machine's used length, data and
 * status): a READ's data into the VM's chain at the part's place; the VM's request is
 * answered with the last part. */
static void complete_part(struct vio_dev *dev, unsigned qi, struct host_slot *slot, uint32_t len)
{
    struct host_group *group = &dev->host.queues[qi].groups[slot->group];
    int live = group->generation == dev->generation && queue_live(dev, qi);
    uint8_t status = len ? slot->bounce[slot->readable + slot->writable - 1] : VIRTIO_BLK_S_IOERR;
    uint32_t r, w;
    if (status != VIRTIO_BLK_S_OK && slot->part < group->status_part) {
        group->status = status;                 /* the first error, in the request's order */
        group->status_part = slot->part;
    }
    uint32_t data = len ? len - 1 : 0;          /* what it read, less its status byte */
    if (data > slot->writable - 1)
        data = slot->writable - 1;
    if (slot->readable == sizeof(struct virtio_blk_req_hdr) && data && live) {
        if (walk_chain(dev, qi, group->guest_head, SCATTER, slot->bounce + slot->readable,
                       ~0u, data, slot->offset, &r, &w) < 0)
            live = 0;
        group->data_len += data;
    }
    if (--group->parts_left)
        return;
    group->busy = 0;
    if (live && walk_chain(dev, qi, group->guest_head, LAST_BYTE, &group->status, 0, 0, 0, &r,
                           &w) == 0)
        push_used(dev, qi, group->guest_head, group->data_len + 1);
}

void vio_host_complete(struct host_dev *h, unsigned qi, unsigned s, uint32_t len)
{
    struct vio_dev *dev = h->owner;
    struct host_queue *hq = &h->queues[qi];
    struct host_slot *slot = &hq->slots[s];
    if (slot->group != NO_GROUP) {
        complete_part(dev, qi, slot, len);
        slot->busy = 0;
        hq->free_slots++;
        return;
    }
    if (h->device_id == VIRTIO_ID_NET && qi == 0) {
        if (hq->held_count == HOST_SLOTS)
            return;                                 /* cannot happen: one per buffer */
        unsigned at = (hq->held_head + hq->held_count) % HOST_SLOTS;
        hq->held[at] = (uint16_t)s;
        hq->held_len[at] = (uint16_t)(len < NET_BOUNCE ? len : NET_BOUNCE);
        hq->held_count++;
        return;
    }
    if (slot->generation == dev->generation && queue_live(dev, qi)) {
        uint32_t n = len < slot->writable ? len : slot->writable, r, w;
        if (walk_chain(dev, qi, slot->guest_head, SCATTER, slot->bounce + slot->readable,
                       slot->writable, n, 0, &r, &w) == 0)
            push_used(dev, qi, slot->guest_head, len);
    }
    slot->busy = 0;
    hq->free_slots++;
}

void vio_host_failed(struct host_dev *h)
{
    struct vio_dev *dev = h->owner;
    dev->vm->stats[HYP_STAT_IO_ERRORS]++;
    device_error(dev, 0, "the machine device failed the %u requests in flight", host_in_flight(h), 0);
}

void vio_host_interrupt(void)
{
    unsigned irq;
    /* claim while the machine PLIC's line to this context is up (sip.SEIP follows it): the
     * claim that would answer 0 is not made, one emulator exit less per interrupt */
    while ((csr_read(CSR_SIP) & SIP_SEIP_MASK) && (irq = plic_claim()) != 0) {
        if (pvio_owns_irq(irq)) {
            /* an edge: complete first, so one that comes while we read the ring is kept */
            plic_complete(irq);
            pvio_interrupt(irq);
            continue;
        }
        if (irq == IOMMU_IRQ_BASE + IOMMU_FAULT_VECTOR)
            iommu_fault_interrupt();
        if (pt_owns_irq(irq)) {
            pt_interrupt(irq);      /* completed when the VM completes it (passthrough.c) */
            continue;
        }
        for (unsigned v = 0; v < hyp_nvms; v++)
            for (unsigned i = 0; i < device_count[v]; i++)
                if (devices[v][i].host.irq == irq)
                    host_virtio_service(&devices[v][i].host);
        plic_complete(irq);
    }
    for (unsigned v = 0; v < hyp_nvms; v++) {
        for (unsigned i = 0; i < device_count[v]; i++) {
            struct vio_dev *dev = &devices[v][i];
            if (dev->host.device_id == VIRTIO_ID_NET) {
                deliver_frames(dev);
                forward(dev, 1);
            } else {
                forward(dev, 0);
            }
        }
    }
}

int vio_busy(void)
{
    for (unsigned v = 0; v < hyp_nvms; v++)
        for (unsigned i = 0; i < device_count[v]; i++)
            if (hyp_vms[v].state == VM_RUNNING &&
                (devices[v][i].host.device_id == VIRTIO_ID_NET ||   /* frames may come */
                 host_in_flight(&devices[v][i].host)))
                return 1;
    /* an assigned device may interrupt any time; pv requests in flight will */
    return pt_busy() || pvio_busy();
}

/* ---- the registers ---- */

static void reset(struct vio_dev *dev)
{
    dev->status = 0;
    dev->isr = 0;
    dev->driver_features = 0;
    dev->device_features_sel = dev->driver_features_sel = dev->queue_sel = 0;
    dev->broken = 0;
    dev->generation++;                          /* what is in flight on the machine is dropped */
    memset(dev->queues, 0, sizeof(dev->queues));
    vplic_set_level(dev->vm, vm_irq(dev), 0);
    if (dev->host.device_id == VIRTIO_ID_NET)
        deliver_frames(dev);                    /* not running: the frames waiting are dropped */
}

/* QueueReady = 1: the rings must be aligned (2.7: 16, 2, 4) and lie in the VM's RAM. */
static void queue_ready(struct vio_dev *dev, unsigned qi)
{
    struct vio_queue *q = &dev->queues[qi];
    unsigned long desc, avail, used;
    if (!q->num || q->num > VIO_QUEUE_NUM_MAX || q->desc & 15 || q->driver & 1 || q->device & 3 ||
        gpa_to_host(dev->vm, q->desc, 16UL * q->num, &desc) < 0 ||
        gpa_to_host(dev->vm, q->driver, 6 + 2UL * q->num, &avail) < 0 ||
        gpa_to_host(dev->vm, q->device, 6 + 8UL * q->num, &used) < 0) {
        device_error(dev, qi, "rings misaligned or outside the VM's RAM (size %u)", q->num, 0);
        return;
    }
    q->hdesc = (struct virtq_desc *)desc;
    q->havail = (volatile uint16_t *)avail;
    q->hused = (volatile uint16_t *)used;
    q->last_avail = 0;                          /* a fresh queue starts at index 0 (2.7.6) */
    q->used_idx = 0;
    q->ready = 1;
}

static void write_status(struct vio_dev *dev, uint32_t value)
{
    if (value == 0) {
        reset(dev);
        return;
    }
    uint32_t was = dev->status;
    if ((value & VIRTIO_STATUS_FEATURES_OK) && !(was & VIRTIO_STATUS_FEATURES_OK)) {
        /* 3.1.1: FEATURES_OK only for a subset of what was offered, with VERSION_1 (no legacy) */
        if ((dev->driver_features & ~dev->offered) || !(dev->driver_features >> VIRTIO_F_VERSION_1 & 1))
            value &= ~VIRTIO_STATUS_FEATURES_OK;
        else if (dev->host.device_id == VIRTIO_ID_BLOCK &&
                 dev->host.features >> VIRTIO_BLK_F_CONFIG_WCE & 1)
            /* 5.2.6.1: a driver without FLUSH gets writethrough; one with FLUSH writeback until
             * it says otherwise through CONFIG_WCE: so the machine device's cache mode, which
             * the hypervisor negotiated CONFIG_WCE for, follows the VM's driver */
            host_config_write8(&dev->host, VIRTIO_BLK_CFG_WRITEBACK,
                               dev->driver_features >> VIRTIO_BLK_F_FLUSH & 1);
    }
    dev->status = value | (dev->broken ? VIRTIO_STATUS_NEEDS_RESET : 0);
    if ((value & VIRTIO_STATUS_DRIVER_OK) && !(was & VIRTIO_STATUS_DRIVER_OK) &&
        dev->host.device_id == VIRTIO_ID_NET)
        deliver_frames(dev);
}

static void notify(struct vio_dev *dev, unsigned qi)
{
    if (!queue_live(dev, qi))
        return;
    if (dev->host.device_id == VIRTIO_ID_NET && qi == 0)
        deliver_frames(dev);
    else
        forward(dev, qi);
}

static unsigned long read_register(struct vio_dev *dev, unsigned offset)
{
    struct vio_queue *q = dev->queue_sel < VIO_QUEUES ? &dev->queues[dev->queue_sel] : 0;
    int valid_queue = q && dev->queue_sel < dev->host.nqueues;
    switch (offset) {
    case VIRTIO_MMIO_MAGIC_VALUE: return VIRTIO_MMIO_MAGIC;
    case VIRTIO_MMIO_VERSION: return 2;
    case VIRTIO_MMIO_DEVICE_ID: return dev->host.device_id;
    case VIRTIO_MMIO_VENDOR_ID: return dev->host.vendor_id;
    case VIRTIO_MMIO_DEVICE_FEATURES:
        return dev->device_features_sel < 2 ? (uint32_t)(dev->offered >> (32 * dev->device_features_sel)) : 0;
    case VIRTIO_MMIO_QUEUE_NUM_MAX: return valid_queue ? VIO_QUEUE_NUM_MAX : 0;
    case VIRTIO_MMIO_QUEUE_READY: return valid_queue ? q->ready : 0;
    case VIRTIO_MMIO_INTERRUPT_STATUS: return dev->isr;
    case VIRTIO_MMIO_STATUS: return dev->status;
    case VIRTIO_MMIO_CONFIG_GENERATION: return host_config_generation(&dev->host);
    default: return 0;
    }
}

static void write_register(struct vio_dev *dev, unsigned offset, uint32_t value)
{
    struct vio_queue *q = dev->queue_sel < dev->host.nqueues ? &dev->queues[dev->queue_sel] : 0;
    int configurable = q && !q->ready;
    switch (offset) {
    case VIRTIO_MMIO_DEVICE_FEATURES_SEL: dev->device_features_sel = value; break;
    case VIRTIO_MMIO_DRIVER_FEATURES_SEL: dev->driver_features_sel = value; break;
    case VIRTIO_MMIO_DRIVER_FEATURES:
        if (dev->driver_features_sel < 2 && !(dev->status & VIRTIO_STATUS_FEATURES_OK)) {
            unsigned shift = 32 * dev->driver_features_sel;
            dev->driver_features = (dev->driver_features & ~(0xffffffffULL << shift)) |
                                   (uint64_t)value << shift;
        }
        break;
    case VIRTIO_MMIO_QUEUE_SEL: dev->queue_sel = value; break;
    case VIRTIO_MMIO_QUEUE_NUM: if (configurable) q->num = value; break;
    case VIRTIO_MMIO_QUEUE_DESC_LOW: if (configurable) q->desc = (q->desc >> 32 << 32) | value; break;
    case VIRTIO_MMIO_QUEUE_DESC_HIGH: if (configurable) q->desc = (uint32_t)q->desc | (uint64_t)value << 32; break;
    case VIRTIO_MMIO_QUEUE_DRIVER_LOW: if (configurable) q->driver = (q->driver >> 32 << 32) | value; break;
    case VIRTIO_MMIO_QUEUE_DRIVER_HIGH: if (configurable) q->driver = (uint32_t)q->driver | (uint64_t)value << 32; break;
    case VIRTIO_MMIO_QUEUE_DEVICE_LOW: if (configurable) q->device = (q->device >> 32 << 32) | value; break;
    case VIRTIO_MMIO_QUEUE_DEVICE_HIGH: if (configurable) q->device = (uint32_t)q->device | (uint64_t)value << 32; break;
    case VIRTIO_MMIO_QUEUE_READY:
        if (q && value == 1 && !q->ready && !dev->broken)
            queue_ready(dev, dev->queue_sel);
        else if (q && value == 0)
            q->ready = 0;
        break;
    case VIRTIO_MMIO_QUEUE_NOTIFY: notify(dev, value & 0xffff); break;
    case VIRTIO_MMIO_INTERRUPT_ACK:
        dev->isr &= ~value;
        if (!dev->isr)
            vplic_set_level(dev->vm, vm_irq(dev), 0);
        break;
    case VIRTIO_MMIO_STATUS: write_status(dev, value); break;
    default: break;                             /* read-only or unknown: ignored */
    }
}

int vio_virtio_access(struct vm *vm, unsigned long offset, int is_store, int width,
                      unsigned long *value)
{
    unsigned slot = offset / VIRTIO_SIZE, reg = offset % VIRTIO_SIZE;
    struct vio_dev *dev = 0;
    vm->stats[HYP_STAT_VIRTIO_MMIO]++;
    for (unsigned i = 0; i < device_count[vm->id]; i++)
        if (devices[vm->id][i].vm_slot == slot)
            dev = &devices[vm->id][i];
    if (!is_store)
        *value = 0;
    if (reg >= VIRTIO_MMIO_CONFIG) {            /* the machine device's configuration space */
        unsigned at = reg - VIRTIO_MMIO_CONFIG;
        if (!dev || at + (unsigned)width > VIRTIO_SIZE - VIRTIO_MMIO_CONFIG || at % width)
            return 0;
        if (is_store) {                         /* blk's writeback, with CONFIG_WCE; else read-only */
            if (dev->host.device_id == VIRTIO_ID_BLOCK && at == VIRTIO_BLK_CFG_WRITEBACK &&
                width == 1 && dev->driver_features >> VIRTIO_BLK_F_CONFIG_WCE & 1)
                host_config_write8(&dev->host, at, (uint8_t)*value);
            return 0;
        }
        if (dev->host.device_id == VIRTIO_ID_BLOCK && at >= VIRTIO_BLK_CFG_SIZE_MAX &&
            at < VIRTIO_BLK_CFG_SEG_MAX + 4) {
            /* size_max and seg_max are what the hypervisor serves, not the machine device's:
             * it copies every chain into its own two-descriptor requests (aligned accesses
             * lie wholly inside these 8 bytes or wholly outside) */
            uint64_t limits = VIO_BLK_SIZE_MAX | (uint64_t)VIO_BLK_SEG_MAX << 32;
            unsigned shift = 8 * (at - VIRTIO_BLK_CFG_SIZE_MAX);
            *value = width == 8 ? limits : (limits >> shift) & ((1UL << (8 * width)) - 1);
            return 0;
        }
        if (width == 8)
            *value = host_config_read(&dev->host, at, 4) |
                     (unsigned long)host_config_read(&dev->host, at + 4, 4) << 32;
        else
            *value = host_config_read(&dev->host, at, width);
        return 0;
    }
    if (width != 4 || reg & 3)
        return 0;                               /* 4.2.2.2: registers take 32-bit accesses only */
    if (!dev) {                                 /* an empty slot: DeviceID 0 */
        if (!is_store)
            *value = reg == VIRTIO_MMIO_MAGIC_VALUE ? VIRTIO_MMIO_MAGIC
                   : reg == VIRTIO_MMIO_VERSION     ? 2
                   : reg == VIRTIO_MMIO_VENDOR_ID   ? VIRTIO_VENDOR_QEMU
                                                    : 0;
        return 0;
    }
    if (is_store)
        write_register(dev, reg, (uint32_t)*value);
    else
        *value = read_register(dev, reg);
    return 0;
}

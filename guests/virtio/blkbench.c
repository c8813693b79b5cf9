/*
 * blkbench.c - virtio-blk throughput: blkbench.h's workload (4 KiB and 64 KiB
 * sequential reads and writes, their phases and checks) over the first
 * read-write virtio-blk disk.
 *
 * Requests are kept in flight up to the queue size (one descriptor each
 * with VIRTIO_F_INDIRECT_DESC, else three: up to a third of the queue).
 * The driver waits with real interrupts (BENCH_WAIT, default 2 = irq;
 * 1 = wfi + PLIC polling, 0 = busy polling) and uses VIRTIO_F_EVENT_IDX
 * when offered.
 */
#include "virtio.h"
#include "blkbench.h"

TEST_NAME("virtio/blkbench");

#ifndef BENCH_WAIT
#define BENCH_WAIT      VIRTIO_WAIT_IRQ
#endif
#define MAX_INFLIGHT    VQ_MAX_SIZE

struct slot {
    struct virtio_blk_req_hdr hdr;
    uint8_t status;
    uint8_t *data;
    uint32_t len;
} __attribute__((aligned(16)));

static struct virtio_dev dev;
static struct virtq *q;
static struct slot slots[MAX_INFLIGHT];
static uint16_t free_slots[MAX_INFLIGHT];
static unsigned nfree;
static uint8_t *data;

static void flush(long check)
{
    struct slot *s = &slots[free_slots[--nfree]];
    s->hdr.type = VIRTIO_BLK_T_FLUSH;
    s->hdr.reserved = 0;
    s->hdr.sector = 0;
    s->status = 0xee;
    struct vbuf v[2] = { { &s->hdr, sizeof s->hdr }, { &s->status, 1 } };
    virtq_sync(q, v, 1, 1, dev.indirect, check);
    CHECK_EQ(check, s->status, VIRTIO_BLK_S_OK);
    free_slots[nfree++] = (uint16_t)(s - slots);
}

/* one pass over the region; returns the number of requests */
static unsigned long run_pass(int write, uint32_t reqlen, unsigned tag, long check)
{
    uint32_t type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    uint64_t next = 0;                  /* next sector */
    unsigned inflight = 0;
    unsigned long reqs = 0;
    uint32_t sectors = reqlen / SECTOR;
    while (next < region_sectors || inflight) {
        int added = 0;
        while (next < region_sectors && nfree) {
            unsigned si = free_slots[nfree - 1];
            struct slot *s = &slots[si];
            s->hdr.type = type;
            s->hdr.reserved = 0;
            s->hdr.sector = next;
            s->status = 0xee;
            s->len = reqlen;
            if (type == VIRTIO_BLK_T_OUT)
                stamp(s->data, next, reqlen, tag);
            struct vbuf v[3] = { { &s->hdr, sizeof s->hdr }, { s->data, reqlen },
                                 { &s->status, 1 } };
            int h = virtq_add(q, v, type == VIRTIO_BLK_T_OUT ? 2 : 1,
                              type == VIRTIO_BLK_T_OUT ? 1 : 2, s, dev.indirect);
            if (h < 0)
                break;
            nfree--;
            next += sectors;
            inflight++;
            added++;
        }
        if (inflight > inflight_max)
            inflight_max = inflight;
        if (added)
            virtq_kick(q);
        virtq_wait(q, check);
        uint32_t len;
        void *tok;
        while (virtq_get(q, &len, &tok, 0)) {
            struct slot *s = tok;
            if (s->status != VIRTIO_BLK_S_OK) {
                printf("request at sector %lu: status %u\n",
                       (unsigned long)s->hdr.sector, s->status);
                CHECK(check, 0);
            }
            if (type == VIRTIO_BLK_T_IN)
                check_read(s->data, s->hdr.sector, s->len, tag, check + 1);
            free_slots[nfree++] = (uint16_t)(s - slots);
            inflight--;
            reqs++;
        }
    }
    return reqs;
}

static unsigned long notifies(void)
{
    return q->notifies;
}

static unsigned long interrupts(void)
{
    return dev.irqs;
}

int main(void)
{
    blkbench_args();
    int ids[VIRTIO_MMIO_SLOTS];
    int n = virtio_find(VIRTIO_ID_BLOCK, ids);
    CHECK(1, n >= 1);
    int found = 0;
    uint64_t want = VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
                    VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_RO) |
                    VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE);
    for (int i = 0; i < n && !found; i++) {
        int err = virtio_dev_init(&dev, ids[i], VIRTIO_ID_BLOCK, want, 0);
        if (err == -2 || err == -4) {
            printf("FAIL virtio/blkbench: slot %d is not a virtio 1.x (mmio version 2) "
                   "device\n", ids[i]);
            exit(VIRTIO_EXIT_NOT_V2);
        }
        CHECK_EQ(2, err, 0);
        if (virtio_has(&dev, VIRTIO_BLK_F_RO))
            virtio_reset(&dev);
        else
            found = 1;
    }
    CHECK(3, found);
    q = virtq_setup(&dev, 0, VQ_MAX_SIZE);
    CHECK(4, q != 0);
    virtio_driver_ok(&dev, BENCH_WAIT);
    CHECK(5, virtio_has(&dev, VIRTIO_BLK_F_FLUSH));
    uint64_t cap = virtio_config64(&dev, VIRTIO_BLK_CFG_CAPACITY);
    blkbench_region(cap);

    unsigned slots_n = dev.indirect ? q->num : q->num / 3;
    if (slots_n > MAX_INFLIGHT)
        slots_n = MAX_INFLIGHT;
    data = virtio_alloc((unsigned long)slots_n * 65536, 4096);
    /* touched once before the phases, as pvblkbench's buffers (in .bss) are by the start-up
     * code: the emulator's first touch of each host page (a page fault of the host) was
     * otherwise timed in read-4k, which then varied by a third from run to run */
    memset(data, 0, (unsigned long)slots_n * 65536);
    nfree = 0;
    for (unsigned i = 0; i < slots_n; i++) {
        slots[i].data = data + (unsigned long)i * 65536;
        free_slots[nfree++] = (uint16_t)(slots_n - 1 - i);
    }
    printf("blkbench: slot %d, %lu sectors, region %lu KiB x %lu passes, queue %u, "
           "up to %u requests in flight, wait %s, event_idx %d, indirect %d\n",
           dev.slot, (unsigned long)cap, (unsigned long)(region_sectors >> 1), passes,
           q->num, slots_n, virtio_wait_names[BENCH_WAIT], dev.event_idx, dev.indirect);

    blkbench_run();
}

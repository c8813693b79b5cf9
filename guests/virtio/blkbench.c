/*
 * blkbench.c - virtio-blk throughput: sequential reads and writes in 4 KiB
 * and 64 KiB requests over the first 32 MiB of the first read-write disk
 * (made by `mkimage.py bench.img --size 32M --id 2`), PASSES passes each
 * (the boot arguments region=BYTES and passes=N change them).
 *
 * Requests are kept in flight up to the queue size (one descriptor each
 * with VIRTIO_F_INDIRECT_DESC, else three: up to a third of the queue).
 * The driver waits with real interrupts (BENCH_WAIT, default 2 = irq;
 * 1 = wfi + PLIC polling, 0 = busy polling) and uses VIRTIO_F_EVENT_IDX
 * when offered.
 *
 * Phases, each announced by a "phase: <name>" line ("phase: end" after
 * the last), so that an emulator can time them:
 *   read-4k    (checks the mkimage.py pattern: sector number, "rvh-dsk", id 2)
 *   write-4k   (stamps the first 8 bytes of every sector, then FLUSH)
 *   read-64k   (checks the write-4k stamps)
 *   write-64k  (new stamps, then FLUSH)
 * then, untimed, a read of the region checking the write-64k stamps.
 * Each phase prints its bytes, `time` ticks (10 MHz), MB/s (10^6 bytes
 * per second) and requests per second.
 */
#include "virtio.h"

TEST_NAME("virtio/blkbench");

#ifndef BENCH_WAIT
#define BENCH_WAIT      VIRTIO_WAIT_IRQ
#endif
/* the boot arguments region=BYTES passes=N size a run (rvh bench overhead --quick) */
#define DEFAULT_PASSES  4
#define DEFAULT_REGION  (32UL << 20)
static unsigned long passes, region_bytes;
#define SECTOR          VIRTIO_BLK_SECTOR
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
static unsigned nfree, inflight_max;
static uint8_t *data;
static uint64_t region_sectors;

/* stamp: the first 8 bytes of every sector of a write */
static uint64_t stamp_of(uint64_t sector, unsigned tag)
{
    return sector ^ ((uint64_t)tag << 48) ^ 0x5a5a000000000000ULL;
}

static void stamp(uint8_t *buf, uint64_t sector, uint32_t len, unsigned tag)
{
    for (uint32_t off = 0; off < len; off += SECTOR)
        *(uint64_t *)(buf + off) = stamp_of(sector + off / SECTOR, tag);
}

/* tag 0: the mkimage.py pattern (id 2); else the stamps */
static void check_read(const uint8_t *buf, uint64_t sector, uint32_t len, unsigned tag,
                       long check)
{
    for (uint32_t off = 0; off < len; off += SECTOR) {
        uint64_t s = sector + off / SECTOR;
        uint64_t w = *(const uint64_t *)(buf + off);
        uint64_t want = tag ? stamp_of(s, tag) : s;
        if (w != want || (!tag && (memcmp(buf + off + 8, "rvh-dsk", 7) || buf[off + 15] != 2))) {
            printf("sector %lu: first word 0x%016lx, expected 0x%016lx%s\n",
                   (unsigned long)s, (unsigned long)w, (unsigned long)want,
                   tag ? "" : " (mkimage.py pattern id 2)");
            CHECK(check, 0);
        }
    }
}

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
static unsigned long run_pass(uint32_t type, uint32_t reqlen, unsigned tag, long check)
{
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

static void phase(const char *name, uint32_t type, uint32_t reqlen, unsigned tag,
                  long check)
{
    printf("phase: %s\n", name);
    unsigned long n0 = q->notifies, i0 = dev.irqs;
    inflight_max = 0;
    uint64_t t0 = rdtime();
    unsigned long reqs = 0;
    for (unsigned long p = 0; p < passes; p++)
        reqs += run_pass(type, reqlen, tag, check);
    if (type == VIRTIO_BLK_T_OUT)
        flush(check + 2);
    uint64_t ticks = rdtime() - t0;
    uint64_t bytes = (uint64_t)reqs * reqlen;
    printf("%s: %lu KiB in %lu requests of %u KiB, %lu ticks, ", name,
           (unsigned long)(bytes >> 10), reqs, reqlen >> 10, (unsigned long)ticks);
    print_rate(bytes, ticks, "MB/s");
    printf(", %lu requests/s, max %u in flight, %lu notifies, %lu interrupts\n",
           (unsigned long)(reqs * 10000000ULL / (ticks ? ticks : 1)), inflight_max,
           q->notifies - n0, dev.irqs - i0);
}

int main(void)
{
    passes = rvh_bootarg("passes", DEFAULT_PASSES);
    region_bytes = rvh_bootarg("region", DEFAULT_REGION);
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
    region_sectors = cap < region_bytes / SECTOR ? cap : region_bytes / SECTOR;
    region_sectors &= ~127ULL;          /* whole 64 KiB requests */
    CHECK(6, region_sectors >= 128 && passes >= 1);

    unsigned slots_n = dev.indirect ? q->num : q->num / 3;
    if (slots_n > MAX_INFLIGHT)
        slots_n = MAX_INFLIGHT;
    data = virtio_alloc((unsigned long)slots_n * 65536, 4096);
    nfree = 0;
    for (unsigned i = 0; i < slots_n; i++) {
        slots[i].data = data + (unsigned long)i * 65536;
        free_slots[nfree++] = (uint16_t)(slots_n - 1 - i);
    }
    printf("blkbench: slot %d, %lu sectors, region %lu KiB x %lu passes, queue %u, "
           "up to %u requests in flight, wait %s, event_idx %d, indirect %d\n",
           dev.slot, (unsigned long)cap, (unsigned long)(region_sectors >> 1), passes,
           q->num, slots_n, virtio_wait_names[BENCH_WAIT], dev.event_idx, dev.indirect);

    phase("read-4k", VIRTIO_BLK_T_IN, 4096, 0, 10);
    phase("write-4k", VIRTIO_BLK_T_OUT, 4096, 0x4b, 20);
    phase("read-64k", VIRTIO_BLK_T_IN, 65536, 0x4b, 30);
    phase("write-64k", VIRTIO_BLK_T_OUT, 65536, 0x64, 40);
    puts("phase: end");

    run_pass(VIRTIO_BLK_T_IN, 65536, 0x64, 50);
    printf("the region holds the write-64k stamps\n");
    pass();
}

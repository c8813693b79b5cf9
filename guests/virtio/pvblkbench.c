/*
 * pvblkbench.c - blkbench.c's workload over rvh's platform I/O extension (guests/common/
 * pvio.h): sequential reads and writes in 4 KiB and 64 KiB requests over the first 32 MiB of
 * the first read-write pv disk (mkimage.py bench.img --size 32M --id 2), PASSES passes each
 * (the boot arguments region=BYTES and passes=N change them),
 * with the ring kept full (64 requests in flight), one NOTIFY per batch and completions by
 * interrupt (wfi, then the PLIC).  The phases and checks are blkbench's:
 *   read-4k    (the mkimage.py pattern: sector number, "rvh-dsk", id 2)
 *   write-4k   (stamps the first 8 bytes of every sector, then FLUSH)
 *   read-64k   (checks the write-4k stamps)
 *   write-64k  (new stamps, then FLUSH)
 * then, untimed, a read of the region checking the write-64k stamps.
 */
#include "pvio.h"
#include "virtio.h"          /* print_rate */

TEST_NAME("virtio/pvblkbench");

/* the boot arguments region=BYTES passes=N size a run (rvh bench overhead --quick) */
#define DEFAULT_PASSES  4
#define DEFAULT_REGION  (32UL << 20)
static unsigned long passes, region_bytes;
#define SECTOR          512

static struct pvio_ring ring;
static struct pvio_dev dev;
static uint8_t data[PVIO_SLOTS][65536] __attribute__((aligned(4096)));
static uint64_t region_sectors;

static uint64_t stamp_of(uint64_t sector, unsigned tag)
{
    return sector ^ ((uint64_t)tag << 48) ^ 0x5a5a000000000000ULL;
}

static void stamp(uint8_t *buf, uint64_t sector, uint32_t len, unsigned tag)
{
    for (uint32_t off = 0; off < len; off += SECTOR)
        *(uint64_t *)(buf + off) = stamp_of(sector + off / SECTOR, tag);
}

static void check_read(const uint8_t *buf, uint64_t sector, uint32_t len, unsigned tag,
                       long check)
{
    for (uint32_t off = 0; off < len; off += SECTOR) {
        uint64_t s = sector + off / SECTOR;
        uint64_t w = *(const uint64_t *)(buf + off);
        uint64_t want = tag ? stamp_of(s, tag) : s;
        if (w != want || (!tag && (memcmp(buf + off + 8, "rvh-dsk", 7) || buf[off + 15] != 2))) {
            printf("sector %lu: first word 0x%016lx, expected 0x%016lx\n", (unsigned long)s,
                   (unsigned long)w, (unsigned long)want);
            CHECK(check, 0);
        }
    }
}

/* one pass over the region; returns the number of requests */
static unsigned long run_pass(uint8_t op, uint32_t reqlen, unsigned tag, long check)
{
    uint64_t next = 0;
    unsigned inflight = 0;
    unsigned long reqs = 0;
    while (next < region_sectors || inflight) {
        int added = 0;
        while (next < region_sectors && pvio_room(&dev, 0)) {
            unsigned slot = dev.q[0].req_prod % PVIO_SLOTS;
            if (op == RVH_PVIO_OP_WRITE)
                stamp(data[slot], next, reqlen, tag);
            pvio_post(&dev, 0, op, next, data[slot], reqlen, slot);
            next += reqlen / SECTOR;
            inflight++;
            added = 1;
        }
        if (added)
            pvio_kick(&dev, 0);
        volatile struct pvio_slot *s;
        if (!(s = pvio_response(&dev, 0))) {
            pvio_wait(&dev, 0, check);
            s = pvio_response(&dev, 0);
        }
        for (; s; s = pvio_response(&dev, 0)) {
            if (s->status != RVH_PVIO_S_OK) {
                printf("request at sector %lu: status %u\n", (unsigned long)s->sector,
                       s->status);
                CHECK(check, 0);
            }
            if (op == RVH_PVIO_OP_READ)
                check_read(data[s->id], s->sector, s->len, tag, check + 1);
            inflight--;
            reqs++;
        }
    }
    return reqs;
}

static void phase(const char *name, uint8_t op, uint32_t reqlen, unsigned tag, long check)
{
    printf("phase: %s\n", name);
    unsigned long n0 = dev.notifies, i0 = dev.irqs;
    uint64_t t0 = rdtime();
    unsigned long reqs = 0;
    for (unsigned long p = 0; p < passes; p++)
        reqs += run_pass(op, reqlen, tag, check);
    if (op == RVH_PVIO_OP_WRITE) {
        uint32_t len = 0;
        CHECK_EQ(check + 2, pvio_sync(&dev, 0, RVH_PVIO_OP_FLUSH, 0, 0, &len, check + 2),
                 RVH_PVIO_S_OK);
    }
    uint64_t ticks = rdtime() - t0;
    uint64_t bytes = (uint64_t)reqs * reqlen;
    printf("%s: %lu KiB in %lu requests of %u KiB, %lu ticks, ", name,
           (unsigned long)(bytes >> 10), reqs, reqlen >> 10, (unsigned long)ticks);
    print_rate(bytes, ticks, "MB/s");
    printf(", %lu requests/s, %lu notifies, %lu interrupts\n",
           (unsigned long)(reqs * 10000000ULL / (ticks ? ticks : 1)), dev.notifies - n0,
           dev.irqs - i0);
}

int main(void)
{
    passes = rvh_bootarg("passes", DEFAULT_PASSES);
    region_bytes = rvh_bootarg("region", DEFAULT_REGION);
    int n = pvio_count(), found = 0;
    CHECK(1, n >= 1);
    for (int i = 0; i < n && !found; i++) {
        CHECK_EQ(2, pvio_open(&dev, i), 0);
        found = dev.type == RVH_PVIO_TYPE_BLK && !dev.readonly;
    }
    CHECK(3, found);
    CHECK_EQ(4, pvio_attach(&dev, 0, &ring), 0);
    region_sectors = dev.capacity < region_bytes / SECTOR ? dev.capacity : region_bytes / SECTOR;
    region_sectors &= ~127ULL;
    CHECK(6, region_sectors >= 128 && passes >= 1);
    printf("pvblkbench: pv device %d, %lu sectors, region %lu KiB x %lu passes, up to %d "
           "requests in flight\n", dev.index, (unsigned long)dev.capacity,
           (unsigned long)(region_sectors >> 1), passes, PVIO_SLOTS);
    phase("read-4k", RVH_PVIO_OP_READ, 4096, 0, 10);
    phase("write-4k", RVH_PVIO_OP_WRITE, 4096, 0x4b, 20);
    phase("read-64k", RVH_PVIO_OP_READ, 65536, 0x4b, 30);
    phase("write-64k", RVH_PVIO_OP_WRITE, 65536, 0x64, 40);
    puts("phase: end");
    run_pass(RVH_PVIO_OP_READ, 65536, 0x64, 50);
    printf("the region holds the write-64k stamps\n");
    pass();
}

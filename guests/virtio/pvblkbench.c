/*
 * pvblkbench.c - blkbench.h's workload (the same phases, requests and checks as blkbench.c)
 * over rvh's platform I/O extension (guests/common/pvio.h): the first read-write pv disk, its
 * ring kept full (64 requests in flight), one NOTIFY per batch and completions by interrupt
 * (wfi, then the PLIC).
 */
#include "pvio.h"
#include "blkbench.h"

TEST_NAME("virtio/pvblkbench");

static struct pvio_ring ring;
static struct pvio_dev dev;
static uint8_t data[PVIO_SLOTS][65536] __attribute__((aligned(4096)));

/* one pass over the region; returns the number of requests */
static unsigned long run_pass(int write, uint32_t reqlen, unsigned tag, long check)
{
    uint8_t op = write ? RVH_PVIO_OP_WRITE : RVH_PVIO_OP_READ;
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
        if (inflight > inflight_max)
            inflight_max = inflight;
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

static void flush(long check)
{
    uint32_t len = 0;
    CHECK_EQ(check, pvio_sync(&dev, 0, RVH_PVIO_OP_FLUSH, 0, 0, &len, check), RVH_PVIO_S_OK);
}

static unsigned long notifies(void)
{
    return dev.notifies;
}

static unsigned long interrupts(void)
{
    return dev.irqs;
}

int main(void)
{
    blkbench_args();
    int n = pvio_count(), found = 0;
    CHECK(1, n >= 1);
    for (int i = 0; i < n && !found; i++) {
        CHECK_EQ(2, pvio_open(&dev, i), 0);
        found = dev.type == RVH_PVIO_TYPE_BLK && !dev.readonly;
    }
    CHECK(3, found);
    CHECK_EQ(4, pvio_attach(&dev, 0, &ring), 0);
    blkbench_region(dev.capacity);
    printf("pvblkbench: pv device %d, %lu sectors, region %lu KiB x %lu passes, up to %d "
           "requests in flight\n", dev.index, (unsigned long)dev.capacity,
           (unsigned long)(region_sectors >> 1), passes, PVIO_SLOTS);
    blkbench_run();
}

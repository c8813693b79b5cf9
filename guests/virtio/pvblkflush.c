/*
 * pvblkflush.c - blkflush.c over rvh's platform I/O extension: writes sector s (0, 1, 2, ...
 * wrapping at the capacity) with a pattern naming s and a generation, then a FLUSH, and once
 * the FLUSH completed prints "flushed <s> <generation>".  The host test kills the emulator with
 * SIGKILL at an arbitrary moment and checks that every sector reported flushed holds its data
 * (a FLUSH completes only after the writes before it are on stable storage).
 */
#include "pvio.h"

TEST_NAME("virtio/pvblkflush");

#define SECTOR 512
#define WRITES 6000 /* a few wraps of a 1 MiB disk (2048 sectors) */

static struct pvio_ring ring;
static struct pvio_dev dev;
static uint8_t data[SECTOR] __attribute__((aligned(64)));

int main(void)
{
    CHECK(1, pvio_count() >= 1);
    CHECK_EQ(2, pvio_open(&dev, 0), 0);
    CHECK(3, dev.type == RVH_PVIO_TYPE_BLK && !dev.readonly);
    CHECK_EQ(4, pvio_attach(&dev, 0, &ring), 0);
    for (uint64_t n = 0; n < WRITES; n++) {
        uint64_t sector = n % dev.capacity, generation = n / dev.capacity;
        for (unsigned i = 0; i < SECTOR; i++)
            data[i] = (uint8_t)(sector * 31 + generation * 7 + i);
        *(uint64_t *)data = sector;
        *(uint64_t *)(data + 8) = generation;
        uint32_t len = SECTOR;
        CHECK_EQ(5, pvio_sync(&dev, 0, RVH_PVIO_OP_WRITE, sector, data, &len, 6), RVH_PVIO_S_OK);
        len = 0;
        CHECK_EQ(7, pvio_sync(&dev, 0, RVH_PVIO_OP_FLUSH, 0, 0, &len, 8), RVH_PVIO_S_OK);
        printf("flushed %lu %lu\n", (unsigned long)sector, (unsigned long)generation);
    }
    pass();
    return 0;
}

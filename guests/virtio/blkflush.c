/*
 * blkflush.c - a write-heavy workload for the durability test.
 *
 * Writes sector s (for s = 0, 1, 2, ... up to the capacity, wrapping) with a pattern naming s
 * and a generation, then issues FLUSH and, once the FLUSH completed, prints
 * "flushed <s> <generation>".  The host test kills the emulator with SIGKILL at an arbitrary
 * moment and checks that every sector reported flushed holds its data in the image
 * (virtio 1.2, 5.2.6.1: a FLUSH completes only after the writes before it are durable).
 * Each write is followed by its own FLUSH, so the last "flushed" line is a precise claim.
 */
#include "smode.h"
#include "virtio.h"

#define SECTOR VIRTIO_BLK_SECTOR
TEST_NAME("virtio/blkflush");

#define WRITES 6000 /* a few wraps of a 1 MiB disk (2048 sectors) */

static struct virtio_dev dev;
static struct virtq *q;
static struct virtio_blk_req_hdr hdr __attribute__((aligned(16)));
static uint8_t status __attribute__((aligned(16)));
static uint8_t data[SECTOR] __attribute__((aligned(16)));

static uint8_t request(uint32_t type, uint64_t sector, int with_data)
{
    struct vbuf bufs[3];
    unsigned n = 0;
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    bufs[n].addr = &hdr;
    bufs[n++].len = sizeof hdr;
    if (with_data) {
        bufs[n].addr = data;
        bufs[n++].len = SECTOR;
    }
    status = 0xff;
    bufs[n].addr = &status;
    bufs[n++].len = 1;
    virtq_sync(q, bufs, n - 1, 1, 0, 10);
    return status;
}

int main(void)
{
    int ids[VIRTIO_MMIO_SLOTS];
    CHECK(1, virtio_find(VIRTIO_ID_BLOCK, ids) >= 1);
    CHECK_EQ(2, virtio_dev_init(&dev, ids[0], VIRTIO_ID_BLOCK,
                                VIRTIO_BIT(VIRTIO_BLK_F_FLUSH), 0), 0);
    q = virtq_setup(&dev, 0, 64);
    CHECK(3, q != 0);
    virtio_driver_ok(&dev, VIRTIO_WAIT_POLL);
    CHECK(4, virtio_has(&dev, VIRTIO_BLK_F_FLUSH));
    uint64_t capacity = virtio_config64(&dev, VIRTIO_BLK_CFG_CAPACITY);
    for (uint64_t n = 0; n < WRITES; n++) {
        uint64_t sector = n % capacity, generation = n / capacity;
        for (unsigned i = 0; i < SECTOR; i++)
            data[i] = (uint8_t)(sector * 31 + generation * 7 + i);
        *(uint64_t *)data = sector;
        *(uint64_t *)(data + 8) = generation;
        CHECK_EQ(5, request(VIRTIO_BLK_T_OUT, sector, 1), VIRTIO_BLK_S_OK);
        CHECK_EQ(6, request(VIRTIO_BLK_T_FLUSH, 0, 0), VIRTIO_BLK_S_OK);
        printf("flushed %lu %lu\n", (unsigned long)sector, (unsigned long)generation);
    }
    pass();
    return 0;
}

/*
 * blkbig.c - virtio-blk requests far larger than a page, self-checking: 256 KiB and 1 MiB
 * reads and writes, each in one request.
 *
 * Needs a read-write disk made by `mkimage.py disk0.img --size 8M --id 0`.  Under the
 * hypervisor's emulated path such a request is larger than one bounce buffer: the hypervisor
 * splits it into several machine requests (docs/virtio.md, "Requests larger than a bounce
 * buffer"), and this guest checks that the result is the one a single request gives.
 *
 *   - the device's limits: seg_max, and size_max when VIRTIO_BLK_F_SIZE_MAX is offered,
 *   - for each size, in two layouts (the data in segments of size_max, or of a size that
 *     keeps the chain within seg_max when there is none; and the data in one segment): the
 *     region read in one request and compared with what it must hold, pattern k written in
 *     one request, read back in one request and compared; used lengths checked,
 *   - a 1 MiB read whose second half lies past the end of the disk: IOERR.
 */
#include "blkdev.h"

TEST_NAME("virtio/blkbig");

#define SECTOR          VIRTIO_BLK_SECTOR
#define MAX_BYTES       (1024 * 1024)
#define MAX_DESCS       (VQ_MAX_SIZE - 2)   /* header and status take two */

static struct blk disk;
static struct virtio_blk_req_hdr hdr __attribute__((aligned(16)));
static uint8_t status;
static struct vbuf chain[VQ_MAX_SIZE];
static uint8_t *wbuf, *rbuf;
static unsigned requests;

static void fill_region(uint8_t *buf, uint64_t sector, uint32_t bytes, unsigned k)
{
    for (uint32_t off = 0; off < bytes; off += SECTOR)
        disk_pattern_fill(buf + off, sector + off / SECTOR, k);
}

/* 0 when buf holds pattern k for the region, else the first bad sector printed, 1 */
static int region_differs(const uint8_t *buf, uint64_t sector, uint32_t bytes, unsigned k)
{
    static uint8_t want[SECTOR];
    for (uint32_t off = 0; off < bytes; off += SECTOR) {
        disk_pattern_fill(want, sector + off / SECTOR, k);
        if (memcmp(want, buf + off, SECTOR)) {
            printf("sector %lu: not pattern %u\n", (unsigned long)(sector + off / SECTOR), k);
            return 1;
        }
    }
    return 0;
}

/* One request of `bytes` of data at `sector`, the data in segments of at most `segment`
 * bytes; returns its status, *used its used length. */
static uint8_t request(uint32_t type, uint64_t sector, uint8_t *buf, uint32_t bytes,
                       uint32_t segment, uint32_t *used, long check)
{
    unsigned n = 0;
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    chain[n++] = (struct vbuf){ &hdr, sizeof hdr };
    for (uint32_t off = 0; off < bytes; off += segment) {
        CHECK(check, n <= MAX_DESCS);
        chain[n++] = (struct vbuf){ buf + off, bytes - off < segment ? bytes - off : segment };
    }
    status = 0xee;
    chain[n++] = (struct vbuf){ &status, 1 };
    unsigned n_out = type == VIRTIO_BLK_T_IN ? 1 : n - 1;
    *used = virtq_sync(disk.q, chain, n_out, n - n_out, 0, check);
    requests++;
    return status;
}

/* The segment size a driver keeping to the device's limits uses for `bytes` of data. */
static uint32_t segment_for(uint32_t bytes)
{
    if (disk.size_max)
        return disk.size_max;
    uint32_t limit = disk.seg_max && disk.seg_max < MAX_DESCS ? disk.seg_max : MAX_DESCS;
    uint32_t segment = (bytes + limit - 1) / limit;
    segment = (segment + 4095) & ~4095u;
    return segment > 8192 ? segment : 8192;
}

/* read (expecting pattern `before`), write pattern k, read back: three requests */
static void round_trip(uint64_t sector, uint32_t bytes, uint32_t segment, unsigned before,
                       unsigned k, long check)
{
    uint32_t used;
    memset(rbuf, 0xaa, bytes);
    CHECK_EQ(check, request(VIRTIO_BLK_T_IN, sector, rbuf, bytes, segment, &used, check),
             VIRTIO_BLK_S_OK);
    CHECK_EQ(check + 1, used, bytes + 1);
    CHECK(check + 2, !region_differs(rbuf, sector, bytes, before));
    fill_region(wbuf, sector, bytes, k);
    CHECK_EQ(check + 3, request(VIRTIO_BLK_T_OUT, sector, wbuf, bytes, segment, &used, check),
             VIRTIO_BLK_S_OK);
    CHECK_EQ(check + 4, used, 1);
    memset(rbuf, 0x55, bytes);
    CHECK_EQ(check + 5, request(VIRTIO_BLK_T_IN, sector, rbuf, bytes, segment, &used, check),
             VIRTIO_BLK_S_OK);
    CHECK_EQ(check + 6, used, bytes + 1);
    CHECK(check + 7, !region_differs(rbuf, sector, bytes, k));
    printf("%u KiB at sector %lu in %u-byte segments: read, written (pattern %u), read back\n",
           bytes / 1024, (unsigned long)sector, segment, k);
}

int main(void)
{
    struct virtio_slot slots[VIRTIO_MMIO_SLOTS];
    int ids[VIRTIO_MMIO_SLOTS];
    virtio_scan(slots, 0);
    CHECK(1, virtio_find(VIRTIO_ID_BLOCK, ids) >= 1);
    uint64_t features = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
                        VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_RO);
    blk_open(&disk, ids[0], features, VIRTIO_WAIT_POLL, VQ_MAX_SIZE, 2);
    CHECK(5, !disk.ro);
    uint64_t capacity = disk.capacity;
    CHECK(6, capacity >= 8192);
    printf("capacity %lu sectors, seg_max %u, size_max %u\n", (unsigned long)capacity,
           disk.seg_max, disk.size_max);
    if (disk.size_max) {
        /* what the limits allow must fit a 1 MiB request, in sectors */
        CHECK(7, disk.size_max % SECTOR == 0);
        CHECK(8, (uint64_t)disk.seg_max * disk.size_max >= MAX_BYTES);
    }
    wbuf = virtio_alloc(MAX_BYTES, 4096);
    rbuf = virtio_alloc(MAX_BYTES, 4096);

    /* odd sectors: a split at a bounce buffer's size is no sector boundary of note */
    round_trip(1001, 256 * 1024, segment_for(256 * 1024), 0, 41, 10);
    round_trip(1001, 256 * 1024, 256 * 1024, 41, 42, 20);
    round_trip(4093, MAX_BYTES, segment_for(MAX_BYTES), 0, 43, 30);
    round_trip(4093, MAX_BYTES, MAX_BYTES, 43, 44, 40);

    /* half of it past the end: the request fails as a whole (its first error) */
    uint32_t used;
    uint8_t st = request(VIRTIO_BLK_T_IN, capacity - 1024, rbuf, MAX_BYTES, MAX_BYTES, &used, 50);
    printf("1024 KiB read from sector %lu, 512 KiB past the end: status %u\n",
           (unsigned long)(capacity - 1024), st);
    CHECK_EQ(51, st, VIRTIO_BLK_S_IOERR);
    printf("blkbig: %u requests\n", requests);
    blk_close(&disk, 52);                       /* the IOERR left the device in good standing */
    pass();
}

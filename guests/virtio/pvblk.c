/*
 * pvblk.c - block I/O over rvh's platform I/O extension (guests/common/pvio.h), the pv
 * counterpart of virtio/blk.c.  rvh only (QEMU has no such extension):
 *
 *   rvh run --sbi pvblk.elf --drive file=disk0.img,if=pv --drive file=disk1.img,if=pv,readonly=on
 *
 * with disk0 (>= 4 MiB, mkimage.py pattern 0) and disk1 (1 MiB, pattern 1), as virtio/blk.
 *   - the device records (type, capacity, read-only, interrupt source);
 *   - disk1 read whole in 64 KiB requests, 16 to a batch with one NOTIFY, against the pattern;
 *   - a batch of writes on disk0 (sectors 0..1023, a new pattern, 4 KiB and 64 KiB requests),
 *     a FLUSH, then every written sector read back (one batch) and compared, and a sector
 *     past them still holding pattern 0;
 *   - the refusals: a buffer outside RAM, a range past the disk, a partial sector, an unknown
 *     op, a write to the read-only disk -- each its status, in one batch with a good request;
 *   - one request at a time (pvio_sync) for the interrupt path: one NOTIFY, one interrupt.
 * The test (tests/system/test_pvio_guests.py) checks disk0's sectors 0..1023 on the host.
 */
#include "pvio.h"
#include "diskpattern.h"

TEST_NAME("virtio/pvblk");

#define SECTOR          512
#define BIG             (64 * 1024)
#define WRITTEN         1024            /* sectors of disk0 the guest rewrites */

static struct pvio_ring ring0, ring1;
static struct pvio_dev disk0, disk1;
static uint8_t buf[16 * BIG] __attribute__((aligned(4096)));
static uint8_t expect[SECTOR];

/* what the guest writes to disk0's sector s (tests/system/test_pvio_guests.py: written()) */
static void written_fill(uint8_t *b, uint64_t s)
{
    for (int j = 0; j < SECTOR; j++)
        b[j] = (uint8_t)(s * 3 + j * 5 + 0x5a);
    memcpy(b, "pvblk", 5);
    b[5] = (uint8_t)s;
    b[6] = (uint8_t)(s >> 8);
}

static void compare(const uint8_t *got, uint64_t s, int kind, long check)
{
    if (kind < 0)
        written_fill(expect, s);
    else
        disk_pattern_fill(expect, s, kind);
    if (memcmp(got, expect, SECTOR)) {
        printf("pvblk: sector %lu differs\n", (unsigned long)s);
        rvh_check_failed(check, __LINE__, "sector contents");
    }
}

/* post n requests on d's ring, kick once, wait for all, check each status */
static void batch_done(struct pvio_dev *d, unsigned n, long check)
{
    pvio_kick(d, 0);
    for (unsigned i = 0; i < n; i++) {
        while (1) {
            volatile struct pvio_slot *s = pvio_response(d, 0);
            if (s) {
                CHECK_EQ(check, s->status, RVH_PVIO_S_OK);
                CHECK_EQ(check, s->id, i);
                break;
            }
            pvio_wait(d, 0, check);
        }
    }
}

int main(void)
{
    CHECK(1, pvio_count() >= 2);
    CHECK_EQ(2, pvio_open(&disk0, 0), 0);
    CHECK_EQ(3, pvio_open(&disk1, 1), 0);
    CHECK_EQ(4, disk0.type, RVH_PVIO_TYPE_BLK);
    CHECK(5, disk0.capacity >= 8192 && !disk0.readonly && disk0.max_length >= BIG);
    CHECK_EQ(6, disk1.capacity, 2048);
    CHECK_EQ(7, disk1.readonly, 1);
    CHECK_EQ(8, disk1.irq, disk0.irq + 1);
    CHECK_EQ(9, pvio_attach(&disk0, 0, &ring0), 0);
    CHECK_EQ(10, pvio_attach(&disk1, 0, &ring1), 0);

    /* disk1 whole: 16 requests of 64 KiB per batch */
    for (uint64_t first = 0; first < disk1.capacity; first += 16 * BIG / SECTOR) {
        for (unsigned i = 0; i < 16; i++)
            CHECK(11, pvio_post(&disk1, 0, RVH_PVIO_OP_READ, first + i * (BIG / SECTOR),
                                buf + i * BIG, BIG, i) != 0);
        batch_done(&disk1, 16, 12);
        for (unsigned s = 0; s < 16 * BIG / SECTOR; s++)
            compare(buf + s * SECTOR, first + s, 1, 13);
    }

    /* disk0: sectors 0..1023 rewritten, 4 KiB requests then 64 KiB ones, then a FLUSH */
    for (uint64_t s = 0; s < WRITTEN; s++)
        written_fill(buf + s * SECTOR, s);
    unsigned n = 0;
    for (uint64_t s = 0; s < 256; s += 8, n++)           /* 32 x 4 KiB */
        CHECK(14, pvio_post(&disk0, 0, RVH_PVIO_OP_WRITE, s, buf + s * SECTOR, 4096, n) != 0);
    for (uint64_t s = 256; s < WRITTEN; s += 128, n++)   /* 6 x 64 KiB */
        CHECK(15, pvio_post(&disk0, 0, RVH_PVIO_OP_WRITE, s, buf + s * SECTOR, BIG, n) != 0);
    CHECK(16, pvio_post(&disk0, 0, RVH_PVIO_OP_FLUSH, 0, 0, 0, n++) != 0);
    batch_done(&disk0, n, 17);
    memset(buf, 0, sizeof buf);
    for (unsigned i = 0; i < 8; i++)
        CHECK(18, pvio_post(&disk0, 0, RVH_PVIO_OP_READ, i * 128, buf + i * BIG, BIG, i) != 0);
    CHECK(19, pvio_post(&disk0, 0, RVH_PVIO_OP_READ, WRITTEN, buf + 8 * BIG, SECTOR, 8) != 0);
    batch_done(&disk0, 9, 20);
    for (uint64_t s = 0; s < WRITTEN; s++)
        compare(buf + s * SECTOR, s, -1, 21);
    compare(buf + 8 * BIG, WRITTEN, 0, 22);

    /* refusals, each with its status, beside a good request */
    static const struct { uint8_t op; uint64_t sector; uintptr_t addr; uint32_t len;
                          uint8_t status; } bad[] = {
        { RVH_PVIO_OP_READ, 0, 0x1000, SECTOR, RVH_PVIO_S_BAD_ADDRESS },       /* the ROM */
        { RVH_PVIO_OP_READ, 0, UART0_BASE, SECTOR, RVH_PVIO_S_BAD_ADDRESS },   /* MMIO */
        { RVH_PVIO_OP_READ, ~0UL, 0, SECTOR, RVH_PVIO_S_BAD_LENGTH },          /* past the disk */
        { RVH_PVIO_OP_READ, 0, 0, 100, RVH_PVIO_S_BAD_LENGTH },                /* partial */
        { RVH_PVIO_OP_READ, 0, 0, 1u << 30, RVH_PVIO_S_BAD_LENGTH },           /* huge */
        { 0x77, 0, 0, SECTOR, RVH_PVIO_S_UNSUPPORTED },
        { RVH_PVIO_OP_READ, 7, 0, SECTOR, RVH_PVIO_S_OK },
    };
    unsigned nbad = sizeof bad / sizeof bad[0];
    for (unsigned i = 0; i < nbad; i++)
        CHECK(23, pvio_post(&disk0, 0, bad[i].op, bad[i].sector,
                            bad[i].addr ? (void *)bad[i].addr : buf, bad[i].len, i) != 0);
    pvio_kick(&disk0, 0);
    for (unsigned i = 0; i < nbad; i++) {
        volatile struct pvio_slot *s;
        while (!(s = pvio_response(&disk0, 0)))
            pvio_wait(&disk0, 0, 24);
        CHECK_EQ(25, s->status, bad[i].status);
    }
    compare(buf, 7, -1, 26);
    uint32_t len = SECTOR;
    CHECK_EQ(27, pvio_sync(&disk1, 0, RVH_PVIO_OP_WRITE, 0, buf, &len, 28), RVH_PVIO_S_READ_ONLY);

    /* one request at a time: each costs one NOTIFY and brings one interrupt */
    unsigned long irqs = disk0.irqs, notifies = disk0.notifies;
    for (uint64_t s = 0; s < 64; s++) {
        len = SECTOR;
        CHECK_EQ(29, pvio_sync(&disk0, 0, RVH_PVIO_OP_READ, s, buf, &len, 30), RVH_PVIO_S_OK);
        CHECK_EQ(31, len, SECTOR);
        compare(buf, s, -1, 32);
    }
    CHECK_EQ(33, disk0.notifies - notifies, 64);
    CHECK(34, disk0.irqs - irqs >= 60);
    printf("pvblk: %lu requests, %lu notifies, %lu interrupts\n",
           disk0.requests + disk1.requests, disk0.notifies + disk1.notifies,
           disk0.irqs + disk1.irqs);
    pass();
    return 0;
}

/*
 * ringfuzz.c - random descriptor tables against the hypervisor's emulated virtio-blk (run it
 * only under the hypervisor, with a scratch drive: rvh run --hyp --guest ringfuzz.elf,drive=IMG).
 *
 * A fixed-seed xorshift generator fills the whole descriptor table (and an indirect-table area)
 * with descriptors that are half honest requests (a header, data, a status byte, in random
 * layouts, types and sectors) and half noise: addresses in its RAM, straddling its end, past it,
 * anywhere in 64 bits; lengths from 0 to 4 GiB; any flags; next indices in and beyond the queue.
 * After each kick the device must answer within a second of guest time, by completing the chain
 * or by DEVICE_NEEDS_RESET (then a reset brings it back); every 32 rounds an honest read must
 * work.  A hang, or a device that stays broken, fails the run; the test around it
 * (tests/system/test_hyp_virtio.py) also checks a victim VM's memory and the hypervisor's code.
 */
#include "smode.h"
#include "virtio.h"

TEST_NAME("hyp/ringfuzz");

#define SECTOR      VIRTIO_BLK_SECTOR
#define QSIZE       16
#define ROUNDS      400
#define POOL        (64 * 1024)
#define ANSWER_TICKS 10000000UL         /* 1 s of `time` */

static struct virtio_dev dev;
static struct virtq *q;
static int slot;
static struct virtio_blk_req_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t pool[POOL] __attribute__((aligned(4096)));
static struct virtq_desc tables[QSIZE] __attribute__((aligned(16)));
static unsigned long ram_end, completed, refused;
static uint64_t state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static void open_device(long n)
{
    CHECK_EQ(n, virtio_dev_init(&dev, slot, VIRTIO_ID_BLOCK,
                                VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC), 0), 0);
    q = virtq_setup(&dev, 0, QSIZE);
    CHECK(n + 1, q != 0);
    virtio_driver_ok(&dev, VIRTIO_WAIT_POLL);
}

static void honest_read(long n)
{
    struct vbuf bufs[3] = {{&hdr, sizeof hdr}, {pool, SECTOR}, {(const void *)&status_byte, 1}};
    hdr.type = VIRTIO_BLK_T_IN;
    hdr.reserved = 0;
    hdr.sector = 3;
    status_byte = 0xff;
    CHECK_EQ(n, virtq_sync(q, bufs, 1, 2, 0, n + 1), SECTOR + 1);
    CHECK_EQ(n + 2, status_byte, VIRTIO_BLK_S_OK);
}

static uint64_t random_address(void)
{
    switch (rnd() % 8) {
    case 0: return 0;
    case 1: return ram_end - (rnd() % 4096);
    case 2: return ram_end + (rnd() % (64UL << 20));
    case 3: return rnd();
    case 4: return (uintptr_t)tables;
    default: return (uintptr_t)pool + rnd() % POOL;
    }
}

static uint32_t random_length(void)
{
    static const uint32_t lengths[] = {0, 1, 15, 16, 512, 4096, 65536, 0x80000000u, 0xffffffffu};
    return rnd() % 4 ? (uint32_t)(rnd() % 8192) : lengths[rnd() % 9];
}

static void noise(struct virtq_desc *d, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        d[i].addr = random_address();
        d[i].len = random_length();
        d[i].flags = (uint16_t)(rnd() % 8);
        d[i].next = (uint16_t)(rnd() % (QSIZE + 4));
    }
}

/* an honest request in descriptors 0.. (direct) or in `tables` (indirect) */
static void honest(void)
{
    static const uint32_t types[] = {VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
                                     VIRTIO_BLK_T_GET_ID, 0x7f};
    hdr.type = types[rnd() % 5];
    hdr.reserved = 0;
    hdr.sector = rnd() % 4 ? rnd() % 2048 : rnd();
    uint32_t data = (uint32_t)(rnd() % 9) * SECTOR;
    int writes = hdr.type == VIRTIO_BLK_T_IN || hdr.type == VIRTIO_BLK_T_GET_ID;
    int indirect = rnd() % 2;
    struct virtq_desc *d = indirect ? tables : q->desc;
    unsigned n = 0;
    d[n] = (struct virtq_desc){(uintptr_t)&hdr, sizeof hdr, VIRTQ_DESC_F_NEXT, (uint16_t)(n + 1)};
    n++;
    if (data) {
        d[n] = (struct virtq_desc){(uintptr_t)pool, data,
                                   (uint16_t)(VIRTQ_DESC_F_NEXT | (writes ? VIRTQ_DESC_F_WRITE : 0)),
                                   (uint16_t)(n + 1)};
        n++;
    }
    d[n] = (struct virtq_desc){(uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0};
    if (indirect)
        q->desc[0] = (struct virtq_desc){(uintptr_t)tables, 16 * (n + 1), VIRTQ_DESC_F_INDIRECT, 0};
}

int main(void)
{
    int ids[VIRTIO_MMIO_SLOTS];
    uint8_t byte;
    for (ram_end = RAM_BASE; probe_load8(ram_end, &byte) == -1; ram_end += 1UL << 20)
        ;
    CHECK(1, virtio_find(VIRTIO_ID_BLOCK, ids) >= 1);
    slot = ids[0];
    open_device(2);
    honest_read(4);
    for (unsigned round = 0; round < ROUNDS; round++) {
        noise(q->desc, QSIZE);
        noise(tables, QSIZE);
        uint16_t head = 0;
        int is_honest = rnd() % 2;
        if (is_honest)
            honest();
        else
            head = (uint16_t)(rnd() % (QSIZE + 2));
        int jump = rnd() % 16 == 0;
        status_byte = 0xff;
        vio_mb();
        uint16_t used_before = *(volatile uint16_t *)&q->used->idx;
        q->avail->ring[q->avail_idx % q->num] = head;
        vio_mb();
        q->avail_idx = (uint16_t)(q->avail_idx + (jump ? QSIZE + 1 + rnd() % 100 : 1));
        q->avail->idx = q->avail_idx;
        vio_mb();
        vio_write(&dev, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
        uint64_t t0 = rdtime();
        for (;;) {
            if (vio_read(&dev, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET) {
                CHECK(14, !is_honest || jump);      /* only noise is refused */
                refused++;
                break;
            }
            if (*(volatile uint16_t *)&q->used->idx != used_before) {
                completed++;
                /* an honest request gets its status: OK, IOERR or UNSUPP */
                CHECK(12, !is_honest || status_byte <= VIRTIO_BLK_S_UNSUPP);
                break;
            }
            CHECK(10, rdtime() - t0 < ANSWER_TICKS);    /* the device must answer */
        }
        /* start each round from a fresh device: the noise left the rings in any state */
        virtio_reset(&dev);
        open_device(11);
        if (round % 32 == 31)
            honest_read(13);
    }
    honest_read(16);
    printf("ringfuzz: %u rounds: %lu chains completed, %lu refused (device reset)\n", ROUNDS,
           completed, refused);
    CHECK(19, completed > 0 && refused > 0);
    pass();
    return 0;
}

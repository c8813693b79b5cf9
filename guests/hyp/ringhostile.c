/*
 * ringhostile.c - a VM whose virtio-blk driver lies (run it only under the hypervisor, with a
 * drive: rvh run --hyp --guest ringhostile.elf,drive=IMG).
 *
 * It hands the hypervisor's emulated device descriptor chains no honest driver would: buffers
 * outside the VM's RAM (address 0, straddling its end, where the host keeps another VM, 2^63),
 * a 4 GiB length, loops, next and head indices beyond the queue, an available index that jumps
 * by more than the queue, indirect tables outside its RAM, nested, flagged NEXT, of a size that
 * is no multiple of 16 or looping inside, device-readable buffers after writable ones, rings
 * outside its RAM, a request larger than the hypervisor forwards, and a reset while a read is
 * in flight.  Each must end the way virtio 1.2 says a device may end it (DEVICE_NEEDS_RESET
 * with a configuration change interrupt, or IOERR for the oversized request), after which a
 * reset brings the device back and an honest read works.  Nothing may be written anywhere:
 * the test around it (tests/system/test_hyp_virtio.py) checks that the disk image, a victim
 * VM's memory and the hypervisor's code are unchanged.  Ends with PASS, or FAIL and the check.
 */
#include "smode.h"
#include "virtio.h"

TEST_NAME("hyp/ringhostile");

#define SECTOR      VIRTIO_BLK_SECTOR
#define QSIZE       16
/* more than the hypervisor serves in one disk request (16 machine requests of 128 KiB) */
#define BIG         (2 * 1024 * 1024 + 4096)

static struct virtio_dev dev;
static struct virtq *q;
static int slot;
static struct virtio_blk_req_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t data[BIG] __attribute__((aligned(4096)));
static struct virtq_desc table[4] __attribute__((aligned(16)));
static unsigned long ram_end, broken;

static void open_device(long n)
{
    CHECK_EQ(n, virtio_dev_init(&dev, slot, VIRTIO_ID_BLOCK,
                                VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC), 0), 0);
    CHECK(n + 1, virtio_has(&dev, VIRTIO_F_INDIRECT_DESC));
    q = virtq_setup(&dev, 0, QSIZE);
    CHECK(n + 2, q != 0);
    virtio_driver_ok(&dev, VIRTIO_WAIT_POLL);
}

/* An honest one-sector read through the library: the device works. */
static void honest_read(long n)
{
    struct vbuf bufs[3] = {{&hdr, sizeof hdr}, {data, SECTOR}, {(const void *)&status_byte, 1}};
    hdr.type = VIRTIO_BLK_T_IN;
    hdr.reserved = 0;
    hdr.sector = 1;
    status_byte = 0xff;
    CHECK_EQ(n, virtq_sync(q, bufs, 1, 2, 0, n + 1), SECTOR + 1);
    CHECK_EQ(n + 2, status_byte, VIRTIO_BLK_S_OK);
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    q->desc[i].addr = addr;
    q->desc[i].len = len;
    q->desc[i].flags = flags;
    q->desc[i].next = next;
}

/* the header in descriptor 0, chained to descriptor 1 */
static void header_then(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    hdr.type = VIRTIO_BLK_T_IN;
    hdr.reserved = 0;
    hdr.sector = 0;
    set_desc(0, (uintptr_t)&hdr, sizeof hdr, VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, addr, len, flags, next);
    set_desc(2, (uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0);
}

static void post(uint16_t head, uint16_t advance)
{
    q->avail->ring[q->avail_idx % q->num] = head;
    vio_mb();
    q->avail_idx = (uint16_t)(q->avail_idx + advance);
    q->avail->idx = q->avail_idx;
    vio_mb();
    vio_write(&dev, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* The device gave up on the queue as 2.1.2 says: DEVICE_NEEDS_RESET, a configuration change
 * interrupt; then a reset brings it back. */
static void expect_needs_reset(long n)
{
    uint64_t t0 = rdtime();
    while (!(vio_read(&dev, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET))
        CHECK(n, rdtime() - t0 < VIRTIO_WAIT_TIMEOUT);
    CHECK(n + 1, vio_read(&dev, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
    broken++;
    virtio_reset(&dev);
    open_device(n + 2);
    honest_read(n + 5);
}

static void wild_buffers(void)
{
    const uint64_t wild[] = {0, ram_end - 256, 0x84001000UL, 0x90000000UL, 1UL << 63};
    for (unsigned i = 0; i < sizeof(wild) / sizeof(wild[0]); i++) {
        header_then(wild[i], SECTOR, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
        post(0, 1);
        expect_needs_reset(100 + 10 * (long)i);
    }
    header_then(RAM_BASE, 0xffffffffu, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    post(0, 1);
    expect_needs_reset(160);
}

static void bad_chains(void)
{
    header_then((uintptr_t)data, SECTOR, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0); /* loop */
    post(0, 1);
    expect_needs_reset(200);
    header_then((uintptr_t)data, SECTOR, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 200);
    post(0, 1);
    expect_needs_reset(210);
    header_then((uintptr_t)data, SECTOR, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    post(999, 1);                                       /* head beyond the queue */
    expect_needs_reset(220);
    post(0, QSIZE + 5);                                 /* available index jumps */
    expect_needs_reset(230);
    /* the data (device-readable) after the status (writable) */
    set_desc(0, (uintptr_t)&hdr, sizeof hdr, VIRTQ_DESC_F_NEXT, 1);
    set_desc(1, (uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    set_desc(2, (uintptr_t)data, SECTOR, 0, 0);
    post(0, 1);
    expect_needs_reset(240);
    set_desc(0, (uintptr_t)&hdr, sizeof hdr, 0, 0);     /* a request with no status byte */
    post(0, 1);
    expect_needs_reset(250);
}

static void bad_indirect_tables(void)
{
    struct { uint64_t addr; uint32_t len; uint16_t flags; } cases[] = {
        {0x84001000UL, 48, VIRTQ_DESC_F_INDIRECT},                      /* outside its RAM */
        {(uintptr_t)table, 48, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT},
        {(uintptr_t)table, 24, VIRTQ_DESC_F_INDIRECT},                  /* not 16-byte entries */
        {(uintptr_t)table, 48, VIRTQ_DESC_F_INDIRECT},                  /* nested (below) */
        {(uintptr_t)table, 48, VIRTQ_DESC_F_INDIRECT},                  /* loops (below) */
    };
    for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        table[0] = (struct virtq_desc){(uintptr_t)&hdr, sizeof hdr, VIRTQ_DESC_F_NEXT, 1};
        table[1] = (struct virtq_desc){(uintptr_t)data, SECTOR, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2};
        table[2] = (struct virtq_desc){(uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0};
        if (i == 3)
            table[1] = (struct virtq_desc){(uintptr_t)table, 48, VIRTQ_DESC_F_INDIRECT, 0};
        if (i == 4)
            table[2].flags |= VIRTQ_DESC_F_NEXT;        /* entry 2 -> entry 0 -> 1 -> 2 ... */
        vio_mb();
        set_desc(0, cases[i].addr, cases[i].len, cases[i].flags, 1);
        post(0, 1);
        expect_needs_reset(300 + 10 * (long)i);
    }
}

/* rings outside the VM's RAM: refused when the queue is made ready */
static void wild_rings(void)
{
    virtio_reset(&dev);
    vio_write(&dev, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    vio_write(&dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    vio_write(&dev, VIRTIO_MMIO_DRIVER_FEATURES, 1);   /* VERSION_1 */
    vio_write(&dev, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                        VIRTIO_STATUS_FEATURES_OK);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_SEL, 0);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_NUM, QSIZE);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1000);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)ram_end - 8);    /* straddles */
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, 0);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 1);                        /* 4 GiB */
    vio_write(&dev, VIRTIO_MMIO_QUEUE_READY, 1);
    CHECK_EQ(400, vio_read(&dev, VIRTIO_MMIO_QUEUE_READY), 0);
    CHECK(401, vio_read(&dev, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
    broken++;
    virtio_reset(&dev);
    open_device(402);
    honest_read(405);
}

/* more than the hypervisor forwards in one request: IOERR, the chain completed, nothing read */
static void oversized_request(void)
{
    memset(data, 0xa5, BIG);
    header_then((uintptr_t)data, BIG, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    status_byte = 0xff;
    post(0, 1);
    uint64_t t0 = rdtime();
    while (*(volatile uint16_t *)&q->used->idx == 0)
        CHECK(500, rdtime() - t0 < VIRTIO_WAIT_TIMEOUT);
    CHECK_EQ(501, status_byte, VIRTIO_BLK_S_IOERR);
    CHECK_EQ(502, q->used->ring[0].id, 0);
    for (unsigned i = 0; i < BIG; i += 4096)
        CHECK_EQ(503, data[i], 0xa5);
    virtio_reset(&dev);
    open_device(504);
    honest_read(507);
}

/* a reset while a 64 KiB read is in flight: after the reset nothing may land in the buffer
 * or the used ring (the hypervisor drops the machine device's late completion) */
static void reset_mid_request(void)
{
    memset(data, 0x5a, 65536);
    header_then((uintptr_t)data, 65536, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 2);
    status_byte = 0x77;
    post(0, 1);
    vio_write(&dev, VIRTIO_MMIO_STATUS, 0);
    /* what the used ring holds once the reset returned is all it may ever hold */
    int done_before = *(volatile uint16_t *)&q->used->idx != 0;
    uint64_t t0 = rdtime();
    while (rdtime() - t0 < 200000)                    /* 20 ms: the machine read completes */
        __asm__ __volatile__("nop");
    if (!done_before) {
        CHECK_EQ(600, *(volatile uint16_t *)&q->used->idx, 0);
        CHECK_EQ(601, status_byte, 0x77);
        for (unsigned i = 0; i < 65536; i++)
            CHECK_EQ(602, data[i], 0x5a);
    }
    printf("ringhostile: reset with the read %s\n", done_before ? "already done" : "in flight");
    open_device(603);
    honest_read(606);
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
    honest_read(5);
    wild_buffers();
    bad_chains();
    bad_indirect_tables();
    wild_rings();
    oversized_request();
    reset_mid_request();
    printf("ringhostile: %lu rings refused, device back after each\n", broken);
    pass();
    return 0;
}

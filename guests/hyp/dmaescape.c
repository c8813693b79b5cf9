/*
 * dmaescape.c - a VM with a virtio-blk device assigned to it (rvh run --hyp --guest
 * dmaescape.elf,drive=IMG,io=passthrough) that points the device's DMA outside its RAM.
 *
 * The device's registers are the machine device's own (no exits), and its DMA goes through the
 * IOMMU with the VM's G-stage table: a read into a buffer past the end of the VM's RAM (where
 * the host keeps the next VM), a write from there, and a queue whose rings lie there must each
 * be refused by the IOMMU, the device then reporting DEVICE_NEEDS_RESET (virtio 1.2, 2.1.2),
 * after which a reset brings it back and honest requests work.  The test around it
 * (tests/system/test_hyp_virtio.py) checks the IOMMU's fault records and that the next VM's
 * memory and the disk are unchanged.
 */
#include "smode.h"
#include "virtio.h"

TEST_NAME("hyp/dmaescape");

#define SECTOR VIRTIO_BLK_SECTOR

static struct virtio_dev dev;
static struct virtq *q;
static int slot;
static struct virtio_blk_req_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t data[SECTOR] __attribute__((aligned(4096)));
static unsigned long ram_end;

static void open_device(long n)
{
    CHECK_EQ(n, virtio_dev_init(&dev, slot, VIRTIO_ID_BLOCK, 0, 0), 0);
    q = virtq_setup(&dev, 0, 16);
    CHECK(n + 1, q != 0);
    virtio_driver_ok(&dev, VIRTIO_WAIT_POLL);
}

static void honest_read(long n)
{
    struct vbuf bufs[3] = {{&hdr, sizeof hdr}, {data, SECTOR}, {(const void *)&status_byte, 1}};
    hdr.type = VIRTIO_BLK_T_IN;
    hdr.reserved = 0;
    hdr.sector = 2;
    status_byte = 0xff;
    CHECK_EQ(n, virtq_sync(q, bufs, 1, 2, 0, n + 1), SECTOR + 1);
    CHECK_EQ(n + 2, status_byte, VIRTIO_BLK_S_OK);
}

/* one request whose data buffer is at `address`, posted by hand (no library checks) */
static void wild_request(uint32_t type, uint64_t address)
{
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = 2;
    uint16_t flags = type == VIRTIO_BLK_T_IN ? VIRTQ_DESC_F_WRITE : 0;
    q->desc[0] = (struct virtq_desc){(uintptr_t)&hdr, sizeof hdr, VIRTQ_DESC_F_NEXT, 1};
    q->desc[1] = (struct virtq_desc){address, SECTOR, flags | VIRTQ_DESC_F_NEXT, 2};
    q->desc[2] = (struct virtq_desc){(uintptr_t)&status_byte, 1, VIRTQ_DESC_F_WRITE, 0};
    q->avail->ring[q->avail_idx % q->num] = 0;
    vio_mb();
    q->avail->idx = ++q->avail_idx;
    vio_mb();
    vio_write(&dev, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

static void expect_needs_reset(long n)
{
    uint64_t t0 = rdtime();
    while (!(vio_read(&dev, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET))
        CHECK(n, rdtime() - t0 < VIRTIO_WAIT_TIMEOUT);
    virtio_reset(&dev);
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

    wild_request(VIRTIO_BLK_T_IN, ram_end + 0x1000);     /* the device would write there */
    expect_needs_reset(10);
    open_device(11);
    honest_read(13);

    wild_request(VIRTIO_BLK_T_OUT, ram_end + 0x2000);    /* ... would read from there */
    expect_needs_reset(20);
    open_device(21);
    honest_read(23);

    /* a queue whose descriptor table lies past the end of its RAM */
    virtio_reset(&dev);
    vio_write(&dev, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    vio_write(&dev, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    vio_write(&dev, VIRTIO_MMIO_DRIVER_FEATURES, 1);    /* VERSION_1 */
    vio_write(&dev, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                        VIRTIO_STATUS_FEATURES_OK);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_SEL, 0);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_NUM, 16);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)(ram_end + 0x3000));
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)((ram_end + 0x3000) >> 32));
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)(uintptr_t)data);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)(uintptr_t)data + 1024);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
    vio_write(&dev, VIRTIO_MMIO_QUEUE_READY, 1);
    vio_write(&dev, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                        VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    expect_needs_reset(30);
    open_device(31);
    honest_read(33);
    printf("dmaescape: 3 escapes refused, the device back after each\n");
    pass();
    return 0;
}

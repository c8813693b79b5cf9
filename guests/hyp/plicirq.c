/*
 * plicirq.c - a virtio-blk device's interrupt through the PLIC, step by step, as the PLIC 1.0.0
 * rules for a level-triggered source have it (the gateway passes a request on when the line is
 * high and the source is not in service; the pending bit is cleared only by a claim; after the
 * completion a line still high is a new request).  Natively the machine's PLIC answers; as a VM
 * the hypervisor's virtual PLIC does, for an emulated device (vplic.c) and for an assigned one
 * whose machine source the hypervisor holds in service until the VM completes (passthrough.c).
 * The same checks must pass everywhere (tests/system/test_hyp_virtio.py).
 *
 * Interrupts stay disabled in sstatus (as in guests/virtio/blk's interrupt-protocol round): the
 * guest drives the PLIC by hand.
 */
#include "smode.h"
#include "virtio.h"

TEST_NAME("hyp/plicirq");

#define SECTOR VIRTIO_BLK_SECTOR

static struct virtio_dev dev;
static struct virtq *q;
static struct virtio_blk_req_hdr hdr __attribute__((aligned(16)));
static volatile uint8_t status_byte;
static uint8_t data[SECTOR] __attribute__((aligned(4096)));
static int irq;
static uintptr_t ctx;

static int pending(void)
{
    return (mmio_read32(PLIC_PENDING(irq)) >> (irq % 32)) & 1;
}

static uint32_t claim(void)
{
    return mmio_read32(PLIC_CONTEXT_CLAIM(ctx));
}

static void complete(uint32_t source)
{
    mmio_write32(PLIC_CONTEXT_CLAIM(ctx), source);
}

static void wait_pending(long n)
{
    uint64_t t0 = rdtime();
    while (!pending())
        CHECK(n, rdtime() - t0 < VIRTIO_WAIT_TIMEOUT);
}

/* long enough for an interrupt on its way (the device's, or the hypervisor's forwarding) */
static void settle(void)
{
    uint64_t t0 = rdtime();
    while (rdtime() - t0 < 2000)    /* 200 us at 10 MHz */
        ;
}

/* a one-sector read, completed by the device (seen on the used ring and in InterruptStatus) */
static void read_sector(long n)
{
    struct vbuf bufs[3] = {{&hdr, sizeof hdr}, {data, SECTOR}, {(const void *)&status_byte, 1}};
    hdr.type = VIRTIO_BLK_T_IN;
    hdr.reserved = 0;
    hdr.sector = 1;
    status_byte = 0xff;
    CHECK(n, virtq_add(q, bufs, 1, 2, data, 0) >= 0);
    virtq_kick(q);
    uint64_t t0 = rdtime();
    while (!virtq_has_used(q))
        CHECK(n, rdtime() - t0 < VIRTIO_WAIT_TIMEOUT);
    uint32_t len;
    void *token;
    CHECK(n, virtq_get(q, &len, &token, 0) && token == data && len == SECTOR + 1);
    CHECK_EQ(n, status_byte, VIRTIO_BLK_S_OK);
    t0 = rdtime();
    while (!(vio_read(&dev, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_VRING))
        CHECK(n, rdtime() - t0 < VIRTIO_WAIT_TIMEOUT);
}

static void acknowledge(void)
{
    vio_write(&dev, VIRTIO_MMIO_INTERRUPT_ACK, vio_read(&dev, VIRTIO_MMIO_INTERRUPT_STATUS));
}

int main(void)
{
    int ids[VIRTIO_MMIO_SLOTS];
    CHECK(1, virtio_find(VIRTIO_ID_BLOCK, ids) >= 1);
    CHECK_EQ(2, virtio_dev_init(&dev, ids[0], VIRTIO_ID_BLOCK, 0, 0), 0);
    q = virtq_setup(&dev, 0, 16);
    CHECK(3, q != 0);
    virtio_driver_ok(&dev, VIRTIO_WAIT_WFI);   /* the source enabled, used-ring interrupts on */
    irq = VIRTIO_SLOT_IRQ(ids[0]);
    ctx = PLIC_S_CONTEXT(rvh_hartid());
    CHECK_EQ(4, csr_read(sstatus) & SSTATUS_SIE_MASK, 0);
    CHECK_EQ(5, pending(), 0);

    /* a completion raises the line: the source is pending, the claim takes it */
    read_sector(10);
    wait_pending(11);
    uint32_t source = claim();
    CHECK_EQ(12, source, irq);
    CHECK_EQ(13, pending(), 0);
    CHECK_EQ(14, claim(), 0);               /* in service: nothing else to claim */

    /* in service, another completion is no new request */
    read_sector(20);
    settle();
    CHECK_EQ(21, pending(), 0);

    /* completed with the line still high (InterruptStatus not acknowledged): pending again */
    complete(source);
    wait_pending(30);
    source = claim();
    CHECK_EQ(31, source, irq);

    /* acknowledged, then completed: the line is low, nothing pends */
    acknowledge();
    CHECK_EQ(40, vio_read(&dev, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    complete(source);
    settle();
    CHECK_EQ(41, pending(), 0);
    CHECK_EQ(42, claim(), 0);

    /* the line drops before the claim: the request was passed on, and only a claim clears the
     * pending bit, so the claim still returns the source */
    read_sector(50);
    wait_pending(51);
    acknowledge();
    settle();
    CHECK_EQ(52, pending(), 1);
    source = claim();
    CHECK_EQ(53, source, irq);
    complete(source);
    settle();
    CHECK_EQ(54, pending(), 0);
    CHECK_EQ(55, claim(), 0);

    printf("plicirq: pending, claim, in service, completion with the line high and low, "
           "a request latched past its line\n");
    pass();
    return 0;
}

/*
 * pvnet.c - frames between two NICs over rvh's platform I/O extension (guests/common/pvio.h),
 * the pv counterpart of virtio/net.c.  rvh only:
 *
 *   rvh run --sbi pvnet.elf --netdev hub,id=h0,if=pv --netdev hub,id=h0,if=pv
 *
 * Each round sends FRAMES frames from one NIC to the other (sizes 60..1514 bytes, a sequence
 * number and a pattern in each), up to a ring of transmit requests per NOTIFY, with the
 * receiver's ring kept full of 2 KiB buffers; every frame must arrive once, in order, intact,
 * addressed from the sender's MAC to the receiver's.  Rounds: A to B, B to A, then both at once.
 */
#include "pvio.h"

TEST_NAME("virtio/pvnet");

#define FRAMES          600
#define FRAME_MIN       60
#define FRAME_MAX       1514
#define BUF             2048
#define ETHERTYPE       0x88b5

struct nic {
    struct pvio_dev dev;
    struct pvio_ring tx, rx;
    uint8_t txmem[PVIO_SLOTS][BUF] __attribute__((aligned(64)));
    uint8_t rxmem[PVIO_SLOTS][BUF] __attribute__((aligned(64)));
    unsigned sent, received;            /* this round */
};
static struct nic nics[2] __attribute__((aligned(4096)));

static unsigned frame_size(unsigned seq)
{
    return FRAME_MIN + (seq * 397) % (FRAME_MAX - FRAME_MIN + 1);
}

static void build(struct nic *from, struct nic *to, unsigned seq, uint8_t *f)
{
    unsigned size = frame_size(seq);
    memcpy(f, to->dev.mac, 6);
    memcpy(f + 6, from->dev.mac, 6);
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    f[14] = (uint8_t)seq;
    f[15] = (uint8_t)(seq >> 8);
    for (unsigned i = 16; i < size; i++)
        f[i] = (uint8_t)(seq * 11 + i);
}

static void check_frame(struct nic *to, struct nic *from, const uint8_t *f, unsigned len)
{
    unsigned seq = to->received;
    CHECK_EQ(20, len, frame_size(seq));
    CHECK(21, !memcmp(f, to->dev.mac, 6) && !memcmp(f + 6, from->dev.mac, 6));
    CHECK_EQ(22, f[14] | f[15] << 8, seq & 0xffff);
    for (unsigned i = 16; i < len; i++)
        if (f[i] != (uint8_t)(seq * 11 + i))
            rvh_check_failed(23, __LINE__, "frame contents");
    to->received++;
}

/* keep the receive ring full: post every free slot, one NOTIFY for them */
static void refill(struct nic *n)
{
    unsigned posted = 0;
    while (pvio_room(&n->dev, 1)) {
        unsigned slot = n->dev.q[1].req_prod % PVIO_SLOTS;
        pvio_post(&n->dev, 1, RVH_PVIO_OP_RECEIVE, 0, n->rxmem[slot], BUF, slot);
        posted++;
    }
    if (posted)
        pvio_kick(&n->dev, 1);
}

/* take what has arrived at `to` */
static void drain(struct nic *to, struct nic *from)
{
    volatile struct pvio_slot *s;
    int any = 0;
    while ((s = pvio_response(&to->dev, 1))) {
        CHECK_EQ(24, s->status, RVH_PVIO_S_OK);
        check_frame(to, from, to->rxmem[s->id], s->len);
        any = 1;
    }
    if (any)
        refill(to);
}

/* send what the transmit ring has room for; take finished transmits */
static void pump(struct nic *from, struct nic *to)
{
    volatile struct pvio_slot *s;
    while ((s = pvio_response(&from->dev, 0)))
        CHECK_EQ(25, s->status, RVH_PVIO_S_OK);
    unsigned posted = 0;
    while (from->sent < FRAMES && pvio_room(&from->dev, 0)) {
        unsigned slot = from->dev.q[0].req_prod % PVIO_SLOTS;
        build(from, to, from->sent, from->txmem[slot]);
        pvio_post(&from->dev, 0, RVH_PVIO_OP_TRANSMIT, 0, from->txmem[slot],
                  frame_size(from->sent), from->sent);
        from->sent++;
        posted++;
    }
    if (posted)
        pvio_kick(&from->dev, 0);
}

static void round_trip(const char *name, int a_sends, int b_sends)
{
    struct nic *a = &nics[0], *b = &nics[1];
    a->sent = b->sent = a->received = b->received = 0;
    if (!a_sends)
        a->sent = FRAMES;
    if (!b_sends)
        b->sent = FRAMES;
    unsigned want_a = b_sends ? FRAMES : 0, want_b = a_sends ? FRAMES : 0;
    while (a->received < want_a || b->received < want_b) {
        pump(a, b);
        pump(b, a);
        drain(a, b);
        drain(b, a);
        if (a->received < want_a || b->received < want_b) {
            /* wait for whichever ring moves next: a frame in, a transmit done */
            struct pvio_dev *devs[4] = { &a->dev, &b->dev, &a->dev, &b->dev };
            static const int queues[4] = { 1, 1, 0, 0 };
            pvio_wait_any(devs, queues, 4, 26);
        }
    }
    printf("pvnet: %s: %u and %u frames\n", name, a->received, b->received);
}

int main(void)
{
    CHECK_EQ(1, pvio_count(), 2);
    for (int i = 0; i < 2; i++) {
        struct nic *n = &nics[i];
        CHECK_EQ(2, pvio_open(&n->dev, i), 0);
        CHECK_EQ(3, n->dev.type, RVH_PVIO_TYPE_NET);
        CHECK_EQ(4, n->dev.queues, 2);
        CHECK_EQ(5, pvio_attach(&n->dev, 0, &n->tx), 0);
        CHECK_EQ(6, pvio_attach(&n->dev, 1, &n->rx), 0);
        refill(n);
    }
    CHECK(7, memcmp(nics[0].dev.mac, nics[1].dev.mac, 6));
    /* a receive request on the transmit queue and a frame too short are refused */
    uint32_t len = BUF;
    CHECK_EQ(8, pvio_sync(&nics[0].dev, 0, RVH_PVIO_OP_RECEIVE, 0, nics[0].txmem[0], &len, 9),
             RVH_PVIO_S_UNSUPPORTED);
    len = 10;
    CHECK_EQ(10, pvio_sync(&nics[0].dev, 0, RVH_PVIO_OP_TRANSMIT, 0, nics[0].txmem[0], &len, 11),
             RVH_PVIO_S_BAD_LENGTH);
    round_trip("A to B", 1, 0);
    round_trip("B to A", 0, 1);
    round_trip("both ways", 1, 1);
    unsigned long notifies = nics[0].dev.notifies + nics[1].dev.notifies;
    unsigned long requests = nics[0].dev.requests + nics[1].dev.requests;
    printf("pvnet: %lu requests, %lu notifies, %lu interrupts\n", requests, notifies,
           nics[0].dev.irqs + nics[1].dev.irqs);
    pass();
    return 0;
}

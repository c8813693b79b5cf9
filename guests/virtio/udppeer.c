/*
 * udppeer.c - one NIC talking to another machine: run two rvh processes joined by the UDP
 * socket backend (or two QEMU processes joined by -netdev socket).
 *
 * The NIC whose MAC ends in :01 is the initiator: it sends FRAMES frames (sequence number and
 * a payload derived from it, sizes cycling 60..1514) and waits for each to come back.  The
 * other peer echoes every frame it receives with the MAC addresses swapped, until it has
 * echoed FRAMES frames.  Both check every byte; both exit 0 (PASS) when done.  The initiator
 * retransmits a frame after RETRY ticks without an answer (UDP may drop), so a lost datagram
 * costs time, not the test.
 */
#include "smode.h"
#include "virtio.h"

TEST_NAME("virtio/udppeer");

#define FRAMES      200
#define HDR         VIRTIO_NET_HDR_LEN
#define BUF         (HDR + 1514)
#define STRIDE      2048
#define RXBUFS      64
#define ETHERTYPE   0x88b7
#define RETRY       (10000000UL / 5)   /* 0.2 s of time */

static struct virtio_dev dev;
static struct virtq *rx, *tx;
static uint8_t mac[6];
static uint8_t *rxmem, *txbuf;

static unsigned frame_length(uint32_t seq)
{
    return 60 + (seq * 97) % (1514 - 60 + 1);
}

static uint8_t payload(uint32_t seq, unsigned i)
{
    return (uint8_t)(seq * 5 + i * 11);
}

static void post(unsigned i)
{
    struct vbuf v = { rxmem + (unsigned long)i * STRIDE, BUF };
    CHECK(10, virtq_add(rx, &v, 0, 1, (void *)(uintptr_t)(i + 1), 0) >= 0);
}

static void send(const uint8_t *frame, unsigned len)
{
    memset(txbuf, 0, HDR);
    memcpy(txbuf + HDR, frame, len);
    struct vbuf v = { txbuf, HDR + len };
    virtq_sync(tx, &v, 1, 0, 0, 11);
}

/* the next received frame (copied to out), or 0 after `ticks` of waiting */
static unsigned receive(uint8_t *out, uint64_t ticks)
{
    if (!virtq_has_used(rx) && !virtq_wait_any_for(&rx, 1, ticks))
        return 0;
    uint32_t len;
    void *token;
    int head;
    CHECK(12, virtq_get(rx, &len, &token, &head));
    unsigned i = (unsigned)(uintptr_t)token - 1;
    CHECK(13, len > HDR && len <= BUF);
    memcpy(out, rxmem + (unsigned long)i * STRIDE + HDR, len - HDR);
    post(i);
    virtq_kick(rx);
    return len - HDR;
}

static unsigned build(uint8_t *f, uint32_t seq, const uint8_t *to)
{
    unsigned len = frame_length(seq);
    memcpy(f, to, 6);
    memcpy(f + 6, mac, 6);
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    memcpy(f + 14, &seq, 4);
    for (unsigned i = 18; i < len; i++)
        f[i] = payload(seq, i);
    return len;
}

static int valid(const uint8_t *f, unsigned len, uint32_t *seq)
{
    if (len < 18 || f[12] != (ETHERTYPE >> 8) || f[13] != (ETHERTYPE & 0xff))
        return 0;
    memcpy(seq, f + 14, 4);
    if (*seq >= FRAMES || len != frame_length(*seq))
        return 0;
    for (unsigned i = 18; i < len; i++)
        if (f[i] != payload(*seq, i))
            return 0;
    return 1;
}

int main(void)
{
    static uint8_t frame[1514], reply[1514];
    static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    int ids[VIRTIO_MMIO_SLOTS];
    CHECK(1, virtio_find(VIRTIO_ID_NET, ids) >= 1);
    CHECK_EQ(2, virtio_dev_init(&dev, ids[0], VIRTIO_ID_NET, VIRTIO_BIT(VIRTIO_NET_F_STATUS),
                                VIRTIO_BIT(VIRTIO_NET_F_MAC)), 0);
    rx = virtq_setup(&dev, VIRTIO_NET_RXQ, RXBUFS);
    tx = virtq_setup(&dev, VIRTIO_NET_TXQ, 16);
    CHECK(3, rx && tx);
    virtio_driver_ok(&dev, VIRTIO_WAIT_WFI);
    virtio_config_read(&dev, VIRTIO_NET_CFG_MAC, mac, 6);
    rxmem = virtio_alloc((unsigned long)RXBUFS * STRIDE, 4096);
    txbuf = virtio_alloc(STRIDE, 4096);
    for (unsigned i = 0; i < rx->num; i++)
        post(i);
    virtq_kick(rx);
    int initiator = mac[5] == 0x01;
    printf("udppeer: %s, mac ..:%02x\n", initiator ? "initiator" : "echoer", mac[5]);
    uint32_t seq;
    if (initiator) {
        /* nothing arrives before the first frame goes out, so both waits time out; the
           second must sleep in wfi, not spin: a watchdog timer left pending by the first
           once made every later wait spin, and one lost frame then took minutes */
        CHECK(4, receive(reply, RETRY / 100) == 0);
        unsigned long before = virtio_wait_wakeups;
        CHECK(5, receive(reply, RETRY / 100) == 0);
        CHECK(6, virtio_wait_wakeups - before < 100);
        unsigned retries = 0;
        for (uint32_t n = 0; n < FRAMES; n++) {
            unsigned len = build(frame, n, broadcast);
            for (;;) {
                send(frame, len);
                unsigned got = receive(reply, RETRY);
                while (got && !(valid(reply, got, &seq) && seq == n))
                    got = receive(reply, RETRY);  /* a late echo of an earlier frame */
                if (got)
                    break;
                CHECK(20, ++retries < 50);
            }
        }
        printf("udppeer: %u frames echoed back intact (%u retransmissions)\n", FRAMES, retries);
    } else {
        static uint8_t done[FRAMES];
        unsigned distinct = 0;
        while (distinct < FRAMES) {
            unsigned got = receive(frame, 50 * RETRY);
            CHECK(30, got);  /* the initiator went quiet */
            CHECK(31, valid(frame, got, &seq));
            memcpy(reply, frame + 6, 6);  /* swap source and destination */
            memcpy(reply + 6, mac, 6);
            memcpy(reply + 12, frame + 12, got - 12);
            send(reply, got);
            if (!done[seq]) {
                done[seq] = 1;
                distinct++;
            }
        }
        printf("udppeer: echoed %u distinct frames\n", FRAMES);
    }
    pass();
    return 0;
}

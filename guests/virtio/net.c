/*
 * net.c - virtio-net over virtio-mmio (version 2), self-checking.
 *
 * Needs two (or more) virtio-net NICs on one hub (every frame a NIC sends
 * reaches all the other NICs, never the sender).  On QEMU:
 *   -netdev hubport,id=h0,hubid=0 -netdev hubport,id=h1,hubid=0
 *   -device virtio-net-device,netdev=h0,mac=52:54:00:12:34:01
 *   -device virtio-net-device,netdev=h1,mac=52:54:00:12:34:02
 * NIC A is the one with the lowest MAC, NIC B the next.
 *
 *   - VIRTIO_NET_F_MAC: the MACs from the config space (distinct, unicast);
 *     VIRTIO_NET_F_STATUS: link up,
 *   - four rounds, each after a reset of every NIC with another configuration:
 *       1. poll, no MRG_RXBUF, 1526-byte receive buffers, largest queues,
 *          header and frame in one transmit descriptor
 *       2. wfi, MRG_RXBUF, EVENT_IDX, INDIRECT_DESC, 2048-byte buffers,
 *          queue size 16, transmit header in its own descriptor, indirect
 *       3. irq, MRG_RXBUF, INDIRECT_DESC, 256-byte receive buffers (a frame
 *          spans up to 7 of them: num_buffers), queue size 64
 *       4. irq, no MRG_RXBUF, EVENT_IDX, receive buffers as two descriptors
 *          (12-byte header + 1514 bytes), queue size 8
 *     (the generic features and MRG_RXBUF only when offered),
 *   - in each round: frames of 60..1514 bytes from A to B and from B to A,
 *     one at a time; then bursts both ways at once (more frames than
 *     receive buffers: the buffers are replenished as frames arrive);
 *     then broadcasts from every NIC,
 *   - every frame received is checked: length (used length = 12 + frame),
 *     contents, the virtio_net_hdr (flags 0, gso_type NONE, num_buffers
 *     = the buffers used with MRG_RXBUF), source and destination; it must
 *     come from another NIC, arrive exactly once, and the sender must never
 *     see its own frames; unicast frames reach only their destination
 *     when there are just two NICs (with more, the extra NICs may see them);
 *     transmit used lengths are 0,
 *   - interrupts counted in the wfi / irq modes.
 */
#include "virtio.h"

TEST_NAME("virtio/net");

#define MAX_NICS        8
#define FRAME_MIN       60
#define FRAME_MAX       1514
#define RXBUF_STRIDE    2048
#define TXBUF_STRIDE    1536
#define MAX_SEQ         1024
#define ETHERTYPE       0x88b5          /* local experimental */
#define PAYLOAD_MAGIC   0x4e485652u     /* "RVHN" */

struct nic {
    struct virtio_dev dev;
    struct virtq *rx, *tx;
    int slot;
    uint8_t mac[6];
    int mrg;
    unsigned rxbuf;                     /* receive buffer size */
    int rx_split;                       /* header and data in two descriptors */
    int tx_layout;                      /* 0 one descriptor, 1 two, 2 indirect (two) */
    unsigned nrxbufs;
    uint8_t *rxmem, *txmem;
    uint16_t tx_free[VQ_MAX_SIZE];
    unsigned ntx_free, ntxbufs;
    int rx_reposted;
    /* statistics of the round */
    unsigned long rx_frames, tx_frames, foreign;
    unsigned long nb_hist[8];           /* num_buffers 1..7, [0] = more */
    uint16_t nb_raw_last;               /* num_buffers as found without MRG_RXBUF */
};

struct round {
    enum virtio_wait wait;
    uint64_t generic;
    int mrg;
    unsigned qsize;
    unsigned rxbuf;
    int rx_split;
    int tx_layout;
};

static struct nic nics[MAX_NICS];
static int nnics;
static int round_no;
static long check_base;
static uint8_t expect_rx[MAX_NICS][MAX_SEQ];            /* [sender][seq]: receivers mask */
static uint8_t got[MAX_NICS][MAX_NICS][MAX_SEQ];        /* [receiver][sender][seq] */
static unsigned next_seq[MAX_NICS];
static unsigned long outstanding;                       /* frames expected, not yet seen */
static uint8_t frame_buf[RXBUF_STRIDE * 8];
static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

#define C(n) (check_base + (n))

/* ------------------------------------------------------------------ */
/* frames                                                             */

static uint8_t payload_byte(unsigned sender, unsigned seq, unsigned len, unsigned i)
{
    return (uint8_t)(seq * 31 + i * 7 + len + sender * 59);
}

static void build_frame(uint8_t *f, const uint8_t *dst, unsigned sender, unsigned seq,
                        unsigned len)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, nics[sender].mac, 6);
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    uint32_t m = PAYLOAD_MAGIC;
    memcpy(f + 14, &m, 4);
    f[18] = (uint8_t)sender;
    f[19] = (uint8_t)round_no;
    f[20] = (uint8_t)seq;
    f[21] = (uint8_t)(seq >> 8);
    f[22] = (uint8_t)len;
    f[23] = (uint8_t)(len >> 8);
    for (unsigned i = 24; i < len; i++)
        f[i] = payload_byte(sender, seq, len, i);
}

static void frame_fail(int rxnic, const char *why, const uint8_t *f, unsigned len)
{
    printf("NIC %d received a bad frame (%s), %u bytes:", rxnic, why, len);
    for (unsigned i = 0; i < len && i < 32; i++)
        printf(" %02x", f[i]);
    putchar('\n');
    CHECK(C(30), 0);
}

static void handle_frame(int me, const uint8_t *f, unsigned len)
{
    uint32_t m;
    if (len < 24)
        frame_fail(me, "short", f, len);
    memcpy(&m, f + 14, 4);
    if (f[12] != (ETHERTYPE >> 8) || f[13] != (ETHERTYPE & 0xff) || m != PAYLOAD_MAGIC)
        frame_fail(me, "not ours", f, len);
    unsigned sender = f[18], rnd = f[19];
    unsigned seq = f[20] | (unsigned)f[21] << 8, flen = f[22] | (unsigned)f[23] << 8;
    if (rnd != (unsigned)round_no)
        frame_fail(me, "from another round", f, len);
    if (sender >= (unsigned)nnics || seq >= MAX_SEQ)
        frame_fail(me, "bad sender or sequence number", f, len);
    if ((int)sender == me)
        frame_fail(me, "its own frame came back", f, len);
    if (flen != len)
        frame_fail(me, "length differs from the one sent", f, len);
    if (memcmp(f + 6, nics[sender].mac, 6))
        frame_fail(me, "source MAC", f, len);
    int bcast = !memcmp(f, broadcast, 6);
    int mine = !memcmp(f, nics[me].mac, 6);
    static uint8_t exp[FRAME_MAX];
    build_frame(exp, f, sender, seq, len);
    if (memcmp(exp, f, len))
        frame_fail(me, "contents", f, len);
    if (!bcast && !mine) {
        /* unicast for another NIC: only possible with more than two on the hub */
        if (nnics <= 2)
            frame_fail(me, "unicast for another NIC", f, len);
        nics[me].foreign++;
        return;
    }
    if (!(expect_rx[sender][seq] & (1u << me)))
        frame_fail(me, "not expected here", f, len);
    if (++got[me][sender][seq] != 1)
        frame_fail(me, "received twice", f, len);
    nics[me].rx_frames++;
    outstanding--;
}

/* ------------------------------------------------------------------ */
/* receive                                                            */

static uint8_t *rxbuf_addr(struct nic *n, unsigned i)
{
    return n->rxmem + (uintptr_t)i * RXBUF_STRIDE;
}

static void rx_post(struct nic *n, unsigned i)
{
    uint8_t *b = rxbuf_addr(n, i);
    memset(b, 0xee, 16);                /* to see what the device writes */
    struct vbuf v[2];
    int nv;
    if (n->rx_split) {
        v[0].addr = b;
        v[0].len = VIRTIO_NET_HDR_LEN;
        v[1].addr = b + 16;
        v[1].len = FRAME_MAX;
        nv = 2;
    } else {
        v[0].addr = b;
        v[0].len = n->rxbuf;
        nv = 1;
    }
    int h = virtq_add(n->rx, v, 0, (unsigned)nv, (void *)(uintptr_t)(i + 1), 0);
    CHECK(C(1), h >= 0);
    n->rx_reposted = 1;
}

static void rx_take(struct nic *n, uint32_t *len, unsigned *idx)
{
    void *tok;
    uint64_t t0 = rdtime();
    while (!virtq_get(n->rx, len, &tok, 0)) {
        /* the rest of a merged frame must follow */
        CHECK(C(2), rdtime() - t0 < VIRTIO_WAIT_TIMEOUT);
    }
    *idx = (unsigned)((uintptr_t)tok - 1);
    CHECK(C(3), *idx < n->nrxbufs);
}

static int rx_service(int me)
{
    struct nic *n = &nics[me];
    int frames = 0;
    while (virtq_has_used(n->rx)) {
        uint32_t len;
        unsigned idx;
        rx_take(n, &len, &idx);
        uint8_t *b = rxbuf_addr(n, idx);
        struct virtio_net_hdr h;
        memcpy(&h, b, sizeof h);
        CHECK(C(4), len >= VIRTIO_NET_HDR_LEN);
        if (h.flags != 0 || h.gso_type != VIRTIO_NET_HDR_GSO_NONE) {
            printf("NIC %d: virtio_net_hdr flags 0x%x gso_type %u\n", me, h.flags,
                   h.gso_type);
            CHECK(C(5), 0);
        }
        unsigned flen;
        const uint8_t *frame;
        if (n->mrg) {
            unsigned nb = h.num_buffers;
            if (nb < 1 || nb > 8) {
                printf("NIC %d: num_buffers %u\n", me, nb);
                CHECK(C(6), 0);
            }
            CHECK(C(7), len <= n->rxbuf);
            flen = len - VIRTIO_NET_HDR_LEN;
            memcpy(frame_buf, b + VIRTIO_NET_HDR_LEN, flen);
            rx_post(n, idx);
            for (unsigned k = 1; k < nb; k++) {
                rx_take(n, &len, &idx);
                CHECK(C(7), len <= n->rxbuf && flen + len <= sizeof frame_buf);
                memcpy(frame_buf + flen, rxbuf_addr(n, idx), len);
                flen += len;
                rx_post(n, idx);
            }
            /* the device fills each buffer before taking the next */
            unsigned need = (flen + VIRTIO_NET_HDR_LEN + n->rxbuf - 1) / n->rxbuf;
            if (nb != need) {
                printf("NIC %d: %u-byte frame in %u buffers of %u bytes\n", me, flen,
                       nb, n->rxbuf);
                CHECK(C(8), 0);
            }
            n->nb_hist[nb < 8 ? nb : 0]++;
            frame = frame_buf;
        } else {
            /* 5.1.6.4: num_buffers is 1 without MRG_RXBUF (or left alone,
               as QEMU 7.2 does: reported) */
            n->nb_raw_last = h.num_buffers;
            CHECK(C(9), h.num_buffers == 1 || h.num_buffers == 0xeeee);
            n->nb_hist[1]++;
            flen = len - VIRTIO_NET_HDR_LEN;
            CHECK(C(10), flen <= FRAME_MAX);
            memcpy(frame_buf, n->rx_split ? b + 16 : b + VIRTIO_NET_HDR_LEN, flen);
            frame = frame_buf;
            rx_post(n, idx);
        }
        handle_frame(me, frame, flen);
        frames++;
    }
    if (n->rx_reposted) {
        virtq_kick(n->rx);
        n->rx_reposted = 0;
    }
    return frames;
}

/* ------------------------------------------------------------------ */
/* transmit                                                            */

static void tx_reclaim(struct nic *n)
{
    uint32_t len;
    void *tok;
    while (virtq_get(n->tx, &len, &tok, 0)) {
        if (len != 0) {
            printf("transmit used length %u (expected 0)\n", len);
            CHECK(C(11), 0);
        }
        n->tx_free[n->ntx_free++] = (uint16_t)((uintptr_t)tok - 1);
    }
}

static void service_all(void)
{
    for (int i = 0; i < nnics; i++) {
        rx_service(i);
        tx_reclaim(&nics[i]);
    }
}

/* wait for any receive queue or a transmit queue with frames in flight */
static void wait_any(void)
{
    struct virtq *qs[2 * MAX_NICS];
    int nq = 0;
    for (int i = 0; i < nnics; i++) {
        qs[nq++] = nics[i].rx;
        if (nics[i].ntx_free < nics[i].ntxbufs)
            qs[nq++] = nics[i].tx;
    }
    virtq_wait_any(qs, nq, C(12));
}

/* queue one frame (no kick); returns 0 when the transmit queue is full */
static int tx_queue(int me, const uint8_t *dst, unsigned len)
{
    struct nic *n = &nics[me];
    tx_reclaim(n);
    if (!n->ntx_free)
        return 0;
    unsigned seq = next_seq[me];
    CHECK(C(13), seq < MAX_SEQ);
    unsigned bi = n->tx_free[n->ntx_free - 1];
    uint8_t *b = n->txmem + (uintptr_t)bi * TXBUF_STRIDE;
    memset(b, 0, 16);                   /* virtio_net_hdr: no offloads */
    build_frame(b + 16, dst, (unsigned)me, seq, len);
    struct vbuf v[2];
    int nv, ind = 0;
    if (n->tx_layout == 0) {
        /* header right before the frame, one descriptor */
        v[0].addr = b + 16 - VIRTIO_NET_HDR_LEN;
        v[0].len = VIRTIO_NET_HDR_LEN + len;
        nv = 1;
    } else {
        v[0].addr = b;
        v[0].len = VIRTIO_NET_HDR_LEN;
        v[1].addr = b + 16;
        v[1].len = len;
        nv = 2;
        ind = n->tx_layout == 2 && n->dev.indirect && (seq & 1);
    }
    int h = virtq_add(n->tx, v, (unsigned)nv, 0, (void *)(uintptr_t)(bi + 1), ind);
    if (h < 0)
        return 0;
    n->ntx_free--;
    next_seq[me] = seq + 1;
    /* who must receive it */
    uint8_t mask = 0;
    for (int i = 0; i < nnics; i++)
        if (i != me && (!memcmp(dst, broadcast, 6) || !memcmp(dst, nics[i].mac, 6)))
            mask |= (uint8_t)(1u << i);
    expect_rx[me][seq] = mask;
    for (int i = 0; i < nnics; i++)
        if (mask & (1u << i))
            outstanding++;
    n->tx_frames++;
    return 1;
}

static void send_frame(int me, const uint8_t *dst, unsigned len)
{
    while (!tx_queue(me, dst, len)) {
        virtq_kick(nics[me].tx);
        wait_any();
        service_all();
    }
    virtq_kick(nics[me].tx);
}

/* until every frame sent so far has been received */
static void drain(void)
{
    while (outstanding) {
        service_all();
        if (!outstanding)
            break;
        wait_any();
    }
    /* and the transmit buffers are back */
    for (int i = 0; i < nnics; i++)
        while (nics[i].ntx_free < nics[i].ntxbufs) {
            tx_reclaim(&nics[i]);
            if (nics[i].ntx_free < nics[i].ntxbufs)
                virtq_wait(nics[i].tx, C(14));
        }
}

/* ------------------------------------------------------------------ */
/* setup                                                               */

static const char *mac_str(const uint8_t *m)
{
    static char s[4][18];
    static int k;
    char *p = s[k++ & 3];
    const char *hex = "0123456789abcdef";
    for (int i = 0; i < 6; i++) {
        p[3 * i] = hex[m[i] >> 4];
        p[3 * i + 1] = hex[m[i] & 15];
        p[3 * i + 2] = i < 5 ? ':' : 0;
    }
    return p;
}

static void nic_open(struct nic *n, const struct round *r, long check)
{
    uint64_t want = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
                    r->generic;
    if (r->mrg)
        want |= VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
    int err = virtio_dev_init(&n->dev, n->slot, VIRTIO_ID_NET, want,
                              VIRTIO_BIT(VIRTIO_NET_F_MAC));
    if (err == -2 || (err == -4 && !(n->dev.offered & VIRTIO_BIT(VIRTIO_F_VERSION_1)))) {
        printf("FAIL virtio/net: slot %d is not a virtio 1.x (mmio version 2) device\n",
               n->slot);
        exit(VIRTIO_EXIT_NOT_V2);
    }
    CHECK_EQ(check, err, 0);
    n->mrg = virtio_has(&n->dev, VIRTIO_NET_F_MRG_RXBUF);
    n->rx = virtq_setup(&n->dev, VIRTIO_NET_RXQ, r->qsize);
    n->tx = virtq_setup(&n->dev, VIRTIO_NET_TXQ, r->qsize);
    CHECK(check, n->rx && n->tx);
    n->rx_split = r->rx_split && !n->mrg;
    n->rxbuf = n->mrg ? r->rxbuf : (r->rxbuf < VIRTIO_NET_HDR_LEN + FRAME_MAX ?
                                    VIRTIO_NET_HDR_LEN + FRAME_MAX : r->rxbuf);
    n->tx_layout = r->tx_layout;
    n->nrxbufs = n->rx_split ? n->rx->num / 2 : n->rx->num;
    n->ntxbufs = n->tx->num;
    n->ntx_free = 0;
    for (unsigned i = 0; i < n->ntxbufs; i++)
        n->tx_free[n->ntx_free++] = (uint16_t)i;
    n->rx_frames = n->tx_frames = n->foreign = 0;
    memset(n->nb_hist, 0, sizeof n->nb_hist);
    uint32_t st = virtio_driver_ok(&n->dev, r->wait);
    CHECK_EQ(check, st & VIRTIO_STATUS_DRIVER_OK, VIRTIO_STATUS_DRIVER_OK);
    virtio_config_read(&n->dev, VIRTIO_NET_CFG_MAC, n->mac, 6);
    if (virtio_has(&n->dev, VIRTIO_NET_F_STATUS)) {
        uint16_t s = virtio_config16(&n->dev, VIRTIO_NET_CFG_STATUS);
        CHECK(check, s & VIRTIO_NET_S_LINK_UP);
    }
    for (unsigned i = 0; i < n->nrxbufs; i++)
        rx_post(n, i);
    virtq_kick(n->rx);
    n->rx_reposted = 0;
}

static void nic_close(struct nic *n, long check)
{
    uint32_t st = vio_read(&n->dev, VIRTIO_MMIO_STATUS);
    CHECK_EQ(check, st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED), 0);
    virtio_reset(&n->dev);
}

static void print_nic(struct nic *n, int i)
{
    struct virtio_dev *d = &n->dev;
    printf("NIC %c: slot %d, MAC %s, QueueNumMax rx %u tx %u\n", 'A' + i, n->slot,
           mac_str(n->mac), n->rx->num_max, n->tx->num_max);
    virtio_print_features("  offered   ", VIRTIO_ID_NET, d->offered);
    virtio_print_features("  negotiated", VIRTIO_ID_NET, d->features);
    printf("  QueueNumMax of queues 0..3: %u %u %u %u; ConfigGeneration %u\n",
           virtio_queue_num_max(d, 0), virtio_queue_num_max(d, 1),
           virtio_queue_num_max(d, 2), virtio_queue_num_max(d, 3),
           vio_read(d, VIRTIO_MMIO_CONFIG_GENERATION));
    printf("  config: status 0x%x max_virtqueue_pairs %u mtu %u speed %u duplex %u\n",
           virtio_config16(d, VIRTIO_NET_CFG_STATUS),
           virtio_config16(d, VIRTIO_NET_CFG_MAX_VQ_PAIRS),
           virtio_config16(d, VIRTIO_NET_CFG_MTU),
           virtio_config32(d, VIRTIO_NET_CFG_SPEED),
           virtio_config8(d, VIRTIO_NET_CFG_DUPLEX));
}

/* ------------------------------------------------------------------ */
/* a round                                                             */

/* send one frame and sleep until the receiver interrupts */
static void irq_frame(int from, int to)
{
    struct virtio_dev *d = &nics[to].dev;
    virtio_plic_service();              /* nothing stale pending */
    unsigned long i0 = d->irqs, v0 = d->isr_vring;
    send_frame(from, nics[to].mac, 200);
    virtio_wait_irq(d, i0, C(22));
    CHECK(C(23), d->isr_vring > v0);
    CHECK(C(23), virtq_has_used(nics[to].rx));
    drain();
}

static const unsigned sizes[] = { 60, 61, 64, 100, 127, 128, 255, 256, 500, 512,
                                  999, 1000, 1023, 1024, 1400, 1499, 1500, 1513, 1514 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void round_run(int r, const struct round *cfg)
{
    round_no = r;
    check_base = 40L * r;               /* checks 40r .. 40r+39 */
    memset(expect_rx, 0, sizeof expect_rx);
    memset(got, 0, sizeof got);
    memset(next_seq, 0, sizeof next_seq);
    outstanding = 0;
    for (int i = 0; i < nnics; i++)
        nic_open(&nics[i], cfg, C(15));
    struct nic *a = &nics[0], *b = &nics[1];
    printf("round %d: wait %s, queues %u, event_idx %d, indirect %d, mrg_rxbuf %d, "
           "receive buffers %u x %u bytes%s, transmit layout %d\n", r,
           virtio_wait_names[cfg->wait], a->rx->num, a->dev.event_idx, a->dev.indirect,
           a->mrg, a->nrxbufs, a->rxbuf, a->rx_split ? " (header apart)" : "",
           a->tx_layout);
    if (r == 1)
        for (int i = 0; i < nnics; i++)
            print_nic(&nics[i], i);
    /* the MACs: unicast, distinct */
    for (int i = 0; i < nnics; i++) {
        CHECK(C(16), !(nics[i].mac[0] & 1));
        static const uint8_t zero[6];
        CHECK(C(16), memcmp(nics[i].mac, zero, 6) != 0);
        for (int j = 0; j < i; j++)
            CHECK(C(17), memcmp(nics[i].mac, nics[j].mac, 6) != 0);
    }

    /* 1. one frame at a time, A -> B then B -> A */
    for (unsigned i = 0; i < NSIZES; i++) {
        send_frame(0, b->mac, sizes[i]);
        drain();
        send_frame(1, a->mac, sizes[i]);
        drain();
    }
    CHECK_EQ(C(18), b->rx_frames, NSIZES);
    CHECK_EQ(C(18), a->rx_frames, NSIZES);

    /* 2. bursts both ways: 3 queues' worth of frames each */
    unsigned burst = 3 * a->tx->num;
    if (burst > 300)
        burst = 300;
    for (unsigned i = 0; i < burst; i++) {
        unsigned len = sizes[(i * 7) % NSIZES];
        while (!tx_queue(0, b->mac, len)) {
            virtq_kick(a->tx);
            virtq_kick(b->tx);
            wait_any();
            service_all();
        }
        while (!tx_queue(1, a->mac, sizes[(i * 5 + 3) % NSIZES])) {
            virtq_kick(a->tx);
            virtq_kick(b->tx);
            wait_any();
            service_all();
        }
        if (i % 4 == 3) {
            virtq_kick(a->tx);
            virtq_kick(b->tx);
        }
    }
    virtq_kick(a->tx);
    virtq_kick(b->tx);
    drain();

    /* 3. broadcasts from every NIC */
    static const unsigned bsizes[] = { 60, 342, 1514 };
    for (int i = 0; i < nnics; i++)
        for (unsigned k = 0; k < 3; k++)
            send_frame(i, broadcast, bsizes[k]);
    drain();

    /* 4. interrupt modes: the receiver's used-buffer interrupt itself */
    if (cfg->wait != VIRTIO_WAIT_POLL) {
        irq_frame(0, 1);
        irq_frame(1, 0);
    }

    /* 5. quiet: nothing more arrives (no duplicates, no echoes) */
    uint64_t t0 = rdtime();
    while (rdtime() - t0 < 200000) {        /* 20 ms */
        service_all();
        if (cfg->wait == VIRTIO_WAIT_WFI)
            virtio_plic_service();
    }
    for (int s = 0; s < nnics; s++)
        for (unsigned q = 0; q < next_seq[s]; q++)
            for (int rcv = 0; rcv < nnics; rcv++) {
                unsigned want = (expect_rx[s][q] >> rcv) & 1;
                if (got[rcv][s][q] != want) {
                    printf("frame %u of NIC %d: received %u times by NIC %d, expected %u\n",
                           q, s, got[rcv][s][q], rcv, want);
                    CHECK(C(19), 0);
                }
            }

    for (int i = 0; i < nnics; i++) {
        struct nic *n = &nics[i];
        printf("round %d NIC %c: sent %lu, received %lu", r, 'A' + i, n->tx_frames,
               n->rx_frames);
        if (n->foreign)
            printf(" (+%lu unicast for others)", n->foreign);
        printf(", InterruptStatus 0x%x", vio_read(&n->dev, VIRTIO_MMIO_INTERRUPT_STATUS));
        printf(", rx notifies %lu/%lu skipped, tx notifies %lu/%lu skipped, "
               "interrupts %lu", n->rx->notifies, n->rx->notifies_skipped,
               n->tx->notifies, n->tx->notifies_skipped, n->dev.irqs);
        if (n->mrg)
            printf(", num_buffers 1..7: %lu %lu %lu %lu %lu %lu %lu", n->nb_hist[1],
                   n->nb_hist[2], n->nb_hist[3], n->nb_hist[4], n->nb_hist[5],
                   n->nb_hist[6], n->nb_hist[7]);
        else
            printf(", num_buffers field 0x%x (%s)", n->nb_raw_last,
                   n->nb_raw_last == 1 ? "1" : "not written by the device");
        putchar('\n');
        if (cfg->wait != VIRTIO_WAIT_POLL)
            CHECK(C(20), n->dev.irqs > 0);
        nic_close(n, C(21));
    }
}

int main(void)
{
    int slots[VIRTIO_MMIO_SLOTS];
    virtio_scan(0, 1);
    int n = virtio_find(VIRTIO_ID_NET, slots);
    printf("%d virtio-net device(s)\n", n);
    CHECK(1, n >= 2);
    nnics = n > MAX_NICS ? MAX_NICS : n;

    /* order the NICs by MAC: A = the lowest */
    for (int i = 0; i < nnics; i++) {
        struct virtio_dev d;
        int err = virtio_dev_init(&d, slots[i], VIRTIO_ID_NET,
                                  VIRTIO_BIT(VIRTIO_NET_F_MAC), 0);
        if (err == -2 || err == -4) {
            printf("FAIL virtio/net: slot %d is not a virtio 1.x (mmio version 2) "
                   "device\n", slots[i]);
            exit(VIRTIO_EXIT_NOT_V2);
        }
        CHECK_EQ(2, err, 0);
        CHECK(3, virtio_has(&d, VIRTIO_NET_F_MAC));
        nics[i].slot = slots[i];
        virtio_config_read(&d, VIRTIO_NET_CFG_MAC, nics[i].mac, 6);
        virtio_reset(&d);
    }
    for (int i = 0; i < nnics; i++)
        for (int j = i + 1; j < nnics; j++)
            if (memcmp(nics[j].mac, nics[i].mac, 6) < 0) {
                struct nic t = nics[i];
                nics[i] = nics[j];
                nics[j] = t;
            }
    for (int i = 0; i < nnics; i++) {
        nics[i].rxmem = virtio_alloc((uintptr_t)VQ_MAX_SIZE * RXBUF_STRIDE, 4096);
        nics[i].txmem = virtio_alloc((uintptr_t)VQ_MAX_SIZE * TXBUF_STRIDE, 4096);
        printf("NIC %c: slot %d MAC %s\n", 'A' + i, nics[i].slot, mac_str(nics[i].mac));
    }

    uint64_t ei = VIRTIO_BIT(VIRTIO_F_EVENT_IDX), id = VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
    static const struct round rounds[4] = {
        { VIRTIO_WAIT_POLL, 0, 0, VQ_MAX_SIZE, 1526, 0, 0 },
        { VIRTIO_WAIT_WFI, 0, 1, 16, 2048, 0, 2 },
        { VIRTIO_WAIT_IRQ, 0, 1, 64, 256, 0, 1 },
        { VIRTIO_WAIT_IRQ, 0, 0, 8, 1526, 1, 0 },
    };
    struct round r2 = rounds[1], r3 = rounds[2], r4 = rounds[3];
    r2.generic = ei | id;
    r3.generic = id;
    r4.generic = ei;
    round_run(1, &rounds[0]);
    round_run(2, &r2);
    round_run(3, &r3);
    round_run(4, &r4);
    printf("spurious PLIC claims: %lu\n", virtio_spurious_claims);
    pass();
}

/*
 * netbench.c - virtio-net throughput, one way: NIC A (lowest MAC) sends
 * FRAMES_64 frames of 64 bytes, then FRAMES_1500 frames of 1500 bytes,
 * to NIC B on the same hub (the QEMU command line of net.c).
 *
 * A keeps its transmit queue full, B keeps its receive queue full of
 * 1526-byte buffers (no MRG_RXBUF) and replenishes them as frames arrive;
 * VIRTIO_F_EVENT_IDX when offered; the driver waits with real interrupts
 * (BENCH_WAIT, default 2 = irq; 1 = wfi + PLIC polling, 0 = busy polling).
 * B checks the frames as netbench.h says.
 * Frames out of order are counted, not refused: QEMU 7.2's hub reorders
 * some when the receiver runs out of buffers (about 1% of the frames).
 * Lost frames are counted too (rvh's and QEMU's hubs hold the sender
 * back when the receiver has no buffers, but a UDP link may drop): once
 * everything is sent, 0.5 s without a frame ends the phase (the boot
 * argument losswait=MS changes it; a receiver alone then passes over the
 * late frames of the phase before).  The rates
 * count the frames received, up to the arrival of the last one.
 *
 * With one NIC, the guest is one end of that pair (netbench.h), so two
 * machines or two VMs of rvh's hypervisor share the work; the other end may
 * be pvnetbench.  The boot arguments frames64=N and frames1500=N change the
 * frame counts (rvh bench overhead --quick).
 *
 * Phases: "phase: net-64", "phase: net-1500", "phase: end"; each prints
 * frames received / sent / lost, `time` ticks (10 MHz), frames per second
 * and MB/s (10^6 bytes of Ethernet frame per second, without the 12-byte
 * virtio_net_hdr).
 */
#include "virtio.h"
#include "netbench.h"

TEST_NAME("virtio/netbench");

#ifndef BENCH_WAIT
#define BENCH_WAIT      VIRTIO_WAIT_IRQ
#endif
/* that long without a frame once all is sent: the rest is lost (the boot argument
   losswait=MS, 500 ms by default) */
static uint64_t loss_wait;
#define HDR             VIRTIO_NET_HDR_LEN
#define RXBUF           (HDR + 1514)
#define STRIDE          2048

struct nic {
    struct virtio_dev dev;
    struct virtq *rx, *tx;
    uint8_t mac[6];
    uint8_t *mem;
    uint16_t free[VQ_MAX_SIZE];
    unsigned nfree;
};

static struct nic A, B;

static void open_nic(struct nic *n, int slot, long check)
{
    int err = virtio_dev_init(&n->dev, slot, VIRTIO_ID_NET,
                              VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
                              VIRTIO_BIT(VIRTIO_NET_F_STATUS),
                              VIRTIO_BIT(VIRTIO_NET_F_MAC));
    if (err == -2 || (err == -4 && !(n->dev.offered & VIRTIO_BIT(VIRTIO_F_VERSION_1)))) {
        printf("FAIL virtio/netbench: slot %d is not a virtio 1.x (mmio version 2) "
               "device\n", slot);
        exit(VIRTIO_EXIT_NOT_V2);
    }
    CHECK_EQ(check, err, 0);
    n->rx = virtq_setup(&n->dev, VIRTIO_NET_RXQ, VQ_MAX_SIZE);
    n->tx = virtq_setup(&n->dev, VIRTIO_NET_TXQ, VQ_MAX_SIZE);
    CHECK(check, n->rx && n->tx);
    virtio_driver_ok(&n->dev, BENCH_WAIT);
    virtio_config_read(&n->dev, VIRTIO_NET_CFG_MAC, n->mac, 6);
    if (!n->mem)
        n->mem = virtio_alloc((unsigned long)VQ_MAX_SIZE * STRIDE, 4096);
    n->nfree = 0;
    for (unsigned i = 0; i < n->tx->num; i++)
        n->free[n->nfree++] = (uint16_t)i;
}

static void rx_post(struct nic *n, unsigned i)
{
    struct vbuf v = { n->mem + (unsigned long)i * STRIDE, RXBUF };
    int h = virtq_add(n->rx, &v, 0, 1, (void *)(uintptr_t)(i + 1), 0);
    CHECK(10, h >= 0);
}

/* transmit template: header + frame (to B, or to any port: another machine's receiver) */
static void tx_build(uint8_t *b, uint32_t seq, unsigned len, int full)
{
    memset(b, 0, HDR);
    frame_build(b + HDR, receiving ? B.mac : broadcast, A.mac, seq, len, full);
}

/* the receiver alone: "ready" frames for phase k until the first frame of the
   sender, so that the sender's phase starts after the receiver's */
static void announce_ready(unsigned k)
{
    static uint8_t *f;
    if (!f)
        f = virtio_alloc(STRIDE, 64);
    memset(f, 0, HDR);
    ready_build(f + HDR, B.mac, k);
    struct vbuf v = { f, HDR + READY_LEN };
    struct virtq *rxq = B.rx;
    for (unsigned tries = 0; !virtq_has_used(B.rx); tries++) {
        CHECK(7, tries < READY_LIMIT);
        virtq_sync(B.tx, &v, 1, 0, 0, 8);
        virtq_wait_any_for(&rxq, 1, READY_EVERY);
    }
}

/* the sender alone: wait for the receiver's "ready" for phase k.  Its receive
   queue is kept full of one shared buffer (a queue without room would make the
   hub hold the receiver's transmissions back); stale "ready" frames of an
   earlier phase are passed over. */
static void await_ready(unsigned k)
{
    static uint8_t *buf;
    struct vbuf v = { 0, RXBUF };
    uint32_t len;
    void *tok;
    if (!buf) {
        buf = virtio_alloc(STRIDE, 64);
        v.addr = buf;
        for (unsigned i = 0; i < A.rx->num; i++)
            CHECK(9, virtq_add(A.rx, &v, 0, 1, buf, 0) >= 0);
        virtq_kick(A.rx);
    }
    v.addr = buf;
    for (;;) {
        while (!virtq_get(A.rx, &len, &tok, 0))
            virtq_wait(A.rx, 9);
        int ready = ready_for(buf + HDR, k);
        CHECK(9, virtq_add(A.rx, &v, 0, 1, buf, 0) >= 0);
        virtq_kick(A.rx);
        if (ready)
            return;
    }
}

static void run(const char *name, unsigned len, uint32_t frames, long check)
{
    if (!receiving)
        await_ready((unsigned)(check / 10));
    printf("phase: %s\n", name);
    if (!sending)
        announce_ready((unsigned)(check / 10));
    unsigned long txn0 = sending ? A.tx->notifies : 0;
    unsigned long rxn0 = receiving ? B.rx->notifies : 0;
    unsigned long ia0 = A.dev.irqs, ib0 = B.dev.irqs;
    uint64_t t0 = rdtime();
    uint32_t sent = 0, received = 0, last_seq = ~0u;
    uint64_t t_last = t0;
    unsigned long reordered = 0;
    seen_reset(frames, check + 4);
    struct virtq *waitq[2] = { B.rx, A.tx };
    struct virtq **wait_first = receiving ? waitq : waitq + 1;
    int wait_n = sending + receiving;
    /* the transmit buffers keep the frame but for the sequence number
       (and the contents of one frame in 64) */
    if (sending)
        for (unsigned i = 0; i < A.tx->num; i++)
            tx_build(A.mem + (unsigned long)i * STRIDE, 0, len, 0);
    /* a sender alone is done when every frame is sent and its buffer is back */
    while (receiving ? received < frames : sent < frames || A.nfree < A.tx->num) {
        uint32_t ulen;
        void *tok;
        if (!sending)
            goto receive;
        /* A: reclaim, fill the transmit queue */
        while (virtq_get(A.tx, &ulen, &tok, 0))
            A.free[A.nfree++] = (uint16_t)((uintptr_t)tok - 1);
        int added = 0;
        while (sent < frames && A.nfree) {
            unsigned bi = A.free[A.nfree - 1];
            uint8_t *b = A.mem + (unsigned long)bi * STRIDE;
            if ((sent & 63) == 0)
                tx_build(b, sent, len, 1);
            else
                memcpy(b + HDR + 14, &sent, 4);
            struct vbuf v = { b, HDR + len };
            if (virtq_add(A.tx, &v, 1, 0, (void *)(uintptr_t)(bi + 1), 0) < 0)
                break;
            A.nfree--;
            sent++;
            added++;
        }
        if (added)
            virtq_kick(A.tx);
        if (!receiving) {
            if (sent < frames || A.nfree < A.tx->num)
                virtq_wait(A.tx, check + 2);
            t_last = rdtime();
            continue;
        }
    receive:;
        /* B: take the frames, give the buffers back */
        int got = 0;
        while (virtq_get(B.rx, &ulen, &tok, 0)) {
            unsigned bi = (unsigned)((uintptr_t)tok - 1);
            const uint8_t *f = B.mem + (unsigned long)bi * STRIDE + HDR;
            if (!sending && ulen != HDR + len) {
                /* a late frame of the previous phase, after its loss wait ended it */
                rx_post(&B, bi);
                got++;
                continue;
            }
            uint32_t seq = frame_check(name, f, ulen - HDR, len, frames, received, check);
            if (seq != last_seq + 1)
                reordered++;
            last_seq = seq;
            rx_post(&B, bi);
            received++;
            got++;
        }
        if (got)
            virtq_kick(B.rx);
        if (got)
            t_last = rdtime();
        if (received < frames && !got) {
            if (sending && (sent < frames || A.nfree < A.tx->num)) {
                virtq_wait_any(wait_first, wait_n, check + 2);
            } else if (!virtq_wait_any_for(waitq, 1, loss_wait)) {
                if (!sending && !received)
                    continue;           /* another machine's sender: not started yet */
                break;                  /* everything sent: the rest is lost */
            }
        }
    }
    uint64_t ticks = t_last - t0;       /* until the last frame arrived */
    uint64_t bytes = (uint64_t)received * len;
    if (!receiving) {
        printf("%s: %u frames of %u bytes sent, %lu ticks, %lu frames/s, notifies tx %lu, "
               "interrupts %lu\n", name, sent, len, (unsigned long)ticks,
               (unsigned long)(sent * 10000000ULL / (ticks ? ticks : 1)),
               A.tx->notifies - txn0, A.dev.irqs - ia0);
        return;
    }
    printf("%s: %u frames of %u bytes received (%u sent, %u lost), %lu ticks, "
           "%lu frames/s, ", name, received, len, frames, frames - received,
           (unsigned long)ticks,
           (unsigned long)(received * 10000000ULL / (ticks ? ticks : 1)));
    print_rate(bytes, ticks, "MB/s");
    printf(", notifies tx %lu rx %lu, interrupts A %lu B %lu, out of order %lu\n",
           sending ? A.tx->notifies - txn0 : 0, B.rx->notifies - rxn0,
           A.dev.irqs - ia0, B.dev.irqs - ib0, reordered);
    CHECK(check + 5, received > 0);
    /* A's transmit buffers all come back */
    while (sending && A.nfree < A.tx->num) {
        uint32_t ulen;
        void *tok;
        if (virtq_get(A.tx, &ulen, &tok, 0))
            A.free[A.nfree++] = (uint16_t)((uintptr_t)tok - 1);
        else
            virtq_wait(A.tx, check + 3);
    }
}

int main(void)
{
    netbench_args();
    loss_wait = rvh_bootarg("losswait", 500) * 10000;   /* `time` ticks: 10 MHz */
    int slots[VIRTIO_MMIO_SLOTS];
    int n = virtio_find(VIRTIO_ID_NET, slots);
    printf("%d virtio-net device(s)\n", n);
    CHECK(1, n >= 1);
    if (n == 1) {
        /* one end of the pair: the sender if the MAC ends in :01 */
        open_nic(&A, slots[0], 2);
        sending = A.mac[5] == 0x01;
        receiving = !sending;
        if (receiving) {
            virtio_reset(&A.dev);
            open_nic(&B, slots[0], 3);
            for (unsigned i = 0; i < B.rx->num; i++)
                rx_post(&B, i);
            virtq_kick(B.rx);
            printf("netbench: receiver on slot %d, queues %u, wait %s, event_idx %d\n",
                   B.dev.slot, B.rx->num, virtio_wait_names[BENCH_WAIT], B.dev.event_idx);
        } else {
            printf("netbench: sender on slot %d, queues %u, wait %s, event_idx %d\n",
                   A.dev.slot, A.tx->num, virtio_wait_names[BENCH_WAIT], A.dev.event_idx);
        }
        run("net-64", 64, frames_64, 10);
        run("net-1500", 1500, frames_1500, 20);
        puts("phase: end");
        pass();
    }
    /* A = the lowest MAC */
    uint8_t mac0[6], mac1[6];
    open_nic(&A, slots[0], 2);
    memcpy(mac0, A.mac, 6);
    virtio_reset(&A.dev);
    open_nic(&A, slots[1], 2);
    memcpy(mac1, A.mac, 6);
    virtio_reset(&A.dev);
    int a = memcmp(mac1, mac0, 6) < 0;
    open_nic(&A, slots[a], 2);
    open_nic(&B, slots[!a], 3);
    for (unsigned i = 0; i < B.rx->num; i++)
        rx_post(&B, i);
    virtq_kick(B.rx);
    printf("netbench: A slot %d -> B slot %d, queues %u, wait %s, event_idx %d\n",
           A.dev.slot, B.dev.slot, A.tx->num, virtio_wait_names[BENCH_WAIT],
           A.dev.event_idx);

    run("net-64", 64, frames_64, 10);
    run("net-1500", 1500, frames_1500, 20);
    puts("phase: end");

    /* nothing more arrives */
    uint64_t t0 = rdtime();
    while (rdtime() - t0 < 100000)
        CHECK(30, !virtq_has_used(B.rx) && !virtq_has_used(A.rx));
    pass();
}

/*
 * pvnetbench.c - netbench.c's workload over rvh's platform I/O extension (guests/common/
 * pvio.h): NIC A (the lower MAC) sends FRAMES_64 frames of 64 bytes, then FRAMES_1500 of 1500
 * bytes, to NIC B on the same hub.  A keeps its transmit ring full, B its receive ring full
 * of 2 KiB buffers, one NOTIFY per batch each; completions by interrupt (wfi, then the PLIC).
 * B checks the length and sequence number of every frame (and the whole contents of one in
 * 64): none may come twice or corrupt.  Phases "phase: net-64", "phase: net-1500",
 * "phase: end", as netbench prints them.  As netbench, with one pv NIC the guest is one end of
 * the pair (the sender if its MAC ends in :01), with the same "ready" handshake per phase, and
 * the boot arguments frames64=N and frames1500=N change the frame counts.
 */
#include "pvio.h"
#include "virtio.h"             /* print_rate */

TEST_NAME("virtio/pvnetbench");

#define FRAMES_64       300000
#define FRAMES_1500     150000
#define BUF             2048
#define ETHERTYPE       0x88b6
#define ETHERTYPE_READY 0x88b7
#define READY_EVERY     (10000000UL / 10)  /* the receiver's "ready" frames: 0.1 s apart */
#define READY_LIMIT     300                /* 30 s of them without a frame: no sender */
#define MAX_FRAMES      (1u << 22)

struct nic {
    struct pvio_dev dev;
    struct pvio_ring tx, rx;
    uint8_t txmem[PVIO_SLOTS][BUF] __attribute__((aligned(64)));
    uint8_t rxmem[PVIO_SLOTS][BUF] __attribute__((aligned(64)));
};
static struct nic nics[2] __attribute__((aligned(4096)));
static struct nic *A, *B;
static int sending = 1, receiving = 1;     /* one NIC: one of them */
static uint64_t seen[MAX_FRAMES / 64];

static uint8_t fill_byte(uint32_t seq, unsigned i)
{
    return (uint8_t)(seq * 7 + i * 3);
}

static void tx_build(uint8_t *f, uint32_t seq, unsigned len, int full)
{
    if (receiving)
        memcpy(f, B->dev.mac, 6);
    else
        memset(f, 0xff, 6);     /* the receiver is another machine's: any port of the hub */
    memcpy(f + 6, A->dev.mac, 6);
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    memcpy(f + 14, &seq, 4);
    f[18] = (uint8_t)len;
    f[19] = (uint8_t)(len >> 8);
    if (full)
        for (unsigned i = 20; i < len; i++)
            f[i] = fill_byte(seq, i);
}

static void rx_fill(void)
{
    int posted = 0;
    while (pvio_room(&B->dev, 1)) {
        unsigned slot = B->dev.q[1].req_prod % PVIO_SLOTS;
        pvio_post(&B->dev, 1, RVH_PVIO_OP_RECEIVE, 0, B->rxmem[slot], BUF, slot);
        posted = 1;
    }
    if (posted)
        pvio_kick(&B->dev, 1);
}

/* the receiver alone: "ready" frames for phase k until the sender's first frame */
static void announce_ready(unsigned k)
{
    static uint8_t frame[64] __attribute__((aligned(64)));
    memset(frame, 0xff, 6);
    memcpy(frame + 6, B->dev.mac, 6);
    frame[12] = ETHERTYPE_READY >> 8;
    frame[13] = ETHERTYPE_READY & 0xff;
    frame[14] = (uint8_t)k;
    struct pvio_dev *rx = &B->dev;
    int queue = 1;
    for (unsigned tries = 0; B->dev.q[1].ring->rsp_prod == B->dev.q[1].rsp_cons; tries++) {
        CHECK(7, tries < READY_LIMIT);
        uint32_t len = 60;
        CHECK_EQ(8, pvio_sync(&B->dev, 0, RVH_PVIO_OP_TRANSMIT, 0, frame, &len, 8),
                 RVH_PVIO_S_OK);
        pvio_wait_any_for(&rx, &queue, 1, READY_EVERY);
    }
}

/* the sender alone: wait for the receiver's "ready" for phase k (its receive ring is kept
   full of one shared buffer, so the hub never holds the receiver back; stale ones are
   passed over) */
static void await_ready(unsigned k)
{
    uint8_t *buf = A->rxmem[0];
    for (;;) {
        while (pvio_room(&A->dev, 1))
            pvio_post(&A->dev, 1, RVH_PVIO_OP_RECEIVE, 0, buf, BUF, 0);
        pvio_kick(&A->dev, 1);
        pvio_wait(&A->dev, 1, 9);
        int ready = 0;
        volatile struct pvio_slot *s;
        while ((s = pvio_response(&A->dev, 1)))
            ready |= s->status == RVH_PVIO_S_OK && buf[12] == ETHERTYPE_READY >> 8 &&
                     buf[13] == (ETHERTYPE_READY & 0xff) && buf[14] >= k;
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
    unsigned long txn0 = sending ? A->dev.notifies : 0, rxn0 = receiving ? B->dev.notifies : 0;
    unsigned long ia0 = sending ? A->dev.irqs : 0, ib0 = receiving ? B->dev.irqs : 0;
    uint64_t t0 = rdtime(), t_last = t0;
    uint32_t sent = 0, received = 0;
    CHECK(check + 4, frames <= MAX_FRAMES);
    memset(seen, 0, (frames + 63) / 64 * 8);
    if (sending)
        for (unsigned i = 0; i < PVIO_SLOTS; i++)
            tx_build(A->txmem[i], 0, len, 0);
    struct pvio_dev *devs[2] = { receiving ? &B->dev : 0, sending ? &A->dev : 0 };
    static const int queues[2] = { 1, 0 };
    struct pvio_dev **wait_first = receiving ? devs : devs + 1;
    const int *wait_queues = receiving ? queues : queues + 1;
    int wait_n = sending + receiving;
    /* a sender alone is done when every frame is sent and answered */
    while (receiving ? received < frames
                     : sent < frames || A->dev.q[0].rsp_cons != A->dev.q[0].req_prod) {
        if (!sending)
            goto receive;
        while (pvio_response(&A->dev, 0))
            ;
        int added = 0;
        while (sent < frames && pvio_room(&A->dev, 0)) {
            unsigned slot = A->dev.q[0].req_prod % PVIO_SLOTS;
            if ((sent & 63) == 0)
                tx_build(A->txmem[slot], sent, len, 1);
            else
                memcpy(A->txmem[slot] + 14, &sent, 4);
            pvio_post(&A->dev, 0, RVH_PVIO_OP_TRANSMIT, 0, A->txmem[slot], len, sent);
            sent++;
            added = 1;
        }
        if (added)
            pvio_kick(&A->dev, 0);
        if (!receiving) {
            if (sent < frames || A->dev.q[0].rsp_cons != A->dev.q[0].req_prod)
                pvio_wait(&A->dev, 0, check + 2);
            t_last = rdtime();
            continue;
        }
    receive:;
        int got = 0;
        volatile struct pvio_slot *s;
        while ((s = pvio_response(&B->dev, 1))) {
            const uint8_t *f = B->rxmem[s->id];
            uint32_t seq;
            memcpy(&seq, f + 14, 4);
            if (s->status != RVH_PVIO_S_OK || s->len != len || seq >= frames ||
                (f[18] | (unsigned)f[19] << 8) != len || (seen[seq / 64] >> (seq % 64)) & 1) {
                printf("%s: frame %u: status %u, length %u, sequence %u\n", name, received,
                       s->status, s->len, seq);
                CHECK(check, 0);
            }
            seen[seq / 64] |= 1ULL << (seq % 64);
            if ((seq & 63) == 0)
                for (unsigned i = 20; i < len; i++)
                    if (f[i] != fill_byte(seq, i)) {
                        printf("%s: frame %u byte %u differs\n", name, seq, i);
                        CHECK(check + 1, 0);
                    }
            received++;
            got++;
        }
        if (got) {
            rx_fill();
            t_last = rdtime();
        } else if (received < frames) {
            pvio_wait_any(wait_first, wait_queues, wait_n, check + 2);
        }
    }
    uint64_t ticks = t_last - t0;
    if (!receiving) {
        printf("%s: %u frames of %u bytes sent, %lu ticks, %lu frames/s, notifies tx %lu, "
               "interrupts %lu\n", name, sent, len, (unsigned long)ticks,
               (unsigned long)(sent * 10000000ULL / (ticks ? ticks : 1)),
               A->dev.notifies - txn0, A->dev.irqs - ia0);
        return;
    }
    printf("%s: %u frames of %u bytes received (%u sent), %lu ticks, %lu frames/s, ", name,
           received, len, frames, (unsigned long)ticks,
           (unsigned long)(received * 10000000ULL / (ticks ? ticks : 1)));
    print_rate((uint64_t)received * len, ticks, "MB/s");
    printf(", notifies tx %lu rx %lu, interrupts A %lu B %lu\n",
           sending ? A->dev.notifies - txn0 : 0, B->dev.notifies - rxn0,
           sending ? A->dev.irqs - ia0 : 0, B->dev.irqs - ib0);
    while (sending && A->dev.q[0].rsp_cons != A->dev.q[0].req_prod)
        if (!pvio_response(&A->dev, 0))
            pvio_wait(&A->dev, 0, check + 3);
}

int main(void)
{
    uint32_t frames_64 = (uint32_t)rvh_bootarg("frames64", FRAMES_64);
    uint32_t frames_1500 = (uint32_t)rvh_bootarg("frames1500", FRAMES_1500);
    int n = pvio_count();
    CHECK(1, n >= 1);
    if (n == 1) {
        /* one end of the pair: the sender if the MAC ends in :01 */
        CHECK_EQ(2, pvio_open(&nics[0].dev, 0), 0);
        CHECK_EQ(3, nics[0].dev.type, RVH_PVIO_TYPE_NET);
        CHECK_EQ(4, pvio_attach(&nics[0].dev, 0, &nics[0].tx), 0);
        CHECK_EQ(5, pvio_attach(&nics[0].dev, 1, &nics[0].rx), 0);
        sending = nics[0].dev.mac[5] == 0x01;
        receiving = !sending;
        A = B = &nics[0];
        if (receiving)
            rx_fill();
        printf("pvnetbench: %s on pv device 0, rings of %d\n",
               sending ? "sender" : "receiver", PVIO_SLOTS);
        run("net-64", 64, frames_64, 10);
        run("net-1500", 1500, frames_1500, 20);
        puts("phase: end");
        pass();
    }
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(2, pvio_open(&nics[i].dev, i), 0);
        CHECK_EQ(3, nics[i].dev.type, RVH_PVIO_TYPE_NET);
        CHECK_EQ(4, pvio_attach(&nics[i].dev, 0, &nics[i].tx), 0);
        CHECK_EQ(5, pvio_attach(&nics[i].dev, 1, &nics[i].rx), 0);
    }
    int a = memcmp(nics[1].dev.mac, nics[0].dev.mac, 6) < 0;
    A = &nics[a];
    B = &nics[!a];
    rx_fill();
    printf("pvnetbench: A pv device %d -> B pv device %d, rings of %d\n", A->dev.index,
           B->dev.index, PVIO_SLOTS);
    run("net-64", 64, frames_64, 10);
    run("net-1500", 1500, frames_1500, 20);
    puts("phase: end");
    pass();
}

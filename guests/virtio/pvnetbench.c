/*
 * pvnetbench.c - netbench.c's workload over rvh's platform I/O extension (guests/common/
 * pvio.h): NIC A (the lower MAC) sends FRAMES_64 frames of 64 bytes, then FRAMES_1500 of 1500
 * bytes, to NIC B on the same hub.  A keeps its transmit ring full, B its receive ring full
 * of 2 KiB buffers, one NOTIFY per batch each; completions by interrupt (wfi, then the PLIC).
 * The frames, their checks, the one-NIC ends and their "ready" handshake are netbench.h's (so
 * either end may be netbench); phases "phase: net-64", "phase: net-1500", "phase: end", as
 * netbench prints them.
 */
#include "pvio.h"
#include "netbench.h"

TEST_NAME("virtio/pvnetbench");

#define BUF             2048

struct nic {
    struct pvio_dev dev;
    struct pvio_ring tx, rx;
    uint8_t txmem[PVIO_SLOTS][BUF] __attribute__((aligned(64)));
    uint8_t rxmem[PVIO_SLOTS][BUF] __attribute__((aligned(64)));
};
static struct nic nics[2] __attribute__((aligned(4096)));
static struct nic *A, *B;

static void tx_build(uint8_t *f, uint32_t seq, unsigned len, int full)
{
    /* to B, or to any port: another machine's receiver */
    frame_build(f, receiving ? B->dev.mac : broadcast, A->dev.mac, seq, len, full);
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
    ready_build(frame, B->dev.mac, k);
    struct pvio_dev *rx = &B->dev;
    int queue = 1;
    for (unsigned tries = 0; B->dev.q[1].ring->rsp_prod == B->dev.q[1].rsp_cons; tries++) {
        CHECK(7, tries < READY_LIMIT);
        uint32_t len = READY_LEN;
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
            ready |= s->status == RVH_PVIO_S_OK && ready_for(buf, k);
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
    seen_reset(frames, check + 4);
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
            if (s->status != RVH_PVIO_S_OK) {
                printf("%s: frame %u: status %u\n", name, received, s->status);
                CHECK(check, 0);
            }
            frame_check(name, B->rxmem[s->id], s->len, len, frames, received, check);
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
    netbench_args();
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

/*
 * pvnetbench.c - netbench.c's workload over rvh's platform I/O extension (guests/common/
 * pvio.h): NIC A (the lower MAC) sends FRAMES_64 frames of 64 bytes, then FRAMES_1500 of 1500
 * bytes, to NIC B on the same hub.  A keeps its transmit ring full, B its receive ring full
 * of 2 KiB buffers, one NOTIFY per batch each; completions by interrupt (wfi, then the PLIC).
 * B checks the length and sequence number of every frame (and the whole contents of one in
 * 64): none may come twice or corrupt.  Phases "phase: net-64", "phase: net-1500",
 * "phase: end", as netbench prints them.
 */
#include "pvio.h"
#include "virtio.h"             /* print_rate */

TEST_NAME("virtio/pvnetbench");

#ifndef FRAMES_64
#define FRAMES_64       300000
#endif
#ifndef FRAMES_1500
#define FRAMES_1500     150000
#endif
#define BUF             2048
#define ETHERTYPE       0x88b6
#define MAX_FRAMES      (1u << 22)

struct nic {
    struct pvio_dev dev;
    struct pvio_ring tx, rx;
    uint8_t txmem[PVIO_SLOTS][BUF] __attribute__((aligned(64)));
    uint8_t rxmem[PVIO_SLOTS][BUF] __attribute__((aligned(64)));
};
static struct nic nics[2] __attribute__((aligned(4096)));
static struct nic *A, *B;
static uint64_t seen[MAX_FRAMES / 64];

static uint8_t fill_byte(uint32_t seq, unsigned i)
{
    return (uint8_t)(seq * 7 + i * 3);
}

static void tx_build(uint8_t *f, uint32_t seq, unsigned len, int full)
{
    memcpy(f, B->dev.mac, 6);
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

static void run(const char *name, unsigned len, uint32_t frames, long check)
{
    printf("phase: %s\n", name);
    unsigned long txn0 = A->dev.notifies, rxn0 = B->dev.notifies;
    unsigned long ia0 = A->dev.irqs, ib0 = B->dev.irqs;
    uint64_t t0 = rdtime(), t_last = t0;
    uint32_t sent = 0, received = 0;
    CHECK(check + 4, frames <= MAX_FRAMES);
    memset(seen, 0, (frames + 63) / 64 * 8);
    for (unsigned i = 0; i < PVIO_SLOTS; i++)
        tx_build(A->txmem[i], 0, len, 0);
    struct pvio_dev *devs[2] = { &B->dev, &A->dev };
    static const int queues[2] = { 1, 0 };
    while (received < frames) {
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
            pvio_wait_any(devs, queues, 2, check + 2);
        }
    }
    uint64_t ticks = t_last - t0;
    printf("%s: %u frames of %u bytes received (%u sent), %lu ticks, %lu frames/s, ", name,
           received, len, frames, (unsigned long)ticks,
           (unsigned long)(received * 10000000ULL / (ticks ? ticks : 1)));
    print_rate((uint64_t)received * len, ticks, "MB/s");
    printf(", notifies tx %lu rx %lu, interrupts A %lu B %lu\n", A->dev.notifies - txn0,
           B->dev.notifies - rxn0, A->dev.irqs - ia0, B->dev.irqs - ib0);
    while (A->dev.q[0].rsp_cons != A->dev.q[0].req_prod)
        if (!pvio_response(&A->dev, 0))
            pvio_wait(&A->dev, 0, check + 3);
}

int main(void)
{
    CHECK(1, pvio_count() >= 2);
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
    run("net-64", 64, FRAMES_64, 10);
    run("net-1500", 1500, FRAMES_1500, 20);
    puts("phase: end");
    pass();
}

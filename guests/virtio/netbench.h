/*
 * netbench.h - the network benchmark's frames, shared by netbench.c (virtio-net)
 * and pvnetbench.c (rvh's platform I/O extension), so that either can send to
 * the other: a sender sends frames_64 frames of 64 bytes, then frames_1500 of
 * 1500 bytes (the boot arguments frames64=N and frames1500=N; 300,000 and
 * 150,000 by default).  A frame carries its sequence number (bytes 14..17) and
 * length (18..19); one in 64 is filled with fill_byte, which the receiver
 * checks.  The receiver checks the length and sequence number of every frame:
 * none may come twice or corrupt.
 *
 * With one NIC the guest is one end of the pair (sending if its MAC ends in
 * :01, else receiving).  Before each phase k the receiver sends "ready" frames
 * (ETHERTYPE_READY, k in byte 14) until the sender's first frame arrives, and
 * the sender waits for one: a sender that started earlier would send into a
 * port with no driver (whose frames a hub drops) or into the previous phase.
 */
#ifndef NETBENCH_H
#define NETBENCH_H

#include "virtio.h"          /* print_rate, and smode.h */

#define FRAMES_64       300000
#define FRAMES_1500     150000
#define ETHERTYPE       0x88b6
#define ETHERTYPE_READY 0x88b7
#define READY_LEN       60
#define READY_EVERY     (10000000UL / 10)  /* the receiver's "ready" frames: 0.1 s apart */
#define READY_LIMIT     1200               /* 2 minutes of them without a frame: no sender */
#define MAX_FRAMES      (1u << 22)

static uint32_t frames_64, frames_1500;
static int sending = 1, receiving = 1;     /* one NIC: one of them */
static uint64_t seen[MAX_FRAMES / 64];     /* the sequence numbers received in a phase */
static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void netbench_args(void)
{
    frames_64 = (uint32_t)rvh_bootarg("frames64", FRAMES_64);
    frames_1500 = (uint32_t)rvh_bootarg("frames1500", FRAMES_1500);
}

static uint8_t fill_byte(uint32_t seq, unsigned i)
{
    return (uint8_t)(seq * 7 + i * 3);
}

/* an Ethernet frame of len bytes to dst (the whole payload with full, else the
   header, sequence number and length only) */
static void frame_build(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint32_t seq,
                        unsigned len, int full)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, src, 6);
    f[12] = ETHERTYPE >> 8;
    f[13] = ETHERTYPE & 0xff;
    memcpy(f + 14, &seq, 4);
    f[18] = (uint8_t)len;
    f[19] = (uint8_t)(len >> 8);
    if (full)
        for (unsigned i = 20; i < len; i++)
            f[i] = fill_byte(seq, i);
}

static void ready_build(uint8_t *f, const uint8_t *src, unsigned k)
{
    memset(f, 0, READY_LEN);
    memcpy(f, broadcast, 6);
    memcpy(f + 6, src, 6);
    f[12] = ETHERTYPE_READY >> 8;
    f[13] = ETHERTYPE_READY & 0xff;
    f[14] = (uint8_t)k;
}

/* a "ready" frame for phase k or a later one */
static int ready_for(const uint8_t *f, unsigned k)
{
    return f[12] == ETHERTYPE_READY >> 8 && f[13] == (ETHERTYPE_READY & 0xff) && f[14] >= k;
}

static void seen_reset(uint32_t frames, long check)
{
    CHECK(check, frames <= MAX_FRAMES);
    memset(seen, 0, (frames + 63) / 64 * 8);
}

/* the receiver's check of a frame of flen bytes in the phase of len-byte frames
   (the n-th received); returns its sequence number */
static uint32_t frame_check(const char *name, const uint8_t *f, uint32_t flen, unsigned len,
                            uint32_t frames, uint32_t n, long check)
{
    uint32_t seq;
    memcpy(&seq, f + 14, 4);
    int twice = seq < frames && (seen[seq / 64] >> (seq % 64)) & 1;
    if (flen != len || seq >= frames || (f[18] | (unsigned)f[19] << 8) != len || twice) {
        printf("%s: frame %u: length %u, sequence %u%s\n", name, n, flen, seq,
               twice ? " (a second time)" : "");
        CHECK(check, 0);
    }
    seen[seq / 64] |= 1ULL << (seq % 64);
    if ((seq & 63) == 0)
        for (unsigned i = 20; i < len; i++)
            if (f[i] != fill_byte(seq, i)) {
                printf("%s: frame %u byte %u differs\n", name, seq, i);
                CHECK(check + 1, 0);
            }
    return seq;
}

#endif

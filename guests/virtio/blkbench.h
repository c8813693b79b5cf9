/*
 * blkbench.h - the disk benchmark's workload, shared by blkbench.c (virtio-blk)
 * and pvblkbench.c (rvh's platform I/O extension): sequential reads and writes
 * in 4 KiB and 64 KiB requests over the first region_bytes of the disk (made by
 * `mkimage.py bench.img --size 32M --id 2`), `passes` passes each.  The boot
 * arguments region=BYTES and passes=N change them (32 MiB and 4 by default);
 * passes64=N gives the 64 KiB phases a count of their own (default: passes), so
 * that a benchmark can make them last as long as the 4 KiB ones (rvh bench virtio:
 * 16, else a 64 KiB phase takes about 60 ms, within a shared host's noise).
 *
 * Phases, each announced by a "phase: <name>" line ("phase: end" after the
 * last), so that an emulator can time them:
 *   read-4k    (checks the mkimage.py pattern: sector number, "rvh-dsk", id 2)
 *   write-4k   (stamps the first 8 bytes of every sector, then FLUSH)
 *   read-64k   (checks the write-4k stamps)
 *   write-64k  (new stamps, then FLUSH)
 * then, untimed, a read of the region checking the write-64k stamps.  Each
 * phase prints "<name>: <KiB> KiB in <n> requests of <size> KiB", its `time`
 * ticks (10 MHz), MB/s (10^6 bytes per second), requests per second, the most
 * requests in flight, and the driver's notifies and interrupts.
 *
 * The driver file includes this header after defining its part:
 *   static unsigned long run_pass(int write, uint32_t reqlen, unsigned tag,
 *                                 long check);  one pass, returns the requests
 *   static void flush(long check);
 *   static unsigned long notifies(void), interrupts(void);
 * and calls blkbench_args() first, then blkbench_run() once region_sectors
 * is set.
 */
#ifndef BLKBENCH_H
#define BLKBENCH_H

#include "virtio.h"          /* print_rate, and smode.h */

#define SECTOR          512
#define DEFAULT_PASSES  4
#define DEFAULT_REGION  (32UL << 20)

static unsigned long passes, passes64, region_bytes;
static uint64_t region_sectors;     /* whole 64 KiB requests, set by the driver */
static unsigned inflight_max;       /* the most requests in flight, kept by run_pass */


static unsigned long run_pass(int write, uint32_t reqlen, unsigned tag, long check);
static void flush(long check);
static unsigned long notifies(void);
static unsigned long interrupts(void);

static void blkbench_args(void)
{
    passes = rvh_bootarg("passes", DEFAULT_PASSES);
    passes64 = rvh_bootarg("passes64", passes);
    region_bytes = rvh_bootarg("region", DEFAULT_REGION);
}

/* the sectors to use of a disk of `capacity` sectors; fails the test if too few */
static void blkbench_region(uint64_t capacity)
{
    region_sectors = capacity < region_bytes / SECTOR ? capacity : region_bytes / SECTOR;
    region_sectors &= ~127ULL;          /* whole 64 KiB requests */
    CHECK(6, region_sectors >= 128 && passes >= 1 && passes64 >= 1);
}

/* stamp: the first 8 bytes of every sector of a write */
static uint64_t stamp_of(uint64_t sector, unsigned tag)
{
    return sector ^ ((uint64_t)tag << 48) ^ 0x5a5a000000000000ULL;
}

static void stamp(uint8_t *buf, uint64_t sector, uint32_t len, unsigned tag)
{
    for (uint32_t off = 0; off < len; off += SECTOR)
        *(uint64_t *)(buf + off) = stamp_of(sector + off / SECTOR, tag);
}

/* tag 0: the mkimage.py pattern (id 2); else the stamps */
static void check_read(const uint8_t *buf, uint64_t sector, uint32_t len, unsigned tag,
                       long check)
{
    for (uint32_t off = 0; off < len; off += SECTOR) {
        uint64_t s = sector + off / SECTOR;
        uint64_t w = *(const uint64_t *)(buf + off);
        uint64_t want = tag ? stamp_of(s, tag) : s;
        if (w != want || (!tag && (memcmp(buf + off + 8, "rvh-dsk", 7) || buf[off + 15] != 2))) {
            printf("sector %lu: first word 0x%016lx, expected 0x%016lx%s\n",
                   (unsigned long)s, (unsigned long)w, (unsigned long)want,
                   tag ? "" : " (mkimage.py pattern id 2)");
            CHECK(check, 0);
        }
    }
}

static void phase(const char *name, int write, uint32_t reqlen, unsigned tag, long check)
{
    printf("phase: %s\n", name);
    unsigned long n0 = notifies(), i0 = interrupts();
    inflight_max = 0;
    uint64_t t0 = rdtime();
    unsigned long reqs = 0;
    unsigned long n = reqlen == 65536 ? passes64 : passes;
    for (unsigned long p = 0; p < n; p++)
        reqs += run_pass(write, reqlen, tag, check);
    if (write)
        flush(check + 2);
    uint64_t ticks = rdtime() - t0;
    uint64_t bytes = (uint64_t)reqs * reqlen;
    printf("%s: %lu KiB in %lu requests of %u KiB, %lu ticks, ", name,
           (unsigned long)(bytes >> 10), reqs, reqlen >> 10, (unsigned long)ticks);
    print_rate(bytes, ticks, "MB/s");
    printf(", %lu requests/s, max %u in flight, %lu notifies, %lu interrupts\n",
           (unsigned long)(reqs * 10000000ULL / (ticks ? ticks : 1)), inflight_max,
           notifies() - n0, interrupts() - i0);
}

__attribute__((noreturn)) static void blkbench_run(void)
{
    phase("read-4k", 0, 4096, 0, 10);
    phase("write-4k", 1, 4096, 0x4b, 20);
    phase("read-64k", 0, 65536, 0x4b, 30);
    phase("write-64k", 1, 65536, 0x64, 40);
    puts("phase: end");
    run_pass(0, 65536, 0x64, 50);
    printf("the region holds the write-64k stamps\n");
    pass();
}

#endif

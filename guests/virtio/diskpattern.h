/*
 * diskpattern.h - the sector pattern of the disks mkimage.py makes, for the guests that check
 * what they read (blk.c, blkbig.c, pvblk.c).  Sector s of a disk with pattern id k:
 *   bytes 0..7    s, little-endian
 *   bytes 8..14   "rvh-dsk"
 *   byte  15      k
 *   bytes 16..511 (s*7 + j*13 + k*101) & 0xff at byte offset j
 */
#ifndef DISKPATTERN_H
#define DISKPATTERN_H

#include <stdint.h>
#include "smode.h"              /* memcpy */

#define DISK_PATTERN_SECTOR 512

/* the 512 bytes of sector s of a disk with pattern id k, into b */
static void disk_pattern_fill(uint8_t *b, uint64_t s, unsigned k)
{
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(s >> (8 * i));
    memcpy(b + 8, "rvh-dsk", 7);
    b[15] = (uint8_t)k;
    uint8_t v = (uint8_t)(s * 7 + 16 * 13 + k * 101);
    for (int j = 16; j < DISK_PATTERN_SECTOR; j++, v += 13)
        b[j] = v;
}

#endif /* DISKPATTERN_H */

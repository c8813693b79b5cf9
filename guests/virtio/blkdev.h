/*
 * blkdev.h - a virtio-blk device opened and closed the same way by blk.c and blkbig.c:
 * initialisation with the features a guest wants (VIRTIO 1.2, 3.1.1), queue 0 (the
 * requestq), DRIVER_OK, then the configuration fields the negotiated features make valid
 * (5.2.4); and at the end, a device in good standing with nothing outstanding, reset.
 */
#ifndef BLKDEV_H
#define BLKDEV_H

#include "virtio.h"
#include "diskpattern.h"

struct blk {
    struct virtio_dev dev;
    struct virtq *q;
    int slot;
    uint64_t capacity;                  /* in 512-byte sectors */
    int ro;                             /* VIRTIO_BLK_F_RO */
    uint32_t seg_max, size_max;         /* 0 when the feature is not negotiated */
    uint32_t max_discard, max_discard_seg, discard_align;
    uint32_t max_wz, max_wz_seg;
    uint8_t wz_may_unmap;
};

/* open the block device in `slot` with `features` (those offered are accepted) and a queue of
 * at most `qsize` entries, waiting on it as `wait` says; fails check `check` otherwise */
static void blk_open(struct blk *b, int slot, uint64_t features, enum virtio_wait wait,
                     unsigned qsize, long check)
{
    int err = virtio_dev_init(&b->dev, slot, VIRTIO_ID_BLOCK, features, 0);
    CHECK_EQ(check, err, 0);
    b->slot = slot;
    b->q = virtq_setup(&b->dev, 0, qsize);
    CHECK(check, b->q != 0);
    uint32_t st = virtio_driver_ok(&b->dev, wait);
    CHECK_EQ(check, st, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                        VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    b->ro = virtio_has(&b->dev, VIRTIO_BLK_F_RO);
    b->capacity = virtio_config64(&b->dev, VIRTIO_BLK_CFG_CAPACITY);
    b->seg_max = virtio_has(&b->dev, VIRTIO_BLK_F_SEG_MAX) ?
                 virtio_config32(&b->dev, VIRTIO_BLK_CFG_SEG_MAX) : 0;
    b->size_max = virtio_has(&b->dev, VIRTIO_BLK_F_SIZE_MAX) ?
                  virtio_config32(&b->dev, VIRTIO_BLK_CFG_SIZE_MAX) : 0;
    if (virtio_has(&b->dev, VIRTIO_BLK_F_DISCARD)) {
        b->max_discard = virtio_config32(&b->dev, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS);
        b->max_discard_seg = virtio_config32(&b->dev, VIRTIO_BLK_CFG_MAX_DISCARD_SEG);
        b->discard_align = virtio_config32(&b->dev, VIRTIO_BLK_CFG_DISCARD_ALIGN);
    }
    if (virtio_has(&b->dev, VIRTIO_BLK_F_WRITE_ZEROES)) {
        b->max_wz = virtio_config32(&b->dev, VIRTIO_BLK_CFG_MAX_WZ_SECTORS);
        b->max_wz_seg = virtio_config32(&b->dev, VIRTIO_BLK_CFG_MAX_WZ_SEG);
        b->wz_may_unmap = virtio_config8(&b->dev, VIRTIO_BLK_CFG_WZ_MAY_UNMAP);
    }
}

/* neither NEEDS_RESET nor FAILED, every descriptor back: then the reset */
static void blk_close(struct blk *b, long check)
{
    uint32_t st = vio_read(&b->dev, VIRTIO_MMIO_STATUS);
    CHECK_EQ(check, st & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED), 0);
    CHECK_EQ(check, b->q->num_free, b->q->num);         /* nothing outstanding */
    virtio_reset(&b->dev);
}

#endif /* BLKDEV_H */

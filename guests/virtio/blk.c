/*
 * blk.c - virtio-blk over virtio-mmio (version 2), self-checking.
 *
 * Needs a read-write disk made by `mkimage.py disk0.img --size 8M --id 0`
 * (any size >= 4 MiB made with pattern id 0), and optionally a second,
 * read-only disk (`mkimage.py disk1.img --size 1M --id 1`, VIRTIO_BLK_F_RO).
 * guests/virtio/qemu-args.sh makes both for QEMU.
 *
 *   - scan of the 8 virtio-mmio slots; virtio-mmio version 2 and
 *     VIRTIO_F_VERSION_1 required (fails clearly on a legacy device),
 *   - config space: capacity and the optional fields of the offered features,
 *   - the whole disk read (64 KiB requests, several in flight) and compared
 *     with the mkimage.py pattern, CRC-32 of the disk printed,
 *   - four rounds, each after a device reset with another configuration:
 *       1. poll,  no EVENT_IDX, no INDIRECT_DESC, largest queue
 *       2. wfi,   EVENT_IDX, INDIRECT_DESC,       queue size 8
 *       3. irq,   INDIRECT_DESC, no EVENT_IDX,    queue size 16
 *       4. irq,   EVENT_IDX, no INDIRECT_DESC,    queue size 64
 *     (the generic features only when offered).  In each round: single-
 *     sector writes and reads in several descriptor layouts (header in one
 *     or two descriptors, status in its own descriptor or after the data,
 *     indirect tables), multi-sector requests, scattered multi-descriptor
 *     chains with odd segment sizes, batches of requests in flight, the last
 *     sectors of the disk, FLUSH, out-of-range requests (IOERR, data
 *     unchanged), an unknown request type (UNSUPP), GET_ID, WRITE_ZEROES and
 *     DISCARD when offered; the used lengths (data + 1 status byte for
 *     reads, 1 for writes); interrupts counted in the wfi / irq modes,
 *   - the read-only disk: its pattern, VIRTIO_BLK_F_RO, writes and
 *     WRITE_ZEROES give IOERR and leave the data unchanged,
 *   - the whole read-write disk read again and compared with everything
 *     written (the data survives the device resets).
 */
#include "blkdev.h"

TEST_NAME("virtio/blk");

#define SECTOR          VIRTIO_BLK_SECTOR
#define MAX_REQS        512
#define MIN_CAPACITY    8192            /* 4 MiB */

/* sector states of the read-write disk */
#define ST_ZERO         0xfe
#define ST_UNKNOWN      0xfd            /* discarded: zeroes or the old data */

struct req {
    struct virtio_blk_req_hdr hdr;
    uint8_t status;
    uint8_t merged;                     /* status is the byte after the data */
    uint8_t *status_at;
    uint32_t expect_len;                /* used length expected on success */
    struct req *next_free;
} __attribute__((aligned(16)));

static struct blk disk, rodisk;
static struct req reqs[MAX_REQS];
static struct req *req_free;
static uint8_t *state;                  /* per sector of the rw disk */
static uint8_t *big;                    /* whole-disk buffer */
static uint8_t *wbuf, *rbuf;            /* 256 KiB each */
static uint64_t features_common;
static int round_no;

/* ------------------------------------------------------------------ */
/* the mkimage.py pattern (diskpattern.h) as this guest has rewritten it */

static void expect_fill(uint8_t *b, uint64_t s)
{
    uint8_t st = state[s];
    if (st == ST_ZERO)
        memset(b, 0, SECTOR);
    else
        disk_pattern_fill(b, s, st);
}

/* compare n sectors at buf with their expected contents; returns 0 or
   prints the first difference and returns 1.  ST_UNKNOWN sectors must be
   all zeroes or their previous pattern (kept in unknown_prev) */
static uint8_t *unknown_prev;           /* per sector: the pattern before a DISCARD */
static int verify_sectors(const uint8_t *buf, uint64_t s0, uint64_t n, const char *what)
{
    static uint8_t exp[SECTOR];
    for (uint64_t i = 0; i < n; i++) {
        uint64_t s = s0 + i;
        const uint8_t *got = buf + i * SECTOR;
        if (state[s] == ST_UNKNOWN) {
            int zero = 1;
            for (int j = 0; j < SECTOR && zero; j++)
                zero = got[j] == 0;
            if (zero)
                continue;
            disk_pattern_fill(exp, s, unknown_prev[s]);
        } else {
            expect_fill(exp, s);
        }
        for (int j = 0; j < SECTOR; j++) {
            if (got[j] != exp[j]) {
                printf("%s: sector %lu byte %d: got 0x%02x, expected 0x%02x "
                       "(state %u)\n", what, (unsigned long)s, j, got[j], exp[j],
                       state[s]);
                return 1;
            }
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* requests                                                           */

enum {
    L_SPLIT_HDR = 1,        /* header as 8 + 8 bytes */
    L_INDIRECT = 2,         /* the chain in an indirect table */
    L_STATUS_MERGED = 4,    /* reads: status byte right after the data, same descriptor */
};

static void req_pool_init(void)
{
    req_free = 0;
    for (int i = MAX_REQS - 1; i >= 0; i--) {
        reqs[i].next_free = req_free;
        req_free = &reqs[i];
    }
}

static struct req *req_get(void)
{
    struct req *r = req_free;
    if (r)
        req_free = r->next_free;
    return r;
}

static void req_put(struct req *r)
{
    r->next_free = req_free;
    req_free = r;
}

static int type_writes_memory(uint32_t type)
{
    return type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID ||
           type == VIRTIO_BLK_T_GET_LIFETIME;
}

/*
 * Queue one request: header, data segments, status.  With
 * L_STATUS_MERGED the last segment must have room for one more byte,
 * which is where the device writes the status.  Returns the head or -1.
 */
static int blk_submit(struct blk *b, struct req *r, uint32_t type, uint64_t sector,
                      const struct vbuf *segs, int nsegs, int layout)
{
    struct vbuf v[VQ_INDIRECT_MAX + 4];
    int n = 0, n_out;
    uint32_t data = 0;
    r->hdr.type = type;
    r->hdr.reserved = 0;
    r->hdr.sector = sector;
    r->status = 0xee;
    r->merged = 0;
    r->status_at = &r->status;
    if (layout & L_SPLIT_HDR) {
        v[n].addr = &r->hdr;
        v[n++].len = 8;
        v[n].addr = &r->hdr.sector;
        v[n++].len = 8;
    } else {
        v[n].addr = &r->hdr;
        v[n++].len = sizeof r->hdr;
    }
    int wr = type_writes_memory(type);
    n_out = n;
    for (int i = 0; i < nsegs; i++) {
        v[n++] = segs[i];
        data += segs[i].len;
    }
    if (!wr)
        n_out = n;
    if ((layout & L_STATUS_MERGED) && wr && nsegs > 0) {
        v[n - 1].len += 1;
        r->status_at = (uint8_t *)v[n - 1].addr + segs[nsegs - 1].len;
        *r->status_at = 0xee;
        r->merged = 1;
        r->expect_len = data + 1;
    } else {
        v[n].addr = &r->status;
        v[n++].len = 1;
        r->expect_len = (wr ? data : 0) + 1;
    }
    return virtq_add(b->q, v, (unsigned)n_out, (unsigned)(n - n_out), r,
                     (layout & L_INDIRECT) != 0);
}

/* one request, synchronously; returns the status, *used = used length */
static uint8_t blk_do(struct blk *b, uint32_t type, uint64_t sector,
                      const struct vbuf *segs, int nsegs, int layout,
                      uint32_t *used, long check)
{
    struct req *r = req_get();
    CHECK(check, r != 0);
    int head = blk_submit(b, r, type, sector, segs, nsegs, layout);
    CHECK(check, head >= 0);
    virtq_kick(b->q);
    uint32_t len;
    void *tok;
    virtq_wait(b->q, check);
    CHECK(check, virtq_get(b->q, &len, &tok, 0));
    CHECK(check, tok == r);
    if (used)
        *used = len;
    uint8_t st = *r->status_at;
    if (st == VIRTIO_BLK_S_OK && len != r->expect_len) {
        printf("request type %u sector %lu: used length %u, expected %u\n", type,
               (unsigned long)sector, len, r->expect_len);
        CHECK(check, len == r->expect_len);
    }
    req_put(r);
    return st;
}

/* a simple request with one data buffer */
static uint8_t blk_simple(struct blk *b, uint32_t type, uint64_t sector, void *buf,
                          uint32_t len, int layout, uint32_t *used, long check)
{
    struct vbuf seg = { buf, len };
    return blk_do(b, type, sector, &seg, len ? 1 : 0, layout, used, check);
}

/*
 * Read or write `count` sectors from `sector` in requests of `chunk`
 * sectors, as many in flight as the queue holds (or max_inflight);
 * completions may come in any order.
 */
static void blk_range(struct blk *b, uint32_t type, uint64_t sector, uint64_t count,
                      uint8_t *buf, unsigned chunk, int layout, unsigned max_inflight,
                      long check)
{
    uint64_t next = 0;
    unsigned inflight = 0;
    while (next < count || inflight) {
        int added = 0;
        while (next < count && inflight < max_inflight) {
            uint64_t n = count - next < chunk ? count - next : chunk;
            struct req *r = req_get();
            if (!r)
                break;
            struct vbuf seg = { buf + next * SECTOR, (uint32_t)(n * SECTOR) };
            if (blk_submit(b, r, type, sector + next, &seg, 1, layout) < 0) {
                req_put(r);
                break;
            }
            next += n;
            inflight++;
            added++;
        }
        if (added)
            virtq_kick(b->q);
        CHECK(check, inflight > 0);
        virtq_wait(b->q, check);
        uint32_t len;
        void *tok;
        while (virtq_get(b->q, &len, &tok, 0)) {
            struct req *r = tok;
            if (*r->status_at != VIRTIO_BLK_S_OK || len != r->expect_len) {
                printf("batch request type %u sector %lu: status %u, used length "
                       "%u (expected %u)\n", r->hdr.type, (unsigned long)r->hdr.sector,
                       *r->status_at, len, r->expect_len);
                CHECK(check, 0);
            }
            inflight--;
            req_put(r);
        }
    }
}

/* ------------------------------------------------------------------ */
/* the device's configuration and ID (blkdev.h opens and closes it)    */

static void print_config(struct blk *b)
{
    struct virtio_dev *d = &b->dev;
    printf("slot %d: capacity %lu sectors (%lu KiB)%s, QueueNumMax %u\n", b->slot,
           (unsigned long)b->capacity, (unsigned long)(b->capacity / 2),
           b->ro ? ", read-only" : "", b->q->num_max);
    virtio_print_features("  offered   ", VIRTIO_ID_BLOCK, d->offered);
    virtio_print_features("  negotiated", VIRTIO_ID_BLOCK, d->features);
    printf("  QueueNumMax of queues 0..3: %u %u %u %u; ConfigGeneration %u\n",
           virtio_queue_num_max(d, 0), virtio_queue_num_max(d, 1),
           virtio_queue_num_max(d, 2), virtio_queue_num_max(d, 3),
           vio_read(d, VIRTIO_MMIO_CONFIG_GENERATION));
    if (virtio_offers(d, VIRTIO_BLK_F_SIZE_MAX))
        printf("  size_max %u\n", virtio_config32(d, VIRTIO_BLK_CFG_SIZE_MAX));
    if (virtio_offers(d, VIRTIO_BLK_F_SEG_MAX))
        printf("  seg_max %u\n", virtio_config32(d, VIRTIO_BLK_CFG_SEG_MAX));
    if (virtio_offers(d, VIRTIO_BLK_F_GEOMETRY))
        printf("  geometry: cylinders %u heads %u sectors %u\n",
               virtio_config16(d, VIRTIO_BLK_CFG_CYLINDERS),
               virtio_config8(d, VIRTIO_BLK_CFG_HEADS),
               virtio_config8(d, VIRTIO_BLK_CFG_SECTORS));
    if (virtio_offers(d, VIRTIO_BLK_F_BLK_SIZE))
        printf("  blk_size %u\n", virtio_config32(d, VIRTIO_BLK_CFG_BLK_SIZE));
    if (virtio_offers(d, VIRTIO_BLK_F_TOPOLOGY))
        printf("  topology: physical_block_exp %u alignment_offset %u "
               "min_io_size %u opt_io_size %u\n",
               virtio_config8(d, VIRTIO_BLK_CFG_PHYS_BLOCK_EXP),
               virtio_config8(d, VIRTIO_BLK_CFG_ALIGNMENT_OFFSET),
               virtio_config16(d, VIRTIO_BLK_CFG_MIN_IO_SIZE),
               virtio_config32(d, VIRTIO_BLK_CFG_OPT_IO_SIZE));
    if (virtio_offers(d, VIRTIO_BLK_F_CONFIG_WCE))
        printf("  writeback %u\n", virtio_config8(d, VIRTIO_BLK_CFG_WRITEBACK));
    if (virtio_offers(d, VIRTIO_BLK_F_MQ))
        printf("  num_queues %u\n", virtio_config16(d, VIRTIO_BLK_CFG_NUM_QUEUES));
    if (virtio_offers(d, VIRTIO_BLK_F_DISCARD))
        printf("  discard: max_sectors %u max_seg %u sector_alignment %u\n",
               virtio_config32(d, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS),
               virtio_config32(d, VIRTIO_BLK_CFG_MAX_DISCARD_SEG),
               virtio_config32(d, VIRTIO_BLK_CFG_DISCARD_ALIGN));
    if (virtio_offers(d, VIRTIO_BLK_F_WRITE_ZEROES))
        printf("  write_zeroes: max_sectors %u max_seg %u may_unmap %u\n",
               virtio_config32(d, VIRTIO_BLK_CFG_MAX_WZ_SECTORS),
               virtio_config32(d, VIRTIO_BLK_CFG_MAX_WZ_SEG),
               virtio_config8(d, VIRTIO_BLK_CFG_WZ_MAY_UNMAP));
}

static void get_id(struct blk *b, long check)
{
    static char id[VIRTIO_BLK_ID_BYTES + 1];
    memset(id, 0x55, sizeof id);
    uint32_t used;
    uint8_t st = blk_simple(b, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES, 0,
                            &used, check);
    CHECK_EQ(check, st, VIRTIO_BLK_S_OK);
    id[VIRTIO_BLK_ID_BYTES] = 0;
    int n = 0;
    while (n < VIRTIO_BLK_ID_BYTES && id[n])
        n++;
    for (int i = 0; i < n; i++)
        CHECK(check, id[i] >= 0x20 && id[i] < 0x7f);
    printf("slot %d: GET_ID \"%s\" (%d characters, used length %u)\n", b->slot, id, n,
           used);
}

/* ------------------------------------------------------------------ */
/* the whole disk                                                      */

static void whole_disk(struct blk *b, const char *what, int pattern_only, long check)
{
    uint64_t cap = b->capacity;
    uint64_t t0 = rdtime();
    memset(big, 0xaa, cap * SECTOR);
    blk_range(b, VIRTIO_BLK_T_IN, 0, cap, big, 128, 0, MAX_REQS, check);
    uint64_t t1 = rdtime();
    uint32_t crc = crc32_update(0, big, cap * SECTOR);
    printf("%s: read %lu sectors in %lu ticks, crc32 0x%08x\n", what,
           (unsigned long)cap, (unsigned long)(t1 - t0), crc);
    if (pattern_only) {
        static uint8_t exp[SECTOR];
        for (uint64_t s = 0; s < cap; s++) {
            disk_pattern_fill(exp, s, 0);
            if (memcmp(exp, big + s * SECTOR, SECTOR)) {
                verify_sectors(big + s * SECTOR, s, 1, what);
                CHECK(check, 0);
            }
        }
    } else {
        CHECK(check, !verify_sectors(big, 0, cap, what));
    }
}

/* ------------------------------------------------------------------ */
/* one round                                                           */

/* fill buf with pattern k for sectors s.. and record them as written */
static void write_pattern(uint64_t s, uint64_t n, unsigned k, uint8_t *buf)
{
    for (uint64_t i = 0; i < n; i++) {
        disk_pattern_fill(buf + i * SECTOR, s + i, k);
        state[s + i] = (uint8_t)k;
    }
}

/* 2.7.5.3.1: no chain (direct or in an indirect table) longer than the
   queue; such a test is skipped with a message */
static int chain_fits(struct blk *b, int nsegs, int layout)
{
    int n = (nsegs ? nsegs : 1) + 2 + ((layout & L_SPLIT_HDR) ? 1 : 0);
    if (n <= b->q->num)
        return 1;
    printf("  (a %d-descriptor chain is longer than the queue: skipped)\n", n);
    return 0;
}

/* read n sectors at s into rbuf with `segs` splitting (NULL: one segment) and
   compare */
static void read_check(struct blk *b, uint64_t s, uint64_t n, const uint32_t *split,
                       int nsplit, int layout, long check)
{
    struct vbuf segs[VQ_INDIRECT_MAX];
    int nsegs = 0;
    if (!chain_fits(b, nsplit, layout))
        return;
    memset(rbuf, 0xaa, n * SECTOR + 1);
    if (split) {
        uint32_t off = 0;
        for (int i = 0; i < nsplit; i++) {
            segs[nsegs].addr = rbuf + off;
            segs[nsegs++].len = split[i];
            off += split[i];
        }
        CHECK_EQ(check, off, n * SECTOR);
    } else {
        segs[0].addr = rbuf;
        segs[0].len = (uint32_t)(n * SECTOR);
        nsegs = 1;
    }
    uint32_t used;
    uint8_t st = blk_do(b, VIRTIO_BLK_T_IN, s, segs, nsegs, layout, &used, check);
    CHECK_EQ(check, st, VIRTIO_BLK_S_OK);
    CHECK(check, !verify_sectors(rbuf, s, n, "read back"));
}

static void write_check(struct blk *b, uint64_t s, uint64_t n, unsigned k,
                        const uint32_t *split, int nsplit, int layout, long check)
{
    struct vbuf segs[VQ_INDIRECT_MAX];
    int nsegs = 0;
    if (!chain_fits(b, nsplit, layout))
        return;
    write_pattern(s, n, k, wbuf);
    if (split) {
        uint32_t off = 0;
        for (int i = 0; i < nsplit; i++) {
            segs[nsegs].addr = wbuf + off;
            segs[nsegs++].len = split[i];
            off += split[i];
        }
        CHECK_EQ(check, off, n * SECTOR);
    } else {
        segs[0].addr = wbuf;
        segs[0].len = (uint32_t)(n * SECTOR);
        nsegs = 1;
    }
    uint32_t used;
    uint8_t st = blk_do(b, VIRTIO_BLK_T_OUT, s, segs, nsegs, layout, &used, check);
    CHECK_EQ(check, st, VIRTIO_BLK_S_OK);
    CHECK_EQ(check, used, 1);
}

/* read 8 sectors and sleep (wfi) until the device's interrupt arrives */
static void irq_read(struct blk *b, uint64_t sector, uint8_t *buf, long check)
{
    struct req *rq = req_get();
    struct vbuf seg = { buf, 8 * SECTOR };
    virtio_plic_service();              /* nothing stale pending */
    unsigned long i0 = b->dev.irqs, v0 = b->dev.isr_vring;
    CHECK(check, blk_submit(b, rq, VIRTIO_BLK_T_IN, sector, &seg, 1, 0) >= 0);
    virtq_kick(b->q);
    virtio_wait_irq(&b->dev, i0, check);
    CHECK(check, b->dev.isr_vring > v0);
    uint32_t len;
    void *tok;
    CHECK(check, virtq_get(b->q, &len, &tok, 0) && tok == rq);
    CHECK_EQ(check, *rq->status_at, VIRTIO_BLK_S_OK);
    CHECK_EQ(check, len, 8 * SECTOR + 1);
    req_put(rq);
}

/* used length QEMU gives on error: reported, not checked */
static void expect_status(struct blk *b, uint32_t type, uint64_t sector, uint32_t len,
                          uint8_t want, const char *what, long check)
{
    uint32_t used;
    memset(rbuf, 0xaa, len + 1);
    if (type == VIRTIO_BLK_T_OUT)
        memset(rbuf, 0x5a, len);
    uint8_t st = blk_simple(b, type, sector, rbuf, len, 0, &used, check);
    if (st != want)
        printf("%s: status %u, expected %u\n", what, st, want);
    CHECK_EQ(check, st, want);
    if (round_no == 1)
        printf("  %s: status %u, used length %u\n", what, st, used);
}

static void round_run(int r, uint64_t generic, enum virtio_wait wait, unsigned qsize)
{
    struct blk *b = &disk;
    long c = 20 + 40L * (r - 1);        /* check numbers c .. c+39 */
    round_no = r;
    blk_open(b, disk.slot, features_common | generic, wait, qsize, c);
    int ind = b->dev.indirect;
    printf("round %d: wait %s, queue size %u, event_idx %d, indirect %d\n", r,
           virtio_wait_names[wait], b->q->num, b->dev.event_idx, ind);
    uint64_t base = 256 + 1024 * (uint64_t)(r - 1);
    unsigned k = (unsigned)(r * 16);    /* pattern ids of this round: k .. k+15 */
    uint64_t cap = b->capacity;

    /* 1. single-sector writes and reads in several layouts */
    static const int layouts[] = { 0, L_SPLIT_HDR, L_INDIRECT, L_SPLIT_HDR | L_INDIRECT };
    for (int i = 0; i < 16; i++) {
        int l = layouts[i % 4];
        if (!ind)
            l &= ~L_INDIRECT;
        write_check(b, base + i, 1, k + (unsigned)(i % 3), 0, 0, l, c + 1);
    }
    for (int i = 0; i < 16; i++) {
        int l = layouts[(i + 1) % 4] | (i & 4 ? L_STATUS_MERGED : 0);
        if (!ind)
            l &= ~L_INDIRECT;
        read_check(b, base + i, 1, 0, 0, l, c + 2);
    }

    /* 2. 64 sectors in one descriptor */
    write_check(b, base + 16, 64, k + 3, 0, 0, 0, c + 3);
    read_check(b, base + 16, 64, 0, 0, L_STATUS_MERGED, c + 4);

    /* 3. scattered chains with odd segment sizes (sum 24 sectors) */
    static const uint32_t wsplit[] = { 1000, 24, 5000, 6000, 264 };
    static const uint32_t rsplit[] = { 512, 511, 1, 3000, 4096, 2000, 2168 };
    write_check(b, base + 80, 24, k + 4, wsplit, 5, 0, c + 5);
    read_check(b, base + 80, 24, rsplit, 7, L_SPLIT_HDR, c + 6);
    if (ind) {
        write_check(b, base + 104, 24, k + 5, rsplit, 7, L_INDIRECT, c + 7);
        read_check(b, base + 104, 24, wsplit, 5, L_INDIRECT | L_STATUS_MERGED, c + 8);
    }
    if (b->q->num >= 16) {      /* 16-descriptor direct chains */
        static uint32_t split13[13];
        for (int i = 0; i < 13; i++)
            split13[i] = i < 12 ? 512 + (i % 2 ? -8 : 8) : 512;
        write_check(b, base + 128, 13, k + 6, split13, 13, L_SPLIT_HDR, c + 9);
        read_check(b, base + 128, 13, split13, 13, L_SPLIT_HDR, c + 10);
    }

    /* 4. batches: 50 requests of 4 sectors, read back as 25 of 8 */
    write_pattern(base + 160, 200, k + 7, wbuf);
    blk_range(b, VIRTIO_BLK_T_OUT, base + 160, 200, wbuf, 4, ind ? L_INDIRECT : 0,
              MAX_REQS, c + 11);
    memset(rbuf, 0xaa, 200 * SECTOR);
    blk_range(b, VIRTIO_BLK_T_IN, base + 160, 200, rbuf, 8, 0, MAX_REQS, c + 12);
    CHECK(c + 12, !verify_sectors(rbuf, base + 160, 200, "batch read"));

    /* 5. the last sectors */
    write_check(b, cap - 8, 8, k + 8, 0, 0, 0, c + 13);
    write_check(b, cap - 1, 1, k + 9, 0, 0, L_SPLIT_HDR, c + 14);
    read_check(b, cap - 8, 8, 0, 0, 0, c + 15);

    /* 6. FLUSH */
    if (virtio_has(&b->dev, VIRTIO_BLK_F_FLUSH)) {
        uint32_t used;
        uint8_t st = blk_simple(b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, &used, c + 16);
        CHECK_EQ(c + 16, st, VIRTIO_BLK_S_OK);
        CHECK_EQ(c + 16, used, 1);
    }

    /* 7. out of range: IOERR, and the last sector stays as it was */
    expect_status(b, VIRTIO_BLK_T_IN, cap, SECTOR, VIRTIO_BLK_S_IOERR,
                  "read at capacity", c + 17);
    expect_status(b, VIRTIO_BLK_T_IN, cap - 1, 2 * SECTOR, VIRTIO_BLK_S_IOERR,
                  "read across the end", c + 18);
    expect_status(b, VIRTIO_BLK_T_OUT, cap, SECTOR, VIRTIO_BLK_S_IOERR,
                  "write at capacity", c + 19);
    expect_status(b, VIRTIO_BLK_T_OUT, cap - 1, 2 * SECTOR, VIRTIO_BLK_S_IOERR,
                  "write across the end", c + 20);
    expect_status(b, VIRTIO_BLK_T_IN, 1ULL << 40, SECTOR, VIRTIO_BLK_S_IOERR,
                  "read at sector 2^40", c + 21);
    expect_status(b, VIRTIO_BLK_T_IN, ~0ULL, SECTOR, VIRTIO_BLK_S_IOERR,
                  "read at sector 2^64-1", c + 22);
    read_check(b, cap - 2, 2, 0, 0, 0, c + 23);

    /* 8. an unknown request type */
    expect_status(b, 0x7f, 0, 0, VIRTIO_BLK_S_UNSUPP, "request type 0x7f", c + 24);

    /* 9. GET_ID */
    get_id(b, c + 25);

    /* 10. WRITE_ZEROES and DISCARD */
    static struct virtio_blk_discard_write_zeroes seg __attribute__((aligned(16)));
    uint32_t used;
    if (virtio_has(&b->dev, VIRTIO_BLK_F_WRITE_ZEROES)) {
        uint64_t s = base + 400;
        write_check(b, s, 64, k + 10, 0, 0, 0, c + 26);
        seg.sector = s + 8;
        seg.num_sectors = 16;
        seg.flags = 0;
        uint8_t st = blk_simple(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, &seg, sizeof seg,
                                ind ? L_INDIRECT : 0, &used, c + 27);
        CHECK_EQ(c + 27, st, VIRTIO_BLK_S_OK);
        CHECK_EQ(c + 27, used, 1);
        for (int i = 8; i < 24; i++)
            state[s + i] = ST_ZERO;
        seg.sector = s + 32;
        seg.num_sectors = 8;
        seg.flags = VIRTIO_BLK_WZ_F_UNMAP;
        st = blk_simple(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, &seg, sizeof seg, 0, &used,
                        c + 28);
        CHECK_EQ(c + 28, st, VIRTIO_BLK_S_OK);
        for (int i = 32; i < 40; i++)
            state[s + i] = ST_ZERO;
        read_check(b, s, 64, 0, 0, 0, c + 29);
        /* out of range */
        seg.sector = cap - 4;
        seg.num_sectors = 8;
        seg.flags = 0;
        st = blk_simple(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, &seg, sizeof seg, 0, &used,
                        c + 30);
        CHECK_EQ(c + 30, st, VIRTIO_BLK_S_IOERR);
        read_check(b, cap - 8, 8, 0, 0, 0, c + 30);
        if (r == 1)
            printf("  WRITE_ZEROES: zeroes read back (with and without UNMAP)\n");
    }
    if (virtio_has(&b->dev, VIRTIO_BLK_F_DISCARD)) {
        uint64_t s = base + 512;    /* 4 KiB aligned */
        write_check(b, s, 64, k + 11, 0, 0, 0, c + 31);
        seg.sector = s + 16;
        seg.num_sectors = 32;
        seg.flags = 0;
        uint8_t st = blk_simple(b, VIRTIO_BLK_T_DISCARD, 0, &seg, sizeof seg, 0, &used,
                                c + 32);
        CHECK_EQ(c + 32, st, VIRTIO_BLK_S_OK);
        CHECK_EQ(c + 32, used, 1);
        for (int i = 16; i < 48; i++) {
            state[s + i] = ST_UNKNOWN;
            unknown_prev[s + i] = (uint8_t)(k + 11);
        }
        memset(rbuf, 0xaa, 64 * SECTOR);
        st = blk_simple(b, VIRTIO_BLK_T_IN, s, rbuf, 64 * SECTOR, 0, &used, c + 33);
        CHECK_EQ(c + 33, st, VIRTIO_BLK_S_OK);
        CHECK(c + 33, !verify_sectors(rbuf, s, 64, "after DISCARD"));
        int zero = 1;
        for (unsigned j = 16 * SECTOR; j < 48 * SECTOR; j++)
            zero &= rbuf[j] == 0;
        if (r == 1)
            printf("  DISCARD: status OK; the discarded sectors read back as %s\n",
                   zero ? "zeroes" : "their old data");
        /* the UNMAP flag is for WRITE_ZEROES only */
        seg.flags = VIRTIO_BLK_WZ_F_UNMAP;
        st = blk_simple(b, VIRTIO_BLK_T_DISCARD, 0, &seg, sizeof seg, 0, &used, c + 34);
        if (r == 1)
            printf("  DISCARD with the UNMAP flag: status %u\n", st);
        CHECK(c + 34, st == VIRTIO_BLK_S_UNSUPP || st == VIRTIO_BLK_S_IOERR);
        seg.sector = cap - 4;
        seg.num_sectors = 8;
        seg.flags = 0;
        st = blk_simple(b, VIRTIO_BLK_T_DISCARD, 0, &seg, sizeof seg, 0, &used, c + 35);
        CHECK_EQ(c + 35, st, VIRTIO_BLK_S_IOERR);
    }

    /* 11. interrupt modes: sleep until the used-buffer interrupt itself */
    if (wait != VIRTIO_WAIT_POLL) {
        irq_read(b, base, rbuf, c + 38);
        CHECK(c + 38, !verify_sectors(rbuf, base, 8, "interrupt read"));
    }

    /* 12. wfi round: the interrupt protocol step by step, without the
       PLIC service: InterruptStatus, InterruptACK, PLIC pending and claim */
    if (wait == VIRTIO_WAIT_WFI) {
        int irq = VIRTIO_SLOT_IRQ(b->slot);
        uintptr_t ctx = PLIC_S_CONTEXT(rvh_hartid());
        virtio_plic_service();
        CHECK_EQ(c + 39, vio_read(&b->dev, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
        struct req *rq = req_get();
        struct vbuf seg = { rbuf, SECTOR };
        CHECK(c + 39, blk_submit(b, rq, VIRTIO_BLK_T_IN, base, &seg, 1, 0) >= 0);
        virtq_kick(b->q);
        uint64_t t0 = rdtime();
        while (!virtq_has_used(b->q))
            CHECK(c + 39, rdtime() - t0 < VIRTIO_WAIT_TIMEOUT);
        /* the used ring moved with notifications on: InterruptStatus bit 0 */
        uint32_t isr = 0;
        t0 = rdtime();
        while (!(isr = vio_read(&b->dev, VIRTIO_MMIO_INTERRUPT_STATUS)))
            CHECK(c + 39, rdtime() - t0 < VIRTIO_WAIT_TIMEOUT);
        CHECK_EQ(c + 39, isr, VIRTIO_INT_VRING);
        uint32_t pend1 = (mmio_read32(PLIC_PENDING(irq)) >> (irq % 32)) & 1;
        uint32_t seip1 = (csr_read(sip) & SIP_SEIP_MASK) != 0;
        vio_write(&b->dev, VIRTIO_MMIO_INTERRUPT_ACK, isr);
        CHECK_EQ(c + 39, vio_read(&b->dev, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
        uint32_t pend2 = (mmio_read32(PLIC_PENDING(irq)) >> (irq % 32)) & 1;
        uint32_t claim = mmio_read32(PLIC_CONTEXT_CLAIM(ctx));
        if (claim)
            mmio_write32(PLIC_CONTEXT_CLAIM(ctx), claim);
        uint32_t claim2 = mmio_read32(PLIC_CONTEXT_CLAIM(ctx));
        if (claim2)
            mmio_write32(PLIC_CONTEXT_CLAIM(ctx), claim2);
        printf("  interrupt protocol: InterruptStatus 0x%x; PLIC pending %u, sip.SEIP %u "
               "before InterruptACK; PLIC pending %u after it; claim %u, then %u\n",
               isr, pend1, seip1, pend2, claim, claim2);
        CHECK_EQ(c + 39, pend1, 1);
        CHECK_EQ(c + 39, claim2, 0);
        uint32_t len;
        void *tok;
        CHECK(c + 39, virtq_get(b->q, &len, &tok, 0) && tok == rq);
        req_put(rq);
    }

    /* interrupts: counted in the wfi / irq modes */
    printf("round %d: %lu requests, %lu notifies, %lu skipped, %lu interrupts "
           "(InterruptStatus 0x%x now)\n", r, b->q->completed, b->q->notifies,
           b->q->notifies_skipped, b->dev.irqs,
           vio_read(&b->dev, VIRTIO_MMIO_INTERRUPT_STATUS));
    if (wait != VIRTIO_WAIT_POLL) {
        CHECK(c + 36, b->dev.irqs > 0);
        CHECK(c + 36, b->dev.isr_vring > 0);
    }
    blk_close(b, c + 37);
}

/* ------------------------------------------------------------------ */
/* feature negotiation corner cases (reported, not checked)            */

static const char *status_str(uint32_t st)
{
    return (st & VIRTIO_STATUS_FEATURES_OK) ? "FEATURES_OK kept" : "FEATURES_OK refused";
}

static void negotiation_probe(int slot, uint64_t accept_mask, uint64_t extra,
                              const char *what)
{
    struct virtio_dev d;
    memset(&d, 0, sizeof d);
    d.slot = slot;
    d.base = VIRTIO_SLOT_BASE(slot);
    virtio_reset(&d);
    vio_write(&d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
    vio_write(&d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
    vio_write(&d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t f = vio_read(&d, VIRTIO_MMIO_DEVICE_FEATURES);
    vio_write(&d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    f |= (uint64_t)vio_read(&d, VIRTIO_MMIO_DEVICE_FEATURES) << 32;
    uint64_t acc = (f & accept_mask) | extra;
    vio_write(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    vio_write(&d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)acc);
    vio_write(&d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    vio_write(&d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(acc >> 32));
    vio_write(&d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                                      VIRTIO_STATUS_FEATURES_OK);
    uint32_t st = vio_read(&d, VIRTIO_MMIO_STATUS);
    printf("  negotiation: %s: Status 0x%x (%s)\n", what, st, status_str(st));
    virtio_reset(&d);
    CHECK_EQ(11, vio_read(&d, VIRTIO_MMIO_STATUS), 0);
}

/* ------------------------------------------------------------------ */
/* the read-only disk                                                  */

static void ro_tests(int slot)
{
    struct blk *b = &rodisk;
    blk_open(b, slot, features_common | VIRTIO_BIT(VIRTIO_F_EVENT_IDX), VIRTIO_WAIT_IRQ, 32,
             200);
    print_config(b);
    CHECK(201, b->ro);
    CHECK(202, b->capacity >= 16);
    uint64_t cap = b->capacity;
    uint64_t n = cap < 2048 ? cap : 2048;
    static uint8_t exp[SECTOR];
    /* its pattern (id 1) */
    memset(big, 0xaa, n * SECTOR);
    blk_range(b, VIRTIO_BLK_T_IN, 0, n, big, 64, 0, MAX_REQS, 203);
    for (uint64_t s = 0; s < n; s++) {
        disk_pattern_fill(exp, s, 1);
        if (memcmp(exp, big + s * SECTOR, SECTOR)) {
            printf("read-only disk: sector %lu differs from pattern 1\n",
                   (unsigned long)s);
            CHECK(204, 0);
        }
    }
    printf("read-only disk: %lu sectors match pattern 1, crc32 0x%08x\n",
           (unsigned long)n, crc32_update(0, big, n * SECTOR));
    get_id(b, 205);
    /* writes fail with IOERR and change nothing */
    uint32_t used;
    memset(wbuf, 0x5a, 8 * SECTOR);
    uint8_t st = blk_simple(b, VIRTIO_BLK_T_OUT, 5, wbuf, SECTOR, 0, &used, 206);
    printf("read-only disk: write status %u, used length %u\n", st, used);
    CHECK_EQ(206, st, VIRTIO_BLK_S_IOERR);
    st = blk_simple(b, VIRTIO_BLK_T_OUT, 8, wbuf, 8 * SECTOR, L_SPLIT_HDR, &used, 207);
    CHECK_EQ(207, st, VIRTIO_BLK_S_IOERR);
    if (virtio_has(&b->dev, VIRTIO_BLK_F_FLUSH)) {
        st = blk_simple(b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, &used, 208);
        printf("read-only disk: FLUSH status %u\n", st);
        CHECK_EQ(208, st, VIRTIO_BLK_S_OK);
    }
    static struct virtio_blk_discard_write_zeroes seg __attribute__((aligned(16)));
    if (virtio_has(&b->dev, VIRTIO_BLK_F_WRITE_ZEROES)) {
        seg.sector = 16;
        seg.num_sectors = 8;
        seg.flags = 0;
        st = blk_simple(b, VIRTIO_BLK_T_WRITE_ZEROES, 0, &seg, sizeof seg, 0, &used, 209);
        printf("read-only disk: WRITE_ZEROES status %u\n", st);
        CHECK_EQ(209, st, VIRTIO_BLK_S_IOERR);
    }
    if (virtio_has(&b->dev, VIRTIO_BLK_F_DISCARD)) {
        seg.sector = 24;
        seg.num_sectors = 8;
        seg.flags = 0;
        st = blk_simple(b, VIRTIO_BLK_T_DISCARD, 0, &seg, sizeof seg, 0, &used, 210);
        printf("read-only disk: DISCARD status %u (a hint: either is fine)\n", st);
    }
    memset(big, 0xaa, 64 * SECTOR);
    st = blk_simple(b, VIRTIO_BLK_T_IN, 0, big, 64 * SECTOR, 0, &used, 211);
    CHECK_EQ(211, st, VIRTIO_BLK_S_OK);
    for (uint64_t s = 0; s < 64; s++) {
        disk_pattern_fill(exp, s, 1);
        CHECK(212, !memcmp(exp, big + s * SECTOR, SECTOR));
    }
    irq_read(b, 8, big, 213);
    for (uint64_t s = 8; s < 16; s++) {
        disk_pattern_fill(exp, s, 1);
        CHECK(213, !memcmp(exp, big + (s - 8) * SECTOR, SECTOR));
    }
    printf("read-only disk: data unchanged; %lu interrupts\n", b->dev.irqs);
    CHECK(213, b->dev.irqs > 0);
    blk_close(b, 214);
}

/* ------------------------------------------------------------------ */

int main(void)
{
    struct virtio_slot slots[VIRTIO_MMIO_SLOTS];
    int ids[VIRTIO_MMIO_SLOTS];

    virtio_scan(slots, 1);
    int n = virtio_find(VIRTIO_ID_BLOCK, ids);
    printf("%d virtio-blk device(s)\n", n);
    CHECK(1, n >= 1);
    req_pool_init();
    features_common = VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
                      VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_RO) |
                      VIRTIO_BIT(VIRTIO_BLK_F_GEOMETRY) | VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY) |
                      VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
                      VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);

    /* find the read-write and the read-only disk */
    int rw_slot = -1, ro_slot = -1;
    for (int i = 0; i < n; i++) {
        struct virtio_dev probe;
        int err = virtio_dev_init(&probe, ids[i], VIRTIO_ID_BLOCK, features_common, 0);
        if (err == -2 || err == -4) {
            printf("FAIL virtio/blk: slot %d is not a virtio 1.x (mmio version 2) "
                   "device\n", ids[i]);
            exit(VIRTIO_EXIT_NOT_V2);
        }
        CHECK_EQ(3, err, 0);
        int is_ro = virtio_has(&probe, VIRTIO_BLK_F_RO);
        virtio_reset(&probe);
        if (is_ro && ro_slot < 0)
            ro_slot = ids[i];
        else if (!is_ro && rw_slot < 0)
            rw_slot = ids[i];
    }
    CHECK(4, rw_slot >= 0);
    printf("read-write disk in slot %d, read-only disk in slot %d\n", rw_slot, ro_slot);

    /* round 0: configuration, the whole disk against the image pattern */
    blk_open(&disk, rw_slot, features_common, VIRTIO_WAIT_POLL, VQ_MAX_SIZE, 5);
    print_config(&disk);
    CHECK(6, !disk.ro);
    CHECK(7, disk.capacity >= MIN_CAPACITY);
    if (virtio_offers(&disk.dev, VIRTIO_BLK_F_BLK_SIZE))
        CHECK(8, virtio_config32(&disk.dev, VIRTIO_BLK_CFG_BLK_SIZE) % SECTOR == 0);
    uint64_t cap = disk.capacity;
    state = virtio_alloc(cap, 16);
    memset(state, 0, cap);
    unknown_prev = virtio_alloc(cap, 16);
    big = virtio_alloc(cap * SECTOR + SECTOR, 4096);
    wbuf = virtio_alloc(256 * 1024, 4096);
    rbuf = virtio_alloc(256 * 1024 + 16, 4096);
    whole_disk(&disk, "disk (pattern 0)", 1, 9);
    printf("disk matches the mkimage.py pattern 0\n");
    blk_close(&disk, 10);

    negotiation_probe(rw_slot, ~VIRTIO_BIT(VIRTIO_F_VERSION_1), 0,
                      "every offered feature but VERSION_1");
    negotiation_probe(rw_slot, ~0ULL, VIRTIO_BIT(VIRTIO_BLK_F_MQ) |
                      VIRTIO_BIT(VIRTIO_F_RING_PACKED),
                      "the offered features + MQ + RING_PACKED (not offered)");
    negotiation_probe(rw_slot, VIRTIO_BIT(VIRTIO_F_VERSION_1), 0, "VERSION_1 only");

    /* the rounds */
    uint64_t ei = VIRTIO_BIT(VIRTIO_F_EVENT_IDX), id = VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
    round_run(1, 0, VIRTIO_WAIT_POLL, VQ_MAX_SIZE);
    round_run(2, ei | id, VIRTIO_WAIT_WFI, 8);
    round_run(3, id, VIRTIO_WAIT_IRQ, 16);
    round_run(4, ei, VIRTIO_WAIT_IRQ, 64);

    if (ro_slot >= 0)
        ro_tests(ro_slot);
    else
        printf("no read-only disk: its tests are skipped\n");

    /* everything written is still there after the resets */
    blk_open(&disk, rw_slot, features_common | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC),
             VIRTIO_WAIT_WFI, VQ_MAX_SIZE, 240);
    whole_disk(&disk, "disk (final)", 0, 241);
    blk_close(&disk, 242);
    printf("spurious PLIC claims: %lu\n", virtio_spurious_claims);
    pass();
}

/*
 * virtio.h - a small virtio driver library for the S-mode guests
 * (guests/virtio/), written from the VIRTIO 1.2 specification:
 *
 *   - virtio over MMIO, version 2 only (spec 4.2.2): slot scan of the
 *     board's 8 virtio-mmio windows, device initialisation (3.1.1):
 *     reset, ACKNOWLEDGE, DRIVER, feature negotiation (VIRTIO_F_VERSION_1
 *     required), FEATURES_OK and its re-check, queue setup, DRIVER_OK,
 *   - split virtqueues (2.7): descriptor free list, direct and indirect
 *     (VIRTIO_F_INDIRECT_DESC) chains, available / used rings, notification
 *     suppression with or without VIRTIO_F_EVENT_IDX,
 *   - three ways of waiting for the used ring: busy polling, wfi with the
 *     PLIC polled from the waiting loop (sstatus.SIE = 0), and a real
 *     supervisor external interrupt taken through strap_hook,
 *   - the device-specific layouts of virtio-blk (5.2) and virtio-net (5.1).
 *
 * Board: virtio-mmio slot i at 0x1000_1000 + 0x1000 * i (i = 0..7), wired
 * to PLIC interrupt i + 1; PLIC at 0x0c00_0000, S-mode context of hart h
 * is 2h + 1.  Memory is identity mapped (satp = Bare): virtual addresses
 * are the physical (DMA) addresses.  Single hart.
 */
#ifndef VIRTIO_H
#define VIRTIO_H

#include <stdint.h>
#include "smode.h"
#include "rvh/virtio_spec.h"

/* ---- board (addresses and IRQs from rvh/encoding.h, i.e. rvh/config.py) ---- */
#define VIRTIO_MMIO_SLOTS       VIRTIO_SLOTS
#define VIRTIO_SLOT_BASE(i)     (VIRTIO_BASE + VIRTIO_SIZE * (unsigned long)(i))
#define VIRTIO_SLOT_IRQ(i)      (VIRTIO_IRQ_BASE + (i))

/* PLIC registers: a u32 priority per source, pending and enable bits 32 to a word, and per
 * context a threshold and a claim/complete register; context 2h is hart h's M-mode, 2h + 1
 * its S-mode (QEMU virt's wiring) */
#define PLIC_PRIORITY(irq)      (PLIC_BASE + PLIC_PRIORITY_BASE + 4UL * (irq))
#define PLIC_PENDING(irq)       (PLIC_BASE + PLIC_PENDING_BASE + 4UL * ((irq) / 32))
#define PLIC_ENABLE(ctx, irq) \
    (PLIC_BASE + PLIC_ENABLE_BASE + PLIC_ENABLE_STRIDE * (ctx) + 4UL * ((irq) / 32))
#define PLIC_CONTEXT(ctx)       (PLIC_BASE + PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * (ctx))
#define PLIC_CONTEXT_THRESHOLD(ctx) (PLIC_CONTEXT(ctx) + PLIC_THRESHOLD)
#define PLIC_CONTEXT_CLAIM(ctx) (PLIC_CONTEXT(ctx) + PLIC_CLAIM_COMPLETE)
#define PLIC_S_CONTEXT(hart)    (2UL * (hart) + 1)

/* ---- virtio-mmio registers (spec 4.2.2, version 2): VIRTIO_MMIO_<REGISTER> come from
 *      rvh/encoding.h, i.e. rvh/devices/virtio/mmio.py; the spec's other numbers, the ring
 *      layout and the blk and net layouts from rvh/virtio_spec.h ---- */

/* ---- library limits ---- */
#define VQ_MAX_SIZE         256     /* descriptors per queue (we cap QueueNum) */
#define VQ_INDIRECT_MAX     32      /* descriptors per indirect table */
#define VQ_POOL             8       /* queues in the static pool */
#define VIRTIO_MAX_QUEUES   4       /* queues per device */
#define VIRTIO_WAIT_TIMEOUT (5UL * 10000000UL)  /* 5 s of `time` */

/* exit status of a guest that finds a legacy (version 1) device */
#define VIRTIO_EXIT_NOT_V2  2

/* how a driver waits for the device */
enum virtio_wait {
    VIRTIO_WAIT_POLL = 0,   /* spin on the used ring; interrupts suppressed */
    VIRTIO_WAIT_WFI  = 1,   /* SIE = 0: wfi, then claim the PLIC in the loop */
    VIRTIO_WAIT_IRQ  = 2,   /* SIE = 1 around wfi: trap handler claims */
};
extern const char *const virtio_wait_names[3];

struct virtio_dev;

struct virtq {
    struct virtio_dev *dev;
    unsigned index;             /* queue number */
    uint16_t num;               /* QueueNum */
    uint16_t num_max;           /* QueueNumMax as read */
    struct virtq_desc *desc;
    struct virtq_avail *avail;
    struct virtq_used *used;
    volatile uint16_t *used_event;   /* &avail->ring[num] */
    volatile uint16_t *avail_event;  /* &used->ring[num] */
    struct virtq_desc *indirect;     /* VQ_MAX_SIZE tables of VQ_INDIRECT_MAX */
    uint16_t free_head;
    uint16_t num_free;
    uint16_t avail_idx;         /* next avail index (shadow of avail->idx) */
    uint16_t kicked_idx;        /* avail_idx at the last kick decision */
    uint16_t last_used;         /* next used index to consume */
    uint16_t chain_len[VQ_MAX_SIZE];    /* descriptors held by each head */
    void *token[VQ_MAX_SIZE];
    /* statistics */
    unsigned long added, completed, notifies, notifies_skipped;
};

struct virtio_dev {
    uintptr_t base;
    int slot;
    uint32_t device_id, vendor_id, version;
    uint64_t offered;           /* device features */
    uint64_t features;          /* negotiated */
    int event_idx;              /* VIRTIO_F_EVENT_IDX negotiated */
    int indirect;               /* VIRTIO_F_INDIRECT_DESC negotiated */
    enum virtio_wait wait;
    struct virtq *vq[VIRTIO_MAX_QUEUES];
    /* interrupt statistics */
    volatile unsigned long irqs;        /* PLIC claims of this device's irq */
    volatile unsigned long isr_vring, isr_config, isr_zero;
    volatile uint32_t isr_last;
};

/* ---- MMIO access ---- */
static inline uint32_t vio_read(struct virtio_dev *d, unsigned off)
{
    return mmio_read32(d->base + off);
}
static inline void vio_write(struct virtio_dev *d, unsigned off, uint32_t v)
{
    mmio_write32(d->base + off, v);
}
static inline void vio_mb(void)
{
    __asm__ __volatile__("fence iorw, iorw" ::: "memory");
}

/* ---- slots ---- */
struct virtio_slot {
    uint32_t magic, version, device_id, vendor_id;
};
/* read the identification registers of all 8 slots, print one line each
   for the non-empty ones; returns the number of devices found */
int virtio_scan(struct virtio_slot slots[VIRTIO_MMIO_SLOTS], int verbose);
/* slots holding device_id (magic "virt", any version), in slot order */
int virtio_find(uint32_t device_id, int out[VIRTIO_MMIO_SLOTS]);

/* ---- device initialisation (3.1.1) ---- */
/*
 * Reset and initialise the device in `slot` up to FEATURES_OK.  Accepts
 * offered & (wanted | required) where `required` always includes
 * VIRTIO_F_VERSION_1.  Returns 0, or a negative error after printing
 * "virtio: slot N: <why>" (and setting FAILED in Status):
 *   -1 bad magic / empty slot, -2 legacy (version != 2), -3 wrong device ID,
 *   -4 a required feature is not offered, -5 FEATURES_OK not kept.
 */
int virtio_dev_init(struct virtio_dev *d, int slot, uint32_t device_id,
                    uint64_t wanted, uint64_t required);
/* set up queue `index` with min(QueueNumMax, num) entries (num a power of
   2 <= VQ_MAX_SIZE); returns the queue or 0 (printing why) */
struct virtq *virtq_setup(struct virtio_dev *d, unsigned index, unsigned num);
/* QueueNumMax of queue `index` (0: no such queue) */
uint32_t virtio_queue_num_max(struct virtio_dev *d, unsigned index);
/* DRIVER_OK; wait mode; returns the Status read back */
uint32_t virtio_driver_ok(struct virtio_dev *d, enum virtio_wait wait);
/* write 0 to Status and wait until it reads 0; frees the queues */
void virtio_reset(struct virtio_dev *d);
/* change the wait mode of a live device (PLIC enable / suppression flags) */
void virtio_set_wait(struct virtio_dev *d, enum virtio_wait wait);
static inline int virtio_has(struct virtio_dev *d, unsigned bit)
{
    return (d->features >> bit) & 1;
}
static inline int virtio_offers(struct virtio_dev *d, unsigned bit)
{
    return (d->offered >> bit) & 1;
}
/* print a feature word with the names of the bits we know */
void virtio_print_features(const char *what, uint32_t device_id, uint64_t f);

/* config space, read consistently (ConfigGeneration re-checked) */
void virtio_config_read(struct virtio_dev *d, unsigned off, void *buf, unsigned len);
uint8_t virtio_config8(struct virtio_dev *d, unsigned off);
uint16_t virtio_config16(struct virtio_dev *d, unsigned off);
uint32_t virtio_config32(struct virtio_dev *d, unsigned off);
uint64_t virtio_config64(struct virtio_dev *d, unsigned off);

/* ---- virtqueue operations ---- */
struct vbuf {
    const void *addr;
    uint32_t len;
};
/*
 * Add a chain of n_out device-readable buffers followed by n_in
 * device-writable ones.  indirect = 1 puts the chain into an indirect
 * table (needs VIRTIO_F_INDIRECT_DESC, n_out + n_in <= VQ_INDIRECT_MAX).
 * The available ring index is published at once; call virtq_kick to
 * notify.  Returns the head descriptor, or -1 when the queue lacks free
 * descriptors.
 */
int virtq_add(struct virtq *q, const struct vbuf *bufs, unsigned n_out,
              unsigned n_in, void *token, int indirect);
/* notify the device when needed (EVENT_IDX avail_event / NO_NOTIFY);
   returns 1 when QueueNotify was written */
int virtq_kick(struct virtq *q);
/* 1 when the used ring holds an entry not yet consumed */
int virtq_has_used(struct virtq *q);
/*
 * Take the next used entry: returns 1 and fills *len (the used length),
 * *token (as given to virtq_add) and *head, freeing its descriptors;
 * 0 when none.  Re-arms the used-buffer notification (used_event or
 * avail->flags) for the wait mode.
 */
int virtq_get(struct virtq *q, uint32_t *len, void **token, int *head);
/* wait (per the device's wait mode) until virtq_has_used; fails the test
   (check `check`) after VIRTIO_WAIT_TIMEOUT */
void virtq_wait(struct virtq *q, long check);
/* wait until any of the queues has a used entry (same device or not) */
void virtq_wait_any(struct virtq **qs, int n, long check);
/* the same for at most `ticks` of `time`: 1 = a used entry, 0 = timeout */
int virtq_wait_any_for(struct virtq **qs, int n, uint64_t ticks);
/* add + kick + wait + get of one chain; returns the used length */
uint32_t virtq_sync(struct virtq *q, const struct vbuf *bufs, unsigned n_out,
                    unsigned n_in, int indirect, long check);

/* ---- interrupts ---- */
/* service the PLIC for all devices: claim, InterruptStatus, InterruptACK,
   complete; returns the number of claims (used by both interrupt modes) */
int virtio_plic_service(void);
extern volatile unsigned long virtio_spurious_claims;
extern volatile unsigned long virtio_irq_traps;     /* S external interrupts taken */
extern volatile unsigned long virtio_wait_wakeups;  /* wfi returns in the wait loops */
/*
 * Wait (wfi or irq mode) until d->irqs exceeds `since`: sleeps in wfi at
 * least once, so that the used-buffer interrupt itself is seen, even when
 * the used ring has already advanced.  Fails check `check` after
 * VIRTIO_WAIT_TIMEOUT.
 */
void virtio_wait_irq(struct virtio_dev *d, unsigned long since, long check);

/* ---- bump allocator for DMA buffers (identity mapped RAM after the image) ---- */
void *virtio_alloc(unsigned long size, unsigned long align);
void virtio_alloc_reset(void);

/* ---- small helpers ---- */
uint32_t crc32_update(uint32_t crc, const void *buf, unsigned long len);
/* print bytes * 10 / ticks as "N.NN MB/s" (10 MHz time base) */
void print_rate(uint64_t amount, uint64_t ticks, const char *unit);

#endif /* VIRTIO_H */

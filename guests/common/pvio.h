/*
 * pvio.h - a driver for rvh's platform I/O extension (SBI RVH_PVIO; docs/virtio.md,
 * "Paravirtual I/O"): split-driver block and network I/O through request rings shared with the
 * platform (rvh's built-in SBI, or rvh's hypervisor for a VM with io=pv).
 *
 * One 4 KiB ring page per queue: a header (req_prod, which the driver moves; rsp_prod and
 * req_cons, which the platform moves; error) and 64 request slots.  The driver fills slots,
 * publishes req_prod and makes one NOTIFY call per batch; the platform answers each request in
 * its slot (status, length), in order, moves rsp_prod and pulses the device's PLIC source.
 * Waiting is wfi with sstatus.SIE = 0 (the interrupt wakes the hart without a trap) and a PLIC
 * claim loop afterwards, the virtio library's "wfi" mode.  The numbers come from rvh/encoding.h.
 */
#ifndef PVIO_H
#define PVIO_H

#include <stdint.h>
#include "smode.h"

#define PVIO_SLOTS      SBI_RVH_PVIO_RING_SLOTS
#define PVIO_MAX_DEVS   SBI_RVH_PVIO_MAX_DEVICES
#define PVIO_TIMEOUT    (5UL * 10000000UL)          /* 5 s of `time` */

struct pvio_slot {
    uint64_t id;
    uint64_t sector;
    uint64_t addr;
    uint32_t len;
    uint8_t op;
    uint8_t status;
    uint16_t reserved;
};

struct pvio_ring {
    volatile uint32_t req_prod;
    volatile uint32_t rsp_prod;
    volatile uint32_t req_cons;
    volatile uint32_t error;
    uint8_t reserved[RVH_PVIO_RING_FIRST_SLOT - 16];
    volatile struct pvio_slot slot[PVIO_SLOTS];
} __attribute__((aligned(4096)));

struct pvio_queue {
    struct pvio_ring *ring;
    uint32_t req_prod;          /* requests filled (published at the next kick) */
    uint32_t rsp_cons;          /* responses taken */
};

struct pvio_dev {
    int index;
    uint32_t type, irq, queues, max_length;
    uint64_t capacity;
    uint8_t mac[6];
    int readonly;
    struct pvio_queue q[2];
    volatile unsigned long irqs;        /* PLIC claims of the device's source */
    unsigned long notifies;             /* NOTIFY calls made */
    unsigned long requests;             /* requests posted */
};

/* how many pv devices the platform has (0 without the extension) */
int pvio_count(void);
/* DEVICE_INFO into d, and route the device's interrupt; 0 or the SBI error */
long pvio_open(struct pvio_dev *d, int index);
/* zero the ring and SET_RING it as the queue's; 0 or the SBI error */
long pvio_attach(struct pvio_dev *d, int queue, struct pvio_ring *ring);
/* free slots of a queue (requests not yet answered count as used) */
unsigned pvio_room(struct pvio_dev *d, int queue);
/* fill the next slot (status PENDING); 0 when the ring is full */
volatile struct pvio_slot *pvio_post(struct pvio_dev *d, int queue, uint8_t op,
                                     uint64_t sector, const void *buf, uint32_t len,
                                     uint64_t id);
/* publish what was posted and NOTIFY (one call for the batch) */
void pvio_kick(struct pvio_dev *d, int queue);
/* the next response, or 0 when none has come; take it before posting over it */
volatile struct pvio_slot *pvio_response(struct pvio_dev *d, int queue);
/* wait for a response (wfi, PLIC claims); a timeout fails check `check` */
void pvio_wait(struct pvio_dev *d, int queue, long check);
/* wait until any of n (device, queue) pairs has a response */
void pvio_wait_any(struct pvio_dev **devs, const int *queues, int n, long check);
/* the same for at most `ticks` of `time`: 1 = a response, 0 = timeout */
int pvio_wait_any_for(struct pvio_dev **devs, const int *queues, int n, uint64_t ticks);
/* one request, posted, kicked, waited for and taken: its status (length in *len) */
uint8_t pvio_sync(struct pvio_dev *d, int queue, uint8_t op, uint64_t sector, void *buf,
                  uint32_t *len, long check);
/* claim and complete every pending PLIC source of the opened devices */
int pvio_plic_service(void);

#endif /* PVIO_H */

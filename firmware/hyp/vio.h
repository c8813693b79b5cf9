/*
 * vio.h - virtual I/O: the VM's virtio-mmio devices (virtio.c), its virtual PLIC (vplic.c), and
 * the machine's virtio-mmio devices and PLIC the hypervisor drives itself (hostvirtio.c,
 * plic.c).  The design: docs/virtio.md, "Under the hypervisor".
 *
 * The emulated path: a VM's register accesses to a virtio slot fault at the G-stage (hw mode)
 * and mmio.c hands them to vio_virtio_access.  On a QueueNotify the hypervisor walks the VM's
 * descriptor chains (every address checked against the VM's RAM), copies the device-readable
 * bytes into a bounce buffer of its own, and queues one request on the machine device that
 * backs the VM's device; when the machine device completes it (an interrupt through the machine
 * PLIC), the device-writable bytes are copied back into the VM's chain, the chain goes on the
 * VM's used ring, and the VM's virtual PLIC raises VSEIP through hvip.
 */
#ifndef HYP_VIO_H
#define HYP_VIO_H

#include "hyp.h"
#include "rvh/virtio_spec.h"

/* ---- virtio 1.2: register offsets from rvh/encoding.h, the rest from rvh/virtio_spec.h ---- */

/* What the hypervisor negotiates with a machine device: of the device-specific features only
 * those whose requests it forwards unchanged: blk SEG_MAX 2, RO 5, BLK_SIZE 6, FLUSH 9,
 * CONFIG_WCE 11, DISCARD 13, WRITE_ZEROES 14; net MTU 3, MAC 5, STATUS 16.  The VM's device
 * offers those plus INDIRECT_DESC and EVENT_IDX, which concern only the VM's rings (the
 * hypervisor walks them), never packed rings. */
#define VIO_BLK_FEATURES  (VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_RO) | \
                           VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) | VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | \
                           VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | \
                           VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES) | VIRTIO_BIT(VIRTIO_F_VERSION_1))
#define VIO_NET_FEATURES  (VIRTIO_BIT(VIRTIO_NET_F_MTU) | VIRTIO_BIT(VIRTIO_NET_F_MAC) | \
                           VIRTIO_BIT(VIRTIO_NET_F_STATUS) | VIRTIO_BIT(VIRTIO_F_VERSION_1))
#define VIO_RING_FEATURES (VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX))

/* ---- a machine virtio-mmio device, driven by the hypervisor (hostvirtio.c) ---- */
#define HOST_QUEUES         2       /* blk: 1 request queue; net: receiveq 0, transmitq 1 */
#define HOST_SLOTS          16      /* requests in flight per queue */
#define HOST_QUEUE_SIZE     (2 * HOST_SLOTS)    /* slot i uses descriptors 2i and 2i + 1 */
#define BLK_PART_DATA       (128 * 1024)        /* data bytes of one machine disk request */
#define BLK_BOUNCE          (BLK_PART_DATA + 4096) /* a 128 KiB request with header and status */
#define NET_BOUNCE          2048                /* 12-byte header + 1514-byte frame */
/* A VM's READ or WRITE larger than a bounce buffer is split into machine requests of
 * BLK_PART_DATA bytes each, all in flight at once: at most HOST_SLOTS of them.  The VM's disk
 * advertises limits within that (5.2.4 seg_max, size_max: seg_max x size_max <= BLK_MAX_DATA);
 * a driver keeping to them never has a request refused. */
#define BLK_MAX_DATA        (HOST_SLOTS * BLK_PART_DATA)
#define VIO_BLK_SEG_MAX     (VIO_QUEUE_NUM_MAX - 2)  /* a chain of the largest queue, less the
                                                        header and status descriptors */
#define VIO_BLK_SIZE_MAX    8192
#define NO_GROUP            0xff

struct host_slot {
    uint8_t *bounce;
    uint32_t readable, writable;    /* bytes of the request in bounce: readable first */
    uint16_t guest_head;            /* the VM's chain it stands for */
    uint8_t busy;
    uint8_t group, part;            /* a part of a split request: its group and number */
    uint32_t offset;                /* a part's: where its data lies in the VM's request */
    uint32_t generation;            /* the VM device's reset count when it was queued */
};

/* A VM disk request split into parts; answered when the last part completes, with the
 * status of the first part (in disk order) that failed. */
struct host_group {
    uint16_t guest_head;
    uint8_t busy, parts_left;
    uint8_t status, status_part;
    uint32_t data_len;              /* bytes the parts read into the VM's chain */
    uint32_t generation;
};

struct host_queue {
    unsigned size;                  /* descriptors (HOST_QUEUE_SIZE) */
    struct virtq_desc *desc;
    volatile uint16_t *avail;       /* flags, idx, ring[size] */
    volatile uint16_t *used;        /* flags, idx, then {u32 id, u32 len}[size] */
    uint16_t avail_idx, last_used;
    unsigned free_slots;
    struct host_slot slots[HOST_SLOTS];
    /* receiveq: filled buffers the VM had no chain for yet, oldest first */
    uint16_t held[HOST_SLOTS], held_len[HOST_SLOTS];
    unsigned held_head, held_count;
    struct host_group groups[HOST_SLOTS];   /* disk requests split into parts */
};

struct host_dev {
    unsigned long base;             /* its registers */
    unsigned slot, irq;             /* machine slot, machine PLIC source */
    uint32_t device_id, vendor_id;
    uint64_t features;              /* negotiated with the machine device */
    unsigned nqueues;
    unsigned bounce_size;
    struct host_queue queues[HOST_QUEUES];
    struct vio_dev *owner;
};

int host_virtio_open(struct host_dev *h, unsigned slot);
int host_slot_take(struct host_queue *q);
void host_submit(struct host_dev *h, unsigned queue, unsigned slot);
void host_notify(struct host_dev *h, unsigned queue);
void host_repost_rx(struct host_dev *h, unsigned slot);
uint32_t host_config_read(struct host_dev *h, unsigned offset, int width);
void host_config_write8(struct host_dev *h, unsigned offset, uint8_t value);
uint32_t host_config_generation(struct host_dev *h);
unsigned host_in_flight(const struct host_dev *h);
/* walks the used ring of every queue, calling vio_host_complete for each entry */
void host_virtio_service(struct host_dev *h);

/* ---- the VM's virtio-mmio device (virtio.c) ---- */
#define VIO_QUEUES          2
#define VIO_QUEUE_NUM_MAX   256

struct vio_queue {
    uint32_t num, ready;
    uint64_t desc, driver, device;      /* guest-physical */
    struct virtq_desc *hdesc;           /* host addresses, once ready */
    volatile uint16_t *havail, *hused;
    uint16_t last_avail, used_idx;
};

struct vio_dev {
    struct vm *vm;
    unsigned vm_slot;                   /* its slot on the VM's board */
    struct host_dev host;
    uint64_t offered, driver_features;
    uint32_t device_features_sel, driver_features_sel, queue_sel;
    uint32_t status, isr;
    uint32_t generation;                /* resets so far: stale completions are dropped */
    int broken;                         /* DEVICE_NEEDS_RESET: the VM's rings are not touched */
    uint32_t gathered;                  /* readable bytes the last GATHER walk copied */
    struct vio_queue queues[VIO_QUEUES];
};

int vio_virtio_access(struct vm *vm, unsigned long offset, int is_store, int width,
                      unsigned long *value);
void vio_host_complete(struct host_dev *h, unsigned queue, unsigned slot, uint32_t len);
void vio_host_failed(struct host_dev *h);   /* the machine device lost its requests */
int vio_parse_slots(struct vm *vm, const uint8_t *cells, uint32_t len);
void vio_parse_io(struct vm *vm, const char *io);

/* ---- the VM's PLIC (vplic.c) ---- */
int vio_plic_access(struct vm *vm, unsigned long offset, int is_store, int width,
                    unsigned long *value);
int vplic_claim_complete(struct vm *vm, unsigned long offset, int is_store, unsigned long *value);
void vplic_set_level(struct vm *vm, unsigned irq, int level);
struct vcpu *sched_loaded_vcpu(void);    /* sched.c */

/* ---- the machine PLIC (plic.c) ---- */
void plic_init(unsigned long hartid);
void plic_enable(unsigned irq);
void plic_disable(unsigned irq);
unsigned plic_claim(void);
void plic_complete(unsigned irq);

/* ---- the machine IOMMU (iommu.c, the RISC-V IOMMU specification 1.0) ---- */
int iommu_init(void);
void iommu_set_context(unsigned device_id, unsigned long iohgatp);
void iommu_fault_interrupt(void);
#define IOMMU_FAULT_VECTOR  1           /* icvec.fiv: PLIC source IOMMU_IRQ_BASE + 1 */

/* ---- passthrough (passthrough.c): a machine device assigned to a VM ---- */
struct pt_dev {
    struct vm *vm;
    unsigned vm_slot, machine_slot;
    int in_service;                     /* its machine PLIC source claimed, until the VM completes */
};
int pt_assign(struct vm *vm, unsigned vm_slot, unsigned machine_slot);
int pt_owns_irq(unsigned irq);          /* a machine interrupt of an assigned device: forwarded */
void pt_interrupt(unsigned irq);
void pt_completed(struct vm *vm, unsigned irq);  /* the VM completed its PLIC source irq */
struct vm *pt_vm_of_device(unsigned device_id);
int pt_busy(void);                      /* a running VM has an assigned device */

/* ---- the pv backend (pvio.c): io=pv, rvh's platform I/O extension for a VM ---- */
int pvio_parse_devices(struct vm *vm, const uint8_t *cells, uint32_t len);
int pvio_init(void);                    /* the machine pv devices of the VMs (+ SEIE) */
int pvio_vm_has_devices(const struct vm *vm);
struct sbiret;
void pvio_sbi_call(struct vcpu *vcpu, unsigned long fid, struct sbiret *ret);
int pvio_owns_irq(unsigned irq);        /* a machine pv device's completion source */
void pvio_interrupt(unsigned irq);      /* its new responses to the VM's ring, and VSEIP */
int pvio_busy(void);                    /* machine requests in flight: an interrupt will come */
/* an edge on a source of the VM's PLIC: pending until claimed, whatever the line does */
void vplic_pulse(struct vm *vm, unsigned irq);

/* ---- the hooks the rest of the hypervisor calls (virtio.c) ---- */
int vio_init(unsigned long hartid);     /* after the VMs are created: open the machine devices */
void vio_host_interrupt(void);          /* a supervisor external interrupt: machine devices */
int vio_busy(void);                     /* machine requests in flight: an interrupt will come */

#endif

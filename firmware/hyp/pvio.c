/*
 * pvio.c - the pv I/O backend: a VM with io=pv gets rvh's platform I/O extension (SBI
 * RVH_PVIO, docs/virtio.md "Paravirtual I/O") from the hypervisor's SBI, with the ABI the
 * machine's built-in SBI gives a native guest, and its requests go to the machine's own pv
 * devices (rvh attaches one per VM disk or NIC, if=pv, and names them in the VM's
 * rvh,pv-devices).
 *
 * Xen's split driver: the VM's driver shares ring pages with the backend and notifies it with
 * one call per batch.  Each VM queue has a ring of the hypervisor's own attached to the
 * machine device.  On the VM's NOTIFY the backend checks the VM's indices (a ring more than a
 * ring ahead is broken: ERROR = INDEX), copies each new request slot into its ring with the
 * buffer's guest-physical address translated to host-physical (the VM's RAM is one host
 * range), or 0 when the buffer is not wholly the VM's RAM, which the machine refuses with
 * BAD_ADDRESS as it would the VM's address natively (it checks lengths first, so the statuses
 * are the native ones) -- the buffers themselves are not copied -- and makes one NOTIFY of
 * the machine.  Requests map one to one and both sides answer in order, so responses need
 * no table: when the machine pulses the device's PLIC source the backend copies status and
 * length of each new response into the VM's slot, moves the VM's rsp_prod and pulses the
 * VM's PLIC source PVIO_IRQ_BASE + its device number (VSEIP).
 *
 * Exits per batch: the NOTIFY ecall, then for the completion the machine interrupt (when it
 * comes while the VM runs) and the VM's PLIC claim and completion.  The emulated path's
 * register accesses and bounce copies are gone.
 */
#include "vio.h"
#include "rvh/libc.h"
#include "rvh/sbi.h"

#define PVB_MAX         SBI_RVH_PVIO_MAX_DEVICES
#define PVB_QUEUES      2
#define RING_PAGE       4096
#define SLOTS           SBI_RVH_PVIO_RING_SLOTS

struct pvb_queue {
    volatile uint8_t *vm_ring;          /* host address of the VM's ring page; 0: none */
    uint32_t vm_req_cons, vm_rsp_prod;
    int broken;
    volatile uint8_t *host_ring;        /* the ring the machine device serves */
    uint32_t host_req_prod, host_rsp_cons;
};

struct pvb_dev {
    struct vm *vm;
    unsigned index;                     /* the VM's device number */
    unsigned machine;                   /* the machine's pv device */
    unsigned queues;
    uint8_t info[SBI_RVH_PVIO_INFO_SIZE];
    struct pvb_queue q[PVB_QUEUES];
};

static struct pvb_dev devices[HYP_MAX_VMS][PVB_MAX];
static unsigned device_count[HYP_MAX_VMS];
static uint8_t info_buffer[SBI_RVH_PVIO_INFO_SIZE] __attribute__((aligned(8)));

static volatile uint32_t *ring_word(volatile uint8_t *ring, unsigned offset)
{
    return (volatile uint32_t *)(ring + offset);
}

static volatile uint8_t *ring_slot(volatile uint8_t *ring, uint32_t index)
{
    return ring + RVH_PVIO_RING_FIRST_SLOT + (index % SLOTS) * SBI_RVH_PVIO_SLOT_SIZE;
}

int pvio_parse_devices(struct vm *vm, const uint8_t *cells, uint32_t len)
{
    if (len % 4 || len / 4 > PVB_MAX) {
        printf("hyp: %s: rvh,pv-devices: at most %d cells\n", vm->name, PVB_MAX);
        return -1;
    }
    device_count[vm->id] = len / 4;
    for (unsigned i = 0; i < len / 4; i++) {
        const uint8_t *c = cells + 4 * i;
        devices[vm->id][i].machine = (unsigned)c[0] << 24 | c[1] << 16 | c[2] << 8 | c[3];
    }
    return 0;
}

int pvio_init(void)
{
    uint32_t owned = 0;
    for (unsigned v = 0; v < hyp_nvms; v++) {
        for (unsigned i = 0; i < device_count[v]; i++) {
            struct pvb_dev *d = &devices[v][i];
            d->vm = &hyp_vms[v];
            d->index = i;
            struct sbiret r = sbi_ecall(SBI_EXT_RVH_PVIO, SBI_RVH_PVIO_DEVICE_INFO, d->machine,
                                        (unsigned long)info_buffer, 0, 0, 0, 0);
            if (r.error || d->machine >= PVB_MAX || owned >> d->machine & 1) {
                printf("hyp: %s: machine pv device %u is not one it may have (SBI error %ld)\n",
                       d->vm->name, d->machine, r.error);
                return -1;
            }
            owned |= 1u << d->machine;
            memcpy(d->info, info_buffer, sizeof d->info);
            d->queues = *(uint32_t *)(d->info + RVH_PVIO_INFO_QUEUES);
            if (d->queues > PVB_QUEUES)
                d->queues = PVB_QUEUES;
            /* the VM sees its own interrupt source, the one its PLIC raises */
            *(uint32_t *)(d->info + RVH_PVIO_INFO_IRQ) = PVIO_IRQ_BASE + i;
            for (unsigned q = 0; q < d->queues; q++)
                d->q[q].host_ring = hyp_alloc_pages(RING_PAGE, RING_PAGE);
            plic_enable(PVIO_IRQ_BASE + d->machine);
        }
    }
    if (owned)
        csr_set(CSR_SIE, SIE_SEIE_MASK);
    return 0;
}

int pvio_vm_has_devices(const struct vm *vm)
{
    return device_count[vm->id] != 0;
}

/* ---- the VM's calls ---- */

static long attach(struct pvb_dev *d, unsigned queue, unsigned long gpa)
{
    struct pvb_queue *q = &d->q[queue];
    unsigned long hpa = 0;
    if (gpa && (gpa % RING_PAGE || gpa_to_host(d->vm, gpa, RING_PAGE, &hpa) < 0))
        return SBI_ERR_INVALID_ADDRESS;
    /* the machine drops what was in flight (and waits for its host I/O) before it answers */
    sbi_ecall(SBI_EXT_RVH_PVIO, SBI_RVH_PVIO_SET_RING, d->machine, queue, 0, 0, 0, 0);
    q->vm_ring = 0;
    q->broken = 0;
    if (!gpa)
        return SBI_SUCCESS;
    memset((void *)q->host_ring, 0, RING_PAGE);
    q->host_req_prod = q->host_rsp_cons = 0;
    struct sbiret r = sbi_ecall(SBI_EXT_RVH_PVIO, SBI_RVH_PVIO_SET_RING, d->machine, queue,
                                (unsigned long)q->host_ring, 0, 0, 0);
    if (r.error)
        return SBI_ERR_FAILED;
    q->vm_ring = (volatile uint8_t *)hpa;
    q->vm_rsp_prod = q->vm_req_cons = *ring_word(q->vm_ring, RVH_PVIO_RING_RSP_PROD);
    *ring_word(q->vm_ring, RVH_PVIO_RING_REQ_CONS) = q->vm_req_cons;
    *ring_word(q->vm_ring, RVH_PVIO_RING_ERROR) = RVH_PVIO_ERROR_NONE;
    return SBI_SUCCESS;
}

/* the VM's new requests onto the machine's ring, then one NOTIFY of the machine */
static void forward(struct pvb_dev *d, unsigned queue)
{
    struct pvb_queue *q = &d->q[queue];
    struct vm *vm = d->vm;
    if (!q->vm_ring || q->broken)
        return;
    uint32_t req_prod = *ring_word(q->vm_ring, RVH_PVIO_RING_REQ_PROD);
    uint32_t ahead = req_prod - q->vm_rsp_prod;
    if (ahead > SLOTS || req_prod - q->vm_req_cons > ahead) {
        q->broken = 1;
        *ring_word(q->vm_ring, RVH_PVIO_RING_ERROR) = RVH_PVIO_ERROR_INDEX;
        vm->stats[HYP_STAT_IO_ERRORS]++;
        printf("hyp: %s: pv device %u queue %u: req_prod %u is not within a ring of rsp_prod "
               "%u; ring ignored until attached again\n", vm->name, d->index, queue, req_prod,
               q->vm_rsp_prod);
        return;
    }
    __sync_synchronize();                       /* the index before the slots */
    unsigned n = 0;
    while (q->vm_req_cons != req_prod) {
        volatile uint8_t *from = ring_slot(q->vm_ring, q->vm_req_cons);
        volatile uint8_t *to = ring_slot(q->host_ring, q->host_req_prod);
        uint64_t gpa = *(volatile uint64_t *)(from + RVH_PVIO_SLOT_ADDRESS);
        uint32_t len = *(volatile uint32_t *)(from + RVH_PVIO_SLOT_LENGTH);
        unsigned long hpa = 0;
        if (gpa_to_host(vm, gpa, len, &hpa) < 0)
            hpa = 0;                            /* not the VM's RAM: the machine says so */
        *(volatile uint64_t *)(to + RVH_PVIO_SLOT_ID) = q->vm_req_cons;
        *(volatile uint64_t *)(to + RVH_PVIO_SLOT_SECTOR) =
            *(volatile uint64_t *)(from + RVH_PVIO_SLOT_SECTOR);
        *(volatile uint64_t *)(to + RVH_PVIO_SLOT_ADDRESS) = hpa;
        *(volatile uint32_t *)(to + RVH_PVIO_SLOT_LENGTH) = len;
        to[RVH_PVIO_SLOT_OP] = from[RVH_PVIO_SLOT_OP];
        to[RVH_PVIO_SLOT_STATUS] = RVH_PVIO_S_PENDING;
        q->vm_req_cons++;
        q->host_req_prod++;
        n++;
    }
    *ring_word(q->vm_ring, RVH_PVIO_RING_REQ_CONS) = q->vm_req_cons;
    if (!n)
        return;
    __sync_synchronize();                       /* the slots before the index */
    *ring_word(q->host_ring, RVH_PVIO_RING_REQ_PROD) = q->host_req_prod;
    __sync_synchronize();
    sbi_ecall(SBI_EXT_RVH_PVIO, SBI_RVH_PVIO_NOTIFY, d->machine, queue, 0, 0, 0, 0);
    vm->stats[HYP_STAT_IO_REQUESTS] += n;
}

void pvio_sbi_call(struct vcpu *vcpu, unsigned long fid, struct sbiret *ret)
{
    struct vm *vm = vcpu->vm;
    unsigned long *a = &vcpu->regs.x[10];
    unsigned count = device_count[vm->id];
    if (fid > SBI_RVH_PVIO_NOTIFY) {
        ret->error = SBI_ERR_NOT_SUPPORTED;
        return;
    }
    if (a[0] >= count) {
        ret->error = SBI_ERR_INVALID_PARAM;
        return;
    }
    struct pvb_dev *d = &devices[vm->id][a[0]];
    unsigned long hpa;
    switch (fid) {
    case SBI_RVH_PVIO_DEVICE_INFO:
        if (gpa_to_host(vm, a[1], sizeof d->info, &hpa) < 0) {
            ret->error = SBI_ERR_INVALID_ADDRESS;
            return;
        }
        memcpy((void *)hpa, d->info, sizeof d->info);
        ret->value = count;
        return;
    case SBI_RVH_PVIO_SET_RING:
        if (a[1] >= d->queues) {
            ret->error = SBI_ERR_INVALID_PARAM;
            return;
        }
        ret->error = attach(d, a[1], a[2]);
        return;
    default:                                    /* NOTIFY */
        if (a[1] >= d->queues) {
            ret->error = SBI_ERR_INVALID_PARAM;
            return;
        }
        vm->stats[HYP_STAT_IO_NOTIFIES]++;
        forward(d, a[1]);
    }
}

/* ---- completions ---- */

static void collect(struct pvb_dev *d, unsigned queue)
{
    struct pvb_queue *q = &d->q[queue];
    uint32_t rsp_prod = *ring_word(q->host_ring, RVH_PVIO_RING_RSP_PROD);
    __sync_synchronize();
    unsigned n = 0;
    while (q->host_rsp_cons != rsp_prod && q->host_rsp_cons != q->host_req_prod) {
        volatile uint8_t *from = ring_slot(q->host_ring, q->host_rsp_cons);
        if (q->vm_ring) {
            volatile uint8_t *to = ring_slot(q->vm_ring, q->vm_rsp_prod);
            *(volatile uint32_t *)(to + RVH_PVIO_SLOT_LENGTH) =
                *(volatile uint32_t *)(from + RVH_PVIO_SLOT_LENGTH);
            to[RVH_PVIO_SLOT_STATUS] = from[RVH_PVIO_SLOT_STATUS];
            q->vm_rsp_prod++;
        }
        q->host_rsp_cons++;
        n++;
    }
    if (!n || !q->vm_ring)
        return;
    __sync_synchronize();                       /* the slots before the index */
    *ring_word(q->vm_ring, RVH_PVIO_RING_RSP_PROD) = q->vm_rsp_prod;
    d->vm->stats[HYP_STAT_IO_IRQS]++;
    vplic_pulse(d->vm, PVIO_IRQ_BASE + d->index);
}

int pvio_owns_irq(unsigned irq)
{
    if (irq < PVIO_IRQ_BASE || irq >= PVIO_IRQ_BASE + PVB_MAX)
        return 0;
    for (unsigned v = 0; v < hyp_nvms; v++)
        for (unsigned i = 0; i < device_count[v]; i++)
            if (devices[v][i].machine == irq - PVIO_IRQ_BASE)
                return 1;
    return 0;
}

void pvio_interrupt(unsigned irq)
{
    for (unsigned v = 0; v < hyp_nvms; v++)
        for (unsigned i = 0; i < device_count[v]; i++) {
            struct pvb_dev *d = &devices[v][i];
            if (d->machine == irq - PVIO_IRQ_BASE && d->vm->state == VM_RUNNING)
                for (unsigned q = 0; q < d->queues; q++)
                    collect(d, q);
        }
}

int pvio_busy(void)
{
    for (unsigned v = 0; v < hyp_nvms; v++) {
        if (hyp_vms[v].state != VM_RUNNING)
            continue;
        for (unsigned i = 0; i < device_count[v]; i++) {
            struct pvb_dev *d = &devices[v][i];
            for (unsigned q = 0; q < d->queues; q++)
                if (d->q[q].host_req_prod != d->q[q].host_rsp_cons)
                    return 1;               /* requests in flight (receive buffers too) */
        }
    }
    return 0;
}

/*
 * virtio.c - the virtio-mmio driver library of the S-mode guests (see
 * virtio.h).  Written from the VIRTIO 1.2 specification.
 */
#include "virtio.h"

const char *const virtio_wait_names[3] = { "poll", "wfi", "irq" };

/* ------------------------------------------------------------------ */
/* bump allocator over the RAM after the image                        */

extern char _end[];
#define ALLOC_LIMIT (RAM_BASE + DEFAULT_MEMORY - (4UL << 20))  /* keep clear of an SBI's DTB */
static uintptr_t alloc_next;

void virtio_alloc_reset(void)
{
    alloc_next = ((uintptr_t)_end + 0xfff) & ~0xfffUL;
}

void *virtio_alloc(unsigned long size, unsigned long align)
{
    if (!alloc_next)
        virtio_alloc_reset();
    if (align < 16)
        align = 16;
    uintptr_t p = (alloc_next + align - 1) & ~(align - 1);
    if (p + size > ALLOC_LIMIT || p + size < p) {
        printf("virtio: out of DMA memory (%lu bytes wanted)\n", size);
        rvh_check_failed(rvh_check_num, __LINE__, "virtio_alloc");
    }
    alloc_next = p + size;
    return (void *)p;
}

/* ------------------------------------------------------------------ */
/* queue memory: a static pool                                        */

struct vq_mem {
    struct virtq_desc desc[VQ_MAX_SIZE];                /* 4 KiB */
    uint8_t avail[4096];                                /* 6 + 2 * 256 */
    uint8_t used[4096];                                 /* 6 + 8 * 256 */
};
static struct vq_mem vq_mem[VQ_POOL] __attribute__((aligned(4096)));
static struct virtq vq_pool[VQ_POOL];
static struct virtq_desc *vq_indirect[VQ_POOL];         /* allocated lazily */
static struct virtio_dev *vq_owner[VQ_POOL];

/* devices by PLIC interrupt number, for the interrupt service */
static struct virtio_dev *irq_owner[VIRTIO_MMIO_SLOTS + 1];
volatile unsigned long virtio_spurious_claims;

/* ------------------------------------------------------------------ */
/* slots                                                               */

static const char *device_name(uint32_t id)
{
    switch (id) {
    case 0: return "none";
    case VIRTIO_ID_NET: return "net";
    case VIRTIO_ID_BLOCK: return "block";
    case 3: return "console";
    case 4: return "entropy";
    case 5: return "balloon";
    case 9: return "9p";
    case 16: return "gpu";
    case 18: return "input";
    default: return "?";
    }
}

int virtio_scan(struct virtio_slot slots[VIRTIO_MMIO_SLOTS], int verbose)
{
    int found = 0;
    for (int i = 0; i < VIRTIO_MMIO_SLOTS; i++) {
        uintptr_t b = VIRTIO_SLOT_BASE(i);
        struct virtio_slot s;
        s.magic = mmio_read32(b + VIRTIO_MMIO_MAGIC_VALUE);
        s.version = mmio_read32(b + VIRTIO_MMIO_VERSION);
        s.device_id = mmio_read32(b + VIRTIO_MMIO_DEVICE_ID);
        s.vendor_id = mmio_read32(b + VIRTIO_MMIO_VENDOR_ID);
        if (slots)
            slots[i] = s;
        if (s.magic == VIRTIO_MMIO_MAGIC && s.device_id != 0) {
            found++;
            if (verbose)
                printf("virtio: slot %d @0x%lx irq %d: device %u (%s), "
                       "version %u, vendor 0x%08x\n", i, (unsigned long)b,
                       VIRTIO_SLOT_IRQ(i), s.device_id, device_name(s.device_id),
                       s.version, s.vendor_id);
        }
    }
    return found;
}

int virtio_find(uint32_t device_id, int out[VIRTIO_MMIO_SLOTS])
{
    int n = 0;
    for (int i = 0; i < VIRTIO_MMIO_SLOTS; i++) {
        uintptr_t b = VIRTIO_SLOT_BASE(i);
        if (mmio_read32(b + VIRTIO_MMIO_MAGIC_VALUE) == VIRTIO_MMIO_MAGIC &&
            mmio_read32(b + VIRTIO_MMIO_DEVICE_ID) == device_id)
            out[n++] = i;
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* features                                                            */

struct feature_name {
    uint8_t bit;
    uint8_t device;             /* 0 = any device */
    const char *name;
};
static const struct feature_name feature_names[] = {
    { VIRTIO_F_INDIRECT_DESC, 0, "INDIRECT_DESC" },
    { VIRTIO_F_EVENT_IDX, 0, "EVENT_IDX" },
    { VIRTIO_F_VERSION_1, 0, "VERSION_1" },
    { VIRTIO_F_ACCESS_PLATFORM, 0, "ACCESS_PLATFORM" },
    { VIRTIO_F_RING_PACKED, 0, "RING_PACKED" },
    { VIRTIO_F_IN_ORDER, 0, "IN_ORDER" },
    { VIRTIO_F_ORDER_PLATFORM, 0, "ORDER_PLATFORM" },
    { VIRTIO_F_SR_IOV, 0, "SR_IOV" },
    { VIRTIO_F_NOTIFICATION_DATA, 0, "NOTIFICATION_DATA" },
    { VIRTIO_F_NOTIF_CONFIG_DATA, 0, "NOTIF_CONFIG_DATA" },
    { VIRTIO_F_RING_RESET, 0, "RING_RESET" },
    { 24, 0, "NOTIFY_ON_EMPTY(legacy)" },
    { 27, 0, "ANY_LAYOUT(legacy)" },
    { 0, VIRTIO_ID_BLOCK, "BARRIER(legacy)" },
    { VIRTIO_BLK_F_SIZE_MAX, VIRTIO_ID_BLOCK, "SIZE_MAX" },
    { VIRTIO_BLK_F_SEG_MAX, VIRTIO_ID_BLOCK, "SEG_MAX" },
    { VIRTIO_BLK_F_GEOMETRY, VIRTIO_ID_BLOCK, "GEOMETRY" },
    { VIRTIO_BLK_F_RO, VIRTIO_ID_BLOCK, "RO" },
    { VIRTIO_BLK_F_BLK_SIZE, VIRTIO_ID_BLOCK, "BLK_SIZE" },
    { 7, VIRTIO_ID_BLOCK, "SCSI(legacy)" },
    { VIRTIO_BLK_F_FLUSH, VIRTIO_ID_BLOCK, "FLUSH" },
    { VIRTIO_BLK_F_TOPOLOGY, VIRTIO_ID_BLOCK, "TOPOLOGY" },
    { VIRTIO_BLK_F_CONFIG_WCE, VIRTIO_ID_BLOCK, "CONFIG_WCE" },
    { VIRTIO_BLK_F_MQ, VIRTIO_ID_BLOCK, "MQ" },
    { VIRTIO_BLK_F_DISCARD, VIRTIO_ID_BLOCK, "DISCARD" },
    { VIRTIO_BLK_F_WRITE_ZEROES, VIRTIO_ID_BLOCK, "WRITE_ZEROES" },
    { VIRTIO_BLK_F_LIFETIME, VIRTIO_ID_BLOCK, "LIFETIME" },
    { VIRTIO_BLK_F_SECURE_ERASE, VIRTIO_ID_BLOCK, "SECURE_ERASE" },
    { VIRTIO_NET_F_CSUM, VIRTIO_ID_NET, "CSUM" },
    { VIRTIO_NET_F_GUEST_CSUM, VIRTIO_ID_NET, "GUEST_CSUM" },
    { VIRTIO_NET_F_CTRL_GUEST_OFFLOADS, VIRTIO_ID_NET, "CTRL_GUEST_OFFLOADS" },
    { VIRTIO_NET_F_MTU, VIRTIO_ID_NET, "MTU" },
    { VIRTIO_NET_F_MAC, VIRTIO_ID_NET, "MAC" },
    { 6, VIRTIO_ID_NET, "GSO(legacy)" },
    { VIRTIO_NET_F_GUEST_TSO4, VIRTIO_ID_NET, "GUEST_TSO4" },
    { VIRTIO_NET_F_GUEST_TSO6, VIRTIO_ID_NET, "GUEST_TSO6" },
    { VIRTIO_NET_F_GUEST_ECN, VIRTIO_ID_NET, "GUEST_ECN" },
    { VIRTIO_NET_F_GUEST_UFO, VIRTIO_ID_NET, "GUEST_UFO" },
    { VIRTIO_NET_F_HOST_TSO4, VIRTIO_ID_NET, "HOST_TSO4" },
    { VIRTIO_NET_F_HOST_TSO6, VIRTIO_ID_NET, "HOST_TSO6" },
    { VIRTIO_NET_F_HOST_ECN, VIRTIO_ID_NET, "HOST_ECN" },
    { VIRTIO_NET_F_HOST_UFO, VIRTIO_ID_NET, "HOST_UFO" },
    { VIRTIO_NET_F_MRG_RXBUF, VIRTIO_ID_NET, "MRG_RXBUF" },
    { VIRTIO_NET_F_STATUS, VIRTIO_ID_NET, "STATUS" },
    { VIRTIO_NET_F_CTRL_VQ, VIRTIO_ID_NET, "CTRL_VQ" },
    { VIRTIO_NET_F_CTRL_RX, VIRTIO_ID_NET, "CTRL_RX" },
    { VIRTIO_NET_F_CTRL_VLAN, VIRTIO_ID_NET, "CTRL_VLAN" },
    { VIRTIO_NET_F_CTRL_RX_EXTRA, VIRTIO_ID_NET, "CTRL_RX_EXTRA" },
    { VIRTIO_NET_F_GUEST_ANNOUNCE, VIRTIO_ID_NET, "GUEST_ANNOUNCE" },
    { VIRTIO_NET_F_MQ, VIRTIO_ID_NET, "MQ" },
    { VIRTIO_NET_F_CTRL_MAC_ADDR, VIRTIO_ID_NET, "CTRL_MAC_ADDR" },
    { VIRTIO_NET_F_GUEST_USO4, VIRTIO_ID_NET, "GUEST_USO4" },
    { VIRTIO_NET_F_GUEST_USO6, VIRTIO_ID_NET, "GUEST_USO6" },
    { VIRTIO_NET_F_HOST_USO, VIRTIO_ID_NET, "HOST_USO" },
    { VIRTIO_NET_F_HASH_REPORT, VIRTIO_ID_NET, "HASH_REPORT" },
    { VIRTIO_NET_F_GUEST_HDRLEN, VIRTIO_ID_NET, "GUEST_HDRLEN" },
    { VIRTIO_NET_F_RSS, VIRTIO_ID_NET, "RSS" },
    { VIRTIO_NET_F_RSC_EXT, VIRTIO_ID_NET, "RSC_EXT" },
    { VIRTIO_NET_F_STANDBY, VIRTIO_ID_NET, "STANDBY" },
    { VIRTIO_NET_F_SPEED_DUPLEX, VIRTIO_ID_NET, "SPEED_DUPLEX" },
};

void virtio_print_features(const char *what, uint32_t device_id, uint64_t f)
{
    printf("%s 0x%016lx:", what, (unsigned long)f);
    for (unsigned b = 0; b < 64; b++) {
        if (!((f >> b) & 1))
            continue;
        const char *name = 0;
        for (unsigned k = 0; k < sizeof feature_names / sizeof feature_names[0]; k++)
            if (feature_names[k].bit == b &&
                (feature_names[k].device == 0 || feature_names[k].device == device_id)) {
                name = feature_names[k].name;
                break;
            }
        if (name)
            printf(" %s", name);
        else
            printf(" bit%u", b);
    }
    putchar('\n');
}

/* ------------------------------------------------------------------ */
/* device initialisation                                              */

static void set_status(struct virtio_dev *d, uint32_t s)
{
    vio_write(d, VIRTIO_MMIO_STATUS, s);
}

static int fail_init(struct virtio_dev *d, int err)
{
    set_status(d, vio_read(d, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_FAILED);
    return err;
}

static void plic_enable(int irq, int on)
{
    uintptr_t ctx = PLIC_S_CONTEXT(rvh_hartid());
    uintptr_t en = PLIC_ENABLE(ctx, irq);
    uint32_t bit = 1u << (irq % 32);
    if (on) {
        mmio_write32(PLIC_PRIORITY(irq), 1);
        mmio_write32(PLIC_CONTEXT_THRESHOLD(ctx), 0);
        mmio_write32(en, mmio_read32(en) | bit);
    } else {
        mmio_write32(en, mmio_read32(en) & ~bit);
    }
}

void virtio_reset(struct virtio_dev *d)
{
    set_status(d, 0);
    uint64_t t0 = rdtime();
    while (vio_read(d, VIRTIO_MMIO_STATUS) != 0) {
        if (rdtime() - t0 > VIRTIO_WAIT_TIMEOUT) {
            printf("virtio: slot %d: Status does not read 0 after reset\n", d->slot);
            rvh_check_failed(rvh_check_num, __LINE__, "virtio reset");
        }
    }
    for (int i = 0; i < VQ_POOL; i++)
        if (vq_owner[i] == d)
            vq_owner[i] = 0;
    for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
        d->vq[i] = 0;
    if (d->slot >= 0 && irq_owner[VIRTIO_SLOT_IRQ(d->slot)] == d) {
        plic_enable(VIRTIO_SLOT_IRQ(d->slot), 0);
        irq_owner[VIRTIO_SLOT_IRQ(d->slot)] = 0;
    }
}

int virtio_dev_init(struct virtio_dev *d, int slot, uint32_t device_id,
                    uint64_t wanted, uint64_t required)
{
    memset(d, 0, sizeof *d);
    d->slot = slot;
    d->base = VIRTIO_SLOT_BASE(slot);
    uint32_t magic = vio_read(d, VIRTIO_MMIO_MAGIC_VALUE);
    d->version = vio_read(d, VIRTIO_MMIO_VERSION);
    d->device_id = vio_read(d, VIRTIO_MMIO_DEVICE_ID);
    d->vendor_id = vio_read(d, VIRTIO_MMIO_VENDOR_ID);
    if (magic != VIRTIO_MMIO_MAGIC) {
        printf("virtio: slot %d: bad MagicValue 0x%08x\n", slot, magic);
        return -1;
    }
    if (d->version != 2) {
        printf("virtio: slot %d: virtio-mmio Version %u: only version 2 (virtio 1.x) "
               "is supported%s\n", slot, d->version,
               d->version == 1 ? " (a legacy device: on QEMU add "
               "-global virtio-mmio.force-legacy=false)" : "");
        return -2;
    }
    if (d->device_id != device_id) {
        printf("virtio: slot %d: DeviceID %u, expected %u\n", slot, d->device_id,
               device_id);
        return -3;
    }

    /* 3.1.1: reset, ACKNOWLEDGE, DRIVER */
    virtio_reset(d);
    set_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
    set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);

    /* read the device features */
    vio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    uint64_t lo = vio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
    vio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t hi = vio_read(d, VIRTIO_MMIO_DEVICE_FEATURES);
    d->offered = lo | hi << 32;

    required |= VIRTIO_BIT(VIRTIO_F_VERSION_1);
    if ((d->offered & required) != required) {
        printf("virtio: slot %d: required features not offered:", slot);
        virtio_print_features("", device_id, required & ~d->offered);
        if (!(d->offered & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
            printf("virtio: slot %d: no VIRTIO_F_VERSION_1: a legacy device\n", slot);
        return fail_init(d, -4);
    }
    uint64_t accept = d->offered & (wanted | required);
    vio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    vio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)accept);
    vio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    vio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(accept >> 32));

    set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                  VIRTIO_STATUS_FEATURES_OK);
    uint32_t st = vio_read(d, VIRTIO_MMIO_STATUS);
    if (!(st & VIRTIO_STATUS_FEATURES_OK)) {
        printf("virtio: slot %d: device did not keep FEATURES_OK (Status 0x%x)\n",
               slot, st);
        return fail_init(d, -5);
    }
    d->features = accept;
    d->event_idx = (accept >> VIRTIO_F_EVENT_IDX) & 1;
    d->indirect = (accept >> VIRTIO_F_INDIRECT_DESC) & 1;
    return 0;
}

uint32_t virtio_queue_num_max(struct virtio_dev *d, unsigned index)
{
    vio_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
    return vio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
}

struct virtq *virtq_setup(struct virtio_dev *d, unsigned index, unsigned num)
{
    if (index >= VIRTIO_MAX_QUEUES)
        return 0;
    int p;
    for (p = 0; p < VQ_POOL; p++)
        if (!vq_owner[p])
            break;
    if (p == VQ_POOL) {
        printf("virtio: out of queues\n");
        return 0;
    }
    vio_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
    uint32_t ready = vio_read(d, VIRTIO_MMIO_QUEUE_READY);
    if (ready != 0) {
        printf("virtio: slot %d queue %u: QueueReady %u before setup\n", d->slot,
               index, ready);
        return 0;
    }
    uint32_t max = vio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    if (max == 0) {
        printf("virtio: slot %d queue %u: not available (QueueNumMax 0)\n",
               d->slot, index);
        return 0;
    }
    if (num > VQ_MAX_SIZE)
        num = VQ_MAX_SIZE;
    if (num > max)
        num = max;
    while (num & (num - 1))             /* a power of 2 */
        num &= num - 1;

    struct virtq *q = &vq_pool[p];
    struct vq_mem *m = &vq_mem[p];
    memset(q, 0, sizeof *q);
    memset(m, 0, sizeof *m);
    vq_owner[p] = d;
    q->dev = d;
    q->index = index;
    q->num = (uint16_t)num;
    q->num_max = (uint16_t)(max > 0xffff ? 0xffff : max);
    q->desc = m->desc;
    q->avail = (struct virtq_avail *)m->avail;
    q->used = (struct virtq_used *)m->used;
    q->used_event = &q->avail->ring[num];
    q->avail_event = (volatile uint16_t *)&q->used->ring[num];
    for (unsigned i = 0; i < num; i++)
        q->desc[i].next = (uint16_t)(i + 1 < num ? i + 1 : 0);
    q->free_head = 0;
    q->num_free = (uint16_t)num;
    if (d->indirect) {
        if (!vq_indirect[p])
            vq_indirect[p] = virtio_alloc(sizeof(struct virtq_desc) * VQ_MAX_SIZE *
                                          VQ_INDIRECT_MAX, 4096);
        q->indirect = vq_indirect[p];
    }

    vio_write(d, VIRTIO_MMIO_QUEUE_NUM, num);
    uintptr_t a = (uintptr_t)q->desc;
    vio_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)a);
    vio_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)((uint64_t)a >> 32));
    a = (uintptr_t)q->avail;
    vio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)a);
    vio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)((uint64_t)a >> 32));
    a = (uintptr_t)q->used;
    vio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)a);
    vio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)((uint64_t)a >> 32));
    vio_mb();
    vio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
    if (vio_read(d, VIRTIO_MMIO_QUEUE_READY) != 1) {
        printf("virtio: slot %d queue %u: QueueReady does not read 1\n", d->slot, index);
        vq_owner[p] = 0;
        return 0;
    }
    d->vq[index] = q;
    return q;
}

/* ------------------------------------------------------------------ */
/* interrupts                                                          */

static volatile uint64_t watchdog_deadline;     /* armed SBI timer, 0 = none */
static strap_hook_t prev_hook;
static int hook_installed;
volatile unsigned long virtio_irq_traps;
volatile unsigned long virtio_wait_wakeups;

int virtio_plic_service(void)
{
    uintptr_t ctx = PLIC_S_CONTEXT(rvh_hartid());
    int n = 0;
    uint32_t irq;
    while ((irq = mmio_read32(PLIC_CONTEXT_CLAIM(ctx))) != 0) {
        struct virtio_dev *d = irq <= VIRTIO_MMIO_SLOTS ? irq_owner[irq] : 0;
        if (d) {
            uint32_t isr = vio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
            vio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
            d->irqs++;
            d->isr_last = isr;
            if (isr & VIRTIO_INT_VRING)
                d->isr_vring++;
            if (isr & VIRTIO_INT_CONFIG)
                d->isr_config++;
            if (!isr)
                d->isr_zero++;
        } else {
            virtio_spurious_claims++;
        }
        mmio_write32(PLIC_CONTEXT_CLAIM(ctx), irq);
        n++;
    }
    return n;
}

static int virtio_trap_hook(struct strap_frame *f)
{
    if (f->scause == (MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_EXTERNAL)) {
        virtio_irq_traps++;
        virtio_plic_service();
        return 1;
    }
    if (f->scause == (MCAUSE_INTERRUPT_MASK | INTERRUPT_SUPERVISOR_TIMER) && watchdog_deadline) {
        sbi_set_timer(~0ULL);
        watchdog_deadline = 0;
        return 1;
    }
    return prev_hook ? prev_hook(f) : 0;
}

/* a deadline that has passed is no watchdog: in the wfi wait mode its interrupt
   is never taken (sstatus.SIE is clear), so it would stay pending and turn every
   later wfi into a spin, with time advancing only as fast as instructions retire */
static int watchdog_live(uint64_t now)
{
    return watchdog_deadline && now < watchdog_deadline;
}

/* keep an SBI timer armed a little past the wait's deadline, so that a
   wfi whose interrupt never comes still wakes up */
static void watchdog_arm(uint64_t now)
{
    if (watchdog_live(now) && watchdog_deadline > now + VIRTIO_WAIT_TIMEOUT / 2)
        return;
    watchdog_deadline = now + VIRTIO_WAIT_TIMEOUT + 1000;
    sbi_set_timer(watchdog_deadline);
    csr_set(sie, SIE_STIE_MASK);
}

/* the timer at `deadline` at the latest: a wait with a deadline of its own
   wakes up then, not at the watchdog's */
static void watchdog_arm_by(uint64_t deadline)
{
    if (watchdog_live(rdtime()) && watchdog_deadline <= deadline)
        return;
    watchdog_deadline = deadline;
    sbi_set_timer(deadline);
    csr_set(sie, SIE_STIE_MASK);
}

/* the used-buffer notification wanted for the wait mode, at the current
   consumer position */
static void virtq_arm(struct virtq *q)
{
    if (q->dev->event_idx) {
        if (q->dev->wait == VIRTIO_WAIT_POLL)
            *q->used_event = (uint16_t)(q->last_used - 1);      /* far away */
        else
            *q->used_event = q->last_used;
    } else {
        q->avail->flags = q->dev->wait == VIRTIO_WAIT_POLL ?
                          VIRTQ_AVAIL_F_NO_INTERRUPT : 0;
    }
}

void virtio_set_wait(struct virtio_dev *d, enum virtio_wait wait)
{
    int irq = VIRTIO_SLOT_IRQ(d->slot);
    d->wait = wait;
    for (int i = 0; i < VIRTIO_MAX_QUEUES; i++)
        if (d->vq[i])
            virtq_arm(d->vq[i]);
    vio_mb();
    if (wait == VIRTIO_WAIT_POLL) {
        plic_enable(irq, 0);
        irq_owner[irq] = 0;
        return;
    }
    /* drop what polling left behind, then route the interrupt */
    uint32_t isr = vio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
    vio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
    irq_owner[irq] = d;
    plic_enable(irq, 1);
    if (!hook_installed) {
        prev_hook = strap_hook;
        strap_hook = virtio_trap_hook;
        hook_installed = 1;
    }
    csr_set(sie, SIE_SEIE_MASK);
}

uint32_t virtio_driver_ok(struct virtio_dev *d, enum virtio_wait wait)
{
    virtio_set_wait(d, wait);
    set_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
                  VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
    return vio_read(d, VIRTIO_MMIO_STATUS);
}

/* ------------------------------------------------------------------ */
/* config space (4.2.2.2: accesses as wide as the field, 64-bit as two
   32-bit reads, ConfigGeneration re-checked)                          */

void virtio_config_read(struct virtio_dev *d, unsigned off, void *buf, unsigned len)
{
    uint8_t *p = buf;
    uint32_t g0, g1;
    do {
        g0 = vio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
        for (unsigned i = 0; i < len; i++)
            p[i] = mmio_read8(d->base + VIRTIO_MMIO_CONFIG + off + i);
        g1 = vio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
    } while (g0 != g1);
}

uint8_t virtio_config8(struct virtio_dev *d, unsigned off)
{
    return mmio_read8(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint16_t virtio_config16(struct virtio_dev *d, unsigned off)
{
    return *(volatile uint16_t *)(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint32_t virtio_config32(struct virtio_dev *d, unsigned off)
{
    return mmio_read32(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint64_t virtio_config64(struct virtio_dev *d, unsigned off)
{
    uint32_t g0, g1, lo, hi;
    do {
        g0 = vio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
        lo = mmio_read32(d->base + VIRTIO_MMIO_CONFIG + off);
        hi = mmio_read32(d->base + VIRTIO_MMIO_CONFIG + off + 4);
        g1 = vio_read(d, VIRTIO_MMIO_CONFIG_GENERATION);
    } while (g0 != g1);
    return (uint64_t)lo | (uint64_t)hi << 32;
}

/* ------------------------------------------------------------------ */
/* virtqueue operations                                               */

int virtq_add(struct virtq *q, const struct vbuf *bufs, unsigned n_out,
              unsigned n_in, void *token, int indirect)
{
    unsigned n = n_out + n_in;
    if (n == 0)
        return -1;
    uint16_t head;
    if (indirect) {
        /* 2.7.5.3.1: no chain longer than the queue, indirect or not */
        if (!q->indirect || n > VQ_INDIRECT_MAX || n > q->num || q->num_free < 1)
            return -1;
        head = q->free_head;
        q->free_head = q->desc[head].next;
        q->num_free--;
        struct virtq_desc *t = q->indirect + (unsigned)head * VQ_INDIRECT_MAX;
        for (unsigned i = 0; i < n; i++) {
            t[i].addr = (uintptr_t)bufs[i].addr;
            t[i].len = bufs[i].len;
            t[i].flags = (uint16_t)((i >= n_out ? VIRTQ_DESC_F_WRITE : 0) |
                                    (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
            t[i].next = (uint16_t)(i + 1 < n ? i + 1 : 0);
        }
        q->desc[head].addr = (uintptr_t)t;
        q->desc[head].len = n * sizeof(struct virtq_desc);
        q->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
        q->chain_len[head] = 1;
    } else {
        if (q->num_free < n)
            return -1;
        head = q->free_head;
        uint16_t i = head, last = head;
        for (unsigned k = 0; k < n; k++) {
            struct virtq_desc *dsc = &q->desc[i];
            dsc->addr = (uintptr_t)bufs[k].addr;
            dsc->len = bufs[k].len;
            dsc->flags = (uint16_t)((k >= n_out ? VIRTQ_DESC_F_WRITE : 0) |
                                    (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
            last = i;
            i = dsc->next;              /* the free list doubles as the chain */
        }
        q->free_head = q->desc[last].next;
        q->num_free = (uint16_t)(q->num_free - n);
        q->chain_len[head] = (uint16_t)n;
    }
    q->token[head] = token;
    q->avail->ring[q->avail_idx % q->num] = head;
    vio_mb();                           /* descriptors and ring entry first */
    q->avail_idx++;
    *(volatile uint16_t *)&q->avail->idx = q->avail_idx;
    q->added++;
    return head;
}

int virtq_kick(struct virtq *q)
{
    uint16_t old = q->kicked_idx, new_idx = q->avail_idx;
    if (old == new_idx)
        return 0;
    q->kicked_idx = new_idx;
    vio_mb();                           /* avail->idx before reading the flags */
    int need;
    if (q->dev->event_idx)
        need = vring_need_event(*q->avail_event, new_idx, old);
    else
        need = !(*(volatile uint16_t *)&q->used->flags & VIRTQ_USED_F_NO_NOTIFY);
    if (need) {
        vio_write(q->dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
        q->notifies++;
    } else {
        q->notifies_skipped++;
    }
    return need;
}

int virtq_has_used(struct virtq *q)
{
    return *(volatile uint16_t *)&q->used->idx != q->last_used;
}

int virtq_get(struct virtq *q, uint32_t *len, void **token, int *headp)
{
    uint16_t uidx = *(volatile uint16_t *)&q->used->idx;
    if (uidx == q->last_used)
        return 0;
    if ((uint16_t)(uidx - q->last_used) > q->num) {
        printf("virtio: slot %d queue %u: used idx %u jumps from %u (queue size %u)\n",
               q->dev->slot, q->index, uidx, q->last_used, q->num);
        rvh_check_failed(rvh_check_num, __LINE__, "used ring index");
    }
    vio_mb();                           /* the entry after the index */
    volatile struct virtq_used_elem *e = &q->used->ring[q->last_used % q->num];
    uint32_t id = e->id, l = e->len;
    if (id >= q->num || q->chain_len[id] == 0) {
        printf("virtio: slot %d queue %u: used ring entry %u holds id %u, which "
               "is not an outstanding head\n", q->dev->slot, q->index,
               q->last_used, id);
        rvh_check_failed(rvh_check_num, __LINE__, "used ring id");
    }
    q->last_used++;
    /* free the chain */
    uint16_t n = q->chain_len[id], i = (uint16_t)id;
    for (uint16_t k = 1; k < n; k++)
        i = q->desc[i].next;
    q->desc[i].next = q->free_head;
    q->free_head = (uint16_t)id;
    q->num_free = (uint16_t)(q->num_free + n);
    q->chain_len[id] = 0;
    if (len)
        *len = l;
    if (token)
        *token = q->token[id];
    if (headp)
        *headp = (int)id;
    q->completed++;
    virtq_arm(q);
    return 1;
}

int virtq_wait_any_for(struct virtq **qs, int n, uint64_t ticks)
{
    uint64_t t0 = rdtime();
    enum virtio_wait mode = VIRTIO_WAIT_POLL;
    for (int i = 0; i < n; i++) {
        if (virtq_has_used(qs[i]))
            return 1;
        if (qs[i]->dev->wait > mode)
            mode = qs[i]->dev->wait;
        virtq_arm(qs[i]);
    }
    vio_mb();
    for (;;) {
        if (mode == VIRTIO_WAIT_IRQ)
            csr_clear(sstatus, SSTATUS_SIE_MASK);
        for (int i = 0; i < n; i++)
            if (virtq_has_used(qs[i]))
                return 1;
        uint64_t now = rdtime();
        if (now - t0 > ticks)
            return 0;
        switch (mode) {
        case VIRTIO_WAIT_POLL:
            break;
        case VIRTIO_WAIT_WFI:
            watchdog_arm_by(t0 + ticks + 1);
            wfi();
            virtio_wait_wakeups++;
            virtio_plic_service();
            break;
        case VIRTIO_WAIT_IRQ:
            watchdog_arm_by(t0 + ticks + 1);
            wfi();
            virtio_wait_wakeups++;
            csr_set(sstatus, SSTATUS_SIE_MASK);      /* the interrupt is taken here */
            break;
        }
    }
}

void virtq_wait_any(struct virtq **qs, int n, long check)
{
    if (virtq_wait_any_for(qs, n, VIRTIO_WAIT_TIMEOUT))
        return;
    printf("virtio: timeout waiting for the used ring of slot %d queue %u "
           "(wait mode %s; avail idx %u, used idx %u, InterruptStatus 0x%x, "
           "Status 0x%x, irqs %lu)\n", qs[0]->dev->slot, qs[0]->index,
           virtio_wait_names[qs[0]->dev->wait], qs[0]->avail_idx,
           *(volatile uint16_t *)&qs[0]->used->idx,
           vio_read(qs[0]->dev, VIRTIO_MMIO_INTERRUPT_STATUS),
           vio_read(qs[0]->dev, VIRTIO_MMIO_STATUS), qs[0]->dev->irqs);
    rvh_check_failed(check, __LINE__, "virtq_wait timeout");
}

void virtio_wait_irq(struct virtio_dev *d, unsigned long since, long check)
{
    uint64_t t0 = rdtime();
    while (d->irqs <= since) {
        uint64_t now = rdtime();
        if (now - t0 > VIRTIO_WAIT_TIMEOUT || d->wait == VIRTIO_WAIT_POLL) {
            printf("virtio: slot %d: no interrupt (wait mode %s, InterruptStatus 0x%x, "
                   "PLIC pending 0x%x)\n", d->slot, virtio_wait_names[d->wait],
                   vio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS),
                   mmio_read32(PLIC_PENDING(0)));
            rvh_check_failed(check, __LINE__, "virtio_wait_irq");
        }
        watchdog_arm(now);
        if (d->wait == VIRTIO_WAIT_WFI) {
            wfi();
            virtio_plic_service();
        } else {
            csr_clear(sstatus, SSTATUS_SIE_MASK);
            if (d->irqs > since)
                break;
            wfi();
            csr_set(sstatus, SSTATUS_SIE_MASK);      /* taken here */
            csr_clear(sstatus, SSTATUS_SIE_MASK);
        }
    }
}

void virtq_wait(struct virtq *q, long check)
{
    virtq_wait_any(&q, 1, check);
}

uint32_t virtq_sync(struct virtq *q, const struct vbuf *bufs, unsigned n_out,
                    unsigned n_in, int indirect, long check)
{
    int head = virtq_add(q, bufs, n_out, n_in, 0, indirect);
    if (head < 0)
        rvh_check_failed(check, __LINE__, "virtq_add: queue full");
    virtq_kick(q);
    uint32_t len;
    int h;
    for (;;) {
        virtq_wait(q, check);
        if (!virtq_get(q, &len, 0, &h))
            continue;
        if (h != head) {
            printf("virtio: completion of head %d while waiting for %d\n", h, head);
            rvh_check_failed(check, __LINE__, "virtq_sync: other head");
        }
        return len;
    }
}

/* ------------------------------------------------------------------ */
/* helpers                                                            */

static uint32_t crc_table[256];

uint32_t crc32_update(uint32_t crc, const void *buf, unsigned long len)
{
    if (!crc_table[1]) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
    }
    const uint8_t *p = buf;
    crc = ~crc;
    while (len--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

void print_rate(uint64_t amount, uint64_t ticks, const char *unit)
{
    if (!ticks)
        ticks = 1;
    /* amount per second = amount * 1e7 / ticks; in units of 1e6 with 2 decimals */
    uint64_t centi = amount * 1000 / ticks;     /* (amount / 1e6) * 100 per s */
    if (amount > (~0ULL) / 1000)
        centi = amount / ticks * 1000;
    printf("%lu.%02lu %s", (unsigned long)(centi / 100), (unsigned long)(centi % 100),
           unit);
}

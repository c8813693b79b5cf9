/*
 * passthrough.c - a machine virtio-mmio device assigned to one VM (io=passthrough, hw mode).
 *
 * The device's register page is mapped into the VM's G-stage at the VM's slot address (read
 * and write, never execute), so the VM's driver talks to the device with no exit at all; its DMA
 * goes through the IOMMU with the VM's G-stage table as its second stage (iommu.c), so the
 * addresses the VM programs are guest-physical and nothing outside the VM's RAM is reachable.
 *
 * Its interrupt: the hypervisor claims the machine PLIC source and makes the VM's source
 * pending, and completes the machine source only when the VM's driver completes its own.  So
 * the VM's PLIC behaves as the machine's does for a level-triggered source (PLIC 1.0.0): the
 * request is latched until claimed, nothing new is signalled while it is in service, and a line
 * still high at the completion makes the source pending again (the machine PLIC re-pends it and
 * the hypervisor passes it on).  What it costs the hypervisor: the claim, and the completion
 * when the VM's completion exits; it never reads the device's registers.
 */
#include "vio.h"
#include "rvh/libc.h"

#define PTE_MMIO (PTE_V_MASK | PTE_R_MASK | PTE_W_MASK | PTE_U_MASK | PTE_A_MASK | PTE_D_MASK)

static struct pt_dev assigned[VIRTIO_SLOTS];
static unsigned assigned_count;

unsigned long iommu_vm_iohgatp(const struct vm *vm);

static unsigned long *next_level(unsigned long *entry)
{
    if (!(*entry & PTE_V_MASK)) {
        unsigned long *table = hyp_alloc_pages(4096, 4096);
        *entry = ((unsigned long)table >> 12) << PTE_PPN_SHIFT | PTE_V_MASK;
    }
    if (*entry & (PTE_R_MASK | PTE_W_MASK | PTE_X_MASK))
        return 0;                                   /* a leaf there already: RAM, not MMIO */
    return (unsigned long *)((*entry >> PTE_PPN_SHIFT) << 12);
}

/* Map one 4 KiB page of device registers into the VM's Sv39x4 table (8.5). */
static int map_mmio_page(struct vm *vm, unsigned long gpa, unsigned long hpa)
{
    unsigned long *level1 = next_level(&vm->gstage_root[(gpa >> 30) & 0x7ff]);
    unsigned long *level0 = level1 ? next_level(&level1[(gpa >> 21) & 0x1ff]) : 0;
    if (!level0)
        return -1;
    level0[(gpa >> 12) & 0x1ff] = (hpa >> 12) << PTE_PPN_SHIFT | PTE_MMIO;
    return 0;
}

static volatile uint32_t *device_reg(const struct pt_dev *d, unsigned offset)
{
    return (volatile uint32_t *)(VIRTIO_BASE + VIRTIO_SIZE * (unsigned long)d->machine_slot + offset);
}

int pt_assign(struct vm *vm, unsigned vm_slot, unsigned machine_slot)
{
    struct pt_dev *d = &assigned[assigned_count];
    d->vm = vm;
    d->vm_slot = vm_slot;
    d->machine_slot = machine_slot;
    if (*device_reg(d, VIRTIO_MMIO_MAGIC_VALUE) != VIRTIO_MMIO_MAGIC) {
        printf("hyp: %s: machine virtio slot %u: no device to assign\n", vm->name, machine_slot);
        return -1;
    }
    *device_reg(d, VIRTIO_MMIO_STATUS) = 0;        /* the VM gets it reset */
    if (map_mmio_page(vm, VIRTIO_BASE + VIRTIO_SIZE * (unsigned long)vm_slot,
                      VIRTIO_BASE + VIRTIO_SIZE * (unsigned long)machine_slot) < 0) {
        printf("hyp: %s: cannot map virtio slot %u\n", vm->name, vm_slot);
        return -1;
    }
    iommu_set_context(machine_slot, iommu_vm_iohgatp(vm));
    plic_enable(VIRTIO_IRQ_BASE + machine_slot);
    assigned_count++;
    return 0;
}

struct vm *pt_vm_of_device(unsigned device_id)
{
    for (unsigned i = 0; i < assigned_count; i++)
        if (assigned[i].machine_slot == device_id)
            return assigned[i].vm;
    return 0;
}

int pt_busy(void)
{
    for (unsigned i = 0; i < assigned_count; i++)
        if (assigned[i].vm->state == VM_RUNNING)
            return 1;
    return 0;
}

int pt_owns_irq(unsigned irq)
{
    for (unsigned i = 0; i < assigned_count; i++)
        if (VIRTIO_IRQ_BASE + assigned[i].machine_slot == irq)
            return 1;
    return 0;
}

/* The VM completed its PLIC source irq (one it had claimed): end the machine source's service.
 * A device line still high makes the machine source pending again, and pt_interrupt passes that
 * on, as the completion of a level-triggered source does natively. */
void pt_completed(struct vm *vm, unsigned irq)
{
    for (unsigned i = 0; i < assigned_count; i++) {
        struct pt_dev *d = &assigned[i];
        if (d->vm != vm || VIRTIO_IRQ_BASE + d->vm_slot != irq || !d->in_service)
            continue;
        d->in_service = 0;
        plic_complete(VIRTIO_IRQ_BASE + d->machine_slot);
    }
}

/* The machine PLIC gave the hypervisor an assigned device's interrupt (claimed, not completed:
 * the source stays in service until the VM completes it). */
void pt_interrupt(unsigned irq)
{
    for (unsigned i = 0; i < assigned_count; i++) {
        struct pt_dev *d = &assigned[i];
        if (VIRTIO_IRQ_BASE + d->machine_slot != irq)
            continue;
        if (d->vm->state != VM_RUNNING) {
            /* its VM is gone: quiet the device for good (reset, source masked) */
            *device_reg(d, VIRTIO_MMIO_STATUS) = 0;
            plic_complete(irq);
            plic_disable(irq);
            continue;
        }
        d->in_service = 1;
        d->vm->stats[HYP_STAT_IO_IRQS]++;
        vplic_pulse(d->vm, VIRTIO_IRQ_BASE + d->vm_slot);
    }
}

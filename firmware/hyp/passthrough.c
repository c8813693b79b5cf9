/*
 * passthrough.c - a machine virtio-mmio device assigned to one VM (io=passthrough, hw mode).
 *
 * The device's register page is mapped into the VM's G-stage at the VM's slot address (read
 * and write, never execute), so the VM's driver talks to the device with no exit at all; its DMA
 * goes through the IOMMU with the VM's G-stage table as its second stage (iommu.c), so the
 * addresses the VM programs are guest-physical and nothing outside the VM's RAM is reachable.
 *
 * Its interrupt: the machine PLIC source is claimed by the hypervisor, masked and completed, and
 * the VM's PLIC gets the device's line (its InterruptStatus != 0, read from the device); the
 * source is unmasked once the VM's driver has acknowledged the device, which the hypervisor
 * sees at the VM's next PLIC access (its claim, completion, pending read or enable).
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

void pt_refresh(struct vm *vm)
{
    for (unsigned i = 0; i < assigned_count; i++) {
        struct pt_dev *d = &assigned[i];
        /* unmasked, the VM's source is low and a rise of the line is a machine interrupt: only
         * a masked source needs the device read (one MMIO access less per PLIC exit) */
        if (d->vm != vm || !d->masked)
            continue;
        int line = *device_reg(d, VIRTIO_MMIO_INTERRUPT_STATUS) != 0;
        vplic_set_level(vm, VIRTIO_IRQ_BASE + d->vm_slot, line);
        if (!line && d->masked) {
            d->masked = 0;
            plic_enable(VIRTIO_IRQ_BASE + d->machine_slot);
        }
    }
}

/* The machine PLIC gave the hypervisor an assigned device's interrupt (claimed and completed). */
void pt_interrupt(unsigned irq)
{
    for (unsigned i = 0; i < assigned_count; i++) {
        struct pt_dev *d = &assigned[i];
        if (VIRTIO_IRQ_BASE + d->machine_slot != irq)
            continue;
        plic_disable(irq);
        d->masked = 1;                  /* (the VM's source is high only while masked) */
        if (d->vm->state != VM_RUNNING) {
            /* its VM is gone: quiet the device for good (reset, source left masked) */
            *device_reg(d, VIRTIO_MMIO_STATUS) = 0;
            continue;
        }
        d->vm->stats[HYP_STAT_IO_IRQS]++;
        pt_refresh(d->vm);
    }
}

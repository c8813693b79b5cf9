/*
 * iommu.c - the hypervisor's driver for the machine's RISC-V IOMMU (the RISC-V IOMMU
 * Architecture Specification 1.0), which confines the DMA of devices assigned to VMs.
 *
 * A one-level device directory (device_id = the machine virtio slot, 3.1.1), base-format device
 * contexts (3.1.3): an assigned device's iohgatp is its VM's own G-stage table (Sv39x4, the
 * GSCID its VMID), so the device sees exactly the VM's guest-physical memory and nothing else;
 * the devices the hypervisor drives itself get a Bare iohgatp.  Changes go through the command
 * queue (IODIR.INVAL_DDT, then IOFENCE.C, 4.1) and the faults come back through the fault
 * queue (4.2) and its wired interrupt: each is counted for the VM whose device it was and
 * reported on the console.
 */
#include "vio.h"
#include "rvh/libc.h"

#define REG64(offset)   ((volatile uint64_t *)(IOMMU_BASE + (offset)))
#define REG32(offset)   ((volatile uint32_t *)(IOMMU_BASE + (offset)))
#define CAPABILITIES    0x00
#define DDTP            0x10
#define CQB             0x18
#define CQH             0x20
#define CQT             0x24
#define FQB             0x28
#define FQH             0x30
#define FQT             0x34
#define CQCSR           0x48
#define FQCSR           0x4c
#define IPSR            0x54
#define ICVEC           0x2f8
#define CQ_ENTRIES_LOG2 8               /* 256 commands of 16 bytes: one page */
#define FQ_ENTRIES_LOG2 7               /* 128 records of 32 bytes: one page */
#define DDTP_1LVL       2
#define CQEN            1u
#define CQON            (1u << 16)
#define FQEN            1u
#define FIE             2u
#define FQON            (1u << 16)
#define IPSR_FIP        2u
#define TC_V            1UL
#define IOHGATP_SV39X4  8UL

static uint64_t *directory, *commands, *faults;
static int present;

static void command(uint64_t low, uint64_t high)
{
    uint32_t tail = *REG32(CQT);
    commands[2 * tail] = low;
    commands[2 * tail + 1] = high;
    __asm__ __volatile__("fence w, o" ::: "memory");    /* the command before the tail */
    *REG32(CQT) = (tail + 1) % (1u << CQ_ENTRIES_LOG2);
}

/* Wait for the IOMMU to have executed every queued command (IOFENCE.C, 4.1.3). */
static void command_fence(void)
{
    command(2 /* IOFENCE */ | 0 << 7 /* .C */, 0);
    while (*REG32(CQH) != *REG32(CQT))
        ;
}

int iommu_init(void)
{
    uint64_t caps = *REG64(CAPABILITIES);
    if ((caps & 0xff) != 0x10 || !(caps >> 17 & 1)) {
        printf("hyp: io=passthrough needs a RISC-V IOMMU 1.0 with Sv39x4 at 0x%lx (found "
               "capabilities 0x%lx)\n", (unsigned long)IOMMU_BASE, (unsigned long)caps);
        return -1;
    }
    directory = hyp_alloc_pages(4096, 4096);
    commands = hyp_alloc_pages(4096, 4096);
    faults = hyp_alloc_pages(4096, 4096);
    *REG64(FQB) = ((unsigned long)faults >> 12) << 10 | (FQ_ENTRIES_LOG2 - 1);
    *REG32(FQCSR) = FQEN | FIE;
    *REG64(CQB) = ((unsigned long)commands >> 12) << 10 | (CQ_ENTRIES_LOG2 - 1);
    *REG32(CQCSR) = CQEN;
    while (!(*REG32(CQCSR) & CQON) || !(*REG32(FQCSR) & FQON))
        ;
    *REG32(ICVEC) = IOMMU_FAULT_VECTOR << 4;            /* civ 0, fiv 1 */
    *REG64(DDTP) = ((unsigned long)directory >> 12) << 10 | DDTP_1LVL;
    plic_enable(IOMMU_IRQ_BASE + IOMMU_FAULT_VECTOR);
    present = 1;
    return 0;
}

/* Device `device_id`'s context: valid, no first stage, the given iohgatp (0: Bare). */
void iommu_set_context(unsigned device_id, unsigned long iohgatp)
{
    uint64_t *context = directory + 4 * device_id;      /* 32 bytes each */
    context[1] = iohgatp;
    context[2] = 0;
    context[3] = 0;
    __asm__ __volatile__("fence w, w" ::: "memory");
    context[0] = TC_V;
    __asm__ __volatile__("fence w, o" ::: "memory");
    command(3 /* IODIR */ | 0 << 7 /* INVAL_DDT */ | 1UL << 33 /* DV */ | (uint64_t)device_id << 40, 0);
    command_fence();
}

unsigned long iommu_vm_iohgatp(const struct vm *vm);
unsigned long iommu_vm_iohgatp(const struct vm *vm)
{
    return IOHGATP_SV39X4 << 60 | (unsigned long)vm->vmid << 44 | (unsigned long)vm->gstage_root >> 12;
}

void iommu_fault_interrupt(void)
{
    if (!present)
        return;
    uint32_t head = *REG32(FQH), tail = *REG32(FQT);
    while (head != tail) {
        const uint64_t *record = faults + 4 * head;
        unsigned cause = record[0] & 0xfff, device_id = record[0] >> 40;
        struct vm *vm = pt_vm_of_device(device_id);
        if (vm)
            vm->stats[HYP_STAT_IOMMU_FAULTS]++;
        printf("hyp: %s: iommu: DMA of the device in machine slot %u refused (cause %u) at "
               "guest-physical 0x%lx\n", vm ? vm->name : "no VM", device_id, cause,
               (unsigned long)record[2]);
        head = (head + 1) % (1u << FQ_ENTRIES_LOG2);
    }
    *REG32(FQH) = head;
    *REG32(IPSR) = IPSR_FIP;                            /* RW1C */
}

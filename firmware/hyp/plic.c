/*
 * plic.c - the hypervisor's driver for the machine PLIC (the RISC-V PLIC specification 1.0.0):
 * the interrupts of the machine virtio devices it drives for its VMs reach it as supervisor
 * external interrupts in its own S-mode context (2 * hartid + 1 on QEMU's virt board).
 */
#include "vio.h"

static unsigned long context;

static volatile uint32_t *plic_reg(unsigned long offset)
{
    return (volatile uint32_t *)(PLIC_BASE + offset);
}

void plic_init(unsigned long hartid)
{
    context = 2 * hartid + 1;
    *plic_reg(PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * context + PLIC_THRESHOLD) = 0;
}

void plic_enable(unsigned irq)
{
    *plic_reg(PLIC_PRIORITY_BASE + 4UL * irq) = 1;
    volatile uint32_t *enable =
        plic_reg(PLIC_ENABLE_BASE + PLIC_ENABLE_STRIDE * context + 4UL * (irq / 32));
    *enable |= 1u << (irq % 32);
}

unsigned plic_claim(void)
{
    return *plic_reg(PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * context + PLIC_CLAIM_COMPLETE);
}

void plic_complete(unsigned irq)
{
    *plic_reg(PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * context + PLIC_CLAIM_COMPLETE) = irq;
}

void plic_disable(unsigned irq)
{
    volatile uint32_t *enable =
        plic_reg(PLIC_ENABLE_BASE + PLIC_ENABLE_STRIDE * context + 4UL * (irq / 32));
    *enable &= ~(1u << (irq % 32));
}

/*
 * mmio.c - a trapped guest load or store: decode it (insn.c's job in KVM's split, kept here as
 * it is small) and route it to the VM's virtual device at that guest-physical address.
 *
 * The instruction comes from htinst when the hart provides it (hw mode; 8.6.3: a transformed
 * instruction, bit 0 set, bit 1 telling a 32-bit original from a compressed one), else it is
 * fetched from the guest's pc through the guest's own translation (the mode's guest_load:
 * HLVX.HU in hw mode, a walk of the guest's tables in trap mode).
 *
 * The VM's board follows QEMU's virt machine: the test device (syscon) at 0x10_0000 and a
 * 16550A UART at 0x1000_0000.
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "vio.h"


struct access {
    int is_store, width, is_signed, reg, length;
};

/* Loads and stores only; AMOs and LR/SC to devices are refused (an access fault). */
static int decode_32(uint32_t insn, struct access *a)
{
    unsigned funct3 = (insn >> 12) & 7;
    a->length = 4;
    if ((insn & 0x7f) == 0x03) {
        if (funct3 == 7)
            return -1;
        a->is_store = 0;
        a->width = 1 << (funct3 & 3);
        a->is_signed = !(funct3 & 4);
        a->reg = (insn >> 7) & 31;
        return 0;
    }
    if ((insn & 0x7f) == 0x23 && funct3 < 4) {
        a->is_store = 1;
        a->width = 1 << funct3;
        a->reg = (insn >> 20) & 31;
        return 0;
    }
    return -1;
}

/* The compressed loads and stores of RV64C (the unprivileged spec's chapter 16). */
static int decode_16(uint32_t insn, struct access *a)
{
    unsigned op = insn & 3, funct3 = (insn >> 13) & 7;
    a->length = 2;
    a->is_signed = 1;
    if (op == 0 && (funct3 == 2 || funct3 == 3 || funct3 == 6 || funct3 == 7)) {
        a->is_store = funct3 >= 6;          /* c.sw, c.sd; else c.lw, c.ld */
        a->width = (funct3 & 1) ? 8 : 4;
        a->reg = 8 + ((insn >> 2) & 7);
        return 0;
    }
    if (op == 2 && (funct3 == 2 || funct3 == 3)) {      /* c.lwsp, c.ldsp */
        a->is_store = 0;
        a->width = funct3 == 3 ? 8 : 4;
        a->reg = (insn >> 7) & 31;
        return 0;
    }
    if (op == 2 && (funct3 == 6 || funct3 == 7)) {      /* c.swsp, c.sdsp */
        a->is_store = 1;
        a->width = funct3 == 7 ? 8 : 4;
        a->reg = (insn >> 2) & 31;
        return 0;
    }
    return -1;
}

static int decode_access(struct vcpu *vcpu, unsigned long tinst, struct access *a)
{
    if (tinst & 1) {                        /* transformed: bit 1 = original was 32-bit */
        int rc = decode_32((uint32_t)(tinst | 2), a);
        a->length = (tinst & 2) ? 4 : 2;
        return rc;
    }
    if (tinst != 0)
        return -1;                          /* a pseudoinstruction: an implicit (page-walk) access */
    uint32_t insn = vcpu_fetch_insn(vcpu, vcpu->regs.sepc);
    if (insn == 0)
        return -1;
    return (insn & 3) != 3 ? decode_16(insn, a) : decode_32(insn, a);
}

/* ---- the test device (QEMU's sifive_test): poweroff, fail with a code, reset ---- */

static int syscon_access(struct vm *vm, unsigned long offset, struct access *a, unsigned long *value)
{
    if (!a->is_store) {
        *value = 0;
        return 0;
    }
    if (offset != 0 || a->width < 4)
        return 0;
    unsigned code = *value & 0xffff;
    if (code == TEST_FINISHER_PASS)
        vm_shutdown(vm, 0, "poweroff");
    else if (code == TEST_FINISHER_FAIL)
        vm_shutdown(vm, (*value >> 16 & 0xffff) ? (long)(*value >> 16 & 0xffff) : 1, "failure");
    else if (code == TEST_FINISHER_RESET)
        vm_shutdown(vm, 0, "reset");
    return 0;
}

/* ---- the 16550A UART (register offsets and bits: rvh/devices/uart16550.py, via the header) ---- */
static int uart_access(struct vm *vm, unsigned long offset, struct access *a, unsigned long *value)
{
    int dlab = vm->uart_lcr & UART_LCR_DLAB;
    uint8_t byte = (uint8_t)*value;
    if (offset > UART_SCR)
        return -1;
    if (a->is_store) {
        switch (offset) {
        case UART_RBR_THR_DLL:
            if (dlab)
                vm->uart_dll = byte;
            else
                vm_console_putc(vm, byte);
            break;
        case UART_IER_DLM:
            if (dlab)
                vm->uart_dlm = byte;
            else
                vm->uart_ier = byte & 0x0f;
            break;
        case UART_IIR_FCR: vm->uart_fcr = byte; break;
        case UART_LCR: vm->uart_lcr = byte; break;
        case UART_MCR: vm->uart_mcr = byte & 0x1f; break;
        case UART_SCR: vm->uart_scr = byte; break;
        default: break;     /* LSR, MSR: read-only */
        }
        return 0;
    }
    switch (offset) {
    case UART_RBR_THR_DLL: *value = dlab ? vm->uart_dll : 0; break;    /* no input yet */
    case UART_IER_DLM: *value = dlab ? vm->uart_dlm : vm->uart_ier; break;
    case UART_IIR_FCR: *value = (vm->uart_fcr & 1 ? UART_IIR_FIFO_ENABLED : 0) | UART_IIR_NONE; break;
    case UART_LCR: *value = vm->uart_lcr; break;
    case UART_MCR: *value = vm->uart_mcr; break;
    case UART_LSR: *value = UART_LSR_THR_EMPTY | UART_LSR_TRANSMITTER_EMPTY; break;
    case UART_MSR: *value = 0xb0; break;    /* CTS, DSR, DCD */
    default: *value = vm->uart_scr; break;
    }
    return 0;
}

/* ---- virtual I/O (vio.h): the VM's virtio-mmio slots and its PLIC ---- */
static int virtio_access(struct vm *vm, unsigned long offset, struct access *a, unsigned long *value)
{
    return vio_virtio_access(vm, offset, a->is_store, a->width, value);
}

static int plic_access(struct vm *vm, unsigned long offset, struct access *a, unsigned long *value)
{
    return vio_plic_access(vm, offset, a->is_store, a->width, value);
}

struct device {
    unsigned long base, size;
    int (*access)(struct vm *vm, unsigned long offset, struct access *a, unsigned long *value);
};

static const struct device devices[] = {
    {TEST_BASE, TEST_SIZE, syscon_access},
    {UART0_BASE, UART0_SIZE, uart_access},
    {VIRTIO_BASE, VIRTIO_SIZE * VIRTIO_SLOTS, virtio_access},
    {PLIC_BASE, PLIC_SIZE, plic_access},
};

int mmio_emulate(struct vcpu *vcpu, unsigned long gpa, int is_store, unsigned long tinst)
{
    struct access a;
    if (decode_access(vcpu, tinst, &a) < 0)
        return -1;
    if (a.is_store != is_store)
        return -1;
    for (unsigned i = 0; i < sizeof(devices) / sizeof(devices[0]); i++) {
        const struct device *d = &devices[i];
        if (gpa < d->base || gpa - d->base >= d->size)
            continue;
        unsigned long value = a.is_store ? (a.reg ? vcpu->regs.x[a.reg] : 0) : 0;
        if (d->access(vcpu->vm, gpa - d->base, &a, &value) < 0)
            return -1;
        if (!a.is_store && a.reg) {
            int shift = 64 - 8 * a.width;
            value = a.is_signed ? (unsigned long)((long)(value << shift) >> shift)
                                : (shift ? value << shift >> shift : value);
            vcpu->regs.x[a.reg] = value;
        }
        vcpu->regs.sepc += (unsigned long)a.length;
        return 0;
    }
    return -1;
}

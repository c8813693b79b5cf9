/*
 * mmio.c - a trapped guest load or store: decode it (insn.c's job in KVM's split, kept here as
 * it is small) and route it to the VM's virtual device at that guest-physical address.
 *
 * The instruction comes from htinst when the hart provides it (hw mode; 8.6.3: a transformed
 * instruction, bit 0 set, bit 1 telling a 32-bit original from a compressed one), else it is
 * fetched from the guest's pc through the guest's own translation (the mode's guest_load:
 * HLVX.HU in hw mode, a walk of the guest's tables in trap mode).
 *
 * The VM's board follows QEMU's virt machine: the test device (syscon) at 0x10_0000, the
 * goldfish RTC at 0x10_1000 and a 16550A UART at 0x1000_0000.
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

/* ---- the 16550A UART (register offsets and bits: rvh/devices/uart16550.py, via the header) ----
 * Output leaves at once, so the transmitter is always empty; its interrupt (THR empty, PLIC
 * source UART0_IRQ) is what an interrupt-driven driver such as Linux's 8250 waits for before it
 * writes more.  As on a 16550, it is pending after each write of THR and when IER enables it,
 * and a read of IIR that reports it clears it. */
static uint8_t uart_thre_pending[HYP_MAX_VMS];

static void uart_update_irq(struct vm *vm)
{
    vplic_set_level(vm, UART0_IRQ, (vm->uart_ier & UART_IER_THR_EMPTY) && uart_thre_pending[vm->id]);
}

static int uart_access(struct vm *vm, unsigned long offset, struct access *a, unsigned long *value)
{
    int dlab = vm->uart_lcr & UART_LCR_DLAB;
    uint8_t byte = (uint8_t)*value;
    if (offset > UART_SCR)
        return -1;
    if (a->is_store) {
        switch (offset) {
        case UART_RBR_THR_DLL:
            if (dlab) {
                vm->uart_dll = byte;
            } else {
                vm_console_putc(vm, byte);
                uart_thre_pending[vm->id] = 1;
                uart_update_irq(vm);
            }
            break;
        case UART_IER_DLM:
            if (dlab) {
                vm->uart_dlm = byte;
            } else {
                if ((byte & UART_IER_THR_EMPTY) && !(vm->uart_ier & UART_IER_THR_EMPTY))
                    uart_thre_pending[vm->id] = 1;
                vm->uart_ier = byte & 0x0f;
                uart_update_irq(vm);
            }
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
    case UART_IIR_FCR:
        *value = vm->uart_fcr & 1 ? UART_IIR_FIFO_ENABLED : 0;
        if ((vm->uart_ier & UART_IER_THR_EMPTY) && uart_thre_pending[vm->id]) {
            *value |= UART_IIR_THR_EMPTY;
            uart_thre_pending[vm->id] = 0;
            uart_update_irq(vm);
        } else {
            *value |= UART_IIR_NONE;
        }
        break;
    case UART_LCR: *value = vm->uart_lcr; break;
    case UART_MCR: *value = vm->uart_mcr; break;
    case UART_LSR: *value = UART_LSR_THR_EMPTY | UART_LSR_TRANSMITTER_EMPTY; break;
    case UART_MSR: *value = 0xb0; break;    /* CTS, DSR, DCD */
    default: *value = vm->uart_scr; break;
    }
    return 0;
}

/* ---- the goldfish RTC (registers: rvh/devices/goldfish_rtc.py, via the header) ----
 * Each VM's clock is the machine's RTC (read through to it) plus the VM's own offset, which its
 * writes of the time move, so one VM setting its clock changes nobody else's.  The alarm is the
 * VM's: it fires when the VM next touches the device after its time (as rvh's model does),
 * raising the VM's PLIC source RTC_IRQ while IRQ_ENABLED. */
struct vrtc {
    uint64_t offset_ns, alarm_ns;
    uint32_t time_high_latch, time_high_written, alarm_high_written;
    uint8_t alarm_armed, irq_enabled, irq_pending;
};

static struct vrtc vrtcs[HYP_MAX_VMS];

static uint64_t rtc_now(const struct vrtc *r)
{
    volatile uint32_t *host = (volatile uint32_t *)RTC_BASE;
    uint32_t low = host[GOLDFISH_RTC_TIME_LOW / 4];     /* latches the host's high half */
    uint64_t high = host[GOLDFISH_RTC_TIME_HIGH / 4];
    return (high << 32 | low) + r->offset_ns;
}

static void rtc_poll(struct vm *vm, struct vrtc *r)
{
    if (r->alarm_armed && rtc_now(r) >= r->alarm_ns) {
        r->alarm_armed = 0;
        r->irq_pending = 1;
        if (r->irq_enabled)
            vplic_set_level(vm, RTC_IRQ, 1);
    }
}

static int rtc_access(struct vm *vm, unsigned long offset, struct access *a, unsigned long *value)
{
    struct vrtc *r = &vrtcs[vm->id];
    uint32_t v = (uint32_t)*value;
    rtc_poll(vm, r);
    if (!a->is_store) {
        uint64_t now;
        switch (offset) {
        case GOLDFISH_RTC_TIME_LOW:
            now = rtc_now(r);
            r->time_high_latch = (uint32_t)(now >> 32);
            *value = (uint32_t)now;
            break;
        case GOLDFISH_RTC_TIME_HIGH: *value = r->time_high_latch; break;
        case GOLDFISH_RTC_IRQ_ENABLED: *value = r->irq_enabled; break;
        case GOLDFISH_RTC_ALARM_STATUS: *value = r->alarm_armed; break;
        default: *value = 0; break;
        }
        return 0;
    }
    switch (offset) {
    case GOLDFISH_RTC_TIME_LOW:
        r->offset_ns += ((uint64_t)r->time_high_written << 32 | v) - rtc_now(r);
        break;
    case GOLDFISH_RTC_TIME_HIGH: r->time_high_written = v; break;
    case GOLDFISH_RTC_ALARM_LOW:
        r->alarm_ns = (uint64_t)r->alarm_high_written << 32 | v;
        r->alarm_armed = 1;
        break;
    case GOLDFISH_RTC_ALARM_HIGH: r->alarm_high_written = v; break;
    case GOLDFISH_RTC_IRQ_ENABLED:
        r->irq_enabled = v & 1;
        vplic_set_level(vm, RTC_IRQ, r->irq_enabled && r->irq_pending);
        break;
    case GOLDFISH_RTC_CLEAR_ALARM: r->alarm_armed = 0; break;
    case GOLDFISH_RTC_CLEAR_INTERRUPT:
        r->irq_pending = 0;
        vplic_set_level(vm, RTC_IRQ, 0);
        break;
    default: break;
    }
    rtc_poll(vm, r);
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
    {RTC_BASE, RTC_SIZE, rtc_access},
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

/*
 * rvh_hw.h - board constants and inline hardware helpers for rvh guests.
 * No libc declarations here (usable together with picolibc's headers).
 */
#ifndef RVH_HW_H
#define RVH_HW_H

#include <stdint.h>

/* ---- board (QEMU virt compatible) ---- */
#define RAM_BASE        0x80000000UL
#define RAM_SIZE        (256UL << 20)

#define UART_BASE       0x10000000UL    /* 16550A */
#define UART_THR        0               /* transmit holding register */
#define UART_LSR        5               /* line status register */
#define UART_LSR_THRE   0x20            /* THR empty */

#define SYSCON_BASE     0x100000UL      /* sifive_test device */
#define SYSCON_PASS     0x5555
#define SYSCON_FAIL     0x3333

#define CLINT_BASE      0x2000000UL
#define CLINT_MSIP(h)   (CLINT_BASE + 4UL * (h))
#define CLINT_MTIMECMP(h) (CLINT_BASE + 0x4000UL + 8UL * (h))
#define CLINT_MTIME     (CLINT_BASE + 0xbff8UL)
#define CLINT_FREQ_HZ   10000000UL      /* mtime ticks per second */

/* ---- MMIO ---- */
#define mmio_read8(a)      (*(volatile uint8_t  *)(uintptr_t)(a))
#define mmio_read32(a)     (*(volatile uint32_t *)(uintptr_t)(a))
#define mmio_read64(a)     (*(volatile uint64_t *)(uintptr_t)(a))
#define mmio_write8(a, v)  (*(volatile uint8_t  *)(uintptr_t)(a) = (uint8_t)(v))
#define mmio_write32(a, v) (*(volatile uint32_t *)(uintptr_t)(a) = (uint32_t)(v))
#define mmio_write64(a, v) (*(volatile uint64_t *)(uintptr_t)(a) = (uint64_t)(v))

/* ---- CSRs: name is a CSR name or number, e.g. csr_read(mstatus) ---- */
#define csr_read(csr) ({                                                \
    unsigned long __v;                                                  \
    __asm__ __volatile__("csrr %0, " #csr : "=r"(__v) :: "memory");     \
    __v; })
#define csr_write(csr, val) ({                                          \
    unsigned long __v = (unsigned long)(val);                           \
    __asm__ __volatile__("csrw " #csr ", %0" :: "r"(__v) : "memory"); })
#define csr_swap(csr, val) ({                                           \
    unsigned long __v = (unsigned long)(val);                           \
    __asm__ __volatile__("csrrw %0, " #csr ", %1"                       \
                         : "=r"(__v) : "r"(__v) : "memory");            \
    __v; })
#define csr_set(csr, val) ({                                            \
    unsigned long __v = (unsigned long)(val);                           \
    __asm__ __volatile__("csrs " #csr ", %0" :: "r"(__v) : "memory"); })
#define csr_clear(csr, val) ({                                          \
    unsigned long __v = (unsigned long)(val);                           \
    __asm__ __volatile__("csrc " #csr ", %0" :: "r"(__v) : "memory"); })
#define csr_read_set(csr, val) ({                                       \
    unsigned long __v = (unsigned long)(val);                           \
    __asm__ __volatile__("csrrs %0, " #csr ", %1"                       \
                         : "=r"(__v) : "r"(__v) : "memory");            \
    __v; })
#define csr_read_clear(csr, val) ({                                     \
    unsigned long __v = (unsigned long)(val);                           \
    __asm__ __volatile__("csrrc %0, " #csr ", %1"                       \
                         : "=r"(__v) : "r"(__v) : "memory");            \
    __v; })

/* mstatus / mie / mip bits */
#define MSTATUS_MIE     (1UL << 3)
#define MSTATUS_MPIE    (1UL << 7)
#define MSTATUS_MPP     (3UL << 11)
#define MIP_MSIP        (1UL << 3)
#define MIP_MTIP        (1UL << 7)
#define MIP_MEIP        (1UL << 11)
#define MCAUSE_INTR     (1UL << 63)

static inline void wfi(void) { __asm__ __volatile__("wfi" ::: "memory"); }
static inline void fence(void) { __asm__ __volatile__("fence" ::: "memory"); }

/* ---- CLINT ---- */
static inline uint64_t clint_mtime(void) { return mmio_read64(CLINT_MTIME); }
static inline void clint_set_mtimecmp(unsigned hart, uint64_t v)
{
    mmio_write64(CLINT_MTIMECMP(hart), v);
}
static inline uint64_t clint_get_mtimecmp(unsigned hart)
{
    return mmio_read64(CLINT_MTIMECMP(hart));
}
static inline void clint_set_msip(unsigned hart, uint32_t v)
{
    mmio_write32(CLINT_MSIP(hart), v);
}
static inline uint32_t clint_get_msip(unsigned hart)
{
    return mmio_read32(CLINT_MSIP(hart));
}

/* ---- UART / syscon (no libc) ---- */
static inline void uart_putc(char c)
{
    while (!(mmio_read8(UART_BASE + UART_LSR) & UART_LSR_THRE))
        ;
    mmio_write8(UART_BASE + UART_THR, c);
}

/* start.S: exit via the syscon (0 = pass, else fail with that code) */
void rvh_exit(int code) __attribute__((noreturn));

#endif /* RVH_HW_H */

/*
 * rvh/hw.h - the board's devices for firmware and guests: MMIO accessors, the CLINT, the UART
 * and the test device, at the addresses of rvh/config.py (through rvh/encoding.h).
 * No libc declarations here (usable together with picolibc's headers).
 */
#ifndef RVH_HW_H
#define RVH_HW_H

#include <stdint.h>
#include "rvh/encoding.h"
#include "rvh/csr.h"

#define mmio_read8(a)      (*(volatile uint8_t  *)(uintptr_t)(a))
#define mmio_read32(a)     (*(volatile uint32_t *)(uintptr_t)(a))
#define mmio_read64(a)     (*(volatile uint64_t *)(uintptr_t)(a))
#define mmio_write8(a, v)  (*(volatile uint8_t  *)(uintptr_t)(a) = (uint8_t)(v))
#define mmio_write32(a, v) (*(volatile uint32_t *)(uintptr_t)(a) = (uint32_t)(v))
#define mmio_write64(a, v) (*(volatile uint64_t *)(uintptr_t)(a) = (uint64_t)(v))

/* CLINT registers: msip is a u32 per hart, mtimecmp a u64 per hart, one u64 mtime */
#define CLINT_MSIP(hart)     (CLINT_BASE + CLINT_MSIP_OFFSET + 4UL * (hart))
#define CLINT_MTIMECMP(hart) (CLINT_BASE + CLINT_MTIMECMP_OFFSET + 8UL * (hart))
#define CLINT_MTIME          (CLINT_BASE + CLINT_MTIME_OFFSET)

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

/* UART0 (16550A, one byte per register): wait for THR empty, then write */
static inline void uart_putc(char c)
{
    while (!(mmio_read8(UART0_BASE + UART_LSR) & UART_LSR_THR_EMPTY))
        ;
    mmio_write8(UART0_BASE + UART_RBR_THR_DLL, c);
}

/* start.S / sstart.S: end the run; 0 = pass, else fail with that status */
void rvh_exit(int code) __attribute__((noreturn));

#endif /* RVH_HW_H */

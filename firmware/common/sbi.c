/*
 * sbi.c - SBI calls and the SBI console of rvh's S-mode firmware and guests (see rvh/sbi.h).
 */
#include "rvh/sbi.h"
#include "rvh/libc.h"

struct sbiret sbi_ecall(long eid, long fid, unsigned long a0, unsigned long a1,
                        unsigned long a2, unsigned long a3, unsigned long a4,
                        unsigned long a5)
{
    register unsigned long r0 __asm__("a0") = a0;
    register unsigned long r1 __asm__("a1") = a1;
    register unsigned long r2 __asm__("a2") = a2;
    register unsigned long r3 __asm__("a3") = a3;
    register unsigned long r4 __asm__("a4") = a4;
    register unsigned long r5 __asm__("a5") = a5;
    register unsigned long r6 __asm__("a6") = (unsigned long)fid;
    register unsigned long r7 __asm__("a7") = (unsigned long)eid;
    __asm__ __volatile__("ecall"
                         : "+r"(r0), "+r"(r1)
                         : "r"(r2), "r"(r3), "r"(r4), "r"(r5), "r"(r6), "r"(r7)
                         : "memory");
    struct sbiret ret = { (long)r0, (long)r1 };
    return ret;
}

/* legacy calls: one return value in a0, a6 unused (passed as 0) */
static long sbi_legacy(long eid, unsigned long a0)
{
    return sbi_ecall(eid, 0, a0, 0, 0, 0, 0, 0).error;
}

/* ---- BASE ---- */
struct sbiret sbi_get_spec_version(void)
{
    return sbi_ecall(SBI_EXT_BASE, SBI_BASE_GET_SPEC_VERSION, 0, 0, 0, 0, 0, 0);
}

struct sbiret sbi_get_impl_id(void)
{
    return sbi_ecall(SBI_EXT_BASE, SBI_BASE_GET_IMPL_ID, 0, 0, 0, 0, 0, 0);
}

struct sbiret sbi_get_impl_version(void)
{
    return sbi_ecall(SBI_EXT_BASE, SBI_BASE_GET_IMPL_VERSION, 0, 0, 0, 0, 0, 0);
}

struct sbiret sbi_probe_extension(long eid)
{
    return sbi_ecall(SBI_EXT_BASE, SBI_BASE_PROBE_EXTENSION, (unsigned long)eid,
                     0, 0, 0, 0, 0);
}

struct sbiret sbi_get_mvendorid(void)
{
    return sbi_ecall(SBI_EXT_BASE, SBI_BASE_GET_MVENDORID, 0, 0, 0, 0, 0, 0);
}

struct sbiret sbi_get_marchid(void)
{
    return sbi_ecall(SBI_EXT_BASE, SBI_BASE_GET_MARCHID, 0, 0, 0, 0, 0, 0);
}

struct sbiret sbi_get_mimpid(void)
{
    return sbi_ecall(SBI_EXT_BASE, SBI_BASE_GET_MIMPID, 0, 0, 0, 0, 0, 0);
}

/* ---- TIME ---- */
struct sbiret sbi_set_timer(uint64_t stime_value)
{
    return sbi_ecall(SBI_EXT_TIME, SBI_TIME_SET_TIMER, stime_value, 0, 0, 0, 0, 0);
}

/* ---- IPI ---- */
struct sbiret sbi_send_ipi(unsigned long hart_mask, unsigned long hart_mask_base)
{
    return sbi_ecall(SBI_EXT_IPI, SBI_IPI_SEND_IPI, hart_mask, hart_mask_base, 0, 0, 0, 0);
}

/* ---- RFENCE ---- */
struct sbiret sbi_remote_fence_i(unsigned long hart_mask,
                                 unsigned long hart_mask_base)
{
    return sbi_ecall(SBI_EXT_RFENCE, SBI_RFENCE_REMOTE_FENCE_I, hart_mask, hart_mask_base, 0, 0, 0, 0);
}

struct sbiret sbi_remote_sfence_vma(unsigned long hart_mask,
                                    unsigned long hart_mask_base,
                                    unsigned long start_addr,
                                    unsigned long size)
{
    return sbi_ecall(SBI_EXT_RFENCE, SBI_RFENCE_REMOTE_SFENCE_VMA, hart_mask, hart_mask_base, start_addr,
                     size, 0, 0);
}

struct sbiret sbi_remote_sfence_vma_asid(unsigned long hart_mask,
                                         unsigned long hart_mask_base,
                                         unsigned long start_addr,
                                         unsigned long size,
                                         unsigned long asid)
{
    return sbi_ecall(SBI_EXT_RFENCE, SBI_RFENCE_REMOTE_SFENCE_VMA_ASID, hart_mask, hart_mask_base, start_addr,
                     size, asid, 0);
}

/* ---- HSM ---- */
struct sbiret sbi_hart_start(unsigned long hartid, unsigned long start_addr,
                             unsigned long opaque)
{
    return sbi_ecall(SBI_EXT_HSM, SBI_HSM_HART_START, hartid, start_addr, opaque, 0, 0, 0);
}

struct sbiret sbi_hart_stop(void)
{
    return sbi_ecall(SBI_EXT_HSM, SBI_HSM_HART_STOP, 0, 0, 0, 0, 0, 0);
}

struct sbiret sbi_hart_get_status(unsigned long hartid)
{
    return sbi_ecall(SBI_EXT_HSM, SBI_HSM_HART_GET_STATUS, hartid, 0, 0, 0, 0, 0);
}

struct sbiret sbi_hart_suspend(uint32_t suspend_type, unsigned long resume_addr,
                               unsigned long opaque)
{
    return sbi_ecall(SBI_EXT_HSM, SBI_HSM_HART_SUSPEND, suspend_type, resume_addr, opaque, 0, 0, 0);
}

/* ---- SRST ---- */
struct sbiret sbi_system_reset(uint32_t reset_type, uint32_t reset_reason)
{
    return sbi_ecall(SBI_EXT_SRST, SBI_SRST_SYSTEM_RESET, reset_type, reset_reason, 0, 0, 0, 0);
}

/* ---- DBCN ---- */
struct sbiret sbi_debug_console_write(unsigned long num_bytes,
                                      unsigned long base_addr_lo,
                                      unsigned long base_addr_hi)
{
    return sbi_ecall(SBI_EXT_DBCN, SBI_DBCN_CONSOLE_WRITE, num_bytes, base_addr_lo, base_addr_hi,
                     0, 0, 0);
}

struct sbiret sbi_debug_console_read(unsigned long num_bytes,
                                     unsigned long base_addr_lo,
                                     unsigned long base_addr_hi)
{
    return sbi_ecall(SBI_EXT_DBCN, SBI_DBCN_CONSOLE_READ, num_bytes, base_addr_lo, base_addr_hi,
                     0, 0, 0);
}

struct sbiret sbi_debug_console_write_byte(uint8_t byte)
{
    return sbi_ecall(SBI_EXT_DBCN, SBI_DBCN_CONSOLE_WRITE_BYTE, byte, 0, 0, 0, 0, 0);
}

/* ---- legacy ---- */
long sbi_legacy_set_timer(uint64_t stime_value)
{
    return sbi_legacy(SBI_EXT_LEGACY_SET_TIMER, stime_value);
}

long sbi_legacy_console_putchar(int ch)
{
    return sbi_legacy(SBI_EXT_LEGACY_CONSOLE_PUTCHAR, (unsigned long)(unsigned char)ch);
}

long sbi_legacy_console_getchar(void)
{
    return sbi_legacy(SBI_EXT_LEGACY_CONSOLE_GETCHAR, 0);
}

long sbi_legacy_shutdown(void)
{
    return sbi_legacy(SBI_EXT_LEGACY_SHUTDOWN, 0);
}

/* ---- console ---- */
int sbi_console_has_dbcn;

static void dbcn_putc(int c)
{
    sbi_debug_console_write_byte((uint8_t)c);
}

static void legacy_putc(int c)
{
    sbi_legacy_console_putchar(c);
}

void sbi_console_init(void)
{
    struct sbiret r = sbi_probe_extension(SBI_EXT_DBCN);
    sbi_console_has_dbcn = r.error == SBI_SUCCESS && r.value != 0;
    rvh_putc_hook = sbi_console_has_dbcn ? dbcn_putc : legacy_putc;
}

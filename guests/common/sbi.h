/*
 * sbi.h - typed wrappers for the SBI calls the S-mode guests use
 * (RISC-V Supervisor Binary Interface spec v2.0).  Implemented in sbi.c.
 *
 * Calling convention (spec chapter "Binary Encoding"): ecall with
 * a7 = EID, a6 = FID, arguments in a0..a5; the SBI returns
 * a0 = error, a1 = value.  Every register except a0/a1 is preserved.
 * The legacy extensions (EID 0x00..0x0F, SBI v0.1) ignore a6 and return
 * a single value in a0; their wrappers return that long.
 */
#ifndef SBI_H
#define SBI_H

#include <stdint.h>

struct sbiret {
    long error;
    long value;
};

/* ---- standard error codes ---- */
#define SBI_SUCCESS                 0
#define SBI_ERR_FAILED              (-1)
#define SBI_ERR_NOT_SUPPORTED       (-2)
#define SBI_ERR_INVALID_PARAM       (-3)
#define SBI_ERR_DENIED              (-4)
#define SBI_ERR_INVALID_ADDRESS     (-5)
#define SBI_ERR_ALREADY_AVAILABLE   (-6)
#define SBI_ERR_ALREADY_STARTED     (-7)
#define SBI_ERR_ALREADY_STOPPED     (-8)
#define SBI_ERR_NO_SHMEM            (-9)

/* ---- extension IDs ---- */
#define SBI_EXT_LEGACY_SET_TIMER    0x00
#define SBI_EXT_LEGACY_PUTCHAR      0x01
#define SBI_EXT_LEGACY_GETCHAR      0x02
#define SBI_EXT_LEGACY_SHUTDOWN     0x08
#define SBI_EXT_BASE                0x10
#define SBI_EXT_TIME                0x54494D45  /* "TIME" */
#define SBI_EXT_IPI                 0x735049    /* "sPI" */
#define SBI_EXT_RFENCE              0x52464E43  /* "RFNC" */
#define SBI_EXT_HSM                 0x48534D    /* "HSM" */
#define SBI_EXT_SRST                0x53525354  /* "SRST" */
#define SBI_EXT_DBCN                0x4442434E  /* "DBCN" */

/* BASE function IDs */
#define SBI_BASE_GET_SPEC_VERSION   0
#define SBI_BASE_GET_IMPL_ID        1
#define SBI_BASE_GET_IMPL_VERSION   2
#define SBI_BASE_PROBE_EXTENSION    3
#define SBI_BASE_GET_MVENDORID      4
#define SBI_BASE_GET_MARCHID        5
#define SBI_BASE_GET_MIMPID         6

/* implementation IDs (sbi_get_impl_id) */
#define SBI_IMPL_BBL                0
#define SBI_IMPL_OPENSBI            1

/* HSM hart states (sbi_hart_get_status) */
#define SBI_HSM_STARTED             0
#define SBI_HSM_STOPPED             1
#define SBI_HSM_START_PENDING       2
#define SBI_HSM_STOP_PENDING        3
#define SBI_HSM_SUSPENDED           4
#define SBI_HSM_SUSPEND_PENDING     5
#define SBI_HSM_RESUME_PENDING      6

/* HSM suspend types */
#define SBI_HSM_SUSPEND_RETENTIVE       0x00000000u
#define SBI_HSM_SUSPEND_NON_RETENTIVE   0x80000000u

/* SRST types and reasons */
#define SBI_SRST_SHUTDOWN           0
#define SBI_SRST_COLD_REBOOT        1
#define SBI_SRST_WARM_REBOOT        2
#define SBI_SRST_REASON_NONE        0
#define SBI_SRST_REASON_FAILURE     1

/* spec version word: bit 31 = 0, major in 30..24, minor in 23..0 */
#define SBI_SPEC_MAJOR(v)           (((unsigned long)(v) >> 24) & 0x7f)
#define SBI_SPEC_MINOR(v)           ((unsigned long)(v) & 0xffffff)

/* the generic call: a7 = eid, a6 = fid, a0..a5 = arguments */
struct sbiret sbi_ecall(long eid, long fid, unsigned long a0, unsigned long a1,
                        unsigned long a2, unsigned long a3, unsigned long a4,
                        unsigned long a5);

/* BASE (EID 0x10) */
struct sbiret sbi_get_spec_version(void);
struct sbiret sbi_get_impl_id(void);
struct sbiret sbi_get_impl_version(void);
struct sbiret sbi_probe_extension(long eid);
struct sbiret sbi_get_mvendorid(void);
struct sbiret sbi_get_marchid(void);
struct sbiret sbi_get_mimpid(void);

/* TIME */
struct sbiret sbi_set_timer(uint64_t stime_value);

/* IPI */
struct sbiret sbi_send_ipi(unsigned long hart_mask, unsigned long hart_mask_base);

/* RFENCE */
struct sbiret sbi_remote_fence_i(unsigned long hart_mask,
                                 unsigned long hart_mask_base);
struct sbiret sbi_remote_sfence_vma(unsigned long hart_mask,
                                    unsigned long hart_mask_base,
                                    unsigned long start_addr,
                                    unsigned long size);
struct sbiret sbi_remote_sfence_vma_asid(unsigned long hart_mask,
                                         unsigned long hart_mask_base,
                                         unsigned long start_addr,
                                         unsigned long size,
                                         unsigned long asid);

/* HSM */
struct sbiret sbi_hart_start(unsigned long hartid, unsigned long start_addr,
                             unsigned long opaque);
struct sbiret sbi_hart_stop(void);
struct sbiret sbi_hart_get_status(unsigned long hartid);
struct sbiret sbi_hart_suspend(uint32_t suspend_type, unsigned long resume_addr,
                               unsigned long opaque);

/* SRST */
struct sbiret sbi_system_reset(uint32_t reset_type, uint32_t reset_reason);

/* DBCN (SBI 2.0) */
struct sbiret sbi_debug_console_write(unsigned long num_bytes,
                                      unsigned long base_addr_lo,
                                      unsigned long base_addr_hi);
struct sbiret sbi_debug_console_read(unsigned long num_bytes,
                                     unsigned long base_addr_lo,
                                     unsigned long base_addr_hi);
struct sbiret sbi_debug_console_write_byte(uint8_t byte);

/* legacy extensions (SBI v0.1): return the value of a0 */
long sbi_legacy_set_timer(uint64_t stime_value);
long sbi_legacy_console_putchar(int ch);
long sbi_legacy_console_getchar(void);
long sbi_legacy_shutdown(void);         /* does not return on success */

#endif /* SBI_H */

/*
 * rvh/sbi.h - typed wrappers of the SBI calls S-mode firmware and guests make (RISC-V
 * Supervisor Binary Interface spec v2.0), and the SBI console.  Implemented in sbi.c.
 *
 * Calling convention (spec chapter "Binary Encoding"): ecall with
 * a7 = EID, a6 = FID, arguments in a0..a5; the SBI returns
 * a0 = error, a1 = value.  Every register except a0/a1 is preserved.
 * The legacy extensions (EID 0x00..0x0F, SBI v0.1) ignore a6 and return
 * a single value in a0; their wrappers return that long.
 */
#ifndef RVH_SBI_H
#define RVH_SBI_H

#include <stdint.h>
#include "rvh/encoding.h"

struct sbiret {
    long error;
    long value;
};

/* The numbers (SBI_EXT_*, SBI_<EXT>_<FUNCTION>, SBI_ERR_*, SBI_HSM_STATE_*, ...) are in the
 * generated rvh/encoding.h, from rvh/isa/sbi.py. */

/* spec version word: bit 31 = 0, major in 30..24, minor in 23..0 */
#define SBI_SPEC_MAJOR(v) \
    (((unsigned long)(v) & SBI_SPEC_VERSION_MAJOR_MASK) >> SBI_SPEC_VERSION_MAJOR_SHIFT)
#define SBI_SPEC_MINOR(v) ((unsigned long)(v) & SBI_SPEC_VERSION_MINOR_MASK)

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

/*
 * The console of S-mode code: sbi_console_init() probes for DBCN and points the libc's
 * rvh_putc_hook at sbi_debug_console_write_byte, else at the legacy putchar.
 */
extern int sbi_console_has_dbcn;
void sbi_console_init(void);

#endif /* RVH_SBI_H */

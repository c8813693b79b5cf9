/*
 * host_sbi.h - the calls the hypervisor makes to the SBI firmware below it (implemented by the
 * guests' common sbi.c, whose numbers come from the generated rvh/encoding.h).
 */
#ifndef HOST_SBI_H
#define HOST_SBI_H

#include <stdint.h>

struct sbiret {
    long error;
    long value;
};

struct sbiret sbi_probe_extension(long eid);
struct sbiret sbi_get_mvendorid(void);
struct sbiret sbi_get_marchid(void);
struct sbiret sbi_get_mimpid(void);
struct sbiret sbi_set_timer(uint64_t stime_value);
struct sbiret sbi_system_reset(uint32_t reset_type, uint32_t reset_reason);
struct sbiret sbi_debug_console_write_byte(uint8_t byte);
long sbi_legacy_console_putchar(int ch);

#endif

/*
 * console.c - the hypervisor's console and each VM's.
 *
 * The hypervisor writes through the host SBI's debug console (DBCN, SBI 2.0) when the firmware
 * has it, else the legacy putchar (OpenSBI v1.1).  A VM's output (its virtual 16550, DBCN or
 * legacy putchar) is collected a line at a time; with more than one VM each line names its VM,
 * so interleaved output stays readable.
 */
#include "hyp.h"
#include "rvh/libc.h"
#include "rvh/sbi.h"

static int host_has_dbcn;

static void host_putc(int c)
{
    if (host_has_dbcn)
        sbi_debug_console_write_byte((uint8_t)c);
    else
        sbi_legacy_console_putchar(c);
}

void hyp_console_init(void)
{
    struct sbiret r = sbi_probe_extension(SBI_EXT_DBCN);
    host_has_dbcn = r.error == 0 && r.value != 0;
    rvh_putc_hook = host_putc;
}

void vm_console_flush(struct vm *vm)
{
    if (!vm->line_len)
        return;
    if (hyp_nvms > 1)
        printf("[%s] ", vm->name);
    for (unsigned i = 0; i < vm->line_len; i++)
        host_putc(vm->line[i]);
    vm->line_len = 0;
}

void vm_console_putc(struct vm *vm, int c)
{
    vm->stats[HYP_STAT_CONSOLE_BYTES]++;
    if (hyp_nvms == 1) {            /* one VM: its console is the machine's, byte for byte */
        host_putc(c);
        return;
    }
    vm->line[vm->line_len++] = (char)c;
    if (c == '\n' || vm->line_len == sizeof(vm->line))
        vm_console_flush(vm);
}

/*
 * stats.c - the hypervisor's summary at shutdown: per VM, its exits by kind (KVM's counter
 * names where they overlap), SBI calls by extension and exceptions by scause.  Printed on the
 * hypervisor's console, so it is there on any machine (rvh or QEMU); the counts depend only on
 * what the guests executed, so the same run gives the same numbers.
 */
#include "hyp.h"
#include "libc.h"

static const char *const mode_names[] = {"hw", "trap", "pv"};

void stats_print(void)
{
    for (unsigned i = 0; i < hyp_nvms; i++) {
        struct vm *vm = &hyp_vms[i];
        struct vm_stats *s = &vm->stats;
        hyp_printf("hyp: vm %u (%s): status %ld (%s)\n", vm->id, mode_names[vm->mode],
                   vm->exit_code, vm->exit_reason ? vm->exit_reason : "running");
        hyp_printf("hyp:   exits %lu: ecall %lu, mmio %lu, wfi %lu, csr %lu, virtual_instruction %lu, "
                   "illegal %lu, injected_faults %lu, interrupts %lu\n",
                   (unsigned long)s->exits, (unsigned long)s->ecall_exits,
                   (unsigned long)s->mmio_exits, (unsigned long)s->wfi_exits,
                   (unsigned long)s->csr_exits, (unsigned long)s->virtual_instruction_exits,
                   (unsigned long)s->illegal_exits, (unsigned long)s->injected_faults,
                   (unsigned long)s->interrupt_exits);
        hyp_printf("hyp:   sbi");
        for (unsigned e = 0; e <= sbi_extension_count() && e < 16; e++)
            if (s->sbi_calls[e])
                hyp_printf(" %s %lu", sbi_extension_name(e), (unsigned long)s->sbi_calls[e]);
        hyp_printf("\nhyp:   scause");
        for (unsigned c = 0; c < 24; c++)
            if (s->by_scause[c])
                hyp_printf(" %u:%lu", c, (unsigned long)s->by_scause[c]);
        hyp_printf("\n");
    }
}

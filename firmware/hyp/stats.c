/*
 * stats.c - the per-VM counters every exit path adds to, and the summary at shutdown.
 *
 * The counters live in a stats page whose layout rvh/hyp.py defines (the generated
 * rvh/hyp_stats.h): one slot of 64-bit words per VM with its state, status, mode, exits by
 * kind (KVM's counter names where they overlap), SBI calls by extension and exceptions by
 * scause.  The host device tree names the page (/hypervisor rvh,stats), so rvh run --stats reads
 * it after the run; the hypervisor also prints the same figures on its console at shutdown, so
 * they are there on any machine (QEMU too).  They depend only on what the guests executed:
 * the same run gives the same numbers.
 */
#include "hyp.h"
#include "rvh/libc.h"

static uint64_t own_page[HYP_STATS_SIZE / 8] __attribute__((aligned(4096)));
uint64_t *hyp_stats_page = own_page;

static const char *const mode_names[] = {"hw", "trap", "pv"};
static const char *const counter_names[] = {HYP_VM_COUNTER_NAMES};
static const char *const sbi_names[] = {HYP_SBI_NAMES};
static const char *const csr_names[] = {HYP_TRAP_CSR_NAMES, "other"};
static const char *const pv_names[] = {HYP_PV_NAMES};

/* The tree's page, if it is sane: whole slots, above the hypervisor's heap, below every VM. */
void stats_use_page(unsigned long address, unsigned long size)
{
    extern char __heap_end[];
    if (size < HYP_STATS_SIZE || address & 4095 || address < (unsigned long)__heap_end) {
        printf("hyp: ignoring the stats page at 0x%lx (+0x%lx): not where it may be\n",
                   address, size);
        return;
    }
    hyp_stats_page = (uint64_t *)address;
}

void stats_attach(struct vm *vm)
{
    vm->stats = hyp_stats_page + vm->id * HYP_STATS_SLOT_WORDS;
    memset(vm->stats, 0, HYP_STATS_SLOT_WORDS * 8);
    vm->stats[HYP_STAT_STATE] = HYP_VM_STATE_RUNNING;
    vm->stats[HYP_STAT_MODE] = vm->mode;
}

void stats_shutdown(struct vm *vm)
{
    vm->stats[HYP_STAT_STATE] = HYP_VM_STATE_SHUT_DOWN;
    vm->stats[HYP_STAT_STATUS] = (uint64_t)vm->exit_code;
}

void stats_print(void)
{
    for (unsigned i = 0; i < hyp_nvms; i++) {
        struct vm *vm = &hyp_vms[i];
        const uint64_t *s = vm->stats;
        printf("hyp: vm %u (%s): status %ld (%s)\n", vm->id, mode_names[vm->mode],
                   vm->exit_code, vm->exit_reason ? vm->exit_reason : "running");
        printf("hyp:   exits %lu:", (unsigned long)s[HYP_STAT_EXITS]);
        for (unsigned c = 1; c < HYP_VM_COUNTERS; c++)
            printf("%s %s %lu", c > 1 ? "," : "", counter_names[c],
                       (unsigned long)s[HYP_STAT_EXITS + c]);
        printf("\nhyp:   sbi");
        for (unsigned e = 0; e < HYP_SBI_EXTENSIONS; e++)
            if (s[HYP_STAT_SBI + e])
                printf(" %s %lu", sbi_names[e], (unsigned long)s[HYP_STAT_SBI + e]);
        printf("\nhyp:   scause");
        for (unsigned c = 0; c < HYP_SCAUSE_COUNT; c++)
            if (s[HYP_STAT_SCAUSE + c])
                printf(" %u:%lu", c, (unsigned long)s[HYP_STAT_SCAUSE + c]);
        printf("\n");
        int any = 0;
        for (unsigned c = 0; c <= HYP_TRAP_CSR_COUNT; c++) {
            if (!s[HYP_STAT_CSR_BY_NUMBER + c])
                continue;
            printf("%s %s %lu", any ? "," : "hyp:   csr", csr_names[c],
                   (unsigned long)s[HYP_STAT_CSR_BY_NUMBER + c]);
            any = 1;
        }
        if (any)
            printf("\n");
        if (hyp_nharts > 1) {
            printf("hyp:   slices by host hart");
            for (unsigned h = 0; h < hyp_nharts; h++)
                printf("%s %u: %lu", h ? "," : "", h, (unsigned long)s[HYP_STAT_HART_SLICES + h]);
            printf("\n");
        }
        if (vm->mode == VIRT_PV) {
            printf("hyp:   pv");
            for (unsigned f = 0; f < HYP_PV_FUNCTIONS; f++)
                if (s[HYP_STAT_PV + f])
                    printf(" %s %lu", pv_names[f], (unsigned long)s[HYP_STAT_PV + f]);
            printf("\n");
        }
    }
}

/*
 * spin.c - a VM that never gives the hart back: it spins with interrupts off and never
 * calls the SBI.  The hypervisor's slice timer must still let the other VMs run
 * (tests/system/test_hyp_guests.py runs it beside others under a --max-insns limit).
 */
#include "smode.h"

TEST_NAME("hyp/spin");

int main(unsigned long hartid, unsigned long dtb)
{
    (void)hartid;
    (void)dtb;
    puts("spin: spinning");
    csr_clear(CSR_SSTATUS, SSTATUS_SIE_MASK);
    for (volatile unsigned long i = 0;; i++)
        ;
}

/*
 * sv39.c - Sv39 translation from S-mode: 4 KiB pages, 2 MiB and 1 GiB
 * superpages, aliases, permissions, page faults and their stval, A/D bits,
 * SUM, MXR, canonical addresses, PTE changes with sfence.vma, unsupported
 * satp modes.  The checks are in paging.h.
 */
#define LEVELS 3
#include "paging.h"

TEST_NAME("smode/sv39");

int main(void)
{
    return paging_test();
}

/*
 * sv48.c - Sv48 translation from S-mode: the checks of sv39 (paging.h)
 * with four levels, plus a 1 GiB page above the Sv39 range, a 512 GiB
 * page and a misaligned 512 GiB page, and bit 47 as the sign bit.
 */
#define LEVELS 4
#include "paging.h"

TEST_NAME("smode/sv48");

int main(void)
{
    return paging_test();
}

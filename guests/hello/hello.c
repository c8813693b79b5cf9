/* hello.c - the smallest rvh guest: print a greeting, the hart id and the
 * dtb address passed by the reset code in a0/a1, then exit 0. */
#include "rvh.h"

int main(unsigned long hartid, unsigned long dtb)
{
    puts("Hello from rvh guest!");
    printf("hartid=%lu dtb=0x%lx\n", hartid, dtb);
    return 0;
}

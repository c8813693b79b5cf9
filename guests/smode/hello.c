/*
 * hello.c - the smallest S-mode guest: prints a greeting, the hart id, the
 * DTB address and the SBI implementation through the SBI console, then
 * shuts down through SBI SRST (exit status 0).
 */
#include "smode.h"

TEST_NAME("smode/hello");

int main(unsigned long hartid, unsigned long dtb)
{
    struct sbiret ver = sbi_get_spec_version();
    struct sbiret id = sbi_get_impl_id();
    struct sbiret iv = sbi_get_impl_version();
    puts("Hello from an rvh S-mode guest!");
    printf("hartid=%lu dtb=0x%lx\n", hartid, dtb);
    printf("SBI spec %lu.%lu, implementation %ld version 0x%lx, console %s\n",
           SBI_SPEC_MAJOR(ver.value), SBI_SPEC_MINOR(ver.value), id.value,
           iv.value, sbi_console_has_dbcn ? "DBCN" : "legacy putchar");
    pass();
}

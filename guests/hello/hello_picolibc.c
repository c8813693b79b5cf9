/*
 * hello_picolibc.c - like hello.c, but printing with picolibc's printf.
 *
 * Linked with common/start.S (entry, bss, tp for picolibc's thread-local
 * errno, exit through the syscon) and picolibc's libc.a; the glue below
 * routes picolibc's stdio to the UART and _exit() to the syscon.
 * rvh.c is NOT linked (its printf/puts would clash with picolibc's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "rvh/hw.h"

static int uart_put(char c, FILE *f)
{
    (void)f;
    uart_putc(c);
    return (unsigned char)c;
}

static FILE uart_stream = FDEV_SETUP_STREAM(uart_put, NULL, NULL, _FDEV_SETUP_WRITE);
FILE *const stdin = &uart_stream;
FILE *const stdout = &uart_stream;
FILE *const stderr = &uart_stream;

void _exit(int code)
{
    rvh_exit(code);
}

int main(unsigned long hartid, unsigned long dtb)
{
    char buf[64];

    printf("Hello from rvh guest! (picolibc %s printf)\n", _PICOLIBC_VERSION);
    printf("hartid=%lu dtb=%#lx\n", hartid, dtb);
    /* a few things our own printf cannot do */
    snprintf(buf, sizeof buf, "[%-6s|%+d|%5.1f|%llx]", "ab", 42, 3.14159, 0x123456789abcULL);
    puts(buf);
    if (strcmp(buf, "[ab    |+42|  3.1|123456789abc]") != 0) {
        printf("unexpected snprintf result\n");
        return 1;
    }
    exit(0);
}

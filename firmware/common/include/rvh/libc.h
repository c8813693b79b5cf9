/*
 * rvh/libc.h - the tiny libc of rvh's firmware and guests (libc.c), plus the board helpers of
 * rvh/hw.h.  Link with libc.c and start.S (M-mode) or sstart.S (S-mode).
 */
#ifndef RVH_LIBC_H
#define RVH_LIBC_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include "rvh/hw.h"

/*
 * console (UART 16550A); '\n' is sent as is (no '\r').  When rvh_putc_hook is set, every
 * character goes to it instead (S-mode code routes the console through the SBI this way).
 */
extern void (*rvh_putc_hook)(int c);
int putchar(int c);
int puts(const char *s);                 /* appends '\n' like libc puts */
void print_str(const char *s);           /* no newline */
void print_hex(uint64_t v);              /* "0x" + lowercase hex, no padding */
void print_dec(int64_t v);               /* signed decimal */
void print_udec(uint64_t v);             /* unsigned decimal */

/*
 * printf subset: %d %i %u %x %X %c %s %p %%, length modifiers l ll z,
 * flags '0' '-', field width (e.g. %08x, %-10s, %016lx).
 */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

void exit(int code) __attribute__((noreturn));

#endif /* RVH_LIBC_H */

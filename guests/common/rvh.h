/*
 * rvh.h - the tiny libc of the rvh guests (implemented in rvh.c) plus the
 * hardware helpers of rvh_hw.h.  Link with start.S and rvh.c.
 */
#ifndef RVH_H
#define RVH_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include "rvh_hw.h"

/*
 * console (UART 16550A); '\n' is sent as is (no '\r').  When
 * rvh_putc_hook is set, every character goes to it instead (the S-mode
 * guests route the console through the SBI this way).
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

/* used by the assembler test epilogue (test.h) */
void rvh_test_pass(const char *name) __attribute__((noreturn));
void rvh_test_fail(const char *name, long testnum) __attribute__((noreturn));
void rvh_test_trap_fail(const char *name, long testnum, unsigned long mcause,
                        unsigned long mepc, unsigned long mtval)
    __attribute__((noreturn));

#endif /* RVH_H */

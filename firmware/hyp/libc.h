/*
 * libc.h - the part of the guests' tiny libc (common rvh.c) the hypervisor uses.
 */
#ifndef HYP_LIBC_H
#define HYP_LIBC_H

#include <stdarg.h>
#include <stddef.h>

extern void (*rvh_putc_hook)(int c);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

#endif

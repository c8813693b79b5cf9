/*
 * libc.c - the tiny libc of rvh's firmware and guests: console (the UART, or a hook such as the
 * SBI console of sbi.c), printf subset, string functions, exit.  Freestanding; needs only
 * rvh_exit from start.S or sstart.S.
 */
#include "rvh/libc.h"

/*
 * Console output: the UART, unless rvh_putc_hook is set (sbi_console_init points it at the
 * SBI's debug console, or its legacy putchar).
 */
void (*rvh_putc_hook)(int c);

static void out(int c)
{
    void (*hook)(int) = rvh_putc_hook;
    if (hook)
        hook(c);
    else
        uart_putc((char)c);
}

int putchar(int c)
{
    out(c);
    return (unsigned char)c;
}

void print_str(const char *s)
{
    while (*s)
        out(*s++);
}

int puts(const char *s)
{
    print_str(s);
    out('\n');
    return 1;
}

/* Convert v to digits in buf (reversed); returns the number of digits. */
static int utoa_rev(uint64_t v, unsigned base, int upper, char *buf)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    int n = 0;
    do {
        buf[n++] = digits[v % base];
        v /= base;
    } while (v);
    return n;
}

void print_hex(uint64_t v)
{
    char buf[16];
    int n = utoa_rev(v, 16, 0, buf);
    out('0');
    out('x');
    while (n)
        out(buf[--n]);
}

void print_udec(uint64_t v)
{
    char buf[20];
    int n = utoa_rev(v, 10, 0, buf);
    while (n)
        out(buf[--n]);
}

void print_dec(int64_t v)
{
    if (v < 0) {
        out('-');
        print_udec(-(uint64_t)v);
    } else {
        print_udec((uint64_t)v);
    }
}

static int pad(int n, char c)
{
    int k = 0;
    while (n-- > 0) {
        out(c);
        k++;
    }
    return k;
}

int vprintf(const char *fmt, va_list ap)
{
    int count = 0;
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out(*fmt);
            count++;
            continue;
        }
        fmt++;
        int zero = 0, left = 0, width = 0, lng = 0;
        for (;; fmt++) {
            if (*fmt == '0')
                zero = 1;
            else if (*fmt == '-')
                left = 1;
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        for (;; fmt++) {
            if (*fmt == 'l')
                lng++;
            else if (*fmt == 'z')
                lng = 1;
            else
                break;
        }

        char buf[24];
        const char *s = buf;
        int len = 0, neg = 0, rev = 0;
        uint64_t u;
        switch (*fmt) {
        case 'd':
        case 'i': {
            int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
            neg = v < 0;
            u = neg ? -(uint64_t)v : (uint64_t)v;
            len = utoa_rev(u, 10, 0, buf);
            rev = 1;
            break;
        }
        case 'u':
            u = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            len = utoa_rev(u, 10, 0, buf);
            rev = 1;
            break;
        case 'x':
        case 'X':
            u = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
            len = utoa_rev(u, 16, *fmt == 'X', buf);
            rev = 1;
            break;
        case 'p':
            u = (uintptr_t)va_arg(ap, void *);
            len = utoa_rev(u, 16, 0, buf);
            buf[len++] = 'x';
            buf[len++] = '0';
            rev = 1;
            break;
        case 'c':
            buf[0] = (char)va_arg(ap, int);
            len = 1;
            break;
        case 's':
            s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            len = (int)strlen(s);
            break;
        case '%':
            buf[0] = '%';
            len = 1;
            break;
        case '\0':
            return count;
        default:            /* unknown: print it verbatim */
            buf[0] = '%';
            buf[1] = *fmt;
            len = 2;
            break;
        }

        int total = len + neg;
        int fill = width > total ? width - total : 0;
        if (!left && !(zero && rev))
            count += pad(fill, ' ');
        if (neg) {
            out('-');
            count++;
        }
        if (!left && zero && rev)
            count += pad(fill, '0');
        if (rev) {
            for (int i = len - 1; i >= 0; i--)
                out(buf[i]);
        } else {
            for (int i = 0; i < len; i++)
                out(s[i]);
        }
        count += len;
        if (left)
            count += pad(fill, ' ');
    }
    return count;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

/*
 * memset and memcpy move doublewords when the addresses allow it: the hypervisor's bounce copies
 * and the guests' buffers are kilobytes, and a byte loop costs five instructions per byte.
 * Only aligned doublewords are used, since a misaligned access may trap on a real hart.
 * The may_alias type keeps these stores ordered with the caller's accesses of any type.
 */
typedef uint64_t __attribute__((may_alias)) alias_u64;

void *memset(void *d, int c, size_t n)
{
    unsigned char *p = d;
    while (n && ((uintptr_t)p & 7)) {
        *p++ = (unsigned char)c;
        n--;
    }
    uint64_t word = (unsigned char)c * 0x0101010101010101ull;
    for (; n >= 32; n -= 32, p += 32) {
        ((alias_u64 *)p)[0] = word;
        ((alias_u64 *)p)[1] = word;
        ((alias_u64 *)p)[2] = word;
        ((alias_u64 *)p)[3] = word;
    }
    for (; n >= 8; n -= 8, p += 8)
        *(alias_u64 *)p = word;
    while (n--)
        *p++ = (unsigned char)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if ((((uintptr_t)dp ^ (uintptr_t)sp) & 7) == 0) {
        while (n && ((uintptr_t)dp & 7)) {
            *dp++ = *sp++;
            n--;
        }
        for (; n >= 32; n -= 32, dp += 32, sp += 32) {
            uint64_t a = ((const alias_u64 *)sp)[0], b = ((const alias_u64 *)sp)[1];
            uint64_t c = ((const alias_u64 *)sp)[2], e = ((const alias_u64 *)sp)[3];
            ((alias_u64 *)dp)[0] = a;
            ((alias_u64 *)dp)[1] = b;
            ((alias_u64 *)dp)[2] = c;
            ((alias_u64 *)dp)[3] = e;
        }
        for (; n >= 8; n -= 8, dp += 8, sp += 8)
            *(alias_u64 *)dp = *(const alias_u64 *)sp;
    }
    while (n--)
        *dp++ = *sp++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dp = d;
    const unsigned char *sp = s;
    if (dp <= sp || dp >= sp + n) {
        while (n--)
            *dp++ = *sp++;
    } else {
        dp += n;
        sp += n;
        while (n--)
            *--dp = *--sp;
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *pa = a, *pb = b;
    for (; n; n--, pa++, pb++)
        if (*pa != *pb)
            return *pa - *pb;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

void exit(int code)
{
    rvh_exit(code);
}

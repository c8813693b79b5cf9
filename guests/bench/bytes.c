/*
 * bytes.c - branchy byte-processing workload over a 64 KiB buffer of mixed
 * content (ASCII text, byte runs, valid and invalid UTF-8, digits, noise).
 * Each pass runs three hand-written scanners over the whole buffer:
 *   - a UTF-8 validator/decoder (counts code points, sums them, counts errors)
 *   - a run-length scanner (number of runs, longest run)
 *   - a word/line/number tokenizer with an Adler-32 style checksum
 * then changes one byte so that every pass sees different data.
 *
 * PASSES = 80: about 252 million instructions (about 3.15 M per pass,
 * i.e. ~48 per byte, measured with QEMU -icount and -DBENCH_INSTRET), plus
 * about 1.1 M for filling the buffer.
 */
#include "bench.h"

#define PASSES   80             /* ~3.15 M instructions each: ~252 M in total */
#define BUF_SIZE 65536

static uint8_t buf[BUF_SIZE];

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint32_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (uint32_t)(x >> 16);
}

/* encode code point cp as UTF-8 at p (room permitting); returns length */
static unsigned put_utf8(uint8_t *p, unsigned room, uint32_t cp)
{
    if (cp < 0x80 && room >= 1) {
        p[0] = cp;
        return 1;
    } else if (cp < 0x800 && room >= 2) {
        p[0] = 0xc0 | (cp >> 6);
        p[1] = 0x80 | (cp & 0x3f);
        return 2;
    } else if (cp < 0x10000 && room >= 3) {
        p[0] = 0xe0 | (cp >> 12);
        p[1] = 0x80 | ((cp >> 6) & 0x3f);
        p[2] = 0x80 | (cp & 0x3f);
        return 3;
    } else if (room >= 4) {
        p[0] = 0xf0 | (cp >> 18);
        p[1] = 0x80 | ((cp >> 12) & 0x3f);
        p[2] = 0x80 | ((cp >> 6) & 0x3f);
        p[3] = 0x80 | (cp & 0x3f);
        return 4;
    }
    return 0;
}

static void fill(void)
{
    static const char letters[] = "etaoinshrdlucmfwypvbgkjqxz";
    unsigned i = 0;
    while (i < BUF_SIZE) {
        uint32_t r = rng();
        unsigned len = 1 + (r >> 8) % 64;
        if (len > BUF_SIZE - i)
            len = BUF_SIZE - i;
        switch (r & 7) {
        case 0: case 1: case 2: case 3:       /* words */
            for (unsigned k = 0; k < len; k++) {
                uint32_t q = rng();
                buf[i + k] = (q & 7) == 0 ? ' ' : (q & 63) == 1 ? '\n'
                           : letters[(q >> 8) % 26];
            }
            i += len;
            break;
        case 4: {                               /* a run of one byte */
            uint8_t b = rng();
            len = 1 + (r >> 8) % 200;
            if (len > BUF_SIZE - i)
                len = BUF_SIZE - i;
            for (unsigned k = 0; k < len; k++)
                buf[i + k] = b;
            i += len;
            break;
        }
        case 5:                                 /* valid UTF-8 */
            for (unsigned k = 0; k < len / 2 && i < BUF_SIZE; k++) {
                uint32_t q = rng();
                uint32_t cp = (q & 3) == 0 ? 0x80 + q % 0x780
                            : (q & 3) == 1 ? 0x800 + (q >> 2) % 0xd000
                            : (q & 3) == 2 ? 0x10000 + (q >> 2) % 0x100000
                            : 0x20 + q % 0x5f;
                unsigned n = put_utf8(buf + i, BUF_SIZE - i, cp);
                if (!n)
                    break;
                i += n;
            }
            break;
        case 6:                                 /* noise: mostly invalid */
            for (unsigned k = 0; k < len; k++)
                buf[i + k] = rng();
            i += len;
            break;
        default:                                /* numbers */
            for (unsigned k = 0; k < len; k++) {
                uint32_t q = rng();
                buf[i + k] = (q & 7) == 0 ? ' ' : '0' + (q >> 4) % 10;
            }
            i += len;
            break;
        }
    }
}

struct stats {
    uint64_t ascii, multi, cpsum, errors;
    uint64_t runs, longest;
    uint64_t words, lines, numsum;
    uint32_t a, b;
};

static void utf8_scan(const uint8_t *p, unsigned n, struct stats *s)
{
    unsigned i = 0;
    while (i < n) {
        uint32_t c = p[i];
        if (c < 0x80) {
            s->ascii++;
            i++;
            continue;
        }
        unsigned need;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            need = 1; cp = c & 0x1f; min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2; cp = c & 0x0f; min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3; cp = c & 0x07; min = 0x10000;
        } else {
            s->errors++;
            i++;
            continue;
        }
        if (i + need >= n) {
            s->errors++;
            break;
        }
        int ok = 1;
        for (unsigned k = 1; k <= need; k++) {
            uint32_t d = p[i + k];
            if ((d & 0xc0) != 0x80) {
                ok = 0;
                break;
            }
            cp = (cp << 6) | (d & 0x3f);
        }
        if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            s->errors++;
            i++;
            continue;
        }
        s->multi++;
        s->cpsum += cp;
        i += need + 1;
    }
}

static void run_scan(const uint8_t *p, unsigned n, struct stats *s)
{
    unsigned i = 0;
    while (i < n) {
        uint8_t c = p[i];
        unsigned j = i + 1;
        while (j < n && p[j] == c)
            j++;
        s->runs++;
        if (j - i > s->longest)
            s->longest = j - i;
        i = j;
    }
}

static void token_scan(const uint8_t *p, unsigned n, struct stats *s)
{
    uint32_t a = s->a, b = s->b;
    int in_word = 0;
    uint64_t num = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t c = p[i];
        a += c;
        b += a;
        if (c == '\n') {
            s->lines++;
            in_word = 0;
        } else if (c == ' ' || c == '\t') {
            in_word = 0;
        } else {
            if (!in_word) {
                s->words++;
                in_word = 1;
                s->numsum += num;
                num = 0;
            }
            if (c >= '0' && c <= '9')
                num = num * 10 + (c - '0');
        }
        if ((i & 1023) == 1023) {           /* Adler-32 style reduction */
            a %= 65521;
            b %= 65521;
        }
    }
    s->numsum += num;
    s->a = a % 65521;
    s->b = b % 65521;
}

int main(void)
{
    struct stats s;
    memset(&s, 0, sizeof s);
    s.a = 1;
    fill();

    bench_mark_t m = bench_start();
    for (unsigned pass = 0; pass < PASSES; pass++) {
        utf8_scan(buf, BUF_SIZE, &s);
        run_scan(buf, BUF_SIZE, &s);
        token_scan(buf, BUF_SIZE, &s);
        buf[(pass * 40503u) & (BUF_SIZE - 1)] = (uint8_t)(pass * 13 + 0xc3);
    }
    bench_end("bytes", m);

    uint64_t h = 0xcbf29ce484222325ULL;
    const uint64_t v[] = { s.ascii, s.multi, s.cpsum, s.errors, s.runs,
                           s.longest, s.words, s.lines, s.numsum, s.a, s.b };
    for (unsigned k = 0; k < sizeof v / sizeof v[0]; k++)
        h = (h ^ v[k]) * 0x100000001b3ULL;
    printf("bytes: %d passes over %d bytes: %lu ascii, %lu multibyte, "
           "%lu errors, %lu runs (longest %lu), %lu words, %lu lines\n",
           PASSES, BUF_SIZE, s.ascii, s.multi, s.errors, s.runs, s.longest,
           s.words, s.lines);
    printf("bytes: checksum 0x%016lx\n", h);
    return 0;
}

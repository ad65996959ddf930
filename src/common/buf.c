#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/mem.h"

void ss_buf_init(ss_buf *b, size_t cap)
{
    b->data = cap ? ss_malloc(cap) : NULL;
    b->len = 0;
    b->cap = cap;
}

void ss_buf_free(ss_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void ss_buf_grow(ss_buf *b, size_t extra)
{
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < extra)
        cap *= 2;
    b->data = ss_realloc(b->data, cap);
    b->cap = cap;
}

void ss_buf_printf(ss_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    ss_buf_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static const char pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Writes v's decimal digits so that they end just before end; returns where
 * they start. Two digits per division. */
static char *digits_before(char *end, uint64_t v)
{
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        end -= 2;
        memcpy(end, pairs + 2 * r, 2);
    }
    if (v >= 10) {
        end -= 2;
        memcpy(end, pairs + 2 * v, 2);
    } else {
        *--end = (char)('0' + v);
    }
    return end;
}

size_t ss_fmt_u64(char out[20], uint64_t v)
{
    char tmp[20], *p = digits_before(tmp + sizeof tmp, v);
    size_t n = (size_t)(tmp + sizeof tmp - p);
    memcpy(out, p, n);
    return n;
}

void ss_fmt_u64_width(char *out, size_t width, uint64_t v)
{
    char *p = digits_before(out + width, v);
    while (p > out)
        *--p = '0';
}

void ss_buf_put_i64(ss_buf *b, int64_t v)
{
    char tmp[24];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = digits_before(tmp + sizeof tmp, u);
    if (v < 0)
        *--p = '-';
    ss_buf_put(b, p, (size_t)(tmp + sizeof tmp - p));
}

void ss_buf_put_cents(ss_buf *b, int64_t cents)
{
    char tmp[24];
    uint64_t u = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    memcpy(tmp + sizeof tmp - 2, pairs + 2 * (u % 100), 2);
    tmp[sizeof tmp - 3] = '.';
    char *p = digits_before(tmp + sizeof tmp - 3, u / 100);
    if (cents < 0)
        *--p = '-';
    ss_buf_put(b, p, (size_t)(tmp + sizeof tmp - p));
}

/* Whether any of the eight bytes of w needs escaping: a quote, a backslash
 * or a control byte. */
static inline int word_dirty(uint64_t w)
{
    uint64_t q = w ^ 0x2222222222222222ULL, bs = w ^ 0x5c5c5c5c5c5c5c5cULL;
    uint64_t hit = ((q - 0x0101010101010101ULL) & ~q) | ((bs - 0x0101010101010101ULL) & ~bs) |
                   ((w - 0x2020202020202020ULL) & ~w);
    return (hit & 0x8080808080808080ULL) != 0;
}

static inline int byte_dirty(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

/* Length of the prefix of s[0..n) that needs no escaping, eight bytes at a
 * time. */
static size_t clean_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (word_dirty(w))
            break;
        i += 8;
    }
    while (i < n && !byte_dirty((unsigned char)s[i]))
        i++;
    return i;
}

/* Copies s[0..n) to d while it needs no escaping, eight bytes at a time (the
 * last word overlapping the one before); returns n, or less at the first
 * byte that needs escaping, which the caller takes from there. */
static size_t copy_clean(char *d, const char *s, size_t n)
{
    size_t i = 0;
    uint64_t w;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if (word_dirty(w))
            return i;
        memcpy(d + i, &w, 8);
    }
    if (i == n)
        return n;
    if (n >= 8) {
        memcpy(&w, s + n - 8, 8);
        if (word_dirty(w))
            return i;
        memcpy(d + n - 8, &w, 8);
        return n;
    }
    for (; i < n; i++) {
        if (byte_dirty((unsigned char)s[i]))
            return i;
        d[i] = s[i];
    }
    return n;
}

void ss_buf_put_jstr(ss_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    ss_buf_reserve(b, n + 2);
    char *out = b->data + b->len;
    out[0] = '"';
    size_t i = copy_clean(out + 1, s, n);
    if (i == n) {
        out[n + 1] = '"';
        b->len += n + 2;
        return;
    }
    b->len += 1 + i;
    while (i < n) {
        size_t k = clean_prefix(s + i, n - i);
        ss_buf_put(b, s + i, k);
        i += k;
        if (i == n)
            break;
        unsigned char c = (unsigned char)s[i++];
        ss_buf_reserve(b, 6);
        char *p = b->data + b->len;
        p[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            p[1] = (char)c;
            b->len += 2;
            break;
        case '\n':
            p[1] = 'n';
            b->len += 2;
            break;
        case '\r':
            p[1] = 'r';
            b->len += 2;
            break;
        case '\t':
            p[1] = 't';
            b->len += 2;
            break;
        default:
            p[1] = 'u';
            p[2] = '0';
            p[3] = '0';
            p[4] = hex[c >> 4];
            p[5] = hex[c & 15];
            b->len += 6;
        }
    }
    ss_buf_putc(b, '"');
}

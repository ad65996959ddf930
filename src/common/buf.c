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

void ss_buf_put_i64(ss_buf *b, int64_t v)
{
    char tmp[24];
    int i = sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    ss_buf_put(b, tmp + i, sizeof tmp - (size_t)i);
}

void ss_buf_put_cents(ss_buf *b, int64_t cents)
{
    char tmp[24];
    int i = sizeof tmp;
    uint64_t u = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
    tmp[--i] = (char)('0' + u % 10);
    u /= 10;
    tmp[--i] = '.';
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (cents < 0)
        tmp[--i] = '-';
    ss_buf_put(b, tmp + i, sizeof tmp - (size_t)i);
}

/* Length of the prefix of s[0..n) that needs no escaping: no quote, no
 * backslash, no control byte; eight bytes at a time. */
static size_t clean_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t q = w ^ 0x2222222222222222ULL, bs = w ^ 0x5c5c5c5c5c5c5c5cULL;
        uint64_t hit = ((q - 0x0101010101010101ULL) & ~q) | ((bs - 0x0101010101010101ULL) & ~bs) |
                       ((w - 0x2020202020202020ULL) & ~w);
        if (hit & 0x8080808080808080ULL)
            break;
        i += 8;
    }
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            break;
        i++;
    }
    return i;
}

void ss_buf_put_jstr(ss_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    ss_buf_reserve(b, n + 2);
    b->data[b->len++] = '"';
    for (size_t i = 0; i < n;) {
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

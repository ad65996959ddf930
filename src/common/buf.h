/* A growable byte buffer with fast appenders for the text formats shopstream
 * writes (JSON Lines above all). Appenders never fail: growth follows the
 * out-of-memory policy of common/mem.h. An ss_buf is owned by one thread. */
#ifndef SS_BUF_H
#define SS_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/timeutil.h"

typedef struct ss_buf {
    char *data;
    size_t len;
    size_t cap;
} ss_buf;

void ss_buf_init(ss_buf *b, size_t cap);
void ss_buf_free(ss_buf *b);
void ss_buf_grow(ss_buf *b, size_t extra);

static inline void ss_buf_reserve(ss_buf *b, size_t extra)
{
    if (b->cap - b->len < extra)
        ss_buf_grow(b, extra);
}

static inline void ss_buf_put(ss_buf *b, const void *p, size_t n)
{
    ss_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static inline void ss_buf_putc(ss_buf *b, char c)
{
    ss_buf_reserve(b, 1);
    b->data[b->len++] = c;
}

#define ss_buf_lit(b, s) ss_buf_put((b), (s), sizeof(s) - 1)

static inline void ss_buf_puts(ss_buf *b, const char *s)
{
    ss_buf_put(b, s, strlen(s));
}

/* Terminates the content with a NUL not counted in len. */
static inline const char *ss_buf_cstr(ss_buf *b)
{
    ss_buf_reserve(b, 1);
    b->data[b->len] = '\0';
    return b->data;
}

void ss_buf_printf(ss_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* v's decimal digits, without a terminator; returns their number (1..20). */
size_t ss_fmt_u64(char out[20], uint64_t v);
/* v's decimal digits right-aligned in exactly width characters, padded
 * with zeros on the left; v must have at most width digits. */
void ss_fmt_u64_width(char *out, size_t width, uint64_t v);
/* Decimal integer. */
void ss_buf_put_i64(ss_buf *b, int64_t v);
/* Money: integer cents as units with two decimals, "-27.30". */
void ss_buf_put_cents(ss_buf *b, int64_t cents);
/* ISO-8601 time with milliseconds, unquoted. */
static inline void ss_buf_put_time(ss_buf *b, int64_t ms)
{
    ss_buf_reserve(b, SS_ISO_LEN);
    ss_time_format_iso(ms, b->data + b->len);
    b->len += SS_ISO_LEN;
}
/* A JSON string literal, quoted, with escapes; bytes >= 0x80 pass through
 * (callers hand it UTF-8). */
void ss_buf_put_jstr(ss_buf *b, const char *s, size_t n);

#endif

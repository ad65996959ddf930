/* The lexical layer of the hand-written JSON readers (engine/decode.c for
 * events, query/coldrow.c for the lines of cold files): whitespace, strings
 * with their escapes, numbers, skipping any value, UTF-8 validation and the
 * messages of a syntax error.
 *
 * A scan covers one line. Strings without escapes point into the line;
 * others are unescaped into the scratch buffer, which ss_jscan_begin sizes
 * for the whole line so that it never moves while the line is read.
 * @locality one thread per ss_jscan. */
#ifndef SS_EVENT_JSCAN_H
#define SS_EVENT_JSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "common/status.h"
#include "event/event.h"

typedef struct ss_jscan {
    const unsigned char *p, *end, *start;
    ss_buf *scratch;
    char *reason; /* where a failure's message goes */
    size_t rlen;
} ss_jscan;

/* Starts a scan of line[0..len); empties scratch and reserves room in it. */
void ss_jscan_begin(ss_jscan *js, const char *line, size_t len, ss_buf *scratch, char *reason,
                    size_t rlen);

/* The functions return SS_OK, or SS_EINVAL with a message in js->reason. */

/* Writes a message into js->reason; returns SS_EINVAL. */
int ss_jscan_fail(ss_jscan *js, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "invalid JSON at byte N: expected WHAT" (or "unexpected end of line");
 * returns SS_EINVAL. */
int ss_jscan_syntax(ss_jscan *js, const char *what);

/* Returns the offset of the first invalid UTF-8 byte of s[0..n), or -1.
 * Overlong forms, surrogates and code points past U+10FFFF are invalid. */
long ss_utf8_check(const unsigned char *s, size_t n);

/* Skips a value of any kind, nested at most 32 levels deeper than depth. */
int ss_jscan_skip(ss_jscan *js, int depth);

/* Reads a number with JSON's grammar at js->p into *out (its text); sets
 * *is_int when it has no fraction and no exponent. */
int ss_jscan_number(ss_jscan *js, ss_str *out, int *is_int);

/* The part of ss_jscan_string past the first escape or control byte. */
int ss_jscan_string_slow(ss_jscan *js, const unsigned char *p, const unsigned char *q, ss_str *out);

static inline void ss_jscan_ws(ss_jscan *js)
{
    while (js->p < js->end && (*js->p == ' ' || *js->p == '\t' || *js->p == '\r' || *js->p == '\n'))
        js->p++;
}

/* Reads a string at js->p (its opening quote). The common case, a string
 * without escapes, stays inline in the caller's loop. */
static inline __attribute__((always_inline)) int ss_jscan_string(ss_jscan *js, ss_str *out)
{
    const unsigned char *p = js->p + 1, *end = js->end;
    const unsigned char *q = p;
    /* Eight bytes at a time until a quote, a backslash or a control byte. */
    while (end - q >= 8) {
        uint64_t w;
        memcpy(&w, q, 8);
        uint64_t quote = w ^ 0x2222222222222222ULL, bslash = w ^ 0x5c5c5c5c5c5c5c5cULL;
        uint64_t hit = ((quote - 0x0101010101010101ULL) & ~quote) |
                       ((bslash - 0x0101010101010101ULL) & ~bslash) |
                       ((w - 0x2020202020202020ULL) & ~w);
        if (hit & 0x8080808080808080ULL)
            break;
        q += 8;
    }
    while (q < end && *q != '"' && *q != '\\' && *q >= 0x20)
        q++;
    if (q < end && *q == '"') {
        out->p = (const char *)p;
        out->n = (uint32_t)(q - p);
        js->p = q + 1;
        return SS_OK;
    }
    return ss_jscan_string_slow(js, p, q, out);
}

#endif

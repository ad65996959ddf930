#include "event/jscan.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/status.h"

void ss_jscan_begin(ss_jscan *js, const char *line, size_t len, ss_buf *scratch, char *reason,
                    size_t rlen)
{
    js->p = js->start = (const unsigned char *)line;
    js->end = js->p + len;
    js->scratch = scratch;
    js->reason = reason;
    js->rlen = rlen;
    scratch->len = 0;
    ss_buf_reserve(scratch, len + 16);
}

int ss_jscan_fail(ss_jscan *js, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(js->reason, js->rlen, fmt, ap);
    va_end(ap);
    return SS_EINVAL;
}

int ss_jscan_syntax(ss_jscan *js, const char *what)
{
    if (js->p >= js->end)
        return ss_jscan_fail(js, "invalid JSON: unexpected end of line, expected %s", what);
    return ss_jscan_fail(js, "invalid JSON at byte %zu: expected %s", (size_t)(js->p - js->start),
                         what);
}

long ss_utf8_check(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* ASCII fast path, sixteen bytes at a time. */
        while (i + 16 <= n) {
            uint64_t w, x;
            memcpy(&w, s + i, 8);
            memcpy(&x, s + i + 8, 8);
            if ((w | x) & 0x8080808080808080ULL)
                break;
            i += 16;
        }
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ULL)
                break;
            i += 8;
        }
        if (i >= n)
            break;
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return (long)i;
        }
        if (i + need >= n)
            return (long)i;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return (long)i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (need == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return (long)i;
        i += need + 1;
    }
    return -1;
}

static int hex4(const unsigned char *p, uint32_t *v)
{
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9')
            x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *v = x;
    return SS_OK;
}

int ss_jscan_string_slow(ss_jscan *js, const unsigned char *p, const unsigned char *q, ss_str *out)
{
    const unsigned char *end = js->end;
    ss_buf *b = js->scratch;
    char *dst = b->data + b->len, *d0 = dst;
    memcpy(dst, p, (size_t)(q - p));
    dst += q - p;
    p = q;
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') {
            out->p = d0;
            out->n = (uint32_t)(dst - d0);
            b->len += (size_t)(dst - d0);
            js->p = p + 1;
            return SS_OK;
        }
        if (c < 0x20) {
            js->p = p;
            return ss_jscan_fail(js, "invalid JSON at byte %zu: control character in a string",
                                 (size_t)(p - js->start));
        }
        if (c != '\\') {
            *dst++ = (char)c;
            p++;
            continue;
        }
        if (p + 1 >= end)
            break;
        c = p[1];
        p += 2;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            *dst++ = (char)c;
            break;
        case 'b':
            *dst++ = '\b';
            break;
        case 'f':
            *dst++ = '\f';
            break;
        case 'n':
            *dst++ = '\n';
            break;
        case 'r':
            *dst++ = '\r';
            break;
        case 't':
            *dst++ = '\t';
            break;
        case 'u': {
            uint32_t cp, lo;
            if (p + 4 > end || hex4(p, &cp))
                return ss_jscan_fail(js, "invalid JSON at byte %zu: bad \\u escape",
                                     (size_t)(p - js->start));
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (p + 6 > end || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xdc00 ||
                    lo > 0xdfff)
                    return ss_jscan_fail(
                        js, "invalid JSON at byte %zu: unpaired surrogate in \\u escape",
                        (size_t)(p - js->start));
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return ss_jscan_fail(js,
                                     "invalid JSON at byte %zu: unpaired surrogate in \\u escape",
                                     (size_t)(p - js->start));
            } else if (cp == 0) {
                return ss_jscan_fail(js,
                                     "invalid JSON at byte %zu: \\u0000 is not allowed in a string",
                                     (size_t)(p - js->start));
            }
            /* An escape is at least as long as its UTF-8 encoding. */
            if (cp < 0x80) {
                *dst++ = (char)cp;
            } else if (cp < 0x800) {
                *dst++ = (char)(0xc0 | (cp >> 6));
                *dst++ = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                *dst++ = (char)(0xe0 | (cp >> 12));
                *dst++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *dst++ = (char)(0x80 | (cp & 0x3f));
            } else {
                *dst++ = (char)(0xf0 | (cp >> 18));
                *dst++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                *dst++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *dst++ = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default:
            return ss_jscan_fail(js, "invalid JSON at byte %zu: bad escape '\\%c'",
                                 (size_t)(p - 1 - js->start), c >= 0x20 && c < 0x7f ? c : '?');
        }
    }
    js->p = end;
    return ss_jscan_syntax(js, "'\"' to close a string");
}

int ss_jscan_number(ss_jscan *js, ss_str *out, int *is_int)
{
    const unsigned char *q = js->p + (*js->p == '-');
    if (q >= js->end || *q < '0' || *q > '9')
        return ss_jscan_syntax(js, "a number");
    if (*q == '0')
        q++;
    else
        while (q < js->end && *q >= '0' && *q <= '9')
            q++;
    *is_int = 1;
    if (q < js->end && *q == '.') {
        *is_int = 0;
        q++;
        if (q >= js->end || *q < '0' || *q > '9')
            return ss_jscan_syntax(js, "digits after '.'");
        while (q < js->end && *q >= '0' && *q <= '9')
            q++;
    }
    if (q < js->end && (*q == 'e' || *q == 'E')) {
        *is_int = 0;
        q++;
        if (q < js->end && (*q == '+' || *q == '-'))
            q++;
        if (q >= js->end || *q < '0' || *q > '9')
            return ss_jscan_syntax(js, "exponent digits");
        while (q < js->end && *q >= '0' && *q <= '9')
            q++;
    }
    out->p = (const char *)js->p;
    out->n = (uint32_t)(q - js->p);
    js->p = q;
    return SS_OK;
}

/* Skips any JSON value (for fields outside the contract). */
int ss_jscan_skip(ss_jscan *js, int depth)
{
    if (depth > 32)
        return ss_jscan_fail(js, "invalid JSON: nested deeper than 32 levels");
    ss_jscan_ws(js);
    if (js->p >= js->end)
        return ss_jscan_syntax(js, "a value");
    unsigned char c = *js->p;
    if (c == '"') {
        ss_str tmp;
        return ss_jscan_string(js, &tmp);
    }
    if (c == '{' || c == '[') {
        unsigned char close = c == '{' ? '}' : ']';
        js->p++;
        ss_jscan_ws(js);
        if (js->p < js->end && *js->p == close) {
            js->p++;
            return SS_OK;
        }
        for (;;) {
            if (c == '{') {
                ss_jscan_ws(js);
                ss_str k;
                if (js->p >= js->end || *js->p != '"')
                    return ss_jscan_syntax(js, "a key");
                if (ss_jscan_string(js, &k))
                    return SS_EINVAL;
                ss_jscan_ws(js);
                if (js->p >= js->end || *js->p != ':')
                    return ss_jscan_syntax(js, "':'");
                js->p++;
            }
            if (ss_jscan_skip(js, depth + 1))
                return SS_EINVAL;
            ss_jscan_ws(js);
            if (js->p < js->end && *js->p == ',') {
                js->p++;
                continue;
            }
            if (js->p < js->end && *js->p == close) {
                js->p++;
                return SS_OK;
            }
            return ss_jscan_syntax(js, c == '{' ? "',' or '}'" : "',' or ']'");
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        ss_str num;
        int is_int;
        return ss_jscan_number(js, &num, &is_int);
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(js->end - js->p) >= n && memcmp(js->p, lits[i], n) == 0) {
            js->p += n;
            return SS_OK;
        }
    }
    return ss_jscan_syntax(js, "a value");
}

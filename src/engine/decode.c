#include "engine/decode.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/status.h"
#include "common/timeutil.h"

#define MAX_ID          128
#define MAX_NAME        256
#define MAX_MONEY_CENTS 100000000000LL /* one billion in currency units */

enum field {
    F_TYPE,
    F_EVENT_ID,
    F_ORDER_ID,
    F_TS,
    F_CUSTOMER_ID,
    F_CUSTOMER_SEGMENT,
    F_PRODUCT_ID,
    F_PRODUCT_NAME,
    F_CATEGORY,
    F_CITY,
    F_COUNTRY,
    F_QUANTITY,
    F_UNIT_PRICE,
    F_AMOUNT,
    F_DISCOUNT,
    F_TAX,
    F_SHIPPING,
    F_TOTAL_PRICE,
    F_CURRENCY,
    F_PAYMENT_METHOD,
    F_STATUS,
    F_FAILURE_REASON,
    F_ATTEMPT,
    F_REASON,
    F_REFUND,
    F_COUNT
};

enum kind { K_STR, K_INT, K_MONEY };

static const struct {
    const char *name;
    unsigned char len;
    unsigned char kind;
} fields[F_COUNT] = {
#define FD(id, n, k) [id] = {n, sizeof(n) - 1, k}
    FD(F_TYPE, "type", K_STR),
    FD(F_EVENT_ID, "event_id", K_STR),
    FD(F_ORDER_ID, "order_id", K_STR),
    FD(F_TS, "ts", K_STR),
    FD(F_CUSTOMER_ID, "customer_id", K_STR),
    FD(F_CUSTOMER_SEGMENT, "customer_segment", K_STR),
    FD(F_PRODUCT_ID, "product_id", K_STR),
    FD(F_PRODUCT_NAME, "product_name", K_STR),
    FD(F_CATEGORY, "category", K_STR),
    FD(F_CITY, "city", K_STR),
    FD(F_COUNTRY, "country", K_STR),
    FD(F_QUANTITY, "quantity", K_INT),
    FD(F_UNIT_PRICE, "unit_price", K_MONEY),
    FD(F_AMOUNT, "amount", K_MONEY),
    FD(F_DISCOUNT, "discount", K_MONEY),
    FD(F_TAX, "tax", K_MONEY),
    FD(F_SHIPPING, "shipping", K_MONEY),
    FD(F_TOTAL_PRICE, "total_price", K_MONEY),
    FD(F_CURRENCY, "currency", K_STR),
    FD(F_PAYMENT_METHOD, "payment_method", K_STR),
    FD(F_STATUS, "status", K_STR),
    FD(F_FAILURE_REASON, "failure_reason", K_STR),
    FD(F_ATTEMPT, "attempt", K_INT),
    FD(F_REASON, "reason", K_STR),
    FD(F_REFUND, "refund", K_MONEY),
#undef FD
};

/* Parse state for one line. */
typedef struct parser {
    const unsigned char *p, *end, *start;
    ss_decoder *d;
    char *reason;
    size_t rlen;
    uint32_t seen, isnull;
    ss_str s[F_COUNT];
    int64_t n[F_COUNT];
} parser;

static int fail(parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(parser *ps, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->reason, ps->rlen, fmt, ap);
    va_end(ap);
    return SS_EINVAL;
}

static int syntax(parser *ps, const char *what)
{
    if (ps->p >= ps->end)
        return fail(ps, "invalid JSON: unexpected end of line, expected %s", what);
    return fail(ps, "invalid JSON at byte %zu: expected %s", (size_t)(ps->p - ps->start), what);
}

void ss_decoder_init(ss_decoder *d)
{
    ss_buf_init(&d->scratch, 4096);
}

void ss_decoder_free(ss_decoder *d)
{
    if (d)
        ss_buf_free(&d->scratch);
}

/* Returns the offset of the first invalid UTF-8 byte, or -1 when valid.
 * Overlong forms, surrogates and code points past U+10FFFF are invalid. */
static long utf8_check(const unsigned char *s, size_t n)
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

static inline void skip_ws(parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n'))
        ps->p++;
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
    return 0;
}

/* Parses a string at ps->p (at the opening quote). Strings without escapes
 * point into the line; others are unescaped into the scratch buffer, which
 * was sized for the whole line up front and so never moves. */
static int parse_string_slow(parser *ps, const unsigned char *p, const unsigned char *q,
                             ss_str *out);

/* The common case, a string without escapes, stays inline in the parser. */
static inline __attribute__((always_inline)) int parse_string(parser *ps, ss_str *out)
{
    const unsigned char *p = ps->p + 1, *end = ps->end;
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
        ps->p = q + 1;
        return SS_OK;
    }
    return parse_string_slow(ps, p, q, out);
}

static int parse_string_slow(parser *ps, const unsigned char *p, const unsigned char *q,
                             ss_str *out)
{
    const unsigned char *end = ps->end;
    ss_buf *b = &ps->d->scratch;
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
            ps->p = p + 1;
            return SS_OK;
        }
        if (c < 0x20) {
            ps->p = p;
            return fail(ps, "invalid JSON at byte %zu: control character in a string",
                        (size_t)(p - ps->start));
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
                return fail(ps, "invalid JSON at byte %zu: bad \\u escape",
                            (size_t)(p - ps->start));
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (p + 6 > end || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xdc00 ||
                    lo > 0xdfff)
                    return fail(ps, "invalid JSON at byte %zu: unpaired surrogate in \\u escape",
                                (size_t)(p - ps->start));
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return fail(ps, "invalid JSON at byte %zu: unpaired surrogate in \\u escape",
                            (size_t)(p - ps->start));
            } else if (cp == 0) {
                return fail(ps, "invalid JSON at byte %zu: \\u0000 is not allowed in a string",
                            (size_t)(p - ps->start));
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
            return fail(ps, "invalid JSON at byte %zu: bad escape '\\%c'",
                        (size_t)(p - 1 - ps->start), c >= 0x20 && c < 0x7f ? c : '?');
        }
    }
    ps->p = end;
    return syntax(ps, "'\"' to close a string");
}

/* Skips any JSON value (for fields outside the contract). */
static int skip_value(parser *ps, int depth)
{
    if (depth > 32)
        return fail(ps, "invalid JSON: nested deeper than 32 levels");
    skip_ws(ps);
    if (ps->p >= ps->end)
        return syntax(ps, "a value");
    unsigned char c = *ps->p;
    if (c == '"') {
        ss_str tmp;
        return parse_string(ps, &tmp);
    }
    if (c == '{' || c == '[') {
        unsigned char close = c == '{' ? '}' : ']';
        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return SS_OK;
        }
        for (;;) {
            if (c == '{') {
                skip_ws(ps);
                ss_str k;
                if (ps->p >= ps->end || *ps->p != '"')
                    return syntax(ps, "a key");
                if (parse_string(ps, &k))
                    return SS_EINVAL;
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':')
                    return syntax(ps, "':'");
                ps->p++;
            }
            if (skip_value(ps, depth + 1))
                return SS_EINVAL;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                return SS_OK;
            }
            return syntax(ps, c == '{' ? "',' or '}'" : "',' or ']'");
        }
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        const unsigned char *q = ps->p + (c == '-');
        if (q >= ps->end || *q < '0' || *q > '9')
            return syntax(ps, "a number");
        if (*q == '0')
            q++;
        else
            while (q < ps->end && *q >= '0' && *q <= '9')
                q++;
        if (q < ps->end && *q == '.') {
            q++;
            if (q >= ps->end || *q < '0' || *q > '9')
                return syntax(ps, "digits after '.'");
            while (q < ps->end && *q >= '0' && *q <= '9')
                q++;
        }
        if (q < ps->end && (*q == 'e' || *q == 'E')) {
            q++;
            if (q < ps->end && (*q == '+' || *q == '-'))
                q++;
            if (q >= ps->end || *q < '0' || *q > '9')
                return syntax(ps, "exponent digits");
            while (q < ps->end && *q >= '0' && *q <= '9')
                q++;
        }
        ps->p = q;
        return SS_OK;
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lits[i]);
        if ((size_t)(ps->end - ps->p) >= n && memcmp(ps->p, lits[i], n) == 0) {
            ps->p += n;
            return SS_OK;
        }
    }
    return syntax(ps, "a value");
}

/* Reads a JSON number that must be money: a non-negative decimal with at most
 * two decimals, converted exactly to cents (no floating point involved). */
static int parse_money(parser *ps, int f)
{
    const unsigned char *p = ps->p, *end = ps->end;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return fail(ps, "field '%s' must be a number", fields[f].name);
    int64_t units = 0;
    int digits = 0;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (++digits > 12)
                return fail(ps, "field '%s' is out of range (more than 12 digits)", fields[f].name);
            units = units * 10 + (*p++ - '0');
        }
    }
    int64_t cents = 0;
    int dec = 0;
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            if (++dec > 2) {
                if (*p != '0')
                    return fail(ps,
                                "field '%s' has more than two decimals; money is in whole "
                                "cents",
                                fields[f].name);
            } else {
                cents = cents * 10 + (*p - '0');
            }
            p++;
        }
        if (dec == 0)
            return fail(ps, "invalid JSON at byte %zu: digits after '.'", (size_t)(p - ps->start));
    }
    if (dec == 1)
        cents *= 10;
    if (p < end && (*p == 'e' || *p == 'E'))
        return fail(ps, "field '%s' must be written as a plain decimal, not with an exponent",
                    fields[f].name);
    ps->p = p;
    int64_t v = units * 100 + cents;
    if (neg && v != 0)
        return fail(ps, "field '%s' is negative (%s%lld.%02lld); money must be >= 0",
                    fields[f].name, "-", (long long)(v / 100), (long long)(v % 100));
    if (v > MAX_MONEY_CENTS)
        return fail(ps, "field '%s' is out of range (over 1,000,000,000.00)", fields[f].name);
    ps->n[f] = v;
    return SS_OK;
}

static int parse_int(parser *ps, int f)
{
    const unsigned char *p = ps->p, *end = ps->end;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return fail(ps, "field '%s' must be a whole number", fields[f].name);
    int64_t v = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (++digits > 12)
            return fail(ps, "field '%s' is out of range", fields[f].name);
        v = v * 10 + (*p++ - '0');
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
        return fail(ps, "field '%s' must be a whole number", fields[f].name);
    ps->p = p;
    ps->n[f] = neg ? -v : v;
    return SS_OK;
}

/* Keys of the contract by length, so that a key costs one or two compares. */
static const int8_t by_len[17][8] = {
    {-1, -1, -1, -1, -1, -1, -1, -1},
    {-1, -1, -1, -1, -1, -1, -1, -1},
    {F_TS, -1, -1, -1, -1, -1, -1, -1},
    {F_TAX, -1, -1, -1, -1, -1, -1, -1},
    {F_TYPE, F_CITY, -1, -1, -1, -1, -1, -1},
    {-1, -1, -1, -1, -1, -1, -1, -1},
    {F_AMOUNT, F_STATUS, F_REASON, F_REFUND, -1, -1, -1, -1},
    {F_COUNTRY, F_ATTEMPT, -1, -1, -1, -1, -1, -1},
    {F_EVENT_ID, F_ORDER_ID, F_CATEGORY, F_QUANTITY, F_DISCOUNT, F_SHIPPING, F_CURRENCY, -1},
    {-1, -1, -1, -1, -1, -1, -1, -1},
    {F_PRODUCT_ID, F_UNIT_PRICE, -1, -1, -1, -1, -1, -1},
    {F_CUSTOMER_ID, F_TOTAL_PRICE, -1, -1, -1, -1, -1, -1},
    {F_PRODUCT_NAME, -1, -1, -1, -1, -1, -1, -1},
    {-1, -1, -1, -1, -1, -1, -1, -1},
    {F_PAYMENT_METHOD, F_FAILURE_REASON, -1, -1, -1, -1, -1, -1},
    {-1, -1, -1, -1, -1, -1, -1, -1},
    {F_CUSTOMER_SEGMENT, -1, -1, -1, -1, -1, -1, -1},
};

static int match_field(const unsigned char *k, uint32_t n)
{
    if (n >= sizeof by_len / sizeof by_len[0])
        return -1;
    for (const int8_t *f = by_len[n]; *f >= 0; f++)
        if (fields[*f].name[0] == (char)k[0] && memcmp(fields[*f].name, k, n) == 0)
            return *f;
    return -1;
}

static int parse_object(parser *ps)
{
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '{')
        return syntax(ps, "'{' (each line must be one JSON object)");
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return SS_OK;
    }
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"')
            return syntax(ps, "a key in quotes");
        ss_str key;
        if (parse_string(ps, &key))
            return SS_EINVAL;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':')
            return syntax(ps, "':'");
        ps->p++;
        skip_ws(ps);
        int f = key.n ? match_field((const unsigned char *)key.p, key.n) : -1;
        if (f < 0) {
            if (skip_value(ps, 1))
                return SS_EINVAL;
        } else {
            if (ps->seen & (1u << f))
                return fail(ps, "duplicate field '%s'", fields[f].name);
            ps->seen |= 1u << f;
            if (ps->p >= ps->end)
                return syntax(ps, "a value");
            unsigned char c = *ps->p;
            if ((size_t)(ps->end - ps->p) >= 4 && memcmp(ps->p, "null", 4) == 0) {
                ps->isnull |= 1u << f;
                ps->p += 4;
            } else if (fields[f].kind == K_STR) {
                if (c != '"')
                    return fail(ps, "field '%s' must be a string", fields[f].name);
                if (parse_string(ps, &ps->s[f]))
                    return SS_EINVAL;
            } else if (c == '"' || c == '{' || c == '[' || c == 't' || c == 'f') {
                return fail(ps, "field '%s' must be a number, not %s", fields[f].name,
                            c == '"'               ? "a string"
                            : c == 't' || c == 'f' ? "a boolean"
                                                   : "an object or array");
            } else if (fields[f].kind == K_MONEY) {
                if (parse_money(ps, f))
                    return SS_EINVAL;
            } else if (parse_int(ps, f)) {
                return SS_EINVAL;
            }
        }
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return SS_OK;
        }
        return syntax(ps, "',' or '}'");
    }
}

static const uint32_t need_common = 1u << F_TYPE | 1u << F_EVENT_ID | 1u << F_ORDER_ID | 1u << F_TS;
static const uint32_t need_order =
    1u << F_CUSTOMER_ID | 1u << F_CUSTOMER_SEGMENT | 1u << F_PRODUCT_ID | 1u << F_PRODUCT_NAME |
    1u << F_CATEGORY | 1u << F_CITY | 1u << F_COUNTRY | 1u << F_QUANTITY | 1u << F_UNIT_PRICE |
    1u << F_AMOUNT | 1u << F_DISCOUNT | 1u << F_TAX | 1u << F_SHIPPING | 1u << F_TOTAL_PRICE |
    1u << F_CURRENCY | 1u << F_PAYMENT_METHOD;
static const uint32_t need_payment =
    1u << F_PAYMENT_METHOD | 1u << F_AMOUNT | 1u << F_STATUS | 1u << F_ATTEMPT;
static const uint32_t need_cancel = 1u << F_REASON | 1u << F_REFUND;

static int require(parser *ps, uint32_t need)
{
    uint32_t bad = (need & ~ps->seen) | (need & ps->isnull);
    if (bad) {
        int f = __builtin_ctz(bad);
        return fail(ps, (need & ~ps->seen) >> f & 1u ? "missing field '%s'" : "field '%s' is null",
                    fields[f].name);
    }
    /* Strings: non-empty, bounded. */
    static const uint32_t ids =
        1u << F_EVENT_ID | 1u << F_ORDER_ID | 1u << F_CUSTOMER_ID | 1u << F_PRODUCT_ID;
    static const uint32_t not_str = 1u << F_QUANTITY | 1u << F_ATTEMPT | 1u << F_UNIT_PRICE |
                                    1u << F_AMOUNT | 1u << F_DISCOUNT | 1u << F_TAX |
                                    1u << F_SHIPPING | 1u << F_TOTAL_PRICE | 1u << F_REFUND;
    uint32_t strs = need & ~not_str;
    while (strs) {
        int f = __builtin_ctz(strs);
        strs &= strs - 1;
        uint32_t lim = (ids >> f & 1u) ? MAX_ID : MAX_NAME;
        if (ps->s[f].n == 0)
            return fail(ps, "field '%s' is empty", fields[f].name);
        if (ps->s[f].n > lim)
            return fail(ps, "field '%s' is longer than %u bytes", fields[f].name, lim);
    }
    return SS_OK;
}

static void fmt_cents(char *out, size_t n, int64_t c)
{
    snprintf(out, n, "%lld.%02lld", (long long)(c / 100), (long long)(c % 100));
}

int ss_event_decode(ss_decoder *d, const char *line, size_t len, ss_event *ev, char *reason,
                    size_t rlen)
{
    /* Only the masks need clearing: a field's value is read only once its
     * bit is set, and zeroing the arrays for every line would cost more. */
    parser ps;
    ps.p = ps.start = (const unsigned char *)line;
    ps.end = (const unsigned char *)line + len;
    ps.d = d;
    ps.reason = reason;
    ps.rlen = rlen;
    ps.seen = ps.isnull = 0;
    memset(ev, 0, sizeof *ev);
    if (len > SS_LINE_MAX)
        return fail(&ps, "line of %zu bytes exceeds the limit of %u bytes", len, SS_LINE_MAX);
    long bad = utf8_check(ps.p, len);
    if (bad >= 0)
        return fail(&ps, "invalid UTF-8 at byte %ld", bad);
    d->scratch.len = 0;
    ss_buf_reserve(&d->scratch, len + 16);
    if (parse_object(&ps))
        return SS_EINVAL;
    skip_ws(&ps);
    if (ps.p != ps.end)
        return fail(&ps, "invalid JSON at byte %zu: text after the object",
                    (size_t)(ps.p - ps.start));
    if (require(&ps, need_common))
        return SS_EINVAL;

    ss_str t = ps.s[F_TYPE];
    if (t.n == 5 && memcmp(t.p, "order", 5) == 0)
        ev->type = SS_EV_ORDER;
    else if (t.n == 7 && memcmp(t.p, "payment", 7) == 0)
        ev->type = SS_EV_PAYMENT;
    else if (t.n == 12 && memcmp(t.p, "cancellation", 12) == 0)
        ev->type = SS_EV_CANCELLATION;
    else
        return fail(&ps, "unknown type '%.*s'; expected order, payment or cancellation",
                    (int)(t.n > 40 ? 40 : t.n), t.p);

    if (ss_time_parse_iso(ps.s[F_TS].p, ps.s[F_TS].n, &ev->ts))
        return fail(&ps, "field 'ts' is not a UTC ISO-8601 time like 2026-11-02T14:03:11.123Z");
    if (ev->ts < 0 || ev->ts >= 253402300800000LL)
        return fail(&ps, "field 'ts' is outside the years 1970 to 9999");
    ev->event_id = ps.s[F_EVENT_ID];
    ev->order_id = ps.s[F_ORDER_ID];
    char a[32], b[32];

    switch (ev->type) {
    case SS_EV_ORDER: {
        if (require(&ps, need_order))
            return SS_EINVAL;
        ss_order *o = &ev->u.order;
        o->customer_id = ps.s[F_CUSTOMER_ID];
        o->customer_segment = ps.s[F_CUSTOMER_SEGMENT];
        o->product_id = ps.s[F_PRODUCT_ID];
        o->product_name = ps.s[F_PRODUCT_NAME];
        o->category = ps.s[F_CATEGORY];
        o->city = ps.s[F_CITY];
        o->country = ps.s[F_COUNTRY];
        o->currency = ps.s[F_CURRENCY];
        o->payment_method = ps.s[F_PAYMENT_METHOD];
        if (ps.n[F_QUANTITY] < 1 || ps.n[F_QUANTITY] > 100000)
            return fail(&ps, "field 'quantity' must be from 1 to 100000 (got %lld)",
                        (long long)ps.n[F_QUANTITY]);
        o->quantity = (int32_t)ps.n[F_QUANTITY];
        o->unit_price = ps.n[F_UNIT_PRICE];
        o->amount = ps.n[F_AMOUNT];
        o->discount = ps.n[F_DISCOUNT];
        o->tax = ps.n[F_TAX];
        o->shipping = ps.n[F_SHIPPING];
        o->total_price = ps.n[F_TOTAL_PRICE];
        if (o->currency.n != 3)
            return fail(&ps, "field 'currency' must be a three-letter code such as EUR");
        if (o->amount != o->unit_price * o->quantity) {
            fmt_cents(a, sizeof a, o->amount);
            fmt_cents(b, sizeof b, o->unit_price * o->quantity);
            return fail(&ps, "amount %s does not equal quantity x unit_price = %s", a, b);
        }
        if (o->discount > o->amount)
            return fail(&ps, "discount is larger than amount");
        int64_t want = o->amount - o->discount + o->tax + o->shipping;
        if (o->total_price != want) {
            fmt_cents(a, sizeof a, o->total_price);
            fmt_cents(b, sizeof b, want);
            return fail(
                &ps, "total_price %s does not equal amount - discount + tax + shipping = %s", a, b);
        }
        break;
    }
    case SS_EV_PAYMENT: {
        if (require(&ps, need_payment))
            return SS_EINVAL;
        ss_payment *p = &ev->u.payment;
        p->payment_method = ps.s[F_PAYMENT_METHOD];
        p->amount = ps.n[F_AMOUNT];
        if (ps.n[F_ATTEMPT] < 1 || ps.n[F_ATTEMPT] > 1000)
            return fail(&ps, "field 'attempt' must be from 1 to 1000 (got %lld)",
                        (long long)ps.n[F_ATTEMPT]);
        p->attempt = (int32_t)ps.n[F_ATTEMPT];
        ss_str st = ps.s[F_STATUS];
        int has_reason = (ps.seen & ~ps.isnull) >> F_FAILURE_REASON & 1u;
        if (st.n == 7 && memcmp(st.p, "success", 7) == 0) {
            p->success = 1;
            if (has_reason && ps.s[F_FAILURE_REASON].n)
                return fail(&ps, "failure_reason is given for a successful payment");
        } else if (st.n == 6 && memcmp(st.p, "failed", 6) == 0) {
            p->success = 0;
            if (!has_reason || ps.s[F_FAILURE_REASON].n == 0)
                return fail(&ps, "missing field 'failure_reason' for a failed payment");
            if (ps.s[F_FAILURE_REASON].n > MAX_NAME)
                return fail(&ps, "field 'failure_reason' is longer than %u bytes", MAX_NAME);
            p->failure_reason = ps.s[F_FAILURE_REASON];
        } else {
            return fail(&ps, "field 'status' must be success or failed");
        }
        break;
    }
    case SS_EV_CANCELLATION:
        if (require(&ps, need_cancel))
            return SS_EINVAL;
        ev->u.cancel.reason = ps.s[F_REASON];
        ev->u.cancel.refund = ps.n[F_REFUND];
        break;
    }
    return SS_OK;
}

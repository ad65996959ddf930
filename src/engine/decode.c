#include "engine/decode.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/status.h"
#include "common/timeutil.h"
#include "event/jscan.h"

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
    ss_jscan js;
    uint32_t seen, isnull;
    ss_str s[F_COUNT];
    int64_t n[F_COUNT];
} parser;

#define fail(ps, ...)    ss_jscan_fail(&(ps)->js, __VA_ARGS__)
#define syntax(ps, what) ss_jscan_syntax(&(ps)->js, what)

void ss_decoder_init(ss_decoder *d)
{
    ss_buf_init(&d->scratch, 4096);
}

void ss_decoder_free(ss_decoder *d)
{
    if (d)
        ss_buf_free(&d->scratch);
}

/* Reads a JSON number that must be money: a non-negative decimal with at most
 * two decimals, converted exactly to cents (no floating point involved). */
static int parse_money(parser *ps, int f)
{
    const unsigned char *p = ps->js.p, *end = ps->js.end;
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
            return fail(ps, "invalid JSON at byte %zu: digits after '.'",
                        (size_t)(p - ps->js.start));
    }
    if (dec == 1)
        cents *= 10;
    if (p < end && (*p == 'e' || *p == 'E'))
        return fail(ps, "field '%s' must be written as a plain decimal, not with an exponent",
                    fields[f].name);
    ps->js.p = p;
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
    const unsigned char *p = ps->js.p, *end = ps->js.end;
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
    ps->js.p = p;
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
    ss_jscan_ws(&ps->js);
    if (ps->js.p >= ps->js.end || *ps->js.p != '{')
        return syntax(ps, "'{' (each line must be one JSON object)");
    ps->js.p++;
    ss_jscan_ws(&ps->js);
    if (ps->js.p < ps->js.end && *ps->js.p == '}') {
        ps->js.p++;
        return SS_OK;
    }
    for (;;) {
        ss_jscan_ws(&ps->js);
        if (ps->js.p >= ps->js.end || *ps->js.p != '"')
            return syntax(ps, "a key in quotes");
        ss_str key;
        if (ss_jscan_string(&ps->js, &key))
            return SS_EINVAL;
        ss_jscan_ws(&ps->js);
        if (ps->js.p >= ps->js.end || *ps->js.p != ':')
            return syntax(ps, "':'");
        ps->js.p++;
        ss_jscan_ws(&ps->js);
        int f = key.n ? match_field((const unsigned char *)key.p, key.n) : -1;
        if (f < 0) {
            if (ss_jscan_skip(&ps->js, 1))
                return SS_EINVAL;
        } else {
            if (ps->seen & (1u << f))
                return fail(ps, "duplicate field '%s'", fields[f].name);
            ps->seen |= 1u << f;
            if (ps->js.p >= ps->js.end)
                return syntax(ps, "a value");
            unsigned char c = *ps->js.p;
            if ((size_t)(ps->js.end - ps->js.p) >= 4 && memcmp(ps->js.p, "null", 4) == 0) {
                ps->isnull |= 1u << f;
                ps->js.p += 4;
            } else if (fields[f].kind == K_STR) {
                if (c != '"')
                    return fail(ps, "field '%s' must be a string", fields[f].name);
                if (ss_jscan_string(&ps->js, &ps->s[f]))
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
        ss_jscan_ws(&ps->js);
        if (ps->js.p < ps->js.end && *ps->js.p == ',') {
            ps->js.p++;
            continue;
        }
        if (ps->js.p < ps->js.end && *ps->js.p == '}') {
            ps->js.p++;
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
    ev->h_event = ev->h_order = 0;
    parser ps;
    memset(ev, 0, sizeof *ev);
    if (len > SS_LINE_MAX) {
        snprintf(reason, rlen, "line of %zu bytes exceeds the limit of %u bytes", len, SS_LINE_MAX);
        return SS_EINVAL;
    }
    ss_jscan_begin(&ps.js, line, len, &d->scratch, reason, rlen);
    ps.seen = ps.isnull = 0;
    long bad = ss_utf8_check(ps.js.p, len);
    if (bad >= 0)
        return fail(&ps, "invalid UTF-8 at byte %ld", bad);
    if (parse_object(&ps))
        return SS_EINVAL;
    ss_jscan_ws(&ps.js);
    if (ps.js.p != ps.js.end)
        return fail(&ps, "invalid JSON at byte %zu: text after the object",
                    (size_t)(ps.js.p - ps.js.start));
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
    /* Here, on the reader's thread, rather than in every table of the
     * engine's. */
    ss_event_hashes(ev);
    return SS_OK;
}

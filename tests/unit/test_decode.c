/* Unit tests of engine/decode: ss_event_decode on the data dictionary's example
 * lines (every field, money in exact cents), key order independence, unknown
 * fields (nested objects and arrays included), string escapes (\u escapes and
 * surrogate pairs), and a rejection with a reason that names the problem for
 * each class of bad input.
 *
 * Every line is decoded from a heap copy of exactly its length with no
 * terminator, so that under ASan any read past the end is caught; every
 * prefix of the valid lines and a deterministic set of one-byte mutations are
 * decoded as well (each must be accepted or rejected with a reason). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/status.h"
#include "engine/decode.h"

/* 2026-11-02T14:03:11.123Z (as in test_encode.c) and the examples' times. */
#define TS_BASE       1793628191123LL
#define TS_ORDER      (TS_BASE - 146501) /* 14:00:44.622 */
#define TS_PAY1       (TS_BASE - 136546) /* 14:00:54.577 */
#define TS_PAY2       (TS_BASE - 91366)  /* 14:01:39.757 */
#define TS_CANCEL_988 (TS_BASE - 44215)  /* 14:02:26.908 */
#define TS_CANCEL_820 (TS_BASE + 187835) /* 14:06:18.958 */
#define TS_EPOCH_2026 (1793577600000LL)  /* 2026-11-02T00:00:00.000Z */

static const char ORDER[] =
    "{\"type\":\"order\",\"event_id\":\"e-12225cac291e-1882-o\",\"order_id\":\"o-12225cac291e-"
    "1882\",\"ts\":\"2026-11-02T14:00:44.622Z\",\"customer_id\":\"c-12225cac291e-1592\","
    "\"customer_segment\":\"regular\",\"product_id\":\"P000891\",\"product_name\":\"Riviera "
    "Dress U173\",\"category\":\"Fashion\",\"city\":\"Busan\",\"country\":\"South Korea\","
    "\"quantity\":3,\"unit_price\":65.99,\"amount\":197.97,\"discount\":0.00,\"tax\":19.80,"
    "\"shipping\":0.00,\"total_price\":217.77,\"currency\":\"EUR\",\"payment_method\":\"card\"}";

/* The same order, keys in reverse order, with whitespace between tokens. */
static const char ORDER_REVERSED[] =
    " {\t\"payment_method\" : \"card\" , \"currency\":\"EUR\",\"total_price\":217.77,"
    "\"shipping\":0.00,\"tax\":19.80,\"discount\":0.00,\"amount\":197.97,\"unit_price\":65.99,"
    "\"quantity\":3,\"country\":\"South Korea\",\"city\":\"Busan\",\"category\":\"Fashion\","
    "\"product_name\":\"Riviera Dress U173\",\"product_id\":\"P000891\",\"customer_segment\":"
    "\"regular\",\"customer_id\":\"c-12225cac291e-1592\",\"ts\":\"2026-11-02T14:00:44.622Z\","
    "\"order_id\":\"o-12225cac291e-1882\",\"event_id\":\"e-12225cac291e-1882-o\",\"type\":"
    "\"order\" }\r";

/* The same order with fields outside the contract everywhere, nested values
 * of every kind, and keys and strings written with escapes. */
static const char ORDER_EXTRA[] =
    "{\"v\":2,\"meta\":{\"src\":\"web\",\"tags\":[\"a\",{\"b\":[1,-2.5e+3,true,false,null,{}]}"
    ",[]],\"q\":\"say \\\"hi\\\" \\u00e9\\ud83d\\ude00\"},\"\\u0074ype\":\"order\","
    "\"event_id\":\"e-12225cac291e-1882-o\",\"order_id\":\"o-12225cac291e-1882\",\"ts\":"
    "\"2026-11-02T14:00:44.622Z\",\"customer_id\":\"c-12225cac291e-1592\",\"customer_segment\":"
    "\"regular\",\"product_id\":\"P000891\",\"product_name\":\"Riviera Dress U173\","
    "\"category\":\"Fashion\",\"city\":\"Bu\\u0073an\",\"country\":\"South\\u0020Korea\","
    "\"quantity\":3,\"unit_price\":65.99,\"amount\":197.97,\"discount\":0.00,\"tax\":19.80,"
    "\"shipping\":0.00,\"total_price\":217.77,\"currency\":\"EUR\",\"payment_method\":\"card\","
    "\"z\":null,\"n\":0,\"e\":1E9,\"x\":[[[[\"deep\"]]]],\"ty\":\"payment\",\"types\":\"x\"}";

static const char ORDER_DISCOUNT[] =
    "{\"type\":\"order\",\"event_id\":\"e-12225cac291e-72-o\",\"order_id\":\"o-12225cac291e-72\","
    "\"ts\":\"2026-11-02T14:00:01.841Z\",\"customer_id\":\"c-12225cac291e-72\","
    "\"customer_segment\":\"vip\",\"product_id\":\"P004717\",\"product_name\":\"Quill Stapler "
    "E138\",\"category\":\"Office Supplies\",\"city\":\"Madrid\",\"country\":\"Spain\","
    "\"quantity\":1,\"unit_price\":44.99,\"amount\":44.99,\"discount\":4.50,\"tax\":8.50,"
    "\"shipping\":4.99,\"total_price\":53.98,\"currency\":\"EUR\",\"payment_method\":\"card\"}";

static const char PAY_FAILED[] =
    "{\"type\":\"payment\",\"event_id\":\"e-12225cac291e-1882-p1\",\"order_id\":\"o-"
    "12225cac291e-1882\",\"ts\":\"2026-11-02T14:00:54.577Z\",\"payment_method\":\"card\","
    "\"amount\":217.77,\"status\":\"failed\",\"failure_reason\":\"timeout\",\"attempt\":1}";

static const char PAY_FAILED2[] =
    "{\"type\":\"payment\",\"event_id\":\"e-12225cac291e-1882-p2\",\"order_id\":\"o-"
    "12225cac291e-1882\",\"ts\":\"2026-11-02T14:01:39.757Z\",\"payment_method\":"
    "\"cash_on_delivery\",\"amount\":217.77,\"status\":\"failed\",\"failure_reason\":"
    "\"declined\",\"attempt\":2}";

static const char PAY_OK[] =
    "{\"type\":\"payment\",\"event_id\":\"e-12225cac291e-1882-p3\",\"order_id\":\"o-"
    "12225cac291e-1882\",\"ts\":\"2026-11-02T14:02:00.395Z\",\"payment_method\":\"card\","
    "\"amount\":217.77,\"status\":\"success\",\"attempt\":3}";

static const char CANCEL[] =
    "{\"type\":\"cancellation\",\"event_id\":\"e-12225cac291e-988-c\",\"order_id\":\"o-"
    "12225cac291e-988\",\"ts\":\"2026-11-02T14:02:26.908Z\",\"reason\":\"customer_request\","
    "\"refund\":78.53}";

static const char CANCEL_FAILED[] =
    "{\"type\":\"cancellation\",\"event_id\":\"e-12225cac291e-820-c\",\"order_id\":\"o-"
    "12225cac291e-820\",\"ts\":\"2026-11-02T14:06:18.958Z\",\"reason\":\"payment_failed\","
    "\"refund\":0.00}";

static ss_decoder dec;
static char *cur; /* the line last decoded: exactly its length, no terminator */
static char reason[512];

/* Decodes a heap copy of text[0..n); the copy lives until the next call, so
 * the event's strings stay valid as the decoder promises. */
static int decode_n(const char *text, size_t n, ss_event *ev)
{
    free(cur);
    cur = malloc(n);
    if (n)
        memcpy(cur, text, n);
    strcpy(reason, "(untouched)");
    return ss_event_decode(&dec, cur, n, ev, reason, sizeof reason);
}

static int decode(const char *text, ss_event *ev)
{
    return decode_n(text, strlen(text), ev);
}

/* A copy of s with the first occurrence of old replaced by new (aborts when
 * old is missing: that is a mistake in the test). */
static char *replace(const char *s, const char *old, const char *new_text)
{
    const char *at = strstr(s, old);
    if (!at) {
        fprintf(stderr, "test bug: '%s' not in '%s'\n", old, s);
        abort();
    }
    size_t a = (size_t)(at - s), o = strlen(old), nw = strlen(new_text), rest = strlen(at + o);
    char *out = malloc(a + nw + rest + 1);
    memcpy(out, s, a);
    memcpy(out + a, new_text, nw);
    memcpy(out + a + nw, at + o, rest + 1);
    return out;
}

static int sstr_eq(ss_str s, const char *want)
{
    return s.n == strlen(want) && memcmp(s.p, want, s.n) == 0;
}

#define CHECK_SSTR(s, want) check_sstr((s), (want), #s, __FILE__, __LINE__)

static int check_sstr(ss_str s, const char *want, const char *expr, const char *file, int line)
{
    return check_report(sstr_eq(s, want), file, line,
                        "%s: got \"%.*s\" (%u bytes), expected \"%s\"", expr, (int)s.n, s.p, s.n,
                        want);
}

#define ACCEPT(text, ev) check_accept((text), strlen(text), (ev), __FILE__, __LINE__)

static int check_accept(const char *text, size_t n, ss_event *ev, const char *file, int line)
{
    int rc = decode_n(text, n, ev);
    return check_report(rc == SS_OK, file, line, "rejected (%s): %.300s", reason, text);
}

/* Rejected, with a reason that contains needle. */
#define REJECT(text, needle)      check_reject((text), strlen(text), (needle), __FILE__, __LINE__)
#define REJECT_N(text, n, needle) check_reject((text), (n), (needle), __FILE__, __LINE__)

static int check_reject(const char *text, size_t n, const char *needle, const char *file, int line)
{
    ss_event ev;
    int rc = decode_n(text, n, &ev);
    if (!check_report(rc == SS_EINVAL, file, line, "accepted (rc %d): %.300s", rc, text))
        return 0;
    return check_report(strstr(reason, needle) != NULL, file, line,
                        "reason \"%s\" does not contain \"%s\" for: %.300s", reason, needle, text);
}

/* Replaces old by new in base and expects a rejection naming needle. */
#define REJECT_EDIT(base, old, new_text, needle)                                                   \
    do {                                                                                           \
        char *t_ = replace((base), (old), (new_text));                                             \
        REJECT(t_, (needle));                                                                      \
        free(t_);                                                                                  \
    } while (0)

#define ACCEPT_EDIT(base, old, new_text, ev)                                                       \
    do {                                                                                           \
        char *t_ = replace((base), (old), (new_text));                                             \
        ACCEPT(t_, (ev));                                                                          \
        free(t_);                                                                                  \
    } while (0)

static void check_order_example(const ss_event *ev, const char *what)
{
    if (!check_report(ev->type == SS_EV_ORDER, __FILE__, __LINE__, "%s: type %d", what,
                      (int)ev->type))
        return;
    const ss_order *o = &ev->u.order;
    CHECK_SSTR(ev->event_id, "e-12225cac291e-1882-o");
    CHECK_SSTR(ev->order_id, "o-12225cac291e-1882");
    CHECK_EQ_INT(ev->ts, TS_ORDER);
    CHECK_SSTR(o->customer_id, "c-12225cac291e-1592");
    CHECK_SSTR(o->customer_segment, "regular");
    CHECK_SSTR(o->product_id, "P000891");
    CHECK_SSTR(o->product_name, "Riviera Dress U173");
    CHECK_SSTR(o->category, "Fashion");
    CHECK_SSTR(o->city, "Busan");
    CHECK_SSTR(o->country, "South Korea");
    CHECK_SSTR(o->currency, "EUR");
    CHECK_SSTR(o->payment_method, "card");
    CHECK_EQ_INT(o->quantity, 3);
    CHECK_EQ_INT(o->unit_price, 6599);
    CHECK_EQ_INT(o->amount, 19797);
    CHECK_EQ_INT(o->discount, 0);
    CHECK_EQ_INT(o->tax, 1980);
    CHECK_EQ_INT(o->shipping, 0);
    CHECK_EQ_INT(o->total_price, 21777);
}

static void test_valid_events(void)
{
    ss_event ev;
    if (ACCEPT(ORDER, &ev))
        check_order_example(&ev, "order");
    if (ACCEPT(ORDER_REVERSED, &ev))
        check_order_example(&ev, "reversed keys");
    if (ACCEPT(ORDER_EXTRA, &ev))
        check_order_example(&ev, "unknown fields and escapes");

    if (ACCEPT(ORDER_DISCOUNT, &ev)) {
        const ss_order *o = &ev.u.order;
        CHECK_SSTR(o->customer_segment, "vip");
        CHECK_SSTR(o->category, "Office Supplies");
        CHECK_EQ_INT(ev.ts, TS_EPOCH_2026 + 14 * 3600000LL + 1841);
        CHECK_EQ_INT(o->quantity, 1);
        CHECK_EQ_INT(o->unit_price, 4499);
        CHECK_EQ_INT(o->amount, 4499);
        CHECK_EQ_INT(o->discount, 450);
        CHECK_EQ_INT(o->tax, 850);
        CHECK_EQ_INT(o->shipping, 499);
        CHECK_EQ_INT(o->total_price, 5398);
    }
    if (ACCEPT(PAY_FAILED, &ev) && CHECK(ev.type == SS_EV_PAYMENT)) {
        CHECK_SSTR(ev.event_id, "e-12225cac291e-1882-p1");
        CHECK_SSTR(ev.order_id, "o-12225cac291e-1882");
        CHECK_EQ_INT(ev.ts, TS_PAY1);
        CHECK_SSTR(ev.u.payment.payment_method, "card");
        CHECK_EQ_INT(ev.u.payment.amount, 21777);
        CHECK_EQ_INT(ev.u.payment.success, 0);
        CHECK_SSTR(ev.u.payment.failure_reason, "timeout");
        CHECK_EQ_INT(ev.u.payment.attempt, 1);
    }
    if (ACCEPT(PAY_FAILED2, &ev) && CHECK(ev.type == SS_EV_PAYMENT)) {
        CHECK_EQ_INT(ev.ts, TS_PAY2);
        CHECK_SSTR(ev.u.payment.payment_method, "cash_on_delivery");
        CHECK_SSTR(ev.u.payment.failure_reason, "declined");
        CHECK_EQ_INT(ev.u.payment.attempt, 2);
    }
    if (ACCEPT(PAY_OK, &ev) && CHECK(ev.type == SS_EV_PAYMENT)) {
        CHECK_SSTR(ev.event_id, "e-12225cac291e-1882-p3");
        CHECK_EQ_INT(ev.ts, TS_EPOCH_2026 + 14 * 3600000LL + 2 * 60000 + 395);
        CHECK_EQ_INT(ev.u.payment.amount, 21777);
        CHECK_EQ_INT(ev.u.payment.success, 1);
        CHECK_EQ_INT(ev.u.payment.failure_reason.n, 0);
        CHECK_EQ_INT(ev.u.payment.attempt, 3);
    }
    if (ACCEPT(CANCEL, &ev) && CHECK(ev.type == SS_EV_CANCELLATION)) {
        CHECK_SSTR(ev.event_id, "e-12225cac291e-988-c");
        CHECK_SSTR(ev.order_id, "o-12225cac291e-988");
        CHECK_EQ_INT(ev.ts, TS_CANCEL_988);
        CHECK_SSTR(ev.u.cancel.reason, "customer_request");
        CHECK_EQ_INT(ev.u.cancel.refund, 7853);
    }
    if (ACCEPT(CANCEL_FAILED, &ev) && CHECK(ev.type == SS_EV_CANCELLATION)) {
        CHECK_EQ_INT(ev.ts, TS_CANCEL_820);
        CHECK_SSTR(ev.u.cancel.reason, "payment_failed");
        CHECK_EQ_INT(ev.u.cancel.refund, 0);
    }
}

/* Every key order of a payment gives the same event: the 9! orders are too
 * many, so rotations and reversals of the key list are tried. */
static void test_key_order(void)
{
    const char *kv[] = {
        "\"type\":\"payment\"",
        "\"event_id\":\"e-1-p1\"",
        "\"order_id\":\"o-1\"",
        "\"ts\":\"2026-11-02T14:00:54.577Z\"",
        "\"payment_method\":\"card\"",
        "\"amount\":217.77",
        "\"status\":\"failed\"",
        "\"failure_reason\":\"timeout\"",
        "\"attempt\":2",
    };
    enum { N = sizeof kv / sizeof kv[0] };
    for (int rot = 0; rot < N; rot++) {
        for (int rev = 0; rev < 2; rev++) {
            char line[512] = "{";
            for (int i = 0; i < N; i++) {
                int k = rev ? (rot + N - i) % N : (rot + i) % N;
                strcat(line, kv[k]);
                strcat(line, i + 1 < N ? "," : "}");
            }
            ss_event ev;
            if (!ACCEPT(line, &ev))
                continue;
            CHECK(ev.type == SS_EV_PAYMENT);
            CHECK_SSTR(ev.event_id, "e-1-p1");
            CHECK_SSTR(ev.order_id, "o-1");
            CHECK_EQ_INT(ev.ts, TS_PAY1);
            CHECK_SSTR(ev.u.payment.payment_method, "card");
            CHECK_EQ_INT(ev.u.payment.amount, 21777);
            CHECK_EQ_INT(ev.u.payment.success, 0);
            CHECK_SSTR(ev.u.payment.failure_reason, "timeout");
            CHECK_EQ_INT(ev.u.payment.attempt, 2);
        }
    }
}

static void test_unknown_fields(void)
{
    ss_event ev;
    /* Unknown values of every kind, before, between and after the known ones. */
    const char *extras[] = {
        "\"x\":{}",
        "\"x\":[]",
        "\"x\":{\"a\":{\"b\":{\"c\":[1,[2,[3,{\"d\":\"e\"}]]]}}}",
        "\"x\":[{\"type\":\"payment\",\"amount\":\"oops\"},null]",
        "\"x\":\"\\\"quoted\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u2603 \\uD834\\uDD1E\"",
        "\"x\":-0.5e-7",
        "\"x\":12345678901234567890123",
        "\"x\":true,\"y\":false,\"z\":null",
        "\"\":1",
        "\"amount_cents\":5",
        "\"TYPE\":\"order\"",
    };
    for (size_t i = 0; i < sizeof extras / sizeof extras[0]; i++) {
        char line[1024];
        snprintf(line, sizeof line, "{%s,%s", extras[i], CANCEL + 1);
        if (ACCEPT(line, &ev))
            CHECK_EQ_INT(ev.u.cancel.refund, 7853);
        char between[256];
        snprintf(between, sizeof between, "%s,\"reason\"", extras[i]);
        char *mid = replace(CANCEL, "\"reason\"", between);
        if (ACCEPT(mid, &ev))
            CHECK_SSTR(ev.u.cancel.reason, "customer_request");
        free(mid);
        snprintf(line, sizeof line, "%.*s,%s}", (int)strlen(CANCEL) - 1, CANCEL, extras[i]);
        if (ACCEPT(line, &ev))
            CHECK_SSTR(ev.event_id, "e-12225cac291e-988-c");
    }
}

static void test_escapes(void)
{
    ss_event ev;
    struct {
        const char *escaped, *want;
    } cases[] = {
        {"M\\u00fcnchen", "M\xc3\xbc"
                          "nchen"},
        {"M\\u00FCnchen", "M\xc3\xbc"
                          "nchen"},
        {"M\xc3\xbcnchen", "M\xc3\xbcnchen"}, /* raw UTF-8 */
        {"\\u20ac", "\xe2\x82\xac"},
        {"\\ud83d\\ude00", "\xf0\x9f\x98\x80"}, /* a surrogate pair */
        {"\\uDBFF\\uDFFF", "\xf4\x8f\xbf\xbf"}, /* the last code point */
        {"\\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff",
         "A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"},
        {"a\\\"b\\\\c\\/d", "a\"b\\c/d"},
        {"\\b\\f\\n\\r\\t", "\b\f\n\r\t"},
        {"tab\\tin", "tab\tin"},
        {"\xf0\x9f\x98\x80 raw", "\xf0\x9f\x98\x80 raw"},
        {"del\x7f", "del\x7f"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char city[128];
        snprintf(city, sizeof city, "\"city\":\"%s\"", cases[i].escaped);
        char *line = replace(ORDER, "\"city\":\"Busan\"", city);
        if (ACCEPT(line, &ev))
            CHECK_SSTR(ev.u.order.city, cases[i].want);
        free(line);
    }
    /* Escapes in several strings of one line, and in keys. */
    char *a = replace(ORDER, "\"Riviera Dress U173\"", "\"Riviera \\\"Dress\\\" \\u00e9\"");
    char *b = replace(a, "\"country\"", "\"co\\u0075ntry\"");
    char *c = replace(b, "\"South Korea\"", "\"South\\nKorea\"");
    if (ACCEPT(c, &ev)) {
        CHECK_SSTR(ev.u.order.product_name, "Riviera \"Dress\" \xc3\xa9");
        CHECK_SSTR(ev.u.order.country, "South\nKorea");
        CHECK_SSTR(ev.u.order.city, "Busan");
    }
    free(a);
    free(b);
    free(c);
}

/* The string scanner reads eight bytes at a time: an escape, a quote or a
 * control byte at every offset from a word boundary must be found. */
static void test_string_scanner_offsets(void)
{
    ss_event ev;
    for (int len = 0; len <= 40; len++) {
        for (int at = 0; at <= len; at++) {
            char name[128], want[128], city[160];
            memset(name, 'a', (size_t)at);
            memcpy(name + at, "\\\"", 2);
            memset(name + at + 2, 'b', (size_t)(len - at));
            name[len + 2] = '\0';
            memset(want, 'a', (size_t)at);
            want[at] = '"';
            memset(want + at + 1, 'b', (size_t)(len - at));
            want[len + 1] = '\0';
            snprintf(city, sizeof city, "\"city\":\"%s\"", name);
            char *line = replace(ORDER, "\"city\":\"Busan\"", city);
            if (ACCEPT(line, &ev))
                CHECK_SSTR(ev.u.order.city, want);
            free(line);

            /* A control byte at the same offset is an error. */
            name[at] = '\x01';
            name[at + 1] = 'x';
            snprintf(city, sizeof city, "\"city\":\"%s\"", name);
            line = replace(ORDER, "\"city\":\"Busan\"", city);
            REJECT(line, "control character in a string");
            free(line);

            /* A multibyte character at the same offset is content. */
            memcpy(name + at, "\xc3\xa9", 2);
            memcpy(want + at, "\xc3\xa9", 2);
            memset(want + at + 2, 'b', (size_t)(len - at));
            want[len + 2] = '\0';
            snprintf(city, sizeof city, "\"city\":\"%s\"", name);
            line = replace(ORDER, "\"city\":\"Busan\"", city);
            if (ACCEPT(line, &ev))
                CHECK_SSTR(ev.u.order.city, want);
            free(line);
        }
    }
    /* A string that ends the line unclosed, at every length. */
    for (int len = 0; len <= 24; len++) {
        char line[64];
        snprintf(line, sizeof line, "{\"type\":\"%.*s", len, "orderorderorderorderorder");
        REJECT(line, "invalid JSON: unexpected end of line");
    }
}

static void test_money_exact(void)
{
    ss_event ev;
    char line[512];
    /* Every cent value up to 1,000.00 and a spread of larger ones. */
    int wrong = 0;
    for (int64_t c = 0; c <= 100000 && !wrong; c++) {
        snprintf(line, sizeof line,
                 "{\"type\":\"cancellation\",\"event_id\":\"e\",\"order_id\":\"o\",\"ts\":"
                 "\"2026-11-02T14:00:00.000Z\",\"reason\":\"r\",\"refund\":%lld.%02lld}",
                 (long long)(c / 100), (long long)(c % 100));
        wrong = decode(line, &ev) != SS_OK || ev.u.cancel.refund != c;
        if (wrong)
            check_report(0, __FILE__, __LINE__, "refund %lld.%02lld decoded as %lld (%s)",
                         (long long)(c / 100), (long long)(c % 100), (long long)ev.u.cancel.refund,
                         reason);
    }
    CHECK_EQ_INT(wrong, 0);
    static const struct {
        const char *text;
        int64_t cents;
    } ok[] = {
        {"0.29", 29},
        {"0.57", 57},
        {"1.15", 115},
        {"4.35", 435},
        {"1234567.89", 123456789},
        {"999999999.99", 99999999999LL},
        {"1000000000.00", 100000000000LL},
        {"-0.00", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(line, sizeof line, "\"refund\":%s}", ok[i].text);
        char *t = replace(CANCEL, "\"refund\":78.53}", line);
        if (ACCEPT(t, &ev))
            CHECK_EQ_INT(ev.u.cancel.refund, ok[i].cents);
        free(t);
    }
}

static void test_rejections(void)
{
    /* Broken JSON. */
    REJECT_N(ORDER, strlen(ORDER) - 1, "invalid JSON: unexpected end of line");
    REJECT_N(ORDER, 60, "invalid JSON: unexpected end of line");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\"} x", "invalid JSON at byte");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\"} x", "text after the object");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\"}{}", "text after the object");
    REJECT_EDIT(ORDER, "\"city\":", "city:", "expected a key in quotes");
    REJECT_EDIT(ORDER, "\"city\":", "'city':", "expected a key in quotes");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Busan", "expected ',' or '}'");
    REJECT_EDIT(ORDER, "\"city\":", "\"city\"", "expected ':'");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",}", "expected a key in quotes");
    REJECT_EDIT(ORDER, ",\"city\"", ",,\"city\"", "expected a key in quotes");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\xsan\"", "bad escape '\\x'");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\u00\"", "bad \\u escape");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\u00zz\"", "bad \\u escape");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\u0000\"", "\\u0000 is not allowed");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":tru}", "expected a value");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":01}", "expected ',' or '}'");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":1.}", "digits after '.'");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":1e}", "exponent digits");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":[1,]}", "expected a value");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":{\"a\"}}", "expected ':'");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":[1 2]}", "expected ',' or ']'");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":NaN}", "expected a value");
    REJECT("", "invalid JSON: unexpected end of line, expected '{'");
    REJECT("{", "unexpected end of line");
    REJECT("{\"type\":\"order\",\"x\":[", "unexpected end of line");
    REJECT("hello", "expected '{' (each line must be one JSON object)");
    REJECT_N("{\0}", 3, "invalid JSON at byte 1");

    /* Not an object. */
    REJECT("[1,2]", "expected '{' (each line must be one JSON object)");
    REJECT("\"order\"", "expected '{'");
    REJECT("42", "expected '{'");
    REJECT("null", "expected '{'");

    /* Lone surrogates and control characters. */
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\ud800\"", "unpaired surrogate");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\ud800san\"", "unpaired surrogate");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\ud800\\u0041\"", "unpaired surrogate");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\ud800\\ud800\"", "unpaired surrogate");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\udc00\"", "unpaired surrogate");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\udfff\\ud800\"", "unpaired surrogate");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":\"\\ud83d\"}", "unpaired surrogate");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\tsan\"", "control character in a string");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\nsan\"", "control character in a string");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\x1fsan\"", "control character in a string");
    REJECT_EDIT(ORDER, "\"Busan\"", "\"Bu\\\"\x01san\"", "control character in a string");
    REJECT_EDIT(ORDER, "\"card\"}", "\"card\",\"x\":\"a\x02\"}", "control character");

    /* Invalid UTF-8, with the offset of the first bad byte. */
    char utf8_at[64];
    snprintf(utf8_at, sizeof utf8_at, "invalid UTF-8 at byte %d",
             (int)(strstr(ORDER, "Busan") - ORDER) + 2);
    REJECT_EDIT(ORDER, "Busan", "Bu\xffsan", utf8_at);
    REJECT_EDIT(ORDER, "Busan", "Bu\xc0\xafsan", utf8_at);
    REJECT_EDIT(ORDER, "Busan", "Bu\xed\xa0\x80san", utf8_at);
    REJECT_EDIT(ORDER, "Busan", "Bu\xf4\x90\x80\x80san", utf8_at);
    REJECT_EDIT(ORDER, "Busan", "Bu\xe0\x80\x80san", utf8_at);
    REJECT_EDIT(ORDER, "Busan", "Bu\x80san", utf8_at);
    REJECT_EDIT(ORDER, "Busan", "Bu\xc3san", utf8_at);
    REJECT_N("{\"a\":\"\xe2\x82", 8, "invalid UTF-8 at byte 6");

    /* Nesting of unknown values: 32 levels are fine, more are not. */
    {
        char line[4096];
        for (int depth = 30; depth <= 40; depth++) {
            int n = snprintf(line, sizeof line, "{\"deep\":");
            for (int i = 0; i < depth; i++)
                line[n++] = '[';
            for (int i = 0; i < depth; i++)
                line[n++] = ']';
            snprintf(line + n, sizeof line - (size_t)n, ",%s", CANCEL + 1);
            ss_event ev;
            if (depth <= 32)
                ACCEPT(line, &ev);
            else
                REJECT(line, "nested deeper than 32 levels");
        }
    }

    /* Wrong types. */
    REJECT_EDIT(ORDER, "\"quantity\":3", "\"quantity\":\"3\"",
                "field 'quantity' must be a number, not a string");
    REJECT_EDIT(ORDER, "\"quantity\":3", "\"quantity\":[3]",
                "field 'quantity' must be a number, not an object or array");
    REJECT_EDIT(ORDER, "\"quantity\":3", "\"quantity\":{}",
                "field 'quantity' must be a number, not an object or array");
    REJECT_EDIT(ORDER, "\"quantity\":3", "\"quantity\":3.0",
                "field 'quantity' must be a whole number");
    REJECT_EDIT(ORDER, "\"quantity\":3", "\"quantity\":3e0",
                "field 'quantity' must be a whole number");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":true",
                "field 'amount' must be a number, not a boolean");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":false",
                "field 'amount' must be a number, not a boolean");
    REJECT_EDIT(PAY_OK, "\"attempt\":3", "\"attempt\":1.5",
                "field 'attempt' must be a whole number");
    REJECT_EDIT(PAY_OK, "\"attempt\":3", "\"attempt\":x", "field 'attempt' must be a whole number");
    REJECT_EDIT(ORDER, "\"type\":\"order\"", "\"type\":1", "field 'type' must be a string");
    REJECT_EDIT(ORDER, "\"city\":\"Busan\"", "\"city\":{\"n\":\"Busan\"}",
                "field 'city' must be a string");
    REJECT_EDIT(ORDER, "\"ts\":\"2026-11-02T14:00:44.622Z\"", "\"ts\":1793628044622",
                "field 'ts' must be a string");
    REJECT_EDIT(CANCEL, "\"refund\":78.53", "\"refund\":\"78.53\"",
                "field 'refund' must be a number, not a string");
    REJECT_EDIT(CANCEL, "\"refund\":78.53", "\"refund\":nul", "field 'refund' must be a number");

    /* Missing and null fields. */
    REJECT_EDIT(ORDER, ",\"total_price\":217.77", "", "missing field 'total_price'");
    REJECT_EDIT(ORDER, "\"type\":\"order\",", "", "missing field 'type'");
    REJECT_EDIT(ORDER, ",\"ts\":\"2026-11-02T14:00:44.622Z\"", "", "missing field 'ts'");
    REJECT_EDIT(PAY_OK, ",\"status\":\"success\"", "", "missing field 'status'");
    REJECT_EDIT(PAY_OK, ",\"attempt\":3", "", "missing field 'attempt'");
    REJECT_EDIT(CANCEL, ",\"refund\":78.53", "", "missing field 'refund'");
    REJECT_EDIT(CANCEL, ",\"reason\":\"customer_request\"", "", "missing field 'reason'");
    REJECT("{}", "missing field 'type'");
    REJECT_EDIT(ORDER, "\"city\":\"Busan\"", "\"city\":null", "field 'city' is null");
    REJECT_EDIT(ORDER, "\"event_id\":\"e-12225cac291e-1882-o\"", "\"event_id\":null",
                "field 'event_id' is null");
    REJECT_EDIT(ORDER, "\"quantity\":3", "\"quantity\":null", "field 'quantity' is null");
    REJECT_EDIT(CANCEL, "\"refund\":78.53", "\"refund\":null", "field 'refund' is null");
    REJECT_EDIT(PAY_FAILED, ",\"failure_reason\":\"timeout\"", "",
                "missing field 'failure_reason' for a failed payment");
    REJECT_EDIT(PAY_FAILED, "\"failure_reason\":\"timeout\"", "\"failure_reason\":null",
                "missing field 'failure_reason' for a failed payment");
    REJECT_EDIT(PAY_FAILED, "\"failure_reason\":\"timeout\"", "\"failure_reason\":\"\"",
                "missing field 'failure_reason' for a failed payment");
    REJECT_EDIT(ORDER, "\"city\":\"Busan\"", "\"city\":\"\"", "field 'city' is empty");
    REJECT_EDIT(ORDER, "\"type\":\"order\"", "\"type\":\"\"", "field 'type' is empty");

    /* Unknown type and bad enumerations. */
    REJECT_EDIT(CANCEL, "\"type\":\"cancellation\"", "\"type\":\"refund\"",
                "unknown type 'refund'; expected order, payment or cancellation");
    REJECT_EDIT(ORDER, "\"type\":\"order\"", "\"type\":\"Order\"", "unknown type 'Order'");
    REJECT_EDIT(PAY_OK, "\"status\":\"success\"", "\"status\":\"pending\"",
                "field 'status' must be success or failed");
    REJECT_EDIT(PAY_OK, "\"attempt\":3", "\"attempt\":3,\"failure_reason\":\"declined\"",
                "failure_reason is given for a successful payment");
    REJECT_EDIT(ORDER, "\"currency\":\"EUR\"", "\"currency\":\"EURO\"",
                "field 'currency' must be a three-letter code");

    /* Duplicate keys. */
    REJECT_EDIT(PAY_OK, "\"attempt\":3", "\"attempt\":3,\"amount\":1.00",
                "duplicate field 'amount'");
    REJECT_EDIT(PAY_OK, "\"attempt\":3", "\"attempt\":3,\"type\":\"payment\"",
                "duplicate field 'type'");
    REJECT_EDIT(PAY_OK, "\"attempt\":3", "\"attempt\":3,\"t\\u0079pe\":\"order\"",
                "duplicate field 'type'");
    REJECT_EDIT(PAY_OK, "\"attempt\":3", "\"attempt\":3,\"attempt\":null",
                "duplicate field 'attempt'");

    /* Money: sign, decimals, exponent, digits, range. */
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":-217.77",
                "field 'amount' is negative (-217.77); money must be >= 0");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":-0.01", "field 'amount' is negative");
    REJECT_EDIT(ORDER, "\"discount\":0.00", "\"discount\":-1.00", "field 'discount' is negative");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":217.775",
                "field 'amount' has more than two decimals");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":217.771",
                "field 'amount' has more than two decimals");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":217.77e0",
                "field 'amount' must be written as a plain decimal, not with an exponent");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":1e2", "not with an exponent");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":1E+2", "not with an exponent");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":1.00E-2", "not with an exponent");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":1234567890123.00",
                "field 'amount' is out of range (more than 12 digits)");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":99999999999999999999999.00",
                "more than 12 digits");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":1000000000.01",
                "field 'amount' is out of range (over 1,000,000,000.00)");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":999999999999.99", "out of range");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":.5", "field 'amount' must be a number");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":+1.00", "field 'amount' must be a number");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":-", "field 'amount' must be a number");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":1.", "digits after '.'");
    REJECT_EDIT(PAY_OK, "\"amount\":217.77", "\"amount\":01.00", "invalid JSON");
    REJECT_EDIT(ORDER, "\"quantity\":3", "\"quantity\":1234567890123",
                "field 'quantity' is out of range");

    /* Totals that do not add up. */
    REJECT_EDIT(ORDER, "\"amount\":197.97", "\"amount\":197.98",
                "amount 197.98 does not equal quantity x unit_price = 197.97");
    REJECT_EDIT(ORDER, "\"total_price\":217.77", "\"total_price\":217.78",
                "total_price 217.78 does not equal amount - discount + tax + shipping = 217.77");
    REJECT_EDIT(ORDER, "\"total_price\":217.77", "\"total_price\":217.76",
                "total_price 217.76 does not equal");
    REJECT_EDIT(ORDER_DISCOUNT, "\"discount\":4.50", "\"discount\":45.00",
                "discount is larger than amount");

    /* Ranges of the counts. */
    REJECT_EDIT(ORDER, "\"quantity\":3", "\"quantity\":0",
                "field 'quantity' must be from 1 to 100000 (got 0)");
    REJECT_EDIT(ORDER, "\"quantity\":3", "\"quantity\":-3", "(got -3)");
    REJECT_EDIT(PAY_OK, "\"attempt\":3", "\"attempt\":0",
                "field 'attempt' must be from 1 to 1000 (got 0)");
    REJECT_EDIT(PAY_OK, "\"attempt\":3", "\"attempt\":1001", "(got 1001)");

    /* Time. */
    const char *bad_ts[] = {
        "2026-11-02 14:00:44.622Z",
        "2026-11-02T14:00:44.622",
        "2026-11-02T14:00:44.622+01:00",
        "2026-02-30T14:00:44.622Z",
        "2026-11-02T24:00:00.000Z",
        "2026-11-02T14:60:00.000Z",
        "2026-13-02T14:00:00.000Z",
        "yesterday",
        "2026-11-02",
        "2026-11-02T14:00:44.Z",
        "2026-11-02T14:00:44.6223Z",
    };
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        char ts[96];
        snprintf(ts, sizeof ts, "\"ts\":\"%s\"", bad_ts[i]);
        REJECT_EDIT(ORDER, "\"ts\":\"2026-11-02T14:00:44.622Z\"", ts,
                    "field 'ts' is not a UTC ISO-8601 time like 2026-11-02T14:03:11.123Z");
    }
    REJECT_EDIT(ORDER, "\"ts\":\"2026-11-02T14:00:44.622Z\"", "\"ts\":\"1969-12-31T23:59:59.999Z\"",
                "field 'ts' is outside the years 1970 to 9999");
    REJECT_EDIT(ORDER, "\"ts\":\"2026-11-02T14:00:44.622Z\"", "\"ts\":\"\"", "field 'ts' is empty");
    {
        ss_event ev;
        ACCEPT_EDIT(ORDER, "\"ts\":\"2026-11-02T14:00:44.622Z\"",
                    "\"ts\":\"1970-01-01T00:00:00.000Z\"", &ev);
        CHECK_EQ_INT(ev.ts, 0);
    }

    /* Lengths of identifiers and names. */
    {
        char big[400], field[480];
        ss_event ev;
        memset(big, '7', sizeof big);
        snprintf(field, sizeof field, "\"event_id\":\"%.128s\"", big);
        ACCEPT_EDIT(ORDER, "\"event_id\":\"e-12225cac291e-1882-o\"", field, &ev);
        snprintf(field, sizeof field, "\"event_id\":\"%.129s\"", big);
        REJECT_EDIT(ORDER, "\"event_id\":\"e-12225cac291e-1882-o\"", field,
                    "field 'event_id' is longer than 128 bytes");
        snprintf(field, sizeof field, "\"city\":\"%.256s\"", big);
        ACCEPT_EDIT(ORDER, "\"city\":\"Busan\"", field, &ev);
        snprintf(field, sizeof field, "\"city\":\"%.257s\"", big);
        REJECT_EDIT(ORDER, "\"city\":\"Busan\"", field, "field 'city' is longer than 256 bytes");
        snprintf(field, sizeof field, "\"failure_reason\":\"%.257s\"", big);
        REJECT_EDIT(PAY_FAILED, "\"failure_reason\":\"timeout\"", field,
                    "field 'failure_reason' is longer than 256 bytes");
    }
}

static void test_line_limit(void)
{
    /* A valid line of exactly the limit (an unknown field pads it) is
     * accepted; one byte more is rejected before parsing. */
    size_t n = SS_LINE_MAX;
    char *line = malloc(n + 1);
    const char *head = "{\"pad\":\"";
    size_t h = strlen(head), tail = strlen(CANCEL) - 1; /* ",..." after the pad's quote */
    memcpy(line, head, h);
    memset(line + h, 'p', n - h - tail - 2);
    memcpy(line + n - tail - 2, "\",", 2);
    memcpy(line + n - tail, CANCEL + 1, tail);
    ss_event ev;
    if (check_accept(line, n, &ev, __FILE__, __LINE__))
        CHECK_EQ_INT(ev.u.cancel.refund, 7853);
    memmove(line + 1, line, n);
    line[0] = ' ';
    REJECT_N(line, n + 1, "exceeds the limit of 1048576 bytes");
    free(line);

    /* Long strings full of escapes, in an unknown field and in a name: the
     * scratch space holds them. */
    size_t reps = 100000;
    char *big = malloc(reps * 6 + 1024);
    size_t k = (size_t)sprintf(big, "{\"x\":\"");
    for (size_t i = 0; i < reps; i++)
        memcpy(big + k + i * 6, "\\u00e9", 6);
    k += reps * 6;
    k += (size_t)sprintf(big + k, "\",%s", PAY_OK + 1);
    if (check_accept(big, k, &ev, __FILE__, __LINE__))
        CHECK_EQ_INT(ev.u.payment.amount, 21777);
    char *order_big = replace(ORDER, "\"city\":\"Busan\",", "");
    size_t m = (size_t)sprintf(big, "{\"city\":\"");
    for (size_t i = 0; i < 128; i++)
        memcpy(big + m + i * 6, "\\u00e9", 6);
    m += 128 * 6;
    m += (size_t)sprintf(big + m, "\",%s", order_big + 1);
    free(order_big);
    if (check_accept(big, m, &ev, __FILE__, __LINE__))
        CHECK_EQ_INT(ev.u.order.city.n, 256); /* 128 two-byte characters */
    free(big);
}

/* Strings of a decoded event stay valid until the next call, and the next
 * call does not depend on the previous one. */
static void test_decoder_reuse(void)
{
    ss_event a, b;
    char *esc = replace(ORDER, "\"Busan\"", "\"B\\u00fcsan\"");
    if (ACCEPT(esc, &a))
        CHECK_SSTR(a.u.order.city, "B\xc3\xbcsan");
    free(esc);
    REJECT("{\"type\":", "unexpected end of line");
    if (ACCEPT(PAY_OK, &b)) {
        CHECK_EQ_INT(b.u.payment.success, 1);
        CHECK_EQ_INT(b.u.payment.failure_reason.n, 0);
    }
    if (ACCEPT(ORDER, &a))
        check_order_example(&a, "after reuse");

    /* A reason buffer too small for the message is cut, not overrun. */
    char small[8];
    char *copy = malloc(5);
    memcpy(copy, "[1,2]", 5);
    memset(small, 'x', sizeof small);
    CHECK_EQ_INT(ss_event_decode(&dec, copy, 5, &a, small, sizeof small), SS_EINVAL);
    CHECK(memchr(small, '\0', sizeof small) != NULL);
    CHECK(strncmp(small, "invalid", 7) == 0);
    char one[1] = {'x'};
    CHECK_EQ_INT(ss_event_decode(&dec, copy, 5, &a, one, sizeof one), SS_EINVAL);
    CHECK_EQ_INT(one[0], '\0');
    free(copy);
}

/* Every prefix of a valid line is rejected with a reason (never a crash or a
 * read past the end), and so is every line with one byte changed to one of
 * the characters that matter to the parser, unless the change keeps it valid. */
static void fuzz_line(const char *line)
{
    size_t n = strlen(line);
    int bad = 0;
    for (size_t k = 0; k < n && !bad; k++) {
        ss_event ev;
        int rc = decode_n(line, k, &ev);
        /* Only a prefix that drops nothing but trailing whitespace is valid. */
        size_t rest = strspn(line + k, " \t\r");
        if (rc == SS_OK ? k + rest != n : reason[0] == '\0' || !strcmp(reason, "(untouched)"))
            bad = check_report(0, __FILE__, __LINE__, "prefix of %zu bytes: rc %d, reason %s", k,
                               rc, reason) == 0;
    }
    static const unsigned char subst[] = {'"',  '\\', '{',  '}',  '[',  ']', ':',  ',',
                                          '.',  '-',  'e',  '0',  ' ',  0,   0x1f, 0x7f,
                                          0x80, 0xc3, 0xe2, 0xf0, 0xff, 'n', 't',  'u'};
    char *m = malloc(n);
    for (size_t i = 0; i < n && !bad; i++) {
        for (size_t s = 0; s < sizeof subst && !bad; s++) {
            memcpy(m, line, n);
            m[i] = (char)subst[s];
            ss_event ev;
            int rc = decode_n(m, n, &ev);
            if (rc == SS_EINVAL) {
                if (reason[0] == '\0' || !strcmp(reason, "(untouched)"))
                    bad = check_report(0, __FILE__, __LINE__, "no reason at byte %zu <- 0x%02x", i,
                                       subst[s]) == 0;
            } else if (rc != SS_OK || ev.type < SS_EV_ORDER || ev.type > SS_EV_CANCELLATION ||
                       ev.event_id.n == 0 || ev.ts < 0) {
                bad = check_report(0, __FILE__, __LINE__, "bad result at byte %zu <- 0x%02x", i,
                                   subst[s]) == 0;
            }
        }
    }
    free(m);
    check_report(!bad, __FILE__, __LINE__, "fuzz of %.60s", line);
}

static void test_fuzz(void)
{
    const char *lines[] = {ORDER,      ORDER_REVERSED, ORDER_EXTRA, ORDER_DISCOUNT,
                           PAY_FAILED, PAY_OK,         CANCEL,      CANCEL_FAILED};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        fuzz_line(lines[i]);
}

int main(void)
{
    ss_decoder_init(&dec);
    test_valid_events();
    test_key_order();
    test_unknown_fields();
    test_escapes();
    test_string_scanner_offsets();
    test_money_exact();
    test_rejections();
    test_line_limit();
    test_decoder_reuse();
    test_fuzz();
    ss_decoder_free(&dec);
    free(cur);
    return check_done();
}

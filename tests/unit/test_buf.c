/* Unit tests of common/buf: growth, money and integer formatting at the
 * extremes, and JSON string escaping. */
#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "check.h"
#include "common/buf.h"

/* Runs put on a fresh zero-capacity buffer (so growth is exercised too) and
 * returns the text, which the caller frees. */
static char *cents(int64_t v)
{
    ss_buf b;
    ss_buf_init(&b, 0);
    ss_buf_put_cents(&b, v);
    ss_buf_cstr(&b);
    return b.data;
}

static char *i64(int64_t v)
{
    ss_buf b;
    ss_buf_init(&b, 0);
    ss_buf_put_i64(&b, v);
    ss_buf_cstr(&b);
    return b.data;
}

static char *jstr(const char *s, size_t n)
{
    ss_buf b;
    ss_buf_init(&b, 0);
    ss_buf_put_jstr(&b, s, n);
    ss_buf_cstr(&b);
    return b.data;
}

#define CHECK_TEXT(expr, expected)                                                                 \
    do {                                                                                           \
        char *got_ = (expr);                                                                       \
        CHECK_STR(got_, expected);                                                                 \
        free(got_);                                                                                \
    } while (0)

static void test_cents(void)
{
    CHECK_TEXT(cents(0), "0.00");
    CHECK_TEXT(cents(1), "0.01");
    CHECK_TEXT(cents(9), "0.09");
    CHECK_TEXT(cents(10), "0.10");
    CHECK_TEXT(cents(99), "0.99");
    CHECK_TEXT(cents(100), "1.00");
    CHECK_TEXT(cents(2730), "27.30");
    CHECK_TEXT(cents(123456789), "1234567.89");
    CHECK_TEXT(cents(-1), "-0.01");
    CHECK_TEXT(cents(-5), "-0.05");
    CHECK_TEXT(cents(-99), "-0.99");
    CHECK_TEXT(cents(-100), "-1.00");
    CHECK_TEXT(cents(-2730), "-27.30");
    CHECK_TEXT(cents(INT64_MAX), "92233720368547758.07");
    CHECK_TEXT(cents(INT64_MIN), "-92233720368547758.08");
    CHECK_TEXT(cents(INT64_MIN + 1), "-92233720368547758.07");
}

static void test_i64(void)
{
    CHECK_TEXT(i64(0), "0");
    CHECK_TEXT(i64(7), "7");
    CHECK_TEXT(i64(-7), "-7");
    CHECK_TEXT(i64(1000000), "1000000");
    CHECK_TEXT(i64(INT32_MAX), "2147483647");
    CHECK_TEXT(i64(INT32_MIN), "-2147483648");
    CHECK_TEXT(i64(INT64_MAX), "9223372036854775807");
    CHECK_TEXT(i64(INT64_MIN), "-9223372036854775808");
    CHECK_TEXT(i64(INT64_MIN + 1), "-9223372036854775807");
}

static void test_digits(void)
{
    char out[24];
    size_t n = ss_fmt_u64(out, 0);
    CHECK(n == 1 && memcmp(out, "0", 1) == 0);
    n = ss_fmt_u64(out, 1234567);
    CHECK(n == 7 && memcmp(out, "1234567", 7) == 0);
    n = ss_fmt_u64(out, UINT64_MAX);
    CHECK(n == 20 && memcmp(out, "18446744073709551615", 20) == 0);
    memset(out, 'x', sizeof out);
    ss_fmt_u64_width(out, 10, 42);
    CHECK(memcmp(out, "0000000042x", 11) == 0);
    ss_fmt_u64_width(out, 10, 9999999999ULL);
    CHECK(memcmp(out, "9999999999x", 11) == 0);
    ss_fmt_u64_width(out, 3, 0);
    CHECK(memcmp(out, "000", 3) == 0);
    ss_fmt_u64_width(out, 2, 7);
    CHECK(memcmp(out, "07", 2) == 0);
}

static void test_jstr(void)
{
    CHECK_TEXT(jstr("", 0), "\"\"");
    CHECK_TEXT(jstr("plain text", 10), "\"plain text\"");
    CHECK_TEXT(jstr("say \"hi\"", 8), "\"say \\\"hi\\\"\"");
    CHECK_TEXT(jstr("C:\\dir\\", 7), "\"C:\\\\dir\\\\\"");
    CHECK_TEXT(jstr("\\\"", 2), "\"\\\\\\\"\"");
    CHECK_TEXT(jstr("a\nb\rc\td", 7), "\"a\\nb\\rc\\td\"");
    CHECK_TEXT(jstr("\x01\x08\x0c\x1f", 4), "\"\\u0001\\u0008\\u000c\\u001f\"");
    CHECK_TEXT(jstr("a\0b", 3), "\"a\\u0000b\"");
    CHECK_TEXT(jstr(" ~\x7f", 3), "\" ~\x7f\""); /* not control bytes */
    CHECK_TEXT(jstr("Caf\xc3\xa9 \xe2\x82\xac", 9), "\"Caf\xc3\xa9 \xe2\x82\xac\""); /* UTF-8 */
    CHECK_TEXT(jstr("abcdef", 3), "\"abc\""); /* only n bytes */

    /* Every byte value once, in a string long enough to grow the buffer many
     * times: the result must be JSON that decodes to the same bytes. */
    char all[256 * 4];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (char)(i % 256);
    char *text = jstr(all, sizeof all);
    /* Bytes >= 0x80 are not valid UTF-8 on their own; check only 0..0x7f. */
    char ascii[128 * 4];
    for (size_t i = 0; i < sizeof ascii; i++)
        ascii[i] = (char)(i % 128);
    char *atext = jstr(ascii, sizeof ascii);
    json_error_t je;
    json_t *v = json_loads(atext, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (CHECK(v != NULL) && CHECK(json_is_string(v))) {
        CHECK_EQ_INT(json_string_length(v), sizeof ascii);
        CHECK(memcmp(json_string_value(v), ascii, sizeof ascii) == 0);
    }
    json_decref(v);
    /* Control bytes never appear raw. */
    int raw = 0;
    for (const char *p = text; *p; p++)
        raw += (unsigned char)*p < 0x20;
    CHECK_EQ_INT(raw, 0);
    free(text);
    free(atext);

    /* Every length up to three words, with a quote at every position or
     * none: whole words, the overlapping last word and the byte tail. */
    int bad = 0;
    for (size_t n = 0; n <= 24; n++) {
        for (size_t at = 0; at <= n; at++) {
            char src[24], want[64];
            size_t w = 0;
            want[w++] = '"';
            for (size_t i = 0; i < n; i++) {
                src[i] = i == at ? '"' : (char)('a' + i);
                if (i == at)
                    want[w++] = '\\';
                want[w++] = src[i];
            }
            want[w++] = '"';
            want[w] = '\0';
            char *got = jstr(src, n);
            bad += strcmp(got, want) != 0;
            free(got);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_growth_and_misc(void)
{
    ss_buf b;
    ss_buf_init(&b, 4);
    for (int i = 0; i < 1000; i++)
        ss_buf_lit(&b, "0123456789");
    CHECK_EQ_INT(b.len, 10000);
    CHECK(b.cap >= b.len);
    CHECK(memcmp(b.data + 9990, "0123456789", 10) == 0);

    b.len = 0;
    ss_buf_puts(&b, "n=");
    ss_buf_printf(&b, "%d/%s", 42, "x");
    ss_buf_putc(&b, '!');
    CHECK_STR(ss_buf_cstr(&b), "n=42/x!");
    CHECK_EQ_INT(b.len, 7);

    /* printf longer than the spare capacity. */
    b.len = 0;
    ss_buf_printf(&b, "%0500d", 1);
    CHECK_EQ_INT(b.len, 500);
    CHECK_EQ_INT(ss_buf_cstr(&b)[499], '1');

    b.len = 0;
    ss_buf_put_time(&b, 1793577600000 + 14 * 3600000 + 3 * 60000 + 11123);
    CHECK_STR(ss_buf_cstr(&b), "2026-11-02T14:03:11.123Z");

    ss_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    ss_buf_free(&b); /* twice is fine */
    ss_buf_free(NULL);
}

int main(void)
{
    test_cents();
    test_i64();
    test_digits();
    test_jstr();
    test_growth_and_misc();
    return check_done();
}

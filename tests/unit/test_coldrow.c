/* Unit tests of query/coldrow: a cold line read into its columns, with the
 * JSON rules a DOM parser would apply (escapes, duplicates, nesting, UTF-8)
 * and a clear reason for each line it refuses. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/status.h"
#include "query/coldrow.h"

static const ss_str names[] = {{"event_id", 8}, {"ts", 2}, {"qty", 3}, {"total", 5}};
enum { NCOLS = 4 };

static ss_buf scratch;
static ss_coldval vals[NCOLS];
static char reason[256];

static int parse(const char *line)
{
    reason[0] = '\0';
    return ss_coldrow_parse(line, strlen(line), names, NCOLS, vals, &scratch, reason,
                            sizeof reason);
}

/* The value's text as a C string, for comparison. */
static const char *text(int col)
{
    static char out[256];
    snprintf(out, sizeof out, "%.*s", (int)vals[col].s.n, vals[col].s.p);
    return out;
}

static void test_columns(void)
{
    CHECK_EQ_INT(parse("{\"event_id\":\"e1\",\"ts\":\"2026-01-01T00:00:00Z\",\"qty\":3,"
                       "\"total\":12.50}"),
                 SS_COLDROW_OK);
    CHECK_EQ_INT(vals[0].type, SS_CV_STRING);
    CHECK_STR(text(0), "e1");
    CHECK_STR(text(1), "2026-01-01T00:00:00Z");
    CHECK_EQ_INT(vals[2].type, SS_CV_INT);
    CHECK_STR(text(2), "3");
    CHECK_EQ_INT(vals[3].type, SS_CV_NUMBER);
    CHECK_STR(text(3), "12.50");

    /* Out of order, with spaces, unknown keys of every kind skipped. */
    CHECK_EQ_INT(parse(" { \"total\" : -1e2 , \"x\":{\"a\":[1,{\"b\":null}]}, \"y\":[true,false],"
                       "\"z\":\"\\u00e9\", \"qty\" : -0 } "),
                 SS_COLDROW_OK);
    CHECK_EQ_INT(vals[0].type, SS_CV_ABSENT);
    CHECK_EQ_INT(vals[1].type, SS_CV_ABSENT);
    CHECK_EQ_INT(vals[2].type, SS_CV_INT);
    CHECK_STR(text(2), "-0");
    CHECK_EQ_INT(vals[3].type, SS_CV_NUMBER);
    CHECK_STR(text(3), "-1e2");

    CHECK_EQ_INT(parse("{}"), SS_COLDROW_OK);
    for (int i = 0; i < NCOLS; i++)
        CHECK_EQ_INT(vals[i].type, SS_CV_ABSENT);
}

static void test_kinds(void)
{
    CHECK_EQ_INT(parse("{\"event_id\":null,\"ts\":true,\"qty\":[1],\"total\":{\"a\":1}}"),
                 SS_COLDROW_OK);
    CHECK_EQ_INT(vals[0].type, SS_CV_NULL);
    CHECK_EQ_INT(vals[1].type, SS_CV_BOOL);
    CHECK_EQ_INT(vals[2].type, SS_CV_NESTED);
    CHECK_EQ_INT(vals[3].type, SS_CV_NESTED);
}

static void test_escapes(void)
{
    CHECK_EQ_INT(parse("{\"event_id\":\"a\\\"b\\\\c\\/d\\n\\u00e9\\ud83d\\ude00\"}"),
                 SS_COLDROW_OK);
    CHECK_STR(text(0), "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80");
    /* A key written with an escape is the same key. */
    CHECK_EQ_INT(parse("{\"\\u0071ty\":7}"), SS_COLDROW_OK);
    CHECK_STR(text(2), "7");
    /* Raw UTF-8 in a string is kept as it is. */
    CHECK_EQ_INT(parse("{\"event_id\":\"caf\xc3\xa9\"}"), SS_COLDROW_OK);
    CHECK_STR(text(0), "caf\xc3\xa9");
}

static void test_duplicates(void)
{
    CHECK_EQ_INT(parse("{\"qty\":1,\"event_id\":\"a\",\"qty\":2}"), SS_COLDROW_OK);
    CHECK_STR(text(2), "2");
    CHECK_EQ_INT(parse("{\"qty\":1,\"qty\":null}"), SS_COLDROW_OK);
    CHECK_EQ_INT(vals[2].type, SS_CV_NULL);
}

static void test_refused(void)
{
    static const struct {
        const char *line, *reason;
        int rc;
    } cases[] = {
        {"", "", SS_COLDROW_BAD_JSON},
        {"{", "", SS_COLDROW_BAD_JSON},
        {"{\"qty\":1", "", SS_COLDROW_BAD_JSON},
        {"{\"qty\":1,}", "", SS_COLDROW_BAD_JSON},
        {"{\"qty\" 1}", "':'", SS_COLDROW_BAD_JSON},
        {"{qty:1}", "key", SS_COLDROW_BAD_JSON},
        {"{\"qty\":01}", "", SS_COLDROW_BAD_JSON},
        {"{\"qty\":1.}", "", SS_COLDROW_BAD_JSON},
        {"{\"qty\":+1}", "", SS_COLDROW_BAD_JSON},
        {"{\"qty\":tru}", "", SS_COLDROW_BAD_JSON},
        {"{\"x\":[1,}", "", SS_COLDROW_BAD_JSON},
        {"{\"event_id\":\"a\tb\"}", "", SS_COLDROW_BAD_JSON},
        {"{\"event_id\":\"\\x\"}", "", SS_COLDROW_BAD_JSON},
        {"{\"event_id\":\"\\ud83d\"}", "", SS_COLDROW_BAD_JSON},
        {"{\"event_id\":\"ab}", "", SS_COLDROW_BAD_JSON},
        {"{\"qty\":1} x", "text after the value", SS_COLDROW_BAD_JSON},
        {"{\"qty\":1}{}", "text after the value", SS_COLDROW_BAD_JSON},
        {"{\"event_id\":\"\xc3\"}", "UTF-8", SS_COLDROW_BAD_JSON},
        {"{\"event_id\":\"\xed\xa0\x80\"}", "UTF-8", SS_COLDROW_BAD_JSON},
        {"[1,2]", "", SS_COLDROW_NOT_OBJECT},
        {"\"s\"", "", SS_COLDROW_NOT_OBJECT},
        {"42", "", SS_COLDROW_NOT_OBJECT},
        {"null", "", SS_COLDROW_NOT_OBJECT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = parse(cases[i].line);
        if (!CHECK_EQ_INT(rc, cases[i].rc))
            fprintf(stderr, "  line: %s\n", cases[i].line);
        if (rc == SS_COLDROW_BAD_JSON) {
            CHECK(reason[0] != '\0');
            CHECK_CONTAINS(reason, cases[i].reason);
        }
    }
}

/* A NUL inside the line is not the end of it. */
static void test_embedded_nul(void)
{
    static const char line[] = "{\"qty\":1}\0{";
    CHECK_EQ_INT(ss_coldrow_parse(line, sizeof line - 1, names, NCOLS, vals, &scratch, reason,
                                  sizeof reason),
                 SS_COLDROW_BAD_JSON);
}

int main(void)
{
    ss_buf_init(&scratch, 0);
    test_columns();
    test_kinds();
    test_escapes();
    test_duplicates();
    test_refused();
    test_embedded_nul();
    ss_buf_free(&scratch);
    return check_done();
}

/* Unit tests of the KPI sink's parts that need no server: which URIs the
 * backends take (sink/sink.h: ss_sink_check_uri, with the message that names
 * the problem) and the lag in final minutes (ss_sink_lag). Writing to a real
 * HBase is tests/cli/test_hbase_sink.py's. */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "sink/sink.h"

static void test_uris(void)
{
    static const char *const good[] = {
        "hbase+http://127.0.0.1:8080/kpis",
        "hbase+http://hbase:8080/kpis",
        "hbase+http://localhost:1/ns:kpis.v2-x_y",
    };
    static const struct {
        const char *uri, *problem;
    } bad[] = {
        {"hbase+http://127.0.0.1/kpis", "give hbase+http://HOST:PORT/TABLE"},
        {"hbase+http://127.0.0.1:8080", "give hbase+http://HOST:PORT/TABLE"},
        {"hbase+http://:8080/kpis", "give hbase+http://HOST:PORT/TABLE"},
        {"hbase+http://127.0.0.1:0/kpis", "give hbase+http://HOST:PORT/TABLE"},
        {"hbase+http://127.0.0.1:65536/kpis", "give hbase+http://HOST:PORT/TABLE"},
        {"hbase+http://127.0.0.1:80x/kpis", "give hbase+http://HOST:PORT/TABLE"},
        {"hbase+http://127.0.0.1:8080/", "is not an HBase table name"},
        {"hbase+http://127.0.0.1:8080/a b", "is not an HBase table name"},
        {"hbase+http://127.0.0.1:8080/a#b", "is not an HBase table name"},
        {"hbase+http://127.0.0.1:8080/.hidden", "is not an HBase table name"},
        {"hbase+http://127.0.0.1:8080/:kpis", "is not an HBase table name"},
        {"hbase+http://127.0.0.1:8080/a:b:c", "is not an HBase table name"},
        {"hbase://127.0.0.1:8080/kpis", "unknown KPI sink"},
        {"", "unknown KPI sink"},
    };
    char err[1024];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        err[0] = '\0';
        if (!CHECK_EQ_INT(ss_sink_check_uri(good[i], err, sizeof err), SS_OK))
            fprintf(stderr, "  %s: %s\n", good[i], err);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        CHECK_EQ_INT(ss_sink_check_uri(bad[i].uri, err, sizeof err), SS_EINVAL);
        if (!CHECK(strstr(err, bad[i].problem) != NULL))
            fprintf(stderr, "  %s: %s\n", bad[i].uri, err);
    }
}

static void test_lag(void)
{
    const int64_t m = SS_MS_PER_MIN, t0 = 1793577600000; /* 2026-11-02T00:00Z */
    /* The newest final minute is the one before the watermark's. */
    CHECK_EQ_INT(ss_sink_lag(t0 - m, t0), 0);
    CHECK_EQ_INT(ss_sink_lag(t0 - m, t0 + m - 1), 0);
    CHECK_EQ_INT(ss_sink_lag(t0 - m, t0 + m), 1);
    CHECK_EQ_INT(ss_sink_lag(t0 - 10 * m, t0 + 30000), 9);
    /* A position past the newest final minute (rewritten after a restore). */
    CHECK_EQ_INT(ss_sink_lag(t0 + 5 * m, t0), 0);
    /* Nothing written: every final minute behind; no watermark: nothing final. */
    CHECK(ss_sink_lag(INT64_MIN, t0) == INT64_MAX);
    CHECK_EQ_INT(ss_sink_lag(INT64_MIN, INT64_MIN), 0);
    CHECK_EQ_INT(ss_sink_lag(t0, INT64_MIN), 0);
}

int main(void)
{
    test_uris();
    test_lag();
    return check_done();
}

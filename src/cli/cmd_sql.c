/* shopstream sql: read-only SQL over the stores. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/commands.h"
#include "cli/stores.h"
#include "common/buf.h"
#include "common/status.h"
#include "query/query.h"

typedef struct sql_opts {
    const char *data;
    const char *hot;
    const char *cold;
    const char *format;
    int64_t timeout_ms;
    int64_t max_rows;
} sql_opts;

#define F(f) offsetof(sql_opts, f)

static const ss_opt sql_table[] = {
    {"data", SS_OPT_STRING, F(data), "./data", 0, 0, NULL, "DIR",
     "Directory of the embedded stores."},
    SS_HOT_OPT(sql_opts, hot),
    {"cold", SS_OPT_STRING, F(cold), NULL, 0, 0, NULL, "URI",
     "Cold store to read with the hot store: a directory, file:PATH or [s]webhdfs://HOST:PORT/PATH "
     "(default DIR/cold)."},
    {"format", SS_OPT_CHOICE, F(format), "table", 0, 0, "table|csv|json", "FMT", "Output format."},
    {"timeout-ms", SS_OPT_INT, F(timeout_ms), "0", 0, 86400000, NULL, "MS",
     "Stop a query that runs longer than this (0 = no limit)."},
    {"max-rows", SS_OPT_SIZE, F(max_rows), "0", 0, 1e12, NULL, "N",
     "Fail a query that returns more rows than this (0 = no limit)."},
    SS_OPT_END,
};

static int sql_run(const void *vopts, int argc, char **argv)
{
    const sql_opts *o = vopts;
    if (argc != 1) {
        fprintf(stderr, "shopstream sql: give exactly one query argument, e.g. shopstream sql "
                        "\"SELECT count(*) FROM orders\"\n");
        return SS_EXIT_USAGE;
    }
    char err[1024];
    ss_query *q;
    int rc = ss_query_open(o->data, o->hot, o->cold, &q, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shopstream sql: %s\n", err);
        return rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
    }
    ss_query_format fmt = !strcmp(o->format, "csv")    ? SS_FMT_CSV
                          : !strcmp(o->format, "json") ? SS_FMT_JSON
                                                       : SS_FMT_TABLE;
    ss_query_limits lim = {.max_rows = o->max_rows, .timeout_ms = o->timeout_ms};
    ss_buf out;
    ss_buf_init(&out, 1 << 16);
    rc = ss_query_exec(q, argv[0], fmt, &lim, &out, err, sizeof err);
    /* A failed query (a limit reached, an error while running) prints no
     * partial result that could pass for a complete one. */
    if (rc == SS_OK)
        fwrite(out.data, 1, out.len, stdout);
    ss_buf_free(&out);
    ss_query_close(q);
    if (rc) {
        fprintf(stderr, "shopstream sql: %s\n", err);
        return rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
    }
    return SS_EXIT_OK;
}

const ss_cmd ss_cmd_sql = {
    .name = "sql",
    .summary = "Run read-only SQL over the stores",
    .args = "\"QUERY\"",
    .description = "SQLite's dialect: WHERE, GROUP BY, HAVING, ORDER BY, joins of the fact "
                   "tables (orders, payments, cancellations) with the dimensions, and kpi_minute. "
                   "The fact tables read the hot store and the committed archives of cold "
                   "storage as one; hot_orders, cold_orders (and so on for payments and "
                   "cancellations) read one side, and a condition on ts reads only the cold "
                   "files that can match. "
                   "A statement that would write is refused (exit code 2). Money reads in "
                   "currency units; whole-cent numbers print with two decimals. See "
                   "docs/queries.md and docs/lifecycle.md.",
    .opts = sql_table,
    .opts_size = sizeof(sql_opts),
    .run = sql_run,
};

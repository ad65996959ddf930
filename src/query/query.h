/* Read-only SQL over the stores, for `shopstream sql` and the web API.
 *
 * A query connection opens the hot store read-only and installs a guard: a
 * statement that could change anything (INSERT, UPDATE, DELETE, DDL, ATTACH,
 * writing PRAGMAs, ...) is refused before it runs, with a message that says
 * so. Readers never block the engine: the store is in WAL mode.
 * @locality one thread per ss_query. */
#ifndef SS_QUERY_H
#define SS_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct ss_query ss_query;

typedef enum ss_query_format {
    SS_FMT_TABLE,
    SS_FMT_CSV,
    SS_FMT_JSON,
} ss_query_format;

typedef struct ss_query_limits {
    int64_t max_rows;   /* 0 = no limit; more rows end the query with an error */
    int64_t timeout_ms; /* 0 = no limit */
    /* Bytes of any string or blob the query makes, results and intermediate
     * values alike (SQLITE_LIMIT_LENGTH); 0 = SQLite's own (about 1 GB). A
     * request of the web server sets it, so that one query cannot take
     * gigabytes; `shopstream sql` does not. */
    int64_t max_value_bytes;
    /* Bytes the query may append to out; 0 = no limit. */
    int64_t max_output_bytes;
    int one_statement; /* refuse a ';'-separated list (SS_EINVAL) */
} ss_query_limits;

/* Which limit stopped the last ss_query_exec that failed with SS_ERR. */
typedef enum ss_query_limit {
    SS_QUERY_LIMIT_NONE,   /* none: another error */
    SS_QUERY_LIMIT_ROWS,   /* max_rows */
    SS_QUERY_LIMIT_TIME,   /* timeout_ms */
    SS_QUERY_LIMIT_VALUE,  /* max_value_bytes */
    SS_QUERY_LIMIT_OUTPUT, /* max_output_bytes */
} ss_query_limit;

/* Opens a query connection on the stores: the hot store (hot: a URI;
 * NULL means sqlite:DIR/hot.db) and the committed archives of cold storage
 * at cold (a directory PATH or file:PATH; NULL means DIR/cold). A hot store
 * that is not SQLite is read through its SQL tables (ss_hot_ops.sql_attach)
 * in an in-memory database. The facts read as one: orders, payments and
 * cancellations are hot_<name> UNION ALL cold_<name>, where hot_<name> is
 * the hot store's view and cold_<name> reads the cold files
 * (query/coldtab.h); main.<name> is still the hot view alone. Returns
 * SS_OK, SS_EINVAL (no hot store, a bad URI, or a cold storage that is not
 * a directory path) or SS_EIO/SS_ERR, with a message in err. */
int ss_query_open(const char *data_dir, const char *hot, const char *cold, ss_query **out,
                  char *err, size_t errlen);
void ss_query_close(ss_query *q);

/* The file of the hot store that ss_query_open would open into path: 1 when
 * the store is SQLite (hot NULL or sqlite:PATH), else 0. */
int ss_query_hot_file(const char *data_dir, const char *hot, char *path, size_t n);

/* 1 when q holds no statement and no transaction: what it may be reused in. */
int ss_query_idle(ss_query *q);

/* Runs one or more ';'-separated statements and appends their results to out
 * in the format. On failure returns SS_EINVAL (refused or invalid SQL) or
 * SS_ERR (a limit reached, see ss_query_limit_hit, or an error while
 * running) with a message in err. */
int ss_query_exec(ss_query *q, const char *sql, ss_query_format fmt, const ss_query_limits *lim,
                  ss_buf *out, char *err, size_t errlen);

/* The limit that stopped the last ss_query_exec on q, if any. */
ss_query_limit ss_query_limit_hit(const ss_query *q);

/* Formats a REAL the way results show numbers: values that are whole cents
 * (money) with two decimals, others with up to 15 significant digits. */
void ss_query_format_real(double x, char *out, size_t n);

#endif

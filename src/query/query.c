#define _POSIX_C_SOURCE 200809L
#include "query/query.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "cold/cold.h"
#include "hot/facts_vtab.h"
#include "hot/hot.h"
#include "query/coldtab.h"
#include "query/union.h"

struct ss_query {
    sqlite3 *db;
    ss_hot hot;         /* a store that is not SQLite, read through its SQL tables */
    char denied[256];   /* what the guard refused last, for the message */
    int64_t deadline;   /* monotonic ms; 0 = none */
    int default_length; /* SQLITE_LIMIT_LENGTH as opened */
    ss_query_limit hit; /* what stopped the last exec */
    size_t out_start;   /* out->len when the exec began */
};

/* The guard: reading is allowed, anything else is refused. */
static int authorizer(void *ctx, int action, const char *a, const char *b, const char *c,
                      const char *d)
{
    ss_query *q = ctx;
    (void)c;
    (void)d;
    switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
        return SQLITE_OK;
    case SQLITE_PRAGMA:
        /* Pragmas that only describe the schema; their argument (b) names a
         * table or index. Any other pragma is refused, with or without a value. */
        if (a &&
            (!strcmp(a, "table_info") || !strcmp(a, "table_xinfo") || !strcmp(a, "table_list") ||
             !strcmp(a, "index_list") || !strcmp(a, "index_info") ||
             !strcmp(a, "foreign_key_list") || !strcmp(a, "function_list") ||
             !strcmp(a, "database_list") || !strcmp(a, "collation_list")))
            return SQLITE_OK;
        snprintf(q->denied, sizeof q->denied, "PRAGMA %s%s", a ? a : "", b ? " with a value" : "");
        return SQLITE_DENY;
    case SQLITE_INSERT:
        snprintf(q->denied, sizeof q->denied, "INSERT into %s", a ? a : "?");
        return SQLITE_DENY;
    case SQLITE_UPDATE:
        snprintf(q->denied, sizeof q->denied, "UPDATE of %s", a ? a : "?");
        return SQLITE_DENY;
    case SQLITE_DELETE:
        snprintf(q->denied, sizeof q->denied, "DELETE from %s", a ? a : "?");
        return SQLITE_DENY;
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        snprintf(q->denied, sizeof q->denied, "ATTACH or DETACH");
        return SQLITE_DENY;
    case SQLITE_TRANSACTION:
    case SQLITE_SAVEPOINT:
        snprintf(q->denied, sizeof q->denied, "transaction control");
        return SQLITE_DENY;
    default:
        snprintf(q->denied, sizeof q->denied, "a statement that changes the schema or data");
        return SQLITE_DENY;
    }
}

static int progress(void *ctx)
{
    ss_query *q = ctx;
    return q->deadline && ss_mono_ms() > q->deadline;
}

/* The cold store's URI from the user's form of it: DATA/cold by default. A
 * URI with a scheme is checked now, so that a bad one is a usage error; a
 * directory is opened only once there is an archive to read. */
static int cold_root(const char *data_dir, const char *cold, char *out, size_t n, char *err,
                     size_t errlen)
{
    if (!cold) {
        if ((size_t)snprintf(out, n, "file:%s/cold", data_dir) < n)
            return SS_OK;
        snprintf(err, errlen, "the data directory path '%s' is too long", data_dir);
        return SS_EINVAL;
    }
    const char *dir = !strncmp(cold, "file:", 5) ? cold + 5 : cold;
    if (!*dir || (size_t)snprintf(out, n, "%s", cold) >= n) {
        snprintf(err, errlen, "cold storage '%s' is not a usable directory path", cold);
        return SS_EINVAL;
    }
    if (strstr(cold, "://")) {
        ss_cold c;
        int rc = ss_cold_open(cold, &c, err, errlen);
        if (rc)
            return rc == SS_EINVAL ? SS_EINVAL : SS_EIO;
        ss_cold_close(&c);
    }
    return SS_OK;
}

/* Checks that cold_<t> has the columns of hot_<t>, by name and in order: the
 * union (union.c) pairs them by position, so a hot view that gained or renamed a
 * column would otherwise pair values with the wrong names. */
static int check_columns(ss_query *q, const char *t, char *err, size_t errlen)
{
    char sql[128];
    sqlite3_stmt *hot = NULL, *cold = NULL;
    int rc = SS_ERR;
    snprintf(sql, sizeof sql, "SELECT * FROM hot_%s", t);
    if (sqlite3_prepare_v2(q->db, sql, -1, &hot, NULL) != SQLITE_OK)
        goto out;
    snprintf(sql, sizeof sql, "SELECT * FROM cold_%s", t);
    if (sqlite3_prepare_v2(q->db, sql, -1, &cold, NULL) != SQLITE_OK)
        goto out;
    int n = sqlite3_column_count(hot);
    for (int i = 0; i < n || i < sqlite3_column_count(cold); i++) {
        const char *h = i < n ? sqlite3_column_name(hot, i) : "(none)";
        const char *c = i < sqlite3_column_count(cold) ? sqlite3_column_name(cold, i) : "(none)";
        if (strcmp(h, c) != 0) {
            snprintf(err, errlen,
                     "the hot store's view %s does not have the columns cold storage holds "
                     "(column %d is '%s' in the hot store, '%s' in cold storage); this "
                     "shopstream cannot read this store",
                     t, i + 1, h, c);
            rc = SS_EINVAL;
            goto out;
        }
    }
    rc = SS_OK;
out:
    if (rc == SS_ERR)
        snprintf(err, errlen, "cannot set up SQL over hot and cold storage: %s",
                 sqlite3_errmsg(q->db));
    sqlite3_finalize(hot);
    sqlite3_finalize(cold);
    return rc;
}

/* Makes the main schema's view `name` again as a temp view of the same
 * text, so that the names it reads resolve to the temp views over hot and
 * cold. */
static int remake_view(ss_query *q, const char *name, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    char head[64];
    snprintf(head, sizeof head, "CREATE VIEW %s AS ", name);
    int rc = SS_ERR;
    char *msg = NULL;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT sql FROM main.sqlite_master WHERE type = 'view' AND name = ?1",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        const char *sql =
            sqlite3_step(st) == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (!sql || strncmp(sql, head, strlen(head)) != 0) {
            snprintf(err, errlen,
                     "cannot set up SQL over hot and cold storage: the hot store has no view %s",
                     name);
            sqlite3_finalize(st);
            return SS_EINVAL;
        }
        char *again = sqlite3_mprintf("CREATE TEMP VIEW %s AS %s", name, sql + strlen(head));
        if (again && sqlite3_exec(q->db, again, NULL, NULL, &msg) == SQLITE_OK)
            rc = SS_OK;
        sqlite3_free(again);
    }
    if (rc)
        snprintf(err, errlen, "cannot set up SQL over hot and cold storage: %s",
                 msg ? msg : sqlite3_errmsg(q->db));
    sqlite3_free(msg);
    sqlite3_finalize(st);
    return rc;
}

/* The dimensions whose rows leave with the archives (docs/lifecycle.md,
 * "Dimensions"), over the hot store and the archives' snapshots. A customer
 * is the row of its earliest order, as the hot store keeps it (the earliest
 * first_seen, ties by the values, as ss_hot_customer_wins); a product the
 * hot row, else the newest snapshot's; a minute's row is the same anywhere. */
static const char *const dim_views[] = {
    "CREATE VIRTUAL TABLE temp.cold_customers USING ss_cold(customers);"
    "CREATE TEMP VIEW customers AS SELECT customer_id, customer_segment, city, country, "
    "first_seen FROM (SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY "
    "first_seen, customer_segment, city, country) AS k FROM (SELECT customer_id, "
    "customer_segment, city, country, first_seen FROM main.customers UNION ALL SELECT "
    "customer_id, customer_segment, city, country, first_seen FROM cold_customers)) WHERE k = 1;",
    "CREATE VIRTUAL TABLE temp.cold_products USING ss_cold(products);"
    "CREATE TEMP VIEW products AS SELECT product_id, product_name, category, unit_price FROM "
    "(SELECT *, row_number() OVER (PARTITION BY product_id ORDER BY hot DESC, archive_id DESC) "
    "AS k FROM (SELECT product_id, product_name, category, unit_price, 1 AS hot, '' AS "
    "archive_id FROM main.products UNION ALL SELECT product_id, product_name, category, "
    "unit_price, 0, archive_id FROM cold_products)) WHERE k = 1;",
    "CREATE VIRTUAL TABLE temp.cold_time_minutes USING ss_cold(time_minutes);"
    "CREATE TEMP VIEW time_minutes AS SELECT * FROM main.time_minutes UNION SELECT * FROM "
    "cold_time_minutes;",
};

static int attach_dims(ss_query *q, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof dim_views / sizeof dim_views[0]; i++) {
        char *msg = NULL;
        if (sqlite3_exec(q->db, dim_views[i], NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "cannot set up SQL over hot and cold storage: %s",
                     msg ? msg : "out of memory");
            sqlite3_free(msg);
            return SS_ERR;
        }
    }
    return SS_OK;
}

/* Makes the fact names read hot and cold together. Temp objects shadow the
 * main schema's views of the same name (SQLite resolves an unqualified name
 * in temp first); they are created before the guard, which then refuses any
 * change to them as to everything else. */
static int attach_cold(ss_query *q, const char *root, char *err, size_t errlen)
{
    int rc = ss_query_coldtab_register(q->db, root, err, errlen);
    if (!rc && ss_query_union_register(q->db) != 0) {
        snprintf(err, errlen, "cannot register the tables over hot and cold storage: %s",
                 sqlite3_errmsg(q->db));
        rc = SS_ERR;
    }
    for (int i = 0; !rc && ss_query_cold_tables[i]; i++) {
        const char *t = ss_query_cold_tables[i];
        char *sql = sqlite3_mprintf("CREATE TEMP VIEW hot_%s AS SELECT * FROM main.%s;"
                                    "CREATE VIRTUAL TABLE temp.cold_%s USING ss_cold(%s);",
                                    t, t, t, t);
        char *msg = NULL;
        if (!sql || sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
            snprintf(err, errlen, "cannot set up SQL over hot and cold storage: %s",
                     msg ? msg : "out of memory");
            rc = SS_ERR;
        }
        sqlite3_free(msg);
        sqlite3_free(sql);
        if (!rc)
            rc = check_columns(q, t, err, errlen);
        /* The name itself reads both (union.c): the parts' statements ask
         * the hot store only for the columns a query uses, and take its
         * comparisons, which a compound view under an aggregate does not
         * pass on (kpi_minute reads kpi_minute_data so). */
        msg = NULL;
        sql = rc ? NULL
                 : sqlite3_mprintf(
                       "CREATE VIRTUAL TABLE temp.%s USING ss_union(hot_%s, cold_%s, %s);", t, t, t,
                       strcmp(t, "kpi_minute_data") ? "ts" : "minute_start");
        if (!rc && (!sql || sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK)) {
            snprintf(err, errlen, "cannot set up SQL over hot and cold storage: %s",
                     msg ? msg : "out of memory");
            rc = SS_ERR;
        }
        sqlite3_free(msg);
        sqlite3_free(sql);
    }
    /* kpi_minute over hot and cold alike: schema.sql's view, as the store
     * holds it, made again over the union (temp names resolve first). */
    if (!rc)
        rc = remake_view(q, "kpi_minute", err, errlen);
    if (!rc)
        rc = attach_dims(q, err, errlen);
    /* Every order's state over hot and cold alike: schema.sql's view of the
     * same name reads the hot store alone. */
    char *msg = NULL;
    if (!rc &&
        sqlite3_exec(q->db,
                     "CREATE TEMP VIEW order_state AS SELECT o.order_id, o.ts AS ordered_at, "
                     "CASE WHEN c.payment_failed THEN 'payment_failed' "
                     "WHEN c.order_id IS NOT NULL THEN 'cancelled' "
                     "WHEN p.order_id IS NOT NULL THEN 'paid' ELSE 'created' END AS status "
                     "FROM orders o "
                     "LEFT JOIN (SELECT order_id, max(reason = 'payment_failed') AS "
                     "payment_failed FROM cancellations GROUP BY order_id) c "
                     "ON c.order_id = o.order_id "
                     "LEFT JOIN (SELECT DISTINCT order_id FROM payments WHERE status = "
                     "'success') p ON p.order_id = o.order_id",
                     NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "cannot set up SQL over hot and cold storage: %s",
                 msg ? msg : "out of memory");
        rc = SS_ERR;
    }
    sqlite3_free(msg);
    return rc;
}

/* The hot store of a URI that is not SQLite, as SQL tables in an in-memory
 * database (ss_hot_ops.sql_attach). */
static int open_other(ss_query *q, const char *uri, char *err, size_t errlen)
{
    ss_hot_open_opts o = {.read_only = 1};
    int rc = ss_hot_open(uri, &o, &q->hot, err, errlen);
    if (rc)
        return rc;
    if (!q->hot.ops->sql_attach) {
        snprintf(err, errlen, "the %s hot store holds nothing to query", q->hot.ops->name);
        return SS_EINVAL;
    }
    if (sqlite3_open_v2(":memory:", &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open a query database: out of memory");
        return SS_ERR;
    }
    return q->hot.ops->sql_attach(q->hot.st, q->db, err, errlen);
}

int ss_query_hot_file(const char *data_dir, const char *hot, char *path, size_t n)
{
    if (hot && strncmp(hot, "sqlite:", 7) != 0)
        return 0;
    if (hot)
        snprintf(path, n, "%s", hot + 7);
    else
        snprintf(path, n, "%s/hot.db", data_dir);
    return 1;
}

int ss_query_idle(ss_query *q)
{
    return sqlite3_next_stmt(q->db, NULL) == NULL && sqlite3_get_autocommit(q->db);
}

int ss_query_open(const char *data_dir, const char *hot, const char *cold, ss_query **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    char path[4096], root[4096];
    int rc = cold_root(data_dir, cold, root, sizeof root, err, errlen);
    if (rc)
        return rc;
    ss_query *q = ss_calloc(1, sizeof *q);
    if (hot && strncmp(hot, "sqlite:", 7) != 0) {
        rc = open_other(q, hot, err, errlen);
        if (rc) {
            ss_query_close(q);
            return rc;
        }
    } else {
        ss_query_hot_file(data_dir, hot, path, sizeof path);
        struct stat sb;
        if (stat(path, &sb) != 0) {
            snprintf(err, errlen,
                     "no hot store at '%s'; run 'shopstream process' or 'shopstream run' with "
                     "--data %s first",
                     path, data_dir);
            ss_query_close(q);
            return SS_EINVAL;
        }
        if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "cannot open '%s': %s", path,
                     q->db ? sqlite3_errmsg(q->db) : "out of memory");
            ss_query_close(q);
            return SS_EIO;
        }
        ss_hot_facts_register(q->db);
    }
    sqlite3_busy_timeout(q->db, 5000);
    rc = attach_cold(q, root, err, errlen);
    if (rc) {
        ss_query_close(q);
        return rc;
    }
    q->default_length = sqlite3_limit(q->db, SQLITE_LIMIT_LENGTH, -1);
    sqlite3_exec(q->db, "PRAGMA query_only = 1", NULL, NULL, NULL);
    sqlite3_set_authorizer(q->db, authorizer, q);
    sqlite3_progress_handler(q->db, 10000, progress, q);
    *out = q;
    return SS_OK;
}

ss_query_limit ss_query_limit_hit(const ss_query *q)
{
    return q->hit;
}

void ss_query_close(ss_query *q)
{
    if (!q)
        return;
    sqlite3_close(q->db);
    ss_hot_close(&q->hot);
    free(q);
}

void ss_query_format_real(double x, char *out, size_t n)
{
    /* Whole cents up to the rounding error of money arithmetic in doubles
     * (cents / 100.0, sums of a million such values). A relative tolerance of
     * 1e-6 made every number from 5000 up "whole cents" and printed it
     * rounded to two decimals (105806.244 as 105806.24). */
    double c = x * 100.0;
    if (isfinite(x) && fabs(c - nearbyint(c)) < 1e-11 * fmax(1.0, fabs(c)) && fabs(x) < 1e13)
        snprintf(out, n, "%.2f", x);
    else
        snprintf(out, n, "%.15g", x);
}

/* Strict UTF-8: overlong forms, surrogates and code points past U+10FFFF are
 * invalid, as in the engine's decoder, so that JSON output is always UTF-8. */
static int is_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            k = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3, cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + k >= n)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return 0;
        i += k + 1;
    }
    return 1;
}

/* A blob prints as text only if it is UTF-8 without control characters (tab
 * aside): raw bytes such as ESC or NUL never reach a terminal or a CSV file. */
static int is_printable_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
            return 0;
    return is_utf8(s, n);
}

/* The text of a cell as shown in table and CSV output. */
static void cell_text(sqlite3_stmt *st, int i, ss_buf *b)
{
    char tmp[64];
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        ss_buf_put_i64(b, sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT:
        ss_query_format_real(sqlite3_column_double(st, i), tmp, sizeof tmp);
        ss_buf_puts(b, tmp);
        break;
    case SQLITE_NULL:
        break;
    case SQLITE_BLOB: {
        const unsigned char *p = sqlite3_column_blob(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        if (is_printable_utf8(p, n)) {
            ss_buf_put(b, p, n);
        } else {
            ss_buf_puts(b, "x'");
            for (size_t k = 0; k < n; k++)
                ss_buf_printf(b, "%02x", p[k]);
            ss_buf_putc(b, '\'');
        }
        break;
    }
    default:
        ss_buf_put(b, sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
    }
}

static void json_cell(sqlite3_stmt *st, int i, ss_buf *b)
{
    char tmp[64];
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        ss_buf_put_i64(b, sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT: {
        double x = sqlite3_column_double(st, i);
        if (isfinite(x)) {
            ss_query_format_real(x, tmp, sizeof tmp);
            ss_buf_puts(b, tmp);
        } else {
            ss_buf_lit(b, "null");
        }
        break;
    }
    case SQLITE_NULL:
        ss_buf_lit(b, "null");
        break;
    default: {
        ss_buf t;
        ss_buf_init(&t, 64);
        cell_text(st, i, &t);
        if (!is_utf8((const unsigned char *)t.data, t.len)) {
            t.len = 0;
            ss_buf_lit(&t, "(binary)");
        }
        ss_buf_put_jstr(b, t.data, t.len);
        ss_buf_free(&t);
    }
    }
}

static void csv_field(ss_buf *b, const char *p, size_t n)
{
    if (!memchr(p, ',', n) && !memchr(p, '"', n) && !memchr(p, '\n', n) && !memchr(p, '\r', n)) {
        ss_buf_put(b, p, n);
        return;
    }
    ss_buf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"')
            ss_buf_putc(b, '"');
        ss_buf_putc(b, p[i]);
    }
    ss_buf_putc(b, '"');
}

/* Display width of UTF-8 text: one column per code point. */
static size_t width(const char *p, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        w += ((unsigned char)p[i] & 0xc0) != 0x80;
    return w;
}

typedef struct grid {
    ss_buf text;
    size_t *off; /* start of each cell in text; cells are row-major */
    size_t ncells, cap;
    int ncols;
    size_t *colw;
} grid;

static void grid_cell(grid *g, const char *p, size_t n)
{
    if (g->ncells == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 256;
        g->off = ss_realloc(g->off, (g->cap + 1) * sizeof *g->off);
    }
    g->off[g->ncells++] = g->text.len;
    ss_buf_put(&g->text, p, n);
    g->off[g->ncells] = g->text.len;
    size_t w = width(p, n);
    int col = (int)((g->ncells - 1) % (size_t)g->ncols);
    if (w > g->colw[col])
        g->colw[col] = w;
}

static void grid_print(grid *g, sqlite3_stmt *st, ss_buf *out)
{
    size_t nrows = g->ncells / (size_t)g->ncols;
    for (size_t r = 0; r < nrows; r++) {
        for (int c = 0; c < g->ncols; c++) {
            size_t k = r * (size_t)g->ncols + (size_t)c;
            const char *p = g->text.data + g->off[k];
            size_t n = g->off[k + 1] - g->off[k], w = width(p, n);
            /* Numbers align right, text left. */
            int right = r > 0 && sqlite3_column_type(st, c) != SQLITE_TEXT && n > 0 &&
                        (p[0] == '-' || (p[0] >= '0' && p[0] <= '9'));
            if (c)
                ss_buf_lit(out, "  ");
            if (right)
                for (size_t i = w; i < g->colw[c]; i++)
                    ss_buf_putc(out, ' ');
            ss_buf_put(out, p, n);
            if (!right && c + 1 < g->ncols)
                for (size_t i = w; i < g->colw[c]; i++)
                    ss_buf_putc(out, ' ');
        }
        ss_buf_putc(out, '\n');
        if (r == 0) {
            for (int c = 0; c < g->ncols; c++) {
                if (c)
                    ss_buf_lit(out, "  ");
                for (size_t i = 0; i < g->colw[c]; i++)
                    ss_buf_putc(out, '-');
            }
            ss_buf_putc(out, '\n');
        }
    }
}

/* Stops a query whose answer would pass max_output_bytes: more than made
 * so far (out, and a table's cells not yet printed) and the next bytes to
 * come. */
static int over_output(ss_query *q, const ss_query_limits *lim, const ss_buf *out, const grid *g,
                       size_t next, char *err, size_t errlen)
{
    if (!lim || !lim->max_output_bytes)
        return 0;
    size_t made = out->len - q->out_start + g->text.len;
    if (made + next <= (size_t)lim->max_output_bytes)
        return 0;
    q->hit = SS_QUERY_LIMIT_OUTPUT;
    snprintf(err, errlen,
             "the answer is larger than the limit of %lld bytes; add a LIMIT, or select fewer "
             "or shorter columns",
             (long long)lim->max_output_bytes);
    return 1;
}

/* The message of SQLITE_TOOBIG: a value past max_value_bytes. */
static void too_big(ss_query *q, const ss_query_limits *lim, char *err, size_t errlen)
{
    q->hit = SS_QUERY_LIMIT_VALUE;
    snprintf(err, errlen,
             "a value of the query (a string or blob, in its result or on the way) is larger "
             "than the limit of %lld bytes",
             (long long)(lim && lim->max_value_bytes && lim->max_value_bytes < q->default_length
                             ? lim->max_value_bytes
                             : q->default_length));
}

static int run_one(ss_query *q, sqlite3_stmt *st, ss_query_format fmt, const ss_query_limits *lim,
                   ss_buf *out, char *err, size_t errlen)
{
    int ncols = sqlite3_column_count(st);
    grid g = {0};
    ss_buf cell;
    ss_buf_init(&cell, 256);
    if (fmt == SS_FMT_TABLE && ncols > 0) {
        g.ncols = ncols;
        g.colw = ss_calloc((size_t)ncols, sizeof *g.colw);
        ss_buf_init(&g.text, 4096);
        for (int i = 0; i < ncols; i++) {
            const char *name = sqlite3_column_name(st, i);
            grid_cell(&g, name, strlen(name));
        }
    } else if (fmt == SS_FMT_CSV) {
        for (int i = 0; i < ncols; i++) {
            if (i)
                ss_buf_putc(out, ',');
            const char *name = sqlite3_column_name(st, i);
            csv_field(out, name, strlen(name));
        }
        if (ncols)
            ss_buf_lit(out, "\r\n");
    } else if (fmt == SS_FMT_JSON) {
        ss_buf_putc(out, '[');
    }
    int64_t rows = 0;
    int rc, result = SS_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (lim && lim->max_rows && rows >= lim->max_rows) {
            q->hit = SS_QUERY_LIMIT_ROWS;
            snprintf(err, errlen,
                     "the result has more than %lld rows; add a LIMIT or narrow "
                     "the query",
                     (long long)lim->max_rows);
            result = SS_ERR;
            break;
        }
        rows++;
        /* A cell's text takes at least as many bytes as its value: a value
         * past what is left of the limit stops the query before it is
         * copied. Each cell's text is checked once made. */
        for (int i = 0; i < ncols && result == SS_OK; i++) {
            /* sqlite3_column_bytes would turn a number into text. */
            int type = sqlite3_column_type(st, i);
            size_t n = type == SQLITE_TEXT || type == SQLITE_BLOB
                           ? (size_t)sqlite3_column_bytes(st, i)
                           : 0;
            if (over_output(q, lim, out, &g, n, err, errlen))
                result = SS_ERR;
        }
        if (result != SS_OK)
            break;
        if (fmt == SS_FMT_JSON) {
            ss_buf_puts(out, rows > 1 ? ",\n {" : "\n {");
            for (int i = 0; i < ncols && result == SS_OK; i++) {
                if (i)
                    ss_buf_putc(out, ',');
                const char *name = sqlite3_column_name(st, i);
                ss_buf_put_jstr(out, name, strlen(name));
                ss_buf_putc(out, ':');
                json_cell(st, i, out);
                if (over_output(q, lim, out, &g, 0, err, errlen))
                    result = SS_ERR;
            }
            ss_buf_putc(out, '}');
            if (result != SS_OK)
                break;
            continue;
        }
        for (int i = 0; i < ncols && result == SS_OK; i++) {
            cell.len = 0;
            cell_text(st, i, &cell);
            if (over_output(q, lim, out, &g, cell.len, err, errlen))
                result = SS_ERR;
            if (fmt == SS_FMT_TABLE) {
                grid_cell(&g, cell.data ? cell.data : "", cell.len);
            } else {
                if (i)
                    ss_buf_putc(out, ',');
                csv_field(out, cell.data ? cell.data : "", cell.len);
            }
        }
        if (result != SS_OK)
            break;
        if (fmt == SS_FMT_CSV)
            ss_buf_lit(out, "\r\n");
    }
    if (result == SS_OK && rc != SQLITE_DONE) {
        if (rc == SQLITE_INTERRUPT) {
            q->hit = SS_QUERY_LIMIT_TIME;
            snprintf(err, errlen, "the query ran longer than %lld ms and was stopped",
                     (long long)(lim ? lim->timeout_ms : 0));
        } else if (rc == SQLITE_TOOBIG) {
            too_big(q, lim, err, errlen);
        } else
            snprintf(err, errlen, "%s", sqlite3_errmsg(q->db));
        result = SS_ERR;
    }
    if (fmt == SS_FMT_JSON)
        ss_buf_puts(out, rows ? "\n]\n" : "]\n");
    if (fmt == SS_FMT_TABLE && ncols > 0) {
        if (result == SS_OK) {
            grid_print(&g, st, out);
            ss_buf_printf(out, "(%lld row%s)\n", (long long)rows, rows == 1 ? "" : "s");
        }
        ss_buf_free(&g.text);
        free(g.off);
        free(g.colw);
    }
    ss_buf_free(&cell);
    return result;
}

int ss_query_exec(ss_query *q, const char *sql, ss_query_format fmt, const ss_query_limits *lim,
                  ss_buf *out, char *err, size_t errlen)
{
    /* Every statement is prepared and checked before any runs, so that a
     * refused statement leaves no partial output behind. */
    sqlite3_stmt *sts[64];
    int n = 0, rc = SS_OK;
    const char *tail = sql;
    q->deadline = lim && lim->timeout_ms ? ss_mono_ms() + lim->timeout_ms : 0;
    q->hit = SS_QUERY_LIMIT_NONE;
    q->out_start = out->len;
    sqlite3_limit(q->db, SQLITE_LIMIT_LENGTH,
                  lim && lim->max_value_bytes && lim->max_value_bytes < q->default_length
                      ? (int)lim->max_value_bytes
                      : q->default_length);
    while (rc == SS_OK && tail && *tail) {
        sqlite3_stmt *st = NULL;
        q->denied[0] = '\0';
        if (sqlite3_prepare_v2(q->db, tail, -1, &st, &tail) != SQLITE_OK) {
            /* DELETE or UPDATE of a view, or of a virtual table without
             * xUpdate (the cold tables, the fact tables over hot and cold),
             * and a trigger on one, fail before the guard sees them. */
            const char *msg = sqlite3_errmsg(q->db);
            if (!q->denied[0] &&
                (!strncmp(msg, "cannot modify ", 14) || strstr(msg, " may not be modified") ||
                 !strncmp(msg, "cannot create triggers on ", 26)))
                snprintf(q->denied, sizeof q->denied, "%s", msg);
            if (q->denied[0]) {
                snprintf(err, errlen,
                         "refused: the statement would change the store (%s); shopstream sql "
                         "is read-only",
                         q->denied);
                rc = SS_EINVAL;
            } else if (sqlite3_errcode(q->db) == SQLITE_TOOBIG) {
                too_big(q, lim, err, errlen); /* a literal past the limit */
                rc = SS_ERR;
            } else {
                snprintf(err, errlen, "invalid SQL: %s", sqlite3_errmsg(q->db));
                rc = SS_EINVAL;
            }
        } else if (!st) {
            continue; /* whitespace or a lone ';' */
        } else if (!sqlite3_stmt_readonly(st)) {
            snprintf(err, errlen,
                     "refused: the statement would change the store; shopstream "
                     "sql is read-only");
            sqlite3_finalize(st);
            rc = SS_EINVAL;
        } else if (n == 1 && lim && lim->one_statement) {
            snprintf(err, errlen, "give exactly one statement (no ';'-separated list)");
            sqlite3_finalize(st);
            rc = SS_EINVAL;
        } else if (n == (int)(sizeof sts / sizeof sts[0])) {
            snprintf(err, errlen, "too many statements (at most 64)");
            sqlite3_finalize(st);
            rc = SS_EINVAL;
        } else {
            sts[n++] = st;
        }
    }
    if (rc == SS_OK && n == 0) {
        snprintf(err, errlen, "no SQL statement given");
        rc = SS_EINVAL;
    }
    for (int i = 0; i < n; i++) {
        if (rc == SS_OK)
            rc = run_one(q, sts[i], fmt, lim, out, err, errlen);
        sqlite3_finalize(sts[i]);
    }
    return rc;
}

/* The "ss_cold" virtual table module: SQL over the cold layout of
 * docs/lifecycle.md. See coldtab.h for what it serves and promises. */
#define _POSIX_C_SOURCE 200809L
#include "query/coldtab.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cold/cold.h"

#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "hot/vtab_ts.h"
#include "query/coldrow.h"

#define COMP "query:cold"

/* The advice every error about cold data ends with: the archiver's check
 * tells which archives are whole, and repairs what it can. */
#define VERIFY_HINT "run 'shopstream archive --verify'"

#define READ_CHUNK (64 * 1024)
/* Ranges read from the cold store at a time: one round trip each over HDFS. */
#define RANGE_CHUNK (8 * 1024 * 1024)
/* A line longer than any event could be is a damaged file, not a reason to
 * read the rest of it into memory. */
#define MAX_LINE (16 * 1024 * 1024)
/* ts constraints of one scan that are used for pruning; more add nothing. */
#define MAX_TS_CONS 8

typedef enum col_kind {
    COL_TEXT,     /* a JSON string; required */
    COL_TEXT_OPT, /* a JSON string, or null or absent (NULL) */
    COL_INT,      /* a JSON integer */
    COL_MONEY,    /* a JSON number in currency units, exact to the cent */
    COL_CENTS,    /* the same, as the integer cents of a column named <key>_cents */
} col_kind;

typedef struct col_spec {
    const char *name; /* the column, and the key of the JSON lines (less _cents) */
    col_kind kind;
} col_spec;

typedef struct table_spec {
    const char *name;     /* the SQL table's */
    const char *manifest; /* the table's in the manifests */
    const char *dir;      /* the folder of its files */
    const col_spec *cols;
    int ncols;
    int ts_col; /* the column of the rows' time, by which files are pruned; -1: none */
    int dims;   /* a dimension's snapshots (the manifests' "dims"), not a table's parts */
} table_spec;

/* The columns of the hot store's views (src/hot/schema.sql), in their order;
 * query.c checks at open that the views still have these names. */
static const col_spec order_cols[] = {
    {"event_id", COL_TEXT},       {"order_id", COL_TEXT},         {"ts", COL_TEXT},
    {"customer_id", COL_TEXT},    {"customer_segment", COL_TEXT}, {"product_id", COL_TEXT},
    {"product_name", COL_TEXT},   {"category", COL_TEXT},         {"city", COL_TEXT},
    {"country", COL_TEXT},        {"quantity", COL_INT},          {"unit_price", COL_MONEY},
    {"amount", COL_MONEY},        {"discount", COL_MONEY},        {"tax", COL_MONEY},
    {"shipping", COL_MONEY},      {"total_price", COL_MONEY},     {"currency", COL_TEXT},
    {"payment_method", COL_TEXT},
};

static const col_spec payment_cols[] = {
    {"event_id", COL_TEXT},
    {"order_id", COL_TEXT},
    {"ts", COL_TEXT},
    {"payment_method", COL_TEXT},
    {"amount", COL_MONEY},
    {"status", COL_TEXT},
    {"failure_reason", COL_TEXT_OPT},
    {"attempt", COL_INT},
    {"city", COL_TEXT},
    {"country", COL_TEXT},
    {"category", COL_TEXT},
};

static const col_spec cancellation_cols[] = {
    {"event_id", COL_TEXT}, {"order_id", COL_TEXT}, {"ts", COL_TEXT},
    {"reason", COL_TEXT},   {"refund", COL_MONEY},  {"city", COL_TEXT},
    {"country", COL_TEXT},  {"category", COL_TEXT}, {"payment_method", COL_TEXT},
};

/* The minute KPIs of archived minutes: the columns of kpi_minute_data. */
static const col_spec kpi_cols[] = {
    {"minute_start", COL_TEXT},
    {"dimension", COL_TEXT},
    {"dimension_value", COL_TEXT},
    {"shard", COL_INT},
    {"orders", COL_INT},
    {"units", COL_INT},
    {"gross_revenue_cents", COL_CENTS},
    {"paid_revenue_cents", COL_CENTS},
    {"payment_attempts", COL_INT},
    {"failed_payments", COL_INT},
    {"cancellations", COL_INT},
    {"cancelled_revenue_cents", COL_CENTS},
    {"final", COL_INT},
};

/* The dimensions that leave the hot store with the archives that last
 * reference their rows (docs/lifecycle.md, "Dimensions"): their snapshots. */
static const col_spec customer_cols[] = {
    {"customer_id", COL_TEXT}, {"customer_segment", COL_TEXT}, {"city", COL_TEXT},
    {"country", COL_TEXT},     {"first_seen", COL_TEXT},
};

static const col_spec product_cols[] = {
    {"product_id", COL_TEXT},
    {"product_name", COL_TEXT},
    {"category", COL_TEXT},
    {"unit_price", COL_MONEY},
};

static const col_spec minute_cols[] = {
    {"minute_start", COL_TEXT}, {"date", COL_TEXT},   {"hour", COL_INT},
    {"minute", COL_INT},        {"weekday", COL_INT}, {"weekday_name", COL_TEXT},
};

#define NCOLS(a) ((int)(sizeof a / sizeof a[0]))

static const table_spec tables[] = {
    {"orders", "orders", "orders", order_cols, NCOLS(order_cols), 2, 0},
    {"payments", "payments", "payments", payment_cols, NCOLS(payment_cols), 2, 0},
    {"cancellations", "cancellations", "cancellations", cancellation_cols, NCOLS(cancellation_cols),
     2, 0},
    {"kpi_minute_data", "kpi_minute", "kpi", kpi_cols, NCOLS(kpi_cols), 0, 0},
    {"customers", "customers", "dims/customers", customer_cols, NCOLS(customer_cols), -1, 1},
    {"products", "products", "dims/products", product_cols, NCOLS(product_cols), -1, 1},
    {"time_minutes", "time_minutes", "dims/time_minutes", minute_cols, NCOLS(minute_cols), -1, 1},
};

#define MAX_COLS NCOLS(order_cols)
#define NTABLES  ((int)(sizeof tables / sizeof tables[0]))

const char *const ss_query_cold_tables[] = {"orders", "payments", "cancellations",
                                            "kpi_minute_data", NULL};
const char *const ss_query_cold_dims[] = {"customers", "products", "time_minutes", NULL};

/* One file a committed manifest lists for the table. */
typedef struct cold_file {
    char *path;            /* relative to the cold root, as listed */
    char *min_ts, *max_ts; /* empty for a dimension's snapshot */
    char *id;              /* the archive's */
    int64_t records;       /* -1 when the manifest does not say */
    int64_t bytes;         /* -1 when the manifest does not say */
} cold_file;

typedef struct file_list {
    cold_file *v;
    size_t n, cap;
} file_list;

typedef struct cold_vtab {
    sqlite3_vtab base; /* first: SQLite hands out pointers to it */
    sqlite3 *db;
    const table_spec *t;
    struct cold_src *src; /* the module's; outlives every table */
    /* The files of the committed archives whose ids, each followed by '\n',
     * are in ids: read again only when that list changes, since a committed
     * manifest never does. */
    int loaded;
    ss_buf ids;
    file_list files;
} cold_vtab;

typedef struct cold_cursor {
    sqlite3_vtab_cursor base; /* first: SQLite hands out pointers to it */
    /* The scan's range of ts; NULL is open-ended. */
    char *lo, *hi;
    size_t lo_len, hi_len;
    int lo_incl, hi_incl;
    int empty; /* the constraints admit no ts at all */
    size_t next_file;
    /* The open file, if any: read by ranges into in, inflated into rbuf
     * when it is gzip data. */
    void *h;
    int64_t fsize, foff;
    char *in;
    int is_gz, zinit, zdone;
    z_stream z;
    const cold_file *cur;
    /* The next file of the scan, opened while this one is read (a backend
     * may start fetching it at once). */
    void *ahead;
    int64_t ahead_size;
    const cold_file *ahead_f;
    char *rbuf;
    const char *rdata; /* rbuf, or in for a plain file */
    size_t rpos, rlen;
    int64_t line_no, records;
    ss_buf line;    /* a line that spans two reads, gathered */
    const char *lp; /* the line read: in place, or line's data */
    size_t llen;
    /* The row: values from parse_row, numbers converted. */
    ss_buf scratch;
    ss_str names[MAX_COLS];
    ss_coldval vals[MAX_COLS];
    int64_t ints[MAX_COLS];
    double money[MAX_COLS];
    int64_t rowid;
    int eof;
    /* For the debug log: files opened and scans (xFilter calls). */
    int64_t opened;
    int scans;
} cold_cursor;

/* The cold store the module reads, opened at its first committed archive
 * (so that a store without archives needs none). */
typedef struct cold_src {
    char *uri;
    ss_cold cold;
    int opened;
} cold_src;

static void cold_src_free(void *p)
{
    cold_src *s = p;
    if (s->opened)
        ss_cold_close(&s->cold);
    free(s->uri);
    free(s);
}

/* ---- errors ---- */

static int vt_error(cold_vtab *vt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int src_open(cold_vtab *vt)
{
    if (vt->src->opened)
        return SQLITE_OK;
    char err[1024];
    if (ss_cold_open(vt->src->uri, &vt->src->cold, err, sizeof err) != SS_OK)
        return vt_error(vt, "cannot open the cold store: %s", err);
    vt->src->opened = 1;
    return SQLITE_OK;
}

static const char *src_name(const cold_vtab *vt)
{
    return vt->src->opened ? vt->src->cold.ops->describe(vt->src->cold.st) : vt->src->uri;
}

/* Sets the message SQLite reports for the failing call; returns
 * SQLITE_ERROR. The format is SQLite's printf: no %zu (%z is its own). */
static int vt_error(cold_vtab *vt, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sqlite3_free(vt->base.zErrMsg);
    vt->base.zErrMsg = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    return SQLITE_ERROR;
}

static int file_damaged(cold_cursor *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A listed file whose content is not what the manifest promises. */
static int file_damaged(cold_cursor *c, const char *fmt, ...)
{
    cold_vtab *vt = (cold_vtab *)c->base.pVtab;
    va_list ap;
    va_start(ap, fmt);
    char *why = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    vt_error(vt, "cold file '%s' is damaged: %s; " VERIFY_HINT, c->cur->path,
             why ? why : "out of memory");
    sqlite3_free(why);
    return SQLITE_ERROR;
}

/* ---- reading manifests ---- */

static int tcmp(const char *a, size_t alen, const char *b, size_t blen)
{
    /* SQLite's BINARY collation: bytes, then length. */
    int k = memcmp(a, b, alen < blen ? alen : blen);
    return k ? k : (alen > blen) - (alen < blen);
}

static int file_order(const void *pa, const void *pb)
{
    const cold_file *a = pa, *b = pb;
    int k = strcmp(a->min_ts, b->min_ts);
    return k ? k : strcmp(a->path, b->path);
}

static void files_clear(file_list *fl)
{
    for (size_t i = 0; i < fl->n; i++) {
        free(fl->v[i].path);
        free(fl->v[i].min_ts);
        free(fl->v[i].max_ts);
        free(fl->v[i].id);
    }
    free(fl->v);
    memset(fl, 0, sizeof *fl);
}

/* Archive ids name files under _archives/: nothing that could leave it. */
static int valid_id(const char *id)
{
    if (!id || !*id || *id == '.')
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* A listed path stays inside the table's folder of the cold root: a manifest
 * is data, and a query must not read files elsewhere because one says so. */
static int valid_path(const char *path, const char *table)
{
    size_t tl = strlen(table), n = strlen(path);
    if (strncmp(path, table, tl) != 0 || path[tl] != '/' || strstr(path, "..") ||
        strstr(path, "//") || strchr(path, '\\'))
        return 0;
    return (n > 6 && !strcmp(path + n - 6, ".jsonl")) ||
           (n > 9 && !strcmp(path + n - 9, ".jsonl.gz"));
}

/* A non-negative integer member, or -1 when absent; -2 when not such. */
static int64_t opt_count(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return -1;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -2;
    return (int64_t)json_integer_value(v);
}

/* Adds the table's files of one committed archive to fl. The manifest comes
 * from the archives row (text, len) or, when that has none, from
 * COLD/_archives/<id>.json. */
static int add_manifest(cold_vtab *vt, const char *id, const char *text, int len, file_list *fl)
{
    json_error_t je;
    json_t *m = NULL;
    char path[4096];
    const char *from = "the hot store's archives table";
    int rc = SQLITE_OK;

    if (!valid_id(id)) {
        rc = vt_error(vt, "committed archive id '%s' is not a valid archive id; " VERIFY_HINT,
                      id ? id : "");
        goto out;
    }
    if (text && len > 0) {
        m = json_loadb(text, (size_t)len, 0, &je);
    } else {
        if ((rc = src_open(vt)) != SQLITE_OK)
            goto out;
        snprintf(path, sizeof path, "_archives/%s.json", id);
        from = path;
        ss_buf b;
        ss_buf_init(&b, 4096);
        ss_cold *cold = &vt->src->cold;
        int r = cold->ops->read(cold->st, path, &b);
        if (r == SS_EOF || r != SS_OK) {
            rc = r == SS_EOF
                     ? vt_error(vt,
                                "committed archive '%s' has no manifest: the archives "
                                "table holds none and '%s' is missing in %s; " VERIFY_HINT,
                                id, path, src_name(vt))
                     : vt_error(vt, "cannot read the manifest '%s' in %s", path, src_name(vt));
            ss_buf_free(&b);
            goto out;
        }
        m = json_loadb(b.data, b.len, 0, &je);
        ss_buf_free(&b);
    }
    if (!m) {
        rc = vt_error(vt,
                      "the manifest of archive '%s' (in %s) is damaged: %s (line %d); " VERIFY_HINT,
                      id, from, je.text, je.line);
        goto out;
    }
    json_t *aid = json_object_get(m, "archive_id");
    json_t *tabs = json_object_get(m, "tables");
    if ((aid && (!json_is_string(aid) || strcmp(json_string_value(aid), id) != 0)) ||
        !json_is_object(tabs)) {
        rc = vt_error(vt, "the manifest of archive '%s' (in %s) is damaged: %s; " VERIFY_HINT, id,
                      from, json_is_object(tabs) ? "it names another archive" : "no \"tables\"");
        goto out;
    }
    json_t *t = json_object_get(vt->t->dims ? json_object_get(m, "dims") : tabs, vt->t->manifest);
    if (!t)
        goto out; /* the run archived nothing of this table */
    json_t *files = json_object_get(t, "files");
    if (!json_is_array(files)) {
        rc = vt_error(vt,
                      "the manifest of archive '%s' (in %s) is damaged: %s has no \"files\" "
                      "list; " VERIFY_HINT,
                      id, from, vt->t->manifest);
        goto out;
    }
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *p = json_string_value(json_object_get(f, "path"));
        const char *lo = json_string_value(json_object_get(f, "min_ts"));
        const char *hi = json_string_value(json_object_get(f, "max_ts"));
        if (vt->t->dims)
            lo = hi = ""; /* a snapshot: no time range */
        int64_t records = opt_count(f, "records"), bytes = opt_count(f, "bytes");
        if (!p || !lo || !hi || records < -1 || bytes < -1 || !valid_path(p, vt->t->dir)) {
            rc = vt_error(vt,
                          "the manifest of archive '%s' (in %s) is damaged: file %lld of %s "
                          "needs a path under '%s/' ending in .jsonl or .jsonl.gz, min_ts and "
                          "max_ts; " VERIFY_HINT,
                          id, from, (long long)i + 1, vt->t->manifest, vt->t->dir);
            goto out;
        }
        if (fl->n == fl->cap) {
            fl->cap = fl->cap ? fl->cap * 2 : 16;
            fl->v = ss_realloc(fl->v, fl->cap * sizeof *fl->v);
        }
        fl->v[fl->n++] =
            (cold_file){ss_strdup(p), ss_strdup(lo), ss_strdup(hi), ss_strdup(id), records, bytes};
    }
out:
    json_decref(m);
    return rc;
}

static int db_error(cold_vtab *vt, int rc, const char *what)
{
    vt_error(vt, "cannot read the archives table (%s): %s", what, sqlite3_errmsg(vt->db));
    /* An interrupt (the query's time limit) stays one, for its message. */
    return rc == SQLITE_INTERRUPT ? rc : SQLITE_ERROR;
}

/* Brings vt->files up to date with the committed archives. Runs inside the
 * query's statement, so it sees the same snapshot of the hot store as the
 * hot side of the query: an archive commit deletes the hot rows and marks
 * the archive committed in one transaction, so no row is seen twice or
 * missed. */
static int load_files(cold_vtab *vt)
{
    sqlite3_stmt *st = NULL;
    ss_buf ids;
    file_list fl = {0};
    int rc, exists;

    ss_buf_init(&ids, 256);
    rc = sqlite3_prepare_v2(vt->db,
                            "SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND "
                            "name = 'archives'",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = db_error(vt, rc, "looking it up");
        goto out;
    }
    rc = sqlite3_step(st);
    exists = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = db_error(vt, rc, "looking it up");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = SQLITE_OK;
    /* A store the archiver has never touched has no archives table: no
     * committed archives. */
    if (!exists)
        goto swap;

    rc = sqlite3_prepare_v2(vt->db,
                            "SELECT archive_id, manifest FROM main.archives "
                            "WHERE state = 'committed' ORDER BY archive_id",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        rc = db_error(vt, rc, "listing committed archives");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        ss_buf_puts(&ids, id ? id : "");
        ss_buf_putc(&ids, '\n');
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(vt, rc, "listing committed archives");
        goto out;
    }
    rc = SQLITE_OK;
    if (vt->loaded && ids.len == vt->ids.len &&
        (!ids.len || !memcmp(ids.data, vt->ids.data, ids.len)))
        goto out;
    sqlite3_reset(st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = add_manifest(vt, (const char *)sqlite3_column_text(st, 0),
                          (const char *)sqlite3_column_text(st, 1), sqlite3_column_bytes(st, 1),
                          &fl);
        if (rc)
            goto out;
    }
    if (rc != SQLITE_DONE) {
        rc = db_error(vt, rc, "reading manifests");
        goto out;
    }
    rc = SQLITE_OK;
    if (fl.n > 1)
        qsort(fl.v, fl.n, sizeof *fl.v, file_order);
swap:
    files_clear(&vt->files);
    vt->files = fl;
    memset(&fl, 0, sizeof fl);
    ss_buf_free(&vt->ids);
    vt->ids = ids;
    ss_buf_init(&ids, 0);
    vt->loaded = 1;
out:
    sqlite3_finalize(st);
    ss_buf_free(&ids);
    files_clear(&fl);
    return rc;
}

/* ---- the table ---- */

static int cold_connect(sqlite3 *db, void *aux, int argc, const char *const *argv,
                        sqlite3_vtab **out, char **errp)
{
    const table_spec *t = NULL;
    ss_buf sql;
    int rc;

    *out = NULL;
    for (int i = 0; argc == 4 && i < NTABLES; i++)
        if (!strcmp(argv[3], tables[i].name))
            t = &tables[i];
    if (!t) {
        *errp = sqlite3_mprintf(
            "ss_cold takes one table: orders, payments, cancellations or kpi_minute_data");
        return SQLITE_ERROR;
    }
    ss_buf_init(&sql, 512);
    ss_buf_lit(&sql, "CREATE TABLE x(");
    for (int i = 0; i < t->ncols; i++)
        ss_buf_printf(&sql, "%s%s %s", i ? ", " : "", t->cols[i].name,
                      t->cols[i].kind == COL_INT || t->cols[i].kind == COL_CENTS ? "INTEGER"
                      : t->cols[i].kind == COL_MONEY                             ? "REAL"
                                                                                 : "TEXT");
    /* The archive each row comes from, for readers that want the newest. */
    ss_buf_lit(&sql, ", archive_id TEXT HIDDEN)");
    rc = sqlite3_declare_vtab(db, ss_buf_cstr(&sql));
    ss_buf_free(&sql);
    if (rc != SQLITE_OK) {
        *errp = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        return rc;
    }
    cold_vtab *vt = ss_calloc(1, sizeof *vt);
    vt->db = db;
    vt->t = t;
    vt->src = aux;
    ss_buf_init(&vt->ids, 0);
    *out = &vt->base;
    return SQLITE_OK;
}

static int cold_disconnect(sqlite3_vtab *vtab)
{
    cold_vtab *vt = (cold_vtab *)vtab;
    files_clear(&vt->files);
    ss_buf_free(&vt->ids);
    free(vt);
    return SQLITE_OK;
}

/* Hands the usable ts comparisons to xFilter, one character per argument
 * in idxStr ('=', '<', 'l' for <=, '>', 'g' for >=). SQLite still checks
 * every row itself (omit stays 0): pruning is per file, and values that are
 * not text are left to SQLite's own comparison rules. */
static int cold_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
    char ops[MAX_TS_CONS + 1];
    int lower = 0, upper = 0, eq = 0;
    const cold_vtab *vt = (const cold_vtab *)vtab;
    /* Files are pruned by byte order; SQLite still checks every row (omit
     * 0). */
    int n = ss_vtab_ts_constraints(info, vt->t->ts_col, MAX_TS_CONS, 0, ops, &lower, &upper, &eq);
    info->idxNum = n;
    if (n) {
        info->idxStr = sqlite3_mprintf("%s", ops);
        info->needToFreeIdxStr = 1;
    }
    /* Relative costs only: a bounded range reads a few files, an open one
     * all of them. */
    double rows = eq ? 10 : lower && upper ? 1e4 : lower || upper ? 2.5e5 : 1e6;
    info->estimatedRows = (sqlite3_int64)rows;
    info->estimatedCost = rows;
    return SQLITE_OK;
}

static void cursor_close_file(cold_cursor *c)
{
    if (c->h) {
        ss_cold *cold = &((cold_vtab *)c->base.pVtab)->src->cold;
        cold->ops->get_close(c->h);
    }
    if (c->zinit)
        inflateEnd(&c->z);
    c->h = NULL;
    c->zinit = c->zdone = 0;
    c->cur = NULL;
    c->rpos = c->rlen = 0;
}

static void close_ahead(cold_cursor *c)
{
    if (c->ahead) {
        ss_cold *cold = &((cold_vtab *)c->base.pVtab)->src->cold;
        cold->ops->get_close(c->ahead);
    }
    c->ahead = NULL;
    c->ahead_f = NULL;
}

static void cursor_reset(cold_cursor *c)
{
    cursor_close_file(c);
    close_ahead(c);
    free(c->lo);
    free(c->hi);
    c->lo = c->hi = NULL;
    c->lo_len = c->hi_len = 0;
    c->lo_incl = c->hi_incl = 0;
    c->empty = 0;
    c->next_file = 0;
    c->rowid = 0;
    c->eof = 1;
}

static int cold_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out)
{
    const cold_vtab *vt = (const cold_vtab *)vtab;
    cold_cursor *c = ss_calloc(1, sizeof *c);
    c->rbuf = ss_malloc(READ_CHUNK);
    c->in = ss_malloc(RANGE_CHUNK);
    ss_buf_init(&c->line, 1024);
    ss_buf_init(&c->scratch, 1024);
    for (int i = 0; i < vt->t->ncols; i++)
        c->names[i] =
            (ss_str){vt->t->cols[i].name, (uint32_t)(strlen(vt->t->cols[i].name) -
                                                     (vt->t->cols[i].kind == COL_CENTS ? 6 : 0))};
    c->eof = 1;
    *out = &c->base;
    return SQLITE_OK;
}

static int cold_close(sqlite3_vtab_cursor *cur)
{
    cold_cursor *c = (cold_cursor *)cur;
    cold_vtab *vt = (cold_vtab *)cur->pVtab;
    if (c->scans == 1)
        SS_DEBUG(COMP, "%s: opened %lld of %zu files", vt->t->name, (long long)c->opened,
                 vt->files.n);
    else if (c->scans > 1)
        SS_DEBUG(COMP, "%s: opened %lld of %zu files in %d scans", vt->t->name,
                 (long long)c->opened, vt->files.n, c->scans);
    cursor_reset(c);
    ss_buf_free(&c->line);
    ss_buf_free(&c->scratch);
    free(c->rbuf);
    free(c->in);
    free(c);
    return SQLITE_OK;
}

/* Narrows the scan's range by one constraint value. */
static void add_bound(cold_cursor *c, char op, sqlite3_value *v)
{
    /* Text compares as text; other values follow SQLite's affinity rules,
     * which SQLite applies itself when it checks each row. */
    if (sqlite3_value_type(v) != SQLITE_TEXT)
        return;
    const char *s = (const char *)sqlite3_value_text(v);
    size_t n = (size_t)sqlite3_value_bytes(v);
    if (!s)
        return;
    if (op == '=' || op == '>' || op == 'g') {
        int incl = op != '>';
        int k = c->lo ? tcmp(s, n, c->lo, c->lo_len) : 1;
        if (k > 0 || (k == 0 && !incl)) {
            free(c->lo);
            c->lo = ss_strndup(s, n), c->lo_len = n, c->lo_incl = incl;
        }
    }
    if (op == '=' || op == '<' || op == 'l') {
        int incl = op != '<';
        int k = c->hi ? tcmp(s, n, c->hi, c->hi_len) : -1;
        if (k < 0 || (k == 0 && !incl)) {
            free(c->hi);
            c->hi = ss_strndup(s, n), c->hi_len = n, c->hi_incl = incl;
        }
    }
}

/* Whether a ts range [min, max] can hold a ts of the scan's range. */
static int range_overlaps(const cold_cursor *c, const char *min, size_t minlen, const char *max,
                          size_t maxlen)
{
    if (c->lo) {
        int k = tcmp(max, maxlen, c->lo, c->lo_len);
        if (k < 0 || (k == 0 && !c->lo_incl))
            return 0;
    }
    if (c->hi) {
        int k = tcmp(min, minlen, c->hi, c->hi_len);
        if (k > 0 || (k == 0 && !c->hi_incl))
            return 0;
    }
    return 1;
}

/* Reads the next range of the open file into c->in (c->in_len, 0 at its
 * end). */
static int read_range(cold_cursor *c, size_t *got)
{
    cold_vtab *vt = (cold_vtab *)c->base.pVtab;
    ss_cold *cold = &vt->src->cold;
    *got = 0;
    if (c->foff >= c->fsize)
        return SQLITE_OK;
    int64_t left = c->fsize - c->foff;
    size_t want = left < RANGE_CHUNK ? (size_t)left : RANGE_CHUNK;
    if (cold->ops->get_range(c->h, c->foff, c->in, want, got) != SS_OK)
        return vt_error(vt, "cannot read cold file '%s' in %s (see the log)", c->cur->path,
                        src_name(vt));
    if (*got == 0)
        return file_damaged(c, "it ends after %lld bytes, its size is %lld", (long long)c->foff,
                            (long long)c->fsize);
    c->foff += (int64_t)*got;
    return SQLITE_OK;
}

static int open_file(cold_cursor *c, const cold_file *f)
{
    cold_vtab *vt = (cold_vtab *)c->base.pVtab;
    int rc = src_open(vt);
    if (rc)
        return rc;
    ss_cold *cold = &vt->src->cold;

    c->cur = f;
    c->line_no = c->records = 0;
    c->rpos = c->rlen = 0;
    c->foff = 0;
    if (c->ahead && c->ahead_f == f) {
        c->h = c->ahead, c->fsize = c->ahead_size;
        c->ahead = NULL, c->ahead_f = NULL;
    } else {
        close_ahead(c);
        rc = cold->ops->get_open(cold->st, f->path, &c->h, &c->fsize);
    }
    if (rc == SS_EOF)
        return vt_error(vt, "cold file '%s' is missing (in %s); " VERIFY_HINT, f->path,
                        src_name(vt));
    if (rc)
        return vt_error(vt, "cannot read cold file '%s' (in %s; see the log)", f->path,
                        src_name(vt));
    if (f->bytes >= 0 && c->fsize != f->bytes)
        return file_damaged(c, "it has %lld bytes, its manifest says %lld", (long long)c->fsize,
                            (long long)f->bytes);
    c->opened++;
    size_t got;
    if ((rc = read_range(c, &got)) != SQLITE_OK)
        return rc;
    /* A .gz file must be gzip data, and a .jsonl file must not be. */
    size_t n = strlen(f->path);
    int want_gz = n > 3 && !strcmp(f->path + n - 3, ".gz");
    c->is_gz = got >= 2 && (unsigned char)c->in[0] == 0x1f && (unsigned char)c->in[1] == 0x8b;
    if (c->is_gz != want_gz)
        return file_damaged(c, "%s", want_gz ? "it is not gzip data" : "it is gzip data");
    if (c->is_gz) {
        memset(&c->z, 0, sizeof c->z);
        if (inflateInit2(&c->z, 15 + 16) != Z_OK)
            return vt_error(vt, "cannot start zlib for cold file '%s'", f->path);
        c->zinit = 1;
        c->z.next_in = (Bytef *)c->in;
        c->z.avail_in = (uInt)got;
    } else {
        c->rdata = c->in;
        c->rlen = got;
    }
    return SQLITE_OK;
}

/* The next bytes of the open file's content into c->rdata (c->rlen, 0 at
 * its end): a plain file's next range, or what the gzip data inflates to
 * (one member after another, as gzip writes them). */
static int fill(cold_cursor *c)
{
    int rc;
    size_t got;
    c->rpos = c->rlen = 0;
    if (!c->is_gz) {
        rc = read_range(c, &got);
        c->rdata = c->in;
        c->rlen = got;
        return rc;
    }
    for (;;) {
        if (c->z.avail_in == 0) {
            if ((rc = read_range(c, &got)) != SQLITE_OK)
                return rc;
            c->z.next_in = (Bytef *)c->in;
            c->z.avail_in = (uInt)got;
            if (got == 0) {
                if (c->zdone)
                    return SQLITE_OK;
                return file_damaged(c, "its gzip data ends early after line %lld",
                                    (long long)c->line_no);
            }
        }
        if (c->zdone) {
            inflateReset(&c->z);
            c->zdone = 0;
        }
        c->z.next_out = (Bytef *)c->rbuf;
        c->z.avail_out = READ_CHUNK;
        int zr = inflate(&c->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END)
            c->zdone = 1;
        else if (zr != Z_OK)
            return file_damaged(c, "%s after line %lld", c->z.msg ? c->z.msg : "invalid gzip data",
                                (long long)c->line_no);
        c->rdata = c->rbuf;
        c->rlen = READ_CHUNK - c->z.avail_out;
        if (c->rlen > 0)
            return SQLITE_OK;
    }
}

/* Reads the next line of the open file, without its newline, into c->lp
 * and c->llen: in place when it lies whole in the data at hand (valid until
 * the next read), else gathered in c->line. *got = 0 at the end of the
 * file. */
static int read_line(cold_cursor *c, int *got)
{
    c->line.len = 0;
    *got = 0;
    if (c->rpos < c->rlen) {
        const char *p = c->rdata + c->rpos;
        const char *nl = memchr(p, '\n', c->rlen - c->rpos);
        if (nl && (size_t)(nl - p) <= MAX_LINE) {
            c->lp = p;
            c->llen = (size_t)(nl - p);
            c->rpos += c->llen + 1;
            c->line_no++;
            *got = 1;
            return SQLITE_OK;
        }
    }
    for (;;) {
        if (c->rpos == c->rlen) {
            int rc = fill(c);
            if (rc)
                return rc;
            if (c->rlen == 0) {
                *got = c->line.len > 0;
                if (*got)
                    c->line_no++;
                c->lp = c->line.data;
                c->llen = c->line.len;
                return SQLITE_OK;
            }
        }
        const char *p = c->rdata + c->rpos;
        size_t avail = c->rlen - c->rpos;
        const char *nl = memchr(p, '\n', avail);
        size_t take = nl ? (size_t)(nl - p) : avail;
        if (c->line.len + take > MAX_LINE)
            return file_damaged(c, "line %lld is longer than %d bytes", (long long)c->line_no + 1,
                                MAX_LINE);
        ss_buf_put(&c->line, p, take);
        c->rpos += take + (nl != NULL);
        if (nl) {
            c->line_no++;
            *got = 1;
            c->lp = c->line.data;
            c->llen = c->line.len;
            return SQLITE_OK;
        }
    }
}

/* Converts a JSON integer; 0 when it does not fit in 64 bits. */
static int int_value(ss_str s, int64_t *out)
{
    const char *p = s.p, *end = s.p + s.n;
    int neg = *p == '-';
    p += neg;
    uint64_t v = 0;
    for (; p < end; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg)
        return 0;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

/* Converts a JSON number in currency units to the double the hot views
 * compute (cents / 100.0), so that a value reads the same on both sides. A
 * plain decimal with at most two decimals, as the archiver writes money, is
 * read exactly as cents; anything else goes through strtod and rounds to
 * the cent. 0 when it is not finite or too large for cents in 64 bits. */
static int money_value(ss_str s, double *out)
{
    const char *p = s.p, *end = s.p + s.n;
    int neg = *p == '-';
    p += neg;
    int64_t cents = 0;
    int digits = 0, dec = -1;
    for (; p < end && digits <= 15; p++) {
        if (*p == '.' && dec < 0) {
            dec = 0;
            continue;
        }
        if (*p < '0' || *p > '9' || dec >= 2)
            break;
        cents = cents * 10 + (*p - '0');
        digits++;
        if (dec >= 0)
            dec++;
    }
    if (p == end && digits <= 15) {
        for (int k = dec < 0 ? 0 : dec; k < 2; k++)
            cents *= 10;
        *out = (double)(neg && cents ? -cents : cents) / 100.0;
        return 1;
    }
    char tmp[400];
    if (s.n >= sizeof tmp)
        return 0;
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\0';
    double x = strtod(tmp, NULL);
    if (!isfinite(x) || fabs(x) >= 9e16)
        return 0;
    *out = (double)llround(x * 100.0) / 100.0;
    return 1;
}

/* Parses the line into c->vals, checking each column's type. */
static int parse_row(cold_cursor *c)
{
    cold_vtab *vt = (cold_vtab *)c->base.pVtab;
    char why[200];

    int r = ss_coldrow_parse(c->lp, c->llen, c->names, vt->t->ncols, c->vals, &c->scratch, why,
                             sizeof why);
    if (r == SS_COLDROW_BAD_JSON)
        return file_damaged(c, "line %lld is not valid JSON (%s)", (long long)c->line_no, why);
    if (r == SS_COLDROW_NOT_OBJECT)
        return file_damaged(c, "line %lld is not a JSON object", (long long)c->line_no);
    for (int i = 0; i < vt->t->ncols; i++) {
        const col_spec *col = &vt->t->cols[i];
        ss_coldval_type ty = c->vals[i].type;
        int ok;
        switch (col->kind) {
        case COL_TEXT:
            ok = ty == SS_CV_STRING;
            break;
        case COL_TEXT_OPT:
            ok = ty == SS_CV_ABSENT || ty == SS_CV_NULL || ty == SS_CV_STRING;
            break;
        case COL_INT:
            ok = ty == SS_CV_INT && int_value(c->vals[i].s, &c->ints[i]);
            break;
        default:
            ok = (ty == SS_CV_INT || ty == SS_CV_NUMBER) && money_value(c->vals[i].s, &c->money[i]);
        }
        if (!ok)
            return file_damaged(c, "line %lld: \"%s\" is %s", (long long)c->line_no, col->name,
                                ty == SS_CV_ABSENT       ? "missing"
                                : col->kind == COL_INT   ? "not an integer"
                                : col->kind >= COL_MONEY ? "not a number"
                                                         : "not a string");
    }
    /* Pruning trusts the manifest's range; a row outside it would be
     * missed by some queries and not others. */
    if (vt->t->ts_col < 0)
        return SQLITE_OK;
    ss_str ts = c->vals[vt->t->ts_col].s;
    const cold_file *f = c->cur;
    if (tcmp(ts.p, ts.n, f->min_ts, strlen(f->min_ts)) < 0 ||
        tcmp(ts.p, ts.n, f->max_ts, strlen(f->max_ts)) > 0)
        return file_damaged(c, "line %lld: ts %.*s is outside the manifest's range %s to %s",
                            (long long)c->line_no, (int)ts.n, ts.p, f->min_ts, f->max_ts);
    return SQLITE_OK;
}

/* Ends the open file, checking that it held the records its manifest lists. */
static int finish_file(cold_cursor *c)
{
    int rc = SQLITE_OK;
    if (c->cur->records >= 0 && c->records != c->cur->records)
        rc = file_damaged(c, "it holds %lld records, its manifest says %lld", (long long)c->records,
                          (long long)c->cur->records);
    cursor_close_file(c);
    return rc;
}

/* The next file whose ts range the scan's overlaps (next_file moves to
 * it), or NULL. */
static const cold_file *next_wanted(cold_cursor *c)
{
    cold_vtab *vt = (cold_vtab *)c->base.pVtab;
    for (; c->next_file < vt->files.n; c->next_file++) {
        const cold_file *f = &vt->files.v[c->next_file];
        if (range_overlaps(c, f->min_ts, strlen(f->min_ts), f->max_ts, strlen(f->max_ts)))
            return f;
    }
    return NULL;
}

/* Opens the file after the current one ahead of time. A failure is left for
 * the scan to meet, and report, when it gets there. */
static void open_ahead(cold_cursor *c)
{
    const cold_file *f = next_wanted(c);
    if (!f)
        return;
    ss_cold *cold = &((cold_vtab *)c->base.pVtab)->src->cold;
    if (cold->ops->get_open(cold->st, f->path, &c->ahead, &c->ahead_size) == SS_OK)
        c->ahead_f = f;
    else
        c->ahead = NULL;
}

/* Moves to the next row in the scan's range, opening files as needed. */
static int advance(cold_cursor *c)
{
    int rc, got;
    for (;;) {
        if (!c->cur) {
            const cold_file *f = next_wanted(c);
            if (!f) {
                c->eof = 1;
                return SQLITE_OK;
            }
            c->next_file++;
            rc = open_file(c, f);
            if (rc)
                return rc;
            open_ahead(c);
        }
        rc = read_line(c, &got);
        if (rc)
            return rc;
        if (!got) {
            rc = finish_file(c);
            if (rc)
                return rc;
            continue;
        }
        if (c->llen == 0)
            continue;
        c->records++;
        rc = parse_row(c);
        if (rc)
            return rc;
        int tc = ((cold_vtab *)c->base.pVtab)->t->ts_col;
        ss_str ts = tc >= 0 ? c->vals[tc].s : (ss_str){"", 0};
        if (tc >= 0 && !range_overlaps(c, ts.p, ts.n, ts.p, ts.n))
            continue;
        c->rowid++;
        return SQLITE_OK;
    }
}

static int cold_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
                       sqlite3_value **argv)
{
    cold_cursor *c = (cold_cursor *)cur;
    cold_vtab *vt = (cold_vtab *)cur->pVtab;
    int rc;

    cursor_reset(c);
    c->scans++;
    for (int i = 0; i < argc && i < idx_num && idx_str && idx_str[i]; i++)
        add_bound(c, idx_str[i], argv[i]);
    if (c->lo && c->hi) {
        int k = tcmp(c->lo, c->lo_len, c->hi, c->hi_len);
        c->empty = k > 0 || (k == 0 && !(c->lo_incl && c->hi_incl));
    }
    rc = load_files(vt);
    if (rc)
        return rc;
    c->eof = 0;
    if (c->empty) {
        c->eof = 1;
        return SQLITE_OK;
    }
    return advance(c);
}

static int cold_next(sqlite3_vtab_cursor *cur)
{
    return advance((cold_cursor *)cur);
}

static int cold_eof(sqlite3_vtab_cursor *cur)
{
    return ((cold_cursor *)cur)->eof;
}

static int cold_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i)
{
    cold_cursor *c = (cold_cursor *)cur;
    cold_vtab *vt = (cold_vtab *)cur->pVtab;
    if (i == vt->t->ncols) { /* archive_id: the archive of the row's file */
        sqlite3_result_text(ctx, c->cur->id, -1, SQLITE_TRANSIENT);
        return SQLITE_OK;
    }
    const ss_coldval *v = &c->vals[i];
    switch (vt->t->cols[i].kind) {
    case COL_INT:
        sqlite3_result_int64(ctx, (sqlite3_int64)c->ints[i]);
        break;
    case COL_MONEY:
        sqlite3_result_double(ctx, c->money[i]);
        break;
    case COL_CENTS:
        sqlite3_result_int64(ctx, (sqlite3_int64)llround(c->money[i] * 100.0));
        break;
    default:
        if (v->type != SS_CV_STRING)
            sqlite3_result_null(ctx);
        else
            sqlite3_result_text(ctx, v->s.p, (int)v->s.n, SQLITE_TRANSIENT);
    }
    return SQLITE_OK;
}

static int cold_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = ((cold_cursor *)cur)->rowid;
    return SQLITE_OK;
}

/* Read-only: no xUpdate, so SQLite refuses writes whatever the guard says. */
static const sqlite3_module cold_module = {
    .iVersion = 0,
    .xCreate = cold_connect,
    .xConnect = cold_connect,
    .xBestIndex = cold_best_index,
    .xDisconnect = cold_disconnect,
    .xDestroy = cold_disconnect,
    .xOpen = cold_open,
    .xClose = cold_close,
    .xFilter = cold_filter,
    .xNext = cold_next,
    .xEof = cold_eof,
    .xColumn = cold_column,
    .xRowid = cold_rowid,
};

int ss_query_coldtab_register(sqlite3 *db, const char *cold_uri, char *err, size_t errlen)
{
    cold_src *src = ss_calloc(1, sizeof *src);
    src->uri = ss_strdup(cold_uri);
    /* SQLite frees src with the module, also when registering fails. */
    int rc = sqlite3_create_module_v2(db, "ss_cold", &cold_module, src, cold_src_free);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot register the cold-storage tables: %s", sqlite3_errmsg(db));
        return SS_ERR;
    }
    return SS_OK;
}

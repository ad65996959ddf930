/* The SQLite hot store's side of the lifecycle: its size, the ranges the
 * archiver reads and deletes, the keys and dimensions of an archive, the
 * archive records, the reclaiming of freed pages and the lifecycle notes. */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "hot/block_store.h"
#include "hot/facts_vtab.h"
#include "hot/sqlite_int.h"

int sqlite_data_size(void *vst, int64_t *bytes)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q;
    /* Pages in use: the file size less the free list, which SQLite reuses
     * before it grows the file. */
    if (sqlite3_prepare_v2(h->db,
                           "SELECT (SELECT page_count FROM pragma_page_count) - (SELECT "
                           "freelist_count FROM pragma_freelist_count), (SELECT page_size FROM "
                           "pragma_page_size)",
                           -1, &q, NULL) != SQLITE_OK)
        return sq_db_error(h, "measuring the store");
    int rc = sqlite3_step(q);
    *bytes = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) * sqlite3_column_int64(q, 1) : 0;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? SS_OK : sq_db_error(h, "measuring the store");
}

/* The tables the archiver moves: the name it uses, the table that holds the
 * rows and the column of their time. */
static const struct {
    const char *name, *data, *time;
} moved[] = {
    {"orders", "orders_data", "ts"},
    {"payments", "payments_data", "ts"},
    {"cancellations", "cancellations_data", "ts"},
    {"kpi_minute", "kpi_minute_data", "minute_start"},
};

/* Prepares "<head> FROM <table> WHERE <time> in [from, to)[ ORDER BY <time>]"
 * over a table the archiver moves; a and b hold the bound times. */
static int prepare_range(hot_sqlite *h, const char *head, int ordered, const char *table,
                         int64_t from, int64_t to, char *a, char *b, sqlite3_stmt **st)
{
    size_t i = 0;
    while (i < sizeof moved / sizeof moved[0] && strcmp(moved[i].name, table) != 0)
        i++;
    if (i == sizeof moved / sizeof moved[0])
        return SS_EINVAL;
    const char *tc = moved[i].time;
    char q[200];
    snprintf(q, sizeof q, "%s FROM %s WHERE %s >= ?1 AND %s < ?2%s%s", head, moved[i].data, tc, tc,
             ordered ? " ORDER BY " : "", ordered ? tc : "");
    if (sqlite3_prepare_v2(h->db, q, -1, st, NULL) != SQLITE_OK)
        return sq_db_error(h, "preparing a range statement");
    bind_time(*st, 1, from, a);
    bind_time(*st, 2, to, b);
    return SS_OK;
}

/* Streams a statement's rows as JSON lines in the cold layout: its columns,
 * money formatted from integer cents with exactly two decimals, NULLs left
 * out; ts from column ts_col (-1: none, 0); with keep, only the rows whose
 * first column it holds. */
static int emit_rows(hot_sqlite *h, sqlite3_stmt *st, const char *table, int ts_col,
                     const ss_strset *keep, ss_scan_cb cb, void *ctx)
{
    int ncol = sqlite3_column_count(st), rc, out = SS_OK;
    ss_buf line;
    ss_buf_init(&line, 1024);
    while (out == SS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (keep && !ss_strset_has(keep, (const char *)sqlite3_column_text(st, 0),
                                   (size_t)sqlite3_column_bytes(st, 0)))
            continue;
        ss_hot_line_begin(&line);
        for (int i = 0; i < ncol; i++) {
            int type = sqlite3_column_type(st, i);
            const char *name = sqlite3_column_name(st, i);
            if (type == SQLITE_INTEGER)
                ss_hot_line_int(&line, name, sqlite3_column_int64(st, i));
            else if (type == SQLITE_FLOAT)
                ss_hot_line_real(&line, name, sqlite3_column_double(st, i));
            else if (type != SQLITE_NULL)
                ss_hot_line_text(&line, name, (const char *)sqlite3_column_text(st, i),
                                 (size_t)sqlite3_column_bytes(st, i));
        }
        ss_hot_line_end(&line);
        int64_t ts = 0;
        if (ts_col >= 0)
            ss_time_parse_iso((const char *)sqlite3_column_text(st, ts_col),
                              (size_t)sqlite3_column_bytes(st, ts_col), &ts);
        out = cb(ctx, table, ts, line.data, line.len);
    }
    if (out == SS_OK && rc != SQLITE_DONE)
        out = sq_db_error(h, "scanning rows for the cold store");
    ss_buf_free(&line);
    return out;
}

/* A fact table's rows as JSON lines, straight from its blocks: each line as
 * emit_rows writes it from SELECT *, with the columns' keys written once. */
typedef struct fact_scan {
    const ss_block_table *bt;
    ss_scan_cb cb;
    void *ctx;
    ss_buf line;
    char keys[SS_BLOCK_MAXCOL][40];
    uint8_t key_len[SS_BLOCK_MAXCOL], money[SS_BLOCK_MAXCOL];
    int rc;
} fact_scan;

static int fact_row(void *arg, ss_block_dec *d, uint32_t r)
{
    fact_scan *f = arg;
    const ss_block_table *bt = f->bt;
    ss_buf *line = &f->line;
    line->len = 0;
    ss_buf_putc(line, '{');
    for (int c = 0; c < bt->ncol; c++) {
        if (ss_block_dec_col(d, c))
            return SQLITE_CORRUPT;
        int kind = bt->cols[c].kind;
        const ss_str *v = kind == SS_BK_TS || kind == SS_BK_INT ? NULL : &d->strs[c][r];
        if (v && !v->p)
            continue; /* NULL: left out */
        ss_buf_put(line, f->keys[c] + (line->len == 1), f->key_len[c] - (line->len == 1));
        if (v)
            ss_buf_put_jstr(line, v->p, v->n);
        else if (kind == SS_BK_TS) {
            ss_buf_putc(line, '"');
            ss_buf_put_time(line, d->ints[c][r]);
            ss_buf_putc(line, '"');
        } else if (f->money[c])
            ss_buf_put_cents(line, d->ints[c][r]);
        else
            ss_buf_put_i64(line, d->ints[c][r]);
    }
    ss_buf_putc(line, '}');
    f->rc = f->cb(f->ctx, bt->name, d->ints[SS_BCOL_TS][r], line->data, line->len);
    return f->rc ? SQLITE_ABORT : SQLITE_OK;
}

static int scan_facts(hot_sqlite *h, const ss_block_table *bt, int64_t from, int64_t to,
                      ss_scan_cb cb, void *ctx)
{
    fact_scan f = {.bt = bt, .cb = cb, .ctx = ctx};
    for (int c = 0; c < bt->ncol; c++) {
        const char *name = bt->cols[c].name;
        size_t n = strlen(name);
        f.money[c] = n > 6 && !strcmp(name + n - 6, "_cents");
        f.key_len[c] = (uint8_t)snprintf(f.keys[c], sizeof f.keys[c],
                                         ",\"%.*s\":", (int)(f.money[c] ? n - 6 : n), name);
    }
    ss_buf_init(&f.line, 1024);
    char *err = NULL;
    int rc = ss_facts_scan(h->db, bt, from, to, fact_row, &f, &err);
    ss_buf_free(&f.line);
    if (rc == SQLITE_ABORT && f.rc) {
        rc = f.rc;
    } else if (rc != SQLITE_OK) {
        SS_ERROR("hot:sqlite", "scanning %s of '%s' for the cold store: %s", bt->data, h->path,
                 err ? err : sqlite3_errstr(rc));
        rc = SS_EIO;
    }
    sqlite3_free(err);
    return rc;
}

int sqlite_scan_range(void *vst, const char *table, int64_t from, int64_t to, ss_scan_cb cb,
                      void *ctx)
{
    hot_sqlite *h = vst;
    const ss_block_table *bt = ss_block_table_named(table);
    if (bt)
        return scan_facts(h, bt, from, to, cb, ctx);
    char a[SS_ISO_LEN], b[SS_ISO_LEN];
    sqlite3_stmt *st;
    int rc = prepare_range(h, "SELECT *", 1, table, from, to, a, b, &st);
    if (rc)
        return rc;
    int ts_col = -1;
    for (int i = 0; i < sqlite3_column_count(st); i++)
        if (!strcmp(sqlite3_column_name(st, i), "ts") ||
            !strcmp(sqlite3_column_name(st, i), "minute_start"))
            ts_col = i;
    rc = emit_rows(h, st, table, ts_col, NULL, cb, ctx);
    sqlite3_finalize(st);
    return rc;
}

/* Each dimension table's rows in key order (the key first), in the order of
 * ss_hot_dim_tables; sqlite_refs.c tells which of them the archived facts
 * reference. */
static const char *const dim_queries[SS_HOT_NDIM_TABLES] = {
    "SELECT * FROM customers ORDER BY customer_id",
    "SELECT product_id, product_name, category, "
    "CAST(round(unit_price * 100) AS INTEGER) AS unit_price_cents FROM products "
    "ORDER BY product_id",
    "SELECT * FROM categories ORDER BY category",
    "SELECT * FROM countries ORDER BY country",
    "SELECT * FROM cities ORDER BY city",
    "SELECT * FROM payment_methods ORDER BY payment_method",
    "SELECT * FROM time_minutes ORDER BY minute_start",
};

int sqlite_scan_dims(void *vst, const char *table, int64_t cutoff, ss_scan_cb cb, void *ctx)
{
    hot_sqlite *h = vst;
    for (int t = 0; t < SS_HOT_NDIM_TABLES; t++) {
        if (strcmp(table, ss_hot_dim_tables[t]) != 0)
            continue;
        const ss_strset *keep = sq_refs_before(h, cutoff, t);
        if (!keep)
            return SS_EIO;
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h->db, dim_queries[t], -1, &st, NULL) != SQLITE_OK)
            return sq_db_error(h, "preparing a dimension snapshot");
        int rc = emit_rows(h, st, table, -1, keep, cb, ctx);
        sqlite3_finalize(st);
        return rc;
    }
    return SS_EINVAL;
}

int sqlite_delete_range(void *vst, const char *table, int64_t from, int64_t to, int64_t *deleted)
{
    hot_sqlite *h = vst;
    const ss_block_table *bt = ss_block_table_named(table);
    if (bt)
        return sq_blocks_delete(h, bt, from, to, deleted);
    char a[SS_ISO_LEN], b[SS_ISO_LEN];
    sqlite3_stmt *st;
    int rc = prepare_range(h, "DELETE", 0, table, from, to, a, b, &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    *deleted = sqlite3_changes64(h->db);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SS_OK : sq_db_error(h, "deleting a range");
}

/* Runs a one-off statement with text parameters; NULL ends the list. */
static int exec_args(hot_sqlite *h, const char *text, const char *const *args, int64_t *changes)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, text, -1, &st, NULL) != SQLITE_OK)
        return sq_db_error(h, text);
    for (int i = 0; args && args[i]; i++)
        sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (changes)
        *changes = sqlite3_changes64(h->db);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SS_OK : sq_db_error(h, text);
}

int sqlite_nth_oldest(void *vst, int64_t n, int64_t *ts, int64_t *total)
{
    hot_sqlite *h = vst;
    *ts = INT64_MIN;
    *total = 0;
    sqlite3_stmt *st;
    /* Each table is scanned in its clustered ts order and SQLite merges them. */
    const char *text = "SELECT ts FROM (SELECT ts FROM orders_data UNION ALL SELECT ts FROM "
                       "payments_data UNION ALL SELECT ts FROM cancellations_data) ORDER BY ts "
                       "LIMIT 1 OFFSET ?1";
    if (sqlite3_prepare_v2(h->db, text, -1, &st, NULL) != SQLITE_OK)
        return sq_db_error(h, "finding the oldest events");
    sqlite3_bind_int64(st, 1, n);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ss_time_parse_iso((const char *)sqlite3_column_text(st, 0),
                          (size_t)sqlite3_column_bytes(st, 0), ts);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_db_error(h, "finding the oldest events");
    if (sqlite3_prepare_v2(h->db,
                           "SELECT (SELECT coalesce(sum(n), 0) FROM orders_blocks) + (SELECT "
                           "coalesce(sum(n), 0) FROM payments_blocks) + (SELECT "
                           "coalesce(sum(n), 0) FROM cancellations_blocks)",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_db_error(h, "counting events");
    rc = sqlite3_step(st);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SS_OK : sq_db_error(h, "counting events");
}

typedef struct keys_walk {
    int (*ev)(void *ctx, ss_str event_id);
    int (*order)(void *ctx, ss_str order_id, const ss_attrib *at);
    void *ctx;
    int dims[4]; /* orders: city, country, category, payment_method */
    int rc;
} keys_walk;

static int key_row(void *arg, ss_block_dec *d, uint32_t r)
{
    keys_walk *k = arg;
    k->rc = k->ev(k->ctx, d->strs[SS_BCOL_EVENT_ID][r]);
    if (!k->rc && k->dims[0] >= 0) {
        ss_attrib at = {d->strs[k->dims[0]][r], d->strs[k->dims[1]][r], d->strs[k->dims[2]][r],
                        d->strs[k->dims[3]][r]};
        k->rc = k->order(k->ctx, d->strs[SS_BCOL_ORDER_ID][r], &at);
    }
    return k->rc ? SQLITE_ABORT : SQLITE_OK;
}

int sqlite_archive_keys(void *vst, int64_t cutoff, int (*ev)(void *ctx, ss_str event_id),
                        int (*order)(void *ctx, ss_str order_id, const ss_attrib *at), void *ctx)
{
    hot_sqlite *h = vst;
    static const char *const dims[4] = {"city", "country", "category", "payment_method"};
    for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
        const ss_block_table *bt = &ss_block_tables[t];
        keys_walk k = {.ev = ev, .order = order, .ctx = ctx};
        uint32_t mask = 1u << SS_BCOL_EVENT_ID;
        for (int i = 0; i < 4; i++) {
            k.dims[i] = t == SS_EV_ORDER - 1 ? ss_block_col_index(bt, dims[i]) : -1;
            if (k.dims[i] >= 0)
                mask |= 1u << k.dims[i] | 1u << SS_BCOL_ORDER_ID;
        }
        char *err = NULL;
        int rc = ss_blocks_each(h->db, bt, INT64_MIN, cutoff, mask, key_row, &k, &err);
        if (rc == SQLITE_ABORT && k.rc) {
            rc = k.rc;
        } else if (rc != SQLITE_OK) {
            SS_ERROR("hot:sqlite", "'%s': listing archived keys of %s: %s", h->path, bt->data,
                     err ? err : sqlite3_errstr(rc));
            rc = SS_EIO;
        }
        sqlite3_free(err);
        if (rc)
            return rc;
    }
    return SS_OK;
}

int sqlite_archive_begin(void *vst, const char *id, int64_t cutoff, const char *created_at)
{
    char c[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(cutoff, c);
    const char *args[] = {id, c, created_at, NULL};
    return exec_args(vst,
                     "INSERT INTO archives (archive_id, state, cutoff, created_at) VALUES "
                     "(?1, 'writing', ?2, ?3)",
                     args, NULL);
}

int sqlite_archive_commit(void *vst, const char *id, int64_t cutoff, const char *manifest)
{
    hot_sqlite *h = vst;
    char c[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(cutoff, c);
    const char *del[] = {c, NULL};
    const char *upd[] = {manifest, id, NULL};
    int rc = exec_args(h, "BEGIN IMMEDIATE", NULL, NULL);
    if (rc)
        return rc;
    /* Customers and products that only archived orders reference, and the
     * minutes before the cutoff, leave with them: the archive's dimension
     * snapshot holds their rows (docs/lifecycle.md, "Dimensions"). */
    rc = sq_refs_delete_left(h, cutoff, 0, "DELETE FROM customers WHERE customer_id = ?1");
    rc = rc ? rc : sq_refs_delete_left(h, cutoff, 1, "DELETE FROM products WHERE product_id = ?1");
    rc = rc ? rc : exec_args(h, "DELETE FROM time_minutes WHERE minute_start < ?1", del, NULL);
    for (int t = 0; t < SS_BLOCK_NTABLES && rc == SS_OK; t++) {
        int64_t n;
        rc = sq_blocks_delete(h, &ss_block_tables[t], INT64_MIN, cutoff, &n);
    }
    rc = rc ? rc : exec_args(h, "DELETE FROM kpi_minute_data WHERE minute_start < ?1", del, NULL);
    rc = rc ? rc
            : exec_args(h,
                        "UPDATE archives SET state = 'committed', manifest = ?1 WHERE "
                        "archive_id = ?2",
                        upd, NULL);
    rc = rc ? rc : exec_args(h, "COMMIT", NULL, NULL);
    if (rc)
        sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    sq_refs_free(h);
    return rc;
}

int sqlite_archive_forget(void *vst, const char *id)
{
    const char *args[] = {id, NULL};
    return exec_args(vst, "DELETE FROM archives WHERE archive_id = ?1 AND state <> 'committed'",
                     args, NULL);
}

int sqlite_archive_list(void *vst,
                        int (*cb)(void *ctx, const char *id, const char *state, int64_t cutoff,
                                  const char *created_at, const char *manifest),
                        void *ctx)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT archive_id, state, cutoff, created_at, manifest FROM archives "
                           "ORDER BY archive_id",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_db_error(h, "listing archives");
    int rc, out = SS_OK;
    while (out == SS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cutoff = 0;
        ss_time_parse_iso((const char *)sqlite3_column_text(st, 2),
                          (size_t)sqlite3_column_bytes(st, 2), &cutoff);
        out =
            cb(ctx, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), cutoff,
               (const char *)sqlite3_column_text(st, 3), (const char *)sqlite3_column_text(st, 4));
    }
    if (out == SS_OK && rc != SQLITE_DONE)
        out = sq_db_error(h, "listing archives");
    sqlite3_finalize(st);
    return out;
}

int sqlite_reclaim(void *vst)
{
    hot_sqlite *h = vst;
    /* Stores created with auto_vacuum = INCREMENTAL hand free pages back to
     * the file system; in others the free pages are reused by new data. */
    return sqlite3_exec(h->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL) == SQLITE_OK
               ? SS_OK
               : sq_db_error(h, "giving space back");
}

int sqlite_version(void *vst, uint64_t *v)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return sq_db_error(h, "reading the data version");
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SS_OK : sq_db_error(h, "reading the data version");
}

int sqlite_note_set(void *vst, const char *key, const char *value)
{
    const char *args[] = {key, value, NULL};
    return exec_args(vst, "INSERT OR REPLACE INTO lifecycle_notes VALUES (?1, ?2)", args, NULL);
}

int sqlite_note_list(void *vst, int (*cb)(void *ctx, const char *key, const char *value), void *ctx)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, "SELECT key, value FROM lifecycle_notes ORDER BY key", -1, &st,
                           NULL) != SQLITE_OK)
        return sq_db_error(h, "reading lifecycle notes");
    int rc, out = SS_OK;
    while (out == SS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        out = cb(ctx, (const char *)sqlite3_column_text(st, 0),
                 (const char *)sqlite3_column_text(st, 1));
    if (out == SS_OK && rc != SQLITE_DONE)
        out = sq_db_error(h, "reading lifecycle notes");
    sqlite3_finalize(st);
    return out;
}

/* The MongoDB hot store: reads (KPIs, order lookups, ranges, size), the
 * archive lifecycle and the dimension snapshots of archives. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "hot/hot.h"
#include "hot/mongo_int.h"

/* ---- reads ---- */

typedef struct kpi_read {
    ss_kpi_cb cb;
    void *ctx;
} kpi_read;

static int on_kpi(void *vctx, const bson_t *d)
{
    kpi_read *k = vctx;
    ss_kpi_row r = {0};
    ss_str dim = mg_get_str(d, "dimension");
    r.dim = ss_dim_parse(dim.p, dim.n);
    if (r.dim < 0)
        return SS_OK;
    r.minute = mg_get_int(d, "minute_start", 0);
    r.value = mg_get_str(d, "dimension_value");
    r.shard = (int)mg_get_int(d, "shard", 0);
    r.final = (int)mg_get_int(d, "final", 0);
    r.k.orders = mg_get_int(d, "orders", 0);
    r.k.units = mg_get_int(d, "units", 0);
    r.k.gross_cents = mg_get_int(d, "gross_revenue_cents", 0);
    r.k.paid_cents = mg_get_int(d, "paid_revenue_cents", 0);
    r.k.attempts = mg_get_int(d, "payment_attempts", 0);
    r.k.failed = mg_get_int(d, "failed_payments", 0);
    r.k.cancellations = mg_get_int(d, "cancellations", 0);
    r.k.cancelled_cents = mg_get_int(d, "cancelled_revenue_cents", 0);
    return k->cb(k->ctx, &r);
}

static void append_range(bson_t *f, const char *key, int64_t from, int64_t to)
{
    bson_t cond;
    bson_append_document_begin(f, key, -1, &cond);
    mg_append_ms(&cond, "$gte", from);
    mg_append_ms(&cond, "$lt", to);
    bson_append_document_end(f, &cond);
}

int mongo_read_kpis(void *vst, int64_t from, int64_t to, int dim, int open_only, ss_kpi_cb cb,
                    void *ctx)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    if (dim >= 0)
        BSON_APPEND_UTF8(&f, "dimension", ss_dim_name(dim));
    /* Dates past year 9999 are outside what every server accepts. */
    append_range(&f, "minute_start", from, to < 253402300800000LL ? to : 253402300800000LL);
    if (open_only)
        BSON_APPEND_INT32(&f, "final", 0);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "minute_start", 1);
    bson_append_document_end(&opts, &sort);
    kpi_read k = {cb, ctx};
    /* A retry from the start would call cb twice for the rows before the
     * failure: reads of KPIs fail instead (the engine's claim then stops). */
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h->c[C_KPI], &f, &opts, NULL);
    const bson_t *doc;
    int rc = SS_OK;
    while (rc == SS_OK && mongoc_cursor_next(cur, &doc))
        rc = on_kpi(&k, doc);
    bson_error_t e;
    if (rc == SS_OK && mongoc_cursor_error(cur, &e)) {
        SS_ERROR("hot:mongo", "reading KPIs on %s: %s", h->where, e.message);
        rc = mg_transient(&e) ? SS_AGAIN : SS_EIO;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}

int mongo_lookup_order(void *vst, ss_str order_id, ss_attrib *out, char *buf, size_t cap,
                       int *found)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, doc;
    mg_append_str(&f, "order_id", order_id);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "ts", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", 1);
    int rc = mg_find_one(h, C_ORDERS, &f, &opts, &doc, "looking up an order");
    bson_destroy(&f);
    bson_destroy(&opts);
    *found = 0;
    if (rc == SS_OK && !bson_empty(&doc)) {
        static const char *const keys[4] = {"city", "country", "category", "payment_method"};
        ss_str *fld[4] = {&out->city, &out->country, &out->category, &out->payment_method};
        size_t used = 0;
        *found = 1;
        for (int i = 0; i < 4; i++) {
            ss_str v = mg_get_str(&doc, keys[i]);
            if (used + v.n > cap) {
                *found = 0;
                break;
            }
            memcpy(buf + used, v.p, v.n);
            *fld[i] = (ss_str){buf + used, v.n};
            used += v.n;
        }
    }
    bson_destroy(&doc);
    return rc;
}

int mongo_data_size(void *vst, int64_t *bytes)
{
    hot_mongo *h = vst;
    *bytes = 0;
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t e;
    BSON_APPEND_INT32(&cmd, "dbStats", 1);
    int ok = mg_command(h, &cmd, &reply, &e);
    bson_destroy(&cmd);
    if (ok)
        *bytes = mg_get_int(&reply, "dataSize", 0);
    else
        SS_ERROR("hot:mongo", "dbStats on %s: %s", h->where, e.message);
    bson_destroy(&reply);
    return ok ? SS_OK : SS_EIO;
}

/* The tables the archiver moves: the collection, the field of the rows'
 * time, and the name _id is written under (NULL: left out). */
typedef struct moved_coll {
    enum coll c;
    const char *time, *id_as;
} moved_coll;

static const moved_coll *moved_of(const char *table)
{
    static const moved_coll moved[] = {
        {C_ORDERS, "ts", "event_id"},
        {C_PAYMENTS, "ts", "event_id"},
        {C_CANCELLATIONS, "ts", "event_id"},
        {C_KPI, "minute_start", NULL},
    };
    for (size_t i = 0; i < sizeof moved / sizeof moved[0]; i++)
        if (!strcmp(table, moved[i].c == C_KPI ? "kpi_minute" : mg_coll_name[moved[i].c]))
            return &moved[i];
    return NULL;
}

typedef struct scan_ctx {
    const char *table;
    const moved_coll *m;
    ss_scan_cb cb;
    void *ctx;
    ss_buf line;
} scan_ctx;

/* A document as its cold line: fields in the stored order (that of
 * SQLite's columns), _id as event_id for facts, dates as ISO text, _e and _u
 * left out. */
static int on_scan(void *vctx, const bson_t *doc)
{
    scan_ctx *s = vctx;
    bson_iter_t it;
    int64_t ts = 0;
    ss_hot_line_begin(&s->line);
    if (!bson_iter_init(&it, doc))
        return SS_ECORRUPT;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (!strcmp(key, "_e") || !strcmp(key, "_u"))
            continue;
        if (!strcmp(key, "_id") && !s->m->id_as)
            continue;
        if (!strcmp(key, "_id"))
            key = s->m->id_as;
        switch (bson_iter_type(&it)) {
        case BSON_TYPE_UTF8: {
            uint32_t n;
            const char *p = bson_iter_utf8(&it, &n);
            ss_hot_line_text(&s->line, key, p, n);
            break;
        }
        case BSON_TYPE_DATE_TIME: {
            char iso[SS_ISO_LEN];
            int64_t ms = bson_iter_date_time(&it);
            if (!strcmp(key, s->m->time))
                ts = ms;
            ss_time_format_iso(ms, iso);
            ss_hot_line_text(&s->line, key, iso, SS_ISO_LEN);
            break;
        }
        case BSON_TYPE_INT32:
        case BSON_TYPE_INT64:
            ss_hot_line_int(&s->line, key, mg_iter_int(&it));
            break;
        default:
            break;
        }
    }
    ss_hot_line_end(&s->line);
    return s->cb(s->ctx, s->table, ts, s->line.data, s->line.len);
}

static void range_find(bson_t *f, bson_t *opts, const char *time, int64_t from, int64_t to)
{
    bson_t sort;
    bson_init(f);
    bson_init(opts);
    append_range(f, time, from, to < 253402300800000LL ? to : 253402300800000LL);
    BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, time, 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(opts, &sort);
}

int mongo_scan_range(void *vst, const char *table, int64_t from, int64_t to, ss_scan_cb cb,
                     void *ctx)
{
    hot_mongo *h = vst;
    const moved_coll *m = moved_of(table);
    if (!m)
        return SS_EINVAL;
    bson_t f, opts;
    range_find(&f, &opts, m->time, from, to);
    scan_ctx s = {table, m, cb, ctx, {0}};
    ss_buf_init(&s.line, 1024);
    /* No retry: the callback's consumer (an archive writer) cannot take rows
     * twice; the archiver rolls the run back and tries again later. */
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h->c[m->c], &f, &opts, NULL);
    const bson_t *doc;
    int rc = SS_OK;
    while (rc == SS_OK && mongoc_cursor_next(cur, &doc))
        rc = on_scan(&s, doc);
    bson_error_t e;
    if (rc == SS_OK && mongoc_cursor_error(cur, &e)) {
        SS_ERROR("hot:mongo", "scanning %s on %s: %s", table, h->where, e.message);
        rc = mg_transient(&e) ? SS_AGAIN : SS_EIO;
    }
    mongoc_cursor_destroy(cur);
    ss_buf_free(&s.line);
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}

static int delete_where(hot_mongo *h, enum coll c, const bson_t *f, int64_t *deleted)
{
    int64_t waited = 0;
    for (;;) {
        bson_t reply;
        bson_error_t e;
        int ok = mongoc_collection_delete_many(h->c[c], f, NULL, &reply, &e);
        if (ok && deleted)
            *deleted += mg_get_int(&reply, "deletedCount", 0);
        bson_destroy(&reply);
        if (ok)
            return SS_OK;
        int rc = mg_failed(h, &e, "deleting", &waited);
        if (rc != SS_AGAIN)
            return rc;
    }
}

int mongo_delete_range(void *vst, const char *table, int64_t from, int64_t to, int64_t *deleted)
{
    hot_mongo *h = vst;
    const moved_coll *m = moved_of(table);
    *deleted = 0;
    if (!m)
        return SS_EINVAL;
    bson_t f = BSON_INITIALIZER;
    append_range(&f, m->time, from, to < 253402300800000LL ? to : 253402300800000LL);
    int rc = delete_where(h, m->c, &f, deleted);
    bson_destroy(&f);
    return rc;
}

/* The documents of a collection, or only those whose state is state. */
static int count_where(hot_mongo *h, enum coll c, const char *state, int64_t *n)
{
    bson_t cmd = BSON_INITIALIZER, q, reply;
    bson_error_t e;
    BSON_APPEND_UTF8(&cmd, "count", mg_coll_name[c]);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "query", &q);
    if (state)
        BSON_APPEND_UTF8(&q, "state", state);
    bson_append_document_end(&cmd, &q);
    int ok = mg_command(h, &cmd, &reply, &e);
    *n = ok ? mg_get_int(&reply, "n", 0) : 0;
    bson_destroy(&cmd);
    bson_destroy(&reply);
    if (!ok)
        SS_ERROR("hot:mongo", "counting %s on %s: %s", mg_coll_name[c], h->where, e.message);
    return ok ? SS_OK : SS_EIO;
}

static int count_docs(hot_mongo *h, enum coll c, int64_t *n)
{
    return count_where(h, c, NULL, n);
}

/* The n-th oldest event time over the fact collections, merged here from
 * their ts order (no server-side aggregation). */
int mongo_nth_oldest(void *vst, int64_t n, int64_t *ts, int64_t *total)
{
    hot_mongo *h = vst;
    *ts = INT64_MIN;
    *total = 0;
    for (int c = C_ORDERS; c <= C_CANCELLATIONS; c++) {
        int64_t k;
        int rc = count_docs(h, (enum coll)c, &k);
        if (rc)
            return rc;
        *total += k;
    }
    if (n >= *total)
        return SS_OK;
    mongoc_cursor_t *cur[3];
    const bson_t *doc[3];
    int live[3];
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "ts", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "ts", 1);
    bson_append_document_end(&opts, &proj);
    for (int i = 0; i < 3; i++) {
        cur[i] = mongoc_collection_find_with_opts(h->c[C_ORDERS + i], &f, &opts, NULL);
        live[i] = mongoc_cursor_next(cur[i], &doc[i]);
    }
    int rc = SS_OK;
    for (int64_t k = 0;; k++) {
        int best = -1;
        int64_t bt = INT64_MAX;
        for (int i = 0; i < 3; i++) {
            if (!live[i])
                continue;
            int64_t t = mg_get_int(doc[i], "ts", INT64_MAX);
            if (t < bt) {
                bt = t;
                best = i;
            }
        }
        if (best < 0)
            break;
        if (k == n) {
            *ts = bt;
            break;
        }
        live[best] = mongoc_cursor_next(cur[best], &doc[best]);
    }
    for (int i = 0; i < 3; i++) {
        bson_error_t e;
        if (mongoc_cursor_error(cur[i], &e) && rc == SS_OK) {
            SS_ERROR("hot:mongo", "finding the oldest events on %s: %s", h->where, e.message);
            rc = SS_EIO;
        }
        mongoc_cursor_destroy(cur[i]);
    }
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}

typedef struct keys_ctx {
    int (*ev)(void *ctx, ss_str event_id);
    int (*order)(void *ctx, ss_str order_id, const ss_attrib *at);
    void *ctx;
    int orders;
} keys_ctx;

static int on_key(void *vctx, const bson_t *d)
{
    keys_ctx *k = vctx;
    if (!k->orders)
        return k->ev(k->ctx, mg_get_str(d, "_id"));
    ss_attrib at = {mg_get_str(d, "city"), mg_get_str(d, "country"), mg_get_str(d, "category"),
                    mg_get_str(d, "payment_method")};
    return k->order(k->ctx, mg_get_str(d, "order_id"), &at);
}

int mongo_archive_keys(void *vst, int64_t cutoff, int (*ev)(void *ctx, ss_str event_id),
                       int (*order)(void *ctx, ss_str order_id, const ss_attrib *at), void *ctx)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, cond;
    BSON_APPEND_DOCUMENT_BEGIN(&f, "ts", &cond);
    mg_append_ms(&cond, "$lt", cutoff);
    bson_append_document_end(&f, &cond);
    keys_ctx k = {ev, order, ctx, 0};
    int rc = SS_OK;
    for (int c = C_ORDERS; c <= C_CANCELLATIONS + 1 && rc == SS_OK; c++) {
        k.orders = c > C_CANCELLATIONS;
        rc = mg_find_each(h, k.orders ? C_ORDERS : (enum coll)c, &f, NULL, on_key, NULL, &k,
                          "listing archived keys");
    }
    bson_destroy(&f);
    return rc;
}

int mongo_archive_begin(void *vst, const char *id, int64_t cutoff, const char *created_at)
{
    hot_mongo *h = vst;
    bson_t d = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&d, "_id", id);
    BSON_APPEND_UTF8(&d, "state", "writing");
    mg_append_ms(&d, "cutoff", cutoff);
    BSON_APPEND_UTF8(&d, "created_at", created_at);
    BSON_APPEND_NULL(&d, "manifest");
    int is_new;
    int rc = mg_insert_tagged(h, C_ARCHIVES, &d, &is_new, "recording an archive");
    bson_destroy(&d);
    return rc;
}

static int drop_dims(hot_mongo *h, int64_t cutoff);

/* Deletes what the archives up to cutoff moved: the facts before it, the
 * KPI rows of the minutes before it, and the dimension rows that only the
 * facts before it reference (drop_dims). */
static int delete_before(hot_mongo *h, int64_t cutoff)
{
    int rc = drop_dims(h, cutoff);
    for (int c = C_ORDERS; c <= C_KPI && rc == SS_OK; c++) {
        if (c > C_CANCELLATIONS && c != C_KPI)
            continue;
        bson_t f = BSON_INITIALIZER, cond;
        BSON_APPEND_DOCUMENT_BEGIN(&f, c == C_KPI ? "minute_start" : "ts", &cond);
        mg_append_ms(&cond, "$lt", cutoff);
        bson_append_document_end(&f, &cond);
        rc = delete_where(h, (enum coll)c, &f, NULL);
        bson_destroy(&f);
    }
    return rc;
}

/* Without a transaction, the archive is marked committed first and its
 * facts and KPI rows deleted after: a crash between leaves rows that the
 * cold store holds too, which the next open of the store deletes
 * (finish_archives). */
int mongo_archive_commit(void *vst, const char *id, int64_t cutoff, const char *manifest)
{
    hot_mongo *h = vst;
    int64_t waited = 0;
    for (;;) {
        bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, set;
        bson_error_t e;
        BSON_APPEND_UTF8(&sel, "_id", id);
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        BSON_APPEND_UTF8(&set, "state", "committed");
        BSON_APPEND_UTF8(&set, "manifest", manifest);
        bson_append_document_end(&upd, &set);
        int ok = mongoc_collection_update_one(h->c[C_ARCHIVES], &sel, &upd, NULL, NULL, &e);
        bson_destroy(&sel);
        bson_destroy(&upd);
        if (ok)
            break;
        int rc = mg_failed(h, &e, "committing an archive", &waited);
        if (rc != SS_AGAIN)
            return rc;
    }
    return delete_before(h, cutoff);
}

static int on_cutoff(void *vctx, const bson_t *d)
{
    int64_t *max = vctx, c = mg_get_int(d, "cutoff", INT64_MIN);
    if (c > *max)
        *max = c;
    return SS_OK;
}

int mg_finish_archives(hot_mongo *h)
{
    bson_t f = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&f, "state", "committed");
    int64_t max = INT64_MIN;
    int rc = mg_find_each(h, C_ARCHIVES, &f, NULL, on_cutoff, NULL, &max, "reading archives");
    bson_destroy(&f);
    return rc == SS_OK && max != INT64_MIN ? delete_before(h, max) : rc;
}

int mongo_archive_forget(void *vst, const char *id)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, ne;
    BSON_APPEND_UTF8(&f, "_id", id);
    BSON_APPEND_DOCUMENT_BEGIN(&f, "state", &ne);
    BSON_APPEND_UTF8(&ne, "$ne", "committed");
    bson_append_document_end(&f, &ne);
    int rc = delete_where(h, C_ARCHIVES, &f, NULL);
    bson_destroy(&f);
    return rc;
}

typedef struct list_ctx {
    int (*cb)(void *ctx, const char *id, const char *state, int64_t cutoff, const char *created_at,
              const char *manifest);
    void *ctx;
} list_ctx;

static int on_archive(void *vctx, const bson_t *d)
{
    list_ctx *l = vctx;
    bson_iter_t it;
    const char *manifest = NULL;
    if (bson_iter_init_find(&it, d, "manifest") && BSON_ITER_HOLDS_UTF8(&it))
        manifest = bson_iter_utf8(&it, NULL);
    return l->cb(l->ctx, mg_get_str(d, "_id").p, mg_get_str(d, "state").p,
                 mg_get_int(d, "cutoff", 0), mg_get_str(d, "created_at").p, manifest);
}

int mongo_archive_list(void *vst,
                       int (*cb)(void *ctx, const char *id, const char *state, int64_t cutoff,
                                 const char *created_at, const char *manifest),
                       void *ctx)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    list_ctx l = {cb, ctx};
    int rc = mg_find_each(h, C_ARCHIVES, &f, &opts, on_archive, NULL, &l, "listing archives");
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}

int mongo_reclaim(void *vst)
{
    /* The server reuses and returns space itself. */
    (void)vst;
    return SS_OK;
}

int mongo_version(void *vst, uint64_t *v)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, doc;
    BSON_APPEND_UTF8(&f, "_id", "commit");
    int rc = mg_find_one(h, C_STATE, &f, NULL, &doc, "reading the store's version");
    bson_destroy(&f);
    /* An archive changes the store twice: its record appears (writing),
     * then it commits, deleting its facts; both must change the version,
     * or a reader that looked in between would miss the facts' move. */
    int64_t archives = 0, committed = 0;
    if (rc == SS_OK)
        rc = count_docs(h, C_ARCHIVES, &archives);
    if (rc == SS_OK)
        rc = count_where(h, C_ARCHIVES, "committed", &committed);
    *v = ((uint64_t)mg_get_int(&doc, "epoch", 0) * 1000003u + (uint64_t)archives) * 1000003u +
         (uint64_t)committed;
    bson_destroy(&doc);
    return rc;
}

int mongo_note_set(void *vst, const char *key, const char *value)
{
    hot_mongo *h = vst;
    bson_t sel = BSON_INITIALIZER, doc = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    bson_error_t e;
    BSON_APPEND_UTF8(&sel, "_id", key);
    BSON_APPEND_UTF8(&doc, "_id", key);
    BSON_APPEND_UTF8(&doc, "value", value);
    BSON_APPEND_BOOL(&opts, "upsert", true);
    int ok = mongoc_collection_replace_one(h->c[C_NOTES], &sel, &doc, &opts, NULL, &e);
    if (!ok)
        SS_ERROR("hot:mongo", "writing a lifecycle note on %s: %s", h->where, e.message);
    bson_destroy(&sel);
    bson_destroy(&doc);
    bson_destroy(&opts);
    return ok ? SS_OK : SS_EIO;
}

typedef struct note_ctx {
    int (*cb)(void *ctx, const char *key, const char *value);
    void *ctx;
} note_ctx;

static int on_note(void *vctx, const bson_t *d)
{
    note_ctx *n = vctx;
    return n->cb(n->ctx, mg_get_str(d, "_id").p, mg_get_str(d, "value").p);
}

int mongo_note_list(void *vst, int (*cb)(void *ctx, const char *key, const char *value), void *ctx)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    note_ctx n = {cb, ctx};
    int rc = mg_find_each(h, C_NOTES, &f, &opts, on_note, NULL, &n, "reading lifecycle notes");
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}

/* ---- dimension snapshots (scan_dims) ---- */

/* A dimension collection's columns in the order of schema.sql (the first is
 * its _id), and the fact field whose values name its rows: in orders alone,
 * or in every fact collection. A money column is a double in the store and
 * integer cents on the line. */
typedef struct dim_def {
    const char *table;
    enum coll c;
    const char *field;
    int every_fact;
    const char *money;
    const char *col[7];
} dim_def;

static const dim_def dim_defs[SS_HOT_NDIM_TABLES] = {
    {"customers",
     C_CUSTOMERS,
     "customer_id",
     0,
     NULL,
     {"customer_id", "customer_segment", "city", "country", "first_seen"}},
    {"products",
     C_PRODUCTS,
     "product_id",
     0,
     "unit_price",
     {"product_id", "product_name", "category", "unit_price"}},
    {"categories", C_CATEGORIES, "category", 1, NULL, {"category"}},
    {"countries", C_COUNTRIES, "country", 1, NULL, {"country", "country_code", "region"}},
    {"cities", C_CITIES, "city", 1, NULL, {"city", "country", "lat", "lon"}},
    {"payment_methods", C_METHODS, "payment_method", 1, NULL, {"payment_method"}},
    {"time_minutes",
     C_MINUTES,
     "ts",
     1,
     NULL,
     {"minute_start", "date", "hour", "minute", "weekday", "weekday_name"}},
};

/* The keys the facts reference: strings, or minutes (ms) for time_minutes. */
typedef struct dim_keys {
    int minutes;
    char **s;
    int64_t *ms;
    size_t n, cap, base; /* base: the count before the current find */
} dim_keys;

static int on_ref(void *vctx, const bson_t *d)
{
    dim_keys *k = vctx;
    bson_iter_t it;
    if (!bson_iter_init(&it, d))
        return SS_OK;
    while (bson_iter_next(&it)) {
        if (!strcmp(bson_iter_key(&it), "_id"))
            continue;
        if (k->n == k->cap) {
            k->cap = k->cap ? 2 * k->cap : 1024;
            if (k->minutes)
                k->ms = ss_realloc(k->ms, k->cap * sizeof *k->ms);
            else
                k->s = ss_realloc(k->s, k->cap * sizeof *k->s);
        }
        if (k->minutes && BSON_ITER_HOLDS_DATE_TIME(&it)) {
            k->ms[k->n++] = ss_time_floor(bson_iter_date_time(&it), SS_MS_PER_MIN);
        } else if (!k->minutes && BSON_ITER_HOLDS_UTF8(&it)) {
            uint32_t n;
            const char *p = bson_iter_utf8(&it, &n);
            k->s[k->n] = ss_malloc(n + 1);
            memcpy(k->s[k->n], p, n);
            k->s[k->n++][n] = '\0';
        }
    }
    return SS_OK;
}

/* A retried find starts its keys over. */
static void refs_reset(void *vctx)
{
    dim_keys *k = vctx;
    while (!k->minutes && k->n > k->base)
        free(k->s[--k->n]);
    k->n = k->base;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_ms(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts the keys and drops repeats. */
static void keys_unique(dim_keys *k)
{
    size_t w = 0;
    if (k->n < 2) /* nothing to sort (and no array at all when empty) */
        return;
    if (k->minutes) {
        qsort(k->ms, k->n, sizeof *k->ms, cmp_ms);
        for (size_t i = 0; i < k->n; i++)
            if (w == 0 || k->ms[i] != k->ms[w - 1])
                k->ms[w++] = k->ms[i];
    } else {
        qsort(k->s, k->n, sizeof *k->s, cmp_str);
        for (size_t i = 0; i < k->n; i++) {
            if (w > 0 && !strcmp(k->s[i], k->s[w - 1]))
                free(k->s[i]);
            else
                k->s[w++] = k->s[i];
        }
    }
    k->n = w;
}

static void keys_free(dim_keys *k)
{
    for (size_t i = 0; !k->minutes && i < k->n; i++)
        free(k->s[i]);
    free(k->s);
    free(k->ms);
}

/* The keys of field over the orders before cutoff (before) or from it on. */
static int order_refs(hot_mongo *h, const char *field, int before, int64_t cutoff, dim_keys *k)
{
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, cond, proj;
    BSON_APPEND_DOCUMENT_BEGIN(&f, "ts", &cond);
    mg_append_ms(&cond, before ? "$lt" : "$gte", cutoff);
    bson_append_document_end(&f, &cond);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, field, 1);
    bson_append_document_end(&opts, &proj);
    k->base = k->n;
    int rc = mg_find_each(h, C_ORDERS, &f, &opts, on_ref, refs_reset, k,
                          "listing the dimensions archived facts reference");
    bson_destroy(&f);
    bson_destroy(&opts);
    keys_unique(k);
    return rc;
}

/* Customers and products that only the orders before cutoff reference
 * leave with them, and so do the minutes before it: the archive's snapshot
 * holds their rows (docs/lifecycle.md, "Dimensions"). Without a
 * transaction, a row is deleted only if no epoch after the committed one
 * wrote it (_e below the next epoch's): the writer may be taking it up
 * again for a new order, which then references it. */
static int drop_dims(hot_mongo *h, int64_t cutoff)
{
    bson_t commit;
    int rc = mg_by_id(h, C_STATE, "commit", 6, &commit, "reading the committed state");
    int64_t bound = (mg_get_int(&commit, "epoch", 0) + 1) << ROUND_BITS;
    bson_destroy(&commit);
    static const struct {
        enum coll c;
        const char *field;
    } moved[] = {{C_CUSTOMERS, "customer_id"}, {C_PRODUCTS, "product_id"}};
    for (size_t d = 0; d < sizeof moved / sizeof moved[0] && rc == SS_OK; d++) {
        dim_keys old = {0}, keep = {0};
        rc = order_refs(h, moved[d].field, 1, cutoff, &old);
        if (rc == SS_OK)
            rc = order_refs(h, moved[d].field, 0, cutoff, &keep);
        /* old less keep, IN_CHUNK ids a delete. */
        size_t j = 0, at = 0;
        while (rc == SS_OK && at < old.n) {
            bson_t f = BSON_INITIALIZER, in, arr, e;
            BSON_APPEND_DOCUMENT_BEGIN(&f, "_id", &in);
            BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
            uint32_t n = 0;
            for (; at < old.n && n < IN_CHUNK; at++) {
                while (j < keep.n && strcmp(keep.s[j], old.s[at]) < 0)
                    j++;
                if (j < keep.n && !strcmp(keep.s[j], old.s[at]))
                    continue;
                char key[16];
                const char *kp;
                bson_uint32_to_string(n++, &kp, key, sizeof key);
                BSON_APPEND_UTF8(&arr, kp, old.s[at]);
            }
            bson_append_array_end(&in, &arr);
            bson_append_document_end(&f, &in);
            BSON_APPEND_DOCUMENT_BEGIN(&f, "_e", &e);
            BSON_APPEND_INT64(&e, "$lt", bound);
            bson_append_document_end(&f, &e);
            if (n)
                rc = delete_where(h, moved[d].c, &f, NULL);
            bson_destroy(&f);
        }
        keys_free(&old);
        keys_free(&keep);
    }
    if (rc == SS_OK) {
        bson_t f = BSON_INITIALIZER, cond;
        BSON_APPEND_DOCUMENT_BEGIN(&f, "_id", &cond);
        mg_append_ms(&cond, "$lt", cutoff);
        bson_append_document_end(&f, &cond);
        rc = delete_where(h, C_MINUTES, &f, NULL);
        bson_destroy(&f);
    }
    return rc;
}

typedef struct dim_scan {
    const dim_def *def;
    int64_t committed;
    ss_scan_cb cb;
    void *ctx;
    ss_buf line;
} dim_scan;

/* One committed dimension row as its cold line, in the columns' order. */
static int on_dim(void *vctx, const bson_t *doc)
{
    dim_scan *s = vctx;
    bson_t row;
    bson_iter_t it;
    if ((mg_get_int(doc, "_e", 0) >> ROUND_BITS) <= s->committed) {
        bson_init_static(&row, bson_get_data(doc), doc->len);
    } else if (bson_iter_init_find(&it, doc, "_u") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_iter_document(&it, &len, &data);
        if (!bson_init_static(&row, data, len))
            return SS_ECORRUPT;
    } else {
        return SS_OK; /* inserted by an epoch not committed */
    }
    ss_hot_line_begin(&s->line);
    for (int i = 0; i < 7 && s->def->col[i]; i++) {
        const char *name = s->def->col[i];
        if (!bson_iter_init_find(&it, &row, i == 0 ? "_id" : name))
            continue;
        switch (bson_iter_type(&it)) {
        case BSON_TYPE_UTF8: {
            uint32_t n;
            const char *p = bson_iter_utf8(&it, &n);
            ss_hot_line_text(&s->line, name, p, n);
            break;
        }
        case BSON_TYPE_DATE_TIME: {
            char iso[SS_ISO_LEN];
            ss_time_format_iso(bson_iter_date_time(&it), iso);
            ss_hot_line_text(&s->line, name, iso, SS_ISO_LEN);
            break;
        }
        case BSON_TYPE_DOUBLE:
            if (s->def->money && !strcmp(name, s->def->money)) {
                char cents[64];
                snprintf(cents, sizeof cents, "%s_cents", name);
                ss_hot_line_int(&s->line, cents, llround(bson_iter_double(&it) * 100.0));
            } else {
                ss_hot_line_real(&s->line, name, bson_iter_double(&it));
            }
            break;
        case BSON_TYPE_INT32:
        case BSON_TYPE_INT64:
            ss_hot_line_int(&s->line, name, mg_iter_int(&it));
            break;
        default:
            break;
        }
    }
    ss_hot_line_end(&s->line);
    return s->cb(s->ctx, s->def->table, 0, s->line.data, s->line.len);
}

int mongo_scan_dims(void *vst, const char *table, int64_t cutoff, ss_scan_cb cb, void *ctx)
{
    hot_mongo *h = vst;
    const dim_def *def = NULL;
    for (int t = 0; t < SS_HOT_NDIM_TABLES; t++)
        if (!strcmp(table, dim_defs[t].table))
            def = &dim_defs[t];
    if (!def)
        return SS_EINVAL;
    /* The keys the facts before the cutoff name, collected here: a distinct
     * on the server would return them in one document of at most 16 MB. */
    dim_keys k = {.minutes = !strcmp(def->field, "ts")};
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, cond, proj;
    BSON_APPEND_DOCUMENT_BEGIN(&f, "ts", &cond);
    mg_append_ms(&cond, "$lt", cutoff);
    bson_append_document_end(&f, &cond);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, def->field, 1);
    bson_append_document_end(&opts, &proj);
    int rc = SS_OK;
    for (int c = C_ORDERS; c <= (def->every_fact ? C_CANCELLATIONS : C_ORDERS) && rc == SS_OK;
         c++) {
        k.base = k.n;
        rc = mg_find_each(h, (enum coll)c, &f, &opts, on_ref, refs_reset, &k,
                          "listing the dimensions archived facts reference");
    }
    bson_destroy(&f);
    bson_destroy(&opts);
    keys_unique(&k);

    dim_scan s = {.def = def, .cb = cb, .ctx = ctx};
    bson_t commit;
    if (rc == SS_OK) {
        rc = mg_by_id(h, C_STATE, "commit", 6, &commit, "reading the committed state");
        s.committed = mg_get_int(&commit, "epoch", 0);
        bson_destroy(&commit);
    }
    ss_buf_init(&s.line, 512);
    /* The rows, IN_CHUNK keys at a time; keys are sorted, so rows come in
     * key order. No retry once rows went out: the archive writer cannot take
     * them twice (the archiver rolls the run back instead). */
    for (size_t at = 0; at < k.n && rc == SS_OK; at += IN_CHUNK) {
        size_t n = k.n - at < IN_CHUNK ? k.n - at : IN_CHUNK;
        bson_t in, arr, sort;
        bson_init(&f);
        bson_init(&opts);
        BSON_APPEND_DOCUMENT_BEGIN(&f, "_id", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
        for (size_t i = 0; i < n; i++) {
            char kp[16];
            snprintf(kp, sizeof kp, "%zu", i);
            if (k.minutes)
                mg_append_ms(&arr, kp, k.ms[at + i]);
            else
                BSON_APPEND_UTF8(&arr, kp, k.s[at + i]);
        }
        bson_append_array_end(&in, &arr);
        bson_append_document_end(&f, &in);
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
        BSON_APPEND_INT32(&sort, "_id", 1);
        bson_append_document_end(&opts, &sort);
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h->c[def->c], &f, &opts, NULL);
        const bson_t *doc;
        while (rc == SS_OK && mongoc_cursor_next(cur, &doc))
            rc = on_dim(&s, doc);
        bson_error_t e;
        if (rc == SS_OK && mongoc_cursor_error(cur, &e)) {
            SS_ERROR("hot:mongo", "reading %s on %s: %s", table, h->where, e.message);
            rc = mg_transient(&e) ? SS_AGAIN : SS_EIO;
        }
        mongoc_cursor_destroy(cur);
        bson_destroy(&f);
        bson_destroy(&opts);
    }
    ss_buf_free(&s.line);
    keys_free(&k);
    return rc;
}

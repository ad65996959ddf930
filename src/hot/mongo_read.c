/* The MongoDB hot store: reads (KPIs, order lookups, ranges, size) and the
 * archive lifecycle. */
#define _POSIX_C_SOURCE 200809L
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

static int fact_coll(const char *table)
{
    for (int c = C_ORDERS; c <= C_CANCELLATIONS; c++)
        if (!strcmp(table, mg_coll_name[c]))
            return c;
    return -1;
}

typedef struct scan_ctx {
    const char *table;
    ss_scan_cb cb;
    void *ctx;
    ss_buf line;
} scan_ctx;

/* A fact document as its cold line: fields in the stored order (that of
 * SQLite's columns), _id as event_id, dates as ISO text, _e left out. */
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
        if (!strcmp(key, "_id"))
            key = "event_id";
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
            if (!strcmp(key, "ts"))
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

static void range_find(bson_t *f, bson_t *opts, int64_t from, int64_t to)
{
    bson_t sort;
    bson_init(f);
    bson_init(opts);
    append_range(f, "ts", from, to < 253402300800000LL ? to : 253402300800000LL);
    BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "ts", 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(opts, &sort);
}

int mongo_scan_range(void *vst, const char *table, int64_t from, int64_t to, ss_scan_cb cb,
                     void *ctx)
{
    hot_mongo *h = vst;
    int c = fact_coll(table);
    if (c < 0)
        return SS_EINVAL;
    bson_t f, opts;
    range_find(&f, &opts, from, to);
    scan_ctx s = {table, cb, ctx, {0}};
    ss_buf_init(&s.line, 1024);
    /* No retry: the callback's consumer (an archive writer) cannot take rows
     * twice; the archiver rolls the run back and tries again later. */
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h->c[c], &f, &opts, NULL);
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
    int c = fact_coll(table);
    *deleted = 0;
    if (c < 0)
        return SS_EINVAL;
    bson_t f = BSON_INITIALIZER;
    append_range(&f, "ts", from, to < 253402300800000LL ? to : 253402300800000LL);
    int rc = delete_where(h, (enum coll)c, &f, deleted);
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

static int delete_before(hot_mongo *h, int64_t cutoff)
{
    int rc = SS_OK;
    bson_t f = BSON_INITIALIZER, cond;
    BSON_APPEND_DOCUMENT_BEGIN(&f, "ts", &cond);
    mg_append_ms(&cond, "$lt", cutoff);
    bson_append_document_end(&f, &cond);
    for (int c = C_ORDERS; c <= C_CANCELLATIONS && rc == SS_OK; c++)
        rc = delete_where(h, (enum coll)c, &f, NULL);
    bson_destroy(&f);
    return rc;
}

/* Without a transaction, the archive is marked committed first and its
 * facts deleted after: a crash between leaves facts that the cold store
 * holds too, which the next open of the store deletes (finish_archives). */
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

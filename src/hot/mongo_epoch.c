/* The MongoDB hot store: epochs (begin, commit, rollback), the undo of an
 * uncommitted epoch at take-over, and the shards' state. */
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

/* ---- undo and recovery ---- */

/* The undo of one collection: bulks of MAX_BULK_UPDATES statements at most,
 * built while the cursor reads and run once it is done (so that no document
 * changes under the cursor). */
typedef struct undo_ctx {
    hot_mongo *h;
    enum coll c;
    mongoc_bulk_operation_t **b;
    size_t nb, n, inbulk;
} undo_ctx;

static mongoc_bulk_operation_t *undo_bulk(undo_ctx *u)
{
    if (!u->nb || u->inbulk == MAX_BULK_UPDATES) {
        u->b = ss_realloc(u->b, (u->nb + 1) * sizeof *u->b);
        u->b[u->nb++] = mg_new_bulk(u->h, u->c);
        u->inbulk = 0;
    }
    u->inbulk++;
    return u->b[u->nb - 1];
}

/* Runs the bulks in order; *retry when one failed in a way worth retrying. */
static int undo_run(undo_ctx *u, int64_t *waited, int *retry)
{
    int rc = SS_OK;
    for (size_t i = 0; i < u->nb && rc == SS_OK && !*retry; i++)
        rc = mg_run_bulk(u->h, u->b[i], NULL, NULL, "undoing an uncommitted batch", waited, retry);
    return rc;
}

static void undo_free(undo_ctx *u)
{
    for (size_t i = 0; i < u->nb; i++)
        mongoc_bulk_operation_destroy(u->b[i]);
    free(u->b);
}

static int on_undo(void *vctx, const bson_t *doc)
{
    undo_ctx *u = vctx;
    bson_iter_t it, id;
    bson_t sel = BSON_INITIALIZER;
    if (bson_iter_init_find(&id, doc, "_id"))
        bson_append_iter(&sel, "_id", 3, &id);
    if (bson_iter_init_find(&it, doc, "_u") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t prev;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&prev, data, len))
            mongoc_bulk_operation_replace_one_with_opts(undo_bulk(u), &sel, &prev, NULL, NULL);
    } else {
        mongoc_bulk_operation_remove_one_with_opts(undo_bulk(u), &sel, NULL, NULL);
    }
    bson_destroy(&sel);
    u->n++;
    return SS_OK;
}

/* Undoes every document whose _e is at or past from: the writes of epochs
 * that never committed. */
static int undo_from(hot_mongo *h, int64_t from)
{
    int rc = SS_OK;
    uint64_t undone = 0;
    for (int c = 0; c <= LAST_TAGGED && rc == SS_OK; c++) {
        bson_t f = BSON_INITIALIZER, cond;
        BSON_APPEND_DOCUMENT_BEGIN(&f, "_e", &cond);
        BSON_APPEND_INT64(&cond, "$gte", from);
        bson_append_document_end(&f, &cond);
        int64_t waited = 0;
        for (;;) {
            if (c < FIRST_REPLACED) {
                bson_t reply;
                bson_error_t e;
                if (mongoc_collection_delete_many(h->c[c], &f, NULL, &reply, &e)) {
                    undone += (uint64_t)mg_get_int(&reply, "deletedCount", 0);
                    bson_destroy(&reply);
                    break;
                }
                bson_destroy(&reply);
                rc = mg_failed(h, &e, "undoing an uncommitted batch", &waited);
            } else {
                undo_ctx u = {.h = h, .c = (enum coll)c};
                rc = mg_find_each(h, (enum coll)c, &f, NULL, on_undo, NULL, &u,
                                  "undoing an uncommitted batch");
                int retry = 0;
                if (rc == SS_OK)
                    rc = undo_run(&u, &waited, &retry);
                undo_free(&u);
                undone += u.n;
                if (rc == SS_OK && !retry)
                    break;
                if (rc == SS_OK)
                    rc = SS_AGAIN;
            }
            if (rc != SS_AGAIN)
                break;
            rc = SS_OK;
        }
        bson_destroy(&f);
    }
    if (rc == SS_OK && undone)
        SS_INFO("hot:mongo", "%s: undid %llu documents of a batch that never committed", h->where,
                (unsigned long long)undone);
    return rc;
}

static void free_state(hot_mongo *h)
{
    for (size_t i = 0; i < h->npos; i++)
        free(h->pos[i].source);
    h->npos = 0;
    h->nshards = 0;
}

static void read_shard(const bson_t *d, hshard *s)
{
    memset(s, 0, sizeof *s);
    s->s.shard = (int)mg_get_int(d, "shard", 0);
    s->s.watermark = mg_get_int(d, "watermark", INT64_MIN);
    s->s.input_watermark = mg_get_int(d, "input_watermark", INT64_MIN);
    s->s.max_ts = mg_get_int(d, "max_ts", INT64_MIN);
    s->s.events_in = (uint64_t)mg_get_int(d, "events_in", 0);
    s->s.stored = (uint64_t)mg_get_int(d, "stored", 0);
    s->s.duplicates = (uint64_t)mg_get_int(d, "duplicates", 0);
    s->s.rejected = (uint64_t)mg_get_int(d, "rejected", 0);
    s->s.late = (uint64_t)mg_get_int(d, "late", 0);
    ss_str o = mg_get_str(d, "owner");
    snprintf(s->owner, sizeof s->owner, "%.*s", (int)o.n, o.p);
}

/* Reads the commit document into the handle's committed state. */
static int load_commit(hot_mongo *h, bson_t *doc)
{
    bson_t f = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&f, "_id", "commit");
    int rc = mg_find_one(h, C_STATE, &f, NULL, doc, "reading the committed state");
    bson_destroy(&f);
    if (rc)
        return rc;
    free_state(h);
    h->committed = mg_get_int(doc, "epoch", 0);
    bson_iter_t it, arr;
    if (bson_iter_init_find(&it, doc, "shards") && bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            uint32_t len;
            const uint8_t *data;
            bson_t s;
            bson_iter_document(&arr, &len, &data);
            if (!bson_init_static(&s, data, len))
                continue;
            h->shards = ss_realloc(h->shards, (h->nshards + 1) * sizeof *h->shards);
            read_shard(&s, &h->shards[h->nshards++]);
        }
    }
    if (bson_iter_init_find(&it, doc, "positions") && bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            uint32_t len;
            const uint8_t *data;
            bson_t s;
            bson_iter_document(&arr, &len, &data);
            if (!bson_init_static(&s, data, len))
                continue;
            ss_str src = mg_get_str(&s, "source");
            h->pos = ss_realloc(h->pos, (h->npos + 1) * sizeof *h->pos);
            h->pos[h->npos].source = ss_malloc(src.n + 1);
            memcpy(h->pos[h->npos].source, src.p, src.n);
            h->pos[h->npos].source[src.n] = '\0';
            h->pos[h->npos++].offset = mg_get_int(&s, "position", 0);
        }
    }
    return SS_OK;
}

/* The first batch of a process takes the store over: from then on a
 * process that wrote it before can no longer commit (its commit is
 * conditional on being the writer), and what it left uncommitted is undone. */
static int take_over(hot_mongo *h)
{
    int64_t waited = 0;
    for (;;) {
        bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, set, opts = BSON_INITIALIZER;
        bson_error_t e;
        BSON_APPEND_UTF8(&sel, "_id", "commit");
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        BSON_APPEND_UTF8(&set, "writer", h->writer);
        bson_append_document_end(&upd, &set);
        BSON_APPEND_BOOL(&opts, "upsert", true);
        int ok = mongoc_collection_update_one(h->c[C_STATE], &sel, &upd, &opts, NULL, &e);
        bson_destroy(&sel);
        bson_destroy(&upd);
        bson_destroy(&opts);
        if (ok)
            break;
        int rc = mg_failed(h, &e, "taking the store over", &waited);
        if (rc != SS_AGAIN)
            return rc;
    }
    bson_t doc;
    int rc = load_commit(h, &doc);
    bson_destroy(&doc);
    if (rc == SS_OK)
        rc = undo_from(h, (h->committed + 1) << ROUND_BITS);
    if (rc == SS_OK)
        rc = mg_known_probe(h);
    if (rc == SS_OK)
        h->writing = 1;
    return rc;
}

/* ---- batches ---- */

static void pend_clear(hot_mongo *h)
{
    for (int c = 0; c < C_COUNT; c++)
        mg_pmap_clear(&h->pend[c]);
}

int mongo_begin(void *vst)
{
    hot_mongo *h = vst;
    if (h->read_only)
        return SS_ENOTSUP;
    if (!h->writing) {
        int rc = take_over(h);
        if (rc)
            return rc;
    }
    pend_clear(h);
    h->epoch = h->committed + 1;
    h->round = 0;
    h->state_dirty = 0;
    h->in_tx = 1;
    return SS_OK;
}

int mongo_rollback(void *vst)
{
    hot_mongo *h = vst;
    if (!h->in_tx)
        return SS_OK;
    h->in_tx = 0;
    pend_clear(h);
    int rc = undo_from(h, h->epoch << ROUND_BITS);
    /* The in-memory state may hold the batch's changes: read it back. */
    bson_t doc;
    if (rc == SS_OK)
        rc = load_commit(h, &doc);
    if (rc == SS_OK)
        bson_destroy(&doc);
    h->epoch = 0;
    return rc;
}

static int flush_inserts(hot_mongo *h, enum coll c)
{
    pmap *m = &h->pend[c];
    if (!m->n)
        return SS_OK;
    h->round++;
    int64_t tag = mg_tag_of(h), waited = 0;
    for (;;) {
        mongoc_bulk_operation_t *b = mg_new_bulk(h, c);
        for (size_t i = 0; i < m->n; i++) {
            bson_t d;
            bson_copy_to(m->v[i].doc, &d);
            BSON_APPEND_INT64(&d, "_e", tag);
            mongoc_bulk_operation_insert(b, &d);
            bson_destroy(&d);
        }
        int retry = 0;
        /* 11000: the row was there (inserted only if absent). */
        int rc = mg_run_bulk(h, b, NULL, NULL, "storing dimensions", &waited, &retry);
        mongoc_bulk_operation_destroy(b);
        if (rc || !retry)
            return rc;
    }
}

/* The current documents of a replaced collection's pending ids. */
typedef struct cur_docs {
    pmap *m;
    bson_t **cur; /* per pending entry, or NULL */
} cur_docs;

static int on_current(void *vctx, const bson_t *doc)
{
    cur_docs *c = vctx;
    ss_str id = mg_get_str(doc, "_id");
    pent *p = mg_pmap_find(c->m, id.p, id.n);
    if (p && !c->cur[p - c->m->v])
        c->cur[p - c->m->v] = bson_copy(doc);
    return SS_OK;
}

static void reset_current(void *vctx)
{
    cur_docs *c = vctx;
    for (size_t i = 0; i < c->m->n; i++) {
        if (c->cur[i])
            bson_destroy(c->cur[i]);
        c->cur[i] = NULL;
    }
}

/* The committed version of a current document: its _u when this epoch
 * wrote it already (an attempt before the server went away); NULL when
 * there is none. Returns a new document or NULL. */
static bson_t *committed_version(hot_mongo *h, const bson_t *cur)
{
    if (!cur)
        return NULL;
    if ((mg_get_int(cur, "_e", 0) >> ROUND_BITS) != h->epoch)
        return bson_copy(cur);
    bson_iter_t it;
    if (!bson_iter_init_find(&it, cur, "_u") || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return NULL;
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    return bson_new_from_data(data, len);
}

/* Whether two documents hold the same fields and values, _e and _u aside. */
static int same_fields(const bson_t *a, const bson_t *b)
{
    bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
    bson_copy_to_excluding_noinit(a, &x, "_e", "_u", NULL);
    bson_copy_to_excluding_noinit(b, &y, "_e", "_u", NULL);
    int eq = bson_equal(&x, &y);
    bson_destroy(&x);
    bson_destroy(&y);
    return eq;
}

/* What a replaced collection's document becomes: the epoch's fields merged
 * with the committed version prev (NULL: none) as SQLite's statements of
 * the same rows would. Returns 0 when the row stays as it is. */
static int merge(enum coll c, const pent *p, const bson_t *prev, bson_t *out)
{
    bson_init(out);
    switch (c) {
    case C_CUSTOMERS: {
        if (prev) {
            ss_str v[3] = {mg_get_str(p->doc, "customer_segment"), mg_get_str(p->doc, "city"),
                           mg_get_str(p->doc, "country")};
            ss_str cv[3] = {mg_get_str(prev, "customer_segment"), mg_get_str(prev, "city"),
                            mg_get_str(prev, "country")};
            if (!ss_hot_customer_wins(p->ts, v, mg_get_int(prev, "first_seen", INT64_MAX), cv))
                return 0;
        }
        bson_copy_to_excluding_noinit(p->doc, out, "", NULL);
        break;
    }
    case C_COUNTRIES:
        if (p->flags & P_PLACE) {
            bson_copy_to_excluding_noinit(p->doc, out, "", NULL);
        } else if (prev) {
            return 0;
        } else {
            bson_copy_to_excluding_noinit(p->doc, out, "", NULL);
            BSON_APPEND_NULL(out, "country_code");
            BSON_APPEND_NULL(out, "region");
        }
        break;
    case C_CITIES: {
        bson_iter_t it;
        mg_append_str(out, "_id", mg_get_str(p->doc, "_id"));
        mg_append_str(out, "country",
                      prev ? mg_get_str(prev, "country") : mg_get_str(p->doc, "country"));
        const bson_t *ll = (p->flags & P_PLACE) ? p->doc : prev;
        for (int k = 0; k < 2; k++) {
            const char *key = k ? "lon" : "lat";
            if (ll && bson_iter_init_find(&it, ll, key) && BSON_ITER_HOLDS_DOUBLE(&it))
                bson_append_double(out, key, -1, bson_iter_double(&it));
            else
                bson_append_null(out, key, -1);
        }
        break;
    }
    default:
        bson_copy_to_excluding_noinit(p->doc, out, "", NULL);
        break;
    }
    return !prev || !same_fields(out, prev);
}

typedef struct ask_ids {
    const pmap *m;
    const size_t *ask;
} ask_ids;

static void put_asked(void *vctx, size_t i, bson_t *arr, const char *key)
{
    const ask_ids *a = vctx;
    bson_iter_t it;
    if (bson_iter_init_find(&it, a->m->v[a->ask[i]].doc, "_id"))
        bson_append_iter(arr, key, -1, &it);
}

/* Reads the current documents of the pending rows that the cache of
 * committed rows cannot tell (ask: their indexes) into cd. */
static int read_current(hot_mongo *h, enum coll c, cur_docs *cd, const size_t *ask, size_t nask)
{
    ask_ids a = {cd->m, ask};
    return mg_find_ids(h, c, nask, put_asked, &a, on_current, cd, "reading rows to replace");
}

static int flush_replaced(hot_mongo *h, enum coll c)
{
    pmap *m = &h->pend[c];
    if (!m->n)
        return SS_OK;
    h->round++;
    int64_t tag = mg_tag_of(h), waited = 0;
    cur_docs cd = {m, ss_calloc(m->n, sizeof(bson_t *))};
    /* Rows whose committed version the cache holds (or knows to be none)
     * are not read. */
    const bson_t **known = ss_calloc(m->n, sizeof *known);
    uint8_t *is_known = ss_malloc(m->n);
    size_t *ask = ss_malloc(m->n * sizeof *ask), nask = 0;
    for (size_t i = 0; i < m->n; i++) {
        int k;
        known[i] = mg_known_get(h, c, m->v[i].id, &k);
        is_known[i] = (uint8_t)k;
        if (!k)
            ask[nask++] = i;
    }
    int rc = SS_OK;
    for (;;) {
        rc = read_current(h, c, &cd, ask, nask);
        if (rc)
            break;
        /* New rows in one bulk of inserts; replacements in bulks of at most
         * MAX_BULK_UPDATES, each run as it fills. */
        mongoc_bulk_operation_t *ins = mg_new_bulk(h, c), *b = mg_new_bulk(h, c);
        size_t nins = 0, nb = 0;
        int retry = 0;
        for (size_t i = 0; i < m->n && rc == SS_OK && !retry; i++) {
            pent *p = &m->v[i];
            bson_t *prev = is_known[i] ? (known[i] ? bson_copy(known[i]) : NULL)
                                       : committed_version(h, cd.cur[i]);
            int exists = is_known[i] ? known[i] != NULL : cd.cur[i] != NULL;
            bson_t out;
            if (p->next)
                bson_destroy(p->next);
            p->next = NULL;
            if (merge(c, p, prev, &out)) {
                BSON_APPEND_INT64(&out, "_e", tag);
                p->next = bson_copy(&out); /* the row as the server will hold it, _u aside */
                if (prev) {
                    bson_t pu = BSON_INITIALIZER;
                    bson_copy_to_excluding_noinit(prev, &pu, "_u", NULL);
                    BSON_APPEND_DOCUMENT(&out, "_u", &pu);
                    bson_destroy(&pu);
                }
                if (!exists) {
                    /* None on the server: an insert, which servers take
                     * faster than an upsert (no lookup before the write).
                     * A retry meets its own earlier insert as 11000. */
                    mongoc_bulk_operation_insert_with_opts(ins, &out, NULL, NULL);
                    nins++;
                } else {
                    bson_t sel = BSON_INITIALIZER, opts = BSON_INITIALIZER;
                    bson_iter_t it;
                    if (bson_iter_init_find(&it, &out, "_id"))
                        bson_append_iter(&sel, "_id", 3, &it);
                    BSON_APPEND_BOOL(&opts, "upsert", true);
                    mongoc_bulk_operation_replace_one_with_opts(b, &sel, &out, &opts, NULL);
                    bson_destroy(&sel);
                    bson_destroy(&opts);
                    nb++;
                }
            } else {
                /* Unchanged: the committed version stays. */
                p->next = bson_new();
                bson_copy_to_excluding_noinit(prev, p->next, "_u", NULL);
            }
            bson_destroy(&out);
            if (prev)
                bson_destroy(prev);
            if (nb == MAX_BULK_UPDATES) {
                rc = mg_run_bulk(h, b, NULL, NULL, "replacing rows", &waited, &retry);
                mongoc_bulk_operation_destroy(b);
                b = mg_new_bulk(h, c);
                nb = 0;
            }
        }
        if (nb && rc == SS_OK && !retry)
            rc = mg_run_bulk(h, b, NULL, NULL, "replacing rows", &waited, &retry);
        if (nins && rc == SS_OK && !retry)
            rc = mg_run_bulk(h, ins, NULL, NULL, "replacing rows", &waited, &retry);
        mongoc_bulk_operation_destroy(b);
        mongoc_bulk_operation_destroy(ins);
        if (rc || !retry)
            break;
        reset_current(&cd);
    }
    reset_current(&cd);
    free(cd.cur);
    free(known);
    free(is_known);
    free(ask);
    return rc;
}

static void append_state(hot_mongo *h, bson_t *d)
{
    bson_t arr, s;
    BSON_APPEND_UTF8(d, "_id", "commit");
    BSON_APPEND_UTF8(d, "writer", h->writer);
    BSON_APPEND_INT64(d, "epoch", h->epoch);
    mg_append_ms(d, "committed_at", ss_now_ms());
    BSON_APPEND_ARRAY_BEGIN(d, "shards", &arr);
    for (size_t i = 0; i < h->nshards; i++) {
        char key[16];
        const char *kp;
        bson_uint32_to_string((uint32_t)i, &kp, key, sizeof key);
        const ss_hot_state *x = &h->shards[i].s;
        BSON_APPEND_DOCUMENT_BEGIN(&arr, kp, &s);
        BSON_APPEND_INT32(&s, "shard", x->shard);
        BSON_APPEND_UTF8(&s, "owner", h->shards[i].owner);
        mg_append_opt(&s, "watermark", x->watermark);
        mg_append_opt(&s, "input_watermark", x->input_watermark);
        mg_append_opt(&s, "max_ts", x->max_ts);
        BSON_APPEND_INT64(&s, "events_in", (int64_t)x->events_in);
        BSON_APPEND_INT64(&s, "stored", (int64_t)x->stored);
        BSON_APPEND_INT64(&s, "duplicates", (int64_t)x->duplicates);
        BSON_APPEND_INT64(&s, "rejected", (int64_t)x->rejected);
        BSON_APPEND_INT64(&s, "late", (int64_t)x->late);
        bson_append_document_end(&arr, &s);
    }
    bson_append_array_end(d, &arr);
    BSON_APPEND_ARRAY_BEGIN(d, "positions", &arr);
    for (size_t i = 0; i < h->npos; i++) {
        char key[16];
        const char *kp;
        bson_uint32_to_string((uint32_t)i, &kp, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, kp, &s);
        BSON_APPEND_UTF8(&s, "source", h->pos[i].source);
        BSON_APPEND_INT64(&s, "position", h->pos[i].offset);
        bson_append_document_end(&arr, &s);
    }
    bson_append_array_end(d, &arr);
}

/* The commit point: the state document, replaced only if this process is
 * still the writer and no other commit came between. */
static int write_commit(hot_mongo *h)
{
    int64_t waited = 0;
    int retried = 0;
    for (;;) {
        bson_t sel = BSON_INITIALIZER, doc = BSON_INITIALIZER, reply;
        bson_error_t e;
        BSON_APPEND_UTF8(&sel, "_id", "commit");
        BSON_APPEND_UTF8(&sel, "writer", h->writer);
        if (h->committed)
            BSON_APPEND_INT64(&sel, "epoch", h->committed);
        else
            BSON_APPEND_NULL(&sel, "epoch"); /* matches a missing field too */
        append_state(h, &doc);
        int ok = mongoc_collection_replace_one(h->c[C_STATE], &sel, &doc, NULL, &reply, &e);
        int64_t matched = ok ? mg_get_int(&reply, "matchedCount", 0) : 0;
        bson_destroy(&sel);
        bson_destroy(&doc);
        bson_destroy(&reply);
        if (ok && matched == 1)
            return SS_OK;
        if (ok) {
            /* No match: another process has taken the store over, or an
             * attempt whose answer was lost did commit. */
            if (retried) {
                bson_t cur;
                bson_t f = BSON_INITIALIZER;
                BSON_APPEND_UTF8(&f, "_id", "commit");
                int rc = mg_find_one(h, C_STATE, &f, NULL, &cur, "reading the committed state");
                bson_destroy(&f);
                int mine = rc == SS_OK && mg_get_int(&cur, "epoch", 0) == h->epoch &&
                           !strcmp(mg_get_str(&cur, "writer").p, h->writer);
                bson_destroy(&cur);
                if (rc)
                    return rc;
                if (mine)
                    return SS_OK;
            }
            SS_ERROR("hot:mongo", "%s: another process has taken this store over", h->where);
            return SS_EFENCED;
        }
        int rc = mg_failed(h, &e, "committing", &waited);
        if (rc != SS_AGAIN)
            return rc;
        retried = 1;
    }
}

int mongo_commit(void *vst)
{
    hot_mongo *h = vst;
    if (!h->in_tx)
        return SS_OK;
    static const enum coll inserts[] = {C_REJECTED, C_MINUTES, C_CATEGORIES, C_METHODS};
    int rc = SS_OK;
    int64_t t0 = ss_mono_ms();
    size_t replaced = 0;
    for (size_t i = 0; i < sizeof inserts / sizeof inserts[0] && rc == SS_OK; i++)
        rc = flush_inserts(h, inserts[i]);
    for (int c = FIRST_REPLACED; c <= LAST_TAGGED && rc == SS_OK; c++) {
        replaced += h->pend[c].n;
        rc = flush_replaced(h, (enum coll)c);
    }
    int64_t t1 = ss_mono_ms();
    if (rc == SS_OK)
        rc = write_commit(h);
    if (rc)
        return rc;
    SS_DEBUG("hot:mongo",
             "%s: epoch %lld committed: %zu dimension and KPI rows in %lld ms, the "
             "commit document in %lld ms",
             h->where, (long long)h->epoch, replaced, (long long)(t1 - t0),
             (long long)(ss_mono_ms() - t1));
    mg_known_commit(h);
    h->committed = h->epoch;
    h->epoch = 0;
    h->in_tx = 0;
    pend_clear(h);
    return SS_OK;
}

/* ---- shard state ---- */

static hshard *shard_get(hot_mongo *h, int shard)
{
    for (size_t i = 0; i < h->nshards; i++)
        if (h->shards[i].s.shard == shard)
            return &h->shards[i];
    h->shards = ss_realloc(h->shards, (h->nshards + 1) * sizeof *h->shards);
    hshard *s = &h->shards[h->nshards++];
    memset(s, 0, sizeof *s);
    s->s.shard = shard;
    s->s.watermark = s->s.input_watermark = s->s.max_ts = INT64_MIN;
    return s;
}

int mongo_claim_shard(void *vst, int shard, const char *owner, ss_hot_state *s)
{
    hot_mongo *h = vst;
    if (!h->writing)
        return SS_ENOTSUP;
    hshard *x = shard_get(h, shard);
    snprintf(x->owner, sizeof x->owner, "%s", owner);
    *s = x->s;
    return SS_OK;
}

int mongo_put_state(void *vst, const ss_hot_state *s, size_t n, const char *owner,
                    const ss_position *pos, size_t npos)
{
    hot_mongo *h = vst;
    for (size_t i = 0; i < n; i++) {
        hshard *x = shard_get(h, s[i].shard);
        if (strcmp(x->owner, owner) != 0)
            return SS_EFENCED;
        x->s = s[i];
    }
    for (size_t i = 0; i < npos; i++) {
        size_t j = 0;
        while (j < h->npos && strcmp(h->pos[j].source, pos[i].source) != 0)
            j++;
        if (j == h->npos) {
            h->pos = ss_realloc(h->pos, (h->npos + 1) * sizeof *h->pos);
            h->pos[h->npos++].source = ss_strdup(pos[i].source);
        }
        h->pos[j].offset = pos[i].offset;
    }
    h->state_dirty = 1;
    return SS_OK;
}

int mongo_load_state(void *vst, void (*state_cb)(void *ctx, const ss_hot_state *s),
                     void (*pos_cb)(void *ctx, const char *source, int64_t offset), void *ctx)
{
    hot_mongo *h = vst;
    /* A writer's own copy is the committed state (it is the only writer);
     * others read the store. */
    if (!h->writing) {
        bson_t doc;
        int rc = load_commit(h, &doc);
        bson_destroy(&doc);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < h->nshards && state_cb; i++)
        state_cb(ctx, &h->shards[i].s);
    for (size_t i = 0; i < h->npos && pos_cb; i++)
        pos_cb(ctx, h->pos[i].source, h->pos[i].offset);
    return SS_OK;
}

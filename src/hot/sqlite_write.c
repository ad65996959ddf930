/* The SQLite hot store's writes and the reads the engine makes while it
 * writes: facts, late and rejected events, dimensions, KPI rows, the shards'
 * state and input positions, and the lookups of events and orders. */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "hot/sqlite_int.h"

int sqlite_put_events(void *vst, const ss_event *const *evs, const ss_attrib *attrib, size_t n,
                      uint8_t *is_new)
{
    return sq_facts_put(vst, evs, attrib, n, is_new);
}

int sqlite_put_late(void *vst, const ss_event *ev, const char *raw, size_t len, int64_t watermark,
                    int *is_new)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_INS_LATE];
    char ts[SS_ISO_LEN], wm[SS_ISO_LEN], now[SS_ISO_LEN];
    bind_str(q, 1, ev->event_id);
    sqlite3_bind_text(q, 2, ss_event_type_name(ev->type), -1, SQLITE_STATIC);
    bind_time(q, 3, ev->ts, ts);
    bind_time(q, 4, watermark, wm);
    bind_time(q, 5, ss_now_ms(), now);
    sqlite3_bind_text(q, 6, raw, (int)len, SQLITE_STATIC);
    int rc = sq_run(h, S_INS_LATE);
    *is_new = rc == SS_OK && sqlite3_changes(h->db) > 0;
    return rc;
}

int sqlite_put_rejected(void *vst, const char *raw, size_t len, size_t raw_bytes,
                        const char *reason, const char *source, int64_t position)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_INS_REJECTED];
    char id[33], now[SS_ISO_LEN];
    ss_hot_raw_id(raw, len, raw_bytes, id);
    sqlite3_bind_text(q, 1, id, 32, SQLITE_STATIC);
    bind_time(q, 2, ss_now_ms(), now);
    sqlite3_bind_text(q, 3, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, position);
    sqlite3_bind_text(q, 5, reason, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 6, raw, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 7, (sqlite3_int64)raw_bytes);
    return sq_run(h, S_INS_REJECTED);
}

/* ---- the transaction's customers ---- */

void sq_customers_clear(hot_sqlite *h)
{
    if (h->cn)
        memset(h->cidx, 0, h->ccap * sizeof *h->cidx);
    h->cn = 0;
    h->carena.len = 0;
}

static ss_str cust_val(const hot_sqlite *h, const sq_cust *c, int i)
{
    return (ss_str){h->carena.data + c->off[i], c->len[i]};
}

static void cust_set(hot_sqlite *h, sq_cust *c, int64_t ts, const ss_str *v)
{
    c->ts = ts;
    for (int i = 0; i < 4; i++) {
        c->off[i] = (uint32_t)h->carena.len;
        c->len[i] = v[i].n;
        ss_buf_put(&h->carena, v[i].p, v[i].n);
    }
}

/* ---- known customers ----
 * Most orders are by customers the store has already: a customer's row is
 * that of the earliest order, and a later order cannot change it. The
 * writer remembers the customers it has stored, each with the time of the
 * order it stored, and leaves out of the transaction an order later than
 * that: the stored row's is no later (another writer can only have stored
 * an earlier one). Anything another connection commits may have deleted
 * customers (the archiver moves them to cold storage with their last
 * orders), so it makes the writer forget them all; so does a table that
 * reaches KNOWN_MAX slots. Two hashes of the id, 96 bits, tell customers
 * apart, as in the order map. */
#define KNOWN_MAX ((size_t)1 << 22)

void sq_customers_forget(hot_sqlite *h)
{
    ss_free_table(h->ktab, h->kcap, sizeof *h->ktab);
    h->ktab = NULL;
    h->kcap = h->kn = 0;
}

static sq_known *known_slot(const hot_sqlite *h, uint64_t hv, uint32_t h2)
{
    size_t mask = h->kcap - 1, j = hv & mask;
    while (h->ktab[j].h && !(h->ktab[j].h == hv && h->ktab[j].h2 == h2))
        j = (j + 1) & mask;
    return &h->ktab[j];
}

static void known_put(hot_sqlite *h, uint64_t hv, uint32_t h2, int64_t ts)
{
    if (4 * (h->kn + 1) > 3 * h->kcap) {
        size_t cap = h->kcap ? 2 * h->kcap : 4096;
        if (cap > KNOWN_MAX) {
            sq_customers_forget(h);
            cap = 4096;
        }
        sq_known *old = h->ktab;
        size_t ocap = h->kcap;
        h->ktab = ss_calloc_table(cap, sizeof *h->ktab);
        h->kcap = cap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].h)
                *known_slot(h, old[i].h, old[i].h2) = old[i];
        ss_free_table(old, ocap, sizeof *old);
    }
    sq_known *k = known_slot(h, hv, h2);
    if (!k->h) {
        *k = (sq_known){hv, h2, ts};
        h->kn++;
    } else if (ts < k->ts) {
        k->ts = ts;
    }
}

/* 1 when the customer is stored from an order earlier than ts. */
static int known_before(const hot_sqlite *h, uint64_t hv, uint32_t h2, int64_t ts)
{
    if (!h->kn)
        return 0;
    const sq_known *k = known_slot(h, hv, h2);
    return k->h && k->ts < ts;
}

/* Keeps the customer's earliest order of the transaction. */
static void cust_add(hot_sqlite *h, const ss_event *ev)
{
    const ss_order *o = &ev->u.order;
    uint64_t hv = ss_hash_bytes(o->customer_id.p, o->customer_id.n, 23) | 1;
    uint32_t h2 = sq_id_h2(o->customer_id);
    if (known_before(h, hv, h2, ev->ts))
        return;
    if (2 * (h->cn + 1) > h->ccap) {
        size_t cap = h->ccap ? 2 * h->ccap : 1024;
        free(h->cidx);
        h->cidx = ss_calloc(cap, sizeof *h->cidx);
        h->ccap = cap;
        h->cvec = ss_realloc(h->cvec, cap / 2 * sizeof *h->cvec);
        for (size_t i = 0; i < h->cn; i++) {
            size_t j = h->cvec[i].h & (cap - 1);
            while (h->cidx[j])
                j = (j + 1) & (cap - 1);
            h->cidx[j] = (uint32_t)i + 1;
        }
    }
    size_t mask = h->ccap - 1, j = hv & mask;
    const ss_str vals[4] = {o->customer_id, o->customer_segment, o->city, o->country};
    for (; h->cidx[j]; j = (j + 1) & mask) {
        sq_cust *c = &h->cvec[h->cidx[j] - 1];
        ss_str id = cust_val(h, c, 0);
        if (c->h != hv || id.n != o->customer_id.n || memcmp(id.p, o->customer_id.p, id.n) != 0)
            continue;
        ss_str cur[3] = {cust_val(h, c, 1), cust_val(h, c, 2), cust_val(h, c, 3)};
        if (ss_hot_customer_wins(ev->ts, vals + 1, c->ts, cur))
            cust_set(h, c, ev->ts, vals);
        return;
    }
    h->cidx[j] = (uint32_t)h->cn + 1;
    sq_cust *c = &h->cvec[h->cn++];
    c->h = hv;
    c->h2 = h2;
    cust_set(h, c, ev->ts, vals);
}

/* The arena the sort below compares in (qsort passes no context). */
static _Thread_local const char *sort_arena;

static int by_customer_id(const void *a, const void *b)
{
    const sq_cust *x = *(const sq_cust *const *)a, *y = *(const sq_cust *const *)b;
    uint32_t n = x->len[0] < y->len[0] ? x->len[0] : y->len[0];
    int k = memcmp(sort_arena + x->off[0], sort_arena + y->off[0], n);
    return k ? k : (x->len[0] > y->len[0]) - (x->len[0] < y->len[0]);
}

/* ---- ss_customer_rows(?1): the transaction's customers as a table ----
 *
 * One INSERT ... SELECT writes them all: a statement per customer spent a
 * third of its time starting, binding and resetting. ?1 is a pointer of type
 * "ss_customer_rows" to a cust_rows. */

typedef struct cust_rows {
    const hot_sqlite *h;
    const sq_cust **v; /* in key order */
    size_t n;
} cust_rows;

typedef struct cr_cursor {
    sqlite3_vtab_cursor base;
    const cust_rows *r;
    size_t i;
    char ts[SS_ISO_LEN];
} cr_cursor;

enum { CR_ROWS = 5 }; /* the hidden column of the pointer */

static int cr_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    (void)aux;
    (void)argc;
    (void)argv;
    (void)err;
    int rc = sqlite3_declare_vtab(db, "CREATE TABLE x(customer_id, customer_segment, city, "
                                      "country, first_seen, rows HIDDEN)");
    if (rc != SQLITE_OK)
        return rc;
    *out = sqlite3_malloc(sizeof **out);
    if (!*out)
        return SQLITE_NOMEM;
    memset(*out, 0, sizeof **out);
    return SQLITE_OK;
}

static int cr_disconnect(sqlite3_vtab *vtab)
{
    sqlite3_free(vtab);
    return SQLITE_OK;
}

static int cr_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
    (void)vtab;
    for (int i = 0; i < info->nConstraint; i++)
        if (info->aConstraint[i].iColumn == CR_ROWS && info->aConstraint[i].usable &&
            info->aConstraint[i].op == SQLITE_INDEX_CONSTRAINT_EQ) {
            info->aConstraintUsage[i].argvIndex = 1;
            info->aConstraintUsage[i].omit = 1;
            info->estimatedCost = 1;
            return SQLITE_OK;
        }
    return SQLITE_CONSTRAINT;
}

static int cr_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out)
{
    (void)vtab;
    cr_cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    *out = &c->base;
    return SQLITE_OK;
}

static int cr_close(sqlite3_vtab_cursor *cur)
{
    sqlite3_free(cur);
    return SQLITE_OK;
}

static int cr_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
                     sqlite3_value **argv)
{
    (void)idx_num;
    (void)idx_str;
    cr_cursor *c = (cr_cursor *)cur;
    c->r = argc == 1 ? sqlite3_value_pointer(argv[0], "ss_customer_rows") : NULL;
    c->i = 0;
    return SQLITE_OK;
}

static int cr_next(sqlite3_vtab_cursor *cur)
{
    ((cr_cursor *)cur)->i++;
    return SQLITE_OK;
}

static int cr_eof(sqlite3_vtab_cursor *cur)
{
    const cr_cursor *c = (const cr_cursor *)cur;
    return !c->r || c->i >= c->r->n;
}

static int cr_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col)
{
    cr_cursor *c = (cr_cursor *)cur;
    const sq_cust *x = c->r->v[c->i];
    if (col < 4) {
        ss_str v = cust_val(c->r->h, x, col);
        sqlite3_result_text(ctx, v.p, (int)v.n, SQLITE_STATIC);
    } else if (col == 4) {
        ss_time_format_iso(x->ts, c->ts);
        sqlite3_result_text(ctx, c->ts, SS_ISO_LEN, SQLITE_TRANSIENT);
    }
    return SQLITE_OK;
}

static int cr_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = (sqlite3_int64)((cr_cursor *)cur)->i;
    return SQLITE_OK;
}

static const sqlite3_module cust_rows_module = {
    .iVersion = 1,
    .xConnect = cr_connect,
    .xBestIndex = cr_best_index,
    .xDisconnect = cr_disconnect,
    .xOpen = cr_open,
    .xClose = cr_close,
    .xFilter = cr_filter,
    .xNext = cr_next,
    .xEof = cr_eof,
    .xColumn = cr_column,
    .xRowid = cr_rowid,
};

int sq_customers_register(sqlite3 *db)
{
    return sqlite3_create_module(db, "ss_customer_rows", &cust_rows_module, NULL);
}

/* Inserts the transaction's customers in key order: each insert then finds
 * its place on the pages the one before it read, and new customers, whose
 * ids grow, go to the end of the table. */
int sq_customers_flush(hot_sqlite *h)
{
    if (!h->cn)
        return SS_OK;
    const sq_cust **order = ss_malloc(h->cn * sizeof *order);
    size_t n = h->cn;
    int sorted = 1;
    sort_arena = h->carena.data;
    for (size_t i = 0; i < n; i++) {
        order[i] = &h->cvec[i];
        sorted = sorted && (i == 0 || by_customer_id(&order[i - 1], &order[i]) < 0);
    }
    /* New customers arrive in the order of their numbers when ids are
     * numbered as they come (the generator's are). */
    if (!sorted)
        qsort(order, n, sizeof *order, by_customer_id);
    cust_rows rows = {h, order, n};
    sqlite3_bind_pointer(h->st[S_INS_CUSTOMER], 1, &rows, "ss_customer_rows", NULL);
    int rc = sq_run(h, S_INS_CUSTOMER);
    sqlite3_bind_null(h->st[S_INS_CUSTOMER], 1);
    free(order);
    return rc;
}

void sq_customers_committed(hot_sqlite *h)
{
    for (size_t i = 0; i < h->cn; i++) {
        const sq_cust *c = &h->cvec[i];
        known_put(h, c->h, c->h2, c->ts);
    }
    sq_customers_clear(h);
}

int sqlite_put_order_dims(void *vst, const ss_event *ev, unsigned what)
{
    hot_sqlite *h = vst;
    const ss_order *o = &ev->u.order;
    int rc = SS_OK;
    if (what & SS_DIMS_CUSTOMER)
        cust_add(h, ev);
    if (rc == SS_OK && (what & SS_DIMS_PRODUCT)) {
        sqlite3_stmt *q = h->st[S_UPS_PRODUCT];
        bind_str(q, 1, o->product_id);
        bind_str(q, 2, o->product_name);
        bind_str(q, 3, o->category);
        sqlite3_bind_double(q, 4, (double)o->unit_price / 100.0);
        rc = sq_run(h, S_UPS_PRODUCT);
    }
    if (rc == SS_OK && (what & SS_DIMS_PLACES)) {
        bind_str(h->st[S_INS_CATEGORY], 1, o->category);
        rc = sq_run(h, S_INS_CATEGORY);
        bind_str(h->st[S_INS_COUNTRY], 1, o->country);
        rc = rc ? rc : sq_run(h, S_INS_COUNTRY);
        bind_str(h->st[S_INS_CITY], 1, o->city);
        bind_str(h->st[S_INS_CITY], 2, o->country);
        rc = rc ? rc : sq_run(h, S_INS_CITY);
        bind_str(h->st[S_INS_METHOD], 1, o->payment_method);
        rc = rc ? rc : sq_run(h, S_INS_METHOD);
    }
    return rc;
}

int sqlite_put_place(void *vst, const char *city, const char *country, const char *country_code,
                     const char *region, double lat, double lon)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_UPS_PLACE_COUNTRY];
    sqlite3_bind_text(q, 1, country, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, country_code, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, region, -1, SQLITE_STATIC);
    int rc = sq_run(h, S_UPS_PLACE_COUNTRY);
    q = h->st[S_UPS_PLACE_CITY];
    sqlite3_bind_text(q, 1, city, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, country, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 3, lat);
    sqlite3_bind_double(q, 4, lon);
    return rc ? rc : sq_run(h, S_UPS_PLACE_CITY);
}

int sqlite_put_minute(void *vst, int64_t minute)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_INS_MINUTE];
    char ts[SS_ISO_LEN];
    ss_hot_minute m;
    ss_hot_minute_of(minute, &m);
    bind_time(q, 1, minute, ts);
    sqlite3_bind_text(q, 2, ts, 10, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, m.hour);
    sqlite3_bind_int(q, 4, m.minute);
    sqlite3_bind_int(q, 5, m.weekday);
    sqlite3_bind_text(q, 6, m.weekday_name, -1, SQLITE_STATIC);
    return sq_run(h, S_INS_MINUTE);
}

int sqlite_put_kpis(void *vst, const ss_kpi_row *rows, size_t n)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_UPS_KPI];
    char ts[SS_ISO_LEN];
    for (size_t i = 0; i < n; i++) {
        const ss_kpi_row *r = &rows[i];
        bind_time(q, 1, r->minute, ts);
        sqlite3_bind_text(q, 2, ss_dim_name(r->dim), -1, SQLITE_STATIC);
        bind_str(q, 3, r->value);
        sqlite3_bind_int(q, 4, r->shard);
        sqlite3_bind_int64(q, 5, r->k.orders);
        sqlite3_bind_int64(q, 6, r->k.units);
        sqlite3_bind_int64(q, 7, r->k.gross_cents);
        sqlite3_bind_int64(q, 8, r->k.paid_cents);
        sqlite3_bind_int64(q, 9, r->k.attempts);
        sqlite3_bind_int64(q, 10, r->k.failed);
        sqlite3_bind_int64(q, 11, r->k.cancellations);
        sqlite3_bind_int64(q, 12, r->k.cancelled_cents);
        sqlite3_bind_int(q, 13, r->final);
        int rc = sq_run(h, S_UPS_KPI);
        if (rc)
            return rc;
    }
    return SS_OK;
}

static void bind_opt(sqlite3_stmt *q, int i, int64_t v)
{
    if (v == INT64_MIN)
        sqlite3_bind_null(q, i);
    else
        sqlite3_bind_int64(q, i, v);
}

static int64_t column_opt(sqlite3_stmt *q, int i)
{
    return sqlite3_column_type(q, i) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(q, i);
}

static void read_state(sqlite3_stmt *q, ss_hot_state *s)
{
    s->shard = sqlite3_column_int(q, 0);
    s->watermark = column_opt(q, 1);
    s->input_watermark = column_opt(q, 2);
    s->max_ts = column_opt(q, 3);
    s->events_in = (uint64_t)sqlite3_column_int64(q, 4);
    s->stored = (uint64_t)sqlite3_column_int64(q, 5);
    s->duplicates = (uint64_t)sqlite3_column_int64(q, 6);
    s->rejected = (uint64_t)sqlite3_column_int64(q, 7);
    s->late = (uint64_t)sqlite3_column_int64(q, 8);
}

int sqlite_claim_shard(void *vst, int shard, const char *owner, ss_hot_state *s)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_CLAIM_SHARD];
    sqlite3_bind_int(q, 1, shard);
    sqlite3_bind_text(q, 2, owner, -1, SQLITE_STATIC);
    int rc = sq_run(h, S_CLAIM_SHARD);
    if (rc)
        return rc;
    q = h->st[S_SEL_SHARD];
    sqlite3_bind_int(q, 1, shard);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        read_state(q, s);
    sqlite3_reset(q);
    if (rc != SQLITE_ROW)
        return sq_db_error(h, "reading a shard's state");
    return sq_facts_claim(h, s);
}

/* The shard's committed watermark, INT64_MIN when it has none. */
static int committed_watermark(hot_sqlite *h, int shard, int64_t *wm)
{
    sqlite3_stmt *q = h->st[S_SEL_SHARD];
    sqlite3_bind_int(q, 1, shard);
    int rc = sqlite3_step(q);
    *wm = rc == SQLITE_ROW ? column_opt(q, 1) : INT64_MIN;
    sqlite3_reset(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SS_OK : sq_db_error(h, "reading a watermark");
}

/* Marks final the shard's KPI rows of the minutes that end after from and
 * at or before to: those the watermark has passed since from. */
static int mark_final(hot_sqlite *h, int shard, int64_t from, int64_t to)
{
    char a[SS_ISO_LEN], b[SS_ISO_LEN];
    sqlite3_stmt *q = h->st[S_FINAL_KPI];
    if (from != INT64_MIN)
        bind_time(q, 2, from - SS_MS_PER_MIN, a);
    else
        sqlite3_bind_text(q, 2, "", 0, SQLITE_STATIC);
    bind_time(q, 3, to - SS_MS_PER_MIN, b);
    sqlite3_bind_int(q, 4, shard);
    int rc = SS_OK;
    for (int d = 0; d < SS_DIM_COUNT && !rc; d++) {
        sqlite3_bind_text(q, 1, ss_dim_name(d), -1, SQLITE_STATIC);
        rc = sq_run(h, S_FINAL_KPI);
    }
    return rc;
}

int sqlite_put_state(void *vst, const ss_hot_state *s, size_t n, const char *owner,
                     const ss_position *pos, size_t npos)
{
    hot_sqlite *h = vst;
    int rc = SS_OK;
    int64_t lowest = INT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (s[i].watermark < lowest)
            lowest = s[i].watermark;
    if (n)
        sq_facts_watermark(h, lowest);
    for (size_t i = 0; i < n && !rc; i++) {
        int64_t before = INT64_MIN;
        if (s[i].watermark != INT64_MIN)
            rc = committed_watermark(h, s[i].shard, &before);
        if (rc == SS_OK && s[i].watermark != INT64_MIN &&
            (before == INT64_MIN || s[i].watermark > before))
            rc = mark_final(h, s[i].shard, before, s[i].watermark);
        if (rc)
            break;
        sqlite3_stmt *q = h->st[S_UPD_STATE];
        sqlite3_bind_int(q, 1, s[i].shard);
        sqlite3_bind_text(q, 2, owner, -1, SQLITE_STATIC);
        bind_opt(q, 3, s[i].watermark);
        bind_opt(q, 4, s[i].input_watermark);
        bind_opt(q, 5, s[i].max_ts);
        sqlite3_bind_int64(q, 6, (int64_t)s[i].events_in);
        sqlite3_bind_int64(q, 7, (int64_t)s[i].stored);
        sqlite3_bind_int64(q, 8, (int64_t)s[i].duplicates);
        sqlite3_bind_int64(q, 9, (int64_t)s[i].rejected);
        sqlite3_bind_int64(q, 10, (int64_t)s[i].late);
        rc = sq_run(h, S_UPD_STATE);
        /* No row: another owner has claimed the shard since this one did. */
        if (rc == SS_OK && sqlite3_changes(h->db) == 0)
            rc = SS_EFENCED;
    }
    for (size_t i = 0; i < npos && !rc; i++) {
        sqlite3_stmt *q = h->st[S_UPS_POSITION];
        sqlite3_bind_text(q, 1, pos[i].source, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, pos[i].offset);
        rc = sq_run(h, S_UPS_POSITION);
    }
    return rc;
}

int sqlite_load_state(void *vst, void (*state_cb)(void *ctx, const ss_hot_state *s),
                      void (*pos_cb)(void *ctx, const char *source, int64_t offset), void *ctx)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_SEL_STATE];
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        ss_hot_state s;
        read_state(q, &s);
        if (state_cb)
            state_cb(ctx, &s);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return sq_db_error(h, "reading engine state");
    q = h->st[S_SEL_POSITIONS];
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if (pos_cb)
            pos_cb(ctx, (const char *)sqlite3_column_text(q, 0), sqlite3_column_int64(q, 1));
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? SS_OK : sq_db_error(h, "reading input positions");
}

int sqlite_read_kpis(void *vst, int64_t from, int64_t to, int dim, int open_only, ss_kpi_cb cb,
                     void *ctx)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q;
    /* One text per case: "(?3 IS NULL OR dimension = ?3)" would keep SQLite
     * from seeking to the dimension, the first column of the key. */
#define KPI_READ(dim_cond)                                                                         \
    "SELECT minute_start, dimension, dimension_value, shard, orders, units, "                      \
    "gross_revenue_cents, paid_revenue_cents, payment_attempts, failed_payments, cancellations, "  \
    "cancelled_revenue_cents, final FROM kpi_minute_data WHERE " dim_cond "minute_start >= ?1 "    \
    "AND minute_start < ?2 AND (?4 = 0 OR final = 0) ORDER BY minute_start"
    const char *text = dim >= 0 ? KPI_READ("dimension = ?3 AND ") : KPI_READ("");
#undef KPI_READ
    if (sqlite3_prepare_v2(h->db, text, -1, &q, NULL) != SQLITE_OK)
        return sq_db_error(h, "preparing a KPI read");
    char a[SS_ISO_LEN], b[SS_ISO_LEN];
    bind_time(q, 1, from, a);
    bind_time(q, 2, to, b);
    if (dim >= 0)
        sqlite3_bind_text(q, 3, ss_dim_name(dim), -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, open_only);
    int rc, out = SS_OK;
    while (out == SS_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        ss_kpi_row r = {0};
        const char *m = (const char *)sqlite3_column_text(q, 0);
        if (ss_time_parse_iso(m, strlen(m), &r.minute))
            continue;
        r.dim = ss_dim_parse((const char *)sqlite3_column_text(q, 1),
                             (size_t)sqlite3_column_bytes(q, 1));
        r.value.p = (const char *)sqlite3_column_text(q, 2);
        r.value.n = (uint32_t)sqlite3_column_bytes(q, 2);
        r.shard = sqlite3_column_int(q, 3);
        r.k.orders = sqlite3_column_int64(q, 4);
        r.k.units = sqlite3_column_int64(q, 5);
        r.k.gross_cents = sqlite3_column_int64(q, 6);
        r.k.paid_cents = sqlite3_column_int64(q, 7);
        r.k.attempts = sqlite3_column_int64(q, 8);
        r.k.failed = sqlite3_column_int64(q, 9);
        r.k.cancellations = sqlite3_column_int64(q, 10);
        r.k.cancelled_cents = sqlite3_column_int64(q, 11);
        r.final = sqlite3_column_int(q, 12);
        if (r.dim >= 0)
            out = cb(ctx, &r);
    }
    if (out == SS_OK && rc != SQLITE_DONE)
        out = sq_db_error(h, "reading KPIs");
    sqlite3_finalize(q);
    return out;
}

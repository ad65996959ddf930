/* The SQLite hot store's facts: events go into blocks (block.h), one block
 * row per table being filled at a time (its tail), rewritten at each commit
 * until it holds SS_BLOCK_ROWS events. What the writer needs to know about
 * stored events without reading blocks stays in memory:
 *
 * - recent ids: the event_id of every stored event with a time at or after
 *   the horizon (the lowest watermark of the store's shards less a window),
 *   so that a repeated event whose window is still open is told apart
 *   exactly. An event older than the horizon is late, and the engine asks
 *   has_event, which reads the blocks around its time.
 * - the order map: each hot order's dimensions by order_id, for the
 *   attribution of payments and cancellations (a 64-bit and a 32-bit hash
 *   of the id; 32 bytes an order).
 *
 * Both are loaded from the blocks when the store is opened and when a shard
 * is claimed (another process may have written since), and follow the
 * writer's transactions: a rollback takes back what it added. */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "hot/block_store.h"
#include "hot/sqlite_int.h"

/* ---- recent ids ---- */

typedef struct rid {
    uint64_t h; /* 0: empty */
    int64_t ts;
    uint32_t off, len;
    uint64_t txn; /* the transaction that added it; 0: read from the store */
} rid;

static void rids_insert_slot(sq_facts *f, const rid *x)
{
    size_t mask = f->rcap - 1;
    size_t j = x->h & mask;
    while (f->rtab[j].h)
        j = (j + 1) & mask;
    f->rtab[j] = *x;
    f->rn++;
}

static void rids_rehash(sq_facts *f, size_t want)
{
    rid *old = f->rtab;
    size_t ocap = f->rcap, cap = 1024;
    while (cap < 2 * want + 16)
        cap *= 2;
    f->rtab = ss_calloc_table(cap, sizeof *f->rtab);
    f->rcap = cap;
    f->rn = 0;
    for (size_t i = 0; i < ocap; i++)
        if (old[i].h)
            rids_insert_slot(f, &old[i]);
    ss_free_table(old, ocap, sizeof *old);
}

/* Rebuilds the table keeping entries with ts >= keep_from that the
 * transaction drop_txn did not add, compacting the arena. */
static void rids_rebuild(sq_facts *f, int64_t keep_from, uint64_t drop_txn, size_t want)
{
    rid *old = f->rtab;
    size_t ocap = f->rcap;
    ss_buf arena;
    ss_buf_init(&arena, f->rarena.len + 64);
    size_t keep = 0;
    for (size_t i = 0; i < ocap; i++)
        keep += old[i].h && old[i].ts >= keep_from && (!drop_txn || old[i].txn != drop_txn);
    size_t cap = 1024;
    while (cap < 2 * (keep > want ? keep : want) + 16)
        cap *= 2;
    f->rtab = ss_calloc_table(cap, sizeof *f->rtab);
    f->rcap = cap;
    f->rn = 0;
    for (size_t i = 0; i < ocap; i++) {
        rid x = old[i];
        if (!x.h || x.ts < keep_from || (drop_txn && x.txn == drop_txn))
            continue;
        size_t at = arena.len;
        ss_buf_put(&arena, f->rarena.data + x.off, x.len);
        x.off = (uint32_t)at;
        rids_insert_slot(f, &x);
    }
    ss_free_table(old, ocap, sizeof *old);
    ss_buf_free(&f->rarena);
    f->rarena = arena;
}

static rid *rids_find(sq_facts *f, ss_str id, uint64_t h)
{
    if (!f->rcap)
        return NULL;
    size_t mask = f->rcap - 1;
    for (size_t j = h & mask; f->rtab[j].h; j = (j + 1) & mask) {
        rid *x = &f->rtab[j];
        if (x->h == h && x->len == id.n && memcmp(f->rarena.data + x->off, id.p, id.n) == 0)
            return x;
    }
    return NULL;
}

static uint64_t id_hash(ss_str id)
{
    return ss_event_hash(id) | 1;
}

/* Adds an id of hash h (id_hash) for transaction txn (0: read from the
 * store); 0 when it was there already. */
static int rids_add_h(sq_facts *f, ss_str id, uint64_t h, int64_t ts, uint64_t txn)
{
    if (rids_find(f, id, h))
        return 0;
    if (2 * (f->rn + 1) > f->rcap)
        rids_rehash(f, 2 * (f->rn + 1));
    rid x = {h, ts, (uint32_t)f->rarena.len, id.n, txn};
    ss_buf_put(&f->rarena, id.p, id.n);
    rids_insert_slot(f, &x);
    return 1;
}

static int rids_add(sq_facts *f, ss_str id, int64_t ts, uint64_t txn)
{
    return rids_add_h(f, id, id_hash(id), ts, txn);
}

/* ---- dimension values and the order map ---- */

typedef struct oent {
    uint64_t h; /* 0: empty */
    uint32_t h2;
    uint32_t minute; /* minutes since the epoch of the order */
    uint32_t dim[4]; /* city, country, category, payment_method */
} oent;

static uint32_t dict_code(sq_facts *f, ss_str v)
{
    uint64_t h = ss_hash_bytes(v.p, v.n, 5);
    if (2 * (f->dn + 1) > f->dcap) {
        size_t cap = f->dcap ? 2 * f->dcap : 256;
        uint32_t *tab = ss_calloc(cap, sizeof *tab);
        for (uint32_t k = 1; k <= f->dn; k++) {
            const ss_str *s = &f->dvals[k];
            size_t j = ss_hash_bytes(s->p, s->n, 5) & (cap - 1);
            while (tab[j])
                j = (j + 1) & (cap - 1);
            tab[j] = k;
        }
        free(f->dtab);
        f->dtab = tab;
        f->dcap = cap;
    }
    size_t mask = f->dcap - 1, j = h & mask;
    for (; f->dtab[j]; j = (j + 1) & mask) {
        const ss_str *s = &f->dvals[f->dtab[j]];
        if (s->n == v.n && memcmp(s->p, v.p, v.n) == 0)
            return f->dtab[j];
    }
    if (f->dn + 2 > f->dvcap) {
        f->dvcap = f->dvcap ? 2 * f->dvcap : 256;
        f->dvals = ss_realloc(f->dvals, f->dvcap * sizeof *f->dvals);
    }
    char *copy = ss_malloc(v.n + 1);
    memcpy(copy, v.p, v.n);
    f->dvals[++f->dn] = (ss_str){copy, v.n};
    f->dtab[j] = f->dn;
    return f->dn;
}

static void omap_put_slot(oent *tab, size_t cap, const oent *x)
{
    size_t j = x->h & (cap - 1);
    while (tab[j].h && !(tab[j].h == x->h && tab[j].h2 == x->h2))
        j = (j + 1) & (cap - 1);
    tab[j] = *x;
}

static void omap_grow(sq_facts *f, size_t want, uint32_t keep_from)
{
    size_t cap = 1024;
    while (cap * 3 < want * 4 + 64)
        cap *= 2;
    oent *tab = ss_calloc_table(cap, sizeof *tab);
    size_t n = 0;
    for (size_t i = 0; i < f->ocap; i++)
        if (f->otab[i].h && f->otab[i].minute >= keep_from) {
            omap_put_slot(tab, cap, &f->otab[i]);
            n++;
        }
    ss_free_table(f->otab, f->ocap, sizeof *f->otab);
    f->otab = tab;
    f->ocap = cap;
    f->on = n;
}

static oent *omap_find(sq_facts *f, uint64_t h, uint32_t h2)
{
    if (!f->ocap)
        return NULL;
    size_t mask = f->ocap - 1;
    for (size_t j = h & mask; f->otab[j].h; j = (j + 1) & mask)
        if (f->otab[j].h == h && f->otab[j].h2 == h2)
            return &f->otab[j];
    return NULL;
}

/* The order map's two hashes of an order id. */
static sq_ohash order_hash_h(ss_str order_id, uint64_t h)
{
    return (sq_ohash){h | 1, sq_id_h2(order_id)};
}

static sq_ohash order_hash(ss_str order_id)
{
    return order_hash_h(order_id, ss_event_hash(order_id));
}

/* Adds an order of hashes oh (order_hash); 1 when it is new to the map. */
static int omap_add_h(sq_facts *f, sq_ohash oh, int64_t ts, const ss_str dims[4])
{
    oent x = {oh.h, oh.h2, 0, {0}};
    x.minute = (uint32_t)(ts / SS_MS_PER_MIN);
    oent *cur = omap_find(f, x.h, x.h2);
    /* An order id's first order (by time) gives its dimensions. */
    if (cur && cur->minute <= x.minute)
        return 0;
    for (int i = 0; i < 4; i++)
        x.dim[i] = dict_code(f, dims[i]);
    if (cur) {
        *cur = x;
        return 0;
    }
    if (4 * (f->on + 1) > 3 * f->ocap)
        omap_grow(f, f->on + 1, 0); /* twice the slots: at most 3/8 full */
    omap_put_slot(f->otab, f->ocap, &x);
    f->on++;
    return 1;
}

static int omap_add(sq_facts *f, ss_str order_id, int64_t ts, const ss_str dims[4])
{
    return omap_add_h(f, order_hash(order_id), ts, dims);
}

/* Removes an entry by backward shifting (linear probing). */
static void omap_del(sq_facts *f, uint64_t h, uint32_t h2)
{
    oent *e = omap_find(f, h, h2);
    if (!e)
        return;
    size_t mask = f->ocap - 1, i = (size_t)(e - f->otab), j = i;
    f->otab[i].h = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (!f->otab[j].h)
            break;
        size_t k = f->otab[j].h & mask;
        if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
            f->otab[i] = f->otab[j];
            f->otab[j].h = 0;
            i = j;
        }
    }
    f->on--;
}

/* ---- loading from the blocks ---- */

/* Reads the blocks of every table with id > after[t] into the recent ids
 * (rows at or after from) and the order map; after[] moves to the newest. */
static int load_blocks(hot_sqlite *h, int64_t from)
{
    sq_facts *f = &h->facts;
    for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
        const ss_block_table *bt = &ss_block_tables[t];
        char sql[200];
        snprintf(sql, sizeof sql,
                 "SELECT id, max_ts, data FROM %s WHERE id > ?1 AND (?2 OR max_ts >= ?3) ORDER "
                 "BY id",
                 bt->blocks);
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(h->db, sql, -1, &q, NULL) != SQLITE_OK)
            return sq_db_error(h, "reading blocks");
        sqlite3_bind_int64(q, 1, f->loaded[t]);
        sqlite3_bind_int(q, 2, t == 0);
        sqlite3_bind_int64(q, 3, from);
        int rc, out = SS_OK;
        while (out == SS_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
            int64_t id = sqlite3_column_int64(q, 0);
            ss_block_dec *d = &f->scratch[t];
            if (ss_block_dec_load(d, sqlite3_column_blob(q, 2),
                                  (size_t)sqlite3_column_bytes(q, 2)) ||
                ss_block_dec_col(d, SS_BCOL_EVENT_ID) || ss_block_dec_col(d, SS_BCOL_TS)) {
                SS_ERROR("hot:sqlite", "'%s': block %lld of %s is damaged", h->path, (long long)id,
                         bt->blocks);
                out = SS_EIO;
                break;
            }
            if (sqlite3_column_int64(q, 1) >= from)
                for (uint32_t r = 0; r < d->n; r++)
                    if (d->ints[SS_BCOL_TS][r] >= from)
                        rids_add(f, d->strs[SS_BCOL_EVENT_ID][r], d->ints[SS_BCOL_TS][r], 0);
            if (t == 0) {
                static const char *const names[4] = {"city", "country", "category",
                                                     "payment_method"};
                int cols[4];
                for (int k = 0; k < 4; k++) {
                    cols[k] = ss_block_col_index(bt, names[k]);
                    if (ss_block_dec_col(d, cols[k]))
                        out = SS_EIO;
                }
                if (ss_block_dec_col(d, SS_BCOL_ORDER_ID))
                    out = SS_EIO;
                for (uint32_t r = 0; r < d->n && out == SS_OK; r++) {
                    ss_str dims[4];
                    for (int k = 0; k < 4; k++)
                        dims[k] = d->strs[cols[k]][r];
                    omap_add(f, d->strs[SS_BCOL_ORDER_ID][r], d->ints[SS_BCOL_TS][r], dims);
                }
            }
            f->loaded[t] = id;
        }
        if (out == SS_OK && rc != SQLITE_DONE)
            out = sq_db_error(h, "reading blocks");
        sqlite3_finalize(q);
        if (out)
            return out;
    }
    return SS_OK;
}

static int64_t horizon_of(int64_t watermark)
{
    if (watermark == INT64_MIN)
        return INT64_MIN;
    /* An event is on time while its window ends after the watermark. */
    return ss_time_floor(watermark, SS_MS_PER_MIN) - SS_MS_PER_MIN;
}

void sq_facts_init(hot_sqlite *h)
{
    sq_facts *f = &h->facts;
    for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
        ss_block_enc_init(&f->tail[t].enc, &ss_block_tables[t]);
        ss_block_dec_init(&f->scratch[t], &ss_block_tables[t]);
        ss_block_dec_init(&f->probe[t], &ss_block_tables[t]);
    }
    ss_buf_init(&f->out, 1 << 16);
    ss_buf_init(&f->rarena, 1 << 16);
    f->horizon = f->next_horizon = INT64_MIN;
}

/* The writer's memory of the stored facts, read when it first writes (the
 * archiver, which never does, keeps none). */
static int facts_ready(hot_sqlite *h)
{
    sq_facts *f = &h->facts;
    if (f->ready)
        return SS_OK;
    f->ready = 1;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT min(watermark), count(*), count(watermark) FROM shard_state", -1,
                           &q, NULL) != SQLITE_OK)
        return sq_db_error(h, "reading the watermark");
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 1) > 0 &&
        sqlite3_column_int64(q, 1) == sqlite3_column_int64(q, 2))
        f->horizon = horizon_of(sqlite3_column_int64(q, 0));
    sqlite3_finalize(q);
    f->next_horizon = f->horizon;
    return load_blocks(h, f->horizon);
}

void sq_facts_close(hot_sqlite *h)
{
    sq_facts *f = &h->facts;
    for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
        ss_block_enc_free(&f->tail[t].enc);
        ss_block_dec_free(&f->scratch[t]);
        ss_block_dec_free(&f->probe[t]);
    }
    ss_buf_free(&f->out);
    ss_buf_free(&f->rarena);
    ss_free_table(f->rtab, f->rcap, sizeof *f->rtab);
    ss_free_table(f->otab, f->ocap, sizeof *f->otab);
    free(f->olog);
    for (uint32_t k = 1; k <= f->dn; k++)
        free((char *)f->dvals[k].p);
    free(f->dvals);
    free(f->dtab);
    memset(f, 0, sizeof *f);
}

int sq_facts_claim(hot_sqlite *h, const ss_hot_state *s)
{
    sq_facts *f = &h->facts;
    int rc = facts_ready(h);
    if (rc)
        return rc;
    int64_t from = horizon_of(s->watermark);
    /* A shard that has stored nothing has nothing to repeat. */
    if (from < f->horizon && s->stored > 0) {
        /* Rows of blocks read before, from the shard's horizon on. */
        int64_t keep[SS_BLOCK_NTABLES];
        memcpy(keep, f->loaded, sizeof keep);
        memset(f->loaded, 0, sizeof f->loaded);
        f->horizon = f->next_horizon = from;
        rc = load_blocks(h, from);
        for (int t = 0; t < SS_BLOCK_NTABLES; t++)
            if (f->loaded[t] < keep[t])
                f->loaded[t] = keep[t];
        return rc;
    }
    return load_blocks(h, f->horizon);
}

/* ---- the writer's transaction ---- */

static int block_still(hot_sqlite *h, const ss_block_table *bt, int64_t id, size_t n)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT n FROM %s WHERE id = ?1", bt->blocks);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h->db, sql, -1, &q, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(q, 1, id);
    int same = sqlite3_step(q) == SQLITE_ROW && (size_t)sqlite3_column_int64(q, 0) == n;
    sqlite3_finalize(q);
    return same;
}

static void seal(sq_tail *t)
{
    ss_block_enc_reset(&t->enc);
    t->id = 0;
}

/* Where a rollback takes each tail back to: its rows as they stand now. */
static void tails_mark(sq_facts *f)
{
    for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
        sq_tail *tl = &f->tail[t];
        tl->n_tx = tl->enc.n;
        tl->arena_tx = tl->enc.arena.len;
        tl->id_tx = tl->id;
        tl->sealed_tx = 0;
    }
}

int sq_facts_begin(hot_sqlite *h)
{
    sq_facts *f = &h->facts;
    uint64_t v = 0;
    int rc = facts_ready(h);
    rc = rc ? rc : sqlite_version(h, &v);
    if (rc)
        return rc;
    if (v != f->version) {
        /* Another connection has committed (the archiver): a tail block it
         * has moved or split is not ours to extend, orders it has moved
         * leave the map, and customers it may have deleted are known no
         * more. */
        sq_customers_forget(h);
        for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
            sq_tail *tl = &f->tail[t];
            if (tl->id && block_still(h, &ss_block_tables[t], tl->id, tl->enc.n) != 1)
                seal(tl);
            f->probe_id[t] = 0;
        }
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(h->db, "SELECT min(min_ts) FROM orders_blocks", -1, &q, NULL) ==
            SQLITE_OK) {
            if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
                uint32_t oldest = (uint32_t)(sqlite3_column_int64(q, 0) / SS_MS_PER_MIN);
                if (oldest > f->omin) {
                    omap_grow(f, f->on, oldest);
                    f->omin = oldest;
                }
            }
            sqlite3_finalize(q);
        }
        f->version = v;
    }
    tails_mark(f);
    f->txn++;
    f->olog_n = 0;
    return SS_OK;
}

/* Writes a tail's rows as its block: a new row, or its own row again. */
static int write_tail(hot_sqlite *h, int t)
{
    sq_facts *f = &h->facts;
    sq_tail *tl = &f->tail[t];
    const ss_block_table *bt = &ss_block_tables[t];
    ss_block_encode(&tl->enc, &f->out);
    char sql[160];
    if (tl->id)
        snprintf(sql, sizeof sql,
                 "UPDATE %s SET min_ts = ?1, max_ts = ?2, n = ?3, data = ?4 WHERE id = ?5",
                 bt->blocks);
    else
        snprintf(sql, sizeof sql, "INSERT INTO %s (min_ts, max_ts, n, data) VALUES (?1,?2,?3,?4)",
                 bt->blocks);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v3(h->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q, NULL) != SQLITE_OK)
        return sq_db_error(h, "preparing a block write");
    sqlite3_bind_int64(q, 1, tl->enc.min_ts);
    sqlite3_bind_int64(q, 2, tl->enc.max_ts);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)tl->enc.n);
    sqlite3_bind_blob(q, 4, f->out.data, (int)f->out.len, SQLITE_STATIC);
    if (tl->id)
        sqlite3_bind_int64(q, 5, tl->id);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return sq_db_error(h, "writing a block");
    if (!tl->id) {
        tl->id = sqlite3_last_insert_rowid(h->db);
        if (tl->id == f->loaded[t] + 1)
            f->loaded[t] = tl->id;
    }
    if (f->probe_id[t] == tl->id)
        f->probe_id[t] = 0;
    return SS_OK;
}

int sq_facts_put(hot_sqlite *h, const ss_event *const *evs, const ss_attrib *attrib, size_t n,
                 uint8_t *is_new)
{
    sq_facts *f = &h->facts;
    ss_bval v[SS_BLOCK_MAXCOL];
    /* The ids' and orders' slots in the two tables, which are too large for
     * the cache, are fetched for a run of events before any is used. */
    enum { RUN = 64 };
    uint64_t idh[RUN];
    sq_ohash oh[RUN];
    for (size_t i = 0; i < n; i++) {
        const ss_event *ev = evs[i];
        size_t k = i % RUN;
        if (k == 0) {
            for (size_t j = i; j < n && j < i + RUN; j++) {
                idh[j - i] = ss_event_h_event(evs[j]) | 1;
                if (f->rcap)
                    __builtin_prefetch(&f->rtab[idh[j - i] & (f->rcap - 1)]);
                if (evs[j]->type != SS_EV_ORDER)
                    continue;
                oh[j - i] = order_hash_h(evs[j]->order_id, ss_event_h_order(evs[j]));
                if (f->ocap)
                    __builtin_prefetch(&f->otab[oh[j - i].h & (f->ocap - 1)]);
            }
        }
        is_new[i] = (uint8_t)rids_add_h(f, ev->event_id, idh[k], ev->ts, f->txn);
        if (!is_new[i])
            continue;
        int t = (int)ev->type - 1;
        sq_tail *tl = &f->tail[t];
        ss_block_row_of(ev, &attrib[i], v);
        ss_block_enc_add(&tl->enc, v);
        if (ev->type == SS_EV_ORDER) {
            const ss_order *o = &ev->u.order;
            ss_str dims[4] = {o->city, o->country, o->category, o->payment_method};
            if (omap_add_h(f, oh[k], ev->ts, dims)) {
                if (f->olog_n == f->olog_cap) {
                    f->olog_cap = f->olog_cap ? 2 * f->olog_cap : 1024;
                    f->olog = ss_realloc(f->olog, f->olog_cap * sizeof *f->olog);
                }
                f->olog[f->olog_n++] = oh[k];
            }
        }
        if (tl->enc.n == SS_BLOCK_ROWS) {
            int rc = write_tail(h, t);
            if (rc)
                return rc;
            seal(tl);
            tl->sealed_tx = 1;
        }
    }
    return SS_OK;
}

int sq_facts_flush(hot_sqlite *h)
{
    sq_facts *f = &h->facts;
    for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
        sq_tail *tl = &f->tail[t];
        if (tl->enc.n == 0 || (tl->enc.n == tl->n_tx && !tl->sealed_tx && tl->id))
            continue;
        int rc = write_tail(h, t);
        if (rc)
            return rc;
    }
    return SS_OK;
}

void sq_facts_committed(hot_sqlite *h)
{
    sq_facts *f = &h->facts;
    tails_mark(f);
    /* Ids behind the committed watermark leave, once there are enough of
     * them to be worth a rebuild. The table keeps room for as many ids as
     * it holds now: the next transaction, which is likely to add as many,
     * then fills it without growing it step by step. */
    if (f->next_horizon > f->horizon) {
        f->horizon = f->next_horizon;
        if (f->rn > 4096)
            rids_rebuild(f, f->horizon, 0, f->rn);
    }
    f->olog_n = 0;
    /* Our own commit moved the data version. */
    uint64_t v;
    if (sqlite_version(h, &v) == SS_OK)
        f->version = v;
}

void sq_facts_rolled_back(hot_sqlite *h)
{
    sq_facts *f = &h->facts;
    for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
        sq_tail *tl = &f->tail[t];
        if (tl->sealed_tx) {
            /* Its block holds what was committed; new rows start another. */
            seal(tl);
        } else {
            ss_block_enc_truncate(&tl->enc, tl->n_tx, tl->arena_tx);
            tl->id = tl->id_tx;
        }
        tl->sealed_tx = 0;
        f->probe_id[t] = 0;
    }
    /* Ids and orders of the transaction leave the memory. */
    rids_rebuild(f, INT64_MIN, f->txn, f->rn);
    for (size_t i = 0; i < f->olog_n; i++)
        omap_del(f, f->olog[i].h, f->olog[i].h2);
    f->olog_n = 0;
    f->next_horizon = f->horizon;
}

void sq_facts_watermark(hot_sqlite *h, int64_t lowest)
{
    int64_t from = horizon_of(lowest);
    if (from > h->facts.next_horizon)
        h->facts.next_horizon = from;
}

/* ---- lookups ---- */

/* Finds (ts, id) in table t's blocks whose range holds ts. */
static int block_has(hot_sqlite *h, int t, ss_str id, int64_t ts, int *found)
{
    sq_facts *f = &h->facts;
    const ss_block_table *bt = &ss_block_tables[t];
    ss_block_dec *d = &f->probe[t];
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT id, data FROM %s WHERE min_ts <= ?1 AND max_ts >= ?1 ORDER BY id DESC",
             bt->blocks);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v3(h->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q, NULL) != SQLITE_OK)
        return sq_db_error(h, "preparing a block lookup");
    sqlite3_bind_int64(q, 1, ts);
    int rc, out = SS_OK;
    *found = 0;
    /* The block of the last lookup answers first without being read. */
    if (f->probe_id[t]) {
        for (uint32_t r = 0; r < d->n; r++)
            if (d->ints[SS_BCOL_TS][r] == ts && d->strs[0][r].n == id.n &&
                memcmp(d->strs[0][r].p, id.p, id.n) == 0)
                *found = 1;
    }
    while (!*found && out == SS_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t bid = sqlite3_column_int64(q, 0);
        if (bid == f->probe_id[t])
            continue;
        f->probe_id[t] = 0;
        if (ss_block_dec_load(d, sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1)) ||
            ss_block_dec_col(d, SS_BCOL_EVENT_ID) || ss_block_dec_col(d, SS_BCOL_TS)) {
            SS_ERROR("hot:sqlite", "'%s': block %lld of %s is damaged", h->path, (long long)bid,
                     bt->blocks);
            out = SS_EIO;
            break;
        }
        f->probe_id[t] = bid;
        for (uint32_t r = 0; r < d->n; r++)
            if (d->ints[SS_BCOL_TS][r] == ts && d->strs[0][r].n == id.n &&
                memcmp(d->strs[0][r].p, id.p, id.n) == 0)
                *found = 1;
    }
    sqlite3_finalize(q);
    if (out == SS_OK && !*found && rc != SQLITE_DONE && rc != SQLITE_ROW)
        out = sq_db_error(h, "looking up an event");
    return out;
}

int sqlite_has_event(void *vst, ss_str event_id, int64_t ts, int *found)
{
    hot_sqlite *h = vst;
    sq_facts *f = &h->facts;
    /* Every event put since the horizon is among the recent ids, those of
     * the transaction included. */
    *found = rids_find(f, event_id, id_hash(event_id)) != NULL;
    for (int t = 0; t < SS_BLOCK_NTABLES && !*found; t++) {
        int rc = block_has(h, t, event_id, ts, found);
        if (rc)
            return rc;
    }
    return SS_OK;
}

int sqlite_lookup_order(void *vst, ss_str order_id, ss_attrib *out, char *buf, size_t cap,
                        int *found)
{
    hot_sqlite *h = vst;
    sq_facts *f = &h->facts;
    sq_ohash oh = order_hash(order_id);
    const oent *e = omap_find(f, oh.h, oh.h2);
    *found = 0;
    if (!e)
        return SS_OK;
    ss_str *dst[4] = {&out->city, &out->country, &out->category, &out->payment_method};
    size_t used = 0;
    for (int i = 0; i < 4; i++) {
        const ss_str *v = &f->dvals[e->dim[i]];
        if (used + v->n > cap)
            return SS_OK;
        memcpy(buf + used, v->p, v->n);
        *dst[i] = (ss_str){buf + used, v->n};
        used += v->n;
    }
    *found = 1;
    return SS_OK;
}

/* ---- deleting a time range (the archiver) ---- */

static int in_range(void *ctx, const ss_block_dec *d, uint32_t r)
{
    const int64_t *range = ctx;
    int64_t ts = d->ints[SS_BCOL_TS][r];
    return ts >= range[0] && ts < range[1];
}

int sq_blocks_delete(hot_sqlite *h, const ss_block_table *bt, int64_t from, int64_t to,
                     int64_t *deleted)
{
    char sql[200];
    *deleted = 0;
    /* Blocks wholly inside the range go as they are. */
    snprintf(sql, sizeof sql, "SELECT sum(n) FROM %s WHERE min_ts >= ?1 AND max_ts < ?2",
             bt->blocks);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h->db, sql, -1, &q, NULL) != SQLITE_OK)
        return sq_db_error(h, "counting blocks");
    sqlite3_bind_int64(q, 1, from);
    sqlite3_bind_int64(q, 2, to);
    if (sqlite3_step(q) == SQLITE_ROW)
        *deleted = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE min_ts >= ?1 AND max_ts < ?2", bt->blocks);
    if (sqlite3_prepare_v2(h->db, sql, -1, &q, NULL) != SQLITE_OK)
        return sq_db_error(h, "deleting blocks");
    sqlite3_bind_int64(q, 1, from);
    sqlite3_bind_int64(q, 2, to);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return sq_db_error(h, "deleting blocks");
    /* Blocks across a bound keep their rows outside the range, in a new
     * block each. */
    snprintf(sql, sizeof sql, "SELECT id FROM %s WHERE max_ts >= ?1 AND min_ts < ?2 ORDER BY id",
             bt->blocks);
    if (sqlite3_prepare_v2(h->db, sql, -1, &q, NULL) != SQLITE_OK)
        return sq_db_error(h, "reading blocks");
    sqlite3_bind_int64(q, 1, from);
    sqlite3_bind_int64(q, 2, to);
    int64_t *ids = NULL;
    size_t nids = 0, cap = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (nids == cap) {
            cap = cap ? 2 * cap : 16;
            ids = ss_realloc(ids, cap * sizeof *ids);
        }
        ids[nids++] = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        free(ids);
        return sq_db_error(h, "reading blocks");
    }
    int64_t range[2] = {from, to};
    int out_rc = SS_OK;
    for (size_t i = 0; i < nids && out_rc == SS_OK; i++) {
        char *err = NULL;
        rc = ss_block_rewrite(h->db, bt, ids[i], in_range, range, deleted, &err);
        if (rc == SQLITE_CORRUPT) {
            SS_ERROR("hot:sqlite", "'%s': %s", h->path, err);
            out_rc = SS_EIO;
        } else if (rc != SQLITE_OK) {
            out_rc = sq_db_error(h, err ? err : "rewriting a block");
        }
        sqlite3_free(err);
    }
    free(ids);
    return out_rc;
}

#include "engine/engine.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "cold/index.h"
#include "engine/batch.h"
#include "engine/decode.h"
#include "engine/tables.h"

#define MAX_SOURCES      64
#define MAX_OPEN_WINDOWS 128

typedef struct source_pos {
    char *name;
    int64_t committed, pending;
    int shard; /* of its records; -1 before the first */
} source_pos;

/* A shard: the records of one input partition (0 for files and the
 * in-process bus), with their own counters, watermarks, open windows and KPI
 * rows, so that engines in several processes can each own some. */
typedef struct shard {
    ss_hot_state st;     /* includes uncommitted counts */
    int active;          /* claimed: this engine applies its records */
    window *windows;     /* open windows, oldest first */
    window *last_window; /* the window of the last event, or NULL */
} shard;

struct ss_engine {
    ss_hot *hot;
    ss_engine_config cfg;
    ss_decoder dec;
    shard *shards; /* every shard the store or this engine knows */
    int nshards, capshards;
    int cur;               /* index of the shard of the last record, or -1 */
    int64_t wm_min;        /* the lowest input watermark over the active shards */
    int wm_used;           /* records were judged against wm_min since it was settled */
    char owner[64];        /* this engine's claim on its shards */
    uint32_t nwindows;     /* open, over all shards */
    uint32_t window_limit; /* open windows that make the next commit come early */
    int commit_soon;
    attr_gen gens[2]; /* [0] current, [1] previous */
    seen_set seen_dims;
    source_pos src[MAX_SOURCES];
    int nsrc;
    int in_tx;
    uint32_t since_commit;
    int64_t last_commit_mono; /* when the last commit ended */
    int64_t commit_gap;       /* from then to the next: commit_ms, or more */
    uint64_t commits;
    int64_t last_commit_wall;
    char lookup_buf[1024];
    ss_record rec;  /* for ss_engine_process */
    ss_batch *pend; /* on-time events not yet handed to the store */
};

static const ss_str s_all = {"all", 3};
static uint64_t hash_all; /* en_ss_hash_bytes("all", SS_DIM_OVERALL), set at open */
static const ss_str s_unknown = {"unknown", 7};

static source_pos *source_get(ss_engine *e, const char *name)
{
    for (int i = 0; i < e->nsrc; i++)
        if (!strcmp(e->src[i].name, name))
            return &e->src[i];
    if (e->nsrc == MAX_SOURCES)
        return NULL;
    source_pos *s = &e->src[e->nsrc++];
    s->name = ss_strdup(name);
    s->committed = s->pending = -1;
    s->shard = -1;
    return s;
}

static shard *shard_find(ss_engine *e, int id)
{
    for (int i = 0; i < e->nshards; i++)
        if (e->shards[i].st.shard == id)
            return &e->shards[i];
    return NULL;
}

static shard *shard_add(ss_engine *e, int id)
{
    shard *sh = shard_find(e, id);
    if (sh)
        return sh;
    if (e->nshards == e->capshards) {
        e->capshards = e->capshards ? 2 * e->capshards : 8;
        e->shards = ss_realloc(e->shards, (size_t)e->capshards * sizeof *e->shards);
    }
    sh = &e->shards[e->nshards++];
    memset(sh, 0, sizeof *sh);
    sh->st.shard = id;
    sh->st.watermark = sh->st.input_watermark = sh->st.max_ts = INT64_MIN;
    return sh;
}

/* The watermark that closes a shard's windows: the lowest input watermark
 * over the active shards, so that partitions read at different speeds do not
 * make each other's events late, and never below what already closed. */
static int64_t frontier(const ss_engine *e, const shard *sh)
{
    return e->wm_min > sh->st.watermark ? e->wm_min : sh->st.watermark;
}

static void update_wm_min(ss_engine *e)
{
    int64_t m = INT64_MAX;
    for (int i = 0; i < e->nshards; i++)
        if (e->shards[i].active && e->shards[i].st.input_watermark < m)
            m = e->shards[i].st.input_watermark;
    e->wm_min = m == INT64_MAX ? INT64_MIN : m;
}

/* Writes the frontier into each active shard's own watermark, before a
 * change of the active set may lower the lowest input watermark: windows it
 * closed stay closed. Only a frontier that records were judged against is
 * kept: between the claims of one assignment, the lowest input watermark of
 * the shards claimed so far closed nothing, and keeping it would close a
 * shard's windows ahead of the others (earlier than an uninterrupted run). */
static void settle_watermarks(ss_engine *e)
{
    if (!e->wm_used)
        return;
    for (int i = 0; i < e->nshards; i++)
        if (e->shards[i].active)
            e->shards[i].st.watermark = frontier(e, &e->shards[i]);
    e->wm_used = 0;
}

static void on_state(void *ctx, const ss_hot_state *s)
{
    shard_add(ctx, s->shard)->st = *s;
}

static void on_position(void *ctx, const char *source, int64_t offset)
{
    source_pos *s = source_get(ctx, source);
    if (s)
        s->committed = s->pending = offset;
}

/* After a claim: the stored positions of sources this engine does not
 * write, which the shard's previous owner may have moved. */
static void on_position_refresh(void *ctx, const char *source, int64_t offset)
{
    ss_engine *e = ctx;
    source_pos *s = source_get(e, source);
    if (!s)
        return;
    shard *sh = s->shard >= 0 ? shard_find(e, s->shard) : NULL;
    if (!sh || !sh->active || s->pending < 0)
        s->committed = s->pending = offset;
}

static window *window_get(ss_engine *e, shard *sh, int64_t minute, int create)
{
    /* Events come mostly in time order: most hit the window of the last one. */
    if (sh->last_window && sh->last_window->minute == minute)
        return sh->last_window;
    window **pp = &sh->windows;
    while (*pp && (*pp)->minute < minute)
        pp = &(*pp)->next;
    if (*pp && (*pp)->minute == minute)
        return sh->last_window = *pp;
    if (!create)
        return NULL;
    window *w = en_window_new(minute);
    w->next = *pp;
    *pp = w;
    /* Sparse or replayed streams can open many windows between commits:
     * committing early lets the watermark close them and bounds memory.
     * Windows that a slower partition holds open stay open after a commit:
     * the limit counts from what the last commit left. */
    if (++e->nwindows > e->window_limit)
        e->commit_soon = 1;
    return sh->last_window = w;
}

static void shard_drop_windows(ss_engine *e, shard *sh)
{
    while (sh->windows) {
        window *w = sh->windows;
        sh->windows = w->next;
        en_window_free(w);
        e->nwindows--;
    }
    sh->last_window = NULL;
}

typedef struct open_rows {
    ss_engine *e;
    shard *sh;
} open_rows;

static int on_open_row(void *ctx, const ss_kpi_row *r)
{
    open_rows *o = ctx;
    if (r->shard != o->sh->st.shard)
        return SS_OK;
    ss_engine *e = o->e;
    window *w = window_get(e, o->sh, r->minute, 1);
    win_entry *x = en_window_slot(w, r->dim, r->value,
                                  ss_hash_bytes(r->value.p, r->value.n, (uint64_t)r->dim));
    x->k = r->k;
    return SS_OK;
}

int ss_engine_open(ss_hot *hot, const ss_engine_config *cfg, ss_engine **out, char *err,
                   size_t errlen)
{
    *out = NULL;
    ss_engine *e = ss_calloc(1, sizeof *e);
    hash_all = ss_hash_bytes(s_all.p, s_all.n, SS_DIM_OVERALL);
    e->hot = hot;
    e->cfg = *cfg;
    ss_decoder_init(&e->dec);
    en_attr_reset(&e->gens[0]);
    en_attr_reset(&e->gens[1]);
    ss_buf_init(&e->gens[0].bytes, 1 << 20);
    ss_buf_init(&e->gens[1].bytes, 1 << 20);
    e->seen_dims.tab = ss_calloc(SEEN_CAP, sizeof *e->seen_dims.tab);
    e->pend = ss_batch_new();
    e->last_commit_mono = ss_mono_ms();
    e->commit_gap = e->cfg.commit_ms;
    e->cur = -1;
    e->wm_min = INT64_MIN;
    e->window_limit = MAX_OPEN_WINDOWS;
    snprintf(e->owner, sizeof e->owner, "%ld-%llx", (long)getpid(),
             (unsigned long long)(ss_now_ms() ^ ((uint64_t)(uintptr_t)e << 16)));

    int rc = hot->ops->load_state(hot->st, on_state, on_position, e);
    if (rc == SS_OK && cfg->places) {
        /* Reference data: coordinates and codes of the profile's places. */
        const ss_profile *p = cfg->places;
        rc = hot->ops->begin(hot->st);
        for (uint32_t i = 0; i < p->ncities && rc == SS_OK; i++) {
            const ss_prof_city *c = &p->cities[i];
            const ss_prof_country *k = &p->countries[c->country];
            rc = hot->ops->put_place(hot->st, c->name, k->name, k->code, p->regions[k->region].name,
                                     c->lat, c->lon);
        }
        rc = rc == SS_OK ? hot->ops->commit(hot->st) : rc;
    }
    if (rc != SS_OK) {
        snprintf(err, errlen, "cannot load the engine's state from the hot store (%s)",
                 ss_status_str(rc));
        ss_engine_free(e);
        return rc;
    }
    ss_engine_stats st;
    ss_engine_get_stats(e, &st);
    SS_INFO("engine", "resumed: watermark %lld, %llu events so far, %d shard%s",
            (long long)st.s.watermark, (unsigned long long)st.s.events_in, e->nshards,
            e->nshards == 1 ? "" : "s");
    *out = e;
    return SS_OK;
}

void ss_engine_free(ss_engine *e)
{
    if (!e)
        return;
    if (e->in_tx)
        e->hot->ops->rollback(e->hot->st);
    for (int i = 0; i < e->nshards; i++)
        shard_drop_windows(e, &e->shards[i]);
    free(e->shards);
    for (int i = 0; i < 2; i++) {
        free(e->gens[i].tab);
        ss_buf_free(&e->gens[i].bytes);
    }
    free(e->seen_dims.tab);
    ss_batch_free(e->pend);
    for (int i = 0; i < e->nsrc; i++)
        free(e->src[i].name);
    ss_decoder_free(&e->dec);
    free(e);
}

int64_t ss_engine_position(const ss_engine *e, const char *source)
{
    for (int i = 0; i < e->nsrc; i++)
        if (!strcmp(e->src[i].name, source))
            return e->src[i].committed;
    return -1;
}

static int ensure_tx(ss_engine *e)
{
    if (e->in_tx)
        return SS_OK;
    int rc = e->hot->ops->begin(e->hot->st);
    if (rc == SS_OK)
        e->in_tx = 1;
    return rc;
}

/* Claims a shard in the store (within the current transaction) and loads its
 * committed state and open windows. */
static int shard_claim(ss_engine *e, int id, shard **out)
{
    shard *sh = shard_find(e, id);
    if (sh && sh->active) {
        *out = sh;
        return SS_OK;
    }
    int rc = ensure_tx(e);
    ss_hot_state st;
    if (rc == SS_OK)
        rc = e->hot->ops->claim_shard(e->hot->st, id, e->owner, &st);
    if (rc)
        return rc;
    settle_watermarks(e);
    sh = shard_add(e, id); /* may move the array */
    shard_drop_windows(e, sh);
    sh->st = st;
    open_rows o = {e, sh};
    rc = e->hot->ops->read_kpis(e->hot->st, 0, INT64_MAX / 2, -1, 1, on_open_row, &o);
    if (rc == SS_OK)
        rc = e->hot->ops->load_state(e->hot->st, NULL, on_position_refresh, e);
    if (rc)
        return rc;
    sh->active = 1;
    e->cur = -1;
    update_wm_min(e);
    *out = sh;
    return SS_OK;
}

static void add_kpi(window *w, int dim, ss_str v, uint64_t h, const ss_kpi *d)
{
    win_entry *x = en_window_slot(w, dim, v, h);
    x->k.orders += d->orders;
    x->k.units += d->units;
    x->k.gross_cents += d->gross_cents;
    x->k.paid_cents += d->paid_cents;
    x->k.attempts += d->attempts;
    x->k.failed += d->failed;
    x->k.cancellations += d->cancellations;
    x->k.cancelled_cents += d->cancelled_cents;
    x->dirty = 1;
}

/* The dimension values an event counts under, and their hashes (computed
 * once, used for the window slots and the dimension cache). */
typedef struct event_dims {
    ss_str v[SS_DIM_COUNT];
    uint64_t h[SS_DIM_COUNT];
} event_dims;

/* Fills the dimensions of an event from its attribution; dh holds the
 * hashes of the attribution's city, country, category and method when known
 * (from the cache), or NULL. */
static void event_dims_of(const ss_event *ev, const ss_attrib *at, const uint64_t *dh,
                          event_dims *d)
{
    d->v[SS_DIM_OVERALL] = s_all;
    d->v[SS_DIM_CITY] = at->city;
    d->v[SS_DIM_COUNTRY] = at->country;
    d->v[SS_DIM_CATEGORY] = at->category;
    d->v[SS_DIM_PAYMENT_METHOD] = at->payment_method;
    d->h[SS_DIM_OVERALL] = hash_all;
    for (int i = 1; i < SS_DIM_COUNT; i++)
        d->h[i] = dh ? dh[i - 1] : ss_hash_bytes(d->v[i].p, d->v[i].n, (uint64_t)i);
    /* A payment counts under its own method, not the order's. */
    if (ev->type == SS_EV_PAYMENT) {
        ss_str m = ev->u.payment.payment_method;
        d->v[SS_DIM_PAYMENT_METHOD] = m;
        d->h[SS_DIM_PAYMENT_METHOD] = ss_hash_bytes(m.p, m.n, SS_DIM_PAYMENT_METHOD);
    }
}

static int aggregate(ss_engine *e, shard *sh, const ss_event *ev, const event_dims *dims)
{
    int64_t minute = ss_time_floor(ev->ts, SS_MS_PER_MIN);
    window *w = window_get(e, sh, minute, 0);
    if (!w) {
        w = window_get(e, sh, minute, 1);
        int rc = e->hot->ops->put_minute(e->hot->st, minute);
        if (rc)
            return rc;
    }
    ss_kpi d = {0};
    switch (ev->type) {
    case SS_EV_ORDER:
        d.orders = 1;
        d.units = ev->u.order.quantity;
        d.gross_cents = ev->u.order.total_price;
        break;
    case SS_EV_PAYMENT:
        d.attempts = 1;
        d.failed = !ev->u.payment.success;
        d.paid_cents = ev->u.payment.success ? ev->u.payment.amount : 0;
        break;
    case SS_EV_CANCELLATION:
        d.cancellations = 1;
        d.cancelled_cents = ev->u.cancel.refund;
        break;
    }
    for (int i = 0; i < SS_DIM_COUNT; i++)
        add_kpi(w, i, dims->v[i], dims->h[i], &d);
    return SS_OK;
}

static int upsert_dims(ss_engine *e, const ss_event *ev, const event_dims *dims)
{
    /* Customers are mostly new, so they are always offered to the store (an
     * existing one is ignored there); products and places repeat, so a set of
     * recently written keys saves their upserts. */
    const ss_order *o = &ev->u.order;
    uint64_t hp = ss_hash_bytes(o->product_id.p, o->product_id.n, 13) ^
                  ss_hash_bytes(o->product_name.p, o->product_name.n, 17) ^
                  (dims->h[SS_DIM_CATEGORY] * 19) ^ (uint64_t)o->unit_price * 0x9e3779b97f4a7c15ULL;
    uint64_t hplace = dims->h[SS_DIM_CITY] ^ (dims->h[SS_DIM_COUNTRY] * 3) ^
                      (dims->h[SS_DIM_CATEGORY] * 5) ^ (dims->h[SS_DIM_PAYMENT_METHOD] * 7);
    unsigned what = SS_DIMS_CUSTOMER;
    if (en_seen_add(&e->seen_dims, hp))
        what |= SS_DIMS_PRODUCT;
    if (en_seen_add(&e->seen_dims, hplace))
        what |= SS_DIMS_PLACES;
    return e->hot->ops->put_order_dims(e->hot->st, ev, what);
}

static int resolve(ss_engine *e, const ss_event *ev, ss_attrib *at, uint64_t dh[4], int *have_dh)
{
    *have_dh = 0;
    if (ev->type == SS_EV_ORDER) {
        const ss_order *o = &ev->u.order;
        *at = (ss_attrib){o->city, o->country, o->category, o->payment_method};
        return SS_OK;
    }
    uint64_t ho = ss_event_h_order(ev);
    if (en_attr_find(e->gens, ev->order_id, ho, at, dh)) {
        *have_dh = 1;
        return SS_OK;
    }
    if (ss_batch_order(e->pend, ev->order_id, ho, at, dh, have_dh))
        return SS_OK;
    int found = 0;
    int rc = e->hot->ops->lookup_order(e->hot->st, ev->order_id, at, e->lookup_buf,
                                       sizeof e->lookup_buf, &found);
    if (rc == SS_OK && !found && e->cfg.cold)
        rc = ss_cold_index_lookup_order(e->cfg.cold, e->hot, ev->order_id, ev->ts, at,
                                        e->lookup_buf, sizeof e->lookup_buf, &found);
    if (rc)
        return rc;
    if (!found)
        *at = (ss_attrib){s_unknown, s_unknown, s_unknown, s_unknown};
    return SS_OK;
}

int ss_engine_decode(ss_decoder *d, const ss_bus_msg *msg, ss_record *rec)
{
    rec->msg = *msg;
    /* Blank lines separate nothing and carry nothing. */
    size_t i = 0;
    while (i < msg->len && (msg->data[i] == ' ' || msg->data[i] == '\t' || msg->data[i] == '\r'))
        i++;
    if (i == msg->len && msg->raw_bytes == msg->len)
        return rec->status = SS_RECORD_BLANK;
    if (msg->raw_bytes > msg->len) {
        snprintf(rec->reason, sizeof rec->reason,
                 "record of %zu bytes exceeds the limit of %u bytes (first %zu bytes kept)",
                 msg->raw_bytes, SS_LINE_MAX, msg->len);
        return rec->status = SS_RECORD_REJECTED;
    }
    if (ss_event_decode(d, msg->data, msg->len, &rec->ev, rec->reason, sizeof rec->reason))
        return rec->status = SS_RECORD_REJECTED;
    return rec->status = SS_RECORD_EVENT;
}

ss_record *ss_engine_scratch_record(ss_engine *e)
{
    return &e->rec;
}

ss_decoder *ss_engine_decoder(ss_engine *e)
{
    return &e->dec;
}

int ss_engine_process(ss_engine *e, const ss_bus_msg *msg)
{
    ss_engine_decode(&e->dec, msg, &e->rec);
    return ss_engine_apply(e, &e->rec);
}

/* Hands the pending events to the store in one call, then does what
 * depends on which of them were new: counts, attribution cache, dimensions,
 * KPIs, in input order, as if each had been stored when it was applied. */
static int flush_pending(ss_engine *e)
{
    ss_batch *b = e->pend;
    if (!b->n)
        return SS_OK;
    int rc = e->hot->ops->put_events(e->hot->st, b->evp, b->at, b->n, b->is_new);
    for (size_t i = 0; i < b->n && rc == SS_OK; i++) {
        const ss_event *ev = &b->ev[i];
        shard *sh = shard_find(e, b->item[i].shard);
        if (!b->is_new[i]) {
            sh->st.duplicates++;
            continue;
        }
        sh->st.stored++;
        event_dims dims;
        event_dims_of(ev, &b->at[i], b->item[i].have_dh ? b->item[i].dh : NULL, &dims);
        if (ev->type == SS_EV_ORDER) {
            en_attr_add(e->gens, ev->order_id, ss_event_h_order(ev), &ev->u.order, dims.h + 1);
            rc = upsert_dims(e, ev, &dims);
        }
        if (rc == SS_OK)
            rc = aggregate(e, sh, ev, &dims);
    }
    ss_batch_reset(b);
    return rc;
}

int ss_engine_apply(ss_engine *e, const ss_record *rec)
{
    const ss_bus_msg *msg = &rec->msg;
    int rc = e->pend->n == SS_BATCH_MAX ? flush_pending(e) : SS_OK;
    if (rc)
        return rc;
    rc = ensure_tx(e);
    if (rc)
        return rc;
    shard *sh;
    if (e->cur >= 0 && e->shards[e->cur].st.shard == msg->shard)
        sh = &e->shards[e->cur];
    else if ((rc = shard_claim(e, msg->shard, &sh)) != SS_OK)
        return rc;
    else
        e->cur = (int)(sh - e->shards);
    e->wm_used = 1;

    /* First everything that only reads, hot and cold: when the cold store is
     * unavailable it returns SS_AGAIN, and the record is applied again later
     * from scratch, so nothing below may have happened yet. */
    const ss_event ev = rec->ev;
    int late = 0, found = 0, have_dh = 0;
    ss_attrib at;
    uint64_t dh[4];
    if (rec->status == SS_RECORD_EVENT) {
        /* An event whose window the watermark has closed is late, unless a
         * store holds it already (a replay), which makes it a duplicate. */
        int64_t window_end = ss_time_floor(ev.ts, SS_MS_PER_MIN) + SS_MS_PER_MIN;
        int64_t closed = frontier(e, sh);
        late = closed != INT64_MIN && window_end <= closed;
        if (late) {
            found = ss_batch_has(e->pend, 0, ev.event_id, ss_event_h_event(&ev));
            if (!found)
                rc = e->hot->ops->has_event(e->hot->st, ev.event_id, ev.ts, &found);
            if (rc == SS_OK && !found && e->cfg.cold)
                rc = ss_cold_index_has_event(e->cfg.cold, e->hot, ev.event_id, ev.ts, &found);
        } else {
            rc = resolve(e, &ev, &at, dh, &have_dh);
        }
        if (rc)
            return rc;
    }

    source_pos *sp = source_get(e, msg->source);
    if (sp) {
        sp->pending = msg->next;
        sp->shard = msg->shard;
    }
    e->since_commit++;
    if (rec->status == SS_RECORD_BLANK)
        return SS_OK;

    ss_hot_state *st = &sh->st;
    st->events_in++;
    if (rec->status == SS_RECORD_REJECTED) {
        st->rejected++;
        const ss_bus_consumer *in = e->cfg.input;
        if (in && in->ops->rejected)
            in->ops->rejected(in->state, msg, rec->reason);
        return e->hot->ops->put_rejected(e->hot->st, msg->data, msg->len, msg->raw_bytes,
                                         rec->reason, msg->source, msg->offset);
    }
    if (late) {
        int is_new = 0;
        if (!found)
            rc = e->hot->ops->put_late(e->hot->st, &ev, msg->data, msg->len, frontier(e, sh),
                                       &is_new);
        if (is_new)
            st->late++;
        else
            st->duplicates++;
        return rc;
    }

    /* An id pending already (the same type) is a duplicate, whatever the
     * store answers for the first; the others wait for flush_pending. */
    if (ss_batch_has(e->pend, ev.type, ev.event_id, ss_event_h_event(&ev))) {
        st->duplicates++;
    } else {
        ss_batch_item it = {.shard = st->shard, .have_dh = have_dh};
        if (have_dh)
            memcpy(it.dh, dh, sizeof dh);
        ss_batch_add(e->pend, &ev, &at, &it);
    }
    if (ev.ts > st->max_ts || st->max_ts == INT64_MIN) {
        st->max_ts = ev.ts;
        /* The watermark never goes back, not even when a restart brings a
         * larger lateness: windows it has closed are final and stay so. */
        if (ev.ts - e->cfg.lateness_ms > st->input_watermark) {
            int was_lowest = st->input_watermark == e->wm_min;
            st->input_watermark = ev.ts - e->cfg.lateness_ms;
            if (was_lowest)
                update_wm_min(e);
        }
    }
    return rc;
}

static int flush_shard(ss_engine *e, shard *sh)
{
    ss_kpi_row rows[256];
    size_t n = 0;
    int rc = SS_OK;
    sh->st.watermark = frontier(e, sh);
    int64_t closed = sh->st.watermark;
    /* A row that only became final is the store's to mark, when it can. */
    int finals = !e->hot->ops->finals_from_state;
    window **pp = &sh->windows;
    while (*pp && rc == SS_OK) {
        window *w = *pp;
        int final = closed != INT64_MIN && w->minute + SS_MS_PER_MIN <= closed;
        for (uint32_t j = 0; j < w->cap && rc == SS_OK; j++) {
            win_entry *x = &w->tab[j];
            if (!x->used || (!x->dirty && !(final && finals)))
                continue;
            rows[n++] = (ss_kpi_row){.minute = w->minute,
                                     .dim = x->dim,
                                     .value = {w->values.data + x->voff, x->vlen},
                                     .shard = sh->st.shard,
                                     .final = final,
                                     .k = x->k};
            x->dirty = 0;
            if (n == sizeof rows / sizeof rows[0]) {
                rc = e->hot->ops->put_kpis(e->hot->st, rows, n);
                n = 0;
            }
        }
        if (n && rc == SS_OK) {
            rc = e->hot->ops->put_kpis(e->hot->st, rows, n);
            n = 0;
        }
        if (final) {
            *pp = w->next;
            if (sh->last_window == w)
                sh->last_window = NULL;
            en_window_free(w);
            e->nwindows--;
        } else {
            pp = &w->next;
        }
    }
    return rc;
}

int ss_engine_tick(ss_engine *e, int force)
{
    if (!e->in_tx)
        return SS_OK;
    /* Reading the clock for every record would cost more than the check. */
    force |= e->commit_soon;
    if (!force && e->since_commit < e->cfg.commit_records && e->since_commit % 256 != 0)
        return SS_OK;
    int64_t now = ss_mono_ms();
    if (!force && e->since_commit < e->cfg.commit_records &&
        now - e->last_commit_mono < e->commit_gap)
        return SS_OK;
    int rc = flush_pending(e);
    if (rc)
        return rc;
    ss_position pos[MAX_SOURCES];
    size_t np = 0;
    for (int i = 0; i < e->nsrc; i++) {
        const source_pos *sp = &e->src[i];
        const shard *sh = sp->shard >= 0 ? shard_find(e, sp->shard) : NULL;
        /* Only the positions of shards this engine holds: a claim refreshes
         * the others from the store, and writing them back would move a
         * position another process has since advanced back to where it
         * was (its records would be read again after the next rebalance). */
        if (sp->pending >= 0 && sh && sh->active)
            pos[np++] = (ss_position){sp->name, sp->pending};
    }
    ss_hot_state *states = ss_malloc((size_t)(e->nshards ? e->nshards : 1) * sizeof *states);
    size_t ns = 0;
    for (int i = 0; i < e->nshards && rc == SS_OK; i++) {
        if (!e->shards[i].active)
            continue;
        rc = flush_shard(e, &e->shards[i]);
        states[ns++] = e->shards[i].st;
    }
    if (rc == SS_OK)
        rc = e->hot->ops->put_state(e->hot->st, states, ns, e->owner, pos, np);
    free(states);
    if (rc == SS_EFENCED)
        SS_ERROR("engine", "another process has claimed a partition of this input since this one "
                           "did; stopping without committing (a restart resumes exactly)");
    if (rc == SS_OK)
        rc = e->hot->ops->commit(e->hot->st);
    if (rc != SS_OK)
        return rc;
    e->in_tx = 0;
    e->commit_soon = 0;
    e->window_limit = e->nwindows + MAX_OPEN_WINDOWS;
    const ss_bus_consumer *in = e->cfg.input;
    for (int i = 0; i < e->nsrc; i++) {
        source_pos *sp = &e->src[i];
        if (in && in->ops->committed && sp->shard >= 0 && sp->pending >= 0 &&
            sp->pending != sp->committed)
            in->ops->committed(in->state, sp->name, sp->pending);
        sp->committed = sp->pending;
    }
    e->since_commit = 0;
    /* A store whose commits take long (a remote server) gets a longer gap,
     * so that committing takes at most a fifth of the time: each commit
     * rewrites the KPI rows of the open minutes, and commits that follow
     * one another would do little else. */
    int64_t end = ss_mono_ms();
    e->commit_gap = e->cfg.commit_ms > 4 * (end - now) ? e->cfg.commit_ms : 4 * (end - now);
    e->last_commit_mono = end;
    e->last_commit_wall = ss_now_ms();
    e->commits++;
    return SS_OK;
}

int ss_engine_claim(ss_engine *e, int shard_id)
{
    shard *sh;
    return shard_claim(e, shard_id, &sh);
}

int ss_engine_release(ss_engine *e, int shard_id)
{
    shard *sh = shard_find(e, shard_id);
    if (!sh || !sh->active)
        return SS_OK;
    int rc = ss_engine_tick(e, 1);
    if (rc)
        return rc;
    settle_watermarks(e);
    sh = shard_find(e, shard_id);
    shard_drop_windows(e, sh);
    sh->active = 0;
    e->cur = -1;
    /* Its sources are another owner's to write from now on. */
    for (int i = 0; i < e->nsrc; i++)
        if (e->src[i].shard == shard_id)
            e->src[i].pending = e->src[i].committed = -1;
    update_wm_min(e);
    return SS_OK;
}

int64_t ss_engine_commit_due_ms(const ss_engine *e)
{
    if (!e->in_tx)
        return -1;
    if (e->commit_soon || e->since_commit >= e->cfg.commit_records)
        return 0;
    int64_t left = e->last_commit_mono + e->commit_gap - ss_mono_ms();
    return left > 0 ? left : 0;
}

void ss_engine_get_stats(const ss_engine *e, ss_engine_stats *st)
{
    memset(st, 0, sizeof *st);
    st->s.shard = -1;
    st->s.watermark = st->s.input_watermark = st->s.max_ts = INT64_MIN;
    int64_t wm = INT64_MAX;
    for (int i = 0; i < e->nshards; i++) {
        const shard *sh = &e->shards[i];
        const ss_hot_state *x = &sh->st;
        int64_t w = sh->active ? frontier(e, sh) : x->watermark;
        if (w < wm)
            wm = w;
        if (x->max_ts > st->s.max_ts)
            st->s.max_ts = x->max_ts;
        st->s.events_in += x->events_in;
        st->s.stored += x->stored;
        st->s.duplicates += x->duplicates;
        st->s.rejected += x->rejected;
        st->s.late += x->late;
        for (window *w2 = sh->windows; w2; w2 = w2->next)
            st->open_windows++;
    }
    if (e->nshards)
        st->s.watermark = wm;
    st->s.input_watermark = e->wm_min;
    st->commits = e->commits;
    st->last_commit_ms = e->last_commit_wall;
}

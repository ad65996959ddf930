/* The MongoDB hot store: the writes of a batch (facts in bulk, late and
 * rejected events, and the dimensions and KPIs kept until commit). */
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

/* ---- bulk writes ---- */

/* Runs a built bulk write; reports each failed document's index through
 * dup (for error 11000) and fails on any other error. *retry is set when
 * the server was away: the caller rebuilds the bulk and runs it again. */
int mg_run_bulk(hot_mongo *h, mongoc_bulk_operation_t *b, void (*dup)(void *, uint32_t), void *ctx,
                const char *what, int64_t *waited, int *retry)
{
    bson_t reply;
    bson_error_t e;
    *retry = 0;
    uint32_t ok = mongoc_bulk_operation_execute(b, &reply, &e);
    int rc = SS_OK;
    if (!ok) {
        bson_iter_t it, arr;
        int other = 0, any = 0;
        if (bson_iter_init_find(&it, &reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
            bson_iter_recurse(&it, &arr)) {
            while (bson_iter_next(&arr)) {
                bson_t we;
                uint32_t len;
                const uint8_t *data;
                bson_iter_document(&arr, &len, &data);
                if (!bson_init_static(&we, data, len))
                    continue;
                any = 1;
                int64_t code = mg_get_int(&we, "code", 0), index = mg_get_int(&we, "index", -1);
                if (code == 11000 && index >= 0) {
                    if (dup)
                        dup(ctx, (uint32_t)index);
                } else if (!other) {
                    other = 1;
                    SS_ERROR("hot:mongo", "%s on %s: %s", what, h->where,
                             mg_get_str(&we, "errmsg").p);
                }
            }
        }
        if (other)
            rc = SS_EIO;
        else if (!any || bson_has_field(&reply, "writeConcernErrors")) {
            rc = mg_failed(h, &e, what, waited);
            if (rc == SS_AGAIN) {
                *retry = 1;
                rc = SS_OK;
            }
        }
    }
    bson_destroy(&reply);
    return rc;
}

mongoc_bulk_operation_t *mg_new_bulk(hot_mongo *h, enum coll c)
{
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    mongoc_bulk_operation_t *b = mongoc_collection_create_bulk_operation_with_opts(h->c[c], &opts);
    bson_destroy(&opts);
    return b;
}

/* ---- facts ---- */

/* The fields every fact document starts with: its event id as _id, the
 * order it belongs to and its time. */
static void fact_head(const ss_event *ev, bson_t *d)
{
    mg_append_str(d, "_id", ev->event_id);
    mg_append_str(d, "order_id", ev->order_id);
    mg_append_ms(d, "ts", ev->ts);
}

/* The order dimensions a payment or cancellation is attributed to. */
static void attrib_fields(const ss_attrib *at, bson_t *d)
{
    mg_append_str(d, "city", at->city);
    mg_append_str(d, "country", at->country);
    mg_append_str(d, "category", at->category);
}

static void order_doc(const ss_event *ev, int64_t tag, bson_t *d)
{
    const ss_order *o = &ev->u.order;
    fact_head(ev, d);
    mg_append_str(d, "customer_id", o->customer_id);
    mg_append_str(d, "customer_segment", o->customer_segment);
    mg_append_str(d, "product_id", o->product_id);
    mg_append_str(d, "product_name", o->product_name);
    mg_append_str(d, "category", o->category);
    mg_append_str(d, "city", o->city);
    mg_append_str(d, "country", o->country);
    BSON_APPEND_INT32(d, "quantity", o->quantity);
    BSON_APPEND_INT64(d, "unit_price_cents", o->unit_price);
    BSON_APPEND_INT64(d, "amount_cents", o->amount);
    BSON_APPEND_INT64(d, "discount_cents", o->discount);
    BSON_APPEND_INT64(d, "tax_cents", o->tax);
    BSON_APPEND_INT64(d, "shipping_cents", o->shipping);
    BSON_APPEND_INT64(d, "total_price_cents", o->total_price);
    mg_append_str(d, "currency", o->currency);
    mg_append_str(d, "payment_method", o->payment_method);
    BSON_APPEND_INT64(d, "_e", tag);
}

static void payment_doc(const ss_event *ev, const ss_attrib *at, int64_t tag, bson_t *d)
{
    const ss_payment *p = &ev->u.payment;
    fact_head(ev, d);
    mg_append_str(d, "payment_method", p->payment_method);
    BSON_APPEND_INT64(d, "amount_cents", p->amount);
    BSON_APPEND_UTF8(d, "status", p->success ? "success" : "failed");
    if (p->success)
        BSON_APPEND_NULL(d, "failure_reason");
    else
        mg_append_str(d, "failure_reason", p->failure_reason);
    BSON_APPEND_INT32(d, "attempt", p->attempt);
    attrib_fields(at, d);
    BSON_APPEND_INT64(d, "_e", tag);
}

static void cancel_doc(const ss_event *ev, const ss_attrib *at, int64_t tag, bson_t *d)
{
    const ss_cancellation *c = &ev->u.cancel;
    fact_head(ev, d);
    mg_append_str(d, "reason", c->reason);
    BSON_APPEND_INT64(d, "refund_cents", c->refund);
    attrib_fields(at, d);
    mg_append_str(d, "payment_method", at->payment_method);
    BSON_APPEND_INT64(d, "_e", tag);
}

typedef struct dup_ctx {
    const size_t *map; /* bulk index -> event index */
    uint8_t *is_new;
    size_t *dups; /* event indexes that met 11000, to check after a retry */
    size_t ndups;
} dup_ctx;

static void on_dup(void *vctx, uint32_t index)
{
    dup_ctx *d = vctx;
    size_t i = d->map[index];
    d->is_new[i] = 0;
    d->dups[d->ndups++] = i;
}

typedef struct tag_check {
    int64_t tag;
    const ss_event *const *evs;
    uint8_t *is_new;
    const size_t *idx;
    size_t n;
} tag_check;

static int on_tagged(void *vctx, const bson_t *doc)
{
    tag_check *t = vctx;
    if (mg_get_int(doc, "_e", -1) != t->tag)
        return SS_OK;
    ss_str id = mg_get_str(doc, "_id");
    for (size_t k = 0; k < t->n; k++) {
        const ss_event *ev = t->evs[t->idx[k]];
        if (ev->event_id.n == id.n && memcmp(ev->event_id.p, id.p, id.n) == 0)
            t->is_new[t->idx[k]] = 1;
    }
    return SS_OK;
}

static void put_dup(void *vctx, size_t i, bson_t *arr, const char *key)
{
    const tag_check *t = vctx;
    mg_append_str(arr, key, t->evs[t->idx[i]]->event_id);
}

/* After a retried insert, a document that met 11000 may be this call's own
 * (the first attempt stored it before the server went away): its _e says. */
static int recheck_dups(hot_mongo *h, enum coll c, const ss_event *const *evs, uint8_t *is_new,
                        const size_t *dups, size_t ndups, int64_t tag)
{
    tag_check t = {tag, evs, is_new, dups, ndups};
    return mg_find_ids(h, c, ndups, put_dup, &t, on_tagged, &t, "checking a retried insert");
}

int mongo_put_events(void *vst, const ss_event *const *evs, const ss_attrib *attrib, size_t n,
                     uint8_t *is_new)
{
    hot_mongo *h = vst;
    static const enum coll colls[] = {C_ORDERS, C_PAYMENTS, C_CANCELLATIONS};
    static const ss_event_type types[] = {SS_EV_ORDER, SS_EV_PAYMENT, SS_EV_CANCELLATION};
    size_t *map = ss_malloc((n ? n : 1) * sizeof *map);
    size_t *dups = ss_malloc((n ? n : 1) * sizeof *dups);
    int rc = SS_OK;
    h->round++;
    int64_t tag = mg_tag_of(h);
    for (int t = 0; t < 3 && rc == SS_OK; t++) {
        int64_t waited = 0;
        int retried = 0;
        dup_ctx d = {map, is_new, dups, 0};
        for (;;) {
            mongoc_bulk_operation_t *b = mg_new_bulk(h, colls[t]);
            size_t nb = 0;
            d.ndups = 0;
            for (size_t i = 0; i < n; i++) {
                const ss_event *ev = evs[i];
                if (ev->type != types[t])
                    continue;
                bson_t doc = BSON_INITIALIZER;
                if (t == 0)
                    order_doc(ev, tag, &doc);
                else if (t == 1)
                    payment_doc(ev, &attrib[i], tag, &doc);
                else
                    cancel_doc(ev, &attrib[i], tag, &doc);
                mongoc_bulk_operation_insert(b, &doc);
                bson_destroy(&doc);
                map[nb++] = i;
                is_new[i] = 1;
            }
            int retry = 0;
            if (nb)
                rc = mg_run_bulk(h, b, on_dup, &d, "storing events", &waited, &retry);
            mongoc_bulk_operation_destroy(b);
            if (rc || !retry)
                break;
            retried = 1;
        }
        if (rc == SS_OK && retried && d.ndups)
            rc = recheck_dups(h, colls[t], evs, is_new, dups, d.ndups, tag);
    }
    free(map);
    free(dups);
    return rc;
}

int mongo_has_event(void *vst, ss_str event_id, int64_t ts, int *found)
{
    hot_mongo *h = vst;
    (void)ts;
    *found = 0;
    for (int c = C_ORDERS; c <= C_CANCELLATIONS && !*found; c++) {
        bson_t doc;
        int rc = mg_by_id(h, (enum coll)c, event_id.p, event_id.n, &doc, "looking up an event");
        *found = !bson_empty(&doc);
        bson_destroy(&doc);
        if (rc)
            return rc;
    }
    return SS_OK;
}

/* Inserts one document tagged with this round; *is_new = 0 when a document
 * of its _id was there before. */
int mg_insert_tagged(hot_mongo *h, enum coll c, const bson_t *doc, int *is_new, const char *what)
{
    int64_t waited = 0;
    int retried = 0;
    for (;;) {
        bson_error_t e;
        if (mongoc_collection_insert_one(h->c[c], doc, NULL, NULL, &e)) {
            *is_new = 1;
            return SS_OK;
        }
        if (e.domain == MONGOC_ERROR_SERVER && e.code == 11000) {
            *is_new = 0;
            if (retried) {
                bson_iter_t it;
                bson_t cur;
                uint32_t len = 0;
                const char *id =
                    bson_iter_init_find(&it, doc, "_id") ? bson_iter_utf8(&it, &len) : "";
                int rc = mg_by_id(h, c, id, len, &cur, what);
                *is_new = mg_get_int(&cur, "_e", -1) == mg_get_int(doc, "_e", -2);
                bson_destroy(&cur);
                return rc;
            }
            return SS_OK;
        }
        int rc = mg_failed(h, &e, what, &waited);
        if (rc != SS_AGAIN)
            return rc;
        retried = 1;
    }
}

int mongo_put_late(void *vst, const ss_event *ev, const char *raw, size_t len, int64_t watermark,
                   int *is_new)
{
    hot_mongo *h = vst;
    h->round++;
    bson_t d = BSON_INITIALIZER;
    mg_append_str(&d, "_id", ev->event_id);
    BSON_APPEND_UTF8(&d, "type", ss_event_type_name(ev->type));
    mg_append_ms(&d, "ts", ev->ts);
    mg_append_ms(&d, "watermark", watermark);
    mg_append_ms(&d, "received_at", ss_now_ms());
    bson_append_utf8(&d, "raw", 3, raw, (int)len);
    BSON_APPEND_INT64(&d, "_e", mg_tag_of(h));
    int rc = mg_insert_tagged(h, C_LATE, &d, is_new, "storing a late event");
    bson_destroy(&d);
    return rc;
}

int mongo_put_rejected(void *vst, const char *raw, size_t len, size_t raw_bytes, const char *reason,
                       const char *source, int64_t position)
{
    hot_mongo *h = vst;
    char id[33];
    ss_hot_raw_id(raw, len, raw_bytes, id);
    int added;
    pent *p = mg_pmap_get(&h->pend[C_REJECTED], id, 32, &added);
    if (!added)
        return SS_OK;
    BSON_APPEND_UTF8(p->doc, "_id", id);
    mg_append_ms(p->doc, "received_at", ss_now_ms());
    BSON_APPEND_UTF8(p->doc, "source", source);
    BSON_APPEND_INT64(p->doc, "position", position);
    BSON_APPEND_UTF8(p->doc, "reason", reason);
    bson_append_binary(p->doc, "raw", 3, BSON_SUBTYPE_BINARY, (const uint8_t *)raw, (uint32_t)len);
    BSON_APPEND_INT64(p->doc, "raw_bytes", (int64_t)raw_bytes);
    return SS_OK;
}

/* ---- dimensions and KPIs: kept until commit ---- */

static pent *pend_str(hot_mongo *h, enum coll c, ss_str id, int *added)
{
    pent *p = mg_pmap_get(&h->pend[c], id.p, id.n, added);
    if (*added)
        mg_append_str(p->doc, "_id", id);
    return p;
}

static void pend_insert_only(hot_mongo *h, enum coll c, ss_str id)
{
    int added;
    pend_str(h, c, id, &added);
}

static void customer_fields(bson_t *d, ss_str id, const ss_str *v, int64_t ts)
{
    mg_append_str(d, "_id", id);
    mg_append_str(d, "customer_segment", v[0]);
    mg_append_str(d, "city", v[1]);
    mg_append_str(d, "country", v[2]);
    mg_append_ms(d, "first_seen", ts);
}

int mongo_put_order_dims(void *vst, const ss_event *ev, unsigned what)
{
    hot_mongo *h = vst;
    const ss_order *o = &ev->u.order;
    int added;
    if (what & SS_DIMS_CUSTOMER) {
        ss_str v[3] = {o->customer_segment, o->city, o->country};
        pent *p = mg_pmap_get(&h->pend[C_CUSTOMERS], o->customer_id.p, o->customer_id.n, &added);
        ss_str cur[3] = {mg_get_str(p->doc, "customer_segment"), mg_get_str(p->doc, "city"),
                         mg_get_str(p->doc, "country")};
        if (added || ss_hot_customer_wins(ev->ts, v, p->ts, cur)) {
            bson_reinit(p->doc);
            customer_fields(p->doc, o->customer_id, v, ev->ts);
            p->ts = ev->ts;
        }
    }
    if (what & SS_DIMS_PRODUCT) {
        pent *p = mg_pmap_get(&h->pend[C_PRODUCTS], o->product_id.p, o->product_id.n, &added);
        bson_reinit(p->doc);
        mg_append_str(p->doc, "_id", o->product_id);
        mg_append_str(p->doc, "product_name", o->product_name);
        mg_append_str(p->doc, "category", o->category);
        BSON_APPEND_DOUBLE(p->doc, "unit_price", (double)o->unit_price / 100.0);
    }
    if (what & SS_DIMS_PLACES) {
        pend_insert_only(h, C_CATEGORIES, o->category);
        pend_insert_only(h, C_METHODS, o->payment_method);
        pend_str(h, C_COUNTRIES, o->country, &added);
        pent *c = pend_str(h, C_CITIES, o->city, &added);
        if (added)
            mg_append_str(c->doc, "country", o->country);
    }
    return SS_OK;
}

int mongo_put_place(void *vst, const char *city, const char *country, const char *country_code,
                    const char *region, double lat, double lon)
{
    hot_mongo *h = vst;
    int added;
    pent *k = pend_str(h, C_COUNTRIES, (ss_str){country, (uint32_t)strlen(country)}, &added);
    bson_reinit(k->doc);
    BSON_APPEND_UTF8(k->doc, "_id", country);
    BSON_APPEND_UTF8(k->doc, "country_code", country_code);
    BSON_APPEND_UTF8(k->doc, "region", region);
    k->flags |= P_PLACE;
    pent *c = pend_str(h, C_CITIES, (ss_str){city, (uint32_t)strlen(city)}, &added);
    ss_str first =
        added ? (ss_str){country, (uint32_t)strlen(country)} : mg_get_str(c->doc, "country");
    char *first_country = ss_malloc(first.n + 1);
    memcpy(first_country, first.p, first.n);
    first_country[first.n] = '\0';
    bson_reinit(c->doc);
    BSON_APPEND_UTF8(c->doc, "_id", city);
    BSON_APPEND_UTF8(c->doc, "country", first_country);
    BSON_APPEND_DOUBLE(c->doc, "lat", lat);
    BSON_APPEND_DOUBLE(c->doc, "lon", lon);
    free(first_country);
    c->flags |= P_PLACE;
    return SS_OK;
}

int mongo_put_minute(void *vst, int64_t minute)
{
    hot_mongo *h = vst;
    char ts[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(minute, ts);
    int added;
    pent *p = mg_pmap_get(&h->pend[C_MINUTES], ts, SS_ISO_LEN, &added);
    if (!added)
        return SS_OK;
    ss_hot_minute m;
    ss_hot_minute_of(minute, &m);
    mg_append_ms(p->doc, "_id", minute);
    bson_append_utf8(p->doc, "date", 4, ts, 10);
    BSON_APPEND_INT32(p->doc, "hour", m.hour);
    BSON_APPEND_INT32(p->doc, "minute", m.minute);
    BSON_APPEND_INT32(p->doc, "weekday", m.weekday);
    BSON_APPEND_UTF8(p->doc, "weekday_name", m.weekday_name);
    return SS_OK;
}

static int kpi_id(const ss_kpi_row *r, char *buf, size_t cap)
{
    char ts[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(r->minute, ts);
    return snprintf(buf, cap, "%s|%s|%d|%.*s", ss_dim_name(r->dim), ts, r->shard, (int)r->value.n,
                    r->value.p);
}

int mongo_put_kpis(void *vst, const ss_kpi_row *rows, size_t n)
{
    hot_mongo *h = vst;
    for (size_t i = 0; i < n; i++) {
        const ss_kpi_row *r = &rows[i];
        char id[1024];
        int len = kpi_id(r, id, sizeof id);
        if (len < 0 || (size_t)len >= sizeof id)
            return SS_EINVAL;
        int added;
        pent *p = mg_pmap_get(&h->pend[C_KPI], id, (size_t)len, &added);
        bson_t *d = p->doc;
        bson_reinit(d);
        bson_append_utf8(d, "_id", 3, id, len);
        mg_append_ms(d, "minute_start", r->minute);
        BSON_APPEND_UTF8(d, "dimension", ss_dim_name(r->dim));
        mg_append_str(d, "dimension_value", r->value);
        BSON_APPEND_INT32(d, "shard", r->shard);
        BSON_APPEND_INT64(d, "orders", r->k.orders);
        BSON_APPEND_INT64(d, "units", r->k.units);
        BSON_APPEND_INT64(d, "gross_revenue_cents", r->k.gross_cents);
        BSON_APPEND_INT64(d, "paid_revenue_cents", r->k.paid_cents);
        BSON_APPEND_INT64(d, "payment_attempts", r->k.attempts);
        BSON_APPEND_INT64(d, "failed_payments", r->k.failed);
        BSON_APPEND_INT64(d, "cancellations", r->k.cancellations);
        BSON_APPEND_INT64(d, "cancelled_revenue_cents", r->k.cancelled_cents);
        BSON_APPEND_INT32(d, "final", r->final);
    }
    return SS_OK;
}

#include "event/event.h"

const char *ss_event_type_name(ss_event_type type)
{
    switch (type) {
    case SS_EV_ORDER:
        return "order";
    case SS_EV_PAYMENT:
        return "payment";
    case SS_EV_CANCELLATION:
        return "cancellation";
    }
    return "unknown";
}

/* The writer is hand-rolled rather than built on a JSON library: the
 * generator emits over a million orders a second, and building a DOM per
 * event costs more than the whole of this function (bench/gen measures it). */

static inline void field_str(ss_buf *b, const char *key, size_t klen, ss_str v)
{
    ss_buf_put(b, key, klen);
    ss_buf_put_jstr(b, v.p, v.n);
}

#define KEY(b, lit) ss_buf_put((b), (lit), sizeof(lit) - 1)

static void put_head(const ss_event *ev, ss_buf *b, const char *type_lit, size_t tlen)
{
    ss_buf_reserve(b, 512);
    ss_buf_put(b, type_lit, tlen);
    field_str(b, ",\"event_id\":", 12, ev->event_id);
    field_str(b, ",\"order_id\":", 12, ev->order_id);
    KEY(b, ",\"ts\":\"");
    ss_buf_put_time(b, ev->ts);
    ss_buf_putc(b, '"');
}

void ss_event_encode(const ss_event *ev, ss_buf *b)
{
    switch (ev->type) {
    case SS_EV_ORDER: {
        const ss_order *o = &ev->u.order;
        static const char t[] = "{\"type\":\"order\"";
        put_head(ev, b, t, sizeof t - 1);
        field_str(b, ",\"customer_id\":", 15, o->customer_id);
        field_str(b, ",\"customer_segment\":", 20, o->customer_segment);
        field_str(b, ",\"product_id\":", 14, o->product_id);
        field_str(b, ",\"product_name\":", 16, o->product_name);
        field_str(b, ",\"category\":", 12, o->category);
        field_str(b, ",\"city\":", 8, o->city);
        field_str(b, ",\"country\":", 11, o->country);
        KEY(b, ",\"quantity\":");
        ss_buf_put_i64(b, o->quantity);
        KEY(b, ",\"unit_price\":");
        ss_buf_put_cents(b, o->unit_price);
        KEY(b, ",\"amount\":");
        ss_buf_put_cents(b, o->amount);
        KEY(b, ",\"discount\":");
        ss_buf_put_cents(b, o->discount);
        KEY(b, ",\"tax\":");
        ss_buf_put_cents(b, o->tax);
        KEY(b, ",\"shipping\":");
        ss_buf_put_cents(b, o->shipping);
        KEY(b, ",\"total_price\":");
        ss_buf_put_cents(b, o->total_price);
        field_str(b, ",\"currency\":", 12, o->currency);
        field_str(b, ",\"payment_method\":", 18, o->payment_method);
        break;
    }
    case SS_EV_PAYMENT: {
        const ss_payment *p = &ev->u.payment;
        static const char t[] = "{\"type\":\"payment\"";
        put_head(ev, b, t, sizeof t - 1);
        field_str(b, ",\"payment_method\":", 18, p->payment_method);
        KEY(b, ",\"amount\":");
        ss_buf_put_cents(b, p->amount);
        if (p->success) {
            KEY(b, ",\"status\":\"success\"");
        } else {
            KEY(b, ",\"status\":\"failed\"");
            field_str(b, ",\"failure_reason\":", 18, p->failure_reason);
        }
        KEY(b, ",\"attempt\":");
        ss_buf_put_i64(b, p->attempt);
        break;
    }
    case SS_EV_CANCELLATION: {
        const ss_cancellation *c = &ev->u.cancel;
        static const char t[] = "{\"type\":\"cancellation\"";
        put_head(ev, b, t, sizeof t - 1);
        field_str(b, ",\"reason\":", 10, c->reason);
        KEY(b, ",\"refund\":");
        ss_buf_put_cents(b, c->refund);
        break;
    }
    }
    KEY(b, "}\n");
}

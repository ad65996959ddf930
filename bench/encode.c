/* bench_encode: the cost of encoding events as JSON Lines with shopstream's
 * writer against building and dumping the same object with jansson, the JSON
 * library the project uses for documents. Each pass regenerates the same
 * stream; a pass that generates without encoding is subtracted. */
#define _POSIX_C_SOURCE 200809L
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "event/event.h"
#include "gen/gen.h"
#include "gen/profile.h"

enum { MODE_NONE, MODE_OURS, MODE_JANSSON };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static json_t *jstr(ss_str s)
{
    return json_stringn(s.p, s.n);
}

static json_t *jmoney(int64_t cents)
{
    return json_real((double)cents / 100.0);
}

static json_t *to_json(const ss_event *ev)
{
    char ts[SS_ISO_LEN];
    ss_time_format_iso(ev->ts, ts);
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string(ss_event_type_name(ev->type)));
    json_object_set_new(o, "event_id", jstr(ev->event_id));
    json_object_set_new(o, "order_id", jstr(ev->order_id));
    json_object_set_new(o, "ts", json_stringn(ts, SS_ISO_LEN));
    if (ev->type == SS_EV_ORDER) {
        const ss_order *r = &ev->u.order;
        json_object_set_new(o, "customer_id", jstr(r->customer_id));
        json_object_set_new(o, "customer_segment", jstr(r->customer_segment));
        json_object_set_new(o, "product_id", jstr(r->product_id));
        json_object_set_new(o, "product_name", jstr(r->product_name));
        json_object_set_new(o, "category", jstr(r->category));
        json_object_set_new(o, "city", jstr(r->city));
        json_object_set_new(o, "country", jstr(r->country));
        json_object_set_new(o, "quantity", json_integer(r->quantity));
        json_object_set_new(o, "unit_price", jmoney(r->unit_price));
        json_object_set_new(o, "amount", jmoney(r->amount));
        json_object_set_new(o, "discount", jmoney(r->discount));
        json_object_set_new(o, "tax", jmoney(r->tax));
        json_object_set_new(o, "shipping", jmoney(r->shipping));
        json_object_set_new(o, "total_price", jmoney(r->total_price));
        json_object_set_new(o, "currency", jstr(r->currency));
        json_object_set_new(o, "payment_method", jstr(r->payment_method));
    } else if (ev->type == SS_EV_PAYMENT) {
        const ss_payment *p = &ev->u.payment;
        json_object_set_new(o, "payment_method", jstr(p->payment_method));
        json_object_set_new(o, "amount", jmoney(p->amount));
        json_object_set_new(o, "status", json_string(p->success ? "success" : "failed"));
        if (!p->success)
            json_object_set_new(o, "failure_reason", jstr(p->failure_reason));
        json_object_set_new(o, "attempt", json_integer(p->attempt));
    } else {
        json_object_set_new(o, "reason", jstr(ev->u.cancel.reason));
        json_object_set_new(o, "refund", jmoney(ev->u.cancel.refund));
    }
    return o;
}

static double pass(const ss_profile *prof, uint64_t count, int mode, uint64_t *events,
                   size_t *bytes)
{
    ss_gen_config cfg = {.seed = 1, .start_ms = 1793577600000LL, .count = count};
    ss_gen *g = ss_gen_new(prof, &cfg);
    ss_buf b;
    ss_buf_init(&b, 4096);
    const ss_event *ev;
    *events = 0;
    *bytes = 0;
    double t0 = now_s();
    while (ss_gen_next(g, &ev) == 0) {
        (*events)++;
        if (mode == MODE_OURS) {
            b.len = 0;
            ss_event_encode(ev, &b);
            *bytes += b.len;
        } else if (mode == MODE_JANSSON) {
            json_t *o = to_json(ev);
            char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            *bytes += strlen(s) + 1;
            free(s);
            json_decref(o);
        }
    }
    double t = now_s() - t0;
    ss_buf_free(&b);
    ss_gen_free(g);
    return t;
}

int main(int argc, char **argv)
{
    uint64_t count = argc > 1 ? strtoull(argv[1], NULL, 10) : 300000;
    char err[512];
    ss_profile *prof;
    if (ss_profile_load(NULL, &prof, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t ev;
    size_t bytes_ours, bytes_jansson, none;
    double t_none = pass(prof, count, MODE_NONE, &ev, &none);
    double t_ours = pass(prof, count, MODE_OURS, &ev, &bytes_ours) - t_none;
    double t_jan = pass(prof, count, MODE_JANSSON, &ev, &bytes_jansson) - t_none;
    printf("events encoded:        %llu (%llu orders)\n", (unsigned long long)ev,
           (unsigned long long)count);
    printf("shopstream encoder:    %.0f events/s, %.1f MB/s\n", (double)ev / t_ours,
           (double)bytes_ours / t_ours / 1e6);
    printf("jansson build+dump:    %.0f events/s, %.1f MB/s\n", (double)ev / t_jan,
           (double)bytes_jansson / t_jan / 1e6);
    printf("ratio (ours/jansson):  %.1fx\n", t_jan / t_ours);
    ss_profile_free(prof);
    return 0;
}

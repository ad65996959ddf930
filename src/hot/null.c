/* The null hot store ("null:"): accepts everything and keeps nothing. It lets
 * the engine run without a store, to measure decoding, validation and
 * windowing alone (bench/engine), or to validate a stream. Every event counts
 * as new: without a store there is nothing to deduplicate against. */
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "hot/hot.h"

static int null_open(const char *target, const ss_hot_open_opts *o, void **st, char *err,
                     size_t errlen)
{
    (void)target;
    (void)o;
    (void)err;
    (void)errlen;
    *st = NULL;
    return SS_OK;
}

static void null_close(void *st)
{
    (void)st;
}

static int null_ok(void *st)
{
    (void)st;
    return SS_OK;
}

static int null_put_events(void *st, const ss_event *const *evs, const ss_attrib *attrib, size_t n,
                           uint8_t *is_new)
{
    (void)st;
    (void)evs;
    (void)attrib;
    memset(is_new, 1, n);
    return SS_OK;
}

static int null_has_event(void *st, ss_str event_id, int64_t ts, int *found)
{
    (void)st;
    (void)event_id;
    (void)ts;
    *found = 0;
    return SS_OK;
}

static int null_put_late(void *st, const ss_event *ev, const char *raw, size_t len,
                         int64_t watermark, int *is_new)
{
    (void)st;
    (void)ev;
    (void)raw;
    (void)len;
    (void)watermark;
    *is_new = 1;
    return SS_OK;
}

static int null_put_rejected(void *st, const char *raw, size_t len, size_t raw_bytes,
                             const char *reason, const char *source, int64_t position)
{
    (void)st;
    (void)raw;
    (void)len;
    (void)raw_bytes;
    (void)reason;
    (void)source;
    (void)position;
    return SS_OK;
}

static int null_put_order_dims(void *st, const ss_event *order, unsigned what)
{
    (void)st;
    (void)order;
    (void)what;
    return SS_OK;
}

static int null_put_place(void *st, const char *city, const char *country, const char *country_code,
                          const char *region, double lat, double lon)
{
    (void)st;
    (void)city;
    (void)country;
    (void)country_code;
    (void)region;
    (void)lat;
    (void)lon;
    return SS_OK;
}

static int null_put_minute(void *st, int64_t minute)
{
    (void)st;
    (void)minute;
    return SS_OK;
}

static int null_put_kpis(void *st, const ss_kpi_row *rows, size_t n)
{
    (void)st;
    (void)rows;
    (void)n;
    return SS_OK;
}

static int null_claim_shard(void *st, int shard, const char *owner, ss_hot_state *s)
{
    (void)st;
    (void)owner;
    memset(s, 0, sizeof *s);
    s->shard = shard;
    s->watermark = s->input_watermark = s->max_ts = INT64_MIN;
    return SS_OK;
}

static int null_put_state(void *st, const ss_hot_state *s, size_t n, const char *owner,
                          const ss_position *pos, size_t npos)
{
    (void)st;
    (void)s;
    (void)n;
    (void)owner;
    (void)pos;
    (void)npos;
    return SS_OK;
}

static int null_load_state(void *st, void (*state_cb)(void *ctx, const ss_hot_state *s),
                           void (*pos_cb)(void *ctx, const char *source, int64_t offset), void *ctx)
{
    (void)st;
    (void)state_cb;
    (void)pos_cb;
    (void)ctx;
    return SS_OK;
}

static int null_read_kpis(void *st, int64_t from, int64_t to, int dim, int open_only, ss_kpi_cb cb,
                          void *ctx)
{
    (void)st;
    (void)from;
    (void)to;
    (void)dim;
    (void)open_only;
    (void)cb;
    (void)ctx;
    return SS_OK;
}

static int null_lookup_order(void *st, ss_str order_id, ss_attrib *out, char *buf, size_t cap,
                             int *found)
{
    (void)st;
    (void)order_id;
    (void)out;
    (void)buf;
    (void)cap;
    *found = 0;
    return SS_OK;
}

static int null_data_size(void *st, int64_t *bytes)
{
    (void)st;
    *bytes = 0;
    return SS_OK;
}

static int null_scan_range(void *st, const char *table, int64_t from, int64_t to, ss_scan_cb cb,
                           void *ctx)
{
    (void)st;
    (void)table;
    (void)from;
    (void)to;
    (void)cb;
    (void)ctx;
    return SS_OK;
}

static int null_delete_range(void *st, const char *table, int64_t from, int64_t to,
                             int64_t *deleted)
{
    (void)st;
    (void)table;
    (void)from;
    (void)to;
    *deleted = 0;
    return SS_OK;
}

static int null_scan_dims(void *st, const char *table, int64_t cutoff, ss_scan_cb cb, void *ctx)
{
    (void)st;
    (void)table;
    (void)cutoff;
    (void)cb;
    (void)ctx;
    return SS_OK;
}

const ss_hot_ops ss_hot_null_ops = {
    .name = "null",
    .scheme = "null:",
    .open = null_open,
    .close = null_close,
    .begin = null_ok,
    .commit = null_ok,
    .rollback = null_ok,
    .put_events = null_put_events,
    .has_event = null_has_event,
    .put_late = null_put_late,
    .put_rejected = null_put_rejected,
    .put_order_dims = null_put_order_dims,
    .put_place = null_put_place,
    .put_minute = null_put_minute,
    .put_kpis = null_put_kpis,
    .claim_shard = null_claim_shard,
    .put_state = null_put_state,
    .load_state = null_load_state,
    .read_kpis = null_read_kpis,
    .lookup_order = null_lookup_order,
    .data_size = null_data_size,
    .scan_range = null_scan_range,
    .delete_range = null_delete_range,
    .scan_dims = null_scan_dims,
};

#include "hot/hot.h"

#include <stdio.h>
#include <string.h>

#include "common/status.h"
#include "common/timeutil.h"

static const ss_hot_ops *const registry[] = {
    &ss_hot_sqlite_ops,
    &ss_hot_null_ops,
    &ss_hot_mongo_ops,
};

const char *const ss_hot_dim_tables[SS_HOT_NDIM_TABLES] = {
    "customers", "products",        "categories",  "countries",
    "cities",    "payment_methods", "time_minutes"};

const char *ss_dim_name(int dim)
{
    static const char *const names[SS_DIM_COUNT] = {"overall", "city", "country", "category",
                                                    "payment_method"};
    return dim >= 0 && dim < SS_DIM_COUNT ? names[dim] : "unknown";
}

int ss_dim_parse(const char *name, size_t len)
{
    for (int i = 0; i < SS_DIM_COUNT; i++)
        if (strlen(ss_dim_name(i)) == len && memcmp(name, ss_dim_name(i), len) == 0)
            return i;
    return -1;
}

void ss_hot_line_begin(ss_buf *line)
{
    line->len = 0;
    ss_buf_putc(line, '{');
}

static void line_key(ss_buf *line, const char *name, size_t n)
{
    if (line->len > 1)
        ss_buf_putc(line, ',');
    ss_buf_put_jstr(line, name, n);
    ss_buf_putc(line, ':');
}

void ss_hot_line_int(ss_buf *line, const char *name, int64_t v)
{
    size_t n = strlen(name);
    int money = n > 6 && !strcmp(name + n - 6, "_cents");
    line_key(line, name, money ? n - 6 : n);
    if (money)
        ss_buf_put_cents(line, v);
    else
        ss_buf_put_i64(line, v);
}

void ss_hot_line_text(ss_buf *line, const char *name, const char *s, size_t n)
{
    line_key(line, name, strlen(name));
    ss_buf_put_jstr(line, s, n);
}

void ss_hot_line_real(ss_buf *line, const char *name, double v)
{
    char num[40];
    line_key(line, name, strlen(name));
    /* %.15g gives back the digits a coordinate was written with; the same
     * double prints the same on every backend. */
    snprintf(num, sizeof num, "%.15g", v);
    ss_buf_puts(line, num);
}

void ss_hot_line_end(ss_buf *line)
{
    ss_buf_putc(line, '}');
}

void ss_hot_raw_id(const char *raw, size_t len, size_t total, char out[33])
{
    uint64_t a = 0xcbf29ce484222325ULL, b = 0x84222325cbf29ce4ULL ^ total;
    for (size_t i = 0; i < len; i++) {
        a = (a ^ (unsigned char)raw[i]) * 0x100000001b3ULL;
        b = (b ^ (unsigned char)raw[i]) * 0x100000001b3ULL;
        b ^= b >> 29;
    }
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

void ss_hot_minute_of(int64_t minute, ss_hot_minute *m)
{
    static const char *const days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                       "Friday", "Saturday", "Sunday"};
    int64_t in_day = minute - ss_time_floor(minute, SS_MS_PER_DAY);
    m->hour = (int)(in_day / SS_MS_PER_HOUR);
    m->minute = (int)(in_day / SS_MS_PER_MIN % 60);
    int wd = ss_time_weekday(minute);
    m->weekday = wd + 1;
    m->weekday_name = days[wd];
}

static int str_cmp(ss_str a, ss_str b)
{
    int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return c ? c : (a.n > b.n) - (a.n < b.n);
}

int ss_hot_customer_wins(int64_t ts, const ss_str *vals, int64_t cur_ts, const ss_str *cur_vals)
{
    if (ts != cur_ts)
        return ts < cur_ts;
    for (int i = 0; i < 3; i++) {
        int c = str_cmp(vals[i], cur_vals[i]);
        if (c)
            return c < 0;
    }
    return 0;
}

const ss_hot_ops *ss_hot_ops_for(const char *uri)
{
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (strncmp(uri, registry[i]->scheme, strlen(registry[i]->scheme)) == 0)
            return registry[i];
    return NULL;
}

int ss_hot_open(const char *uri, const ss_hot_open_opts *o, ss_hot *hot, char *err, size_t errlen)
{
    hot->ops = NULL;
    hot->st = NULL;
    const ss_hot_ops *ops = ss_hot_ops_for(uri);
    if (ops) {
        int rc = ops->open(uri + strlen(ops->scheme), o, &hot->st, err, errlen);
        if (rc == SS_OK)
            hot->ops = ops;
        return rc;
    }
    snprintf(err, errlen,
             "unsupported hot store '%s': use sqlite:PATH, mongodb://HOST:PORT/DB (or null: to "
             "keep nothing)",
             uri);
    return SS_EINVAL;
}

void ss_hot_close(ss_hot *hot)
{
    if (hot && hot->ops)
        hot->ops->close(hot->st);
    if (hot) {
        hot->ops = NULL;
        hot->st = NULL;
    }
}

typedef struct min_watermark {
    int any;
    int64_t value;
} min_watermark;

static void on_shard_state(void *ctx, const ss_hot_state *s)
{
    min_watermark *m = ctx;
    m->any = 1;
    if (s->watermark < m->value)
        m->value = s->watermark;
}

int ss_hot_min_watermark(ss_hot *hot, int64_t *wm)
{
    min_watermark m = {.any = 0, .value = INT64_MAX};
    *wm = INT64_MIN;
    int rc = hot->ops->load_state(hot->st, on_shard_state, NULL, &m);
    if (rc == SS_OK && m.any)
        *wm = m.value;
    return rc;
}

/* KPI sinks (sink/sink.h): the registry, the catch-up pass and the thread. */
#define _POSIX_C_SOURCE 200809L
#include "sink/sink.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/thread.h"
#include "common/timeutil.h"

#define COMP "sink"

/* Minutes per chunk of a pass: the position moves after each, so that a
 * crash in a long catch-up rewrites at most this much. */
#define CHUNK_MINUTES  10
#define BACKOFF_MAX_MS 30000

static const ss_sink_ops *const backends[] = {&ss_sink_hbase_ops};

int ss_sink_open(const char *uri, ss_sink *sink, char *err, size_t errlen)
{
    memset(sink, 0, sizeof *sink);
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++) {
        const ss_sink_ops *ops = backends[i];
        if (strncmp(uri, ops->scheme, strlen(ops->scheme)) != 0)
            continue;
        int rc = ops->open(uri, &sink->st, err, errlen);
        if (rc == SS_OK)
            sink->ops = ops;
        return rc;
    }
    snprintf(err, errlen,
             "unknown KPI sink '%s': give hbase+http://HOST:PORT/TABLE (HBase's REST gateway "
             "and a table made with 'shopstream hbase-create')",
             uri);
    return SS_EINVAL;
}

int ss_sink_check_uri(const char *uri, char *err, size_t errlen)
{
    ss_sink sink;
    int rc = ss_sink_open(uri, &sink, err, errlen);
    ss_sink_close(&sink);
    return rc;
}

void ss_sink_close(ss_sink *sink)
{
    if (sink && sink->ops)
        sink->ops->close(sink->st);
    if (sink)
        memset(sink, 0, sizeof *sink);
}

/* ---- the position, in the hot store's notes ---- */

typedef struct find_note {
    const char *key;
    char value[512];
    int found;
} find_note;

static int on_note(void *ctx, const char *key, const char *value)
{
    find_note *f = ctx;
    if (!strcmp(key, f->key)) {
        snprintf(f->value, sizeof f->value, "%s", value);
        f->found = 1;
    }
    return SS_OK;
}

static void note_key(char *out, size_t n, const char *what, const char *uri)
{
    snprintf(out, n, "%s %s", what, uri);
}

int ss_sink_position(ss_hot *hot, const char *uri, int64_t *position)
{
    *position = INT64_MIN;
    if (!hot->ops->note_list)
        return SS_ENOTSUP;
    char key[4200];
    note_key(key, sizeof key, "kpi_sink_position", uri);
    find_note f = {.key = key};
    int rc = hot->ops->note_list(hot->st, on_note, &f);
    if (rc == SS_OK && f.found && ss_time_parse_iso(f.value, strlen(f.value), position) != 0) {
        SS_WARN(COMP, "the note '%s' holds '%s', not a time; writing every final minute again", key,
                f.value);
        *position = INT64_MIN;
    }
    return rc;
}

typedef struct list_ctx {
    ss_hot *hot;
    int (*cb)(void *ctx, const char *uri, int64_t position);
    void *ctx;
    char **uris;
    size_t n;
} list_ctx;

static int on_sink_note(void *vctx, const char *key, const char *value)
{
    (void)value;
    list_ctx *l = vctx;
    if (strncmp(key, "kpi_sink ", 9) != 0)
        return SS_OK;
    l->uris = ss_realloc(l->uris, (l->n + 1) * sizeof *l->uris);
    l->uris[l->n++] = ss_strdup(key + 9);
    return SS_OK;
}

int ss_sink_list(ss_hot *hot, int (*cb)(void *ctx, const char *uri, int64_t position), void *ctx)
{
    if (!hot->ops->note_list)
        return SS_OK;
    /* The URIs first: the positions are notes of the same list. */
    list_ctx l = {.hot = hot, .cb = cb, .ctx = ctx};
    int rc = hot->ops->note_list(hot->st, on_sink_note, &l);
    for (size_t i = 0; i < l.n; i++) {
        int64_t pos;
        if (rc == SS_OK)
            rc = ss_sink_position(hot, l.uris[i], &pos);
        if (rc == SS_OK)
            rc = cb(ctx, l.uris[i], pos);
        free(l.uris[i]);
    }
    free(l.uris);
    return rc;
}

int64_t ss_sink_lag(int64_t position, int64_t wm)
{
    if (wm == INT64_MIN)
        return 0;
    int64_t newest_final = ss_time_floor(wm, SS_MS_PER_MIN) - SS_MS_PER_MIN;
    if (position == INT64_MIN)
        return INT64_MAX;
    return newest_final > position ? (newest_final - position) / SS_MS_PER_MIN : 0;
}

static int set_position(ss_hot *hot, const char *uri, int64_t position)
{
    char key[4200], v[SS_ISO_LEN + 1];
    note_key(key, sizeof key, "kpi_sink_position", uri);
    ss_time_format_iso(position, v);
    v[SS_ISO_LEN] = '\0';
    return hot->ops->note_set(hot->st, key, v);
}

/* ---- a pass ---- */

/* The rows of one chunk, as read (one per shard), with their strings. */
typedef struct chunk {
    int64_t first, end; /* end: the first minute past the chunk (set at the first row) */
    ss_sink_row *rows;
    size_t n, cap;
    int64_t open_minute; /* the first minute with a row that is not final, or INT64_MAX */
} chunk;

static int on_kpi(void *ctx, const ss_kpi_row *r)
{
    chunk *c = ctx;
    if (c->n == 0 && c->first == INT64_MIN) {
        c->first = r->minute;
        c->end = r->minute + CHUNK_MINUTES * SS_MS_PER_MIN;
    }
    if (r->minute >= c->end)
        return SS_EOF; /* the chunk is complete: every row of its minutes came */
    if (!r->final) {
        if (r->minute < c->open_minute)
            c->open_minute = r->minute;
        return SS_OK;
    }
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->rows = ss_realloc(c->rows, c->cap * sizeof *c->rows);
    }
    ss_sink_row *s = &c->rows[c->n++];
    s->minute = r->minute;
    s->dim = r->dim;
    s->value.p = ss_strndup(r->value.p, r->value.n);
    s->value.n = r->value.n;
    s->k = r->k;
    return SS_OK;
}

static int row_cmp(const void *a, const void *b)
{
    const ss_sink_row *x = a, *y = b;
    if (x->dim != y->dim)
        return x->dim < y->dim ? -1 : 1;
    size_t n = x->value.n < y->value.n ? x->value.n : y->value.n;
    int c = memcmp(x->value.p, y->value.p, n);
    if (c || x->value.n != y->value.n)
        return c ? c : x->value.n < y->value.n ? -1 : 1;
    return x->minute < y->minute ? -1 : x->minute > y->minute;
}

/* Adds up the shards of each (dimension, value, minute), in key order; drops
 * the rows of minutes from limit on. */
static size_t merge_shards(chunk *c, int64_t limit)
{
    if (c->n == 0)
        return 0; /* (qsort must not be given NULL) */
    qsort(c->rows, c->n, sizeof *c->rows, row_cmp);
    size_t out = 0;
    for (size_t i = 0; i < c->n; i++) {
        ss_sink_row *r = &c->rows[i];
        if (r->minute >= limit) {
            free((char *)r->value.p);
            continue;
        }
        if (out > 0 && row_cmp(&c->rows[out - 1], r) == 0) {
            ss_kpi *k = &c->rows[out - 1].k;
            k->orders += r->k.orders;
            k->units += r->k.units;
            k->gross_cents += r->k.gross_cents;
            k->paid_cents += r->k.paid_cents;
            k->attempts += r->k.attempts;
            k->failed += r->k.failed;
            k->cancellations += r->k.cancellations;
            k->cancelled_cents += r->k.cancelled_cents;
            free((char *)r->value.p);
            continue;
        }
        c->rows[out++] = *r;
    }
    return out;
}

static void chunk_free(chunk *c)
{
    for (size_t i = 0; i < c->n; i++)
        free((char *)c->rows[i].value.p);
    free(c->rows);
    memset(c, 0, sizeof *c);
}

int ss_sink_pass(ss_hot *hot, ss_sink *sink, const char *uri, _Atomic int64_t *floor,
                 ss_sink_progress *pr, char *err, size_t errlen)
{
    err[0] = '\0';
    int rc = ss_sink_position(hot, uri, &pr->position);
    if (rc)
        return rc;
    if (floor)
        atomic_store(floor, pr->position == INT64_MIN ? INT64_MIN : pr->position + SS_MS_PER_MIN);
    /* A minute is final once the lowest watermark of the shards has passed
     * its end: every minute before the watermark's own. */
    int64_t wm;
    pr->newest_final = INT64_MIN;
    rc = ss_hot_min_watermark(hot, &wm);
    pr->wm = wm;
    if (rc || wm == INT64_MIN)
        return rc;
    int64_t to = ss_time_floor(wm, SS_MS_PER_MIN);
    pr->newest_final = to - SS_MS_PER_MIN;
    int64_t from = pr->position == INT64_MIN ? 0 : pr->position + SS_MS_PER_MIN;
    while (from < to) {
        chunk c = {.first = INT64_MIN, .end = INT64_MAX, .open_minute = INT64_MAX};
        rc = hot->ops->read_kpis(hot->st, from, to, -1, 0, on_kpi, &c);
        if (rc == SS_EOF)
            rc = SS_OK;
        if (rc) {
            chunk_free(&c);
            return rc;
        }
        int64_t end = c.end < to ? c.end : to;
        /* A row that is not final yet below the watermark (another shard's
         * engine has not committed its state): stop before its minute. */
        if (c.open_minute < end)
            end = c.open_minute;
        size_t n = merge_shards(&c, end);
        c.n = n;
        if (n > 0) {
            rc = sink->ops->write(sink->st, c.rows, n, err, errlen);
            if (rc) {
                chunk_free(&c);
                return rc;
            }
        }
        chunk_free(&c);
        if (end <= from)
            break;
        rc = set_position(hot, uri, end - SS_MS_PER_MIN);
        if (rc)
            return rc;
        pr->position = end - SS_MS_PER_MIN;
        if (floor)
            atomic_store(floor, end);
        from = end;
    }
    return SS_OK;
}

/* ---- the thread ---- */

struct ss_sink_thread {
    char *hot_uri, *sink_uri;
    _Atomic int64_t floor;
    volatile int stop;
    pthread_t tid;
    int running;
};

/* -1 for every final minute (nothing written). */
static int64_t lag_minutes(const ss_sink_progress *pr)
{
    int64_t lag = ss_sink_lag(pr->position, pr->wm);
    return lag == INT64_MAX ? -1 : lag;
}

/* "3 final minutes behind", "every final minute behind", "caught up". */
static void lag_text(const ss_sink_progress *pr, char *out, size_t n)
{
    int64_t lag = lag_minutes(pr);
    if (lag < 0)
        snprintf(out, n, "every final minute behind");
    else if (lag == 0)
        snprintf(out, n, "caught up");
    else
        snprintf(out, n, "%" PRId64 " final minute%s behind", lag, lag == 1 ? "" : "s");
}

/* The sink's condition for `archive --status`: position, lag, failures. */
static void note_status(ss_hot *hot, ss_sink *sink, const char *uri, const ss_sink_progress *pr,
                        int failures, int64_t delay, const char *cause)
{
    char key[4200], v[1024], pos[SS_ISO_LEN + 1] = "nothing yet";
    note_key(key, sizeof key, "kpi_sink", uri);
    if (pr->position != INT64_MIN) {
        ss_time_format_iso(pr->position, pos);
        pos[SS_ISO_LEN] = '\0';
    }
    char lagtext[64];
    lag_text(pr, lagtext, sizeof lagtext);
    if (!failures)
        snprintf(v, sizeof v, "%s: written through %s, %s", sink->ops->describe(sink->st), pos,
                 lagtext);
    else
        snprintf(v, sizeof v,
                 "%s: written through %s, %s; %d failed attempts (%s); retrying "
                 "every %" PRId64 " s",
                 sink->ops->describe(sink->st), pos, lagtext, failures, cause, delay / 1000);
    hot->ops->note_set(hot->st, key, v);
}

static void nap(volatile int *stop, int64_t ms)
{
    for (int64_t slept = 0; slept < ms && !*stop; slept += 100) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* The loop of the thread, or one pass with once. */
static int sink_loop(ss_sink_thread *t, int once)
{
    char err[1024];
    ss_hot hot;
    int rc = ss_hot_open(t->hot_uri, &(ss_hot_open_opts){0}, &hot, err, sizeof err);
    if (rc) {
        SS_ERROR(COMP, "%s; the KPI sink is off", err);
        return rc;
    }
    ss_sink sink;
    rc = ss_sink_open(t->sink_uri, &sink, err, sizeof err);
    if (rc) {
        SS_ERROR(COMP, "%s", err);
        ss_hot_close(&hot);
        return rc;
    }
    int failures = 0, noted = 0;
    int64_t delay = 1000, last_lag = 0, last_pos = INT64_MIN;
    for (;;) {
        ss_sink_progress pr = {INT64_MIN, INT64_MIN, INT64_MIN};
        rc = ss_sink_pass(&hot, &sink, t->sink_uri, &t->floor, &pr, err, sizeof err);
        if (rc == SS_OK) {
            if (failures)
                SS_INFO(COMP, "%s answers again after %d failed attempts; caught up",
                        sink.ops->describe(sink.st), failures);
            /* The note is written when it changes, not every second. */
            if (!noted || failures || lag_minutes(&pr) != last_lag || pr.position != last_pos)
                note_status(&hot, &sink, t->sink_uri, &pr, 0, 0, NULL);
            noted = 1;
            failures = 0;
            delay = 1000;
        } else {
            failures++;
            delay = failures == 1 ? 1000 : delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
            const char *cause = err[0] ? err : ss_status_str(rc);
            char lag[64], retry[64] = "";
            lag_text(&pr, lag, sizeof lag);
            if (!once)
                snprintf(retry, sizeof retry, "; retrying in %" PRId64 " s", delay / 1000);
            if (rc == SS_EOF)
                SS_ERROR(COMP, "%s; the KPI sink falls behind (%s) until it exists%s", cause, lag,
                         retry);
            else
                SS_ERROR(COMP,
                         "cannot write KPIs to %s: %s; the pipeline goes on and the sink "
                         "catches up later (%s)%s",
                         sink.ops->describe(sink.st), cause, lag, retry);
            note_status(&hot, &sink, t->sink_uri, &pr, failures, delay, cause);
        }
        last_lag = lag_minutes(&pr);
        last_pos = pr.position;
        if (once || t->stop)
            break;
        nap(&t->stop, delay);
        if (t->stop)
            break;
    }
    ss_sink_close(&sink);
    ss_hot_close(&hot);
    return rc;
}

static void *sink_main(void *arg)
{
    ss_thread_name("ss-kpi-sink");
    sink_loop(arg, 0);
    return NULL;
}

void ss_sink_thread_free(ss_sink_thread *t)
{
    if (!t)
        return;
    if (t->running) {
        t->stop = 1;
        pthread_join(t->tid, NULL);
    }
    free(t->hot_uri);
    free(t->sink_uri);
    free(t);
}

int ss_sink_thread_start(const char *hot_uri, const char *sink_uri, ss_sink_thread **tp)
{
    *tp = NULL;
    if (!sink_uri)
        return SS_OK;
    char err[1024];
    ss_sink sink;
    int rc = ss_sink_open(sink_uri, &sink, err, sizeof err);
    if (rc) {
        SS_ERROR(COMP, "%s", err);
        return rc;
    }
    rc = sink.ops->check(sink.st, err, sizeof err);
    if (rc == SS_AGAIN) {
        SS_WARN(COMP, "%s; the pipeline goes on without it, and the sink writes once it answers",
                err);
        rc = SS_OK;
    }
    ss_sink_close(&sink);
    if (rc) {
        SS_ERROR(COMP, "%s", err);
        return rc;
    }
    ss_sink_thread *t = ss_calloc(1, sizeof *t);
    t->hot_uri = ss_strdup(hot_uri);
    t->sink_uri = ss_strdup(sink_uri);
    /* Until the thread has read its position, the archiver keeps every KPI
     * row. */
    atomic_store(&t->floor, INT64_MIN);
    t->running = pthread_create(&t->tid, NULL, sink_main, t) == 0;
    if (!t->running) {
        SS_ERROR(COMP, "cannot start the KPI sink's thread");
        ss_sink_thread_free(t);
        return SS_ERR;
    }
    *tp = t;
    return SS_OK;
}

_Atomic int64_t *ss_sink_thread_floor(ss_sink_thread *t)
{
    return t ? &t->floor : NULL;
}

int ss_sink_thread_finish(ss_sink_thread *t, int final_pass)
{
    if (!t)
        return SS_OK;
    t->stop = 1;
    if (t->running)
        pthread_join(t->tid, NULL);
    t->running = 0;
    return final_pass ? sink_loop(t, 1) : SS_OK;
}

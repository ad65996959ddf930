/* GET /api/stream: server-sent events of KPI changes (docs/api.md).
 *
 * The server learns of changes from the store itself, so that it works as
 * well in `serve`, a process apart from the engine, as inside `run`: one
 * watcher thread asks the hot store every POLL_MS whether another connection
 * has committed (PRAGMA data_version, through ss_hot's version op, on a
 * read-only connection), and only then reads the overall KPI rows of the
 * newest WINDOW_MIN minutes and compares them with what it read before. The
 * rows that differ, with the totals of the last hour, become one event.
 *
 * Events go into a ring with a generation number; each client's callback
 * blocks on a condition variable until the generation moves past the last
 * one it sent (or a heartbeat is due), so each client sends each event once.
 * A client too slow to keep up skips the events that have left the ring: the
 * next one it sends carries the rows as they are now. Callbacks may block
 * because the daemon gives each connection its own thread (server.c).
 * @locks hub->mu guards everything below it in struct ss_web_stream. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
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
#include "hot/hot.h"
#include "query/pool.h"
#include "query/query.h"
#include "web/stream.h"

#define POLL_MS      200
#define HEARTBEAT_MS 15000
#define WINDOW_MIN   30 /* minutes before the newest whose changes are sent */
#define RING         16 /* events kept for clients that fall behind */

struct ss_web_stream {
    const ss_web_config *cfg;
    ss_query_pool *queries;
    int64_t heartbeat_ms; /* well within the idle timeout, which would close a quiet stream */
    pthread_t watcher;
    int watching;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* signalled on a new event and on stop */
    int stopping;
    int clients;
    uint64_t gen;      /* events published so far */
    ss_buf ring[RING]; /* event gen-1 in ring[(gen-1) % RING], SSE-framed */
};

typedef struct stream_client {
    struct ss_web_stream *hub;
    uint64_t next; /* generation of the next event to send */
    int64_t heartbeat_at;
    ss_buf pending; /* bytes to send before waiting again */
    size_t off;
} stream_client;

/* ---- the watcher ---- */

typedef struct watch_state {
    ss_hot hot;
    int have_hot, have_version;
    uint64_t version;
    json_t *seen; /* minute_start -> the row as last read, compact JSON */
} watch_state;

static json_t *read_rows(ss_query *q, const char *sql)
{
    char err[1024];
    ss_buf out;
    ss_buf_init(&out, 4096);
    ss_query_limits lim = {.max_rows = 100000, .timeout_ms = 5000};
    json_t *rows = NULL;
    if (ss_query_exec(q, sql, SS_FMT_JSON, &lim, &out, err, sizeof err) == SS_OK)
        rows = json_loadb(out.data, out.len, 0, NULL);
    else
        SS_WARN("web", "stream: cannot read the KPIs: %s", err);
    ss_buf_free(&out);
    if (rows && !json_is_array(rows)) {
        json_decref(rows);
        rows = NULL;
    }
    return rows;
}

static void publish(struct ss_web_stream *hub, const char *data)
{
    pthread_mutex_lock(&hub->mu);
    ss_buf *b = &hub->ring[hub->gen % RING];
    b->len = 0;
    hub->gen++;
    ss_buf_printf(b, "id: %llu\nevent: kpi\ndata: %s\n\n", (unsigned long long)hub->gen, data);
    pthread_cond_broadcast(&hub->cond);
    pthread_mutex_unlock(&hub->mu);
}

/* Reads the newest minutes and publishes the rows that changed since the
 * last look. The first look at a store with KPIs only fills ws->seen: a
 * client that connects reads the current state from /api/kpis and then
 * follows the changes. A store without KPIs, or none at all, is a known
 * state: its first KPIs are announced. */
static void look(struct ss_web_stream *hub, watch_state *ws)
{
    char err[1024];
    ss_query *q = NULL;
    json_t *rows = NULL, *tot = NULL, *changed = NULL, *seen = NULL, *ev = NULL;
    char *text = NULL;
    if (ss_query_pool_get(hub->queries, &q, err, sizeof err) != SS_OK)
        goto out;
    rows = read_rows(q, SS_WEB_NEWEST_MINUTE_SQL);
    const char *m = json_string_value(json_object_get(json_array_get(rows, 0), "m"));
    int64_t newest;
    if (!m || ss_time_parse_iso(m, strlen(m), &newest) != 0) {
        /* No KPIs yet: the first ones are a change to announce. */
        if (!ws->seen)
            ws->seen = json_object();
        goto out;
    }
    json_decref(rows);
    char from[SS_ISO_LEN + 1] = {0}, hour[SS_ISO_LEN + 1] = {0}, to[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(newest - (WINDOW_MIN - 1) * SS_MS_PER_MIN, from);
    ss_time_format_iso(newest + SS_MS_PER_MIN - SS_MS_PER_HOUR, hour);
    ss_time_format_iso(newest + SS_MS_PER_MIN, to);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT minute_start, orders, gross_revenue, paid_revenue, aov, payment_attempts, "
             "failed_payments, cancellations, cancelled_revenue, final FROM kpi_minute WHERE "
             "dimension = 'overall' AND minute_start >= '%s' ORDER BY minute_start",
             from);
    rows = read_rows(q, sql);
    if (!rows)
        goto out;
    seen = json_object();
    changed = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *minute = json_string_value(json_object_get(row, "minute_start"));
        char *dump = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS);
        if (!minute || !dump) {
            free(dump);
            continue;
        }
        const char *before = json_string_value(json_object_get(ws->seen, minute));
        if (!before || strcmp(before, dump) != 0)
            json_array_append(changed, row);
        json_object_set_new(seen, minute, json_string(dump));
        free(dump);
    }
    int first = ws->seen == NULL;
    json_decref(ws->seen);
    ws->seen = seen;
    seen = NULL;
    if (first || json_array_size(changed) == 0)
        goto out;
    snprintf(sql, sizeof sql,
             "SELECT " SS_WEB_KPI_AGGREGATES " FROM kpi_minute_data WHERE dimension = "
             "'overall' AND minute_start >= '%s' AND minute_start < '%s'",
             hour, to);
    tot = read_rows(q, sql);
    ev = json_pack("{s:O, s:O?, s:{s:s, s:s}}", "rows", changed, "totals", json_array_get(tot, 0),
                   "totals_range", "from", hour, "to", to);
    text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    if (text)
        publish(hub, text);
out:
    free(text);
    json_decref(ev);
    json_decref(tot);
    json_decref(changed);
    json_decref(seen);
    json_decref(rows);
    ss_query_pool_put(hub->queries, q);
}

/* One poll: cheap unless another connection has committed since the last. */
static void poll_store(struct ss_web_stream *hub, watch_state *ws)
{
    if (!ws->have_hot) {
        char uri[PATH_MAX + 16], err[1024];
        ss_web_hot_uri(hub->cfg, uri, sizeof uri);
        ss_hot_open_opts o = {.read_only = 1};
        if (ss_hot_open(uri, &o, &ws->hot, err, sizeof err) != SS_OK) {
            if (!ws->seen)
                ws->seen = json_object(); /* no store: nothing seen */
            return;                       /* look again at the next poll */
        }
        ws->have_hot = 1;
    }
    uint64_t v;
    if (ws->hot.ops->version(ws->hot.st, &v) != SS_OK) {
        ss_hot_close(&ws->hot);
        ws->have_hot = ws->have_version = 0;
        return;
    }
    if (ws->have_version && v == ws->version)
        return;
    ws->version = v;
    ws->have_version = 1;
    look(hub, ws);
}

static void *watch_main(void *arg)
{
    ss_thread_name("ss-stream");
    struct ss_web_stream *hub = arg;
    watch_state ws = {0};
    pthread_mutex_lock(&hub->mu);
    while (!hub->stopping) {
        pthread_mutex_unlock(&hub->mu);
        poll_store(hub, &ws);
        pthread_mutex_lock(&hub->mu);
        struct timespec ts;
        ss_mono_deadline(&ts, POLL_MS);
        while (!hub->stopping && pthread_cond_timedwait(&hub->cond, &hub->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&hub->mu);
    json_decref(ws.seen);
    if (ws.have_hot)
        ss_hot_close(&ws.hot);
    return NULL;
}

/* ---- the clients ---- */

/* MHD's content reader: hands out the pending bytes, else waits for the next
 * event or heartbeat. Runs on the connection's own thread. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    stream_client *c = cls;
    struct ss_web_stream *hub = c->hub;
    (void)pos;
    if (c->off == c->pending.len) {
        c->pending.len = c->off = 0;
        pthread_mutex_lock(&hub->mu);
        for (;;) {
            if (hub->stopping) {
                pthread_mutex_unlock(&hub->mu);
                return MHD_CONTENT_READER_END_OF_STREAM;
            }
            if (c->next < hub->gen) {
                if (hub->gen - c->next > RING)
                    c->next = hub->gen - RING;
                const ss_buf *e = &hub->ring[c->next % RING];
                ss_buf_put(&c->pending, e->data, e->len);
                c->next++;
                break;
            }
            int64_t left = c->heartbeat_at - ss_mono_ms();
            if (left <= 0) {
                ss_buf_lit(&c->pending, ": heartbeat\n\n");
                break;
            }
            struct timespec ts;
            ss_mono_deadline(&ts, left);
            pthread_cond_timedwait(&hub->cond, &hub->mu, &ts);
        }
        pthread_mutex_unlock(&hub->mu);
        c->heartbeat_at = ss_mono_ms() + hub->heartbeat_ms;
    }
    size_t n = c->pending.len - c->off;
    if (n > max)
        n = max;
    memcpy(buf, c->pending.data + c->off, n);
    c->off += n;
    return (ssize_t)n;
}

static void stream_free(void *cls)
{
    stream_client *c = cls;
    pthread_mutex_lock(&c->hub->mu);
    c->hub->clients--;
    pthread_mutex_unlock(&c->hub->mu);
    ss_buf_free(&c->pending);
    free(c);
}

struct MHD_Response *ss_web_stream_response(ss_web_stream *hub, ss_web_resp *resp)
{
    pthread_mutex_lock(&hub->mu);
    int full = hub->clients >= hub->cfg->max_streams || hub->stopping;
    if (!full)
        hub->clients++;
    uint64_t gen = hub->gen;
    pthread_mutex_unlock(&hub->mu);
    if (full) {
        ss_web_error(resp, 503,
                     "too many event streams open (at most %lld): close one or retry later, or "
                     "raise 'shopstream serve --max-streams'",
                     (long long)hub->cfg->max_streams);
        return NULL;
    }
    stream_client *c = ss_calloc(1, sizeof *c);
    c->hub = hub;
    c->next = gen;
    c->heartbeat_at = ss_mono_ms() + hub->heartbeat_ms;
    ss_buf_init(&c->pending, 4096);
    /* Sent at once, so that the client sees the stream open before the first
     * event; retry asks a browser to reconnect after 1 s. */
    ss_buf_lit(&c->pending, "retry: 1000\n: stream open\n\n");
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, c, stream_free);
    if (!r) {
        stream_free(c);
        ss_web_error(resp, 500, "cannot create the event stream");
    }
    return r;
}

int ss_web_stream_new(const ss_web_config *cfg, ss_query_pool *queries, ss_web_stream **out)
{
    *out = NULL;
    ss_web_stream *hub = ss_calloc(1, sizeof *hub);
    hub->cfg = cfg;
    hub->queries = queries;
    hub->heartbeat_ms =
        cfg->idle_timeout_ms / 2 < HEARTBEAT_MS ? cfg->idle_timeout_ms / 2 : HEARTBEAT_MS;
    if (hub->heartbeat_ms < 1)
        hub->heartbeat_ms = 1;
    pthread_mutex_init(&hub->mu, NULL);
    ss_mono_cond_init(&hub->cond);
    for (int i = 0; i < RING; i++)
        ss_buf_init(&hub->ring[i], 1024);
    if (pthread_create(&hub->watcher, NULL, watch_main, hub) != 0) {
        ss_web_stream_free(hub);
        return SS_ERR;
    }
    hub->watching = 1;
    *out = hub;
    return SS_OK;
}

void ss_web_stream_stop(ss_web_stream *hub)
{
    if (!hub)
        return;
    pthread_mutex_lock(&hub->mu);
    hub->stopping = 1;
    pthread_cond_broadcast(&hub->cond);
    pthread_mutex_unlock(&hub->mu);
    if (hub->watching)
        pthread_join(hub->watcher, NULL);
    hub->watching = 0;
}

void ss_web_stream_free(ss_web_stream *hub)
{
    if (!hub)
        return;
    ss_web_stream_stop(hub);
    for (int i = 0; i < RING; i++)
        ss_buf_free(&hub->ring[i]);
    pthread_cond_destroy(&hub->cond);
    pthread_mutex_destroy(&hub->mu);
    free(hub);
}

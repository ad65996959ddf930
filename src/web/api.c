/* The endpoints of the HTTP API (docs/api.md).
 *
 * Every endpoint that reads data opens its own read-only connections for the
 * request and closes them before it returns: SQLite opens in well under a
 * millisecond, and a connection per request needs no locking between the
 * server's threads. Data goes through ss_query (the read-only guard, the row
 * and time limits, and the same number formatting as `shopstream sql`); the
 * SQL the endpoints build holds only values checked against fixed lists and
 * times the server formatted itself. */
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "cold/archiver.h"
#include "common/timeutil.h"
#include "hot/hot.h"
#include "query/pool.h"
#include "query/query.h"
#include "sink/sink.h"
#include "web/web.h"

static const char *const dimensions[] = {"overall",  "city",           "country",
                                         "category", "payment_method", NULL};
static const char *const metrics[] = {"orders",
                                      "units",
                                      "gross_revenue",
                                      "paid_revenue",
                                      "aov",
                                      "payment_attempts",
                                      "failed_payments",
                                      "failure_rate",
                                      "cancellations",
                                      "cancelled_revenue",
                                      NULL};

static int in_list(const char *s, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (!strcmp(s, list[i]))
            return 1;
    return 0;
}

static void put_list(ss_buf *b, const char *const *list)
{
    for (size_t i = 0; list[i]; i++) {
        if (i)
            ss_buf_putc(b, '|');
        ss_buf_puts(b, list[i]);
    }
}

/* Takes a query connection from the server's pool; a store that cannot be
 * opened (not created yet, say) is a 503: the server is fine, the data is
 * not there. */
static ss_query *open_query(const ss_web_req *req, ss_web_resp *resp)
{
    char err[1024];
    ss_query *q = NULL;
    if (ss_query_pool_get(ss_web_queries(req->web), &q, err, sizeof err) != SS_OK) {
        ss_web_error(resp, 503, "%s", err);
        return NULL;
    }
    return q;
}

/* Gives the connection back for the next request. */
static void close_query(const ss_web_req *req, ss_query *q)
{
    ss_query_pool_put(ss_web_queries(req->web), q);
}

/* Runs SQL, appending its rows as JSON to out (which may be resp->body). A
 * refused or invalid statement, or a limit reached, is the client's to fix
 * (400); anything else is a 500. */
static int run_json(const ss_web_req *req, ss_query *q, const char *sql, ss_buf *out,
                    ss_web_resp *resp)
{
    char err[1024];
    const ss_web_config *cfg = req->cfg;
    ss_query_limits lim = {.max_rows = cfg->max_rows,
                           .timeout_ms = cfg->query_timeout_ms,
                           .max_value_bytes = cfg->max_value_bytes,
                           .max_output_bytes = cfg->max_response_bytes,
                           .one_statement = 1};
    int rc = ss_query_exec(q, sql, SS_FMT_JSON, &lim, out, err, sizeof err);
    /* A limit names the option that sets it. */
    static const char *const options[] = {
        [SS_QUERY_LIMIT_ROWS] = "--max-rows",
        [SS_QUERY_LIMIT_TIME] = "--query-timeout-ms",
        [SS_QUERY_LIMIT_VALUE] = "--max-value-kb",
        [SS_QUERY_LIMIT_OUTPUT] = "--max-response-mb",
    };
    ss_query_limit hit = ss_query_limit_hit(q);
    if (rc == SS_EINVAL)
        ss_web_error(resp, 400, "%s", err);
    else if (rc && hit != SS_QUERY_LIMIT_NONE)
        ss_web_error(resp, 400, "%s (raise it with 'shopstream serve %s')", err, options[hit]);
    else if (rc)
        ss_web_error(resp, 500, "%s", err);
    return rc;
}

/* Runs SQL and parses its rows; NULL (with resp set) on failure. For the
 * few small answers the server reads itself. */
static json_t *query_rows(const ss_web_req *req, ss_query *q, const char *sql, ss_web_resp *resp)
{
    ss_buf out;
    ss_buf_init(&out, 1024);
    json_t *rows = NULL;
    if (run_json(req, q, sql, &out, resp) == SS_OK) {
        rows = json_loadb(out.data, out.len, 0, NULL);
        if (!json_is_array(rows)) {
            json_decref(rows);
            rows = NULL;
            ss_web_error(resp, 500, "cannot read the store's answer to '%s'", sql);
        }
    }
    ss_buf_free(&out);
    return rows;
}

/* Reads range= or from=&to= into r (request.c). Relative ranges end with the
 * newest minute in the store, not the wall clock: generated data runs on
 * simulated time, and a replayed store is then still readable. */
static int parse_range(const ss_web_req *req, ss_query *q, ss_web_range *r, ss_web_resp *resp)
{
    char err[512];
    int status = ss_web_range_parse(req->target, ss_now_ms(), r, err, sizeof err);
    if (status) {
        ss_web_error(resp, status, "%s", err);
        return SS_EINVAL;
    }
    if (!r->name)
        return SS_OK;
    json_t *rows = query_rows(req, q, SS_WEB_NEWEST_MINUTE_SQL, resp);
    if (!rows)
        return SS_ERR;
    const char *m = json_string_value(json_object_get(json_array_get(rows, 0), "m"));
    int64_t newest;
    if (!m || ss_time_parse_iso(m, strlen(m), &newest) != 0)
        newest = ss_time_floor(ss_now_ms(), SS_MS_PER_MIN); /* an empty store */
    json_decref(rows);
    r->to = newest + SS_MS_PER_MIN;
    r->from = r->to - r->span_ms;
    return SS_OK;
}

static void put_range(ss_buf *b, const ss_web_range *r)
{
    ss_buf_lit(b, "\"range\":{\"name\":");
    if (r->name)
        ss_buf_put_jstr(b, r->name, strlen(r->name));
    else
        ss_buf_lit(b, "null");
    ss_buf_lit(b, ",\"from\":\"");
    ss_buf_put_time(b, r->from);
    ss_buf_lit(b, "\",\"to\":\"");
    ss_buf_put_time(b, r->to);
    ss_buf_lit(b, "\"}");
}

/* "COLUMN >= 'FROM' AND COLUMN < 'TO'": stored times are ISO text with
 * milliseconds, which sorts as time does. */
static void put_time_cond(ss_buf *sql, const char *column, const ss_web_range *r)
{
    ss_buf_printf(sql, "%s >= '", column);
    ss_buf_put_time(sql, r->from);
    ss_buf_printf(sql, "' AND %s < '", column);
    ss_buf_put_time(sql, r->to);
    ss_buf_putc(sql, '\'');
}

/* Runs sql and answers {"range":...,FIELDS"rows":[...]}; fields is empty
 * or JSON members each followed by a comma. */
static void respond_rows(const ss_web_req *req, ss_query *q, ss_buf *sql, const ss_web_range *r,
                         const char *fields, ss_web_resp *resp)
{
    /* Straight into the body: an answer may be megabytes. On failure
     * run_json replaces the body with the error. */
    ss_buf_putc(&resp->body, '{');
    put_range(&resp->body, r);
    ss_buf_putc(&resp->body, ',');
    ss_buf_puts(&resp->body, fields);
    ss_buf_lit(&resp->body, "\"rows\":");
    if (run_json(req, q, ss_buf_cstr(sql), &resp->body, resp) == SS_OK)
        ss_buf_lit(&resp->body, "}\n");
}

static const char *dimension_arg(const ss_web_req *req, const char *def, ss_web_resp *resp)
{
    const char *d = ss_web_arg(req, "dimension");
    if (!d)
        return def;
    if (in_list(d, dimensions))
        return d;
    ss_web_error(resp, 400, "dimension: '%s' is not a dimension; use one of %s", d,
                 "overall|city|country|category|payment_method");
    return NULL;
}

static void handle_healthz(const ss_web_req *req, ss_web_resp *resp)
{
    (void)req;
    ss_buf_lit(&resp->body, "{\"status\":\"ok\"}\n");
}

static void handle_totals(const ss_web_req *req, ss_web_resp *resp)
{
    ss_buf sql, rows;
    ss_buf_init(&sql, 1024);
    ss_buf_init(&rows, 1024);
    ss_web_range r;
    ss_query *q = open_query(req, resp);
    if (!q || parse_range(req, q, &r, resp))
        goto out;
    ss_buf_lit(&sql, "SELECT " SS_WEB_KPI_AGGREGATES " FROM kpi_minute_data WHERE dimension = "
                     "'overall' AND ");
    put_time_cond(&sql, "minute_start", &r);
    if (run_json(req, q, ss_buf_cstr(&sql), &rows, resp))
        goto out;
    /* One row: "[\n {...}\n]\n"; the object is what the answer holds. */
    const char *a = memchr(rows.data, '{', rows.len);
    const char *b = a ? strrchr(ss_buf_cstr(&rows), '}') : NULL;
    if (!a || !b) {
        ss_web_error(resp, 500, "the totals query returned no row");
        goto out;
    }
    ss_buf_putc(&resp->body, '{');
    put_range(&resp->body, &r);
    ss_buf_lit(&resp->body, ",\"totals\":");
    ss_buf_put(&resp->body, a, (size_t)(b - a + 1));
    ss_buf_lit(&resp->body, "}\n");
out:
    close_query(req, q);
    ss_buf_free(&sql);
    ss_buf_free(&rows);
}

static void handle_kpis(const ss_web_req *req, ss_web_resp *resp)
{
    ss_buf sql;
    ss_buf_init(&sql, 1024);
    ss_web_range r;
    ss_query *q = NULL;
    const char *dim = dimension_arg(req, "overall", resp);
    if (!dim)
        goto out;
    q = open_query(req, resp);
    if (!q || parse_range(req, q, &r, resp))
        goto out;
    ss_buf_printf(&sql,
                  "SELECT minute_start, dimension_value, orders, units, gross_revenue, "
                  "paid_revenue, aov, payment_attempts, failed_payments, CASE WHEN "
                  "payment_attempts > 0 THEN round(1.0 * failed_payments / payment_attempts, 6) "
                  "END AS failure_rate, cancellations, cancelled_revenue, final FROM kpi_minute "
                  "WHERE dimension = '%s' AND ",
                  dim);
    put_time_cond(&sql, "minute_start", &r);
    ss_buf_lit(&sql, " ORDER BY minute_start, dimension_value");
    char fields[128];
    snprintf(fields, sizeof fields, "\"dimension\":\"%s\",", dim);
    respond_rows(req, q, &sql, &r, fields, resp);
out:
    close_query(req, q);
    ss_buf_free(&sql);
}

static void handle_top(const ss_web_req *req, ss_web_resp *resp)
{
    ss_buf sql;
    ss_buf_init(&sql, 1024);
    ss_web_range r;
    ss_query *q = NULL;
    const char *dim = dimension_arg(req, "city", resp);
    const char *metric = ss_web_arg(req, "metric"), *ntext = ss_web_arg(req, "n");
    long n = 10;
    if (!dim)
        goto out;
    if (!metric)
        metric = "gross_revenue";
    if (!in_list(metric, metrics)) {
        ss_buf m;
        ss_buf_init(&m, 256);
        put_list(&m, metrics);
        ss_web_error(resp, 400, "metric: '%s' is not a metric; use one of %s", metric,
                     ss_buf_cstr(&m));
        ss_buf_free(&m);
        goto out;
    }
    if (ntext) {
        char *end;
        n = strtol(ntext, &end, 10);
        if (!*ntext || *end || n < 1 || n > 1000) {
            ss_web_error(resp, 400, "n: '%s' is not a whole number from 1 to 1000", ntext);
            goto out;
        }
    }
    q = open_query(req, resp);
    if (!q || parse_range(req, q, &r, resp))
        goto out;
    /* Cities come with their coordinates (the cities dimension), for maps. */
    int city = !strcmp(dim, "city");
    if (city)
        ss_buf_lit(&sql, "SELECT k.*, c.lat, c.lon FROM (");
    /* Each part (hot, then cold) sums its own rows per value first, and the
     * answer combines the sums: the parts' sums run over their tables alone,
     * so no row of a long range passes through the table over both. */
    ss_buf_lit(&sql, "SELECT dimension_value, " SS_WEB_KPI_AGGREGATES " FROM (");
    for (int part = 0; part < 2; part++) {
        ss_buf_printf(&sql,
                      "%sSELECT dimension_value, " SS_WEB_KPI_PART_SUMS
                      " FROM %s_kpi_minute_data WHERE dimension = '%s' AND ",
                      part ? " UNION ALL " : "", part ? "cold" : "hot", dim);
        put_time_cond(&sql, "minute_start", &r);
        ss_buf_lit(&sql, " GROUP BY dimension_value");
    }
    ss_buf_lit(&sql, ")");
    /* Ties in the metric are broken by name, so that the answer is stable. */
    ss_buf_printf(&sql, " GROUP BY dimension_value ORDER BY %s DESC, dimension_value LIMIT %ld",
                  metric, n);
    if (city)
        ss_buf_printf(&sql,
                      ") k LEFT JOIN cities c ON c.city = k.dimension_value ORDER BY k.%s DESC, "
                      "k.dimension_value",
                      metric);
    char fields[256];
    snprintf(fields, sizeof fields, "\"dimension\":\"%s\",\"metric\":\"%s\",\"n\":%ld,", dim,
             metric, n);
    respond_rows(req, q, &sql, &r, fields, resp);
out:
    close_query(req, q);
    ss_buf_free(&sql);
}

/* Cancellations by reason over the range, from the facts (hot and cold: a
 * range past the hot store reads archived events); kpi_minute counts
 * cancellations but not their reasons. */
static void handle_cancellations(const ss_web_req *req, ss_web_resp *resp)
{
    ss_buf sql;
    ss_buf_init(&sql, 512);
    ss_web_range r;
    ss_query *q = open_query(req, resp);
    if (!q || parse_range(req, q, &r, resp))
        goto out;
    ss_buf_lit(&sql, "SELECT reason, count(*) AS cancellations, round(sum(refund), 2) AS refunded "
                     "FROM cancellations WHERE ");
    put_time_cond(&sql, "ts", &r);
    ss_buf_lit(&sql, " GROUP BY reason ORDER BY cancellations DESC, reason");
    respond_rows(req, q, &sql, &r, "", resp);
out:
    close_query(req, q);
    ss_buf_free(&sql);
}

static void handle_sql(const ss_web_req *req, ss_web_resp *resp)
{
    const char *text = ss_web_arg(req, "q");
    ss_query *q = NULL;
    if (!text || !*text) {
        ss_web_error(resp, 400,
                     "q: give the SQL statement, URL-encoded, as in "
                     "/api/sql?q=SELECT%%20count(*)%%20FROM%%20orders");
        goto out;
    }
    q = open_query(req, resp);
    if (!q)
        goto out;
    ss_buf_lit(&resp->body, "{\"rows\":");
    if (run_json(req, q, text, &resp->body, resp) == SS_OK)
        ss_buf_lit(&resp->body, "}\n");
out:
    close_query(req, q);
}

/* Opens the hot store read-only for what SQL does not show: its size and
 * the archive records with their manifests. */
static int open_hot(const ss_web_req *req, ss_hot *hot, ss_web_resp *resp)
{
    char uri[PATH_MAX + 16], err[1024];
    ss_web_hot_uri(req->cfg, uri, sizeof uri);
    ss_hot_open_opts o = {.read_only = 1};
    if (ss_hot_open(uri, &o, hot, err, sizeof err) != SS_OK) {
        ss_web_error(resp, 503, "%s", err);
        return SS_EIO;
    }
    return SS_OK;
}

static int archive_one(void *ctx, const char *id, const char *state, int64_t cutoff,
                       const char *created_at, const char *manifest)
{
    json_t *list = ctx;
    ss_archive_summary sum;
    ss_archive_summarize(manifest, &sum);
    char cut[SS_ISO_LEN + 1];
    ss_time_format_iso(cutoff, cut);
    cut[SS_ISO_LEN] = '\0';
    json_array_append_new(
        list, json_pack("{s:s, s:s, s:s?, s:s, s:I, s:I, s:{s:s?, s:s?}}", "id", id, "state", state,
                        "created", created_at, "cutoff", cut, "records", (json_int_t)sum.records,
                        "bytes", (json_int_t)sum.bytes, "range", "from",
                        sum.from[0] ? sum.from : NULL, "to", sum.to[0] ? sum.to : NULL));
    return SS_OK;
}

static void handle_archive(const ss_web_req *req, ss_web_resp *resp)
{
    ss_hot hot = {0};
    json_t *doc = NULL, *list = json_array();
    const char *max_text = ss_web_arg(req, "hot_max_mb");
    int64_t max_bytes = 0;
    if (max_text) {
        char *end;
        double max_mb = strtod(max_text, &end);
        if (!*max_text || *end || !(max_mb >= 0.01 && max_mb <= 1e9)) {
            ss_web_error(resp, 400,
                         "hot_max_mb: '%s' is not a number of MB from 0.01 to 1000000000 "
                         "(the threshold given to --hot-max-mb)",
                         max_text);
            goto out;
        }
        max_bytes = (int64_t)(max_mb * 1e6);
    }
    if (open_hot(req, &hot, resp))
        goto out;
    int64_t size = 0;
    if (hot.ops->data_size(hot.st, &size) != SS_OK ||
        hot.ops->archive_list(hot.st, archive_one, list) != SS_OK) {
        ss_web_error(resp, 500, "cannot read the hot store's size and archives");
        goto out;
    }
    doc = json_pack("{s:I, s:o, s:o, s:O}", "hot_bytes", (json_int_t)size, "hot_max_bytes",
                    max_bytes ? json_integer(max_bytes) : json_null(), "over_threshold",
                    max_bytes ? json_boolean(size > max_bytes) : json_null(), "archives", list);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    if (!text) {
        ss_web_error(resp, 500, "cannot encode the archive status");
        goto out;
    }
    ss_buf_puts(&resp->body, text);
    ss_buf_putc(&resp->body, '\n');
    free(text);
out:
    json_decref(doc);
    json_decref(list);
    if (hot.ops)
        ss_hot_close(&hot);
}

static void metric(ss_buf *b, const char *name, const char *type, const char *help, int64_t v)
{
    ss_buf_printf(b, "# HELP shopstream_%s %s\n# TYPE shopstream_%s %s\nshopstream_%s %lld\n", name,
                  help, name, type, name, (long long)v);
}

typedef struct sink_metrics {
    ss_buf *b;
    int64_t wm;
    int n;
} sink_metrics;

/* One KPI sink's lag (--kpi-sink): final minutes not written yet, +Inf
 * while it has written none. */
static int sink_metric(void *ctx, const char *uri, int64_t position)
{
    sink_metrics *sm = ctx;
    if (sm->n++ == 0)
        ss_buf_printf(sm->b, "# HELP shopstream_kpi_sink_lag_minutes Final minutes of KPIs that "
                             "the KPI sink has not written yet.\n"
                             "# TYPE shopstream_kpi_sink_lag_minutes gauge\n");
    ss_buf_lit(sm->b, "shopstream_kpi_sink_lag_minutes{sink=");
    ss_buf_put_jstr(sm->b, uri, strlen(uri));
    int64_t lag = ss_sink_lag(position, sm->wm);
    if (lag == INT64_MAX)
        ss_buf_printf(sm->b, "} +Inf\n");
    else
        ss_buf_printf(sm->b, "} %lld\n", (long long)lag);
    return SS_OK;
}

static void handle_metrics(const ss_web_req *req, ss_web_resp *resp)
{
    static const struct {
        const char *key, *name, *help;
    } counters[] = {
        {"events_in", "events_in_total", "Input records the engine has judged."},
        {"stored", "events_stored_total", "Events stored as facts."},
        {"duplicates", "events_duplicate_total", "Events dropped as duplicates of an event_id."},
        {"rejected", "events_rejected_total", "Invalid input records (rejected_events)."},
        {"late", "events_late_total", "Events behind the watermark (late_events)."},
    };
    ss_hot hot = {0};
    ss_query *q = open_query(req, resp);
    json_t *state = NULL, *arch = NULL;
    if (!q)
        goto out;
    state = query_rows(req, q, "SELECT key, value FROM engine_state", resp);
    arch = state ? query_rows(req, q,
                              "SELECT count(*) AS n FROM archives WHERE state = 'committed'", resp)
                 : NULL;
    if (!arch || open_hot(req, &hot, resp))
        goto out;
    int64_t size = 0;
    if (hot.ops->data_size(hot.st, &size) != SS_OK) {
        ss_web_error(resp, 500, "cannot measure the hot store");
        goto out;
    }
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    ss_buf *b = &resp->body;
    json_int_t watermark = INT64_MIN;
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        json_int_t v = 0;
        size_t i;
        json_t *row;
        json_array_foreach(state, i, row)
        {
            const char *k = json_string_value(json_object_get(row, "key"));
            if (k && !strcmp(k, counters[c].key))
                v = json_integer_value(json_object_get(row, "value"));
            if (k && !strcmp(k, "watermark") && json_is_integer(json_object_get(row, "value")))
                watermark = json_integer_value(json_object_get(row, "value"));
        }
        metric(b, counters[c].name, "counter", counters[c].help, (int64_t)v);
    }
    /* Before the first event there is no watermark, and no lag to report. */
    if (watermark != INT64_MIN)
        ss_buf_printf(b,
                      "# HELP shopstream_watermark_lag_seconds Wall-clock time minus the engine's "
                      "watermark (large for simulated time).\n"
                      "# TYPE shopstream_watermark_lag_seconds gauge\n"
                      "shopstream_watermark_lag_seconds %.3f\n",
                      (double)(ss_now_ms() - (int64_t)watermark) / 1000.0);
    metric(b, "hot_data_bytes", "gauge", "Bytes of data held by the hot store.", size);
    sink_metrics sm = {.b = b, .wm = watermark};
    if (ss_sink_list(&hot, sink_metric, &sm) != SS_OK) {
        ss_web_error(resp, 500, "cannot read the KPI sinks' notes");
        goto out;
    }
    metric(b, "archive_runs_total", "counter", "Committed archive runs.",
           (int64_t)json_integer_value(json_object_get(json_array_get(arch, 0), "n")));
    ss_web_write_request_metrics(req->web, b);
out:
    json_decref(state);
    json_decref(arch);
    if (hot.ops)
        ss_hot_close(&hot);
    close_query(req, q);
}

#define RANGE "range|from|to"

const ss_web_route ss_web_routes[] = {
    {"/healthz", SS_WEB_ROUTE_BUFFERED, "", 1, handle_healthz},
    {"/metrics", SS_WEB_ROUTE_BUFFERED, "", 0, handle_metrics},
    {"/api/totals", SS_WEB_ROUTE_BUFFERED, RANGE, 0, handle_totals},
    {"/api/kpis", SS_WEB_ROUTE_BUFFERED, "dimension|" RANGE, 0, handle_kpis},
    {"/api/top", SS_WEB_ROUTE_BUFFERED, "dimension|metric|n|" RANGE, 0, handle_top},
    {"/api/cancellations", SS_WEB_ROUTE_BUFFERED, RANGE, 0, handle_cancellations},
    {"/api/archive", SS_WEB_ROUTE_BUFFERED, "hot_max_mb", 0, handle_archive},
    {"/api/sql", SS_WEB_ROUTE_BUFFERED, "q", 0, handle_sql},
    {"/api/stream", SS_WEB_ROUTE_STREAM, "", 0, NULL},
    /* The page (assets.c): files of the binary, no data, hence no token;
     * any parameters (a browser's cache-busting ones) are let be. */
    {"/", SS_WEB_ROUTE_ASSET, NULL, 1, NULL},
    {"/assets/", SS_WEB_ROUTE_ASSET, NULL, 1, NULL},
    {NULL, 0, NULL, 0, NULL},
};

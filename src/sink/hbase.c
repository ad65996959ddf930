/* The HBase KPI sink: rows written through HBase's REST gateway
 * ("Stargate") with libcurl, as JSON CellSets.
 *
 * Row key "dimension#value#minute" (the minute as kpi_minute.minute_start
 * writes it, ISO UTC), so that one dimension value's minutes are one prefix
 * scan, oldest first; family "m" with a column per KPI, values as text
 * (docs/data-dictionary.md, "HBase"). A request carries a few hundred cells:
 * the gateway turns a CellSet into one batch of Puts, and one connection is
 * kept alive for all of them. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/http.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "sink/sink.h"

#define COMP   "sink:hbase"
#define SCHEME "hbase+http://"
#define FAMILY "m"
/* Cells per request: a row has up to nine. */
#define BATCH_CELLS 300
/* A request that takes longer has failed: the gateway gives up on a master
 * that is away well before this. */
#define REQUEST_TIMEOUT_S 60L

typedef struct hbase {
    char *base;  /* http://HOST:PORT */
    char *table; /* as given */
    char *desc;
    CURL *curl;
} hbase;

static void hbase_close(void *vst)
{
    hbase *hb = vst;
    if (!hb)
        return;
    if (hb->curl)
        curl_easy_cleanup(hb->curl);
    free(hb->base);
    free(hb->table);
    free(hb->desc);
    free(hb);
}

/* HBase's table names: [namespace:]qualifier of letters, digits, '_', '-'
 * and '.' (a qualifier not starting with '.' or '-'). */
static int table_name_ok(const char *s)
{
    const char *q = strchr(s, ':');
    if (q && (q == s || strchr(q + 1, ':')))
        return 0;
    const char *name = q ? q + 1 : s;
    if (!*name || *name == '.' || *name == '-')
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("_-.:", *p)))
            return 0;
    return 1;
}

static int hbase_open(const char *uri, void **st, char *err, size_t errlen)
{
    *st = NULL;
    const char *hp = uri + strlen(SCHEME);
    const char *slash = strchr(hp, '/');
    const char *colon = memchr(hp, ':', slash ? (size_t)(slash - hp) : strlen(hp));
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (!slash || !colon || colon == hp || end != slash || port < 1 || port > 65535) {
        snprintf(err, errlen,
                 "bad KPI sink '%s': give hbase+http://HOST:PORT/TABLE, the address of HBase's "
                 "REST gateway and a table (e.g. hbase+http://127.0.0.1:8080/kpis)",
                 uri);
        return SS_EINVAL;
    }
    if (!table_name_ok(slash + 1)) {
        snprintf(err, errlen,
                 "bad KPI sink '%s': the table '%s' is not an HBase table name; give "
                 "[NAMESPACE:]NAME of letters, digits, '_', '-' and '.' after the port",
                 uri, slash + 1);
        return SS_EINVAL;
    }
    hbase *hb = ss_calloc(1, sizeof *hb);
    hb->base = ss_malloc((size_t)(slash - uri) - strlen("hbase+") + 1);
    snprintf(hb->base, (size_t)(slash - uri) - strlen("hbase+") + 1, "%s", uri + strlen("hbase+"));
    hb->table = ss_strdup(slash + 1);
    ss_buf d;
    ss_buf_init(&d, 128);
    ss_buf_printf(&d, "HBase table '%s' at %s", hb->table, hb->base);
    hb->desc = (char *)ss_buf_cstr(&d);
    hb->curl = curl_easy_init();
    if (!hb->curl) {
        snprintf(err, errlen, "cannot start libcurl for %s", hb->desc);
        hbase_close(hb);
        return SS_ERR;
    }
    *st = hb;
    return SS_OK;
}

static const char *hbase_describe(void *vst)
{
    return ((hbase *)vst)->desc;
}

static void setup_timeout(CURL *c, void *ctx)
{
    (void)ctx;
    curl_easy_setopt(c, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
}

/* The URL of the table's resource rest ("schema", a row), percent-encoded
 * (a row key's '#' becomes %23). */
static char *table_url(const hbase *hb, const char *rest)
{
    ss_buf b;
    ss_buf_init(&b, 256);
    ss_buf_puts(&b, hb->base);
    ss_buf_putc(&b, '/');
    ss_http_escape(&b, hb->table, strlen(hb->table), ":");
    ss_buf_putc(&b, '/');
    ss_http_escape(&b, rest, strlen(rest), NULL);
    return (char *)ss_buf_cstr(&b);
}

static int request(hbase *hb, const char *method, const char *rest, const ss_buf *body,
                   ss_http_reply *r, char *err, size_t errlen)
{
    char *url = table_url(hb, rest);
    ss_http_request rq = {.method = method,
                          .url = url,
                          .body = body ? body->data : NULL,
                          .n = body ? body->len : 0,
                          .content_type = body ? "application/json" : NULL,
                          .accept = "application/json",
                          .setup = setup_timeout};
    char neterr[256];
    int rc = ss_http_send(hb->curl, &rq, r, NULL, neterr, sizeof neterr);
    free(url);
    if (rc != SS_OK)
        snprintf(err, errlen, "cannot reach HBase's REST gateway at %s (%s)", hb->base, neterr);
    return rc;
}

/* The first line of an error answer (the gateway sends a Java stack trace
 * after it). */
static void answer_line(ss_http_reply *r, char *out, size_t n)
{
    const char *p = ss_buf_cstr(&r->body);
    size_t len = strlen(p);
    /* "Not found\norg...TableNotFoundException: t\n\tat ...": the exception
     * line says more than the first. */
    const char *ex = strstr(p, "Exception");
    if (ex) {
        const char *start = ex;
        while (start > p && start[-1] != '\n')
            start--;
        const char *stop = memchr(ex, '\n', len - (size_t)(ex - p));
        snprintf(out, n, "HTTP %ld: %.*s", r->status, (int)((stop ? stop : p + len) - start),
                 start);
        return;
    }
    size_t first = strcspn(p, "\r\n");
    snprintf(out, n, "HTTP %ld%s%.*s", r->status, first ? ": " : "",
             (int)(first > 300 ? 300 : first), p);
}

static int missing(const hbase *hb, char *err, size_t errlen)
{
    snprintf(err, errlen,
             "the %s does not exist; create it with 'shopstream hbase-create "
             "hbase+http://%s/%s'",
             hb->desc, hb->base + strlen("http://"), hb->table);
    return SS_EOF;
}

/* What an answer other than success means: a missing table, a gateway or
 * cluster in trouble (5xx: retry), or a refusal. */
static int failed(hbase *hb, const char *what, ss_http_reply *r, char *err, size_t errlen)
{
    if (r->status == 404)
        return missing(hb, err, errlen);
    char line[512];
    answer_line(r, line, sizeof line);
    snprintf(err, errlen, "%s %s: %s", what, hb->desc, line);
    return r->status >= 500 ? SS_AGAIN : SS_EIO;
}

static int hbase_check(void *vst, char *err, size_t errlen)
{
    hbase *hb = vst;
    ss_http_reply r = {0};
    ss_buf_init(&r.body, 1024);
    int rc = request(hb, "GET", "schema", NULL, &r, err, errlen);
    if (rc == SS_OK && r.status != 200)
        rc = failed(hb, "reading the schema of", &r, err, errlen);
    if (rc == SS_OK) {
        /* {"name":"t","ColumnSchema":[{"name":"m",...}],...} */
        json_t *j = json_loadb(r.body.data, r.body.len, 0, NULL);
        json_t *cols = json_object_get(j, "ColumnSchema");
        int found = 0;
        for (size_t i = 0; i < json_array_size(cols); i++) {
            json_t *name = json_object_get(json_array_get(cols, i), "name");
            found |= json_is_string(name) && !strcmp(json_string_value(name), FAMILY);
        }
        json_decref(j);
        if (!found) {
            snprintf(err, errlen,
                     "the %s has no column family '" FAMILY "'; create the table with "
                     "'shopstream hbase-create', or add the family",
                     hb->desc);
            rc = SS_EOF;
        }
    }
    ss_buf_free(&r.body);
    return rc;
}

static int hbase_create(void *vst, char *err, size_t errlen)
{
    hbase *hb = vst;
    ss_buf body;
    ss_buf_init(&body, 256);
    ss_buf_lit(&body, "{\"name\":");
    ss_buf_put_jstr(&body, hb->table, strlen(hb->table));
    /* One version: a rewrite replaces a cell instead of stacking copies. */
    ss_buf_lit(&body, ",\"ColumnSchema\":[{\"name\":\"" FAMILY "\",\"VERSIONS\":\"1\"}]}");
    ss_http_reply r = {0};
    ss_buf_init(&r.body, 1024);
    int rc = request(hb, "PUT", "schema", &body, &r, err, errlen);
    if (rc == SS_OK && r.status != 200 && r.status != 201) {
        char line[512];
        answer_line(&r, line, sizeof line);
        snprintf(err, errlen, "creating the %s: %s", hb->desc, line);
        rc = r.status >= 500 ? SS_AGAIN : SS_EIO;
    }
    ss_buf_free(&r.body);
    ss_buf_free(&body);
    return rc;
}

/* ---- CellSets ---- */

static void put_base64(ss_buf *b, const char *s, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)u[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)u[i + 1] << 8;
        if (i + 2 < n)
            v |= u[i + 2];
        ss_buf_putc(b, tab[(v >> 18) & 63]);
        ss_buf_putc(b, tab[(v >> 12) & 63]);
        ss_buf_putc(b, i + 1 < n ? tab[(v >> 6) & 63] : '=');
        ss_buf_putc(b, i + 2 < n ? tab[v & 63] : '=');
    }
}

/* One cell {"column":b64("m:NAME"),"$":b64(text)}. */
static void put_cell(ss_buf *b, int *first, const char *column, const char *text, size_t n)
{
    char col[64];
    int len = snprintf(col, sizeof col, FAMILY ":%s", column);
    ss_buf_puts(b, *first ? "{\"column\":\"" : ",{\"column\":\"");
    *first = 0;
    put_base64(b, col, (size_t)len);
    ss_buf_lit(b, "\",\"$\":\"");
    put_base64(b, text, n);
    ss_buf_lit(b, "\"}");
}

static void put_int_cell(ss_buf *b, int *first, const char *column, int64_t v)
{
    char t[32];
    int n = snprintf(t, sizeof t, "%lld", (long long)v);
    put_cell(b, first, column, t, (size_t)n);
}

static void put_money_cell(ss_buf *b, int *first, const char *column, int64_t cents)
{
    ss_buf t;
    ss_buf_init(&t, 32);
    ss_buf_put_cents(&t, cents);
    put_cell(b, first, column, t.data, t.len);
    ss_buf_free(&t);
}

/* Appends a row's JSON to the CellSet; returns its cells. The values are
 * those of the kpi_minute view: money with two decimals, aov (rounded half
 * up to the cent) only for a minute with orders. */
static int put_row(ss_buf *b, const ss_sink_row *row)
{
    ss_buf key;
    ss_buf_init(&key, 128);
    ss_buf_puts(&key, ss_dim_name(row->dim));
    ss_buf_putc(&key, '#');
    ss_buf_put(&key, row->value.p, row->value.n);
    ss_buf_putc(&key, '#');
    ss_buf_put_time(&key, row->minute);
    ss_buf_lit(b, "{\"key\":\"");
    put_base64(b, key.data, key.len);
    ss_buf_free(&key);
    ss_buf_lit(b, "\",\"Cell\":[");
    const ss_kpi *k = &row->k;
    int first = 1, cells = 8;
    put_int_cell(b, &first, "orders", k->orders);
    put_int_cell(b, &first, "units", k->units);
    put_money_cell(b, &first, "gross_revenue", k->gross_cents);
    put_money_cell(b, &first, "paid_revenue", k->paid_cents);
    if (k->orders > 0) {
        put_money_cell(b, &first, "aov", (2 * k->gross_cents + k->orders) / (2 * k->orders));
        cells++;
    }
    put_int_cell(b, &first, "payment_attempts", k->attempts);
    put_int_cell(b, &first, "failed_payments", k->failed);
    put_int_cell(b, &first, "cancellations", k->cancellations);
    put_money_cell(b, &first, "cancelled_revenue", k->cancelled_cents);
    ss_buf_lit(b, "]}");
    return cells;
}

static int send_batch(hbase *hb, ss_buf *body, char *err, size_t errlen)
{
    ss_buf_lit(body, "]}");
    ss_http_reply r = {0};
    ss_buf_init(&r.body, 1024);
    /* The row of the URL is ignored: the CellSet names each row. */
    int rc = request(hb, "PUT", "batch", body, &r, err, errlen);
    if (rc == SS_OK && r.status != 200)
        rc = failed(hb, "writing to", &r, err, errlen);
    ss_buf_free(&r.body);
    body->len = 0;
    return rc;
}

static int hbase_write(void *vst, const ss_sink_row *rows, size_t n, char *err, size_t errlen)
{
    hbase *hb = vst;
    ss_buf body;
    ss_buf_init(&body, 64 * 1024);
    int rc = SS_OK, cells = 0;
    for (size_t i = 0; i < n && rc == SS_OK; i++) {
        ss_buf_puts(&body, cells ? "," : "{\"Row\":[");
        cells += put_row(&body, &rows[i]);
        if (cells >= BATCH_CELLS || i + 1 == n) {
            rc = send_batch(hb, &body, err, errlen);
            cells = 0;
        }
    }
    ss_buf_free(&body);
    return rc;
}

const ss_sink_ops ss_sink_hbase_ops = {
    .name = "hbase",
    .scheme = SCHEME,
    .open = hbase_open,
    .close = hbase_close,
    .check = hbase_check,
    .create = hbase_create,
    .write = hbase_write,
    .describe = hbase_describe,
};

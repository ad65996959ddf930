/* The web stage: an HTTP server inside the binary (libmicrohttpd) that serves
 * a read-only JSON API over the stores and Prometheus metrics (docs/api.md).
 *
 * Safe by default: it binds the loopback address, answers GET only, can
 * require a bearer token, bounds connections, event streams, request size,
 * the time to send a request, query time, rows, and the bytes of a value and
 * of an answer, and reads the stores through its own read-only connections,
 * one per request, so that it never blocks the engine (the hot store is in
 * WAL mode). docs/reliability.md tells how it holds up under load and abuse.
 *
 * server.c owns the daemon, the routing, authentication and the request
 * counters; conns.c the deadline of a request's header; api.c holds the
 * endpoints as a table of routes; request.c the request target taken apart,
 * the time range and the error answers that every endpoint uses. A new
 * endpoint (a server-sent-events stream, static assets of the page) is a
 * new entry in that table with its own kind; server.c dispatches on the
 * kind. stream.c (stream.h) holds GET /api/stream, server-sent events of KPI
 * changes, with the thread that watches the store for them.
 * @locality ss_web_start and ss_web_stop from one thread; handlers run on the
 * server's worker threads, several at once. */
#ifndef SS_WEB_H
#define SS_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* The defaults of the server's limits (serve's options, docs/options.md),
 * taken for a limit left 0 in ss_web_config. */
#define SS_WEB_DEFAULT_MAX_CONNECTIONS  1100
#define SS_WEB_DEFAULT_MAX_STREAMS      1000
#define SS_WEB_DEFAULT_MAX_REQUEST_KB   32
#define SS_WEB_DEFAULT_HEADER_TIMEOUT_S 10
#define SS_WEB_DEFAULT_IDLE_TIMEOUT_S   30
#define SS_WEB_DEFAULT_QUERY_TIMEOUT_MS 5000
#define SS_WEB_DEFAULT_MAX_ROWS         10000
#define SS_WEB_DEFAULT_MAX_VALUE_KB     1024
#define SS_WEB_DEFAULT_MAX_RESPONSE_MB  8

typedef struct ss_web_config {
    const char *data;       /* data directory (hot store DIR/hot.db) */
    const char *hot;        /* hot store URI, NULL for sqlite:DIR/hot.db */
    const char *cold;       /* cold store URI, NULL for DIR/cold */
    const char *bind;       /* IPv4 or IPv6 address to listen on */
    int port;               /* 0: any free port (see ss_web_port) */
    const char *auth_token; /* NULL or "": no authentication */
    /* The limits; 0 takes the default above. */
    int64_t max_connections;    /* connections at once, event streams included */
    int64_t max_streams;        /* event streams (GET /api/stream) at once */
    int64_t max_request_size;   /* bytes of request line and headers */
    int64_t header_timeout_ms;  /* to send a request's line and headers, from the connection's
                                 * start or the end of its previous answer */
    int64_t idle_timeout_ms;    /* a connection that neither sends nor receives */
    int64_t query_timeout_ms;   /* per query of a request */
    int64_t max_rows;           /* rows a query may return */
    int64_t max_value_bytes;    /* a string or blob in a query (SQLITE_LIMIT_LENGTH) */
    int64_t max_response_bytes; /* the body of a buffered answer */
} ss_web_config;

typedef struct ss_web ss_web;

/* Starts serving in background threads, with a copy of the config in which
 * the limits left 0 take their defaults; its strings must outlive the
 * server. Returns SS_OK, SS_EINVAL (a bad address) or SS_EIO
 * (cannot listen: port in use, ...) with a message in err. */
int ss_web_start(const ss_web_config *cfg, ss_web **out, char *err, size_t errlen);

/* The port the server listens on (the chosen one when cfg->port was 0). */
int ss_web_port(const ss_web *w);

/* Stops accepting, waits for the requests in progress and frees w (NULL is
 * accepted). */
void ss_web_stop(ss_web *w);

/* ---- between server.c and the endpoints (api.c) ---- */

struct MHD_Connection;

/* A request target ("/api/top?dimension=city&n=5") taken apart: the path and
 * the query-string arguments, %-decoded ('+' as a space in the query) and
 * checked to be UTF-8 without NUL (and without control characters in the
 * path and names). */
#define SS_WEB_MAX_ARGS 16
typedef struct ss_web_target {
    const char *path;
    size_t nargs;
    struct {
        const char *name, *value; /* "?a" is a with the value "" */
    } args[SS_WEB_MAX_ARGS];
    char *mem; /* owns the strings above */
} ss_web_target;

/* Takes the raw target uri (as the client sent it) apart into t. Returns 0,
 * or 400 with a message in err: a bad %-escape, text that is not UTF-8 or
 * holds a NUL, a parameter without a name, one given twice, or more than
 * SS_WEB_MAX_ARGS. Either way t is to be freed with ss_web_target_free.
 * @locality any thread; pure (no I/O), for the fuzzer too. */
int ss_web_target_parse(const char *uri, ss_web_target *t, char *err, size_t errlen);
void ss_web_target_free(ss_web_target *t);

/* The value of a query-string argument, NULL when absent. */
const char *ss_web_target_arg(const ss_web_target *t, const char *name);

/* Checks every argument against params, the '|'-separated names a route
 * takes ("" none; NULL: not checked). Returns 0, or 400 with a message
 * naming the unknown argument and the known ones. */
int ss_web_target_check_params(const ss_web_target *t, const char *params, char *err,
                               size_t errlen);

/* The time range of a request: range=15m|1h|24h|7d|30d (relative: name and
 * span_ms set; it ends with the store's newest minute, which the caller
 * looks up) or from=&to= (ISO-8601 times or dates, or "now" as of now; from
 * and to set). No argument is range=1h. */
typedef struct ss_web_range {
    const char *name; /* "15m", ... or NULL when from/to were given */
    int64_t span_ms;  /* of a relative range */
    int64_t from, to; /* [from, to) in ms */
} ss_web_range;

/* Returns 0, or 400 with a message in err. Pure, as ss_web_target_parse. */
int ss_web_range_parse(const ss_web_target *t, int64_t now, ss_web_range *r, char *err,
                       size_t errlen);

typedef struct ss_web_req {
    const ss_web_config *cfg;
    const ss_web *web;
    struct MHD_Connection *conn;
    const char *path;
    const ss_web_target *target;
} ss_web_req;

typedef struct ss_web_resp {
    int status;               /* HTTP status, 200 unless the handler sets it */
    const char *content_type; /* "application/json" unless set */
    ss_buf body;              /* owned by the server, initialised empty */
} ss_web_resp;

/* A query-string argument of the request, NULL when absent (request.c). */
const char *ss_web_arg(const ss_web_req *req, const char *name);

/* The hot store URI of the config: its hot, or sqlite:DIR/hot.db. */
void ss_web_hot_uri(const ss_web_config *cfg, char *out, size_t n);

/* Sets resp to status with {"error": msg}; a byte of msg that is not
 * UTF-8 becomes '?'. */
void ss_web_error(ss_web_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends the server's request counters in Prometheus text format. */
void ss_web_write_request_metrics(const ss_web *w, ss_buf *out);

/* The query connections that the endpoints take and give back. */
struct ss_query_pool *ss_web_queries(const ss_web *w);

typedef enum ss_web_route_kind {
    SS_WEB_ROUTE_BUFFERED, /* the handler fills resp->body; sent when it returns */
    SS_WEB_ROUTE_STREAM,   /* server-sent events (stream.c); handle is NULL */
    SS_WEB_ROUTE_ASSET,    /* a file of the page embedded in the binary (assets.c); no
                            * handler; a path ending in '/' other than "/" matches every
                            * path under it */
} ss_web_route_kind;

typedef struct ss_web_route {
    const char *path; /* exact path */
    ss_web_route_kind kind;
    const char *params; /* the arguments it takes, '|'-separated; NULL: any (assets) */
    int public_route;   /* answered without the bearer token (health checks) */
    void (*handle)(const ss_web_req *req, ss_web_resp *resp);
} ss_web_route;

/* The endpoints, terminated by an entry with a NULL path (api.c). */
extern const ss_web_route ss_web_routes[];

/* The newest minute of the store, as column m. Every event counts in the
 * 'overall' dimension, so its newest minute is the store's; asking for one
 * dimension is a seek in kpi_minute_data's key (dimension first), where the
 * max over every row would read them all. */
#define SS_WEB_NEWEST_MINUTE_SQL                                                                   \
    "SELECT max(minute_start) AS m FROM kpi_minute_data WHERE dimension = 'overall'"

/* KPI totals over a group of kpi_minute_data rows, from the integer cents, so
 * that sums are exact; aov rounds half up to the cent as the kpi_minute view
 * does. */
#define SS_WEB_KPI_AGGREGATES                                                                      \
    "COALESCE(SUM(orders), 0) AS orders, COALESCE(SUM(units), 0) AS units, "                       \
    "COALESCE(SUM(gross_revenue_cents), 0) / 100.0 AS gross_revenue, "                             \
    "COALESCE(SUM(paid_revenue_cents), 0) / 100.0 AS paid_revenue, "                               \
    "CASE WHEN SUM(orders) > 0 THEN ((2 * SUM(gross_revenue_cents) + SUM(orders)) / "              \
    "(2 * SUM(orders))) / 100.0 END AS aov, "                                                      \
    "COALESCE(SUM(payment_attempts), 0) AS payment_attempts, "                                     \
    "COALESCE(SUM(failed_payments), 0) AS failed_payments, "                                       \
    "CASE WHEN SUM(payment_attempts) > 0 THEN round(1.0 * SUM(failed_payments) / "                 \
    "SUM(payment_attempts), 6) END AS failure_rate, "                                              \
    "COALESCE(SUM(cancellations), 0) AS cancellations, "                                           \
    "COALESCE(SUM(cancelled_revenue_cents), 0) / 100.0 AS cancelled_revenue"

/* The sums of kpi_minute_data's columns that SS_WEB_KPI_AGGREGATES reads, by
 * their own names: SS_WEB_KPI_AGGREGATES over rows of these sums gives what
 * it gives over the rows summed. */
#define SS_WEB_KPI_PART_SUMS                                                                       \
    "SUM(orders) AS orders, SUM(units) AS units, SUM(gross_revenue_cents) AS "                     \
    "gross_revenue_cents, SUM(paid_revenue_cents) AS paid_revenue_cents, "                         \
    "SUM(payment_attempts) AS payment_attempts, SUM(failed_payments) AS failed_payments, "         \
    "SUM(cancellations) AS cancellations, SUM(cancelled_revenue_cents) AS "                        \
    "cancelled_revenue_cents"

/* ---- the page's files (assets.c) ---- */

struct MHD_Response;

/* The response for an embedded asset of the page: "/" is index.html,
 * "/assets/NAME" the asset NAME of the table; with status 200, or 304 when
 * the request's If-None-Match has the asset's ETag. NULL (status 404) for any
 * other path. The caller queues and destroys the response.
 * @locality any worker thread. */
struct MHD_Response *ss_web_asset_response(struct MHD_Connection *conn, const char *path,
                                           int *status);

#endif

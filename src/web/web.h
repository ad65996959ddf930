/* The web stage: an HTTP server inside the binary (libmicrohttpd) that serves
 * a read-only JSON API over the stores and Prometheus metrics (docs/api.md).
 *
 * Safe by default: it binds the loopback address, answers GET only, can
 * require a bearer token, bounds request size, connections and query time,
 * and reads the stores through its own read-only connections, one per
 * request, so that it never blocks the engine (the hot store is in WAL mode).
 *
 * server.c owns the daemon, the routing, authentication and the request
 * counters; api.c holds the endpoints as a table of routes; request.c the
 * arguments and error answers that every endpoint uses. A new endpoint
 * (a server-sent-events stream, static assets of the page) is a new entry in
 * that table with its own kind; server.c dispatches on the kind. stream.c
 * holds GET /api/stream, server-sent events of KPI changes, with the thread
 * that watches the store for them.
 * @locality ss_web_start and ss_web_stop from one thread; handlers run on the
 * server's worker threads, several at once. */
#ifndef SS_WEB_H
#define SS_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct ss_web_config {
    const char *data;       /* data directory (hot store DIR/hot.db) */
    const char *hot;        /* hot store URI, NULL for sqlite:DIR/hot.db */
    const char *cold;       /* cold store URI, NULL for DIR/cold */
    const char *bind;       /* IPv4 or IPv6 address to listen on */
    int port;               /* 0: any free port (see ss_web_port) */
    const char *auth_token; /* NULL or "": no authentication */
    int64_t max_connections;
    int64_t max_request_size; /* bytes of request line and headers */
    int64_t query_timeout_ms; /* per query of a request */
    int64_t max_rows;         /* rows a query may return */
} ss_web_config;

typedef struct ss_web ss_web;

/* Starts serving in background threads. The config and its strings must
 * outlive the server. Returns SS_OK, SS_EINVAL (a bad address) or SS_EIO
 * (cannot listen: port in use, ...) with a message in err. */
int ss_web_start(const ss_web_config *cfg, ss_web **out, char *err, size_t errlen);

/* The port the server listens on (the chosen one when cfg->port was 0). */
int ss_web_port(const ss_web *w);

/* Stops accepting, waits for the requests in progress and frees w (NULL is
 * accepted). */
void ss_web_stop(ss_web *w);

/* ---- between server.c and the endpoints (api.c) ---- */

struct MHD_Connection;

typedef struct ss_web_req {
    const ss_web_config *cfg;
    const ss_web *web;
    struct MHD_Connection *conn;
    const char *path;
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

/* Sets resp to status with {"error": msg}. */
void ss_web_error(ss_web_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends the server's request counters in Prometheus text format. */
void ss_web_write_request_metrics(const ss_web *w, ss_buf *out);

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
    int public_route; /* answered without the bearer token (health checks) */
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

/* ---- the event stream (stream.c) ---- */

struct MHD_Response;
typedef struct ss_web_stream ss_web_stream;

/* Starts the thread that watches the store for KPI changes (every 200 ms).
 * The config must outlive the stream. */
int ss_web_stream_new(const ss_web_config *cfg, ss_web_stream **out);

/* The response of GET /api/stream: an endless body of events, one per KPI
 * change, each sent once to each client. NULL with resp set (503) when the
 * limit of open streams is reached or the server is stopping.
 * @locality a worker thread; the body is produced on the connection's own
 * thread, which may block waiting for the next event. */
struct MHD_Response *ss_web_stream_response(ss_web_stream *hub, ss_web_resp *resp);

/* Ends every open stream (their bodies end at the next read) and the watcher;
 * the clients' state is freed as MHD destroys their responses. */
void ss_web_stream_stop(ss_web_stream *hub);

/* Stops (if still running) and frees; after MHD_stop_daemon. NULL is fine. */
void ss_web_stream_free(ss_web_stream *hub);

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

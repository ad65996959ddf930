/* The web stage: an HTTP server inside the binary (libmicrohttpd) that serves
 * a read-only JSON API over the stores and Prometheus metrics (docs/api.md).
 *
 * Safe by default: it binds the loopback address, answers GET only, can
 * require a bearer token, bounds request size, connections and query time,
 * and reads the stores through its own read-only connections, one per
 * request, so that it never blocks the engine (the hot store is in WAL mode).
 *
 * server.c owns the daemon, the routing, authentication and the request
 * counters; api.c holds the endpoints as a table of routes. A new endpoint
 * (a server-sent-events stream, static assets of the page) is a new entry in
 * that table with its own kind; server.c dispatches on the kind.
 * @locality ss_web_start and ss_web_stop from one thread; handlers run on the
 * server's worker threads, several at once. */
#ifndef SS_WEB_H
#define SS_WEB_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct ss_web_config {
    const char *data;       /* data directory (hot store DIR/hot.db) */
    const char *cold;       /* cold store URI, NULL for DIR/cold */
    const char *bind;       /* IPv4 or IPv6 address to listen on */
    int port;               /* 0: any free port (see ss_web_port) */
    const char *auth_token; /* NULL or "": no authentication */
    int64_t max_connections;
    int64_t threads;          /* worker threads */
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

/* A query-string argument of the request, NULL when absent. */
const char *ss_web_arg(const ss_web_req *req, const char *name);

/* Sets resp to status with {"error": msg}. */
void ss_web_error(ss_web_resp *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends the server's request counters in Prometheus text format. */
void ss_web_write_request_metrics(const ss_web *w, ss_buf *out);

typedef enum ss_web_route_kind {
    SS_WEB_ROUTE_BUFFERED, /* the handler fills resp->body; sent when it returns */
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

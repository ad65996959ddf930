/* The HTTP server: libmicrohttpd in its own threads, routing to the table of
 * endpoints in api.c, with the checks every request passes first (method,
 * body, bearer token) and a counter per endpoint and status for /metrics.
 *
 * Each connection has its own thread (bounded by --max-connections): the
 * body of an event stream (stream.c) is produced by a callback that blocks
 * until the next event, which would hold up every other connection of a
 * shared worker thread. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "web/web.h"

#define MAX_ROUTES  32
#define MIN_STATUS  100
#define NSTATUS     500 /* 100..599 */
#define OTHER_ROUTE MAX_ROUTES

struct ss_web {
    const ss_web_config *cfg;
    struct MHD_Daemon *daemon;
    ss_web_stream *stream; /* GET /api/stream and its store watcher */
    int port;
    /* Requests served, by route (OTHER_ROUTE: paths no route matches) and
     * status; updated by every worker thread, hence atomic. */
    _Atomic uint64_t served[MAX_ROUTES + 1][NSTATUS];
};

void ss_web_write_request_metrics(const ss_web *w, ss_buf *out)
{
    ss_buf_lit(out, "# HELP shopstream_http_requests_total HTTP requests served by this "
                    "process, by endpoint and status code.\n"
                    "# TYPE shopstream_http_requests_total counter\n");
    int nroutes = 0;
    while (nroutes < MAX_ROUTES && ss_web_routes[nroutes].path)
        nroutes++;
    for (int r = 0; r <= MAX_ROUTES; r++) {
        if (r >= nroutes && r != OTHER_ROUTE)
            continue;
        const char *path = r == OTHER_ROUTE ? "other" : ss_web_routes[r].path;
        for (int s = 0; s < NSTATUS; s++) {
            uint64_t n = atomic_load_explicit(&w->served[r][s], memory_order_relaxed);
            if (n)
                ss_buf_printf(out,
                              "shopstream_http_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n",
                              path, s + MIN_STATUS, (unsigned long long)n);
        }
    }
}

/* Compares without an early exit, so that the time taken does not tell how
 * much of a guessed token was right. */
static int token_ok(const char *header, const char *token)
{
    static const char prefix[] = "Bearer ";
    if (!header || strncmp(header, prefix, sizeof prefix - 1) != 0)
        return 0;
    header += sizeof prefix - 1;
    size_t hn = strlen(header), tn = strlen(token);
    unsigned diff = hn != tn;
    for (size_t i = 0; i < tn; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)header[i < hn ? i : 0];
    return diff == 0;
}

static enum MHD_Result send_resp(ss_web *w, struct MHD_Connection *conn, int route,
                                 ss_web_resp *resp, const char *allow, int auth_challenge)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(resp->body.len, resp->body.data, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type",
                            resp->content_type ? resp->content_type : "application/json");
    /* Answers are live figures: never from a cache. */
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (allow)
        MHD_add_response_header(r, "Allow", allow);
    if (auth_challenge)
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)resp->status, r);
    MHD_destroy_response(r);
    if (resp->status >= MIN_STATUS && resp->status < MIN_STATUS + NSTATUS)
        atomic_fetch_add_explicit(&w->served[route][resp->status - MIN_STATUS], 1,
                                  memory_order_relaxed);
    return ret;
}

/* An asset route whose path ends in '/' (and is not "/") covers the paths
 * under it; assets.c then looks the rest up in its table. */
static int asset_prefix_matches(const ss_web_route *rt, const char *path)
{
    size_t n = strlen(rt->path);
    return rt->kind == SS_WEB_ROUTE_ASSET && n > 1 && rt->path[n - 1] == '/' &&
           !strncmp(rt->path, path, n);
}

static int find_route(const char *path)
{
    for (int i = 0; i < MAX_ROUTES && ss_web_routes[i].path; i++)
        if (!strcmp(ss_web_routes[i].path, path) || asset_prefix_matches(&ss_web_routes[i], path))
            return i;
    return OTHER_ROUTE;
}

/* Sends a file of the page from the binary (assets.c), or the usual 404 for
 * a name not in its table. */
static enum MHD_Result send_asset(ss_web *w, struct MHD_Connection *conn, int route,
                                  const char *url, ss_web_resp *resp)
{
    int status = 404;
    struct MHD_Response *r = ss_web_asset_response(conn, url, &status);
    if (!r) {
        ss_web_error(resp, 404, "no such asset '%s'; the page's files are listed in docs/api.md",
                     url);
        return send_resp(w, conn, route, resp, NULL, 0);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    atomic_fetch_add_explicit(&w->served[route][status - MIN_STATUS], 1, memory_order_relaxed);
    return ret;
}

/* Queues the endless body of GET /api/stream, or the 503 when too many
 * streams are open. */
static enum MHD_Result send_stream(ss_web *w, struct MHD_Connection *conn, int route,
                                   ss_web_resp *resp)
{
    struct MHD_Response *r = ss_web_stream_response(w->stream, resp);
    if (!r)
        return send_resp(w, conn, route, resp, NULL, 0);
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    /* Asks a buffering reverse proxy (nginx) to pass events on at once. */
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    atomic_fetch_add_explicit(&w->served[route][MHD_HTTP_OK - MIN_STATUS], 1, memory_order_relaxed);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    static int headers_seen; /* *con_cls after the first call of a request */
    ss_web *w = cls;
    (void)version;
    (void)upload;
    (void)upload_size;
    const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int body = (clen && strcmp(clen, "0") != 0) || te;
    /* A GET without a body is answered on MHD's second call, once the
     * request is complete: a response queued on the first call makes MHD
     * close the connection after it, so that every request would cost a new
     * connection (and a new thread). Any other request is refused on the
     * first call, before its body is read: the API is read-only, so a body is
     * never needed and is not accepted. */
    if (get && !body && *con_cls != &headers_seen) {
        *con_cls = &headers_seen;
        return MHD_YES;
    }
    ss_web_resp resp = {.status = 200};
    ss_buf_init(&resp.body, 4096);
    int route = find_route(url), challenge = 0;
    const char *allow = NULL;
    if (!get) {
        allow = "GET";
        ss_web_error(&resp, 405, "method %s is not allowed: the API is read-only; use GET", method);
    } else if (body) {
        ss_web_error(&resp, 413,
                     "a GET request carries no body; send the parameters in the "
                     "query string");
    } else if (w->cfg->auth_token && *w->cfg->auth_token &&
               !(route != OTHER_ROUTE && ss_web_routes[route].public_route) &&
               !token_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
                         w->cfg->auth_token)) {
        challenge = 1;
        ss_web_error(&resp, 401,
                     "missing or wrong token: send the header 'Authorization: Bearer <token>' "
                     "with the token given to 'shopstream serve --auth-token'");
    } else if (route == OTHER_ROUTE) {
        ss_web_error(&resp, 404, "no such endpoint '%s'; see docs/api.md for the endpoints", url);
    } else if (ss_web_routes[route].kind == SS_WEB_ROUTE_ASSET) {
        enum MHD_Result ret = send_asset(w, conn, route, url, &resp);
        ss_buf_free(&resp.body);
        return ret;
    } else if (ss_web_routes[route].kind == SS_WEB_ROUTE_STREAM) {
        enum MHD_Result ret = send_stream(w, conn, route, &resp);
        ss_buf_free(&resp.body);
        return ret;
    } else {
        ss_web_req req = {.cfg = w->cfg, .web = w, .conn = conn, .path = url};
        ss_web_routes[route].handle(&req, &resp);
    }
    enum MHD_Result ret = send_resp(w, conn, route, &resp, allow, challenge);
    ss_buf_free(&resp.body);
    return ret;
}

/* libmicrohttpd's logger: fmt is a printf format of its own. */
__attribute__((format(printf, 2, 0))) static void on_mhd_error(void *cls, const char *fmt,
                                                               va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    if (n && msg[n - 1] == '\n')
        msg[n - 1] = '\0';
    SS_WARN("web", "%s", msg);
}

int ss_web_start(const ss_web_config *cfg, ss_web **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = SS_OK;
    ss_web *w = ss_calloc(1, sizeof *w);
    w->cfg = cfg;
    struct sockaddr_in sa4;
    struct sockaddr_in6 sa6;
    const struct sockaddr *sa;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    memset(&sa4, 0, sizeof sa4);
    memset(&sa6, 0, sizeof sa6);
    if (inet_pton(AF_INET, cfg->bind, &sa4.sin_addr) == 1) {
        sa4.sin_family = AF_INET;
        sa4.sin_port = htons((uint16_t)cfg->port);
        sa = (const struct sockaddr *)&sa4;
    } else if (inet_pton(AF_INET6, cfg->bind, &sa6.sin6_addr) == 1) {
        sa6.sin6_family = AF_INET6;
        sa6.sin6_port = htons((uint16_t)cfg->port);
        sa = (const struct sockaddr *)&sa6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen,
                 "--bind '%s' is not an IP address; give one such as 127.0.0.1 (this machine "
                 "only), ::1 or 0.0.0.0 (every interface)",
                 cfg->bind);
        rc = SS_EINVAL;
        goto out;
    }
    if (ss_web_stream_new(cfg, &w->stream) != SS_OK) {
        snprintf(err, errlen, "cannot start the thread that watches the store for changes");
        rc = SS_ERR;
        goto out;
    }
    /* The logger comes first so that MHD's own messages about the other
     * options go through it too. */
    w->daemon =
        MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, w,
                         MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, NULL, MHD_OPTION_SOCK_ADDR, sa,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
                         /* Bounds the request line and headers; MHD answers 414 or 431 past it. */
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_request_size,
                         /* Idle connections (slow clients) are closed rather than held. */
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!w->daemon) {
        snprintf(err, errlen,
                 "cannot listen on %s port %d: the port may be in use or need privileges; "
                 "choose another with --port",
                 cfg->bind, cfg->port);
        rc = SS_EIO;
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_BIND_PORT);
    w->port = info ? info->port : cfg->port;
    *out = w;
    w = NULL;
out:
    ss_web_stop(w);
    return rc;
}

int ss_web_port(const ss_web *w)
{
    return w->port;
}

void ss_web_stop(ss_web *w)
{
    if (!w)
        return;
    /* Ends the streams first: MHD_stop_daemon waits for every connection's
     * thread, and a stream's thread waits for the next event. */
    ss_web_stream_stop(w->stream);
    if (w->daemon)
        MHD_stop_daemon(w->daemon);
    ss_web_stream_free(w->stream);
    free(w);
}

/* The HTTP server: libmicrohttpd in its own threads, routing to the table of
 * endpoints in api.c, with the checks every request passes first (method,
 * body, size, the target's syntax, bearer token, the route's parameters) and
 * a counter per endpoint and status for /metrics.
 *
 * Each connection has its own thread (bounded by --max-connections): the
 * body of an event stream (stream.c) is produced by a callback that blocks
 * until the next event, which would hold up every other connection of a
 * shared worker thread. The threads wait on their sockets with poll(), not
 * select(), so that a descriptor past FD_SETSIZE (1024) is served too, and
 * the process raises its own limit of open files to what --max-connections
 * needs. A slow client holds only its own thread; conns.c closes one that
 * takes too long to send its header. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "web/conns.h"
#include "web/stream.h"
#include "query/pool.h"
#include "web/web.h"

#define MAX_ROUTES  32
#define MIN_STATUS  100
#define NSTATUS     500 /* 100..599 */
#define OTHER_ROUTE MAX_ROUTES

struct ss_web {
    ss_web_config cfg; /* the caller's, with the default of each limit left 0 */
    struct MHD_Daemon *daemon;
    ss_web_stream *stream;  /* GET /api/stream and its store watcher */
    ss_web_conns *conns;    /* the deadlines of the requests' headers */
    ss_query_pool *queries; /* the API's query connections, kept between requests */
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
    ss_web_conns_write_metrics(w->conns, out);
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

static void count(ss_web *w, int route, int status)
{
    if (status >= MIN_STATUS && status < MIN_STATUS + NSTATUS)
        atomic_fetch_add_explicit(&w->served[route][status - MIN_STATUS], 1, memory_order_relaxed);
}

/* Queues resp, handing its body over to the response (no copy: an answer
 * may be megabytes); resp->body is left empty. */
static enum MHD_Result send_resp(ss_web *w, struct MHD_Connection *conn, int route,
                                 ss_web_resp *resp, const char *allow, int auth_challenge)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(resp->body.len, resp->body.data, free);
    if (!r)
        return MHD_NO;
    resp->body.data = NULL;
    resp->body.len = resp->body.cap = 0;
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
    count(w, route, resp->status);
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
                                  const char *path, ss_web_resp *resp)
{
    int status = 404;
    struct MHD_Response *r = ss_web_asset_response(conn, path, &status);
    if (!r) {
        ss_web_error(resp, 404, "no such asset '%s'; the page's files are listed in docs/api.md",
                     path);
        return send_resp(w, conn, route, resp, NULL, 0);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    count(w, route, status);
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
    count(w, route, MHD_HTTP_OK);
    return ret;
}

/* A request from its first line to its answer: made when libmicrohttpd has
 * read the request line (on_uri), freed when the answer is sent
 * (on_completed). */
typedef struct request {
    int headers_seen; /* on_request has been called once */
    size_t uri_len;   /* of the raw target, as sent */
    int status;       /* 0, or the 400 of a target that cannot be taken apart */
    char err[512];
    ss_web_target target;
} request;

/* libmicrohttpd's URI logger, the one place that sees the request target as
 * the client sent it; what it returns is the request's context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    request *rq = ss_calloc(1, sizeof *rq);
    rq->uri_len = strlen(uri);
    rq->status = ss_web_target_parse(uri, &rq->target, rq->err, sizeof rq->err);
    return rq;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    ss_web *w = cls;
    request *rq = *con_cls;
    if (rq) {
        ss_web_target_free(&rq->target);
        free(rq);
        *con_cls = NULL;
    }
    if (code == MHD_REQUEST_TERMINATED_COMPLETED_OK)
        ss_web_conns_request_done(w->conns, conn);
}

/* The checks every request passes before its endpoint, in order; sets resp
 * (and *allow, *challenge) and returns nonzero for a request refused. */
static int refused(ss_web *w, struct MHD_Connection *conn, const request *rq, const char *method,
                   int body, int route, ss_web_resp *resp, const char **allow, int *challenge)
{
    const ss_web_config *cfg = &w->cfg;
    const union MHD_ConnectionInfo *hs =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        *allow = "GET";
        ss_web_error(resp, 405, "method %s is not allowed: the API is read-only; use GET", method);
    } else if (body) {
        ss_web_error(resp, 413,
                     "a GET request carries no body; send the parameters in the query string");
    } else if (rq->uri_len > (size_t)cfg->max_request_size) {
        ss_web_error(resp, 414,
                     "the URL is %zu bytes, longer than the limit of %lld KB; shorten it, or "
                     "raise 'shopstream serve --max-request-kb'",
                     rq->uri_len, (long long)cfg->max_request_size / 1024);
    } else if (hs && hs->header_size > (size_t)cfg->max_request_size) {
        ss_web_error(resp, 431,
                     "the request line and headers are %zu bytes, more than the limit of %lld "
                     "KB; send fewer or shorter headers, or raise 'shopstream serve "
                     "--max-request-kb'",
                     hs->header_size, (long long)cfg->max_request_size / 1024);
    } else if (rq->status) {
        ss_web_error(resp, rq->status, "%s", rq->err);
    } else if (cfg->auth_token && *cfg->auth_token &&
               !(route != OTHER_ROUTE && ss_web_routes[route].public_route) &&
               !token_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"),
                         cfg->auth_token)) {
        *challenge = 1;
        ss_web_error(resp, 401,
                     "missing or wrong token: send the header 'Authorization: Bearer <token>' "
                     "with the token given to 'shopstream serve --auth-token'");
    } else if (route == OTHER_ROUTE) {
        ss_web_error(resp, 404, "no such endpoint '%s'; see docs/api.md for the endpoints",
                     rq->target.path);
    } else {
        char err[512];
        int status =
            ss_web_target_check_params(&rq->target, ss_web_routes[route].params, err, sizeof err);
        if (status)
            ss_web_error(resp, status, "%s", err);
    }
    return resp->status != 200;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    ss_web *w = cls;
    request *rq = *con_cls;
    (void)url;
    (void)version;
    (void)upload;
    (void)upload_size;
    if (!rq)
        return MHD_NO; /* on_uri always makes one */
    const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    int body = (clen && strcmp(clen, "0") != 0) || te;
    if (!rq->headers_seen)
        ss_web_conns_request_started(w->conns, conn);
    /* A GET without a body is answered on MHD's second call, once the
     * request is complete: a response queued on the first call makes MHD
     * close the connection after it, so that every request would cost a new
     * connection (and a new thread). Any other request is refused on the
     * first call, before its body is read: the API is read-only, so a body is
     * never needed and is not accepted. */
    if (get && !body && !rq->headers_seen) {
        rq->headers_seen = 1;
        return MHD_YES;
    }
    rq->headers_seen = 1;
    ss_web_resp resp = {.status = 200};
    ss_buf_init(&resp.body, 4096);
    int route = rq->status ? OTHER_ROUTE : find_route(rq->target.path), challenge = 0;
    const char *allow = NULL;
    enum MHD_Result ret;
    if (refused(w, conn, rq, method, body, route, &resp, &allow, &challenge)) {
        ret = send_resp(w, conn, route, &resp, allow, challenge);
    } else if (ss_web_routes[route].kind == SS_WEB_ROUTE_ASSET) {
        ret = send_asset(w, conn, route, rq->target.path, &resp);
    } else if (ss_web_routes[route].kind == SS_WEB_ROUTE_STREAM) {
        ret = send_stream(w, conn, route, &resp);
    } else {
        ss_web_req req = {
            .cfg = &w->cfg, .web = w, .conn = conn, .path = rq->target.path, .target = &rq->target};
        ss_web_routes[route].handle(&req, &resp);
        ret = send_resp(w, conn, route, &resp, allow, challenge);
    }
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

static void set_defaults(ss_web_config *c)
{
#define DEFAULT(field, value)                                                                      \
    do {                                                                                           \
        if (c->field <= 0)                                                                         \
            c->field = (value);                                                                    \
    } while (0)
    DEFAULT(max_connections, SS_WEB_DEFAULT_MAX_CONNECTIONS);
    DEFAULT(max_streams, SS_WEB_DEFAULT_MAX_STREAMS);
    DEFAULT(max_request_size, SS_WEB_DEFAULT_MAX_REQUEST_KB * 1024);
    DEFAULT(header_timeout_ms, SS_WEB_DEFAULT_HEADER_TIMEOUT_S * 1000);
    DEFAULT(idle_timeout_ms, SS_WEB_DEFAULT_IDLE_TIMEOUT_S * 1000);
    DEFAULT(query_timeout_ms, SS_WEB_DEFAULT_QUERY_TIMEOUT_MS);
    DEFAULT(max_rows, SS_WEB_DEFAULT_MAX_ROWS);
    DEFAULT(max_value_bytes, SS_WEB_DEFAULT_MAX_VALUE_KB * 1024);
    DEFAULT(max_response_bytes, SS_WEB_DEFAULT_MAX_RESPONSE_MB * 1024 * 1024);
#undef DEFAULT
}

/* Each connection takes a socket, and a request a few more files (the hot
 * store, its WAL and shared memory, cold files): the soft limit of open
 * files is raised as far as the hard one allows towards what
 * --max-connections needs, with a warning when that is not enough. */
static void raise_file_limit(int64_t max_connections)
{
    rlim_t need = (rlim_t)max_connections * 2 + 256;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (want > rl.rlim_cur) {
        rl.rlim_cur = want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (want < need)
        SS_WARN("web",
                "--max-connections %lld wants %llu open files, but the limit is %llu: "
                "connections past it will be refused; raise it (ulimit -n) or lower "
                "--max-connections",
                (long long)max_connections, (unsigned long long)need, (unsigned long long)want);
}

int ss_web_start(const ss_web_config *cfg, ss_web **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = SS_OK;
    ss_web *w = ss_calloc(1, sizeof *w);
    w->cfg = *cfg;
    set_defaults(&w->cfg);
    cfg = &w->cfg;
    w->queries = ss_query_pool_new(cfg->data, cfg->hot, cfg->cold);
    struct sockaddr_in sa4;
    struct sockaddr_in6 sa6;
    const struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
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
    if (ss_web_stream_new(cfg, w->queries, &w->stream) != SS_OK ||
        ss_web_conns_new(cfg->header_timeout_ms, &w->conns) != SS_OK) {
        snprintf(err, errlen, "cannot start the server's threads");
        rc = SS_ERR;
        goto out;
    }
    raise_file_limit(cfg->max_connections);
    /* libmicrohttpd's memory of a connection holds its request line and
     * headers; it answers 414 or 431 itself (with a short HTML body) past
     * it. It is made four times the limit, so that a request up to that size
     * gets the JSON answer of on_request instead; pages of it that a request
     * does not fill are never touched. */
    size_t pool = (size_t)cfg->max_request_size * 4 + 16384;
    unsigned idle_s = (unsigned)((cfg->idle_timeout_ms + 999) / 1000);
    /* The logger comes first so that MHD's own messages about the other
     * options go through it too. */
    w->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, w, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_error, NULL, MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool,
        /* Idle connections are closed rather than held; conns.c bounds the
         * time to send a header, idle or not. */
        MHD_OPTION_CONNECTION_TIMEOUT, idle_s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, w,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, w, MHD_OPTION_NOTIFY_CONNECTION,
        ss_web_conns_notify, w->conns, MHD_OPTION_END);
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
    ss_web_conns_free(w->conns);
    ss_web_stream_free(w->stream);
    ss_query_pool_free(w->queries);
    free(w);
}

ss_query_pool *ss_web_queries(const ss_web *w)
{
    return w->queries;
}

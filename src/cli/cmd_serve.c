/* shopstream serve: the HTTP API over the stores (docs/api.md). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "cli/stores.h"
#include "common/log.h"
#include "common/status.h"
#include "web/web.h"

typedef struct serve_opts {
    const char *data;
    const char *hot;
    const char *cold;
    int64_t port;
    const char *bind;
    const char *auth_token;
    int64_t max_connections;
    int64_t max_streams;
    int64_t max_request_kb;
    int64_t header_timeout_s;
    int64_t idle_timeout_s;
    int64_t query_timeout_ms;
    int64_t max_rows;
    int64_t max_value_kb;
    int64_t max_response_mb;
} serve_opts;

#define F(f)   offsetof(serve_opts, f)
#define STR(x) #x
#define DEF(x) STR(x)

static const ss_opt serve_table[] = {
    {"data", SS_OPT_STRING, F(data), "./data", 0, 0, NULL, "DIR",
     "Directory of the embedded stores (hot store DIR/hot.db)."},
    SS_HOT_OPT(serve_opts, hot),
    {"cold", SS_OPT_STRING, F(cold), NULL, 0, 0, NULL, "URI",
     "Cold store to read with the hot store: a directory, file:PATH or [s]webhdfs://HOST:PORT/PATH "
     "(default DIR/cold)."},
    {"port", SS_OPT_INT, F(port), "8050", 0, 65535, NULL, "PORT",
     "TCP port to listen on (0: any free port, logged at start)."},
    {"bind", SS_OPT_STRING, F(bind), "127.0.0.1", 0, 0, NULL, "ADDR",
     "Address to listen on; the default serves this machine only. 0.0.0.0 or :: serve every "
     "interface: set --auth-token then."},
    {"auth-token", SS_OPT_STRING, F(auth_token), NULL, 0, 0, NULL, "TOKEN",
     "Require 'Authorization: Bearer TOKEN' on every endpoint but /healthz (401 otherwise)."},
    {"max-connections", SS_OPT_INT, F(max_connections), DEF(SS_WEB_DEFAULT_MAX_CONNECTIONS), 1,
     100000, NULL, "N",
     "Connections served at once, event streams included; one more is closed at once. Each "
     "takes a thread and a file descriptor (the server raises its limit of open files as far as "
     "the hard limit allows)."},
    {"max-streams", SS_OPT_INT, F(max_streams), DEF(SS_WEB_DEFAULT_MAX_STREAMS), 1, 100000, NULL,
     "N",
     "Event streams (GET /api/stream) open at once; one more is answered 503. Keep it below "
     "--max-connections, so that the API still answers with every stream open."},
    {"max-request-kb", SS_OPT_INT, F(max_request_kb), DEF(SS_WEB_DEFAULT_MAX_REQUEST_KB), 4, 1024,
     NULL, "KB",
     "Largest request line and headers (the SQL of /api/sql travels in the URL): 414 or 431 "
     "past it."},
    {"header-timeout-s", SS_OPT_INT, F(header_timeout_s), DEF(SS_WEB_DEFAULT_HEADER_TIMEOUT_S), 1,
     3600, NULL, "S",
     "Close a connection that has not sent a whole request line and headers within this many "
     "seconds of opening, or of its previous answer (slow or idle clients)."},
    {"idle-timeout-s", SS_OPT_INT, F(idle_timeout_s), DEF(SS_WEB_DEFAULT_IDLE_TIMEOUT_S), 1, 3600,
     NULL, "S",
     "Close a connection that neither sends nor receives for this many seconds (an event "
     "stream gets a heartbeat well within it)."},
    {"query-timeout-ms", SS_OPT_INT, F(query_timeout_ms), DEF(SS_WEB_DEFAULT_QUERY_TIMEOUT_MS), 1,
     3600000, NULL, "MS",
     "Stop a query of a request that runs longer than this (400 with the reason)."},
    {"max-rows", SS_OPT_SIZE, F(max_rows), DEF(SS_WEB_DEFAULT_MAX_ROWS), 1, 1e9, NULL, "N",
     "Fail a query of a request that returns more rows than this (400 with the reason)."},
    {"max-value-kb", SS_OPT_INT, F(max_value_kb), DEF(SS_WEB_DEFAULT_MAX_VALUE_KB), 64, 1048576,
     NULL, "KB",
     "Fail a query of a request that makes a string or blob larger than this, in its result or "
     "on the way (SQLite's SQLITE_LIMIT_LENGTH on the server's connections; 400 with the "
     "reason). `shopstream sql` has no such limit."},
    {"max-response-mb", SS_OPT_INT, F(max_response_mb), DEF(SS_WEB_DEFAULT_MAX_RESPONSE_MB), 1,
     4096, NULL, "MB",
     "Fail a request whose answer would be larger than this (400 with the reason), so that the "
     "memory a request takes is bounded."},
    SS_OPT_END,
};

static int serve_run(const void *vopts, int argc, char **argv)
{
    const serve_opts *o = vopts;
    if (argc > 0) {
        fprintf(stderr, "shopstream serve: unexpected argument '%s'\n", argv[0]);
        return SS_EXIT_USAGE;
    }
    ss_web_config cfg = {
        .data = o->data,
        .hot = o->hot,
        .cold = o->cold,
        .bind = o->bind,
        .port = (int)o->port,
        .auth_token = o->auth_token,
        .max_connections = o->max_connections,
        .max_streams = o->max_streams,
        .max_request_size = o->max_request_kb * 1024,
        .header_timeout_ms = o->header_timeout_s * 1000,
        .idle_timeout_ms = o->idle_timeout_s * 1000,
        .query_timeout_ms = o->query_timeout_ms,
        .max_rows = o->max_rows,
        .max_value_bytes = o->max_value_kb * 1024,
        .max_response_bytes = o->max_response_mb * 1024 * 1024,
    };
    char err[1024];
    ss_web *w;
    ss_install_stop_handlers();
    int rc = ss_web_start(&cfg, &w, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shopstream serve: %s\n", err);
        return rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
    }
    SS_INFO("web", "serving %s on http://%s%s%s:%d/ (read-only%s); Ctrl-C stops", o->data,
            strchr(o->bind, ':') ? "[" : "", o->bind, strchr(o->bind, ':') ? "]" : "",
            ss_web_port(w), o->auth_token && *o->auth_token ? ", bearer token required" : "");
    /* The server runs on its own threads; this one only waits for a signal. */
    while (!ss_stop_requested) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ss_web_stop(w);
    SS_INFO("web", "stopped");
    return SS_EXIT_OK;
}

const ss_cmd ss_cmd_serve = {
    .name = "serve",
    .summary = "Serve the JSON API and metrics over HTTP",
    .description =
        "An HTTP server over the stores: /healthz, /metrics (Prometheus), and a JSON API of "
        "KPI totals, per-minute KPIs, top values, archive status and read-only SQL "
        "(docs/api.md). Safe by default: it listens on the loopback address, answers GET only, "
        "can require a bearer token, and bounds connections, event streams, request size, the "
        "time to send a request, query time, rows, and the bytes of a value and of an answer "
        "(docs/reliability.md). It reads the stores through its own read-only connections, so it "
        "never blocks "
        "`process` or `run` writing the same store.",
    .opts = serve_table,
    .opts_size = sizeof(serve_opts),
    .run = serve_run,
};

/* GET /api/stream, server-sent events of KPI changes (stream.c): the
 * interface the server (server.c) drives. The dependency goes one way: the
 * server calls the stream; the stream uses only what every endpoint shares
 * (web.h, request.c), never the server.
 * @locality ss_web_stream_new, _stop and _free on the thread that starts and
 * stops the server; ss_web_stream_response on a worker thread. */
#ifndef SS_WEB_STREAM_H
#define SS_WEB_STREAM_H

#include "web/web.h"

struct MHD_Response;
typedef struct ss_web_stream ss_web_stream;

/* Starts the thread that watches the store for KPI changes (every 200 ms),
 * reading through connections of queries. The config and the pool must
 * outlive the stream; at most cfg->max_streams clients at once, each sent a
 * heartbeat well within cfg->idle_timeout_ms. */
int ss_web_stream_new(const ss_web_config *cfg, struct ss_query_pool *queries, ss_web_stream **out);

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

#endif

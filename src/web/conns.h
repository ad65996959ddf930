/* The server's connections and the deadline of a request's header (conns.c).
 *
 * libmicrohttpd's own connection timeout counts idle time only: a client
 * that sends its header one byte a second is never idle, and would hold its
 * connection (and, one thread per connection, a thread) for as long as it
 * likes. Here each connection carries a deadline by which its request line
 * and headers must be complete: header_timeout_ms from the connection's
 * start, and again from the end of each answer (the next request of a
 * kept-alive connection). A thread looks over the connections a few times a
 * second and shuts down the socket of any past its deadline; the
 * connection's own thread then sees the end of its input and closes it.
 * @locks cs->mu guards the list and every deadline. */
#ifndef SS_WEB_CONNS_H
#define SS_WEB_CONNS_H

#include <microhttpd.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct ss_web_conns ss_web_conns;

/* Starts the thread that enforces the deadlines. SS_OK or SS_ERR. */
int ss_web_conns_new(int64_t header_timeout_ms, ss_web_conns **out);

/* Stops the thread and frees; after MHD_stop_daemon (which reports every
 * connection closed first). NULL is fine. */
void ss_web_conns_free(ss_web_conns *cs);

/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback, with cs as its
 * closure: a started connection is watched, a closed one forgotten (before
 * libmicrohttpd closes its socket, so that a socket shut down here is always
 * the connection's own). @locality libmicrohttpd's threads. */
void ss_web_conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode code);

/* The request's header is complete: no deadline until its answer is sent.
 * @locality the connection's thread. */
void ss_web_conns_request_started(ss_web_conns *cs, struct MHD_Connection *conn);

/* The request's answer is sent: the next header is due within the timeout.
 * @locality the connection's thread. */
void ss_web_conns_request_done(ss_web_conns *cs, struct MHD_Connection *conn);

/* Appends the count of connections cut at their header deadline, in
 * Prometheus text format. */
void ss_web_conns_write_metrics(ss_web_conns *cs, ss_buf *out);

#endif

/* The deadline of a request's header (conns.h). */
#define _POSIX_C_SOURCE 200809L
#include "web/conns.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/thread.h"
#include "common/timeutil.h"

#define CHECK_MS 250 /* how often the deadlines are looked over */

typedef struct conn {
    struct conn *prev, *next;
    int fd;
    int64_t deadline; /* monotonic ms; 0 while a request is being answered */
    int cut;          /* its socket was shut down */
} conn;

struct ss_web_conns {
    int64_t timeout_ms;
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cond; /* signalled on stop */
    int stopping;
    conn *head;
    _Atomic uint64_t cut; /* connections cut at their deadline */
};

static void *watch_main(void *arg)
{
    ss_thread_name("ss-conns");
    ss_web_conns *cs = arg;
    pthread_mutex_lock(&cs->mu);
    while (!cs->stopping) {
        int64_t now = ss_mono_ms();
        for (conn *c = cs->head; c; c = c->next) {
            if (c->deadline && now > c->deadline && !c->cut) {
                /* The socket is still open: a connection leaves the list
                 * (under mu) before libmicrohttpd closes its socket. */
                shutdown(c->fd, SHUT_RDWR);
                c->cut = 1;
                atomic_fetch_add_explicit(&cs->cut, 1, memory_order_relaxed);
            }
        }
        struct timespec ts;
        ss_mono_deadline(&ts, CHECK_MS);
        while (!cs->stopping && pthread_cond_timedwait(&cs->cond, &cs->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&cs->mu);
    return NULL;
}

int ss_web_conns_new(int64_t header_timeout_ms, ss_web_conns **out)
{
    *out = NULL;
    ss_web_conns *cs = ss_calloc(1, sizeof *cs);
    cs->timeout_ms = header_timeout_ms;
    pthread_mutex_init(&cs->mu, NULL);
    ss_mono_cond_init(&cs->cond);
    if (pthread_create(&cs->thread, NULL, watch_main, cs) != 0) {
        ss_web_conns_free(cs);
        return SS_ERR;
    }
    cs->running = 1;
    *out = cs;
    return SS_OK;
}

void ss_web_conns_free(ss_web_conns *cs)
{
    if (!cs)
        return;
    pthread_mutex_lock(&cs->mu);
    cs->stopping = 1;
    pthread_cond_broadcast(&cs->cond);
    pthread_mutex_unlock(&cs->mu);
    if (cs->running)
        pthread_join(cs->thread, NULL);
    /* MHD_stop_daemon has reported every connection closed; any left would
     * be a connection it never reported, freed here all the same. */
    while (cs->head) {
        conn *c = cs->head;
        cs->head = c->next;
        free(c);
    }
    pthread_cond_destroy(&cs->cond);
    pthread_mutex_destroy(&cs->mu);
    free(cs);
}

void ss_web_conns_notify(void *cls, struct MHD_Connection *mc, void **socket_context,
                         enum MHD_ConnectionNotificationCode code)
{
    ss_web_conns *cs = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn *c = ss_calloc(1, sizeof *c);
        c->fd = info ? info->connect_fd : -1;
        c->deadline = c->fd >= 0 ? ss_mono_ms() + cs->timeout_ms : 0;
        pthread_mutex_lock(&cs->mu);
        c->next = cs->head;
        if (cs->head)
            cs->head->prev = c;
        cs->head = c;
        pthread_mutex_unlock(&cs->mu);
        *socket_context = c;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        conn *c = *socket_context;
        pthread_mutex_lock(&cs->mu);
        if (c->prev)
            c->prev->next = c->next;
        else
            cs->head = c->next;
        if (c->next)
            c->next->prev = c->prev;
        pthread_mutex_unlock(&cs->mu);
        free(c);
        *socket_context = NULL;
    }
}

static void set_deadline(ss_web_conns *cs, struct MHD_Connection *mc, int64_t deadline)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn *c = info ? info->socket_context : NULL;
    if (!c || c->fd < 0)
        return;
    pthread_mutex_lock(&cs->mu);
    c->deadline = deadline;
    pthread_mutex_unlock(&cs->mu);
}

void ss_web_conns_request_started(ss_web_conns *cs, struct MHD_Connection *mc)
{
    set_deadline(cs, mc, 0);
}

void ss_web_conns_request_done(ss_web_conns *cs, struct MHD_Connection *mc)
{
    set_deadline(cs, mc, ss_mono_ms() + cs->timeout_ms);
}

void ss_web_conns_write_metrics(ss_web_conns *cs, ss_buf *out)
{
    ss_buf_printf(out,
                  "# HELP shopstream_http_header_timeouts_total Connections closed because "
                  "their request header was not complete within --header-timeout-s.\n"
                  "# TYPE shopstream_http_header_timeouts_total counter\n"
                  "shopstream_http_header_timeouts_total %llu\n",
                  (unsigned long long)atomic_load_explicit(&cs->cut, memory_order_relaxed));
}

#define _POSIX_C_SOURCE 200809L
#include "gen/pump.h"

#include <time.h>

#include "common/buf.h"
#include "common/status.h"
#include "common/timeutil.h"

/* Sleeps until the simulated clock reaches ts, in short steps so that a stop
 * request is seen promptly. Returns 0, or -1 if a stop was requested. */
static int pace(int64_t ts, int64_t sim0, int64_t mono0, double speed, volatile int *stop)
{
    for (;;) {
        if (*stop)
            return -1;
        double due = (double)mono0 + (double)(ts - sim0) / speed;
        double wait = due - (double)ss_mono_ms();
        if (wait <= 0)
            return 0;
        if (wait > 100)
            wait = 100;
        struct timespec req = {0, (long)(wait * 1e6)};
        nanosleep(&req, NULL);
    }
}

int ss_gen_pump(ss_gen *g, ss_bus_producer *bus, int64_t start_ms, double speed, volatile int *stop)
{
    int64_t mono0 = ss_mono_ms();
    ss_buf line;
    ss_buf_init(&line, 1024);
    const ss_event *ev;
    int rc = SS_OK;
    while (!*stop && ss_gen_next(g, &ev) == SS_OK) {
        if (speed > 0.0) {
            int64_t now_sim = start_ms + (int64_t)((double)(ss_mono_ms() - mono0) * speed);
            /* Hand over what is written before waiting, so readers see events live. */
            if (ev->ts > now_sim && (rc = ss_bus_flush(bus)) != SS_OK)
                break;
            if (pace(ev->ts, start_ms, mono0, speed, stop))
                break;
        }
        line.len = 0;
        ss_event_encode(ev, &line);
        /* A full bus holds the generator back until it has room. */
        do
            rc = ss_bus_produce(bus, ev->order_id.p, ev->order_id.n, line.data, line.len - 1);
        while (rc == SS_AGAIN && !*stop);
        if (rc != SS_OK) {
            if (rc == SS_AGAIN)
                rc = SS_OK; /* stopped while waiting: a clean stop */
            break;
        }
    }
    ss_buf_free(&line);
    return rc;
}

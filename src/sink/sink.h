/* KPI sinks: the final minute KPIs of the hot store (what the kpi_minute
 * view shows once a minute is final) copied to an outside store, where its
 * users read them with their own tools (docs/architecture.md, "KPI sink").
 *
 * Backends are const ss_sink_ops chosen by the URI's scheme
 * ("hbase+http://HOST:PORT/TABLE": src/sink/hbase.c); a new backend is a new
 * file and one line in the registry of sink.c. A backend writes rows whose
 * values are absolute, never increments, so that writing a row again leaves
 * the same cells: after a crash the sink rewrites from its position on, and
 * the store ends as an uninterrupted run leaves it.
 *
 * The sink runs beside the engine in a thread of its own with its own
 * hot-store handle (ss_sink_thread), so that a store that is away never
 * holds the pipeline: it falls behind, retries with back-off and catches up.
 * Its position (the newest final minute it has written) and its lag are
 * lifecycle notes of the hot store ("kpi_sink_position URI" and
 * "kpi_sink URI"), shown by `shopstream archive --status`. */
#ifndef SS_SINK_H
#define SS_SINK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hot/hot.h"

/* One final minute of one dimension value, its shards added up. */
typedef struct ss_sink_row {
    int64_t minute;
    int dim;
    ss_str value;
    ss_kpi k;
} ss_sink_row;

typedef struct ss_sink_ops {
    const char *name;
    const char *scheme; /* the URI's prefix, "hbase+http://" */
    /* Parses the URI; SS_EINVAL with a message naming the expected form.
     * Connects to nothing. */
    int (*open)(const char *uri, void **st, char *err, size_t errlen);
    void (*close)(void *st);
    /* Whether the target (HBase: the table with its family) exists: SS_OK;
     * SS_EOF when it does not (err says how to create it); SS_AGAIN when the
     * store cannot be reached now; SS_EIO when it refuses. */
    int (*check)(void *st, char *err, size_t errlen);
    /* Creates the target; an existing one is fine. */
    int (*create)(void *st, char *err, size_t errlen);
    /* Writes n rows (overwriting what the keys hold), in requests of a few
     * hundred cells over one kept-alive connection. SS_OK, SS_AGAIN (retry
     * later), SS_EOF (the target is gone) or SS_EIO; err says why. */
    int (*write)(void *st, const ss_sink_row *rows, size_t n, char *err, size_t errlen);
    /* "HBase table kpis at http://127.0.0.1:8080" for messages. */
    const char *(*describe)(void *st);
} ss_sink_ops;

typedef struct ss_sink {
    const ss_sink_ops *ops;
    void *st;
} ss_sink;

/* Opens the sink of uri; SS_EINVAL for a URI no backend takes or one its
 * backend refuses (err names the problem and the fix). */
int ss_sink_open(const char *uri, ss_sink *sink, char *err, size_t errlen);
void ss_sink_close(ss_sink *sink);

/* Whether uri is one that a backend takes (SS_OK), else SS_EINVAL with
 * err naming the problem and the fix. Connects to nothing. */
int ss_sink_check_uri(const char *uri, char *err, size_t errlen);

/* The backends' registry. */
extern const ss_sink_ops ss_sink_hbase_ops;

/* ---- the sink's work (sink.c) ---- */

/* The state of a sink over a hot store. position: every final minute up to
 * and including it is written (INT64_MIN: none yet). */
typedef struct ss_sink_progress {
    int64_t position;
    int64_t newest_final; /* the store's newest final minute, or INT64_MIN */
    int64_t wm;           /* the store's lowest watermark, or INT64_MIN */
} ss_sink_progress;

/* Reads the sink's position from the hot store's notes. */
int ss_sink_position(ss_hot *hot, const char *uri, int64_t *position);

/* Final minutes that a sink at position (INT64_MIN: nothing written) has
 * not written, in a store whose lowest watermark is wm: 0 when caught up,
 * INT64_MAX when it has written nothing but minutes are final. */
int64_t ss_sink_lag(int64_t position, int64_t wm);

/* Reports each sink that has run on the store (its notes): its URI and
 * position (INT64_MIN when it has written nothing yet). */
int ss_sink_list(ss_hot *hot, int (*cb)(void *ctx, const char *uri, int64_t position), void *ctx);

/* One catch-up pass: writes every final minute after the position, in
 * chunks, moving the position (and *floor, when given: the first minute not
 * yet written) after each chunk. SS_OK when caught up, else the first
 * failure of the sink (SS_AGAIN, SS_EOF, SS_EIO) or of the hot store. */
int ss_sink_pass(ss_hot *hot, ss_sink *sink, const char *uri, _Atomic int64_t *floor,
                 ss_sink_progress *pr, char *err, size_t errlen);

/* The sink as a thread of `process`, `run` and `archive`: a pass every
 * second while it keeps up, and after a failure with a back-off from 1 s to
 * 30 s, logging and noting the condition and the lag. Opens its own handles.
 * @locality started and finished by one thread. */
typedef struct ss_sink_thread ss_sink_thread;

/* Checks the sink before the pipeline starts: a URI that no backend takes
 * and a missing target are SS_EINVAL and SS_EOF (the message, printed,
 * names the fix); a store that cannot be reached now is only logged, as the
 * thread retries. Then starts the thread (*t stays NULL without sink_uri). */
int ss_sink_thread_start(const char *hot_uri, const char *sink_uri, ss_sink_thread **t);
/* The first minute that the sink has not written yet: the archiver keeps
 * KPI rows from there on in the hot store. NULL for no thread. */
_Atomic int64_t *ss_sink_thread_floor(ss_sink_thread *t);
/* Stops the thread; with final_pass, one more pass (no retries), so that a
 * finite input leaves the sink caught up when its store answers. NULL is
 * fine. */
int ss_sink_thread_finish(ss_sink_thread *t, int final_pass);
/* Frees t (NULL is fine) once nothing reads its floor (the archiver's
 * thread has finished). */
void ss_sink_thread_free(ss_sink_thread *t);

#endif

/* The archiver moves the oldest events from the hot store to the cold store
 * when the hot store's data passes a threshold, in whole minutes of event
 * time, with a crash-safe protocol (docs/lifecycle.md):
 *
 *   1. record the run as `writing` in the hot store;
 *   2. write each part file under a temporary name, fsync, rename;
 *   3. write the manifest the same way;
 *   4. in one hot-store transaction: delete the archived events and mark the
 *      run `committed` with its manifest;
 *   then give the freed pages back. At start-up, a run left `writing` is
 *   finished if its manifest and files are complete, and rolled back (files
 *   and manifest removed) otherwise.
 * The cutoff never passes the engine's watermark, so no event can enter the
 * archived range after it was read.
 * @locality one thread; it opens its own store handles. */
#ifndef SS_COLD_ARCHIVER_H
#define SS_COLD_ARCHIVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cold/cold.h"
#include "hot/hot.h"

typedef struct ss_archiver_config {
    int64_t max_bytes;  /* the hot store's threshold */
    int gzip;           /* compress part files */
    const char *source; /* the hot store's URI, for manifests */
    /* An engine of the same process, which waits while *hold is non-zero
     * (ss_archiver_loop_config.hold); NULL when there is none. The archiver
     * sets SS_HOLD_WRITE while it writes the hot store: the engine commits
     * and lets it have the write lock, which a replay that commits back to
     * back would otherwise keep from it for seconds. */
    volatile int *hold;
    /* The first minute that the KPI sink of the same process has not
     * written yet (ss_sink_thread_floor), or NULL without a sink: the cutoff
     * stays at or before it, so that no KPI row leaves the hot store before
     * the sink has it. */
    _Atomic int64_t *kpi_floor;
} ss_archiver_config;

enum { SS_HOLD_FULL = 1, SS_HOLD_WRITE = 2 };

typedef struct ss_archive_result {
    char archive_id[48]; /* empty when nothing was archived */
    int64_t hot_bytes_before, hot_bytes_after;
    int64_t records, bytes; /* moved: events, and the bytes of every part file */
    int64_t kpi_rows;       /* moved: minute KPI rows */
    int64_t cutoff;
} ss_archive_result;

/* Finishes or rolls back every archive left `writing`. */
int ss_archiver_recover(ss_hot *hot, ss_cold *cold);

/* One archive run when the hot store is over its threshold. Returns SS_OK
 * (res->archive_id empty if there was nothing to do), SS_AGAIN when the cold
 * store cannot take data now (retry later: the run was rolled back), or a
 * hot-store failure. */
int ss_archiver_run_once(ss_hot *hot, ss_cold *cold, const ss_archiver_config *cfg,
                         ss_archive_result *res);

/* Checks every committed archive's files against its manifest (presence,
 * bytes, CRC-32, records) and reports stray files; writes a report for a
 * person to out. Returns SS_OK when all is well, SS_ECORRUPT otherwise. */
int ss_archiver_verify(ss_hot *hot, ss_cold *cold, ss_buf *out);

/* What a manifest holds: the events of its fact tables, the bytes of every
 * part file (the KPI rows' too), and the event time range (empty strings
 * when it holds no event). */
typedef struct ss_archive_summary {
    int64_t records, bytes;
    char from[32], to[32];
} ss_archive_summary;

/* Summarises a manifest's JSON text; a NULL or unreadable one gives zeros. */
void ss_archive_summarize(const char *manifest, ss_archive_summary *sum);

/* Writes the archives and the hot store's size against the threshold. */
int ss_archiver_status(ss_hot *hot, ss_cold *cold, int64_t max_bytes, ss_buf *out);

/* Runs the archiver: once, or every every_ms until *stop, on its own store
 * handles. When the cold store fails it retries with exponential back-off
 * (up to a minute) while ingestion goes on, and keeps the condition in the
 * hot store's lifecycle notes for `shopstream archive --status`. */
typedef struct ss_archiver_loop_config {
    const char *hot_uri;
    const char *cold_uri;
    ss_archiver_config cfg;
    int64_t every_ms;
    int once;
    volatile int *stop;
    /* When set, SS_HOLD_FULL is kept in it while the hot store holds more
     * than twice its threshold after a run that moved events (the archiver
     * then runs again at once, not every_ms later): an engine of the same
     * process waits on it (and on SS_HOLD_WRITE, see ss_archiver_config), so
     * that a replay faster than the archiver cannot grow the hot store
     * without bound. */
    volatile int *hold;
} ss_archiver_loop_config;

int ss_archiver_loop(const ss_archiver_loop_config *lc);

#ifdef SS_FAULT_POINTS
/* Test builds: kills the process with SIGKILL at the named step when
 * SHOPSTREAM_FAULT names it. */
void ss_fault_point(const char *name);
#else
#define ss_fault_point(name) ((void)0)
#endif

#endif

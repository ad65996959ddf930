/* The stores of the commands (cli/stores.h). */
#define _POSIX_C_SOURCE 200809L
#include "cli/stores.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cold/archiver.h"
#include "cold/cold.h"
#include "cold/index.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/thread.h"
#include "hot/hot.h"
#include "sink/sink.h"

void ss_store_uris(const char *data, const char *hot, const char *cold, char *hot_uri, size_t hn,
                   char *cold_uri, size_t cn)
{
    /* Absolute, because manifests name the store their data came from. */
    char real[PATH_MAX];
    if (realpath(data, real))
        data = real;
    if (hot)
        snprintf(hot_uri, hn, "%s", hot);
    else
        snprintf(hot_uri, hn, "sqlite:%s/hot.db", data);
    if (cold)
        snprintf(cold_uri, cn, "%s", cold);
    else
        snprintf(cold_uri, cn, "file:%s/cold", data);
}

struct ss_archiver_thread {
    ss_archiver_loop_config lc;
    char hot_uri[4096], cold_uri[4096];
    volatile int stop;
    volatile int hold;
    pthread_t tid;
    int running;
};

static void *archiver_main(void *arg)
{
    ss_thread_name("ss-archive");
    ss_archiver_thread *t = arg;
    ss_archiver_loop(&t->lc);
    return NULL;
}

ss_archiver_thread *ss_archiver_thread_start(const char *data, const char *hot, const char *cold,
                                             double hot_max_mb, int64_t every_s, int gzip,
                                             _Atomic int64_t *kpi_floor)
{
    if (every_s <= 0)
        return NULL;
    ss_archiver_thread *t = ss_calloc(1, sizeof *t);
    ss_store_uris(data, hot, cold, t->hot_uri, sizeof t->hot_uri, t->cold_uri, sizeof t->cold_uri);
    /* A store that keeps nothing (null:) has nothing to move. */
    const ss_hot_ops *ops = ss_hot_ops_for(t->hot_uri);
    if (ops && !ops->archive_begin) {
        SS_DEBUG("archive", "the hot store '%s' keeps nothing to archive; no archiver", ops->name);
        free(t);
        return NULL;
    }
    t->lc = (ss_archiver_loop_config){
        .hot_uri = t->hot_uri,
        .cold_uri = t->cold_uri,
        .cfg = {.max_bytes = (int64_t)(hot_max_mb * 1e6),
                .gzip = gzip,
                .source = t->hot_uri,
                .hold = &t->hold,
                .kpi_floor = kpi_floor},
        .every_ms = every_s * 1000,
        .stop = &t->stop,
        .hold = &t->hold,
    };
    t->running = pthread_create(&t->tid, NULL, archiver_main, t) == 0;
    if (!t->running)
        SS_ERROR("archive", "cannot start the archiver thread; archiving is off");
    return t;
}

volatile int *ss_archiver_thread_hold(ss_archiver_thread *t)
{
    return t ? &t->hold : NULL;
}

int ss_archiver_thread_finish(ss_archiver_thread *t, int final_pass)
{
    if (!t)
        return SS_OK;
    t->stop = 1;
    if (t->running)
        pthread_join(t->tid, NULL);
    t->hold = 0;
    int rc = SS_OK;
    if (final_pass) {
        /* A finite input has ended: leave the store within its threshold. */
        ss_archiver_loop_config lc = t->lc;
        lc.once = 1;
        rc = ss_archiver_loop(&lc);
    }
    free(t);
    return rc;
}

int ss_store_sink_uri_ok(const char *cmd, const char *sink_uri)
{
    char err[1024];
    if (sink_uri && ss_sink_check_uri(sink_uri, err, sizeof err) != SS_OK) {
        fprintf(stderr, "shopstream %s: --kpi-sink: %s\n", cmd, err);
        return SS_EXIT_USAGE;
    }
    return SS_EXIT_OK;
}

int ss_store_sink_start(const char *data, const char *hot, const char *sink_uri,
                        struct ss_sink_thread **t)
{
    char hot_uri[4096], cold_uri[4096];
    ss_store_uris(data, hot, NULL, hot_uri, sizeof hot_uri, cold_uri, sizeof cold_uri);
    int rc = ss_sink_thread_start(hot_uri, sink_uri, t);
    if (rc == SS_EINVAL || rc == SS_EOF)
        return SS_EXIT_USAGE;
    return rc ? SS_EXIT_FAIL : SS_EXIT_OK;
}

struct ss_cold_index *ss_store_cold_index(const char *data, const char *cold_uri,
                                          struct ss_cold *cold)
{
    char hot_uri[4096], uri[4096], err[1024];
    ss_store_uris(data, NULL, cold_uri, hot_uri, sizeof hot_uri, uri, sizeof uri);
    if (ss_cold_open(uri, cold, err, sizeof err) != SS_OK) {
        SS_WARN("process", "%s; archived events will not be recognised", err);
        return NULL;
    }
    return ss_cold_index_new(cold);
}

int ss_store_open_hot(const char *data, const char *hot_uri, int read_only, struct ss_hot *hot)
{
    char uri[4096], err[1024];
    if (hot_uri) {
        snprintf(uri, sizeof uri, "%s", hot_uri);
    } else {
        if (!read_only && mkdir(data, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "shopstream: cannot create data directory '%s': %s\n", data,
                    strerror(errno));
            return SS_EXIT_FAIL;
        }
        snprintf(uri, sizeof uri, "sqlite:%s/hot.db", data);
        struct stat sb;
        if (read_only && stat(uri + 7, &sb) != 0) {
            fprintf(stderr,
                    "shopstream: no hot store at '%s'; run 'shopstream process' or 'shopstream "
                    "run' with --data %s first\n",
                    uri + 7, data);
            return SS_EXIT_USAGE;
        }
    }
    ss_hot_open_opts o = {.read_only = read_only};
    int rc = ss_hot_open(uri, &o, hot, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shopstream: %s\n", err);
        return rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
    }
    return SS_EXIT_OK;
}

/* shopstream archive: moves the oldest events from the hot store to the cold
 * store past a size threshold; --status and --verify inspect the archives. */
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cold/archiver.h"
#include "cold/index.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"

typedef struct archive_opts {
    const char *data;
    const char *cold;
    int64_t hot_max_mb;
    int once;
    int status;
    int verify;
    int64_t every_s;
    int gzip;
} archive_opts;

#define F(f) offsetof(archive_opts, f)

static const ss_opt archive_table[] = {
    {"data", SS_OPT_STRING, F(data), "./data", 0, 0, NULL, "DIR",
     "Directory of the embedded stores (hot store DIR/hot.db)."},
    {"cold", SS_OPT_STRING, F(cold), NULL, 0, 0, NULL, "URI",
     "Cold store: a directory or file:PATH (default DIR/cold)."},
    {"hot-max-mb", SS_OPT_INT, F(hot_max_mb), "300", 1, 1e9, NULL, "N",
     "Archive the oldest events while the hot store holds more than N MB of data."},
    {"once", SS_OPT_FLAG, F(once), NULL, 0, 0, NULL, NULL,
     "Run once (if over the threshold) and exit, instead of checking every --every seconds."},
    {"status", SS_OPT_FLAG, F(status), NULL, 0, 0, NULL, NULL,
     "List the archives and the hot store's size against its threshold, and exit."},
    {"verify", SS_OPT_FLAG, F(verify), NULL, 0, 0, NULL, NULL,
     "Check every archive's files against its manifest; exit 1 on any problem."},
    {"every", SS_OPT_INT, F(every_s), "5", 1, 86400, NULL, "SECONDS",
     "How often to check the hot store's size."},
    {"gzip", SS_OPT_FLAG, F(gzip), NULL, 0, 0, NULL, NULL, "Compress part files (.jsonl.gz)."},
    SS_OPT_END,
};

void ss_archive_uris(const char *data, const char *cold, char *hot_uri, size_t hn, char *cold_uri,
                     size_t cn)
{
    /* Absolute, because manifests name the store their data came from. */
    char real[PATH_MAX];
    if (realpath(data, real))
        data = real;
    snprintf(hot_uri, hn, "sqlite:%s/hot.db", data);
    if (cold)
        snprintf(cold_uri, cn, "%s", cold);
    else
        snprintf(cold_uri, cn, "file:%s/cold", data);
}

typedef struct archiver_thread {
    ss_archiver_loop_config lc;
    char hot_uri[4096], cold_uri[4096];
    volatile int stop;
    pthread_t tid;
    int running;
} archiver_thread;

static void *archiver_main(void *arg)
{
    archiver_thread *t = arg;
    ss_archiver_loop(&t->lc);
    return NULL;
}

archiver_thread *ss_archiver_start(const char *data, const char *cold, int64_t hot_max_mb,
                                   int64_t every_s, int gzip)
{
    if (every_s <= 0)
        return NULL;
    archiver_thread *t = ss_calloc(1, sizeof *t);
    ss_archive_uris(data, cold, t->hot_uri, sizeof t->hot_uri, t->cold_uri, sizeof t->cold_uri);
    t->lc = (ss_archiver_loop_config){
        .hot_uri = t->hot_uri,
        .cold_uri = t->cold_uri,
        .cfg = {.max_bytes = hot_max_mb * 1000000, .gzip = gzip, .source = t->hot_uri},
        .every_ms = every_s * 1000,
        .stop = &t->stop,
    };
    t->running = pthread_create(&t->tid, NULL, archiver_main, t) == 0;
    if (!t->running)
        SS_ERROR("archive", "cannot start the archiver thread; archiving is off");
    return t;
}

int ss_archiver_finish(archiver_thread *t, int final_pass)
{
    if (!t)
        return SS_OK;
    t->stop = 1;
    if (t->running)
        pthread_join(t->tid, NULL);
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

struct ss_cold_index *ss_cold_index_for(const char *data, const char *cold_uri, ss_cold *cold)
{
    char hot_uri[4096], uri[4096], err[1024];
    ss_archive_uris(data, cold_uri, hot_uri, sizeof hot_uri, uri, sizeof uri);
    if (ss_cold_open(uri, cold, err, sizeof err) != SS_OK) {
        SS_WARN("process", "%s; archived events will not be recognised", err);
        return NULL;
    }
    return ss_cold_index_new(cold);
}

static int archive_run(const void *vopts, int argc, char **argv)
{
    const archive_opts *o = vopts;
    if (argc > 0) {
        fprintf(stderr, "shopstream archive: unexpected argument '%s'\n", argv[0]);
        return SS_EXIT_USAGE;
    }
    if (o->status + o->verify + o->once > 1) {
        fprintf(stderr, "shopstream archive: --once, --status and --verify exclude each other; "
                        "choose one\n");
        return SS_EXIT_USAGE;
    }
    char hot_uri[4096], cold_uri[4096], err[1024];
    ss_archive_uris(o->data, o->cold, hot_uri, sizeof hot_uri, cold_uri, sizeof cold_uri);
    /* Archiving a store that does not exist would create an empty one. */
    struct stat sb;
    if (stat(hot_uri + strlen("sqlite:"), &sb) != 0) {
        fprintf(stderr,
                "shopstream archive: no hot store at '%s'; give the --data directory that "
                "'shopstream process' or 'shopstream run' writes\n",
                hot_uri + strlen("sqlite:"));
        return SS_EXIT_USAGE;
    }
    ss_hot hot;
    int ec = ss_open_hot_for_data(o->data, NULL, 0, &hot);
    if (ec)
        return ec;
    int64_t max_bytes = o->hot_max_mb * 1000000;
    if (o->status || o->verify) {
        ss_cold cold;
        int rc = ss_cold_open(cold_uri, &cold, err, sizeof err);
        if (rc) {
            fprintf(stderr, "shopstream archive: %s\n", err);
            ss_hot_close(&hot);
            return rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
        }
        ss_buf out;
        ss_buf_init(&out, 4096);
        rc = o->status ? ss_archiver_status(&hot, &cold, max_bytes, &out)
                       : ss_archiver_verify(&hot, &cold, &out);
        fwrite(out.data, 1, out.len, stdout);
        ss_buf_free(&out);
        ss_cold_close(&cold);
        ss_hot_close(&hot);
        return rc == SS_OK ? SS_EXIT_OK : SS_EXIT_FAIL;
    }
    ss_hot_close(&hot);
    ss_install_stop_handlers();
    ss_archiver_loop_config lc = {
        .hot_uri = hot_uri,
        .cold_uri = cold_uri,
        .cfg = {.max_bytes = max_bytes, .gzip = o->gzip, .source = hot_uri},
        .every_ms = o->every_s * 1000,
        .once = o->once,
        .stop = &ss_stop_requested};
    int rc = ss_archiver_loop(&lc);
    return rc == SS_OK ? SS_EXIT_OK : rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
}

const ss_cmd ss_cmd_archive = {
    .name = "archive",
    .summary = "Move the oldest events to cold storage past a size threshold",
    .description =
        "While the hot store holds more than --hot-max-mb of data, the oldest whole minutes of "
        "events move to the cold store as JSON Lines partitioned by date and hour, with a "
        "manifest per run (docs/lifecycle.md). Runs also inside `shopstream process` and "
        "`shopstream run`. A run cut short by a crash is finished or rolled back at the next "
        "start.",
    .opts = archive_table,
    .opts_size = sizeof(archive_opts),
    .run = archive_run,
};

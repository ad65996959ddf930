/* shopstream archive: moves the oldest events from the hot store to the cold
 * store past a size threshold; --status and --verify inspect the archives. */
#include <stddef.h>
#include <sys/stat.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/stores.h"
#include "cold/archiver.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/status.h"
#include "sink/sink.h"

typedef struct archive_opts {
    const char *data;
    const char *hot;
    const char *cold;
    double hot_max_mb;
    int once;
    int status;
    int verify;
    int64_t every_s;
    int gzip;
    const char *kpi_sink;
} archive_opts;

#define F(f) offsetof(archive_opts, f)

static const ss_opt archive_table[] = {
    {"data", SS_OPT_STRING, F(data), "./data", 0, 0, NULL, "DIR",
     "Directory of the embedded stores (hot store DIR/hot.db)."},
    SS_HOT_OPT(archive_opts, hot),
    {"cold", SS_OPT_STRING, F(cold), NULL, 0, 0, NULL, "URI",
     "Cold store: a directory, file:PATH or [s]webhdfs://HOST:PORT/PATH (default DIR/cold)."},
    {"hot-max-mb", SS_OPT_DOUBLE, F(hot_max_mb), "300", 0.01, 1e9, NULL, "N",
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
    SS_KPI_SINK_OPT(archive_opts, kpi_sink),
    SS_OPT_END,
};

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
    if (ss_store_sink_uri_ok("archive", o->kpi_sink))
        return SS_EXIT_USAGE;
    char hot_uri[4096], cold_uri[4096], err[1024];
    ss_store_uris(o->data, o->hot, o->cold, hot_uri, sizeof hot_uri, cold_uri, sizeof cold_uri);
    /* Archiving a store that does not exist would create an empty one. */
    struct stat sb;
    if (!strncmp(hot_uri, "sqlite:", 7) && stat(hot_uri + strlen("sqlite:"), &sb) != 0) {
        fprintf(stderr,
                "shopstream archive: no hot store at '%s'; give the --data directory that "
                "'shopstream process' or 'shopstream run' writes\n",
                hot_uri + strlen("sqlite:"));
        return SS_EXIT_USAGE;
    }
    ss_hot hot;
    int ec = ss_store_open_hot(o->data, o->hot, 0, &hot);
    if (ec)
        return ec;
    int64_t max_bytes = (int64_t)(o->hot_max_mb * 1e6);
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
    /* With a KPI sink, the archiver moves no KPI row that the sink has not
     * written: --once writes first, the loop runs the sink beside it. */
    ss_sink_thread *sink = NULL;
    ec = ss_store_sink_start(o->data, o->hot, o->kpi_sink, &sink);
    if (ec)
        return ec;
    if (o->once)
        ss_sink_thread_finish(sink, 1);
    ss_install_stop_handlers();
    ss_archiver_loop_config lc = {.hot_uri = hot_uri,
                                  .cold_uri = cold_uri,
                                  .cfg = {.max_bytes = max_bytes,
                                          .gzip = o->gzip,
                                          .source = hot_uri,
                                          .kpi_floor = ss_sink_thread_floor(sink)},
                                  .every_ms = o->every_s * 1000,
                                  .once = o->once,
                                  .stop = &ss_stop_requested};
    int rc = ss_archiver_loop(&lc);
    ss_sink_thread_finish(sink, 0);
    ss_sink_thread_free(sink);
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

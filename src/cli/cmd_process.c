/* shopstream process: the stream engine over an input, into the hot store. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "cli/commands.h"
#include "cli/stores.h"
#include "common/log.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "engine/engine.h"
#include "engine/pipeline.h"
#include "gen/profile.h"
#include "cold/cold.h"
#include "cold/index.h"
#include "hot/hot.h"
#include "sink/sink.h"

typedef struct process_opts {
    const char *from;
    const char *data;
    const char *hot;
    int64_t lateness;
    int64_t commit_ms;
    int64_t commit_records;
    int follow;
    int64_t threads;
    const char *cold;
    double hot_max_mb;
    int64_t archive_every;
    const char *group;
    int exit_at_end;
    ss_opt_list property;
    const char *kpi_sink;
} process_opts;

#define F(f) offsetof(process_opts, f)

static const ss_opt_short process_shorts[] = {{'X', "property"}, {0, NULL}};

static const ss_opt process_table[] = {
    {"from", SS_OPT_STRING, F(from), "-", 0, 0, NULL, "URI",
     "Input: '-' (stdin), a JSON Lines file, file:PATH, or kafka://HOST:PORT/TOPIC (a Kafka "
     "topic, read as a member of --group)."},
    {"group", SS_OPT_STRING, F(group), NULL, 0, 0, NULL, "G",
     "Consumer group of a kafka:// input (default shopstream): the topic's partitions are shared "
     "among the group's processes."},
    {"exit-at-end", SS_OPT_FLAG, F(exit_at_end), NULL, 0, 0, NULL, NULL,
     "For a kafka:// input: stop, after committing, once every assigned partition has been read "
     "to its end (replays, backfills). A cluster that does not answer at the start is then an "
     "error after session.timeout.ms (30 s at most), not a wait, and so is a topic that does not "
     "exist."},
    {"property", SS_OPT_LIST, F(property), NULL, 0, 0, NULL, "KEY=VALUE",
     "A Kafka client property for a kafka:// input, given to librdkafka as kcat's -X is: TLS, "
     "SASL, tuning. Repeatable; in the environment, one per line."},
    {"data", SS_OPT_STRING, F(data), "./data", 0, 0, NULL, "DIR",
     "Directory of the embedded stores (hot store DIR/hot.db)."},
    SS_HOT_OPT(process_opts, hot),
    {"lateness", SS_OPT_INT, F(lateness), "120000", 0, 86400000.0 * 7, NULL, "MS",
     "Allowed lateness in ms: watermark = latest event time - lateness."},
    {"commit-ms", SS_OPT_INT, F(commit_ms), "250", 10, 600000, NULL, "MS",
     "Commit at least this often while data flows (provisional KPIs become visible), counted "
     "from the end of a commit; after a commit that took more than a quarter of this, four "
     "times its duration (a slow store spends at most a fifth of its time committing)."},
    {"commit-records", SS_OPT_SIZE, F(commit_records), "50000", 1, 10000000, NULL, "N",
     "Commit after this many records at the latest."},
    {"follow", SS_OPT_FLAG, F(follow), NULL, 0, 0, NULL, NULL,
     "At the end of a file, wait for more data instead of exiting (like tail -f)."},
    {"threads", SS_OPT_INT, F(threads), "2", 1, 2, NULL, "N",
     "2: a reader thread decodes while the engine writes to the store; 1: one thread does "
     "both."},
    SS_ARCHIVE_OPTS(process_opts, cold, hot_max_mb, archive_every),
    SS_KPI_SINK_OPT(process_opts, kpi_sink),
    SS_OPT_END,
};

int ss_run_engine(ss_engine *eng, ss_bus_consumer *in, int follow, int threads, int (*idle)(void *),
                  void *ctx, volatile int *hold)
{
    int seekable = 0;
    const char *source = in->ops->source(in->state, &seekable);
    int64_t pos = source ? ss_engine_position(eng, source) : -1;
    if (seekable && pos > 0) {
        SS_INFO("process", "resuming %s at byte %lld", source, (long long)pos);
        if (in->ops->seek(in->state, pos) != SS_OK) {
            SS_ERROR("process", "cannot seek %s to %lld", source, (long long)pos);
            return SS_EXIT_FAIL;
        }
    }
    ss_pipeline_hooks hooks = {
        .idle = idle, .ctx = ctx, .stop = &ss_stop_requested, .follow = follow, .hold = hold};
    int rc = threads > 1 ? ss_engine_run_pipeline(eng, in, &hooks) : ss_engine_run(eng, in, &hooks);
    if (rc != SS_OK) {
        SS_ERROR("process",
                 "stopped (%s); nothing is lost: the next start resumes at the last commit",
                 ss_status_str(rc));
        return SS_EXIT_FAIL;
    }
    return SS_EXIT_OK;
}

static int process_run(const void *vopts, int argc, char **argv)
{
    const process_opts *o = vopts;
    if (argc > 0) {
        fprintf(stderr, "shopstream process: unexpected argument '%s'; use --from FILE\n", argv[0]);
        return SS_EXIT_USAGE;
    }
    if (ss_store_sink_uri_ok("process", o->kpi_sink))
        return SS_EXIT_USAGE;
    char err[1024];
    ss_bus_consumer in;
    ss_bus_opts bus_opts = {.props = o->property.items,
                            .nprops = o->property.n,
                            .group = o->group,
                            .exit_at_end = o->exit_at_end};
    int rc = ss_bus_consumer_open(o->from, &bus_opts, &in, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shopstream process: %s\n", err);
        return rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
    }
    if (o->follow && !in.ops->follow) {
        fprintf(stderr,
                "shopstream process: --follow waits at the end of a file; a %s input is read "
                "until stopped anyway (or give --exit-at-end to stop at its end)\n",
                in.ops->name);
        ss_bus_consumer_close(&in);
        return SS_EXIT_USAGE;
    }
    ss_hot hot;
    int ec = ss_store_open_hot(o->data, o->hot, 0, &hot);
    if (ec) {
        ss_bus_consumer_close(&in);
        return ec;
    }
    ss_profile *prof = NULL;
    ss_profile_load(NULL, &prof, err, sizeof err);
    ss_cold cold = {0};
    struct ss_cold_index *cix = ss_store_cold_index(o->data, o->cold, &cold);
    ss_engine_config cfg = {.cold = cix,
                            .input = &in,
                            .lateness_ms = o->lateness,
                            .commit_ms = o->commit_ms,
                            .commit_records = (uint32_t)o->commit_records,
                            .places = prof};
    ss_engine *eng = NULL;
    ss_sink_thread *sink = NULL;
    rc = ss_engine_open(&hot, &cfg, &eng, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shopstream process: %s\n", err);
        ec = SS_EXIT_FAIL;
    } else if ((ec = ss_store_sink_start(o->data, o->hot, o->kpi_sink, &sink)) == SS_EXIT_OK) {
        ss_install_stop_handlers();
        ss_archiver_thread *arch =
            ss_archiver_thread_start(o->data, o->hot, o->cold, o->hot_max_mb, o->archive_every, 0,
                                     ss_sink_thread_floor(sink));
        ec = ss_run_engine(eng, &in, o->follow, (int)o->threads, NULL, NULL,
                           ss_archiver_thread_hold(arch));
        /* The sink first: the archiver's last run keeps what it has not written. */
        int final = ec == SS_EXIT_OK && !ss_stop_requested;
        if (ss_sink_thread_finish(sink, final) != SS_OK && final)
            SS_WARN("process", "the KPI sink is not caught up; the next start with --kpi-sink "
                               "writes the rest");
        if (ss_archiver_thread_finish(arch, final) != SS_OK && ec == SS_EXIT_OK)
            SS_WARN("process", "the final archive run did not complete; the next one will");
        ss_sink_thread_free(sink);
        ss_engine_stats st;
        ss_engine_get_stats(eng, &st);
        SS_INFO("process",
                "%llu records: %llu stored, %llu duplicates, %llu rejected, %llu late; "
                "%llu commits",
                (unsigned long long)st.s.events_in, (unsigned long long)st.s.stored,
                (unsigned long long)st.s.duplicates, (unsigned long long)st.s.rejected,
                (unsigned long long)st.s.late, (unsigned long long)st.commits);
    }
    ss_engine_free(eng);
    ss_profile_free(prof);
    ss_cold_index_free(cix);
    ss_cold_close(&cold);
    ss_hot_close(&hot);
    ss_bus_consumer_close(&in);
    return ec;
}

const ss_cmd ss_cmd_process = {
    .name = "process",
    .summary = "Process events into facts, dimensions and minute KPIs in the hot store",
    .description =
        "Reads JSON Lines, validates and deduplicates every event, assigns it to one-minute "
        "event-time windows under a watermark, and commits facts, KPIs and the input position "
        "together. Invalid records go to rejected_events, records behind the watermark to "
        "late_events. A restart resumes at the last commit with the same result as an "
        "uninterrupted run.",
    .opts = process_table,
    .shorts = process_shorts,
    .opts_size = sizeof(process_opts),
    .run = process_run,
};

/* The stores of the commands: which hot and cold stores a data directory
 * and the --hot/--cold options name, how a command opens them, and the
 * archiver as a thread of `process` and `run`. Shared by every command that
 * reads or writes the stores, so that each names and opens them alike.
 * @locality any thread; each call opens its own handles. */
#ifndef SS_CLI_STORES_H
#define SS_CLI_STORES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "cli/opt.h"

struct ss_hot;
struct ss_cold;
struct ss_cold_index;

/* The hot and cold store URIs of a data directory and the --hot and --cold
 * options (hot: the given URI, or sqlite:DIR/hot.db; cold: the given URI,
 * or DIR/cold), with the directory made absolute, since manifests name the
 * store their data came from. */
void ss_store_uris(const char *data, const char *hot, const char *cold, char *hot_uri, size_t hn,
                   char *cold_uri, size_t cn);

/* Opens the hot store of a data directory (or hot_uri when given); prints a
 * message and returns an exit code on failure. */
int ss_store_open_hot(const char *data, const char *hot_uri, int read_only, struct ss_hot *hot);

/* Opens the cold store of a data directory into cold and returns an index
 * of its archives for the engine (NULL, with a warning, when it cannot). */
struct ss_cold_index *ss_store_cold_index(const char *data, const char *cold_uri,
                                          struct ss_cold *cold);

/* The --hot option of every command that opens the hot store. */
#define SS_HOT_OPT(type, f_hot)                                                                    \
    {                                                                                              \
        "hot", SS_OPT_STRING, offsetof(type, f_hot), NULL, 0, 0, NULL, "URI",                      \
            "Hot store: sqlite:PATH, or mongodb://HOST:PORT/DB[?options] (MongoDB's connection "   \
            "string; default sqlite:DIR/hot.db). On MongoDB, every server (a replica set too) "    \
            "runs in epoch mode: each write is tagged with its batch, and a batch that was never " \
            "committed is undone at the next start; multi-document transactions are not used."     \
    }

/* The archiver as a thread of `process` and `run`: checks every every_s
 * seconds (0: off); ss_archiver_thread_finish stops it and, with final_pass,
 * runs it once more. */
typedef struct ss_archiver_thread ss_archiver_thread;
ss_archiver_thread *ss_archiver_thread_start(const char *data, const char *hot, const char *cold,
                                             double hot_max_mb, int64_t every_s, int gzip,
                                             _Atomic int64_t *kpi_floor);
int ss_archiver_thread_finish(ss_archiver_thread *t, int final_pass);
/* The thread's backpressure flag (ss_archiver_loop_config.hold), for
 * ss_run_engine; NULL without a thread. */
volatile int *ss_archiver_thread_hold(ss_archiver_thread *t);

/* The KPI sink of a data directory's hot store as a thread
 * (sink/sink.h): a bad URI or a missing table prints a message and returns
 * SS_EXIT_USAGE, a store that does not answer is only logged. *t stays NULL
 * without sink_uri. */
struct ss_sink_thread;
int ss_store_sink_start(const char *data, const char *hot, const char *sink_uri,
                        struct ss_sink_thread **t);

/* Checks a --kpi-sink URI before a command opens anything (NULL is fine);
 * prints the message and returns SS_EXIT_USAGE for a bad one. */
int ss_store_sink_uri_ok(const char *cmd, const char *sink_uri);

/* The --kpi-sink option of process, run and archive. */
#define SS_KPI_SINK_OPT(type, f_sink)                                                              \
    {                                                                                              \
        "kpi-sink", SS_OPT_STRING, offsetof(type, f_sink), NULL, 0, 0, NULL, "URI",                \
            "Also write the final minute KPIs (kpi_minute) to hbase+http://HOST:PORT/TABLE, an "   \
            "HBase table (made with `shopstream hbase-create`) through HBase's REST gateway. An "  \
            "HBase that is away never stops the pipeline: the sink falls behind, retries and "     \
            "catches up; `archive --status` shows its lag."                                        \
    }

/* The option table entries of the archiver thread, shared by process and run. */
#define SS_ARCHIVE_OPTS(type, f_cold, f_max, f_every)                                              \
    {"cold",                                                                                       \
     SS_OPT_STRING,                                                                                \
     offsetof(type, f_cold),                                                                       \
     NULL,                                                                                         \
     0,                                                                                            \
     0,                                                                                            \
     NULL,                                                                                         \
     "URI",                                                                                        \
     "Cold store for archived events: a directory, file:PATH or [s]webhdfs://HOST:PORT/PATH "      \
     "(default DIR/cold)."},                                                                       \
        {"hot-max-mb",                                                                             \
         SS_OPT_DOUBLE,                                                                            \
         offsetof(type, f_max),                                                                    \
         "300",                                                                                    \
         0.01,                                                                                     \
         1e9,                                                                                      \
         NULL,                                                                                     \
         "N",                                                                                      \
         "Archive the oldest events while the hot store holds more than N MB of data."},           \
    {                                                                                              \
        "archive-every", SS_OPT_INT, offsetof(type, f_every), "5", 0, 86400, NULL, "SECONDS",      \
            "How often the archiver checks the hot store's size (0: no archiving)."                \
    }

#endif

/* The registry of shopstream's commands; each lives in its own cmd_*.c. */
#ifndef SS_CLI_COMMANDS_H
#define SS_CLI_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "cli/opt.h"

extern const ss_cmd ss_cmd_gen;
extern const ss_cmd ss_cmd_process;
extern const ss_cmd ss_cmd_sql;
extern const ss_cmd ss_cmd_run;
extern const ss_cmd ss_cmd_archive;
extern const ss_cmd ss_cmd_serve;

/* The archiver as a thread of `process` and `run`: checks every every_s
 * seconds (0: off); ss_archiver_finish stops it and, with final_pass, runs it
 * once more. */
typedef struct archiver_thread archiver_thread;
archiver_thread *ss_archiver_start(const char *data, const char *cold, int64_t hot_max_mb,
                                   int64_t every_s, int gzip);
int ss_archiver_finish(archiver_thread *t, int final_pass);

/* The option table entries of the archiver, shared by process and run. */
#define SS_ARCHIVE_OPTS(type, f_cold, f_max, f_every)                                              \
    {"cold",                                                                                       \
     SS_OPT_STRING,                                                                                \
     offsetof(type, f_cold),                                                                       \
     NULL,                                                                                         \
     0,                                                                                            \
     0,                                                                                            \
     NULL,                                                                                         \
     "URI",                                                                                        \
     "Cold store for archived events: a directory or file:PATH (default DIR/cold)."},              \
        {"hot-max-mb",                                                                             \
         SS_OPT_INT,                                                                               \
         offsetof(type, f_max),                                                                    \
         "300",                                                                                    \
         1,                                                                                        \
         1e9,                                                                                      \
         NULL,                                                                                     \
         "N",                                                                                      \
         "Archive the oldest events while the hot store holds more than N MB of data."},           \
    {                                                                                              \
        "archive-every", SS_OPT_INT, offsetof(type, f_every), "5", 0, 86400, NULL, "SECONDS",      \
            "How often the archiver checks the hot store's size (0: no archiving)."                \
    }

/* Opens the cold store of a data directory into cold and returns an index
 * of its archives for the engine (NULL, with a warning, when it cannot). */
struct ss_cold;
struct ss_cold_index;
struct ss_cold_index *ss_cold_index_for(const char *data, const char *cold_uri,
                                        struct ss_cold *cold);

/* The hot and cold store URIs of a data directory (cold: the given URI, or
 * DIR/cold). */
void ss_archive_uris(const char *data, const char *cold, char *hot_uri, size_t hn, char *cold_uri,
                     size_t cn);

struct ss_hot;
struct ss_engine;
struct ss_bus_consumer;

/* Opens the hot store of a data directory (or hot_uri when given); prints a
 * message and returns an exit code on failure. */
int ss_open_hot_for_data(const char *data, const char *hot_uri, int read_only, struct ss_hot *hot);

/* Feeds the engine from the input until its end (or forever when follow),
 * committing when due and when idle, on one thread or with a decoding reader
 * thread (threads = 2); idle(ctx) returning non-zero stops. */
int ss_run_engine(struct ss_engine *eng, struct ss_bus_consumer *in, int follow, int threads,
                  int (*idle)(void *), void *ctx);

/* Set by SIGINT and SIGTERM: long-running commands finish their current step,
 * flush and exit cleanly. */
extern volatile int ss_stop_requested;

/* Installs the SIGINT/SIGTERM handlers that set ss_stop_requested. */
void ss_install_stop_handlers(void);

#endif

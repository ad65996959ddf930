/* The registry of shopstream's commands; each lives in its own cmd_*.c. */
#ifndef SS_CLI_COMMANDS_H
#define SS_CLI_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "cli/opt.h"

extern const ss_cmd ss_cmd_gen;
extern const ss_cmd ss_cmd_fit;
extern const ss_cmd ss_cmd_process;
extern const ss_cmd ss_cmd_sql;
extern const ss_cmd ss_cmd_run;
extern const ss_cmd ss_cmd_archive;
extern const ss_cmd ss_cmd_serve;
extern const ss_cmd ss_cmd_hbase_create;

struct ss_engine;
struct ss_bus_consumer;

/* Feeds the engine from the input until its end (or forever when follow),
 * committing when due and when idle, on one thread or with a decoding reader
 * thread (threads = 2); idle(ctx) returning non-zero stops. */
int ss_run_engine(struct ss_engine *eng, struct ss_bus_consumer *in, int follow, int threads,
                  int (*idle)(void *), void *ctx, volatile int *hold);

/* Set by SIGINT and SIGTERM: long-running commands finish their current step,
 * flush and exit cleanly. */
extern volatile int ss_stop_requested;

/* Installs the SIGINT/SIGTERM handlers that set ss_stop_requested. */
void ss_install_stop_handlers(void);

#endif

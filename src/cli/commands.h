/* The registry of shopstream's commands; each lives in its own cmd_*.c. */
#ifndef SS_CLI_COMMANDS_H
#define SS_CLI_COMMANDS_H

#include "cli/opt.h"

extern const ss_cmd ss_cmd_gen;

/* Set by SIGINT and SIGTERM: long-running commands finish their current step,
 * flush and exit cleanly. */
extern volatile int ss_stop_requested;

/* Installs the SIGINT/SIGTERM handlers that set ss_stop_requested. */
void ss_install_stop_handlers(void);

#endif

#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opt.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"

#ifndef SS_VERSION
#define SS_VERSION "0.0.0"
#endif

static const ss_cmd *const commands[] = {
    &ss_cmd_gen, &ss_cmd_fit,     &ss_cmd_process, &ss_cmd_sql,
    &ss_cmd_run, &ss_cmd_archive, &ss_cmd_serve,   &ss_cmd_hbase_create,
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

volatile int ss_stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    ss_stop_requested = 1;
}

void ss_install_stop_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static void print_usage(FILE *f)
{
    fprintf(f,
            "shopstream %s: real-time e-commerce analytics pipeline\n\n"
            "Usage: shopstream <command> [options]\n\nCommands:\n",
            SS_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fprintf(f,
            "  %-10s %s\n  %-10s %s\n\n"
            "Run 'shopstream <command> --help' for a command's options.\n",
            "help", "Show this help, or a command's: help <command>; help --markdown", "version",
            "Print the version");
}

static const ss_cmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

static int run_cmd(const ss_cmd *cmd, int argc, char **argv)
{
    void *opts = calloc(1, cmd->opts_size ? cmd->opts_size : 1);
    ss_common_opts common;
    int npos = 0, rc;
    if (!opts)
        return SS_EXIT_FAIL;
    if (ss_opt_parse(cmd, opts, &common, argc, argv, &npos)) {
        rc = SS_EXIT_USAGE;
    } else if (common.help) {
        ss_opt_print_help(cmd);
        rc = SS_EXIT_OK;
    } else {
        ss_log_set_level(common.log_level);
        rc = cmd->run(opts, npos, argv);
    }
    free(opts);
    ss_opt_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    ss_mem_tune();
    ss_opt_set_commands(commands, NCOMMANDS);
    if (argc < 2) {
        print_usage(stderr);
        return SS_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
        if (argc > 2 && !strcmp(argv[2], "--markdown")) {
            ss_opt_print_markdown(commands, NCOMMANDS);
            return SS_EXIT_OK;
        }
        if (argc > 2) {
            const ss_cmd *cmd = find_cmd(argv[2]);
            if (!cmd) {
                fprintf(stderr,
                        "shopstream help: unknown command '%s'; run 'shopstream help' "
                        "for the list\n",
                        argv[2]);
                return SS_EXIT_USAGE;
            }
            ss_opt_print_help(cmd);
            return SS_EXIT_OK;
        }
        print_usage(stdout);
        return SS_EXIT_OK;
    }
    if (!strcmp(name, "version") || !strcmp(name, "--version")) {
        printf("shopstream %s\n", SS_VERSION);
        return SS_EXIT_OK;
    }
    const ss_cmd *cmd = find_cmd(name);
    if (!cmd) {
        fprintf(stderr, "shopstream: unknown command '%s'; run 'shopstream help' for the list\n",
                name);
        return SS_EXIT_USAGE;
    }
    return run_cmd(cmd, argc - 2, argv + 2);
}

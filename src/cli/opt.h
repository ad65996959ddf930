/* Options are described once, in a table per command. The same table drives
 * command-line parsing, SHOPSTREAM_* environment variables, the config file,
 * validation with messages that name the problem and the fix, `--help`, and
 * the reference in docs/options.md (`shopstream help --markdown`).
 *
 * Precedence, lowest first: built-in default, config file (--config FILE or
 * SHOPSTREAM_CONFIG), environment, command line. */
#ifndef SS_CLI_OPT_H
#define SS_CLI_OPT_H

#include <stddef.h>
#include <stdint.h>

typedef enum ss_opt_type {
    SS_OPT_FLAG,   /* int: 0 or 1; on the command line takes no value */
    SS_OPT_INT,    /* int64_t within [min, max] */
    SS_OPT_DOUBLE, /* double within [min, max] */
    SS_OPT_STRING, /* const char *; NULL when unset */
    SS_OPT_CHOICE, /* const char *, one of `choices` ("table|csv|json") */
    SS_OPT_TIME,   /* int64_t ms: ISO-8601 time, YYYY-MM-DD or "now" */
    SS_OPT_SIZE,   /* int64_t, a count with an optional k/M/G suffix */
    SS_OPT_LIST,   /* ss_opt_list: each occurrence adds a value */
} ss_opt_type;

/* The values of an SS_OPT_LIST option, in the order they were given: config
 * file lines first, then the environment variable (one value per line), then
 * the command line, so that a consumer applying them in order lets the later
 * sources win. The arrays and strings belong to the parser until
 * ss_opt_cleanup. */
typedef struct ss_opt_list {
    const char **items;
    size_t n;
} ss_opt_list;

/* A one-letter alias of a long option, as the tool that the option mirrors
 * spells it (kcat's -X): "-X VALUE" and "-XVALUE" mean "--property VALUE". */
typedef struct ss_opt_short {
    char letter;
    const char *name; /* the long option's name */
} ss_opt_short;

typedef struct ss_opt {
    const char *name; /* "seed": --seed, SHOPSTREAM_SEED, config key "seed" */
    ss_opt_type type;
    size_t offset;   /* of the field in the command's option struct */
    const char *def; /* default as text; NULL = unset */
    double min, max; /* numeric range, inclusive */
    const char *choices;
    const char *metavar;
    const char *help;
} ss_opt;

#define SS_OPT_END                                                                                 \
    {                                                                                              \
        NULL, 0, 0, NULL, 0, 0, NULL, NULL, NULL                                                   \
    }

typedef struct ss_cmd {
    const char *name;
    const char *summary;     /* one line for `shopstream help` */
    const char *args;        /* positional arguments for the usage line, or NULL */
    const char *description; /* paragraph for `--help` */
    const ss_opt *opts;      /* terminated by SS_OPT_END */
    size_t opts_size;        /* sizeof the option struct */
    /* Runs the command with its parsed options and positional arguments;
     * returns a process exit code (enum ss_exit). */
    int (*run)(const void *opts, int argc, char **argv);
    /* One-letter aliases of options, ended by {0}; NULL for none. */
    const ss_opt_short *shorts;
} ss_cmd;

/* Options every command takes, parsed into this struct. */
typedef struct ss_common_opts {
    const char *config;
    const char *log_level;
    int help;
} ss_common_opts;

extern const ss_opt ss_common_opt_table[];

/* Parses argv (after the command name) for cmd into opts (opts_size bytes)
 * and common. Positional arguments are left, in order, in argv[0..*npos).
 * Returns 0, or SS_EINVAL after printing a message to stderr. */
int ss_opt_parse(const ss_cmd *cmd, void *opts, ss_common_opts *common, int argc, char **argv,
                 int *npos);

/* Writes `--help` text for the command to stdout. */
void ss_opt_print_help(const ss_cmd *cmd);

/* Writes the Markdown reference for the commands to stdout. */
void ss_opt_print_markdown(const ss_cmd *const *cmds, size_t ncmds);

/* The environment variable of an option: "SHOPSTREAM_" + upper-case name. */
void ss_opt_env_name(const ss_opt *o, char *out, size_t outlen);

/* Tells the parser every command, so that a config-file key that no command
 * knows is reported as a mistake while keys for other commands are skipped. */
void ss_opt_set_commands(const ss_cmd *const *cmds, size_t ncmds);

/* Releases strings the parser copied (config-file values). */
void ss_opt_cleanup(void);

#endif

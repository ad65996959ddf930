/* Unit tests of cli/opt with a small command table of every option type:
 * both flag forms, one-letter aliases, lists, values and ranges, positional
 * arguments, environment
 * variables, config files, and the order in which they override each other
 * (default < config < env < flag). Error messages go to stderr; the tests
 * capture them to check that they name the problem. */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "cli/opt.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"

typedef struct topts {
    int64_t count;
    double ratio;
    int verbose;
    const char *label;
    const char *mode;
    int64_t when;
    int64_t size;
    int64_t dash_name;
    ss_opt_list prop;
} topts;

#define F(f) offsetof(topts, f)

static const ss_opt topt_table[] = {
    {"count", SS_OPT_INT, F(count), "7", 0, 100, NULL, "N", "How many."},
    {"ratio", SS_OPT_DOUBLE, F(ratio), "0.5", 0, 1, NULL, "R", "A fraction."},
    {"verbose", SS_OPT_FLAG, F(verbose), NULL, 0, 0, NULL, NULL, "Say more."},
    {"label", SS_OPT_STRING, F(label), NULL, 0, 0, NULL, "TEXT", "A name."},
    {"mode", SS_OPT_CHOICE, F(mode), "fast", 0, 0, "fast|slow", "MODE", "Speed."},
    {"when", SS_OPT_TIME, F(when), NULL, 0, 0, NULL, "TIME", "Start."},
    {"size", SS_OPT_SIZE, F(size), "1k", 0, 1e12, NULL, "N", "Bytes."},
    {"dash-name", SS_OPT_INT, F(dash_name), NULL, -5, 5, NULL, NULL, "Dashes."},
    {"prop", SS_OPT_LIST, F(prop), NULL, 0, 0, NULL, "KEY=VALUE", "A property; repeatable."},
    SS_OPT_END,
};

static const ss_opt_short tshorts[] = {{'P', "prop"}, {0, NULL}};

static int trun(const void *opts, int argc, char **argv)
{
    (void)opts;
    (void)argc;
    (void)argv;
    return 0;
}

static const ss_cmd tcmd = {
    .name = "tcmd",
    .summary = "A test command",
    .args = "[FILE...]",
    .description = "Exercises every option type.",
    .opts = topt_table,
    .shorts = tshorts,
    .opts_size = sizeof(topts),
    .run = trun,
};

/* A second command, so that config keys of other commands are skipped. */
static const ss_opt other_table[] = {
    {"other-key", SS_OPT_INT, 0, "1", 0, 10, NULL, "N", "Only for the other command."},
    SS_OPT_END,
};

static const ss_cmd other_cmd = {
    .name = "other",
    .summary = "Another test command",
    .opts = other_table,
    .opts_size = sizeof(int64_t),
    .run = trun,
};

static const ss_cmd *const tcmds[] = {&tcmd, &other_cmd};

static const char *const env_names[] = {
    "SHOPSTREAM_COUNT",  "SHOPSTREAM_RATIO",     "SHOPSTREAM_VERBOSE", "SHOPSTREAM_LABEL",
    "SHOPSTREAM_MODE",   "SHOPSTREAM_WHEN",      "SHOPSTREAM_SIZE",    "SHOPSTREAM_DASH_NAME",
    "SHOPSTREAM_CONFIG", "SHOPSTREAM_LOG_LEVEL", "SHOPSTREAM_HELP",    "SHOPSTREAM_OTHER_KEY",
    "SHOPSTREAM_PROP",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        unsetenv(env_names[i]);
}

/* One parse: argv is copied, because the parser reorders it and keeps
 * pointers into it; stderr is captured into msg. */
typedef struct run {
    char *argv[32];
    char *owned[32]; /* the copies, for freeing: the parser reorders argv */
    int argc, npos, rc;
    topts o;
    ss_common_opts c;
    char msg[2048];
} run;

static int parse_list(run *r, va_list ap)
{
    memset(r, 0, sizeof *r);
    for (const char *a = va_arg(ap, const char *); a && r->argc < 31;
         a = va_arg(ap, const char *)) {
        r->owned[r->argc] = ss_strdup(a);
        r->argv[r->argc] = r->owned[r->argc];
        r->argc++;
    }

    fflush(stderr);
    FILE *cap = tmpfile();
    int saved = dup(STDERR_FILENO);
    if (cap && saved >= 0)
        dup2(fileno(cap), STDERR_FILENO);
    r->rc = ss_opt_parse(&tcmd, &r->o, &r->c, r->argc, r->argv, &r->npos);
    fflush(stderr);
    if (cap && saved >= 0) {
        dup2(saved, STDERR_FILENO);
        rewind(cap);
        size_t n = fread(r->msg, 1, sizeof r->msg - 1, cap);
        r->msg[n] = '\0';
    }
    if (saved >= 0)
        close(saved);
    if (cap)
        fclose(cap);
    return r->rc;
}

/* Parses the arguments that follow r, up to a NULL. */
static int parse_args(run *r, ...)
{
    va_list ap;
    va_start(ap, r);
    int rc = parse_list(r, ap);
    va_end(ap);
    return rc;
}

/* Frees the copied argv and the strings the parser kept from config files. */
static void run_free(run *r)
{
    for (int i = 0; i < r->argc; i++)
        free(r->owned[i]);
    r->argc = 0;
    ss_opt_cleanup();
}

/* Parses the arguments up to a NULL, expects SS_EINVAL with a message that
 * names the command and contains needle. */
static void expect_error(int line, const char *needle, ...)
{
    run r;
    va_list ap;
    va_start(ap, needle);
    int rc = parse_list(&r, ap);
    va_end(ap);
    check_report(rc == SS_EINVAL, __FILE__, line, "rc %d for %s %s", rc,
                 r.argc > 0 ? r.argv[0] : "", r.argc > 1 ? r.argv[1] : "");
    check_report(strstr(r.msg, needle) != NULL, __FILE__, line,
                 "message \"%s\" does not contain \"%s\"", r.msg, needle);
    check_report(strncmp(r.msg, "shopstream tcmd: ", 17) == 0, __FILE__, line,
                 "message \"%s\" does not name the command", r.msg);
    check_report(strchr(r.msg, '\n') == r.msg + strlen(r.msg) - 1, __FILE__, line,
                 "message \"%s\" is not one line", r.msg);
    run_free(&r);
}

#define EXPECT_ERROR(needle, ...) expect_error(__LINE__, (needle), __VA_ARGS__, (const char *)NULL)

static void test_defaults(void)
{
    run r;
    if (CHECK_EQ_INT(parse_args(&r, (const char *)NULL), SS_OK)) {
        CHECK_EQ_INT(r.o.count, 7);
        CHECK_NEAR(r.o.ratio, 0.5, 0.0);
        CHECK_EQ_INT(r.o.verbose, 0);
        CHECK(r.o.label == NULL);
        CHECK_STR(r.o.mode, "fast");
        CHECK_EQ_INT(r.o.when, 0);
        CHECK_EQ_INT(r.o.size, 1000);
        CHECK_STR(r.c.log_level, "info");
        CHECK(r.c.config == NULL);
        CHECK_EQ_INT(r.c.help, 0);
        CHECK_EQ_INT(r.npos, 0);
        CHECK_STR(r.msg, "");
    }
    run_free(&r);
}

static void test_flag_forms(void)
{
    run r;
    if (CHECK_EQ_INT(parse_args(&r, "--count=5", "--ratio", "0.25", "--label", "a b", "--mode=slow",
                                "--when", "2026-11-02", "--size", "2M", "--dash-name=-3",
                                (const char *)NULL),
                     SS_OK)) {
        CHECK_EQ_INT(r.o.count, 5);
        CHECK_NEAR(r.o.ratio, 0.25, 0.0);
        CHECK_STR(r.o.label, "a b");
        CHECK_STR(r.o.mode, "slow");
        CHECK_EQ_INT(r.o.when, 1793577600000);
        CHECK_EQ_INT(r.o.size, 2000000);
        CHECK_EQ_INT(r.o.dash_name, -3);
    }
    run_free(&r);

    /* A value may start with a dash or contain '='. */
    if (CHECK_EQ_INT(parse_args(&r, "--label", "--x", "--dash-name", "-5", (const char *)NULL),
                     SS_OK)) {
        CHECK_STR(r.o.label, "--x");
        CHECK_EQ_INT(r.o.dash_name, -5);
    }
    run_free(&r);
    if (CHECK_EQ_INT(parse_args(&r, "--label=k=v", (const char *)NULL), SS_OK))
        CHECK_STR(r.o.label, "k=v");
    run_free(&r);

    /* The last of a repeated flag wins. */
    if (CHECK_EQ_INT(parse_args(&r, "--count", "1", "--count=2", (const char *)NULL), SS_OK))
        CHECK_EQ_INT(r.o.count, 2);
    run_free(&r);

    /* Size suffixes. */
    static const struct {
        const char *v;
        int64_t want;
    } sizes[] = {{"0", 0},           {"12", 12},         {"3k", 3000},
                 {"3K", 3000},       {"4M", 4000000},    {"4m", 4000000},
                 {"1G", 1000000000}, {"1g", 1000000000}, {"1000G", 1000000000000}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (CHECK_EQ_INT(parse_args(&r, "--size", sizes[i].v, (const char *)NULL), SS_OK))
            CHECK_EQ_INT(r.o.size, sizes[i].want);
        run_free(&r);
    }

    /* "now" is the current time. */
    int64_t t0 = ss_now_ms();
    if (CHECK_EQ_INT(parse_args(&r, "--when", "now", (const char *)NULL), SS_OK))
        CHECK(r.o.when >= t0 && r.o.when <= ss_now_ms());
    run_free(&r);
    if (CHECK_EQ_INT(parse_args(&r, "--when=2026-11-02T14:03:11.123Z", (const char *)NULL), SS_OK))
        CHECK_EQ_INT(r.o.when, 1793628191123);
    run_free(&r);
}

static void test_flags_and_positionals(void)
{
    run r;
    /* A flag takes no value from the next argument. */
    if (CHECK_EQ_INT(parse_args(&r, "--verbose", "in.txt", (const char *)NULL), SS_OK)) {
        CHECK_EQ_INT(r.o.verbose, 1);
        if (CHECK_EQ_INT(r.npos, 1))
            CHECK_STR(r.argv[0], "in.txt");
    }
    run_free(&r);

    static const struct {
        const char *arg;
        int want;
    } flags[] = {{"--verbose=true", 1}, {"--verbose=1", 1},     {"--verbose=yes", 1},
                 {"--verbose=on", 1},   {"--verbose=false", 0}, {"--verbose=0", 0},
                 {"--verbose=no", 0},   {"--verbose=off", 0}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (CHECK_EQ_INT(parse_args(&r, flags[i].arg, (const char *)NULL), SS_OK))
            check_report(r.o.verbose == flags[i].want, __FILE__, __LINE__, "%s gave %d",
                         flags[i].arg, r.o.verbose);
        run_free(&r);
    }

    /* Positional arguments keep their order; "-" is one; "--" ends options. */
    if (CHECK_EQ_INT(parse_args(&r, "a", "--count", "3", "-", "b", "--", "--count", "-x",
                                (const char *)NULL),
                     SS_OK) &&
        CHECK_EQ_INT(r.npos, 5)) {
        CHECK_STR(r.argv[0], "a");
        CHECK_STR(r.argv[1], "-");
        CHECK_STR(r.argv[2], "b");
        CHECK_STR(r.argv[3], "--count");
        CHECK_STR(r.argv[4], "-x");
        CHECK_EQ_INT(r.o.count, 3);
    }
    run_free(&r);

    /* Common options. */
    if (CHECK_EQ_INT(parse_args(&r, "--log-level", "debug", "-h", (const char *)NULL), SS_OK)) {
        CHECK_STR(r.c.log_level, "debug");
        CHECK_EQ_INT(r.c.help, 1);
    }
    run_free(&r);
    if (CHECK_EQ_INT(parse_args(&r, "--help", (const char *)NULL), SS_OK))
        CHECK_EQ_INT(r.c.help, 1);
    run_free(&r);
}

static void test_bad_values(void)
{
    EXPECT_ERROR("invalid value '101' for --count: expected a whole number from 0 to 100",
                 "--count", "101");
    EXPECT_ERROR("invalid value '-1' for --count", "--count=-1");
    EXPECT_ERROR("invalid value '1.5' for --count", "--count", "1.5");
    EXPECT_ERROR("invalid value '' for --count", "--count=");
    EXPECT_ERROR("invalid value '5x' for --count", "--count", "5x");
    EXPECT_ERROR("invalid value '1k' for --count", "--count", "1k"); /* suffixes: sizes only */
    EXPECT_ERROR("invalid value '99999999999999999999' for --count", "--count",
                 "99999999999999999999");
    EXPECT_ERROR("invalid value '-6' for --dash-name: expected a whole number from -5 to 5",
                 "--dash-name=-6");
    EXPECT_ERROR("invalid value '1.01' for --ratio: expected a number from 0 to 1", "--ratio",
                 "1.01");
    EXPECT_ERROR("invalid value 'nan' for --ratio", "--ratio", "nan");
    EXPECT_ERROR("invalid value 'inf' for --ratio", "--ratio", "inf");
    EXPECT_ERROR("invalid value 'half' for --ratio", "--ratio", "half");
    EXPECT_ERROR("invalid value '0.5.1' for --ratio", "--ratio", "0.5.1");
    EXPECT_ERROR("invalid value 'maybe' for --verbose: expected true or false", "--verbose=maybe");
    EXPECT_ERROR("invalid value '' for --label: expected a non-empty string", "--label=");
    EXPECT_ERROR("invalid value 'medium' for --mode: expected one of fast|slow", "--mode",
                 "medium");
    EXPECT_ERROR("invalid value 'fas' for --mode", "--mode", "fas");
    EXPECT_ERROR("invalid value 'fast|slow' for --mode", "--mode", "fast|slow");
    EXPECT_ERROR("invalid value 'yesterday' for --when: expected a UTC time", "--when",
                 "yesterday");
    EXPECT_ERROR("invalid value '2026-02-30' for --when", "--when", "2026-02-30");
    EXPECT_ERROR("invalid value '1kk' for --size", "--size", "1kk");
    EXPECT_ERROR("invalid value '1T' for --size", "--size", "1T");
    EXPECT_ERROR("invalid value '-1k' for --size", "--size", "-1k");
    EXPECT_ERROR("invalid value '2000G' for --size: expected a whole number from 0 to "
                 "1000000000000, optionally with k, M or G",
                 "--size", "2000G");
    EXPECT_ERROR("invalid value '9223372036854775807G' for --size", "--size",
                 "9223372036854775807G");
    EXPECT_ERROR("invalid value 'loud' for --log-level: expected one of error|warn|info|debug",
                 "--log-level", "loud");
    EXPECT_ERROR("invalid value 'x' for --help", "--help=x");

    /* A missing value. */
    EXPECT_ERROR("option --count needs a value: a whole number from 0 to 100", "--count");
    EXPECT_ERROR("option --when needs a value", "--verbose", "--when");
}

static void test_unknown_options(void)
{
    EXPECT_ERROR("unknown option '--cuont'; did you mean '--count'?", "--cuont", "3");
    EXPECT_ERROR("unknown option '--verbos'; did you mean '--verbose'?", "--verbos");
    EXPECT_ERROR("unknown option '--lable'; did you mean '--label'?", "--lable=x");
    EXPECT_ERROR("did you mean '--log-level'?", "--log-levl", "info");
    EXPECT_ERROR("did you mean '--config'?", "--confg", "x");
    EXPECT_ERROR("unknown option '--zzzzzzzz'. Run 'shopstream tcmd --help'", "--zzzzzzzz");
    EXPECT_ERROR("unknown option '--other-key'", "--other-key", "1"); /* another command's */
    EXPECT_ERROR("unknown option '--'", "--=1");
    EXPECT_ERROR("unknown option '-c'; options are long", "-c", "3");
    EXPECT_ERROR("unknown option '-verbose'", "-verbose");

    /* Very long names are reported, not matched. */
    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[0] = '-';
    longname[1] = '-';
    longname[sizeof longname - 1] = '\0';
    EXPECT_ERROR("unknown option '--xxxx", longname);
}

static void test_env(void)
{
    char name[64];
    ss_opt_env_name(&topt_table[7], name, sizeof name);
    CHECK_STR(name, "SHOPSTREAM_DASH_NAME");
    ss_opt_env_name(&ss_common_opt_table[1], name, sizeof name);
    CHECK_STR(name, "SHOPSTREAM_LOG_LEVEL");
    ss_opt_env_name(&topt_table[7], name, 8);
    CHECK_STR(name, "SHOPSTR");
    ss_opt_env_name(&topt_table[0], name, 17);
    CHECK_STR(name, "SHOPSTREAM_COUNT");
    ss_opt_env_name(&topt_table[0], name, 16);
    CHECK_STR(name, "SHOPSTREAM_COUN");

    run r;
    setenv("SHOPSTREAM_COUNT", "9", 1);
    setenv("SHOPSTREAM_VERBOSE", "yes", 1);
    setenv("SHOPSTREAM_DASH_NAME", "4", 1);
    setenv("SHOPSTREAM_LOG_LEVEL", "warn", 1);
    if (CHECK_EQ_INT(parse_args(&r, (const char *)NULL), SS_OK)) {
        CHECK_EQ_INT(r.o.count, 9);
        CHECK_EQ_INT(r.o.verbose, 1);
        CHECK_EQ_INT(r.o.dash_name, 4);
        CHECK_STR(r.c.log_level, "warn");
    }
    run_free(&r);
    /* Flags override the environment. */
    if (CHECK_EQ_INT(parse_args(&r, "--count", "10", "--verbose=false", "--log-level=error",
                                (const char *)NULL),
                     SS_OK)) {
        CHECK_EQ_INT(r.o.count, 10);
        CHECK_EQ_INT(r.o.verbose, 0);
        CHECK_STR(r.c.log_level, "error");
    }
    run_free(&r);
    clear_env();

    /* A bad value names the variable, even when a flag would override it. */
    setenv("SHOPSTREAM_RATIO", "lots", 1);
    EXPECT_ERROR("invalid value 'lots' for --ratio (from SHOPSTREAM_RATIO): expected a number",
                 "--ratio", "0.1");
    clear_env();
    setenv("SHOPSTREAM_COUNT", "", 1);
    EXPECT_ERROR("invalid value '' for --count (from SHOPSTREAM_COUNT)", "--verbose");
    clear_env();
    setenv("SHOPSTREAM_LOG_LEVEL", "chatty", 1);
    EXPECT_ERROR("(from SHOPSTREAM_LOG_LEVEL)", "--verbose");
    clear_env();

    /* SHOPSTREAM_HELP is not an option source: help is asked for on the
     * command line only. Another command's variable is ignored too. */
    setenv("SHOPSTREAM_HELP", "garbage", 1);
    setenv("SHOPSTREAM_OTHER_KEY", "garbage", 1);
    if (CHECK_EQ_INT(parse_args(&r, (const char *)NULL), SS_OK))
        CHECK_EQ_INT(r.c.help, 0);
    run_free(&r);
    clear_env();
}

/* Writes text to a new temporary file; returns its path in path. */
static void write_temp(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/test_opt_XXXXXX");
    int fd = mkstemp(path);
    if (!CHECK(fd >= 0))
        return;
    CHECK_EQ_INT(write(fd, text, strlen(text)), (long long)strlen(text));
    close(fd);
}

static void test_config_file(void)
{
    char path[64], flag[80];
    write_temp(path, "# a comment\n"
                     "\n"
                     "count = 3\n"
                     "  ratio=0.25   # trailing comment\n"
                     "label = \"hello world\"\n"
                     "mode = 'slow'\n"
                     "other-key = 99\n"        /* another command's key: skipped, not checked */
                     "config = /nonexistent\n" /* ignored: no nesting */
                     "size = 5k\r\n");
    snprintf(flag, sizeof flag, "--config=%s", path);

    run r;
    /* Config overrides defaults. */
    if (CHECK_EQ_INT(parse_args(&r, flag, (const char *)NULL), SS_OK)) {
        CHECK_EQ_INT(r.o.count, 3);
        CHECK_NEAR(r.o.ratio, 0.25, 0.0);
        CHECK_STR(r.o.label, "hello world");
        CHECK_STR(r.o.mode, "slow");
        CHECK_EQ_INT(r.o.size, 5000);
        CHECK_STR(r.c.config, path);
        CHECK_EQ_INT(r.o.dash_name, 0); /* untouched: default */
    } else {
        fprintf(stderr, "  %s", r.msg);
    }
    run_free(&r);

    /* The environment overrides config; flags override both; and each
     * source only changes the options it names. */
    setenv("SHOPSTREAM_COUNT", "4", 1);
    setenv("SHOPSTREAM_MODE", "fast", 1);
    if (CHECK_EQ_INT(parse_args(&r, "--config", path, (const char *)NULL), SS_OK)) {
        CHECK_EQ_INT(r.o.count, 4);
        CHECK_STR(r.o.mode, "fast");
        CHECK_NEAR(r.o.ratio, 0.25, 0.0);
    }
    run_free(&r);
    if (CHECK_EQ_INT(parse_args(&r, "--count", "5", "--config", path, (const char *)NULL), SS_OK)) {
        CHECK_EQ_INT(r.o.count, 5);
        CHECK_STR(r.o.mode, "fast");
        CHECK_NEAR(r.o.ratio, 0.25, 0.0);
        CHECK_STR(r.o.label, "hello world");
    }
    run_free(&r);
    clear_env();

    /* SHOPSTREAM_CONFIG names the file; --config overrides it. */
    setenv("SHOPSTREAM_CONFIG", path, 1);
    if (CHECK_EQ_INT(parse_args(&r, (const char *)NULL), SS_OK))
        CHECK_EQ_INT(r.o.count, 3);
    run_free(&r);
    char other[64];
    write_temp(other, "count = 8\n");
    if (CHECK_EQ_INT(parse_args(&r, "--config", other, (const char *)NULL), SS_OK))
        CHECK_EQ_INT(r.o.count, 8);
    run_free(&r);
    setenv("SHOPSTREAM_CONFIG", "/nonexistent/shop.conf", 1);
    EXPECT_ERROR("cannot open config file '/nonexistent/shop.conf'", "--verbose");
    clear_env();
    unlink(other);
    unlink(path);
}

/* Checks that r's --prop values are the n strings that follow. */
static void expect_props(int line, const run *r, size_t n, ...)
{
    if (!check_report(r->o.prop.n == n, __FILE__, line, "%zu values, expected %zu", r->o.prop.n, n))
        return;
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        check_report(!strcmp(r->o.prop.items[i], want), __FILE__, line, "value %zu: '%s', not '%s'",
                     i, r->o.prop.items[i], want);
    }
    va_end(ap);
}

static void test_lists_and_shorts(void)
{
    run r;
    if (CHECK_EQ_INT(parse_args(&r, (const char *)NULL), SS_OK))
        expect_props(__LINE__, &r, 0);
    run_free(&r);

    /* Every occurrence adds a value, in order, in each of the four forms. */
    if (CHECK_EQ_INT(parse_args(&r, "-P", "a=1", "-Pb=2", "--prop", "c=3", "--count", "4",
                                "--prop=d=4", "-P", "a=5", (const char *)NULL),
                     SS_OK)) {
        expect_props(__LINE__, &r, 5, "a=1", "b=2", "c=3", "d=4", "a=5");
        CHECK_EQ_INT(r.o.count, 4);
    }
    run_free(&r);

    /* Config lines, then the environment (a value per line), then flags. */
    char path[64], flag[80];
    write_temp(path, "prop = k=config1\nprop = 'k=config 2'\n");
    snprintf(flag, sizeof flag, "--config=%s", path);
    setenv("SHOPSTREAM_PROP", "k=env1\n\nk=env2\n", 1);
    if (CHECK_EQ_INT(parse_args(&r, "-P", "k=flag", flag, (const char *)NULL), SS_OK))
        expect_props(__LINE__, &r, 5, "k=config1", "k=config 2", "k=env1", "k=env2", "k=flag");
    run_free(&r);
    clear_env();
    unlink(path);

    EXPECT_ERROR("option --prop needs a value", "-P");
    EXPECT_ERROR("invalid value '' for --prop: expected a non-empty string", "--prop=");
    EXPECT_ERROR("unknown option '-Q'; options are long, like --seed, except -P for --prop. Run "
                 "'shopstream tcmd --help'",
                 "-Q", "x");
    /* Aliases are per command: the other command has none. */
    EXPECT_ERROR("unknown option '-p'", "-p", "x");
}

static void test_config_errors(void)
{
    char path[64], msg[200];

    write_temp(path, "count = 3\n# fine\nbogus = 1\n");
    snprintf(msg, sizeof msg, "config '%s' line 3: unknown key 'bogus'", path);
    EXPECT_ERROR(msg, "--config", path);
    unlink(path);

    write_temp(path, "\n\ncount = many\n");
    snprintf(msg, sizeof msg, "invalid value 'many' for --count (config '%s' line 3)", path);
    EXPECT_ERROR(msg, "--config", path);
    unlink(path);

    write_temp(path, "count = 3\njust some words\n");
    snprintf(msg, sizeof msg, "config '%s' line 2: expected 'key = value'", path);
    EXPECT_ERROR(msg, "--config", path);
    unlink(path);

    /* A bad value in the config is an error even if a flag overrides it. */
    write_temp(path, "mode = medium\n");
    run r;
    char flag[80];
    snprintf(flag, sizeof flag, "--config=%s", path);
    CHECK_EQ_INT(parse_args(&r, "--mode", "slow", flag, (const char *)NULL), SS_EINVAL);
    CHECK_CONTAINS(r.msg, "invalid value 'medium' for --mode");
    run_free(&r);
    unlink(path);

    /* An empty key, a key with no value. */
    write_temp(path, "= 3\n");
    EXPECT_ERROR("unknown key ''", "--config", path);
    unlink(path);
    write_temp(path, "count =\n");
    EXPECT_ERROR("invalid value '' for --count", "--config", path);
    unlink(path);

    EXPECT_ERROR("cannot open config file '/nonexistent/x.conf'", "--config",
                 "/nonexistent/x.conf");
    EXPECT_ERROR("option --config needs a value", "--config");
    EXPECT_ERROR("cannot open config file ''", "--config=");
}

/* Runs f with stdout captured into out. */
static void capture_stdout(void (*f)(void), char *out, size_t outlen)
{
    fflush(stdout);
    FILE *cap = tmpfile();
    int saved = dup(STDOUT_FILENO);
    out[0] = '\0';
    if (!cap || saved < 0)
        return;
    dup2(fileno(cap), STDOUT_FILENO);
    f();
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    rewind(cap);
    size_t n = fread(out, 1, outlen - 1, cap);
    out[n] = '\0';
    fclose(cap);
}

static void print_help(void)
{
    ss_opt_print_help(&tcmd);
}

static void print_markdown(void)
{
    ss_opt_print_markdown(tcmds, 2);
}

static void test_help(void)
{
    static char out[16384];
    capture_stdout(print_help, out, sizeof out);
    CHECK_CONTAINS(out, "Usage: shopstream tcmd [options] [FILE...]\n");
    CHECK_CONTAINS(out, "A test command\n");
    CHECK_CONTAINS(out, "Exercises every option type.\n");
    CHECK_CONTAINS(out, "  --count N                How many.\n");
    CHECK_CONTAINS(out, "default: 7; env: SHOPSTREAM_COUNT\n");
    CHECK_CONTAINS(out, "  --verbose                Say more.\n");
    CHECK_CONTAINS(out, "default: fast; one of: fast|slow; env: SHOPSTREAM_MODE\n");
    CHECK_CONTAINS(out, "  --dash-name VALUE        Dashes.\n");
    CHECK_CONTAINS(out, "env: SHOPSTREAM_DASH_NAME\n");
    CHECK_CONTAINS(out, "  --config FILE ");
    CHECK_CONTAINS(out, "env: SHOPSTREAM_CONFIG\n");
    CHECK_CONTAINS(out, "  --help ");
    CHECK_CONTAINS(out, "  -P, --prop KEY=VALUE     A property; repeatable.\n");
    /* Help is never read from the environment, so none is offered. */
    CHECK(strstr(out, "SHOPSTREAM_HELP") == NULL);

    capture_stdout(print_markdown, out, sizeof out);
    CHECK_CONTAINS(out, "# Options reference\n");
    CHECK_CONTAINS(out, "## shopstream tcmd\n\n`shopstream tcmd [options] [FILE...]`\n");
    CHECK_CONTAINS(out, "| `--count N` | How many. | 7 | `SHOPSTREAM_COUNT` |\n");
    CHECK_CONTAINS(out, "| `--label TEXT` | A name. |  | `SHOPSTREAM_LABEL` |\n");
    CHECK_CONTAINS(out, "| `-P, --prop KEY=VALUE` | A property; repeatable. |  | "
                        "`SHOPSTREAM_PROP` |\n");
    CHECK_CONTAINS(out, "## shopstream other\n");
    CHECK_CONTAINS(out, "| `--other-key N` | Only for the other command. | 1 | "
                        "`SHOPSTREAM_OTHER_KEY` |\n");
    CHECK(strstr(out, "SHOPSTREAM_HELP") == NULL);
}

int main(void)
{
    clear_env();
    ss_opt_set_commands(tcmds, 2);
    test_defaults();
    test_flag_forms();
    test_flags_and_positionals();
    test_bad_values();
    test_unknown_options();
    test_env();
    test_config_file();
    test_config_errors();
    test_lists_and_shorts();
    test_help();
    return check_done();
}

#define _POSIX_C_SOURCE 200809L
#include "cli/opt.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"

#define COMMON_FIELD(f) offsetof(ss_common_opts, f)

const ss_opt ss_common_opt_table[] = {
    {"config", SS_OPT_STRING, COMMON_FIELD(config), NULL, 0, 0, NULL, "FILE",
     "Read options from FILE: one `key = value` per line, keys as the long flags without "
     "dashes, `#` starts a comment."},
    {"log-level", SS_OPT_CHOICE, COMMON_FIELD(log_level), "info", 0, 0, "error|warn|info|debug",
     "LEVEL", "How much to log to stderr."},
    {"help", SS_OPT_FLAG, COMMON_FIELD(help), NULL, 0, 0, NULL, NULL,
     "Show the options of the command and exit."},
    SS_OPT_END,
};

static const ss_cmd *const *all_cmds;
static size_t all_ncmds;

void ss_opt_set_commands(const ss_cmd *const *cmds, size_t ncmds)
{
    all_cmds = cmds;
    all_ncmds = ncmds;
}

/* Strings copied from config files and environment, and the arrays of list
 * options, stay valid for the process's life; this list lets them be freed
 * at exit. */
static void **owned;
static size_t nowned;

static void *own(void *p)
{
    owned = ss_realloc(owned, (nowned + 1) * sizeof *owned);
    return owned[nowned++] = p;
}

static const char *keep(const char *s, size_t n)
{
    return own(ss_strndup(s, n));
}

/* Adds v to a list option's values; the grown array replaces the old one in
 * the owned list. */
static void list_append(ss_opt_list *l, const char *v)
{
    const char **items = ss_realloc((void *)l->items, (l->n + 1) * sizeof *items);
    size_t i = 0;
    while (i < nowned && owned[i] != (void *)l->items)
        i++;
    if (l->items && i < nowned)
        owned[i] = (void *)items;
    else
        own((void *)items);
    items[l->n++] = v;
    l->items = items;
}

void ss_opt_cleanup(void)
{
    for (size_t i = 0; i < nowned; i++)
        free(owned[i]);
    free(owned);
    owned = NULL;
    nowned = 0;
}

void ss_opt_env_name(const ss_opt *o, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "SHOPSTREAM_");
    for (const char *p = o->name; *p && n + 1 < outlen; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n < outlen ? n : outlen - 1] = '\0';
}

static const char *type_hint(const ss_opt *o, char *tmp, size_t tmplen)
{
    switch (o->type) {
    case SS_OPT_FLAG:
        return "true or false";
    case SS_OPT_INT:
        snprintf(tmp, tmplen, "a whole number from %.0f to %.0f", o->min, o->max);
        return tmp;
    case SS_OPT_SIZE:
        snprintf(tmp, tmplen, "a whole number from %.0f to %.0f, optionally with k, M or G", o->min,
                 o->max);
        return tmp;
    case SS_OPT_DOUBLE:
        snprintf(tmp, tmplen, "a number from %g to %g", o->min, o->max);
        return tmp;
    case SS_OPT_CHOICE:
        snprintf(tmp, tmplen, "one of %s", o->choices);
        return tmp;
    case SS_OPT_TIME:
        return "a UTC time like 2026-11-02T14:03:11.123Z, a date like 2026-11-02, or now";
    case SS_OPT_STRING:
    case SS_OPT_LIST:
        return "a non-empty string";
    }
    return "a value";
}

static int choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; p && *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, v, n) == 0)
            return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

/* Parses text into the option's field; returns 0 or -1. */
static int set_value(const ss_opt *o, void *base, const char *v)
{
    char *field = (char *)base + o->offset;
    char *end;
    switch (o->type) {
    case SS_OPT_FLAG: {
        int b;
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
            b = 1;
        else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off"))
            b = 0;
        else
            return -1;
        memcpy(field, &b, sizeof b);
        return 0;
    }
    case SS_OPT_INT:
    case SS_OPT_SIZE: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (end == v || errno)
            return -1;
        if (o->type == SS_OPT_SIZE && *end) {
            long long mult = *end == 'k' || *end == 'K'   ? 1000LL
                             : *end == 'M' || *end == 'm' ? 1000000LL
                             : *end == 'G' || *end == 'g' ? 1000000000LL
                                                          : 0;
            if (!mult || end[1] || x > INT64_MAX / mult)
                return -1;
            x *= mult;
            end++;
        }
        if (*end || (double)x < o->min || (double)x > o->max)
            return -1;
        int64_t y = x;
        memcpy(field, &y, sizeof y);
        return 0;
    }
    case SS_OPT_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (end == v || *end || errno || !isfinite(x) || x < o->min || x > o->max)
            return -1;
        memcpy(field, &x, sizeof x);
        return 0;
    }
    case SS_OPT_TIME: {
        int64_t ms;
        if (ss_time_parse_user(v, ss_now_ms(), &ms))
            return -1;
        memcpy(field, &ms, sizeof ms);
        return 0;
    }
    case SS_OPT_CHOICE:
        if (!choice_ok(o->choices, v))
            return -1;
        /* fall through */
    case SS_OPT_STRING:
        if (!*v)
            return -1;
        memcpy(field, &v, sizeof v);
        return 0;
    case SS_OPT_LIST:
        if (!*v)
            return -1;
        list_append((ss_opt_list *)(void *)field, v);
        return 0;
    }
    return -1;
}

static const ss_opt *find_opt(const ss_opt *table, const char *name, size_t n)
{
    for (const ss_opt *o = table; o && o->name; o++)
        if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
            return o;
    return NULL;
}

/* The option that a one-letter alias of cmd names, or NULL. */
static const ss_opt *find_short(const ss_cmd *cmd, char letter)
{
    for (const ss_opt_short *sh = cmd->shorts; sh && sh->letter; sh++)
        if (sh->letter == letter)
            return find_opt(cmd->opts, sh->name, strlen(sh->name));
    return NULL;
}

/* The one-letter alias of an option, or 0. */
static char short_of(const ss_opt_short *shorts, const ss_opt *o)
{
    for (const ss_opt_short *sh = shorts; sh && sh->letter; sh++)
        if (!strcmp(sh->name, o->name))
            return sh->letter;
    return 0;
}

static void bad_value(const char *cmd, const ss_opt *o, const char *v, const char *from)
{
    char tmp[160];
    fprintf(stderr, "shopstream %s: invalid value '%s' for --%s%s: expected %s\n", cmd, v, o->name,
            from, type_hint(o, tmp, sizeof tmp));
}

/* Edit distance, to suggest the flag a person probably meant. */
static size_t distance(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b), row[64];
    if (n >= 63 || m >= 63)
        return 99;
    for (size_t j = 0; j <= m; j++)
        row[j] = j;
    for (size_t i = 1; i <= n; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= m; j++) {
            size_t cur = row[j];
            size_t best = prev + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            prev = cur;
        }
    }
    return row[m];
}

static void unknown_flag(const ss_cmd *cmd, const char *arg, size_t n)
{
    const char *best = NULL;
    size_t bd = 3;
    const ss_opt *tables[] = {cmd->opts, ss_common_opt_table};
    for (int t = 0; t < 2; t++)
        for (const ss_opt *o = tables[t]; o && o->name; o++) {
            size_t d = distance(arg, n, o->name);
            if (d < bd) {
                bd = d;
                best = o->name;
            }
        }
    fprintf(stderr, "shopstream %s: unknown option '--%.*s'", cmd->name, (int)n, arg);
    if (best)
        fprintf(stderr, "; did you mean '--%s'?", best);
    else
        fputc('.', stderr);
    fprintf(stderr, " Run 'shopstream %s --help' for its options.\n", cmd->name);
}

static int key_known_anywhere(const char *key, size_t n)
{
    if (find_opt(ss_common_opt_table, key, n))
        return 1;
    for (size_t i = 0; i < all_ncmds; i++)
        if (find_opt(all_cmds[i]->opts, key, n))
            return 1;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int load_config(const ss_cmd *cmd, void *opts, ss_common_opts *common, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr,
                "shopstream %s: cannot open config file '%s': %s; check --config or "
                "SHOPSTREAM_CONFIG\n",
                cmd->name, path, strerror(errno));
        return SS_EINVAL;
    }
    char line[4096];
    int lineno = 0, rc = SS_OK;
    while (rc == SS_OK && fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            fprintf(stderr, "shopstream %s: config '%s' line %d: expected 'key = value'\n",
                    cmd->name, path, lineno);
            rc = SS_EINVAL;
            break;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        size_t vl = strlen(val);
        if (vl >= 2 && (val[0] == '"' || val[0] == '\'') && val[vl - 1] == val[0]) {
            val[vl - 1] = '\0';
            val++;
        }
        const ss_opt *o = find_opt(cmd->opts, key, strlen(key));
        void *base = opts;
        if (!o && (o = find_opt(ss_common_opt_table, key, strlen(key))))
            base = common;
        if (!o) {
            if (!key_known_anywhere(key, strlen(key))) {
                fprintf(stderr,
                        "shopstream %s: config '%s' line %d: unknown key '%s'; keys are the long "
                        "option names, see 'shopstream help --markdown'\n",
                        cmd->name, path, lineno, key);
                rc = SS_EINVAL;
            }
            continue;
        }
        if (!strcmp(o->name, "config"))
            continue;
        const char *v = keep(val, strlen(val));
        if (set_value(o, base, v)) {
            char from[600];
            snprintf(from, sizeof from, " (config '%s' line %d)", path, lineno);
            bad_value(cmd->name, o, v, from);
            rc = SS_EINVAL;
        }
    }
    fclose(f);
    return rc;
}

static int apply_defaults(const ss_cmd *cmd, const ss_opt *table, void *base)
{
    for (const ss_opt *o = table; o && o->name; o++) {
        if (o->def && set_value(o, base, o->def)) {
            fprintf(stderr, "shopstream %s: built-in default '%s' for --%s is invalid\n", cmd->name,
                    o->def, o->name);
            return SS_EINVAL;
        }
    }
    return SS_OK;
}

static int apply_env(const ss_cmd *cmd, const ss_opt *table, void *base)
{
    for (const ss_opt *o = table; o && o->name; o++) {
        char env[128];
        ss_opt_env_name(o, env, sizeof env);
        const char *v = getenv(env);
        if (!v || !strcmp(o->name, "config") || !strcmp(o->name, "help"))
            continue;
        if (o->type == SS_OPT_LIST) {
            /* One value per line; empty lines are skipped. */
            for (const char *p = v; *p;) {
                size_t n = strcspn(p, "\n");
                if (n > 0)
                    list_append((ss_opt_list *)(void *)((char *)base + o->offset), keep(p, n));
                p += n + (p[n] == '\n');
            }
            continue;
        }
        if (set_value(o, base, v)) {
            char from[160];
            snprintf(from, sizeof from, " (from %s)", env);
            bad_value(cmd->name, o, v, from);
            return SS_EINVAL;
        }
    }
    return SS_OK;
}

int ss_opt_parse(const ss_cmd *cmd, void *opts, ss_common_opts *common, int argc, char **argv,
                 int *npos)
{
    memset(opts, 0, cmd->opts_size);
    memset(common, 0, sizeof *common);
    *npos = 0;
    if (apply_defaults(cmd, cmd->opts, opts) || apply_defaults(cmd, ss_common_opt_table, common))
        return SS_EINVAL;

    /* The config file comes first so that environment and flags override it. */
    const char *config = getenv("SHOPSTREAM_CONFIG");
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (!strncmp(argv[i], "--config=", 9))
            config = argv[i] + 9;
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[i + 1];
    }
    if (config) {
        common->config = config;
        if (load_config(cmd, opts, common, config))
            return SS_EINVAL;
    }
    if (apply_env(cmd, cmd->opts, opts) || apply_env(cmd, ss_common_opt_table, common))
        return SS_EINVAL;

    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || !strcmp(a, "-")) {
            argv[(*npos)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (!strcmp(a, "-h")) {
            common->help = 1;
            continue;
        }
        const ss_opt *o;
        void *base = opts;
        const char *v = NULL; /* a value in the same word: --name=V or -XV */
        if (a[1] != '-') {
            o = find_short(cmd, a[1]);
            if (!o || (a[2] && o->type == SS_OPT_FLAG)) {
                fprintf(stderr, "shopstream %s: unknown option '%s'; options are long, like --seed",
                        cmd->name, a);
                for (const ss_opt_short *sh = cmd->shorts; sh && sh->letter; sh++)
                    fprintf(stderr, "%s-%c for --%s", sh == cmd->shorts ? ", except " : ", ",
                            sh->letter, sh->name);
                fprintf(stderr, ". Run 'shopstream %s --help' for its options.\n", cmd->name);
                return SS_EINVAL;
            }
            if (a[2])
                v = a + 2;
        } else {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t n = eq ? (size_t)(eq - name) : strlen(name);
            o = find_opt(cmd->opts, name, n);
            if (!o && (o = find_opt(ss_common_opt_table, name, n)))
                base = common;
            if (!o) {
                unknown_flag(cmd, name, n);
                return SS_EINVAL;
            }
            if (eq)
                v = eq + 1;
        }
        if (!v && o->type == SS_OPT_FLAG) {
            v = "true";
        } else if (!v && i + 1 < argc) {
            v = argv[++i];
        } else if (!v) {
            char tmp[160];
            fprintf(stderr, "shopstream %s: option --%s needs a value: %s\n", cmd->name, o->name,
                    type_hint(o, tmp, sizeof tmp));
            return SS_EINVAL;
        }
        if (set_value(o, base, v)) {
            bad_value(cmd->name, o, v, "");
            return SS_EINVAL;
        }
    }
    return SS_OK;
}

static void usage_line(const ss_cmd *cmd, FILE *f)
{
    fprintf(f, "shopstream %s [options]%s%s", cmd->name, cmd->args ? " " : "",
            cmd->args ? cmd->args : "");
}

static void help_table(const ss_opt *table, const ss_opt_short *shorts, int markdown)
{
    for (const ss_opt *o = table; o && o->name; o++) {
        char flag[96], alias[8] = "", env[128] = "";
        /* apply_env never reads SHOPSTREAM_HELP, so do not offer it. */
        if (strcmp(o->name, "help") != 0)
            ss_opt_env_name(o, env, sizeof env);
        char letter = short_of(shorts, o);
        if (letter)
            snprintf(alias, sizeof alias, "-%c, ", letter);
        if (o->type == SS_OPT_FLAG)
            snprintf(flag, sizeof flag, "%s--%s", alias, o->name);
        else
            snprintf(flag, sizeof flag, "%s--%s %s", alias, o->name,
                     o->metavar ? o->metavar : "VALUE");
        if (markdown) {
            printf("| `%s` | %s | %s | %s%s%s |\n", flag, o->help, o->def ? o->def : "",
                   *env ? "`" : "", env, *env ? "`" : "");
            continue;
        }
        printf("  %-24s %s\n", flag, o->help);
        const char *sep = "                           "; /* under the help text */
        if (o->def) {
            printf("%sdefault: %s", sep, o->def);
            sep = "; ";
        }
        if (o->type == SS_OPT_CHOICE) {
            printf("%sone of: %s", sep, o->choices);
            sep = "; ";
        }
        if (*env) {
            printf("%senv: %s", sep, env);
            sep = "; ";
        }
        if (*sep == ';')
            putchar('\n');
    }
}

void ss_opt_print_help(const ss_cmd *cmd)
{
    printf("Usage: ");
    usage_line(cmd, stdout);
    printf("\n\n%s\n", cmd->summary);
    if (cmd->description)
        printf("\n%s\n", cmd->description);
    printf("\nOptions:\n");
    help_table(cmd->opts, cmd->shorts, 0);
    help_table(ss_common_opt_table, NULL, 0);
}

void ss_opt_print_markdown(const ss_cmd *const *cmds, size_t ncmds)
{
    printf("# Options reference\n\n"
           "Generated by `shopstream help --markdown` from the option tables in `src/cli/`; "
           "do not edit by hand.\n\n"
           "Every option can be given as a flag, as an environment variable, or as a `key = "
           "value` line in a config file named by `--config FILE` or `SHOPSTREAM_CONFIG`. "
           "Flags override the environment, which overrides the config file, which overrides "
           "the default. A bad flag or value exits with code 2 and a message that names it.\n\n"
           "## Options of every command\n\n"
           "| flag | meaning | default | environment |\n|---|---|---|---|\n");
    help_table(ss_common_opt_table, NULL, 1);
    for (size_t i = 0; i < ncmds; i++) {
        printf("\n## shopstream %s\n\n`", cmds[i]->name);
        usage_line(cmds[i], stdout);
        printf("`\n\n%s\n", cmds[i]->summary);
        if (cmds[i]->description)
            printf("\n%s\n", cmds[i]->description);
        if (cmds[i]->opts && cmds[i]->opts->name) {
            printf("\n| flag | meaning | default | environment |\n|---|---|---|---|\n");
            help_table(cmds[i]->opts, cmds[i]->shorts, 1);
        }
    }
}

/* shopstream fit: learns the generator's profile from a sample of past
 * orders, and with --report scores a generated stream against the sample. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/status.h"
#include "gen/fit.h"
#include "gen/profile.h"

typedef struct fit_opts {
    const char *columns;
    const char *out;
    int report;
    int64_t seed;
} fit_opts;

#define F(f) offsetof(fit_opts, f)

static const ss_opt fit_table[] = {
    {"columns", SS_OPT_STRING, F(columns), NULL, 0, 0, NULL, "MAP",
     "Which of the sample's columns (or JSON keys) hold which field, as FIELD=COLUMN pairs "
     "separated by commas: ts=order_date,customer_id=cust,total_price=amount. Fields: ts, "
     "customer_id, amount, total_price, quantity, unit_price, product_id, category, city, "
     "country, payment_method, payment_status, cancelled, customer_segment. Unmapped fields are "
     "found by their own names and common aliases (order_date, date, qty, ...)."},
    {"out", SS_OPT_STRING, F(out), "-", 0, 0, NULL, "PROFILE",
     "Where the learned profile goes: '-' (stdout; the summary then goes to stderr) or a file."},
    {"report", SS_OPT_FLAG, F(report), NULL, 0, 0, NULL, NULL,
     "Generate a stream with the learned profile over the sample's period and print how alike "
     "it is to the sample (KS and TV complements, weekly correlation, their mean)."},
    {"seed", SS_OPT_INT, F(seed), "1", 0, 9007199254740991.0, NULL, "N",
     "Seed of the --report stream (as gen --seed)."},
    SS_OPT_END,
};

static int write_profile(const char *path, const char *json, char *err, size_t errlen)
{
    if (!strcmp(path, "-")) {
        fputs(json, stdout);
        return fflush(stdout) ? SS_EIO : SS_OK;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "cannot write the profile to '%s': %s; check --out", path,
                 strerror(errno));
        return SS_EIO;
    }
    int bad = fputs(json, f) < 0;
    bad |= fclose(f) != 0;
    if (bad) {
        snprintf(err, errlen, "cannot write the profile to '%s': %s", path, strerror(errno));
        return SS_EIO;
    }
    return SS_OK;
}

static int fit_run(const void *vopts, int argc, char **argv)
{
    const fit_opts *o = vopts;
    char err[1024];
    if (argc != 1) {
        fprintf(stderr,
                "shopstream fit: %s; give one SAMPLE file (CSV with a header, or JSON "
                "Lines)\n",
                argc ? "more than one sample" : "no sample");
        return SS_EXIT_USAGE;
    }
    ss_fit_sample *s = NULL;
    ss_fit_result *r = NULL;
    ss_profile *prof = NULL;
    int exit_code = SS_EXIT_OK;
    /* The summary goes wherever the profile does not. */
    FILE *info = strcmp(o->out, "-") ? stdout : stderr;
    if (ss_fit_sample_read(argv[0], o->columns, &s, err, sizeof err) ||
        ss_fit_learn(s, &r, err, sizeof err)) {
        fprintf(stderr, "shopstream fit: %s\n", err);
        exit_code = SS_EXIT_USAGE;
        goto out;
    }
    /* What is written must load: check it as gen --profile would. */
    if (ss_profile_load_text(ss_fit_result_json(r), "learned", &prof, err, sizeof err)) {
        fprintf(stderr, "shopstream fit: the learned profile does not load: %s\n", err);
        exit_code = SS_EXIT_FAIL;
        goto out;
    }
    if (write_profile(o->out, ss_fit_result_json(r), err, sizeof err)) {
        fprintf(stderr, "shopstream fit: %s\n", err);
        exit_code = SS_EXIT_FAIL;
        goto out;
    }
    fprintf(info, "fit: %zu orders from '%s'\n", ss_fit_sample_orders(s), argv[0]);
    ss_fit_result_print(r, info);
    if (o->report) {
        ss_fit_scores sc;
        if (ss_fit_report(s, prof, (uint64_t)o->seed, &sc, err, sizeof err)) {
            fprintf(stderr, "shopstream fit: --report: %s\n", err);
            exit_code = SS_EXIT_FAIL;
            goto out;
        }
        fputc('\n', info);
        ss_fit_scores_print(&sc, info);
    }
out:
    ss_profile_free(prof);
    ss_fit_result_free(r);
    ss_fit_sample_free(s);
    return exit_code;
}

const ss_cmd ss_cmd_fit = {
    .name = "fit",
    .summary = "Learn the generator's profile from a sample of past orders",
    .args = "SAMPLE",
    .description =
        "Reads past orders (CSV with a header, or JSON Lines: plain orders or gen's own events) "
        "and writes a complete profile for gen --profile: arrivals by hour and weekday, trend and "
        "day-to-day dispersion; customers as a BG/NBD repeat-buying process fitted by maximum "
        "likelihood; quantities, lognormal unit prices per category and product popularity; "
        "country, category and payment mixes, failure and cancellation rates. It prints each "
        "parameter as learned (with its standard error where the method gives one) or kept at "
        "its default, with the reason. Bad input exits with status 2 and names the line and "
        "column. See docs/profile.md.",
    .opts = fit_table,
    .opts_size = sizeof(fit_opts),
    .run = fit_run,
};

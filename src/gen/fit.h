/* Learned profiles: `shopstream fit` reads a sample of a shop's past orders
 * and learns the generator's profile from it (docs/profile.md, "Learning a
 * profile from orders").
 *
 * Three steps, each in its own file: fit_read.c reads the sample (CSV with a
 * header, or JSON Lines) into an ss_fit_sample; fit.c learns a complete
 * profile document from it; fit_report.c generates a stream with the learned
 * profile over the sample's period and scores how alike the two are. The
 * numerical methods they share are in fit_math.h.
 *
 * Everything here is a pure function of its inputs: the same sample and seed
 * give the same profile and the same report, byte for byte.
 * @locality any thread; objects are owned by their caller and not shared. */
#ifndef SS_GEN_FIT_H
#define SS_GEN_FIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gen/profile.h"

typedef struct ss_fit_sample ss_fit_sample;

/* Reads the sample at path. columns maps the project's field names to the
 * file's ("ts=order_date,total_price=amount"; NULL for the built-in names and
 * aliases). On bad input returns SS_EINVAL with a message that names the file,
 * the line and the column; *out is NULL then. */
int ss_fit_sample_read(const char *path, const char *columns, ss_fit_sample **out, char *err,
                       size_t errlen);

/* As ss_fit_sample_read, from an open stream that can be rewound; name is
 * used in messages. */
int ss_fit_sample_read_stream(FILE *fp, const char *name, const char *columns, ss_fit_sample **out,
                              char *err, size_t errlen);

void ss_fit_sample_free(ss_fit_sample *s);

/* Number of orders in the sample. */
size_t ss_fit_sample_orders(const ss_fit_sample *s);

typedef struct ss_fit_result ss_fit_result;

/* Learns a profile from the sample. Never fails on a small sample: whatever
 * cannot be fitted keeps its default, with a warning in the result.
 * Returns SS_OK, or SS_EINVAL with a message when the sample has no orders. */
int ss_fit_learn(const ss_fit_sample *s, ss_fit_result **out, char *err, size_t errlen);

void ss_fit_result_free(ss_fit_result *r);

/* The learned profile: a complete JSON document that `gen --profile` accepts.
 * Owned by the result. */
const char *ss_fit_result_json(const ss_fit_result *r);

/* Writes the table of parameters (learned with their values and standard
 * errors, or kept with the reason) and the warnings. */
void ss_fit_result_print(const ss_fit_result *r, FILE *f);

/* Scores of the fidelity report, each in [0, 1] (1 = alike); NAN where the
 * sample has no data for it. */
enum {
    SS_FIT_KS_AMOUNT,
    SS_FIT_KS_QUANTITY,
    SS_FIT_KS_GAP,
    SS_FIT_TV_WEEKDAY,
    SS_FIT_TV_HOUR,
    SS_FIT_TV_CATEGORY,
    SS_FIT_TV_COUNTRY,
    SS_FIT_TV_METHOD,
    SS_FIT_TV_SEGMENT,
    SS_FIT_TV_ORDERS_PER_CUSTOMER,
    SS_FIT_CORR_WEEKLY,
    SS_FIT_NSCORES
};

typedef struct ss_fit_scores {
    double score[SS_FIT_NSCORES];
    double overall; /* the mean of the scores that exist */
    uint64_t sample_orders, generated_orders;
} ss_fit_scores;

/* Generates a stream with the profile (seed as `gen --seed`) over the
 * sample's period and compares it with the sample. */
int ss_fit_report(const ss_fit_sample *s, const ss_profile *prof, uint64_t seed, ss_fit_scores *out,
                  char *err, size_t errlen);

/* Writes the fidelity table. */
void ss_fit_scores_print(const ss_fit_scores *sc, FILE *f);

#endif

/* Internals shared by fit_read.c, fit.c and fit_report.c: the sample as
 * columns of integers, with every text value interned into a name table. */
#ifndef SS_GEN_FIT_INT_H
#define SS_GEN_FIT_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "gen/fit.h"

#define FIT_NONE UINT32_MAX

/* Distinct strings, each given the next index on first sight. */
typedef struct fit_names {
    char **v;
    uint32_t n, cap;
    uint32_t *slots; /* open addressing: index + 1, 0 = empty */
    uint32_t nslots;
} fit_names;

uint32_t fit_names_intern(fit_names *t, const char *s, size_t len);
/* The index of s, or FIT_NONE. */
uint32_t fit_names_find(const fit_names *t, const char *s, size_t len);
void fit_names_free(fit_names *t);

/* The text fields of an order, each with its own name table. */
enum {
    FIT_CUSTOMER,
    FIT_CATEGORY,
    FIT_COUNTRY,
    FIT_METHOD,
    FIT_SEGMENT,
    FIT_PRODUCT,
    FIT_CITY,
    FIT_NTEXT
};

typedef struct fit_order {
    int64_t ts;         /* ms since the epoch, UTC */
    int64_t amount;     /* cents; -1 when the sample has none */
    int64_t unit_price; /* cents; -1 when none */
    int32_t qty;        /* 0 when none */
    int8_t paid;        /* 1 paid, 0 payment failed, -1 unknown */
    int8_t cancelled;   /* 1 cancelled after payment, 0 not, -1 unknown */
    uint32_t text[FIT_NTEXT];
} fit_order;

/* Per payment method (the FIT_METHOD table): attempts and failures, from a
 * sample of generator events, whose payment lines give every attempt. */
typedef struct fit_attempts {
    uint64_t *tries, *failed;
    uint32_t n;
} fit_attempts;

struct ss_fit_sample {
    char *name; /* file name for messages */
    fit_order *o;
    size_t n, cap;
    fit_names names[FIT_NTEXT];
    int has[FIT_NTEXT];
    int has_amount, has_qty, has_unit_price, has_status, has_cancel;
    int amount_is_total; /* the amounts are total prices (no amount column) */
    int has_time;        /* some timestamp has a time of day (not dates alone) */
    int events;          /* read from generator events (order, payment, cancellation) */
    fit_attempts att;
    int64_t first_ts, last_ts;
};

fit_order *fit_sample_add(ss_fit_sample *s);
void fit_attempt_add(ss_fit_sample *s, uint32_t method, int failed);

/* The sample's period: from local midnight of its first day to the end of
 * its last day when it has dates alone, else to its last order (ms). */
void fit_period(const ss_fit_sample *s, int64_t *start, int64_t *end);

/* ---- learning (fit.c and the fit_*.c files of each part of the model) ---- */

/* Fewer data than these keep a parameter's default, with a warning. */
#define FIT_MIN_DAYS        14
#define FIT_MIN_ORDERS      50
#define FIT_MIN_CUSTOMERS   50
#define FIT_MIN_REPEATERS   20
#define FIT_MIN_PER_VALUE   30
#define FIT_MIN_PRICES      5
#define FIT_MIN_COUNTRY_MIX 100

/* The learning's state: the sample, the document being written (the
 * effective default profile, changed in place) and the result that collects
 * what was learned. */
typedef struct fit_lctx {
    const ss_fit_sample *s;
    ss_fit_result *r;
    json_t *root;
    int64_t start, end;
    int ndays;        /* whole days of the period (at least 1) */
    uint8_t *first;   /* per order: whether it is its customer's first */
    double weekly[7]; /* the weekly curve, mean 1 */
    int bgnbd;        /* customers follow BG/NBD: arrivals are first orders */
} fit_lctx;

/* Records a learned parameter (value and se NAN when not given) or a kept
 * one with the reason, and warnings for the person running fit. */
void fit_learned(fit_lctx *c, const char *path, double value, double se, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void fit_kept(fit_lctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fit_warn(fit_lctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* x rounded to six significant digits, as a JSON number. */
double fit_sig(double x);
json_t *fit_real(double x);
/* root[a] or root[a][b]. */
json_t *fit_obj(json_t *root, const char *a, const char *b);
/* A histogram as an array of shares. */
json_t *fit_weight_array(const double *v, size_t n);

void fit_learn_quantity(fit_lctx *c);
void fit_learn_prices(fit_lctx *c);
void fit_learn_products(fit_lctx *c);
void fit_learn_places(fit_lctx *c);
void fit_learn_cancellations(fit_lctx *c);

#endif

/* The generator's profile: every parameter of the shop model, loaded from the
 * JSON defaults built into the binary and an optional override document.
 *
 * An ss_profile is built once, read-only afterwards, and owns all its strings.
 * Docs: docs/profile.md. */
#ifndef SS_GEN_PROFILE_H
#define SS_GEN_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/rng.h"

typedef struct ss_prof_city {
    char *name;
    double lat, lon, population;
    uint32_t country;
} ss_prof_city;

typedef struct ss_prof_country {
    char *code, *name;
    uint32_t region;
    double weight, vat;
    int64_t shipping;    /* cents */
    uint32_t first_city; /* cities [first_city, first_city + ncities) */
    uint32_t ncities;
    double *payment_mix; /* weight per payment method, nmethods entries */
    ss_alias city_alias; /* by population */
    ss_alias method_alias;
} ss_prof_country;

typedef struct ss_prof_region {
    char *name;
    double *category_pref; /* multiplier per category, ncategories entries */
    double *payment_mix;   /* NULL when the region has none */
} ss_prof_region;

typedef struct ss_prof_category {
    char *name;
    double weight, price_median, price_sigma;
    double trend_amplitude, trend_period_days, trend_phase;
    char **nouns;
    uint32_t nnouns;
    uint32_t first_product, nproducts;
    ss_alias zipf; /* product rank within the category */
} ss_prof_category;

typedef struct ss_prof_product {
    char id[16];
    char *name;
    uint32_t category;
    int64_t price; /* cents, fixed for the product's life */
} ss_prof_product;

typedef struct ss_prof_method {
    char *name;
    double failure_rate;
} ss_prof_method;

/* BG/NBD's mixing distributions: purchase rate ~ Gamma(r, alpha_days) per
 * day, dropout after an order ~ Beta(a, b). */
typedef struct ss_prof_bgnbd {
    double r, alpha_days, a, b;
} ss_prof_bgnbd;

typedef struct ss_prof_segment {
    char *name;
    double share, repeat_weight;
    int extra_discount_percent;
    ss_prof_bgnbd bg; /* under bgnbd: the segment's own, else the shop's */
} ss_prof_segment;

/* A name with a weight: failure reasons, cancellation reasons. */
typedef struct ss_prof_choice {
    char **names;
    double *weights;
    uint32_t n;
    ss_alias alias;
} ss_prof_choice;

typedef struct ss_profile {
    char currency[4];
    int64_t free_shipping_threshold; /* cents */
    int64_t utc_offset_ms;

    uint64_t catalog_seed;
    double zipf_exponent;
    char **brands;
    uint32_t nbrands;

    ss_prof_category *categories;
    uint32_t ncategories;
    ss_prof_product *products;
    uint32_t nproducts;
    ss_prof_region *regions;
    uint32_t nregions;
    ss_prof_country *countries;
    uint32_t ncountries;
    ss_prof_city *cities;
    uint32_t ncities;
    ss_alias country_alias;

    double rate;            /* mean orders per second over a whole week */
    double daily_curve[24]; /* normalised to mean 1 */
    double weekly_curve[7]; /* normalised to mean 1, Monday first */
    double daily_max, weekly_max;
    double day_dispersion; /* coefficient of variation of a day's volume */
    double trend_per_day;  /* log growth of the arrival rate per day since the start */
    double active_days;    /* arrivals stop this many days after the start; 0 = never */

    double repeat_share;
    double repeat_warmup; /* customers before repeat orders reach repeat_share */
    uint64_t max_pool;
    /* bgnbd: arrivals are first orders; each customer then buys again as a
     * BG/NBD process (rate ~ Gamma(r, alpha), dropout ~ Beta(a, b)). */
    int bgnbd;
    ss_prof_bgnbd bg;
    ss_prof_segment *segments;
    uint32_t nsegments;
    ss_alias segment_alias;

    double *quantity_weights;
    uint32_t nquantities;
    ss_alias quantity_alias;

    int64_t discount_period_ms;
    int *discount_steps; /* percent */
    double *discount_step_cum;
    uint32_t ndiscount_steps;

    ss_prof_method *methods;
    uint32_t nmethods;
    ss_prof_choice failure_reasons;
    double first_delay_min_s, first_delay_mean_s;
    double retry_share;
    int max_attempts;
    double retry_delay_min_s, retry_delay_mean_s;
    double unpaid_cancel_min_min, unpaid_cancel_max_min;

    double cancel_rate;
    double cancel_median_min, cancel_sigma, cancel_min_min, cancel_max_h;
    ss_prof_choice cancel_reasons;
} ss_profile;

/* The default profile document built into the binary (NUL-terminated JSON). */
const char *ss_profile_default_json(void);

/* Loads the defaults, merges the override document at path (objects merge key
 * by key, arrays replace; NULL for none), validates everything and builds the
 * catalogue. On failure returns SS_EINVAL and writes a message naming the file,
 * the field and the fix into err. */
int ss_profile_load(const char *path, ss_profile **out, char *err, size_t errlen);

/* As ss_profile_load, from an override held in memory (name is used in messages). */
int ss_profile_load_text(const char *text, const char *name, ss_profile **out, char *err,
                         size_t errlen);

/* Writes the effective profile as JSON (defaults merged with the override). */
int ss_profile_dump(const char *path, char **json_out, char *err, size_t errlen);

void ss_profile_free(ss_profile *p);

/* Index of a name in the profile's lists, or -1. */
int ss_profile_method_index(const ss_profile *p, const char *name);
int ss_profile_category_index(const ss_profile *p, const char *name);

#endif

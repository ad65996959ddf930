/* Learning the generator's profile from a sample of orders: each part of the
 * model is estimated from what the sample has, or kept at its default with
 * the reason. The document is the effective default profile with the learned
 * values written over it, so it is complete and `gen --profile` accepts it. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "gen/fit_int.h"
#include "gen/fit_math.h"

typedef struct fit_param {
    char path[96];
    int learned;
    double value, se; /* NAN when not given */
    char note[384];
} fit_param;

struct ss_fit_result {
    char *json;
    fit_param *p;
    size_t np, cap;
    char **warn;
    size_t nwarn;
};

static fit_param *param(ss_fit_result *r, const char *path)
{
    if (r->np == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->p = ss_realloc(r->p, r->cap * sizeof *r->p);
    }
    fit_param *p = &r->p[r->np++];
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    p->value = p->se = NAN;
    return p;
}

void fit_learned(fit_lctx *c, const char *path, double value, double se, const char *fmt, ...)
{
    fit_param *p = param(c->r, path);
    p->learned = 1;
    p->value = value;
    p->se = se;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->note, sizeof p->note, fmt, ap);
    va_end(ap);
}

void fit_kept(fit_lctx *c, const char *path, const char *fmt, ...)
{
    fit_param *p = param(c->r, path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->note, sizeof p->note, fmt, ap);
    va_end(ap);
}

void fit_warn(fit_lctx *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    c->r->warn = ss_realloc(c->r->warn, (c->r->nwarn + 1) * sizeof *c->r->warn);
    c->r->warn[c->r->nwarn++] = ss_strdup(buf);
}

/* Six significant digits: enough for any fitted value, short in the file. */
double fit_sig(double x)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.6g", x);
    return strtod(buf, NULL);
}

json_t *fit_real(double x)
{
    return json_real(fit_sig(x));
}

json_t *fit_obj(json_t *root, const char *a, const char *b)
{
    json_t *o = json_object_get(root, a);
    return b ? json_object_get(o, b) : o;
}

/* Weights of a histogram, rounded; the largest is never rounded to 0. */
json_t *fit_weight_array(const double *v, size_t n)
{
    double tot = 0;
    for (size_t i = 0; i < n; i++)
        tot += v[i];
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, fit_real(tot > 0 ? v[i] / tot : 0));
    return a;
}

static int64_t day_of(const fit_lctx *c, int64_t ts)
{
    return (ss_time_floor(ts, SS_MS_PER_DAY) - c->start) / SS_MS_PER_DAY;
}

/* ---- arrivals ---- */

/* The profile's range of arrivals.rate: a sample of a few orders over years
 * would fall below it. */
static double rate_in_range(fit_lctx *c, double rate)
{
    if (rate >= 1e-6 && rate <= 1e7)
        return rate;
    fit_warn(c, "the learned rate %g per second is outside the profile's range; %g is used", rate,
             rate < 1e-6 ? 1e-6 : 1e7);
    return rate < 1e-6 ? 1e-6 : 1e7;
}

static void learn_arrivals(fit_lctx *c)
{
    const ss_fit_sample *s = c->s;
    json_t *arr = fit_obj(c->root, "arrivals", NULL);
    json_t *wk = json_object_get(arr, "weekly_curve");
    for (int i = 0; i < 7; i++)
        c->weekly[i] = json_number_value(json_array_get(wk, (size_t)i));

    if (s->has_time && s->n >= 24 * FIT_MIN_PER_VALUE / 10) {
        double bins[24] = {0}, pts[24];
        for (size_t i = 0; i < s->n; i++)
            bins[(ss_time_floor(s->o[i].ts, SS_MS_PER_HOUR) / SS_MS_PER_HOUR) % 24] += 1;
        ss_fit_daily_points(bins, pts);
        json_t *a = json_array();
        for (int h = 0; h < 24; h++)
            json_array_append_new(a, fit_real(pts[h]));
        json_object_set_new(arr, "daily_curve", a);
        int best = 0;
        for (int h = 1; h < 24; h++)
            if (pts[h] > pts[best])
                best = h;
        fit_learned(c, "arrivals.daily_curve", NAN, NAN, "busiest hour %02d:00 (%.2f x the mean)",
                    best, pts[best]);
    } else {
        fit_kept(c, "arrivals.daily_curve",
                 s->has_time ? "too few orders for 24 hours" : "the sample has dates alone");
    }

    if (c->ndays >= FIT_MIN_DAYS && s->n >= FIT_MIN_ORDERS) {
        double cnt[7] = {0}, days[7] = {0};
        for (int d = 0; d < c->ndays; d++)
            days[ss_time_weekday(c->start + d * SS_MS_PER_DAY)] += 1;
        for (size_t i = 0; i < s->n; i++)
            if (day_of(c, s->o[i].ts) < c->ndays)
                cnt[ss_time_weekday(s->o[i].ts)] += 1;
        double mean = 0;
        for (int i = 0; i < 7; i++) {
            cnt[i] = days[i] > 0 ? cnt[i] / days[i] : 0;
            mean += cnt[i] / 7;
        }
        if (mean > 0) {
            json_t *a = json_array();
            for (int i = 0; i < 7; i++) {
                c->weekly[i] = cnt[i] / mean > 0.01 ? cnt[i] / mean : 0.01;
                json_array_append_new(a, fit_real(c->weekly[i]));
            }
            json_object_set_new(arr, "weekly_curve", a);
            fit_learned(c, "arrivals.weekly_curve", NAN, NAN, "Monday %.3f ... Sunday %.3f",
                        c->weekly[0], c->weekly[6]);
        }
    } else {
        fit_kept(c, "arrivals.weekly_curve", "fewer than %d days or %d orders", FIT_MIN_DAYS,
                 FIT_MIN_ORDERS);
        fit_warn(c,
                 "the sample spans %d day(s) and %zu order(s): the weekly curve keeps its default",
                 c->ndays, s->n);
    }
    double wmean = 0;
    for (int i = 0; i < 7; i++)
        wmean += c->weekly[i] / 7;
    for (int i = 0; i < 7; i++)
        c->weekly[i] /= wmean;

    /* The arrival process: first orders when customers are modelled one by
     * one (their repeat orders come from the BG/NBD process), else all. */
    double *counts = ss_calloc((size_t)c->ndays, sizeof *counts);
    double *w = ss_calloc((size_t)c->ndays, sizeof *w);
    int last = -1;
    size_t total = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (c->bgnbd && !c->first[i])
            continue;
        int64_t d = day_of(c, s->o[i].ts);
        if (d < 0 || d >= c->ndays)
            continue;
        counts[d] += 1;
        total++;
        if (d > last)
            last = (int)d;
    }
    int active = c->ndays;
    if (c->bgnbd && c->ndays >= 2 * FIT_MIN_DAYS && last >= 0 && last + 1 < c->ndays * 6 / 10) {
        /* A cohort: no customer's first order in the last part of the
         * period. New customers stop arriving after the last one. */
        active = last + 1;
        json_object_set_new(arr, "active_days", json_integer(active));
        fit_learned(c, "arrivals.active_days", active, NAN,
                    "no new customer after day %d of %d: the sample is a cohort", active, c->ndays);
    } else {
        fit_kept(c, "arrivals.active_days", "new customers arrive until the sample's end");
    }
    for (int d = 0; d < active; d++)
        w[d] = c->weekly[ss_time_weekday(c->start + d * SS_MS_PER_DAY)];
    const char *what = c->bgnbd ? "new customers" : "orders";
    double level, g, se_g, cv;
    if (active >= FIT_MIN_DAYS && total >= FIT_MIN_ORDERS &&
        !ss_fit_poisson_trend(counts, w, active, &level, &g, &se_g, &cv)) {
        json_object_set_new(arr, "rate", fit_real(rate_in_range(c, level / 86400.0)));
        fit_learned(c, "arrivals.rate", level / 86400.0, NAN,
                    "%s per second at the start (%.1f a day)", what, level);
        g = g < -1 ? -1 : g > 1 ? 1 : g;
        json_object_set_new(arr, "trend_per_day", fit_real(g));
        fit_learned(c, "arrivals.trend_per_day", g, se_g, "%+.2f%% %s a day", 100 * (exp(g) - 1),
                    what);
        json_object_set_new(arr, "day_dispersion", fit_real(cv > 2 ? 2 : cv));
        fit_learned(c, "arrivals.day_dispersion", cv > 2 ? 2 : cv, NAN,
                    "coefficient of variation of a day's %s beyond Poisson", what);
    } else {
        double secs = (double)(c->end - c->start) / 1000.0;
        if (total > 0 && secs > 0) {
            json_object_set_new(arr, "rate", fit_real(rate_in_range(c, (double)total / secs)));
            fit_learned(c, "arrivals.rate", (double)total / secs, NAN, "%s per second, mean", what);
        }
        fit_kept(c, "arrivals.trend_per_day", "fewer than %d days or %d %s", FIT_MIN_DAYS,
                 FIT_MIN_ORDERS, what);
        fit_kept(c, "arrivals.day_dispersion", "fewer than %d days or %d %s", FIT_MIN_DAYS,
                 FIT_MIN_ORDERS, what);
        fit_warn(c, "too short or small a sample for the trend and day-to-day dispersion: defaults "
                    "kept");
    }
    free(counts);
    free(w);
}

/* ---- customers ---- */

typedef struct cust {
    int64_t first, last;
    uint32_t n, first_order;
} cust;

/* Estimates outside the profile's ranges are a failed fit. */
static int bgnbd_in_range(const ss_fit_bgnbd *bg)
{
    return bg->r >= 1e-4 && bg->r <= 1e4 && bg->alpha >= 1e-4 && bg->alpha <= 1e7 &&
           bg->a >= 1e-4 && bg->a <= 1e4 && bg->b >= 1e-4 && bg->b <= 1e4;
}

/* Writes BG/NBD's parameters into the profile's object o at path, and
 * reports them. */
static void put_bgnbd(fit_lctx *c, json_t *o, const char *path, const ss_fit_bgnbd *bg)
{
    char p[128];
    json_object_set_new(o, "r", fit_real(bg->r));
    json_object_set_new(o, "alpha_days", fit_real(bg->alpha));
    json_object_set_new(o, "a", fit_real(bg->a));
    json_object_set_new(o, "b", fit_real(bg->b));
    snprintf(p, sizeof p, "%s.r", path);
    fit_learned(c, p, bg->r, bg->se_r, "shape of the purchase rates (gamma)");
    snprintf(p, sizeof p, "%s.alpha_days", path);
    fit_learned(c, p, bg->alpha, bg->se_alpha, "scale: mean rate r/alpha = %.4g orders a day",
                bg->r / bg->alpha);
    snprintf(p, sizeof p, "%s.a", path);
    fit_learned(c, p, bg->a, bg->se_a, "dropout after an order ~ Beta(a, b)");
    snprintf(p, sizeof p, "%s.b", path);
    fit_learned(c, p, bg->b, bg->se_b, "mean dropout a/(a+b) = %.3f", bg->a / (bg->a + bg->b));
}

/* A segment of the profile: the default of that name where there is one,
 * else a plain one. */
static json_t *segment_entry(json_t *def, const char *name)
{
    for (size_t j = 0; j < json_array_size(def); j++) {
        json_t *e = json_array_get(def, j);
        if (!strcmp(json_string_value(json_object_get(e, "name")), name))
            return json_deep_copy(e);
    }
    return json_pack("{s:s, s:f, s:f, s:i}", "name", name, "share", 0.0, "repeat_weight", 1.0,
                     "extra_discount_percent", 0);
}

/* A class whose estimate lies at the edge of the profile's ranges is a point
 * mass BG/NBD cannot hold (such as customers who never return), not a
 * segment. */
static int bgnbd_interior(const ss_fit_bgnbd *bg)
{
    const double v[4] = {bg->r, bg->alpha, bg->a, bg->b}, lo[4] = {1e-4, 1e-4, 1e-4, 1e-4},
                 hi[4] = {1e4, 1e7, 1e4, 1e4};
    for (int i = 0; i < 4; i++)
        if (!(v[i] > lo[i] * 1.01 && v[i] < hi[i] / 1.01))
            return 0;
    return 1;
}

/* Segments that the sample names: their shares of new customers, and, under
 * BG/NBD, each segment's own parameters when the segments' behaviour differs
 * by the Bayesian information criterion (one fit per segment of enough
 * customers against the shop's one fit for all). */
static void learn_named_segments(fit_lctx *c, json_t *cu, const ss_fit_rfm *rfm,
                                 const uint32_t *seg, uint32_t nc, double named,
                                 const ss_fit_bgnbd *all)
{
    const fit_names *t = &c->s->names[FIT_SEGMENT];
    uint32_t ns = t->n < 64 ? t->n : 64;
    double *share = ss_calloc(ns, sizeof *share);
    for (uint32_t i = 0; i < nc; i++)
        if (seg[i] != FIT_NONE)
            share[seg[i]] += 1;
    ss_fit_bgnbd *own = ss_calloc(ns, sizeof *own);
    int *has = ss_calloc(ns, sizeof *has);
    ss_fit_rfm *sub = ss_calloc(nc, sizeof *sub);
    double ll_own = 0, ll_all = all ? all->ll : 0;
    uint32_t nown = 0, eligible = 0;
    for (uint32_t j = 0; all && j < ns; j++) {
        size_t m = 0, rep = 0;
        for (uint32_t i = 0; i < nc; i++)
            if (seg[i] == j) {
                sub[m++] = rfm[i];
                rep += rfm[i].x > 0;
            }
        if (m < FIT_MIN_CUSTOMERS || rep < FIT_MIN_REPEATERS)
            continue;
        /* One class, within the profile's ranges, from the shop's estimate. */
        ss_fit_bgnbd_mix one;
        eligible++;
        if (!ss_fit_bgnbd_classes(sub, m, 1, all, &one) && bgnbd_interior(&one.cls[0])) {
            own[j] = one.cls[0];
            own[j].ll = one.ll;
            has[j] = 1;
            nown++;
            ll_own += one.ll;
        }
    }
    if (all && nown > 0) {
        /* Customers of the other segments, and those of none, keep the
         * shop's parameters. */
        size_t m = 0;
        for (uint32_t i = 0; i < nc; i++)
            if (seg[i] == FIT_NONE || !has[seg[i]])
                sub[m++] = rfm[i];
        ll_own += ss_fit_bgnbd_ll(sub, m, all->r, all->alpha, all->a, all->b);
    }
    double ln = log((double)nc);
    double bic_all = -2 * ll_all + 4 * ln, bic_own = -2 * ll_own + 4.0 * (nown + 1) * ln;
    int apart = all && nown > 0 && bic_own < bic_all;

    json_t *def = json_object_get(cu, "segments"), *segs = json_array();
    for (uint32_t i = 0; i < ns; i++) {
        json_t *e = segment_entry(def, t->v[i]);
        json_object_set_new(e, "share", fit_real(share[i] / named));
        char path[96];
        snprintf(path, sizeof path, "customers.segments[%u].share", i);
        double f = share[i] / named;
        fit_learned(c, path, f, sqrt(f * (1 - f) / named), "segment %s", t->v[i]);
        if (apart && has[i]) {
            json_t *b = json_object();
            snprintf(path, sizeof path, "customers.segments[%u].bgnbd", i);
            put_bgnbd(c, b, path, &own[i]);
            json_object_set_new(e, "bgnbd", b);
        }
        json_array_append_new(segs, e);
    }
    json_object_set_new(cu, "segments", segs);
    if (apart)
        fit_learned(c, "customers.segments[].bgnbd", NAN, NAN,
                    "%u segments buy apart: BIC %.1f with their own parameters, %.1f with the "
                    "shop's",
                    nown, bic_own, bic_all);
    else if (all && nown)
        fit_kept(c, "customers.segments[].bgnbd",
                 "the segments buy alike: BIC %.1f with their own parameters, %.1f with the "
                 "shop's",
                 bic_own, bic_all);
    else if (all && eligible)
        fit_kept(c, "customers.segments[].bgnbd",
                 "no segment's own fit stays inside the ranges a profile takes (%u segments of "
                 "%d customers and %d repeat buyers or more)",
                 eligible, FIT_MIN_CUSTOMERS, FIT_MIN_REPEATERS);
    else if (all)
        fit_kept(c, "customers.segments[].bgnbd",
                 "no segment has %d customers and %d repeat buyers", FIT_MIN_CUSTOMERS,
                 FIT_MIN_REPEATERS);
    free(sub);
    free(has);
    free(own);
    free(share);
}

/* Segments that the sample does not name, found in its customers'
 * behaviour: a latent-class BG/NBD of 2 or 3 classes, kept when it lowers the
 * Bayesian information criterion below the one-class fit's, each class holds
 * at least 5 % of the customers, and no class runs to the edge of the
 * ranges. Returns 0 when it made segments; otherwise why into why. */
static int learn_latent_segments(fit_lctx *c, json_t *cu, const ss_fit_rfm *rfm, uint32_t nc,
                                 const ss_fit_bgnbd *one, char *why, size_t whylen)
{
    static const char *const names[SS_FIT_MAX_CLASSES][SS_FIT_MAX_CLASSES] = {
        {"all"}, {"frequent", "occasional"}, {"frequent", "regular", "occasional"}};
    double bic1 = -2 * one->ll + 4 * log((double)nc), best_bic = bic1;
    ss_fit_bgnbd_mix mix[SS_FIT_MAX_CLASSES + 1], *best = NULL;
    size_t w = (size_t)snprintf(why, whylen, "BIC 1 class %.1f", bic1);
    for (uint32_t k = 2; k <= SS_FIT_MAX_CLASSES; k++) {
        const char *no = NULL;
        if (nc < (size_t)k * FIT_MIN_CUSTOMERS)
            no = "too few customers";
        else if (ss_fit_bgnbd_classes(rfm, nc, k, one, &mix[k]))
            no = "no fit";
        for (uint32_t j = 0; !no && j < k; j++) {
            if (mix[k].share[j] < 0.05)
                no = "a class under 5 %";
            else if (!bgnbd_interior(&mix[k].cls[j]))
                no = "a class at the edge of the ranges";
        }
        if (w < whylen)
            w += (size_t)(no && !strcmp(no, "too few customers")
                              ? snprintf(why + w, whylen - w, "; %u classes: %s", k, no)
                              : snprintf(why + w, whylen - w, "; %u classes %.1f%s%s", k,
                                         mix[k].bic, no ? ", " : "", no ? no : ""));
        if (!no && mix[k].bic < best_bic) {
            best_bic = mix[k].bic;
            best = &mix[k];
        }
    }
    if (!best)
        return -1;
    json_t *segs = json_array();
    for (uint32_t j = 0; j < best->k; j++) {
        const char *name = names[best->k - 1][j];
        json_t *e = json_pack("{s:s, s:f, s:f, s:i}", "name", name, "share", 0.0, "repeat_weight",
                              1.0, "extra_discount_percent", 0);
        json_object_set_new(e, "share", fit_real(best->share[j]));
        char path[96];
        snprintf(path, sizeof path, "customers.segments[%u].share", j);
        fit_learned(c, path, best->share[j], best->se_share[j], "segment %s (a latent class)",
                    name);
        json_t *b = json_object();
        snprintf(path, sizeof path, "customers.segments[%u].bgnbd", j);
        put_bgnbd(c, b, path, &best->cls[j]);
        json_object_set_new(e, "bgnbd", b);
        json_array_append_new(segs, e);
    }
    json_object_set_new(cu, "segments", segs);
    fit_learned(c, "customers.segments", NAN, NAN, "%u latent classes by behaviour: %s", best->k,
                why);
    return 0;
}

static void learn_customers(fit_lctx *c)
{
    const ss_fit_sample *s = c->s;
    json_t *cu = fit_obj(c->root, "customers", NULL);
    c->first = ss_calloc(s->n ? s->n : 1, 1);
    if (!s->has[FIT_CUSTOMER]) {
        for (size_t i = 0; i < s->n; i++)
            c->first[i] = 1;
        fit_kept(c, "customers.model", "the sample has no customer_id");
        fit_kept(c, "customers.repeat_share", "the sample has no customer_id");
        return;
    }
    uint32_t nc = s->names[FIT_CUSTOMER].n;
    cust *k = ss_calloc(nc ? nc : 1, sizeof *k);
    for (size_t i = 0; i < s->n; i++) {
        uint32_t id = s->o[i].text[FIT_CUSTOMER];
        if (id == FIT_NONE)
            continue;
        cust *x = &k[id];
        if (!x->n || s->o[i].ts < x->first) {
            x->first = s->o[i].ts;
            x->first_order = (uint32_t)i;
        }
        if (!x->n || s->o[i].ts > x->last)
            x->last = s->o[i].ts;
        x->n++;
    }
    size_t repeaters = 0;
    for (uint32_t i = 0; i < nc; i++) {
        c->first[k[i].first_order] = 1;
        repeaters += k[i].n > 1;
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->o[i].text[FIT_CUSTOMER] == FIT_NONE)
            c->first[i] = 1;

    ss_fit_bgnbd bg;
    int ok = 0;
    ss_fit_rfm *rfm = ss_calloc(nc ? nc : 1, sizeof *rfm);
    for (uint32_t i = 0; i < nc; i++)
        rfm[i] = (ss_fit_rfm){
            .x = k[i].n - 1,
            .tx = (double)(k[i].last - k[i].first) / SS_MS_PER_DAY,
            .T = (double)(c->end - k[i].first) / SS_MS_PER_DAY,
        };
    if (nc >= FIT_MIN_CUSTOMERS && repeaters >= FIT_MIN_REPEATERS)
        ok = !ss_fit_bgnbd_mle(rfm, nc, &bg) && bgnbd_in_range(&bg);
    if (ok) {
        c->bgnbd = 1;
        json_object_set_new(cu, "model", json_string("bgnbd"));
        fit_learned(c, "customers.model", NAN, NAN,
                    "bgnbd: %u customers, %zu with repeat orders, log-likelihood %.1f", nc,
                    repeaters, bg.ll);
        put_bgnbd(c, json_object_get(cu, "bgnbd"), "customers.bgnbd", &bg);
    } else {
        fit_kept(c, "customers.model",
                 "too few customers (%u) or repeat buyers (%zu) for BG/NBD: at least %d and %d", nc,
                 repeaters, FIT_MIN_CUSTOMERS, FIT_MIN_REPEATERS);
        fit_warn(c, "too few customers or repeat buyers to fit BG/NBD; the customers keep the pool "
                    "model");
        if (s->n >= FIT_MIN_ORDERS) {
            double share = 1.0 - (double)nc / (double)s->n;
            json_object_set_new(cu, "repeat_share", fit_real(share));
            fit_learned(c, "customers.repeat_share", share,
                        sqrt(share * (1 - share) / (double)s->n),
                        "share of orders from returning customers");
        }
    }

    /* Each customer's segment, by the first order, where the sample names
     * one of the first 64 (the profile takes up to 64 segments). */
    uint32_t *seg = NULL;
    double named = 0;
    if (s->has[FIT_SEGMENT] && nc >= FIT_MIN_CUSTOMERS) {
        seg = ss_calloc(nc, sizeof *seg);
        for (uint32_t i = 0; i < nc; i++) {
            uint32_t sg = s->o[k[i].first_order].text[FIT_SEGMENT];
            seg[i] = sg != FIT_NONE && sg < 64 ? sg : FIT_NONE;
            named += seg[i] != FIT_NONE;
        }
    }
    char why[256] = "";
    if (named > 0)
        learn_named_segments(c, cu, rfm, seg, nc, named, ok ? &bg : NULL);
    else if (!ok)
        fit_kept(c, "customers.segments", "the sample names no segments (customer_segment)");
    else if (learn_latent_segments(c, cu, rfm, nc, &bg, why, sizeof why))
        fit_kept(c, "customers.segments",
                 "the sample names no segments (customer_segment), and its customers' behaviour "
                 "does not separate them (%s): BG/NBD's gamma and beta mixing carries their "
                 "differences",
                 why);
    free(seg);
    free(rfm);
    free(k);
}

int ss_fit_learn(const ss_fit_sample *s, ss_fit_result **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!s->n) {
        snprintf(err, errlen, "sample '%s': no orders", s->name);
        return SS_EINVAL;
    }
    char *def;
    int rc = ss_profile_dump(NULL, &def, err, errlen);
    if (rc)
        return rc;
    ss_fit_result *r = ss_calloc(1, sizeof *r);
    fit_lctx c = {.s = s, .r = r, .root = json_loads(def, 0, NULL)};
    free(def);
    fit_period(s, &c.start, &c.end);
    int64_t days = (c.end - c.start) / SS_MS_PER_DAY;
    /* arrivals.active_days takes at most 10^6 days; a longer period is cut. */
    c.ndays = days < 1 ? 1 : days > 1000000 ? 1000000 : (int)days;
    if (s->n < FIT_MIN_ORDERS)
        fit_warn(&c,
                 "the sample has %zu orders (fewer than %d): most parameters keep their defaults",
                 s->n, FIT_MIN_ORDERS);

    learn_customers(&c);
    learn_arrivals(&c);
    fit_learn_quantity(&c);
    fit_learn_prices(&c);
    fit_learn_products(&c);
    fit_learn_places(&c);
    fit_learn_cancellations(&c);
    if (s->amount_is_total)
        fit_warn(&c, "no amount column: the total prices were fitted as the amounts (tax, shipping "
                     "and discounts keep their defaults)");

    char *json = json_dumps(c.root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    r->json = ss_malloc(strlen(json) + 2);
    snprintf(r->json, strlen(json) + 2, "%s\n", json);
    free(json);
    json_decref(c.root);
    free(c.first);
    *out = r;
    return SS_OK;
}

const char *ss_fit_result_json(const ss_fit_result *r)
{
    return r->json;
}

void ss_fit_result_print(const ss_fit_result *r, FILE *f)
{
    fprintf(f, "%-48s %-8s %12s %10s  %s\n", "parameter", "status", "value", "std. error", "note");
    for (size_t i = 0; i < r->np; i++) {
        const fit_param *p = &r->p[i];
        char v[32] = "", se[32] = "";
        if (!isnan(p->value))
            snprintf(v, sizeof v, "%.6g", p->value);
        if (!isnan(p->se))
            snprintf(se, sizeof se, "%.3g", p->se);
        fprintf(f, "%-48s %-8s %12s %10s  %s\n", p->path, p->learned ? "learned" : "kept", v, se,
                p->note);
    }
    for (size_t i = 0; i < r->nwarn; i++)
        fprintf(f, "warning: %s\n", r->warn[i]);
}

void ss_fit_result_free(ss_fit_result *r)
{
    if (!r)
        return;
    free(r->json);
    free(r->p);
    for (size_t i = 0; i < r->nwarn; i++)
        free(r->warn[i]);
    free(r->warn);
    free(r);
}

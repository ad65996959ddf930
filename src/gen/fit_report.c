/* The fidelity report of `shopstream fit --report`: a stream generated with
 * the learned profile over the sample's period, compared with the sample in
 * the manner of SDMetrics (KS and TV complements, a correlation, their mean). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "gen/fit_int.h"
#include "gen/fit_math.h"
#include "gen/gen.h"

/* Generated orders beyond this stop the report: a profile whose rate was
 * changed by hand could otherwise run for hours. */
#define MAX_GENERATED 50000000u

static const char *const score_names[SS_FIT_NSCORES] = {
    [SS_FIT_KS_AMOUNT] = "amount (KS complement)",
    [SS_FIT_KS_QUANTITY] = "quantity (KS complement)",
    [SS_FIT_KS_GAP] = "gap between a customer's orders (KS complement)",
    [SS_FIT_TV_WEEKDAY] = "day of week (TV complement)",
    [SS_FIT_TV_HOUR] = "hour of day (TV complement)",
    [SS_FIT_TV_CATEGORY] = "category (TV complement)",
    [SS_FIT_TV_COUNTRY] = "country (TV complement)",
    [SS_FIT_TV_METHOD] = "payment method (TV complement)",
    [SS_FIT_TV_SEGMENT] = "customer segment (TV complement)",
    [SS_FIT_TV_ORDERS_PER_CUSTOMER] = "orders per customer (TV complement)",
    [SS_FIT_CORR_WEEKLY] = "weekly volume (correlation)",
};

static void add_text(ss_fit_sample *g, fit_order *o, int field, ss_str v)
{
    o->text[field] = fit_names_intern(&g->names[field], v.p, v.n);
}

/* Generates orders from start until end into a sample of the same shape. */
static int generate(const ss_fit_sample *s, const ss_profile *prof, uint64_t seed, ss_fit_sample *g,
                    char *err, size_t errlen)
{
    int64_t start, end;
    fit_period(s, &start, &end);
    ss_gen_config cfg = {.seed = seed, .start_ms = start};
    ss_gen *gen = ss_gen_new(prof, &cfg);
    const ss_event *ev;
    int rc = SS_OK;
    while (ss_gen_next(gen, &ev) == SS_OK && ev->ts < end) {
        if (ev->type != SS_EV_ORDER)
            continue;
        if (g->n >= MAX_GENERATED) {
            snprintf(err, errlen,
                     "the profile generates over %u orders in the sample's period; the report "
                     "stops there (was arrivals.rate changed by hand?)",
                     MAX_GENERATED);
            rc = SS_EINVAL;
            break;
        }
        const ss_order *src = &ev->u.order;
        fit_order *o = fit_sample_add(g);
        o->ts = ev->ts;
        o->amount = s->amount_is_total ? src->total_price : src->amount;
        o->qty = src->quantity;
        add_text(g, o, FIT_CUSTOMER, src->customer_id);
        if (s->has[FIT_CATEGORY])
            add_text(g, o, FIT_CATEGORY, src->category);
        if (s->has[FIT_COUNTRY])
            add_text(g, o, FIT_COUNTRY, src->country);
        if (s->has[FIT_METHOD])
            add_text(g, o, FIT_METHOD, src->payment_method);
        if (s->has[FIT_SEGMENT])
            add_text(g, o, FIT_SEGMENT, src->customer_segment);
    }
    ss_gen_free(gen);
    return rc;
}

static double ks_of(const ss_fit_sample *a, const ss_fit_sample *b, int quantity)
{
    double *x = ss_calloc(a->n + 1, sizeof *x), *y = ss_calloc(b->n + 1, sizeof *y);
    size_t nx = 0, ny = 0;
    for (size_t i = 0; i < a->n; i++)
        if (quantity ? a->o[i].qty > 0 : a->o[i].amount >= 0)
            x[nx++] = quantity ? a->o[i].qty : (double)a->o[i].amount;
    for (size_t i = 0; i < b->n; i++)
        if (quantity ? b->o[i].qty > 0 : b->o[i].amount >= 0)
            y[ny++] = quantity ? b->o[i].qty : (double)b->o[i].amount;
    double d = ss_fit_ks(x, nx, y, ny);
    free(x);
    free(y);
    return 1.0 - d;
}

typedef struct cust_ts {
    uint32_t c;
    int64_t ts;
} cust_ts;

static int cmp_cust_ts(const void *a, const void *b)
{
    const cust_ts *x = a, *y = b;
    if (x->c != y->c)
        return x->c < y->c ? -1 : 1;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

/* Gaps between a customer's consecutive orders (days between dates when the
 * sample has dates alone, else hours) and the histogram of orders per
 * customer (1 .. 9, 10 or more). */
static double *gaps(const ss_fit_sample *a, int dates, size_t *n, double hist[10])
{
    cust_ts *v = ss_calloc(a->n + 1, sizeof *v);
    size_t m = 0;
    for (size_t i = 0; i < a->n; i++)
        if (a->o[i].text[FIT_CUSTOMER] != FIT_NONE)
            v[m++] = (cust_ts){a->o[i].text[FIT_CUSTOMER], a->o[i].ts};
    qsort(v, m, sizeof *v, cmp_cust_ts);
    double *g = ss_calloc(m + 1, sizeof *g);
    size_t ng = 0, run = 0;
    memset(hist, 0, 10 * sizeof *hist);
    for (size_t i = 0; i < m; i++) {
        if (i > 0 && v[i].c == v[i - 1].c) {
            run++;
            g[ng++] = dates ? (double)(ss_time_floor(v[i].ts, SS_MS_PER_DAY) -
                                       ss_time_floor(v[i - 1].ts, SS_MS_PER_DAY)) /
                                  SS_MS_PER_DAY
                            : (double)(v[i].ts - v[i - 1].ts) / 3600000.0;
        } else {
            run = 1;
        }
        if (i + 1 == m || v[i + 1].c != v[i].c)
            hist[run >= 10 ? 9 : run - 1] += 1;
    }
    free(v);
    *n = ng;
    return g;
}

/* The profile's country of a name or code; ncountries for any other. */
static uint32_t country_of(const ss_profile *prof, const char *name)
{
    for (uint32_t k = 0; k < prof->ncountries; k++)
        if (!strcasecmp(prof->countries[k].name, name) ||
            !strcasecmp(prof->countries[k].code, name))
            return k;
    return prof->ncountries;
}

/* TV complement of a text field; values are matched by name (countries by
 * name or code). */
static double tv_text(const ss_fit_sample *s, const ss_fit_sample *g, int field,
                      const ss_profile *prof)
{
    const fit_names *ts = &s->names[field], *tg = &g->names[field];
    size_t nb = field == FIT_COUNTRY ? prof->ncountries + 1u : (size_t)ts->n + tg->n;
    double *p = ss_calloc(nb + 1, sizeof *p), *q = ss_calloc(nb + 1, sizeof *q);
    uint32_t *smap = ss_calloc(ts->n + 1u, sizeof *smap), *gmap = ss_calloc(tg->n + 1u, 4);
    for (uint32_t i = 0; i < ts->n; i++)
        smap[i] = field == FIT_COUNTRY ? country_of(prof, ts->v[i]) : i;
    for (uint32_t i = 0; i < tg->n; i++) {
        uint32_t k = fit_names_find(ts, tg->v[i], strlen(tg->v[i]));
        gmap[i] = field == FIT_COUNTRY ? country_of(prof, tg->v[i]) : k != FIT_NONE ? k : ts->n + i;
    }
    for (size_t i = 0; i < s->n; i++)
        if (s->o[i].text[field] != FIT_NONE)
            p[smap[s->o[i].text[field]]] += 1;
    for (size_t i = 0; i < g->n; i++)
        if (g->o[i].text[field] != FIT_NONE)
            q[gmap[g->o[i].text[field]]] += 1;
    double d = ss_fit_tv(p, q, nb);
    free(p);
    free(q);
    free(smap);
    free(gmap);
    return 1.0 - d;
}

static double tv_time(const ss_fit_sample *s, const ss_fit_sample *g, int hours)
{
    double p[24] = {0}, q[24] = {0};
    for (size_t i = 0; i < s->n; i++)
        p[hours ? (s->o[i].ts / SS_MS_PER_HOUR) % 24 : ss_time_weekday(s->o[i].ts)] += 1;
    for (size_t i = 0; i < g->n; i++)
        q[hours ? (g->o[i].ts / SS_MS_PER_HOUR) % 24 : ss_time_weekday(g->o[i].ts)] += 1;
    return 1.0 - ss_fit_tv(p, q, hours ? 24 : 7);
}

static double weekly_corr(const ss_fit_sample *s, const ss_fit_sample *g)
{
    int64_t start, end, week = 7 * SS_MS_PER_DAY;
    fit_period(s, &start, &end);
    size_t nw = (size_t)((end - start + week - 1) / week);
    if (nw < 3)
        return NAN;
    double *x = ss_calloc(nw, sizeof *x), *y = ss_calloc(nw, sizeof *y);
    for (size_t i = 0; i < s->n; i++)
        x[(size_t)((s->o[i].ts - start) / week)] += 1;
    for (size_t i = 0; i < g->n; i++)
        if (g->o[i].ts >= start && g->o[i].ts < end)
            y[(size_t)((g->o[i].ts - start) / week)] += 1;
    /* A last, partial week would count fewer orders on both sides alike. */
    double r = ss_fit_pearson(x, y, nw);
    free(x);
    free(y);
    return r;
}

int ss_fit_report(const ss_fit_sample *s, const ss_profile *prof, uint64_t seed, ss_fit_scores *out,
                  char *err, size_t errlen)
{
    for (int i = 0; i < SS_FIT_NSCORES; i++)
        out->score[i] = NAN;
    out->overall = NAN;
    ss_fit_sample *g = ss_calloc(1, sizeof *g);
    g->name = ss_strdup("generated");
    int rc = generate(s, prof, seed, g, err, errlen);
    if (rc)
        goto out;
    out->sample_orders = s->n;
    out->generated_orders = g->n;
    if (!g->n) {
        snprintf(err, errlen, "the profile generated no order in the sample's period");
        rc = SS_EINVAL;
        goto out;
    }
    if (s->has_amount || s->has_unit_price)
        out->score[SS_FIT_KS_AMOUNT] = ks_of(s, g, 0);
    if (s->has_qty)
        out->score[SS_FIT_KS_QUANTITY] = ks_of(s, g, 1);
    out->score[SS_FIT_TV_WEEKDAY] = tv_time(s, g, 0);
    if (s->has_time)
        out->score[SS_FIT_TV_HOUR] = tv_time(s, g, 1);
    static const int fields[][2] = {{FIT_CATEGORY, SS_FIT_TV_CATEGORY},
                                    {FIT_COUNTRY, SS_FIT_TV_COUNTRY},
                                    {FIT_METHOD, SS_FIT_TV_METHOD},
                                    {FIT_SEGMENT, SS_FIT_TV_SEGMENT}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (s->has[fields[i][0]])
            out->score[fields[i][1]] = tv_text(s, g, fields[i][0], prof);
    if (s->has[FIT_CUSTOMER]) {
        double hs[10], hg[10];
        size_t na, nb;
        double *ga = gaps(s, !s->has_time, &na, hs), *gb = gaps(g, !s->has_time, &nb, hg);
        if (na && nb)
            out->score[SS_FIT_KS_GAP] = 1.0 - ss_fit_ks(ga, na, gb, nb);
        out->score[SS_FIT_TV_ORDERS_PER_CUSTOMER] = 1.0 - ss_fit_tv(hs, hg, 10);
        free(ga);
        free(gb);
    }
    out->score[SS_FIT_CORR_WEEKLY] = weekly_corr(s, g);
    double sum = 0;
    int n = 0;
    for (int i = 0; i < SS_FIT_NSCORES; i++)
        if (!isnan(out->score[i])) {
            sum += out->score[i];
            n++;
        }
    out->overall = n ? sum / n : NAN;
out:
    ss_fit_sample_free(g);
    return rc;
}

void ss_fit_scores_print(const ss_fit_scores *sc, FILE *f)
{
    fprintf(f, "fidelity: %llu sample orders, %llu generated over the same period\n",
            (unsigned long long)sc->sample_orders, (unsigned long long)sc->generated_orders);
    fprintf(f, "%-50s %s\n", "metric", "score");
    for (int i = 0; i < SS_FIT_NSCORES; i++)
        if (!isnan(sc->score[i]))
            fprintf(f, "%-50s %.4f\n", score_names[i], sc->score[i]);
    fprintf(f, "%-50s %.4f\n", "overall (mean)", sc->overall);
}

/* Learning places and payments: the country mix of new customers, the
 * category mix and checkout methods by country, failure and cancellation rates. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "common/status.h"
#include "gen/fit_int.h"
#include "gen/fit_math.h"

/* ---- places and payments ---- */

/* The profile's country of each of the sample's countries (by name or code,
 * or, without a country column, by the city's name). */
static void map_countries(fit_lctx *c, uint32_t *order_country)
{
    const ss_fit_sample *s = c->s;
    json_t *cs = fit_obj(c->root, "countries", NULL);
    size_t nk = json_array_size(cs);
    int by_city = !s->has[FIT_COUNTRY] && s->has[FIT_CITY];
    int field = by_city ? FIT_CITY : FIT_COUNTRY;
    const fit_names *t = &s->names[field];
    uint32_t *map = ss_calloc(t->n ? t->n : 1, sizeof *map), unknown = 0;
    for (uint32_t i = 0; i < t->n; i++) {
        map[i] = FIT_NONE;
        for (size_t j = 0; j < nk && map[i] == FIT_NONE; j++) {
            json_t *k = json_array_get(cs, j);
            if (by_city) {
                json_t *cities = json_object_get(k, "cities");
                for (size_t m = 0; m < json_array_size(cities); m++)
                    if (!strcmp(
                            json_string_value(json_object_get(json_array_get(cities, m), "name")),
                            t->v[i]))
                        map[i] = (uint32_t)j;
            } else if (!strcasecmp(json_string_value(json_object_get(k, "name")), t->v[i]) ||
                       !strcasecmp(json_string_value(json_object_get(k, "code")), t->v[i])) {
                map[i] = (uint32_t)j;
            }
        }
        unknown += map[i] == FIT_NONE;
    }
    if (unknown)
        fit_warn(c,
                 "%u of the sample's %u %s are not in the profile's countries and were left out "
                 "of the country mix (a new country needs cities, VAT and shipping: add it to "
                 "the profile by hand)",
                 unknown, t->n, by_city ? "cities" : "countries");
    for (size_t i = 0; i < s->n; i++) {
        uint32_t v = s->o[i].text[field];
        order_country[i] = v == FIT_NONE ? FIT_NONE : map[v];
    }
    free(map);
}

/* Shares of each profile payment method among orders; returns the count. */
static double method_mix(fit_lctx *c, const uint32_t *mmap, const uint32_t *order_country,
                         uint32_t country, double *mix, size_t nm)
{
    const ss_fit_sample *s = c->s;
    double n = 0;
    memset(mix, 0, nm * sizeof *mix);
    for (size_t i = 0; i < s->n; i++) {
        uint32_t m = s->o[i].text[FIT_METHOD];
        if (m == FIT_NONE || mmap[m] == FIT_NONE ||
            (country != FIT_NONE && order_country[i] != country))
            continue;
        mix[mmap[m]] += 1;
        n += 1;
    }
    return n;
}

static json_t *mix_object(json_t *methods, const double *mix, size_t nm)
{
    double tot = 0;
    for (size_t m = 0; m < nm; m++)
        tot += mix[m];
    json_t *o = json_object();
    for (size_t m = 0; m < nm; m++)
        json_object_set_new(o,
                            json_string_value(json_object_get(json_array_get(methods, m), "name")),
                            fit_real(mix[m] / tot));
    return o;
}

void fit_learn_places(fit_lctx *c)
{
    const ss_fit_sample *s = c->s;
    json_t *cs = fit_obj(c->root, "countries", NULL), *regions = fit_obj(c->root, "regions", NULL);
    json_t *methods = fit_obj(c->root, "payments", "methods");
    size_t nk = json_array_size(cs), nm = json_array_size(methods);
    uint32_t *oc = ss_calloc(s->n ? s->n : 1, sizeof *oc);
    for (size_t i = 0; i < s->n; i++)
        oc[i] = FIT_NONE;
    if (s->has[FIT_COUNTRY] || s->has[FIT_CITY])
        map_countries(c, oc);
    double *kc = ss_calloc(nk, sizeof *kc), *korders = ss_calloc(nk, sizeof *korders), tot = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (oc[i] == FIT_NONE)
            continue;
        korders[oc[i]] += 1;
        if (c->first[i]) {
            kc[oc[i]] += 1;
            tot += 1;
        }
    }
    if (tot >= FIT_MIN_ORDERS) {
        for (size_t j = 0; j < nk; j++) {
            json_t *k = json_array_get(cs, j);
            json_object_set_new(k, "weight", fit_real(kc[j] / tot));
            if (kc[j] > 0) {
                char path[96];
                snprintf(path, sizeof path, "countries[%s].weight",
                         json_string_value(json_object_get(k, "code")));
                fit_learned(c, path, kc[j] / tot, sqrt(kc[j] / tot * (1 - kc[j] / tot) / tot),
                            "share of new customers");
            }
        }
    } else {
        fit_kept(c, "countries[].weight", "the sample has %s",
                 tot > 0 ? "too few orders with a country" : "no country");
    }

    /* Category mix by country: each country with enough orders gets a region
     * of its own whose preferences turn the shop's mix into the country's. */
    if (s->has[FIT_CATEGORY] && tot >= FIT_MIN_ORDERS) {
        uint32_t ncat = s->names[FIT_CATEGORY].n;
        double *all = ss_calloc(ncat, sizeof *all), *mine = ss_calloc(ncat, sizeof *mine);
        double nall = 0;
        for (size_t i = 0; i < s->n; i++)
            if (s->o[i].text[FIT_CATEGORY] != FIT_NONE) {
                all[s->o[i].text[FIT_CATEGORY]] += 1;
                nall += 1;
            }
        uint32_t nregions = 0;
        for (size_t j = 0; j < nk; j++) {
            if (korders[j] < FIT_MIN_COUNTRY_MIX)
                continue;
            double nmine = 0;
            memset(mine, 0, ncat * sizeof *mine);
            for (size_t i = 0; i < s->n; i++)
                if (oc[i] == j && s->o[i].text[FIT_CATEGORY] != FIT_NONE) {
                    mine[s->o[i].text[FIT_CATEGORY]] += 1;
                    nmine += 1;
                }
            if (nmine < FIT_MIN_COUNTRY_MIX)
                continue;
            json_t *k = json_array_get(cs, j), *pref = json_object();
            for (uint32_t m = 0; m < ncat; m++)
                if (all[m] > 0)
                    json_object_set_new(pref, s->names[FIT_CATEGORY].v[m],
                                        fit_real((mine[m] / nmine) / (all[m] / nall)));
            const char *code = json_string_value(json_object_get(k, "code"));
            json_t *old = json_object_get(regions, json_string_value(json_object_get(k, "region")));
            json_t *reg = json_pack("{s:o}", "category_preference", pref);
            json_t *opm = json_object_get(old, "payment_mix");
            if (opm)
                json_object_set(reg, "payment_mix", opm);
            json_object_set_new(regions, code, reg);
            json_object_set_new(k, "region", json_string(code));
            nregions++;
        }
        if (nregions)
            fit_learned(c, "regions[<country code>].category_preference", nregions, NAN,
                        "category mix of %u countries with at least %d orders (a region each)",
                        nregions, FIT_MIN_COUNTRY_MIX);
        free(all);
        free(mine);
    } else {
        fit_kept(c, "regions[].category_preference", "the sample has no category and country");
    }

    uint32_t *mmap = NULL;
    if (s->has[FIT_METHOD]) {
        const fit_names *t = &s->names[FIT_METHOD];
        uint32_t unknown = 0;
        mmap = ss_calloc(t->n ? t->n : 1, sizeof *mmap);
        for (uint32_t i = 0; i < t->n; i++) {
            mmap[i] = FIT_NONE;
            for (size_t m = 0; m < nm; m++)
                if (!strcmp(json_string_value(json_object_get(json_array_get(methods, m), "name")),
                            t->v[i]))
                    mmap[i] = (uint32_t)m;
            unknown += mmap[i] == FIT_NONE;
        }
        if (unknown)
            fit_warn(c,
                     "%u payment method(s) of the sample are not the profile's and were left out",
                     unknown);
    }
    double *mix = ss_calloc(nm, sizeof *mix);
    if (mmap && method_mix(c, mmap, oc, FIT_NONE, mix, nm) >= FIT_MIN_ORDERS) {
        json_t *global = mix_object(methods, mix, nm);
        uint32_t own = 0;
        for (size_t j = 0; j < nk; j++) {
            json_t *k = json_array_get(cs, j);
            if (korders[j] >= FIT_MIN_COUNTRY_MIX &&
                method_mix(c, mmap, oc, (uint32_t)j, mix, nm) >= FIT_MIN_COUNTRY_MIX) {
                json_object_set_new(k, "payment_mix", mix_object(methods, mix, nm));
                own++;
            } else {
                json_object_set(k, "payment_mix", global);
            }
        }
        json_decref(global);
        fit_learned(c, "countries[].payment_mix", own, NAN,
                    "checkout methods: %u countries their own, the others the sample's overall mix",
                    own);
    } else {
        fit_kept(c, "countries[].payment_mix", "the sample has no payment_method");
    }

    /* Failure rates: per attempt from generator events, else per order. */
    if (!s->has_status || !s->has[FIT_METHOD]) {
        fit_kept(c, "payments.methods[].failure_rate",
                 "the sample has no payment status by method");
        nm = 0;
    }
    for (size_t m = 0; m < nm; m++) {
        json_t *e = json_array_get(methods, m);
        const char *name = json_string_value(json_object_get(e, "name"));
        char path[96];
        snprintf(path, sizeof path, "payments.methods[%s].failure_rate", name);
        double tries = 0, bad = 0;
        uint32_t sm = fit_names_find(&s->names[FIT_METHOD], name, strlen(name));
        if (s->events && sm != FIT_NONE && sm < s->att.n) {
            tries = (double)s->att.tries[sm];
            bad = (double)s->att.failed[sm];
        } else if (sm != FIT_NONE) {
            for (size_t i = 0; i < s->n; i++)
                if (s->o[i].text[FIT_METHOD] == sm && s->o[i].paid >= 0) {
                    tries += 1;
                    bad += s->o[i].paid == 0;
                }
        }
        if (tries >= FIT_MIN_ORDERS) {
            double f = bad / tries;
            json_object_set_new(e, "failure_rate", fit_real(f));
            fit_learned(c, path, f, sqrt(f * (1 - f) / tries), "%s, %.0f %s", name, tries,
                        s->events ? "attempts" : "orders (share of orders that failed)");
        } else {
            fit_kept(c, path, "fewer than %d payments with a status", FIT_MIN_ORDERS);
        }
    }
    free(mix);
    free(mmap);
    free(kc);
    free(korders);
    free(oc);
}

void fit_learn_cancellations(fit_lctx *c)
{
    const ss_fit_sample *s = c->s;
    double paid = 0, cancelled = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->o[i].paid != 0 && s->o[i].cancelled >= 0) {
            paid += 1;
            cancelled += s->o[i].cancelled;
        }
    if (!s->has_cancel || paid < FIT_MIN_ORDERS) {
        fit_kept(c, "cancellations.rate", "%s",
                 s->has_cancel ? "too few paid orders"
                               : "the sample says nothing of cancellations");
        return;
    }
    double f = cancelled / paid;
    json_object_set_new(fit_obj(c->root, "cancellations", NULL), "rate", fit_real(f));
    fit_learned(c, "cancellations.rate", f, sqrt(f * (1 - f) / paid), "share of %.0f paid orders",
                paid);
}

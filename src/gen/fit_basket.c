/* Learning baskets: quantities, unit prices per category, and the products' popularity. */
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

/* ---- baskets ---- */

/* A price as the profile takes it: to the cent, 0.01 to 10^6. */
static double price(double x)
{
    x = round(x * 100) / 100;
    return x < 0.01 ? 0.01 : x > 1e6 ? 1e6 : x;
}

/* A lognormal's median and log-standard-deviation from logs of prices. */
static void lognormal(const double *v, size_t n, double *median, double *sigma)
{
    double m = 0, q = 0;
    for (size_t i = 0; i < n; i++)
        m += v[i] / n;
    for (size_t i = 0; i < n; i++)
        q += (v[i] - m) * (v[i] - m);
    *median = exp(m);
    *sigma = n > 1 ? sqrt(q / (n - 1)) : 0;
}

void fit_learn_quantity(fit_lctx *c)
{
    const ss_fit_sample *s = c->s;
    size_t n = 0;
    int32_t maxq = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->o[i].qty > 0) {
            n++;
            if (s->o[i].qty > maxq)
                maxq = s->o[i].qty;
        }
    if (!s->has_qty || n < FIT_MIN_PER_VALUE) {
        fit_kept(c, "basket.quantity_weights",
                 s->has_qty ? "fewer than 30 orders with a quantity"
                            : "the sample has no quantity");
        return;
    }
    if (maxq > 1000)
        maxq = 1000;
    double *h = ss_calloc((size_t)maxq, sizeof *h), mean = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->o[i].qty > 0) {
            h[(s->o[i].qty > 1000 ? 1000 : s->o[i].qty) - 1] += 1;
            mean += (double)s->o[i].qty / n;
        }
    json_object_set_new(fit_obj(c->root, "basket", NULL), "quantity_weights",
                        fit_weight_array(h, (size_t)maxq));
    fit_learned(c, "basket.quantity_weights", mean, NAN,
                "the frequencies of 1 to %d units (value: the mean)", maxq);
    free(h);
}

/* The log unit price of each order (or product), per category. */
void fit_learn_prices(fit_lctx *c)
{
    const ss_fit_sample *s = c->s;
    json_t *cat = fit_obj(c->root, "catalog", NULL), *defs = json_object_get(cat, "categories");
    int bycat = s->has[FIT_CATEGORY], byprod = s->has[FIT_PRODUCT];
    uint32_t ncat = bycat ? s->names[FIT_CATEGORY].n : 1;
    if (!s->has_amount && !s->has_unit_price) {
        fit_kept(c, "catalog.categories[].price_median", "the sample has no amount or unit price");
        return;
    }
    /* One value per product when products are named (their price is fixed in
     * the model), else one per order. */
    uint32_t np = byprod ? s->names[FIT_PRODUCT].n : 0;
    double *plog = ss_calloc(np ? np : 1, sizeof *plog);
    uint32_t *pn = ss_calloc(np ? np : 1, sizeof *pn), *pcat = ss_calloc(np ? np : 1, 4);
    double **v = ss_calloc(ncat, sizeof *v);
    size_t *vn = ss_calloc(ncat, sizeof *vn), *vcap = ss_calloc(ncat, sizeof *vcap);
    double *orders = ss_calloc(ncat, sizeof *orders);
    for (size_t i = 0; i < s->n; i++) {
        const fit_order *o = &s->o[i];
        uint32_t k = bycat ? o->text[FIT_CATEGORY] : 0;
        if (k == FIT_NONE)
            continue;
        orders[k] += 1;
        double up = o->unit_price >= 0 ? (double)o->unit_price
                    : o->amount >= 0   ? (double)o->amount / (o->qty > 0 ? o->qty : 1)
                                       : -1;
        if (!(up > 0))
            continue;
        if (byprod && o->text[FIT_PRODUCT] != FIT_NONE) {
            uint32_t p = o->text[FIT_PRODUCT];
            plog[p] += log(up / 100.0);
            pn[p]++;
            pcat[p] = k;
            continue;
        }
        if (vn[k] == vcap[k]) {
            vcap[k] = vcap[k] ? vcap[k] * 2 : 256;
            v[k] = ss_realloc(v[k], vcap[k] * sizeof **v);
        }
        v[k][vn[k]++] = log(up / 100.0);
    }
    for (uint32_t p = 0; p < np; p++) {
        if (!pn[p])
            continue;
        uint32_t k = pcat[p];
        if (vn[k] == vcap[k]) {
            vcap[k] = vcap[k] ? vcap[k] * 2 : 256;
            v[k] = ss_realloc(v[k], vcap[k] * sizeof **v);
        }
        v[k][vn[k]++] = plog[p] / pn[p];
    }

    if (!bycat) {
        double med, sd;
        if (vn[0] < FIT_MIN_PRICES) {
            fit_kept(c, "catalog.categories[].price_median", "fewer than %d prices",
                     FIT_MIN_PRICES);
        } else {
            lognormal(v[0], vn[0], &med, &sd);
            sd = sd > 3 ? 3 : sd;
            for (size_t j = 0; j < json_array_size(defs); j++) {
                json_t *e = json_array_get(defs, j);
                json_object_set_new(e, "price_median", json_real(price(med)));
                json_object_set_new(e, "price_sigma", fit_real(sd));
            }
            fit_learned(c, "catalog.categories[].price_median", med, med * sd / sqrt((double)vn[0]),
                        "lognormal unit price, every category (the sample has none)");
            fit_learned(c, "catalog.categories[].price_sigma", sd, sd / sqrt(2.0 * vn[0]),
                        "log-standard-deviation of the unit price");
        }
        fit_kept(c, "catalog.categories[].weight", "the sample has no category");
    } else {
        json_t *out = json_array();
        double tot = 0;
        for (uint32_t k = 0; k < ncat; k++)
            tot += orders[k];
        for (uint32_t k = 0; k < ncat; k++) {
            const char *name = s->names[FIT_CATEGORY].v[k];
            json_t *e = NULL;
            for (size_t j = 0; j < json_array_size(defs) && !e; j++)
                if (!strcmp(json_string_value(json_object_get(json_array_get(defs, j), "name")),
                            name))
                    e = json_deep_copy(json_array_get(defs, j));
            if (!e) {
                /* A category the defaults do not know: the first default's
                 * shape, no demand swing, a generic noun. */
                e = json_deep_copy(json_array_get(defs, 0));
                json_object_set_new(e, "name", json_string(name));
                json_object_set_new(e, "products", json_pack("[s]", "Item"));
                json_object_set_new(fit_obj(e, "trend", NULL), "amplitude", json_real(0));
            }
            char path[160];
            json_object_set_new(e, "weight", fit_real(orders[k] / tot));
            snprintf(path, sizeof path, "catalog.categories[%s].weight", name);
            fit_learned(c, path, orders[k] / tot,
                        sqrt(orders[k] / tot * (1 - orders[k] / tot) / tot), "share of orders");
            if (vn[k] >= FIT_MIN_PRICES) {
                double med, sd;
                lognormal(v[k], vn[k], &med, &sd);
                sd = sd > 3 ? 3 : sd;
                json_object_set_new(e, "price_median", json_real(price(med)));
                json_object_set_new(e, "price_sigma", fit_real(sd));
                snprintf(path, sizeof path, "catalog.categories[%s].price_median", name);
                fit_learned(c, path, med, med * sd / sqrt((double)vn[k]), "lognormal, %zu %s",
                            vn[k], byprod ? "products" : "orders");
                snprintf(path, sizeof path, "catalog.categories[%s].price_sigma", name);
                fit_learned(c, path, sd, sd / sqrt(2.0 * vn[k]), "log-standard-deviation");
            } else {
                snprintf(path, sizeof path, "catalog.categories[%s].price_median", name);
                fit_kept(c, path, "fewer than %d prices", FIT_MIN_PRICES);
            }
            json_array_append_new(out, e);
        }
        /* The defaults' regions name some categories, which must stay. */
        for (size_t j = 0; j < json_array_size(defs); j++) {
            json_t *d = json_array_get(defs, j);
            const char *name = json_string_value(json_object_get(d, "name"));
            if (fit_names_find(&s->names[FIT_CATEGORY], name, strlen(name)) != FIT_NONE)
                continue;
            json_t *e = json_deep_copy(d);
            json_object_set_new(e, "weight", json_real(0));
            json_array_append_new(out, e);
        }
        json_object_set_new(cat, "categories", out);
    }
    for (uint32_t k = 0; k < ncat; k++)
        free(v[k]);
    free(v);
    free(vn);
    free(vcap);
    free(orders);
    free(plog);
    free(pn);
    free(pcat);
}

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x < y) - (x > y);
}

void fit_learn_products(fit_lctx *c)
{
    const ss_fit_sample *s = c->s;
    json_t *cat = fit_obj(c->root, "catalog", NULL);
    if (!s->has[FIT_PRODUCT]) {
        /* Prices were fitted per order: drawing products uniformly from a
         * large catalogue gives orders that distribution. */
        json_object_set_new(cat, "products", json_integer(20000));
        json_object_set_new(cat, "zipf_exponent", json_real(0));
        fit_learned(c, "catalog.zipf_exponent", 0, NAN,
                    "no product column: uniform over 20000 products, so that orders follow the "
                    "fitted price distribution");
        return;
    }
    uint32_t np = s->names[FIT_PRODUCT].n,
             ncat = s->has[FIT_CATEGORY] ? s->names[FIT_CATEGORY].n : 1;
    uint64_t *cnt = ss_calloc(np, sizeof *cnt);
    uint32_t *pcat = ss_calloc(np, sizeof *pcat), *n = ss_calloc(ncat, sizeof *n);
    for (size_t i = 0; i < s->n; i++) {
        uint32_t p = s->o[i].text[FIT_PRODUCT];
        if (p == FIT_NONE)
            continue;
        cnt[p]++;
        uint32_t k = s->has[FIT_CATEGORY] ? s->o[i].text[FIT_CATEGORY] : 0;
        pcat[p] = k == FIT_NONE ? 0 : k;
    }
    uint64_t **groups = ss_calloc(ncat, sizeof *groups);
    for (uint32_t k = 0; k < ncat; k++)
        groups[k] = ss_calloc(np, sizeof **groups);
    for (uint32_t p = 0; p < np; p++)
        groups[pcat[p]][n[pcat[p]]++] = cnt[p];
    for (uint32_t k = 0; k < ncat; k++)
        qsort(groups[k], n[k], sizeof **groups, cmp_u64_desc);
    /* At least one product per category of the profile, those the sample
     * lacks included; at most the profile's 10^7. */
    size_t ncats = json_array_size(json_object_get(cat, "categories"));
    uint32_t products = np < ncats ? (uint32_t)ncats : np > 10000000 ? 10000000 : np;
    json_object_set_new(cat, "products", json_integer(products));
    fit_learned(c, "catalog.products", products, NAN,
                "distinct products in the sample (at least one per category)");
    if (s->n >= FIT_MIN_ORDERS && np >= 2) {
        double se;
        double z = ss_fit_zipf((const uint64_t *const *)groups, n, ncat, &se);
        json_object_set_new(cat, "zipf_exponent", fit_real(z));
        fit_learned(c, "catalog.zipf_exponent", z, se, "pooled over the categories");
        for (uint32_t k = 0; k < ncat && s->has[FIT_CATEGORY]; k++) {
            if (n[k] < 5)
                continue;
            const uint64_t *g1[1] = {groups[k]};
            double sek, zk = ss_fit_zipf(g1, &n[k], 1, &sek);
            char path[160];
            snprintf(path, sizeof path, "(zipf exponent of %s)", s->names[FIT_CATEGORY].v[k]);
            fit_learned(c, path, zk, sek, "per category; the profile has one exponent");
        }
    } else {
        fit_kept(c, "catalog.zipf_exponent", "too few orders or products");
    }
    for (uint32_t k = 0; k < ncat; k++)
        free(groups[k]);
    free(groups);
    free(cnt);
    free(pcat);
    free(n);
}

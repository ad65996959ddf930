#include "gen/profile.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/status.h"

/* Built from profile_default.json by the build (see CMakeLists.txt). */
extern const char ss_asset_profile_default_json[];

const char *ss_profile_default_json(void)
{
    return ss_asset_profile_default_json;
}

/* Parsing context: the first error wins and later checks become no-ops, so
 * the loaders can read straight through without checking every step. */
typedef struct pctx {
    const char *name; /* file name for messages */
    json_t *over;     /* the user's override document, or NULL */
    char *err;
    size_t errlen;
    int failed;
} pctx;

static void fail(pctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(pctx *c, const char *path, const char *fmt, ...)
{
    char prefix[512];
    snprintf(prefix, sizeof prefix, "profile '%s': %s: ", c->name, path);
    va_list ap;
    va_start(ap, fmt);
    ss_status_vfail(&c->failed, c->err, c->errlen, prefix, fmt, ap);
    va_end(ap);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

static json_t *get(pctx *c, json_t *obj, const char *path, const char *key, json_type want)
{
    char p[256];
    snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
    if (c->failed)
        return NULL;
    json_t *v = json_object_get(obj, key);
    if (!v) {
        fail(c, p, "missing; add it (see `shopstream gen --print-profile` for the defaults)");
        return NULL;
    }
    int ok = json_typeof(v) == want || (want == JSON_REAL && json_is_number(v));
    if (!ok) {
        const char *w = want == JSON_OBJECT   ? "an object"
                        : want == JSON_ARRAY  ? "an array"
                        : want == JSON_STRING ? "a string"
                                              : "a number";
        fail(c, p, "must be %s, not %s", w, type_name(v));
        return NULL;
    }
    return v;
}

static double num_in(pctx *c, json_t *v, const char *path, double lo, double hi)
{
    if (c->failed)
        return lo;
    if (!json_is_number(v)) {
        fail(c, path, "must be a number, not %s", type_name(v));
        return lo;
    }
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi) {
        fail(c, path, "must be between %g and %g (got %g)", lo, hi, x);
        return lo;
    }
    return x;
}

static double num(pctx *c, json_t *obj, const char *path, const char *key, double lo, double hi)
{
    char p[256];
    snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
    json_t *v = get(c, obj, path, key, JSON_REAL);
    return v ? num_in(c, v, p, lo, hi) : lo;
}

static int64_t integer(pctx *c, json_t *obj, const char *path, const char *key, int64_t lo,
                       int64_t hi)
{
    char p[256];
    snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
    json_t *v = get(c, obj, path, key, JSON_REAL);
    if (!v)
        return lo;
    double x = num_in(c, v, p, (double)lo, (double)hi);
    if (!c->failed && x != floor(x))
        fail(c, p, "must be a whole number (got %g)", x);
    return (int64_t)x;
}

static int64_t money(pctx *c, json_t *obj, const char *path, const char *key, double hi)
{
    double x = num(c, obj, path, key, 0.0, hi);
    return (int64_t)llround(x * 100.0);
}

static char *str(pctx *c, json_t *obj, const char *path, const char *key)
{
    json_t *v = get(c, obj, path, key, JSON_STRING);
    if (!v)
        return ss_strdup("");
    if (json_string_length(v) == 0) {
        char p[256];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
        fail(c, p, "must not be empty");
    }
    return ss_strdup(json_string_value(v));
}

static json_t *arr(pctx *c, json_t *obj, const char *path, const char *key, size_t lo, size_t hi)
{
    json_t *v = get(c, obj, path, key, JSON_ARRAY);
    if (v && (json_array_size(v) < lo || json_array_size(v) > hi)) {
        char p[256];
        snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
        fail(c, p, "must have between %zu and %zu entries (got %zu)", lo, hi, json_array_size(v));
        return NULL;
    }
    return v;
}

/* Reads an array of non-negative weights with a positive sum. */
static double *weights(pctx *c, json_t *a, const char *path, uint32_t *n)
{
    size_t len = a ? json_array_size(a) : 0;
    double *w = ss_calloc(len ? len : 1, sizeof *w), sum = 0.0;
    for (size_t i = 0; i < len; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        w[i] = num_in(c, json_array_get(a, i), p, 0.0, 1e12);
        sum += w[i];
    }
    if (a && !(sum > 0.0))
        fail(c, path, "weights must not all be zero");
    *n = (uint32_t)len;
    return w;
}

static char **strings(pctx *c, json_t *a, const char *path, uint32_t *n)
{
    size_t len = a ? json_array_size(a) : 0;
    char **s = ss_calloc(len ? len : 1, sizeof *s);
    for (size_t i = 0; i < len; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v) || json_string_length(v) == 0) {
            char p[256];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            fail(c, p, "must be a non-empty string");
            s[i] = ss_strdup("");
        } else {
            s[i] = ss_strdup(json_string_value(v));
        }
    }
    *n = (uint32_t)len;
    return s;
}

/* A JSON object mapping names to weights ("reasons": {"timeout": 0.1, ...}). */
static void choice(pctx *c, json_t *obj, const char *path, const char *key, ss_prof_choice *ch)
{
    char p[256];
    snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", key);
    json_t *m = get(c, obj, path, key, JSON_OBJECT);
    size_t n = m ? json_object_size(m) : 0;
    ch->names = ss_calloc(n ? n : 1, sizeof *ch->names);
    ch->weights = ss_calloc(n ? n : 1, sizeof *ch->weights);
    ch->n = 0;
    if (!m)
        return;
    if (n == 0) {
        fail(c, p, "must name at least one reason");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        char q[300];
        snprintf(q, sizeof q, "%s.%s", p, k);
        ch->names[ch->n] = ss_strdup(k);
        ch->weights[ch->n++] = num_in(c, v, q, 0.0, 1e12);
    }
    if (!c->failed && ss_alias_build(&ch->alias, ch->weights, ch->n))
        fail(c, p, "weights must not all be zero");
}

static void choice_free(ss_prof_choice *ch)
{
    for (uint32_t i = 0; i < ch->n; i++)
        free(ch->names[i]);
    free(ch->names);
    free(ch->weights);
    ss_alias_free(&ch->alias);
}

int ss_profile_method_index(const ss_profile *p, const char *name)
{
    for (uint32_t i = 0; i < p->nmethods; i++)
        if (strcmp(p->methods[i].name, name) == 0)
            return (int)i;
    return -1;
}

int ss_profile_category_index(const ss_profile *p, const char *name)
{
    for (uint32_t i = 0; i < p->ncategories; i++)
        if (strcmp(p->categories[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Whether the user's override names key in the object at the given path of
 * object keys and array indexes (a NULL-terminated list; "#3" is index 3).
 * Weights that only the built-in defaults give for a category or method the
 * override removed are dropped; names the user writes must exist. */
static int user_wrote(const pctx *c, const char *const *path)
{
    json_t *v = c->over;
    for (; v && *path; path++) {
        if ((*path)[0] == '#')
            v = json_is_array(v) ? json_array_get(v, (size_t)strtoul(*path + 1, NULL, 10)) : NULL;
        else
            v = json_is_object(v) ? json_object_get(v, *path) : NULL;
    }
    return v != NULL;
}

/* A payment mix: {"card": 0.5, ...} over the profile's methods. */
static double *payment_mix(pctx *c, ss_profile *p, json_t *m, const char *path,
                           const char *const *where)
{
    double *mix = ss_calloc(p->nmethods, sizeof *mix), sum = 0.0;
    if (!json_is_object(m)) {
        fail(c, path, "must be an object of payment method weights");
        return mix;
    }
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        char q[300];
        snprintf(q, sizeof q, "%s.%s", path, k);
        int i = ss_profile_method_index(p, k);
        const char *at[8];
        size_t d = 0;
        for (; where[d] && d < 6; d++)
            at[d] = where[d];
        at[d] = k;
        at[d + 1] = NULL;
        if (i < 0 && !user_wrote(c, at))
            continue;
        if (i < 0) {
            fail(c, q, "unknown payment method; list it in payments.methods first");
            break;
        }
        mix[i] = num_in(c, v, q, 0.0, 1e12);
        sum += mix[i];
    }
    if (!(sum > 0.0))
        fail(c, path, "weights must not all be zero");
    return mix;
}

/* BG/NBD's four parameters, the shop's or a segment's; nothing else. */
static void bgnbd_params(pctx *c, json_t *o, const char *path, ss_prof_bgnbd *bg)
{
    bg->r = num(c, o, path, "r", 1e-4, 1e4);
    bg->alpha_days = num(c, o, path, "alpha_days", 1e-4, 1e7);
    bg->a = num(c, o, path, "a", 1e-4, 1e4);
    bg->b = num(c, o, path, "b", 1e-4, 1e4);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        if (!c->failed && strcmp(k, "r") && strcmp(k, "alpha_days") && strcmp(k, "a") &&
            strcmp(k, "b")) {
            char q[160];
            snprintf(q, sizeof q, "%s.%s", path, k);
            fail(c, q, "unknown key; BG/NBD takes r, alpha_days, a and b");
        }
    }
}

/* Keys that the defaults leave out but a profile may give: a segment's own
 * BG/NBD parameters. load_doc checks their contents. */
static int is_optional_key(const char *path, const char *key)
{
    return !strcmp(key, "bgnbd") && !strncmp(path, "customers.segments[", 19);
}

/* Keys whose values are maps from a user's names to values: any key is fine. */
static int is_map_key(const char *key)
{
    static const char *const maps[] = {"regions", "payment_mix", "category_preference",
                                       "failure_reasons", "reasons"};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        if (strcmp(key, maps[i]) == 0)
            return 1;
    return 0;
}

/* Rejects keys of the override that the defaults do not have: a misspelt key
 * would otherwise be ignored in silence. */
static void check_keys(pctx *c, json_t *over, json_t *def, const char *path, int is_map)
{
    if (c->failed)
        return;
    if (json_is_object(over) && json_is_object(def)) {
        const char *k;
        json_t *v;
        json_object_foreach(over, k, v)
        {
            char p[256];
            snprintf(p, sizeof p, "%s%s%s", path, *path ? "." : "", k);
            json_t *d = json_object_get(def, k);
            if (is_map) {
                /* A map's values share one shape: check against any default entry. */
                void *it = json_object_iter(def);
                d = d ? d : it ? json_object_iter_value(it) : NULL;
            } else if (!d && is_optional_key(path, k)) {
                continue;
            } else if (!d) {
                fail(c, p,
                     "unknown key; check its spelling against `shopstream gen --print-profile`");
                return;
            }
            if (d && !json_is_null(v))
                check_keys(c, v, d, p, is_map_key(k));
        }
    } else if (json_is_array(over) && json_is_array(def) && json_array_size(def) > 0) {
        size_t i;
        json_t *v;
        json_array_foreach(over, i, v)
        {
            char p[256];
            snprintf(p, sizeof p, "%s[%zu]", path, i);
            check_keys(c, v, json_array_get(def, 0), p, 0);
        }
    }
}

static void build_products(ss_profile *p)
{
    ss_rng rng;
    ss_rng_seed(&rng, p->catalog_seed);
    double wsum = 0.0;
    for (uint32_t i = 0; i < p->ncategories; i++)
        wsum += p->categories[i].weight;
    /* Products per category follow the category's weight, at least one each. */
    uint32_t left = p->nproducts - p->ncategories, given = 0;
    for (uint32_t i = 0; i < p->ncategories; i++) {
        uint32_t n = 1 + (uint32_t)floor(left * p->categories[i].weight / wsum);
        p->categories[i].nproducts = n;
        given += n;
    }
    for (uint32_t i = 0; given < p->nproducts; i = (i + 1) % p->ncategories, given++)
        p->categories[i].nproducts++;

    p->products = ss_calloc(p->nproducts, sizeof *p->products);
    uint32_t k = 0;
    for (uint32_t ci = 0; ci < p->ncategories; ci++) {
        ss_prof_category *cat = &p->categories[ci];
        cat->first_product = k;
        double *w = ss_malloc(cat->nproducts * sizeof *w);
        for (uint32_t r = 0; r < cat->nproducts; r++, k++) {
            ss_prof_product *pr = &p->products[k];
            snprintf(pr->id, sizeof pr->id, "P%06u", k + 1);
            pr->category = ci;
            const char *brand = p->brands[ss_rng_below(&rng, p->nbrands)];
            const char *noun = cat->nouns[ss_rng_below(&rng, cat->nnouns)];
            char name[256];
            snprintf(name, sizeof name, "%s %s %c%u", brand, noun,
                     'A' + (char)ss_rng_below(&rng, 26), 10 + ss_rng_below(&rng, 990));
            pr->name = ss_strdup(name);
            /* Lognormal around the category's median; shelf prices end in .99. */
            double x = ss_rng_lognormal(&rng, log(cat->price_median), cat->price_sigma);
            int64_t cents = x >= 10.0 ? (int64_t)ceil(x) * 100 - 1 : llround(x * 100.0);
            pr->price = cents < 99 ? 99 : cents;
            w[r] = 1.0 / pow(r + 1.0, p->zipf_exponent);
        }
        ss_alias_build(&cat->zipf, w, cat->nproducts);
        free(w);
    }
}

static void normalise(double *v, int n, double *max)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += v[i];
    *max = 0.0;
    for (int i = 0; i < n; i++) {
        v[i] = v[i] * n / sum;
        if (v[i] > *max)
            *max = v[i];
    }
}

static void load_catalog(pctx *c, ss_profile *p, json_t *root)
{
    json_t *cat = get(c, root, "", "catalog", JSON_OBJECT);
    if (!cat)
        return;
    p->catalog_seed = (uint64_t)integer(c, cat, "catalog", "seed", 0, 9007199254740991LL);
    p->zipf_exponent = num(c, cat, "catalog", "zipf_exponent", 0.0, 5.0);
    p->brands =
        strings(c, arr(c, cat, "catalog", "brands", 1, 100000), "catalog.brands", &p->nbrands);

    json_t *cats = arr(c, cat, "catalog", "categories", 1, 10000);
    p->ncategories = cats ? (uint32_t)json_array_size(cats) : 0;
    p->categories = ss_calloc(p->ncategories ? p->ncategories : 1, sizeof *p->categories);
    double wsum = 0.0;
    for (uint32_t i = 0; i < p->ncategories && !c->failed; i++) {
        char path[64];
        snprintf(path, sizeof path, "catalog.categories[%u]", i);
        json_t *o = json_array_get(cats, i);
        if (!json_is_object(o)) {
            fail(c, path, "must be an object");
            break;
        }
        ss_prof_category *k = &p->categories[i];
        k->name = str(c, o, path, "name");
        for (uint32_t j = 0; j < i && !c->failed; j++)
            if (strcmp(p->categories[j].name, k->name) == 0)
                fail(c, path, "category name '%s' is used twice; names must be unique", k->name);
        k->weight = num(c, o, path, "weight", 0.0, 1e9);
        wsum += k->weight;
        k->price_median = num(c, o, path, "price_median", 0.01, 1e6);
        k->price_sigma = num(c, o, path, "price_sigma", 0.0, 3.0);
        char np[96];
        snprintf(np, sizeof np, "%s.products", path);
        k->nouns = strings(c, arr(c, o, path, "products", 1, 10000), np, &k->nnouns);
        json_t *t = get(c, o, path, "trend", JSON_OBJECT);
        snprintf(np, sizeof np, "%s.trend", path);
        if (t) {
            k->trend_amplitude = num(c, t, np, "amplitude", 0.0, 0.95);
            k->trend_period_days = num(c, t, np, "period_days", 0.01, 1e5);
            k->trend_phase = num(c, t, np, "phase", -1e6, 1e6);
        }
    }
    if (!c->failed && !(wsum > 0.0))
        fail(c, "catalog.categories", "weights must not all be zero");
    p->nproducts = (uint32_t)integer(c, cat, "catalog", "products", 1, 10000000);
    if (!c->failed && p->nproducts < p->ncategories)
        fail(c, "catalog.products", "must be at least the number of categories (%u)",
             p->ncategories);
}

static void load_places(pctx *c, ss_profile *p, json_t *root)
{
    json_t *regs = get(c, root, "", "regions", JSON_OBJECT);
    p->nregions = regs ? (uint32_t)json_object_size(regs) : 0;
    p->regions = ss_calloc(p->nregions ? p->nregions : 1, sizeof *p->regions);
    if (regs && p->nregions == 0)
        fail(c, "regions", "must define at least one region");
    uint32_t ri = 0;
    const char *rk;
    json_t *rv;
    if (regs) {
        json_object_foreach(regs, rk, rv)
        {
            char path[128];
            snprintf(path, sizeof path, "regions.%s", rk);
            ss_prof_region *r = &p->regions[ri++];
            r->name = ss_strdup(rk);
            r->category_pref = ss_malloc(p->ncategories * sizeof *r->category_pref);
            for (uint32_t i = 0; i < p->ncategories; i++)
                r->category_pref[i] = 1.0;
            if (!json_is_object(rv)) {
                fail(c, path, "must be an object");
                continue;
            }
            json_t *pref = json_object_get(rv, "category_preference");
            const char *k;
            json_t *v;
            if (pref) {
                json_object_foreach(pref, k, v)
                {
                    char q[300];
                    snprintf(q, sizeof q, "%s.category_preference.%s", path, k);
                    int ci = ss_profile_category_index(p, k);
                    const char *at[] = {"regions", rk, "category_preference", k, NULL};
                    if (ci < 0 && user_wrote(c, at))
                        fail(c, q, "unknown category; use a name from catalog.categories");
                    else if (ci >= 0)
                        r->category_pref[ci] = num_in(c, v, q, 0.0, 1e6);
                }
            }
            json_t *mix = json_object_get(rv, "payment_mix");
            if (mix) {
                char q[200];
                snprintf(q, sizeof q, "%s.payment_mix", path);
                const char *where[] = {"regions", rk, "payment_mix", NULL};
                r->payment_mix = payment_mix(c, p, mix, q, where);
            }
        }
    }

    json_t *cs = arr(c, root, "", "countries", 1, 10000);
    p->ncountries = cs ? (uint32_t)json_array_size(cs) : 0;
    p->countries = ss_calloc(p->ncountries ? p->ncountries : 1, sizeof *p->countries);
    uint32_t ncities = 0;
    for (uint32_t i = 0; i < p->ncountries; i++) {
        json_t *cl = json_object_get(json_array_get(cs, i), "cities");
        ncities += json_is_array(cl) ? (uint32_t)json_array_size(cl) : 0;
    }
    p->cities = ss_calloc(ncities ? ncities : 1, sizeof *p->cities);
    double *cw = ss_calloc(p->ncountries ? p->ncountries : 1, sizeof *cw);
    for (uint32_t i = 0; i < p->ncountries && !c->failed; i++) {
        char path[64];
        snprintf(path, sizeof path, "countries[%u]", i);
        json_t *o = json_array_get(cs, i);
        if (!json_is_object(o)) {
            fail(c, path, "must be an object");
            break;
        }
        ss_prof_country *k = &p->countries[i];
        k->code = str(c, o, path, "code");
        k->name = str(c, o, path, "name");
        for (uint32_t j = 0; j < i && !c->failed; j++)
            if (strcmp(p->countries[j].code, k->code) == 0 ||
                strcmp(p->countries[j].name, k->name) == 0)
                fail(c, path, "country '%s' (%s) is listed twice", k->name, k->code);
        char *region = str(c, o, path, "region");
        k->region = UINT32_MAX;
        for (uint32_t r = 0; r < p->nregions; r++)
            if (strcmp(p->regions[r].name, region) == 0)
                k->region = r;
        if (!c->failed && k->region == UINT32_MAX)
            fail(c, path, "region '%s' is not defined in regions", region);
        free(region);
        k->weight = cw[i] = num(c, o, path, "weight", 0.0, 1e9);
        k->vat = num(c, o, path, "vat", 0.0, 1.0);
        k->shipping = money(c, o, path, "shipping", 1e6);
        json_t *mix = json_object_get(o, "payment_mix");
        char q[96];
        snprintf(q, sizeof q, "%s.payment_mix", path);
        char idx[24];
        snprintf(idx, sizeof idx, "#%u", i);
        const char *where[] = {"countries", idx, "payment_mix", NULL};
        if (mix)
            k->payment_mix = payment_mix(c, p, mix, q, where);
        else if (!c->failed && p->regions[k->region].payment_mix) {
            k->payment_mix = ss_malloc(p->nmethods * sizeof *k->payment_mix);
            memcpy(k->payment_mix, p->regions[k->region].payment_mix,
                   p->nmethods * sizeof *k->payment_mix);
        } else if (!c->failed) {
            /* Only when nothing failed is k->region a valid index. */
            fail(c, q, "missing, and region '%s' has no payment_mix to inherit",
                 p->regions[k->region].name);
        }
        if (!c->failed)
            ss_alias_build(&k->method_alias, k->payment_mix, p->nmethods);

        snprintf(q, sizeof q, "%s.cities", path);
        json_t *cl = arr(c, o, path, "cities", 1, 100000);
        k->first_city = p->ncities;
        k->ncities = cl ? (uint32_t)json_array_size(cl) : 0;
        double *pop = ss_calloc(k->ncities ? k->ncities : 1, sizeof *pop);
        for (uint32_t j = 0; j < k->ncities && !c->failed; j++) {
            char cp[128];
            snprintf(cp, sizeof cp, "%s[%u]", q, j);
            json_t *co = json_array_get(cl, j);
            if (!json_is_object(co)) {
                fail(c, cp, "must be an object");
                break;
            }
            ss_prof_city *city = &p->cities[p->ncities++];
            city->name = str(c, co, cp, "name");
            for (uint32_t m = 0; m + 1 < p->ncities && !c->failed; m++)
                if (strcmp(p->cities[m].name, city->name) == 0)
                    fail(c, cp,
                         "city name '%s' is used twice; city names are keys and must be unique",
                         city->name);
            city->lat = num(c, co, cp, "lat", -90.0, 90.0);
            city->lon = num(c, co, cp, "lon", -180.0, 180.0);
            city->population = pop[j] = num(c, co, cp, "population", 1.0, 1e9);
            city->country = i;
        }
        if (!c->failed)
            ss_alias_build(&k->city_alias, pop, k->ncities);
        free(pop);
    }
    if (!c->failed && ss_alias_build(&p->country_alias, cw, p->ncountries))
        fail(c, "countries", "weights must not all be zero");
    free(cw);
}

static void load_demand(pctx *c, ss_profile *p, json_t *root)
{
    json_t *shop = get(c, root, "", "shop", JSON_OBJECT);
    if (shop) {
        char *cur = str(c, shop, "shop", "currency");
        if (!c->failed && (strlen(cur) != 3 || strspn(cur, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3))
            fail(c, "shop.currency", "must be a three-letter ISO 4217 code such as EUR (got '%s')",
                 cur);
        snprintf(p->currency, sizeof p->currency, "%s", cur);
        free(cur);
        p->free_shipping_threshold = money(c, shop, "shop", "free_shipping_threshold", 1e9);
        p->utc_offset_ms =
            integer(c, shop, "shop", "utc_offset_minutes", -14 * 60, 14 * 60) * 60000;
    }

    json_t *a = get(c, root, "", "arrivals", JSON_OBJECT);
    if (a) {
        p->rate = num(c, a, "arrivals", "rate", 1e-6, 1e7);
        uint32_t n;
        double *d =
            weights(c, arr(c, a, "arrivals", "daily_curve", 24, 24), "arrivals.daily_curve", &n);
        if (!c->failed) {
            memcpy(p->daily_curve, d, sizeof p->daily_curve);
            normalise(p->daily_curve, 24, &p->daily_max);
        }
        free(d);
        d = weights(c, arr(c, a, "arrivals", "weekly_curve", 7, 7), "arrivals.weekly_curve", &n);
        if (!c->failed) {
            memcpy(p->weekly_curve, d, sizeof p->weekly_curve);
            normalise(p->weekly_curve, 7, &p->weekly_max);
        }
        free(d);
        p->day_dispersion = num(c, a, "arrivals", "day_dispersion", 0.0, 2.0);
        p->trend_per_day = num(c, a, "arrivals", "trend_per_day", -1.0, 1.0);
        p->active_days = num(c, a, "arrivals", "active_days", 0.0, 1e6);
    }

    json_t *cu = get(c, root, "", "customers", JSON_OBJECT);
    if (cu) {
        p->repeat_share = num(c, cu, "customers", "repeat_share", 0.0, 1.0);
        p->repeat_warmup = num(c, cu, "customers", "repeat_warmup", 0.0, 1e9);
        p->max_pool = (uint64_t)integer(c, cu, "customers", "max_pool", 1, 1000000000);
        char *model = str(c, cu, "customers", "model");
        if (!c->failed && strcmp(model, "pool") && strcmp(model, "bgnbd"))
            fail(c, "customers.model", "must be \"pool\" or \"bgnbd\" (got '%s')", model);
        p->bgnbd = !c->failed && !strcmp(model, "bgnbd");
        free(model);
        json_t *bg = get(c, cu, "customers", "bgnbd", JSON_OBJECT);
        if (bg)
            bgnbd_params(c, bg, "customers.bgnbd", &p->bg);
        json_t *segs = arr(c, cu, "customers", "segments", 1, 64);
        p->nsegments = segs ? (uint32_t)json_array_size(segs) : 0;
        p->segments = ss_calloc(p->nsegments ? p->nsegments : 1, sizeof *p->segments);
        double *w = ss_calloc(p->nsegments ? p->nsegments : 1, sizeof *w);
        for (uint32_t i = 0; i < p->nsegments && !c->failed; i++) {
            char path[64];
            snprintf(path, sizeof path, "customers.segments[%u]", i);
            json_t *o = json_array_get(segs, i);
            ss_prof_segment *s = &p->segments[i];
            s->name = str(c, o, path, "name");
            s->share = w[i] = num(c, o, path, "share", 0.0, 1e9);
            s->repeat_weight = num(c, o, path, "repeat_weight", 0.0, 1e9);
            s->extra_discount_percent = (int)integer(c, o, path, "extra_discount_percent", 0, 50);
            s->bg = p->bg;
            json_t *sbg = json_object_get(o, "bgnbd");
            if (sbg && !json_is_null(sbg) && !c->failed) {
                char q[96];
                snprintf(q, sizeof q, "%s.bgnbd", path);
                if (json_is_object(sbg))
                    bgnbd_params(c, sbg, q, &s->bg);
                else
                    fail(c, q, "must be an object, not %s", type_name(sbg));
            }
        }
        if (!c->failed && ss_alias_build(&p->segment_alias, w, p->nsegments))
            fail(c, "customers.segments", "shares must not all be zero");
        free(w);
    }

    json_t *b = get(c, root, "", "basket", JSON_OBJECT);
    if (b) {
        p->quantity_weights = weights(c, arr(c, b, "basket", "quantity_weights", 1, 1000),
                                      "basket.quantity_weights", &p->nquantities);
        if (!c->failed)
            ss_alias_build(&p->quantity_alias, p->quantity_weights, p->nquantities);
    }

    json_t *d = get(c, root, "", "discounts", JSON_OBJECT);
    if (d) {
        p->discount_period_ms = integer(c, d, "discounts", "period_hours", 1, 8760) * 3600000LL;
        json_t *steps = arr(c, d, "discounts", "steps_percent", 1, 100);
        uint32_t n = steps ? (uint32_t)json_array_size(steps) : 0, nw = 0;
        p->discount_steps = ss_calloc(n ? n : 1, sizeof *p->discount_steps);
        for (uint32_t i = 0; i < n; i++) {
            char q[64];
            snprintf(q, sizeof q, "discounts.steps_percent[%u]", i);
            p->discount_steps[i] = (int)num_in(c, json_array_get(steps, i), q, 0.0, 50.0);
        }
        double *w = weights(c, arr(c, d, "discounts", "step_weights", 1, 100),
                            "discounts.step_weights", &nw);
        if (!c->failed && nw != n)
            fail(c, "discounts.step_weights",
                 "must have one weight per step (%u steps, %u weights)", n, nw);
        p->ndiscount_steps = n;
        p->discount_step_cum = w;
        for (uint32_t i = 1; i < nw; i++)
            w[i] += w[i - 1];
    }
}

static void load_payments(pctx *c, ss_profile *p, json_t *root)
{
    json_t *pay = get(c, root, "", "payments", JSON_OBJECT);
    if (!pay)
        return;
    json_t *ms = arr(c, pay, "payments", "methods", 1, 255);
    p->nmethods = ms ? (uint32_t)json_array_size(ms) : 0;
    p->methods = ss_calloc(p->nmethods ? p->nmethods : 1, sizeof *p->methods);
    for (uint32_t i = 0; i < p->nmethods && !c->failed; i++) {
        char path[64];
        snprintf(path, sizeof path, "payments.methods[%u]", i);
        json_t *o = json_array_get(ms, i);
        p->methods[i].name = str(c, o, path, "name");
        for (uint32_t j = 0; j < i && !c->failed; j++)
            if (strcmp(p->methods[j].name, p->methods[i].name) == 0)
                fail(c, path, "payment method '%s' is listed twice", p->methods[i].name);
        p->methods[i].failure_rate = num(c, o, path, "failure_rate", 0.0, 1.0);
    }
    choice(c, pay, "payments", "failure_reasons", &p->failure_reasons);
    json_t *fd = get(c, pay, "payments", "first_attempt_delay_seconds", JSON_OBJECT);
    if (fd) {
        p->first_delay_min_s =
            num(c, fd, "payments.first_attempt_delay_seconds", "min", 0.001, 86400);
        p->first_delay_mean_s =
            num(c, fd, "payments.first_attempt_delay_seconds", "mean", p->first_delay_min_s, 86400);
    }
    p->retry_share = num(c, pay, "payments", "retry_share", 0.0, 1.0);
    p->max_attempts = (int)integer(c, pay, "payments", "max_attempts", 1, 20);
    json_t *rd = get(c, pay, "payments", "retry_delay_seconds", JSON_OBJECT);
    if (rd) {
        p->retry_delay_min_s = num(c, rd, "payments.retry_delay_seconds", "min", 0.001, 86400);
        p->retry_delay_mean_s =
            num(c, rd, "payments.retry_delay_seconds", "mean", p->retry_delay_min_s, 86400);
    }
    json_t *ud = get(c, pay, "payments", "unpaid_cancel_delay_minutes", JSON_OBJECT);
    if (ud) {
        p->unpaid_cancel_min_min =
            num(c, ud, "payments.unpaid_cancel_delay_minutes", "min", 0.001, 1e5);
        p->unpaid_cancel_max_min = num(c, ud, "payments.unpaid_cancel_delay_minutes", "max",
                                       p->unpaid_cancel_min_min, 1e5);
    }

    json_t *cn = get(c, root, "", "cancellations", JSON_OBJECT);
    if (cn) {
        p->cancel_rate = num(c, cn, "cancellations", "rate", 0.0, 1.0);
        p->cancel_median_min = num(c, cn, "cancellations", "delay_median_minutes", 0.01, 1e6);
        p->cancel_sigma = num(c, cn, "cancellations", "delay_sigma", 0.0, 5.0);
        p->cancel_min_min = num(c, cn, "cancellations", "delay_min_minutes", 0.001, 1e6);
        p->cancel_max_h =
            num(c, cn, "cancellations", "delay_max_hours", p->cancel_min_min / 60.0, 1e5);
        choice(c, cn, "cancellations", "reasons", &p->cancel_reasons);
    }
}

static int load_doc(json_t *root, json_t *over, const char *name, ss_profile **out, char *err,
                    size_t errlen)
{
    pctx c = {.name = name, .over = over, .err = err, .errlen = errlen};
    ss_profile *p = ss_calloc(1, sizeof *p);
    /* Order matters: places refer to categories and payment methods by name. */
    load_catalog(&c, p, root);
    load_payments(&c, p, root);
    load_places(&c, p, root);
    load_demand(&c, p, root);
    if (!c.failed)
        build_products(p);
    if (c.failed) {
        ss_profile_free(p);
        return SS_EINVAL;
    }
    *out = p;
    return SS_OK;
}

/* JSON Merge Patch (RFC 7386): objects merge key by key, null deletes a key,
 * anything else replaces. */
static void merge_patch(json_t *target, json_t *patch)
{
    const char *k;
    json_t *v;
    json_object_foreach(patch, k, v)
    {
        json_t *t = json_object_get(target, k);
        if (json_is_null(v))
            json_object_del(target, k);
        else if (json_is_object(v) && json_is_object(t))
            merge_patch(t, v);
        else
            json_object_set(target, k, v);
    }
}

/* Parses the defaults and merges the override into them. */
static json_t *merged(const char *text, const char *name, char *err, size_t errlen)
{
    json_error_t je;
    json_t *def = json_loads(ss_profile_default_json(), 0, &je);
    if (!def) {
        snprintf(err, errlen, "built-in profile: %s (line %d)", je.text, je.line);
        return NULL;
    }
    if (!text)
        return def;
    json_t *over = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!over) {
        snprintf(err, errlen, "profile '%s': not valid JSON at line %d, column %d: %s", name,
                 je.line, je.column, je.text);
        json_decref(def);
        return NULL;
    }
    pctx c = {.name = name, .err = err, .errlen = errlen};
    if (!json_is_object(over))
        fail(&c, "(top level)", "must be a JSON object, not %s", type_name(over));
    check_keys(&c, over, def, "", 0);
    if (!c.failed)
        merge_patch(def, over);
    json_decref(over);
    if (c.failed) {
        json_decref(def);
        return NULL;
    }
    return def;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "profile '%s': cannot open: %s; check the path given to --profile",
                 path, strerror(errno));
        return NULL;
    }
    ss_buf b;
    ss_buf_init(&b, 65536);
    size_t n;
    do {
        ss_buf_reserve(&b, 65536);
        n = fread(b.data + b.len, 1, 65536, f);
        b.len += n;
    } while (n > 0 && b.len < 64u << 20);
    int bad = ferror(f) || b.len >= 64u << 20;
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "profile '%s': cannot read it whole (unreadable or over 64 MB)",
                 path);
        ss_buf_free(&b);
        return NULL;
    }
    ss_buf_cstr(&b);
    return b.data;
}

int ss_profile_load_text(const char *text, const char *name, ss_profile **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    json_t *root = merged(text, name, err, errlen);
    if (!root)
        return SS_EINVAL;
    json_t *over = text ? json_loads(text, 0, NULL) : NULL;
    int rc = load_doc(root, over, name, out, err, errlen);
    json_decref(over);
    json_decref(root);
    return rc;
}

int ss_profile_load(const char *path, ss_profile **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path)
        return ss_profile_load_text(NULL, "built-in", out, err, errlen);
    char *text = read_file(path, err, errlen);
    if (!text)
        return SS_EINVAL;
    int rc = ss_profile_load_text(text, path, out, err, errlen);
    free(text);
    return rc;
}

int ss_profile_dump(const char *path, char **json_out, char *err, size_t errlen)
{
    *json_out = NULL;
    char *text = NULL;
    if (path && !(text = read_file(path, err, errlen)))
        return SS_EINVAL;
    const char *name = path ? path : "built-in";
    json_t *root = merged(text, name, err, errlen);
    /* What is printed must be a profile that loads: validate it first. */
    json_t *over = text ? json_loads(text, 0, NULL) : NULL;
    ss_profile *p = NULL;
    int rc = root ? load_doc(root, over, name, &p, err, errlen) : SS_EINVAL;
    ss_profile_free(p);
    json_decref(over);
    free(text);
    if (rc == SS_OK)
        *json_out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return rc;
}

void ss_profile_free(ss_profile *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nbrands; i++)
        free(p->brands[i]);
    free(p->brands);
    for (uint32_t i = 0; i < p->ncategories; i++) {
        ss_prof_category *k = &p->categories[i];
        free(k->name);
        for (uint32_t j = 0; j < k->nnouns; j++)
            free(k->nouns[j]);
        free(k->nouns);
        ss_alias_free(&k->zipf);
    }
    free(p->categories);
    if (p->products)
        for (uint32_t i = 0; i < p->nproducts; i++)
            free(p->products[i].name);
    free(p->products);
    for (uint32_t i = 0; i < p->nregions; i++) {
        free(p->regions[i].name);
        free(p->regions[i].category_pref);
        free(p->regions[i].payment_mix);
    }
    free(p->regions);
    for (uint32_t i = 0; i < p->ncountries; i++) {
        ss_prof_country *k = &p->countries[i];
        free(k->code);
        free(k->name);
        free(k->payment_mix);
        ss_alias_free(&k->city_alias);
        ss_alias_free(&k->method_alias);
    }
    free(p->countries);
    for (uint32_t i = 0; i < p->ncities; i++)
        free(p->cities[i].name);
    free(p->cities);
    ss_alias_free(&p->country_alias);
    for (uint32_t i = 0; i < p->nsegments; i++)
        free(p->segments[i].name);
    free(p->segments);
    ss_alias_free(&p->segment_alias);
    free(p->quantity_weights);
    ss_alias_free(&p->quantity_alias);
    free(p->discount_steps);
    free(p->discount_step_cum);
    for (uint32_t i = 0; i < p->nmethods; i++)
        free(p->methods[i].name);
    free(p->methods);
    choice_free(&p->failure_reasons);
    choice_free(&p->cancel_reasons);
    free(p);
}

/* Unit tests of gen/profile: the built-in profile loads and is sane, valid
 * overrides take effect, and every kind of mistake in an override returns
 * SS_EINVAL with a message naming the file and the field. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "common/status.h"
#include "gen/profile.h"

static char err[1024];

/* Loaders must clear their output on failure: tests preset it to this. */
static ss_profile sentinel;

static void test_builtin(void)
{
    ss_profile *p = NULL;
    err[0] = '\0';
    if (!CHECK_EQ_INT(ss_profile_load(NULL, &p, err, sizeof err), SS_OK) || !CHECK(p)) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_STR(p->currency, "EUR");
    CHECK(p->ncategories >= 1);
    CHECK(p->nproducts >= p->ncategories);
    CHECK(p->nmethods >= 1);
    CHECK(p->ncountries >= 1);
    CHECK(p->ncities >= p->ncountries);
    CHECK(p->nregions >= 1);
    CHECK(p->rate > 0.0);
    CHECK(ss_profile_method_index(p, "card") >= 0);
    CHECK_EQ_INT(ss_profile_method_index(p, "bitcoin"), -1);
    CHECK(ss_profile_category_index(p, "Electronics") >= 0);
    CHECK_EQ_INT(ss_profile_category_index(p, "electronics"), -1);

    /* Curves are normalised to mean 1. */
    double d = 0.0, w = 0.0;
    for (int i = 0; i < 24; i++)
        d += p->daily_curve[i];
    for (int i = 0; i < 7; i++)
        w += p->weekly_curve[i];
    CHECK_NEAR(d / 24.0, 1.0, 1e-9);
    CHECK_NEAR(w / 7.0, 1.0, 1e-9);

    /* Every product has an id, a name, a category and a shelf price. */
    int bad = 0;
    uint32_t per_cat = 0;
    for (uint32_t i = 0; i < p->nproducts; i++) {
        const ss_prof_product *pr = &p->products[i];
        bad += pr->id[0] != 'P' || !pr->name || !*pr->name || pr->category >= p->ncategories ||
               pr->price < 99;
    }
    for (uint32_t i = 0; i < p->ncategories; i++)
        per_cat += p->categories[i].nproducts;
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(per_cat, p->nproducts);
    /* Every country's cities lie in the city table and point back to it. */
    bad = 0;
    for (uint32_t i = 0; i < p->ncountries; i++) {
        const ss_prof_country *k = &p->countries[i];
        bad += k->region >= p->nregions || k->ncities == 0 || !k->payment_mix ||
               k->first_city + k->ncities > p->ncities;
        for (uint32_t j = 0; !bad && j < k->ncities; j++)
            bad += p->cities[k->first_city + j].country != i;
    }
    CHECK_EQ_INT(bad, 0);
    ss_profile_free(p);
    ss_profile_free(NULL);
}

/* The catalogue is a function of the profile: two loads agree. */
static void test_deterministic(void)
{
    ss_profile *a = NULL, *b = NULL;
    if (!CHECK_EQ_INT(ss_profile_load_text(NULL, "a", &a, err, sizeof err), SS_OK) ||
        !CHECK_EQ_INT(ss_profile_load_text("{}", "b", &b, err, sizeof err), SS_OK)) {
        ss_profile_free(a);
        return;
    }
    int diff = a->nproducts != b->nproducts;
    for (uint32_t i = 0; !diff && i < a->nproducts; i++)
        diff += strcmp(a->products[i].name, b->products[i].name) != 0 ||
                a->products[i].price != b->products[i].price;
    CHECK_EQ_INT(diff, 0);
    ss_profile_free(a);
    ss_profile_free(b);
}

static void test_valid_overrides(void)
{
    ss_profile *p = NULL;
    const char *doc = "{\"cancellations\": {\"rate\": 0.5},"
                      " \"shop\": {\"currency\": \"USD\", \"free_shipping_threshold\": 12.34},"
                      " \"catalog\": {\"products\": 100, \"brands\": [\"Only\"]},"
                      " \"payments\": {\"max_attempts\": 1}}";
    if (!CHECK_EQ_INT(ss_profile_load_text(doc, "ok.json", &p, err, sizeof err), SS_OK)) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_NEAR(p->cancel_rate, 0.5, 0.0);
    CHECK_STR(p->currency, "USD");
    CHECK_EQ_INT(p->free_shipping_threshold, 1234);
    CHECK_EQ_INT(p->nproducts, 100);
    CHECK_EQ_INT(p->nbrands, 1);
    CHECK_EQ_INT(p->max_attempts, 1);
    CHECK_EQ_INT(strncmp(p->products[0].name, "Only ", 5), 0);
    ss_profile_free(p);

    /* Regions may be added; countries may name them. */
    const char *region = "{\"regions\": {\"oceania\": {\"payment_mix\": {\"card\": 1}}},"
                         " \"countries\": [{\"code\": \"AU\", \"name\": \"Australia\","
                         " \"region\": \"oceania\", \"weight\": 1, \"vat\": 0.1, \"shipping\": 9,"
                         " \"cities\": [{\"name\": \"Sydney\", \"lat\": -33.87, \"lon\": 151.21,"
                         " \"population\": 5000000}]}]}";
    if (CHECK_EQ_INT(ss_profile_load_text(region, "au.json", &p, err, sizeof err), SS_OK)) {
        CHECK_EQ_INT(p->ncountries, 1);
        CHECK_EQ_INT(p->ncities, 1);
        CHECK_STR(p->regions[p->countries[0].region].name, "oceania");
        CHECK_NEAR(p->countries[0].payment_mix[ss_profile_method_index(p, "card")], 1.0, 0.0);
        CHECK_EQ_INT(p->countries[0].shipping, 900);
        ss_profile_free(p);
    } else {
        fprintf(stderr, "  %s\n", err);
    }
}

/* A country document with the given region and cities (JSON text). */
static void country_doc(char *out, size_t n, const char *region, const char *cities)
{
    snprintf(out, n,
             "{\"countries\": [{\"code\": \"DE\", \"name\": \"Germany\", \"region\": \"%s\","
             " \"weight\": 1, \"vat\": 0.19, \"shipping\": 4.99, \"cities\": [%s]}]}",
             region, cities);
}

/* Loads the override, expects SS_EINVAL, no profile, and a message that
 * contains each of the needles. */
static void expect_invalid(int line, const char *doc, const char *needle1, const char *needle2)
{
    ss_profile *p = &sentinel;
    err[0] = '\0';
    int rc = ss_profile_load_text(doc, "bad.json", &p, err, sizeof err);
    check_report(rc == SS_EINVAL, __FILE__, line, "rc %d for %s", rc, doc);
    check_report(p == NULL, __FILE__, line, "profile not cleared on failure");
    if (rc == SS_OK)
        ss_profile_free(p);
    check_report(strncmp(err, "profile 'bad.json': ", 20) == 0, __FILE__, line,
                 "message does not name the file: \"%s\"", err);
    check_report(strstr(err, needle1) != NULL, __FILE__, line, "\"%s\" does not contain \"%s\"",
                 err, needle1);
    if (needle2)
        check_report(strstr(err, needle2) != NULL, __FILE__, line, "\"%s\" does not contain \"%s\"",
                     err, needle2);
}

#define EXPECT_INVALID(doc, n1, n2) expect_invalid(__LINE__, (doc), (n1), (n2))

static void test_errors(void)
{
    char doc[2048];
    const char *berlin = "{\"name\": \"Berlin\", \"lat\": 52.5, \"lon\": 13.4, \"population\": 1}";

    /* Syntax and shape of the document. */
    EXPECT_INVALID("{", "not valid JSON", "line 1");
    EXPECT_INVALID("{\"shop\": {}} trailing", "not valid JSON", NULL);
    EXPECT_INVALID("", "not valid JSON", NULL);
    EXPECT_INVALID("[1, 2]", "(top level)", "must be a JSON object, not an array");
    EXPECT_INVALID("42", "not valid JSON", NULL); /* jansson wants an object or array */
    EXPECT_INVALID("{\"shop\": {\"currency\": \"EUR\", \"currency\": \"USD\"}}", "duplicate", NULL);

    /* Unknown keys, at every depth. */
    EXPECT_INVALID("{\"shoop\": {}}", "shoop: unknown key", NULL);
    EXPECT_INVALID("{\"catalog\": {\"sed\": 1}}", "catalog.sed: unknown key", NULL);
    EXPECT_INVALID("{\"catalog\": {\"categories\": [{\"nam\": \"X\"}]}}",
                   "catalog.categories[0].nam: unknown key", NULL);
    EXPECT_INVALID("{\"regions\": {\"europe\": {\"payment_mx\": {}}}}",
                   "regions.europe.payment_mx: unknown key", NULL);

    /* Wrong types. */
    EXPECT_INVALID("{\"catalog\": {\"zipf_exponent\": \"steep\"}}", "catalog.zipf_exponent",
                   "must be a number, not a string");
    EXPECT_INVALID("{\"shop\": 5}", "shop", "must be an object, not a number");
    EXPECT_INVALID("{\"catalog\": {\"brands\": \"Aurora\"}}", "catalog.brands",
                   "must be an array, not a string");
    EXPECT_INVALID("{\"catalog\": {\"brands\": [\"A\", 7]}}", "catalog.brands[1]",
                   "non-empty string");
    /* null deletes a key (JSON Merge Patch): a required one is then missing. */
    EXPECT_INVALID("{\"shop\": {\"currency\": null}}", "shop.currency", "missing");
    EXPECT_INVALID("{\"cancellations\": {\"rate\": true}}", "cancellations.rate", "not a boolean");
    EXPECT_INVALID("{\"countries\": [5]}", "countries[0]", "must be an object");
    EXPECT_INVALID("{\"catalog\": {\"categories\": [\"Books\"]}}", "catalog.categories[0]",
                   "must be an object");
    EXPECT_INVALID("{\"regions\": {\"europe\": 5}}", "regions.europe", "must be an object");
    EXPECT_INVALID("{\"arrivals\": {\"daily_curve\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
                   "1,1,1,1,\"x\"]}}",
                   "arrivals.daily_curve[23]", "must be a number");

    /* Out of range. */
    EXPECT_INVALID("{\"cancellations\": {\"rate\": 1.5}}", "cancellations.rate",
                   "between 0 and 1 (got 1.5)");
    EXPECT_INVALID("{\"cancellations\": {\"rate\": -0.1}}", "cancellations.rate", "between");
    EXPECT_INVALID("{\"catalog\": {\"products\": 0}}", "catalog.products", "between");
    EXPECT_INVALID("{\"catalog\": {\"products\": 10.5}}", "catalog.products", "whole number");
    EXPECT_INVALID("{\"catalog\": {\"products\": 3}}", "catalog.products",
                   "at least the number of categories");
    EXPECT_INVALID("{\"shop\": {\"utc_offset_minutes\": 900}}", "shop.utc_offset_minutes",
                   "between -840 and 840");
    EXPECT_INVALID("{\"shop\": {\"currency\": \"euro\"}}", "shop.currency", "ISO 4217");
    EXPECT_INVALID("{\"shop\": {\"currency\": \"\"}}", "shop.currency", NULL);
    EXPECT_INVALID("{\"payments\": {\"max_attempts\": 0}}", "payments.max_attempts", "between");
    EXPECT_INVALID("{\"arrivals\": {\"rate\": 0}}", "arrivals.rate", "between");
    EXPECT_INVALID("{\"arrivals\": {\"weekly_curve\": [0, 0, 0, 0, 0, 0, 0]}}",
                   "arrivals.weekly_curve", "must not all be zero");
    EXPECT_INVALID("{\"arrivals\": {\"weekly_curve\": [1, 1, 1]}}", "arrivals.weekly_curve",
                   "between 7 and 7 entries (got 3)");
    EXPECT_INVALID("{\"discounts\": {\"steps_percent\": [0, 10], \"step_weights\": [1]}}",
                   "discounts.step_weights", "one weight per step");
    EXPECT_INVALID("{\"payments\": {\"failure_reasons\": {\"timeout\": -1}}}",
                   "payments.failure_reasons.timeout", "between");
    country_doc(doc, sizeof doc, "europe",
                "{\"name\": \"Berlin\", \"lat\": 95, \"lon\": 13.4, \"population\": 1}");
    EXPECT_INVALID(doc, "countries[0].cities[0].lat", "between -90 and 90");

    /* Names that must be unique, and references that must resolve. */
    char cities[512];
    snprintf(cities, sizeof cities, "%s, %s", berlin, berlin);
    country_doc(doc, sizeof doc, "europe", cities);
    EXPECT_INVALID(doc, "countries[0].cities[1]", "city name 'Berlin' is used twice");
    country_doc(doc, sizeof doc, "atlantis", berlin);
    EXPECT_INVALID(doc, "countries[0]", "region 'atlantis' is not defined in regions");
    EXPECT_INVALID("{\"regions\": {\"europe\": {\"payment_mix\": {\"bitcoin\": 1}}}}",
                   "regions.europe.payment_mix.bitcoin", "unknown payment method");
    EXPECT_INVALID("{\"countries\": [{\"code\": \"DE\", \"name\": \"Germany\", \"region\": "
                   "\"europe\", \"weight\": 1, \"vat\": 0.19, \"shipping\": 4.99, \"cities\": [{"
                   "\"name\": \"Berlin\", \"lat\": 52.5, \"lon\": 13.4, \"population\": 1}],"
                   " \"payment_mix\": {\"cheque\": 1}}]}",
                   "countries[0].payment_mix.cheque", "unknown payment method");
    EXPECT_INVALID("{\"regions\": {\"europe\": {\"category_preference\": {\"Socks\": 2}}}}",
                   "regions.europe.category_preference.Socks", "unknown category");
    EXPECT_INVALID("{\"payments\": {\"methods\": [{\"name\": \"card\", \"failure_rate\": 0},"
                   " {\"name\": \"card\", \"failure_rate\": 0}]}}",
                   "payments.methods[1]", "listed twice");
    EXPECT_INVALID("{\"regions\": {\"mars\": {}}, \"countries\": [{\"code\": \"XM\", \"name\": "
                   "\"Olympus\", \"region\": \"mars\", \"weight\": 1, \"vat\": 0, \"shipping\": 0,"
                   " \"cities\": [{\"name\": \"Base\", \"lat\": 0, \"lon\": 0, \"population\": 1}]"
                   "}]}",
                   "countries[0].payment_mix", "region 'mars' has no payment_mix");

    /* Empty arrays and objects where at least one entry is needed. */
    EXPECT_INVALID("{\"catalog\": {\"brands\": []}}", "catalog.brands",
                   "between 1 and 100000 entries (got 0)");
    EXPECT_INVALID("{\"catalog\": {\"categories\": []}}", "catalog.categories", "(got 0)");
    EXPECT_INVALID("{\"countries\": []}", "countries", "(got 0)");
    EXPECT_INVALID("{\"payments\": {\"methods\": []}}", "payments.methods", "(got 0)");
    EXPECT_INVALID("{\"customers\": {\"segments\": []}}", "customers.segments", "(got 0)");
    EXPECT_INVALID("{\"basket\": {\"quantity_weights\": []}}", "basket.quantity_weights",
                   "(got 0)");
    EXPECT_INVALID("{\"discounts\": {\"steps_percent\": []}}", "discounts.steps_percent",
                   "(got 0)");
    country_doc(doc, sizeof doc, "europe", "");
    EXPECT_INVALID(doc, "countries[0].cities", "(got 0)");
    EXPECT_INVALID("{\"catalog\": {\"categories\": [{\"name\": \"X\", \"weight\": 1, "
                   "\"price_median\": 10, \"price_sigma\": 0.5, \"products\": [], \"trend\": "
                   "{\"amplitude\": 0, \"period_days\": 1, \"phase\": 0}}]}}",
                   "catalog.categories[0].products", "(got 0)");
    EXPECT_INVALID("{\"catalog\": {\"categories\": [{\"name\": \"X\"}]}}",
                   "catalog.categories[0].weight", "missing");
}

/* Overrides follow JSON Merge Patch: null deletes, and a smaller catalogue or
 * method list drops the defaults' weights for what it removed. */
static void test_merge_patch(void)
{
    char msg[1024];
    ss_profile *p = NULL;
    const char *doc =
        "{\"payments\": {\"methods\": [{\"name\": \"card\", \"failure_rate\": 0.1},"
        " {\"name\": \"voucher\", \"failure_rate\": 0.01}]},"
        " \"catalog\": {\"products\": 40, \"categories\": [{\"name\": \"Books\", \"weight\": 1,"
        " \"price_median\": 10, \"price_sigma\": 0.3, \"products\": [\"Novel\"],"
        " \"trend\": {\"amplitude\": 0, \"period_days\": 10, \"phase\": 0}}]},"
        " \"regions\": {\"europe\": {\"category_preference\": {\"Books\": 2}}}}";
    if (CHECK_EQ_INT(ss_profile_load_text(doc, "small.json", &p, msg, sizeof msg), SS_OK)) {
        CHECK_EQ_INT(p->ncategories, 1);
        CHECK_EQ_INT(p->nmethods, 2);
        CHECK_EQ_INT(p->nproducts, 40);
        for (uint32_t i = 0; i < p->ncountries; i++) {
            double sum = 0;
            for (uint32_t m = 0; m < p->nmethods; m++)
                sum += p->countries[i].payment_mix[m];
            CHECK(sum > 0);
        }
    }
    ss_profile_free(p);
    p = NULL;
    /* A name the user writes must exist, even where defaults are dropped. */
    CHECK_EQ_INT(
        ss_profile_load_text("{\"regions\": {\"europe\": {\"payment_mix\": {\"cash\": 1}}}}",
                             "bad.json", &p, msg, sizeof msg),
        SS_EINVAL);
    CHECK_CONTAINS(msg, "regions.europe.payment_mix.cash");
    CHECK(p == NULL);
}

static void test_file_and_dump(void)
{
    ss_profile *p = &sentinel;
    err[0] = '\0';
    CHECK_EQ_INT(ss_profile_load("/nonexistent/shop.json", &p, err, sizeof err), SS_EINVAL);
    CHECK(p == NULL);
    CHECK_CONTAINS(err, "profile '/nonexistent/shop.json': cannot open");

    /* The dump is a complete profile: loading it as an override is a no-op. */
    char *json = NULL;
    if (!CHECK_EQ_INT(ss_profile_dump(NULL, &json, err, sizeof err), SS_OK) || !CHECK(json))
        return;
    CHECK_EQ_INT(ss_profile_load_text(json, "dump", &p, err, sizeof err), SS_OK);
    ss_profile_free(p);

    char path[] = "/tmp/test_profile_XXXXXX";
    int fd = mkstemp(path);
    if (CHECK(fd >= 0)) {
        const char *doc = "{\"cancellations\": {\"rate\": 0.25}}\n";
        CHECK_EQ_INT(write(fd, doc, strlen(doc)), (long long)strlen(doc));
        close(fd);
        p = NULL;
        if (CHECK_EQ_INT(ss_profile_load(path, &p, err, sizeof err), SS_OK))
            CHECK_NEAR(p->cancel_rate, 0.25, 0.0);
        ss_profile_free(p);
        char *dumped = NULL;
        if (CHECK_EQ_INT(ss_profile_dump(path, &dumped, err, sizeof err), SS_OK))
            CHECK_CONTAINS(dumped, "\"rate\": 0.25");
        free(dumped);
        unlink(path);
    }
    free(json);

    /* A message that does not fit is cut, never overrun. */
    char tiny[16];
    CHECK_EQ_INT(ss_profile_load_text("{\"nope\": 1}", "bad.json", &p, tiny, sizeof tiny),
                 SS_EINVAL);
    CHECK_EQ_INT(strlen(tiny), sizeof tiny - 1);
}

int main(void)
{
    test_builtin();
    test_deterministic();
    test_valid_overrides();
    test_errors();
    test_merge_patch();
    test_file_and_dump();
    return check_done();
}

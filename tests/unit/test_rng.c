/* Unit tests of common/rng: reproducible seeding, ranges, the moments of the
 * distributions and the frequencies of the alias and cumulative pickers.
 * Seeds are fixed, so the statistical checks are deterministic; tolerances
 * are several standard errors wide. */
#include <math.h>
#include <stdint.h>

#include "check.h"
#include "common/rng.h"
#include "common/status.h"

#define N 400000

/* The streams are part of the output contract (same seed, same events on
 * every machine): these values come from an independent implementation of
 * splitmix64 and xoshiro256**. */
static void test_golden_streams(void)
{
    static const struct {
        uint64_t seed, first[3];
    } cases[] = {
        {0, {0x99ec5f36cb75f2b4ULL, 0xbf6e1f784956452aULL, 0x1a5f849d4933e6e0ULL}},
        {1, {0xb3f2af6d0fc710c5ULL, 0x853b559647364ceaULL, 0x92f89756082a4514ULL}},
        {20261102, {0x4f41833ce4dfce43ULL, 0x96a92cf50feb3ff4ULL, 0xd74ffd697f8a36ffULL}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ss_rng rng;
        ss_rng_seed(&rng, cases[i].seed);
        for (int k = 0; k < 3; k++) {
            uint64_t v = ss_rng_next(&rng);
            check_report(v == cases[i].first[k], __FILE__, __LINE__,
                         "seed %llu value %d: 0x%016llx, expected 0x%016llx",
                         (unsigned long long)cases[i].seed, k, (unsigned long long)v,
                         (unsigned long long)cases[i].first[k]);
        }
    }
}

static void test_seeding(void)
{
    ss_rng a, b, c;
    ss_rng_seed(&a, 7);
    ss_rng_seed(&b, 7);
    ss_rng_seed(&c, 8);
    int same_ab = 1, same_ac = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = ss_rng_next(&a), y = ss_rng_next(&b), z = ss_rng_next(&c);
        same_ab &= x == y;
        same_ac += x == z;
    }
    CHECK(same_ab);
    CHECK_EQ_INT(same_ac, 0);

    /* Re-seeding restarts the stream. */
    ss_rng_seed(&a, 7);
    uint64_t first = ss_rng_next(&a);
    ss_rng_seed(&a, 7);
    CHECK(ss_rng_next(&a) == first);

    /* A state of all zeros would be stuck at zero: no seed may produce it. */
    ss_rng_seed(&a, 0);
    CHECK(a.s[0] | a.s[1] | a.s[2] | a.s[3]);

    CHECK(ss_hash2(1, 2) == ss_hash2(1, 2));
    CHECK(ss_hash2(1, 2) != ss_hash2(2, 1));
    CHECK(ss_hash2(1, 2) != ss_hash2(1, 3));
}

static void test_uniform(void)
{
    ss_rng rng;
    ss_rng_seed(&rng, 1);
    double sum = 0.0, lo = 1.0, hi = 0.0;
    for (int i = 0; i < N; i++) {
        double u = ss_rng_uniform(&rng);
        sum += u;
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
    }
    CHECK(lo >= 0.0);
    CHECK(hi < 1.0);
    CHECK(lo < 1e-4);
    CHECK(hi > 1.0 - 1e-4);
    CHECK_NEAR(sum / N, 0.5, 0.003); /* sd of the mean: 0.00046 */

    /* below(n): every value in [0, n), each about equally often. */
    enum { K = 10 };
    int counts[K] = {0}, out = 0;
    for (int i = 0; i < N; i++) {
        uint32_t v = ss_rng_below(&rng, K);
        if (v >= K)
            out++;
        else
            counts[v]++;
    }
    CHECK_EQ_INT(out, 0);
    for (int k = 0; k < K; k++)
        CHECK_NEAR(counts[k] / (double)N, 1.0 / K, 0.003);
    int ones = 0;
    for (int i = 0; i < 1000; i++)
        ones += ss_rng_below(&rng, 1) == 0;
    CHECK_EQ_INT(ones, 1000);
    uint32_t big_max = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t v = ss_rng_below(&rng, UINT32_MAX);
        big_max = v > big_max ? v : big_max;
    }
    CHECK(big_max > UINT32_MAX / 2);
}

/* Mean and variance of n draws of f. */
typedef double (*draw_fn)(ss_rng *rng, const double *args);

static void moments(draw_fn f, const double *args, uint64_t seed, double *mean, double *var,
                    double *min)
{
    ss_rng rng;
    ss_rng_seed(&rng, seed);
    double s = 0.0, s2 = 0.0, lo = INFINITY;
    for (int i = 0; i < N; i++) {
        double x = f(&rng, args);
        s += x;
        s2 += x * x;
        lo = x < lo ? x : lo;
    }
    *mean = s / N;
    *var = s2 / N - *mean * *mean;
    *min = lo;
}

static double draw_exp(ss_rng *rng, const double *a)
{
    return ss_rng_exponential(rng, a[0]);
}

static double draw_normal(ss_rng *rng, const double *a)
{
    (void)a;
    return ss_rng_normal(rng);
}

static double draw_lognormal(ss_rng *rng, const double *a)
{
    return ss_rng_lognormal(rng, a[0], a[1]);
}

static double draw_gamma(ss_rng *rng, const double *a)
{
    return ss_rng_gamma(rng, a[0], a[1]);
}

static void test_distributions(void)
{
    double mean, var, min;

    double rate[] = {4.0};
    moments(draw_exp, rate, 2, &mean, &var, &min);
    CHECK(min >= 0.0);
    CHECK_NEAR(mean, 0.25, 0.25 * 0.01);
    CHECK_NEAR(var, 0.0625, 0.0625 * 0.03);

    moments(draw_normal, NULL, 3, &mean, &var, &min);
    CHECK_NEAR(mean, 0.0, 0.008);
    CHECK_NEAR(var, 1.0, 0.015);

    double ln[] = {1.0, 0.5};
    moments(draw_lognormal, ln, 4, &mean, &var, &min);
    CHECK(min > 0.0);
    CHECK_NEAR(mean, exp(1.0 + 0.125), exp(1.125) * 0.01);

    /* Shape >= 1 takes Marsaglia and Tsang directly, shape < 1 the boost. */
    static const double shapes[][2] = {{2.5, 3.0}, {1.0, 1.0}, {9.0, 0.5}, {0.5, 2.0}, {0.2, 1.0}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        double k = shapes[i][0], theta = shapes[i][1];
        moments(draw_gamma, shapes[i], 5 + i, &mean, &var, &min);
        CHECK(min >= 0.0);
        check_report(fabs(mean - k * theta) <= 0.015 * k * theta, __FILE__, __LINE__,
                     "gamma(%g, %g) mean %.5g, expected %.5g", k, theta, mean, k * theta);
        check_report(fabs(var - k * theta * theta) <= 0.05 * k * theta * theta, __FILE__, __LINE__,
                     "gamma(%g, %g) variance %.5g, expected %.5g", k, theta, var,
                     k * theta * theta);
    }
}

static void check_frequencies(const double *w, uint32_t n, const uint32_t *counts, int draws,
                              int line)
{
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++)
        sum += w[i];
    for (uint32_t i = 0; i < n; i++) {
        double p = w[i] / sum, f = counts[i] / (double)draws;
        double tol = 5.0 * sqrt(p * (1.0 - p) / draws) + 1e-9;
        check_report(fabs(f - p) <= tol, __FILE__, line,
                     "index %u drawn with frequency %.5f, weight says %.5f (+- %.5f)", i, f, p,
                     tol);
    }
}

static void test_alias(void)
{
    static const double w[] = {1.0, 2.0, 3.0, 0.0, 4.0, 0.5, 0.0, 10.0};
    enum { NW = sizeof w / sizeof w[0] };
    ss_alias a;
    if (!CHECK_EQ_INT(ss_alias_build(&a, w, NW), SS_OK))
        return;
    CHECK_EQ_INT(a.n, NW);
    ss_rng rng;
    ss_rng_seed(&rng, 9);
    uint32_t counts[NW] = {0}, out = 0;
    for (int i = 0; i < N; i++) {
        uint32_t k = ss_alias_draw(&a, &rng);
        if (k >= NW)
            out++;
        else
            counts[k]++;
    }
    CHECK_EQ_INT(out, 0);
    CHECK_EQ_INT(counts[3], 0); /* zero weight: never drawn */
    CHECK_EQ_INT(counts[6], 0);
    check_frequencies(w, NW, counts, N, __LINE__);
    ss_alias_free(&a);
    CHECK(a.prob == NULL && a.alias == NULL && a.n == 0);
    ss_alias_free(&a); /* twice is fine */
    ss_alias_free(NULL);

    /* One weight, and very unequal weights. */
    double one = 3.0;
    CHECK_EQ_INT(ss_alias_build(&a, &one, 1), SS_OK);
    CHECK_EQ_INT(ss_alias_draw(&a, &rng), 0);
    ss_alias_free(&a);
    static const double skew[] = {1e-6, 1.0, 1e6};
    CHECK_EQ_INT(ss_alias_build(&a, skew, 3), SS_OK);
    uint32_t c3[3] = {0};
    for (int i = 0; i < N; i++)
        c3[ss_alias_draw(&a, &rng)]++;
    check_frequencies(skew, 3, c3, N, __LINE__);
    ss_alias_free(&a);

    /* Invalid weights leave an empty table that is safe to free. */
    static const double zeros[] = {0.0, 0.0};
    static const double negative[] = {1.0, -1.0};
    double nan_w[] = {1.0, NAN}, inf_w[] = {1.0, INFINITY};
    CHECK_EQ_INT(ss_alias_build(&a, zeros, 2), SS_EINVAL);
    CHECK(a.prob == NULL && a.n == 0);
    CHECK_EQ_INT(ss_alias_build(&a, negative, 2), SS_EINVAL);
    CHECK_EQ_INT(ss_alias_build(&a, nan_w, 2), SS_EINVAL);
    CHECK_EQ_INT(ss_alias_build(&a, inf_w, 2), SS_EINVAL);
    CHECK_EQ_INT(ss_alias_build(&a, w, 0), SS_EINVAL);
    ss_alias_free(&a);
}

static void test_pick_cum(void)
{
    /* Weights 1, 2, 0, 3, 4 as cumulative sums: index 2 has no width. */
    static const double w[] = {1.0, 2.0, 0.0, 3.0, 4.0};
    static const double cum[] = {1.0, 3.0, 3.0, 6.0, 10.0};
    enum { NW = sizeof cum / sizeof cum[0] };
    ss_rng rng;
    ss_rng_seed(&rng, 11);
    uint32_t counts[NW] = {0}, out = 0;
    for (int i = 0; i < N; i++) {
        uint32_t k = ss_rng_pick_cum(&rng, cum, NW);
        if (k >= NW)
            out++;
        else
            counts[k]++;
    }
    CHECK_EQ_INT(out, 0);
    CHECK_EQ_INT(counts[2], 0);
    check_frequencies(w, NW, counts, N, __LINE__);

    static const double single[] = {5.0};
    CHECK_EQ_INT(ss_rng_pick_cum(&rng, single, 1), 0);
    /* A leading zero-width entry is never picked. */
    static const double lead[] = {0.0, 1.0};
    int zero = 0;
    for (int i = 0; i < 10000; i++)
        zero += ss_rng_pick_cum(&rng, lead, 2) == 0;
    CHECK_EQ_INT(zero, 0);
}

int main(void)
{
    test_golden_streams();
    test_seeding();
    test_uniform();
    test_distributions();
    test_alias();
    test_pick_cum();
    return check_done();
}

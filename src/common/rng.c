#include "common/rng.h"

#include <math.h>

#include "common/mem.h"
#include "common/status.h"

#include <stdlib.h>

void ss_rng_seed(ss_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = ss_splitmix64(&x);
}

double ss_rng_exponential(ss_rng *rng, double rate)
{
    return -log1p(-ss_rng_uniform(rng)) / rate;
}

double ss_rng_normal(ss_rng *rng)
{
    /* Marsaglia's polar method; the second value is dropped to keep the
     * stream's consumption independent of call history. */
    for (;;) {
        double u = 2.0 * ss_rng_uniform(rng) - 1.0;
        double v = 2.0 * ss_rng_uniform(rng) - 1.0;
        double s = u * u + v * v;
        if (s > 0.0 && s < 1.0)
            return u * sqrt(-2.0 * log(s) / s);
    }
}

double ss_rng_lognormal(ss_rng *rng, double mu, double sigma)
{
    return exp(mu + sigma * ss_rng_normal(rng));
}

double ss_rng_gamma(ss_rng *rng, double shape, double scale)
{
    if (shape < 1.0) {
        double u = ss_rng_uniform(rng);
        return ss_rng_gamma(rng, shape + 1.0, scale) * pow(u, 1.0 / shape);
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = ss_rng_normal(rng);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = ss_rng_uniform(rng);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return d * v * scale;
    }
}

int ss_alias_build(ss_alias *a, const double *weights, uint32_t n)
{
    double sum = 0.0;
    a->n = 0;
    a->prob = NULL;
    a->alias = NULL;
    for (uint32_t i = 0; i < n; i++) {
        if (!(weights[i] >= 0.0) || !isfinite(weights[i]))
            return SS_EINVAL;
        sum += weights[i];
    }
    if (n == 0 || !(sum > 0.0))
        return SS_EINVAL;

    a->n = n;
    a->prob = ss_malloc(n * sizeof *a->prob);
    a->alias = ss_malloc(n * sizeof *a->alias);
    uint32_t *small = ss_malloc(n * sizeof *small), *large = ss_malloc(n * sizeof *large);
    uint32_t ns = 0, nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        a->prob[i] = weights[i] * n / sum;
        a->alias[i] = i;
        if (a->prob[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
    }
    while (ns && nl) {
        uint32_t s = small[--ns], l = large[--nl];
        a->alias[s] = l;
        a->prob[l] -= 1.0 - a->prob[s];
        if (a->prob[l] < 1.0)
            small[ns++] = l;
        else
            large[nl++] = l;
    }
    while (nl)
        a->prob[large[--nl]] = 1.0;
    while (ns)
        a->prob[small[--ns]] = 1.0;
    free(small);
    free(large);
    return SS_OK;
}

void ss_alias_free(ss_alias *a)
{
    if (!a)
        return;
    free(a->prob);
    free(a->alias);
    a->prob = NULL;
    a->alias = NULL;
    a->n = 0;
}

uint32_t ss_rng_pick_cum(ss_rng *rng, const double *cum, uint32_t n)
{
    double x = ss_rng_uniform(rng) * cum[n - 1];
    uint32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

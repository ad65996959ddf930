/* Deterministic pseudo-random numbers: xoshiro256** seeded through splitmix64,
 * so that one 64-bit seed gives one reproducible stream on every machine.
 * Not for cryptography. An ss_rng is owned by one thread. */
#ifndef SS_RNG_H
#define SS_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct ss_rng {
    uint64_t s[4];
} ss_rng;

static inline uint64_t ss_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A well-mixed 64-bit hash of two words, for deriving independent seeds. */
static inline uint64_t ss_hash2(uint64_t a, uint64_t b)
{
    uint64_t x = a ^ (b * 0x9e3779b97f4a7c15ULL);
    ss_splitmix64(&x);
    return ss_splitmix64(&x);
}

void ss_rng_seed(ss_rng *rng, uint64_t seed);

static inline uint64_t ss_rng_next(ss_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t r = s[1] * 5;
    r = ((r << 7) | (r >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return r;
}

/* Uniform in [0, 1). */
static inline double ss_rng_uniform(ss_rng *rng)
{
    return (double)(ss_rng_next(rng) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply-shift, negligible bias). */
static inline uint32_t ss_rng_below(ss_rng *rng, uint32_t n)
{
    return (uint32_t)(((ss_rng_next(rng) >> 32) * (uint64_t)n) >> 32);
}

double ss_rng_exponential(ss_rng *rng, double rate);
double ss_rng_normal(ss_rng *rng);
double ss_rng_lognormal(ss_rng *rng, double mu, double sigma);
/* Gamma with the given shape and scale (Marsaglia and Tsang). */
double ss_rng_gamma(ss_rng *rng, double shape, double scale);

/* Walker's alias method: draws an index with probability proportional to its
 * weight in O(1). Built once, read-only after. */
typedef struct ss_alias {
    uint32_t n;
    double *prob;
    uint32_t *alias;
} ss_alias;

/* Builds the table for n weights (each >= 0, sum > 0). Returns 0 or SS_EINVAL. */
int ss_alias_build(ss_alias *a, const double *weights, uint32_t n);
void ss_alias_free(ss_alias *a);

static inline uint32_t ss_alias_draw(const ss_alias *a, ss_rng *rng)
{
    uint64_t r = ss_rng_next(rng);
    uint32_t i = (uint32_t)(((r >> 32) * (uint64_t)a->n) >> 32);
    double u = (double)(r & 0xffffffffu) * 0x1.0p-32;
    return u < a->prob[i] ? i : a->alias[i];
}

/* Draws an index from n cumulative weights (cum[n-1] is the total). */
uint32_t ss_rng_pick_cum(ss_rng *rng, const double *cum, uint32_t n);

#endif

/* Unit tests of gen/fit_math and gen/fit_bgnbd: the optimiser and standard
 * errors, the BG/NBD likelihood against its closed form and its
 * maximum-likelihood fit on simulated customers, the latent-class mixture's
 * gradient and its fit on customers of two classes, the Poisson trend, the daily curve's points,
 * the Zipf exponent and the fidelity statistics. Simulations use fixed seeds, so every check is
 * deterministic; tolerances are several standard errors wide. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "common/rng.h"
#include "gen/fit_math.h"

static double rosenbrock(const double *x, void *ctx)
{
    (void)ctx;
    return 100 * (x[1] - x[0] * x[0]) * (x[1] - x[0] * x[0]) + (1 - x[0]) * (1 - x[0]);
}

/* The negative log-likelihood of a normal mean and log-sd, up to a constant,
 * for n = 100 observations of mean 3 and standard deviation 2. */
static double normal_nll(const double *x, void *ctx)
{
    (void)ctx;
    double n = 100, mean = 3, var = 4, s2 = exp(2 * x[1]);
    return n * x[1] + n * (var + (mean - x[0]) * (mean - x[0])) / (2 * s2);
}

static void test_nelder_mead_and_se(void)
{
    double x[2] = {-1.2, 1.0}, step[2] = {0.5, 0.5};
    double f = ss_fit_nelder_mead(rosenbrock, NULL, x, step, 2, 1e-14, 5000);
    CHECK_NEAR(x[0], 1.0, 1e-3);
    CHECK_NEAR(x[1], 1.0, 2e-3);
    CHECK(f < 1e-6);

    /* At the maximum, the mean's standard error is sd / sqrt(n) = 0.2 and
     * that of the log-sd 1 / sqrt(2n). */
    double y[2] = {0, 0}, se[2];
    ss_fit_nelder_mead(normal_nll, NULL, y, step, 2, 1e-15, 5000);
    CHECK_NEAR(y[0], 3.0, 1e-3);
    CHECK_NEAR(y[1], log(2.0), 1e-3);
    if (CHECK(ss_fit_hessian_se(normal_nll, NULL, y, 2, se) == 0)) {
        CHECK_NEAR(se[0], 0.2, 1e-3);
        CHECK_NEAR(se[1], 1 / sqrt(200.0), 1e-3);
    }
}

/* The BG/NBD likelihood of one customer, written from the paper's equation
 * (6) with beta and gamma functions rather than the logs the fit uses. */
static double bgnbd_closed(uint32_t x, double tx, double T, double r, double al, double a, double b)
{
    double B = exp(lgamma(a) + lgamma(b) - lgamma(a + b));
    double g = exp(lgamma(r + x) - lgamma(r)) * pow(al, r);
    double l = exp(lgamma(a) + lgamma(b + x) - lgamma(a + b + x)) / B * g / pow(al + T, r + x);
    if (x > 0)
        l += exp(lgamma(a + 1) + lgamma(b + x - 1) - lgamma(a + b + x)) / B * g /
             pow(al + tx, r + x);
    return log(l);
}

static void test_bgnbd_likelihood(void)
{
    ss_fit_rfm c[] = {{0, 0, 30}, {1, 5, 40}, {4, 20.5, 77}, {12, 60, 61}};
    double want = 0;
    for (size_t i = 0; i < 4; i++)
        want += bgnbd_closed(c[i].x, c[i].tx, c[i].T, 0.3, 12.0, 0.8, 2.5);
    CHECK_NEAR(ss_fit_bgnbd_ll(c, 4, 0.3, 12.0, 0.8, 2.5), want, 1e-9);
    CHECK(isinf(ss_fit_bgnbd_ll(c, 4, -1, 12.0, 0.8, 2.5)));
}

/* A customer who buys as BG/NBD with these parameters, observed for 60 to
 * 180 days after the first order. */
static ss_fit_rfm simulate_customer(ss_rng *rng, double r, double alpha, double a, double b)
{
    double lam = ss_rng_gamma(rng, r, 1 / alpha);
    double u = ss_rng_gamma(rng, a, 1), v = ss_rng_gamma(rng, b, 1), p = u / (u + v);
    double T = 60 + 120 * ss_rng_uniform(rng), t = 0;
    ss_fit_rfm c = {0, 0, T};
    for (;;) {
        t += ss_rng_exponential(rng, lam);
        if (t > T)
            break;
        c.x++;
        c.tx = t;
        if (ss_rng_uniform(rng) < p)
            break;
    }
    return c;
}

static void test_bgnbd_recovers_parameters(void)
{
    /* 30,000 customers observed from their first order for 60 to 180 days. */
    const double r = 0.5, alpha = 10, a = 1.0, b = 3.0;
    enum { N = 30000 };
    ss_fit_rfm *c = calloc(N, sizeof *c);
    ss_rng rng;
    ss_rng_seed(&rng, 42);
    for (size_t i = 0; i < N; i++)
        c[i] = simulate_customer(&rng, r, alpha, a, b);
    ss_fit_bgnbd f;
    if (CHECK(ss_fit_bgnbd_mle(c, N, &f) == 0)) {
        CHECK_NEAR(f.r, r, 4 * f.se_r);
        CHECK_NEAR(f.alpha, alpha, 4 * f.se_alpha);
        CHECK_NEAR(f.a, a, 4 * f.se_a);
        CHECK_NEAR(f.b, b, 4 * f.se_b);
        /* The standard errors are of the size the sample allows. */
        CHECK(f.se_r > 0 && f.se_r < 0.05);
        CHECK(f.se_b > 0 && f.se_b < 1.0);
    }
    free(c);
}

static void test_classes_gradient(void)
{
    /* The analytic gradient against central differences of the function, at
     * a point away from the maximum, for 2 and 3 classes. */
    ss_fit_rfm c[] = {{0, 0, 30}, {1, 5, 40}, {4, 20.5, 77}, {12, 60, 61}, {0, 0, 90}, {2, 1, 9}};
    const double p3[] = {log(0.3), log(12), log(0.8), log(2.5), log(2), log(40), log(1.5),
                         log(4),   log(1),  log(5),   log(0.5), log(7), 0.4,     -0.3};
    for (uint32_t k = 2; k <= 3; k++) {
        uint32_t np = 5 * k - 1;
        double p[16], g[16];
        for (uint32_t i = 0; i < 4 * k; i++)
            p[i] = p3[i];
        for (uint32_t j = 0; j + 1 < k; j++)
            p[4 * k + j] = p3[12 + j];
        double f = ss_fit_bgnbd_classes_nll(c, 6, k, p, g);
        CHECK(isfinite(f));
        for (uint32_t i = 0; i < np; i++) {
            double y[16], h = 1e-6;
            for (uint32_t q = 0; q < np; q++)
                y[q] = p[q];
            y[i] += h;
            double fp = ss_fit_bgnbd_classes_nll(c, 6, k, y, NULL);
            y[i] -= 2 * h;
            double fm = ss_fit_bgnbd_classes_nll(c, 6, k, y, NULL);
            CHECK_NEAR(g[i], (fp - fm) / (2 * h), 1e-6);
        }
    }
    /* One class of a mixture is BG/NBD itself. */
    double p1[4] = {log(0.3), log(12), log(0.8), log(2.5)};
    CHECK_NEAR(ss_fit_bgnbd_classes_nll(c, 6, 1, p1, NULL) * 6,
               -ss_fit_bgnbd_ll(c, 6, 0.3, 12, 0.8, 2.5), 1e-9);
}

static void test_classes_recover_two_classes(void)
{
    /* 40,000 customers: 30 % buy often and stay (rate 0.2 a day, dropout
     * 0.08), 70 % buy rarely and leave (0.0125 a day, dropout 0.33). */
    enum { N = 40000 };
    ss_fit_rfm *c = calloc(N, sizeof *c);
    ss_rng rng;
    ss_rng_seed(&rng, 7);
    for (size_t i = 0; i < N; i++)
        c[i] = ss_rng_uniform(&rng) < 0.3 ? simulate_customer(&rng, 2.0, 10, 0.5, 6)
                                          : simulate_customer(&rng, 0.5, 40, 1.5, 3);
    ss_fit_bgnbd one;
    ss_fit_bgnbd_mix m2, m3;
    if (CHECK(ss_fit_bgnbd_mle(c, N, &one) == 0) &&
        CHECK(ss_fit_bgnbd_classes(c, N, 2, &one, &m2) == 0)) {
        CHECK(m2.k == 2);
        /* The fastest class first. */
        CHECK_NEAR(m2.share[0], 0.3, 4 * m2.se_share[0]);
        CHECK_NEAR(m2.share[0] + m2.share[1], 1.0, 1e-12);
        CHECK_NEAR(m2.cls[0].r, 2.0, 4 * m2.cls[0].se_r);
        CHECK_NEAR(m2.cls[0].alpha, 10, 4 * m2.cls[0].se_alpha);
        CHECK_NEAR(m2.cls[0].a, 0.5, 4 * m2.cls[0].se_a);
        CHECK_NEAR(m2.cls[0].b, 6, 4 * m2.cls[0].se_b);
        CHECK_NEAR(m2.cls[1].r, 0.5, 4 * m2.cls[1].se_r);
        CHECK_NEAR(m2.cls[1].alpha, 40, 4 * m2.cls[1].se_alpha);
        CHECK_NEAR(m2.cls[1].a, 1.5, 4 * m2.cls[1].se_a);
        CHECK_NEAR(m2.cls[1].b, 3, 4 * m2.cls[1].se_b);
        CHECK(m2.se_share[0] > 0 && m2.se_share[0] < 0.02);
        /* Two classes beat one by the BIC; a third adds nothing worth its
         * parameters. */
        CHECK(m2.bic < -2 * one.ll + 4 * log((double)N));
        CHECK(m2.ll > one.ll);
        if (CHECK(ss_fit_bgnbd_classes(c, N, 3, &one, &m3) == 0))
            CHECK(m3.bic > m2.bic);
    }
    free(c);
}

static void test_classes_one_class_data(void)
{
    /* Customers of one class: two classes do not pay for their parameters. */
    enum { N = 30000 };
    ss_fit_rfm *c = calloc(N, sizeof *c);
    ss_rng rng;
    ss_rng_seed(&rng, 11);
    for (size_t i = 0; i < N; i++)
        c[i] = simulate_customer(&rng, 0.5, 10, 1.0, 3.0);
    ss_fit_bgnbd one;
    ss_fit_bgnbd_mix m2;
    if (CHECK(ss_fit_bgnbd_mle(c, N, &one) == 0) &&
        CHECK(ss_fit_bgnbd_classes(c, N, 2, &one, &m2) == 0)) {
        CHECK(m2.ll >= one.ll - 1e-6 * fabs(one.ll));
        CHECK(m2.bic > -2 * one.ll + 4 * log((double)N));
    }
    free(c);
}

static void test_poisson_trend(void)
{
    enum { D = 200 };
    double counts[D], w[D], level, g, se, cv;
    ss_rng rng;
    ss_rng_seed(&rng, 7);
    /* Counts drawn by counting exponential arrivals within each day. */
    for (int d = 0; d < D; d++) {
        w[d] = d % 7 == 5 ? 0.6 : 1.08;
        double mu = 400 * exp(0.003 * (d + 0.5)) * w[d], t = 0;
        double f = ss_rng_gamma(&rng, 1 / 0.04, 0.04); /* cv 0.2 */
        counts[d] = 0;
        while ((t += ss_rng_exponential(&rng, mu * f)) < 1)
            counts[d]++;
    }
    if (CHECK(ss_fit_poisson_trend(counts, w, D, &level, &g, &se, &cv) == 0)) {
        CHECK_NEAR(g, 0.003, 4 * se);
        CHECK(se > 0 && se < 0.001);
        CHECK_NEAR(level, 400, 40);
        CHECK_NEAR(cv, 0.2, 0.05);
    }
    /* Without over-dispersion the estimate of cv is near 0. */
    for (int d = 0; d < D; d++) {
        double t = 0;
        counts[d] = 0;
        while ((t += ss_rng_exponential(&rng, 400 * w[d])) < 1)
            counts[d]++;
    }
    if (CHECK(ss_fit_poisson_trend(counts, w, D, &level, &g, &se, &cv) == 0)) {
        CHECK_NEAR(g, 0, 4 * se);
        CHECK(cv < 0.03);
    }
}

static void test_daily_points(void)
{
    /* Hourly masses of a known curve, interpolated linearly as gen does. */
    double pts[24], bins[24], got[24], mean = 0;
    for (int h = 0; h < 24; h++) {
        pts[h] = 1 + 0.8 * sin(2 * M_PI * (h - 9) / 24);
        mean += pts[h] / 24;
    }
    for (int h = 0; h < 24; h++)
        bins[h] = 1000 * (pts[h] + pts[(h + 1) % 24]) / 2;
    ss_fit_daily_points(bins, got);
    double s = 0;
    for (int h = 0; h < 24; h++) {
        CHECK_NEAR(got[h], pts[h] / mean, 0.03);
        s += got[h];
    }
    CHECK_NEAR(s, 24, 1e-9);
}

static void test_zipf(void)
{
    /* Expected counts of 1e7 orders over 2 groups of 100 and 400 products. */
    static uint64_t g1[100], g2[400];
    uint64_t *groups[2] = {g1, g2};
    uint32_t n[2] = {100, 400};
    for (int k = 0; k < 2; k++) {
        double h = 0;
        for (uint32_t r = 1; r <= n[k]; r++)
            h += pow(r, -1.3);
        for (uint32_t r = 1; r <= n[k]; r++)
            groups[k][r - 1] = (uint64_t)llround(5e6 * pow(r, -1.3) / h);
    }
    double se, s = ss_fit_zipf((const uint64_t *const *)groups, n, 2, &se);
    CHECK_NEAR(s, 1.3, 0.005);
    CHECK(se > 0 && se < 0.01);
}

static void test_fidelity_statistics(void)
{
    double a[] = {1, 2, 3, 4}, b[] = {6, 5, 4, 3}, c[] = {1, 1, 2, 2}, d[] = {2, 1, 2, 1};
    CHECK_NEAR(ss_fit_ks(a, 4, b, 4), 0.5, 1e-12);
    CHECK_NEAR(ss_fit_ks(c, 4, d, 4), 0.0, 1e-12); /* ties on both sides */
    double e[] = {10, 11}, f[] = {1, 2, 3};
    CHECK_NEAR(ss_fit_ks(e, 2, f, 3), 1.0, 1e-12);
    CHECK(isnan(ss_fit_ks(e, 0, f, 3)));

    double p[] = {3, 1}, q[] = {1, 1}, z[] = {0, 0};
    CHECK_NEAR(ss_fit_tv(p, q, 2), 0.25, 1e-12);
    CHECK_NEAR(ss_fit_tv(p, p, 2), 0.0, 1e-12);
    CHECK(isnan(ss_fit_tv(p, z, 2)));

    double x[] = {1, 2, 3, 4}, y[] = {3, 5, 7, 9}, yn[] = {4, 3, 2, 1}, k[] = {5, 5, 5, 5};
    CHECK_NEAR(ss_fit_pearson(x, y, 4), 1.0, 1e-12);
    CHECK_NEAR(ss_fit_pearson(x, yn, 4), -1.0, 1e-12);
    CHECK(isnan(ss_fit_pearson(x, k, 4)));
}

int main(void)
{
    test_nelder_mead_and_se();
    test_bgnbd_likelihood();
    test_bgnbd_recovers_parameters();
    test_classes_gradient();
    test_classes_recover_two_classes();
    test_classes_one_class_data();
    test_poisson_trend();
    test_daily_points();
    test_zipf();
    test_fidelity_statistics();
    return check_done();
}

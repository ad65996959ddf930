/* The numerical methods of `shopstream fit`: maximum likelihood for the
 * BG/NBD repeat-buying model, a log-linear Poisson trend, a Zipf exponent,
 * the daily curve's points from hourly counts, and the fidelity statistics
 * (Kolmogorov-Smirnov, total variation, Pearson correlation).
 *
 * Pure functions of their arguments; the caller owns every array. */
#ifndef SS_GEN_FIT_MATH_H
#define SS_GEN_FIT_MATH_H

#include <stddef.h>
#include <stdint.h>

#define SS_FIT_MAXP 16 /* the most variables of the simplex and the Hessian */

/* Minimises f over n <= SS_FIT_MAXP variables from x (updated to the minimum) with the
 * Nelder-Mead simplex, starting steps step[i]. Stops when the simplex's values
 * differ by less than tol, or after maxit evaluations. Returns f at x. */
double ss_fit_nelder_mead(double (*f)(const double *x, void *ctx), void *ctx, double *x,
                          const double *step, int n, double tol, int maxit);

/* Inverts the n x n matrix a (row-major, n <= SS_FIT_MAXP) in place by
 * Gauss-Jordan elimination with partial pivoting. Returns 0, or -1 if it is
 * singular. */
int ss_fit_invert(double *a, int n);

/* Standard errors from the inverse Hessian of a negative log-likelihood f at
 * its minimum x (central differences, relative step 1e-4). se[i] is NAN where
 * the Hessian is not positive definite. Returns 0, or -1 if it is singular. */
int ss_fit_hessian_se(double (*f)(const double *x, void *ctx), void *ctx, const double *x, int n,
                      double *se);

/* One customer's summary for BG/NBD: repeat orders x, the time of the last
 * order after the first (t_x) and the time observed after the first (T),
 * both in days. */
typedef struct ss_fit_rfm {
    uint32_t x;
    double tx, T;
} ss_fit_rfm;

typedef struct ss_fit_bgnbd {
    double r, alpha, a, b; /* alpha in days */
    double se_r, se_alpha, se_a, se_b;
    double ll; /* the log-likelihood at the estimate */
} ss_fit_bgnbd;

/* The BG/NBD log-likelihood (Fader, Hardie and Lee 2005) of n customers. */
double ss_fit_bgnbd_ll(const ss_fit_rfm *c, size_t n, double r, double alpha, double a, double b);

/* Fits BG/NBD by maximum likelihood. Returns 0, or -1 if it did not converge
 * to finite values. */
int ss_fit_bgnbd_mle(const ss_fit_rfm *c, size_t n, ss_fit_bgnbd *out);

/* A mixture of k BG/NBD classes (latent-class BG/NBD): each customer belongs
 * to class j with probability share[j] and buys as BG/NBD with cls[j]'s
 * parameters. */
#define SS_FIT_MAX_CLASSES 3
typedef struct ss_fit_bgnbd_mix {
    uint32_t k;
    double share[SS_FIT_MAX_CLASSES], se_share[SS_FIT_MAX_CLASSES];
    ss_fit_bgnbd cls[SS_FIT_MAX_CLASSES]; /* by mean rate r / alpha, fastest first */
    double ll;                            /* the log-likelihood at the estimate */
    double bic;                           /* -2 ll + (5k - 1) ln n */
} ss_fit_bgnbd_mix;

/* Fits a mixture of k <= SS_FIT_MAX_CLASSES classes by maximum likelihood
 * (BFGS on the analytic gradient, from two starts around start, the
 * one-class estimate), within the ranges a profile takes. Standard errors come
 * from the inverse Hessian (central differences of the gradient) by the delta
 * method. Returns 0, or -1 if it found no finite likelihood. */
int ss_fit_bgnbd_classes(const ss_fit_rfm *c, size_t n, uint32_t k, const ss_fit_bgnbd *start,
                         ss_fit_bgnbd_mix *out);

/* The mixture's negative mean log-likelihood at p (the logs of every class's
 * r, alpha, a, b, then the logits of the first k - 1 shares against the
 * last's), and its gradient into grad when not NULL: what the fit climbs. */
double ss_fit_bgnbd_classes_nll(const ss_fit_rfm *c, size_t n, uint32_t k, const double *p,
                                double *grad);

/* Fits counts[d] ~ Poisson(exp(c + g (d + 0.5)) w[d]) over n days by Newton's
 * method: *g is the daily log growth, *level = exp(c) the expected count of a
 * day of weight 1 at the start; se_g its standard error scaled by the
 * over-dispersion; *cv the coefficient of variation of the days' factors
 * (gamma-Poisson moments, 0 when none). Returns 0 or -1. */
int ss_fit_poisson_trend(const double *counts, const double *w, int n, double *level, double *g,
                         double *se_g, double *cv);

/* The 24 points of a daily curve, interpolated linearly between hours as the
 * generator does, whose hourly masses match bins[24] (least squares with a
 * light smoothness penalty); the points have mean 1. */
void ss_fit_daily_points(const double *bins, double *points);

/* The Zipf exponent s, in [0, 5], that maximises the likelihood of counts of
 * products by rank: counts[g][0..n[g]) for ng groups, each sorted from the
 * most ordered. *se is its standard error. */
double ss_fit_zipf(const uint64_t *const *counts, const uint32_t *n, uint32_t ng, double *se);

/* The Kolmogorov-Smirnov statistic of two samples (sorted in place). */
double ss_fit_ks(double *a, size_t na, double *b, size_t nb);

/* The total variation distance of two histograms (any scale). */
double ss_fit_tv(const double *p, const double *q, size_t n);

/* Pearson's correlation of x and y; NAN when either is constant. */
double ss_fit_pearson(const double *x, const double *y, size_t n);

#endif

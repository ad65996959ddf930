/* BG/NBD by maximum likelihood (Fader, Hardie and Lee 2005): one class by the
 * simplex, and a mixture of latent classes by quasi-Newton steps on the
 * likelihood's analytic gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "gen/fit_math.h"

/* Customers with the same (x, t_x, T), and how many. */
typedef struct rfm_group {
    uint32_t x;
    double tx, T, w;
} rfm_group;

/* The digamma function: the recurrence up to 6, then the asymptotic series. */
static double digamma(double x)
{
    double s = 0.0;
    for (; x < 6.0; x += 1.0)
        s -= 1.0 / x;
    double f = 1.0 / (x * x);
    return s + log(x) - 0.5 / x -
           f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

/* The log-likelihood of the groups, weighted by their w. each, when not NULL,
 * receives every group's own (unweighted) log-likelihood, and d, when not
 * NULL, its derivatives by the logs of (r, alpha, a, b) ([group][4]). */
static double ll_groups(const rfm_group *c, size_t n, double r, double alpha, double a, double b,
                        double *each, double (*d)[4])
{
    if (!(r > 0 && alpha > 0 && a > 0 && b > 0))
        return -INFINITY;
    /* The terms that depend on x alone, once per distinct x. */
    uint32_t maxx = 0;
    for (size_t i = 0; i < n; i++)
        if (c[i].x > maxx)
            maxx = c[i].x;
    double *tx = ss_calloc((size_t)maxx + 1, sizeof *tx),
           *tlog = ss_calloc((size_t)maxx + 1, sizeof *tlog);
    double(*dx)[4] = d ? ss_calloc((size_t)maxx + 1, sizeof *dx) : NULL;
    double base = r * log(alpha) + lgamma(a + b) - lgamma(b) - lgamma(r);
    for (uint32_t x = 0; x <= maxx; x++) {
        tx[x] = base + lgamma(r + x) + lgamma(b + x) - lgamma(a + b + x);
        tlog[x] = x > 0 ? log(a) - log(b + x - 1) : 0.0;
        if (dx) {
            double pab = digamma(a + b) - digamma(a + b + x);
            dx[x][0] = r * (log(alpha) - digamma(r) + digamma(r + x));
            dx[x][1] = r;
            dx[x][2] = a * pab;
            dx[x][3] = b * (pab - digamma(b) + digamma(b + x));
        }
    }
    double ll = 0.0;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = c[i].x;
        double l3 = log(alpha + c[i].T), a3 = -(r + x) * l3;
        double t = a3, s4 = 0.0, l4 = 0.0;
        if (x > 0) {
            l4 = log(alpha + c[i].tx);
            double a4 = tlog[x] - (r + x) * l4;
            double m = a3 > a4 ? a3 : a4;
            t = m + log(exp(a3 - m) + exp(a4 - m));
            s4 = exp(a4 - t);
        }
        if (each)
            each[i] = tx[x] + t;
        if (d) {
            /* t's derivatives: the two terms' own, weighted by their shares
             * of the sum. */
            double s3 = 1.0 - s4;
            d[i][0] = dx[x][0] - r * (s3 * l3 + s4 * l4);
            d[i][1] = dx[x][1] - alpha * (r + x) *
                                     (s3 / (alpha + c[i].T) + (x > 0 ? s4 / (alpha + c[i].tx) : 0));
            d[i][2] = dx[x][2] + s4;
            d[i][3] = dx[x][3] - (x > 0 ? s4 * b / (b + x - 1) : 0.0);
        }
        ll += c[i].w * (tx[x] + t);
    }
    free(tx);
    free(tlog);
    free(dx);
    return ll;
}

double ss_fit_bgnbd_ll(const ss_fit_rfm *c, size_t n, double r, double alpha, double a, double b)
{
    rfm_group *g = ss_calloc(n ? n : 1, sizeof *g);
    for (size_t i = 0; i < n; i++)
        g[i] = (rfm_group){c[i].x, c[i].tx, c[i].T, 1.0};
    double ll = ll_groups(g, n, r, alpha, a, b, NULL, NULL);
    free(g);
    return ll;
}

static int cmp_group(const void *pa, const void *pb)
{
    const rfm_group *a = pa, *b = pb;
    if (a->x != b->x)
        return a->x < b->x ? -1 : 1;
    if (a->tx != b->tx)
        return a->tx < b->tx ? -1 : 1;
    return (a->T > b->T) - (a->T < b->T);
}

/* Times to the minute, and customers alike counted once with a weight:
 * one-time buyers differ only in T, and samples of dates alone collapse to a
 * few thousand groups. */
static rfm_group *group_rfm(const ss_fit_rfm *c, size_t n, size_t *ng)
{
    rfm_group *g = ss_calloc(n ? n : 1, sizeof *g);
    for (size_t i = 0; i < n; i++)
        g[i] = (rfm_group){c[i].x, round(c[i].tx * 1440) / 1440, round(c[i].T * 1440) / 1440, 1};
    qsort(g, n, sizeof *g, cmp_group);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && !cmp_group(&g[k - 1], &g[i]))
            g[k - 1].w += 1;
        else
            g[k++] = g[i];
    }
    *ng = k;
    return g;
}

/* ---- One class ---- */

typedef struct bg_ctx {
    const rfm_group *c;
    size_t n;
    double total;
    int natural; /* parameters as they are, not their logs */
} bg_ctx;

static double bg_neg_ll(const double *p, void *vctx)
{
    const bg_ctx *k = vctx;
    double v[4];
    for (int i = 0; i < 4; i++) {
        v[i] = k->natural ? p[i] : exp(p[i]);
        if (!(v[i] > 1e-8 && v[i] < 1e8))
            return INFINITY;
    }
    return -ll_groups(k->c, k->n, v[0], v[1], v[2], v[3], NULL, NULL) / k->total;
}

int ss_fit_bgnbd_mle(const ss_fit_rfm *c, size_t n, ss_fit_bgnbd *out)
{
    memset(out, 0, sizeof *out);
    if (n == 0)
        return -1;
    size_t ng;
    rfm_group *g = group_rfm(c, n, &ng);
    double sx = 0, sT = 0;
    for (size_t i = 0; i < n; i++) {
        sx += c[i].x;
        sT += c[i].T;
    }
    /* Start from the method of moments' order of magnitude: alpha of the
     * mean observation span, r of the mean repeat rate. */
    double mT = sT / n > 1.0 ? sT / n : 1.0, rate = (sx + 1.0) / (double)n / mT;
    double x[4] = {log(1.0), log(1.0 / rate), log(1.0), log(3.0)};
    double step[4] = {0.5, 0.5, 0.5, 0.5};
    bg_ctx k = {g, ng, (double)n, 0};
    /* Restarts from the best point escape a collapsed simplex; they stop once
     * one gains nothing. */
    double f = INFINITY;
    for (int round = 0; round < 4; round++) {
        double f1 = ss_fit_nelder_mead(bg_neg_ll, &k, x, step, 4, 1e-11, 2000);
        int done = fabs(f - f1) < 1e-10;
        f = f1;
        if (done)
            break;
    }
    double v[4], se[4];
    for (int i = 0; i < 4; i++)
        v[i] = exp(x[i]);
    out->r = v[0];
    out->alpha = v[1];
    out->a = v[2];
    out->b = v[3];
    out->ll = ll_groups(g, ng, v[0], v[1], v[2], v[3], NULL, NULL);
    int rc = isfinite(out->ll) ? 0 : -1;
    k.natural = 1;
    if (rc || ss_fit_hessian_se(bg_neg_ll, &k, v, 4, se))
        se[0] = se[1] = se[2] = se[3] = NAN;
    /* The Hessian is of the mean log-likelihood: scale to n customers. */
    out->se_r = se[0] / sqrt((double)n);
    out->se_alpha = se[1] / sqrt((double)n);
    out->se_a = se[2] / sqrt((double)n);
    out->se_b = se[3] / sqrt((double)n);
    free(g);
    return rc;
}

/* ---- Latent classes ---- */

/* The parameters are the logs of every class's (r, alpha, a, b), then the
 * logits of the shares of all classes but the last (whose logit is 0). */
typedef struct mix_ctx {
    const rfm_group *g;
    size_t ng;
    double total;
    uint32_t k;
    double *each[SS_FIT_MAX_CLASSES];   /* [group] log-likelihoods */
    double (*d[SS_FIT_MAX_CLASSES])[4]; /* [group] their derivatives */
} mix_ctx;

/* The ranges of (r, alpha, a, b) that a profile takes. */
static const double bg_lo[4] = {1e-4, 1e-4, 1e-4, 1e-4}, bg_hi[4] = {1e4, 1e7, 1e4, 1e4};

/* The negative mean log-likelihood, and its gradient into grad when not
 * NULL. Outside the profile's ranges it is infinite. */
static double mix_fg(const mix_ctx *m, const double *p, double *grad)
{
    uint32_t k = m->k, np = 5 * k - 1;
    double logpi[SS_FIT_MAX_CLASSES], pi[SS_FIT_MAX_CLASSES], top = 0.0, s = 0.0;
    for (uint32_t j = 0; j < k; j++) {
        double v[4];
        for (int i = 0; i < 4; i++) {
            v[i] = exp(p[4 * j + (uint32_t)i]);
            if (!(v[i] >= bg_lo[i] && v[i] <= bg_hi[i]))
                return INFINITY;
        }
        ll_groups(m->g, m->ng, v[0], v[1], v[2], v[3], m->each[j], grad ? m->d[j] : NULL);
        logpi[j] = j + 1 < k ? p[4 * k + j] : 0.0;
        if (logpi[j] > top)
            top = logpi[j];
    }
    for (uint32_t j = 0; j < k; j++)
        s += exp(logpi[j] - top);
    for (uint32_t j = 0; j < k; j++) {
        logpi[j] -= top + log(s);
        pi[j] = exp(logpi[j]);
    }
    if (grad)
        memset(grad, 0, np * sizeof *grad);
    double ll = 0.0;
    for (size_t i = 0; i < m->ng; i++) {
        double t[SS_FIT_MAX_CLASSES], hi = -INFINITY, sum = 0.0;
        for (uint32_t j = 0; j < k; j++) {
            t[j] = logpi[j] + m->each[j][i];
            if (t[j] > hi)
                hi = t[j];
        }
        if (!isfinite(hi))
            return INFINITY;
        for (uint32_t j = 0; j < k; j++)
            sum += exp(t[j] - hi);
        double lse = hi + log(sum), w = m->g[i].w;
        ll += w * lse;
        if (!grad)
            continue;
        for (uint32_t j = 0; j < k; j++) {
            double resp = w * exp(t[j] - lse);
            for (int q = 0; q < 4; q++)
                grad[4 * j + (uint32_t)q] -= resp * m->d[j][i][q];
            if (j + 1 < k)
                grad[4 * k + j] -= resp - w * pi[j];
        }
    }
    if (grad)
        for (uint32_t q = 0; q < np; q++)
            grad[q] /= m->total;
    return -ll / m->total;
}

typedef double bfgs_h[SS_FIT_MAXP][SS_FIT_MAXP];

/* Minimises mix_fg from x by BFGS with a backtracking line search. H is the
 * inverse Hessian's estimate: the identity when warm is 0, else as given
 * (from a climb over a sample of the customers: the function is a mean, so
 * its curvature is of the same scale); it is left at the end's estimate.
 * Returns the minimum, or INFINITY when x is not a finite start. */
static double bfgs(const mix_ctx *m, double *x, uint32_t n, int maxit, bfgs_h H, int warm)
{
    double g[SS_FIT_MAXP], g1[SS_FIT_MAXP], x1[SS_FIT_MAXP], dir[SS_FIT_MAXP], sv[SS_FIT_MAXP],
        yv[SS_FIT_MAXP], hy[SS_FIT_MAXP];
    double f = mix_fg(m, x, g);
    if (!isfinite(f))
        return INFINITY;
    for (uint32_t i = 0; i < n && !warm; i++)
        for (uint32_t j = 0; j < n; j++)
            H[i][j] = i == j;
    int flat = 0;
    for (int it = 0; it < maxit; it++) {
        double gmax = 0.0, slope = 0.0, big = 0.0;
        for (uint32_t i = 0; i < n; i++) {
            gmax = fmax(gmax, fabs(g[i]));
            dir[i] = 0.0;
            for (uint32_t j = 0; j < n; j++)
                dir[i] -= H[i][j] * g[j];
            slope += dir[i] * g[i];
            big = fmax(big, fabs(dir[i]));
        }
        if (gmax < 1e-9)
            break;
        if (slope >= 0.0) {
            /* Not a descent direction: start again from steepest descent. */
            for (uint32_t i = 0; i < n; i++) {
                for (uint32_t j = 0; j < n; j++)
                    H[i][j] = i == j;
                dir[i] = -g[i];
            }
            slope = 0.0;
            big = 0.0;
            for (uint32_t i = 0; i < n; i++) {
                slope -= g[i] * g[i];
                big = fmax(big, fabs(dir[i]));
            }
        }
        /* At most one unit of a log or logit per step. */
        double step = big > 1.0 ? 1.0 / big : 1.0, f1 = INFINITY;
        int tries;
        for (tries = 0; tries < 50; tries++, step *= 0.5) {
            for (uint32_t i = 0; i < n; i++)
                x1[i] = x[i] + step * dir[i];
            f1 = mix_fg(m, x1, g1);
            if (f1 <= f + 1e-4 * step * slope)
                break;
        }
        if (tries == 50)
            break;
        double sy = 0.0;
        for (uint32_t i = 0; i < n; i++) {
            sv[i] = x1[i] - x[i];
            yv[i] = g1[i] - g[i];
            sy += sv[i] * yv[i];
        }
        flat = f - f1 < 1e-13 * fabs(f) ? flat + 1 : 0;
        memcpy(x, x1, n * sizeof *x);
        memcpy(g, g1, n * sizeof *g);
        f = f1;
        if (flat >= 3)
            break;
        if (sy <= 1e-16)
            continue;
        /* The inverse Hessian's update:
         * H += (1 + y'Hy/sy) ss'/sy - (Hy s' + s y'H)/sy. */
        double yhy = 0.0;
        for (uint32_t i = 0; i < n; i++) {
            hy[i] = 0.0;
            for (uint32_t j = 0; j < n; j++)
                hy[i] += H[i][j] * yv[j];
            yhy += yv[i] * hy[i];
        }
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++)
                H[i][j] +=
                    (1.0 + yhy / sy) * sv[i] * sv[j] / sy - (hy[i] * sv[j] + sv[i] * hy[j]) / sy;
    }
    return f;
}

/* The covariance of the estimate x, from the Hessian of mix_fg by central
 * differences of its gradient, over n customers. Returns 0 or -1. */
static int mix_cov(const mix_ctx *m, const double *x, uint32_t np, double *cov)
{
    double y[SS_FIT_MAXP], gp[SS_FIT_MAXP], gm[SS_FIT_MAXP];
    for (uint32_t j = 0; j < np; j++) {
        double h = 1e-4;
        memcpy(y, x, np * sizeof *y);
        y[j] += h;
        double fp = mix_fg(m, y, gp);
        y[j] -= 2 * h;
        double fm = mix_fg(m, y, gm);
        if (!isfinite(fp) || !isfinite(fm))
            return -1;
        for (uint32_t i = 0; i < np; i++)
            cov[i * np + j] = (gp[i] - gm[i]) / (2 * h);
    }
    for (uint32_t i = 0; i < np; i++)
        for (uint32_t j = i + 1; j < np; j++)
            cov[i * np + j] = cov[j * np + i] = 0.5 * (cov[i * np + j] + cov[j * np + i]);
    if (ss_fit_invert(cov, (int)np))
        return -1;
    for (uint32_t i = 0; i < np * np; i++)
        cov[i] /= m->total;
    return 0;
}

static void mix_open(mix_ctx *m, const ss_fit_rfm *c, size_t n, uint32_t k)
{
    memset(m, 0, sizeof *m);
    m->total = (double)n;
    m->k = k;
    m->g = group_rfm(c, n, &m->ng);
    for (uint32_t j = 0; j < k; j++) {
        m->each[j] = ss_calloc(m->ng, sizeof *m->each[j]);
        m->d[j] = ss_calloc(m->ng, sizeof *m->d[j]);
    }
}

static void mix_close(mix_ctx *m)
{
    for (uint32_t j = 0; j < m->k; j++) {
        free(m->each[j]);
        free(m->d[j]);
    }
    free((void *)m->g);
}

/* The most customers that the starts climb over. */
#define SEARCH_CUSTOMERS 50000

/* Climbs from two starts around the one-class estimate, with equal shares
 * (one start for a single class): classes apart in their purchase rates
 * (alpha), and classes apart in their dropout (a). The better end goes to
 * bx; returns its value. */
static double search(const mix_ctx *m, uint32_t k, const ss_fit_bgnbd *start, double *bx, bfgs_h bh)
{
    static const double spread[SS_FIT_MAX_CLASSES][SS_FIT_MAX_CLASSES] = {
        {1}, {0.25, 4}, {0.2, 1, 5}};
    uint32_t np = 5 * k - 1;
    double best = INFINITY;
    for (int s = 0; s < (k > 1 ? 2 : 1); s++) {
        double x[SS_FIT_MAXP] = {0};
        for (uint32_t j = 0; j < k; j++) {
            x[4 * j] = log(start->r);
            x[4 * j + 1] = log(start->alpha * (s == 0 ? spread[k - 1][j] : 1.0));
            x[4 * j + 2] = log(start->a * (s == 1 ? spread[k - 1][j] : 1.0));
            x[4 * j + 3] = log(start->b);
        }
        bfgs_h H;
        double f = bfgs(m, x, np, 500, H, 0);
        if (f < best) {
            best = f;
            memcpy(bx, x, np * sizeof *x);
            memcpy(bh, H, sizeof H);
        }
    }
    return best;
}

int ss_fit_bgnbd_classes(const ss_fit_rfm *c, size_t n, uint32_t k, const ss_fit_bgnbd *start,
                         ss_fit_bgnbd_mix *out)
{
    memset(out, 0, sizeof *out);
    out->k = k;
    if (n == 0 || k < 1 || k > SS_FIT_MAX_CLASSES)
        return -1;
    uint32_t np = 5 * k - 1;
    double bx[SS_FIT_MAXP];
    bfgs_h bh;
    /* Over many customers the starts climb on a systematic sample of them
     * (every step-th), and only the best end climbs on to the top over all. */
    size_t step = (n + SEARCH_CUSTOMERS - 1) / SEARCH_CUSTOMERS;
    if (step > 1) {
        size_t ns = 0;
        ss_fit_rfm *sub = ss_calloc(n / step + 1, sizeof *sub);
        for (size_t i = 0; i < n; i += step)
            sub[ns++] = c[i];
        mix_ctx ms;
        mix_open(&ms, sub, ns, k);
        double f = search(&ms, k, start, bx, bh);
        mix_close(&ms);
        free(sub);
        if (!isfinite(f))
            return -1;
    }
    mix_ctx m;
    mix_open(&m, c, n, k);
    double best = step > 1 ? bfgs(&m, bx, np, 500, bh, 1) : search(&m, k, start, bx, bh);
    int rc = isfinite(best) ? 0 : -1;
    double cov[SS_FIT_MAXP * SS_FIT_MAXP];
    int have_cov = !rc && !mix_cov(&m, bx, np, cov);
    if (!rc) {
        /* The shares, and their variances by the delta method through the
         * softmax: d pi_j / d u_l = pi_j (1{j=l} - pi_l). */
        double pi[SS_FIT_MAX_CLASSES], var[SS_FIT_MAX_CLASSES], s = 0.0;
        for (uint32_t j = 0; j < k; j++)
            s += pi[j] = exp(j + 1 < k ? bx[4 * k + j] : 0.0);
        for (uint32_t j = 0; j < k; j++)
            pi[j] /= s;
        for (uint32_t j = 0; j < k; j++) {
            double J[SS_FIT_MAX_CLASSES];
            for (uint32_t l = 0; l + 1 < k; l++)
                J[l] = pi[j] * ((j == l) - pi[l]);
            var[j] = 0.0;
            for (uint32_t l = 0; l + 1 < k; l++)
                for (uint32_t q = 0; q + 1 < k; q++)
                    var[j] += J[l] * J[q] * cov[(4 * k + l) * np + 4 * k + q];
        }
        /* Classes in the order of their live customers' mean rate r / alpha,
         * fastest first, so that the same data give the same order. */
        uint32_t ord[SS_FIT_MAX_CLASSES];
        for (uint32_t j = 0; j < k; j++)
            ord[j] = j;
        for (uint32_t i = 1; i < k; i++)
            for (uint32_t j = i; j > 0 && bx[4 * ord[j]] - bx[4 * ord[j] + 1] >
                                              bx[4 * ord[j - 1]] - bx[4 * ord[j - 1] + 1];
                 j--) {
                uint32_t t = ord[j];
                ord[j] = ord[j - 1];
                ord[j - 1] = t;
            }
        for (uint32_t j = 0; j < k; j++) {
            uint32_t o = ord[j];
            double v[4], se[4];
            for (uint32_t q = 0; q < 4; q++) {
                v[q] = exp(bx[4 * o + q]);
                /* The delta method again: se(theta) = theta se(ln theta). */
                double c2 = have_cov ? cov[(4 * o + q) * np + 4 * o + q] : NAN;
                se[q] = c2 > 0 ? v[q] * sqrt(c2) : NAN;
            }
            out->cls[j] = (ss_fit_bgnbd){v[0], v[1], v[2], v[3], se[0], se[1], se[2], se[3], NAN};
            out->share[j] = pi[o];
            out->se_share[j] = have_cov && var[o] > 0 ? sqrt(var[o]) : NAN;
        }
        out->ll = -best * (double)n;
        out->bic = -2.0 * out->ll + (double)np * log((double)n);
    }
    mix_close(&m);
    return rc;
}

double ss_fit_bgnbd_classes_nll(const ss_fit_rfm *c, size_t n, uint32_t k, const double *p,
                                double *grad)
{
    if (n == 0 || k < 1 || k > SS_FIT_MAX_CLASSES)
        return NAN;
    mix_ctx m;
    mix_open(&m, c, n, k);
    double f = mix_fg(&m, p, grad);
    mix_close(&m);
    return f;
}

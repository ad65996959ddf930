#include "gen/fit_math.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* ---- Nelder-Mead ---- */

double ss_fit_nelder_mead(double (*f)(const double *x, void *ctx), void *ctx, double *x,
                          const double *step, int n, double tol, int maxit)
{
    double p[SS_FIT_MAXP + 1][SS_FIT_MAXP], fv[SS_FIT_MAXP + 1], c[SS_FIT_MAXP], xr[SS_FIT_MAXP],
        xe[SS_FIT_MAXP];
    int evals = 0;
    if (n > SS_FIT_MAXP)
        return NAN;
    for (int i = 0; i <= n; i++) {
        memcpy(p[i], x, (size_t)n * sizeof *x);
        if (i > 0)
            p[i][i - 1] += step[i - 1];
        fv[i] = f(p[i], ctx);
        evals++;
    }
    for (;;) {
        /* Order: best first. */
        for (int i = 1; i <= n; i++)
            for (int j = i; j > 0 && (fv[j] < fv[j - 1] || isnan(fv[j - 1])); j--) {
                double t = fv[j];
                fv[j] = fv[j - 1];
                fv[j - 1] = t;
                for (int k = 0; k < n; k++) {
                    t = p[j][k];
                    p[j][k] = p[j - 1][k];
                    p[j - 1][k] = t;
                }
            }
        if (evals >= maxit || fabs(fv[n] - fv[0]) <= tol * (fabs(fv[0]) + tol))
            break;
        for (int k = 0; k < n; k++) {
            c[k] = 0.0;
            for (int i = 0; i < n; i++)
                c[k] += p[i][k] / n;
        }
        for (int k = 0; k < n; k++)
            xr[k] = c[k] + (c[k] - p[n][k]);
        double fr = f(xr, ctx);
        evals++;
        if (fr < fv[0]) {
            for (int k = 0; k < n; k++)
                xe[k] = c[k] + 2.0 * (c[k] - p[n][k]);
            double fe = f(xe, ctx);
            evals++;
            if (fe < fr) {
                memcpy(p[n], xe, (size_t)n * sizeof *x);
                fv[n] = fe;
            } else {
                memcpy(p[n], xr, (size_t)n * sizeof *x);
                fv[n] = fr;
            }
            continue;
        }
        if (fr < fv[n - 1]) {
            memcpy(p[n], xr, (size_t)n * sizeof *x);
            fv[n] = fr;
            continue;
        }
        /* Contract towards the better of the worst point and its reflection. */
        int outside = fr < fv[n];
        for (int k = 0; k < n; k++)
            xe[k] = c[k] + 0.5 * ((outside ? xr[k] : p[n][k]) - c[k]);
        double fc = f(xe, ctx);
        evals++;
        if (fc < (outside ? fr : fv[n])) {
            memcpy(p[n], xe, (size_t)n * sizeof *x);
            fv[n] = fc;
            continue;
        }
        for (int i = 1; i <= n; i++) {
            for (int k = 0; k < n; k++)
                p[i][k] = p[0][k] + 0.5 * (p[i][k] - p[0][k]);
            fv[i] = f(p[i], ctx);
            evals++;
        }
    }
    memcpy(x, p[0], (size_t)n * sizeof *x);
    return fv[0];
}

/* Inverts the n x n matrix a in place (Gauss-Jordan with partial pivoting). */
int ss_fit_invert(double *a, int n)
{
    double inv[SS_FIT_MAXP * SS_FIT_MAXP];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            inv[i * n + j] = i == j;
    for (int col = 0; col < n; col++) {
        int piv = col;
        for (int i = col + 1; i < n; i++)
            if (fabs(a[i * n + col]) > fabs(a[piv * n + col]))
                piv = i;
        if (!(fabs(a[piv * n + col]) > 1e-300))
            return -1;
        for (int j = 0; j < n; j++) {
            double t = a[col * n + j];
            a[col * n + j] = a[piv * n + j];
            a[piv * n + j] = t;
            t = inv[col * n + j];
            inv[col * n + j] = inv[piv * n + j];
            inv[piv * n + j] = t;
        }
        double d = a[col * n + col];
        for (int j = 0; j < n; j++) {
            a[col * n + j] /= d;
            inv[col * n + j] /= d;
        }
        for (int i = 0; i < n; i++) {
            if (i == col)
                continue;
            double m = a[i * n + col];
            for (int j = 0; j < n; j++) {
                a[i * n + j] -= m * a[col * n + j];
                inv[i * n + j] -= m * inv[col * n + j];
            }
        }
    }
    memcpy(a, inv, (size_t)(n * n) * sizeof *a);
    return 0;
}

int ss_fit_hessian_se(double (*f)(const double *x, void *ctx), void *ctx, const double *x, int n,
                      double *se)
{
    double h[SS_FIT_MAXP], H[SS_FIT_MAXP * SS_FIT_MAXP], y[SS_FIT_MAXP];
    if (n > SS_FIT_MAXP)
        return -1;
    for (int i = 0; i < n; i++)
        h[i] = 1e-4 * (fabs(x[i]) > 1e-3 ? fabs(x[i]) : 1e-3);
    double f0 = f(x, ctx);
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            double v[4];
            for (int s = 0; s < 4; s++) {
                memcpy(y, x, (size_t)n * sizeof *x);
                y[i] += (s & 1 ? -1 : 1) * h[i];
                y[j] += (s & 2 ? -1 : 1) * h[j];
                v[s] = f(y, ctx);
            }
            if (i == j) {
                memcpy(y, x, (size_t)n * sizeof *x);
                y[i] += h[i];
                double fp = f(y, ctx);
                y[i] -= 2 * h[i];
                double fm = f(y, ctx);
                H[i * n + i] = (fp - 2 * f0 + fm) / (h[i] * h[i]);
            } else {
                H[i * n + j] = H[j * n + i] = (v[0] - v[1] - v[2] + v[3]) / (4 * h[i] * h[j]);
            }
        }
    if (ss_fit_invert(H, n))
        return -1;
    for (int i = 0; i < n; i++)
        se[i] = H[i * n + i] > 0 ? sqrt(H[i * n + i]) : NAN;
    return 0;
}

/* ---- Poisson trend ---- */

int ss_fit_poisson_trend(const double *counts, const double *w, int n, double *level, double *g,
                         double *se_g, double *cv)
{
    double sum = 0, sw = 0, xbar = 0;
    for (int d = 0; d < n; d++) {
        sum += counts[d];
        sw += w[d];
        xbar += (d + 0.5) * w[d];
    }
    *level = sw > 0 ? sum / sw : 0;
    *g = 0;
    *se_g = NAN;
    *cv = 0;
    if (n < 2 || !(sum > 0) || !(sw > 0))
        return -1;
    /* Newton's method on centred days, where the two parameters are nearly
     * independent. */
    xbar /= sw;
    double c = log(*level), gg = 0, icc = 0, icg = 0, igg = 0;
    for (int it = 0; it < 100; it++) {
        double uc = 0, ug = 0;
        icc = icg = igg = 0;
        for (int d = 0; d < n; d++) {
            double x = d + 0.5 - xbar, mu = exp(c + gg * x) * w[d];
            uc += counts[d] - mu;
            ug += x * (counts[d] - mu);
            icc += mu;
            icg += x * mu;
            igg += x * x * mu;
        }
        double det = icc * igg - icg * icg;
        if (!(det > 0))
            return -1;
        double dc = (igg * uc - icg * ug) / det, dg = (icc * ug - icg * uc) / det;
        if (dg > 0.05)
            dg = 0.05;
        if (dg < -0.05)
            dg = -0.05;
        c += dc;
        gg += dg;
        if (fabs(dc) < 1e-10 && fabs(dg) < 1e-12)
            break;
    }
    double chi = 0, num = 0, den = 0;
    for (int d = 0; d < n; d++) {
        double mu = exp(c + gg * (d + 0.5 - xbar)) * w[d];
        if (mu > 0) {
            chi += (counts[d] - mu) * (counts[d] - mu) / mu;
            num += (counts[d] - mu) * (counts[d] - mu) - counts[d];
            den += mu * mu;
        }
    }
    double phi = n > 2 ? chi / (n - 2) : 1.0;
    *g = gg;
    *level = exp(c - gg * xbar);
    *se_g = sqrt((phi > 1 ? phi : 1) * icc / (icc * igg - icg * icg));
    *cv = den > 0 && num > 0 ? sqrt(num / den) : 0.0;
    return 0;
}

/* ---- the daily curve ---- */

void ss_fit_daily_points(const double *bins, double *points)
{
    /* Minimise sum_h ((p_h + p_h+1) / 2 - b_h)^2 + eps sum_h (p_h-1 - 2 p_h + p_h+1)^2
     * over the circle of hours: the normal equations are a 24 x 24 system.
     * Without the penalty the alternating pattern would be free. */
    enum { H = 24 };
    double A[H][H + 1], tot = 0;
    for (int h = 0; h < H; h++)
        tot += bins[h];
    memset(A, 0, sizeof A);
    const double eps = 0.02;
    for (int h = 0; h < H; h++) {
        double b = tot > 0 ? bins[h] * H / tot : 1.0;
        int i = h, j = (h + 1) % H;
        /* residual (p_i + p_j)/2 - b */
        A[i][i] += 0.25, A[i][j] += 0.25, A[j][i] += 0.25, A[j][j] += 0.25;
        A[i][H] += 0.5 * b, A[j][H] += 0.5 * b;
        int k[3] = {(h + H - 1) % H, h, (h + 1) % H};
        double cf[3] = {1, -2, 1};
        for (int u = 0; u < 3; u++)
            for (int v = 0; v < 3; v++)
                A[k[u]][k[v]] += eps * cf[u] * cf[v];
    }
    for (int col = 0; col < H; col++) {
        int piv = col;
        for (int r = col + 1; r < H; r++)
            if (fabs(A[r][col]) > fabs(A[piv][col]))
                piv = r;
        for (int j = 0; j <= H; j++) {
            double t = A[col][j];
            A[col][j] = A[piv][j];
            A[piv][j] = t;
        }
        for (int r = 0; r < H; r++) {
            if (r == col || A[col][col] == 0)
                continue;
            double m = A[r][col] / A[col][col];
            for (int j = col; j <= H; j++)
                A[r][j] -= m * A[col][j];
        }
    }
    double mean = 0;
    for (int h = 0; h < H; h++) {
        double v = A[h][h] != 0 ? A[h][H] / A[h][h] : 1.0;
        points[h] = v > 0.01 ? v : 0.01;
        mean += points[h] / H;
    }
    for (int h = 0; h < H; h++)
        points[h] /= mean;
}

/* ---- Zipf ---- */

typedef struct zipf_ctx {
    const uint64_t *const *counts;
    const uint32_t *n;
    uint32_t ng;
} zipf_ctx;

static double zipf_neg_ll(const double *s, void *vctx)
{
    const zipf_ctx *z = vctx;
    double ll = 0, tot = 0;
    for (uint32_t g = 0; g < z->ng; g++) {
        double h = 0, sc = 0, nc = 0;
        for (uint32_t r = 0; r < z->n[g]; r++) {
            double lr = log(r + 1.0);
            h += exp(-s[0] * lr);
            sc += (double)z->counts[g][r] * lr;
            nc += (double)z->counts[g][r];
        }
        ll += -s[0] * sc - nc * log(h);
        tot += nc;
    }
    return tot > 0 ? -ll : 0.0;
}

double ss_fit_zipf(const uint64_t *const *counts, const uint32_t *n, uint32_t ng, double *se)
{
    zipf_ctx z = {counts, n, ng};
    /* Golden-section search: the log-likelihood is concave in s. */
    double lo = 0, hi = 5, gr = (sqrt(5.0) - 1) / 2;
    double x1 = hi - gr * (hi - lo), x2 = lo + gr * (hi - lo);
    double f1 = zipf_neg_ll(&x1, &z), f2 = zipf_neg_ll(&x2, &z);
    for (int it = 0; it < 60; it++) {
        if (f1 < f2) {
            hi = x2;
            x2 = x1;
            f2 = f1;
            x1 = hi - gr * (hi - lo);
            f1 = zipf_neg_ll(&x1, &z);
        } else {
            lo = x1;
            x1 = x2;
            f1 = f2;
            x2 = lo + gr * (hi - lo);
            f2 = zipf_neg_ll(&x2, &z);
        }
    }
    double s = (lo + hi) / 2;
    if (ss_fit_hessian_se(zipf_neg_ll, &z, &s, 1, se))
        *se = NAN;
    return s;
}

/* ---- fidelity statistics ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double ss_fit_ks(double *a, size_t na, double *b, size_t nb)
{
    if (!na || !nb)
        return NAN;
    qsort(a, na, sizeof *a, cmp_double);
    qsort(b, nb, sizeof *b, cmp_double);
    size_t i = 0, j = 0;
    double d = 0;
    /* Step through every distinct value, past all its ties on both sides. */
    while (i < na && j < nb) {
        double v = a[i] < b[j] ? a[i] : b[j];
        while (i < na && a[i] <= v)
            i++;
        while (j < nb && b[j] <= v)
            j++;
        double diff = fabs((double)i / na - (double)j / nb);
        if (diff > d)
            d = diff;
    }
    return d;
}

double ss_fit_tv(const double *p, const double *q, size_t n)
{
    double sp = 0, sq = 0, d = 0;
    for (size_t i = 0; i < n; i++) {
        sp += p[i];
        sq += q[i];
    }
    if (!(sp > 0) || !(sq > 0))
        return NAN;
    for (size_t i = 0; i < n; i++)
        d += fabs(p[i] / sp - q[i] / sq);
    return d / 2;
}

double ss_fit_pearson(const double *x, const double *y, size_t n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i] / n;
        my += y[i] / n;
    }
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (!(sxx > 0) || !(syy > 0))
        return NAN;
    return sxy / sqrt(sxx * syy);
}

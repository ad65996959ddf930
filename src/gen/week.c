#include "gen/week.h"

#include <math.h>

#include "common/timeutil.h"

/* 1970-01-05, the first Monday of the epoch. */
#define MONDAY0_MS (4.0 * (double)SS_MS_PER_DAY)
#define WEEK_MS    (7.0 * (double)SS_MS_PER_DAY)
#define HOUR_MS    ((double)SS_MS_PER_HOUR)

void ss_week_init(ss_week *w, const ss_profile *p)
{
    w->offset_ms = (double)p->utc_offset_ms;
    w->cum[0] = 0.0;
    for (int k = 0; k < SS_WEEK_HOURS; k++) {
        int day = k / 24, h = k % 24;
        w->a[k] = p->daily_curve[h] * p->weekly_curve[day];
        w->b[k] = p->daily_curve[(h + 1) % 24] * p->weekly_curve[day];
        w->cum[k + 1] = w->cum[k] + (w->a[k] + w->b[k]) / 2.0;
    }
}

/* Hour of the week (0..167) and the fraction into it of time t; *week gets
 * the index of t's week since MONDAY0. */
static int locate(const ss_week *w, double t, double *week, double *frac)
{
    double rel = t + w->offset_ms - MONDAY0_MS;
    *week = floor(rel / WEEK_MS);
    double h = (rel - *week * WEEK_MS) / HOUR_MS;
    int k = (int)h;
    if (k > SS_WEEK_HOURS - 1)
        k = SS_WEEK_HOURS - 1;
    if (k < 0)
        k = 0;
    *frac = h - k;
    return k;
}

double ss_week_at(const ss_week *w, double t)
{
    double week, f;
    int k = locate(w, t, &week, &f);
    return w->a[k] * (1.0 - f) + w->b[k] * f;
}

double ss_week_advance(const ss_week *w, double t, double mass)
{
    double total = w->cum[SS_WEEK_HOURS];
    if (!(total > 0.0))
        return -1.0;
    double week, f;
    int k = locate(w, t, &week, &f);
    /* The target as mass since the start of t's week, then whole weeks off. */
    double m = w->cum[k] + f * (w->a[k] + (w->b[k] - w->a[k]) * f / 2.0) + mass;
    double weeks = floor(m / total);
    m -= weeks * total;
    if (m < 0.0)
        m = 0.0;
    /* The last hour whose start is at or before m. */
    int lo = 0, hi = SS_WEEK_HOURS - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (w->cum[mid] <= m)
            lo = mid;
        else
            hi = mid - 1;
    }
    /* Within the hour the intensity is a + (b - a) x, whose integral to x is
     * a x + (b - a) x^2 / 2 = r; this form of the root holds for b == a and
     * a == 0 alike. */
    double a = w->a[lo], r = m - w->cum[lo];
    double d = a + sqrt(a * a + 2.0 * (w->b[lo] - a) * r);
    double x = d > 0.0 ? 2.0 * r / d : 0.0;
    if (x > 1.0)
        x = 1.0;
    return MONDAY0_MS + (week + weeks) * WEEK_MS + ((double)lo + x) * HOUR_MS - w->offset_ms;
}

/* Unit tests of gen/week: the intensity matches the daily and weekly curves,
 * the inverted integral lands where the integral from the start reaches the
 * mass asked for (within an hour, across days and across weeks), the points
 * of a process drawn by inversion fall into the hours of the week in
 * proportion to their intensity, and a week without intensity says so. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "common/rng.h"
#include "common/timeutil.h"
#include "gen/week.h"

/* A shape with a quiet night, a zero hour, a peak and an uneven week. */
static void shape(ss_profile *p, int64_t utc_offset_ms)
{
    memset(p, 0, sizeof *p);
    for (int h = 0; h < 24; h++)
        p->daily_curve[h] = h < 6 ? 0.2 : h == 3 ? 0.0 : 0.5 + h / 10.0;
    p->daily_curve[3] = p->daily_curve[4] = 0.0; /* 03:00-04:00 silent */
    p->daily_curve[20] = 3.0;
    static const double week[7] = {0.8, 0.9, 1.0, 1.0, 1.1, 1.5, 0.7};
    memcpy(p->weekly_curve, week, sizeof week);
    p->utc_offset_ms = utc_offset_ms;
}

/* The curve as the generator defines it: hourly points, linear between. */
static double curve(const ss_profile *p, double t)
{
    double local = t + (double)p->utc_offset_ms;
    double day = floor(local / (double)SS_MS_PER_DAY);
    double h = (local - day * (double)SS_MS_PER_DAY) / (double)SS_MS_PER_HOUR;
    int i = (int)h;
    if (i > 23)
        i = 23;
    double f = h - i;
    int wd = (int)((((int64_t)day + 3) % 7 + 7) % 7);
    return (p->daily_curve[i] * (1 - f) + p->daily_curve[(i + 1) % 24] * f) * p->weekly_curve[wd];
}

/* Integral of the curve from t0 to t1 in intensity x hours, by the midpoint
 * rule on one-minute steps (exact enough for a curve linear within hours). */
static double integral(const ss_profile *p, double t0, double t1)
{
    double step = 60000.0, sum = 0.0;
    for (double t = t0; t < t1; t += step) {
        double e = t + step < t1 ? t + step : t1;
        sum += curve(p, (t + e) / 2) * (e - t);
    }
    return sum / (double)SS_MS_PER_HOUR;
}

static void test_at(void)
{
    ss_profile p;
    ss_week w;
    int bad = 0;
    for (int off = -1; off <= 1; off++) {
        shape(&p, off * 5 * SS_MS_PER_HOUR + off * 30 * 60000);
        ss_week_init(&w, &p);
        for (double t = 1767225600000.0; t < 1767225600000.0 + 8 * 86400000.0; t += 977777.0)
            bad += fabs(ss_week_at(&w, t) - curve(&p, t)) > 1e-9;
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_advance_integral(void)
{
    ss_profile p;
    ss_week w;
    shape(&p, 2 * SS_MS_PER_HOUR);
    ss_week_init(&w, &p);
    ss_rng rng;
    ss_rng_seed(&rng, 11);
    int bad = 0, backwards = 0;
    static const double masses[] = {0.001, 0.3, 2.0, 17.0, 200.0, 1000.0};
    for (int i = 0; i < 300; i++) {
        double t = 1767225600000.0 + ss_rng_uniform(&rng) * 30 * 86400000.0;
        double m = masses[i % 6] * (0.5 + ss_rng_uniform(&rng));
        double t1 = ss_week_advance(&w, t, m);
        backwards += !(t1 >= t);
        /* One minute's worth of the peak intensity as the tolerance. */
        bad += fabs(integral(&p, t, t1) - m) > 3.0 * 1.5 / 60.0 + m * 1e-6;
    }
    CHECK_EQ_INT(backwards, 0);
    CHECK_EQ_INT(bad, 0);
}

/* A Poisson process of rate 1 per intensity x hour, drawn by inversion: the
 * share of its points in each hour of the week must match that hour's share
 * of the week's integral, and no point may land in an hour with none. */
static void test_process_shares(void)
{
    ss_profile p;
    ss_week w;
    shape(&p, 0);
    ss_week_init(&w, &p);
    ss_rng rng;
    ss_rng_seed(&rng, 5);
    enum { N = 400000 };
    static int count[SS_WEEK_HOURS];
    double t = 1767225600000.0;
    for (int i = 0; i < N; i++) {
        t = ss_week_advance(&w, t, ss_rng_exponential(&rng, 1.0));
        double rel = t - 4.0 * SS_MS_PER_DAY;
        double pos = rel - floor(rel / (7.0 * SS_MS_PER_DAY)) * 7.0 * SS_MS_PER_DAY;
        count[(int)(pos / SS_MS_PER_HOUR)]++;
    }
    int bad = 0, in_silence = 0, silent = 0;
    for (int k = 0; k < SS_WEEK_HOURS; k++) {
        double share = (w.cum[k + 1] - w.cum[k]) / w.cum[SS_WEEK_HOURS];
        double expect = share * N, sd = sqrt(expect * (1 - share));
        if (w.a[k] == 0.0 && w.b[k] == 0.0) {
            silent++;
            in_silence += count[k];
        } else
            bad += fabs(count[k] - expect) > 5.0 * sd + 1.0;
    }
    CHECK_EQ_INT(silent, 7);
    CHECK_EQ_INT(in_silence, 0);
    CHECK_EQ_INT(bad, 0);
}

static void test_silent_week(void)
{
    ss_profile p;
    memset(&p, 0, sizeof p);
    ss_week w;
    ss_week_init(&w, &p);
    CHECK(ss_week_advance(&w, 1767225600000.0, 1.0) < 0.0);
}

int main(void)
{
    test_at();
    test_advance_integral();
    test_process_shares();
    test_silent_week();
    return check_done();
}

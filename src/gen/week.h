/* The shop's week as an intensity: the daily curve, linear between its hourly
 * points, times the weekly curve, a step per local day. Its integral over
 * each hour of the week is tabulated, so that the time at which a Poisson
 * process of this shape reaches its next event is found by inversion: one
 * exponential draw, a binary search and a square root, where thinning would
 * draw and reject candidates.
 * @locality immutable after ss_week_init; share freely. */
#ifndef SS_GEN_WEEK_H
#define SS_GEN_WEEK_H

#include <stdint.h>

#include "gen/profile.h"

enum { SS_WEEK_HOURS = 168 };

typedef struct ss_week {
    double offset_ms;        /* the profile's UTC offset */
    double a[SS_WEEK_HOURS]; /* intensity at the start of each hour, Monday 00:00 first */
    double b[SS_WEEK_HOURS]; /* intensity at its end */
    double cum[SS_WEEK_HOURS +
               1]; /* integral from Monday 00:00 to the start of each hour, in intensity x hours */
} ss_week;

void ss_week_init(ss_week *w, const ss_profile *p);

/* The intensity at time t (ms since the epoch, UTC). */
double ss_week_at(const ss_week *w, double t);

/* The time after t (ms) at which the integral of the intensity from t reaches
 * mass (in intensity x hours), or a negative value when the week has no
 * intensity at all. */
double ss_week_advance(const ss_week *w, double t, double mass);

#endif

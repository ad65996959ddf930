/* Time is int64 milliseconds since the Unix epoch, UTC, everywhere.
 * Text form: ISO-8601 with milliseconds and a Z, "2026-11-02T14:03:11.123Z". */
#ifndef SS_TIMEUTIL_H
#define SS_TIMEUTIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SS_ISO_LEN     24 /* strlen("2026-11-02T14:03:11.123Z") */
#define SS_MS_PER_SEC  1000LL
#define SS_MS_PER_MIN  60000LL
#define SS_MS_PER_HOUR 3600000LL
#define SS_MS_PER_DAY  86400000LL

/* Days since 1970-01-01 for a proleptic Gregorian date, and back. */
int64_t ss_days_from_civil(int64_t y, unsigned m, unsigned d);
void ss_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

/* Writes exactly SS_ISO_LEN characters (no terminator) for ms in years 0..9999. */
void ss_time_format_iso(int64_t ms, char out[SS_ISO_LEN]);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z" (exactly as produced above, with the
 * fraction optional and 1 to 3 digits, 'Z' or "+00:00") into ms.
 * Returns 0, or -1 if the text is not such a time or names an invalid date. */
int ss_time_parse_iso(const char *s, size_t len, int64_t *ms);

/* Parses a time given by a person: an ISO time as above, a date
 * "YYYY-MM-DD" (midnight UTC), or "now". Returns 0 or -1. */
int ss_time_parse_user(const char *s, int64_t now_ms, int64_t *ms);

/* Wall clock and monotonic clock, in ms. */
int64_t ss_now_ms(void);
int64_t ss_mono_ms(void);
/* The monotonic clock at the kernel's tick (a few ms), for checks made per
 * record: it costs a fraction of ss_mono_ms. */
int64_t ss_mono_coarse_ms(void);
/* The CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait on a
 * condition variable that uses that clock. */
void ss_mono_deadline(struct timespec *ts, int64_t ms);

/* Initialises cv with CLOCK_MONOTONIC as the clock of its timed waits (for
 * deadlines from ss_mono_deadline). */
void ss_mono_cond_init(pthread_cond_t *cv);

/* Day of week of a time, 0 = Monday .. 6 = Sunday. */
int ss_time_weekday(int64_t ms);

/* Floors ms to a multiple of unit (works for negative times too). */
static inline int64_t ss_time_floor(int64_t ms, int64_t unit)
{
    int64_t r = ms % unit;
    return r < 0 ? ms - r - unit : ms - r;
}

#endif

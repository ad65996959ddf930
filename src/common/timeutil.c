#define _POSIX_C_SOURCE 200809L
#include "common/timeutil.h"

#include <string.h>
#include <time.h>

/* Civil date conversions after Howard Hinnant's public-domain algorithms. */
int64_t ss_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3u : 9u)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void ss_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void put2(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void ss_time_format_iso(int64_t ms, char out[SS_ISO_LEN])
{
    int64_t days = ss_time_floor(ms, SS_MS_PER_DAY) / SS_MS_PER_DAY;
    int64_t rem = ms - days * SS_MS_PER_DAY;
    /* Streams come in time order: the date of the last call usually holds. */
    static _Thread_local int64_t last_days = INT64_MIN;
    static _Thread_local char last_date[11];
    if (days != last_days) {
        int64_t y;
        unsigned m, d;
        ss_civil_from_days(days, &y, &m, &d);
        unsigned yy = (unsigned)(y < 0 ? 0 : y > 9999 ? 9999 : y);
        put2(last_date, yy / 100);
        put2(last_date + 2, yy % 100);
        last_date[4] = '-';
        put2(last_date + 5, m);
        last_date[7] = '-';
        put2(last_date + 8, d);
        last_date[10] = 'T';
        last_days = days;
    }
    memcpy(out, last_date, 11);
    unsigned sec = (unsigned)(rem / 1000), milli = (unsigned)(rem % 1000);
    put2(out + 11, sec / 3600);
    out[13] = ':';
    put2(out + 14, sec / 60 % 60);
    out[16] = ':';
    put2(out + 17, sec % 60);
    out[19] = '.';
    out[20] = (char)('0' + milli / 100);
    put2(out + 21, milli % 100);
    out[23] = 'Z';
}

static int digits(const char *s, int n, unsigned *v)
{
    unsigned x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        x = x * 10 + (unsigned)(s[i] - '0');
    }
    *v = x;
    return 0;
}

static int valid_date(unsigned y, unsigned m, unsigned d)
{
    static const unsigned char mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return 0;
    unsigned lim = mdays[m - 1];
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        lim = 29;
    return d <= lim;
}

static int parse_date(const char *s, unsigned *y, unsigned *m, unsigned *d)
{
    if (digits(s, 4, y) || s[4] != '-' || digits(s + 5, 2, m) || s[7] != '-' || digits(s + 8, 2, d))
        return -1;
    return valid_date(*y, *m, *d) ? 0 : -1;
}

int ss_time_parse_iso(const char *s, size_t len, int64_t *ms)
{
    unsigned y, mo, d, h, mi, se, frac = 0;
    if (len < 20 || parse_date(s, &y, &mo, &d) || s[10] != 'T' || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return -1;
    if (h > 23 || mi > 59 || se > 59)
        return -1;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - start < 3)
            frac = frac * 10 + (unsigned)(s[i++] - '0');
        if (i == start)
            return -1;
        for (size_t k = i - start; k < 3; k++)
            frac *= 10;
    }
    if (len - i == 1 && s[i] == 'Z')
        ;
    else if (len - i == 6 && memcmp(s + i, "+00:00", 6) == 0)
        ;
    else
        return -1;
    /* Consecutive times are mostly on the same day: remember its number. */
    static _Thread_local unsigned last_ymd;
    static _Thread_local int64_t last_days;
    unsigned ymd = y * 10000 + mo * 100 + d;
    if (ymd != last_ymd) {
        last_days = ss_days_from_civil(y, mo, d);
        last_ymd = ymd;
    }
    *ms = last_days * SS_MS_PER_DAY + (int64_t)(h * 3600 + mi * 60 + se) * 1000 + frac;
    return 0;
}

int ss_time_parse_user(const char *s, int64_t now_ms, int64_t *ms)
{
    size_t len = strlen(s);
    unsigned y, m, d;
    if (strcmp(s, "now") == 0) {
        *ms = now_ms;
        return 0;
    }
    if (len == 10 && parse_date(s, &y, &m, &d) == 0) {
        *ms = ss_days_from_civil(y, m, d) * SS_MS_PER_DAY;
        return 0;
    }
    return ss_time_parse_iso(s, len, ms);
}

int64_t ss_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ss_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ss_mono_coarse_ms(void)
{
#ifdef CLOCK_MONOTONIC_COARSE
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0)
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
#endif
    return ss_mono_ms();
}

void ss_mono_deadline(struct timespec *ts, int64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

void ss_mono_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

int ss_time_weekday(int64_t ms)
{
    int64_t days = ss_time_floor(ms, SS_MS_PER_DAY) / SS_MS_PER_DAY;
    /* 1970-01-01 was a Thursday (3 when Monday is 0). */
    int64_t w = (days + 3) % 7;
    return (int)(w < 0 ? w + 7 : w);
}

/* Unit tests of common/timeutil: ISO-8601 formatting and parsing, civil date
 * conversion, weekdays and flooring, checked against the C library's
 * gmtime_r as an independent oracle. */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include "check.h"
#include "common/rng.h"
#include "common/timeutil.h"

static void fmt(int64_t ms, char out[SS_ISO_LEN + 1])
{
    ss_time_format_iso(ms, out);
    out[SS_ISO_LEN] = '\0';
}

static int parse(const char *s, int64_t *ms)
{
    return ss_time_parse_iso(s, strlen(s), ms);
}

/* Known instants, including leap days and year boundaries. */
static void test_known_values(void)
{
    static const struct {
        int64_t ms;
        const char *iso;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-86400000, "1969-12-31T00:00:00.000Z"},
        {1793577600000, "2026-11-02T00:00:00.000Z"},
        {1793577600000 + 14 * 3600000 + 3 * 60000 + 11123, "2026-11-02T14:03:11.123Z"},
        {951782400000, "2000-02-29T00:00:00.000Z"},
        {951782400000 - 1, "2000-02-28T23:59:59.999Z"},
        {951782400000 + 86400000, "2000-03-01T00:00:00.000Z"},
        {1709164800000, "2024-02-29T00:00:00.000Z"},
        {-2203891200000, "1900-03-01T00:00:00.000Z"},
        {-2203891200000 - 1, "1900-02-28T23:59:59.999Z"},
        {946684800000 - 1, "1999-12-31T23:59:59.999Z"},
        {946684800000, "2000-01-01T00:00:00.000Z"},
        {-62135596800000, "0001-01-01T00:00:00.000Z"},
        {253402214400000 + 86400000 - 1, "9999-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char s[SS_ISO_LEN + 1];
        fmt(cases[i].ms, s);
        CHECK_STR(s, cases[i].iso);
        int64_t back = 0;
        CHECK_EQ_INT(parse(cases[i].iso, &back), 0);
        CHECK_EQ_INT(back, cases[i].ms);
    }
}

/* Civil dates round-trip day by day over years 0..9999 and match the known
 * day numbers and month lengths. */
static void test_civil_days(void)
{
    int64_t first = ss_days_from_civil(0, 1, 1), last = ss_days_from_civil(9999, 12, 31);
    CHECK_EQ_INT(ss_days_from_civil(1970, 1, 1), 0);
    CHECK_EQ_INT(ss_days_from_civil(2000, 3, 1) - ss_days_from_civil(2000, 2, 28), 2);
    CHECK_EQ_INT(ss_days_from_civil(1900, 3, 1) - ss_days_from_civil(1900, 2, 28), 1);
    CHECK_EQ_INT(ss_days_from_civil(2100, 3, 1) - ss_days_from_civil(2100, 2, 28), 1);
    CHECK_EQ_INT(ss_days_from_civil(2024, 3, 1) - ss_days_from_civil(2024, 2, 28), 2);
    CHECK_EQ_INT(last - first + 1, 10000 * 365 + 2425); /* leap years in 0..9999 */
    int bad = 0;
    int64_t py = 0;
    unsigned pm = 1, pd = 0;
    for (int64_t z = first; z <= last; z++) {
        int64_t y;
        unsigned m, d;
        ss_civil_from_days(z, &y, &m, &d);
        /* Each day follows the previous one. */
        int next = (y == py && m == pm && d == pd + 1) || (y == py && m == pm + 1 && d == 1) ||
                   (y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31);
        if (z > first && !next)
            bad++;
        if (ss_days_from_civil(y, m, d) != z)
            bad++;
        py = y;
        pm = m;
        pd = d;
    }
    CHECK_EQ_INT(bad, 0);
}

/* Random instants in years 1..9999: format matches gmtime_r, and parse
 * returns the same ms; the weekday matches too. */
static void test_round_trip_random(void)
{
    ss_rng rng;
    ss_rng_seed(&rng, 42);
    int64_t lo = ss_days_from_civil(1, 1, 1) * SS_MS_PER_DAY;
    int64_t hi = (ss_days_from_civil(9999, 12, 31) + 1) * SS_MS_PER_DAY;
    int bad_fmt = 0, bad_parse = 0, bad_wday = 0;
    for (int i = 0; i < 200000; i++) {
        int64_t ms = lo + (int64_t)(ss_rng_next(&rng) % (uint64_t)(hi - lo));
        /* Every 8th value sits near a day, year or leap-day boundary. */
        if (i % 8 == 0) {
            int64_t y = 1 + (int64_t)ss_rng_below(&rng, 9998);
            unsigned m = ss_rng_below(&rng, 2) ? 1 : 3;
            ms = ss_days_from_civil(y, m, 1) * SS_MS_PER_DAY + (int64_t)ss_rng_below(&rng, 3) - 1;
        }
        char s[SS_ISO_LEN + 1], ref[64];
        fmt(ms, s);
        time_t secs = (time_t)ss_time_floor(ms, 1000) / 1000;
        struct tm tm;
        if (!gmtime_r(&secs, &tm)) {
            bad_fmt++;
            continue;
        }
        snprintf(ref, sizeof ref, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(ms - ss_time_floor(ms, 1000)));
        if (strcmp(s, ref) != 0 && bad_fmt++ < 5)
            fprintf(stderr, "  %lld: got %s, gmtime_r says %s\n", (long long)ms, s, ref);
        int64_t back = -1;
        if ((parse(s, &back) != 0 || back != ms) && bad_parse++ < 5)
            fprintf(stderr, "  %s parsed to %lld, expected %lld\n", s, (long long)back,
                    (long long)ms);
        if (ss_time_weekday(ms) != (tm.tm_wday + 6) % 7)
            bad_wday++;
    }
    CHECK_EQ_INT(bad_fmt, 0);
    CHECK_EQ_INT(bad_parse, 0);
    CHECK_EQ_INT(bad_wday, 0);
}

static void test_parse_variants(void)
{
    int64_t ms = 0, base = 1793577600000 + 14 * 3600000 + 3 * 60000 + 11000;
    CHECK_EQ_INT(parse("2026-11-02T14:03:11Z", &ms), 0);
    CHECK_EQ_INT(ms, base);
    CHECK_EQ_INT(parse("2026-11-02T14:03:11.5Z", &ms), 0);
    CHECK_EQ_INT(ms, base + 500);
    CHECK_EQ_INT(parse("2026-11-02T14:03:11.12Z", &ms), 0);
    CHECK_EQ_INT(ms, base + 120);
    CHECK_EQ_INT(parse("2026-11-02T14:03:11.007Z", &ms), 0);
    CHECK_EQ_INT(ms, base + 7);
    CHECK_EQ_INT(parse("2026-11-02T14:03:11.123+00:00", &ms), 0);
    CHECK_EQ_INT(ms, base + 123);
    CHECK_EQ_INT(parse("2026-11-02T14:03:11+00:00", &ms), 0);
    CHECK_EQ_INT(ms, base);
    /* Only len bytes are read: the rest of a larger buffer is ignored. */
    const char *line = "2026-11-02T14:03:11.123Z\",\"next\":1";
    CHECK_EQ_INT(ss_time_parse_iso(line, SS_ISO_LEN, &ms), 0);
    CHECK_EQ_INT(ms, base + 123);
}

static void test_parse_rejects(void)
{
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-02",
        "2026-11-02T14:03Z",
        "2026-11-02T14:03:11",
        "2026-11-02T14:03:11.123",
        "2026-11-02 14:03:11.123Z",
        "2026-11-02t14:03:11.123Z",
        "2026-11-02T14:03:11.123z",
        "2026-11-02T14:03:11.Z",
        "2026-11-02T14:03:11.1234Z",
        "2026-11-02T14:03:11.123ZZ",
        "2026-11-02T14:03:11.123Z ",
        " 2026-11-02T14:03:11.123Z",
        "2026-11-02T14:03:11.123+01:00",
        "2026-11-02T14:03:11.123-00:00",
        "2026-11-02T14:03:11.12a",
        "2026-13-02T14:03:11.123Z",
        "2026-00-02T14:03:11.123Z",
        "2026-11-00T14:03:11.123Z",
        "2026-11-31T14:03:11.123Z",
        "2026-02-29T00:00:00.000Z", /* not a leap year */
        "1900-02-29T00:00:00.000Z", /* divisible by 100, not by 400 */
        "2100-02-29T00:00:00.000Z",
        "2026-11-02T24:00:00.000Z",
        "2026-11-02T23:60:00.000Z",
        "2026-11-02T23:59:60.000Z", /* no leap seconds */
        "2026-1-02T14:03:11.123Z",
        "2026/11/02T14:03:11.123Z",
        "+2026-11-02T14:03:11.123Z",
        "-026-11-02T14:03:11.123Z",
        "2026-11-02T1:03:11.123Z",
        "2026-11-02T14:3:11.123Z",
        "2026-11-02T14:03:1.123Z",
        "abcd-ef-ghTij:kl:mn.opqZ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 12345;
        int rc = parse(bad[i], &ms);
        check_report(rc == -1, __FILE__, __LINE__, "'%s' should be rejected (rc %d)", bad[i], rc);
    }
    int64_t ms;
    CHECK_EQ_INT(parse("2000-02-29T00:00:00Z", &ms), 0);
    CHECK_EQ_INT(parse("2400-02-29T00:00:00Z", &ms), 0);
}

static void test_parse_user(void)
{
    int64_t ms = 0, now = 1793577600000 + 123456;
    CHECK_EQ_INT(ss_time_parse_user("now", now, &ms), 0);
    CHECK_EQ_INT(ms, now);
    CHECK_EQ_INT(ss_time_parse_user("2026-11-02", now, &ms), 0);
    CHECK_EQ_INT(ms, 1793577600000);
    CHECK_EQ_INT(ss_time_parse_user("2024-02-29", now, &ms), 0);
    CHECK_EQ_INT(ms, 1709164800000);
    CHECK_EQ_INT(ss_time_parse_user("2026-11-02T00:00:01Z", now, &ms), 0);
    CHECK_EQ_INT(ms, 1793577601000);
    static const char *const bad[] = {
        "",           "NOW",         "now ",       "yesterday",   "today",
        "2026-11-2",  "2026-11-02 ", "2026-02-29", "2026-11-02T", "2026-11-02Z",
        "1793577600", "-1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = ss_time_parse_user(bad[i], now, &ms);
        check_report(rc == -1, __FILE__, __LINE__, "'%s' should be rejected (rc %d)", bad[i], rc);
    }
}

static void test_weekday_and_floor(void)
{
    CHECK_EQ_INT(ss_time_weekday(0), 3);                 /* Thursday */
    CHECK_EQ_INT(ss_time_weekday(-1), 2);                /* Wednesday */
    CHECK_EQ_INT(ss_time_weekday(-86400000), 2);         /* Wednesday */
    CHECK_EQ_INT(ss_time_weekday(-86400000 - 1), 1);     /* Tuesday */
    CHECK_EQ_INT(ss_time_weekday(1793577600000), 0);     /* 2026-11-02, Monday */
    CHECK_EQ_INT(ss_time_weekday(1793577600000 - 1), 6); /* Sunday */
    CHECK_EQ_INT(ss_time_weekday(951782400000), 1);      /* 2000-02-29, Tuesday */
    CHECK_EQ_INT(ss_time_weekday(-62135596800000), 0);   /* 0001-01-01, Monday */
    CHECK_EQ_INT(ss_time_weekday(253402214400000), 4);   /* 9999-12-31, Friday */
    for (int d = 0; d < 14; d++)
        CHECK_EQ_INT(ss_time_weekday(1793577600000 + d * SS_MS_PER_DAY + 1), d % 7);

    CHECK_EQ_INT(ss_time_floor(0, 1000), 0);
    CHECK_EQ_INT(ss_time_floor(1999, 1000), 1000);
    CHECK_EQ_INT(ss_time_floor(-1, 1000), -1000);
    CHECK_EQ_INT(ss_time_floor(-1000, 1000), -1000);
    CHECK_EQ_INT(ss_time_floor(-1001, 1000), -2000);
    CHECK_EQ_INT(ss_time_floor(1793577600000 + 59999, SS_MS_PER_MIN), 1793577600000);
}

static void test_clocks(void)
{
    int64_t now = ss_now_ms(), m1 = ss_mono_ms(), m2 = ss_mono_ms();
    CHECK(now > 1700000000000); /* after 2023 */
    CHECK(m2 >= m1);
}

int main(void)
{
    test_known_values();
    test_civil_days();
    test_round_trip_random();
    test_parse_variants();
    test_parse_rejects();
    test_parse_user();
    test_weekday_and_floor();
    test_clocks();
    return check_done();
}

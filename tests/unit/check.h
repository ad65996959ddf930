/* A tiny test harness shared by the unit tests: each check prints file:line
 * and what differed when it fails, and counts passes and failures. A test's
 * main() ends with `return check_done();`, which prints
 * "test_name: N passed, M failed" and returns non-zero on any failure.
 *
 * Header-only on purpose: every test is one small binary with no test
 * library to build. @locality main thread only (the counters are plain ints). */
#ifndef SS_TEST_CHECK_H
#define SS_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

__attribute__((format(printf, 4, 5))) static inline int check_report(int ok, const char *file,
                                                                     int line, const char *fmt, ...)
{
    if (ok) {
        check_passed++;
        return 1;
    }
    check_failed++;
    fprintf(stderr, "%s:%d: check failed: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 0;
}

/* Each macro evaluates its arguments once and yields 1 if the check passed,
 * so a test can skip what depends on it: `if (CHECK(p)) use(p);`. */
#define CHECK(cond) check_report(!!(cond), __FILE__, __LINE__, "%s", #cond)

#define CHECK_EQ_INT(a, b) check_eq_int((long long)(a), (long long)(b), #a, #b, __FILE__, __LINE__)

#define CHECK_STR(a, b) check_str((a), (b), #a, #b, __FILE__, __LINE__)

/* Passes when needle occurs in haystack (error messages name their cause). */
#define CHECK_CONTAINS(haystack, needle)                                                           \
    check_contains((haystack), (needle), #haystack, __FILE__, __LINE__)

/* |a - b| <= tol, for statistics with a fixed seed. */
#define CHECK_NEAR(a, b, tol) check_near((a), (b), (tol), #a, __FILE__, __LINE__)

static inline int check_eq_int(long long a, long long b, const char *ea, const char *eb,
                               const char *file, int line)
{
    return check_report(a == b, file, line, "%s == %s: %lld != %lld", ea, eb, a, b);
}

static inline int check_str(const char *a, const char *b, const char *ea, const char *eb,
                            const char *file, int line)
{
    int ok = a && b ? strcmp(a, b) == 0 : a == b;
    return check_report(ok, file, line, "%s == %s:\n  got:      %s%s%s\n  expected: %s%s%s", ea, eb,
                        a ? "\"" : "", a ? a : "NULL", a ? "\"" : "", b ? "\"" : "", b ? b : "NULL",
                        b ? "\"" : "");
}

static inline int check_contains(const char *hay, const char *needle, const char *eh,
                                 const char *file, int line)
{
    int ok = hay && needle && strstr(hay, needle) != NULL;
    return check_report(ok, file, line, "%s contains \"%s\":\n  got: \"%s\"", eh, needle,
                        hay ? hay : "NULL");
}

static inline int check_near(double a, double b, double tol, const char *ea, const char *file,
                             int line)
{
    double d = a > b ? a - b : b - a;
    return check_report(d <= tol, file, line, "%s = %.6g, expected %.6g +- %.3g", ea, a, b, tol);
}

/* Prints the summary line named after the test's source file and returns the
 * process exit code. */
#define check_done() check_finish(__FILE__)

static inline int check_finish(const char *file)
{
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    size_t n = strlen(base);
    if (n > 2 && strcmp(base + n - 2, ".c") == 0)
        n -= 2;
    printf("%.*s: %d passed, %d failed\n", (int)n, base, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif

/* Unit tests of common/strset: membership is exact (every string added is
 * found, none other), across growth, for empty and binary strings, and
 * iteration gives each string once in the order of adding. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "common/strset.h"

#define N 50000

static int count_each(void *ctx, const char *p, size_t n)
{
    int *seen = ctx;
    char want[32];
    int len = snprintf(want, sizeof want, "c-%07d", seen[0]);
    if ((size_t)len != n || memcmp(p, want, n) != 0)
        return -1;
    seen[0]++;
    return 0;
}

static int stop_at_three(void *ctx, const char *p, size_t n)
{
    (void)p;
    (void)n;
    return ++*(int *)ctx == 3 ? 7 : 0;
}

int main(void)
{
    ss_strset s;
    ss_strset_init(&s);
    CHECK(!ss_strset_has(&s, "x", 1));
    char id[32];
    int fresh = 0, again = 0;
    for (int i = 0; i < N; i++) {
        int n = snprintf(id, sizeof id, "c-%07d", i);
        fresh += ss_strset_add(&s, id, (size_t)n);
    }
    for (int i = 0; i < N; i += 7) {
        int n = snprintf(id, sizeof id, "c-%07d", i);
        again += ss_strset_add(&s, id, (size_t)n);
    }
    CHECK_EQ_INT(fresh, N);
    CHECK_EQ_INT(again, 0);
    CHECK_EQ_INT(s.n, N);
    int found = 0, stray = 0;
    for (int i = 0; i < 2 * N; i++) {
        int n = snprintf(id, sizeof id, "c-%07d", i);
        if (ss_strset_has(&s, id, (size_t)n))
            *(i < N ? &found : &stray) += 1;
    }
    CHECK_EQ_INT(found, N);
    CHECK_EQ_INT(stray, 0);
    /* A prefix of a member, and a member with a byte more, are not members. */
    CHECK(!ss_strset_has(&s, "c-000001", 8));
    CHECK(!ss_strset_has(&s, "c-00000011", 10));

    int seen[1] = {0};
    CHECK_EQ_INT(ss_strset_each(&s, count_each, seen), 0);
    CHECK_EQ_INT(seen[0], N);
    int calls = 0;
    CHECK_EQ_INT(ss_strset_each(&s, stop_at_three, &calls), 7);
    CHECK_EQ_INT(calls, 3);

    /* The empty string and bytes that are not text. */
    CHECK(ss_strset_add(&s, "", 0));
    CHECK(ss_strset_has(&s, "", 0));
    CHECK(ss_strset_add(&s, "a\0b", 3));
    CHECK(ss_strset_has(&s, "a\0b", 3));
    CHECK(!ss_strset_has(&s, "a\0c", 3));
    ss_strset_free(&s);
    CHECK(s.n == 0 && !ss_strset_has(&s, "c-0000001", 9));
    return check_done();
}

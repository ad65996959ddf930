/* Unit tests of common/intern: equal strings give the same pointer, copies
 * keep their place and content while the set grows past many chunks, long
 * strings and empty ones are kept, and a full set takes nothing more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/intern.h"

static void test_same_and_stable(void)
{
    ss_interner *in = ss_intern_new(64u << 20);
    enum { N = 50000 };
    const char **kept = malloc(N * sizeof *kept);
    char buf[64];
    int bad = 0;
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof buf, "city-%d-of-a-longish-name", i);
        kept[i] = ss_intern(in, buf, (size_t)n);
        bad += kept[i] == NULL || kept[i] == buf;
    }
    CHECK_EQ_INT(bad, 0);
    /* After all that growth: the same pointers again, and the same bytes. */
    for (int i = 0; i < N; i++) {
        int n = snprintf(buf, sizeof buf, "city-%d-of-a-longish-name", i);
        const char *again = ss_intern(in, buf, (size_t)n);
        bad += again != kept[i] || strcmp(kept[i], buf) != 0;
    }
    CHECK_EQ_INT(bad, 0);
    /* Not NUL-terminated input, an empty string, one longer than a chunk. */
    const char *ab = ss_intern(in, "abcdef", 2);
    CHECK(ab && strcmp(ab, "ab") == 0);
    const char *empty = ss_intern(in, "", 0);
    CHECK(empty && empty[0] == '\0' && ss_intern(in, "x", 0) == empty);
    size_t big = 200000;
    char *long_s = malloc(big);
    memset(long_s, 'q', big);
    const char *lk = ss_intern(in, long_s, big);
    CHECK(lk && lk[big] == '\0' && memcmp(lk, long_s, big) == 0);
    CHECK(ss_intern(in, long_s, big) == lk);
    free(long_s);
    free(kept);
    ss_intern_free(in);
    ss_intern_free(NULL);
}

static void test_bounded(void)
{
    ss_interner *in = ss_intern_new(100000);
    char buf[32];
    int taken = 0, refused = 0;
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(buf, sizeof buf, "value-%d", i);
        if (ss_intern(in, buf, (size_t)n))
            taken++;
        else
            refused++;
    }
    CHECK(taken > 1000);
    CHECK(refused > 0);
    /* What it took stays findable when full. */
    CHECK(ss_intern(in, "value-0", 7) != NULL);
    ss_intern_free(in);
}

int main(void)
{
    test_same_and_stable();
    test_bounded();
    return check_done();
}

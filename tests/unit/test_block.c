/* Fact blocks (src/hot/block.h): rows come back sorted by (ts, event_id)
 * with every value as written (NULLs, empty and long strings, negative and
 * large numbers), a truncated encoder forgets its last rows, and a damaged
 * block is refused rather than read past its end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/buf.h"
#include "hot/block.h"

static const ss_block_table *payments(void)
{
    return ss_block_table_named("payments");
}

/* Row k of the test: times out of order and repeated, ids that share
 * prefixes, a failure reason on every third row only. */
static void row_of(int k, char *id, size_t cap, ss_bval v[SS_BLOCK_MAXCOL])
{
    snprintf(id, cap, "e-abc-%010d-p%d", k * 7919 % 1000, 1 + k % 3);
    memset(v, 0, SS_BLOCK_MAXCOL * sizeof *v);
    v[0].s = (ss_str){id, (uint32_t)strlen(id)};
    v[1].s = (ss_str){id, 10};
    v[2].i = 1700000000000LL + (k * 37 % 11) * 1000 - (k % 2 ? 5000000000LL : 0);
    v[3].s = k % 2 ? SS_STR("card") : SS_STR("");
    v[4].i = k % 5 == 0 ? -(int64_t)k : (int64_t)k * 1000000007LL;
    v[5].s = k % 3 ? SS_STR("success") : SS_STR("failed");
    v[6].s = k % 3 ? (ss_str){NULL, 0} : SS_STR("declined");
    v[7].i = 1 + k % 3;
    v[8].s = SS_STR("Berlin");
    v[9].s = SS_STR("Germany");
    v[10].s = SS_STR("Books");
}

static int cmp_key(int64_t ta, ss_str a, int64_t tb, ss_str b)
{
    if (ta != tb)
        return ta < tb ? -1 : 1;
    int k = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
    return k ? k : (a.n > b.n) - (a.n < b.n);
}

static void test_round_trip(int rows)
{
    const ss_block_table *t = payments();
    ss_block_enc e;
    ss_block_enc_init(&e, t);
    char(*ids)[64] = calloc((size_t)rows, sizeof *ids);
    for (int k = 0; k < rows; k++) {
        ss_bval v[SS_BLOCK_MAXCOL];
        row_of(k, ids[k], sizeof ids[k], v);
        ss_block_enc_add(&e, v);
    }
    ss_buf out;
    ss_buf_init(&out, 64);
    ss_block_encode(&e, &out);
    ss_block_dec d;
    ss_block_dec_init(&d, t);
    if (!CHECK(ss_block_dec_load(&d, out.data, out.len) == 0))
        return;
    CHECK_EQ_INT(d.n, rows);
    for (int c = 0; c < t->ncol; c++)
        CHECK(ss_block_dec_col(&d, c) == 0);
    int seen_null = 0;
    for (uint32_t r = 0; r + 1 < d.n; r++)
        CHECK(cmp_key(d.ints[2][r], d.strs[0][r], d.ints[2][r + 1], d.strs[0][r + 1]) <= 0);
    /* Each decoded row equals the row of its id. */
    for (uint32_t r = 0; r < d.n; r++) {
        int k = -1;
        for (int j = 0; j < rows && k < 0; j++) {
            ss_bval v[SS_BLOCK_MAXCOL];
            char id[64];
            row_of(j, id, sizeof id, v);
            if (v[0].s.n == d.strs[0][r].n && !memcmp(v[0].s.p, d.strs[0][r].p, v[0].s.n) &&
                v[2].i == d.ints[2][r])
                k = j;
        }
        if (!CHECK(k >= 0))
            continue;
        ss_bval v[SS_BLOCK_MAXCOL];
        char id[64];
        row_of(k, id, sizeof id, v);
        CHECK_EQ_INT(d.ints[4][r], v[4].i);
        CHECK_EQ_INT(d.ints[7][r], v[7].i);
        CHECK_EQ_INT(d.strs[3][r].n, v[3].s.n);
        CHECK(d.strs[3][r].p != NULL);
        CHECK((d.strs[6][r].p == NULL) == (v[6].s.p == NULL));
        seen_null |= d.strs[6][r].p == NULL;
        CHECK(d.strs[1][r].n == 10 && !memcmp(d.strs[1][r].p, v[1].s.p, 10));
    }
    CHECK(seen_null || rows < 2);
    /* Every shorter prefix of the block is refused. */
    for (size_t cut = 0; cut < out.len; cut += 1 + out.len / 97) {
        ss_block_dec x;
        ss_block_dec_init(&x, t);
        int bad = ss_block_dec_load(&x, out.data, cut) != 0;
        for (int c = 0; c < t->ncol && !bad; c++)
            bad = ss_block_dec_col(&x, c) != 0;
        CHECK(bad);
        ss_block_dec_free(&x);
    }
    ss_block_dec_free(&d);
    ss_buf_free(&out);
    ss_block_enc_free(&e);
    free(ids);
}

static void test_truncate(void)
{
    const ss_block_table *t = payments();
    ss_block_enc e;
    ss_block_enc_init(&e, t);
    char ids[8][64];
    size_t n_at = 0, arena_at = 0;
    for (int k = 0; k < 8; k++) {
        ss_bval v[SS_BLOCK_MAXCOL];
        if (k == 5)
            n_at = e.n, arena_at = e.arena.len;
        row_of(k, ids[k], sizeof ids[k], v);
        ss_block_enc_add(&e, v);
    }
    ss_block_enc_truncate(&e, n_at, arena_at);
    CHECK_EQ_INT(e.n, 5);
    ss_buf out;
    ss_buf_init(&out, 64);
    ss_block_encode(&e, &out);
    ss_block_dec d;
    ss_block_dec_init(&d, t);
    CHECK(ss_block_dec_load(&d, out.data, out.len) == 0 && ss_block_dec_col(&d, 2) == 0);
    CHECK_EQ_INT(d.n, 5);
    int64_t lo = INT64_MAX;
    for (uint32_t r = 0; r < d.n; r++)
        lo = d.ints[2][r] < lo ? d.ints[2][r] : lo;
    CHECK_EQ_INT(e.min_ts, lo);
    ss_block_dec_free(&d);
    ss_buf_free(&out);
    ss_block_enc_free(&e);
}

/* Dictionary values first used by rows that a rollback forgets leave with
 * them: rows added after the truncation get their own values right, and the
 * block carries no value that no row uses. */
static void test_truncate_dict(void)
{
    const ss_block_table *t = payments();
    ss_block_enc e;
    ss_block_enc_init(&e, t);
    static const char *const methods[] = {"m0", "m1", "m2", "lost-a", "lost-b", "m5-longer", "m1"};
    static const int keep[] = {0, 1, 2, 5, 6};
    char ids[7][64];
    size_t n_at = 0, arena_at = 0;
    for (int k = 0; k < 7; k++) {
        if (k == 3)
            n_at = e.n, arena_at = e.arena.len;
        if (k == 5)
            ss_block_enc_truncate(&e, n_at, arena_at);
        ss_bval v[SS_BLOCK_MAXCOL];
        row_of(k, ids[k], sizeof ids[k], v);
        v[2].i = 1700000000000LL + k; /* in order, so rows decode in this order */
        v[3].s = (ss_str){methods[k], (uint32_t)strlen(methods[k])};
        ss_block_enc_add(&e, v);
    }
    CHECK_EQ_INT(e.n, 5);
    ss_buf out;
    ss_buf_init(&out, 64);
    ss_block_encode(&e, &out);
    ss_block_dec d;
    ss_block_dec_init(&d, t);
    if (CHECK(ss_block_dec_load(&d, out.data, out.len) == 0 && ss_block_dec_col(&d, 3) == 0) &&
        CHECK_EQ_INT(d.n, 5)) {
        for (uint32_t r = 0; r < d.n; r++) {
            const char *want = methods[keep[r]];
            CHECK(d.strs[3][r].n == strlen(want) && !memcmp(d.strs[3][r].p, want, strlen(want)));
        }
    }
    /* No forgotten value is in the block's bytes. */
    int found = 0;
    for (size_t i = 0; i + 5 <= out.len; i++)
        found |= memcmp(out.data + i, "lost-", 5) == 0;
    CHECK(!found);
    ss_block_dec_free(&d);
    ss_buf_free(&out);
    ss_block_enc_free(&e);
}

int main(void)
{
    test_round_trip(1);
    test_round_trip(300);
    test_round_trip(SS_BLOCK_ROWS);
    test_truncate();
    test_truncate_dict();
    return check_done();
}

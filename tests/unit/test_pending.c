/* Unit tests of gen/pending: the calendar queue of customers' next orders
 * pops exactly the (ts, seq) order that the heap pops, whatever the mix of
 * near, ring and far hours, pushes into hours already sorted, and long gaps,
 * and an event is due exactly from its time on. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "common/rng.h"
#include "gen/pending.h"

/* Interleaves pushes (at or after the simulated time, as the generator
 * does) and pops on both queues; every pop must agree. */
static void run(uint64_t seed, double mean_gap_ms, int ops)
{
    ss_rng rng;
    ss_rng_seed(&rng, seed);
    ss_pheap h = {0};
    ss_calq q;
    int64_t now = 1767225600000; /* 2026-01-01 */
    ss_calq_init(&q, now);
    uint64_t seq = 0;
    int mismatches = 0, pops = 0;
    for (int i = 0; i < ops; i++) {
        if (ss_rng_uniform(&rng) < 0.55 || h.n == 0) {
            double gap = ss_rng_uniform(&rng) < 0.1 ? 0 : ss_rng_exponential(&rng, 1 / mean_gap_ms);
            /* Coarse times make equal timestamps common: seq decides. */
            int64_t ts = now + (int64_t)gap / 1000 * 1000;
            ss_pending e = {.ts = ts, .seq = seq++, .order_no = (uint64_t)i};
            ss_pheap_push(&h, &e);
            ss_calq_push(&q, &e);
        } else {
            ss_pending a, b;
            /* Not due before its time; due at it. */
            mismatches += ss_calq_peek(&q, h.v[0].ts - 1) != NULL;
            const ss_pending *top = ss_calq_peek(&q, h.v[0].ts);
            ss_pheap_pop(&h, &a);
            mismatches += !top || top->seq != a.seq;
            ss_calq_pop(&q, &b);
            mismatches += b.seq != a.seq || b.ts != a.ts;
            now = a.ts;
            pops++;
        }
        /* Simulated time also moves on between pushes, as arrivals do. */
        now += (int64_t)ss_rng_exponential(&rng, 1 / (mean_gap_ms / 50));
        if (h.n && now > h.v[0].ts)
            now = h.v[0].ts;
    }
    while (h.n) {
        ss_pending a, b;
        ss_pheap_pop(&h, &a);
        mismatches += ss_calq_peek(&q, INT64_MAX) == NULL;
        ss_calq_pop(&q, &b);
        mismatches += b.seq != a.seq;
        pops++;
    }
    CHECK(ss_calq_peek(&q, INT64_MAX) == NULL);
    CHECK_EQ_INT(q.n, 0);
    check_report(mismatches == 0, __FILE__, __LINE__, "seed %llu, gap %g: %d of %d pops differ",
                 (unsigned long long)seed, mean_gap_ms, mismatches, pops);
    CHECK(pops > ops / 3);
    ss_pheap_free(&h);
    ss_calq_free(&q);
}

int main(void)
{
    run(1, 60e3, 200000);          /* within the hour: the near heap */
    run(2, 3 * 86400e3, 200000);   /* days: the ring */
    run(3, 400 * 86400e3, 100000); /* beyond the ring's 4096 hours: the far heap */
    run(4, 30 * 86400e3, 300000);
    return check_done();
}

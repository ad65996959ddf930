/* The order-event generator: a statistical model of a shop that emits
 * orders, payments and cancellations in event-time order.
 *
 * The generator is a pure function of (profile, seed, start, rate, count):
 * it never looks at the wall clock, so the same inputs give the same events
 * byte for byte. Pacing against real time is the caller's job (cli/gen.c).
 * @locality one thread per ss_gen. */
#ifndef SS_GEN_H
#define SS_GEN_H

#include <stdint.h>

#include "event/event.h"
#include "gen/profile.h"

typedef struct ss_gen_config {
    uint64_t seed;
    int64_t start_ms; /* simulated time of the first candidate arrival */
    double rate;      /* mean orders per second over a week; <= 0 takes the profile's */
    uint64_t count;   /* orders to generate; 0 = no limit */
} ss_gen_config;

typedef struct ss_gen_stats {
    uint64_t orders, payments, failed_payments, cancellations, customers;
    uint64_t pending; /* follow-up events waiting in the heap */
} ss_gen_stats;

typedef struct ss_gen ss_gen;

/* The profile must outlive the generator. */
ss_gen *ss_gen_new(const ss_profile *prof, const ss_gen_config *cfg);
void ss_gen_free(ss_gen *g);

/* Produces the next event in time order. Returns SS_OK and points *ev at an
 * event valid until the next call, or SS_EOF once `count` orders and all
 * their follow-ups have been produced. */
int ss_gen_next(ss_gen *g, const ss_event **ev);

void ss_gen_get_stats(const ss_gen *g, ss_gen_stats *st);

/* The run tag that makes this run's ids unique: 12 hex digits derived from
 * the seed and the start time. */
const char *ss_gen_tag(const ss_gen *g);

#endif

/* The generator's queues of events waiting for their time: payments and
 * cancellations that follow an order within hours, and bgnbd customers' next
 * orders, days or months ahead. Both pop in (ts, seq) order, a total order,
 * so which structure holds an event never changes the output.
 * @locality the owning ss_gen's thread. */
#ifndef SS_GEN_PENDING_H
#define SS_GEN_PENDING_H

#include <stddef.h>
#include <stdint.h>

enum { SS_PEND_PAYMENT = 1, SS_PEND_CANCEL = 2, SS_PEND_REPEAT = 3 };

/* A follow-up event: a payment attempt, a cancellation, or a customer's next
 * order (SS_PEND_REPEAT). 48 bytes. */
typedef struct ss_pending {
    int64_t ts;
    uint64_t seq;      /* insertion order, breaks ties so that output is deterministic */
    uint64_t order_no; /* SS_PEND_REPEAT: the customer's number */
    union {
        int64_t total;
        double lam; /* SS_PEND_REPEAT: the customer's purchase rate, per ms */
    };
    uint32_t country; /* SS_PEND_REPEAT: the customer's city */
    float drop;       /* SS_PEND_REPEAT: the customer's dropout probability */
    uint16_t reason;  /* cancellation reason index */
    uint8_t kind;
    uint8_t attempt;
    uint8_t method; /* SS_PEND_REPEAT: the customer's segment */
} ss_pending;

static inline int ss_pending_before(const ss_pending *a, const ss_pending *b)
{
    return a->ts < b->ts || (a->ts == b->ts && a->seq < b->seq);
}

/* A 4-ary min-heap: half the depth of a binary one. For the few thousand
 * follow-ups in flight, which stay in the cache. */
typedef struct ss_pheap {
    ss_pending *v;
    size_t n, cap;
} ss_pheap;

void ss_pheap_push(ss_pheap *h, const ss_pending *e);
/* Removes the earliest event into *out; the heap must not be empty. */
void ss_pheap_pop(ss_pheap *h, ss_pending *out);
void ss_pheap_free(ss_pheap *h);

/* A calendar queue for the next orders of live customers, as many as there
 * are customers: a heap of them would miss the cache on every level of every
 * pop. Events wait unsorted in buckets of one simulated hour on a ring of 4096
 * hours (a later one in a heap until the ring reaches it); a bucket is sorted
 * when its hour comes, and events pushed into an hour already sorted (or
 * earlier) go to a small heap. */
typedef struct ss_calq_bucket {
    ss_pending *v;
    size_t n, cap;
} ss_calq_bucket;

typedef struct ss_calq {
    int started;
    int64_t base;       /* the hour of the sorted bucket */
    ss_calq_bucket act; /* that hour's events, sorted, consumed from apos */
    size_t apos;
    ss_pheap near;        /* events of hours up to base pushed after the sort */
    ss_calq_bucket *ring; /* hours base + 1 .. base + 4095, by hour modulo 4096 */
    size_t ring_count;
    ss_pheap far; /* later hours */
    size_t n;
} ss_calq;

/* Starts an empty queue at the generator's start time (optional: without it
 * the first push's hour is the start). */
void ss_calq_init(ss_calq *q, int64_t now_ms);
void ss_calq_push(ss_calq *q, const ss_pending *e);
/* The earliest event if it is due by until_ms (inclusive), else NULL. Pushes
 * must not be earlier than the last until_ms given. */
const ss_pending *ss_calq_peek(ss_calq *q, int64_t until_ms);
/* Removes the event that ss_calq_peek last returned into *out. */
void ss_calq_pop(ss_calq *q, ss_pending *out);
void ss_calq_free(ss_calq *q);

#endif

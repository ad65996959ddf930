/* The engine's pending batch: on-time events applied but not yet handed to
 * the store, which then takes them in one call (put_events with an array),
 * so that a store on a network writes hundreds of documents per round trip.
 *
 * The batch keeps copies of the events' strings (the input's buffers are
 * reused after a record is applied) and answers what the engine would have
 * asked the store about them: whether an event id is pending, and the
 * dimensions of a pending order.
 * @locality the engine's thread. */
#ifndef SS_ENGINE_BATCH_H
#define SS_ENGINE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "event/event.h"
#include "hot/hot.h"

#define SS_BATCH_MAX 2048 /* events per store call */

typedef struct ss_batch_item {
    int shard;
    int have_dh; /* dh holds the attribution's dimension hashes */
    uint64_t dh[4];
} ss_batch_item;

typedef struct ss_batch {
    size_t n;
    ss_event ev[SS_BATCH_MAX];
    const ss_event *evp[SS_BATCH_MAX];
    ss_attrib at[SS_BATCH_MAX];
    ss_batch_item item[SS_BATCH_MAX];
    uint8_t is_new[SS_BATCH_MAX];
    /* open addressing over event ids and order ids: index + 1, 0 = free */
    uint32_t ids[SS_BATCH_MAX * 2], orders[SS_BATCH_MAX * 2];
    struct ss_batch_block *blocks; /* copies of the strings */
} ss_batch;

ss_batch *ss_batch_new(void);
void ss_batch_free(ss_batch *b);
/* Forgets every event (after the store took them). */
void ss_batch_reset(ss_batch *b);

/* Adds an event with its attribution; its strings are copied. The batch
 * must not be full (n < SS_BATCH_MAX). */
void ss_batch_add(ss_batch *b, const ss_event *ev, const ss_attrib *at, const ss_batch_item *it);
/* Whether an event of that id is pending: of the same type when type is
 * non-zero (a duplicate), of any type when it is 0. */
int ss_batch_has(const ss_batch *b, ss_event_type type, ss_str event_id, uint64_t h);
/* The dimensions of the first pending order of order_id; 0 when none. The
 * strings live until the next reset. */
int ss_batch_order(const ss_batch *b, ss_str order_id, uint64_t h, ss_attrib *at, uint64_t dh[4],
                   int *have_dh);

#endif

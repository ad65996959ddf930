/* The bus carries encoded events from producers (the generator) to consumers
 * (the engine). Backends are chosen by URI:
 *   "-"            standard output / input
 *   "file:PATH" or a plain path   a JSON Lines file
 * Each backend is a const ss_bus_ops; a new backend is one file and one line
 * in the registry of bus.c. */
#ifndef SS_BUS_H
#define SS_BUS_H

#include <stddef.h>

typedef struct ss_bus_ops {
    const char *name;
    const char *scheme; /* URI prefix such as "file:" */

    /* Opens a producer for the URI remainder. Writes a message for a person
     * into err on failure. */
    int (*producer_open)(const char *target, void **state, char *err, size_t errlen);
    /* Queues one message. key groups messages that must stay in order
     * (the order_id); value is one JSON Lines record without its newline.
     * May return SS_AGAIN when the backend is full: the caller retries. */
    int (*produce)(void *state, const char *key, size_t klen, const char *value, size_t vlen);
    /* Pushes queued messages out; SS_OK once all are delivered. */
    int (*flush)(void *state);
    /* Flushes and releases; returns the flush's status. */
    int (*producer_close)(void *state);
} ss_bus_ops;

typedef struct ss_bus_producer {
    const ss_bus_ops *ops;
    void *state;
} ss_bus_producer;

/* Finds the backend for uri and opens a producer on it. */
int ss_bus_producer_open(const char *uri, ss_bus_producer *bp, char *err, size_t errlen);

static inline int ss_bus_produce(ss_bus_producer *bp, const char *key, size_t klen,
                                 const char *value, size_t vlen)
{
    return bp->ops->produce(bp->state, key, klen, value, vlen);
}

static inline int ss_bus_flush(ss_bus_producer *bp)
{
    return bp->ops->flush(bp->state);
}

/* Closes and clears bp; accepts a never-opened (zeroed) producer. */
int ss_bus_producer_close(ss_bus_producer *bp);

extern const ss_bus_ops ss_bus_file_ops;

#endif

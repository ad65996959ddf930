/* The bus carries encoded events from producers (the generator) to consumers
 * (the engine). Backends are chosen by URI:
 *   "-"            standard output / input
 *   "file:PATH" or a plain path   a JSON Lines file
 * Each backend is a const ss_bus_ops; a new backend is one file and one line
 * in the registry of bus.c. */
#ifndef SS_BUS_H
#define SS_BUS_H

#include <stddef.h>
#include <stdint.h>

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

/* One record handed to a consumer. data stays valid until the next poll. */
typedef struct ss_bus_msg {
    const char *data;
    size_t len;         /* bytes in data (a too-long record is cut to a prefix) */
    size_t raw_bytes;   /* the record's full length */
    const char *source; /* stable name of the input, for stored positions */
    int64_t offset;     /* position of the record */
    int64_t next;       /* position just after it: where a restart resumes */
    int shard;          /* partition the record came from (0 for files) */
} ss_bus_msg;

typedef struct ss_bus_consumer_ops {
    const char *name;
    const char *scheme;
    int (*open)(const char *target, void **state, char *err, size_t errlen);
    /* The source's name, and whether it can resume at a stored position. */
    const char *(*source)(void *state, int *seekable);
    int (*seek)(void *state, int64_t offset);
    /* Returns SS_OK with a message, SS_AGAIN when nothing arrived within
     * timeout_ms, or SS_EOF at the end of a finite input. */
    int (*poll)(void *state, ss_bus_msg *msg, int timeout_ms);
    void (*close)(void *state);
    /* Optional. With follow on, the input may still grow: a last record
     * without its newline is not handed out (its writer may be mid-line);
     * poll returns SS_EOF until the newline arrives. */
    void (*follow)(void *state, int on);
} ss_bus_consumer_ops;

typedef struct ss_bus_consumer {
    const ss_bus_consumer_ops *ops;
    void *state;
} ss_bus_consumer;

int ss_bus_consumer_open(const char *uri, ss_bus_consumer *bc, char *err, size_t errlen);
void ss_bus_consumer_close(ss_bus_consumer *bc);

static inline int ss_bus_poll(ss_bus_consumer *bc, ss_bus_msg *msg, int timeout_ms)
{
    return bc->ops->poll(bc->state, msg, timeout_ms);
}

extern const ss_bus_consumer_ops ss_bus_file_consumer_ops;

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

/* The memory bus: a bounded queue shared by one producer and one consumer in
 * the same process. Each side holds a reference; the queue is freed when the
 * creator's reference and both sides are closed. */
typedef struct ss_memq ss_memq;
ss_memq *ss_memq_new(size_t capacity_bytes);
void ss_memq_free(ss_memq *q);
void ss_memq_producer(ss_memq *q, ss_bus_producer *bp);
void ss_memq_consumer(ss_memq *q, ss_bus_consumer *bc);

#endif

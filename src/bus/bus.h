/* The bus carries encoded events from producers (the generator) to consumers
 * (the engine). Backends are chosen by URI:
 *   "-"                           standard output / input
 *   "file:PATH" or a plain path   a JSON Lines file
 *   "kafka://HOST:PORT/TOPIC"     a Kafka topic: producers key records by
 *                                 order_id; consumers join a consumer group
 * Each backend is a const ss_bus_ops; a new backend is one file and one line
 * in the registry of bus.c. */
#ifndef SS_BUS_H
#define SS_BUS_H

#include <stddef.h>
#include <stdint.h>

/* What a backend takes beyond its URI. A backend without the matching
 * capability refuses a non-empty setting rather than ignoring it. */
typedef struct ss_bus_opts {
    /* Client properties, "key=value" each, applied in order after the
     * backend's own defaults, so that a later one wins (librdkafka's
     * properties for kafka://; SS_BUS_CAP_PROPS). */
    const char *const *props;
    size_t nprops;
    /* Partitions of a topic that the producer creates because it does not
     * exist; 0: the broker's default (SS_BUS_CAP_TOPICS). */
    int partitions;
    /* Consumers: the consumer group to join (NULL: the backend's default),
     * and whether poll ends (SS_EOF) once every assigned partition has been
     * read to its end (SS_BUS_CAP_GROUP). */
    const char *group;
    int exit_at_end;
} ss_bus_opts;

enum ss_bus_caps {
    SS_BUS_CAP_PROPS = 1 << 0,  /* takes client properties */
    SS_BUS_CAP_TOPICS = 1 << 1, /* writes to topics that it may create */
    SS_BUS_CAP_GROUP = 1 << 2,  /* consumes as a member of a consumer group */
};

typedef struct ss_bus_ops {
    const char *name;
    const char *scheme; /* URI prefix such as "file:" */
    unsigned caps;      /* enum ss_bus_caps */

    /* Opens a producer for the URI remainder; opts is never NULL. Writes a
     * message for a person into err on failure: SS_EINVAL for a bad URI or
     * setting, another code when the destination cannot be used. */
    int (*producer_open)(const char *target, const ss_bus_opts *opts, void **state, char *err,
                         size_t errlen);
    /* Queues one message. key groups messages that must stay in order
     * (the order_id); value is one JSON Lines record without its newline.
     * Returns SS_AGAIN, having queued nothing, when the backend is still
     * full after a short wait (at most about 100 ms) for room: the caller
     * retries, or gives up. */
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

/* A partition of a partitioned input, as a consumer group assigns it. */
typedef struct ss_bus_part {
    int shard;          /* the partition's number: the engine's shard */
    const char *source; /* its stable name, for stored positions */
} ss_bus_part;

/* The consumer's user's side of a consumer group's rebalances: called on the
 * polling thread, inside poll. */
typedef struct ss_bus_rebalance {
    void *ctx;
    /* parts are now this consumer's: claim them, and fill offsets[i] with
     * the position to resume each at (-1: its beginning). */
    int (*assigned)(void *ctx, const ss_bus_part *parts, size_t n, int64_t *offsets);
    /* parts are being taken away: commit what was read of them before
     * returning, as another consumer goes on from the committed position. */
    int (*revoked)(void *ctx, const ss_bus_part *parts, size_t n);
} ss_bus_rebalance;

typedef struct ss_bus_consumer_ops {
    const char *name;
    const char *scheme;
    unsigned caps; /* enum ss_bus_caps */
    /* Opens a consumer for the URI remainder; opts is never NULL. */
    int (*open)(const char *target, const ss_bus_opts *opts, void **state, char *err,
                size_t errlen);
    /* The source's name, and whether it can resume at a stored position;
     * NULL for a partitioned input, which resumes through set_rebalance. */
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
    /* Optional, for partitioned inputs: who to ask for positions when
     * partitions are assigned, and to tell when they are taken away; NULL
     * stops asking. Set before the first poll. */
    void (*set_rebalance)(void *state, const ss_bus_rebalance *rb);
    /* Optional: the store has committed the records of source before next
     * (the backend may report it: Kafka's committed offsets, for lag).
     * Called from the engine's thread. */
    void (*committed)(void *state, const char *source, int64_t next);
    /* Optional: the engine rejected msg for reason (Kafka: it goes to the
     * dead-letter topic). Called from the engine's thread. */
    void (*rejected)(void *state, const ss_bus_msg *msg, const char *reason);
    /* Optional: the producers have finished; poll returns SS_EOF once all
     * they wrote is read (Kafka: every assigned partition to its end, as
     * with exit_at_end). Any thread. */
    void (*finish)(void *state);
} ss_bus_consumer_ops;

typedef struct ss_bus_consumer {
    const ss_bus_consumer_ops *ops;
    void *state;
} ss_bus_consumer;

/* Finds the backend for uri and opens a consumer on it; opts may be NULL. */
int ss_bus_consumer_open(const char *uri, const ss_bus_opts *opts, ss_bus_consumer *bc, char *err,
                         size_t errlen);
void ss_bus_consumer_close(ss_bus_consumer *bc);

static inline int ss_bus_poll(ss_bus_consumer *bc, ss_bus_msg *msg, int timeout_ms)
{
    return bc->ops->poll(bc->state, msg, timeout_ms);
}

extern const ss_bus_consumer_ops ss_bus_file_consumer_ops;
extern const ss_bus_consumer_ops ss_bus_kafka_consumer_ops;

typedef struct ss_bus_producer {
    const ss_bus_ops *ops;
    void *state;
} ss_bus_producer;

/* Finds the backend for uri and opens a producer on it; opts may be NULL. */
int ss_bus_producer_open(const char *uri, const ss_bus_opts *opts, ss_bus_producer *bp, char *err,
                         size_t errlen);

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
extern const ss_bus_ops ss_bus_kafka_ops; /* src/bus/kafka.c */

/* The memory bus: a bounded queue shared by one producer and one consumer in
 * the same process. Each side holds a reference; the queue is freed when the
 * creator's reference and both sides are closed. */
typedef struct ss_memq ss_memq;
ss_memq *ss_memq_new(size_t capacity_bytes);
void ss_memq_free(ss_memq *q);
void ss_memq_producer(ss_memq *q, ss_bus_producer *bp);
void ss_memq_consumer(ss_memq *q, ss_bus_consumer *bc);

#endif

/* Kafka bus, the consumer: a member of a consumer group reading
 * kafka://HOST:PORT[,HOST:PORT...]/TOPIC through librdkafka, with a
 * dead-letter topic for the records the engine rejects.
 *
 * @locality One thread polls (the pipeline's reader); the rebalance
 * callback runs inside its polls. librdkafka runs its own threads, and the
 * log callback runs on them. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "bus/kafka_int.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"

/* ---- consumer ---- */

/* The most messages taken from a partition's queue at once: one lock and
 * one reading of the clock for them all, instead of one per message. */
#define PART_BATCH 64
/* The longest the consumer waits for a partition that has nothing fetched
 * but messages on the broker, before it goes on without it. */
#define PART_WAIT_MS 500
/* The longest it waits for a message right after one: an input that has
 * nothing for this long is idle, and the engine commits what it has. */
#define IDLE_MS 10

/* A partition's own queue of fetched messages, read apart from the others
 * (librdkafka's fetch queue, not forwarded to the consumer's queue), and
 * the messages last taken from it: m[next..n) are still to come. */
typedef struct part_queue {
    rd_kafka_queue_t *q;
    rd_kafka_message_t *m[PART_BATCH];
    int n, next;
    size_t peak;         /* the queue's longest since the last wake (refill) */
    int64_t next_offset; /* after the message last handed out; -1 before one */
} part_queue;

/* A member of a consumer group. Exactness does not rest on Kafka's
 * committed offsets: the store keeps each partition's position in the
 * transaction of the data read before it, and on assignment the consumer
 * resumes at the positions the rebalance listener (the engine) gives. The
 * store's positions are also committed to Kafka afterwards, asynchronously,
 * so that the group's lag can be monitored with Kafka's tools. Records the
 * engine rejects go to the dead-letter topic TOPIC.dlq, with the reason and
 * the record's origin in headers. */
typedef struct kafka_consumer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt; /* held so that the topic's leaders are known early */
    kafka_uri uri;
    rd_kafka_conf_t *dlq_conf; /* for the dead-letter producer, made on first use */
    rd_kafka_t *dlq;
    rd_kafka_topic_t *dlq_topic;
    size_t dlq_max; /* the dead-letter producer's message.max.bytes */
    pthread_mutex_t dlq_mu;
    _Atomic int exit_at_end; /* set by finish from any thread */
    ss_bus_rebalance rb;
    int has_rb;
    rd_kafka_message_t *held; /* the message last handed out */
    /* Each partition's messages come from its own queue, the partition whose
     * next message is the oldest (by its timestamp) first, as Kafka
     * Streams picks them: the partitions' event times then advance
     * together, and so does the lowest watermark that closes the windows,
     * instead of one partition's whole prefetch running ahead of the
     * others'. The consumer's queue keeps the events: rebalances, errors.
     * wake_cb writes a byte to wake[1] when any of these queues gets
     * something after it was empty. */
    part_queue *parts;  /* per partition */
    int run;            /* the partition handing out messages, or -1 */
    int64_t run_until;  /* while their timestamps are no later than this */
    int64_t wait_since; /* waiting for a partition since (ss_mono_ms), or 0 */
    int flowing;        /* the last poll handed out a message */
    int wake[2];
    rd_kafka_queue_t *queue;
    int64_t q_max_count, q_max_bytes; /* its bounds (queued.min.messages, ...kbytes) */
    uint64_t polled, polled_bytes;    /* messages handed out, and their bytes */
    char **names;                     /* "kafka:TOPIC/P" per partition */
    int nnames;
    uint8_t *assigned, *at_end; /* per partition */
    int nassigned, nat_end;
    int fatal; /* the rebalance listener failed: stop */
    char group[256];
    char last_error[512]; /* the client's last error, for an unreachable cluster */
} kafka_consumer;

static const char *const consumer_defaults[] = {
    "enable.auto.commit",
    "false", /* the store's positions are committed, not polls */
    "enable.auto.offset.store",
    "false",
    "auto.offset.reset",
    "earliest",
    "enable.partition.eof",
    "true",
    "client.id",
    "shopstream",
    /* Records up to the engine's limit of 1 MiB, and more to tell them apart. */
    "fetch.message.max.bytes",
    "4194304",
    /* A partition's queue of prefetched messages (each is read apart, so
     * the bounds are a partition's): while it is over either bound,
     * librdkafka does not fetch it (see refill). A quarter of librdkafka's
     * 64 MiB; the count is raised so that the size binds (50,000 events of
     * the generator's are 17 MB). */
    "queued.min.messages",
    "50000",
    "queued.max.messages.kbytes",
    "16384",
    NULL,
};

/* With --exit-at-end, a partition's end is learnt from a fetch that finds
 * nothing new, which the broker holds for fetch.wait.max.ms (500 ms by
 * default) in case data arrives; while any partition has data, fetches
 * return at once, so a shorter wait only ends the run sooner. */
static const char *const exit_at_end_defaults[] = {
    "fetch.wait.max.ms",
    "100",
    NULL,
};

static void ensure_partition(kafka_consumer *kc, int p)
{
    if (p < kc->nnames)
        return;
    int n = p + 1;
    kc->names = ss_realloc(kc->names, (size_t)n * sizeof *kc->names);
    kc->parts = ss_realloc(kc->parts, (size_t)n * sizeof *kc->parts);
    memset(kc->parts + kc->nnames, 0, (size_t)(n - kc->nnames) * sizeof *kc->parts);
    kc->assigned = ss_realloc(kc->assigned, (size_t)n);
    kc->at_end = ss_realloc(kc->at_end, (size_t)n);
    for (int i = kc->nnames; i < n; i++) {
        size_t len = strlen(kc->uri.topic) + 32;
        kc->names[i] = ss_malloc(len);
        snprintf(kc->names[i], len, "kafka:%s/%d", kc->uri.topic, i);
        kc->assigned[i] = kc->at_end[i] = 0;
    }
    kc->nnames = n;
}

static void set_at_end(kafka_consumer *kc, int p, int on)
{
    ensure_partition(kc, p);
    if (kc->assigned[p] && kc->at_end[p] != on)
        kc->nat_end += on ? 1 : -1;
    kc->at_end[p] = (uint8_t)on;
}

static void forget_assignment(kafka_consumer *kc)
{
    for (int i = 0; i < kc->nnames; i++)
        kc->assigned[i] = kc->at_end[i] = 0;
    kc->nassigned = kc->nat_end = 0;
}

/* Drops the messages taken from the partitions' queues and not handed out:
 * at a rebalance they belong to the assignment before. */
static void drop_parts(kafka_consumer *kc)
{
    kc->run = -1;
    for (int p = 0; p < kc->nnames; p++) {
        part_queue *pq = &kc->parts[p];
        while (pq->next < pq->n)
            rd_kafka_message_destroy(pq->m[pq->next++]);
        pq->next = pq->n = 0;
    }
}

/* Whether messages taken from the partitions' queues are still to come. */
static int taken(const kafka_consumer *kc)
{
    for (int p = 0; p < kc->nnames; p++)
        if (kc->parts[p].next < kc->parts[p].n)
            return 1;
    return 0;
}

/* Called by librdkafka, on its threads, when one of the consumer's queues
 * gets something after it was empty: a byte in the pipe wakes the reader. */
static void wake_cb(rd_kafka_t *rk, void *opaque)
{
    (void)rk;
    const kafka_consumer *kc = opaque;
    char c = 1;
    ssize_t w = write(kc->wake[1], &c, 1); /* a full pipe wakes already */
    (void)w;
}

/* Reads partition p from its own queue from now on. Done before the
 * partition is assigned: librdkafka then never forwards its messages to
 * the consumer's queue, where they could come before older ones. */
static void read_apart(kafka_consumer *kc, int p)
{
    part_queue *pq = &kc->parts[p];
    if (pq->q)
        return;
    pq->q = rd_kafka_queue_get_partition(kc->rk, kc->uri.topic, p);
    if (!pq->q)
        return;
    rd_kafka_queue_forward(pq->q, NULL);
    rd_kafka_queue_cb_event_enable(pq->q, wake_cb, kc);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    kafka_consumer *kc = opaque;
    size_t n = (size_t)parts->cnt;
    ss_bus_part *bp = ss_calloc(n ? n : 1, sizeof *bp);
    int64_t *offsets = ss_calloc(n ? n : 1, sizeof *offsets);
    for (size_t i = 0; i < n; i++) {
        ensure_partition(kc, parts->elems[i].partition);
        bp[i] = (ss_bus_part){parts->elems[i].partition, kc->names[parts->elems[i].partition]};
        offsets[i] = -1;
    }
    if (kc->held) {
        /* Already handed out and used: the engine copies or applies a
         * record before it polls again. */
        rd_kafka_message_destroy(kc->held);
        kc->held = NULL;
    }
    drop_parts(kc);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        int rc = kc->has_rb ? kc->rb.assigned(kc->rb.ctx, bp, n, offsets) : SS_OK;
        if (rc != SS_OK) {
            SS_ERROR(COMP, "cannot take over %zu partition%s of topic '%s' (%s)", n,
                     n == 1 ? "" : "s", kc->uri.topic, ss_status_str(rc));
            kc->fatal = 1;
            rd_kafka_assign(rk, NULL);
        } else {
            for (size_t i = 0; i < n; i++) {
                /* Without a position of the store's: the topic's beginning,
                 * or (no listener) Kafka's committed offset. */
                parts->elems[i].offset = offsets[i] >= 0 ? offsets[i]
                                         : kc->has_rb    ? RD_KAFKA_OFFSET_BEGINNING
                                                         : RD_KAFKA_OFFSET_STORED;
                kc->assigned[bp[i].shard] = 1;
                kc->at_end[bp[i].shard] = 0;
                kc->parts[bp[i].shard].next_offset = -1;
                read_apart(kc, bp[i].shard);
                if (offsets[i] >= 0)
                    SS_INFO(COMP,
                            "partition %d of topic '%s' assigned; resuming at offset %" PRId64,
                            bp[i].shard, kc->uri.topic, offsets[i]);
                else
                    SS_INFO(COMP, "partition %d of topic '%s' assigned; reading from its start",
                            bp[i].shard, kc->uri.topic);
            }
            kc->nassigned += (int)n;
            rd_kafka_assign(rk, parts);
        }
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        int rc = kc->has_rb ? kc->rb.revoked(kc->rb.ctx, bp, n) : SS_OK;
        if (rc != SS_OK) {
            SS_ERROR(COMP, "cannot commit %zu partition%s of topic '%s' before giving them up (%s)",
                     n, n == 1 ? "" : "s", kc->uri.topic, ss_status_str(rc));
            kc->fatal = 1;
        }
        for (size_t i = 0; i < n; i++)
            SS_INFO(COMP, "partition %d of topic '%s' revoked", bp[i].shard, kc->uri.topic);
        rd_kafka_assign(rk, NULL);
        forget_assignment(kc);
    } else {
        SS_WARN(COMP, "rebalance failed: %s", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
        forget_assignment(kc);
    }
    free(bp);
    free(offsets);
}

static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    kafka_consumer *kc = opaque;
    /* Connection troubles are retried by librdkafka: the consumer waits.
     * librdkafka logs them too (kf_log_cb); keep the last for our message. */
    snprintf(kc->last_error, sizeof kc->last_error, "%s", reason);
    SS_DEBUG(COMP, "%s (%s)", reason, rd_kafka_err2str(err));
}

static void kafka_consumer_close(void *state);

static int kafka_consumer_open(const char *target, const ss_bus_opts *opts, void **state, char *err,
                               size_t errlen)
{
    *state = NULL;
    kafka_consumer *kc = ss_calloc(1, sizeof *kc);
    kc->wake[0] = kc->wake[1] = -1;
    kc->run = -1;
    pthread_mutex_init(&kc->dlq_mu, NULL);
    kc->exit_at_end = opts->exit_at_end;
    snprintf(kc->group, sizeof kc->group, "%s", opts->group ? opts->group : "shopstream");
    /* The consumer's defaults, then those of --exit-at-end: the user's
     * properties override both. */
    const char *defaults[sizeof consumer_defaults / sizeof *consumer_defaults +
                         sizeof exit_at_end_defaults / sizeof *exit_at_end_defaults];
    size_t nd = 0;
    for (const char *const *d = consumer_defaults; *d; d++)
        defaults[nd++] = *d;
    for (const char *const *d = exit_at_end_defaults; opts->exit_at_end && *d; d++)
        defaults[nd++] = *d;
    defaults[nd] = NULL;
    rd_kafka_conf_t *conf = NULL;
    int rc = kf_uri_parse(target, &kc->uri, err, errlen);
    if (rc == SS_OK)
        rc = kf_conf_build(kc->uri.brokers, defaults, opts, &conf, err, errlen);
    if (rc == SS_OK)
        rc = kf_conf_set(conf, "group.id", kc->group, err, errlen);
    /* The dead-letter producer: the same brokers and properties (TLS, SASL),
     * but a producer's defaults; properties only a consumer knows are
     * dropped there (librdkafka warns of them). */
    if (rc == SS_OK)
        rc = kf_conf_build(kc->uri.brokers, kf_producer_defaults, opts, &kc->dlq_conf, err, errlen);
    if (rc != SS_OK) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        kafka_consumer_close(kc);
        return rc;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_log_cb(conf, kf_log_cb);
    rd_kafka_conf_set_opaque(conf, kc);
    /* A consumer waits for a cluster that is down, as Kafka's consumers
     * do, but a run that is to end (--exit-at-end: a replay, a backfill)
     * would wait for ever: it gives up when the cluster does not answer
     * within the session timeout (at most OPEN_TIMEOUT_MS), as long as the
     * group waits for a member that does not answer. */
    int64_t timeout_ms = kf_conf_int(conf, "session.timeout.ms", OPEN_TIMEOUT_MS);
    if (timeout_ms <= 0 || timeout_ms > OPEN_TIMEOUT_MS)
        timeout_ms = OPEN_TIMEOUT_MS;
    char why[512];
    kc->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof why);
    if (!kc->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "bad Kafka configuration: %s", why);
        kafka_consumer_close(kc);
        return SS_EINVAL;
    }
    if (kc->exit_at_end) {
        /* It reads the topic as it stands: one that does not exist is a
         * mistake in its name, not something to wait for. The cluster's list
         * of topics is asked for, since asking for the topic itself could
         * create it on a broker that creates topics on demand. */
        const struct rd_kafka_metadata *md = NULL;
        rc = kf_wait_metadata(kc->rk, kc->uri.brokers, 1, kc->last_error, timeout_ms, &md, err,
                              errlen);
        if (rc != SS_OK) {
            kafka_consumer_close(kc);
            return rc;
        }
        int found = 0;
        for (int i = 0; i < md->topic_cnt && !found; i++)
            found = strcmp(md->topics[i].topic, kc->uri.topic) == 0;
        rd_kafka_metadata_destroy(md);
        if (!found) {
            snprintf(err, errlen,
                     "topic '%s' does not exist at %s, and --exit-at-end reads a topic as it "
                     "stands; check the topic's name in --from (without --exit-at-end, process "
                     "waits for the topic to appear)",
                     kc->uri.topic, kc->uri.brokers);
            kafka_consumer_close(kc);
            return SS_EIO;
        }
    }
    rd_kafka_poll_set_consumer(kc->rk);
    kc->queue = rd_kafka_queue_get_consumer(kc->rk);
    if (pipe2(kc->wake, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot make a pipe for the Kafka consumer's wake-ups: %s",
                 strerror(errno));
        kc->wake[0] = kc->wake[1] = -1;
        kafka_consumer_close(kc);
        return SS_EIO;
    }
    rd_kafka_queue_cb_event_enable(kc->queue, wake_cb, kc);
    const rd_kafka_conf_t *used = rd_kafka_conf(kc->rk);
    kc->q_max_count = kf_conf_int(used, "queued.min.messages", 50000);
    kc->q_max_bytes = 1024 * kf_conf_int(used, "queued.max.messages.kbytes", 16384);
    /* A handle on the topic before the group assigns its partitions: the
     * metadata fetched for the subscription then gives their leaders, and
     * fetching starts at once instead of after a retry timer (half a
     * second). Consumers ask for metadata without creating topics. */
    kc->rkt = rd_kafka_topic_new(kc->rk, kc->uri.topic, NULL);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, kc->uri.topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(kc->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        snprintf(err, errlen, "cannot subscribe to topic '%s' at %s: %s", kc->uri.topic,
                 kc->uri.brokers, rd_kafka_err2str(e));
        kafka_consumer_close(kc);
        return SS_EIO;
    }
    SS_INFO(COMP, "consuming topic '%s' at %s in group '%s'", kc->uri.topic, kc->uri.brokers,
            kc->group);
    *state = kc;
    return SS_OK;
}

static const char *kafka_consumer_source(void *state, int *seekable)
{
    (void)state;
    *seekable = 0;
    return NULL;
}

static int kafka_consumer_seek(void *state, int64_t offset)
{
    (void)state;
    (void)offset;
    return SS_ENOTSUP;
}

static int all_at_end(const kafka_consumer *kc)
{
    return kc->exit_at_end && kc->nassigned > 0 && kc->nat_end == kc->nassigned;
}

/* ---- refill ----
 * librdkafka stops fetching a partition while its queue of fetched
 * messages is over queued.min.messages or queued.max.messages.kbytes, and
 * looks at the queue again only when its broker thread wakes: a timer of a
 * second, or a request to send (before 2.2, whose fetch.queue.backoff.ms
 * makes the second shorter, at the cost of more fetches). In a replay the
 * engine empties a full queue (64 MiB) in a third of a second and then
 * waits for the rest of the second: a third of the replay's time. So the
 * consumer wakes those threads itself once the queue, after it filled,
 * is down to half: a query for the watermarks of each assigned partition is
 * a request to the partition's leader, whose thread then fetches again. A
 * queue that never fills (a stream the engine keeps up with) costs no
 * queries, and neither does a bound under REFILL_MIN messages, which asks
 * for little prefetching (queued.min.messages=1 paces a consumer to a fetch
 * a second). Looked at every REFILL_EVERY messages. */
#define REFILL_EVERY   256
#define REFILL_MIN     1024
#define REFILL_WAIT_MS 1000 /* the longest a wake's query may take */

static void refill(kafka_consumer *kc)
{
    /* A queue's bound in messages: the count, or the bytes at the mean size
     * of the messages so far. */
    double full = (double)kc->q_max_count;
    if (kc->polled_bytes) {
        double by_bytes = (double)kc->q_max_bytes * (double)kc->polled / (double)kc->polled_bytes;
        if (by_bytes < full)
            full = by_bytes;
    }
    if (full < REFILL_MIN)
        return;
    for (int p = 0; p < kc->nnames; p++) {
        part_queue *pq = &kc->parts[p];
        if (!kc->assigned[p] || !pq->q)
            continue;
        size_t n = rd_kafka_queue_length(pq->q);
        if (n > pq->peak)
            pq->peak = n;
        if ((double)pq->peak < 0.75 * full || (double)n > 0.5 * full)
            continue;
        SS_DEBUG(COMP,
                 "fetch queue of partition %d down to %zu of %.0f messages after it filled: "
                 "waking its fetcher",
                 p, n, full);
        pq->peak = n;
        int64_t lo, hi;
        rd_kafka_query_watermark_offsets(kc->rk, kc->uri.topic, p, &lo, &hi, REFILL_WAIT_MS);
    }
}

/* Whether partition p, with nothing fetched, has been read up to the end
 * that the broker gave with its last fetch (librdkafka's cached high
 * watermark): no message of it is on its way, only ones not yet produced,
 * which are not waited for (as Kafka Streams does not). */
static int caught_up(kafka_consumer *kc, int p)
{
    int64_t lo, hi;
    if (kc->at_end[p])
        return 1;
    if (kc->parts[p].next_offset < 0 ||
        rd_kafka_get_watermark_offsets(kc->rk, kc->uri.topic, p, &lo, &hi) ||
        hi == RD_KAFKA_OFFSET_INVALID)
        return 0;
    return kc->parts[p].next_offset >= hi;
}

/* The next message of the partition whose next message is the oldest, or
 * an event of a partition (its end, an error) as soon as it comes; NULL
 * when no partition has anything, or while a partition that has nothing
 * fetched is not caught up (its messages are on their way, and may be
 * older than the others'), for up to PART_WAIT_MS. The partition
 * found keeps handing out messages, without a look at the others, while
 * its next is no newer than the others' oldest and its batch lasts. */
static rd_kafka_message_t *oldest_head(kafka_consumer *kc)
{
    if (kc->run >= 0) {
        part_queue *pq = &kc->parts[kc->run];
        if (pq->next < pq->n && !pq->m[pq->next]->err &&
            rd_kafka_message_timestamp(pq->m[pq->next], NULL) <= kc->run_until)
            return pq->m[pq->next++];
        kc->run = -1;
    }
    int best = -1, missing = 0;
    int64_t best_ts = 0, second_ts = INT64_MAX;
    for (int p = 0; p < kc->nnames; p++) {
        part_queue *pq = &kc->parts[p];
        if (!pq->q || !kc->assigned[p])
            continue;
        if (pq->next == pq->n) {
            ssize_t k = rd_kafka_consume_batch_queue(pq->q, 0, pq->m, PART_BATCH);
            pq->next = 0;
            pq->n = k > 0 ? (int)k : 0;
            if (!pq->n) {
                missing |= !caught_up(kc, p);
                continue;
            }
        }
        rd_kafka_message_t *m = pq->m[pq->next];
        if (m->err) {
            pq->next++;
            return m;
        }
        int64_t ts = rd_kafka_message_timestamp(m, NULL);
        if (best < 0 || ts < best_ts) {
            second_ts = best < 0 ? second_ts : best_ts;
            best = p;
            best_ts = ts;
        } else if (ts < second_ts) {
            second_ts = ts;
        }
    }
    if (!missing)
        kc->wait_since = 0;
    else if (!kc->wait_since)
        kc->wait_since = ss_mono_ms();
    if (best < 0 || (missing && ss_mono_ms() - kc->wait_since < PART_WAIT_MS))
        return NULL;
    if (missing)
        second_ts = INT64_MIN; /* one message at a time while one is missing */
    kc->run = best;
    kc->run_until = second_ts;
    return kc->parts[best].m[kc->parts[best].next++];
}

static void drain_wakes(kafka_consumer *kc)
{
    char buf[64];
    while (read(kc->wake[0], buf, sizeof buf) > 0)
        ;
}

/* The next message or event: the consumer's queue first (rebalances, which
 * its poll serves, and errors), looked at between runs and every
 * PART_BATCH messages, then the partitions' queues; when all are empty,
 * the first to arrive within timeout_ms. */
static rd_kafka_message_t *next_message(kafka_consumer *kc, int timeout_ms)
{
    for (int waited = 0;; waited = 1) {
        if ((kc->run < 0 || kc->polled % PART_BATCH == 0) && rd_kafka_queue_length(kc->queue) > 0) {
            rd_kafka_message_t *m = rd_kafka_consumer_poll(kc->rk, 0);
            if (m)
                return m;
        }
        rd_kafka_message_t *m = oldest_head(kc);
        if (m || waited || timeout_ms <= 0)
            return m ? m : rd_kafka_consumer_poll(kc->rk, 0);
        int wait_ms = kc->flowing && timeout_ms > IDLE_MS ? IDLE_MS : timeout_ms;
        if (kc->wait_since) {
            int64_t left = kc->wait_since + PART_WAIT_MS - ss_mono_ms();
            if (left < wait_ms)
                wait_ms = left > 0 ? (int)left : 0;
        }
        struct pollfd pfd = {.fd = kc->wake[0], .events = POLLIN};
        if (poll(&pfd, 1, wait_ms) > 0)
            drain_wakes(kc);
    }
}

static int kafka_consumer_poll(void *state, ss_bus_msg *msg, int timeout_ms)
{
    kafka_consumer *kc = state;
    if (kc->held) {
        rd_kafka_message_destroy(kc->held);
        kc->held = NULL;
    }
    if (kc->fatal)
        return SS_EIO;
    if (all_at_end(kc) && !taken(kc))
        return SS_EOF;
    rd_kafka_message_t *m = next_message(kc, timeout_ms);
    kc->flowing = m && !m->err;
    if (kc->fatal) {
        if (m)
            rd_kafka_message_destroy(m);
        return SS_EIO;
    }
    if (!m)
        return all_at_end(kc) ? SS_EOF : SS_AGAIN;
    if (m->err) {
        rd_kafka_resp_err_t e = m->err;
        int p = m->partition;
        if (e == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p >= 0)
                set_at_end(kc, p, 1);
            rd_kafka_message_destroy(m);
            return all_at_end(kc) ? SS_EOF : SS_AGAIN;
        }
        if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            SS_WARN(COMP, "topic '%s' does not exist (yet) at %s; waiting for it", kc->uri.topic,
                    kc->uri.brokers);
        } else {
            SS_WARN(COMP, "%s", rd_kafka_message_errstr(m));
        }
        rd_kafka_message_destroy(m);
        return SS_AGAIN;
    }
    set_at_end(kc, m->partition, 0);
    kc->parts[m->partition].next_offset = m->offset + 1;
    const char *data = m->payload ? m->payload : "";
    size_t len = m->len;
    kc->polled_bytes += len;
    if (++kc->polled % REFILL_EVERY == 0 && kc->queue)
        refill(kc);
    /* One record per message; a producer that kept the line's newline
     * (kcat -P -D '' ...) means the same record. */
    if (len && data[len - 1] == '\n')
        len--;
    size_t raw = len;
    if (len > SS_KAFKA_RECORD_MAX)
        len = SS_KAFKA_RECORD_MAX;
    *msg = (ss_bus_msg){data,      len,           raw,         kc->names[m->partition],
                        m->offset, m->offset + 1, m->partition};
    kc->held = m;
    return SS_OK;
}

static void kafka_consumer_set_rebalance(void *state, const ss_bus_rebalance *rb)
{
    kafka_consumer *kc = state;
    kc->has_rb = rb != NULL;
    if (rb)
        kc->rb = *rb;
}

/* The partition of one of our source names, or -1. */
static int source_partition(const kafka_consumer *kc, const char *source)
{
    size_t tl = strlen(kc->uri.topic);
    if (strncmp(source, "kafka:", 6) != 0 || strncmp(source + 6, kc->uri.topic, tl) != 0 ||
        source[6 + tl] != '/')
        return -1;
    char *end;
    long p = strtol(source + 7 + tl, &end, 10);
    return *end || p < 0 || p > INT32_MAX ? -1 : (int)p;
}

static void kafka_consumer_committed(void *state, const char *source, int64_t next)
{
    kafka_consumer *kc = state;
    int p = source_partition(kc, source);
    if (p < 0)
        return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, kc->uri.topic, p)->offset = next;
    /* Asynchronous: a failure (the partition moved meanwhile) only delays
     * what the group's lag shows; the store holds the real position. */
    rd_kafka_commit(kc->rk, l, 1);
    rd_kafka_topic_partition_list_destroy(l);
}

static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err)
        SS_ERROR(COMP,
                 "a rejected record did not reach the dead-letter topic: %s (it stays in "
                 "rejected_events)",
                 rd_kafka_err2str(m->err));
}

/* Creates the dead-letter producer and topic on first use. */
static int dlq_open(kafka_consumer *kc)
{
    if (kc->dlq_topic)
        return SS_OK;
    if (!kc->dlq_conf)
        return SS_EIO;
    rd_kafka_conf_set_dr_msg_cb(kc->dlq_conf, dlq_dr_cb);
    rd_kafka_conf_set_log_cb(kc->dlq_conf, kf_log_cb);
    kc->dlq_max = (size_t)kf_conf_int(kc->dlq_conf, "message.max.bytes", 1000000);
    char why[512], name[300];
    kc->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, kc->dlq_conf, why, sizeof why);
    if (!kc->dlq) {
        rd_kafka_conf_destroy(kc->dlq_conf);
        kc->dlq_conf = NULL;
        SS_ERROR(COMP, "cannot make the dead-letter producer: %s", why);
        return SS_EIO;
    }
    kc->dlq_conf = NULL; /* owned by kc->dlq */
    snprintf(name, sizeof name, "%s.dlq", kc->uri.topic);
    kc->dlq_topic = rd_kafka_topic_new(kc->dlq, name, NULL);
    return kc->dlq_topic ? SS_OK : SS_EIO;
}

/* Room left in a dead-letter message for its framing (record batch and
 * record headers, lengths and varints), besides its value and headers. */
#define DLQ_FRAMING_BYTES 1024

/* A text header of a message given to rd_kafka_produceva. */
static rd_kafka_vu_t vu_header(const char *name, const char *value)
{
    return (rd_kafka_vu_t){.vtype = RD_KAFKA_VTYPE_HEADER, .u.header = {name, value, -1}};
}

static void kafka_consumer_rejected(void *state, const ss_bus_msg *msg, const char *reason)
{
    kafka_consumer *kc = state;
    pthread_mutex_lock(&kc->dlq_mu);
    if (dlq_open(kc) == SS_OK) {
        char part[16], off[32], bytes[32];
        snprintf(part, sizeof part, "%d", msg->shard);
        snprintf(off, sizeof off, "%" PRId64, msg->offset);
        snprintf(bytes, sizeof bytes, "%zu", msg->raw_bytes);
        /* A record rejected for its size is handed out cut to 1 MiB, which
         * is more than a producer sends by default (message.max.bytes
         * 1,000,000; a broker takes 1 MiB and 12 bytes): the dead-letter
         * copy is cut further to what the producer may send, or it would
         * never get there. shopstream.bytes keeps the record's full
         * length. */
        size_t len = msg->len, extra = DLQ_FRAMING_BYTES + strlen(reason) + strlen(kc->uri.topic) +
                                       strlen(part) + strlen(off) + strlen(bytes) +
                                       5 * sizeof "shopstream.partition";
        if (kc->dlq_max > extra && len > kc->dlq_max - extra)
            len = kc->dlq_max - extra;
        /* The array form of rd_kafka_producev, whose RD_KAFKA_V_ macros are
         * GNU statement expressions. */
        const rd_kafka_vu_t vus[] = {
            {.vtype = RD_KAFKA_VTYPE_RKT, .u.rkt = kc->dlq_topic},
            {.vtype = RD_KAFKA_VTYPE_MSGFLAGS, .u.i = RD_KAFKA_MSG_F_COPY},
            {.vtype = RD_KAFKA_VTYPE_VALUE, .u.mem = {(void *)msg->data, len}},
            vu_header("shopstream.reason", reason),
            vu_header("shopstream.topic", kc->uri.topic),
            vu_header("shopstream.partition", part),
            vu_header("shopstream.offset", off),
            vu_header("shopstream.bytes", bytes),
        };
        rd_kafka_resp_err_t e;
        do {
            rd_kafka_error_t *error = rd_kafka_produceva(kc->dlq, vus, sizeof vus / sizeof *vus);
            e = error ? rd_kafka_error_code(error) : RD_KAFKA_RESP_ERR_NO_ERROR;
            if (error)
                rd_kafka_error_destroy(error);
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(kc->dlq, 100);
        } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
        if (e)
            SS_ERROR(COMP, "cannot queue a rejected record for the dead-letter topic: %s",
                     rd_kafka_err2str(e));
        rd_kafka_poll(kc->dlq, 0);
    }
    pthread_mutex_unlock(&kc->dlq_mu);
}

static void kafka_consumer_finish(void *state)
{
    kafka_consumer *kc = state;
    kc->exit_at_end = 1;
}

static void kafka_consumer_close(void *state)
{
    kafka_consumer *kc = state;
    if (!kc)
        return;
    if (kc->held)
        rd_kafka_message_destroy(kc->held);
    kc->held = NULL;
    drop_parts(kc);
    if (kc->rk) {
        /* Leaves the group; a revocation now has no listener to call. */
        kc->has_rb = 0;
        rd_kafka_consumer_close(kc->rk);
        drop_parts(kc);
        for (int p = 0; p < kc->nnames; p++)
            if (kc->parts[p].q)
                rd_kafka_queue_destroy(kc->parts[p].q);
        if (kc->queue)
            rd_kafka_queue_destroy(kc->queue);
        if (kc->rkt)
            rd_kafka_topic_destroy(kc->rkt);
        rd_kafka_destroy(kc->rk);
    }
    if (kc->dlq) {
        while (rd_kafka_flush(kc->dlq, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT)
            SS_INFO(COMP, "waiting for %d rejected records to reach the dead-letter topic",
                    rd_kafka_outq_len(kc->dlq));
        rd_kafka_topic_destroy(kc->dlq_topic);
        rd_kafka_destroy(kc->dlq);
    } else if (kc->dlq_conf) {
        rd_kafka_conf_destroy(kc->dlq_conf);
    }
    for (int i = 0; i < kc->nnames; i++)
        free(kc->names[i]);
    free(kc->names);
    free(kc->parts);
    for (int i = 0; i < 2; i++)
        if (kc->wake[i] >= 0)
            close(kc->wake[i]);
    free(kc->assigned);
    free(kc->at_end);
    kf_uri_free(&kc->uri);
    pthread_mutex_destroy(&kc->dlq_mu);
    free(kc);
}

const ss_bus_consumer_ops ss_bus_kafka_consumer_ops = {
    .name = "kafka",
    .scheme = "kafka://",
    .caps = SS_BUS_CAP_PROPS | SS_BUS_CAP_GROUP,
    .open = kafka_consumer_open,
    .source = kafka_consumer_source,
    .seek = kafka_consumer_seek,
    .poll = kafka_consumer_poll,
    .close = kafka_consumer_close,
    .set_rebalance = kafka_consumer_set_rebalance,
    .committed = kafka_consumer_committed,
    .rejected = kafka_consumer_rejected,
    .finish = kafka_consumer_finish,
};

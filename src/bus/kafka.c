/* Kafka bus: kafka://HOST:PORT[,HOST:PORT...]/TOPIC through librdkafka.
 *
 * The producer is idempotent (enable.idempotence: no duplicate and no
 * reordering within a partition, even when it retries), keys every record by
 * its order_id so that the events of an order share a partition and keep
 * their order, and hashes keys as the Java client does (murmur2_random), so
 * that clients in other languages agree on an order's partition. It checks
 * every delivery report: the first failed delivery fails the producer. A
 * topic that does not exist is created when the producer opens, with the
 * partitions asked for or the broker's default.
 *
 * The URI parser, the configuration from properties and the routing of
 * librdkafka's logs into ours are shared: a consumer goes beside the producer
 * in this file, as in file.c.
 *
 * @locality A producer is used by one thread. librdkafka runs its own
 * threads; the delivery reports and error callbacks run on the caller's
 * thread, inside rd_kafka_poll() and rd_kafka_flush(), and only the log
 * callback runs on librdkafka's threads (ss_log_write is thread-safe). */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"

#define COMP "bus:kafka"

/* The longest record handed out whole: the engine's limit (SS_LINE_MAX);
 * a longer message is handed out cut, with its full length, and rejected. */
#define SS_KAFKA_RECORD_MAX (1u << 20)

/* How long opening waits at most for the cluster to answer (less when
 * message.timeout.ms is shorter), so that a wrong address or a broker that
 * is down is reported promptly instead of after the message timeout. */
#define OPEN_TIMEOUT_MS 30000

/* ---- shared by producer and consumer ---- */

typedef struct kafka_uri {
    char *brokers; /* bootstrap.servers: "host:port[,host:port...]" */
    char *topic;
} kafka_uri;

static void uri_free(kafka_uri *u)
{
    free(u->brokers);
    free(u->topic);
    u->brokers = u->topic = NULL;
}

/* Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-]. */
static int topic_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249 || !strcmp(t, ".") || !strcmp(t, ".."))
        return 0;
    return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* Parses the part of the URI after "kafka://": the broker list, '/', and
 * the topic. */
static int uri_parse(const char *target, kafka_uri *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    const char *slash = strchr(target, '/');
    if (!slash || slash == target || !slash[1]) {
        snprintf(err, errlen,
                 "Kafka URI 'kafka://%s' needs brokers and a topic: "
                 "kafka://HOST:PORT[,HOST:PORT...]/TOPIC, e.g. kafka://127.0.0.1:9092/orders",
                 target);
        return SS_EINVAL;
    }
    /* Every broker is HOST:PORT with a port number. */
    for (const char *p = target; p < slash;) {
        const char *end = memchr(p, ',', (size_t)(slash - p));
        if (!end)
            end = slash;
        const char *colon = NULL;
        for (const char *q = p; q < end; q++)
            if (*q == ':')
                colon = q;
        size_t digits = colon ? strspn(colon + 1, "0123456789") : 0;
        if (!colon || colon == p || digits == 0 || colon + 1 + digits != end) {
            snprintf(err, errlen,
                     "Kafka URI 'kafka://%s': broker '%.*s' is not HOST:PORT "
                     "(kafka://HOST:PORT[,HOST:PORT...]/TOPIC)",
                     target, (int)(end - p), p);
            return SS_EINVAL;
        }
        p = end + (end < slash);
    }
    if (!topic_ok(slash + 1)) {
        snprintf(err, errlen,
                 "Kafka URI 'kafka://%s': '%s' is not a valid topic name; use 1 to 249 "
                 "letters, digits, '.', '_' or '-'",
                 target, slash + 1);
        return SS_EINVAL;
    }
    u->brokers = ss_strndup(target, (size_t)(slash - target));
    u->topic = ss_strdup(slash + 1);
    return SS_OK;
}

/* Sets one property; a bad one is a usage error with librdkafka's reason. */
static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                    size_t errlen)
{
    char why[512];
    if (rd_kafka_conf_set(conf, key, value, why, sizeof why) != RD_KAFKA_CONF_OK) {
        snprintf(err, errlen,
                 "bad Kafka property '%s=%s': %s (the properties are librdkafka's, as in its "
                 "CONFIGURATION.md)",
                 key, value, why);
        return SS_EINVAL;
    }
    return SS_OK;
}

/* A configuration for brokers: the backend's defaults (pairs of key and
 * value, ended by NULL), then the user's properties, which may override
 * them. */
static int conf_build(const char *brokers, const char *const *defaults, const ss_bus_opts *opts,
                      rd_kafka_conf_t **out, char *err, size_t errlen)
{
    *out = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = conf_set(conf, "bootstrap.servers", brokers, err, errlen);
    for (size_t i = 0; rc == SS_OK && defaults[i]; i += 2)
        rc = conf_set(conf, defaults[i], defaults[i + 1], err, errlen);
    for (size_t i = 0; rc == SS_OK && i < opts->nprops; i++) {
        const char *kv = opts->props[i], *eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            snprintf(err, errlen,
                     "bad Kafka property '%s': expected KEY=VALUE, e.g. "
                     "security.protocol=ssl",
                     kv);
            rc = SS_EINVAL;
            break;
        }
        char *key = ss_strndup(kv, (size_t)(eq - kv));
        rc = conf_set(conf, key, eq + 1, err, errlen);
        free(key);
    }
    if (rc != SS_OK) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    *out = conf;
    return SS_OK;
}

/* librdkafka's logs, with its syslog levels, as ours. Its errors are mostly
 * transient (it reconnects and retries), so they are warnings; what fails
 * for good is reported by the backend as an error. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    int ours = level <= 4 ? SS_LOG_WARN : level <= 6 ? SS_LOG_INFO : SS_LOG_DEBUG;
    SS_LOG(ours, COMP, "%s: %s", fac, buf);
}

/* The value of a property as configured, for the backend's own timeouts. */
static int64_t conf_int(const rd_kafka_conf_t *conf, const char *key, int64_t fallback)
{
    char buf[64];
    size_t n = sizeof buf;
    if (rd_kafka_conf_get(conf, key, buf, &n) != RD_KAFKA_CONF_OK)
        return fallback;
    char *end;
    long long v = strtoll(buf, &end, 10);
    return end != buf && *end == '\0' ? (int64_t)v : fallback;
}

/* Waits for the cluster's metadata (every topic's with all_topics, else
 * none: only that the cluster answers), serving callbacks meanwhile so
 * that the reason it does not answer is known: last_error is the buffer
 * where the client's error callback keeps its last error. A broker that
 * refuses connections may be starting: it gets until the deadline too. */
static int wait_metadata(rd_kafka_t *rk, const char *brokers, int all_topics,
                         const char *last_error, int64_t timeout_ms,
                         const struct rd_kafka_metadata **md, char *err, size_t errlen)
{
    int64_t deadline = ss_mono_ms() + timeout_ms, left;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    while ((left = deadline - ss_mono_ms()) > 0) {
        e = rd_kafka_metadata(rk, all_topics, NULL, md, (int)(left < 500 ? left : 500));
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return SS_OK;
        if (e != RD_KAFKA_RESP_ERR__TIMED_OUT && e != RD_KAFKA_RESP_ERR__TRANSPORT)
            break;
        rd_kafka_poll(rk, left < 100 ? (int)left : 100);
    }
    rd_kafka_poll(rk, 0);
    snprintf(err, errlen,
             "cannot reach the Kafka cluster at %s within %.1f s: %s%s%s; is a broker running "
             "there? (`make kafka` starts one on this machine)",
             brokers, (double)timeout_ms / 1000.0, rd_kafka_err2str(e),
             last_error[0] ? "; last error: " : "", last_error);
    return SS_EIO;
}

/* ---- producer ---- */

typedef struct kafka_producer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    kafka_uri uri;
    int partitions; /* the topic's, from its metadata */
    int64_t produced, delivered, failed;
    char first_failure[512]; /* the first failed delivery, or a fatal error */
    char last_error[512];    /* the client's last error, for an unreachable cluster */
} kafka_producer;

static const char *const producer_defaults[] = {
    "enable.idempotence", "true",           /* acks=all, no duplicates, order kept on retries */
    "partitioner",        "murmur2_random", /* as the Java client */
    "client.id",          "shopstream",     NULL,
};

/* Records and logs the first failure; later ones are only counted. */
__attribute__((format(printf, 2, 3))) static void fail(kafka_producer *kp, const char *fmt, ...)
{
    if (kp->first_failure[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(kp->first_failure, sizeof kp->first_failure, fmt, ap);
    va_end(ap);
    SS_ERROR(COMP, "%s", kp->first_failure);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    kafka_producer *kp = opaque;
    if (!m->err) {
        kp->delivered++;
        return;
    }
    kp->failed++;
    fail(kp, "delivery to topic '%s' failed: %s", kp->uri.topic, rd_kafka_err2str(m->err));
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    kafka_producer *kp = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* The idempotent producer cannot go on without breaking its
         * guarantees (e.g. the broker lost acknowledged messages). */
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        fail(kp, "the producer for topic '%s' hit a fatal error: %s", kp->uri.topic, why);
        return;
    }
    /* librdkafka logs these too (log_cb); keep the last for our message. */
    snprintf(kp->last_error, sizeof kp->last_error, "%s", reason);
    SS_DEBUG(COMP, "%s", reason);
}

/* The topic's partition count, or 0 when the metadata does not list it. */
static int topic_partitions(const struct rd_kafka_metadata *md, const char *topic, int *topic_err)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (!strcmp(md->topics[i].topic, topic)) {
            *topic_err = md->topics[i].err;
            return md->topics[i].err ? 0 : md->topics[i].partition_cnt;
        }
    }
    *topic_err = 0;
    return 0;
}

static int create_topic(kafka_producer *kp, int partitions, int64_t timeout_ms, char *err,
                        size_t errlen)
{
    char why[512];
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(kp->uri.topic, partitions > 0 ? partitions : -1, -1, why, sizeof why);
    if (!nt) {
        snprintf(err, errlen, "cannot create topic '%s': %s", kp->uri.topic, why);
        return SS_EINVAL;
    }
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(kp->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, (int)timeout_ms, why, sizeof why);
    rd_kafka_AdminOptions_set_request_timeout(ao, (int)timeout_ms, why, sizeof why);
    rd_kafka_queue_t *q = rd_kafka_queue_new(kp->rk);
    rd_kafka_CreateTopics(kp->rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)timeout_ms + 1000);
    int rc = SS_OK;
    const char *reason = NULL;
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR__TIMED_OUT;
    if (ev && rd_kafka_event_error(ev)) {
        e = rd_kafka_event_error(ev);
        reason = rd_kafka_event_error_string(ev);
    } else if (ev) {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        e = n == 1 ? rd_kafka_topic_result_error(res[0]) : RD_KAFKA_RESP_ERR__FAIL;
        reason = n == 1 ? rd_kafka_topic_result_error_string(res[0]) : NULL;
    }
    /* Another producer may have created it meanwhile: as good. */
    if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        snprintf(err, errlen,
                 "cannot create topic '%s' at %s: %s; create it on the cluster, or give this "
                 "client the right to",
                 kp->uri.topic, kp->uri.brokers, reason ? reason : rd_kafka_err2str(e));
        rc = e == RD_KAFKA_RESP_ERR_INVALID_PARTITIONS ? SS_EINVAL : SS_EIO;
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Makes sure the topic exists, creating it when it does not, and learns
 * its partition count. */
static int ensure_topic(kafka_producer *kp, int partitions, int64_t timeout_ms, char *err,
                        size_t errlen)
{
    /* All topics, not this one: asking for one topic's metadata would let
     * a broker with auto.create.topics.enable create it with its defaults. */
    const struct rd_kafka_metadata *md = NULL;
    int rc =
        wait_metadata(kp->rk, kp->uri.brokers, 1, kp->last_error, timeout_ms, &md, err, errlen);
    if (rc != SS_OK)
        return rc;
    int terr;
    kp->partitions = topic_partitions(md, kp->uri.topic, &terr);
    rd_kafka_metadata_destroy(md);
    if (terr && terr != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        snprintf(err, errlen, "topic '%s' at %s cannot be used: %s", kp->uri.topic, kp->uri.brokers,
                 rd_kafka_err2str(terr));
        return SS_EIO;
    }
    if (kp->partitions > 0) {
        if (partitions > 0 && partitions != kp->partitions)
            SS_WARN(COMP,
                    "topic '%s' exists with %d partitions; the %d asked for apply only to a "
                    "topic that is created",
                    kp->uri.topic, kp->partitions, partitions);
        return SS_OK;
    }
    rc = create_topic(kp, partitions, timeout_ms, err, errlen);
    if (rc != SS_OK)
        return rc;
    rc = wait_metadata(kp->rk, kp->uri.brokers, 1, kp->last_error, timeout_ms, &md, err, errlen);
    if (rc != SS_OK)
        return rc;
    kp->partitions = topic_partitions(md, kp->uri.topic, &terr);
    rd_kafka_metadata_destroy(md);
    SS_INFO(COMP, "created topic '%s' with %d partition%s", kp->uri.topic, kp->partitions,
            kp->partitions == 1 ? "" : "s");
    return SS_OK;
}

static int kafka_producer_close(void *state);

static int kafka_producer_open(const char *target, const ss_bus_opts *opts, void **state, char *err,
                               size_t errlen)
{
    *state = NULL;
    kafka_producer *kp = ss_calloc(1, sizeof *kp);
    rd_kafka_conf_t *conf = NULL;
    int rc = uri_parse(target, &kp->uri, err, errlen);
    if (rc == SS_OK)
        rc = conf_build(kp->uri.brokers, producer_defaults, opts, &conf, err, errlen);
    if (rc != SS_OK)
        goto out;

    int64_t timeout_ms = conf_int(conf, "message.timeout.ms", 0);
    if (timeout_ms <= 0 || timeout_ms > OPEN_TIMEOUT_MS)
        timeout_ms = OPEN_TIMEOUT_MS;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_opaque(conf, kp);
    char why[512];
    kp->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof why);
    if (!kp->rk) {
        /* Properties that are each valid but do not go together. */
        rd_kafka_conf_destroy(conf);
        snprintf(err, errlen, "bad Kafka configuration: %s", why);
        rc = SS_EINVAL;
        goto out;
    }
    /* rd_kafka_new owns conf now. */
    rc = ensure_topic(kp, opts->partitions, timeout_ms, err, errlen);
    if (rc != SS_OK)
        goto out;
    kp->rkt = rd_kafka_topic_new(kp->rk, kp->uri.topic, NULL);
    if (!kp->rkt) {
        snprintf(err, errlen, "cannot use topic '%s': %s", kp->uri.topic,
                 rd_kafka_err2str(rd_kafka_last_error()));
        rc = SS_EINVAL;
        goto out;
    }
    SS_DEBUG(COMP, "producing to topic '%s' (%d partitions) at %s", kp->uri.topic, kp->partitions,
             kp->uri.brokers);
out:
    if (rc != SS_OK) {
        /* Nothing was produced: close only releases. */
        kafka_producer_close(kp);
        return rc;
    }
    *state = kp;
    return SS_OK;
}

static int kafka_produce(void *state, const char *key, size_t klen, const char *value, size_t vlen)
{
    kafka_producer *kp = state;
    if (kp->first_failure[0])
        return SS_EIO;
    if (rd_kafka_produce(kp->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)value, vlen,
                         key, klen, NULL) != 0) {
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            /* Back-pressure: deliveries make room; wait for one. */
            rd_kafka_poll(kp->rk, 100);
            return kp->first_failure[0] ? SS_EIO : SS_AGAIN;
        }
        fail(kp, "cannot queue a message for topic '%s': %s", kp->uri.topic, rd_kafka_err2str(e));
        return SS_EIO;
    }
    kp->produced++;
    rd_kafka_poll(kp->rk, 0); /* serve the delivery reports */
    return kp->first_failure[0] ? SS_EIO : SS_OK;
}

/* Waits until every queued message is delivered or has failed; each one
 * fails at the latest after message.timeout.ms. */
static int kafka_flush(void *state)
{
    kafka_producer *kp = state;
    while (rd_kafka_flush(kp->rk, 1000) == RD_KAFKA_RESP_ERR__TIMED_OUT)
        SS_DEBUG(COMP, "waiting for %d messages to be delivered", rd_kafka_outq_len(kp->rk));
    return kp->first_failure[0] ? SS_EIO : SS_OK;
}

static int kafka_producer_close(void *state)
{
    kafka_producer *kp = state;
    if (!kp)
        return SS_OK;
    int rc = SS_OK;
    if (kp->rk && kp->produced > 0) {
        rc = kafka_flush(kp);
        if (kp->failed > 0 || rc != SS_OK)
            SS_ERROR(COMP, "%" PRId64 " of %" PRId64 " messages were not delivered to topic '%s'",
                     kp->produced - kp->delivered, kp->produced, kp->uri.topic);
        else
            SS_INFO(COMP, "%" PRId64 " messages delivered to topic '%s' (%d partition%s) at %s",
                    kp->delivered, kp->uri.topic, kp->partitions, kp->partitions == 1 ? "" : "s",
                    kp->uri.brokers);
    }
    if (kp->rkt)
        rd_kafka_topic_destroy(kp->rkt);
    if (kp->rk)
        rd_kafka_destroy(kp->rk);
    uri_free(&kp->uri);
    free(kp);
    return rc;
}

const ss_bus_ops ss_bus_kafka_ops = {
    .name = "kafka",
    .scheme = "kafka://",
    .caps = SS_BUS_CAP_PROPS | SS_BUS_CAP_TOPICS,
    .producer_open = kafka_producer_open,
    .produce = kafka_produce,
    .flush = kafka_flush,
    .producer_close = kafka_producer_close,
};

/* ---- consumer ---- */

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
    char **names;             /* "kafka:TOPIC/P" per partition */
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
    /* Once the prefetched messages reach either bound, librdkafka stops
     * fetching for a second (fetch.queue.backoff.ms, which only librdkafka
     * 2.2 and later let one change), whatever the consumer reads meanwhile:
     * the queue must hold a second of what the engine consumes, or the
     * engine idles. 100,000 messages (the default count) lasted the
     * engine a third of a second, which doubled the time of a replay; 64
     * MiB (the default bytes, about 200,000 events) lasted it 0.7 s once
     * the store wrote 300,000 events a second, and a replay from one
     * partition then took 8.5 s instead of 6.7 s. The queue is one for all
     * partitions and fills only while the engine is behind (a replay, a
     * backlog): 128 MiB, about 400,000 events, costs about 130 MB more at
     * such times. The count still bounds the queue's per-message memory
     * when messages are tiny. */
    "queued.min.messages",
    "600000",
    "queued.max.messages.kbytes",
    "131072",
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
     * librdkafka logs them too (log_cb); keep the last for our message. */
    snprintf(kc->last_error, sizeof kc->last_error, "%s", reason);
    SS_DEBUG(COMP, "%s (%s)", reason, rd_kafka_err2str(err));
}

static void kafka_consumer_close(void *state);

static int kafka_consumer_open(const char *target, const ss_bus_opts *opts, void **state, char *err,
                               size_t errlen)
{
    *state = NULL;
    kafka_consumer *kc = ss_calloc(1, sizeof *kc);
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
    int rc = uri_parse(target, &kc->uri, err, errlen);
    if (rc == SS_OK)
        rc = conf_build(kc->uri.brokers, defaults, opts, &conf, err, errlen);
    if (rc == SS_OK)
        rc = conf_set(conf, "group.id", kc->group, err, errlen);
    /* The dead-letter producer: the same brokers and properties (TLS, SASL),
     * but a producer's defaults; properties only a consumer knows are
     * dropped there (librdkafka warns of them). */
    if (rc == SS_OK)
        rc = conf_build(kc->uri.brokers, producer_defaults, opts, &kc->dlq_conf, err, errlen);
    if (rc != SS_OK) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        kafka_consumer_close(kc);
        return rc;
    }
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_opaque(conf, kc);
    /* A consumer waits for a cluster that is down, as Kafka's consumers
     * do, but a run that is to end (--exit-at-end: a replay, a backfill)
     * would wait for ever: it gives up when the cluster does not answer
     * within the session timeout (at most OPEN_TIMEOUT_MS), as long as the
     * group waits for a member that does not answer. */
    int64_t timeout_ms = conf_int(conf, "session.timeout.ms", OPEN_TIMEOUT_MS);
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
        rc =
            wait_metadata(kc->rk, kc->uri.brokers, 1, kc->last_error, timeout_ms, &md, err, errlen);
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

static int kafka_consumer_poll(void *state, ss_bus_msg *msg, int timeout_ms)
{
    kafka_consumer *kc = state;
    if (kc->held) {
        rd_kafka_message_destroy(kc->held);
        kc->held = NULL;
    }
    if (kc->fatal)
        return SS_EIO;
    if (all_at_end(kc))
        return SS_EOF;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(kc->rk, timeout_ms);
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
    const char *data = m->payload ? m->payload : "";
    size_t len = m->len;
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
    rd_kafka_conf_set_log_cb(kc->dlq_conf, log_cb);
    kc->dlq_max = (size_t)conf_int(kc->dlq_conf, "message.max.bytes", 1000000);
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
    if (kc->rk) {
        /* Leaves the group; a revocation now has no listener to call. */
        kc->has_rb = 0;
        rd_kafka_consumer_close(kc->rk);
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
    free(kc->assigned);
    free(kc->at_end);
    uri_free(&kc->uri);
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

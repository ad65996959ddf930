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
 * librdkafka's logs into ours are here too, shared with the consumer
 * (kafka_consumer.c) through kafka_int.h.
 *
 * @locality A producer is used by one thread. librdkafka runs its own
 * threads; the delivery reports and error callbacks run on the caller's
 * thread, inside rd_kafka_poll() and rd_kafka_flush(), and only the log
 * callback runs on librdkafka's threads (ss_log_write is thread-safe). */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/bus.h"
#include "bus/kafka_int.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"

/* ---- shared by producer and consumer ---- */

void kf_uri_free(kafka_uri *u)
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
int kf_uri_parse(const char *target, kafka_uri *u, char *err, size_t errlen)
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
int kf_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err, size_t errlen)
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
int kf_conf_build(const char *brokers, const char *const *defaults, const ss_bus_opts *opts,
                  rd_kafka_conf_t **out, char *err, size_t errlen)
{
    *out = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    int rc = kf_conf_set(conf, "bootstrap.servers", brokers, err, errlen);
    for (size_t i = 0; rc == SS_OK && defaults[i]; i += 2)
        rc = kf_conf_set(conf, defaults[i], defaults[i + 1], err, errlen);
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
        rc = kf_conf_set(conf, key, eq + 1, err, errlen);
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
void kf_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    int ours = level <= 4 ? SS_LOG_WARN : level <= 6 ? SS_LOG_INFO : SS_LOG_DEBUG;
    SS_LOG(ours, COMP, "%s: %s", fac, buf);
}

/* The value of a property as configured, for the backend's own timeouts. */
int64_t kf_conf_int(const rd_kafka_conf_t *conf, const char *key, int64_t fallback)
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
int kf_wait_metadata(rd_kafka_t *rk, const char *brokers, int all_topics, const char *last_error,
                     int64_t timeout_ms, const struct rd_kafka_metadata **md, char *err,
                     size_t errlen)
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

const char *const kf_producer_defaults[] = {
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
    /* librdkafka logs these too (kf_log_cb); keep the last for our message. */
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
        kf_wait_metadata(kp->rk, kp->uri.brokers, 1, kp->last_error, timeout_ms, &md, err, errlen);
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
    rc = kf_wait_metadata(kp->rk, kp->uri.brokers, 1, kp->last_error, timeout_ms, &md, err, errlen);
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
    int rc = kf_uri_parse(target, &kp->uri, err, errlen);
    if (rc == SS_OK)
        rc = kf_conf_build(kp->uri.brokers, kf_producer_defaults, opts, &conf, err, errlen);
    if (rc != SS_OK)
        goto out;

    int64_t timeout_ms = kf_conf_int(conf, "message.timeout.ms", 0);
    if (timeout_ms <= 0 || timeout_ms > OPEN_TIMEOUT_MS)
        timeout_ms = OPEN_TIMEOUT_MS;
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    rd_kafka_conf_set_log_cb(conf, kf_log_cb);
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
    kf_uri_free(&kp->uri);
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

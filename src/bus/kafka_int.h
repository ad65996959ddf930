/* What the Kafka bus's producer (kafka.c) and consumer (kafka_consumer.c)
 * share: the URI, the configuration from properties, librdkafka's logs in
 * ours, and the wait for the cluster's metadata. */
#ifndef SS_BUS_KAFKA_INT_H
#define SS_BUS_KAFKA_INT_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"

#define COMP "bus:kafka"

/* The longest record handed out whole: the engine's limit (SS_LINE_MAX);
 * a longer message is handed out cut, with its full length, and rejected. */
#define SS_KAFKA_RECORD_MAX (1u << 20)

/* How long opening waits at most for the cluster to answer (less when
 * message.timeout.ms is shorter), so that a wrong address or a broker that
 * is down is reported promptly instead of after the message timeout. */
#define OPEN_TIMEOUT_MS 30000

typedef struct kafka_uri {
    char *brokers; /* bootstrap.servers: "host:port[,host:port...]" */
    char *topic;
} kafka_uri;

void kf_uri_free(kafka_uri *u);
/* Parses kafka://HOST:PORT[,HOST:PORT...]/TOPIC; a bad one is SS_EINVAL
 * with the reason and the fix in err. */
int kf_uri_parse(const char *target, kafka_uri *u, char *err, size_t errlen);
/* Sets one property; a bad one is a usage error with librdkafka's reason. */
int kf_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *err,
                size_t errlen);
/* A configuration for brokers: the defaults (pairs of key and value, ended
 * by NULL), then the user's properties, which may override them. */
int kf_conf_build(const char *brokers, const char *const *defaults, const ss_bus_opts *opts,
                  rd_kafka_conf_t **out, char *err, size_t errlen);
/* The value of a property as configured, or fallback. */
int64_t kf_conf_int(const rd_kafka_conf_t *conf, const char *key, int64_t fallback);
/* librdkafka's logs as ours (rd_kafka_conf_set_log_cb). */
void kf_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
/* Waits for the cluster's metadata; SS_EIO with the reason when it does not
 * answer within timeout_ms. */
int kf_wait_metadata(rd_kafka_t *rk, const char *brokers, int all_topics, const char *last_error,
                     int64_t timeout_ms, const struct rd_kafka_metadata **md, char *err,
                     size_t errlen);
/* The producer's defaults, which the consumer's dead-letter producer uses too. */
extern const char *const kf_producer_defaults[];

#endif

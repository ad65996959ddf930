#include "bus/bus.h"

#include <stdio.h>
#include <string.h>

#include "common/status.h"

static const ss_bus_ops *const registry[] = {
    &ss_bus_file_ops,
    &ss_bus_kafka_ops,
};

static const ss_bus_ops *find(const char *uri, const char **target)
{
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++) {
        size_t n = strlen(registry[i]->scheme);
        if (strncmp(uri, registry[i]->scheme, n) == 0) {
            *target = uri + n;
            return registry[i];
        }
    }
    /* No scheme: a plain path, or "-" for the standard streams. */
    *target = uri;
    return strstr(uri, "://") ? NULL : &ss_bus_file_ops;
}

int ss_bus_producer_open(const char *uri, const ss_bus_opts *opts, ss_bus_producer *bp, char *err,
                         size_t errlen)
{
    static const ss_bus_opts none;
    bp->ops = NULL;
    bp->state = NULL;
    if (!opts)
        opts = &none;
    const char *target;
    const ss_bus_ops *ops = find(uri, &target);
    if (!ops) {
        snprintf(err, errlen,
                 "unsupported bus URI '%s': use '-', a file path, file:PATH or "
                 "kafka://HOST:PORT/TOPIC",
                 uri);
        return SS_EINVAL;
    }
    if (opts->nprops > 0 && !(ops->caps & SS_BUS_CAP_PROPS)) {
        snprintf(err, errlen,
                 "'%s' is a %s output, which takes no client properties (got '%s'); they "
                 "configure kafka://HOST:PORT/TOPIC outputs",
                 uri, ops->name, opts->props[0]);
        return SS_EINVAL;
    }
    if (opts->partitions > 0 && !(ops->caps & SS_BUS_CAP_TOPICS)) {
        snprintf(err, errlen,
                 "'%s' is a %s output, which has no partitions; they apply to the topic of a "
                 "kafka://HOST:PORT/TOPIC output",
                 uri, ops->name);
        return SS_EINVAL;
    }
    int rc = ops->producer_open(target, opts, &bp->state, err, errlen);
    if (rc == SS_OK)
        bp->ops = ops;
    return rc;
}
int ss_bus_producer_close(ss_bus_producer *bp)
{
    int rc = SS_OK;
    if (bp->ops)
        rc = bp->ops->producer_close(bp->state);
    bp->ops = NULL;
    bp->state = NULL;
    return rc;
}

int ss_bus_consumer_open(const char *uri, const ss_bus_opts *opts, ss_bus_consumer *bc, char *err,
                         size_t errlen)
{
    static const ss_bus_consumer_ops *const consumers[] = {
        &ss_bus_file_consumer_ops,
        &ss_bus_kafka_consumer_ops,
    };
    static const ss_bus_opts none;
    if (!opts)
        opts = &none;
    bc->ops = NULL;
    bc->state = NULL;
    const ss_bus_consumer_ops *ops = NULL;
    const char *target = uri;
    for (size_t i = 0; i < sizeof consumers / sizeof consumers[0]; i++) {
        size_t n = strlen(consumers[i]->scheme);
        if (strncmp(uri, consumers[i]->scheme, n) == 0) {
            ops = consumers[i];
            target = uri + n;
        }
    }
    if (!ops && !strstr(uri, "://"))
        ops = &ss_bus_file_consumer_ops;
    if (!ops) {
        snprintf(err, errlen,
                 "unsupported input '%s': use '-', a file path, file:PATH or "
                 "kafka://HOST:PORT/TOPIC",
                 uri);
        return SS_EINVAL;
    }
    if (opts->nprops > 0 && !(ops->caps & SS_BUS_CAP_PROPS)) {
        snprintf(err, errlen,
                 "'%s' is a %s input, which takes no client properties (got '%s'); they "
                 "configure kafka://HOST:PORT/TOPIC inputs",
                 uri, ops->name, opts->props[0]);
        return SS_EINVAL;
    }
    if ((opts->group || opts->exit_at_end) && !(ops->caps & SS_BUS_CAP_GROUP)) {
        snprintf(err, errlen,
                 "'%s' is a %s input, which has no consumer group: --group and --exit-at-end "
                 "apply to kafka://HOST:PORT/TOPIC inputs (a file ends by itself unless "
                 "--follow)",
                 uri, ops->name);
        return SS_EINVAL;
    }
    int rc = ops->open(target, opts, &bc->state, err, errlen);
    if (rc == SS_OK)
        bc->ops = ops;
    return rc;
}

void ss_bus_consumer_close(ss_bus_consumer *bc)
{
    if (bc->ops)
        bc->ops->close(bc->state);
    bc->ops = NULL;
    bc->state = NULL;
}

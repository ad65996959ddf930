/* shopstream gen: writes the generator's events to a bus, as fast as possible
 * or paced against the wall clock. */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "bus/bus.h"
#include "cli/commands.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "gen/gen.h"
#include "gen/pump.h"
#include "gen/profile.h"

typedef struct gen_opts {
    int64_t seed;
    int64_t count;
    double rate;
    int64_t start;
    int max;
    double speedup;
    const char *out;
    const char *profile;
    int print_profile;
    ss_opt_list property;
    int64_t partitions;
} gen_opts;

#define F(f) offsetof(gen_opts, f)

static const ss_opt_short gen_shorts[] = {{'X', "property"}, {0, NULL}};

static const ss_opt gen_table[] = {
    {"seed", SS_OPT_INT, F(seed), "1", 0, 9007199254740991.0, NULL, "N",
     "Random seed: the same seed, start and flags give byte-identical output."},
    {"count", SS_OPT_SIZE, F(count), "0", 0, 1e15, NULL, "N",
     "Orders to generate (their payments and cancellations follow); 0 = no limit."},
    {"rate", SS_OPT_DOUBLE, F(rate), NULL, 1e-6, 1e7, NULL, "R",
     "Mean orders per second over a whole week (the profile's arrivals.rate if unset)."},
    {"start", SS_OPT_TIME, F(start), "now", 0, 0, NULL, "TIME",
     "Simulated time of the stream's start, UTC."},
    {"max", SS_OPT_FLAG, F(max), NULL, 0, 0, NULL, NULL,
     "Generate as fast as possible: event time is simulated and runs ahead of the clock."},
    {"speedup", SS_OPT_DOUBLE, F(speedup), NULL, 1e-3, 1e9, NULL, "X",
     "Run simulated time X times faster than real time."},
    {"out", SS_OPT_STRING, F(out), "-", 0, 0, NULL, "URI",
     "Where events go: '-' (stdout), a file path, file:PATH, or kafka://HOST:PORT/TOPIC (a Kafka "
     "topic, keyed by order_id)."},
    {"property", SS_OPT_LIST, F(property), NULL, 0, 0, NULL, "KEY=VALUE",
     "A Kafka client property for a kafka:// output, given to librdkafka as kcat's -X is: TLS, "
     "SASL, tuning. Repeatable; in the environment, one per line."},
    {"partitions", SS_OPT_INT, F(partitions), NULL, 1, 1000000, NULL, "N",
     "Partitions of the topic of a kafka:// output if gen has to create it (the broker's default "
     "if unset); an existing topic keeps its own."},
    {"profile", SS_OPT_STRING, F(profile), NULL, 0, 0, NULL, "FILE",
     "JSON document overriding the built-in profile (see docs/profile.md)."},
    {"print-profile", SS_OPT_FLAG, F(print_profile), NULL, 0, 0, NULL, NULL,
     "Print the effective profile (defaults merged with --profile) and exit."},
    SS_OPT_END,
};

static int gen_run(const void *vopts, int argc, char **argv)
{
    const gen_opts *o = vopts;
    char err[1024];
    (void)argv;
    if (argc > 0) {
        fprintf(stderr, "shopstream gen: unexpected argument '%s'; gen takes only options\n",
                argv[0]);
        return SS_EXIT_USAGE;
    }
    if (o->max && o->speedup > 0) {
        fprintf(stderr, "shopstream gen: --max and --speedup cannot be combined; choose one\n");
        return SS_EXIT_USAGE;
    }
    if (o->print_profile) {
        char *json;
        if (ss_profile_dump(o->profile, &json, err, sizeof err)) {
            fprintf(stderr, "shopstream gen: %s\n", err);
            return SS_EXIT_USAGE;
        }
        printf("%s\n", json);
        free(json);
        return SS_EXIT_OK;
    }

    ss_profile *prof = NULL;
    if (ss_profile_load(o->profile, &prof, err, sizeof err)) {
        fprintf(stderr, "shopstream gen: %s\n", err);
        return SS_EXIT_USAGE;
    }
    ss_bus_producer bus;
    ss_bus_opts bus_opts = {
        .props = o->property.items,
        .nprops = o->property.n,
        .partitions = (int)o->partitions,
    };
    int rc = ss_bus_producer_open(o->out, &bus_opts, &bus, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shopstream gen: %s\n", err);
        ss_profile_free(prof);
        return rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
    }
    ss_gen_config cfg = {
        .seed = (uint64_t)o->seed,
        .start_ms = o->start,
        .rate = o->rate,
        .count = (uint64_t)o->count,
    };
    ss_gen *g = ss_gen_new(prof, &cfg);
    ss_install_stop_handlers();

    double speed = o->max ? 0.0 : o->speedup > 0 ? o->speedup : 1.0;
    int exit_code = ss_gen_pump(g, &bus, o->start, speed, &ss_stop_requested) == SS_OK
                        ? SS_EXIT_OK
                        : SS_EXIT_FAIL;
    if (ss_bus_producer_close(&bus) != SS_OK)
        exit_code = SS_EXIT_FAIL;
    ss_gen_stats st;
    ss_gen_get_stats(g, &st);
    SS_INFO("gen",
            "%llu orders, %llu payments (%llu failed), %llu cancellations, %llu customers; "
            "run tag %s",
            (unsigned long long)st.orders, (unsigned long long)st.payments,
            (unsigned long long)st.failed_payments, (unsigned long long)st.cancellations,
            (unsigned long long)st.customers, ss_gen_tag(g));
    ss_gen_free(g);
    ss_profile_free(prof);
    return exit_code;
}

const ss_cmd ss_cmd_gen = {
    .name = "gen",
    .summary = "Generate a realistic stream of orders, payments and cancellations",
    .description =
        "Writes JSON Lines events in event-time order. Without --max or --speedup it runs in real "
        "time, forever unless --count is given; SIGINT or SIGTERM flushes and stops it cleanly. "
        "With --count, it stops once the orders and all their follow-up events are written. To a "
        "kafka:// output each event is one message keyed by its order_id, from an idempotent "
        "producer; gen waits while the producer's queue is full, and exits once every message is "
        "delivered, or with an error naming the first that was not.",
    .opts = gen_table,
    .shorts = gen_shorts,
    .opts_size = sizeof(gen_opts),
    .run = gen_run,
};

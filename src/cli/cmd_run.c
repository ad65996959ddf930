/* shopstream run: generator and engine in one process over the memory bus,
 * the embedded pipeline that `make run` starts. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bus/bus.h"
#include "cli/commands.h"
#include "cli/stores.h"
#include "common/log.h"
#include "common/status.h"
#include "common/thread.h"
#include "common/timeutil.h"
#include "engine/engine.h"
#include "gen/gen.h"
#include "gen/profile.h"
#include "gen/pump.h"
#include "cold/cold.h"
#include "cold/index.h"
#include "hot/hot.h"
#include "sink/sink.h"
#include "web/web.h"

typedef struct run_opts {
    const char *data;
    const char *hot;
    int64_t seed;
    double rate;
    double speedup;
    int max;
    int64_t count;
    int64_t start;
    const char *profile;
    int headless;
    int64_t lateness;
    int64_t commit_ms;
    int64_t queue_mb;
    const char *cold;
    double hot_max_mb;
    int64_t archive_every;
    int64_t port;
    const char *bind;
    const char *auth_token;
    const char *kafka;
    const char *topic;
    const char *group;
    int64_t partitions;
    ss_opt_list property;
    const char *kpi_sink;
} run_opts;

#define F(f) offsetof(run_opts, f)

static const ss_opt_short run_shorts[] = {{'X', "property"}, {0, NULL}};

static const ss_opt run_table[] = {
    {"data", SS_OPT_STRING, F(data), "./data", 0, 0, NULL, "DIR",
     "Directory of the embedded stores."},
    SS_HOT_OPT(run_opts, hot),
    {"seed", SS_OPT_INT, F(seed), "1", 0, 9007199254740991.0, NULL, "N", "Generator seed."},
    {"rate", SS_OPT_DOUBLE, F(rate), NULL, 1e-6, 1e7, NULL, "R",
     "Mean orders per second (the profile's arrivals.rate if unset)."},
    {"speedup", SS_OPT_DOUBLE, F(speedup), NULL, 1e-3, 1e9, NULL, "X",
     "Run simulated time X times faster than real time."},
    {"max", SS_OPT_FLAG, F(max), NULL, 0, 0, NULL, NULL,
     "Generate as fast as the engine takes the events."},
    {"count", SS_OPT_SIZE, F(count), "0", 0, 1e15, NULL, "N",
     "Stop after N orders and their follow-ups (0 = run until stopped)."},
    {"start", SS_OPT_TIME, F(start), "now", 0, 0, NULL, "TIME", "Simulated start time."},
    {"profile", SS_OPT_STRING, F(profile), NULL, 0, 0, NULL, "FILE",
     "Generator profile override (JSON)."},
    {"headless", SS_OPT_FLAG, F(headless), NULL, 0, 0, NULL, NULL,
     "Start no web server (the KPI summary is logged either way)."},
    {"port", SS_OPT_INT, F(port), "8050", 0, 65535, NULL, "PORT",
     "TCP port of the web server, which serves the same API as `serve` (0: any free port, "
     "logged at start)."},
    {"bind", SS_OPT_STRING, F(bind), "127.0.0.1", 0, 0, NULL, "ADDR",
     "Address the web server listens on; 0.0.0.0 or :: serve every interface: set "
     "--auth-token then."},
    {"auth-token", SS_OPT_STRING, F(auth_token), NULL, 0, 0, NULL, "TOKEN",
     "Require 'Authorization: Bearer TOKEN' on every endpoint but /healthz (401 otherwise)."},
    {"lateness", SS_OPT_INT, F(lateness), "120000", 0, 86400000.0 * 7, NULL, "MS",
     "Allowed lateness in ms."},
    {"commit-ms", SS_OPT_INT, F(commit_ms), "250", 10, 600000, NULL, "MS",
     "Commit at least this often while data flows, counted from the end of a commit; after a "
     "commit that took more than a quarter of this, four times its duration."},
    {"queue-mb", SS_OPT_INT, F(queue_mb), "16", 1, 4096, NULL, "MB",
     "Capacity of the in-process bus; a full bus holds the generator back."},
    {"kafka", SS_OPT_STRING, F(kafka), NULL, 0, 0, NULL, "HOST:PORT",
     "Use Kafka as the bus between the generator and the engine: the brokers "
     "(HOST:PORT[,HOST:PORT...]); the generator produces to --topic and the engine consumes it "
     "in --group. Without it the bus is in-process."},
    {"topic", SS_OPT_STRING, F(topic), "shopstream.events", 0, 0, NULL, "TOPIC",
     "Topic of the Kafka bus (with --kafka)."},
    {"group", SS_OPT_STRING, F(group), "shopstream", 0, 0, NULL, "G",
     "Consumer group of the engine on the Kafka bus (with --kafka)."},
    {"partitions", SS_OPT_INT, F(partitions), NULL, 1, 1000000, NULL, "N",
     "Partitions of --topic if it has to be created (with --kafka; the broker's default if "
     "unset)."},
    {"property", SS_OPT_LIST, F(property), NULL, 0, 0, NULL, "KEY=VALUE",
     "A Kafka client property for the producer and the consumer (with --kafka), as kcat's -X: "
     "TLS, SASL, tuning. Repeatable."},
    SS_ARCHIVE_OPTS(run_opts, cold, hot_max_mb, archive_every),
    SS_KPI_SINK_OPT(run_opts, kpi_sink),
    SS_OPT_END,
};

typedef struct gen_thread {
    ss_gen *g;
    ss_bus_producer bus;
    int64_t start;
    double speed;
    int rc;
    /* The consumer's finish op and state, told when the generator has
     * finished (Kafka); NULL for the memory bus, whose consumer the main
     * thread may close while this thread still runs. */
    void (*finish)(void *state);
    void *finish_state;
} gen_thread;

static void *gen_main(void *arg)
{
    ss_thread_name("ss-gen");
    gen_thread *t = arg;
    t->rc = ss_gen_pump(t->g, &t->bus, t->start, t->speed, &ss_stop_requested);
    int crc = ss_bus_producer_close(&t->bus);
    if (t->rc == SS_OK)
        t->rc = crc;
    /* Over Kafka the engine ends once it has read all that was delivered;
     * over the memory bus the producer's close ends its input. */
    if (t->rc == SS_OK && t->finish)
        t->finish(t->finish_state);
    return NULL;
}

typedef struct summary {
    ss_engine *eng;
    ss_hot *hot;
    int64_t next_ms;
} summary;

static int sum_row(void *ctx, const ss_kpi_row *r)
{
    ss_kpi *k = ctx;
    k->orders += r->k.orders;
    k->gross_cents += r->k.gross_cents;
    k->failed += r->k.failed;
    k->attempts += r->k.attempts;
    k->cancellations += r->k.cancellations;
    return SS_OK;
}

/* Every 10 s: one line with the last complete minute's KPIs and the engine's
 * counters, until the dashboard shows them. */
static void log_summary(summary *s)
{
    int64_t now = ss_mono_ms();
    if (now < s->next_ms)
        return;
    s->next_ms = now + 10000;
    ss_engine_stats st;
    ss_engine_get_stats(s->eng, &st);
    if (st.s.max_ts == INT64_MIN)
        return;
    int64_t minute = ss_time_floor(st.s.max_ts, SS_MS_PER_MIN) - SS_MS_PER_MIN;
    ss_kpi k = {0};
    s->hot->ops->read_kpis(s->hot->st, minute, minute + SS_MS_PER_MIN, SS_DIM_OVERALL, 0, sum_row,
                           &k);
    char ts[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(minute, ts);
    int64_t aov = k.orders ? (2 * k.gross_cents + k.orders) / (2 * k.orders) : 0;
    SS_INFO("run",
            "minute %.16s: orders %lld, revenue %lld.%02lld, aov %lld.%02lld, failed payments "
            "%lld/%lld, cancellations %lld | events %llu, rejected %llu, late %llu",
            ts, (long long)k.orders, (long long)(k.gross_cents / 100),
            (long long)(k.gross_cents % 100), (long long)(aov / 100), (long long)(aov % 100),
            (long long)k.failed, (long long)k.attempts, (long long)k.cancellations,
            (unsigned long long)st.s.events_in, (unsigned long long)st.s.rejected,
            (unsigned long long)st.s.late);
}

static int on_idle(void *ctx)
{
    log_summary(ctx);
    return 0;
}

/* The Kafka bus of --kafka: a producer for the generator and a consumer for
 * the engine on the same topic. */
static int open_kafka_bus(const run_opts *o, ss_bus_producer *out, ss_bus_consumer *in)
{
    char uri[4096], err[1024];
    snprintf(uri, sizeof uri, "kafka://%s/%s", o->kafka, o->topic);
    ss_bus_opts bo = {.props = o->property.items,
                      .nprops = o->property.n,
                      .partitions = (int)o->partitions,
                      .group = o->group};
    int rc = ss_bus_producer_open(uri, &bo, out, err, sizeof err);
    if (rc == SS_OK) {
        rc = ss_bus_consumer_open(uri, &bo, in, err, sizeof err);
        if (rc != SS_OK)
            ss_bus_producer_close(out);
    }
    if (rc != SS_OK) {
        fprintf(stderr, "shopstream run: %s\n", err);
        return rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
    }
    SS_INFO("run", "bus: Kafka topic '%s' at %s, group '%s'", o->topic, o->kafka, o->group);
    return SS_EXIT_OK;
}

static int run_run(const void *vopts, int argc, char **argv)
{
    const run_opts *o = vopts;
    if (argc > 0) {
        fprintf(stderr, "shopstream run: unexpected argument '%s'\n", argv[0]);
        return SS_EXIT_USAGE;
    }
    if (!o->kafka && (o->partitions || o->property.n)) {
        fprintf(stderr,
                "shopstream run: --%s configures the Kafka bus; give --kafka HOST:PORT "
                "too, or leave it out\n",
                o->partitions ? "partitions" : "property");
        return SS_EXIT_USAGE;
    }
    if (o->max && o->speedup > 0) {
        fprintf(stderr, "shopstream run: --max and --speedup cannot be combined; choose one\n");
        return SS_EXIT_USAGE;
    }
    if (ss_store_sink_uri_ok("run", o->kpi_sink))
        return SS_EXIT_USAGE;
    char err[1024];
    ss_profile *prof = NULL;
    if (ss_profile_load(o->profile, &prof, err, sizeof err)) {
        fprintf(stderr, "shopstream run: %s\n", err);
        return SS_EXIT_USAGE;
    }
    ss_hot hot;
    int ec = ss_store_open_hot(o->data, o->hot, 0, &hot);
    if (ec) {
        ss_profile_free(prof);
        return ec;
    }
    ss_cold cold = {0};
    struct ss_cold_index *cix = ss_store_cold_index(o->data, o->cold, &cold);
    /* The bus's consumer side, opened below; the engine tells it of commits
     * and rejected records. */
    ss_bus_consumer in = {0};
    ss_engine_config cfg = {.cold = cix,
                            .input = &in,
                            .lateness_ms = o->lateness,
                            .commit_ms = o->commit_ms,
                            .commit_records = 50000,
                            .places = prof};
    ss_engine *eng;
    if (ss_engine_open(&hot, &cfg, &eng, err, sizeof err)) {
        fprintf(stderr, "shopstream run: %s\n", err);
        ss_hot_close(&hot);
        ss_profile_free(prof);
        ss_cold_index_free(cix);
        ss_cold_close(&cold);
        return SS_EXIT_FAIL;
    }
    ss_sink_thread *sink = NULL;
    ec = ss_store_sink_start(o->data, o->hot, o->kpi_sink, &sink);
    if (ec) {
        ss_engine_free(eng);
        ss_hot_close(&hot);
        ss_profile_free(prof);
        ss_cold_index_free(cix);
        ss_cold_close(&cold);
        return ec;
    }
    ss_install_stop_handlers();
    /* The server reads the store through its own read-only connections, as
     * `serve` does; the limits left 0 are serve's defaults. */
    ss_web_config wcfg = {.data = o->data,
                          .hot = o->hot,
                          .cold = o->cold,
                          .bind = o->bind,
                          .port = (int)o->port,
                          .auth_token = o->auth_token};
    ss_web *web = NULL;
    if (!o->headless) {
        if (ss_web_start(&wcfg, &web, err, sizeof err)) {
            fprintf(stderr, "shopstream run: %s (or give --headless for no web server)\n", err);
            ss_sink_thread_finish(sink, 0);
            ss_sink_thread_free(sink);
            ss_engine_free(eng);
            ss_hot_close(&hot);
            ss_profile_free(prof);
            ss_cold_index_free(cix);
            ss_cold_close(&cold);
            return SS_EXIT_FAIL;
        }
        SS_INFO("web", "listening on http://%s%s%s:%d", strchr(o->bind, ':') ? "[" : "", o->bind,
                strchr(o->bind, ':') ? "]" : "", ss_web_port(web));
    }
    ss_gen_config gcfg = {.seed = (uint64_t)o->seed,
                          .start_ms = o->start,
                          .rate = o->rate,
                          .count = (uint64_t)o->count};
    gen_thread gt = {.g = ss_gen_new(prof, &gcfg),
                     .start = o->start,
                     .speed = o->max           ? 0.0
                              : o->speedup > 0 ? o->speedup
                                               : 1.0};
    if (o->kafka) {
        ec = open_kafka_bus(o, &gt.bus, &in);
        if (ec) {
            ss_sink_thread_finish(sink, 0);
            ss_sink_thread_free(sink);
            ss_web_stop(web);
            ss_gen_free(gt.g);
            ss_engine_free(eng);
            ss_cold_index_free(cix);
            ss_cold_close(&cold);
            ss_hot_close(&hot);
            ss_profile_free(prof);
            return ec;
        }
    } else {
        ss_memq *q = ss_memq_new((size_t)o->queue_mb << 20);
        ss_memq_producer(q, &gt.bus);
        ss_memq_consumer(q, &in);
        ss_memq_free(q);
    }
    gt.finish = in.ops->finish;
    gt.finish_state = in.state;
    pthread_t tid;
    if (pthread_create(&tid, NULL, gen_main, &gt) != 0) {
        fprintf(stderr, "shopstream run: cannot start the generator thread\n");
        ec = SS_EXIT_FAIL;
        ss_bus_producer_close(&gt.bus);
    } else {
        SS_INFO("run", "pipeline running: data in %s (stop with Ctrl-C)", o->data);
        summary sm = {.eng = eng, .hot = &hot, .next_ms = ss_mono_ms() + 10000};
        ss_archiver_thread *arch =
            ss_archiver_thread_start(o->data, o->hot, o->cold, o->hot_max_mb, o->archive_every, 0,
                                     ss_sink_thread_floor(sink));
        ec = ss_run_engine(eng, &in, 0, 2, on_idle, &sm, ss_archiver_thread_hold(arch));
        /* The engine stops on a signal or a store failure: release the
         * generator. Closing the memory queue's consumer releases one that
         * waits for room; over Kafka nothing holds it, and it may still tell
         * the consumer that it has finished: that one closes after it. */
        int signalled = ss_stop_requested;
        ss_stop_requested = 1;
        if (!gt.finish)
            ss_bus_consumer_close(&in);
        pthread_join(tid, NULL);
        ss_bus_consumer_close(&in);
        /* The sink first: the archiver's last run keeps what it has not written. */
        int final = ec == SS_EXIT_OK && o->count > 0 && !signalled;
        if (ss_sink_thread_finish(sink, final) != SS_OK && final)
            SS_WARN("run", "the KPI sink is not caught up; the next start with --kpi-sink "
                           "writes the rest");
        ss_archiver_thread_finish(arch, final);
        sm.next_ms = 0;
        log_summary(&sm);
    }
    ss_sink_thread_free(sink);
    ss_web_stop(web);
    if (ec == SS_EXIT_OK && gt.rc != SS_OK && gt.rc != SS_EIO)
        ec = SS_EXIT_FAIL;
    ss_gen_free(gt.g);
    ss_engine_free(eng);
    ss_cold_index_free(cix);
    ss_cold_close(&cold);
    ss_hot_close(&hot);
    ss_profile_free(prof);
    return ec;
}

const ss_cmd ss_cmd_run = {
    .name = "run",
    .summary = "Run generator and engine together in one process (the embedded pipeline)",
    .description = "The generator feeds the engine over a bounded in-process bus with "
                   "back-pressure; facts, dimensions and KPIs go to the hot store in --data. "
                   "Without --max or --speedup it runs in real time until stopped. Unless "
                   "--headless, it serves the HTTP API of `serve` (with /api/stream) on --port.",
    .opts = run_table,
    .shorts = run_shorts,
    .opts_size = sizeof(run_opts),
    .run = run_run,
};

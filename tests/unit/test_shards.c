/* The engine's shards (one per input partition) against a real SQLite store:
 * the same events split over partitions, read interleaved or one partition
 * after another, give the KPIs and facts of one unpartitioned run; a shard
 * released by one engine and claimed by another continues exactly; and an
 * engine whose shard another has claimed cannot commit. */
#define _POSIX_C_SOURCE 200809L
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/buf.h"
#include "common/status.h"
#include "engine/engine.h"
#include "gen/gen.h"
#include "gen/profile.h"
#include "hot/hot.h"

#define PARTS 3

typedef struct line {
    char *data;
    size_t len;
    int part;
    int64_t offset; /* in its partition */
} line;

static line *lines;
static size_t nlines;

/* A generated stream, each event in the partition of its order_id (as a
 * producer keyed by order_id would place it). */
static void make_stream(uint64_t count)
{
    ss_profile *prof = NULL;
    char err[512];
    if (ss_profile_load_text(NULL, "default", &prof, err, sizeof err) != SS_OK) {
        fprintf(stderr, "profile: %s\n", err);
        exit(1);
    }
    ss_gen_config cfg = {.seed = 9, .start_ms = 1793577600000LL, .count = count};
    ss_gen *g = ss_gen_new(prof, &cfg);
    const ss_event *ev;
    size_t cap = 0;
    int64_t next[PARTS] = {0};
    ss_buf b;
    ss_buf_init(&b, 1024);
    while (ss_gen_next(g, &ev) == SS_OK) {
        b.len = 0;
        ss_event_encode(ev, &b);
        if (nlines == cap) {
            cap = cap ? 2 * cap : 4096;
            lines = realloc(lines, cap * sizeof *lines);
        }
        uint64_t h = 1469598103934665603ULL;
        for (size_t i = 0; i < ev->order_id.n; i++)
            h = (h ^ (unsigned char)ev->order_id.p[i]) * 1099511628211ULL;
        line *l = &lines[nlines++];
        l->len = b.len && b.data[b.len - 1] == '\n' ? b.len - 1 : b.len;
        l->data = malloc(l->len);
        memcpy(l->data, b.data, l->len);
        l->part = (int)(h % PARTS);
        l->offset = next[l->part]++;
    }
    ss_buf_free(&b);
    ss_gen_free(g);
    ss_profile_free(prof);
}

static char dir[64];

static void open_store(const char *name, ss_hot *hot)
{
    char uri[256], err[512];
    snprintf(uri, sizeof uri, "sqlite:%s/%s.db", dir, name);
    if (ss_hot_open(uri, NULL, hot, err, sizeof err) != SS_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
}

static ss_engine *open_engine(ss_hot *hot)
{
    ss_engine_config cfg = {.lateness_ms = 120000, .commit_ms = 1000000, .commit_records = 500};
    ss_engine *e = NULL;
    char err[512];
    if (ss_engine_open(hot, &cfg, &e, err, sizeof err) != SS_OK) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return e;
}

/* Applies line i as a record of its partition (shard = partition) or, with
 * flat, of one unpartitioned source. */
static int apply(ss_engine *e, size_t i, int flat)
{
    static char source[32];
    const line *l = &lines[i];
    snprintf(source, sizeof source, flat ? "flat" : "part-%d", l->part);
    int64_t off = flat ? (int64_t)i : l->offset;
    ss_bus_msg m = {l->data, l->len, l->len, source, off, off + 1, flat ? 0 : l->part};
    int rc = ss_engine_process(e, &m);
    return rc ? rc : ss_engine_tick(e, 0);
}

/* The KPIs of the store, final flags aside, as one text. */
static char *kpis(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    sqlite3 *db;
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    sqlite3_stmt *q;
    sqlite3_prepare_v2(db,
                       "SELECT minute_start, dimension, dimension_value, orders, units, "
                       "gross_revenue, paid_revenue, payment_attempts, failed_payments, "
                       "cancellations, cancelled_revenue FROM kpi_minute ORDER BY 1, 2, 3",
                       -1, &q, NULL);
    ss_buf out;
    ss_buf_init(&out, 1 << 16);
    while (sqlite3_step(q) == SQLITE_ROW) {
        for (int c = 0; c < 11; c++) {
            const unsigned char *t = sqlite3_column_text(q, c);
            ss_buf_puts(&out, t ? (const char *)t : "NULL");
            ss_buf_putc(&out, c == 10 ? '\n' : '|');
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    char *s = strdup(ss_buf_cstr(&out));
    ss_buf_free(&out);
    return s;
}

static long long scalar(const char *name, const char *sql)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.db", dir, name);
    sqlite3 *db;
    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    sqlite3_stmt *q;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void run_flat(void)
{
    ss_hot hot;
    open_store("flat", &hot);
    ss_engine *e = open_engine(&hot);
    for (size_t i = 0; i < nlines; i++)
        CHECK_EQ_INT(apply(e, i, 1), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(e, 1), SS_OK);
    ss_engine_free(e);
    ss_hot_close(&hot);
}

static void test_interleaved(const char *want)
{
    ss_hot hot;
    open_store("interleaved", &hot);
    ss_engine *e = open_engine(&hot);
    for (size_t i = 0; i < nlines; i++)
        CHECK_EQ_INT(apply(e, i, 0), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(e, 1), SS_OK);
    ss_engine_free(e);
    ss_hot_close(&hot);
    char *got = kpis("interleaved");
    CHECK(strcmp(got, want) == 0);
    free(got);
    CHECK_EQ_INT(scalar("interleaved", "SELECT count(DISTINCT shard) FROM kpi_minute_data"), PARTS);
    CHECK_EQ_INT(scalar("interleaved", "SELECT value FROM engine_state WHERE key = 'stored'"),
                 (long long)nlines);
}

/* Partition after partition, as consumers at very different speeds would
 * read them: with every partition claimed first, the lowest watermark holds
 * the windows open, and no event is late. */
static void test_partition_after_partition(const char *want)
{
    ss_hot hot;
    open_store("sequential", &hot);
    ss_engine *e = open_engine(&hot);
    for (int p = 0; p < PARTS; p++)
        CHECK_EQ_INT(ss_engine_claim(e, p), SS_OK);
    for (int p = 0; p < PARTS; p++)
        for (size_t i = 0; i < nlines; i++)
            if (lines[i].part == p)
                CHECK_EQ_INT(apply(e, i, 0), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(e, 1), SS_OK);
    ss_engine_free(e);
    ss_hot_close(&hot);
    char *got = kpis("sequential");
    CHECK(strcmp(got, want) == 0);
    free(got);
    CHECK_EQ_INT(scalar("sequential", "SELECT value FROM engine_state WHERE key = 'late'"), 0);
}

/* The end of a test of two engines, where b has taken partition 1 over:
 * a reads the other partitions from line `from` on and commits, and both
 * engines and their stores close. */
static void finish_pair(ss_engine *a, ss_hot *ha, ss_engine *b, ss_hot *hb, size_t from)
{
    for (size_t i = from; i < nlines; i++)
        if (lines[i].part != 1)
            CHECK_EQ_INT(apply(a, i, 0), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(a, 1), SS_OK);
    ss_engine_free(a);
    ss_engine_free(b);
    ss_hot_close(ha);
    ss_hot_close(hb);
}

/* Two engines on one store, as two processes of a consumer group: the first
 * reads every partition up to a point, releases partition 1, and the second
 * claims it, resumes at its stored position and reads it to the end; the
 * first reads the rest of partitions 0 and 2. */
static void test_handover(const char *want)
{
    ss_hot ha, hb;
    open_store("handover", &ha);
    open_store("handover", &hb);
    ss_engine *a = open_engine(&ha);
    size_t cut = nlines / 2;
    for (size_t i = 0; i < cut; i++)
        CHECK_EQ_INT(apply(a, i, 0), SS_OK);
    CHECK_EQ_INT(ss_engine_release(a, 1), SS_OK);

    ss_engine *b = open_engine(&hb);
    CHECK_EQ_INT(ss_engine_claim(b, 1), SS_OK);
    int64_t pos = ss_engine_position(b, "part-1");
    size_t first = 0;
    while (first < nlines && !(lines[first].part == 1 && lines[first].offset == pos))
        first++;
    CHECK(first < nlines && first >= cut - 100);
    for (size_t i = first; i < nlines; i++)
        if (lines[i].part == 1)
            CHECK_EQ_INT(apply(b, i, 0), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(b, 1), SS_OK);
    finish_pair(a, &ha, b, &hb, cut);
    char *got = kpis("handover");
    CHECK(strcmp(got, want) == 0);
    free(got);
    CHECK_EQ_INT(scalar("handover", "SELECT value FROM engine_state WHERE key = 'stored'"),
                 (long long)nlines);
    CHECK_EQ_INT(scalar("handover", "SELECT value FROM engine_state WHERE key = 'duplicates'"), 0);
}

/* Regression: a restarted engine that claimed the partitions of one
 * assignment one by one kept, as a partition's watermark, the lowest input
 * watermark of the partitions claimed before it (the first one's own), which
 * closed that partition's windows ahead of the others: the final flags
 * depended on restarts. Partition 0 is read to its end, the others to half;
 * a second engine claims them all and commits: every shard's watermark must
 * still be the lowest input watermark, and no window may have closed. */
static void test_restart_claims_keep_the_lowest_watermark(void)
{
    ss_hot hot;
    open_store("restart", &hot);
    ss_engine *e = open_engine(&hot);
    for (int p = 0; p < PARTS; p++)
        CHECK_EQ_INT(ss_engine_claim(e, p), SS_OK);
    for (size_t i = 0; i < nlines; i++)
        if (lines[i].part == 0 || i < nlines / 2)
            CHECK_EQ_INT(apply(e, i, 0), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(e, 1), SS_OK);
    ss_engine_free(e);
    const char *lowest = "SELECT count(*) FROM shard_state WHERE watermark != "
                         "(SELECT min(input_watermark) FROM shard_state)";
    const char *finals = "SELECT count(*) FROM kpi_minute_data WHERE final = 1";
    CHECK_EQ_INT(scalar("restart", lowest), 0);
    CHECK(scalar("restart", "SELECT max(input_watermark) - min(input_watermark) FROM shard_state") >
          600000);
    long long nfinal = scalar("restart", finals);

    e = open_engine(&hot);
    for (int p = 0; p < PARTS; p++)
        CHECK_EQ_INT(ss_engine_claim(e, p), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(e, 1), SS_OK);
    ss_engine_free(e);
    ss_hot_close(&hot);
    CHECK_EQ_INT(scalar("restart", lowest), 0);
    CHECK_EQ_INT(scalar("restart", finals), nfinal);
}

/* Regression: an engine that had given a partition up wrote its stored
 * position back in every later commit once a claim of another partition
 * had refreshed it, moving it back behind the records the partition's new
 * owner had committed since (they were read again after the next
 * rebalance, as duplicates). Engine a gives partitions 1 and 2 up, b claims
 * 1 and reads it to its end, a claims 2 again and reads it to its end: the
 * stored position of partition 1 must be b's. */
static void test_released_positions_are_not_written_back(void)
{
    ss_hot ha, hb;
    open_store("released", &ha);
    open_store("released", &hb);
    ss_engine *a = open_engine(&ha);
    for (int p = 0; p < PARTS; p++)
        CHECK_EQ_INT(ss_engine_claim(a, p), SS_OK);
    size_t cut = nlines / 3, n1 = 0;
    for (size_t i = 0; i < cut; i++)
        CHECK_EQ_INT(apply(a, i, 0), SS_OK);
    CHECK_EQ_INT(ss_engine_release(a, 1), SS_OK);
    CHECK_EQ_INT(ss_engine_release(a, 2), SS_OK);
    ss_engine *b = open_engine(&hb);
    CHECK_EQ_INT(ss_engine_claim(b, 1), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(b, 1), SS_OK);
    CHECK_EQ_INT(ss_engine_claim(a, 2), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(a, 1), SS_OK);
    for (size_t i = 0; i < nlines; i++) {
        n1 += lines[i].part == 1;
        if (i >= cut && lines[i].part == 1)
            CHECK_EQ_INT(apply(b, i, 0), SS_OK);
    }
    CHECK_EQ_INT(ss_engine_tick(b, 1), SS_OK);
    finish_pair(a, &ha, b, &hb, cut);
    CHECK_EQ_INT(
        scalar("released", "SELECT position FROM ingest_positions WHERE source = 'part-1'"),
        (long long)n1);
    CHECK_EQ_INT(scalar("released", "SELECT value FROM engine_state WHERE key = 'stored'"),
                 (long long)nlines);
}

/* An engine that still holds a shard another has claimed is fenced: its
 * commit fails and leaves the store as the other left it. */
static void test_fenced(void)
{
    ss_hot ha, hb;
    open_store("fenced", &ha);
    open_store("fenced", &hb);
    ss_engine *a = open_engine(&ha);
    size_t i = 0;
    for (; i < 200; i++)
        CHECK_EQ_INT(apply(a, i, 0), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(a, 1), SS_OK);
    long long stored = scalar("fenced", "SELECT value FROM engine_state WHERE key = 'stored'");
    CHECK_EQ_INT(stored, 200);

    ss_engine *b = open_engine(&hb);
    CHECK_EQ_INT(ss_engine_claim(b, lines[i].part), SS_OK);
    CHECK_EQ_INT(ss_engine_tick(b, 1), SS_OK);
    for (; i < 300; i++)
        CHECK_EQ_INT(
            ss_engine_process(a, &(ss_bus_msg){lines[i].data, lines[i].len, lines[i].len, "part-x",
                                               (int64_t)i, (int64_t)i + 1, lines[i].part}),
            SS_OK);
    CHECK_EQ_INT(ss_engine_tick(a, 1), SS_EFENCED);
    ss_engine_free(a); /* rolls back */
    ss_engine_free(b);
    ss_hot_close(&ha);
    ss_hot_close(&hb);
    CHECK_EQ_INT(scalar("fenced", "SELECT value FROM engine_state WHERE key = 'stored'"), stored);
    CHECK_EQ_INT(scalar("fenced", "SELECT count(*) FROM ingest_positions WHERE source = 'part-x'"),
                 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/ss-shards-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    make_stream(4000);
    run_flat();
    char *want = kpis("flat");
    CHECK(strlen(want) > 1000);
    test_interleaved(want);
    test_partition_after_partition(want);
    test_handover(want);
    test_fenced();
    test_restart_claims_keep_the_lowest_watermark();
    test_released_positions_are_not_written_back();
    free(want);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i].data);
    free(lines);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return check_done();
}

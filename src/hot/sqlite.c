/* Hot store on SQLite: WAL mode so that readers never block the writer,
 * prepared statements, and one transaction per engine batch. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/fsspace.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/thread.h"
#include "common/timeutil.h"
#include "hot/facts_vtab.h"
#include "hot/hot.h"
#include "hot/sqlite_int.h"

extern const char ss_asset_hot_schema_sql[];

/* 2: the engine's state per shard (shard_state); 3: kpi_minute_data keyed by
 * dimension first; 4: facts in blocks (schema.sql). */
#define SCHEMA_VERSION "4"

/* A customer's row is that of their earliest order (ties broken by the
 * row's values), whatever the order in which the orders arrive and the
 * commit boundaries: each transaction writes the earliest order of each of
 * its customers, and the store keeps the earlier row. */
#define CUSTOMER_CONFLICT                                                                          \
    " ON CONFLICT (customer_id) DO UPDATE SET customer_segment = excluded.customer_segment, city " \
    "= excluded.city, country = excluded.country, first_seen = excluded.first_seen WHERE "         \
    "(excluded.first_seen, excluded.customer_segment, excluded.city, excluded.country) < "         \
    "(first_seen, customer_segment, city, country)"

const char *const sq_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_INS_LATE] = "INSERT OR IGNORE INTO late_events VALUES (?1,?2,?3,?4,?5,?6)",
    [S_INS_REJECTED] = "INSERT OR IGNORE INTO rejected_events VALUES (?1,?2,?3,?4,?5,?6,?7)",
    [S_INS_CUSTOMER] = "INSERT INTO customers SELECT customer_id, customer_segment, city, country, "
                       "first_seen FROM ss_customer_rows(?1) WHERE true" CUSTOMER_CONFLICT,
    [S_UPS_PRODUCT] = "INSERT INTO products VALUES (?1,?2,?3,?4) ON CONFLICT (product_id) DO "
                      "UPDATE SET product_name = excluded.product_name, category = "
                      "excluded.category, unit_price = excluded.unit_price",
    [S_INS_CATEGORY] = "INSERT OR IGNORE INTO categories VALUES (?1)",
    [S_INS_COUNTRY] = "INSERT OR IGNORE INTO countries VALUES (?1, NULL, NULL)",
    [S_INS_CITY] = "INSERT OR IGNORE INTO cities VALUES (?1, ?2, NULL, NULL)",
    [S_INS_METHOD] = "INSERT OR IGNORE INTO payment_methods VALUES (?1)",
    [S_UPS_PLACE_COUNTRY] = "INSERT INTO countries VALUES (?1,?2,?3) ON CONFLICT (country) DO "
                            "UPDATE SET country_code = excluded.country_code, region = "
                            "excluded.region",
    [S_UPS_PLACE_CITY] = "INSERT INTO cities VALUES (?1,?2,?3,?4) ON CONFLICT (city) DO UPDATE "
                         "SET lat = excluded.lat, lon = excluded.lon",
    [S_INS_MINUTE] = "INSERT OR IGNORE INTO time_minutes VALUES (?1,?2,?3,?4,?5,?6)",
    [S_UPS_KPI] = "INSERT OR REPLACE INTO kpi_minute_data VALUES "
                  "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
    /* One dimension's rows of a shard whose minutes the shard's watermark
     * has passed since its last commit (sqlite_put_state). */
    [S_FINAL_KPI] = "UPDATE kpi_minute_data SET final = 1 WHERE dimension = ?1 AND minute_start > "
                    "?2 AND minute_start <= ?3 AND shard = ?4 AND final = 0",
    [S_CLAIM_SHARD] = "INSERT INTO shard_state (shard, owner) VALUES (?1, ?2) ON CONFLICT "
                      "(shard) DO UPDATE SET owner = excluded.owner",
    [S_SEL_SHARD] = "SELECT shard, watermark, input_watermark, max_ts, events_in, stored, "
                    "duplicates, rejected, late FROM shard_state WHERE shard = ?1",
    [S_UPD_STATE] = "UPDATE shard_state SET watermark = ?3, input_watermark = ?4, max_ts = ?5, "
                    "events_in = ?6, stored = ?7, duplicates = ?8, rejected = ?9, late = ?10 "
                    "WHERE shard = ?1 AND owner = ?2",
    [S_UPS_POSITION] = "INSERT OR REPLACE INTO ingest_positions VALUES (?1, ?2)",
    [S_SEL_STATE] = "SELECT shard, watermark, input_watermark, max_ts, events_in, stored, "
                    "duplicates, rejected, late FROM shard_state ORDER BY shard",
    [S_SEL_POSITIONS] = "SELECT source, position FROM ingest_positions",
};

/* Checkpoints (copying the WAL into the database file, and its fsync) run on
 * a thread of their own with its own connection, so that the engine's thread
 * only appends to the WAL: in a replay, they were a seventh of the writer's
 * time. The writer wakes it after a commit that leaves CKPT_FRAMES pages or
 * more in the WAL.
 *
 * SQLite starts the WAL over only when a write transaction begins while
 * every frame is checkpointed, which a writer that begins right after each
 * commit hardly ever meets: once the WAL holds WAL_RESTART_FRAMES pages, the
 * next transaction waits for the checkpoint under way to end. */
#define CKPT_FRAMES        512
#define WAL_RESTART_FRAMES 2048

/* Whether the last error of db was a write that found no room. */
static int db_full(sqlite3 *db)
{
    return sqlite3_errcode(db) == SQLITE_FULL ||
           (sqlite3_errcode(db) == SQLITE_IOERR && ss_errno_is_full(sqlite3_system_errno(db)));
}

/* The message of a full disk: where, and how much room is left. */
static void report_full(const char *what, const char *path)
{
    char space[96];
    ss_fs_space(path, space, sizeof space);
    SS_ERROR("hot:sqlite",
             "%s on '%s': the disk is full (%s on its filesystem); nothing committed is lost: "
             "free space there (or move the store), then start again",
             what, path, space);
}

int sq_db_error(hot_sqlite *h, const char *what)
{
    if (db_full(h->db))
        report_full(what, h->path);
    else
        SS_ERROR("hot:sqlite", "%s on '%s': %s", what, h->path, sqlite3_errmsg(h->db));
    int ec = sqlite3_errcode(h->db);
    return ec == SQLITE_BUSY || ec == SQLITE_LOCKED ? SS_AGAIN : SS_EIO;
}

/* Writers of one process take turns. A connection that waits for the write
 * lock (the archiver's, between the engine's transactions, which follow one
 * another at once) says so in last_wait at each retry, and the engine lets
 * it in before it begins its next transaction: SQLite's own wait, a sleep
 * and a retry, would find the lock taken again almost every time. */
#define BUSY_TIMEOUT_MS 10000
#define BUSY_SLEEP_MS   10
#define YIELD_MAX_MS    2000
static _Atomic int64_t last_wait; /* ms, monotonic */

static int on_busy(void *arg, int count)
{
    hot_sqlite *h = arg;
    int64_t now = ss_mono_ms();
    if (count == 0)
        h->busy_since = now;
    if (now - h->busy_since >= BUSY_TIMEOUT_MS)
        return 0;
    atomic_store(&last_wait, now);
    struct timespec ts = {0, (count < BUSY_SLEEP_MS ? count + 1 : BUSY_SLEEP_MS) * 1000000L};
    nanosleep(&ts, NULL);
    return 1;
}

/* Before the engine's transaction: while another connection of the process
 * has waited for the lock within its last sleep, lets it take the lock (for
 * up to YIELD_MAX_MS). */
static void yield_lock(void)
{
    int64_t t0 = ss_mono_ms(), now = t0;
    while (now - atomic_load(&last_wait) <= 2 * BUSY_SLEEP_MS && now - t0 < YIELD_MAX_MS) {
        struct timespec ts = {0, 1000000L};
        nanosleep(&ts, NULL);
        now = ss_mono_ms();
    }
}

int sq_run(hot_sqlite *h, enum stmt s)
{
    sqlite3_stmt *q = h->st[s];
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return sq_db_error(h, sq_sql[s]);
    return SS_OK;
}

static void *checkpoint_main(void *arg)
{
    ss_thread_name("ss-checkpoint");
    checkpointer *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (c->done == c->asked && !c->stop)
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->stop)
            break;
        uint64_t asked = c->asked;
        pthread_mutex_unlock(&c->mu);
        /* PASSIVE never waits for the writer or readers: what a reader still
         * needs is copied by a later run. */
        int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && db_full(c->db))
            report_full("checkpoint", sqlite3_db_filename(c->db, "main"));
        else if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            SS_WARN("hot:sqlite", "checkpoint: %s", sqlite3_errmsg(c->db));
        pthread_mutex_lock(&c->mu);
        c->done = asked;
        pthread_cond_broadcast(&c->done_cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static int on_wal_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    checkpointer *c = arg;
    if (frames >= CKPT_FRAMES) {
        pthread_mutex_lock(&c->mu);
        c->asked++;
        c->restart = frames >= WAL_RESTART_FRAMES;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

/* Before a write transaction: lets a large WAL start over (see above). */
static void checkpointer_settle(checkpointer *c)
{
    if (!c || !c->restart)
        return;
    pthread_mutex_lock(&c->mu);
    while (c->done != c->asked && !c->stop)
        pthread_cond_wait(&c->done_cv, &c->mu);
    c->restart = 0;
    pthread_mutex_unlock(&c->mu);
}

static void checkpointer_free(checkpointer *c)
{
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->done_cv);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void checkpointer_stop(hot_sqlite *h)
{
    checkpointer *c = h->ckpt;
    if (!c)
        return;
    sqlite3_wal_hook(h->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    checkpointer_free(c);
    h->ckpt = NULL;
}

/* Moves checkpoints to a thread of their own; without one (an in-memory
 * store, or no thread), SQLite's own checkpoints on commit stay. */
static void checkpointer_start(hot_sqlite *h)
{
    const char *file = sqlite3_db_filename(h->db, "main");
    if (!file || !*file)
        return;
    checkpointer *c = ss_calloc(1, sizeof *c);
    /* A connection learns that the database is in WAL mode when it first
     * reads it; until then, a checkpoint does nothing. */
    if (sqlite3_open_v2(file, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(c->db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_cond_init(&c->done_cv, NULL);
    if (pthread_create(&c->thread, NULL, checkpoint_main, c) != 0) {
        checkpointer_free(c);
        return;
    }
    h->ckpt = c;
    sqlite3_wal_hook(h->db, on_wal_commit, c); /* replaces wal_autocheckpoint */
}

static void sqlite_close(void *vst)
{
    hot_sqlite *h = vst;
    if (!h)
        return;
    checkpointer_stop(h);
    sq_facts_close(h);
    sq_refs_free(h);
    free(h->cvec);
    free(h->cidx);
    ss_free_table(h->ktab, h->kcap, sizeof *h->ktab);
    ss_buf_free(&h->carena);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(h->st[i]);
    if (h->db) {
        if (h->in_tx)
            sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(h->db);
    }
    free(h->path);
    free(h);
}

/* Process-wide SQLite settings, before the first connection: no allocation
 * statistics, whose mutex costs on every allocation of the write path. */
static void sqlite_setup(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

/* Whether the schema holds an object of that name (and type, unless NULL);
 * -1 with *msg set when it cannot tell. */
static int has_object(sqlite3 *db, const char *name, const char *type, char **msg)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM sqlite_master WHERE name = ?1 AND (?2 IS NULL OR "
                           "type = ?2)",
                           -1, &q, NULL) != SQLITE_OK) {
        *msg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, type, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        *msg = sqlite3_mprintf("%s", sqlite3_errmsg(db));
        return -1;
    }
    return rc == SQLITE_ROW;
}

/* Stores of schema version 1 kept the engine's state as key/value rows in
 * a table engine_state, which is now a view over shard_state: the old table
 * is renamed before the schema runs, and its values become shard 0's. */
static int migrate_v1(sqlite3 *db, char **msg)
{
    int old = has_object(db, "engine_state", "table", msg);
    if (old <= 0)
        return old < 0 ? SQLITE_ERROR : SQLITE_OK;
    return sqlite3_exec(db, "ALTER TABLE engine_state RENAME TO engine_state_v1", NULL, NULL, msg);
}

static int migrate_v1_state(sqlite3 *db, char **msg)
{
    int old = has_object(db, "engine_state_v1", NULL, msg);
    if (old <= 0)
        return old < 0 ? SQLITE_ERROR : SQLITE_OK;
    /* INT64_MIN meant "none". */
    static const char move[] =
        "INSERT INTO shard_state SELECT 0, '', w, w, m, ei, st, du, re, la FROM (SELECT "
        "max(CASE key WHEN 'watermark' THEN nullif(value, -9223372036854775807 - 1) END) AS w, "
        "max(CASE key WHEN 'max_ts' THEN nullif(value, -9223372036854775807 - 1) END) AS m, "
        "coalesce(max(CASE key WHEN 'events_in' THEN value END), 0) AS ei, "
        "coalesce(max(CASE key WHEN 'stored' THEN value END), 0) AS st, "
        "coalesce(max(CASE key WHEN 'duplicates' THEN value END), 0) AS du, "
        "coalesce(max(CASE key WHEN 'rejected' THEN value END), 0) AS re, "
        "coalesce(max(CASE key WHEN 'late' THEN value END), 0) AS la FROM engine_state_v1) "
        "WHERE EXISTS (SELECT 1 FROM engine_state_v1); "
        "DROP TABLE engine_state_v1;";
    return sqlite3_exec(db, move, NULL, NULL, msg);
}

/* Stores of schema version 2 and before keyed kpi_minute_data by minute
 * first: the old table (and its view) make way before the schema runs, which
 * creates the table with its new key, and its rows move into it after. */
static int migrate_v2(hot_sqlite *h, char **msg)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT 1 FROM pragma_table_info('kpi_minute_data') WHERE name = "
                           "'minute_start' AND pk = 1",
                           -1, &q, NULL) != SQLITE_OK) {
        *msg = sqlite3_mprintf("%s", sqlite3_errmsg(h->db));
        return SQLITE_ERROR;
    }
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            return SQLITE_OK;
        *msg = sqlite3_mprintf("%s", sqlite3_errmsg(h->db));
        return SQLITE_ERROR;
    }
    SS_INFO("hot:sqlite", "'%s': rebuilding kpi_minute_data keyed by dimension first, once",
            h->path);
    return sqlite3_exec(h->db,
                        "DROP VIEW IF EXISTS kpi_minute; "
                        "ALTER TABLE kpi_minute_data RENAME TO kpi_minute_data_v2",
                        NULL, NULL, msg);
}

static int migrate_v2_kpis(sqlite3 *db, char **msg)
{
    int old = has_object(db, "kpi_minute_data_v2", NULL, msg);
    if (old <= 0)
        return old < 0 ? SQLITE_ERROR : SQLITE_OK;
    return sqlite3_exec(db,
                        "INSERT INTO kpi_minute_data SELECT * FROM kpi_minute_data_v2; "
                        "DROP TABLE kpi_minute_data_v2;",
                        NULL, NULL, msg);
}

/* Stores of schema version 3 and before kept a row per event in the fact
 * tables: they make way (with the views over them) before the schema runs,
 * and their rows move into blocks after. */
static int migrate_v3(hot_sqlite *h, char **msg)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT 1 FROM sqlite_master WHERE name = 'orders_data' AND type = "
                           "'table' AND sql NOT LIKE 'CREATE VIRTUAL%'",
                           -1, &q, NULL) != SQLITE_OK) {
        *msg = sqlite3_mprintf("%s", sqlite3_errmsg(h->db));
        return SQLITE_ERROR;
    }
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW)
        return rc == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    SS_INFO("hot:sqlite", "'%s': moving the facts into blocks, once", h->path);
    return sqlite3_exec(h->db,
                        "DROP VIEW IF EXISTS orders; DROP VIEW IF EXISTS payments; "
                        "DROP VIEW IF EXISTS cancellations; DROP VIEW IF EXISTS order_state; "
                        "ALTER TABLE orders_data RENAME TO orders_data_v3; "
                        "ALTER TABLE payments_data RENAME TO payments_data_v3; "
                        "ALTER TABLE cancellations_data RENAME TO cancellations_data_v3;",
                        NULL, NULL, msg);
}

static int insert_block(hot_sqlite *h, const ss_block_table *t, ss_block_enc *e, ss_buf *out,
                        char **msg)
{
    ss_block_encode(e, out);
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO %s (min_ts, max_ts, n, data) VALUES (?1,?2,?3,?4)",
             t->blocks);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h->db, sql, -1, &q, NULL) != SQLITE_OK) {
        *msg = sqlite3_mprintf("%s", sqlite3_errmsg(h->db));
        return SQLITE_ERROR;
    }
    sqlite3_bind_int64(q, 1, e->min_ts);
    sqlite3_bind_int64(q, 2, e->max_ts);
    sqlite3_bind_int64(q, 3, (sqlite3_int64)e->n);
    sqlite3_bind_blob(q, 4, out->data, (int)out->len, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        *msg = sqlite3_mprintf("%s", sqlite3_errmsg(h->db));
        return SQLITE_ERROR;
    }
    ss_block_enc_reset(e);
    return SQLITE_OK;
}

static int migrate_v3_facts(hot_sqlite *h, char **msg)
{
    for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
        const ss_block_table *bt = &ss_block_tables[t];
        char old[64], sql[160];
        snprintf(old, sizeof old, "%s_v3", bt->data);
        int has = has_object(h->db, old, "table", msg);
        if (has <= 0) {
            if (has < 0)
                return SQLITE_ERROR;
            continue;
        }
        snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY ts, event_id", old);
        sqlite3_stmt *q;
        if (sqlite3_prepare_v2(h->db, sql, -1, &q, NULL) != SQLITE_OK) {
            *msg = sqlite3_mprintf("%s", sqlite3_errmsg(h->db));
            return SQLITE_ERROR;
        }
        ss_block_enc e;
        ss_buf out;
        ss_block_enc_init(&e, bt);
        ss_buf_init(&out, 1 << 16);
        int rc, out_rc = SQLITE_OK;
        while (out_rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
            ss_bval v[SS_BLOCK_MAXCOL];
            for (int c = 0; c < bt->ncol; c++) {
                const char *s = (const char *)sqlite3_column_text(q, c);
                v[c].s = (ss_str){s, (uint32_t)sqlite3_column_bytes(q, c)};
                v[c].i = sqlite3_column_int64(q, c);
            }
            if (ss_time_parse_iso(v[SS_BCOL_TS].s.p, v[SS_BCOL_TS].s.n, &v[SS_BCOL_TS].i) != 0) {
                *msg = sqlite3_mprintf("%s: a row has the time '%s'", old, v[SS_BCOL_TS].s.p);
                out_rc = SQLITE_ERROR;
                break;
            }
            ss_block_enc_add(&e, v);
            if (e.n == SS_BLOCK_ROWS)
                out_rc = insert_block(h, bt, &e, &out, msg);
        }
        if (out_rc == SQLITE_OK && rc != SQLITE_DONE) {
            *msg = sqlite3_mprintf("%s", sqlite3_errmsg(h->db));
            out_rc = SQLITE_ERROR;
        }
        sqlite3_finalize(q);
        if (out_rc == SQLITE_OK && e.n)
            out_rc = insert_block(h, bt, &e, &out, msg);
        ss_block_enc_free(&e);
        ss_buf_free(&out);
        if (out_rc != SQLITE_OK)
            return out_rc;
        snprintf(sql, sizeof sql, "DROP TABLE %s", old);
        if (sqlite3_exec(h->db, sql, NULL, NULL, msg) != SQLITE_OK)
            return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

static int sqlite_open(const char *target, const ss_hot_open_opts *o, void **out, char *err,
                       size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_setup);
    *out = NULL;
    hot_sqlite *h = ss_calloc(1, sizeof *h);
    h->path = ss_strdup(target);
    sq_facts_init(h);
    ss_buf_init(&h->carena, 4096);
    int ro = o && o->read_only;
    int flags = ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(target, &h->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open hot store '%s': %s", target,
                 h->db ? sqlite3_errmsg(h->db) : "out of memory");
        sqlite_close(h);
        return SS_EIO;
    }
    sqlite3_busy_handler(h->db, on_busy, h);
    ss_hot_facts_register(h->db);
    sq_customers_register(h->db);
    /* A larger lookaside serves the write path's small allocations. */
    sqlite3_db_config(h->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 1024, 2048);
    char *msg = NULL;
    const char *pragmas = ro ? "PRAGMA query_only = 1;"
                             : "PRAGMA page_size = 16384; PRAGMA auto_vacuum = INCREMENTAL; "
                               "PRAGMA journal_mode = WAL; PRAGMA "
                               "synchronous = NORMAL; PRAGMA wal_autocheckpoint = 8192; "
                               "PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;";
    /* Every step of every version has run in this transaction: the store is at
     * this version now (unless a newer one wrote it). */
    static const char set_version[] =
        "INSERT OR IGNORE INTO meta VALUES ('schema_version', '" SCHEMA_VERSION "'); "
        "UPDATE meta SET value = '" SCHEMA_VERSION "' WHERE key = 'schema_version' AND "
        "CAST(value AS INTEGER) < " SCHEMA_VERSION ";";
    if (sqlite3_exec(h->db, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
        (!ro && sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) ||
        (!ro && migrate_v1(h->db, &msg) != SQLITE_OK) ||
        (!ro && migrate_v2(h, &msg) != SQLITE_OK) || (!ro && migrate_v3(h, &msg) != SQLITE_OK) ||
        (!ro && sqlite3_exec(h->db, ss_asset_hot_schema_sql, NULL, NULL, &msg) != SQLITE_OK) ||
        (!ro && migrate_v1_state(h->db, &msg) != SQLITE_OK) ||
        (!ro && migrate_v2_kpis(h->db, &msg) != SQLITE_OK) ||
        (!ro && migrate_v3_facts(h, &msg) != SQLITE_OK) ||
        (!ro && sqlite3_exec(h->db, set_version, NULL, NULL, &msg) != SQLITE_OK) ||
        (!ro && sqlite3_exec(h->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)) {
        snprintf(err, errlen, "cannot set up hot store '%s': %s", target,
                 msg ? msg : sqlite3_errmsg(h->db));
        sqlite3_free(msg);
        sqlite_close(h);
        return SS_EIO;
    }
    if (!ro) {
        for (int i = 0; i < S_COUNT; i++) {
            if (sqlite3_prepare_v3(h->db, sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &h->st[i],
                                   NULL) != SQLITE_OK) {
                snprintf(err, errlen, "cannot prepare statement on hot store '%s': %s (%s)", target,
                         sqlite3_errmsg(h->db), sq_sql[i]);
                sqlite_close(h);
                return SS_EIO;
            }
        }
        checkpointer_start(h);
    }
    *out = h;
    return SS_OK;
}

static int sqlite_begin(void *vst)
{
    hot_sqlite *h = vst;
    checkpointer_settle(h->ckpt);
    yield_lock();
    int rc = sq_run(h, S_BEGIN);
    h->in_tx = rc == SS_OK;
    sq_customers_clear(h);
    if (rc == SS_OK && (rc = sq_facts_begin(h)) != SS_OK) {
        sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
        h->in_tx = 0;
    }
    return rc;
}

static int sqlite_commit(void *vst)
{
    hot_sqlite *h = vst;
    int rc = sq_facts_flush(h);
    rc = rc ? rc : sq_customers_flush(h);
    rc = rc ? rc : sq_run(h, S_COMMIT);
    if (rc == SS_OK) {
        h->in_tx = 0;
        sq_facts_committed(h);
        sq_customers_committed(h);
    }
    return rc;
}

static int sqlite_rollback(void *vst)
{
    hot_sqlite *h = vst;
    h->in_tx = 0;
    sq_facts_rolled_back(h);
    sq_customers_clear(h);
    /* A failed COMMIT (a full disk) may have ended the transaction already. */
    if (sqlite3_get_autocommit(h->db))
        return SS_OK;
    return sq_run(h, S_ROLLBACK);
}

const ss_hot_ops ss_hot_sqlite_ops = {
    .name = "sqlite",
    .scheme = "sqlite:",
    .finals_from_state = 1,
    .open = sqlite_open,
    .close = sqlite_close,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .put_events = sqlite_put_events,
    .has_event = sqlite_has_event,
    .put_late = sqlite_put_late,
    .put_rejected = sqlite_put_rejected,
    .put_order_dims = sqlite_put_order_dims,
    .put_place = sqlite_put_place,
    .put_minute = sqlite_put_minute,
    .put_kpis = sqlite_put_kpis,
    .claim_shard = sqlite_claim_shard,
    .put_state = sqlite_put_state,
    .load_state = sqlite_load_state,
    .read_kpis = sqlite_read_kpis,
    .lookup_order = sqlite_lookup_order,
    .data_size = sqlite_data_size,
    .scan_range = sqlite_scan_range,
    .delete_range = sqlite_delete_range,
    .nth_oldest = sqlite_nth_oldest,
    .archive_keys = sqlite_archive_keys,
    .archive_begin = sqlite_archive_begin,
    .archive_commit = sqlite_archive_commit,
    .archive_forget = sqlite_archive_forget,
    .archive_list = sqlite_archive_list,
    .reclaim = sqlite_reclaim,
    .version = sqlite_version,
    .note_set = sqlite_note_set,
    .note_list = sqlite_note_list,
    .scan_dims = sqlite_scan_dims,
};

/* Hot store on SQLite: WAL mode so that readers never block the writer,
 * prepared statements, and one transaction per engine batch. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "hot/hot.h"

extern const char ss_asset_hot_schema_sql[];

/* 2: the engine's state per shard (shard_state); 3: kpi_minute_data keyed by
 * dimension first (schema.sql). */
#define SCHEMA_VERSION "3"

enum stmt {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_INS_ORDER,
    S_INS_PAYMENT,
    S_INS_CANCEL,
    S_HAS_ORDER,
    S_HAS_PAYMENT,
    S_HAS_CANCEL,
    S_INS_LATE,
    S_INS_REJECTED,
    S_INS_CUSTOMER,
    S_INS_CUSTOMERS,
    S_MAX_ORDER_TS,
    S_UPS_PRODUCT,
    S_INS_CATEGORY,
    S_INS_COUNTRY,
    S_INS_CITY,
    S_INS_METHOD,
    S_UPS_PLACE_COUNTRY,
    S_UPS_PLACE_CITY,
    S_INS_MINUTE,
    S_UPS_KPI,
    S_CLAIM_SHARD,
    S_SEL_SHARD,
    S_UPD_STATE,
    S_UPS_POSITION,
    S_SEL_STATE,
    S_SEL_POSITIONS,
    S_LOOKUP_ORDER,
    S_COUNT
};

/* A customer's row is that of their earliest order (ties broken by the
 * row's values), whatever the order in which the orders arrive and the
 * commit boundaries. The orders of a transaction that are newer than all
 * the store held when it began give their customers in one set-based
 * statement at commit, which costs less than a statement each, and whose
 * range then holds only that transaction's orders; older ones (out of
 * order, or from a partition behind the others) one at a time. */
#define CUSTOMER_CONFLICT                                                                          \
    " ON CONFLICT (customer_id) DO UPDATE SET customer_segment = excluded.customer_segment, city " \
    "= excluded.city, country = excluded.country, first_seen = excluded.first_seen WHERE "         \
    "(excluded.first_seen, excluded.customer_segment, excluded.city, excluded.country) < "         \
    "(first_seen, customer_segment, city, country)"

static const char *const sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_INS_ORDER] = "INSERT OR IGNORE INTO orders_data VALUES "
                    "(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)",
    [S_INS_PAYMENT] =
        "INSERT OR IGNORE INTO payments_data VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)",
    [S_INS_CANCEL] = "INSERT OR IGNORE INTO cancellations_data VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
    [S_HAS_ORDER] = "SELECT 1 FROM orders_data WHERE event_id = ?1",
    [S_HAS_PAYMENT] = "SELECT 1 FROM payments_data WHERE event_id = ?1",
    [S_HAS_CANCEL] = "SELECT 1 FROM cancellations_data WHERE event_id = ?1",
    [S_INS_LATE] = "INSERT OR IGNORE INTO late_events VALUES (?1,?2,?3,?4,?5,?6)",
    [S_INS_REJECTED] = "INSERT OR IGNORE INTO rejected_events VALUES (?1,?2,?3,?4,?5,?6,?7)",
    [S_INS_CUSTOMER] = "INSERT INTO customers VALUES (?1,?2,?3,?4,?5)" CUSTOMER_CONFLICT,
    [S_INS_CUSTOMERS] =
        "INSERT INTO customers SELECT customer_id, customer_segment, city, country, "
        "ts FROM orders_data WHERE ts >= ?1 AND ts <= ?2 AND true" CUSTOMER_CONFLICT,
    [S_MAX_ORDER_TS] = "SELECT max(ts) FROM orders_data",
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
    [S_LOOKUP_ORDER] = "SELECT city, country, category, payment_method FROM orders_data "
                       "WHERE order_id = ?1 ORDER BY ts LIMIT 1",
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
#define CKPT_FRAMES        2048
#define WAL_RESTART_FRAMES 8192

typedef struct checkpointer {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    uint64_t asked, done; /* checkpoints asked for, and the last one done */
    int stop;
    int restart; /* the next transaction waits for the checkpoint (the writer's own) */
} checkpointer;

typedef struct hot_sqlite {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[S_COUNT];
    int in_tx;
    /* Orders newer than cust_after (the newest in the store when the
     * transaction began) whose customers are pending, from cust_from to
     * cust_to. */
    int64_t cust_after, cust_from, cust_to;
    checkpointer *ckpt; /* NULL: SQLite checkpoints on commit */
} hot_sqlite;

static int db_error(hot_sqlite *h, const char *what)
{
    SS_ERROR("hot:sqlite", "%s on '%s': %s", what, h->path, sqlite3_errmsg(h->db));
    int ec = sqlite3_errcode(h->db);
    return ec == SQLITE_BUSY || ec == SQLITE_LOCKED ? SS_AGAIN : SS_EIO;
}

/* Runs a prepared statement that returns no rows. */
static int run(hot_sqlite *h, enum stmt s)
{
    sqlite3_stmt *q = h->st[s];
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return db_error(h, sql[s]);
    return SS_OK;
}

static inline void bind_str(sqlite3_stmt *q, int i, ss_str s)
{
    sqlite3_bind_text(q, i, s.p, (int)s.n, SQLITE_STATIC);
}

static inline void bind_time(sqlite3_stmt *q, int i, int64_t ms, char *buf)
{
    ss_time_format_iso(ms, buf);
    sqlite3_bind_text(q, i, buf, SS_ISO_LEN, SQLITE_STATIC);
}

static void *checkpoint_main(void *arg)
{
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
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
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

static int sqlite_open(const char *target, const ss_hot_open_opts *o, void **out, char *err,
                       size_t errlen)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sqlite_setup);
    *out = NULL;
    hot_sqlite *h = ss_calloc(1, sizeof *h);
    h->path = ss_strdup(target);
    int ro = o && o->read_only;
    int flags = ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (sqlite3_open_v2(target, &h->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open hot store '%s': %s", target,
                 h->db ? sqlite3_errmsg(h->db) : "out of memory");
        sqlite_close(h);
        return SS_EIO;
    }
    sqlite3_busy_timeout(h->db, 10000);
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
        (!ro && migrate_v2(h, &msg) != SQLITE_OK) ||
        (!ro && sqlite3_exec(h->db, ss_asset_hot_schema_sql, NULL, NULL, &msg) != SQLITE_OK) ||
        (!ro && migrate_v1_state(h->db, &msg) != SQLITE_OK) ||
        (!ro && migrate_v2_kpis(h->db, &msg) != SQLITE_OK) ||
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
            if (sqlite3_prepare_v3(h->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, &h->st[i], NULL) !=
                SQLITE_OK) {
                snprintf(err, errlen, "cannot prepare statement on hot store '%s': %s (%s)", target,
                         sqlite3_errmsg(h->db), sql[i]);
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
    int rc = run(h, S_BEGIN);
    h->in_tx = rc == SS_OK;
    h->cust_from = INT64_MAX;
    h->cust_to = INT64_MIN;
    /* Until known, every customer on its own; no orders yet, none so. */
    h->cust_after = INT64_MAX;
    sqlite3_stmt *q = h->st[S_MAX_ORDER_TS];
    if (rc == SS_OK && sqlite3_step(q) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(q, 0);
        if (!t)
            h->cust_after = INT64_MIN;
        else if (ss_time_parse_iso(t, strlen(t), &h->cust_after) != 0)
            h->cust_after = INT64_MAX;
    }
    sqlite3_reset(q);
    return rc;
}

static int flush_customers(hot_sqlite *h)
{
    if (h->cust_from > h->cust_to)
        return SS_OK;
    char a[SS_ISO_LEN], b[SS_ISO_LEN];
    bind_time(h->st[S_INS_CUSTOMERS], 1, h->cust_from, a);
    bind_time(h->st[S_INS_CUSTOMERS], 2, h->cust_to, b);
    h->cust_from = INT64_MAX;
    h->cust_to = INT64_MIN;
    return run(h, S_INS_CUSTOMERS);
}

static int sqlite_commit(void *vst)
{
    hot_sqlite *h = vst;
    int rc = flush_customers(h);
    if (rc)
        return rc;
    rc = run(h, S_COMMIT);
    if (rc == SS_OK)
        h->in_tx = 0;
    return rc;
}

static int sqlite_rollback(void *vst)
{
    hot_sqlite *h = vst;
    h->in_tx = 0;
    return run(h, S_ROLLBACK);
}

static int sqlite_put_events(void *vst, const ss_event *const *evs, const ss_attrib *attrib,
                             size_t n, uint8_t *is_new)
{
    hot_sqlite *h = vst;
    char ts[SS_ISO_LEN];
    for (size_t i = 0; i < n; i++) {
        const ss_event *ev = evs[i];
        sqlite3_stmt *q;
        enum stmt s;
        switch (ev->type) {
        case SS_EV_ORDER: {
            const ss_order *o = &ev->u.order;
            s = S_INS_ORDER;
            q = h->st[s];
            bind_str(q, 1, ev->event_id);
            bind_str(q, 2, ev->order_id);
            bind_time(q, 3, ev->ts, ts);
            bind_str(q, 4, o->customer_id);
            bind_str(q, 5, o->customer_segment);
            bind_str(q, 6, o->product_id);
            bind_str(q, 7, o->product_name);
            bind_str(q, 8, o->category);
            bind_str(q, 9, o->city);
            bind_str(q, 10, o->country);
            sqlite3_bind_int(q, 11, o->quantity);
            sqlite3_bind_int64(q, 12, o->unit_price);
            sqlite3_bind_int64(q, 13, o->amount);
            sqlite3_bind_int64(q, 14, o->discount);
            sqlite3_bind_int64(q, 15, o->tax);
            sqlite3_bind_int64(q, 16, o->shipping);
            sqlite3_bind_int64(q, 17, o->total_price);
            bind_str(q, 18, o->currency);
            bind_str(q, 19, o->payment_method);
            break;
        }
        case SS_EV_PAYMENT: {
            const ss_payment *p = &ev->u.payment;
            s = S_INS_PAYMENT;
            q = h->st[s];
            bind_str(q, 1, ev->event_id);
            bind_str(q, 2, ev->order_id);
            bind_time(q, 3, ev->ts, ts);
            bind_str(q, 4, p->payment_method);
            sqlite3_bind_int64(q, 5, p->amount);
            sqlite3_bind_text(q, 6, p->success ? "success" : "failed", -1, SQLITE_STATIC);
            if (p->success)
                sqlite3_bind_null(q, 7);
            else
                bind_str(q, 7, p->failure_reason);
            sqlite3_bind_int(q, 8, p->attempt);
            bind_str(q, 9, attrib[i].city);
            bind_str(q, 10, attrib[i].country);
            bind_str(q, 11, attrib[i].category);
            break;
        }
        default: {
            const ss_cancellation *c = &ev->u.cancel;
            s = S_INS_CANCEL;
            q = h->st[s];
            bind_str(q, 1, ev->event_id);
            bind_str(q, 2, ev->order_id);
            bind_time(q, 3, ev->ts, ts);
            bind_str(q, 4, c->reason);
            sqlite3_bind_int64(q, 5, c->refund);
            bind_str(q, 6, attrib[i].city);
            bind_str(q, 7, attrib[i].country);
            bind_str(q, 8, attrib[i].category);
            bind_str(q, 9, attrib[i].payment_method);
            break;
        }
        }
        int rc = run(h, s);
        if (rc)
            return rc;
        is_new[i] = sqlite3_changes(h->db) > 0;
    }
    return SS_OK;
}

static int exists(hot_sqlite *h, enum stmt s, ss_str id, int *found)
{
    sqlite3_stmt *q = h->st[s];
    bind_str(q, 1, id);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(h, sql[s]);
    *found = rc == SQLITE_ROW;
    return SS_OK;
}

static int sqlite_has_event(void *vst, ss_str event_id, int *found)
{
    hot_sqlite *h = vst;
    static const enum stmt tables[] = {S_HAS_ORDER, S_HAS_PAYMENT, S_HAS_CANCEL};
    *found = 0;
    for (size_t i = 0; i < 3 && !*found; i++) {
        int rc = exists(h, tables[i], event_id, found);
        if (rc)
            return rc;
    }
    return SS_OK;
}

static int sqlite_put_late(void *vst, const ss_event *ev, const char *raw, size_t len,
                           int64_t watermark, int *is_new)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_INS_LATE];
    char ts[SS_ISO_LEN], wm[SS_ISO_LEN], now[SS_ISO_LEN];
    bind_str(q, 1, ev->event_id);
    sqlite3_bind_text(q, 2, ss_event_type_name(ev->type), -1, SQLITE_STATIC);
    bind_time(q, 3, ev->ts, ts);
    bind_time(q, 4, watermark, wm);
    bind_time(q, 5, ss_now_ms(), now);
    sqlite3_bind_text(q, 6, raw, (int)len, SQLITE_STATIC);
    int rc = run(h, S_INS_LATE);
    *is_new = rc == SS_OK && sqlite3_changes(h->db) > 0;
    return rc;
}

static int sqlite_put_rejected(void *vst, const char *raw, size_t len, size_t raw_bytes,
                               const char *reason, const char *source, int64_t position)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_INS_REJECTED];
    char id[33], now[SS_ISO_LEN];
    ss_hot_raw_id(raw, len, raw_bytes, id);
    sqlite3_bind_text(q, 1, id, 32, SQLITE_STATIC);
    bind_time(q, 2, ss_now_ms(), now);
    sqlite3_bind_text(q, 3, source, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, position);
    sqlite3_bind_text(q, 5, reason, -1, SQLITE_STATIC);
    sqlite3_bind_blob(q, 6, raw, (int)len, SQLITE_STATIC);
    sqlite3_bind_int64(q, 7, (sqlite3_int64)raw_bytes);
    return run(h, S_INS_REJECTED);
}

static int sqlite_put_order_dims(void *vst, const ss_event *ev, unsigned what)
{
    hot_sqlite *h = vst;
    const ss_order *o = &ev->u.order;
    int rc = SS_OK;
    if ((what & SS_DIMS_CUSTOMER) && ev->ts > h->cust_after) {
        if (ev->ts < h->cust_from)
            h->cust_from = ev->ts;
        if (ev->ts > h->cust_to)
            h->cust_to = ev->ts;
    } else if (what & SS_DIMS_CUSTOMER) {
        char ts[SS_ISO_LEN];
        sqlite3_stmt *q = h->st[S_INS_CUSTOMER];
        bind_str(q, 1, o->customer_id);
        bind_str(q, 2, o->customer_segment);
        bind_str(q, 3, o->city);
        bind_str(q, 4, o->country);
        bind_time(q, 5, ev->ts, ts);
        rc = run(h, S_INS_CUSTOMER);
    }
    if (rc == SS_OK && (what & SS_DIMS_PRODUCT)) {
        sqlite3_stmt *q = h->st[S_UPS_PRODUCT];
        bind_str(q, 1, o->product_id);
        bind_str(q, 2, o->product_name);
        bind_str(q, 3, o->category);
        sqlite3_bind_double(q, 4, (double)o->unit_price / 100.0);
        rc = run(h, S_UPS_PRODUCT);
    }
    if (rc == SS_OK && (what & SS_DIMS_PLACES)) {
        bind_str(h->st[S_INS_CATEGORY], 1, o->category);
        rc = run(h, S_INS_CATEGORY);
        bind_str(h->st[S_INS_COUNTRY], 1, o->country);
        rc = rc ? rc : run(h, S_INS_COUNTRY);
        bind_str(h->st[S_INS_CITY], 1, o->city);
        bind_str(h->st[S_INS_CITY], 2, o->country);
        rc = rc ? rc : run(h, S_INS_CITY);
        bind_str(h->st[S_INS_METHOD], 1, o->payment_method);
        rc = rc ? rc : run(h, S_INS_METHOD);
    }
    return rc;
}

static int sqlite_put_place(void *vst, const char *city, const char *country,
                            const char *country_code, const char *region, double lat, double lon)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_UPS_PLACE_COUNTRY];
    sqlite3_bind_text(q, 1, country, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, country_code, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, region, -1, SQLITE_STATIC);
    int rc = run(h, S_UPS_PLACE_COUNTRY);
    q = h->st[S_UPS_PLACE_CITY];
    sqlite3_bind_text(q, 1, city, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, country, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 3, lat);
    sqlite3_bind_double(q, 4, lon);
    return rc ? rc : run(h, S_UPS_PLACE_CITY);
}

static int sqlite_put_minute(void *vst, int64_t minute)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_INS_MINUTE];
    char ts[SS_ISO_LEN];
    ss_hot_minute m;
    ss_hot_minute_of(minute, &m);
    bind_time(q, 1, minute, ts);
    sqlite3_bind_text(q, 2, ts, 10, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, m.hour);
    sqlite3_bind_int(q, 4, m.minute);
    sqlite3_bind_int(q, 5, m.weekday);
    sqlite3_bind_text(q, 6, m.weekday_name, -1, SQLITE_STATIC);
    return run(h, S_INS_MINUTE);
}

static int sqlite_put_kpis(void *vst, const ss_kpi_row *rows, size_t n)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_UPS_KPI];
    char ts[SS_ISO_LEN];
    for (size_t i = 0; i < n; i++) {
        const ss_kpi_row *r = &rows[i];
        bind_time(q, 1, r->minute, ts);
        sqlite3_bind_text(q, 2, ss_dim_name(r->dim), -1, SQLITE_STATIC);
        bind_str(q, 3, r->value);
        sqlite3_bind_int(q, 4, r->shard);
        sqlite3_bind_int64(q, 5, r->k.orders);
        sqlite3_bind_int64(q, 6, r->k.units);
        sqlite3_bind_int64(q, 7, r->k.gross_cents);
        sqlite3_bind_int64(q, 8, r->k.paid_cents);
        sqlite3_bind_int64(q, 9, r->k.attempts);
        sqlite3_bind_int64(q, 10, r->k.failed);
        sqlite3_bind_int64(q, 11, r->k.cancellations);
        sqlite3_bind_int64(q, 12, r->k.cancelled_cents);
        sqlite3_bind_int(q, 13, r->final);
        int rc = run(h, S_UPS_KPI);
        if (rc)
            return rc;
    }
    return SS_OK;
}

static void bind_opt(sqlite3_stmt *q, int i, int64_t v)
{
    if (v == INT64_MIN)
        sqlite3_bind_null(q, i);
    else
        sqlite3_bind_int64(q, i, v);
}

static int64_t column_opt(sqlite3_stmt *q, int i)
{
    return sqlite3_column_type(q, i) == SQLITE_NULL ? INT64_MIN : sqlite3_column_int64(q, i);
}

static void read_state(sqlite3_stmt *q, ss_hot_state *s)
{
    s->shard = sqlite3_column_int(q, 0);
    s->watermark = column_opt(q, 1);
    s->input_watermark = column_opt(q, 2);
    s->max_ts = column_opt(q, 3);
    s->events_in = (uint64_t)sqlite3_column_int64(q, 4);
    s->stored = (uint64_t)sqlite3_column_int64(q, 5);
    s->duplicates = (uint64_t)sqlite3_column_int64(q, 6);
    s->rejected = (uint64_t)sqlite3_column_int64(q, 7);
    s->late = (uint64_t)sqlite3_column_int64(q, 8);
}

static int sqlite_claim_shard(void *vst, int shard, const char *owner, ss_hot_state *s)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_CLAIM_SHARD];
    sqlite3_bind_int(q, 1, shard);
    sqlite3_bind_text(q, 2, owner, -1, SQLITE_STATIC);
    int rc = run(h, S_CLAIM_SHARD);
    if (rc)
        return rc;
    q = h->st[S_SEL_SHARD];
    sqlite3_bind_int(q, 1, shard);
    rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        read_state(q, s);
    sqlite3_reset(q);
    return rc == SQLITE_ROW ? SS_OK : db_error(h, "reading a shard's state");
}

static int sqlite_put_state(void *vst, const ss_hot_state *s, size_t n, const char *owner,
                            const ss_position *pos, size_t npos)
{
    hot_sqlite *h = vst;
    int rc = SS_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        sqlite3_stmt *q = h->st[S_UPD_STATE];
        sqlite3_bind_int(q, 1, s[i].shard);
        sqlite3_bind_text(q, 2, owner, -1, SQLITE_STATIC);
        bind_opt(q, 3, s[i].watermark);
        bind_opt(q, 4, s[i].input_watermark);
        bind_opt(q, 5, s[i].max_ts);
        sqlite3_bind_int64(q, 6, (int64_t)s[i].events_in);
        sqlite3_bind_int64(q, 7, (int64_t)s[i].stored);
        sqlite3_bind_int64(q, 8, (int64_t)s[i].duplicates);
        sqlite3_bind_int64(q, 9, (int64_t)s[i].rejected);
        sqlite3_bind_int64(q, 10, (int64_t)s[i].late);
        rc = run(h, S_UPD_STATE);
        /* No row: another owner has claimed the shard since this one did. */
        if (rc == SS_OK && sqlite3_changes(h->db) == 0)
            rc = SS_EFENCED;
    }
    for (size_t i = 0; i < npos && !rc; i++) {
        sqlite3_stmt *q = h->st[S_UPS_POSITION];
        sqlite3_bind_text(q, 1, pos[i].source, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, pos[i].offset);
        rc = run(h, S_UPS_POSITION);
    }
    return rc;
}

static int sqlite_load_state(void *vst, void (*state_cb)(void *ctx, const ss_hot_state *s),
                             void (*pos_cb)(void *ctx, const char *source, int64_t offset),
                             void *ctx)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_SEL_STATE];
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        ss_hot_state s;
        read_state(q, &s);
        if (state_cb)
            state_cb(ctx, &s);
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE)
        return db_error(h, "reading engine state");
    q = h->st[S_SEL_POSITIONS];
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        if (pos_cb)
            pos_cb(ctx, (const char *)sqlite3_column_text(q, 0), sqlite3_column_int64(q, 1));
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? SS_OK : db_error(h, "reading input positions");
}

static int sqlite_read_kpis(void *vst, int64_t from, int64_t to, int dim, int open_only,
                            ss_kpi_cb cb, void *ctx)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q;
    /* One text per case: "(?3 IS NULL OR dimension = ?3)" would keep SQLite
     * from seeking to the dimension, the first column of the key. */
#define KPI_READ(dim_cond)                                                                         \
    "SELECT minute_start, dimension, dimension_value, shard, orders, units, "                      \
    "gross_revenue_cents, paid_revenue_cents, payment_attempts, failed_payments, cancellations, "  \
    "cancelled_revenue_cents, final FROM kpi_minute_data WHERE " dim_cond "minute_start >= ?1 "    \
    "AND minute_start < ?2 AND (?4 = 0 OR final = 0) ORDER BY minute_start"
    const char *text = dim >= 0 ? KPI_READ("dimension = ?3 AND ") : KPI_READ("");
#undef KPI_READ
    if (sqlite3_prepare_v2(h->db, text, -1, &q, NULL) != SQLITE_OK)
        return db_error(h, "preparing a KPI read");
    char a[SS_ISO_LEN], b[SS_ISO_LEN];
    bind_time(q, 1, from, a);
    bind_time(q, 2, to, b);
    if (dim >= 0)
        sqlite3_bind_text(q, 3, ss_dim_name(dim), -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, open_only);
    int rc, out = SS_OK;
    while (out == SS_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        ss_kpi_row r = {0};
        const char *m = (const char *)sqlite3_column_text(q, 0);
        if (ss_time_parse_iso(m, strlen(m), &r.minute))
            continue;
        r.dim = ss_dim_parse((const char *)sqlite3_column_text(q, 1),
                             (size_t)sqlite3_column_bytes(q, 1));
        r.value.p = (const char *)sqlite3_column_text(q, 2);
        r.value.n = (uint32_t)sqlite3_column_bytes(q, 2);
        r.shard = sqlite3_column_int(q, 3);
        r.k.orders = sqlite3_column_int64(q, 4);
        r.k.units = sqlite3_column_int64(q, 5);
        r.k.gross_cents = sqlite3_column_int64(q, 6);
        r.k.paid_cents = sqlite3_column_int64(q, 7);
        r.k.attempts = sqlite3_column_int64(q, 8);
        r.k.failed = sqlite3_column_int64(q, 9);
        r.k.cancellations = sqlite3_column_int64(q, 10);
        r.k.cancelled_cents = sqlite3_column_int64(q, 11);
        r.final = sqlite3_column_int(q, 12);
        if (r.dim >= 0)
            out = cb(ctx, &r);
    }
    if (out == SS_OK && rc != SQLITE_DONE)
        out = db_error(h, "reading KPIs");
    sqlite3_finalize(q);
    return out;
}

static int sqlite_lookup_order(void *vst, ss_str order_id, ss_attrib *out, char *buf, size_t cap,
                               int *found)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q = h->st[S_LOOKUP_ORDER];
    bind_str(q, 1, order_id);
    int rc = sqlite3_step(q);
    *found = 0;
    if (rc == SQLITE_ROW) {
        ss_str *f[4] = {&out->city, &out->country, &out->category, &out->payment_method};
        size_t used = 0;
        *found = 1;
        for (int i = 0; i < 4; i++) {
            size_t n = (size_t)sqlite3_column_bytes(q, i);
            if (used + n > cap) {
                *found = 0;
                break;
            }
            memcpy(buf + used, sqlite3_column_text(q, i), n);
            *f[i] = (ss_str){buf + used, (uint32_t)n};
            used += n;
        }
    }
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(h, "looking up an order");
    return SS_OK;
}

static int sqlite_data_size(void *vst, int64_t *bytes)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *q;
    /* Pages in use: the file size less the free list, which SQLite reuses
     * before it grows the file. */
    if (sqlite3_prepare_v2(h->db,
                           "SELECT (SELECT page_count FROM pragma_page_count) - (SELECT "
                           "freelist_count FROM pragma_freelist_count), (SELECT page_size FROM "
                           "pragma_page_size)",
                           -1, &q, NULL) != SQLITE_OK)
        return db_error(h, "measuring the store");
    int rc = sqlite3_step(q);
    *bytes = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) * sqlite3_column_int64(q, 1) : 0;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? SS_OK : db_error(h, "measuring the store");
}

static const char *data_table(const char *table)
{
    if (!strcmp(table, "orders"))
        return "orders_data";
    if (!strcmp(table, "payments"))
        return "payments_data";
    if (!strcmp(table, "cancellations"))
        return "cancellations_data";
    return NULL;
}

/* Prepares "<head> FROM <table> WHERE ts in [from, to)<tail>" over a fact
 * table; a and b hold the bound times. */
static int prepare_range(hot_sqlite *h, const char *head, const char *tail, const char *table,
                         int64_t from, int64_t to, char *a, char *b, sqlite3_stmt **st)
{
    const char *t = data_table(table);
    if (!t)
        return SS_EINVAL;
    char q[160];
    snprintf(q, sizeof q, "%s FROM %s WHERE ts >= ?1 AND ts < ?2%s", head, t, tail);
    if (sqlite3_prepare_v2(h->db, q, -1, st, NULL) != SQLITE_OK)
        return db_error(h, "preparing a range statement");
    bind_time(*st, 1, from, a);
    bind_time(*st, 2, to, b);
    return SS_OK;
}

/* Streams a statement's rows as JSON lines in the cold layout: its columns,
 * money formatted from integer cents with exactly two decimals, NULLs left
 * out; ts from column ts_col (-1: none, 0). */
static int emit_rows(hot_sqlite *h, sqlite3_stmt *st, const char *table, int ts_col, ss_scan_cb cb,
                     void *ctx)
{
    int ncol = sqlite3_column_count(st), rc, out = SS_OK;
    ss_buf line;
    ss_buf_init(&line, 1024);
    while (out == SS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        ss_hot_line_begin(&line);
        for (int i = 0; i < ncol; i++) {
            int type = sqlite3_column_type(st, i);
            const char *name = sqlite3_column_name(st, i);
            if (type == SQLITE_INTEGER)
                ss_hot_line_int(&line, name, sqlite3_column_int64(st, i));
            else if (type == SQLITE_FLOAT)
                ss_hot_line_real(&line, name, sqlite3_column_double(st, i));
            else if (type != SQLITE_NULL)
                ss_hot_line_text(&line, name, (const char *)sqlite3_column_text(st, i),
                                 (size_t)sqlite3_column_bytes(st, i));
        }
        ss_hot_line_end(&line);
        int64_t ts = 0;
        if (ts_col >= 0)
            ss_time_parse_iso((const char *)sqlite3_column_text(st, ts_col),
                              (size_t)sqlite3_column_bytes(st, ts_col), &ts);
        out = cb(ctx, table, ts, line.data, line.len);
    }
    if (out == SS_OK && rc != SQLITE_DONE)
        out = db_error(h, "scanning rows for the cold store");
    ss_buf_free(&line);
    return out;
}

static int sqlite_scan_range(void *vst, const char *table, int64_t from, int64_t to, ss_scan_cb cb,
                             void *ctx)
{
    hot_sqlite *h = vst;
    char a[SS_ISO_LEN], b[SS_ISO_LEN];
    sqlite3_stmt *st;
    int rc = prepare_range(h, "SELECT *", " ORDER BY ts", table, from, to, a, b, &st);
    if (rc)
        return rc;
    int ts_col = -1;
    for (int i = 0; i < sqlite3_column_count(st); i++)
        if (!strcmp(sqlite3_column_name(st, i), "ts"))
            ts_col = i;
    rc = emit_rows(h, st, table, ts_col, cb, ctx);
    sqlite3_finalize(st);
    return rc;
}

/* The values of a column over the three fact tables' rows with ts < ?1. */
#define FACT_REFS(col)                                                                             \
    "(SELECT " col " FROM orders_data WHERE ts < ?1 UNION SELECT " col                             \
    " FROM payments_data WHERE ts < ?1 UNION SELECT " col                                          \
    " FROM cancellations_data WHERE ts < ?1)"

/* Each dimension table's rows that the facts before a cutoff reference, in
 * key order; in the order of ss_hot_dim_tables. */
static const char *const dim_queries[SS_HOT_NDIM_TABLES] = {
    "SELECT * FROM customers WHERE customer_id IN "
    "(SELECT customer_id FROM orders_data WHERE ts < ?1) ORDER BY customer_id",
    "SELECT product_id, product_name, category, "
    "CAST(round(unit_price * 100) AS INTEGER) AS unit_price_cents FROM products "
    "WHERE product_id IN (SELECT product_id FROM orders_data WHERE ts < ?1) ORDER BY product_id",
    "SELECT * FROM categories WHERE category IN " FACT_REFS("category") " ORDER BY category",
    "SELECT * FROM countries WHERE country IN " FACT_REFS("country") " ORDER BY country",
    "SELECT * FROM cities WHERE city IN " FACT_REFS("city") " ORDER BY city",
    "SELECT * FROM payment_methods WHERE payment_method IN " FACT_REFS(
        "payment_method") " ORDER BY payment_method",
    "SELECT * FROM time_minutes WHERE minute_start IN " FACT_REFS(
        "substr(ts, 1, 17) || '00.000Z'") " ORDER BY minute_start",
};

static int sqlite_scan_dims(void *vst, const char *table, int64_t cutoff, ss_scan_cb cb, void *ctx)
{
    hot_sqlite *h = vst;
    for (int t = 0; t < SS_HOT_NDIM_TABLES; t++) {
        if (strcmp(table, ss_hot_dim_tables[t]) != 0)
            continue;
        sqlite3_stmt *st;
        char c[SS_ISO_LEN];
        if (sqlite3_prepare_v2(h->db, dim_queries[t], -1, &st, NULL) != SQLITE_OK)
            return db_error(h, "preparing a dimension snapshot");
        bind_time(st, 1, cutoff, c);
        int rc = emit_rows(h, st, table, -1, cb, ctx);
        sqlite3_finalize(st);
        return rc;
    }
    return SS_EINVAL;
}

static int sqlite_delete_range(void *vst, const char *table, int64_t from, int64_t to,
                               int64_t *deleted)
{
    hot_sqlite *h = vst;
    char a[SS_ISO_LEN], b[SS_ISO_LEN];
    sqlite3_stmt *st;
    int rc = prepare_range(h, "DELETE", "", table, from, to, a, b, &st);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    *deleted = sqlite3_changes64(h->db);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SS_OK : db_error(h, "deleting a range");
}

/* Runs a one-off statement with text parameters; NULL ends the list. */
static int exec_args(hot_sqlite *h, const char *text, const char *const *args, int64_t *changes)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, text, -1, &st, NULL) != SQLITE_OK)
        return db_error(h, text);
    for (int i = 0; args && args[i]; i++)
        sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (changes)
        *changes = sqlite3_changes64(h->db);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SS_OK : db_error(h, text);
}

static int sqlite_nth_oldest(void *vst, int64_t n, int64_t *ts, int64_t *total)
{
    hot_sqlite *h = vst;
    *ts = INT64_MIN;
    *total = 0;
    sqlite3_stmt *st;
    /* Each table is scanned in its clustered ts order and SQLite merges them. */
    const char *text = "SELECT ts FROM (SELECT ts FROM orders_data UNION ALL SELECT ts FROM "
                       "payments_data UNION ALL SELECT ts FROM cancellations_data) ORDER BY ts "
                       "LIMIT 1 OFFSET ?1";
    if (sqlite3_prepare_v2(h->db, text, -1, &st, NULL) != SQLITE_OK)
        return db_error(h, "finding the oldest events");
    sqlite3_bind_int64(st, 1, n);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ss_time_parse_iso((const char *)sqlite3_column_text(st, 0),
                          (size_t)sqlite3_column_bytes(st, 0), ts);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_error(h, "finding the oldest events");
    if (sqlite3_prepare_v2(h->db,
                           "SELECT (SELECT count(*) FROM orders_data) + (SELECT count(*) FROM "
                           "payments_data) + (SELECT count(*) FROM cancellations_data)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(h, "counting events");
    rc = sqlite3_step(st);
    *total = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SS_OK : db_error(h, "counting events");
}

static int sqlite_archive_keys(void *vst, int64_t cutoff, int (*ev)(void *ctx, ss_str event_id),
                               int (*order)(void *ctx, ss_str order_id, const ss_attrib *at),
                               void *ctx)
{
    hot_sqlite *h = vst;
    static const char *const q[] = {
        "SELECT event_id FROM orders_data WHERE ts < ?1",
        "SELECT event_id FROM payments_data WHERE ts < ?1",
        "SELECT event_id FROM cancellations_data WHERE ts < ?1",
        "SELECT order_id, city, country, category, payment_method FROM orders_data WHERE ts < ?1",
    };
    char c[SS_ISO_LEN];
    int out = SS_OK;
    for (size_t i = 0; i < sizeof q / sizeof q[0] && out == SS_OK; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(h->db, q[i], -1, &st, NULL) != SQLITE_OK)
            return db_error(h, "listing archived keys");
        bind_time(st, 1, cutoff, c);
        int rc;
        while (out == SS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
            ss_str col[5];
            for (int k = 0; k < sqlite3_column_count(st); k++)
                col[k] = (ss_str){(const char *)sqlite3_column_text(st, k),
                                  (uint32_t)sqlite3_column_bytes(st, k)};
            if (i < 3) {
                out = ev(ctx, col[0]);
            } else {
                ss_attrib at = {col[1], col[2], col[3], col[4]};
                out = order(ctx, col[0], &at);
            }
        }
        if (out == SS_OK && rc != SQLITE_DONE)
            out = db_error(h, "listing archived keys");
        sqlite3_finalize(st);
    }
    return out;
}

static int sqlite_archive_begin(void *vst, const char *id, int64_t cutoff, const char *created_at)
{
    char c[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(cutoff, c);
    const char *args[] = {id, c, created_at, NULL};
    return exec_args(vst,
                     "INSERT INTO archives (archive_id, state, cutoff, created_at) VALUES "
                     "(?1, 'writing', ?2, ?3)",
                     args, NULL);
}

static int sqlite_archive_commit(void *vst, const char *id, int64_t cutoff, const char *manifest)
{
    hot_sqlite *h = vst;
    char c[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(cutoff, c);
    const char *del[] = {c, NULL};
    const char *upd[] = {manifest, id, NULL};
    int rc = exec_args(h, "BEGIN IMMEDIATE", NULL, NULL);
    if (rc)
        return rc;
    rc = exec_args(h, "DELETE FROM orders_data WHERE ts < ?1", del, NULL);
    rc = rc ? rc : exec_args(h, "DELETE FROM payments_data WHERE ts < ?1", del, NULL);
    rc = rc ? rc : exec_args(h, "DELETE FROM cancellations_data WHERE ts < ?1", del, NULL);
    rc = rc ? rc
            : exec_args(h,
                        "UPDATE archives SET state = 'committed', manifest = ?1 WHERE "
                        "archive_id = ?2",
                        upd, NULL);
    rc = rc ? rc : exec_args(h, "COMMIT", NULL, NULL);
    if (rc)
        sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int sqlite_archive_forget(void *vst, const char *id)
{
    const char *args[] = {id, NULL};
    return exec_args(vst, "DELETE FROM archives WHERE archive_id = ?1 AND state <> 'committed'",
                     args, NULL);
}

static int sqlite_archive_list(void *vst,
                               int (*cb)(void *ctx, const char *id, const char *state,
                                         int64_t cutoff, const char *created_at,
                                         const char *manifest),
                               void *ctx)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db,
                           "SELECT archive_id, state, cutoff, created_at, manifest FROM archives "
                           "ORDER BY archive_id",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(h, "listing archives");
    int rc, out = SS_OK;
    while (out == SS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t cutoff = 0;
        ss_time_parse_iso((const char *)sqlite3_column_text(st, 2),
                          (size_t)sqlite3_column_bytes(st, 2), &cutoff);
        out =
            cb(ctx, (const char *)sqlite3_column_text(st, 0),
               (const char *)sqlite3_column_text(st, 1), cutoff,
               (const char *)sqlite3_column_text(st, 3), (const char *)sqlite3_column_text(st, 4));
    }
    if (out == SS_OK && rc != SQLITE_DONE)
        out = db_error(h, "listing archives");
    sqlite3_finalize(st);
    return out;
}

static int sqlite_reclaim(void *vst)
{
    hot_sqlite *h = vst;
    /* Stores created with auto_vacuum = INCREMENTAL hand free pages back to
     * the file system; in others the free pages are reused by new data. */
    return sqlite3_exec(h->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL) == SQLITE_OK
               ? SS_OK
               : db_error(h, "giving space back");
}

static int sqlite_version(void *vst, uint64_t *v)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return db_error(h, "reading the data version");
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SS_OK : db_error(h, "reading the data version");
}

static int sqlite_note_set(void *vst, const char *key, const char *value)
{
    const char *args[] = {key, value, NULL};
    return exec_args(vst, "INSERT OR REPLACE INTO lifecycle_notes VALUES (?1, ?2)", args, NULL);
}

static int sqlite_note_list(void *vst, int (*cb)(void *ctx, const char *key, const char *value),
                            void *ctx)
{
    hot_sqlite *h = vst;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(h->db, "SELECT key, value FROM lifecycle_notes ORDER BY key", -1, &st,
                           NULL) != SQLITE_OK)
        return db_error(h, "reading lifecycle notes");
    int rc, out = SS_OK;
    while (out == SS_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        out = cb(ctx, (const char *)sqlite3_column_text(st, 0),
                 (const char *)sqlite3_column_text(st, 1));
    if (out == SS_OK && rc != SQLITE_DONE)
        out = db_error(h, "reading lifecycle notes");
    sqlite3_finalize(st);
    return out;
}

const ss_hot_ops ss_hot_sqlite_ops = {
    .name = "sqlite",
    .scheme = "sqlite:",
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

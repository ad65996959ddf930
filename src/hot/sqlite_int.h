/* Internals of the SQLite hot store, shared by its files: src/hot/sqlite.c
 * (statements, opening and migrations, the checkpointer, transactions, the
 * ops table), src/hot/sqlite_write.c (writes and the engine's lookups) and
 * src/hot/sqlite_archive.c (the lifecycle). */
#ifndef SS_HOT_SQLITE_INT_H
#define SS_HOT_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"
#include "common/strset.h"
#include "common/timeutil.h"
#include "hot/block.h"
#include "hot/hot.h"

enum stmt {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_INS_LATE,
    S_INS_REJECTED,
    S_INS_CUSTOMER,
    S_UPS_PRODUCT,
    S_INS_CATEGORY,
    S_INS_COUNTRY,
    S_INS_CITY,
    S_INS_METHOD,
    S_UPS_PLACE_COUNTRY,
    S_UPS_PLACE_CITY,
    S_INS_MINUTE,
    S_UPS_KPI,
    S_FINAL_KPI,
    S_CLAIM_SHARD,
    S_SEL_SHARD,
    S_UPD_STATE,
    S_UPS_POSITION,
    S_SEL_STATE,
    S_SEL_POSITIONS,
    S_COUNT
};

typedef struct checkpointer {
    sqlite3 *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    uint64_t asked, done; /* checkpoints asked for, and the last one done */
    int stop;
    int restart; /* the next transaction waits for the checkpoint (the writer's own) */
} checkpointer;

/* The block of a fact table being filled (sqlite_facts.c). */
typedef struct sq_tail {
    ss_block_enc enc;
    int64_t id; /* its row in the blocks table; 0 before the first write */
    /* At the start of the transaction: rows, arena bytes, id; whether the
     * transaction filled a block and started another. */
    size_t n_tx, arena_tx;
    int64_t id_tx;
    int sealed_tx;
} sq_tail;

typedef struct sq_ohash {
    uint64_t h;
    uint32_t h2;
} sq_ohash;

/* The writer's memory of the stored facts (sqlite_facts.c). */
typedef struct sq_facts {
    int ready;
    sq_tail tail[SS_BLOCK_NTABLES];
    ss_buf out;                       /* an encoded block */
    int64_t loaded[SS_BLOCK_NTABLES]; /* blocks read up to this id */
    uint64_t version;                 /* PRAGMA data_version last seen */
    /* Recent ids: stored events with ts >= horizon. */
    struct rid *rtab;
    size_t rcap, rn;
    ss_buf rarena;
    uint64_t txn; /* the writer's transactions, from 1 */
    int64_t horizon, next_horizon;
    /* The order map and the dimension values it codes. */
    struct oent *otab;
    size_t ocap, on;
    uint32_t omin;  /* orders before this minute have left */
    sq_ohash *olog; /* orders the transaction added */
    size_t olog_n, olog_cap;
    uint32_t *dtab;
    size_t dcap, dvcap;
    uint32_t dn;
    ss_str *dvals; /* code -> value, from 1 */
    ss_block_dec scratch[SS_BLOCK_NTABLES], probe[SS_BLOCK_NTABLES];
    int64_t probe_id[SS_BLOCK_NTABLES]; /* the block in probe, 0: none */
} sq_facts;

/* The customers a transaction's orders reveal, written at commit. */
typedef struct sq_cust {
    uint64_t h; /* two hashes of the id, as in the known customers */
    uint32_t h2;
    int64_t ts;
    uint32_t off[4], len[4]; /* customer_id, segment, city, country */
} sq_cust;

/* The second hash of an id, which with its first (64 bits) tells the ids in
 * the writer's memory apart: the order map's and the known customers'. */
static inline uint32_t sq_id_h2(ss_str id)
{
    return (uint32_t)ss_hash_bytes(id.p, id.n, 29);
}

/* A customer this connection has stored, by two hashes of the id (96
 * bits, as the order map), with the time of the order it was stored from. */
typedef struct sq_known {
    uint64_t h; /* 0: empty */
    uint32_t h2;
    int64_t ts;
} sq_known;

typedef struct hot_sqlite {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[S_COUNT];
    int in_tx;
    sq_facts facts;
    sq_cust *cvec;  /* in the order they came */
    uint32_t *cidx; /* a hash table of their indexes + 1 (0: empty) */
    size_t ccap, cn;
    ss_buf carena;
    sq_known *ktab; /* customers stored (sqlite_write.c, "known customers") */
    size_t kcap, kn;
    checkpointer *ckpt;   /* NULL: SQLite checkpoints on commit */
    int64_t busy_since;   /* ms, monotonic: when its wait for the lock began */
    struct sq_refs *refs; /* what an archive run's facts reference (sqlite_refs.c) */
} hot_sqlite;

/* The SQL of each statement (sqlite.c). */
extern const char *const sq_sql[S_COUNT];

/* Logs a failed step with SQLite's message; SS_AGAIN when the database is
 * busy or locked, SS_EIO otherwise. */
int sq_db_error(hot_sqlite *h, const char *what);
/* Runs a prepared statement that returns no rows. */
int sq_run(hot_sqlite *h, enum stmt s);

static inline void bind_str(sqlite3_stmt *q, int i, ss_str s)
{
    sqlite3_bind_text(q, i, s.p, (int)s.n, SQLITE_STATIC);
}

static inline void bind_time(sqlite3_stmt *q, int i, int64_t ms, char *buf)
{
    ss_time_format_iso(ms, buf);
    sqlite3_bind_text(q, i, buf, SS_ISO_LEN, SQLITE_STATIC);
}

/* ---- what archived facts reference (sqlite_refs.c) ---- */
typedef struct sq_refs sq_refs;
/* The keys of dimension table dim (an index of ss_hot_dim_tables) that the
 * facts with ts < cutoff reference; NULL when the blocks cannot be read. */
const ss_strset *sq_refs_before(hot_sqlite *h, int64_t cutoff, int dim);
/* Deletes, with del_sql (one parameter: the key), the rows of dimension dim
 * that facts before cutoff reference and no fact from cutoff on does. */
int sq_refs_delete_left(hot_sqlite *h, int64_t cutoff, int dim, const char *del_sql);
void sq_refs_free(hot_sqlite *h);

/* ---- facts (sqlite_facts.c) ---- */
void sq_facts_init(hot_sqlite *h);
void sq_facts_close(hot_sqlite *h);
/* After BEGIN: notices what other connections committed. */
int sq_facts_begin(hot_sqlite *h);
int sq_facts_put(hot_sqlite *h, const ss_event *const *evs, const ss_attrib *attrib, size_t n,
                 uint8_t *is_new);
/* Before COMMIT: writes the tails that took rows. */
int sq_facts_flush(hot_sqlite *h);
void sq_facts_committed(hot_sqlite *h);
void sq_facts_rolled_back(hot_sqlite *h);
/* A claimed shard's stored events become known to the writer. */
int sq_facts_claim(hot_sqlite *h, const ss_hot_state *s);
/* The lowest watermark of the writer's shards, in the transaction. */
void sq_facts_watermark(hot_sqlite *h, int64_t lowest);
/* Deletes the rows of a fact table with ts in [from, to), in the current
 * transaction; *deleted = rows. */
int sq_blocks_delete(hot_sqlite *h, const ss_block_table *bt, int64_t from, int64_t to,
                     int64_t *deleted);
/* Writes the transaction's customers (sqlite_write.c). */
int sq_customers_flush(hot_sqlite *h);
/* Registers the table function the customers' INSERT reads from. */
int sq_customers_register(struct sqlite3 *db);
void sq_customers_clear(hot_sqlite *h);
/* After the commit that wrote them: the transaction's customers become known. */
void sq_customers_committed(hot_sqlite *h);
/* Another connection has written (an archive run deletes customers): no
 * customer is known any more. */
void sq_customers_forget(hot_sqlite *h);

/* ---- the ss_hot_ops callbacks of sqlite_write.c and sqlite_archive.c ---- */
int sqlite_put_events(void *vst, const ss_event *const *evs, const ss_attrib *attrib, size_t n,
                      uint8_t *is_new);
int sqlite_has_event(void *vst, ss_str event_id, int64_t ts, int *found);
int sqlite_put_late(void *vst, const ss_event *ev, const char *raw, size_t len, int64_t watermark,
                    int *is_new);
int sqlite_put_rejected(void *vst, const char *raw, size_t len, size_t raw_bytes,
                        const char *reason, const char *source, int64_t position);
int sqlite_put_order_dims(void *vst, const ss_event *ev, unsigned what);
int sqlite_put_place(void *vst, const char *city, const char *country, const char *country_code,
                     const char *region, double lat, double lon);
int sqlite_put_minute(void *vst, int64_t minute);
int sqlite_put_kpis(void *vst, const ss_kpi_row *rows, size_t n);
int sqlite_claim_shard(void *vst, int shard, const char *owner, ss_hot_state *s);
int sqlite_put_state(void *vst, const ss_hot_state *s, size_t n, const char *owner,
                     const ss_position *pos, size_t npos);
int sqlite_load_state(void *vst, void (*state_cb)(void *ctx, const ss_hot_state *s),
                      void (*pos_cb)(void *ctx, const char *source, int64_t offset), void *ctx);
int sqlite_read_kpis(void *vst, int64_t from, int64_t to, int dim, int open_only, ss_kpi_cb cb,
                     void *ctx);
int sqlite_lookup_order(void *vst, ss_str order_id, ss_attrib *out, char *buf, size_t cap,
                        int *found);
int sqlite_data_size(void *vst, int64_t *bytes);
int sqlite_scan_range(void *vst, const char *table, int64_t from, int64_t to, ss_scan_cb cb,
                      void *ctx);
int sqlite_scan_dims(void *vst, const char *table, int64_t cutoff, ss_scan_cb cb, void *ctx);
int sqlite_delete_range(void *vst, const char *table, int64_t from, int64_t to, int64_t *deleted);
int sqlite_nth_oldest(void *vst, int64_t n, int64_t *ts, int64_t *total);
int sqlite_archive_keys(void *vst, int64_t cutoff, int (*ev)(void *ctx, ss_str event_id),
                        int (*order)(void *ctx, ss_str order_id, const ss_attrib *at), void *ctx);
int sqlite_archive_begin(void *vst, const char *id, int64_t cutoff, const char *created_at);
int sqlite_archive_commit(void *vst, const char *id, int64_t cutoff, const char *manifest);
int sqlite_archive_forget(void *vst, const char *id);
int sqlite_archive_list(void *vst,
                        int (*cb)(void *ctx, const char *id, const char *state, int64_t cutoff,
                                  const char *created_at, const char *manifest),
                        void *ctx);
int sqlite_reclaim(void *vst);
int sqlite_version(void *vst, uint64_t *v);
int sqlite_note_set(void *vst, const char *key, const char *value);
int sqlite_note_list(void *vst, int (*cb)(void *ctx, const char *key, const char *value),
                     void *ctx);

#endif

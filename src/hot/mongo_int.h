/* The MongoDB hot store's internals, shared by its files (mongo.c: the
 * handle, connection and finds; mongo_write.c: a batch's writes;
 * mongo_epoch.c: epochs, commit and recovery; mongo_read.c: reads and the
 * archive lifecycle; mongo_sql.c: its collections as SQL tables). The
 * design is in mongo.c's opening comment.
 * @locality a handle is used by one thread. */
#ifndef SS_HOT_MONGO_INT_H
#define SS_HOT_MONGO_INT_H

#include <mongoc/mongoc.h>
#include <stddef.h>
#include <stdint.h>

#include "hot/hot.h"

#define ROUND_BITS 16
#define IN_CHUNK   4096 /* ids per $in read */
/* Replace and delete statements per bulk: MongoDB takes up to 100,000, but
 * FerretDB 1.24 stops answering an update command of more than about a
 * hundred; this many cost a round trip each on any server. */
#define MAX_BULK_UPDATES  64
#define RETRY_MAX_MS      (10 * 60000) /* give up a round trip after this long */
#define DEFAULT_SELECT_MS 2000         /* serverSelectionTimeoutMS unless the URI says */

enum coll {
    C_ORDERS,
    C_PAYMENTS,
    C_CANCELLATIONS,
    C_LATE,
    C_REJECTED,
    C_MINUTES,
    C_CATEGORIES,
    C_METHODS,
    C_CUSTOMERS,
    C_PRODUCTS,
    C_COUNTRIES,
    C_CITIES,
    C_KPI,
    C_STATE,
    C_ARCHIVES,
    C_NOTES,
    C_STATUSES,
    C_COUNT
};

/* Collections at or past C_CUSTOMERS (up to C_KPI) are replaced, not only
 * inserted. */
#define FIRST_REPLACED C_CUSTOMERS
#define LAST_TAGGED    C_KPI

extern const char *const mg_coll_name[C_COUNT];

/* ---- pending writes of an epoch: documents keyed by _id ---- */

enum { P_PLACE = 1 }; /* countries, cities: the profile's reference data was given */

typedef struct pent {
    char *id;
    bson_t *doc;  /* the fields the epoch sets, _id first (a bson_t must not move) */
    bson_t *next; /* replaced collections: the row as the epoch commits it, once written */
    int64_t ts;   /* customers: the order's time */
    unsigned flags;
} pent;

typedef struct pmap {
    pent *v;
    size_t n, cap;
    uint32_t *slot; /* index + 1, 0 = free */
    size_t nslot;
} pmap;

/* ---- the handle ---- */

typedef struct hshard {
    ss_hot_state s;
    char owner[64];
} hshard;

typedef struct hpos {
    char *source;
    int64_t offset;
} hpos;

typedef struct hot_mongo {
    mongoc_uri_t *uri;
    mongoc_client_t *client;
    mongoc_collection_t *c[C_COUNT];
    char *db, *where; /* database name; "HOST:PORT/DB" for messages */
    int read_only;
    int replica_set;   /* the server could run transactions */
    char writer[64];   /* this process's claim on the store */
    int writing;       /* the store is taken over and recovered */
    int64_t committed; /* C: the last committed epoch */
    int64_t epoch;     /* E while a batch is open, else 0 */
    uint32_t round;
    int in_tx;
    /* The committed state (a writer's own copy) and the batch's changes. */
    hshard *shards;
    size_t nshards;
    hpos *pos;
    size_t npos;
    int state_dirty;
    pmap pend[C_COUNT];
    /* The rows of the replaced collections as this writer committed them
     * (mongo_known.c): a row found here needs no read before its replace. */
    pmap known[C_COUNT];
    int complete[C_COUNT]; /* known holds every row of the collection */
    size_t known_bytes;
} hot_mongo;

typedef int (*doc_cb)(void *ctx, const bson_t *doc);

/* ---- helpers (mongo.c) ---- */

void mg_pmap_clear(pmap *m);
pent *mg_pmap_find(const pmap *m, const char *id, size_t n);
pent *mg_pmap_get(pmap *m, const char *id, size_t n, int *added);
int64_t mg_tag_of(const hot_mongo *h);
int mg_transient(const bson_error_t *e);
int mg_failed(hot_mongo *h, const bson_error_t *e, const char *what, int64_t *waited);
void mg_append_str(bson_t *b, const char *key, ss_str s);
void mg_append_opt(bson_t *b, const char *key, int64_t v);
int64_t mg_iter_int(const bson_iter_t *it);
int64_t mg_get_int(const bson_t *d, const char *key, int64_t dflt);
ss_str mg_get_str(const bson_t *d, const char *key);
void mg_append_ms(bson_t *b, const char *key, int64_t ms);
int mg_command(hot_mongo *h, const bson_t *cmd, bson_t *reply, bson_error_t *e);
int mg_find_each(hot_mongo *h, enum coll c, const bson_t *filter, const bson_t *opts, doc_cb cb,
                 void (*reset)(void *ctx), void *ctx, const char *what);
int mg_find_ids(hot_mongo *h, enum coll c, size_t n,
                void (*put)(void *put_ctx, size_t i, bson_t *arr, const char *key), void *put_ctx,
                doc_cb cb, void *ctx, const char *what);
int mg_find_one(hot_mongo *h, enum coll c, const bson_t *filter, const bson_t *opts, bson_t *out,
                const char *what);
int mg_by_id(hot_mongo *h, enum coll c, const char *id, size_t n, bson_t *out, const char *what);
int mg_finish_archives(hot_mongo *h);
int mg_run_bulk(hot_mongo *h, mongoc_bulk_operation_t *b, void (*dup)(void *, uint32_t), void *ctx,
                const char *what, int64_t *waited, int *retry);
mongoc_bulk_operation_t *mg_new_bulk(hot_mongo *h, enum coll c);
int mg_insert_tagged(hot_mongo *h, enum coll c, const bson_t *doc, int *is_new, const char *what);

/* ---- committed rows of the replaced collections (mongo_known.c) ---- */

void mg_pmap_free(pmap *m);
void mg_known_reset(hot_mongo *h);
int mg_known_probe(hot_mongo *h);
const bson_t *mg_known_get(const hot_mongo *h, enum coll c, const char *id, int *known);
void mg_known_commit(hot_mongo *h);

/* ---- the operations of ss_hot_mongo_ops, by file ---- */

int mongo_open(const char *target, const ss_hot_open_opts *o, void **out, char *err, size_t errlen);
void mongo_close(void *vst);
int mongo_begin(void *vst);
int mongo_commit(void *vst);
int mongo_rollback(void *vst);
int mongo_put_events(void *vst, const ss_event *const *evs, const ss_attrib *attrib, size_t n,
                     uint8_t *is_new);
int mongo_has_event(void *vst, ss_str event_id, int64_t ts, int *found);
int mongo_put_late(void *vst, const ss_event *ev, const char *raw, size_t len, int64_t watermark,
                   int *is_new);
int mongo_put_rejected(void *vst, const char *raw, size_t len, size_t raw_bytes, const char *reason,
                       const char *source, int64_t position);
int mongo_put_order_dims(void *vst, const ss_event *ev, unsigned what);
int mongo_put_place(void *vst, const char *city, const char *country, const char *country_code,
                    const char *region, double lat, double lon);
int mongo_put_minute(void *vst, int64_t minute);
int mongo_put_kpis(void *vst, const ss_kpi_row *rows, size_t n);
int mongo_claim_shard(void *vst, int shard, const char *owner, ss_hot_state *s);
int mongo_put_state(void *vst, const ss_hot_state *s, size_t n, const char *owner,
                    const ss_position *pos, size_t npos);
int mongo_load_state(void *vst, void (*state_cb)(void *ctx, const ss_hot_state *s),
                     void (*pos_cb)(void *ctx, const char *source, int64_t offset), void *ctx);
int mongo_read_kpis(void *vst, int64_t from, int64_t to, int dim, int open_only, ss_kpi_cb cb,
                    void *ctx);
int mongo_lookup_order(void *vst, ss_str order_id, ss_attrib *out, char *buf, size_t cap,
                       int *found);
int mongo_data_size(void *vst, int64_t *bytes);
int mongo_scan_range(void *vst, const char *table, int64_t from, int64_t to, ss_scan_cb cb,
                     void *ctx);
int mongo_delete_range(void *vst, const char *table, int64_t from, int64_t to, int64_t *deleted);
int mongo_nth_oldest(void *vst, int64_t n, int64_t *ts, int64_t *total);
int mongo_archive_keys(void *vst, int64_t cutoff, int (*ev)(void *ctx, ss_str event_id),
                       int (*order)(void *ctx, ss_str order_id, const ss_attrib *at), void *ctx);
int mongo_archive_begin(void *vst, const char *id, int64_t cutoff, const char *created_at);
int mongo_archive_commit(void *vst, const char *id, int64_t cutoff, const char *manifest);
int mongo_archive_forget(void *vst, const char *id);
int mongo_archive_list(void *vst,
                       int (*cb)(void *ctx, const char *id, const char *state, int64_t cutoff,
                                 const char *created_at, const char *manifest),
                       void *ctx);
int mongo_reclaim(void *vst);
int mongo_version(void *vst, uint64_t *v);
int mongo_note_set(void *vst, const char *key, const char *value);
int mongo_note_list(void *vst, int (*cb)(void *ctx, const char *key, const char *value), void *ctx);
int mongo_sql_attach(void *vst, struct sqlite3 *db, char *err, size_t errlen);
int mongo_scan_dims(void *vst, const char *table, int64_t cutoff, ss_scan_cb cb, void *ctx);

#endif

/* The hot store: the newest facts, dimensions and minute KPIs.
 *
 * Backends are const ss_hot_ops chosen by URI ("sqlite:PATH"; a plain
 * directory given with --data means sqlite:DIR/hot.db). The engine writes in
 * transactions: begin, then facts, dimensions, KPI rows, its state and the
 * input positions the batch covers, then commit, so that a batch and its
 * position become durable together or not at all.
 * @locality a store handle is used by one thread; readers open their own. */
#ifndef SS_HOT_H
#define SS_HOT_H

#include <stddef.h>
#include <stdint.h>

#include "event/event.h"

struct sqlite3;

/* The dimensions of an order that payments and cancellations are attributed
 * to, resolved when they are processed ("unknown" if the order was not seen). */
typedef struct ss_attrib {
    ss_str city, country, category, payment_method;
} ss_attrib;

enum ss_dim {
    SS_DIM_OVERALL = 0,
    SS_DIM_CITY,
    SS_DIM_COUNTRY,
    SS_DIM_CATEGORY,
    SS_DIM_PAYMENT_METHOD,
    SS_DIM_COUNT
};

/* "overall", "city", ... as stored in kpi_minute.dimension. */
const char *ss_dim_name(int dim);

typedef struct ss_kpi {
    int64_t orders, units, gross_cents, paid_cents, attempts, failed, cancellations,
        cancelled_cents;
} ss_kpi;

typedef struct ss_kpi_row {
    int64_t minute; /* window start, ms */
    int dim;
    ss_str value;
    int shard;
    int final;
    ss_kpi k;
} ss_kpi_row;

/* The engine's state of one shard (an input partition; 0 for files and the
 * in-process bus), committed with every batch. KPI rows are kept per shard,
 * so that engines in several processes that own different partitions never
 * overwrite each other's counts (docs/architecture.md). */
typedef struct ss_hot_state {
    int shard;
    int64_t watermark;       /* windows ending at or before it are final;
                                INT64_MIN before the first event */
    int64_t input_watermark; /* the shard's own: its latest event time minus
                                the lateness; never goes back */
    int64_t max_ts;
    uint64_t events_in, stored, duplicates, rejected, late;
} ss_hot_state;

/* Input position: a byte offset in a file, or an offset in a partition. */
typedef struct ss_position {
    const char *source;
    int64_t offset;
} ss_position;

enum { SS_DIMS_CUSTOMER = 1, SS_DIMS_PRODUCT = 2, SS_DIMS_PLACES = 4 };

typedef int (*ss_kpi_cb)(void *ctx, const ss_kpi_row *row);
/* Called with each stored event of a scanned range, oldest first, as its JSON
 * line in the cold layout (docs/lifecycle.md), without a newline. */
typedef int (*ss_scan_cb)(void *ctx, const char *table, int64_t ts, const char *json, size_t len);

typedef struct ss_hot_open_opts {
    int read_only;
} ss_hot_open_opts;

typedef struct ss_hot_ops {
    const char *name;
    const char *scheme;
    /* Whether put_state marks a shard's KPI rows final itself, those of the
     * minutes its watermark has passed: the engine then writes only the
     * rows whose counts changed, not those that only became final. */
    int finals_from_state;

    int (*open)(const char *target, const ss_hot_open_opts *o, void **st, char *err, size_t errlen);
    void (*close)(void *st);

    int (*begin)(void *st);
    int (*commit)(void *st);
    int (*rollback)(void *st);

    /* Stores on-time events; is_new[i] is set to 1 for an event stored now and
     * 0 for one whose event_id the store already holds (a duplicate). attrib
     * gives the order dimensions of payments and cancellations. */
    int (*put_events)(void *st, const ss_event *const *evs, const ss_attrib *attrib, size_t n,
                      uint8_t *is_new);
    /* Tells whether any table holds an event with this id; ts is the
     * event's time, which a store may use to find it. */
    int (*has_event)(void *st, ss_str event_id, int64_t ts, int *found);
    /* Records an event that arrived after the watermark had closed its window.
     * *is_new is 0 when the same late event was recorded before. */
    int (*put_late)(void *st, const ss_event *ev, const char *raw, size_t len, int64_t watermark,
                    int *is_new);
    /* Records an invalid input record with the reason; the same raw bytes are
     * recorded once. */
    int (*put_rejected)(void *st, const char *raw, size_t len, size_t raw_bytes, const char *reason,
                        const char *source, int64_t position);
    /* Upserts the dimension rows an order reveals: what is a mask of
     * SS_DIMS_CUSTOMER, SS_DIMS_PRODUCT and SS_DIMS_PLACES (category, city,
     * country, payment method). */
    int (*put_order_dims)(void *st, const ss_event *order, unsigned what);
    /* Upserts reference data of a place (from the profile): coordinates, codes. */
    int (*put_place)(void *st, const char *city, const char *country, const char *country_code,
                     const char *region, double lat, double lon);
    int (*put_minute)(void *st, int64_t minute);
    int (*put_kpis)(void *st, const ss_kpi_row *rows, size_t n);
    /* Takes a shard over for owner (a process's own id): from now on only
     * owner may write its state. Reports its committed state in *s (a new
     * shard's is empty). */
    int (*claim_shard)(void *st, int shard, const char *owner, ss_hot_state *s);
    /* Writes the state of n shards and the input positions. SS_EFENCED when
     * another owner has claimed one of the shards since: the caller must
     * roll back, as its view of that shard is stale. */
    int (*put_state)(void *st, const ss_hot_state *s, size_t n, const char *owner,
                     const ss_position *pos, size_t npos);

    /* Reads the committed state: each shard's through state_cb, the input
     * positions through pos_cb (either may be NULL). */
    int (*load_state)(void *st, void (*state_cb)(void *ctx, const ss_hot_state *s),
                      void (*pos_cb)(void *ctx, const char *source, int64_t offset), void *ctx);
    /* Reads KPI rows with minute in [from, to), all dimensions when dim < 0;
     * only non-final rows when open_only. */
    int (*read_kpis)(void *st, int64_t from, int64_t to, int dim, int open_only, ss_kpi_cb cb,
                     void *ctx);
    /* Finds an order's dimensions; strings are copied into buf (cap bytes). */
    int (*lookup_order)(void *st, ss_str order_id, ss_attrib *out, char *buf, size_t cap,
                        int *found);

    /* Bytes of data held (see docs/lifecycle.md for what is counted). */
    int (*data_size)(void *st, int64_t *bytes);
    /* Streams the rows with a time in [from, to) of a table the archiver
     * moves (ss_archive_tables: a fact table by ts, or kpi_minute by
     * minute_start), oldest first. */
    int (*scan_range)(void *st, const char *table, int64_t from, int64_t to, ss_scan_cb cb,
                      void *ctx);
    /* Deletes the rows with a time in [from, to) of such a table; *deleted = rows. */
    int (*delete_range)(void *st, const char *table, int64_t from, int64_t to, int64_t *deleted);

    /* ---- the archive lifecycle (docs/lifecycle.md) ---- */

    /* The event time of the n-th oldest event over all fact tables (n from
     * 0), or INT64_MIN when there are fewer; *total is the number of events. */
    int (*nth_oldest)(void *st, int64_t n, int64_t *ts, int64_t *total);
    /* Reports the keys of the facts with ts < cutoff: every event_id through
     * ev, and each order's dimensions through order (in no set order). */
    int (*archive_keys)(void *st, int64_t cutoff, int (*ev)(void *ctx, ss_str event_id),
                        int (*order)(void *ctx, ss_str order_id, const ss_attrib *at), void *ctx);
    /* Records an archive run as `writing` (committed at once). */
    int (*archive_begin)(void *st, const char *id, int64_t cutoff, const char *created_at);
    /* In one transaction: deletes every fact with ts < cutoff and every KPI
     * row of a minute before cutoff, and marks the archive committed with its
     * manifest. */
    int (*archive_commit)(void *st, const char *id, int64_t cutoff, const char *manifest);
    /* Drops the record of an archive that was rolled back. */
    int (*archive_forget)(void *st, const char *id);
    /* Reports every archive record, oldest first. */
    int (*archive_list)(void *st,
                        int (*cb)(void *ctx, const char *id, const char *state, int64_t cutoff,
                                  const char *created_at, const char *manifest),
                        void *ctx);
    /* Gives freed pages back to the file system (as far as the backend can). */
    int (*reclaim)(void *st);
    /* A number that changes whenever another connection has committed to the
     * store (the archiver, for one): a cheap test for "look again". */
    int (*version)(void *st, uint64_t *v);
    /* Small named notes about the lifecycle (last archiver error, ...), so
     * that `shopstream archive --status` in another process can show them. */
    int (*note_set)(void *st, const char *key, const char *value);
    int (*note_list)(void *st, int (*cb)(void *ctx, const char *key, const char *value), void *ctx);

    /* Makes the store readable by SQL in db, an empty SQLite database: the
     * tables of schema.sql under their names, read from the store, and its
     * views over them (docs/queries.md runs unchanged). The handle must
     * outlive db. NULL for SQLite itself, which the query layer opens. */
    int (*sql_attach)(void *st, struct sqlite3 *db, char *err, size_t errlen);

    /* Streams the rows of a dimension table (one of ss_hot_dim_tables) that
     * the facts with ts < cutoff reference, in key order, each as its JSON
     * line in the cold layout (docs/lifecycle.md: "Dimensions") with ts 0:
     * the snapshot an archive of those facts takes. Only committed rows are
     * read. */
    int (*scan_dims)(void *st, const char *table, int64_t cutoff, ss_scan_cb cb, void *ctx);
} ss_hot_ops;

typedef struct ss_hot {
    const ss_hot_ops *ops;
    void *st;
} ss_hot;

/* ---- what the backends share (hot.c) ---- */

/* The dimension tables that travel with an archive (scan_dims), in the order
 * of its manifest: customers, products, categories, countries, cities,
 * payment_methods, time_minutes. */
#define SS_HOT_NDIM_TABLES 7
extern const char *const ss_hot_dim_tables[SS_HOT_NDIM_TABLES];

/* The dimension of a name ("overall", "city", ...), or -1. */
int ss_dim_parse(const char *name, size_t len);

/* A scanned fact's JSON line in the cold layout (docs/lifecycle.md), built
 * field by field in the table's column order: ss_hot_line_begin, then one
 * call per column that is not NULL, then ss_hot_line_end. A column named
 * *_cents holds integer cents and is written without the suffix as money
 * with exactly two decimals. */
void ss_hot_line_begin(ss_buf *line);
void ss_hot_line_int(ss_buf *line, const char *name, int64_t v);
void ss_hot_line_text(ss_buf *line, const char *name, const char *s, size_t n);
/* A real number (coordinates), with up to 15 significant digits. */
void ss_hot_line_real(ss_buf *line, const char *name, double v);
void ss_hot_line_end(ss_buf *line);

/* The identity of a rejected record (32 hex digits and a NUL), so that the
 * same bad bytes are recorded once: 128 bits from two 64-bit FNV-1a variants
 * over the kept bytes and the record's full length. */
void ss_hot_raw_id(const char *raw, size_t len, size_t total, char out[33]);

/* The time_minutes row of a minute: its date (first 10 characters of the
 * ISO text), hour, minute, ISO weekday (1 = Monday) and weekday name. */
typedef struct ss_hot_minute {
    int hour, minute, weekday;
    const char *weekday_name;
} ss_hot_minute;
void ss_hot_minute_of(int64_t minute, ss_hot_minute *m);

/* Whether a customer's row from an order of (ts, segment, city, country)
 * replaces the row it has: the earliest order wins, ties broken by the
 * row's values in byte order, so that the result does not depend on the
 * order in which orders arrive. */
int ss_hot_customer_wins(int64_t ts, const ss_str *vals, int64_t cur_ts, const ss_str *cur_vals);

/* The lowest watermark over the store's shards (INT64_MIN when there is
 * no shard or one has no event yet): events behind it can no longer enter
 * any shard's windows, and every minute before it is final in all. */
int ss_hot_min_watermark(ss_hot *hot, int64_t *wm);

/* The backend of uri's scheme, or NULL when none has it. */
const ss_hot_ops *ss_hot_ops_for(const char *uri);

/* Opens the store named by uri: "sqlite:PATH" or "mongodb://HOST:PORT/DB". */
int ss_hot_open(const char *uri, const ss_hot_open_opts *o, ss_hot *hot, char *err, size_t errlen);
void ss_hot_close(ss_hot *hot);

extern const ss_hot_ops ss_hot_sqlite_ops;
extern const ss_hot_ops ss_hot_null_ops;
extern const ss_hot_ops ss_hot_mongo_ops;

#endif

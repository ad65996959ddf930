/* SQL over cold storage: a SQLite virtual table module ("ss_cold") that reads
 * the JSON Lines files of committed archives (docs/lifecycle.md).
 *
 *   CREATE VIRTUAL TABLE temp.cold_orders USING ss_cold(orders)
 *
 * gives a read-only table with exactly the columns of the hot store's view of
 * that table (orders, payments or cancellations; kpi_minute_data, whose
 * money columns stay integer cents; or the dimension snapshots customers,
 * products and time_minutes): money as REAL in currency units, times as
 * ISO-8601 text, integers as INTEGER, absent values as NULL, and a hidden
 * column archive_id, the archive each row comes from.
 *
 * Each scan reads the committed archives from main.archives (a store without
 * that table has none), takes each one's manifest from its `manifest` column
 * or else from COLD/_archives/<id>.json, and reads only the files the
 * manifests list, so a half-written archive or a stray file never counts.
 * Constraints on ts (minute_start for KPIs) prune the scan to the files whose [min_ts, max_ts]
 * overlaps the range; at debug level each scan logs "[query:cold] <table>:
 * opened N of M files". A listed file that is missing or damaged fails the
 * query with a message naming the file.
 * @locality the thread of the connection the module is registered on. */
#ifndef SS_QUERY_COLDTAB_H
#define SS_QUERY_COLDTAB_H

#include <sqlite3.h>
#include <stddef.h>

/* The tables the module serves whose hot and cold rows are disjoint,
 * NULL-terminated: "orders", "payments", "cancellations", "kpi_minute_data";
 * and the dimensions whose archived rows are snapshots: "customers",
 * "products", "time_minutes". */
extern const char *const ss_query_cold_tables[];
extern const char *const ss_query_cold_dims[];

/* Registers the module on db, reading the cold store of cold_uri (copied; a
 * directory, file:PATH or webhdfs://, see cold/cold.h) through its backend,
 * opened at the first committed archive. Returns SS_OK, or SS_ERR with a
 * message in err. */
int ss_query_coldtab_register(sqlite3 *db, const char *cold_uri, char *err, size_t errlen);

#endif

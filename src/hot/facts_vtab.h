/* The SQL face of the SQLite hot store's fact blocks (facts_vtab.c). */
#ifndef SS_HOT_FACTS_VTAB_H
#define SS_HOT_FACTS_VTAB_H

#include <stdint.h>

#include "hot/block.h"

struct sqlite3;

/* Registers the module ss_facts on a connection, before anything reads
 * orders_data, payments_data or cancellations_data. */
int ss_hot_facts_register(struct sqlite3 *db);

/* Called with each row of a scan, as row r of a decoded block (whose
 * columns it decodes with ss_block_dec_col); anything but 0 (SQLITE_OK)
 * ends the scan with that result. */
typedef int (*ss_facts_row_fn)(void *ctx, ss_block_dec *d, uint32_t r);

/* Reads the rows of t with ts in [from, to) in (ts, event_id) order, as
 * SELECT ... ORDER BY ts does, without SQL's work per value. An SQLite
 * result code; *err (sqlite3_malloc, or NULL) says what failed. */
int ss_facts_scan(struct sqlite3 *db, const ss_block_table *t, int64_t from, int64_t to,
                  ss_facts_row_fn row, void *ctx, char **err);

#endif

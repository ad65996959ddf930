/* Fact blocks in their tables (<name>_blocks): what both the writer of the
 * SQLite hot store and the ss_facts module do to the blocks in place, on a
 * connection of either (block.h holds the format). */
#ifndef SS_HOT_BLOCK_STORE_H
#define SS_HOT_BLOCK_STORE_H

#include <stdint.h>

#include "hot/block.h"

struct sqlite3;

/* Whether row r of a decoded block goes. */
typedef int (*ss_block_drop_fn)(void *ctx, const ss_block_dec *d, uint32_t r);

/* Rewrites block id of bt without the rows drop picks: the rest go to a new
 * block (a new id, so that a writer filling the old one starts another), or
 * nowhere when none is left. Adds the rows dropped to *dropped. An SQLite
 * result code; SQLITE_CORRUPT when the block is damaged; *err (sqlite3_malloc)
 * says what failed. */
int ss_block_rewrite(struct sqlite3 *db, const ss_block_table *bt, int64_t id,
                     ss_block_drop_fn drop, void *ctx, int64_t *dropped, char **err);

/* Called with row r of a decoded block. */
typedef int (*ss_block_row_fn)(void *ctx, ss_block_dec *d, uint32_t r);

/* Calls fn with every row of bt with ts in [from, to), block by block, in
 * no set order, with the columns of the bit mask cols decoded (and ts). An
 * SQLite result code; fn's when it returns anything but 0; *err as above. */
int ss_blocks_each(struct sqlite3 *db, const ss_block_table *bt, int64_t from, int64_t to,
                   uint32_t cols, ss_block_row_fn fn, void *ctx, char **err);

#endif

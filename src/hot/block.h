/* Fact blocks: how the SQLite hot store keeps the events of a fact table
 * (docs/architecture.md, "The SQLite hot store"). A block holds up to
 * SS_BLOCK_ROWS events of one table, sorted by (ts, event_id), column by
 * column: times as deltas, ids front-coded against the row before, names
 * through a dictionary of the block, numbers as varints. One block is one
 * row of the table's <name>_blocks table, so a transaction writes a handful
 * of rows instead of one per event and index entries per row.
 *
 * The encoder collects rows (copying their strings) and encodes them; the
 * decoder takes a block apart column by column, only the columns asked for.
 * @locality an encoder or decoder is used by one thread. */
#ifndef SS_HOT_BLOCK_H
#define SS_HOT_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "event/event.h"
#include "hot/hot.h"

#define SS_BLOCK_ROWS 4096

enum ss_block_kind {
    SS_BK_ID,   /* text, front-coded against the row before */
    SS_BK_TS,   /* event time, ms; presented as ISO text */
    SS_BK_DICT, /* text from a small set of values, or NULL */
    SS_BK_INT,  /* integer (cents, counts) */
};

typedef struct ss_block_col {
    const char *name;
    uint8_t kind;
} ss_block_col;

/* A fact table: its name, its columns in the order of docs/data-dictionary.md
 * (column 0 is event_id, 1 order_id, 2 ts in every table). */
typedef struct ss_block_table {
    const char *name;   /* "orders" */
    const char *blocks; /* "orders_blocks" */
    const char *data;   /* "orders_data": the virtual table over the blocks */
    int ncol;
    const ss_block_col *cols;
} ss_block_table;

enum { SS_BCOL_EVENT_ID = 0, SS_BCOL_ORDER_ID = 1, SS_BCOL_TS = 2 };

#define SS_BLOCK_NTABLES 3
/* orders, payments, cancellations: index = ss_event_type - 1. */
extern const ss_block_table ss_block_tables[SS_BLOCK_NTABLES];
const ss_block_table *ss_block_table_named(const char *name);
/* A column's index in t, or -1. */
int ss_block_col_index(const ss_block_table *t, const char *name);

/* One value of a row: i for TS and INT columns, s for the others; a DICT
 * column is NULL when s.p is NULL. */
typedef struct ss_bval {
    int64_t i;
    ss_str s;
} ss_bval;

/* The values of an event in its table's column order (attrib gives the
 * order's dimensions of a payment or cancellation); v has room for the
 * widest table. */
#define SS_BLOCK_MAXCOL 19
const ss_block_table *ss_block_row_of(const ss_event *ev, const ss_attrib *at,
                                      ss_bval v[SS_BLOCK_MAXCOL]);

/* ---- encoder ---- */

typedef struct ss_block_cell {
    int64_t i;
    uint32_t off, len; /* into the arena; len UINT32_MAX: NULL */
} ss_block_cell;

/* A dictionary column's distinct values, each kept once in the arena: a row
 * holds the code (cell.i, from 1), looked up when the row is added. */
typedef struct ss_block_dict {
    uint32_t *tab; /* open addressing over codes; 0: empty */
    size_t cap;
    ss_block_cell *vals; /* code - 1: the value's place in the arena */
    uint32_t n, vcap;
} ss_block_dict;

typedef struct ss_block_enc {
    const ss_block_table *t;
    size_t n, cap;
    ss_block_cell *cells; /* by column: column c's rows at cells + c * cap */
    ss_buf arena;
    ss_block_dict dict[SS_BLOCK_MAXCOL];
    uint32_t *order; /* scratch: rows in (ts, event_id) order */
    uint32_t *remap; /* scratch: a dictionary's codes in first use in that order */
    int64_t min_ts, max_ts;
} ss_block_enc;

void ss_block_enc_init(ss_block_enc *e, const ss_block_table *t);
void ss_block_enc_free(ss_block_enc *e);
/* Adds a row (copies its strings). */
void ss_block_enc_add(ss_block_enc *e, const ss_bval *v);
/* Forgets rows from n on (a rolled-back transaction's). */
void ss_block_enc_truncate(ss_block_enc *e, size_t n, size_t arena_len);
void ss_block_enc_reset(ss_block_enc *e);
/* Encodes the rows, sorted, into out (replacing its content). */
void ss_block_encode(ss_block_enc *e, ss_buf *out);

/* ---- decoder ---- */

typedef struct ss_block_dec {
    const ss_block_table *t;
    uint8_t *data; /* a copy of the block */
    size_t len, cap;
    uint32_t n;
    uint32_t sec_off[SS_BLOCK_MAXCOL], sec_len[SS_BLOCK_MAXCOL];
    uint32_t done; /* bit c: column c decoded */
    int64_t *ints[SS_BLOCK_MAXCOL];
    ss_str *strs[SS_BLOCK_MAXCOL];
    size_t rows_cap[SS_BLOCK_MAXCOL];
    ss_buf ids[SS_BLOCK_MAXCOL]; /* front-coded ids, written out */
    /* Optional: dictionary values are interned here, so that they outlive
     * the block; bit c of interned says that column c's all were. */
    struct ss_interner *intern;
    uint32_t interned;
} ss_block_dec;

void ss_block_dec_init(ss_block_dec *d, const ss_block_table *t);
void ss_block_dec_free(ss_block_dec *d);
/* Takes a block (copied); 0, or -1 when its header is damaged. */
int ss_block_dec_load(ss_block_dec *d, const void *data, size_t len);
/* Decodes column c (once per block); 0, or -1 when it is damaged. */
int ss_block_dec_col(ss_block_dec *d, int c);

#endif

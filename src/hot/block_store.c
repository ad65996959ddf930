/* Fact blocks rewritten in place (block_store.h). Built into the binary and
 * into the loadable extension shopstream_sqlite. */
#ifdef SS_SQLITE_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#else
#include <sqlite3.h>
#endif
#include <stdio.h>

#include "common/buf.h"
#include "hot/block_store.h"

static int run(sqlite3 *db, const char *sql, int64_t id, const ss_block_enc *e, const ss_buf *out,
               char **err, const char *what)
{
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK) {
        if (e) {
            sqlite3_bind_int64(q, 1, e->min_ts);
            sqlite3_bind_int64(q, 2, e->max_ts);
            sqlite3_bind_int64(q, 3, (sqlite3_int64)e->n);
            sqlite3_bind_blob(q, 4, out->data, (int)out->len, SQLITE_STATIC);
        } else {
            sqlite3_bind_int64(q, 1, id);
        }
        rc = sqlite3_step(q);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK)
        *err = sqlite3_mprintf("%s: %s", what, sqlite3_errmsg(db));
    sqlite3_finalize(q);
    return rc;
}

int ss_block_rewrite(sqlite3 *db, const ss_block_table *bt, int64_t id, ss_block_drop_fn drop,
                     void *ctx, int64_t *dropped, char **err)
{
    char sql[160];
    sqlite3_stmt *q;
    snprintf(sql, sizeof sql, "SELECT data FROM %s WHERE id = ?1", bt->blocks);
    int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) {
        *err = sqlite3_mprintf("reading a block of %s: %s", bt->blocks, sqlite3_errmsg(db));
        return rc;
    }
    sqlite3_bind_int64(q, 1, id);
    rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(q);
        if (rc == SQLITE_DONE)
            return SQLITE_OK; /* gone already */
        *err = sqlite3_mprintf("reading a block of %s: %s", bt->blocks, sqlite3_errmsg(db));
        return rc;
    }
    ss_block_dec d;
    ss_block_dec_init(&d, bt);
    int bad = ss_block_dec_load(&d, sqlite3_column_blob(q, 0), (size_t)sqlite3_column_bytes(q, 0));
    sqlite3_finalize(q);
    for (int c = 0; c < bt->ncol && !bad; c++)
        bad = ss_block_dec_col(&d, c) != 0;
    if (bad) {
        ss_block_dec_free(&d);
        *err = sqlite3_mprintf("block %lld of %s is damaged", (long long)id, bt->blocks);
        return SQLITE_CORRUPT;
    }
    ss_block_enc e;
    ss_block_enc_init(&e, bt);
    for (uint32_t r = 0; r < d.n; r++) {
        if (drop(ctx, &d, r)) {
            (*dropped)++;
            continue;
        }
        ss_bval v[SS_BLOCK_MAXCOL];
        for (int c = 0; c < bt->ncol; c++) {
            int k = bt->cols[c].kind;
            if (k == SS_BK_TS || k == SS_BK_INT)
                v[c].i = d.ints[c][r];
            else
                v[c].s = d.strs[c][r];
        }
        ss_block_enc_add(&e, v);
    }
    rc = SQLITE_OK;
    if (e.n < d.n) {
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = ?1", bt->blocks);
        rc = run(db, sql, id, NULL, NULL, err, "deleting a block");
        if (rc == SQLITE_OK && e.n) {
            ss_buf out;
            ss_buf_init(&out, 1 << 16);
            ss_block_encode(&e, &out);
            snprintf(sql, sizeof sql,
                     "INSERT INTO %s (min_ts, max_ts, n, data) VALUES (?1, ?2, ?3, ?4)",
                     bt->blocks);
            rc = run(db, sql, 0, &e, &out, err, "writing a block");
            ss_buf_free(&out);
        }
    }
    ss_block_dec_free(&d);
    ss_block_enc_free(&e);
    return rc;
}

int ss_blocks_each(sqlite3 *db, const ss_block_table *bt, int64_t from, int64_t to, uint32_t cols,
                   ss_block_row_fn fn, void *ctx, char **err)
{
    char sql[160];
    sqlite3_stmt *q;
    snprintf(sql, sizeof sql, "SELECT id, data FROM %s WHERE max_ts >= ?1 AND min_ts < ?2",
             bt->blocks);
    int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc != SQLITE_OK) {
        *err = sqlite3_mprintf("reading %s: %s", bt->blocks, sqlite3_errmsg(db));
        return rc;
    }
    sqlite3_bind_int64(q, 1, from);
    sqlite3_bind_int64(q, 2, to);
    ss_block_dec d;
    ss_block_dec_init(&d, bt);
    cols |= 1u << SS_BCOL_TS;
    int out = SQLITE_OK;
    while (out == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        int bad = ss_block_dec_load(&d, sqlite3_column_blob(q, 1),
                                    (size_t)sqlite3_column_bytes(q, 1)) != 0;
        for (int c = 0; c < bt->ncol && !bad; c++)
            bad = (cols >> c & 1) && ss_block_dec_col(&d, c) != 0;
        if (bad) {
            *err = sqlite3_mprintf("block %lld of %s is damaged",
                                   (long long)sqlite3_column_int64(q, 0), bt->blocks);
            out = SQLITE_CORRUPT;
            break;
        }
        const int64_t *ts = d.ints[SS_BCOL_TS];
        for (uint32_t r = 0; r < d.n && out == SQLITE_OK; r++)
            if (ts[r] >= from && ts[r] < to)
                out = fn(ctx, &d, r);
    }
    if (out == SQLITE_OK && rc != SQLITE_DONE) {
        *err = sqlite3_mprintf("reading %s: %s", bt->blocks, sqlite3_errmsg(db));
        out = rc;
    }
    sqlite3_finalize(q);
    ss_block_dec_free(&d);
    return out;
}

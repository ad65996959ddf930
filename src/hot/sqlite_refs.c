/* What the facts before a cutoff reference, for the archiver (the SQLite hot
 * store): the keys of each dimension table's rows that leave with them, read
 * from the fact blocks in one pass (block_store.h) instead of a scan of a
 * fact table per dimension in SQL. Kept for the cutoff of the archive run
 * under way: its dimension snapshot and its commit both use them. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "hot/block_store.h"
#include "hot/sqlite_int.h"

struct sq_refs {
    int64_t cutoff;
    ss_strset keys[SS_HOT_NDIM_TABLES]; /* in the order of ss_hot_dim_tables */
};

/* For each fact table, the dimension behind each of its columns (-1: none);
 * time_minutes comes from ts. */
enum { D_CUSTOMERS, D_PRODUCTS, D_CATEGORIES, D_COUNTRIES, D_CITIES, D_METHODS, D_MINUTES };

static const struct {
    const char *col;
    int dim;
} dim_cols[] = {
    {"customer_id", D_CUSTOMERS}, {"product_id", D_PRODUCTS}, {"category", D_CATEGORIES},
    {"country", D_COUNTRIES},     {"city", D_CITIES},         {"payment_method", D_METHODS},
};
#define NDIM_COLS (sizeof dim_cols / sizeof dim_cols[0])

typedef struct refs_walk {
    ss_strset *keys;    /* indexed by dimension */
    int col[NDIM_COLS]; /* the column of dim_cols[i] in the table, or -1 */
    int only;           /* a dimension to collect alone, or -1 */
} refs_walk;

static int add_row(void *ctx, ss_block_dec *d, uint32_t r)
{
    refs_walk *w = ctx;
    for (size_t i = 0; i < NDIM_COLS; i++) {
        const ss_str *v = w->col[i] >= 0 ? &d->strs[w->col[i]][r] : NULL;
        if (v && v->p)
            ss_strset_add(&w->keys[dim_cols[i].dim], v->p, v->n);
    }
    if (w->only < 0) {
        char m[SS_ISO_LEN];
        int64_t ts = d->ints[SS_BCOL_TS][r];
        ss_time_format_iso(ts - ((ts % 60000) + 60000) % 60000, m);
        ss_strset_add(&w->keys[D_MINUTES], m, SS_ISO_LEN);
    }
    return SQLITE_OK;
}

/* Adds the keys that the facts with ts in [from, to) reference to keys
 * (all dimensions, or only's). */
static int collect(hot_sqlite *h, int64_t from, int64_t to, int only, ss_strset *keys)
{
    for (int t = 0; t < SS_BLOCK_NTABLES; t++) {
        const ss_block_table *bt = &ss_block_tables[t];
        refs_walk w = {.keys = keys, .only = only};
        uint32_t mask = 0;
        for (size_t i = 0; i < NDIM_COLS; i++) {
            int c =
                only < 0 || dim_cols[i].dim == only ? ss_block_col_index(bt, dim_cols[i].col) : -1;
            w.col[i] = c;
            if (c >= 0)
                mask |= 1u << c;
        }
        if (!mask && only >= 0)
            continue;
        char *err = NULL;
        int rc = ss_blocks_each(h->db, bt, from, to, mask, add_row, &w, &err);
        if (rc != SQLITE_OK) {
            SS_ERROR("hot:sqlite", "'%s': reading what %s references: %s", h->path, bt->data,
                     err ? err : sqlite3_errstr(rc));
            sqlite3_free(err);
            return SS_EIO;
        }
    }
    return SS_OK;
}

void sq_refs_free(hot_sqlite *h)
{
    if (!h->refs)
        return;
    for (int i = 0; i < SS_HOT_NDIM_TABLES; i++)
        ss_strset_free(&h->refs->keys[i]);
    free(h->refs);
    h->refs = NULL;
}

const ss_strset *sq_refs_before(hot_sqlite *h, int64_t cutoff, int dim)
{
    if (h->refs && h->refs->cutoff != cutoff)
        sq_refs_free(h);
    if (!h->refs) {
        sq_refs *r = ss_calloc(1, sizeof *r);
        r->cutoff = cutoff;
        for (int i = 0; i < SS_HOT_NDIM_TABLES; i++)
            ss_strset_init(&r->keys[i]);
        h->refs = r;
        if (collect(h, INT64_MIN, cutoff, -1, r->keys) != SS_OK) {
            sq_refs_free(h);
            return NULL;
        }
    }
    return &h->refs->keys[dim];
}

typedef struct forget {
    hot_sqlite *h;
    const ss_strset *after;
    sqlite3_stmt *del;
} forget;

static int forget_one(void *ctx, const char *p, size_t n)
{
    forget *f = ctx;
    if (ss_strset_has(f->after, p, n))
        return 0;
    sqlite3_bind_text(f->del, 1, p, (int)n, SQLITE_STATIC);
    int rc = sqlite3_step(f->del);
    sqlite3_reset(f->del);
    return rc == SQLITE_DONE ? 0 : sq_db_error(f->h, "deleting an archived dimension row");
}

int sq_refs_delete_left(hot_sqlite *h, int64_t cutoff, int dim, const char *del_sql)
{
    const ss_strset *before = sq_refs_before(h, cutoff, dim);
    if (!before)
        return SS_EIO;
    ss_strset after[SS_HOT_NDIM_TABLES];
    for (int i = 0; i < SS_HOT_NDIM_TABLES; i++)
        ss_strset_init(&after[i]);
    forget f = {h, &after[dim], NULL};
    int rc = collect(h, cutoff, INT64_MAX, dim, after);
    if (rc == SS_OK && sqlite3_prepare_v2(h->db, del_sql, -1, &f.del, NULL) != SQLITE_OK)
        rc = sq_db_error(h, del_sql);
    rc = rc ? rc : ss_strset_each(before, forget_one, &f);
    sqlite3_finalize(f.del);
    for (int i = 0; i < SS_HOT_NDIM_TABLES; i++)
        ss_strset_free(&after[i]);
    return rc;
}

/* The fact tables of the SQLite hot store as SQL sees them: orders_data,
 * payments_data and cancellations_data are virtual tables of the module
 * ss_facts over the blocks (block.h), with the columns of the row tables
 * they replace (ts as ISO text, money in integer cents).
 *
 * A condition on ts (=, <, <=, >, >=) reads only the blocks whose time
 * range can match, and only their rows in range (rows are sorted by time in
 * a block). ORDER BY ts, ascending or descending, is served by merging the
 * blocks, so that max(ts) reads the newest block alone. The same code is
 * built into the binary and into the loadable extension shopstream_sqlite,
 * which lets any SQLite (sqlite3 shell, Python) read a store. */
#ifdef SS_SQLITE_EXTENSION
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT3
#else
#include <sqlite3.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/intern.h"
#include "common/timeutil.h"
#include "hot/block.h"
#include "hot/block_store.h"
#include "hot/facts_vtab.h"
#include "hot/vtab_ts.h"

typedef struct fx_vtab {
    sqlite3_vtab base;
    sqlite3 *db;
    const ss_block_table *t;
    int ncur;      /* cursors open */
    int64_t *gone; /* rowids deleted, not yet taken out of their blocks */
    size_t ngone, capgone;
    /* Dictionary values (cities, categories, methods, ...) kept for the
     * connection's life, so that xColumn hands them out without a copy. */
    ss_interner *intern;
} fx_vtab;

typedef struct fx_blk {
    int64_t id, min_ts, max_ts;
} fx_blk;

typedef struct fx_src {
    ss_block_dec d;
    int64_t id;
    int64_t row, end; /* the current row; end: one past the last (asc) or
                         one before the first (desc) */
} fx_src;

/* A bound that is not a time at a field boundary: compared as text. */
typedef struct fx_tbound {
    char op; /* '=', '<', 'l' (<=), '>', 'g' (>=) */
    char *s;
    size_t n;
} fx_tbound;

#define MAX_CONS   8
#define INTERN_MAX (16u << 20) /* bytes of dictionary values kept per table */
/* A row's rowid: its block's id times this, plus its place in the block. */
#define FX_ROWS_PER_BLOCK 65536

typedef struct fx_cursor {
    sqlite3_vtab_cursor base;
    int64_t lo, hi; /* inclusive */
    int empty, order;
    fx_tbound tb[MAX_CONS];
    int ntb;
    fx_blk *blks;
    size_t nblk, next;
    fx_src **src; /* active sources; a heap when ordered */
    size_t nsrc, cap;
    fx_src **pool; /* decoded blocks to reuse */
    size_t npool;
    fx_src *cur;
    int64_t cur_row;
    int eof;
    sqlite3_stmt *fetch;
    char ts[SS_ISO_LEN];
    int64_t ts_row_of; /* the row whose time ts holds, or -1 */
    fx_src *ts_src;
} fx_cursor;

static int take_out(fx_vtab *vt);

static int fx_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    (void)aux;
    const ss_block_table *t = argc > 3 ? ss_block_table_named(argv[3]) : NULL;
    if (!t) {
        *err = sqlite3_mprintf("ss_facts: give a fact table: orders, payments or cancellations");
        return SQLITE_ERROR;
    }
    char decl[1024];
    size_t n = (size_t)snprintf(decl, sizeof decl, "CREATE TABLE x(");
    for (int i = 0; i < t->ncol; i++) {
        const ss_block_col *c = &t->cols[i];
        int text = c->kind != SS_BK_INT;
        n += (size_t)snprintf(
            decl + n, sizeof decl - n, "%s%s %s%s", i ? ", " : "", c->name,
            text ? "TEXT" : "INTEGER",
            c->kind == SS_BK_DICT && !strcmp(c->name, "failure_reason") ? "" : " NOT NULL");
    }
    snprintf(decl + n, sizeof decl - n, ")");
    int rc = sqlite3_declare_vtab(db, decl);
    if (rc != SQLITE_OK)
        return rc;
    fx_vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    vt->db = db;
    vt->t = t;
    vt->intern = ss_intern_new(INTERN_MAX);
    sqlite3_vtab_config(db, SQLITE_VTAB_INNOCUOUS);
    *out = &vt->base;
    return SQLITE_OK;
}

static int fx_disconnect(sqlite3_vtab *vtab)
{
    free(((fx_vtab *)vtab)->gone);
    ss_intern_free(((fx_vtab *)vtab)->intern);
    sqlite3_free(vtab);
    return SQLITE_OK;
}

static int fx_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
    (void)vtab;
    char ops[MAX_CONS + 1];
    int lower = 0, upper = 0, eq = 0;
    ss_vtab_ts_constraints(info, SS_BCOL_TS, MAX_CONS, 1, ops, &lower, &upper, &eq);
    int order = 0;
    /* Rows come out by (ts, event_id). */
    if (info->nOrderBy >= 1 && info->nOrderBy <= 2 && info->aOrderBy[0].iColumn == SS_BCOL_TS &&
        (info->nOrderBy == 1 || (info->aOrderBy[1].iColumn == SS_BCOL_EVENT_ID &&
                                 info->aOrderBy[1].desc == info->aOrderBy[0].desc))) {
        order = info->aOrderBy[0].desc ? -1 : 1;
        info->orderByConsumed = 1;
    }
    info->idxNum = order + 1;
    info->idxStr = sqlite3_mprintf("%s", ops);
    info->needToFreeIdxStr = 1;
    double rows = eq ? 10 : lower && upper ? 1e4 : lower || upper ? 2.5e5 : 1e6;
    info->estimatedRows = (sqlite3_int64)rows;
    info->estimatedCost = rows * (order ? 1.1 : 1.0);
    return SQLITE_OK;
}

static int fx_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out)
{
    fx_vtab *vt = (fx_vtab *)vtab;
    fx_cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT data FROM %s WHERE id = ?1", vt->t->blocks);
    if (sqlite3_prepare_v2(vt->db, sql, -1, &c->fetch, NULL) != SQLITE_OK) {
        vtab->zErrMsg = sqlite3_mprintf("%s", sqlite3_errmsg(vt->db));
        sqlite3_free(c);
        return SQLITE_ERROR;
    }
    vt->ncur++;
    *out = &c->base;
    return SQLITE_OK;
}

static void release(fx_cursor *c, fx_src *s)
{
    if (c->npool < 16) {
        c->pool[c->npool++] = s;
    } else {
        ss_block_dec_free(&s->d);
        free(s);
    }
}

static void cursor_reset(fx_cursor *c)
{
    for (size_t i = 0; i < c->nsrc; i++)
        release(c, c->src[i]);
    c->nsrc = 0;
    if (c->cur)
        release(c, c->cur);
    c->cur = NULL;
    for (int i = 0; i < c->ntb; i++)
        free(c->tb[i].s);
    c->ntb = 0;
    free(c->blks);
    c->blks = NULL;
    c->nblk = c->next = 0;
    c->eof = 1;
    c->ts_src = NULL;
}

static int fx_close(sqlite3_vtab_cursor *cur)
{
    fx_cursor *c = (fx_cursor *)cur;
    if (!c->pool)
        c->pool = malloc(16 * sizeof *c->pool);
    cursor_reset(c);
    for (size_t i = 0; i < c->npool; i++) {
        ss_block_dec_free(&c->pool[i]->d);
        free(c->pool[i]);
    }
    free(c->pool);
    free(c->src);
    sqlite3_finalize(c->fetch);
    ((fx_vtab *)cur->pVtab)->ncur--;
    sqlite3_free(c);
    return SQLITE_OK;
}

/* The time of a bound given as text, when comparing it as text is the same
 * as comparing times: a prefix of an ISO time that ends at a field
 * boundary. *ms is the earliest time that has the prefix; *full whether the
 * text is a whole time. */
static int bound_time(const char *s, size_t n, int64_t *ms, int *full)
{
    static const char tmpl[] = "0000-01-01T00:00:00.000Z";
    if (n == 0 || n > SS_ISO_LEN)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int digit = tmpl[i] == '0' || tmpl[i] == '1';
        if (digit ? (s[i] < '0' || s[i] > '9') : s[i] != tmpl[i])
            return -1;
    }
    int boundary = n == SS_ISO_LEN || !(tmpl[n] == '0' || tmpl[n] == '1') ||
                   !(tmpl[n - 1] == '0' || tmpl[n - 1] == '1');
    if (!boundary)
        return -1;
    char p[SS_ISO_LEN];
    memcpy(p, s, n);
    memcpy(p + n, tmpl + n, SS_ISO_LEN - n);
    if (ss_time_parse_iso(p, SS_ISO_LEN, ms) != 0)
        return -1;
    *full = n == SS_ISO_LEN;
    return 0;
}

static int tcmp(const char *a, size_t an, const char *b, size_t bn)
{
    int k = memcmp(a, b, an < bn ? an : bn);
    return k ? k : an < bn ? -1 : an > bn;
}

static void add_bound(fx_cursor *c, char op, sqlite3_value *v)
{
    if (sqlite3_value_type(v) == SQLITE_NULL) {
        c->empty = 1;
        return;
    }
    const char *s = (const char *)sqlite3_value_text(v);
    size_t n = (size_t)sqlite3_value_bytes(v);
    int64_t ms;
    int full;
    if (s && bound_time(s, n, &ms, &full) == 0) {
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        switch (op) {
        case '=':
            if (full)
                lo = hi = ms;
            else
                c->empty = 1;
            break;
        case 'g':
            lo = ms;
            break;
        case '>':
            lo = full ? ms + 1 : ms;
            break;
        case '<':
            hi = ms - 1;
            break;
        default: /* <= */
            hi = full ? ms : ms - 1;
        }
        if (lo > c->lo)
            c->lo = lo;
        if (hi < c->hi)
            c->hi = hi;
        return;
    }
    if (c->ntb < MAX_CONS && s) {
        fx_tbound *b = &c->tb[c->ntb++];
        b->op = op;
        b->n = n;
        b->s = malloc(n + 1);
        memcpy(b->s, s, n);
    }
}

static int load_blocks(fx_cursor *c, fx_vtab *vt)
{
    char sql[160];
    snprintf(sql, sizeof sql,
             "SELECT id, min_ts, max_ts FROM %s WHERE max_ts >= ?1 AND min_ts <= ?2",
             vt->t->blocks);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(vt->db, sql, -1, &q, NULL) != SQLITE_OK) {
        vt->base.zErrMsg = sqlite3_mprintf("%s", sqlite3_errmsg(vt->db));
        return SQLITE_ERROR;
    }
    sqlite3_bind_int64(q, 1, c->lo);
    sqlite3_bind_int64(q, 2, c->hi);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (c->nblk == cap) {
            cap = cap ? 2 * cap : 64;
            fx_blk *b = realloc(c->blks, cap * sizeof *b);
            if (!b) {
                sqlite3_finalize(q);
                return SQLITE_NOMEM;
            }
            c->blks = b;
        }
        c->blks[c->nblk++] = (fx_blk){sqlite3_column_int64(q, 0), sqlite3_column_int64(q, 1),
                                      sqlite3_column_int64(q, 2)};
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        vt->base.zErrMsg = sqlite3_mprintf("%s", sqlite3_errmsg(vt->db));
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

static int by_min(const void *a, const void *b)
{
    const fx_blk *x = a, *y = b;
    return x->min_ts != y->min_ts ? (x->min_ts < y->min_ts ? -1 : 1) : (x->id < y->id ? -1 : 1);
}

static int by_max_desc(const void *a, const void *b)
{
    const fx_blk *x = a, *y = b;
    return x->max_ts != y->max_ts ? (x->max_ts > y->max_ts ? -1 : 1) : (x->id > y->id ? -1 : 1);
}

static int64_t row_ts(const fx_src *s, int64_t r)
{
    return s->d.ints[SS_BCOL_TS][r];
}

/* Orders two sources' current rows by (ts, event_id), in the scan's order. */
static int src_before(const fx_cursor *c, const fx_src *a, const fx_src *b)
{
    int64_t x = row_ts(a, a->row), y = row_ts(b, b->row);
    int k = x != y ? (x < y ? -1 : 1) : 0;
    if (!k) {
        const ss_str *p = &a->d.strs[SS_BCOL_EVENT_ID][a->row],
                     *q = &b->d.strs[SS_BCOL_EVENT_ID][b->row];
        k = tcmp(p->p, p->n, q->p, q->n);
    }
    return c->order < 0 ? k > 0 : k < 0;
}

static void heap_up(fx_cursor *c, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!src_before(c, c->src[i], c->src[p]))
            break;
        fx_src *t = c->src[i];
        c->src[i] = c->src[p];
        c->src[p] = t;
        i = p;
    }
}

static void heap_down(fx_cursor *c, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->nsrc && src_before(c, c->src[l], c->src[m]))
            m = l;
        if (r < c->nsrc && src_before(c, c->src[r], c->src[m]))
            m = r;
        if (m == i)
            break;
        fx_src *t = c->src[i];
        c->src[i] = c->src[m];
        c->src[m] = t;
        i = m;
    }
}

/* First row at or after lo (ascending) or last at or before hi. */
static void position(fx_cursor *c, fx_src *s)
{
    int64_t n = s->d.n, a = 0, b = n;
    while (a < b) { /* first row with ts >= lo */
        int64_t m = (a + b) / 2;
        if (row_ts(s, m) < c->lo)
            a = m + 1;
        else
            b = m;
    }
    int64_t first = a;
    a = first, b = n;
    while (a < b) { /* first row with ts > hi */
        int64_t m = (a + b) / 2;
        if (row_ts(s, m) <= c->hi)
            a = m + 1;
        else
            b = m;
    }
    int64_t past = a;
    if (c->order < 0) {
        s->row = past - 1;
        s->end = first - 1;
    } else {
        s->row = first;
        s->end = past;
    }
}

static int src_done(const fx_cursor *c, const fx_src *s)
{
    return c->order < 0 ? s->row <= s->end : s->row >= s->end;
}

/* Reads block b into a source positioned at its first row in range; NULL
 * with *rc SQLITE_OK when none is. */
static fx_src *open_block(fx_cursor *c, fx_vtab *vt, const fx_blk *b, int *rc)
{
    *rc = SQLITE_OK;
    sqlite3_bind_int64(c->fetch, 1, b->id);
    int st = sqlite3_step(c->fetch);
    if (st != SQLITE_ROW) {
        sqlite3_reset(c->fetch);
        if (st != SQLITE_DONE) {
            vt->base.zErrMsg = sqlite3_mprintf("%s", sqlite3_errmsg(vt->db));
            *rc = SQLITE_ERROR;
        }
        return NULL;
    }
    fx_src *s = c->npool ? c->pool[--c->npool] : calloc(1, sizeof *s);
    if (!s) {
        sqlite3_reset(c->fetch);
        *rc = SQLITE_NOMEM;
        return NULL;
    }
    if (!s->d.t) {
        ss_block_dec_init(&s->d, vt->t);
        s->d.intern = vt->intern;
    }
    int bad = ss_block_dec_load(&s->d, sqlite3_column_blob(c->fetch, 0),
                                (size_t)sqlite3_column_bytes(c->fetch, 0)) ||
              ss_block_dec_col(&s->d, SS_BCOL_TS) || ss_block_dec_col(&s->d, SS_BCOL_EVENT_ID);
    sqlite3_reset(c->fetch);
    if (bad) {
        vt->base.zErrMsg =
            sqlite3_mprintf("block %lld of %s is damaged", (long long)b->id, vt->t->blocks);
        release(c, s);
        *rc = SQLITE_CORRUPT;
        return NULL;
    }
    s->id = b->id;
    position(c, s);
    if (src_done(c, s)) {
        release(c, s);
        return NULL;
    }
    return s;
}

static int push(fx_cursor *c, fx_src *s)
{
    if (c->nsrc == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        fx_src **a = realloc(c->src, cap * sizeof *a);
        if (!a)
            return SQLITE_NOMEM;
        c->src = a;
        c->cap = cap;
    }
    c->src[c->nsrc++] = s;
    if (c->order)
        heap_up(c, c->nsrc - 1);
    return SQLITE_OK;
}

/* Whether the row passes the bounds that are compared as text. */
static int text_ok(fx_cursor *c, const fx_src *s, int64_t r)
{
    if (!c->ntb)
        return 1;
    char t[SS_ISO_LEN];
    ss_time_format_iso(row_ts(s, r), t);
    for (int i = 0; i < c->ntb; i++) {
        int k = tcmp(t, SS_ISO_LEN, c->tb[i].s, c->tb[i].n);
        char op = c->tb[i].op;
        if ((op == '=' && k != 0) || (op == '<' && k >= 0) || (op == 'l' && k > 0) ||
            (op == '>' && k <= 0) || (op == 'g' && k < 0))
            return 0;
    }
    return 1;
}

/* Moves to the next row: in block order when unordered, else the head of
 * the merge once every block that may hold an earlier row is open. */
static int step(fx_cursor *c)
{
    fx_vtab *vt = (fx_vtab *)c->base.pVtab;
    int rc;
    for (;;) {
        if (c->cur) {
            fx_src *s = c->cur;
            c->cur = NULL;
            s->row += c->order < 0 ? -1 : 1;
            if (src_done(c, s))
                release(c, s);
            else if ((rc = push(c, s)) != SQLITE_OK)
                return rc;
        }
        if (!c->order) {
            while (!c->nsrc && c->next < c->nblk) {
                fx_src *s = open_block(c, vt, &c->blks[c->next++], &rc);
                if (rc)
                    return rc;
                if (s && (rc = push(c, s)) != SQLITE_OK)
                    return rc;
            }
        } else {
            while (c->next < c->nblk) {
                const fx_blk *b = &c->blks[c->next];
                if (c->nsrc) {
                    int64_t head = row_ts(c->src[0], c->src[0]->row);
                    if (c->order > 0 ? b->min_ts > head : b->max_ts < head)
                        break;
                }
                c->next++;
                fx_src *s = open_block(c, vt, b, &rc);
                if (rc)
                    return rc;
                if (s && (rc = push(c, s)) != SQLITE_OK)
                    return rc;
            }
        }
        if (!c->nsrc) {
            c->eof = 1;
            return SQLITE_OK;
        }
        fx_src *s = c->src[0];
        c->src[0] = c->src[--c->nsrc];
        if (c->order && c->nsrc)
            heap_down(c, 0);
        c->cur = s;
        c->cur_row = s->row;
        if (text_ok(c, s, s->row))
            return SQLITE_OK;
    }
}

static int fx_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
                     sqlite3_value **argv)
{
    fx_cursor *c = (fx_cursor *)cur;
    fx_vtab *vt = (fx_vtab *)cur->pVtab;
    if (!c->pool && !(c->pool = malloc(16 * sizeof *c->pool)))
        return SQLITE_NOMEM;
    /* A read after a DELETE in the same transaction sees it, unless another
     * scan of the table is under way (its blocks must stay as it found them:
     * the rows go at commit). */
    if (vt->ngone && vt->ncur == 1) {
        int rc = take_out(vt);
        if (rc)
            return rc;
    }
    cursor_reset(c);
    c->lo = INT64_MIN;
    c->hi = INT64_MAX;
    c->empty = 0;
    c->order = idx_num - 1;
    for (int i = 0; i < argc && idx_str && idx_str[i]; i++)
        add_bound(c, idx_str[i], argv[i]);
    if (c->empty || c->lo > c->hi)
        return SQLITE_OK;
    int rc = load_blocks(c, vt);
    if (rc)
        return rc;
    if (c->order > 0 && c->nblk > 1)
        qsort(c->blks, c->nblk, sizeof *c->blks, by_min);
    else if (c->order < 0 && c->nblk > 1)
        qsort(c->blks, c->nblk, sizeof *c->blks, by_max_desc);
    c->eof = 0;
    return step(c);
}

static int fx_next(sqlite3_vtab_cursor *cur)
{
    return step((fx_cursor *)cur);
}

static int fx_eof(sqlite3_vtab_cursor *cur)
{
    return ((fx_cursor *)cur)->eof;
}

static int fx_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i)
{
    fx_cursor *c = (fx_cursor *)cur;
    fx_vtab *vt = (fx_vtab *)cur->pVtab;
    fx_src *s = c->cur;
    int64_t r = c->cur_row;
    if (i < 0 || i >= vt->t->ncol)
        return SQLITE_RANGE;
    if (ss_block_dec_col(&s->d, i)) {
        sqlite3_result_error(ctx, "damaged block", -1);
        return SQLITE_CORRUPT;
    }
    switch (vt->t->cols[i].kind) {
    case SS_BK_TS:
        if (c->ts_src != s || c->ts_row_of != r) {
            ss_time_format_iso(s->d.ints[i][r], c->ts);
            c->ts_src = s;
            c->ts_row_of = r;
        }
        sqlite3_result_text(ctx, c->ts, SS_ISO_LEN, SQLITE_TRANSIENT);
        break;
    case SS_BK_INT:
        sqlite3_result_int64(ctx, s->d.ints[i][r]);
        break;
    default: {
        const ss_str *v = &s->d.strs[i][r];
        if (v->p)
            sqlite3_result_text(ctx, v->p, (int)v->n,
                                s->d.interned & (1u << i) ? SQLITE_STATIC : SQLITE_TRANSIENT);
        else
            sqlite3_result_null(ctx);
    }
    }
    return SQLITE_OK;
}

static int fx_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    fx_cursor *c = (fx_cursor *)cur;
    *rowid = c->cur->id * FX_ROWS_PER_BLOCK + c->cur_row;
    return SQLITE_OK;
}

/* ---- DELETE ----
 * Rows are deleted from a table by rewriting their blocks without them
 * (block_store.h). xUpdate notes the rowids; the blocks are rewritten once
 * per statement's worth of rows: before the transaction commits, or before
 * the next scan. Rows are written by `shopstream process` only: INSERT and
 * UPDATE are refused. */

typedef struct fx_gone {
    const int64_t *rows; /* rowids of one block, sorted */
    size_t n;
} fx_gone;

static int gone_row(void *ctx, const ss_block_dec *d, uint32_t r)
{
    (void)d;
    const fx_gone *g = ctx;
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int64_t x = g->rows[mid] % FX_ROWS_PER_BLOCK;
        if (x == r)
            return 1;
        if (x < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

static int by_rowid(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int take_out(fx_vtab *vt)
{
    qsort(vt->gone, vt->ngone, sizeof *vt->gone, by_rowid);
    int rc = SQLITE_OK;
    int64_t dropped = 0;
    for (size_t i = 0; i < vt->ngone && rc == SQLITE_OK;) {
        int64_t id = vt->gone[i] / FX_ROWS_PER_BLOCK;
        size_t j = i;
        while (j < vt->ngone && vt->gone[j] / FX_ROWS_PER_BLOCK == id)
            j++;
        fx_gone g = {vt->gone + i, j - i};
        char *err = NULL;
        rc = ss_block_rewrite(vt->db, vt->t, id, gone_row, &g, &dropped, &err);
        if (rc != SQLITE_OK) {
            sqlite3_free(vt->base.zErrMsg);
            vt->base.zErrMsg = err;
        } else {
            sqlite3_free(err);
        }
        i = j;
    }
    vt->ngone = 0;
    return rc;
}

static int fx_update(sqlite3_vtab *vtab, int argc, sqlite3_value **argv, sqlite3_int64 *rowid)
{
    (void)rowid;
    fx_vtab *vt = (fx_vtab *)vtab;
    if (argc != 1) {
        sqlite3_free(vtab->zErrMsg);
        vtab->zErrMsg = sqlite3_mprintf("%s: rows are written by shopstream process; a table "
                                        "of facts takes DELETE only",
                                        vt->t->data);
        return SQLITE_READONLY;
    }
    if (vt->ngone == vt->capgone) {
        size_t cap = vt->capgone ? 2 * vt->capgone : 256;
        int64_t *g = realloc(vt->gone, cap * sizeof *g);
        if (!g)
            return SQLITE_NOMEM;
        vt->gone = g;
        vt->capgone = cap;
    }
    vt->gone[vt->ngone++] = sqlite3_value_int64(argv[0]);
    return SQLITE_OK;
}

static int fx_sync(sqlite3_vtab *vtab)
{
    fx_vtab *vt = (fx_vtab *)vtab;
    return vt->ngone ? take_out(vt) : SQLITE_OK;
}

static int fx_rollback(sqlite3_vtab *vtab)
{
    ((fx_vtab *)vtab)->ngone = 0;
    return SQLITE_OK;
}

static int fx_nothing(sqlite3_vtab *vtab)
{
    (void)vtab;
    return SQLITE_OK;
}

static const sqlite3_module fx_module = {
    .iVersion = 0,
    .xCreate = fx_connect,
    .xConnect = fx_connect,
    .xBestIndex = fx_best_index,
    .xDisconnect = fx_disconnect,
    .xDestroy = fx_disconnect,
    .xOpen = fx_open,
    .xClose = fx_close,
    .xFilter = fx_filter,
    .xNext = fx_next,
    .xEof = fx_eof,
    .xColumn = fx_column,
    .xRowid = fx_rowid,
    .xUpdate = fx_update,
    .xBegin = fx_nothing,
    .xSync = fx_sync,
    .xCommit = fx_nothing,
    .xRollback = fx_rollback,
};

int ss_facts_scan(sqlite3 *db, const ss_block_table *t, int64_t from, int64_t to,
                  ss_facts_row_fn row, void *ctx, char **err)
{
    fx_vtab vt = {.db = db, .t = t};
    sqlite3_vtab_cursor *cur;
    int rc = fx_open(&vt.base, &cur);
    if (rc) {
        *err = vt.base.zErrMsg;
        return rc;
    }
    cur->pVtab = &vt.base;
    fx_cursor *c = (fx_cursor *)cur;
    rc = (c->pool = malloc(16 * sizeof *c->pool)) ? SQLITE_OK : SQLITE_NOMEM;
    c->lo = from;
    c->hi = to - 1;
    c->order = 1;
    rc = rc ? rc : load_blocks(c, &vt);
    if (rc == SQLITE_OK) {
        if (c->nblk > 1)
            qsort(c->blks, c->nblk, sizeof *c->blks, by_min);
        c->eof = 0;
        rc = step(c);
    }
    while (rc == SQLITE_OK && !c->eof) {
        rc = row(ctx, &c->cur->d, (uint32_t)c->cur_row);
        rc = rc ? rc : step(c);
    }
    fx_close(cur);
    *err = vt.base.zErrMsg;
    return rc;
}

int ss_hot_facts_register(sqlite3 *db)
{
    return sqlite3_create_module_v2(db, "ss_facts", &fx_module, NULL, NULL);
}

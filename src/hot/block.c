/* Fact blocks (block.h): the tables' columns, the encoder and the decoder.
 *
 * A block is: a version byte (1), varint rows, varint columns, a varint
 * length per column section, then the sections in column order:
 *   ID    per row: varint length shared with the row before, varint length
 *         of the rest, the rest;
 *   TS    the first time as a zigzag varint, then varint deltas (rows are
 *         sorted by time);
 *   DICT  varint count of distinct values, each as varint length and bytes,
 *         then per row a varint: 0 for NULL, k for the k-th value;
 *   INT   per row a zigzag varint. */
#include "hot/block.h"

#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/intern.h"
#include "common/mem.h"

#define BLOCK_VERSION 1

static const ss_block_col order_cols[] = {
    {"event_id", SS_BK_ID},
    {"order_id", SS_BK_ID},
    {"ts", SS_BK_TS},
    {"customer_id", SS_BK_ID},
    {"customer_segment", SS_BK_DICT},
    {"product_id", SS_BK_DICT},
    {"product_name", SS_BK_DICT},
    {"category", SS_BK_DICT},
    {"city", SS_BK_DICT},
    {"country", SS_BK_DICT},
    {"quantity", SS_BK_INT},
    {"unit_price_cents", SS_BK_INT},
    {"amount_cents", SS_BK_INT},
    {"discount_cents", SS_BK_INT},
    {"tax_cents", SS_BK_INT},
    {"shipping_cents", SS_BK_INT},
    {"total_price_cents", SS_BK_INT},
    {"currency", SS_BK_DICT},
    {"payment_method", SS_BK_DICT},
};

static const ss_block_col payment_cols[] = {
    {"event_id", SS_BK_ID},         {"order_id", SS_BK_ID},      {"ts", SS_BK_TS},
    {"payment_method", SS_BK_DICT}, {"amount_cents", SS_BK_INT}, {"status", SS_BK_DICT},
    {"failure_reason", SS_BK_DICT}, {"attempt", SS_BK_INT},      {"city", SS_BK_DICT},
    {"country", SS_BK_DICT},        {"category", SS_BK_DICT},
};

static const ss_block_col cancellation_cols[] = {
    {"event_id", SS_BK_ID},  {"order_id", SS_BK_ID},      {"ts", SS_BK_TS},
    {"reason", SS_BK_DICT},  {"refund_cents", SS_BK_INT}, {"city", SS_BK_DICT},
    {"country", SS_BK_DICT}, {"category", SS_BK_DICT},    {"payment_method", SS_BK_DICT},
};

#define NCOLS(a) ((int)(sizeof a / sizeof a[0]))

const ss_block_table ss_block_tables[SS_BLOCK_NTABLES] = {
    {"orders", "orders_blocks", "orders_data", NCOLS(order_cols), order_cols},
    {"payments", "payments_blocks", "payments_data", NCOLS(payment_cols), payment_cols},
    {"cancellations", "cancellations_blocks", "cancellations_data", NCOLS(cancellation_cols),
     cancellation_cols},
};

const ss_block_table *ss_block_table_named(const char *name)
{
    for (int i = 0; i < SS_BLOCK_NTABLES; i++)
        if (!strcmp(ss_block_tables[i].name, name))
            return &ss_block_tables[i];
    return NULL;
}

int ss_block_col_index(const ss_block_table *t, const char *name)
{
    for (int i = 0; i < t->ncol; i++)
        if (!strcmp(t->cols[i].name, name))
            return i;
    return -1;
}

const ss_block_table *ss_block_row_of(const ss_event *ev, const ss_attrib *at,
                                      ss_bval v[SS_BLOCK_MAXCOL])
{
    v[0].s = ev->event_id;
    v[1].s = ev->order_id;
    v[2].i = ev->ts;
    switch (ev->type) {
    case SS_EV_ORDER: {
        const ss_order *o = &ev->u.order;
        v[3].s = o->customer_id;
        v[4].s = o->customer_segment;
        v[5].s = o->product_id;
        v[6].s = o->product_name;
        v[7].s = o->category;
        v[8].s = o->city;
        v[9].s = o->country;
        v[10].i = o->quantity;
        v[11].i = o->unit_price;
        v[12].i = o->amount;
        v[13].i = o->discount;
        v[14].i = o->tax;
        v[15].i = o->shipping;
        v[16].i = o->total_price;
        v[17].s = o->currency;
        v[18].s = o->payment_method;
        return &ss_block_tables[0];
    }
    case SS_EV_PAYMENT: {
        const ss_payment *p = &ev->u.payment;
        v[3].s = p->payment_method;
        v[4].i = p->amount;
        v[5].s = p->success ? SS_STR("success") : SS_STR("failed");
        v[6].s = p->success ? (ss_str){NULL, 0} : p->failure_reason;
        v[7].i = p->attempt;
        v[8].s = at->city;
        v[9].s = at->country;
        v[10].s = at->category;
        return &ss_block_tables[1];
    }
    default: {
        const ss_cancellation *c = &ev->u.cancel;
        v[3].s = c->reason;
        v[4].i = c->refund;
        v[5].s = at->city;
        v[6].s = at->country;
        v[7].s = at->category;
        v[8].s = at->payment_method;
        return &ss_block_tables[2];
    }
    }
}

/* ---- varints ---- */

static void put_varint(ss_buf *b, uint64_t v)
{
    ss_buf_reserve(b, 10);
    uint8_t *p = (uint8_t *)b->data + b->len;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    b->len = (size_t)((char *)p - b->data);
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Reads a varint at *p (before end); -1 when it runs past end or is too long. */
static inline int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    const uint8_t *q = *p;
    if (q < end && *q < 0x80) {
        *out = *q;
        *p = q + 1;
        return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (q >= end)
            return -1;
        uint8_t c = *q++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (c < 0x80) {
            *out = v;
            *p = q;
            return 0;
        }
    }
    return -1;
}

/* ---- encoder ---- */

void ss_block_enc_init(ss_block_enc *e, const ss_block_table *t)
{
    memset(e, 0, sizeof *e);
    e->t = t;
    ss_buf_init(&e->arena, 4096);
    e->min_ts = INT64_MAX;
    e->max_ts = INT64_MIN;
}

void ss_block_enc_free(ss_block_enc *e)
{
    free(e->cells);
    free(e->order);
    free(e->remap);
    for (int c = 0; c < SS_BLOCK_MAXCOL; c++) {
        free(e->dict[c].tab);
        free(e->dict[c].vals);
    }
    ss_buf_free(&e->arena);
    memset(e, 0, sizeof *e);
}

static ss_block_cell *cell(const ss_block_enc *e, size_t c, size_t r)
{
    return e->cells + c * e->cap + r;
}

static void dict_place(ss_block_dict *d, const char *arena, uint32_t code)
{
    const ss_block_cell *v = &d->vals[code - 1];
    size_t j = ss_hash_bytes(arena + v->off, v->len, 3) & (d->cap - 1);
    while (d->tab[j])
        j = (j + 1) & (d->cap - 1);
    d->tab[j] = code;
}

static void dict_rebuild(ss_block_dict *d, const char *arena, size_t cap)
{
    free(d->tab);
    d->cap = cap;
    d->tab = ss_calloc(cap, sizeof *d->tab);
    for (uint32_t k = 1; k <= d->n; k++)
        dict_place(d, arena, k);
}

/* The code of s in column dictionary d, adding it to the arena when new. */
static uint32_t dict_code(ss_block_dict *d, ss_buf *arena, ss_str s)
{
    if (2 * (d->n + 1) > d->cap)
        dict_rebuild(d, arena->data, d->cap ? 2 * d->cap : 64);
    size_t j = ss_hash_bytes(s.p, s.n, 3) & (d->cap - 1);
    for (; d->tab[j]; j = (j + 1) & (d->cap - 1)) {
        const ss_block_cell *v = &d->vals[d->tab[j] - 1];
        if (v->len == s.n && memcmp(arena->data + v->off, s.p, s.n) == 0)
            return d->tab[j];
    }
    if (d->n == d->vcap) {
        d->vcap = d->vcap ? 2 * d->vcap : 32;
        d->vals = ss_realloc(d->vals, d->vcap * sizeof *d->vals);
    }
    d->vals[d->n] = (ss_block_cell){.off = (uint32_t)arena->len, .len = s.n};
    ss_buf_put(arena, s.p, s.n);
    d->tab[j] = ++d->n;
    return d->n;
}

static void grow_rows(ss_block_enc *e)
{
    size_t nc = (size_t)e->t->ncol, cap = e->cap ? e->cap * 2 : 256;
    ss_block_cell *cells = ss_malloc(cap * nc * sizeof *cells);
    for (size_t c = 0; c < nc && e->n; c++)
        memcpy(cells + c * cap, cell(e, c, 0), e->n * sizeof *cells);
    free(e->cells);
    e->cells = cells;
    e->cap = cap;
}

void ss_block_enc_add(ss_block_enc *e, const ss_bval *v)
{
    int nc = e->t->ncol;
    if (e->n == e->cap)
        grow_rows(e);
    for (int c = 0; c < nc; c++) {
        ss_block_cell *x = cell(e, (size_t)c, e->n);
        int kind = e->t->cols[c].kind;
        if (kind == SS_BK_TS || kind == SS_BK_INT) {
            *x = (ss_block_cell){.i = v[c].i};
        } else if (!v[c].s.p) {
            *x = (ss_block_cell){.len = UINT32_MAX};
        } else if (kind == SS_BK_DICT) {
            *x = (ss_block_cell){.i = dict_code(&e->dict[c], &e->arena, v[c].s)};
        } else {
            *x = (ss_block_cell){.off = (uint32_t)e->arena.len, .len = v[c].s.n};
            ss_buf_put(&e->arena, v[c].s.p, v[c].s.n);
        }
    }
    int64_t ts = v[SS_BCOL_TS].i;
    if (ts < e->min_ts)
        e->min_ts = ts;
    if (ts > e->max_ts)
        e->max_ts = ts;
    e->n++;
}

static void recompute_range(ss_block_enc *e)
{
    e->min_ts = INT64_MAX;
    e->max_ts = INT64_MIN;
    for (size_t r = 0; r < e->n; r++) {
        int64_t ts = cell(e, SS_BCOL_TS, r)->i;
        if (ts < e->min_ts)
            e->min_ts = ts;
        if (ts > e->max_ts)
            e->max_ts = ts;
    }
}

void ss_block_enc_truncate(ss_block_enc *e, size_t n, size_t arena_len)
{
    if (n >= e->n)
        return;
    e->n = n;
    e->arena.len = arena_len;
    /* Dictionary values added after the mark leave with their bytes. */
    for (int c = 0; c < e->t->ncol; c++) {
        ss_block_dict *d = &e->dict[c];
        uint32_t keep = d->n;
        while (keep > 0 && d->vals[keep - 1].off >= arena_len)
            keep--;
        if (keep < d->n) {
            d->n = keep;
            dict_rebuild(d, e->arena.data, d->cap);
        }
    }
    recompute_range(e);
}

void ss_block_enc_reset(ss_block_enc *e)
{
    ss_block_enc_truncate(e, 0, 0);
}

static int row_cmp(const ss_block_enc *e, uint32_t a, uint32_t b)
{
    int64_t ta = cell(e, SS_BCOL_TS, a)->i, tb = cell(e, SS_BCOL_TS, b)->i;
    if (ta != tb)
        return ta < tb ? -1 : 1;
    const ss_block_cell *x = cell(e, 0, a), *y = cell(e, 0, b);
    uint32_t n = x->len < y->len ? x->len : y->len;
    int k = memcmp(e->arena.data + x->off, e->arena.data + y->off, n);
    if (k)
        return k;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* Rows into e->order by (ts, event_id): a bottom-up merge sort, which runs
 * in one pass over rows that arrive in order, as most do. */
static void sort_rows(ss_block_enc *e)
{
    size_t n = e->n;
    e->order = ss_realloc(e->order, 2 * (n ? n : 1) * sizeof *e->order);
    uint32_t *a = e->order, *b = e->order + n;
    for (size_t i = 0; i < n; i++)
        a[i] = (uint32_t)i;
    for (size_t w = 1; w < n; w *= 2) {
        int sorted = 1;
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            if (mid < hi && row_cmp(e, a[mid - 1], a[mid]) > 0)
                sorted = 0;
            while (i < mid && j < hi)
                b[k++] = row_cmp(e, a[j], a[i]) < 0 ? a[j++] : a[i++];
            while (i < mid)
                b[k++] = a[i++];
            while (j < hi)
                b[k++] = a[j++];
        }
        uint32_t *t = a;
        a = b;
        b = t;
        if (sorted && w == 1) {
            /* The first pass found every pair in order: a run check of the
             * whole array decides whether the rest is needed. */
            size_t i = 1;
            while (i < n && row_cmp(e, a[i - 1], a[i]) <= 0)
                i++;
            if (i == n)
                break;
        }
    }
    if (a != e->order)
        memcpy(e->order, a, n * sizeof *a);
}

/* A dictionary column: its values in order of first use by the sorted rows,
 * then each row's code in that numbering (0: NULL). */
static void encode_dict(ss_block_enc *e, int c, ss_buf *sec)
{
    const ss_block_dict *d = &e->dict[c];
    e->remap = ss_realloc(e->remap, (d->n + 1) * sizeof *e->remap);
    memset(e->remap, 0, (d->n + 1) * sizeof *e->remap);
    uint32_t ndict = 0;
    ss_buf vals, codes;
    ss_buf_init(&vals, 256);
    ss_buf_init(&codes, e->n + 16);
    for (size_t r = 0; r < e->n; r++) {
        const ss_block_cell *x = cell(e, (size_t)c, e->order[r]);
        uint32_t code = 0;
        if (x->len != UINT32_MAX) {
            uint32_t k = (uint32_t)x->i;
            if (!e->remap[k]) {
                e->remap[k] = ++ndict;
                const ss_block_cell *v = &d->vals[k - 1];
                put_varint(&vals, v->len);
                ss_buf_put(&vals, e->arena.data + v->off, v->len);
            }
            code = e->remap[k];
        }
        put_varint(&codes, code);
    }
    put_varint(sec, ndict);
    ss_buf_put(sec, vals.data, vals.len);
    ss_buf_put(sec, codes.data, codes.len);
    ss_buf_free(&vals);
    ss_buf_free(&codes);
}

void ss_block_encode(ss_block_enc *e, ss_buf *out)
{
    size_t n = e->n, nc = (size_t)e->t->ncol;
    sort_rows(e);
    ss_buf sec[SS_BLOCK_MAXCOL];
    for (size_t c = 0; c < nc; c++) {
        ss_buf *s = &sec[c];
        ss_buf_init(s, 64 + n * 4);
        switch (e->t->cols[c].kind) {
        case SS_BK_ID: {
            const char *prev = NULL;
            uint32_t plen = 0;
            for (size_t r = 0; r < n; r++) {
                const ss_block_cell *x = cell(e, c, e->order[r]);
                const char *p = e->arena.data + x->off;
                uint32_t k = 0, m = x->len < plen ? x->len : plen;
                while (k < m && p[k] == prev[k])
                    k++;
                put_varint(s, k);
                put_varint(s, x->len - k);
                ss_buf_put(s, p + k, x->len - k);
                prev = p, plen = x->len;
            }
            break;
        }
        case SS_BK_TS: {
            int64_t last = 0;
            for (size_t r = 0; r < n; r++) {
                int64_t ts = cell(e, c, e->order[r])->i;
                if (r == 0)
                    put_varint(s, zigzag(ts));
                else
                    put_varint(s, (uint64_t)(ts - last));
                last = ts;
            }
            break;
        }
        case SS_BK_DICT:
            encode_dict(e, (int)c, s);
            break;
        default:
            for (size_t r = 0; r < n; r++)
                put_varint(s, zigzag(cell(e, c, e->order[r])->i));
        }
    }
    out->len = 0;
    ss_buf_putc(out, BLOCK_VERSION);
    put_varint(out, n);
    put_varint(out, nc);
    for (size_t c = 0; c < nc; c++)
        put_varint(out, sec[c].len);
    for (size_t c = 0; c < nc; c++) {
        ss_buf_put(out, sec[c].data, sec[c].len);
        ss_buf_free(&sec[c]);
    }
}

/* ---- decoder ---- */

void ss_block_dec_init(ss_block_dec *d, const ss_block_table *t)
{
    memset(d, 0, sizeof *d);
    d->t = t;
}

void ss_block_dec_free(ss_block_dec *d)
{
    free(d->data);
    for (int c = 0; c < SS_BLOCK_MAXCOL; c++) {
        free(d->ints[c]);
        free(d->strs[c]);
        ss_buf_free(&d->ids[c]);
    }
    memset(d, 0, sizeof *d);
}

int ss_block_dec_load(ss_block_dec *d, const void *data, size_t len)
{
    if (d->cap < len) {
        d->cap = len + len / 4;
        free(d->data);
        d->data = ss_malloc(d->cap);
    }
    d->len = len;
    d->done = 0;
    d->n = 0;
    if (!len)
        return -1;
    memcpy(d->data, data, len);
    const uint8_t *p = d->data, *end = d->data + len;
    uint64_t n, nc;
    if (p >= end || *p++ != BLOCK_VERSION || get_varint(&p, end, &n) || n > SS_BLOCK_ROWS * 64 ||
        get_varint(&p, end, &nc) || nc != (uint64_t)d->t->ncol)
        return -1;
    uint64_t at = 0, lens[SS_BLOCK_MAXCOL];
    for (uint64_t c = 0; c < nc; c++) {
        if (get_varint(&p, end, &lens[c]) || lens[c] > len)
            return -1;
        at += lens[c];
    }
    if (at != (uint64_t)(end - p))
        return -1;
    uint32_t off = (uint32_t)(p - d->data);
    for (uint64_t c = 0; c < nc; c++) {
        d->sec_off[c] = off;
        d->sec_len[c] = (uint32_t)lens[c];
        off += (uint32_t)lens[c];
    }
    d->n = (uint32_t)n;
    return 0;
}

static void ensure_rows(ss_block_dec *d, int c, int ints)
{
    if (d->rows_cap[c] >= d->n && (ints ? d->ints[c] != NULL : d->strs[c] != NULL))
        return;
    size_t cap = d->n > d->rows_cap[c] ? d->n : d->rows_cap[c];
    if (!cap)
        cap = 1;
    if (ints)
        d->ints[c] = ss_realloc(d->ints[c], cap * sizeof *d->ints[c]);
    else
        d->strs[c] = ss_realloc(d->strs[c], cap * sizeof *d->strs[c]);
    d->rows_cap[c] = cap;
}

int ss_block_dec_col(ss_block_dec *d, int c)
{
    if (c < 0 || c >= d->t->ncol)
        return -1;
    if (d->done & (1u << c))
        return 0;
    const uint8_t *p = d->data + d->sec_off[c], *end = p + d->sec_len[c];
    uint32_t n = d->n;
    uint64_t v;
    switch (d->t->cols[c].kind) {
    case SS_BK_ID: {
        ensure_rows(d, c, 0);
        ss_buf *b = &d->ids[c];
        if (!b->data)
            ss_buf_init(b, d->sec_len[c] * 4 + 64);
        b->len = 0;
        /* Offsets first, pointers once the buffer has stopped growing. */
        size_t prev_off = 0, prev_len = 0;
        for (uint32_t r = 0; r < n; r++) {
            uint64_t k, m;
            if (get_varint(&p, end, &k) || get_varint(&p, end, &m) || k > prev_len ||
                m > (uint64_t)(end - p))
                return -1;
            size_t at = b->len;
            ss_buf_reserve(b, k + m);
            memmove(b->data + at, b->data + prev_off, k);
            memcpy(b->data + at + k, p, m);
            b->len += k + m;
            p += m;
            d->strs[c][r] = (ss_str){(const char *)(uintptr_t)at, (uint32_t)(k + m)};
            prev_off = at, prev_len = k + m;
        }
        for (uint32_t r = 0; r < n; r++)
            d->strs[c][r].p = b->data + (uintptr_t)d->strs[c][r].p;
        break;
    }
    case SS_BK_TS: {
        ensure_rows(d, c, 1);
        int64_t t = 0;
        for (uint32_t r = 0; r < n; r++) {
            if (get_varint(&p, end, &v))
                return -1;
            t = r == 0 ? unzigzag(v) : t + (int64_t)v;
            d->ints[c][r] = t;
        }
        break;
    }
    case SS_BK_DICT: {
        ensure_rows(d, c, 0);
        uint64_t nd;
        if (get_varint(&p, end, &nd) || nd > n)
            return -1;
        ss_str *vals = ss_malloc((nd + 1) * sizeof *vals);
        vals[0] = (ss_str){NULL, 0};
        for (uint64_t k = 1; k <= nd; k++) {
            if (get_varint(&p, end, &v) || v > (uint64_t)(end - p)) {
                free(vals);
                return -1;
            }
            vals[k] = (ss_str){(const char *)p, (uint32_t)v};
            p += v;
        }
        if (d->intern) {
            int all = 1;
            for (uint64_t k = 1; k <= nd; k++) {
                const char *kept = ss_intern(d->intern, vals[k].p, vals[k].n);
                if (kept)
                    vals[k].p = kept;
                else
                    all = 0;
            }
            if (all)
                d->interned |= 1u << c;
        }
        for (uint32_t r = 0; r < n; r++) {
            if (get_varint(&p, end, &v) || v > nd) {
                free(vals);
                return -1;
            }
            d->strs[c][r] = vals[v];
        }
        free(vals);
        break;
    }
    default:
        ensure_rows(d, c, 1);
        for (uint32_t r = 0; r < n; r++) {
            if (get_varint(&p, end, &v))
                return -1;
            d->ints[c][r] = unzigzag(v);
        }
    }
    if (p != end)
        return -1;
    d->done |= 1u << c;
    return 0;
}

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
    ss_buf_free(&e->arena);
    memset(e, 0, sizeof *e);
}

void ss_block_enc_add(ss_block_enc *e, const ss_bval *v)
{
    int nc = e->t->ncol;
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 256;
        e->cells = ss_realloc(e->cells, e->cap * (size_t)nc * sizeof *e->cells);
    }
    ss_block_cell *row = e->cells + e->n * (size_t)nc;
    for (int c = 0; c < nc; c++) {
        if (e->t->cols[c].kind == SS_BK_TS || e->t->cols[c].kind == SS_BK_INT) {
            row[c] = (ss_block_cell){.i = v[c].i};
        } else if (!v[c].s.p) {
            row[c] = (ss_block_cell){.len = UINT32_MAX};
        } else {
            row[c] = (ss_block_cell){.off = (uint32_t)e->arena.len, .len = v[c].s.n};
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
        int64_t ts = e->cells[r * (size_t)e->t->ncol + SS_BCOL_TS].i;
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
    recompute_range(e);
}

void ss_block_enc_reset(ss_block_enc *e)
{
    ss_block_enc_truncate(e, 0, 0);
}

static int row_cmp(const ss_block_enc *e, uint32_t a, uint32_t b)
{
    const ss_block_cell *x = e->cells + (size_t)a * (size_t)e->t->ncol;
    const ss_block_cell *y = e->cells + (size_t)b * (size_t)e->t->ncol;
    if (x[SS_BCOL_TS].i != y[SS_BCOL_TS].i)
        return x[SS_BCOL_TS].i < y[SS_BCOL_TS].i ? -1 : 1;
    uint32_t n = x[0].len < y[0].len ? x[0].len : y[0].len;
    int k = memcmp(e->arena.data + x[0].off, e->arena.data + y[0].off, n);
    if (k)
        return k;
    return x[0].len < y[0].len ? -1 : x[0].len > y[0].len;
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

typedef struct dict_slot {
    uint32_t code; /* 0: empty */
    uint32_t row;  /* a row that has the value */
} dict_slot;

static void encode_dict(const ss_block_enc *e, int c, ss_buf *sec, dict_slot **tab, size_t *tcap)
{
    size_t n = e->n, nc = (size_t)e->t->ncol;
    size_t cap = 64;
    while (cap < 2 * n)
        cap *= 2;
    if (*tcap < cap) {
        *tab = ss_realloc(*tab, cap * sizeof **tab);
        *tcap = cap;
    }
    dict_slot *t = *tab;
    memset(t, 0, cap * sizeof *t);
    uint32_t *codes = ss_malloc((n ? n : 1) * sizeof *codes);
    uint32_t ndict = 0;
    ss_buf vals;
    ss_buf_init(&vals, 256);
    for (size_t r = 0; r < n; r++) {
        const ss_block_cell *x = e->cells + e->order[r] * nc + c;
        if (x->len == UINT32_MAX) {
            codes[r] = 0;
            continue;
        }
        const char *p = e->arena.data + x->off;
        size_t j = ss_hash_bytes(p, x->len, 3) & (cap - 1);
        for (;; j = (j + 1) & (cap - 1)) {
            if (!t[j].code) {
                t[j] = (dict_slot){++ndict, e->order[r]};
                put_varint(&vals, x->len);
                ss_buf_put(&vals, p, x->len);
                break;
            }
            const ss_block_cell *y = e->cells + t[j].row * nc + c;
            if (y->len == x->len && memcmp(e->arena.data + y->off, p, x->len) == 0)
                break;
        }
        codes[r] = t[j].code;
    }
    put_varint(sec, ndict);
    ss_buf_put(sec, vals.data, vals.len);
    for (size_t r = 0; r < n; r++)
        put_varint(sec, codes[r]);
    ss_buf_free(&vals);
    free(codes);
}

void ss_block_encode(ss_block_enc *e, ss_buf *out)
{
    size_t n = e->n, nc = (size_t)e->t->ncol;
    sort_rows(e);
    ss_buf sec[SS_BLOCK_MAXCOL];
    dict_slot *tab = NULL;
    size_t tcap = 0;
    for (size_t c = 0; c < nc; c++) {
        ss_buf *s = &sec[c];
        ss_buf_init(s, 64 + n * 4);
        switch (e->t->cols[c].kind) {
        case SS_BK_ID: {
            const char *prev = NULL;
            uint32_t plen = 0;
            for (size_t r = 0; r < n; r++) {
                const ss_block_cell *x = e->cells + e->order[r] * nc + c;
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
                int64_t ts = e->cells[e->order[r] * nc + c].i;
                if (r == 0)
                    put_varint(s, zigzag(ts));
                else
                    put_varint(s, (uint64_t)(ts - last));
                last = ts;
            }
            break;
        }
        case SS_BK_DICT:
            encode_dict(e, (int)c, s, &tab, &tcap);
            break;
        default:
            for (size_t r = 0; r < n; r++)
                put_varint(s, zigzag(e->cells[e->order[r] * nc + c].i));
        }
    }
    free(tab);
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

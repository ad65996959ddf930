/* The engine's in-memory tables (src/engine/tables.h): the KPI rows of an
 * open window, the cache of orders' attribution, and the set of dimension
 * rows written lately. */
#include "engine/tables.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

window *en_window_new(int64_t minute)
{
    window *w = ss_calloc(1, sizeof *w);
    w->minute = minute;
    w->cap = 32;
    w->tab = ss_calloc(w->cap, sizeof *w->tab);
    ss_buf_init(&w->values, 512);
    return w;
}

void en_window_free(window *w)
{
    if (!w)
        return;
    free(w->tab);
    ss_buf_free(&w->values);
    free(w);
}

static void window_grow(window *w)
{
    win_entry *old = w->tab;
    uint32_t oldcap = w->cap;
    w->cap *= 2;
    w->tab = ss_calloc(w->cap, sizeof *w->tab);
    for (uint32_t i = 0; i < oldcap; i++) {
        if (!old[i].used)
            continue;
        uint32_t j = (uint32_t)old[i].hash & (w->cap - 1);
        while (w->tab[j].used)
            j = (j + 1) & (w->cap - 1);
        w->tab[j] = old[i];
    }
    free(old);
}

/* Finds or adds the entry of (dim, v); h is ss_hash_bytes(v, dim). */
win_entry *en_window_slot(window *w, int dim, ss_str v, uint64_t h)
{
    if (w->n * 2 >= w->cap)
        window_grow(w);
    uint32_t j = (uint32_t)h & (w->cap - 1);
    for (;;) {
        win_entry *e = &w->tab[j];
        if (!e->used) {
            e->used = 1;
            e->hash = h;
            e->dim = (uint8_t)dim;
            e->voff = (uint32_t)w->values.len;
            e->vlen = v.n;
            ss_buf_put(&w->values, v.p, v.n);
            w->n++;
            return e;
        }
        if (e->hash == h && e->dim == dim && e->vlen == v.n &&
            memcmp(w->values.data + e->voff, v.p, v.n) == 0)
            return e;
        j = (j + 1) & (w->cap - 1);
    }
}

int en_seen_add(seen_set *s, uint64_t h)
{
    if (h == 0)
        h = 1;
    if (s->n * 2 >= SEEN_CAP) {
        memset(s->tab, 0, SEEN_CAP * sizeof *s->tab);
        s->n = 0;
    }
    uint32_t j = (uint32_t)h & (SEEN_CAP - 1);
    while (s->tab[j]) {
        if (s->tab[j] == h)
            return 0;
        j = (j + 1) & (SEEN_CAP - 1);
    }
    s->tab[j] = h;
    s->n++;
    return 1;
}

void en_attr_reset(attr_gen *g)
{
    if (!g->tab)
        g->tab = ss_calloc(ATTR_CAP * 2, sizeof *g->tab);
    else
        memset(g->tab, 0, (size_t)ATTR_CAP * 2 * sizeof *g->tab);
    g->n = 0;
    g->bytes.len = 0;
}

int en_attr_find(attr_gen gens[2], ss_str order_id, uint64_t order_hash, ss_attrib *out,
                 uint64_t dh[4])
{
    uint64_t h = order_hash | 1;
    for (int gi = 0; gi < 2; gi++) {
        attr_gen *g = &gens[gi];
        uint32_t j = (uint32_t)h & (ATTR_CAP * 2 - 1);
        while (g->tab[j].hash) {
            attr_entry *a = &g->tab[j];
            const char *p = g->bytes.data + a->off + 4 * sizeof(uint64_t);
            if (a->hash == h && a->len[0] == order_id.n && memcmp(p, order_id.p, order_id.n) == 0) {
                memcpy(dh, g->bytes.data + a->off, 4 * sizeof(uint64_t));
                p += a->len[0];
                ss_str *f[4] = {&out->city, &out->country, &out->category, &out->payment_method};
                for (int i = 0; i < 4; i++) {
                    *f[i] = (ss_str){p, a->len[i + 1]};
                    p += a->len[i + 1];
                }
                return 1;
            }
            j = (j + 1) & (ATTR_CAP * 2 - 1);
        }
    }
    return 0;
}

void en_attr_add(attr_gen gens[2], ss_str order_id, uint64_t order_hash, const ss_order *o,
                 const uint64_t dh[4])
{
    attr_gen *g = &gens[0];
    if (g->n >= ATTR_CAP) {
        /* The current generation is full: it becomes the previous one. */
        attr_gen t = gens[1];
        gens[1] = gens[0];
        gens[0] = t;
        en_attr_reset(&gens[0]);
        g = &gens[0];
    }
    uint64_t h = order_hash | 1;
    uint32_t j = (uint32_t)h & (ATTR_CAP * 2 - 1);
    while (g->tab[j].hash)
        j = (j + 1) & (ATTR_CAP * 2 - 1);
    attr_entry *a = &g->tab[j];
    a->hash = h;
    a->off = (uint32_t)g->bytes.len;
    ss_buf_put(&g->bytes, dh, 4 * sizeof(uint64_t));
    ss_str parts[5] = {order_id, o->city, o->country, o->category, o->payment_method};
    for (int i = 0; i < 5; i++) {
        a->len[i] = (uint16_t)parts[i].n;
        ss_buf_put(&g->bytes, parts[i].p, parts[i].n);
    }
    g->n++;
}

/* The engine's in-memory tables, used by src/engine/engine.c only: open-
 * addressing hash tables sized in powers of two, keyed by 64-bit hashes of
 * short strings.
 * @locality the engine's thread. */
#ifndef SS_ENGINE_TABLES_H
#define SS_ENGINE_TABLES_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/hash.h"
#include "event/event.h"
#include "hot/hot.h"

#define ATTR_CAP (1u << 16) /* orders remembered per cache generation */
#define SEEN_CAP (1u << 16) /* dimension keys remembered before a reset */

/* ---- KPI windows: the rows of one minute, by (dimension, value) ---- */

typedef struct win_entry {
    uint64_t hash;
    uint32_t voff, vlen;
    uint8_t dim, used, dirty;
    ss_kpi k;
} win_entry;

typedef struct window {
    int64_t minute;
    win_entry *tab;
    uint32_t cap, n;
    ss_buf values; /* the dimension values' bytes */
    struct window *next;
} window;

window *en_window_new(int64_t minute);
/* Frees a window; NULL is fine. */
void en_window_free(window *w);
/* Finds or adds the entry of (dim, v); h is ss_hash_bytes(v, dim). */
win_entry *en_window_slot(window *w, int dim, ss_str v, uint64_t h);

/* ---- order attribution cache: two generations, bounded ---- */

typedef struct attr_entry {
    uint64_t hash;
    uint32_t off; /* 4 dimension hashes, then order_id, city, country, category,
                   * method, back to back */
    uint16_t len[5];
} attr_entry;

typedef struct attr_gen {
    attr_entry *tab;
    uint32_t n;
    ss_buf bytes;
} attr_gen;

/* A set of 64-bit key hashes, reset when full: remembers which dimension rows
 * were written recently so that repeated upserts are skipped. */
typedef struct seen_set {
    uint64_t *tab;
    uint32_t n;
} seen_set;

/* Adds h to the set; 0 when it was there already. A full set starts over. */
int en_seen_add(seen_set *s, uint64_t h);

/* Empties a generation (allocating its table the first time). */
void en_attr_reset(attr_gen *g);
/* Finds an order's attribution in the two generations ([0] current, [1]
 * previous): its dimension values (pointing into the cache) and their four
 * hashes. */
int en_attr_find(attr_gen gens[2], ss_str order_id, uint64_t order_hash, ss_attrib *out,
                 uint64_t dh[4]);
/* Remembers an order's attribution; a full current generation becomes the
 * previous one. */
void en_attr_add(attr_gen gens[2], ss_str order_id, uint64_t order_hash, const ss_order *o,
                 const uint64_t dh[4]);

#endif

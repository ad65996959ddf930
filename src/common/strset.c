/* A set of byte strings (strset.h). */
#include "common/strset.h"

#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/mem.h"

void ss_strset_init(ss_strset *s)
{
    memset(s, 0, sizeof *s);
    ss_buf_init(&s->arena, 4096);
}

void ss_strset_free(ss_strset *s)
{
    free(s->tab);
    ss_buf_free(&s->arena);
    memset(s, 0, sizeof *s);
}

static uint64_t hash_of(const char *p, size_t n)
{
    return ss_hash_bytes(p, n, 0x5e75) | 1;
}

static int same(const ss_strset *s, const ss_strset_slot *e, const char *p, size_t n)
{
    uint32_t len;
    memcpy(&len, s->arena.data + e->off, sizeof len);
    return len == n && memcmp(s->arena.data + e->off + sizeof len, p, n) == 0;
}

/* The slot of p, or the empty slot where it goes. */
static ss_strset_slot *find(const ss_strset *s, uint64_t h, const char *p, size_t n)
{
    size_t mask = s->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        ss_strset_slot *e = &s->tab[i];
        if (!e->h || (e->h == h && same(s, e, p, n)))
            return e;
    }
}

static void grow(ss_strset *s)
{
    ss_strset_slot *old = s->tab;
    size_t cap = s->cap;
    s->cap = cap ? 2 * cap : 1024;
    s->tab = ss_calloc(s->cap, sizeof *s->tab);
    for (size_t i = 0; i < cap; i++) {
        if (!old[i].h)
            continue;
        size_t mask = s->cap - 1, j = old[i].h & mask;
        while (s->tab[j].h)
            j = (j + 1) & mask;
        s->tab[j] = old[i];
    }
    free(old);
}

int ss_strset_add(ss_strset *s, const char *p, size_t n)
{
    if (2 * (s->n + 1) > s->cap)
        grow(s);
    uint64_t h = hash_of(p, n);
    ss_strset_slot *e = find(s, h, p, n);
    if (e->h)
        return 0;
    uint32_t len = (uint32_t)n;
    e->h = h;
    e->off = (uint32_t)s->arena.len;
    ss_buf_put(&s->arena, &len, sizeof len);
    ss_buf_put(&s->arena, p, n);
    s->n++;
    return 1;
}

int ss_strset_has(const ss_strset *s, const char *p, size_t n)
{
    return s->cap && find(s, hash_of(p, n), p, n)->h != 0;
}

int ss_strset_each(const ss_strset *s, int (*fn)(void *ctx, const char *p, size_t n), void *ctx)
{
    for (size_t off = 0; off < s->arena.len;) {
        uint32_t len;
        memcpy(&len, s->arena.data + off, sizeof len);
        int rc = fn(ctx, s->arena.data + off + sizeof len, len);
        if (rc)
            return rc;
        off += sizeof len + len;
    }
    return 0;
}

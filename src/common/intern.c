/* A set of strings whose copies never move (intern.h): copies go into chunks
 * that are never reallocated, found again through an open-addressing table
 * of their hashes. */
#include "common/intern.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "common/mem.h"

#define CHUNK (64 * 1024)

typedef struct slot {
    uint64_t h; /* 0: empty */
    const char *p;
    size_t n;
} slot;

typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk;

struct ss_interner {
    slot *tab;
    size_t cap, n;
    chunk *chunks;
    size_t bytes, max_bytes;
};

ss_interner *ss_intern_new(size_t max_bytes)
{
    ss_interner *in = ss_calloc(1, sizeof *in);
    in->max_bytes = max_bytes;
    return in;
}

void ss_intern_free(ss_interner *in)
{
    if (!in)
        return;
    for (chunk *c = in->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(in->tab);
    free(in);
}

static void grow(ss_interner *in)
{
    size_t cap = in->cap ? 2 * in->cap : 256;
    slot *tab = ss_calloc(cap, sizeof *tab);
    for (size_t i = 0; i < in->cap; i++) {
        if (!in->tab[i].h)
            continue;
        size_t j = in->tab[i].h & (cap - 1);
        while (tab[j].h)
            j = (j + 1) & (cap - 1);
        tab[j] = in->tab[i];
    }
    free(in->tab);
    in->tab = tab;
    in->cap = cap;
}

/* Room for n + 1 bytes that will never move. */
static char *room(ss_interner *in, size_t n)
{
    chunk *c = in->chunks;
    if (!c || c->cap - c->used < n + 1) {
        size_t cap = n + 1 > CHUNK ? n + 1 : CHUNK;
        c = ss_malloc(sizeof *c + cap);
        c->used = 0;
        c->cap = cap;
        c->next = in->chunks;
        in->chunks = c;
        in->bytes += cap;
    }
    char *p = c->data + c->used;
    c->used += n + 1;
    return p;
}

const char *ss_intern(ss_interner *in, const char *s, size_t n)
{
    if (2 * (in->n + 1) > in->cap)
        grow(in);
    uint64_t h = ss_hash_bytes(s, n, 0x1a7e) | 1;
    size_t j = h & (in->cap - 1);
    for (; in->tab[j].h; j = (j + 1) & (in->cap - 1)) {
        const slot *e = &in->tab[j];
        if (e->h == h && e->n == n && memcmp(e->p, s, n) == 0)
            return e->p;
    }
    if (in->bytes + n + 1 > in->max_bytes)
        return NULL;
    char *p = room(in, n);
    memcpy(p, s, n);
    p[n] = '\0';
    in->tab[j] = (slot){h, p, n};
    in->n++;
    return p;
}

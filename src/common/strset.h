/* A set of byte strings (ids, names), copied into an arena of its own:
 * open addressing on ss_hash_bytes, compared in full, so that it is exact.
 * @locality one thread. */
#ifndef SS_STRSET_H
#define SS_STRSET_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef struct ss_strset_slot {
    uint64_t h;   /* 0: empty */
    uint32_t off; /* into the arena: the length (4 bytes), then the bytes */
} ss_strset_slot;

typedef struct ss_strset {
    ss_strset_slot *tab;
    size_t cap, n; /* cap: a power of two, or 0 */
    ss_buf arena;
} ss_strset;

void ss_strset_init(ss_strset *s);
void ss_strset_free(ss_strset *s);
/* Adds s[0..n); 1 when it was not there yet. */
int ss_strset_add(ss_strset *s, const char *p, size_t n);
int ss_strset_has(const ss_strset *s, const char *p, size_t n);
/* Calls fn with each string, in the order they were added, until it
 * returns anything but 0, which it then returns. */
int ss_strset_each(const ss_strset *s, int (*fn)(void *ctx, const char *p, size_t n), void *ctx);

#endif

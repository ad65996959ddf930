/* A set of strings whose copies never move: ss_intern hands back the same
 * pointer for equal strings, valid until the set is freed. For text that a
 * reader hands out by pointer and must outlive the buffer it came from
 * (SQLITE_STATIC results of a virtual table). Bounded: past max_bytes it
 * takes nothing more.
 * @locality one thread at a time. */
#ifndef SS_COMMON_INTERN_H
#define SS_COMMON_INTERN_H

#include <stddef.h>

typedef struct ss_interner ss_interner;

ss_interner *ss_intern_new(size_t max_bytes);
void ss_intern_free(ss_interner *in);
/* The kept copy of s[0..n), NUL-terminated, or NULL when the set is full. */
const char *ss_intern(ss_interner *in, const char *s, size_t n);

#endif

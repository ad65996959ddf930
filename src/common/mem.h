/* Allocation with one out-of-memory policy for the whole program: a failed
 * allocation logs what was asked for and aborts. shopstream keeps no state
 * that a partial allocation failure could leave consistent, and every store
 * it writes is crash-safe, so stopping is the safe response. */
#ifndef SS_MEM_H
#define SS_MEM_H

#include <stddef.h>

void *ss_malloc(size_t n);
void *ss_calloc(size_t count, size_t size);
void *ss_realloc(void *p, size_t n);
char *ss_strdup(const char *s);
char *ss_strndup(const char *s, size_t n);

#endif

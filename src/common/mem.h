/* Allocation with one out-of-memory policy for the whole program: a failed
 * allocation logs what was asked for and aborts. shopstream keeps no state
 * that a partial allocation failure could leave consistent, and every store
 * it writes is crash-safe, so stopping is the safe response. */
#ifndef SS_MEM_H
#define SS_MEM_H

#include <stddef.h>

void *ss_malloc(size_t n);
void *ss_calloc(size_t count, size_t size);
/* A zeroed table of count elements that is about to be written all over (a
 * hash table's slots): as ss_calloc, with its pages faulted in at once for a
 * large one. Its first accesses are probes, which read before they write; a
 * fresh page read first maps the shared zero page, and its first write then
 * takes a second fault and a flush of the other cores' TLBs. A large one
 * is in huge pages where the kernel allows them. */
void *ss_calloc_table(size_t count, size_t size);
/* Frees a table of ss_calloc_table, given the same count and size. */
void ss_free_table(void *p, size_t count, size_t size);
void *ss_realloc(void *p, size_t n);
char *ss_strdup(const char *s);
char *ss_strndup(const char *s, size_t n);
/* Sets the allocator's thresholds for a program that frees and allocates
 * large buffers all the time (see mem.c); called once, first thing. */
void ss_mem_tune(void);

#endif

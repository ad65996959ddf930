#include "common/mem.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "shopstream: out of memory allocating %zu bytes\n", n);
    abort();
}

void *ss_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *ss_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

/* Tables of a huge page or more are mapped on their own, aligned to and in
 * whole huge pages: one fault and one clear per 2 MiB instead of 512. */
#define HUGE_PAGE ((size_t)2 << 20)

static size_t table_bytes(size_t count, size_t size)
{
    return (count ? count : 1) * (size ? size : 1);
}

/* Faults in [p, p + n), rounded inwards to whole pages. */
static void populate(char *p, size_t n)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char *a = (char *)(((uintptr_t)p + pg - 1) & ~(uintptr_t)(pg - 1));
    char *end = (char *)(((uintptr_t)p + n) & ~(uintptr_t)(pg - 1));
    if (end <= a)
        return;
#ifdef MADV_POPULATE_WRITE
    if (madvise(a, (size_t)(end - a), MADV_POPULATE_WRITE) == 0)
        return;
#endif
    /* Older kernels: a write to each page, of the zero it holds. */
    for (volatile char *q = a; q < end; q += pg)
        *q = 0;
}

void *ss_calloc_table(size_t count, size_t size)
{
    size_t n = table_bytes(count, size);
    if (n < HUGE_PAGE) {
        char *p = ss_calloc(count, size);
        if (n >= ((size_t)1 << 20))
            populate(p, n);
        return p;
    }
    size_t len = (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    char *m =
        mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        oom(n);
    char *p = (char *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    /* The mapping's head before p and its tail after p + len go back. */
    if (p > m)
        munmap(m, (size_t)(p - m));
    munmap(p + len, (size_t)(m + HUGE_PAGE - p));
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE); /* advice: without it, small pages */
#endif
    populate(p, len);
    return p;
}

void ss_free_table(void *p, size_t count, size_t size)
{
    if (!p)
        return;
    size_t n = table_bytes(count, size);
    if (n < HUGE_PAGE)
        free(p);
    else
        munmap(p, (n + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
}

void *ss_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *ss_strndup(const char *s, size_t n)
{
    char *p = ss_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *ss_strdup(const char *s)
{
    return ss_strndup(s, strlen(s));
}

void ss_mem_tune(void)
{
#ifdef M_MMAP_THRESHOLD
    /* Buffers of up to 32 MiB (Kafka's fetches, SQLite's) come from the heap
     * and are used again once freed, instead of being mapped afresh and
     * faulted in, page by page, each time; up to 64 MiB free at the top of a
     * heap stays with the process. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
}

#include "common/mem.h"

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

void *ss_calloc_table(size_t count, size_t size)
{
    char *p = ss_calloc(count, size);
    size_t n = count * size;
    if (n < ((size_t)1 << 20))
        return p;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char *a = (char *)(((uintptr_t)p + pg - 1) & ~(uintptr_t)(pg - 1));
    char *end = (char *)(((uintptr_t)p + n) & ~(uintptr_t)(pg - 1));
    if (end <= a)
        return p;
#ifdef MADV_POPULATE_WRITE
    if (madvise(a, (size_t)(end - a), MADV_POPULATE_WRITE) == 0)
        return p;
#endif
    /* Older kernels: a write to each page, of the zero it holds. */
    for (volatile char *q = a; q < end; q += pg)
        *q = 0;
    return p;
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

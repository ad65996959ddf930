#include "gen/pending.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/timeutil.h"

#define RING 4096

void ss_pheap_push(ss_pheap *h, const ss_pending *e)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 1024;
        h->v = ss_realloc(h->v, h->cap * sizeof *h->v);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 4;
        if (!ss_pending_before(e, &h->v[parent]))
            break;
        h->v[i] = h->v[parent];
        i = parent;
    }
    h->v[i] = *e;
}

void ss_pheap_pop(ss_pheap *h, ss_pending *out)
{
    *out = h->v[0];
    ss_pending last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 4 * i + 1, end = c + 4 < h->n ? c + 4 : h->n;
        if (c >= h->n)
            break;
        for (size_t k = c + 1; k < end; k++)
            if (ss_pending_before(&h->v[k], &h->v[c]))
                c = k;
        if (!ss_pending_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
}

void ss_pheap_free(ss_pheap *h)
{
    free(h->v);
    memset(h, 0, sizeof *h);
}

static int64_t hour_of(int64_t ts)
{
    return ss_time_floor(ts, SS_MS_PER_HOUR) / SS_MS_PER_HOUR;
}

static ss_calq_bucket *slot_of(ss_calq *q, int64_t hour)
{
    return &q->ring[((hour % RING) + RING) % RING];
}

static void bucket_add(ss_calq_bucket *b, const ss_pending *e)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = ss_realloc(b->v, b->cap * sizeof *b->v);
    }
    b->v[b->n++] = *e;
}

static int cmp_pending(const void *a, const void *b)
{
    return ss_pending_before(a, b) ? -1 : ss_pending_before(b, a) ? 1 : 0;
}

void ss_calq_init(ss_calq *q, int64_t now_ms)
{
    memset(q, 0, sizeof *q);
    q->started = 1;
    q->base = hour_of(now_ms);
}

void ss_calq_push(ss_calq *q, const ss_pending *e)
{
    int64_t h = hour_of(e->ts);
    if (!q->started) {
        q->started = 1;
        q->base = h;
    }
    if (!q->ring)
        q->ring = ss_calloc(RING, sizeof *q->ring);
    if (h <= q->base) {
        ss_pheap_push(&q->near, e);
    } else if (h < q->base + RING) {
        bucket_add(slot_of(q, h), e);
        q->ring_count++;
    } else {
        ss_pheap_push(&q->far, e);
    }
    q->n++;
}

/* Moves to the next hour that has events, and sorts them; or returns 0 and
 * stays when that hour is past limit (the hour of the time asked about), so
 * that the sorted hour never runs ahead of the generator's time. */
static int advance(ss_calq *q, int64_t limit)
{
    int64_t next;
    if (q->ring_count == 0) {
        next = hour_of(q->far.v[0].ts);
    } else {
        next = q->base + 1;
        while (next <= limit && slot_of(q, next)->n == 0)
            next++;
    }
    if (next > limit)
        return 0;
    /* The spent bucket's memory serves the ring slot that is now free. */
    ss_calq_bucket *b = slot_of(q, next), spent = q->act;
    q->act = *b;
    spent.n = 0;
    *b = spent;
    q->ring_count -= q->act.n;
    q->apos = 0;
    q->base = next;
    while (q->far.n && hour_of(q->far.v[0].ts) < q->base + RING) {
        ss_pending e;
        ss_pheap_pop(&q->far, &e);
        int64_t h = hour_of(e.ts);
        if (h == q->base) {
            bucket_add(&q->act, &e);
        } else {
            bucket_add(slot_of(q, h), &e);
            q->ring_count++;
        }
    }
    qsort(q->act.v, q->act.n, sizeof *q->act.v, cmp_pending);
    return 1;
}

/* The earliest of the sorted hour and the near heap, or NULL. */
static const ss_pending *top_of(const ss_calq *q)
{
    const ss_pending *a = q->apos < q->act.n ? &q->act.v[q->apos] : NULL;
    if (q->near.n && (!a || ss_pending_before(&q->near.v[0], a)))
        return &q->near.v[0];
    return a;
}

const ss_pending *ss_calq_peek(ss_calq *q, int64_t until_ms)
{
    if (q->n == 0)
        return NULL;
    if (q->apos == q->act.n && q->near.n == 0 && !advance(q, hour_of(until_ms)))
        return NULL;
    const ss_pending *top = top_of(q);
    return top && top->ts <= until_ms ? top : NULL;
}

void ss_calq_pop(ss_calq *q, ss_pending *out)
{
    const ss_pending *top = top_of(q);
    if (q->near.n && top == &q->near.v[0])
        ss_pheap_pop(&q->near, out);
    else
        *out = q->act.v[q->apos++];
    q->n--;
}

void ss_calq_free(ss_calq *q)
{
    if (q->ring)
        for (size_t i = 0; i < RING; i++)
            free(q->ring[i].v);
    free(q->ring);
    free(q->act.v);
    ss_pheap_free(&q->near);
    ss_pheap_free(&q->far);
    memset(q, 0, sizeof *q);
}

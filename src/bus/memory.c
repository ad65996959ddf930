/* Memory bus: a bounded in-process queue between a producer thread and a
 * consumer thread. A full queue blocks the producer (back-pressure), so the
 * generator never runs ahead of the engine by more than the queue's bytes. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus/bus.h"
#include "common/mem.h"
#include "common/status.h"

struct ss_memq {
    pthread_mutex_t mu;
    pthread_cond_t can_put, can_get;
    char *ring;
    size_t cap, head, used; /* records are [u32 length][bytes], wrapping */
    int closed;
    int refs;
    int64_t produced, consumed;
};

typedef struct memq_consumer {
    ss_memq *q;
    char *batch;
    size_t blen, bpos, bcap;
    int64_t offset;
} memq_consumer;

ss_memq *ss_memq_new(size_t capacity)
{
    ss_memq *q = ss_calloc(1, sizeof *q);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->can_put, NULL);
    pthread_cond_init(&q->can_get, NULL);
    q->cap = capacity < 4096 ? 4096 : capacity;
    q->ring = ss_malloc(q->cap);
    q->refs = 1;
    return q;
}

static void memq_unref(ss_memq *q)
{
    pthread_mutex_lock(&q->mu);
    int last = --q->refs == 0;
    pthread_mutex_unlock(&q->mu);
    if (!last)
        return;
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->can_put);
    pthread_cond_destroy(&q->can_get);
    free(q->ring);
    free(q);
}

void ss_memq_free(ss_memq *q)
{
    if (q)
        memq_unref(q);
}

static void ring_copy_in(ss_memq *q, const void *src, size_t n)
{
    size_t tail = (q->head + q->used) % q->cap;
    size_t first = n < q->cap - tail ? n : q->cap - tail;
    memcpy(q->ring + tail, src, first);
    memcpy(q->ring, (const char *)src + first, n - first);
    q->used += n;
}

static void ring_copy_out(ss_memq *q, void *dst, size_t n)
{
    size_t first = n < q->cap - q->head ? n : q->cap - q->head;
    memcpy(dst, q->ring + q->head, first);
    memcpy((char *)dst + first, q->ring, n - first);
    q->head = (q->head + n) % q->cap;
    q->used -= n;
}

static int memq_produce(void *state, const char *key, size_t klen, const char *value, size_t vlen)
{
    ss_memq *q = state;
    (void)key;
    (void)klen;
    uint32_t len = (uint32_t)vlen;
    size_t need = sizeof len + vlen;
    if (need > q->cap)
        return SS_EINVAL;
    pthread_mutex_lock(&q->mu);
    while (q->cap - q->used < need && !q->closed)
        pthread_cond_wait(&q->can_put, &q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return SS_EIO;
    }
    int was_empty = q->used == 0;
    ring_copy_in(q, &len, sizeof len);
    ring_copy_in(q, value, vlen);
    q->produced++;
    if (was_empty)
        pthread_cond_signal(&q->can_get);
    pthread_mutex_unlock(&q->mu);
    return SS_OK;
}

static int memq_flush(void *state)
{
    (void)state;
    return SS_OK;
}

static int memq_producer_close(void *state)
{
    ss_memq *q = state;
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->can_get);
    pthread_cond_broadcast(&q->can_put);
    pthread_mutex_unlock(&q->mu);
    memq_unref(q);
    return SS_OK;
}

static const ss_bus_ops memq_producer_ops = {
    .name = "memory",
    .scheme = "memory:",
    .produce = memq_produce,
    .flush = memq_flush,
    .producer_close = memq_producer_close,
};

void ss_memq_producer(ss_memq *q, ss_bus_producer *bp)
{
    pthread_mutex_lock(&q->mu);
    q->refs++;
    pthread_mutex_unlock(&q->mu);
    bp->ops = &memq_producer_ops;
    bp->state = q;
}

static const char *memq_source(void *state, int *seekable)
{
    (void)state;
    *seekable = 0;
    return "memory";
}

static int memq_seek(void *state, int64_t offset)
{
    (void)state;
    (void)offset;
    return SS_ENOTSUP;
}

static int memq_poll(void *state, ss_bus_msg *msg, int timeout_ms)
{
    memq_consumer *c = state;
    ss_memq *q = c->q;
    if (c->bpos >= c->blen) {
        /* Take everything queued in one go: one lock per batch, not per record. */
        pthread_mutex_lock(&q->mu);
        if (q->used == 0 && !q->closed && timeout_ms > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += timeout_ms / 1000;
            ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            while (q->used == 0 && !q->closed)
                if (pthread_cond_timedwait(&q->can_get, &q->mu, &ts) != 0)
                    break;
        }
        size_t n = q->used;
        if (n == 0) {
            int closed = q->closed;
            pthread_mutex_unlock(&q->mu);
            return closed ? SS_EOF : SS_AGAIN;
        }
        if (n > c->bcap) {
            c->bcap = n;
            c->batch = ss_realloc(c->batch, n);
        }
        ring_copy_out(q, c->batch, n);
        pthread_cond_broadcast(&q->can_put);
        pthread_mutex_unlock(&q->mu);
        c->blen = n;
        c->bpos = 0;
    }
    uint32_t len;
    memcpy(&len, c->batch + c->bpos, sizeof len);
    c->bpos += sizeof len;
    *msg = (ss_bus_msg){c->batch + c->bpos, len, len, "memory", c->offset, c->offset + 1, 0};
    c->bpos += len;
    c->offset++;
    return SS_OK;
}

static void memq_consumer_close(void *state)
{
    memq_consumer *c = state;
    if (!c)
        return;
    /* Nobody will read any more: a producer waiting for room, or producing
     * later, gets SS_EIO instead of waiting forever on a full queue. */
    pthread_mutex_lock(&c->q->mu);
    c->q->closed = 1;
    pthread_cond_broadcast(&c->q->can_put);
    pthread_mutex_unlock(&c->q->mu);
    memq_unref(c->q);
    free(c->batch);
    free(c);
}

static const ss_bus_consumer_ops memq_consumer_ops = {
    .name = "memory",
    .scheme = "memory:",
    .source = memq_source,
    .seek = memq_seek,
    .poll = memq_poll,
    .close = memq_consumer_close,
};

void ss_memq_consumer(ss_memq *q, ss_bus_consumer *bc)
{
    memq_consumer *c = ss_calloc(1, sizeof *c);
    pthread_mutex_lock(&q->mu);
    q->refs++;
    pthread_mutex_unlock(&q->mu);
    c->q = q;
    bc->ops = &memq_consumer_ops;
    bc->state = c;
}

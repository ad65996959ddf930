#define _POSIX_C_SOURCE 200809L
#include "engine/pipeline.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/thread.h"
#include "common/timeutil.h"

#define BATCH_RECORDS 2048
#define BATCH_BYTES   (4u << 20)
#define NBATCHES      4
/* A batch that is not full is handed over once its first record is this old,
 * so that the records of a steady stream that is never idle reach the engine
 * promptly whether or not they fill batches; the engine commits them when its
 * commit interval is due (next_batch). Small against the default interval
 * (250 ms), large enough that handing batches over costs nothing. */
#define BATCH_MAX_MS 50

/* A consumer group's rebalance, carried out on the engine's thread in order
 * with the records read before it, while the reader waits. */
typedef struct control {
    int assign; /* 1: parts assigned, 0: revoked */
    const ss_bus_part *parts;
    size_t n;
    int64_t *offsets;
    int rc, done;
} control;

typedef struct batch {
    ss_record *recs;
    size_t n;
    char *arena; /* copies of the records' bytes and unescaped strings */
    size_t used;
    int end;      /* SS_OK: more follows; SS_AGAIN: input idle; SS_EOF/SS_EIO: last batch */
    control *ctl; /* instead of records: a rebalance */
} batch;

typedef struct pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch *full[NBATCHES], *free_[NBATCHES];
    int nfull, nfree, head; /* full is a FIFO ring starting at head */
    int quit;
    ss_bus_consumer *in;
    const ss_pipeline_hooks *hooks;
    ss_decoder dec;
    batch *cur; /* the reader's batch being filled */
} pipe_t;

static void push(batch **ring, int *n, int head, batch *b)
{
    ring[(head + *n) % NBATCHES] = b;
    (*n)++;
}

static batch *take_free(pipe_t *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->nfree == 0 && !p->quit)
        pthread_cond_wait(&p->cv, &p->mu);
    batch *b = p->quit ? NULL : p->free_[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    if (b) {
        b->n = 0;
        b->used = 0;
        b->end = SS_OK;
        b->ctl = NULL;
    }
    return b;
}

static void hand_over(pipe_t *p, batch *b)
{
    pthread_mutex_lock(&p->mu);
    push(p->full, &p->nfull, p->head, b);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* Moves a string of the record's event that points into src[0..len) to the
 * same offset of dst. */
static void rebase(ss_str *s, const char *src, size_t len, char *dst)
{
    if (s->n && s->p >= src && s->p < src + len)
        s->p = dst + (s->p - src);
}

static void rebase_event(ss_event *ev, const char *src, size_t len, char *dst)
{
    ss_str *common[] = {&ev->event_id, &ev->order_id};
    for (size_t i = 0; i < 2; i++)
        rebase(common[i], src, len, dst);
    if (ev->type == SS_EV_ORDER) {
        ss_order *o = &ev->u.order;
        ss_str *f[] = {&o->customer_id,  &o->customer_segment, &o->product_id,
                       &o->product_name, &o->category,         &o->city,
                       &o->country,      &o->currency,         &o->payment_method};
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
            rebase(f[i], src, len, dst);
    } else if (ev->type == SS_EV_PAYMENT) {
        rebase(&ev->u.payment.payment_method, src, len, dst);
        rebase(&ev->u.payment.failure_reason, src, len, dst);
    } else {
        rebase(&ev->u.cancel.reason, src, len, dst);
    }
}

/* Copies a message into the batch and decodes the copy; returns 0, or -1
 * when the batch has no room left. */
static int add(pipe_t *p, batch *b, const ss_bus_msg *msg)
{
    if (b->n == BATCH_RECORDS || b->used + 2 * msg->len + 16 > BATCH_BYTES)
        return -1;
    char *copy = b->arena + b->used;
    memcpy(copy, msg->data, msg->len);
    b->used += msg->len;
    ss_bus_msg m = *msg;
    m.data = copy;
    ss_record *r = &b->recs[b->n++];
    if (ss_engine_decode(&p->dec, &m, r) == SS_RECORD_EVENT && p->dec.scratch.len) {
        /* Unescaped strings live in the decoder's scratch until the next
         * record: keep them with the batch. */
        char *esc = b->arena + b->used;
        memcpy(esc, p->dec.scratch.data, p->dec.scratch.len);
        rebase_event(&r->ev, p->dec.scratch.data, p->dec.scratch.len, esc);
        b->used += p->dec.scratch.len;
    }
    return 0;
}

/* Backpressure: while hooks->hold is set, commits what is pending (so that
 * the archiver can take the store's write lock) and waits. */
static int hold_back(ss_engine *e, const ss_pipeline_hooks *hooks)
{
    if (!hooks->hold || !*hooks->hold)
        return SS_OK;
    int rc = ss_engine_tick(e, 1);
    while (rc == SS_OK && *hooks->hold && !(hooks->stop && *hooks->stop)) {
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return rc;
}

/* Applies a record; while the engine needs the cold store and cannot read
 * it (SS_AGAIN), commits what is done, waits with back-off and tries again,
 * so that results stay exact. Returns SS_AGAIN when a stop came first: the
 * record is not applied, and nothing after it may be. */
static int apply_waiting(ss_engine *e, const ss_record *r, const ss_pipeline_hooks *hooks)
{
    int64_t wait_ms = 500;
    for (;;) {
        int rc = ss_engine_apply(e, r);
        if (rc != SS_AGAIN || *hooks->stop)
            return rc;
        rc = ss_engine_tick(e, 1);
        if (rc)
            return rc;
        SS_WARN("engine", "an archived event's keys are unreadable; retrying in %lld ms",
                (long long)wait_ms);
        for (int64_t slept = 0; slept < wait_ms && !*hooks->stop; slept += 100) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
        wait_ms = wait_ms * 2 > 30000 ? 30000 : wait_ms * 2;
    }
}

/* ---- rebalances ---- */

/* Claims the assigned partitions' shards and commits the claims before any
 * of their records is read (a process that held them before can no longer
 * commit), then reports the positions to resume them at. */
static int on_assigned(ss_engine *e, const ss_bus_part *parts, size_t n, int64_t *offsets)
{
    int rc = SS_OK;
    for (size_t i = 0; i < n && rc == SS_OK; i++)
        rc = ss_engine_claim(e, parts[i].shard);
    if (rc == SS_OK)
        rc = ss_engine_tick(e, 1);
    for (size_t i = 0; i < n && rc == SS_OK; i++)
        offsets[i] = ss_engine_position(e, parts[i].source);
    return rc;
}

/* Commits what was read of the revoked partitions and forgets them. */
static int on_revoked(ss_engine *e, const ss_bus_part *parts, size_t n)
{
    int rc = SS_OK;
    for (size_t i = 0; i < n && rc == SS_OK; i++)
        rc = ss_engine_release(e, parts[i].shard);
    return rc;
}

static int direct_assigned(void *ctx, const ss_bus_part *parts, size_t n, int64_t *offsets)
{
    return on_assigned(ctx, parts, n, offsets);
}

static int direct_revoked(void *ctx, const ss_bus_part *parts, size_t n)
{
    return on_revoked(ctx, parts, n);
}

/* On the reader's thread, inside poll: hands the records read so far and
 * then the rebalance to the engine's thread, and waits until it is done. */
static int post_control(pipe_t *p, control *c)
{
    batch *b = p->cur;
    if (b && b->n) {
        hand_over(p, b);
        b = take_free(p);
    }
    p->cur = NULL;
    if (!b)
        return SS_ERR; /* the run is ending */
    b->ctl = c;
    hand_over(p, b);
    pthread_mutex_lock(&p->mu);
    while (!c->done && !p->quit)
        pthread_cond_wait(&p->cv, &p->mu);
    int rc = c->done ? c->rc : SS_ERR;
    pthread_mutex_unlock(&p->mu);
    p->cur = take_free(p);
    return rc;
}

static int piped_assigned(void *ctx, const ss_bus_part *parts, size_t n, int64_t *offsets)
{
    control c = {.assign = 1, .parts = parts, .n = n, .offsets = offsets};
    return post_control(ctx, &c);
}

static int piped_revoked(void *ctx, const ss_bus_part *parts, size_t n)
{
    control c = {.assign = 0, .parts = parts, .n = n};
    return post_control(ctx, &c);
}

static void set_rebalance(ss_bus_consumer *in, const ss_bus_rebalance *rb)
{
    if (in->ops->set_rebalance)
        in->ops->set_rebalance(in->state, rb);
}

static void *reader_main(void *arg)
{
    ss_thread_name("ss-read");
    pipe_t *p = arg;
    p->cur = take_free(p);
    ss_bus_msg msg;
    int pending = 0; /* a message that did not fit the last batch */
    int64_t opened = 0;
    while (p->cur) {
        int rc = SS_OK;
        if (!pending) {
            if (*p->hooks->stop) {
                rc = SS_EOF;
            } else {
                /* May carry out a rebalance, which replaces p->cur. */
                rc = ss_bus_poll(p->in, &msg, 100);
                if (rc == SS_EOF && p->hooks->follow)
                    rc = SS_AGAIN;
            }
        }
        batch *b = p->cur;
        if (!b)
            break;
        if (rc == SS_OK) {
            if (add(p, b, &msg) == 0) {
                pending = 0;
                int64_t now = ss_mono_coarse_ms();
                if (b->n == 1)
                    opened = now;
                if (now - opened < BATCH_MAX_MS)
                    continue;
            } else {
                pending = 1;
            }
        }
        /* The batch is full or old, the input idle or at its end: hand it
         * over. */
        b->end = rc;
        int last = rc != SS_OK && rc != SS_AGAIN;
        hand_over(p, b);
        p->cur = NULL;
        if (last)
            break;
        if (rc == SS_AGAIN && p->hooks->follow && !*p->hooks->stop) {
            /* A file at its end: wait a little before looking again. */
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
        p->cur = take_free(p);
    }
    return NULL;
}

/* Waits for the next batch and takes it (*out), or returns a store failure
 * with *out NULL. While records are applied but not committed it waits only
 * until their commit is due and commits them then: batches may come further
 * apart than the commit interval (a slow input, or one that is never idle
 * and fills each batch in a little less than the interval), and the engine's
 * own checks run only as records are applied. */
static int next_batch(pipe_t *p, ss_engine *e, batch **out)
{
    int rc = SS_OK;
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->nfull == 0 && rc == SS_OK) {
        int64_t due = ss_engine_commit_due_ms(e);
        if (due < 0) {
            pthread_cond_wait(&p->cv, &p->mu);
        } else if (due > 0) {
            struct timespec ts;
            ss_mono_deadline(&ts, due);
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        } else {
            pthread_mutex_unlock(&p->mu);
            rc = ss_engine_tick(e, 1);
            pthread_mutex_lock(&p->mu);
        }
    }
    if (rc == SS_OK) {
        *out = p->full[p->head];
        p->head = (p->head + 1) % NBATCHES;
        p->nfull--;
    }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static void set_follow(ss_bus_consumer *in, const ss_pipeline_hooks *hooks)
{
    if (in->ops->follow)
        in->ops->follow(in->state, hooks->follow);
}

int ss_engine_run_pipeline(ss_engine *e, ss_bus_consumer *in, const ss_pipeline_hooks *hooks)
{
    set_follow(in, hooks);
    pipe_t p = {.in = in, .hooks = hooks};
    pthread_mutex_init(&p.mu, NULL);
    ss_mono_cond_init(&p.cv);
    ss_decoder_init(&p.dec);
    batch store[NBATCHES];
    for (int i = 0; i < NBATCHES; i++) {
        store[i].recs = ss_malloc(BATCH_RECORDS * sizeof *store[i].recs);
        store[i].arena = ss_malloc(BATCH_BYTES);
        store[i].ctl = NULL;
        p.free_[p.nfree++] = &store[i];
    }
    ss_bus_rebalance rb = {.ctx = &p, .assigned = piped_assigned, .revoked = piped_revoked};
    set_rebalance(in, &rb);
    pthread_t tid;
    int rc = SS_OK;
    if (pthread_create(&tid, NULL, reader_main, &p) != 0) {
        SS_ERROR("engine", "cannot start the reader thread");
        rc = SS_ERR;
        goto out;
    }
    uint32_t applied = 0;
    for (int done = 0; !done && rc == SS_OK;) {
        batch *b;
        rc = next_batch(&p, e, &b);
        if (rc != SS_OK)
            break;
        if (b->ctl) {
            control *c = b->ctl;
            c->rc = c->assign ? on_assigned(e, c->parts, c->n, c->offsets)
                              : on_revoked(e, c->parts, c->n);
            rc = c->rc;
            pthread_mutex_lock(&p.mu);
            b->ctl = NULL;
            c->done = 1;
            p.free_[p.nfree++] = b;
            pthread_cond_broadcast(&p.cv);
            pthread_mutex_unlock(&p.mu);
            continue;
        }
        for (size_t i = 0; i < b->n && rc == SS_OK && !done; i++) {
            rc = apply_waiting(e, &b->recs[i], hooks);
            if (rc == SS_AGAIN) {
                /* Stopped while waiting: end before the record. */
                rc = SS_OK;
                done = 1;
                break;
            }
            if (rc == SS_OK)
                rc = ss_engine_tick(e, 0);
            if (rc == SS_OK && ++applied % 4096 == 0) {
                rc = hold_back(e, hooks);
                if (rc == SS_OK && hooks->idle && hooks->idle(hooks->ctx))
                    done = 1;
            }
        }
        if (rc == SS_OK && b->end != SS_OK) {
            /* Idle or finished: commit what is pending so readers see it. */
            rc = ss_engine_tick(e, 1);
            if (rc == SS_OK && hooks->idle && hooks->idle(hooks->ctx))
                done = 1;
            if (b->end == SS_EOF)
                done = 1;
            else if (b->end == SS_EIO) {
                SS_ERROR("engine", "cannot read the input");
                rc = SS_EIO;
            }
        }
        pthread_mutex_lock(&p.mu);
        p.free_[p.nfree++] = b;
        pthread_cond_broadcast(&p.cv);
        pthread_mutex_unlock(&p.mu);
    }
    /* Release the reader, wherever it waits, and wait for it. */
    pthread_mutex_lock(&p.mu);
    p.quit = 1;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    pthread_join(tid, NULL);
    if (rc == SS_OK)
        rc = ss_engine_tick(e, 1);
out:
    set_rebalance(in, NULL);
    for (int i = 0; i < NBATCHES; i++) {
        free(store[i].recs);
        free(store[i].arena);
    }
    ss_decoder_free(&p.dec);
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    return rc;
}

static int run_alone(ss_engine *e, ss_bus_consumer *in, const ss_pipeline_hooks *hooks);

int ss_engine_run(ss_engine *e, ss_bus_consumer *in, const ss_pipeline_hooks *hooks)
{
    ss_bus_rebalance rb = {.ctx = e, .assigned = direct_assigned, .revoked = direct_revoked};
    set_rebalance(in, &rb);
    int rc = run_alone(e, in, hooks);
    set_rebalance(in, NULL);
    return rc;
}

static int run_alone(ss_engine *e, ss_bus_consumer *in, const ss_pipeline_hooks *hooks)
{
    set_follow(in, hooks);
    ss_bus_msg msg;
    uint32_t applied = 0;
    int rc = SS_OK;
    while (rc == SS_OK && !*hooks->stop) {
        int prc = ss_bus_poll(in, &msg, 100);
        if (prc == SS_OK) {
            ss_record *r = ss_engine_scratch_record(e);
            ss_engine_decode(ss_engine_decoder(e), &msg, r);
            rc = apply_waiting(e, r, hooks);
            if (rc == SS_AGAIN) {
                rc = SS_OK;
                break;
            }
            if (rc == SS_OK)
                rc = ss_engine_tick(e, 0);
            if (rc == SS_OK && ++applied % 4096 == 0) {
                rc = hold_back(e, hooks);
                if (rc == SS_OK && hooks->idle && hooks->idle(hooks->ctx))
                    break;
            }
            continue;
        }
        if (prc == SS_EOF && !hooks->follow)
            break;
        if (prc == SS_EIO) {
            SS_ERROR("engine", "cannot read the input");
            return SS_EIO;
        }
        /* Idle: commit what is pending so that readers see it promptly. */
        rc = ss_engine_tick(e, 1);
        if (rc == SS_OK && hooks->idle && hooks->idle(hooks->ctx))
            break;
        if (prc == SS_EOF) {
            struct timespec ts = {0, 50 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return rc == SS_OK ? ss_engine_tick(e, 1) : rc;
}

#include "query/pool.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"

enum { POOL_MAX = 8 };                    /* idle connections kept */
#define POOL_LIFE_MS (60 * SS_MS_PER_SEC) /* a connection's longest life */

typedef struct kept {
    ss_query *q;
    int64_t opened; /* monotonic ms */
    uint64_t gen;   /* the pool's file generation it was opened in */
} kept;

/* Connections handed out keep their opening time and generation here, by
 * address. */
typedef struct lent {
    ss_query *q;
    int64_t opened;
    uint64_t gen;
} lent;

struct ss_query_pool {
    const char *data, *hot, *cold;
    pthread_mutex_t mu;
    kept idle[POOL_MAX];
    int nidle;
    lent *out;
    size_t nout, capout;
    /* The hot store's file when it is SQLite: connections to another file at
     * the same path are not kept. */
    int sqlite;
    dev_t dev;
    ino_t ino;
    uint64_t gen; /* counts the files seen at the path */
};

ss_query_pool *ss_query_pool_new(const char *data_dir, const char *hot, const char *cold)
{
    ss_query_pool *p = ss_calloc(1, sizeof *p);
    p->data = data_dir;
    p->hot = hot;
    p->cold = cold;
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void ss_query_pool_free(ss_query_pool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->nidle; i++)
        ss_query_close(p->idle[i].q);
    free(p->out);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Whether the hot store's file is still the one the kept connections opened;
 * records the file it is now. Called with the lock held. */
static int same_file(ss_query_pool *p)
{
    char path[4096];
    struct stat sb;
    if (!ss_query_hot_file(p->data, p->hot, path, sizeof path))
        return 1;
    if (stat(path, &sb) != 0)
        return 0;
    int same = p->sqlite && sb.st_dev == p->dev && sb.st_ino == p->ino;
    if (!same)
        p->gen++;
    p->sqlite = 1;
    p->dev = sb.st_dev;
    p->ino = sb.st_ino;
    return same;
}

static void lend(ss_query_pool *p, ss_query *q, int64_t opened, uint64_t gen)
{
    if (p->nout == p->capout) {
        p->capout = p->capout ? 2 * p->capout : 16;
        p->out = ss_realloc(p->out, p->capout * sizeof *p->out);
    }
    p->out[p->nout++] = (lent){q, opened, gen};
}

int ss_query_pool_get(ss_query_pool *p, ss_query **out, char *err, size_t errlen)
{
    int64_t now = ss_mono_ms();
    ss_query *stale[POOL_MAX];
    int nstale = 0;
    *out = NULL;
    pthread_mutex_lock(&p->mu);
    if (!same_file(p)) {
        for (int i = 0; i < p->nidle; i++)
            stale[nstale++] = p->idle[i].q;
        p->nidle = 0;
    }
    while (p->nidle > 0 && !*out) {
        kept k = p->idle[--p->nidle];
        if (now - k.opened < POOL_LIFE_MS && k.gen == p->gen) {
            *out = k.q;
            lend(p, k.q, k.opened, k.gen);
        } else {
            stale[nstale++] = k.q;
        }
    }
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < nstale; i++)
        ss_query_close(stale[i]);
    if (*out)
        return SS_OK;
    /* The generation before the open: a file that changes while it opens
     * makes the connection one not to keep. */
    pthread_mutex_lock(&p->mu);
    uint64_t gen = p->gen;
    pthread_mutex_unlock(&p->mu);
    int rc = ss_query_open(p->data, p->hot, p->cold, out, err, errlen);
    if (rc == SS_OK) {
        pthread_mutex_lock(&p->mu);
        lend(p, *out, now, gen);
        pthread_mutex_unlock(&p->mu);
    }
    return rc;
}

void ss_query_pool_put(ss_query_pool *p, ss_query *q)
{
    if (!q)
        return;
    int64_t now = ss_mono_ms(), opened = now - POOL_LIFE_MS;
    uint64_t gen = 0;
    ss_query *drop = q;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nout; i++)
        if (p->out[i].q == q) {
            opened = p->out[i].opened;
            gen = p->out[i].gen;
            p->out[i] = p->out[--p->nout];
            break;
        }
    /* A connection to a file that another has replaced since is not kept. */
    if (p->nidle < POOL_MAX && now - opened < POOL_LIFE_MS && gen == p->gen && ss_query_idle(q)) {
        p->idle[p->nidle++] = (kept){q, opened, gen};
        drop = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    ss_query_close(drop);
}

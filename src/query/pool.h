/* Query connections kept for reuse by the web server's requests.
 *
 * Setting a connection up (the views and virtual tables over hot and cold
 * storage) costs more than most dashboard queries, so a finished request's
 * connection waits for the next. A kept connection sees what every new one
 * would: SQLite begins a read at each statement, and the cold tables look for
 * newly committed archives at each scan (coldtab.c). A connection is closed
 * after a minute of life, so that what it has cached stays bounded, and all
 * are dropped when the hot store's file is another one (a new store at the
 * same path).
 * @locality any thread; the pool takes a lock. */
#ifndef SS_QUERY_POOL_H
#define SS_QUERY_POOL_H

#include <stddef.h>

#include "query/query.h"

typedef struct ss_query_pool ss_query_pool;

/* A pool of connections to the stores that ss_query_open takes the same
 * arguments for; they must outlive the pool. */
ss_query_pool *ss_query_pool_new(const char *data_dir, const char *hot, const char *cold);

/* Frees the pool and closes its idle connections (NULL is accepted). */
void ss_query_pool_free(ss_query_pool *p);

/* A connection: a kept one, or a new one (ss_query_open's errors). */
int ss_query_pool_get(ss_query_pool *p, ss_query **out, char *err, size_t errlen);

/* Gives a connection back (NULL is accepted): kept when it is young and
 * holds no open statement or transaction, else closed. */
void ss_query_pool_put(ss_query_pool *p, ss_query *q);

#endif

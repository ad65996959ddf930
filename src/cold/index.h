/* What the engine needs to know of archived events: whether an event id was
 * archived (so that a replay of it is a duplicate, not a late event), and the
 * dimensions of an archived order (so that its late payments and
 * cancellations are attributed exactly as if it were still hot).
 *
 * Each archive writes a keys file (_archives/<id>.keys: its sorted event ids
 * and its orders' dimensions sorted by order id). The index knows the
 * committed archives and their time ranges, re-reading the list when the hot
 * store reports another connection's commit, and keeps a few keys files in
 * memory.
 * @locality the engine's thread. */
#ifndef SS_COLD_INDEX_H
#define SS_COLD_INDEX_H

#include "cold/cold.h"
#include "hot/hot.h"

/* How far before an event its order is looked for among archives. */
#define SS_COLD_ATTRIBUTION_HORIZON_MS (7LL * 24 * 3600 * 1000)

typedef struct ss_cold_index ss_cold_index;

/* The index borrows cold, which must outlive it. */
ss_cold_index *ss_cold_index_new(ss_cold *cold);
void ss_cold_index_free(ss_cold_index *ix);

/* Whether a committed archive holds the event (ts: its event time).
 * Both lookups return SS_AGAIN when the cold store cannot be read now: the
 * caller waits and asks again rather than guess. */
int ss_cold_index_has_event(ss_cold_index *ix, ss_hot *hot, ss_str event_id, int64_t ts,
                            int *found);

/* The dimensions of an archived order placed before ts; strings are copied
 * into buf. */
int ss_cold_index_lookup_order(ss_cold_index *ix, ss_hot *hot, ss_str order_id, int64_t ts,
                               ss_attrib *out, char *buf, size_t cap, int *found);

/* Writes the keys file of an archive; *path, *bytes and *crc describe it for
 * the manifest. */
int ss_cold_keys_write(ss_hot *hot, ss_cold *cold, const char *id, int64_t cutoff, char *path,
                       size_t pathlen, int64_t *bytes, unsigned long *crc);

#endif

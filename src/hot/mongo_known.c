/* The MongoDB hot store: the rows of the replaced collections (customers,
 * products, countries, cities, kpi_minute) as this writer committed them.
 *
 * A commit replaces a row with the epoch's version merged with the
 * committed one, and keeps the committed one in _u for the undo; without
 * this cache it must read every such row first ($in on _id). The store has
 * one writer at a time (take_over fences the others), and only the writer
 * changes these collections, so the version a writer committed stays the
 * committed version until its next commit: a row found here is not read
 * again. (The archiver deletes the KPI rows of archived minutes; those are
 * final, never written again, and a delete leaves a missing row missing.) A collection that was
 * empty when the writer took the store over is complete here: a row missing from the cache is
 * missing from the server too, and is inserted unread.
 *
 * The cache keeps KNOWN_MAX_BYTES at most: a collection whose rows would
 * pass it is emptied and no longer complete, so its rows are read again
 * (once each) as before. Only a commit's rows enter it, after the commit
 * document is written: an epoch that is rolled back or undone leaves the
 * cache as the committed store is. */
#define _POSIX_C_SOURCE 200809L
#include <mongoc/mongoc.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "hot/mongo_int.h"

#define KNOWN_MAX_BYTES (64u << 20)
#define ENTRY_BYTES     64 /* a cached row's overhead beyond its id and document */

static void known_drop(hot_mongo *h, enum coll c)
{
    pmap *m = &h->known[c];
    for (size_t i = 0; i < m->n; i++)
        h->known_bytes -= strlen(m->v[i].id) + m->v[i].doc->len + ENTRY_BYTES;
    mg_pmap_free(m);
    memset(m, 0, sizeof *m);
    h->complete[c] = 0;
}

void mg_known_reset(hot_mongo *h)
{
    for (int c = FIRST_REPLACED; c <= LAST_TAGGED; c++)
        known_drop(h, (enum coll)c);
    h->known_bytes = 0;
}

/* At take-over, after the undo: the collections that hold no row. */
int mg_known_probe(hot_mongo *h)
{
    mg_known_reset(h);
    for (int c = FIRST_REPLACED; c <= LAST_TAGGED; c++) {
        bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, one;
        BSON_APPEND_INT32(&opts, "limit", 1);
        BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &one);
        BSON_APPEND_INT32(&one, "_id", 1);
        bson_append_document_end(&opts, &one);
        int rc = mg_find_one(h, (enum coll)c, &f, &opts, &one, "reading the store");
        bson_destroy(&f);
        bson_destroy(&opts);
        if (rc)
            return rc;
        h->complete[c] = bson_empty(&one);
        bson_destroy(&one);
    }
    return SS_OK;
}

/* The committed row id of c: *known is 1 when the cache can tell (the row,
 * or NULL for none), 0 when the server must be asked. */
const bson_t *mg_known_get(const hot_mongo *h, enum coll c, const char *id, int *known)
{
    const pent *p = mg_pmap_find(&h->known[c], id, strlen(id));
    *known = p || h->complete[c];
    return p ? p->doc : NULL;
}

/* The rows of the epoch just committed become the known ones. */
void mg_known_commit(hot_mongo *h)
{
    for (int c = FIRST_REPLACED; c <= LAST_TAGGED; c++) {
        pmap *pend = &h->pend[c];
        for (size_t i = 0; i < pend->n; i++) {
            pent *src = &pend->v[i];
            if (!src->next) { /* not expected: forget what may be stale */
                known_drop(h, (enum coll)c);
                continue;
            }
            size_t idn = strlen(src->id);
            pent *dst = mg_pmap_find(&h->known[c], src->id, idn);
            if (h->known_bytes + src->next->len + idn + ENTRY_BYTES > KNOWN_MAX_BYTES) {
                SS_DEBUG("hot:mongo", "%s: the cache of committed %s rows is full (%zu bytes)",
                         h->where, mg_coll_name[c], h->known_bytes);
                known_drop(h, (enum coll)c);
                dst = NULL;
                if (h->known_bytes + src->next->len + idn + ENTRY_BYTES > KNOWN_MAX_BYTES)
                    continue;
            }
            if (dst) {
                h->known_bytes -= dst->doc->len;
            } else {
                int added;
                dst = mg_pmap_get(&h->known[c], src->id, idn, &added);
                h->known_bytes += idn + ENTRY_BYTES;
            }
            bson_destroy(dst->doc);
            dst->doc = src->next; /* moved */
            src->next = NULL;
            h->known_bytes += dst->doc->len;
        }
    }
}

/* bench_mongo_insert FROM_URI TO_URI: the baseline of bench/mongo. Reads
 * every document that `process` left in the database of FROM_URI (facts,
 * dimensions, KPI rows, late and rejected events; not its state), without
 * the store's _e and _u tags, into memory; then, timed, writes them to the
 * database of TO_URI with plain libmongoc unordered bulk inserts of 2,048
 * documents, after creating the same indexes as the store. Prints the
 * documents and the seconds of the timed part. */
#define _POSIX_C_SOURCE 200809L
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 2048

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct docs {
    char *name;
    bson_t **v;
    size_t n, cap;
} docs;

static int create_index(mongoc_database_t *db, const char *coll, const char *k1, const char *k2)
{
    bson_t cmd = BSON_INITIALIZER, arr, ix, key;
    char name[64];
    snprintf(name, sizeof name, "%s_1%s%s%s", k1, k2 ? "_" : "", k2 ? k2 : "", k2 ? "_1" : "");
    BSON_APPEND_UTF8(&cmd, "createIndexes", coll);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &ix);
    BSON_APPEND_DOCUMENT_BEGIN(&ix, "key", &key);
    BSON_APPEND_INT32(&key, k1, 1);
    if (k2)
        BSON_APPEND_INT32(&key, k2, 1);
    bson_append_document_end(&ix, &key);
    BSON_APPEND_UTF8(&ix, "name", name);
    bson_append_document_end(&arr, &ix);
    bson_append_array_end(&cmd, &arr);
    bson_error_t e;
    int ok = mongoc_database_write_command_with_opts(db, &cmd, NULL, NULL, &e);
    bson_destroy(&cmd);
    if (!ok)
        fprintf(stderr, "bench_mongo_insert: index on %s: %s\n", coll, e.message);
    return ok ? 0 : -1;
}

static int insert_all(mongoc_database_t *db, const docs *d)
{
    mongoc_collection_t *c = mongoc_database_get_collection(db, d->name);
    int rc = 0;
    for (size_t at = 0; at < d->n && !rc; at += BATCH) {
        bson_t opts = BSON_INITIALIZER, reply;
        BSON_APPEND_BOOL(&opts, "ordered", false);
        mongoc_bulk_operation_t *b = mongoc_collection_create_bulk_operation_with_opts(c, &opts);
        bson_destroy(&opts);
        for (size_t i = at; i < d->n && i < at + BATCH; i++)
            mongoc_bulk_operation_insert(b, d->v[i]);
        bson_error_t e;
        if (!mongoc_bulk_operation_execute(b, &reply, &e)) {
            fprintf(stderr, "bench_mongo_insert: %s: %s\n", d->name, e.message);
            rc = -1;
        }
        bson_destroy(&reply);
        mongoc_bulk_operation_destroy(b);
    }
    mongoc_collection_destroy(c);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr,
                "usage: bench_mongo_insert mongodb://HOST:PORT/FROM mongodb://HOST:PORT/TO\n");
        return 2;
    }
    static const char *const names[] = {
        "orders",       "payments",   "cancellations", "customers",       "products",
        "categories",   "cities",     "countries",     "payment_methods", "order_statuses",
        "time_minutes", "kpi_minute", "late_events",   "rejected_events"};
    enum { NCOLL = sizeof names / sizeof names[0] };
    mongoc_init();
    bson_error_t e;
    mongoc_uri_t *from = mongoc_uri_new_with_error(argv[1], &e), *to = NULL;
    if (from)
        to = mongoc_uri_new_with_error(argv[2], &e);
    if (!from || !to) {
        fprintf(stderr, "bench_mongo_insert: %s\n", e.message);
        return 2;
    }
    mongoc_client_t *src = mongoc_client_new_from_uri(from), *dst = mongoc_client_new_from_uri(to);
    mongoc_database_t *sdb = mongoc_client_get_database(src, mongoc_uri_get_database(from));
    mongoc_database_t *ddb = mongoc_client_get_database(dst, mongoc_uri_get_database(to));
    docs all[NCOLL];
    size_t total = 0;
    for (size_t k = 0; k < NCOLL; k++) {
        docs *d = &all[k];
        memset(d, 0, sizeof *d);
        d->name = (char *)names[k];
        mongoc_collection_t *c = mongoc_database_get_collection(sdb, names[k]);
        bson_t filter = BSON_INITIALIZER;
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &filter, NULL, NULL);
        const bson_t *doc;
        while (mongoc_cursor_next(cur, &doc)) {
            if (d->n == d->cap) {
                d->cap = d->cap ? 2 * d->cap : 1024;
                d->v = realloc(d->v, d->cap * sizeof *d->v);
                if (!d->v)
                    return 1;
            }
            bson_t *copy = bson_new();
            bson_copy_to_excluding_noinit(doc, copy, "_e", "_u", NULL);
            d->v[d->n++] = copy;
        }
        if (mongoc_cursor_error(cur, &e)) {
            fprintf(stderr, "bench_mongo_insert: reading %s: %s\n", names[k], e.message);
            return 1;
        }
        total += d->n;
        mongoc_cursor_destroy(cur);
        bson_destroy(&filter);
        mongoc_collection_destroy(c);
    }
    double t0 = now_s();
    int rc = create_index(ddb, "orders", "ts", NULL) ||
             create_index(ddb, "orders", "order_id", NULL) ||
             create_index(ddb, "payments", "ts", NULL) ||
             create_index(ddb, "cancellations", "ts", NULL) ||
             create_index(ddb, "kpi_minute", "dimension", "minute_start");
    for (size_t k = 0; k < NCOLL && !rc; k++)
        rc = insert_all(ddb, &all[k]);
    double s = now_s() - t0;
    if (!rc)
        printf("%zu documents in %.3f s\n", total, s);
    for (size_t k = 0; k < NCOLL; k++) {
        for (size_t i = 0; i < all[k].n; i++)
            bson_destroy(all[k].v[i]);
        free(all[k].v);
    }
    mongoc_database_destroy(sdb);
    mongoc_database_destroy(ddb);
    mongoc_client_destroy(src);
    mongoc_client_destroy(dst);
    mongoc_uri_destroy(from);
    mongoc_uri_destroy(to);
    mongoc_cleanup();
    return rc ? 1 : 0;
}

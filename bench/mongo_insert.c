/* bench_mongo_insert URI FILE: the baseline of bench/mongo. Inserts every
 * event of a JSON Lines file as one document, _id = event_id, into the
 * collection of its type (orders, payments, cancellations) with plain
 * libmongoc unordered bulk inserts of 2,048 documents, the batch size of
 * `process`, after creating the same ts indexes. Prints the events per
 * second. */
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

static int flush(mongoc_bulk_operation_t **b, mongoc_collection_t *c, size_t *n)
{
    if (!*n)
        return 0;
    bson_t reply;
    bson_error_t e;
    int ok = mongoc_bulk_operation_execute(*b, &reply, &e) != 0;
    bson_destroy(&reply);
    mongoc_bulk_operation_destroy(*b);
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    *b = mongoc_collection_create_bulk_operation_with_opts(c, &opts);
    bson_destroy(&opts);
    *n = 0;
    if (!ok)
        fprintf(stderr, "bench_mongo_insert: %s\n", e.message);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: bench_mongo_insert mongodb://HOST:PORT/DB FILE.jsonl\n");
        return 2;
    }
    mongoc_init();
    bson_error_t e;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(argv[1], &e);
    if (!uri) {
        fprintf(stderr, "bench_mongo_insert: %s\n", e.message);
        return 2;
    }
    mongoc_client_t *client = mongoc_client_new_from_uri(uri);
    const char *db = mongoc_uri_get_database(uri);
    static const char *const names[3] = {"orders", "payments", "cancellations"};
    static const char *const types[3] = {"\"type\":\"order\"", "\"type\":\"payment\"",
                                         "\"type\":\"cancellation\""};
    mongoc_collection_t *coll[3];
    mongoc_bulk_operation_t *bulk[3];
    size_t pending[3] = {0};
    for (int i = 0; i < 3; i++) {
        coll[i] = mongoc_client_get_collection(client, db, names[i]);
        bson_t cmd = BSON_INITIALIZER, arr, ix, key, opts = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&cmd, "createIndexes", names[i]);
        BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &ix);
        BSON_APPEND_DOCUMENT_BEGIN(&ix, "key", &key);
        BSON_APPEND_INT32(&key, "ts", 1);
        bson_append_document_end(&ix, &key);
        BSON_APPEND_UTF8(&ix, "name", "ts_1");
        bson_append_document_end(&arr, &ix);
        bson_append_array_end(&cmd, &arr);
        if (!mongoc_collection_write_command_with_opts(coll[i], &cmd, NULL, NULL, &e))
            fprintf(stderr, "bench_mongo_insert: creating an index: %s\n", e.message);
        bson_destroy(&cmd);
        BSON_APPEND_BOOL(&opts, "ordered", false);
        bulk[i] = mongoc_collection_create_bulk_operation_with_opts(coll[i], &opts);
        bson_destroy(&opts);
    }
    FILE *f = fopen(argv[2], "r");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0, events = 0;
    ssize_t len;
    int rc = 0;
    double t0 = now_s();
    while (!rc && (len = getline(&line, &cap, f)) > 0) {
        bson_t doc;
        if (!bson_init_from_json(&doc, line, len, &e))
            continue;
        int t = strstr(line, types[0]) ? 0 : strstr(line, types[1]) ? 1 : 2;
        bson_iter_t it;
        bson_t out = BSON_INITIALIZER;
        if (bson_iter_init_find(&it, &doc, "event_id") && BSON_ITER_HOLDS_UTF8(&it)) {
            uint32_t n;
            const char *id = bson_iter_utf8(&it, &n);
            bson_append_utf8(&out, "_id", 3, id, (int)n);
        }
        bson_copy_to_excluding_noinit(&doc, &out, "event_id", NULL);
        mongoc_bulk_operation_insert(bulk[t], &out);
        bson_destroy(&out);
        bson_destroy(&doc);
        events++;
        if (++pending[t] == BATCH)
            rc = flush(&bulk[t], coll[t], &pending[t]);
    }
    for (int i = 0; i < 3 && !rc; i++)
        rc = flush(&bulk[i], coll[i], &pending[i]);
    double s = now_s() - t0;
    if (!rc)
        printf("%zu events in %.3f s: %.0f events/s\n", events, s, (double)events / s);
    for (int i = 0; i < 3; i++) {
        mongoc_bulk_operation_destroy(bulk[i]);
        mongoc_collection_destroy(coll[i]);
    }
    free(line);
    fclose(f);
    mongoc_client_destroy(client);
    mongoc_uri_destroy(uri);
    mongoc_cleanup();
    return rc ? 1 : 0;
}

/* Hot store on MongoDB ("mongodb://HOST:PORT/DB[?options]"), with libmongoc.
 *
 * The URI is MongoDB's connection string, given to libmongoc as it is (TLS,
 * auth and replica sets need no flag of ours); its path names the database.
 * Collections and document shapes: docs/data-dictionary.md.
 *
 * Exactly-once without transactions (docs/architecture.md, "MongoDB"): the
 * engine's batch between begin and commit is an epoch E, the one after the
 * last committed epoch C of the store's commit document (state/"commit").
 * Every document the batch writes carries _e = E << 16 | round, where round
 * counts the batch's round trips. Facts, late and rejected events, minutes,
 * categories and payment methods are only ever inserted; customers,
 * products, countries, cities and KPI rows are replaced, and a replaced
 * document keeps the version it replaced (the epoch's first view of it) in
 * _u. The commit document, written last and only if this process still
 * writes the store and C is unchanged, is the commit point: it carries E,
 * the shards' state and the input positions. A process that begins writing
 * first takes the store over and undoes every document with an epoch past C:
 * inserted ones are deleted, replaced ones restored from _u. So a SIGKILL at
 * any point, or an outage, ends with the store of the last commit.
 *
 * Round trips: facts go in one unordered bulk insert per collection and call
 * (a duplicate event_id is error 11000 on its document alone); everything
 * else is kept in memory until commit, then read once ($in on _id, for the
 * replaced collections) and written in one unordered bulk per collection.
 * A round trip that fails because the server is away is retried with
 * back-off here, not by the engine: the engine's batch cannot be rebuilt
 * without reading the input again, and every round trip above can be
 * repeated (a retried insert recognises its own documents by _e).
 *
 * @locality a handle is used by one thread (libmongoc clients are not
 * thread-safe); readers open their own. */
#define _POSIX_C_SOURCE 200809L
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "hot/hot.h"
#include "hot/mongo_int.h"

const char *const mg_coll_name[C_COUNT] = {
    [C_ORDERS] = "orders",
    [C_PAYMENTS] = "payments",
    [C_CANCELLATIONS] = "cancellations",
    [C_LATE] = "late_events",
    [C_REJECTED] = "rejected_events",
    [C_MINUTES] = "time_minutes",
    [C_CATEGORIES] = "categories",
    [C_METHODS] = "payment_methods",
    [C_CUSTOMERS] = "customers",
    [C_PRODUCTS] = "products",
    [C_COUNTRIES] = "countries",
    [C_CITIES] = "cities",
    [C_KPI] = "kpi_minute",
    [C_STATE] = "state",
    [C_ARCHIVES] = "archives",
    [C_NOTES] = "lifecycle_notes",
    [C_STATUSES] = "order_statuses",
};

static uint64_t str_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

void mg_pmap_clear(pmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].id);
        bson_destroy(m->v[i].doc);
        if (m->v[i].next)
            bson_destroy(m->v[i].next);
    }
    m->n = 0;
    if (m->slot)
        memset(m->slot, 0, m->nslot * sizeof *m->slot);
}

void mg_pmap_free(pmap *m)
{
    mg_pmap_clear(m);
    free(m->v);
    free(m->slot);
}

static void pmap_rehash(pmap *m)
{
    free(m->slot);
    m->nslot = m->nslot ? m->nslot * 2 : 1024;
    m->slot = ss_calloc(m->nslot, sizeof *m->slot);
    for (size_t i = 0; i < m->n; i++) {
        size_t j = str_hash(m->v[i].id, strlen(m->v[i].id)) & (m->nslot - 1);
        while (m->slot[j])
            j = (j + 1) & (m->nslot - 1);
        m->slot[j] = (uint32_t)i + 1;
    }
}

pent *mg_pmap_find(const pmap *m, const char *id, size_t n)
{
    if (!m->nslot)
        return NULL;
    size_t j = str_hash(id, n) & (m->nslot - 1);
    while (m->slot[j]) {
        pent *e = &m->v[m->slot[j] - 1];
        if (strlen(e->id) == n && memcmp(e->id, id, n) == 0)
            return e;
        j = (j + 1) & (m->nslot - 1);
    }
    return NULL;
}

/* The entry of id; *added is 1 when it is new (its doc is then empty). */
pent *mg_pmap_get(pmap *m, const char *id, size_t n, int *added)
{
    if ((m->n + 1) * 2 > m->nslot)
        pmap_rehash(m);
    size_t j = str_hash(id, n) & (m->nslot - 1);
    while (m->slot[j]) {
        pent *e = &m->v[m->slot[j] - 1];
        if (strlen(e->id) == n && memcmp(e->id, id, n) == 0) {
            *added = 0;
            return e;
        }
        j = (j + 1) & (m->nslot - 1);
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 256;
        m->v = ss_realloc(m->v, m->cap * sizeof *m->v);
    }
    pent *e = &m->v[m->n];
    memset(e, 0, sizeof *e);
    e->id = ss_malloc(n + 1);
    memcpy(e->id, id, n);
    e->id[n] = '\0';
    e->doc = bson_new();
    m->slot[j] = (uint32_t)++m->n;
    *added = 1;
    return e;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void mongo_cleanup(void)
{
    mongoc_cleanup();
}

/* libmongoc's own messages: warnings and worse go to our log, the rest
 * (its debug lines among them) nowhere. */
static void on_mongoc_log(mongoc_log_level_t level, const char *domain, const char *message,
                          void *ctx)
{
    (void)ctx;
    /* Closing a client ends its sessions; a server without sessions
     * (FerretDB 1.24) refuses, which changes nothing for the store. */
    if (level <= MONGOC_LOG_LEVEL_WARNING && strstr(message, "\"endSessions\""))
        SS_DEBUG("hot:mongo", "libmongoc %s: %s", domain, message);
    else if (level <= MONGOC_LOG_LEVEL_WARNING)
        SS_WARN("hot:mongo", "libmongoc %s: %s", domain, message);
}

static void mongo_setup(void)
{
    mongoc_log_set_handler(on_mongoc_log, NULL);
    mongoc_init();
    atexit(mongo_cleanup);
}

int64_t mg_tag_of(const hot_mongo *h)
{
    return h->epoch << ROUND_BITS | (int64_t)h->round;
}

/* Whether a failure is the server being away (retry), not a refusal. */
int mg_transient(const bson_error_t *e)
{
    if (e->domain == MONGOC_ERROR_STREAM || e->domain == MONGOC_ERROR_SERVER_SELECTION)
        return 1;
    if (e->domain == MONGOC_ERROR_SERVER || e->domain == MONGOC_ERROR_WRITE_CONCERN) {
        /* HostUnreachable, HostNotFound, NetworkTimeout, ShutdownInProgress,
         * PrimarySteppedDown, ExceededTimeLimit, SocketException,
         * NotWritablePrimary, InterruptedAtShutdown, InterruptedDueToReplStateChange,
         * NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary */
        static const uint32_t codes[] = {6,    7,     89,    91,    189,   262,
                                         9001, 10107, 11600, 11602, 13435, 13436};
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
            if (e->code == codes[i])
                return 1;
    }
    return 0;
}

/* After a failed round trip: SS_AGAIN to try it again after a back-off
 * (the server is away), or SS_EIO with the error logged. */
int mg_failed(hot_mongo *h, const bson_error_t *e, const char *what, int64_t *waited)
{
    if (!mg_transient(e) || *waited >= RETRY_MAX_MS) {
        SS_ERROR("hot:mongo", "%s on %s: %s", what, h->where, e->message);
        return SS_EIO;
    }
    int64_t ms = *waited < 400 ? 100 : *waited < 5000 ? *waited / 2 : 5000;
    SS_WARN("hot:mongo",
            "%s on %s: %s; the server is away, retrying in %lld ms (the batch is kept)", what,
            h->where, e->message, (long long)ms);
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    *waited += ms;
    return SS_AGAIN;
}

void mg_append_str(bson_t *b, const char *key, ss_str s)
{
    bson_append_utf8(b, key, -1, s.p ? s.p : "", (int)s.n);
}

void mg_append_opt(bson_t *b, const char *key, int64_t v)
{
    if (v == INT64_MIN)
        bson_append_null(b, key, -1);
    else
        bson_append_int64(b, key, -1, v);
}

int64_t mg_iter_int(const bson_iter_t *it)
{
    switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
        return bson_iter_int32(it);
    case BSON_TYPE_INT64:
        return bson_iter_int64(it);
    case BSON_TYPE_DOUBLE:
        return (int64_t)bson_iter_double(it);
    case BSON_TYPE_DATE_TIME:
        return bson_iter_date_time(it);
    case BSON_TYPE_BOOL:
        return bson_iter_bool(it);
    default:
        return INT64_MIN;
    }
}

int64_t mg_get_int(const bson_t *d, const char *key, int64_t dflt)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, d, key))
        return dflt;
    int64_t v = mg_iter_int(&it);
    return v == INT64_MIN ? dflt : v;
}

ss_str mg_get_str(const bson_t *d, const char *key)
{
    bson_iter_t it;
    uint32_t n = 0;
    if (!bson_iter_init_find(&it, d, key) || !BSON_ITER_HOLDS_UTF8(&it))
        return (ss_str){"", 0};
    const char *p = bson_iter_utf8(&it, &n);
    return (ss_str){p, n};
}

void mg_append_ms(bson_t *b, const char *key, int64_t ms)
{
    bson_append_date_time(b, key, -1, ms);
}

/* ---- open, indexes ---- */

void mongo_close(void *vst)
{
    hot_mongo *h = vst;
    if (!h)
        return;
    for (int i = 0; i < C_COUNT; i++) {
        if (h->c[i])
            mongoc_collection_destroy(h->c[i]);
        mg_pmap_free(&h->pend[i]);
    }
    mg_known_reset(h);
    for (size_t i = 0; i < h->npos; i++)
        free(h->pos[i].source);
    free(h->pos);
    free(h->shards);
    if (h->client)
        mongoc_client_destroy(h->client);
    if (h->uri)
        mongoc_uri_destroy(h->uri);
    free(h->db);
    free(h->where);
    free(h);
}

int mg_command(hot_mongo *h, const bson_t *cmd, bson_t *reply, bson_error_t *e)
{
    bson_t tmp;
    int ok = mongoc_client_command_simple(h->client, h->db, cmd, NULL, reply ? reply : &tmp, e);
    if (!reply)
        bson_destroy(&tmp);
    return ok;
}

static int create_index(hot_mongo *h, enum coll c, const char *name, const char *k1, const char *k2,
                        bson_error_t *e)
{
    bson_t cmd = BSON_INITIALIZER, arr, idx, key;
    BSON_APPEND_UTF8(&cmd, "createIndexes", mg_coll_name[c]);
    BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &arr);
    BSON_APPEND_DOCUMENT_BEGIN(&arr, "0", &idx);
    BSON_APPEND_DOCUMENT_BEGIN(&idx, "key", &key);
    BSON_APPEND_INT32(&key, k1, 1);
    if (k2)
        BSON_APPEND_INT32(&key, k2, 1);
    bson_append_document_end(&idx, &key);
    BSON_APPEND_UTF8(&idx, "name", name);
    bson_append_document_end(&arr, &idx);
    bson_append_array_end(&cmd, &arr);
    int ok = mg_command(h, &cmd, NULL, e);
    bson_destroy(&cmd);
    return ok;
}

static int setup_store(hot_mongo *h, bson_error_t *e)
{
    static const struct {
        enum coll c;
        const char *name, *k1, *k2;
    } idx[] = {
        {C_ORDERS, "ts_1", "ts", NULL},
        {C_ORDERS, "order_id_1", "order_id", NULL},
        {C_PAYMENTS, "ts_1", "ts", NULL},
        {C_CANCELLATIONS, "ts_1", "ts", NULL},
        {C_KPI, "dimension_1_minute_start_1", "dimension", "minute_start"},
    };
    for (size_t i = 0; i < sizeof idx / sizeof idx[0]; i++)
        if (!create_index(h, idx[i].c, idx[i].name, idx[i].k1, idx[i].k2, e))
            return 0;
    static const char *const statuses[][2] = {
        {"created", "ordered, no successful payment yet"},
        {"paid", "a payment succeeded"},
        {"payment_failed", "cancelled because no payment succeeded"},
        {"cancelled", "cancelled after payment, refunded"},
    };
    for (size_t i = 0; i < 4; i++) {
        bson_t sel = BSON_INITIALIZER, doc = BSON_INITIALIZER, opts = BSON_INITIALIZER;
        BSON_APPEND_UTF8(&sel, "_id", statuses[i][0]);
        BSON_APPEND_UTF8(&doc, "_id", statuses[i][0]);
        BSON_APPEND_UTF8(&doc, "description", statuses[i][1]);
        BSON_APPEND_BOOL(&opts, "upsert", true);
        int ok = mongoc_collection_replace_one(h->c[C_STATUSES], &sel, &doc, &opts, NULL, e);
        bson_destroy(&sel);
        bson_destroy(&doc);
        bson_destroy(&opts);
        if (!ok)
            return 0;
    }
    return 1;
}

static int bad_db_name(const char *db)
{
    if (!*db || strlen(db) >= 64)
        return 1;
    for (const char *p = db; *p; p++)
        if (strchr("/\\. \"$*<>:|?", *p))
            return 1;
    return 0;
}

int mongo_open(const char *target, const ss_hot_open_opts *o, void **out, char *err, size_t errlen)
{
    pthread_once(&init_once, mongo_setup);
    *out = NULL;
    hot_mongo *h = ss_calloc(1, sizeof *h);
    h->read_only = o && o->read_only;
    char full[4096];
    snprintf(full, sizeof full, "mongodb://%s", target);
    bson_error_t e;
    int rc = SS_EINVAL;
    h->uri = mongoc_uri_new_with_error(full, &e);
    if (!h->uri) {
        snprintf(err, errlen,
                 "malformed MongoDB URI '%s': %s; write it as mongodb://HOST:PORT/DB[?options]",
                 full, e.message);
        goto fail;
    }
    const char *db = mongoc_uri_get_database(h->uri);
    if (!db || !*db) {
        snprintf(err, errlen,
                 "the MongoDB URI '%s' names no database; give it as the path, e.g. "
                 "mongodb://127.0.0.1:27017/shopstream",
                 full);
        goto fail;
    }
    if (bad_db_name(db)) {
        snprintf(err, errlen,
                 "'%s' in '%s' is not a MongoDB database name: use up to 63 characters "
                 "without / \\ . space \" $ * < > : | ?",
                 db, full);
        goto fail;
    }
    h->db = ss_strdup(db);
    const mongoc_host_list_t *hosts = mongoc_uri_get_hosts(h->uri);
    char where[512];
    snprintf(where, sizeof where, "%s/%s", hosts ? hosts->host_and_port : "?", db);
    h->where = ss_strdup(where);
    if (!mongoc_uri_has_option(h->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
        mongoc_uri_set_option_as_int32(h->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
                                       DEFAULT_SELECT_MS);
    if (!mongoc_uri_has_option(h->uri, MONGOC_URI_CONNECTTIMEOUTMS))
        mongoc_uri_set_option_as_int32(h->uri, MONGOC_URI_CONNECTTIMEOUTMS, DEFAULT_SELECT_MS);
    h->client = mongoc_client_new_from_uri_with_error(h->uri, &e);
    if (!h->client) {
        snprintf(err, errlen, "bad MongoDB URI '%s': %s", full, e.message);
        goto fail;
    }
    mongoc_client_set_error_api(h->client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(h->client, "shopstream");
    rc = SS_EIO;
    bson_t ping = BSON_INITIALIZER, reply;
    BSON_APPEND_INT32(&ping, "ping", 1);
    int ok = mongoc_client_command_simple(h->client, "admin", &ping, NULL, &reply, &e);
    bson_destroy(&ping);
    if (!ok) {
        bson_destroy(&reply);
        if (e.domain == MONGOC_ERROR_CLIENT && e.code == MONGOC_ERROR_CLIENT_AUTHENTICATE)
            snprintf(err, errlen,
                     "MongoDB at %s refused the credentials of the URI: %s; check the user, "
                     "password and authSource",
                     h->where, e.message);
        else
            snprintf(err, errlen,
                     "cannot reach MongoDB at %s: %s; start the server (for a local one: "
                     "scripts/mongo start) or correct the URI",
                     h->where, e.message);
        goto fail;
    }
    bson_destroy(&reply);
    /* The server's description (from the driver's handshake) tells whether
     * it is a replica set member. */
    mongoc_server_description_t *sd = mongoc_client_select_server(h->client, true, NULL, &e);
    if (sd) {
        bson_iter_t it;
        h->replica_set =
            bson_iter_init_find(&it, mongoc_server_description_hello_response(sd), "setName");
        mongoc_server_description_destroy(sd);
    }
    for (int i = 0; i < C_COUNT; i++)
        h->c[i] = mongoc_client_get_collection(h->client, h->db, mg_coll_name[i]);
    /* A database the user may not read fails here, not at the first write. */
    bson_t lc = BSON_INITIALIZER;
    BSON_APPEND_INT32(&lc, "listCollections", 1);
    BSON_APPEND_BOOL(&lc, "nameOnly", true);
    ok = mg_command(h, &lc, NULL, &e);
    bson_destroy(&lc);
    if (!ok || (!h->read_only && !setup_store(h, &e))) {
        snprintf(err, errlen,
                 "MongoDB at %s refused the database '%s': %s; check the URI's "
                 "database, user and rights",
                 h->where, h->db, e.message);
        goto fail;
    }
    if (!h->read_only && mg_finish_archives(h) != SS_OK) {
        snprintf(err, errlen, "cannot finish the committed archives on %s", h->where);
        goto fail;
    }
    snprintf(h->writer, sizeof h->writer, "%ld-%lld-%lx", (long)getpid(), (long long)ss_now_ms(),
             (unsigned long)random());
    if (!h->read_only)
        SS_INFO("hot:mongo", "%s: %s%s", h->where,
                "epochs (every write tagged, uncommitted epochs undone at the next start)",
                h->replica_set ? "; the server is a replica set, but transactions are not used"
                               : "");
    *out = h;
    return SS_OK;
fail:
    mongo_close(h);
    return rc;
}

/* ---- finding documents ---- */

/* Runs a find and calls cb for each document; retries while the server is
 * away, from the start (callers make their cb safe to see a document twice
 * or reset their state in reset). */
int mg_find_each(hot_mongo *h, enum coll c, const bson_t *filter, const bson_t *opts, doc_cb cb,
                 void (*reset)(void *ctx), void *ctx, const char *what)
{
    int64_t waited = 0;
    for (;;) {
        mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h->c[c], filter, opts, NULL);
        const bson_t *doc;
        int out = SS_OK;
        while (out == SS_OK && mongoc_cursor_next(cur, &doc))
            out = cb(ctx, doc);
        bson_error_t e;
        int bad = out == SS_OK && mongoc_cursor_error(cur, &e);
        mongoc_cursor_destroy(cur);
        if (!bad)
            return out;
        int rc = mg_failed(h, &e, what, &waited);
        if (rc != SS_AGAIN)
            return rc;
        if (reset)
            reset(ctx);
    }
}

static int copy_first(void *ctx, const bson_t *doc)
{
    bson_t *out = ctx;
    if (bson_empty(out))
        bson_copy_to_excluding_noinit(doc, out, "", NULL);
    return SS_OK;
}

static void clear_doc(void *ctx)
{
    bson_reinit(ctx);
}

/* The one document of a filter into out (empty when there is none). */
/* Finds the documents of c whose _id is one of n ids, IN_CHUNK ids a query;
 * put(put_ctx, i, arr, key) appends the i-th id to arr under key. */
int mg_find_ids(hot_mongo *h, enum coll c, size_t n,
                void (*put)(void *put_ctx, size_t i, bson_t *arr, const char *key), void *put_ctx,
                doc_cb cb, void *ctx, const char *what)
{
    int rc = SS_OK;
    for (size_t at = 0; at < n && rc == SS_OK; at += IN_CHUNK) {
        size_t m = n - at < IN_CHUNK ? n - at : IN_CHUNK;
        bson_t f = BSON_INITIALIZER, in, arr;
        BSON_APPEND_DOCUMENT_BEGIN(&f, "_id", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
        for (size_t k = 0; k < m; k++) {
            char key[16];
            const char *kp;
            bson_uint32_to_string((uint32_t)k, &kp, key, sizeof key);
            put(put_ctx, at + k, &arr, kp);
        }
        bson_append_array_end(&in, &arr);
        bson_append_document_end(&f, &in);
        rc = mg_find_each(h, c, &f, NULL, cb, NULL, ctx, what);
        bson_destroy(&f);
    }
    return rc;
}

int mg_find_one(hot_mongo *h, enum coll c, const bson_t *filter, const bson_t *opts, bson_t *out,
                const char *what)
{
    bson_init(out);
    return mg_find_each(h, c, filter, opts, copy_first, clear_doc, out, what);
}

int mg_by_id(hot_mongo *h, enum coll c, const char *id, size_t n, bson_t *out, const char *what)
{
    bson_t f = BSON_INITIALIZER;
    bson_append_utf8(&f, "_id", 3, id, (int)n);
    int rc = mg_find_one(h, c, &f, NULL, out, what);
    bson_destroy(&f);
    return rc;
}

const ss_hot_ops ss_hot_mongo_ops = {
    .name = "mongodb",
    .scheme = "mongodb://",
    .open = mongo_open,
    .close = mongo_close,
    .begin = mongo_begin,
    .commit = mongo_commit,
    .rollback = mongo_rollback,
    .put_events = mongo_put_events,
    .has_event = mongo_has_event,
    .put_late = mongo_put_late,
    .put_rejected = mongo_put_rejected,
    .put_order_dims = mongo_put_order_dims,
    .put_place = mongo_put_place,
    .put_minute = mongo_put_minute,
    .put_kpis = mongo_put_kpis,
    .claim_shard = mongo_claim_shard,
    .put_state = mongo_put_state,
    .load_state = mongo_load_state,
    .read_kpis = mongo_read_kpis,
    .lookup_order = mongo_lookup_order,
    .data_size = mongo_data_size,
    .scan_range = mongo_scan_range,
    .delete_range = mongo_delete_range,
    .nth_oldest = mongo_nth_oldest,
    .archive_keys = mongo_archive_keys,
    .archive_begin = mongo_archive_begin,
    .archive_commit = mongo_archive_commit,
    .archive_forget = mongo_archive_forget,
    .archive_list = mongo_archive_list,
    .reclaim = mongo_reclaim,
    .version = mongo_version,
    .note_set = mongo_note_set,
    .note_list = mongo_note_list,
    .sql_attach = mongo_sql_attach,
    .scan_dims = mongo_scan_dims,
};

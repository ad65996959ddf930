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

#define ROUND_BITS        16
#define IN_CHUNK          4096         /* ids per $in read */
#define RETRY_MAX_MS      (10 * 60000) /* give up a round trip after this long */
#define DEFAULT_SELECT_MS 2000         /* serverSelectionTimeoutMS unless the URI says */

enum coll {
    C_ORDERS,
    C_PAYMENTS,
    C_CANCELLATIONS,
    C_LATE,
    C_REJECTED,
    C_MINUTES,
    C_CATEGORIES,
    C_METHODS,
    C_CUSTOMERS,
    C_PRODUCTS,
    C_COUNTRIES,
    C_CITIES,
    C_KPI,
    C_STATE,
    C_ARCHIVES,
    C_NOTES,
    C_STATUSES,
    C_COUNT
};

/* Collections at or past C_CUSTOMERS (up to C_KPI) are replaced, not only
 * inserted. */
#define FIRST_REPLACED C_CUSTOMERS
#define LAST_TAGGED    C_KPI

static const char *const coll_name[C_COUNT] = {
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

/* ---- pending writes of an epoch: documents keyed by _id ---- */

enum { P_PLACE = 1 }; /* countries, cities: the profile's reference data was given */

typedef struct pent {
    char *id;
    bson_t *doc; /* the fields the epoch sets, _id first (a bson_t must not move) */
    int64_t ts;  /* customers: the order's time */
    unsigned flags;
} pent;

typedef struct pmap {
    pent *v;
    size_t n, cap;
    uint32_t *slot; /* index + 1, 0 = free */
    size_t nslot;
} pmap;

static uint64_t str_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static void pmap_clear(pmap *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].id);
        bson_destroy(m->v[i].doc);
    }
    m->n = 0;
    if (m->slot)
        memset(m->slot, 0, m->nslot * sizeof *m->slot);
}

static void pmap_free(pmap *m)
{
    pmap_clear(m);
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

static pent *pmap_find(const pmap *m, const char *id, size_t n)
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
static pent *pmap_get(pmap *m, const char *id, size_t n, int *added)
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

/* ---- the handle ---- */

typedef struct hshard {
    ss_hot_state s;
    char owner[64];
} hshard;

typedef struct hpos {
    char *source;
    int64_t offset;
} hpos;

typedef struct hot_mongo {
    mongoc_uri_t *uri;
    mongoc_client_t *client;
    mongoc_collection_t *c[C_COUNT];
    char *db, *where; /* database name; "HOST:PORT/DB" for messages */
    int read_only;
    int replica_set;   /* the server could run transactions */
    char writer[64];   /* this process's claim on the store */
    int writing;       /* the store is taken over and recovered */
    int64_t committed; /* C: the last committed epoch */
    int64_t epoch;     /* E while a batch is open, else 0 */
    uint32_t round;
    int in_tx;
    /* The committed state (a writer's own copy) and the batch's changes. */
    hshard *shards;
    size_t nshards;
    hpos *pos;
    size_t npos;
    int state_dirty;
    pmap pend[C_COUNT];
} hot_mongo;

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
    if (level <= MONGOC_LOG_LEVEL_WARNING)
        SS_WARN("hot:mongo", "libmongoc %s: %s", domain, message);
}

static void mongo_setup(void)
{
    mongoc_log_set_handler(on_mongoc_log, NULL);
    mongoc_init();
    atexit(mongo_cleanup);
}

static int64_t tag_of(const hot_mongo *h)
{
    return h->epoch << ROUND_BITS | (int64_t)h->round;
}

/* Whether a failure is the server being away (retry), not a refusal. */
static int transient(const bson_error_t *e)
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
static int failed(hot_mongo *h, const bson_error_t *e, const char *what, int64_t *waited)
{
    if (!transient(e) || *waited >= RETRY_MAX_MS) {
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

static void append_str(bson_t *b, const char *key, ss_str s)
{
    bson_append_utf8(b, key, -1, s.p ? s.p : "", (int)s.n);
}

static void append_opt(bson_t *b, const char *key, int64_t v)
{
    if (v == INT64_MIN)
        bson_append_null(b, key, -1);
    else
        bson_append_int64(b, key, -1, v);
}

static int64_t iter_int(const bson_iter_t *it)
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

static int64_t get_int(const bson_t *d, const char *key, int64_t dflt)
{
    bson_iter_t it;
    if (!bson_iter_init_find(&it, d, key))
        return dflt;
    int64_t v = iter_int(&it);
    return v == INT64_MIN ? dflt : v;
}

static ss_str get_str(const bson_t *d, const char *key)
{
    bson_iter_t it;
    uint32_t n = 0;
    if (!bson_iter_init_find(&it, d, key) || !BSON_ITER_HOLDS_UTF8(&it))
        return (ss_str){"", 0};
    const char *p = bson_iter_utf8(&it, &n);
    return (ss_str){p, n};
}

static void append_ms(bson_t *b, const char *key, int64_t ms)
{
    bson_append_date_time(b, key, -1, ms);
}

/* ---- open, indexes ---- */

static void mongo_close(void *vst)
{
    hot_mongo *h = vst;
    if (!h)
        return;
    for (int i = 0; i < C_COUNT; i++) {
        if (h->c[i])
            mongoc_collection_destroy(h->c[i]);
        pmap_free(&h->pend[i]);
    }
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

static int command(hot_mongo *h, const bson_t *cmd, bson_t *reply, bson_error_t *e)
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
    BSON_APPEND_UTF8(&cmd, "createIndexes", coll_name[c]);
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
    int ok = command(h, &cmd, NULL, e);
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

static int finish_archives(hot_mongo *h);

static int mongo_open(const char *target, const ss_hot_open_opts *o, void **out, char *err,
                      size_t errlen)
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
        h->c[i] = mongoc_client_get_collection(h->client, h->db, coll_name[i]);
    /* A database the user may not read fails here, not at the first write. */
    bson_t lc = BSON_INITIALIZER;
    BSON_APPEND_INT32(&lc, "listCollections", 1);
    BSON_APPEND_BOOL(&lc, "nameOnly", true);
    ok = command(h, &lc, NULL, &e);
    bson_destroy(&lc);
    if (!ok || (!h->read_only && !setup_store(h, &e))) {
        snprintf(err, errlen,
                 "MongoDB at %s refused the database '%s': %s; check the URI's "
                 "database, user and rights",
                 h->where, h->db, e.message);
        goto fail;
    }
    if (!h->read_only && finish_archives(h) != SS_OK) {
        snprintf(err, errlen, "cannot finish the committed archives on %s", h->where);
        goto fail;
    }
    snprintf(h->writer, sizeof h->writer, "%ld-%lld-%lx", (long)getpid(), (long long)ss_now_ms(),
             (unsigned long)random());
    SS_INFO("hot:mongo", "%s: %s%s", h->where,
            "epochs (every write tagged, uncommitted epochs undone at the next start)",
            h->replica_set ? "; the server is a replica set, but transactions are not used" : "");
    *out = h;
    return SS_OK;
fail:
    mongo_close(h);
    return rc;
}

/* ---- finding documents ---- */

typedef int (*doc_cb)(void *ctx, const bson_t *doc);

/* Runs a find and calls cb for each document; retries while the server is
 * away, from the start (callers make their cb safe to see a document twice
 * or reset their state in reset). */
static int find_each(hot_mongo *h, enum coll c, const bson_t *filter, const bson_t *opts, doc_cb cb,
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
        int rc = failed(h, &e, what, &waited);
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
static int find_one(hot_mongo *h, enum coll c, const bson_t *filter, const bson_t *opts,
                    bson_t *out, const char *what)
{
    bson_init(out);
    return find_each(h, c, filter, opts, copy_first, clear_doc, out, what);
}

static int by_id(hot_mongo *h, enum coll c, const char *id, size_t n, bson_t *out, const char *what)
{
    bson_t f = BSON_INITIALIZER;
    bson_append_utf8(&f, "_id", 3, id, (int)n);
    int rc = find_one(h, c, &f, NULL, out, what);
    bson_destroy(&f);
    return rc;
}

/* ---- bulk writes ---- */

/* Runs a built bulk write; reports each failed document's index through
 * dup (for error 11000) and fails on any other error. *retry is set when
 * the server was away: the caller rebuilds the bulk and runs it again. */
static int run_bulk(hot_mongo *h, mongoc_bulk_operation_t *b, void (*dup)(void *, uint32_t),
                    void *ctx, const char *what, int64_t *waited, int *retry)
{
    bson_t reply;
    bson_error_t e;
    *retry = 0;
    uint32_t ok = mongoc_bulk_operation_execute(b, &reply, &e);
    int rc = SS_OK;
    if (!ok) {
        bson_iter_t it, arr;
        int other = 0, any = 0;
        if (bson_iter_init_find(&it, &reply, "writeErrors") && BSON_ITER_HOLDS_ARRAY(&it) &&
            bson_iter_recurse(&it, &arr)) {
            while (bson_iter_next(&arr)) {
                bson_t we;
                uint32_t len;
                const uint8_t *data;
                bson_iter_document(&arr, &len, &data);
                if (!bson_init_static(&we, data, len))
                    continue;
                any = 1;
                int64_t code = get_int(&we, "code", 0), index = get_int(&we, "index", -1);
                if (code == 11000 && index >= 0) {
                    if (dup)
                        dup(ctx, (uint32_t)index);
                } else if (!other) {
                    other = 1;
                    SS_ERROR("hot:mongo", "%s on %s: %s", what, h->where, get_str(&we, "errmsg").p);
                }
            }
        }
        if (other)
            rc = SS_EIO;
        else if (!any || bson_has_field(&reply, "writeConcernErrors")) {
            rc = failed(h, &e, what, waited);
            if (rc == SS_AGAIN) {
                *retry = 1;
                rc = SS_OK;
            }
        }
    }
    bson_destroy(&reply);
    return rc;
}

static mongoc_bulk_operation_t *new_bulk(hot_mongo *h, enum coll c)
{
    bson_t opts = BSON_INITIALIZER;
    BSON_APPEND_BOOL(&opts, "ordered", false);
    mongoc_bulk_operation_t *b = mongoc_collection_create_bulk_operation_with_opts(h->c[c], &opts);
    bson_destroy(&opts);
    return b;
}

/* ---- facts ---- */

/* The fields every fact document starts with: its event id as _id, the
 * order it belongs to and its time. */
static void fact_head(const ss_event *ev, bson_t *d)
{
    append_str(d, "_id", ev->event_id);
    append_str(d, "order_id", ev->order_id);
    append_ms(d, "ts", ev->ts);
}

/* The order dimensions a payment or cancellation is attributed to. */
static void attrib_fields(const ss_attrib *at, bson_t *d)
{
    append_str(d, "city", at->city);
    append_str(d, "country", at->country);
    append_str(d, "category", at->category);
}

static void order_doc(const ss_event *ev, int64_t tag, bson_t *d)
{
    const ss_order *o = &ev->u.order;
    fact_head(ev, d);
    append_str(d, "customer_id", o->customer_id);
    append_str(d, "customer_segment", o->customer_segment);
    append_str(d, "product_id", o->product_id);
    append_str(d, "product_name", o->product_name);
    append_str(d, "category", o->category);
    append_str(d, "city", o->city);
    append_str(d, "country", o->country);
    BSON_APPEND_INT32(d, "quantity", o->quantity);
    BSON_APPEND_INT64(d, "unit_price_cents", o->unit_price);
    BSON_APPEND_INT64(d, "amount_cents", o->amount);
    BSON_APPEND_INT64(d, "discount_cents", o->discount);
    BSON_APPEND_INT64(d, "tax_cents", o->tax);
    BSON_APPEND_INT64(d, "shipping_cents", o->shipping);
    BSON_APPEND_INT64(d, "total_price_cents", o->total_price);
    append_str(d, "currency", o->currency);
    append_str(d, "payment_method", o->payment_method);
    BSON_APPEND_INT64(d, "_e", tag);
}

static void payment_doc(const ss_event *ev, const ss_attrib *at, int64_t tag, bson_t *d)
{
    const ss_payment *p = &ev->u.payment;
    fact_head(ev, d);
    append_str(d, "payment_method", p->payment_method);
    BSON_APPEND_INT64(d, "amount_cents", p->amount);
    BSON_APPEND_UTF8(d, "status", p->success ? "success" : "failed");
    if (p->success)
        BSON_APPEND_NULL(d, "failure_reason");
    else
        append_str(d, "failure_reason", p->failure_reason);
    BSON_APPEND_INT32(d, "attempt", p->attempt);
    attrib_fields(at, d);
    BSON_APPEND_INT64(d, "_e", tag);
}

static void cancel_doc(const ss_event *ev, const ss_attrib *at, int64_t tag, bson_t *d)
{
    const ss_cancellation *c = &ev->u.cancel;
    fact_head(ev, d);
    append_str(d, "reason", c->reason);
    BSON_APPEND_INT64(d, "refund_cents", c->refund);
    attrib_fields(at, d);
    append_str(d, "payment_method", at->payment_method);
    BSON_APPEND_INT64(d, "_e", tag);
}

typedef struct dup_ctx {
    const size_t *map; /* bulk index -> event index */
    uint8_t *is_new;
    size_t *dups; /* event indexes that met 11000, to check after a retry */
    size_t ndups;
} dup_ctx;

static void on_dup(void *vctx, uint32_t index)
{
    dup_ctx *d = vctx;
    size_t i = d->map[index];
    d->is_new[i] = 0;
    d->dups[d->ndups++] = i;
}

typedef struct tag_check {
    int64_t tag;
    const ss_event *const *evs;
    uint8_t *is_new;
    const size_t *idx;
    size_t n;
} tag_check;

static int on_tagged(void *vctx, const bson_t *doc)
{
    tag_check *t = vctx;
    if (get_int(doc, "_e", -1) != t->tag)
        return SS_OK;
    ss_str id = get_str(doc, "_id");
    for (size_t k = 0; k < t->n; k++) {
        const ss_event *ev = t->evs[t->idx[k]];
        if (ev->event_id.n == id.n && memcmp(ev->event_id.p, id.p, id.n) == 0)
            t->is_new[t->idx[k]] = 1;
    }
    return SS_OK;
}

/* After a retried insert, a document that met 11000 may be this call's own
 * (the first attempt stored it before the server went away): its _e says. */
static int recheck_dups(hot_mongo *h, enum coll c, const ss_event *const *evs, uint8_t *is_new,
                        const size_t *dups, size_t ndups, int64_t tag)
{
    int rc = SS_OK;
    for (size_t at = 0; at < ndups && rc == SS_OK; at += IN_CHUNK) {
        size_t n = ndups - at < IN_CHUNK ? ndups - at : IN_CHUNK;
        bson_t f = BSON_INITIALIZER, in, arr;
        BSON_APPEND_DOCUMENT_BEGIN(&f, "_id", &in);
        BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
        for (size_t k = 0; k < n; k++) {
            char key[16];
            const char *kp;
            bson_uint32_to_string((uint32_t)k, &kp, key, sizeof key);
            append_str(&arr, kp, evs[dups[at + k]]->event_id);
        }
        bson_append_array_end(&in, &arr);
        bson_append_document_end(&f, &in);
        tag_check t = {tag, evs, is_new, dups + at, n};
        rc = find_each(h, c, &f, NULL, on_tagged, NULL, &t, "checking a retried insert");
        bson_destroy(&f);
    }
    return rc;
}

static int mongo_put_events(void *vst, const ss_event *const *evs, const ss_attrib *attrib,
                            size_t n, uint8_t *is_new)
{
    hot_mongo *h = vst;
    static const enum coll colls[] = {C_ORDERS, C_PAYMENTS, C_CANCELLATIONS};
    static const ss_event_type types[] = {SS_EV_ORDER, SS_EV_PAYMENT, SS_EV_CANCELLATION};
    size_t *map = ss_malloc((n ? n : 1) * sizeof *map);
    size_t *dups = ss_malloc((n ? n : 1) * sizeof *dups);
    int rc = SS_OK;
    h->round++;
    int64_t tag = tag_of(h);
    for (int t = 0; t < 3 && rc == SS_OK; t++) {
        int64_t waited = 0;
        int retried = 0;
        dup_ctx d = {map, is_new, dups, 0};
        for (;;) {
            mongoc_bulk_operation_t *b = new_bulk(h, colls[t]);
            size_t nb = 0;
            d.ndups = 0;
            for (size_t i = 0; i < n; i++) {
                const ss_event *ev = evs[i];
                if (ev->type != types[t])
                    continue;
                bson_t doc = BSON_INITIALIZER;
                if (t == 0)
                    order_doc(ev, tag, &doc);
                else if (t == 1)
                    payment_doc(ev, &attrib[i], tag, &doc);
                else
                    cancel_doc(ev, &attrib[i], tag, &doc);
                mongoc_bulk_operation_insert(b, &doc);
                bson_destroy(&doc);
                map[nb++] = i;
                is_new[i] = 1;
            }
            int retry = 0;
            if (nb)
                rc = run_bulk(h, b, on_dup, &d, "storing events", &waited, &retry);
            mongoc_bulk_operation_destroy(b);
            if (rc || !retry)
                break;
            retried = 1;
        }
        if (rc == SS_OK && retried && d.ndups)
            rc = recheck_dups(h, colls[t], evs, is_new, dups, d.ndups, tag);
    }
    free(map);
    free(dups);
    return rc;
}

static int mongo_has_event(void *vst, ss_str event_id, int *found)
{
    hot_mongo *h = vst;
    *found = 0;
    for (int c = C_ORDERS; c <= C_CANCELLATIONS && !*found; c++) {
        bson_t doc;
        int rc = by_id(h, (enum coll)c, event_id.p, event_id.n, &doc, "looking up an event");
        *found = !bson_empty(&doc);
        bson_destroy(&doc);
        if (rc)
            return rc;
    }
    return SS_OK;
}

/* Inserts one document tagged with this round; *is_new = 0 when a document
 * of its _id was there before. */
static int insert_tagged(hot_mongo *h, enum coll c, const bson_t *doc, int *is_new,
                         const char *what)
{
    int64_t waited = 0;
    int retried = 0;
    for (;;) {
        bson_error_t e;
        if (mongoc_collection_insert_one(h->c[c], doc, NULL, NULL, &e)) {
            *is_new = 1;
            return SS_OK;
        }
        if (e.domain == MONGOC_ERROR_SERVER && e.code == 11000) {
            *is_new = 0;
            if (retried) {
                bson_iter_t it;
                bson_t cur;
                uint32_t len = 0;
                const char *id =
                    bson_iter_init_find(&it, doc, "_id") ? bson_iter_utf8(&it, &len) : "";
                int rc = by_id(h, c, id, len, &cur, what);
                *is_new = get_int(&cur, "_e", -1) == get_int(doc, "_e", -2);
                bson_destroy(&cur);
                return rc;
            }
            return SS_OK;
        }
        int rc = failed(h, &e, what, &waited);
        if (rc != SS_AGAIN)
            return rc;
        retried = 1;
    }
}

static int mongo_put_late(void *vst, const ss_event *ev, const char *raw, size_t len,
                          int64_t watermark, int *is_new)
{
    hot_mongo *h = vst;
    h->round++;
    bson_t d = BSON_INITIALIZER;
    append_str(&d, "_id", ev->event_id);
    BSON_APPEND_UTF8(&d, "type", ss_event_type_name(ev->type));
    append_ms(&d, "ts", ev->ts);
    append_ms(&d, "watermark", watermark);
    append_ms(&d, "received_at", ss_now_ms());
    bson_append_utf8(&d, "raw", 3, raw, (int)len);
    BSON_APPEND_INT64(&d, "_e", tag_of(h));
    int rc = insert_tagged(h, C_LATE, &d, is_new, "storing a late event");
    bson_destroy(&d);
    return rc;
}

static int mongo_put_rejected(void *vst, const char *raw, size_t len, size_t raw_bytes,
                              const char *reason, const char *source, int64_t position)
{
    hot_mongo *h = vst;
    char id[33];
    ss_hot_raw_id(raw, len, raw_bytes, id);
    int added;
    pent *p = pmap_get(&h->pend[C_REJECTED], id, 32, &added);
    if (!added)
        return SS_OK;
    BSON_APPEND_UTF8(p->doc, "_id", id);
    append_ms(p->doc, "received_at", ss_now_ms());
    BSON_APPEND_UTF8(p->doc, "source", source);
    BSON_APPEND_INT64(p->doc, "position", position);
    BSON_APPEND_UTF8(p->doc, "reason", reason);
    bson_append_binary(p->doc, "raw", 3, BSON_SUBTYPE_BINARY, (const uint8_t *)raw, (uint32_t)len);
    BSON_APPEND_INT64(p->doc, "raw_bytes", (int64_t)raw_bytes);
    return SS_OK;
}

/* ---- dimensions and KPIs: kept until commit ---- */

static pent *pend_str(hot_mongo *h, enum coll c, ss_str id, int *added)
{
    pent *p = pmap_get(&h->pend[c], id.p, id.n, added);
    if (*added)
        append_str(p->doc, "_id", id);
    return p;
}

static void pend_insert_only(hot_mongo *h, enum coll c, ss_str id)
{
    int added;
    pend_str(h, c, id, &added);
}

static void customer_fields(bson_t *d, ss_str id, const ss_str *v, int64_t ts)
{
    append_str(d, "_id", id);
    append_str(d, "customer_segment", v[0]);
    append_str(d, "city", v[1]);
    append_str(d, "country", v[2]);
    append_ms(d, "first_seen", ts);
}

static int mongo_put_order_dims(void *vst, const ss_event *ev, unsigned what)
{
    hot_mongo *h = vst;
    const ss_order *o = &ev->u.order;
    int added;
    if (what & SS_DIMS_CUSTOMER) {
        ss_str v[3] = {o->customer_segment, o->city, o->country};
        pent *p = pmap_get(&h->pend[C_CUSTOMERS], o->customer_id.p, o->customer_id.n, &added);
        ss_str cur[3] = {get_str(p->doc, "customer_segment"), get_str(p->doc, "city"),
                         get_str(p->doc, "country")};
        if (added || ss_hot_customer_wins(ev->ts, v, p->ts, cur)) {
            bson_reinit(p->doc);
            customer_fields(p->doc, o->customer_id, v, ev->ts);
            p->ts = ev->ts;
        }
    }
    if (what & SS_DIMS_PRODUCT) {
        pent *p = pmap_get(&h->pend[C_PRODUCTS], o->product_id.p, o->product_id.n, &added);
        bson_reinit(p->doc);
        append_str(p->doc, "_id", o->product_id);
        append_str(p->doc, "product_name", o->product_name);
        append_str(p->doc, "category", o->category);
        BSON_APPEND_DOUBLE(p->doc, "unit_price", (double)o->unit_price / 100.0);
    }
    if (what & SS_DIMS_PLACES) {
        pend_insert_only(h, C_CATEGORIES, o->category);
        pend_insert_only(h, C_METHODS, o->payment_method);
        pend_str(h, C_COUNTRIES, o->country, &added);
        pent *c = pend_str(h, C_CITIES, o->city, &added);
        if (added)
            append_str(c->doc, "country", o->country);
    }
    return SS_OK;
}

static int mongo_put_place(void *vst, const char *city, const char *country,
                           const char *country_code, const char *region, double lat, double lon)
{
    hot_mongo *h = vst;
    int added;
    pent *k = pend_str(h, C_COUNTRIES, (ss_str){country, (uint32_t)strlen(country)}, &added);
    bson_reinit(k->doc);
    BSON_APPEND_UTF8(k->doc, "_id", country);
    BSON_APPEND_UTF8(k->doc, "country_code", country_code);
    BSON_APPEND_UTF8(k->doc, "region", region);
    k->flags |= P_PLACE;
    pent *c = pend_str(h, C_CITIES, (ss_str){city, (uint32_t)strlen(city)}, &added);
    ss_str first =
        added ? (ss_str){country, (uint32_t)strlen(country)} : get_str(c->doc, "country");
    char *first_country = ss_malloc(first.n + 1);
    memcpy(first_country, first.p, first.n);
    first_country[first.n] = '\0';
    bson_reinit(c->doc);
    BSON_APPEND_UTF8(c->doc, "_id", city);
    BSON_APPEND_UTF8(c->doc, "country", first_country);
    BSON_APPEND_DOUBLE(c->doc, "lat", lat);
    BSON_APPEND_DOUBLE(c->doc, "lon", lon);
    free(first_country);
    c->flags |= P_PLACE;
    return SS_OK;
}

static int mongo_put_minute(void *vst, int64_t minute)
{
    hot_mongo *h = vst;
    char ts[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(minute, ts);
    int added;
    pent *p = pmap_get(&h->pend[C_MINUTES], ts, SS_ISO_LEN, &added);
    if (!added)
        return SS_OK;
    ss_hot_minute m;
    ss_hot_minute_of(minute, &m);
    append_ms(p->doc, "_id", minute);
    bson_append_utf8(p->doc, "date", 4, ts, 10);
    BSON_APPEND_INT32(p->doc, "hour", m.hour);
    BSON_APPEND_INT32(p->doc, "minute", m.minute);
    BSON_APPEND_INT32(p->doc, "weekday", m.weekday);
    BSON_APPEND_UTF8(p->doc, "weekday_name", m.weekday_name);
    return SS_OK;
}

static int kpi_id(const ss_kpi_row *r, char *buf, size_t cap)
{
    char ts[SS_ISO_LEN + 1] = {0};
    ss_time_format_iso(r->minute, ts);
    return snprintf(buf, cap, "%s|%s|%d|%.*s", ss_dim_name(r->dim), ts, r->shard, (int)r->value.n,
                    r->value.p);
}

static int mongo_put_kpis(void *vst, const ss_kpi_row *rows, size_t n)
{
    hot_mongo *h = vst;
    for (size_t i = 0; i < n; i++) {
        const ss_kpi_row *r = &rows[i];
        char id[1024];
        int len = kpi_id(r, id, sizeof id);
        if (len < 0 || (size_t)len >= sizeof id)
            return SS_EINVAL;
        int added;
        pent *p = pmap_get(&h->pend[C_KPI], id, (size_t)len, &added);
        bson_t *d = p->doc;
        bson_reinit(d);
        bson_append_utf8(d, "_id", 3, id, len);
        append_ms(d, "minute_start", r->minute);
        BSON_APPEND_UTF8(d, "dimension", ss_dim_name(r->dim));
        append_str(d, "dimension_value", r->value);
        BSON_APPEND_INT32(d, "shard", r->shard);
        BSON_APPEND_INT64(d, "orders", r->k.orders);
        BSON_APPEND_INT64(d, "units", r->k.units);
        BSON_APPEND_INT64(d, "gross_revenue_cents", r->k.gross_cents);
        BSON_APPEND_INT64(d, "paid_revenue_cents", r->k.paid_cents);
        BSON_APPEND_INT64(d, "payment_attempts", r->k.attempts);
        BSON_APPEND_INT64(d, "failed_payments", r->k.failed);
        BSON_APPEND_INT64(d, "cancellations", r->k.cancellations);
        BSON_APPEND_INT64(d, "cancelled_revenue_cents", r->k.cancelled_cents);
        BSON_APPEND_INT32(d, "final", r->final);
    }
    return SS_OK;
}

/* ---- undo and recovery ---- */

typedef struct undo_ctx {
    hot_mongo *h;
    mongoc_bulk_operation_t *b;
    size_t n;
} undo_ctx;

static int on_undo(void *vctx, const bson_t *doc)
{
    undo_ctx *u = vctx;
    bson_iter_t it, id;
    bson_t sel = BSON_INITIALIZER;
    if (bson_iter_init_find(&id, doc, "_id"))
        bson_append_iter(&sel, "_id", 3, &id);
    if (bson_iter_init_find(&it, doc, "_u") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
        uint32_t len;
        const uint8_t *data;
        bson_t prev;
        bson_iter_document(&it, &len, &data);
        if (bson_init_static(&prev, data, len))
            mongoc_bulk_operation_replace_one_with_opts(u->b, &sel, &prev, NULL, NULL);
    } else {
        mongoc_bulk_operation_remove_one_with_opts(u->b, &sel, NULL, NULL);
    }
    bson_destroy(&sel);
    u->n++;
    return SS_OK;
}

/* Undoes every document whose _e is at or past from: the writes of epochs
 * that never committed. */
static int undo_from(hot_mongo *h, int64_t from)
{
    int rc = SS_OK;
    uint64_t undone = 0;
    for (int c = 0; c <= LAST_TAGGED && rc == SS_OK; c++) {
        bson_t f = BSON_INITIALIZER, cond;
        BSON_APPEND_DOCUMENT_BEGIN(&f, "_e", &cond);
        BSON_APPEND_INT64(&cond, "$gte", from);
        bson_append_document_end(&f, &cond);
        int64_t waited = 0;
        for (;;) {
            if (c < FIRST_REPLACED) {
                bson_t reply;
                bson_error_t e;
                if (mongoc_collection_delete_many(h->c[c], &f, NULL, &reply, &e)) {
                    undone += (uint64_t)get_int(&reply, "deletedCount", 0);
                    bson_destroy(&reply);
                    break;
                }
                bson_destroy(&reply);
                rc = failed(h, &e, "undoing an uncommitted batch", &waited);
            } else {
                undo_ctx u = {h, new_bulk(h, (enum coll)c), 0};
                rc = find_each(h, (enum coll)c, &f, NULL, on_undo, NULL, &u,
                               "undoing an uncommitted batch");
                int retry = 0;
                if (rc == SS_OK && u.n)
                    rc = run_bulk(h, u.b, NULL, NULL, "undoing an uncommitted batch", &waited,
                                  &retry);
                mongoc_bulk_operation_destroy(u.b);
                undone += u.n;
                if (rc == SS_OK && !retry)
                    break;
                if (rc == SS_OK)
                    rc = SS_AGAIN;
            }
            if (rc != SS_AGAIN)
                break;
            rc = SS_OK;
        }
        bson_destroy(&f);
    }
    if (rc == SS_OK && undone)
        SS_INFO("hot:mongo", "%s: undid %llu documents of a batch that never committed", h->where,
                (unsigned long long)undone);
    return rc;
}

static void free_state(hot_mongo *h)
{
    for (size_t i = 0; i < h->npos; i++)
        free(h->pos[i].source);
    h->npos = 0;
    h->nshards = 0;
}

static void read_shard(const bson_t *d, hshard *s)
{
    memset(s, 0, sizeof *s);
    s->s.shard = (int)get_int(d, "shard", 0);
    s->s.watermark = get_int(d, "watermark", INT64_MIN);
    s->s.input_watermark = get_int(d, "input_watermark", INT64_MIN);
    s->s.max_ts = get_int(d, "max_ts", INT64_MIN);
    s->s.events_in = (uint64_t)get_int(d, "events_in", 0);
    s->s.stored = (uint64_t)get_int(d, "stored", 0);
    s->s.duplicates = (uint64_t)get_int(d, "duplicates", 0);
    s->s.rejected = (uint64_t)get_int(d, "rejected", 0);
    s->s.late = (uint64_t)get_int(d, "late", 0);
    ss_str o = get_str(d, "owner");
    snprintf(s->owner, sizeof s->owner, "%.*s", (int)o.n, o.p);
}

/* Reads the commit document into the handle's committed state. */
static int load_commit(hot_mongo *h, bson_t *doc)
{
    bson_t f = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&f, "_id", "commit");
    int rc = find_one(h, C_STATE, &f, NULL, doc, "reading the committed state");
    bson_destroy(&f);
    if (rc)
        return rc;
    free_state(h);
    h->committed = get_int(doc, "epoch", 0);
    bson_iter_t it, arr;
    if (bson_iter_init_find(&it, doc, "shards") && bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            uint32_t len;
            const uint8_t *data;
            bson_t s;
            bson_iter_document(&arr, &len, &data);
            if (!bson_init_static(&s, data, len))
                continue;
            h->shards = ss_realloc(h->shards, (h->nshards + 1) * sizeof *h->shards);
            read_shard(&s, &h->shards[h->nshards++]);
        }
    }
    if (bson_iter_init_find(&it, doc, "positions") && bson_iter_recurse(&it, &arr)) {
        while (bson_iter_next(&arr)) {
            uint32_t len;
            const uint8_t *data;
            bson_t s;
            bson_iter_document(&arr, &len, &data);
            if (!bson_init_static(&s, data, len))
                continue;
            ss_str src = get_str(&s, "source");
            h->pos = ss_realloc(h->pos, (h->npos + 1) * sizeof *h->pos);
            h->pos[h->npos].source = ss_malloc(src.n + 1);
            memcpy(h->pos[h->npos].source, src.p, src.n);
            h->pos[h->npos].source[src.n] = '\0';
            h->pos[h->npos++].offset = get_int(&s, "position", 0);
        }
    }
    return SS_OK;
}

/* The first batch of a process takes the store over: from then on a
 * process that wrote it before can no longer commit (its commit is
 * conditional on being the writer), and what it left uncommitted is undone. */
static int take_over(hot_mongo *h)
{
    int64_t waited = 0;
    for (;;) {
        bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, set, opts = BSON_INITIALIZER;
        bson_error_t e;
        BSON_APPEND_UTF8(&sel, "_id", "commit");
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        BSON_APPEND_UTF8(&set, "writer", h->writer);
        bson_append_document_end(&upd, &set);
        BSON_APPEND_BOOL(&opts, "upsert", true);
        int ok = mongoc_collection_update_one(h->c[C_STATE], &sel, &upd, &opts, NULL, &e);
        bson_destroy(&sel);
        bson_destroy(&upd);
        bson_destroy(&opts);
        if (ok)
            break;
        int rc = failed(h, &e, "taking the store over", &waited);
        if (rc != SS_AGAIN)
            return rc;
    }
    bson_t doc;
    int rc = load_commit(h, &doc);
    bson_destroy(&doc);
    if (rc == SS_OK)
        rc = undo_from(h, (h->committed + 1) << ROUND_BITS);
    if (rc == SS_OK)
        h->writing = 1;
    return rc;
}

/* ---- batches ---- */

static void pend_clear(hot_mongo *h)
{
    for (int c = 0; c < C_COUNT; c++)
        pmap_clear(&h->pend[c]);
}

static int mongo_begin(void *vst)
{
    hot_mongo *h = vst;
    if (h->read_only)
        return SS_ENOTSUP;
    if (!h->writing) {
        int rc = take_over(h);
        if (rc)
            return rc;
    }
    pend_clear(h);
    h->epoch = h->committed + 1;
    h->round = 0;
    h->state_dirty = 0;
    h->in_tx = 1;
    return SS_OK;
}

static int mongo_rollback(void *vst)
{
    hot_mongo *h = vst;
    if (!h->in_tx)
        return SS_OK;
    h->in_tx = 0;
    pend_clear(h);
    int rc = undo_from(h, h->epoch << ROUND_BITS);
    /* The in-memory state may hold the batch's changes: read it back. */
    bson_t doc;
    if (rc == SS_OK)
        rc = load_commit(h, &doc);
    if (rc == SS_OK)
        bson_destroy(&doc);
    h->epoch = 0;
    return rc;
}

static int flush_inserts(hot_mongo *h, enum coll c)
{
    pmap *m = &h->pend[c];
    if (!m->n)
        return SS_OK;
    h->round++;
    int64_t tag = tag_of(h), waited = 0;
    for (;;) {
        mongoc_bulk_operation_t *b = new_bulk(h, c);
        for (size_t i = 0; i < m->n; i++) {
            bson_t d;
            bson_copy_to(m->v[i].doc, &d);
            BSON_APPEND_INT64(&d, "_e", tag);
            mongoc_bulk_operation_insert(b, &d);
            bson_destroy(&d);
        }
        int retry = 0;
        /* 11000: the row was there (inserted only if absent). */
        int rc = run_bulk(h, b, NULL, NULL, "storing dimensions", &waited, &retry);
        mongoc_bulk_operation_destroy(b);
        if (rc || !retry)
            return rc;
    }
}

/* The current documents of a replaced collection's pending ids. */
typedef struct cur_docs {
    pmap *m;
    bson_t **cur; /* per pending entry, or NULL */
} cur_docs;

static int on_current(void *vctx, const bson_t *doc)
{
    cur_docs *c = vctx;
    ss_str id = get_str(doc, "_id");
    pent *p = pmap_find(c->m, id.p, id.n);
    if (p && !c->cur[p - c->m->v])
        c->cur[p - c->m->v] = bson_copy(doc);
    return SS_OK;
}

static void reset_current(void *vctx)
{
    cur_docs *c = vctx;
    for (size_t i = 0; i < c->m->n; i++) {
        if (c->cur[i])
            bson_destroy(c->cur[i]);
        c->cur[i] = NULL;
    }
}

/* The committed version of a current document: its _u when this epoch
 * wrote it already (an attempt before the server went away); NULL when
 * there is none. Returns a new document or NULL. */
static bson_t *committed_version(hot_mongo *h, const bson_t *cur)
{
    if (!cur)
        return NULL;
    if ((get_int(cur, "_e", 0) >> ROUND_BITS) != h->epoch)
        return bson_copy(cur);
    bson_iter_t it;
    if (!bson_iter_init_find(&it, cur, "_u") || !BSON_ITER_HOLDS_DOCUMENT(&it))
        return NULL;
    uint32_t len;
    const uint8_t *data;
    bson_iter_document(&it, &len, &data);
    return bson_new_from_data(data, len);
}

/* Whether two documents hold the same fields and values, _e and _u aside. */
static int same_fields(const bson_t *a, const bson_t *b)
{
    bson_t x = BSON_INITIALIZER, y = BSON_INITIALIZER;
    bson_copy_to_excluding_noinit(a, &x, "_e", "_u", NULL);
    bson_copy_to_excluding_noinit(b, &y, "_e", "_u", NULL);
    int eq = bson_equal(&x, &y);
    bson_destroy(&x);
    bson_destroy(&y);
    return eq;
}

/* What a replaced collection's document becomes: the epoch's fields merged
 * with the committed version prev (NULL: none) as SQLite's statements of
 * the same rows would. Returns 0 when the row stays as it is. */
static int merge(enum coll c, const pent *p, const bson_t *prev, bson_t *out)
{
    bson_init(out);
    switch (c) {
    case C_CUSTOMERS: {
        if (prev) {
            ss_str v[3] = {get_str(p->doc, "customer_segment"), get_str(p->doc, "city"),
                           get_str(p->doc, "country")};
            ss_str cv[3] = {get_str(prev, "customer_segment"), get_str(prev, "city"),
                            get_str(prev, "country")};
            if (!ss_hot_customer_wins(p->ts, v, get_int(prev, "first_seen", INT64_MAX), cv))
                return 0;
        }
        bson_copy_to_excluding_noinit(p->doc, out, "", NULL);
        break;
    }
    case C_COUNTRIES:
        if (p->flags & P_PLACE) {
            bson_copy_to_excluding_noinit(p->doc, out, "", NULL);
        } else if (prev) {
            return 0;
        } else {
            bson_copy_to_excluding_noinit(p->doc, out, "", NULL);
            BSON_APPEND_NULL(out, "country_code");
            BSON_APPEND_NULL(out, "region");
        }
        break;
    case C_CITIES: {
        bson_iter_t it;
        append_str(out, "_id", get_str(p->doc, "_id"));
        append_str(out, "country", prev ? get_str(prev, "country") : get_str(p->doc, "country"));
        const bson_t *ll = (p->flags & P_PLACE) ? p->doc : prev;
        for (int k = 0; k < 2; k++) {
            const char *key = k ? "lon" : "lat";
            if (ll && bson_iter_init_find(&it, ll, key) && BSON_ITER_HOLDS_DOUBLE(&it))
                bson_append_double(out, key, -1, bson_iter_double(&it));
            else
                bson_append_null(out, key, -1);
        }
        break;
    }
    default:
        bson_copy_to_excluding_noinit(p->doc, out, "", NULL);
        break;
    }
    return !prev || !same_fields(out, prev);
}

static int flush_replaced(hot_mongo *h, enum coll c)
{
    pmap *m = &h->pend[c];
    if (!m->n)
        return SS_OK;
    h->round++;
    int64_t tag = tag_of(h), waited = 0;
    cur_docs cd = {m, ss_calloc(m->n, sizeof(bson_t *))};
    int rc = SS_OK;
    for (;;) {
        for (size_t at = 0; at < m->n && rc == SS_OK; at += IN_CHUNK) {
            size_t n = m->n - at < IN_CHUNK ? m->n - at : IN_CHUNK;
            bson_t f = BSON_INITIALIZER, in, arr;
            BSON_APPEND_DOCUMENT_BEGIN(&f, "_id", &in);
            BSON_APPEND_ARRAY_BEGIN(&in, "$in", &arr);
            for (size_t k = 0; k < n; k++) {
                char key[16];
                const char *kp;
                bson_uint32_to_string((uint32_t)k, &kp, key, sizeof key);
                bson_iter_t it;
                if (bson_iter_init_find(&it, m->v[at + k].doc, "_id"))
                    bson_append_iter(&arr, kp, -1, &it);
            }
            bson_append_array_end(&in, &arr);
            bson_append_document_end(&f, &in);
            rc = find_each(h, c, &f, NULL, on_current, NULL, &cd, "reading rows to replace");
            bson_destroy(&f);
        }
        if (rc)
            break;
        mongoc_bulk_operation_t *b = new_bulk(h, c);
        size_t nb = 0;
        for (size_t i = 0; i < m->n; i++) {
            bson_t *prev = committed_version(h, cd.cur[i]);
            bson_t out;
            if (merge(c, &m->v[i], prev, &out)) {
                BSON_APPEND_INT64(&out, "_e", tag);
                if (prev) {
                    bson_t pu = BSON_INITIALIZER;
                    bson_copy_to_excluding_noinit(prev, &pu, "_u", NULL);
                    BSON_APPEND_DOCUMENT(&out, "_u", &pu);
                    bson_destroy(&pu);
                }
                bson_t sel = BSON_INITIALIZER, opts = BSON_INITIALIZER;
                bson_iter_t it;
                if (bson_iter_init_find(&it, &out, "_id"))
                    bson_append_iter(&sel, "_id", 3, &it);
                BSON_APPEND_BOOL(&opts, "upsert", true);
                mongoc_bulk_operation_replace_one_with_opts(b, &sel, &out, &opts, NULL);
                bson_destroy(&sel);
                bson_destroy(&opts);
                nb++;
            }
            bson_destroy(&out);
            if (prev)
                bson_destroy(prev);
        }
        int retry = 0;
        if (nb)
            rc = run_bulk(h, b, NULL, NULL, "replacing rows", &waited, &retry);
        mongoc_bulk_operation_destroy(b);
        if (rc || !retry)
            break;
        reset_current(&cd);
    }
    reset_current(&cd);
    free(cd.cur);
    return rc;
}

static void append_state(hot_mongo *h, bson_t *d)
{
    bson_t arr, s;
    BSON_APPEND_UTF8(d, "_id", "commit");
    BSON_APPEND_UTF8(d, "writer", h->writer);
    BSON_APPEND_INT64(d, "epoch", h->epoch);
    append_ms(d, "committed_at", ss_now_ms());
    BSON_APPEND_ARRAY_BEGIN(d, "shards", &arr);
    for (size_t i = 0; i < h->nshards; i++) {
        char key[16];
        const char *kp;
        bson_uint32_to_string((uint32_t)i, &kp, key, sizeof key);
        const ss_hot_state *x = &h->shards[i].s;
        BSON_APPEND_DOCUMENT_BEGIN(&arr, kp, &s);
        BSON_APPEND_INT32(&s, "shard", x->shard);
        BSON_APPEND_UTF8(&s, "owner", h->shards[i].owner);
        append_opt(&s, "watermark", x->watermark);
        append_opt(&s, "input_watermark", x->input_watermark);
        append_opt(&s, "max_ts", x->max_ts);
        BSON_APPEND_INT64(&s, "events_in", (int64_t)x->events_in);
        BSON_APPEND_INT64(&s, "stored", (int64_t)x->stored);
        BSON_APPEND_INT64(&s, "duplicates", (int64_t)x->duplicates);
        BSON_APPEND_INT64(&s, "rejected", (int64_t)x->rejected);
        BSON_APPEND_INT64(&s, "late", (int64_t)x->late);
        bson_append_document_end(&arr, &s);
    }
    bson_append_array_end(d, &arr);
    BSON_APPEND_ARRAY_BEGIN(d, "positions", &arr);
    for (size_t i = 0; i < h->npos; i++) {
        char key[16];
        const char *kp;
        bson_uint32_to_string((uint32_t)i, &kp, key, sizeof key);
        BSON_APPEND_DOCUMENT_BEGIN(&arr, kp, &s);
        BSON_APPEND_UTF8(&s, "source", h->pos[i].source);
        BSON_APPEND_INT64(&s, "position", h->pos[i].offset);
        bson_append_document_end(&arr, &s);
    }
    bson_append_array_end(d, &arr);
}

/* The commit point: the state document, replaced only if this process is
 * still the writer and no other commit came between. */
static int write_commit(hot_mongo *h)
{
    int64_t waited = 0;
    int retried = 0;
    for (;;) {
        bson_t sel = BSON_INITIALIZER, doc = BSON_INITIALIZER, reply;
        bson_error_t e;
        BSON_APPEND_UTF8(&sel, "_id", "commit");
        BSON_APPEND_UTF8(&sel, "writer", h->writer);
        if (h->committed)
            BSON_APPEND_INT64(&sel, "epoch", h->committed);
        else
            BSON_APPEND_NULL(&sel, "epoch"); /* matches a missing field too */
        append_state(h, &doc);
        int ok = mongoc_collection_replace_one(h->c[C_STATE], &sel, &doc, NULL, &reply, &e);
        int64_t matched = ok ? get_int(&reply, "matchedCount", 0) : 0;
        bson_destroy(&sel);
        bson_destroy(&doc);
        bson_destroy(&reply);
        if (ok && matched == 1)
            return SS_OK;
        if (ok) {
            /* No match: another process has taken the store over, or an
             * attempt whose answer was lost did commit. */
            if (retried) {
                bson_t cur;
                bson_t f = BSON_INITIALIZER;
                BSON_APPEND_UTF8(&f, "_id", "commit");
                int rc = find_one(h, C_STATE, &f, NULL, &cur, "reading the committed state");
                bson_destroy(&f);
                int mine = rc == SS_OK && get_int(&cur, "epoch", 0) == h->epoch &&
                           !strcmp(get_str(&cur, "writer").p, h->writer);
                bson_destroy(&cur);
                if (rc)
                    return rc;
                if (mine)
                    return SS_OK;
            }
            SS_ERROR("hot:mongo", "%s: another process has taken this store over", h->where);
            return SS_EFENCED;
        }
        int rc = failed(h, &e, "committing", &waited);
        if (rc != SS_AGAIN)
            return rc;
        retried = 1;
    }
}

static int mongo_commit(void *vst)
{
    hot_mongo *h = vst;
    if (!h->in_tx)
        return SS_OK;
    static const enum coll inserts[] = {C_REJECTED, C_MINUTES, C_CATEGORIES, C_METHODS};
    int rc = SS_OK;
    for (size_t i = 0; i < sizeof inserts / sizeof inserts[0] && rc == SS_OK; i++)
        rc = flush_inserts(h, inserts[i]);
    for (int c = FIRST_REPLACED; c <= LAST_TAGGED && rc == SS_OK; c++)
        rc = flush_replaced(h, (enum coll)c);
    if (rc == SS_OK)
        rc = write_commit(h);
    if (rc)
        return rc;
    h->committed = h->epoch;
    h->epoch = 0;
    h->in_tx = 0;
    pend_clear(h);
    return SS_OK;
}

/* ---- shard state ---- */

static hshard *shard_get(hot_mongo *h, int shard)
{
    for (size_t i = 0; i < h->nshards; i++)
        if (h->shards[i].s.shard == shard)
            return &h->shards[i];
    h->shards = ss_realloc(h->shards, (h->nshards + 1) * sizeof *h->shards);
    hshard *s = &h->shards[h->nshards++];
    memset(s, 0, sizeof *s);
    s->s.shard = shard;
    s->s.watermark = s->s.input_watermark = s->s.max_ts = INT64_MIN;
    return s;
}

static int mongo_claim_shard(void *vst, int shard, const char *owner, ss_hot_state *s)
{
    hot_mongo *h = vst;
    if (!h->writing)
        return SS_ENOTSUP;
    hshard *x = shard_get(h, shard);
    snprintf(x->owner, sizeof x->owner, "%s", owner);
    *s = x->s;
    return SS_OK;
}

static int mongo_put_state(void *vst, const ss_hot_state *s, size_t n, const char *owner,
                           const ss_position *pos, size_t npos)
{
    hot_mongo *h = vst;
    for (size_t i = 0; i < n; i++) {
        hshard *x = shard_get(h, s[i].shard);
        if (strcmp(x->owner, owner) != 0)
            return SS_EFENCED;
        x->s = s[i];
    }
    for (size_t i = 0; i < npos; i++) {
        size_t j = 0;
        while (j < h->npos && strcmp(h->pos[j].source, pos[i].source) != 0)
            j++;
        if (j == h->npos) {
            h->pos = ss_realloc(h->pos, (h->npos + 1) * sizeof *h->pos);
            h->pos[h->npos++].source = ss_strdup(pos[i].source);
        }
        h->pos[j].offset = pos[i].offset;
    }
    h->state_dirty = 1;
    return SS_OK;
}

static int mongo_load_state(void *vst, void (*state_cb)(void *ctx, const ss_hot_state *s),
                            void (*pos_cb)(void *ctx, const char *source, int64_t offset),
                            void *ctx)
{
    hot_mongo *h = vst;
    /* A writer's own copy is the committed state (it is the only writer);
     * others read the store. */
    if (!h->writing) {
        bson_t doc;
        int rc = load_commit(h, &doc);
        bson_destroy(&doc);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < h->nshards && state_cb; i++)
        state_cb(ctx, &h->shards[i].s);
    for (size_t i = 0; i < h->npos && pos_cb; i++)
        pos_cb(ctx, h->pos[i].source, h->pos[i].offset);
    return SS_OK;
}

/* ---- reads ---- */

typedef struct kpi_read {
    ss_kpi_cb cb;
    void *ctx;
} kpi_read;

static int on_kpi(void *vctx, const bson_t *d)
{
    kpi_read *k = vctx;
    ss_kpi_row r = {0};
    ss_str dim = get_str(d, "dimension");
    r.dim = ss_dim_parse(dim.p, dim.n);
    if (r.dim < 0)
        return SS_OK;
    r.minute = get_int(d, "minute_start", 0);
    r.value = get_str(d, "dimension_value");
    r.shard = (int)get_int(d, "shard", 0);
    r.final = (int)get_int(d, "final", 0);
    r.k.orders = get_int(d, "orders", 0);
    r.k.units = get_int(d, "units", 0);
    r.k.gross_cents = get_int(d, "gross_revenue_cents", 0);
    r.k.paid_cents = get_int(d, "paid_revenue_cents", 0);
    r.k.attempts = get_int(d, "payment_attempts", 0);
    r.k.failed = get_int(d, "failed_payments", 0);
    r.k.cancellations = get_int(d, "cancellations", 0);
    r.k.cancelled_cents = get_int(d, "cancelled_revenue_cents", 0);
    return k->cb(k->ctx, &r);
}

static void append_range(bson_t *f, const char *key, int64_t from, int64_t to)
{
    bson_t cond;
    bson_append_document_begin(f, key, -1, &cond);
    append_ms(&cond, "$gte", from);
    append_ms(&cond, "$lt", to);
    bson_append_document_end(f, &cond);
}

static int mongo_read_kpis(void *vst, int64_t from, int64_t to, int dim, int open_only,
                           ss_kpi_cb cb, void *ctx)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    if (dim >= 0)
        BSON_APPEND_UTF8(&f, "dimension", ss_dim_name(dim));
    /* Dates past year 9999 are outside what every server accepts. */
    append_range(&f, "minute_start", from, to < 253402300800000LL ? to : 253402300800000LL);
    if (open_only)
        BSON_APPEND_INT32(&f, "final", 0);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "minute_start", 1);
    bson_append_document_end(&opts, &sort);
    kpi_read k = {cb, ctx};
    /* A retry from the start would call cb twice for the rows before the
     * failure: reads of KPIs fail instead (the engine's claim then stops). */
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h->c[C_KPI], &f, &opts, NULL);
    const bson_t *doc;
    int rc = SS_OK;
    while (rc == SS_OK && mongoc_cursor_next(cur, &doc))
        rc = on_kpi(&k, doc);
    bson_error_t e;
    if (rc == SS_OK && mongoc_cursor_error(cur, &e)) {
        SS_ERROR("hot:mongo", "reading KPIs on %s: %s", h->where, e.message);
        rc = transient(&e) ? SS_AGAIN : SS_EIO;
    }
    mongoc_cursor_destroy(cur);
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}

static int mongo_lookup_order(void *vst, ss_str order_id, ss_attrib *out, char *buf, size_t cap,
                              int *found)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, doc;
    append_str(&f, "order_id", order_id);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "ts", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_INT64(&opts, "limit", 1);
    int rc = find_one(h, C_ORDERS, &f, &opts, &doc, "looking up an order");
    bson_destroy(&f);
    bson_destroy(&opts);
    *found = 0;
    if (rc == SS_OK && !bson_empty(&doc)) {
        static const char *const keys[4] = {"city", "country", "category", "payment_method"};
        ss_str *fld[4] = {&out->city, &out->country, &out->category, &out->payment_method};
        size_t used = 0;
        *found = 1;
        for (int i = 0; i < 4; i++) {
            ss_str v = get_str(&doc, keys[i]);
            if (used + v.n > cap) {
                *found = 0;
                break;
            }
            memcpy(buf + used, v.p, v.n);
            *fld[i] = (ss_str){buf + used, v.n};
            used += v.n;
        }
    }
    bson_destroy(&doc);
    return rc;
}

static int mongo_data_size(void *vst, int64_t *bytes)
{
    hot_mongo *h = vst;
    *bytes = 0;
    bson_t cmd = BSON_INITIALIZER, reply;
    bson_error_t e;
    BSON_APPEND_INT32(&cmd, "dbStats", 1);
    int ok = command(h, &cmd, &reply, &e);
    bson_destroy(&cmd);
    if (ok)
        *bytes = get_int(&reply, "dataSize", 0);
    else
        SS_ERROR("hot:mongo", "dbStats on %s: %s", h->where, e.message);
    bson_destroy(&reply);
    return ok ? SS_OK : SS_EIO;
}

static int fact_coll(const char *table)
{
    for (int c = C_ORDERS; c <= C_CANCELLATIONS; c++)
        if (!strcmp(table, coll_name[c]))
            return c;
    return -1;
}

typedef struct scan_ctx {
    const char *table;
    ss_scan_cb cb;
    void *ctx;
    ss_buf line;
} scan_ctx;

/* A fact document as its cold line: fields in the stored order (that of
 * SQLite's columns), _id as event_id, dates as ISO text, _e left out. */
static int on_scan(void *vctx, const bson_t *doc)
{
    scan_ctx *s = vctx;
    bson_iter_t it;
    int64_t ts = 0;
    ss_hot_line_begin(&s->line);
    if (!bson_iter_init(&it, doc))
        return SS_ECORRUPT;
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (!strcmp(key, "_e") || !strcmp(key, "_u"))
            continue;
        if (!strcmp(key, "_id"))
            key = "event_id";
        switch (bson_iter_type(&it)) {
        case BSON_TYPE_UTF8: {
            uint32_t n;
            const char *p = bson_iter_utf8(&it, &n);
            ss_hot_line_text(&s->line, key, p, n);
            break;
        }
        case BSON_TYPE_DATE_TIME: {
            char iso[SS_ISO_LEN];
            int64_t ms = bson_iter_date_time(&it);
            if (!strcmp(key, "ts"))
                ts = ms;
            ss_time_format_iso(ms, iso);
            ss_hot_line_text(&s->line, key, iso, SS_ISO_LEN);
            break;
        }
        case BSON_TYPE_INT32:
        case BSON_TYPE_INT64:
            ss_hot_line_int(&s->line, key, iter_int(&it));
            break;
        default:
            break;
        }
    }
    ss_hot_line_end(&s->line);
    return s->cb(s->ctx, s->table, ts, s->line.data, s->line.len);
}

static void range_find(bson_t *f, bson_t *opts, int64_t from, int64_t to)
{
    bson_t sort;
    bson_init(f);
    bson_init(opts);
    append_range(f, "ts", from, to < 253402300800000LL ? to : 253402300800000LL);
    BSON_APPEND_DOCUMENT_BEGIN(opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "ts", 1);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(opts, &sort);
}

static int mongo_scan_range(void *vst, const char *table, int64_t from, int64_t to, ss_scan_cb cb,
                            void *ctx)
{
    hot_mongo *h = vst;
    int c = fact_coll(table);
    if (c < 0)
        return SS_EINVAL;
    bson_t f, opts;
    range_find(&f, &opts, from, to);
    scan_ctx s = {table, cb, ctx, {0}};
    ss_buf_init(&s.line, 1024);
    /* No retry: the callback's consumer (an archive writer) cannot take rows
     * twice; the archiver rolls the run back and tries again later. */
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(h->c[c], &f, &opts, NULL);
    const bson_t *doc;
    int rc = SS_OK;
    while (rc == SS_OK && mongoc_cursor_next(cur, &doc))
        rc = on_scan(&s, doc);
    bson_error_t e;
    if (rc == SS_OK && mongoc_cursor_error(cur, &e)) {
        SS_ERROR("hot:mongo", "scanning %s on %s: %s", table, h->where, e.message);
        rc = transient(&e) ? SS_AGAIN : SS_EIO;
    }
    mongoc_cursor_destroy(cur);
    ss_buf_free(&s.line);
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}

static int delete_where(hot_mongo *h, enum coll c, const bson_t *f, int64_t *deleted)
{
    int64_t waited = 0;
    for (;;) {
        bson_t reply;
        bson_error_t e;
        int ok = mongoc_collection_delete_many(h->c[c], f, NULL, &reply, &e);
        if (ok && deleted)
            *deleted += get_int(&reply, "deletedCount", 0);
        bson_destroy(&reply);
        if (ok)
            return SS_OK;
        int rc = failed(h, &e, "deleting", &waited);
        if (rc != SS_AGAIN)
            return rc;
    }
}

static int mongo_delete_range(void *vst, const char *table, int64_t from, int64_t to,
                              int64_t *deleted)
{
    hot_mongo *h = vst;
    int c = fact_coll(table);
    *deleted = 0;
    if (c < 0)
        return SS_EINVAL;
    bson_t f = BSON_INITIALIZER;
    append_range(&f, "ts", from, to < 253402300800000LL ? to : 253402300800000LL);
    int rc = delete_where(h, (enum coll)c, &f, deleted);
    bson_destroy(&f);
    return rc;
}

static int count_docs(hot_mongo *h, enum coll c, int64_t *n)
{
    bson_t cmd = BSON_INITIALIZER, q, reply;
    bson_error_t e;
    BSON_APPEND_UTF8(&cmd, "count", coll_name[c]);
    BSON_APPEND_DOCUMENT_BEGIN(&cmd, "query", &q);
    bson_append_document_end(&cmd, &q);
    int ok = command(h, &cmd, &reply, &e);
    *n = ok ? get_int(&reply, "n", 0) : 0;
    bson_destroy(&cmd);
    bson_destroy(&reply);
    if (!ok)
        SS_ERROR("hot:mongo", "counting %s on %s: %s", coll_name[c], h->where, e.message);
    return ok ? SS_OK : SS_EIO;
}

/* The n-th oldest event time over the fact collections, merged here from
 * their ts order (no server-side aggregation). */
static int mongo_nth_oldest(void *vst, int64_t n, int64_t *ts, int64_t *total)
{
    hot_mongo *h = vst;
    *ts = INT64_MIN;
    *total = 0;
    for (int c = C_ORDERS; c <= C_CANCELLATIONS; c++) {
        int64_t k;
        int rc = count_docs(h, (enum coll)c, &k);
        if (rc)
            return rc;
        *total += k;
    }
    if (n >= *total)
        return SS_OK;
    mongoc_cursor_t *cur[3];
    const bson_t *doc[3];
    int live[3];
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "ts", 1);
    bson_append_document_end(&opts, &sort);
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "projection", &proj);
    BSON_APPEND_INT32(&proj, "ts", 1);
    bson_append_document_end(&opts, &proj);
    for (int i = 0; i < 3; i++) {
        cur[i] = mongoc_collection_find_with_opts(h->c[C_ORDERS + i], &f, &opts, NULL);
        live[i] = mongoc_cursor_next(cur[i], &doc[i]);
    }
    int rc = SS_OK;
    for (int64_t k = 0;; k++) {
        int best = -1;
        int64_t bt = INT64_MAX;
        for (int i = 0; i < 3; i++) {
            if (!live[i])
                continue;
            int64_t t = get_int(doc[i], "ts", INT64_MAX);
            if (t < bt) {
                bt = t;
                best = i;
            }
        }
        if (best < 0)
            break;
        if (k == n) {
            *ts = bt;
            break;
        }
        live[best] = mongoc_cursor_next(cur[best], &doc[best]);
    }
    for (int i = 0; i < 3; i++) {
        bson_error_t e;
        if (mongoc_cursor_error(cur[i], &e) && rc == SS_OK) {
            SS_ERROR("hot:mongo", "finding the oldest events on %s: %s", h->where, e.message);
            rc = SS_EIO;
        }
        mongoc_cursor_destroy(cur[i]);
    }
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}

typedef struct keys_ctx {
    int (*ev)(void *ctx, ss_str event_id);
    int (*order)(void *ctx, ss_str order_id, const ss_attrib *at);
    void *ctx;
    int orders;
} keys_ctx;

static int on_key(void *vctx, const bson_t *d)
{
    keys_ctx *k = vctx;
    if (!k->orders)
        return k->ev(k->ctx, get_str(d, "_id"));
    ss_attrib at = {get_str(d, "city"), get_str(d, "country"), get_str(d, "category"),
                    get_str(d, "payment_method")};
    return k->order(k->ctx, get_str(d, "order_id"), &at);
}

static int mongo_archive_keys(void *vst, int64_t cutoff, int (*ev)(void *ctx, ss_str event_id),
                              int (*order)(void *ctx, ss_str order_id, const ss_attrib *at),
                              void *ctx)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, cond;
    BSON_APPEND_DOCUMENT_BEGIN(&f, "ts", &cond);
    append_ms(&cond, "$lt", cutoff);
    bson_append_document_end(&f, &cond);
    keys_ctx k = {ev, order, ctx, 0};
    int rc = SS_OK;
    for (int c = C_ORDERS; c <= C_CANCELLATIONS + 1 && rc == SS_OK; c++) {
        k.orders = c > C_CANCELLATIONS;
        rc = find_each(h, k.orders ? C_ORDERS : (enum coll)c, &f, NULL, on_key, NULL, &k,
                       "listing archived keys");
    }
    bson_destroy(&f);
    return rc;
}

static int mongo_archive_begin(void *vst, const char *id, int64_t cutoff, const char *created_at)
{
    hot_mongo *h = vst;
    bson_t d = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&d, "_id", id);
    BSON_APPEND_UTF8(&d, "state", "writing");
    append_ms(&d, "cutoff", cutoff);
    BSON_APPEND_UTF8(&d, "created_at", created_at);
    BSON_APPEND_NULL(&d, "manifest");
    int is_new;
    int rc = insert_tagged(h, C_ARCHIVES, &d, &is_new, "recording an archive");
    bson_destroy(&d);
    return rc;
}

static int delete_before(hot_mongo *h, int64_t cutoff)
{
    int rc = SS_OK;
    bson_t f = BSON_INITIALIZER, cond;
    BSON_APPEND_DOCUMENT_BEGIN(&f, "ts", &cond);
    append_ms(&cond, "$lt", cutoff);
    bson_append_document_end(&f, &cond);
    for (int c = C_ORDERS; c <= C_CANCELLATIONS && rc == SS_OK; c++)
        rc = delete_where(h, (enum coll)c, &f, NULL);
    bson_destroy(&f);
    return rc;
}

/* Without a transaction, the archive is marked committed first and its
 * facts deleted after: a crash between leaves facts that the cold store
 * holds too, which the next open of the store deletes (finish_archives). */
static int mongo_archive_commit(void *vst, const char *id, int64_t cutoff, const char *manifest)
{
    hot_mongo *h = vst;
    int64_t waited = 0;
    for (;;) {
        bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, set;
        bson_error_t e;
        BSON_APPEND_UTF8(&sel, "_id", id);
        BSON_APPEND_DOCUMENT_BEGIN(&upd, "$set", &set);
        BSON_APPEND_UTF8(&set, "state", "committed");
        BSON_APPEND_UTF8(&set, "manifest", manifest);
        bson_append_document_end(&upd, &set);
        int ok = mongoc_collection_update_one(h->c[C_ARCHIVES], &sel, &upd, NULL, NULL, &e);
        bson_destroy(&sel);
        bson_destroy(&upd);
        if (ok)
            break;
        int rc = failed(h, &e, "committing an archive", &waited);
        if (rc != SS_AGAIN)
            return rc;
    }
    return delete_before(h, cutoff);
}

static int on_cutoff(void *vctx, const bson_t *d)
{
    int64_t *max = vctx, c = get_int(d, "cutoff", INT64_MIN);
    if (c > *max)
        *max = c;
    return SS_OK;
}

static int finish_archives(hot_mongo *h)
{
    bson_t f = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&f, "state", "committed");
    int64_t max = INT64_MIN;
    int rc = find_each(h, C_ARCHIVES, &f, NULL, on_cutoff, NULL, &max, "reading archives");
    bson_destroy(&f);
    return rc == SS_OK && max != INT64_MIN ? delete_before(h, max) : rc;
}

static int mongo_archive_forget(void *vst, const char *id)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, ne;
    BSON_APPEND_UTF8(&f, "_id", id);
    BSON_APPEND_DOCUMENT_BEGIN(&f, "state", &ne);
    BSON_APPEND_UTF8(&ne, "$ne", "committed");
    bson_append_document_end(&f, &ne);
    int rc = delete_where(h, C_ARCHIVES, &f, NULL);
    bson_destroy(&f);
    return rc;
}

typedef struct list_ctx {
    int (*cb)(void *ctx, const char *id, const char *state, int64_t cutoff, const char *created_at,
              const char *manifest);
    void *ctx;
} list_ctx;

static int on_archive(void *vctx, const bson_t *d)
{
    list_ctx *l = vctx;
    bson_iter_t it;
    const char *manifest = NULL;
    if (bson_iter_init_find(&it, d, "manifest") && BSON_ITER_HOLDS_UTF8(&it))
        manifest = bson_iter_utf8(&it, NULL);
    return l->cb(l->ctx, get_str(d, "_id").p, get_str(d, "state").p, get_int(d, "cutoff", 0),
                 get_str(d, "created_at").p, manifest);
}

static int mongo_archive_list(void *vst,
                              int (*cb)(void *ctx, const char *id, const char *state,
                                        int64_t cutoff, const char *created_at,
                                        const char *manifest),
                              void *ctx)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    list_ctx l = {cb, ctx};
    int rc = find_each(h, C_ARCHIVES, &f, &opts, on_archive, NULL, &l, "listing archives");
    bson_destroy(&f);
    bson_destroy(&opts);
    return rc;
}

static int mongo_reclaim(void *vst)
{
    /* The server reuses and returns space itself. */
    (void)vst;
    return SS_OK;
}

static int mongo_version(void *vst, uint64_t *v)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, doc;
    BSON_APPEND_UTF8(&f, "_id", "commit");
    int rc = find_one(h, C_STATE, &f, NULL, &doc, "reading the store's version");
    bson_destroy(&f);
    int64_t archives = 0;
    if (rc == SS_OK)
        rc = count_docs(h, C_ARCHIVES, &archives);
    *v = (uint64_t)get_int(&doc, "epoch", 0) * 1000003u + (uint64_t)archives;
    bson_destroy(&doc);
    return rc;
}

static int mongo_note_set(void *vst, const char *key, const char *value)
{
    hot_mongo *h = vst;
    bson_t sel = BSON_INITIALIZER, doc = BSON_INITIALIZER, opts = BSON_INITIALIZER;
    bson_error_t e;
    BSON_APPEND_UTF8(&sel, "_id", key);
    BSON_APPEND_UTF8(&doc, "_id", key);
    BSON_APPEND_UTF8(&doc, "value", value);
    BSON_APPEND_BOOL(&opts, "upsert", true);
    int ok = mongoc_collection_replace_one(h->c[C_NOTES], &sel, &doc, &opts, NULL, &e);
    if (!ok)
        SS_ERROR("hot:mongo", "writing a lifecycle note on %s: %s", h->where, e.message);
    bson_destroy(&sel);
    bson_destroy(&doc);
    bson_destroy(&opts);
    return ok ? SS_OK : SS_EIO;
}

typedef struct note_ctx {
    int (*cb)(void *ctx, const char *key, const char *value);
    void *ctx;
} note_ctx;

static int on_note(void *vctx, const bson_t *d)
{
    note_ctx *n = vctx;
    return n->cb(n->ctx, get_str(d, "_id").p, get_str(d, "value").p);
}

static int mongo_note_list(void *vst, int (*cb)(void *ctx, const char *key, const char *value),
                           void *ctx)
{
    hot_mongo *h = vst;
    bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
    BSON_APPEND_DOCUMENT_BEGIN(&opts, "sort", &sort);
    BSON_APPEND_INT32(&sort, "_id", 1);
    bson_append_document_end(&opts, &sort);
    note_ctx n = {cb, ctx};
    int rc = find_each(h, C_NOTES, &f, &opts, on_note, NULL, &n, "reading lifecycle notes");
    bson_destroy(&f);
    bson_destroy(&opts);
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
};

/* The MongoDB hot store as SQL tables: the collections are SQLite virtual
 * tables with the columns of schema.sql, and schema.sql's views are built
 * over them, so that the queries of the SQLite store run unchanged.
 *
 * A scan asks the server only for what a query's constraints allow: a time
 * range on ts (minute_start for KPIs and minutes), and equality on the key
 * (_id) or on order_id, dimension and dimension_value. SQLite checks every
 * constraint again on the rows it gets, so a bound only has to be loose
 * enough: a text bound such as '2026-11-02' or '2026-11-02T14' becomes the
 * whole time span its complete leading fields name.
 *
 * Readers see committed data only: a document written by an epoch past the
 * store's last commit reads as the version it replaced (_u), or not at all
 * when it was inserted by that epoch. The shards' state and the input
 * positions are read once, when the tables are made. */
#define _POSIX_C_SOURCE 200809L
#include <mongoc/mongoc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "hot/facts_vtab.h"
#include "hot/hot.h"
#include "hot/mongo_int.h"

extern const char ss_asset_hot_schema_sql[];

#define MAX_COLS 24
#define MAX_EQ   2

/* A table of schema.sql that a collection holds. key is the column stored
 * as _id; time the column whose values are BSON dates that scans narrow. */
typedef struct mtab_def {
    const char *table;
    enum coll c;
    const char *key;
    const char *time;
    const char *eq[MAX_EQ];
} mtab_def;

static const mtab_def defs[] = {
    {"orders_data", C_ORDERS, "event_id", "ts", {"order_id"}},
    {"payments_data", C_PAYMENTS, "event_id", "ts", {"order_id"}},
    {"cancellations_data", C_CANCELLATIONS, "event_id", "ts", {"order_id"}},
    {"kpi_minute_data", C_KPI, NULL, "minute_start", {"dimension", "dimension_value"}},
    {"customers", C_CUSTOMERS, "customer_id", NULL, {0}},
    {"products", C_PRODUCTS, "product_id", NULL, {0}},
    {"categories", C_CATEGORIES, "category", NULL, {0}},
    {"countries", C_COUNTRIES, "country", NULL, {0}},
    {"cities", C_CITIES, "city", NULL, {0}},
    {"payment_methods", C_METHODS, "payment_method", NULL, {0}},
    {"order_statuses", C_STATUSES, "status", NULL, {0}},
    {"time_minutes", C_MINUTES, "minute_start", "minute_start", {0}},
    {"rejected_events", C_REJECTED, "id", NULL, {0}},
    {"late_events", C_LATE, "event_id", "ts", {0}},
    {"archives", C_ARCHIVES, "archive_id", NULL, {0}},
    {"lifecycle_notes", C_NOTES, "key", NULL, {0}},
};
#define NDEFS (sizeof defs / sizeof defs[0])

/* A table's columns, as schema.sql declares them. */
typedef struct mtab_shape {
    char *decl; /* "CREATE TABLE x(...)" for sqlite3_declare_vtab */
    char *col[MAX_COLS];
    int ncols;
    int key, time, eq[MAX_EQ]; /* column numbers, -1 for none */
} mtab_shape;

typedef struct mtab_aux {
    hot_mongo *h;
    mtab_shape shape[NDEFS];
} mtab_aux;

typedef struct mtab {
    sqlite3_vtab base; /* first: SQLite hands out pointers to it */
    mtab_aux *aux;
    const mtab_def *def;
    const mtab_shape *shape;
} mtab;

typedef struct mcur {
    sqlite3_vtab_cursor base; /* first */
    mongoc_cursor_t *cur;
    const bson_t *doc;    /* the current document */
    const uint8_t *udata; /* or, when set, the _u within it: the row */
    uint32_t ulen;
    int64_t committed; /* the store's last committed epoch */
    sqlite3_int64 rowid;
    int eof;
} mcur;

static void shape_free(mtab_shape *s)
{
    sqlite3_free(s->decl);
    for (int i = 0; i < s->ncols; i++)
        free(s->col[i]);
    memset(s, 0, sizeof *s);
}

static void aux_free(void *p)
{
    mtab_aux *a = p;
    for (size_t i = 0; i < NDEFS; i++)
        shape_free(&a->shape[i]);
    free(a);
}

static int col_of(const mtab_shape *s, const char *name)
{
    for (int i = 0; name && i < s->ncols; i++)
        if (!strcmp(s->col[i], name))
            return i;
    return -1;
}

/* The columns of a table from the schema connection (which ran schema.sql). */
static int read_shape(sqlite3 *schema, const mtab_def *d, mtab_shape *s)
{
    char *sql = sqlite3_mprintf("PRAGMA table_info(%Q)", d->table);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(schema, sql, -1, &st, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK)
        return SS_ERR;
    ss_buf decl;
    ss_buf_init(&decl, 256);
    ss_buf_puts(&decl, "CREATE TABLE x(");
    while (sqlite3_step(st) == SQLITE_ROW && s->ncols < MAX_COLS) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *type = (const char *)sqlite3_column_text(st, 2);
        if (s->ncols)
            ss_buf_puts(&decl, ", ");
        ss_buf_printf(&decl, "\"%s\" %s", name, type ? type : "");
        s->col[s->ncols++] = ss_strdup(name);
    }
    sqlite3_finalize(st);
    ss_buf_puts(&decl, ")");
    s->decl = sqlite3_mprintf("%s", ss_buf_cstr(&decl));
    ss_buf_free(&decl);
    s->key = col_of(s, d->key);
    s->time = col_of(s, d->time);
    for (int i = 0; i < MAX_EQ; i++)
        s->eq[i] = col_of(s, d->eq[i]);
    return s->ncols ? SS_OK : SS_ERR;
}

/* ---- text bounds on times ---- */

/* The time span [*lo, *hi] of every ISO text that starts with the leading
 * fields of s that are complete ("2026-11-02T14:0" names the hour 14:00 to
 * 14:59.999). Returns 0, or -1 when s does not start with a year. */
static int text_span(const char *s, size_t n, int64_t *lo, int64_t *hi)
{
    static const char tmpl[] = "0000-01-01T00:00:00.000Z";
    /* Where each field ends, and the span in ms it leaves open (a month
     * and a year: their longest). */
    static const struct {
        size_t end;
        int64_t span;
    } fields[] = {{4, 366LL * 86400000},
                  {7, 31LL * 86400000},
                  {10, 86400000},
                  {13, 3600000},
                  {16, 60000},
                  {19, 1000},
                  {21, 100},
                  {22, 10},
                  {23, 1}};
    size_t ok = 0;
    while (ok < n && ok < 23) {
        int digit = tmpl[ok] == '0';
        if (digit ? (s[ok] < '0' || s[ok] > '9') : s[ok] != tmpl[ok])
            break;
        ok++;
    }
    int f = -1;
    for (int i = 0; i < (int)(sizeof fields / sizeof fields[0]); i++)
        if (fields[i].end <= ok)
            f = i;
    if (f < 0)
        return -1;
    char full[sizeof tmpl];
    memcpy(full, tmpl, sizeof tmpl);
    memcpy(full, s, fields[f].end);
    /* A month or day of 00 from the text would not parse: clamp to 01. */
    if (full[5] == '0' && full[6] == '0')
        full[6] = '1';
    if (full[8] == '0' && full[9] == '0')
        full[9] = '1';
    if (ss_time_parse_iso(full, SS_ISO_LEN, lo) != 0) {
        /* A day past the month's end ("2026-02-30"): the whole month. */
        if (f < 2)
            return -1;
        memcpy(full + 8, "01", 2);
        if (ss_time_parse_iso(full, SS_ISO_LEN, lo) != 0)
            return -1;
        f = 1;
    }
    *hi = *lo + fields[f].span - 1;
    return 0;
}

/* ---- the virtual table ---- */

static int m_connect(sqlite3 *db, void *vaux, int argc, const char *const *argv, sqlite3_vtab **out,
                     char **errp)
{
    mtab_aux *aux = vaux;
    (void)argc;
    const char *name = argv[2];
    for (size_t i = 0; i < NDEFS; i++) {
        if (strcmp(defs[i].table, name) != 0)
            continue;
        int rc = sqlite3_declare_vtab(db, aux->shape[i].decl);
        if (rc != SQLITE_OK) {
            *errp = sqlite3_mprintf("%s", sqlite3_errmsg(db));
            return rc;
        }
        mtab *t = ss_calloc(1, sizeof *t);
        t->aux = aux;
        t->def = &defs[i];
        t->shape = &aux->shape[i];
        *out = &t->base;
        return SQLITE_OK;
    }
    *errp = sqlite3_mprintf("no MongoDB collection holds a table '%s'", name);
    return SQLITE_ERROR;
}

static int m_disconnect(sqlite3_vtab *vt)
{
    free(vt);
    return SQLITE_OK;
}

/* One code per pushed-down constraint, in argv order: 't' and the operator
 * ('=', '>', 'g' for >=, '<', 'l' for <=) for the time column, 'k' for the
 * key, or a digit for an eq column. */
static int m_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
    const mtab *t = (const mtab *)vtab;
    const mtab_shape *s = t->shape;
    char codes[64];
    int n = 0, has_key = 0, has_eq = 0, has_time = 0;
    for (int i = 0; i < info->nConstraint && n + 2 < (int)sizeof codes; i++) {
        const struct sqlite3_index_constraint *k = &info->aConstraint[i];
        if (!k->usable)
            continue;
        const char *coll = sqlite3_vtab_collation(info, i);
        if (coll && sqlite3_stricmp(coll, "BINARY") != 0)
            continue;
        char op = 0;
        switch (k->op) {
        case SQLITE_INDEX_CONSTRAINT_EQ:
            op = '=';
            break;
        case SQLITE_INDEX_CONSTRAINT_GT:
            op = '>';
            break;
        case SQLITE_INDEX_CONSTRAINT_GE:
            op = 'g';
            break;
        case SQLITE_INDEX_CONSTRAINT_LT:
            op = '<';
            break;
        case SQLITE_INDEX_CONSTRAINT_LE:
            op = 'l';
            break;
        default:
            continue;
        }
        char code = 0;
        if (k->iColumn == s->time && s->time >= 0) {
            code = 't';
            has_time = 1;
        } else if (op == '=' && k->iColumn == s->key && s->key >= 0) {
            code = 'k';
            has_key = 1;
        } else if (op == '=') {
            for (int e = 0; e < MAX_EQ; e++)
                if (s->eq[e] >= 0 && k->iColumn == s->eq[e]) {
                    code = (char)('0' + e);
                    has_eq = 1;
                }
        }
        if (!code)
            continue;
        codes[n] = code;
        codes[n + 1] = code == 't' ? op : '.';
        n += 2;
        info->aConstraintUsage[i].argvIndex = n / 2;
        info->aConstraintUsage[i].omit = 0; /* SQLite checks it again */
    }
    codes[n] = '\0';
    info->idxStr = sqlite3_mprintf("%s", codes);
    info->needToFreeIdxStr = 1;
    double rows = has_key ? 1 : has_eq ? 100 : has_time ? 10000 : 1000000;
    info->estimatedRows = (sqlite3_int64)rows;
    info->estimatedCost = rows * 2 + 10;
    if (has_key)
        info->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
    return SQLITE_OK;
}

static int m_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out)
{
    (void)vtab;
    mcur *c = ss_calloc(1, sizeof *c);
    *out = &c->base;
    return SQLITE_OK;
}

static void cur_reset(mcur *c)
{
    if (c->cur)
        mongoc_cursor_destroy(c->cur);
    c->cur = NULL;
    c->doc = NULL;
    c->udata = NULL;
    c->eof = 1;
}

static int m_close(sqlite3_vtab_cursor *cur)
{
    cur_reset((mcur *)cur);
    free(cur);
    return SQLITE_OK;
}

static int vt_error(sqlite3_vtab *vt, const char *what, const char *where, const char *msg)
{
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = sqlite3_mprintf("%s on MongoDB at %s: %s", what, where, msg);
    return SQLITE_ERROR;
}

/* Moves to the next committed row (see the opening comment). */
static int advance(mcur *c)
{
    mtab *t = (mtab *)c->base.pVtab;
    const bson_t *doc;
    while (mongoc_cursor_next(c->cur, &doc)) {
        int64_t e = mg_get_int(doc, "_e", 0) >> ROUND_BITS;
        if (e <= c->committed) {
            c->doc = doc;
            c->udata = NULL;
            c->rowid++;
            return SQLITE_OK;
        }
        bson_iter_t it;
        if (bson_iter_init_find(&it, doc, "_u") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
            uint32_t len;
            const uint8_t *data;
            bson_iter_document(&it, &len, &data);
            c->doc = doc;
            c->udata = data;
            c->ulen = len;
            c->rowid++;
            return SQLITE_OK;
        }
    }
    bson_error_t e;
    c->eof = 1;
    c->doc = NULL;
    c->udata = NULL;
    if (mongoc_cursor_error(c->cur, &e))
        return vt_error(&t->base, "reading the collection", t->aux->h->where, e.message);
    return SQLITE_OK;
}

static int m_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
                    sqlite3_value **argv)
{
    mcur *c = (mcur *)cur;
    mtab *t = (mtab *)cur->pVtab;
    hot_mongo *h = t->aux->h;
    (void)idx_num;
    cur_reset(c);
    bson_t commit;
    if (mg_by_id(h, C_STATE, "commit", 6, &commit, "reading the committed state") != SS_OK) {
        bson_destroy(&commit);
        return vt_error(cur->pVtab, "reading the committed state", h->where, "see the log");
    }
    c->committed = mg_get_int(&commit, "epoch", 0);
    bson_destroy(&commit);

    int64_t lo = INT64_MIN, hi = INT64_MAX;
    bson_t f = BSON_INITIALIZER;
    const mtab_shape *s = t->shape;
    for (int i = 0; i < argc && idx_str && idx_str[2 * i]; i++) {
        char code = idx_str[2 * i], op = idx_str[2 * i + 1];
        if (sqlite3_value_type(argv[i]) != SQLITE_TEXT)
            continue; /* SQLite compares other values by its own rules */
        const char *v = (const char *)sqlite3_value_text(argv[i]);
        size_t n = (size_t)sqlite3_value_bytes(argv[i]);
        if (code == 't') {
            int64_t a, b;
            if (text_span(v, n, &a, &b) != 0)
                continue;
            if ((op == '=' || op == '>' || op == 'g') && a > lo)
                lo = a;
            if ((op == '=' || op == '<' || op == 'l') && b < hi)
                hi = b;
        } else {
            const char *field = code == 'k' ? "_id" : s->col[s->eq[code - '0']];
            bson_append_utf8(&f, field, -1, v, (int)n);
        }
    }
    if (lo != INT64_MIN || hi != INT64_MAX) {
        bson_t r;
        const char *field = s->time == s->key ? "_id" : s->col[s->time];
        BSON_APPEND_DOCUMENT_BEGIN(&f, field, &r);
        if (lo != INT64_MIN)
            BSON_APPEND_DATE_TIME(&r, "$gte", lo);
        if (hi != INT64_MAX)
            BSON_APPEND_DATE_TIME(&r, "$lte", hi);
        bson_append_document_end(&f, &r);
    }
    c->cur = mongoc_collection_find_with_opts(h->c[t->def->c], &f, NULL, NULL);
    bson_destroy(&f);
    c->eof = 0;
    c->rowid = 0;
    return advance(c);
}

static int m_next(sqlite3_vtab_cursor *cur)
{
    return advance((mcur *)cur);
}

static int m_eof(sqlite3_vtab_cursor *cur)
{
    return ((mcur *)cur)->eof;
}

static int m_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i)
{
    mcur *c = (mcur *)cur;
    const mtab *t = (const mtab *)cur->pVtab;
    const char *field = i == t->shape->key ? "_id" : t->shape->col[i];
    bson_t u; /* here, not in the cursor: a bson_t wants more alignment than malloc's */
    const bson_t *doc = c->doc;
    if (c->udata && bson_init_static(&u, c->udata, c->ulen))
        doc = &u;
    bson_iter_t it;
    if (!doc || !bson_iter_init_find(&it, doc, field)) {
        sqlite3_result_null(ctx);
        return SQLITE_OK;
    }
    switch (bson_iter_type(&it)) {
    case BSON_TYPE_UTF8: {
        uint32_t n;
        const char *p = bson_iter_utf8(&it, &n);
        sqlite3_result_text(ctx, p, (int)n, SQLITE_TRANSIENT);
        break;
    }
    case BSON_TYPE_DATE_TIME: {
        char iso[SS_ISO_LEN];
        ss_time_format_iso(bson_iter_date_time(&it), iso);
        sqlite3_result_text(ctx, iso, SS_ISO_LEN, SQLITE_TRANSIENT);
        break;
    }
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_BOOL:
        sqlite3_result_int64(ctx, mg_iter_int(&it));
        break;
    case BSON_TYPE_DOUBLE:
        sqlite3_result_double(ctx, bson_iter_double(&it));
        break;
    case BSON_TYPE_BINARY: {
        uint32_t n;
        const uint8_t *p;
        bson_iter_binary(&it, NULL, &n, &p);
        sqlite3_result_blob(ctx, p, (int)n, SQLITE_TRANSIENT);
        break;
    }
    default:
        sqlite3_result_null(ctx);
        break;
    }
    return SQLITE_OK;
}

static int m_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = ((mcur *)cur)->rowid;
    return SQLITE_OK;
}

static const sqlite3_module mongo_module = {
    .iVersion = 1,
    .xCreate = m_connect,
    .xConnect = m_connect,
    .xBestIndex = m_best_index,
    .xDisconnect = m_disconnect,
    .xDestroy = m_disconnect,
    .xOpen = m_open,
    .xClose = m_close,
    .xFilter = m_filter,
    .xNext = m_next,
    .xEof = m_eof,
    .xColumn = m_column,
    .xRowid = m_rowid,
};

/* ---- the tables and views of schema.sql ---- */

static const mtab_def *def_of(const char *table)
{
    for (size_t i = 0; i < NDEFS; i++)
        if (!strcmp(defs[i].table, table))
            return &defs[i];
    return NULL;
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return SS_OK;
    snprintf(err, errlen, "cannot set up SQL over MongoDB: %s", msg ? msg : "out of memory");
    sqlite3_free(msg);
    return SS_ERR;
}

/* The shards' state and input positions of the last commit, as the rows
 * of shard_state and ingest_positions. */
static int fill_state(hot_mongo *h, sqlite3 *db, char *err, size_t errlen)
{
    if (mongo_load_state(h, NULL, NULL, NULL) != SS_OK) {
        snprintf(err, errlen, "cannot read the committed state on MongoDB at %s", h->where);
        return SS_EIO;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO shard_state VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                -1, &st, NULL) == SQLITE_OK
                 ? SS_OK
                 : SS_ERR;
    for (size_t i = 0; !rc && i < h->nshards; i++) {
        const ss_hot_state *s = &h->shards[i].s;
        const int64_t v[] = {s->shard,
                             0,
                             s->watermark,
                             s->input_watermark,
                             s->max_ts,
                             (int64_t)s->events_in,
                             (int64_t)s->stored,
                             (int64_t)s->duplicates,
                             (int64_t)s->rejected,
                             (int64_t)s->late};
        sqlite3_reset(st);
        for (int k = 0; k < 10; k++) {
            if (k == 1)
                sqlite3_bind_text(st, 2, h->shards[i].owner, -1, SQLITE_TRANSIENT);
            else if (v[k] == INT64_MIN)
                sqlite3_bind_null(st, k + 1);
            else
                sqlite3_bind_int64(st, k + 1, v[k]);
        }
        if (sqlite3_step(st) != SQLITE_DONE)
            rc = SS_ERR;
    }
    sqlite3_finalize(st);
    for (size_t i = 0; !rc && i < h->npos; i++) {
        char *sql = sqlite3_mprintf("INSERT INTO ingest_positions VALUES (%Q, %lld)",
                                    h->pos[i].source, (long long)h->pos[i].offset);
        rc = exec(db, sql, err, errlen);
        sqlite3_free(sql);
    }
    if (rc && !*err)
        snprintf(err, errlen, "cannot set up SQL over MongoDB: %s", sqlite3_errmsg(db));
    return rc;
}

int mongo_sql_attach(void *vst, sqlite3 *db, char *err, size_t errlen)
{
    hot_mongo *h = vst;
    *err = '\0';
    sqlite3 *schema = NULL;
    int rc = SS_ERR;
    if (sqlite3_open_v2(":memory:", &schema, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        ss_hot_facts_register(schema) != SQLITE_OK ||
        exec(schema, ss_asset_hot_schema_sql, err, errlen) != SS_OK) {
        if (!*err)
            snprintf(err, errlen, "cannot set up SQL over MongoDB: out of memory");
        sqlite3_close(schema);
        return SS_ERR;
    }
    mtab_aux *aux = ss_calloc(1, sizeof *aux);
    aux->h = h;
    for (size_t i = 0; i < NDEFS; i++)
        if (read_shape(schema, &defs[i], &aux->shape[i]) != SS_OK) {
            snprintf(err, errlen, "cannot set up SQL over MongoDB: no table %s in the schema",
                     defs[i].table);
            aux_free(aux);
            sqlite3_close(schema);
            return SS_ERR;
        }
    if (sqlite3_create_module_v2(db, "ss_mongo", &mongo_module, aux, aux_free) != SQLITE_OK) {
        snprintf(err, errlen, "cannot register the MongoDB tables: %s", sqlite3_errmsg(db));
        sqlite3_close(schema);
        return SS_ERR;
    }
    /* Tables (the collections' as virtual tables, the others as they are),
     * then the views, in the order schema.sql made them. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(schema,
                           "SELECT type, name, sql FROM sqlite_master WHERE type IN ('table', "
                           "'view') AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%_blocks' "
                           "ORDER BY type = 'view', rowid",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot set up SQL over MongoDB: %s", sqlite3_errmsg(schema));
        sqlite3_close(schema);
        return SS_ERR;
    }
    rc = SS_OK;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *sql = (const char *)sqlite3_column_text(st, 2);
        if (def_of(name)) {
            char *v = sqlite3_mprintf("CREATE VIRTUAL TABLE main.\"%w\" USING ss_mongo", name);
            rc = exec(db, v, err, errlen);
            sqlite3_free(v);
        } else {
            rc = exec(db, sql, err, errlen);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(schema);
    if (!rc)
        rc = fill_state(h, db, err, errlen);
    return rc;
}

/* ss_union: a table of hot and cold storage together, read as one virtual
 * table (union.h). A view of the form `hot UNION ALL cold` would do the same,
 * but SQLite (before 3.41) evaluates every column of a compound view that it
 * cannot flatten into the query, which is every aggregate over it: each
 * event's every value passes through the hot store's xColumn, used or not.
 * Here each part is read by a statement of its own that names only the
 * columns the query uses and carries the query's comparisons, so that both
 * parts read no more than a query of them alone would. */
#include "query/union.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"

#define MAX_PUSH 16 /* comparisons handed to the parts' statements */

typedef struct un_vtab {
    sqlite3_vtab base;
    sqlite3 *db;
    char *part[2]; /* the relations read in turn */
    int ncol;
    char **cols; /* their column names */
    int time_col;
    /* Both parts declare the time column TEXT: a comparison of it with a text
     * constant means the same in either part and over the union, so the
     * parts' own check of it is enough (see un_best_index). */
    int time_text;
} un_vtab;

typedef struct un_cursor {
    sqlite3_vtab_cursor base;
    sqlite3_stmt *st[2];
    char *plan;  /* the idxStr the statements were made for */
    int map[64]; /* column -> result column of the statements, or -1 */
    int part, eof;
    sqlite3_int64 rowid;
} un_cursor;

static char *dup_arg(const char *a)
{
    size_t n = strlen(a);
    while (n && (*a == ' ' || *a == '\t'))
        a++, n--;
    while (n && (a[n - 1] == ' ' || a[n - 1] == '\t'))
        n--;
    char *s = ss_malloc(n + 1);
    memcpy(s, a, n);
    s[n] = '\0';
    return s;
}

static void vtab_free(un_vtab *vt)
{
    if (!vt)
        return;
    for (int i = 0; i < vt->ncol; i++)
        free(vt->cols[i]);
    free(vt->cols);
    free(vt->part[0]);
    free(vt->part[1]);
    sqlite3_free(vt);
}

/* Whether the cold part declares the time column TEXT. */
static int time_col_text(sqlite3 *db, const un_vtab *vt, const char *time_col)
{
    sqlite3_stmt *st = NULL;
    char *sql = sqlite3_mprintf("SELECT \"%w\" FROM \"%w\"", time_col, vt->part[1]);
    int text = sql && sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
               sqlite3_column_decltype(st, 0) &&
               !sqlite3_stricmp(sqlite3_column_decltype(st, 0), "TEXT");
    sqlite3_free(sql);
    sqlite3_finalize(st);
    return text;
}

/* CREATE VIRTUAL TABLE t USING ss_union(HOT, COLD, TIME_COLUMN): the columns
 * are HOT's, with their declared types (so comparisons take the affinity they
 * take in HOT); COLD must have the same names in the same order. */
static int un_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out,
                      char **err)
{
    (void)aux;
    if (argc != 6) {
        *err = sqlite3_mprintf("ss_union takes a hot relation, a cold one and a time column");
        return SQLITE_ERROR;
    }
    un_vtab *vt = sqlite3_malloc(sizeof *vt);
    if (!vt)
        return SQLITE_NOMEM;
    memset(vt, 0, sizeof *vt);
    vt->db = db;
    vt->part[0] = dup_arg(argv[3]);
    vt->part[1] = dup_arg(argv[4]);
    char *time_col = dup_arg(argv[5]);
    vt->time_col = -1;
    sqlite3_stmt *st = NULL;
    char *sql = sqlite3_mprintf("SELECT * FROM \"%w\"", vt->part[0]);
    int rc = sql ? sqlite3_prepare_v2(db, sql, -1, &st, NULL) : SQLITE_NOMEM;
    sqlite3_free(sql);
    ss_buf decl;
    ss_buf_init(&decl, 256);
    if (rc == SQLITE_OK) {
        vt->ncol = sqlite3_column_count(st);
        vt->cols = ss_calloc((size_t)vt->ncol + 1, sizeof *vt->cols);
        ss_buf_lit(&decl, "CREATE TABLE x(");
        for (int i = 0; i < vt->ncol; i++) {
            const char *name = sqlite3_column_name(st, i), *type = sqlite3_column_decltype(st, i);
            vt->cols[i] = ss_strdup(name);
            if (!strcmp(name, time_col))
                vt->time_col = i;
            char *col = sqlite3_mprintf("%s\"%w\" %s", i ? ", " : "", name, type ? type : "");
            if (col)
                ss_buf_puts(&decl, col);
            sqlite3_free(col);
        }
        ss_buf_lit(&decl, ")");
        if (vt->ncol == 0 || vt->ncol > 63)
            rc = SQLITE_ERROR;
    }
    if (rc == SQLITE_OK && vt->time_col >= 0) {
        const char *type = sqlite3_column_decltype(st, vt->time_col);
        vt->time_text = type && !sqlite3_stricmp(type, "TEXT") && time_col_text(db, vt, time_col);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_declare_vtab(db, ss_buf_cstr(&decl));
    if (rc != SQLITE_OK)
        *err = sqlite3_mprintf("ss_union over %s: %s", vt->part[0], sqlite3_errmsg(db));
    sqlite3_finalize(st);
    ss_buf_free(&decl);
    free(time_col);
    if (rc != SQLITE_OK) {
        vtab_free(vt);
        return rc;
    }
    *out = &vt->base;
    return SQLITE_OK;
}

static int un_disconnect(sqlite3_vtab *vtab)
{
    vtab_free((un_vtab *)vtab);
    return SQLITE_OK;
}

static const char *op_sql(unsigned char op)
{
    switch (op) {
    case SQLITE_INDEX_CONSTRAINT_EQ:
        return "=";
    case SQLITE_INDEX_CONSTRAINT_GT:
        return ">";
    case SQLITE_INDEX_CONSTRAINT_LE:
        return "<=";
    case SQLITE_INDEX_CONSTRAINT_LT:
        return "<";
    case SQLITE_INDEX_CONSTRAINT_GE:
        return ">=";
    default:
        return NULL;
    }
}

/* The plan, as idxStr: the mask of the used columns in hex, a newline, and
 * the WHERE terms (comparisons under BINARY, handed over in order). SQLite
 * checks them again over the union (omit 0), but for a comparison of the time
 * column with a text constant when both parts declare it TEXT: the parts'
 * statements check it exactly as the union would, and a query that does not
 * select the time column then never asks for it. Only comparisons of the time column make the
 * estimate smaller: the parts find a time range without reading everything, but any other column
 * only by reading it all, so that a join should not make this table its inner loop on them. */
static int un_best_index(sqlite3_vtab *vtab, sqlite3_index_info *info)
{
    const un_vtab *vt = (const un_vtab *)vtab;
    ss_buf plan;
    ss_buf_init(&plan, 256);
    ss_buf_printf(&plan, "%llx\n", (unsigned long long)info->colUsed);
    int n = 0, lower = 0, upper = 0, eq = 0;
    for (int i = 0; i < info->nConstraint && n < MAX_PUSH; i++) {
        const struct sqlite3_index_constraint *k = &info->aConstraint[i];
        const char *op = op_sql(k->op);
        if (!k->usable || !op || k->iColumn < 0 || k->iColumn >= vt->ncol)
            continue;
        const char *coll = sqlite3_vtab_collation(info, i);
        if (coll && sqlite3_stricmp(coll, "BINARY") != 0)
            continue;
        char *term =
            sqlite3_mprintf("%s\"%w\" %s ?%d", n ? " AND " : "", vt->cols[k->iColumn], op, n + 1);
        if (term)
            ss_buf_puts(&plan, term);
        sqlite3_free(term);
        info->aConstraintUsage[i].argvIndex = ++n;
        sqlite3_value *rhs = NULL;
        info->aConstraintUsage[i].omit = vt->time_text && k->iColumn == vt->time_col &&
                                         sqlite3_vtab_rhs_value(info, i, &rhs) == SQLITE_OK &&
                                         rhs && sqlite3_value_type(rhs) == SQLITE_TEXT;
        if (k->iColumn == vt->time_col) {
            eq |= k->op == SQLITE_INDEX_CONSTRAINT_EQ;
            lower |= k->op == SQLITE_INDEX_CONSTRAINT_GT || k->op == SQLITE_INDEX_CONSTRAINT_GE;
            upper |= k->op == SQLITE_INDEX_CONSTRAINT_LT || k->op == SQLITE_INDEX_CONSTRAINT_LE;
        }
    }
    info->idxStr = sqlite3_mprintf("%s", ss_buf_cstr(&plan));
    info->needToFreeIdxStr = 1;
    ss_buf_free(&plan);
    if (!info->idxStr)
        return SQLITE_NOMEM;
    double rows = eq ? 10 : lower && upper ? 1e4 : lower || upper ? 2.5e5 : 1e6;
    info->estimatedRows = (sqlite3_int64)rows;
    info->estimatedCost = rows;
    return SQLITE_OK;
}

static int un_open(sqlite3_vtab *vtab, sqlite3_vtab_cursor **out)
{
    (void)vtab;
    un_cursor *c = sqlite3_malloc(sizeof *c);
    if (!c)
        return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    c->eof = 1;
    *out = &c->base;
    return SQLITE_OK;
}

static void drop_statements(un_cursor *c)
{
    for (int p = 0; p < 2; p++) {
        sqlite3_finalize(c->st[p]);
        c->st[p] = NULL;
    }
    free(c->plan);
    c->plan = NULL;
}

static int un_close(sqlite3_vtab_cursor *cur)
{
    un_cursor *c = (un_cursor *)cur;
    drop_statements(c);
    sqlite3_free(c);
    return SQLITE_OK;
}

static int fail(un_cursor *c, int rc)
{
    un_vtab *vt = (un_vtab *)c->base.pVtab;
    sqlite3_free(vt->base.zErrMsg);
    vt->base.zErrMsg = sqlite3_mprintf("%s", sqlite3_errmsg(vt->db));
    c->eof = 1;
    return rc;
}

/* Steps the running part, going on to the next part when it ends. */
static int advance(un_cursor *c)
{
    for (;;) {
        int rc = sqlite3_step(c->st[c->part]);
        if (rc == SQLITE_ROW) {
            c->rowid++;
            return SQLITE_OK;
        }
        if (rc != SQLITE_DONE)
            return fail(c, rc);
        if (c->part == 1) {
            c->eof = 1;
            return SQLITE_OK;
        }
        c->part = 1;
    }
}

/* Prepares the parts' statements for a plan, or keeps those made for it. */
static int prepare(un_cursor *c, const char *plan)
{
    un_vtab *vt = (un_vtab *)c->base.pVtab;
    if (c->plan && !strcmp(c->plan, plan)) {
        for (int p = 0; p < 2; p++) {
            sqlite3_reset(c->st[p]);
            sqlite3_clear_bindings(c->st[p]);
        }
        return SQLITE_OK;
    }
    drop_statements(c);
    const char *nl = strchr(plan, '\n');
    if (!nl)
        return SQLITE_INTERNAL;
    /* The used columns, in column order; map gives each one's place. */
    unsigned long long used = strtoull(plan, NULL, 16);
    ss_buf cols;
    ss_buf_init(&cols, 256);
    int k = 0;
    for (int i = 0; i < vt->ncol; i++) {
        c->map[i] = -1;
        if (!(used & (1ULL << i)))
            continue;
        char *q = sqlite3_mprintf("%s\"%w\"", k ? ", " : "", vt->cols[i]);
        if (q)
            ss_buf_puts(&cols, q);
        sqlite3_free(q);
        c->map[i] = k++;
    }
    if (!k)
        ss_buf_lit(&cols, "1");
    for (int p = 0; p < 2; p++) {
        char *sql = sqlite3_mprintf("SELECT %s FROM \"%w\"%s%s", ss_buf_cstr(&cols), vt->part[p],
                                    nl[1] ? " WHERE " : "", nl + 1);
        int rc =
            sql ? sqlite3_prepare_v3(vt->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &c->st[p], NULL)
                : SQLITE_NOMEM;
        sqlite3_free(sql);
        if (rc != SQLITE_OK) {
            ss_buf_free(&cols);
            rc = fail(c, rc);
            drop_statements(c);
            return rc;
        }
    }
    ss_buf_free(&cols);
    c->plan = ss_strdup(plan);
    return SQLITE_OK;
}

static int un_filter(sqlite3_vtab_cursor *cur, int idx_num, const char *idx_str, int argc,
                     sqlite3_value **argv)
{
    un_cursor *c = (un_cursor *)cur;
    (void)idx_num;
    c->eof = 1;
    int rc = prepare(c, idx_str ? idx_str : "7fffffffffffffff\n");
    if (rc)
        return rc;
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < argc; i++)
            if (sqlite3_bind_value(c->st[p], i + 1, argv[i]) != SQLITE_OK)
                return fail(c, SQLITE_ERROR);
    c->part = 0;
    c->eof = 0;
    c->rowid = 0;
    return advance(c);
}

static int un_next(sqlite3_vtab_cursor *cur)
{
    return advance((un_cursor *)cur);
}

static int un_eof(sqlite3_vtab_cursor *cur)
{
    return ((un_cursor *)cur)->eof;
}

static int un_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int i)
{
    un_cursor *c = (un_cursor *)cur;
    int k = i >= 0 && i < 64 ? c->map[i] : -1;
    if (k < 0)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_value(ctx, sqlite3_column_value(c->st[c->part], k));
    return SQLITE_OK;
}

static int un_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *rowid)
{
    *rowid = ((un_cursor *)cur)->rowid;
    return SQLITE_OK;
}

static const sqlite3_module union_module = {
    .iVersion = 1,
    .xCreate = un_connect,
    .xConnect = un_connect,
    .xBestIndex = un_best_index,
    .xDisconnect = un_disconnect,
    .xDestroy = un_disconnect,
    .xOpen = un_open,
    .xClose = un_close,
    .xFilter = un_filter,
    .xNext = un_next,
    .xEof = un_eof,
    .xColumn = un_column,
    .xRowid = un_rowid,
};

int ss_query_union_register(sqlite3 *db)
{
    return sqlite3_create_module(db, "ss_union", &union_module, NULL) == SQLITE_OK ? 0 : -1;
}

/* Reading a sample of orders for `shopstream fit`: CSV with a header, or JSON
 * Lines (plain order objects, or the generator's own events). */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "gen/fit_int.h"

/* ---- name tables ---- */

static uint32_t hash_text(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static uint32_t *slot_of(const fit_names *t, const char *s, size_t len)
{
    uint32_t mask = t->nslots - 1, i = hash_text(s, len) & mask;
    for (;; i = (i + 1) & mask) {
        uint32_t *slot = &t->slots[i];
        if (!*slot)
            return slot;
        const char *v = t->v[*slot - 1];
        if (!strncmp(v, s, len) && v[len] == '\0')
            return slot;
    }
}

uint32_t fit_names_find(const fit_names *t, const char *s, size_t len)
{
    if (!t->nslots)
        return FIT_NONE;
    uint32_t *slot = slot_of(t, s, len);
    return *slot ? *slot - 1 : FIT_NONE;
}

uint32_t fit_names_intern(fit_names *t, const char *s, size_t len)
{
    if ((uint64_t)(t->n + 1) * 2 > t->nslots) {
        uint32_t old = t->nslots;
        uint32_t *olds = t->slots;
        t->nslots = old ? old * 2 : 64;
        t->slots = ss_calloc(t->nslots, sizeof *t->slots);
        for (uint32_t i = 0; i < old; i++)
            if (olds[i]) {
                const char *v = t->v[olds[i] - 1];
                *slot_of(t, v, strlen(v)) = olds[i];
            }
        free(olds);
    }
    uint32_t *slot = slot_of(t, s, len);
    if (*slot)
        return *slot - 1;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->v = ss_realloc(t->v, t->cap * sizeof *t->v);
    }
    t->v[t->n] = ss_strndup(s, len);
    *slot = ++t->n;
    return t->n - 1;
}

void fit_names_free(fit_names *t)
{
    for (uint32_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    free(t->slots);
    memset(t, 0, sizeof *t);
}

fit_order *fit_sample_add(ss_fit_sample *s)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->o = ss_realloc(s->o, s->cap * sizeof *s->o);
    }
    fit_order *o = &s->o[s->n++];
    *o = (fit_order){.amount = -1, .unit_price = -1, .paid = -1, .cancelled = -1};
    for (int i = 0; i < FIT_NTEXT; i++)
        o->text[i] = FIT_NONE;
    return o;
}

void fit_attempt_add(ss_fit_sample *s, uint32_t method, int failed)
{
    fit_attempts *a = &s->att;
    if (method >= a->n) {
        uint32_t n = method + 16;
        a->tries = ss_realloc(a->tries, n * sizeof *a->tries);
        a->failed = ss_realloc(a->failed, n * sizeof *a->failed);
        memset(a->tries + a->n, 0, (n - a->n) * sizeof *a->tries);
        memset(a->failed + a->n, 0, (n - a->n) * sizeof *a->failed);
        a->n = n;
    }
    a->tries[method]++;
    a->failed[method] += failed != 0;
}

void fit_period(const ss_fit_sample *s, int64_t *start, int64_t *end)
{
    *start = ss_time_floor(s->first_ts, SS_MS_PER_DAY);
    *end = s->has_time ? s->last_ts + 1 : ss_time_floor(s->last_ts, SS_MS_PER_DAY) + SS_MS_PER_DAY;
}

size_t ss_fit_sample_orders(const ss_fit_sample *s)
{
    return s->n;
}

void ss_fit_sample_free(ss_fit_sample *s)
{
    if (!s)
        return;
    free(s->name);
    free(s->o);
    for (int i = 0; i < FIT_NTEXT; i++)
        fit_names_free(&s->names[i]);
    free(s->att.tries);
    free(s->att.failed);
    free(s);
}

/* ---- columns ---- */

enum {
    C_TS,
    C_CUSTOMER,
    C_AMOUNT,
    C_TOTAL,
    C_QTY,
    C_UNIT,
    C_PRODUCT,
    C_CATEGORY,
    C_CITY,
    C_COUNTRY,
    C_METHOD,
    C_STATUS,
    C_CANCEL,
    C_SEGMENT,
    NCOLS
};

/* Each field's name, then the other names a file may give it. */
static const char *const col_names[NCOLS][6] = {
    [C_TS] = {"ts", "timestamp", "order_date", "date", "created_at", "order_time"},
    [C_CUSTOMER] = {"customer_id", "customer", "cust", "user_id", "client_id", NULL},
    [C_AMOUNT] = {"amount", "order_amount", "value", NULL},
    [C_TOTAL] = {"total_price", "total", NULL},
    [C_QTY] = {"quantity", "qty", "units", NULL},
    [C_UNIT] = {"unit_price", "price", NULL},
    [C_PRODUCT] = {"product_id", "product", "sku", NULL},
    [C_CATEGORY] = {"category", NULL},
    [C_CITY] = {"city", NULL},
    [C_COUNTRY] = {"country", NULL},
    [C_METHOD] = {"payment_method", NULL},
    [C_STATUS] = {"payment_status", "status", NULL},
    [C_CANCEL] = {"cancelled", "canceled", "is_cancelled", NULL},
    [C_SEGMENT] = {"customer_segment", "segment", NULL},
};

static const int col_text[NCOLS] = {
    [C_CUSTOMER] = FIT_CUSTOMER + 1, [C_PRODUCT] = FIT_PRODUCT + 1, [C_CATEGORY] = FIT_CATEGORY + 1,
    [C_CITY] = FIT_CITY + 1,         [C_COUNTRY] = FIT_COUNTRY + 1, [C_METHOD] = FIT_METHOD + 1,
    [C_SEGMENT] = FIT_SEGMENT + 1,
};

typedef struct rctx {
    ss_fit_sample *s;
    char *err;
    size_t errlen;
    int failed;
    long line;
    char *map[NCOLS]; /* the file's name of each field, from --columns; NULL = aliases */
    int jsonl;
} rctx;

static void fail(rctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(rctx *c, const char *fmt, ...)
{
    char prefix[512];
    snprintf(prefix, sizeof prefix, "sample '%s': ", c->s->name);
    va_list ap;
    va_start(ap, fmt);
    ss_status_vfail(&c->failed, c->err, c->errlen, prefix, fmt, ap);
    va_end(ap);
}

static int parse_columns(rctx *c, const char *spec)
{
    if (!spec || !*spec)
        return 0;
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        int col = -1;
        if (eq)
            for (int i = 0; i < NCOLS; i++)
                if (strlen(col_names[i][0]) == (size_t)(eq - p) &&
                    !strncmp(col_names[i][0], p, (size_t)(eq - p)))
                    col = i;
        if (!eq || eq == p + len - 1 || col < 0) {
            snprintf(c->err, c->errlen,
                     "--columns: '%.*s' is not FIELD=COLUMN with FIELD one of ts, customer_id, "
                     "amount, total_price, quantity, unit_price, product_id, category, city, "
                     "country, payment_method, payment_status, cancelled, customer_segment",
                     (int)len, p);
            return SS_EINVAL;
        }
        free(c->map[col]);
        c->map[col] = ss_strndup(eq + 1, len - (size_t)(eq + 1 - p));
        p += len + (end ? 1 : 0);
    }
    return 0;
}

/* Whether the file's column or key name is field col's. */
static int names_field(const rctx *c, int col, const char *name)
{
    if (c->map[col])
        return !strcmp(c->map[col], name);
    for (int k = 0; k < 6 && col_names[col][k]; k++)
        if (!strcasecmp(col_names[col][k], name))
            return 1;
    return 0;
}

/* ---- values ---- */

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* A date "YYYY-MM-DD", optionally with a time "[T ]HH:MM[:SS[.fff]]" and a
 * zone "Z" or "±HH[:]MM"; or a Unix time in seconds (10 digits or fewer) or
 * milliseconds. */
static int parse_ts(const char *s, size_t len, int64_t *ms, int *has_time)
{
    *has_time = 0;
    if (len > 0 && strspn(s, "0123456789") == len && len <= 16) {
        int64_t v = 0;
        for (size_t i = 0; i < len; i++)
            v = v * 10 + (s[i] - '0');
        *ms = len <= 10 ? v * 1000 : v;
        *has_time = 1;
        return 0;
    }
    int y, mo, d, h = 0, mi = 0, se = 0, frac = 0;
    if (len < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    size_t i = 10;
    if (i < len) {
        if ((s[i] != 'T' && s[i] != ' ') || len < i + 6 || digits(s + i + 1, 2, &h) ||
            s[i + 3] != ':' || digits(s + i + 4, 2, &mi) || h > 23 || mi > 59)
            return -1;
        i += 6;
        *has_time = 1;
        if (i < len && s[i] == ':') {
            if (len < i + 3 || digits(s + i + 1, 2, &se) || se > 60)
                return -1;
            i += 3;
            if (i < len && s[i] == '.') {
                int scale = 100;
                for (i++; i < len && isdigit((unsigned char)s[i]); i++, scale /= 10)
                    frac += (s[i] - '0') * scale;
            }
        }
    }
    int64_t off = 0;
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int oh, om = 0;
        size_t k = i + 1;
        if (len < k + 2 || digits(s + k, 2, &oh))
            return -1;
        k += 2;
        if (k < len && s[k] == ':')
            k++;
        if (k + 2 <= len && !digits(s + k, 2, &om))
            k += 2;
        off = (s[i] == '-' ? -1 : 1) * (oh * 60 + om) * 60000LL;
        i = k;
    }
    if (i != len)
        return -1;
    int64_t days = ss_days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t y2;
    unsigned m2, d2;
    ss_civil_from_days(days, &y2, &m2, &d2);
    if (m2 != (unsigned)mo || d2 != (unsigned)d)
        return -1; /* 2026-02-30 */
    *ms = days * SS_MS_PER_DAY + h * 3600000LL + mi * 60000LL + se * 1000LL + frac - off;
    return 0;
}

static int parse_number(const char *s, size_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (end == buf || *end || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int truthy(const char *s, size_t len)
{
    static const char *const yes[] = {"1", "true", "yes", "y", "cancelled", "canceled"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (strlen(yes[i]) == len && !strncasecmp(yes[i], s, len))
            return 1;
    return 0;
}

static int failed_status(const char *s, size_t len)
{
    static const char *const bad[] = {"failed", "failure", "declined", "unpaid",
                                      "error",  "0",       "false"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (strlen(bad[i]) == len && !strncasecmp(bad[i], s, len))
            return 1;
    return 0;
}

/* Stores field col's text value into o; where names the place in messages. */
static void set_field(rctx *c, fit_order *o, int col, const char *v, size_t len, const char *where)
{
    ss_fit_sample *s = c->s;
    if (col == C_TS) {
        int has_time;
        if (parse_ts(v, len, &o->ts, &has_time)) {
            fail(c,
                 "line %ld, %s: '%.*s' is not a date or time; give YYYY-MM-DD, "
                 "YYYY-MM-DDTHH:MM:SS[.fff][Z|+HH:MM] or Unix seconds",
                 c->line, where, (int)(len > 40 ? 40 : len), v);
            return;
        }
        s->has_time |= has_time;
        return;
    }
    if (len == 0)
        return; /* an empty optional value says nothing */
    if (col_text[col]) {
        o->text[col_text[col] - 1] = fit_names_intern(&s->names[col_text[col] - 1], v, len);
        return;
    }
    if (col == C_STATUS) {
        o->paid = !failed_status(v, len);
        return;
    }
    if (col == C_CANCEL) {
        o->cancelled = (int8_t)truthy(v, len);
        return;
    }
    double x;
    if (parse_number(v, len, &x)) {
        fail(c, "line %ld, %s: '%.*s' is not a number", c->line, where, (int)(len > 40 ? 40 : len),
             v);
        return;
    }
    if (x < 0) {
        fail(c, "line %ld, %s: negative %s %.*s; amounts and quantities must be 0 or more", c->line,
             where, col_names[col][0], (int)(len > 40 ? 40 : len), v);
        return;
    }
    if (col == C_QTY) {
        if (x != floor(x) || x > 1e6) {
            fail(c, "line %ld, %s: quantity '%.*s' is not a whole number up to 1000000", c->line,
                 where, (int)(len > 40 ? 40 : len), v);
            return;
        }
        o->qty = (int32_t)x;
        return;
    }
    if (x > 1e12) {
        fail(c, "line %ld, %s: %s %.*s is over 10^12", c->line, where, col_names[col][0],
             (int)(len > 40 ? 40 : len), v);
        return;
    }
    int64_t cents = llround(x * 100.0);
    if (col == C_UNIT)
        o->unit_price = cents;
    else if (col == C_AMOUNT || (col == C_TOTAL && o->amount < 0))
        o->amount = cents;
}

/* ---- CSV ---- */

typedef struct csv_field {
    const char *p;
    size_t len;
} csv_field;

/* Splits a line into fields (RFC 4180 quoting; quotes are unescaped in
 * place). Returns the number of fields, or -1 on an unterminated quote. */
static int csv_split(char *line, size_t len, csv_field *f, int maxf)
{
    int n = 0;
    size_t i = 0;
    for (;;) {
        if (n == maxf)
            return n;
        if (i < len && line[i] == '"') {
            size_t w = ++i, start = i;
            for (;;) {
                if (i >= len)
                    return -1;
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        line[w++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                line[w++] = line[i++];
            }
            f[n++] = (csv_field){line + start, w - start};
            while (i < len && line[i] != ',')
                i++;
        } else {
            size_t start = i;
            while (i < len && line[i] != ',')
                i++;
            size_t e = i;
            while (e > start && (line[e - 1] == ' ' || line[e - 1] == '\t'))
                e--;
            while (start < e && (line[start] == ' ' || line[start] == '\t'))
                start++;
            f[n++] = (csv_field){line + start, e - start};
        }
        if (i >= len)
            return n;
        i++; /* the comma */
    }
}

#define MAXF 256

static void read_csv(rctx *c, FILE *fp, char **linep, size_t *cap)
{
    ss_fit_sample *s = c->s;
    int colidx[MAXF];
    csv_field f[MAXF];
    char names[MAXF][64];
    int nhead = 0;
    ssize_t got;
    while (!c->failed && (got = getline(linep, cap, fp)) >= 0) {
        size_t len = (size_t)got;
        char *line = *linep;
        c->line++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (c->line == 1 && len >= 3 && !memcmp(line, "\xef\xbb\xbf", 3)) {
            line += 3;
            len -= 3;
        }
        if (len == 0)
            continue;
        int n = csv_split(line, len, f, MAXF);
        if (n < 0) {
            fail(c, "line %ld: a quoted field is not closed on its line", c->line);
            return;
        }
        if (!nhead) {
            nhead = n;
            int seen[NCOLS] = {0};
            for (int i = 0; i < n; i++) {
                snprintf(names[i], sizeof names[i], "%.*s", (int)f[i].len, f[i].p);
                colidx[i] = -1;
                for (int k = 0; k < NCOLS; k++)
                    if (!seen[k] && names_field(c, k, names[i])) {
                        colidx[i] = k;
                        seen[k] = 1;
                        break;
                    }
            }
            for (int k = 0; k < NCOLS; k++) {
                if (c->map[k] && !seen[k]) {
                    fail(c,
                         "line 1: --columns maps %s to column '%s', which the header does "
                         "not have",
                         col_names[k][0], c->map[k]);
                    return;
                }
                if (seen[k] && col_text[k])
                    s->has[col_text[k] - 1] = 1;
            }
            if (!seen[C_TS]) {
                fail(c, "line 1: no column for the order time (ts); name it with --columns "
                        "ts=COLUMN, or call the column ts, timestamp, order_date or date");
                return;
            }
            s->has_amount = seen[C_AMOUNT] || seen[C_TOTAL];
            s->amount_is_total = !seen[C_AMOUNT] && seen[C_TOTAL];
            s->has_qty = seen[C_QTY];
            s->has_unit_price = seen[C_UNIT];
            s->has_status = seen[C_STATUS];
            s->has_cancel = seen[C_CANCEL];
            continue;
        }
        if (n != nhead) {
            fail(c,
                 "line %ld: %d fields, but the header has %d; check the quoting and the "
                 "separator (a comma)",
                 c->line, n, nhead);
            return;
        }
        fit_order *o = fit_sample_add(s);
        for (int i = 0; i < n && !c->failed; i++) {
            if (colidx[i] < 0)
                continue;
            char where[96];
            snprintf(where, sizeof where, "column %d (%s)", i + 1, names[i]);
            set_field(c, o, colidx[i], f[i].p, f[i].len, where);
        }
    }
    if (!c->failed && !nhead)
        fail(c, "the file is empty; give a CSV file with a header line, or JSON Lines");
}

/* ---- JSON Lines ---- */

static void json_value(rctx *c, fit_order *o, int col, json_t *v, const char *key)
{
    char where[96];
    snprintf(where, sizeof where, "field \"%s\"", key);
    char num[64];
    const char *t;
    size_t len;
    if (json_is_string(v)) {
        t = json_string_value(v);
        len = json_string_length(v);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        t = num;
        len = strlen(num);
    } else if (json_is_real(v)) {
        snprintf(num, sizeof num, "%.17g", json_real_value(v));
        t = num;
        len = strlen(num);
    } else if (json_is_boolean(v)) {
        t = json_is_true(v) ? "true" : "false";
        len = strlen(t);
    } else if (json_is_null(v)) {
        return;
    } else {
        fail(c, "line %ld, %s: must be a string or a number", c->line, where);
        return;
    }
    set_field(c, o, col, t, len, where);
}

/* Lines of the generator's own events: payments and cancellations are
 * matched to their order by order_id. */
static void json_event(rctx *c, json_t *obj, const char *type, fit_names *orders)
{
    ss_fit_sample *s = c->s;
    json_t *id = json_object_get(obj, "order_id");
    if (!json_is_string(id)) {
        fail(c, "line %ld, field \"order_id\": missing; every event names its order", c->line);
        return;
    }
    uint32_t k = fit_names_find(orders, json_string_value(id), json_string_length(id));
    if (k == FIT_NONE)
        return; /* the order is before the sample's start */
    fit_order *o = &s->o[k];
    if (!strcmp(type, "payment")) {
        json_t *m = json_object_get(obj, "payment_method"), *st = json_object_get(obj, "status");
        if (!json_is_string(m) || !json_is_string(st)) {
            fail(c, "line %ld: a payment needs payment_method and status", c->line);
            return;
        }
        int bad = !strcmp(json_string_value(st), "failed");
        fit_attempt_add(
            s, fit_names_intern(&s->names[FIT_METHOD], json_string_value(m), json_string_length(m)),
            bad);
        if (!bad)
            o->paid = 1;
        else if (o->paid < 0)
            o->paid = 0;
        s->has_status = 1;
    } else if (!strcmp(type, "cancellation")) {
        json_t *r = json_object_get(obj, "reason");
        if (json_is_string(r) && strcmp(json_string_value(r), "payment_failed"))
            o->cancelled = 1;
    }
}

static void read_jsonl(rctx *c, FILE *fp, char **linep, size_t *cap)
{
    ss_fit_sample *s = c->s;
    fit_names orders = {0}, keys = {0};
    int seen[NCOLS] = {0};
    int *keycol = NULL;
    uint32_t nkeycol = 0;
    ssize_t got;
    while (!c->failed && (got = getline(linep, cap, fp)) >= 0) {
        size_t len = (size_t)got;
        c->line++;
        while (len && ((*linep)[len - 1] == '\n' || (*linep)[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        json_error_t je;
        json_t *obj = json_loadb(*linep, len, 0, &je);
        if (!obj || !json_is_object(obj)) {
            fail(c, "line %ld, column %d: not a JSON object%s%s", c->line, obj ? 1 : je.column,
                 obj ? "" : ": ", obj ? "" : je.text);
            json_decref(obj);
            break;
        }
        json_t *type = json_object_get(obj, "type");
        const char *ty = json_is_string(type) ? json_string_value(type) : NULL;
        if (ty && strcmp(ty, "order")) {
            s->events = 1;
            json_event(c, obj, ty, &orders);
            json_decref(obj);
            continue;
        }
        fit_order *o = fit_sample_add(s);
        if (ty) {
            s->events = 1;
            json_t *id = json_object_get(obj, "order_id");
            if (json_is_string(id)) {
                uint32_t before = orders.n;
                fit_names_intern(&orders, json_string_value(id), json_string_length(id));
                if (orders.n == before)
                    fail(c, "line %ld, field \"order_id\": order '%s' appears twice", c->line,
                         json_string_value(id));
                o->cancelled = 0;
            }
        }
        const char *key;
        json_t *v;
        int ts_seen = 0;
        json_object_foreach(obj, key, v)
        {
            /* Lines repeat their keys: each key's field is looked up once. */
            uint32_t ki = fit_names_intern(&keys, key, strlen(key));
            if (ki >= nkeycol) {
                keycol = ss_realloc(keycol, (ki + 1) * sizeof *keycol);
                keycol[ki] = -1;
                for (int k = 0; k < NCOLS && keycol[ki] < 0; k++)
                    if (names_field(c, k, key))
                        keycol[ki] = k;
                nkeycol = ki + 1;
            }
            int k = keycol[ki];
            if (k < 0 || c->failed)
                continue;
            if (k == C_TOTAL && !c->map[C_AMOUNT] && json_object_get(obj, "amount"))
                continue; /* events carry both: amount is what the model draws */
            seen[k] = 1;
            ts_seen |= k == C_TS;
            json_value(c, o, k, v, key);
        }
        if (!ts_seen && !c->failed)
            fail(c,
                 "line %ld: no field for the order time (ts); name it with --columns "
                 "ts=FIELD, or call it ts, timestamp, order_date or date",
                 c->line);
        json_decref(obj);
    }
    fit_names_free(&orders);
    fit_names_free(&keys);
    free(keycol);
    for (int k = 0; k < NCOLS; k++)
        if (seen[k] && col_text[k])
            s->has[col_text[k] - 1] = 1;
    s->has_amount = seen[C_AMOUNT] || seen[C_TOTAL];
    s->amount_is_total = !seen[C_AMOUNT] && seen[C_TOTAL];
    s->has_qty = seen[C_QTY];
    s->has_unit_price = seen[C_UNIT];
    s->has_status |= seen[C_STATUS];
    s->has_cancel = seen[C_CANCEL] || s->events;
}

int ss_fit_sample_read_stream(FILE *fp, const char *name, const char *columns, ss_fit_sample **out,
                              char *err, size_t errlen)
{
    *out = NULL;
    ss_fit_sample *s = ss_calloc(1, sizeof *s);
    s->name = ss_strdup(name);
    rctx c = {.s = s, .err = err, .errlen = errlen};
    int rc = parse_columns(&c, columns);
    char *line = NULL;
    size_t cap = 0;
    if (rc)
        goto out;
    /* JSON Lines if the first non-blank byte opens an object. */
    int ch;
    while ((ch = fgetc(fp)) != EOF && isspace(ch))
        ;
    if (ch == EOF) {
        fail(&c, "the file is empty; give a CSV file with a header line, or JSON Lines");
        goto out;
    }
    rewind(fp);
    c.jsonl = ch == '{';
    if (c.jsonl)
        read_jsonl(&c, fp, &line, &cap);
    else
        read_csv(&c, fp, &line, &cap);
    if (!c.failed && ferror(fp))
        fail(&c, "cannot read: %s", strerror(errno));
    if (!c.failed && s->n == 0)
        fail(&c, "no orders after the header; the sample needs at least one order");
    if (!c.failed) {
        s->first_ts = INT64_MAX;
        s->last_ts = INT64_MIN;
        for (size_t i = 0; i < s->n; i++) {
            if (s->o[i].ts < s->first_ts)
                s->first_ts = s->o[i].ts;
            if (s->o[i].ts > s->last_ts)
                s->last_ts = s->o[i].ts;
        }
    }
out:
    free(line);
    for (int k = 0; k < NCOLS; k++)
        free(c.map[k]);
    if (rc || c.failed) {
        ss_fit_sample_free(s);
        return SS_EINVAL;
    }
    *out = s;
    return SS_OK;
}

int ss_fit_sample_read(const char *path, const char *columns, ss_fit_sample **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "sample '%s': cannot open: %s; check the path", path,
                 strerror(errno));
        return SS_EINVAL;
    }
    int rc = ss_fit_sample_read_stream(fp, path, columns, out, err, errlen);
    fclose(fp);
    return rc;
}

#include "cold/index.h"

#include <jansson.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/timeutil.h"

#define KEYS_CACHED 4

/* ---- writing ---- */

typedef struct keys_build {
    char **ev;
    size_t nev, cap_ev;
    char **ord; /* "order_id\tcity\tcountry\tcategory\tmethod" */
    size_t nord, cap_ord;
} keys_build;

static char *dup_str(ss_str s)
{
    return ss_strndup(s.p, s.n);
}

static int add_event(void *ctx, ss_str id)
{
    keys_build *k = ctx;
    if (k->nev == k->cap_ev) {
        k->cap_ev = k->cap_ev ? 2 * k->cap_ev : 4096;
        k->ev = ss_realloc(k->ev, k->cap_ev * sizeof *k->ev);
    }
    k->ev[k->nev++] = dup_str(id);
    return SS_OK;
}

static int add_order(void *ctx, ss_str id, const ss_attrib *at)
{
    keys_build *k = ctx;
    if (k->nord == k->cap_ord) {
        k->cap_ord = k->cap_ord ? 2 * k->cap_ord : 4096;
        k->ord = ss_realloc(k->ord, k->cap_ord * sizeof *k->ord);
    }
    size_t n = id.n + at->city.n + at->country.n + at->category.n + at->payment_method.n + 5;
    char *s = ss_malloc(n);
    snprintf(s, n, "%.*s\t%.*s\t%.*s\t%.*s\t%.*s", (int)id.n, id.p, (int)at->city.n, at->city.p,
             (int)at->country.n, at->country.p, (int)at->category.n, at->category.p,
             (int)at->payment_method.n, at->payment_method.p);
    k->ord[k->nord++] = s;
    return SS_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ss_cold_keys_write(ss_hot *hot, ss_cold *cold, const char *id, int64_t cutoff, char *path,
                       size_t pathlen, int64_t *bytes, unsigned long *crc)
{
    keys_build k = {0};
    int rc = hot->ops->archive_keys(hot->st, cutoff, add_event, add_order, &k);
    ss_buf b;
    ss_buf_init(&b, 1 << 20);
    if (rc == SS_OK) {
        /* qsort wants a base even for no elements, and k.ev is NULL then. */
        if (k.nev)
            qsort(k.ev, k.nev, sizeof *k.ev, cmp_str);
        if (k.nord)
            qsort(k.ord, k.nord, sizeof *k.ord, cmp_str);
        for (size_t i = 0; i < k.nev; i++) {
            ss_buf_lit(&b, "E\t");
            ss_buf_puts(&b, k.ev[i]);
            ss_buf_putc(&b, '\n');
        }
        for (size_t i = 0; i < k.nord; i++) {
            ss_buf_lit(&b, "O\t");
            ss_buf_puts(&b, k.ord[i]);
            ss_buf_putc(&b, '\n');
        }
        snprintf(path, pathlen, "_archives/%s.keys", id);
        rc = ss_cold_put(cold, path, b.data, b.len);
        *bytes = (int64_t)b.len;
        *crc = libdeflate_crc32(0, b.data, b.len);
    }
    for (size_t i = 0; i < k.nev; i++)
        free(k.ev[i]);
    for (size_t i = 0; i < k.nord; i++)
        free(k.ord[i]);
    free(k.ev);
    free(k.ord);
    ss_buf_free(&b);
    return rc;
}

/* ---- reading ---- */

typedef struct archive_ref {
    char id[48];
    char keys[96];
    int64_t min_ts, max_ts;       /* over all tables */
    int64_t order_min, order_max; /* of its orders; order_max < 0 when none */
} archive_ref;

typedef struct keys_file {
    char id[48];
    ss_buf data;
    const char **ev; /* "E\t<id>" lines, sorted */
    size_t nev;
    const char **ord; /* "O\t<order>\t..." lines, sorted */
    size_t nord;
    uint64_t used; /* for least-recently-used eviction */
} keys_file;

struct ss_cold_index {
    ss_cold *cold;
    archive_ref *refs;
    size_t nrefs, cap;
    uint64_t version;
    int have_version;
    keys_file cache[KEYS_CACHED];
    uint64_t tick;
};

ss_cold_index *ss_cold_index_new(ss_cold *cold)
{
    ss_cold_index *ix = ss_calloc(1, sizeof *ix);
    ix->cold = cold;
    for (int i = 0; i < KEYS_CACHED; i++)
        ss_buf_init(&ix->cache[i].data, 0);
    return ix;
}

static void keys_clear(keys_file *k)
{
    free(k->ev);
    free(k->ord);
    k->ev = k->ord = NULL;
    k->nev = k->nord = 0;
    k->id[0] = '\0';
    k->data.len = 0;
}

void ss_cold_index_free(ss_cold_index *ix)
{
    if (!ix)
        return;
    for (int i = 0; i < KEYS_CACHED; i++) {
        keys_clear(&ix->cache[i]);
        ss_buf_free(&ix->cache[i].data);
    }
    free(ix->refs);
    free(ix);
}

static int64_t ts_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    int64_t ms;
    return s && ss_time_parse_iso(s, strlen(s), &ms) == 0 ? ms : -1;
}

static int on_archive(void *ctx, const char *id, const char *state, int64_t cutoff,
                      const char *created_at, const char *manifest)
{
    ss_cold_index *ix = ctx;
    (void)cutoff;
    (void)created_at;
    if (strcmp(state, "committed") != 0)
        return SS_OK;
    for (size_t i = 0; i < ix->nrefs; i++)
        if (!strcmp(ix->refs[i].id, id))
            return SS_OK;
    json_t *m = manifest ? json_loads(manifest, 0, NULL) : NULL;
    if (!m)
        return SS_OK;
    if (ix->nrefs == ix->cap) {
        ix->cap = ix->cap ? 2 * ix->cap : 16;
        ix->refs = ss_realloc(ix->refs, ix->cap * sizeof *ix->refs);
    }
    archive_ref *r = &ix->refs[ix->nrefs++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "%s", id);
    const char *keys = json_string_value(json_object_get(json_object_get(m, "keys"), "path"));
    snprintf(r->keys, sizeof r->keys, "%s", keys ? keys : "");
    r->min_ts = INT64_MAX;
    r->max_ts = r->order_max = -1;
    r->order_min = INT64_MAX;
    const char *key;
    json_t *t;
    json_object_foreach(json_object_get(m, "tables"), key, t)
    {
        int64_t a = ts_of(t, "min_ts"), b = ts_of(t, "max_ts");
        if (a < 0 || b < 0)
            continue;
        if (a < r->min_ts)
            r->min_ts = a;
        if (b > r->max_ts)
            r->max_ts = b;
        if (!strcmp(key, "orders")) {
            r->order_min = a;
            r->order_max = b;
        }
    }
    json_decref(m);
    return SS_OK;
}

/* Re-reads the list of committed archives when another connection (the
 * archiver) has committed since the last look. */
static int refresh(ss_cold_index *ix, ss_hot *hot)
{
    /* A store that keeps no archive records (null:) has no archives. */
    if (!hot->ops->version || !hot->ops->archive_list)
        return SS_OK;
    uint64_t v;
    int rc = hot->ops->version(hot->st, &v);
    if (rc)
        return rc;
    if (ix->have_version && v == ix->version)
        return SS_OK;
    rc = hot->ops->archive_list(hot->st, on_archive, ix);
    if (rc == SS_OK) {
        ix->version = v;
        ix->have_version = 1;
    }
    return rc;
}

static keys_file *load_keys(ss_cold_index *ix, const archive_ref *r)
{
    keys_file *victim = &ix->cache[0];
    for (int i = 0; i < KEYS_CACHED; i++) {
        if (!strcmp(ix->cache[i].id, r->id)) {
            ix->cache[i].used = ++ix->tick;
            return &ix->cache[i];
        }
        if (ix->cache[i].used < victim->used)
            victim = &ix->cache[i];
    }
    keys_clear(victim);
    if (!r->keys[0] || ix->cold->ops->read(ix->cold->st, r->keys, &victim->data) != SS_OK) {
        SS_WARN("cold:index",
                "cannot read the keys file of archive %s; waiting for the cold store (if it "
                "persists, run 'shopstream archive --verify')",
                r->id);
        return NULL;
    }
    /* Lines become NUL-terminated strings in place. */
    ss_buf_cstr(&victim->data);
    size_t lines = 0;
    for (size_t i = 0; i < victim->data.len; i++)
        lines += victim->data.data[i] == '\n';
    victim->ev = ss_malloc((lines + 1) * sizeof *victim->ev);
    victim->ord = ss_malloc((lines + 1) * sizeof *victim->ord);
    char *p = victim->data.data, *end = p + victim->data.len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        *nl = '\0';
        if (p[0] == 'E' && p[1] == '\t')
            victim->ev[victim->nev++] = p + 2;
        else if (p[0] == 'O' && p[1] == '\t')
            victim->ord[victim->nord++] = p + 2;
        p = nl + 1;
    }
    snprintf(victim->id, sizeof victim->id, "%s", r->id);
    victim->used = ++ix->tick;
    return victim;
}

/* Binary search of sorted lines for one that equals key, or (prefix) that
 * starts with key followed by a tab. */
static const char *search(const char **v, size_t n, ss_str key, int prefix)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(v[mid], key.p, key.n);
        if (c == 0) {
            char next = v[mid][key.n];
            if (next == (prefix ? '\t' : '\0'))
                return v[mid];
            c = (unsigned char)next < (prefix ? '\t' : 1) ? -1 : 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

int ss_cold_index_has_event(ss_cold_index *ix, ss_hot *hot, ss_str event_id, int64_t ts, int *found)
{
    *found = 0;
    int rc = refresh(ix, hot);
    for (size_t i = 0; rc == SS_OK && i < ix->nrefs && !*found; i++) {
        const archive_ref *r = &ix->refs[i];
        if (ts < r->min_ts || ts > r->max_ts)
            continue;
        keys_file *k = load_keys(ix, r);
        if (!k)
            return SS_AGAIN;
        *found = search(k->ev, k->nev, event_id, 0) != NULL;
    }
    return rc;
}

int ss_cold_index_lookup_order(ss_cold_index *ix, ss_hot *hot, ss_str order_id, int64_t ts,
                               ss_attrib *out, char *buf, size_t cap, int *found)
{
    *found = 0;
    int rc = refresh(ix, hot);
    /* Newest archives first: an order is most likely recently archived. */
    for (size_t i = ix->nrefs; rc == SS_OK && i-- > 0;) {
        const archive_ref *r = &ix->refs[i];
        if (r->order_max < 0 || r->order_min > ts ||
            r->order_max < ts - SS_COLD_ATTRIBUTION_HORIZON_MS)
            continue;
        keys_file *k = load_keys(ix, r);
        if (!k)
            return SS_AGAIN;
        const char *line = search(k->ord, k->nord, order_id, 1);
        if (!line)
            continue;
        /* order \t city \t country \t category \t method */
        size_t n = strlen(line) - order_id.n - 1;
        if (n + 1 > cap)
            return SS_OK;
        memcpy(buf, line + order_id.n + 1, n + 1);
        ss_str *f[4] = {&out->city, &out->country, &out->category, &out->payment_method};
        char *p = buf;
        for (int j = 0; j < 4; j++) {
            char *tab = j < 3 ? strchr(p, '\t') : p + strlen(p);
            if (!tab)
                return SS_OK;
            *f[j] = (ss_str){p, (uint32_t)(tab - p)};
            p = tab + 1;
        }
        *found = 1;
        return SS_OK;
    }
    return rc;
}

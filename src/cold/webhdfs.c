/* Cold store in HDFS over WebHDFS (libcurl): webhdfs://HOST:PORT/PATH, or
 * swebhdfs:// for https. HOST:PORT is the NameNode's HTTP address; the user
 * is ?user=NAME, SHOPSTREAM_HDFS_USER or the login name; ?auth=negotiate uses
 * SPNEGO (Kerberos) instead of a user name.
 *
 * A file is written under a temporary name: CREATE (overwrite=false) is two
 * steps, the NameNode's 307 not followed, then the first chunk PUT to its
 * Location (201); further chunks go by APPEND, so that no more than a chunk
 * is held in memory. RENAME then makes it visible at once. RENAME answers
 * {"boolean":false} when the target exists: that is success only when the
 * existing file has the very bytes written (a retried commit), and an error
 * otherwise. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cold/cold.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"

#define COMP  "cold:webhdfs"
#define CHUNK (4u << 20)

typedef struct webhdfs {
    char *base; /* http[s]://HOST:PORT/webhdfs/v1 */
    char *root; /* the store's absolute path in HDFS, without a trailing '/' */
    char *user; /* NULL with SPNEGO */
    char *desc;
    int negotiate;
    CURL *curl;
} webhdfs;

typedef struct webhdfs_writer {
    webhdfs *fs;
    char *final, *tmp; /* relative to the root */
    ss_buf buf;
    int created;
    uLong crc;
    int64_t bytes;
} webhdfs_writer;

typedef struct reply {
    long status;
    ss_buf body;
    char location[4096];
} reply;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- URLs ---- */

static void put_escaped(ss_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("/-._~=:", c))
            ss_buf_putc(b, (char)c);
        else {
            ss_buf_putc(b, '%');
            ss_buf_putc(b, hex[c >> 4]);
            ss_buf_putc(b, hex[c & 15]);
        }
    }
}

/* The absolute HDFS path of rel ("" for the root). */
static void hdfs_path(ss_buf *b, const webhdfs *fs, const char *rel)
{
    ss_buf_puts(b, fs->root);
    if (*rel) {
        ss_buf_putc(b, '/');
        ss_buf_puts(b, rel);
    } else if (!*fs->root) {
        ss_buf_putc(b, '/');
    }
}

/* The NameNode's URL of operation op on rel, with extra query text. */
static char *op_url(const webhdfs *fs, const char *rel, const char *op, const char *extra)
{
    ss_buf b, p;
    ss_buf_init(&b, 256);
    ss_buf_init(&p, 256);
    hdfs_path(&p, fs, rel);
    ss_buf_puts(&b, fs->base);
    put_escaped(&b, ss_buf_cstr(&p));
    ss_buf_printf(&b, "?op=%s", op);
    if (fs->user) {
        ss_buf_lit(&b, "&user.name=");
        put_escaped(&b, fs->user);
    }
    if (extra)
        ss_buf_puts(&b, extra);
    ss_buf_free(&p);
    return (char *)ss_buf_cstr(&b);
}

/* ---- requests ---- */

typedef struct upload {
    const char *p;
    size_t n;
} upload;

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    ss_buf_put(ctx, p, size * n);
    return size * n;
}

static size_t on_upload(char *p, size_t size, size_t n, void *ctx)
{
    upload *u = ctx;
    size_t k = size * n < u->n ? size * n : u->n;
    memcpy(p, u->p, k);
    u->p += k;
    u->n -= k;
    return k;
}

/* Sends one request; data (n bytes) is the body of a PUT or POST. The reply
 * keeps the status, the body and a redirect's Location (never followed,
 * except by follow). Returns SS_OK when an HTTP answer came, SS_AGAIN when
 * the server could not be reached (err says why). */
static int send_req(webhdfs *fs, const char *method, const char *url, const void *data, size_t n,
                    int follow, reply *r, char *err, size_t errlen)
{
    CURL *c = fs->curl;
    curl_easy_reset(c);
    r->status = 0;
    r->body.len = 0;
    r->location[0] = '\0';
    upload u = {data, n};
    struct curl_slist *hdr = curl_slist_append(NULL, "Expect:");
    if (data)
        hdr = curl_slist_append(hdr, "Content-Type: application/octet-stream");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* A transfer that stalls for a minute has failed. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    if (fs->negotiate) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_NEGOTIATE);
        curl_easy_setopt(c, CURLOPT_USERPWD, ":");
    }
    if (!strcmp(method, "PUT") || !strcmp(method, "POST")) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(c, CURLOPT_READDATA, &u);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)n);
        if (!strcmp(method, "POST"))
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "POST");
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(hdr);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
        return SS_AGAIN;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    char *loc = NULL;
    if (curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
        snprintf(r->location, sizeof r->location, "%s", loc);
    return SS_OK;
}

/* The RemoteException of a reply as "Exception: first line of the message". */
static void remote_error(const reply *r, char *out, size_t n)
{
    json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
    json_t *ex = json_object_get(json_object_get(j, "RemoteException"), "exception");
    json_t *msg = json_object_get(json_object_get(j, "RemoteException"), "message");
    if (json_is_string(ex)) {
        const char *m = json_is_string(msg) ? json_string_value(msg) : "";
        size_t len = strcspn(m, "\n");
        snprintf(out, n, "%s: %.*s", json_string_value(ex), (int)len, m);
    } else {
        snprintf(out, n, "HTTP %ld", r->status);
    }
    json_decref(j);
}

/* Whether a reply's RemoteException is the named one. */
static int remote_is(const reply *r, const char *exception)
{
    json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
    json_t *ex = json_object_get(json_object_get(j, "RemoteException"), "exception");
    int is = json_is_string(ex) && !strcmp(json_string_value(ex), exception);
    json_decref(j);
    return is;
}

/* Logs a failed step and gives its status: the server away, in safe mode or
 * failing (5xx) is SS_AGAIN, a refusal (4xx) SS_EIO. */
static int fail(webhdfs *fs, const char *what, const char *rel, const reply *r, const char *neterr,
                int datanode)
{
    if (neterr) {
        if (datanode)
            SS_ERROR(COMP,
                     "%s '%s' on %s: the DataNode of the NameNode's redirect (%.200s) "
                     "cannot be reached (%s): the DataNode is down or unreachable",
                     what, rel, fs->desc, r->location, neterr);
        else
            SS_ERROR(COMP, "%s '%s' on %s: cannot reach the NameNode (%s)", what, rel, fs->desc,
                     neterr);
        return SS_AGAIN;
    }
    char msg[512];
    remote_error(r, msg, sizeof msg);
    SS_ERROR(COMP, "%s '%s' on %s: %s", what, rel, fs->desc, msg);
    if (r->status >= 500 || remote_is(r, "SafeModeException") ||
        remote_is(r, "RetriableException") || remote_is(r, "StandbyException"))
        return SS_AGAIN;
    return SS_EIO;
}

/* One NameNode operation on rel (a redirect is not followed). */
static int nn_call(webhdfs *fs, const char *method, const char *rel, const char *op,
                   const char *extra, reply *r, char *neterr, size_t nlen)
{
    char *url = op_url(fs, rel, op, extra);
    int rc = send_req(fs, method, url, NULL, 0, 0, r, neterr, nlen);
    free(url);
    return rc;
}

/* The boolean of {"boolean":...}; -1 when the body is not one. */
static int json_bool(const reply *r)
{
    json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
    json_t *b = json_object_get(j, "boolean");
    int v = json_is_boolean(b) ? json_is_true(b) : -1;
    json_decref(j);
    return v;
}

/* ---- writing ---- */

/* Sends a chunk: CREATE the first time, APPEND after; each in two steps. */
static int send_chunk(webhdfs_writer *w, const void *p, size_t n)
{
    webhdfs *fs = w->fs;
    reply r = {0};
    ss_buf_init(&r.body, 512);
    char neterr[256];
    const char *op = w->created ? "APPEND" : "CREATE";
    const char *method = w->created ? "POST" : "PUT";
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = nn_call(fs, method, w->tmp, op, w->created ? NULL : "&overwrite=false", &r, neterr,
                     sizeof neterr);
        if (rc) {
            rc = fail(fs, op, w->tmp, &r, neterr, 0);
            break;
        }
        if (r.status != 307 || !r.location[0]) {
            /* A leftover of this process's pid from an earlier run. */
            if (!w->created && attempt == 0 && remote_is(&r, "FileAlreadyExistsException")) {
                reply d = {0};
                ss_buf_init(&d.body, 128);
                nn_call(fs, "DELETE", w->tmp, "DELETE", NULL, &d, neterr, sizeof neterr);
                ss_buf_free(&d.body);
                continue;
            }
            rc = fail(fs, op, w->tmp, &r, NULL, 0);
            break;
        }
        char *loc = ss_strdup(r.location);
        rc = send_req(fs, method, loc, p, n, 0, &r, neterr, sizeof neterr);
        snprintf(r.location, sizeof r.location, "%s", loc);
        free(loc);
        if (rc)
            rc = fail(fs, op, w->tmp, &r, neterr, 1);
        else if (r.status != (w->created ? 200 : 201))
            rc = fail(fs, op, w->tmp, &r, NULL, 1);
        break;
    }
    ss_buf_free(&r.body);
    if (rc == SS_OK)
        w->created = 1;
    return rc;
}

static int webhdfs_put_open(void *st, const char *path, void **out)
{
    webhdfs_writer *w = ss_calloc(1, sizeof *w);
    w->fs = st;
    w->final = ss_strdup(path);
    w->tmp = ss_cold_tmp_name(path);
    w->crc = crc32(0L, Z_NULL, 0);
    ss_buf_init(&w->buf, CHUNK);
    *out = w;
    return SS_OK;
}

static int webhdfs_put_write(void *vw, const void *p, size_t n)
{
    webhdfs_writer *w = vw;
    w->crc = crc32_z(w->crc, p, n);
    w->bytes += (int64_t)n;
    const char *c = p;
    while (n > 0) {
        size_t k = CHUNK - w->buf.len < n ? CHUNK - w->buf.len : n;
        ss_buf_put(&w->buf, c, k);
        c += k;
        n -= k;
        if (w->buf.len == CHUNK) {
            int rc = send_chunk(w, w->buf.data, w->buf.len);
            w->buf.len = 0;
            if (rc)
                return rc;
        }
    }
    return SS_OK;
}

static void writer_free(webhdfs_writer *w)
{
    ss_buf_free(&w->buf);
    free(w->final);
    free(w->tmp);
    free(w);
}

static int remove_rel(webhdfs *fs, const char *rel)
{
    reply r = {0};
    ss_buf_init(&r.body, 128);
    char neterr[256];
    int rc = nn_call(fs, "DELETE", rel, "DELETE", "&recursive=false", &r, neterr, sizeof neterr);
    if (rc)
        rc = fail(fs, "DELETE", rel, &r, neterr, 0);
    else if (r.status != 200 && r.status != 404)
        rc = fail(fs, "DELETE", rel, &r, NULL, 0);
    ss_buf_free(&r.body);
    return rc;
}

static void webhdfs_put_abort(void *vw)
{
    webhdfs_writer *w = vw;
    if (!w)
        return;
    if (w->created)
        remove_rel(w->fs, w->tmp);
    writer_free(w);
}

/* A GET of op on the NameNode that must answer want (a 307 with its
 * Location, or 200): SS_EOF for a missing file, else SS_OK or the failure,
 * reported. */
static int nn_get(webhdfs *fs, const char *op, const char *path, int want, reply *r)
{
    char neterr[256];
    if (nn_call(fs, "GET", path, op, NULL, r, neterr, sizeof neterr) != SS_OK)
        return fail(fs, op, path, r, neterr, 0);
    if (r->status == 404)
        return SS_EOF;
    if (r->status != want || (want == 307 && !r->location[0]))
        return fail(fs, op, path, r, NULL, 0);
    return SS_OK;
}

static int webhdfs_read(void *st, const char *path, ss_buf *out);

/* RENAME found the target taken: the commit is done only if the target holds
 * exactly what this writer wrote. */
static int same_as_written(webhdfs_writer *w)
{
    ss_buf b;
    ss_buf_init(&b, 1 << 16);
    int rc = webhdfs_read(w->fs, w->final, &b);
    int same = rc == SS_OK && (int64_t)b.len == w->bytes &&
               crc32_z(crc32(0L, Z_NULL, 0), (const Bytef *)b.data, b.len) == w->crc;
    ss_buf_free(&b);
    if (rc == SS_OK && !same) {
        SS_ERROR(COMP, "cannot rename '%s' into place on %s: '%s' exists with other content",
                 w->tmp, w->fs->desc, w->final);
        return SS_EIO;
    }
    return rc == SS_OK ? SS_OK : rc == SS_EOF ? SS_EIO : rc;
}

static int webhdfs_put_commit(void *vw)
{
    webhdfs_writer *w = vw;
    webhdfs *fs = w->fs;
    int rc = SS_OK, renamed = 0;
    if (w->buf.len > 0 || !w->created)
        rc = send_chunk(w, w->buf.data, w->buf.len);
    w->buf.len = 0;
    if (rc == SS_OK) {
        ss_buf q, p;
        ss_buf_init(&q, 256);
        ss_buf_init(&p, 256);
        hdfs_path(&p, fs, w->final);
        ss_buf_lit(&q, "&destination=");
        put_escaped(&q, ss_buf_cstr(&p));
        reply r = {0};
        ss_buf_init(&r.body, 128);
        char neterr[256];
        rc = nn_call(fs, "PUT", w->tmp, "RENAME", ss_buf_cstr(&q), &r, neterr, sizeof neterr);
        if (rc)
            rc = fail(fs, "RENAME", w->tmp, &r, neterr, 0);
        else if (r.status != 200)
            rc = fail(fs, "RENAME", w->tmp, &r, NULL, 0);
        else if (json_bool(&r) == 1)
            renamed = 1;
        else /* false: the target exists (or the source vanished) */
            rc = same_as_written(w);
        ss_buf_free(&r.body);
        ss_buf_free(&q);
        ss_buf_free(&p);
    }
    /* Left behind by a failure, or by a commit that found its bytes in place. */
    if (w->created && !renamed)
        remove_rel(fs, w->tmp);
    writer_free(w);
    return rc;
}

/* ---- listing, reading, removing ---- */

typedef struct lister {
    webhdfs *fs;
    ss_cold_list_cb cb;
    void *ctx;
    int sweep; /* remove stale temporary files instead of listing */
} lister;

static int list_dir(lister *l, const char *rel)
{
    reply r = {0};
    ss_buf_init(&r.body, 4096);
    char neterr[256];
    int rc = nn_call(l->fs, "GET", rel, "LISTSTATUS", NULL, &r, neterr, sizeof neterr);
    if (rc) {
        rc = fail(l->fs, "LISTSTATUS", rel, &r, neterr, 0);
        ss_buf_free(&r.body);
        return rc;
    }
    if (r.status == 404) {
        ss_buf_free(&r.body);
        return SS_OK;
    }
    if (r.status != 200) {
        rc = fail(l->fs, "LISTSTATUS", rel, &r, NULL, 0);
        ss_buf_free(&r.body);
        return rc;
    }
    json_t *j = json_loadb(r.body.data, r.body.len, 0, NULL);
    ss_buf_free(&r.body);
    json_t *arr = json_object_get(json_object_get(j, "FileStatuses"), "FileStatus");
    if (!json_is_array(arr)) {
        SS_ERROR(COMP, "LISTSTATUS '%s' on %s: the answer is not a FileStatuses document", rel,
                 l->fs->desc);
        json_decref(j);
        return SS_EIO;
    }
    size_t i;
    json_t *f;
    json_array_foreach(arr, i, f)
    {
        const char *name = json_string_value(json_object_get(f, "pathSuffix"));
        const char *type = json_string_value(json_object_get(f, "type"));
        if (!name || !type || name[0] == '.')
            continue;
        ss_buf p;
        ss_buf_init(&p, 256);
        if (!*name) /* rel names a file */
            ss_buf_puts(&p, rel);
        else
            ss_buf_printf(&p, "%s%s%s", rel, *rel ? "/" : "", name);
        const char *path = ss_buf_cstr(&p);
        if (!strcmp(type, "DIRECTORY") && *name)
            rc = list_dir(l, path);
        else if (!strcmp(type, "FILE") && ss_cold_is_tmp(name)) {
            if (l->sweep && ss_cold_tmp_stale(name))
                remove_rel(l->fs, path);
        } else if (!strcmp(type, "FILE") && !l->sweep)
            rc = l->cb(l->ctx, path, (int64_t)json_integer_value(json_object_get(f, "length")));
        ss_buf_free(&p);
        if (rc)
            break;
    }
    json_decref(j);
    return rc;
}

static int webhdfs_list(void *st, const char *prefix, ss_cold_list_cb cb, void *ctx)
{
    lister l = {.fs = st, .cb = cb, .ctx = ctx};
    return list_dir(&l, prefix);
}

static int webhdfs_read(void *st, const char *path, ss_buf *out)
{
    webhdfs *fs = st;
    reply r = {0};
    ss_buf_init(&r.body, 512);
    char neterr[256];
    int rc = nn_get(fs, "OPEN", path, 307, &r);
    if (rc) {
        ss_buf_free(&r.body);
        return rc;
    }
    char *loc = ss_strdup(r.location);
    ss_buf_free(&r.body);
    out->len = 0;
    reply d = {.body = *out};
    rc = send_req(fs, "GET", loc, NULL, 0, 0, &d, neterr, sizeof neterr);
    *out = d.body;
    snprintf(d.location, sizeof d.location, "%s", loc);
    free(loc);
    if (rc)
        return fail(fs, "OPEN", path, &d, neterr, 1);
    if (d.status == 404)
        return SS_EOF;
    if (d.status != 200) {
        /* The error document is not the file's content. */
        rc = fail(fs, "OPEN", path, &d, NULL, 1);
        out->len = 0;
        return rc;
    }
    return SS_OK;
}

typedef struct webhdfs_reader {
    webhdfs *fs;
    char *path;
    reply r;
} webhdfs_reader;

static int webhdfs_get_open(void *st, const char *path, void **out, int64_t *size)
{
    webhdfs *fs = st;
    reply r = {0};
    ss_buf_init(&r.body, 512);
    int rc = nn_get(fs, "GETFILESTATUS", path, 200, &r);
    json_t *j = rc ? NULL : json_loadb(r.body.data, r.body.len, 0, NULL);
    json_t *len = json_object_get(json_object_get(j, "FileStatus"), "length");
    if (rc == SS_OK && !json_is_integer(len)) {
        SS_ERROR(COMP, "GETFILESTATUS '%s' on %s: the answer has no length", path, fs->desc);
        rc = SS_EIO;
    }
    if (rc == SS_OK) {
        webhdfs_reader *rd = ss_calloc(1, sizeof *rd);
        rd->fs = fs;
        rd->path = ss_strdup(path);
        ss_buf_init(&rd->r.body, 1 << 16);
        *size = (int64_t)json_integer_value(len);
        *out = rd;
    }
    json_decref(j);
    ss_buf_free(&r.body);
    return rc;
}

/* OPEN with offset and length: the NameNode's redirect is followed to the
 * DataNode. */
static int webhdfs_get_range(void *vr, int64_t off, void *buf, size_t cap, size_t *got)
{
    webhdfs_reader *rd = vr;
    char extra[64], neterr[256];
    *got = 0;
    snprintf(extra, sizeof extra, "&offset=%lld&length=%zu", (long long)off, cap);
    char *url = op_url(rd->fs, rd->path, "OPEN", extra);
    int rc = send_req(rd->fs, "GET", url, NULL, 0, 1, &rd->r, neterr, sizeof neterr);
    free(url);
    if (rc)
        return fail(rd->fs, "OPEN", rd->path, &rd->r, neterr, 0);
    if (rd->r.status != 200)
        return fail(rd->fs, "OPEN", rd->path, &rd->r, NULL, 1);
    *got = rd->r.body.len < cap ? rd->r.body.len : cap;
    memcpy(buf, rd->r.body.data, *got);
    return SS_OK;
}

static void webhdfs_get_close(void *vr)
{
    webhdfs_reader *rd = vr;
    if (!rd)
        return;
    ss_buf_free(&rd->r.body);
    free(rd->path);
    free(rd);
}

static int webhdfs_remove(void *st, const char *path)
{
    return remove_rel(st, path);
}

static const char *webhdfs_describe(void *st)
{
    return ((webhdfs *)st)->desc;
}

/* ---- opening ---- */

static void webhdfs_close(void *st)
{
    webhdfs *fs = st;
    if (!fs)
        return;
    if (fs->curl)
        curl_easy_cleanup(fs->curl);
    free(fs->base);
    free(fs->root);
    free(fs->user);
    free(fs->desc);
    free(fs);
}

static char *login_name(void)
{
    const char *env = getenv("SHOPSTREAM_HDFS_USER");
    if (env && *env)
        return ss_strdup(env);
    struct passwd *pw = getpwuid(geteuid());
    return ss_strdup(pw && pw->pw_name ? pw->pw_name : "shopstream");
}

/* Parses HOST:PORT/PATH[?user=NAME&auth=negotiate] into fs. */
static int parse(webhdfs *fs, const char *scheme, const char *target, char *err, size_t errlen)
{
    const char *http = !strcmp(scheme, "swebhdfs") ? "https" : "http";
    const char *slash = strchr(target, '/');
    const char *q = strchr(target, '?');
    if (q && slash && q < slash)
        slash = NULL;
    size_t hlen = slash ? (size_t)(slash - target) : q ? (size_t)(q - target) : strlen(target);
    const char *colon = memchr(target, ':', hlen);
    int port_ok = colon && colon > target && (size_t)(colon - target) + 1 < hlen;
    for (const char *c = colon ? colon + 1 : target; port_ok && c < target + hlen; c++)
        port_ok = *c >= '0' && *c <= '9';
    if (!port_ok || hlen > 255) {
        snprintf(err, errlen,
                 "cold store '%s://%s': give the NameNode's HTTP address as %s://HOST:PORT/PATH "
                 "(for example %s://127.0.0.1:9870/shopstream/cold)",
                 scheme, target, scheme, scheme);
        return SS_EINVAL;
    }
    size_t plen = slash ? (q ? (size_t)(q - slash) : strlen(slash)) : 0;
    char path[4096];
    snprintf(path, sizeof path, "%.*s", (int)plen, slash ? slash : "");
    while (plen > 0 && path[plen - 1] == '/')
        path[--plen] = '\0';
    if (strstr(path, "//") || strstr(path, "/../") || strstr(path, "/./") ||
        (plen >= 3 && !strcmp(path + plen - 3, "/..")) || strchr(path, '\\')) {
        snprintf(err, errlen, "cold store '%s://%s': the path '%s' must be a plain absolute path",
                 scheme, target, path);
        return SS_EINVAL;
    }
    fs->root = ss_strdup(path);
    char *user = NULL;
    if (q) {
        char *params = ss_strdup(q + 1), *save = NULL;
        for (char *kv = strtok_r(params, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
            if (!strncmp(kv, "user=", 5) && kv[5]) {
                free(user);
                user = ss_strdup(kv + 5);
            } else if (!strcmp(kv, "auth=negotiate")) {
                fs->negotiate = 1;
            } else if (strcmp(kv, "auth=simple") != 0) {
                snprintf(err, errlen,
                         "cold store '%s://%s': unknown parameter '%s'; use user=NAME, "
                         "auth=simple or auth=negotiate",
                         scheme, target, kv);
                free(params);
                free(user);
                return SS_EINVAL;
            }
        }
        free(params);
    }
    if (!fs->negotiate)
        fs->user = user ? user : login_name();
    else
        free(user);
    size_t n = hlen + 32;
    fs->base = ss_malloc(n);
    snprintf(fs->base, n, "%s://%.*s/webhdfs/v1", http, (int)hlen, target);
    n = hlen + plen + 32;
    fs->desc = ss_malloc(n);
    snprintf(fs->desc, n, "%s://%.*s%s/", scheme, (int)hlen, target, path);
    return SS_OK;
}

/* Creates the root (MKDIRS) and checks that it is a directory; a NameNode
 * that does not answer is not an error yet (every step retries later). */
static int check_root(webhdfs *fs, int *reached, char *err, size_t errlen)
{
    reply r = {0};
    ss_buf_init(&r.body, 512);
    char neterr[256];
    int rc = nn_call(fs, "PUT", "", "MKDIRS", NULL, &r, neterr, sizeof neterr);
    *reached = rc == SS_OK;
    if (rc) {
        SS_WARN(COMP, "cannot reach the NameNode of %s (%s); writes and reads will be retried",
                fs->desc, neterr);
        rc = SS_OK;
    } else if (r.status != 200 || json_bool(&r) != 1) {
        char msg[512];
        remote_error(&r, msg, sizeof msg);
        if (remote_is(&r, "FileAlreadyExistsException") ||
            remote_is(&r, "ParentNotDirectoryException"))
            snprintf(err, errlen,
                     "cold store %s: the path or one of its parents is a file, not a directory "
                     "(%s); give a directory",
                     fs->desc, msg);
        else if (remote_is(&r, "AccessControlException"))
            snprintf(err, errlen,
                     "cold store %s: permission denied for user '%s' (%s); give a path that user "
                     "may write, or another user with ?user=NAME",
                     fs->desc, fs->user ? fs->user : "(Kerberos)", msg);
        else
            snprintf(err, errlen, "cold store %s: cannot create its directory: %s", fs->desc, msg);
        rc = r.status >= 500 ? SS_EIO : SS_EINVAL;
    }
    ss_buf_free(&r.body);
    return rc;
}

static int open_scheme(const char *scheme, const char *target, void **st, char *err, size_t errlen)
{
    pthread_once(&curl_once, curl_init);
    webhdfs *fs = ss_calloc(1, sizeof *fs);
    int rc = parse(fs, scheme, target, err, errlen);
    if (rc == SS_OK && !(fs->curl = curl_easy_init())) {
        snprintf(err, errlen, "cannot start libcurl");
        rc = SS_ERR;
    }
    int reached = 0;
    rc = rc ? rc : check_root(fs, &reached, err, errlen);
    if (rc == SS_OK && reached) {
        /* Temporary files of writers that are gone. */
        lister l = {.fs = fs, .sweep = 1};
        list_dir(&l, "");
    }
    if (rc) {
        webhdfs_close(fs);
        return rc;
    }
    *st = fs;
    return SS_OK;
}

static int webhdfs_open(const char *target, void **st, char *err, size_t errlen)
{
    return open_scheme("webhdfs", target, st, err, errlen);
}

static int swebhdfs_open(const char *target, void **st, char *err, size_t errlen)
{
    return open_scheme("swebhdfs", target, st, err, errlen);
}

#define WEBHDFS_OPS                                                                                \
    .close = webhdfs_close, .put_open = webhdfs_put_open, .put_write = webhdfs_put_write,          \
    .put_commit = webhdfs_put_commit, .put_abort = webhdfs_put_abort, .list = webhdfs_list,        \
    .read = webhdfs_read, .get_open = webhdfs_get_open, .get_range = webhdfs_get_range,            \
    .get_close = webhdfs_get_close, .remove = webhdfs_remove, .describe = webhdfs_describe

const ss_cold_ops ss_cold_webhdfs_ops = {
    .name = "webhdfs",
    .scheme = "webhdfs://",
    .open = webhdfs_open,
    WEBHDFS_OPS,
};

const ss_cold_ops ss_cold_swebhdfs_ops = {
    .name = "swebhdfs",
    .scheme = "swebhdfs://",
    .open = swebhdfs_open,
    WEBHDFS_OPS,
};

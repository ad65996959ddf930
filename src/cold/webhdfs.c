/* Cold store in HDFS over WebHDFS (libcurl): webhdfs://HOST:PORT/PATH, or
 * swebhdfs:// for https. HOST:PORT is the NameNode's HTTP address; the user
 * is ?user=NAME, SHOPSTREAM_HDFS_USER or the login name; ?auth=negotiate uses
 * SPNEGO (Kerberos) instead of a user name; with swebhdfs, ?ca=PATH is the
 * PEM certificate of the CA that the servers' certificates are checked
 * against (else the system's trust store).
 *
 * A file is written under a temporary name: CREATE (overwrite=false) is two
 * steps, the NameNode's 307 not followed, then the body PUT to its Location
 * (201). A small file goes in one PUT; a larger one streams as a chunked body
 * from a thread of its own (webhdfs_stream.c), so that no more than a ring of
 * RING bytes is held and the upload overlaps the caller's formatting. RENAME
 * then makes it visible at once. RENAME answers {"boolean":false} when the
 * target exists: that is success only when the existing file has the very
 * bytes written (a retried commit), and an error otherwise.
 *
 * A file is read by one OPEN from start to end, ahead of the reader by up to
 * RING bytes; ranges out of order use OPEN with offset and length. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <jansson.h>
#include <libdeflate.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cold/cold.h"
#include "cold/webhdfs_int.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"

#define COMP SS_WEBHDFS_COMP
/* A file smaller than this goes in one PUT; a larger one streams. */
#define CHUNK (1u << 20)
/* What a streamed upload or read-ahead holds at most. */
#define RING (8u << 20)
/* A read-ahead hands over its bytes in pieces of at least this much. */
#define READ_MIN (1u << 20)

typedef struct webhdfs_writer {
    webhdfs *fs;
    char *final, *tmp;     /* relative to the root */
    ss_buf buf;            /* the file's start, until it outgrows CHUNK */
    ss_webhdfs_stream *up; /* the streamed upload of a file that did */
    char location[4096];   /* the DataNode's URL of the upload */
    int created;           /* the temporary file may exist in HDFS */
    int rc;                /* the failure that ended the upload */
    uint32_t crc;
    int64_t bytes;
} webhdfs_writer;

typedef ss_webhdfs_reply reply;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- writing ---- */

/* The first step of CREATE: the NameNode's redirect to a DataNode, into
 * w->location. A temporary file of this name is a leftover of an earlier
 * process with this pid: it is removed and the step taken again. */
static int create_step(webhdfs_writer *w)
{
    webhdfs *fs = w->fs;
    reply r = {0};
    ss_buf_init(&r.body, 512);
    char neterr[256];
    int rc;
    for (int attempt = 0;; attempt++) {
        rc = ss_webhdfs_nn_call(fs, "PUT", w->tmp, "CREATE", "&overwrite=false", &r, neterr,
                                sizeof neterr);
        if (rc) {
            rc = ss_webhdfs_fail(fs, "CREATE", w->tmp, &r, neterr, 0);
            break;
        }
        if (r.status == 307 && r.location[0]) {
            snprintf(w->location, sizeof w->location, "%s", r.location);
            SS_DEBUG(COMP, "CREATE '%s': DataNode %.*s", w->tmp, (int)strcspn(r.location, "?"),
                     r.location);
            break;
        }
        if (attempt == 0 && ss_webhdfs_remote_is(&r, "FileAlreadyExistsException")) {
            reply d = {0};
            ss_buf_init(&d.body, 128);
            ss_webhdfs_nn_call(fs, "DELETE", w->tmp, "DELETE", NULL, &d, neterr, sizeof neterr);
            ss_buf_free(&d.body);
            continue;
        }
        rc = ss_webhdfs_fail(fs, "CREATE", w->tmp, &r, NULL, 0);
        break;
    }
    ss_buf_free(&r.body);
    return rc;
}

/* The DataNode's answer to the upload: 201 Created. */
static int upload_answer(webhdfs_writer *w, int rc, reply *r, const char *neterr)
{
    snprintf(r->location, sizeof r->location, "%s", w->location);
    if (rc)
        return ss_webhdfs_fail(w->fs, "CREATE", w->tmp, r, neterr, 1);
    if (r->status != 201)
        return ss_webhdfs_fail(w->fs, "CREATE", w->tmp, r, NULL, 1);
    return SS_OK;
}

/* A small file in one request: CREATE's two steps with the whole body. */
static int send_whole(webhdfs_writer *w, const void *p, size_t n)
{
    int rc = create_step(w);
    if (rc)
        return rc;
    w->created = 1;
    reply r = {0};
    ss_buf_init(&r.body, 512);
    char neterr[256];
    rc = ss_webhdfs_send(w->fs, "PUT", w->location, p, n, 0, &r, neterr, sizeof neterr);
    rc = upload_answer(w, rc, &r, neterr);
    ss_buf_free(&r.body);
    return rc;
}

/* Ends a streamed upload and gives its outcome. */
static int upload_end(webhdfs_writer *w)
{
    reply r = {0};
    ss_buf_init(&r.body, 512);
    char neterr[256];
    int rc = ss_webhdfs_stream_end(w->up, &r, neterr, sizeof neterr);
    rc = upload_answer(w, rc, &r, neterr);
    ss_buf_free(&r.body);
    ss_webhdfs_stream_free(w->up);
    w->up = NULL;
    return rc;
}

static int webhdfs_put_open(void *st, const char *path, void **out)
{
    webhdfs_writer *w = ss_calloc(1, sizeof *w);
    w->fs = st;
    w->final = ss_strdup(path);
    w->tmp = ss_cold_tmp_name(path);
    w->crc = 0;
    ss_buf_init(&w->buf, CHUNK);
    *out = w;
    return SS_OK;
}

/* The DataNode ended the upload early (an answer or a broken connection):
 * the writer's failure from now on. */
static int upload_broke(webhdfs_writer *w)
{
    w->rc = upload_end(w);
    if (!w->rc)
        w->rc = SS_AGAIN;
    return w->rc;
}

/* Starts the streamed upload with what buf holds: CREATE's first step, then
 * a PUT sent by a thread of its own through a ring of ring bytes. */
static int upload_begin(webhdfs_writer *w, size_t ring)
{
    if ((w->rc = create_step(w)) != SS_OK)
        return w->rc;
    w->created = 1;
    w->up = ss_webhdfs_upload_start(w->fs, w->location, ring);
    int rc = ss_webhdfs_upload_write(w->up, w->buf.data, w->buf.len);
    w->buf.len = 0;
    return rc ? upload_broke(w) : SS_OK;
}

/* A file that outgrows CHUNK streams: its body goes to the DataNode by a
 * thread of its own while the caller writes on, through a ring of RING
 * bytes. */
static int webhdfs_put_write(void *vw, const void *p, size_t n)
{
    webhdfs_writer *w = vw;
    if (w->rc)
        return w->rc;
    w->crc = libdeflate_crc32((uint32_t)w->crc, p, n);
    w->bytes += (int64_t)n;
    if (!w->up && w->buf.len + n <= CHUNK) {
        ss_buf_put(&w->buf, p, n);
        return SS_OK;
    }
    if (!w->up && upload_begin(w, RING) != SS_OK)
        return w->rc;
    return ss_webhdfs_upload_write(w->up, p, n) == SS_OK ? SS_OK : upload_broke(w);
}

/* A file ends: its upload finishes in the background, a small one started
 * now with its whole body. */
static void webhdfs_put_end(void *vw)
{
    webhdfs_writer *w = vw;
    if (w->rc || (!w->up && upload_begin(w, w->buf.len ? w->buf.len : 1) != SS_OK))
        return;
    ss_webhdfs_upload_close(w->up);
}

static void writer_free(webhdfs_writer *w)
{
    ss_webhdfs_stream_free(w->up);
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
    int rc = ss_webhdfs_nn_call(fs, "DELETE", rel, "DELETE", "&recursive=false", &r, neterr,
                                sizeof neterr);
    if (rc)
        rc = ss_webhdfs_fail(fs, "DELETE", rel, &r, neterr, 0);
    else if (r.status != 200 && r.status != 404)
        rc = ss_webhdfs_fail(fs, "DELETE", rel, &r, NULL, 0);
    ss_buf_free(&r.body);
    return rc;
}

static void webhdfs_put_abort(void *vw)
{
    webhdfs_writer *w = vw;
    if (!w)
        return;
    /* An upload under way ends as a whole file, which is then removed: one
     * cut off could still be created by the DataNode after the DELETE. */
    if (w->up)
        upload_end(w);
    if (w->created)
        remove_rel(w->fs, w->tmp);
    writer_free(w);
}

static int webhdfs_read(void *st, const char *path, ss_buf *out);

/* RENAME found the target taken: the commit is done only if the target holds
 * exactly what this writer wrote. */
static int same_as_written(webhdfs_writer *w)
{
    ss_buf b;
    ss_buf_init(&b, 1 << 16);
    int rc = webhdfs_read(w->fs, w->final, &b);
    int same =
        rc == SS_OK && (int64_t)b.len == w->bytes && libdeflate_crc32(0, b.data, b.len) == w->crc;
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
    int rc, renamed = 0;
    if (w->rc)
        rc = w->rc;
    else if (w->up)
        rc = upload_end(w);
    else
        rc = send_whole(w, w->buf.data, w->buf.len);
    w->buf.len = 0;
    if (rc == SS_OK) {
        ss_buf q, p;
        ss_buf_init(&q, 256);
        ss_buf_init(&p, 256);
        ss_webhdfs_path(&p, fs, w->final);
        ss_buf_lit(&q, "&destination=");
        ss_webhdfs_escape(&q, ss_buf_cstr(&p));
        reply r = {0};
        ss_buf_init(&r.body, 128);
        char neterr[256];
        rc = ss_webhdfs_nn_call(fs, "PUT", w->tmp, "RENAME", ss_buf_cstr(&q), &r, neterr,
                                sizeof neterr);
        if (rc)
            rc = ss_webhdfs_fail(fs, "RENAME", w->tmp, &r, neterr, 0);
        else if (r.status != 200)
            rc = ss_webhdfs_fail(fs, "RENAME", w->tmp, &r, NULL, 0);
        else if (ss_webhdfs_json_bool(&r) == 1)
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
    int rc = ss_webhdfs_nn_call(l->fs, "GET", rel, "LISTSTATUS", NULL, &r, neterr, sizeof neterr);
    if (rc) {
        rc = ss_webhdfs_fail(l->fs, "LISTSTATUS", rel, &r, neterr, 0);
        ss_buf_free(&r.body);
        return rc;
    }
    if (r.status == 404) {
        ss_buf_free(&r.body);
        return SS_OK;
    }
    if (r.status != 200) {
        rc = ss_webhdfs_fail(l->fs, "LISTSTATUS", rel, &r, NULL, 0);
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
    int rc = ss_webhdfs_nn_get(fs, "OPEN", path, 307, &r);
    if (rc) {
        ss_buf_free(&r.body);
        return rc;
    }
    char *loc = ss_strdup(r.location);
    ss_buf_free(&r.body);
    out->len = 0;
    reply d = {.body = *out};
    rc = ss_webhdfs_send(fs, "GET", loc, NULL, 0, 0, &d, neterr, sizeof neterr);
    *out = d.body;
    snprintf(d.location, sizeof d.location, "%s", loc);
    free(loc);
    if (rc)
        return ss_webhdfs_fail(fs, "OPEN", path, &d, neterr, 1);
    if (d.status == 404)
        return SS_EOF;
    if (d.status != 200) {
        /* The error document is not the file's content. */
        rc = ss_webhdfs_fail(fs, "OPEN", path, &d, NULL, 1);
        out->len = 0;
        return rc;
    }
    return SS_OK;
}

/* A file being read. get_open starts reading it all at once (one OPEN, its
 * redirect followed), by a thread of its own that stays up to RING bytes
 * ahead of the reader; ranges read in order are taken from there. A range
 * out of order, or a read-ahead that broke off, goes on with one OPEN per
 * range (offset and length). */
typedef struct webhdfs_reader {
    webhdfs *fs;
    char *path;
    int64_t size;
    ss_webhdfs_stream *ahead; /* the read-ahead, while it serves */
    int64_t pos;              /* where it stands */
    reply r;
} webhdfs_reader;

static int webhdfs_get_open(void *st, const char *path, void **out, int64_t *size)
{
    webhdfs *fs = st;
    reply r = {0};
    ss_buf_init(&r.body, 512);
    int rc = ss_webhdfs_nn_get(fs, "GETFILESTATUS", path, 200, &r);
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
        rd->size = *size = (int64_t)json_integer_value(len);
        ss_buf_init(&rd->r.body, 1 << 16);
        if (rd->size > 0) {
            char *url = ss_webhdfs_op_url(fs, path, "OPEN", NULL);
            rd->ahead = ss_webhdfs_download_start(fs, url, RING);
            free(url);
        }
        *out = rd;
    }
    json_decref(j);
    ss_buf_free(&r.body);
    return rc;
}

/* Takes the next bytes from the read-ahead: SS_OK with *got > 0, or SS_EOF
 * when it cannot serve (it is gone: ranges go on without it). */
static int from_ahead(webhdfs_reader *rd, void *buf, size_t cap, size_t *got)
{
    int64_t left = rd->size - rd->pos;
    size_t want = left < READ_MIN ? (size_t)left : READ_MIN;
    ss_webhdfs_download_read(rd->ahead, buf, cap, want, got);
    if (*got > 0) {
        rd->pos += (int64_t)*got;
        return SS_OK;
    }
    /* Over: at the end of the file, or broken off (then the ranges that
     * follow find out why, and report it). */
    reply e = {0};
    ss_buf_init(&e.body, 512);
    char neterr[256];
    int rc = ss_webhdfs_stream_end(rd->ahead, &e, neterr, sizeof neterr);
    if (rc == SS_OK && e.status == 200 && rd->pos < rd->size)
        SS_DEBUG(COMP, "OPEN '%s' on %s ended after %lld of %lld bytes; reading on by ranges",
                 rd->path, rd->fs->desc, (long long)rd->pos, (long long)rd->size);
    ss_buf_free(&e.body);
    ss_webhdfs_stream_free(rd->ahead);
    rd->ahead = NULL;
    return SS_EOF;
}

static int webhdfs_get_range(void *vr, int64_t off, void *buf, size_t cap, size_t *got)
{
    webhdfs_reader *rd = vr;
    char extra[64], neterr[256];
    *got = 0;
    if (off >= rd->size || cap == 0)
        return SS_OK;
    if (rd->ahead && off != rd->pos) {
        ss_webhdfs_stream_free(rd->ahead);
        rd->ahead = NULL;
    }
    if (rd->ahead && from_ahead(rd, buf, cap, got) == SS_OK)
        return SS_OK;
    /* OPEN with offset and length, the NameNode's redirect followed. */
    snprintf(extra, sizeof extra, "&offset=%lld&length=%zu", (long long)off, cap);
    char *url = ss_webhdfs_op_url(rd->fs, rd->path, "OPEN", extra);
    int rc = ss_webhdfs_send(rd->fs, "GET", url, NULL, 0, 1, &rd->r, neterr, sizeof neterr);
    free(url);
    int datanode = rd->r.location[0] != '\0';
    if (rc)
        return ss_webhdfs_fail(rd->fs, "OPEN", rd->path, &rd->r, neterr, datanode);
    if (rd->r.status != 200)
        return ss_webhdfs_fail(rd->fs, "OPEN", rd->path, &rd->r, NULL, datanode);
    *got = rd->r.body.len < cap ? rd->r.body.len : cap;
    memcpy(buf, rd->r.body.data, *got);
    return SS_OK;
}

static void webhdfs_get_close(void *vr)
{
    webhdfs_reader *rd = vr;
    if (!rd)
        return;
    ss_webhdfs_stream_free(rd->ahead);
    ss_buf_free(&rd->r.body);
    free(rd->path);
    free(rd);
}

static void webhdfs_sweep(void *st)
{
    webhdfs *fs = st;
    lister l = {.fs = fs, .sweep = 1};
    if (!fs->swept && list_dir(&l, "") == SS_OK)
        fs->swept = 1;
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
    free(fs->cafile);
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

/* Parses HOST:PORT/PATH[?user=NAME&auth=negotiate&ca=PATH] into fs. */
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
            } else if (!strncmp(kv, "ca=", 3) && kv[3] && !strcmp(http, "https")) {
                free(fs->cafile);
                fs->cafile = ss_strdup(kv + 3);
            } else if (strcmp(kv, "auth=simple") != 0) {
                snprintf(err, errlen,
                         "cold store '%s://%s': unknown parameter '%s'; use user=NAME, "
                         "auth=simple or auth=negotiate%s",
                         scheme, target, kv,
                         !strcmp(http, "https")   ? ", or ca=PATH"
                         : !strncmp(kv, "ca=", 3) ? " (ca=PATH is for swebhdfs://, which is https)"
                                                  : "");
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
    int rc = ss_webhdfs_nn_call(fs, "PUT", "", "MKDIRS", NULL, &r, neterr, sizeof neterr);
    *reached = rc == SS_OK;
    if (rc && ss_webhdfs_tls_refused(fs->last_cc)) {
        /* Not an outage: no retry will make the certificate trusted. */
        snprintf(err, errlen,
                 "cold store %s: the TLS connection to the NameNode failed (%s); give the "
                 "certificate of the CA that signed the NameNode's and DataNodes' certificates "
                 "with ?ca=PATH (a PEM file), or install it in the system's trust store",
                 fs->desc, neterr);
        rc = SS_EINVAL;
    } else if (rc) {
        SS_WARN(COMP, "cannot reach the NameNode of %s (%s); writes and reads will be retried",
                fs->desc, neterr);
        rc = SS_OK;
    } else if (r.status != 200 || ss_webhdfs_json_bool(&r) != 1) {
        char msg[512];
        ss_webhdfs_remote_error(&r, msg, sizeof msg);
        if (ss_webhdfs_remote_is(&r, "FileAlreadyExistsException") ||
            ss_webhdfs_remote_is(&r, "ParentNotDirectoryException"))
            snprintf(err, errlen,
                     "cold store %s: the path or one of its parents is a file, not a directory "
                     "(%s); give a directory",
                     fs->desc, msg);
        else if (ss_webhdfs_remote_is(&r, "AccessControlException"))
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
    .put_commit = webhdfs_put_commit, .put_abort = webhdfs_put_abort, .put_end = webhdfs_put_end,  \
    .list = webhdfs_list, .read = webhdfs_read, .get_open = webhdfs_get_open,                      \
    .get_range = webhdfs_get_range, .get_close = webhdfs_get_close, .sweep = webhdfs_sweep,        \
    .remove = webhdfs_remove, .describe = webhdfs_describe

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

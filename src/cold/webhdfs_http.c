/* The WebHDFS protocol for the cold store of src/cold/webhdfs.c: URLs of
 * operations, requests on the store's libcurl handle, and the NameNode's
 * errors (RemoteException documents) turned into what a user reads. */
#define _POSIX_C_SOURCE 200809L
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cold/webhdfs_int.h"
#include "common/http.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"

#define COMP SS_WEBHDFS_COMP

typedef ss_webhdfs_reply reply;

/* ---- URLs ---- */

void ss_webhdfs_escape(ss_buf *b, const char *s)
{
    ss_http_escape(b, s, strlen(s), "/=:");
}

/* The absolute HDFS path of rel ("" for the root). */
void ss_webhdfs_path(ss_buf *b, const webhdfs *fs, const char *rel)
{
    ss_buf_puts(b, fs->root);
    if (*rel) {
        ss_buf_putc(b, '/');
        ss_buf_puts(b, rel);
    } else if (!*fs->root) {
        ss_buf_putc(b, '/');
    }
}

char *ss_webhdfs_op_url(const webhdfs *fs, const char *rel, const char *op, const char *extra)
{
    ss_buf b, p;
    ss_buf_init(&b, 256);
    ss_buf_init(&p, 256);
    ss_webhdfs_path(&p, fs, rel);
    ss_buf_puts(&b, fs->base);
    ss_webhdfs_escape(&b, ss_buf_cstr(&p));
    ss_buf_printf(&b, "?op=%s", op);
    if (fs->user) {
        ss_buf_lit(&b, "&user.name=");
        ss_webhdfs_escape(&b, fs->user);
    }
    if (extra)
        ss_buf_puts(&b, extra);
    ss_buf_free(&p);
    return (char *)ss_buf_cstr(&b);
}

/* ---- requests ---- */

/* The store's own options: TLS trust and SPNEGO. */
static void setup_auth(CURL *c, void *ctx)
{
    const webhdfs *fs = ctx;
    if (fs->cafile)
        curl_easy_setopt(c, CURLOPT_CAINFO, fs->cafile);
    if (fs->negotiate) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_NEGOTIATE);
        curl_easy_setopt(c, CURLOPT_USERPWD, ":");
    }
}

void ss_webhdfs_setup(CURL *c, const webhdfs *fs, const char *url, int follow)
{
    ss_http_setup(c, url, follow);
    setup_auth(c, (void *)fs);
}

int ss_webhdfs_send(webhdfs *fs, const char *method, const char *url, const void *data, size_t n,
                    int follow, reply *r, char *err, size_t errlen)
{
    ss_http_request rq = {.method = method,
                          .url = url,
                          .body = data,
                          .n = n,
                          .content_type = data ? "application/octet-stream" : NULL,
                          .follow = follow,
                          .setup = setup_auth,
                          .ctx = fs};
    return ss_http_send(fs->curl, &rq, r, &fs->last_cc, err, errlen);
}

int ss_webhdfs_tls_refused(CURLcode cc)
{
    return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
           cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_SSL_CERTPROBLEM;
}

/* The RemoteException of a reply as "Exception: first line of the message". */
void ss_webhdfs_remote_error(const reply *r, char *out, size_t n)
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
int ss_webhdfs_remote_is(const reply *r, const char *exception)
{
    json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
    json_t *ex = json_object_get(json_object_get(j, "RemoteException"), "exception");
    int is = json_is_string(ex) && !strcmp(json_string_value(ex), exception);
    json_decref(j);
    return is;
}

int ss_webhdfs_fail(const webhdfs *fs, const char *what, const char *rel, const reply *r,
                    const char *neterr, int datanode)
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
    ss_webhdfs_remote_error(r, msg, sizeof msg);
    SS_ERROR(COMP, "%s '%s' on %s: %s", what, rel, fs->desc, msg);
    if (r->status >= 500 || ss_webhdfs_remote_is(r, "SafeModeException") ||
        ss_webhdfs_remote_is(r, "RetriableException") ||
        ss_webhdfs_remote_is(r, "StandbyException"))
        return SS_AGAIN;
    return SS_EIO;
}

/* One NameNode operation on rel (a redirect is not followed). */
int ss_webhdfs_nn_call(webhdfs *fs, const char *method, const char *rel, const char *op,
                       const char *extra, reply *r, char *neterr, size_t nlen)
{
    char *url = ss_webhdfs_op_url(fs, rel, op, extra);
    int rc = ss_webhdfs_send(fs, method, url, NULL, 0, 0, r, neterr, nlen);
    free(url);
    return rc;
}

/* The boolean of {"boolean":...}; -1 when the body is not one. */
int ss_webhdfs_json_bool(const reply *r)
{
    json_t *j = json_loadb(r->body.data, r->body.len, 0, NULL);
    json_t *b = json_object_get(j, "boolean");
    int v = json_is_boolean(b) ? json_is_true(b) : -1;
    json_decref(j);
    return v;
}

/* A GET of op on the NameNode that must answer want (a 307 with its
 * Location, or 200): SS_EOF for a missing file, else SS_OK or the failure,
 * reported. */
int ss_webhdfs_nn_get(webhdfs *fs, const char *op, const char *path, int want, reply *r)
{
    char neterr[256];
    if (ss_webhdfs_nn_call(fs, "GET", path, op, NULL, r, neterr, sizeof neterr) != SS_OK)
        return ss_webhdfs_fail(fs, op, path, r, neterr, 0);
    if (r->status == 404)
        return SS_EOF;
    if (r->status != want || (want == 307 && !r->location[0]))
        return ss_webhdfs_fail(fs, op, path, r, NULL, 0);
    return SS_OK;
}

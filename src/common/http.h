/* HTTP requests over libcurl, shared by the backends that speak HTTP: the
 * WebHDFS cold store (src/cold/webhdfs*.c) and the HBase KPI sink
 * (src/sink/hbase.c). One request at a time on a handle that the caller
 * owns and reuses, so that its connection is kept alive between requests.
 * @locality a handle is used by one thread at a time. */
#ifndef SS_COMMON_HTTP_H
#define SS_COMMON_HTTP_H

#include <curl/curl.h>
#include <stddef.h>

#include "common/buf.h"

/* An HTTP answer: its status, body and a redirect's Location. */
typedef struct ss_http_reply {
    long status;
    ss_buf body;
    char location[4096];
} ss_http_reply;

/* One request. body (n bytes) is sent with PUT or POST; content_type and
 * accept add those headers when set. follow: redirects are followed. */
typedef struct ss_http_request {
    const char *method; /* "GET", "PUT", "POST", "DELETE", ... */
    const char *url;
    const void *body;
    size_t n;
    const char *content_type;
    const char *accept;
    int follow;
    /* Called after the shared options are set, for the caller's own
     * (TLS trust, authentication, time-outs); NULL for none. */
    void (*setup)(CURL *c, void *ctx);
    void *ctx;
} ss_http_request;

/* Appends s (n bytes) percent-encoded: every byte but letters, digits,
 * "-._~" and those in keep (NULL for none) becomes %XX. */
void ss_http_escape(ss_buf *b, const char *s, size_t n, const char *keep);

/* Sets the options every request shares on a reset handle: the URL,
 * connect and stall time-outs, no signals, redirects followed or not. */
void ss_http_setup(CURL *c, const char *url, int follow);

/* Sends rq on c (reset first; its connection is reused). The reply keeps the
 * status, the body and a redirect's Location: the one not followed, or with
 * follow the last one followed. SS_OK when an HTTP answer came, SS_AGAIN
 * when the server could not be reached (err says why, *cc gives curl's code
 * when cc is not NULL). */
int ss_http_send(CURL *c, const ss_http_request *rq, ss_http_reply *r, CURLcode *cc, char *err,
                 size_t errlen);

#endif

/* HTTP requests over libcurl (common/http.h). */
#define _POSIX_C_SOURCE 200809L
#include "common/http.h"

#include <stdio.h>
#include <string.h>

#include "common/status.h"

void ss_http_escape(ss_buf *b, const char *s, size_t n, const char *keep)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            (c && strchr("-._~", c)) || (c && keep && strchr(keep, c))) {
            ss_buf_putc(b, (char)c);
        } else {
            ss_buf_putc(b, '%');
            ss_buf_putc(b, hex[c >> 4]);
            ss_buf_putc(b, hex[c & 15]);
        }
    }
}

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

void ss_http_setup(CURL *c, const char *url, int follow)
{
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    /* A transfer that stalls for a minute has failed. */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
}

int ss_http_send(CURL *c, const ss_http_request *rq, ss_http_reply *r, CURLcode *ccp, char *err,
                 size_t errlen)
{
    curl_easy_reset(c);
    r->status = 0;
    r->body.len = 0;
    r->location[0] = '\0';
    upload u = {rq->body, rq->n};
    /* No "Expect: 100-continue": the servers answer at once, and waiting
     * for it costs a second per request on some. */
    struct curl_slist *hdr = curl_slist_append(NULL, "Expect:");
    char line[256];
    if (rq->content_type) {
        snprintf(line, sizeof line, "Content-Type: %s", rq->content_type);
        hdr = curl_slist_append(hdr, line);
    }
    if (rq->accept) {
        snprintf(line, sizeof line, "Accept: %s", rq->accept);
        hdr = curl_slist_append(hdr, line);
    }
    ss_http_setup(c, rq->url, rq->follow);
    if (rq->setup)
        rq->setup(c, rq->ctx);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    if (!strcmp(rq->method, "PUT")) {
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(c, CURLOPT_READDATA, &u);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)rq->n);
    } else if (!strcmp(rq->method, "POST")) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->n);
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    }
    CURLcode cc = curl_easy_perform(c);
    if (ccp)
        *ccp = cc;
    curl_slist_free_all(hdr);
    long followed = 0;
    char *loc = NULL;
    if (rq->follow && curl_easy_getinfo(c, CURLINFO_REDIRECT_COUNT, &followed) == CURLE_OK &&
        followed > 0 && curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &loc) == CURLE_OK && loc)
        snprintf(r->location, sizeof r->location, "%s", loc);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", curl_easy_strerror(cc));
        return SS_AGAIN;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    loc = NULL;
    if (!rq->follow && curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
        snprintf(r->location, sizeof r->location, "%s", loc);
    return SS_OK;
}

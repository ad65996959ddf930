/* Transfers of the WebHDFS cold store that run in a thread of their own, so
 * that the network overlaps the caller's work: an archive run formats rows
 * while the previous ones travel to the DataNode, and a cold scan parses one
 * part of a file while the next arrives. The two sides meet in a ring buffer
 * of fixed size; the side that finds it full (or empty) waits. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cold/webhdfs_int.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/thread.h"

/* The most of an error document kept (its first line is what is shown). */
#define ERR_BODY_MAX (64u << 10)

struct ss_webhdfs_stream {
    CURL *c;
    struct curl_slist *hdr;
    pthread_t th;
    int started;
    int upload;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *ring;
    size_t cap;
    uint64_t in, out; /* bytes put into and taken from the ring */
    int eof;          /* the upload's body is complete */
    int cancel;       /* the caller gave up */
    int finished;     /* the transfer is over */
    CURLcode cc;
    long status;
    ss_buf body; /* the answer's body when it is not the file's content */
    char neterr[CURL_ERROR_SIZE];
};

/* Copies n bytes in at the ring's head; the caller holds the lock and has
 * checked the room. */
static void ring_put(ss_webhdfs_stream *s, const char *p, size_t n)
{
    size_t at = (size_t)(s->in % s->cap), first = s->cap - at < n ? s->cap - at : n;
    memcpy(s->ring + at, p, first);
    memcpy(s->ring, p + first, n - first);
    s->in += n;
}

static void ring_get(ss_webhdfs_stream *s, char *p, size_t n)
{
    size_t at = (size_t)(s->out % s->cap), first = s->cap - at < n ? s->cap - at : n;
    memcpy(p, s->ring + at, first);
    memcpy(p + first, s->ring, n - first);
    s->out += n;
}

/* Puts n bytes, waiting for room while *gone (the other side's end) is 0;
 * returns how many went in. */
static size_t put_wait(ss_webhdfs_stream *s, const char *p, size_t n, const int *gone)
{
    size_t done = 0;
    pthread_mutex_lock(&s->mu);
    while (done < n) {
        while (s->in - s->out == s->cap && !*gone)
            pthread_cond_wait(&s->cv, &s->mu);
        if (*gone)
            break;
        size_t room = s->cap - (size_t)(s->in - s->out);
        size_t k = n - done < room ? n - done : room;
        ring_put(s, p + done, k);
        done += k;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return done;
}

/* ---- the transfer's side (its thread) ---- */

static size_t on_download(char *p, size_t size, size_t n, void *ctx)
{
    ss_webhdfs_stream *s = ctx;
    size_t len = size * n;
    if (!s->status)
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200) {
        if (s->body.len < ERR_BODY_MAX)
            ss_buf_put(&s->body, p, len);
        return len;
    }
    /* A short count aborts the transfer: the reader is gone. */
    return put_wait(s, p, len, &s->cancel);
}

static size_t on_answer(char *p, size_t size, size_t n, void *ctx)
{
    ss_webhdfs_stream *s = ctx;
    if (s->body.len < ERR_BODY_MAX)
        ss_buf_put(&s->body, p, size * n);
    return size * n;
}

static size_t on_upload(char *p, size_t size, size_t n, void *ctx)
{
    ss_webhdfs_stream *s = ctx;
    size_t k = 0;
    pthread_mutex_lock(&s->mu);
    while (s->in == s->out && !s->eof && !s->cancel)
        pthread_cond_wait(&s->cv, &s->mu);
    if (s->cancel) {
        pthread_mutex_unlock(&s->mu);
        return CURL_READFUNC_ABORT;
    }
    k = (size_t)(s->in - s->out) < size * n ? (size_t)(s->in - s->out) : size * n;
    ring_get(s, p, k);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return k; /* 0 ends the chunked body */
}

static void *transfer_main(void *arg)
{
    ss_thread_name("ss-hdfs-read");
    ss_webhdfs_stream *s = arg;
    CURLcode cc = curl_easy_perform(s->c);
    long status = 0;
    curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &status);
    pthread_mutex_lock(&s->mu);
    s->cc = cc;
    s->status = status;
    s->finished = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- the caller's side ---- */

static ss_webhdfs_stream *stream_new(const webhdfs *fs, const char *url, size_t ring, int upload)
{
    ss_webhdfs_stream *s = ss_calloc(1, sizeof *s);
    s->upload = upload;
    s->cap = ring;
    s->ring = ss_malloc(ring);
    ss_buf_init(&s->body, 512);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->c = curl_easy_init();
    if (!s->c) {
        snprintf(s->neterr, sizeof s->neterr, "cannot start libcurl");
        s->finished = 1;
        return s;
    }
    ss_webhdfs_setup(s->c, fs, url, !upload);
    curl_easy_setopt(s->c, CURLOPT_ERRORBUFFER, s->neterr);
    s->hdr = curl_slist_append(NULL, "Expect:");
    if (upload) {
        s->hdr = curl_slist_append(s->hdr, "Content-Type: application/octet-stream");
        curl_easy_setopt(s->c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(s->c, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(s->c, CURLOPT_READDATA, s);
        curl_easy_setopt(s->c, CURLOPT_UPLOAD_BUFFERSIZE, 1L << 20);
        curl_easy_setopt(s->c, CURLOPT_WRITEFUNCTION, on_answer);
    } else {
        curl_easy_setopt(s->c, CURLOPT_WRITEFUNCTION, on_download);
        curl_easy_setopt(s->c, CURLOPT_BUFFERSIZE, 512L << 10);
    }
    curl_easy_setopt(s->c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->c, CURLOPT_HTTPHEADER, s->hdr);
    if (pthread_create(&s->th, NULL, transfer_main, s) == 0) {
        s->started = 1;
    } else {
        snprintf(s->neterr, sizeof s->neterr, "cannot start a thread for the transfer");
        s->cc = CURLE_FAILED_INIT;
        s->finished = 1;
    }
    return s;
}

ss_webhdfs_stream *ss_webhdfs_upload_start(const webhdfs *fs, const char *url, size_t ring)
{
    return stream_new(fs, url, ring, 1);
}

ss_webhdfs_stream *ss_webhdfs_download_start(const webhdfs *fs, const char *url, size_t ring)
{
    return stream_new(fs, url, ring, 0);
}

int ss_webhdfs_upload_write(ss_webhdfs_stream *s, const void *p, size_t n)
{
    return put_wait(s, p, n, &s->finished) == n ? SS_OK : SS_AGAIN;
}

void ss_webhdfs_upload_close(ss_webhdfs_stream *s)
{
    pthread_mutex_lock(&s->mu);
    s->eof = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void ss_webhdfs_download_read(ss_webhdfs_stream *s, void *buf, size_t cap, size_t want, size_t *got)
{
    if (want > cap)
        want = cap;
    if (want > s->cap)
        want = s->cap;
    pthread_mutex_lock(&s->mu);
    while (s->in - s->out < want && !s->finished)
        pthread_cond_wait(&s->cv, &s->mu);
    size_t have = (size_t)(s->in - s->out);
    *got = have < cap ? have : cap;
    ring_get(s, buf, *got);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits for the transfer's thread, cancelling it first when asked. */
static void join(ss_webhdfs_stream *s, int cancel)
{
    pthread_mutex_lock(&s->mu);
    if (cancel && !s->finished)
        s->cancel = 1;
    s->eof = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started)
        pthread_join(s->th, NULL);
    s->started = 0;
}

int ss_webhdfs_stream_end(ss_webhdfs_stream *s, ss_webhdfs_reply *r, char *neterr, size_t nlen)
{
    join(s, !s->upload);
    r->status = s->status;
    r->body.len = 0;
    ss_buf_put(&r->body, s->body.data, s->body.len);
    if (s->cc != CURLE_OK && !(s->cancel && s->cc == CURLE_WRITE_ERROR)) {
        snprintf(neterr, nlen, "%s", s->neterr[0] ? s->neterr : curl_easy_strerror(s->cc));
        return SS_AGAIN;
    }
    return SS_OK;
}

void ss_webhdfs_stream_free(ss_webhdfs_stream *s)
{
    if (!s)
        return;
    join(s, 1);
    if (s->c)
        curl_easy_cleanup(s->c);
    curl_slist_free_all(s->hdr);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    ss_buf_free(&s->body);
    free(s->ring);
    free(s);
}

/* Internals of the WebHDFS cold store, shared by its three files:
 * src/cold/webhdfs.c (the ss_cold_ops: writing, listing, reading, opening),
 * src/cold/webhdfs_http.c (the protocol: URLs, one request at a time on the
 * store's own libcurl handle, the NameNode's errors) and
 * src/cold/webhdfs_stream.c (transfers that run in a thread of their own
 * beside the caller: a large file's upload and the read-ahead of a file being
 * scanned). */
#ifndef SS_COLD_WEBHDFS_INT_H
#define SS_COLD_WEBHDFS_INT_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/http.h"

#define SS_WEBHDFS_COMP "cold:webhdfs"

typedef struct webhdfs {
    char *base; /* http[s]://HOST:PORT/webhdfs/v1 */
    char *root; /* the store's absolute path in HDFS, without a trailing '/' */
    char *user; /* NULL with SPNEGO */
    char *desc;
    int negotiate;
    char *cafile;     /* swebhdfs: the CA certificates to trust, or NULL */
    CURLcode last_cc; /* the outcome of the last request on curl */
    int swept;        /* the temporary files of writers gone are removed */
    CURL *curl;
} webhdfs;

/* An HTTP answer: its status, body and a redirect's Location. */
typedef ss_http_reply ss_webhdfs_reply;

/* ---- the protocol (webhdfs_http.c) ---- */

/* Appends s to a URL, percent-encoded except for '/' and a few safe bytes. */
void ss_webhdfs_escape(ss_buf *b, const char *s);
/* The absolute HDFS path of rel (relative to the store's root; "" is the
 * root). */
void ss_webhdfs_path(ss_buf *b, const webhdfs *fs, const char *rel);
/* The NameNode's URL of operation op on rel, with extra query text (NULL for
 * none); ss_malloc'd. */
char *ss_webhdfs_op_url(const webhdfs *fs, const char *rel, const char *op, const char *extra);

/* Sets the options every request shares (URL, time-outs, authentication,
 * redirects followed or not) on a reset handle. */
void ss_webhdfs_setup(CURL *c, const webhdfs *fs, const char *url, int follow);
/* Sends one request on the store's handle; data (n bytes) is the body of a
 * PUT. The reply keeps the status, the body and a redirect's
 * Location: the one not followed, or with follow the last one followed
 * (empty when the NameNode answered itself). SS_OK when an HTTP answer came,
 * SS_AGAIN when the server could not be reached (err says why). */
int ss_webhdfs_send(webhdfs *fs, const char *method, const char *url, const void *data, size_t n,
                    int follow, ss_webhdfs_reply *r, char *err, size_t errlen);
/* One NameNode operation on rel (a redirect is not followed). */
int ss_webhdfs_nn_call(webhdfs *fs, const char *method, const char *rel, const char *op,
                       const char *extra, ss_webhdfs_reply *r, char *neterr, size_t nlen);
/* A GET of op on the NameNode that must answer want (a 307 with its
 * Location, or 200): SS_EOF for a missing file, else SS_OK or the failure,
 * reported. */
int ss_webhdfs_nn_get(webhdfs *fs, const char *op, const char *path, int want, ss_webhdfs_reply *r);

/* Whether a failed request's code is a TLS refusal (the certificate is not
 * trusted, or the handshake failed), which no retry mends. */
int ss_webhdfs_tls_refused(CURLcode cc);

/* The RemoteException of a reply as "Exception: first line of the message"
 * ("HTTP <status>" when it has none). */
void ss_webhdfs_remote_error(const ss_webhdfs_reply *r, char *out, size_t n);
/* Whether a reply's RemoteException is the named one. */
int ss_webhdfs_remote_is(const ss_webhdfs_reply *r, const char *exception);
/* The boolean of {"boolean":...}; -1 when the body is not one. */
int ss_webhdfs_json_bool(const ss_webhdfs_reply *r);
/* Logs a failed step on rel and gives its status: neterr (the server could
 * not be reached; datanode says which server) or a reply that is not the
 * expected one. A server away, in safe mode or failing (5xx) is SS_AGAIN, a
 * refusal (4xx) SS_EIO. */
int ss_webhdfs_fail(const webhdfs *fs, const char *what, const char *rel, const ss_webhdfs_reply *r,
                    const char *neterr, int datanode);

/* ---- transfers in a thread of their own (webhdfs_stream.c) ----
 * Each has its own libcurl handle and passes the bytes through a ring buffer
 * of a fixed size, so that neither side holds more than that.
 * @locality an ss_webhdfs_stream is driven by the thread that started it;
 * only its transfer runs in the other thread. */
typedef struct ss_webhdfs_stream ss_webhdfs_stream;

/* Starts a PUT of a chunked body to url (a DataNode's Location from CREATE);
 * the body is what ss_webhdfs_upload_write gives. */
ss_webhdfs_stream *ss_webhdfs_upload_start(const webhdfs *fs, const char *url, size_t ring);
/* Appends to the body; blocks while the ring is full. SS_AGAIN when the
 * transfer has already ended (ss_webhdfs_stream_end says how). */
int ss_webhdfs_upload_write(ss_webhdfs_stream *s, const void *p, size_t n);

/* Ends the upload's body; the transfer finishes in its thread. */
void ss_webhdfs_upload_close(ss_webhdfs_stream *s);

/* Starts a GET of url, redirects followed (an OPEN on the NameNode). */
ss_webhdfs_stream *ss_webhdfs_download_start(const webhdfs *fs, const char *url, size_t ring);
/* Takes up to cap bytes of the body, waiting for at least want of them (or
 * the end). *got is 0 at the end of the body or when the transfer failed:
 * then ss_webhdfs_stream_end says which. */
void ss_webhdfs_download_read(ss_webhdfs_stream *s, void *buf, size_t cap, size_t want,
                              size_t *got);

/* Ends the body of an upload (a download is cancelled if not over), waits
 * for the transfer and gives its outcome: SS_OK with the answer in r (status
 * and body; a download's body went to the reader unless it was not 200), or
 * SS_AGAIN when no answer came (neterr says why). Call it once. */
int ss_webhdfs_stream_end(ss_webhdfs_stream *s, ss_webhdfs_reply *r, char *neterr, size_t nlen);
/* Cancels a transfer still running, waits for it and frees s (NULL is
 * fine). */
void ss_webhdfs_stream_free(ss_webhdfs_stream *s);

#endif

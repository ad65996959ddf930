/* File bus: JSON Lines on a file or standard output. Writes go through one
 * large buffer and plain write(2) calls. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"

#define FLUSH_AT (1u << 20)

typedef struct file_producer {
    int fd;
    int own_fd;
    char *path;
    ss_buf buf;
} file_producer;

static int file_producer_open(const char *target, const ss_bus_opts *opts, void **state, char *err,
                              size_t errlen)
{
    (void)opts;
    int fd = STDOUT_FILENO, own = 0;
    if (strcmp(target, "-") != 0) {
        if (*target == '\0') {
            snprintf(err, errlen, "empty output path; give a file path or '-' for stdout");
            return SS_EINVAL;
        }
        fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(err, errlen, "cannot open output '%s': %s", target, strerror(errno));
            return SS_EIO;
        }
        own = 1;
    }
    file_producer *fp = ss_calloc(1, sizeof *fp);
    fp->fd = fd;
    fp->own_fd = own;
    fp->path = ss_strdup(target);
    ss_buf_init(&fp->buf, FLUSH_AT + 4096);
    *state = fp;
    return SS_OK;
}

static int file_flush(void *state)
{
    file_producer *fp = state;
    size_t off = 0;
    while (off < fp->buf.len) {
        ssize_t n = write(fp->fd, fp->buf.data + off, fp->buf.len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            SS_ERROR("bus:file", "cannot write to '%s': %s", fp->path, strerror(errno));
            /* Keep what was not written so that nothing is silently lost. */
            memmove(fp->buf.data, fp->buf.data + off, fp->buf.len - off);
            fp->buf.len -= off;
            return SS_EIO;
        }
        off += (size_t)n;
    }
    fp->buf.len = 0;
    return SS_OK;
}

static int file_produce(void *state, const char *key, size_t klen, const char *value, size_t vlen)
{
    (void)key;
    (void)klen;
    file_producer *fp = state;
    ss_buf_reserve(&fp->buf, vlen + 1);
    memcpy(fp->buf.data + fp->buf.len, value, vlen);
    fp->buf.data[fp->buf.len + vlen] = '\n';
    fp->buf.len += vlen + 1;
    return fp->buf.len >= FLUSH_AT ? file_flush(fp) : SS_OK;
}

static int file_producer_close(void *state)
{
    file_producer *fp = state;
    if (!fp)
        return SS_OK;
    int rc = file_flush(fp);
    if (fp->own_fd && close(fp->fd) != 0 && rc == SS_OK) {
        SS_ERROR("bus:file", "cannot close '%s': %s", fp->path, strerror(errno));
        rc = SS_EIO;
    }
    ss_buf_free(&fp->buf);
    free(fp->path);
    free(fp);
    return rc;
}

const ss_bus_ops ss_bus_file_ops = {
    .name = "file",
    .scheme = "file:",
    .producer_open = file_producer_open,
    .produce = file_produce,
    .flush = file_flush,
    .producer_close = file_producer_close,
};

/* ---- consumer: JSON Lines from a file or standard input ---- */

#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define READ_CHUNK  (4u << 20)
#define PREFIX_KEEP (64u << 10) /* bytes kept of a record over the line limit */
#define LINE_LIMIT  (1u << 20)

typedef struct file_consumer {
    int fd, own_fd, seekable, eof, mapped, follow;
    char *source;
    char *buf;
    size_t start, end, cap; /* unread bytes are buf[start..end) */
    int64_t base;           /* input offset of buf[0] */
    int skipping;           /* inside a record over the limit */
    size_t skip_total;
    int64_t skip_offset;
    char *prefix; /* first bytes of the over-long record */
    size_t prefix_len;
    char *map; /* a regular file, mapped; NULL when reading with read(2) */
    size_t map_len;
    size_t pos;     /* next unread byte of the mapping */
    size_t dropped; /* pages before this offset were given back */
} file_consumer;

static int file_consumer_open(const char *target, const ss_bus_opts *opts, void **state, char *err,
                              size_t errlen)
{
    (void)opts;
    file_consumer *fc = ss_calloc(1, sizeof *fc);
    fc->fd = STDIN_FILENO;
    if (strcmp(target, "-") != 0) {
        fc->fd = open(target, O_RDONLY | O_CLOEXEC);
        if (fc->fd < 0) {
            snprintf(err, errlen, "cannot open input '%s': %s", target, strerror(errno));
            free(fc);
            return SS_EIO;
        }
        fc->own_fd = 1;
        char real[PATH_MAX];
        char name[PATH_MAX + 8];
        snprintf(name, sizeof name, "file:%s", realpath(target, real) ? real : target);
        fc->source = ss_strdup(name);
    } else {
        fc->source = ss_strdup("stdin");
    }
    struct stat sb;
    /* Only a named file resumes at its stored position: "stdin" names no
     * particular bytes (each run may redirect another file), and reading it
     * again from its start is safe because replays are deduplicated. */
    fc->seekable = fc->own_fd && fstat(fc->fd, &sb) == 0 && S_ISREG(sb.st_mode);
    fc->mapped = fc->seekable;
    fc->cap = READ_CHUNK + LINE_LIMIT;
    fc->buf = ss_malloc(fc->cap);
    fc->prefix = ss_malloc(PREFIX_KEEP);
    *state = fc;
    return SS_OK;
}

static const char *file_consumer_source(void *state, int *seekable)
{
    file_consumer *fc = state;
    *seekable = fc->seekable;
    return fc->source;
}

static int file_consumer_seek(void *state, int64_t offset)
{
    file_consumer *fc = state;
    if (!fc->seekable)
        return SS_ENOTSUP;
    struct stat sb;
    if (fstat(fc->fd, &sb) == 0 && sb.st_size < offset) {
        SS_WARN("bus:file",
                "'%s' is shorter (%lld bytes) than the stored position %lld; "
                "reading it from the start",
                fc->source, (long long)sb.st_size, (long long)offset);
        offset = 0;
    }
    fc->pos = fc->dropped = (size_t)offset;
    if (lseek(fc->fd, offset, SEEK_SET) < 0)
        return SS_EIO;
    fc->start = fc->end = 0;
    fc->base = offset;
    fc->eof = 0;
    return SS_OK;
}

/* Reads more input; returns SS_OK, SS_AGAIN (timeout), SS_EOF or SS_EIO. */
static int fill(file_consumer *fc, int timeout_ms)
{
    if (fc->start > 0) {
        memmove(fc->buf, fc->buf + fc->start, fc->end - fc->start);
        fc->base += (int64_t)fc->start;
        fc->end -= fc->start;
        fc->start = 0;
    }
    if (!fc->seekable) {
        struct pollfd pfd = {.fd = fc->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, timeout_ms);
        if (pr == 0)
            return SS_AGAIN;
        if (pr < 0)
            return errno == EINTR ? SS_AGAIN : SS_EIO;
    }
    ssize_t n = read(fc->fd, fc->buf + fc->end, fc->cap - fc->end);
    if (n < 0)
        return errno == EINTR || errno == EAGAIN ? SS_AGAIN : SS_EIO;
    if (n == 0)
        return SS_EOF;
    fc->end += (size_t)n;
    return SS_OK;
}

/* (Re)maps the whole file when it has grown; returns SS_OK, SS_EOF when it
 * has not, or SS_EIO. A file truncated while mapped is not supported. */
static int remap(file_consumer *fc)
{
    struct stat sb;
    if (fstat(fc->fd, &sb) != 0)
        return SS_EIO;
    size_t len = (size_t)sb.st_size;
    if (len <= fc->map_len)
        return SS_EOF;
    if (fc->map)
        munmap(fc->map, fc->map_len);
    fc->map = NULL;
    fc->map_len = 0;
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fc->fd, 0);
    if (m == MAP_FAILED)
        return SS_EIO;
    madvise(m, len, MADV_SEQUENTIAL);
    fc->map = m;
    fc->map_len = len;
    return SS_OK;
}

/* Regular files are mapped and their records handed out in place, without
 * the copy that read(2) makes; pages already consumed are given back so that
 * the resident size does not grow with the file. */
static int mapped_poll(file_consumer *fc, ss_bus_msg *msg)
{
    for (;;) {
        if (fc->pos < fc->map_len) {
            const size_t step = 16u << 20, page = 4096;
            if (fc->pos - fc->dropped > step) {
                size_t to = fc->pos / page * page, from = fc->dropped / page * page;
                madvise(fc->map + from, to - from, MADV_DONTNEED);
                fc->dropped = to;
            }
            char *p = fc->map + fc->pos;
            size_t avail = fc->map_len - fc->pos;
            char *nl = memchr(p, '\n', avail);
            if (!nl && remap(fc) == SS_OK)
                continue;
            if (!nl && fc->follow)
                return SS_EOF; /* the line's writer may not be done */
            size_t len = nl ? (size_t)(nl - p) : avail;
            int64_t off = (int64_t)fc->pos;
            int64_t next = off + (int64_t)len + (nl != NULL);
            fc->pos = (size_t)next;
            /* A record over the limit is cut to its prefix, as when reading. */
            size_t keep = len > LINE_LIMIT ? PREFIX_KEEP : len;
            *msg = (ss_bus_msg){p, keep, len, fc->source, off, next, 0};
            return SS_OK;
        }
        int rc = remap(fc);
        if (rc != SS_OK)
            return rc;
    }
}

static int file_consumer_poll(void *state, ss_bus_msg *msg, int timeout_ms)
{
    file_consumer *fc = state;
    if (fc->mapped)
        return mapped_poll(fc, msg);
    for (;;) {
        char *p = fc->buf + fc->start;
        size_t avail = fc->end - fc->start;
        char *nl = avail ? memchr(p, '\n', avail) : NULL;
        if (fc->skipping) {
            /* Inside a record over the limit: keep its prefix, drop the rest. */
            size_t take = nl ? (size_t)(nl - p) : avail;
            fc->skip_total += take;
            fc->start += take;
            if (!nl && !fc->eof) {
                int rc = fill(fc, timeout_ms);
                if (rc == SS_EOF)
                    fc->eof = 1;
                else if (rc != SS_OK)
                    return rc;
                continue;
            }
            if (nl)
                fc->start++;
            fc->skipping = 0;
            *msg = (ss_bus_msg){fc->prefix, fc->prefix_len,  fc->skip_total,
                                fc->source, fc->skip_offset, fc->base + (int64_t)fc->start,
                                0};
            return SS_OK;
        }
        if (nl) {
            size_t len = (size_t)(nl - p);
            int64_t off = fc->base + (int64_t)fc->start;
            fc->start += len + 1;
            /* A record over the limit is cut to the same prefix whether or not
             * its end happened to be in the buffer, so that it is recorded
             * identically however the input is read (replays, restarts). */
            size_t keep = len > LINE_LIMIT ? PREFIX_KEEP : len;
            *msg = (ss_bus_msg){p, keep, len, fc->source, off, off + (int64_t)len + 1, 0};
            return SS_OK;
        }
        if (avail > LINE_LIMIT) {
            fc->skipping = 1;
            fc->skip_offset = fc->base + (int64_t)fc->start;
            fc->prefix_len = PREFIX_KEEP;
            memcpy(fc->prefix, p, PREFIX_KEEP);
            fc->skip_total = 0;
            continue;
        }
        if (fc->eof) {
            /* The end of a pipe or of standard input is final. */
            if (avail == 0)
                return SS_EOF;
            /* A last record without a newline. */
            int64_t off = fc->base + (int64_t)fc->start;
            fc->start = fc->end;
            *msg = (ss_bus_msg){p, avail, avail, fc->source, off, off + (int64_t)avail, 0};
            return SS_OK;
        }
        int rc = fill(fc, timeout_ms);
        if (rc == SS_EOF)
            fc->eof = 1;
        else if (rc != SS_OK)
            return rc;
    }
}

static void file_consumer_follow(void *state, int on)
{
    ((file_consumer *)state)->follow = on;
}

static void file_consumer_close(void *state)
{
    file_consumer *fc = state;
    if (!fc)
        return;
    if (fc->map)
        munmap(fc->map, fc->map_len);
    if (fc->own_fd)
        close(fc->fd);
    free(fc->source);
    free(fc->buf);
    free(fc->prefix);
    free(fc);
}

const ss_bus_consumer_ops ss_bus_file_consumer_ops = {
    .name = "file",
    .scheme = "file:",
    .open = file_consumer_open,
    .source = file_consumer_source,
    .seek = file_consumer_seek,
    .poll = file_consumer_poll,
    .close = file_consumer_close,
    .follow = file_consumer_follow,
};

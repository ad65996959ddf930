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

static int file_producer_open(const char *target, void **state, char *err, size_t errlen)
{
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

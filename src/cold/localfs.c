/* Cold store in a local directory. A file is written under a temporary name
 * in its final directory, fsynced, renamed into place and the directory
 * fsynced, so that after a crash it is either complete or absent (a leftover
 * temporary file is never listed and is removed by the next open, unless the
 * process that writes it is still running). */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cold/cold.h"
#include "common/fsspace.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"

typedef struct localfs {
    char *root;
    char *desc;
    int swept; /* the temporary files of writers gone are removed */
} localfs;

#define WRITE_BUF (1u << 20)

typedef struct localfs_writer {
    localfs *fs;
    int fd;
    char *final, *tmp;
    ss_buf buf; /* writes go out a megabyte at a time */
} localfs_writer;

static char *join(const localfs *fs, const char *path)
{
    size_t n = strlen(fs->root) + strlen(path) + 2;
    char *s = ss_malloc(n);
    snprintf(s, n, "%s/%s", fs->root, path);
    return s;
}

/* Creates every directory of path up to its last '/'. */
static int mkdirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int io_error(const char *what, const char *path)
{
    int err = errno;
    if (ss_errno_is_full(err)) {
        char space[96];
        ss_fs_space(path, space, sizeof space);
        SS_ERROR("cold:localfs", "cannot %s '%s': %s (%s on its filesystem)", what, path,
                 strerror(err), space);
    } else {
        SS_ERROR("cold:localfs", "cannot %s '%s': %s", what, path, strerror(err));
    }
    errno = err;
    return errno == ENOSPC || errno == EROFS || errno == EACCES || errno == EDQUOT || errno == EIO
               ? SS_AGAIN
               : SS_EIO;
}

/* Removes temporary files left by writes that a crash interrupted (opening a
 * store must not break another process's write in progress). */
static void sweep(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) != 0)
            continue;
        if (S_ISDIR(sb.st_mode))
            sweep(p);
        else if (ss_cold_is_tmp(e->d_name) && ss_cold_tmp_stale(e->d_name))
            unlink(p);
    }
    closedir(d);
}

static int localfs_open(const char *target, void **st, char *err, size_t errlen)
{
    if (!*target) {
        snprintf(err, errlen, "empty cold store path; give a directory");
        return SS_EINVAL;
    }
    char *copy = ss_malloc(strlen(target) + 2);
    snprintf(copy, strlen(target) + 2, "%s/", target);
    if (mkdirs(copy) != 0) {
        snprintf(err, errlen, "cannot create cold store directory '%s': %s", target,
                 strerror(errno));
        free(copy);
        return SS_EIO;
    }
    free(copy);
    localfs *fs = ss_calloc(1, sizeof *fs);
    char real[PATH_MAX];
    fs->root = ss_strdup(realpath(target, real) ? real : target);
    size_t n = strlen(fs->root) + 8;
    fs->desc = ss_malloc(n);
    snprintf(fs->desc, n, "file:%s", fs->root);
    *st = fs;
    return SS_OK;
}

static void localfs_sweep(void *st)
{
    localfs *fs = st;
    if (!fs->swept)
        sweep(fs->root);
    fs->swept = 1;
}

static void localfs_close(void *st)
{
    localfs *fs = st;
    if (!fs)
        return;
    free(fs->root);
    free(fs->desc);
    free(fs);
}

static int localfs_put_open(void *st, const char *path, void **out)
{
    localfs *fs = st;
    *out = NULL;
    localfs_writer *w = ss_calloc(1, sizeof *w);
    w->fs = fs;
    w->final = join(fs, path);
    w->tmp = ss_cold_tmp_name(w->final);
    int rc = SS_OK;
    if (mkdirs(w->final) != 0)
        rc = io_error("create the directory of", w->final);
    else if ((w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
        rc = io_error("create", w->tmp);
    if (rc) {
        free(w->final);
        free(w->tmp);
        free(w);
        return rc;
    }
    ss_buf_init(&w->buf, WRITE_BUF);
    *out = w;
    return SS_OK;
}

static int write_all(localfs_writer *w, const char *c, size_t n)
{
    while (n > 0) {
        ssize_t k = write(w->fd, c, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return io_error("write", w->tmp);
        }
        c += k;
        n -= (size_t)k;
    }
    return SS_OK;
}

static int drain(localfs_writer *w)
{
    int rc = write_all(w, w->buf.data, w->buf.len);
    w->buf.len = 0;
    return rc;
}

static int localfs_put_write(void *vw, const void *p, size_t n)
{
    localfs_writer *w = vw;
    if (w->buf.len + n > WRITE_BUF) {
        int rc = drain(w);
        if (rc)
            return rc;
        if (n >= WRITE_BUF)
            return write_all(w, p, n);
    }
    ss_buf_put(&w->buf, p, n);
    return SS_OK;
}

static void writer_free(localfs_writer *w)
{
    ss_buf_free(&w->buf);
    free(w->final);
    free(w->tmp);
    free(w);
}

static void localfs_put_abort(void *vw)
{
    localfs_writer *w = vw;
    if (!w)
        return;
    if (w->fd >= 0)
        close(w->fd);
    unlink(w->tmp);
    writer_free(w);
}

static int localfs_put_commit(void *vw)
{
    localfs_writer *w = vw;
    int rc = drain(w);
    if (rc == SS_OK && fsync(w->fd) != 0)
        rc = io_error("fsync", w->tmp);
    if (close(w->fd) != 0 && rc == SS_OK)
        rc = io_error("close", w->tmp);
    w->fd = -1;
    if (rc == SS_OK && rename(w->tmp, w->final) != 0)
        rc = io_error("rename into place", w->final);
    if (rc == SS_OK && fsync_dir_of(w->final) != 0)
        rc = io_error("fsync the directory of", w->final);
    if (rc != SS_OK)
        unlink(w->tmp);
    writer_free(w);
    return rc;
}

static int list_dir(localfs *fs, const char *rel, ss_cold_list_cb cb, void *ctx)
{
    char *abs = join(fs, rel);
    DIR *d = opendir(abs);
    free(abs);
    if (!d)
        return errno == ENOENT ? SS_OK : SS_EIO;
    int rc = SS_OK;
    struct dirent *e;
    while (rc == SS_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.' || ss_cold_is_tmp(e->d_name))
            continue;
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        char *full = join(fs, p);
        struct stat sb;
        int ok = lstat(full, &sb) == 0;
        free(full);
        if (!ok)
            continue;
        if (S_ISDIR(sb.st_mode))
            rc = list_dir(fs, p, cb, ctx);
        else if (S_ISREG(sb.st_mode))
            rc = cb(ctx, p, (int64_t)sb.st_size);
    }
    closedir(d);
    return rc;
}

static int localfs_list(void *st, const char *prefix, ss_cold_list_cb cb, void *ctx)
{
    return list_dir(st, prefix, cb, ctx);
}

static int localfs_read(void *st, const char *path, ss_buf *out)
{
    char *abs = join(st, path);
    FILE *f = fopen(abs, "rb");
    if (!f) {
        int rc = errno == ENOENT ? SS_EOF : io_error("open", abs);
        free(abs);
        return rc;
    }
    out->len = 0;
    size_t n;
    do {
        ss_buf_reserve(out, 1 << 16);
        n = fread(out->data + out->len, 1, 1 << 16, f);
        out->len += n;
    } while (n > 0);
    int rc = ferror(f) ? io_error("read", abs) : SS_OK;
    fclose(f);
    free(abs);
    return rc;
}

typedef struct localfs_reader {
    int fd;
    char *path;
} localfs_reader;

static int localfs_get_open(void *st, const char *path, void **out, int64_t *size)
{
    char *abs = join(st, path);
    int fd = open(abs, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int rc = errno == ENOENT ? SS_EOF : io_error("open", abs);
        if (fd >= 0)
            close(fd);
        free(abs);
        return rc;
    }
    localfs_reader *r = ss_malloc(sizeof *r);
    r->fd = fd;
    r->path = abs;
    *size = (int64_t)sb.st_size;
    *out = r;
    return SS_OK;
}

static int localfs_get_range(void *vr, int64_t off, void *buf, size_t cap, size_t *got)
{
    localfs_reader *r = vr;
    ssize_t n;
    do
        n = pread(r->fd, buf, cap, (off_t)off);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return io_error("read", r->path);
    *got = (size_t)n;
    return SS_OK;
}

static void localfs_get_close(void *vr)
{
    localfs_reader *r = vr;
    if (!r)
        return;
    close(r->fd);
    free(r->path);
    free(r);
}

static int localfs_remove(void *st, const char *path)
{
    char *abs = join(st, path);
    int rc = unlink(abs) == 0 || errno == ENOENT ? SS_OK : io_error("remove", abs);
    free(abs);
    return rc;
}

static const char *localfs_describe(void *st)
{
    return ((localfs *)st)->desc;
}

const ss_cold_ops ss_cold_localfs_ops = {
    .name = "localfs",
    .scheme = "file:",
    .open = localfs_open,
    .close = localfs_close,
    .put_open = localfs_put_open,
    .put_write = localfs_put_write,
    .put_commit = localfs_put_commit,
    .put_abort = localfs_put_abort,
    .list = localfs_list,
    .read = localfs_read,
    .get_open = localfs_get_open,
    .get_range = localfs_get_range,
    .get_close = localfs_get_close,
    .sweep = localfs_sweep,
    .remove = localfs_remove,
    .describe = localfs_describe,
};

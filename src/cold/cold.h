/* The cold store: files of archived events, laid out as docs/lifecycle.md
 * describes. Backends are const ss_cold_ops chosen by URI: a plain path or
 * file:PATH (a local directory), webhdfs://HOST:PORT/PATH and
 * swebhdfs://HOST:PORT/PATH (HDFS over WebHDFS, src/cold/webhdfs.c). Paths
 * given to the callbacks are relative to the store's root and use '/'.
 * @locality a handle is used by one thread. */
#ifndef SS_COLD_H
#define SS_COLD_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

typedef int (*ss_cold_list_cb)(void *ctx, const char *path, int64_t bytes);

typedef struct ss_cold_ops {
    const char *name;
    const char *scheme;

    int (*open)(const char *target, void **st, char *err, size_t errlen);
    void (*close)(void *st);

    /* Writing a file is atomic: it appears under its name complete or not
     * at all. put_open starts it, put_write appends, put_commit makes it
     * durable and visible, put_abort discards it. */
    int (*put_open)(void *st, const char *path, void **w);
    int (*put_write)(void *w, const void *p, size_t n);
    int (*put_commit)(void *w);
    void (*put_abort)(void *w);
    /* Optional: the caller writes no more to w. A backend may then finish
     * sending the file in the background, so that the caller can write
     * other files before it calls put_commit (or put_abort) on this one; a
     * failure meanwhile is put_commit's result. */
    void (*put_end)(void *w);

    /* Calls cb for every file below prefix ("" for all), in no set order. */
    int (*list)(void *st, const char *prefix, ss_cold_list_cb cb, void *ctx);
    /* Reads a whole file; SS_EOF when it does not exist. */
    int (*read)(void *st, const char *path, ss_buf *out);
    /* Streaming reads, for files too large to hold: get_open opens one
     * (SS_EOF when it does not exist) and gives its size; get_range reads up
     * to cap bytes from offset off (*got is 0 only at the end); get_close
     * ends it. */
    int (*get_open)(void *st, const char *path, void **r, int64_t *size);
    int (*get_range)(void *r, int64_t off, void *buf, size_t cap, size_t *got);
    void (*get_close)(void *r);
    /* Removes the temporary files of writers that are gone (a crash's
     * leftovers). The archiver calls it before it writes; a handle does the
     * work once, later calls return at once. */
    void (*sweep)(void *st);
    /* Deletes a file; deleting a missing file is not an error. */
    int (*remove)(void *st, const char *path);
    /* A description for messages and manifests ("file:/abs/path"). */
    const char *(*describe)(void *st);
} ss_cold_ops;

typedef struct ss_cold {
    const ss_cold_ops *ops;
    void *st;
} ss_cold;

/* Opens the cold store named by uri: a path, file:PATH or [s]webhdfs://. */
int ss_cold_open(const char *uri, ss_cold *cold, char *err, size_t errlen);
void ss_cold_close(ss_cold *cold);

/* Writes a whole buffer as one file, atomically. */
int ss_cold_put(ss_cold *cold, const char *path, const void *p, size_t n);

/* Temporary names of writes in progress, shared by the backends: a file is
 * written as FINAL.tmp-write.PID and renamed into place. Lists never show
 * them; the sweep callback removes the ones whose writer is gone. */
#define SS_COLD_TMP_SUFFIX ".tmp-write"

/* FINAL.tmp-write.PID for this process (ss_malloc'd). */
char *ss_cold_tmp_name(const char *final);
/* Whether a file name is a temporary one. */
int ss_cold_is_tmp(const char *name);
/* Whether a temporary name's writer (the process of its PID on this
 * machine) is gone, so that the file is a leftover of a crash. */
int ss_cold_tmp_stale(const char *name);

extern const ss_cold_ops ss_cold_localfs_ops;
extern const ss_cold_ops ss_cold_webhdfs_ops;  /* src/cold/webhdfs.c */
extern const ss_cold_ops ss_cold_swebhdfs_ops; /* the same over https */

#endif

/* The cold store: files of archived events, laid out as docs/lifecycle.md
 * describes. Backends are const ss_cold_ops chosen by URI: a plain path or
 * file:PATH (a local directory); webhdfs://host:port/path comes next. Paths
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

    /* Calls cb for every file below prefix ("" for all), in no set order. */
    int (*list)(void *st, const char *prefix, ss_cold_list_cb cb, void *ctx);
    /* Reads a whole file; SS_EOF when it does not exist. */
    int (*read)(void *st, const char *path, ss_buf *out);
    /* Deletes a file; deleting a missing file is not an error. */
    int (*remove)(void *st, const char *path);
    /* A description for messages and manifests ("file:/abs/path"). */
    const char *(*describe)(void *st);
} ss_cold_ops;

typedef struct ss_cold {
    const ss_cold_ops *ops;
    void *st;
} ss_cold;

/* Opens the cold store named by uri: a path or file:PATH. */
int ss_cold_open(const char *uri, ss_cold *cold, char *err, size_t errlen);
void ss_cold_close(ss_cold *cold);

/* Writes a whole buffer as one file, atomically. */
int ss_cold_put(ss_cold *cold, const char *path, const void *p, size_t n);

extern const ss_cold_ops ss_cold_localfs_ops;

#endif

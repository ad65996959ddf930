#include "cold/cold.h"

#include <stdio.h>
#include <string.h>

#include "common/status.h"

static const ss_cold_ops *const registry[] = {
    &ss_cold_localfs_ops,
};

int ss_cold_open(const char *uri, ss_cold *cold, char *err, size_t errlen)
{
    cold->ops = NULL;
    cold->st = NULL;
    const ss_cold_ops *ops = NULL;
    const char *target = uri;
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++) {
        size_t n = strlen(registry[i]->scheme);
        if (strncmp(uri, registry[i]->scheme, n) == 0) {
            ops = registry[i];
            target = uri + n;
        }
    }
    if (!ops && !strstr(uri, "://"))
        ops = &ss_cold_localfs_ops;
    if (!ops) {
        snprintf(err, errlen, "unsupported cold store '%s': use a directory path or file:PATH",
                 uri);
        return SS_EINVAL;
    }
    int rc = ops->open(target, &cold->st, err, errlen);
    if (rc == SS_OK)
        cold->ops = ops;
    return rc;
}

void ss_cold_close(ss_cold *cold)
{
    if (cold && cold->ops)
        cold->ops->close(cold->st);
    if (cold) {
        cold->ops = NULL;
        cold->st = NULL;
    }
}

int ss_cold_put(ss_cold *cold, const char *path, const void *p, size_t n)
{
    void *w;
    int rc = cold->ops->put_open(cold->st, path, &w);
    if (rc)
        return rc;
    rc = cold->ops->put_write(w, p, n);
    if (rc) {
        cold->ops->put_abort(w);
        return rc;
    }
    return cold->ops->put_commit(w);
}

#define _POSIX_C_SOURCE 200809L
#include "cold/cold.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/mem.h"
#include "common/status.h"

static const ss_cold_ops *const registry[] = {
    &ss_cold_localfs_ops,
    &ss_cold_webhdfs_ops,
    &ss_cold_swebhdfs_ops,
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
        snprintf(err, errlen,
                 "unsupported cold store '%s': use a directory path, file:PATH, "
                 "webhdfs://HOST:PORT/PATH or swebhdfs://HOST:PORT/PATH",
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

char *ss_cold_tmp_name(const char *final)
{
    size_t n = strlen(final) + sizeof SS_COLD_TMP_SUFFIX + 24;
    char *s = ss_malloc(n);
    snprintf(s, n, "%s%s.%ld", final, SS_COLD_TMP_SUFFIX, (long)getpid());
    return s;
}

int ss_cold_is_tmp(const char *name)
{
    return strstr(name, SS_COLD_TMP_SUFFIX) != NULL;
}

int ss_cold_tmp_stale(const char *name)
{
    const char *p = strstr(name, SS_COLD_TMP_SUFFIX ".");
    if (!p)
        return ss_cold_is_tmp(name);
    char *end;
    long pid = strtol(p + sizeof SS_COLD_TMP_SUFFIX, &end, 10);
    if (*end || pid <= 0)
        return 1;
    return !(kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

#define _POSIX_C_SOURCE 200809L
#include "common/fsspace.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

static void human(uint64_t bytes, char *out, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof unit / sizeof unit[0]) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%llu B", (unsigned long long)bytes);
    else
        snprintf(out, cap, "%.1f %s", v, unit[u]);
}

void ss_fs_space(const char *path, char *out, size_t cap)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path && *path ? path : ".");
    struct statvfs sv;
    /* A file that is not there yet: its directory, or the nearest one up. */
    while (statvfs(dir, &sv) != 0) {
        char *slash = strrchr(dir, '/');
        if (!slash || (errno != ENOENT && errno != ENOTDIR)) {
            snprintf(out, cap, "free space unknown");
            return;
        }
        if (slash == dir)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
    char avail[32], total[32];
    human((uint64_t)sv.f_bavail * sv.f_frsize, avail, sizeof avail);
    human((uint64_t)sv.f_blocks * sv.f_frsize, total, sizeof total);
    snprintf(out, cap, "%s free of %s", avail, total);
}

int ss_errno_is_full(int err)
{
    return err == ENOSPC || err == EDQUOT;
}

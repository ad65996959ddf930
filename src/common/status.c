#include "common/status.h"

#include <stdio.h>

const char *ss_status_str(int rc)
{
    switch (rc) {
    case SS_OK:
        return "ok";
    case SS_AGAIN:
        return "try again";
    case SS_EOF:
        return "end of input";
    case SS_EINVAL:
        return "invalid argument";
    case SS_EIO:
        return "I/O error";
    case SS_ECORRUPT:
        return "corrupt data";
    case SS_ENOTSUP:
        return "not supported";
    case SS_EFENCED:
        return "another process has taken over the input";
    default:
        return "error";
    }
}

void ss_status_vfail(int *failed, char *err, size_t errlen, const char *prefix, const char *fmt,
                     va_list ap)
{
    if (*failed)
        return;
    *failed = 1;
    int n = snprintf(err, errlen, "%s", prefix);
    if (n >= 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

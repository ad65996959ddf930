#include "common/status.h"

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

/* Status codes shared by every stage.
 *
 * Functions that can fail return an int from this enum: 0 is success, negative
 * values are failures. SS_AGAIN is not a failure but a request to retry later;
 * the caller, never the backend, decides how long to back off. */
#ifndef SS_STATUS_H
#define SS_STATUS_H

#include <stdarg.h>
#include <stddef.h>

enum ss_status {
    SS_OK = 0,
    SS_AGAIN = 1,     /* transient: retry later (queue full, server away) */
    SS_EOF = 2,       /* end of input reached */
    SS_ERR = -1,      /* unspecified failure; a message has been logged */
    SS_EINVAL = -2,   /* invalid argument, flag, config or profile */
    SS_EIO = -3,      /* I/O failure on a file, socket or store */
    SS_ECORRUPT = -4, /* stored data does not match what was written */
    SS_ENOTSUP = -5,  /* the backend does not offer this operation */
    SS_EFENCED = -6,  /* another process has taken over this input's partition */
};

/* Exit codes of the shopstream binary. */
enum ss_exit {
    SS_EXIT_OK = 0,
    SS_EXIT_FAIL = 1,  /* runtime failure */
    SS_EXIT_USAGE = 2, /* bad flag, config or profile: the message says which */
};

/* A short human name for a status code, e.g. "invalid argument". */
const char *ss_status_str(int rc);

/* For parsers whose first error wins: unless *failed is set, sets it and
 * writes prefix and the formatted message into err (cut to errlen bytes). */
void ss_status_vfail(int *failed, char *err, size_t errlen, const char *prefix, const char *fmt,
                     va_list ap) __attribute__((format(printf, 5, 0)));

#endif

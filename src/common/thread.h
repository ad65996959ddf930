/* Names the calling thread (at most 15 bytes), as `top -H`, `ps -L`, perf
 * and gdb show it: each of shopstream's threads says what it does. */
#ifndef SS_COMMON_THREAD_H
#define SS_COMMON_THREAD_H

#include <sys/prctl.h>

static inline void ss_thread_name(const char *name)
{
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

#endif

#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int ss_log_level = SS_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int ss_log_set_level(const char *name)
{
    for (int i = 0; i < (int)(sizeof level_names / sizeof level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            ss_log_level = i;
            return 0;
        }
    }
    return -1;
}

void ss_log_write(int level, const char *comp, const char *fmt, ...)
{
    char line[2048];
    int n = snprintf(line, sizeof line, "shopstream: [%s] %s", comp,
                     level == SS_LOG_ERROR  ? "error: "
                     : level == SS_LOG_WARN ? "warning: "
                                            : "");
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write per line keeps lines from several threads whole. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

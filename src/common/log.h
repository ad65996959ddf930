/* Logging to stderr with a level and a component prefix: "[gen] message".
 *
 * Data goes to stdout, logs to stderr. The level is checked before anything
 * is formatted, so a disabled debug line costs one comparison.
 * @locality any thread; each line is written with one write(2). */
#ifndef SS_LOG_H
#define SS_LOG_H

enum ss_log_level { SS_LOG_ERROR = 0, SS_LOG_WARN, SS_LOG_INFO, SS_LOG_DEBUG };

extern int ss_log_level;

/* Sets the level from a name ("error", "warn", "info", "debug"); returns 0,
 * or -1 if the name is unknown. */
int ss_log_set_level(const char *name);

void ss_log_write(int level, const char *comp, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define SS_LOG(level, comp, ...)                                                                   \
    do {                                                                                           \
        if ((level) <= ss_log_level)                                                               \
            ss_log_write((level), (comp), __VA_ARGS__);                                            \
    } while (0)

#define SS_ERROR(comp, ...) SS_LOG(SS_LOG_ERROR, comp, __VA_ARGS__)
#define SS_WARN(comp, ...)  SS_LOG(SS_LOG_WARN, comp, __VA_ARGS__)
#define SS_INFO(comp, ...)  SS_LOG(SS_LOG_INFO, comp, __VA_ARGS__)
#define SS_DEBUG(comp, ...) SS_LOG(SS_LOG_DEBUG, comp, __VA_ARGS__)

#endif

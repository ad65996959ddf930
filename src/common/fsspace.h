/* The free space of the filesystem that holds a path, for the messages of a
 * full disk. */
#ifndef SS_FSSPACE_H
#define SS_FSSPACE_H

#include <stddef.h>

/* Writes "1.5 MiB free of 12.0 MiB" for the filesystem of path (of its
 * nearest existing parent while path does not exist), or "free space
 * unknown". */
void ss_fs_space(const char *path, char *out, size_t cap);

/* Whether errno says a write found no room (ENOSPC, EDQUOT). */
int ss_errno_is_full(int err);

#endif

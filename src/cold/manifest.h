/* Archives checked against their manifests (src/cold/manifest.c), for the
 * archiver's recovery and for archive --verify and --status (whose entry
 * points are in cold/archiver.h). */
#ifndef SS_COLD_MANIFEST_H
#define SS_COLD_MANIFEST_H

#include <jansson.h>

#include "cold/cold.h"
#include "common/buf.h"

/* The tables an archive holds, in the order of its manifest: the fact
 * tables (the first SS_ARCHIVE_NFACTS, whose rows are events), then the
 * minute KPIs of the archived minutes; and the folder of each in the cold
 * layout (docs/lifecycle.md). */
#define SS_ARCHIVE_NFACTS  3
#define SS_ARCHIVE_NTABLES 4
extern const char *const ss_archive_tables[SS_ARCHIVE_NTABLES];
extern const char *const ss_archive_dirs[SS_ARCHIVE_NTABLES];

/* Checks the files of archive id against its manifest m (presence, bytes,
 * CRC-32, records; the keys file too): appends each problem to out (when not
 * NULL) and returns how many there are. */
int ss_archive_check_files(ss_cold *cold, const char *id, json_t *m, ss_buf *out);

#endif

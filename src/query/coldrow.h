/* One line of a cold file read into the values of its table's columns.
 *
 * The archiver writes each row as a flat JSON object. A line is read with
 * the hand-written scanner the engine's decoder uses (event/jscan.h): a
 * generic JSON DOM cost about 6 µs a line and made cold scans many times
 * slower than hot ones. The whole line is still checked as JSON, UTF-8
 * included. Keys that are not columns are skipped; a key given twice keeps
 * its last value, as a JSON DOM would.
 * @locality one thread per scratch buffer. */
#ifndef SS_QUERY_COLDROW_H
#define SS_QUERY_COLDROW_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "event/event.h"

typedef enum ss_coldval_type {
    SS_CV_ABSENT,
    SS_CV_NULL,
    SS_CV_STRING, /* s: the unescaped string */
    SS_CV_INT,    /* s: the number's text, without fraction or exponent */
    SS_CV_NUMBER, /* s: the number's text, with a fraction or an exponent */
    SS_CV_BOOL,
    SS_CV_NESTED, /* an object or an array */
} ss_coldval_type;

typedef struct ss_coldval {
    ss_str s;
    ss_coldval_type type;
} ss_coldval;

/* What a line that cannot be read is. */
enum { SS_COLDROW_OK, SS_COLDROW_BAD_JSON, SS_COLDROW_NOT_OBJECT };

/* Reads line[0..len) into out[0..ncols), out[i] for the key names[i]. The
 * strings point into line or into scratch, until the next call with the
 * same scratch. On SS_COLDROW_BAD_JSON, reason says what is wrong. */
int ss_coldrow_parse(const char *line, size_t len, const ss_str *names, int ncols, ss_coldval *out,
                     ss_buf *scratch, char *reason, size_t rlen);

#endif

/* Decoding and validation of one JSON Lines record into an ss_event.
 *
 * The decoder is hand-written for the flat objects of the data contract: it
 * validates UTF-8, parses, checks every field's type and range and that the
 * money adds up, at over a million lines a second (bench/engine compares it
 * with jansson, which is several times slower and would be the bottleneck).
 * Unknown fields are ignored, so producers can add fields without breaking
 * consumers; every contract field is checked.
 * @locality one thread per ss_decoder. */
#ifndef SS_ENGINE_DECODE_H
#define SS_ENGINE_DECODE_H

#include <stddef.h>

#include "common/buf.h"
#include "event/event.h"

#define SS_LINE_MAX (1u << 20) /* longest accepted record, bytes */

typedef struct ss_decoder {
    ss_buf scratch; /* unescaped strings of the last decoded line */
} ss_decoder;

void ss_decoder_init(ss_decoder *d);
void ss_decoder_free(ss_decoder *d);

/* Decodes line[0..len) (no newline). On success returns SS_OK and fills ev,
 * whose strings point into line or into the decoder's scratch space and stay
 * valid until the next call. On failure returns SS_EINVAL and writes a reason
 * for a person into reason (e.g. "missing field 'amount'"). */
int ss_event_decode(ss_decoder *d, const char *line, size_t len, ss_event *ev, char *reason,
                    size_t rlen);

#endif

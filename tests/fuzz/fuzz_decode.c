/* libFuzzer target: the event decoder, the first thing outside input meets.
 * Any bytes must give an event or a reason, never a crash or a read outside
 * the record; a decoded event's money must add up (the decoder's promise). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "engine/decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ss_decoder d;
    static int ready;
    if (!ready) {
        ss_decoder_init(&d);
        ready = 1;
    }
    /* An exact-size copy, so that ASan sees any read past the record. */
    char *line = malloc(size ? size : 1);
    memcpy(line, data, size);
    ss_event ev;
    char reason[256];
    if (ss_event_decode(&d, line, size, &ev, reason, sizeof reason) == SS_OK &&
        ev.type == SS_EV_ORDER) {
        const ss_order *o = &ev.u.order;
        if (o->amount != o->unit_price * o->quantity ||
            o->total_price != o->amount - o->discount + o->tax + o->shipping)
            abort();
    }
    free(line);
    return 0;
}

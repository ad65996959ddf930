/* libFuzzer target: the profile loader (JSON override merged over the
 * built-in profile, then validated). Any document must load or be refused
 * with a message, never crash; a loaded profile must be usable. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"
#include "gen/gen.h"
#include "gen/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    ss_profile *p = NULL;
    char err[1024];
    if (ss_profile_load_text(text, "fuzz.json", &p, err, sizeof err) == SS_OK) {
        /* A few events from it must come out without trouble. */
        ss_gen_config cfg = {.seed = 1, .start_ms = 1793577600000LL, .count = 3};
        ss_gen *g = ss_gen_new(p, &cfg);
        const ss_event *ev;
        for (int i = 0; i < 50 && ss_gen_next(g, &ev) == SS_OK; i++)
            ;
        ss_gen_free(g);
    } else if (p != NULL || err[0] == '\0') {
        abort();
    }
    ss_profile_free(p);
    free(text);
    return 0;
}

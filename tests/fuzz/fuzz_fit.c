/* libFuzzer target: fit's sample reader (CSV or JSON Lines) and the learning
 * that follows it. Any input must be read or refused with a message, never
 * crash; a profile learned from what was read must load. */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/status.h"
#include "gen/fit.h"
#include "gen/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen refuses an empty buffer; tests/cli covers empty files */
    FILE *fp = fmemopen((void *)data, size, "rb");
    if (!fp)
        return 0;
    ss_fit_sample *s = NULL;
    char err[1024];
    err[0] = '\0';
    if (ss_fit_sample_read_stream(fp, "fuzz", NULL, &s, err, sizeof err) == SS_OK) {
        ss_fit_result *r = NULL;
        if (ss_fit_learn(s, &r, err, sizeof err) != SS_OK)
            abort();
        ss_profile *p = NULL;
        if (ss_profile_load_text(ss_fit_result_json(r), "learned", &p, err, sizeof err) != SS_OK)
            abort();
        ss_profile_free(p);
        ss_fit_result_free(r);
    } else if (s != NULL || err[0] == '\0') {
        abort();
    }
    ss_fit_sample_free(s);
    fclose(fp);
    return 0;
}

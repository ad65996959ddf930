/* Runs an engine over a consumer with two threads: a reader that polls the
 * input and decodes records into batches, and the caller's thread, which
 * applies them to the engine and the store. Decoding thus overlaps with the
 * store's work; records are applied strictly in input order, so results are
 * those of ss_engine_process over the same input. */
#ifndef SS_ENGINE_PIPELINE_H
#define SS_ENGINE_PIPELINE_H

#include "bus/bus.h"
#include "engine/engine.h"

typedef struct ss_pipeline_hooks {
    /* Called when the input is idle, and every few thousand records; a
     * non-zero return stops the run. May be NULL. */
    int (*idle)(void *ctx);
    void *ctx;
    volatile int *stop; /* stop when it becomes non-zero */
    int follow;         /* at the end of a file, wait for more */
    /* While non-zero (the archiver of the same process is behind), the
     * engine commits and waits before it reads on. May be NULL. */
    volatile int *hold;
} ss_pipeline_hooks;

/* The same on the caller's thread alone: poll, decode, apply. */
int ss_engine_run(ss_engine *e, ss_bus_consumer *in, const ss_pipeline_hooks *hooks);

/* Returns SS_OK at the end of the input (or on stop) after a final commit,
 * SS_EIO when the input fails, or the store's failure status. */
int ss_engine_run_pipeline(ss_engine *e, ss_bus_consumer *in, const ss_pipeline_hooks *hooks);

#endif

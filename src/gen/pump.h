/* Drives a generator into a bus: as fast as possible, or paced so that
 * simulated time runs `speed` times faster than the wall clock. */
#ifndef SS_GEN_PUMP_H
#define SS_GEN_PUMP_H

#include "bus/bus.h"
#include "gen/gen.h"

/* Runs until the generator ends or *stop becomes non-zero. speed <= 0 means
 * as fast as possible. Returns SS_OK, or the bus's failure status. */
int ss_gen_pump(ss_gen *g, ss_bus_producer *bus, int64_t start_ms, double speed,
                volatile int *stop);

#endif

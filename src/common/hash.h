/* A fast 64-bit hash of short strings (ids, dimension values): eight bytes
 * per step, then a final avalanche (the constants are from splitmix64). Not
 * for keys an adversary chooses. */
#ifndef SS_HASH_H
#define SS_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t ss_hash_bytes(const char *p, size_t n, uint64_t seed);

#endif

/* The stream engine: decodes and validates records, deduplicates them by
 * event_id, assigns them to one-minute event-time windows under a watermark,
 * keeps KPIs per window and dimension, and writes everything to the hot store
 * in transactions that also carry the input position and the engine's state.
 *
 * Exactness: a batch's facts, KPI rows, watermark and input position commit
 * together. After a crash the engine reloads the watermark, the open windows
 * and the positions, and the input resumes at the committed position, so the
 * result equals an uninterrupted run's. Deduplication is by the store's
 * unique event_id, so it is exact for every id the store has ever held;
 * memory holds only open windows and bounded caches.
 * @locality one thread per engine. */
#ifndef SS_ENGINE_H
#define SS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "bus/bus.h"
#include "engine/decode.h"
#include "gen/profile.h"
#include "hot/hot.h"

typedef struct ss_engine_config {
    int64_t lateness_ms;      /* watermark = latest event time - lateness */
    int64_t commit_ms;        /* commit at least this often while data flows, from the end of
                                 one commit to the next; four times the last commit's
                                 duration when that is more */
    uint32_t commit_records;  /* ... or after this many records */
    const ss_profile *places; /* reference data for cities and countries; may be NULL */
    /* What archived events the cold store holds; NULL when there is none.
     * Deduplication and order attribution consult it on a hot-store miss. */
    struct ss_cold_index *cold;
    /* The input, told of each committed position and rejected record (its
     * committed and rejected ops, when it has them); may be NULL. */
    const ss_bus_consumer *input;
} ss_engine_config;

typedef struct ss_engine_stats {
    ss_hot_state s; /* committed counters and watermark (plus pending) */
    uint64_t commits;
    int64_t last_commit_ms; /* wall clock */
    uint32_t open_windows;
} ss_engine_stats;

typedef struct ss_engine ss_engine;

/* Opens the engine on a store and loads its committed state. */
int ss_engine_open(ss_hot *hot, const ss_engine_config *cfg, ss_engine **out, char *err,
                   size_t errlen);
/* Frees the engine without committing (a crash-equivalent stop). */
void ss_engine_free(ss_engine *e);

/* The committed position of a source, or -1 if none. */
int64_t ss_engine_position(const ss_engine *e, const char *source);

/* A decoded input record: the message, and its event or why it was refused. */
typedef enum ss_record_status {
    SS_RECORD_EVENT = 0,
    SS_RECORD_REJECTED = 1,
    SS_RECORD_BLANK = 2,
} ss_record_status;

typedef struct ss_record {
    ss_bus_msg msg;
    int status;       /* ss_record_status */
    ss_event ev;      /* when SS_RECORD_EVENT */
    char reason[256]; /* when SS_RECORD_REJECTED */
} ss_record;

/* Decodes and validates a message into rec; depends on nothing but the
 * decoder, so any thread may call it. The event's strings point into the
 * message data and the decoder's scratch space. Returns rec->status. */
int ss_engine_decode(ss_decoder *d, const ss_bus_msg *msg, ss_record *rec);

/* Applies a decoded record: deduplication, watermark, windows, store.
 * Errors returned are store failures; a bad record is never an error (it is
 * recorded as rejected). @locality the engine's thread. */
int ss_engine_apply(ss_engine *e, const ss_record *rec);

/* The engine's own decoder and record, for a caller that decodes and
 * applies on the engine's thread. */
ss_record *ss_engine_scratch_record(ss_engine *e);
ss_decoder *ss_engine_decoder(ss_engine *e);

/* Decodes and applies one input record. */
int ss_engine_process(ss_engine *e, const ss_bus_msg *msg);

/* Commits when due (or always when force): windows the watermark has passed
 * become final, dirty KPI rows, state and positions are written. Called
 * after each record, it reads the clock only every few hundred records. */
int ss_engine_tick(ss_engine *e, int force);

/* Shards: a record's shard is the input partition it came from (0 for
 * files and the in-process bus). The engine claims a shard in the store when
 * its first record arrives, or earlier through ss_engine_claim (a partition
 * assigned by a consumer group, which then holds the watermark back until
 * it has data); from then on no other process can commit that shard's state.
 * Claiming loads the shard's committed state, open windows and positions.
 * ss_engine_release commits, then forgets the shard: its partition has moved
 * to another consumer. @locality the engine's thread. */
int ss_engine_claim(ss_engine *e, int shard);
int ss_engine_release(ss_engine *e, int shard);

/* Milliseconds until a commit of the records applied so far is due (0: due
 * now), or -1 when nothing awaits a commit. For a caller that waits for more
 * input: commit_ms holds while the input is slow, not only while records
 * arrive to call ss_engine_tick. @locality the engine's thread. */
int64_t ss_engine_commit_due_ms(const ss_engine *e);

/* Totals over the shards this engine knows: counters summed, the watermark
 * the lowest. */
void ss_engine_get_stats(const ss_engine *e, ss_engine_stats *st);

#endif

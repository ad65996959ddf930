#define _POSIX_C_SOURCE 200809L
#include "cold/archiver.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libdeflate.h>
#include <stdarg.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <zlib.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/rng.h"
#include "common/status.h"
#include "common/timeutil.h"
#include "cold/index.h"
#include "cold/manifest.h"

#ifdef SS_FAULT_POINTS
void ss_fault_point(const char *name)
{
    const char *want = getenv("SHOPSTREAM_FAULT");
    if (want && !strcmp(want, name)) {
        SS_WARN("archive", "fault point '%s': killing the process", name);
        raise(SIGKILL);
    }
}
#endif

/* ---- writing one archive ---- */

typedef struct part {
    void *w; /* open cold writer, or NULL */
    char path[256];
    int64_t hour; /* the hour (ms) the file holds */
    int64_t records, bytes, min_ts, max_ts;
    uLong crc;
    z_stream z; /* when compressing */
    int zinit;
} part;

/* Files written but not yet committed: with a backend that finishes files in
 * the background (put_end), this many are on their way at once, and the
 * latency of closing a file in HDFS overlaps the writing of the next ones. */
#define MAX_PENDING 8

typedef struct run {
    ss_cold *cold;
    const ss_archiver_config *cfg;
    const char *id;
    int dims; /* writing a dimension snapshot: one file, no time range */
    part cur;
    json_t *files; /* of the current table */
    int64_t t_records, t_min, t_max;
    int rc;
    void *pending[MAX_PENDING]; /* in the order they were written */
    int npending;
    unsigned char zbuf[1 << 16];
} run;

/* Commits the oldest pending file. */
static int commit_oldest(run *r)
{
    void *w = r->pending[0];
    r->npending--;
    memmove(r->pending, r->pending + 1, (size_t)r->npending * sizeof r->pending[0]);
    return r->cold->ops->put_commit(w);
}

/* Commits every pending file, in order; after a failure the rest are
 * discarded. */
static int commit_pending(run *r)
{
    int rc = SS_OK;
    while (r->npending > 0 && rc == SS_OK)
        rc = commit_oldest(r);
    while (r->npending > 0)
        r->cold->ops->put_abort(r->pending[--r->npending]);
    return rc;
}

static int part_emit(run *r, const void *p, size_t n)
{
    part *pt = &r->cur;
    pt->crc = libdeflate_crc32((uint32_t)pt->crc, p, n);
    pt->bytes += (int64_t)n;
    return r->cold->ops->put_write(pt->w, p, n);
}

static int part_write(run *r, const void *p, size_t n, int flush)
{
    part *pt = &r->cur;
    if (!r->cfg->gzip)
        return part_emit(r, p, n);
    pt->z.next_in = (Bytef *)(uintptr_t)p;
    pt->z.avail_in = (uInt)n;
    do {
        pt->z.next_out = r->zbuf;
        pt->z.avail_out = sizeof r->zbuf;
        deflate(&pt->z, flush ? Z_FINISH : Z_NO_FLUSH);
        size_t have = sizeof r->zbuf - pt->z.avail_out;
        if (have) {
            int rc = part_emit(r, r->zbuf, have);
            if (rc)
                return rc;
        }
    } while (pt->z.avail_out == 0);
    return SS_OK;
}

static void iso(int64_t ms, char out[SS_ISO_LEN + 1])
{
    ss_time_format_iso(ms, out);
    out[SS_ISO_LEN] = '\0';
}

static int part_close(run *r)
{
    part *pt = &r->cur;
    if (!pt->w)
        return SS_OK;
    int rc = SS_OK;
    if (r->cfg->gzip) {
        rc = part_write(r, "", 0, 1);
        deflateEnd(&pt->z);
        pt->zinit = 0;
    }
    /* put_commit releases the writer whatever it returns; on a compression
     * failure the writer is still open and must be discarded. A backend that
     * finishes files in the background gets the next ones meanwhile. */
    const ss_cold_ops *ops = r->cold->ops;
    if (rc) {
        ops->put_abort(pt->w);
    } else if (ops->put_end) {
        ops->put_end(pt->w);
        if (r->npending == MAX_PENDING)
            rc = commit_oldest(r);
        r->pending[r->npending++] = pt->w;
    } else {
        rc = ops->put_commit(pt->w);
    }
    pt->w = NULL;
    if (rc)
        return rc;
    char a[SS_ISO_LEN + 1], b[SS_ISO_LEN + 1], crc[16];
    iso(pt->min_ts, a);
    iso(pt->max_ts, b);
    snprintf(crc, sizeof crc, "%08lx", (unsigned long)pt->crc);
    if (r->dims) {
        json_array_append_new(r->files, json_pack("{s:s, s:I, s:I, s:s}", "path", pt->path,
                                                  "records", (json_int_t)pt->records, "bytes",
                                                  (json_int_t)pt->bytes, "crc32", crc));
        return SS_OK;
    }
    json_array_append_new(r->files,
                          json_pack("{s:s, s:I, s:I, s:s, s:s, s:s}", "path", pt->path, "records",
                                    (json_int_t)pt->records, "bytes", (json_int_t)pt->bytes,
                                    "crc32", crc, "min_ts", a, "max_ts", b));
    return SS_OK;
}

static void part_abort(run *r)
{
    part *pt = &r->cur;
    while (r->npending > 0)
        r->cold->ops->put_abort(r->pending[--r->npending]);
    if (pt->zinit)
        deflateEnd(&pt->z);
    pt->zinit = 0;
    if (pt->w)
        r->cold->ops->put_abort(pt->w);
    pt->w = NULL;
}

/* Starts the next file: a table's part of the hour, or a dimension's
 * snapshot (docs/lifecycle.md). */
static int part_open(run *r, const char *table, int64_t ts)
{
    part *pt = &r->cur;
    int64_t hour = ss_time_floor(ts, SS_MS_PER_HOUR);
    int rc = part_close(r);
    if (rc)
        return rc;
    memset(pt, 0, sizeof *pt);
    const char *gz = r->cfg->gzip ? ".gz" : "";
    if (r->dims) {
        snprintf(pt->path, sizeof pt->path, "dims/%s/part-%s.jsonl%s", table, r->id, gz);
    } else {
        char day[SS_ISO_LEN + 1];
        iso(hour, day);
        const char *dir = table;
        for (int t = 0; t < SS_ARCHIVE_NTABLES; t++)
            if (!strcmp(table, ss_archive_tables[t]))
                dir = ss_archive_dirs[t];
        snprintf(pt->path, sizeof pt->path, "%s/dt=%.10s/hour=%.2s/part-%s.jsonl%s", dir, day,
                 day + 11, r->id, gz);
    }
    pt->hour = hour;
    pt->crc = 0;
    pt->min_ts = ts;
    if (r->cfg->gzip) {
        /* windowBits 15 + 16: a gzip stream that gzip and Spark read. */
        deflateInit2(&pt->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        pt->zinit = 1;
    }
    return r->cold->ops->put_open(r->cold->st, pt->path, &pt->w);
}

static int on_row(void *ctx, const char *table, int64_t ts, const char *json, size_t len)
{
    run *r = ctx;
    part *pt = &r->cur;
    if (!pt->w || (!r->dims && ss_time_floor(ts, SS_MS_PER_HOUR) != pt->hour)) {
        int rc = part_open(r, table, ts);
        if (rc)
            return r->rc = rc;
    }
    int rc = part_write(r, json, len, 0);
    rc = rc ? rc : part_write(r, "\n", 1, 0);
    if (rc)
        return r->rc = rc;
    pt->records++;
    pt->max_ts = ts;
    if (r->t_records++ == 0)
        r->t_min = ts;
    r->t_max = ts;
    return SS_OK;
}

/* Removes every part file of an archive and its manifest. */
typedef struct sweep_ctx {
    ss_cold *cold;
    char needle[64];
    int rc;
} sweep_ctx;

static int sweep_one(void *ctx, const char *path, int64_t bytes)
{
    sweep_ctx *s = ctx;
    (void)bytes;
    if (strstr(path, s->needle)) {
        int rc = s->cold->ops->remove(s->cold->st, path);
        if (rc)
            s->rc = rc;
    }
    return SS_OK;
}

/* Removes an archive's part files (dimension snapshots among them), keys file
 * and manifest, then forgets its record. When the cold store cannot be changed now, returns
 * SS_AGAIN and leaves the record `writing`, so that a later run tries again. */
static int roll_back(ss_hot *hot, ss_cold *cold, const char *id)
{
    sweep_ctx s = {.cold = cold};
    snprintf(s.needle, sizeof s.needle, "part-%s.", id);
    int rc = cold->ops->list(cold->st, "", sweep_one, &s);
    char manifest[128], keys[128];
    snprintf(manifest, sizeof manifest, "_archives/%s.json", id);
    snprintf(keys, sizeof keys, "_archives/%s.keys", id);
    rc = rc ? rc : s.rc;
    rc = rc ? rc : cold->ops->remove(cold->st, keys);
    rc = rc ? rc : cold->ops->remove(cold->st, manifest);
    if (rc)
        return SS_AGAIN;
    return hot->ops->archive_forget(hot->st, id);
}

/* ---- recovery ---- */

typedef struct pending_run {
    char id[64];
    int64_t cutoff;
} pending_run;

typedef struct list_ctx {
    pending_run *v;
    size_t n, cap;
} list_ctx;

static int collect_writing(void *ctx, const char *id, const char *state, int64_t cutoff,
                           const char *created_at, const char *manifest)
{
    list_ctx *l = ctx;
    (void)created_at;
    (void)manifest;
    if (strcmp(state, "writing") != 0)
        return SS_OK;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 8;
        l->v = ss_realloc(l->v, l->cap * sizeof *l->v);
    }
    snprintf(l->v[l->n].id, sizeof l->v[l->n].id, "%s", id);
    l->v[l->n++].cutoff = cutoff;
    return SS_OK;
}

int ss_archiver_recover(ss_hot *hot, ss_cold *cold)
{
    cold->ops->sweep(cold->st);
    if (!hot->ops->archive_list)
        return SS_OK;
    list_ctx l = {0};
    int rc = hot->ops->archive_list(hot->st, collect_writing, &l);
    ss_buf b;
    ss_buf_init(&b, 4096);
    for (size_t i = 0; i < l.n && rc == SS_OK; i++) {
        const char *id = l.v[i].id;
        char path[128];
        snprintf(path, sizeof path, "_archives/%s.json", id);
        json_t *m = NULL;
        if (cold->ops->read(cold->st, path, &b) == SS_OK)
            m = json_loadb(b.data, b.len, 0, NULL);
        if (m && ss_archive_check_files(cold, id, m, NULL) == 0) {
            /* Everything reached the cold store: finish the run. */
            char *text = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
            rc = hot->ops->archive_commit(hot->st, id, l.v[i].cutoff, text);
            free(text);
            SS_INFO("archive", "recovered archive %s: finished (files and manifest complete)", id);
        } else {
            /* A cold store that cannot be changed now is SS_AGAIN: the
             * caller backs off and the next run tries again. */
            rc = roll_back(hot, cold, id);
            if (rc == SS_OK)
                SS_INFO("archive", "recovered archive %s: rolled back (%s)", id,
                        m ? "a file is incomplete" : "no complete manifest");
            else if (rc == SS_AGAIN)
                SS_WARN("archive",
                        "cannot roll back archive %s yet: the cold store cannot be changed now",
                        id);
        }
        json_decref(m);
    }
    ss_buf_free(&b);
    free(l.v);
    return rc;
}

/* ---- one run ---- */

static void new_id(char *out, size_t n, int64_t now)
{
    char t[SS_ISO_LEN + 1];
    iso(now, t);
    ss_rng rng;
    ss_rng_seed(&rng, ss_hash2((uint64_t)now, (uint64_t)getpid() ^ (uint64_t)(uintptr_t)out));
    /* 2026-11-24T15:01:02.345Z -> 20261124T150102345Z */
    snprintf(out, n, "%.4s%.2s%.2sT%.2s%.2s%.2s%.3sZ-%08x", t, t + 5, t + 8, t + 11, t + 14, t + 17,
             t + 20, (unsigned)(ss_rng_next(&rng) >> 32));
}

/* One archive: the oldest minutes estimated to bring the store under its
 * threshold. */
static void hold_set(const ss_archiver_config *cfg, int bit)
{
    if (cfg->hold)
        *cfg->hold |= bit;
}

static void hold_clear(const ss_archiver_config *cfg, int bit)
{
    if (cfg->hold)
        *cfg->hold &= ~bit;
}

static int archive_step(ss_hot *hot, ss_cold *cold, const ss_archiver_config *cfg,
                        int64_t freed_per_event, ss_archive_result *res)
{
    memset(res, 0, sizeof *res);
    int rc;
    int64_t size;
    rc = hot->ops->data_size(hot->st, &size);
    if (rc)
        return rc;
    res->hot_bytes_before = res->hot_bytes_after = size;
    /* Past twice the threshold, the engine waits until the archiver has
     * brought the store back under it. */
    if (cfg->hold && !(*cfg->hold & SS_HOLD_FULL) && size > 2 * cfg->max_bytes) {
        SS_INFO("archive",
                "the hot store holds %.1f MB, over twice its threshold: ingestion waits for "
                "the archiver",
                (double)size / 1e6);
        hold_set(cfg, SS_HOLD_FULL);
    } else if (cfg->hold && (*cfg->hold & SS_HOLD_FULL) && size <= cfg->max_bytes) {
        SS_INFO("archive", "the hot store holds %.1f MB: ingestion goes on", (double)size / 1e6);
        hold_clear(cfg, SS_HOLD_FULL);
    }
    if (size <= cfg->max_bytes)
        return SS_OK;

    /* Enough of the oldest whole minutes to bring the data under the
     * threshold, estimated from the average bytes per stored event, but never
     * past the watermark: behind it no new event can enter the range. */
    int64_t wm;
    rc = ss_hot_min_watermark(hot, &wm);
    if (rc || wm == INT64_MIN)
        return rc;
    int64_t oldest, total, nth;
    rc = hot->ops->nth_oldest(hot->st, 0, &oldest, &total);
    if (rc || total == 0)
        return rc;
    /* The first estimate counts all data; later ones use what a moved event
     * actually freed (dimensions stay hot). */
    int64_t per_event = freed_per_event > 0 ? freed_per_event : size / total + 1;
    int64_t n = (size - cfg->max_bytes) / per_event + 1;
    rc = hot->ops->nth_oldest(hot->st, n < total ? n : total - 1, &nth, &total);
    if (rc)
        return rc;
    int64_t cutoff = ss_time_floor(nth, SS_MS_PER_MIN) + SS_MS_PER_MIN;
    int64_t limit = ss_time_floor(wm, SS_MS_PER_MIN);
    if (cutoff > limit)
        cutoff = limit;
    if (cfg->kpi_floor && cutoff > atomic_load(cfg->kpi_floor)) {
        SS_DEBUG("archive", "holding back for the KPI sink, which has not written every minute "
                            "before the cutoff yet");
        cutoff = atomic_load(cfg->kpi_floor);
    }
    if (cutoff <= oldest) {
        SS_DEBUG("archive", "over the threshold, but every event is within the watermark");
        return SS_OK;
    }

    char id[48], created[SS_ISO_LEN + 1];
    int64_t now = ss_now_ms();
    new_id(id, sizeof id, now);
    iso(now, created);
    hold_set(cfg, SS_HOLD_WRITE);
    rc = hot->ops->archive_begin(hot->st, id, cutoff, created);
    hold_clear(cfg, SS_HOLD_WRITE);
    if (rc)
        return rc;

    json_t *m = json_object();
    char cut[SS_ISO_LEN + 1];
    iso(cutoff, cut);
    json_object_set_new(m, "archive_id", json_string(id));
    json_object_set_new(m, "archived_at", json_string(created));
    json_object_set_new(m, "source", json_string(cfg->source ? cfg->source : hot->ops->name));
    json_object_set_new(m, "cutoff", json_string(cut));
    json_t *tabs = json_object();
    json_object_set_new(m, "tables", tabs);
    run r = {.cold = cold, .cfg = cfg, .id = id};
    for (int t = 0; t < SS_ARCHIVE_NTABLES && rc == SS_OK; t++) {
        r.files = json_array();
        r.t_records = 0;
        r.rc = SS_OK;
        rc = hot->ops->scan_range(hot->st, ss_archive_tables[t], 0, cutoff, on_row, &r);
        if (rc == SS_OK && r.rc)
            rc = r.rc;
        else if (rc != SS_OK && r.rc)
            rc = r.rc; /* the cold store's failure, not the scan's */
        rc = rc ? rc : part_close(&r);
        json_t *tab = json_object();
        json_object_set_new(tab, "records", json_integer(r.t_records));
        if (r.t_records) {
            char a[SS_ISO_LEN + 1], b[SS_ISO_LEN + 1];
            iso(r.t_min, a);
            iso(r.t_max, b);
            json_object_set_new(tab, "min_ts", json_string(a));
            json_object_set_new(tab, "max_ts", json_string(b));
        }
        json_object_set_new(tab, "files", r.files);
        json_object_set_new(tabs, ss_archive_tables[t], tab);
        if (t < SS_ARCHIVE_NFACTS)
            res->records += r.t_records;
        else
            res->kpi_rows += r.t_records;
        size_t i;
        json_t *f;
        json_array_foreach(r.files, i, f) res->bytes +=
            json_integer_value(json_object_get(f, "bytes"));
    }
    /* The dimension rows these facts reference, one file per table, before
     * the manifest as the part files are (docs/lifecycle.md). */
    json_t *dims = json_object();
    json_object_set_new(m, "dims", dims);
    r.dims = 1;
    for (int t = 0; t < SS_HOT_NDIM_TABLES && rc == SS_OK; t++) {
        r.files = json_array();
        r.t_records = 0;
        r.rc = SS_OK;
        rc = hot->ops->scan_dims(hot->st, ss_hot_dim_tables[t], cutoff, on_row, &r);
        if (r.rc)
            rc = r.rc; /* the cold store's failure, not the scan's */
        rc = rc ? rc : part_close(&r);
        json_t *tab = json_object();
        json_object_set_new(tab, "records", json_integer(r.t_records));
        json_object_set_new(tab, "files", r.files);
        json_object_set_new(dims, ss_hot_dim_tables[t], tab);
    }
    ss_fault_point("after_dims");
    if (rc == SS_OK)
        rc = commit_pending(&r);
    part_abort(&r);
    if (rc == SS_OK) {
        char kpath[128], kcrc[16];
        int64_t kbytes = 0;
        unsigned long crc = 0;
        rc = ss_cold_keys_write(hot, cold, id, cutoff, kpath, sizeof kpath, &kbytes, &crc);
        snprintf(kcrc, sizeof kcrc, "%08lx", crc);
        if (rc == SS_OK)
            json_object_set_new(m, "keys",
                                json_pack("{s:s, s:I, s:s}", "path", kpath, "bytes",
                                          (json_int_t)kbytes, "crc32", kcrc));
    }
    ss_fault_point("after_files");
    char *text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(m);
    char mpath[128];
    snprintf(mpath, sizeof mpath, "_archives/%s.json", id);
    if (rc == SS_OK)
        rc = ss_cold_put(cold, mpath, text, strlen(text));
    ss_fault_point("after_manifest");
    if (rc == SS_OK) {
        hold_set(cfg, SS_HOLD_WRITE);
        rc = hot->ops->archive_commit(hot->st, id, cutoff, text);
        hold_clear(cfg, SS_HOLD_WRITE);
        ss_fault_point("after_commit");
    } else {
        /* The cold store failed: undo what reached it; the events stay hot. */
        int rb = roll_back(hot, cold, id);
        if (rb)
            SS_WARN("archive", "could not roll back archive %s yet (%s); the next run will", id,
                    ss_status_str(rb));
    }
    free(text);
    if (rc)
        return rc == SS_EIO ? SS_AGAIN : rc;
    hot->ops->reclaim(hot->st);
    hot->ops->data_size(hot->st, &res->hot_bytes_after);
    snprintf(res->archive_id, sizeof res->archive_id, "%s", id);
    res->cutoff = cutoff;
    SS_INFO("archive",
            "archive %s: %lld events and %lld KPI rows before %s, %.1f MB to the cold store; "
            "hot store %.1f MB -> %.1f MB",
            id, (long long)res->records, (long long)res->kpi_rows, cut, (double)res->bytes / 1e6,
            (double)res->hot_bytes_before / 1e6, (double)res->hot_bytes_after / 1e6);
    return SS_OK;
}

/* One archiver at a time per hot store: another one's recovery would roll
 * back an archive while it is being written (removing its files, which the
 * writer then commits: events lost), and two runs would archive the same
 * events twice. The lock is an flock on a file beside a SQLite store, which
 * the kernel releases when its holder dies. Returns the descriptor to close,
 * -1 when there is nothing to lock, or -2 when another archiver holds it. */
static int archiver_lock(const char *source)
{
    if (!source || strncmp(source, "sqlite:", 7) != 0)
        return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s-archive.lock", source + 7);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        SS_WARN("archive", "cannot open the archiver lock '%s': %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        if (!busy)
            SS_WARN("archive", "cannot lock '%s': %s", path, strerror(errno));
        close(fd);
        return busy ? -2 : -1;
    }
    return fd;
}

static int run_once_locked(ss_hot *hot, ss_cold *cold, const ss_archiver_config *cfg,
                           ss_archive_result *res);

int ss_archiver_run_once(ss_hot *hot, ss_cold *cold, const ss_archiver_config *cfg,
                         ss_archive_result *res)
{
    memset(res, 0, sizeof *res);
    if (!hot->ops->archive_begin) {
        SS_ERROR("archive", "the hot store '%s' cannot archive", hot->ops->name);
        return SS_ENOTSUP;
    }
    int lock = archiver_lock(cfg->source);
    if (lock == -2) {
        SS_INFO("archive", "another archiver is at work on %s; leaving this run to it",
                cfg->source);
        return SS_OK;
    }
    int rc = run_once_locked(hot, cold, cfg, res);
    if (lock >= 0)
        close(lock);
    return rc;
}

static int run_once_locked(ss_hot *hot, ss_cold *cold, const ss_archiver_config *cfg,
                           ss_archive_result *res)
{
    int rc = ss_archiver_recover(hot, cold);
    /* Dimensions stay hot, so one estimate can fall short: repeat
     * while the store is over its threshold and a step still moves events. */
    int64_t freed_per_event = 0;
    for (int step = 0; rc == SS_OK && step < 64; step++) {
        ss_archive_result r;
        rc = archive_step(hot, cold, cfg, freed_per_event, &r);
        if (rc != SS_OK || !r.archive_id[0])
            break;
        if (!res->archive_id[0]) {
            *res = r;
        } else {
            snprintf(res->archive_id, sizeof res->archive_id, "%s", r.archive_id);
            res->records += r.records;
            res->kpi_rows += r.kpi_rows;
            res->bytes += r.bytes;
            res->cutoff = r.cutoff;
            res->hot_bytes_after = r.hot_bytes_after;
        }
        if (r.hot_bytes_after <= cfg->max_bytes)
            break;
        if (r.records > 0 && r.hot_bytes_before > r.hot_bytes_after)
            freed_per_event = (r.hot_bytes_before - r.hot_bytes_after) / r.records + 1;
    }
    return rc;
}

/* ---- the loop ---- */

static void note(ss_hot *hot, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void note(ss_hot *hot, const char *key, const char *fmt, ...)
{
    /* A store that cannot archive (null:) keeps no notes either. */
    if (!hot->ops->note_set)
        return;
    char v[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    hot->ops->note_set(hot->st, key, v);
}

int ss_archiver_loop(const ss_archiver_loop_config *lc)
{
    char err[1024];
    ss_hot hot;
    ss_cold cold;
    int rc = ss_hot_open(lc->hot_uri, &(ss_hot_open_opts){0}, &hot, err, sizeof err);
    if (rc) {
        SS_ERROR("archive", "%s", err);
        return rc;
    }
    rc = ss_cold_open(lc->cold_uri, &cold, err, sizeof err);
    if (rc) {
        SS_ERROR("archive", "%s", err);
        ss_hot_close(&hot);
        return rc;
    }
    int64_t delay = lc->every_ms, failures = 0;
    for (;;) {
        ss_archive_result res;
        rc = ss_archiver_run_once(&hot, &cold, &lc->cfg, &res);
        char now[SS_ISO_LEN + 1];
        iso(ss_now_ms(), now);
        if (rc == SS_OK) {
            if (failures)
                note(&hot, "last_error", "none (recovered at %s after %lld failed runs)", now,
                     (long long)failures);
            failures = 0;
            delay = lc->every_ms;
            if (res.archive_id[0])
                note(&hot, "last_archive", "%s at %s: %lld events, %lld bytes", res.archive_id, now,
                     (long long)res.records, (long long)res.bytes);
        } else if (rc == SS_AGAIN) {
            failures++;
            delay = failures == 1 ? 1000 : delay * 2 > 60000 ? 60000 : delay * 2;
            SS_WARN("archive",
                    "the cold store %s cannot take data now; the events stay in the hot store "
                    "and ingestion goes on; retrying in %lld s",
                    cold.ops->describe(cold.st), (long long)(delay / 1000));
            note(&hot, "last_error",
                 "%s: cold store %s unavailable (write failed, see the log); %lld failed runs; "
                 "retrying every %lld s",
                 now, cold.ops->describe(cold.st), (long long)failures, (long long)(delay / 1000));
        } else {
            note(&hot, "last_error", "%s: %s", now, ss_status_str(rc));
        }
        if (lc->once || (rc != SS_OK && rc != SS_AGAIN))
            break;
        if (lc->hold && (*lc->hold & SS_HOLD_FULL)) {
            /* Still past twice the threshold: archive again at once while runs
             * move events; what the archiver cannot move yet (all of it within
             * the watermark) needs the engine to go on. */
            if (rc == SS_OK && res.archive_id[0])
                continue;
            *lc->hold &= ~SS_HOLD_FULL;
            SS_INFO("archive", "the archiver cannot move more now: ingestion goes on");
        }
        /* Sleep in short steps so that a stop is seen promptly, and, with an
         * engine to hold, a store past twice its threshold too: an engine at
         * full speed adds megabytes in 100 ms, so the size is looked at every
         * 20 ms (one read of two page counts). */
        int64_t step = lc->hold ? 20 : 100;
        for (int64_t slept = 0; slept < delay && !*lc->stop; slept += step) {
            struct timespec ts = {0, step * 1000000L};
            nanosleep(&ts, NULL);
            int64_t size;
            if (lc->hold && rc == SS_OK && hot.ops->data_size(hot.st, &size) == SS_OK &&
                size > 2 * lc->cfg.max_bytes)
                break;
        }
        if (*lc->stop)
            break;
    }
    if (lc->hold)
        *lc->hold = 0; /* an archiver that stops holds no engine */
    ss_cold_close(&cold);
    ss_hot_close(&hot);
    return rc == SS_AGAIN && !lc->once ? SS_OK : rc;
}

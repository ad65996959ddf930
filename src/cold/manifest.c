/* What the archives hold, checked against their manifests: the files of one
 * archive, its dimension snapshots included (recovery and archive --verify),
 * the whole store's report (archive --verify) and the summary of archive
 * --status. */
#define _POSIX_C_SOURCE 200809L
#include "cold/manifest.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <libdeflate.h>
#include <zlib.h>

#include "cold/archiver.h"
#include "common/buf.h"
#include "common/status.h"

const char *const ss_archive_tables[SS_ARCHIVE_NTABLES] = {"orders", "payments", "cancellations",
                                                           "kpi_minute"};
const char *const ss_archive_dirs[SS_ARCHIVE_NTABLES] = {"orders", "payments", "cancellations",
                                                         "kpi"};

/* ---- checking files against a manifest ---- */

static void count_lines(const ss_buf *b, int gz, int64_t *lines, int *ok)
{
    *lines = 0;
    *ok = 1;
    if (!gz) {
        for (size_t i = 0; i < b->len; i++)
            *lines += b->data[i] == '\n';
        return;
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) {
        *ok = 0;
        return;
    }
    unsigned char out[1 << 16];
    z.next_in = (Bytef *)b->data;
    z.avail_in = (uInt)b->len;
    int zr;
    do {
        z.next_out = out;
        z.avail_out = sizeof out;
        zr = inflate(&z, Z_NO_FLUSH);
        for (size_t i = 0; i < sizeof out - z.avail_out; i++)
            *lines += out[i] == '\n';
    } while (zr == Z_OK);
    if (zr != Z_STREAM_END)
        *ok = 0;
    inflateEnd(&z);
}

/* Checks the files of one list of a manifest (a table's part files, or a
 * dimension's snapshot), named what in messages; data is a scratch buffer. */
static int check_list(ss_cold *cold, const char *id, json_t *files, const char *what_list,
                      ss_buf *data, ss_buf *out)
{
    int problems = 0;
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *path = json_string_value(json_object_get(f, "path"));
        json_int_t bytes = json_integer_value(json_object_get(f, "bytes"));
        json_int_t records = json_integer_value(json_object_get(f, "records"));
        const char *crc = json_string_value(json_object_get(f, "crc32"));
        if (!path || !crc) {
            problems++;
            if (out)
                ss_buf_printf(out, "archive %s: a file entry of %s lacks path or crc32\n", id,
                              what_list);
            continue;
        }
        int rc = cold->ops->read(cold->st, path, data);
        const char *what = NULL;
        char detail[160] = "";
        if (rc == SS_EOF) {
            what = "missing";
        } else if (rc) {
            what = "unreadable";
        } else if ((json_int_t)data->len != bytes) {
            what = "damaged";
            snprintf(detail, sizeof detail, " (%zu bytes, manifest says %lld)", data->len,
                     (long long)bytes);
        } else {
            char got[16];
            snprintf(got, sizeof got, "%08lx",
                     (unsigned long)libdeflate_crc32(0, data->data, data->len));
            int64_t lines;
            int ok;
            count_lines(data, strstr(path, ".gz") != NULL, &lines, &ok);
            if (strcmp(got, crc) != 0) {
                what = "damaged";
                snprintf(detail, sizeof detail, " (CRC-32 %s, manifest says %s)", got, crc);
            } else if (!ok || lines != records) {
                what = "damaged";
                snprintf(detail, sizeof detail, " (%lld records, manifest says %lld)",
                         (long long)lines, (long long)records);
            }
        }
        if (what) {
            problems++;
            if (out)
                ss_buf_printf(out, "archive %s: file %s is %s%s\n", id, path, what, detail);
        }
    }
    return problems;
}

int ss_archive_check_files(ss_cold *cold, const char *id, json_t *m, ss_buf *out)
{
    int problems = 0;
    ss_buf data;
    ss_buf_init(&data, 1 << 16);
    json_t *tabs = json_object_get(m, "tables");
    for (int t = 0; t < SS_ARCHIVE_NTABLES; t++)
        problems += check_list(
            cold, id, json_object_get(json_object_get(tabs, ss_archive_tables[t]), "files"),
            ss_archive_tables[t], &data, out);
    /* The dimension snapshots; archives written before they existed have none. */
    const char *dim;
    json_t *d;
    json_object_foreach(json_object_get(m, "dims"), dim, d)
    {
        char what[96];
        snprintf(what, sizeof what, "dimension %s", dim);
        problems += check_list(cold, id, json_object_get(d, "files"), what, &data, out);
    }
    json_t *keys = json_object_get(m, "keys");
    const char *kpath = json_string_value(json_object_get(keys, "path"));
    if (kpath) {
        int rc = cold->ops->read(cold->st, kpath, &data);
        char got[16] = "";
        if (rc == SS_OK)
            snprintf(got, sizeof got, "%08lx",
                     (unsigned long)libdeflate_crc32(0, data.data, data.len));
        const char *want = json_string_value(json_object_get(keys, "crc32"));
        if (rc != SS_OK || !want || strcmp(got, want) != 0 ||
            (json_int_t)data.len != json_integer_value(json_object_get(keys, "bytes"))) {
            problems++;
            if (out)
                ss_buf_printf(out, "archive %s: keys file %s is %s\n", id, kpath,
                              rc == SS_EOF ? "missing" : "damaged");
        }
    }
    ss_buf_free(&data);
    return problems;
}

/* ---- verify and status ---- */

typedef struct verify_ctx {
    ss_cold *cold;
    ss_buf *out;
    int problems, archives;
    json_t *known; /* paths listed by committed manifests */
} verify_ctx;

static void know_files(verify_ctx *v, json_t *files)
{
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f)
    {
        const char *path = json_string_value(json_object_get(f, "path"));
        if (path)
            json_object_set_new(v->known, path, json_true());
    }
}

static int verify_one(void *ctx, const char *id, const char *state, int64_t cutoff,
                      const char *created_at, const char *manifest)
{
    verify_ctx *v = ctx;
    (void)cutoff;
    (void)created_at;
    if (strcmp(state, "committed") != 0)
        return SS_OK;
    v->archives++;
    json_t *m = manifest ? json_loads(manifest, 0, NULL) : NULL;
    if (!m) {
        ss_buf_printf(v->out, "archive %s: its manifest in the hot store is not valid JSON\n", id);
        v->problems++;
        return SS_OK;
    }
    ss_buf b;
    ss_buf_init(&b, 4096);
    char path[128];
    snprintf(path, sizeof path, "_archives/%s.json", id);
    int rc = v->cold->ops->read(v->cold->st, path, &b);
    json_t *onfile = rc == SS_OK ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    if (!onfile || !json_equal(onfile, m)) {
        ss_buf_printf(v->out, "archive %s: manifest file %s is %s\n", id, path,
                      rc == SS_EOF ? "missing" : "damaged or different from the record");
        v->problems++;
    }
    json_decref(onfile);
    ss_buf_free(&b);
    v->problems += ss_archive_check_files(v->cold, id, m, v->out);
    json_object_set_new(v->known, path, json_true());
    const char *kpath = json_string_value(json_object_get(json_object_get(m, "keys"), "path"));
    if (kpath)
        json_object_set_new(v->known, kpath, json_true());
    json_t *tabs = json_object_get(m, "tables");
    for (int t = 0; t < SS_ARCHIVE_NTABLES; t++)
        know_files(v, json_object_get(json_object_get(tabs, ss_archive_tables[t]), "files"));
    const char *dim;
    json_t *d;
    json_object_foreach(json_object_get(m, "dims"), dim, d)
        know_files(v, json_object_get(d, "files"));
    json_decref(m);
    return SS_OK;
}

static int stray(void *ctx, const char *path, int64_t bytes)
{
    verify_ctx *v = ctx;
    if (!json_object_get(v->known, path)) {
        ss_buf_printf(v->out,
                      "stray file %s (%lld bytes): no committed archive lists it; it is not "
                      "counted\n",
                      path, (long long)bytes);
        v->problems++;
    }
    return SS_OK;
}

int ss_archiver_verify(ss_hot *hot, ss_cold *cold, ss_buf *out)
{
    verify_ctx v = {.cold = cold, .out = out, .known = json_object()};
    int rc = hot->ops->archive_list(hot->st, verify_one, &v);
    rc = rc ? rc : cold->ops->list(cold->st, "", stray, &v);
    json_decref(v.known);
    if (rc)
        return rc;
    ss_buf_printf(out, "%d committed archive%s checked: %s\n", v.archives,
                  v.archives == 1 ? "" : "s",
                  v.problems ? "PROBLEMS FOUND" : "all files match their manifests");
    return v.problems ? SS_ECORRUPT : SS_OK;
}

typedef struct status_ctx {
    ss_buf *out;
    int64_t records, bytes;
    int n;
} status_ctx;

void ss_archive_summarize(const char *manifest, ss_archive_summary *sum)
{
    memset(sum, 0, sizeof *sum);
    json_t *m = manifest ? json_loads(manifest, 0, NULL) : NULL;
    json_t *tabs = json_object_get(m, "tables");
    for (int t = 0; t < SS_ARCHIVE_NTABLES; t++) {
        json_t *tab = json_object_get(tabs, ss_archive_tables[t]);
        if (t < SS_ARCHIVE_NFACTS) { /* events and their times; KPI rows count in bytes */
            sum->records += json_integer_value(json_object_get(tab, "records"));
            const char *a = json_string_value(json_object_get(tab, "min_ts"));
            const char *b = json_string_value(json_object_get(tab, "max_ts"));
            if (a && (!sum->from[0] || strcmp(a, sum->from) < 0))
                snprintf(sum->from, sizeof sum->from, "%s", a);
            if (b && (!sum->to[0] || strcmp(b, sum->to) > 0))
                snprintf(sum->to, sizeof sum->to, "%s", b);
        }
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(tab, "files"), i, f)
        {
            sum->bytes += json_integer_value(json_object_get(f, "bytes"));
        }
    }
    json_decref(m);
}

static int status_one(void *ctx, const char *id, const char *state, int64_t cutoff,
                      const char *created_at, const char *manifest)
{
    status_ctx *s = ctx;
    (void)cutoff;
    ss_archive_summary sum;
    ss_archive_summarize(manifest, &sum);
    ss_buf_printf(s->out, "%-30s %-9s %-24s %10lld %12lld  %s .. %s\n", id, state, created_at,
                  (long long)sum.records, (long long)sum.bytes, sum.from[0] ? sum.from : "-",
                  sum.to[0] ? sum.to : "-");
    s->records += sum.records;
    s->bytes += sum.bytes;
    s->n++;
    return SS_OK;
}

/* The archiver's own notes; those of the KPI sink ("kpi_sink URI",
 * "kpi_sink_position URI", sink/sink.h) have a section of their own. */
static int status_note(void *ctx, const char *key, const char *value)
{
    if (strncmp(key, "kpi_sink", 8) != 0)
        ss_buf_printf(ctx, "  %s: %s\n", key, value);
    return SS_OK;
}

/* The sink's condition (its position and lag are in it). */
static int status_sink(void *ctx, const char *key, const char *value)
{
    if (!strncmp(key, "kpi_sink ", 9))
        ss_buf_printf(ctx, "  %s\n", value);
    return SS_OK;
}

int ss_archiver_status(ss_hot *hot, ss_cold *cold, int64_t max_bytes, ss_buf *out)
{
    int64_t size = 0;
    int rc = hot->ops->data_size(hot->st, &size);
    if (rc)
        return rc;
    ss_buf_printf(out, "hot store: %.1f MB of data, threshold %.1f MB (%s)\n", (double)size / 1e6,
                  (double)max_bytes / 1e6, size > max_bytes ? "over: archiving due" : "under");
    ss_buf_printf(out, "cold store: %s\n", cold->ops->describe(cold->st));
    ss_buf_printf(out, "\n%-30s %-9s %-24s %10s %12s  %s\n", "archive", "state", "created",
                  "records", "bytes", "event time range");
    status_ctx s = {.out = out};
    rc = hot->ops->archive_list(hot->st, status_one, &s);
    if (rc)
        return rc;
    ss_buf_printf(out, "(%d archive%s, %lld records, %lld bytes)\n", s.n, s.n == 1 ? "" : "s",
                  (long long)s.records, (long long)s.bytes);
    ss_buf_printf(out, "\narchiver:\n");
    size_t before = out->len;
    rc = hot->ops->note_list(hot->st, status_note, out);
    if (rc == SS_OK && out->len == before)
        ss_buf_printf(out, "  no runs recorded\n");
    if (rc == SS_OK) {
        ss_buf_printf(out, "\nkpi sink:\n");
        before = out->len;
        rc = hot->ops->note_list(hot->st, status_sink, out);
        if (rc == SS_OK && out->len == before)
            ss_buf_printf(out, "  none (--kpi-sink)\n");
    }
    return rc;
}

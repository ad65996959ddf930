/* Drives one cold store's ss_cold_ops directly, for the tests of the
 * backends (tests/cli/test_hdfs_backend.py): cold_ops_check URI prints one
 * line "name=value" per step, which the test compares across backends.
 * Exits 1 when the store cannot be opened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "cold/cold.h"
#include "common/buf.h"
#include "common/status.h"

typedef struct listing {
    char names[64][256]; /* "path bytes" */
    int n;
} listing;

static int on_file(void *ctx, const char *path, int64_t bytes)
{
    listing *l = ctx;
    if (l->n < 64) {
        snprintf(l->names[l->n++], sizeof l->names[0], "%s %lld", path, (long long)bytes);
    }
    return SS_OK;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: cold_ops_check URI\n");
        return 2;
    }
    ss_cold c;
    char err[1024];
    if (ss_cold_open(argv[1], &c, err, sizeof err) != SS_OK) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    /* 10 MiB in pieces of 100,000 bytes: more than one chunk of any backend. */
    size_t big = 10u << 20;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    void *w;
    int rc = c.ops->put_open(c.st, "t/dt=2026-11-02/big.jsonl", &w);
    for (size_t off = 0; rc == SS_OK && off < big; off += 100000)
        rc = c.ops->put_write(w, data + off, off + 100000 <= big ? 100000 : big - off);
    /* Not visible before the commit. */
    listing before = {0};
    c.ops->list(c.st, "t", on_file, &before);
    printf("visible_before_commit=%d\n", before.n);
    rc = rc ? rc : c.ops->put_commit(w);
    printf("put_big=%d\n", rc);

    ss_buf b;
    ss_buf_init(&b, 1 << 16);
    rc = c.ops->read(c.st, "t/dt=2026-11-02/big.jsonl", &b);
    printf("read_big=%d same=%d\n", rc, b.len == big && !memcmp(b.data, data, big));

    void *h;
    int64_t size = 0;
    rc = c.ops->get_open(c.st, "t/dt=2026-11-02/big.jsonl", &h, &size);
    printf("get_open=%d size=%lld\n", rc, (long long)size);
    if (rc == SS_OK) {
        /* The whole file by ranges of 3 MiB + 1, from the start to its end. */
        uLong crc = crc32(0L, Z_NULL, 0), want = crc32(crc32(0L, Z_NULL, 0), (Bytef *)data, big);
        char *buf = malloc((3u << 20) + 1);
        int64_t off = 0;
        size_t got = 0;
        while (rc == SS_OK && off < size) {
            rc = c.ops->get_range(h, off, buf, (3u << 20) + 1, &got);
            if (rc || got == 0)
                break;
            crc = crc32(crc, (Bytef *)buf, (uInt)got);
            off += (int64_t)got;
        }
        printf("ranges=%d bytes=%lld same=%d\n", rc, (long long)off, crc == want);
        rc = c.ops->get_range(h, 12345, buf, 10, &got);
        printf("range_mid=%d same=%d\n", rc, got == 10 && !memcmp(buf, data + 12345, 10));
        free(buf);
        c.ops->get_close(h);
    }
    /* A reader that stops early: one range, then closed while the rest of
     * the file is still on its way. */
    rc = c.ops->get_open(c.st, "t/dt=2026-11-02/big.jsonl", &h, &size);
    if (rc == SS_OK) {
        char first[4096];
        size_t got = 0;
        rc = c.ops->get_range(h, 0, first, sizeof first, &got);
        c.ops->get_close(h);
        printf("read_part_close=%d same=%d\n", rc, got > 0 && !memcmp(first, data, got));
    }
    printf("get_open_missing=%d\n", c.ops->get_open(c.st, "t/none.jsonl", &h, &size));
    ss_buf_free(&b);
    ss_buf_init(&b, 16);
    printf("read_missing=%d\n", c.ops->read(c.st, "t/none.jsonl", &b));

    /* The same bytes again under the same name: done. */
    printf("put_small=%d\n", ss_cold_put(&c, "t/small.txt", "hello\n", 6));
    printf("put_same_again=%d\n", ss_cold_put(&c, "t/small.txt", "hello\n", 6));
    printf("put_empty=%d\n", ss_cold_put(&c, "t/empty.txt", "", 0));
    rc = c.ops->put_open(c.st, "t/aborted.txt", &w);
    rc = rc ? rc : c.ops->put_write(w, "half", 4);
    if (rc == SS_OK)
        c.ops->put_abort(w);
    printf("abort=%d\n", rc);
    /* Aborted after more than a chunk went out: nothing is left. */
    rc = c.ops->put_open(c.st, "t/aborted_big.txt", &w);
    for (size_t off = 0; rc == SS_OK && off < (3u << 20); off += 100000)
        rc = c.ops->put_write(w, data + off, 100000);
    if (rc == SS_OK)
        c.ops->put_abort(w);
    printf("abort_big=%d\n", rc);

    listing l = {0};
    printf("list=%d\n", c.ops->list(c.st, "", on_file, &l));
    qsort(l.names, (size_t)l.n, sizeof l.names[0], cmp);
    for (int i = 0; i < l.n; i++)
        printf("file=%s\n", l.names[i]);
    listing sub = {0};
    printf("list_missing=%d n=%d\n", c.ops->list(c.st, "nothing/here", on_file, &sub), sub.n);
    printf("remove=%d\n", c.ops->remove(c.st, "t/small.txt"));
    printf("remove_missing=%d\n", c.ops->remove(c.st, "t/small.txt"));
    printf("read_removed=%d\n", c.ops->read(c.st, "t/small.txt", &b));
    ss_buf_free(&b);
    free(data);
    ss_cold_close(&c);
    return 0;
}

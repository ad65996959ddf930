/* shopstream hbase-create: makes the HBase table of a KPI sink. */
#include <stddef.h>
#include <stdio.h>

#include "cli/commands.h"
#include "common/status.h"
#include "sink/sink.h"

typedef struct hbase_opts {
    int unused;
} hbase_opts;

static const ss_opt hbase_table[] = {
    SS_OPT_END,
};

static int hbase_create_run(const void *vopts, int argc, char **argv)
{
    (void)vopts;
    if (argc != 1) {
        fprintf(stderr, "shopstream hbase-create: give one sink URI, "
                        "hbase+http://HOST:PORT/TABLE (HBase's REST gateway and the table)\n");
        return SS_EXIT_USAGE;
    }
    char err[1024];
    ss_sink sink;
    int rc = ss_sink_open(argv[0], &sink, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shopstream hbase-create: %s\n", err);
        return rc == SS_EINVAL ? SS_EXIT_USAGE : SS_EXIT_FAIL;
    }
    /* A table that exists is left as it is: PUT of a schema would replace
     * its families. */
    rc = sink.ops->check(sink.st, err, sizeof err);
    if (rc == SS_EOF) {
        rc = sink.ops->create(sink.st, err, sizeof err);
        if (rc == SS_OK)
            rc = sink.ops->check(sink.st, err, sizeof err);
    }
    if (rc)
        fprintf(stderr, "shopstream hbase-create: %s\n", err);
    else
        printf("%s is ready\n", sink.ops->describe(sink.st));
    ss_sink_close(&sink);
    return rc ? SS_EXIT_FAIL : SS_EXIT_OK;
}

const ss_cmd ss_cmd_hbase_create = {
    .name = "hbase-create",
    .summary = "Create the HBase table of a KPI sink (--kpi-sink)",
    .args = "hbase+http://HOST:PORT/TABLE",
    .description =
        "Creates TABLE with its one column family 'm' through HBase's REST gateway at HOST:PORT "
        "(PUT /TABLE/schema), for `--kpi-sink` of process, run and archive; a table that exists "
        "with that family is left as it is. The schema is in docs/data-dictionary.md.",
    .opts = hbase_table,
    .opts_size = sizeof(hbase_opts),
    .run = hbase_create_run,
};

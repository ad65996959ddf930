#include "hot/hot.h"

#include <stdio.h>
#include <string.h>

#include "common/status.h"

static const ss_hot_ops *const registry[] = {
    &ss_hot_sqlite_ops,
    &ss_hot_null_ops,
};

const char *ss_dim_name(int dim)
{
    static const char *const names[SS_DIM_COUNT] = {"overall", "city", "country", "category",
                                                    "payment_method"};
    return dim >= 0 && dim < SS_DIM_COUNT ? names[dim] : "unknown";
}

int ss_hot_open(const char *uri, const ss_hot_open_opts *o, ss_hot *hot, char *err, size_t errlen)
{
    hot->ops = NULL;
    hot->st = NULL;
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++) {
        size_t n = strlen(registry[i]->scheme);
        if (strncmp(uri, registry[i]->scheme, n) == 0) {
            int rc = registry[i]->open(uri + n, o, &hot->st, err, errlen);
            if (rc == SS_OK)
                hot->ops = registry[i];
            return rc;
        }
    }
    snprintf(err, errlen, "unsupported hot store '%s': use sqlite:PATH (or null: to keep nothing)",
             uri);
    return SS_EINVAL;
}

void ss_hot_close(ss_hot *hot)
{
    if (hot && hot->ops)
        hot->ops->close(hot->st);
    if (hot) {
        hot->ops = NULL;
        hot->st = NULL;
    }
}

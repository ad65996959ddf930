#include "query/coldrow.h"

#include <stdio.h>
#include <string.h>

#include "common/status.h"
#include "event/jscan.h"

/* The column of a key. Keys come in column order when the archiver wrote
 * the line, so the one after the last match is tried first. */
static int find_col(const ss_str *names, int ncols, ss_str key, int hint)
{
    if (hint < ncols && names[hint].n == key.n && memcmp(names[hint].p, key.p, key.n) == 0)
        return hint;
    for (int i = 0; i < ncols; i++)
        if (names[i].n == key.n && memcmp(names[i].p, key.p, key.n) == 0)
            return i;
    return -1;
}

static int read_value(ss_jscan *js, ss_coldval *v)
{
    const unsigned char c = *js->p;
    int is_int;
    switch (c) {
    case '"':
        v->type = SS_CV_STRING;
        return ss_jscan_string(js, &v->s);
    case '{':
    case '[':
        v->type = SS_CV_NESTED;
        return ss_jscan_skip(js, 1);
    case 't':
    case 'f':
        v->type = SS_CV_BOOL;
        return ss_jscan_skip(js, 1);
    case 'n':
        v->type = SS_CV_NULL;
        return ss_jscan_skip(js, 1);
    default:
        if (ss_jscan_number(js, &v->s, &is_int))
            return SS_EINVAL;
        v->type = is_int ? SS_CV_INT : SS_CV_NUMBER;
        return SS_OK;
    }
}

static int parse_object(ss_jscan *js, const ss_str *names, int ncols, ss_coldval *out)
{
    js->p++;
    ss_jscan_ws(js);
    if (js->p < js->end && *js->p == '}') {
        js->p++;
        return SS_OK;
    }
    int hint = 0;
    for (;;) {
        ss_jscan_ws(js);
        if (js->p >= js->end || *js->p != '"')
            return ss_jscan_syntax(js, "a key in quotes");
        ss_str key;
        if (ss_jscan_string(js, &key))
            return SS_EINVAL;
        ss_jscan_ws(js);
        if (js->p >= js->end || *js->p != ':')
            return ss_jscan_syntax(js, "':'");
        js->p++;
        ss_jscan_ws(js);
        if (js->p >= js->end)
            return ss_jscan_syntax(js, "a value");
        int col = find_col(names, ncols, key, hint);
        if (col < 0) {
            if (ss_jscan_skip(js, 1))
                return SS_EINVAL;
        } else {
            if (read_value(js, &out[col]))
                return SS_EINVAL;
            hint = col + 1;
        }
        ss_jscan_ws(js);
        if (js->p < js->end && *js->p == ',') {
            js->p++;
            continue;
        }
        if (js->p < js->end && *js->p == '}') {
            js->p++;
            return SS_OK;
        }
        return ss_jscan_syntax(js, "',' or '}'");
    }
}

int ss_coldrow_parse(const char *line, size_t len, const ss_str *names, int ncols, ss_coldval *out,
                     ss_buf *scratch, char *reason, size_t rlen)
{
    ss_jscan js;
    for (int i = 0; i < ncols; i++)
        out[i].type = SS_CV_ABSENT;
    long bad = ss_utf8_check((const unsigned char *)line, len);
    if (bad >= 0) {
        snprintf(reason, rlen, "invalid UTF-8 at byte %ld", bad);
        return SS_COLDROW_BAD_JSON;
    }
    ss_jscan_begin(&js, line, len, scratch, reason, rlen);
    ss_jscan_ws(&js);
    int object = js.p < js.end && *js.p == '{';
    /* ss_jscan_skip reports a line without a value. */
    if (object ? parse_object(&js, names, ncols, out) : ss_jscan_skip(&js, 0))
        return SS_COLDROW_BAD_JSON;
    ss_jscan_ws(&js);
    if (js.p != js.end) {
        ss_jscan_fail(&js, "invalid JSON at byte %zu: text after the value",
                      (size_t)(js.p - js.start));
        return SS_COLDROW_BAD_JSON;
    }
    return object ? SS_COLDROW_OK : SS_COLDROW_NOT_OBJECT;
}

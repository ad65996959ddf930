/* libFuzzer target: the API's request parsing, as the server does it before
 * any endpoint runs (server.c, request.c): the raw request target taken
 * apart (path, query string, %-escapes), its parameters checked against the
 * route's, and the time range (range=, from=, to=). Any target must be taken
 * apart or refused with a 4xx whose JSON body is valid UTF-8, never a crash;
 * what is taken apart must hold UTF-8 without NUL, and a range must be
 * non-empty. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "event/jscan.h"
#include "web/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, int path)
{
    size_t n = strlen(s);
    if (ss_utf8_check((const unsigned char *)s, n) >= 0)
        abort();
    for (size_t i = 0; path && i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

/* The error answer the server would send: status and a JSON body. */
static void check_error(int status, const char *err)
{
    if (status < 400 || status > 499 || !err[0])
        abort();
    ss_web_resp resp = {0};
    ss_buf_init(&resp.body, 256);
    ss_web_error(&resp, status, "%s", err);
    if (ss_utf8_check((const unsigned char *)resp.body.data, resp.body.len) >= 0)
        abort();
    json_t *doc = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    if (!json_is_string(json_object_get(doc, "error")))
        abort();
    json_decref(doc);
    ss_buf_free(&resp.body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* libmicrohttpd hands the target over as a C string. */
    char *uri = malloc(size + 1);
    memcpy(uri, data, size);
    uri[size] = '\0';
    ss_web_target t;
    char err[512];
    int status = ss_web_target_parse(uri, &t, err, sizeof err);
    if (status) {
        check_error(status, err);
        goto out;
    }
    check_text(t.path, 1);
    for (size_t i = 0; i < t.nargs; i++) {
        check_text(t.args[i].name, 1);
        check_text(t.args[i].value, 0);
        if (!t.args[i].name[0] || ss_web_target_arg(&t, t.args[i].name) != t.args[i].value)
            abort(); /* a name is never empty, nor given twice */
    }
    const ss_web_route *rt = ss_web_routes;
    while (rt->path && strcmp(rt->path, t.path) != 0)
        rt++;
    if (rt->path && (status = ss_web_target_check_params(&t, rt->params, err, sizeof err))) {
        check_error(status, err);
        goto out;
    }
    ss_web_range r;
    status = ss_web_range_parse(&t, 1793577600000LL, &r, err, sizeof err);
    if (status)
        check_error(status, err);
    else if (r.name ? r.span_ms <= 0 : r.to <= r.from)
        abort();
    else if (!r.name) {
        char iso[SS_ISO_LEN];
        ss_time_format_iso(r.from, iso);
        ss_time_format_iso(r.to, iso);
    }
out:
    ss_web_target_free(&t);
    free(uri);
    return 0;
}

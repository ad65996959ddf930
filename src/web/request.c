/* What the endpoints of every kind share about a request and its answer
 * (web.h): the request target taken apart and checked, the time range of the
 * range endpoints, and the JSON error body. Kept apart from server.c, which
 * dispatches to the endpoints, so that the endpoints (api.c, stream.c)
 * depend on it and not on the server; and free of libmicrohttpd, so that the
 * parsing of outside input can be driven alone (tests/fuzz/fuzz_api.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "event/jscan.h"
#include "web/web.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s in place (the result is never longer): %XX escapes, and '+' as a
 * space in the query string (as HTML forms and Python's urlencode write it).
 * Returns the decoded length, or -1 for a '%' not followed by two hex digits. */
static long decode(char *s, int plus)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%') {
            int hi = hex_digit(r[1]), lo = hi < 0 ? -1 : hex_digit(r[2]);
            if (lo < 0)
                return -1;
            *w++ = (char)(hi << 4 | lo);
            r += 2;
        } else {
            *w++ = plus && *r == '+' ? ' ' : *r;
        }
    }
    *w = '\0';
    return (long)(w - s);
}

/* The bytes of a decoded part must be UTF-8 without NUL; a path holds no
 * control characters at all. what names the part for the message. */
static int check_text(const char *s, long n, int path, const char *what, char *err, size_t errlen)
{
    long bad = ss_utf8_check((const unsigned char *)s, (size_t)n);
    if (bad >= 0) {
        snprintf(err, errlen,
                 "%s is not UTF-8 (byte %ld once %%-decoded); percent-encode UTF-8 text", what,
                 bad + 1);
        return 400;
    }
    for (long i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0 || (path && (c < 0x20 || c == 0x7f))) {
            snprintf(err, errlen, "%s holds the control character 0x%02x (byte %ld)", what, c,
                     i + 1);
            return 400;
        }
    }
    return 0;
}

void ss_web_target_free(ss_web_target *t)
{
    if (!t)
        return;
    free(t->mem);
    memset(t, 0, sizeof *t);
}

int ss_web_target_parse(const char *uri, ss_web_target *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    err[0] = '\0';
    t->mem = ss_strdup(uri);
    char *query = strchr(t->mem, '?');
    if (query)
        *query++ = '\0';
    t->path = t->mem;
    long n = decode(t->mem, 0);
    if (n < 0) {
        snprintf(err, errlen, "the path has a '%%' that is not followed by two hex digits");
        return 400;
    }
    int status = check_text(t->mem, n, 1, "the path", err, errlen);
    for (char *next = query; !status && next;) {
        char *arg = next;
        next = strchr(arg, '&');
        if (next)
            *next++ = '\0';
        if (!*arg)
            continue; /* "a=1&&b=2" */
        char *value = strchr(arg, '=');
        if (value)
            *value++ = '\0';
        else
            value = arg + strlen(arg); /* "?a" is a=, an empty value */
        long nn = decode(arg, 1), nv = nn < 0 ? -1 : decode(value, 1);
        if (nn < 0 || nv < 0) {
            snprintf(err, errlen,
                     "the query string has a '%%' that is not followed by two hex digits");
            return 400;
        }
        if ((status = check_text(arg, nn, 1, "a parameter's name", err, errlen)) ||
            (status = check_text(value, nv, 0, "a parameter's value", err, errlen)))
            break;
        if (!*arg) {
            snprintf(err, errlen, "a parameter has no name (\"=%.40s\")", value);
            return 400;
        }
        if (ss_web_target_arg(t, arg)) {
            snprintf(err, errlen, "%.64s: given twice; give each parameter once", arg);
            return 400;
        }
        if (t->nargs == SS_WEB_MAX_ARGS) {
            snprintf(err, errlen, "more than %d parameters", SS_WEB_MAX_ARGS);
            return 400;
        }
        t->args[t->nargs].name = arg;
        t->args[t->nargs].value = value;
        t->nargs++;
    }
    return status;
}

const char *ss_web_target_arg(const ss_web_target *t, const char *name)
{
    for (size_t i = 0; i < t->nargs; i++)
        if (!strcmp(t->args[i].name, name))
            return t->args[i].value;
    return NULL;
}

/* Is name one of the '|'-separated list? */
static int listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, '|');
        size_t k = end ? (size_t)(end - p) : strlen(p);
        if (k == n && !strncmp(p, name, n))
            return 1;
        p += k + (end != NULL);
    }
    return 0;
}

int ss_web_target_check_params(const ss_web_target *t, const char *params, char *err, size_t errlen)
{
    for (size_t i = 0; params && i < t->nargs; i++) {
        if (listed(params, t->args[i].name))
            continue;
        if (*params)
            snprintf(err, errlen, "%.64s: unknown parameter of %.64s; it takes %s", t->args[i].name,
                     t->path, params);
        else
            snprintf(err, errlen, "%.64s: unknown parameter; %.64s takes no parameters",
                     t->args[i].name, t->path);
        return 400;
    }
    return 0;
}

const char *ss_web_arg(const ss_web_req *req, const char *name)
{
    return ss_web_target_arg(req->target, name);
}

static const struct {
    const char *name;
    int64_t ms;
} ranges[] = {
    {"15m", 15 * SS_MS_PER_MIN}, {"1h", SS_MS_PER_HOUR},      {"24h", SS_MS_PER_DAY},
    {"7d", 7 * SS_MS_PER_DAY},   {"30d", 30 * SS_MS_PER_DAY},
};
#define NRANGES (sizeof ranges / sizeof ranges[0])

int ss_web_range_parse(const ss_web_target *t, int64_t now, ss_web_range *r, char *err,
                       size_t errlen)
{
    const char *range = ss_web_target_arg(t, "range");
    const char *from = ss_web_target_arg(t, "from"), *to = ss_web_target_arg(t, "to");
    memset(r, 0, sizeof *r);
    if (from || to) {
        if (range) {
            snprintf(err, errlen, "give either range= or from= and to=, not both");
            return 400;
        }
        if (!from || !to) {
            snprintf(err, errlen,
                     "give both from= and to= (ISO-8601 times such as 2026-11-02T10:00:00Z), or "
                     "range=");
            return 400;
        }
        const char *text[2] = {from, to};
        int64_t *ms[2] = {&r->from, &r->to};
        for (int i = 0; i < 2; i++) {
            if (ss_time_parse_user(text[i], now, ms[i]) != 0) {
                snprintf(err, errlen,
                         "%s: '%.64s' is not a time; give an ISO-8601 UTC time such as "
                         "2026-11-02T10:00:00Z, a date such as 2026-11-02, or now",
                         i ? "to" : "from", text[i]);
                return 400;
            }
        }
        if (r->to <= r->from) {
            snprintf(err, errlen, "to must be after from (the range is [from, to))");
            return 400;
        }
        return 0;
    }
    if (!range)
        range = "1h";
    for (size_t i = 0; i < NRANGES; i++) {
        if (!strcmp(range, ranges[i].name)) {
            r->name = ranges[i].name;
            r->span_ms = ranges[i].ms;
            return 0;
        }
    }
    snprintf(
        err, errlen,
        "range: '%.64s' is not a known range; use 15m, 1h, 24h, 7d or 30d, or give from= and to=",
        range);
    return 400;
}

void ss_web_hot_uri(const ss_web_config *cfg, char *out, size_t n)
{
    if (cfg->hot)
        snprintf(out, n, "%s", cfg->hot);
    else
        snprintf(out, n, "sqlite:%s/hot.db", cfg->data);
}

void ss_web_error(ss_web_resp *resp, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The answer is JSON, hence UTF-8: a byte that is not (a request's text
     * quoted, or a character cut in two by the bound of a quote) becomes '?'. */
    size_t n = strlen(msg);
    for (long bad; (bad = ss_utf8_check((const unsigned char *)msg, n)) >= 0;)
        msg[bad] = '?';
    resp->status = status;
    resp->content_type = "application/json";
    resp->body.len = 0;
    ss_buf_lit(&resp->body, "{\"error\":");
    ss_buf_put_jstr(&resp->body, msg, n);
    ss_buf_lit(&resp->body, "}\n");
}

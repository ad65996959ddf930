/* What the endpoints of every kind share about a request and its answer: the
 * query-string arguments and the JSON error body (web.h). Kept apart from
 * server.c, which dispatches to the endpoints, so that the endpoints
 * (api.c, stream.c) depend on it and not on the server. */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "web/web.h"

const char *ss_web_arg(const ss_web_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
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
    resp->status = status;
    resp->content_type = "application/json";
    resp->body.len = 0;
    ss_buf_lit(&resp->body, "{\"error\":");
    ss_buf_put_jstr(&resp->body, msg, strlen(msg));
    ss_buf_lit(&resp->body, "}\n");
}

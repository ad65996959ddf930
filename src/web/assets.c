/* The dashboard page's files, embedded into the binary at build time
 * (ss_embed in CMakeLists.txt) and served by `shopstream serve` at / and
 * /assets/NAME (docs/api.md#page).
 *
 * A request names an asset only through this table: the name after /assets/
 * is compared with the names below and nothing is ever read from the file
 * system, so no path (.., encoded slashes, ...) can reach another file. The
 * files hold no data, only the page, so they need no token: the page sends
 * the token with its own API requests. */
#include <microhttpd.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "web/web.h"

/* The symbols ss_embed defines: the bytes, a NUL, and the byte count. */
#define EMBEDDED(sym)                                                                              \
    extern const char sym[];                                                                       \
    extern const unsigned long sym##_size
EMBEDDED(ss_asset_web_index_html);
EMBEDDED(ss_asset_web_app_js);
EMBEDDED(ss_asset_web_app_css);
EMBEDDED(ss_asset_web_plotly_min_js);
EMBEDDED(ss_asset_web_world_110m_json);

#define PAGE_CSP                                                                                   \
    "default-src 'self'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; "      \
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; "           \
    "form-action 'none'; frame-ancestors 'none'"

typedef struct asset {
    const char *name; /* served at /assets/NAME; index.html also at / */
    const char *data;
    const unsigned long *size;
    const char *content_type;
} asset;

static const asset assets[] = {
    {"index.html", ss_asset_web_index_html, &ss_asset_web_index_html_size,
     "text/html; charset=utf-8"},
    {"app.js", ss_asset_web_app_js, &ss_asset_web_app_js_size, "application/javascript"},
    {"app.css", ss_asset_web_app_css, &ss_asset_web_app_css_size, "text/css"},
    {"plotly.min.js", ss_asset_web_plotly_min_js, &ss_asset_web_plotly_min_js_size,
     "application/javascript"},
    /* The base map of the city map: Plotly fetches topojsonURL + NAME.json
     * (its default is a CDN; the page points it here). */
    {"topojson/world_110m.json", ss_asset_web_world_110m_json, &ss_asset_web_world_110m_json_size,
     "application/json"},
};
#define NASSETS       (sizeof assets / sizeof assets[0])
#define ASSETS_PREFIX "/assets/"

/* Strong ETags: a 64-bit FNV-1a hash of each asset's bytes, computed once on
 * the first request (a few milliseconds for Plotly's 5 MB), so that they can
 * never disagree with the bytes the binary serves. */
static char etags[NASSETS][20];
static pthread_once_t etags_once = PTHREAD_ONCE_INIT;

static void compute_etags(void)
{
    for (size_t i = 0; i < NASSETS; i++) {
        uint64_t h = 14695981039346656037ULL;
        const unsigned char *p = (const unsigned char *)assets[i].data;
        for (unsigned long j = 0; j < *assets[i].size; j++) {
            h ^= p[j];
            h *= 1099511628211ULL;
        }
        snprintf(etags[i], sizeof etags[i], "\"%016llx\"", (unsigned long long)h);
    }
}

static const asset *find_asset(const char *path, size_t *index)
{
    const char *name;
    if (!strcmp(path, "/"))
        name = "index.html";
    else if (!strncmp(path, ASSETS_PREFIX, sizeof ASSETS_PREFIX - 1))
        name = path + sizeof ASSETS_PREFIX - 1;
    else
        return NULL;
    for (size_t i = 0; i < NASSETS; i++)
        if (!strcmp(assets[i].name, name)) {
            *index = i;
            return &assets[i];
        }
    return NULL;
}

/* Whether an If-None-Match header lists etag (or is "*"). */
static int etag_matches(const char *header, const char *etag)
{
    if (!header)
        return 0;
    if (!strcmp(header, "*"))
        return 1;
    size_t n = strlen(etag);
    for (const char *p = header; (p = strstr(p, etag)); p += n) {
        char after = p[n];
        if (after == '\0' || after == ',' || after == ' ')
            return 1;
    }
    return 0;
}

struct MHD_Response *ss_web_asset_response(struct MHD_Connection *conn, const char *path,
                                           int *status)
{
    *status = 404;
    size_t i = 0;
    const asset *a = find_asset(path, &i);
    if (!a)
        return NULL;
    pthread_once(&etags_once, compute_etags);
    int fresh = etag_matches(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH),
        etags[i]);
    /* The bytes live in the binary for the life of the process: no copy. */
    struct MHD_Response *r = MHD_create_response_from_buffer(
        fresh ? 0 : (size_t)*a->size, fresh ? NULL : (void *)(uintptr_t)a->data,
        MHD_RESPMEM_PERSISTENT);
    if (!r)
        return NULL;
    MHD_add_response_header(r, "Content-Type", a->content_type);
    MHD_add_response_header(r, "ETag", etags[i]);
    /* The names carry no version, so a browser keeps the files but asks
     * again each time (a 304 when unchanged): a new binary's page is never
     * mixed with an old one's scripts. */
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (a->data == ss_asset_web_index_html) {
        /* The page loads nothing from outside this server. */
        MHD_add_response_header(r, "Content-Security-Policy", PAGE_CSP);
        MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    }
    *status = fresh ? 304 : 200;
    return r;
}

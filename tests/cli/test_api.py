"""Black-box tests of `shopstream serve` (docs/api.md): every endpoint, bad
parameters (400 with a message), unknown paths (404), other methods (405), the
bearer token (401), and the API's figures against `shopstream sql` over the
same store.

One store is built for the module (gen + process); one server without a token
and one with a token run on free loopback ports and are stopped at the end.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse

import pytest

from harness import (BIN, REPO, assert_ok, clean_env, cli, make_store, request,
                     start_server, stop_server)

SEED, COUNT, START = 3, 20000, "2026-11-02T00:00:00Z"
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("api"), SEED, COUNT, START)


@pytest.fixture(scope="module")
def server(store, request):
    proc, port = start_server(store)
    request.addfinalizer(lambda: stop_server(proc))
    return port


@pytest.fixture(scope="module")
def secured(store, request):
    proc, port = start_server(store, "--auth-token", TOKEN)
    request.addfinalizer(lambda: stop_server(proc))
    return port


def get(port, path, status=200):
    code, ctype, body = request(port, "GET", path)
    assert code == status, body
    if ctype.startswith("application/json"):
        return json.loads(body)
    return body.decode()


def sql(store, query):
    return json.loads(assert_ok(cli("sql", "--data", store, "--format", "json", query)).stdout)


def q(**params):
    return urllib.parse.urlencode(params)


# ---- health, errors, methods, auth ----

def test_healthz(server):
    assert get(server, "/healthz") == {"status": "ok"}


def test_unknown_path_is_404_json(server):
    assert "no such endpoint" in get(server, "/api/nope", 404)["error"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_405(server, method):
    code, _, body = request(server, method, "/api/totals")
    assert code == 405
    assert "GET" in json.loads(body)["error"]


def test_connection_is_kept_alive(server):
    """Requests follow one another on one connection, answers and errors
    alike. Regression: every answer closed its connection (libmicrohttpd
    closes it when the response is queued on the first call for a request),
    so each request cost a new connection and a thread, and 50 busy clients
    were refused past --max-connections by connections still closing."""
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    try:
        conn.connect()
        sock = conn.sock
        for path in ["/healthz", "/api/totals?range=24h", "/api/nope", "/api/kpis?range=15m"]:
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            assert r.getheader("Connection") != "close", path
            assert conn.sock is sock, path
        # A request with a body is refused before the body is read, and its
        # connection is not reused.
        conn.request("POST", "/api/totals", body=b"x" * 1000)
        r = conn.getresponse()
        r.read()
        assert r.status == 405 and r.getheader("Connection") == "close"
    finally:
        conn.close()


def test_token_required_when_set(secured):
    code, _, body = request(secured, "GET", "/api/totals?range=1h")
    assert code == 401 and "Bearer" in json.loads(body)["error"]
    code, _, _ = request(secured, "GET", "/api/totals?range=1h",
                         {"Authorization": "Bearer wrong"})
    assert code == 401
    code, _, body = request(secured, "GET", "/api/totals?range=1h",
                            {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200 and "totals" in json.loads(body)
    # Health checks need no token.
    assert request(secured, "GET", "/healthz")[0] == 200


@pytest.mark.parametrize("path,word", [
    ("/api/totals?range=2h", "range"),
    ("/api/totals?from=yesterday&to=2026-11-03", "from"),
    ("/api/totals?from=2026-11-02", "to"),
    ("/api/totals?from=2026-11-03&to=2026-11-02", "after"),
    ("/api/kpis?dimension=planet", "dimension"),
    ("/api/top?metric=happiness", "metric"),
    ("/api/top?n=0", "n"),
    ("/api/top?n=5000", "n"),
    ("/api/top?n=ten", "n"),
    ("/api/sql", "q"),
    ("/api/archive?hot_max_mb=-3", "hot_max_mb"),
    ("/api/cancellations?range=2d", "range"),
    ("/api/cancellations?from=2026-11-02", "to"),
])
def test_bad_parameters_are_400(server, path, word):
    assert word in get(server, path, 400)["error"]


# ---- figures against SQL ----

TOTAL_COLS = ["orders", "units", "gross_revenue", "paid_revenue", "payment_attempts",
              "failed_payments", "cancellations", "cancelled_revenue"]


def sql_totals(store, frm, to):
    cols = ", ".join(f"SUM({c}) AS {c}" for c in TOTAL_COLS)
    return sql(store, f"SELECT {cols} FROM kpi_minute WHERE dimension = 'overall' "
                      f"AND minute_start >= '{frm}' AND minute_start < '{to}'")[0]


@pytest.mark.parametrize("params", [
    {"from": "2026-11-02T00:10:00Z", "to": "2026-11-02T01:00:00Z"},
    {"range": "24h"},
    {"range": "7d"},
])
def test_totals_match_sql(server, store, params):
    got = get(server, "/api/totals?" + q(**params))
    r = got["range"]
    want = sql_totals(store, r["from"], r["to"])
    t = got["totals"]
    for c in TOTAL_COLS:
        assert t[c] == pytest.approx(want[c] or 0, abs=0.005), c
    # The orders of this stream fall in its first 84 minutes; the last 24 h
    # of simulated time hold only late payments and cancellations.
    if params.get("range") == "24h":
        assert t["orders"] == 0 and t["aov"] is None
        return
    assert t["orders"] > 0
    assert t["aov"] == pytest.approx(round(t["gross_revenue"] / t["orders"], 2), abs=0.006)
    assert t["failure_rate"] == pytest.approx(t["failed_payments"] / t["payment_attempts"],
                                              abs=1e-6)


def test_relative_range_ends_with_newest_minute(server, store):
    newest = sql(store, "SELECT max(minute_start) AS m FROM kpi_minute")[0]["m"]
    r = get(server, "/api/totals?range=15m")["range"]
    assert r["name"] == "15m"
    assert r["to"] > newest and r["from"] <= newest


def test_money_has_two_decimals(server):
    _, _, body = request(server, "GET", "/api/totals?range=7d")
    text = body.decode()
    gross = text.split('"gross_revenue":')[1].split(",")[0]
    assert len(gross.split(".")[1]) == 2, gross


def test_kpis_rows_match_sql(server, store):
    frm, to = "2026-11-02T00:30:00.000Z", "2026-11-02T00:40:00.000Z"
    got = get(server, "/api/kpis?" + q(dimension="country", **{"from": frm, "to": to}))
    want = sql(store, "SELECT minute_start, dimension_value, orders, gross_revenue, final "
                      "FROM kpi_minute WHERE dimension = 'country' AND minute_start >= "
                      f"'{frm}' AND minute_start < '{to}' "
                      "ORDER BY minute_start, dimension_value")
    assert got["dimension"] == "country" and len(got["rows"]) == len(want) > 0
    for a, b in zip(got["rows"], want):
        for k in b:
            assert a[k] == pytest.approx(b[k]) if isinstance(b[k], float) else a[k] == b[k]
        assert "failure_rate" in a and "cancelled_revenue" in a


@pytest.mark.parametrize("dim,metric", [("city", "gross_revenue"), ("category", "orders"),
                                        ("payment_method", "failed_payments")])
def test_top_matches_sql(server, store, dim, metric):
    got = get(server, "/api/top?" + q(dimension=dim, metric=metric, n=5, range="7d"))
    r = got["range"]
    want = sql(store, f"SELECT dimension_value, SUM({metric}) AS v FROM kpi_minute "
                      f"WHERE dimension = '{dim}' AND minute_start >= '{r['from']}' AND "
                      f"minute_start < '{r['to']}' GROUP BY dimension_value "
                      "ORDER BY v DESC, dimension_value LIMIT 5")
    assert [x["dimension_value"] for x in got["rows"]] == [x["dimension_value"] for x in want]
    for a, b in zip(got["rows"], want):
        assert a[metric] == pytest.approx(b["v"], abs=0.005)


def test_top_cities_carry_coordinates(server, store):
    got = get(server, "/api/top?" + q(dimension="city", n=1000, range="7d"))["rows"]
    want = {c["city"]: (c["lat"], c["lon"]) for c in sql(store, "SELECT * FROM cities")}
    assert len(got) > 10
    for row in got:
        assert (row["lat"], row["lon"]) == want[row["dimension_value"]]
    # Still ordered by the metric, as without coordinates.
    revenue = [row["gross_revenue"] for row in got]
    assert revenue == sorted(revenue, reverse=True)
    assert "lat" not in get(server, "/api/top?" + q(dimension="category", range="7d"))["rows"][0]


@pytest.mark.parametrize("params", [
    {"from": "2026-11-02T03:00:00Z", "to": "2026-11-02T09:00:00Z"},
    {"range": "7d"},
])
def test_cancellations_by_reason_match_sql_and_totals(server, store, params):
    got = get(server, "/api/cancellations?" + q(**params))
    r = got["range"]
    want = sql(store, "SELECT reason, count(*) AS n, round(sum(refund), 2) AS refunded "
                      f"FROM cancellations WHERE ts >= '{r['from']}' AND ts < '{r['to']}' "
                      "GROUP BY reason ORDER BY n DESC, reason")
    assert len(want) >= 3
    assert [(x["reason"], x["cancellations"]) for x in got["rows"]] == \
        [(x["reason"], x["n"]) for x in want]
    for a, b in zip(got["rows"], want):
        assert a["refunded"] == pytest.approx(b["refunded"], abs=0.005)
    # The facts by reason add up to the KPIs of the same minutes.
    totals = sql_totals(store, r["from"], r["to"])
    assert sum(x["cancellations"] for x in got["rows"]) == totals["cancellations"]
    assert sum(x["refunded"] for x in got["rows"]) == pytest.approx(
        totals["cancelled_revenue"], abs=0.005)


def test_answers_read_archived_data(store, tmp_path):
    """A range past the hot store reads the cold store: the answers are the
    same before and after the oldest events and minutes are archived (top
    sums each part, then combines the sums)."""
    data = tmp_path / "data"
    shutil.copytree(store, data)
    proc, port = start_server(data)
    try:
        paths = ["/api/cancellations?range=7d", "/api/totals?range=7d", "/api/kpis?range=7d"]
        paths += ["/api/top?" + q(dimension=d, metric=m, n=1000, range="7d")
                  for d in ("city", "category", "payment_method")
                  for m in ("gross_revenue", "orders", "failed_payments", "aov")]
        before = [get(port, p) for p in paths]
        assert_ok(cli("archive", "--data", data, "--once", "--hot-max-mb", "1.6"))
        for t in ("cancellations", "kpi_minute_data"):
            archived = sql(data, f"SELECT count(*) AS n FROM cold_{t}")[0]["n"]
            assert archived > 0, t
        after = [get(port, p) for p in paths]
        for p, a, b in zip(paths, after, before):
            assert a == b, p
    finally:
        stop_server(proc)


def test_kept_connections_see_new_data(store, tmp_path):
    """The server keeps its query connections between requests
    (query/pool.h): a request after more events are processed into the store
    sees them, and a new store put in the old one's place is read, not the
    old file that kept connections hold open."""
    data = tmp_path / "data"
    shutil.copytree(store, data)
    proc, port = start_server(data)
    try:
        path = "/api/totals?range=30d"
        before = get(port, path)["totals"]["orders"]
        assert before == COUNT
        for _ in range(3):
            assert get(port, path)["totals"]["orders"] == before
        more = tmp_path / "more.jsonl"
        more.write_bytes(assert_ok(cli("gen", "--seed", SEED + 1, "--count", 500, "--max",
                                       "--start", "2026-11-09T00:00:00Z")).stdout)
        assert_ok(cli("process", "--from", more, "--data", data))
        assert sql(data, "SELECT count(*) AS n FROM orders")[0]["n"] == COUNT + 500
        assert get(port, path)["totals"]["orders"] == COUNT + 500
        # Another store (of 700 orders) at the same path: the directory
        # moved away, and the other one moved in.
        (tmp_path / "other").mkdir()
        other = make_store(tmp_path / "other", SEED + 2, 700, START)
        data.rename(tmp_path / "old")
        other.rename(data)
        assert get(port, path)["totals"]["orders"] == 700
    finally:
        stop_server(proc)


# ---- archive, sql, metrics ----

def test_archive_status(server):
    got = get(server, "/api/archive?hot_max_mb=1")
    assert got["hot_bytes"] > 0 and got["hot_max_bytes"] == 1000000
    assert got["over_threshold"] is True and got["archives"] == []
    assert get(server, "/api/archive")["hot_max_bytes"] is None


def test_sql_rows(server, store):
    got = get(server, "/api/sql?" + q(q="SELECT count(*) AS n FROM orders"))
    assert got["rows"] == sql(store, "SELECT count(*) AS n FROM orders")


@pytest.mark.parametrize("stmt", ["DELETE FROM orders_data", "DROP TABLE orders_data",
                                  "INSERT INTO meta VALUES ('a', 'b')"])
def test_sql_refuses_writes(server, store, stmt):
    assert get(server, "/api/sql?" + q(q=stmt), 400)["error"]
    assert sql(store, "SELECT count(*) AS n FROM orders")[0]["n"] > 0


def test_sql_row_limit(server):
    err = get(server, "/api/sql?" + q(q="SELECT * FROM orders"), 400)["error"]
    assert "rows" in err


def test_metrics(server):
    get(server, "/healthz")
    get(server, "/nope", 404)
    code, ctype, body = request(server, "GET", "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
    values = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    for name in ["events_in_total", "events_stored_total", "events_duplicate_total",
                 "events_rejected_total", "events_late_total", "watermark_lag_seconds",
                 "hot_data_bytes", "archive_runs_total"]:
        assert f"shopstream_{name}" in values, name
    assert values["shopstream_events_stored_total"] > 40000
    assert values['shopstream_http_requests_total{endpoint="/healthz",code="200"}'] >= 1
    assert values['shopstream_http_requests_total{endpoint="other",code="404"}'] >= 1

"""The KPI sink over HBase (--kpi-sink hbase+http://HOST:PORT/TABLE), against
the standalone HBase and REST gateway of scripts/hbase (the `hbase` fixture,
one per test session).

Every final minute KPI row of the hot store (the kpi_minute view, final = 1)
must be in HBase with the same values, read back over REST with scanners:
row key dimension#value#minute, family m, a column per KPI, values as text.
Cells are counted, not rows, since a scanner's batch splits rows.

- A seeded run with the sink: HBase equals the hot store, one dimension
  value's minutes are one prefix scan, oldest first, and `archive --status`
  and the gauge of /metrics show the sink caught up.
- `process` SIGKILLed five times while the sink writes, then run to its end:
  the cells are exact (a rewritten window ends as an uninterrupted run).
- `archive --once --kpi-sink` over a store whose sink fell behind writes the
  KPI rows before it moves them to the cold store.
- Bad input: malformed sink URIs exit 2 before anything is opened; a missing
  table exits 2 naming `shopstream hbase-create`; a gateway that does not
  answer is logged, the pipeline runs to its end, and /metrics shows the
  sink's lag as +Inf.
- The HBase master SIGKILLed while `process --follow` writes, then restarted
  with its tables (scripts/hbase start --keep, which replays the WAL): the
  sink retries, catches up, and the cells are exact. Last, as it restarts the
  session's HBase.
"""
import base64
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import ENGINE_START, process
from harness import (BIN, assert_ok, clean_env, cli, describe, free_port, hbase,  # noqa: F401
                     request, start_server, stop_server)

SEED, COUNT = 43, 20_000
KPI_COLUMNS = ("orders", "units", "gross_revenue", "paid_revenue", "aov", "payment_attempts",
               "failed_payments", "cancellations", "cancelled_revenue")
MONEY = {"gross_revenue", "paid_revenue", "aov", "cancelled_revenue"}


# ---- reading HBase over REST ----

def rest(server, method, path, body=None):
    """One call to the gateway; returns (status, headers, body)."""
    req = urllib.request.Request(f"http://{server.address}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Accept": "application/json",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def b64(data):
    return base64.b64encode(data).decode()


def scan(server, table, prefix=b""):
    """Every cell of the table's rows that start with prefix, in HBase's
    order, as (row key, column, value) texts, through a scanner."""
    spec = {"batch": 1000}
    if prefix:
        end = prefix[:-1] + bytes([prefix[-1] + 1])
        spec.update(startRow=b64(prefix), endRow=b64(end))
    status, headers, body = rest(server, "POST", f"/{table}/scanner", spec)
    assert status == 201, f"scanner on {table}: HTTP {status} {body[:300]!r}"
    path = headers["Location"].split(server.address, 1)[1]
    cells = []
    try:
        while True:
            status, _, body = rest(server, "GET", path)
            if status == 204:
                return cells
            assert status == 200, f"scanner {path}: HTTP {status} {body[:300]!r}"
            for row in json.loads(body)["Row"]:
                key = base64.b64decode(row["key"]).decode()
                for cell in row["Cell"]:
                    cells.append((key, base64.b64decode(cell["column"]).decode(),
                                  base64.b64decode(cell["$"]).decode()))
    finally:
        rest(server, "DELETE", path)


def hbase_rows(server, table, prefix=b""):
    """{row key: {KPI: text}} of the table."""
    rows = {}
    for key, column, value in scan(server, table, prefix):
        family, _, name = column.partition(":")
        assert family == "m", column
        assert name not in rows.setdefault(key, {}), (key, column)
        rows[key][name] = value
    return rows


# ---- the hot store ----

def hot_kpis(data):
    """{dimension#value#minute: {KPI: text}} of the final rows of kpi_minute,
    as the sink writes them: counts as integers, money with two decimals,
    aov only for a minute with orders."""
    with sqlite3.connect(f"file:{data}/hot.db?mode=ro", uri=True) as db:
        rows = db.execute(f"SELECT minute_start, dimension, dimension_value, "
                          f"{', '.join(KPI_COLUMNS)} FROM kpi_minute WHERE final = 1").fetchall()
    out = {}
    for minute, dim, value, *kpis in rows:
        cells = {}
        for name, v in zip(KPI_COLUMNS, kpis):
            if v is None:
                continue
            cells[name] = f"{v:.2f}" if name in MONEY else str(v)
        out[f"{dim}#{value}#{minute}"] = cells
    return out


def notes(data):
    """The hot store's lifecycle notes, where the sink keeps its position."""
    try:
        with sqlite3.connect(f"file:{data}/hot.db?mode=ro", uri=True, timeout=30) as db:
            return dict(db.execute("SELECT key, value FROM lifecycle_notes"))
    except sqlite3.OperationalError:
        return {}  # not made yet


def position(data, uri):
    return notes(data).get(f"kpi_sink_position {uri}")


def sink_status(data, uri):
    return notes(data).get(f"kpi_sink {uri}", "")


def create(server, table):
    p = assert_ok(cli("hbase-create", server.sink(table)))
    assert f"HBase table '{table}' at {server.url} is ready" in p.stdout.decode(), describe(p)


def assert_same(server, table, data):
    """HBase holds exactly the final KPI rows of the hot store, cell for cell."""
    want = hot_kpis(data)
    assert len(want) > 500, f"only {len(want)} final KPI rows: the stream is too small"
    cells = scan(server, table)
    assert len(cells) == sum(len(c) for c in want.values()), \
        f"{len(cells)} cells in HBase, {sum(len(c) for c in want.values())} in the hot store"
    got = hbase_rows(server, table)
    missing = sorted(set(want) - set(got))[:3]
    extra = sorted(set(got) - set(want))[:3]
    assert not missing and not extra, f"missing in HBase: {missing}; not in the hot store: {extra}"
    wrong = [(k, want[k], got[k]) for k in want if want[k] != got[k]][:3]
    assert not wrong, f"rows that differ (hot store, HBase): {wrong}"


def sink_lag_metric(data, uri):
    """The value of the sink's gauge in `serve`'s /metrics."""
    proc, port = start_server(data)
    try:
        status, _, body = request(port, "GET", "/metrics")
    finally:
        stop_server(proc)
    assert status == 200
    prefix = f'shopstream_kpi_sink_lag_minutes{{sink="{uri}"}} '
    lines = [ln for ln in body.decode().splitlines() if ln.startswith(prefix)]
    assert len(lines) == 1, body.decode()
    return lines[0][len(prefix):]


def start_follow(data, source, uri):
    return subprocess.Popen([BIN, "process", "--follow", "--from", str(source), "--data",
                             str(data), "--kpi-sink", uri, "--archive-every", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())


def wait_for(what, cond, proc=None, limit=600):
    """Polls cond until it holds (the limit only ends a hung test)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited {proc.returncode} while waiting for {what}:\n"
                                 f"{proc.stderr.read().decode(errors='replace')[-3000:]}")
        time.sleep(0.02)
    raise AssertionError(f"no {what} within {limit} s")


@pytest.fixture(scope="module")
def source(gen_file):
    return gen_file(SEED, COUNT, ENGINE_START)


# ---- the tests ----

def test_a_seeded_run_writes_every_final_kpi_row(hbase, source, tmp_path):
    table = "kpis_seeded"
    create(hbase, table)
    create(hbase, table)  # a table that exists is fine
    data = tmp_path / "data"
    uri = hbase.sink(table)
    process(data, source, "--kpi-sink", uri)
    assert_same(hbase, table, data)

    # One dimension value's minutes are one prefix scan, oldest first.
    want = hot_kpis(data)
    berlin = sorted(k for k in want if k.startswith("city#Berlin#"))
    assert len(berlin) > 50, len(berlin)
    got = hbase_rows(hbase, table, b"city#Berlin#")
    assert list(got) == berlin
    assert all(got[k] == want[k] for k in berlin)

    # The position can pass the newest row: a final minute without events.
    newest = max(k.rsplit("#", 1)[1] for k in want)
    written = position(data, uri)
    assert written >= newest, (written, newest)
    st = assert_ok(cli("archive", "--data", data, "--status")).stdout.decode()
    assert f"kpi sink:\n  HBase table '{table}' at {hbase.url}: written through {written}, " \
           "caught up" in st, st
    assert sink_lag_metric(data, uri) == "0"

    # Another run over the same input changes no cell.
    before = scan(hbase, table)
    process(data, source, "--kpi-sink", uri)
    assert [c for c in scan(hbase, table)] == before


def test_process_killed_five_times_while_the_sink_writes(hbase, source, tmp_path):
    table = "kpis_killed"
    create(hbase, table)
    data = tmp_path / "data"
    uri = hbase.sink(table)
    kills = []
    for _ in range(5):
        proc = start_follow(data, source, uri)
        last = kills[-1] if kills else None
        try:
            kills.append(wait_for("move of the sink's position",
                                  lambda: (p := position(data, uri)) and p != last and p, proc))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    process(data, source, "--kpi-sink", uri)
    newest = max(k.rsplit("#", 1)[1] for k in hot_kpis(data))
    assert kills == sorted(kills) and len(set(kills)) == 5, kills
    assert kills[-1] < newest, f"the last kill came after the sink had caught up: {kills}"
    assert position(data, uri) >= newest
    assert_same(hbase, table, data)


def test_archive_writes_the_kpis_before_it_moves_them(hbase, source, tmp_path):
    """The sink of `process` could not write (no gateway there); `archive
    --once --kpi-sink` writes every final minute before it moves KPI rows to
    the cold store, so HBase holds what the hot store held."""
    table = "kpis_archive"
    create(hbase, table)
    data = tmp_path / "data"
    away = f"hbase+http://127.0.0.1:{free_port()}/{table}"
    process(data, source, "--kpi-sink", away, "--archive-every", "0")
    assert position(data, away) is None
    want = hot_kpis(data)
    p = assert_ok(cli("archive", "--data", data, "--once", "--hot-max-mb", "0.1", "--kpi-sink",
                      hbase.sink(table)))
    assert hot_kpis(data) != want, f"nothing was archived: {describe(p)}"
    got = hbase_rows(hbase, table)
    assert got == want


@pytest.mark.parametrize("uri,problem", [
    ("hbase+http://127.0.0.1/kpis", "give hbase+http://HOST:PORT/TABLE"),
    ("hbase+http://127.0.0.1:8080", "give hbase+http://HOST:PORT/TABLE"),
    ("hbase+http://127.0.0.1:8080/", "is not an HBase table name"),
    ("hbase+http://127.0.0.1:70000/kpis", "give hbase+http://HOST:PORT/TABLE"),
    ("hbase+http://127.0.0.1:8080/bad table", "is not an HBase table name"),
    ("hbase://127.0.0.1:8080/kpis", "unknown KPI sink"),
])
def test_a_malformed_sink_uri_exits_2(uri, problem, tmp_path, source):
    data = tmp_path / "data"
    for cmd in (["process", "--from", source], ["run", "--headless", "--count", 10, "--max"],
                ["archive", "--once"]):
        p = cli(*cmd, "--data", data, "--kpi-sink", uri)
        err = p.stderr.decode()
        assert p.returncode == 2, describe(p)
        assert f"shopstream {cmd[0]}: --kpi-sink: " in err and problem in err, err
        assert not data.exists(), f"{cmd[0]} made {data} for a bad flag"
    p = cli("hbase-create", uri)
    assert p.returncode == 2 and problem in p.stderr.decode(), describe(p)


def test_hbase_create_needs_one_uri():
    for args in ([], ["a", "b"]):
        p = cli("hbase-create", *args)
        assert p.returncode == 2, describe(p)
        assert "give one sink URI, hbase+http://HOST:PORT/TABLE" in p.stderr.decode()


def test_a_missing_table_names_hbase_create(hbase, source, tmp_path):
    uri = hbase.sink("no_such_table")
    p = cli("process", "--from", source, "--data", tmp_path / "data", "--kpi-sink", uri)
    err = p.stderr.decode()
    assert p.returncode == 2, describe(p)
    assert (f"the HBase table 'no_such_table' at {hbase.url} does not exist; create it with "
            f"'shopstream hbase-create {uri}'") in err, err
    assert rest(hbase, "GET", "/no_such_table/schema")[0] == 404


def test_an_unreachable_gateway_does_not_stop_the_pipeline(source, tmp_path):
    port = free_port()
    uri = f"hbase+http://127.0.0.1:{port}/kpis"
    data = tmp_path / "data"
    p = process(data, source, "--kpi-sink", uri)
    err = p.stderr.decode()
    assert f"cannot reach HBase's REST gateway at http://127.0.0.1:{port}" in err, err
    assert "the pipeline goes on" in err, err
    with sqlite3.connect(f"file:{data}/hot.db?mode=ro", uri=True) as db:
        stored = db.execute("SELECT sum(events_in) FROM shard_state").fetchone()[0]
    assert stored == sum(1 for _ in open(source, "rb"))
    assert len(hot_kpis(data)) > 500
    st = assert_ok(cli("archive", "--data", data, "--status")).stdout.decode()
    assert f"HBase table 'kpis' at http://127.0.0.1:{port}: written through nothing yet, " \
           "every final minute behind; 1 failed attempts (cannot reach" in st, st
    assert sink_lag_metric(data, uri) == "+Inf"


def test_the_sink_catches_up_after_the_master_was_killed(hbase, source, tmp_path):
    table = "kpis_outage"
    create(hbase, table)
    data = tmp_path / "data"
    uri = hbase.sink(table)
    proc = start_follow(data, source, uri)
    try:
        wait_for("first write of the sink", lambda: position(data, uri), proc)
        os.kill(hbase.pid("master"), signal.SIGKILL)
        st = wait_for("failed write while the master is away",
                      lambda: "failed attempts" in (s := sink_status(data, uri)) and s, proc)
        behind = position(data, uri)
        hbase.restart()
        newest = max(k.rsplit("#", 1)[1] for k in hot_kpis(data))
        assert behind < newest, f"the sink had caught up before the outage: {st}"
        wait_for("catch-up after the restart",
                 lambda: sink_status(data, uri).endswith(", caught up")
                 and position(data, uri) >= newest, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode(errors="replace")[-3000:]
    err = proc.stderr.read().decode(errors="replace")
    assert f"cannot write KPIs to HBase table '{table}' at {hbase.url}" in err, err[-3000:]
    assert "answers again after" in err, err[-3000:]
    assert_same(hbase, table, data)

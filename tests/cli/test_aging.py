"""What ages out of the hot store with the facts (docs/lifecycle.md).

A store archived at a threshold below its size moves, with the facts of the
oldest minutes, the KPI rows of those minutes to the cold store (kpi/dt=/hour=
files listed in the manifests), and the customers, products and minutes that
only the archived facts reference (their rows are in the archive's dimension
snapshots). Over hot and cold together, kpi_minute, the dimensions, the API's
long ranges (30 days, custom) and the dashboard's queries give exactly what a
store that never archived gives, also when archived customers order again.
"""
import json
import shutil
import sqlite3
import subprocess
import threading
import time

import pytest

from archive_helpers import ColdScan, all_kpi_rows, committed, hot_size
from conftest import ENGINE_START, gen_args, run
from conftest import sql_json as sql
from harness import BIN, clean_env, cli, describe, request, start_server, stop_server
from storedb import store_db

SEED, COUNT = 41, 30000
DIM_QUERIES = (
    "SELECT * FROM customers ORDER BY customer_id",
    "SELECT * FROM products ORDER BY product_id",
    "SELECT * FROM time_minutes ORDER BY minute_start",
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """(never archived, archived): one stream processed into a store, and a
    copy of that store archived once at 40 % of its size."""
    base = tmp_path_factory.mktemp("kpi-life")
    src = base / "events.jsonl"
    run(*gen_args(SEED, COUNT, start=ENGINE_START), "--out", src)
    ref = base / "ref"
    run("process", "--from", src, "--data", ref, "--archive-every", "0")
    data = base / "archived"
    shutil.copytree(ref, data)
    mb = round(hot_size(data) * 0.4 / 1e6, 2)
    p = cli("archive", "--once", "--data", data, "--hot-max-mb", mb)
    assert p.returncode == 0, describe(p)
    return ref, data


def test_kpi_rows_of_archived_minutes_leave_the_hot_store(stores):
    ref, data = stores
    archives = committed(data)
    assert archives, "nothing was archived"
    last_cut = max(m["cutoff"] for _, m in archives)
    moved = sum(m["tables"]["kpi_minute"]["records"] for _, m in archives)
    db = store_db(f"file:{data / 'hot.db'}?mode=ro", uri=True)
    oldest, hot_rows = db.execute("SELECT min(minute_start), count(*) FROM kpi_minute_data").fetchone()
    db.close()
    db = store_db(f"file:{ref / 'hot.db'}?mode=ro", uri=True)
    ref_rows = db.execute("SELECT count(*) FROM kpi_minute_data").fetchone()[0]
    db.close()
    assert moved > 0 and oldest >= last_cut, (moved, oldest, last_cut)
    assert hot_rows + moved == ref_rows
    # Every file matches its manifest; every row is final and of its hour.
    ColdScan(data).run()
    # Hot and cold together hold exactly the never-archived store's rows.
    assert all_kpi_rows(data) == all_kpi_rows(ref)
    p = cli("archive", "--verify", "--data", data)
    assert p.returncode == 0, describe(p)


def test_sql_reads_kpis_over_hot_and_cold(stores):
    ref, data = stores
    for query in (
            "SELECT * FROM kpi_minute ORDER BY minute_start, dimension, dimension_value",
            "SELECT dimension, count(*) AS n, sum(orders) AS o, sum(gross_revenue) AS g, "
            "sum(paid_revenue) AS p, sum(cancelled_revenue) AS c FROM kpi_minute GROUP BY 1",
            "SELECT count(*) AS n FROM kpi_minute_data WHERE minute_start < "
            "'2026-11-02T01:00:00.000Z'"):
        assert sql(data, query) == sql(ref, query), query
    n = sql(data, "SELECT count(*) AS n FROM cold_kpi_minute_data")[0]["n"]
    assert n > 0


def test_long_ranges_of_the_api_answer_from_hot_and_cold(stores):
    ref, data = stores
    newest = sql(ref, "SELECT max(minute_start) AS m FROM kpi_minute")[0]["m"]
    paths = [
        "/api/totals?range=30d",
        "/api/totals?range=7d",
        "/api/totals?from=2026-11-01&to=2026-12-01",
        "/api/kpis?dimension=overall&from=2026-11-02T00:00:00Z&to=2026-11-02T06:00:00Z",
        "/api/top?dimension=city&n=20&range=30d",
        "/api/top?dimension=category&metric=orders&range=30d",
    ]
    answers = {}
    for store in (ref, data):
        proc, port = start_server(store)
        try:
            for path in paths:
                status, ctype, body = request(port, "GET", path)
                assert status == 200 and ctype.startswith("application/json"), (path, body)
                answers.setdefault(path, []).append(json.loads(body))
        finally:
            stop_server(proc)
    for path, (want, got) in answers.items():
        assert got == want, path
    totals = answers["/api/totals?range=30d"][0]
    assert totals["range"]["name"] == "30d" and totals["range"]["to"] > newest
    assert totals["totals"]["orders"] == COUNT


def hot_count(data, table):
    db = store_db(f"file:{data / 'hot.db'}?mode=ro", uri=True)
    try:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()


def test_customers_products_and_minutes_of_archived_facts_leave_the_hot_store(stores):
    ref, data = stores
    for table in ("customers", "products", "time_minutes"):
        assert hot_count(data, table) < hot_count(ref, table), table
    # Over hot and the snapshots, every row is the never-archived store's.
    for query in DIM_QUERIES:
        assert sql(data, query) == sql(ref, query), query
    # Those left in the hot store are the ones hot orders reference.
    db = store_db(f"file:{data / 'hot.db'}?mode=ro", uri=True)
    stray = db.execute("SELECT count(*) FROM customers WHERE customer_id NOT IN "
                       "(SELECT customer_id FROM orders_data)").fetchone()[0]
    db.close()
    assert stray == 0


def test_archived_customers_who_order_again_read_as_before(tmp_path):
    """Half a stream, archived down to a small hot store, then the other
    half, in which customers of the first half order again: the dimensions,
    the order states and the docs' analyst queries equal a never-archived
    run's."""
    src = tmp_path / "events.jsonl"
    run(*gen_args(SEED + 1, COUNT, start=ENGINE_START), "--out", src)
    lines = src.read_bytes().splitlines(keepends=True)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"".join(lines[:len(lines) // 2]))
    second.write_bytes(b"".join(lines[len(lines) // 2:]))
    ref, data = tmp_path / "ref", tmp_path / "data"
    run("process", "--from", src, "--data", ref, "--archive-every", "0")
    run("process", "--from", first, "--data", data, "--archive-every", "0")
    p = cli("archive", "--once", "--data", data, "--hot-max-mb", 1)
    assert p.returncode == 0, describe(p)
    evicted = sql(data, "SELECT count(*) AS n FROM customers WHERE customer_id NOT IN "
                        "(SELECT customer_id FROM main.customers)")[0]["n"]
    assert evicted > 0
    run("process", "--from", second, "--data", data, "--archive-every", "0")
    back = sql(data, "SELECT count(*) AS n FROM main.customers c JOIN cold_customers a "
                     "USING (customer_id)")[0]["n"]
    assert back > 0, "no archived customer ordered again"
    for query in DIM_QUERIES + (
            "SELECT status, count(*) AS n FROM order_state GROUP BY 1 ORDER BY 1",
            "SELECT c.customer_segment, count(*) AS n, sum(o.total_price) AS revenue FROM "
            "orders o JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 1",
            "SELECT p.category, count(*) AS n FROM orders o JOIN products p USING "
            "(product_id) GROUP BY 1 ORDER BY 1"):
        assert sql(data, query) == sql(ref, query), query


def test_a_replay_faster_than_the_archiver_waits_for_it(tmp_path):
    """`process` replaying a file as fast as it reads, at a 1 MB threshold:
    once the hot store passes twice its threshold, ingestion waits until the
    archiver has brought it back under (docs/lifecycle.md), so the store
    stays bounded instead of growing with the replay (about 18 MB here
    without the wait), and every event is stored once. The store passes twice
    its threshold by up to a commit's events before the engine waits: commits
    every 50 ms keep that a fraction of the bound however fast the engine."""
    src = tmp_path / "events.jsonl"
    run(*gen_args(SEED + 2, 100000, start=ENGINE_START), "--out", src)
    data = tmp_path / "data"
    proc = subprocess.Popen([BIN, "process", "--from", str(src), "--data", str(data),
                             "--hot-max-mb", "1", "--archive-every", "1", "--commit-ms", "50"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    sizes = []
    err = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))
    reader.start()
    db = data / "hot.db"
    while proc.poll() is None:
        try:
            con = store_db(f"file:{db}?mode=ro", uri=True, timeout=1)
            pages, free, size = con.execute(
                "SELECT (SELECT page_count FROM pragma_page_count), (SELECT freelist_count FROM "
                "pragma_freelist_count), (SELECT page_size FROM pragma_page_size)").fetchone()
            con.close()
            sizes.append((pages - free) * size / 1e6)
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    reader.join()
    log = err[0].decode(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    assert "over twice its threshold: ingestion waits for the archiver" in log, log[-3000:]
    # 5 to 7 MB on a quiet machine; the bound leaves room for a busy one.
    assert sizes and max(sizes) <= 10, f"the hot store reached {max(sizes):.1f} MB"
    got = sql(data, "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM orders")[0]
    assert got["n"] == got["d"] == 100000

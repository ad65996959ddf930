"""Minute KPIs age out with their facts (docs/lifecycle.md).

A store archived at a threshold below its size moves, with the facts of the
oldest minutes, the KPI rows of those minutes to the cold store (kpi/dt=/hour=
files listed in the manifests), so that the hot store keeps only the newer
minutes' rows. Over hot and cold together, kpi_minute, the API's long ranges
(30 days, custom) and the dashboard's queries give exactly what a store that
never archived gives.
"""
import json
import shutil
import sqlite3

import pytest

from archive_helpers import ColdScan, all_kpi_rows, committed, hot_size
from conftest import ENGINE_START, gen_args, run
from harness import cli, describe, request, start_server, stop_server

SEED, COUNT = 41, 30000


def sql(data, query):
    p = cli("sql", "--data", data, "--format", "json", query)
    assert p.returncode == 0, describe(p)
    return json.loads(p.stdout)


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
    mb = max(1, int(hot_size(data) * 0.4 / 1e6))
    p = cli("archive", "--once", "--data", data, "--hot-max-mb", mb)
    assert p.returncode == 0, describe(p)
    return ref, data


def test_kpi_rows_of_archived_minutes_leave_the_hot_store(stores):
    ref, data = stores
    archives = committed(data)
    assert archives, "nothing was archived"
    last_cut = max(m["cutoff"] for _, m in archives)
    moved = sum(m["tables"]["kpi_minute"]["records"] for _, m in archives)
    db = sqlite3.connect(f"file:{data / 'hot.db'}?mode=ro", uri=True)
    oldest, hot_rows = db.execute("SELECT min(minute_start), count(*) FROM kpi_minute_data").fetchone()
    db.close()
    db = sqlite3.connect(f"file:{ref / 'hot.db'}?mode=ro", uri=True)
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

"""The MongoDB hot store against a second MongoDB-wire server: FerretDB
v1.24.2 on its SQLite backend, started for this file's session by
`scripts/mongo start --ferretdb` (the `ferretdb` fixture).

A compatibility test, smaller than test_mongo_store.py's (which runs against
mongo-java-server): 10,000 orders processed into FerretDB, with one restart
of the server mid-run (stop, then start --keep), give the KPIs of the same
input processed into SQLite, read from outside with pymongo and through
`shopstream sql --hot`; the same input again under another name (a
duplicate batch) changes nothing.

Where FerretDB v1.24.2 departs from MongoDB's documented behaviour (the
backend relies on none of it; it aggregates nothing on the server):
- every find, update and delete reads the whole collection, even by _id
  (about 0.7 s per update_one at 20,000 documents);
- $group with more than one accumulator returns 0 for all but the first,
  without an error; there is no $avg, $min, $max or $lookup, and no
  transactions (the backend runs in its epoch mode);
- an `update` command whose statements match more than about 99 existing
  documents never answers, and the whole server stops answering with it:
  each matched statement keeps one of the 100 SQLite connections of the
  database until the command ends, and the write of the next one waits for
  a connection forever. MongoDB documents up to maxWriteBatchSize (100,000)
  statements per command, which the backend's bulk replaces of dimensions
  and KPIs use; a run here fails at its timeout instead of hanging.
"""
import json
import shutil
import subprocess
import threading
import time

import pymongo
import pytest

from conftest import BIN, ENGINE_START, SANITIZER_MARKS, gen_args, run
from harness import clean_env, describe, ferretdb  # noqa: F401

SEED, COUNT = 43, 10000
RUN_TIMEOUT = 900
KPI_COLUMNS = ("minute_start", "dimension", "dimension_value", "orders", "units",
               "gross_revenue", "paid_revenue", "payment_attempts", "failed_payments",
               "cancellations", "cancelled_revenue")


def kpis_sql(*args):
    q = ("SELECT " + ", ".join(KPI_COLUMNS) + " FROM kpi_minute "
         "ORDER BY minute_start, dimension, dimension_value")
    out = run("sql", *map(str, args), "--format", "json", q).stdout
    return json.loads(out)


def kpis_pymongo(db):
    """kpi_minute's documents summed over shards, as (minute, dimension,
    value) -> counters; money in cents."""
    out = {}
    for d in db.kpi_minute.find():
        key = (d["minute_start"].strftime("%Y-%m-%dT%H:%M"), d["dimension"], d["dimension_value"])
        row = out.setdefault(key, [0] * 8)
        for i, f in enumerate(("orders", "units", "gross_revenue_cents", "paid_revenue_cents",
                               "payment_attempts", "failed_payments", "cancellations",
                               "cancelled_revenue_cents")):
            row[i] += d[f]
    return out


def kpis_of_rows(rows):
    out = {}
    for r in rows:
        key = (r["minute_start"][:16], r["dimension"], r["dimension_value"])
        out[key] = [r["orders"], r["units"], round(r["gross_revenue"] * 100),
                    round(r["paid_revenue"] * 100), r["payment_attempts"], r["failed_payments"],
                    r["cancellations"], round(r["cancelled_revenue"] * 100)]
    return out


def process(source, hot, server=None):
    """`process` into hot; with server, stops the server once the run has
    committed twice and starts it again 5 s later with its data."""
    p = subprocess.Popen([BIN, "process", "--from", str(source), "--hot", hot,
                          "--archive-every", "0"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=clean_env())
    err = []
    reader = threading.Thread(target=lambda: err.append(p.stderr.read()))
    reader.start()
    try:
        if server is not None:
            client = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=10000,
                                        socketTimeoutMS=60000)
            db = hot.rsplit("/", 1)[1]
            deadline = time.monotonic() + RUN_TIMEOUT
            while time.monotonic() < deadline and p.poll() is None:
                doc = client[db].state.find_one({"_id": "commit"})
                if doc and doc.get("epoch", 0) >= 2:
                    break
                time.sleep(0.2)
            client.close()
            assert p.poll() is None, "process ended before the restart"
            server.stop()
            time.sleep(5)
            server.restart()
        p.wait(timeout=RUN_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        reader.join()
    text = b"".join(err).decode(errors="replace")
    assert p.returncode == 0, f"exit {p.returncode}: {text[-3000:]}"
    for mark in SANITIZER_MARKS:
        assert mark not in text, text[-3000:]
    return text


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    base = tmp_path_factory.mktemp("ferretdb-ref")
    src = base / "events.jsonl"
    run(*gen_args(SEED, COUNT, start=ENGINE_START), "--out", src)
    run("process", "--from", src, "--data", base / "data")
    return src, base / "data"


def test_kpis_as_sqlite_through_a_restart_and_a_duplicate_batch(ferretdb, reference,  # noqa: F811
                                                                 tmp_path):
    src, data = reference
    want = kpis_sql("--data", data)
    assert sum(r["orders"] for r in want if r["dimension"] == "overall") == COUNT

    hot = f"{ferretdb.uri}/compat"
    err = process(src, hot, server=ferretdb)
    assert "the server is away, retrying" in err, err[-2000:]
    client = pymongo.MongoClient(ferretdb.uri, serverSelectionTimeoutMS=10000)
    try:
        assert kpis_pymongo(client.compat) == kpis_of_rows(want)
        assert kpis_sql("--data", tmp_path / "m", "--hot", hot) == want

        # The same file under another name: read from its start, every
        # event a duplicate; the KPIs stay.
        copy = tmp_path / "again.jsonl"
        shutil.copy(src, copy)
        process(copy, hot)
        assert kpis_pymongo(client.compat) == kpis_of_rows(want)
        assert kpis_sql("--data", tmp_path / "m", "--hot", hot) == want
        orders = client.compat.orders.count_documents({})
        assert orders == COUNT
    finally:
        client.close()

"""Reading and archiving a MongoDB hot store (`--hot mongodb://...`) against
mongo-java-server (the `mongo` fixture, scripts/mongo): `shopstream sql`
over its collections (virtual tables with the pushdown of ts ranges and
keys), the archive lifecycle out of it, and the API of `serve` over it, each
compared with the same input in a SQLite store.
"""
import datetime
import json
import re
import signal
import subprocess
import time

import pymongo
import pytest

from conftest import BIN, ENGINE_START, gen_args, run
from harness import clean_env, cli, describe, mongo, request, start_server, stop_server  # noqa: F401
from test_mongo_store import process
from test_queries import QUERIES

SEED, COUNT = 31, 5000


@pytest.fixture(scope="module")
def stores(mongo, tmp_path_factory):  # noqa: F811
    """One input processed into SQLite (the reference) and into MongoDB."""
    base = tmp_path_factory.mktemp("mongo-reads")
    src = base / "events.jsonl"
    run(*gen_args(SEED, COUNT, start=ENGINE_START), "--out", src)
    run("process", "--from", src, "--data", base / "ref", "--archive-every", 0)
    hot = f"{mongo.uri}/reads"
    process(src, hot, "--data", base / "m", "--archive-every", 0)
    return src, base / "ref", hot, base / "m"


def sql(*args):
    p = cli("sql", "--format", "json", *map(str, args))
    assert p.returncode == 0, describe(p)
    return json.loads(p.stdout)


@pytest.mark.parametrize("query, may_be_empty", QUERIES)
def test_the_queries_of_the_docs_give_the_same_rows(stores, query, may_be_empty):
    _, ref, hot, data = stores
    want = sql("--data", ref, query)
    got = sql("--data", data, "--hot", hot, query)
    assert got == want


def test_ranges_and_keys_are_read_exactly(stores):
    """Bounds of every form (dates, hours, exact times, open and closed ends)
    and key lookups: what the pushdown narrows, SQLite checks again, so the
    answers equal SQLite's."""
    _, ref, hot, data = stores
    first = sql("--data", ref, "SELECT ts, event_id, order_id FROM orders ORDER BY ts LIMIT 1 "
                "OFFSET 700")[0]
    t = first["ts"]
    queries = [
        f"SELECT count(*) AS n FROM orders WHERE ts >= '{t[:13]}' AND ts < '{t[:16]}'",
        f"SELECT count(*) AS n FROM payments WHERE ts > '{t}'",
        f"SELECT count(*) AS n FROM cancellations WHERE ts <= '{t[:10]}T23'",
        f"SELECT count(*) AS n FROM orders WHERE ts BETWEEN '{t[:10]}' AND '{t}'",
        f"SELECT count(*) AS n FROM orders WHERE ts = '{t}'",
        "SELECT count(*) AS n FROM orders WHERE ts >= 'not a time'",
        f"SELECT * FROM orders WHERE event_id = '{first['event_id']}'",
        f"SELECT event_id, amount FROM payments WHERE order_id = '{first['order_id']}' "
        "ORDER BY event_id",
        f"SELECT minute_start, orders FROM kpi_minute WHERE dimension = 'overall' AND "
        f"minute_start >= '{t[:16]}' ORDER BY minute_start LIMIT 5",
        "SELECT * FROM engine_state ORDER BY key",
        "SELECT source, position FROM ingest_positions",
    ]
    for q in queries:
        want = sql("--data", ref, q)
        got = sql("--data", data, "--hot", hot, q)
        assert got == want, q
    assert sql("--data", ref, queries[0])[0]["n"] > 0
    # Input positions name the file each store read; the rows are there.
    assert sql("--data", data, "--hot", hot, "SELECT count(*) AS n FROM ingest_positions")[0][
        "n"] == 1


def test_sql_refuses_writes_and_reports_a_server_that_is_away(stores):
    _, _, hot, data = stores
    p = cli("sql", "--data", str(data), "--hot", hot, "DELETE FROM orders_data")
    assert p.returncode == 2 and b"refused" in p.stderr, describe(p)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = cli("sql", "--data", str(data), "--hot", f"mongodb://127.0.0.1:{port}/x",
            "SELECT 1")
    assert p.returncode == 1, describe(p)
    assert f"cannot reach MongoDB at 127.0.0.1:{port}/x".encode() in p.stderr


def test_serve_answers_from_mongodb_as_from_sqlite(stores):
    _, ref, hot, data = stores
    span = sql("--data", ref, "SELECT min(minute_start) AS a, max(minute_start) AS b "
               "FROM kpi_minute")[0]
    paths = [f"/api/totals?from={span['a']}&to={span['b']}",
             f"/api/kpis?from={span['a']}&to={span['b']}&dimension=country",
             f"/api/top?from={span['a']}&to={span['b']}&dimension=category"]
    answers = []
    for args in ((ref,), (data, "--hot", hot)):
        proc, port = start_server(*args)
        try:
            answers.append([request(port, "GET", p) for p in paths])
        finally:
            stop_server(proc)
    for p, (ws, _, wb), (gs, _, gb) in zip(paths, *answers):
        assert ws == gs == 200, (p, wb[:300], gb[:300])
        assert json.loads(gb) == json.loads(wb), p
    assert json.loads(answers[0][0][2])["totals"]["orders"] == COUNT


def test_archiving_out_of_mongodb(mongo, stores, tmp_path):  # noqa: F811
    """The archive lifecycle on MongoDB: at a threshold below the store's
    size, the oldest facts move to the cold store; hot and cold together
    hold every event once, the manifests verify, and the queries of the docs
    give SQLite's rows."""
    src, ref, _, _ = stores
    hot = f"{mongo.uri}/archived"
    data = tmp_path / "data"
    process(src, hot, "--data", data, "--archive-every", 0)
    client = pymongo.MongoClient(mongo.uri, serverSelectionTimeoutMS=10000)
    size = client.archived.command("dbStats")["dataSize"]
    facts = {c: client.archived[c].count_documents({})
             for c in ("orders", "payments", "cancellations")}
    # A threshold that the facts' oldest part has to leave for.
    mb = max(1, int(size * 0.8 / 1e6))
    p = cli("archive", "--once", "--data", str(data), "--hot", hot, "--hot-max-mb", str(mb))
    assert p.returncode == 0, describe(p)
    assert b"to the cold store" in p.stderr, describe(p)
    left = {c: client.archived[c].count_documents({}) for c in facts}
    assert sum(left.values()) < sum(facts.values()), "nothing moved out of MongoDB"
    # The KPI rows of the archived minutes moved too: MongoDB keeps none of
    # them, and kpi_minute over hot and cold is SQLite's.
    moved = sql("--data", data, "--hot", hot,
                "SELECT count(*) AS n, max(minute_start) AS last FROM cold_kpi_minute_data")[0]
    assert moved["n"] > 0
    last = datetime.datetime.fromisoformat(moved["last"].replace("Z", "+00:00"))
    assert client.archived.kpi_minute.count_documents({"minute_start": {"$lte": last}}) == 0
    kpis = "SELECT * FROM kpi_minute ORDER BY minute_start, dimension, dimension_value"
    assert sql("--data", data, "--hot", hot, kpis) == sql("--data", ref, kpis)
    client.close()

    counts = "SELECT (SELECT count(*) FROM orders) AS o, (SELECT count(*) FROM payments) AS p, " \
             "(SELECT count(*) FROM cancellations) AS c, (SELECT count(*) FROM cold_orders) AS co"
    got = sql("--data", data, "--hot", hot, counts)[0]
    want = sql("--data", ref, counts)[0]
    assert (got["o"], got["p"], got["c"]) == (want["o"], want["p"], want["c"])
    assert got["co"] > 0 and got["co"] == facts["orders"] - left["orders"]

    p = cli("archive", "--verify", "--data", str(data), "--hot", hot)
    assert p.returncode == 0, describe(p)
    assert b"all files match their manifests" in p.stdout
    p = cli("archive", "--status", "--data", str(data), "--hot", hot)
    assert p.returncode == 0 and b"committed" in p.stdout, describe(p)

    nonempty = 0
    for param in QUERIES:
        query = param.values[0]
        want = sql("--data", ref, query)
        assert sql("--data", data, "--hot", hot, query) == want, query
        nonempty += bool(want)
    assert nonempty > len(QUERIES) // 2, f"only {nonempty} of {len(QUERIES)} queries gave rows"


def test_sigkill_while_archiving_out_of_mongodb(mongo, stores, tmp_path):  # noqa: F811
    """`process` with its archiver, into MongoDB at a threshold it is always
    over, SIGKILLed the moment an archive is being written, then restarted:
    each archive is finished or rolled back, and at the end hot and cold hold
    every event exactly once."""
    src, ref, _, _ = stores
    hot = f"{mongo.uri}/killarch"
    data = tmp_path / "data"
    client = pymongo.MongoClient(mongo.uri, serverSelectionTimeoutMS=10000)
    args = [BIN, "process", "--from", str(src), "--data", str(data), "--hot", hot,
            "--hot-max-mb", "1", "--archive-every", "1", "--commit-records", "500"]
    mid_archive, recovered = 0, []
    for _ in range(6):
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=clean_env())
        deadline = time.monotonic() + 30
        while p.poll() is None and time.monotonic() < deadline:
            if client.killarch.archives.find_one({"state": "writing"}):
                p.send_signal(signal.SIGKILL)
                mid_archive += 1
                break
            time.sleep(0.005)
        _, err = p.communicate(timeout=120)
        text = err.decode(errors="replace")
        recovered += re.findall(r"recovered archive \S+: (finished|rolled back)", text)
        assert p.returncode in (0, -signal.SIGKILL), text[-3000:]
        if p.returncode == 0:
            break
    assert mid_archive >= 2, f"only {mid_archive} kills landed while an archive was written"
    final = process(src, hot, "--data", data, "--hot-max-mb", 1, "--archive-every", 1)
    recovered += re.findall(r"recovered archive \S+: (finished|rolled back)",
                            final.stderr.decode(errors="replace"))
    assert recovered, "no run recovered an archive that a kill interrupted"
    assert not client.killarch.archives.find_one({"state": {"$ne": "committed"}})
    client.close()

    counts = ("SELECT (SELECT count(*) FROM orders) AS o, "
              "(SELECT count(DISTINCT event_id) FROM orders) AS od, "
              "(SELECT count(*) FROM payments) AS p, "
              "(SELECT count(DISTINCT event_id) FROM payments) AS pd, "
              "(SELECT count(*) FROM cancellations) AS c, "
              "(SELECT count(*) FROM cold_orders) AS co, "
              "(SELECT sum(total_price) FROM orders) AS rev")
    got = sql("--data", data, "--hot", hot, counts)[0]
    want = sql("--data", ref, counts)[0]
    assert got["co"] > 0
    for k in ("o", "od", "p", "pd", "c", "rev"):
        assert got[k] == want[k], (k, got, want)
    p = cli("archive", "--verify", "--data", str(data), "--hot", hot)
    assert p.returncode == 0, describe(p)
    q = "SELECT dimension, dimension_value, sum(orders) AS n, sum(gross_revenue) AS g " \
        "FROM kpi_minute GROUP BY 1, 2 ORDER BY 1, 2"
    assert sql("--data", data, "--hot", hot, q) == sql("--data", ref, q)


def test_readers_see_committed_data_only(mongo, stores):  # noqa: F811
    """What an epoch past the last commit wrote (a writer killed mid-batch
    leaves it until the next writer undoes it) is invisible to SQL: an
    inserted fact is not there, a replaced customer reads as the version it
    replaced. The uncommitted writes are made by hand here, in the shapes the
    store writes (docs/architecture.md, "MongoDB"), since a real writer's
    moment between two round trips cannot be held still."""
    src, ref, _, _ = stores
    hot = f"{mongo.uri}/dirty"
    process(src, hot, "--archive-every", 0)
    client = pymongo.MongoClient(mongo.uri, serverSelectionTimeoutMS=10000)
    db = client.dirty
    epoch = db.state.find_one({"_id": "commit"})["epoch"]
    tag = (epoch + 1) << 16
    order = db.orders.find_one()
    ghost = dict(order, _id="ghost-order", _e=tag)
    db.orders.insert_one(ghost)
    cust = db.customers.find_one()
    before = {k: v for k, v in cust.items() if k != "_u"}
    db.customers.replace_one({"_id": cust["_id"]},
                             dict(before, city="Nowhere", _e=tag, _u=before))
    client.close()
    q = "SELECT (SELECT count(*) FROM orders WHERE event_id = 'ghost-order') AS g, " \
        "(SELECT count(*) FROM orders) AS n, " \
        f"(SELECT city FROM customers WHERE customer_id = '{cust['_id']}') AS city"
    got = sql("--hot", hot, q)[0]
    assert got["g"] == 0
    assert got["n"] == sql("--data", ref, "SELECT count(*) AS n FROM orders")[0]["n"]
    assert got["city"] == cust["city"] != "Nowhere"

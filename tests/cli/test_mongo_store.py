"""The MongoDB hot store (`--hot mongodb://...`) against a real MongoDB-wire
server: mongo-java-server, started once for this file's session by
scripts/mongo (the `mongo` fixture).

Every check reads MongoDB from outside, with pymongo, and compares with
`shopstream sql` over a SQLite store of the same input: facts, dimensions,
KPI rows and the engine's counters must be equal, after an uninterrupted
run, a replay, ten SIGKILLs at random points, and an outage of the server.

Quirks of mongo-java-server 1.47.0 met here, which the backend does not rely
on: after a duplicate in an unordered bulk insert, its reply's nInserted is
one too high (the backend reads the per-document writeErrors instead); it
reports wire version 8 (MongoDB 4.2), which pymongo 4.14 and later refuse
(scripts/deps installs 4.13.2); it has no transactions and no
authentication, so the credentials test sees the driver's refusal of a
server that cannot authenticate.
"""
import datetime
import json
import random
import shutil
import signal
import subprocess
import time

import pymongo
import pytest

from conftest import BIN, ENGINE_START, SANITIZER_MARKS, gen_args, run
from harness import clean_env, cli, describe, mongo  # noqa: F401

SEED, COUNT = 23, 6000

# collection -> (SQLite table, key column or None, columns SQLite and
# MongoDB hold differently that the comparison leaves out)
TABLES = {
    "orders": ("orders_data", "event_id", ()),
    "payments": ("payments_data", "event_id", ()),
    "cancellations": ("cancellations_data", "event_id", ()),
    "customers": ("customers", "customer_id", ()),
    "products": ("products", "product_id", ()),
    "categories": ("categories", "category", ()),
    "countries": ("countries", "country", ()),
    "cities": ("cities", "city", ()),
    "payment_methods": ("payment_methods", "payment_method", ()),
    "order_statuses": ("order_statuses", "status", ()),
    "time_minutes": ("time_minutes", "minute_start", ()),
    "kpi_minute": ("kpi_minute_data", None, ()),
    "late_events": ("late_events", "event_id", ("received_at",)),
}
COUNTERS = ("events_in", "stored", "duplicates", "rejected", "late", "watermark", "max_ts")


def iso(d):
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def norm(v):
    if isinstance(v, datetime.datetime):
        return iso(v)
    if isinstance(v, float):
        return round(v, 6)
    return v


def mongo_rows(db, coll):
    """The collection's documents as SQLite's rows: _id under the key
    column's name, _e and _u (the epoch tags) left out, dates as ISO text."""
    _, key, skip = TABLES[coll]
    rows = []
    for d in db[coll].find():
        r = {}
        for k, v in d.items():
            if k in ("_e", "_u") or k in skip or (k == "_id" and key is None):
                continue
            r[key if k == "_id" else k] = norm(v)
        rows.append(tuple(sorted(r.items())))
    return sorted(rows, key=repr)


def sqlite_rows(data_dir, coll):
    table, _, skip = TABLES[coll]
    out = run("sql", "--data", data_dir, "--format", "json", f"SELECT * FROM {table}").stdout
    rows = [tuple(sorted((k, norm(v)) for k, v in r.items() if k not in skip))
            for r in json.loads(out)]
    return sorted(rows, key=repr)


def sqlite_counters(data_dir):
    out = run("sql", "--data", data_dir, "--format", "json",
              "SELECT * FROM shard_state").stdout
    return {r["shard"]: {k: r[k] for k in COUNTERS} for r in json.loads(out)}


def mongo_counters(db):
    doc = db.state.find_one({"_id": "commit"})
    assert doc, "no commit document in state"
    return {s["shard"]: {k: s[k] for k in COUNTERS} for s in doc["shards"]}


def assert_same(db, data_dir, counters=True):
    """MongoDB's store equals the SQLite store, table by table."""
    diffs = []
    for coll in TABLES:
        m, s = mongo_rows(db, coll), sqlite_rows(data_dir, coll)
        if m != s:
            only_m = [r for r in set(m) - set(s)][:2]
            only_s = [r for r in set(s) - set(m)][:2]
            diffs.append(f"{coll}: {len(m)} documents vs {len(s)} rows; only in MongoDB: "
                         f"{only_m}; only in SQLite: {only_s}")
    assert not diffs, "stores differ:\n  " + "\n  ".join(diffs)
    assert len(mongo_rows(db, "orders")) > 0
    if counters:
        assert mongo_counters(db) == sqlite_counters(data_dir)


def process(source, hot, *extra, timeout=600):
    proc = subprocess.run([BIN, "process", "--from", str(source), "--hot", hot,
                           *map(str, extra)], capture_output=True, timeout=timeout,
                          env=clean_env())
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, describe(proc)
    for mark in SANITIZER_MARKS:
        assert mark not in err, err[-3000:]
    return proc


def reference_run(base, seed, count):
    """(input file, SQLite data dir): seed's count orders generated into base
    and processed there without interruption."""
    src = base / "events.jsonl"
    run(*gen_args(seed, count, start=ENGINE_START), "--out", src)
    run("process", "--from", src, "--data", base / "data")
    return src, base / "data"


def client_of(server):
    """A pymongo client of a MongoServer, closed when the caller is done."""
    c = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=10000)
    yield c
    c.close()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The input file and the SQLite store of an uninterrupted run of it."""
    return reference_run(tmp_path_factory.mktemp("mongo-ref"), SEED, COUNT)


@pytest.fixture(scope="module")
def client(mongo):  # noqa: F811
    yield from client_of(mongo)


def test_same_as_sqlite_and_a_replay_changes_nothing(mongo, client, reference, tmp_path):  # noqa: F811
    src, data = reference
    hot = f"{mongo.uri}/same"
    proc = process(src, hot)
    assert b"epochs" in proc.stderr, describe(proc)
    db = client.same
    assert_same(db, data)
    indexes = {k for ix in db.orders.list_indexes() for k in ix["key"]}
    assert {"ts", "order_id"} <= indexes
    # Money is Int64 cents, ts a BSON date.
    n = db.orders.count_documents({})
    assert db.orders.count_documents({"total_price_cents": {"$type": "long"}}) == n
    assert db.orders.count_documents({"ts": {"$type": "date"}}) == n

    # The same input again, under another name (so read from its start):
    # every event is a duplicate, and facts, dimensions and KPIs stay.
    copy = tmp_path / "again.jsonl"
    shutil.copy(src, copy)
    own = tmp_path / "data"  # the reference stays as it is for the other tests
    shutil.copytree(data, own)
    process(copy, hot)
    run("process", "--from", copy, "--data", own)
    assert_same(db, own)
    counters = mongo_counters(db)[0]
    assert counters["duplicates"] == counters["stored"] > 0


def test_sigkill_at_random_points(mongo, client, reference):  # noqa: F811
    """Ten SIGKILLs of `process` at random points, a restart after each, then a
    run to the end: the store equals the uninterrupted run's."""
    src, data = reference
    hot = f"{mongo.uri}/killed"
    rnd = random.Random(SEED)
    killed_mid_run = 0
    for _ in range(10):
        p = subprocess.Popen([BIN, "process", "--from", str(src), "--hot", hot,
                              "--commit-records", "200"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=clean_env())
        time.sleep(rnd.uniform(0.2, 1.2))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            killed_mid_run += 1
        p.wait()
        err = p.stderr.read().decode(errors="replace")
        for mark in SANITIZER_MARKS:
            assert mark not in err, err[-3000:]
    assert killed_mid_run >= 5, "the runs ended before they could be killed"
    process(src, hot)
    assert_same(client.killed, data)


def test_server_away_for_20_seconds(mongo, client, reference):  # noqa: F811
    """The server stops mid-stream and comes back 20 s later with its data:
    `process` waits, retries and ends with the exact store."""
    src, data = reference
    hot = f"{mongo.uri}/outage"
    p = subprocess.Popen([BIN, "process", "--from", str(src), "--hot", hot,
                          "--commit-records", "700"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=clean_env())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and p.poll() is None:
            doc = client.outage.state.find_one({"_id": "commit"})
            if doc and doc.get("epoch", 0) >= 3:
                break
            time.sleep(0.05)
        assert p.poll() is None, "process ended before the outage"
        mongo.stop()
        time.sleep(20)
        assert p.poll() is None, "process gave up during the outage: " + \
            p.stderr.read().decode(errors="replace")[-2000:]
        mongo.restart()
        assert p.wait(timeout=300) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode(errors="replace")
    assert "the server is away, retrying" in err, err[-2000:]
    assert_same(client.outage, data)


def test_bad_uris(mongo):  # noqa: F811
    p = cli("process", "--from", "-", "--hot", "mongodb://127.0.0.1:notaport/x")
    assert p.returncode == 2, describe(p)
    assert b"malformed MongoDB URI" in p.stderr

    p = cli("process", "--from", "-", "--hot", mongo.uri)
    assert p.returncode == 2, describe(p)
    assert b"names no database" in p.stderr

    p = cli("process", "--from", "-", "--hot", f"{mongo.uri}/bad.name")
    assert p.returncode == 2, describe(p)
    assert b"Invalid database name" in p.stderr  # libmongoc's check of the URI

    # Nothing listens on a port just freed: exit 1, naming the address.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = cli("process", "--from", "-", "--hot", f"mongodb://127.0.0.1:{port}/x")
    assert p.returncode == 1, describe(p)
    assert f"cannot reach MongoDB at 127.0.0.1:{port}/x".encode() in p.stderr

    # Credentials that the server cannot check (mongo-java-server has no
    # authentication): the message names the credentials.
    host = mongo.uri.split("//", 1)[1]
    p = cli("process", "--from", "-", "--hot", f"mongodb://u:p@{host}/x")
    assert p.returncode == 1, describe(p)
    assert b"refused the credentials" in p.stderr, describe(p)

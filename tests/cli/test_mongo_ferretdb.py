"""The MongoDB hot store against FerretDB 1.24 (SQLite backend), a
production MongoDB-compatible server, started for this file's session by
`scripts/mongo start --ferretdb` (the `ferretdb` fixture; its first start on a
machine builds it from its Go module).

A compatibility test, smaller than tests/cli/test_mongo_store.py's run on
mongo-java-server: 10,000 orders processed into FerretDB equal the SQLite
store of the same input (facts, dimensions, KPI rows, counters, read with
pymongo); a SIGKILL mid-run and a restart end exact; after a restart of the
server with its data, a batch of nothing but duplicates changes no fact,
dimension or KPI.

Quirks of FerretDB 1.24 met here, which the backend codes around or does not
rely on: an update command of more than about a hundred statements gets no
answer (the backend sends at most MAX_BULK_UPDATES = 64 replacements or
deletes per bulk, src/hot/mongo_int.h); it has no `endSessions` command
(libmongoc's complaint when a client closes is logged at debug level); every
find, update and delete scans the whole collection, even by _id, so the run
is slow for its size; `$group` with more than one accumulator answers 0 for
all but the first, and there is no `$avg`, `$min`, `$max`, `$lookup` or
transaction (the backend computes no result on the server and commits by
epochs).
"""
import random
import signal
import subprocess
import time

import pymongo
import pytest

from conftest import BIN, SANITIZER_MARKS, run
from harness import clean_env, ferretdb  # noqa: F401
from test_mongo_store import assert_same, client_of, mongo_counters, process, reference_run

SEED, COUNT = 29, 10_000


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The input file and the SQLite store of an uninterrupted run of it."""
    return reference_run(tmp_path_factory.mktemp("ferretdb-ref"), SEED, COUNT)


@pytest.fixture(scope="module")
def client(ferretdb):  # noqa: F811
    yield from client_of(ferretdb)


def test_killed_restarted_and_replayed_on_ferretdb(ferretdb, client, reference, tmp_path):  # noqa: F811
    src, data = reference
    hot = f"{ferretdb.uri}/compat"
    # Killed once mid-run, once commits have reached the server.
    p = subprocess.Popen([BIN, "process", "--from", str(src), "--hot", hot,
                          "--commit-records", "4000"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=clean_env())
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and p.poll() is None:
            doc = client.compat.state.find_one({"_id": "commit"})
            if doc and doc.get("epoch", 0) >= 2:
                break
            time.sleep(0.1)
        assert p.poll() is None, "process ended before it could be killed: " + \
            p.stderr.read().decode(errors="replace")[-2000:]
        # Somewhere inside the next batch, not at a commit.
        time.sleep(random.Random(SEED).uniform(0.1, 0.8))
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode(errors="replace")
    for mark in SANITIZER_MARKS:
        assert mark not in err, err[-3000:]
    assert 0 < client.compat.orders.count_documents({}), "nothing reached the server"

    proc = process(src, hot)
    log = proc.stderr.decode(errors="replace")
    assert "resuming" in log, log[-2000:]
    assert "endSessions" not in log, log[-2000:]
    assert_same(client.compat, data)

    # The server restarted with its data, then a batch of nothing but
    # duplicates: the input's last 500 events again, under another name (so
    # read from its start). Their windows are mostly still open, so they are
    # recognised in the bulk insert (error 11000 per document), not one
    # lookup each as a late event's would be (a scan of the collection on
    # FerretDB).
    ferretdb.stop()
    ferretdb.restart()
    tail = tmp_path / "tail.jsonl"
    tail.write_bytes(b"".join(src.read_bytes().splitlines(keepends=True)[-500:]))
    c = pymongo.MongoClient(ferretdb.uri, serverSelectionTimeoutMS=10000)
    try:
        before = mongo_counters(c.compat)[0]
        process(tail, f"{ferretdb.uri}/compat")
        run("process", "--from", tail, "--data", data)
        assert_same(c.compat, data)
        after = mongo_counters(c.compat)[0]
        assert after["stored"] == before["stored"]
        assert after["events_in"] == before["events_in"] + 500
        assert after["duplicates"] > before["duplicates"] + 250, (before, after)
    finally:
        c.close()

"""Archived events stay known to the engine.

A replay of an archived event is a duplicate, not a late event, and a payment
or cancellation whose order was archived before it arrived is attributed to
the order's dimensions exactly as if the order were still hot. Both are
checked by comparing a store that archived between parts of a stream with one
that never archived.
"""
import json
import sqlite3
import subprocess

import pytest

from archive_helpers import all_kpi_rows
from harness import BIN, assert_ok, clean_env, cli
from storedb import store_db

COLS = "event_id, city, country, category, payment_method"
TABLES = ("orders", "payments", "cancellations")


def facts(data):
    """Every fact of a store, hot and archived: event_id -> (table, dims)."""
    db = store_db(f"{data}/hot.db")
    rows = {}
    for t in TABLES:
        for r in db.execute(f"SELECT {COLS} FROM {t}_data"):
            rows[r[0]] = (t, *r[1:])
    archived = 0
    for (m,) in db.execute("SELECT manifest FROM archives WHERE state = 'committed'"):
        for t, tab in json.loads(m)["tables"].items():
            if t not in TABLES:
                continue
            for f in tab["files"]:
                with open(f"{data}/cold/{f['path']}") as fh:
                    for line in fh:
                        o = json.loads(line)
                        assert o["event_id"] not in rows, f"{o['event_id']} is both hot and cold"
                        rows[o["event_id"]] = (t, o["city"], o["country"], o["category"],
                                               o["payment_method"])
                        archived += 1
    kpis = all_kpi_rows(data)  # hot and archived
    state = dict(db.execute("SELECT key, value FROM engine_state"))
    late = db.execute("SELECT count(*) FROM late_events").fetchone()[0]
    db.close()
    return rows, kpis, state, late, archived


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    stream = d / "stream.jsonl"
    assert_ok(cli("gen", "--seed", "21", "--count", "60000", "--max", "--start",
                  "2026-11-02T00:00:00Z", "--out", stream))
    lines = stream.read_bytes().splitlines(keepends=True)
    parts = []
    for i in range(4):
        p = d / f"part{i}.jsonl"
        p.write_bytes(b"".join(lines[i * len(lines) // 4:(i + 1) * len(lines) // 4]))
        parts.append(p)
    never, archived = d / "never", d / "archived"
    assert_ok(cli("process", "--from", stream, "--data", never, "--archive-every", "0"))
    for p in parts:
        assert_ok(cli("process", "--from", p, "--data", archived, "--archive-every", "0"))
        assert_ok(cli("archive", "--once", "--data", archived, "--hot-max-mb", "4"))
    return stream, never, archived


def test_archiving_between_parts_changes_no_fact_or_kpi(stores):
    _, never, archived = stores
    fa, ka, _, la, na = facts(archived)
    fn, kn, _, ln, _ = facts(never)
    assert na > len(fa) // 2, "the scenario must archive most events"
    assert fa == fn  # same events, same attribution
    assert ka == kn
    assert la == ln == 0


def test_late_payments_of_archived_orders_keep_their_order_dimensions(stores):
    _, _, archived = stores
    fa, *_ = facts(archived)
    unknown = [k for k, v in fa.items() if v[1] == "unknown"]
    assert unknown == []
    # The scenario does contain follow-ups processed after their order left
    # the hot store: cancellations of archived orders that arrived later.
    db = store_db(f"{archived}/hot.db")
    hot_cancels = {r[0] for r in db.execute("SELECT order_id FROM cancellations_data")}
    hot_orders = {r[0] for r in db.execute("SELECT order_id FROM orders_data")}
    db.close()
    assert hot_cancels - hot_orders, "no cancellation refers to an archived order"


def test_replay_after_archiving_changes_nothing(stores):
    stream, _, archived = stores
    before = facts(archived)
    with open(stream, "rb") as fh:
        proc = subprocess.run([BIN, "process", "--from", "-", "--data", str(archived),
                               "--archive-every", "0"], stdin=fh, capture_output=True,
                              env=clean_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    after = facts(archived)
    assert after[0] == before[0]  # facts, hot and cold
    assert after[1] == before[1]  # KPIs
    assert after[3] == before[3] == 0  # no archived event became late
    events = sum(1 for _ in open(stream, "rb"))
    assert after[2]["duplicates"] - before[2]["duplicates"] == events


def test_engine_waits_for_an_unreadable_cold_store_and_stays_exact(tmp_path):
    """Follow-ups of archived orders arrive while the cold store is gone: the
    engine waits for it (it does not guess an attribution, nor exit), and the
    result equals a run that never archived."""
    import os
    import shutil
    import signal
    import time

    stream = tmp_path / "all.jsonl"
    assert_ok(cli("gen", "--seed", "9", "--count", "40000", "--max", "--start",
                  "2026-11-02T00:00:00Z", "--out", stream))
    lines = stream.read_bytes().splitlines(keepends=True)
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(b"".join(lines[:len(lines) // 2]))
    data = tmp_path / "live"
    log = open(tmp_path / "live.log", "wb")
    proc = subprocess.Popen([BIN, "process", "--follow", "--from", str(feed), "--data", str(data),
                             "--hot-max-mb", "1", "--archive-every", "1"], stderr=log,
                            env=clean_env())
    try:
        deadline = time.time() + 60
        while not list((data / "cold" / "_archives").glob("*.json")):
            assert time.time() < deadline, "no archive was written"
            time.sleep(0.2)
        time.sleep(1.5)
        os.rename(data / "cold", tmp_path / "cold.away")
        (data / "cold").write_bytes(b"")  # a file where the directory was
        with open(feed, "ab") as fh:
            fh.write(b"".join(lines[len(lines) // 2:]))
        time.sleep(4)
        assert proc.poll() is None, "the engine exited while the cold store was away"
        (data / "cold").unlink()
        os.rename(tmp_path / "cold.away", data / "cold")
        # Wait until everything is in: the position reaches the file's end.
        size = feed.stat().st_size
        while True:
            db = store_db(f"file:{data}/hot.db?mode=ro", uri=True)
            pos = db.execute("SELECT max(position) FROM ingest_positions").fetchone()[0]
            db.close()
            if pos == size:
                break
            assert time.time() < deadline + 120, f"stuck at {pos} of {size}"
            time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        log.close()
    assert rc == 0, (tmp_path / "live.log").read_text()
    never = tmp_path / "never"
    assert_ok(cli("process", "--from", stream, "--data", never, "--archive-every", "0"))
    fa, ka, *_ = facts(data)
    fn, kn, *_ = facts(never)
    assert fa == fn
    assert ka == kn
    shutil.rmtree(tmp_path / "never")


@pytest.mark.parametrize("mode", ["--status", "--verify", "--once"])
def test_archive_without_a_store_is_refused_and_creates_nothing(tmp_path, mode):
    missing = tmp_path / "nowhere"
    proc = cli("archive", mode, "--data", missing)
    assert proc.returncode == 2
    assert b"no hot store" in proc.stderr
    assert not missing.exists()

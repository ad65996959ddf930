"""Spark Structured Streaming's minute KPIs (spark/streaming_baseline.py)
against the engine's, on one Kafka topic of the session's broker (the `kafka`
fixture, scripts/kafka).

`shopstream gen` writes a small stream to a topic of 2 partitions, then, days
of event time later, a few orders more, so that every window of the stream is
final in both systems: in the engine, whose watermark is the lowest over the
partitions (so both partitions must move on), and in Spark, whose watermark
is the highest event time seen and whose windows by city close only once it
has passed the attribution bound (49 h) as well. Then `shopstream process
--exit-at-end` reads the topic into a store, and the Spark job reads it with
--availableNow and with --trigger 10s: for every minute before the late
orders, the rows of kpi_minute overall and by city equal Spark's, value for
value, money to the cent, and every such row of ours is final.

Spark runs in this process: the `spark` fixture of harness.py.
"""
import json
import sqlite3
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from harness import assert_ok, cli, describe, kafka, spark  # noqa: F401
from storedb import store_db

SEED, COUNT, START = 8, 3_000, "2026-11-02"
# Late enough that the stream's last cancellation (48 h after its payment at
# most) is 49 h and a window behind it.
LATE_SEED, LATE_COUNT, LATE_START = 9, 20, "2026-11-07"
TOPIC = "spark-kpis"
KPIS = ("orders", "units", "gross_revenue", "paid_revenue", "aov", "payment_attempts",
        "failed_payments", "cancellations", "cancelled_revenue")


@pytest.fixture(scope="module")
def topic(kafka, tmp_path_factory):  # noqa: F811
    uri = f"kafka://{kafka}/{TOPIC}"
    assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--max", "--start", START, "--out",
                  uri, "--partitions", 2, timeout=300))
    proc = assert_ok(cli("gen", "--seed", LATE_SEED, "--count", LATE_COUNT, "--max", "--start",
                         LATE_START, "--out", uri, timeout=300))
    data = tmp_path_factory.mktemp("spark-ours") / "data"
    proc = assert_ok(cli("process", "--from", uri, "--exit-at-end", "--data", data, timeout=300))
    return uri, data, proc


def ours(data):
    """{(minute_start, dimension, value): row} of kpi_minute overall and by
    city before the late orders, and how many of them are not final."""
    with store_db(f"file:{Path(data) / 'hot.db'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM kpi_minute WHERE dimension IN ('overall', 'city')"
                          " AND minute_start < ?", (LATE_START,)).fetchall()
        events = db.execute("SELECT value FROM engine_state WHERE key = 'events_in'"
                            ).fetchone()[0]
    kpis = {(r["minute_start"], r["dimension"], r["dimension_value"]): r for r in rows}
    return kpis, sum(1 for r in rows if not r["final"]), events


def sink_rows(out):
    """The file sink's rows (JSON Lines) of both queries, before the late orders."""
    got = {}
    for f in sorted(Path(out).glob("*/part-*.json")):
        for line in f.read_text().splitlines():
            r = json.loads(line, parse_float=Decimal)
            key = (r["minute_start"], r["dimension"], r["dimension_value"])
            assert key not in got, f"{key} written twice"
            if r["minute_start"] < LATE_START:
                got[key] = r
    return got


def decimal(v):
    return None if v is None else Decimal(str(v))


def assert_equal_kpis(want, got, label):
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing and not extra, \
        f"{label}: windows only in ours {missing[:5]} ({len(missing)}), only in Spark " \
        f"{extra[:5]} ({len(extra)})"
    diffs = []
    for key, w in want.items():
        for k in KPIS:
            # Money: our view gives cents / 100.0; compared as exact decimals to the cent.
            a = decimal(w[k])
            a = a if a is None or k in ("orders", "units", "payment_attempts", "failed_payments",
                                        "cancellations") else a.quantize(Decimal("0.01"))
            b = decimal(got[key].get(k))
            if a != b:
                diffs.append(f"{key} {k}: ours {a}, Spark {b}")
    assert not diffs, f"{label}: {len(diffs)} values differ:\n  " + "\n  ".join(diffs[:10])


@pytest.fixture(scope="module")
def baseline(spark):  # noqa: F811
    import streaming_baseline as module
    return module


def test_available_now_equals_our_final_kpis(spark, baseline, topic, tmp_path):  # noqa: F811
    uri, data, proc = topic
    want, open_rows, events = ours(data)
    assert open_rows == 0, f"{open_rows} of our rows before {LATE_START} are not final"
    assert {k[1] for k in want} == {"overall", "city"} and len(want) > 100, describe(proc)
    out = tmp_path / "sink"
    summary = baseline.run(spark, ["--from", uri, "--out", str(out), "--availableNow",
                                   "--format", "json"])
    assert summary["events"] == events, f"Spark read {summary}, the engine {events} events"
    assert summary["mode"] == "availableNow" and summary["seconds"] > 0
    got = sink_rows(out)
    assert_equal_kpis(want, got, "--availableNow")
    # Spark has its own copy of the stream's state: a second run on the same
    # checkpoint reads nothing new and writes no row twice.
    again = baseline.run(spark, ["--from", uri, "--out", str(out), "--availableNow",
                                 "--format", "json"])
    assert again["events"] == 0, again
    assert sink_rows(out) == got


def test_trigger_10s_equals_our_final_kpis(spark, baseline, topic, tmp_path):  # noqa: F811
    """Micro-batches every 10 s: the first reads the topic, a later one
    (with no new data) closes the windows the watermark has passed."""
    uri, data, _ = topic
    want, _, _ = ours(data)
    out = tmp_path / "sink"
    stop = threading.Event()
    result = {}

    def job():
        try:
            result["summary"] = baseline.run(
                spark, ["--from", uri, "--out", str(out), "--trigger", "10s", "--format",
                        "json", "--timeout", "300"], stop=stop)
        except Exception as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=job)
    t.start()
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and t.is_alive():
            try:
                if out.exists() and set(sink_rows(out)) >= set(want):
                    break
            except ValueError:
                pass  # a part file being written
            time.sleep(1)
    finally:
        stop.set()
        t.join(timeout=120)
    assert "error" not in result, result.get("error")
    assert not t.is_alive(), "the streaming job did not stop"
    assert result["summary"]["mode"] == "trigger 10s" and result["summary"]["batches"] >= 2, \
        result
    assert_equal_kpis(want, sink_rows(out), "--trigger 10s")


def test_usage_errors(baseline):
    for argv, needle in ((["--from", "file:x", "--out", "o", "--availableNow"], "kafka://"),
                         (["--from", "kafka://h:1/t", "--out", "o", "--trigger", "soon"],
                          "--trigger"),
                         (["--from", "kafka://h:1/t", "--out", "o"], "required")):
        with pytest.raises(SystemExit) as e:
            baseline.parse_args(argv)
        assert e.value.code == 2, argv

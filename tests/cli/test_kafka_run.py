"""`shopstream run --kafka HOST:PORT`: the embedded pipeline with a real Kafka
broker as the bus between its generator and its engine (scripts/kafka starts
one for the test session, and one in ZooKeeper mode for the file-run test). With --count it ends once the engine has read all
that the generator delivered, and the store equals a file-based run's of the
same seed; Kafka options without --kafka, and a bad broker address, are
usage errors. The consumer also runs under the ASan+UBSan build
(SHOPSTREAM_ASAN_BIN, else build-asan/shopstream), rebalances, a rejected
record and its dead letter included."""

import os
import sqlite3
import subprocess

import pytest

from harness import BIN, REPO, assert_ok, clean_env, cli, describe  # noqa: F401
from harness import kafka, kafka_each_mode  # noqa: F401
from storedb import store_db

ASAN_BIN = os.environ.get("SHOPSTREAM_ASAN_BIN") or str(REPO / "build-asan" / "shopstream")
SANITIZER_MARKS = ("Sanitizer", "runtime error", "Segmentation", "core dumped")

SEED, COUNT, START = 12, 6000, "2026-11-02T00:00:00Z"
KPI = ("SELECT minute_start, dimension, dimension_value, orders, units, gross_revenue, "
       "paid_revenue, payment_attempts, failed_payments, cancellations, cancelled_revenue "
       "FROM kpi_minute ORDER BY 1, 2, 3")


def rows(data, sql):
    with store_db(f"file:{data}/hot.db?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def test_run_over_kafka_equals_a_file_run(kafka_each_mode, tmp_path):
    kafka = kafka_each_mode
    data = tmp_path / "kafka"
    proc = cli("run", "--kafka", kafka, "--topic", "run-bus", "--partitions", "3", "--group",
               "run-test", "--data", data, "--headless", "--max", "--count", COUNT, "--seed", SEED,
               "--start", START, "--archive-every", "0", timeout=180)
    assert_ok(proc)
    log = proc.stderr.decode()
    assert "bus: Kafka topic 'run-bus'" in log
    assert log.count("assigned") >= 1

    events = tmp_path / "events.jsonl"
    events.write_bytes(assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--max",
                                     "--start", START)).stdout)
    assert_ok(cli("process", "--from", events, "--data", tmp_path / "file"))

    want = rows(tmp_path / "file", KPI)
    assert len(want) > 1000
    assert rows(data, KPI) == want
    for table in ("orders_data", "payments_data", "cancellations_data", "customers"):
        sql = f"SELECT * FROM {table} ORDER BY 1"
        assert rows(data, sql) == rows(tmp_path / "file", sql), table
    # Three partitions, three shards of KPI rows.
    assert rows(data, "SELECT count(DISTINCT shard) FROM kpi_minute_data") == [(3,)]
    state = dict(rows(data, "SELECT key, value FROM engine_state"))
    assert state["stored"] == state["events_in"] == len(events.read_bytes().splitlines())


@pytest.mark.parametrize("args, word", [
    (["--partitions", "3"], "--kafka"),
    (["-X", "acks=all"], "--kafka"),
    (["--kafka", "localhost"], "HOST:PORT"),
    (["--kafka", "127.0.0.1:9092", "--topic", "no/slash"], "topic"),
])
def test_usage_errors(tmp_path, args, word):
    proc = cli("run", "--data", tmp_path / "d", "--headless", "--max", "--count", "10", *args,
               timeout=60)
    assert proc.returncode == 2, describe(proc)
    assert word in proc.stderr.decode()


def test_sanitizer_build_consumes(kafka, tmp_path):
    if not os.access(ASAN_BIN, os.X_OK):
        pytest.fail(f"no sanitizer build at {ASAN_BIN}: run `make asan` (make test does)")
    topic = "asan-in"
    assert_ok(cli("gen", "--seed", SEED, "--count", 1500, "--max", "--start", START,
                  "--partitions", 2, "--out", f"kafka://{kafka}/{topic}"))
    bad = subprocess.run(["kcat", "-P", "-b", kafka, "-t", topic, "-p", "1"],
                         input=b'{"type":"order","event_id":1}\n', capture_output=True, timeout=60)
    assert bad.returncode == 0, bad.stderr
    proc = subprocess.run([ASAN_BIN, "process", "--from", f"kafka://{kafka}/{topic}",
                           "--group", "asan", "--exit-at-end", "--data", str(tmp_path / "asan"),
                           "--archive-every", "0"],
                          capture_output=True, timeout=300, env=clean_env())
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err[-5000:]
    assert not any(m in err for m in SANITIZER_MARKS), err[-5000:]
    state = dict(rows(tmp_path / "asan", "SELECT key, value FROM engine_state"))
    assert state["rejected"] == 1 and state["stored"] == state["events_in"] - 1
    dlq = subprocess.run(["kcat", "-C", "-b", kafka, "-t", topic + ".dlq", "-e", "-o", "beginning",
                          "-q", "-f", "%s\n"], capture_output=True, timeout=60)
    assert dlq.stdout == b'{"type":"order","event_id":1}\n'


def test_follow_with_a_kafka_input_is_a_usage_error(tmp_path):
    proc = cli("process", "--from", "kafka://127.0.0.1:9/t", "--follow", "--data", tmp_path / "d",
               timeout=60)
    assert proc.returncode == 2, describe(proc)
    assert "--follow" in proc.stderr.decode() and "--exit-at-end" in proc.stderr.decode()

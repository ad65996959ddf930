"""`shopstream run --kafka HOST:PORT`: the embedded pipeline with a real Kafka
broker as the bus between its generator and its engine (scripts/kafka starts
one for the test session). With --count it ends once the engine has read all
that the generator delivered, and the store equals a file-based run's of the
same seed; Kafka options without --kafka, and a bad broker address, are
usage errors."""

import sqlite3

import pytest

from harness import BIN, assert_ok, cli, describe, kafka  # noqa: F401

SEED, COUNT, START = 12, 6000, "2026-11-02T00:00:00Z"
KPI = ("SELECT minute_start, dimension, dimension_value, orders, units, gross_revenue, "
       "paid_revenue, payment_attempts, failed_payments, cancellations, cancelled_revenue "
       "FROM kpi_minute ORDER BY 1, 2, 3")


def rows(data, sql):
    with sqlite3.connect(f"file:{data}/hot.db?mode=ro", uri=True) as db:
        return db.execute(sql).fetchall()


def test_run_over_kafka_equals_a_file_run(kafka, tmp_path):
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

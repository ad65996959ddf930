"""Spark's star-schema analytics over the cold store (spark/analytics.py)
against the same questions asked with `shopstream sql` (docs/queries.md,
sections 19 to 24).

One store is generated, processed and archived until every fact of the days
asked about is cold (the archive's dimension snapshots with them); then
Spark, reading only the cold store, and `shopstream sql`, reading hot and
cold, must give the same rows in the same order, numbers equal to the cent.
The same runs over one day (partition pruning: fewer part files read), over
the command line (`scripts/spark submit`, Parquet out, the text report), and
over HDFS (the same store archived into the `hdfs` fixture's NameNode, read
by Spark through shopstream's own webhdfs:// URI).

Spark runs in this process: the `spark` fixture of harness.py, one
SparkSession for the session, from the venv of scripts/spark.
"""
import csv
import datetime
import io
import re
import sqlite3
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

from harness import (REPO, SPARK_SCRIPT, assert_ok, clean_env, cli, describe, hdfs,  # noqa: F401
                     spark)
from storedb import store_db

DOC = REPO / "docs" / "queries.md"
SEED, COUNT, RATE = 5, 30_000, 0.2
START = "2026-11-02"
# The days asked about: the orders span them, their follow-ups reach into a third.
DAYS = ("2026-11-02", "2026-11-03")
# The bounds the document's queries are written with.
DOC_FROM, DOC_UNTIL = "'2026-11-02'", "'2026-11-04'"


def doc_queries():
    """{name: sql} of the blocks of docs/queries.md marked <!-- spark: name -->."""
    text = DOC.read_text()
    found = dict(re.findall(r"^<!-- spark: (\w+) -->\n```sql\n(.*?)^```$", text, re.S | re.M))
    return found


def for_days(query, first, last):
    """A document query over the UTC days first..last instead of its own."""
    until = (datetime.date.fromisoformat(last) + datetime.timedelta(days=1)).isoformat()
    assert query.count(DOC_FROM) >= 1 and query.count(DOC_UNTIL) >= 1, query
    return query.replace(DOC_FROM, f"'{first}'").replace(DOC_UNTIL, f"'{until}'")


def cell(v):
    """A value as both sides are compared: numbers as exact decimals, the rest as text."""
    if v is None or v == "":
        return None
    if isinstance(v, (int, Decimal)):
        return Decimal(v)
    if isinstance(v, float):
        raise AssertionError(f"a binary floating-point value {v!r} in a result")
    try:
        return Decimal(v)
    except ArithmeticError:
        return str(v)


def sql_result(data, query):
    """(header, rows) of `shopstream sql --format csv`."""
    proc = assert_ok(cli("sql", "--data", data, "--format", "csv", query, timeout=300))
    rows = list(csv.reader(io.StringIO(proc.stdout.decode())))
    return rows[0], [[cell(v) for v in r] for r in rows[1:]]


def assert_same(name, want, got_header, got_rows):
    header, rows = want
    assert got_header == header, f"{name}: columns {got_header} != {header}"
    assert rows, f"{name}: the SQL returned no rows; the store should answer every question"
    assert len(got_rows) == len(rows), f"{name}: Spark {len(got_rows)} rows, SQL {len(rows)}"
    for i, (g, w) in enumerate(zip(got_rows, rows)):
        assert g == w, f"{name}: row {i} differs: Spark {g}, SQL {w}"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A data directory whose facts of DAYS are all archived."""
    base = tmp_path_factory.mktemp("spark-store")
    events = base / "events.jsonl"
    proc = assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--rate", RATE, "--max",
                         "--start", START))
    events.write_bytes(proc.stdout)
    data = base / "data"
    assert_ok(cli("process", "--from", events, "--data", data, "--archive-every", 0,
                  timeout=300))
    # A day more after DAYS, more than the 1 MB threshold holds: the
    # archiver has to move every fact of DAYS to get under it.
    later = base / "later.jsonl"
    later.write_bytes(assert_ok(cli("gen", "--seed", SEED + 1, "--count", COUNT // 2, "--rate",
                                    RATE, "--max", "--start", "2026-11-05")).stdout)
    assert_ok(cli("process", "--from", later, "--data", data, "--archive-every", 0,
                  timeout=300))
    proc = assert_ok(cli("archive", "--data", data, "--once", "--hot-max-mb", 1, timeout=300))
    with store_db(f"file:{data / 'hot.db'}?mode=ro", uri=True) as db:
        hot = sum(db.execute(f"SELECT count(*) FROM {t}_data WHERE ts < ?", (DOC_UNTIL[1:-1],))
                  .fetchone()[0] for t in ("orders", "payments", "cancellations"))
        archives = db.execute("SELECT count(*) FROM archives WHERE state = 'committed'"
                              ).fetchone()[0]
    assert hot == 0, f"{hot} facts of {DAYS} are still hot: {describe(proc)}"
    assert archives >= 2, describe(proc)
    return data, (events, later)


@pytest.fixture(scope="module")
def analytics(spark):  # noqa: F811
    import analytics as module
    return module


def spark_result(frame_rows):
    return [[cell(v) for v in r] for r in frame_rows]


def test_analytics_equal_the_sql_to_the_cent(spark, analytics, store, tmp_path):  # noqa: F811
    data, _ = store
    queries = doc_queries()
    assert set(queries) == set(analytics.ANALYTICS), \
        f"docs/queries.md marks {sorted(queries)}, analytics.py has {sorted(analytics.ANALYTICS)}"
    out = tmp_path / "out"
    lines = []
    results = analytics.run(spark, ["--cold", str(data / "cold"), "--from", DAYS[0], "--to",
                                    DAYS[1], "--out", str(out)],
                            log=lambda text, end="": lines.append(text))
    for name, query in queries.items():
        want = sql_result(data, for_days(query, *DAYS))
        rows = results[name]
        assert_same(name, want, list(rows[0].__fields__) if rows else want[0],
                    spark_result(rows))
        # The CSV written under --out holds the same, as text.
        files = list((out / name).glob("part-*.csv"))
        assert len(files) == 1, f"{name}: {files}"
        written = list(csv.reader(io.StringIO(files[0].read_text())))
        assert_same(f"{name} (CSV)", want, written[0], [[cell(v) for v in r] for r in written[1:]])
        # Money and rates as written: exactly two decimals.
        for col in ("revenue", "aov", "failure_rate_pct", "cancellation_rate_pct",
                    "repeat_share_pct"):
            if col in written[0]:
                k = written[0].index(col)
                bad = [r[k] for r in written[1:] if not re.fullmatch(r"[0-9]+\.[0-9]{2}", r[k])]
                assert not bad, f"{name}: {col} values without two decimals: {bad[:3]}"
    report = (out / "report.txt").read_text()
    assert report == "".join(lines)
    assert f"over {data / 'cold'}: {DAYS[0]} .. {DAYS[1]}" in report, report
    for name in queries:
        assert re.search(rf"^{name}: {len(results[name])} rows$", report, re.M), report


def test_one_day_prunes_partitions(spark, analytics, store):  # noqa: F811
    """Over one day Spark opens only that day's partitions, and still agrees."""
    data, _ = store
    lines = []
    day = DAYS[1]
    results = analytics.run(spark, ["--cold", str(data / "cold"), "--from", day, "--to", day],
                            log=lambda text, end="": lines.append(text))
    report = "".join(lines)
    for table in ("orders", "payments", "cancellations"):
        m = re.search(rf"^  {table}: ([0-9]+) rows from ([0-9]+) of ([0-9]+) part files", report,
                      re.M)
        assert m, report
        rows, used, listed = map(int, m.groups())
        assert 0 < used < listed and rows > 0, f"{table}: no pruning in\n{report}"
    # The plan prunes by the partition column, a date.
    orders = spark.table("orders")
    assert dict(orders.dtypes)["dt"] == "date" and dict(orders.dtypes)["hour"] == "int"
    plan = orders._jdf.queryExecution().executedPlan().toString()
    assert "PartitionFilters: [isnotnull(dt" in plan and day in plan, plan
    for name, query in doc_queries().items():
        assert_same(name, sql_result(data, for_days(query, day, day)),
                    list(results[name][0].__fields__) if results[name] else None,
                    spark_result(results[name]))


def test_spark_submit_writes_parquet_and_a_report(spark, analytics, store, tmp_path):  # noqa: F811
    """The command line: `scripts/spark submit spark/analytics.py ...`."""
    data, _ = store
    out = tmp_path / "parquet"
    proc = subprocess.run([str(SPARK_SCRIPT), "submit", str(REPO / "spark" / "analytics.py"),
                           "--cold", str(data / "cold"), "--from", DAYS[0], "--to", DAYS[1],
                           "--out", str(out), "--format", "parquet"],
                          capture_output=True, timeout=900, env=clean_env())
    assert proc.returncode == 0, describe(proc)
    report = proc.stdout.decode()
    assert report == (out / "report.txt").read_text()
    assert re.search(r"^[0-9]+ archives with a manifest$", report, re.M), report
    assert re.search(r"^SparkSession started in [0-9.]+ s$", report, re.M), report
    for name, query in doc_queries().items():
        frame = spark.read.parquet(str(out / name))
        want = sql_result(data, for_days(query, *DAYS))
        assert_same(f"{name} (Parquet)", want, frame.columns, spark_result(frame.collect()))
    # A bad range is a usage error.
    proc = subprocess.run([str(SPARK_SCRIPT), "submit", str(REPO / "spark" / "analytics.py"),
                           "--cold", str(data / "cold"), "--from", DAYS[1], "--to", DAYS[0]],
                          capture_output=True, timeout=900, env=clean_env())
    assert proc.returncode == 2 and b"is before --from" in proc.stdout + proc.stderr, describe(proc)


def test_analytics_over_hdfs(spark, analytics, store, hdfs, tmp_path):  # noqa: F811
    """The same store archived into HDFS: Spark reads it through the URI that
    shopstream wrote it with, and finds what it found in the local store."""
    data, streams = store
    remote = tmp_path / "remote"
    for events in streams:
        assert_ok(cli("process", "--from", events, "--data", remote, "--archive-every", 0,
                      timeout=300))
    uri = f"webhdfs://{hdfs.address}/spark/cold?user=shopstream-test"
    assert_ok(cli("archive", "--data", remote, "--cold", uri, "--once", "--hot-max-mb", 1,
                  timeout=300))
    out = assert_ok(cli("archive", "--data", remote, "--cold", uri, "--verify")).stdout
    assert b"all files match" in out, out
    local = analytics.run(spark, ["--cold", str(data / "cold"), "--from", DAYS[0], "--to",
                                  DAYS[1]], log=lambda text, end="": None)
    lines = []
    over_hdfs = analytics.run(spark, ["--cold", uri, "--from", DAYS[0], "--to", DAYS[1]],
                              log=lambda text, end="": lines.append(text))
    assert f"over {uri}:" in "".join(lines)
    for name in local:
        assert spark_result(over_hdfs[name]) == spark_result(local[name]), name

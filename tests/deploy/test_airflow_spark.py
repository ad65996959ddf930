"""shopstream_daily, run by Airflow 3.3.2 (scripts/airflow): Spark's analytics
(spark/analytics.py through scripts/spark) over a store whose first day is
archived, for the day before the run's date, written where the DAG says,
with the rows of the cold store."""
import re

import pytest

from airflow_harness import airflow, explain  # noqa: F401
from harness import assert_ok, cli

DAY, RUN_DATE = "2026-11-02", "2026-11-03"


@pytest.fixture(scope="module")
def archived(tmp_path_factory):
    """A day of orders (and follow-ups into the next), archived past 1 MB."""
    base = tmp_path_factory.mktemp("daily")
    events = base / "events.jsonl"
    events.write_bytes(assert_ok(cli("gen", "--seed", 4, "--count", 4000, "--rate", 0.05,
                                     "--max", "--start", DAY)).stdout)
    data = base / "data"
    assert_ok(cli("process", "--from", events, "--data", data, "--archive-every", 0,
                  timeout=300))
    assert_ok(cli("archive", "--data", data, "--once", "--hot-max-mb", 1, timeout=300))
    return data


def cold_count(data, table):
    query = (f"SELECT count(*) FROM cold_{table} WHERE ts >= '{DAY}' AND ts < '{RUN_DATE}'")
    return int(assert_ok(cli("sql", "--data", data, "--format", "csv", query)).stdout.split()[1])


def test_daily_runs_the_analytics_of_the_day_before(airflow, archived):  # noqa: F811
    reports = archived.parent / "reports"
    run = airflow.dags_test("shopstream_daily", RUN_DATE,
                            {"data": archived, "reports": reports}, timeout=1800)
    assert run.proc.returncode == 0, explain(run)
    assert run.states == {"analytics": "success"}, explain(run)
    out = reports / DAY
    report = (out / "report.txt").read_text()
    assert report.startswith(f"shopstream analytics over {archived / 'cold'}: {DAY} .. {DAY}")
    # Spark read exactly the archived facts of the day.
    for table in ("orders", "payments", "cancellations"):
        m = re.search(rf"^  {table}: ([0-9]+) rows from", report, re.M)
        assert m, report
        assert int(m.group(1)) == cold_count(archived, table), (table, report)
        assert table == "cancellations" or int(m.group(1)) > 0, (table, report)
    for name in ("daily_revenue", "top_products", "payment_failure_rate", "cancellation_rate",
                 "aov_by_segment", "repeat_customers"):
        assert len(list((out / name).glob("part-*.csv"))) == 1, name
    # The task logged the report.
    assert f"report of {DAY}:" in run.output and "daily_revenue: " in run.output


def test_daily_fails_when_spark_cannot_run(airflow, archived):  # noqa: F811
    run = airflow.dags_test("shopstream_daily", RUN_DATE,
                            {"data": archived, "spark_submit": "/nonexistent/spark-submit"})
    assert run.proc.returncode != 0 and run.states == {"analytics": "failed"}, explain(run)
    assert "'/nonexistent/spark-submit' not found; set the Variable" in run.output, explain(run)

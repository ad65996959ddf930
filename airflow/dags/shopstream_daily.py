"""shopstream_daily: every day, Spark's star-schema analytics over the cold
store (spark/analytics.py) for the day that has just ended.

- analytics: `spark-submit spark/analytics.py --cold COLD --from DAY --to DAY
  --out REPORTS/DAY`: the six analytics of docs/queries.md (sections 19 to 24)
  over the facts of DAY that have been archived, as CSV files and a text
  report, REPORTS/DAY/report.txt, which the task also logs.

DAY is the UTC day that ends at the run's data interval's end (a run at
midnight reports on the day before; `airflow dags test shopstream_daily
2026-11-03` on 2026-11-02), or the parameter `day` of a manual run
(`airflow dags trigger shopstream_daily --conf '{"day": "2026-11-02"}'`).

Spark runs as the setting spark_submit says: in a checkout, `scripts/spark
submit` (PySpark 4.2.0 in local mode, with spark/conf); elsewhere the
`spark-submit` on PATH. A plain task runs it rather than the Spark provider's
SparkSubmitOperator: that operator runs only a binary named spark-submit,
spark2-submit or spark3-submit (from PATH or a connection's Spark home), so
it could not run scripts/spark, which holds the project's settings, and the
provider would install a second PySpark of its own into Airflow's
environment.

Settings (Airflow Variables, or AIRFLOW_VAR_SHOPSTREAM_* environment
variables; defaults in shopstream_common.py): shopstream_data,
shopstream_cold, shopstream_spark_submit, shopstream_analytics,
shopstream_reports (default DATA/reports).
"""
import datetime
import os
import shlex

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowFailException

from shopstream_common import cold_uri, log, run, setting

with DAG(
    dag_id="shopstream_daily",
    description="Daily: Spark's analytics over the cold store for the day that ended",
    doc_md=__doc__,
    schedule="@daily",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "execution_timeout": datetime.timedelta(hours=3)},
    params={
        "day": Param(None, type=["null", "string"], format="date",
                     description="The UTC day to analyse, YYYY-MM-DD (default: the day that "
                                 "ends at the run's data interval's end)"),
    },
    tags=["shopstream"],
) as dag:

    @task
    def analytics(params=None, data_interval_end=None):
        """spark/analytics.py over the cold store for DAY; returns the report's path."""
        if params.get("day"):
            try:
                day = datetime.date.fromisoformat(params["day"])
            except ValueError:
                raise AirflowFailException(f"day {params['day']!r} is not YYYY-MM-DD") from None
        else:
            day = (data_interval_end - datetime.timedelta(milliseconds=1)).date()
        reports = setting("reports") or os.path.join(setting("data"), "reports")
        out = os.path.join(reports, day.isoformat())
        submit = shlex.split(setting("spark_submit"))
        if not submit:
            raise AirflowFailException("Variable shopstream_spark_submit is empty")
        run([*submit, setting("analytics"), "--cold", cold_uri(), "--from", day.isoformat(),
             "--to", day.isoformat(), "--out", out], f"spark/analytics.py for {day}", quiet=True)
        report = os.path.join(out, "report.txt")
        try:
            with open(report) as f:
                log.info("report of %s:\n%s", day, f.read().rstrip())
        except OSError as e:
            raise AirflowFailException(f"analytics.py wrote no report {report}: {e}") from None
        return report

    analytics()

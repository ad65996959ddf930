"""shopstream_maintenance: every hour, archive, verify the archives and check
the data's quality; a failure of any check fails the run.

    archive_once ──> verify_archives
                └──> check_quality

- archive_once: `shopstream archive --once --hot-max-mb N`: while the hot
  store holds more than N MB, its oldest events move to the cold store
  (docs/lifecycle.md). An archiver already at work on the store (`process`,
  `run`) holds its lock; the run then leaves the work to it.
- verify_archives: `shopstream archive --verify`: every committed archive's
  files against its manifest (bytes, CRC-32, records); a damaged, missing or
  stray file fails the task.
- check_quality: for every closed hour (its end at or before the engine's
  watermark, every minute of it final), the overall minute KPIs added up over
  the hour equal the facts of that hour read back from the hot and the cold
  store (orders, units, gross revenue; payment attempts, failed payments,
  paid revenue; cancellations, refunds; money to the cent); the share of
  rejected input records (engine_state) is at most shopstream_max_rejected_pct;
  and the hot store is under its threshold once archive_once has run.

Settings (Airflow Variables, or AIRFLOW_VAR_SHOPSTREAM_* environment
variables; defaults in shopstream_common.py): shopstream_bin, shopstream_data,
shopstream_hot, shopstream_cold, shopstream_hot_max_mb (default 300),
shopstream_max_rejected_pct (default 1.0), shopstream_quality_hours (default
0: every closed hour; N: the last N closed hours, so that the check reads
only their cold files).
"""
import datetime
import json
import re

from airflow.sdk import DAG, task
from airflow.sdk.exceptions import AirflowFailException

from shopstream_common import log, number, shopstream, store

HOUR_MS = 3_600_000

# The overall minute KPIs of each hour, and the same totals from the facts.
# Money is summed as integer cents (each value is a whole number of cents),
# so that both sides are exact.
CENTS = "CAST(round({} * 100) AS INTEGER)"
KPI_SQL = f"""
SELECT substr(minute_start, 1, 13) AS hour, min(final) AS final,
       sum(orders) AS orders, sum(units) AS units,
       sum({CENTS.format("gross_revenue")}) AS gross_revenue_cents,
       sum(payment_attempts) AS payment_attempts, sum(failed_payments) AS failed_payments,
       sum({CENTS.format("paid_revenue")}) AS paid_revenue_cents,
       sum(cancellations) AS cancellations,
       sum({CENTS.format("cancelled_revenue")}) AS cancelled_revenue_cents
FROM kpi_minute WHERE dimension = 'overall' {{bound}}
GROUP BY substr(minute_start, 1, 13)"""
FACT_SQL = {
    "orders": f"""
SELECT substr(ts, 1, 13) AS hour, count(*) AS orders, sum(quantity) AS units,
       sum({CENTS.format("total_price")}) AS gross_revenue_cents
FROM orders {{bound}} GROUP BY substr(ts, 1, 13)""",
    "payments": f"""
SELECT substr(ts, 1, 13) AS hour, count(*) AS payment_attempts,
       sum(status = 'failed') AS failed_payments,
       sum(CASE WHEN status = 'success' THEN {CENTS.format("amount")} ELSE 0 END)
         AS paid_revenue_cents
FROM payments {{bound}} GROUP BY substr(ts, 1, 13)""",
    "cancellations": f"""
SELECT substr(ts, 1, 13) AS hour, count(*) AS cancellations,
       sum({CENTS.format("refund")}) AS cancelled_revenue_cents
FROM cancellations {{bound}} GROUP BY substr(ts, 1, 13)""",
}
MEASURES = ("orders", "units", "gross_revenue_cents", "payment_attempts", "failed_payments",
            "paid_revenue_cents", "cancellations", "cancelled_revenue_cents")


def sql(query):
    """Rows of `shopstream sql --format json` over the configured stores."""
    proc = shopstream("sql", *store(), "--format", "json", query, what="shopstream sql",
                      quiet=True)
    return json.loads(proc.stdout or "[]")


def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


def hour_start_ms(hour):
    """Milliseconds of 'YYYY-MM-DDTHH' (UTC)."""
    t = datetime.datetime.strptime(hour, "%Y-%m-%dT%H").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1000)


def check_hours(state, lookback):
    """Problems of the closed hours: KPI totals that differ from the facts.
    Returns (problems, number of closed hours checked)."""
    watermark = state.get("watermark")
    if watermark is None:
        log.info("the store has no watermark yet: no hour is closed")
        return [], 0
    kpi_bound = fact_bound = ""
    if lookback > 0:
        since = iso((watermark // HOUR_MS - lookback) * HOUR_MS)
        kpi_bound, fact_bound = f"AND minute_start >= '{since}'", f"WHERE ts >= '{since}'"
    kpis = {r["hour"]: r for r in sql(KPI_SQL.format(bound=kpi_bound))}
    facts = {}
    for query in FACT_SQL.values():
        for r in sql(query.format(bound=fact_bound)):
            facts.setdefault(r["hour"], {}).update(r)
    problems, checked = [], 0
    for hour in sorted(set(kpis) | set(facts)):
        if hour_start_ms(hour) + HOUR_MS > watermark:
            continue
        k, f = kpis.get(hour, {}), facts.get(hour, {})
        if k and not k["final"]:
            continue
        checked += 1
        for m in MEASURES:
            want, got = f.get(m) or 0, k.get(m) or 0
            if want != got:
                problems.append(f"hour {hour}: {m} is {got} in the minute KPIs, "
                                f"{want} in the facts")
    return problems, checked


with DAG(
    dag_id="shopstream_maintenance",
    description="Hourly: archive --once, archive --verify, and the data-quality checks",
    doc_md=__doc__,
    schedule="@hourly",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    # One archiver works on a store at a time (its lock); so does this DAG.
    max_active_runs=1,
    dagrun_timeout=datetime.timedelta(minutes=55),
    default_args={"retries": 0, "execution_timeout": datetime.timedelta(minutes=50)},
    tags=["shopstream"],
) as dag:

    @task
    def archive_once():
        """`shopstream archive --once`: moves the oldest events past the threshold."""
        mb = number("hot_max_mb")
        shopstream("archive", *store(), "--once", "--hot-max-mb", f"{mb:g}",
                   what="shopstream archive --once")

    @task
    def verify_archives():
        """`shopstream archive --verify`: every archive's files against its manifest."""
        proc = shopstream("archive", *store(), "--verify", what="shopstream archive --verify",
                          check=False)
        if proc.returncode != 0:
            lines = (proc.stdout + proc.stderr).strip().splitlines()
            raise AirflowFailException("the cold store does not match its manifests "
                                       f"(archive --verify exit {proc.returncode}):\n"
                                       + "\n".join(lines[-20:]))
        return proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""

    @task
    def check_quality():
        """KPIs against facts for every closed hour, the rejected share and
        the hot store's size; fails listing every problem found."""
        state = {r["key"]: r["value"] for r in sql("SELECT key, value FROM engine_state")}
        problems, hours = check_hours(state, int(number("quality_hours")))

        events, rejected = state.get("events_in") or 0, state.get("rejected") or 0
        share = 100.0 * rejected / events if events else 0.0
        limit = number("max_rejected_pct")
        if share > limit:
            problems.append(f"{rejected} of {events} input records rejected ({share:.2f} %), "
                            f"over shopstream_max_rejected_pct {limit:g} %")

        mb = number("hot_max_mb")
        status = shopstream("archive", *store(), "--status", "--hot-max-mb", f"{mb:g}",
                            what="shopstream archive --status").stdout
        m = re.search(r"^hot store: ([0-9.]+) MB of data, threshold ([0-9.]+) MB \((under|over)",
                      status, re.M)
        if not m:
            raise AirflowFailException(f"archive --status printed no hot store line:\n{status}")
        if m.group(3) != "under":
            problems.append(f"the hot store holds {m.group(1)} MB, over its threshold of "
                            f"{m.group(2)} MB after archiving")

        summary = {"closed_hours": hours, "rejected_pct": round(share, 3),
                   "hot_mb": float(m.group(1)), "problems": len(problems)}
        log.info("quality: %s", summary)
        if problems:
            raise AirflowFailException("data-quality check failed:\n" + "\n".join(problems))
        return summary

    archived = archive_once()
    archived >> [verify_archives(), check_quality()]

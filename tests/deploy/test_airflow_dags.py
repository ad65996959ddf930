"""The Airflow DAGs of airflow/dags, run by Airflow 3.3.2 (scripts/airflow)
against real stores made by the binary under test.

- DagBag: every DAG file imports without errors, no DAG has a cycle, the
  DAGs have the tasks, schedules and parameters they document; the same
  check reports a broken file and a cycle.
- shopstream_maintenance (`airflow dags test`): on a sound store it
  archives, verifies and checks, and exits 0; a damaged cold part file fails
  verify_archives and the run; a tampered KPI row, too many rejected records
  and a hot store that archiving cannot bring under its threshold fail
  check_quality, naming each problem.
- shopstream_backfill: a file replayed into a new store gives the store of
  `shopstream process`; a copy of it replayed again stores nothing. Two
  ranges of a Kafka partition, cut with kcat, give the store of the whole
  stream; a range replayed again and a range past the partition's end
  change nothing, the latter failing with a message.
"""
import ast
import json
import re
import shutil
import sqlite3
import subprocess
import textwrap

import pytest

from airflow_harness import AIRFLOW_SCRIPT, DAGS, airflow, explain  # noqa: F401
from harness import assert_ok, cli, kafka  # noqa: F401
from storedb import store_db

SEED, COUNT, RATE, START = 3, 3000, 0.25, "2026-11-02"
DATE = "2026-11-02"


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    """A stream of COUNT orders over about 3 hours, with their follow-ups."""
    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    path.write_bytes(assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--rate", RATE,
                                   "--max", "--start", START)).stdout)
    return path


@pytest.fixture(scope="module")
def store(events, tmp_path_factory):
    """The stream processed into a store, nothing archived."""
    data = tmp_path_factory.mktemp("store") / "data"
    assert_ok(cli("process", "--from", events, "--data", data, "--archive-every", 0,
                  timeout=300))
    return data


@pytest.fixture(scope="module")
def archived(store, tmp_path_factory):
    """The same store after `archive --once --hot-max-mb 0.9`."""
    data = tmp_path_factory.mktemp("archived") / "data"
    shutil.copytree(store, data)
    assert_ok(cli("archive", "--data", data, "--once", "--hot-max-mb", 0.9, timeout=300))
    assert archives(data) >= 2
    return data


def archives(data):
    with store_db(f"file:{data / 'hot.db'}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM archives WHERE state = 'committed'").fetchone()[0]


def copy(data, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(data, out)
    return out


def logged_dict(run, prefix):
    """The dict a task logged as `PREFIX{...}`."""
    m = re.search(re.escape(prefix) + r"(\{.*?\})", run.output)
    assert m, f"no {prefix!r} in the log\n{explain(run)}"
    return ast.literal_eval(m.group(1))


def tables(data):
    """What a store holds that a replay must reproduce: the facts, the KPI
    rows and the engine's dimensions."""
    with store_db(f"file:{data / 'hot.db'}?mode=ro", uri=True) as db:
        out = {}
        for t in ("orders_data", "payments_data", "cancellations_data", "customers", "products"):
            out[t] = db.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
        out["kpi_minute"] = db.execute(
            "SELECT * FROM kpi_minute ORDER BY minute_start, dimension, dimension_value"
        ).fetchall()
        return out


# ---- DagBag ----

DAGBAG = textwrap.dedent("""
    import json, sys
    from airflow.dag_processing.dagbag import DagBag
    folder = sys.argv[1]
    # As the DAG processor, the CLI and the task runner do (BundleDagBag):
    # the DAG folder is on sys.path, for the module the DAG files share.
    sys.path.append(folder)
    bag = DagBag(dag_folder=folder)
    out = {"errors": dict(bag.import_errors), "files": sorted(bag.file_last_changed), "dags": {}}
    for dag_id, dag in bag.dags.items():
        dag.check_cycle()
        out["dags"][dag_id] = {
            "tasks": {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
            "schedule": str(dag.schedule),
            "params": sorted(dag.params.keys()),
            "max_active_runs": dag.max_active_runs,
        }
    try:
        DagBag(dag_folder=folder, include_examples=False)
        out["include_examples"] = "accepted"
    except TypeError as e:
        out["include_examples"] = "TypeError"
    print(json.dumps(out))
""")


def dagbag(airflow, folder):  # noqa: F811
    proc = subprocess.run([str(AIRFLOW_SCRIPT), "python", "-c", DAGBAG, str(folder)],
                          capture_output=True, timeout=600, env=airflow.env())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-4000:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def test_dagbag_imports_every_dag_without_errors_or_cycles(airflow):  # noqa: F811
    bag = dagbag(airflow, DAGS)
    assert bag["errors"] == {}, bag["errors"]
    assert set(bag["dags"]) == {"shopstream_maintenance", "shopstream_daily",
                                "shopstream_backfill"}
    # The shared module is imported by the DAG files, not parsed as one.
    assert not any(f.endswith("shopstream_common.py") for f in bag["files"]), bag["files"]
    m = bag["dags"]["shopstream_maintenance"]
    assert m["tasks"] == {"archive_once": ["check_quality", "verify_archives"],
                          "verify_archives": [], "check_quality": []}
    assert m["schedule"] == "@hourly"
    assert m["max_active_runs"] == 1
    d = bag["dags"]["shopstream_daily"]
    assert d["tasks"] == {"analytics": []} and d["params"] == ["day"]
    assert d["schedule"] == "@daily"
    b = bag["dags"]["shopstream_backfill"]
    assert b["tasks"] == {"stage": ["replay"], "replay": []}
    assert b["params"] == sorted(["source", "partition", "start_offset", "end_offset", "data",
                                  "hot", "cold"])
    assert b["schedule"] == "None"
    # Airflow 3.3's DagBag has no include_examples any more.
    assert bag["include_examples"] == "TypeError"


def test_dagbag_check_reports_a_broken_file_and_a_cycle(airflow, tmp_path):  # noqa: F811
    (tmp_path / "broken_dag.py").write_text("from airflow.sdk import DAG\nDAG(\n")
    (tmp_path / "cyclic_dag.py").write_text(textwrap.dedent("""
        import datetime
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        with DAG("cyclic", schedule=None,
                 start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)):
            a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
            a >> b >> a
    """))
    bag = dagbag(airflow, tmp_path)
    assert bag["dags"] == {}
    errors = {k.rsplit("/", 1)[-1]: v for k, v in bag["errors"].items()}
    assert set(errors) == {"broken_dag.py", "cyclic_dag.py"}, errors
    assert "SyntaxError" in errors["broken_dag.py"] or "never closed" in errors["broken_dag.py"]
    assert "ycle" in errors["cyclic_dag.py"], errors["cyclic_dag.py"]


# ---- shopstream_maintenance ----

def test_maintenance_archives_verifies_and_checks_a_sound_store(airflow, store,  # noqa: F811
                                                                 tmp_path):
    data = copy(store, tmp_path)
    assert archives(data) == 0
    run = airflow.dags_test("shopstream_maintenance", DATE,
                            {"data": data, "hot_max_mb": 0.9})
    assert run.proc.returncode == 0, explain(run)
    assert run.states == {"archive_once": "success", "verify_archives": "success",
                          "check_quality": "success"}, explain(run)
    # archive_once moved the oldest events, and verify checked the archives.
    assert archives(data) >= 2
    assert re.search(r"[0-9]+ committed archives checked: all files match", run.output), \
        explain(run)
    quality = logged_dict(run, "quality: ")
    # The stream spans 17 hours of event time (its follow-ups included);
    # every hour before the watermark's is closed and was checked.
    assert quality["closed_hours"] >= 15 and quality["problems"] == 0, quality
    assert quality["hot_mb"] <= 2 and quality["rejected_pct"] == 0, quality


def test_maintenance_fails_on_a_damaged_cold_file(airflow, archived, tmp_path):  # noqa: F811
    data = copy(archived, tmp_path)
    parts = sorted((data / "cold" / "orders").rglob("part-*.jsonl"))
    assert parts
    damaged = parts[0]
    raw = bytearray(damaged.read_bytes())
    i = raw.index(b'"total_price":') + len(b'"total_price":')
    raw[i] = ord("9") if raw[i] != ord("9") else ord("8")
    damaged.write_bytes(bytes(raw))
    run = airflow.dags_test("shopstream_maintenance", DATE, {"data": data, "hot_max_mb": 0.9})
    assert run.proc.returncode != 0, explain(run)
    assert run.states["archive_once"] == "success", explain(run)
    assert run.states["verify_archives"] == "failed", explain(run)
    assert "the cold store does not match its manifests" in run.output, explain(run)
    rel = damaged.relative_to(data / "cold")
    assert re.search(rf"{re.escape(str(rel))}.*damaged", run.output), explain(run)


def test_quality_check_fails_on_a_tampered_kpi_row(airflow, archived, tmp_path):  # noqa: F811
    data = copy(archived, tmp_path)
    with store_db(data / "hot.db") as db:
        # The oldest hour whose minute KPIs are still hot (the archives took
        # the older hours' with their facts); the check reads hot and cold.
        hour = db.execute("SELECT min(substr(minute_start, 1, 13)) FROM kpi_minute_data WHERE "
                          "dimension = 'overall' AND orders > 0").fetchone()[0]
        minute, orders = db.execute(
            "SELECT minute_start, sum(orders) FROM kpi_minute_data WHERE dimension = 'overall'"
            " AND substr(minute_start, 1, 13) = ? AND orders > 0 GROUP BY minute_start"
            " ORDER BY minute_start LIMIT 1", (hour,)).fetchone()
        db.execute("UPDATE kpi_minute_data SET orders = orders + 1, gross_revenue_cents ="
                   " gross_revenue_cents - 5 WHERE dimension = 'overall' AND minute_start = ?"
                   " AND shard = 0", (minute,))
    p = cli("sql", "--data", data, "--format", "json",
            "SELECT sum(orders) AS n FROM kpi_minute_data WHERE dimension = 'overall' AND "
            f"substr(minute_start, 1, 13) = '{hour}'")
    hour_orders = json.loads(assert_ok(p).stdout)[0]["n"]
    run = airflow.dags_test("shopstream_maintenance", DATE, {"data": data, "hot_max_mb": 0.9})
    assert run.proc.returncode != 0, explain(run)
    assert run.states == {"archive_once": "success", "verify_archives": "success",
                          "check_quality": "failed"}, explain(run)
    assert "data-quality check failed" in run.output, explain(run)
    assert (f"hour {hour}: orders is {hour_orders} in the minute KPIs, "
            f"{hour_orders - 1} in the facts") in run.output, explain(run)
    assert re.search(rf"hour {hour}: gross_revenue_cents is [0-9]+ in the minute KPIs",
                     run.output), explain(run)
    # No other hour is reported.
    assert len(re.findall(r"hour [0-9T-]{13}: ", run.output)) == \
        len(re.findall(rf"hour {hour}: ", run.output)), explain(run)


def test_quality_check_fails_on_rejected_records_and_a_full_hot_store(airflow, events,  # noqa
                                                                      tmp_path):
    # 40 lines that are no events among about 6,300: 0.6 % rejected.
    bad = tmp_path / "with-bad-lines.jsonl"
    bad.write_bytes(events.read_bytes() + b"".join(b'{"type":"order","broken":%d}\n' % i
                                                   for i in range(40)))
    data = tmp_path / "data"
    # A lateness of a day keeps the watermark before every event of the
    # 3-hour stream, and no event past the watermark moves: archiving cannot
    # bring this store under 1 MB.
    assert_ok(cli("process", "--from", bad, "--data", data, "--archive-every", 0, "--lateness",
                  86_400_000, timeout=300))
    run = airflow.dags_test("shopstream_maintenance", DATE,
                            {"data": data, "hot_max_mb": 1, "max_rejected_pct": 0.5})
    assert run.proc.returncode != 0, explain(run)
    assert run.states["check_quality"] == "failed", explain(run)
    assert re.search(r"40 of [0-9]+ input records rejected \(0\.6[0-9] %\), over "
                     r"shopstream_max_rejected_pct 0\.5 %", run.output), explain(run)
    assert re.search(r"the hot store holds [0-9.]+ MB, over its threshold of 1\.0 MB after "
                     "archiving", run.output), explain(run)
    assert "in the minute KPIs" not in run.output, explain(run)


# ---- shopstream_backfill ----

def test_backfill_of_a_file_is_exactly_once(airflow, events, store, tmp_path):  # noqa: F811
    data = tmp_path / "replay"
    run = airflow.dags_test("shopstream_backfill", DATE,
                            conf={"source": str(events), "data": str(data)})
    assert run.proc.returncode == 0, explain(run)
    assert run.states == {"stage": "success", "replay": "success"}, explain(run)
    first = logged_dict(run, f"replayed {events}: ")
    assert first["stored"] == first["events_in"] > 6000 and first["late"] == 0, first
    assert tables(data) == tables(store)
    # The same events again under another name: every one is a duplicate.
    again = tmp_path / "again.jsonl"
    shutil.copy(events, again)
    run = airflow.dags_test("shopstream_backfill", DATE,
                            conf={"source": str(again), "data": str(data)})
    assert run.proc.returncode == 0, explain(run)
    second = logged_dict(run, f"replayed {again}: ")
    assert second == {"events_in": first["events_in"], "stored": 0,
                      "duplicates": first["events_in"], "rejected": 0, "late": 0}, second
    assert tables(data) == tables(store)


def test_backfill_of_kafka_ranges_is_exactly_once(airflow, kafka, events, store,  # noqa: F811
                                                  tmp_path):
    topic = "backfill"
    uri = f"kafka://{kafka}/{topic}"
    assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--rate", RATE, "--max", "--start",
                  START, "--partitions", 1, "--out", uri, timeout=300))
    total = len(events.read_bytes().splitlines())
    data = tmp_path / "replay"
    half = total // 2

    def backfill(**conf):
        return airflow.dags_test("shopstream_backfill", DATE,
                                 conf={"source": uri, "data": str(data), **conf})

    run = backfill(start_offset=0, end_offset=half)
    assert run.proc.returncode == 0, explain(run)
    cut = data / "backfill" / f"{topic}-p0-o0-{half}.jsonl"
    assert f"cut {half} messages (offsets 0 .. {half - 1}) into {cut}" in run.output
    assert cut.read_bytes().splitlines() == events.read_bytes().splitlines()[:half]
    assert logged_dict(run, f"replayed {cut}: ")["stored"] == half
    # The rest, up to the partition's end.
    run = backfill(start_offset=half)
    assert run.proc.returncode == 0, explain(run)
    rest = data / "backfill" / f"{topic}-p0-o{half}-{total}.jsonl"
    assert logged_dict(run, f"replayed {rest}: ") == {
        "events_in": total - half, "stored": total - half, "duplicates": 0, "rejected": 0,
        "late": 0}
    assert tables(data) == tables(store)
    # The first range again: its file is cut already and read to its end.
    run = backfill(start_offset=0, end_offset=half)
    assert run.proc.returncode == 0, explain(run)
    assert f"{cut} is cut already" in run.output
    assert logged_dict(run, f"replayed {cut}: ") == dict.fromkeys(
        ("events_in", "stored", "duplicates", "rejected", "late"), 0)
    # A range past the partition's end: nothing is replayed.
    run = backfill(start_offset=total - 10, end_offset=total + 10)
    assert run.proc.returncode != 0, explain(run)
    assert run.states == {"stage": "failed"}, explain(run)
    assert (f"offsets {total - 10} .. {total + 9} wanted, kcat read 10 messages of offsets "
            f"{total - 10} .. {total - 1}") in run.output, explain(run)
    assert tables(data) == tables(store)

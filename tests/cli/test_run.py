"""Black-box tests of `shopstream run`, the generator and the engine in one
process over the in-process bus.

- With --max --count it stops by itself, and the store it leaves holds the
  same facts, dimensions and minute KPIs as `shopstream gen` piped through
  `shopstream process` with the same seed, start and count.
- In real time it runs until SIGINT or SIGTERM, then exits 0 with what it
  has processed committed.
- --max and --speedup together are a usage mistake.
- While it runs, `shopstream sql` sees provisional (not yet final) minute KPIs.

The binary comes from SHOPSTREAM_BIN (CMake sets it for ctest), else
build/shopstream under the repository root.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import BIN, REPO, assert_ok, clean_env, cli, describe


SEED, COUNT, START = 5, 20_000, "2026-11-02T00:00:00Z"

# Polling a running pipeline gives up after this long: generous, so that a
# slow machine is not a failure; nothing else depends on timing.
PATIENCE_S = 60


def query(data, sql):
    proc = assert_ok(cli("sql", sql, "--data", data, "--format", "json"))
    return json.loads(proc.stdout)


def scalar(data, sql):
    [row] = query(data, sql)
    [value] = row.values()
    return value


@pytest.fixture(scope="module", autouse=True)
def binary():
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")


# ---- run --max --count equals gen + process ----

# Totals per table: any lost, doubled or altered event changes one of them.
TOTALS = {
    "orders_data": "count(*), count(DISTINCT order_id), count(DISTINCT customer_id), "
                   "sum(quantity), sum(unit_price_cents), sum(amount_cents), "
                   "sum(discount_cents), sum(tax_cents), sum(shipping_cents), "
                   "sum(total_price_cents), min(ts), max(ts)",
    "payments_data": "count(*), sum(status = 'failed'), sum(amount_cents), sum(attempt), "
                     "count(DISTINCT order_id), min(ts), max(ts)",
    "cancellations_data": "count(*), sum(reason = 'payment_failed'), sum(refund_cents), "
                          "min(ts), max(ts)",
    "kpi_minute_data": "count(*), sum(orders), sum(units), sum(gross_revenue_cents), "
                       "sum(paid_revenue_cents), sum(payment_attempts), sum(failed_payments), "
                       "sum(cancellations), sum(cancelled_revenue_cents), sum(final)",
    "customers": "count(*)", "products": "count(*)", "categories": "count(*)",
    "countries": "count(*)", "cities": "count(*)", "payment_methods": "count(*)",
    "time_minutes": "count(*)", "rejected_events": "count(*)", "late_events": "count(*)",
}

# Whole tables, row by row, in a fixed order.
ROWS = {
    "kpi_minute_data": "SELECT * FROM kpi_minute_data "
                       "ORDER BY minute_start, dimension, dimension_value, shard",
    "kpi_minute": "SELECT * FROM kpi_minute ORDER BY minute_start, dimension, dimension_value",
    "orders": "SELECT * FROM orders_data ORDER BY event_id",
    "payments": "SELECT * FROM payments_data ORDER BY event_id",
    "cancellations": "SELECT * FROM cancellations_data ORDER BY event_id",
    "customers": "SELECT * FROM customers ORDER BY customer_id",
    "products": "SELECT * FROM products ORDER BY product_id",
    "cities": "SELECT * FROM cities ORDER BY city",
    "countries": "SELECT * FROM countries ORDER BY country",
    "time_minutes": "SELECT * FROM time_minutes ORDER BY minute_start",
    "order_state": "SELECT status, count(*) AS n FROM order_state GROUP BY status ORDER BY status",
}


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    """The store of `run --max --count` and that of gen + process."""
    tmp = tmp_path_factory.mktemp("run")
    t0 = time.monotonic()
    proc = cli("run", "--headless", "--max", "--count", COUNT, "--seed", SEED, "--start", START,
               "--data", tmp / "run")
    elapsed = time.monotonic() - t0
    events = tmp / "events.jsonl"
    events.write_bytes(assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--max",
                                     "--start", START)).stdout)
    assert_ok(cli("process", "--from", events, "--data", tmp / "process"))
    return {"proc": proc, "elapsed": elapsed, "run": tmp / "run", "process": tmp / "process"}


def test_run_max_count_exits_by_itself(pipelines):
    proc = pipelines["proc"]
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == b"", "run writes its log to stderr, not stdout"
    err = proc.stderr.decode()
    # The closing KPI summary line.
    assert "[run] minute " in err and "orders " in err and "events " in err, err
    assert scalar(pipelines["run"], "SELECT count(*) FROM orders") == COUNT


@pytest.mark.parametrize("table", list(TOTALS))
def test_run_totals_match_gen_process(pipelines, table):
    sql = f"SELECT {TOTALS[table]} FROM {table}"
    want = query(pipelines["process"], sql)
    assert query(pipelines["run"], sql) == want
    assert list(want[0].values())[0] > 0 or table in ("rejected_events", "late_events")


@pytest.mark.parametrize("name", list(ROWS))
def test_run_rows_match_gen_process(pipelines, name):
    run = assert_ok(cli("sql", ROWS[name], "--data", pipelines["run"], "--format", "csv")).stdout
    ref = assert_ok(cli("sql", ROWS[name], "--data", pipelines["process"],
                        "--format", "csv")).stdout
    assert run.count(b"\n") > 1
    if run != ref:
        a, b = run.split(b"\r\n"), ref.split(b"\r\n")
        diff = next(i for i in range(min(len(a), len(b))) if a[i] != b[i]) \
            if any(x != y for x, y in zip(a, b)) else min(len(a), len(b))
        raise AssertionError(f"{name}: {len(a) - 1} rows from run, {len(b) - 1} from gen + "
                             f"process; first difference at line {diff}:\n"
                             f"run:     {a[diff] if diff < len(a) else None!r}\n"
                             f"process: {b[diff] if diff < len(b) else None!r}")


def test_run_engine_counters(pipelines):
    state = {r["key"]: r["value"] for r in query(pipelines["run"],
                                                  "SELECT key, value FROM engine_state")}
    facts = scalar(pipelines["run"], "SELECT (SELECT count(*) FROM orders) + "
                                     "(SELECT count(*) FROM payments) + "
                                     "(SELECT count(*) FROM cancellations)")
    assert state["events_in"] == state["stored"] == facts
    assert state["rejected"] == state["late"] == state["duplicates"] == 0


# ---- usage ----

def test_max_and_speedup_conflict(tmp_path):
    data = tmp_path / "data"
    proc = cli("run", "--headless", "--max", "--speedup", "2", "--count", "10", "--data", data,
               timeout=30)
    assert proc.returncode == 2, describe(proc)
    assert proc.stdout == b""
    assert b"--max and --speedup cannot be combined" in proc.stderr, describe(proc)
    assert not data.exists(), "a refused run created its data directory"


def test_unexpected_argument(tmp_path):
    proc = cli("run", "now", "--data", tmp_path / "data", timeout=30)
    assert proc.returncode == 2 and b"unexpected argument 'now'" in proc.stderr, describe(proc)


# ---- running until stopped ----

def start(*args):
    return subprocess.Popen([BIN, "run", "--headless", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())


def poll_sql(proc, data, sql, until):
    """Runs sql against the running pipeline until until(value) holds; returns
    the value. Fails if the pipeline exits or PATIENCE_S passes first."""
    deadline = time.monotonic() + PATIENCE_S
    last = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"run exited early: {proc.returncode}\n" \
                                    f"{proc.stderr.read().decode(errors='replace')}"
        if (data / "hot.db").exists():
            q = cli("sql", sql, "--data", data, "--format", "json", timeout=30)
            if q.returncode == 0:
                [row] = json.loads(q.stdout)
                [last] = row.values()
                if until(last):
                    return last
        time.sleep(0.2)
    raise AssertionError(f"after {PATIENCE_S} s, {sql!r} still gives {last!r}")


def stop(proc, sig, timeout=PATIENCE_S):
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return out, err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_real_time_stops_on_signal(tmp_path, sig):
    data = tmp_path / "data"
    proc = start("--rate", 50, "--data", data)
    try:
        t0 = time.monotonic()
        time.sleep(3)
        assert proc.poll() is None, "run --rate 50 stopped by itself"
        # Orders are committed, visible to a reader, while it runs ...
        poll_sql(proc, data, "SELECT count(*) FROM orders", lambda n: n > 0)
        visible = time.monotonic() - t0
        out, err = stop(proc, sig)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode} after {sig.name}: {err.decode()}"
    assert out == b""
    assert b"[run] minute " in err, err.decode()  # the closing summary
    # ... and after the stop, everything it took in is committed.
    state = {r["key"]: r["value"] for r in query(data, "SELECT key, value FROM engine_state")}
    counts = query(data, "SELECT (SELECT count(*) FROM orders) AS o, "
                         "(SELECT count(*) FROM payments) AS p, "
                         "(SELECT count(*) FROM cancellations) AS c")[0]
    assert counts["o"] > 0
    assert state["stored"] == counts["o"] + counts["p"] + counts["c"]
    # Real time: simulated time is the wall clock's, and the orders are a few
    # seconds' worth at 50 per second (with a wide margin for peak hours),
    # not a burst as fast as the engine goes.
    newest = query(data, "SELECT max(ts) AS t FROM orders")[0]["t"]
    now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    assert abs(time.mktime(time.strptime(newest[:19], "%Y-%m-%dT%H:%M:%S")) -
               time.mktime(time.strptime(now, "%Y-%m-%dT%H:%M:%S"))) < 3600, (newest, now)
    assert counts["o"] < 50 * 20 * (elapsed + 1), f"{counts['o']} orders in {elapsed:.1f} s"
    # Commits follow --commit-ms (250 ms) while data flows, so the first
    # orders showed up within seconds. Regression: the engine's reader thread
    # held a slow stream's records until a batch of 2048 had filled (about
    # 18 s at this rate), and readers saw nothing until then.
    assert visible < 10, f"the first orders became visible only after {visible:.1f} s"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_max_stops_on_signal(tmp_path, sig):
    """Stopped mid-way at full speed, when the generator is waiting for room
    on a full bus. Regression: the generator thread waited forever for the
    engine, which had stopped reading, and run never exited."""
    data = tmp_path / "data"
    proc = start("--max", "--count", 50_000_000, "--seed", SEED, "--start", START,
                 "--queue-mb", 1, "--data", data)
    try:
        poll_sql(proc, data, "SELECT count(*) FROM orders", lambda n: n > 0)
        out, err = stop(proc, sig, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode} after {sig.name}: {err.decode()}"
    state = {r["key"]: r["value"] for r in query(data, "SELECT key, value FROM engine_state")}
    [n] = query(data, "SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM payments) "
                      "+ (SELECT count(*) FROM cancellations) AS n")
    assert 0 < state["stored"] == n["n"]
    assert scalar(data, "SELECT count(*) FROM orders") < 50_000_000


def test_provisional_kpis_visible_while_running(tmp_path):
    data = tmp_path / "data"
    proc = start("--speedup", 60, "--rate", 20, "--data", data)
    try:
        open_rows = poll_sql(proc, data, "SELECT count(*) FROM kpi_minute WHERE final = 0",
                             lambda n: n > 0)
        assert open_rows > 0 and proc.poll() is None
        # Provisional rows carry numbers, not just placeholders.
        assert poll_sql(proc, data, "SELECT coalesce(sum(orders), 0) FROM kpi_minute "
                                    "WHERE final = 0 AND dimension = 'overall'",
                        lambda n: n > 0) > 0
        # At 60 simulated seconds per second the watermark soon closes minutes.
        poll_sql(proc, data, "SELECT count(*) FROM kpi_minute WHERE final = 1", lambda n: n > 0)
        assert proc.poll() is None
        out, err = stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode}: {err.decode()}"
    # Every KPI row agrees with the facts it was built from, final or not.
    [k] = query(data, "SELECT sum(orders) AS o, sum(gross_revenue_cents) AS g "
                      "FROM kpi_minute_data WHERE dimension = 'overall'")
    [f] = query(data, "SELECT count(*) AS o, sum(total_price_cents) AS g FROM orders_data")
    assert k == f

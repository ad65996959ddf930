#!/usr/bin/env python3
"""bench/spark_delay.py: the end-to-end delay part of bench/spark, which runs it.

On a live topic, fed in real time by `shopstream gen` (event time = the wall
clock), two consumers run at once: `shopstream process` (the live path: its
store, read with SQLite) and spark/streaming_baseline.py --trigger 10s (its
file sink). Once both have caught up, one probe order is produced with kcat,
its ts the wall clock, its city a value no other event has ("bench-probe").
Measured from the probe's production:

- ours: the first commit whose kpi_minute_data row of the probe's city
  counts it (a provisional KPI, visible to SQL and the dashboard), and the
  commit that marks that row final (the watermark past its minute);
- Spark: the file sink's overall row of the probe's minute (append mode
  writes a window once the watermark has passed it: that row includes the
  probe). Its row by city is written only once the watermark has passed the
  attribution bound as well (49 h of event time), which a live run of
  minutes does not reach.

Both share the machine's 2 cores while they run.

Usage: bench/spark_delay.py BIN ADDR WORKDIR [RATE] [TIMEOUT_S]
       (RATE: live orders per second, default 50; TIMEOUT_S default 420)
"""
import datetime
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

PROBE_CITY = "bench-probe"


def iso(t):
    d = datetime.datetime.fromtimestamp(t, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"


def probe_line(t, n):
    """An order at wall time t with the probe's city: one event, valid."""
    return json.dumps({
        "type": "order", "event_id": f"e-0000000b3c40-{n:010d}-o",
        "order_id": f"o-0000000b3c40-{n:010d}", "ts": iso(t),
        "customer_id": f"c-0000000b3c40-{n:010d}", "customer_segment": "regular",
        "product_id": "P000001", "product_name": "Bench Probe", "category": "Probe",
        "city": PROBE_CITY, "country": "Probe", "quantity": 1, "unit_price": "10.00",
        "amount": "10.00", "discount": "0.00", "tax": "0.00", "shipping": "0.00",
        "total_price": "10.00", "currency": "EUR", "payment_method": "card",
    }).replace('"10.00"', "10.00").replace('"0.00"', "0.00")


def ours_row(db_path, minute):
    """(orders, final) of the probe city's row of minute, or None."""
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=1) as db:
            r = db.execute("SELECT sum(orders), min(final) FROM kpi_minute_data WHERE "
                           "dimension = 'city' AND dimension_value = ? AND minute_start = ?",
                           (PROBE_CITY, minute)).fetchone()
    except sqlite3.Error:
        return None
    return None if r is None or r[0] is None else r


def spark_row(sink, minute):
    """Whether the file sink holds the overall row of minute."""
    for f in Path(sink, "overall").glob("part-*.json"):
        try:
            for line in f.read_text().splitlines():
                if json.loads(line)["minute_start"] == minute:
                    return True
        except (OSError, ValueError):
            continue  # being written
    return False


def main():
    binary, addr, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    rate = float(sys.argv[4]) if len(sys.argv) > 4 else 50.0
    timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 420.0
    repo = Path(__file__).resolve().parents[1]
    topic = f"live-{int(time.time())}"
    uri = f"kafka://{addr}/{topic}"
    work.mkdir(parents=True, exist_ok=True)
    procs = []
    logs = {name: open(work / f"{name}.log", "wb") for name in ("gen", "ours", "spark")}
    try:
        start = iso(time.time())
        procs.append(subprocess.Popen([binary, "gen", "--seed", "3", "--rate", str(rate),
                                       "--start", start, "--partitions", "2", "--out", uri],
                                      stdout=subprocess.DEVNULL, stderr=logs["gen"]))
        time.sleep(3)  # the topic exists
        data = work / "ours"
        procs.append(subprocess.Popen([binary, "process", "--from", uri, "--data", str(data),
                                       "--archive-every", "0"],
                                      stdout=subprocess.DEVNULL, stderr=logs["ours"]))
        sink = work / "spark"
        procs.append(subprocess.Popen(
            [str(repo / "scripts" / "spark"), "submit", str(repo / "spark" / "streaming_baseline.py"),
             "--from", uri, "--out", str(sink), "--trigger", "10s", "--format", "json"],
            stdout=logs["spark"], stderr=subprocess.STDOUT))
        # Caught up: the sink has its first overall rows (the topic's first
        # minutes have passed the watermark), and our store has committed.
        t_end = time.monotonic() + timeout
        while time.monotonic() < t_end and not list(Path(sink, "overall").glob("part-*.json")):
            for p in procs:
                if p.poll() is not None:
                    raise SystemExit(f"bench/spark_delay: {p.args[0]} exited {p.returncode}; "
                                     f"see {work}/*.log")
            time.sleep(1)
        time.sleep(5)
        t0 = time.time()
        minute = iso(t0 - t0 % 60)
        line = probe_line(t0, 1)
        subprocess.run(["kcat", "-P", "-b", addr, "-t", topic, "-k", "o-0000000b3c40-0000000001"],
                       input=line.encode() + b"\n", check=True)
        seen = final = spark = None
        while time.monotonic() < t_end and (final is None or spark is None):
            now = time.time()
            r = ours_row(data / "hot.db", minute)
            if r and seen is None:
                seen = now - t0
            if r and r[1] == 1 and final is None:
                final = now - t0
            if spark is None and spark_row(sink, minute):
                spark = now - t0
            time.sleep(0.002 if seen is None else 0.2)

        def fmt(v):
            return f"{v:8.3f} s" if v is not None else f"not within {timeout:.0f} s"

        print(f"live topic: gen --rate {rate:g} (orders/s, real time), 2 partitions; one probe "
              f"order at {iso(t0)}")
        print(f"  ours (process, live path): probe's KPI row visible after {fmt(seen)} "
              f"(provisional), final after {fmt(final)}")
        print(f"  Spark --trigger 10s:       probe's minute (overall) in the file sink after "
              f"{fmt(spark)}; by city only once the watermark passes the attribution bound "
              f"(49 h of event time)")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs.values():
            f.close()


if __name__ == "__main__":
    main()

"""Thirty simulated days through `process` at a small threshold.

`gen --speedup` paces a month of orders (0.05 a second, with their payments
and cancellations) into three minutes of wall time; `process` reads them from
a pipe, as from a live source, with its archiver checking every second
against an 8 MB threshold. Facts, minute KPIs and the dimensions they alone
reference leave the hot store with each archive (docs/lifecycle.md), so:

- after every archive run the hot store is at or under the threshold plus
  one batch: what arrives between two runs at the stream's rate;
- the processor's memory stays flat (no growth from one third of the month
  to the next);
- every event is stored exactly once over hot and cold;
- a 30-day range of the API answers from hot and cold, with every order.
"""
import json
import re
import subprocess
import threading
import time

from conftest import ENGINE_START, SANITIZER_MARKS
from harness import BIN, clean_env, cli, describe, request, start_server, stop_server

DAYS, RATE, SPEEDUP = 30, 0.05, 14400
ORDERS = int(DAYS * 86400 * RATE)
MAX_MB = 8
PEAK = 2.5  # the busiest hour's arrivals over the mean (docs/profile.md: hours, weekdays)
MB = 1_000_000
RUN_RE = re.compile(r"\[archive\] archive (\d{8}T\d{6})(\d{3})Z-\S+: .* hot store "
                    r"([0-9.]+) MB -> ([0-9.]+) MB")


def sample_rss(proc, out, stop):
    """VmRSS of proc in kB every 0.5 s until stop is set."""
    while not stop.is_set():
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        out.append(int(line.split()[1]))
        except OSError:
            return
        stop.wait(0.5)


def run_seconds(stamp, ms):
    t = time.strptime(stamp, "%Y%m%dT%H%M%S")
    return time.mktime(t) + int(ms) / 1000


def test_a_month_stays_under_the_threshold_exactly_and_in_flat_memory(tmp_path):
    data, stream = tmp_path / "data", tmp_path / "events.jsonl"
    t0 = time.monotonic()
    with open(stream, "wb") as keep:
        gen = subprocess.Popen([BIN, "gen", "--seed", "5", "--rate", str(RATE), "--speedup",
                                str(SPEEDUP), "--count", str(ORDERS), "--start", ENGINE_START],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=clean_env())
        proc = subprocess.Popen([BIN, "process", "--from", "-", "--data", str(data),
                                 "--hot-max-mb", str(MAX_MB), "--archive-every", "1"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env=clean_env())
        rss, stop = [], threading.Event()
        sampler = threading.Thread(target=sample_rss, args=(proc, rss, stop))
        sampler.start()
        err = []
        reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))
        reader.start()
        try:
            # The stream goes to process and to a file, for the counts below.
            for chunk in iter(lambda: gen.stdout.read(1 << 16), b""):
                keep.write(chunk)
                proc.stdin.write(chunk)
            proc.stdin.close()
            assert gen.wait(timeout=60) == 0
            assert proc.wait(timeout=600) == 0
        finally:
            for p in (gen, proc):
                if p.poll() is None:
                    p.kill()
            stop.set()
            sampler.join()
            reader.join()
    elapsed = time.monotonic() - t0
    log = err[0].decode(errors="replace")
    for mark in SANITIZER_MARKS:
        assert mark not in log, log[-3000:]

    # Every event once over hot and cold.
    events = stream.read_bytes().count(b"\n")
    counts = ("SELECT (SELECT count(*) FROM orders) + (SELECT count(*) FROM payments) + "
              "(SELECT count(*) FROM cancellations) AS n, (SELECT count(DISTINCT event_id) FROM "
              "orders) + (SELECT count(DISTINCT event_id) FROM payments) + (SELECT "
              "count(DISTINCT event_id) FROM cancellations) AS d, (SELECT count(*) FROM orders) "
              "AS o, (SELECT count(*) FROM cold_orders) AS co")
    p = cli("sql", "--data", data, "--format", "json", counts, timeout=300)
    assert p.returncode == 0, describe(p)
    got = json.loads(p.stdout)[0]
    assert got["n"] == got["d"] == events and got["o"] == ORDERS, got
    assert got["co"] > ORDERS // 2, "most of the month should be archived"

    # After every archive run: at most the threshold plus one batch, the
    # bytes that arrive between two runs: the stream's bytes a second in the
    # hot store's form at its busiest hours (the month's mean times PEAK: the
    # arrivals follow the profile's hours and weekdays), times the gap, and
    # 1 MB for the run's own rounding. Each line of the log is a run's step,
    # named by the time it began.
    runs = [(run_seconds(m.group(1), m.group(2)), float(m.group(3)), float(m.group(4)))
            for m in RUN_RE.finditer(log)]
    assert len(runs) >= 10, log[-3000:]
    p = cli("sql", "--data", data, "--format", "json",
            "SELECT (SELECT count(*) FROM main.orders_data) + (SELECT count(*) FROM "
            "main.payments_data) + (SELECT count(*) FROM main.cancellations_data) AS hot")
    hot_events = json.loads(p.stdout)[0]["hot"]
    per_event = runs[-1][2] * MB / max(hot_events, 1)
    per_second = events / elapsed * per_event * PEAK
    over = []
    # A run's size after it counts what arrived while it ran: until the next
    # run began at the latest.
    for (t, _, after), (t_next, _, _) in zip(runs, runs[1:]):
        batch = per_second * max(t_next - t, 1.0) + MB
        if after * MB > MAX_MB * MB + batch:
            over.append((after, round(batch / MB, 1)))
    assert not over, f"hot store above {MAX_MB} MB plus a batch after a run: {over[:5]}"

    # Flat memory: the last third of the month needs no more than the middle
    # third (with slack for the allocator's variation), the first third
    # being the start-up.
    third = len(rss) // 3
    assert third >= 10, f"too few RSS samples: {len(rss)}"
    middle, last = max(rss[third:2 * third]), max(rss[2 * third:])
    assert last <= middle * 1.25 + 16 * 1024, f"RSS grew: {middle} kB -> {last} kB"

    # The API's 30-day range, and the whole stream's, from hot and cold.
    server, port = start_server(data)
    try:
        status, _, body = request(port, "GET", "/api/totals?from=2026-11-01&to=2027-01-01")
        assert status == 200, body
        assert json.loads(body)["totals"]["orders"] == ORDERS
        status, _, body = request(port, "GET", "/api/totals?range=30d")
        assert status == 200, body
        month = json.loads(body)
        rng = month["range"]
        p = cli("sql", "--data", data, "--format", "json",
                f"SELECT count(*) AS n FROM orders WHERE ts >= '{rng['from']}' AND "
                f"ts < '{rng['to']}'")
        assert month["totals"]["orders"] == json.loads(p.stdout)[0]["n"] > ORDERS * 0.9
    finally:
        stop_server(server)

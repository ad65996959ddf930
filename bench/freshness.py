#!/usr/bin/env python3
"""bench/freshness.py: part (1) of bench/freshness, which runs it.

Starts `shopstream run` in real time with its web server on a free port,
follows GET /api/stream, and measures for every order created in the measured
window the time from its creation to the first `kpi` event whose
`totals.orders` counts it. Baseline, in the same run: the time to the first
commit that counts it, seen by a reader that asks the store itself every 2 ms
(PRAGMA data_version, then the sum of the overall minute rows).

Creation times come from the generator: it is deterministic for a seed,
start and rate, so `shopstream gen --max` with the same parameters writes the
same stream offline, with each event's simulated time ts. In real time the
generator thread writes an event when its monotonic clock reaches
mono0 + (ts - start) (src/gen/pump.c: pace), mono0 being read as the thread
starts; `run` logs "pipeline running" right after starting that thread, so an
event's wall-clock creation time is (arrival of that line) + (ts - start).
The stream starts at a fixed simulated time, so the run is the same every
time, and lasts less than an hour, so that totals.orders (the last hour up to
the newest minute) counts every order so far; orders are counted in stream
order, so the k-th order has taken effect once totals.orders >= k.

Usage: bench/freshness.py BIN EVENTS_PER_S SECONDS WARMUP_SECONDS
"""
import http.client
import json
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

START = "2026-11-02T12:00:00Z"  # a Monday noon: a steady part of the daily curve
START_S = 1793620800  # START in Unix seconds
POLL_S = 0.002  # how often the baseline reader asks the store for a commit
TAIL_S = 3.0  # the run goes on this long after the window, so its orders arrive


def reference(binary, rate, until_s):
    """The offsets from START (s) of the orders and of every event, in stream
    order, up to until_s, as `gen --max` writes them."""
    gen = subprocess.Popen(
        [binary, "gen", "--seed", "1", "--rate", repr(rate), "--start", START, "--max"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    orders, events = [], []
    for line in gen.stdout:
        i = line.index(b'"ts":"') + 6
        # Every event of the run falls on START's day: hh:mm:ss.mmm is enough.
        h, m, s = int(line[i + 11:i + 13]), int(line[i + 14:i + 16]), float(line[i + 17:i + 23])
        t = h * 3600 + m * 60 + s - 12 * 3600
        if t >= until_s:
            break
        events.append(t)
        if line.startswith(b'{"type":"order"'):
            orders.append(t)
    gen.kill()
    gen.wait()
    return orders, events


def in_window(xs, lo, hi):
    return sum(1 for x in xs if lo <= x < hi)


def latencies(orders, seen, t0, lo, hi):
    """For each order created in [lo, hi) s after t0, the time from its
    creation to the first observation (wall time, orders counted) in seen that
    counts it. Returns the sorted latencies and the number never counted."""
    lat, missing, j = [], 0, 0
    for k, off in enumerate(orders, start=1):
        if off < lo:
            continue
        if off >= hi:
            break
        while j < len(seen) and seen[j][1] < k:
            j += 1
        if j == len(seen):
            missing += 1
        else:
            lat.append(seen[j][0] - (t0 + off))
    lat.sort()
    return lat, missing


def pct(xs, p):
    """Nearest-rank percentile of a sorted list."""
    return xs[max(0, min(len(xs) - 1, -(-p * len(xs) // 100) - 1))]


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    body = c.getresponse().read().decode()
    c.close()
    return float(re.search(r"^%s (\S+)$" % re.escape(name), body, re.M).group(1))


def measure(binary, rate, seconds, warmup):
    data = tempfile.mkdtemp(prefix="ss-freshness-")
    t_launch = time.time()
    proc = subprocess.Popen(
        [binary, "run", "--data", data, "--port", "0", "--seed", "1", "--rate", repr(rate),
         "--start", START, "--archive-every", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    log = {}
    started = threading.Event()

    def read_log():
        for raw in proc.stderr:
            line = raw.decode(errors="replace")
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                log["port"] = int(m.group(1))
            elif "pipeline running" in line:
                log["t0"] = time.time()
                started.set()
            elif "error" in line or "warning" in line:
                sys.stderr.write(line)

    threading.Thread(target=read_log, daemon=True).start()
    if not started.wait(30):
        proc.kill()
        sys.exit("bench/freshness: shopstream run did not start")
    port, t0 = log["port"], log["t0"]
    done = threading.Event()
    sse, store = [], []  # (wall time, orders counted)

    def follow_stream():
        c = http.client.HTTPConnection("127.0.0.1", port)
        c.request("GET", "/api/stream")
        r = c.getresponse()
        while not done.is_set():
            line = r.readline()
            if not line:
                return
            if line.startswith(b"data: "):
                now = time.time()
                totals = json.loads(line[6:]).get("totals") or {}
                sse.append((now, int(totals.get("orders") or 0)))

    def watch_store():
        db = sqlite3.connect("file:%s/hot.db?mode=ro" % data, uri=True)
        last = None
        while not done.is_set():
            v = db.execute("PRAGMA data_version").fetchone()[0]
            if v != last:
                last = v
                n = db.execute("SELECT COALESCE(SUM(orders), 0) FROM kpi_minute_data "
                               "WHERE dimension = 'overall'").fetchone()[0]
                store.append((time.time(), n))
            time.sleep(POLL_S)
        db.close()

    threading.Thread(target=follow_stream, daemon=True).start()
    threading.Thread(target=watch_store, daemon=True).start()
    time.sleep(max(0.0, t0 + warmup - time.time()))
    e0, w0 = metric(port, "shopstream_events_in_total"), time.time()
    time.sleep(max(0.0, t0 + warmup + seconds - time.time()))
    e1, w1 = metric(port, "shopstream_events_in_total"), time.time()
    time.sleep(TAIL_S)
    done.set()
    proc.send_signal(signal.SIGINT)
    proc.wait(60)
    shutil.rmtree(data, ignore_errors=True)
    return {"t0": t0, "start_gap": t0 - t_launch, "run_eps": (e1 - e0) / (w1 - w0),
            "sse": sse, "store": store}


def main():
    binary, eps, seconds, warmup = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), \
        float(sys.argv[4])
    lo, hi = warmup, warmup + seconds
    # --rate is the weekly mean of orders/s and an order brings about two
    # events in the first minutes: find the rate that gives eps events/s in
    # the window from a probe of the same stream, which scales with the rate.
    probe = eps / 4
    _, ev = reference(binary, probe, hi)
    rate = round(probe * eps * seconds / in_window(ev, lo, hi), 3)

    m = measure(binary, rate, seconds, warmup)
    orders, events = reference(binary, rate, hi + TAIL_S + 5)
    s_lat, s_miss = latencies(orders, m["sse"], m["t0"], lo, hi)
    d_lat, d_miss = latencies(orders, m["store"], m["t0"], lo, hi)
    commits = [b[0] - a[0] for a, b in zip(m["store"], m["store"][1:])
               if lo <= a[0] - m["t0"] < hi]
    pushes = in_window([t - m["t0"] for t, _ in m["sse"]], lo, hi)
    n_or = in_window(orders, lo, hi)

    print("(1) freshness: `shopstream run --rate %g --start %s` in real time, %d s measured "
          "after %d s" % (rate, START, seconds, warmup))
    print("  load:     %.0f events/s through the engine (its counter), %.0f events/s and "
          "%.0f orders/s in the stream" % (m["run_eps"], in_window(events, lo, hi) / seconds,
                                           n_or / seconds))
    print("  SSE:      creation to arrival at /api/stream: p50 %.3f s, p99 %.3f s, max %.3f s "
          "(%d orders, %d not counted); target p99 <= 1 s: %s"
          % (pct(s_lat, 50), pct(s_lat, 99), s_lat[-1], len(s_lat), s_miss,
             "met" if pct(s_lat, 99) <= 1.0 else "NOT met"))
    print("  baseline: creation to commit, seen by a reader of the store: p50 %.3f s, "
          "p99 %.3f s, max %.3f s (%d orders, %d not counted)"
          % (pct(d_lat, 50), pct(d_lat, 99), d_lat[-1], len(d_lat), d_miss))
    print("  ratio:    SSE / store: p50 %.2f, p99 %.2f; a commit every %.3f s (median), "
          "%.1f SSE events/s; stream start %.0f ms after launch"
          % (pct(s_lat, 50) / pct(d_lat, 50), pct(s_lat, 99) / pct(d_lat, 99),
             statistics.median(commits), pushes / seconds, m["start_gap"] * 1000))


if __name__ == "__main__":
    main()

"""The customers dimension: a customer's row is that of their earliest order,
by `ts`, whatever the order in which the orders arrive and however they are
split over transactions and processes; orders at the same millisecond are told
apart by the row's values (segment, city, country), the smallest winning.

Orders of one customer arrive out of order within a process and across
processes (a restart reads the store's newest order time), in every split of a
random stream into consecutive parts; each store must equal the reference
model and every other split.

The writer remembers the customers it has stored and leaves out later orders
of theirs: one process that commits the stream in many transactions gives the
same rows, and a customer whose row an archive run (another process) took to
cold storage is stored again in the hot store when they order again.
"""

import random
import signal
import sqlite3
import subprocess
import time

from conftest import (ENGINE_START, connect_ro, gen_args, json_line, order_fields, process, run,
                      ts_ms)
from conftest import sql_json as sql
from harness import BIN, clean_env, cli, describe

T0 = ts_ms("2026-11-02T10:00:00.000Z")
PLACES = [("Berlin", "Germany"), ("Hamburg", "Germany"), ("Lyon", "France"), ("Paris", "France")]
SEGMENTS = ["business", "loyal", "regular", "vip"]
# Every order stays on time: the stream spans minutes, the lateness a day.
LATENESS = ["--lateness", 86_400_000]


def order(n, ts, customer, segment, place):
    f = order_fields(n, ts, city=place[0], country=place[1])
    f["customer_id"] = f"c-0123456789ab-{customer:010d}"
    f["customer_segment"] = segment
    return f


def stream(seed, n=400, customers=25):
    """Orders in an arrival order that is not their time order: each order's
    time is its arrival slot plus up to three minutes back or forth, and some
    orders of a customer share a millisecond."""
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        ts = T0 + i * 500 + rng.randrange(-180_000, 180_000)
        if out and rng.random() < 0.1:
            ts = ts_ms(out[rng.randrange(len(out))]["ts"])  # a tie with an earlier order
        out.append(order(i, ts, rng.randrange(customers), rng.choice(SEGMENTS), rng.choice(PLACES)))
    return out


def expected(orders):
    best = {}
    for o in orders:
        row = (o["customer_id"], o["customer_segment"], o["city"], o["country"], o["ts"])
        key = (o["ts"], o["customer_segment"], o["city"], o["country"])
        cur = best.get(row[0])
        if cur is None or key < (cur[4], cur[1], cur[2], cur[3]):
            best[row[0]] = row
    return sorted(best.values())


def customers(data_dir):
    with connect_ro(data_dir) as db:
        return db.execute("SELECT customer_id, customer_segment, city, country, first_seen "
                          "FROM customers ORDER BY customer_id").fetchall()


def run_parts(tmp_path, name, orders, cuts):
    """Processes the orders in consecutive parts, one process each (a file each,
    so that every part is a source of its own); returns the store's customers."""
    data = tmp_path / name
    bounds = [0, *cuts, len(orders)]
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        part = tmp_path / f"{name}-{k}.jsonl"
        part.write_bytes(b"".join(json_line(o) + b"\n" for o in orders[a:b]))
        process(data, part, *LATENESS)
    return customers(data)


def test_earliest_order_wins_whatever_the_arrival_order(tmp_path):
    orders = stream(1)
    want = expected(orders)
    assert len(want) == 25
    # The stream has what the rule is about: customers whose earliest order
    # arrives after a later one, and customers with orders at the same time.
    firsts = {}
    late_first = set()
    for o in orders:
        c = o["customer_id"]
        if c in firsts and o["ts"] < firsts[c]:
            late_first.add(c)
        firsts[c] = min(firsts.get(c, o["ts"]), o["ts"])
    assert len(late_first) >= 10
    times = {}
    for o in orders:
        times.setdefault((o["customer_id"], o["ts"]), set()).add((o["city"], o["customer_segment"]))
    assert any(len(v) > 1 for v in times.values())

    assert run_parts(tmp_path, "one", orders, []) == want
    rng = random.Random(2)
    for k in range(4):
        cuts = sorted(rng.sample(range(1, len(orders)), 1 + k * 2))
        assert run_parts(tmp_path, f"split{k}", orders, cuts) == want, cuts


def test_ties_at_one_millisecond_do_not_depend_on_arrival(tmp_path):
    a = order(1, T0, 7, "vip", ("Paris", "France"))
    b = order(2, T0, 7, "loyal", ("Paris", "France"))
    c = order(3, T0, 7, "loyal", ("Lyon", "France"))
    later = order(4, T0 + 60_000, 7, "business", ("Berlin", "Germany"))
    want = [("c-0123456789ab-0000000007", "loyal", "Lyon", "France", a["ts"])]
    for name, seq, cuts in [("abc", [later, a, b, c], []), ("cba", [later, c, b, a], []),
                            ("b-ca", [later, b, c, a], [2]), ("a-c-b", [later, a, c, b], [1, 2, 3])]:
        assert run_parts(tmp_path, name, seq, cuts) == want, name


def follow(feed, data, *extra):
    """`process --follow` of feed into data, committing every 10 ms."""
    return subprocess.Popen([BIN, "process", "--follow", "--from", str(feed), "--data", str(data),
                             "--archive-every", "0", "--commit-ms", "10", *map(str, extra)],
                            stderr=subprocess.PIPE, env=clean_env())


def append_and_wait(feed, data, chunk, proc):
    """Appends chunk to feed and waits until the store's position is its end."""
    with open(feed, "ab") as fh:
        fh.write(chunk)
    deadline = time.time() + 60
    while True:
        assert proc.poll() is None, proc.stderr.read().decode(errors="replace")
        pos = None
        if (data / "hot.db").exists():
            try:
                with connect_ro(data) as db:
                    pos = db.execute("SELECT max(position) FROM ingest_positions").fetchone()[0]
            except sqlite3.OperationalError:  # the store is being set up
                pass
            if pos == feed.stat().st_size:
                return
        assert time.time() < deadline, f"stuck at {pos} of {feed.stat().st_size}"
        time.sleep(0.05)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, proc.stderr.read().decode(errors="replace")


def test_earliest_order_wins_across_the_transactions_of_one_process(tmp_path):
    """The stream of the tests above in 20 parts, each committed before the
    next is written: customers known from an earlier transaction whose
    earlier order comes later are stored again; later orders are not."""
    orders = stream(3)
    feed, data = tmp_path / "feed.jsonl", tmp_path / "data"
    feed.write_bytes(b"")
    proc = follow(feed, data, *LATENESS)
    try:
        for k in range(20):
            part = orders[k * len(orders) // 20:(k + 1) * len(orders) // 20]
            append_and_wait(feed, data, b"".join(json_line(o) + b"\n" for o in part), proc)
    finally:
        stop(proc)
    assert customers(data) == expected(orders)


def test_customers_archived_by_another_process_are_stored_again(tmp_path):
    """One `process --follow` reads half a stream; `archive --once` (another
    process) moves most of it to cold storage, customers with it; the other
    half, in which those customers order again, follows. Every customer of a
    hot order is in the hot store's own table, and the dimensions read as a
    never-archived run's."""
    src = tmp_path / "events.jsonl"
    run(*gen_args(5, 30000, start=ENGINE_START), "--out", src)
    lines = src.read_bytes().splitlines(keepends=True)
    ref, data, feed = tmp_path / "ref", tmp_path / "data", tmp_path / "feed.jsonl"
    run("process", "--from", src, "--data", ref, "--archive-every", "0")
    feed.write_bytes(b"")
    proc = follow(feed, data)
    try:
        append_and_wait(feed, data, b"".join(lines[:len(lines) // 2]), proc)
        p = cli("archive", "--once", "--data", data, "--hot-max-mb", 1)
        assert p.returncode == 0, describe(p)
        evicted = sql(data, "SELECT count(*) AS n FROM customers WHERE customer_id NOT IN "
                            "(SELECT customer_id FROM main.customers)")[0]["n"]
        assert evicted > 0
        append_and_wait(feed, data, b"".join(lines[len(lines) // 2:]), proc)
    finally:
        stop(proc)
    missing = sql(data, "SELECT count(DISTINCT customer_id) AS n FROM main.orders WHERE "
                        "customer_id NOT IN (SELECT customer_id FROM main.customers)")[0]["n"]
    assert missing == 0
    back = sql(data, "SELECT count(*) AS n FROM main.customers c JOIN cold_customers a "
                     "USING (customer_id)")[0]["n"]
    assert back > 0, "no archived customer ordered again"
    query = "SELECT * FROM customers ORDER BY customer_id"
    assert sql(data, query) == sql(ref, query)

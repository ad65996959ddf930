"""The customers dimension: a customer's row is that of their earliest order,
by `ts`, whatever the order in which the orders arrive and however they are
split over transactions and processes; orders at the same millisecond are told
apart by the row's values (segment, city, country), the smallest winning.

Orders of one customer arrive out of order within a process and across
processes (a restart reads the store's newest order time), in every split of a
random stream into consecutive parts; each store must equal the reference
model and every other split.
"""

import random

from conftest import connect_ro, json_line, order_fields, process, ts_ms

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

"""Late and out-of-order events: hand-written orders, payments and cancellations
(money consistent to the cent) with chosen event times.

The rules (docs and src/engine/engine.h): windows are one minute of event time;
watermark = the largest event time seen so far minus --lateness (120 s by
default); an event is late when its window's end (minute start + 60 s) is at or
before the watermark as it stood before the event; a late event goes to
late_events with that watermark, once per event_id, unless the store already
holds the event (then it is a duplicate); late events are in no fact table and
no KPI; a window is final once the watermark reaches its end.

Besides explicit checks of chosen cases, every scenario is compared in full
(facts, attribution, late_events, KPI rows with final flags, engine_state)
with a small reference model of these rules, for several --lateness values, in
one process fed line by line (final flags checked after every event), and
split over two or more processes at every possible point.
"""

import os
import random
import subprocess
import time
from collections import defaultdict

import pytest

from conftest import (BIN, DERIVED_TABLES, assert_same_store, cancellation_fields, connect_ro,
                      engine_state, iso, json_line, order_fields, order_total_cents,
                      payment_fields, positions, process, ts_ms)

T0 = ts_ms("2026-11-02T10:00:00.000Z")
S = 1000
M = 60_000
DEFAULT_LATENESS = 120_000
DIMS = ("overall", "city", "country", "category", "payment_method")


def minute(ms):
    return ms - ms % M


class Model:
    """The engine's rules in a few lines of Python, for comparison."""

    def __init__(self, lateness=DEFAULT_LATENESS):
        self.lateness = lateness
        self.watermark = None
        self.max_ts = None
        self.facts = {}       # event_id -> (type, ts, dims)
        self.orders = {}      # order_id -> (city, country, category, method) of stored orders
        self.late = {}        # event_id -> (type, ts, watermark)
        self.kpi = defaultdict(lambda: [0] * 8)
        self.n = dict(events_in=0, stored=0, duplicates=0, rejected=0, late=0)
        self.judged = []      # per event: "stored", "late" or "duplicate"

    def feed(self, ev):
        self.n["events_in"] += 1
        eid, t, ts = ev["event_id"], ev["type"], ts_ms(ev["ts"])
        if self.watermark is not None and minute(ts) + M <= self.watermark:
            if eid in self.facts or eid in self.late:
                self.n["duplicates"] += 1
                self.judged.append("duplicate")
            else:
                self.late[eid] = (t, ts, self.watermark)
                self.n["late"] += 1
                self.judged.append("late")
            return
        if eid in self.facts:
            self.n["duplicates"] += 1
            self.judged.append("duplicate")
        else:
            self.n["stored"] += 1
            self.judged.append("stored")
            if t == "order":
                o = (ev["city"], ev["country"], ev["category"], ev["payment_method"])
                self.orders.setdefault(ev["order_id"], o)
                dims = o
                delta = {0: 1, 1: ev["quantity"], 2: order_total_cents(ev)}
            else:
                o = self.orders.get(ev["order_id"], ("unknown",) * 4)
                if t == "payment":
                    dims = o[:3] + (ev["payment_method"],)
                    ok = ev["status"] == "success"
                    amount = int(ev["amount"].text.replace(".", ""))
                    delta = {3: amount if ok else 0, 4: 1, 5: 0 if ok else 1}
                else:
                    dims = o
                    delta = {6: 1, 7: int(ev["refund"].text.replace(".", ""))}
            self.facts[eid] = (t, ts, dims)
            for d, v in zip(DIMS, ("all",) + dims):
                row = self.kpi[(iso(minute(ts)), d, v)]
                for i, x in delta.items():
                    row[i] += x
        if self.max_ts is None or ts > self.max_ts:
            self.max_ts = ts
            wm = ts - self.lateness
            self.watermark = wm if self.watermark is None else max(self.watermark, wm)

    def final(self, minute_text):
        return int(self.watermark is not None and ts_ms(minute_text) + M <= self.watermark)

    def kpi_rows(self):
        return {k: tuple(v) + (self.final(k[0]),) for k, v in self.kpi.items()}


def store_kpis(data):
    with connect_ro(data) as db:
        return {r[:3]: tuple(r[3:]) for r in db.execute(
            "SELECT minute_start, dimension, dimension_value, orders, units, gross_revenue_cents,"
            " paid_revenue_cents, payment_attempts, failed_payments, cancellations,"
            " cancelled_revenue_cents, final FROM kpi_minute_data WHERE shard = 0")}


def store_facts(data):
    out = {}
    with connect_ro(data) as db:
        for t, table, method in (("order", "orders_data", "payment_method"),
                                 ("payment", "payments_data", "payment_method"),
                                 ("cancellation", "cancellations_data", "payment_method")):
            for eid, ts, city, country, category, pm in db.execute(
                    f"SELECT event_id, ts, city, country, category, {method} FROM {table}"):
                out[eid] = (t, ts_ms(ts), (city, country, category, pm))
    return out


def store_late(data):
    with connect_ro(data) as db:
        return {r[0]: (r[1], ts_ms(r[2]), ts_ms(r[3])) for r in db.execute(
            "SELECT event_id, type, ts, watermark FROM late_events")}


def assert_matches_model(data, model, where=""):
    facts = store_facts(data)
    assert facts == model.facts, f"{where}facts differ:\nstore {sorted(facts.items())}\n" \
        f"model {sorted(model.facts.items())}"
    late = store_late(data)
    assert late == model.late, f"{where}late_events differ: store {late}, model {model.late}"
    kpis, want = store_kpis(data), model.kpi_rows()
    if kpis != want:
        keys = sorted(set(kpis) | set(want))
        diff = [f"{k}: store {kpis.get(k)}, model {want.get(k)}" for k in keys
                if kpis.get(k) != want.get(k)]
        raise AssertionError(f"{where}KPI rows differ (..., final):\n" + "\n".join(diff[:10]))
    st = engine_state(data)
    want_st = dict(model.n, watermark=model.watermark, max_ts=model.max_ts)
    assert st == want_st, f"{where}engine_state {st}, model {want_st}"


def lines(events):
    return b"".join(json_line(e) + b"\n" for e in events)


def run_model(events, lateness=DEFAULT_LATENESS):
    m = Model(lateness)
    for e in events:
        m.feed(e)
    return m


# ---- scenarios ----

def order(n, ts, **kw):
    return order_fields(n, ts, **kw)


def pay(o, ts, **kw):
    n = int(o["order_id"].rsplit("-", 1)[1])
    return payment_fields(n, ts, order_total_cents(o), **kw)


def cancel(o, ts, **kw):
    n = int(o["order_id"].rsplit("-", 1)[1])
    return cancellation_fields(n, ts, order_total_cents(o), **kw)


def mixed_scenario():
    """Out-of-order, late, duplicate and boundary events of all three types."""
    o1 = order(1, T0 + 61 * S, city="Berlin", country="Germany", category="Electronics",
               quantity=3, unit_price=1250)
    o2 = order(2, T0 + 5 * S, city="Paris", country="France", category="Fashion",
               payment_method="paypal", vat_percent=20, discount=100)
    o3 = order(3, T0 + 125 * S, city="Madrid", country="Spain", category="Books",
               unit_price=899, quantity=1, vat_percent=21)
    o4 = order(4, T0 + 30 * S, city="Berlin", country="Germany", category="Books")
    o5 = order(5, T0 + 250 * S, city="Rome", country="Italy", category="Toys",
               payment_method="cash_on_delivery", vat_percent=22)
    o6 = order(6, T0 + 59 * S + 999, city="Paris", country="France")     # late
    o7 = order(7, T0 + 121 * S, city="Rome", country="Italy")             # on time
    o8 = order(8, T0 + 299 * S + 999, city="Madrid", country="Spain")     # wm 180.999 s
    o9 = order(9, T0 + 179 * S, city="Berlin", country="Germany")         # on time: end 180 s
    o10 = order(10, T0 + 300 * S, city="Lyon", country="France")          # wm = 180 s
    o11 = order(11, T0 + 150 * S, city="Lyon", country="France")          # late: end == wm
    o12 = order(12, T0 + 400 * S, city="Berlin", country="Germany")
    return [
        o1, o2, o3, o4,
        pay(o2, T0 + 62 * S, payment_method="card"),                      # own method counts
        pay(o1, T0 + 70 * S, success=False, failure_reason="timeout"),
        pay(o1, T0 + 71 * S, attempt=2, payment_method="paypal"),
        o5,                                                               # wm -> 130 s
        o6,                                                               # late (end 60 s)
        o6,                                                               # the same late again
        pay(o4, T0 + 119 * S + 999),                                      # late (end 120 s)
        cancel(o2, T0 + 59 * S),                                          # late cancellation
        o7,
        o4,                                                               # stored: a duplicate
        pay(o3, T0 + 126 * S),
        cancel(o3, T0 + 127 * S, reason="customer_request"),
        o8,                                                               # wm -> 179.999 s
        o9,                                                               # on time
        o10,                                                              # wm -> 180 s
        o11,                                                              # late at the boundary
        pay(o9, T0 + 179 * S + 500),                                      # late: window closed
        pay(o7, T0 + 181 * S, payment_method="card"),                     # on time
        pay(o10, T0 + 301 * S),
        cancel(o10, T0 + 302 * S, reason="out_of_stock"),
        pay(order(20, 0), T0 + 303 * S),                                  # order never seen
        o12,                                                              # wm -> 280 s
        cancel(o5, T0 + 255 * S),                                         # on time (end 300)
        o3,                                                               # duplicate, late path
    ]


@pytest.fixture(scope="module", autouse=True)
def binary():
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")


def test_out_of_order_within_lateness_lands_in_its_own_window(tmp_path):
    o1 = order(1, T0 + 61 * S, city="Berlin", quantity=3, unit_price=1250)   # 10:01
    o2 = order(2, T0 + 5 * S, city="Paris", country="France")                 # 10:00
    o3 = order(3, T0 + 125 * S, city="Madrid", country="Spain")               # 10:02
    o4 = order(4, T0 + 30 * S, city="Berlin")                                 # 10:00
    o5 = order(5, T0 + 119 * S + 999, city="Paris", country="France")         # 10:01
    p2 = pay(o2, T0 + 62 * S, payment_method="paypal")                        # 10:01
    p9 = pay(order(9, 0), T0 + 10 * S, payment_method="card")                 # 10:00, before order 9
    o9 = order(9, T0 + 120 * S, city="Rome", country="Italy")                 # 10:02
    events = [o1, o2, o3, o4, o5, p2, p9, o9]
    process(tmp_path, "-", input=lines(events))
    kpis = store_kpis(tmp_path)

    def total(*os_):
        return sum(order_total_cents(o) for o in os_)

    m0, m1, m2 = (iso(T0 + k * M) for k in range(3))
    assert kpis[(m0, "overall", "all")][:5] == (2, 4, total(o2, o4), order_total_cents(o9), 1)
    assert kpis[(m1, "overall", "all")][:5] == (2, 5, total(o1, o5), order_total_cents(o2), 1)
    assert kpis[(m2, "overall", "all")][:3] == (2, 4, total(o3, o9))
    assert kpis[(m0, "city", "Berlin")][:3] == (1, 2, total(o4))
    assert kpis[(m1, "city", "Berlin")][:3] == (1, 3, total(o1))
    # A payment counts in its own minute under its order's city and its own method.
    assert kpis[(m1, "city", "Paris")][:5] == (1, 2, total(o5), order_total_cents(o2), 1)
    assert kpis[(m1, "payment_method", "paypal")][3:5] == (order_total_cents(o2), 1)
    # A payment processed before its order was seen is attributed to 'unknown'.
    assert kpis[(m0, "city", "unknown")][3:5] == (order_total_cents(o9), 1)
    assert kpis[(m0, "payment_method", "card")][3:5] == (order_total_cents(o9), 1)
    st = engine_state(tmp_path)
    assert st["stored"] == len(events) and st["late"] == 0
    assert st["watermark"] == T0 + 125 * S - DEFAULT_LATENESS
    # No window is final yet: the watermark (5 s) is before the first end (60 s).
    assert all(v[-1] == 0 for v in kpis.values())
    assert_matches_model(tmp_path, run_model(events))


def test_event_behind_the_watermark_is_late(tmp_path):
    o1 = order(1, T0 + 30 * S)
    o2 = order(2, T0 + 250 * S)                                   # wm = 130 s
    late_order = order(3, T0 + 59 * S + 999, city="Paris", country="France")
    late_pay = pay(o1, T0 + 119 * S + 999)                        # window end 120 s <= 130 s
    late_cancel = cancel(o1, T0 + 100 * S)
    on_time = order(4, T0 + 120 * S)                              # window end 180 s > 130 s
    events = [o1, o2, late_order, late_pay, late_cancel, on_time]
    process(tmp_path, "-", input=lines(events))
    with connect_ro(tmp_path) as db:
        rows = db.execute("SELECT event_id, type, ts, watermark, raw FROM late_events"
                          " ORDER BY ts").fetchall()
        stored = {r[0] for t in ("orders", "payments", "cancellations")
                  for r in db.execute(f"SELECT event_id FROM {t}_data")}
    wm = iso(T0 + 130 * S)
    assert rows == [
        (late_order["event_id"], "order", late_order["ts"], wm, json_line(late_order).decode()),
        (late_cancel["event_id"], "cancellation", late_cancel["ts"], wm,
         json_line(late_cancel).decode()),
        (late_pay["event_id"], "payment", late_pay["ts"], wm, json_line(late_pay).decode()),
    ]
    assert stored == {o1["event_id"], o2["event_id"], on_time["event_id"]}
    st = engine_state(tmp_path)
    assert (st["late"], st["stored"], st["duplicates"], st["events_in"]) == (3, 3, 0, 6)
    kpis = store_kpis(tmp_path)
    # Late events are in no KPI: minute 0 still holds o1 alone, no payment, no cancellation.
    assert kpis[(iso(T0), "overall", "all")][:8] == (1, 2, order_total_cents(o1), 0, 0, 0, 0, 0)
    assert not any(k[2] == "Paris" for k in kpis)
    assert_matches_model(tmp_path, run_model(events))


def test_watermark_boundary(tmp_path):
    """An event is late exactly when its window's end is at or before the
    watermark: 1 ms makes the difference."""
    a = order(1, T0 + 299 * S + 999)    # wm = 179.999 s
    b = order(2, T0 + 179 * S + 999)    # window [120 s, 180 s): end 180 s > wm: on time
    c = order(3, T0 + 300 * S)          # wm = 180 s
    d = order(4, T0 + 120 * S)          # same window: end 180 s <= wm: late
    events = [a, b, c, d]
    process(tmp_path, "-", input=lines(events))
    assert set(store_late(tmp_path)) == {d["event_id"]}
    assert store_late(tmp_path)[d["event_id"]][2] == T0 + 180 * S
    assert b["event_id"] in store_facts(tmp_path)
    assert store_kpis(tmp_path)[(iso(T0 + 2 * M), "overall", "all")][0] == 1
    assert_matches_model(tmp_path, run_model(events))


def test_same_late_event_twice_is_recorded_once(tmp_path):
    o1 = order(1, T0 + 10 * S)
    o2 = order(2, T0 + 600 * S)
    late = order(3, T0 + 20 * S)
    events = [o1, o2, late, late, o1, late]   # o1 again: stored before, so a duplicate
    process(tmp_path, "-", input=lines(events))
    assert list(store_late(tmp_path)) == [late["event_id"]]
    st = engine_state(tmp_path)
    assert (st["late"], st["duplicates"], st["stored"]) == (1, 3, 2)
    # And once more in another process: still one row.
    process(tmp_path, "-", input=lines([late]))
    assert list(store_late(tmp_path)) == [late["event_id"]]
    assert engine_state(tmp_path)["late"] == 1
    assert_matches_model(tmp_path, run_model(events + [late]))


@pytest.mark.parametrize("lateness", [0, 1, 30_000, 60_000, 120_000, 180_000, 600_000])
def test_lateness_option_changes_the_outcome(tmp_path, lateness):
    events = mixed_scenario()
    process(tmp_path, "-", "--lateness", lateness, input=lines(events))
    model = run_model(events, lateness)
    assert_matches_model(tmp_path, model, f"--lateness {lateness}: ")
    # Less lateness closes windows sooner: more events are late (0 and the
    # default are worked out by hand in test_scenario_judgements...).
    expected_late = {0: 16, 1: 16, 30_000: 12, 60_000: 12, 120_000: 5, 180_000: 2, 600_000: 0}
    assert model.n["late"] == expected_late[lateness], model.judged


def test_scenario_judgements_at_default_and_zero_lateness(tmp_path):
    """The mixed scenario, event by event, as the rules say when worked out by
    hand (so that the model is checked too, not only the engine against it)."""
    events = mixed_scenario()
    s, lt, dup = "stored", "late", "duplicate"
    model = run_model(events)
    assert model.judged == [s, s, s, s, s, s, s, s, lt, dup, lt, lt, s, dup, s, s, s, s, s, lt,
                            lt, s, s, s, s, s, s, dup]
    assert model.watermark == T0 + 400 * S - DEFAULT_LATENESS
    process(tmp_path / "default", "-", input=lines(events))
    assert_matches_model(tmp_path / "default", model)
    zero = run_model(events, 0)
    assert zero.judged == [s, lt, s, lt, lt, lt, lt, s, lt, dup, lt, lt, lt, dup, lt, lt, s, lt,
                           s, lt, lt, lt, s, s, s, s, lt, dup]
    process(tmp_path / "zero", "-", "--lateness", 0, input=lines(events))
    assert_matches_model(tmp_path / "zero", zero)


def wait_for(data, count, proc, timeout=20):
    """Waits until the engine has committed count records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the engine exited early: {proc.stderr.read()!r}"
        try:
            if engine_state(data).get("events_in", 0) >= count:
                return
        except Exception:  # the store is being created
            pass
        time.sleep(0.02)
    raise AssertionError(f"the engine did not commit {count} records within {timeout} s")


def test_window_becomes_final_exactly_when_the_watermark_reaches_its_end(tmp_path):
    """One process fed line by line through a pipe: after every event, the final
    flags of every window equal the model's (the engine commits when idle)."""
    events = [
        order(1, T0 + 10 * S),                  # window 10:00, end 10:01
        order(2, T0 + 70 * S),                  # window 10:01
        order(3, T0 + 180 * S - 1),             # wm = 10:00:59.999: 10:00 still open
        pay(order(1, T0 + 10 * S), T0 + 59 * S),  # on time in 10:00
        order(4, T0 + 180 * S),                 # wm = 10:01:00.000: 10:00 final now
        order(5, T0 + 240 * S - 1),             # wm = 10:01:59.999: 10:01 open
        order(6, T0 + 240 * S),                 # wm = 10:02:00: 10:01 final
        order(7, T0 + 200 * S),                 # out of order, on time: no change
        order(8, T0 + 1000 * S),                # wm jumps: everything before 10:14:40 final
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    proc = subprocess.Popen([BIN, "process", "--from", "-", "--data", str(tmp_path),
                             "--log-level", "error"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    model = Model()
    try:
        for k, ev in enumerate(events, 1):
            proc.stdin.write(json_line(ev) + b"\n")
            proc.stdin.flush()
            model.feed(ev)
            wait_for(tmp_path, k, proc)
            finals = {key[0]: v[-1] for key, v in store_kpis(tmp_path).items()}
            want = {key[0]: v[-1] for key, v in model.kpi_rows().items()}
            assert finals == want, f"after event {k} (watermark {iso(model.watermark)})"
            assert engine_state(tmp_path)["watermark"] == model.watermark
            if k == 3:
                assert finals[iso(T0)] == 0
            if k == 5:
                assert finals[iso(T0)] == 1 and finals[iso(T0 + M)] == 0
            if k == 7:
                assert finals[iso(T0 + M)] == 1
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert_matches_model(tmp_path, model)


def test_restart_anywhere_judges_every_event_as_one_run(tmp_path):
    """The mixed scenario split over two processes at every point, and over one
    process per event: the store equals the uninterrupted run's."""
    events = mixed_scenario()
    one = tmp_path / "one"
    process(one, "-", input=lines(events))
    assert_matches_model(one, run_model(events))
    # Positions of stdin runs count from each run's start: compare them apart.
    ignore = ("received_at", "shard_state.owner", "ingest_positions.position")
    for k in range(len(events) + 1):
        split = tmp_path / f"split{k}"
        process(split, "-", input=lines(events[:k]))
        process(split, "-", input=lines(events[k:]))
        assert_same_store(one, split, exclude=ignore)
    each = tmp_path / "each"
    for ev in events:
        process(each, "-", input=lines([ev]))
    assert_same_store(one, each, exclude=ignore)


def test_restart_with_files_and_random_splits(tmp_path):
    """The same through named files (each resumes at its own position) at seeded
    random split points, three parts each."""
    events = mixed_scenario()
    one = tmp_path / "one"
    process(one, "-", input=lines(events))
    rng = random.Random(7)
    for trial in range(5):
        cut = sorted(rng.sample(range(1, len(events)), 2))
        parts = [events[:cut[0]], events[cut[0]:cut[1]], events[cut[1]:]]
        data = tmp_path / f"trial{trial}"
        for i, part in enumerate(parts):
            path = tmp_path / f"trial{trial}-part{i}.jsonl"
            path.write_bytes(lines(part))
            process(data, path)
            process(data, path)  # a restart on the same file reads nothing more
        assert_same_store(one, data, tables=DERIVED_TABLES + ("engine_state",),
                          exclude=("received_at", "rejected_events.source"))
        assert len(positions(data)) == 3


def test_larger_lateness_after_a_restart_does_not_reopen_final_windows(tmp_path):
    """Regression: a restart with a larger --lateness set the watermark back, so
    a window that was already final (and dropped from memory) was opened again
    from zero and its KPI row overwritten with the newcomers alone."""
    first = [order(1, T0 + 270 * S), order(2, T0 + 300 * S)]  # lateness 0: wm 10:05
    second = [order(3, T0 + 301 * S), order(4, T0 + 285 * S)]  # 10:04:45: window 10:04 final
    process(tmp_path, "-", "--lateness", 0, input=lines(first))
    before = store_kpis(tmp_path)[(iso(T0 + 4 * M), "overall", "all")]
    assert before[0] == 1 and before[-1] == 1
    process(tmp_path, "-", input=lines(second))
    st = engine_state(tmp_path)
    assert st["watermark"] == T0 + 300 * S, "the watermark went back"
    assert store_kpis(tmp_path)[(iso(T0 + 4 * M), "overall", "all")] == before
    assert set(store_late(tmp_path)) == {second[1]["event_id"]}
    with connect_ro(tmp_path) as db:
        n_orders = db.execute("SELECT count(*) FROM orders_data").fetchone()[0]
        kpi_orders = db.execute("SELECT sum(orders) FROM kpi_minute_data"
                                " WHERE dimension = 'overall'").fetchone()[0]
    assert n_orders == kpi_orders == 3

"""Invariants of `shopstream gen`: properties that hold for every event of
every stream, whatever the seed (and determinism). Statistical properties of
the model are in test_gen_stats.py."""

import re

import pytest

from conftest import START, cents, gen_args, run, ts_ms

# The fields of each event type, exactly as src/event/encode.c writes them.
HEAD = ["type", "event_id", "order_id", "ts"]
ORDER_FIELDS = HEAD + [
    "customer_id", "customer_segment", "product_id", "product_name", "category", "city",
    "country", "quantity", "unit_price", "amount", "discount", "tax", "shipping",
    "total_price", "currency", "payment_method",
]
PAYMENT_OK_FIELDS = HEAD + ["payment_method", "amount", "status", "attempt"]
PAYMENT_FAILED_FIELDS = HEAD + ["payment_method", "amount", "status", "failure_reason", "attempt"]
CANCEL_FIELDS = HEAD + ["reason", "refund"]

ORDER_MONEY = ["unit_price", "amount", "discount", "tax", "shipping", "total_price"]
MONEY_FIELDS = {"unit_price", "amount", "discount", "tax", "shipping", "total_price", "refund"}
INT_FIELDS = {"quantity", "attempt"}

SMALL = dict(seed=3, count=3000)


def test_same_seed_gives_identical_bytes(gen, tmp_path):
    a = gen.raw(**SMALL)
    b = run(*gen_args(SMALL["seed"], SMALL["count"])).stdout
    assert len(a) > 0
    assert a == b, "two runs with the same seed, start and flags differ"
    # Writing to a file gives the same bytes as stdout.
    out = tmp_path / "ev.jsonl"
    run(*gen_args(SMALL["seed"], SMALL["count"]), "--out", out)
    assert out.read_bytes() == a


def test_same_seed_and_rate_identical_and_other_seed_differs(gen):
    a = run(*gen_args(SMALL["seed"], SMALL["count"], rate=0.5)).stdout
    assert a == run(*gen_args(SMALL["seed"], SMALL["count"], rate=0.5)).stdout
    other = gen.raw(seed=SMALL["seed"] + 1, count=SMALL["count"])
    assert other != gen.raw(**SMALL), "a different seed gave the same stream"
    # Not merely different ids: the content differs too.
    strip = re.compile(rb'"(event|order|customer)_id":"[^"]*"')
    assert strip.sub(b"", other) != strip.sub(b"", gen.raw(**SMALL))


@pytest.mark.parametrize("count", [1, 17, 2500])
def test_count_gives_exactly_n_orders(gen, count):
    s = gen.stream(seed=5, count=count)
    assert len(s.orders) == count
    assert len({o["order_id"] for o in s.orders}) == count
    # Every order's follow-ups are written before the stream ends.
    assert {p["order_id"] for p in s.payments} == {o["order_id"] for o in s.orders}


def test_field_sets_and_types(main_stream):
    expect = {
        "order": set(ORDER_FIELDS),
        "cancellation": set(CANCEL_FIELDS),
    }
    for e in main_stream.events:
        t = e["type"]
        if t == "payment":
            want = PAYMENT_OK_FIELDS if e.get("status") == "success" else PAYMENT_FAILED_FIELDS
            assert e["status"] in ("success", "failed"), e
            assert set(e) == set(want), e
        else:
            assert t in expect, e
            assert set(e) == expect[t], e
        for k, v in e.items():
            if k in MONEY_FIELDS:
                cents(v)  # exactly two decimals in the raw text
            elif k in INT_FIELDS:
                assert type(v) is int, (k, e)
            else:
                assert isinstance(v, str) and v != "", (k, e)


def test_order_totals_add_up_to_the_cent(main_stream):
    currency = None
    for o in main_stream.orders:
        unit, amount, disc, tax, ship, total = (cents(o[k]) for k in ORDER_MONEY)
        q = o["quantity"]
        assert q >= 1, o
        assert unit > 0, o
        assert amount == q * unit, o
        assert 0 <= disc <= amount and tax >= 0 and ship >= 0, o
        assert total == amount - disc + tax + ship, o
        currency = currency or o["currency"]
        assert o["currency"] == currency, o


def test_event_ids_unique_and_timestamps_ordered(main_stream):
    ids = [e["event_id"] for e in main_stream.events]
    assert len(set(ids)) == len(ids), "duplicate event_id"
    prev = None
    first = ts_ms(main_stream.events[0]["ts"])
    assert first >= ts_ms(START + "T00:00:00.000Z")
    for e in main_stream.events:
        t = ts_ms(e["ts"])  # also checks the ISO-8601 UTC format with milliseconds
        assert prev is None or t >= prev, f"ts went backwards at {e['event_id']}"
        prev = t


def harsh_override(profile):
    """Half of all payment attempts fail and 30% of paid orders are cancelled:
    every branch of the payment process is taken thousands of times."""
    methods = [dict(m, failure_rate=0.5) for m in profile["payments"]["methods"]]
    return {"payments": {"methods": methods}, "cancellations": {"rate": 0.3}}


@pytest.fixture(params=["default", "harsh"])
def lifecycle_stream(request, gen, profile, main_stream):
    if request.param == "default":
        return main_stream, profile
    override = harsh_override(profile)
    return gen.stream(seed=9, count=20_000, override=override), gen.profile(override)


def test_payment_and_cancellation_lifecycle(lifecycle_stream):
    stream, profile = lifecycle_stream
    max_attempts = profile["payments"]["max_attempts"]
    branches = {"paid": 0, "paid_cancelled": 0, "unpaid_cancelled": 0, "max_attempts": 0}
    seen_orders = {}  # order_id -> (ts, total)
    state = {}  # order_id -> {"attempt", "paid_ts", "failed", "cancelled", "last_fail_ts"}
    for e in stream.events:
        oid = e["order_id"]
        t = ts_ms(e["ts"])
        if e["type"] == "order":
            assert oid not in seen_orders, f"order {oid} written twice"
            seen_orders[oid] = (t, cents(e["total_price"]))
            state[oid] = {"attempt": 0, "paid_ts": None, "last_fail_ts": None, "cancelled": False}
            continue
        assert oid in seen_orders, f"{e['type']} {e['event_id']} before (or without) its order"
        ots, total = seen_orders[oid]
        st = state[oid]
        assert not st["cancelled"], f"event {e['event_id']} after the order's cancellation"
        if e["type"] == "payment":
            assert t > ots, e
            assert cents(e["amount"]) == total, f"payment amount is not the order total: {e}"
            assert st["paid_ts"] is None, f"payment after a successful one: {e}"
            assert e["attempt"] == st["attempt"] + 1, f"attempts must go 1, 2, 3: {e}"
            assert 1 <= e["attempt"] <= max_attempts, e
            st["attempt"] = e["attempt"]
            branches["max_attempts"] += e["attempt"] == max_attempts
            if e["status"] == "success":
                st["paid_ts"] = t
                branches["paid"] += 1
            else:
                st["last_fail_ts"] = t
        else:
            st["cancelled"] = True
            refund = cents(e["refund"])
            if st["paid_ts"] is not None:
                assert e["reason"] != "payment_failed", e
                assert t > st["paid_ts"], f"cancellation before the payment: {e}"
                assert refund == total, f"a paid order's refund must be its total: {e}"
                branches["paid_cancelled"] += 1
            else:
                assert st["attempt"] >= 1 and st["last_fail_ts"] is not None, e
                assert e["reason"] == "payment_failed", e
                assert refund == 0, e
                assert t > st["last_fail_ts"], e
                branches["unpaid_cancelled"] += 1
    # At the end of a --count run every order is settled: paid, or failed and cancelled.
    for oid, st in state.items():
        assert st["attempt"] >= 1, f"order {oid} has no payment"
        assert st["paid_ts"] is not None or st["cancelled"], f"order {oid} failed but was not cancelled"
    # Every branch was exercised, not just the common path.
    assert min(branches.values()) > 0, branches


def test_each_order_has_at_most_one_cancellation(main_stream):
    per = {}
    for c in main_stream.cancellations:
        per[c["order_id"]] = per.get(c["order_id"], 0) + 1
    assert per and max(per.values()) == 1


def test_unpaid_orders_are_cancelled(main_stream):
    """An order whose payments all fail is cancelled for payment_failed with no refund."""
    n = 0
    for oid, g in main_stream.by_order.items():
        pays = g["payments"]
        if pays and all(p["status"] == "failed" for p in pays):
            n += 1
            assert len(g["cancellations"]) == 1, oid
            c = g["cancellations"][0]
            assert c["reason"] == "payment_failed" and cents(c["refund"]) == 0, c
    assert n > 0, "no order had all its payments fail: the invariant was not exercised"

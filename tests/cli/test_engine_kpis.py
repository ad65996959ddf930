"""KPIs exact: `shopstream process` over 200,000 generated orders, and every
minute KPI row checked to the cent against two independent recomputations:

1. SQL over the store's own fact tables (integer cents from the *_data tables),
   so that kpi_minute_data is exactly the aggregate of the facts it claims to
   aggregate, and the kpi_minute view presents it correctly (units, aov rounded
   half up to the cent, final flags);
2. Python over the generator's events (money parsed from its two-decimal text),
   with the data dictionary's attribution rules, so that the facts and KPIs are
   right and not merely consistent with each other.

The sets of (minute, dimension, value) keys must be identical too, and the fact
counts must equal the generator's event counts (200,000 orders exactly).
"""

import re
import time
from collections import defaultdict

import pytest

from conftest import (ENGINE_START, cents, connect_ro, engine_state, parse_lines, process,
                      ts_ms)

SEED = 20261102
COUNT = 200_000
MINUTE_MS = 60_000

# (minute_start, dimension, dimension_value) -> the eight integer KPIs.
KPI_COLUMNS = ["orders", "units", "gross_cents", "paid_cents", "attempts", "failed",
               "cancellations", "cancelled_cents"]

RECOMPUTE_SQL = """
WITH ev AS (
  SELECT substr(ts, 1, 17) || '00.000Z' AS m, city, country, category, payment_method AS pm,
         1 AS o, quantity AS u, total_price_cents AS g, 0 AS pd, 0 AS a, 0 AS f, 0 AS c, 0 AS cr
    FROM orders_data
  UNION ALL
  -- A payment counts under its order's city/country/category and its OWN method.
  SELECT substr(ts, 1, 17) || '00.000Z', city, country, category, payment_method,
         0, 0, 0, CASE WHEN status = 'success' THEN amount_cents ELSE 0 END, 1,
         CASE WHEN status = 'failed' THEN 1 ELSE 0 END, 0, 0
    FROM payments_data
  UNION ALL
  -- A cancellation counts under all of its order's dimensions, method included.
  SELECT substr(ts, 1, 17) || '00.000Z', city, country, category, payment_method,
         0, 0, 0, 0, 0, 0, 1, refund_cents
    FROM cancellations_data),
dv AS (
  SELECT m, 'overall' AS d, 'all' AS v, o, u, g, pd, a, f, c, cr FROM ev
  UNION ALL SELECT m, 'city', city, o, u, g, pd, a, f, c, cr FROM ev
  UNION ALL SELECT m, 'country', country, o, u, g, pd, a, f, c, cr FROM ev
  UNION ALL SELECT m, 'category', category, o, u, g, pd, a, f, c, cr FROM ev
  UNION ALL SELECT m, 'payment_method', pm, o, u, g, pd, a, f, c, cr FROM ev)
SELECT m, d, v, sum(o), sum(u), sum(g), sum(pd), sum(a), sum(f), sum(c), sum(cr)
  FROM dv GROUP BY m, d, v
"""

STORED_SQL = """
SELECT minute_start, dimension, dimension_value, sum(orders), sum(units),
       sum(gross_revenue_cents), sum(paid_revenue_cents), sum(payment_attempts),
       sum(failed_payments), sum(cancellations), sum(cancelled_revenue_cents), min(final)
  FROM kpi_minute_data GROUP BY minute_start, dimension, dimension_value
"""

VIEW_SQL = """
SELECT minute_start, dimension, dimension_value, orders, units, gross_revenue, paid_revenue,
       aov, payment_attempts, failed_payments, cancellations, cancelled_revenue, final
  FROM kpi_minute
"""


def minute_text(ms):
    """The kpi_minute_data.minute_start text of the minute containing ms."""
    t = time.gmtime(ms // 1000)
    return time.strftime("%Y-%m-%dT%H:%M:00.000Z", t)


def iso_ms(text):
    return ts_ms(text)


def round_half_up_div(num, den):
    """num / den rounded half up, for num >= 0 and den > 0, in integers."""
    return (2 * num + den) // (2 * den)


def to_cents(value):
    """Cents from a money value the kpi_minute view returns (a REAL of units)."""
    return None if value is None else int(round(value * 100))


def first_diffs(expected, got, limit=5):
    keys = sorted(set(expected) | set(got))
    out = []
    for k in keys:
        if expected.get(k) != got.get(k):
            out.append(f"{k}: expected {expected.get(k)}, stored {got.get(k)}")
            if len(out) == limit:
                break
    return out


@pytest.fixture(scope="module")
def processed(gen_file, tmp_path_factory):
    """The generated file, processed once: (path, data dir, raw bytes, seconds)."""
    path = gen_file(SEED, COUNT, ENGINE_START)
    data = tmp_path_factory.mktemp("kpis")
    t0 = time.monotonic()
    process(data, path)
    return path, data, path.read_bytes(), time.monotonic() - t0


@pytest.fixture(scope="module")
def stored_kpis(processed):
    _, data, _, _ = processed
    with connect_ro(data) as db:
        rows = db.execute(STORED_SQL).fetchall()
    kpis = {r[:3]: tuple(r[3:11]) for r in rows}
    finals = {r[:3]: r[11] for r in rows}
    assert len(kpis) == len(rows)
    return kpis, finals


def test_fact_counts_equal_generator_counts(processed):
    path, data, raw, secs = processed
    n_order = raw.count(b'{"type":"order"')
    n_payment = raw.count(b'{"type":"payment"')
    n_cancel = raw.count(b'{"type":"cancellation"')
    lines = raw.count(b"\n")
    assert n_order == COUNT
    assert n_order + n_payment + n_cancel == lines, "every generated line is one event"
    # The generator's own summary agrees with the file.
    with connect_ro(data) as db:
        counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("orders_data", "payments_data", "cancellations_data",
                            "rejected_events", "late_events")}
        failed = db.execute("SELECT count(*) FROM payments_data WHERE status = 'failed'"
                            ).fetchone()[0]
    assert counts == {"orders_data": COUNT, "payments_data": n_payment,
                      "cancellations_data": n_cancel, "rejected_events": 0, "late_events": 0}
    assert failed == raw.count(b'"status":"failed"')
    st = engine_state(data)
    assert st["events_in"] == lines and st["stored"] == lines
    assert st["duplicates"] == 0 and st["rejected"] == 0 and st["late"] == 0
    print(f"processed {lines} events in {secs:.2f} s")


def test_every_kpi_row_equals_sql_over_the_facts(processed, stored_kpis):
    _, data, _, _ = processed
    kpis, _ = stored_kpis
    with connect_ro(data) as db:
        expected = {r[:3]: tuple(r[3:]) for r in db.execute(RECOMPUTE_SQL)}
    assert len(expected) > 10_000, "the recompute found suspiciously few KPI rows"
    assert set(kpis) == set(expected), (
        f"key sets differ: {len(set(kpis) - set(expected))} stored only, "
        f"{len(set(expected) - set(kpis))} recomputed only; e.g. "
        f"{sorted(set(kpis) ^ set(expected))[:5]}")
    bad = first_diffs(expected, kpis)
    assert not bad, "KPI rows differ from the facts (" + ", ".join(KPI_COLUMNS) + "):\n" + \
        "\n".join(bad)
    # The overall rows add up to the whole fact tables.
    totals = [sum(v[i] for k, v in kpis.items() if k[1] == "overall") for i in range(8)]
    with connect_ro(data) as db:
        facts = db.execute(
            "SELECT (SELECT count(*) FROM orders_data), (SELECT sum(quantity) FROM orders_data),"
            " (SELECT sum(total_price_cents) FROM orders_data),"
            " (SELECT sum(amount_cents) FROM payments_data WHERE status = 'success'),"
            " (SELECT count(*) FROM payments_data),"
            " (SELECT count(*) FROM payments_data WHERE status = 'failed'),"
            " (SELECT count(*) FROM cancellations_data),"
            " (SELECT sum(refund_cents) FROM cancellations_data)").fetchone()
    assert tuple(totals) == facts
    # Every dimension partitions the same totals.
    for dim in ("city", "country", "category", "payment_method"):
        t = [sum(v[i] for k, v in kpis.items() if k[1] == dim) for i in range(8)]
        assert t == totals, f"dimension {dim} does not add up to the overall totals"


def test_every_kpi_row_equals_the_generator_events(processed, stored_kpis):
    """An oracle independent of the store: the KPIs from the generated events."""
    _, _, raw, _ = processed
    kpis, _ = stored_kpis
    events = parse_lines(raw)
    orders = {}
    expected = defaultdict(lambda: [0] * 8)
    minute_of = {}

    def add(minute, dims, delta):
        for d, v in dims:
            row = expected[(minute, d, v)]
            for i, x in delta:
                row[i] += x

    for e in events:
        ts = e["ts"]
        m = minute_of.get(ts[:16])
        if m is None:
            m = minute_of[ts[:16]] = minute_text(ts_ms(ts))
        t = e["type"]
        if t == "order":
            o = (e["city"], e["country"], e["category"], e["payment_method"])
            orders[e["order_id"]] = o
            dims = (("overall", "all"), ("city", o[0]), ("country", o[1]), ("category", o[2]),
                    ("payment_method", o[3]))
            add(m, dims, ((0, 1), (1, e["quantity"]), (2, cents(e["total_price"]))))
        elif t == "payment":
            o = orders[e["order_id"]]
            dims = (("overall", "all"), ("city", o[0]), ("country", o[1]), ("category", o[2]),
                    ("payment_method", e["payment_method"]))
            ok = e["status"] == "success"
            add(m, dims, ((3, cents(e["amount"]) if ok else 0), (4, 1), (5, 0 if ok else 1)))
        else:
            o = orders[e["order_id"]]
            dims = (("overall", "all"), ("city", o[0]), ("country", o[1]), ("category", o[2]),
                    ("payment_method", o[3]))
            add(m, dims, ((6, 1), (7, cents(e["refund"]))))
    expected = {k: tuple(v) for k, v in expected.items()}
    assert set(kpis) == set(expected), (
        f"key sets differ from the generator's: e.g. {sorted(set(kpis) ^ set(expected))[:5]}")
    bad = first_diffs(expected, kpis)
    assert not bad, "KPI rows differ from the generated events:\n" + "\n".join(bad)


def test_kpi_minute_view_units_aov_and_final(processed, stored_kpis):
    """The view presents the integer cents in units, aov = gross / orders rounded
    half up to the cent (NULL without orders), and final = 1 exactly for the
    windows whose end the watermark has reached."""
    _, data, _, _ = processed
    kpis, finals = stored_kpis
    watermark = engine_state(data)["watermark"]
    with connect_ro(data) as db:
        rows = db.execute(VIEW_SQL).fetchall()
    assert len(rows) == len(kpis)
    aov_checked = half_cases = 0
    n_final = 0
    for r in rows:
        key = r[:3]
        o, u, g, pd, a, f, c, cr = kpis[key]
        (orders, units, gross, paid, aov, attempts, failed, cancels, cancelled,
         final) = r[3:]
        assert (orders, units, attempts, failed, cancels) == (o, u, a, f, c), key
        assert (to_cents(gross), to_cents(paid), to_cents(cancelled)) == (g, pd, cr), key
        if o == 0:
            assert aov is None, f"{key}: aov {aov} without orders"
        else:
            want = round_half_up_div(g, o)
            assert to_cents(aov) == want, f"{key}: aov {aov}, expected {want / 100:.2f} ({g}/{o})"
            aov_checked += 1
            half_cases += (2 * (g % o) == o)
        end = iso_ms(key[0]) + MINUTE_MS
        assert final == finals[key] == (1 if end <= watermark else 0), \
            f"{key}: final {final}, window end {end}, watermark {watermark}"
        n_final += final
    assert aov_checked > 10_000
    assert n_final > 0 and n_final < len(rows), "expected both final and open windows"
    print(f"aov checked on {aov_checked} rows ({half_cases} exact halves)")


def test_money_stored_as_exact_cents(processed):
    """Spot-check the fact tables against the text: the sum of every money field
    equals the sum of the generator's two-decimal values."""
    _, data, raw, _ = processed
    fields = {b"total_price": "orders_data.total_price_cents",
              b"discount": "orders_data.discount_cents", b"tax": "orders_data.tax_cents",
              b"refund": "cancellations_data.refund_cents"}
    with connect_ro(data) as db:
        for name, col in fields.items():
            want = sum(cents(m.decode()) for m in
                       re.findall(rb'"' + name + rb'":([0-9]+\.[0-9]{2})', raw))
            table, column = col.split(".")
            got = db.execute(f"SELECT sum({column}) FROM {table}").fetchone()[0]
            assert got == want, f"{col}: {got} != {want}"

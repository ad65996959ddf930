"""The analyst queries of docs/queries.md, run against a real store.

Every ```sql block of the document runs through `shopstream sql --format json`
against one store built for this module: `shopstream gen` (fixed seed, start
and count) with a few invalid lines, a duplicate and a late event appended,
then `shopstream process`. Each query must exit 0, print valid JSON and return
rows. Then the answers of most questions are recomputed independently in
Python from the generated JSON Lines (money as integer cents from the exact
two-decimal text) and compared with what the SQL returned.

The binary comes from SHOPSTREAM_BIN (CMake sets it for ctest), else
build/shopstream under the repository root.
"""

import datetime
import json
import os
import re
import subprocess
import time
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from harness import BIN, REPO, assert_ok, clean_env, cli, describe

DOC = REPO / "docs" / "queries.md"

SEED, COUNT, START = 11, 50_000, "2026-11-02T00:00:00Z"
MS_PER_MIN, MS_PER_HOUR = 60_000, 3_600_000

# The marker before a block whose result depends on the wall clock.
WALL_CLOCK = "<!-- wall clock: the result may be empty -->"

# Lines that are not valid events: each must end up in rejected_events.
BAD_LINES = [
    b'{"type":"order","oops"',
    b"not json at all",
    b"\xff\xfe binary \x00\x01",
    b'{"type":"payment","event_id":"e-000000000000-1-p1"}',
]


# ---- the document ----

HEADING_RE = re.compile(r"^## (\d+)\. (.+)$", re.M)
BLOCK_RE = re.compile(r"^```sql\n(.*?)^```$", re.S | re.M)


def parse_doc():
    """[(number, question, text between heading and first block, [(sql, may_be_empty)])]."""
    text = DOC.read_text()
    heads = list(HEADING_RE.finditer(text))
    sections = []
    for i, h in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        body = text[h.end():end]
        blocks = []
        for b in BLOCK_RE.finditer(body):
            before = body[:b.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
            blocks.append((b.group(1), before == WALL_CLOCK))
        first = BLOCK_RE.search(body)
        # Markers for other readers of the document (<!-- spark: name -->) are no prose.
        intro = re.sub(r"<!--.*?-->", "", body[:first.start()] if first else body)
        sections.append((int(h.group(1)), h.group(2).strip(), intro.strip(), blocks))
    return sections


SECTIONS = parse_doc() if DOC.exists() else []
QUERIES = [pytest.param(sql, may_be_empty, id=f"q{n:02d}{'abcdefgh'[k] if k else ''}")
           for n, _, _, blocks in SECTIONS for k, (sql, may_be_empty) in enumerate(blocks)]


def section_sql(words, k=0):
    """The k-th block of the one section whose question contains words."""
    hits = [s for s in SECTIONS if words.lower() in s[1].lower()]
    assert len(hits) == 1, f"{len(hits)} sections of docs/queries.md ask about {words!r}"
    return hits[0][3][k][0]


def test_doc_format():
    assert DOC.exists(), "docs/queries.md is missing"
    assert len(SECTIONS) >= 10, f"docs/queries.md has {len(SECTIONS)} queries, expected at least 10"
    assert [s[0] for s in SECTIONS] == list(range(1, len(SECTIONS) + 1)), \
        "questions must be numbered 1, 2, 3, ... in order"
    for n, question, intro, blocks in SECTIONS:
        assert question.endswith("?"), f"## {n}. {question}: the heading is not a question"
        assert intro and intro[-1] in ".:)", f"## {n}: no sentence on what the query answers"
        assert blocks, f"## {n}. {question}: no ```sql block"
    # Every block in the document is inside a numbered question.
    assert len(BLOCK_RE.findall(DOC.read_text())) == len(QUERIES)


# ---- the store ----

def ts_ms(text):
    d = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    return round(d.timestamp() * 1000)


def cents(text):
    """Integer cents from the exact two-decimal text of a money value."""
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", text), text
    whole, frac = text.split(".")
    return int(whole) * 100 + int(frac)


def money(v):
    """Integer cents from a JSON money value of the SQL result: two decimals in the text."""
    assert isinstance(v, Decimal) and v.as_tuple().exponent == -2, \
        f"money value {v!r} is not printed with exactly two decimals"
    return int(v * 100)


class Store:
    def __init__(self, data, events, profile):
        self.data = data
        self.orders = [e for e in events if e["type"] == "order"]
        self.payments = [e for e in events if e["type"] == "payment"]
        self.cancellations = [e for e in events if e["type"] == "cancellation"]
        self.order = {o["order_id"]: o for o in self.orders}
        self.region = {c["name"]: c["region"] for c in profile["countries"]}

    def query(self, sql):
        """Runs sql with --format json; returns the rows, numbers with a
        fraction as Decimal (the text exactly as printed)."""
        proc = assert_ok(cli("sql", sql, "--data", self.data, "--format", "json"))
        return json.loads(proc.stdout, parse_float=Decimal)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    tmp = tmp_path_factory.mktemp("queries")
    raw = assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--max", "--start", START)).stdout
    lines = raw.splitlines()
    events = json.loads(b"[" + b",".join(lines) + b"]", parse_float=str)
    # A late copy of the first order under a new id (its minute is long closed
    # when it arrives) and an exact repeat of an event (dropped as a duplicate).
    # The order number n is replaced by one as wide, all nines: no generated
    # order has it.
    first = events[0]
    assert first["type"] == "order"
    n = re.fullmatch(r"o-[0-9a-f]+-([0-9]+)", first["order_id"]).group(1)
    new_n = "9" * max(len(n), 6)
    late = lines[0]
    for old_id in (first["event_id"], first["order_id"]):
        new_id = old_id.replace(f"-{n}", f"-{new_n}", 1)
        late = late.replace(f'"{old_id}"'.encode(), f'"{new_id}"'.encode())
    assert late.count(new_n.encode()) == 2, late
    extra = BAD_LINES + [late, lines[1000]]
    src = tmp / "events.jsonl"
    src.write_bytes(raw + b"\n".join(extra) + b"\n")
    proc = assert_ok(cli("process", "--from", src, "--data", tmp / "data"))
    err = proc.stderr.decode()
    assert f"{len(BAD_LINES)} rejected, 1 late" in err and "1 duplicates" in err, err
    profile = json.loads(assert_ok(cli("gen", "--print-profile")).stdout)
    return Store(tmp / "data", events, profile)


# ---- every query runs and answers ----

@pytest.mark.parametrize("sql,may_be_empty", QUERIES)
def test_query_runs(store, sql, may_be_empty):
    proc = cli("sql", sql, "--data", store.data, "--format", "json", timeout=60)
    assert proc.returncode == 0, describe(proc)
    assert proc.stderr == b"", describe(proc)
    try:
        rows = json.loads(proc.stdout)
    except ValueError as e:
        raise AssertionError(f"not valid JSON ({e}):\n{proc.stdout[:1000]!r}") from None
    assert isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
    if not may_be_empty:
        assert rows, f"empty result for:\n{sql}"


# ---- the answers are right ----

def by(rows, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def close(a, b, tol=Decimal("0.01")):
    return abs(Decimal(a) - Decimal(str(b))) <= tol


def test_revenue_by_city_last_hour(store):
    cutoff = max(ts_ms(o["ts"]) for o in store.orders) - MS_PER_HOUR
    want = defaultdict(lambda: [0, 0])
    for o in store.orders:
        if ts_ms(o["ts"]) > cutoff:
            w = want[(o["city"], o["country"])]
            w[0] += 1
            w[1] += cents(o["total_price"])
    rows = store.query(section_sql("last hour"))
    got = {(r["city"], r["country"]): [r["orders"], money(r["revenue"])] for r in rows}
    assert got == dict(want)
    revenues = [money(r["revenue"]) for r in rows]
    assert revenues == sorted(revenues, reverse=True)
    # The last hour holds a part of the orders, not all of them.
    assert 0 < sum(w[0] for w in want.values()) < len(store.orders)


def test_revenue_by_city_wall_clock(store):
    """The 'now' variant: its window follows the wall clock."""
    def expected(now_ms):
        want = defaultdict(lambda: [0, 0])
        for o in store.orders:
            if ts_ms(o["ts"]) > now_ms - MS_PER_HOUR:
                want[(o["city"], o["country"])][0] += 1
                want[(o["city"], o["country"])][1] += cents(o["total_price"])
        return dict(want)

    before = expected(int(time.time() * 1000))
    rows = store.query(section_sql("last hour", 1))
    after = expected(int(time.time() * 1000) + 1)
    got = {(r["city"], r["country"]): [r["orders"], money(r["revenue"])] for r in rows}
    assert got in (before, after)


def test_categories_with_high_aov(store):
    n, total = Counter(), Counter()
    for o in store.orders:
        n[o["category"]] += 1
        total[o["category"]] += cents(o["total_price"])
    want = {c for c in n if total[c] > 100 * 100 * n[c]}
    rows = store.query(section_sql("average order value"))
    assert set(by(rows, "category")) == want and 0 < len(want) < len(n)
    for r in rows:
        c = r["category"]
        assert r["orders"] == n[c]
        assert close(r["aov"], total[c] / n[c] / 100), (c, r["aov"])
    assert [r["aov"] for r in rows] == sorted((r["aov"] for r in rows), reverse=True)


def test_payment_failure_rate_by_method(store):
    attempts, failed = Counter(), Counter()
    for p in store.payments:
        attempts[p["payment_method"]] += 1
        failed[p["payment_method"]] += p["status"] == "failed"
    rows = store.query(section_sql("payments fail, per payment method"))
    assert set(by(rows, "payment_method")) == set(attempts)
    for r in rows:
        m = r["payment_method"]
        assert (r["attempts"], r["failed"]) == (attempts[m], failed[m]), m
        assert close(r["failure_rate_pct"], 100 * failed[m] / attempts[m]), m


def test_cancellation_reasons_by_country(store):
    want = defaultdict(lambda: [0, 0])
    for c in store.cancellations:
        w = want[(store.order[c["order_id"]]["country"], c["reason"])]
        w[0] += 1
        w[1] += cents(c["refund"])
    rows = store.query(section_sql("cancelled, per country"))
    got = {(r["country"], r["reason"]): [r["cancellations"], money(r["refunded"])] for r in rows}
    assert got == dict(want)
    assert all(money(r["refunded"]) == 0 for r in rows if r["reason"] == "payment_failed")


def test_repeat_customers(store):
    per = Counter(o["customer_id"] for o in store.orders)
    repeat = sum(1 for v in per.values() if v > 1)
    [row] = store.query(section_sql("ordered more than once"))
    assert row["repeat_customers"] == repeat and 0 < repeat < len(per)
    assert row["customers"] == len(per)
    assert close(row["repeat_share_pct"], 100 * repeat / len(per))


def test_most_frequent_customers(store):
    n, spent, first = Counter(), Counter(), {}
    for o in store.orders:
        c = o["customer_id"]
        n[c] += 1
        spent[c] += cents(o["total_price"])
        first.setdefault(c, o)
    rows = store.query(section_sql("most frequent customers"))
    want = sorted(n, key=lambda c: (-n[c], -spent[c]))[:10]
    assert [r["customer_id"] for r in rows] == want
    for r in rows:
        c = r["customer_id"]
        assert (r["orders"], money(r["spent"])) == (n[c], spent[c])
        o = first[c]
        assert (r["customer_segment"], r["city"], r["country"]) == \
            (o["customer_segment"], o["city"], o["country"])
        assert r["first_order"] == o["ts"]


def test_top_products(store):
    n, units, rev, prod = Counter(), Counter(), Counter(), {}
    for o in store.orders:
        p = o["product_id"]
        n[p] += 1
        units[p] += o["quantity"]
        rev[p] += cents(o["total_price"])
        prod[p] = o
    rows = store.query(section_sql("products bring the most revenue"))
    assert [r["product_id"] for r in rows] == sorted(rev, key=lambda p: (-rev[p], p))[:10]
    for r in rows:
        p, o = r["product_id"], prod[r["product_id"]]
        assert (r["orders"], r["units"], money(r["revenue"])) == (n[p], units[p], rev[p])
        assert (r["product_name"], r["category"], money(r["unit_price"])) == \
            (o["product_name"], o["category"], cents(o["unit_price"]))


def test_revenue_by_region(store):
    n, rev, countries = Counter(), Counter(), defaultdict(set)
    for o in store.orders:
        reg = store.region[o["country"]]
        n[reg] += 1
        rev[reg] += cents(o["total_price"])
        countries[reg].add(o["country"])
    rows = store.query(section_sql("world regions"))
    got = {r["region"]: (r["countries"], r["orders"], money(r["revenue"])) for r in rows}
    assert got == {reg: (len(countries[reg]), n[reg], rev[reg]) for reg in n}
    assert sum(r["orders"] for r in rows) == COUNT


def test_orders_per_hour(store):
    n, rev = Counter(), Counter()
    for o in store.orders:
        h = int(o["ts"][11:13])
        n[h] += 1
        rev[h] += cents(o["total_price"])
    rows = store.query(section_sql("hours of the day"))
    assert [(r["hour"], r["orders"], money(r["revenue"])) for r in rows] == \
        [(h, n[h], rev[h]) for h in sorted(n)]


def status_of(store):
    status = {o["order_id"]: "created" for o in store.orders}
    for p in store.payments:
        if p["status"] == "success":
            status[p["order_id"]] = "paid"
    for c in store.cancellations:
        status[c["order_id"]] = "payment_failed" if c["reason"] == "payment_failed" else "cancelled"
    return Counter(status.values())


def test_order_status_breakdown(store):
    want = status_of(store)
    rows = store.query(section_sql("orders stand"))
    got = {r["status"]: r["orders"] for r in rows}
    assert got == {s: want.get(s, 0) for s in ("created", "paid", "payment_failed", "cancelled")}
    assert sum(got.values()) == COUNT
    for r in rows:
        assert close(r["share_pct"], 100 * r["orders"] / COUNT)


def test_paid_vs_gross_last_30_minutes(store):
    newest = max(ts_ms(o["ts"]) for o in store.orders)
    last = newest - newest % MS_PER_MIN
    first = last - 29 * MS_PER_MIN
    want = defaultdict(lambda: [0, 0, 0, 0])  # orders, gross, paid, refunded

    def minute(e):
        t = ts_ms(e["ts"])
        m = t - t % MS_PER_MIN
        return m if first <= m <= last else None

    for o in store.orders:
        if (m := minute(o)) is not None:
            want[m][0] += 1
            want[m][1] += cents(o["total_price"])
    for p in store.payments:
        if p["status"] == "success" and (m := minute(p)) is not None:
            want[m][2] += cents(p["amount"])
    for c in store.cancellations:
        if (m := minute(c)) is not None:
            want[m][3] += cents(c["refund"])
    rows = store.query(section_sql("last 30 minutes"))
    assert len(rows) == 30 == len(want)
    for r in rows:
        w = want[ts_ms(r["minute_start"])]
        got = [r["orders"], money(r["gross_revenue"]), money(r["paid_revenue"]),
               money(r["cancelled_revenue"])]
        assert got == w, r["minute_start"]
        assert money(r["kept_revenue"]) == w[2] - w[3]
        # The stream went on for a day of follow-ups: these minutes are closed.
        assert r["final"] == 1


def test_time_to_payment(store):
    n, total, longest = Counter(), Counter(), Counter()
    for p in store.payments:
        if p["status"] == "success":
            o = store.order[p["order_id"]]
            d = ts_ms(p["ts"]) - ts_ms(o["ts"])
            m = o["payment_method"]
            n[m] += 1
            total[m] += d
            longest[m] = max(longest[m], d)
    rows = store.query(section_sql("order to successful payment"))
    assert set(by(rows, "payment_method")) == set(n)
    for r in rows:
        m = r["payment_method"]
        assert r["paid_orders"] == n[m]
        assert close(r["avg_seconds"], total[m] / n[m] / 1000, Decimal("0.002")), m
        assert close(r["max_seconds"], longest[m] / 1000, Decimal("0.002")), m


def test_cities_with_most_failed_payments(store):
    attempts, failed = Counter(), Counter()
    for p in store.payments:
        city = store.order[p["order_id"]]["city"]
        attempts[city] += 1
        failed[city] += p["status"] == "failed"
    eligible = {c: 100 * failed[c] / attempts[c] for c in attempts if attempts[c] >= 200}
    rows = store.query(section_sql("share of failed payments"))
    assert len(rows) == min(10, len(eligible)) and len(eligible) > 10
    for r in rows:
        c = r["city"]
        assert c in eligible, f"{c} has fewer than 200 attempts"
        assert (r["attempts"], r["failed"]) == (attempts[c], failed[c])
        assert close(r["failed_pct"], eligible[c])
    pcts = [r["failed_pct"] for r in rows]
    assert pcts == sorted(pcts, reverse=True)
    # No city left out has a higher share than the lowest one listed.
    shown = {r["city"] for r in rows}
    assert all(eligible[c] <= float(pcts[-1]) + 0.005 for c in eligible if c not in shown)


def test_payment_failure_reasons(store):
    want = Counter(p["failure_reason"] for p in store.payments if p["status"] == "failed")
    rows = store.query(section_sql("why do payments fail"))
    assert {r["failure_reason"]: r["failures"] for r in rows} == dict(want)


def test_kept_revenue_by_category(store):
    want = defaultdict(lambda: [0, 0, 0, 0])  # orders, gross, paid, refunded
    for o in store.orders:
        want[o["category"]][0] += 1
        want[o["category"]][1] += cents(o["total_price"])
    for p in store.payments:
        if p["status"] == "success":
            want[store.order[p["order_id"]]["category"]][2] += cents(p["amount"])
    for c in store.cancellations:
        want[store.order[c["order_id"]]["category"]][3] += cents(c["refund"])
    rows = store.query(section_sql("keep after refunds"))
    got = {r["category"]: [r["orders"], money(r["gross_revenue"]), money(r["paid_revenue"]),
                           money(r["refunded"])] for r in rows}
    assert got == dict(want)
    for r in rows:
        assert money(r["kept_revenue"]) == money(r["paid_revenue"]) - money(r["refunded"])


def test_busiest_minutes(store):
    n, rev = Counter(), Counter()
    for o in store.orders:
        t = ts_ms(o["ts"])
        n[t - t % MS_PER_MIN] += 1
        rev[t - t % MS_PER_MIN] += cents(o["total_price"])
    top = sorted(n, key=lambda m: (-n[m], m))[:5]
    rows = store.query(section_sql("busiest minutes"))
    assert [(ts_ms(r["minute_start"]), r["orders"], money(r["gross_revenue"])) for r in rows] == \
        [(m, n[m], rev[m]) for m in top]
    for r in rows:
        day = datetime.datetime.fromtimestamp(ts_ms(r["minute_start"]) / 1000,
                                              datetime.timezone.utc)
        assert r["weekday_name"] == day.strftime("%A")


def test_rejected_events_by_reason(store):
    rows = store.query(section_sql("input lines rejected"))
    assert sum(r["events"] for r in rows) == len(BAD_LINES)
    assert sum(r["bytes"] for r in rows) == sum(len(b) for b in BAD_LINES)
    reasons = " | ".join(r["reason"] for r in rows)
    assert "invalid JSON" in reasons and "UTF-8" in reasons and "order_id" in reasons, reasons


def test_late_events(store):
    rows = store.query(section_sql("arrived too late"))
    assert [(r["type"], r["events"]) for r in rows] == [("order", 1)]
    assert rows[0]["oldest"] == store.orders[0]["ts"]

"""Shared helpers for the black-box tests of `shopstream gen`.

The binary comes from SHOPSTREAM_BIN (CMake sets it for ctest), else
build/shopstream under the repository root. Every stream is generated with
--max and a fixed --start, so it is a pure function of its arguments, and each
distinct stream is generated and parsed once per pytest session.

Parsing keeps the raw text of every JSON number with a fraction
(parse_float=str): money is then checked and converted to integer cents from
the exact two-decimal text the generator wrote, never through a float.
"""

import datetime
import json
import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from storedb import store_db

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SHOPSTREAM_BIN") or str(REPO / "build" / "shopstream")

# A Monday, midnight UTC: simulated days and weeks start on whole boundaries.
START = "2026-11-02"

MONEY_RE = re.compile(r"-?[0-9]+\.[0-9]{2}")
TS_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z")

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000


def run(*args):
    """Runs the binary without any SHOPSTREAM_* variable in its environment (the
    CLI reads option defaults from them); returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    proc = subprocess.run([BIN, *map(str, args)], capture_output=True, timeout=120, env=env)
    if proc.returncode != 0:
        raise AssertionError(
            f"shopstream {' '.join(map(str, args))} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace')}"
        )
    return proc


def sql_json(data, query):
    """`shopstream sql --data DATA --format json QUERY`: the result's rows as dicts."""
    proc = run("sql", "--data", data, "--format", "json", query)
    return json.loads(proc.stdout)


def gen_args(seed, count, rate=None, start=START, profile_path=None):
    args = ["gen", "--seed", seed, "--count", count, "--max", "--start", start]
    if rate is not None:
        args += ["--rate", rate]
    if profile_path is not None:
        args += ["--profile", profile_path]
    return args


def cents(text):
    """Integer cents from a money value as written: exactly two decimals."""
    assert isinstance(text, str) and MONEY_RE.fullmatch(text), f"money value {text!r} must have two decimals"
    neg = text.startswith("-")
    whole, frac = text.lstrip("-").split(".")
    v = int(whole) * 100 + int(frac)
    return -v if neg else v


_day_cache = {}


def ts_ms(text):
    """Milliseconds since the epoch from an ISO-8601 UTC timestamp with milliseconds."""
    m = TS_RE.fullmatch(text)
    assert m, f"timestamp {text!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ"
    date, hh, mm, ss, ms = m.groups()
    day = _day_cache.get(date)
    if day is None:
        day = (datetime.date.fromisoformat(date) - datetime.date(1970, 1, 1)).days
        _day_cache[date] = day
    h, mi, s = int(hh), int(mm), int(ss)
    assert h < 24 and mi < 60 and s < 60, f"timestamp {text!r} out of range"
    return day * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000 + int(ms)


def parse_lines(data, prefix=None):
    """Parses JSON Lines into dicts (floats kept as their text). With prefix,
    only lines starting with it are parsed (a cheap filter on the type)."""
    lines = data.splitlines()
    if prefix is not None:
        lines = [ln for ln in lines if ln.startswith(prefix)]
    if not lines:
        return []
    # One document for the whole stream: much faster than a loads() per line,
    # and repeated keys share one string.
    return json.loads(b"[" + b",".join(lines) + b"]", parse_float=str)


class Stream:
    """A generated stream: its events and the usual groupings."""

    def __init__(self, args, events):
        self.args = args
        self.events = events
        self.orders = [e for e in events if e["type"] == "order"]
        self.payments = [e for e in events if e["type"] == "payment"]
        self.cancellations = [e for e in events if e["type"] == "cancellation"]
        self._by_order = None

    @property
    def by_order(self):
        """order_id -> {"order": ev, "payments": [...], "cancellations": [...]}, in stream order."""
        if self._by_order is None:
            m = defaultdict(lambda: {"order": None, "payments": [], "cancellations": []})
            for e in self.events:
                t = e["type"]
                if t == "order":
                    m[e["order_id"]]["order"] = e
                elif t == "payment":
                    m[e["order_id"]]["payments"].append(e)
                else:
                    m[e["order_id"]]["cancellations"].append(e)
            self._by_order = dict(m)
        return self._by_order


class Generator:
    """Generates and caches streams and effective profiles for one session."""

    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self._raw = {}
        self._streams = {}
        self._profiles = {}
        self._files = {}

    def profile_file(self, override):
        """Writes an override document once; returns its path (None for none)."""
        if override is None:
            return None
        text = json.dumps(override, sort_keys=True)
        path = self._files.get(text)
        if path is None:
            path = self.tmpdir / f"profile{len(self._files)}.json"
            path.write_text(text)
            self._files[text] = path
        return path

    def profile(self, override=None):
        """The effective profile (defaults merged with override), from --print-profile."""
        key = json.dumps(override, sort_keys=True)
        if key not in self._profiles:
            args = ["gen", "--print-profile"]
            path = self.profile_file(override)
            if path is not None:
                args += ["--profile", path]
            self._profiles[key] = json.loads(run(*args).stdout)
        return self._profiles[key]

    def _generate(self, seed, count, rate, start, override):
        return run(*gen_args(seed, count, rate, start, self.profile_file(override))).stdout

    def raw(self, seed, count, rate=None, start=START, override=None):
        """The stream's bytes, generated once."""
        key = (seed, count, rate, start, json.dumps(override, sort_keys=True))
        if key not in self._raw:
            self._raw[key] = self._generate(seed, count, rate, start, override)
        return self._raw[key]

    def stream(self, seed, count, rate=None, start=START, override=None, only=None):
        """The parsed Stream, generated and parsed once; only="order" parses the
        orders alone (faster). The raw bytes are not kept (see raw())."""
        key = (seed, count, rate, start, json.dumps(override, sort_keys=True), only)
        s = self._streams.get(key)
        if s is None:
            data = self._raw.get(key[:5]) or self._generate(seed, count, rate, start, override)
            prefix = None if only is None else b'{"type":"%s"' % only.encode()
            s = self._streams[key] = Stream(key, parse_lines(data, prefix))
        return s


@pytest.fixture(scope="session")
def gen(tmp_path_factory):
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    return Generator(tmp_path_factory.mktemp("gen"))


@pytest.fixture(scope="session")
def profile(gen):
    """The built-in profile, as the binary reports it."""
    return gen.profile()


# The streams the tests share. Fixed seeds keep the tests reproducible; the
# thresholds are several standard errors wide and pass with other seeds too.

# A few days of a busy shop: every per-order property and the payment process.
MAIN = dict(seed=7, count=200_000, rate=0.5)
# Ten weeks of a quiet shop (orders only): arrivals over time, trends, campaigns.
LONG = dict(seed=11, count=121_000, rate=0.02)


@pytest.fixture(scope="session")
def main_stream(gen):
    return gen.stream(**MAIN)


@pytest.fixture(scope="session")
def long_orders(gen):
    return gen.stream(**LONG, only="order").orders


# ---- the stream engine: `shopstream process` and its hot store ----
#
# Helpers shared by the test_engine_*.py files. Stores are compared with SQL
# (ATTACH and EXCEPT in both directions), so that tables of hundreds of
# thousands of rows are compared inside SQLite, not as Python objects.

import sqlite3  # noqa: E402  (kept with the engine helpers it serves)

# Midnight UTC of a Monday, as the engine tests pass it to `gen --start`.
ENGINE_START = "2026-11-02T00:00:00Z"

# Columns that hold the wall clock at processing time: they differ between runs.
# Columns that differ between equal runs: when a record arrived, and which
# process holds a shard.
WALL_CLOCK_COLUMNS = ("received_at", "shard_state.owner")

# Tables the engine derives from the input (everything but its bookkeeping).
DERIVED_TABLES = (
    "orders_data", "payments_data", "cancellations_data", "kpi_minute_data", "customers",
    "products", "categories", "countries", "cities", "payment_methods", "order_statuses",
    "time_minutes", "rejected_events", "late_events", "meta",
)

SANITIZER_MARKS = ("Sanitizer", "runtime error", "Segmentation", "core dumped")


def process(data_dir, source="-", *extra, input=None, binary=None, timeout=300):
    """Runs `shopstream process --from source --data data_dir [extra]` with a clean
    environment; input goes to stdin: bytes through a pipe, or a Path whose file
    becomes stdin itself (as with `< FILE` in a shell). Asserts exit 0 and no
    sanitizer report; returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    args = [binary or BIN, "process", "--from", str(source), "--data", str(data_dir),
            *map(str, extra)]
    if isinstance(input, Path):
        with open(input, "rb") as f:
            proc = subprocess.run(args, stdin=f, capture_output=True, timeout=timeout, env=env)
    else:
        proc = subprocess.run(args, input=input if input is not None else b"",
                              capture_output=True, timeout=timeout, env=env)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, f"{' '.join(args[1:])} exited {proc.returncode}:\n{err[-3000:]}"
    for mark in SANITIZER_MARKS:
        assert mark not in err, f"{' '.join(args[1:])}:\n{err[-5000:]}"
    return proc


def hot_db(data_dir):
    return Path(data_dir) / "hot.db"


def connect_ro(data_dir):
    """A read-only connection to DIR/hot.db."""
    return store_db(f"file:{hot_db(data_dir)}?mode=ro", uri=True)


def engine_state(data_dir):
    """engine_state as a dict (watermark, max_ts, events_in, stored, ...)."""
    with connect_ro(data_dir) as db:
        return dict(db.execute("SELECT key, value FROM engine_state"))


def fact_and_kpi_totals(data_dir):
    """(orders, payments, cancellations) stored as facts; the same counts and
    the gross revenue in cents from the overall KPI rows; and the gross
    revenue in cents from the orders: a consistent store has kpi[:3] == facts
    and kpi[3] == gross."""
    with connect_ro(data_dir) as db:
        facts = db.execute(
            "SELECT (SELECT count(*) FROM orders_data), (SELECT count(*) FROM payments_data),"
            " (SELECT count(*) FROM cancellations_data)").fetchone()
        kpi = db.execute(
            "SELECT sum(orders), sum(payment_attempts), sum(cancellations),"
            " sum(gross_revenue_cents) FROM kpi_minute_data WHERE dimension = 'overall'"
        ).fetchone()
        gross = db.execute("SELECT sum(total_price_cents) FROM orders_data").fetchone()[0]
    return facts, kpi, gross


def positions(data_dir):
    with connect_ro(data_dir) as db:
        return dict(db.execute("SELECT source, position FROM ingest_positions"))


def table_counts(data_dir, tables=("orders_data", "payments_data", "cancellations_data",
                                   "rejected_events", "late_events", "kpi_minute_data")):
    with connect_ro(data_dir) as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def _columns(db, schema, table, exclude):
    cols = [r[1] for r in db.execute(f"PRAGMA {schema}.table_info({table})")]
    return [c for c in cols if c not in exclude]


def store_diff(dir_a, dir_b, tables=None, exclude=WALL_CLOCK_COLUMNS, examples=3):
    """Compares two hot stores table by table, ignoring the columns in exclude
    (a name, or "table.column" for one table). Returns a list of differences,
    empty when the stores hold the same rows; tables=None compares every table
    by its rows: the fact tables row by row, not the blocks that hold them,
    which runs split differently."""
    db = store_db(f"file:{hot_db(dir_a)}?mode=ro", uri=True)
    db.execute("ATTACH ? AS b", (f"file:{hot_db(dir_b)}?mode=ro",))
    diffs = []
    try:
        names = {s: {r[0] for r in db.execute(
            f"SELECT name FROM {s}.sqlite_master WHERE type = 'table' AND name NOT LIKE "
            "'%\\_blocks' ESCAPE '\\' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
            for s in ("main", "b")}
        if tables is None:
            if names["main"] != names["b"]:
                diffs.append(f"table sets differ: {sorted(names['main'] ^ names['b'])}")
            tables = sorted(names["main"] & names["b"])
        for t in tables:
            ex = {e.split(".", 1)[-1] for e in exclude if "." not in e or e.startswith(t + ".")}
            cols = _columns(db, "main", t, ex)
            if cols != _columns(db, "b", t, ex):
                diffs.append(f"{t}: columns differ")
                continue
            sel = ", ".join(f'"{c}"' for c in cols) or "NULL"
            na = db.execute(f"SELECT count(*) FROM main.{t}").fetchone()[0]
            nb = db.execute(f"SELECT count(*) FROM b.{t}").fetchone()[0]
            only_a = db.execute(f"SELECT {sel} FROM main.{t} EXCEPT SELECT {sel} FROM b.{t}"
                                f" LIMIT {examples}").fetchall()
            only_b = db.execute(f"SELECT {sel} FROM b.{t} EXCEPT SELECT {sel} FROM main.{t}"
                                f" LIMIT {examples}").fetchall()
            if na != nb or only_a or only_b:
                def short(rows):
                    return [tuple(v[:80] + b"..." if isinstance(v, bytes) and len(v) > 80 else v
                                  for v in r) for r in rows]
                diffs.append(f"{t}: {na} rows vs {nb}; only in {dir_a}: {short(only_a)}; "
                             f"only in {dir_b}: {short(only_b)}")
    finally:
        db.close()
    return diffs


def assert_same_store(dir_a, dir_b, tables=None, exclude=WALL_CLOCK_COLUMNS):
    diffs = store_diff(dir_a, dir_b, tables, exclude)
    assert not diffs, "stores differ:\n  " + "\n  ".join(diffs)


@pytest.fixture(scope="session")
def gen_file(tmp_path_factory):
    """gen_file(seed, count, start=ENGINE_START) -> Path of a generated JSON Lines
    file (`gen --max`), written once per session with --out."""
    made = {}
    base = None

    def make(seed, count, start=ENGINE_START):
        nonlocal base
        key = (seed, count, start)
        if key not in made:
            if base is None:
                if not os.access(BIN, os.X_OK):
                    pytest.fail(f"shopstream binary not found at {BIN}; build it or set "
                                "SHOPSTREAM_BIN")
                base = tmp_path_factory.mktemp("engine-input")
            path = base / f"gen-{seed}-{count}-{len(made)}.jsonl"
            run(*gen_args(seed, count, start=start), "--out", path)
            made[key] = path
        return made[key]

    return make


# ---- hand-written events with exact money ----

class RawJSON:
    """A value written into a JSON line as it is (money, or deliberately bad text)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return f"RawJSON({self.text!r})"


def money(c):
    """Money as the data contract writes it: a number with exactly two decimals."""
    assert c >= 0
    return RawJSON(f"{c // 100}.{c % 100:02d}")


def iso(ms):
    """ISO-8601 UTC text with milliseconds, as in `ts`."""
    t = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def json_line(fields):
    """One JSON Lines record (bytes, no newline) from a dict or (key, value) pairs
    in order; RawJSON values are written verbatim, others with json.dumps."""
    items = fields.items() if isinstance(fields, dict) else fields
    parts = []
    for k, v in items:
        val = v.text if isinstance(v, RawJSON) else json.dumps(v, ensure_ascii=False)
        parts.append(json.dumps(k) + ":" + val)
    return ("{" + ",".join(parts) + "}").encode()


TEST_TAG = "0123456789ab"


def order_fields(n, ts, city="Berlin", country="Germany", category="Electronics",
                 payment_method="card", quantity=2, unit_price=1999, discount=0,
                 vat_percent=19, shipping=499, tag=TEST_TAG):
    """A valid order event as a dict (money consistent to the cent); ts in ms."""
    amount = quantity * unit_price
    net = amount - discount
    tax = (net * vat_percent * 2 + 100) // 200  # half up
    return {
        "type": "order", "event_id": f"e-{tag}-{n}-o", "order_id": f"o-{tag}-{n}",
        "ts": iso(ts), "customer_id": f"c-{tag}-{n}", "customer_segment": "regular",
        "product_id": f"P{n % 1000000:06d}", "product_name": f"Test Product {n}",
        "category": category, "city": city, "country": country, "quantity": quantity,
        "unit_price": money(unit_price), "amount": money(amount), "discount": money(discount),
        "tax": money(tax), "shipping": money(shipping),
        "total_price": money(net + tax + shipping), "currency": "EUR",
        "payment_method": payment_method,
    }


def order_total_cents(order):
    return cents(order["total_price"].text)


def payment_fields(n, ts, amount, attempt=1, success=True, payment_method="card",
                   failure_reason="declined", tag=TEST_TAG):
    """A valid payment event for order n; amount in cents."""
    ev = {"type": "payment", "event_id": f"e-{tag}-{n}-p{attempt}", "order_id": f"o-{tag}-{n}",
          "ts": iso(ts), "payment_method": payment_method, "amount": money(amount),
          "status": "success" if success else "failed"}
    if not success:
        ev["failure_reason"] = failure_reason
    ev["attempt"] = attempt
    return ev


def cancellation_fields(n, ts, refund, reason="customer_request", tag=TEST_TAG):
    """A valid cancellation event for order n; refund in cents."""
    return {"type": "cancellation", "event_id": f"e-{tag}-{n}-c", "order_id": f"o-{tag}-{n}",
            "ts": iso(ts), "reason": reason, "refund": money(refund)}

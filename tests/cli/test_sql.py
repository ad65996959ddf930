"""Black-box tests of `shopstream sql`: the read-only guard, errors, the three
output formats, the row and time limits, several statements in one call, and
raw bytes of rejected input printed safely.

One small store is built for the module: `shopstream gen` (fixed seed and
start) plus lines that are not valid events (invalid JSON, invalid UTF-8,
control characters), then `shopstream process`.

The binary comes from SHOPSTREAM_BIN (CMake sets it for ctest), else
build/shopstream under the repository root.
"""

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from harness import BIN, REPO, assert_ok, clean_env, cli, describe


SEED, COUNT, START = 3, 2000, "2026-11-02T00:00:00Z"

# Input lines that are not events; their raw bytes land in rejected_events.
# Printable ones are shown as text, the others as x'<hex>'.
PRINTABLE_BAD = [
    b'{"type":"order","oops"',
    b"not json, \"quoted\" \\ and \xc3\xa9t\xc3\xa9 \xe2\x82\xac",
]
BINARY_BAD = [
    b"\xff\xfe binary",              # not UTF-8 at all
    b"a\xc0\x80b",                  # overlong encoding of NUL
    b"\xed\xa0\x80 surrogate",      # UTF-16 surrogate
    b"\xf4\x90\x80\x80 too high",   # past U+10FFFF
    b"\xe2\x82",                    # truncated sequence
    b"nul \x00 inside",             # NUL byte
    b"esc \x1b[31mred\x1b[0m",      # terminal escape sequence
    b"bell \x07 and del \x7f",      # other control characters
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    tmp = tmp_path_factory.mktemp("sql")
    raw = assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--max", "--start", START)).stdout
    src = tmp / "events.jsonl"
    src.write_bytes(raw + b"\n".join(PRINTABLE_BAD + BINARY_BAD) + b"\n")
    proc = assert_ok(cli("process", "--from", src, "--data", tmp / "data"))
    assert f"{len(PRINTABLE_BAD) + len(BINARY_BAD)} rejected" in proc.stderr.decode()
    return {"data": tmp / "data", "tmp": tmp, "raw": raw}


def sql(store, query, *extra, timeout=60):
    return cli("sql", query, "--data", store["data"], *extra, timeout=timeout)


def sql_json(store, query):
    proc = assert_ok(sql(store, query, "--format", "json"))
    return json.loads(proc.stdout)


# ---- the guard: nothing that writes runs ----

TABLES = ["orders_data", "payments_data", "cancellations_data", "kpi_minute_data", "customers",
          "products", "categories", "countries", "cities", "payment_methods", "order_statuses",
          "time_minutes", "rejected_events", "late_events", "meta", "engine_state",
          "ingest_positions", "sqlite_master"]


def snapshot(store):
    """Row counts of every table, the schema version and the file's digest."""
    q = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in TABLES)
    counts = {r["t"]: r["n"] for r in sql_json(store, q)}
    # Sums that change if any row were rewritten in place.
    [sums] = sql_json(store, "SELECT sum(total_price_cents) AS o, sum(quantity) AS q, "
                             "(SELECT sum(amount_cents) FROM payments_data) AS p, "
                             "(SELECT sum(orders) FROM kpi_minute_data) AS k FROM orders_data")
    digest = hashlib.sha256((store["data"] / "hot.db").read_bytes()).hexdigest()
    return counts, sums, digest


WRITES = [
    ("insert", "INSERT INTO categories VALUES ('Spaceships')"),
    ("insert-select", "INSERT INTO orders_data SELECT * FROM orders_data"),
    ("insert-view", "INSERT INTO orders (order_id) VALUES ('o-1')"),
    ("upsert", "INSERT INTO categories VALUES ('Books') ON CONFLICT DO NOTHING"),
    ("update", "UPDATE orders_data SET quantity = quantity + 1"),
    ("update-view", "UPDATE orders SET quantity = 0"),
    ("delete", "DELETE FROM payments_data"),
    ("delete-view", "DELETE FROM orders"),
    ("delete-where", "DELETE FROM kpi_minute_data WHERE final = 1"),
    ("drop-table", "DROP TABLE categories"),
    ("drop-view", "DROP VIEW orders"),
    ("drop-index", "DROP INDEX orders_blocks_min"),
    ("create-table", "CREATE TABLE scratch (x)"),
    ("create-table-as", "CREATE TABLE copy AS SELECT * FROM orders"),
    ("create-index", "CREATE INDEX by_reason ON rejected_events (reason)"),
    ("create-view", "CREATE VIEW v AS SELECT 1"),
    ("create-temp", "CREATE TEMP TABLE scratch (x)"),
    ("create-trigger", "CREATE TRIGGER t AFTER INSERT ON categories BEGIN SELECT 1; END"),
    ("alter", "ALTER TABLE categories ADD COLUMN colour TEXT"),
    ("attach", "ATTACH DATABASE '{tmp}/attached.db' AS other"),
    ("pragma-query-only", "PRAGMA query_only = 0"),
    ("pragma-journal", "PRAGMA journal_mode = DELETE"),
    ("pragma-user-version", "PRAGMA user_version = 7"),
    ("pragma-call-form", "PRAGMA user_version(7)"),
    ("replace", "REPLACE INTO categories VALUES ('Books')"),
    ("insert-or-replace", "INSERT OR REPLACE INTO meta VALUES ('schema', 'x')"),
    ("cte-insert", "WITH x AS (SELECT 'Zeppelins' AS c) INSERT INTO categories SELECT c FROM x"),
    ("write-after-read", "SELECT count(*) FROM orders; DELETE FROM orders_data"),
    ("write-after-reads", "SELECT 1; SELECT 2; DROP TABLE meta; SELECT 3"),
    ("vacuum", "VACUUM"),
    ("vacuum-into", "VACUUM INTO '{tmp}/copy.db'"),
    ("reindex", "REINDEX"),
    ("analyze", "ANALYZE"),
    ("begin", "BEGIN IMMEDIATE"),
    ("savepoint", "SAVEPOINT s"),
]


@pytest.mark.parametrize("query", [pytest.param(q, id=i) for i, q in WRITES])
def test_write_is_refused(store, query):
    before = snapshot(store)
    query = query.replace("{tmp}", str(store["tmp"]))
    proc = sql(store, query)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, describe(proc)
    assert "read-only" in err, describe(proc)
    assert err.startswith("shopstream sql: ") and err.endswith("\n"), err
    assert proc.stdout == b"", describe(proc)
    assert snapshot(store) == before, f"the store changed after: {query}"
    # No file was written on the side either.
    assert not (store["tmp"] / "copy.db").exists()
    assert not (store["tmp"] / "attached.db").exists()


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_write_after_read_prints_nothing(store, fmt):
    """Every statement is checked before the first one runs."""
    proc = sql(store, "SELECT * FROM orders LIMIT 5; INSERT INTO categories VALUES ('x')",
               "--format", fmt)
    assert proc.returncode == 2 and proc.stdout == b"", describe(proc)
    assert b"read-only" in proc.stderr


def test_describing_pragmas_are_allowed(store):
    rows = sql_json(store, "PRAGMA table_info(orders)")
    names = [r["name"] for r in rows]
    assert names[:3] == ["event_id", "order_id", "ts"] and "total_price" in names
    assert {r["name"] for r in sql_json(store, "PRAGMA table_list")} >= {"orders", "kpi_minute"}
    assert sql_json(store, "PRAGMA index_list(orders_blocks)")


def test_functions_and_recursive_ctes_are_allowed(store):
    [row] = sql_json(store, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                            "WHERE i < 10) SELECT sum(i) AS s, upper('x') AS u, "
                            "strftime('%Y', '2026-11-02') AS y FROM n")
    assert row == {"s": 55, "u": "X", "y": "2026"}


# ---- errors ----

@pytest.mark.parametrize("query,needles", [
    ("SELEC 1", ["invalid SQL", 'near "SELEC": syntax error']),
    ("SELECT * FROM no_such_table", ["invalid SQL", "no such table: no_such_table"]),
    ("SELECT no_such_column FROM orders", ["invalid SQL", "no such column: no_such_column"]),
    ("SELECT 1; SELECT FROM", ["invalid SQL", "syntax error"]),
    ("", ["no SQL statement given"]),
    (" ; ;", ["no SQL statement given"]),
])
def test_invalid_sql(store, query, needles):
    proc = sql(store, query)
    err = proc.stderr.decode()
    assert proc.returncode == 2, describe(proc)
    assert proc.stdout == b"", describe(proc)
    for needle in needles:
        assert needle in err, describe(proc)


def test_missing_store(tmp_path):
    missing = tmp_path / "nowhere"
    proc = cli("sql", "SELECT 1", "--data", missing)
    err = proc.stderr.decode()
    assert proc.returncode == 2, describe(proc)
    assert proc.stdout == b""
    assert f"no hot store at '{missing}/hot.db'" in err, err
    assert "shopstream process" in err and "shopstream run" in err, err
    assert not missing.exists(), "sql created the data directory"


def test_usage_mistakes(store):
    for args in (["sql"], ["sql", "SELECT 1", "SELECT 2"]):
        proc = cli(*args, "--data", store["data"])
        assert proc.returncode == 2 and proc.stdout == b"", describe(proc)
        assert b"exactly one query" in proc.stderr
    proc = sql(store, "SELECT 1", "--format", "xml")
    assert proc.returncode == 2 and b"--format" in proc.stderr, describe(proc)


# ---- formats ----

def test_table_format(store):
    proc = assert_ok(sql(store, "SELECT city, count(*) AS orders, round(sum(total_price), 2) "
                                "AS revenue FROM orders GROUP BY city ORDER BY orders DESC, city "
                                "LIMIT 5"))
    lines = proc.stdout.decode().split("\n")
    assert lines[-1] == "" and lines[-2] == "(5 rows)", lines
    header, dashes, rows = lines[0], lines[1], lines[2:-2]
    assert header.split() == ["city", "orders", "revenue"]
    assert re.fullmatch(r"-+  -+  -+", dashes), dashes
    assert len(rows) == 5
    # Columns line up: every column starts where the header's does.
    starts = [m.start() for m in re.finditer(r"-+", dashes)]
    widths = [m.end() - m.start() for m in re.finditer(r"-+", dashes)]
    for line in [header] + rows:
        for s, w in zip(starts[1:], widths[1:]):
            assert line[s - 2:s] == "  " and line[s:s + w].strip(), (line, dashes)
    for row in rows:
        assert re.search(r"\s[0-9]+\.[0-9]{2}$", row), row  # money with two decimals
    one = assert_ok(sql(store, "SELECT 1 AS x")).stdout.decode()
    assert one == "x\n-\n1\n(1 row)\n"
    none = assert_ok(sql(store, "SELECT order_id FROM orders WHERE 0")).stdout.decode()
    assert none == "order_id\n--------\n(0 rows)\n"


def test_csv_format(store):
    proc = assert_ok(sql(store, "SELECT order_id, quantity, total_price, category FROM orders "
                                "ORDER BY ts LIMIT 20", "--format", "csv"))
    rows = list(csv.reader(io.StringIO(proc.stdout.decode(), newline="")))
    assert rows[0] == ["order_id", "quantity", "total_price", "category"]
    assert len(rows) == 21
    for r in rows[1:]:
        assert r[0].startswith("o-") and r[1].isdigit()
        assert re.fullmatch(r"[0-9]+\.[0-9]{2}", r[2]), r
    # Quoting: commas, quotes and line breaks survive a round trip; NULL is empty.
    tricky = ['a,b', 'say "hi"', "two\nlines", "plain"]
    q = "SELECT " + ", ".join(f"'{t}' AS c{i}" for i, t in enumerate(tricky)) + ", NULL AS n"
    out = assert_ok(sql(store, q, "--format", "csv")).stdout.decode()
    assert list(csv.reader(io.StringIO(out, newline=""))) == \
        [["c0", "c1", "c2", "c3", "n"], tricky + [""]]


def test_json_format(store):
    proc = assert_ok(sql(store, "SELECT order_id, quantity, unit_price, total_price, discount "
                                "FROM orders ORDER BY ts", "--format", "json"))
    text = proc.stdout.decode()
    rows = json.loads(text)
    assert len(rows) == COUNT
    assert all(isinstance(r["quantity"], int) for r in rows)
    # Money prints with exactly two decimals, as the generator wrote it:
    # 27.30, not 27.3; 0.00, not 0.
    for key in ("unit_price", "total_price", "discount"):
        values = re.findall(rf'"{key}":([^,}}]+)', text)
        assert len(values) == COUNT
        bad = [v for v in values if not re.fullmatch(r"[0-9]+\.[0-9]{2}", v)]
        assert not bad, f"{key} values without two decimals: {bad[:5]}"
    generated = {}
    for line in store["raw"].splitlines():
        if line.startswith(b'{"type":"order"'):
            oid = re.search(rb'"order_id":"([^"]+)"', line).group(1).decode()
            generated[oid] = re.search(rb'"total_price":([0-9.]+)', line).group(1).decode()
    printed = dict(re.findall(r'"order_id":"([^"]+)","quantity":[0-9]+,"unit_price":[0-9.]+,'
                              r'"total_price":([0-9.]+)', text))
    assert printed == generated
    assert any(v.endswith("0") for v in printed.values()), "no total ending in 0 to check"

    [row] = json.loads(assert_ok(sql(store, "SELECT count(*) AS n, 7 / 2 AS i, 7 / 2.0 AS r, "
                                            "0.1 + 0.2 > 0.3 AS b, NULL AS z, 'a\"b\\c\n' AS s, "
                                            "avg(quantity) AS a FROM orders",
                                     "--format", "json")).stdout)
    assert row["n"] == COUNT and isinstance(row["n"], int)
    assert row["i"] == 3 and isinstance(row["i"], int)
    assert row["r"] == 3.5 and row["b"] == 1 and row["z"] is None
    assert row["s"] == 'a"b\\c\n'
    assert isinstance(row["a"], float) and 1 <= row["a"] <= 10
    assert assert_ok(sql(store, "SELECT 1 WHERE 0", "--format", "json")).stdout == b"[]\n"


def test_real_numbers(store):
    """Whole-cent values (money) print with two decimals, sums of money too;
    other numbers keep their digits. Regression: every number from 5000 up
    printed rounded to two decimals (105806.244 as 105806.24)."""
    text = assert_ok(sql(store, "SELECT 105806.244 AS a, 12345.678 AS b, 1e-9 AS c, "
                                "julianday('2026-11-02T12:34:56.789Z') AS jd, 0.1 + 0.2 AS m, "
                                "2730 / 100.0 AS p, 1e6 / 3 AS t", "--format", "json")).stdout
    row = json.loads(text)[0]
    assert row["a"] == 105806.244 and row["b"] == 12345.678 and row["c"] == 1e-9
    assert abs(row["jd"] - 2461347.024268391) < 1e-8
    assert row["t"] == pytest.approx(333333.333333333, rel=1e-14)
    assert b'"m":0.30' in text and b'"p":27.30' in text, text
    # Sums over the money views: exact, with two decimals.
    want = {"total_price": 0, "tax": 0, "discount": 0}
    for line in store["raw"].splitlines():
        if line.startswith(b'{"type":"order"'):
            for key in want:
                v = re.search(rb'"%s":([0-9]+)\.([0-9]{2})' % key.encode(), line)
                want[key] += int(v.group(1)) * 100 + int(v.group(2))
    text = assert_ok(sql(store, "SELECT sum(total_price) AS total_price, sum(tax) AS tax, "
                                "sum(discount) AS discount FROM orders",
                         "--format", "json")).stdout.decode()
    for key, c in want.items():
        assert f'"{key}":{c // 100}.{c % 100:02d}' in text, (key, c, text)


def test_null_and_text_values(store):
    rows = sql_json(store, "SELECT status, failure_reason FROM payments ORDER BY ts LIMIT 200")
    assert any(r["status"] == "success" and r["failure_reason"] is None for r in rows)


# ---- limits ----

def test_max_rows(store):
    ok = assert_ok(sql(store, "SELECT order_id FROM orders LIMIT 10", "--max-rows", "10",
                       "--format", "csv"))
    assert len(ok.stdout.decode().splitlines()) == 11
    for fmt in ("table", "csv", "json"):
        proc = sql(store, "SELECT order_id FROM orders", "--max-rows", "10", "--format", fmt)
        assert proc.returncode == 1, describe(proc)
        assert b"more than 10 rows" in proc.stderr and b"LIMIT" in proc.stderr, describe(proc)
        # No partial result that could pass for the whole answer.
        assert proc.stdout == b"", describe(proc)


def test_timeout_stops_a_slow_query(store):
    slow = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < 1000000000) SELECT count(*) FROM n")
    t0 = time.monotonic()
    proc = sql(store, slow, "--timeout-ms", "300", timeout=120)
    elapsed = time.monotonic() - t0
    assert proc.returncode not in (0, 2) and proc.returncode > 0, describe(proc)
    assert b"ran longer than 300 ms and was stopped" in proc.stderr, describe(proc)
    assert proc.stdout == b""
    # Counting to 1e9 takes minutes; the limit stopped it long before.
    assert elapsed < 30, f"took {elapsed:.1f} s"
    # A quick query under the same limit answers normally.
    assert assert_ok(sql(store, "SELECT count(*) FROM orders", "--timeout-ms", "300",
                         "--format", "csv")).stdout == f"count(*)\r\n{COUNT}\r\n".encode()


# ---- several statements ----

def test_multiple_statements(store):
    q = ("SELECT count(*) AS orders FROM orders; "
         "SELECT status, count(*) AS n FROM payments GROUP BY status ORDER BY status;")
    table = assert_ok(sql(store, q)).stdout.decode()
    assert table.count("(1 row)\n") == 1 and table.count("(2 rows)\n") == 1, table
    assert table.index("orders") < table.index("status")

    text = assert_ok(sql(store, q, "--format", "json")).stdout.decode()
    dec, pos, docs = json.JSONDecoder(), 0, []
    while text[pos:].strip():
        doc, pos = dec.raw_decode(text, pos + (len(text[pos:]) - len(text[pos:].lstrip())))
        docs.append(doc)
    assert docs[0] == [{"orders": COUNT}]
    assert [r["status"] for r in docs[1]] == ["failed", "success"]

    lines = assert_ok(sql(store, q, "--format", "csv")).stdout.decode().split("\r\n")
    assert lines[:2] == ["orders", str(COUNT)] and lines[2] == "status,n"


# ---- raw bytes of rejected input ----

def rejected(store, fmt):
    proc = assert_ok(sql(store, "SELECT raw, raw_bytes FROM rejected_events ORDER BY position",
                         "--format", fmt))
    return proc.stdout


def expected_raw(line):
    return line.decode() if line in PRINTABLE_BAD else f"x'{line.hex()}'"


def test_rejected_blobs_json(store):
    out = rejected(store, "json")
    rows = json.loads(out.decode("utf-8"))  # strict UTF-8
    assert [r["raw"] for r in rows] == [expected_raw(b) for b in PRINTABLE_BAD + BINARY_BAD]
    assert [r["raw_bytes"] for r in rows] == [len(b) for b in PRINTABLE_BAD + BINARY_BAD]


@pytest.mark.parametrize("fmt", ["table", "csv"])
def test_rejected_blobs_text(store, fmt):
    out = rejected(store, fmt)
    text = out.decode("utf-8")  # strict UTF-8
    controls = [c for c in text if (ord(c) < 0x20 and c not in "\r\n") or ord(c) == 0x7f]
    assert not controls, f"raw control characters in {fmt} output: {controls}"
    want = [expected_raw(b) for b in PRINTABLE_BAD + BINARY_BAD]
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert [r[0] for r in rows[1:]] == want
    else:
        lines = text.split("\n")
        assert lines[-2] == f"({len(want)} rows)"
        assert [ln.rsplit("  ", 1)[0].rstrip() for ln in lines[2:-2]] == want

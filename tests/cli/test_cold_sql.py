"""Black-box tests of `shopstream sql` over hot and cold storage together
(docs/lifecycle.md): the union views, the cold virtual tables, pruning by ts,
which archives count, errors for missing or damaged files, and the read-only
guard.

The cold data is made by hand, not by the archiver: a store is built with
`shopstream gen --max` and `shopstream process`, then the events of its first
hours are written as JSON Lines files in the cold layout (two committed
archives, one plain and one gzip, one of them with its manifest only in
COLD/_archives/), an uncommitted archive and a stray file are added, and the
moved rows are deleted from the hot store with sqlite3. What `sql` answered
before the move is what it must answer after it.

The binary comes from SHOPSTREAM_BIN (CMake sets it for ctest), else
build/shopstream under the repository root.
"""

import gzip
import hashlib
import json
import os
import re
import shutil
import sqlite3
import zlib
from pathlib import Path

import pytest

from harness import BIN, assert_ok, cli, describe
from storedb import store_db


SEED, COUNT, RATE, START = 5, 3000, 0.2, "2026-11-02T00:00:00Z"
DAY = "2026-11-02"
CUTOFF = f"{DAY}T04:00:00.000Z"  # hours 00 to 03 move to cold storage

COLS = {
    "orders": ["event_id", "order_id", "ts", "customer_id", "customer_segment", "product_id",
               "product_name", "category", "city", "country", "quantity", "unit_price", "amount",
               "discount", "tax", "shipping", "total_price", "currency", "payment_method"],
    "payments": ["event_id", "order_id", "ts", "payment_method", "amount", "status",
                 "failure_reason", "attempt", "city", "country", "category"],
    "cancellations": ["event_id", "order_id", "ts", "reason", "refund", "city", "country",
                      "category", "payment_method"],
}
TABLES = list(COLS)

# Two committed archives (hours 00-01 as .jsonl with the manifest in the
# archives row; hours 02-03 as .jsonl.gz with the manifest only in its file),
# one still being written (a copy of hour 04, which stays hot).
ARCHIVE_A = "20261124T150000000Z-aaaaaaaa"
ARCHIVE_B = "20261124T150100000Z-bbbbbbbb"
ARCHIVE_W = "20261124T150200000Z-cccccccc"
PLAN = [(ARCHIVE_A, "committed", [0, 1], False, True),
        (ARCHIVE_B, "committed", [2, 3], True, False),
        (ARCHIVE_W, "writing", [4], False, True)]

OPENED_RE = re.compile(r"\[query:cold\] (\w+): opened (\d+) of (\d+) files")


def sql(data, query, *extra, timeout=60):
    return cli("sql", query, "--data", data, *extra, timeout=timeout)


def sql_json(data, query, *extra):
    return json.loads(assert_ok(sql(data, query, "--format", "json", *extra)).stdout)


def opened(proc):
    """{table: (opened, listed)} from the debug log of a query."""
    return {t: (int(n), int(m)) for t, n, m in OPENED_RE.findall(proc.stderr.decode())}


def typed_rows(table, source, where=""):
    """Every column of every row, with typeof() of each, in event_id order."""
    types = " || ',' || ".join(f"typeof({c})" for c in COLS[table])
    return f"SELECT *, {types} AS types FROM {source} {where} ORDER BY event_id"


def money(cents):
    return f"{cents // 100}.{cents % 100:02d}"


def cold_line(table, row):
    """A JSON line of the cold layout from a *_data row: money with two
    decimals from the integer cents, failure_reason absent when NULL."""
    parts = []
    for c in COLS[table]:
        if f"{c}_cents" in row.keys():
            parts.append(f"{json.dumps(c)}:{money(row[c + '_cents'])}")
        elif row[c] is not None:
            parts.append(f"{json.dumps(c)}:{json.dumps(row[c], ensure_ascii=False)}")
    return ("{" + ",".join(parts) + "}\n").encode()


def write_archive(data, cold, archive_id, state, hours, gz, manifest_in_row):
    """Writes one archive's files and manifest for the hours; with state
    'committed' also deletes its rows from the hot store."""
    db = store_db(data / "hot.db")
    db.row_factory = sqlite3.Row
    db.execute("CREATE TABLE IF NOT EXISTS archives (archive_id TEXT PRIMARY KEY, state TEXT "
               "NOT NULL, cutoff TEXT NOT NULL, created_at TEXT NOT NULL, manifest TEXT) "
               "WITHOUT ROWID")
    cutoff = f"{DAY}T{hours[-1] + 1:02d}:00:00.000Z"
    manifest = {"archive_id": archive_id, "archived_at": "2026-11-24T15:01:02.345Z",
                "source": f"sqlite:{data / 'hot.db'}", "cutoff": cutoff, "tables": {}}
    for t in TABLES:
        files, total, lo, hi = [], 0, None, None
        for h in hours:
            start, end = f"{DAY}T{h:02d}:00:00.000Z", f"{DAY}T{h + 1:02d}:00:00.000Z"
            rows = db.execute(f"SELECT * FROM {t}_data WHERE ts >= ? AND ts < ? "
                              "ORDER BY ts, event_id", (start, end)).fetchall()
            if not rows:
                continue
            rel = f"{t}/dt={DAY}/hour={h:02d}/part-{archive_id}.jsonl" + (".gz" if gz else "")
            body = b"".join(cold_line(t, r) for r in rows)
            blob = gzip.compress(body, mtime=0) if gz else body
            (cold / rel).parent.mkdir(parents=True, exist_ok=True)
            (cold / rel).write_bytes(blob)
            files.append({"path": rel, "records": len(rows), "bytes": len(blob),
                          "crc32": f"{zlib.crc32(blob):08x}", "min_ts": rows[0]["ts"],
                          "max_ts": rows[-1]["ts"]})
            total += len(rows)
            lo = lo or rows[0]["ts"]
            hi = rows[-1]["ts"]
        manifest["tables"][t] = {"records": total, "min_ts": lo, "max_ts": hi, "files": files}
    text = json.dumps(manifest, indent=1)
    (cold / "_archives").mkdir(parents=True, exist_ok=True)
    (cold / "_archives" / f"{archive_id}.json").write_text(text)
    db.execute("INSERT INTO archives VALUES (?, ?, ?, ?, ?)",
               (archive_id, state, cutoff, "2026-11-24T15:01:02.345Z",
                text if manifest_in_row else None))
    if state == "committed":
        for t in TABLES:
            db.execute(f"DELETE FROM {t}_data WHERE ts < ?", (cutoff,))
    db.commit()
    db.close()
    return manifest


QUERIES = {
    "counts": "SELECT (SELECT count(*) FROM orders) AS o, (SELECT count(*) FROM payments) AS p, "
              "(SELECT count(*) FROM cancellations) AS c",
    "sums": "SELECT (SELECT sum(total_price) FROM orders) AS total, "
            "(SELECT sum(quantity) FROM orders) AS units, "
            "(SELECT sum(tax) FROM orders) AS tax, "
            "(SELECT sum(amount) FROM payments) AS paid, "
            "(SELECT sum(refund) FROM cancellations) AS refunded",
    "cities": "SELECT city, country, count(*) AS orders, round(sum(total_price), 2) AS revenue, "
              "sum(quantity) AS units FROM orders GROUP BY city, country ORDER BY city",
    "payments": "SELECT city, status, failure_reason, count(*) AS n, round(sum(amount), 2) AS a "
                "FROM payments GROUP BY city, status, failure_reason "
                "ORDER BY city, status, failure_reason",
    "hours": "SELECT substr(ts, 1, 13) AS hour, count(*) AS n FROM orders GROUP BY hour "
             "ORDER BY hour",
    "join": "SELECT o.city, count(*) AS paid, round(sum(p.amount), 2) AS revenue "
            "FROM orders o JOIN payments p ON p.order_id = o.order_id "
            "WHERE p.status = 'success' GROUP BY o.city ORDER BY o.city",
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    tmp = tmp_path_factory.mktemp("cold-sql")
    src = tmp / "events.jsonl"
    assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--rate", RATE, "--max", "--start",
                  START, "--out", src))
    data, cold = tmp / "data", tmp / "data" / "cold"
    assert_ok(cli("process", "--from", src, "--data", data))
    # What the store answers before anything moves.
    before = {name: sql_json(data, q) for name, q in QUERIES.items()}
    rows = {t: sql_json(data, typed_rows(t, t)) for t in TABLES}
    manifests = {a: write_archive(data, cold, a, state, hours, gz, in_row)
                 for a, state, hours, gz, in_row in PLAN}
    # A stray file (no manifest lists it): a copy of hour 05, which stays hot.
    stray = cold / "orders" / f"dt={DAY}" / "hour=05" / "part-stray.jsonl"
    stray.parent.mkdir(parents=True)
    db = store_db(data / "hot.db")
    db.row_factory = sqlite3.Row
    stray.write_bytes(b"".join(cold_line("orders", r) for r in db.execute(
        f"SELECT * FROM orders_data WHERE ts >= '{DAY}T05' AND ts < '{DAY}T06'")))
    db.close()
    moved = {t: [r for r in rows[t] if r["ts"] < CUTOFF] for t in TABLES}
    assert all(moved[t] for t in TABLES), "nothing to move: the stream starts too late"
    return {"data": data, "cold": cold, "tmp": tmp, "before": before, "rows": rows,
            "moved": moved, "manifests": manifests}


def listed(store, table, archives=(ARCHIVE_A, ARCHIVE_B)):
    return [f for a in archives for f in store["manifests"][a]["tables"][table]["files"]]


def copy_store(store, dest):
    """A copy of the data directory (with its cold storage) to break."""
    shutil.copytree(store["data"], dest)
    return dest


# ---- hot and cold read as one ----

@pytest.mark.parametrize("name", list(QUERIES))
def test_union_answers_as_before_the_move(store, name):
    assert sql_json(store["data"], QUERIES[name]) == store["before"][name]


def test_cold_holds_what_moved(store):
    """hot_x and cold_x partition x: the moved rows in cold, the rest hot."""
    data = store["data"]
    for t in TABLES:
        [row] = sql_json(data, f"SELECT (SELECT count(*) FROM hot_{t}) AS hot, "
                               f"(SELECT count(*) FROM cold_{t}) AS cold, "
                               f"(SELECT max(ts) FROM cold_{t}) AS cold_max, "
                               f"(SELECT min(ts) FROM hot_{t}) AS hot_min, "
                               f"(SELECT count(*) FROM hot_{t} JOIN cold_{t} USING (event_id)) "
                               "AS both_sides")
        assert row["cold"] == len(store["moved"][t]), (t, row)
        assert row["hot"] + row["cold"] == len(store["rows"][t]), (t, row)
        assert row["cold_max"] < CUTOFF <= row["hot_min"], (t, row)
        assert row["both_sides"] == 0, (t, row)


@pytest.mark.parametrize("table", TABLES)
def test_union_table_reads_both_parts_whole(store, table):
    """The table over both (ss_union) gives every row of hot then cold with
    every column, typed as each part gives it, whichever columns a query
    names, and under comparisons of any column."""
    data = store["data"]
    both = sql_json(data, typed_rows(table, table))
    parts = sql_json(data, typed_rows(table, f"hot_{table}")) + \
        sql_json(data, typed_rows(table, f"cold_{table}"))
    key = lambda r: (r["ts"], r["event_id"])
    assert sorted(both, key=key) == sorted(parts, key=key) == sorted(store["rows"][table], key=key)
    for where in ["", f"WHERE ts >= '{CUTOFF}'", f"WHERE ts < '{CUTOFF}'",
                  "WHERE city = (SELECT min(city) FROM cities)", "WHERE order_id > 'o'",
                  f"WHERE ts > '{DAY}T06' AND ts <= '{DAY}T11' AND city IS NOT NULL",
                  # The time column against text the parts check alone (omit),
                  # and against what the union checks again: a number, a
                  # subquery, short text.
                  f"WHERE ts BETWEEN '{DAY}' AND '{DAY}T12:00:00.000Z'", "WHERE ts > 0",
                  f"WHERE ts = (SELECT max(ts) FROM hot_{table})", "WHERE ts < '2'"]:
        [a] = sql_json(data, f"SELECT count(*) AS n, count(DISTINCT city) AS c, min(event_id) AS e "
                             f"FROM {table} {where}")
        [b] = sql_json(data, f"SELECT count(*) AS n, count(DISTINCT city) AS c, min(event_id) AS e "
                             f"FROM (SELECT * FROM hot_{table} UNION ALL SELECT * FROM cold_{table}) "
                             f"{where}")
        assert a == b, (where, a, b)


def test_union_table_as_inner_loop(store):
    """Read again for every row of an outer loop (a correlated subquery, an IN
    list): the parts' statements are reset and bound anew each time."""
    data = store["data"]
    got = sql_json(data, "SELECT c.city, (SELECT count(*) FROM orders o WHERE o.city = c.city) "
                         "AS n FROM cities c ORDER BY c.city")
    want = sql_json(data, "SELECT c.city, (SELECT count(*) FROM (SELECT city FROM hot_orders "
                          "UNION ALL SELECT city FROM cold_orders) o WHERE o.city = c.city) AS n "
                          "FROM cities c ORDER BY c.city")
    assert got == want and sum(r["n"] for r in got) == len(store["rows"]["orders"]), got
    cities = [r["city"] for r in got[:3]]
    inlist = ", ".join(f"'{c}'" for c in cities)
    [row] = sql_json(data, f"SELECT count(*) AS n FROM orders WHERE city IN ({inlist})")
    assert row["n"] == sum(r["n"] for r in got[:3])


@pytest.mark.parametrize("table", TABLES)
def test_cold_rows_equal_the_hot_rows_they_were(store, table):
    """Every column, with its value and its type (money REAL, ts TEXT,
    integers INTEGER, failure_reason NULL when absent from the line)."""
    cold = sql_json(store["data"], typed_rows(table, f"cold_{table}"))
    assert cold == store["moved"][table]
    hot = sql_json(store["data"], typed_rows(table, f"hot_{table}"))
    assert hot == [r for r in store["rows"][table] if r["ts"] >= CUTOFF]
    if table == "payments":
        assert any(r["failure_reason"] is None for r in cold)
        assert any(r["failure_reason"] is not None for r in cold)


@pytest.mark.parametrize("table", TABLES)
def test_cold_columns_are_the_hot_views(store, table):
    data = store["data"]
    hot = sql_json(data, f"PRAGMA table_info(hot_{table})")
    cold = sql_json(data, f"PRAGMA table_info(cold_{table})")
    union = sql_json(data, f"PRAGMA table_info({table})")
    assert [r["name"] for r in cold] == [r["name"] for r in hot] == COLS[table]
    assert [r["name"] for r in union] == COLS[table]
    money = {"unit_price", "amount", "discount", "tax", "shipping", "total_price", "refund"}
    for r in cold:
        want = "REAL" if r["name"] in money else \
            "INTEGER" if r["name"] in ("quantity", "attempt") else "TEXT"
        assert r["type"] == want, r


def test_gzip_files_are_read(store):
    gz = [f for f in listed(store, "orders", [ARCHIVE_B])]
    assert gz and all(f["path"].endswith(".jsonl.gz") for f in gz)
    hour = f"{DAY}T02"
    got = sql_json(store["data"], typed_rows("orders", "cold_orders",
                                             f"WHERE substr(ts, 1, 13) = '{hour}'"))
    assert got == [r for r in store["moved"]["orders"] if r["ts"].startswith(hour)]
    assert got


# ---- which archives count ----

def test_uncommitted_archive_and_stray_files_do_not_count(store):
    data = store["data"]
    # Hour 04 (the 'writing' archive's copy) and hour 05 (the stray file) are
    # in cold storage's folders but only hot rows count for them.
    for hour in ("04", "05"):
        assert list((store["cold"] / "orders" / f"dt={DAY}" / f"hour={hour}").iterdir())
        [row] = sql_json(data, f"SELECT (SELECT count(*) FROM cold_orders WHERE ts LIKE "
                               f"'{DAY}T{hour}%') AS cold, (SELECT count(*) FROM orders WHERE ts "
                               f"LIKE '{DAY}T{hour}%') AS total")
        want = sum(1 for r in store["rows"]["orders"] if r["ts"].startswith(f"{DAY}T{hour}"))
        assert row == {"cold": 0, "total": want}
    proc = assert_ok(sql(data, "SELECT count(*) FROM cold_orders", "--log-level", "debug"))
    assert opened(proc) == {"orders": (4, 4)}, proc.stderr.decode()


def test_store_without_archives_table(store, tmp_path):
    """Until the archiver has run, there is no archives table: no cold data,
    even with files in the cold folder."""
    data = copy_store(store, tmp_path / "data")
    with store_db(data / "hot.db") as db:
        db.execute("DROP TABLE archives")
    db.close()
    [row] = sql_json(data, "SELECT (SELECT count(*) FROM cold_orders) AS cold, "
                           "(SELECT count(*) FROM orders) AS total, "
                           "(SELECT count(*) FROM hot_orders) AS hot")
    assert row["cold"] == 0 and row["total"] == row["hot"] > 0


# ---- pruning by ts ----

def test_recent_range_opens_no_cold_file(store):
    since = f"{DAY}T06:00:00.000Z"
    proc = assert_ok(sql(store["data"], "SELECT count(*) AS n, round(sum(total_price), 2) AS s "
                                        f"FROM orders WHERE ts >= '{since}'",
                         "--format", "json", "--log-level", "debug"))
    want = [r for r in store["rows"]["orders"] if r["ts"] >= since]
    assert json.loads(proc.stdout)[0]["n"] == len(want)
    assert opened(proc) == {"orders": (0, 4)}, proc.stderr.decode()


@pytest.mark.parametrize("hour", [0, 1, 2, 3])
def test_one_hour_opens_only_that_hours_files(store, hour):
    lo, hi = f"{DAY}T{hour:02d}:00:00.000Z", f"{DAY}T{hour:02d}:59:59.999Z"
    q = ("SELECT (SELECT count(*) FROM orders WHERE ts BETWEEN '{lo}' AND '{hi}') AS o, "
         "(SELECT count(*) FROM payments WHERE ts >= '{lo}' AND ts <= '{hi}') AS p")
    proc = assert_ok(sql(store["data"], q.format(lo=lo, hi=hi), "--format", "json",
                         "--log-level", "debug"))
    assert json.loads(proc.stdout) == [{
        "o": sum(1 for r in store["rows"]["orders"] if lo <= r["ts"] <= hi),
        "p": sum(1 for r in store["rows"]["payments"] if lo <= r["ts"] <= hi)}]
    assert opened(proc) == {"orders": (1, 4), "payments": (1, 4)}, proc.stderr.decode()


@pytest.mark.parametrize("where,files", [
    ("ts < '{DAY}T01'", 1),                              # hour 00 only
    ("ts > '{DAY}T01:30' AND ts < '{DAY}T02:30'", 2),      # hours 01 and 02
    ("ts = '{first}'", 1),                               # one exact time
    ("ts >= '{DAY}T03' AND ts < '{DAY}T01'", 0),         # an empty range
    ("ts > '{last}'", 0),                                # just past the last cold row
    ("ts >= '{last}'", 1),
    ("ts BETWEEN '{DAY}T00' AND '{DAY}T09'", 4),
    ("ts >= '{DAY}' COLLATE NOCASE", 4),                 # another collation: no pruning
    ("ts > 5", 4),                                        # not text: SQLite compares
    ("city = 'Berlin'", 4),
    ("ts > (SELECT '{DAY}T03')", 1),                      # a bound from a sub-query
])
def test_pruning_keeps_the_answer(store, where, files):
    moved = store["moved"]["orders"]
    where = where.format(DAY=DAY, first=moved[0]["ts"],
                         last=max(r["ts"] for r in moved))
    data = store["data"]
    proc = assert_ok(sql(data, f"SELECT event_id FROM cold_orders WHERE {where} ORDER BY event_id",
                         "--format", "json", "--log-level", "debug"))
    # The same condition over the rows with the table's own comparison rules.
    want = sql_json(data, "WITH c AS (SELECT * FROM cold_orders) SELECT event_id FROM "
                          f"(SELECT * FROM c LIMIT -1) WHERE {where} ORDER BY event_id")
    assert json.loads(proc.stdout) == want
    assert opened(proc)["orders"] == (files, 4), proc.stderr.decode()


def test_hot_side_still_uses_its_index(store):
    """The table over hot and cold (ss_union) passes a range over ts down to the
    hot store's facts. Its plan (idxStr: the mask of used columns, a newline,
    the WHERE terms of the statements that read each part) carries the bound
    and names only the columns used; and a statement of that form over the
    hot side hands orders_data the bound (ss_facts' index string 'g', ts >=),
    so that it reads only the blocks in range, not the whole table."""
    plan = sql_json(store["data"], f"EXPLAIN QUERY PLAN SELECT count(*), sum(total_price) "
                                   f"FROM orders WHERE ts >= '{DAY}T09'")
    details = " | ".join(r["detail"] for r in plan)
    m = re.search(r"SCAN orders VIRTUAL TABLE INDEX \d+:([0-9a-f]+)\n(.*)", details)
    assert m, details
    mask = int(m.group(1), 16)
    cols = [r["name"] for r in sql_json(store["data"], "PRAGMA table_info(orders)")]
    used = {c for i, c in enumerate(cols) if mask >> i & 1}
    assert used == {"ts", "total_price"}, (used, details)
    assert re.match(r'"ts" >= \?1\b', m.group(2)), details
    plan = sql_json(store["data"], f"EXPLAIN QUERY PLAN SELECT \"ts\", \"total_price\" "
                                   f"FROM hot_orders WHERE \"ts\" >= '{DAY}T09'")
    details = " | ".join(r["detail"] for r in plan)
    assert re.search(r"SCAN orders_data VIRTUAL TABLE INDEX \d+:g\b", details), details


# ---- missing or damaged cold files ----

def failing(data, query="SELECT count(*) FROM orders"):
    proc = sql(data, query)
    assert proc.returncode == 1, describe(proc)
    assert proc.stdout == b"", describe(proc)
    return proc.stderr.decode()


def test_missing_file_fails_and_names_it(store, tmp_path):
    data = copy_store(store, tmp_path / "data")
    gone = listed(store, "orders")[1]["path"]
    (data / "cold" / gone).unlink()
    err = failing(data)
    assert f"cold file '{gone}' is missing" in err, err
    assert "shopstream archive --verify" in err, err
    # A query whose range the file cannot hold does not need it.
    assert_ok(sql(data, f"SELECT count(*) FROM orders WHERE ts >= '{CUTOFF}'"))


@pytest.mark.parametrize("damage,needle", [
    ("garbage line", "is not valid JSON"),
    ("truncated", "bytes, its manifest says"),
    ("missing field", '"city" is missing'),
    ("string money", '"total_price" is not a number'),
    ("out of range", "outside the manifest's range"),
    ("extra record", "records, its manifest says"),
])
def test_damaged_plain_file_fails_and_names_it(store, tmp_path, damage, needle):
    data = copy_store(store, tmp_path / "data")
    f = listed(store, "orders", [ARCHIVE_A])[0]
    path = data / "cold" / f["path"]
    lines = path.read_bytes().splitlines(keepends=True)
    if damage == "garbage line":
        lines[3] = b"{not json" + b" " * (len(lines[3]) - 10) + b"\n"
    elif damage == "truncated":
        lines[-1] = lines[-1][:10]
    elif damage == "missing field":
        row = json.loads(lines[2])
        del row["city"]
        lines[2] = json.dumps(row).encode() + b"\n"
    elif damage == "string money":
        lines[2] = re.sub(rb'"total_price":([0-9.]+)', rb'"total_price":"\1"', lines[2])
    elif damage == "out of range":
        row = json.loads(lines[2])
        row["ts"] = f"{DAY}T23:00:00.000Z"
        lines[2] = json.dumps(row).encode() + b"\n"
    elif damage == "extra record":
        lines.append(lines[-1])
    blob = b"".join(lines)
    path.write_bytes(blob)
    if damage not in ("truncated",):
        # Keep the size the manifest lists where the damage is elsewhere.
        fix_manifest(data, ARCHIVE_A, f["path"], bytes=len(blob))
    err = failing(data)
    assert f"cold file '{f['path']}' is damaged" in err, err
    assert needle in err, err
    assert "shopstream archive --verify" in err, err


def fix_manifest(data, archive_id, file_path, **changes):
    with store_db(data / "hot.db") as db:
        [text] = db.execute("SELECT manifest FROM archives WHERE archive_id = ?",
                            (archive_id,)).fetchone()
        m = json.loads(text)
        for t in m["tables"].values():
            for f in t["files"]:
                if f["path"] == file_path:
                    f.update(changes)
        db.execute("UPDATE archives SET manifest = ? WHERE archive_id = ?",
                   (json.dumps(m), archive_id))
    db.close()


@pytest.mark.parametrize("damage", ["truncated", "not gzip", "corrupt"])
def test_damaged_gzip_file_fails_and_names_it(store, tmp_path, damage):
    data = copy_store(store, tmp_path / "data")
    f = listed(store, "payments", [ARCHIVE_B])[0]
    path = data / "cold" / f["path"]
    blob = path.read_bytes()
    if damage == "truncated":
        blob = blob[:len(blob) // 2]
    elif damage == "not gzip":
        blob = gzip.decompress(blob)
    else:
        mid = len(blob) // 2
        blob = blob[:mid] + bytes(b ^ 0x55 for b in blob[mid:mid + 16]) + blob[mid + 16:]
    path.write_bytes(blob)
    # The manifest of archive B is in its file only.
    mpath = data / "cold" / "_archives" / f"{ARCHIVE_B}.json"
    m = json.loads(mpath.read_text())
    for g in m["tables"]["payments"]["files"]:
        if g["path"] == f["path"]:
            g["bytes"] = len(blob)
    mpath.write_text(json.dumps(m))
    err = failing(data, "SELECT sum(amount) FROM payments")
    assert f"cold file '{f['path']}' is damaged" in err, err


def test_missing_manifest_fails(store, tmp_path):
    """Archive B's manifest is only in COLD/_archives/: without it the
    archive cannot be read, and that is an error, not an empty archive."""
    data = copy_store(store, tmp_path / "data")
    (data / "cold" / "_archives" / f"{ARCHIVE_B}.json").unlink()
    err = failing(data)
    assert f"committed archive '{ARCHIVE_B}' has no manifest" in err, err


def test_damaged_manifest_fails(store, tmp_path):
    data = copy_store(store, tmp_path / "data")
    with store_db(data / "hot.db") as db:
        db.execute("UPDATE archives SET manifest = '{\"tables\": ' WHERE archive_id = ?",
                   (ARCHIVE_A,))
    db.close()
    err = failing(data)
    assert f"the manifest of archive '{ARCHIVE_A}'" in err and "is damaged" in err, err


def test_manifest_path_outside_the_table_is_refused(store, tmp_path):
    data = copy_store(store, tmp_path / "data")
    f = listed(store, "orders", [ARCHIVE_A])[0]
    fix_manifest(data, ARCHIVE_A, f["path"], path="orders/../../hot.db")
    err = failing(data)
    assert "is damaged" in err and "needs a path under 'orders/'" in err, err


# ---- where cold storage is ----

def test_cold_option(store, tmp_path):
    data = copy_store(store, tmp_path / "data")
    elsewhere = tmp_path / "elsewhere"
    (data / "cold").rename(elsewhere)
    want = store["before"]["counts"]
    for form in (str(elsewhere), f"file:{elsewhere}"):
        assert sql_json(data, QUERIES["counts"], "--cold", form) == want
    proc = cli("sql", QUERIES["counts"], "--data", data, "--format", "json",
               env={"SHOPSTREAM_COLD": str(elsewhere)})
    assert json.loads(assert_ok(proc).stdout) == want
    # Without it, the default DIR/cold has none of the listed files.
    err = failing(data)
    assert "is missing" in err and str(data / "cold") in err, err
    # A scheme no cold backend has names the forms there are.
    proc = sql(data, "SELECT 1", "--cold", "s3://bucket/cold")
    assert proc.returncode == 2 and proc.stdout == b"", describe(proc)
    assert b"file:PATH, webhdfs://HOST:PORT/PATH" in proc.stderr, describe(proc)


# ---- the guard ----

WRITES = [
    "INSERT INTO orders (event_id) VALUES ('x')",
    "INSERT INTO cold_orders (event_id) VALUES ('x')",
    "INSERT INTO hot_orders (event_id) VALUES ('x')",
    "UPDATE orders SET quantity = 0",
    "UPDATE cold_orders SET quantity = 0",
    "UPDATE hot_payments SET amount = 0",
    "DELETE FROM orders",
    "DELETE FROM cold_cancellations",
    "DELETE FROM hot_orders",
    "DROP VIEW orders",
    "DROP VIEW hot_orders",
    "DROP TABLE cold_orders",
    "DROP TABLE temp.cold_payments",
    "CREATE TEMP VIEW mine AS SELECT 1",
    "CREATE TEMP TABLE scratch AS SELECT * FROM cold_orders",
    "CREATE VIRTUAL TABLE temp.more USING ss_cold(orders)",
    "CREATE TEMP TRIGGER t INSTEAD OF DELETE ON orders BEGIN SELECT 1; END",
    "ALTER TABLE cold_orders RENAME TO x",
    "INSERT INTO temp.sqlite_master VALUES ('table', 'x', 'x', 0, '')",
]


def tree_digest(path):
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if p.is_file() and not p.name.startswith("hot.db-"):
            h.update(str(p.relative_to(path)).encode() + p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("query", WRITES)
def test_writes_are_refused(store, query):
    before = tree_digest(store["data"])
    proc = sql(store["data"], query)
    assert proc.returncode == 2, describe(proc)
    assert b"read-only" in proc.stderr, describe(proc)
    assert proc.stdout == b""
    assert tree_digest(store["data"]) == before

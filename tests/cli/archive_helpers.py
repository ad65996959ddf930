"""Helpers for the archive tests (test_archive.py, test_archive_faults.py).

They read a data directory from the outside, as a reader of the cold layout in
docs/lifecycle.md would: the hot store DIR/hot.db read-only with sqlite3, the
committed archives from its `archives` table, and the files their manifests
list, each checked against its manifest entry and line by line (columns, money
as two-decimal text, ts order and range) while it is read.

Facts are compared in the hot store's own form (*_data rows, money as integer
cents): a cold line is turned back into that form, so that hot rows and cold
lines meet in one shape.
"""

import gzip
import json
import re
import signal
import sqlite3
import subprocess
import zlib
from collections import Counter
from pathlib import Path

from conftest import BIN, MONEY_RE, TS_RE, ts_ms
from harness import clean_env
from storedb import store_db

MS_PER_HOUR = 3_600_000
MS_PER_MINUTE = 60_000

TABLES = ("orders", "payments", "cancellations")

# The columns of the hot store's views (schema.sql, docs/lifecycle.md): a cold
# line has exactly these keys; failure_reason only on failed payments (NULL
# columns are left out).
COLUMNS = {
    "orders": ("event_id", "order_id", "ts", "customer_id", "customer_segment", "product_id",
               "product_name", "category", "city", "country", "quantity", "unit_price", "amount",
               "discount", "tax", "shipping", "total_price", "currency", "payment_method"),
    "payments": ("event_id", "order_id", "ts", "payment_method", "amount", "status",
                 "failure_reason", "attempt", "city", "country", "category"),
    "cancellations": ("event_id", "order_id", "ts", "reason", "refund", "city", "country",
                      "category", "payment_method"),
}
MONEY = {
    "orders": ("unit_price", "amount", "discount", "tax", "shipping", "total_price"),
    "payments": ("amount",),
    "cancellations": ("refund",),
}
INTEGERS = {"orders": ("quantity",), "payments": ("attempt",), "cancellations": ()}
# Columns a payment or cancellation takes from its order when it is processed.
# Whether an archived order still lends them is another change's business
# (cold-aware attribution), so comparisons across runs leave them out.
ATTRIBUTED = {"orders": (), "payments": ("city", "country", "category"),
              "cancellations": ("city", "country", "category", "payment_method")}

# The dimension tables an archive snapshots (docs/lifecycle.md, "Dimensions"):
# each one's key column and the fact columns that reference its rows (in
# orders alone, or in every fact table); "minute" is the minute of ts.
DIMS = {
    "customers": ("customer_id", "customer_id", ("orders",)),
    "products": ("product_id", "product_id", ("orders",)),
    "categories": ("category", "category", TABLES),
    "countries": ("country", "country", TABLES),
    "cities": ("city", "city", TABLES),
    "payment_methods": ("payment_method", "payment_method", TABLES),
    "time_minutes": ("minute_start", "minute", TABLES),
}
DIM_MONEY = {"products": ("unit_price",)}

PART_RE = re.compile(r"(orders|payments|cancellations)/dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/"
                     r"hour=([0-9]{2})/part-([0-9]{8}T[0-9]{9}Z-[0-9a-f]{8})\.jsonl(\.gz)?")
ID_RE = re.compile(r"[0-9]{8}T[0-9]{9}Z-[0-9a-f]{8}")
EVENT_ID_RE = re.compile(rb'"event_id":"([^"]+)"')
DIM_RE = re.compile(r"dims/([a-z_]+)/part-([0-9]{8}T[0-9]{9}Z-[0-9a-f]{8})\.jsonl(\.gz)?")
KPI_RE = re.compile(r"kpi/dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/hour=([0-9]{2})/"
                    r"part-([0-9]{8}T[0-9]{9}Z-[0-9a-f]{8})\.jsonl(\.gz)?")
# The minute KPI rows an archive moves (docs/lifecycle.md): kpi_minute_data's
# columns, money (the *_cents columns) as two-decimal text without _cents.
KPI_COLUMNS = ("minute_start", "dimension", "dimension_value", "shard", "orders", "units",
               "gross_revenue", "paid_revenue", "payment_attempts", "failed_payments",
               "cancellations", "cancelled_revenue", "final")
KPI_MONEY = ("gross_revenue", "paid_revenue", "cancelled_revenue")


# ---- the hot store ----

def connect(data):
    return store_db(f"file:{Path(data) / 'hot.db'}?mode=ro", uri=True)


def hot_size(data):
    """The hot store's data size as the archiver measures it: pages in use
    (page_count - freelist_count) times the page size."""
    with connect(data) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    return (pages - free) * size


def archive_rows(data):
    """The `archives` table: [(archive_id, state, cutoff, created_at, manifest)]."""
    with connect(data) as db:
        return db.execute("SELECT archive_id, state, cutoff, created_at, manifest FROM archives"
                          " ORDER BY archive_id").fetchall()


def notes(data):
    with connect(data) as db:
        return dict(db.execute("SELECT key, value FROM lifecycle_notes"))


def committed(data):
    """[(archive_id, manifest dict)] of the committed archives, from the hot store."""
    return [(r[0], json.loads(r[4])) for r in archive_rows(data) if r[1] == "committed"]


def hot_event_ids(data):
    ids = Counter()
    with connect(data) as db:
        for t in TABLES:
            ids.update(r[0] for r in db.execute(f"SELECT event_id FROM {t}_data"))
    return ids


def hot_rows(data, table):
    """The *_data rows of table as dicts without NULL columns."""
    with connect(data) as db:
        cur = db.execute(f"SELECT * FROM {table}_data")
        names = [d[0] for d in cur.description]
        for r in cur:
            yield {n: v for n, v in zip(names, r) if v is not None}


def hot_dims(data, table):
    """{key: row} of a dimension table of the hot store, without NULL columns."""
    key = DIMS[table][0]
    with connect(data) as db:
        cur = db.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cur.description]
        return {r[names.index(key)]: {n: v for n, v in zip(names, r) if v is not None}
                for r in cur}


def current_dims(data, table, cold=None):
    """{key: row} of a dimension over hot and cold, as `shopstream sql` reads
    it (customers and products leave the hot store with the archives that
    last reference them), without NULL columns."""
    key = DIMS[table][0]
    args = [BIN, "sql", "--data", str(data), "--format", "json", f"SELECT * FROM {table}"]
    if cold:
        args[4:4] = ["--cold", str(cold)]
    p = subprocess.run(args, capture_output=True, timeout=300, env=clean_env())
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    return {r[key]: {n: v for n, v in r.items() if v is not None} for r in json.loads(p.stdout)}


def hot_event_ts_range(data):
    """(oldest, newest) ts in ms of the events in the hot store (None when empty)."""
    with connect(data) as db:
        rows = [db.execute(f"SELECT min(ts), max(ts) FROM {t}_data").fetchone() for t in TABLES]
    lo = [ts_ms(r[0]) for r in rows if r[0]]
    hi = [ts_ms(r[1]) for r in rows if r[1]]
    return (min(lo), max(hi)) if lo else (None, None)


def engine_watermark(data):
    with connect(data) as db:
        row = db.execute("SELECT value FROM engine_state WHERE key = 'watermark'").fetchone()
    return row[0] if row else None


def cold_kpi_rows(data, cold=None):
    """The KPI rows of the committed archives, as kpi_minute_data tuples
    (money in integer cents), read from the files their manifests list."""
    cold = Path(cold) if cold else Path(data) / "cold"
    for _, m in committed(data):
        for f in m["tables"].get("kpi_minute", {}).get("files", []):
            lines, _ = read_part(cold, f["path"])
            for line in lines:
                o = json.loads(line, parse_float=str)
                yield tuple(int(o[c].replace(".", "")) if c in KPI_MONEY else o[c]
                            for c in KPI_COLUMNS)


def all_kpi_rows(data, cold=None):
    """kpi_minute_data over hot and cold, sorted; no row is in both."""
    with connect(data) as db:
        hot = db.execute("SELECT * FROM kpi_minute_data").fetchall()
    cold_rows = list(cold_kpi_rows(data, cold))
    both = {r[:4] for r in hot} & {r[:4] for r in cold_rows}
    assert not both, f"{len(both)} KPI rows both hot and cold, e.g. {sorted(both)[:3]}"
    return sorted(hot + cold_rows)


def stored_kpis(data, cold=None):
    """kpi_minute_data over hot and cold, summed over shards: (minute,
    dimension, value) -> 8 integers."""
    acc = {}
    for r in all_kpi_rows(data, cold):
        k = r[:3]
        v = r[4:12]
        acc[k] = tuple(a + b for a, b in zip(acc[k], v)) if k in acc else tuple(v)
    return acc


# ---- generated input ----

def file_event_ids(path):
    """Counter of the event_ids of a generated JSON Lines file."""
    return Counter(m.decode() for m in EVENT_ID_RE.findall(Path(path).read_bytes()))


# ---- KPIs recomputed from facts (integer cents) ----

def kpi_add(acc, table, r):
    """Adds one fact (a *_data-shaped dict) to acc, by the engine's rules: an
    order counts under its own dimensions; a payment under its order's city,
    country and category and its own method; a cancellation under all of its
    order's dimensions. acc is keyed by minute and the four dimension values;
    finish_kpis() spreads it over the dimensions."""
    key = (r["ts"][:17], r["city"], r["country"], r["category"], r["payment_method"])
    a = acc.get(key)
    if a is None:
        a = acc[key] = [0] * 8
    if table == "orders":
        a[0] += 1
        a[1] += r["quantity"]
        a[2] += r["total_price_cents"]
    elif table == "payments":
        a[4] += 1
        if r["status"] == "success":
            a[3] += r["amount_cents"]
        else:
            a[5] += 1
    else:
        a[6] += 1
        a[7] += r["refund_cents"]


def finish_kpis(acc):
    """(minute, dimension, value) -> 8 integers, as stored_kpis() reads them."""
    out = {}
    for (m, city, country, category, method), v in acc.items():
        minute = m + "00.000Z"
        for key in ((minute, "overall", "all"), (minute, "city", city),
                    (minute, "country", country), (minute, "category", category),
                    (minute, "payment_method", method)):
            a = out.get(key)
            if a is None:
                out[key] = list(v)
            else:
                for i in range(8):
                    a[i] += v[i]
    return {k: tuple(v) for k, v in out.items()}


def kpi_diffs(expected, got, limit=5):
    out = []
    for k in sorted(set(expected) | set(got)):
        if expected.get(k) != got.get(k):
            out.append(f"{k}: recomputed {expected.get(k)}, stored {got.get(k)}")
            if len(out) == limit:
                break
    return out


def fact_hash(table, r, attributed=True):
    """A hash of a fact in *_data form; attributed=False leaves out the columns a
    payment or cancellation takes from its order."""
    skip = () if attributed else ATTRIBUTED[table]
    return hash((table,) + tuple(sorted((k, v) for k, v in r.items() if k not in skip)))


# ---- the cold store ----

def read_part(cold, rel):
    """A part file's lines (bytes, without the newline) and its raw bytes."""
    raw = (Path(cold) / rel).read_bytes()
    text = gzip.decompress(raw) if rel.endswith(".gz") else raw
    assert text.endswith(b"\n"), f"{rel}: the last line lacks its newline"
    lines = text[:-1].split(b"\n")
    assert all(lines), f"{rel}: has an empty line"
    return lines, raw


_KEYS = {}


def to_data_row(table, rel, obj):
    """Checks one parsed cold line (floats kept as their text) and returns it in
    *_data form (money as integer cents under *_cents)."""
    failed = table == "payments" and obj.get("status") == "failed"
    want = _KEYS.get((table, failed))
    if want is None:
        want = set(COLUMNS[table])
        if table == "payments" and not failed:
            want.discard("failure_reason")
        want = _KEYS[(table, failed)] = frozenset(want)
    assert obj.keys() == want, f"{rel}: columns {sorted(obj)} != {sorted(want)}"
    row = {}
    money, integers = MONEY[table], INTEGERS[table]
    for k, v in obj.items():
        if k in money:
            # Exactly two decimals in the raw text (money is never negative).
            assert type(v) is str and MONEY_RE.fullmatch(v) and v[0] != "-", \
                f"{rel}: {k} is {v!r}, not a number with exactly two decimals"
            row[k + "_cents"] = int(v.replace(".", ""))
        elif k in integers:
            assert type(v) is int, f"{rel}: {k} is {v!r}, not an integer"
            row[k] = v
        else:
            assert type(v) is str, f"{rel}: {k} is {v!r}, not a string"
            row[k] = v
    return row


def parse_chunks(rel, lines, chunk=20_000):
    """Parses lines as JSON (floats kept as their text), a chunk at a time: one
    document per chunk is much faster than a loads() per line."""
    for i in range(0, len(lines), chunk):
        part = lines[i:i + chunk]
        objs = json.loads(b"[" + b",".join(part) + b"]", parse_float=str)
        assert len(objs) == len(part), f"{rel}: a line is not exactly one JSON object"
        yield from objs


class ColdScan:
    """Reads every file of every committed archive of a data directory, checks
    it against its manifest and checks every line; then feeds each fact (in
    *_data form) to the callbacks given. Keeps counts, not rows."""

    def __init__(self, data, cold=None):
        self.data = Path(data)
        self.cold = Path(cold) if cold else self.data / "cold"
        self.ids = Counter()
        self.files = set()  # paths listed by committed manifests, relative to cold
        self.records = 0
        self.bytes = 0
        self.snapshotted = {t: set() for t in DIMS}  # keys of the snapshots read so far
        self.current = {}  # table -> current_dims(), read once

    def run(self, *callbacks):
        rows = archive_rows(self.data)
        for archive_id, state, cutoff, _, text in rows:
            if state != "committed":
                continue
            self.check_archive(archive_id, cutoff, json.loads(text), callbacks)
        return self

    def check_archive(self, archive_id, cutoff, m, callbacks):
        assert ID_RE.fullmatch(archive_id), archive_id
        mpath = self.cold / "_archives" / f"{archive_id}.json"
        assert mpath.is_file(), f"manifest {mpath} of committed archive {archive_id} is missing"
        assert json.loads(mpath.read_bytes()) == m, \
            f"{mpath} differs from the manifest recorded in the hot store"
        self.files.add(f"_archives/{archive_id}.json")
        assert m["archive_id"] == archive_id
        assert m["cutoff"] == cutoff
        assert m["source"] == f"sqlite:{(self.data / 'hot.db').resolve()}"
        assert ts_ms(cutoff) % MS_PER_MINUTE == 0, f"cutoff {cutoff} is not a whole minute"
        assert set(m["tables"]) == set(TABLES) | {"kpi_minute"}
        refs = {t: set() for t in DIMS}

        def reference(table, row):
            for t, (_, col, tables) in DIMS.items():
                if table in tables:
                    refs[t].add(row["ts"][:17] + "00.000Z" if col == "minute" else row[col])

        callbacks = (*callbacks, reference)
        keys = m.get("keys")
        if keys is not None:
            # The archive's keys file (docs/lifecycle.md): listed with bytes and CRC-32.
            raw = (self.cold / keys["path"]).read_bytes()
            assert len(raw) == keys["bytes"] and f"{zlib.crc32(raw):08x}" == keys["crc32"], \
                f"keys file {keys['path']} differs from its manifest entry"
            self.files.add(keys["path"])
        for table in TABLES:
            tab = m["tables"][table]
            files = tab["files"]
            assert tab["records"] == sum(f["records"] for f in files)
            if tab["records"] == 0:
                assert files == [] and "min_ts" not in tab
                continue
            assert tab["min_ts"] == min(f["min_ts"] for f in files)
            assert tab["max_ts"] == max(f["max_ts"] for f in files)
            hours = set()
            for f in files:
                rel = f["path"]
                pm = PART_RE.fullmatch(rel)
                assert pm, f"{rel}: not <table>/dt=YYYY-MM-DD/hour=HH/part-<id>.jsonl[.gz]"
                assert pm.group(1) == table and pm.group(4) == archive_id, rel
                assert (pm.group(2), pm.group(3)) not in hours, \
                    f"{archive_id}: two {table} files for one hour"
                hours.add((pm.group(2), pm.group(3)))
                self.check_file(table, rel, f, cutoff, (pm.group(2), pm.group(3)), callbacks)
        self.check_dims(archive_id, m, refs)
        self.check_kpis(archive_id, cutoff, m["tables"]["kpi_minute"])

    def check_kpis(self, archive_id, cutoff, tab):
        """The archive's minute KPI rows: a file per hour under kpi/, each
        checked against its manifest entry; every row final, of a minute
        before the cutoff, in minute order."""
        files = tab["files"]
        assert tab["records"] == sum(f["records"] for f in files)
        hours = set()
        for f in files:
            rel = f["path"]
            km = KPI_RE.fullmatch(rel)
            assert km and km.group(3) == archive_id, rel
            assert (km.group(1), km.group(2)) not in hours, f"{archive_id}: two KPI files an hour"
            hours.add((km.group(1), km.group(2)))
            lines, raw = read_part(self.cold, rel)
            assert len(raw) == f["bytes"] and f"{zlib.crc32(raw):08x}" == f["crc32"], \
                f"{rel} differs from its manifest entry"
            assert len(lines) == f["records"] > 0, rel
            self.files.add(rel)
            prev = None
            for obj in parse_chunks(rel, lines):
                assert tuple(obj) == KPI_COLUMNS, f"{rel}: columns {list(obj)}"
                t = obj["minute_start"]
                assert t.startswith(f"{km.group(1)}T{km.group(2)}:") and t.endswith(":00.000Z"), \
                    f"{rel}: minute {t} outside its dt/hour"
                assert t < cutoff and f["min_ts"] <= t <= f["max_ts"], f"{rel}: minute {t}"
                assert prev is None or prev <= t, f"{rel}: not in minute order at {t}"
                assert obj["final"] == 1, f"{rel}: a KPI row that is not final: {obj}"
                for c in KPI_MONEY:
                    assert MONEY_RE.fullmatch(obj[c]), f"{rel}: {c} {obj[c]!r}"
                prev = t

    def check_dims(self, archive_id, m, refs):
        """The archive's dimension snapshots: one file per table with rows,
        each checked against its manifest entry; its rows, in key order, are
        exactly the hot store's rows that the archive's facts reference."""
        dims = m.get("dims")
        assert dims is not None and set(dims) == set(DIMS), \
            f"{archive_id}: manifest dims {sorted(dims or ())} != {sorted(DIMS)}"
        for table, (key, _, _) in DIMS.items():
            entry = dims[table]
            files = entry["files"]
            if table not in self.current:
                self.current[table] = current_dims(self.data, table, self.cold)
            hot = self.current[table]
            want = sorted(k for k in refs[table] if k in hot)
            assert entry["records"] == sum(f["records"] for f in files), archive_id
            assert len(files) <= 1, f"{archive_id}: {table}: {files}"
            got = []
            for f in files:
                rel = f["path"]
                dm = DIM_RE.fullmatch(rel)
                assert dm and dm.group(1) == table and dm.group(2) == archive_id, rel
                lines, raw = read_part(self.cold, rel)
                assert len(raw) == f["bytes"] and f"{zlib.crc32(raw):08x}" == f["crc32"], \
                    f"{rel} differs from its manifest entry"
                assert len(lines) == f["records"], rel
                self.files.add(rel)
                for obj in parse_chunks(rel, lines):
                    row = hot.get(obj.get(key))
                    assert row is not None, f"{rel}: {obj} is no row of the store"
                    assert obj.keys() == row.keys(), f"{rel}: columns {sorted(obj)} != {sorted(row)}"
                    for c, v in row.items():
                        if table == "customers" and c == "first_seen":
                            # A customer whose row left the hot store and came
                            # back with a later order is snapshotted again with
                            # that order's time; the store reads the earliest.
                            assert obj[c] >= v, f"{rel}: first_seen {obj[c]} before {v}"
                            continue
                        if c in DIM_MONEY.get(table, ()):
                            assert MONEY_RE.fullmatch(obj[c]) and int(obj[c].replace(".", "")) \
                                == round(v * 100), f"{rel}: {c} {obj[c]!r} != {v}"
                        elif isinstance(v, float):
                            assert float(obj[c]) == v, f"{rel}: {c} {obj[c]!r} != {v}"
                        else:
                            assert obj[c] == v, f"{rel}: {c} {obj[c]!r} != {v!r}"
                    got.append(obj[key])
            # In key order, of referenced rows; a row that had left the hot
            # store with an earlier archive (and was not written again) is in
            # that archive's snapshot instead.
            assert got == sorted(got) and set(got) <= set(want), \
                f"{archive_id}: {table} snapshot holds rows its facts do not reference: " \
                f"{sorted(set(got) - set(want))[:5]}"
            assert len(got) == entry["records"] and bool(files) == bool(got), \
                f"{archive_id}: {table}: {entry}"
            self.snapshotted[table].update(got)
            missing = [k for k in want if k not in self.snapshotted[table]]
            assert not missing, f"{archive_id}: {table} rows its facts reference are in no " \
                f"snapshot: {missing[:5]}"

    def check_file(self, table, rel, f, cut, dt_hour, callbacks):
        lines, raw = read_part(self.cold, rel)
        assert len(raw) == f["bytes"], f"{rel}: {len(raw)} bytes, manifest says {f['bytes']}"
        assert f"{zlib.crc32(raw):08x}" == f["crc32"], f"{rel}: CRC-32 differs from the manifest"
        assert re.fullmatch(r"[0-9a-f]{8}", f["crc32"])
        assert len(lines) == f["records"] and f["records"] > 0, \
            f"{rel}: {len(lines)} lines, manifest says {f['records']} records"
        # ISO-8601 text of one width sorts in time order: ts is compared as text.
        lo, hi = f["min_ts"], f["max_ts"]
        assert TS_RE.fullmatch(lo) and TS_RE.fullmatch(hi) and lo <= hi
        hour = f"{dt_hour[0]}T{dt_hour[1]}:"
        self.files.add(rel)
        self.records += len(lines)
        self.bytes += len(raw)
        prev = first = None
        for obj in parse_chunks(rel, lines):
            row = to_data_row(table, rel, obj)
            t = row["ts"]
            assert TS_RE.fullmatch(t), f"{rel}: ts {t!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ"
            assert t.startswith(hour), f"{rel}: ts {t} outside its dt/hour"
            assert lo <= t <= hi, f"{rel}: ts {t} outside {lo}..{hi}"
            assert t < cut, f"{rel}: ts {t} not before the archive's cutoff {cut}"
            assert prev is None or prev <= t, f"{rel}: lines not in ts order at {t}"
            prev = t
            if first is None:
                first = t
            self.ids[row["event_id"]] += 1
            for cb in callbacks:
                cb(table, row)
        assert (first, prev) == (lo, hi), f"{rel}: first/last ts differ from the manifest"


def cold_files(cold):
    """Every file below the cold root (relative paths), temporary ones included."""
    cold = Path(cold)
    return {str(p.relative_to(cold)) for p in cold.rglob("*") if p.is_file()}


# ---- the invariants, checked together ----

def check_store(data, expected_ids, threshold_bytes=None, slice_bytes=0, kpis=True,
                callbacks=()):
    """Asserts, for a data directory at rest: every committed archive matches its
    files; every expected event is in hot or committed cold exactly once, none
    in both; no file outside the committed manifests is left in the cold store
    (verify would call it stray); KPIs recomputed from hot + cold facts equal
    kpi_minute_data; the hot store within threshold_bytes + slice_bytes. Every
    fact, cold and hot, also goes to callbacks(table, row). Returns the
    ColdScan."""
    acc = {}
    cbs = ([lambda t, r: kpi_add(acc, t, r)] if kpis else []) + list(callbacks)
    scan = ColdScan(data)
    scan.run(*cbs)
    hot = Counter()
    for t in TABLES:
        for r in hot_rows(data, t):
            hot[r["event_id"]] += 1
            for cb in cbs:
                cb(t, r)
    both = hot.keys() & scan.ids.keys()
    assert not both, f"{len(both)} events both hot and cold, e.g. {sorted(both)[:3]}"
    total = hot + scan.ids
    doubled = [k for k, n in total.items() if n > 1]
    assert not doubled, f"{len(doubled)} events stored more than once, e.g. {doubled[:3]}"
    if total != expected_ids:
        missing = expected_ids - total
        extra = total - expected_ids
        raise AssertionError(
        f"{sum(missing.values())} generated events in neither hot nor cold (e.g. "
            f"{sorted(missing)[:3]}), {sum(extra.values())} not generated (e.g. "
            f"{sorted(extra)[:3]})")
    rows = archive_rows(data)
    assert all(r[1] == "committed" for r in rows), \
        f"archives left unfinished: {[r[:2] for r in rows if r[1] != 'committed']}"
    stray = cold_files(Path(data) / "cold") - scan.files
    assert not stray, f"files in the cold store that no committed manifest lists: {sorted(stray)}"
    if kpis:
        want = finish_kpis(acc)
        got = stored_kpis(data)
        diffs = kpi_diffs(want, got)
        assert not diffs, "KPIs from hot + cold facts differ from kpi_minute_data:\n  " + \
            "\n  ".join(diffs)
    if threshold_bytes is not None:
        size = hot_size(data)
        assert size <= threshold_bytes + slice_bytes, (
            f"hot store {size} bytes after the run; threshold {threshold_bytes} + one slice "
            f"{slice_bytes}")
    return scan


def killed_by_sigkill(proc):
    return proc.returncode == -signal.SIGKILL

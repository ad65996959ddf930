"""Black-box tests of the store's format: its page size, and kpi_minute_data's
key (src/hot/schema.sql). A new store is created at schema version 3, where the
table is keyed by dimension first; a store of version 2 (keyed by minute first)
is still read as it is, and the next command that writes it rebuilds the table
once, keeping every row, after which the engine continues exactly as on an
uninterrupted run. (The upgrade from version 1 is
tests/cli/test_store_migration.py.)
"""

import re
import sqlite3

from conftest import assert_same_store, connect_ro, hot_db, process
from harness import assert_ok, cli
from storedb import store_db

SEED, COUNT = 5, 4000
KEY_V2 = "minute_start, dimension, dimension_value, shard"
KEY_V3 = "dimension, minute_start, dimension_value, shard"


def kpi_key(data):
    with connect_ro(data) as db:
        [sql] = db.execute("SELECT sql FROM sqlite_master WHERE name = 'kpi_minute_data'")
        [version] = db.execute("SELECT value FROM meta WHERE key = 'schema_version'")
    return re.search(r"PRIMARY KEY \(([^)]*)\)", sql[0]).group(1), version[0]


def make_version_2(data):
    """Turns a store into what version 2 wrote: the same rows, keyed by minute."""
    db = store_db(hot_db(data))
    try:
        [view] = db.execute("SELECT sql FROM sqlite_master WHERE name = 'kpi_minute'")
        [table] = db.execute("SELECT sql FROM sqlite_master WHERE name = 'kpi_minute_data'")
        db.executescript(f"""
            BEGIN;
            DROP VIEW kpi_minute;
            ALTER TABLE kpi_minute_data RENAME TO kpi_v3;
            {table[0].replace(KEY_V3, KEY_V2)};
            INSERT INTO kpi_minute_data SELECT * FROM kpi_v3;
            DROP TABLE kpi_v3;
            {view[0]};
            UPDATE meta SET value = '2' WHERE key = 'schema_version';
            COMMIT;""")
    finally:
        db.close()
    assert kpi_key(data) == (KEY_V2, "2")


def kpi_rows(data):
    return assert_ok(cli("sql", "--data", data, "--format", "csv",
                         "SELECT * FROM kpi_minute ORDER BY minute_start, dimension, "
                         "dimension_value")).stdout


def test_new_store_is_keyed_by_dimension(tmp_path, gen_file):
    process(tmp_path / "d", gen_file(SEED, 200))
    assert kpi_key(tmp_path / "d") == (KEY_V3, "4")


def test_new_store_has_16_kib_pages_and_incremental_vacuum(tmp_path, gen_file):
    """The page size takes effect only if set before anything else fixes the
    file's format (setting auto_vacuum first left 4 KiB pages)."""
    process(tmp_path / "d", gen_file(SEED, 200))
    with connect_ro(tmp_path / "d") as db:
        settings = [db.execute(f"PRAGMA {p}").fetchone()[0]
                    for p in ("page_size", "auto_vacuum", "journal_mode")]
    assert settings == [16384, 2, "wal"]


def test_version_2_store_is_rebuilt_by_the_next_writer(tmp_path, gen_file):
    lines = gen_file(SEED, COUNT).read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    growing = tmp_path / "growing.jsonl"
    growing.write_bytes(b"".join(lines[:half]))
    data = tmp_path / "d"
    process(data, growing)
    make_version_2(data)

    # Readers take version 2 as it is, and do not change it.
    before = kpi_rows(data)
    assert before.count(b"\n") > 100
    assert kpi_key(data) == (KEY_V2, "2")

    # The next writer rebuilds the table, with the same rows, even when it has
    # nothing new to process.
    proc = process(data, growing)
    assert b"rebuilding kpi_minute_data" in proc.stderr
    assert kpi_key(data) == (KEY_V3, "4")
    assert kpi_rows(data) == before
    with connect_ro(data) as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "kpi_minute_data_v2" not in names

    # The engine resumes on the rebuilt store as if it had never changed.
    growing.write_bytes(b"".join(lines))
    proc = process(data, growing)
    assert b"rebuilding" not in proc.stderr
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"".join(lines))
    process(tmp_path / "ref", whole)
    assert_same_store(data, tmp_path / "ref",
                      tables=["orders_data", "payments_data", "cancellations_data",
                              "kpi_minute_data", "customers"])


def test_facts_take_delete_and_refuse_insert(tmp_path, gen_file):
    """orders_data takes DELETE with any condition (the rows leave their
    blocks), visible to a read later in the same transaction, undone by
    ROLLBACK; INSERT and UPDATE are refused, since process writes the facts."""
    data = tmp_path / "d"
    process(data, gen_file(SEED, COUNT))

    def by_city(db):
        return dict(db.execute("SELECT city, count(*) FROM orders_data GROUP BY city"))

    db = store_db(hot_db(data))
    try:
        before = by_city(db)
        ids = {r[0] for r in db.execute("SELECT event_id FROM orders_data")}
        city = max(before, key=before.get)
        db.execute("BEGIN")
        db.execute("DELETE FROM orders_data WHERE quantity = 1")
        inside = db.execute("SELECT count(*) FROM orders_data WHERE quantity = 1").fetchone()
        db.execute("ROLLBACK")
        assert inside == (0,)
        assert by_city(db) == before

        db.execute("BEGIN")
        db.execute("DELETE FROM orders_data WHERE city = ?", (city,))
        db.execute("COMMIT")
        after = by_city(db)
        assert city not in after
        assert after == {c: n for c, n in before.items() if c != city}
        left = {r[0] for r in db.execute("SELECT event_id FROM orders_data")}
        assert left < ids and len(left) == len(ids) - before[city]

        for stmt in ("INSERT INTO orders_data (event_id) VALUES ('x')",
                     "UPDATE orders_data SET quantity = 2"):
            try:
                db.execute(stmt)
            except Exception as e:  # noqa: BLE001 - sqlite3 or apsw
                assert "DELETE only" in str(e), e
            else:
                raise AssertionError(f"{stmt} was accepted")
    finally:
        db.close()
    # The binary reads the same store.
    out = assert_ok(cli("sql", "--data", data, "--format", "csv",
                        f"SELECT count(*) FROM orders WHERE city = '{city}'")).stdout
    assert out.splitlines()[-1] == b"0"

"""A store written by the previous schema (version 1: the engine's state as
key/value rows of a table engine_state) is upgraded when it is opened: its
state becomes shard 0's, processing resumes where it stopped, and the result
equals a run that never saw the old layout."""

import sqlite3
import subprocess

from conftest import BIN, DERIVED_TABLES, assert_same_store, engine_state, hot_db, process
from storedb import store_db

SEED, COUNT = 41, 3000


def to_v1(data_dir):
    """Rewrites a current store into the version-1 layout."""
    db = store_db(hot_db(data_dir))
    with db:
        state = dict(db.execute("SELECT key, value FROM engine_state"))
        db.execute("DROP VIEW engine_state")
        db.execute("DROP TABLE shard_state")
        db.execute("CREATE TABLE engine_state (key TEXT PRIMARY KEY, value INTEGER) WITHOUT ROWID")
        db.executemany("INSERT INTO engine_state VALUES (?, ?)", state.items())
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.close()
    return state


def test_v1_store_is_upgraded_and_resumes(tmp_path):
    raw = subprocess.run([BIN, "gen", "--seed", str(SEED), "--count", str(COUNT), "--max",
                          "--start", "2026-11-02T00:00:00Z"], capture_output=True,
                         check=True).stdout
    src = tmp_path / "events.jsonl"
    src.write_bytes(raw)
    half = tmp_path / "half.jsonl"
    lines = raw.split(b"\n")
    half.write_bytes(b"\n".join(lines[: len(lines) // 2]) + b"\n")

    one = tmp_path / "one"
    process(one, str(src))

    old = tmp_path / "old"
    process(old, str(half))
    state = to_v1(old)
    assert state["events_in"] == len(lines) // 2
    # The same input file name resumes at the stored position: copy the rest
    # after the first half, as a growing file would.
    half.write_bytes(raw)
    process(old, str(half))

    with store_db(hot_db(old)) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("4",)
        assert db.execute("SELECT type FROM sqlite_master WHERE name = 'engine_state'"
                          ).fetchone() == ("view",)
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'engine_state_v1'"
                          ).fetchone() == (0,)
    assert_same_store(one, old, tables=DERIVED_TABLES + ("engine_state",),
                      exclude=("received_at", "rejected_events.source"))
    assert engine_state(old)["events_in"] == len(lines) - 1

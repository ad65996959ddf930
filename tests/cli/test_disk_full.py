"""A full disk under the hot store and under the cold store.

Each store lives on a tmpfs of a few MB mounted for the test (the tests run
as root), so a write meets ENOSPC mid-stream. `process` must stop with a
message naming the store's path and the free space, leave an intact store,
and, once the filesystem has room again, end with the tables of an
uninterrupted run. An archive run whose cold store fills up must roll back,
leaving every event in the hot store, and succeed once there is room.
"""
import contextlib
import sqlite3
import subprocess

import pytest

from conftest import ENGINE_START, SANITIZER_MARKS, gen_args, run
from harness import cli, describe
from storedb import store_db

SEED, COUNT = 31, 40000

# The tables of an uninterrupted run that a resumed one must equal.
TABLES = ("orders_data", "payments_data", "cancellations_data", "customers", "products",
          "categories", "payment_methods", "countries", "cities", "time_minutes",
          "kpi_minute_data", "shard_state")


@contextlib.contextmanager
def small_fs(path, size):
    """A tmpfs of size (e.g. "12m") at path, unmounted at the end."""
    path.mkdir(parents=True, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True)
    if p.returncode != 0:
        pytest.fail("cannot mount a tmpfs for the test (it needs root): "
                    + p.stderr.decode(errors="replace"))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def grow(path, size):
    p = subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], capture_output=True)
    assert p.returncode == 0, p.stderr.decode(errors="replace")


def rows(db, table):
    con = store_db(f"file:{db}?mode=ro", uri=True)
    try:
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        if table == "shard_state":
            cols = [c for c in cols if c not in ("updated_at", "owner")]
        return sorted(con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(),
                      key=repr)
    finally:
        con.close()


def assert_clean(err):
    for mark in SANITIZER_MARKS:
        assert mark not in err, err[-3000:]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The input and the hot store of an uninterrupted run of it."""
    base = tmp_path_factory.mktemp("full-ref")
    src = base / "events.jsonl"
    run(*gen_args(SEED, COUNT, start=ENGINE_START), "--out", src)
    run("process", "--from", src, "--data", base / "data", "--archive-every", "0")
    return src, base / "data"


def test_the_hot_store_fills_its_disk_and_resumes_exactly(reference, tmp_path):
    src, ref = reference
    with small_fs(tmp_path / "fs", "4m") as fs:
        data = fs / "data"
        p = cli("process", "--from", src, "--data", data, "--archive-every", "0", timeout=300)
        err = p.stderr.decode(errors="replace")
        assert_clean(err)
        assert p.returncode == 1, describe(p)
        # The message names the store, says the disk is full and how much is free.
        assert f"'{data / 'hot.db'}': the disk is full (" in err, err
        assert "free of 4.0 MiB on its filesystem" in err, err
        assert "cannot rollback" not in err, err
        # What was committed is intact, and less than the whole input.
        con = store_db(f"file:{data / 'hot.db'}?mode=ro", uri=True)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = con.execute("SELECT count(*) FROM orders_data").fetchone()[0]
        con.close()
        assert stored < COUNT

        grow(fs, "200m")
        p = cli("process", "--from", src, "--data", data, "--archive-every", "0", timeout=300)
        assert p.returncode == 0, describe(p)
        assert_clean(p.stderr.decode(errors="replace"))
        for table in TABLES:
            assert rows(data / "hot.db", table) == rows(ref / "hot.db", table), table


def count_orders(data, cold):
    p = cli("sql", "--data", data, "--cold", cold, "--format", "csv",
            "SELECT count(*), count(DISTINCT event_id), sum(total_price) FROM orders")
    assert p.returncode == 0, describe(p)
    return p.stdout.decode().splitlines()[-1]


def test_the_cold_store_fills_its_disk_during_an_archive_run(reference, tmp_path):
    src, ref = reference
    data = tmp_path / "data"
    run("process", "--from", src, "--data", data, "--archive-every", "0")
    with small_fs(tmp_path / "fs", "2m") as fs:
        cold = fs / "cold"
        before = count_orders(data, cold)
        p = cli("archive", "--once", "--data", data, "--cold", cold, "--hot-max-mb", "4")
        err = p.stderr.decode(errors="replace")
        assert_clean(err)
        assert p.returncode == 1, describe(p)
        assert f"'{cold}/" in err and "No space left on device (" in err, err
        assert "free of 2.0 MiB on its filesystem" in err, err
        assert "the events stay in the hot store" in err, err
        # Rolled back: no archive recorded, nothing left in the cold store, and
        # every event still in the hot store.
        con = store_db(f"file:{data / 'hot.db'}?mode=ro", uri=True)
        assert con.execute("SELECT count(*) FROM archives").fetchone()[0] == 0
        hot_orders = con.execute("SELECT count(*) FROM orders_data").fetchone()[0]
        con.close()
        assert hot_orders == COUNT
        assert not [f for f in cold.rglob("*") if f.is_file()]
        assert count_orders(data, cold) == before

        grow(fs, "200m")
        p = cli("archive", "--once", "--data", data, "--cold", cold, "--hot-max-mb", "4")
        assert p.returncode == 0, describe(p)
        con = store_db(f"file:{data / 'hot.db'}?mode=ro", uri=True)
        assert con.execute("SELECT count(*) FROM orders_data").fetchone()[0] < COUNT
        con.close()
        assert count_orders(data, cold) == before
        v = cli("archive", "--verify", "--data", data, "--cold", cold)
        assert v.returncode == 0, describe(v)

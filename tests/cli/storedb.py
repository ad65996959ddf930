"""Connections to a hot store that can read its fact tables.

orders_data, payments_data and cancellations_data are virtual tables of the
module ss_facts, which the loadable extension build/shopstream_sqlite holds.
Python's sqlite3 loads extensions only where its build allows it (Debian's
does, pyenv's usually not), so where it cannot, apsw (PyPI, scripts/deps)
opens the store instead, behind the part of sqlite3's interface the tests
use: execute, executemany, executescript, fetchone, fetchall, iteration,
description, row_factory = sqlite3.Row, commit, close and `with`; its errors
are raised as sqlite3.OperationalError.
"""
import os
import sqlite3
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_BIN = os.environ.get("SHOPSTREAM_BIN") or str(REPO / "build" / "shopstream")
# The extension is built next to the binary (CMake target shopstream_sqlite).
EXTENSION = str(Path(_BIN).resolve().parent / "shopstream_sqlite")
if not Path(EXTENSION + ".so").exists():
    EXTENSION = str(REPO / "build" / "shopstream_sqlite")


class _Row(tuple):
    """A row that also answers by column name, as sqlite3.Row does."""

    def __new__(cls, values, names):
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self._names.index(key))
        return tuple.__getitem__(self, key)

    def keys(self):
        return list(self._names)


def _sqlite_errors(fn):
    """Raises apsw's errors as sqlite3.OperationalError, which the tests catch."""
    def call(*args, **kwargs):
        import apsw
        try:
            return fn(*args, **kwargs)
        except apsw.Error as e:
            raise sqlite3.OperationalError(str(e)) from e
    return call


class _Cursor:
    def __init__(self, conn, cur, description):
        self._conn = conn
        self._cur = cur
        self.description = description

    def _wrap(self, row):
        if row is None or self._conn.row_factory is not sqlite3.Row:
            return row
        return _Row(row, [d[0] for d in self.description])

    def __iter__(self):
        rows = iter(self._cur)
        while True:
            row = _sqlite_errors(next)(rows, None)
            if row is None:
                return
            yield self._wrap(row)

    @_sqlite_errors
    def fetchone(self):
        for row in self._cur:
            return self._wrap(row)
        return None

    @_sqlite_errors
    def fetchall(self):
        return [self._wrap(r) for r in self._cur]


class _ApswConnection:
    @_sqlite_errors
    def __init__(self, path, readonly, timeout):
        import apsw
        flags = apsw.SQLITE_OPEN_READONLY if readonly else (
            apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
        self._db = apsw.Connection(str(path), flags=flags | apsw.SQLITE_OPEN_URI)
        self._db.setbusytimeout(int(timeout * 1000))
        self._db.enable_load_extension(True)
        self._db.load_extension(EXTENSION)
        self.row_factory = None

    def _run(self, method, sql, params):
        # The columns of a statement, taken when it is prepared: once it has
        # run to its end without rows, apsw no longer gives them.
        seen = []

        def trace(cur, _sql, _bindings):
            seen.append([(d[0],) + (None,) * 6 for d in cur.getdescription()] or None)
            return True
        cur = self._db.cursor()
        cur.exec_trace = trace
        cur = getattr(cur, method)(sql, params)
        return _Cursor(self, cur, seen[-1] if seen else None)

    @_sqlite_errors
    def execute(self, sql, params=()):
        return self._run("execute", sql, params)

    @_sqlite_errors
    def executemany(self, sql, seq):
        return self._run("executemany", sql, seq)

    @_sqlite_errors
    def executescript(self, sql):
        self._db.cursor().execute(sql)

    def commit(self):
        pass

    def close(self):
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _path_of(target):
    """(path, readonly) from a path or a "file:PATH?mode=ro" URI."""
    text = str(target)
    if text.startswith("file:"):
        path, _, query = text[5:].partition("?")
        return path, "mode=ro" in query
    return text, False


def store_db(target, uri=False, timeout=5.0):
    """Opens a hot store (a path, or a file: URI with ?mode=ro) with its fact
    tables readable."""
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        db = sqlite3.connect(target, uri=uri, timeout=timeout)
        db.enable_load_extension(True)
        db.load_extension(EXTENSION)
        db.enable_load_extension(False)
        return db
    path, readonly = _path_of(target) if uri else (str(target), False)
    return _ApswConnection(path, readonly, timeout)

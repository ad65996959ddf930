"""`process --follow` reads a file that is still being written.

Regression: a line whose writer had not yet written its newline was handed
out as a complete record, rejected as malformed, and its event lost. A record
is only complete with its newline while the file may still grow.
"""
import signal
import sqlite3
import subprocess
import time

from harness import BIN, assert_ok, clean_env, cli
from storedb import store_db


def test_a_line_written_in_two_parts_is_one_event(tmp_path):
    stream = tmp_path / "all.jsonl"
    assert_ok(cli("gen", "--seed", "4", "--count", "50", "--max", "--start",
                  "2026-11-02T00:00:00Z", "--out", stream))
    lines = stream.read_bytes().splitlines(keepends=True)
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(b"".join(lines[:10]))
    data = tmp_path / "d"
    proc = subprocess.Popen([BIN, "process", "--follow", "--from", str(feed), "--data",
                             str(data), "--archive-every", "0"], stderr=subprocess.PIPE,
                            env=clean_env())
    try:
        time.sleep(1.0)
        with open(feed, "ab") as fh:
            for line in lines[10:]:
                # Each record arrives in two writes, the newline last.
                fh.write(line[:len(line) // 2])
                fh.flush()
                time.sleep(0.12)
                fh.write(line[len(line) // 2:])
                fh.flush()
        deadline = time.time() + 60
        while True:
            db = store_db(f"file:{data}/hot.db?mode=ro", uri=True)
            pos = db.execute("SELECT max(position) FROM ingest_positions").fetchone()[0]
            db.close()
            if pos == feed.stat().st_size:
                break
            assert time.time() < deadline, f"stuck at {pos} of {feed.stat().st_size}"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, proc.stderr.read().decode()
    db = store_db(f"{data}/hot.db")
    rejected = db.execute("SELECT count(*), group_concat(reason, '; ') FROM rejected_events")
    assert rejected.fetchone() == (0, None)
    stored = sum(db.execute(f"SELECT count(*) FROM {t}_data").fetchone()[0]
                 for t in ("orders", "payments", "cancellations"))
    db.close()
    assert stored == len(lines)

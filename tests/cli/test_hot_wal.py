"""The hot store's write-ahead log while `shopstream process` writes a large
replay (src/hot/sqlite.c): checkpoints run on a thread of their own, yet the
WAL stays bounded (SQLite starts it over only when a transaction begins with
every frame checkpointed, which the writer waits for once the WAL is large),
and the database file grows during the run, not only at its end.

The replay's database grows to about 105 MiB; the WAL may hold 32 MiB
(2,048 pages of 16 KiB) plus what one transaction adds (a few MiB; 16 MiB
allowed): 48 MiB at most.
"""

import subprocess
import time

from conftest import BIN, SANITIZER_MARKS, engine_state, hot_db
from harness import clean_env

SEED, COUNT = 11, 750_000
WAL_BOUND = 48 << 20


def test_wal_stays_bounded_and_checkpoints_run_during_a_replay(tmp_path, gen_file):
    src = gen_file(SEED, COUNT)
    records = sum(1 for _ in open(src, "rb"))
    data = tmp_path / "d"
    wal = hot_db(data).with_name("hot.db-wal")
    proc = subprocess.Popen([BIN, "process", "--from", str(src), "--data", str(data),
                             "--archive-every", "0"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=clean_env())
    wal_max = db_during = 0
    while proc.poll() is None:
        try:
            wal_max = max(wal_max, wal.stat().st_size)
            db_during = max(db_during, hot_db(data).stat().st_size)
        except FileNotFoundError:
            pass
        time.sleep(0.005)  # a sample every 5 ms, without taking a core from the writer
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    assert proc.returncode == 0, err
    for mark in SANITIZER_MARKS:
        assert mark not in err, err
    db_size = hot_db(data).stat().st_size
    assert engine_state(data)["stored"] == records
    print(f"{records} records: database {db_size >> 20} MiB; largest WAL seen "
          f"{wal_max >> 20} MiB; database file during the run up to {db_during >> 20} MiB")
    assert db_size > 2 * WAL_BOUND, "the replay is too small to tell a bounded WAL"
    assert 0 < wal_max <= WAL_BOUND
    assert db_during > db_size // 2, "checkpoints did not run during the replay"

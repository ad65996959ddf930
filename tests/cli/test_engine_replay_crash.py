"""Replay and crash: the hot store is a pure function of the input.

(a) Replays change nothing. After one run over a file, processing the same
    file again (a new process on the same --data) reads nothing, because the
    stored position is at its end, and leaves every table identical. Feeding
    the same bytes through stdin a second and a third time, and a file that is
    the stream concatenated with itself, leaves the facts, dimensions, KPIs,
    late and rejected events identical too; only the counters of records seen
    and of duplicates grow. The stream carries malformed lines, late events and
    duplicates besides the generated events, so that every table is exercised.

(b) SIGKILL at random points changes nothing. The engine is killed ten times
    at seeded random moments while it processes 150,000 orders, restarted
    alternately with tiny transactions (5 records: kills land anywhere,
    commits included) and large ones (5,000 records: kills throw away much
    uncommitted work, KPI deltas and cached orders); after each kill the committed store must be a consistent
    prefix of the input (facts, counters and KPI totals match the records
    before the committed position). After a final uninterrupted restart the
    store must equal, table by table and column by column (received_at
    aside), that of one uninterrupted run into a fresh directory.
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import (BIN, DERIVED_TABLES, ENGINE_START, assert_same_store, connect_ro, hot_db,
                      engine_state, fact_and_kpi_totals, positions, process, store_diff)

REPLAY_SEED, REPLAY_COUNT = 31, 20_000
CRASH_SEED, CRASH_COUNT = 37, 150_000
KILL_SEED = 4242
KILLS = 10


def with_extras(raw):
    """The generated stream plus what makes every table non-trivial: malformed
    lines, blank lines, in-window duplicates and events behind the watermark."""
    lines = raw.split(b"\n")
    assert lines[-1] == b""
    lines = lines[:-1]
    n = len(lines)
    out = []
    late_added = 0
    for i, line in enumerate(lines):
        out.append(line)
        if i % 4001 == 100:
            out.append(b'{"type":"order","event_id":"broken-%d"' % i)  # truncated
            out.append(b"")
            out.append(b'{"type":"payment","amount":true,"n":%d}' % i)
        if i % 3001 == 7 and i + 5 < n:
            out.append(lines[i + 2])  # a duplicate a few events early
            out.append(lines[i - 3])  # a duplicate of the recent past
        if i % 5003 == 4000:
            # An early order again, under a new event id: its minute closed long
            # ago, so it is late (not a duplicate).
            ev = json.loads(lines[i - 3000])
            if ev["type"] == "order":
                line2 = lines[i - 3000].replace(ev["event_id"].encode(),
                                                ev["event_id"].encode() + b"-late")
                out.append(line2)
                out.append(line2)  # the same late event twice: recorded once
                late_added += 1
    assert late_added >= 2
    return b"\n".join(out) + b"\n"


@pytest.fixture(scope="module")
def replay_input(gen_file, tmp_path_factory):
    base = tmp_path_factory.mktemp("replay")
    raw = with_extras(gen_file(REPLAY_SEED, REPLAY_COUNT, ENGINE_START).read_bytes())
    path = base / "stream.jsonl"
    path.write_bytes(raw)
    return base, path, raw


def records(raw):
    """Non-blank records in the bytes."""
    return sum(1 for ln in raw.split(b"\n") if ln.strip())


def test_replays_change_nothing(replay_input, tmp_path):
    base, path, raw = replay_input
    a = tmp_path / "a"
    process(a, path)
    st1 = engine_state(a)
    assert st1["rejected"] > 0 and st1["late"] > 0 and st1["duplicates"] > 0, st1
    with connect_ro(a) as db:
        n_late = db.execute("SELECT count(*) FROM late_events").fetchone()[0]
        n_rej = db.execute("SELECT count(*) FROM rejected_events").fetchone()[0]
    assert n_late == st1["late"] and n_rej == st1["rejected"]
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    with sqlite3.connect(f"file:{hot_db(a)}?mode=ro", uri=True) as src, \
            sqlite3.connect(snapshot / "hot.db") as dst:
        src.backup(dst)

    # The same file again: the stored position is at its end, nothing is read,
    # and every table (positions and counters included) is unchanged.
    process(a, path)
    assert_same_store(snapshot, a)
    assert positions(a) == {f"file:{path.resolve()}": len(raw)}

    # The same bytes through stdin, twice: all duplicates, late duplicates and
    # already-recorded rejects.
    n = records(raw)
    for k in (1, 2):
        process(a, "-", input=raw)
        assert_same_store(snapshot, a, tables=DERIVED_TABLES)
        st = engine_state(a)
        valid = n - st1["rejected"]
        assert st["events_in"] == st1["events_in"] + k * n
        assert st["stored"] == st1["stored"] and st["late"] == st1["late"]
        assert st["duplicates"] == st1["duplicates"] + k * valid
        assert st["rejected"] == st1["rejected"] * (k + 1)
        assert (st["watermark"], st["max_ts"]) == (st1["watermark"], st1["max_ts"])

    # The stream concatenated with itself, as a new file into the same store.
    double = base / "double.jsonl"
    double.write_bytes(raw + raw)
    process(a, double)
    assert_same_store(snapshot, a, tables=DERIVED_TABLES)

    # ... and into a fresh store: the second copy adds nothing. Rejected
    # records name their source file, which differs here.
    c = tmp_path / "c"
    process(c, double)
    assert_same_store(snapshot, c, tables=DERIVED_TABLES,
                      exclude=("received_at", "rejected_events.source"))
    st = engine_state(c)
    assert (st["stored"], st["late"], st["watermark"], st["max_ts"]) == \
        (st1["stored"], st1["late"], st1["watermark"], st1["max_ts"])
    assert st["events_in"] == 2 * n


@pytest.fixture(scope="module")
def crash_input(gen_file):
    path = gen_file(CRASH_SEED, CRASH_COUNT, ENGINE_START)
    return path, path.read_bytes()


def committed_prefix_is_consistent(data, raw, source):
    """The committed store equals the processing of the input up to its stored
    position: the generated events are all valid, in time order and unique."""
    pos = positions(data).get(source, 0)
    st = engine_state(data) if pos else {}
    if pos == 0:
        return 0
    assert 0 < pos <= len(raw)
    assert raw[pos - 1:pos] == b"\n", f"position {pos} is not at the start of a line"
    n = raw.count(b"\n", 0, pos)
    facts, kpi, gross = fact_and_kpi_totals(data)
    prefix = raw[:pos]
    want = (prefix.count(b'{"type":"order"'), prefix.count(b'{"type":"payment"'),
            prefix.count(b'{"type":"cancellation"'))
    assert facts == want, f"at position {pos}: facts {facts}, input before it {want}"
    assert st["events_in"] == st["stored"] == n, (pos, n, st)
    assert kpi[:3] == facts and kpi[3] == gross, f"at position {pos}: KPIs {kpi}, facts {facts}"
    return pos


def test_sigkill_at_random_points_changes_nothing(crash_input, tmp_path):
    path, raw = crash_input
    source = f"file:{path.resolve()}"

    # The reference: one uninterrupted run with the default commit cadence.
    ref = tmp_path / "ref"
    t0 = time.monotonic()
    process(ref, path)
    ref_secs = time.monotonic() - t0

    # Tiny transactions make a run slow enough (several seconds) that kills
    # after 0.05-1.5 s land mid-stream; large ones are fast, so their kills
    # come sooner. The result must not depend on the commit cadence either.
    rng = random.Random(KILL_SEED)
    data = tmp_path / "killed"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    kills = []
    last = 0
    for i in range(KILLS):
        batch = 5 if i % 2 == 0 else 5000
        delay = rng.uniform(0.05, 1.5) if batch == 5 else rng.uniform(0.05, 0.3)
        args = [BIN, "process", "--from", str(path), "--data", str(data), "--commit-records",
                str(batch), "--log-level", "error"]
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            finished = True
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                finished = False
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            err = proc.stderr.read().decode(errors="replace")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        if finished:
            assert proc.returncode == 0, f"attempt {i}: exit {proc.returncode}: {err}"
        else:
            assert proc.returncode == -signal.SIGKILL
        pos = committed_prefix_is_consistent(data, raw, source)
        assert pos >= last, f"the committed position went back from {last} to {pos}"
        last = pos
        kills.append((batch, round(delay, 3), finished, pos))
    process(data, path)
    assert positions(data) == {source: len(raw)}

    mid = [k for k in kills if not k[2] and 0 < k[3] < len(raw)]
    print(f"uninterrupted run {ref_secs:.2f} s; attempts (commit records, delay, finished, "
          f"position): {kills}")
    assert len(mid) >= 4, f"too few kills landed mid-stream: {kills}"
    diffs = store_diff(ref, data)
    assert not diffs, "the killed and restarted run differs from an uninterrupted one:\n  " + \
        "\n  ".join(diffs)


def test_stdin_redirected_from_files_is_read_whole_every_time(gen_file, tmp_path):
    """Regression: when stdin was a regular file (`process --from - < FILE`), the
    engine resumed it at the position stored for the source "stdin" by an
    earlier run, whatever file that run had read, and skipped data silently.
    Stdin is now always read from its start (a replay is harmless)."""
    raw = gen_file(REPLAY_SEED, 2000, ENGINE_START).read_bytes()
    lines = raw.split(b"\n")[:-1]
    half = len(lines) // 2
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"\n".join(lines[:half]) + b"\n")
    second.write_bytes(b"\n".join(lines[half:]) + b"\n")
    ref = tmp_path / "ref"
    process(ref, "-", input=raw)
    data = tmp_path / "data"
    process(data, "-", input=first)
    process(data, "-", input=second)
    process(data, "-", input=second)   # the same file again: duplicates only
    assert_same_store(ref, data, tables=DERIVED_TABLES)
    st = engine_state(data)
    assert st["stored"] == len(lines) and st["events_in"] == len(lines) + len(lines) - half
    assert st["duplicates"] == len(lines) - half

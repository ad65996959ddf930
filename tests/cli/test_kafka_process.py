"""`shopstream process --from kafka://HOST:PORT/TOPIC` against a real broker.

The session starts its own single-node broker with scripts/kafka (the outage
test a second one, which it stops and restarts) and writes and reads topics
with `shopstream gen` and kcat, as a person would. The reference for every
store is the file-based run of the same generated stream: Kafka must change
nothing but the bookkeeping (positions per partition, KPI rows per shard),
and, since the watermark that closes a shard's windows is the lowest over
the partitions a process holds, which of the newest minutes are final.

- 100,000 orders on 4 partitions: each partition holds, byte for byte and in
  order, the file's events of its orders; processed with --exit-at-end, the
  facts, dimensions, KPI values and counters equal the file run's, and only
  the newest minutes are not final. On a KRaft broker and on one in
  ZooKeeper mode.
- SIGKILL at 10 seeded random moments (tiny and large transactions in
  turn), each time a committed store that is a consistent prefix of every
  partition, then a final run: the store equals an uninterrupted Kafka run's
  in every table, final flags included.
- Two consumers of one group sharing one store (both paced, so that they
  read at the same time on any machine): the totals are exact; one
  of them (made to fetch slowly) killed mid-stream, the survivor is given
  its partitions after the session timeout, resumes them at the stored
  positions, and the totals are still exact.
- The broker stopped for 20 s and restarted with its data on its port while
  gen (real time, sped up) produces and process consumes: the topic holds
  every event exactly once and the store equals the file run's.
- Invalid JSON, invalid UTF-8, a field of the wrong type and a 1.5 MiB record
  among good events: each reaches TOPIC.dlq with the reason of its
  rejected_events row and headers naming its origin; the good ones are
  stored.
- A fetch queue of 1 MiB: the consumer wakes librdkafka's fetchers as the
  queue empties (the debug log shows it), and the store equals the file run's.
- Usage errors exit 2; a cluster that does not answer is waited for with a
  warning, and with --exit-at-end is an error within the session timeout.
- Regression: a restart that claimed an assignment's partitions one by one
  closed a partition's windows ahead of the others.

The survivor test also found that an engine wrote the stored positions of
partitions it had given up back into the store, behind their new owner's
(records were read twice); tests/unit/test_shards.c holds its regression
test.
"""

import itertools
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter, defaultdict
from types import SimpleNamespace

import pytest

from conftest import (BIN, DERIVED_TABLES, ENGINE_START, SANITIZER_MARKS, connect_ro,
                      engine_state, fact_and_kpi_totals, hot_db, json_line, order_fields,
                      payment_fields, positions, process, store_diff, ts_ms)
from harness import assert_ok, clean_env, cli, describe, free_port  # noqa: F401
from harness import kafka, kafka_each_mode  # noqa: F401
from harness import start_kafka, stop_kafka
from storedb import store_db

GEN = ["gen", "--max", "--start", ENGINE_START]
PARTITIONS = 4
SEED_100K, COUNT_100K = 71, 100_000
CRASH_SEED, CRASH_COUNT = 73, 150_000
KILL_SEED = 4343
KILLS = 10
OUTAGE_S = 20
LINE_MAX = 1 << 20  # the longest record the engine takes whole

# A dead member leaves the group after this, not after the default 45 s.
FAST_GROUP = ["-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=1000"]

# librdkafka pauses fetching for a second (fetch.queue.backoff.ms) whenever
# its queue holds more than queued.min.messages. With 1, a consumer fetches
# once a second per partition: 4 MiB (about 12,000 records) with PACED_FETCH,
# 64 KiB with SLOW_FETCH. Otherwise a fast machine reads a partition of the
# 100k topic in a fraction of a second, before a test can see who holds what
# or watch for a commit.
PACED_FETCH = ["-X", "queued.min.messages=1"]
SLOW_FETCH = [*PACED_FETCH, "-X", "fetch.message.max.bytes=65536"]

# Everything the engine derives but the KPI rows, which Kafka keeps per shard:
# those are compared through the kpi_minute view, which adds the shards up.
FACTS_AND_DIMENSIONS = tuple(t for t in DERIVED_TABLES if t != "kpi_minute_data")
KPI_VALUES = ("orders", "units", "gross_revenue", "paid_revenue", "aov", "payment_attempts",
              "failed_payments", "cancellations", "cancelled_revenue")
ORDER_ID = re.compile(rb'"order_id":"([^"]*)"')

_groups = itertools.count()
_topics = itertools.count()


def group(name):
    """A consumer group of its own: groups only decide who reads what (and
    the lag Kafka shows); where reading resumes is the store's position."""
    return f"{name}-{next(_groups)}"


def kafka_uri(address, topic):
    return f"kafka://{address}/{topic}"


# ---- topics ----

def read_topic(address, topic, headers=False):
    """Every message of the topic as (partition, offset, value, headers):
    kcat writes each message's length before it, so values may hold any
    byte. headers is kcat's %h text ("k=v,k=v") or None."""
    fmt = "%p %o %S %h\n%s\n" if headers else "%p %o %S\n%s\n"
    proc = subprocess.run(["kcat", "-C", "-b", address, "-t", topic, "-e", "-o", "beginning", "-q",
                           "-f", fmt], capture_output=True, timeout=300)
    assert proc.returncode == 0, f"kcat: {proc.stderr.decode(errors='replace')}"
    data, recs, i = proc.stdout, [], 0
    while i < len(data):
        nl = data.index(b"\n", i)
        head = data[i:nl].decode(errors="replace").split(" ", 3)
        n = int(head[2])
        value = data[nl + 1:nl + 1 + n]
        assert data[nl + 1 + n:nl + 2 + n] == b"\n", f"kcat output out of step at byte {i}"
        recs.append((int(head[0]), int(head[1]), value, head[3] if headers else None))
        i = nl + 2 + n
    return recs


def assert_topic_holds_file(recs, raw):
    """The topic holds exactly the file's records: each order's events in one
    partition, and each partition's messages, byte for byte and in order,
    the file's records of its orders. Returns the records per partition."""
    by_part = defaultdict(list)
    part_of = {}
    for p, _, value, _ in recs:
        oid = ORDER_ID.search(value).group(1)
        assert part_of.setdefault(oid, p) == p, \
            f"order {oid} is in partitions {part_of[oid]} and {p}"
        by_part[p].append(value)
    want = defaultdict(list)
    for line in raw.splitlines():
        want[part_of.get(ORDER_ID.search(line).group(1), -1)].append(line)
    assert -1 not in want, f"{len(want[-1])} records of the file are in no partition, e.g. " \
                           f"{want[-1][0][:200]}"
    for p in sorted(by_part):
        if by_part[p] != want[p]:
            a, b = by_part[p], want[p]
            first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            pytest.fail(f"partition {p} holds {len(a)} records, the file {len(b)} of its orders; "
                        f"first difference at offset {first}:\n"
                        f"  topic: {a[first][:200] if first < len(a) else None}\n"
                        f"  file:  {b[first][:200] if first < len(b) else None}")
    assert sum(map(len, by_part.values())) == raw.count(b"\n")
    return by_part


def gen_topic(address, topic, flags, partitions=PARTITIONS):
    assert_ok(cli(*GEN, *flags, "--out", kafka_uri(address, topic), "--partitions", partitions,
                  timeout=300))


def gen_file(path, flags):
    assert_ok(cli(*GEN, *flags, "--out", path, timeout=300))
    return path.read_bytes()


# ---- stores ----

def kpi_view_diff(dir_a, dir_b, final=False, examples=3):
    """Differences between the kpi_minute views (shards added up) of two
    stores: every value column, and the final flag if asked."""
    cols = ", ".join(("minute_start", "dimension", "dimension_value", *KPI_VALUES,
                      *(("final",) if final else ())))
    db = store_db(f"file:{hot_db(dir_a)}?mode=ro", uri=True)
    try:
        db.execute("ATTACH ? AS b", (f"file:{hot_db(dir_b)}?mode=ro",))
        n = [db.execute(f"SELECT count(*) FROM {s}.kpi_minute").fetchone()[0]
             for s in ("main", "b")]
        only_a = db.execute(f"SELECT {cols} FROM main.kpi_minute EXCEPT "
                            f"SELECT {cols} FROM b.kpi_minute LIMIT {examples}").fetchall()
        only_b = db.execute(f"SELECT {cols} FROM b.kpi_minute EXCEPT "
                            f"SELECT {cols} FROM main.kpi_minute LIMIT {examples}").fetchall()
    finally:
        db.close()
    if n[0] == n[1] and not only_a and not only_b:
        return []
    return [f"kpi_minute: {n[0]} rows vs {n[1]}; only in {dir_a}: {only_a}; "
            f"only in {dir_b}: {only_b}"]


def counters(data):
    """engine_state without the watermark (the lowest over the shards)."""
    st = engine_state(data)
    st.pop("watermark", None)
    return st


def assert_same_results(data, ref):
    """The facts, dimensions, KPI values and counters of a Kafka run equal
    those of the reference run."""
    diffs = store_diff(ref, data, tables=FACTS_AND_DIMENSIONS) + kpi_view_diff(ref, data)
    assert not diffs, "the store differs from the reference:\n  " + "\n  ".join(diffs)
    assert counters(data) == counters(ref)


def wait_until(what, cond, timeout, procs=()):
    """Waits until cond() is true; fails after timeout seconds or when one of
    procs (background runs) has exited meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"{p.name} exited {p.poll()} while waiting for {what}:\n"
                            f"{p.text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s")
        time.sleep(0.1)


def events_in(data):
    try:
        return engine_state(data).get("events_in", 0)
    except sqlite3.OperationalError:  # no store yet
        return 0


class Background:
    """`shopstream ARGS` running in the background, its stderr in a file."""

    def __init__(self, tmp, name, *args):
        self.name = name
        self.log = tmp / f"{name}.log"
        self._err = open(self.log, "wb")
        self.proc = subprocess.Popen([BIN, *map(str, args)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._err, env=clean_env())

    def text(self):
        return self.log.read_text(errors="replace")

    def poll(self):
        return self.proc.poll()

    def assigned(self, topic):
        """Partitions in the order this process was assigned them, and the
        offset it resumed each at (None: the start)."""
        return [(int(p), int(o) if o else None) for p, o in re.findall(
            rf"partition (\d+) of topic '{re.escape(topic)}' assigned; "
            rf"(?:resuming at offset (\d+)|reading from its start)", self.text())]

    def holding(self, topic):
        """The partitions this process holds now, as its log tells, and the
        offset it resumed each at (None: the start)."""
        held = {}
        for p, o, revoked in re.findall(
                rf"partition (\d+) of topic '{re.escape(topic)}' (?:assigned; "
                rf"(?:resuming at offset (\d+)|reading from its start)|(revoked))", self.text()):
            if revoked:
                held.pop(int(p), None)
            else:
                held[int(p)] = int(o) if o else None
        return held

    def wait_assigned(self, topic, n, timeout=60):
        wait_until(f"{n} partitions assigned to {self.name}",
                   lambda: len(self.assigned(topic)) >= n, timeout, [self])

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def finish(self, timeout=120):
        """Waits for the exit; returns the exit code (negative: a signal)."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"{self.name} did not exit within {timeout} s:\n{self.text()[-3000:]}")
        finally:
            self._err.close()
        err = self.text()
        for mark in SANITIZER_MARKS:
            assert mark not in err, f"{self.name}:\n{err[-5000:]}"
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._err.close()


@pytest.fixture
def background(tmp_path):
    """background(name, *args) starts a run; every run still going at the
    end of the test is killed."""
    runs = []

    def start(name, *args):
        runs.append(Background(tmp_path, name, *args))
        return runs[-1]

    yield start
    for r in runs:
        r.close()


def non_final_minutes_are_the_newest(data):
    """Every minute before the store's watermark is final in every row of
    kpi_minute, every later one in none; returns the non-final minutes.
    Underneath, each shard's row of a minute is final exactly when that
    shard's own watermark has passed the minute's end, whether the engine
    wrote the row final or the store marked it so when the watermark moved."""
    wm = engine_state(data)["watermark"]
    with connect_ro(data) as db:
        rows = db.execute("SELECT minute_start, min(final), max(final) FROM kpi_minute "
                          "GROUP BY minute_start").fetchall()
        shard_wm = dict(db.execute("SELECT shard, watermark FROM shard_state"))
        per_shard = db.execute("SELECT minute_start, shard, final FROM kpi_minute_data "
                               "ORDER BY minute_start").fetchall()
    assert per_shard, "no KPI rows"
    wrong = [(m, k, f) for m, k, f in per_shard
             if f != int(shard_wm[k] is not None and ts_ms(m) + 60_000 <= shard_wm[k])]
    assert not wrong, (f"{len(wrong)} of {len(per_shard)} KPI rows with a final flag their "
                       f"shard's watermark does not give, e.g. {wrong[:3]}; watermarks {shard_wm}")
    open_minutes = set()
    for minute, lo, hi in rows:
        closed = ts_ms(minute) + 60_000 <= wm
        assert (lo, hi) == ((1, 1) if closed else (0, 0)), \
            f"minute {minute}: final flags {lo}..{hi}, watermark {wm}"
        if not closed:
            open_minutes.add(minute)
    return open_minutes


# ---- the 100,000 orders on 4 partitions ----

FLAGS_100K = ["--seed", SEED_100K, "--count", COUNT_100K]


@pytest.fixture(scope="module")
def file_100k(tmp_path_factory):
    """The stream in a file, and the file's store."""
    base = tmp_path_factory.mktemp("orders-100k")
    raw = gen_file(base / "events.jsonl", FLAGS_100K)
    ref = base / "ref"
    t0 = time.monotonic()
    process(ref, base / "events.jsonl")
    return SimpleNamespace(raw=raw, ref=ref, records=raw.count(b"\n"),
                           ref_s=time.monotonic() - t0)


@pytest.fixture(scope="module")
def orders_100k_on(file_100k):
    """orders_100k_on(address): the stream on a 4-partition topic of that
    broker (written once per broker) and in a file, and the file's store."""
    made = {}

    def on(address):
        if address not in made:
            # A topic of this instance's own: pytest may set the fixture up
            # again in a session (as it orders tests around the brokers' modes),
            # and the broker keeps what an earlier instance wrote.
            topic = f"orders-100k-{next(_topics)}"
            t0 = time.monotonic()
            gen_topic(address, topic, FLAGS_100K)
            produced_s = time.monotonic() - t0
            t0 = time.monotonic()
            recs = read_topic(address, topic)
            read_s = time.monotonic() - t0
            made[address] = SimpleNamespace(**vars(file_100k), topic=topic, recs=recs,
                                            sizes=Counter(p for p, _, _, _ in recs),
                                            produced_s=produced_s, read_s=read_s)
        return made[address]

    return on


@pytest.fixture(scope="module")
def orders_100k(kafka, orders_100k_on):
    """The stream on a 4-partition topic of the session's KRaft broker."""
    return orders_100k_on(kafka)


def test_100k_orders_on_4_partitions_give_the_file_runs_results(kafka_each_mode, orders_100k_on,
                                                                tmp_path):
    kafka = kafka_each_mode
    s = orders_100k_on(kafka)
    by_part = assert_topic_holds_file(s.recs, s.raw)
    assert sorted(by_part) == list(range(PARTITIONS))
    assert sum(1 for ln in s.raw.splitlines() if ln.startswith(b'{"type":"order"')) == COUNT_100K

    data = tmp_path / "kafka"
    t0 = time.monotonic()
    proc = process(data, kafka_uri(kafka, s.topic), "--exit-at-end", "--group", group("exact"))
    process_s = time.monotonic() - t0
    err = proc.stderr.decode(errors="replace")
    for p in range(PARTITIONS):
        assert f"partition {p} of topic '{s.topic}' assigned; reading from its start" in err, err
    assert_same_results(data, s.ref)
    assert engine_state(data)["events_in"] == s.records
    assert positions(data) == {f"kafka:{s.topic}/{p}": len(by_part[p]) for p in by_part}
    with connect_ro(data) as db:
        assert db.execute("SELECT count(DISTINCT shard) FROM kpi_minute_data").fetchone()[0] == 4

    # Only the newest minutes may still be open, more of them than in the
    # file run: a partition whose last events are older holds them open.
    open_kafka = non_final_minutes_are_the_newest(data)
    open_file = non_final_minutes_are_the_newest(s.ref)
    assert open_file <= open_kafka
    assert engine_state(data)["watermark"] <= engine_state(s.ref)["watermark"]
    print(f"{s.records} records on {PARTITIONS} partitions "
          f"({', '.join(str(len(by_part[p])) for p in sorted(by_part))}): produced in "
          f"{s.produced_s:.1f} s, read back with kcat in {s.read_s:.1f} s, processed in "
          f"{process_s:.1f} s (the file in {s.ref_s:.1f} s); minutes not final: "
          f"{len(open_kafka)} (file run: {len(open_file)})")


# ---- SIGKILL at random points ----

def committed_prefix_is_consistent(data, topic, types):
    """The committed store holds exactly the records before each partition's
    stored position: generated events are all valid, unique and in time
    order within a partition. Returns the positions."""
    pos = {p: positions(data).get(f"kafka:{topic}/{p}", 0) for p in range(PARTITIONS)}
    if not any(pos.values()):
        return pos
    want = Counter()
    for p, n in pos.items():
        assert 0 <= n <= len(types[p]), (p, n)
        want.update(types[p][:n])
    st = engine_state(data)
    facts, kpi, gross = fact_and_kpi_totals(data)
    assert facts == (want["order"], want["payment"], want["cancellation"]), \
        f"at positions {pos}: facts {facts}, records before them {dict(want)}"
    assert st["events_in"] == st["stored"] == sum(pos.values()), (pos, st)
    assert kpi[:3] == facts and kpi[3] == gross, f"at positions {pos}: KPIs {kpi}, facts {facts}"
    return pos


def test_sigkill_at_random_points_changes_nothing(kafka, tmp_path, background):
    topic = "orders-crash"
    gen_topic(kafka, topic, ["--seed", CRASH_SEED, "--count", CRASH_COUNT])
    types = defaultdict(list)
    for p, _, value, _ in read_topic(kafka, topic):
        types[p].append(value[9:value.index(b'"', 9)].decode())
    uri = kafka_uri(kafka, topic)
    total = sum(map(len, types.values()))

    ref = tmp_path / "ref"
    t0 = time.monotonic()
    process(ref, uri, "--exit-at-end", "--group", group("crash-ref"))
    ref_s = time.monotonic() - t0
    assert engine_state(ref)["events_in"] == total

    # Tiny transactions (5 records) let kills land anywhere, commits
    # included; large ones (5,000) throw away much uncommitted work. The
    # delay counts from the assignment, when reading starts.
    rng = random.Random(KILL_SEED)
    data = tmp_path / "killed"
    kills = []
    last = {p: 0 for p in range(PARTITIONS)}
    for i in range(KILLS):
        batch = 5 if i % 2 == 0 else 5000
        delay = rng.uniform(0.05, 1.5) if batch == 5 else rng.uniform(0.05, 0.5)
        run = background(f"attempt-{i}", "process", "--from", uri, "--data", data, "--exit-at-end",
                         "--group", group("crash"), "--commit-records", batch)
        run.wait_assigned(topic, PARTITIONS)
        time.sleep(delay)
        finished = run.poll() is not None
        run.signal(signal.SIGKILL)
        rc = run.finish()
        if finished:
            assert rc == 0, f"attempt {i}: exit {rc}:\n{run.text()[-3000:]}"
        else:
            assert rc == -signal.SIGKILL, f"attempt {i}: exit {rc}:\n{run.text()[-3000:]}"
        pos = committed_prefix_is_consistent(data, topic, types)
        assert all(pos[p] >= last[p] for p in pos), f"a position went back: {last} -> {pos}"
        last = pos
        kills.append((batch, round(delay, 3), finished, sum(pos.values())))
    t0 = time.monotonic()
    process(data, uri, "--exit-at-end", "--group", group("crash-final"))
    final_s = time.monotonic() - t0

    mid = [k for k in kills if not k[2] and 0 < k[3] < total]
    print(f"{total} records; uninterrupted run {ref_s:.1f} s, final run {final_s:.1f} s; attempts "
          f"(commit records, delay after assignment, finished, records committed): {kills}")
    assert len(mid) >= 4, f"too few kills landed mid-stream: {kills}"
    # With one consumer holding every partition, the watermark and so the
    # final flags are those of the uninterrupted run too.
    diffs = store_diff(ref, data) + kpi_view_diff(ref, data, final=True)
    assert not diffs, "the killed and restarted run differs from an uninterrupted one:\n  " + \
        "\n  ".join(diffs)


# ---- two consumers of one group on one store ----

def both_hold_partitions(topic, a, b):
    """Whether a and b hold the topic's partitions between them (a split
    group), as their logs tell."""
    def split():
        x, y = a.holding(topic), b.holding(topic)
        return bool(x and y) and sorted([*x, *y]) == list(range(PARTITIONS))
    return split


def test_two_consumers_share_a_store_exactly(kafka, orders_100k, tmp_path, background):
    s = orders_100k
    data = tmp_path / "shared"
    args = ["process", "--from", kafka_uri(kafka, s.topic), "--data", data, "--exit-at-end",
            "--group", group("pair"), *FAST_GROUP, *PACED_FETCH]
    t0 = time.monotonic()
    a = background("a", *args)
    b = background("b", *args)
    wait_until("the partitions split between the two", both_hold_partitions(s.topic, a, b), 60,
               [a, b])
    split = (a.holding(s.topic), b.holding(s.topic))
    assert a.finish(300) == 0, a.text()[-3000:]
    assert b.finish(300) == 0, b.text()[-3000:]
    took = time.monotonic() - t0
    assert_same_results(data, s.ref)
    assert engine_state(data)["duplicates"] == 0
    print(f"two consumers: {s.records} records in {took:.1f} s; split (partition: offset resumed "
          f"at) a {split[0]}, b {split[1]}; all assignments a {a.assigned(s.topic)}, "
          f"b {b.assigned(s.topic)}")


def test_a_killed_consumers_partitions_move_to_the_survivor(kafka, orders_100k, tmp_path,
                                                            background):
    s = orders_100k
    data = tmp_path / "shared"
    g = group("survivor")
    args = ["process", "--from", kafka_uri(kafka, s.topic), "--data", data, "--group", g,
            *FAST_GROUP]
    t0 = time.monotonic()
    # Both paced: a survivor at full speed can read the whole topic before the
    # victim has joined the group, which leaves the victim nothing to commit.
    survivor = background("survivor", *args, *PACED_FETCH)
    victim = background("victim", *args, *SLOW_FETCH)
    wait_until("the partitions split between the two",
               both_hold_partitions(s.topic, survivor, victim), 60, [survivor, victim])
    start_at = victim.holding(s.topic)
    theirs = sorted(start_at)
    seen = len(survivor.assigned(s.topic))

    def victims_positions():
        pos = positions(data)
        return {p: pos.get(f"kafka:{s.topic}/{p}", 0) for p in theirs}

    # The victim (slowed down) dies once it has committed some of its
    # partitions' records.
    wait_until("records committed by the victim",
               lambda: any(n > (start_at[p] or 0) for p, n in victims_positions().items()), 60,
               [victim])
    victim.signal(signal.SIGKILL)
    assert victim.finish() == -signal.SIGKILL
    killed_at = events_in(data)
    left = victims_positions()
    assert any(left[p] < s.sizes[p] for p in theirs), f"the victim had read everything: {left}"
    wait_until("every record in the store", lambda: events_in(data) == s.records, 180, [survivor])
    moved_s = time.monotonic() - t0
    survivor.signal(signal.SIGTERM)
    assert survivor.finish() == 0, survivor.text()[-3000:]

    # After the kill the survivor was given the victim's partitions too, and
    # resumed them at the positions the victim had committed.
    later = {}
    for p, o in survivor.assigned(s.topic)[seen:]:
        later.setdefault(p, o)
    assert set(theirs) <= set(later), (theirs, survivor.text()[-3000:])
    assert {p: later[p] or 0 for p in theirs} == left
    assert_same_results(data, s.ref)
    assert engine_state(data)["duplicates"] == 0
    print(f"victim held partitions {theirs} from {start_at}; killed with {killed_at} records in "
          f"the store; the survivor resumed them at {left} and had all {s.records} "
          f"{moved_s:.1f} s after the start")


# ---- the broker stopped and restarted ----

OUTAGE_PROFILE = '{"cancellations": {"delay_median_minutes": 3.0, "delay_max_hours": 0.25}}'


def test_broker_outage_loses_nothing(tmp_path, background):
    """gen at 150 times real time (about 40 s, short cancellation delays so
    that there is no long tail), process following it; the broker stops
    for 20 s in between and comes back with its data on its port."""
    state = tmp_path / "broker"
    address = start_kafka(state)
    try:
        prof = tmp_path / "profile.json"
        prof.write_text(OUTAGE_PROFILE)
        topic = "orders-outage"
        flags = ["--seed", 79, "--count", 3000, "--rate", 0.3, "--profile", prof,
                 "--start", "2026-11-02T12:00:00Z"]
        uri = kafka_uri(address, topic)
        data = tmp_path / "data"
        t0 = time.monotonic()
        producer = background("gen", "gen", *flags, "--speedup", 150, "--out", uri,
                              "--partitions", PARTITIONS)
        wait_until("the topic", lambda: "created topic" in producer.text(), 60, [producer])
        consumer = background("process", "process", "--from", uri, "--data", data, "--group",
                              group("outage"), *FAST_GROUP)
        consumer.wait_assigned(topic, PARTITIONS)
        wait_until("records in the store", lambda: events_in(data) > 0, 60, [consumer, producer])
        before = events_in(data)
        stop_kafka(state)
        stopped = time.monotonic()
        time.sleep(OUTAGE_S)
        assert producer.poll() is None, f"gen ended during the outage:\n{producer.text()[-3000:]}"
        assert consumer.poll() is None, f"process ended during the outage:\n" \
                                        f"{consumer.text()[-3000:]}"
        during = events_in(data)
        assert start_kafka(state, keep=True) == address
        down_s = time.monotonic() - stopped
        assert producer.finish(300) == 0, producer.text()[-3000:]
        gen_err = producer.text()

        raw = gen_file(tmp_path / "events.jsonl", flags)
        records = raw.count(b"\n")
        assert f"{records} messages delivered to topic '{topic}'" in gen_err, gen_err
        # Exactly once: the idempotent producer's retries added no duplicate.
        assert_topic_holds_file(read_topic(address, topic), raw)
        wait_until("every record in the store", lambda: events_in(data) == records, 180,
                   [consumer])
        consumer.signal(signal.SIGTERM)
        assert consumer.finish() == 0, consumer.text()[-3000:]
        took = time.monotonic() - t0
    finally:
        stop_kafka(state)
    ref = tmp_path / "ref"
    process(ref, tmp_path / "events.jsonl")
    assert_same_results(data, ref)
    assert engine_state(data)["duplicates"] == 0
    assert before < records and during < records
    print(f"{records} records in {took:.1f} s; broker down for {down_s:.1f} s with {during} "
          f"records in the store ({before} when it stopped)")


# ---- the dead-letter topic ----

def bad_records(ts):
    """(name, message, substring of the reason) of malformed messages."""
    o = order_fields(900, ts)
    pay = payment_fields(900, ts + 1000, 1000)
    pay["amount"] = "10.00"  # a string, not a number
    return [
        ("invalid-json", b'{"type":"order","event_id":"bad-1"', "invalid JSON"),
        ("invalid-utf8", json_line(o).replace(b"Test Product", b"Test \xff\xfe Product"),
         "invalid UTF-8"),
        ("wrong-type", json_line(pay), "field 'amount' must be a number, not a string"),
        ("oversized", json_line({**order_fields(901, ts), "pad": "x" * (3 * LINE_MAX // 2)}),
         f"exceeds the limit of {LINE_MAX} bytes"),
    ]


def parse_headers(text):
    """kcat's %h: "k=v,k=v"; a value may hold commas, not ",shopstream."."""
    return dict(h.split("=", 1) for h in re.split(r",(?=shopstream\.)", text))


def test_malformed_messages_reach_the_dead_letter_topic(kafka, tmp_path):
    topic = "orders-dlq"
    flags = ["--seed", 83, "--count", 200]
    gen_topic(kafka, topic, flags, partitions=2)
    raw = gen_file(tmp_path / "events.jsonl", flags)
    # After the generated events, so that the good ones are not late.
    ts = max(ts_ms(t.decode()) for t in re.findall(rb'"ts":"([^"]*)"', raw)) + 3_600_000
    bad = bad_records(ts)
    # Bad messages between good ones, on partition 1.
    lines = []
    for i, (_, value, _) in enumerate(bad):
        lines += [value, json_line(order_fields(1000 + i, ts + i))]
    feed = tmp_path / "feed.jsonl"
    feed.write_bytes(b"\n".join(lines) + b"\n")
    with open(feed, "rb") as f:
        proc = subprocess.run(["kcat", "-P", "-b", kafka, "-t", topic, "-p", "1",
                               "-X", "message.max.bytes=4000000"], stdin=f, capture_output=True,
                              timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    first = read_topic(kafka, topic)
    offsets = {v: (p, o) for p, o, v, _ in first}

    data = tmp_path / "data"
    process(data, kafka_uri(kafka, topic), "--exit-at-end", "--group", group("dlq"))
    st = engine_state(data)
    good = raw.count(b"\n") + len(bad)
    assert (st["stored"], st["rejected"], st["events_in"]) == (good, len(bad), good + len(bad))
    with connect_ro(data) as db:
        rejected = {(src, pos): (reason, blob, n) for src, pos, reason, blob, n in db.execute(
            "SELECT source, position, reason, raw, raw_bytes FROM rejected_events")}
        stored = {r[0] for r in db.execute("SELECT event_id FROM orders_data")}
    assert {f"e-0123456789ab-{1000 + i}-o" for i in range(len(bad))} <= stored

    dlq = read_topic(kafka, f"{topic}.dlq", headers=True)
    assert len(dlq) == len(bad), [(h, v[:80]) for _, _, v, h in dlq]
    origin = {}
    for _, _, got, htext in dlq:
        h = parse_headers(htext)
        assert h["shopstream.topic"] == topic, h
        origin[(int(h["shopstream.partition"]), int(h["shopstream.offset"]))] = got, h
    for name, value, why in bad:
        p, o = offsets[value]
        assert (p, o) in origin, f"{name} (partition {p}, offset {o}) is not in the DLQ: " \
                                 f"{sorted(origin)}"
        got, h = origin[(p, o)]
        assert h["shopstream.bytes"] == str(len(value)), (name, h)
        reason, blob, n = rejected[(f"kafka:{topic}/{p}", o)]
        assert h["shopstream.reason"] == reason and why in reason, (name, h, reason)
        assert n == len(value)
        if len(value) <= LINE_MAX:
            assert got == value == blob, name
        else:
            # Cut: the store keeps the first MiB, the dead-letter topic what
            # a producer may send by default (message.max.bytes 1,000,000).
            assert blob == value[:LINE_MAX], name
            assert 900_000 < len(got) <= 1_000_000 and got == value[:len(got)], (name, len(got))


def test_positions_are_committed_to_kafka_for_lag(kafka, tmp_path):
    """Kafka's tools see the group's lag: after a run to the end, the group's
    committed offsets are the ends of the partitions, which equal the store's
    positions. Another member of the group (kcat) then reads exactly the
    messages produced since, and without committed offsets it would read every
    message (auto.offset.reset=earliest)."""
    topic, g = "orders-lag", group("lag")
    gen_topic(kafka, topic, ["--seed", 87, "--count", 150], partitions=2)
    before = read_topic(kafka, topic)
    ends = {p: max(o for q, o, _, _ in before if q == p) + 1 for p in (0, 1)}
    data = tmp_path / "data"
    process(data, kafka_uri(kafka, topic), "--exit-at-end", "--group", g)
    assert positions(data) == {f"kafka:{topic}/{p}": ends[p] for p in (0, 1)}
    gen_topic(kafka, topic, ["--seed", 88, "--count", 20], partitions=2)
    after = read_topic(kafka, topic)
    proc = subprocess.run(["kcat", "-b", kafka, "-G", g, "-e", "-q", "-X",
                           "auto.offset.reset=earliest", "-f", "%p %o\n", topic],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    read = sorted(tuple(map(int, line.split())) for line in proc.stdout.decode().splitlines())
    want = sorted((p, o) for p, o, _, _ in after if o >= ends[p])
    assert len(want) > 20 and read == want, (len(read), len(want), read[:5], want[:5])


def test_a_small_fetch_queue_is_refilled_as_it_empties(kafka, orders_100k, tmp_path):
    """librdkafka stops fetching a partition while its queue of fetched
    messages is over queued.max.messages.kbytes, and looks again only a
    second later unless its fetcher is woken: with a queue of 1 MiB (about
    3,000 records, against about 52,000 in each of the 4 partitions), a
    replay would wait about 70 times for a second. The consumer wakes a
    partition's fetcher whenever its queue, having filled, is down to half:
    the debug log shows the wakes, and the store equals the file run's."""
    s = orders_100k
    data = tmp_path / "data"
    t0 = time.monotonic()
    proc = process(data, kafka_uri(kafka, s.topic), "--exit-at-end", "--group", group("refill"),
                   "--log-level", "debug", "-X", "queued.max.messages.kbytes=1024")
    took = time.monotonic() - t0
    wakes = proc.stderr.decode(errors="replace").count("after it filled: waking its fetcher")
    assert wakes >= 20, wakes
    assert_same_results(data, s.ref)
    assert engine_state(data)["events_in"] == s.records
    print(f"{s.records} records through a 1 MiB fetch queue in {took:.1f} s, {wakes} wakes")


def test_partitions_are_read_in_step_by_message_time(kafka, tmp_path):
    """Each partition's messages come from a queue of its own, and the
    partition whose next message is the oldest (by its Kafka timestamp)
    goes first, so that the partitions' event times, and the lowest
    watermark that closes the windows, advance together. Four runs of
    messages go to the topic one after the other, alternately to partitions
    0 and 1, so that each partition's log holds two runs apart in time.
    Read in step, the runs come in the order they were produced (A, B, C,
    D); reading whatever a fetch brought, partition by partition, gives
    A, C, B, D. The messages are malformed: the table of rejected records
    keeps the order in which the engine took them (its rowid)."""
    topic = "orders-in-step"
    gen_topic(kafka, topic, ["--seed", 97, "--count", 1], partitions=2)
    for name, partition in (("A", 0), ("B", 1), ("C", 0), ("D", 1)):
        lines = [b'{"run":"%s","n":%d}' % (name.encode(), k) for k in range(1500)]
        proc = subprocess.run(["kcat", "-P", "-b", kafka, "-t", topic, "-p", str(partition)],
                              input=b"\n".join(lines) + b"\n", capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        time.sleep(0.01)  # timestamps in milliseconds: each run's later than the last's
    data = tmp_path / "data"
    process(data, kafka_uri(kafka, topic), "--exit-at-end", "--group", group("in-step"))
    with connect_ro(data) as db:
        runs = [json.loads(raw)["run"]
                for (raw,) in db.execute("SELECT raw FROM rejected_events ORDER BY rowid")]
    assert Counter(runs) == {"A": 1500, "B": 1500, "C": 1500, "D": 1500}
    order = [r for i, r in enumerate(runs) if i == 0 or runs[i - 1] != r]
    assert order == ["A", "B", "C", "D"], f"runs taken in the order {order}"


# ---- usage errors and an unreachable cluster ----

@pytest.mark.parametrize("args,needles", [
    pytest.param(["--from", "kafka://127.0.0.1:1/orders", "-X", "no.such.property=1"],
                 ["bad Kafka property 'no.such.property=1'", "No such configuration property"],
                 id="unknown-property"),
    pytest.param(["--from", "kafka://127.0.0.1:1/orders", "-Xfetch.wait.max.ms"],
                 ["bad Kafka property 'fetch.wait.max.ms': expected KEY=VALUE"],
                 id="property-without-value"),
    pytest.param(["--from", "FILE", "--group", "g"],
                 ["is a file input, which has no consumer group", "--group and --exit-at-end"],
                 id="group-with-a-file"),
    pytest.param(["--from", "FILE", "--exit-at-end"],
                 ["is a file input, which has no consumer group", "--group and --exit-at-end"],
                 id="exit-at-end-with-a-file"),
    pytest.param(["--from", "-", "--group", "g"], ["'-' is a file input"], id="group-with-stdin"),
    pytest.param(["--from", "FILE", "-X", "acks=all"], ["takes no client properties"],
                 id="property-with-a-file"),
    pytest.param(["--from", "kafka://127.0.0.1:9092"], ["needs brokers and a topic"],
                 id="uri-without-topic"),
    pytest.param(["--from", "kafka://localhost/orders"], ["broker 'localhost' is not HOST:PORT"],
                 id="uri-without-port"),
    pytest.param(["--from", "kafka://a:1/or/ders"], ["'or/ders' is not a valid topic name"],
                 id="uri-bad-topic"),
])
def test_bad_flags_exit_2(tmp_path, args, needles):
    src = tmp_path / "events.jsonl"
    src.write_bytes(b"")
    args = [str(src) if a == "FILE" else a for a in args]
    proc = cli("process", *args, "--data", tmp_path / "data", timeout=30)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 2, describe(proc)
    for needle in needles:
        assert needle in err, err
    assert not (tmp_path / "data").exists()


def test_unreachable_cluster_with_exit_at_end_is_an_error(tmp_path):
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    proc = cli("process", "--from", f"kafka://127.0.0.1:{port}/orders", "--exit-at-end",
               "--data", tmp_path / "data", "-X", "session.timeout.ms=3000", timeout=120)
    took = time.monotonic() - t0
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, describe(proc)
    assert f"cannot reach the Kafka cluster at 127.0.0.1:{port} within 3.0 s" in err, err
    assert "Connection refused" in err, err
    assert took < 60, f"process took {took:.1f} s to give up"


def test_missing_topic_with_exit_at_end_is_an_error(kafka, tmp_path):
    """A replay of a topic that does not exist (a mistyped name) says so and
    ends, without creating the topic."""
    topic = f"no-such-topic-{os.getpid()}"
    proc = cli("process", "--from", kafka_uri(kafka, topic), "--exit-at-end",
               "--data", tmp_path / "data", timeout=120)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 1, describe(proc)
    assert f"topic '{topic}' does not exist at {kafka}" in err, err
    assert "check the topic's name in --from" in err, err
    listed = subprocess.run(["kcat", "-L", "-b", kafka], capture_output=True, timeout=60)
    assert listed.returncode == 0, listed.stderr.decode(errors="replace")
    assert f'topic "{topic}"'.encode() not in listed.stdout, listed.stdout.decode()


def test_unreachable_cluster_is_waited_for(tmp_path, background):
    """Without --exit-at-end a consumer waits for its cluster, as Kafka's
    consumers do, saying why it has nothing; SIGTERM ends it cleanly."""
    port = free_port()
    data = tmp_path / "data"
    run = background("process", "process", "--from", f"kafka://127.0.0.1:{port}/orders",
                     "--data", data)
    wait_until("a warning", lambda: "Connection refused" in run.text(), 30, [run])
    time.sleep(2)
    assert run.poll() is None, run.text()
    run.signal(signal.SIGTERM)
    assert run.finish(60) == 0, run.text()
    err = run.text()
    assert "warning" in err and "0 records" in err, err


# ---- regression ----

def test_restart_keeps_the_final_flags_of_partitions_at_different_times(kafka, tmp_path):
    """Regression: on a restart, the partitions of the assignment were claimed
    one by one, and partition 0 kept as its watermark its own input
    watermark (the lowest of the partitions claimed before partition 1):
    its windows closed ahead of partition 1's, unlike in an uninterrupted
    run. Partition 0 runs 10 minutes, partition 1 first 3 then 6: after a
    restart in between, the store must equal an uninterrupted run's."""
    topic = "orders-wm"
    gen_topic(kafka, topic, ["--seed", 89, "--count", 1], partitions=2)
    t0 = ts_ms("2026-11-02T00:00:00.000Z")

    def produce(partition, first, start_s, end_s):
        lines = [json_line(order_fields(first + k, t0 + s * 1000, city=("Berlin", "Paris")[k % 2],
                                        country=("Germany", "France")[k % 2]))
                 for k, s in enumerate(range(start_s, end_s, 10))]
        proc = subprocess.run(["kcat", "-P", "-b", kafka, "-t", topic, "-p", str(partition)],
                              input=b"\n".join(lines) + b"\n", capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")

    produce(0, 0, 0, 600)
    produce(1, 1000, 0, 180)
    uri = kafka_uri(kafka, topic)
    restarted = tmp_path / "restarted"
    process(restarted, uri, "--exit-at-end", "--group", group("wm"))
    produce(1, 2000, 180, 360)
    process(restarted, uri, "--exit-at-end", "--group", group("wm"))
    once = tmp_path / "once"
    process(once, uri, "--exit-at-end", "--group", group("wm"))
    diffs = store_diff(once, restarted) + kpi_view_diff(once, restarted, final=True)
    assert not diffs, "\n  ".join(diffs)
    with connect_ro(restarted) as db:
        wms = db.execute("SELECT watermark, input_watermark FROM shard_state ORDER BY shard")
        (w0, iw0), (w1, iw1) = wms.fetchall()
    assert w0 == w1 == iw1 < iw0

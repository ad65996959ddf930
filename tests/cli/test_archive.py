"""The archiver (docs/lifecycle.md), black-box, on the release build.

- A long generated stream processed with a small threshold and the archiver
  running every second: the hot store ends within its threshold; every
  generated event is in the hot store or in a committed archive exactly once;
  every cold line has the view's columns, two-decimal money, ts order and
  range; KPIs recomputed in Python from hot facts + cold files equal
  kpi_minute_data; and the facts and KPIs agree with a run of the same stream
  that never archived (which, archived afterwards with `archive --once`,
  reproduces its own KPIs exactly from hot + cold).
- Manifests match their files; `archive --verify` passes, and names every
  damaged, missing and stray file; --gzip; `archive --status`; the modes
  exclude each other.
- The cold store unusable while `process --follow` ingests: archiving fails
  and backs off, ingestion goes on, --status shows the condition; once the
  store is back, archiving resumes and nothing is lost or doubled.

Comparisons across runs leave out the dimensions a payment or cancellation
takes from its order: whether an archived order still lends them is the
cold-aware attribution's business and has its own tests.
"""

import gzip
import json
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from archive_helpers import (TABLES, archive_rows, check_store, cold_files, committed, connect,
                             fact_hash, file_event_ids, hot_rows, hot_size, kpi_diffs, notes,
                             stored_kpis)
from conftest import ENGINE_START, process, ts_ms
from harness import BIN, assert_ok, clean_env, cli, describe

MB = 1_000_000

# The long stream: 300,000 orders (632,533 events, ~47 MB) from 2026-11-02.
SEED, COUNT = 7, 300_000
# A fifth of the store, so that most of the stream moves.
MAX_MB = 10

# A smaller store for the file-level tests: ~40,000 events, ~4 MB.
SMALL_SEED, SMALL_COUNT, SMALL_MAX_MB = 31, 20_000, 0.6

TS_TEXT_RE = re.compile(rb'"ts":"([0-9T:.\-]{23}Z)"')


def minute_slice_bytes(path, data):
    """One slice: the most events any minute of the stream holds, at the average
    size of an archived record (from the committed manifests)."""
    per_minute = Counter(m[:16] for m in TS_TEXT_RE.findall(Path(path).read_bytes()))
    files = [f for _, m in committed(data) for t in m["tables"].values() for f in t["files"]]
    per_record = sum(f["bytes"] for f in files) // max(sum(f["records"] for f in files), 1) + 1
    return max(per_minute.values()) * per_record


def archive(data, *args, env=None):
    return cli("archive", "--data", data, *args, env=env, timeout=300)


def copy_store(src, dst):
    """A copy of a data directory's hot store (no cold store)."""
    dst.mkdir(parents=True)
    for f in Path(src).glob("hot.db*"):
        shutil.copy2(f, dst / f.name)
    return dst


# ---- the long stream ----

@pytest.fixture(scope="module")
def stream(gen_file):
    path = gen_file(SEED, COUNT, ENGINE_START)
    return path, file_event_ids(path)


@pytest.fixture(scope="module")
def live(stream, tmp_path_factory):
    """The stream processed with the archiver running every second."""
    path, _ = stream
    data = tmp_path_factory.mktemp("live")
    t0 = time.monotonic()
    proc = process(data, path, "--hot-max-mb", MAX_MB, "--archive-every", 1)
    print(f"process with archiving: {time.monotonic() - t0:.1f} s")
    return data, proc.stderr.decode(errors="replace")


@pytest.fixture(scope="module")
def reference(stream, tmp_path_factory):
    """The stream processed into a fresh directory that never archives: its
    KPIs and a hash of every fact, taken before anything else touches it."""
    path, _ = stream
    data = tmp_path_factory.mktemp("never-archived")
    process(data, path, "--archive-every", 0)
    assert archive_rows(data) == []
    assert not (data / "cold").exists() or not cold_files(data / "cold")
    facts, partial = {}, {}
    for t in TABLES:
        for r in hot_rows(data, t):
            facts[r["event_id"]] = fact_hash(t, r)
            partial[r["event_id"]] = fact_hash(t, r, attributed=False)
    return data, stored_kpis(data), facts, partial


def test_live_archiving_keeps_hot_store_within_threshold(live, stream):
    data, log = live
    archives = archive_rows(data)
    assert len(archives) >= 2, f"expected several archive runs, got {archives}"
    assert {a[1] for a in archives} == {"committed"}
    for archive_id, *_ in archives:
        assert re.search(rf"\[archive\] archive {archive_id}: [0-9]+ events and [0-9]+ KPI rows before ", log), \
            f"archive {archive_id} not logged:\n{log[-3000:]}"
    # Oldest whole minutes first: cutoffs rise with the archive ids, and every
    # event still hot is at or after the last cutoff.
    cutoffs = [ts_ms(a[2]) for a in archives]
    assert cutoffs == sorted(cutoffs) and len(set(cutoffs)) == len(cutoffs)
    for t in TABLES:
        for r in hot_rows(data, t):
            assert ts_ms(r["ts"]) >= cutoffs[-1], f"{r['event_id']} older than the last cutoff"
    size = hot_size(data)
    print(f"hot store after the run: {size / MB:.1f} MB (threshold {MAX_MB} MB)")
    # The final pass leaves the store under the threshold (it is reachable here).
    assert size <= MAX_MB * MB, f"hot store {size} bytes over {MAX_MB} MB after the run"


def test_live_archive_every_event_once_and_kpis_exact(live, stream, reference):
    """hot ∪ cold == the generated events, exactly once; cold lines well formed;
    KPIs from hot + cold == kpi_minute_data; facts and order-side KPIs equal the
    run that never archived."""
    path, ids = stream
    data, _ = live
    _, ref_kpis, _, ref_partial = reference
    mine = {}

    def note(table, r):
        mine[r["event_id"]] = fact_hash(table, r, attributed=False)

    t0 = time.monotonic()
    slice_bytes = minute_slice_bytes(path, data)
    scan = check_store(data, ids, MAX_MB * MB, slice_bytes, callbacks=[note])
    assert scan.records > len(ids) // 2, "most of the stream should be cold"
    print(f"checked {scan.records} cold records in {time.monotonic() - t0:.1f} s")

    # The same facts as the run that never archived (orders in full; payments
    # and cancellations without the dimensions taken from their order).
    assert len(mine) == len(ref_partial)
    differ = [k for k, h in mine.items() if ref_partial.get(k) != h]
    assert not differ, f"{len(differ)} facts differ from the never-archived run: {differ[:3]}"

    # KPIs equal the never-archived run's wherever attribution plays no part:
    # every column of 'overall', and the order columns of every dimension.
    got = stored_kpis(data)
    overall = {k: v for k, v in got.items() if k[1] == "overall"}
    ref_overall = {k: v for k, v in ref_kpis.items() if k[1] == "overall"}
    assert not kpi_diffs(ref_overall, overall), kpi_diffs(ref_overall, overall)

    def order_side(kpis):
        return {k: v[:3] for k, v in kpis.items() if any(v[:3])}

    diffs = kpi_diffs(order_side(ref_kpis), order_side(got))
    assert not diffs, "order KPIs differ from the never-archived run:\n  " + "\n  ".join(diffs)


def test_archive_once_after_ingest_reproduces_never_archived_kpis(stream, reference):
    """`archive --once` over the never-archived store: hot + cold facts give back
    its KPIs and its facts exactly, attribution included."""
    path, ids = stream
    data, ref_kpis, ref_facts, _ = reference
    size_before = hot_size(data)
    assert size_before > 4 * MAX_MB * MB
    assert_ok(archive(data, "--once", "--hot-max-mb", MAX_MB))
    assert hot_size(data) <= MAX_MB * MB
    assert stored_kpis(data) == ref_kpis, "archiving changed kpi_minute_data"
    mine = {}
    scan = check_store(data, ids, MAX_MB * MB,
                       callbacks=[lambda t, r: mine.__setitem__(r["event_id"], fact_hash(t, r))])
    # check_store compared the recomputed KPIs with kpi_minute_data, which is
    # ref_kpis: the never-archived run's KPIs come back exactly from hot + cold.
    differ = [k for k, h in mine.items() if ref_facts.get(k) != h]
    assert len(mine) == len(ref_facts) and not differ, \
        f"{len(differ)} facts differ from the store before archiving: {differ[:3]}"
    assert_ok(archive(data, "--verify"))
    print(f"archive --once: {hot_size(data) / MB:.1f} MB hot, {scan.records} records cold")


def test_verify_passes_and_status_lists_archives(live):
    data, _ = live
    proc = assert_ok(archive(data, "--verify"))
    out = proc.stdout.decode()
    n = len(committed(data))
    assert f"{n} committed archives checked: all files match their manifests" in out, out

    proc = assert_ok(archive(data, "--status", "--hot-max-mb", MAX_MB))
    out = proc.stdout.decode()
    lines = out.splitlines()
    size = hot_size(data)
    assert lines[0] == (f"hot store: {size / MB:.1f} MB of data, threshold {MAX_MB:.1f} MB "
                        f"(under)"), out
    assert f"cold store: file:{(data / 'cold').resolve()}" in out
    total_records = total_bytes = 0
    for archive_id, state, cutoff, created, text in archive_rows(data):
        row = [ln for ln in lines if ln.startswith(archive_id + " ")]
        assert len(row) == 1, f"{archive_id} not listed once:\n{out}"
        fields = row[0].split()
        m = json.loads(text)
        # Records and the time range count events; bytes count every part file.
        facts = [t for name, t in m["tables"].items() if name != "kpi_minute"]
        recs = sum(t["records"] for t in facts)
        nbytes = sum(f["bytes"] for t in m["tables"].values() for f in t["files"])
        lo = min(t["min_ts"] for t in facts if t["records"])
        hi = max(t["max_ts"] for t in facts if t["records"])
        assert fields == [archive_id, state, created, str(recs), str(nbytes), lo, "..", hi], row
        total_records += recs
        total_bytes += nbytes
    n = len(archive_rows(data))
    assert f"({n} archives, {total_records} records, {total_bytes} bytes)" in out, out
    assert re.search(r"^  last_archive: \S+ at \S+: [0-9]+ events, [0-9]+ bytes$", out, re.M), out
    # The same store against a lower threshold (1 MB, the lowest) is over it
    # when it holds more.
    out = assert_ok(archive(data, "--status", "--hot-max-mb", 1)).stdout.decode()
    state = "over: archiving due" if size > MB else "under"
    assert out.startswith(f"hot store: {size / MB:.1f} MB of data, threshold 1.0 MB ({state})"), \
        out


def test_modes_exclude_each_other(tmp_path):
    data = tmp_path / "data"
    for modes in (("--once", "--status"), ("--once", "--verify"), ("--status", "--verify"),
                  ("--once", "--status", "--verify")):
        proc = archive(data, *modes)
        assert proc.returncode == 2, describe(proc)
        assert b"exclude each other" in proc.stderr, describe(proc)
    assert not data.exists(), "a usage error must not touch the data directory"


# ---- a smaller store for the file-level tests ----

@pytest.fixture(scope="module")
def small(gen_file, tmp_path_factory):
    path = gen_file(SMALL_SEED, SMALL_COUNT, ENGINE_START)
    data = tmp_path_factory.mktemp("small-src")
    process(data, path, "--archive-every", 0)
    assert hot_size(data) > 3 * SMALL_MAX_MB * MB
    return data, file_event_ids(path)


def archived_copy(small, dst, *extra):
    src, ids = small
    data = copy_store(src, dst)
    proc = assert_ok(archive(data, "--once", "--hot-max-mb", SMALL_MAX_MB, *extra))
    assert archive_rows(data), describe(proc)
    return data


def test_verify_names_every_damaged_missing_and_stray_file(small, tmp_path):
    data = archived_copy(small, tmp_path / "data")
    check_store(data, small[1], SMALL_MAX_MB * MB)
    assert_ok(archive(data, "--verify"))
    cold = data / "cold"
    parts = sorted(p for p in cold_files(cold) if p.endswith(".jsonl"))
    assert len(parts) >= 3, parts
    damaged, missing = parts[0], parts[-1]

    # Flip one byte in the middle of a file (its size stays the same).
    raw = bytearray((cold / damaged).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (cold / damaged).write_bytes(bytes(raw))
    (cold / missing).unlink()
    stray = "orders/dt=2026-11-02/hour=00/part-20990101T000000000Z-0badf00d.jsonl"
    (cold / stray).parent.mkdir(parents=True, exist_ok=True)
    (cold / stray).write_bytes(b'{"event_id":"not-counted"}\n')

    proc = archive(data, "--verify")
    out = proc.stdout.decode()
    assert proc.returncode == 1, describe(proc)
    lines = out.splitlines()

    def line_of(path):
        hits = [ln for ln in lines if path in ln]
        assert len(hits) == 1, f"{path} should be named once:\n{out}"
        return hits[0]

    assert re.search(r"^archive \S+: file .* is damaged \(CRC-32 [0-9a-f]{8}, manifest says "
                     r"[0-9a-f]{8}\)$", line_of(damaged)), out
    assert line_of(missing).endswith(f"file {missing} is missing"), out
    assert line_of(stray).startswith(f"stray file {stray} ("), out
    assert "PROBLEMS FOUND" in lines[-1], out
    assert len([ln for ln in lines if ln != lines[-1]]) == 3, f"one line per problem:\n{out}"

    # A truncated file and a damaged manifest are named too.
    truncated = parts[1]
    (cold / truncated).write_bytes((cold / truncated).read_bytes()[:-10])
    mid = committed(data)[0][0]
    mfile = cold / "_archives" / f"{mid}.json"
    mfile.write_bytes(mfile.read_bytes().replace(b'"records"', b'"recs"', 1))
    proc = archive(data, "--verify")
    out = proc.stdout.decode()
    assert proc.returncode == 1, describe(proc)
    assert re.search(rf"file {re.escape(truncated)} is damaged \([0-9]+ bytes, manifest says "
                     r"[0-9]+\)", out), out
    assert f"manifest file _archives/{mid}.json is damaged or different from the record" in out


def test_verify_names_damaged_and_missing_dimension_snapshots(small, tmp_path):
    """The dimension snapshots of an archive are checked as its part files
    are: a changed byte and a missing file are each one line of --verify."""
    data = archived_copy(small, tmp_path / "data")
    cold = data / "cold"
    dims = sorted(f["path"] for _, m in committed(data) for d in m["dims"].values()
                  for f in d["files"])
    assert any(p.startswith("dims/customers/") for p in dims), dims
    damaged, missing = dims[0], dims[-1]
    raw = bytearray((cold / damaged).read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (cold / damaged).write_bytes(bytes(raw))
    (cold / missing).unlink()
    proc = archive(data, "--verify")
    out = proc.stdout.decode()
    assert proc.returncode == 1, describe(proc)
    assert re.search(rf"^archive \S+: file {re.escape(damaged)} is damaged \(CRC-32 ", out, re.M), out
    assert re.search(rf"^archive \S+: file {re.escape(missing)} is missing$", out, re.M), out
    assert len(out.splitlines()) == 3, f"one line per problem:\n{out}"


def test_gzip_parts_read_back_to_the_same_lines(small, tmp_path):
    plain = archived_copy(small, tmp_path / "plain")
    gz = archived_copy(small, tmp_path / "gz", "--gzip")
    assert_ok(archive(gz, "--verify"))
    scan = check_store(gz, small[1], SMALL_MAX_MB * MB)

    def parts(data):
        """table/dt=/hour= (or dims/table) -> the lines of its part files
        (dimension snapshots), read back."""
        out = {}
        for rel in sorted(cold_files(data / "cold")):
            if rel.startswith("_archives/"):
                continue
            folder, name = rel.rsplit("/", 1)
            raw = (data / "cold" / rel).read_bytes()
            if name.endswith(".gz"):
                assert raw[:2] == b"\x1f\x8b", f"{rel}: not a gzip stream"
                raw = gzip.decompress(raw)
            else:
                assert name.endswith(".jsonl"), rel
            out.setdefault(folder, []).extend(raw.splitlines())
        return out

    gz_files = [p for p in cold_files(gz / "cold") if not p.startswith("_archives/")]
    assert gz_files and all(p.endswith(".jsonl.gz") for p in gz_files), gz_files
    a, b = parts(plain), parts(gz)
    assert a.keys() == b.keys()
    for k in a:
        assert sorted(a[k]) == sorted(b[k]), f"{k}: gzip lines differ from the plain ones"
    if shutil.which("gzip"):
        # The gzip tool reads them too.
        for rel in gz_files[:5]:
            proc = subprocess.run(["gzip", "-dc", str(gz / "cold" / rel)], capture_output=True)
            assert proc.returncode == 0 and proc.stdout == gzip.decompress(
                (gz / "cold" / rel).read_bytes()), rel
    assert scan.bytes < sum(len((plain / "cold" / p).read_bytes())
                            for p in cold_files(plain / "cold") if not p.startswith("_"))


# ---- the cold store unavailable while `process --follow` ingests ----

def wait_until(what, cond, timeout, proc=None, log=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited ({proc.returncode}) while waiting for {what}:\n"
                                 f"{log.read_text()[-3000:] if log else ''}")
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n"
                         f"{log.read_text()[-3000:] if log else ''}")


def events_in(data):
    try:
        with connect(data) as db:
            row = db.execute("SELECT value FROM engine_state WHERE key = 'events_in'").fetchone()
        return row[0] if row else 0
    except Exception:
        return 0


def hot_orders(data):
    with connect(data) as db:
        return db.execute("SELECT count(*) FROM orders_data").fetchone()[0]


FOLLOW_MAX_MB = 1.6


def follow_streams(gen_file):
    """The input of the outage tests: a first stream, then a later one in two
    halves (chunks), with the event ids and the line count of each chunk."""
    s1 = gen_file(41, 15_000, ENGINE_START)
    s2 = gen_file(42, 30_000, "2026-11-06T00:00:00Z")
    first = s1.read_bytes()
    later = s2.read_bytes().splitlines(keepends=True)
    assert max(TS_TEXT_RE.findall(first)) < min(TS_TEXT_RE.findall(b"".join(later[:10])))
    half = len(later) // 2
    chunks = [first, b"".join(later[:half]), b"".join(later[half:])]
    return chunks, file_event_ids(s1) + file_event_ids(s2), [c.count(b"\n") for c in chunks]


def start_follow(data, inp, log, *extra):
    """`process --follow` of inp into data, archiving every second, its
    stderr to log."""
    with open(log, "wb") as errf:
        return subprocess.Popen([BIN, "process", "--from", str(inp), "--data", str(data),
                                 *extra, "--follow", "--hot-max-mb", str(FOLLOW_MAX_MB),
                                 "--archive-every", "1"],
                                stdout=subprocess.DEVNULL, stderr=errf, env=clean_env())


def stop_follow(proc, timeout=30):
    """Ends `process --follow` with SIGINT (SIGKILL if it hangs)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_cold_store_unavailable_then_back(gen_file, tmp_path):
    """Phase 1 ingests a stream and archives it; phase 2 makes the cold root a
    regular file and appends a later stream (its payments and cancellations
    find their orders hot, so only the archiver needs the cold store); phase 3
    puts the directory back and appends the rest."""
    chunks, ids, n = follow_streams(gen_file)

    data, inp, log = tmp_path / "data", tmp_path / "in.jsonl", tmp_path / "stderr.log"
    cold, away = data / "cold", tmp_path / "cold.away"
    inp.write_bytes(chunks[0])
    threshold = FOLLOW_MAX_MB * MB
    proc = start_follow(data, inp, log)
    try:
        # Phase 1: everything in, archived down to the threshold.
        wait_until("the first chunk", lambda: events_in(data) == n[0], 60, proc, log)
        wait_until("archiving under the threshold",
                   lambda: committed(data) and hot_size(data) <= threshold, 60, proc, log)
        time.sleep(1.5)  # let a run in progress end
        archived = {a for a, _ in committed(data)}

        # Phase 2: the cold root is a regular file.
        cold.rename(away)
        cold.write_bytes(b"not a directory\n")
        with open(inp, "ab") as f:
            f.write(chunks[1])
        orders_before = hot_orders(data)
        wait_until("ingestion during the outage",
                   lambda: events_in(data) == n[0] + n[1], 60, proc, log)
        assert hot_orders(data) > orders_before, "orders must keep arriving in the hot store"
        retry_re = re.compile(r"cannot take data now; the events stay in the hot store and "
                              r"ingestion goes on; retrying in ([0-9]+) s")
        delays = wait_until("three failed runs",
                            lambda: [int(d) for d in retry_re.findall(log.read_text())]
                            if len(retry_re.findall(log.read_text())) >= 3 else None,
                            30, proc, log)
        assert delays[:3] == [1, 2, 4], f"back-off should double from 1 s: {delays}"
        assert hot_size(data) > threshold
        assert {a for a, _ in committed(data)} == archived, "nothing commits during the outage"
        st = assert_ok(archive(data, "--status", "--hot-max-mb", FOLLOW_MAX_MB)).stdout.decode()
        assert "(over: archiving due)" in st.splitlines()[0], st
        m = re.search(r"^  last_error: (.*)$", st, re.M)
        assert m and f"cold store file:{cold.resolve()} unavailable" in m.group(1) \
            and "failed runs; retrying every" in m.group(1), st

        # Phase 3: the directory is back; archiving resumes by itself.
        cold.unlink()
        away.rename(cold)
        wait_until("an archive after the outage",
                   lambda: {a for a, _ in committed(data)} - archived, 30, proc, log)
        wait_until("the recovery note",
                   lambda: notes(data).get("last_error", "").startswith("none (recovered at "),
                   30, proc, log)
        with open(inp, "ab") as f:
            f.write(chunks[2])
        wait_until("the last chunk", lambda: events_in(data) == sum(n), 60, proc, log)
        wait_until("archiving under the threshold again",
                   lambda: hot_size(data) <= threshold, 60, proc, log)
        time.sleep(1.5)
    finally:
        stop_follow(proc)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "Sanitizer" not in text and "runtime error" not in text, text[-3000:]
    assert "stopped (" not in text, text[-3000:]
    check_store(data, ids, threshold)
    assert_ok(archive(data, "--verify"))


# ---- two archivers on one store ----

def test_concurrent_archivers_neither_lose_nor_double(gen_file, tmp_path):
    """`archive --once` and `archive --status` run again and again while
    `process` archives the same store: one archiver works at a time (the others
    leave the run to it), and opening the cold store elsewhere does not break a
    write in progress."""
    path = gen_file(71, 100_000, ENGINE_START)
    ids = file_event_ids(path)
    data, log = tmp_path / "data", tmp_path / "process.log"
    max_mb = 15
    with open(log, "wb") as errf:
        proc = subprocess.Popen([BIN, "process", "--from", str(path), "--data", str(data),
                                 "--hot-max-mb", str(max_mb), "--archive-every", "1"],
                                stdout=subprocess.DEVNULL, stderr=errf, env=clean_env())
    others = []

    def again(*args):
        while proc.poll() is None:
            if (data / "hot.db").exists():
                others.append(archive(data, *args, "--hot-max-mb", max_mb))
            time.sleep(0.05)

    threads = [threading.Thread(target=again, args=(mode,)) for mode in ("--once", "--status")]
    try:
        for t in threads:
            t.start()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for t in threads:
            t.join()
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "cannot rename into place" not in text and "did not complete" not in text, text
    for o in others:
        assert o.returncode == 0, describe(o)
    # The runs did overlap: one side found the other at work.
    busy = text.count("another archiver is at work") + sum(
        o.stderr.count(b"another archiver is at work") for o in others)
    print(f"{len(others)} concurrent `archive --once` and `--status` runs; {busy} runs found "
          f"the store busy")
    assert busy >= 1
    assert_ok(archive(data, "--once", "--hot-max-mb", max_mb))
    check_store(data, ids, max_mb * MB)
    assert_ok(archive(data, "--verify"))

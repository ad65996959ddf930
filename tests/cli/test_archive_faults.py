"""Crashes of the archiver, on the test build with fault points (ASan+UBSan,
-DSS_FAULT_POINTS=ON; CMake registers *_faults tests only there).

For each step of the protocol in docs/lifecycle.md (after_dims, after_files,
after_manifest, after_commit) `archive --once` is killed there with SIGKILL;
the state it leaves is checked, then a run without the fault must finish or
roll the archive back: nothing lost, nothing doubled (every generated event
exactly once in hot ∪ committed cold), no file outside the committed manifests
left behind (nor counted), `archive --verify` passes, KPIs recomputed from hot +
cold equal kpi_minute_data, and the hot store is within its threshold.

Then the same invariants after `process --archive-every 1` is SIGKILLed at
random moments (and while an archive is being written) several times and
finally runs to the end.
"""

import json
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from archive_helpers import (TABLES, archive_rows, check_store, cold_files, committed, connect,
                             file_event_ids, hot_size, killed_by_sigkill)
from conftest import ENGINE_START, SANITIZER_MARKS, process
from harness import BIN, assert_ok, clean_env, cli, describe

MB = 1_000_000

# ~63,000 events, ~22 MB hot; what never moves (customers, KPIs, other
# dimensions) is ~3.5 MB, so the threshold is reachable.
SEED, COUNT, MAX_MB = 61, 30_000, 1.2

# For the kills by timing: ~316,000 events, ~7 s of ASan processing with
# archiving; ~14 MB never moves.
KILL_SEED, KILL_COUNT, KILL_MAX_MB = 62, 150_000, 4


@pytest.fixture(scope="module", autouse=True)
def fault_points():
    """The binary must be a build with fault points (CMake registers this file
    only for one); any other binary would ignore SHOPSTREAM_FAULT."""
    if b"SHOPSTREAM_FAULT" not in Path(BIN).read_bytes():
        pytest.skip(f"{BIN} was built without SS_FAULT_POINTS")


def archive(data, *args, fault=None):
    env = {"SHOPSTREAM_FAULT": fault} if fault else None
    return cli("archive", "--data", data, *args, env=env, timeout=300)


def no_sanitizer_report(proc):
    err = proc.stderr.decode(errors="replace")
    for mark in SANITIZER_MARKS:
        assert mark not in err, err[-5000:]


def hot_count(data):
    with connect(data) as db:
        return sum(db.execute(f"SELECT count(*) FROM {t}_data").fetchone()[0] for t in TABLES)


def hot_count_before(data, cutoff):
    with connect(data) as db:
        return sum(db.execute(f"SELECT count(*) FROM {t}_data WHERE ts < ?", (cutoff,)
                              ).fetchone()[0] for t in TABLES)


def files_of(cold, archive_id):
    return sorted(p for p in cold_files(cold) if archive_id in p)


@pytest.fixture(scope="module")
def template(gen_file, tmp_path_factory):
    """The stream processed without archiving: a store well over MAX_MB."""
    path = gen_file(SEED, COUNT, ENGINE_START)
    data = tmp_path_factory.mktemp("template")
    process(data, path, "--archive-every", 0)
    assert hot_size(data) > 3 * MAX_MB * MB
    return data, file_event_ids(path)


def fresh(template, dst):
    src, ids = template
    dst.mkdir(parents=True)
    for f in Path(src).glob("hot.db*"):
        shutil.copy2(f, dst / f.name)
    return dst, ids


@pytest.mark.parametrize("point", ["after_dims", "after_files", "after_manifest", "after_commit"])
def test_crash_at_each_step_then_recovery(template, tmp_path, point):
    data, ids = fresh(template, tmp_path / "data")
    cold = data / "cold"
    total = hot_count(data)
    assert total == sum(ids.values())

    proc = archive(data, "--once", "--hot-max-mb", MAX_MB, fault=point)
    assert killed_by_sigkill(proc), f"expected SIGKILL at {point}: {describe(proc)}"
    assert f"fault point '{point}': killing the process".encode() in proc.stderr
    no_sanitizer_report(proc)

    rows = archive_rows(data)
    assert len(rows) == 1, rows
    aid, state, cutoff, _, recorded = rows[0]
    manifest = cold / "_archives" / f"{aid}.json"
    mine = files_of(cold, aid)
    parts = [p for p in mine if not p.startswith(("_archives/", "dims/"))]
    dims = [p for p in mine if p.startswith("dims/")]
    assert parts and all(re.fullmatch(rf"\w+/dt=[0-9-]+/hour=[0-9]{{2}}/part-{aid}\.jsonl", p)
                         for p in parts), mine
    # The dimension snapshots are written after the part files, before the keys.
    assert dims and all(re.fullmatch(rf"dims/\w+/part-{aid}\.jsonl", p) for p in dims), mine
    assert (f"_archives/{aid}.keys" in mine) == (point != "after_dims"), mine
    assert not [p for p in cold_files(cold) if ".tmp-write" in p], "temporary files left"

    if point in ("after_dims", "after_files", "after_manifest"):
        # Not committed: every event still hot; the files are not counted.
        assert state == "writing" and recorded is None
        assert hot_count(data) == total
        assert manifest.exists() == (point == "after_manifest")
        if point == "after_manifest":
            m = json.loads(manifest.read_bytes())
            listed = {f["path"] for t in m["tables"].values() for f in t["files"]}
            assert listed == set(parts)
            listed = {f["path"] for t in m["dims"].values() for f in t["files"]}
            assert listed == set(dims)
        proc = archive(data, "--verify")
        assert proc.returncode == 1, describe(proc)
        out = proc.stdout.decode()
        for p in mine:
            assert re.search(rf"^stray file {re.escape(p)} \([0-9]+ bytes\): no committed "
                             r"archive lists it; it is not counted$", out, re.M), out
        assert out.splitlines()[-1] == "0 committed archives checked: PROBLEMS FOUND", out
        # A write cut short leaves a temporary file named with its writer's pid
        # (a process that has ended): the next open sweeps it away.
        dead = subprocess.Popen(["true"])
        dead.wait()
        tmp = cold / parts[0]
        tmp = tmp.with_name(f"{tmp.name}.tmp-write.{dead.pid}")
        tmp.write_bytes(b'{"event_id":"half-written"')
    else:
        # Committed: the events before the cutoff left the hot store in the same
        # transaction; the archive is whole before any recovery.
        assert state == "committed" and json.loads(recorded) == json.loads(manifest.read_bytes())
        assert hot_count_before(data, cutoff) == 0
        assert hot_count(data) < total
        assert_ok(archive(data, "--verify"))
        check_store(data, ids)

    proc = assert_ok(archive(data, "--once", "--hot-max-mb", MAX_MB))
    no_sanitizer_report(proc)
    log = proc.stderr.decode()
    states = {r[0]: r[1] for r in archive_rows(data)}
    if point in ("after_dims", "after_files"):
        assert f"recovered archive {aid}: rolled back (no complete manifest)" in log, log
        assert aid not in states and not files_of(cold, aid)
    elif point == "after_manifest":
        assert f"recovered archive {aid}: finished (files and manifest complete)" in log, log
        assert states[aid] == "committed"
        assert dict(committed(data))[aid] == json.loads(manifest.read_bytes())
    else:
        assert "recovered archive" not in log and states[aid] == "committed"
    assert set(states.values()) == {"committed"}

    check_store(data, ids, MAX_MB * MB)
    proc = assert_ok(archive(data, "--verify"))
    assert b"all files match their manifests" in proc.stdout


def writing_row(data):
    try:
        with connect(data) as db:
            return db.execute("SELECT 1 FROM archives WHERE state = 'writing'").fetchone()
    except Exception:  # the store may be mid-creation
        return None


def test_sigkill_at_random_moments_while_ingesting_and_archiving(gen_file, tmp_path):
    path = gen_file(KILL_SEED, KILL_COUNT, ENGINE_START)
    ids = file_event_ids(path)
    data = tmp_path / "data"
    args = [BIN, "process", "--from", str(path), "--data", str(data), "--hot-max-mb",
            str(KILL_MAX_MB), "--archive-every", "1"]
    rng = random.Random(20261124)
    kills, mid_archive, recovered = 0, 0, []
    t0 = time.monotonic()
    for i in range(8):
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=clean_env())
        if i % 2:
            # Wait for an archive being written, then kill within a moment.
            end = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < end and not writing_row(data):
                time.sleep(0.01)
            # The first such kill comes at once, so that at least one lands
            # mid-archive however fast archives are written on this machine.
            time.sleep(rng.uniform(0, 2.0) if i > 1 else 0)
        else:
            time.sleep(rng.uniform(0.5, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
            if writing_row(data):
                mid_archive += 1
        _, err = proc.communicate(timeout=60)
        text = err.decode(errors="replace")
        recovered += re.findall(r"recovered archive \S+: (finished|rolled back)", text)
        assert proc.returncode in (0, -signal.SIGKILL), text[-3000:]
        for mark in SANITIZER_MARKS:
            assert mark not in text, text[-5000:]
        if proc.returncode == 0 or kills == 5:
            break  # the input is all in (or enough kills): on to the last run
    assert kills >= 2, f"only {kills} runs were still going when killed"
    # The last run goes to the end of the input, recovering what the kills left.
    before = len(committed(data))
    proc = process(data, path, "--hot-max-mb", KILL_MAX_MB, "--archive-every", 1)
    recovered += re.findall(r"recovered archive \S+: (finished|rolled back)",
                            proc.stderr.decode(errors="replace"))
    print(f"{kills} kills ({mid_archive} with an archive being written); recoveries "
          f"{recovered}; {before} archives committed before the last run, "
          f"{len(archive_rows(data))} after; {time.monotonic() - t0:.1f} s")
    assert mid_archive >= 1 and recovered, "no kill hit an archive being written"

    with connect(data) as db:
        st = dict(db.execute("SELECT key, value FROM engine_state"))
    assert st["late"] == 0 and st["rejected"] == 0
    check_store(data, ids, KILL_MAX_MB * MB)
    assert_ok(archive(data, "--verify"))

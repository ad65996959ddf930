"""Crashes of the archiver writing to HDFS (`--cold webhdfs://`), on the test
build with fault points (ASan+UBSan, -DSS_FAULT_POINTS=ON; CMake registers
*_faults tests only there), against the HDFS of scripts/hdfs.

For each step of the protocol in docs/lifecycle.md (after_files,
after_manifest, after_commit) `archive --once` is SIGKILLed there; the next
run without the fault finishes or rolls the archive back in HDFS, sweeps a
half-written temporary file of a dead writer away, and every generated event
is in the hot store or in a committed archive exactly once, with no file in
HDFS that a committed manifest does not list.
"""
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from archive_helpers import (archive_rows, committed, file_event_ids, hot_event_ids, hot_size,
                             killed_by_sigkill)
from conftest import ENGINE_START, SANITIZER_MARKS, process
from harness import BIN, assert_ok, cli, describe, hdfs  # noqa: F401
from test_hdfs_cold import EVENT_ID_RE, hdfs_files, hdfs_read, webhdfs

MB = 1_000_000
SEED, COUNT, MAX_MB = 61, 12_000, 0.6


@pytest.fixture(scope="module", autouse=True)
def fault_points():
    if b"SHOPSTREAM_FAULT" not in Path(BIN).read_bytes():
        pytest.fail(f"{BIN} was built without SS_FAULT_POINTS")


@pytest.fixture(scope="module")
def template(gen_file, tmp_path_factory):
    path = gen_file(SEED, COUNT, ENGINE_START)
    data = tmp_path_factory.mktemp("hdfs-fault-src") / "data"
    process(data, path, "--archive-every", 0)
    assert hot_size(data) > 2 * MAX_MB * MB
    return data, file_event_ids(path)


def archive(data, uri, *args, fault=None):
    env = {"SHOPSTREAM_FAULT": fault} if fault else None
    proc = cli("archive", "--data", data, "--cold", uri, *args, env=env, timeout=600)
    err = proc.stderr.decode(errors="replace")
    for mark in SANITIZER_MARKS:
        assert mark not in err, err[-5000:]
    return proc


@pytest.mark.parametrize("point", ["after_files", "after_manifest", "after_commit"])
def test_crash_at_each_step_then_recovery(template, hdfs, tmp_path, point):  # noqa: F811
    src, ids = template
    data = tmp_path / "data"
    shutil.copytree(src, data)
    root = f"/faults/{point}"
    uri = f"webhdfs://{hdfs.address}{root}"

    proc = archive(data, uri, "--once", "--hot-max-mb", MAX_MB, fault=point)
    assert killed_by_sigkill(proc), f"expected SIGKILL at {point}: {describe(proc)}"
    rows = archive_rows(data)
    assert len(rows) == 1, rows
    aid, state = rows[0][0], rows[0][1]
    files = hdfs_files(hdfs, root)
    assert any(re.fullmatch(rf"orders/dt=[0-9-]+/hour=[0-9]{{2}}/part-{aid}\.jsonl", p)
               for p in files), files
    assert f"_archives/{aid}.keys" in files
    assert f"dims/customers/part-{aid}.jsonl" in files, files
    assert (f"_archives/{aid}.json" in files) == (point != "after_files")
    assert not [p for p in files if ".tmp-write" in p], files
    assert state == ("committed" if point == "after_commit" else "writing")

    # A write cut short leaves a temporary file named with its writer's pid
    # (a process that has ended): the next open removes it.
    dead = subprocess.Popen(["true"])
    dead.wait()
    part = next(p for p in files if p.startswith("orders/"))
    status, _ = webhdfs(hdfs, "PUT", f"{root}/{part}.tmp-write.{dead.pid}", "CREATE",
                        data=b'{"event_id":"half-written"', overwrite="false")
    assert status == 201

    proc = assert_ok(archive(data, uri, "--once", "--hot-max-mb", MAX_MB))
    log = proc.stderr.decode()
    states = {r[0]: r[1] for r in archive_rows(data)}
    if point == "after_files":
        assert f"recovered archive {aid}: rolled back (no complete manifest)" in log, log
        assert aid not in states
    elif point == "after_manifest":
        assert f"recovered archive {aid}: finished (files and manifest complete)" in log, log
        assert states[aid] == "committed"
    else:
        assert "recovered archive" not in log and states[aid] == "committed"
    assert set(states.values()) == {"committed"}

    listed, cold = set(), Counter()
    for a, m in committed(data):
        listed.add(m["keys"]["path"])
        listed.add(f"_archives/{a}.json")
        listed.update(f["path"] for d in m["dims"].values() for f in d["files"])
        for t in m["tables"].values():
            for f in t["files"]:
                listed.add(f["path"])
                cold.update(x.decode() for x in
                            EVENT_ID_RE.findall(hdfs_read(hdfs, f"{root}/{f['path']}")))
    assert set(hdfs_files(hdfs, root)) == listed, "files outside the committed archives"
    hot = hot_event_ids(data)
    assert max(cold.values()) == 1 and not set(hot) & set(cold)
    assert hot + cold == ids
    assert hot_size(data) <= MAX_MB * MB
    out = assert_ok(archive(data, uri, "--verify")).stdout.decode()
    assert "all files match their manifests" in out, out

"""Outages of the HDFS cold store, each followed by a restart of the file
system with its files (scripts/hdfs start --keep): the whole file system
stopped, the DataNode SIGKILLed, the NameNode SIGKILLed. While it is away an
archive run fails with a message that names what is down, rolls back and
keeps every event hot, and `archive --status` shows the condition; once it
is back the next run archives, and every generated event is in the hot
store or in a committed archive on HDFS exactly once. `sql` over archives
in an HDFS that is down fails with a message naming it.

`process --follow` goes on ingesting while HDFS is down, and its archiver
catches up once HDFS is back.

Then an HDFS with permission checks on: a cold store under a directory the
user may not write is refused with a message naming the user.
"""
import os
import re
import shutil
import signal
import time
from collections import Counter

import pytest

from archive_helpers import committed, file_event_ids, hot_event_ids, hot_size
from conftest import ENGINE_START, process
from harness import HdfsServer, assert_ok, cli, describe, running
from test_archive import (FOLLOW_MAX_MB, events_in, follow_streams, hot_orders, start_follow,
                          stop_follow, wait_until)
from test_hdfs_cold import EVENT_ID_RE, hdfs_read

MB = 1_000_000
SEED, COUNT, MAX_MB = 37, 12_000, 0.6


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An HDFS of this file's own, since its tests stop and kill it."""
    yield from running(HdfsServer(tmp_path_factory.mktemp("hdfs-outage")))


@pytest.fixture(scope="module")
def source(gen_file, tmp_path_factory):
    path = gen_file(SEED, COUNT, ENGINE_START)
    data = tmp_path_factory.mktemp("outage-src") / "data"
    process(data, path, "--archive-every", 0)
    assert hot_size(data) > 2 * MAX_MB * MB
    return data, file_event_ids(path)


def wait_gone(pid):
    for _ in range(600):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} still runs after SIGKILL")


def cold_ids(server, root, data):
    ids = Counter()
    for _, m in committed(data):
        for t in m["tables"].values():
            for f in t["files"]:
                ids.update(x.decode() for x in
                           EVENT_ID_RE.findall(hdfs_read(server, f"{root}/{f['path']}")))
    return ids


def down_then_back(server, source, tmp_path, root, take_down, message):
    src, expected = source
    data = tmp_path / "data"
    shutil.copytree(src, data)
    uri = f"webhdfs://{server.address}{root}"
    take_down()
    proc = cli("archive", "--data", data, "--cold", uri, "--once", "--hot-max-mb", MAX_MB,
               timeout=300)
    assert proc.returncode == 1, describe(proc)
    assert message in proc.stderr.decode(), describe(proc)
    assert not committed(data)
    assert hot_event_ids(data) == expected
    st = assert_ok(cli("archive", "--data", data, "--cold", uri, "--status", "--hot-max-mb",
                       MAX_MB)).stdout.decode()
    assert "unavailable" in st, st

    server.restart()
    assert server.uri == f"webhdfs://{server.address}/"
    assert_ok(cli("archive", "--data", data, "--cold", uri, "--once", "--hot-max-mb", MAX_MB,
                  timeout=300))
    assert committed(data)
    hot, cold = hot_event_ids(data), cold_ids(server, root, data)
    assert max(cold.values()) == 1 and not set(hot) & set(cold)
    assert hot + cold == expected
    assert hot_size(data) <= MAX_MB * MB
    out = assert_ok(cli("archive", "--data", data, "--cold", uri, "--verify")).stdout.decode()
    assert "all files match" in out, out


def test_file_system_stopped(server, source, tmp_path):
    down_then_back(server, source, tmp_path, "/outage/stopped", server.stop,
                   "cannot reach the NameNode")
    uri = f"webhdfs://{server.address}/outage/stopped"
    q = "SELECT count(*) FROM cold_orders"
    assert_ok(cli("sql", q, "--data", tmp_path / "data", "--cold", uri))
    server.stop()
    try:
        proc = cli("sql", q, "--data", tmp_path / "data", "--cold", uri)
        assert proc.returncode == 1, describe(proc)
        err = proc.stderr.decode()
        assert "cannot read cold file 'orders/dt=" in err and uri in err, err
        assert "cannot reach the NameNode" in err, err
    finally:
        server.restart()


def test_datanode_killed(server, source, tmp_path):
    def kill():
        pid = server.pid("datanode")
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)

    down_then_back(server, source, tmp_path, "/outage/datanode", kill, "the DataNode is down")


def test_namenode_killed(server, source, tmp_path):
    def kill():
        pid = server.pid("namenode")
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)

    down_then_back(server, source, tmp_path, "/outage/namenode", kill,
                   "cannot reach the NameNode")


def test_permission_denied(source, tmp_path_factory, tmp_path):
    secured = HdfsServer(tmp_path_factory.mktemp("hdfs-permissions"), permissions=True)
    try:
        src, expected = source
        data = tmp_path / "data"
        shutil.copytree(src, data)
        uri = f"webhdfs://{secured.address}/restricted/cold?user=alice"
        proc = cli("archive", "--data", data, "--cold", uri, "--once", "--hot-max-mb", MAX_MB)
        assert proc.returncode == 2, describe(proc)
        err = proc.stderr.decode()
        assert "permission denied for user 'alice'" in err, err
        assert "AccessControlException" in err, err
        assert hot_event_ids(data) == expected
    finally:
        secured.stop()


def test_down_while_process_ingests(server, gen_file, tmp_path):
    """`process --follow` archives to HDFS; HDFS stops while a later stream is
    appended (its payments and cancellations find their orders hot, so only
    the archiver needs HDFS): ingestion goes on past the threshold and the
    archiver backs off; once HDFS is back the archiver catches up, and the
    rest of the stream follows."""
    chunks, ids, n = follow_streams(gen_file)
    root = "/outage/follow"
    uri = f"webhdfs://{server.address}{root}"
    threshold = FOLLOW_MAX_MB * MB

    data, inp, log = tmp_path / "data", tmp_path / "in.jsonl", tmp_path / "stderr.log"
    inp.write_bytes(chunks[0])
    proc = start_follow(data, inp, log, "--cold", uri)
    try:
        wait_until("the first chunk", lambda: events_in(data) == n[0], 60, proc, log)
        wait_until("archiving under the threshold",
                   lambda: committed(data) and hot_size(data) <= threshold, 120, proc, log)
        time.sleep(1.5)  # let a run in progress end
        archived = {a for a, _ in committed(data)}

        server.stop()
        with open(inp, "ab") as f:
            f.write(chunks[1])
        orders_before = hot_orders(data)
        wait_until("ingestion during the outage",
                   lambda: events_in(data) == n[0] + n[1], 60, proc, log)
        assert hot_orders(data) > orders_before, "orders must keep arriving in the hot store"
        retry_re = re.compile(r"cannot take data now; the events stay in the hot store")
        wait_until("three failed runs", lambda: len(retry_re.findall(log.read_text())) >= 3, 60,
                   proc, log)
        assert "cannot reach the NameNode" in log.read_text()
        assert hot_size(data) > threshold
        assert {a for a, _ in committed(data)} == archived, "nothing commits during the outage"

        server.restart()
        wait_until("an archive after the outage",
                   lambda: {a for a, _ in committed(data)} - archived, 120, proc, log)
        with open(inp, "ab") as f:
            f.write(chunks[2])
        wait_until("the last chunk", lambda: events_in(data) == sum(n), 60, proc, log)
        wait_until("archiving under the threshold again",
                   lambda: hot_size(data) <= threshold, 120, proc, log)
        time.sleep(1.5)
    finally:
        stop_follow(proc, timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    hot, cold = hot_event_ids(data), cold_ids(server, root, data)
    assert max(cold.values()) == 1 and not set(hot) & set(cold)
    assert hot + cold == ids
    out = assert_ok(cli("archive", "--data", data, "--cold", uri, "--verify")).stdout.decode()
    assert "all files match" in out, out

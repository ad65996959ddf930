"""scripts/kafka in ZooKeeper mode (start --zookeeper): the broker runs with
broker.id and zookeeper.connect beside a ZooKeeper server of its own; stop
ends both, the broker first; start --keep brings both back with the topics,
their records and the port; a start in the other mode while one runs is
refused; with --owner both stop once the owner is gone. (The tests of
gen, process and run take both modes through harness.kafka_each_mode.)"""
import os
import re
import subprocess
import time

import pytest

from harness import KAFKA_SCRIPT, REPO, assert_ok, cli, start_kafka, stop_kafka

GEN = ["gen", "--max", "--start", "2026-11-02", "--seed", "5", "--count", "2000"]


def pids(state):
    return {name: int((state / name).read_text()) for name in ("pid", "zookeeper.pid")
            if (state / name).exists()}


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def records(address, topic):
    proc = subprocess.run(["kcat", "-C", "-b", address, "-t", topic, "-e", "-o", "beginning",
                           "-q", "-f", "%p %s\n"], capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return sorted(proc.stdout.splitlines())


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "kafka"
    yield d
    stop_kafka(d)


def test_stop_and_keep_restart_both_servers_with_the_topics(state, tmp_path):
    address = start_kafka(state, zookeeper=True)
    config = dict(ln.split("=", 1) for ln in (state / "server.properties").read_text().splitlines()
                  if ln and not ln.startswith("#"))
    assert config["zookeeper.connect"].startswith("127.0.0.1:") and config["broker.id"] == "1"
    assert "process.roles" not in config and "controller.quorum.voters" not in config
    assert not (state / "data" / "bootstrap.checkpoint").exists()  # no storage format
    # The ZooKeeper of Kafka's own dependencies, the version the Compose
    # stack's zookeeper image has (.env).
    zk_version = re.search(r"^ZOOKEEPER_VERSION=(\S+)$", (REPO / ".env").read_text(), re.M)
    assert f"zookeeper.version={zk_version.group(1)}-" in (state / "zookeeper.log").read_text()
    assert_ok(cli(*GEN, "--partitions", "3", "--out", f"kafka://{address}/zk-orders"))
    want = records(address, "zk-orders")
    raw = assert_ok(cli(*GEN)).stdout
    assert len(want) == raw.count(b"\n") and {r.split(b" ", 1)[0] for r in want} == \
        {b"0", b"1", b"2"}

    running = pids(state)
    assert set(running) == {"pid", "zookeeper.pid"} and all(map(alive, running.values()))
    stop_kafka(state)
    assert not any(map(alive, running.values())), running
    assert pids(state) == {}

    assert start_kafka(state, keep=True) == address
    assert records(address, "zk-orders") == want
    assert set(pids(state)) == {"pid", "zookeeper.pid"}


def test_a_start_in_the_other_mode_is_refused_while_one_runs(state):
    address = start_kafka(state, zookeeper=True)
    proc = subprocess.run([str(KAFKA_SCRIPT), "start", "--dir", str(state)], capture_output=True,
                          timeout=120)
    assert proc.returncode == 1
    err = proc.stderr.decode()
    assert "a broker in ZooKeeper mode runs" in err and "stop it first" in err, err
    # The same mode again gives the running broker's address.
    again = subprocess.run([str(KAFKA_SCRIPT), "start", "--dir", str(state), "--zookeeper"],
                           capture_output=True, timeout=120)
    assert again.returncode == 0 and again.stdout.decode().strip() == address


def test_both_stop_when_the_owner_is_gone(tmp_path):
    state = tmp_path / "owned"
    owner = subprocess.Popen(["sleep", "600"])
    try:
        proc = subprocess.run([str(KAFKA_SCRIPT), "start", "--dir", str(state), "--zookeeper",
                               "--owner", str(owner.pid)], capture_output=True, timeout=900)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")
        running = pids(state)
        assert set(running) == {"pid", "zookeeper.pid"}
    finally:
        owner.kill()
        owner.wait()
    # The watcher looks every 2 s, then stops the broker and ZooKeeper.
    deadline = time.monotonic() + 120
    while any(map(alive, running.values())) and time.monotonic() < deadline:
        time.sleep(0.5)
    try:
        assert not any(map(alive, running.values())), running
    finally:
        stop_kafka(state)

"""Black-box tests of GET /api/stream (docs/api.md): server-sent events of KPI
changes, learnt from the store, whether the engine runs in another process
(`serve` beside `process --follow`) or in the same one (`run` serves the API
itself); the limit of open streams (503 past it); and a prompt, clean stop of
a server with streams open.

No assertion depends on timing: deadlines only bound how long a test waits.
"""

import json
import os
import signal
import subprocess
import time

import pytest

from harness import BIN, assert_ok, clean_env, cli, free_port, request
from web_helpers import (PATIENCE_S, FollowedStore, Stream, has_minute_from, kill, start_serve,
                         wait_healthy, wait_kpi)

SEED, COUNT, START = 7, 200, "2026-11-02T00:00:00Z"
LATER = "2026-11-03T00:00:00Z"  # after every minute of the first COUNT orders
MAX_STREAMS = 8


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    tmp = tmp_path_factory.mktemp("stream")
    src = tmp / "events.jsonl"
    src.write_bytes(assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--max",
                                  "--start", START)).stdout)
    assert_ok(cli("process", "--from", src, "--data", tmp / "data"))
    return tmp / "data"


def test_serve_streams_changes_of_another_process(tmp_path):
    with FollowedStore(tmp_path, SEED, COUNT, START) as fs:
        serve, port = start_serve(fs.data)
        stream = None
        try:
            stream = Stream(port)
            assert stream.status == 200
            stream.opened()
            fs.append(SEED + 1, 200, LATER)
            data_ = wait_kpi(stream, has_minute_from(LATER))
            row = next(r for r in data_["rows"] if r["minute_start"] >= LATER[:19])
            assert set(row) == {"minute_start", "orders", "gross_revenue", "paid_revenue", "aov",
                                "payment_attempts", "failed_payments", "cancellations",
                                "cancelled_revenue", "final"}
            assert data_["totals"]["orders"] >= row["orders"]
        finally:
            if stream:
                stream.close()
            kill(serve)


def test_run_serves_api_and_stream(tmp_path):
    port = free_port()
    proc = subprocess.Popen([BIN, "run", "--speedup", "60", "--rate", "20", "--port", str(port),
                             "--data", str(tmp_path / "data")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=clean_env())
    stream = None
    try:
        wait_healthy(proc, port)
        stream = Stream(port)
        assert stream.status == 200
        stream.opened()
        data = wait_kpi(stream, lambda d: d["rows"])
        assert all("minute_start" in r and "final" in r for r in data["rows"])
        # A finished minute is announced too, with final set.
        wait_kpi(stream, lambda d: any(r["final"] == 1 for r in d["rows"]))
        stream.close()
        stream = None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=PATIENCE_S)
        assert proc.returncode == 0, err.decode()
        assert f"[web] listening on http://127.0.0.1:{port}".encode() in err, err.decode()
    finally:
        if stream:
            stream.close()
        kill(proc)


def test_run_port_zero_picks_a_free_port(tmp_path):
    proc = subprocess.Popen([BIN, "run", "--speedup", "60", "--rate", "20", "--port", "0",
                             "--data", str(tmp_path / "data")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=clean_env())
    try:
        line = b""
        deadline = time.monotonic() + PATIENCE_S
        while b"listening on" not in line:
            assert time.monotonic() < deadline and proc.poll() is None
            line = proc.stderr.readline()
        port = int(line.decode().rsplit(":", 1)[1])
        assert port > 0
        wait_healthy(proc, port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=PATIENCE_S)
        kill(proc)
    assert proc.returncode == 0


def test_too_many_streams_is_503(store):
    serve, port = start_serve(store, "--max-streams", str(MAX_STREAMS))
    streams = []
    try:
        for _ in range(MAX_STREAMS):
            s = Stream(port)
            streams.append(s)
            assert s.status == 200
            s.opened()
        status, ctype, body = request(port, "GET", "/api/stream")
        assert status == 503 and ctype == "application/json"
        err = json.loads(body)["error"]
        assert "too many event streams" in err and "--max-streams" in err
        # Other endpoints still answer, and a closed stream frees its place.
        assert request(port, "GET", "/healthz")[0] == 200
        streams.pop().close()
        deadline = time.monotonic() + PATIENCE_S
        while True:
            s = Stream(port)
            if s.status == 200:
                streams.append(s)
                break
            s.close()
            assert time.monotonic() < deadline, "a closed stream's place was not freed"
            time.sleep(0.1)
    finally:
        for s in streams:
            s.close()
        kill(serve)


def test_sigterm_with_open_streams_exits_0(store):
    serve, port = start_serve(store)
    streams = []
    try:
        for _ in range(3):
            s = Stream(port)
            streams.append(s)
            s.opened()
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=20)
        assert serve.returncode == 0, err.decode()
        for s in streams:
            assert s.next_event() is None  # the stream ends
    finally:
        for s in streams:
            s.close()
        kill(serve)


def test_first_kpis_of_a_new_store_are_announced(tmp_path):
    """A server started before the store exists announces its first KPIs."""
    data = tmp_path / "data"
    port = free_port()
    serve = subprocess.Popen([BIN, "serve", "--data", str(data), "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    stream = None
    try:
        wait_healthy(serve, port)
        stream = Stream(port)
        assert stream.status == 200
        stream.opened()
        src = tmp_path / "events.jsonl"
        src.write_bytes(assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--max",
                                      "--start", START)).stdout)
        assert_ok(cli("process", "--from", src, "--data", data))
        got = wait_kpi(stream, lambda d: d["rows"])
        assert all(r["minute_start"] >= START[:19] for r in got["rows"])
    finally:
        if stream:
            stream.close()
        kill(serve)

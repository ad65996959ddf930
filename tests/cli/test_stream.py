"""Black-box tests of GET /api/stream (docs/api.md): server-sent events of KPI
changes, learnt from the store, whether the engine runs in another process
(`serve` beside `process --follow`) or in the same one (`run` serves the API
itself); the limit of open streams (503 past it); and a prompt, clean stop of
a server with streams open.

No assertion depends on timing: deadlines only bound how long a test waits.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from harness import BIN, assert_ok, clean_env, cli, free_port

SEED, COUNT, START = 7, 200, "2026-11-02T00:00:00Z"
LATER = "2026-11-03T00:00:00Z"  # after every minute of the first COUNT orders
PATIENCE_S = 60
MAX_STREAMS = 32


def request(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


def wait_healthy(proc, port):
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            if request(port, "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"no answer from /healthz on port {port}")


def start_serve(data):
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--data", str(data), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    wait_healthy(proc, port)
    return proc, port


def kill(proc):
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


class Stream:
    """An open GET /api/stream, read event by event."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PATIENCE_S)
        self.conn.request("GET", "/api/stream")
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def opened(self):
        """Reads the stream's opening ("retry: 1000" and a comment)."""
        assert self.resp.getheader("Content-Type").startswith("text/event-stream")
        assert self.resp.readline() == b"retry: 1000\n"

    def next_event(self, deadline=None):
        """The next event as a dict of its fields; None at the end of the stream.
        Fails when the deadline (time.monotonic()) passes first."""
        ev = {}
        while deadline is None or time.monotonic() < deadline:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if not line:
                if ev:
                    return ev
            elif not line.startswith(":"):
                key, _, value = line.partition(":")
                ev[key] = value[1:] if value.startswith(" ") else value
        raise AssertionError("no event before the deadline")

    def close(self):
        self.conn.close()


def wait_kpi(stream, until):
    """Reads kpi events until until(data) holds; returns that data."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        ev = stream.next_event(deadline)
        assert ev is not None, "the stream ended"
        if ev.get("event") == "kpi":
            data = json.loads(ev["data"])
            if until(data):
                return data
    raise AssertionError("no matching kpi event")


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
    src, data = tmp_path / "events.jsonl", tmp_path / "data"
    src.write_bytes(assert_ok(cli("gen", "--seed", SEED, "--count", COUNT, "--max",
                                  "--start", START)).stdout)
    engine = subprocess.Popen([BIN, "process", "--follow", "--from", str(src), "--data",
                               str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=clean_env())
    serve = stream = None
    try:
        deadline = time.monotonic() + PATIENCE_S
        while True:
            assert engine.poll() is None, engine.stderr.read().decode()
            q = cli("sql", "SELECT count(*) AS n FROM kpi_minute", "--data", data,
                    "--format", "json") if (data / "hot.db").exists() else None
            if q and q.returncode == 0 and json.loads(q.stdout)[0]["n"] > 0:
                break
            assert time.monotonic() < deadline, "process --follow stored no KPIs"
            time.sleep(0.2)
        serve, port = start_serve(data)
        stream = Stream(port)
        assert stream.status == 200
        stream.opened()
        more = assert_ok(cli("gen", "--seed", SEED + 1, "--count", 200, "--max",
                             "--start", LATER)).stdout
        with open(src, "ab") as f:
            f.write(more)
        data_ = wait_kpi(stream, lambda d: any(r["minute_start"] >= LATER[:19]
                                               for r in d["rows"]))
        row = next(r for r in data_["rows"] if r["minute_start"] >= LATER[:19])
        assert set(row) == {"minute_start", "orders", "gross_revenue", "paid_revenue", "aov",
                            "payment_attempts", "failed_payments", "cancellations",
                            "cancelled_revenue", "final"}
        assert data_["totals"]["orders"] >= row["orders"]
    finally:
        if stream:
            stream.close()
        if serve:
            kill(serve)
        engine.send_signal(signal.SIGTERM)
        try:
            engine.communicate(timeout=PATIENCE_S)
        finally:
            kill(engine)


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
    serve, port = start_serve(store)
    streams = []
    try:
        for _ in range(MAX_STREAMS):
            s = Stream(port)
            streams.append(s)
            assert s.status == 200
            s.opened()
        status, ctype, body = request(port, "/api/stream")
        assert status == 503 and ctype == "application/json"
        assert "too many event streams" in json.loads(body)["error"]
        # Other endpoints still answer, and a closed stream frees its place.
        assert request(port, "/healthz")[0] == 200
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

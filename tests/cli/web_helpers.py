"""Helpers for the tests of the web server (test_stream.py, test_web_limits.py,
test_web_viewers.py): an open event stream read event by event, a store that
`process --follow` keeps writing, and what /proc tells of a server process.

No helper decides pass or fail on timing: deadlines only bound how long a
test waits.
"""

import http.client
import json
import os
import signal
import subprocess
import time

import pytest

from harness import BIN, assert_ok, clean_env, cli, free_port, request

PATIENCE_S = 60


def wait_healthy(proc, port):
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"exited {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"no answer from /healthz on port {port}")


def start_serve(data, *extra):
    """`shopstream serve` over data on a free port, once healthy: (proc, port)."""
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--data", str(data), "--port", str(port), *extra],
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


def has_minute_from(start):
    """For wait_kpi: an event with a row of a minute at or after start (ISO)."""
    return lambda d: any(r["minute_start"] >= start[:19] for r in d["rows"])


class FollowedStore:
    """A store that `process --follow` keeps writing from a file that the test
    appends generated orders to; data is the store's directory. Use as a
    context manager; it stops the engine at the end (it must exit 0)."""

    def __init__(self, tmp, seed, count, start):
        self.src, self.data = tmp / "events.jsonl", tmp / "data"
        self.src.write_bytes(assert_ok(cli("gen", "--seed", seed, "--count", count, "--max",
                                           "--start", start)).stdout)
        self.engine = subprocess.Popen([BIN, "process", "--follow", "--from", str(self.src),
                                        "--data", str(self.data)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE, env=clean_env())
        deadline = time.monotonic() + PATIENCE_S
        while True:
            assert self.engine.poll() is None, self.engine.stderr.read().decode()
            q = cli("sql", "SELECT count(*) AS n FROM kpi_minute", "--data", self.data,
                    "--format", "json") if (self.data / "hot.db").exists() else None
            if q and q.returncode == 0 and json.loads(q.stdout)[0]["n"] > 0:
                break
            assert time.monotonic() < deadline, "process --follow stored no KPIs"
            time.sleep(0.2)

    def append(self, seed, count, start):
        """Appends count generated orders from start (ISO) to the followed file."""
        more = assert_ok(cli("gen", "--seed", seed, "--count", count, "--max",
                             "--start", start)).stdout
        with open(self.src, "ab") as f:
            f.write(more)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.engine.send_signal(signal.SIGTERM)
        try:
            self.engine.communicate(timeout=PATIENCE_S)
        finally:
            kill(self.engine)


def proc_status(pid, key):
    """A figure of /proc/PID/status in KiB (VmRSS, VmHWM, ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def cpu_seconds(pid):
    """User and system CPU time of a process so far, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sanitized():
    """Is the binary built with AddressSanitizer? Its memory figures are then
    ASan's (shadow memory, quarantine), not the server's."""
    with open(BIN, "rb") as f:
        return b"__asan_init" in f.read()


def load_average():
    return os.getloadavg()[0]

"""The web server under abuse (docs/reliability.md): bad requests, memory per
request, and slow clients.

- Bad requests (oversized URLs and headers, bad ranges, bad UTF-8, bad
  escapes, unknown or repeated parameters) get a 4xx with a JSON error that
  is valid UTF-8, never a 5xx, and the server goes on.
- A query cannot take the server's memory: a value past --max-value-kb and an
  answer past --max-response-mb are a 400 that names the option, and 20 such
  requests at once leave the server's peak RSS (VmHWM) under a stated bound;
  `shopstream sql` keeps no such limit.
- Slow clients hold only their own connections: with clients that send
  nothing, dribble a header or never read their event stream, the API still
  answers and a reading stream still gets updates; a dribbled header is cut at
  --header-timeout-s.

Deadlines only bound how long a test waits; none is a pass criterion beyond a
generous bound on liveness.
"""

import concurrent.futures
import json
import socket
import threading
import time
import urllib.parse

import pytest

from harness import assert_ok, cli, make_store, request
from web_helpers import (PATIENCE_S, FollowedStore, Stream, has_minute_from, kill, proc_status,
                         sanitized, start_serve, wait_kpi)

SEED, COUNT, START = 5, 2000, "2026-11-02T00:00:00Z"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("limits"), SEED, COUNT, START)


@pytest.fixture(scope="module")
def server(store):
    proc, port = start_serve(store)
    yield proc, port
    kill(proc)


def raw(port, data, timeout=30):
    """Sends data as it is and reads the answer until the server closes or the
    answer is complete: (status, headers dict, body bytes); status 0 when the
    connection closed with no answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before reading all of it
        got = b""
        while b"\r\n\r\n" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        head, _, body = got.partition(b"\r\n\r\n")
        if not head:
            return 0, {}, b""
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        want = int(headers.get("content-length", "0"))
        while len(body) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return int(lines[0].split()[1]), headers, body


def json_error(status, ctype, body):
    """The error message of a JSON error answer; its body must be UTF-8."""
    assert ctype.startswith("application/json"), (status, ctype, body[:200])
    return json.loads(body.decode("utf-8", errors="strict"))["error"]


def assert_alive(port):
    assert request(port, "GET", "/healthz")[0] == 200


# ---- bad requests ----

def test_oversized_url_is_414_json(server):
    _, port = server
    status, ctype, body = request(port, "GET", "/api/totals?range=" + "x" * (40 * 1024))
    assert status == 414
    assert "--max-request-kb" in json_error(status, ctype, body)
    assert_alive(port)


def test_oversized_headers_are_431_json(server):
    _, port = server
    status, ctype, body = request(port, "GET", "/api/totals",
                                  {f"X-Pad-{i}": "y" * 4000 for i in range(10)})
    assert status == 431
    assert "--max-request-kb" in json_error(status, ctype, body)
    assert_alive(port)


def test_far_oversized_request_is_4xx(server):
    """Past four times --max-request-kb, libmicrohttpd answers by itself (a 4xx
    with a short HTML body): still no 5xx and no crash."""
    _, port = server
    status, _, _ = raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (1 * MB)
                       + b"\r\n\r\n")
    assert 400 <= status < 500
    status, _, _ = raw(port, b"GET /healthz?" + b"a" * (1 * MB) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert 400 <= status < 500
    assert_alive(port)


BAD = [
    # unknown and repeated parameters
    ("/api/totals?rnage=1h", "rnage"),
    ("/api/kpis?dimension=city&limit=5", "limit"),
    ("/healthz?verbose=1", "verbose"),
    ("/api/stream?since=3", "since"),
    ("/api/totals?range=1h&range=24h", "twice"),
    ("/api/top?=5", "no name"),
    # bad escapes, bad UTF-8, NUL and control characters
    ("/api/top?n=%zz", "%"),
    ("/api/kpis?dimension=%FF%FE", "UTF-8"),
    ("/api/kpis?dimension=city%C0%AF", "UTF-8"),
    ("/api/sql?q=SELECT%20%27%ED%A0%80%27", "UTF-8"),
    ("/api/%E2%82", "UTF-8"),
    ("/api/%FFtotals", "UTF-8"),
    ("/api/totals?ra%FFnge=1h", "UTF-8"),
    ("/api/sql?q=SELECT%201%00", "control character"),
    ("/api/tot%01als", "control character"),
    # bad ranges
    ("/api/totals?range=2h", "range"),
    ("/api/totals?range=", "range"),
    ("/api/totals?range=1h&from=2026-11-02&to=2026-11-03", "either"),
    ("/api/totals?from=2026-11-02", "to"),
    ("/api/totals?from=2026-13-45&to=2026-11-03", "from"),
    ("/api/totals?from=2026-11-02T25:00:00Z&to=now", "from"),
    ("/api/totals?from=99999-01-01&to=now", "from"),
    ("/api/totals?from=-1&to=now", "from"),
    ("/api/kpis?from=2026-11-03&to=2026-11-02", "after"),
    ("/api/kpis?from=2026-11-02&to=2026-11-02", "after"),
    ("/api/top?n=99999999999999999999", "n"),
    ("/api/top?n=-1", "n"),
    ("/api/cancellations?from=now&to=%E2%82%AC", "to"),
]


@pytest.mark.parametrize("path,word", BAD)
def test_bad_request_is_400_json(server, path, word):
    _, port = server
    status, ctype, body = request(port, "GET", path)
    assert status == 400, body[:300]
    assert word in json_error(status, ctype, body)


def test_bad_requests_leave_the_server_running(server):
    proc, port = server
    for path, _ in BAD:
        request(port, "GET", path)
    assert proc.poll() is None
    assert_alive(port)


# ---- memory per request ----

def sql_request(port, query):
    return request(port, "GET", "/api/sql?" + urllib.parse.urlencode({"q": query}))


# Each would take hundreds of MB to gigabytes without the limits.
BIG_VALUE = "SELECT hex(zeroblob(100000000)) AS h"
HUGE_VALUE = "SELECT zeroblob(1000000000) AS z"
# 9,000 rows of 800 KB each: 7 GB of answer, within --max-rows and
# --max-value-kb, stopped by --max-response-mb alone.
BIG_ANSWER = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 9000) "
              "SELECT x, hex(zeroblob(400000)) AS h FROM c")


@pytest.mark.parametrize("query", [BIG_VALUE, HUGE_VALUE])
def test_value_past_limit_is_400_naming_it(server, query):
    _, port = server
    status, ctype, body = sql_request(port, query)
    assert status == 400, body[:200]
    err = json_error(status, ctype, body)
    assert "1048576 bytes" in err and "--max-value-kb" in err


def test_answer_past_limit_is_400_naming_it(server):
    _, port = server
    status, ctype, body = sql_request(port, BIG_ANSWER)
    assert status == 400, body[:200]
    err = json_error(status, ctype, body)
    assert f"{8 * MB} bytes" in err and "--max-response-mb" in err
    # Under the limit, the same shape of query answers.
    status, _, body = sql_request(port, BIG_ANSWER.replace("9000", "4"))
    assert status == 200 and len(json.loads(body)["rows"]) == 4


def test_limits_follow_their_options(store):
    proc, port = start_serve(store, "--max-value-kb", "4096", "--max-response-mb", "1")
    try:
        status, _, body = sql_request(port, "SELECT hex(zeroblob(1500000)) AS h")
        assert status == 400 and f"{MB} bytes" in json.loads(body)["error"]
        status, _, body = sql_request(port, "SELECT length(hex(zeroblob(1500000))) AS n")
        assert status == 200 and json.loads(body)["rows"] == [{"n": 3000000}]
    finally:
        kill(proc)


# A stated bound on the server's peak RSS while 20 requests that would each
# take 200 MB to 7 GB run at once: the limits bound each to about
# --max-response-mb plus a few values, whatever the query.
RSS_BOUND_MB = 400


def test_twenty_oversized_requests_at_once_keep_rss_bounded(server):
    proc, port = server
    assert sql_request(port, BIG_VALUE)[0] == 400  # today's build answered 200 with 200 MB
    queries = [BIG_VALUE, HUGE_VALUE, BIG_ANSWER, BIG_ANSWER] * 5
    with concurrent.futures.ThreadPoolExecutor(len(queries)) as pool:
        answers = list(pool.map(lambda q: sql_request(port, q), queries))
    assert [a[0] for a in answers] == [400] * len(queries)
    hwm = proc_status(proc.pid, "VmHWM") / 1024
    print(f"\nserver VmHWM after 20 oversized requests at once: {hwm:.0f} MB")
    if not sanitized():  # ASan's own memory would count too
        assert hwm < RSS_BOUND_MB
    assert_alive(port)


def test_cli_sql_has_no_web_limit(store):
    """The limits belong to the server's connections: `shopstream sql` reads
    a value past --max-value-kb's default as before."""
    out = assert_ok(cli("sql", "--data", store, "--format", "json",
                        "SELECT length(hex(zeroblob(5000000))) AS n")).stdout
    assert json.loads(out) == [{"n": 10000000}]


# ---- slow clients ----

def test_dribbled_header_is_cut_at_the_header_timeout(store):
    proc, port = start_serve(store, "--header-timeout-s", "2")
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=PATIENCE_S)
        header = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 60 + b"\r\n\r\n"
        sent, closed = 0, False
        deadline = time.monotonic() + 30  # the whole header would take 50 s
        while time.monotonic() < deadline and sent < len(header) - 4:
            try:
                s.send(header[sent:sent + 1])
                sent += 1
            except OSError:
                closed = True
                break
            time.sleep(0.5)
        if not closed:
            s.settimeout(5)
            try:
                closed = s.recv(100) == b""
            except OSError:
                closed = True
        s.close()
        assert closed, f"the connection was still open after {sent} bytes"
        assert sent < len(header) - 4
        status, _, body = request(port, "GET", "/metrics")
        assert status == 200
        count = [line for line in body.decode().splitlines()
                 if line.startswith("shopstream_http_header_timeouts_total ")]
        assert count and int(count[0].split()[1]) >= 1
    finally:
        kill(proc)


class SlowClients:
    """Connections that hold the server without ever finishing: some send
    nothing, some a header that never ends (a byte a second), some open an
    event stream and never read it (with a small receive buffer)."""

    def __init__(self, port, silent, dribbling, unread):
        self.socks, self.stop = [], threading.Event()
        for _ in range(silent):
            self.socks.append(socket.create_connection(("127.0.0.1", port)))
        self.dribblers = [socket.create_connection(("127.0.0.1", port))
                          for _ in range(dribbling)]
        for _ in range(unread):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n")
            self.socks.append(s)
        self.thread = threading.Thread(target=self.dribble, daemon=True)
        self.thread.start()

    def dribble(self):
        while not self.stop.wait(1.0):
            for s in self.dribblers:
                try:
                    s.send(b"G")
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join()
        for s in self.socks + self.dribblers:
            s.close()


def test_slow_clients_do_not_hold_up_others(tmp_path):
    with FollowedStore(tmp_path, SEED, 200, START) as fs:
        serve, port = start_serve(fs.data)
        slow = stream = None
        try:
            # More than the old limit of 64 connections and 32 streams.
            slow = SlowClients(port, silent=40, dribbling=40, unread=40)
            t0 = time.monotonic()
            status, _, body = request(port, "GET", "/api/totals?range=24h")
            assert status == 200 and "totals" in json.loads(body)
            assert time.monotonic() - t0 < 10  # a generous bound on liveness
            stream = Stream(port)
            assert stream.status == 200
            stream.opened()
            later = "2026-11-03T00:00:00Z"
            fs.append(SEED + 1, 200, later)
            wait_kpi(stream, has_minute_from(later))
            assert serve.poll() is None
        finally:
            if stream:
                stream.close()
            if slow:
                slow.close()
            kill(serve)

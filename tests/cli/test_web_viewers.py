"""Many viewers (docs/reliability.md): 1,000 event streams on one `serve`,
over a store that `process --follow` writes, all stay open and all get the
same updates, event for event.

The clients are raw sockets on loopback driven by asyncio in this process.
The test prints the server's memory per stream (RSS growth over the streams
opened) and its CPU while the updates go out, with the load average; it
asserts only a generous bound on the memory, and waits on deadlines that
bound liveness, never on timings.
"""

import asyncio
import json
import resource
import time

import pytest

from harness import request
from web_helpers import FollowedStore, cpu_seconds, kill, load_average, proc_status, start_serve

SEED, COUNT, START = 11, 200, "2026-11-02T00:00:00Z"
CLIENTS = 1000
ROUNDS = ["2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z", "2026-11-05T00:00:00Z"]
PATIENCE_S = 90
MAX_KB_PER_CLIENT = 512  # a thread's stack and a connection's buffers, touched


class Viewer:
    """One GET /api/stream on a raw socket: the events it got, in order."""

    def __init__(self):
        self.events = []  # (id, data) of each kpi event
        self.opened = asyncio.Event()
        self.reader = self.writer = None

    async def open(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(b"GET /api/stream HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await self.writer.drain()
        status = await self.reader.readline()
        assert status.split()[1] == b"200", status
        while await self.reader.readline() not in (b"\r\n", b""):
            pass  # the headers

    async def read(self):
        """Reads the stream (chunked) and collects its events until it ends."""
        buf = b""
        ev = {}
        while True:
            size = await self.reader.readline()
            if not size or int(size.strip() or b"0", 16) == 0:
                return
            buf += (await self.reader.readexactly(int(size.strip(), 16) + 2))[:-2]
            *lines, buf = buf.split(b"\n")
            for line in lines:
                line = line.decode()
                if line.startswith("retry:"):
                    self.opened.set()
                elif not line:
                    if ev.get("event") == "kpi":
                        self.events.append((int(ev["id"]), ev["data"]))
                    ev = {}
                elif not line.startswith(":"):
                    key, _, value = line.partition(":")
                    ev[key] = value[1:] if value.startswith(" ") else value

    def has_minute_from(self, start):
        return any(r["minute_start"] >= start[:19]
                   for _, data in self.events for r in json.loads(data)["rows"])

    def close(self):
        if self.writer:
            self.writer.close()


async def until(cond, what):
    deadline = time.monotonic() + PATIENCE_S
    while not cond():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def watch(port, fs, serve):
    viewers = [Viewer() for _ in range(CLIENTS)]
    tasks = []
    try:
        for i in range(0, CLIENTS, 100):  # in batches, within the listen backlog
            await asyncio.gather(*(v.open(port) for v in viewers[i:i + 100]))
            tasks += [asyncio.create_task(v.read()) for v in viewers[i:i + 100]]
        await until(lambda: all(v.opened.is_set() for v in viewers), "not every stream opened")
        rss_open = proc_status(serve.pid, "VmRSS")
        # Events before the first round may have reached only the viewers
        # already open; the rounds' events must reach every one.
        before = max((v.events[-1][0] for v in viewers if v.events), default=0)
        cpu0, t0 = cpu_seconds(serve.pid), time.monotonic()
        for i, start in enumerate(ROUNDS):
            fs.append(SEED + 1 + i, 200, start)
            await until(lambda: all(v.has_minute_from(start) for v in viewers),
                        f"round {i}: not every stream got the update")
            assert not any(t.done() for t in tasks), "a stream ended"
        cpu = (cpu_seconds(serve.pid) - cpu0, time.monotonic() - t0)
        # Another request is still answered with every stream open.
        assert request(port, "GET", "/api/totals?range=24h")[0] == 200
        got = [[e for e in v.events if e[0] > before] for v in viewers]
        assert got[0], "no event in the rounds"
        for g in got:
            assert g == got[0]  # every event, in the same order, to every viewer
        return rss_open, cpu, len(got[0])
    finally:
        for v in viewers:
            v.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def test_a_thousand_streams_get_every_update(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < CLIENTS + 256:
        pytest.fail(f"this test needs {CLIENTS + 256} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, CLIENTS + 256), hard))
    with FollowedStore(tmp_path, SEED, COUNT, START) as fs:
        serve, port = start_serve(fs.data)
        try:
            rss0 = proc_status(serve.pid, "VmRSS")
            rss_open, (cpu_s, wall_s), events = asyncio.run(watch(port, fs, serve))
            per_client = (rss_open - rss0) / CLIENTS
            print(f"\n{CLIENTS} streams: RSS {rss0 / 1024:.1f} -> {rss_open / 1024:.1f} MB, "
                  f"{per_client:.0f} KB per stream; {events} events to each; server CPU "
                  f"{cpu_s:.2f} s over {wall_s:.1f} s ({100 * cpu_s / wall_s:.0f}% of a core); "
                  f"load average {load_average():.2f}")
            assert per_client < MAX_KB_PER_CLIENT
            assert serve.poll() is None
        finally:
            kill(serve)

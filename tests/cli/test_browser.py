"""The dashboard page in a real browser: headless Chromium (Debian's chromium,
driven by playwright-core from web/node_modules through
tests/browser/dashboard.js) against `shopstream run`.

The page must load with no console error and no request outside its server;
its tiles must show the numbers /api/totals returns and its charts must add up
to them; a tile must change within 2 s while events flow; it must fit a
phone's width; and a screenshot is written (to the build directory, or to
SHOPSTREAM_SCREENSHOT when set, as docs/dashboard.png is made).
"""
import json
import os
import shutil
import subprocess
import time
import urllib.parse
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from harness import (BIN, REPO, clean_env, make_store, request, start_server,
                     stop_server)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def api(port, path):
    status, _, body = request(port, "GET", path)
    assert status == 200, body
    return json.loads(body)


@pytest.fixture
def run(tmp_path):
    """`shopstream run` on a free port, 60x faster than real time, so that
    minutes become final (the watermark passes them) within seconds."""
    for tool, hint in ((CHROMIUM, "apt-get install chromium (scripts/deps does)"),
                       (shutil.which("node"), "apt-get install nodejs (scripts/web-deps does)"),
                       (REPO / "web/node_modules/playwright-core",
                        "scripts/web-deps (npm ci --prefix web)")):
        if not tool or not Path(tool).exists():
            pytest.fail(f"the browser test needs {tool}: {hint}")
    proc = subprocess.Popen(
        [BIN, "run", "--data", str(tmp_path / "data"), "--port", "0", "--seed", "7",
         "--start", "2026-11-02T10:00:00Z", "--speedup", "60", "--rate", "2",
         "--archive-every", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    port = None
    deadline = time.monotonic() + 20
    while port is None and time.monotonic() < deadline:
        line = proc.stderr.readline().decode()
        if not line and proc.poll() is not None:
            pytest.fail(f"run exited {proc.returncode}")
        if "listening on http://127.0.0.1:" in line:
            port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
    if port is None:
        proc.kill()
        pytest.fail("run did not log its port within 20 s")
    yield port
    proc.terminate()
    try:
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def final_minutes(port, need):
    """Waits until the store holds `need` final minutes; returns [from, to) of
    them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = api(port, "/api/kpis?" + urllib.parse.urlencode(
            {"from": "2026-11-02T00:00:00Z", "to": "2026-11-03T00:00:00Z"}))["rows"]
        final = [r["minute_start"] for r in rows if r["final"] == 1]
        if len(final) >= need:
            return final[0], final[need - 1]
        time.sleep(0.5)
    pytest.fail(f"fewer than {need} final minutes after 60 s")


def iso_plus_minute(iso):
    t = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.000Z") + timedelta(minutes=1)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_dashboard_in_chromium(run, tmp_path):
    port = run
    first, last = final_minutes(port, 20)
    frm, to = first, iso_plus_minute(last)
    screenshot = Path(os.environ.get("SHOPSTREAM_SCREENSHOT") or tmp_path / "dashboard.png")
    out = subprocess.run(
        ["node", str(REPO / "tests/browser/dashboard.js"), f"http://127.0.0.1:{port}/", frm, to,
         str(screenshot)],
        capture_output=True, timeout=120, env=clean_env({"CHROMIUM": CHROMIUM}))
    assert out.returncode == 0, out.stderr.decode()
    seen = json.loads(out.stdout)

    assert seen["errors"] == []
    assert seen["external"] == []
    assert seen["bad_responses"] == []

    # The tiles of the custom range are the API's figures for it.
    custom = seen["custom"]
    assert custom["range"] == {"from": frm, "to": to}
    totals = api(port, "/api/totals?" + urllib.parse.urlencode({"from": frm, "to": to}))["totals"]
    # Every figure is exercised: the first cancellations come minutes after
    # their orders, hence 20 minutes.
    assert totals["orders"] > 0 and totals["failed_payments"] > 0 and totals["cancellations"] > 0
    tiles = {k: v["value"] for k, v in custom["tiles"].items()}
    assert int(tiles["tile-orders"]) == totals["orders"]
    assert float(tiles["tile-revenue"]) == totals["gross_revenue"]
    assert float(tiles["tile-aov"]) == totals["aov"]
    assert int(tiles["tile-failed"]) == totals["failed_payments"]
    assert int(tiles["tile-cancellations"]) == totals["cancellations"]
    assert float(tiles["tile-cancelled-revenue"]) == totals["cancelled_revenue"]
    assert custom["tiles"]["tile-orders"]["text"] == f"{totals['orders']:,}"
    assert custom["tiles"]["tile-revenue"]["text"] == f"{totals['gross_revenue']:,.2f}"

    # Each chart adds up to the tiles: the minutes, the categories, the
    # methods and the reasons partition the range's events.
    assert custom["minutes_orders"] == totals["orders"]
    assert custom["minutes_revenue"] == pytest.approx(totals["gross_revenue"], abs=0.005)
    assert custom["category_revenue"] == pytest.approx(totals["gross_revenue"], abs=0.005)
    assert custom["failed_by_method"] == totals["failed_payments"]
    assert custom["cancellations_by_reason"] == totals["cancellations"]
    cities = api(port, "/api/top?" + urllib.parse.urlencode(
        {"dimension": "city", "n": 1000, "from": frm, "to": to}))["rows"]
    with_orders = [c for c in cities if c["orders"] > 0]
    assert custom["city_bars"] == min(15, len(with_orders))
    assert custom["map_points"] == len([c for c in with_orders if c["lat"] is not None])
    assert custom["map_drawn"] > 0, "the base map was not drawn"

    # A tile follows the stream.
    live = seen["live"]
    assert live["changed_after_ms"] is not None, live
    assert live["after"] != live["before"]

    assert seen["phone"]["scroll_width"] <= seen["phone"]["inner_width"]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dashboard_with_a_token(tmp_path):
    """With --auth-token, the page opened as /#token=T sends the token with its
    requests and its stream, and drops it from the address bar."""
    data = make_store(tmp_path, 5, 3000, "2026-11-02T00:00:00Z")
    proc, port = start_server(data, "--auth-token", "t0ken")
    try:
        out = subprocess.run(
            ["node", str(REPO / "tests/browser/dashboard.js"),
             f"http://127.0.0.1:{port}/#token=t0ken&range=7d"],
            capture_output=True, timeout=120, env=clean_env({"CHROMIUM": CHROMIUM}))
        assert out.returncode == 0, out.stderr.decode()
        seen = json.loads(out.stdout)
        assert seen["errors"] == [] and seen["bad_responses"] == [], seen
        assert seen["status"] == ""
        assert "t0ken" not in seen["address"] and seen["address"].endswith("#range=7d")
        status, _, body = request(port, "GET", "/api/totals?range=7d",
                                  {"Authorization": "Bearer t0ken"})
        totals = json.loads(body)["totals"]
        assert int(seen["tiles"]["tile-orders"]) == totals["orders"] == 3000
        assert float(seen["tiles"]["tile-revenue"]) == totals["gross_revenue"]
    finally:
        stop_server(proc)

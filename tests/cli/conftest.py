"""Shared helpers for the black-box tests of `shopstream gen`.

The binary comes from SHOPSTREAM_BIN (CMake sets it for ctest), else
build/shopstream under the repository root. Every stream is generated with
--max and a fixed --start, so it is a pure function of its arguments, and each
distinct stream is generated and parsed once per pytest session.

Parsing keeps the raw text of every JSON number with a fraction
(parse_float=str): money is then checked and converted to integer cents from
the exact two-decimal text the generator wrote, never through a float.
"""

import datetime
import json
import os
import re
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("SHOPSTREAM_BIN") or str(REPO / "build" / "shopstream")

# A Monday, midnight UTC: simulated days and weeks start on whole boundaries.
START = "2026-11-02"

MONEY_RE = re.compile(r"-?[0-9]+\.[0-9]{2}")
TS_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})Z")

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000


def run(*args):
    """Runs the binary without any SHOPSTREAM_* variable in its environment (the
    CLI reads option defaults from them); returns the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    proc = subprocess.run([BIN, *map(str, args)], capture_output=True, timeout=120, env=env)
    if proc.returncode != 0:
        raise AssertionError(
            f"shopstream {' '.join(map(str, args))} exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace')}"
        )
    return proc


def gen_args(seed, count, rate=None, start=START, profile_path=None):
    args = ["gen", "--seed", seed, "--count", count, "--max", "--start", start]
    if rate is not None:
        args += ["--rate", rate]
    if profile_path is not None:
        args += ["--profile", profile_path]
    return args


def cents(text):
    """Integer cents from a money value as written: exactly two decimals."""
    assert isinstance(text, str) and MONEY_RE.fullmatch(text), f"money value {text!r} must have two decimals"
    neg = text.startswith("-")
    whole, frac = text.lstrip("-").split(".")
    v = int(whole) * 100 + int(frac)
    return -v if neg else v


_day_cache = {}


def ts_ms(text):
    """Milliseconds since the epoch from an ISO-8601 UTC timestamp with milliseconds."""
    m = TS_RE.fullmatch(text)
    assert m, f"timestamp {text!r} is not YYYY-MM-DDTHH:MM:SS.mmmZ"
    date, hh, mm, ss, ms = m.groups()
    day = _day_cache.get(date)
    if day is None:
        day = (datetime.date.fromisoformat(date) - datetime.date(1970, 1, 1)).days
        _day_cache[date] = day
    h, mi, s = int(hh), int(mm), int(ss)
    assert h < 24 and mi < 60 and s < 60, f"timestamp {text!r} out of range"
    return day * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000 + int(ms)


def parse_lines(data, prefix=None):
    """Parses JSON Lines into dicts (floats kept as their text). With prefix,
    only lines starting with it are parsed (a cheap filter on the type)."""
    lines = data.splitlines()
    if prefix is not None:
        lines = [ln for ln in lines if ln.startswith(prefix)]
    if not lines:
        return []
    # One document for the whole stream: much faster than a loads() per line,
    # and repeated keys share one string.
    return json.loads(b"[" + b",".join(lines) + b"]", parse_float=str)


class Stream:
    """A generated stream: its events and the usual groupings."""

    def __init__(self, args, events):
        self.args = args
        self.events = events
        self.orders = [e for e in events if e["type"] == "order"]
        self.payments = [e for e in events if e["type"] == "payment"]
        self.cancellations = [e for e in events if e["type"] == "cancellation"]
        self._by_order = None

    @property
    def by_order(self):
        """order_id -> {"order": ev, "payments": [...], "cancellations": [...]}, in stream order."""
        if self._by_order is None:
            m = defaultdict(lambda: {"order": None, "payments": [], "cancellations": []})
            for e in self.events:
                t = e["type"]
                if t == "order":
                    m[e["order_id"]]["order"] = e
                elif t == "payment":
                    m[e["order_id"]]["payments"].append(e)
                else:
                    m[e["order_id"]]["cancellations"].append(e)
            self._by_order = dict(m)
        return self._by_order


class Generator:
    """Generates and caches streams and effective profiles for one session."""

    def __init__(self, tmpdir):
        self.tmpdir = tmpdir
        self._raw = {}
        self._streams = {}
        self._profiles = {}
        self._files = {}

    def profile_file(self, override):
        """Writes an override document once; returns its path (None for none)."""
        if override is None:
            return None
        text = json.dumps(override, sort_keys=True)
        path = self._files.get(text)
        if path is None:
            path = self.tmpdir / f"profile{len(self._files)}.json"
            path.write_text(text)
            self._files[text] = path
        return path

    def profile(self, override=None):
        """The effective profile (defaults merged with override), from --print-profile."""
        key = json.dumps(override, sort_keys=True)
        if key not in self._profiles:
            args = ["gen", "--print-profile"]
            path = self.profile_file(override)
            if path is not None:
                args += ["--profile", path]
            self._profiles[key] = json.loads(run(*args).stdout)
        return self._profiles[key]

    def _generate(self, seed, count, rate, start, override):
        return run(*gen_args(seed, count, rate, start, self.profile_file(override))).stdout

    def raw(self, seed, count, rate=None, start=START, override=None):
        """The stream's bytes, generated once."""
        key = (seed, count, rate, start, json.dumps(override, sort_keys=True))
        if key not in self._raw:
            self._raw[key] = self._generate(seed, count, rate, start, override)
        return self._raw[key]

    def stream(self, seed, count, rate=None, start=START, override=None, only=None):
        """The parsed Stream, generated and parsed once; only="order" parses the
        orders alone (faster). The raw bytes are not kept (see raw())."""
        key = (seed, count, rate, start, json.dumps(override, sort_keys=True), only)
        s = self._streams.get(key)
        if s is None:
            data = self._raw.get(key[:5]) or self._generate(seed, count, rate, start, override)
            prefix = None if only is None else b'{"type":"%s"' % only.encode()
            s = self._streams[key] = Stream(key, parse_lines(data, prefix))
        return s


@pytest.fixture(scope="session")
def gen(tmp_path_factory):
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    return Generator(tmp_path_factory.mktemp("gen"))


@pytest.fixture(scope="session")
def profile(gen):
    """The built-in profile, as the binary reports it."""
    return gen.profile()


# The streams the tests share. Fixed seeds keep the tests reproducible; the
# thresholds are several standard errors wide and pass with other seeds too.

# A few days of a busy shop: every per-order property and the payment process.
MAIN = dict(seed=7, count=200_000, rate=0.5)
# Ten weeks of a quiet shop (orders only): arrivals over time, trends, campaigns.
LONG = dict(seed=11, count=121_000, rate=0.02)


@pytest.fixture(scope="session")
def main_stream(gen):
    return gen.stream(**MAIN)


@pytest.fixture(scope="session")
def long_orders(gen):
    return gen.stream(**LONG, only="order").orders

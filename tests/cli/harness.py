"""Running the shopstream binary from the black-box tests.

SHOPSTREAM_BIN names the binary (ctest sets it), SHOPSTREAM_SRC the source tree.
Every run gets the test's environment without SHOPSTREAM_* variables, so that
only what a test passes on purpose configures the binary.
"""
import os
import subprocess
from pathlib import Path

REPO = Path(os.environ.get("SHOPSTREAM_SRC") or Path(__file__).resolve().parents[2])
BIN = os.environ.get("SHOPSTREAM_BIN") or str(REPO / "build" / "shopstream")


def clean_env(extra=None):
    """The test's environment without any SHOPSTREAM_* variable, plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    env.update(extra or {})
    return env


def cli(*args, env=None, timeout=120):
    """Runs the binary with a clean environment; returns the CompletedProcess."""
    return subprocess.run([BIN, *map(str, args)], capture_output=True, timeout=timeout,
                          env=clean_env(env))


def describe(proc):
    out = proc.stdout[:500] if proc.stdout else b""
    return (f"exit {proc.returncode}\nstdout: {out!r}\n"
            f"stderr: {proc.stderr.decode(errors='replace')}")


def assert_ok(proc):
    assert proc.returncode == 0, describe(proc)
    return proc

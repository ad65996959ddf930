"""Black-box tests of the shopstream command line: help and version, every
kind of usage mistake (flags, environment, config files, profiles), clean
shutdown on SIGTERM, output files, option sources, and that
docs/options.md matches `shopstream help --markdown`.

A usage mistake must exit with code 2, write nothing to stdout, and name the
problem on stderr: the flag, the environment variable, the config file and
line, or the profile file and field path. It must never crash.

The binary comes from SHOPSTREAM_BIN (CMake sets it for ctest), else
build/shopstream under the repository root. Helpers and fixtures live in this
file on purpose: conftest.py belongs to the generator's tests.
"""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import BIN, REPO, assert_ok, clean_env, cli, describe


# A fixed start makes --max output a pure function of the flags.
GEN_FIXED = ["gen", "--max", "--count", "20", "--start", "2026-11-02"]

GEN_OPTIONS = ["--seed", "--count", "--rate", "--start", "--max", "--speedup", "--out",
               "--profile", "--print-profile", "-X, --property", "--partitions", "--config",
               "--log-level", "--help"]


def parse_jsonl(data):
    """Every line is a complete JSON object; returns them."""
    assert data.endswith(b"\n"), f"output ends mid-line: {data[-200:]!r}"
    events = []
    for i, line in enumerate(data.split(b"\n")[:-1]):
        try:
            ev = json.loads(line)
        except ValueError as e:
            raise AssertionError(f"line {i + 1} is not JSON ({e}): {line[:200]!r}") from None
        assert isinstance(ev, dict) and ev.get("type") in ("order", "payment", "cancellation"), line
        events.append(ev)
    return events


@pytest.fixture(scope="module", autouse=True)
def binary():
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    return BIN


# ---- help and version ----

@pytest.mark.parametrize("args", [["help"], ["--help"], ["-h"]])
def test_help_lists_commands(args):
    proc = assert_ok(cli(*args))
    out = proc.stdout.decode()
    assert "Usage: shopstream <command> [options]" in out
    for cmd in ("gen", "help", "version"):
        assert f"\n  {cmd} " in out, f"'{cmd}' missing from:\n{out}"
    assert proc.stderr == b""


@pytest.mark.parametrize("args", [["version"], ["--version"]])
def test_version(args):
    proc = assert_ok(cli(*args))
    text = proc.stdout.decode()
    assert text.startswith("shopstream ") and text.endswith("\n")
    major, minor, patch = text.split()[1].split(".")
    assert all(p.isdigit() for p in (major, minor, patch)), text
    assert proc.stderr == b""


@pytest.mark.parametrize("args", [["gen", "--help"], ["help", "gen"], ["gen", "-h"],
                                  ["gen", "--help=true"], ["gen", "--seed", "3", "--help"]])
def test_gen_help(args):
    proc = assert_ok(cli(*args))
    out = proc.stdout.decode()
    assert out.startswith("Usage: shopstream gen [options]\n"), out
    for flag in GEN_OPTIONS:
        assert f"\n  {flag} " in out, f"{flag} missing from gen --help:\n{out}"
    assert "env: SHOPSTREAM_SEED" in out
    assert "default: 1" in out
    assert "SHOPSTREAM_HELP" not in out, "help is never read from the environment"
    assert proc.stderr == b""


def test_gen_help_forms_agree():
    assert cli("gen", "--help").stdout == cli("help", "gen").stdout


def test_help_is_not_run():
    """--help wins over running the command, even with a bad profile path."""
    proc = assert_ok(cli("gen", "--profile", "/nonexistent.json", "--help"))
    assert proc.stdout.startswith(b"Usage: shopstream gen")


def test_print_profile_is_json():
    proc = assert_ok(cli("gen", "--print-profile"))
    prof = json.loads(proc.stdout)
    assert isinstance(prof, dict) and "catalog" in prof and "countries" in prof


# ---- usage mistakes: exit 2, a message that names the problem, no crash ----

BAD_REGION_PROFILE = json.dumps({"countries": [{
    "code": "DE", "name": "Germany", "region": "atlantis", "weight": 1, "vat": 0.19,
    "shipping": 4.99,
    "cities": [{"name": "Berlin", "lat": 52.5, "lon": 13.4, "population": 1}]}]})

# id, args, env, files {name: text}, needles for stderr. "{dir}" in args, env
# and needles is the test's temporary directory.
USAGE_ERRORS = [
    ("no-args", [], {}, {}, ["Usage: shopstream <command>"]),
    ("unknown-command", ["frobnicate"], {}, {},
     ["unknown command 'frobnicate'", "shopstream help"]),
    ("help-unknown-command", ["help", "frobnicate"], {}, {}, ["unknown command 'frobnicate'"]),
    ("unknown-flag", ["gen", "--sed", "3"], {}, {},
     ["unknown option '--sed'", "did you mean '--seed'?", "shopstream gen --help"]),
    ("unknown-flag-with-value", ["gen", "--cuont=3"], {}, {},
     ["unknown option '--cuont'", "did you mean '--count'?"]),
    ("unknown-flag-no-suggestion", ["gen", "--frobnicate"], {}, {},
     ["unknown option '--frobnicate'. Run 'shopstream gen --help'"]),
    ("short-flag", ["gen", "-s", "3"], {}, {}, ["unknown option '-s'", "options are long"]),
    ("positional", ["gen", "extra"], {}, {}, ["unexpected argument 'extra'"]),
    ("rate-negative", ["gen", "--rate", "-1"], {}, {},
     ["invalid value '-1' for --rate", "expected a number from"]),
    ("rate-text", ["gen", "--rate", "abc"], {}, {}, ["invalid value 'abc' for --rate"]),
    ("rate-zero", ["gen", "--rate=0"], {}, {}, ["invalid value '0' for --rate"]),
    ("count-text", ["gen", "--count", "x"], {}, {},
     ["invalid value 'x' for --count", "expected a whole number"]),
    ("count-suffix", ["gen", "--count", "5T"], {}, {}, ["invalid value '5T' for --count"]),
    ("start-yesterday", ["gen", "--start", "yesterday"], {}, {},
     ["invalid value 'yesterday' for --start", "2026-11-02"]),
    ("start-bad-date", ["gen", "--start", "2026-02-30"], {}, {},
     ["invalid value '2026-02-30' for --start"]),
    ("seed-negative", ["gen", "--seed", "-5"], {}, {},
     ["invalid value '-5' for --seed", "from 0 to"]),
    ("seed-too-big", ["gen", "--seed", "9007199254740992"], {}, {},
     ["invalid value '9007199254740992' for --seed"]),
    ("max-bad-bool", ["gen", "--max=maybe"], {}, {},
     ["invalid value 'maybe' for --max", "true or false"]),
    ("log-level", ["gen", "--log-level", "loud"], {}, {},
     ["invalid value 'loud' for --log-level", "error|warn|info|debug"]),
    ("out-empty", ["gen", "--out="], {}, {}, ["invalid value '' for --out"]),
    ("missing-value", ["gen", "--seed"], {}, {}, ["option --seed needs a value"]),
    ("missing-value-last", ["gen", "--max", "--start"], {}, {},
     ["option --start needs a value"]),
    ("max-and-speedup", ["gen", "--max", "--speedup", "2"], {}, {},
     ["--max and --speedup cannot be combined"]),
    ("env-rate", ["gen", "--count", "1"], {"SHOPSTREAM_RATE": "fast"}, {},
     ["invalid value 'fast' for --rate (from SHOPSTREAM_RATE)"]),
    ("env-seed", ["gen", "--count", "1"], {"SHOPSTREAM_SEED": "-1"}, {},
     ["(from SHOPSTREAM_SEED)"]),
    ("env-max-with-speedup", ["gen", "--speedup", "2"], {"SHOPSTREAM_MAX": "1"}, {},
     ["--max and --speedup cannot be combined"]),
    ("config-unknown-key", ["gen", "--config", "{dir}/c.conf"], {},
     {"c.conf": "# settings\nseed = 5\ncolour = blue\n"},
     ["config '{dir}/c.conf' line 3: unknown key 'colour'"]),
    ("config-bad-value", ["gen", "--config={dir}/c.conf"], {},
     {"c.conf": "count = lots\n"},
     ["invalid value 'lots' for --count (config '{dir}/c.conf' line 1)"]),
    ("config-no-equals", ["gen", "--config", "{dir}/c.conf"], {},
     {"c.conf": "seed = 5\n\nmax\n"}, ["config '{dir}/c.conf' line 3: expected 'key = value'"]),
    ("config-missing", ["gen", "--config", "{dir}/nope.conf"], {}, {},
     ["cannot open config file '{dir}/nope.conf'", "No such file"]),
    ("config-env-missing", ["gen", "--count", "1"], {"SHOPSTREAM_CONFIG": "{dir}/nope.conf"}, {},
     ["cannot open config file '{dir}/nope.conf'", "SHOPSTREAM_CONFIG"]),
    ("config-missing-value", ["gen", "--config"], {}, {}, ["option --config needs a value"]),
    ("profile-malformed", ["gen", "--profile", "{dir}/p.json"], {},
     {"p.json": '{"shop": {"currency": "EUR",}}'},
     ["profile '{dir}/p.json': not valid JSON at line 1"]),
    ("profile-empty-file", ["gen", "--profile", "{dir}/p.json"], {}, {"p.json": ""},
     ["profile '{dir}/p.json': not valid JSON"]),
    ("profile-not-object", ["gen", "--profile", "{dir}/p.json"], {}, {"p.json": "[1, 2, 3]"},
     ["profile '{dir}/p.json': (top level): must be a JSON object, not an array"]),
    ("profile-out-of-range", ["gen", "--profile", "{dir}/p.json"], {},
     {"p.json": '{"cancellations": {"rate": 1.5}}'},
     ["profile '{dir}/p.json': cancellations.rate: must be between 0 and 1 (got 1.5)"]),
    ("profile-wrong-type", ["gen", "--profile", "{dir}/p.json"], {},
     {"p.json": '{"catalog": {"zipf_exponent": "steep"}}'},
     ["profile '{dir}/p.json': catalog.zipf_exponent: must be a number, not a string"]),
    ("profile-unknown-key", ["gen", "--profile", "{dir}/p.json"], {},
     {"p.json": '{"shop": {"colour": "blue"}}'},
     ["profile '{dir}/p.json': shop.colour: unknown key"]),
    ("profile-missing", ["gen", "--profile", "{dir}/nope.json"], {}, {},
     ["profile '{dir}/nope.json': cannot open", "--profile"]),
    ("profile-env-missing", ["gen", "--count", "1"], {"SHOPSTREAM_PROFILE": "{dir}/nope.json"},
     {}, ["profile '{dir}/nope.json': cannot open"]),
    # Regression: an unknown region in a country without its own payment_mix
    # crashed the profile loader (SIGSEGV) instead of reporting the field.
    ("profile-unknown-region", ["gen", "--profile", "{dir}/p.json"], {},
     {"p.json": BAD_REGION_PROFILE},
     ["profile '{dir}/p.json': countries[0]: region 'atlantis' is not defined in regions"]),
    ("print-profile-malformed", ["gen", "--print-profile", "--profile", "{dir}/p.json"], {},
     {"p.json": "{"}, ["profile '{dir}/p.json': not valid JSON"]),
]


@pytest.mark.parametrize("args,env,files,needles",
                         [pytest.param(*case[1:], id=case[0]) for case in USAGE_ERRORS])
def test_usage_error(tmp_path, args, env, files, needles):
    for name, text in files.items():
        (tmp_path / name).write_text(text)

    def sub(text):
        return text.replace("{dir}", str(tmp_path))

    proc = cli(*map(sub, args), env={k: sub(v) for k, v in env.items()}, timeout=30)
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}\n{describe(proc)}"
    assert proc.returncode == 2, describe(proc)
    assert proc.stdout == b"", describe(proc)
    assert err.endswith("\n"), describe(proc)
    for needle in needles:
        assert sub(needle) in err, f"stderr does not contain {sub(needle)!r}:\n{err}"
    for crash in ("Sanitizer", "runtime error", "Segmentation", "core dumped"):
        assert crash not in err, describe(proc)


# ---- running ----

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_real_time_cleanly(sig):
    proc = subprocess.Popen([BIN, "gen", "--rate", "200"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=clean_env())
    try:
        time.sleep(1.5)
        assert proc.poll() is None, "gen --rate 200 stopped by itself"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"exit {proc.returncode} after {sig.name}: {err.decode()}"
    events = parse_jsonl(out)
    # 200 orders/s is a weekly mean; the quietest hour has about a tenth of it.
    assert len(events) >= 5, f"only {len(events)} events in 1.5 s at 200 orders/s"
    assert any(e["type"] == "order" for e in events)
    assert b"[gen]" in err  # the closing summary is logged


def test_out_file(tmp_path):
    stdout = assert_ok(cli(*GEN_FIXED)).stdout
    assert len(parse_jsonl(stdout)) >= 20
    for i, target in enumerate([str(tmp_path / "a.jsonl"), f"file:{tmp_path / 'b.jsonl'}"]):
        proc = assert_ok(cli(*GEN_FIXED, "--out", target))
        assert proc.stdout == b"", "events went to stdout, not to --out"
        path = tmp_path / ("a.jsonl", "b.jsonl")[i]
        assert path.read_bytes() == stdout, f"--out {target} differs from stdout"


def test_out_file_overwrites(tmp_path):
    path = tmp_path / "ev.jsonl"
    path.write_bytes(b"x" * 100_000)
    assert_ok(cli(*GEN_FIXED, "--out", path))
    parse_jsonl(path.read_bytes())


def test_out_unwritable_is_a_runtime_failure(tmp_path):
    proc = cli(*GEN_FIXED, "--out", tmp_path / "missing-dir" / "ev.jsonl")
    assert proc.returncode == 1, describe(proc)
    assert b"cannot open output" in proc.stderr and proc.stdout == b""


def gen_output(*extra, env=None):
    return assert_ok(cli(*GEN_FIXED, *extra, env=env)).stdout


def test_seed_from_env_and_config(tmp_path):
    default = gen_output()
    seed5 = gen_output("--seed", "5")
    assert seed5 != default, "--seed 5 gives the same stream as the default seed"
    assert gen_output("--seed", "1") == default, "the default seed is not 1"

    assert gen_output(env={"SHOPSTREAM_SEED": "5"}) == seed5, "SHOPSTREAM_SEED=5 ignored"

    conf = tmp_path / "shop.conf"
    conf.write_text("# test config\nseed = 5\n")
    assert gen_output("--config", conf) == seed5, "config 'seed = 5' ignored"
    assert gen_output(env={"SHOPSTREAM_CONFIG": str(conf)}) == seed5, \
        "SHOPSTREAM_CONFIG ignored"


def test_option_precedence(tmp_path):
    """default < config < environment < flag."""
    conf = tmp_path / "shop.conf"
    conf.write_text("seed = 5\n")
    seed7, seed9 = gen_output("--seed", "7"), gen_output("--seed", "9")
    assert gen_output("--config", conf, env={"SHOPSTREAM_SEED": "7"}) == seed7, \
        "the environment must override the config file"
    assert gen_output("--config", conf, "--seed", "9", env={"SHOPSTREAM_SEED": "7"}) == seed9, \
        "a flag must override the environment and the config file"
    # --config on the command line wins over SHOPSTREAM_CONFIG.
    other = tmp_path / "other.conf"
    other.write_text("seed = 9\n")
    assert gen_output("--config", other, env={"SHOPSTREAM_CONFIG": str(conf)}) == seed9


def test_config_sets_other_options(tmp_path):
    """One config file serves every command: keys of other commands are skipped."""
    conf = tmp_path / "shop.conf"
    conf.write_text(f"count = 3\nout = \"{tmp_path / 'ev.jsonl'}\"\nlog-level = error\n"
                    "lateness = 1000  # a key of shopstream process\n")
    proc = assert_ok(cli("gen", "--max", "--start", "2026-11-02", "--config", conf))
    assert proc.stdout == b"" and proc.stderr == b"", describe(proc)
    orders = [e for e in parse_jsonl((tmp_path / "ev.jsonl").read_bytes()) if e["type"] == "order"]
    assert len(orders) == 3


# ---- the options reference stays in sync ----

def test_docs_options_md_is_current():
    doc = REPO / "docs" / "options.md"
    current = assert_ok(cli("help", "--markdown")).stdout.decode()
    try:
        rel = os.path.relpath(BIN, REPO)
    except ValueError:
        rel = BIN
    regen = f"regenerate it with: {rel} help --markdown > docs/options.md"
    assert doc.exists(), f"docs/options.md is missing; {regen}"
    assert doc.read_text() == current, f"docs/options.md is out of date; {regen}"


def test_process_into_the_null_store_exits_0(tmp_path):
    """Regression: `process --hot null:` crashed (SIGSEGV) at its end: the
    archiver, which the null store cannot run, recorded that as a lifecycle
    note, which the null store has no place for."""
    events = tmp_path / "events.jsonl"
    events.write_bytes(assert_ok(cli("gen", "--seed", 1, "--count", 200, "--max")).stdout)
    proc = cli("process", "--from", events, "--hot", "null:", "--data", tmp_path / "d")
    assert proc.returncode == 0, describe(proc)
    assert b"records:" in proc.stderr, describe(proc)
    # A store that keeps nothing has nothing to archive: no archiver, no error.
    assert b"archive" not in proc.stderr and b"error" not in proc.stderr, describe(proc)


def test_null_store_payments_of_unknown_orders(tmp_path):
    """Regression: `process --hot null:` crashed (SIGSEGV) on a payment whose
    order it had not seen: the lookup went on to the cold index, which asked
    the null store for its archive records through callbacks it does not
    have."""
    lines = assert_ok(cli("gen", "--seed", 3, "--count", 50, "--max")).stdout.splitlines()
    payments = [x for x in lines if b'"type":"payment"' in x]
    assert payments
    events = tmp_path / "payments.jsonl"
    events.write_bytes(b"\n".join(payments) + b"\n")
    proc = cli("process", "--from", events, "--hot", "null:", "--data", tmp_path / "d")
    assert proc.returncode == 0, describe(proc)
    assert f"{len(payments)} records".encode() in proc.stderr, describe(proc)

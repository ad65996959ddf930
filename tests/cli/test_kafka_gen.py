"""`shopstream gen --out kafka://HOST:PORT/TOPIC` against a real broker.

The session starts its own single-node broker with scripts/kafka (KRaft, on
loopback, state in pytest's temporary directory) and reads topics back with
kcat, as a person would; the 100,000-order test also runs on a broker in
ZooKeeper mode. What a topic holds must be, byte for byte, what
`gen --out FILE` writes for the same flags: one message per JSON Lines
record, keyed by its order_id, each order's events in one partition and in
stream order, partitioned as the Java client does. Usage mistakes (URIs,
librdkafka properties) exit 2 before anything is sent; a broker that cannot
be reached is an error within the message timeout, not a hang; SIGTERM
delivers what was generated before gen exits.

Also runs a short stream through the ASan+UBSan build when it exists
(SHOPSTREAM_ASAN_BIN, else build-asan/shopstream).
"""

import json
import os
import signal
import subprocess
import time
from collections import defaultdict

import pytest

from harness import BIN, REPO, assert_ok, clean_env, cli, describe, free_port  # noqa: F401
from harness import kafka, kafka_each_mode  # noqa: F401

ASAN_BIN = os.environ.get("SHOPSTREAM_ASAN_BIN") or str(REPO / "build-asan" / "shopstream")
GEN = ["gen", "--max", "--start", "2026-11-02"]
SANITIZER_MARKS = ("Sanitizer", "runtime error", "Segmentation", "core dumped")


@pytest.fixture(scope="module", autouse=True)
def binary():
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")


def consume(address, topic, fmt="%s\n"):
    """Every message of the topic, from the beginning, formatted by kcat
    (-f: %s the value, %k the key, %p the partition)."""
    proc = subprocess.run(["kcat", "-C", "-b", address, "-t", topic, "-e", "-o", "beginning",
                           "-q", "-f", fmt],
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, f"kcat: {proc.stderr.decode(errors='replace')}"
    return proc.stdout


def gen_file(tmp_path, *flags):
    path = tmp_path / "events.jsonl"
    assert_ok(cli(*GEN, *flags, "--out", path, timeout=300))
    return path.read_bytes()


def murmur2(data):
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2)."""
    m, h = 0x5BD1E995, (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[4 * n4:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if len(tail) >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    return h ^ (h >> 15)


def test_murmur2_matches_kafka():
    # Values of the Java client's Utils.murmur2 (its own tests).
    assert murmur2(b"21") == (-973932308) & 0xFFFFFFFF
    assert murmur2(b"foobar") == (-790332482) & 0xFFFFFFFF
    assert murmur2(b"a-little-bit-long-string") == (-985981536) & 0xFFFFFFFF


# ---- the test: 100,000 orders, byte for byte ----

def test_100k_orders_read_back_byte_for_byte(kafka_each_mode, tmp_path):
    kafka = kafka_each_mode
    flags = ["--seed", "42", "--count", "100000"]
    proc = assert_ok(cli(*GEN, *flags, "--out", f"kafka://{kafka}/orders-100k",
                         "--partitions", "1", timeout=300))
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert "created topic 'orders-100k' with 1 partition" in err, err
    expected = gen_file(tmp_path, *flags)
    got = consume(kafka, "orders-100k")
    records = expected.count(b"\n")
    assert f"{records} messages delivered to topic 'orders-100k'" in err, err
    assert sum(1 for ln in expected.splitlines() if ln.startswith(b'{"type":"order"')) == 100_000
    if got != expected:
        a, b = got.splitlines(), expected.splitlines()
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(f"the topic holds {len(a)} records, the file {len(b)}; first difference "
                    f"at record {first + 1}:\n  topic: {a[first][:200] if first < len(a) else None}"
                    f"\n  file:  {b[first][:200] if first < len(b) else None}")


# ---- keys and partitions ----

def test_key_is_order_id_and_orders_keep_their_partition_and_order(kafka, tmp_path):
    flags = ["--seed", "7", "--count", "5000"]
    partitions = 6
    assert_ok(cli(*GEN, *flags, "--out", f"kafka://{kafka}/orders-6p",
                  "--partitions", partitions, timeout=120))
    expected = gen_file(tmp_path, *flags).splitlines()

    by_partition = defaultdict(list)
    partition_of = {}
    for rec in consume(kafka, "orders-6p", "%p\t%k\t%s\n").splitlines():
        p, key, value = rec.split(b"\t", 2)
        assert json.loads(value)["order_id"] == key.decode(), rec
        p = int(p)
        assert partition_of.setdefault(key, p) == p, f"order {key} is in partitions " \
                                                     f"{partition_of[key]} and {p}"
        # The Java client's partitioner, so that every client finds an order.
        assert p == (murmur2(key) & 0x7FFFFFFF) % partitions, (key, p)
        by_partition[p].append(value)
    assert len(by_partition) == partitions, f"only partitions {sorted(by_partition)} were used"

    # Each partition holds its orders' events in the order gen wrote them.
    for p, values in by_partition.items():
        want = [ln for ln in expected if partition_of[json.loads(ln)["order_id"].encode()] == p]
        assert values == want, f"partition {p} differs from the stream's order"
    assert sum(map(len, by_partition.values())) == len(expected)


def test_an_existing_topic_keeps_its_partitions(kafka):
    topic = f"kafka://{kafka}/orders-kept"
    assert_ok(cli(*GEN, "--count", "10", "--out", topic, "--partitions", "3"))
    proc = assert_ok(cli(*GEN, "--count", "10", "--out", topic, "--partitions", "5"))
    err = proc.stderr.decode()
    assert "topic 'orders-kept' exists with 3 partitions" in err, err
    meta = subprocess.run(["kcat", "-L", "-b", kafka, "-t", "orders-kept"], capture_output=True,
                          timeout=60).stdout.decode()
    assert "with 3 partitions" in meta, meta


def test_properties_reach_librdkafka(kafka, tmp_path):
    """-X in its forms, SHOPSTREAM_PROPERTY and the config file: a tiny queue
    (back-pressure on every few messages) and lz4 still deliver everything."""
    flags = ["--seed", "3", "--count", "3000"]
    conf = tmp_path / "gen.conf"
    conf.write_text("property = compression.type=lz4\n")
    assert_ok(cli(*GEN, *flags, "--out", f"kafka://{kafka}/orders-props", "--config", conf,
                  "-X", "queue.buffering.max.messages=50", "-Xlinger.ms=1",
                  "--property", "batch.num.messages=20",
                  env={"SHOPSTREAM_PROPERTY": "client.id=props-test\nacks=all"}))
    assert consume(kafka, "orders-props") == gen_file(tmp_path, *flags)


# ---- stopping ----

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_delivers_what_was_generated(kafka, sig):
    topic = f"orders-{sig.name.lower()}"
    proc = subprocess.Popen([BIN, "gen", "--speedup", "600", "--out", f"kafka://{kafka}/{topic}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    try:
        time.sleep(2)
        assert proc.poll() is None, "gen stopped by itself"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    err = err.decode()
    assert proc.returncode == 0, f"exit {proc.returncode} after {sig.name}: {err}"
    records = consume(kafka, topic).splitlines()
    assert len(records) > 10
    assert f"{len(records)} messages delivered to topic '{topic}'" in err, err
    for rec in records:
        assert json.loads(rec)["type"] in ("order", "payment", "cancellation")


# ---- failures ----

def test_unreachable_broker_fails_within_the_message_timeout():
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    proc = cli(*GEN, "--count", "100", "--out", f"kafka://127.0.0.1:{port}/orders",
               "-X", "message.timeout.ms=2000", timeout=60)
    took = time.monotonic() - t0
    err = proc.stderr.decode()
    assert proc.returncode == 1, describe(proc)
    assert proc.stdout == b""
    assert f"cannot reach the Kafka cluster at 127.0.0.1:{port} within 2.0 s" in err, err
    assert "Connection refused" in err, err
    assert took < 20, f"gen took {took:.1f} s to give up"


# id, flags, environment, needles for stderr
USAGE = [
    ("unknown-property", ["-X", "colour=blue"], {},
     ["bad Kafka property 'colour=blue'", "No such configuration property"]),
    ("bad-property-value", ["-X", "acks=some"], {}, ["bad Kafka property 'acks=some'"]),
    ("property-without-value", ["-Xacks"], {},
     ["bad Kafka property 'acks': expected KEY=VALUE"]),
    ("property-missing", ["-X"], {}, ["option --property needs a value"]),
    ("properties-that-clash", ["-X", "acks=1"], {},
     ["bad Kafka configuration", "enable.idempotence"]),
    ("property-from-env", [], {"SHOPSTREAM_PROPERTY": "linger.ms=5\nnope=1"},
     ["bad Kafka property 'nope=1'"]),
    ("partitions-zero", ["--partitions", "0"], {}, ["invalid value '0' for --partitions"]),
]


@pytest.mark.parametrize("extra,env,needles", [pytest.param(*c[1:], id=c[0]) for c in USAGE])
def test_bad_properties_exit_2(extra, env, needles):
    # Nothing listens on port 1: usage errors must come before any connection.
    proc = cli(*GEN, "--count", "1", "--out", "kafka://127.0.0.1:1/orders", *extra, env=env,
               timeout=30)
    err = proc.stderr.decode()
    assert proc.returncode == 2, describe(proc)
    assert proc.stdout == b""
    for needle in needles:
        assert needle in err, err
    assert "cannot reach" not in err, err


@pytest.mark.parametrize("uri,needle", [
    ("kafka://127.0.0.1:9092", "needs brokers and a topic"),
    ("kafka://127.0.0.1:9092/", "needs brokers and a topic"),
    ("kafka:///orders", "needs brokers and a topic"),
    ("kafka://localhost/orders", "broker 'localhost' is not HOST:PORT"),
    ("kafka://a:1,b/orders", "broker 'b' is not HOST:PORT"),
    ("kafka://a:1/or/ders", "'or/ders' is not a valid topic name"),
    ("kafka://a:1/..", "'..' is not a valid topic name"),
    ("kafka://a:x/orders", "broker 'a:x' is not HOST:PORT"),
    ("mongodb://a:1/orders", "use '-', a file path, file:PATH or kafka://HOST:PORT/TOPIC"),
])
def test_bad_uri_exit_2(uri, needle):
    proc = cli(*GEN, "--count", "1", "--out", uri, timeout=30)
    assert proc.returncode == 2, describe(proc)
    assert needle in proc.stderr.decode(), describe(proc)


@pytest.mark.parametrize("extra,needle", [
    (["-X", "acks=all"], "takes no client properties (got 'acks=all')"),
    (["--partitions", "3"], "has no partitions"),
])
def test_kafka_settings_with_a_file_output_exit_2(tmp_path, extra, needle):
    proc = cli(*GEN, "--count", "1", "--out", tmp_path / "ev.jsonl", *extra, timeout=30)
    assert proc.returncode == 2, describe(proc)
    assert needle in proc.stderr.decode(), describe(proc)
    assert not (tmp_path / "ev.jsonl").exists()


# ---- the sanitizer build ----

def test_sanitizer_build_produces_the_same_stream(kafka, tmp_path):
    if not os.access(ASAN_BIN, os.X_OK):
        if os.environ.get("SHOPSTREAM_ASAN_BIN"):
            pytest.fail(f"SHOPSTREAM_ASAN_BIN={ASAN_BIN} is not an executable")
        pytest.skip(f"no sanitizer build at {ASAN_BIN} (make asan)")
    flags = ["--seed", "5", "--count", "2000"]
    proc = subprocess.run([ASAN_BIN, *GEN, *flags, "--out", f"kafka://{kafka}/orders-asan",
                           "--partitions", "2", "-X", "queue.buffering.max.messages=100"],
                          capture_output=True, timeout=300, env=clean_env())
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, err[-5000:]
    for mark in SANITIZER_MARKS:
        assert mark not in err, err[-5000:]
    got = sorted(consume(kafka, "orders-asan").splitlines())
    assert got == sorted(gen_file(tmp_path, *flags).splitlines())

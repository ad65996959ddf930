"""Running the shopstream binary from the black-box tests.

SHOPSTREAM_BIN names the binary (ctest sets it), SHOPSTREAM_SRC the source tree.
Every run gets the test's environment without SHOPSTREAM_* variables, so that
only what a test passes on purpose configures the binary.
"""
import http.client
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

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


def make_store(tmp, seed, count, start):
    """Generates a stream and processes it into tmp/data; returns that path."""
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    raw = assert_ok(cli("gen", "--seed", seed, "--count", count, "--max", "--start",
                        start)).stdout
    src = tmp / "events.jsonl"
    src.write_bytes(raw)
    assert_ok(cli("process", "--from", src, "--data", tmp / "data"))
    return tmp / "data"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, headers=None):
    """One HTTP request to the local server: (status, content type, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.getheader("Content-Type"), r.read()
    finally:
        conn.close()


def start_server(data, *extra):
    """Starts `shopstream serve` on a free loopback port; returns (process, port)
    once /healthz answers."""
    port = free_port()
    proc = subprocess.Popen([BIN, "serve", "--data", str(data), "--port", str(port),
                             "--bind", "127.0.0.1", *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"serve exited {proc.returncode}: {proc.stderr.read().decode()}")
        try:
            status, _, _ = request(port, "GET", "/healthz")
            if status == 200:
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail("serve did not answer /healthz within 10 s")


def stop_server(proc):
    """Stops a server; it must exit 0."""
    proc.terminate()
    try:
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def running(server):
    """For a fixture: yields a started server (MongoServer, HdfsServer) and
    stops it when the fixture ends."""
    try:
        yield server
    finally:
        server.stop()


# ---- a Kafka broker of the test session's own (scripts/kafka) ----

KAFKA_SCRIPT = REPO / "scripts" / "kafka"


def start_service(script, state_dir, keep=False, *extra, env=None):
    """Starts a server with one of the project's scripts (scripts/kafka,
    scripts/mongo, scripts/hdfs), its state in state_dir; returns the address it prints
    once the server answers. The server stops by itself when this process is
    gone, so that a killed test run leaves none behind. The first start on a
    machine fetches its jars. With keep, restarts the server stopped in
    state_dir, with its data and port (an outage). extra goes to the
    script's start; env adds variables for the script."""
    proc = subprocess.run([str(script), "start", "--dir", str(state_dir),
                           "--owner", str(os.getpid()), *(["--keep"] if keep else []), *extra],
                          capture_output=True, timeout=900, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        pytest.fail(f"{script.parent.name}/{script.name} start failed (exit {proc.returncode}):\n"
                    f"{proc.stderr.decode(errors='replace')[-3000:]}")
    return proc.stdout.decode().strip()


def stop_service(script, state_dir):
    """Stops the server of state_dir (SIGTERM, then waits for its exit)."""
    subprocess.run([str(script), "stop", "--dir", str(state_dir)], capture_output=True,
                   timeout=120)


def start_kafka(state_dir, keep=False, zookeeper=False):
    """A single-node broker (scripts/kafka), in KRaft mode or with zookeeper
    in ZooKeeper mode; returns "127.0.0.1:PORT"."""
    return start_service(KAFKA_SCRIPT, state_dir, keep, *(["--zookeeper"] if zookeeper else []))


def stop_kafka(state_dir):
    stop_service(KAFKA_SCRIPT, state_dir)


@pytest.fixture(scope="session")
def kafka(tmp_path_factory):
    """The bootstrap address of a broker started for this test session."""
    state = tmp_path_factory.mktemp("kafka")
    address = start_kafka(state)
    try:
        yield address
    finally:
        stop_kafka(state)


@pytest.fixture(scope="session", params=("kraft", "zookeeper"))
def kafka_each_mode(request, tmp_path_factory):
    """The bootstrap address of a broker in each of Kafka's modes, one broker
    per mode for the session: a test that takes it runs once on the KRaft
    broker of the kafka fixture and once on a broker in ZooKeeper mode (with
    its own ZooKeeper server, both stopped at the end of the session)."""
    if request.param == "kraft":
        yield request.getfixturevalue("kafka")
        return
    state = tmp_path_factory.mktemp("kafka-zookeeper")
    address = start_kafka(state, zookeeper=True)
    try:
        yield address
    finally:
        stop_kafka(state)


# ---- a MongoDB-wire server of the test session's own (scripts/mongo) ----

MONGO_SCRIPT = REPO / "scripts" / "mongo"


def start_mongo(state_dir, keep=False, ferretdb=False):
    """mongo-java-server, or FerretDB (scripts/mongo, scripts/mongo
    --ferretdb); returns "mongodb://127.0.0.1:PORT"."""
    return start_service(MONGO_SCRIPT, state_dir, keep, *(["--ferretdb"] if ferretdb else []))


def stop_mongo(state_dir):
    stop_service(MONGO_SCRIPT, state_dir)


class MongoServer:
    """The session's server: its URI and state directory, so that a test can
    stop and restart it (with its data) to play an outage."""

    def __init__(self, state_dir, ferretdb=False):
        self.dir = state_dir
        self.ferretdb = ferretdb
        self.uri = start_mongo(state_dir, ferretdb=ferretdb)

    def stop(self):
        stop_mongo(self.dir)

    def restart(self):
        self.uri = start_mongo(self.dir, keep=True, ferretdb=self.ferretdb)


@pytest.fixture(scope="session")
def mongo(tmp_path_factory):
    """A mongo-java-server started for this test session (MongoServer)."""
    yield from running(MongoServer(tmp_path_factory.mktemp("mongo")))


# ---- an HDFS (NameNode and DataNode) of the test session's own (scripts/hdfs) ----

HDFS_SCRIPT = REPO / "scripts" / "hdfs"


class HdfsServer:
    """The session's HDFS: its webhdfs:// URI, the NameNode's HTTP address
    ("127.0.0.1:PORT"), its swebhdfs:// URI with the CA file to trust, and
    the state directory, so that a test can stop and
    restart it (with its files) to play an outage, or find a daemon's pid.
    With permissions, HDFS checks them (scripts/hdfs has them off)."""

    def __init__(self, state_dir, permissions=False):
        self.dir = state_dir
        self.env = {"SHOPSTREAM_HDFS_PERMISSIONS": "true" if permissions else "false"}
        self._start()

    def _start(self, keep=False):
        self.uri = start_service(HDFS_SCRIPT, self.dir, keep, env=self.env)
        self.address = self.uri.removeprefix("webhdfs://").rstrip("/")
        # The same over HTTPS, and the certificate that the client trusts.
        self.https_uri = (Path(self.dir) / "https-uri").read_text().strip()
        self.ca = str(Path(self.dir) / "ca.pem")

    def pid(self, daemon):
        """The pid of "namenode" or "datanode"."""
        return int((Path(self.dir) / f"{daemon}.pid").read_text())

    def stop(self):
        stop_service(HDFS_SCRIPT, self.dir)

    def restart(self):
        self._start(keep=True)


@pytest.fixture(scope="session")
def hdfs(tmp_path_factory):
    """A single-node HDFS started for this test session (HdfsServer)."""
    yield from running(HdfsServer(tmp_path_factory.mktemp("hdfs")))


# ---- an HBase and its REST gateway of the test session's own (scripts/hbase) ----

HBASE_SCRIPT = REPO / "scripts" / "hbase"


class HbaseServer:
    """The session's HBase: the REST gateway's address ("127.0.0.1:PORT") and
    the state directory, so that a test can kill the master and restart it
    (with its tables) to play an outage."""

    def __init__(self, state_dir):
        self.dir = state_dir
        self._start()

    def _start(self, keep=False):
        self.url = start_service(HBASE_SCRIPT, self.dir, keep)
        self.address = self.url.removeprefix("http://")

    def sink(self, table):
        """The --kpi-sink URI of a table."""
        return f"hbase+http://{self.address}/{table}"

    def pid(self, daemon):
        """The pid of "master" or "rest"."""
        return int((Path(self.dir) / f"{daemon}.pid").read_text())

    def stop(self):
        stop_service(HBASE_SCRIPT, self.dir)

    def restart(self):
        self._start(keep=True)


@pytest.fixture(scope="session")
def hbase(tmp_path_factory):
    """A standalone HBase with its REST gateway started for this test session
    (HbaseServer)."""
    yield from running(HbaseServer(tmp_path_factory.mktemp("hbase")))


@pytest.fixture(scope="session")
def ferretdb(tmp_path_factory):
    """A FerretDB (SQLite backend) started for this test session
    (MongoServer). Its first start on a machine builds it, for minutes."""
    yield from running(MongoServer(tmp_path_factory.mktemp("ferretdb"), ferretdb=True))


# ---- Spark (scripts/spark): one SparkSession for the test session ----

SPARK_SCRIPT = REPO / "scripts" / "spark"


def spark_settings():
    """scripts/spark env: PySpark and the Kafka connector's jars, installed
    into the cache once (the first time on a machine takes a few minutes);
    returns its NAME=VALUE settings."""
    proc = subprocess.run([str(SPARK_SCRIPT), "env"], capture_output=True, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"scripts/spark env failed (exit {proc.returncode}):\n"
                    f"{proc.stderr.decode(errors='replace')[-3000:]}")
    return dict(line.split("=", 1) for line in proc.stdout.decode().splitlines() if "=" in line)


@pytest.fixture(scope="session")
def spark():
    """A SparkSession in this process (local mode, on loopback), with the
    settings of scripts/spark: pyspark is imported from its venv, which
    scripts/spark made with this same python3. spark/ is importable
    (analytics, streaming_baseline)."""
    import sys
    env = spark_settings()
    here = "%d.%d" % sys.version_info[:2]
    if env["SHOPSTREAM_SPARK_PYTHON"] != here:
        pytest.fail(f"scripts/spark's venv is Python {env['SHOPSTREAM_SPARK_PYTHON']}, this "
                    f"pytest runs on {here}: its pyspark cannot be imported here; run pytest "
                    "with the python3 that scripts/spark uses")
    for k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "SPARK_LOCAL_DIRS",
              "SPARK_CONF_DIR"):
        os.environ[k] = env[k]
    os.environ.pop("SPARK_HOME", None)
    for path in (env["SHOPSTREAM_SPARK_SITE"], str(REPO / "spark")):
        if path not in sys.path:
            sys.path.insert(0, path)
    from pyspark.sql import SparkSession
    session = (SparkSession.builder.master(env["SHOPSTREAM_SPARK_MASTER"])
               .appName("shopstream-tests").config("spark.jars", env["SHOPSTREAM_SPARK_JARS"])
               .getOrCreate())
    try:
        yield session
    finally:
        session.stop()

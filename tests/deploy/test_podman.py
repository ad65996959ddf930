"""The image and docker-compose.yml's own services, run for real with podman
(scripts/podman: a Debian 12 base made with debootstrap from the machine's
mirror, cached; the image built on it once per test session; podman-compose
from PyPI; podman's settings in the containers.conf the script writes).

- The image is the Dockerfile's: built on the local base, the user 10001,
  shopstream as entrypoint, serve as default command, the volume /data, the
  port and the health check; no compiler or npm in it; the binary of this
  tree.
- `shopstream run --headless` in the image for a fixed count: `shopstream
  sql` in the image gives the KPIs (final flags included), facts, dimensions
  and counters of the same run of the host binary, byte for byte.
- The image's default command (`serve`) on the host's network answers
  /healthz, and /api/totals and /api/top as a host `serve` over the host
  run's store; its health check passes; SIGTERM stops it with exit 0.
- docker-compose.yml's gen, process (PROCESS_REPLICAS of them), archive and
  serve under podman-compose, laid over with deploy/compose.podman.yml and
  pointed at the broker of scripts/kafka: gen writes the seed's stream of a
  fixed count (a test layer adds the count and start), the two engines, one
  consumer group, split the topic's partitions and fill one store on the
  named volume (positions never going back as partitions change hands), and
  the store (`shopstream sql` in the serve container) and serve's API end
  with the KPIs of the same stream processed by the host binary. The file's
  health checks pass in the containers; stop ends every service with exit
  0; down -v leaves no container or volume.

These tests need podman to work: where it does not, they fail with the
reason, as a missing broker fails the Kafka tests.
"""
import json
import os
import re
import subprocess
import time
from types import SimpleNamespace

import pytest

from harness import REPO, assert_ok, clean_env, cli, describe, free_port, request
from harness import start_server, stop_server
from harness import kafka  # noqa: F401 (the session's broker)

PODMAN_SCRIPT = REPO / "scripts" / "podman"
OVERRIDE = REPO / "deploy" / "compose.podman.yml"
BASE_IMAGE = "localhost/debian:bookworm"
START = "2026-11-02T00:00:00Z"
RANGE = "from=2026-11-01&to=2026-12-01"
RUN_SEED, RUN_COUNT = 89, 3000
STACK_COUNT = 4000
# Names of what a session creates start with this and its pid, so that
# those of a killed session can be told apart and removed.
PREFIX = "sspodmantest"

# What the stores are compared on: the KPI rows, the facts in sums, the
# dimensions, the orders' states and the engine's counters.
KPI_COLUMNS = ("minute_start, dimension, dimension_value, orders, units, gross_revenue, "
               "paid_revenue, aov, payment_attempts, failed_payments, cancellations, "
               "cancelled_revenue")
FACT_QUERIES = (
    "SELECT count(*), sum(quantity), round(sum(total_price), 2), count(DISTINCT customer_id) "
    "FROM orders",
    "SELECT status, count(*), round(sum(amount), 2) FROM payments GROUP BY status ORDER BY status",
    "SELECT reason, count(*), round(sum(refund), 2) FROM cancellations GROUP BY reason "
    "ORDER BY reason",
    "SELECT status, count(*) FROM order_state GROUP BY status ORDER BY status",
    "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM products), "
    "(SELECT count(*) FROM cities), (SELECT count(*) FROM rejected_events), "
    "(SELECT count(*) FROM late_events)",
)


def podman(env, *args, timeout=120, check=True):
    """Runs podman with the settings of scripts/podman; returns the
    CompletedProcess (asserting exit 0 with check)."""
    proc = subprocess.run(["podman", *map(str, args)], capture_output=True, timeout=timeout,
                          env=env)
    if check:
        assert proc.returncode == 0, f"podman {' '.join(map(str, args))}\n{describe(proc)}"
    return proc


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_leftovers(env):
    """Containers, pods and volumes of earlier sessions of these tests whose
    process is gone (a killed run): the services' restart policy would keep
    them running."""
    listed = {
        "container": podman(env, "ps", "-a", "--format", "{{.Names}}").stdout,
        "pod": podman(env, "pod", "ps", "--format", "{{.Name}}").stdout,
        "volume": podman(env, "volume", "ls", "--format", "{{.Name}}").stdout,
    }
    for kind, out in listed.items():
        for name in out.decode().split():
            m = re.match(rf"(?:pod_)?{PREFIX}(\d+)", name)
            if m and not pid_alive(int(m[1])):
                cmd = {"container": ["rm", "-f", "-v", "-t", "0"], "pod": ["pod", "rm", "-f"],
                       "volume": ["volume", "rm", "-f"]}[kind]
                podman(env, *cmd, name, check=False)


@pytest.fixture(scope="session")
def podman_env():
    """The environment of podman's commands: scripts/podman's settings
    (CONTAINERS_CONF), none of the shell's SHOPSTREAM_* variables."""
    proc = subprocess.run([str(PODMAN_SCRIPT), "conf"], capture_output=True, timeout=60)
    if proc.returncode != 0:
        pytest.fail("scripts/podman conf failed: podman cannot run here\n" + describe(proc))
    env = clean_env({"CONTAINERS_CONF": proc.stdout.decode().strip()})
    if "SHOPSTREAM_PODMAN_CACHE" in os.environ:
        env["SHOPSTREAM_PODMAN_CACHE"] = os.environ["SHOPSTREAM_PODMAN_CACHE"]
    info = subprocess.run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
                          capture_output=True, timeout=60, env=env)
    if info.returncode != 0 or info.stdout.strip() != b"runc":
        pytest.fail("podman does not run with the settings of scripts/podman (runc):\n" +
                    describe(info))
    remove_leftovers(env)
    return env


@pytest.fixture(scope="session")
def image(podman_env):
    """The image of this tree (scripts/podman build): its tag."""
    t0 = time.monotonic()
    proc = subprocess.run([str(PODMAN_SCRIPT), "build"], capture_output=True, timeout=3600,
                          env=podman_env)
    if proc.returncode != 0:
        pytest.fail(f"scripts/podman build failed (exit {proc.returncode}):\n"
                    f"{proc.stderr.decode(errors='replace')[-4000:]}")
    tag = proc.stdout.decode().strip()
    print(f"image {tag}: scripts/podman build took {time.monotonic() - t0:.1f} s")
    return tag


def in_image(env, image, *args, volume=None, timeout=300):
    """`shopstream ARGS` in a container of the image that is removed after
    (with the volume at /data); returns the CompletedProcess."""
    mount = ["-v", f"{volume}:/data"] if volume else []
    return podman(env, "run", "--rm", "--no-healthcheck", *mount, image, *args, timeout=timeout,
                  check=False)


def dotenv():
    pairs = (ln.split("=", 1) for ln in (REPO / ".env").read_text().splitlines()
             if ln.strip() and not ln.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def host_sql(data, query):
    return assert_ok(cli("sql", "--data", data, "--format", "csv", query)).stdout


# ---- the image ----

def test_the_image_is_the_dockerfiles(podman_env, image):
    info = json.loads(podman(podman_env, "image", "inspect", image).stdout)[0]
    base = json.loads(podman(podman_env, "image", "inspect", BASE_IMAGE).stdout)[0]
    # Built on the local base: its layer is the image's first.
    assert info["RootFS"]["Layers"][0] == base["RootFS"]["Layers"][0]
    cfg = info["Config"]
    assert cfg["User"] == "10001:10001"
    assert cfg["Entrypoint"] == ["shopstream"]
    assert cfg["Cmd"] == ["serve", "--bind", "0.0.0.0"]
    assert "/data" in cfg["Volumes"] and "8050/tcp" in cfg["ExposedPorts"]
    assert "SHOPSTREAM_DATA=/data" in cfg["Env"] and cfg["WorkingDir"] == "/data"
    # The health check survives only in Docker's image format.
    health = info.get("Healthcheck") or {}
    assert "/healthz" in " ".join(health.get("Test") or []), info.get("Healthcheck")

    version = in_image(podman_env, image, "version")
    assert version.returncode == 0, describe(version)
    assert version.stdout == assert_ok(cli("version")).stdout
    tools = podman(podman_env, "run", "--rm", "--no-healthcheck", "--entrypoint", "bash", image,
                   "-c", "id -u; for t in cc gcc cmake ninja npm node; do command -v $t; done; "
                   "true")
    assert tools.stdout.split() == [b"10001"], f"the runtime image holds {tools.stdout!r}"


@pytest.fixture(scope="module")
def image_run(podman_env, image, tmp_path_factory):
    """`shopstream run --headless` in the image into a volume, and the same
    run of the host binary: (volume, host store, seconds in the container)."""
    volume = f"{PREFIX}{os.getpid()}-run"
    podman(podman_env, "volume", "create", volume)
    try:
        args = ["run", "--headless", "--max", "--count", RUN_COUNT, "--seed", RUN_SEED,
                "--start", START]
        t0 = time.monotonic()
        proc = in_image(podman_env, image, *args, volume=volume)
        took = time.monotonic() - t0
        assert proc.returncode == 0, describe(proc)
        ref = tmp_path_factory.mktemp("host-run") / "data"
        assert_ok(cli(*args, "--data", ref))
        yield SimpleNamespace(volume=volume, ref=ref, took=took)
    finally:
        podman(podman_env, "volume", "rm", "-f", volume, check=False)


def test_run_in_the_image_gives_the_host_runs_kpis(podman_env, image, image_run):
    queries = (f"SELECT {KPI_COLUMNS}, final FROM kpi_minute ORDER BY 1, 2, 3",
               "SELECT key, value FROM engine_state ORDER BY key", *FACT_QUERIES)
    for q in queries:
        got = in_image(podman_env, image, "sql", "--format", "csv", q, volume=image_run.volume)
        assert got.returncode == 0, f"{q}\n{describe(got)}"
        want = host_sql(image_run.ref, q)
        assert got.stdout == want, f"{q}\nin the image:\n{got.stdout[:2000]!r}\n" \
                                   f"on the host:\n{want[:2000]!r}"
    kpis = host_sql(image_run.ref, "SELECT count(*), sum(orders) FROM kpi_minute "
                                   "WHERE dimension = 'overall'").split()[1]
    minutes, orders = map(int, kpis.split(b","))
    assert orders == RUN_COUNT and minutes > 10
    print(f"{RUN_COUNT} orders run in the image in {image_run.took:.1f} s: {minutes} minutes of "
          f"KPIs and {len(queries) - 1} other queries equal the host run's")


def wait_healthz(port, timeout, container_gone=lambda: False):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        assert not container_gone(), "the container exited"
        time.sleep(0.2)
    pytest.fail(f"no answer from /healthz on port {port} within {timeout} s")


def api_answers(port):
    """The answers of the API endpoints the comparisons read (JSON)."""
    out = {}
    for path in (f"/api/totals?{RANGE}", "/api/top?dimension=category&metric=orders&n=5&range=7d"):
        status, _, body = request(port, "GET", path)
        assert status == 200, (path, status, body)
        out[path] = json.loads(body)
    return out


def test_serve_in_the_image_answers_on_the_host_network(podman_env, image, image_run):
    port = free_port()
    name = f"{PREFIX}{os.getpid()}-serve"
    # The image's default command, on the port its health check reads.
    podman(podman_env, "run", "-d", "--name", name, "--network", "host",
           "-e", f"SHOPSTREAM_PORT={port}", "-v", f"{image_run.volume}:/data", image)
    try:
        def gone():
            return podman(podman_env, "inspect", "--format", "{{.State.Running}}",
                          name).stdout.strip() != b"true"
        wait_healthz(port, 30, gone)
        answers = api_answers(port)
        host, host_port = start_server(image_run.ref)
        try:
            assert answers == api_answers(host_port)
        finally:
            stop_server(host)
        assert answers[f"/api/totals?{RANGE}"]["totals"]["orders"] == RUN_COUNT
        health = podman(podman_env, "healthcheck", "run", name, check=False)
        assert health.returncode == 0, f"the image's health check failed:\n{describe(health)}"
        assert podman(podman_env, "exec", name, "id", "-u").stdout.strip() == b"10001"
        podman(podman_env, "stop", "-t", "10", name)
        state = podman(podman_env, "inspect", "--format", "{{.State.ExitCode}}", name)
        assert state.stdout.strip() == b"0"
        logs = podman(podman_env, "logs", name).stderr.decode(errors="replace")
        assert f"serving /data on http://0.0.0.0:{port}/" in logs, logs
    finally:
        podman(podman_env, "rm", "-f", "-v", "-t", "0", name, check=False)
    with pytest.raises(OSError):
        request(port, "GET", "/healthz")


# ---- the Compose file's services ----

def compose_config(env, *files):
    """The Compose files as the Compose CLI (scripts/docker-compose) resolves
    them, with no profile: (exit status, JSON or stderr)."""
    cli_path = subprocess.run([str(REPO / "scripts" / "docker-compose")], capture_output=True,
                              timeout=1800)
    assert cli_path.returncode == 0, describe(cli_path)
    args = [a for f in files for a in ("-f", str(f))]
    # .env's values and env's, whatever the shell says.
    shell = {k: v for k, v in clean_env().items()
             if k not in dotenv() and k != "KAFKA_BOOTSTRAP"}
    proc = subprocess.run([cli_path.stdout.decode().strip(), *args, "config", "--format", "json"],
                          capture_output=True, timeout=120, cwd=REPO,
                          env={**shell, **env, "COMPOSE_PROFILES": ""})
    if proc.returncode != 0:
        return proc.returncode, proc.stderr.decode(errors="replace")
    return 0, json.loads(proc.stdout)


def test_the_override_changes_only_network_broker_and_port():
    # The override is valid Compose (!reset and all), and keeps every
    # service as the file has it but for the host's network, the broker's
    # address and serve's port: a change to the file reaches podman too.
    base_file = REPO / "docker-compose.yml"
    env = {"KAFKA_BOOTSTRAP": "127.0.0.1:19092", "SERVE_PORT": "18050"}
    rc, base = compose_config(env, base_file)
    assert rc == 0, base
    rc, over = compose_config(env, base_file, OVERRIDE)
    assert rc == 0, over
    assert set(over["services"]) == {"gen", "process", "archive", "serve"}
    changed = {"command", "network_mode", "networks", "ports", "healthcheck", "environment",
               "scale", "tmpfs"}
    for name, svc in over["services"].items():
        was = base["services"][name]
        assert svc["network_mode"] == "host", name
        want = [a.replace("kafka://kafka:9092/", "kafka://127.0.0.1:19092/")
                for a in was["command"]]
        if name == "serve":
            want[want.index("--port") + 1] = "18050"
        assert svc["command"] == want, name
        for key in set(svc) | set(was):
            if key not in changed:
                assert svc.get(key) == was.get(key), (name, key)
    serve = over["services"]["serve"]
    assert "ports" not in serve and "healthcheck" not in serve  # the image's check
    assert serve["environment"]["SHOPSTREAM_PORT"] == "18050"
    assert "SHOPSTREAM_AUTH_TOKEN" in serve["environment"]
    process = over["services"]["process"]
    assert process["scale"] == process["deploy"]["replicas"] == int(dotenv()["PROCESS_REPLICAS"])
    # Without the broker's address the file says what is missing.
    rc, err = compose_config({"SERVE_PORT": "18050"}, base_file, OVERRIDE)
    assert rc != 0 and "required variable KAFKA_BOOTSTRAP is missing a value: the broker's " \
                       "HOST:PORT (scripts/kafka start prints it)" in err, err


ASSIGNED = re.compile(r"^(\S+) .*partition (\d+) of topic '([^']+)' assigned; "
                      r"(?:reading from its start|resuming at offset (\d+))$", re.M)
HANDED = re.compile(r"partition (\d+) of topic '([^']+)' (assigned|revoked)")


def holdings(log, topic):
    """The partitions of topic that an engine holds at the end of its log."""
    held = set()
    for m in HANDED.finditer(log):
        if m[2] == topic:
            (held.add if m[3] == "assigned" else held.discard)(int(m[1]))
    return held


def log_time(stamp):
    """A time of `podman logs -t` (RFC 3339 with up to 9 digits of the
    second's fraction, trailing zeros dropped) as a sortable tuple."""
    day, _, frac = stamp.rstrip("Z").partition(".")
    return day, frac.ljust(9, "0")


def shares(logs, topic, ends):
    """How many records of topic each engine read, from the assignments in
    their logs (`podman logs -t`, one clock): an engine reads a partition
    from the offset it was given up to where the next engine given it
    resumes (the position the store holds), the last one to its end.
    Asserts that no partition's position went back."""
    events = sorted((log_time(m[1]), engine, int(m[2]), int(m[4] or 0))
                    for engine, log in logs.items() for m in ASSIGNED.finditer(log)
                    if m[3] == topic)
    read = dict.fromkeys(logs, 0)
    holder = {}
    for _, engine, p, offset in events:
        if p in holder:
            last, start = holder[p]
            assert offset >= start, f"partition {p}: {engine} resumed at {offset}, " \
                                    f"before {last}'s start at {start}"
            read[last] += offset - start
        holder[p] = engine, offset
    assert sorted(holder) == list(range(len(ends))), f"partitions never assigned: {holder}"
    for p, (engine, start) in holder.items():
        read[engine] += ends[p] - start
    return read


def end_offsets(address, topic, partitions):
    args = ["kcat", "-Q", "-b", address]
    for p in range(partitions):
        args += ["-t", f"{topic}:{p}:-1"]
    proc = subprocess.run(args, capture_output=True, timeout=60)
    assert proc.returncode == 0, describe(proc)
    return {int(p): int(o) for p, o in
            re.findall(r"\[(\d+)\] offset (\d+)", proc.stdout.decode())}


def metric(port, name):
    status, _, body = request(port, "GET", "/metrics")
    if status != 200:
        return None
    m = re.search(rf"^{name} (\d+)$", body.decode(), re.M)
    return int(m[1]) if m else None


class Stack:
    """The Compose file's services under scripts/podman compose, as project
    `name`, with the layer `extra` over the file and its podman override."""

    def __init__(self, env, name, extra):
        self.env, self.name, self.extra = env, name, extra

    def compose(self, *args, timeout=600):
        proc = subprocess.run([str(PODMAN_SCRIPT), "compose", "-f", str(self.extra),
                               "-p", self.name, *args], capture_output=True, timeout=timeout,
                              env=self.env)
        assert proc.returncode == 0, f"podman-compose {' '.join(args)}\n{describe(proc)}"
        return proc

    def containers(self):
        out = podman(self.env, "ps", "-a", "--filter",
                     f"label=io.podman.compose.project={self.name}", "--format", "{{.Names}}")
        return sorted(out.stdout.decode().split())

    def state(self, container):
        out = podman(self.env, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}",
                     container).stdout.decode().split()
        return out[0], int(out[1])

    def logs(self, container):
        proc = podman(self.env, "logs", container)
        return (proc.stdout + proc.stderr).decode(errors="replace")

    def down(self):
        """down -v; returns the names of the volumes the containers had
        (none anonymous: gen's /data is a tmpfs)."""
        volumes = set()
        for c in self.containers():
            out = podman(self.env, "inspect", "--format", "{{range .Mounts}}{{.Name}} {{end}}", c,
                         check=False)
            volumes.update(out.stdout.decode().split())
        self.compose("down", "-v")
        return volumes


def wait_for(what, cond, timeout, stack=None):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            states = {c: stack.state(c) for c in stack.containers()} if stack else {}
            pytest.fail(f"no {what} within {timeout} s; containers: {states}")
        time.sleep(0.5)


def test_compose_services_end_with_the_seeds_kpis(podman_env, image, kafka, tmp_path):
    env_file = dotenv()
    partitions = int(env_file["PARTITIONS"])
    replicas = int(env_file["PROCESS_REPLICAS"])
    assert replicas == 2 and partitions >= replicas
    topic, port = f"orders-{os.getpid()}", free_port()
    assert image == f"shopstream:{env_file['SHOPSTREAM_VERSION']}"

    # The same stream on the host: gen of the file's seed and rate for the
    # count, processed from a file.
    seed, rate = env_file["GEN_SEED"], env_file["GEN_RATE"]
    raw = assert_ok(cli("gen", "--seed", seed, "--rate", rate, "--count", STACK_COUNT, "--max",
                        "--start", START)).stdout
    records = raw.count(b"\n")
    (tmp_path / "events.jsonl").write_bytes(raw)
    ref = tmp_path / "ref"
    assert_ok(cli("process", "--from", tmp_path / "events.jsonl", "--data", ref))

    extra = tmp_path / "compose.test.yml"
    extra.write_text(f"""\
# The stream of a fixed count and start, written once (gen exits when done).
services:
  gen:
    restart: "no"
    environment:
      SHOPSTREAM_COUNT: "{STACK_COUNT}"
      SHOPSTREAM_MAX: "1"
      SHOPSTREAM_START: "{START}"
""")
    # The variables of .env, whatever the shell says, but for where the
    # broker is and where serve listens.
    env = {**podman_env, **env_file, "KAFKA_BOOTSTRAP": kafka, "TOPIC": topic,
           "SERVE_PORT": str(port)}
    env.pop("COMPOSE_PROFILES")
    stack = Stack(env, f"{PREFIX}{os.getpid()}", extra)
    name = stack.name
    t0 = time.monotonic()
    try:
        # gen first: the topic then exists with its partitions when the
        # engines start, and they join the group together.
        stack.compose("up", "-d", "--no-deps", "gen")
        wait_for("end of gen", lambda: stack.state(f"{name}_gen_1")[0] == "exited", 120, stack)
        gen_log = stack.logs(f"{name}_gen_1")
        assert stack.state(f"{name}_gen_1")[1] == 0, gen_log[-3000:]
        assert f"{records} messages delivered to topic '{topic}' ({partitions} partitions) at " \
               f"{kafka}" in gen_log, gen_log[-3000:]
        ends = end_offsets(kafka, topic, partitions)
        assert sum(ends.values()) == records and len(ends) == partitions, ends

        stack.compose("up", "-d", "process", "archive", "serve")
        engines = [f"{name}_process_{i}" for i in range(1, replicas + 1)]
        assert stack.containers() == sorted([f"{name}_gen_1", f"{name}_archive_1",
                                             f"{name}_serve_1", *engines])
        wait_healthz(port, 60)
        wait_for("every record in the store",
                 lambda: metric(port, "shopstream_events_in_total") == records, 300, stack)
        took = time.monotonic() - t0

        # The engines are one consumer group: the partitions end split
        # between them. (Which of them read how much depends on when each
        # joined: the first one in may read the whole stream before the
        # group is rebalanced.)
        def split():
            held = [holdings(stack.logs(e), topic) for e in engines]
            return all(held) and sorted(p for h in held for p in h) == list(range(partitions))
        wait_for("split of the partitions between the engines", split, 120, stack)
        logs = {e: podman(env, "logs", "-t", e).stderr.decode(errors="replace") for e in engines}
        read = shares(logs, topic, ends)

        # The store, read with `shopstream sql` in the serve container:
        # the host's KPI values (the final flags differ with two engines),
        # facts, dimensions and counters (all but the watermark).
        def sql(q):
            return podman(env, "exec", f"{name}_serve_1", "shopstream", "sql", "--format",
                          "csv", q).stdout
        for q in (f"SELECT {KPI_COLUMNS} FROM kpi_minute ORDER BY 1, 2, 3",
                  "SELECT key, value FROM engine_state WHERE key != 'watermark' ORDER BY key",
                  *FACT_QUERIES):
            got, want = sql(q), host_sql(ref, q)
            assert got == want, f"{q}\nthe stack:\n{got[:2000]!r}\nthe host:\n{want[:2000]!r}"
        assert sql("SELECT value FROM engine_state WHERE key = 'duplicates'").split()[1] == b"0"

        # serve's API over the stack's store, as a host serve over the host's.
        answers = api_answers(port)
        host, host_port = start_server(ref)
        try:
            assert answers == api_answers(host_port)
        finally:
            stop_server(host)
        assert answers[f"/api/totals?{RANGE}"]["totals"]["orders"] == STACK_COUNT

        # The health checks of the file (the store answers SQL; /healthz;
        # the archiver's status), run by hand: podman 4.3 schedules them
        # through systemd, which this machine does not run.
        for c in (*engines, f"{name}_archive_1", f"{name}_serve_1"):
            health = podman(env, "healthcheck", "run", c, check=False)
            assert health.returncode == 0, f"{c}: health check failed\n{describe(health)}"

        stack.compose("stop")
        for c in stack.containers():
            state = stack.state(c)
            assert state == ("exited", 0), f"{c} ended {state}:\n{stack.logs(c)[-3000:]}"
        print(f"{records} records on {partitions} partitions: gen, {replicas} engines, archive "
              f"and serve in {took:.1f} s; records read by each engine: {read}")
    finally:
        mounted = stack.down()
    assert mounted == {f"{name}_data"}
    assert stack.containers() == []
    volumes = podman(podman_env, "volume", "ls", "--format", "{{.Name}}").stdout.decode().split()
    assert not mounted & set(volumes), f"left after down: {mounted & set(volumes)}"

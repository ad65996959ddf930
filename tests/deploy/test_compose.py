"""docker-compose.yml and .env: `docker compose config` of the Compose CLI
built from its Go module (scripts/docker-compose) accepts the file in each
profile set and reports a dependency on an undefined service; the service
graph holds together (every depends_on target is defined, waits for its
health and has a health check, no cycle), host ports do not clash, volumes
are named, the engines form one consumer group of PROCESS_REPLICAS, and
every shopstream command line of the file, health checks included, is
accepted by the binary's option parser. The Spark job and the Airflow
services (profiles spark and airflow) run over the same volume, mount the
repository's spark/ and airflow/dags read-only, and share what they must
(the DAGs' threshold, the versions of scripts/spark and scripts/airflow);
the Airflow image's Dockerfile passes hadolint and installs the libraries
of the shopstream image's runtime stage."""
import json
import os
import re
import shutil
import subprocess

import pytest

from harness import BIN, REPO, clean_env, describe, start_server, stop_server

COMPOSE_SCRIPT = REPO / "scripts" / "docker-compose"
# Each set of profiles a user runs: Kafka in one of its two modes, with or
# without the MongoDB engine and the HDFS engine, the Spark job and Airflow.
PROFILE_SETS = ("kraft", "zookeeper", "kraft,mongo", "zookeeper,mongo", "kraft,hdfs",
                "kraft,mongo,hdfs", "kraft,hbase", "zookeeper,hbase", "kraft,spark",
                "kraft,airflow", "zookeeper,spark,airflow", "kraft,mongo,hdfs,hbase,spark,airflow")
ALL_PROFILES = "kraft,zookeeper,mongo,hdfs,hbase,spark,airflow"
AIRFLOW_SERVICES = {"airflow-db", "airflow-apiserver", "airflow-scheduler",
                    "airflow-dag-processor"}
# The repository's folders that services may mount (read-only): the jobs'
# code, not data.
BIND_MOUNTS = {"spark": "/opt/shopstream/spark", "airflow/dags": "/opt/airflow/dags"}


@pytest.fixture(scope="session")
def compose():
    """The path of the Compose CLI (built once per machine: about 2 min)."""
    proc = subprocess.run([str(COMPOSE_SCRIPT)], capture_output=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    path = proc.stdout.decode().strip()
    assert os.access(path, os.X_OK), path
    return path


def run_compose(compose, profiles, *args, cwd=REPO):
    env = {**clean_env(), "COMPOSE_PROFILES": profiles}
    env.pop("COMPOSE_FILE", None)
    env.pop("COMPOSE_PROJECT_NAME", None)
    return subprocess.run([compose, *args], capture_output=True, timeout=120, cwd=cwd, env=env)


_configs = {}


def config(compose, profiles):
    """The file as Compose resolves it for those profiles (JSON)."""
    if profiles not in _configs:
        proc = run_compose(compose, profiles, "config", "--format", "json")
        assert proc.returncode == 0, describe(proc)
        _configs[profiles] = json.loads(proc.stdout)
    return _configs[profiles]


def dotenv():
    pairs = (ln.split("=", 1) for ln in (REPO / ".env").read_text().splitlines()
             if ln.strip() and not ln.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def is_ours(service):
    return service.get("image", "").startswith("shopstream:")


def test_compose_cli_is_the_pinned_module(compose):
    text = COMPOSE_SCRIPT.read_text()
    assert "COMPOSE_MODULE=github.com/docker/compose/v5" in text
    assert "COMPOSE_VERSION=v5.6.0" in text
    proc = subprocess.run([compose, "version"], capture_output=True, timeout=60)
    assert proc.returncode == 0 and b"Docker Compose version v5.6.0" in proc.stdout, describe(proc)


@pytest.mark.parametrize("profiles", PROFILE_SETS)
def test_config_accepts_the_file(compose, profiles):
    services = set(config(compose, profiles)["services"])
    want = {"gen", "process", "archive", "serve"}
    want |= {"kafka"} if "kraft" in profiles else {"zookeeper", "kafka-zookeeper"}
    if "mongo" in profiles:
        want |= {"mongo", "process-mongo", "serve-mongo"}
    if "hdfs" in profiles:
        want |= {"namenode", "datanode", "process-hdfs", "serve-hdfs"}
    if "hbase" in profiles:
        want |= {"hbase", "process-hbase"}
    if "spark" in profiles:
        want |= {"spark"}
    if "airflow" in profiles:
        want |= AIRFLOW_SERVICES
    assert services == want


def test_the_default_profile_is_kraft(compose):
    assert dotenv()["COMPOSE_PROFILES"] == "kraft"
    env = clean_env()
    env.pop("COMPOSE_PROFILES", None)
    proc = subprocess.run([compose, "config", "--services"], capture_output=True, timeout=120,
                          cwd=REPO, env=env)
    assert proc.returncode == 0, describe(proc)
    assert "kafka" in proc.stdout.decode().split() and b"zookeeper" not in proc.stdout


def test_config_reports_an_undefined_dependency(compose, tmp_path):
    # The validation the tests rely on: the same file with a dependency on a
    # service that does not exist fails, naming it.
    shutil.copy(REPO / ".env", tmp_path / ".env")
    text = (REPO / "docker-compose.yml").read_text()
    broken = text.replace("    depends_on:\n      process:\n", "    depends_on:\n      procesz:\n",
                          1)
    assert broken != text
    (tmp_path / "docker-compose.yml").write_text(broken)
    proc = run_compose(compose, "kraft", "config", "-q", cwd=tmp_path)
    assert proc.returncode != 0
    assert b'undefined service "procesz"' in proc.stderr, describe(proc)


def test_every_dependency_is_defined_healthy_and_acyclic(compose):
    defined = config(compose, ALL_PROFILES)["services"]
    for profiles in PROFILE_SETS:
        services = config(compose, profiles)["services"]
        for name, svc in services.items():
            for dep, how in (svc.get("depends_on") or {}).items():
                assert dep in defined, f"{name} depends on undefined {dep}"
                assert how["condition"] == "service_healthy", (name, dep, how)
                hc = defined[dep].get("healthcheck") or {}
                assert hc.get("test") and not hc.get("disable"), \
                    f"{name} waits for {dep}, which has no health check"
                # A dependency that may be absent is one of the two brokers,
                # and the other one is then there.
                if not how.get("required", True):
                    assert dep in ("kafka", "kafka-zookeeper"), (name, dep)
            kafka_deps = [d for d in svc.get("depends_on") or {}
                          if d in ("kafka", "kafka-zookeeper")]
            if kafka_deps:
                assert [d for d in kafka_deps if d in services], \
                    f"{name}: no broker runs with the profiles {profiles}"
        # No cycle: a topological order exists.
        deps = {n: {d for d in (s.get("depends_on") or {}) if d in services}
                for n, s in services.items()}
        while deps:
            ready = [n for n, d in deps.items() if not d]
            assert ready, f"a dependency cycle among {sorted(deps)} ({profiles})"
            for n in ready:
                del deps[n]
            for d in deps.values():
                d.difference_update(ready)


def test_both_brokers_answer_as_kafka(compose):
    # The shopstream services name kafka:9092 whichever broker runs.
    zk = config(compose, "zookeeper")["services"]["kafka-zookeeper"]
    assert "kafka" in zk["networks"]["default"]["aliases"]
    kraft = config(compose, "kraft")["services"]["kafka"]["environment"]
    assert "PLAINTEXT://kafka:9092" in kraft["KAFKA_ADVERTISED_LISTENERS"]
    zk_env = zk["environment"]
    assert zk_env["KAFKA_ADVERTISED_LISTENERS"].startswith("PLAINTEXT://kafka:9092,")
    # ZooKeeper mode: broker.id and zookeeper.connect, and no KRaft roles
    # (their absence is what selects ZooKeeper mode in the image).
    assert zk_env["KAFKA_BROKER_ID"] == "1"
    assert zk_env["KAFKA_ZOOKEEPER_CONNECT"] == "zookeeper:2181"
    assert not any(k in zk_env for k in ("KAFKA_PROCESS_ROLES", "KAFKA_NODE_ID", "CLUSTER_ID"))
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kraft
    # The image refuses to start in KRaft mode without a cluster id.
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", kraft["CLUSTER_ID"]), kraft["CLUSTER_ID"]
    # Both brokers take the same settings of a one-broker cluster.
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_NUM_PARTITIONS",
                "KAFKA_LOG_DIRS", "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"):
        assert zk_env[key] == kraft[key], key


@pytest.mark.parametrize("profiles", PROFILE_SETS)
def test_host_ports_do_not_clash(compose, profiles):
    seen = {}
    for name, svc in config(compose, profiles)["services"].items():
        for p in svc.get("ports") or []:
            key = (p.get("host_ip", ""), p["published"], p.get("protocol", "tcp"))
            assert key not in seen, f"{name} and {seen[key]} both publish {key}"
            seen[key] = name
    env = dotenv()
    published = {k[1] for k in seen}
    assert env["SERVE_PORT"] == "8050" and "8050" in published
    assert env["KAFKA_HOST_PORT"] in published


def test_volumes_are_named_and_declared(compose):
    cfg = config(compose, ALL_PROFILES)
    declared = set(cfg["volumes"])
    used = set()
    for name, svc in cfg["services"].items():
        for v in svc.get("volumes") or []:
            if v["type"] == "bind":
                # Only the jobs' code, read-only, where the services expect it.
                rel = os.path.relpath(v["source"], REPO)
                assert BIND_MOUNTS.get(rel) == v["target"] and v.get("read_only"), (name, v)
                assert (REPO / rel).is_dir(), (name, v)
                continue
            assert v["type"] == "volume", f"{name} mounts {v}: only named volumes"
            assert v["source"] in declared, (name, v)
            used.add(v["source"])
    assert used == declared
    # The shopstream services share one store, and so do the Spark job and
    # the Airflow services that run tasks.
    for name, svc in cfg["services"].items():
        if (is_ours(svc) and name != "gen") or name in ("spark", "airflow-scheduler"):
            assert {"type": "volume", "source": "data", "target": "/data", "volume": {}} \
                in svc["volumes"], name


def test_engines_are_one_group_of_the_generators_topic(compose):
    env = dotenv()
    services = config(compose, "kraft")["services"]
    gen, proc = services["gen"]["command"], services["process"]["command"]
    topic = gen[gen.index("--out") + 1]
    assert topic == f"kafka://kafka:9092/{env['TOPIC']}"
    assert proc[proc.index("--from") + 1] == topic
    assert proc[proc.index("--group") + 1] == env["GROUP"]
    replicas = services["process"]["deploy"]["replicas"]
    assert replicas == int(env["PROCESS_REPLICAS"]) >= 2
    assert replicas <= int(env["PARTITIONS"]) == int(gen[gen.index("--partitions") + 1])
    mongo = config(compose, "kraft,mongo")["services"]["process-mongo"]["command"]
    assert mongo[mongo.index("--from") + 1] == topic
    assert mongo[mongo.index("--group") + 1] != env["GROUP"]


def command_lines(compose):
    """Every shopstream command line of the file: each shopstream service's
    command and each health check that runs the binary."""
    lines = {}
    for profiles in PROFILE_SETS:
        for name, svc in config(compose, profiles)["services"].items():
            # The options that the service's environment sets (SHOPSTREAM_*
            # variables) go through the parser too.
            env = {k: v for k, v in (svc.get("environment") or {}).items() if v is not None}
            if is_ours(svc):
                assert svc.get("entrypoint") is None, f"{name} replaces the image's entrypoint"
                lines[f"{name}: command"] = (svc["command"], env)
            test = (svc.get("healthcheck") or {}).get("test") or []
            if test[:2] == ["CMD", "shopstream"]:
                lines[f"{name}: health check"] = (test[2:], env)
    return lines


def test_every_shopstream_command_line_is_accepted_by_the_parser(compose, tmp_path):
    lines = command_lines(compose)
    assert len(lines) >= 7, sorted(lines)
    for what, (args, env) in sorted(lines.items()):
        # The parser checks every option and value before --help prints.
        proc = subprocess.run([BIN, *args, "--help"], capture_output=True, timeout=60,
                              env=clean_env(env))
        assert proc.returncode == 0, f"{what}: shopstream {' '.join(args)}\n{describe(proc)}"
        assert proc.stdout.startswith(f"Usage: shopstream {args[0]} ".encode()), what
        for a in args:
            if a.startswith("kafka://"):
                assert re.fullmatch(r"kafka://[a-z][a-z0-9-]*:[0-9]+/[A-Za-z0-9._-]+", a), a


def test_the_parser_check_rejects_a_bad_line():
    # What the check above would report: a value the parser refuses, on the
    # command line or in the environment.
    proc = subprocess.run([BIN, "gen", "--rate", "fast", "--help"], capture_output=True,
                          timeout=60, env=clean_env())
    assert proc.returncode == 2 and b"--rate" in proc.stderr, describe(proc)
    proc = subprocess.run([BIN, "serve", "--help"], capture_output=True, timeout=60,
                          env=clean_env({"SHOPSTREAM_AUTH_TOKEN": ""}))
    assert proc.returncode == 2 and b"SHOPSTREAM_AUTH_TOKEN" in proc.stderr, describe(proc)


def test_the_token_reaches_serve_only_when_set(compose):
    serve = config(compose, "kraft")["services"]["serve"]
    assert serve["environment"] == {"SHOPSTREAM_AUTH_TOKEN": None}
    proc = subprocess.run([compose, "config", "--format", "json"], capture_output=True,
                          timeout=120, cwd=REPO,
                          env={**clean_env(), "SHOPSTREAM_AUTH_TOKEN": "s3cret"})
    assert proc.returncode == 0, describe(proc)
    env = json.loads(proc.stdout)["services"]["serve"]["environment"]
    assert env == {"SHOPSTREAM_AUTH_TOKEN": "s3cret"}


def test_the_images_command_and_serves_health_check_agree_with_the_dockerfile(compose):
    text = (REPO / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.M).group(1))
    proc = subprocess.run([BIN, *cmd, "--help"], capture_output=True, timeout=60,
                          env=clean_env())
    assert proc.returncode == 0, describe(proc)
    serve = config(compose, "kraft")["services"]["serve"]
    assert serve["ports"][0]["target"] == 8050
    check = serve["healthcheck"]["test"][-1]
    assert "/dev/tcp/127.0.0.1/8050" in check and "GET /healthz" in check
    assert "GET /healthz" in text


def test_serves_health_check_passes_on_serve_and_fails_without_it(compose, tmp_path):
    test = config(compose, "kraft")["services"]["serve"]["healthcheck"]["test"]
    assert test[0] == "CMD" and "/127.0.0.1/8050 " in test[-1]
    proc, port = start_server(tmp_path / "data")
    check = [*test[1:-1], test[-1].replace("/127.0.0.1/8050 ", f"/127.0.0.1/{port} ")]
    try:
        ok = subprocess.run(check, capture_output=True, timeout=30, env=clean_env())
        assert ok.returncode == 0, describe(ok)
    finally:
        stop_server(proc)
    assert subprocess.run(check, capture_output=True, timeout=30, env=clean_env()).returncode != 0


def test_versions_of_env_are_the_projects():
    env = dotenv()
    kafka = re.search(r"^KAFKA_VERSION=(\S+)$", (REPO / "scripts" / "kafka").read_text(), re.M)
    assert env["KAFKA_VERSION"] == kafka.group(1), "the stack's Kafka is the tests' Kafka"
    project = re.search(r"project\(shopstream VERSION (\S+)", (REPO / "CMakeLists.txt").read_text())
    assert env["SHOPSTREAM_VERSION"] == project.group(1)
    assert env["DEBIAN_IMAGE"] == "debian:bookworm"
    assert env["DEBIAN_SLIM_IMAGE"] == "debian:bookworm-slim"
    spark = re.search(r"^SPARK_VERSION=(\S+)$", (REPO / "scripts" / "spark").read_text(), re.M)
    assert env["SPARK_VERSION"] == spark.group(1), "the stack's Spark is the tests' Spark"
    airflow = re.search(r"^AIRFLOW_VERSION=(\S+)$", (REPO / "scripts" / "airflow").read_text(),
                        re.M)
    assert env["AIRFLOW_VERSION"] == airflow.group(1), "the stack's Airflow is the tests' Airflow"


def test_the_spark_job_runs_the_analytics_over_the_volume(compose):
    spark = config(compose, "kraft,spark")["services"]["spark"]
    assert spark["image"] == f"apache/spark:{dotenv()['SPARK_VERSION']}"
    assert spark["depends_on"] == {"archive": {"condition": "service_healthy",
                                               "required": True}}, spark["depends_on"]
    assert spark["restart"] == "no" and spark["user"] == "10001:10001"
    script = spark["command"][-1]
    assert spark["command"][:2] == ["bash", "-c"]
    assert "/opt/spark/bin/spark-submit /opt/shopstream/spark/analytics.py --cold /data/cold " \
        "--from $$day --to $$day --out /data/reports/$$day" in script, script
    assert spark["environment"]["SPARK_CONF_DIR"] == "/opt/shopstream/spark/conf"
    assert (REPO / "spark" / "conf" / "spark-defaults.conf").is_file()
    # The script's day: ANALYTICS_DAY, else yesterday (as Compose hands it to
    # bash, $$ being one $).
    shell = script.replace("$$", "$").replace("exec /opt/spark/bin/spark-submit", "echo")
    for day, want in (("2026-11-02", "2026-11-02"), ("", None)):
        proc = subprocess.run(["bash", "-c", shell], capture_output=True, timeout=30,
                              env={**clean_env(), "ANALYTICS_DAY": day})
        assert proc.returncode == 0, describe(proc)
        got = proc.stdout.decode().split()
        assert got[got.index("--from") + 1] == got[got.index("--to") + 1]
        assert want is None or got[got.index("--from") + 1] == want, got
        assert re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", got[got.index("--from") + 1]), got


def test_airflow_runs_the_dags_over_the_volume(compose):
    env = dotenv()
    services = config(compose, "kraft,airflow")["services"]
    assert AIRFLOW_SERVICES <= set(services)
    runners = [s for s in AIRFLOW_SERVICES if s != "airflow-db"]
    images = {services[s]["image"] for s in runners}
    assert images == {f"shopstream-airflow:{env['SHOPSTREAM_VERSION']}"}, images
    for name in runners:
        svc = services[name]
        build = svc["build"]
        assert build["context"] == str(REPO / "deploy" / "airflow")
        assert build["args"]["AIRFLOW_IMAGE"] == f"apache/airflow:{env['AIRFLOW_VERSION']}"
        assert build["args"]["PYSPARK_VERSION"] == env["SPARK_VERSION"]
        # The shopstream image is built first and gives the binary.
        assert build["additional_contexts"] == {"shopstream": "service:serve"}
        e = svc["environment"]
        assert e["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert e["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@airflow-db/airflow")
        assert e["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == \
            "http://airflow-apiserver:8080/execution/"
        assert e["AIRFLOW__API_AUTH__JWT_SECRET"] == env["AIRFLOW_JWT_SECRET"]
        # The DAGs archive at the threshold of the stack's archiver.
        assert e["AIRFLOW_VAR_SHOPSTREAM_HOT_MAX_MB"] == env["HOT_MAX_MB"]
        targets = {v["target"] for v in svc["volumes"]}
        assert {"/data", "/opt/airflow/dags", "/opt/shopstream/spark"} <= targets, name
        assert svc["command"] == [{"airflow-apiserver": "api-server",
                                   "airflow-scheduler": "scheduler",
                                   "airflow-dag-processor": "dag-processor"}[name]]
    api = services["airflow-apiserver"]
    assert api["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert api["ports"][0]["target"] == 8080 and api["ports"][0]["published"] == \
        env["AIRFLOW_PORT"]
    assert services["airflow-scheduler"]["depends_on"]["process"]["condition"] == \
        "service_healthy"
    # The DAGs' defaults outside a checkout are this image's layout.
    common = (REPO / "airflow" / "dags" / "shopstream_common.py").read_text()
    for want in ('"bin": "shopstream"', '"data": "/data"',
                 '"analytics": "/opt/shopstream/spark/analytics.py"'):
        assert want in common, want


def linted(dockerfile):
    """The text of a Dockerfile in which hadolint finds nothing."""
    proc = subprocess.run([str(REPO / "scripts" / "hadolint"), str(dockerfile)],
                          capture_output=True, timeout=600)
    assert proc.returncode == 0, describe(proc)
    return dockerfile.read_text()


def test_the_airflow_image_has_what_the_dags_run():
    text = linted(REPO / "deploy" / "airflow" / "Dockerfile")

    def packages(t):
        return set(re.findall(r"\b(lib[a-z0-9.+-]+|zlib1g)\b",
                              re.search(r"apt-get install[^&]*", t.split("FROM")[-1]).group(0)))
    main = packages((REPO / "Dockerfile").read_text())
    assert main and main <= packages(text), main - packages(text)
    assert re.search(r"install[^&]*\bkcat\b", text) and "default-jre-headless" in text
    assert "COPY --from=shopstream-image /usr/local/bin/shopstream /usr/local/bin/shopstream" \
        in text
    assert re.search(r"^ARG SHOPSTREAM_IMAGE=shopstream$", text, re.M)
    assert '"pyspark==${PYSPARK_VERSION}"' in text


def test_the_hbase_engine_writes_its_kpis_to_the_hbase_service(compose):
    services = config(compose, "kraft,hbase")["services"]
    hbase, proc = services["hbase"], services["process-hbase"]
    sink = proc["command"][proc["command"].index("--kpi-sink") + 1]
    assert sink == "hbase+http://hbase:8080/kpis"
    # The engine waits for HBase, whose health check makes that very table.
    assert proc["depends_on"]["hbase"]["condition"] == "service_healthy"
    assert hbase["healthcheck"]["test"] == \
        ["CMD", "shopstream", "hbase-create", "hbase+http://127.0.0.1:8080/kpis"]
    assert proc["command"][proc["command"].index("--group") + 1] != dotenv()["GROUP"]
    assert {"type": "volume", "source": "hbase-data", "target": "/hbase", "volume": {}} \
        in hbase["volumes"]
    assert [p["target"] for p in hbase["ports"]] == [8080]
    assert hbase["build"]["dockerfile"] == "deploy/hbase/Dockerfile"
    assert "hbase" not in config(compose, "kraft")["services"]


def test_the_hbase_image_runs_scripts_hbase():
    text = linted(REPO / "deploy" / "hbase" / "Dockerfile")
    assert re.search(r"^ARG SHOPSTREAM_IMAGE=shopstream$", text, re.M)
    assert "COPY scripts/hbase /opt/shopstream/scripts/hbase" in text
    assert re.search(r"^RUN /opt/shopstream/scripts/hbase fetch", text, re.M)
    assert 'ENTRYPOINT ["/opt/shopstream/scripts/hbase", "run", "--dir", "/hbase"]' in text
    assert "SHOPSTREAM_HBASE_REST_HOST=0.0.0.0" in text
    assert "SHOPSTREAM_HBASE_REST_PORT=8080" in text
    # What the script needs besides bash: Java and Maven, python3 and bc.
    assert re.search(r"install[^&]*openjdk-17-jre-headless maven python3 bc", text)

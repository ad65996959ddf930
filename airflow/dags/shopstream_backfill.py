"""shopstream_backfill: replays a JSON Lines file, or a range of offsets of one
partition of a Kafka topic, into a store, exactly once. Manual runs only:

    airflow dags trigger shopstream_backfill --conf '{"source": "/srv/orders.jsonl"}'
    airflow dags trigger shopstream_backfill --conf '{"source":
        "kafka://broker:9092/orders", "partition": 2, "start_offset": 1000,
        "end_offset": 5000, "data": "/srv/replay"}'

    stage ──> replay

- stage: a file is replayed as it is (an absolute path on the worker). A
  Kafka range is cut into a file first with kcat, since `shopstream process`
  reads a topic only as a member of a consumer group from the positions its
  store committed, and has no option for a range of offsets: the messages of
  offsets start_offset .. end_offset - 1 (end_offset empty: up to the
  partition's end when the run starts), one a line, as
  DATA/backfill/TOPIC-pPARTITION-oSTART-END.jsonl. The range must be whole
  in the partition (no offset gone to retention), else the task fails
  naming what is missing. A range already cut is not read again: its file
  is what the replay counts.
- replay: `shopstream process --from FILE` into the store. Running it twice
  changes nothing: the store keeps the position reached in each file (by
  its path) in the transaction of the data read before it, so a run
  resumes there, and the engine drops every event it already holds, hot or
  archived, by its event_id; a copy of a file under another name is such a
  replay. The task logs the engine's counters of the run (stored,
  duplicates, rejected, late) and returns them.

Events behind the store's watermark that it does not hold are late: the
engine records them in late_events and counts them in no KPI (its windows
have closed). So a replay fills a new store, or extends a store with what
comes after its data; to replay several partitions of one period, give
each a store of its own, or one file with their events merged by time.
The store must not be written by another engine while the replay runs: a
file's events are the store's shard 0, which the replay claims.

Parameters (Airflow Params): source (a file or kafka://HOST:PORT/TOPIC),
partition, start_offset, end_offset, and data, hot and cold, the store
(default: the Variables shopstream_data, shopstream_hot, shopstream_cold).
Settings (Airflow Variables, or AIRFLOW_VAR_SHOPSTREAM_* environment
variables; defaults in shopstream_common.py): shopstream_bin,
shopstream_hot_max_mb (the archiver's threshold while the replay runs),
shopstream_kcat.
"""
import datetime
import json
import os
import re

from airflow.sdk import DAG, Param, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from shopstream_common import log, number, run, setting, shopstream, store

KAFKA_URI = re.compile(r"kafka://([^/]+)/([A-Za-z0-9._-]+)")
COUNTERS = ("events_in", "stored", "duplicates", "rejected", "late")


def target(params):
    """The store's options (--data, --hot, --cold) of the run's parameters: a
    data directory given as a parameter takes its hot and cold stores from
    the parameters too (else those under it), not from the Variables."""
    if params.get("data"):
        return store(params["data"], params.get("hot") or "", params.get("cold") or "")
    return store(None, params.get("hot") or None, params.get("cold") or None)


def cut_range(uri, params, data):
    """The file of a Kafka range, cut with kcat (once); returns its path."""
    m = KAFKA_URI.fullmatch(uri)
    if not m:
        raise AirflowFailException(f"source {uri!r}: a Kafka source is kafka://HOST:PORT/TOPIC")
    brokers, topic = m.groups()
    part, start, end = params["partition"], params["start_offset"], params["end_offset"]
    if end is not None and end <= start:
        raise AirflowFailException(f"end_offset {end} is not after start_offset {start}")
    kcat = setting("kcat")
    folder = os.path.join(data, "backfill")
    if end is not None:
        path = os.path.join(folder, f"{topic}-p{part}-o{start}-{end}.jsonl")
        if os.path.exists(path):
            log.info("%s is cut already: replaying it", path)
            return path

    # The partition must exist: kcat would wait for it otherwise.
    meta = run([kcat, "-L", "-J", "-m", "30", "-b", brokers, "-t", topic],
               f"kcat -L (the metadata of {topic} at {brokers})", quiet=True)
    topics = json.loads(meta.stdout).get("topics") or [{}]
    if topics[0].get("error"):
        raise AirflowFailException(f"topic {topic} at {brokers}: {topics[0]['error']}")
    partitions = sorted(p["partition"] for p in topics[0].get("partitions", []))
    if part not in partitions:
        raise AirflowFailException(f"topic {topic} at {brokers} has no partition {part} "
                                   f"(partitions {partitions})")

    args = [kcat, "-C", "-q", "-e", "-b", brokers, "-t", topic, "-p", str(part),
            "-o", str(start), "-f", "%o %s\\n"]
    if end is not None:
        args += ["-c", str(end - start)]
    proc = run(args, f"kcat -C ({topic} partition {part} from offset {start})", quiet=True,
               raw=True)
    offsets, lines = [], []
    for line in proc.stdout.split(b"\n")[:-1]:
        head, _, value = line.partition(b" ")
        if not head.isdigit():
            raise AirflowFailException(
                f"a message after offset {offsets[-1] if offsets else start} holds a line break: "
                "it cannot be replayed as a line of JSON Lines")
        offsets.append(int(head))
        lines.append(value)
    if not offsets:
        raise AirflowFailException(f"{topic} partition {part} has no message at or after "
                                   f"offset {start}")
    last = offsets[-1] + 1 if end is None else end
    if offsets[0] != start or offsets != list(range(start, last)):
        raise AirflowFailException(
            f"{topic} partition {part}: offsets {start} .. {last - 1} wanted, kcat read "
            f"{len(offsets)} messages of offsets {offsets[0]} .. {offsets[-1]} (a range gone "
            "to retention, or past the partition's end)")
    path = os.path.join(folder, f"{topic}-p{part}-o{start}-{last}.jsonl")
    if os.path.exists(path):
        log.info("%s is cut already: replaying it", path)
        return path
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.writelines(v + b"\n" for v in lines)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
    log.info("cut %d messages (offsets %d .. %d) into %s", len(lines), start, last - 1, path)
    return path


def counters(args):
    """The engine's counters (engine_state) of a store; zeros for a store
    that does not exist yet."""
    proc = shopstream("sql", *args, "--format", "json", "SELECT key, value FROM engine_state",
                      quiet=True, check=False)
    if proc.returncode == 2 and "no hot store" in proc.stderr:
        return dict.fromkeys(COUNTERS, 0)
    if proc.returncode != 0:
        raise AirflowException(f"shopstream sql failed (exit {proc.returncode}): "
                               f"{proc.stderr.strip()}")
    state = {r["key"]: r["value"] for r in json.loads(proc.stdout or "[]")}
    return {k: state.get(k) or 0 for k in COUNTERS}


with DAG(
    dag_id="shopstream_backfill",
    description="Manual: replay a file or a Kafka offset range into a store, exactly once",
    doc_md=__doc__,
    schedule=None,
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    # Two replays into one store would claim its shard 0 from each other.
    max_active_runs=1,
    default_args={"retries": 0, "execution_timeout": datetime.timedelta(hours=6)},
    params={
        "source": Param("", type="string", minLength=1,
                        description="A JSON Lines file (absolute path on the worker) or "
                                    "kafka://HOST:PORT/TOPIC"),
        "partition": Param(0, type="integer", minimum=0,
                           description="Kafka: the partition of the range"),
        "start_offset": Param(0, type="integer", minimum=0,
                              description="Kafka: the first offset of the range"),
        "end_offset": Param(None, type=["null", "integer"], minimum=1,
                            description="Kafka: the offset after the range's last (empty: "
                                        "the partition's end when the run starts)"),
        "data": Param("", type="string",
                      description="The store's data directory (default: Variable "
                                  "shopstream_data)"),
        "hot": Param("", type="string", description="The hot store's URI (default: --data's)"),
        "cold": Param("", type="string", description="The cold store's URI (default: --data's)"),
    },
    tags=["shopstream"],
) as dag:

    @task
    def stage(params=None):
        """The file to replay: the source, or the Kafka range cut into a file."""
        source = params["source"]
        data = params.get("data") or setting("data")
        if source.startswith("kafka://"):
            return cut_range(source, params, data)
        if "://" in source:
            raise AirflowFailException(f"source {source!r}: a file path or "
                                       "kafka://HOST:PORT/TOPIC")
        path = source.removeprefix("file:")
        if not os.path.isabs(path):
            raise AirflowFailException(f"source {source!r}: give the file's absolute path")
        if not os.path.isfile(path):
            raise AirflowFailException(f"source {path}: no such file on this worker")
        return path

    @task
    def replay(path, params=None):
        """`shopstream process --from FILE` into the store; returns the
        engine's counters of this run."""
        args = target(params)
        before = counters(args)
        shopstream("process", "--from", path, *args, "--hot-max-mb",
                   f"{number('hot_max_mb'):g}", what=f"shopstream process --from {path}")
        after = counters(args)
        delta = {k: after[k] - before[k] for k in COUNTERS}
        log.info("replayed %s: %s", path, delta)
        if delta["late"]:
            log.warning("%d events of %s were behind the store's watermark and not in it: "
                        "recorded in late_events, counted in no KPI", delta["late"], path)
        return delta

    replay(stage())

"""Running Airflow (scripts/airflow) from the tests of the DAGs.

The `airflow` fixture gives one Airflow home for the test session: a
temporary AIRFLOW_HOME with its SQLite metadata database, migrated once
(`airflow db migrate`), the repository's airflow/dags as the DAG folder and
no example DAGs. The first use on a machine installs Airflow into the cache
(scripts/airflow, about 2 min). Each command gets the test's environment
without AIRFLOW_* and SHOPSTREAM_* variables, plus the DAG settings a test
passes (AIRFLOW_VAR_SHOPSTREAM_*), the binary under test always among them.
"""
import json
import os
import re
import subprocess
from dataclasses import dataclass, field

import pytest

from harness import BIN, REPO, clean_env, describe

AIRFLOW_SCRIPT = REPO / "scripts" / "airflow"
DAGS = REPO / "airflow" / "dags"


@dataclass
class DagRun:
    """What `airflow dags test` did: its process, its output (stdout and
    stderr), and the final state of each task that ran, by task id."""
    proc: subprocess.CompletedProcess
    output: str
    states: dict = field(default_factory=dict)


def task_states(output):
    """{task_id: state} from the log of `airflow dags test`: each task's
    instance id from the line that starts it, and its last state update."""
    ids = dict((ti, task) for task, ti in re.findall(
        r"\[DAG TEST\] running task <TaskInstance: [\w.-]+?\.(\w+) .*? ti_id=([0-9a-f-]+)>",
        output))
    states = {}
    for state, ti in re.findall(r"new_state=(\w+) .*?ti_id=([0-9a-f-]+)", output):
        if ti in ids:
            states[ids[ti]] = state
    return states


class Airflow:
    """scripts/airflow with an AIRFLOW_HOME of its own."""

    def __init__(self, home):
        self.home = home

    def env(self, variables=None):
        env = {k: v for k, v in clean_env().items() if not k.startswith("AIRFLOW")}
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_VAR_SHOPSTREAM_BIN": BIN,
        })
        for name, value in (variables or {}).items():
            env[f"AIRFLOW_VAR_SHOPSTREAM_{name.upper()}"] = str(value)
        return env

    def run(self, *args, variables=None, timeout=900):
        return subprocess.run([str(AIRFLOW_SCRIPT), *map(str, args)], capture_output=True,
                              timeout=timeout, env=self.env(variables))

    def dags_test(self, dag, date, variables=None, conf=None, timeout=900):
        """`airflow dags test DAG DATE [--conf JSON]` with the DAG settings
        variables ({name: value} for the Variables shopstream_<name>)."""
        args = ["dags", "test", dag, date]
        if conf is not None:
            args += ["--conf", json.dumps(conf)]
        proc = self.run(*args, variables=variables, timeout=timeout)
        output = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
        return DagRun(proc, output, task_states(output))


@pytest.fixture(scope="session")
def airflow(tmp_path_factory):
    """An Airflow home with a migrated metadata database, for the session."""
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"shopstream binary not found at {BIN}; build it or set SHOPSTREAM_BIN")
    af = Airflow(tmp_path_factory.mktemp("airflow-home"))
    # The first run on a machine installs Airflow into the cache.
    proc = af.run("db", "migrate", timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"scripts/airflow db migrate failed:\n{describe(proc)[-4000:]}")
    return af


def explain(run):
    """The end of a run's output, for an assertion's message."""
    return f"exit {run.proc.returncode}, tasks {run.states}\n{run.output[-6000:]}"

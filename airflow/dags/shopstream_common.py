"""What the shopstream DAGs share: their settings and running the binary.

Every setting is an Airflow Variable named shopstream_<name>. Airflow reads a
Variable from the environment variable AIRFLOW_VAR_SHOPSTREAM_<NAME> first,
then from its metadata database (`airflow variables set shopstream_data
/srv/data`), and the DAGs read them when a task runs, not when the file is
parsed. Without either, a DAG folder inside a checkout of shopstream
(airflow/dags beside scripts/ and build/) uses that checkout, and any other
(the Compose stack's image) the image's layout:

  name             default in a checkout          elsewhere
  bin              build/shopstream               shopstream (on PATH)
  data             data (as `make run`)           /data
  hot              (empty: sqlite DATA/hot.db)
  cold             (empty: DATA/cold)
  hot_max_mb       300                            the threshold of `archive --once`
                                                  and of the quality check
  max_rejected_pct 1.0                            rejected share of the input, in %
  quality_hours    0                              closed hours the quality check
                                                  reads: the last N, 0 for all
  spark_submit     scripts/spark submit           spark-submit
  analytics        spark/analytics.py             /opt/shopstream/spark/analytics.py
  reports          (empty: DATA/reports)          where shopstream_daily writes
  kcat             kcat                           for shopstream_backfill's Kafka ranges

This file holds no DAG (.airflowignore keeps the DAG processor out of it);
the DAG files import it from the DAG folder, which Airflow puts on sys.path.
"""
import logging
import os
import shlex
import subprocess
from pathlib import Path

from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowException

log = logging.getLogger("shopstream")

# A checkout: this file is CHECKOUT/airflow/dags/shopstream_common.py.
CHECKOUT = Path(__file__).resolve().parents[2]
IN_CHECKOUT = (CHECKOUT / "scripts" / "spark").is_file() and (CHECKOUT / "src").is_dir()

if IN_CHECKOUT:
    DEFAULTS = {
        "bin": str(CHECKOUT / "build" / "shopstream"),
        "data": str(CHECKOUT / "data"),
        "spark_submit": shlex.join([str(CHECKOUT / "scripts" / "spark"), "submit"]),
        "analytics": str(CHECKOUT / "spark" / "analytics.py"),
    }
else:
    DEFAULTS = {
        "bin": "shopstream",
        "data": "/data",
        "spark_submit": "spark-submit",
        "analytics": "/opt/shopstream/spark/analytics.py",
    }
DEFAULTS.update({
    "hot": "",
    "cold": "",
    "hot_max_mb": "300",
    "max_rejected_pct": "1.0",
    "quality_hours": "0",
    "reports": "",
    "kcat": "kcat",
})


def setting(name):
    """The setting name: Variable shopstream_<name>, else its default."""
    value = Variable.get(f"shopstream_{name}", default=DEFAULTS[name])
    return str(value).strip()


def number(name, kind=float):
    """A numeric setting; a value that is not one is an error naming it."""
    text = setting(name)
    try:
        return kind(text)
    except ValueError:
        raise AirflowException(f"Variable shopstream_{name} is {text!r}, not a number; set "
                               f"AIRFLOW_VAR_SHOPSTREAM_{name.upper()} or `airflow variables "
                               f"set shopstream_{name} N`") from None


def store(data=None, hot=None, cold=None):
    """The options that name the stores: --data, and --hot and --cold when
    set (else the binary's defaults under --data)."""
    data = data or setting("data")
    hot = setting("hot") if hot is None else hot
    cold = setting("cold") if cold is None else cold
    args = ["--data", data]
    if hot:
        args += ["--hot", hot]
    if cold:
        args += ["--cold", cold]
    return args


def cold_uri(data=None):
    """The cold store's URI: the setting, or DATA/cold."""
    return setting("cold") or os.path.join(data or setting("data"), "cold")


def run(args, what, check=True, quiet=False, raw=False):
    """Runs a command, logs its output (its standard error only when quiet)
    and returns the CompletedProcess, its output as text (bytes with raw).
    With check, an exit code other than 0 raises AirflowException naming
    what failed, the exit code and the end of its standard error."""
    # A multi-line argument (an SQL query) is logged on one line.
    log.info("running: %s", shlex.join(" ".join(a.split()) if "\n" in a else a for a in args))
    try:
        proc = subprocess.run(args, capture_output=True)
    except FileNotFoundError:
        raise AirflowException(f"{what}: {args[0]!r} not found; set the Variable that names it "
                               "(shopstream_bin, shopstream_spark_submit or shopstream_kcat; "
                               "see shopstream_common.py)") from None
    proc.stderr = proc.stderr.decode(errors="replace")
    if not raw:
        proc.stdout = proc.stdout.decode(errors="replace")
    if proc.stdout.strip() and not quiet:
        log.info("stdout of %s:\n%s", what, proc.stdout.rstrip())
    if proc.stderr.strip():
        log.info("stderr of %s:\n%s", what, proc.stderr.rstrip())
    if check and proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise AirflowException(f"{what} failed (exit {proc.returncode}): {tail}")
    return proc


def shopstream(*args, what=None, check=True, quiet=False):
    """Runs the shopstream binary of the setting bin with args."""
    args = [str(a) for a in args]
    return run([setting("bin"), *args], what or f"shopstream {args[0]}", check=check,
               quiet=quiet)

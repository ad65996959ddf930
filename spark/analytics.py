"""Star-schema analytics over shopstream's cold store, with Spark SQL.

    spark-submit spark/analytics.py --cold PATH|hdfs://HOST:PORT/PATH|webhdfs://HOST:PORT/PATH
                                    --from DAY --to DAY [--out DIR] [--format csv|parquet]

(scripts/spark submit runs spark-submit with the settings of spark/conf.)

Reads the archived facts (orders, payments, cancellations) as the archiver
wrote them, with no conversion step: JSON Lines in Hive-style partitions
COLD/<table>/dt=YYYY-MM-DD/hour=HH/, which Spark discovers as the columns dt
(a date) and hour (an integer), so that the range --from..--to (UTC days, both
included) prunes whole partitions before any file is opened. The dimensions
come from the snapshots each archive writes beside its facts
(COLD/dims/<table>/, docs/lifecycle.md); a key's row is that of the newest
archive that holds it. Only files of archives with a manifest in
COLD/_archives count, so a half-written or rolled-back archive is never read.

Money is read as DECIMAL(12,2) from the two-decimal JSON numbers, so sums are
exact to the cent; rates, shares and averages are rounded half up in integer
arithmetic, as the same queries in docs/queries.md (sections 19 to 24) round
them in SQLite: both give the same rows, digit for digit.

Writes each result to DIR/<name>/ (one CSV file with a header, or Parquet)
and a short text report to stdout and DIR/report.txt.
"""

import argparse
import datetime
import json
import os
import re
import sys
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (DecimalType, DoubleType, IntegerType, LongType, StringType, StructField,
                               StructType)

MONEY = DecimalType(12, 2)

# The columns of the cold layout (docs/lifecycle.md, docs/data-dictionary.md).
FACTS = {
    "orders": StructType([
        StructField("event_id", StringType()), StructField("order_id", StringType()),
        StructField("ts", StringType()), StructField("customer_id", StringType()),
        StructField("customer_segment", StringType()), StructField("product_id", StringType()),
        StructField("product_name", StringType()), StructField("category", StringType()),
        StructField("city", StringType()), StructField("country", StringType()),
        StructField("quantity", LongType()), StructField("unit_price", MONEY),
        StructField("amount", MONEY), StructField("discount", MONEY), StructField("tax", MONEY),
        StructField("shipping", MONEY), StructField("total_price", MONEY),
        StructField("currency", StringType()), StructField("payment_method", StringType())]),
    "payments": StructType([
        StructField("event_id", StringType()), StructField("order_id", StringType()),
        StructField("ts", StringType()), StructField("payment_method", StringType()),
        StructField("amount", MONEY), StructField("status", StringType()),
        StructField("failure_reason", StringType()), StructField("attempt", LongType()),
        StructField("city", StringType()), StructField("country", StringType()),
        StructField("category", StringType())]),
    "cancellations": StructType([
        StructField("event_id", StringType()), StructField("order_id", StringType()),
        StructField("ts", StringType()), StructField("reason", StringType()),
        StructField("refund", MONEY), StructField("city", StringType()),
        StructField("country", StringType()), StructField("category", StringType()),
        StructField("payment_method", StringType())]),
}

# The dimension snapshots: columns, the first being the key.
DIMS = {
    "customers": [("customer_id", StringType()), ("customer_segment", StringType()),
                  ("city", StringType()), ("country", StringType()),
                  ("first_seen", StringType())],
    "products": [("product_id", StringType()), ("product_name", StringType()),
                 ("category", StringType()), ("unit_price", MONEY)],
    "categories": [("category", StringType())],
    "countries": [("country", StringType()), ("country_code", StringType()),
                  ("region", StringType())],
    "cities": [("city", StringType()), ("country", StringType()), ("lat", DoubleType()),
               ("lon", DoubleType())],
    "payment_methods": [("payment_method", StringType())],
    "time_minutes": [("minute_start", StringType()), ("date", StringType()),
                     ("hour", IntegerType()), ("minute", IntegerType()),
                     ("weekday", IntegerType()), ("weekday_name", StringType())],
}

# Part files only: never a writer's temporary file (NAME.tmp-write.PID).
PARTS = "part-*.{jsonl,jsonl.gz}"
ARCHIVE_OF = r"part-([0-9]{8}T[0-9]{9}Z-[0-9a-f]{8})\.jsonl"



def half_up(num, den, times):
    """times * num / den of integers, rounded half up to hundredths in integer
    arithmetic, as a DECIMAL(20, 2): a percentage with times 10000, euros
    from cents with times 1."""
    return (f"CAST(CAST((2 * {times} * {num} + {den}) DIV (2 * {den}) AS DECIMAL(20, 0)) / 100"
            " AS DECIMAL(20, 2))")


FAILED = "sum(CASE WHEN p.status = 'failed' THEN 1 ELSE 0 END)"

# The six analytics: Spark SQL over the views orders, payments, cancellations
# (already cut to the range) and the dimension views. docs/queries.md has
# each in SQLite's dialect (sections 19 to 24); ORDER BY gives a total order.
ANALYTICS = {
    # 19. Daily revenue by country and category.
    "daily_revenue": """
        SELECT substr(o.ts, 1, 10) AS day, co.region, o.country, p.category,
               count(*) AS orders, sum(o.total_price) AS revenue
        FROM orders o
        JOIN products p ON p.product_id = o.product_id
        JOIN countries co ON co.country = o.country
        GROUP BY substr(o.ts, 1, 10), co.region, o.country, p.category
        ORDER BY day, o.country, p.category""",
    # 20. The top products by revenue, among those ordered at least 5 times.
    "top_products": """
        SELECT p.product_id, p.product_name, p.category, count(*) AS orders,
               sum(o.quantity) AS units, sum(o.total_price) AS revenue
        FROM orders o
        JOIN products p ON p.product_id = o.product_id
        GROUP BY p.product_id, p.product_name, p.category
        HAVING count(*) >= 5
        ORDER BY revenue DESC, p.product_id
        LIMIT 20""",
    # 21. Payment failure rate by method.
    "payment_failure_rate": f"""
        SELECT m.payment_method, count(*) AS attempts,
               {FAILED} AS failed,
               {half_up(FAILED, "count(*)", 10000)} AS failure_rate_pct
        FROM payments p
        JOIN payment_methods m ON m.payment_method = p.payment_method
        GROUP BY m.payment_method
        ORDER BY failure_rate_pct DESC, m.payment_method""",
    # 22. Cancellation rate by reason and city: cancellations for a reason
    # per order placed in the city.
    "cancellation_rate": f"""
        SELECT c.city, ci.country, c.reason, count(*) AS cancellations, o.orders,
               {half_up("count(*)", "o.orders", 10000)} AS cancellation_rate_pct
        FROM cancellations c
        JOIN cities ci ON ci.city = c.city
        JOIN (SELECT city, count(*) AS orders FROM orders GROUP BY city) o ON o.city = c.city
        GROUP BY c.city, ci.country, c.reason, o.orders
        ORDER BY c.city, c.reason""",
    # 23. Average order value by customer segment.
    "aov_by_segment": f"""
        SELECT cu.customer_segment, count(*) AS orders,
               count(DISTINCT o.customer_id) AS customers, sum(o.total_price) AS revenue,
               {half_up("sum(CAST(o.total_price * 100 AS BIGINT))", "count(*)", 1)} AS aov
        FROM orders o
        JOIN customers cu ON cu.customer_id = o.customer_id
        GROUP BY cu.customer_segment
        ORDER BY cu.customer_segment""",
    # 24. Repeat-customer share: customers with more than one order, by
    # segment and in all.
    "repeat_customers": f"""
        SELECT segment, customers, repeat_customers,
               {half_up("repeat_customers", "customers", 10000)} AS repeat_share_pct
        FROM (SELECT cu.customer_segment AS segment, count(*) AS customers,
                     sum(CASE WHEN x.n > 1 THEN 1 ELSE 0 END) AS repeat_customers
              FROM (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id) x
              JOIN customers cu ON cu.customer_id = x.customer_id
              GROUP BY cu.customer_segment
              UNION ALL
              SELECT 'all', count(*), sum(CASE WHEN n > 1 THEN 1 ELSE 0 END)
              FROM (SELECT customer_id, count(*) AS n FROM orders GROUP BY customer_id))
        ORDER BY CASE WHEN segment = 'all' THEN 1 ELSE 0 END, segment""",
}


def namenode_rpc(host_port):
    """The RPC address (HOST:PORT) of the NameNode whose HTTP address is
    host_port, from its configuration servlet (/conf)."""
    url = f"http://{host_port}/conf?name=dfs.namenode.rpc-address"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            conf = ET.fromstring(r.read())
    except (OSError, ET.ParseError) as e:
        raise SystemExit(f"analytics: cannot ask the NameNode at {host_port} for its RPC "
                         f"address ({e}); give --cold hdfs://HOST:RPC_PORT/PATH")
    value = conf.findtext("property/value")
    if not value:
        raise SystemExit(f"analytics: the NameNode at {host_port} names no "
                         "dfs.namenode.rpc-address; give --cold hdfs://HOST:RPC_PORT/PATH")
    host, port = value.rsplit(":", 1)
    if host in ("0.0.0.0", ""):
        host = host_port.rsplit(":", 1)[0]
    return f"{host}:{port}"


def hadoop_uri(cold):
    """The cold store's location for Hadoop's file systems: a path, file:PATH,
    hdfs://HOST:RPC_PORT/PATH, or shopstream's own webhdfs://HOST:HTTP_PORT/PATH
    (its ?user= and other options are shopstream's), which is read over the
    NameNode's RPC port: the WebHDFS client of the Hadoop jars that pyspark
    ships lacks a class it needs (a shaded Jersey runtime)."""
    if cold.startswith("swebhdfs://"):
        raise SystemExit("analytics: swebhdfs:// is not supported; give "
                         "hdfs://HOST:RPC_PORT/PATH or webhdfs://HOST:HTTP_PORT/PATH")
    if "://" in cold:
        u = urllib.parse.urlsplit(cold)
        scheme, netloc = u.scheme, u.netloc
        if scheme == "webhdfs":
            scheme, netloc = "hdfs", namenode_rpc(netloc)
        return urllib.parse.urlunsplit((scheme, netloc, u.path.rstrip("/") or "/", "", ""))
    if cold.startswith("file:"):
        cold = cold[5:]
    return "file://" + os.path.abspath(cold)


def day(text):
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day YYYY-MM-DD")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="analytics.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--cold", required=True,
                   help="the cold store: a directory, hdfs://HOST:PORT/PATH or webhdfs://...")
    p.add_argument("--from", dest="day_from", required=True, type=day,
                   help="first UTC day, YYYY-MM-DD")
    p.add_argument("--to", dest="day_to", required=True, type=day,
                   help="last UTC day (included), YYYY-MM-DD")
    p.add_argument("--out", help="write each result and report.txt to this directory")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv",
                   help="of the results under --out (default csv)")
    a = p.parse_args(argv)
    if a.day_to < a.day_from:
        p.error(f"--to {a.day_to} is before --from {a.day_from}")
    return a


def manifests(spark, root):
    """{archive_id: manifest} of every archive with a manifest in _archives."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    path = jvm.org.apache.hadoop.fs.Path(root + "/_archives")
    fs = path.getFileSystem(conf)
    out = {}
    if not fs.exists(path):
        return out
    for st in fs.listStatus(path):
        name = st.getPath().getName()
        m = re.fullmatch(r"([0-9]{8}T[0-9]{9}Z-[0-9a-f]{8})\.json", name)
        if not m:
            continue
        stream = fs.open(st.getPath())
        try:
            data = bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
        finally:
            stream.close()
        out[m.group(1)] = json.loads(data)
    return out


def read_facts(spark, root, table, ids, day_from, day_to):
    """A fact table's rows of the archives ids with dt in [day_from, day_to]:
    the filter on the partition column dt prunes the partitions."""
    df = (spark.read.schema(FACTS[table]).option("pathGlobFilter", PARTS)
          .option("basePath", f"{root}/{table}").json(f"{root}/{table}"))
    df = df.where(F.col("dt").between(F.lit(day_from), F.lit(day_to)))
    return df.where(F.regexp_extract(F.col("_metadata.file_path"), ARCHIVE_OF, 1).isin(ids))


def read_dim(spark, root, table, ids):
    """A dimension from the archives' snapshots: per key, the newest archive's row."""
    cols = DIMS[table]
    schema = StructType([StructField(n, t) for n, t in cols])
    df = (spark.read.schema(schema).option("pathGlobFilter", PARTS)
          .json(f"{root}/dims/{table}"))
    df = df.withColumn("_archive", F.regexp_extract(F.col("_metadata.file_path"), ARCHIVE_OF, 1))
    df = df.where(F.col("_archive").isin(ids))
    newest = Window.partitionBy(cols[0][0]).orderBy(F.col("_archive").desc())
    return (df.withColumn("_n", F.row_number().over(newest)).where("_n = 1")
            .drop("_n", "_archive"))


def empty(spark, schema):
    return spark.createDataFrame([], schema)


def register(spark, root, a, log=print):
    """Registers the views the analytics read; returns what the report says
    about the input (files listed and in range, rows per table)."""
    ms = manifests(spark, root)
    ids = sorted(ms)
    info = {"archives": len(ids), "tables": {}}
    lo, hi = a.day_from.isoformat(), a.day_to.isoformat()
    for table in FACTS:
        files = [f for m in ms.values() for f in m["tables"][table]["files"]]
        in_range = [f for f in files if lo <= re.search(r"dt=([0-9-]{10})", f["path"]).group(1)
                    <= hi]
        hours = {re.search(r"dt=([0-9-]{10})/hour=([0-9]{2})", f["path"]).groups()
                 for f in in_range}
        if files:
            df = read_facts(spark, root, table, ids, a.day_from, a.day_to)
        else:
            df = empty(spark, FACTS[table])
        # Each analytic reads the range again: keep it after the first read.
        df.cache().createOrReplaceTempView(table)
        info["tables"][table] = {"files": len(files), "in_range": len(in_range),
                                 "partitions": len(hours)}
    for table, cols in DIMS.items():
        have = any(m.get("dims", {}).get(table, {}).get("files") for m in ms.values())
        if have:
            df = read_dim(spark, root, table, ids)
        else:
            df = empty(spark, StructType([StructField(n, t) for n, t in cols]))
        df.cache().createOrReplaceTempView(table)
    return info


def run(spark, argv, log=print, session_seconds=None):
    """Runs the analytics; returns {name: [Row, ...]} and writes --out.
    session_seconds, when given, is reported as the SparkSession's start."""
    a = parse_args(argv)
    root = hadoop_uri(a.cold)
    t0 = time.monotonic()
    info = register(spark, root, a)
    results, frames = {}, {}
    for name, text in ANALYTICS.items():
        frames[name] = spark.sql(text)
        results[name] = frames[name].collect()
    seconds = time.monotonic() - t0
    for table in FACTS:
        info["tables"][table]["rows"] = spark.table(table).count()

    lines = [f"shopstream analytics over {a.cold}: {a.day_from} .. {a.day_to} (UTC days)",
             f"{info['archives']} archives with a manifest"]
    for table, t in info["tables"].items():
        lines.append(f"  {table}: {t['rows']} rows from {t['in_range']} of {t['files']} part "
                     f"files ({t['partitions']} dt/hour partitions in range)")
    for name, rows in results.items():
        cols = frames[name].columns
        lines.append("")
        lines.append(f"{name}: {len(rows)} rows")
        lines.append("  " + " | ".join(cols))
        for r in rows[:5]:
            lines.append("  " + " | ".join("" if v is None else str(v) for v in r))
        if len(rows) > 5:
            lines.append(f"  ... {len(rows) - 5} more")
    lines.append("")
    if session_seconds is not None:
        lines.append(f"SparkSession started in {session_seconds:.1f} s")
    lines.append(f"computed in {seconds:.1f} s")
    report = "\n".join(lines) + "\n"
    log(report, end="")

    if a.out:
        out = a.out if "://" in a.out else os.path.abspath(a.out)
        for name, df in frames.items():
            w = df.coalesce(1).write.mode("overwrite")
            if a.format == "csv":
                w.option("header", True).csv(f"{out}/{name}")
            else:
                w.parquet(f"{out}/{name}")
        if "://" not in out:
            with open(os.path.join(out, "report.txt"), "w") as f:
                f.write(report)
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parse_args(argv)  # a usage error before a session is started
    t0 = time.monotonic()
    # spark-submit gives this process's stderr to its stdout: the start-up
    # time goes into the report, not onto stderr.
    spark = SparkSession.builder.appName("shopstream-analytics").getOrCreate()
    try:
        run(spark, argv, session_seconds=time.monotonic() - t0)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()

"""The minute KPIs of shopstream's engine, computed by Spark Structured Streaming
from the same Kafka topic: the baseline that bench/spark measures against.

    spark-submit spark/streaming_baseline.py --from kafka://HOST:PORT/TOPIC --out DIR
                                             (--trigger 10s | --availableNow)
                                             [--format parquet|json|csv] [--checkpoint DIR]

(scripts/spark submit runs spark-submit with the Kafka connector's jars.)

The job reads the topic from its beginning, parses the JSON events that
`shopstream gen --out kafka://...` writes with an explicit schema (money as
DECIMAL(12,2), exact), and computes over one-minute event-time windows, with a
watermark of 2 minutes (the engine's --lateness), the KPIs that kpi_minute
holds (docs/data-dictionary.md, "KPIs"):

- overall (DIR/overall/): straight from the events;
- by city (DIR/city/): a payment or cancellation counts under its order's
  city, as the engine attributes it, so every event is joined with its order
  event (a stream-stream left outer join on order_id, the order at most
  --attribution-hours before the event; "unknown" when none is found).

Both are written in append mode to a file sink, one row per window and value
once the watermark has passed the window: minute_start (ISO-8601 text, as
kpi_minute's), dimension, dimension_value, orders, units, gross_revenue,
paid_revenue, aov, payment_attempts, failed_payments, cancellations,
cancelled_revenue. A window by city becomes final only once the watermark has
also passed the attribution bound (an order's follow-ups may come that much
later), so the newest windows are written only after that much event time
more.

--trigger 10s runs a micro-batch every 10 seconds until stopped (SIGINT or
SIGTERM, or --timeout); --availableNow reads the topic to its end as fast as
it can and stops. On exit a summary line goes to stdout:
`baseline: {"events": N, "seconds": S, "session_seconds": T, ...}`, S being the
time from the queries' start to their end (the SparkSession's start is T,
apart).

What the engine does beyond this baseline: validation and rejection of bad
records, deduplication by event_id, late events kept, exactly-once positions
and a queryable store. The generator's idempotent producer writes no
duplicates, so both count the same events.
"""

import argparse
import json
import re
import signal
import sys
import threading
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DecimalType, LongType, StringType, StructField, StructType

MONEY = DecimalType(12, 2)
WATERMARK = "2 minutes"
WINDOW = "1 minute"

# Every field of the three event types (docs/data-dictionary.md); a type
# leaves the others null.
EVENT = StructType([StructField(n, t) for n, t in [
    ("type", StringType()), ("event_id", StringType()), ("order_id", StringType()),
    ("ts", StringType()), ("customer_id", StringType()), ("customer_segment", StringType()),
    ("product_id", StringType()), ("product_name", StringType()), ("category", StringType()),
    ("city", StringType()), ("country", StringType()), ("quantity", LongType()),
    ("unit_price", MONEY), ("amount", MONEY), ("discount", MONEY), ("tax", MONEY),
    ("shipping", MONEY), ("total_price", MONEY), ("currency", StringType()),
    ("payment_method", StringType()), ("status", StringType()),
    ("failure_reason", StringType()), ("attempt", LongType()), ("reason", StringType()),
    ("refund", MONEY)]])

KPI_COLUMNS = ("orders", "units", "gross_revenue", "paid_revenue", "aov", "payment_attempts",
               "failed_payments", "cancellations", "cancelled_revenue")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="streaming_baseline.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--from", dest="source", required=True,
                   help="the topic, as shopstream names it: kafka://HOST:PORT[,HOST:PORT]/TOPIC")
    p.add_argument("--out", required=True, help="the file sink's directory")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--trigger", help="a micro-batch every INTERVAL (10s, 500ms, 1min)")
    mode.add_argument("--availableNow", action="store_true",
                      help="read the topic to its end, then stop")
    p.add_argument("--format", choices=("parquet", "json", "csv"), default="parquet")
    p.add_argument("--checkpoint", help="the queries' checkpoints (default OUT/_checkpoints)")
    p.add_argument("--attribution-hours", type=float, default=49.0,
                   help="how long after its order a payment or cancellation may come (the "
                   "profile's cancellations.delay_max_hours, 48, and the payment retries)")
    p.add_argument("--max-offsets", type=int,
                   help="maxOffsetsPerTrigger: at most this many records per micro-batch")
    p.add_argument("--timeout", type=float, help="with --trigger: stop after this many seconds")
    a = p.parse_args(argv)
    m = re.fullmatch(r"kafka://([^/]+)/([^/?]+)", a.source)
    if not m:
        p.error(f"--from {a.source!r}: give kafka://HOST:PORT/TOPIC")
    a.bootstrap, a.topic = m.groups()
    if a.trigger:
        t = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|min)", a.trigger)
        if not t:
            p.error(f"--trigger {a.trigger!r}: give an interval such as 10s, 500ms or 1min")
        a.interval = f"{t.group(1)} {dict(ms='milliseconds', s='seconds', min='minutes')[t.group(2)]}"
    a.checkpoint = a.checkpoint or f"{a.out.rstrip('/')}/_checkpoints"
    return a


def events(spark, a):
    """The topic's events, parsed, with their event time."""
    reader = (spark.readStream.format("kafka").option("kafka.bootstrap.servers", a.bootstrap)
              .option("subscribe", a.topic).option("startingOffsets", "earliest")
              .option("failOnDataLoss", "true"))
    if a.max_offsets:
        reader = reader.option("maxOffsetsPerTrigger", a.max_offsets)
    raw = reader.load()
    ev = raw.select(F.from_json(F.col("value").cast("string"), EVENT).alias("e")).select("e.*")
    return ev.withColumn("event_time", F.to_timestamp("ts", "yyyy-MM-dd'T'HH:mm:ss.SSSX"))


def contributions(ev):
    """Each event's share of its minute's KPIs."""
    zero = F.lit(0).cast(LongType())
    none = F.lit(0).cast(MONEY)
    order = F.col("type") == "order"
    payment = F.col("type") == "payment"
    cancel = F.col("type") == "cancellation"
    return [
        F.when(order, 1).otherwise(zero).alias("orders"),
        F.when(order, F.col("quantity")).otherwise(zero).alias("units"),
        F.when(order, F.col("total_price")).otherwise(none).alias("gross"),
        F.when(payment & (F.col("status") == "success"), F.col("amount")).otherwise(none)
        .alias("paid"),
        F.when(payment, 1).otherwise(zero).alias("attempts"),
        F.when(payment & (F.col("status") == "failed"), 1).otherwise(zero).alias("failed"),
        F.when(cancel, 1).otherwise(zero).alias("cancellations"),
        F.when(cancel, F.col("refund")).otherwise(none).alias("cancelled"),
    ]


def minute_kpis(rows, value):
    """The KPIs per one-minute window of event_time and dimension value."""
    agg = rows.groupBy(F.window("event_time", WINDOW).alias("w"), value.alias("dimension_value"))
    k = agg.agg(F.sum("orders").alias("orders"), F.sum("units").alias("units"),
                F.sum("gross").alias("gross_revenue"), F.sum("paid").alias("paid_revenue"),
                F.sum("attempts").alias("payment_attempts"),
                F.sum("failed").alias("failed_payments"),
                F.sum("cancellations").alias("cancellations"),
                F.sum("cancelled").alias("cancelled_revenue"))
    # aov as kpi_minute's: gross cents per order, rounded half up to the cent.
    aov = F.expr("CASE WHEN orders > 0 THEN CAST(CAST((2 * CAST(gross_revenue * 100 AS BIGINT)"
                 " + orders) DIV (2 * orders) AS DECIMAL(20, 0)) / 100 AS DECIMAL(12, 2)) END")
    return k.select(
        F.date_format(F.col("w.start"), "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").alias("minute_start"),
        "dimension_value", *[aov.alias("aov") if c == "aov" else F.col(c) for c in KPI_COLUMNS])


def overall(ev):
    rows = ev.withWatermark("event_time", WATERMARK).select("event_time", *contributions(ev))
    k = minute_kpis(rows, F.lit("all"))
    return k.select("minute_start", F.lit("overall").alias("dimension"), "dimension_value",
                    *KPI_COLUMNS)


def by_city(ev, hours):
    """Every event with its order's city: the order event itself, for an order."""
    orders = (ev.where(F.col("type") == "order")
              .select(F.col("order_id").alias("o_order_id"), F.col("event_time").alias("o_time"),
                      F.col("city").alias("o_city"))
              .withWatermark("o_time", WATERMARK))
    left = ev.withWatermark("event_time", WATERMARK)
    cond = F.expr(f"order_id = o_order_id AND event_time >= o_time AND "
                  f"event_time <= o_time + INTERVAL {int(hours * 3600)} SECONDS")
    joined = left.join(orders, cond, "leftOuter")
    rows = joined.select("event_time", F.coalesce("o_city", F.lit("unknown")).alias("city"),
                         *contributions(joined))
    k = minute_kpis(rows, F.col("city"))
    return k.select("minute_start", F.lit("city").alias("dimension"), "dimension_value",
                    *KPI_COLUMNS)


def start(frame, a, name):
    w = (frame.writeStream.format(a.format).outputMode("append")
         .option("path", f"{a.out.rstrip('/')}/{name}")
         .option("checkpointLocation", f"{a.checkpoint.rstrip('/')}/{name}")
         .queryName(f"kpi_{name}"))
    if a.format == "csv":
        w = w.option("header", True)
    w = w.trigger(availableNow=True) if a.availableNow else w.trigger(processingTime=a.interval)
    return w.start()


def run(spark, argv, log=print, stop=None):
    """Runs both queries until the topic's end (--availableNow), or until stop
    (a threading.Event) is set or --timeout passes; returns the summary."""
    a = parse_args(argv)
    # Every micro-batch's progress is kept, to count the records read.
    spark.conf.set("spark.sql.streaming.numRecentProgressUpdates", "1000000")
    ev = events(spark, a)
    t0 = time.monotonic()
    queries = [start(overall(ev), a, "overall"), start(by_city(ev, a.attribution_hours), a, "city")]
    stop = stop or threading.Event()
    deadline = t0 + a.timeout if a.timeout else None
    try:
        while any(q.isActive for q in queries):
            for q in queries:
                if q.exception():
                    raise q.exception()
            if stop.is_set() or (deadline and time.monotonic() > deadline):
                break
            time.sleep(0.2)
    finally:
        for q in queries:
            if q.isActive:
                q.stop()
    seconds = time.monotonic() - t0
    for q in queries:
        if q.exception():
            raise q.exception()
    # Rows read: the overall query reads each record once per micro-batch.
    read = sum(int(p.get("numInputRows", 0)) for p in queries[0].recentProgress)
    summary = {"events": read, "seconds": round(seconds, 3),
               "batches": len(queries[0].recentProgress),
               "mode": "availableNow" if a.availableNow else f"trigger {a.trigger}"}
    # The rows the sink holds (its committed files only, per _spark_metadata).
    rows = {}
    for name in ("overall", "city"):
        try:
            rows[name] = spark.read.format(a.format).load(f"{a.out.rstrip('/')}/{name}").count()
        except Exception:  # nothing written yet
            rows[name] = 0
    summary["rows"] = rows
    return summary


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parse_args(argv)  # a usage error before a session is started
    t0 = time.monotonic()
    spark = SparkSession.builder.appName("shopstream-streaming-baseline").getOrCreate()
    session = time.monotonic() - t0
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        summary = run(spark, argv, stop=stop)
        summary["session_seconds"] = round(session, 3)
        print("baseline: " + json.dumps(summary), flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    main()

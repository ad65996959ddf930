-- Hot store schema (SQLite). Money is stored as integer cents in *_cents
-- columns; the views that analysts query present it in currency units.
-- Times are UTC ISO-8601 text with milliseconds, which sorts chronologically
-- (fact blocks keep them as integer milliseconds).
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;

-- Facts are kept in blocks (src/hot/block.h): each row of a *_blocks table
-- holds up to 4096 events of one table, sorted by time, column by column,
-- and its time range. orders_data, payments_data and cancellations_data
-- are virtual tables over them (module ss_facts, src/hot/facts_vtab.c)
-- with one row per event; a condition on ts reads only the blocks of the
-- range. Deduplication and the lookup of orders are the writer's
-- (src/hot/sqlite_facts.c). AUTOINCREMENT: an id is never used twice, so
-- a writer knows its block from one that replaced it.
CREATE TABLE IF NOT EXISTS orders_blocks (
  id INTEGER PRIMARY KEY AUTOINCREMENT, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL,
  n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS orders_blocks_min ON orders_blocks (min_ts);
CREATE INDEX IF NOT EXISTS orders_blocks_max ON orders_blocks (max_ts);
CREATE TABLE IF NOT EXISTS payments_blocks (
  id INTEGER PRIMARY KEY AUTOINCREMENT, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL,
  n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS payments_blocks_min ON payments_blocks (min_ts);
CREATE INDEX IF NOT EXISTS payments_blocks_max ON payments_blocks (max_ts);
CREATE TABLE IF NOT EXISTS cancellations_blocks (
  id INTEGER PRIMARY KEY AUTOINCREMENT, min_ts INTEGER NOT NULL, max_ts INTEGER NOT NULL,
  n INTEGER NOT NULL, data BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS cancellations_blocks_min ON cancellations_blocks (min_ts);
CREATE INDEX IF NOT EXISTS cancellations_blocks_max ON cancellations_blocks (max_ts);

-- Payments and cancellations carry the dimensions of their order as resolved
-- when they were processed ('unknown' if the order had not been seen).
CREATE VIRTUAL TABLE IF NOT EXISTS orders_data USING ss_facts(orders);
CREATE VIRTUAL TABLE IF NOT EXISTS payments_data USING ss_facts(payments);
CREATE VIRTUAL TABLE IF NOT EXISTS cancellations_data USING ss_facts(cancellations);

-- One row per window, dimension, value and shard (an input partition); the
-- kpi_minute view adds the shards up. Keyed by dimension first: every reader
-- asks for one dimension over a range of minutes, which is then contiguous
-- (with the minute first, a day of 'overall' read every city's rows too).
-- Stores before schema version 3 had the minute first; sqlite.c rebuilds them.
CREATE TABLE IF NOT EXISTS kpi_minute_data (
  minute_start TEXT NOT NULL, dimension TEXT NOT NULL, dimension_value TEXT NOT NULL,
  shard INTEGER NOT NULL,
  orders INTEGER NOT NULL, units INTEGER NOT NULL,
  gross_revenue_cents INTEGER NOT NULL, paid_revenue_cents INTEGER NOT NULL,
  payment_attempts INTEGER NOT NULL, failed_payments INTEGER NOT NULL,
  cancellations INTEGER NOT NULL, cancelled_revenue_cents INTEGER NOT NULL,
  final INTEGER NOT NULL,
  PRIMARY KEY (dimension, minute_start, dimension_value, shard)) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS customers (
  customer_id TEXT PRIMARY KEY, customer_segment TEXT NOT NULL, city TEXT NOT NULL,
  country TEXT NOT NULL, first_seen TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS products (
  product_id TEXT PRIMARY KEY, product_name TEXT NOT NULL, category TEXT NOT NULL,
  unit_price REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS categories (category TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS countries (
  country TEXT PRIMARY KEY, country_code TEXT, region TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cities (
  city TEXT PRIMARY KEY, country TEXT NOT NULL, lat REAL, lon REAL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS payment_methods (payment_method TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS order_statuses (
  status TEXT PRIMARY KEY, description TEXT NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO order_statuses VALUES
  ('created', 'ordered, no successful payment yet'),
  ('paid', 'a payment succeeded'),
  ('payment_failed', 'cancelled because no payment succeeded'),
  ('cancelled', 'cancelled after payment, refunded');
CREATE TABLE IF NOT EXISTS time_minutes (
  minute_start TEXT PRIMARY KEY, date TEXT NOT NULL, hour INTEGER NOT NULL,
  minute INTEGER NOT NULL, weekday INTEGER NOT NULL, weekday_name TEXT NOT NULL)
  WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS rejected_events (
  id TEXT PRIMARY KEY, received_at TEXT NOT NULL, source TEXT NOT NULL,
  position INTEGER NOT NULL, reason TEXT NOT NULL, raw BLOB NOT NULL,
  raw_bytes INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS late_events (
  event_id TEXT PRIMARY KEY, type TEXT NOT NULL, ts TEXT NOT NULL,
  watermark TEXT NOT NULL, received_at TEXT NOT NULL, raw TEXT NOT NULL);

-- Archive runs (docs/lifecycle.md): only committed archives count in cold data.
CREATE TABLE IF NOT EXISTS archives (
  archive_id TEXT PRIMARY KEY, state TEXT NOT NULL, cutoff TEXT NOT NULL,
  created_at TEXT NOT NULL, manifest TEXT) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS lifecycle_notes (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS ingest_positions (
  source TEXT PRIMARY KEY, position INTEGER NOT NULL) WITHOUT ROWID;
-- The engine's state per shard (an input partition; 0 for files), written in
-- the transaction of the data it describes. owner is the process that holds
-- the shard: a process whose shard another has claimed can no longer commit.
CREATE TABLE IF NOT EXISTS shard_state (
  shard INTEGER PRIMARY KEY, owner TEXT NOT NULL,
  watermark INTEGER, input_watermark INTEGER, max_ts INTEGER,
  events_in INTEGER NOT NULL DEFAULT 0, stored INTEGER NOT NULL DEFAULT 0,
  duplicates INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,
  late INTEGER NOT NULL DEFAULT 0);
-- The whole store's: counters summed over the shards; the watermark is the
-- lowest (every minute before it is final in every shard).
CREATE VIEW IF NOT EXISTS engine_state AS
  SELECT 'watermark' AS key, min(watermark) AS value FROM shard_state
    WHERE watermark IS NOT NULL HAVING count(*) > 0
  UNION ALL SELECT 'max_ts', max(max_ts) FROM shard_state
    WHERE max_ts IS NOT NULL HAVING count(*) > 0
  UNION ALL SELECT 'events_in', sum(events_in) FROM shard_state HAVING count(*) > 0
  UNION ALL SELECT 'stored', sum(stored) FROM shard_state HAVING count(*) > 0
  UNION ALL SELECT 'duplicates', sum(duplicates) FROM shard_state HAVING count(*) > 0
  UNION ALL SELECT 'rejected', sum(rejected) FROM shard_state HAVING count(*) > 0
  UNION ALL SELECT 'late', sum(late) FROM shard_state HAVING count(*) > 0;

CREATE VIEW IF NOT EXISTS orders AS SELECT
  event_id, order_id, ts, customer_id, customer_segment, product_id, product_name, category,
  city, country, quantity, unit_price_cents / 100.0 AS unit_price,
  amount_cents / 100.0 AS amount, discount_cents / 100.0 AS discount,
  tax_cents / 100.0 AS tax, shipping_cents / 100.0 AS shipping,
  total_price_cents / 100.0 AS total_price, currency, payment_method
  FROM orders_data;
CREATE VIEW IF NOT EXISTS payments AS SELECT
  event_id, order_id, ts, payment_method, amount_cents / 100.0 AS amount, status,
  failure_reason, attempt, city, country, category
  FROM payments_data;
CREATE VIEW IF NOT EXISTS cancellations AS SELECT
  event_id, order_id, ts, reason, refund_cents / 100.0 AS refund, city, country, category,
  payment_method
  FROM cancellations_data;
-- aov rounds half up to the cent in integer arithmetic.
CREATE VIEW IF NOT EXISTS kpi_minute AS SELECT
  minute_start, dimension, dimension_value,
  SUM(orders) AS orders, SUM(units) AS units,
  SUM(gross_revenue_cents) / 100.0 AS gross_revenue,
  SUM(paid_revenue_cents) / 100.0 AS paid_revenue,
  CASE WHEN SUM(orders) > 0
    THEN ((2 * SUM(gross_revenue_cents) + SUM(orders)) / (2 * SUM(orders))) / 100.0 END AS aov,
  SUM(payment_attempts) AS payment_attempts, SUM(failed_payments) AS failed_payments,
  SUM(cancellations) AS cancellations,
  SUM(cancelled_revenue_cents) / 100.0 AS cancelled_revenue,
  MIN(final) AS final
  FROM kpi_minute_data GROUP BY minute_start, dimension, dimension_value;
-- Payments and cancellations have no index on order_id: the view aggregates
-- them per order once and joins the
-- results, which SQLite indexes on the fly, instead of a correlated lookup per
-- order, which would scan the table for every order.
CREATE VIEW IF NOT EXISTS order_state AS SELECT
  o.order_id, o.ts AS ordered_at,
  CASE WHEN c.payment_failed THEN 'payment_failed'
       WHEN c.order_id IS NOT NULL THEN 'cancelled'
       WHEN p.order_id IS NOT NULL THEN 'paid'
       ELSE 'created' END AS status
  FROM orders_data o
  LEFT JOIN (SELECT order_id, max(reason = 'payment_failed') AS payment_failed
             FROM cancellations_data GROUP BY order_id) c ON c.order_id = o.order_id
  LEFT JOIN (SELECT DISTINCT order_id FROM payments_data WHERE status = 'success') p
    ON p.order_id = o.order_id;

"""Every Prometheus metric Sluice exports, declared once (closed list, unit suffixes).

Each service process registers them all; the ones it never touches stay at zero.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# --- every process ------------------------------------------------------------------------
# 1, labelled with what this process runs: package version, schema version it expects, and
# the hash of its deployment-wide configuration (equal on every consistent instance).
build_info = Gauge(
    "sluice_build_info", "Build and configuration", ["version", "schema", "config_hash"]
)
# PostgreSQL connections of this process's pools, by state (in_use, idle, max).
pg_pool_connections = Gauge("sluice_pg_pool_connections", "Pool connections", ["state"])

# --- ingest -------------------------------------------------------------------------------
# Wall time of an ingest request, by route and status.
ingest_request_seconds = Histogram(
    "sluice_ingest_request_seconds",
    "Ingest request latency",
    ["route", "status"],
    buckets=_LATENCY_BUCKETS,
)
# Records handed to the Kafka producer and not yet acknowledged (the producer's queue).
ingest_produce_inflight = Gauge("sluice_ingest_produce_inflight", "Records awaiting Kafka ack")
# Time from send() to the broker's acks=all acknowledgement.
kafka_produce_ack_seconds = Histogram(
    "sluice_kafka_produce_ack_seconds", "Produce to ack latency", buckets=_LATENCY_BUCKETS
)
# Metric points acknowledged to clients (durable in Kafka).
ingest_points_total = Counter("sluice_ingest_points_total", "Metric points acknowledged")
ingest_spans_total = Counter("sluice_ingest_spans_total", "Trace spans acknowledged")
# Requests answered 429 because Kafka or PostgreSQL did not answer within the deadline.
ingest_backpressure_total = Counter(
    "sluice_ingest_backpressure_total", "Requests refused with 429", ["reason"]
)

# --- writer -------------------------------------------------------------------------------
# Duration of one flush transaction, by stage (copy, insert, latest, offsets, commit).
writer_flush_seconds = Histogram(
    "sluice_writer_flush_seconds",
    "Writer flush stage latency",
    ["stage"],
    buckets=_LATENCY_BUCKETS,
)
# Rows copied per flush / stored (new, not duplicates) per flush.
writer_rows_total = Counter("sluice_writer_rows_total", "Metric points flushed", ["outcome"])
writer_spans_total = Counter("sluice_writer_spans_total", "Trace spans stored (upserted)")
writer_chunks_compacted_total = Counter(
    "sluice_writer_chunks_compacted_total", "Small metric chunks merged by compaction"
)
writer_compaction_due = Gauge(
    "sluice_writer_compaction_due_series", "Series with enough small chunks, not yet compacted"
)
# received_at (ingest) -> committed in PostgreSQL.
writer_end_to_end_seconds = Histogram(
    "sluice_writer_end_to_end_seconds",
    "Ingest receive to commit latency",
    buckets=_LATENCY_BUCKETS,
)
# Records between the stored offset and the partition end, per partition.
writer_lag_records = Gauge("sluice_writer_lag_records", "Writer lag", ["topic", "partition"])
# Records Kafka deleted (retention) before this writer stored them, per held partition; the
# partition is not consumed until `sluice acknowledge-gap` (writer/retention.py).
writer_retention_gap_records = Gauge(
    "sluice_writer_retention_gap_records",
    "Records lost to retention (held)",
    ["topic", "partition"],
)
# Failed commits of the stored offsets to the Kafka consumer group (best effort, for tooling).
writer_group_commit_failures_total = Counter(
    "sluice_writer_group_commit_failures_total", "Consumer group offset commits that failed"
)
# Records sent to the dead-letter topic, by reason class.
writer_dlq_total = Counter("sluice_writer_dlq_total", "Dead-lettered records", ["reason"])
# Metric rows set aside because their run was deleted or unknown when they were stored.
writer_quarantined_total = Counter(
    "sluice_writer_quarantined_total", "Metric rows quarantined", ["reason"]
)
# Flushes abandoned because another writer owns the partition now (zombie fencing).
writer_lost_ownership_total = Counter(
    "sluice_writer_lost_ownership_total", "Flushes rolled back by offset fencing"
)
# Flush attempts that failed on a PostgreSQL error and were retried.
writer_flush_retries_total = Counter("sluice_writer_flush_retries_total", "Flush retries")

# --- api ----------------------------------------------------------------------------------
# Wall time of an api request, by route and status.
api_request_seconds = Histogram(
    "sluice_api_request_seconds",
    "API request latency",
    ["route", "status"],
    buckets=_LATENCY_BUCKETS,
)
# Time reads waited for the writer to store acknowledged records (read-your-writes fence).
api_read_fence_seconds = Histogram(
    "sluice_api_read_fence_seconds", "Read fence wait", buckets=_LATENCY_BUCKETS
)
# Reads refused because the fence deadline passed.
api_read_fence_timeouts_total = Counter(
    "sluice_api_read_fence_timeouts_total", "Read fence deadline exceeded"
)

# Filesystem of a local artifact root (0 for S3 roots), read at scrape time.
api_artifact_root_free_bytes = Gauge(
    "sluice_api_artifact_root_free_bytes", "Free bytes on the artifact root's filesystem"
)
api_artifact_root_size_bytes = Gauge(
    "sluice_api_artifact_root_size_bytes", "Size of the artifact root's filesystem"
)

# Model registry webhooks (api/webhooks/): events of registry changes (outcome published: by
# the request after its commit | deferred: Kafka did not take it then, the outbox keeps it |
# relayed: published later from the outbox) ...
webhook_events_total = Counter(
    "sluice_webhook_events_total", "Webhook events published to Kafka", ["outcome"]
)
# ... the age of the oldest event still waiting in the outbox (0 when empty), per api process ...
webhook_outbox_oldest_seconds = Gauge(
    "sluice_webhook_outbox_oldest_seconds", "Age of the oldest webhook event not yet in Kafka"
)
# ... each delivery's end (delivered | given_up after max_attempts | refused: the target is
# not allowed, e.g. resolves to a private address | unreadable: a record not decodable) ...
webhook_deliveries_total = Counter(
    "sluice_webhook_deliveries_total", "Webhook deliveries by outcome", ["outcome"]
)
# ... and each POST attempt (delivered | retryable: 429/5xx/connection error | failed).
webhook_attempts_total = Counter(
    "sluice_webhook_attempts_total", "Webhook POST attempts by result", ["result"]
)

# --- supervisor ---------------------------------------------------------------------------
# Child process restarts by `sluice up`.
supervisor_restarts_total = Counter(
    "sluice_supervisor_restarts_total", "Service restarts", ["service"]
)

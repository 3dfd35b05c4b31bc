"""Prometheus metrics (prometheus-client), all prefixed effortpulse_, units in their names.

Labels never carry a customer, case or contact id. Counters and histograms are per worker
process and add up across workers of one group (each event is counted by the one worker
that applied it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

from streams.decode import Record
from streams.pipeline import BatchResult

EVENTS = Counter("effortpulse_events_processed_total", "Valid events applied to state, by type", ["type"])
INVALID = Counter("effortpulse_events_invalid_total", "Records sent to the DLQ, by reason", ["reason"])
DUPLICATES = Counter("effortpulse_events_duplicate_total", "Events skipped because their event_id was applied before")
ALERTS = Counter("effortpulse_alerts_total", "Alerts produced, by type and severity", ["type", "severity"])
BATCH = Histogram(
    "effortpulse_batch_size_records",
    "Records per batch",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
)
PROCESSING_LATENCY = Histogram(
    "effortpulse_processing_latency_seconds",
    "From a record's Kafka timestamp to its state being applied in Redis",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ALERT_LATENCY = Histogram(
    "effortpulse_alert_latency_seconds",
    "From the triggering record's Kafka timestamp to the alert being produced",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
REDIS_LATENCY = Histogram(
    "effortpulse_redis_call_seconds",
    "Duration of the batched Redis calls",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
CASE_EFFORT = Histogram(
    "effortpulse_case_effort_points",
    "Effort of the cases a batch changed, after the batch",
    buckets=(0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
)


def observe_batch(result: BatchResult, records: Sequence[Record]) -> None:
    """Count what a finished batch did."""
    now_ms = time.time() * 1000
    BATCH.observe(len(records))
    for event_type, n in result.applied.items():
        EVENTS.labels(event_type).inc(n)
    if result.duplicates:
        DUPLICATES.inc(result.duplicates)
    for dead in result.dead:
        INVALID.labels(dead.reason).inc()
    for record in records:
        if record.timestamp_ms is not None:
            PROCESSING_LATENCY.observe(max(0.0, (now_ms - record.timestamp_ms) / 1000))
    for alert in result.alerts:
        ALERTS.labels(alert.type, alert.severity).inc()
    for trigger_ms in result.alert_trigger_ms:
        ALERT_LATENCY.observe(max(0.0, (now_ms - trigger_ms) / 1000))
    for seconds in result.redis_seconds:
        REDIS_LATENCY.observe(seconds)
    for effort in result.effort:
        CASE_EFFORT.observe(effort)


def exposition() -> tuple[bytes, str]:
    """The text format body and its content type (without the charset, which aiohttp adds)."""
    content_type = "; ".join(p for p in CONTENT_TYPE_LATEST.split("; ") if not p.startswith("charset="))
    return generate_latest(), content_type

"""Prometheus metrics (prometheus-client), all prefixed effortpulse_, units in their names.

Labels never carry a customer, case or contact id. Counters and histograms are per worker
process and add up across workers of one group (each event is counted by the one worker
that applied it).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import get_args

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from schemas.alerts import AlertType, Severity
from schemas.events import EVENT_TYPES
from streams import churn
from streams.decode import REASONS, Record
from streams.pipeline import BatchResult
from streams.rules import DRIVERS

disable_created_metrics()  # no *_created series: they double the series count for nothing here

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
PHASES = Histogram(
    "effortpulse_batch_phase_seconds",
    "Time a batch spends in each phase: decode, load, apply, segments, aggregate, write, produce, outbox",
    ["phase"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
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


# --- NPS, CES and CSAT per segment (global figures from Redis, exported by one worker only)
SCORE_WINDOWS = ("7d", "28d")
NPS = Gauge("effortpulse_nps", "NPS (−100..100) over the window; NaN without answers", ["segment", "window"])
NPS_N = Gauge("effortpulse_nps_responses", "NPS answers in the window", ["segment", "window"])
NPS_MOE = Gauge(
    "effortpulse_nps_margin_of_error", "95% margin of error of the NPS (adjusted Wald)", ["segment", "window"]
)
NPS_LOW = Gauge("effortpulse_nps_ci_low", "Lower end of the NPS 95% interval", ["segment", "window"])
NPS_HIGH = Gauge("effortpulse_nps_ci_high", "Upper end of the NPS 95% interval", ["segment", "window"])
CES = Gauge("effortpulse_ces_mean", "Mean CES (1–7, 7 = easiest) over the window", ["segment", "window"])
CES_SHARE = Gauge("effortpulse_ces_easy_ratio", "Share of CES answers 5–7", ["segment", "window"])
CES_N = Gauge("effortpulse_ces_responses", "CES answers in the window", ["segment", "window"])
CSAT = Gauge("effortpulse_csat_mean", "Mean CSAT (1–5) over the window", ["segment", "window"])
CSAT_SHARE = Gauge("effortpulse_csat_satisfied_ratio", "Share of CSAT answers 4–5", ["segment", "window"])
CSAT_N = Gauge("effortpulse_csat_responses", "CSAT answers in the window", ["segment", "window"])
SCORE_GAUGES = (NPS, NPS_N, NPS_MOE, NPS_LOW, NPS_HIGH, CES, CES_SHARE, CES_N, CSAT, CSAT_SHARE, CSAT_N)


def set_scores(figures: dict[tuple[str, str], dict[str, dict[str, float | int | None]]]) -> None:
    """Replace the score gauges: (segment, window) → {"nps": /nps answer, "ces": ..., "csat": ...}."""
    for gauge in SCORE_GAUGES:
        gauge.clear()
    nan = float("nan")

    def v(x: float | int | None) -> float:
        return nan if x is None else float(x)

    for (segment, win), f in figures.items():
        n, c, s = f["nps"], f["ces"], f["csat"]
        NPS.labels(segment, win).set(v(n["nps"]))
        NPS_N.labels(segment, win).set(v(n["n"]))
        NPS_MOE.labels(segment, win).set(v(n["margin_of_error"]) if n["n"] else nan)
        NPS_LOW.labels(segment, win).set(v(n["ci_low"]) if n["n"] else nan)
        NPS_HIGH.labels(segment, win).set(v(n["ci_high"]) if n["n"] else nan)
        CES.labels(segment, win).set(v(c["mean"]))
        CES_SHARE.labels(segment, win).set(v(c["share"]))
        CES_N.labels(segment, win).set(v(c["n"]))
        CSAT.labels(segment, win).set(v(s["mean"]))
        CSAT_SHARE.labels(segment, win).set(v(s["share"]))
        CSAT_N.labels(segment, win).set(v(s["n"]))


# --- insights (7 days, per segment; exported by the same one worker as the scores)
FCR = Gauge(
    "effortpulse_fcr_ratio", "Share of resolved cases resolved in one contact, cases of the last 7 days", ["segment"]
)
REPEAT = Gauge(
    "effortpulse_repeat_contact_ratio", "Share of cases with more than one contact, last 7 days", ["segment"]
)
MEAN_EFFORT = Gauge("effortpulse_case_effort_mean_points", "Mean effort of the cases of the last 7 days", ["segment"])
CASES_7D = Gauge("effortpulse_cases", "Cases whose first contact lies in the last 7 days", ["segment"])
DRIVER_POINTS = Counter("effortpulse_effort_points_total", "Effort points cases gained, by driver", ["driver"])


def set_insights(figures: dict[str, dict[str, object]]) -> None:
    """Replace the insights gauges: segment → /insights answer over 7 days."""
    for gauge in (FCR, REPEAT, MEAN_EFFORT, CASES_7D):
        gauge.clear()
    nan = float("nan")
    for segment, f in figures.items():
        FCR.labels(segment).set(nan if f["fcr_rate"] is None else float(f["fcr_rate"]))  # type: ignore[arg-type]
        REPEAT.labels(segment).set(nan if f["repeat_contact_rate"] is None else float(f["repeat_contact_rate"]))  # type: ignore[arg-type]
        MEAN_EFFORT.labels(segment).set(nan if f["mean_effort"] is None else float(f["mean_effort"]))  # type: ignore[arg-type]
        CASES_7D.labels(segment).set(float(f["cases"]))  # type: ignore[arg-type]


CHURN_AUC = Gauge(
    "effortpulse_churn_roc_auc",
    "ROC AUC of the churn risk over this worker's latest labelled customers (churned, or still there "
    "EFFORTPULSE_CHURN_LABEL_HORIZON after a score); NaN until both kinds are present",
)
CHURN_LABELLED = Gauge("effortpulse_churn_labelled_customers", "Labelled customers in the churn AUC window")
CHURN_AUC.set(float("nan"))
_labels: deque[tuple[float, int]] = deque(maxlen=2000)


def observe_labels(labels: list[tuple[float, int]]) -> None:
    if not labels:
        return
    _labels.extend(labels)
    auc = churn.roc_auc([s for s, _ in _labels], [y for _, y in _labels])
    CHURN_AUC.set(float("nan") if auc is None else auc)
    CHURN_LABELLED.set(len(_labels))


LAG = Gauge(
    "effortpulse_consumer_lag_records",
    "Records of the events topic not yet applied, per partition this worker owns",
    ["topic", "partition"],
)
LAST_APPLIED = Gauge(
    "effortpulse_last_applied_timestamp_seconds", "Kafka timestamp of the latest record applied by this worker"
)
_next_offsets: dict[int, int] = {}  # partition → offset after the last record applied


def next_offset(partition: int) -> int | None:
    return _next_offsets.get(partition)


def forget_partitions(partitions: set[int]) -> None:
    """Partitions this worker no longer owns: their lag is another worker's to report."""
    for p in partitions:
        _next_offsets.pop(p, None)


def set_lag(topic: str, lags: dict[int, int]) -> None:
    LAG.clear()
    for partition, lag in lags.items():
        LAG.labels(topic, str(partition)).set(lag)


# series that exist from the start, so rate() and alerting rules see 0 rather than nothing
for _type in EVENT_TYPES:
    EVENTS.labels(_type)
for _reason in REASONS:
    INVALID.labels(_reason)
for _driver in DRIVERS:
    DRIVER_POINTS.labels(_driver)
for _alert in get_args(AlertType):
    for _severity in get_args(Severity):
        ALERTS.labels(_alert, _severity)


def observe_batch(result: BatchResult, records: Sequence[Record]) -> None:
    """Count what a finished batch did."""
    now_ms = time.time() * 1000
    BATCH.observe(len(records))
    for phase, seconds in result.phases.items():
        PHASES.labels(phase).observe(seconds)
    for event_type, n in result.applied.items():
        EVENTS.labels(event_type).inc(n)
    if result.duplicates:
        DUPLICATES.inc(result.duplicates)
    for dead in result.dead:
        INVALID.labels(dead.reason).inc()
    newest = 0
    for record in records:
        if record.timestamp_ms is not None:
            PROCESSING_LATENCY.observe(max(0.0, (now_ms - record.timestamp_ms) / 1000))
            newest = max(newest, record.timestamp_ms)
        if record.offset + 1 > _next_offsets.get(record.partition, 0):
            _next_offsets[record.partition] = record.offset + 1
    if newest:
        LAST_APPLIED.set(newest / 1000)
    for alert in result.alerts:
        ALERTS.labels(alert.type, alert.severity).inc()
    for trigger_ms in result.alert_trigger_ms:
        ALERT_LATENCY.observe(max(0.0, (now_ms - trigger_ms) / 1000))
    for seconds in result.redis_seconds:
        REDIS_LATENCY.observe(seconds)
    for effort in result.effort:
        CASE_EFFORT.observe(effort)
    observe_labels(result.labels)
    for driver, points in result.driver_points.items():
        DRIVER_POINTS.labels(driver).inc(points)


def exposition() -> tuple[bytes, str]:
    """The text format body and its content type (without the charset, which aiohttp adds)."""
    content_type = "; ".join(p for p in CONTENT_TYPE_LATEST.split("; ") if not p.startswith("charset="))
    return generate_latest(), content_type

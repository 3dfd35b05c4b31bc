"""Every setting of contract §2, read from EFFORTPULSE_* environment variables.

Durations are written `90s`, `15m`, `24h`, `7d` (a bare number means seconds).
"""

from __future__ import annotations

import re
from dataclasses import fields
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.rules import US, Rules

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, None: 1}


def parse_duration(value: Any) -> float:
    """'90s' → 90.0, '15m' → 900.0, '24h', '7d'; a bare number is seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("a duration is written like 90s, 15m, 24h or 7d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.fullmatch(str(value))
        if not m:
            raise ValueError(f"{value!r} is not a duration; write it like 90s, 15m, 24h or 7d")
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of a duration: 604800 → '7d', 90 → '90s'."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _positive(v: float) -> float:
    if v <= 0:
        raise ValueError("must be longer than 0")
    return v


Duration = Annotated[float, BeforeValidator(parse_duration), AfterValidator(_positive)]
Points = Annotated[float, Field(ge=0)]
_D = Rules()


class Settings(BaseSettings):
    """effortpulse's settings; each field is the environment variable EFFORTPULSE_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="EFFORTPULSE_", extra="ignore", frozen=True)

    # --- where things are (§2)
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    app_id: str = Field("effortpulse", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    events_topic: str = "cx.events"
    alerts_topic: str = "cx.alerts"
    dlq_topic: str = "cx.events.dlq"
    undelivered_topic: str = "cx.alerts.undelivered"
    web_port: int = Field(6066, ge=0, le=65535)
    web_host: str = "127.0.0.1"
    api_token: str | None = None
    webhook_allow: str | None = None
    # --- alert delivery to subscriptions (streams.delivery): one delivery ends, at the latest,
    # after (retries + 1) × timeout plus the backoff waits, then goes to the undelivered topic
    webhook_timeout: Duration = 5
    webhook_retries: int = Field(4, ge=0, le=20)
    webhook_backoff_base: Duration = 1
    webhook_backoff_max: Duration = 10
    delivery_concurrency: int = Field(100, ge=1, le=10_000)  # alerts being delivered at once
    # --- Kafka SASL/TLS and Redis password/TLS (streams.security)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_username: str | None = Field(None, validate_default=True)
    kafka_ssl_cafile: str | None = None
    kafka_ssl_certfile: str | None = None
    kafka_ssl_keyfile: str | None = None
    redis_password: SecretStr | None = None
    redis_ssl_cafile: str | None = None
    # --- topics the worker creates when they are missing
    topic_partitions: int = Field(4, ge=1)
    topic_replication: int = Field(1, ge=1)
    # --- batching: a batch is cut at batch_size records or batch_within seconds
    batch_size: int = Field(1000, ge=1, le=100_000)
    batch_within: Duration = 0.05
    # customers whose state a worker keeps in memory between batches (0 = always read Redis)
    state_cache: int = Field(50_000, ge=0)
    log_level: str = "info"
    # Prometheus gauges of NPS/CES/CSAT per segment: how often, agent segments or not, how many
    score_gauges_interval: Duration = 30
    score_gauges_agents: bool = False
    score_gauges_max_segments: int = Field(200, ge=1)

    # --- §3 windows
    repeat_window: Duration = _D.repeat_window_us / US
    self_service_window: Duration = _D.self_service_window_us / US
    retention: Duration = _D.retention_us / US
    # --- §4 effort weights
    effort_repeat_contact: Points = _D.effort_repeat_contact
    effort_channel_switch: Points = _D.effort_channel_switch
    effort_transfer: Points = _D.effort_transfer
    effort_repeated_info: Points = _D.effort_repeated_info
    effort_unresolved: Points = _D.effort_unresolved
    effort_policy_friction: Points = _D.effort_policy_friction
    effort_hassle: Points = _D.effort_hassle
    effort_scripted_service: Points = _D.effort_scripted_service
    effort_self_service_failure: Points = _D.effort_self_service_failure
    effort_hold_over: Duration = _D.effort_hold_over_s
    effort_queue_wait_over: Duration = _D.effort_queue_wait_over_s
    # --- §5 thresholds
    effort_warning: Points = _D.effort_warning
    effort_critical: Points = _D.effort_critical
    detractor_follow_up: Duration = _D.detractor_follow_up_us / US
    detractor_critical_nps: int = Field(_D.detractor_critical_nps, ge=0, le=10)
    detractor_critical_effort: Points = _D.detractor_critical_effort
    churn_warning: float = Field(_D.churn_warning, gt=0, le=1)
    churn_critical: float = Field(_D.churn_critical, gt=0, le=1)
    churn_alert_interval: Duration = _D.churn_alert_interval_us / US
    churn_intercept: float = _D.churn_intercept
    churn_coef_open_case_effort: float = _D.churn_coef_open_case_effort
    churn_coef_recent_case_effort: float = _D.churn_coef_recent_case_effort
    churn_coef_unresolved_cases: float = _D.churn_coef_unresolved_cases
    churn_coef_second_failure: float = _D.churn_coef_second_failure
    churn_coef_detractor: float = _D.churn_coef_detractor
    churn_coef_passive: float = _D.churn_coef_passive
    churn_coef_promoter: float = _D.churn_coef_promoter
    churn_coef_hard_effort_answer: float = Field(_D.churn_coef_hard_effort_answer, ge=0)
    churn_coef_poor_csat: float = Field(_D.churn_coef_poor_csat, ge=0)
    churn_coef_recent_contact: float = _D.churn_coef_recent_contact
    churn_lookback: Duration = _D.churn_lookback_us / US
    churn_failure_effort: Points = _D.churn_failure_effort
    churn_recency: Duration = _D.churn_recency_us / US
    churn_label_horizon: Duration = _D.churn_label_horizon_us / US
    nps_drop_recent: Duration = _D.nps_drop_recent_us / US
    nps_drop_baseline: Duration = _D.nps_drop_baseline_us / US
    nps_drop_z: float = _D.nps_drop_z
    nps_drop_z_critical: float = _D.nps_drop_z_critical
    nps_drop_min_responses: int = Field(_D.nps_drop_min_responses, ge=1)
    nps_drop_cooldown: Duration = _D.nps_drop_cooldown_us / US

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("kafka_sasl_username")
    @classmethod
    def _sasl(cls, v: str | None, info: ValidationInfo) -> str | None:
        protocol = info.data.get("kafka_security_protocol", "")
        if protocol.startswith("SASL_") and (not v or info.data.get("kafka_sasl_password") is None):
            raise ValueError(
                f"EFFORTPULSE_KAFKA_SECURITY_PROTOCOL={protocol} needs EFFORTPULSE_KAFKA_SASL_USERNAME "
                "and EFFORTPULSE_KAFKA_SASL_PASSWORD"
            )
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        if v.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("one of debug, info, warning, error, critical")
        return v.lower()

    def rules(self) -> Rules:
        """The pure core's view of these settings: each Rules field comes from the setting of
        the same name; a `_us` field from a duration in microseconds, an `_s` one in seconds."""
        values: dict[str, Any] = {}
        for f in fields(Rules):
            if f.name.endswith("_us"):
                values[f.name] = round(getattr(self, f.name[:-3]) * US)
            elif f.name.endswith("_s"):
                values[f.name] = getattr(self, f.name[:-2])
            else:
                values[f.name] = getattr(self, f.name)
        return Rules(**values)


def describe_errors(exc: ValidationError) -> str:
    """One line per bad setting, named by its environment variable."""
    lines = []
    for e in exc.errors(include_url=False):
        name = "EFFORTPULSE_" + "_".join(str(p) for p in e["loc"]).upper()
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"{name}={e.get('input')!r}: {msg}")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()

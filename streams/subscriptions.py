"""Alert subscriptions (contract §7), the pure part: the model and its validation, which alerts a
subscription wants, the retry schedule and the webhook signature. No I/O, no clock, no Redis.

A subscription names which alerts it wants — by type, by minimum severity, by segment — and where
they go: a Kafka topic, or a webhook URL with the secret its deliveries are signed with.
`streams.delivery` stores subscriptions, serves them over HTTP and delivers alerts to them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from schemas.alerts import AlertType, Severity
from schemas.events import CONTACT_CHANNELS
from streams.alerting import SEVERITY_RANK
from streams.surveys import parse_segment

__all__ = [
    "KafkaTarget",
    "Subscription",
    "SubscriptionIn",
    "ValidationContext",
    "WebhookTarget",
    "backoff_delays",
    "host_allowed",
    "matches",
    "parse_allow",
    "retryable_status",
    "sign",
    "validate_body",
]

# Kafka's own rule for topic names
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class ValidationContext(BaseModel):
    """What a subscription is checked against beyond its own shape: the webhook host patterns
    (EFFORTPULSE_WEBHOOK_ALLOW; empty = any host) and the worker's own topics, which no Kafka
    target may name (delivering alerts to the alerts topic would loop forever)."""

    model_config = ConfigDict(frozen=True)

    webhook_allow: tuple[str, ...] = ()
    reserved_topics: tuple[str, ...] = ()


class KafkaTarget(BaseModel):
    """Deliver by producing the alert JSON to a Kafka topic, keyed like the alerts topic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kafka_topic: str

    @field_validator("kafka_topic")
    @classmethod
    def _topic(cls, v: str, info: ValidationInfo) -> str:
        if not _TOPIC.match(v) or v in {".", ".."}:
            raise ValueError("a Kafka topic name: 1–249 of A-Z a-z 0-9 . _ -")
        ctx = _context(info)
        if v in ctx.reserved_topics:
            raise ValueError(f"{v} is one of the worker's own topics; alerts cannot be delivered there")
        return v

    def public(self) -> dict[str, str]:
        return {"kafka_topic": self.kafka_topic}

    def describe(self) -> str:
        return f"kafka:{self.kafka_topic}"


class WebhookTarget(BaseModel):
    """Deliver by POSTing the alert JSON to a URL, signed with HMAC-SHA256 keyed by `secret`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048)]
    secret: Annotated[str, StringConstraints(min_length=1, max_length=1024)]

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, v: str, info: ValidationInfo) -> str:
        try:
            parts = urlsplit(v)
            host = parts.hostname
            _ = parts.port  # raises ValueError on a bad port
        except ValueError as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        if not host:
            raise ValueError("names no host")
        if parts.fragment:
            raise ValueError("must not have a #fragment")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not carry user:password; deliveries are authenticated by their signature")
        allow = _context(info).webhook_allow
        if allow and not host_allowed(host, allow):
            raise ValueError(
                f"host {host} does not match EFFORTPULSE_WEBHOOK_ALLOW ({','.join(allow)}); "
                "ask the operator to allow it"
            )
        return v

    def public(self) -> dict[str, str]:
        """The target as the API shows it: never the secret."""
        return {"webhook_url": self.webhook_url}

    def describe(self) -> str:
        """The URL (it carries no credentials), for logs and the undelivered topic."""
        return self.webhook_url


def _target_kind(v: Any) -> str | None:
    """Which target a body means: exactly one of kafka_topic or webhook_url (+ secret)."""
    if isinstance(v, KafkaTarget):
        return "kafka"
    if isinstance(v, WebhookTarget):
        return "webhook"
    if not isinstance(v, Mapping):
        return None
    kafka = "kafka_topic" in v
    webhook = "webhook_url" in v or "secret" in v
    if kafka == webhook:
        return None  # both or neither
    return "kafka" if kafka else "webhook"


Target = Annotated[
    Annotated[KafkaTarget, Tag("kafka")] | Annotated[WebhookTarget, Tag("webhook")],
    Discriminator(
        _target_kind,
        custom_error_type="target_kind",
        custom_error_message='target must be {"kafka_topic": ...} or {"webhook_url": ..., "secret": ...}, '
        "exactly one of them",
    ),
]


def _segment(v: str) -> str:
    """A segment as §6 spells it: all, channel:<channel>, team:<t>, agent:<a>, reason:<r>."""
    return parse_segment(v, CONTACT_CHANNELS)


class SubscriptionIn(BaseModel):
    """A subscription as POST /subscriptions takes it. Empty `types` or `segments` mean all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    types: list[AlertType] = Field(default_factory=list, max_length=10)
    min_severity: Severity = "warning"
    segments: list[Annotated[str, StringConstraints(max_length=300), AfterValidator(_segment)]] = Field(
        default_factory=list, max_length=1000
    )
    target: Target

    @field_validator("types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))

    @field_validator("segments")
    @classmethod
    def _segments(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))


class Subscription(SubscriptionIn):
    """A stored subscription: the body plus its id and creation time (RFC 3339)."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    created_at: str

    def public(self) -> dict[str, Any]:
        """What the API and the CLI show: everything but the webhook secret."""
        doc = self.model_dump(mode="json", exclude={"target"})
        return {"id": doc.pop("id"), **doc, "target": self.target.public()}

    @property
    def kind(self) -> str:
        return "webhook" if isinstance(self.target, WebhookTarget) else "kafka"


def _context(info: ValidationInfo) -> ValidationContext:
    ctx = info.context
    if isinstance(ctx, ValidationContext):
        return ctx
    return ValidationContext()


def validate_body(body: Any, ctx: ValidationContext, id_: str, created_at: str) -> Subscription:
    """A subscription from a request body (already parsed JSON). Raises ValidationError, whose
    `errors(include_input=False)` never echoes a secret back."""
    incoming = SubscriptionIn.model_validate(body, context=ctx)
    return Subscription.model_validate({**incoming.model_dump(), "id": id_, "created_at": created_at}, context=ctx)


def error_list(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's error details without the input (it may hold a secret) and without URLs."""
    out = []
    for e in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = list(e["loc"])
        if loc[:1] == ["target"] and loc[1:2] in (["kafka"], ["webhook"]):
            del loc[1]  # the union's tag is ours, not a field of the body
        out.append({"type": e["type"], "loc": loc, "msg": e["msg"].removeprefix("Value error, ")})
    return out


def summary(errors: Sequence[Mapping[str, Any]]) -> str:
    """One line: `loc: msg; loc: msg`."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in errors)


# ------------------------------------------------------------------------------ matching


def matches(sub: SubscriptionIn, alert: Mapping[str, Any]) -> bool:
    """Whether an alert (its JSON value) goes to this subscription: its type is one of `types`,
    its severity at least `min_severity`, and one of its `segments` is one of the subscription's
    (an empty list means any)."""
    if sub.types and alert.get("type") not in sub.types:
        return False
    if SEVERITY_RANK.get(str(alert.get("severity")), 0) < SEVERITY_RANK[sub.min_severity]:
        return False
    if sub.segments:
        have = alert.get("segments") or ()
        if not any(s in sub.segments for s in have):
            return False
    return True


# ------------------------------------------------------------------------------ allow-list


def parse_allow(text: str | None) -> tuple[str, ...]:
    """EFFORTPULSE_WEBHOOK_ALLOW → host patterns, lower-cased; empty when unset or blank."""
    if not text:
        return ()
    return tuple(p.strip().lower() for p in text.split(",") if p.strip())


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """fnmatch-style, case-insensitive: `*.example.com` matches `hooks.example.com` (not
    `example.com` itself), `hooks.internal` only itself."""
    h = host.lower().rstrip(".")
    return any(fnmatch.fnmatchcase(h, p) for p in patterns)


# ------------------------------------------------------------------------------ delivery rules


def sign(secret: str, body: bytes) -> str:
    """The X-Effortpulse-Signature value: `sha256=` + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_delays(retries: int, base: float, maximum: float, rng: random.Random | None = None) -> list[float]:
    """The waits before each retry: exponential with full jitter, uniform in
    [0, min(maximum, base · 2^n)] for the n-th retry (n from 0). `retries` of them."""
    r = rng or random.Random()
    return [r.uniform(0, min(maximum, base * 2**n)) for n in range(retries)]


def retryable_status(status: int) -> bool:
    """5xx, 408 and 429 are worth another try; any other non-2xx answer is final."""
    return status >= 500 or status in (408, 429)


def worst_case_seconds(retries: int, timeout: float, base: float, maximum: float) -> float:
    """The longest one delivery can take: every try times out and every wait is at its cap."""
    return (retries + 1) * timeout + sum(min(maximum, base * 2**n) for n in range(retries))

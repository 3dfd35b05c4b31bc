"""From a Kafka record to a valid event, or to the dead letter that says why not (contract §3).

Pure: the caller passes the record and the time it was received.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.events import MAX_RECORD_BYTES, Event, parse_event
from streams.times import iso


@dataclass(frozen=True, slots=True)
class Record:
    """One Kafka record as the pipeline sees it."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An invalid record and why: `value()` is the DLQ record's JSON value."""

    record: Record
    reason: str  # a short, stable label for metrics (not_json, unknown_type, ...)
    error: str  # one-line summary
    errors: list[dict[str, Any]]
    received_at: int

    def value(self) -> dict[str, Any]:
        raw = self.record.value or b""
        out: dict[str, Any] = {
            "error": self.error,
            "errors": self.errors,
            "topic": self.record.topic,
            "partition": self.record.partition,
            "offset": self.record.offset,
            "received_at": iso(self.received_at),
        }
        try:
            out["payload"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            out["payload"] = base64.b64encode(raw).decode("ascii")
            out["payload_encoding"] = "base64"
        return out


# pydantic error type → DLQ reason label
_REASONS = {
    "json_invalid": "not_json",
    "json_type": "not_json",
    "dict_type": "not_object",
    "model_type": "not_object",
    "model_attributes_type": "not_object",
    "union_tag_invalid": "unknown_type",
    "union_tag_not_found": "missing_field",
    "missing": "missing_field",
    "timezone_aware": "naive_timestamp",
    "datetime_rfc3339": "bad_timestamp",
    "greater_than": "out_of_range",
    "greater_than_equal": "out_of_range",
    "less_than": "out_of_range",
    "less_than_equal": "out_of_range",
    "string_too_short": "out_of_range",
    "string_too_long": "out_of_range",
}


# every reason label a dead letter can carry (processing_error: the rules failed on a valid event)
REASONS: tuple[str, ...] = tuple(
    dict.fromkeys(("not_utf8", "too_large", *_REASONS.values(), "invalid_field", "bad_timestamp", "processing_error"))
)


def decode(record: Record, received_at: int) -> Event | DeadLetter:
    """Validate a record's value; never raises."""
    raw = record.value

    def dead(reason: str, error: str, errors: list[dict[str, Any]]) -> DeadLetter:
        return DeadLetter(record, reason, error, errors, received_at)

    if raw is None or raw == b"":
        return dead("not_json", "empty record: no JSON value", [_err("json_invalid", [], "empty record")])
    if len(raw) > MAX_RECORD_BYTES:
        msg = f"record of {len(raw)} bytes is over the limit of {MAX_RECORD_BYTES} bytes (64 KiB)"
        return dead("too_large", msg, [_err("too_large", [], msg)])
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"not UTF-8: {exc.reason} at byte {exc.start}"
        return dead("not_utf8", msg, [_err("utf8", [], msg)])
    try:
        return parse_event(raw)
    except ValidationError as exc:
        errors = [_clean(e) for e in exc.errors(include_url=False)]
        return dead(_reason(errors), _summary(errors), errors)


def _err(kind: str, loc: list[Any], msg: str) -> dict[str, Any]:
    return {"type": kind, "loc": loc, "msg": msg}


def _clean(e: Any) -> dict[str, Any]:
    """A pydantic error as plain JSON; the event type pydantic puts first in loc is dropped."""
    loc = list(e["loc"])
    if loc and isinstance(loc[0], str) and "." in loc[0]:
        loc = loc[1:]
    out: dict[str, Any] = {"type": e["type"], "loc": loc, "msg": e["msg"]}
    value = e.get("input")
    if loc and _jsonable(value) and not isinstance(value, dict | list):
        out["input"] = value
    ctx = e.get("ctx")
    if ctx and _jsonable(ctx):
        out["ctx"] = ctx
    return out


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _reason(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    if first["loc"] == ["occurred_at"] and first["type"] not in ("timezone_aware", "missing"):
        return "bad_timestamp"
    return _REASONS.get(first["type"], "invalid_field")


def _summary(errors: list[dict[str, Any]]) -> str:
    first = errors[0]
    where = ".".join(str(x) for x in first["loc"])
    text = f"{where}: {first['msg']}" if where else first["msg"]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return " ".join((text + more).splitlines())

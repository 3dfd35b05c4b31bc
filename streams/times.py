"""Event time as int microseconds since the Unix epoch, and its RFC 3339 spelling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

US = 1_000_000
MINUTE = 60 * US
HOUR = 60 * MINUTE
DAY = 24 * HOUR

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(t: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding)."""
    d = t - _EPOCH
    return (d.days * 86_400 + d.seconds) * US + d.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def iso(us: int) -> str:
    """RFC 3339 in UTC with a Z; fractions of a second only when there are any."""
    text = from_us(us).isoformat()
    return text.replace("+00:00", "Z")

"""Alert subscriptions, the pure part: matching, validation, allow-list, signature, backoff."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from pydantic import ValidationError

from streams.subscriptions import (
    Subscription,
    ValidationContext,
    backoff_delays,
    error_list,
    host_allowed,
    matches,
    parse_allow,
    retryable_status,
    sign,
    summary,
    validate_body,
    worst_case_seconds,
)

HOOK = {"webhook_url": "https://hooks.example.com/effortpulse", "secret": "s3cret-value"}
CTX = ValidationContext(reserved_topics=("cx.events", "cx.alerts", "cx.events.dlq", "cx.alerts.undelivered"))


def sub(ctx: ValidationContext = CTX, **fields: Any) -> Subscription:
    body = {"name": "team lead", "target": {"kafka_topic": "team.alerts"}, **fields}
    return validate_body(body, ctx, "sub-1", "2026-11-25T10:00:00Z")


def alert(type_: str = "effort.high", severity: str = "warning", segments: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"alert_id": "a1", "type": type_, "severity": severity, "segments": list(segments)}


def errors(body: Any, ctx: ValidationContext = CTX) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as exc:
        validate_body(body, ctx, "sub-1", "2026-11-25T10:00:00Z")
    return error_list(exc.value)


def only(errs: list[dict[str, Any]]) -> tuple[list[Any], str]:
    assert len(errs) == 1, errs
    return errs[0]["loc"], errs[0]["msg"]


# ------------------------------------------------------------------------------ matching


def test_empty_types_segments_and_warning_match_every_alert() -> None:
    s = sub()
    for type_ in ("effort.high", "nps.detractor", "churn.risk", "nps.drop"):
        for severity in ("warning", "critical"):
            assert matches(s, alert(type_, severity, ("team:x",)))
    assert matches(s, alert(segments=()))


def test_types_keep_only_the_listed_alert_types() -> None:
    s = sub(types=["nps.detractor", "churn.risk"])
    assert matches(s, alert("nps.detractor"))
    assert matches(s, alert("churn.risk"))
    assert not matches(s, alert("effort.high"))
    assert not matches(s, alert("nps.drop"))


def test_min_severity_critical_drops_warnings_and_warning_keeps_both() -> None:
    critical = sub(min_severity="critical")
    assert matches(critical, alert(severity="critical"))
    assert not matches(critical, alert(severity="warning"))
    warning = sub(min_severity="warning")
    assert matches(warning, alert(severity="warning"))
    assert matches(warning, alert(severity="critical"))


def test_segments_match_when_any_of_the_alerts_segments_is_listed() -> None:
    s = sub(segments=["team:billing", "channel:phone"])
    assert matches(s, alert(segments=("channel:chat", "team:billing", "agent:a1")))
    assert matches(s, alert(segments=("channel:phone",)))
    assert not matches(s, alert(segments=("channel:chat", "team:tech")))
    assert not matches(s, alert(segments=()))


def test_segment_all_matches_only_alerts_of_the_all_segment() -> None:
    s = sub(segments=["all"])
    assert matches(s, alert("nps.drop", segments=("all",)))
    assert not matches(s, alert("nps.drop", segments=("team:x",)))


def test_every_filter_must_hold() -> None:
    s = sub(types=["effort.high"], min_severity="critical", segments=["team:billing"])
    assert matches(s, alert("effort.high", "critical", ("team:billing",)))
    assert not matches(s, alert("nps.detractor", "critical", ("team:billing",)))
    assert not matches(s, alert("effort.high", "warning", ("team:billing",)))
    assert not matches(s, alert("effort.high", "critical", ("team:tech",)))


# ------------------------------------------------------------------------------ validation


def test_a_valid_webhook_subscription_keeps_its_secret_but_never_shows_it() -> None:
    s = sub(types=["nps.drop", "nps.drop"], segments=["team:a", "team:a"], target=HOOK)
    assert s.types == ["nps.drop"] and s.segments == ["team:a"]
    shown = s.public()
    assert shown == {
        "id": "sub-1",
        "name": "team lead",
        "types": ["nps.drop"],
        "min_severity": "warning",
        "segments": ["team:a"],
        "created_at": "2026-11-25T10:00:00Z",
        "target": {"webhook_url": "https://hooks.example.com/effortpulse"},
    }
    assert "s3cret-value" not in json.dumps(shown)
    stored = Subscription.model_validate_json(s.model_dump_json())
    assert stored.target.secret == "s3cret-value"  # type: ignore[union-attr]


def test_defaults_are_all_types_all_segments_and_warning() -> None:
    s = sub()
    assert (s.types, s.segments, s.min_severity) == ([], [], "warning")
    assert s.public()["target"] == {"kafka_topic": "team.alerts"}


def test_both_targets_are_rejected() -> None:
    loc, msg = only(errors({"name": "x", "target": {"kafka_topic": "t", **HOOK}}))
    assert loc == ["target"]
    assert "exactly one of them" in msg


def test_no_target_or_an_empty_one_is_rejected() -> None:
    assert only(errors({"name": "x", "target": {}}))[0] == ["target"]
    assert only(errors({"name": "x", "target": "hooks.example.com"}))[0] == ["target"]
    assert only(errors({"name": "x"}))[0] == ["target"]


def test_a_webhook_needs_its_secret() -> None:
    loc, msg = only(errors({"name": "x", "target": {"webhook_url": "https://h.example.com/"}}))
    assert loc == ["target", "secret"]
    assert msg == "Field required"
    loc, _ = only(errors({"name": "x", "target": {"webhook_url": "https://h.example.com/", "secret": ""}}))
    assert loc == ["target", "secret"]


def test_a_webhook_url_must_be_http_or_https_with_a_host_and_no_credentials() -> None:
    for url, expected in [
        ("ftp://h.example.com/x", "must be an http:// or https:// URL"),
        ("hooks.example.com/x", "must be an http:// or https:// URL"),
        ("https:///x", "names no host"),
        ("https://user:pw@h.example.com/x", "must not carry user:password"),
        ("https://h.example.com:99999/x", "not a URL"),
    ]:
        loc, msg = only(errors({"name": "x", "target": {"webhook_url": url, "secret": "s"}}))
        assert loc == ["target", "webhook_url"]
        assert expected in msg, (url, msg)


def test_unknown_type_bad_severity_and_bad_segments_are_each_reported() -> None:
    errs = errors(
        {
            "name": "x",
            "types": ["effort.high", "effort.low"],
            "min_severity": "info",
            "segments": ["team:billing", "planet:mars", "channel:fax", "team:"],
            "target": {"kafka_topic": "t"},
        }
    )
    by_loc = {tuple(e["loc"]): e["msg"] for e in errs}
    assert set(by_loc) == {("types", 1), ("min_severity",), ("segments", 1), ("segments", 2), ("segments", 3)}
    assert "'effort.high', 'nps.detractor', 'churn.risk' or 'nps.drop'" in by_loc[("types", 1)]
    assert "'warning' or 'critical'" in by_loc[("min_severity",)]
    assert "is not one of all, channel:<channel>" in by_loc[("segments", 1)]
    assert "channel must be one of phone" in by_loc[("segments", 2)]
    assert "names no team" in by_loc[("segments", 3)]


def test_a_kafka_target_must_be_a_legal_topic_and_not_one_of_the_workers_own() -> None:
    loc, msg = only(errors({"name": "x", "target": {"kafka_topic": "bad topic!"}}))
    assert loc == ["target", "kafka_topic"] and "Kafka topic name" in msg
    loc, msg = only(errors({"name": "x", "target": {"kafka_topic": "cx.alerts"}}))
    assert loc == ["target", "kafka_topic"] and "worker's own topics" in msg


def test_unknown_fields_and_a_missing_name_are_rejected() -> None:
    errs = errors({"name": "  ", "target": {"kafka_topic": "t"}, "colour": "red"})
    assert {tuple(e["loc"]) for e in errs} == {("name",), ("colour",)}


def test_errors_never_echo_the_secret() -> None:
    errs = errors({"name": "", "target": {"webhook_url": "gopher://x", "secret": "s3cret-value"}})
    assert "s3cret-value" not in json.dumps(errs)
    assert "name: String should have at least 1 character" in summary(errs)


# ------------------------------------------------------------------------------ allow-list


def test_allow_list_patterns_are_fnmatch_style_and_case_insensitive() -> None:
    patterns = parse_allow(" *.Example.com , hooks.internal,, ")
    assert patterns == ("*.example.com", "hooks.internal")
    assert host_allowed("hooks.example.com", patterns)
    assert host_allowed("A.B.EXAMPLE.COM", patterns)
    assert host_allowed("hooks.internal", patterns)
    assert not host_allowed("example.com", patterns)
    assert not host_allowed("hooks.internal.evil.com", patterns)
    assert not host_allowed("169.254.169.254", patterns)
    assert parse_allow(None) == () and parse_allow("  ") == ()


def test_a_webhook_host_outside_the_allow_list_is_rejected_and_inside_accepted() -> None:
    ctx = ValidationContext(webhook_allow=parse_allow("*.example.com,hooks.internal"))
    loc, msg = only(errors({"name": "x", "target": {"webhook_url": "http://10.0.0.5/x", "secret": "s"}}, ctx))
    assert loc == ["target", "webhook_url"]
    assert "does not match EFFORTPULSE_WEBHOOK_ALLOW" in msg
    assert sub(ctx, target={"webhook_url": "http://hooks.internal:8080/x", "secret": "s"})
    assert sub(ctx, target=HOOK)


def test_without_an_allow_list_any_host_is_accepted() -> None:
    assert sub(target={"webhook_url": "http://127.0.0.1:9/x", "secret": "s"})


# ------------------------------------------------------------------------------ signature, retries


def test_signature_is_hex_hmac_sha256_of_the_body_rfc_4231_vector() -> None:
    # RFC 4231, test case 2
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_signature_covers_the_exact_bytes() -> None:
    assert sign("k", b'{"a": 1}') != sign("k", b'{"a":1}')
    assert sign("k", b"x") != sign("k2", b"x")


def test_backoff_has_one_wait_per_retry_within_full_jitter_bounds() -> None:
    rng = random.Random(7)
    for _ in range(200):
        delays = backoff_delays(6, 0.5, 5.0, rng)
        assert len(delays) == 6
        for n, d in enumerate(delays):
            assert 0 <= d <= min(5.0, 0.5 * 2**n)
    assert backoff_delays(0, 1, 10) == []


def test_backoff_is_spread_over_the_whole_range_full_jitter() -> None:
    rng = random.Random(11)
    samples = [backoff_delays(4, 1.0, 100.0, rng)[3] for _ in range(2000)]  # cap 8 s
    assert min(samples) < 0.5 and max(samples) > 7.5
    assert 3.6 < sum(samples) / len(samples) < 4.4


def test_which_answers_are_retried() -> None:
    assert all(retryable_status(s) for s in (500, 502, 503, 504, 408, 429))
    assert not any(retryable_status(s) for s in (400, 401, 403, 404, 410, 422))


def test_worst_case_of_one_delivery() -> None:
    # 5 tries of 5 s and waits capped at 1, 2, 4, 8 s
    assert worst_case_seconds(4, 5, 1, 10) == 25 + 15

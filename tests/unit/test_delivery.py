"""The delivery shell's logic that needs no services: in-order acks, tries and the undelivered
record (with an in-memory sink), and the Kafka/Redis security options."""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import Awaitable
from typing import Any

import faust
import pytest
from faust.types import TP

from streams import security
from streams.delivery import Deliverer, InOrderAcks, Throttle
from streams.settings import Settings
from streams.subscriptions import ValidationContext, validate_body


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ acks


class Acks:
    def __init__(self) -> None:
        self.acked: list[str] = []
        self.generation = 1

    async def ack(self, event: str) -> None:
        self.acked.append(event)


def test_records_are_acked_in_offset_order_whatever_order_their_deliveries_end_in() -> None:
    async def scenario() -> list[list[str]]:
        log = Acks()
        acks = InOrderAcks(log.ack, lambda: log.generation)
        e = {name: acks.track("p0", name, 1) for name in ("o1", "o2", "o3")}
        other = acks.track("p1", "q1", 1)
        steps = []
        await acks.done("p0", e["o3"])
        steps.append(list(log.acked))
        await acks.done("p0", e["o2"])
        steps.append(list(log.acked))
        await acks.done("p1", other)  # another partition is not held up by p0
        steps.append(list(log.acked))
        await acks.done("p0", e["o1"])
        steps.append(list(log.acked))
        assert acks.pending() == 0
        return steps

    assert run(scenario()) == [[], [], ["q1"], ["q1", "o1", "o2", "o3"]]


def test_records_of_an_older_generation_are_never_acked() -> None:
    async def scenario() -> list[str]:
        log = Acks()
        acks = InOrderAcks(log.ack, lambda: log.generation)
        old = acks.track("p0", "old", 1)
        log.generation = 2  # a rebalance: faust reads from the committed offset again
        again = acks.track("p0", "again", 2)
        await acks.done("p0", old)
        await acks.done("p0", again)
        return log.acked

    assert run(scenario()) == ["again"]


class FlowControl:
    """faust's consumer, as far as the throttle sees it."""

    def __init__(self, assigned: set[TP]) -> None:
        self.assigned = assigned
        self.fetching = set(assigned)

    def assignment(self) -> set[TP]:
        return self.assigned

    def on_buffer_full(self, tp: TP) -> None:
        self.fetching.discard(tp)

    def on_buffer_drop(self, tp: TP) -> None:
        self.fetching.add(tp)


def test_fetching_alerts_pauses_at_the_limit_and_resumes_at_half_never_touching_events() -> None:
    alerts = {TP("cx.alerts", 0), TP("cx.alerts", 1)}
    events = {TP("cx.events", 0), TP("cx.events", 1)}
    consumer = FlowControl(alerts | events)
    throttle = Throttle(consumer, "cx.alerts", limit=10)
    throttle.update(9)
    assert consumer.fetching == alerts | events
    throttle.update(10)
    assert consumer.fetching == events
    throttle.update(6)
    assert consumer.fetching == events
    consumer.assigned = {TP("cx.alerts", 0)} | events  # partition 1 went to another worker meanwhile
    throttle.update(5)
    assert consumer.fetching == {TP("cx.alerts", 0)} | events


# ------------------------------------------------------------------------------ tries


class FailingSink:
    """Kafka that refuses every record but the undelivered ones."""

    def __init__(self, undelivered_topic: str) -> None:
        self.undelivered_topic = undelivered_topic
        self.tries: list[str] = []
        self.records: list[tuple[str, bytes | None, bytes]] = []

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if topic == self.undelivered_topic:
            self.records.append((topic, key, value))
            fut.set_result(None)
        else:
            self.tries.append(topic)
            fut.set_exception(RuntimeError("broker says no"))
        return fut


def test_a_target_that_keeps_failing_gets_every_try_then_an_undelivered_record() -> None:
    settings = Settings(webhook_retries=3, webhook_backoff_base=0.001, webhook_backoff_max=0.004)
    s = validate_body(
        {"name": "ops", "target": {"kafka_topic": "ops.alerts"}}, ValidationContext(), "sub-9", "2026-11-25T10:00:00Z"
    )
    alert = {"alert_id": "a1", "type": "effort.high", "severity": "critical", "segments": []}
    raw = json.dumps(alert).encode()
    sink = FailingSink(settings.undelivered_topic)

    async def scenario() -> None:
        async with Deliverer(settings, sink, random.Random(1)) as d:
            await d.deliver(raw, b"c1", alert, [s])

    run(scenario())
    assert sink.tries == ["ops.alerts"] * 4
    [(topic, key, value)] = sink.records
    assert (topic, key) == ("cx.alerts.undelivered", b"c1")
    doc = json.loads(value)
    assert set(doc) == {"alert", "subscription_id", "subscription_name", "target", "attempts", "error", "failed_at"}
    assert doc["alert"] == alert
    assert (doc["subscription_id"], doc["subscription_name"], doc["target"]) == ("sub-9", "ops", "kafka:ops.alerts")
    assert doc["attempts"] == 4
    assert doc["error"] == "Kafka: broker says no"
    assert doc["failed_at"].endswith("Z")


# ------------------------------------------------------------------------------ security options


def test_plaintext_kafka_needs_no_credentials() -> None:
    s = Settings()
    assert security.kafka_options(s) == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials(s) is None
    assert security.redis_options(s) == {}


def test_sasl_ssl_reaches_kafka_python_aiokafka_and_faust() -> None:
    s = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ep",
        kafka_sasl_password="pw",
    )
    opts = security.kafka_options(s)
    assert opts["security_protocol"] == "SASL_SSL"
    assert (opts["sasl_mechanism"], opts["sasl_plain_username"], opts["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "ep",
        "pw",
    )
    assert isinstance(opts["ssl_context"], ssl.SSLContext)
    creds = security.faust_credentials(s)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, creds.mechanism.value) == ("ep", "pw", "SCRAM-SHA-512")
    assert creds.protocol.value == "SASL_SSL"
    assert "pw" not in repr(s)


def test_tls_alone_gives_faust_ssl_credentials() -> None:
    s = Settings(kafka_security_protocol="SSL")
    assert isinstance(security.faust_credentials(s), faust.SSLCredentials)
    assert "sasl_mechanism" not in security.kafka_options(s)


def test_sasl_without_username_or_password_is_a_bad_setting() -> None:
    with pytest.raises(ValueError, match="needs EFFORTPULSE_KAFKA_SASL_USERNAME"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="ep")


def test_redis_password_and_ca_file_reach_redis() -> None:
    s = Settings(redis_url="rediss://redis.internal:6380/0", redis_password="pw", redis_ssl_cafile="/etc/ca.pem")
    assert security.redis_options(s) == {"password": "pw", "ssl_ca_certs": "/etc/ca.pem"}
    plain = Settings(redis_url="redis://redis.internal:6379/0", redis_ssl_cafile="/etc/ca.pem")
    assert security.redis_options(plain) == {}  # a CA file means nothing without TLS

"""Synchronous Kafka tools (kafka-python): topic creation, `produce`, reading topics for the CLI."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams import security
from streams.settings import Settings

log = logging.getLogger(__name__)


def _admin(settings: Settings, wait_s: float) -> KafkaAdminClient:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return KafkaAdminClient(
                bootstrap_servers=settings.kafka_bootstrap,
                client_id=f"{settings.app_id}-admin",
                **security.kafka_options(settings),
            )
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"effortpulse: Kafka does not answer at {settings.kafka_bootstrap} ({exc}). "
                    "Start it with `make up`, or set EFFORTPULSE_KAFKA_BOOTSTRAP."
                ) from exc
            log.warning("waiting for Kafka at %s ...", settings.kafka_bootstrap)
            time.sleep(1)


def ensure_topics(settings: Settings, wait_s: float = 60) -> list[str]:
    """Create the events, alerts, DLQ and undelivered topics when they are missing; returns those created."""
    wanted = [settings.events_topic, settings.alerts_topic, settings.dlq_topic, settings.undelivered_topic]
    admin = _admin(settings, wait_s)
    try:
        existing = set(admin.list_topics())
        missing = [t for t in dict.fromkeys(wanted) if t not in existing]
        created = []
        for name in missing:
            try:
                admin.create_topics(
                    [NewTopic(name, settings.topic_partitions, settings.topic_replication)], timeout_ms=30_000
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another worker created it first
        if created:
            log.info("created topics %s with %d partitions", ", ".join(created), settings.topic_partitions)
        _wait_for_leaders(settings, wanted)
        return created
    finally:
        admin.close()


def _wait_for_leaders(settings: Settings, topics: list[str], wait_s: float = 30) -> None:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, **security.kafka_options(settings))
    try:
        deadline = time.monotonic() + wait_s
        for topic in topics:
            while not consumer.partitions_for_topic(topic):
                if time.monotonic() > deadline:
                    raise SystemExit(f"effortpulse: topic {topic} has no partitions after {wait_s:.0f}s")
                time.sleep(0.2)
    finally:
        consumer.close()


def producer(settings: Settings, **kwargs: Any) -> KafkaProducer:
    options = {**security.kafka_options(settings), **kwargs}
    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, acks="all", **options)


def produce_lines(settings: Settings, lines: Iterable[str], topic: str | None = None) -> tuple[int, int]:
    """Publish JSON lines as they are (no validation); key = the line's customer_id where it has one.

    Returns (sent, skipped blank lines)."""
    topic = topic or settings.events_topic
    p = producer(settings)
    sent = blank = 0
    try:
        for line in lines:
            text = line.rstrip("\r\n")
            if not text.strip():
                blank += 1
                continue
            p.send(topic, key=_customer_key(text), value=text.encode("utf-8", "surrogateescape"))
            sent += 1
        p.flush()
    finally:
        p.close()
    return sent, blank


def _customer_key(text: str) -> bytes | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("customer_id"), str):
        return doc["customer_id"].encode()
    return None


def read_topic(
    settings: Settings, topic: str, from_beginning: bool, follow: bool, timeout_s: float | None
) -> Iterator[bytes]:
    """Values of a topic, from its beginning or from now, until no record came for `timeout_s`
    seconds (default 5 s; with `follow` and no timeout, until interrupted)."""
    if timeout_s is not None:
        idle_ms: float = timeout_s * 1000
    else:
        idle_ms = float("inf") if follow else 5000
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=idle_ms,
        **security.kafka_options(settings),
    )
    try:
        for message in consumer:
            yield message.value
    finally:
        consumer.close()


def write_lines(values: Iterable[bytes], out: IO[str] = sys.stdout) -> int:
    n = 0
    for value in values:
        out.write(value.decode("utf-8", "replace") + "\n")
        out.flush()
        n += 1
    return n

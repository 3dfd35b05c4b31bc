"""The faust app and the worker: the events consumer, the delivery agent, timers and web pages —
the one place that wires the parts together. `run_worker()` is `effortpulse worker`."""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import redis.asyncio as aioredis
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streams import delivery, kafka, metrics, queries, security
from streams.consumer import EventsConsumer
from streams.pipeline import Pipeline
from streams.settings import Settings, get_settings
from streams.state import StateStore

log = logging.getLogger("effortpulse")


class FaustSink:
    """Produces with the faust app's own (aiokafka) producer."""

    def __init__(self, app: faust.App) -> None:
        self.app = app

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Any:
        return await self.app.producer.send(topic, key, value, None, None, None)

    async def alert_ids_since(self, topic: str, since_ms: int) -> set[str]:
        """Read `topic` from `since_ms` (record time) to its current end; the alert ids found."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=_bootstrap(self.app),
            enable_auto_commit=False,
            group_id=None,
            **credentials_to_aiokafka_auth(self.app.conf.broker_credentials, self.app.conf.ssl_context),
        )
        await consumer.start()
        try:
            await consumer.topics()  # loads the topic's metadata (an unassigned consumer has none)
            partitions = consumer.partitions_for_topic(topic) or {0}
            tps = [TopicPartition(topic, p) for p in partitions]
            # assigned even when there is nothing to read: aiokafka 0.14 fails to stop a
            # group-less consumer that never had an assignment
            consumer.assign(tps)
            starts = await consumer.offsets_for_times({tp: since_ms for tp in tps})
            ends = await consumer.end_offsets(tps)
            remaining = {}
            for tp in tps:
                start = starts.get(tp)
                if start is None:
                    continue  # nothing that recent in this partition
                consumer.seek(tp, start.offset)
                if start.offset < ends[tp]:
                    remaining[tp] = ends[tp]
            ids: set[str] = set()
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000)
                for tp, messages in batch.items():
                    for m in messages:
                        with contextlib.suppress(ValueError, KeyError, TypeError):
                            ids.add(json.loads(m.value)["alert_id"])
                        if m.offset + 1 >= remaining.get(tp, 0):
                            remaining.pop(tp, None)
            return ids
        finally:
            await consumer.stop()


@dataclass
class Context:
    """The worker's live parts, created once the event loop runs."""

    settings: Settings
    redis: aioredis.Redis
    store: StateStore
    pipeline: Pipeline
    kafka_client: AIOKafkaClient | None = None
    events: EventsConsumer | None = None  # the events consumer (streams.consumer)
    assigned: set[int] = field(default_factory=set)  # events-topic partitions this worker owns
    to_recover: set[int] = field(default_factory=set)  # owned partitions whose outbox is not checked yet

    async def kafka_metadata(self) -> None:
        """Ask Kafka for its metadata (for /health); connects on first use."""
        if self.kafka_client is None:
            self.kafka_client = AIOKafkaClient(
                bootstrap_servers=self.settings.kafka_bootstrap, **security.kafka_options(self.settings)
            )
        if not self.kafka_client.cluster.brokers():
            await self.kafka_client.bootstrap()
        await self.kafka_client.fetch_all_metadata()


def _bootstrap(app: faust.App) -> str:
    return ",".join(f"{u.host}:{u.port or 9092}" for u in app.conf.broker)


def redis_client(settings: Settings) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_timeout=10,
        socket_connect_timeout=5,
        health_check_interval=30,
        **security.redis_options(settings),
    )


def _datadir(app_id: str) -> Path:
    path = Path(tempfile.gettempdir()) / "effortpulse-faust" / app_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def create_app(settings: Settings) -> faust.App:
    """A faust app for these settings: the delivery agent, the timers and the HTTP API. The
    events consumer is added by run_worker (streams.consumer)."""
    app = faust.App(
        # faust's own consumer reads only the alerts topic (delivery); the events consumer
        # (streams.consumer) is the group EFFORTPULSE_APP_ID itself
        f"{settings.app_id}-delivery",
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=security.faust_credentials(settings),
        store="memory://",
        # faust keeps a data folder even with in-memory tables; not in the working directory
        datadir=str(_datadir(settings.app_id)),
        autodiscover=False,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_disable_leader=True,
        web_enabled=True,
        web_port=settings.web_port,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_in_thread=False,
        producer_linger_ms=2,
        producer_acks=-1,
        broker_commit_interval=1.0,
        logging_config=None,
    )
    ctx_box: dict[str, Context] = {}

    def ctx() -> Context:
        if "ctx" not in ctx_box:
            client = redis_client(settings)
            store = StateStore(client, settings.app_id, cache_size=settings.state_cache)
            ctx_box["ctx"] = Context(settings, client, store, Pipeline(settings, store, FaustSink(app)))
        return ctx_box["ctx"]

    app.effortpulse = ctx  # type: ignore[attr-defined]  # the web pages reach the parts through it

    alerts_topic = app.topic(settings.alerts_topic, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(alerts_topic, concurrency=1)
    async def deliver_alerts(stream: faust.StreamT) -> None:
        """Alerts to their subscriptions (streams.delivery), apart from event processing: a slow
        webhook pauses only this agent's partitions."""
        await delivery.run_agent(app, ctx(), stream)

    @app.timer(interval=settings.score_gauges_interval)
    async def refresh_score_gauges() -> None:
        """Scores are global (all workers' answers), so one worker exports them: the one that owns
        partition 0 of the events topic. A sum over workers then never doubles them."""
        c = ctx()
        if 0 not in c.assigned:
            metrics.set_scores({})
            metrics.set_insights({})
            return
        try:
            segments = queries.gauge_segments(
                await c.store.segments(), settings.score_gauges_agents, settings.score_gauges_max_segments
            )
            now = time.time_ns() // 1000
            metrics.set_scores(await queries.score_figures(c.store, segments, metrics.SCORE_WINDOWS, now))
            metrics.set_insights(
                await queries.insight_figures(c.store, [s for s in segments if not s.startswith("agent:")], now)
            )
        except Exception as exc:  # a Redis hiccup must not stop the timer; the next round tries again
            log.warning("could not refresh the score gauges: %s", exc)

    @app.timer(interval=5.0)
    async def refresh_lag() -> None:
        """Consumer lag per owned partition: the partition's end offset minus the next offset to apply."""
        c = ctx()
        if c.events is None or not c.assigned:
            metrics.set_lag(settings.events_topic, {})
            return
        try:
            lags = {}
            for p in sorted(c.assigned):
                end = c.events.highwater(p)
                applied = metrics.next_offset(p)
                if applied is None:
                    applied = await c.events.position(p)
                if end is not None and applied is not None:
                    lags[p] = max(0, end - applied)
            metrics.set_lag(settings.events_topic, lags)
        except Exception as exc:
            log.warning("could not measure the consumer lag: %s", exc)

    from streams import web  # the HTTP API registers its pages on this app

    web.register(app, ctx)
    return app


def run_worker(settings: Settings | None = None) -> None:
    """`effortpulse worker`: create missing topics, then run the stream processor and its API."""
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    kafka.ensure_topics(settings)
    app = create_app(settings)
    ctx = app.effortpulse  # type: ignore[attr-defined]
    events = ctx().events = EventsConsumer(ctx)
    worker = faust.Worker(app, events, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()

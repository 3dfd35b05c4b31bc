"""The faust app: topics, the batch agent, timers and web pages — the one place that wires
the parts together. `run_worker()` is `effortpulse worker`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import faust
import redis.asyncio as aioredis
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types import TP

from streams import delivery, kafka, metrics, queries, security
from streams.decode import Record
from streams.pipeline import Pipeline
from streams.settings import Settings, get_settings
from streams.state import StateStore

log = logging.getLogger("effortpulse")

# how long a shutdown waits for the batch in hand to reach Redis and Kafka
SHUTDOWN_GRACE_S = 30


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
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in partitions]
            if not tps:
                return set()
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
    """A faust app for these settings: one batch agent on the events topic and the HTTP API."""
    app = faust.App(
        settings.app_id,
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
        broker_commit_every=max(settings.batch_size, 1000),
        broker_commit_interval=1.0,
        stream_buffer_maxsize=max(4096, 2 * settings.batch_size),
        logging_config=None,
    )
    events_topic = app.topic(settings.events_topic, key_type=bytes, value_type=bytes, value_serializer="raw")
    ctx_box: dict[str, Context] = {}

    def ctx() -> Context:
        if "ctx" not in ctx_box:
            client = redis_client(settings)
            store = StateStore(client, settings.app_id, cache_size=settings.state_cache)
            ctx_box["ctx"] = Context(settings, client, store, Pipeline(settings, store, FaustSink(app)))
        return ctx_box["ctx"]

    app.effortpulse = ctx  # type: ignore[attr-defined]  # the web pages reach the parts through it

    @app.agent(events_topic, concurrency=1)
    async def process_events(stream: faust.StreamT) -> None:
        c = ctx()
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_within):
            records = [_record(e) for e in batch]
            await _run_batch(c, records)

    alerts_topic = app.topic(settings.alerts_topic, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(alerts_topic, concurrency=1)
    async def deliver_alerts(stream: faust.StreamT) -> None:
        """Alerts to their subscriptions (streams.delivery), apart from event processing: a slow
        webhook pauses only this agent's partitions."""
        await delivery.run_agent(app, ctx(), stream)

    @app.timer(interval=2.0)
    async def recover_outbox() -> None:
        c = ctx()
        if c.to_recover:
            partitions = sorted(c.to_recover)
            await c.pipeline.recover_outbox(partitions)
            c.to_recover.difference_update(partitions)

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
        tps = [TP(settings.events_topic, p) for p in sorted(c.assigned)]
        if not tps:
            metrics.set_lag(settings.events_topic, {})
            return
        try:
            ends = await app.consumer.highwaters(*tps)
            lags = {}
            for tp in tps:
                applied = metrics.next_offset(tp.partition)
                if applied is None:
                    applied = await app.consumer.position(tp) or 0
                lags[tp.partition] = max(0, ends[tp] - applied)
            metrics.set_lag(settings.events_topic, lags)
        except Exception as exc:
            log.warning("could not measure the consumer lag: %s", exc)

    @app.on_partitions_assigned.connect
    async def on_assigned(app: faust.App, assigned: set[Any], **kwargs: Any) -> None:
        c = ctx()
        mine = {tp.partition for tp in assigned if tp.topic == settings.events_topic}
        c.assigned = mine
        c.to_recover = set(mine)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: set[Any], **kwargs: Any) -> None:
        c = ctx()
        gone = {tp.partition for tp in revoked if tp.topic == settings.events_topic}
        c.assigned -= gone
        c.to_recover -= gone
        if gone:
            c.store.forget()  # another worker may own these customers now
            metrics.forget_partitions(gone)
            if 0 in gone:  # the global gauges are now the new owner of partition 0's to export
                metrics.set_scores({})
                metrics.set_insights({})

    from streams import web  # the HTTP API registers its pages on this app

    web.register(app, ctx)
    return app


def _record(event: faust.EventT) -> Record:
    m = event.message
    return Record(
        key=m.key,
        value=m.value,
        topic=m.topic,
        partition=m.partition,
        offset=m.offset,
        timestamp_ms=int(m.timestamp * 1000) if m.timestamp else None,
    )


async def _run_batch(c: Context, records: list[Record]) -> None:
    """Run one batch to the end, whatever happens around it.

    faust acks the batch's offsets as soon as this returns *or raises*, and commits them on
    shutdown, so a batch must never end half-done: a shutdown waits for it (up to a grace
    period), and an unexpected error stops the process at once, without a commit, so the
    batch is read again on restart.
    """
    task = asyncio.ensure_future(c.pipeline.process(records))
    try:
        result = await asyncio.shield(task)
    except asyncio.CancelledError:
        log.info("shutting down: finishing the batch in hand (%d records) first", len(records))
        try:
            done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_S)
        except BaseException:
            done = set()
        if task not in done or task.cancelled() or task.exception() is not None:
            _die("the batch in hand could not be finished during shutdown")
        raise
    except Exception:
        log.exception("batch failed")
        _die("a batch failed; stopping without committing its offsets so it is read again on restart")
    metrics.observe_batch(result, records)


def _die(why: str) -> None:
    log.critical("%s", why)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(70)


def run_worker(settings: Settings | None = None) -> None:
    """`effortpulse worker`: create missing topics, then run the stream processor and its API."""
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level.upper(), format="[%(asctime)s] %(levelname)s %(name)s: %(message)s")
    kafka.ensure_topics(settings)
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()

"""Alert subscriptions, the shell: Redis storage, the HTTP pages, and the delivery agent.

Storage: one Redis hash per app, `<app>:subscriptions`, subscription id → the subscription's
JSON *including* the webhook secret (the API never shows it; protect Redis accordingly).

Delivery: a second faust agent of the worker reads EFFORTPULSE_ALERTS_TOPIC in the worker's
consumer group, so every alert partition is delivered by the one worker that owns it, and a
slow or dead target only ever holds up that agent — faust pauses fetching the alerts partitions
when the agent falls behind, while the events agent goes on. For each alert, every matching
subscription gets it concurrently:
  - a Kafka target: the alert's JSON produced to that topic with the alert's key;
  - a webhook: a POST of the exact alert bytes with Content-Type, X-Effortpulse-Alert-Id and
    X-Effortpulse-Signature (sha256=<hex HMAC-SHA256 of the body keyed by the secret>).
A 2xx answer is success; 5xx, 408, 429, timeouts and connection errors are tried again after an
exponential backoff with full jitter; any other answer (and redirects, which are not followed)
is final. After the last try the alert goes to EFFORTPULSE_UNDELIVERED_TOPIC with the reason.

At-least-once: an alert record is acked only when every delivery of it has ended (delivered, or
written to the undelivered topic), and acks go out in offset order per partition, so a crash or
a rebalance delivers again what was in flight. Receivers dedupe by alert_id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import faust
import redis.asyncio as aioredis
import redis.exceptions
from faust.web import Request, Response, View
from prometheus_client import Counter, Gauge, Histogram
from pydantic import ValidationError

from streams import security
from streams.settings import Settings
from streams.subscriptions import (
    Subscription,
    ValidationContext,
    WebhookTarget,
    backoff_delays,
    error_list,
    host_allowed,
    matches,
    parse_allow,
    retryable_status,
    sign,
    summary,
    validate_body,
)

if TYPE_CHECKING:
    from streams.app import Context

log = logging.getLogger(__name__)

# a Kafka target gets this long per try (the producer retries inside it)
KAFKA_TARGET_TIMEOUT_S = 30.0
# how much of a failing answer's body goes into the reason
ERROR_BODY_CHARS = 200
# open connections to one webhook host at most (a try waiting for one counts against its timeout)
CONNECTIONS_PER_HOST = 50

DELIVERIES = Counter(
    "effortpulse_alert_deliveries_total",
    "Deliveries of an alert to a subscription that ended, by target kind and outcome (delivered, undelivered)",
    ["target", "outcome"],
)
ATTEMPTS = Counter(
    "effortpulse_alert_delivery_attempts_total",
    "Tries to deliver an alert to a subscription, by target kind and result (ok, retryable, final)",
    ["target", "result"],
)
DELIVERY_SECONDS = Histogram(
    "effortpulse_alert_delivery_seconds",
    "From an alert reaching the delivery agent to its delivery to one subscription ending",
    ["target"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
IN_FLIGHT = Gauge(
    "effortpulse_alert_deliveries_in_flight", "Alerts taken from the alerts topic whose deliveries have not all ended"
)
for _kind in ("webhook", "kafka"):  # every series exists from the start, at 0
    DELIVERY_SECONDS.labels(_kind)
    for _outcome in ("delivered", "undelivered"):
        DELIVERIES.labels(_kind, _outcome)
    for _result in ("ok", "retryable", "final"):
        ATTEMPTS.labels(_kind, _result)


# ------------------------------------------------------------------------------ storage


def subscriptions_key(app_id: str) -> str:
    return f"{app_id}:subscriptions"


def validation_context(settings: Settings) -> ValidationContext:
    reserved = (settings.events_topic, settings.alerts_topic, settings.dlq_topic, settings.undelivered_topic)
    return ValidationContext(webhook_allow=parse_allow(settings.webhook_allow), reserved_topics=reserved)


def new_subscription(body: Any, settings: Settings) -> Subscription:
    """A new subscription (fresh id, created now) from a parsed request body; raises ValidationError."""
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return validate_body(body, validation_context(settings), secrets.token_hex(8), created)


class SubscriptionStore:
    """Subscriptions in `<app>:subscriptions`: id → JSON with the secret."""

    def __init__(self, client: aioredis.Redis, app_id: str) -> None:
        self.redis = client
        self.key = subscriptions_key(app_id)
        self._parsed: dict[bytes, Subscription] = {}  # stored JSON → model, so a read parses only changes

    async def add(self, sub: Subscription) -> None:
        await self.redis.hset(self.key, sub.id, sub.model_dump_json())

    async def remove(self, sub_id: str) -> bool:
        return bool(await self.redis.hdel(self.key, sub_id))

    async def get(self, sub_id: str) -> Subscription | None:
        raw = await self.redis.hget(self.key, sub_id)
        return self._parse(sub_id, raw) if raw is not None else None

    async def all(self) -> list[Subscription]:
        """Every subscription, oldest first. One HGETALL; entries that no longer parse are skipped."""
        rows = await self.redis.hgetall(self.key)
        parsed = {}
        for sub_id, raw in rows.items():
            sub = self._parsed.get(raw) or self._parse(sub_id, raw)
            if sub is not None:
                parsed[raw] = sub
        self._parsed = parsed
        return sorted(parsed.values(), key=lambda s: (s.created_at, s.id))

    def _parse(self, sub_id: bytes | str, raw: bytes) -> Subscription | None:
        try:
            return Subscription.model_validate_json(raw)
        except ValidationError as exc:
            log.error("subscription %r in %s cannot be read (%s); it is skipped", sub_id, self.key, exc)
            return None


async def ensure_topic(settings: Settings, topic: str, timeout: float = 15) -> None:
    """Create a Kafka target's topic when it is missing (best effort: a broker may forbid it, or
    create topics itself on first use); logs instead of raising."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, **security.kafka_options(settings))
        await admin.start()
        try:
            if topic not in await admin.list_topics():
                answer = await admin.create_topics(
                    [NewTopic(topic, settings.topic_partitions, settings.topic_replication)], timeout_ms=10_000
                )
                # (topic, error code, message) per topic; 36 = it exists already (another worker was first)
                failed = [e for e in getattr(answer, "topic_errors", ()) if e[1] not in (0, 36)]
                if failed:
                    raise RuntimeError(f"Kafka refused to create it: {failed[0][1:]}")
                log.info("created topic %s for a subscription", topic)
        finally:
            await admin.close()

    try:
        await asyncio.wait_for(create(), timeout)
    except Exception as exc:
        log.warning("could not make sure topic %s exists (%s); producing to it may fail", topic, exc)


# ------------------------------------------------------------------------------ delivering


class Sink(Protocol):
    """Produces a record; the returned awaitable resolves once Kafka has it (streams.app.FaustSink)."""

    async def send(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]: ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one try ended."""

    ok: bool
    retry: bool = False
    error: str = ""
    retry_after: float | None = None

    @property
    def result(self) -> str:
        return "ok" if self.ok else "retryable" if self.retry else "final"


class Deliverer:
    """Delivers one alert to its subscriptions: tries, backoff, undelivered record."""

    def __init__(self, settings: Settings, sink: Sink, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.sink = sink
        self.rng = rng or random.Random()
        self.allow = parse_allow(settings.webhook_allow)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Deliverer:
        self.session = aiohttp.ClientSession(
            # no overall cap, a cap per host: a dead receiver ties up its own connections only
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=CONNECTIONS_PER_HOST),
            headers={"User-Agent": "effortpulse"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def deliver(self, raw: bytes, key: bytes | None, alert: dict[str, Any], subs: list[Subscription]) -> None:
        """Deliver to every subscription concurrently; returns when each is delivered or recorded
        on the undelivered topic."""
        started = time.monotonic()
        await asyncio.gather(*(self._one(sub, raw, key, alert, started) for sub in subs))

    async def _one(
        self, sub: Subscription, raw: bytes, key: bytes | None, alert: dict[str, Any], started: float
    ) -> None:
        s = self.settings
        delays = backoff_delays(s.webhook_retries, s.webhook_backoff_base, s.webhook_backoff_max, self.rng)
        attempts = 0
        error = ""
        try:
            while True:
                if isinstance(sub.target, WebhookTarget) and self.allow and not self._allowed(sub.target):
                    error = "the webhook's host no longer matches EFFORTPULSE_WEBHOOK_ALLOW; not sent"
                    break
                attempts += 1
                outcome = await self._attempt(sub, raw, key, str(alert.get("alert_id", "")))
                ATTEMPTS.labels(sub.kind, outcome.result).inc()
                if outcome.ok:
                    DELIVERIES.labels(sub.kind, "delivered").inc()
                    DELIVERY_SECONDS.labels(sub.kind).observe(time.monotonic() - started)
                    return
                error = outcome.error
                if not outcome.retry or attempts > len(delays):
                    break
                delay = delays[attempts - 1]
                if outcome.retry_after is not None:
                    delay = max(delay, min(outcome.retry_after, s.webhook_backoff_max))
                log.info(
                    "alert %s to subscription %s: try %d failed (%s); again in %.2fs",
                    alert.get("alert_id"),
                    sub.id,
                    attempts,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
        except Exception as exc:  # a bug of ours, not the target's: still never lose the alert
            log.exception("delivering alert %s to subscription %s failed", alert.get("alert_id"), sub.id)
            error = f"internal error: {exc!r}"
        DELIVERIES.labels(sub.kind, "undelivered").inc()
        DELIVERY_SECONDS.labels(sub.kind).observe(time.monotonic() - started)
        log.warning(
            "alert %s not delivered to subscription %s (%s) after %d tries: %s",
            alert.get("alert_id"),
            sub.id,
            sub.target.describe(),
            attempts,
            error,
        )
        await self._undelivered(sub, key, alert, attempts, error)

    def _allowed(self, target: WebhookTarget) -> bool:
        return host_allowed(urlsplit(target.webhook_url).hostname or "", self.allow)

    async def _attempt(self, sub: Subscription, raw: bytes, key: bytes | None, alert_id: str) -> Attempt:
        if isinstance(sub.target, WebhookTarget):
            return await self._post(sub.target, raw, alert_id)
        return await self._produce(sub.target.kafka_topic, raw, key)

    async def _post(self, target: WebhookTarget, body: bytes, alert_id: str) -> Attempt:
        assert self.session is not None, "use the Deliverer as an async context manager"
        timeout = self.settings.webhook_timeout
        headers = {
            "Content-Type": "application/json",
            "X-Effortpulse-Alert-Id": alert_id,
            "X-Effortpulse-Signature": sign(target.secret, body),
        }
        try:
            async with self.session.post(
                target.webhook_url,
                data=body,
                headers=headers,
                allow_redirects=False,  # a redirect could lead past the allow-list
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                status = resp.status
                text = (await resp.content.read(ERROR_BODY_CHARS)).decode("utf-8", "replace")
                retry_after = _seconds(resp.headers.get("Retry-After"))
        except TimeoutError:
            return Attempt(False, retry=True, error=f"no answer within {timeout:g}s")
        except aiohttp.ClientError as exc:
            return Attempt(False, retry=True, error=f"connection failed: {exc or type(exc).__name__}")
        if 200 <= status < 300:
            return Attempt(True)
        detail = " ".join(text.split())[:ERROR_BODY_CHARS]
        if 300 <= status < 400:
            return Attempt(False, error=f"HTTP {status}: redirects are not followed")
        if retryable_status(status):
            return Attempt(False, retry=True, error=f"HTTP {status}: {detail}".rstrip(": "), retry_after=retry_after)
        return Attempt(False, error=f"HTTP {status} (not retried): {detail}".rstrip(": "))

    async def _produce(self, topic: str, value: bytes, key: bytes | None) -> Attempt:
        async def send() -> None:
            ack = await self.sink.send(topic, key, value)
            await ack

        try:
            await asyncio.wait_for(send(), KAFKA_TARGET_TIMEOUT_S)
        except TimeoutError:
            return Attempt(False, retry=True, error=f"Kafka did not take it within {KAFKA_TARGET_TIMEOUT_S:g}s")
        except Exception as exc:
            return Attempt(False, retry=True, error=f"Kafka: {exc or type(exc).__name__}")
        return Attempt(True)

    async def _undelivered(
        self, sub: Subscription, key: bytes | None, alert: dict[str, Any], attempts: int, error: str
    ) -> None:
        """Record the failure on the undelivered topic; waits for Kafka as long as it takes, since
        the alert is acked only after this."""
        doc = {
            "alert": alert,
            "subscription_id": sub.id,
            "subscription_name": sub.name,
            "target": sub.target.describe(),
            "attempts": attempts,
            "error": error,
            "failed_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        value = json.dumps(doc).encode()
        delay = 0.2
        while True:
            try:
                ack = await self.sink.send(self.settings.undelivered_topic, key, value)
                await ack
                return
            except Exception as exc:
                log.warning("undelivered record not accepted by Kafka (%s); again in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


def _seconds(header: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is ignored)."""
    if header is None:
        return None
    try:
        value = float(header.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


# ------------------------------------------------------------------------------ acks in order


@dataclass(slots=True)
class Pending:
    """An alert record taken from the stream whose deliveries have not all ended."""

    event: Any
    generation: int
    done: bool = False


@dataclass(slots=True)
class _Partition:
    generation: int
    queue: deque[Pending] = field(default_factory=deque)


class InOrderAcks:
    """Acks records per partition in offset order, each once it and every record before it is done.

    Deliveries end in any order, but faust commits the highest acked offset it can, so acking a
    later record while an earlier one is still being delivered could commit past it. Records of
    an older consumer generation (before a rebalance) are never acked: faust reads them again
    from the committed offset, and they are delivered again.
    """

    def __init__(self, ack: Callable[[Any], Awaitable[Any]], generation: Callable[[], int]) -> None:
        self._ack = ack
        self._generation = generation
        self._partitions: dict[Hashable, _Partition] = {}

    def track(self, tp: Hashable, event: Any, generation: int) -> Pending:
        part = self._partitions.get(tp)
        if part is None or part.generation != generation:
            part = self._partitions[tp] = _Partition(generation)  # records of older generations are let go
        entry = Pending(event, generation)
        part.queue.append(entry)
        return entry

    async def done(self, tp: Hashable, entry: Pending) -> int:
        """Mark one record done and ack what can be acked now; returns how many were acked."""
        entry.done = True
        part = self._partitions.get(tp)
        if part is None:
            return 0
        ready: list[Pending] = []
        while part.queue and part.queue[0].done:
            ready.append(part.queue.popleft())
        current = self._generation()
        acked = 0
        for e in ready:
            if e.generation == current:
                await self._ack(e.event)
                acked += 1
        return acked

    def pending(self) -> int:
        return sum(len(p.queue) for p in self._partitions.values())


# ------------------------------------------------------------------------------ the agent


class Throttle:
    """Stops fetching the alerts partitions while `limit` alerts are taken and not yet delivered,
    and fetches again once half of them are. It uses faust's own per-partition flow control (what
    its stream buffers use when full), so records already fetched still arrive and none is
    skipped, and the events partitions are never paused: delivery never holds up event processing."""

    def __init__(self, consumer: Any, topic: str, limit: int) -> None:
        self.consumer = consumer
        self.topic = topic
        self.limit = limit
        self.paused: set[Any] = set()

    def update(self, in_flight: int) -> None:
        if in_flight >= self.limit:
            for tp in self.consumer.assignment():
                if tp.topic == self.topic and tp not in self.paused:
                    self.consumer.on_buffer_full(tp)
                    self.paused.add(tp)
        elif self.paused and in_flight <= self.limit // 2:
            assigned = self.consumer.assignment()
            for tp in self.paused:
                if tp in assigned:  # a partition revoked meanwhile is not ours to fetch
                    self.consumer.on_buffer_drop(tp)
            self.paused.clear()


async def run_agent(app: faust.App, ctx: Context, stream: faust.StreamT) -> None:
    """The delivery agent's body: for each alert record, deliver it to every matching subscription
    in the background and ack it once all its deliveries ended. At most
    EFFORTPULSE_DELIVERY_CONCURRENCY alerts are delivered at once; with that many waiting or being
    delivered, fetching alerts pauses until half of them are done."""
    settings = ctx.settings
    store = SubscriptionStore(ctx.redis, settings.app_id)
    manual = stream.noack()
    acks = InOrderAcks(manual.ack, lambda: int(app.consumer_generation_id))
    throttle = Throttle(app.consumer, settings.alerts_topic, settings.delivery_concurrency)
    slots = asyncio.Semaphore(settings.delivery_concurrency)
    tasks: set[asyncio.Task[None]] = set()

    def ended(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        IN_FLIGHT.set(len(tasks))
        throttle.update(len(tasks))

    async def deliver(deliverer: Deliverer, tp: Hashable, entry: Pending, raw: bytes, key: bytes | None,
                      alert: dict[str, Any], subs: list[Subscription]) -> None:  # fmt: skip
        async with slots:
            await deliverer.deliver(raw, key, alert, subs)
        await acks.done(tp, entry)  # not when cancelled: then the alert is read and delivered again

    async with Deliverer(settings, ctx.pipeline.sink) as deliverer:
        try:
            async for event in manual.events():
                message = event.message
                tp = message.tp
                entry = acks.track(tp, event, message.generation_id)
                alert = _alert(message.value)
                subs = await _subscriptions(store) if alert is not None else []
                wanted = [s for s in subs if alert is not None and matches(s, alert)]
                if not wanted:
                    await acks.done(tp, entry)
                    continue
                task = asyncio.ensure_future(deliver(deliverer, tp, entry, message.value, message.key, alert, wanted))
                tasks.add(task)
                task.add_done_callback(ended)
                IN_FLIGHT.set(len(tasks))
                throttle.update(len(tasks))
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _alert(raw: Any) -> dict[str, Any] | None:
    try:
        doc = json.loads(raw)
    except (TypeError, ValueError):
        log.error("a record on the alerts topic is not JSON; it is not delivered")
        return None
    if not isinstance(doc, dict):
        log.error("a record on the alerts topic is not a JSON object; it is not delivered")
        return None
    return doc


async def _subscriptions(store: SubscriptionStore) -> list[Subscription]:
    """The current subscriptions; waits for Redis rather than skip an alert."""
    delay = 0.1
    while True:
        try:
            return await store.all()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            log.warning("Redis unavailable (%s) while reading subscriptions; again in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


# ------------------------------------------------------------------------------ HTTP


def register_pages(
    app: faust.App,
    ctx: Callable[[], Context],
    guarded: Callable[[Callable[..., Awaitable[Response]]], Callable[..., Awaitable[Response]]],
) -> None:
    """POST/GET /subscriptions and GET/DELETE /subscriptions/{id}, all behind the API token."""

    def store() -> SubscriptionStore:
        c = ctx()
        return SubscriptionStore(c.redis, c.settings.app_id)

    @app.page("/subscriptions")
    class Subscriptions(View):
        @guarded
        async def get(self, request: Request) -> Response:
            return self.json({"subscriptions": [s.public() for s in await store().all()]})

        @guarded
        async def post(self, request: Request) -> Response:
            settings = ctx().settings
            try:
                body = json.loads(await request.read())
            except ValueError as exc:
                msg = f"the body is not JSON: {exc}"
                errors = [{"type": "json_invalid", "loc": [], "msg": msg}]
                return self.json({"error": msg, "errors": errors}, status=422)
            try:
                sub = new_subscription(body, settings)
            except ValidationError as exc:
                errors = error_list(exc)
                return self.json({"error": summary(errors), "errors": errors}, status=422)
            if not isinstance(sub.target, WebhookTarget):
                await ensure_topic(settings, sub.target.kafka_topic)
            await store().add(sub)
            log.info("subscription %s (%s) added: %s", sub.id, sub.name, sub.target.describe())
            return self.json(sub.public(), status=201, headers={"Location": f"/subscriptions/{sub.id}"})

    @app.page("/subscriptions/{subscription_id}")
    class OneSubscription(View):
        @guarded
        async def get(self, request: Request, subscription_id: str) -> Response:
            sub = await store().get(subscription_id)
            if sub is None:
                return self.json({"error": f"no subscription {subscription_id!r}"}, status=404)
            return self.json(sub.public())

        @guarded
        async def delete(self, request: Request, subscription_id: str) -> Response:
            if not await store().remove(subscription_id):
                return self.json({"error": f"no subscription {subscription_id!r}"}, status=404)
            log.info("subscription %s removed", subscription_id)
            return self.bytes(b"", status=204)
